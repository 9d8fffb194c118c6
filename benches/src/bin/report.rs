//! `report`: runs every comparison with its own timing loops (so percentiles exist) and
//! writes `target/bench-report.md` and `target/bench-report.svg` (and, with `--docs`,
//! `docs/bench.svg` and `target/bench-readme.md`, the table the README shows).
//!
//! `cargo xtask bench` runs it; `--quick` runs one short iteration of every body (a smoke
//! run: figures from it are not worth quoting). Nothing asserts on time.
#![allow(clippy::disallowed_types)] // the counting allocator's counter, below

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mproc_benches::body::{self, Latency, Throughput};
use mproc_benches::mech::*;
use mproc_benches::report;
use mproc_benches::{BenchError, Payload, Transport, deadline, footprint, lock, mpmc};

#[path = "../report_sections/headline.rs"]
mod headline;
#[path = "../report_sections/markdown.rs"]
mod markdown;

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

/// The command line: `--quick`, `--docs`, `--out DIR` (anything else is ignored).
struct Options {
    plan: Plan,
    /// Also write `docs/bench.svg` (full runs only).
    docs: bool,
    /// The workspace root (`benches/`'s parent).
    root: PathBuf,
    /// Where the report files go (`--out`, default `<root>/target`).
    out_dir: PathBuf,
}

fn options() -> Options {
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
    Options {
        plan,
        docs,
        root,
        out_dir,
    }
}

/// The lock figures: uncontended (one thread) and hand-off between two processes.
struct Locks {
    uncontended_mproc: Result<Duration, BenchError>,
    uncontended_std: Duration,
    uncontended_parking_lot: Duration,
    uncontended_pthread: Result<Duration, BenchError>,
    handoff_mproc: Result<Duration, BenchError>,
    handoff_pthread: Result<Duration, BenchError>,
}

/// Everything one run measures, in the order [`measure`] takes it.
struct Measurements {
    machine: report::Machine,
    load_start: String,
    started: Instant,
    /// One throughput table per entry of [`SIZES`], in that order.
    tputs: Vec<(usize, Vec<Cell<Throughput>>)>,
    /// `Queue<u64>` `put_many`/`get_many`, 8 B, msg/s.
    batch8: Result<f64, BenchError>,
    awake: Vec<Cell<Latency>>,
    idle: Vec<Cell<Latency>>,
    /// 1→1, 2→2 and 4→4.
    mpmc: Vec<(u32, Result<mpmc::MpmcRun, BenchError>)>,
    locks: Locks,
    /// Allocations per message; rows 0, 1 and 4 are the inline sizes the target covers.
    allocs: Vec<(&'static str, Result<f64, BenchError>)>,
    footprint: Vec<(&'static str, Result<u64, BenchError>)>,
    /// Single-thread memcpy bandwidth, 1 KiB and 64 KiB.
    memcpy: Vec<(usize, f64)>,
    python: Result<Vec<(String, f64)>, String>,
    load_end: String,
}

impl Measurements {
    /// The 8-byte throughput table.
    fn tput8(&self) -> &[Cell<Throughput>] {
        &self.tputs[0].1
    }

    /// One of Python's figures, if python3 ran and printed it.
    fn py(&self, key: &str) -> Option<f64> {
        self.python
            .as_ref()
            .ok()
            .and_then(|v| v.iter().find(|(n, _)| n == key).map(|(_, x)| *x))
    }

    /// Python `multiprocessing.Queue`'s 8-byte throughput.
    fn py_queue(&self) -> Option<f64> {
        self.py("queue_tput_8B_msgs_per_s")
    }
}

/// Runs every measurement, one after another.
fn measure(plan: &Plan, root: &std::path::Path) -> Measurements {
    let machine = report::machine();
    let load_start = report::loadavg();
    let started = Instant::now();
    let tputs = SIZES
        .iter()
        .map(|&s| (s, throughput_table(s, plan)))
        .collect();
    let batch8 = batch_throughput(plan);
    let awake = rtt_table(plan, false);
    let idle = rtt_table(plan, true);
    let mpmc = mpmc_runs(plan);
    let locks = measure_locks(plan);
    progress("allocations and footprint");
    let allocs = alloc_rows();
    let footprint = footprint_rows();
    let memcpy = [1024usize, 65536]
        .iter()
        .map(|&s| (s, memcpy_bandwidth(s, plan.quick)))
        .collect();
    let python = python(plan, root);
    Measurements {
        machine,
        load_start,
        started,
        tputs,
        batch8,
        awake,
        idle,
        mpmc,
        locks,
        allocs,
        footprint,
        memcpy,
        python,
        load_end: report::loadavg(),
    }
}

fn batch_throughput(plan: &Plan) -> Result<f64, BenchError> {
    progress("throughput mproc Queue batch (put_many/get_many) 8 B");
    if plan.quick {
        mproc_benches::batch::queue_batch_throughput(200, 2_000)
    } else {
        mproc_benches::batch::queue_batch_throughput(200_000, 5_000_000)
    }
}

fn mpmc_runs(plan: &Plan) -> Vec<(u32, Result<mpmc::MpmcRun, BenchError>)> {
    progress("mpmc");
    [1, 2, 4]
        .iter()
        .map(|&k| (k, mpmc::run(k, k, plan.mpmc_per_producer)))
        .collect()
}

fn measure_locks(plan: &Plan) -> Locks {
    progress("locks");
    let n = plan.lock_uncontended;
    Locks {
        uncontended_mproc: lock::uncontended_mproc(n),
        uncontended_std: lock::uncontended_std(n),
        uncontended_parking_lot: lock::uncontended_parking_lot(n),
        uncontended_pthread: lock::uncontended_pthread(n),
        handoff_mproc: lock::handoff_mproc(plan.lock_handoff),
        handoff_pthread: lock::handoff_pthread(plan.lock_handoff),
    }
}

/// One labelled row, run (and announced) under its label.
fn row<T>(label: &'static str, f: impl FnOnce() -> T) -> (&'static str, T) {
    (label, traced(label, f))
}

fn alloc_rows() -> Vec<(&'static str, Result<f64, BenchError>)> {
    vec![
        row("Queue<u64> put + get", || {
            footprint::queue_put_get::<u64>(allocs)
        }),
        row("Queue<[u8; 64]> put + get", || {
            footprint::queue_put_get::<[u8; 64]>(allocs)
        }),
        row("Queue<[u8; 1024]> put + get (inline slot)", || {
            footprint::queue_put_get::<[u8; 1024]>(allocs)
        }),
        row("Queue<[u8; 65536]> put + get (arena)", || {
            footprint::queue_put_get::<[u8; 65536]>(allocs)
        }),
        row("Pipe send_bytes + recv_bytes_into, 8 B", || {
            footprint::pipe_bytes(8, allocs)
        }),
        row("Pipe send_bytes + recv_bytes_into, 1 KiB", || {
            footprint::pipe_bytes(1024, allocs)
        }),
        row("Pipe send + recv, Connection<u64>", || {
            footprint::pipe_typed_u64(allocs)
        }),
    ]
}

fn footprint_rows() -> Vec<(&'static str, Result<u64, BenchError>)> {
    vec![
        row("Queue<u64>, 256 slots, default arena (1 MiB)", || {
            footprint::queue_bytes(256, 1 << 20)
        }),
        row("Queue<u64>, 256 slots, smallest arena", || {
            footprint::queue_bytes(256, 1)
        }),
        row("Queue<u64>, 4096 slots, smallest arena", || {
            footprint::queue_bytes(4096, 1)
        }),
        row("Queue<u64>, 65536 slots, smallest arena", || {
            footprint::queue_bytes(65536, 1)
        }),
        row("Pipe (duplex, 64 KiB per direction)", || {
            footprint::mapped_by(|| mproc::pipe::<u64, u64>().map_err(mproc_benches::error::api))
        }),
    ]
}

/// Writes one output file, creating its directory; says on stderr what happened.
fn write_file(path: PathBuf, text: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&path, text) {
        Ok(()) => eprintln!("[report] wrote {}", path.display()),
        Err(e) => eprintln!("[report] could not write {}: {e}", path.display()),
    }
}

fn main() {
    let opts = options();
    let plan = opts.plan;
    // Backstop for any blocking call without its own timeout: the whole run is bounded.
    deadline::watchdog(if plan.quick { 600 } else { 3600 });

    let m = measure(&plan, &opts.root);
    let md = markdown::report(&m, &plan);
    let svg = headline::chart(&m);
    let readme = headline::readme_table(&m);

    write_file(opts.out_dir.join("bench-report.md"), &md);
    write_file(opts.out_dir.join("bench-report.svg"), &svg);
    write_file(opts.out_dir.join("bench-readme.md"), &readme);
    if opts.docs && !plan.quick {
        write_file(opts.root.join("docs/bench.svg"), &svg);
    }
    print!("{md}");
}
