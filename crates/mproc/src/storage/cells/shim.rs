//! Atomics for pool cell headers and the synchronisation objects' own words: always the
//! real `std` ones.
//!
//! Like the object header shim (`object::sync`), there is no loom arm: these words are
//! overlaid on the bytes of `mproc-shm` segments shared between processes, which loom's
//! atomics cannot be (not layout-compatible, built only by `new()`); the algorithms inside
//! the cells (`mproc-futex`'s primitives) are loom-checked in their own crate, and what is
//! here is covered by multi-process tests.
#![allow(clippy::disallowed_types)]

// Type aliases rather than re-exports: clippy's `disallowed-types` sees through a `use`, but
// an alias is the shim's own name, so every other use in the crate goes through here.
/// std's `AtomicU32` (also the futex word type of `mproc_futex::futex`).
pub(crate) type AtomicU32 = std::sync::atomic::AtomicU32;

pub(crate) use std::sync::atomic::Ordering;
