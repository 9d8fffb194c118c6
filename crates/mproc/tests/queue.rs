//! Queue: Python parity, threads, processes (fork and spawn), Disconnected, crashes, named
//! queues, and the seed's producer/consumer example. Every wait is bounded.

mod common;

use common::{LONG, join_ok};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mproc::queue::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use mproc::{OpenError, Process, Queue, StartMethod};

#[path = "../examples/producer_consumer.rs"]
#[allow(dead_code, unreachable_pub)]
mod producer_consumer;

/// Upper bound on any single blocking call in these tests.
const N: u64 = if cfg!(debug_assertions) {
    2_000
} else {
    20_000
};

// ---------------------------------------------------------------------------------------
// Python parity (single process).

#[test]
fn qsize_empty_full_after_puts() {
    let q: Queue<u32> = Queue::with_capacity(4).unwrap();
    let _peer = q.clone();
    assert_eq!(q.capacity(), 4);
    assert!(q.empty());
    assert!(!q.full());
    for i in 0..4 {
        assert_eq!(q.qsize(), i as usize);
        q.put(i).unwrap();
    }
    assert_eq!(q.qsize(), 4);
    assert!(q.full());
    assert!(!q.empty());
    // put_nowait on a full queue: queue.Full, and the item comes back.
    match q.put_nowait(99) {
        Err(TryPutError::Full(v)) => assert_eq!(v, 99),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.get().unwrap(), 0);
    assert_eq!(q.qsize(), 3);
    q.put_nowait(4).unwrap();
    for i in 1..5 {
        assert_eq!(q.get_nowait().unwrap(), i);
    }
    assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
}

/// Issue #13, finding 4: Python's `maxsize` is exact; `with_capacity(6)` used to hold 8.
#[test]
fn capacity_is_exact() {
    let q: Queue<u32> = Queue::with_capacity(6).unwrap();
    let _peer = q.clone();
    assert_eq!(q.capacity(), 6);
    for i in 0..6 {
        assert!(!q.full(), "{i} in");
        q.put_nowait(i).unwrap();
    }
    match q.put_nowait(6) {
        Err(TryPutError::Full(v)) => assert_eq!(v, 6),
        other => panic!("the seventh put: {other:?}"),
    }
    assert_eq!(q.qsize(), 6);
    assert!(q.full());
    // Several laps of the ring's non-power-of-two stepping, qsize exact throughout.
    for i in 6..40 {
        assert_eq!(q.get_nowait().unwrap(), i - 6);
        assert_eq!(q.qsize(), 5);
        q.put_nowait(i).unwrap();
        assert!(q.full());
    }
    let q: Queue<u8> = Queue::builder().capacity(5).create().unwrap();
    assert_eq!(q.capacity(), 5);
    let q: Queue<u8> = Queue::with_capacity(0).unwrap();
    assert_eq!(q.capacity(), 1);
}

#[test]
fn get_timeout_returns_no_sooner_than_its_timeout() {
    let q: Queue<u32> = Queue::new().unwrap();
    let _peer = q.clone(); // someone could still put: a real wait, not Disconnected
    for ms in [0u64, 30, 120] {
        let t = Instant::now();
        assert_eq!(
            q.get_timeout(Duration::from_millis(ms)),
            Err(GetTimeoutError::Timeout)
        );
        assert!(
            t.elapsed() >= Duration::from_millis(ms),
            "{ms} ms: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn put_timeout_on_a_full_queue_times_out_and_returns_the_item() {
    let q: Queue<String> = Queue::with_capacity(1).unwrap();
    let _peer = q.clone();
    q.put("a".into()).unwrap();
    let t = Instant::now();
    match q.put_timeout("b".into(), Duration::from_millis(60)) {
        Err(PutTimeoutError::Timeout(s)) => assert_eq!(s, "b"),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(60));
}

#[test]
fn close_stops_this_handle_only() {
    let q: Queue<u32> = Queue::new().unwrap();
    let other = q.clone();
    assert_eq!(q.holders(), 2);
    q.put(1).unwrap();
    q.close();
    assert!(q.is_closed());
    assert_eq!(q.holders(), 1);
    assert!(matches!(q.put(2), Err(PutError::Closed(2))));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(other.get().unwrap(), 1);
    // `other` is now the only handle: an empty get is Disconnected, not a hang.
    assert_eq!(other.get(), Err(GetError::Disconnected));
}

#[test]
fn fifo_and_strings_and_structs() {
    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
    struct Job {
        id: u32,
        name: String,
        tags: Vec<String>,
    }
    let q: Queue<Job> = Queue::new().unwrap();
    for id in 0..50 {
        q.put(Job {
            id,
            name: format!("job {id}"),
            tags: vec!["x".into(); id as usize % 3],
        })
        .unwrap();
    }
    for id in 0..50 {
        let j = q.get().unwrap();
        assert_eq!(j.id, id);
        assert_eq!(j.name, format!("job {id}"));
        assert_eq!(j.tags.len(), id as usize % 3);
    }
}

// ---------------------------------------------------------------------------------------
// Large messages and zero copy.

#[test]
fn large_messages_go_through_the_arena() {
    let q: Queue<Vec<u8>> = Queue::builder()
        .capacity(8)
        .arena_size(1 << 20)
        .create()
        .unwrap();
    let consumer = q.clone();
    let t = std::thread::spawn(move || {
        for i in 0..200u32 {
            let len = [0usize, 10, 126, 127, 128, 1000, 40_000][i as usize % 7];
            let v = consumer.get_timeout(LONG).unwrap();
            assert_eq!(v.len(), len, "message {i}");
            assert!(v.iter().all(|&b| b == i as u8), "message {i} corrupted");
        }
    });
    for i in 0..200u32 {
        let len = [0usize, 10, 126, 127, 128, 1000, 40_000][i as usize % 7];
        q.put_timeout(vec![i as u8; len], LONG).unwrap();
    }
    t.join().unwrap();
    // Every arena block was freed: the queue can again hold a nearly arena-sized burst.
    assert_eq!(q.qsize(), 0);
}

#[test]
fn message_larger_than_the_arena_is_refused_with_the_item() {
    let q: Queue<Vec<u8>> = Queue::builder().arena_size(64 * 1024).create().unwrap();
    match q.put(vec![1u8; 1 << 20]) {
        Err(PutError::Message(v, e)) => {
            assert_eq!(v.len(), 1 << 20);
            assert!(e.to_string().contains("larger"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_ref_lends_the_archive_in_place() {
    let q: Queue<Vec<u32>> = Queue::new().unwrap();
    let _peer = q.clone();
    q.put((0..10_000).collect()).unwrap(); // out of line
    q.put(vec![7, 8]).unwrap(); // inline
    {
        let r = q.get_ref().unwrap();
        assert!(r.is_in_place());
        assert_eq!(r.len(), 10_000);
        assert_eq!(r[9_999], 9_999);
        assert_eq!(r.deserialize().unwrap().len(), 10_000);
    }
    let r = q.get_ref_nowait().unwrap();
    assert!(!r.is_in_place());
    assert_eq!(r.as_slice(), &[7, 8]);
    drop(r);
    assert!(matches!(q.get_ref_nowait(), Err(TryGetError::Empty)));
}

// ---------------------------------------------------------------------------------------
// Threads.

#[test]
fn many_producers_and_consumers_threads_exactly_once() {
    let q: Queue<u64> = Queue::with_capacity(16).unwrap();
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..N {
                    q.put_timeout(p * N + i, LONG).unwrap();
                }
            })
        })
        .collect();
    // Consumers use the untimed `get()`: once the producers are gone, each of them sees
    // every other handle blocked in `get()` too, so all are told Disconnected. A watchdog
    // channel bounds the wait.
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..3 {
        let q = q.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                match q.get() {
                    Ok(v) => got.push(v),
                    Err(GetError::Disconnected) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            tx.send(got).unwrap();
        });
    }
    drop(q);
    for p in producers {
        p.join().unwrap();
    }
    let mut all = Vec::new();
    for _ in 0..3 {
        all.extend(rx.recv_timeout(LONG).expect("a consumer never finished"));
    }
    all.sort_unstable();
    assert_eq!(all, (0..3 * N).collect::<Vec<_>>());
}

#[test]
fn blocked_get_is_disconnected_when_the_last_other_handle_drops() {
    let q: Queue<u32> = Queue::new().unwrap();
    let producer = q.clone();
    let t = std::thread::spawn(move || q.get_timeout(LONG));
    std::thread::sleep(Duration::from_millis(50));
    producer.put(1).unwrap();
    drop(producer);
    let q2 = t.join().unwrap();
    assert_eq!(q2, Ok(1));
}

#[test]
fn blocked_get_wakes_with_disconnected_on_drop() {
    let q: Queue<u32> = Queue::new().unwrap();
    let other = q.clone();
    let t = std::thread::spawn(move || {
        let r1 = q.get_timeout(LONG);
        let r2 = q.get_timeout(LONG);
        (r1, r2)
    });
    std::thread::sleep(Duration::from_millis(50));
    other.put(5).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    drop(other);
    let (r1, r2) = t.join().unwrap();
    assert_eq!(r1, Ok(5));
    assert_eq!(r2, Err(GetTimeoutError::Disconnected));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn blocked_put_on_full_queue_is_disconnected_when_no_getter_is_left() {
    let q: Queue<u32> = Queue::with_capacity(1).unwrap();
    let other = q.clone();
    q.put(1).unwrap();
    let t = std::thread::spawn(move || q.put_timeout(2, LONG));
    std::thread::sleep(Duration::from_millis(50));
    drop(other);
    match t.join().unwrap() {
        Err(PutTimeoutError::Disconnected(2)) => {}
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Processes (fork, the default start method).

fn producer_child((q, from, n): (Queue<u64>, u64, u64)) {
    for i in from..from + n {
        q.put(i).unwrap();
    }
}

fn collector_child((q, out): (Queue<u64>, Queue<u64>)) {
    loop {
        match q.get() {
            Ok(v) => out.put(v).unwrap(),
            Err(GetError::Disconnected) => return,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn fifo_from_one_producer_process() {
    let q: Queue<u64> = Queue::with_capacity(8).unwrap();
    let mut p = Process::new(producer_child, (q.clone(), 0u64, N));
    p.start().unwrap();
    for i in 0..N {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    join_ok(&p);
    // The producer's process ended and it held the only other handle.
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Disconnected));
}

#[test]
fn many_producer_and_consumer_processes_exactly_once() {
    let q: Queue<u64> = Queue::with_capacity(16).unwrap();
    let out: Queue<u64> = Queue::with_capacity(64).unwrap();
    let mut ps = Vec::new();
    for k in 0..2u64 {
        let mut p = Process::new(producer_child, (q.clone(), k * N, N));
        p.start().unwrap();
        ps.push(p);
    }
    for _ in 0..2 {
        let mut c = Process::new(collector_child, (q.clone(), out.clone()));
        c.start().unwrap();
        ps.push(c);
    }
    drop(q); // the parent holds no input handle: collectors end when producers are done
    let mut seen = HashSet::new();
    loop {
        match out.get_timeout(LONG) {
            Ok(v) => assert!(seen.insert(v), "duplicate {v}"),
            Err(GetTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    for p in &ps {
        join_ok(p);
    }
    assert_eq!(seen.len() as u64, 2 * N);
    assert!((0..2 * N).all(|v| seen.contains(&v)));
}

fn holder_sleeps((q, _ready): (Queue<u32>, u32)) {
    let _keep = q;
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn get_is_disconnected_when_the_other_holder_process_dies() {
    let q: Queue<u32> = Queue::new().unwrap();
    let mut p = Process::new(holder_sleeps, (q.clone(), 0u32));
    p.start().unwrap();
    assert_eq!(q.holders(), 2);
    assert_eq!(
        q.get_timeout(Duration::from_millis(100)),
        Err(GetTimeoutError::Timeout)
    );
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            p.kill().unwrap();
        });
        assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Disconnected));
    });
    assert!(t.elapsed() < Duration::from_secs(5));
    let st = p.join_timeout(LONG).unwrap().unwrap();
    assert!(!st.success());
}

#[test]
fn zero_timeout_get_and_put_see_a_sigkilled_peer() {
    // A call whose deadline has already passed never sleeps; it must still ask the kernel
    // whether the other holder lives, or a polling loop would never see it die.
    let q: Queue<u32> = Queue::with_capacity(1).unwrap();
    let mut p = Process::new(holder_sleeps, (q.clone(), 0u32));
    p.start().unwrap();
    assert_eq!(q.get_timeout(Duration::ZERO), Err(GetTimeoutError::Timeout));
    p.kill().unwrap();
    let st = p.join_timeout(LONG).unwrap().unwrap();
    assert!(!st.success());
    assert_eq!(
        q.get_timeout(Duration::ZERO),
        Err(GetTimeoutError::Disconnected)
    );
    q.put(1).unwrap();
    assert!(matches!(
        q.put_timeout(2, Duration::ZERO),
        Err(PutTimeoutError::Disconnected(2))
    ));
}

fn idle_child((): ()) {
    std::thread::sleep(Duration::from_secs(2));
}

#[test]
fn inherited_but_not_passed_handles_do_not_count() {
    let q: Queue<u32> = Queue::new().unwrap();
    // The child inherits a copy of `q` through fork but was not passed it.
    let mut idle = Process::new(idle_child, ());
    idle.start().unwrap();
    let t = Instant::now();
    assert_eq!(q.holders(), 1);
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Disconnected));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the idle child kept the queue alive"
    );
    idle.kill().unwrap();
    let _ = idle.join_timeout(LONG).unwrap();
}

// ---------------------------------------------------------------------------------------
// Crashes.

fn endless_producer((q,): (Queue<u64>,)) {
    let mut i = 0u64;
    loop {
        q.put(i).unwrap();
        i += 1;
    }
}

#[test]
fn producer_sigkilled_mid_stream_never_stalls_the_consumer() {
    let q: Queue<u64> = Queue::with_capacity(4).unwrap();
    let mut p = Process::new(endless_producer, (q.clone(),));
    p.start().unwrap();
    let mut next = 0u64;
    // Take some, then kill the producer while it is blocked or mid-put.
    for _ in 0..500 {
        assert_eq!(q.get_timeout(LONG).unwrap(), next);
        next += 1;
    }
    p.kill().unwrap();
    let t = Instant::now();
    loop {
        match q.get_timeout(LONG) {
            Ok(v) => {
                // FIFO, nothing duplicated; at most the one in-flight item missing, at the end.
                assert_eq!(v, next, "out of order or duplicated");
                next += 1;
            }
            Err(GetTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(q.lost() <= 1, "lost {}", q.lost());
    let _ = p.join_timeout(LONG).unwrap().unwrap();
    // The queue still works for the survivor.
    let q2 = q.clone();
    q2.put(7).unwrap();
    assert_eq!(q.get().unwrap(), 7);
}

fn reporting_consumer((q, out): (Queue<Vec<u64>>, Queue<u64>)) {
    loop {
        let v = q.get().unwrap();
        out.put(v[0]).unwrap();
    }
}

#[test]
fn consumer_sigkilled_mid_get_loses_at_most_its_item() {
    const M: u64 = 3_000;
    let q: Queue<Vec<u64>> = Queue::with_capacity(8).unwrap();
    let out: Queue<u64> = Queue::with_capacity(4096).unwrap();
    let mut c = Process::new(reporting_consumer, (q.clone(), out.clone()));
    c.start().unwrap();
    // Half the messages are out of line, so the consumer dies holding slots and blocks.
    let feeder = {
        let q = q.clone();
        std::thread::spawn(move || {
            for i in 0..M {
                let len = if i % 2 == 0 { 1 } else { 500 };
                q.put_timeout(vec![i; len], LONG).unwrap();
            }
        })
    };
    // Let the child consume some, then kill it mid-stream.
    let mut reported = HashSet::new();
    while reported.len() < 300 {
        assert!(reported.insert(out.get_timeout(LONG).unwrap()));
    }
    c.kill().unwrap();
    let _ = c.join_timeout(LONG).unwrap().unwrap();
    // The survivor drains the rest: no stall, nothing duplicated.
    let mut mine = HashSet::new();
    let deadline = Instant::now() + LONG;
    loop {
        match q.get_timeout(Duration::from_millis(300)) {
            Ok(v) => assert!(mine.insert(v[0]), "duplicate {}", v[0]),
            // The feeder finished and dropped its handle, the consumer is dead: ours is the
            // last handle.
            Err(GetTimeoutError::Disconnected) => break,
            Err(GetTimeoutError::Timeout) if feeder.is_finished() => break,
            Err(GetTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "stalled");
    }
    feeder.join().unwrap();
    while let Ok(v) = out.get_nowait() {
        assert!(reported.insert(v));
    }
    assert!(reported.is_disjoint(&mine), "an item was delivered twice");
    let total = reported.len() as u64 + mine.len() as u64;
    // Missing: items the child took but had not reported when it died (at most one taken
    // and one being reported), plus items lost mid-get (counted).
    assert!(
        total + 2 + q.lost() >= M,
        "total {total}, lost {}",
        q.lost()
    );
    assert!(total <= M);
}

// ---------------------------------------------------------------------------------------
// Named queues.

#[test]
fn named_queue_open_checks_the_type() {
    let name = format!("mproc-queue-test-{}", std::process::id());
    let q: Queue<u64> = Queue::builder().capacity(8).create_named(&name).unwrap();
    match Queue::<String>::open_named(&name) {
        Err(OpenError::WrongType { expected, .. }) => assert!(expected.contains("String")),
        other => panic!("{other:?}"),
    }
    let q2: Queue<u64> = Queue::open_named(&name).unwrap();
    assert_eq!(q2.capacity(), 8);
    q.put(42).unwrap();
    assert_eq!(q2.get().unwrap(), 42);
    q.unlink().unwrap();
    assert!(Queue::<u64>::open_named(&name).is_err());
    assert!(Queue::<u64>::unlink_named(&name).is_err());
}

// ---------------------------------------------------------------------------------------
// Spawn: handles passed to a re-executed child.

fn spawned_producer((q, n): (Queue<u64>, u64)) {
    for i in 0..n {
        q.put(i).unwrap();
    }
}
mproc::entry!(spawned_producer);

#[test]
fn handle_passed_to_a_spawned_child() {
    let q: Queue<u64> = Queue::with_capacity(8).unwrap();
    let mut p =
        Process::new(spawned_producer, (q.clone(), 100u64)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    for i in 0..100 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    join_ok(&p);
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Disconnected));
}

// ---------------------------------------------------------------------------------------
// The seed's example, run in a child copy of this test binary so its output can be read.

#[test]
fn example_producer_consumer_child() {
    if std::env::var_os("MPROC_RUN_PRODUCER_CONSUMER").is_some() {
        producer_consumer::run().unwrap();
    }
}

#[test]
fn example_producer_consumer_output() {
    let mut child = mproc_testkit::self_command(
        "MPROC_RUN_PRODUCER_CONSUMER",
        "example_producer_consumer_child",
        "1",
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Bounded: an example that hangs (Python's would) is killed and fails the test.
    let status = mproc_testkit::wait_spawned(child, LONG);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    assert!(status.success(), "{out}");
    // The harness may print "test ... " before the first line: keep each line's tail from
    // "producer "/"consumer " on.
    let lines: Vec<&str> = out
        .lines()
        .filter_map(|l| {
            ["producer ", "consumer "]
                .iter()
                .filter_map(|k| l.find(k))
                .min()
                .map(|i| &l[i..])
        })
        .collect();
    // Every kept line starts with one of the two.
    let (produced, consumed): (Vec<&str>, Vec<&str>) =
        lines.iter().partition(|l| l.starts_with("producer"));
    let want_p: Vec<String> = (0..5).map(|i| format!("producer put {i}")).collect();
    let mut want_c: Vec<String> = (0..5).map(|i| format!("consumer got {i}")).collect();
    want_c.push("consumer stopped: no producer left".into());
    assert_eq!(produced, want_p, "{out}");
    assert_eq!(consumed, want_c, "{out}");
}
