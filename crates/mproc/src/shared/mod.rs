//! Shared plain data: Python's `multiprocessing.sharedctypes` (`Value`, `Array`, `RawValue`,
//! `RawArray`), and the atomics shim the shared counters use.

pub(crate) mod sync;
