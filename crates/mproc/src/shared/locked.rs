//! What [`Value`](super::Value) and [`Array`](super::Array) share: taking their lock and
//! lending the data under it, blocking, timed or not at all. One macro, so both keep only
//! their own guard.

/// Implements `lock`, `lock_timeout` and `try_lock` for a type with a `lock: Lock` field and
/// a `fn guard<'a>(&'a self, LockGuard<'a>) -> $guard` that lends the data under it. The
/// docs of `lock` are the type's own (what it lends).
macro_rules! locked_access {
    ($ty:ident, $guard:ident, $(#[$lock_doc:meta])* lock $(,)?) => {
        /// Every lock goes through here: the lock's own result, with its guard (also the one
        /// `OwnerDied` carries) turned into a guard of the data.
        fn lend<'a>(
            &'a self,
            r: Result<
                crate::sync::LockGuard<'a>,
                crate::sync::AcquireError<crate::sync::LockGuard<'a>>,
            >,
        ) -> Result<$guard<'a, T>, crate::sync::AcquireError<$guard<'a, T>>> {
            r.map(|g| self.guard(g))
                .map_err(|e| e.map(|g| self.guard(g)))
        }

        $(#[$lock_doc])*
        ///
        /// # Errors
        ///
        /// [`AcquireError::OwnerDied`](crate::sync::AcquireError::OwnerDied) (with the
        /// guard: the lock is held, the data may be half-written; the lock stays poisoned
        /// until marked), [`AcquireError::NotRecoverable`](crate::sync::AcquireError::NotRecoverable)
        /// (a strict lock), [`AcquireError::Register`](crate::sync::AcquireError::Register).
        pub fn lock(&self) -> Result<$guard<'_, T>, crate::sync::AcquireError<$guard<'_, T>>> {
            self.lend(self.lock.acquire())
        }

        #[doc = concat!("As [`", stringify!($ty), "::lock`], waiting at most `timeout`.")]
        ///
        /// # Errors
        ///
        /// [`AcquireError::Timeout`](crate::sync::AcquireError::Timeout), and as
        #[doc = concat!("[`", stringify!($ty), "::lock`].")]
        pub fn lock_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> Result<$guard<'_, T>, crate::sync::AcquireError<$guard<'_, T>>> {
            self.lend(self.lock.acquire_timeout(timeout))
        }

        #[doc = concat!("As [`", stringify!($ty), "::lock`], without waiting.")]
        ///
        /// # Errors
        ///
        /// [`AcquireError::WouldBlock`](crate::sync::AcquireError::WouldBlock), and as
        #[doc = concat!("[`", stringify!($ty), "::lock`].")]
        pub fn try_lock(&self) -> Result<$guard<'_, T>, crate::sync::AcquireError<$guard<'_, T>>> {
            self.lend(self.lock.try_acquire())
        }
    };
}

pub(crate) use locked_access;
