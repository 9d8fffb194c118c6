//! Atomics for process management: always the real `std` ones.
//!
//! Process state (the fork epoch, "the spawn hook ran") lives in `static`s that must be
//! usable before `main` and in a forked child; `fork(2)`, `exec(2)` and `.init_array`
//! cannot be modelled by loom, so unlike the ring and lock shims there is no loom arm here.
#![allow(clippy::disallowed_types)]

// Type aliases rather than re-exports: clippy's `disallowed-types` sees through a `use`, but
// an alias is the shim's own name, so every other use in the crate goes through here.
/// std's `AtomicBool`.
pub(crate) type AtomicBool = std::sync::atomic::AtomicBool;
/// std's `AtomicI32`.
pub(crate) type AtomicI32 = std::sync::atomic::AtomicI32;
/// std's `AtomicU64`.
pub(crate) type AtomicU64 = std::sync::atomic::AtomicU64;

pub(crate) use std::sync::atomic::Ordering;
