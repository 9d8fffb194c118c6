//! `mproc::JoinableQueue` across real processes: Python's `test_task_done`, `task_done`
//! called too often (`ValueError`), `join` woken by another process, a failed `put` that is not
//! counted, named queues and a spawned worker; and the crash contract (#12 finding 2): a
//! producer killed while blocked in `put` leaves no phantom task, a worker that dies between
//! `get` and `task_done` has its task released and reported by `join`. Every wait is bounded.

mod common;

use common::{LONG, join_all_ok, join_ok, kill_and_reap, start_children, start_doomed};

use std::time::{Duration, Instant};

use mproc::queue::TryPutError;
use mproc::{Event, JoinError, JoinableQueue, Process, StartMethod, TaskDoneError};

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
    assert_eq!(q.join_timeout(LONG).unwrap().died, 0, "join did not return");
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
    assert!(q.join().unwrap().all_done());
}

#[test]
fn join_waits_for_a_task_done_in_another_process() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.put(5).unwrap();
    q.put(6).unwrap();
    // Nobody has done anything yet: join times out (no sooner than asked).
    let start = Instant::now();
    assert_eq!(
        q.join_timeout(Duration::from_millis(100)),
        Err(JoinError::Timeout)
    );
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
    assert!(q.join_timeout(LONG).unwrap().all_done());
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
        assert!(j.join().unwrap().unwrap().all_done());
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
    assert!(q.join_timeout(LONG).unwrap().all_done());
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
    assert!(q.join_timeout(LONG).unwrap().all_done());
    let wrong = JoinableQueue::<String>::open_named(&name).unwrap_err();
    assert!(
        matches!(wrong, mproc::OpenError::WrongType { .. }),
        "{wrong}"
    );
    JoinableQueue::<u64>::unlink_named(&name).unwrap();
    assert!(JoinableQueue::<u64>::open_named(&name).is_err());
}

/// #12 finding 2: a producer SIGKILLed while blocked in `put` on a full queue: its item never
/// entered the queue, so it is no task (before: `unfinished_tasks()` stayed 1 too many and
/// `join` never returned).
#[test]
fn a_producer_killed_blocked_in_put_leaves_no_phantom_task() {
    let q: JoinableQueue<u32> = JoinableQueue::with_capacity(1).unwrap();
    q.put(1).unwrap();
    let blocked = Event::new().unwrap();
    let mut p = Process::new(
        |(q, blocked): (JoinableQueue<u32>, Event)| {
            blocked.set();
            // Blocks for ever: the queue is full and nobody gets.
            let _ = q.put(2);
        },
        (q.clone(), blocked.clone()),
    );
    p.start().unwrap();
    assert!(blocked.wait_timeout(LONG));
    std::thread::sleep(Duration::from_millis(50)); // well inside the blocking put
    kill_and_reap(&p);
    assert_eq!(q.unfinished_tasks(), 1, "only the item in the queue");
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    let joined = q.join_timeout(LONG).expect("join returned");
    assert!(joined.all_done(), "{joined:?}");
    assert_eq!(q.unfinished_tasks(), 0);
}

/// A worker SIGKILLed between `get` and `task_done`: Python's `join` hangs for ever; ours
/// releases the task and says so.
#[test]
fn a_worker_killed_before_task_done_is_reported_by_join() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    let p = start_doomed(&q, |q| {
        q.get_timeout(LONG).unwrap();
        q.get_timeout(LONG).unwrap();
        q.task_done().unwrap();
    });
    assert_eq!(
        q.unfinished_tasks(),
        2,
        "one queued, one taken by the worker"
    );
    kill_and_reap(&p);
    assert_eq!(q.get().unwrap(), 2);
    q.task_done().unwrap();
    let start = Instant::now();
    let joined = q.join_timeout(LONG).expect("join returned");
    assert_eq!((joined.died, joined.lost), (1, 0));
    assert!(start.elapsed() < LONG);
    assert_eq!(q.tasks_died(), 1);
    assert_eq!(q.unfinished_tasks(), 0);
}

/// Runs a worker that takes one task and exits normally without marking it done.
fn exit_holding_a_task(q: &JoinableQueue<u32>) {
    let mut p = Process::new(
        |(q,): (JoinableQueue<u32>,)| {
            q.get_timeout(LONG).unwrap();
        },
        (q.clone(),),
    );
    p.start().unwrap();
    join_ok(&p);
}

/// A worker that exits normally with a task it did not mark done counts as one that died.
#[test]
fn a_worker_that_exits_with_an_open_task_counts_as_dead() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.put(7).unwrap();
    exit_holding_a_task(&q);
    let joined = q.join_timeout(LONG).expect("join returned");
    assert_eq!(joined.died, 1);
}

/// `task_done` by a process that took nothing (Python allows any process to call it) is
/// counted as made for a holder: the dead worker's task is not released twice.
#[test]
fn a_task_done_by_another_process_is_not_counted_twice() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.put(1).unwrap();
    let p = start_doomed(&q, |q| {
        q.get_timeout(LONG).unwrap();
    });
    q.task_done().unwrap(); // the parent, holding no task, marks the worker's item done
    assert_eq!(q.task_done(), Err(TaskDoneError::TooManyTimes));
    kill_and_reap(&p);
    let joined = q.join_timeout(LONG).expect("join returned");
    assert_eq!(joined.died, 0, "the task was done already");
}

/// More worker processes holding tasks at once than a small ledger would track (70 > 64):
/// all 70 get a task, then all mark it done; then one more worker dies holding a task, and
/// `join` must release it. (Found by review: with a 64-entry ledger the six untracked takes
/// came back as non-holders' `task_done`s, which then cancelled the dead worker's release,
/// and `join` hung.)
#[test]
fn many_concurrent_workers_never_hide_a_dead_ones_task() {
    const WORKERS: u32 = 70;
    let q: JoinableQueue<u32> = JoinableQueue::with_capacity(WORKERS + 1).unwrap();
    for i in 0..=WORKERS {
        q.put(i).unwrap();
    }
    let got = mproc::Semaphore::new(0).unwrap();
    let go = Event::new().unwrap();
    let kids = start_children(
        WORKERS as usize,
        (q.clone(), got.clone(), go.clone()),
        |(q, got, go): (JoinableQueue<u32>, mproc::Semaphore, Event)| {
            q.get_timeout(LONG).unwrap();
            got.release().unwrap();
            // Every worker holds its task until all 70 hold one.
            assert!(go.wait_timeout(LONG));
            q.task_done().unwrap();
        },
    );
    for _ in 0..WORKERS {
        assert!(got.acquire_timeout(LONG).unwrap());
    }
    go.set();
    join_all_ok(&kids);
    // One more worker takes the last task and exits holding it.
    exit_holding_a_task(&q);
    let joined = q.join_timeout(LONG).expect("join returned");
    assert_eq!(joined.died, 1);
    assert_eq!(q.unfinished_tasks(), 0);
}
