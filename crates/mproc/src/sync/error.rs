//! Errors of the synchronisation family, each naming its Python counterpart.

use std::fmt;

use mproc_shm::RegisterError;

/// Why an acquire of any lock of the family did not simply return a guard `G`: a
/// [`Lock`](crate::Lock), an [`RLock`](super::RLock), a [`Condition`](super::Condition), or
/// the lock of a [`Value`](crate::Value) or [`Array`](crate::Array). One type, one set of
/// variants, one way to report a holder that died ([`OwnerDied`](Self::OwnerDied)).
///
/// Shaped like std's `PoisonError`: [`OwnerDied`](Self::OwnerDied) still carries the guard,
/// and [`into_inner`](Self::into_inner) hands it back.
#[non_exhaustive]
pub enum AcquireError<G> {
    /// The lock *was* acquired, but a holder died holding it (`EOWNERDEAD`) and nobody has
    /// vouched for the protected state since: the lock is *poisoned*, as a std `Mutex` is by
    /// a panic. Every acquirer is told so, with the guard, until the state is repaired and
    /// the guard's `mark_consistent` (or the lock's `clear_poison`) called. Python has none:
    /// its lock stays held for ever.
    OwnerDied(G),
    /// A `try_acquire` only: a live holder has it (Python's `acquire(block=False)` returning
    /// `False`).
    WouldBlock,
    /// The timeout passed first (Python's `acquire(timeout=t)` returning `False`).
    Timeout,
    /// A lock made with strict recovery ([`LockOptions::strict_recovery`](super::LockOptions::strict_recovery))
    /// whose holder died, and whose next holder released it without marking it consistent
    /// (POSIX's `ENOTRECOVERABLE`): the lock stays unusable.
    NotRecoverable,
    /// This process could not register in the object's segment (every participant entry is
    /// held by a live process).
    Register(RegisterError),
}

impl<G> AcquireError<G> {
    /// The guard of an [`OwnerDied`](Self::OwnerDied) acquisition (std's
    /// `PoisonError::into_inner`: the lock is held); `None` otherwise.
    pub fn into_inner(self) -> Option<G> {
        match self {
            AcquireError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Whether this is [`OwnerDied`](Self::OwnerDied): the lock is held and poisoned.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, AcquireError::OwnerDied(_))
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
            // `LockError` is non-exhaustive; every variant it has today is mapped above, and
            // a lock that fails in a way we do not know is treated as unusable.
            _ => AcquireError::NotRecoverable,
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
            AcquireError::OwnerDied(_) => f.write_str(
                "a holder died holding the lock and nobody has marked its state consistent since",
            ),
            AcquireError::WouldBlock => f.write_str("the lock is held by another holder"),
            AcquireError::Timeout => f.write_str("timed out waiting for the lock"),
            AcquireError::NotRecoverable => f.write_str(
                "the lock is not recoverable: a holder died and the lock was not marked consistent",
            ),
            AcquireError::Register(_) => f.write_str("cannot register in the object's segment"),
        }
    }
}

impl<G> std::error::Error for AcquireError<G> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireError::Register(e) => Some(e),
            _ => None,
        }
    }
}

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
    #[error("cannot register in the barrier's segment")]
    Register(#[source] RegisterError),
}
