//! The queue's arena (issue #13, finding 1): messages larger than a slot travel in a buddy
//! arena whose free blocks merge back, so an empty queue always takes the largest message
//! its `arena_size` promises. The size histories that used to block an empty queue (a burst
//! of 20 KiB messages drained, then 10 KiB ones; 3 × 700 KiB then 1.5 MiB; 1, 4, 16 MiB then
//! 64 MiB), the exact `arena_size` promise, `TooLarge` at once, a put that waits for arena
//! room being woken by a get, timeouts that say whether slots or arena room ran out, and a
//! corrupt arena reported (and sticky) instead of a silent wait.

mod common;

use std::time::{Duration, Instant};

use mproc::Queue;
use mproc::message::MessageError;
use mproc::queue::{PutTimeoutError, TryPutError};

/// A queue of byte vectors with `slots` slots and an arena promised to hold `arena` bytes,
/// and a second handle (so waits end in timeouts, never `Disconnected`).
fn queue(slots: u32, arena: u64) -> (Queue<Vec<u8>>, Queue<Vec<u8>>) {
    let q = Queue::<Vec<u8>>::builder()
        .capacity(slots)
        .arena_size(arena)
        .create()
        .unwrap();
    let peer = q.clone();
    (q, peer)
}

/// A message whose encoding is about `len` bytes (a byte vector's archive adds a few).
fn msg(len: usize, byte: u8) -> Vec<u8> {
    vec![byte; len]
}

fn round_trip(q: &Queue<Vec<u8>>, len: usize, byte: u8) {
    q.put_timeout(msg(len, byte), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("put of {len} bytes: {e} (qsize {})", q.qsize()));
    let got = q.get_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((got.len(), got.first().copied()), (len, Some(byte)));
}

#[test]
fn the_size_histories_that_blocked_an_empty_queue_now_pass() {
    // A burst of 31 × 20 KiB drained, then 10 KiB one at a time, then the largest message.
    let (q, _peer) = queue(64, 1 << 20);
    for i in 0..31 {
        q.put_nowait(msg(20 << 10, i)).unwrap();
    }
    for _ in 0..31 {
        q.get_nowait().unwrap();
    }
    for i in 0..50 {
        round_trip(&q, 10 << 10, i);
    }
    round_trip(&q, 1 << 20, 7);

    // 3 × 700 KiB, then 1.5 MiB, in a 4 MiB arena.
    let (q, _peer) = queue(8, 4 << 20);
    for i in 0..3 {
        round_trip(&q, 700 << 10, i);
    }
    round_trip(&q, 1536 << 10, 9);
    assert_eq!(q.qsize(), 0);

    // 1, 4, 16 MiB, then 64 MiB, in an arena for 64 MiB messages (its pages are touched
    // only where messages go).
    let (q, _peer) = queue(8, 64 << 20);
    for mib in [1, 4, 16, 64] {
        round_trip(&q, mib << 20, mib as u8);
    }
    let stats = q.arena_check().unwrap();
    assert_eq!(stats.in_use_blocks, 0, "{stats:?}");
    assert_eq!(stats.largest_message_now, stats.max_message, "{stats:?}");
}

#[test]
fn arena_size_is_the_largest_message_an_empty_queue_takes() {
    for n in [5_000u64, 65_536, 100_000, 1 << 20] {
        let (q, _peer) = queue(4, n);
        let stats = q.arena_stats().unwrap();
        assert!(stats.max_message as u64 >= n, "{n}: {stats:?}");
        assert!(
            stats.max_message as u64 + 16 <= 2 * (n + 16),
            "{n}: {stats:?}"
        );
        // The largest message that fits goes through; one byte more is `TooLarge` at once.
        let overhead = 16; // generous for a byte vector's archive
        round_trip(&q, n as usize - overhead, 3);
        let start = Instant::now();
        match q.put_nowait(msg(stats.max_message + 1, 1)) {
            Err(TryPutError::Message(_, MessageError::TooLarge { max, .. })) => {
                assert_eq!(max, stats.max_message)
            }
            other => panic!("{n}: a message that can never fit: {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1), "refused at once");
    }
}

#[test]
fn a_put_waiting_for_arena_room_is_woken_by_a_get_and_its_timeout_says_why() {
    // Room for one 40 KiB message at a time (the arena holds 64 KiB messages) and 8 slots.
    let (q, peer) = queue(8, 60_000);
    // A handle that stays (the waiter's goes with its thread), so waits end in timeouts.
    let _third = q.clone();
    q.put_nowait(msg(40 << 10, 1)).unwrap();
    // Slots are free but the arena is not: the errors say so.
    match q.put_nowait(msg(40 << 10, 2)) {
        Err(e @ TryPutError::ArenaFull(_)) => assert!(e.is_full()),
        other => panic!("put_nowait with the arena full: {other:?}"),
    }
    match q.put_timeout(msg(40 << 10, 2), Duration::from_millis(30)) {
        Err(PutTimeoutError::ArenaFull(_)) => {}
        other => panic!("put_timeout with the arena full: {other:?}"),
    }
    // A blocked put is woken when the get frees the first message's block.
    std::thread::scope(|s| {
        // `Queue` is `Send`, not `Sync`: the waiter takes its own handle.
        let waiter = s.spawn(move || {
            let start = Instant::now();
            peer.put_timeout(msg(40 << 10, 3), Duration::from_secs(10))
                .map(|()| start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(q.get().unwrap()[0], 1);
        let waited = waiter.join().unwrap().expect("the put got the freed room");
        assert!(
            waited < Duration::from_secs(5),
            "woken, not timed out: {waited:?}"
        );
    });
    assert_eq!(q.get().unwrap()[0], 3);
    // Slots full (small messages): the plain timeout.
    for i in 0..8 {
        q.put_nowait(vec![i]).unwrap();
    }
    match q.put_timeout(vec![9], Duration::from_millis(20)) {
        Err(PutTimeoutError::Timeout(_)) => {}
        other => panic!("put_timeout with the slots full: {other:?}"),
    }
    assert!(matches!(q.put_nowait(vec![9]), Err(TryPutError::Full(_))));
}

/// The journal count of the queue's arena, found by its magic in a second mapping of the
/// queue's file, set past its capacity: the next put of a large message reports `Corrupt`,
/// counts it, and the queue stays corrupt for small messages too.
#[test]
fn a_corrupt_arena_is_reported_and_sticky() {
    let name = format!("test-arena-corrupt-{}", std::process::id());
    let q = Queue::<Vec<u8>>::builder()
        .capacity(4)
        .arena_size(64 << 10)
        .create_named(&name)
        .unwrap();
    let peer = Queue::<Vec<u8>>::open_named(&name).unwrap();
    round_trip(&q, 1000, 1);
    let map = common::Mapping::open(&name);
    let magic = u64::from_le_bytes(*b"MPROCARN");
    let words = map.snapshot();
    let at = words
        .iter()
        .position(|&w| w == magic)
        .expect("the arena's magic");
    // The journal count sits 72 bytes into the arena.
    map.write(at + 9, 1_000);
    match peer.put_nowait(msg(1000, 2)) {
        Err(TryPutError::Message(_, MessageError::Corrupt)) => {}
        other => panic!("a put into a corrupt arena: {other:?}"),
    }
    assert_eq!(q.corrupt(), 1);
    match q.put_nowait(vec![1]) {
        Err(TryPutError::Message(_, MessageError::Corrupt)) => {}
        other => panic!("a small put after the detection: {other:?}"),
    }
    assert!(matches!(q.arena_check(), Err(MessageError::Corrupt)));
    drop(map);
    Queue::<Vec<u8>>::unlink_named(&name).unwrap();
}

/// `Queue::create_named` beside `Queue::open_named` (#14), with the default options.
#[test]
fn create_named_and_open_named_pair_up() {
    let name = format!("test-create-named-{}", std::process::id());
    let q = Queue::<Vec<u8>>::create_named(&name).unwrap();
    assert!(
        Queue::<Vec<u8>>::create_named(&name).is_err(),
        "the name is taken"
    );
    let peer = Queue::<Vec<u8>>::open_named(&name).unwrap();
    peer.put(vec![1, 2, 3]).unwrap();
    assert_eq!(q.get().unwrap(), vec![1, 2, 3]);
    assert_eq!(q.capacity(), mproc::queue::DEFAULT_CAPACITY);
    Queue::<Vec<u8>>::unlink_named(&name).unwrap();
}
