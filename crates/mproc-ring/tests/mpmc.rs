//! MPMC ring: smoke, capacity edges, model-based property tests, threads, recovery, attach.
#![cfg(not(mproc_loom))]
#![allow(unsafe_code, clippy::disallowed_types)]

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{check_msg, id, make_msg, scaled};
use mproc_ring::{AttachError, LayoutError, MpmcRing, MpmcShape, TryPopError, TryPushError};
use proptest::prelude::*;

fn ring(capacity: u32, slot_size: u32) -> MpmcRing {
    MpmcRing::new(MpmcShape {
        capacity,
        slot_size,
    })
    .unwrap()
}

#[test]
fn smoke() {
    let r = ring(4, 16);
    let me = id(1);
    assert_eq!(r.try_pop_vec(me), Err(TryPopError::Empty));
    r.try_push(me, b"hello").unwrap();
    r.try_push(me, b"").unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r.try_pop_vec(me).unwrap(), b"hello");
    assert_eq!(r.try_pop_vec(me).unwrap(), b"");
    assert!(r.is_empty());
}

#[test]
fn capacity_one_and_full() {
    let r = ring(1, 8);
    let me = id(7);
    r.try_push(me, b"a").unwrap();
    assert!(r.is_full());
    assert_eq!(r.try_push(me, b"b"), Err(TryPushError::Full));
    assert_eq!(r.try_pop_vec(me).unwrap(), b"a");
    r.try_push(me, b"c").unwrap();
    assert_eq!(r.try_pop_vec(me).unwrap(), b"c");
}

#[test]
fn too_large_and_cancel() {
    let r = ring(2, 8);
    let me = id(1);
    assert_eq!(
        r.try_push(me, &[0; 9]),
        Err(TryPushError::TooLarge { len: 9, max: 8 })
    );
    assert_eq!(r.try_push_with(me, |_| None), Err(TryPushError::Cancelled));
    r.try_push(me, b"x").unwrap();
    // The cancelled slot is a tombstone that consumers skip.
    assert_eq!(r.try_pop_vec(me).unwrap(), b"x");
    assert_eq!(r.try_pop_vec(me), Err(TryPopError::Empty));
    let mut small = [0u8; 0];
    r.try_push(me, b"yy").unwrap();
    assert_eq!(
        r.try_pop(me, &mut small),
        Err(TryPopError::BufferTooSmall { len: 2 })
    );
}

#[test]
fn push_with_fills_in_place_and_panic_tombstones() {
    let r = ring(4, 32);
    let me = id(1);
    r.try_push_with(me, |buf| {
        assert_eq!(buf.len(), 32);
        assert_eq!(buf.as_ptr() as usize % MpmcRing::PAYLOAD_ALIGN, 0);
        buf[..3].copy_from_slice(b"abc");
        Some(3)
    })
    .unwrap();
    let r2 = r.clone();
    let res = std::panic::catch_unwind(move || {
        let _ = r2.try_push_with(id(1), |_| panic!("serialiser failed"));
    });
    assert!(res.is_err());
    assert_eq!(r.try_pop_with(me, |b| b.to_vec()).unwrap(), b"abc");
    assert_eq!(r.try_pop_vec(me), Err(TryPopError::Empty));
}

#[test]
fn bad_shapes() {
    assert_eq!(
        MpmcRing::required_size(MpmcShape {
            capacity: 3,
            slot_size: 8
        }),
        Err(LayoutError::BadCapacity(3))
    );
    assert_eq!(
        MpmcRing::required_size(MpmcShape {
            capacity: 4,
            slot_size: 0
        }),
        Err(LayoutError::BadSlotSize(0))
    );
}

#[test]
fn recover_dead_writer_and_reader() {
    let r = ring(4, 8);
    let (live, dead_w, dead_r) = (id(1), id(2), id(3));
    r.try_push(live, b"m0").unwrap();
    // A writer declared dead mid-fill (recovery runs inside its fill closure, as if it had
    // been killed there); when it "comes back", its claim is gone and it is told so.
    let res = r.try_push_with(dead_w, |buf| {
        buf[0] = 1;
        assert_eq!(r.try_pop_vec(live).unwrap(), b"m0");
        assert_eq!(
            r.try_pop_vec(live),
            Err(TryPopError::Empty),
            "stalled behind us"
        );
        let rep = r.recover(|p| p != dead_w.get());
        assert_eq!(rep.tombstoned, 1);
        Some(1)
    });
    assert_eq!(res, Err(TryPushError::Recovered));
    r.try_push(live, b"m2").unwrap();
    assert_eq!(r.try_pop_vec(live).unwrap(), b"m2", "tombstone skipped");
    assert_eq!(r.lost_writes(), 1);

    r.try_push(live, b"m3").unwrap();
    r.try_push(live, b"m4").unwrap();
    let res = r.try_pop_with(dead_r, |_| {
        let rep = r.recover(|p| p != dead_r.get());
        assert_eq!(rep.freed, 1);
    });
    assert_eq!(res, Err(TryPopError::Recovered));
    assert_eq!(r.try_pop_vec(live).unwrap(), b"m4");
    assert_eq!(r.lost_reads(), 1);
    assert!(r.is_empty());
    // Live participants are never disturbed.
    assert_eq!(r.recover(|_| true), Default::default());
}

#[test]
fn attach_validates() {
    let shape = MpmcShape {
        capacity: 8,
        slot_size: 24,
    };
    let size = MpmcRing::required_size(shape).unwrap();
    let mem = common::Shared::new(size);
    // SAFETY: fresh mapping of the right size, used only through this crate.
    let a = unsafe { MpmcRing::init(mem.ptr, mem.len, shape) }.unwrap();
    // SAFETY: as above.
    let b = unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap();
    a.try_push(id(1), b"via a").unwrap();
    assert_eq!(b.try_pop_vec(id(2)).unwrap(), b"via a");
    assert!(matches!(
        // SAFETY: as above.
        unsafe { MpmcRing::attach(mem.ptr, size - 1) },
        Err(AttachError::RegionTooSmall { .. })
    ));
    assert!(matches!(
        // SAFETY: as above (the SPSC attach only reads the header).
        unsafe { mproc_ring::SpscRing::attach(mem.ptr, mem.len) },
        Err(AttachError::WrongKind { .. })
    ));
    // Scribble the capacity field: offset 16 in the common header.
    // SAFETY: in bounds; we own the mapping and the ring handles are idle.
    unsafe { mem.ptr.as_ptr().add(16).cast::<u32>().write(6) };
    assert_eq!(
        // SAFETY: as above.
        unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap_err(),
        AttachError::BadCapacity(6)
    );
    // SAFETY: as above.
    unsafe { mem.ptr.as_ptr().write(0) };
    assert_eq!(
        // SAFETY: as above.
        unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap_err(),
        AttachError::BadMagic(u64::from_le_bytes(*b"\0PRING\0\0"))
    );
}

#[derive(Debug, Clone)]
enum Op {
    Push(Vec<u8>),
    Pop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Op::Push),
        Just(Op::Pop),
    ]
}

proptest! {
    #[test]
    fn model(cap_log in 0u32..4, ops in prop::collection::vec(op(), 0..200)) {
        let cap = 1u32 << cap_log;
        let r = ring(cap, 8);
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(v) => {
                    let res = r.try_push(id(1), &v);
                    if v.len() > 8 {
                        prop_assert_eq!(res, Err(TryPushError::TooLarge { len: v.len(), max: 8 }));
                    } else if model.len() == cap as usize {
                        prop_assert_eq!(res, Err(TryPushError::Full));
                    } else {
                        prop_assert_eq!(res, Ok(()));
                        model.push_back(v);
                    }
                }
                Op::Pop => {
                    let res = r.try_pop_vec(id(2));
                    match model.pop_front() {
                        Some(v) => prop_assert_eq!(res, Ok(v)),
                        None => prop_assert_eq!(res, Err(TryPopError::Empty)),
                    }
                }
            }
            prop_assert_eq!(r.len() as usize, model.len());
        }
    }
}

/// Producers number their messages; consumers check nothing lost or duplicated, FIFO per
/// producer, checksums intact.
#[test]
fn threads_stress() {
    const PRODUCERS: u32 = 3;
    const CONSUMERS: u32 = 3;
    let per = scaled(100_000);
    let r = ring(64, 48);
    let done = Arc::new(AtomicBool::new(false));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut hs = Vec::new();
    for p in 0..PRODUCERS {
        let r = r.clone();
        hs.push(std::thread::spawn(move || {
            let me = id(p + 1);
            let mut msg = Vec::new();
            for seq in 0..per {
                make_msg(p, seq, 16 + (seq % 32) as usize, &mut msg);
                loop {
                    match r.try_push(me, &msg) {
                        Ok(()) => break,
                        Err(TryPushError::Full | TryPushError::Contended) => {
                            assert!(std::time::Instant::now() < deadline, "producer stuck");
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("push: {e}"),
                    }
                }
            }
            Vec::new()
        }));
    }
    for c in 0..CONSUMERS {
        let (r, done) = (r.clone(), done.clone());
        hs.push(std::thread::spawn(move || {
            let me = id(100 + c);
            let mut got = Vec::new();
            loop {
                match r.try_pop_with(me, check_msg) {
                    Ok(pm) => got.push(pm),
                    Err(TryPopError::Empty | TryPopError::Contended) => {
                        if done.load(Ordering::Acquire) && r.is_empty() {
                            break;
                        }
                        assert!(std::time::Instant::now() < deadline, "consumer stuck");
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("pop: {e}"),
                }
            }
            got
        }));
    }
    let consumers = hs.split_off(PRODUCERS as usize);
    for h in hs {
        h.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let mut last = vec![None::<u64>; PRODUCERS as usize];
    let mut total = 0;
    for h in consumers {
        let got = h.join().unwrap();
        // FIFO per producer as seen by each consumer.
        let mut seen = vec![None::<u64>; PRODUCERS as usize];
        for &(p, seq) in &got {
            if let Some(prev) = seen[p as usize] {
                assert!(seq > prev, "FIFO violated for producer {p}");
            }
            seen[p as usize] = Some(seq);
            last[p as usize] = Some(last[p as usize].map_or(seq, |l: u64| l.max(seq)));
        }
        total += got.len() as u64;
    }
    assert_eq!(
        total,
        per * u64::from(PRODUCERS),
        "lost or duplicated messages"
    );
}
