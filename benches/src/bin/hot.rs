//! `hot`: the few figures the hot-path work on `Queue` and `Lock` is judged by, each
//! repeated a few times (median kept) so before/after runs on a shared machine compare:
//! `cargo run --release -p mproc-benches --bin hot [-- ROUNDS]`. Nothing asserts on time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mproc_benches::body::{self, no_allocs};
use mproc_benches::mech::{FutexFlag, Lamport, QueueT, RawMpmc, RawSpsc, SpinFlag};
use mproc_benches::{BenchError, Transport, lock};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn tput<T: Transport>(n: u64) -> Result<f64, BenchError> {
    Ok(body::throughput::<T>(8, n / 20 + 100, n, no_allocs)?.msgs_per_sec())
}

fn p50<T: Transport>(n: u64, idle: Option<Duration>) -> Result<f64, BenchError> {
    Ok(body::round_trip::<T>(8, n / 10 + 10, n, idle, no_allocs)?.percentile(50.0))
}

/// Single process, one thread: put + get on one `Queue<u64>`, ns per pair.
fn local_put_get(n: u64) -> f64 {
    let q = mproc::Queue::<u64>::new().expect("queue");
    let _other = q.clone();
    for i in 0..n / 10 {
        q.put(i).expect("put");
        black_box(q.get().expect("get"));
    }
    let t = Instant::now();
    for i in 0..n {
        q.put(i).expect("put");
        black_box(q.get().expect("get"));
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Single process, one thread: put + get + task_done on one `JoinableQueue<u64>`, ns per
/// task (the task bookkeeping on top of `local_put_get`).
fn local_joinable(n: u64) -> f64 {
    let q = mproc::JoinableQueue::<u64>::new().expect("queue");
    let _other = q.clone();
    let t = Instant::now();
    for i in 0..n {
        q.put(i).expect("put");
        black_box(q.get().expect("get"));
        q.task_done().expect("task_done");
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Single process, one thread: acquire + release of a `Semaphore`, ns per pair.
fn local_semaphore(n: u64) -> f64 {
    let s = mproc::Semaphore::new(1).expect("semaphore");
    let t = Instant::now();
    for _ in 0..n {
        // Both versions' signatures: `acquire` returned `()` before the ledger, a `Result`
        // since; `let _ =` takes either.
        #[allow(clippy::let_unit_value)]
        let _ = black_box(s.acquire());
        s.release().expect("release");
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn row(name: &str, unit: &str, rounds: usize, mut f: impl FnMut() -> Result<f64, BenchError>) {
    let v: Result<Vec<f64>, _> = (0..rounds).map(|_| f()).collect();
    match v {
        Ok(v) => {
            let m = median(v.clone());
            let all: Vec<String> = v.iter().map(|x| format!("{x:.3e}")).collect();
            println!("{name:<34} {m:>12.4e} {unit:<6} [{}]", all.join(" "));
        }
        Err(e) => println!("{name:<34} error: {e}"),
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let only = std::env::args().nth(2).unwrap_or_default();
    let want = |k: &str| only.is_empty() || only.contains(k);
    if want("local") {
        row("Queue<u64> put+get, 1 thread", "ns", rounds, || {
            Ok(local_put_get(1_000_000))
        });
    }
    if want("tasks") {
        row("JoinableQueue put+get+task_done", "ns", rounds, || {
            Ok(local_joinable(1_000_000))
        });
        row("Semaphore acquire+release", "ns", rounds, || {
            Ok(local_semaphore(1_000_000))
        });
    }
    if want("tput") {
        row("tput Queue<u64> 8B", "msg/s", rounds, || {
            tput::<QueueT<u64>>(3_000_000)
        });
        row("tput Queue<u64> batch 8B", "msg/s", rounds, || {
            mproc_benches::batch::queue_batch_throughput(100_000, 5_000_000)
        });
        row("tput raw MPMC 8B", "msg/s", rounds, || {
            tput::<RawMpmc>(5_000_000)
        });
        row("tput raw SPSC 8B", "msg/s", rounds, || {
            tput::<RawSpsc>(20_000_000)
        });
        row("tput naive ring 8B", "msg/s", rounds, || {
            tput::<Lamport>(20_000_000)
        });
    }
    if want("big") {
        row("tput Queue 64 KiB (arena)", "msg/s", rounds, || {
            Ok(
                body::throughput::<QueueT<[u8; 65536]>>(65536, 2_000, 40_000, no_allocs)?
                    .msgs_per_sec(),
            )
        });
        row("tput naive ring 64 KiB", "msg/s", rounds, || {
            Ok(body::throughput::<Lamport>(65536, 2_000, 40_000, no_allocs)?.msgs_per_sec())
        });
    }
    if want("rtt") {
        row("rtt awake Queue p50", "ns", rounds, || {
            p50::<QueueT<u64>>(20_000, None)
        });
        row("rtt awake spin floor p50", "ns", rounds, || {
            p50::<SpinFlag>(20_000, None)
        });
    }
    if want("idle") {
        let gap = Some(Duration::from_millis(1));
        row("rtt idle Queue p50", "ns", rounds, || {
            p50::<QueueT<u64>>(500, gap)
        });
        row("rtt idle bare futex p50", "ns", rounds, || {
            p50::<FutexFlag>(500, gap)
        });
    }
    if want("lock") {
        row("Lock uncontended", "ns", rounds, || {
            Ok(lock::uncontended_mproc(5_000_000)?.as_nanos() as f64)
        });
        row("std Mutex uncontended", "ns", rounds, || {
            Ok(lock::uncontended_std(5_000_000).as_nanos() as f64)
        });
    }
}
