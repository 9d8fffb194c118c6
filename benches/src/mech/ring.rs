//! mproc's raw rings (`mproc-ring`) over `MAP_SHARED` memory, one ring per direction:
//! [`RawSpsc`] (fixed-size elements), [`RawRecord`] (variable-length records, what `Pipe`
//! runs on) and [`RawMpmc`] (what `Queue` runs on). No blocking layer: a waiting side spins,
//! as on the Lamport ring, so these compare the ring algorithms alone.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::rc::Rc;

use mproc_ring::{
    Consumer, MpmcRing, MpmcShape, ParticipantId, PopError, Producer, PushError, ReadError,
    RecordReader, RecordRing, RecordShape, RecordWriter, SpscRing, SpscShape, TryPopError,
    TryPushError, WriteError,
};

use crate::shm::SharedMap;
use crate::transport::{get_seq, message_buf, put_seq, slots_for};
use crate::{BenchError, Deadline, Spin, Transport};

/// A shared mapping, the two regions in it, and each region's length.
type Regions = (Rc<SharedMap>, [NonNull<u8>; 2], usize);

/// Two regions of `len` bytes each (page aligned) in one shared mapping.
fn two_regions(len: usize) -> Result<Regions, BenchError> {
    let len = len.next_multiple_of(4096);
    let map = Rc::new(SharedMap::new(2 * len)?);
    // SAFETY: `len` is inside the mapping of `2 * len` bytes.
    let second = unsafe { NonNull::new_unchecked(map.ptr().as_ptr().add(len)) };
    let first = map.ptr();
    Ok((map, [first, second], len))
}

/// Participant id of side `i` (0 = the parent's end, 1 = the peer's).
fn id(side: u32) -> ParticipantId {
    ParticipantId::new(side + 1).expect("nonzero")
}

/// One end over two SPSC rings; the roles are claimed on first use, in the process that
/// uses them (a claim made before `fork` would be released by the parent's drop).
#[derive(Debug)]
pub struct SpscEnd {
    side: u32,
    tx: SpscRing,
    rx: SpscRing,
    producer: Option<Producer>,
    consumer: Option<Consumer>,
    buf: Vec<u8>,
    _map: Rc<SharedMap>,
}

/// `mproc-ring`'s SPSC ring, spinning.
#[derive(Debug)]
pub struct RawSpsc;

impl Transport for RawSpsc {
    const NAME: &'static str = "mproc-ring SPSC (raw)";
    const BLOCKING: bool = false;
    type End = SpscEnd;

    fn pair(size: usize) -> Result<(SpscEnd, SpscEnd), BenchError> {
        let shape = SpscShape {
            capacity: slots_for(size),
            slot_size: size as u32,
        };
        let len = SpscRing::required_size(shape).map_err(crate::error::api)?;
        let (map, [r0, r1], len) = two_regions(len)?;
        // SAFETY: each region is page aligned, `len` bytes inside the zeroed mapping that
        // both ends keep alive (`_map`), and initialised once here before any use.
        let (a, b) = unsafe {
            (
                SpscRing::init(r0, len, shape).map_err(crate::error::api)?,
                SpscRing::init(r1, len, shape).map_err(crate::error::api)?,
            )
        };
        let end = |side, tx: &SpscRing, rx: &SpscRing| SpscEnd {
            side,
            tx: tx.clone(),
            rx: rx.clone(),
            producer: None,
            consumer: None,
            buf: message_buf(size),
            _map: map.clone(),
        };
        Ok((end(0, &a, &b), end(1, &b, &a)))
    }

    #[inline]
    fn send(e: &mut SpscEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        if e.producer.is_none() {
            e.producer = Some(e.tx.claim_producer(id(e.side)).map_err(crate::error::api)?);
        }
        let p = e.producer.as_mut().expect("claimed");
        put_seq(&mut e.buf, seq);
        let mut spin = Spin::new(deadline, "SPSC space");
        loop {
            match p.push(&e.buf[..e.tx.slot_size() as usize]) {
                Ok(()) => return Ok(()),
                Err(PushError::Full) => spin.turn()?,
                Err(err) => return Err(crate::error::api(err)),
            }
        }
    }

    #[inline]
    fn recv(e: &mut SpscEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        if e.consumer.is_none() {
            e.consumer = Some(e.rx.claim_consumer(id(e.side)).map_err(crate::error::api)?);
        }
        let c = e.consumer.as_mut().expect("claimed");
        let mut spin = Spin::new(deadline, "an SPSC element");
        loop {
            match c.pop(&mut e.buf) {
                Ok(()) => return get_seq(&e.buf),
                Err(PopError::Empty) => spin.turn()?,
                Err(err) => return Err(crate::error::api(err)),
            }
        }
    }
}

/// One end over two record rings (roles claimed on first use, as for [`SpscEnd`]).
#[derive(Debug)]
pub struct RecordEnd {
    side: u32,
    tx: RecordRing,
    rx: RecordRing,
    writer: Option<RecordWriter>,
    reader: Option<RecordReader>,
    buf: Vec<u8>,
    _map: Rc<SharedMap>,
}

/// `mproc-ring`'s record ring (variable-length records), spinning.
#[derive(Debug)]
pub struct RawRecord;

impl Transport for RawRecord {
    const NAME: &'static str = "mproc-ring record (raw)";
    const BLOCKING: bool = false;
    type End = RecordEnd;

    fn pair(size: usize) -> Result<(RecordEnd, RecordEnd), BenchError> {
        let bytes = (slots_for(size) as usize * (size + 16)).next_power_of_two();
        let shape = RecordShape {
            capacity: bytes as u32,
        };
        let len = RecordRing::required_size(shape).map_err(crate::error::api)?;
        let (map, [r0, r1], len) = two_regions(len)?;
        // SAFETY: as in `RawSpsc::pair`.
        let (a, b) = unsafe {
            (
                RecordRing::init(r0, len, shape).map_err(crate::error::api)?,
                RecordRing::init(r1, len, shape).map_err(crate::error::api)?,
            )
        };
        let end = |side, tx: &RecordRing, rx: &RecordRing| RecordEnd {
            side,
            tx: tx.clone(),
            rx: rx.clone(),
            writer: None,
            reader: None,
            buf: message_buf(size),
            _map: map.clone(),
        };
        Ok((end(0, &a, &b), end(1, &b, &a)))
    }

    #[inline]
    fn send(e: &mut RecordEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        if e.writer.is_none() {
            e.writer = Some(e.tx.claim_writer(id(e.side)).map_err(crate::error::api)?);
        }
        let w = e.writer.as_mut().expect("claimed");
        put_seq(&mut e.buf, seq);
        let mut spin = Spin::new(deadline, "record space");
        loop {
            match w.try_write(&e.buf) {
                Ok(()) => return Ok(()),
                Err(WriteError::Full) => spin.turn()?,
                Err(err) => return Err(crate::error::api(err)),
            }
        }
    }

    #[inline]
    fn recv(e: &mut RecordEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        if e.reader.is_none() {
            e.reader = Some(e.rx.claim_reader(id(e.side)).map_err(crate::error::api)?);
        }
        let r = e.reader.as_mut().expect("claimed");
        let mut spin = Spin::new(deadline, "a record");
        loop {
            match r.try_read() {
                Ok(rec) => {
                    let bytes = rec.bytes();
                    if bytes.len() != e.buf.len() {
                        return Err(BenchError::Corrupt(format!("record of {}", bytes.len())));
                    }
                    e.buf.copy_from_slice(bytes);
                    drop(rec);
                    return get_seq(&e.buf);
                }
                Err(ReadError::Empty) => spin.turn()?,
                Err(err) => return Err(crate::error::api(err)),
            }
        }
    }
}

/// One end over two MPMC rings.
#[derive(Debug)]
pub struct MpmcEnd {
    me: ParticipantId,
    tx: MpmcRing,
    rx: MpmcRing,
    buf: Vec<u8>,
    _map: Rc<SharedMap>,
}

/// `mproc-ring`'s MPMC ring (claimant-carrying slot words), spinning.
#[derive(Debug)]
pub struct RawMpmc;

impl Transport for RawMpmc {
    const NAME: &'static str = "mproc-ring MPMC (raw)";
    const BLOCKING: bool = false;
    type End = MpmcEnd;

    fn pair(size: usize) -> Result<(MpmcEnd, MpmcEnd), BenchError> {
        let shape = MpmcShape {
            capacity: slots_for(size),
            slot_size: size as u32,
        };
        let len = MpmcRing::required_size(shape).map_err(crate::error::api)?;
        let (map, [r0, r1], len) = two_regions(len)?;
        // SAFETY: as in `RawSpsc::pair`.
        let (a, b) = unsafe {
            (
                MpmcRing::init(r0, len, shape).map_err(crate::error::api)?,
                MpmcRing::init(r1, len, shape).map_err(crate::error::api)?,
            )
        };
        let end = |side, tx: &MpmcRing, rx: &MpmcRing| MpmcEnd {
            me: id(side),
            tx: tx.clone(),
            rx: rx.clone(),
            buf: message_buf(size),
            _map: map.clone(),
        };
        Ok((end(0, &a, &b), end(1, &b, &a)))
    }

    #[inline]
    fn send(e: &mut MpmcEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        let mut spin = Spin::new(deadline, "MPMC space");
        loop {
            match e.tx.try_push(e.me, &e.buf) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Full | TryPushError::Contended) => spin.turn()?,
                Err(err) => return Err(crate::error::api(err)),
            }
        }
    }

    #[inline]
    fn recv(e: &mut MpmcEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        let mut spin = Spin::new(deadline, "an MPMC slot");
        loop {
            match e.rx.try_pop(e.me, &mut e.buf) {
                Ok(n) if n == e.buf.len() => return get_seq(&e.buf),
                Ok(n) => return Err(BenchError::Corrupt(format!("slot of {n} bytes"))),
                Err(TryPopError::Empty | TryPopError::Contended) => spin.turn()?,
                Err(err) => return Err(crate::error::api(err)),
            }
        }
    }
}
