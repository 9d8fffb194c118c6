//! [`LockError`]: why locking a [`Value`](super::Value) or [`Array`](super::Array) did not
//! simply return its guard.

use std::fmt;

use mproc_shm::RegisterError;

use crate::lock::AcquireError;

/// Why [`Value::lock`](super::Value::lock), [`Array::lock`](super::Array::lock) and the
/// methods that take the lock once ([`Value::get`](super::Value::get), ...) failed.
///
/// Shaped like std's `PoisonError`: [`OwnerDied`](Self::OwnerDied) still carries the guard
/// `G` (a [`ValueGuard`](super::ValueGuard) or [`ArrayGuard`](super::ArrayGuard)).
#[non_exhaustive]
pub enum LockError<G> {
    /// The lock *was* acquired, from a holder that died holding it (`EOWNERDEAD`; Python has
    /// none): the data may be half-written. Repair it through the guard, call its
    /// `mark_consistent`, carry on.
    OwnerDied(G),
    /// `try_lock` only: a live process holds the lock.
    WouldBlock,
    /// The timeout passed first.
    Timeout,
    /// A holder died and its successor unlocked without marking the data consistent
    /// (`ENOTRECOVERABLE`): the lock stays unusable.
    NotRecoverable,
    /// This process could not register in the lock's segment.
    Register(RegisterError),
}

impl<G> LockError<G> {
    /// The guard of an [`OwnerDied`](Self::OwnerDied) acquisition (like
    /// `PoisonError::into_inner`); `None` otherwise.
    pub fn into_inner(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Maps a [`Lock`](crate::Lock) acquisition error, wrapping its guard with `wrap`.
    pub(crate) fn from_acquire<'a>(
        e: AcquireError<'a>,
        wrap: impl FnOnce(crate::LockGuard<'a>) -> G,
    ) -> Self {
        match e {
            AcquireError::OwnerDied(g) => LockError::OwnerDied(wrap(g)),
            AcquireError::WouldBlock => LockError::WouldBlock,
            AcquireError::Timeout => LockError::Timeout,
            AcquireError::NotRecoverable => LockError::NotRecoverable,
            AcquireError::Register(e) => LockError::Register(e),
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
            LockError::Register(e) => f.debug_tuple("Register").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "the previous holder died holding the lock (the data may be half-written)",
            ),
            LockError::WouldBlock => f.write_str("the lock is held by another process"),
            LockError::Timeout => f.write_str("timed out waiting for the lock"),
            LockError::NotRecoverable => f.write_str(
                "the lock is not recoverable: a holder died and the data was not marked consistent",
            ),
            LockError::Register(e) => write!(f, "cannot register in the lock's segment: {e}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}
