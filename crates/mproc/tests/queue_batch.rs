//! Batch operations on `Queue`: FIFO order, counts, `max`, and exact `Disconnected`.

use mproc::queue::{BatchPutError, GetError, PutError, Queue, TryPutError};

#[test]
fn put_many_then_get_many_is_fifo() {
    let q: Queue<u64> = Queue::with_capacity(64).unwrap();
    let other = q.clone();
    assert_eq!(q.put_many(0..50).unwrap(), 50);
    assert_eq!(q.qsize(), 50);
    let mut out = Vec::new();
    assert_eq!(other.get_many(&mut out, 20).unwrap(), 20);
    assert_eq!(other.get_many(&mut out, 100).unwrap(), 30);
    assert_eq!(out, (0..50).collect::<Vec<_>>());
    assert_eq!(other.get_many(&mut out, 0).unwrap(), 0);
    assert!(q.empty());
}

#[test]
fn get_many_appends_and_mixes_with_single_ops() {
    let q: Queue<String> = Queue::with_capacity(8).unwrap();
    let _other = q.clone();
    q.put("a".into()).unwrap();
    q.put_many(["b".to_string(), "c".to_string()]).unwrap();
    let mut out = vec!["x".to_string()];
    assert_eq!(q.get_many(&mut out, 2).unwrap(), 2);
    assert_eq!(q.get().unwrap(), "c");
    assert_eq!(out, ["x", "a", "b"]);
}

#[test]
fn large_messages_go_through_the_arena_in_batches() {
    let q: Queue<Vec<u8>> = Queue::with_capacity(8).unwrap();
    let _other = q.clone();
    let items: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 4000]).collect();
    assert_eq!(q.put_many(items.clone()).unwrap(), 6);
    let mut out = Vec::new();
    assert_eq!(q.get_many(&mut out, 10).unwrap(), 6);
    assert_eq!(out, items);
}

#[test]
fn put_many_nowait_stops_at_full_and_keeps_the_rest() {
    let q: Queue<u64> = Queue::with_capacity(4).unwrap();
    let _other = q.clone();
    let mut it = 0..10u64;
    match q.put_many_nowait(it.by_ref()) {
        Err(BatchPutError {
            done: 4,
            error: TryPutError::Full(4),
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(it.next(), Some(5));
    let mut out = Vec::new();
    assert_eq!(q.get_many(&mut out, 10).unwrap(), 4);
    assert_eq!(out, [0, 1, 2, 3]);
}

#[test]
fn disconnected_is_exact() {
    // The last handle: an empty queue is Disconnected for get_many ...
    let q: Queue<u64> = Queue::with_capacity(4).unwrap();
    let mut out = Vec::new();
    assert_eq!(q.get_many(&mut out, 4), Err(GetError::Disconnected));
    // ... and a full one for put_many, after the items that fit (no other handle can get).
    match q.put_many(0..6) {
        Err(BatchPutError {
            done: 4,
            error: PutError::Disconnected(4),
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
    // Items already in are delivered first, then Disconnected.
    assert_eq!(q.get_many(&mut out, 10).unwrap(), 4);
    assert_eq!(out, [0, 1, 2, 3]);
    assert_eq!(q.get_many(&mut out, 10), Err(GetError::Disconnected));
}

#[test]
fn closed_handle_reports_closed() {
    let q: Queue<u64> = Queue::new().unwrap();
    let _other = q.clone();
    q.close();
    match q.put_many([1, 2]) {
        Err(BatchPutError {
            done: 0,
            error: PutError::Closed(1),
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(q.get_many(&mut Vec::new(), 3), Err(GetError::Closed));
}

#[test]
fn batches_across_threads_lose_nothing() {
    let q: Queue<u64> = Queue::with_capacity(16).unwrap();
    let tx = q.clone();
    let n: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        50_000
    };
    let producer = std::thread::spawn(move || {
        let mut next = 0;
        while next < n {
            let end = (next + 37).min(n);
            assert_eq!(tx.put_many(next..end).unwrap() as u64, end - next);
            next = end;
        }
    });
    let mut out = Vec::new();
    while (out.len() as u64) < n {
        let got = q
            .get_timeout(std::time::Duration::from_secs(20))
            .expect("producer stalled");
        out.push(got);
        q.get_many(&mut out, 64).ok();
    }
    producer.join().unwrap();
    assert_eq!(out, (0..n).collect::<Vec<_>>());
}
