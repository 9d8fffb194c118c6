//! `mproc::JoinableQueue` across real processes: Python's `test_task_done`, `task_done`
//! called too often (`ValueError`), `join` woken by another process, a failed `put` that is not
//! counted, named queues and a spawned worker. Every wait is bounded.

mod common;

use common::{LONG, join_ok};

use std::time::{Duration, Instant};

use mproc::queue::TryPutError;
use mproc::{JoinableQueue, Process, StartMethod, TaskDoneError};

/// Python's `_test_task_done` worker: `for obj in iter(q.get, None): sleep; q.task_done()`.
fn worker((q,): (JoinableQueue<Option<u32>>,)) {
    while let Some(_job) = q.get_timeout(LONG).unwrap() {
        std::thread::sleep(Duration::from_millis(1));
        q.task_done().unwrap();
    }
}
mproc::entry!(worker);

/// Python's `test_task_done`: workers call `task_done` per item; the parent's `join` returns
/// once all ten are done; then a `None` per worker stops them.
#[test]
fn task_done_parity_with_python() {
    let q: JoinableQueue<Option<u32>> = JoinableQueue::new().unwrap();
    let mut workers: Vec<Process> = (0..3).map(|_| Process::new(worker, (q.clone(),))).collect();
    for p in &mut workers {
        p.start().unwrap();
    }
    for i in 0..10 {
        q.put(Some(i)).unwrap();
    }
    assert!(q.join_timeout(LONG), "join did not return");
    assert_eq!(q.unfinished_tasks(), 0);
    for _ in &workers {
        q.put(None).unwrap();
    }
    for p in &workers {
        join_ok(p);
    }
}

#[test]
fn task_done_too_many_times_is_python_value_error() {
    let q: JoinableQueue<u8> = JoinableQueue::new().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError::TooManyTimes));
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert_eq!(err, TaskDoneError::TooManyTimes);
    assert_eq!(err.to_string(), "task_done() called too many times");
    assert_eq!(
        q.unfinished_tasks(),
        0,
        "a refused task_done leaves the count at zero"
    );
    // join with nothing unfinished returns at once.
    q.join();
}

#[test]
fn join_waits_for_a_task_done_in_another_process() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.put(5).unwrap();
    q.put(6).unwrap();
    // Nobody has done anything yet: join times out (no sooner than asked).
    let start = Instant::now();
    assert!(!q.join_timeout(Duration::from_millis(100)));
    assert!(start.elapsed() >= Duration::from_millis(100));
    let mut p = Process::new(
        |(q,): (JoinableQueue<u32>,)| {
            for _ in 0..2 {
                let _ = q.get_timeout(LONG).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                q.task_done().unwrap();
            }
        },
        (q.clone(),),
    );
    p.start().unwrap();
    assert!(q.join_timeout(LONG));
    assert_eq!(q.unfinished_tasks(), 0);
    join_ok(&p);
}

#[test]
fn join_from_several_threads_all_return() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.put(1).unwrap();
    let joiners: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || q.join_timeout(LONG))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    q.get().unwrap();
    q.task_done().unwrap();
    for j in joiners {
        assert!(j.join().unwrap());
    }
}

#[test]
fn a_put_that_fails_is_not_counted() {
    let q: JoinableQueue<u32> = JoinableQueue::with_capacity(1).unwrap();
    q.put(1).unwrap();
    let other = q.clone(); // so the full queue is not "disconnected"
    assert!(matches!(q.put_nowait(2), Err(TryPutError::Full(2))));
    assert_eq!(q.unfinished_tasks(), 1);
    assert!(q.put_timeout(3, Duration::from_millis(10)).is_err());
    assert_eq!(q.unfinished_tasks(), 1);
    drop(other);
}

#[test]
fn spawned_worker_marks_tasks_done() {
    let q: JoinableQueue<Option<u32>> = JoinableQueue::new().unwrap();
    let mut p = Process::new(worker, (q.clone(),)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    for i in 0..5 {
        q.put(Some(i)).unwrap();
    }
    assert!(q.join_timeout(LONG));
    q.put(None).unwrap();
    join_ok(&p);
}

#[test]
fn named_joinable_queue_shares_its_task_count() {
    let name = format!("mproc-test-jq-{}", std::process::id());
    let q: JoinableQueue<u64> =
        JoinableQueue::create_named(mproc::Queue::builder(), &name).unwrap();
    let opened: JoinableQueue<u64> = JoinableQueue::open_named(&name).unwrap();
    q.put(9).unwrap();
    assert_eq!(opened.unfinished_tasks(), 1);
    assert_eq!(opened.get().unwrap(), 9);
    opened.task_done().unwrap();
    assert!(q.join_timeout(LONG));
    let wrong = JoinableQueue::<String>::open_named(&name).unwrap_err();
    assert!(
        matches!(wrong, mproc::OpenError::WrongType { .. }),
        "{wrong}"
    );
    JoinableQueue::<u64>::unlink_named(&name).unwrap();
    assert!(JoinableQueue::<u64>::open_named(&name).is_err());
}
