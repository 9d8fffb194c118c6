//! The crate's one door to atomics (DESIGN.md, "Loom, concretely").
//!
//! Library code takes its atomics from here, never from `std` directly (clippy's
//! `disallowed-types` enforces it), so every atomic in the crate is greppable from one place.
//! The types are `#[repr(transparent)]` wrappers that deref to std's atomics, so they have
//! exactly the layout of the integer they overlay.
//!
//! There is deliberately no loom arm: every atomic in this crate is either overlaid on shared
//! bytes (segment header, participant table, arena), which loom's types cannot be (they are
//! not layout-compatible and are built only by `new()`), or a process-global touched by a
//! `pthread_atfork` child handler, which loom cannot model either. The concurrency here is
//! across processes (fork, OFD locks, mmap); it is covered by multi-process tests, a
//! property test against a model, and fuzzing.
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
