//! MPMC boundaries a mutation run (`cargo xtask mutants`) found untested: a head that has
//! come round to a slot whose previous-lap reader is still reading, slot words no valid
//! execution writes, and a pop into a buffer of exactly the message's length.
#![cfg(not(mproc_loom))]
#![allow(unsafe_code)]

mod common;

use std::sync::{Arc, Mutex};

use common::{id, mpmc};
use mproc_ring::fault::FaultPoint;
use mproc_ring::{MpmcRing, TryPopError, TryPushError};

/// What the others saw while the first consumer was frozen in its claim.
type Seen = (Result<Vec<u8>, TryPopError>, Result<(), TryPushError>);

fn previous_lap_reader_still_reading(capacity: u32) {
    let r = mpmc(capacity, 8);
    assert_eq!(r.try_push(id(1), b"a"), Ok(()));
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let frozen = {
        let (r, log) = (r.clone(), log.clone());
        r.clone().with_fault_hook(move |p| {
            assert_eq!(p, FaultPoint::ReadClaimed { pos: 0 });
            // The others go round the ring once: fill the rest, drain it (helping the head
            // past our claim), until the head is back at our slot, one lap on.
            for i in 1..r.capacity() {
                assert_eq!(r.try_push(id(2), &[i as u8]), Ok(()));
            }
            for i in 1..r.capacity() {
                assert_eq!(r.try_pop_vec(id(3)), Ok(vec![i as u8]));
            }
            // The head's slot still holds the previous lap's reader: nothing to pop yet,
            // and no room to push — neither is corruption.
            let popped = r.try_pop_vec(id(3));
            let pushed = r.try_push(id(2), b"z");
            log.lock().unwrap().push((popped, pushed));
        })
    };
    assert_eq!(frozen.try_pop_vec(id(4)), Ok(b"a".to_vec()));
    assert_eq!(
        *log.lock().unwrap(),
        [(Err(TryPopError::Empty), Err(TryPushError::Full))],
        "capacity {capacity}"
    );
    // Once the reader is done, the lap goes on.
    assert_eq!(r.try_push(id(2), b"z"), Ok(()));
    assert_eq!(r.try_pop_vec(id(3)), Ok(b"z".to_vec()));
    assert_eq!(r.corrupt_count(), 0);
}

#[test]
fn a_head_back_at_a_slot_still_being_read_is_empty_not_corrupt() {
    for capacity in [1, 2, 3, 4] {
        previous_lap_reader_still_reading(capacity);
    }
}

#[test]
fn a_pop_into_a_buffer_of_exactly_the_message_length_succeeds() {
    let r = mpmc(4, 8);
    r.try_push(id(1), b"12345678").unwrap();
    r.try_push(id(1), b"1234").unwrap();
    let mut out = [0u8; 8];
    assert_eq!(r.try_pop(id(2), &mut out), Ok(8));
    assert_eq!(&out, b"12345678");
    let mut short = [0u8; 3];
    assert_eq!(
        r.try_pop(id(2), &mut short),
        Err(TryPopError::BufferTooSmall { len: 4 })
    );
}

/// An in-place ring over test memory, with one message pushed, and the address of the
/// 8-byte word that push turned into `FULL` (found by comparing the region before and
/// after: the slot word is the changed word whose state bits, 31..30, say `FULL`).
fn ring_with_found_slot_word(capacity: u32) -> (common::Shared, MpmcRing, *mut u64) {
    let (mem, r) = common::in_place_mpmc(capacity, 8);
    let before = mem.words();
    r.try_push(id(1), b"m").unwrap();
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| mem.word(i) != before[i] && (mem.word(i) >> 30) & 3 == 2)
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "exactly one word became FULL: {changed:?}"
    );
    let word = mem.word_ptr(changed[0]);
    (mem, r, word)
}

/// For each capacity, and each move of a slot word's position field (bits 63..32) that no
/// valid execution makes — by an amount that is not a whole number of laps ahead (1), or
/// whole laps behind beyond the one a busy reader can leave (two laps) — on a fresh
/// [`ring_with_found_slot_word`]: `prepare`, then the move, then `op` must say `corrupt`.
fn a_moved_slot_word_is_corrupt<T: PartialEq + std::fmt::Debug>(
    prepare: impl Fn(&MpmcRing, u32),
    op: impl Fn(&MpmcRing) -> T,
    corrupt: T,
) {
    for capacity in [2u32, 3, 4] {
        let lap = u64::from(capacity.next_power_of_two());
        for shift in [1u64, (2 * lap).wrapping_neg()] {
            let (_mem, r, word) = ring_with_found_slot_word(capacity);
            prepare(&r, capacity);
            // SAFETY: `word` points into the live mapping; the ring treats every slot word
            // as untrusted, which is what these tests check.
            unsafe { word.write_volatile(word.read_volatile().wrapping_add(shift << 32)) };
            assert_eq!(
                op(&r),
                corrupt,
                "capacity {capacity}, position moved by {}",
                shift as i64
            );
        }
    }
}

/// The moved word is the head's slot: the pop finds it.
#[test]
fn slot_words_no_execution_writes_are_corrupt() {
    a_moved_slot_word_is_corrupt(
        |_, _| {},
        |r| r.try_pop_vec(id(2)),
        Err(TryPopError::Corrupt),
    );
}

/// Fill the ring and free the first slot: the tail's next slot is that slot, `EMPTY` for
/// the next lap, and the push finds it moved.
#[test]
fn a_tail_slot_word_no_execution_writes_is_corrupt() {
    a_moved_slot_word_is_corrupt(
        |r, capacity| {
            for i in 1..capacity {
                r.try_push(id(1), &[i as u8]).unwrap();
            }
            assert_eq!(r.try_pop_vec(id(2)), Ok(b"m".to_vec()));
        },
        |r| r.try_push(id(1), b"x"),
        Err(TryPushError::Corrupt),
    );
}
