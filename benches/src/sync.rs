//! The atomics the benches use (clippy's `disallowed-types` keeps std's atomics in this one
//! module, as in every mproc crate; the benches never run under loom, so this is plain std).
//! Type aliases, not re-exports, so the lint sees the alias everywhere else.
#![allow(clippy::disallowed_types)]

pub(crate) type AtomicU32 = std::sync::atomic::AtomicU32;
pub(crate) type AtomicU64 = std::sync::atomic::AtomicU64;
pub(crate) use std::sync::atomic::Ordering;
