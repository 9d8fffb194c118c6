//! The hardware's upper bound: a naive Lamport single-producer single-consumer ring over
//! `MAP_SHARED` memory, written here in a few dozen lines with none of mproc's duties (no
//! header validation, no untrusted-index checks, no roles, no blocking, no crash recovery).
//! Each side keeps its own position and a cached copy of the other's (the usual refinement
//! that saves a cache miss per message). Waiting is a spin.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::rc::Rc;

use crate::shm::SharedMap;
use crate::sync::{AtomicU64, Ordering};
use crate::transport::{crossed, get_seq, halves, message_buf, put_seq, slots_for};
use crate::{BenchError, Deadline, Spin, Transport};

/// Where the ring's `head` (consumer position) lives, from the ring base.
const HEAD: usize = 0;
/// Where `tail` (producer position) lives: its own 128-byte line (adjacent-line prefetch).
const TAIL: usize = 128;
/// First slot.
const DATA: usize = 256;

/// One direction's ring in the shared mapping.
#[derive(Debug)]
struct Ring {
    base: NonNull<u8>,
    mask: u64,
    slot: usize,
}

impl Ring {
    fn word(&self, at: usize) -> &AtomicU64 {
        // SAFETY: `base + at` (at = HEAD or TAIL) is 8-aligned inside the zeroed shared
        // mapping that the owning end keeps alive; it is only ever accessed atomically.
        unsafe { &*self.base.as_ptr().add(at).cast::<AtomicU64>() }
    }

    fn slot_ptr(&self, pos: u64) -> *mut u8 {
        // SAFETY: `pos & mask` < capacity, so the slot lies inside the mapping (sized for
        // DATA + capacity * slot in `pair`).
        unsafe {
            self.base
                .as_ptr()
                .add(DATA + (pos & self.mask) as usize * self.slot)
        }
    }
}

/// One end of a Lamport ring pair.
#[derive(Debug)]
pub struct LamportEnd {
    tx: Ring,
    rx: Ring,
    tail: u64,
    cached_head: u64,
    head: u64,
    cached_tail: u64,
    buf: Vec<u8>,
    _map: Rc<SharedMap>,
}

/// The naive shared-memory ring.
#[derive(Debug)]
pub struct Lamport;

impl Transport for Lamport {
    const NAME: &'static str = "naive shm ring";
    const BLOCKING: bool = false;
    type End = LamportEnd;

    fn pair(size: usize) -> Result<(LamportEnd, LamportEnd), BenchError> {
        let cap = slots_for(size) as usize;
        let slot = size.max(8).next_multiple_of(8);
        let ring_len = (DATA + cap * slot).next_multiple_of(4096);
        let map = Rc::new(SharedMap::new(2 * ring_len)?);
        let ring = |i: usize| Ring {
            // SAFETY: `i * ring_len` is inside the mapping of `2 * ring_len` bytes.
            base: unsafe { NonNull::new_unchecked(map.ptr().as_ptr().add(i * ring_len)) },
            mask: cap as u64 - 1,
            slot,
        };
        Ok(crossed(halves(0), halves(1), |_, tx, rx| LamportEnd {
            tx: ring(tx),
            rx: ring(rx),
            tail: 0,
            cached_head: 0,
            head: 0,
            cached_tail: 0,
            buf: message_buf(size),
            _map: map.clone(),
        }))
    }

    #[inline]
    fn send(e: &mut LamportEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        let cap = e.tx.mask + 1;
        if e.tail - e.cached_head == cap {
            let mut spin = Spin::new(deadline, "naive ring space");
            loop {
                // Acquire: pairs with the consumer's Release store of head, so its reads of
                // the slot happen before we overwrite it.
                e.cached_head = e.tx.word(HEAD).load(Ordering::Acquire);
                if e.tail - e.cached_head < cap {
                    break;
                }
                spin.turn()?;
            }
        }
        put_seq(&mut e.buf, seq);
        // SAFETY: the slot is ours (the consumer is past it, checked above) and `slot >=
        // buf.len()` bytes long.
        unsafe {
            std::ptr::copy_nonoverlapping(e.buf.as_ptr(), e.tx.slot_ptr(e.tail), e.buf.len())
        };
        e.tail += 1;
        // Release: the slot write happens before the consumer's Acquire load of tail.
        e.tx.word(TAIL).store(e.tail, Ordering::Release);
        Ok(())
    }

    #[inline]
    fn recv(e: &mut LamportEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        if e.head == e.cached_tail {
            let mut spin = Spin::new(deadline, "a naive ring message");
            loop {
                // Acquire: pairs with the producer's Release store of tail (slot written).
                e.cached_tail = e.rx.word(TAIL).load(Ordering::Acquire);
                if e.head != e.cached_tail {
                    break;
                }
                spin.turn()?;
            }
        }
        let len = e.buf.len();
        // SAFETY: the slot is published (head < tail) and holds `len` bytes we wrote.
        unsafe { std::ptr::copy_nonoverlapping(e.rx.slot_ptr(e.head), e.buf.as_mut_ptr(), len) };
        e.head += 1;
        // Release: our read of the slot happens before the producer reuses it.
        e.rx.word(HEAD).store(e.head, Ordering::Release);
        get_seq(&e.buf)
    }
}
