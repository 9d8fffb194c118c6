//! What [`Value`](super::Value) and [`Array`](super::Array) share: taking their lock and
//! lending the data under it, blocking, timed or not at all (one macro, so both keep only
//! their own guard), and the named lock that goes with a named one.

use crate::storage::names;
use crate::storage::object::{CreateError, OpenError};
use crate::sync::Lock;

/// Suffix of a named value's or array's lock.
const LOCK_SUFFIX: &str = ".lock";

fn lock_name(name: &str) -> String {
    format!("{name}{LOCK_SUFFIX}")
}

/// Makes the data named `name` with `create`, under a new lock named `name` + `".lock"`.
/// The user's name is checked first, so that its errors are about it, not about the lock's;
/// nothing is left under either name on failure.
pub(super) fn create_named_with_lock<D>(
    name: &str,
    create: impl FnOnce() -> Result<D, CreateError>,
) -> Result<(D, Lock), CreateError> {
    names::shm_name(name)?;
    let lock = Lock::create_named(&lock_name(name))?;
    match create() {
        Ok(data) => Ok((data, lock)),
        Err(e) => {
            let _ = Lock::unlink_named(&lock_name(name));
            Err(e)
        }
    }
}

/// Opens the data named `name` with `open`, then its lock.
pub(super) fn open_named_with_lock<D>(
    name: &str,
    open: impl FnOnce() -> Result<D, OpenError>,
) -> Result<(D, Lock), OpenError> {
    let data = open()?;
    Ok((data, Lock::open_named(&lock_name(name))?))
}

/// Removes the names of the data `name` and of its lock. Both are tried; the data's error
/// comes first.
pub(super) fn unlink_named_with_lock(name: &str) -> Result<(), OpenError> {
    let data = names::unlink(name);
    let lock = Lock::unlink_named(&lock_name(name));
    data.and(lock)
}

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
