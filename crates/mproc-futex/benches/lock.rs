//! mproc-futex benches: uncontended lock+unlock against std, parking_lot and a robust
//! process-shared pthread mutex; lock hand-off between 2 threads and 2 processes; futex
//! wake-up latency across processes (against a pipe ping-pong).
#![allow(unsafe_code, missing_docs, clippy::disallowed_types)]

// Real processes and futexes: nothing here builds under `--cfg mproc_loom`.
#[cfg(not(mproc_loom))]
#[path = "lock/imp.rs"]
mod imp;

// Shared memory and bounded fork, as the process tests use them.
#[cfg(not(mproc_loom))]
#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    #[cfg(not(mproc_loom))]
    imp::main();
}
