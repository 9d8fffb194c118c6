//! What the three robust locks ([`Lock`](super::Lock), [`RLock`](super::RLock) and
//! [`Condition`](super::Condition)) share above their own `lock_with`: the timed and the
//! non-blocking acquire, and poisoning. One macro, so each type keeps only what differs.

/// Implements `acquire_timeout`, `try_acquire`, `is_poisoned`, `clear_poison` and the private
/// `me` for a lock type with a `shared: Arc<Shared>` field, a `fn lock_with(&self, Wait) ->
/// Result<$guard, AcquireError<$guard>>` and a `fn $raw(&self)` returning its robust lock
/// word (a `RawLock` or `RawRLock`). The try-acquire docs are the type's own (what "free"
/// means differs).
macro_rules! lock_methods {
    (guard: $guard:ty, raw: $raw:ident, $(#[$try_doc:meta])* try_acquire $(,)?) => {
        /// This process's participant id in the lock's segment (registering on first use,
        /// e.g. in a forked child that inherited the handle).
        fn me(&self) -> Result<u32, crate::sync::AcquireError<$guard>> {
            self.shared
                .backing
                .me()
                .map_err(crate::sync::AcquireError::Register)
        }

        /// Blocks at most `timeout` (Python: `acquire(timeout=t)`); the deadline is absolute
        /// on the monotonic clock, so spurious wake-ups never stretch it.
        ///
        /// # Errors
        ///
        /// [`AcquireError::Timeout`](crate::sync::AcquireError::Timeout), and as for
        /// [`acquire`](Self::acquire).
        pub fn acquire_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> Result<$guard, crate::sync::AcquireError<$guard>> {
            self.lock_with(mproc_futex::Wait::Until(mproc_futex::Deadline::after(timeout)))
        }

        $(#[$try_doc])*
        ///
        /// # Errors
        ///
        /// [`AcquireError::WouldBlock`](crate::sync::AcquireError::WouldBlock), and as for
        /// [`acquire`](Self::acquire).
        pub fn try_acquire(&self) -> Result<$guard, crate::sync::AcquireError<$guard>> {
            self.lock_with(mproc_futex::Wait::Never)
        }

        /// Whether a holder died and nobody has marked the lock consistent since (std's
        /// `Mutex::is_poisoned`): the next acquire reports
        /// [`AcquireError::OwnerDied`](crate::sync::AcquireError::OwnerDied).
        pub fn is_poisoned(&self) -> bool {
            self.$raw().is_poisoned()
        }

        /// Clears the poison a dead holder left (std's `Mutex::clear_poison`): the next
        /// acquire succeeds cleanly. Call it once the protected state is repaired, with or
        /// without the lock held. Does nothing to a strict lock that is already
        /// [`NotRecoverable`](crate::sync::AcquireError::NotRecoverable): that state is final.
        pub fn clear_poison(&self) {
            self.$raw().clear_poison();
        }
    };
}

pub(crate) use lock_methods;
