//! [`RLock`]: Python's `multiprocessing.RLock`, a reentrant robust lock owned by one thread of
//! one process, over `mproc-futex`'s [`RawRLock`].

use mproc_core::shared::{SharedBytes, shared_at};
use std::fmt;

use mproc_futex::{RawRLock, Wait};

use super::acquire::lock_methods;
use super::backing::Kind;
use super::error::{AcquireError, NotOwner};
use super::handle::shared_handle;
use super::lock::LockOptions;
use crate::storage::object::CreateError;

const KIND: Kind = Kind::of::<RawRLock>("RawRLock/v1", "RLock");

/// Holds one level of an [`RLock`]; releases that level when dropped. Not `Send`: the lock
/// belongs to the thread that took it.
pub type RLockGuard<'a> = mproc_futex::RLockGuard<'a>;

shared_handle! {
    /// A reentrant lock shared between processes (Python's `multiprocessing.RLock`).
    ///
    /// The owner is one *thread* of one process: that thread may acquire it again (each
    /// acquisition returns a guard; the lock is free when every guard is dropped); any other
    /// thread or process waits. A forked child never owns its parent's lock.
    ///
    /// If the owning process dies holding it, the next acquirer takes it over and gets
    /// [`AcquireError::OwnerDied`] carrying the guard (the count restarts at 1); call
    /// [`RLockGuard::mark_consistent`] after repairing the protected state. Otherwise the lock
    /// stays poisoned (every acquirer is told `OwnerDied`, with the guard) until marked or
    /// [`clear_poison`](Self::clear_poison)ed, as a [`Lock`](crate::Lock) does (see its docs for
    /// std's rule and mproc's); a lock made with
    /// [`LockOptions::strict_recovery`](super::LockOptions::strict_recovery) becomes unusable
    /// ([`AcquireError::NotRecoverable`]) instead. A *thread* that ends while holding it is not
    /// detected (its process lives), as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::RLock;
    ///
    /// let lock = RLock::new()?;
    /// let outer = lock.acquire().expect("free");
    /// let inner = lock.acquire().expect("ours"); // the same thread may re-enter
    /// assert_eq!(lock.count(), 2);
    /// drop(inner);
    /// drop(outer);
    /// assert!(!lock.is_locked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct RLock;
    kind: KIND,
    state: RawRLock,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.state().raw().owner())
            .field("count", &self.state().count())
            .finish()
    }
}

impl RLock {
    /// A new, unlocked reentrant lock in the small-object [cell store](crate::storage::cells) (Python:
    /// `RLock()`).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new() -> Result<RLock, CreateError> {
        // All-zero bytes are an unlocked `RawRLock`.
        RLock::create(None, |_| ())
    }

    /// A new, unlocked reentrant lock with `options` (e.g. strict recovery).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_options(options: LockOptions) -> Result<RLock, CreateError> {
        let init = |state: &SharedBytes| {
            shared_at::<RawRLock>(state, 0)
                .expect("the state is a RawRLock")
                .raw()
                .init_unlocked(options.is_strict_recovery());
        };
        RLock::create(None, init)
    }

    /// A new reentrant lock under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]) (see the [module docs](super) for
    /// names).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str) -> Result<RLock, CreateError> {
        RLock::create(Some(name), |_| ())
    }

    /// Every acquire goes through here with its wait mode (`Never`: the try path).
    fn lock_with(&self, mode: Wait) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        let me = self.me()?;
        let liveness = &self.shared.liveness;
        Ok(self.state().lock(me, liveness, mode)?)
    }

    /// Blocks until this thread holds the lock (at once if it already does) (Python:
    /// `acquire()`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] (with the guard: held, and poisoned),
    /// [`AcquireError::NotRecoverable`] (strict locks), [`AcquireError::Register`].
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock_with(Wait::Forever)
    }

    lock_methods! {
        guard: RLockGuard<'_>,
        raw: state,
        /// Takes the lock if it is free, already ours, or its owner is dead, without sleeping
        /// (Python: `acquire(block=False)`).
        try_acquire,
    }

    /// Releases one level held by the calling thread without a guard — Python's unpaired
    /// `release()`, for a level whose guard was given up with `std::mem::forget`.
    ///
    /// # Errors
    ///
    /// [`NotOwner`] if the calling thread does not hold the lock (another thread or process
    /// does, or nobody) — Python's `AssertionError`/`RuntimeError`.
    pub fn release(&self) -> Result<(), NotOwner> {
        let me = self.shared.backing.me().map_err(|_| NotOwner)?;
        self.state().release(me).map_err(|_| NotOwner)
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned(&self) -> bool {
        match self.shared.backing.segment().participant() {
            Some(me) => self.state().is_owned_by_me(me.get()),
            None => false,
        }
    }

    /// Whether anybody holds it now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }

    /// The recursion depth (meaningful to the owning thread; 0 when free) — the number in
    /// Python's `repr`, `<RLock(MainProcess, 2)>`.
    pub fn count(&self) -> u32 {
        self.state().count()
    }
}
