//! A ring in a heap region whose bytes the fuzzer overwrites between operations, as a
//! hostile peer sharing the segment could. Every operation must return (no hang), and none
//! may panic or touch memory outside the region (the sanitizer's job).
#![no_main]

use std::alloc::Layout;
use std::ptr::NonNull;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mproc_ring::{
    MpmcRing, MpmcShape, ParticipantId, RecordRing, RecordShape, SpscRing, SpscShape,
    TryPopError, TryPushError, REGION_ALIGN,
};

#[derive(Debug, Arbitrary)]
enum Op {
    /// Overwrite region bytes at `offset` (modulo the region length).
    Scribble { offset: u32, bytes: Vec<u8> },
    /// Overwrite an aligned 8-byte word with a value (targets indices and slot words).
    Word { index: u16, value: u64 },
    Push(Vec<u8>),
    Pop,
    Recover(u32),
    Observe,
    Reattach,
}

#[derive(Debug, Arbitrary)]
struct Input {
    kind: u8,
    cap_log: u8,
    ops: Vec<Op>,
}

struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Region {
    fn new(len: usize) -> Region {
        let layout = Layout::from_size_align(len, REGION_ALIGN).unwrap();
        // SAFETY: nonzero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
        Region { ptr, layout }
    }

    fn scribble(&self, offset: usize, bytes: &[u8]) {
        let len = self.layout.size();
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: index reduced modulo the region length. A real hostile peer writes
            // concurrently; here writes happen between operations, which is the part a
            // single-threaded fuzzer can reproduce.
            unsafe { self.ptr.as_ptr().add((offset + i) % len).write(*b) };
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

fn id(n: u32) -> ParticipantId {
    ParticipantId::new(n).unwrap()
}

fn apply_memory_op(region: &Region, op: &Op) -> bool {
    match op {
        Op::Scribble { offset, bytes } => {
            region.scribble(*offset as usize, &bytes[..bytes.len().min(64)]);
            true
        }
        Op::Word { index, value } => {
            region.scribble(*index as usize * 8, &value.to_le_bytes());
            true
        }
        _ => false,
    }
}

fn mpmc(cap: u32, ops: &[Op]) {
    let shape = MpmcShape { capacity: cap, slot_size: 24 };
    let region = Region::new(MpmcRing::required_size(shape).unwrap());
    // SAFETY: a fresh aligned region of the right size that outlives the handles.
    let mut r = unsafe { MpmcRing::init(region.ptr, region.layout.size(), shape) }.unwrap();
    // Sticky corruption, while no memory op intervenes (one may scribble the poison flags
    // themselves, which no check can tell): after a push or pop found the ring corrupt
    // (counted: a fresh detection poisons both sides), every push and pop says `Corrupt`
    // at once; after one said `Corrupt` because its own side's flag was set, that side does.
    let (mut push_corrupt, mut pop_corrupt) = (false, false);
    // The stall detector's look (invariant 4) never fires before memory was forged.
    let mut forged = false;
    for op in ops {
        if apply_memory_op(&region, op) {
            (push_corrupt, pop_corrupt) = (false, false);
            forged = true;
            continue;
        }
        match op {
            Op::Push(v) => {
                let before = r.corrupt_count();
                let res = r.try_push(id(1), v);
                // (A payload too long for any slot is `TooLarge` first: checked before
                // the ring is looked at.)
                let refused =
                    matches!(res, Err(TryPushError::Corrupt | TryPushError::TooLarge { .. }));
                assert!(!push_corrupt || refused, "{res:?}");
                if res == Err(TryPushError::Corrupt) {
                    assert!(r.is_poisoned());
                    push_corrupt = true;
                    pop_corrupt |= r.corrupt_count() != before;
                }
            }
            Op::Pop => {
                let before = r.corrupt_count();
                let res = r.try_pop_with(id(2), |b| assert!(b.len() <= 24));
                assert!(!pop_corrupt || res == Err(TryPopError::Corrupt), "{res:?}");
                if res == Err(TryPopError::Corrupt) {
                    assert!(r.is_poisoned());
                    pop_corrupt = true;
                    push_corrupt |= r.corrupt_count() != before;
                }
            }
            Op::Recover(dead) => {
                let _ = r.recover(|p| p != *dead);
            }
            Op::Observe => {
                assert!(r.len() <= r.capacity());
                let _ = (r.is_empty(), r.is_full(), r.lost_writes(), r.corrupt_count());
                let stall = r.unclaimed_head();
                assert!(forged || stall.is_none(), "a stall on an unforged ring: {stall:?}");
                if stall.is_some() {
                    // What the queue does after the interval: the ring is then poisoned.
                    r.report_corrupt();
                    assert!(r.is_poisoned());
                    (push_corrupt, pop_corrupt) = (true, true);
                }
            }
            Op::Reattach => {
                // SAFETY: as above.
                if let Ok(again) = unsafe { MpmcRing::attach(region.ptr, region.layout.size()) } {
                    r = again;
                }
            }
            _ => unreachable!(),
        }
    }
}

fn spsc(cap: u32, ops: &[Op]) {
    let shape = SpscShape { capacity: cap, slot_size: 8 };
    let region = Region::new(SpscRing::required_size(shape).unwrap());
    // SAFETY: as in `mpmc`.
    let r = unsafe { SpscRing::init(region.ptr, region.layout.size(), shape) }.unwrap();
    let mut p = r.claim_producer(id(1)).ok();
    let mut c = r.claim_consumer(id(2)).ok();
    for op in ops {
        if apply_memory_op(&region, op) {
            continue;
        }
        match op {
            Op::Push(v) => {
                if let Some(p) = &mut p {
                    let _ = p.push(&v[..v.len().min(8)]);
                    let _ = p.push_slice(&[7; 24]);
                }
            }
            Op::Pop => {
                if let Some(c) = &mut c {
                    let mut out = [0u8; 32];
                    let _ = c.pop(&mut out);
                    let _ = c.pop_slice(&mut out);
                }
            }
            Op::Recover(_) => {
                // Re-claim roles as a successor would after a crash.
                drop(p.take());
                drop(c.take());
                p = r.claim_producer_from_dead(id(3), |_| false).ok();
                c = r.claim_consumer_from_dead(id(4), |_| false).ok();
            }
            Op::Observe => assert!(r.len() <= r.capacity()),
            Op::Reattach => {
                // SAFETY: as above.
                let _ = unsafe { SpscRing::attach(region.ptr, region.layout.size()) };
            }
            _ => unreachable!(),
        }
    }
}

fn record(cap: u32, ops: &[Op]) {
    let shape = RecordShape { capacity: cap };
    let region = Region::new(RecordRing::required_size(shape).unwrap());
    // SAFETY: as in `mpmc`.
    let r = unsafe { RecordRing::init(region.ptr, region.layout.size(), shape) }.unwrap();
    let mut w = r.claim_writer(id(1)).ok();
    let mut rd = r.claim_reader(id(2)).ok();
    for op in ops {
        if apply_memory_op(&region, op) {
            continue;
        }
        match op {
            Op::Push(v) => {
                if let Some(w) = &mut w {
                    let _ = w.try_write(v);
                }
            }
            Op::Pop => {
                if let Some(rd) = &mut rd {
                    if let Ok(rec) = rd.try_read() {
                        assert!(rec.bytes().len() <= r.max_record_len());
                    }
                }
            }
            Op::Recover(_) => {
                drop(w.take());
                drop(rd.take());
                w = r.claim_writer_from_dead(id(3), |_| false).ok();
                rd = r.claim_reader_from_dead(id(4), |_| false).ok();
            }
            Op::Observe => assert!(r.len_bytes() <= r.capacity()),
            Op::Reattach => {
                // SAFETY: as above.
                let _ = unsafe { RecordRing::attach(region.ptr, region.layout.size()) };
            }
            _ => unreachable!(),
        }
    }
}

fuzz_target!(|input: Input| {
    let ops = &input.ops[..input.ops.len().min(256)];
    match input.kind % 3 {
        // Any MPMC capacity (exact, not only powers of two).
        0 => mpmc(u32::from(input.cap_log % 20) + 1, ops),
        1 => spsc(1 << (input.cap_log % 5), ops),
        _ => record(32 << (input.cap_log % 4), ops),
    }
});
