//! `mproc-ring`: lock-free rings over raw memory, for one process or many.
//!
//! The rings every mproc channel runs on. The crate makes no system call: a ring lives in
//! any [`REGION_ALIGN`]-aligned region — a heap buffer in one process, or a shared segment
//! mapped by several — and is fully loom-checkable (`--cfg mproc_loom`).
//!
//! # Map
//!
//! | type | what | Python |
//! |------|------|--------|
//! | [`SpscRing`] → [`Producer`] / [`Consumer`] | fixed-size elements, one writer, one reader; batch [`WriteChunk`] / [`ReadChunk`] | `Pipe(duplex=False)` data path |
//! | [`RecordRing`] → [`RecordWriter`] / [`RecordReader`] | variable-length byte records (zero-copy [`Reservation`] / [`Record`]), fragment flag | `Connection.send_bytes` / `recv_bytes` |
//! | [`MpmcRing`] | bounded many-to-many, variable payload up to a slot size, crash recovery | `Queue` transport |
//! | [`Doorbell`] | futex words + sleeper counts for a blocking layer (mproc-core's sleepers protocol) | — |
//! | [`ParticipantId`] (mproc-core's), [`Role`] | who holds a claim (from mproc-shm's participant table) | — |
//!
//! Every kind has the same shape: `required_size(shape)`, `unsafe init(region, len, shape)`
//! (initialise in place), `unsafe attach(region, len)` (validate the header, one
//! [`AttachError`] variant per check, copy the validated shape into the handle), and
//! `new(shape)` (a heap ring for in-process use).
//!
//! # Guarantees
//!
//! * **Hostile memory.** Everything read from the region is untrusted: indices are masked,
//!   lengths checked against slot sizes and published bytes, positions use wrapping
//!   arithmetic, and every retry loop is bounded. A peer that scribbles over the region can
//!   make operations fail (`Corrupt`, `Contended`) or lose messages, never make us read or
//!   write out of bounds, panic, or loop for ever. Lent slices (`Record::bytes`, chunks,
//!   `try_pop_with`) point into shared memory that only a protocol-breaking peer writes
//!   while we hold them; the facade copies before validating when it distrusts peers.
//! * **Crashes.** MPMC slot words carry their claimant: an operation stuck on a dead
//!   producer's or consumer's claim finds it in O(1) ([`MpmcRing::stuck_claim`]) and resolves
//!   exactly that slot ([`MpmcRing::recover_claim`]), counting the lost message, so recovery
//!   can be every caller's job, a poller's as much as a sleeper's; [`MpmcRing::recover`]
//!   scans the whole ring. SPSC roles are claimed with the holder's id and can be taken over
//!   from a dead holder.
//! * **Observers** (`len`, `is_empty`, `is_full`) are snapshots clamped to
//!   `0..=capacity`, exact when the ring is quiescent.
//! * **Blocking** is not done here: the [`Doorbell`] docs give the sleep/wake protocol.
//!
//! # Verification
//!
//! Loom models (`--cfg mproc_loom`, `tests/loom_*.rs`) of every ring, of MPMC crash recovery
//! racing its participants, of a claimant killed between its claim and its help, and of the
//! doorbell with one and with two sleepers; each model asserts that every outcome arm it
//! names was reached, so a model that explores nothing fails. Deterministic tests stop or
//! kill an MPMC claimant at that point through a test-only fault hook (feature `test-hooks`,
//! turned on only by this crate's own dev-dependency on itself; without it the hook is not
//! compiled). Property tests against `VecDeque`, threads, fork + SIGKILL, and fuzzing.
//!
//! # Example
//!
//! ```
//! use mproc_ring::{MpmcRing, MpmcShape, ParticipantId, TryPopError};
//!
//! let ring = MpmcRing::new(MpmcShape { capacity: 8, slot_size: 64 })?;
//! let me = ParticipantId::new(1).unwrap();
//! ring.try_push(me, b"hello")?;
//! // Serialise straight into the slot:
//! ring.try_push_with(me, |slot| {
//!     slot[..5].copy_from_slice(b"world");
//!     Some(5)
//! })?;
//! assert_eq!(ring.try_pop_vec(me)?, b"hello");
//! assert_eq!(ring.try_pop_with(me, |bytes| bytes.len())?, 5);
//! assert_eq!(ring.try_pop_vec(me), Err(TryPopError::Empty));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An SPSC ring in a region (here a heap buffer standing in for a shared mapping):
//!
//! ```
//! use std::ptr::NonNull;
//! use mproc_ring::{ParticipantId, SpscRing, SpscShape};
//!
//! let shape = SpscShape { capacity: 4, slot_size: 8 };
//! let len = SpscRing::required_size(shape)?;
//! let layout = std::alloc::Layout::from_size_align(len, SpscRing::REQUIRED_ALIGN)?;
//! // SAFETY: nonzero size; freed below after every handle is gone.
//! let region = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
//! {
//!     // SAFETY: a fresh aligned region of `len` bytes, used only through this crate.
//!     let ring = unsafe { SpscRing::init(region, len, shape) }?;
//!     // SAFETY: as above; a second process would do this on its own mapping.
//!     let view = unsafe { SpscRing::attach(region, len) }?;
//!     let mut tx = ring.claim_producer(ParticipantId::new(1).unwrap())?;
//!     let mut rx = view.claim_consumer(ParticipantId::new(2).unwrap())?;
//!     tx.push(&42u64.to_le_bytes())?;
//!     let mut out = [0u8; 8];
//!     rx.pop(&mut out)?;
//!     assert_eq!(u64::from_le_bytes(out), 42);
//! }
//! // Sound: allocated above with this layout, and no handle remains.
//! unsafe { std::alloc::dealloc(region.as_ptr(), layout) };
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

// clippy reads the doc example's SAFETY comments above as belonging to the first item
// (doorbell.rs has no unsafe code, so this allow hides nothing).
#[allow(clippy::unnecessary_safety_comment)]
mod doorbell;
pub use doorbell::Doorbell;
#[cfg(any(feature = "test-hooks", mproc_loom))]
#[doc(hidden)]
pub mod fault;
pub use layout::{AttachError, LayoutError, MAX_SLOT_SIZE, REGION_ALIGN, RingKind};
pub use mpmc::{
    Claim, DeadClaim, MAX_TRIES, MpmcRing, MpmcShape, Recovered, RecoveryReport, Side, TryPopError,
    TryPushError,
};
pub use record::{
    ReadError, Record, RecordReader, RecordRing, RecordShape, RecordWriter, Reservation, WriteError,
};
pub use role::{ClaimError, ParticipantId, Role};
pub use spsc::{
    ChunkError, Consumer, PopError, Producer, PushError, ReadChunk, SpscRing, SpscShape, WriteChunk,
};

mod layout;
mod mem;
mod mpmc;
mod record;
mod role;
mod spsc;
mod sync;
