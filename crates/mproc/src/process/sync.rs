//! Atomics for process management: always the real `std` ones.
//!
//! Process state (the fork epoch, "the spawn hook ran") lives in `static`s that must be
//! usable before `main` and in a forked child; `fork(2)`, `exec(2)` and `.init_array`
//! cannot be modelled by loom, so unlike the ring and lock shims there is no loom arm here.
#![allow(clippy::disallowed_types)]

pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
