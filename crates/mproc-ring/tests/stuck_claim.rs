//! Recovery by every caller (issue #12, finding 1): an operation stuck on another
//! participant's claim finds it with `MpmcRing::stuck_claim` (one look, no scan) and resolves
//! exactly that slot with `MpmcRing::recover_claim` once the claimant is dead — so a consumer
//! that only polls (`get_nowait`) gets every message committed behind a dead producer's claim,
//! and a producer gets the slot a dead reader held.
//!
//! The callers here follow the contract of the `mpmc` module docs, with a tick counter for a
//! clock ([`Watch`]): remember the claim and when it was first seen, ask liveness only when
//! the same claim is still there [`INTERVAL`] ticks later. Claimants are frozen or killed right
//! after their claim CAS through the test-only fault hook (feature `test-hooks`). One thread;
//! every loop is bounded. The same under loom, racing: `loom_mpmc.rs`.
#![cfg(not(mproc_loom))]

mod common;

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use common::{drain, expect_killed, id, mpmc};
use mproc_ring::fault::{FaultPoint, kill};
use mproc_ring::{Claim, MpmcRing, Recovered, Side, TryPopError, TryPushError};

/// 8-byte slots.
fn ring(capacity: u32) -> MpmcRing {
    mpmc(capacity, 8)
}

/// Ticks a claim must stay stuck before its claimant's liveness is asked.
const INTERVAL: u32 = 5;

/// The caller's half of the contract, per side: the claim it is stuck on and since when.
struct Watch {
    side: Side,
    seen: Option<(Claim, u32)>,
}

impl Watch {
    fn new(side: Side) -> Watch {
        Watch { side, seen: None }
    }

    /// Called after a pop said `Empty` (or a push `Full`) at tick `now`.
    fn stuck(&mut self, r: &MpmcRing, now: u32, alive: impl Fn(u32) -> bool) -> Option<Recovered> {
        let Some(c) = r.stuck_claim(self.side) else {
            self.seen = None;
            return None;
        };
        match self.seen {
            Some((s, since)) if s == c => {
                if now - since < INTERVAL {
                    return None;
                }
                let rec = r.recover_claim(c, alive);
                // Alive (or moved on): restart the interval, so liveness is asked at most once
                // per interval.
                self.seen = if rec.is_some() { None } else { Some((c, now)) };
                rec
            }
            _ => {
                self.seen = Some((c, now));
                None
            }
        }
    }
}

/// A liveness oracle that says `dead` is dead, and counts the questions.
fn oracle(dead: u32, asked: &Cell<u32>) -> impl Fn(u32) -> bool + '_ {
    move |p| {
        asked.set(asked.get() + 1);
        p != dead
    }
}

/// A producer (id 1) killed right after claiming the tail position, then `n` messages committed
/// behind its claim by producer 2.
fn dead_claim_then(r: &MpmcRing, n: u8) {
    expect_killed(|| r.with_fault_hook(|_| kill()).try_push(id(1), b"dead"));
    for i in 0..n {
        r.try_push(id(2), &[i]).unwrap();
    }
}

/// Runs `case` on a fresh ring of each capacity in `capacities`.
fn in_rings_of(capacities: &[u32], case: fn(&MpmcRing)) {
    for &capacity in capacities {
        case(&ring(capacity));
    }
}

#[test]
fn a_pure_poller_gets_everything_behind_a_dead_producers_claim() {
    // Also with the dead claim on the last slot of a 6-slot ring, so the messages behind it
    // are on the next lap (positions 8.., one lap being the next power of two).
    for (cap, skip) in [(8, 0), (6, 5)] {
        pure_poller(cap, skip);
    }
}

fn pure_poller(cap: u32, skip: u32) {
    let r = ring(cap);
    for _ in 0..skip {
        r.try_push(id(2), b"w").unwrap();
        assert_eq!(r.try_pop_vec(id(3)), Ok(b"w".to_vec()));
    }
    dead_claim_then(&r, 4);
    assert_eq!(r.len(), 5, "len counts the dead claim (documented)");
    let asked = Cell::new(0);
    let alive = oracle(1, &asked);
    let mut watch = Watch::new(Side::Head);
    let mut got = Vec::new();
    let mut recovered = Vec::new();
    let mut first_at = None;
    for now in 0..100 {
        match r.try_pop_vec(id(3)) {
            Ok(v) => {
                first_at.get_or_insert(now);
                got.push(v);
            }
            Err(TryPopError::Empty) if got.len() == 4 => break,
            Err(TryPopError::Empty) => recovered.extend(watch.stuck(&r, now, &alive)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, [[0], [1], [2], [3]], "everything committed, in order");
    assert_eq!(recovered, [Recovered::Tombstoned]);
    assert_eq!(r.lost_writes(), 1, "the dead message, counted once");
    assert_eq!(asked.get(), 1, "liveness asked once, after the interval");
    assert_eq!(first_at, Some(INTERVAL + 1), "nothing before the interval");
    assert_eq!(r.stuck_claim(Side::Head), None);
    assert!(r.is_empty());
    assert_eq!(drain(&r), Vec::<Vec<u8>>::new());
}

/// The loss is counted once however many callers saw the claim: the second caller's claim
/// moved on, and it does not even ask liveness.
#[test]
fn two_callers_recover_a_dead_claim_once() {
    let r = ring(4);
    dead_claim_then(&r, 1);
    let a = r.stuck_claim(Side::Head).expect("stuck on the dead claim");
    let b = r.stuck_claim(Side::Head).expect("stuck on the dead claim");
    assert_eq!(a, b, "the same claim seen twice");
    assert_eq!((a.position(), a.claimant(), a.side()), (0, 1, Side::Head));
    let asked = Cell::new(0);
    assert_eq!(
        r.recover_claim(a, oracle(1, &asked)),
        Some(Recovered::Tombstoned)
    );
    assert_eq!(r.recover_claim(b, oracle(1, &asked)), None);
    assert_eq!(asked.get(), 1, "a claim that moved on asks no liveness");
    assert_eq!(r.lost_writes(), 1);
    assert_eq!(r.recover(|p| p != 1), Default::default(), "nothing left");
    assert_eq!(drain(&r), [[0]]);
}

/// A live producer frozen right after its claim is never recovered: its slot is untouched,
/// the messages behind it wait, and liveness is asked once per interval, not per poll.
#[test]
fn a_live_frozen_producer_is_never_recovered() {
    let r = ring(8);
    type Seen = (
        Vec<Option<Recovered>>,
        u32,
        u32,
        Result<Vec<u8>, TryPopError>,
    );
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let frozen = {
        let (r, log) = (r.clone(), log.clone());
        r.clone().with_fault_hook(move |p| {
            assert_eq!(p, FaultPoint::WriteClaimed { pos: 0 });
            for i in 0..3 {
                r.try_push(id(2), &[i]).unwrap();
            }
            let claim = r.stuck_claim(Side::Head).expect("stuck on the live claim");
            let asked = Cell::new(0);
            // Alive, and the oracle says so for the claimant alone: id 1 must be the one asked.
            let alive = |p: u32| {
                asked.set(asked.get() + 1);
                p == 1
            };
            let mut watch = Watch::new(Side::Head);
            let mut rec = Vec::new();
            for now in 0..4 * INTERVAL {
                assert_eq!(r.try_pop_vec(id(3)), Err(TryPopError::Empty), "tick {now}");
                rec.push(watch.stuck(&r, now, alive));
            }
            // Direct, too: a live claimant is left alone whenever it is asked.
            rec.push(r.recover_claim(claim, alive));
            assert_eq!(r.stuck_claim(Side::Head), Some(claim), "slot untouched");
            log.lock()
                .unwrap()
                .push((rec, asked.get(), r.len(), r.try_pop_vec(id(3))));
        })
    };
    assert_eq!(
        frozen.try_push(id(1), b"p1"),
        Ok(()),
        "its commit is not stolen"
    );
    let seen = log.lock().unwrap().pop().expect("the hook ran");
    assert!(seen.0.iter().all(Option::is_none), "{:?}", seen.0);
    assert_eq!(
        seen.1,
        3 + 1,
        "once per interval of 4 intervals' polling, plus the direct call"
    );
    assert_eq!(seen.2, 4, "len counted the claim and the three behind it");
    assert_eq!(
        seen.3,
        Err(TryPopError::Empty),
        "the messages behind waited"
    );
    assert_eq!(r.lost_writes(), 0);
    assert_eq!(
        drain(&r),
        [b"p1".to_vec(), vec![0], vec![1], vec![2]],
        "all delivered, in order"
    );
}

/// The next lap's claim of the same slot, by the same producer, is a different `Claim`; the
/// old one is stale and recovers nothing (not even the new claim that sits in its slot now),
/// without asking liveness.
#[test]
fn a_new_claim_of_the_same_slot_a_lap_later_is_a_different_claim() {
    in_rings_of(&[2, 3], new_claim_a_lap_later);
}

fn new_claim_a_lap_later(r: &MpmcRing) {
    let cap = r.capacity();
    dead_claim_then(r, cap as u8 - 1);
    let old = r.stuck_claim(Side::Head).expect("stuck");
    assert_eq!(
        r.recover_claim(old, |p| p != 1),
        Some(Recovered::Tombstoned)
    );
    let behind: Vec<Vec<u8>> = (0..cap as u8 - 1).map(|i| vec![i]).collect();
    assert_eq!(drain(r), behind, "skips the tombstone");
    // Slot 0 again, one lap later (position `one_lap`: 2 for 2 slots, 4 for 3): the same
    // producer id claims it and dies again.
    expect_killed(|| r.with_fault_hook(|_| kill()).try_push(id(1), b"dead"));
    let new = r.stuck_claim(Side::Head).expect("stuck again");
    assert_ne!(new, old, "a new claim, not the same one seen again");
    assert_eq!(
        (old.position(), new.position()),
        (0, u64::from(cap.next_power_of_two()))
    );
    assert_eq!(old.claimant(), new.claimant());
    let asked = Cell::new(0);
    assert_eq!(r.recover_claim(old, oracle(1, &asked)), None, "stale");
    assert_eq!(asked.get(), 0, "a stale claim asks no liveness");
    assert_eq!(
        r.lost_writes(),
        1,
        "the new claim is untouched by the stale one"
    );
    assert_eq!(r.stuck_claim(Side::Head), Some(new));
    assert_eq!(
        r.recover_claim(new, oracle(1, &asked)),
        Some(Recovered::Tombstoned)
    );
    assert_eq!(r.lost_writes(), 2);
    r.try_push(id(2), b"after").unwrap();
    assert_eq!(drain(r), [b"after".to_vec()]);
}

/// A stale claim whose claimant simply finished: nothing to recover, the message delivered.
#[test]
fn a_claim_whose_claimant_finished_recovers_nothing() {
    let r = ring(4);
    let seen: Arc<Mutex<Option<Claim>>> = Arc::default();
    let slow = {
        let (r, seen) = (r.clone(), seen.clone());
        r.clone()
            .with_fault_hook(move |_| *seen.lock().unwrap() = r.stuck_claim(Side::Head))
    };
    slow.try_push(id(1), b"m").unwrap();
    let claim = seen.lock().unwrap().expect("seen while being written");
    assert_eq!(r.stuck_claim(Side::Head), None, "committed: not stuck");
    assert_eq!(r.recover_claim(claim, |_| false), None, "moved on");
    assert_eq!(r.lost_writes(), 0);
    assert_eq!(drain(&r), [b"m".to_vec()]);
}

/// A producer and a consumer claim the same position: two different claims (the producer's
/// blocks the head, the consumer's, a lap later, the tail).
#[test]
fn a_producers_and_a_consumers_claim_of_one_position_differ() {
    let r = ring(1);
    let writing: Arc<Mutex<Option<Claim>>> = Arc::default();
    {
        let (r2, writing) = (r.clone(), writing.clone());
        r.with_fault_hook(move |_| *writing.lock().unwrap() = r2.stuck_claim(Side::Head))
            .try_push(id(1), b"m")
            .unwrap();
    }
    expect_killed(|| r.with_fault_hook(|_| kill()).try_pop_vec(id(6)));
    let reading = r
        .stuck_claim(Side::Tail)
        .expect("a dead reader at the tail");
    let writing = writing.lock().unwrap().expect("seen while being written");
    assert_eq!((writing.position(), reading.position()), (0, 0));
    assert_eq!((writing.side(), reading.side()), (Side::Head, Side::Tail));
    assert_ne!(writing, reading);
    assert_eq!(r.recover_claim(writing, |_| false), None, "stale");
    assert_eq!(r.recover_claim(reading, |p| p != 6), Some(Recovered::Freed));
}

/// A producer stuck at `Full` on a dead reader's claim (the previous lap's `READING` in the
/// tail slot) recovers it and pushes, polling only.
#[test]
fn a_pure_pusher_gets_the_slot_a_dead_reader_held() {
    in_rings_of(&[2, 3], pure_pusher);
}

fn pure_pusher(r: &MpmcRing) {
    let cap = r.capacity();
    for i in 0..cap as u8 {
        r.try_push(id(1), &[i]).unwrap();
    }
    expect_killed(|| r.with_fault_hook(|_| kill()).try_pop_vec(id(6)));
    for i in 1..cap as u8 {
        assert_eq!(r.try_pop_vec(id(7)), Ok(vec![i]), "passes the dead reader");
    }
    assert_eq!(
        r.try_push(id(1), b"c"),
        Err(TryPushError::Full),
        "only the dead reader's slot is not free, but it is next"
    );
    assert_eq!(
        r.stuck_claim(Side::Head),
        None,
        "consumers are not stuck on it"
    );
    let claim = r.stuck_claim(Side::Tail).expect("stuck on the dead reader");
    assert_eq!(
        (claim.position(), claim.claimant(), claim.side()),
        (0, 6, Side::Tail)
    );
    let asked = Cell::new(0);
    let alive = oracle(6, &asked);
    let mut watch = Watch::new(Side::Tail);
    let mut pushed_at = None;
    for now in 0..100 {
        match r.try_push(id(1), b"c") {
            Ok(()) => {
                pushed_at = Some(now);
                break;
            }
            Err(TryPushError::Full) => {
                if let Some(rec) = watch.stuck(r, now, &alive) {
                    assert_eq!(rec, Recovered::Freed);
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(pushed_at, Some(INTERVAL + 1));
    assert_eq!(asked.get(), 1);
    assert_eq!(r.lost_reads(), 1);
    assert_eq!(r.stuck_claim(Side::Tail), None);
    assert_eq!(drain(r), [b"c".to_vec()]);
}

/// A live reader frozen right after its claim keeps its slot: producers see `Full` and wait.
#[test]
fn a_live_frozen_reader_is_never_recovered() {
    let r = ring(2);
    r.try_push(id(1), b"a").unwrap();
    r.try_push(id(1), b"b").unwrap();
    type Seen = (Option<Recovered>, Result<(), TryPushError>, Option<Claim>);
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let frozen = {
        let (r, log) = (r.clone(), log.clone());
        r.clone().with_fault_hook(move |_| {
            assert_eq!(r.try_pop_vec(id(7)), Ok(b"b".to_vec()));
            let claim = r.stuck_claim(Side::Tail).expect("stuck on the live reader");
            log.lock().unwrap().push((
                r.recover_claim(claim, |p| p == 6),
                r.try_push(id(1), b"c"),
                r.stuck_claim(Side::Tail),
            ));
        })
    };
    assert_eq!(
        frozen.try_pop_vec(id(6)),
        Ok(b"a".to_vec()),
        "its read is not stolen"
    );
    let (rec, push, after) = log.lock().unwrap().pop().expect("the hook ran");
    assert_eq!(rec, None);
    assert_eq!(push, Err(TryPushError::Full));
    assert!(after.is_some(), "slot untouched");
    assert_eq!(r.lost_reads(), 0);
    r.try_push(id(1), b"c").unwrap();
    assert_eq!(drain(&r), [b"c".to_vec()]);
}

/// Not stuck on a claim: `None` on an empty ring, a full ring, a committed or tombstoned
/// head, and at the tail of a ring with room.
#[test]
fn no_claim_no_stuck_claim() {
    let r = ring(2);
    assert_eq!(r.stuck_claim(Side::Head), None, "empty");
    assert_eq!(r.stuck_claim(Side::Tail), None, "empty");
    r.try_push(id(1), b"a").unwrap();
    assert_eq!(r.stuck_claim(Side::Head), None, "committed head");
    assert_eq!(r.stuck_claim(Side::Tail), None, "room");
    r.try_push(id(1), b"b").unwrap();
    assert_eq!(r.stuck_claim(Side::Tail), None, "truly full");
    assert_eq!(drain(&r).len(), 2);
    dead_claim_then(&r, 0);
    let c = r.stuck_claim(Side::Head).expect("dead claim");
    assert_eq!(r.recover_claim(c, |_| false), Some(Recovered::Tombstoned));
    assert_eq!(r.stuck_claim(Side::Head), None, "tombstone: pops skip it");
    // The producer died before helping the tail past its claim, and nobody pushed since:
    // neither the claim nor its tombstone is counted (documented).
    assert_eq!(r.len(), 0);
    assert_eq!(r.try_pop_vec(id(3)), Err(TryPopError::Empty));
    assert_eq!(r.len(), 0);
}

/// `len` with a dead claim at the head counts the claim and everything behind it, as
/// documented; after recovery the next pop skips the tombstone.
#[test]
fn len_counts_a_dead_claim_until_it_is_recovered_and_skipped() {
    let r = ring(8);
    dead_claim_then(&r, 4);
    assert_eq!(r.len(), 5);
    assert!(!r.is_empty());
    assert_eq!(r.try_pop_vec(id(3)), Err(TryPopError::Empty));
    let c = r.stuck_claim(Side::Head).unwrap();
    assert_eq!(r.recover_claim(c, |p| p != 1), Some(Recovered::Tombstoned));
    assert_eq!(r.len(), 5, "the tombstone still counts");
    assert_eq!(r.try_pop_vec(id(3)), Ok(vec![0]));
    assert_eq!(r.len(), 3);
}

/// A head hint a lap behind (its consumer died before helping it, and the slot was freed and
/// claimed again since) is not a stuck claim yet: the next pop helps the hint forward, and
/// then the claim is reported at its own position.
#[test]
fn a_claim_behind_a_stale_head_is_reported_at_its_own_position() {
    let r = ring(1);
    r.try_push(id(2), b"a").unwrap();
    expect_killed(|| r.with_fault_hook(|_| kill()).try_pop_vec(id(6)));
    assert_eq!(r.recover(|p| p != 6).freed, 1);
    // Position 1 reuses slot 0; the head hint still says 0.
    expect_killed(|| r.with_fault_hook(|_| kill()).try_push(id(1), b"dead"));
    assert_eq!(
        r.stuck_claim(Side::Head),
        None,
        "the hint is behind, not stuck"
    );
    assert_eq!(r.try_pop_vec(id(3)), Err(TryPopError::Empty));
    let c = r
        .stuck_claim(Side::Head)
        .expect("stuck behind the dead producer");
    assert_eq!((c.position(), c.claimant()), (1, 1));
    assert_eq!(r.recover_claim(c, |p| p != 1), Some(Recovered::Tombstoned));
    assert_eq!(
        r.try_pop_vec(id(3)),
        Err(TryPopError::Empty),
        "skips the tombstone"
    );
    r.try_push(id(2), b"b").unwrap();
    assert_eq!(drain(&r), [b"b".to_vec()]);
}
