//! The one place that names atomics in this crate, switched by `--cfg mproc_loom`.
//!
//! Library code imports only from here, so the same protocol runs on std atomics (heap and
//! shared memory) and on loom's model-checked ones. `clippy.toml` bans std atomics elsewhere.
#![allow(clippy::disallowed_types)]

// Type aliases rather than re-exports: clippy's `disallowed-types` sees through a `use`, but
// an alias is the shim's own name, so every other use in the crate goes through here.
/// A 32-bit atomic (core's, or loom's under `mproc_loom`).
#[cfg(not(mproc_loom))]
pub(crate) type AtomicU32 = core::sync::atomic::AtomicU32;
/// A 32-bit atomic (core's, or loom's under `mproc_loom`).
#[cfg(mproc_loom)]
pub(crate) type AtomicU32 = loom::sync::atomic::AtomicU32;

#[cfg(not(mproc_loom))]
pub(crate) use core::sync::atomic::{Ordering, fence};
#[cfg(mproc_loom)]
pub(crate) use loom::sync::atomic::{Ordering, fence};
