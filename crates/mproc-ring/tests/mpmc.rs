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
    for capacity in [0, MpmcRing::MAX_CAPACITY + 1, u32::MAX] {
        assert_eq!(
            MpmcRing::required_size(MpmcShape {
                capacity,
                slot_size: 8
            }),
            Err(LayoutError::BadCapacity(capacity))
        );
    }
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
    // Scribble the capacity field: offset 16 in the common header. A capacity out of range
    // is refused as such; one in range (6) disagrees with the recorded size.
    // SAFETY: in bounds; we own the mapping and the ring handles are idle.
    unsafe { mem.ptr.as_ptr().add(16).cast::<u32>().write(0) };
    assert_eq!(
        // SAFETY: as above.
        unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap_err(),
        AttachError::BadCapacity(0)
    );
    // SAFETY: as above.
    unsafe { mem.ptr.as_ptr().add(16).cast::<u32>().write(6) };
    assert!(matches!(
        // SAFETY: as above.
        unsafe { MpmcRing::attach(mem.ptr, mem.len) },
        Err(AttachError::SizeMismatch { .. })
    ));
    // SAFETY: as above.
    unsafe { mem.ptr.as_ptr().write(0) };
    assert_eq!(
        // SAFETY: as above.
        unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap_err(),
        AttachError::BadMagic(u64::from_le_bytes(*b"\0PRING\0\0"))
    );
}

/// Issue #13, finding 4: the capacity is exact, for powers of two and any other size, over
/// several laps (so every position step, including the jump from index `n - 1` to the next
/// lap, is exercised at both ends), with the head and tail at every offset of a lap.
#[test]
fn capacity_is_exact() {
    for n in [1u32, 2, 3, 5, 6, 7, 8, 100] {
        let r = ring(n, 8);
        let (p, c) = (id(1), id(2));
        assert_eq!(r.capacity(), n);
        let mut next = 0u32;
        // Offsets 0, 1 and n - 1 into a lap: push `skip` and pop them, then fill.
        for skip in [0, 1.min(n - 1), n - 1] {
            for _ in 0..skip {
                r.try_push(p, &next.to_le_bytes()).unwrap();
                assert_eq!(r.try_pop_vec(c).unwrap(), next.to_le_bytes());
                next += 1;
            }
            for lap in 0..3 {
                let first = next;
                for k in 0..n {
                    assert_eq!(r.len(), k, "n {n}, skip {skip}, lap {lap}");
                    assert!(!r.is_full(), "n {n}, skip {skip}, lap {lap}, {k} in");
                    r.try_push(p, &next.to_le_bytes())
                        .unwrap_or_else(|e| panic!("n {n}, skip {skip}, lap {lap}, push {k}: {e}"));
                    next += 1;
                }
                assert_eq!(r.len(), n, "n {n}, skip {skip}, lap {lap}: full");
                assert!(r.is_full(), "n {n}, skip {skip}, lap {lap}");
                assert_eq!(
                    r.try_push(p, b"over"),
                    Err(TryPushError::Full),
                    "n {n}, skip {skip}, lap {lap}: one more than the capacity"
                );
                for m in first..next {
                    assert_eq!(r.try_pop_vec(c).unwrap(), m.to_le_bytes(), "FIFO, n {n}");
                }
                assert_eq!(r.try_pop_vec(c), Err(TryPopError::Empty));
                assert!(r.is_empty());
                assert_eq!(r.len(), 0);
            }
        }
        // Half full, then steady state across many laps: `len` stays exact.
        let half = n / 2;
        for _ in 0..half {
            r.try_push(p, b"h").unwrap();
        }
        for _ in 0..5 * n {
            r.try_push(p, b"s").unwrap();
            assert_eq!(r.len(), half + 1);
            r.try_pop_vec(c).unwrap();
            assert_eq!(r.len(), half);
        }
        assert_eq!(r.recover(|_| false), Default::default(), "no claim left");
    }
}

/// The layout holds `n` slots, not the next power of two.
#[test]
fn memory_is_capacity_slots() {
    let size = |capacity| {
        MpmcRing::required_size(MpmcShape {
            capacity,
            slot_size: 64,
        })
        .unwrap()
    };
    let stride = size(2) - size(1);
    assert_eq!(size(6), size(1) + 5 * stride);
    assert_eq!(size(100), size(1) + 99 * stride);
}

/// A non-power-of-two ring in shared memory attaches with its exact capacity.
#[test]
fn attach_non_power_of_two() {
    let (mem, a) = common::in_place_mpmc(6, 8);
    // SAFETY: as above.
    let b = unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap();
    assert_eq!(b.capacity(), 6);
    for i in 0..6u8 {
        a.try_push(id(1), &[i]).unwrap();
    }
    assert!(b.is_full());
    assert_eq!(b.try_push(id(2), b"x"), Err(TryPushError::Full));
    assert_eq!(b.try_pop_vec(id(2)).unwrap(), [0]);
    b.try_push(id(2), b"w").unwrap();
    assert_eq!(a.len(), 6);
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
    fn model(cap in 1u32..=9, ops in prop::collection::vec(op(), 0..200)) {
        // Every capacity, not only powers of two: the capacity is exact (issue #13).
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
            prop_assert_eq!(r.is_full(), model.len() == cap as usize);
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
