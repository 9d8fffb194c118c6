//! [`LockError`]: why locking a [`Value`](super::Value) or [`Array`](super::Array) did not
//! simply return its guard.

/// Why [`Value::lock`](super::Value::lock), [`Array::lock`](super::Array::lock) and the
/// methods that take the lock once ([`Value::get`](super::Value::get), ...) failed: the one
/// acquire error of the lock family ([`sync::AcquireError`](crate::sync::AcquireError)),
/// whose guard `G` is a [`ValueGuard`](super::ValueGuard) or [`ArrayGuard`](super::ArrayGuard).
///
/// Shaped like std's `PoisonError`: [`OwnerDied`](crate::sync::AcquireError::OwnerDied)
/// still carries the guard (the data may be half-written: repair it through the guard, call
/// its `mark_consistent`, carry on).
pub type LockError<G> = crate::sync::AcquireError<G>;
