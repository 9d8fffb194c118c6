//! SPSC record ring: variable-length, length-prefixed byte records with wrap-around padding.
//! The facade's `Pipe` runs on it.
//!
//! Algorithm: the [`crate::SpscRing`] machinery (Lamport with cached indices) over 8-byte
//! units, with records laid out as in a BipBuffer-less "padding record" log ring (as in
//! Aeron's and LMAX's byte rings): each record is an 8-byte header
//! `{ len: u32, flags: u32 }` (little-endian) followed by `len` bytes, rounded up to 8. A
//! record never wraps: when it does not fit before the end, the writer fills the rest with a
//! padding record (flag `PAD`) and starts at offset 0.
//!
//! `max_record_len() = capacity / 2 - 8`: with records no larger than half the ring, a record
//! always fits once the ring has drained (the padding before it is then shorter than it), so
//! a writer can never be stuck on a record that is too big for any position. Larger messages
//! are the facade's job: it sends them in fragments with the [`Record::more_follows`] flag.
//!
//! The reader validates every header against the bytes published and the ring's bounds; a
//! bad one drops everything currently published (counted in `corrupt_count`) and reports
//! `Corrupt`, since nothing after a bad length can be trusted.
#![allow(unsafe_code)]
// `init`/`attach` (in-place layouts) are not built under loom, which uses heap values.
#![cfg_attr(mproc_loom, allow(unused_imports))]

use core::ptr::NonNull;

use mproc_core::shared::{SharedBytes, copy_from_shared, shared_bytes};

use crate::Doorbell;
use crate::layout::{AttachError, LayoutError, RingKind};
use crate::role::{ClaimError, ParticipantId, Role};
use crate::spsc::{Consumer, Producer, PushError, SpscRing, SpscShape};
use crate::sync::{Ordering, Tokens};

const UNIT: u32 = 8;
const FLAG_PAD: u32 = 1;
const FLAG_MORE: u32 = 2;

/// Shape of a [`RecordRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordShape {
    /// Bytes of record space; a power of two in `32..=2^30`.
    pub capacity: u32,
}

/// A single-writer single-reader ring of variable-length byte records. Python: the byte
/// stream under `multiprocessing.Connection` (`send_bytes`/`recv_bytes`).
#[derive(Debug, Clone)]
pub struct RecordRing {
    inner: SpscRing,
}

impl RecordRing {
    /// Smallest capacity in bytes.
    pub const MIN_CAPACITY: u32 = 32;
    /// Largest capacity in bytes.
    pub const MAX_CAPACITY: u32 = 1 << 30;

    fn units(shape: RecordShape) -> Result<SpscShape, LayoutError> {
        let c = shape.capacity;
        if !c.is_power_of_two() || !(Self::MIN_CAPACITY..=Self::MAX_CAPACITY).contains(&c) {
            return Err(LayoutError::BadCapacity(c));
        }
        Ok(SpscShape {
            capacity: c / UNIT,
            slot_size: UNIT,
        })
    }

    /// Bytes a region must have for `shape`.
    ///
    /// # Errors
    /// A capacity that is not a power of two in range.
    pub fn required_size(shape: RecordShape) -> Result<usize, LayoutError> {
        SpscRing::required_size(Self::units(shape)?)
    }

    /// Initialises a record ring in place.
    ///
    /// # Errors
    /// Bad shape, region too small or misaligned.
    ///
    /// # Safety
    /// As for [`SpscRing::init`].
    #[cfg(not(mproc_loom))]
    pub unsafe fn init(
        region: NonNull<u8>,
        len: usize,
        shape: RecordShape,
    ) -> Result<RecordRing, LayoutError> {
        let units = Self::units(shape)?;
        // SAFETY: delegated to the caller.
        let inner = unsafe { SpscRing::init_kind(region, len, units, RingKind::Record) }?;
        Ok(RecordRing { inner })
    }

    /// Attaches to an initialised record ring, validating its header.
    ///
    /// # Errors
    /// One [`AttachError`] per failed check.
    ///
    /// # Safety
    /// As for [`SpscRing::attach`].
    #[cfg(not(mproc_loom))]
    pub unsafe fn attach(region: NonNull<u8>, len: usize) -> Result<RecordRing, AttachError> {
        // SAFETY: delegated to the caller.
        let inner = unsafe { SpscRing::attach_kind(region, len, RingKind::Record) }?;
        if inner.slot != UNIT || inner.cap * UNIT < Self::MIN_CAPACITY {
            return Err(AttachError::BadSlotSize(inner.slot));
        }
        Ok(RecordRing { inner })
    }

    /// A record ring on the heap.
    ///
    /// # Errors
    /// A bad shape.
    pub fn new(shape: RecordShape) -> Result<RecordRing, LayoutError> {
        Ok(RecordRing {
            inner: SpscRing::new_kind(Self::units(shape)?, RingKind::Record)?,
        })
    }

    /// Bytes of record space.
    pub fn capacity(&self) -> u32 {
        self.inner.cap * UNIT
    }

    /// Largest record payload accepted: `capacity / 2 - 8`.
    pub fn max_record_len(&self) -> usize {
        (self.capacity() / 2 - UNIT) as usize
    }

    /// Bytes in use (headers and padding included), in `0..=capacity`; same guarantees as
    /// [`SpscRing::len`].
    pub fn len_bytes(&self) -> u32 {
        self.inner.len() * UNIT
    }

    /// No unread bytes (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Rung by the writer after writes; a reader sleeps on it.
    pub fn items_doorbell(&self) -> &Doorbell {
        self.inner.items_doorbell()
    }

    /// Rung by the reader after reads; a writer sleeps on it.
    pub fn space_doorbell(&self) -> &Doorbell {
        self.inner.space_doorbell()
    }

    /// Who holds the writer end.
    pub fn writer_role(&self) -> Role {
        self.inner.producer_role()
    }

    /// Who holds the reader end.
    pub fn reader_role(&self) -> Role {
        self.inner.consumer_role()
    }

    /// Times the reader dropped published bytes because a record header was invalid.
    pub fn corrupt_count(&self) -> u64 {
        self.inner.corrupt_count()
    }

    /// Claims the writer end.
    ///
    /// # Errors
    /// As for [`SpscRing::claim_producer`].
    pub fn claim_writer(&self, me: ParticipantId) -> Result<RecordWriter, ClaimError> {
        Ok(RecordWriter {
            p: self.inner.claim_producer(me)?,
        })
    }

    /// Claims the writer end, taking it over from a holder `alive` says is dead.
    ///
    /// # Errors
    /// As for [`SpscRing::claim_producer`].
    pub fn claim_writer_from_dead(
        &self,
        me: ParticipantId,
        alive: impl Fn(u32) -> bool,
    ) -> Result<RecordWriter, ClaimError> {
        Ok(RecordWriter {
            p: self.inner.claim_producer_from_dead(me, alive)?,
        })
    }

    /// Claims the reader end.
    ///
    /// # Errors
    /// As for [`SpscRing::claim_producer`].
    pub fn claim_reader(&self, me: ParticipantId) -> Result<RecordReader, ClaimError> {
        Ok(RecordReader {
            c: self.inner.claim_consumer(me)?,
        })
    }

    /// Claims the reader end, taking it over from a holder `alive` says is dead.
    ///
    /// # Errors
    /// As for [`SpscRing::claim_producer`].
    pub fn claim_reader_from_dead(
        &self,
        me: ParticipantId,
        alive: impl Fn(u32) -> bool,
    ) -> Result<RecordReader, ClaimError> {
        Ok(RecordReader {
            c: self.inner.claim_consumer_from_dead(me, alive)?,
        })
    }
}

/// Why a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Not enough free space right now. Python: `queue.Full`.
    #[error("ring is full")]
    Full,
    /// The record is longer than `max_record_len` (send it in fragments).
    #[error("record of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// [`RecordRing::max_record_len`].
        max: usize,
    },
    /// The reader's index is invalid.
    #[error("ring indices are corrupt")]
    Corrupt,
}

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No record published. Python: `queue.Empty`.
    #[error("ring is empty")]
    Empty,
    /// An invalid index or record header; the published bytes were dropped.
    #[error("ring data is corrupt")]
    Corrupt,
}

fn header_at(ring: &SpscRing, unit: u64) -> *mut u8 {
    ring.slot_ptr(unit)
}

/// The writer end of a [`RecordRing`]; dropping it closes the end.
#[derive(Debug)]
pub struct RecordWriter {
    p: Producer,
}

impl RecordWriter {
    /// Largest record payload.
    pub fn max_record_len(&self) -> usize {
        (self.p.ring.cap * UNIT / 2 - UNIT) as usize
    }

    /// Writes one record. Python: `Connection.send_bytes`.
    ///
    /// # Errors
    /// `Full`, `TooLarge`, `Corrupt`.
    pub fn try_write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.try_write_fragment(bytes, false)
    }

    /// Writes one record flagged "more fragments of this message follow" when `more`.
    ///
    /// # Errors
    /// As for `try_write`.
    pub fn try_write_fragment(&mut self, bytes: &[u8], more: bool) -> Result<(), WriteError> {
        let mut r = self.reserve(bytes.len())?;
        r.bytes_mut().copy_from_slice(bytes);
        r.commit_len(bytes.len(), more);
        Ok(())
    }

    /// Reserves space for a record of up to `len` bytes, lent in place for zero-copy writes;
    /// nothing is visible to the reader until a `commit*`; dropping the reservation cancels.
    ///
    /// # Errors
    /// `Full`, `TooLarge`, `Corrupt`.
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_>, WriteError> {
        let max = self.max_record_len();
        if len > max {
            return Err(WriteError::TooLarge { len, max });
        }
        let cap = self.p.ring.cap;
        let need = 1 + (len as u32).div_ceil(UNIT);
        let off = (self.p.tail & u64::from(cap - 1)) as u32;
        let to_end = cap - off;
        let pad = if need <= to_end { 0 } else { to_end };
        let free = self.p.free(pad + need).map_err(|e| match e {
            PushError::Corrupt => WriteError::Corrupt,
            _ => WriteError::Full,
        })?;
        if free < pad + need {
            return Err(WriteError::Full);
        }
        let tokens = self.p.ring.tokens_write(self.p.tail, pad + need);
        if pad > 0 {
            let h = header_at(&self.p.ring, self.p.tail);
            let hdr = ((pad * UNIT - UNIT) as u64) | (u64::from(FLAG_PAD) << 32);
            // SAFETY: the unit at `tail` is free and ours (checked by `free`), in bounds.
            unsafe { h.cast::<[u8; 8]>().write(hdr.to_le_bytes()) };
        }
        Ok(Reservation {
            w: &mut self.p,
            pad,
            len,
            _tokens: tokens,
        })
    }

    /// Whether the reader released its end.
    pub fn is_abandoned(&self) -> bool {
        self.p.is_abandoned()
    }
}

/// Space for one record, lent by [`RecordWriter::reserve`].
#[derive(Debug)]
pub struct Reservation<'a> {
    w: &'a mut Producer,
    /// Units of padding before the record.
    pad: u32,
    len: usize,
    _tokens: Tokens,
}

impl Reservation<'_> {
    fn record_unit(&self) -> u64 {
        self.w.tail.wrapping_add(u64::from(self.pad))
    }

    /// The record's payload bytes (`len` of them), to fill in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let h = header_at(&self.w.ring, self.record_unit());
        // SAFETY: the record's units are free, ours, contiguous and in bounds (`reserve`
        // placed the record before the ring's end); the payload follows the 8-byte header.
        unsafe { core::slice::from_raw_parts_mut(h.add(UNIT as usize), self.len) }
    }

    /// Publishes the record with its full reserved length.
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len, false);
    }

    /// Publishes the first `len` bytes (clamped to the reserved length) as a record,
    /// flagged "more fragments follow" when `more`. Lets a serialiser reserve a maximum and
    /// publish what it wrote.
    pub fn commit_len(self, len: usize, more: bool) {
        let len = len.min(self.len) as u32;
        let h = header_at(&self.w.ring, self.record_unit());
        let flags = if more { FLAG_MORE } else { 0 };
        let hdr = u64::from(len) | (u64::from(flags) << 32);
        // SAFETY: the record's header unit is ours and in bounds (see `bytes_mut`).
        unsafe { h.cast::<[u8; 8]>().write(hdr.to_le_bytes()) };
        let units = self.pad + 1 + len.div_ceil(UNIT);
        crate::sync::end(self._tokens);
        self.w.publish(units);
    }
}

/// The reader end of a [`RecordRing`]; dropping it closes the end.
#[derive(Debug)]
pub struct RecordReader {
    c: Consumer,
}

impl RecordReader {
    /// Lends the next record in place; it is released when the [`Record`] is dropped.
    /// Python: `Connection.recv_bytes`.
    ///
    /// # Errors
    /// `Empty`; `Corrupt` (an invalid index or header: the published bytes are dropped).
    pub fn try_read(&mut self) -> Result<Record<'_>, ReadError> {
        let cap = self.c.ring.cap;
        // At most two rounds: one padding record, then the record.
        for _ in 0..2 {
            let have = self.c.avail(1).map_err(|_| ReadError::Corrupt)?;
            if have == 0 {
                return Err(ReadError::Empty);
            }
            let off = (self.c.head & u64::from(cap - 1)) as u32;
            let t = self.c.ring.mem.guard(off as usize).read();
            let h = header_at(&self.c.ring, self.c.head);
            // SAFETY: the unit at `head` is published (Acquire in `avail`) and in bounds.
            let hdr = u64::from_le_bytes(unsafe { h.cast::<[u8; 8]>().read() });
            crate::sync::end(t);
            let (len, flags) = (hdr as u32, (hdr >> 32) as u32);
            let to_end = cap - off;
            if flags == FLAG_PAD {
                if len != (to_end - 1) * UNIT || to_end > have {
                    return Err(self.corrupt());
                }
                self.c.release_slots(to_end);
                continue;
            }
            if flags & !FLAG_MORE != 0 || len > cap * UNIT / 2 - UNIT {
                return Err(self.corrupt());
            }
            let units = 1 + len.div_ceil(UNIT);
            if units > have || units > to_end {
                return Err(self.corrupt());
            }
            let tokens = self.c.ring.tokens_read(self.c.head, units);
            return Ok(Record {
                // SAFETY: in bounds (checked `units <= to_end` above).
                payload: unsafe { h.add(UNIT as usize) },
                len: len as usize,
                more: flags & FLAG_MORE != 0,
                units,
                _tokens: tokens,
                r: &mut self.c,
            });
        }
        // Two paddings in a row cannot happen in a valid ring.
        Err(self.corrupt())
    }

    /// Drops everything published and counts the corruption.
    fn corrupt(&mut self) -> ReadError {
        let have = self.c.avail(u32::MAX).unwrap_or(0);
        self.c.release_slots(have);
        // Relaxed: a statistic.
        self.c
            .ring
            .mem
            .hdr()
            .corrupt
            .fetch_add(1, Ordering::Relaxed);
        ReadError::Corrupt
    }

    /// Reads the next record into `out` (replacing its contents, copied with
    /// [`copy_from_shared`]); returns `more_follows`.
    ///
    /// # Errors
    /// As for `try_read`.
    pub fn try_read_into(&mut self, out: &mut Vec<u8>) -> Result<bool, ReadError> {
        let rec = self.try_read()?;
        out.clear();
        out.resize(rec.len, 0);
        copy_from_shared(out, rec.shared());
        Ok(rec.more_follows())
    }

    /// Whether the writer released its end (drain until `Empty` before treating it as EOF).
    pub fn is_abandoned(&self) -> bool {
        self.c.is_abandoned()
    }
}

/// A record lent in place by [`RecordReader::try_read`]; dropping it frees its space.
#[derive(Debug)]
pub struct Record<'a> {
    r: &'a mut Consumer,
    payload: *const u8,
    len: usize,
    more: bool,
    units: u32,
    _tokens: Tokens,
}

impl Record<'_> {
    /// The record's bytes as [`SharedBytes`]: copy them out with [`copy_from_shared`]. The
    /// way to read a record when the writer may be hostile.
    pub fn shared(&self) -> &SharedBytes {
        let p = NonNull::new(self.payload.cast_mut()).expect("payload pointer is non-null");
        // SAFETY: validated in `try_read` (published, in bounds, `len` within the record's
        // units); alive while the reader is borrowed; read only atomically through this view.
        unsafe { shared_bytes(p, self.len) }
    }

    /// The record's bytes as a `&[u8]`: sound while no process writes them, which the
    /// writer never does before the record is dropped; a hostile process mapping the ring
    /// could (a racing read is undefined behaviour). Use [`shared`](Record::shared) then.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: validated in `try_read` (published, in bounds, `len` within the record's
        // units); the writer does not reuse the space until we drop `self`.
        unsafe { core::slice::from_raw_parts(self.payload, self.len) }
    }

    /// Whether this is a fragment with more of the same message following.
    pub fn more_follows(&self) -> bool {
        self.more
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.r.release_slots(self.units);
    }
}
