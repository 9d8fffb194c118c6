//! A pool of worker processes fed by a `JoinableQueue`: the parent puts jobs, each worker
//! `get`s one, computes, puts the result on a second queue and calls `task_done`; the parent
//! `join`s until every job is done, then stops the workers with one `None` each.
//!
//! Python's version:
//! ```python
//! def worker(jobs, results):
//!     for n in iter(jobs.get, None):
//!         results.put((n, n * n))
//!         jobs.task_done()
//! ```
//!
//! Run it with `cargo run --release -p mproc --example workers`.

use std::error::Error;
use std::time::Duration;

use mproc::{JoinableQueue, Process, Queue};

/// Worker processes.
const WORKERS: usize = 3;
/// Jobs: the numbers to square.
const JOBS: u64 = 20;

/// One worker: square numbers until the `None` sentinel.
fn worker((jobs, results): (JoinableQueue<Option<u64>>, Queue<(u64, u64)>)) {
    while let Some(n) = jobs.get().expect("get a job") {
        results.put((n, n * n)).expect("put the result");
        // Only now is this job done: the parent's `join` waits for every one.
        jobs.task_done().expect("one task_done per job");
    }
    // The sentinel is a task too (it was put): mark it done so a later `join` can return.
    jobs.task_done().expect("task_done for the sentinel");
}

fn main() -> Result<(), Box<dyn Error>> {
    let jobs: JoinableQueue<Option<u64>> = JoinableQueue::new()?;
    let results: Queue<(u64, u64)> = Queue::with_capacity(64)?;

    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let mut p = Process::new(worker, (jobs.clone(), results.clone()));
        p.start()?;
        workers.push(p);
    }

    for n in 1..=JOBS {
        jobs.put(Some(n))?;
    }
    // Blocks until every job put so far was marked done (bounded here, unlike Python's).
    // Python's join hangs for ever if a worker dies holding a job; ours reports it.
    let joined = jobs.join_timeout(Duration::from_secs(60))?;
    println!(
        "all {JOBS} jobs done; {} unfinished, {} died with a worker",
        jobs.unfinished_tasks(),
        joined.died
    );

    // Results arrive in any order (several workers); sort them to print.
    let mut squares: Vec<(u64, u64)> = (0..JOBS)
        .map(|_| results.get_timeout(Duration::from_secs(10)))
        .collect::<Result<_, _>>()?;
    squares.sort_unstable();
    let sum: u64 = squares.iter().map(|&(_, sq)| sq).sum();
    println!("sum of squares 1..={JOBS}: {sum}");
    assert_eq!(sum, JOBS * (JOBS + 1) * (2 * JOBS + 1) / 6);

    for _ in &workers {
        jobs.put(None)?; // one sentinel per worker
    }
    for p in &workers {
        let status = p
            .join_timeout(Duration::from_secs(10))?
            .ok_or("a worker did not stop")?;
        assert!(status.success(), "worker failed: {status:?}");
    }
    jobs.join()?; // the sentinels were marked done too
    Ok(())
}
