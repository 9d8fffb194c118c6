//! Process-shared futex waits and robust synchronisation primitives for mproc.
//!
//! This is the only crate of mproc that calls `futex(2)`. Every primitive is `#[repr(C)]`,
//! built of fixed-width atomics, position-independent and initialised in place, so the same
//! value works on the heap, in a `static`, or in memory shared between processes
//! (`MAP_SHARED`), where sleepers in every process are woken (`FUTEX_PRIVATE_FLAG` is never
//! used). Blocking calls take a [`Wait`] mode: never, for ever, or until an absolute
//! [`Deadline`] on `CLOCK_MONOTONIC`.
//!
//! # Map
//!
//! | item | Python | what |
//! |------|--------|------|
//! | [`futex`] | — | `wait(&AtomicU32, expected, deadline)` / `wake(&AtomicU32, n)`: sleep on any word |
//! | [`Deadline`] | `timeout=` | absolute CLOCK_MONOTONIC deadline |
//! | [`Wait`] | `block=`, `timeout=` | wait mode: never, until a deadline, for ever |
//! | [`RawLock`], [`LockGuard`] | `Lock` | robust mutex: owner id in the word, `OwnerDied` takeover, std-like poisoning (or strict `NotRecoverable`) |
//! | [`RawRLock`], [`RLockGuard`] | `RLock` | reentrant robust mutex owned by one thread of one participant |
//! | [`Semaphore`], [`BoundedSemaphore`] | `Semaphore`, `BoundedSemaphore` | lock-free counting semaphore (a dead holder's permits are lost) |
//! | [`RobustSemaphore`] | `Semaphore`, `BoundedSemaphore` | counting semaphore that gives back a dead holder's permits |
//! | [`Ledger`] | — | shared count with a per-participant ledger of holders and an undo journal |
//! | [`Event`] | `Event` | flag with set/clear/wait |
//! | [`Condvar`] | `Condition` | condition variable used with a [`RawLock`] |
//! | [`Barrier`] | `Barrier` | cyclic barrier with an action, abort, reset, broken state, and death detection of its registered parties |
//! | [`Liveness`] | — | caller-supplied "is participant `id` alive?" |
//! | [`Waiter`], [`Futex`] | — | how algorithms sleep (injected; loom swaps it) |
//! | [`SlicedWait`], [`Parking`] | — | the blocking loop: spin, sleep in slices, check between them |
//!
//! Owners are *participant ids*: the raw `u32` of a [`ParticipantId`] (mproc-core's, re-exported
//! here: nonzero, at most [`ParticipantId::MAX`] = `2^29 - 2`),
//! handed out by `mproc-shm`'s participant table. A lock stores its owner's id in the very
//! word it takes with a CAS, so a crash can never leave a lock taken by an unknown owner; a
//! waiter asks the [`Liveness`] about the owner and takes a dead owner's lock over, being
//! told so with `OwnerDied` (like `EOWNERDEAD`), which keeps being reported to every later
//! acquirer (std's poisoning) until somebody marks the data consistent; a lock made strict
//! becomes not recoverable instead (like `ENOTRECOVERABLE`). Each primitive's docs say what a
//! participant's death does to it.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mproc_futex::{AlwaysAlive, Deadline, Event, RawLock, Wait};
//!
//! // In one process; the same types work inside a MAP_SHARED mapping across fork().
//! let lock: RawLock = RawLock::new();
//! let me = 1; // this participant's id
//! {
//!     let _guard = lock.lock(me, &AlwaysAlive, Wait::Forever).expect("fresh lock");
//!     // ... critical section ...
//! }
//! let ev = Event::new();
//! assert!(!ev.wait(Wait::Until(Deadline::after(Duration::from_millis(1)))));
//! ev.set();
//! assert!(ev.wait(Wait::Forever));
//! ```
//!
//! # Loom
//!
//! With `RUSTFLAGS="--cfg mproc_loom"` the atomics come from loom and [`futex`] is emulated by
//! a parking table in which a lost wake-up is a deadlock; deadlines then follow a logical clock
//! moved by `futex::advance_clock`. See `tests/loom_*.rs`: every model asserts that each of
//! its outcome arms was reached, and each primitive with several sleepers has a model with
//! two threads asleep on one word at once (the crate README lists the bugs they catch).
#![deny(unsafe_code)]

mod barrier;
mod condvar;
mod deadline;
mod event;
pub mod futex;
mod ledger;
mod liveness;
mod lock;
#[cfg(mproc_loom)]
mod loom_park;
mod primitive;
mod rlock;
mod robust_semaphore;
mod semaphore;
mod sync;
#[cfg(not(mproc_loom))]
mod sys;
mod waiter;

pub use barrier::{
    BARRIER_CHECK_INTERVAL, BARRIER_REGISTRY, Barrier, BarrierWaitError, MAX_PARTIES,
};
pub use condvar::{Condvar, CondvarWait, WaitTimeoutResult};
pub use deadline::{Deadline, Wait};
pub use event::Event;

pub use ledger::{Caller, Give, GiveError, LEDGER_ENTRIES, Ledger, LedgerError, fault};
pub use liveness::{AlwaysAlive, Liveness, ParticipantId};
pub use lock::{
    CHECK_INTERVAL_MAX, CHECK_INTERVAL_MIN, LockError, LockGuard, RawLock, UnlockError,
};

pub use rlock::{RLockGuard, RawRLock};
pub use robust_semaphore::RobustSemaphore;
pub use semaphore::{BoundedSemaphore, ReleaseError, Semaphore};
pub use waiter::{Futex, Outcome, Parking, Round, SLICED_SPINS, SlicedWait, Waiter};
