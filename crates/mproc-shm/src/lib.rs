//! `mproc-shm`: shared-memory segments, participants with kernel-released liveness, and a
//! crash-safe shared-heap arena — the bottom layer of mproc (see DESIGN.md).
//!
//! # Map
//!
//! | item | what it is |
//! |---|---|
//! | [`SegmentOptions`] → [`Segment`] | create anonymous (memfd, sealed) or named (`/dev/shm`, `O_EXCL\|O_NOFOLLOW`, 0600) segments; open by name or descriptor, with every header field checked |
//! | [`SegmentError`], [`NameError`] | one variant per refusal, with messages a user can act on |
//! | [`name`]: [`ShmName`], [`Namespace`], [`probe`](name::probe) → [`NameState`] | what a name may be (checked before any prefix is added), and whether a name is ready, being created, or stale (its creator died mid-creation) |
//! | [`Region`] | the user region after the header and participant table, 128-byte aligned |
//! | [`Offset<T>`], [`OffsetError`] | typed offsets stored in shared memory; resolving checks bounds and alignment |
//! | [`participant`]: [`ParticipantId`] (mproc-core's), [`RegisterError`] | one entry per attached process; `is_alive` asks the kernel (an OFD lock), exact across pid reuse and namespaces |
//! | [`arena`]: [`Arena`], [`ArenaError`], [`ArenaStats`] | coalescing (buddy) shared-heap allocator inside a byte range of a segment; a SIGKILL anywhere in a call is rolled back by the next caller |
//!
//! Segment layout: header (128 B) at offset 0, then the participant table (16 B per entry),
//! then the user region (see [`REGION_ALIGN`]). Two ranges of file offsets far past the data
//! are reserved for OFD locks: the creator lock ([`CREATOR_LOCK`], held from creation to
//! READY; a not-READY segment whose creator lock is free is *stale*, see [`name`]) and the
//! participants' liveness locks ([`participant::LOCK_BASE`]). Everything read from shared memory is
//! treated as untrusted: a corrupt peer can cause an error, never undefined behaviour.
//!
//! # Example
//!
//! ```
//! use mproc_shm::{Arena, Offset, SegmentOptions};
//! use std::sync::Arc;
//!
//! // Python: shm = SharedMemory(create=True, size=1 << 20)
//! let seg = Arc::new(SegmentOptions::new().len(1 << 20).fingerprint(0xfeed).create_anonymous()?);
//! let me = seg.register()?;
//! assert!(seg.is_alive(me.get()));
//!
//! // Carve the region: a counter at its start, an arena after it.
//! let region = seg.region();
//! let counter: Offset<u64> = Offset::new(region.offset());
//! let ptr = seg.resolve(counter)?;
//! // Sound: `ptr` is in bounds and aligned (checked by `resolve`); nobody else uses it.
//! unsafe { ptr.write(41) };
//!
//! let arena_off = region.offset() + 4096;
//! let arena = Arena::init(seg.clone(), arena_off, region.len() as u64 - 4096)?;
//! let block = arena.alloc(100, 8)?;
//! let p = arena.ptr(block, 100)?;
//! // Sound: `p` points at 100 bytes we own until `free`.
//! unsafe { p.as_ptr().write_bytes(0xab, 100) };
//! arena.free(block)?;
//! assert_eq!(arena.check()?.allocated_blocks, 0);
//!
//! // A corrupt offset is an error, not UB.
//! assert!(seg.resolve(Offset::<u64>::new(u64::MAX - 3)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A forked child registers its own participant entry; when it exits (however), the parent
//! sees `is_alive` flip — see `examples/shm_tour.rs` (`cargo run -p mproc-shm --example
//! shm_tour`).
#![deny(unsafe_code)]

pub mod arena;
#[cfg(feature = "test-hooks")]
mod buddy_model;
mod error;
mod header;
pub mod name;
mod offset;
pub mod participant;
mod segment;
mod sync;
mod sys;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
mod words;

pub use arena::{Arena, ArenaError, ArenaStats, ArenaUsage};
pub use error::{OffsetError, RegisterError, SegmentError};
pub use header::{
    CREATOR_LOCK, DEFAULT_PARTICIPANTS, HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_PARTICIPANTS,
    REGION_ALIGN,
};
pub use name::{MAX_NAME_LEN, NameError, NameState, Namespace, ShmName, ToShmName};
pub use offset::Offset;
pub use participant::ParticipantId;
pub use segment::{DEFAULT_OPEN_TIMEOUT, Region, Segment, SegmentOptions};
