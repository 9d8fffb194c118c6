//! `mproc::SimpleQueue` across real processes: Python's `TestSimpleQueue` (`test_empty`,
//! `test_close`), `put` blocking on a full queue, and passing to a spawned child. Every wait is
//! bounded.

mod common;

use common::{LONG, join_ok};

use std::time::Duration;

use mproc::queue::{GetError, GetTimeoutError, PutError};
use mproc::{Process, Queue, SimpleQueue, StartMethod};

/// Python's `test_empty`: the child reports `empty()` twice while the parent waits; the
/// first report sees an empty queue, the second sees the first item.
#[test]
fn empty_seen_from_two_processes() {
    let q: SimpleQueue<bool> = SimpleQueue::new().unwrap();
    // Python uses two Events; a pair of queues plays that part here.
    let child_can_start: Queue<u8> = Queue::new().unwrap();
    let parent_can_continue: Queue<u8> = Queue::new().unwrap();
    let mut p = Process::new(
        |(q, start, cont): (SimpleQueue<bool>, Queue<u8>, Queue<u8>)| {
            start.get_timeout(LONG).unwrap();
            q.put(q.empty()).unwrap();
            q.put(q.empty()).unwrap();
            cont.put(1).unwrap();
        },
        (
            q.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    );
    p.start().unwrap();
    assert!(q.empty());
    child_can_start.put(1).unwrap();
    parent_can_continue.get_timeout(LONG).unwrap();
    assert!(!q.empty());
    assert!(q.get().unwrap());
    assert!(!q.get().unwrap());
    assert!(q.empty());
    join_ok(&p);
}

/// Python's `test_close`, plus what Python raises `OSError('handle is closed')` for.
#[test]
fn close_twice_then_every_operation_is_closed() {
    let q: SimpleQueue<u32> = SimpleQueue::new().unwrap();
    let other = q.clone();
    q.put(7).unwrap();
    q.close();
    q.close(); // closing twice is fine
    assert!(q.is_closed());
    assert!(matches!(q.put(1), Err(PutError::Closed(1))));
    assert_eq!(q.get(), Err(GetError::Closed));
    // Other handles are not affected (close is per handle, as Python's is per process).
    assert_eq!(other.get().unwrap(), 7);
}

#[test]
fn get_on_an_empty_queue_nobody_else_holds_is_disconnected() {
    let q: SimpleQueue<String> = SimpleQueue::new().unwrap();
    q.put("last".to_string()).unwrap();
    assert_eq!(q.get().unwrap(), "last");
    // Python would block for ever here.
    assert_eq!(q.get(), Err(GetError::Disconnected));
}

#[test]
fn default_capacity_is_large_and_put_blocks_when_full() {
    let big: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    for i in 0..1000 {
        big.put(i).unwrap(); // far more than a small pipe-like bound, without blocking
    }
    assert_eq!(big.into_queue().qsize(), 1000);

    let q: SimpleQueue<u64> = SimpleQueue::with_capacity(2).unwrap();
    let taken: Queue<u64> = Queue::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let mut p = Process::new(
        |(q, taken): (SimpleQueue<u64>, Queue<u64>)| {
            std::thread::sleep(Duration::from_millis(100));
            taken.put(q.get_timeout(LONG).unwrap()).unwrap();
        },
        (q.clone(), taken.clone()),
    );
    p.start().unwrap();
    // Full: this put blocks until the child takes item 1.
    q.put(3).unwrap();
    assert_eq!(taken.get_timeout(LONG).unwrap(), 1);
    join_ok(&p);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
}

fn spawned_putter((q, n): (SimpleQueue<String>, u32)) {
    for i in 0..n {
        q.put(format!("item {i}")).unwrap();
    }
}
mproc::entry!(spawned_putter);

#[test]
fn passes_to_a_spawned_child() {
    let q: SimpleQueue<String> = SimpleQueue::new().unwrap();
    let mut p = Process::new(spawned_putter, (q.clone(), 3u32)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    for i in 0..3 {
        assert_eq!(q.get_timeout(LONG).unwrap(), format!("item {i}"));
    }
    join_ok(&p);
    // The child's handle is gone with it: nobody else can put.
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Disconnected));
}

#[test]
fn named_simple_queue_opens_by_name_with_its_type_checked() {
    let name = format!("mproc-test-sq-{}", std::process::id());
    let q: SimpleQueue<u64> = SimpleQueue::create_named(&name).unwrap();
    let opened: SimpleQueue<u64> = SimpleQueue::open_named(&name).unwrap();
    opened.put(42).unwrap();
    assert_eq!(q.get().unwrap(), 42);
    let wrong = SimpleQueue::<String>::open_named(&name).unwrap_err();
    assert!(
        matches!(wrong, mproc::OpenError::WrongType { .. }),
        "{wrong}"
    );
    SimpleQueue::<u64>::unlink_named(&name).unwrap();
}
