//! Across processes: fork over `MAP_SHARED | MAP_ANONYMOUS` memory. Stress (numbered,
//! checksummed messages; nothing lost or duplicated; FIFO per producer) and crash tests
//! (a child SIGKILLed mid-claim; recovery; exact lost counts).
#![cfg(not(mproc_loom))]
#![allow(unsafe_code, clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{
    Shared, check_msg, fork, id, in_place_record, in_place_spsc, make_msg, scaled, wait, wait_ok,
};
use mproc_ring::{
    MpmcRing, MpmcShape, ReadError, RecordRing, SpscRing, TryPopError, TryPushError, WriteError,
};
use mproc_testkit::wait_until;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Shared counters after the ring in the same mapping.
fn counters(mem: &Shared, at: usize, n: usize) -> &[AtomicU32] {
    assert!(at + 4 * n <= mem.len);
    // SAFETY: in bounds, 4-aligned (`at` is), zero-initialised shared memory used only as
    // atomics by this test's processes.
    unsafe { std::slice::from_raw_parts(mem.ptr.as_ptr().add(at).cast::<AtomicU32>(), n) }
}

/// A shared mapping holding a fresh MPMC ring of `capacity` slots of `slot_size` bytes,
/// then `n` zeroed [`counters`] at the returned offset (128-aligned, after the ring).
fn mpmc_with_counters(capacity: u32, slot_size: u32, n: usize) -> (Shared, MpmcRing, usize) {
    let shape = MpmcShape {
        capacity,
        slot_size,
    };
    let at = MpmcRing::required_size(shape)
        .unwrap()
        .next_multiple_of(128);
    let mem = Shared::new(at + 4 * n);
    // SAFETY: fresh shared mapping, used only through this crate (and the counters after it).
    let ring = unsafe { MpmcRing::init(mem.ptr, mem.len, shape) }.unwrap();
    (mem, ring, at)
}

/// In a child holding a claim: tells the parent (sets `flag`) and waits to be SIGKILLed.
fn claimed_and_hang(flag: &AtomicU32) -> ! {
    flag.store(1, Ordering::Release);
    loop {
        std::thread::sleep(Duration::from_millis(100)); // killed here
    }
}

#[test]
fn mpmc_processes_stress() {
    const P: u32 = 2;
    const C: u32 = 2;
    let per = scaled(200_000) as usize;
    let total = P as usize * per;
    let (mem, ring, seen_at) = mpmc_with_counters(256, 64, total + 1);
    let mut kids = Vec::new();
    for p in 0..P {
        kids.push(fork(|| {
            // SAFETY: the mapping is inherited; attach validates the header.
            let r = unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap();
            let end = Instant::now() + TIMEOUT;
            let mut msg = Vec::new();
            for seq in 0..per as u64 {
                make_msg(p, seq, 16 + (seq % 48) as usize, &mut msg);
                loop {
                    match r.try_push(id(p + 1), &msg) {
                        Ok(()) => break,
                        Err(TryPushError::Full | TryPushError::Contended) => {
                            if Instant::now() > end {
                                return 2;
                            }
                            std::thread::yield_now();
                        }
                        Err(_) => return 3,
                    }
                }
            }
            0
        }));
    }
    for c in 0..C {
        kids.push(fork(|| {
            // SAFETY: as above.
            let r = unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap();
            let seen = counters(&mem, seen_at, total + 1);
            let done = &seen[total];
            let mut last = vec![None::<u64>; P as usize];
            let end = Instant::now() + TIMEOUT;
            while (done.load(Ordering::Acquire) as usize) < total {
                match r.try_pop_with(id(100 + c), check_msg) {
                    Ok((p, seq)) => {
                        if last[p as usize].is_some_and(|l| seq <= l) {
                            return 4; // FIFO per producer violated
                        }
                        last[p as usize] = Some(seq);
                        seen[p as usize * per + seq as usize].fetch_add(1, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(TryPopError::Empty | TryPopError::Contended) => {
                        if Instant::now() > end {
                            return 2;
                        }
                        std::thread::yield_now();
                    }
                    Err(_) => return 3,
                }
            }
            0
        }));
    }
    for k in kids {
        wait_ok(k, TIMEOUT + Duration::from_secs(5));
    }
    let seen = counters(&mem, seen_at, total + 1);
    for (i, s) in seen[..total].iter().enumerate() {
        assert_eq!(
            s.load(Ordering::Relaxed),
            1,
            "message {i} seen a wrong number of times"
        );
    }
    assert!(ring.is_empty());
    assert_eq!(
        ring.lost_writes() + ring.lost_reads() + ring.corrupt_count(),
        0
    );
}

#[test]
fn record_ring_across_processes() {
    let n = scaled(100_000);
    let (mem, ring) = in_place_record(4096);
    let kid = fork(|| {
        // SAFETY: inherited mapping.
        let r = unsafe { RecordRing::attach(mem.ptr, mem.len) }.unwrap();
        let mut w = r.claim_writer(id(1)).unwrap();
        let end = Instant::now() + TIMEOUT;
        let mut msg = Vec::new();
        let mut i = 0;
        while i < n {
            make_msg(1, i, 16 + (i % 1000) as usize, &mut msg);
            match w.try_write(&msg) {
                Ok(()) => i += 1,
                Err(WriteError::Full) if Instant::now() < end => std::hint::spin_loop(),
                Err(_) => return 2,
            }
        }
        0
    });
    let mut rd = ring.claim_reader(id(2)).unwrap();
    let end = Instant::now() + TIMEOUT;
    let mut expect = 0;
    while expect < n {
        match rd.try_read() {
            Ok(rec) => {
                assert_eq!(check_msg(rec.bytes()), (1, expect));
                expect += 1;
            }
            Err(ReadError::Empty) => {
                assert!(Instant::now() < end, "reader timed out");
                std::hint::spin_loop();
            }
            Err(e) => panic!("{e}"),
        }
    }
    wait_ok(kid, TIMEOUT);
    // The child's writer end was released when it exited normally? No: `_exit` runs no
    // destructors, so the role still names the (now dead) child, and can be taken over.
    let _w = ring.claim_writer_from_dead(id(3), |p| p != 1).unwrap();
}

/// A producer child SIGKILLed while it holds a slot in `WRITING`: the consumer stalls
/// behind it until recovery tombstones it; exactly one message is lost and counted.
#[test]
fn mpmc_producer_killed_mid_write() {
    let (mem, ring, flag_at) = mpmc_with_counters(16, 32, 1);
    const SENT: u64 = 5;
    const CHILD: u32 = 7;
    let kid = fork(|| {
        // SAFETY: inherited mapping.
        let r = unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap();
        let mut msg = Vec::new();
        for seq in 0..SENT {
            make_msg(CHILD, seq, 24, &mut msg);
            r.try_push(id(CHILD), &msg).unwrap();
        }
        let _ = r.try_push_with(id(CHILD), |buf| {
            buf[0] = 0xAA;
            claimed_and_hang(&counters(&mem, flag_at, 1)[0])
        });
        1
    });
    let flag = &counters(&mem, flag_at, 1)[0];
    wait_until(TIMEOUT, || flag.load(Ordering::Acquire) != 0);
    // A live producer pushes behind the stuck slot.
    ring.try_push(id(1), b"live").unwrap();
    // SAFETY: killing our own child.
    unsafe { libc::kill(kid, libc::SIGKILL) };
    let status = wait(kid, TIMEOUT);
    assert!(libc::WIFSIGNALED(status));
    let me = id(2);
    for seq in 0..SENT {
        assert_eq!(ring.try_pop_with(me, check_msg).unwrap(), (CHILD, seq));
    }
    // Stalled behind the dead writer's slot until recovery.
    assert_eq!(ring.try_pop_vec(me), Err(TryPopError::Empty));
    let rep = ring.recover(|p| p != CHILD);
    assert_eq!((rep.tombstoned, rep.freed), (1, 0));
    assert_eq!(ring.try_pop_vec(me).unwrap(), b"live");
    assert_eq!(ring.try_pop_vec(me), Err(TryPopError::Empty));
    assert_eq!(ring.lost_writes(), 1);
    assert_eq!(ring.lost_reads(), 0);
    // Recovery again changes nothing.
    assert_eq!(ring.recover(|p| p != CHILD), Default::default());
}

/// A consumer child SIGKILLed while it holds a slot in `READING`: its message is lost and
/// counted, the slot is freed, and producers get the space back.
#[test]
fn mpmc_consumer_killed_mid_read() {
    let (mem, ring, flag_at) = mpmc_with_counters(2, 8, 1);
    ring.try_push(id(1), b"a").unwrap();
    ring.try_push(id(1), b"b").unwrap();
    const CHILD: u32 = 9;
    let kid = fork(|| {
        // SAFETY: inherited mapping.
        let r = unsafe { MpmcRing::attach(mem.ptr, mem.len) }.unwrap();
        let _ = r.try_pop_with(id(CHILD), |_| {
            claimed_and_hang(&counters(&mem, flag_at, 1)[0])
        });
        1
    });
    let flag = &counters(&mem, flag_at, 1)[0];
    wait_until(TIMEOUT, || flag.load(Ordering::Acquire) != 0);
    // SAFETY: killing our own child.
    unsafe { libc::kill(kid, libc::SIGKILL) };
    assert!(libc::WIFSIGNALED(wait(kid, TIMEOUT)));
    assert_eq!(ring.try_pop_vec(id(2)).unwrap(), b"b");
    // The dead reader's slot (position 0, next for the producer at position 2) blocks
    // the producer until recovery, although `b`'s slot is free.
    assert_eq!(ring.try_push(id(1), b"c"), Err(TryPushError::Full));
    let rep = ring.recover(|p| p != CHILD);
    assert_eq!((rep.tombstoned, rep.freed), (0, 1));
    ring.try_push(id(1), b"c").unwrap();
    ring.try_push(id(1), b"d").unwrap();
    assert_eq!(ring.try_pop_vec(id(2)).unwrap(), b"c");
    assert_eq!(ring.try_pop_vec(id(2)).unwrap(), b"d");
    assert_eq!(ring.lost_reads(), 1);
}

/// An SPSC producer child killed mid-stream: everything it published arrives, in order,
/// and its role can be taken over.
#[test]
fn spsc_producer_killed_then_taken_over() {
    let (mem, ring) = in_place_spsc(1024, 8);
    let mut c = ring.claim_consumer(id(2)).unwrap();
    let kid = fork(|| {
        // SAFETY: inherited mapping.
        let r = unsafe { SpscRing::attach(mem.ptr, mem.len) }.unwrap();
        let mut p = r.claim_producer(id(11)).unwrap();
        let mut i = 0u64;
        loop {
            if p.push(&i.to_le_bytes()).is_ok() {
                i += 1;
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    });
    let mut expect = 0u64;
    let mut out = [0u8; 8];
    let end = Instant::now() + TIMEOUT;
    while expect < 3000 {
        if c.pop(&mut out).is_ok() {
            assert_eq!(u64::from_le_bytes(out), expect);
            expect += 1;
        }
        assert!(Instant::now() < end);
    }
    // SAFETY: killing our own child.
    unsafe { libc::kill(kid, libc::SIGKILL) };
    assert!(libc::WIFSIGNALED(wait(kid, TIMEOUT)));
    while c.pop(&mut out).is_ok() {
        assert_eq!(u64::from_le_bytes(out), expect);
        expect += 1;
    }
    assert!(!c.is_abandoned(), "a killed holder never released its role");
    let mut p = ring.claim_producer_from_dead(id(12), |p| p != 11).unwrap();
    p.push(&u64::MAX.to_le_bytes()).unwrap();
    c.pop(&mut out).unwrap();
    assert_eq!(u64::from_le_bytes(out), u64::MAX);
}
