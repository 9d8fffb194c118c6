//! Errors of the synchronisation family, each naming its Python counterpart.

use std::fmt;

use mproc_shm::RegisterError;

/// Why an acquire of any lock of the family did not simply return a guard `G`: a
/// [`Lock`](crate::Lock), an
/// [`RLock`](super::RLock), a [`Condition`](super::Condition), or the lock of a
/// [`Value`](crate::Value) or [`Array`](crate::Array) (as
/// [`shared::LockError`](crate::shared::LockError)). One type, one set of variants.
///
/// Shaped like std's `PoisonError`: [`OwnerDied`](Self::OwnerDied) still carries the guard.
#[non_exhaustive]
pub enum AcquireError<G> {
    /// The lock *was* acquired, from a holder that died holding it (`EOWNERDEAD`; Python has
    /// none: its lock stays held for ever). Repair the protected state, call the guard's
    /// `mark_consistent`, carry on.
    OwnerDied(G),
    /// A `try_acquire` only: a live holder has it (Python's `acquire(block=False)` returning
    /// `False`).
    WouldBlock,
    /// The timeout passed first (Python's `acquire(timeout=t)` returning `False`).
    Timeout,
    /// A holder died and its successor released the lock without marking it consistent
    /// (`ENOTRECOVERABLE`); the lock stays unusable.
    NotRecoverable,
    /// This process could not register in the object's segment (every participant entry is
    /// held by a live process).
    Register(RegisterError),
}

impl<G> AcquireError<G> {
    /// The guard of an [`OwnerDied`](Self::OwnerDied) acquisition (like
    /// `PoisonError::into_inner`); `None` otherwise.
    pub fn into_inner(self) -> Option<G> {
        match self {
            AcquireError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Maps the carried guard.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> AcquireError<H> {
        match self {
            AcquireError::OwnerDied(g) => AcquireError::OwnerDied(f(g)),
            AcquireError::WouldBlock => AcquireError::WouldBlock,
            AcquireError::Timeout => AcquireError::Timeout,
            AcquireError::NotRecoverable => AcquireError::NotRecoverable,
            AcquireError::Register(e) => AcquireError::Register(e),
        }
    }
}

impl<G> From<mproc_futex::LockError<G>> for AcquireError<G> {
    fn from(e: mproc_futex::LockError<G>) -> Self {
        match e {
            mproc_futex::LockError::OwnerDied(g) => AcquireError::OwnerDied(g),
            mproc_futex::LockError::WouldBlock => AcquireError::WouldBlock,
            mproc_futex::LockError::Timeout => AcquireError::Timeout,
            mproc_futex::LockError::NotRecoverable => AcquireError::NotRecoverable,
        }
    }
}

impl<G> fmt::Debug for AcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            AcquireError::WouldBlock => f.write_str("WouldBlock"),
            AcquireError::Timeout => f.write_str("Timeout"),
            AcquireError::NotRecoverable => f.write_str("NotRecoverable"),
            AcquireError::Register(e) => f.debug_tuple("Register").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for AcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::OwnerDied(_) => f.write_str("the previous holder died holding the lock"),
            AcquireError::WouldBlock => f.write_str("the lock is held by another holder"),
            AcquireError::Timeout => f.write_str("timed out waiting for the lock"),
            AcquireError::NotRecoverable => f.write_str(
                "the lock is not recoverable: a holder died and the lock was not marked consistent",
            ),
            AcquireError::Register(e) => write!(f, "cannot register in the object's segment: {e}"),
        }
    }
}

impl<G> std::error::Error for AcquireError<G> {}

/// [`RLock::release`](super::RLock::release) by a thread that does not hold the lock —
/// another thread, another process, or nobody holds it (Python's
/// `AssertionError('attempt to release recursive lock not owned by thread')`;
/// `threading.RLock` raises `RuntimeError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attempt to release a recursive lock not owned by this thread")]
pub struct NotOwner;

/// Why [`Barrier::wait`](super::Barrier::wait) did not pass (Python's
/// `threading.BrokenBarrierError` for the first three).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier is broken: aborted, reset while we waited, another waiter timed out, the
    /// action panicked, or a party died while waiting at it.
    #[error("barrier is broken")]
    Broken,
    /// Our timeout passed; the barrier is now broken for everybody (as in Python).
    #[error("timed out waiting at the barrier; the barrier is now broken")]
    Timeout,
    /// This process could not register in the barrier's segment.
    #[error("cannot register in the barrier's segment: {0}")]
    Register(RegisterError),
}
