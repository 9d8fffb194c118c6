//! Atomics for shared values, counters and the unfinished-task word of a `JoinableQueue`:
//! always the real `std` ones.
//!
//! Like the object header shim (`object::sync`), there is no loom arm: these words are
//! overlaid on the bytes of `mproc-shm` segments shared between processes, which loom's
//! atomics cannot be (not layout-compatible, built only by `new()`), and the concurrency they
//! serve is across processes, covered by multi-process tests.
#![allow(clippy::disallowed_types)]

// Type aliases rather than re-exports: clippy's `disallowed-types` sees through a `use`, but
// an alias is the shim's own name, so every other use in the crate goes through here.
/// std's `AtomicU8`.
pub(crate) type AtomicU8 = std::sync::atomic::AtomicU8;
/// std's `AtomicU16`.
pub(crate) type AtomicU16 = std::sync::atomic::AtomicU16;
/// std's `AtomicU32` (also the futex word type of `mproc_futex::futex`).
pub(crate) type AtomicU32 = std::sync::atomic::AtomicU32;
/// std's `AtomicU64`.
pub(crate) type AtomicU64 = std::sync::atomic::AtomicU64;
/// std's `AtomicI8`.
pub(crate) type AtomicI8 = std::sync::atomic::AtomicI8;
/// std's `AtomicI16`.
pub(crate) type AtomicI16 = std::sync::atomic::AtomicI16;
/// std's `AtomicI32`.
pub(crate) type AtomicI32 = std::sync::atomic::AtomicI32;
/// std's `AtomicI64`.
pub(crate) type AtomicI64 = std::sync::atomic::AtomicI64;

pub(crate) use std::sync::atomic::Ordering;
