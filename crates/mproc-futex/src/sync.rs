//! The one place that chooses between std and loom synchronisation types.
//!
//! Library code imports atomics, the spin hint, `yield_now` and the calling thread's id from
//! here, never from `std` directly (clippy's `disallowed-types` enforces it), so that the same
//! algorithms run under loom with `RUSTFLAGS="--cfg mproc_loom"`.
#![allow(clippy::disallowed_types)]

// The atomics are mproc-core's shim (one place names them for every loom-checked crate).
pub(crate) use mproc_core::sync::{AtomicU32, AtomicU64, Ordering};

/// How many load-only iterations a lock spins before it goes to sleep. Under loom one
/// iteration is enough to explore both outcomes and keeps models small.
#[cfg(not(mproc_loom))]
pub(crate) const SPIN_LIMIT: u32 = 100;
#[cfg(mproc_loom)]
pub(crate) const SPIN_LIMIT: u32 = 1;

/// A spin-wait hint (`pause` on x86); under loom, nothing.
///
/// Only the lock's spin uses it, and that spin is bounded by [`SPIN_LIMIT`], so loom needs no
/// yield to make progress. A yield would be wrong there: loom then refuses to run the
/// spinner again until another thread has taken a step, and the holder's next step is its
/// release, so no model could ever put a waiter to sleep behind a holder (every "no lost
/// wake-up" model passed without a single sleep). Each load of the spin is a loom
/// scheduling point of its own, so a release during the spin is still explored.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(mproc_loom))]
    std::hint::spin_loop();
}

/// The calling thread's kernel id (`gettid(2)`), which the reentrant lock records as its
/// owning thread. Under loom every model thread runs on one OS thread, so a per-model counter
/// hands out small distinct ids instead.
#[cfg(not(mproc_loom))]
pub(crate) fn thread_id() -> u32 {
    crate::sys::cached_gettid()
}

#[cfg(mproc_loom)]
pub(crate) fn thread_id() -> u32 {
    loom::lazy_static! {
        static ref NEXT: AtomicU32 = AtomicU32::new(1);
    }
    loom::thread_local! {
        static TID: u32 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TID.with(|t| *t)
}

/// Defines a `const fn`, or under loom (whose atomics have no `const` constructor) a plain
/// `fn`, from one body.
macro_rules! loom_const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $t:ty),*) -> $ret:ty $body:block) => {
        #[cfg(not(mproc_loom))]
        $(#[$m])* $vis const fn $name($($arg: $t),*) -> $ret $body
        #[cfg(mproc_loom)]
        $(#[$m])* $vis fn $name($($arg: $t),*) -> $ret $body
    };
}
pub(crate) use loom_const_fn;
