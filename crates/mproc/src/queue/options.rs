//! Creation options of a [`Queue`]: [`QueueBuilder`] (and the creation path it runs), the
//! defaults, and the type identity (name, fingerprint) a queue's segment records.
#![allow(unsafe_code)]

use std::marker::PhantomData;

use mproc_ring::{MpmcRing, MpmcShape};
use mproc_shm::Arena;

#[cfg(doc)]
use super::PutTimeoutError;
use super::slot::DESC_LEN;
use super::{Queue, ROLES};
#[cfg(doc)]
use crate::message::MessageError;
use crate::message::{self, Message};
use crate::storage::object::{self, CreateError, Object, ObjectKind, ObjectSpec};

/// Default number of slots.
pub const DEFAULT_CAPACITY: u32 = 256;
/// Default largest inline message, in bytes (the ring slot is one byte more).
pub const DEFAULT_SLOT_SIZE: u32 = 127;
/// Default [`QueueBuilder::arena_size`]: the largest message the default arena holds, in
/// bytes (its blocks then take exactly 1 MiB).
pub const DEFAULT_ARENA_SIZE: u64 = (1 << 20) - 16;

/// Options for a new [`Queue`] (Python: the `maxsize` argument, and more).
#[derive(Debug, Clone)]
pub struct QueueBuilder<T> {
    capacity: u32,
    slot_size: u32,
    arena_size: u64,
    participants: Option<u32>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T: Message> Default for QueueBuilder<T> {
    fn default() -> Self {
        QueueBuilder {
            capacity: DEFAULT_CAPACITY,
            slot_size: DEFAULT_SLOT_SIZE,
            arena_size: DEFAULT_ARENA_SIZE,
            participants: None,
            _t: PhantomData,
        }
    }
}

impl<T: Message> QueueBuilder<T> {
    /// Most items in the queue at once (Python's `maxsize`), exactly: `full()` is true at
    /// `items`, and `qsize()` never exceeds it. At least 1 (0 is taken as 1), at most
    /// 2^30. Default [`DEFAULT_CAPACITY`].
    pub fn capacity(mut self, items: u32) -> Self {
        self.capacity = items;
        self
    }

    /// Largest encoded message carried inline in a slot; larger ones go through the arena.
    /// Default [`DEFAULT_SLOT_SIZE`].
    pub fn slot_size(mut self, bytes: u32) -> Self {
        self.slot_size = bytes;
        self
    }

    /// The largest message, in bytes (encoded), that the queue's arena for messages larger
    /// than a slot must hold (0: no arena, so such messages are refused). Default
    /// [`DEFAULT_ARENA_SIZE`].
    ///
    /// The arena is a buddy allocator (`mproc_shm::arena`): each out-of-line message takes
    /// one block of its encoded length plus a 16-byte header, rounded up to a power of two
    /// (at least 64 bytes), and free blocks merge back with their buddies, so the arena never
    /// drifts. It is sized so that `bytes` holds: its blocks take `(bytes + 16)` rounded up to
    /// a power of two (plus 3,456 bytes of its own header), and **whenever no other message is
    /// out of line, any message of up to `bytes` bytes fits** — exactly up to that power of
    /// two minus 16, which [`Queue::arena_stats`] reports as `max_message`. A larger message
    /// is [`MessageError::TooLarge`] at once. Messages that are in flight together share the
    /// arena: a put that finds no block large enough waits for one to come free (a consumer's
    /// get frees its message's block and wakes it), and its timeout says so
    /// ([`PutTimeoutError::ArenaFull`]). The pages of the arena are touched only as blocks
    /// are used.
    pub fn arena_size(mut self, bytes: u64) -> Self {
        self.arena_size = bytes;
        self
    }

    /// How many processes can use the queue at once (the segment's participant table).
    pub fn participants(mut self, processes: u32) -> Self {
        self.participants = Some(processes);
        self
    }

    /// Creates an anonymous queue (shared with children through `Process` args).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidCapacity`] or [`CreateError::RingLayout`] for bad options,
    /// [`CreateError::NoSpace`], or another [`CreateError`].
    pub fn create(self) -> Result<Queue<T>, CreateError> {
        self.build(None)
    }

    /// Creates a queue named `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]) (`O_EXCL`, mode 0600), which unrelated
    /// processes open with [`Queue::open_named`]. The name stays until
    /// [`Queue::unlink`].
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`]; an existing name is
    /// [`CreateError::AlreadyExists`].
    pub fn create_named(self, name: &str) -> Result<Queue<T>, CreateError> {
        self.build(Some(name))
    }

    fn build(self, name: Option<&str>) -> Result<Queue<T>, CreateError> {
        // Exact (the ring takes any capacity in range); too large is refused below.
        let capacity = self.capacity.max(1);
        let ring_slot = self.slot_size.saturating_add(1).max(DESC_LEN as u32 + 1);
        let shape = MpmcShape {
            capacity,
            slot_size: ring_slot,
        };
        let ring_len = MpmcRing::required_size(shape)?;
        let arena_len = if self.arena_size == 0 {
            0
        } else {
            // One top block: the power of two that holds `arena_size` bytes and a header.
            let blocks = self
                .arena_size
                .checked_add(16)
                .and_then(u64::checked_next_power_of_two)
                .filter(|&b| b <= mproc_shm::arena::MAX_ARENA_LEN / 2)
                .ok_or_else(|| {
                    CreateError::capacity(
                        "arena size",
                        self.arena_size,
                        "at most half the largest arena",
                    )
                })?;
            mproc_shm::arena::ARENA_HEADER + blocks.max(64)
        };
        let spec = ObjectSpec {
            kind: ObjectKind::Queue,
            fingerprint: fingerprint::<T>(),
            roles: ROLES,
            regions: &[ring_len as u64, arena_len],
        };
        let obj = Object::create(&spec, name, self.participants, |obj| {
            let r = obj.region(0).expect("two regions");
            // SAFETY: the sub-region is 128-aligned, `len` bytes inside the mapping (which
            // `obj` keeps alive, and the `Shared` built below keeps `obj`), freshly zeroed
            // and not yet published to anyone else.
            unsafe { MpmcRing::init(r.ptr, r.len as usize, shape) }?;
            let a = obj.region(1).expect("two regions");
            if a.len > 0 {
                Arena::init(obj.segment().clone(), a.offset, a.len)?;
            }
            Ok(())
        })?;
        Ok(Queue::from_object(obj)?)
    }
}

pub(super) fn type_name<T>() -> String {
    format!("Queue<{}>", std::any::type_name::<T>())
}

pub(super) fn fingerprint<T: Message>() -> u64 {
    object::fingerprint(ObjectKind::Queue, &message::type_tag::<T>())
}
