//! Corruption is reported (issue #13, finding 2): a queue whose ring head and tail were
//! overwritten with out-of-range values used to accept `put_nowait` or say "full", and every
//! `get` then timed out with nothing reported. Now both sides say the memory is corrupt, the
//! queue counts it, and stays corrupt.
//!
//! How the test finds the ring's `head` and `tail` words without knowing the layout: it maps
//! the queue's `/dev/shm/mproc.<name>` file a second time and snapshots every aligned `u64`
//! after each of three puts and three gets on a queue of capacity 3. Positions step by laps
//! of the next power of two (module docs of `mproc_ring::mpmc`), so the tail goes
//! `0, 1, 2, 4` over the puts and then stays, and the head stays 0 over the puts and then goes
//! `1, 2, 4` over the gets: no counter or payload byte makes either sequence, so each is
//! found exactly once.

mod common;

use std::time::{Duration, Instant};

use common::Mapping;

use mproc::Queue;
use mproc::message::MessageError;
use mproc::queue::{GetTimeoutError, TryGetError, TryPutError};

/// The single word index whose values over `snaps` are exactly `want`.
fn find(snaps: &[Vec<u64>], want: &[u64]) -> usize {
    let hits: Vec<usize> = (0..snaps[0].len())
        .filter(|&i| snaps.iter().map(|s| s[i]).eq(want.iter().copied()))
        .collect();
    assert_eq!(hits.len(), 1, "words with the sequence {want:?}: {hits:?}");
    hits[0]
}

fn is_corrupt(e: &MessageError) -> bool {
    matches!(e, MessageError::Corrupt)
}

/// A named queue of capacity 3 (`test-corrupt-<tag>-<pid>`), a second holder (so waits end
/// in `Timeout`, not `Disconnected`) and a second mapping of its file.
fn capacity_three(tag: &str) -> (String, Queue<u32>, Queue<u32>, Mapping) {
    let name = format!("test-corrupt-{tag}-{}", std::process::id());
    let q = Queue::<u32>::builder()
        .capacity(3)
        .create_named(&name)
        .unwrap();
    let peer = Queue::<u32>::open_named(&name).unwrap();
    let map = Mapping::open(&name);
    (name, q, peer, map)
}

/// A named capacity-3 queue gone once round (empty, both hints at position 4), a second
/// holder (so waits end in `Timeout`, not `Disconnected` — the finding's symptom), the
/// mapping, and the word indices of the ring's `tail` and `head`.
struct Forge {
    name: String,
    q: Queue<u32>,
    peer: Queue<u32>,
    map: Mapping,
    tail: usize,
    head: usize,
}

impl Forge {
    fn new(tag: &str) -> Forge {
        let (name, q, peer, map) = capacity_three(tag);
        let mut snaps = vec![map.snapshot()];
        for i in 0..3 {
            q.put_nowait(i).unwrap();
            snaps.push(map.snapshot());
        }
        for i in 0..3 {
            assert_eq!(q.get_nowait(), Ok(i));
            snaps.push(map.snapshot());
        }
        let tail = find(&snaps, &[0, 1, 2, 4, 4, 4, 4]);
        let head = find(&snaps, &[0, 0, 0, 0, 1, 2, 4]);
        assert_eq!(q.corrupt(), 0);
        Forge {
            name,
            q,
            peer,
            map,
            tail,
            head,
        }
    }

    /// Sticky, for every handle: even with the hints put back, the queue stays corrupt.
    fn assert_sticky(self) {
        let start = Instant::now();
        assert!(self.q.corrupt() >= 1, "counted: {}", self.q.corrupt());
        self.map.write(self.tail, 4);
        self.map.write(self.head, 4);
        assert_put_refused(&self.peer, 8, "put_nowait after the corruption");
        assert_get_refused(
            &self.peer,
            Duration::from_millis(50),
            "get_timeout after the corruption",
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "reported at once, not after a wait"
        );
        drop(self.map);
        Queue::<u32>::unlink_named(&self.name).unwrap();
    }
}

/// A `put_nowait` of `item` on a corrupt queue: refused as corrupt, with the item back.
fn assert_put_refused(q: &Queue<u32>, item: u32, when: &str) {
    match q.put_nowait(item) {
        Err(TryPutError::Message(back, e)) if back == item && is_corrupt(&e) => {}
        other => panic!("{when}: {other:?}"),
    }
}

/// A `get_timeout(wait)` on a corrupt queue: refused as corrupt (not a timeout).
fn assert_get_refused(q: &Queue<u32>, wait: Duration, when: &str) {
    match q.get_timeout(wait) {
        Err(GetTimeoutError::Message(e)) if is_corrupt(&e) => {}
        other => panic!("{when}: {other:?}"),
    }
}

#[test]
fn out_of_range_head_and_tail_are_reported_not_silent() {
    let f = Forge::new("range");
    // Out of range: 2^32 positions ahead, minus two laps (one lap is 4). Each hint still
    // names slot 0, whose word (`EMPTY(4)`) is then two laps ahead of it in stamp terms: no
    // execution leaves a freshly loaded hint that far behind its slot.
    let forged = (1u64 << 32) + 4 - 2 * 4;
    f.map.write(f.tail, forged);
    f.map.write(f.head, forged);
    assert_put_refused(&f.q, 7, "put_nowait on a corrupt queue");
    assert_get_refused(
        &f.q,
        Duration::from_millis(200),
        "get_timeout on a corrupt queue",
    );
    f.assert_sticky();
}

/// A head two slots ahead of the tail, within a lap: the head's slot is `EMPTY` for that
/// very position, so a pop alone sees an empty queue (it does not load the producers'
/// tail). The hint distance check does see it — in `qsize` and in the recovery scan a
/// blocked `get` runs after a quiet sleep slice — and the wait ends in a corruption error,
/// not a timeout.
#[test]
fn a_head_ahead_of_the_tail_is_reported_by_a_waiting_get() {
    let f = Forge::new("ahead");
    f.map.write(f.head, 4 + 2);
    assert_get_refused(
        &f.q,
        Duration::from_millis(300),
        "get_timeout on a corrupt queue",
    );
    assert_put_refused(&f.q, 7, "put_nowait on a corrupt queue");
    f.assert_sticky();

    // `qsize` finds it too.
    let f = Forge::new("qsize");
    f.map.write(f.head, 4 + 2);
    let _ = f.q.qsize();
    match f.q.get_nowait() {
        Err(TryGetError::Message(e)) if is_corrupt(&e) => {}
        other => panic!("get_nowait after qsize: {other:?}"),
    }
    f.assert_sticky();
}

/// The stall detector (issue #13): items queued by the hints, but the head slot's word put
/// back to "never claimed" (`EMPTY` for the head's own position). No claimant holds it, so
/// no recovery can ever free it; a waiting `get` used to time out in silence for ever. Now a
/// consumer that sees the same stall for a second reports the queue corrupt, and it stays so.
#[test]
fn a_head_slot_that_no_one_claimed_is_a_reported_stall() {
    let (name, q, peer, map) = capacity_three("stall");
    // Slot 0's word over: fresh, A put (FULL at position 0), A taken (EMPTY for position 4,
    // the next lap; one lap is 4 slots for capacity 3).
    let mut snaps = vec![map.snapshot()];
    q.put_nowait(1).unwrap();
    snaps.push(map.snapshot());
    assert_eq!(q.get_nowait(), Ok(1));
    snaps.push(map.snapshot());
    let full0 = 2 << 30;
    let slot0 = find(&snaps, &[0, full0, 4 << 32]);
    // Positions 1, 2, then 4 (slot 0 again); take 1 and 2: the head is at 4, slot 0 holds 5.
    for i in [2, 3, 5] {
        q.put_nowait(i).unwrap();
    }
    assert_eq!(q.get_nowait(), Ok(2));
    assert_eq!(q.get_nowait(), Ok(3));
    assert_eq!(map.snapshot()[slot0], (4 << 32) | full0);
    // Forge: slot 0 never claimed for position 4, while the tail says one item is queued.
    map.write(slot0, 4 << 32);
    let start = Instant::now();
    assert_get_refused(&peer, Duration::from_secs(10), "get on a stalled head");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "reported after the stall interval, not at once nor at the timeout: {took:?}"
    );
    assert_eq!(q.corrupt(), 1);
    assert_put_refused(&q, 9, "put after the stall was reported");
    drop(map);
    Queue::<u32>::unlink_named(&name).unwrap();
}
