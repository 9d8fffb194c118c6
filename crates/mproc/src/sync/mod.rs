//! Python's synchronisation family across processes: [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Event`], [`Condition`], [`Barrier`] and [`Lock`].
//!
//! Every type is a cheap handle (`Clone` shares it) to state in shared memory, built on
//! `mproc-futex`'s robust primitives: pass a handle (or a clone) to a child in
//! [`Process`](crate::Process) args — fork or spawn — or create it under a name and open it
//! from an unrelated process.
//!
//! # Python → mproc
//!
//! | Python | mproc | differences |
//! |---|---|---|
//! | `RLock()` | [`RLock::new`] | `acquire` returns a guard ([`RLockGuard`], not `Send`: ownership is the thread's); [`RLock::release`] for Python-style unpaired release; dead owner → [`AcquireError::OwnerDied`] |
//! | `Semaphore(n)` | [`Semaphore::new`] | `acquire`/`try_acquire`/`acquire_timeout` instead of `block`/`timeout` flags; counts are `u32` (never negative) |
//! | `BoundedSemaphore(n)` | [`BoundedSemaphore::new`] | over-release → [`ReleaseError::TooManyReleases`] (Python's `ValueError`) |
//! | `Event()` | [`Event::new`] | `set`, `clear`, `is_set`, `wait`, `wait_timeout` |
//! | `Condition(lock=None)` | [`Condition::new`] | over its own non-reentrant lock (see below); guard-based `wait`/`wait_timeout`/`wait_for`; `notify*` on the guard, so "lock not held" cannot happen |
//! | `Barrier(parties, action, timeout)` | [`Barrier::new`], [`Barrier::with_action`] | no default timeout (use [`Barrier::wait_timeout`]); a party that dies while waiting breaks it |
//!
//! # Participant death
//!
//! | object | a process dies ... | survivors see |
//! |---|---|---|
//! | [`Lock`], [`RLock`], [`Condition`]'s lock | holding it | the next acquirer takes it over and gets [`AcquireError::OwnerDied`] with the guard, within ~32 ms of sleeping on it; the lock stays poisoned (std's rule: every acquirer is told) until `mark_consistent` or `clear_poison`, or with [`LockOptions::strict_recovery`] becomes [`AcquireError::NotRecoverable`] (POSIX's rule) |
//! | [`Semaphore`], [`BoundedSemaphore`] | holding permits | the permits come back (Python's stay lost): a blocked `acquire` gets them within ~32 ms; releases by processes that held none count as made for the dead holder (see [`semaphore`](Semaphore) docs for the rule) |
//! | [`Event`] | waiting | nothing: `set` never waits for waiters (Python's `set` hangs, P10) |
//! | [`Condition`] | waiting | nothing: `notify` never waits for acknowledgements (Python's hangs, P10); a notification that the dead waiter consumed is lost |
//! | [`Barrier`] | after its first `wait` (waiting, running the action, or between waits) | the waiters get [`BarrierError::Broken`] within about [`BARRIER_CHECK_INTERVAL`] |
//! | [`Barrier`] | before its first `wait` | the others wait until their timeout (which breaks it, as in Python) or an `abort` |
//!
//! # Where the state lives
//!
//! Anonymous objects live in the small-object [cell store](crate::storage::cells) (a few bytes of a shared
//! segment each: 10,000 of them need no more descriptors than one). Named objects each have
//! their own named segment, `/dev/shm/mproc.<name>` like every named mproc object (see
//! [`crate::storage::names`] for what a name may be and what a stale name is; `ls /dev/shm` and
//! [`names::list`](crate::storage::names::list) list them, and [`RLock::unlink_named`] and friends
//! remove them). A named
//! object's kind is checked when it is opened or unlinked: opening an `RLock`'s name as an
//! [`Event`] is [`OpenError::WrongType`](crate::OpenError::WrongType).
//!
//! # Why `Condition` uses a plain lock
//!
//! Python's `Condition()` defaults to an `RLock` and releases every recursion level in
//! `wait`. mproc's [`Condition`] owns a non-reentrant robust lock (the `RawLock` that
//! `mproc-futex`'s condition variable is built for): with guards, re-entering a condition's
//! lock is never needed to call helpers, and a reentrant wait would have to record and
//! restore the depth across a sleep in which the owner may die.
mod acquire;
pub(crate) mod backing;
mod barrier;
mod condition;
mod error;
mod event;
mod handle;
pub(crate) mod lock;
mod rlock;
mod semaphore;

pub use barrier::{BARRIER_CHECK_INTERVAL, Barrier};
pub use condition::{Condition, ConditionGuard, WaitResult};
pub use error::{AcquireError, BarrierError, NotOwner};
pub use event::Event;
pub use lock::{Lock, LockGuard, LockOptions};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, ReleaseError, Semaphore, SemaphoreError};
