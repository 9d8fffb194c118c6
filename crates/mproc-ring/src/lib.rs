//! `mproc-ring`: lock-free rings over raw memory, for one process or many.
//!
//! TODO(map) — filled in below once the API settles.
#![deny(unsafe_code)]

mod doorbell;
mod layout;
mod mem;
mod mpmc;
mod record;
mod role;
mod spsc;
mod sync;

pub use doorbell::Doorbell;
pub use layout::{AttachError, LayoutError, MAX_SLOT_SIZE, REGION_ALIGN, RingKind};
pub use mpmc::{MAX_TRIES, MpmcRing, MpmcShape, RecoveryReport, TryPopError, TryPushError};
pub use record::{
    ReadError, Record, RecordReader, RecordRing, RecordShape, RecordWriter, Reservation, WriteError,
};
pub use role::{ClaimError, ParticipantId, Role};
pub use spsc::{
    ChunkError, Consumer, PopError, Producer, PushError, ReadChunk, SpscRing, SpscShape, WriteChunk,
};
