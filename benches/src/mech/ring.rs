//! mproc's raw rings (`mproc-ring`) over `MAP_SHARED` memory, one ring per direction:
//! [`RawSpsc`] (fixed-size elements), [`RawRecord`] (variable-length records, what `Pipe`
//! runs on) and [`RawMpmc`] (what `Queue` runs on). No blocking layer: a waiting side spins,
//! as on the Lamport ring, so these compare the ring algorithms alone.
#![allow(unsafe_code)]

use std::fmt::Display;
use std::ptr::NonNull;
use std::rc::Rc;

use mproc_ring::{
    Consumer, LayoutError, MpmcRing, MpmcShape, ParticipantId, PopError, Producer, PushError,
    ReadError, RecordReader, RecordRing, RecordShape, RecordWriter, SpscRing, SpscShape,
    TryPopError, TryPushError, WriteError,
};

use crate::shm::SharedMap;
use crate::transport::{crossed, get_seq, halves, message_buf, put_seq, slots_for};
use crate::{BenchError, Deadline, Spin, Transport};

/// Two rings of `shape`, laid out in place side by side in one fresh shared mapping (one per
/// direction), with the mapping that both ends keep alive.
fn two_rings<S: Copy, R>(
    shape: S,
    required_size: fn(S) -> Result<usize, LayoutError>,
    init: unsafe fn(NonNull<u8>, usize, S) -> Result<R, LayoutError>,
) -> Result<(Rc<SharedMap>, R, R), BenchError> {
    let len = required_size(shape)
        .map_err(crate::error::api)?
        .next_multiple_of(4096);
    let map = Rc::new(SharedMap::new(2 * len)?);
    // SAFETY: `len` is inside the mapping of `2 * len` bytes.
    let second = unsafe { NonNull::new_unchecked(map.ptr().as_ptr().add(len)) };
    // SAFETY: each region is page aligned, `len` bytes inside the zeroed mapping that both
    // ends keep alive (`_map`), and initialised once here before any use.
    let (a, b) = unsafe {
        (
            init(map.ptr(), len, shape).map_err(crate::error::api)?,
            init(second, len, shape).map_err(crate::error::api)?,
        )
    };
    Ok((map, a, b))
}

/// Participant id of side `i` (0 = the parent's end, 1 = the peer's).
fn id(side: u32) -> ParticipantId {
    ParticipantId::new(side + 1).expect("nonzero")
}

/// The role held in `slot`, claimed by `claim` on its first use (in the process that uses
/// it: a claim made before `fork` would be released by the parent's drop).
fn claimed<T, E: Display>(
    slot: &mut Option<T>,
    claim: impl FnOnce() -> Result<T, E>,
) -> Result<&mut T, BenchError> {
    if slot.is_none() {
        *slot = Some(claim().map_err(crate::error::api)?);
    }
    Ok(slot.as_mut().expect("claimed"))
}

/// Retries `op`, spinning until `deadline`, while it fails with an error that `waits` calls
/// "not yet" (full, empty, contended); any other error ends the wait.
#[inline]
fn spin_on<T, E: Display>(
    deadline: &Deadline,
    what: &'static str,
    waits: fn(&E) -> bool,
    mut op: impl FnMut() -> Result<T, E>,
) -> Result<T, BenchError> {
    let mut spin = Spin::new(deadline, what);
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(err) if waits(&err) => spin.turn()?,
            Err(err) => return Err(crate::error::api(err)),
        }
    }
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
        let (map, a, b) = two_rings(shape, SpscRing::required_size, SpscRing::init)?;
        Ok(crossed(halves(a), halves(b), |side, tx, rx| SpscEnd {
            side,
            tx,
            rx,
            producer: None,
            consumer: None,
            buf: message_buf(size),
            _map: map.clone(),
        }))
    }

    #[inline]
    fn send(e: &mut SpscEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        let p = claimed(&mut e.producer, || e.tx.claim_producer(id(e.side)))?;
        put_seq(&mut e.buf, seq);
        let element = &e.buf[..e.tx.slot_size() as usize];
        let full = |err: &PushError| matches!(err, PushError::Full);
        spin_on(deadline, "SPSC space", full, || p.push(element))
    }

    #[inline]
    fn recv(e: &mut SpscEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        let c = claimed(&mut e.consumer, || e.rx.claim_consumer(id(e.side)))?;
        let empty = |err: &PopError| matches!(err, PopError::Empty);
        spin_on(deadline, "an SPSC element", empty, || c.pop(&mut e.buf))?;
        get_seq(&e.buf)
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
        let (map, a, b) = two_rings(shape, RecordRing::required_size, RecordRing::init)?;
        Ok(crossed(halves(a), halves(b), |side, tx, rx| RecordEnd {
            side,
            tx,
            rx,
            writer: None,
            reader: None,
            buf: message_buf(size),
            _map: map.clone(),
        }))
    }

    #[inline]
    fn send(e: &mut RecordEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        let w = claimed(&mut e.writer, || e.tx.claim_writer(id(e.side)))?;
        put_seq(&mut e.buf, seq);
        let full = |err: &WriteError| matches!(err, WriteError::Full);
        spin_on(deadline, "record space", full, || w.try_write(&e.buf))
    }

    #[inline]
    fn recv(e: &mut RecordEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        let r = claimed(&mut e.reader, || e.rx.claim_reader(id(e.side)))?;
        let buf = &mut e.buf;
        let empty = |err: &ReadError| matches!(err, ReadError::Empty);
        spin_on(deadline, "a record", empty, || {
            r.try_read().map(|rec| {
                let bytes = rec.bytes();
                if bytes.len() != buf.len() {
                    return Err(BenchError::Corrupt(format!("record of {}", bytes.len())));
                }
                buf.copy_from_slice(bytes);
                Ok(())
            })
        })??;
        get_seq(&e.buf)
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
        let (map, a, b) = two_rings(shape, MpmcRing::required_size, MpmcRing::init)?;
        Ok(crossed(halves(a), halves(b), |side, tx, rx| MpmcEnd {
            me: id(side),
            tx,
            rx,
            buf: message_buf(size),
            _map: map.clone(),
        }))
    }

    #[inline]
    fn send(e: &mut MpmcEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        let busy = |err: &TryPushError| matches!(err, TryPushError::Full | TryPushError::Contended);
        spin_on(deadline, "MPMC space", busy, || e.tx.try_push(e.me, &e.buf))
    }

    #[inline]
    fn recv(e: &mut MpmcEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        let busy = |err: &TryPopError| matches!(err, TryPopError::Empty | TryPopError::Contended);
        let n = spin_on(deadline, "an MPMC slot", busy, || {
            e.rx.try_pop(e.me, &mut e.buf)
        })?;
        if n != e.buf.len() {
            return Err(BenchError::Corrupt(format!("slot of {n} bytes")));
        }
        get_seq(&e.buf)
    }
}
