//! The crate's one door to atomics (DESIGN.md, "Loom, concretely").
//!
//! Library code takes its atomics from here, never from `std` directly (clippy's
//! `disallowed-types` enforces it), so every atomic in the crate is greppable from one place.
//!
//! Two families:
//!
//! * [`AtomicU32`], [`AtomicU64`], [`AtomicI32`]: *overlay* atomics, `#[repr(transparent)]`
//!   wrappers that deref to std's atomics, so they have exactly the layout of the integer
//!   they overlay. Every atomic in shared memory is one of these (segment header,
//!   participant table, arena words in place), and they stay std's under `--cfg mproc_loom`
//!   too: loom's types cannot be overlaid on bytes (they are not layout-compatible and are
//!   built only by `new()`). The segment mapping, the participants' OFD locks and the
//!   `pthread_atfork` handlers are cross-process machinery loom cannot model anyway; they
//!   are covered by multi-process tests, a property test against a model, and fuzzing.
//! * `ModelAtomicU64` (`--cfg mproc_loom` only): loom's `AtomicU64`, built with `new()` on
//!   the heap. The arena's algorithm is written over the word abstraction in
//!   [`words`](crate::words), whose model memory is an array of these; that is the loom arm
//!   (`tests/loom_arena.rs`).
#![allow(clippy::disallowed_types)]

use core::ops::Deref;

pub(crate) use core::hint::spin_loop;
pub(crate) use core::sync::atomic::Ordering;

macro_rules! atomic {
    ($name:ident, $std:ty, $int:ty) => {
        /// A std atomic, layout-identical to the integer it overlays.
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub(crate) struct $name($std);

        impl $name {
            #[allow(dead_code, reason = "not every width is built by value")]
            pub(crate) const fn new(v: $int) -> Self {
                $name(<$std>::new(v))
            }
        }

        impl Deref for $name {
            type Target = $std;
            #[inline]
            fn deref(&self) -> &$std {
                &self.0
            }
        }
    };
}

atomic!(AtomicI32, core::sync::atomic::AtomicI32, i32);
atomic!(AtomicU32, core::sync::atomic::AtomicU32, u32);
atomic!(AtomicU64, core::sync::atomic::AtomicU64, u64);

/// loom's 64-bit atomic, for model memory built with `new()` (see the module docs). An alias,
/// not a re-export, so clippy's `disallowed-types` keeps seeing this shim as its only door.
#[cfg(mproc_loom)]
pub(crate) type ModelAtomicU64 = loom::sync::atomic::AtomicU64;
