//! Corruption is reported, and sticks (issue #13, finding 2): an in-place MPMC ring over test
//! memory whose `head` or `tail` hint is overwritten with a value no execution stores. Each
//! named invariant of the module docs ("Corruption") is broken once; the operation that
//! finds it returns `Corrupt` (never `Ok`, `Empty`, `Full` or `Contended`), counts it, and
//! every later push and pop returns `Corrupt` too. The edge states valid executions do reach
//! (a hint one behind, a head one ahead) are checked not to be flagged.
//!
//! How the hints are found without knowing the header layout: the test snapshots every
//! aligned `u64` of the region after each of `capacity` pushes and then `capacity` pops.
//! Positions step by laps of the next power of two, so the tail goes `0, 1, …, n - 1` and then
//! jumps to `one_lap` over the pushes and stays, and the head does the same over the pops:
//! for a capacity that is not a power of two no other word (slot words keep the position in
//! bits 63..32, payload bytes are the test's) makes either sequence, and the test asserts
//! that each is found exactly once.
#![cfg(not(mproc_loom))]
#![allow(unsafe_code)]

mod common;

use common::{expect_killed, id, mpmc};
use mproc_ring::fault::kill;
use mproc_ring::{MpmcRing, TryPopError, TryPushError};

/// An in-place ring that has gone once round (empty, both hints at `one_lap`), with the
/// addresses of its `tail` and `head` words.
struct Found {
    _mem: common::Shared,
    r: MpmcRing,
    tail: *mut u64,
    head: *mut u64,
    lap: u64,
}

impl Found {
    fn new(capacity: u32) -> Found {
        let (mem, r) = common::in_place_mpmc(capacity, 8);
        let words = mem.len / 8;
        let snap = || mem.words();
        let lap = u64::from(capacity.next_power_of_two());
        let mut snaps = vec![snap()];
        for i in 0..capacity {
            r.try_push(id(1), &[0xA0 | i as u8]).unwrap();
            snaps.push(snap());
        }
        for i in 0..capacity {
            assert_eq!(r.try_pop_vec(id(2)), Ok(vec![0xA0 | i as u8]));
            snaps.push(snap());
        }
        // Positions after 0..=capacity steps: 0, 1, …, n - 1, then one lap.
        let steps: Vec<u64> = (0..=u64::from(capacity))
            .map(|k| if k < u64::from(capacity) { k } else { lap })
            .collect();
        let n = capacity as usize;
        let tail_seq: Vec<u64> = (0..=2 * n).map(|k| steps[k.min(n)]).collect();
        let head_seq: Vec<u64> = (0..=2 * n).map(|k| steps[k.saturating_sub(n)]).collect();
        let find = |want: &[u64]| {
            let hits: Vec<usize> = (0..words)
                .filter(|&i| snaps.iter().map(|s| s[i]).eq(want.iter().copied()))
                .collect();
            assert_eq!(hits.len(), 1, "words with the sequence {want:?}: {hits:?}");
            mem.word_ptr(hits[0])
        };
        let tail = find(&tail_seq);
        let head = find(&head_seq);
        assert_eq!(r.corrupt_count(), 0);
        Found {
            _mem: mem,
            r,
            tail,
            head,
            lap,
        }
    }

    fn set(&self, word: *mut u64, v: u64) {
        // SAFETY: `word` points into the live mapping; the ring treats its hints as
        // untrusted, which is what these tests check.
        unsafe { word.write_volatile(v) }
    }

    /// Push, then pop, then both again: all `Corrupt`, counted, and the ring poisoned.
    fn assert_corrupt_push_first(&self, what: &str) {
        self.assert_push_corrupt(what);
        self.assert_sticky(what);
    }

    /// Pop, then push, then both again: all `Corrupt`, counted, and the ring poisoned.
    fn assert_corrupt_pop_first(&self, what: &str) {
        self.assert_pop_corrupt(what);
        self.assert_sticky(what);
    }

    fn assert_push_corrupt(&self, what: &str) {
        assert_eq!(
            self.r.try_push(id(1), b"x"),
            Err(TryPushError::Corrupt),
            "{what}"
        );
    }

    fn assert_pop_corrupt(&self, what: &str) {
        assert_eq!(
            self.r.try_pop_vec(id(2)),
            Err(TryPopError::Corrupt),
            "{what}"
        );
    }

    fn assert_sticky(&self, what: &str) {
        let before = self.r.corrupt_count();
        assert!(before >= 1, "{what}: counted");
        assert!(self.r.is_poisoned(), "{what}: poisoned");
        for _ in 0..3 {
            self.assert_push_corrupt(what);
            self.assert_pop_corrupt(what);
        }
        // Even with the hints put back (a consistent state again), the ring stays corrupt,
        // and sticky returns are not counted again.
        self.set(self.tail, self.lap);
        self.set(self.head, self.lap);
        self.assert_push_corrupt(what);
        self.assert_pop_corrupt(what);
        assert_eq!(self.r.corrupt_count(), before, "{what}");
        assert_eq!(self.r.stuck_claim(mproc_ring::Side::Head), None, "{what}");
    }
}

const CAPACITIES: [u32; 3] = [3, 5, 6];

/// Out of range: more than a lap away in position terms, two ways — whole laps the stamp
/// shows as behind, and `2^32` positions ahead minus two laps, which the 32-bit stamp shows
/// as two laps *ahead* (a push or pop used to retry that until `Contended`: "would block").
fn far(found: &Found) -> [(u64, &'static str); 2] {
    [
        (found.lap + 3 * found.lap, "three laps ahead"),
        (
            (1 << 32) + found.lap - 2 * found.lap,
            "2^32 ahead, two laps short",
        ),
    ]
}

/// Each far value of one hint (`pick`, named `which`), on a fresh ring of each capacity, is
/// found by the operation that reads that hint first (`assert_corrupt`).
fn far_hint_is_corrupt_and_sticky(
    which: &str,
    pick: fn(&Found) -> *mut u64,
    assert_corrupt: fn(&Found, &str),
) {
    for capacity in CAPACITIES {
        for k in 0..2 {
            let f = Found::new(capacity);
            let (v, how) = far(&f)[k];
            f.set(pick(&f), v);
            assert_corrupt(&f, &format!("capacity {capacity}, {which} {how}"));
        }
    }
}

#[test]
fn a_head_far_beyond_the_tail_is_corrupt_and_sticky() {
    far_hint_is_corrupt_and_sticky("head", |f| f.head, Found::assert_corrupt_pop_first);
}

#[test]
fn a_tail_far_beyond_the_head_is_corrupt_and_sticky() {
    far_hint_is_corrupt_and_sticky("tail", |f| f.tail, Found::assert_corrupt_push_first);
}

#[test]
fn a_hint_index_part_of_capacity_or_more_is_corrupt_at_once() {
    for capacity in CAPACITIES {
        let f = Found::new(capacity);
        // Index `capacity` of the current lap: no slot has it.
        f.set(f.head, f.lap + u64::from(capacity));
        f.assert_corrupt_pop_first(&format!("capacity {capacity}, head index = capacity"));
        let f = Found::new(capacity);
        f.set(f.tail, f.lap + f.lap - 1);
        f.assert_corrupt_push_first(&format!("capacity {capacity}, tail index = one_lap - 1"));
    }
}

/// Hints moved by whole multiples of `2^32` positions keep the stamps pushes and pops
/// compare, so those cannot see it (module docs: what is not checked on the hot path); the
/// hint distance check in `len` and `recover` does, and then the ring is poisoned.
#[test]
fn hints_too_far_apart_for_the_slots_are_found_by_len_and_recover() {
    for capacity in CAPACITIES {
        for (tail, head, how) in [
            (1 << 32, 0, "tail 2^32 ahead"),
            (0, 1 << 33, "head 2^33 ahead"),
            // Within a lap, the head two slots ahead of the tail.
            (0, 2, "head two slots ahead"),
        ] {
            let what = format!("capacity {capacity}, {how}");
            let f = Found::new(capacity);
            f.set(f.tail, f.lap + tail);
            f.set(f.head, f.lap + head);
            let _ = f.r.len();
            assert!(f.r.is_poisoned(), "{what}: len");
            assert_eq!(f.r.corrupt_count(), 1, "{what}");
            f.assert_sticky(&what);

            let f = Found::new(capacity);
            f.set(f.tail, f.lap + tail);
            f.set(f.head, f.lap + head);
            let _ = f.r.recover(|_| true);
            assert!(f.r.is_poisoned(), "{what}: recover");
            f.assert_sticky(&what);
        }
    }
}

/// The hint states valid executions do reach, at the edge of the distance check: the tail
/// `capacity + 1` slots ahead of the head (a consumer died between its claim and its help,
/// its slot was freed and refilled), the head one ahead of the tail (a producer died before
/// helping the tail, and its tombstone was skipped). Neither is flagged.
#[test]
fn the_edge_states_dead_claimants_leave_are_not_corrupt() {
    for capacity in [1u32, 2, 3, 4, 5] {
        // Tail `capacity + 1` ahead.
        let r = mpmc(capacity, 8);
        for i in 0..capacity as u8 {
            r.try_push(id(1), &[i]).unwrap();
        }
        expect_killed(|| r.with_fault_hook(|_| kill()).try_pop_vec(id(2)));
        assert_eq!(r.recover(|p| p != 2).freed, 1);
        r.try_push(id(1), b"c").unwrap();
        assert_eq!(r.len(), capacity, "clamped");
        let _ = r.recover(|_| true);
        assert!(!r.is_poisoned(), "capacity {capacity}: tail n + 1 ahead");
        assert_eq!(r.try_push(id(1), b"d"), Err(TryPushError::Full));
        assert_eq!(r.try_pop_vec(id(3)).map(|v| v.len()), Ok(1));
        assert_eq!(r.corrupt_count(), 0, "capacity {capacity}");

        // Head one ahead, at every index (across the lap jump too).
        for skip in 0..capacity {
            let r = mpmc(capacity, 8);
            for _ in 0..skip {
                r.try_push(id(1), b"w").unwrap();
                r.try_pop_vec(id(3)).unwrap();
            }
            expect_killed(|| r.with_fault_hook(|_| kill()).try_push(id(1), b"p"));
            assert_eq!(r.recover(|p| p != 1).tombstoned, 1);
            assert_eq!(r.try_pop_vec(id(3)), Err(TryPopError::Empty));
            assert_eq!(r.len(), 0);
            let _ = r.recover(|_| true);
            assert!(!r.is_poisoned(), "capacity {capacity}: head one ahead");
            r.try_push(id(1), b"q").unwrap();
            assert_eq!(r.try_pop_vec(id(3)), Ok(b"q".to_vec()));
            assert_eq!(r.corrupt_count(), 0, "capacity {capacity}");
        }
    }
}
