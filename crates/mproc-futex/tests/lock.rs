//! RawLock in one process: smoke, errors, deadlines, system-call economy, threads.
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs
