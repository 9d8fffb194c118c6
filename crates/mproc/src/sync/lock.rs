//! [`Lock`]: Python's `multiprocessing.Lock` over `mproc-futex`'s [`RawLock`].

use mproc_core::shared::{SharedBytes, shared_at};
use std::fmt;

use mproc_futex::{RawLock, Wait};

use crate::storage::object::CreateError;
use crate::sync::acquire::lock_methods;
use crate::sync::backing::Kind;
use crate::sync::handle::shared_handle;

/// The lock's shared state: one [`RawLock`] word. Anonymous locks live in the small-object
/// [cell store](crate::storage::cells) (4 bytes of a shared segment, not a segment each); named locks in
/// their own named segment.
const KIND: Kind = Kind::of::<RawLock>("RawLock/v1", "Lock");

shared_handle! {
    /// [`Lock`]: Python's `multiprocessing.Lock`, a robust mutual-exclusion lock shared between
    /// processes, over `mproc-futex`'s [`RawLock`].
    ///
    /// # Python → mproc
    ///
    /// | Python | mproc |
    /// |---|---|
    /// | `Lock()` | [`Lock::new`] |
    /// | `lock.acquire()` / `with lock:` | [`Lock::acquire`] → a [`LockGuard`] that releases on drop |
    /// | `lock.acquire(block=False)` | [`Lock::try_acquire`] |
    /// | `lock.acquire(timeout=t)` | [`Lock::acquire_timeout`] |
    /// | `lock.release()` | drop the guard, or [`LockGuard::unlock`] |
    /// | `Process(target, args=(lock,))` | pass the lock (or a `clone()`) in `Process` args |
    /// | — | [`AcquireError::OwnerDied`]: a holder died holding it (`EOWNERDEAD`); the lock is poisoned |
    /// | — | [`Lock::clear_poison`], [`Lock::is_poisoned`], [`LockOptions::strict_recovery`] |
    ///
    /// # A holder that dies
    ///
    /// The lock word records its owner (the holder's participant id in the lock's segment). If
    /// that process dies holding the lock — SIGKILL, a crash, anything — the next acquirer takes
    /// it over within [`mproc_futex::CHECK_INTERVAL_MAX`] (32 ms) of noticing, and is told so the
    /// way std reports poisoning: [`AcquireError::OwnerDied`] *carries the guard* (the lock is
    /// held; [`AcquireError::into_inner`] hands it over). Repair what the lock protects, call
    /// [`LockGuard::mark_consistent`], and go on. Python has no counterpart: a
    /// `multiprocessing.Lock` whose holder died stays locked for ever.
    ///
    /// What happens if nobody marks it consistent is std's rule, not POSIX's:
    ///
    /// | | std `Mutex` (a holder panicked) | mproc `Lock` (default; a holder died) | mproc `Lock` with [`LockOptions::strict_recovery`] | POSIX robust mutex |
    /// |---|---|---|---|---|
    /// | next acquire | `Err(PoisonError)` with the guard | `Err(OwnerDied)` with the guard | `Err(OwnerDied)` with the guard | `EOWNERDEAD`, held |
    /// | guard dropped unmarked | stays poisoned | stays poisoned: every later acquire gets `OwnerDied` with the guard | [`NotRecoverable`](AcquireError::NotRecoverable) for ever | `ENOTRECOVERABLE` for ever |
    /// | healed by | [`Mutex::clear_poison`](std::sync::Mutex::clear_poison) | [`Lock::clear_poison`] or [`LockGuard::mark_consistent`] | `mark_consistent` before unlocking | `pthread_mutex_consistent` before unlocking |
    ///
    /// The difference from std: its poisoning is a hint about a panic in *this* process, and
    /// `into_inner` is the whole ceremony; here the holder was another process that died, so the
    /// data may be torn mid-write, and the guard says so until somebody vouches for it.
    ///
    /// # Threads
    ///
    /// The owner is a *process* (threads of a process share its participant id), as in Python,
    /// where a `multiprocessing.Lock` may be released by any thread. Mutual exclusion between
    /// threads holds all the same: a second acquire sleeps until the first guard is dropped.
    ///
    /// # Example
    ///
    /// ```
    /// use mproc::{Lock, Process};
    /// use std::time::Duration;
    ///
    /// let lock = Lock::new()?;
    /// let mut child = Process::new(
    ///     |(lock,): (Lock,)| {
    ///         let _held = lock.acquire().expect("lock");
    ///         // ... one process at a time here ...
    ///     },
    ///     (lock.clone(),),
    /// );
    /// child.start()?;
    /// {
    ///     // `AcquireError` borrows the lock (it may carry the guard), so like std's
    ///     // `PoisonError` it is handled here rather than sent up with `?`.
    ///     let _held = lock.acquire().expect("the lock is healthy");
    /// }
    /// assert_eq!(child.join_timeout(Duration::from_secs(10))?.map(|s| s.exitcode()), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    ///
    /// Cloning gives another handle to the same lock; pass a handle to a child in
    /// [`Process`](crate::Process) args.
    pub struct Lock;
    kind: KIND,
    state: RawLock,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("owner", &self.state().owner())
            .field("backing", &self.shared.backing)
            .finish()
    }
}

/// Holds a [`Lock`]; releases it when dropped (Python's `release()`, or leaving `with`).
pub type LockGuard<'a> = mproc_futex::LockGuard<'a>;

/// How a new lock of the family behaves after a holder dies: [`Lock::with_options`],
/// [`RLock::with_options`](super::RLock::with_options),
/// [`Condition::with_options`](super::Condition::with_options) (Python's locks have no
/// options: a dead holder's lock stays held).
///
/// # Example
///
/// ```
/// use mproc::sync::{Lock, LockOptions};
///
/// let lock = Lock::with_options(LockOptions::new().strict_recovery(true))?;
/// assert!(lock.is_strict());
/// # Ok::<(), mproc::CreateError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockOptions {
    strict: bool,
}

impl LockOptions {
    /// The defaults: std-like poisoning.
    pub fn new() -> LockOptions {
        LockOptions::default()
    }

    /// `true`: POSIX's strict recovery. After a holder died, its successor *must* call
    /// `mark_consistent` before unlocking, or the lock becomes
    /// [`NotRecoverable`](super::AcquireError::NotRecoverable) for ever (`ENOTRECOVERABLE`).
    /// `false` (the default): std's poisoning, which lasts until cleared (see the
    /// [`Lock`] docs). Stored in the lock's shared state, so every process sees the same.
    pub fn strict_recovery(mut self, strict: bool) -> LockOptions {
        self.strict = strict;
        self
    }

    /// Whether [`strict_recovery`](Self::strict_recovery) is on.
    pub fn is_strict_recovery(&self) -> bool {
        self.strict
    }

    /// Writes the initial word of the `RawLock` at the start of `state` (fresh, unshared)
    /// with these options.
    pub(crate) fn init_raw_lock(&self, state: &SharedBytes) {
        shared_at::<RawLock>(state, 0)
            .expect("the state is a RawLock")
            .init_unlocked(self.strict);
    }
}

/// Why [`Lock::acquire`] and friends did not simply return a guard: the one acquire error of
/// the lock family ([`sync::AcquireError`](crate::sync::AcquireError)) with a [`LockGuard`].
///
/// Shaped like std's `PoisonError`: [`OwnerDied`](crate::sync::AcquireError::OwnerDied)
/// still carries the guard.
pub(crate) type AcquireError<'a> = crate::sync::AcquireError<LockGuard<'a>>;

impl Lock {
    /// A new, unlocked lock (Python: `Lock()`), in the small-object [cell store](crate::storage::cells).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment is needed and cannot be made (out of memory,
    /// too many open files).
    pub fn new() -> Result<Lock, CreateError> {
        // All-zero bytes are an unlocked `RawLock`: nothing to initialise.
        Lock::create(None, |_| ())
    }

    /// A new, unlocked lock with `options` (e.g. strict recovery), in the small-object
    /// [cell store](crate::storage::cells).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_options(options: LockOptions) -> Result<Lock, CreateError> {
        Lock::create(None, |state: &SharedBytes| options.init_raw_lock(state))
    }

    /// A new lock under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]), which unrelated processes can
    /// [`open_named`](Self::open_named).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str) -> Result<Lock, CreateError> {
        Lock::create_named_with(name, LockOptions::new())
    }

    /// [`create_named`](Self::create_named) with `options`.
    ///
    /// # Errors
    ///
    /// As [`create_named`](Self::create_named).
    pub fn create_named_with(name: &str, options: LockOptions) -> Result<Lock, CreateError> {
        Lock::create(Some(name), |state: &SharedBytes| {
            options.init_raw_lock(state)
        })
    }

    /// Every acquire goes through here with its wait mode (`Never`: the try path).
    #[inline(never)]
    fn lock_with(&self, mode: Wait) -> Result<LockGuard<'_>, AcquireError<'_>> {
        let me = self.me()?;
        let liveness = &self.shared.liveness;
        Ok(self.state().lock(me, liveness, mode)?)
    }

    /// Blocks until the lock is held (Python: `acquire()`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] (with the guard: the lock is held, and poisoned),
    /// [`AcquireError::NotRecoverable`] (strict locks), [`AcquireError::Register`].
    #[inline]
    pub fn acquire(&self) -> Result<LockGuard<'_>, AcquireError<'_>> {
        // Fast path (inlined, so the guard is not passed back through memory): registered in this process already, and the lock is free.
        if let Some(me) = self.shared.backing.segment().participant()
            && let Some(guard) = self.state().lock_if_free(me.get(), &self.shared.liveness)
        {
            return Ok(guard);
        }
        self.lock_with(Wait::Forever)
    }

    lock_methods! {
        guard: LockGuard<'_>,
        raw: state,
        /// Takes the lock if it is free (or its holder is dead) without sleeping (Python:
        /// `acquire(block=False)`).
        try_acquire,
    }

    /// Whether some process holds the lock now (a snapshot; Python has no such method).
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }

    /// Whether the lock was made with [`LockOptions::strict_recovery`].
    pub fn is_strict(&self) -> bool {
        self.state().is_strict()
    }
}
