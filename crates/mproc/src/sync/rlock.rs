//! [`RLock`]: Python's `multiprocessing.RLock`, a reentrant robust lock owned by one thread of
//! one process, over `mproc-futex`'s [`RawRLock`].
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mproc_futex::{Deadline, RawRLock, Wait};

use super::backing::{Backing, Kind, Shared};
use super::error::{AcquireError, NotOwner};
use super::handle::shared_handle;
use crate::storage::object::OpenError;

const KIND: Kind = Kind {
    tag: "RawRLock/v1",
    name: "RLock",
    size: size_of::<RawRLock>(),
    align: align_of::<RawRLock>(),
};

/// Holds one level of an [`RLock`]; releases that level when dropped. Not `Send`: the lock
/// belongs to the thread that took it.
pub type RLockGuard<'a> = mproc_futex::RLockGuard<'a>;

/// A reentrant lock shared between processes (Python's `multiprocessing.RLock`).
///
/// The owner is one *thread* of one process: that thread may acquire it again (each
/// acquisition returns a guard; the lock is free when every guard is dropped); any other
/// thread or process waits. A forked child never owns its parent's lock.
///
/// If the owning process dies holding it, the next acquirer takes it over and gets
/// [`AcquireError::OwnerDied`] carrying the guard (the count restarts at 1); call
/// [`RLockGuard::mark_consistent`] after repairing the protected state, or the lock becomes
/// unusable ([`AcquireError::NotRecoverable`]) when that guard is dropped. A *thread* that
/// ends while holding it is not detected (its process lives), as in Python.
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
#[derive(Clone)]
pub struct RLock {
    shared: Arc<Shared>,
}

shared_handle!(RLock, KIND);

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.raw().raw().owner())
            .field("count", &self.raw().count())
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
    pub fn new() -> Result<RLock, OpenError> {
        // All-zero bytes are an unlocked `RawRLock`.
        RLock::from_shared(Shared::new(Backing::new(&KIND, |_| ())?))
    }

    /// A new reentrant lock under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]) (see the [module docs](super) for
    /// names).
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] for an invalid or existing name, or another segment error.
    pub fn create_named(name: &str) -> Result<RLock, OpenError> {
        let backing = Backing::create_named(&KIND, name, |_| ())?;
        RLock::from_shared(Shared::new(backing))
    }

    fn from_shared(shared: Arc<Shared>) -> Result<RLock, OpenError> {
        Ok(RLock { shared })
    }

    fn raw(&self) -> &RawRLock {
        // SAFETY: the backing was made for KIND, whose state is one `RawRLock` (atomics,
        // valid for any bytes, only accessed atomically).
        unsafe { self.shared.state::<RawRLock>() }
    }

    fn me(&self) -> Result<u32, AcquireError<RLockGuard<'_>>> {
        self.shared.backing.me().map_err(AcquireError::Register)
    }

    /// Every acquire goes through here with its wait mode (`Never`: the try path).
    fn lock_with(&self, mode: Wait) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        let me = self.me()?;
        let liveness = &self.shared.liveness;
        Ok(self.raw().lock(me, liveness, mode)?)
    }

    /// Blocks until this thread holds the lock (at once if it already does) (Python:
    /// `acquire()`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] (with the guard), [`AcquireError::NotRecoverable`],
    /// [`AcquireError::Register`].
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock_with(Wait::Forever)
    }

    /// Blocks at most `timeout` (Python: `acquire(timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::Timeout`], and as for [`acquire`](Self::acquire).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock_with(Wait::Until(Deadline::after(timeout)))
    }

    /// Takes the lock if it is free, already ours, or its owner is dead, without sleeping
    /// (Python: `acquire(block=False)`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::WouldBlock`], and as for [`acquire`](Self::acquire).
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock_with(Wait::Never)
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
        self.raw().release(me).map_err(|_| NotOwner)
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned(&self) -> bool {
        match self.shared.backing.segment().participant() {
            Some(me) => self.raw().is_owned_by_me(me.get()),
            None => false,
        }
    }

    /// Whether anybody holds it now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw().is_locked()
    }

    /// The recursion depth (meaningful to the owning thread; 0 when free) — the number in
    /// Python's `repr`, `<RLock(MainProcess, 2)>`.
    pub fn count(&self) -> u32 {
        self.raw().count()
    }
}
