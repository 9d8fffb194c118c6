//! `report`: runs every comparison with its own timing loops (so percentiles exist) and
//! writes `target/bench-report.md` and `target/bench-report.svg` (and, with `--docs`,
//! `docs/bench.svg` and `target/bench-readme.md`, the table the README shows).
//!
//! `cargo xtask bench` runs it; `--quick` runs one short iteration of every body (a smoke
//! run: figures from it are not worth quoting). Nothing asserts on time.
#![allow(clippy::disallowed_types)] // the counting allocator's counter, below

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mproc_benches::body::{self, Latency, Throughput};
use mproc_benches::mech::*;
use mproc_benches::report::{self, Bar, Panel, Verdict, bytes_rate, ns, rate, ratio};
use mproc_benches::{BenchError, Payload, Transport, deadline, footprint, lock, mpmc};

/// Counts every allocation (and reallocation) of this process, all threads.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a statistic; read only as a difference on the same thread.
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: delegated to the caller (GlobalAlloc's contract).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: delegated to the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: delegated to the caller.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: delegated to the caller.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    // Relaxed: see `alloc`.
    ALLOCS.load(Ordering::Relaxed)
}

/// Iteration counts for one mode.
#[derive(Debug, Clone, Copy)]
struct Plan {
    quick: bool,
    /// Seconds each throughput cell aims at (after a calibration run).
    tput_secs: f64,
    rtt_awake: u64,
    rtt_idle: u64,
    idle: Duration,
    mpmc_per_producer: u64,
    lock_uncontended: u64,
    lock_handoff: u64,
}

const FULL: Plan = Plan {
    quick: false,
    tput_secs: 0.6,
    rtt_awake: 20_000,
    rtt_idle: 1_000,
    idle: Duration::from_millis(1),
    mpmc_per_producer: 400_000,
    lock_uncontended: 5_000_000,
    lock_handoff: 200_000,
};

const QUICK: Plan = Plan {
    quick: true,
    tput_secs: 0.0,
    rtt_awake: 200,
    rtt_idle: 10,
    idle: Duration::from_millis(1),
    mpmc_per_producer: 2_000,
    lock_uncontended: 10_000,
    lock_handoff: 2_000,
};

const SIZES: [usize; 4] = [8, 64, 1024, 65536];

/// One mechanism's result in one table.
struct Cell<T> {
    name: &'static str,
    mproc: bool,
    result: Result<T, BenchError>,
}

fn traced<T>(what: &str, f: impl FnOnce() -> T) -> T {
    progress(what);
    f()
}

fn progress(what: &str) {
    eprintln!("[report] {what}");
}

/// Throughput with a calibration run, so each cell takes about `plan.tput_secs`.
fn tput<T: Transport>(size: usize, plan: &Plan) -> Result<Throughput, BenchError> {
    progress(&format!("throughput {} {size} B", T::NAME));
    let probe_n: u64 = if size > 1024 { 200 } else { 2_000 };
    let first = body::throughput::<T>(size, probe_n / 10, probe_n, allocs)?;
    if plan.quick {
        return Ok(first);
    }
    let n = (first.msgs_per_sec() * plan.tput_secs).clamp(probe_n as f64, 50e6) as u64;
    body::throughput::<T>(size, n / 20 + 100, n, allocs)
}

fn tput_cell<T: Transport>(size: usize, plan: &Plan, mproc: bool) -> Cell<Throughput> {
    Cell {
        name: T::NAME,
        mproc,
        result: tput::<T>(size, plan),
    }
}

fn typed_tput<P: Payload>(plan: &Plan, out: &mut Vec<Cell<Throughput>>) {
    out.push(tput_cell::<QueueT<P>>(P::SIZE, plan, true));
    out.push(tput_cell::<Crossbeam<P>>(P::SIZE, plan, false));
}

fn throughput_table(size: usize, plan: &Plan) -> Vec<Cell<Throughput>> {
    let mut out = Vec::new();
    match size {
        8 => typed_tput::<u64>(plan, &mut out),
        64 => typed_tput::<[u8; 64]>(plan, &mut out),
        1024 => typed_tput::<[u8; 1024]>(plan, &mut out),
        _ => typed_tput::<[u8; 65536]>(plan, &mut out),
    }
    out.push(tput_cell::<MprocPipe>(size, plan, true));
    out.push(tput_cell::<RawSpsc>(size, plan, true));
    out.push(tput_cell::<RawRecord>(size, plan, true));
    out.push(tput_cell::<RawMpmc>(size, plan, true));
    out.push(tput_cell::<Lamport>(size, plan, false));
    out.push(tput_cell::<Pipe2>(size, plan, false));
    out.push(tput_cell::<UnixStream>(size, plan, false));
    out.push(tput_cell::<SeqPacket>(size, plan, false));
    out.push(tput_cell::<PosixMq>(size, plan, false));
    #[cfg(feature = "peers")]
    out.push(tput_cell::<IpcChannel>(size, plan, false));
    #[cfg(feature = "peers")]
    out.push(tput_cell::<Iceoryx2>(size, plan, false));
    out
}

fn rtt_cell<T: Transport>(plan: &Plan, idle: bool, mproc: bool) -> Cell<Latency> {
    progress(&format!(
        "round trip {} ({})",
        T::NAME,
        if idle { "after idle" } else { "awake" }
    ));
    let (n, gap) = if idle {
        (plan.rtt_idle, Some(plan.idle))
    } else {
        (plan.rtt_awake, None)
    };
    Cell {
        name: T::NAME,
        mproc,
        result: body::round_trip::<T>(8, n / 10 + 10, n, gap, allocs),
    }
}

/// One entry of [`rtt_interleaved`]: name, is-mproc, and the bench body for `n` samples.
type RttRun = (
    &'static str,
    bool,
    fn(u64, Option<Duration>) -> Result<Latency, BenchError>,
);

/// Round trips of the transports the targets compare (mproc's against the spin and futex
/// floors), measured in [`RTT_CHUNKS`] alternating chunks rather than one after another:
/// the machine's state drifts over a run (load, how deep an idle vCPU sleeps; a bare futex
/// round trip after idle was seen to move between 5 and 12 µs within minutes), and
/// alternating spreads that drift over all of them instead of letting it land on whichever
/// ran during it. Each transport's chunks are merged into one sample set.
fn rtt_interleaved(plan: &Plan, idle: bool, runs: &[RttRun]) -> Vec<Cell<Latency>> {
    let total = if idle { plan.rtt_idle } else { plan.rtt_awake };
    let gap = idle.then_some(plan.idle);
    let chunk = (total / RTT_CHUNKS).max(1);
    let mut merged: Vec<Result<Latency, BenchError>> = runs
        .iter()
        .map(|_| {
            Ok(Latency {
                samples_ns: Vec::new(),
                allocs: 0,
            })
        })
        .collect();
    for round in 0..RTT_CHUNKS {
        for ((name, _, run), acc) in runs.iter().zip(merged.iter_mut()) {
            progress(&format!(
                "round trip {name} ({}, chunk {}/{RTT_CHUNKS})",
                if idle { "after idle" } else { "awake" },
                round + 1
            ));
            if let Ok(sum) = acc {
                match run(chunk, gap) {
                    Ok(l) => {
                        sum.samples_ns.extend(l.samples_ns);
                        sum.allocs += l.allocs;
                    }
                    Err(e) => *acc = Err(e),
                }
            }
        }
    }
    runs.iter()
        .zip(merged)
        .map(|(&(name, mproc, _), result)| Cell {
            name,
            mproc,
            result: result.map(|mut l| {
                l.samples_ns.sort_unstable();
                l
            }),
        })
        .collect()
}

/// Chunks per transport in [`rtt_interleaved`].
const RTT_CHUNKS: u64 = 5;

fn rtt_run<T: Transport>(n: u64, gap: Option<Duration>) -> Result<Latency, BenchError> {
    body::round_trip::<T>(8, n / 10 + 10, n, gap, allocs)
}

fn rtt_table(plan: &Plan, idle: bool) -> Vec<Cell<Latency>> {
    let mut compared: Vec<RttRun> = vec![
        (QueueT::<u64>::NAME, true, rtt_run::<QueueT<u64>>),
        (MprocPipe::NAME, true, rtt_run::<MprocPipe>),
        (FutexFlag::NAME, false, rtt_run::<FutexFlag>),
    ];
    if !idle {
        compared.push((SpinFlag::NAME, false, rtt_run::<SpinFlag>));
    }
    let mut out = rtt_interleaved(plan, idle, &compared);
    if !idle {
        out.push(rtt_cell::<RawSpsc>(plan, idle, true));
        out.push(rtt_cell::<RawMpmc>(plan, idle, true));
        out.push(rtt_cell::<Lamport>(plan, idle, false));
        // Busy-polls (never sleeps), so only in the awake table.
        #[cfg(feature = "peers")]
        out.push(rtt_cell::<Iceoryx2>(plan, idle, false));
    }
    out.push(rtt_cell::<Pipe2>(plan, idle, false));
    out.push(rtt_cell::<UnixStream>(plan, idle, false));
    out.push(rtt_cell::<SeqPacket>(plan, idle, false));
    out.push(rtt_cell::<PosixMq>(plan, idle, false));
    out.push(rtt_cell::<Crossbeam<u64>>(plan, idle, false));
    #[cfg(feature = "peers")]
    out.push(rtt_cell::<IpcChannel>(plan, idle, false));
    out
}

/// Python's figures (`key value` lines from the script), if python3 ran.
fn python(plan: &Plan, root: &std::path::Path) -> Result<Vec<(String, f64)>, String> {
    progress("python multiprocessing");
    let script = root.join("benches/python/mp_bench.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if plan.quick {
        cmd.arg("--quick");
    }
    let mut child = cmd.spawn().map_err(|e| format!("python3 not run: {e}"))?;
    let end = Instant::now() + Duration::from_secs(if plan.quick { 120 } else { 600 });
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("python3 timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect())
}

/// Single-thread memcpy bandwidth over a ring-sized working set of `size`-byte slots: the
/// "memcpy-bound" reference for the raw SPSC ring's large-message target.
fn memcpy_bandwidth(size: usize, quick: bool) -> f64 {
    let slots = mproc_benches::transport::slots_for(size) as usize;
    let src = vec![0x5Au8; size];
    let mut ring = vec![0u8; size * slots];
    let n = if quick {
        1_000
    } else {
        (2_000_000_000 / size).max(1_000)
    };
    let t = Instant::now();
    for i in 0..n {
        let at = (i % slots) * size;
        ring[at..at + size].copy_from_slice(&src);
        std::hint::black_box(&ring);
    }
    (n * size) as f64 / t.elapsed().as_secs_f64()
}

fn get<'a, T>(cells: &'a [Cell<T>], name: &str) -> Option<&'a T> {
    cells
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.result.as_ref().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plan = if args.iter().any(|a| a == "--quick") {
        QUICK
    } else {
        FULL
    };
    let docs = args.iter().any(|a| a == "--docs");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is one level below the root")
        .to_path_buf();
    let out_dir = args
        .windows(2)
        .find(|w| w[0] == "--out")
        .map(|w| PathBuf::from(&w[1]))
        .unwrap_or_else(|| root.join("target"));
    // Backstop for any blocking call without its own timeout: the whole run is bounded.
    deadline::watchdog(if plan.quick { 600 } else { 3600 });

    let machine = report::machine();
    let load_start = report::loadavg();
    let started = Instant::now();

    let tputs: Vec<(usize, Vec<Cell<Throughput>>)> = SIZES
        .iter()
        .map(|&s| (s, throughput_table(s, &plan)))
        .collect();
    progress("throughput mproc Queue batch (put_many/get_many) 8 B");
    let batch8 = if plan.quick {
        mproc_benches::batch::queue_batch_throughput(200, 2_000)
    } else {
        mproc_benches::batch::queue_batch_throughput(200_000, 5_000_000)
    };
    let awake = rtt_table(&plan, false);
    let idle = rtt_table(&plan, true);

    progress("mpmc");
    let mpmc_runs: Vec<(u32, Result<mpmc::MpmcRun, BenchError>)> = [1, 2, 4]
        .iter()
        .map(|&k| (k, mpmc::run(k, k, plan.mpmc_per_producer)))
        .collect();

    progress("locks");
    let n = plan.lock_uncontended;
    let lock_mproc = lock::uncontended_mproc(n);
    let lock_std = lock::uncontended_std(n);
    let lock_pl = lock::uncontended_parking_lot(n);
    let lock_pthread = lock::uncontended_pthread(n);
    let hand_mproc = lock::handoff_mproc(plan.lock_handoff);
    let hand_pthread = lock::handoff_pthread(plan.lock_handoff);

    progress("allocations and footprint");
    let alloc_rows: Vec<(&str, Result<f64, BenchError>)> = vec![
        (
            "Queue<u64> put + get",
            traced("Queue<u64> put + get", || {
                footprint::queue_put_get::<u64>(allocs)
            }),
        ),
        (
            "Queue<[u8; 64]> put + get",
            traced("Queue<[u8; 64]> put + get", || {
                footprint::queue_put_get::<[u8; 64]>(allocs)
            }),
        ),
        (
            "Queue<[u8; 1024]> put + get (inline slot)",
            traced("Queue<[u8; 1024]> put + get (inline slot)", || {
                footprint::queue_put_get::<[u8; 1024]>(allocs)
            }),
        ),
        (
            "Queue<[u8; 65536]> put + get (arena)",
            traced("Queue<[u8; 65536]> put + get (arena)", || {
                footprint::queue_put_get::<[u8; 65536]>(allocs)
            }),
        ),
        (
            "Pipe send_bytes + recv_bytes_into, 8 B",
            traced("Pipe send_bytes + recv_bytes_into, 8 B", || {
                footprint::pipe_bytes(8, allocs)
            }),
        ),
        (
            "Pipe send_bytes + recv_bytes_into, 1 KiB",
            traced("Pipe send_bytes + recv_bytes_into, 1 KiB", || {
                footprint::pipe_bytes(1024, allocs)
            }),
        ),
        (
            "Pipe send::<u64> + recv::<u64>",
            traced("Pipe send::<u64> + recv::<u64>", || {
                footprint::pipe_typed_u64(allocs)
            }),
        ),
    ];
    let footprint_rows: Vec<(String, Result<u64, BenchError>)> = vec![
        (
            "Queue<u64>, 256 slots, default arena (1 MiB)".into(),
            traced("Queue<u64>, 256 slots, default arena (1 MiB)", || {
                footprint::queue_bytes(256, 1 << 20)
            }),
        ),
        (
            "Queue<u64>, 256 slots, smallest arena".into(),
            traced("Queue<u64>, 256 slots, smallest arena", || {
                footprint::queue_bytes(256, 1)
            }),
        ),
        (
            "Queue<u64>, 4096 slots, smallest arena".into(),
            traced("Queue<u64>, 4096 slots, smallest arena", || {
                footprint::queue_bytes(4096, 1)
            }),
        ),
        (
            "Queue<u64>, 65536 slots, smallest arena".into(),
            traced("Queue<u64>, 65536 slots, smallest arena", || {
                footprint::queue_bytes(65536, 1)
            }),
        ),
        (
            "Pipe (duplex, 64 KiB per direction)".into(),
            traced("Pipe (duplex, 64 KiB per direction)", || {
                footprint::mapped_by(|| mproc::pipe().map_err(mproc_benches::error::api))
            }),
        ),
    ];
    let memcpy: Vec<(usize, f64)> = [1024usize, 65536]
        .iter()
        .map(|&s| (s, memcpy_bandwidth(s, plan.quick)))
        .collect();
    let py = python(&plan, &root);
    let load_end = report::loadavg();

    // ---------------------------------------------------------------- markdown
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# mproc benchmark report\n");
    let _ = writeln!(
        w,
        "* machine: **{}**, {} cores, Linux {}\n* load average (1/5/15 min): {} at start, {} at end — a shared machine; other jobs ran beside this one\n* mode: {}; wall time {:.0} s\n* reproduce: `cargo xtask bench` (this report: `cargo run --profile bench -p mproc-benches{} --bin report`)\n",
        machine.cpu,
        machine.cores,
        machine.kernel,
        load_start,
        load_end,
        if plan.quick {
            "**quick (smoke run; figures not meaningful)**"
        } else {
            "full"
        },
        started.elapsed().as_secs_f64(),
        if cfg!(feature = "peers") {
            " --features peers"
        } else {
            ""
        }
    );
    let _ = writeln!(
        w,
        "All figures cross two real processes (a forked child; mproc objects are passed through `mproc::Process` arguments) unless marked *threads*. Every mechanism runs the same bench body (`mproc_benches::body`). Messages carry a sequence number that the receiver checks.\n"
    );

    // Targets.
    let q8 = tputs[0]
        .1
        .iter()
        .find(|c| c.name == QueueT::<u64>::NAME)
        .and_then(|c| c.result.as_ref().ok())
        .map(|t| t.msgs_per_sec());
    let pipe8 = get(&tputs[0].1, Pipe2::NAME).map(|t| t.msgs_per_sec());
    let lamport8 = get(&tputs[0].1, Lamport::NAME).map(|t| t.msgs_per_sec());
    let spsc8 = get(&tputs[0].1, RawSpsc::NAME).map(|t| t.msgs_per_sec());
    let py_get = |k: &str| {
        py.as_ref()
            .ok()
            .and_then(|v| v.iter().find(|(n, _)| n == k).map(|(_, x)| *x))
    };
    let pyq = py_get("queue_tput_8B_msgs_per_s");
    let p50 = |cells: &[Cell<Latency>], name: &str| {
        get(cells, name)
            .map(|l| l.percentile(50.0))
            .unwrap_or(f64::NAN)
    };
    let spin_floor = p50(&awake, SpinFlag::NAME);
    let futex_floor = p50(&idle, FutexFlag::NAME);
    let std_ns = lock_std.as_nanos() as f64;

    let _ = writeln!(w, "## Targets (issue 7)\n");
    let _ = writeln!(w, "| target | measured | verdict |\n|---|---|---|");
    let nan = f64::NAN;
    let r1 = q8.zip(pipe8).map_or(nan, |(a, b)| a / b);
    let _ = writeln!(
        w,
        "| `Queue<u64>` 1→1 ≥ 10× `pipe(2)` 8-byte throughput | {} ({} vs {} msg/s) | {} |",
        ratio(r1),
        rate(q8.unwrap_or(nan)),
        rate(pipe8.unwrap_or(nan)),
        Verdict::of(r1, r1 >= 10.0).label()
    );
    let r2 = q8.zip(pyq).map_or(nan, |(a, b)| a / b);
    let _ = writeln!(
        w,
        "| `Queue<u64>` ≥ 100× Python `multiprocessing.Queue` | {} ({} vs {} msg/s) | {} |",
        ratio(r2),
        rate(q8.unwrap_or(nan)),
        rate(pyq.unwrap_or(nan)),
        Verdict::of(r2, r2 >= 100.0).label()
    );
    let batch = batch8.as_ref().ok().copied();
    let r3 = batch.zip(lamport8).map_or(nan, |(a, b)| a / b);
    let _ = writeln!(
        w,
        "| batch put/get within 2× of the naive ring (`Queue<u64>` `put_many`/`get_many`, {}-item batches) | {} of the naive ring ({} vs {} msg/s; {}) | {} |",
        mproc_benches::batch::BATCH,
        ratio(r3),
        rate(batch.unwrap_or(nan)),
        rate(lamport8.unwrap_or(nan)),
        match &batch8 {
            Ok(_) => "needs ≥ 0.5×".to_owned(),
            Err(e) => format!("error: {e}"),
        },
        Verdict::of(r3, r3 >= 0.5).label()
    );
    let r4 = spsc8.zip(lamport8).map_or(nan, |(a, b)| a / b);
    let _ = writeln!(
        w,
        "| raw SPSC ≥ 0.8× naive ring, 8 B | {} ({} vs {} msg/s) | {} |",
        ratio(r4),
        rate(spsc8.unwrap_or(nan)),
        rate(lamport8.unwrap_or(nan)),
        Verdict::of(r4, r4 >= 0.8).label()
    );
    for (i, &(size, bw)) in memcpy.iter().enumerate() {
        let spsc = get(&tputs[2 + i].1, RawSpsc::NAME).map(|t| t.msgs_per_sec() * size as f64);
        let r = spsc.map_or(nan, |s| s / bw);
        let _ = writeln!(
            w,
            "| raw SPSC ≥ 0.8× memcpy bandwidth, {} B | {} ({} vs {} single-thread memcpy) | {} |",
            size,
            ratio(r),
            bytes_rate(spsc.unwrap_or(nan)),
            bytes_rate(bw),
            Verdict::of(r, r >= 0.8).label()
        );
    }
    for name in [QueueT::<u64>::NAME, MprocPipe::NAME] {
        let r = p50(&awake, name) / spin_floor;
        let _ = writeln!(
            w,
            "| {name} round trip awake ≤ 2× spin floor (p50) | {} ({} vs {}) | {} |",
            ratio(r),
            ns(p50(&awake, name)),
            ns(spin_floor),
            Verdict::of(r, r <= 2.0).label()
        );
    }
    // iceoryx2's awake p50 (NaN if its run failed); None when it is not built in.
    #[cfg(feature = "peers")]
    let iceoryx2_p50 = Some(p50(&awake, Iceoryx2::NAME));
    #[cfg(not(feature = "peers"))]
    let iceoryx2_p50: Option<f64> = None;
    match iceoryx2_p50 {
        Some(ice) => {
            for name in [QueueT::<u64>::NAME, MprocPipe::NAME] {
                let r = p50(&awake, name) / ice;
                let _ = writeln!(
                    w,
                    "| {name} round trip awake faster than iceoryx2 (p50) | {} ({} vs {}) | {} |",
                    ratio(r),
                    ns(p50(&awake, name)),
                    ns(ice),
                    Verdict::of(r, r < 1.0).label()
                );
            }
        }
        None => {
            let _ = writeln!(
                w,
                "| round trip awake faster than iceoryx2 | iceoryx2 not built in this run (`--features peers`, needs libclang; see notes) | {} |",
                Verdict::NotMeasured.label()
            );
        }
    }
    for name in [QueueT::<u64>::NAME, MprocPipe::NAME] {
        let r = p50(&idle, name) / futex_floor;
        let _ = writeln!(
            w,
            "| {name} round trip after idle ≤ 1.2× bare futex (p50) | {} ({} vs {}) | {} |",
            ratio(r),
            ns(p50(&idle, name)),
            ns(futex_floor),
            Verdict::of(r, r <= 1.2).label()
        );
    }
    let lr = lock_mproc
        .as_ref()
        .map_or(nan, |d| d.as_nanos() as f64 / std_ns);
    let _ = writeln!(
        w,
        "| `Lock` uncontended ≤ 1.5× `std::sync::Mutex` | {} ({} vs {}) | {} |",
        ratio(lr),
        lock_mproc
            .as_ref()
            .map_or("error".into(), |d| ns(d.as_nanos() as f64)),
        ns(std_ns),
        Verdict::of(lr, lr <= 1.5).label()
    );
    let inline_allocs: Vec<f64> = alloc_rows
        .iter()
        .take(2)
        .chain(alloc_rows.iter().skip(4).take(1))
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    let worst = inline_allocs
        .iter()
        .cloned()
        .fold(if inline_allocs.is_empty() { nan } else { 0.0 }, f64::max);
    let _ = writeln!(
        w,
        "| zero heap allocations per message, inline sizes | worst {worst:.3} allocs/msg (`Queue<u64>`, `Queue<[u8; 64]>`, Pipe 8 B) | {} |\n",
        Verdict::of(worst, worst == 0.0).label()
    );

    // Throughput.
    let _ = writeln!(
        w,
        "## One-way throughput (1 producer process → 1 consumer process)\n"
    );
    let _ = writeln!(
        w,
        "The peer sends as fast as it can; this process receives, checks and times the messages after a warm-up. Rings have 256 slots (16 for 64 KiB); `Queue` carries up to 1 KiB inline (slot sized to fit) and 64 KiB through its arena. *allocs/msg* counts the receiving process's heap allocations.\n"
    );
    for (size, cells) in &tputs {
        let base_pipe = get(cells, Pipe2::NAME)
            .map(|t| t.msgs_per_sec())
            .unwrap_or(nan);
        let base_ring = get(cells, Lamport::NAME)
            .map(|t| t.msgs_per_sec())
            .unwrap_or(nan);
        let _ = writeln!(w, "### {size} B\n");
        let _ = writeln!(
            w,
            "| mechanism | msg/s | bytes/s | allocs/msg | vs pipe(2) | vs naive ring |\n|---|---:|---:|---:|---:|---:|"
        );
        for c in cells {
            match &c.result {
                Ok(t) => {
                    let m = t.msgs_per_sec();
                    let _ = writeln!(
                        w,
                        "| {b}{}{b} | {} | {} | {:.3} | {} | {} |",
                        c.name,
                        rate(m),
                        bytes_rate(m * *size as f64),
                        t.allocs as f64 / t.msgs as f64,
                        ratio(m / base_pipe),
                        ratio(m / base_ring),
                        b = if c.mproc { "**" } else { "" }
                    );
                }
                Err(e) => {
                    let _ = writeln!(w, "| {} | n/a: {e} | | | | |", c.name);
                }
            }
        }
        if *size == 8 {
            if let Some(q) = pyq {
                let _ = writeln!(
                    w,
                    "| Python `multiprocessing.Queue` | {} | {} | | {} | {} |",
                    rate(q),
                    bytes_rate(q * 8.0),
                    ratio(q / base_pipe),
                    ratio(q / base_ring)
                );
            }
            if let Some(q) = py_get("pipe_tput_8B_msgs_per_s") {
                let _ = writeln!(
                    w,
                    "| Python `Pipe` send_bytes | {} | {} | | {} | {} |",
                    rate(q),
                    bytes_rate(q * 8.0),
                    ratio(q / base_pipe),
                    ratio(q / base_ring)
                );
            }
        }
        let _ = writeln!(w);
    }

    // Latency.
    for (title, cells, base_name, base, note) in [
        (
            "Round trip, both sides awake (8 B ping-pong)",
            &awake,
            "spin floor",
            spin_floor,
            "Back-to-back ping-pong: the peer is always waiting, so spin-then-park transports catch each message while spinning. The spin floor is one shared word per direction, both sides spinning.",
        ),
        (
            "Round trip after idle (receiver slept 1 ms before each ping)",
            &idle,
            "bare futex",
            futex_floor,
            "This process sleeps 1 ms before each ping, so the peer has gone to sleep (futex or blocking syscall) and every ping must wake it. Spinning-only transports are left out (they never sleep). The bare futex floor sleeps in `FUTEX_WAIT` at once and wakes with one `FUTEX_WAKE` per message.",
        ),
    ] {
        let _ = writeln!(
            w,
            "## {title}\n\n{note} Percentiles by nearest rank; each sample includes two clock reads (~40 ns).\n"
        );
        let _ = writeln!(
            w,
            "| mechanism | p50 | p99 | p99.9 | samples | allocs/round trip | p50 vs {base_name} |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for c in cells.iter() {
            match &c.result {
                Ok(l) => {
                    let _ = writeln!(
                        w,
                        "| {}{}{} | {} | {} | {} | {} | {:.3} | {} |",
                        if c.mproc { "**" } else { "" },
                        c.name,
                        if c.mproc { "**" } else { "" },
                        ns(l.percentile(50.0)),
                        ns(l.percentile(99.0)),
                        ns(l.percentile(99.9)),
                        l.samples_ns.len(),
                        l.allocs as f64 / l.samples_ns.len().max(1) as f64,
                        ratio(l.percentile(50.0) / base)
                    );
                }
                Err(e) => {
                    let _ = writeln!(w, "| {} | n/a: {e} | | | | | |", c.name);
                }
            }
        }
        let regime = if std::ptr::eq(cells, &awake) {
            "awake"
        } else {
            "idle"
        };
        for (label, key) in [("Python `Pipe`", "pipe"), ("Python `Queue`", "queue")] {
            if let (Some(a), Some(b), Some(c)) = (
                py_get(&format!("{key}_rtt_{regime}_p50_us")),
                py_get(&format!("{key}_rtt_{regime}_p99_us")),
                py_get(&format!("{key}_rtt_{regime}_p99.9_us")),
            ) {
                let _ = writeln!(
                    w,
                    "| {label} | {} | {} | {} | | | {} |",
                    ns(a * 1e3),
                    ns(b * 1e3),
                    ns(c * 1e3),
                    ratio(a * 1e3 / base)
                );
            }
        }
        let _ = writeln!(w);
    }

    // MPMC.
    let _ = writeln!(
        w,
        "## MPMC: P producer processes → C consumer processes, one `Queue<u64>`\n"
    );
    let _ = writeln!(
        w,
        "This machine has {} cores: 2→2 runs 4 busy processes and 4→4 runs 8, so beyond 1→1 the figures measure contention plus time-slicing (a descheduled producer or consumer holds its slot claim until it runs again; its peers spin, then sleep), not parallel speed-up.\n",
        machine.cores
    );
    let _ = writeln!(
        w,
        "| P→C | items | msg/s (total) | vs 1→1 |\n|---|---:|---:|---:|"
    );
    let one = mpmc_runs
        .first()
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|r| r.items as f64 / r.elapsed.as_secs_f64());
    for (k, r) in &mpmc_runs {
        match r {
            Ok(r) => {
                let m = r.items as f64 / r.elapsed.as_secs_f64();
                let _ = writeln!(
                    w,
                    "| {k}→{k} | {} | {} | {} |",
                    r.items,
                    rate(m),
                    ratio(one.map_or(nan, |o| m / o))
                );
            }
            Err(e) => {
                let _ = writeln!(w, "| {k}→{k} | n/a: {e} | | |");
            }
        }
    }
    let _ = writeln!(w);

    // Locks.
    let _ = writeln!(
        w,
        "## Locks\n\n### Uncontended acquire + release (one thread)\n"
    );
    let _ = writeln!(
        w,
        "| lock | time | vs `std::sync::Mutex` |\n|---|---:|---:|"
    );
    let lrow = |w: &mut String, name: &str, d: &Result<Duration, BenchError>| {
        let _ = match d {
            Ok(d) => writeln!(
                w,
                "| {name} | {} | {} |",
                ns(d.as_nanos() as f64),
                ratio(d.as_nanos() as f64 / std_ns)
            ),
            Err(e) => writeln!(w, "| {name} | n/a: {e} | |"),
        };
    };
    lrow(w, "**mproc `Lock`**", &lock_mproc);
    lrow(w, "`std::sync::Mutex`", &Ok(lock_std));
    lrow(w, "`parking_lot::Mutex`", &Ok(lock_pl));
    lrow(w, "robust process-shared `pthread_mutex_t`", &lock_pthread);
    if let Some(p) = py_get("lock_uncontended_ns") {
        let _ = writeln!(
            w,
            "| Python `multiprocessing.Lock` | {} | {} |",
            ns(p),
            ratio(p / std_ns)
        );
    }
    let _ = writeln!(
        w,
        "\n### Hand-off between two processes\n\nTwo processes each run N × (acquire, increment a shared counter, release) from a common start; time until both finish ÷ 2N.\n"
    );
    let _ = writeln!(
        w,
        "| lock | time per acquire | vs pthread |\n|---|---:|---:|"
    );
    let pt = hand_pthread.as_ref().map_or(nan, |d| d.as_nanos() as f64);
    for (name, d) in [
        ("**mproc `Lock`**", &hand_mproc),
        ("robust process-shared `pthread_mutex_t`", &hand_pthread),
    ] {
        let _ = match d {
            Ok(d) => writeln!(
                w,
                "| {name} | {} | {} |",
                ns(d.as_nanos() as f64),
                ratio(d.as_nanos() as f64 / pt)
            ),
            Err(e) => writeln!(w, "| {name} | n/a: {e} | |"),
        };
    }
    let _ = writeln!(w);

    // Allocations and memory.
    let _ = writeln!(
        w,
        "## Heap allocations per message (steady state, one process, counting `#[global_allocator]`)\n"
    );
    let _ = writeln!(
        w,
        "| operation | allocs/msg | target (0 for inline sizes) |\n|---|---:|---|"
    );
    for (i, (name, r)) in alloc_rows.iter().enumerate() {
        let inline = matches!(i, 0 | 1 | 4);
        let _ = match r {
            Ok(a) => writeln!(
                w,
                "| {name} | {a:.3} | {} |",
                if inline {
                    Verdict::of(*a, *a == 0.0).label()
                } else {
                    "—"
                }
            ),
            Err(e) => writeln!(w, "| {name} | n/a: {e} | |"),
        };
    }
    let _ = writeln!(
        w,
        "\nThe cross-process tables above also give allocs/msg for the receiving process and allocs per round trip (one send + one receive) for the timing process.\n"
    );
    let _ = writeln!(
        w,
        "## Memory footprint (address space mapped when the object is created)\n\n| object | bytes mapped |\n|---|---:|"
    );
    for (name, r) in &footprint_rows {
        let _ = match r {
            Ok(b) => writeln!(w, "| {name} | {} ({:.1} KiB) |", b, *b as f64 / 1024.0),
            Err(e) => writeln!(w, "| {name} | n/a: {e} |"),
        };
    }
    let _ = writeln!(w);
    if let Err(e) = &py {
        let _ = writeln!(w, "Python figures missing: {e}\n");
    }
    let _ = writeln!(
        w,
        "## Notes\n\n* ipc-channel and iceoryx2 are built only with `--features peers` (iceoryx2's build needs libclang; `cargo xtask bench` adds the feature when libclang is found): {} iceoryx2 busy-polls its subscriber (publish-subscribe, one service per direction, `[u8]` samples copied in and out), so it is in the awake round-trip table only.\n* The naive ring and the raw `mproc-ring` transports spin while waiting (no futex): they measure the ring algorithms, and burn a core while idle.\n* crossbeam-channel runs between two threads of one process: a reference, not a competitor across processes.\n* POSIX mq holds at most 10 messages per queue (`msg_max`); 64 KiB messages exceed `msgsize_max` unless privileged.\n",
        if cfg!(feature = "peers") {
            "both are in this run."
        } else {
            "**neither is in this run**."
        }
    );

    // ---------------------------------------------------------------- chart
    let bars8: Vec<Bar> = tputs[0]
        .1
        .iter()
        .map(|c| Bar {
            label: c.name.to_owned(),
            value: c.result.as_ref().map_or(nan, |t| t.msgs_per_sec()),
            mproc: c.mproc,
        })
        .chain(pyq.map(|q| Bar {
            label: "Python mp.Queue".into(),
            value: q,
            mproc: false,
        }))
        .collect();
    let rtt_bars = |cells: &[Cell<Latency>], py_key: &str| -> Vec<Bar> {
        cells
            .iter()
            .map(|c| Bar {
                label: c.name.to_owned(),
                value: c.result.as_ref().map_or(nan, |l| l.percentile(50.0)),
                mproc: c.mproc,
            })
            .chain(py_get(py_key).map(|v| Bar {
                label: "Python mp.Pipe".into(),
                value: v * 1e3,
                mproc: false,
            }))
            .collect()
    };
    let svg = report::svg(
        "mproc vs the alternatives (cross-process unless marked threads)",
        &format!(
            "{} · {} cores · load {} · `cargo xtask bench`",
            machine.cpu, machine.cores, load_start
        ),
        &[
            Panel {
                title: "8-byte one-way throughput, messages/s (log scale, longer is better)".into(),
                fmt: |v| rate(v),
                bars: bars8,
            },
            Panel {
                title: "8-byte round trip p50, both awake (log scale, shorter is better)".into(),
                fmt: ns,
                bars: rtt_bars(&awake, "pipe_rtt_awake_p50_us"),
            },
            Panel {
                title: "8-byte round trip p50 after 1 ms idle (log scale, shorter is better)"
                    .into(),
                fmt: ns,
                bars: rtt_bars(&idle, "pipe_rtt_idle_p50_us"),
            },
        ],
    );

    // README table.
    let mut readme = String::new();
    let _ = writeln!(
        readme,
        "| mechanism | 8 B msg/s | round trip p50, awake | round trip p50, after idle |\n|---|---:|---:|---:|"
    );
    let mut names: Vec<&str> = tputs[0].1.iter().map(|c| c.name).collect();
    for c in awake.iter().chain(idle.iter()) {
        if !names.contains(&c.name) {
            names.push(c.name);
        }
    }
    for name in names {
        let t = get(&tputs[0].1, name).map_or("—".to_owned(), |t| rate(t.msgs_per_sec()));
        let a = get(&awake, name).map_or("—".to_owned(), |l| ns(l.percentile(50.0)));
        let i = get(&idle, name).map_or("—".to_owned(), |l| ns(l.percentile(50.0)));
        let bold = name.starts_with("mproc");
        let _ = writeln!(
            readme,
            "| {}{name}{} | {t} | {a} | {i} |",
            if bold { "**" } else { "" },
            if bold { "**" } else { "" }
        );
    }
    if let Some(q) = pyq {
        let a = py_get("queue_rtt_awake_p50_us").map_or("—".into(), |v| ns(v * 1e3));
        let i = py_get("queue_rtt_idle_p50_us").map_or("—".into(), |v| ns(v * 1e3));
        let _ = writeln!(
            readme,
            "| Python `multiprocessing.Queue` | {} | {a} | {i} |",
            rate(q)
        );
    }

    let write = |path: PathBuf, text: &str| {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(&path, text) {
            Ok(()) => eprintln!("[report] wrote {}", path.display()),
            Err(e) => eprintln!("[report] could not write {}: {e}", path.display()),
        }
    };
    write(out_dir.join("bench-report.md"), &md);
    write(out_dir.join("bench-report.svg"), &svg);
    write(out_dir.join("bench-readme.md"), &readme);
    if docs && !plan.quick {
        write(root.join("docs/bench.svg"), &svg);
    }
    print!("{md}");
}
