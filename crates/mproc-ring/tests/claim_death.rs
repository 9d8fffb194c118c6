//! A claimant frozen or dead between its claim CAS and its help of the tail or head — the
//! crash window a random SIGKILL almost never hits — made deterministic with the test-only
//! fault hook (`MpmcRing::with_fault_hook`, feature `test-hooks`). The ring's promise: such a
//! claimant stalls nobody; a dead one's message is lost and counted once `recover` runs.
//!
//! "Frozen": the hook runs the other participants' operations while the claimant's own call
//! is suspended at the point, then lets it finish. "Dead": the hook kills the call there
//! (`fault::kill`), leaving the claim in the slot word. One thread, no timing, no loops: every
//! ring call is itself bounded (`MAX_TRIES`, then `Contended`), so a stall fails an assertion.
//! The same windows under loom, racing recovery: `loom_mpmc.rs`.
#![cfg(not(mproc_loom))]

mod common;

use std::sync::{Arc, Mutex};

use common::{drain, expect_killed, id, mpmc};
use mproc_ring::fault::{FaultPoint, kill};
use mproc_ring::{MpmcRing, TryPopError, TryPushError};

/// 8-byte slots: room for every message here (the longest, `b"over"`, is 4 bytes).
fn ring(capacity: u32) -> MpmcRing {
    mpmc(capacity, 8)
}

/// Moves both hints `skip` slots into the ring (pushes and pops `skip` messages) and returns
/// the position the next claim gets. With `skip = capacity - 1` that claim is on the last slot
/// of a lap, and the help after it is the jump to the next lap (`lap * one_lap`, where one lap
/// is the next power of two): the cases below run at offset 0 of a power-of-two ring and at
/// that jump in rings of 3 and 5 slots.
fn warm(r: &MpmcRing, skip: u32) -> u64 {
    assert!(skip < r.capacity());
    for _ in 0..skip {
        r.try_push(id(21), b"w").unwrap();
        assert_eq!(r.try_pop_vec(id(22)), Ok(b"w".to_vec()));
    }
    u64::from(skip)
}

/// Two full laps of pushes and pops: every slot word and both hints are where they belong.
fn laps_work(r: &MpmcRing) {
    for lap in 0..2u8 {
        for i in 0..r.capacity() as u8 {
            assert_eq!(r.try_push(id(21), &[lap, i]), Ok(()), "lap {lap}, push {i}");
        }
        assert_eq!(r.try_push(id(21), b"over"), Err(TryPushError::Full));
        for i in 0..r.capacity() as u8 {
            assert_eq!(
                r.try_pop_vec(id(22)),
                Ok(vec![lap, i]),
                "lap {lap}, pop {i}"
            );
        }
        assert_eq!(r.try_pop_vec(id(22)), Err(TryPopError::Empty));
    }
}

/// The `(capacity, skip)` rings the windows are tried in: offset 0 of a power-of-two ring,
/// and the last slot of a lap (where the help is the jump to the next lap) in rings of 3
/// and 5 slots.
const OFFSETS: [(u32, u32); 3] = [(4, 0), (3, 2), (5, 4)];
/// As [`OFFSETS`], for the cases that fill the ring around the dead claim.
const BEFORE_ANY_HELP: [(u32, u32); 2] = [(2, 0), (3, 2)];

/// Runs `case` on a fresh ring of each `(capacity, skip)`, [`warm`]ed by `skip`, with the
/// position the next claim gets; then checks that the ring still does [`laps_work`].
fn at_each_offset(rings: &[(u32, u32)], case: fn(&MpmcRing, u64)) {
    for &(capacity, skip) in rings {
        let r = ring(capacity);
        let at = warm(&r, skip);
        case(&r, at);
        laps_work(&r);
    }
}

/// What the hook saw the others do, recorded for the test to check after the call.
type Log<T> = Arc<Mutex<Vec<T>>>;

#[test]
fn a_producer_frozen_between_claim_and_help_stalls_no_producer() {
    at_each_offset(&OFFSETS, producer_frozen);
}

fn producer_frozen(r: &MpmcRing, at: u64) {
    type Seen = (Result<(), TryPushError>, Result<Vec<u8>, TryPopError>);
    let log: Log<Seen> = Arc::default();
    let frozen = {
        let (r, log) = (r.clone(), log.clone());
        r.clone().with_fault_hook(move |p| {
            assert_eq!(p, FaultPoint::WriteClaimed { pos: at });
            // P1 holds WRITING(at) and has not helped the tail: P2 must help it past.
            let pushed = r.try_push(id(2), b"p2");
            // The consumer waits behind the claimed slot (FIFO), without spinning out.
            let popped = r.try_pop_vec(id(3));
            log.lock().unwrap().push((pushed, popped));
        })
    };
    assert_eq!(frozen.try_push(id(1), b"p1"), Ok(()));
    assert_eq!(
        *log.lock().unwrap(),
        [(Ok(()), Err(TryPopError::Empty))],
        "while P1 was frozen after its claim"
    );
    assert_eq!(drain(r), [b"p1".to_vec(), b"p2".to_vec()]);
    assert_eq!(r.lost_writes(), 0);
}

#[test]
fn a_producer_dead_between_claim_and_help_stalls_no_producer() {
    at_each_offset(&OFFSETS, producer_dead);
}

fn producer_dead(r: &MpmcRing, _: u64) {
    expect_killed(|| r.with_fault_hook(|_| kill()).try_push(id(1), b"p1"));
    // P1's claim WRITING(skip, 1) is in slot `skip` and the tail still says `skip`.
    assert_eq!(
        r.try_push(id(2), b"p2"),
        Ok(()),
        "P2 must pass the dead claim"
    );
    assert_eq!(
        r.try_pop_vec(id(3)),
        Err(TryPopError::Empty),
        "behind the dead claim"
    );
    assert_eq!(r.recover(|p| p != 1).tombstoned, 1);
    assert_eq!(r.lost_writes(), 1);
    assert_eq!(drain(r), [b"p2".to_vec()], "the tombstone is skipped");
}

/// The dead producer's tombstone is consumed before any other producer comes by, so nobody
/// helped the tail past its claim: the next producer finds the slot a lap ahead of the tail.
#[test]
fn a_producer_dead_between_claim_and_help_then_skipped_stalls_no_producer() {
    at_each_offset(&BEFORE_ANY_HELP, producer_dead_then_skipped);
}

fn producer_dead_then_skipped(r: &MpmcRing, _: u64) {
    expect_killed(|| r.with_fault_hook(|_| kill()).try_push(id(1), b"p1"));
    assert_eq!(r.recover(|p| p != 1).tombstoned, 1);
    assert_eq!(
        r.try_pop_vec(id(3)),
        Err(TryPopError::Empty),
        "skips the tombstone"
    );
    assert_eq!(
        r.try_push(id(2), b"p2"),
        Ok(()),
        "the tail must move past the dead claim"
    );
    assert_eq!(drain(r), [b"p2".to_vec()]);
    assert_eq!(r.lost_writes(), 1);
}

#[test]
fn a_consumer_frozen_between_claim_and_help_stalls_no_consumer() {
    at_each_offset(&OFFSETS, consumer_frozen);
}

fn consumer_frozen(r: &MpmcRing, at: u64) {
    r.try_push(id(1), b"a").unwrap();
    r.try_push(id(1), b"b").unwrap();
    let log: Log<Result<Vec<u8>, TryPopError>> = Arc::default();
    let frozen = {
        let (r, log) = (r.clone(), log.clone());
        r.clone().with_fault_hook(move |p| {
            assert_eq!(p, FaultPoint::ReadClaimed { pos: at });
            // C1 holds READING(at) and has not helped the head: C2 must help it past.
            log.lock().unwrap().push(r.try_pop_vec(id(3)));
        })
    };
    assert_eq!(frozen.try_pop_vec(id(2)), Ok(b"a".to_vec()));
    assert_eq!(
        *log.lock().unwrap(),
        [Ok(b"b".to_vec())],
        "while C1 was frozen"
    );
    assert_eq!(r.lost_reads(), 0);
    assert_eq!(drain(r), Vec::<Vec<u8>>::new());
}

#[test]
fn a_consumer_dead_between_claim_and_help_stalls_no_consumer() {
    at_each_offset(&OFFSETS, consumer_dead);
}

fn consumer_dead(r: &MpmcRing, _: u64) {
    for m in [b"a", b"b", b"c"] {
        r.try_push(id(1), m).unwrap();
    }
    expect_killed(|| r.with_fault_hook(|_| kill()).try_pop_vec(id(2)));
    // C1's claim READING(skip, 2) is in slot `skip` and the head still says `skip`.
    assert_eq!(
        r.try_pop_vec(id(3)),
        Ok(b"b".to_vec()),
        "C2 must pass the dead claim"
    );
    assert_eq!(r.recover(|p| p != 2).freed, 1);
    assert_eq!(r.lost_reads(), 1);
    assert_eq!(drain(r), [b"c".to_vec()]);
}

/// The dead consumer's slot is freed and refilled before any other consumer comes by, so
/// nobody helped the head past its claim: the next consumer finds the slot a lap ahead.
#[test]
fn a_consumer_dead_between_claim_and_help_then_refilled_stalls_no_consumer() {
    at_each_offset(&BEFORE_ANY_HELP, consumer_dead_then_refilled);
}

fn consumer_dead_then_refilled(r: &MpmcRing, _: u64) {
    let cap = r.capacity();
    // Full, so the next push can only reuse the dead reader's slot.
    for i in 0..cap as u8 {
        r.try_push(id(1), &[i]).unwrap();
    }
    expect_killed(|| r.with_fault_hook(|_| kill()).try_pop_vec(id(2)));
    assert_eq!(r.recover(|p| p != 2).freed, 1);
    assert_eq!(r.try_push(id(1), b"c"), Ok(()), "reuses the freed slot");
    let mut want: Vec<Vec<u8>> = (1..cap as u8).map(|i| vec![i]).collect();
    want.push(b"c".to_vec());
    assert_eq!(drain(r), want, "the head must move past the dead claim");
    assert_eq!(r.lost_reads(), 1);
}

/// `occupied` counts messages and claims — a dead consumer's `READING` after the head moved
/// past it, a dead producer's `WRITING` — and not tombstones.
#[test]
fn occupied_counts_messages_and_claims_not_tombstones() {
    let r = mpmc(4, 8);
    assert_eq!(r.occupied(), 0);
    r.try_push(id(1), b"a").unwrap();
    r.try_push(id(1), b"b").unwrap();
    assert_eq!((r.occupied(), r.len()), (2, 2));
    // A consumer dies holding READING on "a"; another consumer helps the head past it.
    expect_killed(|| r.clone().with_fault_hook(|_| kill()).try_pop_vec(id(2)));
    assert_eq!(r.try_pop_vec(id(3)).unwrap(), b"b");
    assert_eq!(r.len(), 0, "the head moved past the dead reader's slot");
    assert_eq!(r.occupied(), 1, "but its claim still holds the message");
    // A producer dies holding WRITING.
    expect_killed(|| r.clone().with_fault_hook(|_| kill()).try_push(id(4), b"c"));
    assert_eq!(r.occupied(), 2);
    // Recovery frees the reader's slot (a lost read) and tombstones the writer's.
    let rep = r.recover(|id| id != 2 && id != 4);
    assert_eq!((rep.freed, rep.tombstoned), (1, 1));
    assert_eq!(r.occupied(), 0, "a tombstone is not a message");
}

/// `recover_with` shows the hook a dead producer's payload (as the producer left it: here
/// the previous lap's bytes, since it died right after its claim) and its slot's stamp, once,
/// before the tombstone; `try_push_at` tells a producer the same stamp. A dead reader's claim
/// is shown too, with the message it was reading.
#[test]
fn recovery_shows_a_dead_writers_payload_and_stamp() {
    let r = mpmc(1, 8);
    let first = std::cell::Cell::new(0);
    r.try_push_at(id(1), |stamp, slot| {
        first.set(stamp);
        slot[..3].copy_from_slice(b"abc");
        Some(3)
    })
    .unwrap();
    assert_eq!(r.try_pop_vec(id(2)).unwrap(), b"abc");
    // The next lap's producer dies right after claiming the same slot.
    expect_killed(|| r.clone().with_fault_hook(|_| kill()).try_push(id(5), b"zz"));
    let claim = r
        .stuck_claim(mproc_ring::Side::Head)
        .expect("stuck on the dead claim");
    assert_eq!(claim.claimant(), 5);
    assert_ne!(
        claim.position() as u32,
        first.get(),
        "a new lap, a new stamp"
    );
    let shown = std::cell::RefCell::new(Vec::new());
    let rep = r.recover_with(
        |id| id != 5,
        |dead| {
            let p = dead.payload;
            shown
                .borrow_mut()
                .push((dead.stamp, p[..3].to_vec(), p.len()));
        },
    );
    assert_eq!((rep.tombstoned, rep.freed), (1, 0));
    assert_eq!(
        *shown.borrow(),
        [(claim.position() as u32, b"abc".to_vec(), 8)]
    );
    // Resolved: a second pass shows nothing; the ring goes on.
    let again = r.recover_with(|_| false, |_| panic!("shown twice"));
    assert_eq!(again.tombstoned, 0);
    assert!(
        r.try_pop_vec(id(2)).is_err(),
        "a consumer skips the tombstone"
    );
    r.try_push(id(1), b"ok").unwrap();
    assert_eq!(r.try_pop_vec(id(2)).unwrap(), b"ok");
    // A dead reader's claim is shown too (the message it was reading), then freed.
    r.try_push(id(1), b"rd").unwrap();
    expect_killed(|| r.clone().with_fault_hook(|_| kill()).try_pop_vec(id(6)));
    let read = std::cell::RefCell::new(Vec::new());
    let rep = r.recover_with(
        |id| id != 6,
        |dead| {
            read.borrow_mut()
                .push((dead.side, dead.payload[..2].to_vec()))
        },
    );
    assert_eq!(rep.freed, 1);
    assert_eq!(*read.borrow(), [(mproc_ring::Side::Head, b"rd".to_vec())]);
}
