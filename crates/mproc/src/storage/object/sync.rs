//! Atomics for object headers in shared memory: `#[repr(transparent)]` wrappers that deref
//! to std's atomics (clippy's `disallowed-types` keeps std's atomics out of everywhere else).
//!
//! There is deliberately no loom arm: object headers and holder tables are overlaid on the
//! bytes of `mproc-shm` segments shared between processes, which loom's atomics cannot be
//! (not layout-compatible, built only by `new()`), and the concurrency here is across
//! processes (fork, exec, unrelated openers). It is covered by multi-process tests; the
//! rings and locks inside an object keep their own loom-checked shims.
#![allow(clippy::disallowed_types)]

use std::ops::Deref;

pub(crate) use std::sync::atomic::Ordering;

macro_rules! atomic {
    ($name:ident, $std:ty) => {
        /// A std atomic, layout-identical to the integer it overlays.
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub(crate) struct $name($std);

        impl Deref for $name {
            type Target = $std;
            #[inline]
            fn deref(&self) -> &$std {
                &self.0
            }
        }
    };
}

atomic!(AtomicU32, std::sync::atomic::AtomicU32);
atomic!(AtomicU64, std::sync::atomic::AtomicU64);
