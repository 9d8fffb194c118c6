//! SPSC ring: smoke, roles, chunks, model-based property tests, threads, attach.
#![cfg(not(mproc_loom))]
#![allow(unsafe_code)]

mod common;

use std::collections::VecDeque;

use common::{id, scaled};
use mproc_ring::{
    ChunkError, ClaimError, LayoutError, MAX_SLOT_SIZE, PopError, PushError, Role, SpscRing,
    SpscShape,
};
use proptest::prelude::*;

fn ring(capacity: u32, slot_size: u32) -> SpscRing {
    SpscRing::new(SpscShape {
        capacity,
        slot_size,
    })
    .unwrap()
}

#[test]
fn smoke_and_wrap() {
    let r = ring(2, 4);
    let mut p = r.claim_producer(id(1)).unwrap();
    let mut c = r.claim_consumer(id(2)).unwrap();
    let mut out = [0u8; 4];
    assert_eq!(c.pop(&mut out), Err(PopError::Empty));
    for i in 0..10u32 {
        p.push(&i.to_le_bytes()).unwrap();
        p.push(&(i + 100).to_le_bytes()).unwrap();
        assert_eq!(p.push(&[0; 4]), Err(PushError::Full));
        assert!(r.is_full());
        c.pop(&mut out).unwrap();
        assert_eq!(u32::from_le_bytes(out), i);
        c.pop(&mut out).unwrap();
        assert_eq!(u32::from_le_bytes(out), i + 100);
    }
    assert_eq!(
        p.push(&[0; 3]),
        Err(PushError::WrongLength {
            len: 3,
            slot_size: 4
        })
    );
}

#[test]
fn shape_limits_are_exact() {
    // The largest slot is accepted and reported; one byte more, or zero, is refused.
    let r = ring(2, MAX_SLOT_SIZE);
    assert_eq!(r.slot_size(), MAX_SLOT_SIZE);
    assert_eq!(ring(4, 3).slot_size(), 3);
    for bad in [0, MAX_SLOT_SIZE + 1, u32::MAX] {
        let shape = SpscShape {
            capacity: 2,
            slot_size: bad,
        };
        assert_eq!(
            SpscRing::new(shape).unwrap_err(),
            LayoutError::BadSlotSize(bad)
        );
    }
}

#[test]
fn roles() {
    let r = ring(4, 1);
    assert_eq!(r.producer_role(), Role::Free);
    let p = r.claim_producer(id(1)).unwrap();
    assert_eq!(r.producer_role(), Role::Held(1));
    assert_eq!(r.claim_producer(id(2)).unwrap_err(), ClaimError::Held(1));
    // Holder 1 alive: no takeover.
    assert_eq!(
        r.claim_producer_from_dead(id(2), |_| true).unwrap_err(),
        ClaimError::Held(1)
    );
    let c = r.claim_consumer(id(3)).unwrap();
    assert!(!c.is_abandoned());
    // Holder 1 declared dead: taken over (the old handle is forgotten, as a dead process's).
    let p2 = r.claim_producer_from_dead(id(2), |i| i != 1).unwrap();
    std::mem::forget(p);
    assert_eq!(r.producer_role(), Role::Held(2));
    drop(p2);
    assert_eq!(r.producer_role(), Role::Closed);
    assert!(c.is_abandoned());
    // A closed end can be claimed again.
    let p3 = r.claim_producer(id(4)).unwrap();
    assert!(!c.is_abandoned());
    // And the other way round: the producer sees the consumer leave.
    assert!(!p3.is_abandoned());
    drop(c);
    assert!(p3.is_abandoned());
    let _c2 = r.claim_consumer(id(5)).unwrap();
    assert!(!p3.is_abandoned());
}

#[test]
fn a_full_ring_can_change_hands() {
    // Exactly full (tail - head == capacity) is a valid state for a new holder of either
    // role, not corruption.
    let r = ring(4, 1);
    let mut p = r.claim_producer(id(1)).unwrap();
    for i in 0..4 {
        p.push(&[i]).unwrap();
    }
    assert!(r.is_full());
    drop(p);
    let mut p = r.claim_producer(id(2)).unwrap();
    assert_eq!(p.push(&[9]), Err(PushError::Full));
    let mut c = r.claim_consumer(id(3)).unwrap();
    drop(c);
    c = r.claim_consumer(id(4)).unwrap();
    let mut out = [0];
    for i in 0..4 {
        c.pop(&mut out).unwrap();
        assert_eq!(out, [i]);
    }
    assert_eq!(c.pop(&mut out), Err(PopError::Empty));
}

#[test]
fn takeover_resumes_indices() {
    let r = ring(4, 1);
    let mut p = r.claim_producer(id(1)).unwrap();
    let mut c = r.claim_consumer(id(2)).unwrap();
    p.push(&[1]).unwrap();
    p.push(&[2]).unwrap();
    std::mem::forget(p); // "dies"
    let mut out = [0];
    c.pop(&mut out).unwrap();
    assert_eq!(out, [1]);
    let mut p = r.claim_producer_from_dead(id(5), |i| i != 1).unwrap();
    p.push(&[3]).unwrap();
    c.pop(&mut out).unwrap();
    assert_eq!(out, [2]);
    c.pop(&mut out).unwrap();
    assert_eq!(out, [3]);
}

#[test]
fn chunks() {
    let r = ring(8, 2);
    let mut p = r.claim_producer(id(1)).unwrap();
    let mut c = r.claim_consumer(id(2)).unwrap();
    // Move the indices near the end so chunks wrap.
    assert_eq!(p.push_slice(&[0; 12]).unwrap(), 6);
    let mut out = [0u8; 12];
    assert_eq!(c.pop_slice(&mut out).unwrap(), 6);
    let mut w = p.write_chunk(5).unwrap();
    let (a, b) = w.as_mut_slices();
    assert_eq!((a.len(), b.len()), (4, 6));
    for (i, x) in a.iter_mut().chain(b.iter_mut()).enumerate() {
        *x = i as u8;
    }
    w.commit(4);
    assert_eq!(p.write_chunk(5).unwrap_err(), ChunkError::TooFewSlots(4));
    let rc = c.read_chunk(4).unwrap();
    let (a, b) = rc.as_slices();
    let all: Vec<u8> = a.iter().chain(b).copied().collect();
    assert_eq!(all, (0..8).collect::<Vec<u8>>());
    rc.commit_all();
    assert_eq!(c.read_chunk(1).unwrap_err(), ChunkError::TooFewSlots(0));
}

#[test]
fn corrupt_indices_are_errors() {
    let (mem, r) = common::in_place_spsc(4, 8);
    let mut p = r.claim_producer(id(1)).unwrap();
    let mut c = r.claim_consumer(id(2)).unwrap();
    // Find the tail word: the producer's line; scribble the whole header's index lines.
    let hdr_len = 384;
    for off in (128..hdr_len).step_by(8) {
        // SAFETY: in bounds of the mapping; the ring tolerates arbitrary header bytes.
        unsafe {
            mem.ptr
                .as_ptr()
                .add(off)
                .cast::<u64>()
                .write(0xdead_beef_dead_beef)
        };
    }
    let mut out = [0u8; 8];
    assert_eq!(c.pop(&mut out), Err(PopError::Corrupt));
    for _ in 0..4 {
        let _ = p.push(&[1; 8]);
    }
    assert_eq!(p.push(&[1; 8]), Err(PushError::Corrupt));
    assert!(r.len() <= r.capacity());
}

proptest! {
    #[test]
    fn model(cap_log in 0u32..4, ops in prop::collection::vec(0u8..6, 0..300)) {
        let cap = 1u32 << cap_log;
        let r = ring(cap, 2);
        let mut p = r.claim_producer(id(1)).unwrap();
        let mut c = r.claim_consumer(id(2)).unwrap();
        let mut model: VecDeque<[u8; 2]> = VecDeque::new();
        let mut next = 0u16;
        for op in ops {
            match op {
                0 | 1 => {
                    let v = next.to_le_bytes();
                    let res = p.push(&v);
                    if model.len() == cap as usize {
                        prop_assert_eq!(res, Err(PushError::Full));
                    } else {
                        prop_assert_eq!(res, Ok(()));
                        model.push_back(v);
                        next += 1;
                    }
                }
                2 => {
                    let mut buf = Vec::new();
                    for k in 0..3u16 { buf.extend_from_slice(&(next + k).to_le_bytes()); }
                    let n = p.push_slice(&buf).unwrap() as usize;
                    prop_assert_eq!(n, 3.min(cap as usize - model.len()));
                    for k in 0..n as u16 { model.push_back((next + k).to_le_bytes()); }
                    next += n as u16;
                }
                3 => {
                    let mut out = [0u8; 6];
                    let n = c.pop_slice(&mut out).unwrap() as usize;
                    prop_assert_eq!(n, 3.min(model.len()));
                    for k in 0..n {
                        prop_assert_eq!(&out[2 * k..2 * k + 2], &model.pop_front().unwrap()[..]);
                    }
                }
                _ => {
                    let mut out = [0u8; 2];
                    match model.pop_front() {
                        Some(v) => { c.pop(&mut out).unwrap(); prop_assert_eq!(out, v); }
                        None => prop_assert_eq!(c.pop(&mut out), Err(PopError::Empty)),
                    }
                }
            }
            prop_assert_eq!(r.len() as usize, model.len());
        }
    }
}

#[test]
fn threads_stress() {
    let n = scaled(1_000_000);
    let r = ring(64, 8);
    let mut p = r.claim_producer(id(1)).unwrap();
    let mut c = r.claim_consumer(id(2)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let t = std::thread::spawn(move || {
        for i in 0..n {
            common::spin_until_ok(
                deadline,
                |e| matches!(e, PushError::Full),
                || p.push(&i.to_le_bytes()),
            );
        }
    });
    let mut expect = 0u64;
    let mut buf = [0u8; 8 * 16];
    while expect < n {
        let k = c.pop_slice(&mut buf).unwrap() as usize;
        for j in 0..k {
            let v = u64::from_le_bytes(buf[8 * j..8 * j + 8].try_into().unwrap());
            assert_eq!(v, expect);
            expect += 1;
        }
        if k == 0 {
            assert!(std::time::Instant::now() < deadline);
            std::hint::spin_loop();
        }
    }
    t.join().unwrap();
}
