//! The one place that names the atomics of the loom-checked algorithms, switched by
//! `--cfg mproc_loom`: this crate's, and (re-exported by their own `sync` shims, beside what
//! only they need) mproc-ring's and mproc-futex's.
//!
//! Library code imports only from a shim, so the same protocol runs on std atomics (heap and
//! shared memory) and on loom's model-checked ones. `clippy.toml` bans std atomics elsewhere.
//! Not part of the API (hidden): a shared implementation detail of the mproc crates.
#![allow(clippy::disallowed_types)]

// Type aliases rather than re-exports: clippy's `disallowed-types` sees through a `use`, but
// an alias is the shim's own name, so every other use goes through here.
/// A 32-bit atomic (core's, or loom's under `mproc_loom`).
#[cfg(not(mproc_loom))]
pub type AtomicU32 = core::sync::atomic::AtomicU32;
/// A 32-bit atomic (core's, or loom's under `mproc_loom`).
#[cfg(mproc_loom)]
pub type AtomicU32 = loom::sync::atomic::AtomicU32;
/// A 64-bit atomic (core's, or loom's under `mproc_loom`).
#[cfg(not(mproc_loom))]
pub type AtomicU64 = core::sync::atomic::AtomicU64;
/// A 64-bit atomic (core's, or loom's under `mproc_loom`).
#[cfg(mproc_loom)]
pub type AtomicU64 = loom::sync::atomic::AtomicU64;

#[cfg(not(mproc_loom))]
pub use core::sync::atomic::{Ordering, fence};
#[cfg(mproc_loom)]
pub use loom::sync::atomic::{Ordering, fence};
