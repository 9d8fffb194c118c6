//! Atomics for object headers in shared memory: always the real `std` ones.
//!
//! Object headers live in `mproc-shm` segments shared between processes (fork, exec,
//! unrelated openers); loom cannot model `mmap` or other processes, so unlike the ring and
//! lock shims there is no loom arm here. The rings and locks inside an object keep their own
//! loom-checked shims.
#![allow(clippy::disallowed_types)]

pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
