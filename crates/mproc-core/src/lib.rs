//! `mproc-core`: the vocabulary every mproc layer shares, in a leaf crate that makes no
//! system call (so `mproc-ring`, which must not, can use it as well as `mproc-shm`,
//! `mproc-futex` and the facade).
//!
//! | module | what |
//! |---|---|
//! | [`participant`] | the one participant id type and its maximum |
//! | [`sleepers`] | the one sleepers protocol (register, fence, re-check / publish, fence, look) |
//! | [`shared`] | state in shared memory: the `unsafe` trait for types valid for any bit pattern, and the one audited copy of payload bytes a peer may write |
#![cfg_attr(not(test), no_std)]

pub mod participant;
pub mod shared;
pub mod sleepers;
