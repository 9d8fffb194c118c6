//! Recovery is every caller's job (issue #12, finding 1): a participant that dies holding a
//! slot claim is recovered by whoever is stuck behind it — here callers that never block
//! (`get_nowait`, `put_nowait`, `qsize`) while another live holder keeps the queue
//! connected, so the "last handle" path that recovers on its way to `Disconnected` never
//! runs.
//!
//! The death lands exactly between the claim and the rest of the operation through the
//! crate's test-only crash points (`mproc::fault`, feature `test-hooks`).

mod common;

use std::time::{Duration, Instant};

use common::{LONG, join, kill_and_reap};
use mproc::queue::{TryGetError, TryPutError};
use mproc::{Process, Queue};

/// How long a poller may take to get past a dead claim: far above the recovery interval
/// (tens of milliseconds), far below "for ever".
const POLL_BOUND: Duration = Duration::from_secs(5);

/// Keeps the queue connected (a live holder that never acts) until killed.
fn idle_holder((q,): (Queue<u32>,)) {
    let _keep = q;
    std::thread::sleep(LONG);
}

/// Dies right after claiming a slot for `item`.
fn dies_mid_put((q, item): (Queue<u32>, u32)) {
    mproc::fault::die_after_next_put_claim();
    let _ = q.put(item);
    unreachable!("the put claim kills this process");
}

/// Dies right after claiming the next item's slot.
fn dies_mid_get((q,): (Queue<u32>,)) {
    mproc::fault::die_after_next_get_claim();
    let _ = q.get();
    unreachable!("the get claim kills this process");
}

fn start<A: mproc::Args>(f: fn(A), args: A) -> Process {
    let mut p = Process::new(f, args);
    p.start().unwrap();
    p
}

fn assert_killed(p: &Process) {
    let status = join(p);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

/// A queue of 8 kept connected by an idle holder (returned, to be killed), whose head slot
/// a producer claimed before it was killed.
fn behind_a_dead_producer() -> (Queue<u32>, Process) {
    let q: Queue<u32> = Queue::with_capacity(8).unwrap();
    let idle = start(idle_holder, (q.clone(),));
    let dead = start(dies_mid_put, (q.clone(), 0));
    assert_killed(&dead);
    (q, idle)
}

#[test]
fn a_get_nowait_poller_recovers_a_dead_producers_claim() {
    let (q, idle) = behind_a_dead_producer();
    // Four items are committed behind the dead producer's claim.
    for i in 1..=4 {
        q.put_nowait(i).unwrap();
    }
    assert_eq!(q.lost(), 0);
    // A pure poller: never blocks, never sleeps a check slice.
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < 4 && t.elapsed() < POLL_BOUND {
        match q.get_nowait() {
            Ok(v) => got.push(v),
            Err(TryGetError::Empty) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        got,
        [1, 2, 3, 4],
        "the poller was stuck behind the dead claim"
    );
    assert_eq!(q.lost(), 1, "the dead producer's item is counted once");
    assert_eq!(q.qsize(), 0);
    kill_and_reap(&idle);
}

#[test]
fn qsize_polling_recovers_a_dead_producers_claim() {
    let (q, idle) = behind_a_dead_producer();
    q.put_nowait(1).unwrap();
    // The dead claim counts until it is recovered and skipped (see `Queue::qsize`).
    let t = Instant::now();
    while q.lost() == 0 && t.elapsed() < POLL_BOUND {
        let _ = q.qsize();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(q.lost(), 1, "qsize never recovered the dead claim");
    assert_eq!(q.get_nowait(), Ok(1));
    assert_eq!(q.qsize(), 0);
    kill_and_reap(&idle);
}

#[test]
fn a_put_nowait_poller_recovers_a_dead_consumers_claim() {
    // Two slots, both full; a consumer dies holding the first.
    let q: Queue<u32> = Queue::with_capacity(2).unwrap();
    assert_eq!(q.capacity(), 2);
    let idle = start(idle_holder, (q.clone(),));
    q.put_nowait(10).unwrap();
    q.put_nowait(11).unwrap();
    let dead = start(dies_mid_get, (q.clone(),));
    assert_killed(&dead);
    // The consumer's slot is the tail's next one: the ring looks full only because of it.
    let t = Instant::now();
    let mut item = 12;
    loop {
        match q.put_nowait(item) {
            Ok(()) => break,
            Err(TryPutError::Full(v)) => item = v,
            Err(e) => panic!("{e}"),
        }
        assert!(
            t.elapsed() < POLL_BOUND,
            "the put poller was stuck on the dead reader's slot"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(q.lost(), 1, "the dead consumer's item is counted once");
    assert_eq!(q.get_nowait(), Ok(11));
    assert_eq!(q.get_nowait(), Ok(12));
    kill_and_reap(&idle);
}

/// Stops right after claiming a slot for `item`, then finishes the put when continued.
fn stops_mid_put((q, item): (Queue<u32>, u32)) {
    mproc::fault::stop_after_next_put_claim();
    q.put(item).unwrap();
}

fn send(p: &Process, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(p.pid().expect("started")).unwrap();
    // SAFETY: sending a signal to our own child has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn a_live_claimants_slot_is_never_recovered() {
    let q: Queue<u32> = Queue::with_capacity(8).unwrap();
    let slow = start(stops_mid_put, (q.clone(), 0));
    // Wait (bounded) until the child has stopped inside its claim (state `T`).
    let stat = format!("/proc/{}/stat", slow.pid().unwrap());
    let t = Instant::now();
    while !std::fs::read_to_string(&stat)
        .unwrap()
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('T'))
    {
        assert!(t.elapsed() < LONG, "the child never stopped in its claim");
        std::thread::sleep(Duration::from_millis(1));
    }
    q.put_nowait(1).unwrap();
    // Poll well past the recovery interval: the claimant lives, so nothing is recovered
    // and the item behind its claim waits.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(200) {
        assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(q.lost(), 0, "a live claimant's slot was recovered");
    send(&slow, libc::SIGCONT);
    assert_eq!(q.get_timeout(LONG), Ok(0));
    assert_eq!(q.get_timeout(LONG), Ok(1));
    assert!(join(&slow).success());
    assert_eq!(q.lost(), 0);
}

/// An `arena_size` whose arena is one 32 KiB block: room for exactly one 20 KiB message.
const ONE_BLOCK: u64 = 32 * 1024 - 16;

/// Holds a `get_ref` guard on the next item until killed.
fn holds_a_ref((q, held): (Queue<Vec<u8>>, mproc::Event)) {
    let guard = q.get_ref().expect("an item");
    held.set();
    std::thread::sleep(LONG);
    drop(guard);
}

/// #12 finding 3: a consumer killed while holding a `get_ref` guard. Its arena block is
/// freed by the next recovery and the item counted in `lost()`; before, the block leaked for
/// good (an arena with room for one message stayed full) and nothing was counted.
#[test]
fn a_dead_get_ref_guard_frees_its_block_and_is_counted() {
    const BIG: usize = 20 * 1024;
    // One 20 KiB message needs a 32 KiB block: an arena for 32 KiB − 16 holds exactly one.
    let q: Queue<Vec<u8>> = Queue::builder().arena_size(ONE_BLOCK).create().unwrap();
    q.put(vec![1; BIG]).unwrap();
    let held = mproc::Event::new().unwrap();
    let p = start(holds_a_ref, (q.clone(), held.clone()));
    assert!(held.wait_timeout(LONG));
    // The arena is full while the guard lives (its slots are not).
    assert!(matches!(
        q.put_nowait(vec![2; BIG]),
        Err(TryPutError::ArenaFull(_))
    ));
    p.kill().unwrap();
    assert_killed(&p);
    assert_eq!(q.lost(), 0, "nothing is counted before a recovery pass");
    // A put waiting for arena room recovers the dead guard's block within a slice.
    let t0 = Instant::now();
    q.put_timeout(vec![3; BIG], LONG)
        .expect("the dead guard's block was freed");
    assert!(t0.elapsed() < LONG);
    assert_eq!(
        q.lost(),
        1,
        "the item that died with its guard is counted once"
    );
    assert_eq!(q.get().unwrap(), vec![3; BIG]);
}

/// Puts a 20 KiB message after arming `fault` (0: die after the slot claim, 1: die after
/// handing the arena block to the slot); never returns.
fn dies_putting_big((q, fault): (Queue<Vec<u8>>, u32)) {
    match fault {
        0 => mproc::fault::die_after_next_put_claim(),
        _ => mproc::fault::die_after_next_arena_handoff(),
    }
    let _ = q.put(vec![9; 20 * 1024]);
    unreachable!("the fault point kills this process");
}

/// Blocks in `put` of a 20 KiB message on a full ring (its arena block staged) until killed.
fn blocks_putting_big((q, ready): (Queue<Vec<u8>>, mproc::Event)) {
    ready.set();
    let _ = q.put(vec![8; 20 * 1024]);
}

/// #12 finding 3, the producer side: a producer killed mid-`put` of an out-of-line message —
/// after its slot claim, after handing the block to the slot, or while blocked with the
/// block staged — leaks no arena block (before: the arena stayed full for good).
#[test]
fn a_producer_killed_mid_put_leaks_no_arena_block() {
    const BIG: usize = 20 * 1024;
    for fault in 0..2 {
        // A 64 KiB arena holds exactly one 20 KiB message (a 32 KiB block).
        let q: Queue<Vec<u8>> = Queue::builder().arena_size(ONE_BLOCK).create().unwrap();
        let p = start(dies_putting_big, (q.clone(), fault));
        assert_killed(&p);
        let t0 = Instant::now();
        q.put_timeout(vec![3; BIG], LONG)
            .unwrap_or_else(|_| panic!("fault {fault}: the dead producer's block was not freed"));
        assert!(t0.elapsed() < LONG);
        assert_eq!(
            q.lost(),
            1,
            "fault {fault}: its claim counts as one lost write"
        );
        assert_eq!(q.get().unwrap(), vec![3; BIG]);
    }
    // Blocked on a full ring with the block staged.
    let q: Queue<Vec<u8>> = Queue::builder()
        .capacity(1)
        .arena_size(ONE_BLOCK)
        .create()
        .unwrap();
    q.put(vec![1]).unwrap();
    let ready = mproc::Event::new().unwrap();
    let p = start(blocks_putting_big, (q.clone(), ready.clone()));
    assert!(ready.wait_timeout(LONG));
    std::thread::sleep(Duration::from_millis(100)); // well inside the blocked put
    p.kill().unwrap();
    assert_killed(&p);
    assert_eq!(q.get().unwrap(), vec![1]);
    q.put_timeout(vec![4; BIG], LONG)
        .expect("the blocked producer's staged block was freed");
    assert_eq!(q.lost(), 0, "nothing was in the queue");
    assert_eq!(q.get().unwrap(), vec![4; BIG]);
    assert_eq!(q.arena_stats().unwrap().in_use_blocks, 0, "nothing leaked");
}

/// Dies right after claiming the next item's slot (a 20 KiB, out-of-line item).
fn dies_getting_big((q,): (Queue<Vec<u8>>,)) {
    mproc::fault::die_after_next_get_claim();
    let _ = q.get();
    unreachable!("the get claim kills this process");
}

/// A consumer killed holding the slot of an out-of-line item: the item is counted lost and its
/// arena block freed by the recovery that frees the slot (before: leaked for good).
#[test]
fn a_consumer_killed_mid_get_frees_the_items_arena_block() {
    const BIG: usize = 20 * 1024;
    let q: Queue<Vec<u8>> = Queue::builder().arena_size(ONE_BLOCK).create().unwrap();
    q.put(vec![1; BIG]).unwrap();
    let p = start(dies_getting_big, (q.clone(),));
    assert_killed(&p);
    q.put_timeout(vec![2; BIG], LONG)
        .expect("the dead consumer's block was freed");
    assert_eq!(q.lost(), 1);
    assert_eq!(q.get().unwrap(), vec![2; BIG]);
    assert_eq!(q.arena_stats().unwrap().in_use_blocks, 0, "nothing leaked");
}

/// The documented maximum message size of an arena holds exactly: `arena_size(n)` takes any
/// message up to `n` bytes, and `arena_stats().max_message` is what `TooLarge` reports.
#[test]
fn arena_size_holds_the_documented_maximum() {
    for n in [1000usize, 20_000, 70_000, 300_000] {
        let q: Queue<Vec<u8>> = Queue::builder().arena_size(n as u64).create().unwrap();
        let stats = q.arena_stats().unwrap();
        assert!(stats.max_message >= n, "{n}: max {}", stats.max_message);
        // An encoded Vec<u8> of n bytes is n plus a few bytes of rkyv framing.
        q.put_timeout(vec![7; n - 16], LONG).unwrap();
        assert_eq!(q.get().unwrap().len(), n - 16);
        match q.put_nowait(vec![0; stats.max_message + 1]) {
            Err(TryPutError::Message(_, mproc::MessageError::TooLarge { max, .. })) => {
                assert_eq!(max, stats.max_message)
            }
            other => panic!(
                "{n}: expected TooLarge, got {:?}",
                other.map_err(|e| e.to_string())
            ),
        }
    }
}
