//! `mproc-core`: the vocabulary every mproc layer shares, in a leaf crate that makes no
//! system call (so `mproc-ring`, which must not, can use it as well as `mproc-shm`,
//! `mproc-futex` and the facade).
//!
//! | module | what |
//! |---|---|
//! | [`participant`] | [`ParticipantId`](participant::ParticipantId): the one participant id type, its maximum (`2^29 - 2`) and its layout (table index, generation) |
//! | [`sleepers`] | [`Sleepers`](sleepers::Sleepers): the one sleepers protocol (register, fence, re-check / publish, fence, look), futex calls left to the caller |
//! | [`shared`] | state in shared memory: [`SharedState`](shared::SharedState) (the `unsafe` trait for atomics-only types valid for any bit pattern), [`shared_at`](shared::shared_at) (the one checked reinterpretation of shared bytes) and [`copy_from_shared`](shared::copy_from_shared) (the one copy of payload bytes a peer may write) |
//!
//! The lower crates re-export these (`mproc_shm::ParticipantId`, `mproc_ring::ParticipantId`,
//! `mproc_futex::ParticipantId` are this type). With `RUSTFLAGS="--cfg mproc_loom"` the
//! atomics come from loom; `tests/loom_sleepers.rs` models the sleepers protocol.
//!
//! # Example
//!
//! A participant id goes into a shared word and back, and a waker that finds nobody
//! registered skips its wake; a sleeper registers before its last look at the condition:
//!
//! ```
//! use mproc_core::participant::ParticipantId;
//! use mproc_core::sleepers::Sleepers;
//!
//! let me = ParticipantId::from_parts(1, 1).expect("entry 1, first generation");
//! let word: u32 = me.get(); // what a lock or ring word records
//! assert_eq!(ParticipantId::new(word), Some(me));
//! assert_eq!(ParticipantId::new(0), None); // 0 is "nobody"
//!
//! let sleepers = Sleepers::new();
//! let mut items = Vec::new();
//! // A waker publishes, then asks whether anybody may sleep: nobody does, no wake call.
//! items.push(7);
//! assert!(!sleepers.should_wake());
//! // A sleeper registers, then re-checks before it would `futex::wait`: the item is there.
//! sleepers.register();
//! assert_eq!(items.pop(), Some(7));
//! sleepers.unregister();
//! assert_eq!(sleepers.count(), 0);
//! ```
#![cfg_attr(not(test), no_std)]

pub mod participant;
pub mod shared;
pub mod sleepers;
#[doc(hidden)]
pub mod sync;
