//! The trait impls every shared-memory primitive of this crate has in the same form.
//!
//! Each primitive (`Event`, `RawLock`, `Semaphore`, ...) is a `repr(C)` struct of atomics
//! and a zero-sized waiter marker, generic over its [`Waiter`](crate::waiter::Waiter)
//! (and, for the ones with a ledger, over its entry count). [`shared_primitive!`] writes its
//! [`SharedState`](mproc_core::shared::SharedState) impl and, where the all-zero state is
//! built by a constructor, its `Default`; what differs per type (the argument that every bit
//! pattern is valid) stays at the invocation, as its `// SAFETY:` comment.

/// Implements `SharedState` for a primitive (not under `mproc_loom`, whose atomics are not
/// valid for any bytes) and, with `default: ctor(args)`, `Default` as `Self::ctor(args)`.
///
/// Precede every invocation with a `// SAFETY:` comment arguing that the type is `repr(C)`,
/// every bit pattern of it is a valid value, every access to it is atomic, and it is `Sync`.
///
/// ```text
/// // SAFETY: `repr(C)`, one `AtomicU32` and a zero-sized marker; `Sync`.
/// shared_primitive!(Event<W>, default: new_for_waiter());
/// shared_primitive!(Barrier<W, const N>);
/// ```
macro_rules! shared_primitive {
    ($ty:ident<W $(, const $n:ident)?>) => {
        // SAFETY: the invocation's SAFETY comment argues it (layout, every bit pattern
        // valid, atomic access, `Sync`).
        #[cfg(not(mproc_loom))]
        #[allow(unsafe_code)]
        unsafe impl<W: $crate::waiter::Waiter $(, const $n: usize)?>
            mproc_core::shared::SharedState for $ty<W $(, $n)?>
        {
        }
    };
    ($ty:ident<W>, default: $ctor:ident($($arg:expr),*)) => {
        $crate::primitive::shared_primitive!($ty<W>);

        impl<W: $crate::waiter::Waiter> Default for $ty<W> {
            fn default() -> Self {
                Self::$ctor($($arg),*)
            }
        }
    };
}
pub(crate) use shared_primitive;

/// Implements `Debug` for a primitive as a struct of its snapshot getters: each
/// `field: getter` shows `self.getter()` as `field`; a trailing `..` marks state not shown
/// (`finish_non_exhaustive`).
///
/// ```text
/// debug_via_getters!(Semaphore<W> { permits: value, .. });
/// debug_via_getters!(BoundedSemaphore<W> { permits: value, bound: bound });
/// ```
macro_rules! debug_via_getters {
    ($ty:ident<W $(, const $n:ident)?> { $($field:ident: $getter:ident,)* .. }) => {
        impl<W: $crate::waiter::Waiter $(, const $n: usize)?> std::fmt::Debug for $ty<W $(, $n)?> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$getter()))*
                    .finish_non_exhaustive()
            }
        }
    };
    ($ty:ident<W $(, const $n:ident)?> { $($field:ident: $getter:ident),* $(,)? }) => {
        impl<W: $crate::waiter::Waiter $(, const $n: usize)?> std::fmt::Debug for $ty<W $(, $n)?> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$getter()))*
                    .finish()
            }
        }
    };
}
pub(crate) use debug_via_getters;
