//! The atomics the benches use (clippy's `disallowed-types` keeps std's atomics in this one
//! module, as in every mproc crate; the benches never run under loom, so this is plain std).
#![allow(clippy::disallowed_types)]

pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
