//! SPSC ring of fixed-size elements: Lamport's single-producer single-consumer queue with a
//! cached copy of the other side's index in the process-local handle.
//!
//! Algorithm: Lamport (1983) with index caching as in rigtorp's `SPSCQueue` and rtrb.
//! The producer owns `tail`, the consumer owns `head`; both are `u64` positions that never
//! wrap in practice, and a slot index is `position & (capacity - 1)`. Each side keeps its own
//! index in its handle (never re-read from shared memory) and a cached copy of the other's,
//! reloaded only when the cache says "full" / "empty" — so most operations touch no shared
//! cache line but their own.
//!
//! Positions use wrapping arithmetic (a hostile peer may store any value). Every index read
//! from the peer is validated (`0 <= tail - head <= capacity`, and it only moved forward) before use;
//! a bad one makes the operation fail with `Corrupt`, never index out of bounds.
#![allow(unsafe_code)]
// `init`/`attach` (in-place layouts) are not built under loom, which uses heap values.
#![cfg_attr(mproc_loom, allow(unused_imports))]

use core::ptr::NonNull;

use crossbeam_utils::CachePadded;
use mproc_core::shared::{SharedBytes, copy_from_shared, shared_bytes};

use crate::Doorbell;
use crate::layout::{
    AttachError, Common, LayoutError, MAX_SLOT_SIZE, REGION_ALIGN, RingKind, check_attach_region,
    check_region, round_up,
};
use crate::mem::Mem;
use crate::role::{self, ClaimError, ParticipantId, Role};
use crate::sync::{AtomicU32, AtomicU64, DataGuard, Ordering, Tokens};

/// Shape of an [`SpscRing`]: `capacity` elements of `slot_size` bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpscShape {
    /// Number of elements; a power of two in `1..=2^30`.
    pub capacity: u32,
    /// Bytes per element; `1..=MAX_SLOT_SIZE`.
    pub slot_size: u32,
}

/// The shared header of the SPSC and record rings.
///
/// Invariants (when nobody is hostile): `head <= tail <= head + capacity`; `tail` is written
/// only by the producer role holder, `head` only by the consumer role holder.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SpscHeader {
    pub(crate) common: Common,
    /// [`Role`] word of the producer end.
    pub(crate) producer: AtomicU32,
    /// [`Role`] word of the consumer end.
    pub(crate) consumer: AtomicU32,
    /// Items (records) the consumer dropped because they failed validation.
    pub(crate) corrupt: AtomicU64,
    /// Rung after pushes; consumers sleep on it.
    pub(crate) items: Doorbell,
    /// Rung after pops; producers sleep on it.
    pub(crate) space: Doorbell,
    /// Next position to read (consumer's line).
    pub(crate) head: CachePadded<AtomicU64>,
    /// Next position to write (producer's line).
    pub(crate) tail: CachePadded<AtomicU64>,
}

// SAFETY: `repr(C)`, a `Common`, atomics, `Doorbell`s and `CachePadded` (`repr(align)`)
// atomics: all valid for any bytes (positions and role words are checked where read); `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for SpscHeader {}

impl SpscHeader {
    pub(crate) fn new(kind: RingKind, capacity: u32, slot_size: u32, total: u64) -> SpscHeader {
        SpscHeader {
            common: Common::new(kind, capacity, slot_size, total),
            producer: AtomicU32::new(0),
            consumer: AtomicU32::new(0),
            corrupt: AtomicU64::new(0),
            items: Doorbell::new(),
            space: Doorbell::new(),
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Byte offset of the data area in an in-place region.
    pub(crate) const DATA_OFFSET: usize = round_up(size_of::<SpscHeader>(), REGION_ALIGN);

    /// `tail - head`, clamped to `0..=cap` (the observers' guarantee).
    pub(crate) fn len(&self, cap: u32) -> u32 {
        // Acquire on both: a consistent-enough snapshot; we clamp anyway because the two
        // loads are not atomic together and the peer may be hostile.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let d = tail.wrapping_sub(head);
        if d > u64::from(u32::MAX) {
            0 // head ran ahead of our tail read (or garbage): clamp at 0
        } else {
            (d as u32).min(cap)
        }
    }

    /// Writes a fresh header at `region` and publishes it.
    ///
    /// # Safety
    /// `region` is valid for writes of `size_of::<SpscHeader>()` bytes and 128-aligned.
    #[cfg(not(mproc_loom))]
    pub(crate) unsafe fn init_at(region: NonNull<u8>, hdr: SpscHeader) -> NonNull<SpscHeader> {
        let p = region.cast::<SpscHeader>();
        // SAFETY: delegated to the caller (valid, aligned, exclusive during init).
        unsafe { p.write(hdr) };
        // SAFETY: just written.
        unsafe { p.as_ref() }.common.publish();
        p
    }
}

/// Which end of the ring a claim is for.
#[derive(Clone, Copy)]
enum End {
    Producer,
    Consumer,
}

/// Validates a recorded capacity for the SPSC kinds.
fn valid_cap(cap: u32, max: u32) -> bool {
    cap.is_power_of_two() && cap <= max
}

/// A single-producer single-consumer ring of fixed-size byte elements. Python: the data path
/// of `multiprocessing.Pipe(duplex=False)` for fixed-size messages.
///
/// This is the shared handle (cheap to clone): observers, doorbells and role claims. Data
/// moves through the [`Producer`] and [`Consumer`] it hands out, one of each at a time per
/// ring, enforced across processes by the role words in the header.
#[derive(Debug, Clone)]
pub struct SpscRing {
    pub(crate) mem: Mem<SpscHeader>,
    pub(crate) cap: u32,
    pub(crate) slot: u32,
}

impl SpscRing {
    /// Largest capacity.
    pub const MAX_CAPACITY: u32 = 1 << 30;

    /// Region alignment `init`/`attach` need.
    pub const REQUIRED_ALIGN: usize = REGION_ALIGN;

    fn check_shape(shape: SpscShape) -> Result<(), LayoutError> {
        if !valid_cap(shape.capacity, Self::MAX_CAPACITY) {
            return Err(LayoutError::BadCapacity(shape.capacity));
        }
        if shape.slot_size == 0 || shape.slot_size > MAX_SLOT_SIZE {
            return Err(LayoutError::BadSlotSize(shape.slot_size));
        }
        Ok(())
    }

    /// Bytes a region must have for `shape` (header + data).
    ///
    /// # Errors
    /// A capacity that is not a power of two or a bad slot size.
    pub fn required_size(shape: SpscShape) -> Result<usize, LayoutError> {
        Self::check_shape(shape)?;
        Ok(SpscHeader::DATA_OFFSET + shape.capacity as usize * shape.slot_size as usize)
    }

    /// Initialises a ring in place over `region` and returns a handle to it.
    ///
    /// # Errors
    /// A bad shape, or a region that is too small or not [`REGION_ALIGN`]-aligned.
    ///
    /// # Safety
    /// * `region..region + len` is valid for reads and writes and stays mapped for as long as
    ///   any handle to this ring (and any handle from `attach`) exists;
    /// * nobody else accesses it during `init`; afterwards it is accessed only through this
    ///   crate's handles (in any process).
    #[cfg(not(mproc_loom))]
    pub unsafe fn init(
        region: NonNull<u8>,
        len: usize,
        shape: SpscShape,
    ) -> Result<SpscRing, LayoutError> {
        // SAFETY: delegated to the caller.
        unsafe { Self::init_kind(region, len, shape, RingKind::Spsc) }
    }

    /// `init` for the SPSC kinds (the record ring is an SPSC ring of 8-byte units).
    ///
    /// # Safety
    /// As for [`SpscRing::init`].
    #[cfg(not(mproc_loom))]
    pub(crate) unsafe fn init_kind(
        region: NonNull<u8>,
        len: usize,
        shape: SpscShape,
        kind: RingKind,
    ) -> Result<SpscRing, LayoutError> {
        let total = Self::required_size(shape)?;
        check_region(region, len, total)?;
        let hdr = SpscHeader::new(kind, shape.capacity, shape.slot_size, total as u64);
        // SAFETY: region checked for size and alignment; exclusivity delegated to the caller.
        let hdr = unsafe { SpscHeader::init_at(region, hdr) };
        // SAFETY: delegated to the caller.
        Ok(unsafe { Self::from_region(region, hdr, shape, None) })
    }

    /// # Safety
    /// `region` holds an initialised ring of `shape`, mapped while handles live.
    #[cfg(not(mproc_loom))]
    unsafe fn from_region(
        region: NonNull<u8>,
        hdr: NonNull<SpscHeader>,
        shape: SpscShape,
        keep: crate::layout::Keepalive,
    ) -> SpscRing {
        // SAFETY: DATA_OFFSET is within the region (required_size includes it).
        let data = unsafe { region.add(SpscHeader::DATA_OFFSET) };
        SpscRing {
            // SAFETY: delegated to the caller.
            mem: unsafe { Mem::in_place(hdr, NonNull::dangling(), 0, data, keep) },
            cap: shape.capacity,
            slot: shape.slot_size,
        }
    }

    /// Attaches to a ring another handle (maybe in another process) initialised, after
    /// validating its header; the validated shape is copied into the handle.
    ///
    /// # Errors
    /// One [`AttachError`] variant per failed check.
    ///
    /// # Safety
    /// As for [`SpscRing::init`], minus the exclusivity during init.
    #[cfg(not(mproc_loom))]
    pub unsafe fn attach(region: NonNull<u8>, len: usize) -> Result<SpscRing, AttachError> {
        // SAFETY: delegated to the caller.
        unsafe { Self::attach_kind(region, len, RingKind::Spsc) }
    }

    /// `attach` for the SPSC kinds.
    ///
    /// # Safety
    /// As for [`SpscRing::attach`].
    #[cfg(not(mproc_loom))]
    pub(crate) unsafe fn attach_kind(
        region: NonNull<u8>,
        len: usize,
        kind: RingKind,
    ) -> Result<SpscRing, AttachError> {
        check_attach_region(region, len, SpscHeader::DATA_OFFSET)?;
        let hdr = region.cast::<SpscHeader>();
        // SAFETY: region is aligned and holds at least a header; the header is atomics only.
        let (cap, slot, total) = unsafe { hdr.as_ref() }.common.validate(kind)?;
        let shape = SpscShape {
            capacity: cap,
            slot_size: slot,
        };
        match Self::check_shape(shape) {
            Err(LayoutError::BadCapacity(c)) => return Err(AttachError::BadCapacity(c)),
            Err(_) => return Err(AttachError::BadSlotSize(slot)),
            Ok(()) => {}
        }
        let needed = Self::required_size(shape).expect("shape checked");
        if total != needed as u64 {
            return Err(AttachError::SizeMismatch {
                recorded: total,
                computed: needed as u64,
            });
        }
        if len < needed {
            return Err(AttachError::RegionTooSmall { needed, len });
        }
        // SAFETY: validated above; lifetime delegated to the caller.
        Ok(unsafe { Self::from_region(region, hdr, shape, None) })
    }

    /// A ring on the heap, for use within one process (and in tests).
    ///
    /// # Errors
    /// A bad shape.
    pub fn new(shape: SpscShape) -> Result<SpscRing, LayoutError> {
        Self::new_kind(shape, RingKind::Spsc)
    }

    /// `new` for the SPSC kinds.
    pub(crate) fn new_kind(shape: SpscShape, kind: RingKind) -> Result<SpscRing, LayoutError> {
        let total = Self::required_size(shape)?;
        #[cfg(not(mproc_loom))]
        {
            let buf = crate::layout::AlignedBuf::zeroed(total);
            let (ptr, len) = (buf.ptr(), buf.len());
            // SAFETY: a fresh, exclusive, aligned buffer of the right size.
            let mut ring = unsafe { Self::init_kind(ptr, len, shape, kind) }?;
            ring.mem.keep = Some(std::sync::Arc::new(buf));
            Ok(ring)
        }
        #[cfg(mproc_loom)]
        {
            let hdr = SpscHeader::new(kind, shape.capacity, shape.slot_size, total as u64);
            hdr.common.publish();
            let data_len = shape.capacity as usize * shape.slot_size as usize;
            Ok(SpscRing {
                mem: crate::mem::loom_heap::build(
                    hdr,
                    Vec::<()>::new(),
                    data_len,
                    shape.capacity as usize,
                ),
                cap: shape.capacity,
                slot: shape.slot_size,
            })
        }
    }

    /// Number of elements the ring holds when full.
    pub fn capacity(&self) -> u32 {
        self.cap
    }

    /// Bytes per element.
    pub fn slot_size(&self) -> u32 {
        self.slot
    }

    /// Elements in the ring: a snapshot, always in `0..=capacity` even if the memory is
    /// corrupt. Exact when neither end is moving; otherwise a value the ring had at some
    /// moment during the call or shortly before.
    pub fn len(&self) -> u32 {
        self.mem.hdr().len(self.cap)
    }

    /// `len() == 0` (same guarantees).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len() == capacity()` (same guarantees).
    pub fn is_full(&self) -> bool {
        self.len() == self.cap
    }

    /// Rung by the producer after pushes; a consumer sleeps on it (see [`Doorbell`]).
    pub fn items_doorbell(&self) -> &Doorbell {
        &self.mem.hdr().items
    }

    /// Rung by the consumer after pops; a producer sleeps on it.
    pub fn space_doorbell(&self) -> &Doorbell {
        &self.mem.hdr().space
    }

    /// Who holds the producer end.
    pub fn producer_role(&self) -> Role {
        // Relaxed: a snapshot for display/liveness decisions; claims use CAS.
        Role::from_word(self.mem.hdr().producer.load(Ordering::Relaxed))
    }

    /// Who holds the consumer end.
    pub fn consumer_role(&self) -> Role {
        // Relaxed: as in `producer_role`.
        Role::from_word(self.mem.hdr().consumer.load(Ordering::Relaxed))
    }

    /// Elements the consumer dropped because the producer's index was invalid.
    pub fn corrupt_count(&self) -> u64 {
        // Relaxed: a statistic.
        self.mem.hdr().corrupt.load(Ordering::Relaxed)
    }

    /// Claims the producer end for `me` (free, closed, or already `me`'s).
    ///
    /// # Errors
    /// [`ClaimError::Held`] when someone else holds it; `Corrupt` when the indices found are
    /// inconsistent (the role is left released).
    pub fn claim_producer(&self, me: ParticipantId) -> Result<Producer, ClaimError> {
        self.producer_with(me, None)
    }

    /// As [`SpscRing::claim_producer`], but takes the role over from a holder for which
    /// `alive(id)` is false (a crashed producer).
    ///
    /// # Errors
    /// As for `claim_producer`.
    pub fn claim_producer_from_dead(
        &self,
        me: ParticipantId,
        alive: impl Fn(u32) -> bool,
    ) -> Result<Producer, ClaimError> {
        self.producer_with(me, Some(&alive))
    }

    fn producer_with(
        &self,
        me: ParticipantId,
        alive: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Producer, ClaimError> {
        let (tail, head) = self.claim_end(End::Producer, me, alive)?;
        Ok(Producer {
            ring: self.clone(),
            me,
            tail,
            cached_head: head,
        })
    }

    /// Claims the consumer end for `me`.
    ///
    /// # Errors
    /// As for [`SpscRing::claim_producer`].
    pub fn claim_consumer(&self, me: ParticipantId) -> Result<Consumer, ClaimError> {
        self.consumer_with(me, None)
    }

    /// As [`SpscRing::claim_consumer`], taking over from a dead holder.
    ///
    /// # Errors
    /// As for `claim_producer`.
    pub fn claim_consumer_from_dead(
        &self,
        me: ParticipantId,
        alive: impl Fn(u32) -> bool,
    ) -> Result<Consumer, ClaimError> {
        self.consumer_with(me, Some(&alive))
    }

    fn consumer_with(
        &self,
        me: ParticipantId,
        alive: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Consumer, ClaimError> {
        let (tail, head) = self.claim_end(End::Consumer, me, alive)?;
        Ok(Consumer {
            ring: self.clone(),
            me,
            head,
            cached_tail: tail,
        })
    }

    /// Claims `end`'s role word for `me` and reads both indices, returning `(tail, head)`;
    /// releases the role again and fails with `Corrupt` when they are further apart than
    /// the capacity.
    fn claim_end(
        &self,
        end: End,
        me: ParticipantId,
        alive: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<(u64, u64), ClaimError> {
        let h = self.mem.hdr();
        let (role_word, own, peer) = match end {
            End::Producer => (&h.producer, &h.tail, &h.head),
            End::Consumer => (&h.consumer, &h.head, &h.tail),
        };
        role::claim(role_word, me, alive)?;
        // Relaxed for our own index: the role claim's Acquire ordered the previous holder's
        // last store before us.
        let own = own.load(Ordering::Relaxed);
        // Acquire: pairs with the peer's Release store of its index (the consumer's head,
        // after its reads of the slots; the producer's tail, after its writes).
        let peer = peer.load(Ordering::Acquire);
        let (tail, head) = match end {
            End::Producer => (own, peer),
            End::Consumer => (peer, own),
        };
        if tail.wrapping_sub(head) > u64::from(self.cap) {
            role::release(role_word, me);
            return Err(ClaimError::Corrupt);
        }
        Ok((tail, head))
    }

    /// Pointer to the first byte of slot `pos & mask`.
    #[inline]
    pub(crate) fn slot_ptr(&self, pos: u64) -> *mut u8 {
        let i = (pos & u64::from(self.cap - 1)) as usize;
        // SAFETY: `i < cap` (masked), and the data area holds `cap * slot` bytes.
        unsafe { self.mem.data.as_ptr().add(i * self.slot as usize) }
    }

    /// The up-to-two byte runs covering `n` slots from `pos` (wrapping at the end).
    fn runs(&self, pos: u64, n: u32) -> ((*mut u8, usize), (*mut u8, usize)) {
        let i = (pos & u64::from(self.cap - 1)) as u32;
        let first = n.min(self.cap - i);
        let s = self.slot as usize;
        (
            (self.slot_ptr(pos), first as usize * s),
            (self.mem.data.as_ptr(), (n - first) as usize * s),
        )
    }

    /// The race detectors of the `n` slots from `pos` (wrapping at the end, as [`runs`](Self::runs)).
    fn guards_from(&self, pos: u64, n: u32) -> impl Iterator<Item = &DataGuard> {
        let i = (pos & u64::from(self.cap - 1)) as usize;
        let first = (n as usize).min(self.cap as usize - i);
        self.mem
            .guards(i, first)
            .chain(self.mem.guards(0, n as usize - first))
    }

    pub(crate) fn tokens_write(&self, pos: u64, n: u32) -> Tokens {
        Tokens::write(self.guards_from(pos, n))
    }

    pub(crate) fn tokens_read(&self, pos: u64, n: u32) -> Tokens {
        Tokens::read(self.guards_from(pos, n))
    }
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// No free slot. Python: `queue.Full`.
    #[error("ring is full")]
    Full,
    /// The element is not exactly `slot_size` bytes.
    #[error("element of {len} bytes, slot size is {slot_size}")]
    WrongLength {
        /// Bytes given.
        len: usize,
        /// The ring's element size.
        slot_size: u32,
    },
    /// The consumer's index is invalid (corrupt or hostile memory).
    #[error("ring indices are corrupt")]
    Corrupt,
}

/// Why a pop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PopError {
    /// Nothing to read. Python: `queue.Empty`.
    #[error("ring is empty")]
    Empty,
    /// The output buffer is shorter than `slot_size`.
    #[error("buffer of {len} bytes, slot size is {slot_size}")]
    WrongLength {
        /// Bytes given.
        len: usize,
        /// The ring's element size.
        slot_size: u32,
    },
    /// The producer's index is invalid (corrupt or hostile memory).
    #[error("ring indices are corrupt")]
    Corrupt,
}

/// Why a chunk could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// Fewer than the requested elements (free slots, or items) are available.
    #[error("only {0} slots available")]
    TooFewSlots(u32),
    /// The peer's index is invalid.
    #[error("ring indices are corrupt")]
    Corrupt,
}

/// The producer end of an [`SpscRing`] (holds the producer role; dropping it releases the
/// role, which the consumer sees as [`Consumer::is_abandoned`]).
///
/// To hand the role to a forked child without releasing it, `mem::forget` the parent's copy.
#[derive(Debug)]
pub struct Producer {
    pub(crate) ring: SpscRing,
    me: ParticipantId,
    /// Our position; authoritative (never re-read from shared memory).
    pub(crate) tail: u64,
    /// Last head seen; `tail - cached_head <= cap` always holds.
    cached_head: u64,
}

impl Producer {
    /// The ring this producer writes.
    pub fn ring(&self) -> &SpscRing {
        &self.ring
    }

    /// Free slots, reloading the consumer's index if the cached one says fewer than `want`.
    #[inline]
    pub(crate) fn free(&mut self, want: u32) -> Result<u32, PushError> {
        let cap = u64::from(self.ring.cap);
        let free = cap - self.tail.wrapping_sub(self.cached_head);
        if free >= u64::from(want) {
            return Ok(free as u32);
        }
        // *Possibly* full: reload. Acquire pairs with the consumer's Release store of head,
        // so its reads of the slots it freed happen before our writes into them.
        let head = self.ring.mem.hdr().head.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        // Valid: at most `cap` in use, and the head only moved forward (less in use than before).
        if used > cap || used > self.tail.wrapping_sub(self.cached_head) {
            return Err(PushError::Corrupt);
        }
        self.cached_head = head;
        Ok((cap - used) as u32)
    }

    /// Free slots right now (reloads the consumer's index).
    ///
    /// # Errors
    /// `Corrupt` if the consumer's index is invalid.
    pub fn slots(&mut self) -> Result<u32, PushError> {
        self.free(u32::MAX)
    }

    #[inline]
    pub(crate) fn publish(&mut self, n: u32) {
        self.tail = self.tail.wrapping_add(u64::from(n));
        // Release: our slot writes happen before the consumer's Acquire load of tail.
        self.ring.mem.hdr().tail.store(self.tail, Ordering::Release);
    }

    /// Pushes one element of exactly `slot_size` bytes. Python: `Connection.send_bytes`.
    ///
    /// # Errors
    /// `Full`, `WrongLength`, `Corrupt`.
    #[inline]
    pub fn push(&mut self, elem: &[u8]) -> Result<(), PushError> {
        if elem.len() != self.ring.slot as usize {
            return Err(PushError::WrongLength {
                len: elem.len(),
                slot_size: self.ring.slot,
            });
        }
        if self.free(1)? == 0 {
            return Err(PushError::Full);
        }
        let _t = self
            .ring
            .mem
            .guard((self.tail & u64::from(self.ring.cap - 1)) as usize)
            .write();
        // SAFETY: the slot at `tail` is ours (free: the consumer is done with it, per the
        // Acquire in `free`), in bounds (masked), and `elem` has `slot` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(elem.as_ptr(), self.ring.slot_ptr(self.tail), elem.len())
        };
        crate::sync::end(_t);
        self.publish(1);
        Ok(())
    }

    /// Pushes as many whole elements of `elems` (a concatenation of `slot_size`-byte
    /// elements) as fit, with one index store; returns how many.
    ///
    /// # Errors
    /// `WrongLength` if `elems.len()` is not a multiple of `slot_size`; `Corrupt`.
    pub fn push_slice(&mut self, elems: &[u8]) -> Result<u32, PushError> {
        let s = self.ring.slot as usize;
        if !elems.len().is_multiple_of(s) {
            return Err(PushError::WrongLength {
                len: elems.len(),
                slot_size: self.ring.slot,
            });
        }
        let want = u32::try_from(elems.len() / s).unwrap_or(u32::MAX);
        let n = self.free(want)?.min(want);
        if n == 0 {
            return Ok(0);
        }
        let mut chunk = self.write_chunk(n).map_err(|e| match e {
            ChunkError::TooFewSlots(_) => PushError::Full,
            ChunkError::Corrupt => PushError::Corrupt,
        })?;
        let (a, b) = chunk.as_mut_slices();
        let (la, lb) = (a.len(), b.len());
        a.copy_from_slice(&elems[..la]);
        b.copy_from_slice(&elems[la..la + lb]);
        chunk.commit_all();
        Ok(n)
    }

    /// Lends the next `n` free slots as up to two byte slices (the second after the wrap),
    /// to be filled in place and published with [`WriteChunk::commit`]. rtrb's
    /// `write_chunk_uninit`, but safe: the bytes are always initialised memory.
    ///
    /// # Errors
    /// `TooFewSlots(free)` if fewer than `n` slots are free; `Corrupt`.
    pub fn write_chunk(&mut self, n: u32) -> Result<WriteChunk<'_>, ChunkError> {
        let free = self.free(n).map_err(|_| ChunkError::Corrupt)?;
        if free < n {
            return Err(ChunkError::TooFewSlots(free));
        }
        let tokens = self.ring.tokens_write(self.tail, n);
        Ok(WriteChunk {
            n,
            _tokens: tokens,
            producer: self,
        })
    }

    /// Whether the consumer released its end (it dropped its handle).
    pub fn is_abandoned(&self) -> bool {
        self.ring.consumer_role() == Role::Closed
    }

    /// This producer's participant id.
    pub fn id(&self) -> ParticipantId {
        self.me
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let h = self.ring.mem.hdr();
        if role::release(&h.producer, self.me) {
            // Wake a sleeping consumer so it sees the end closed.
            h.items.bump();
        }
    }
}

/// Free slots lent by [`Producer::write_chunk`]; nothing is published until `commit`.
#[derive(Debug)]
pub struct WriteChunk<'a> {
    producer: &'a mut Producer,
    n: u32,
    _tokens: Tokens,
}

impl WriteChunk<'_> {
    /// The chunk's bytes: `n * slot_size` in total, split at the ring's end.
    pub fn as_mut_slices(&mut self) -> (&mut [u8], &mut [u8]) {
        let ((pa, la), (pb, lb)) = self.producer.ring.runs(self.producer.tail, self.n);
        // SAFETY: the two runs are disjoint, in bounds, and free slots that only this
        // producer may touch until it publishes them; `&mut self` prevents aliasing.
        unsafe {
            (
                core::slice::from_raw_parts_mut(pa, la),
                core::slice::from_raw_parts_mut(pb, lb),
            )
        }
    }

    /// Publishes the first `k` elements (`k <= n`, clamped).
    pub fn commit(self, k: u32) {
        let k = k.min(self.n);
        crate::sync::end(self._tokens);
        self.producer.publish(k);
    }

    /// Publishes all `n` elements.
    pub fn commit_all(self) {
        let n = self.n;
        self.commit(n);
    }
}

/// The consumer end of an [`SpscRing`] (holds the consumer role; dropping it releases it).
#[derive(Debug)]
pub struct Consumer {
    pub(crate) ring: SpscRing,
    me: ParticipantId,
    /// Our position; authoritative.
    pub(crate) head: u64,
    /// Last tail seen; `cached_tail - head <= cap` always holds.
    cached_tail: u64,
}

impl Consumer {
    /// The ring this consumer reads.
    pub fn ring(&self) -> &SpscRing {
        &self.ring
    }

    #[inline]
    pub(crate) fn avail(&mut self, want: u32) -> Result<u32, PopError> {
        let have = self.cached_tail.wrapping_sub(self.head);
        if have >= u64::from(want) {
            return Ok(have as u32);
        }
        // *Possibly* empty: reload. Acquire pairs with the producer's Release store of tail,
        // so its slot writes are visible before we read them.
        let tail = self.ring.mem.hdr().tail.load(Ordering::Acquire);
        let have = tail.wrapping_sub(self.head);
        // Valid: at most `cap` published, and the tail only moved forward (more than before).
        if have > u64::from(self.ring.cap) || have < self.cached_tail.wrapping_sub(self.head) {
            // Relaxed: a statistic.
            self.ring.mem.hdr().corrupt.fetch_add(1, Ordering::Relaxed);
            return Err(PopError::Corrupt);
        }
        self.cached_tail = tail;
        Ok(have as u32)
    }

    /// Elements available right now (reloads the producer's index).
    ///
    /// # Errors
    /// `Corrupt` if the producer's index is invalid.
    pub fn items(&mut self) -> Result<u32, PopError> {
        self.avail(u32::MAX)
    }

    #[inline]
    pub(crate) fn release_slots(&mut self, n: u32) {
        self.head = self.head.wrapping_add(u64::from(n));
        // Release: our reads of the slots happen before the producer reuses them.
        self.ring.mem.hdr().head.store(self.head, Ordering::Release);
    }

    /// Pops one element into `out[..slot_size]` (copied with [`copy_from_shared`]: safe
    /// against a peer writing the slot meanwhile). Python: `Connection.recv_bytes_into`.
    ///
    /// # Errors
    /// `Empty`, `WrongLength` (buffer too short), `Corrupt`.
    #[inline]
    pub fn pop(&mut self, out: &mut [u8]) -> Result<(), PopError> {
        if out.len() < self.ring.slot as usize {
            return Err(PopError::WrongLength {
                len: out.len(),
                slot_size: self.ring.slot,
            });
        }
        self.pop_shared_with(|e| copy_from_shared(&mut out[..e.len()], e))
    }

    /// Pops one element, lending its bytes to `f` in place as a `&[u8]`.
    ///
    /// A `&[u8]` promises the compiler that nobody writes the bytes while it lives: the
    /// producer keeps that promise, a hostile process mapping the ring could break it (a
    /// racing read is undefined behaviour). Where it is untrusted, use
    /// [`pop_shared_with`](Consumer::pop_shared_with) or [`pop`](Consumer::pop).
    ///
    /// # Errors
    /// `Empty`, `Corrupt`.
    #[inline]
    pub fn pop_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, PopError> {
        self.pop_raw(|p, len| {
            // SAFETY: as in `pop_shared_with`; lending `&[u8]` is this method's documented
            // limit.
            f(unsafe { core::slice::from_raw_parts(p.as_ptr(), len) })
        })
    }

    /// Pops one element, lending its bytes to `f` in place as [`SharedBytes`] (read them
    /// with [`copy_from_shared`]).
    ///
    /// # Errors
    /// `Empty`, `Corrupt`.
    #[inline]
    pub fn pop_shared_with<R>(&mut self, f: impl FnOnce(&SharedBytes) -> R) -> Result<R, PopError> {
        self.pop_raw(|p, len| {
            // SAFETY: the slot is published, in bounds and not reused by the producer until
            // `pop_raw` moves the head past it; this process reads it only through this view.
            f(unsafe { shared_bytes(p, len) })
        })
    }

    /// Hands `f` the slot at `head` (pointer and length) and then frees it.
    #[inline]
    fn pop_raw<R>(&mut self, f: impl FnOnce(NonNull<u8>, usize) -> R) -> Result<R, PopError> {
        if self.avail(1)? == 0 {
            return Err(PopError::Empty);
        }
        let t = self
            .ring
            .mem
            .guard((self.head & u64::from(self.ring.cap - 1)) as usize)
            .read();
        // The slot at `head` was published (Acquire in `avail`), is in bounds (masked), and
        // the producer will not touch it until we move head past it.
        let p = NonNull::new(self.ring.slot_ptr(self.head)).expect("slot pointer is non-null");
        let r = f(p, self.ring.slot as usize);
        crate::sync::end(t);
        self.release_slots(1);
        Ok(r)
    }

    /// Pops as many whole elements as fit in `out` (and are available); returns how many.
    ///
    /// # Errors
    /// `Corrupt`.
    pub fn pop_slice(&mut self, out: &mut [u8]) -> Result<u32, PopError> {
        let want = u32::try_from(out.len() / self.ring.slot as usize).unwrap_or(u32::MAX);
        let n = self.avail(want)?.min(want);
        if n == 0 {
            return Ok(0);
        }
        let chunk = self.read_chunk(n).map_err(|_| PopError::Corrupt)?;
        let (a, b) = chunk.as_shared_slices();
        copy_from_shared(&mut out[..a.len()], a);
        copy_from_shared(&mut out[a.len()..a.len() + b.len()], b);
        chunk.commit_all();
        Ok(n)
    }

    /// Lends the next `n` elements in place as up to two slices; [`ReadChunk::commit`] frees
    /// them.
    ///
    /// # Errors
    /// `TooFewSlots(available)`; `Corrupt`.
    pub fn read_chunk(&mut self, n: u32) -> Result<ReadChunk<'_>, ChunkError> {
        let have = self.avail(n).map_err(|_| ChunkError::Corrupt)?;
        if have < n {
            return Err(ChunkError::TooFewSlots(have));
        }
        let tokens = self.ring.tokens_read(self.head, n);
        Ok(ReadChunk {
            n,
            _tokens: tokens,
            consumer: self,
        })
    }

    /// Whether the producer released its end (and nothing is left to read is *not*
    /// implied: drain with `pop` until `Empty`, then treat as end of stream).
    pub fn is_abandoned(&self) -> bool {
        self.ring.producer_role() == Role::Closed
    }

    /// This consumer's participant id.
    pub fn id(&self) -> ParticipantId {
        self.me
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let h = self.ring.mem.hdr();
        if role::release(&h.consumer, self.me) {
            // Wake a sleeping producer so it sees the end closed.
            h.space.bump();
        }
    }
}

/// Published elements lent by [`Consumer::read_chunk`]; freed by `commit`.
#[derive(Debug)]
pub struct ReadChunk<'a> {
    consumer: &'a mut Consumer,
    n: u32,
    _tokens: Tokens,
}

impl ReadChunk<'_> {
    /// The chunk's bytes as [`SharedBytes`] (read them with [`copy_from_shared`]), split at
    /// the ring's end.
    pub fn as_shared_slices(&self) -> (&SharedBytes, &SharedBytes) {
        let ((pa, la), (pb, lb)) = self.consumer.ring.runs(self.consumer.head, self.n);
        let nn = |p: *mut u8| NonNull::new(p).expect("slot pointer is non-null");
        // SAFETY: published slots (Acquire in `avail`) in bounds, not written by the producer
        // until we commit; this process reads them only through these views.
        unsafe { (shared_bytes(nn(pa), la), shared_bytes(nn(pb), lb)) }
    }

    /// The chunk's bytes, split at the ring's end. As for [`Consumer::pop_with`], a `&[u8]`
    /// is sound only while no process writes the slots; see
    /// [`as_shared_slices`](ReadChunk::as_shared_slices) for untrusted peers.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let ((pa, la), (pb, lb)) = self.consumer.ring.runs(self.consumer.head, self.n);
        // SAFETY: published slots (Acquire in `avail`) in bounds, not written by the
        // producer until we commit.
        unsafe {
            (
                core::slice::from_raw_parts(pa, la),
                core::slice::from_raw_parts(pb, lb),
            )
        }
    }

    /// Frees the first `k` elements (`k <= n`, clamped).
    pub fn commit(self, k: u32) {
        let k = k.min(self.n);
        crate::sync::end(self._tokens);
        self.consumer.release_slots(k);
    }

    /// Frees all `n` elements.
    pub fn commit_all(self) {
        let n = self.n;
        self.commit(n);
    }
}
