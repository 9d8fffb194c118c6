//! The `report` binary's markdown report (`target/bench-report.md`), one function per
//! section. Part of the binary (`src/bin/report.rs` declares it with `#[path]`), not of the
//! library's `report` module (`src/report.rs`), whose formatting helpers it uses.

use std::fmt::Write as _;
use std::time::Duration;

use mproc_benches::body::{Latency, Throughput};
use mproc_benches::mech::*;
use mproc_benches::report::{Verdict, bytes_rate, ns, rate, ratio};
use mproc_benches::{BenchError, Transport};

use crate::{Cell, Measurements, Plan, get};

const NAN: f64 = f64::NAN;

/// The whole report, section by section.
pub(crate) fn report(m: &Measurements, plan: &Plan) -> String {
    let mut md = String::new();
    let w = &mut md;
    header(w, m, plan);
    targets(w, m);
    throughput(w, m);
    round_trips(w, m, false);
    round_trips(w, m, true);
    mpmc(w, m);
    locks(w, m);
    allocations(w, m);
    footprint(w, m);
    if let Err(e) = &m.python {
        let _ = writeln!(w, "Python figures missing: {e}\n");
    }
    notes(w);
    md
}

/// p50 of `name`'s round trips in `cells`, NaN if it failed or is absent.
fn p50(cells: &[Cell<Latency>], name: &str) -> f64 {
    get(cells, name)
        .map(|l| l.percentile(50.0))
        .unwrap_or(f64::NAN)
}

/// `name`'s messages per second in `cells`.
fn msgs(cells: &[Cell<Throughput>], name: &str) -> Option<f64> {
    get(cells, name).map(|t| t.msgs_per_sec())
}

/// The floor the awake table is compared to: two spinning flags.
fn spin_floor(m: &Measurements) -> f64 {
    p50(&m.awake, SpinFlag::NAME)
}

/// The floor the after-idle table is compared to: a bare futex.
fn futex_floor(m: &Measurements) -> f64 {
    p50(&m.idle, FutexFlag::NAME)
}

fn std_mutex_ns(m: &Measurements) -> f64 {
    m.locks.uncontended_std.as_nanos() as f64
}

fn header(w: &mut String, m: &Measurements, plan: &Plan) {
    let _ = writeln!(w, "# mproc benchmark report\n");
    let _ = writeln!(
        w,
        "* machine: **{}**, {} cores, Linux {}\n* load average (1/5/15 min): {} at start, {} at end — a shared machine; other jobs ran beside this one\n* mode: {}; wall time {:.0} s\n* reproduce: `cargo xtask bench` (this report: `cargo run --profile bench -p mproc-benches{} --bin report`)\n",
        m.machine.cpu,
        m.machine.cores,
        m.machine.kernel,
        m.load_start,
        m.load_end,
        if plan.quick {
            "**quick (smoke run; figures not meaningful)**"
        } else {
            "full"
        },
        m.started.elapsed().as_secs_f64(),
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
}

/// The targets table (issue 7): throughput, round-trip, lock and allocation rows.
fn targets(w: &mut String, m: &Measurements) {
    let _ = writeln!(w, "## Targets (issue 7)\n");
    let _ = writeln!(w, "| target | measured | verdict |\n|---|---|---|");
    throughput_targets(w, m);
    round_trip_targets(w, m);
    lock_and_alloc_targets(w, m);
}

fn throughput_targets(w: &mut String, m: &Measurements) {
    let t8 = m.tput8();
    let q8 = msgs(t8, QueueT::<u64>::NAME);
    let pipe8 = msgs(t8, Pipe2::NAME);
    let lamport8 = msgs(t8, Lamport::NAME);
    let spsc8 = msgs(t8, RawSpsc::NAME);
    let pyq = m.py_queue();
    let msg_rates = Shown {
        fmt: rate,
        unit: " msg/s",
    };
    compare_row(
        w,
        "`Queue<u64>` 1→1 ≥ 10× `pipe(2)` 8-byte throughput",
        (q8.unwrap_or(NAN), pipe8.unwrap_or(NAN)),
        msg_rates,
        |r| r >= 10.0,
    );
    compare_row(
        w,
        "`Queue<u64>` ≥ 100× Python `multiprocessing.Queue`",
        (q8.unwrap_or(NAN), pyq.unwrap_or(NAN)),
        msg_rates,
        |r| r >= 100.0,
    );
    let batch = m.batch8.as_ref().ok().copied();
    let r3 = batch.zip(lamport8).map_or(NAN, |(a, b)| a / b);
    let _ = writeln!(
        w,
        "| batch put/get within 2× of the naive ring (`Queue<u64>` `put_many`/`get_many`, {}-item batches) | {} of the naive ring ({} vs {} msg/s; {}) | {} |",
        mproc_benches::batch::BATCH,
        ratio(r3),
        rate(batch.unwrap_or(NAN)),
        rate(lamport8.unwrap_or(NAN)),
        match &m.batch8 {
            Ok(_) => "needs ≥ 0.5×".to_owned(),
            Err(e) => format!("error: {e}"),
        },
        Verdict::of(r3, r3 >= 0.5).label()
    );
    compare_row(
        w,
        "raw SPSC ≥ 0.8× naive ring, 8 B",
        (spsc8.unwrap_or(NAN), lamport8.unwrap_or(NAN)),
        msg_rates,
        |r| r >= 0.8,
    );
    for (i, &(size, bw)) in m.memcpy.iter().enumerate() {
        let spsc = msgs(&m.tputs[2 + i].1, RawSpsc::NAME).map(|t| t * size as f64);
        compare_row(
            w,
            &format!("raw SPSC ≥ 0.8× memcpy bandwidth, {size} B"),
            (spsc.unwrap_or(NAN), bw),
            Shown {
                fmt: bytes_rate,
                unit: " single-thread memcpy",
            },
            |r| r >= 0.8,
        );
    }
}

/// How [`compare_row`] shows the two figures it compares: each through `fmt`, `unit` after
/// the second.
#[derive(Clone, Copy)]
struct Shown {
    fmt: fn(f64) -> String,
    unit: &'static str,
}

/// A targets row that compares two figures: `| target | ours/theirs (ours vs theirs unit) |
/// verdict |`, the ratio met when `met` holds (not measured when either is NaN).
fn compare_row(
    w: &mut String,
    target: &str,
    (ours, theirs): (f64, f64),
    shown: Shown,
    met: impl Fn(f64) -> bool,
) {
    let r = ours / theirs;
    let _ = writeln!(
        w,
        "| {target} | {} ({} vs {}{}) | {} |",
        ratio(r),
        (shown.fmt)(ours),
        (shown.fmt)(theirs),
        shown.unit,
        Verdict::of(r, met(r)).label()
    );
}

fn round_trip_targets(w: &mut String, m: &Measurements) {
    let spin_floor = spin_floor(m);
    mproc_p50s(
        w,
        &m.awake,
        spin_floor,
        "round trip awake ≤ 2× spin floor (p50)",
        |r| r <= 2.0,
    );
    // iceoryx2's awake p50 (NaN if its run failed); None when it is not built in.
    #[cfg(feature = "peers")]
    let iceoryx2_p50 = Some(p50(&m.awake, Iceoryx2::NAME));
    #[cfg(not(feature = "peers"))]
    let iceoryx2_p50: Option<f64> = None;
    match iceoryx2_p50 {
        Some(ice) => mproc_p50s(
            w,
            &m.awake,
            ice,
            "round trip awake faster than iceoryx2 (p50)",
            |r| r < 1.0,
        ),
        None => {
            let _ = writeln!(
                w,
                "| round trip awake faster than iceoryx2 | iceoryx2 not built in this run (`--features peers`, needs libclang; see notes) | {} |",
                Verdict::NotMeasured.label()
            );
        }
    }
    mproc_p50s(
        w,
        &m.idle,
        futex_floor(m),
        "round trip after idle ≤ 1.2× bare futex (p50)",
        |r| r <= 1.2,
    );
}

/// One targets row per mproc round-tripper (`Queue<u64>`, `Pipe`): its p50 in `cells`
/// against `against` ns.
fn mproc_p50s(
    w: &mut String,
    cells: &[Cell<Latency>],
    against: f64,
    target: &str,
    met: fn(f64) -> bool,
) {
    for name in [QueueT::<u64>::NAME, MprocPipe::NAME] {
        let shown = Shown { fmt: ns, unit: "" };
        let figures = (p50(cells, name), against);
        compare_row(w, &format!("{name} {target}"), figures, shown, met);
    }
}

fn lock_and_alloc_targets(w: &mut String, m: &Measurements) {
    let std_ns = std_mutex_ns(m);
    let lock_mproc = &m.locks.uncontended_mproc;
    let lr = lock_mproc
        .as_ref()
        .map_or(NAN, |d| d.as_nanos() as f64 / std_ns);
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
    let inline_allocs: Vec<f64> = m
        .allocs
        .iter()
        .take(2)
        .chain(m.allocs.iter().skip(4).take(1))
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    let worst = inline_allocs
        .iter()
        .cloned()
        .fold(if inline_allocs.is_empty() { NAN } else { 0.0 }, f64::max);
    let _ = writeln!(
        w,
        "| zero heap allocations per message, inline sizes | worst {worst:.3} allocs/msg (`Queue<u64>`, `Queue<[u8; 64]>`, Pipe 8 B) | {} |\n",
        Verdict::of(worst, worst == 0.0).label()
    );
}

/// One-way throughput: one table per message size.
fn throughput(w: &mut String, m: &Measurements) {
    let _ = writeln!(
        w,
        "## One-way throughput (1 producer process → 1 consumer process)\n"
    );
    let _ = writeln!(
        w,
        "The peer sends as fast as it can; this process receives, checks and times the messages after a warm-up. Rings have 256 slots (16 for 64 KiB); `Queue` carries up to 1 KiB inline (slot sized to fit) and 64 KiB through its arena. *allocs/msg* counts the receiving process's heap allocations.\n"
    );
    for (size, cells) in &m.tputs {
        throughput_table(w, m, *size, cells);
    }
}

fn throughput_table(w: &mut String, m: &Measurements, size: usize, cells: &[Cell<Throughput>]) {
    let base_pipe = msgs(cells, Pipe2::NAME).unwrap_or(NAN);
    let base_ring = msgs(cells, Lamport::NAME).unwrap_or(NAN);
    let _ = writeln!(w, "### {size} B\n");
    let _ = writeln!(
        w,
        "| mechanism | msg/s | bytes/s | allocs/msg | vs pipe(2) | vs naive ring |\n|---|---:|---:|---:|---:|---:|"
    );
    for c in cells {
        match &c.result {
            Ok(t) => {
                let mps = t.msgs_per_sec();
                let _ = writeln!(
                    w,
                    "| {b}{}{b} | {} | {} | {:.3} | {} | {} |",
                    c.name,
                    rate(mps),
                    bytes_rate(mps * size as f64),
                    t.allocs as f64 / t.msgs as f64,
                    ratio(mps / base_pipe),
                    ratio(mps / base_ring),
                    b = if c.mproc { "**" } else { "" }
                );
            }
            Err(e) => {
                let _ = writeln!(w, "| {} | n/a: {e} | | | | |", c.name);
            }
        }
    }
    if size == 8 {
        for (label, q) in [
            ("Python `multiprocessing.Queue`", m.py_queue()),
            ("Python `Pipe` send_bytes", m.py("pipe_tput_8B_msgs_per_s")),
        ] {
            let Some(q) = q else { continue };
            let _ = writeln!(
                w,
                "| {label} | {} | {} | | {} | {} |",
                rate(q),
                bytes_rate(q * 8.0),
                ratio(q / base_pipe),
                ratio(q / base_ring)
            );
        }
    }
    let _ = writeln!(w);
}

/// One round-trip table: both sides awake, or after the receiver idled.
fn round_trips(w: &mut String, m: &Measurements, idle: bool) {
    let (title, cells, base_name, base, note, regime) = if idle {
        (
            "Round trip after idle (receiver slept 1 ms before each ping)",
            &m.idle,
            "bare futex",
            futex_floor(m),
            "This process sleeps 1 ms before each ping, so the peer has gone to sleep (futex or blocking syscall) and every ping must wake it. Spinning-only transports are left out (they never sleep). The bare futex floor sleeps in `FUTEX_WAIT` at once and wakes with one `FUTEX_WAKE` per message.",
            "idle",
        )
    } else {
        (
            "Round trip, both sides awake (8 B ping-pong)",
            &m.awake,
            "spin floor",
            spin_floor(m),
            "Back-to-back ping-pong: the peer is always waiting, so spin-then-park transports catch each message while spinning. The spin floor is one shared word per direction, both sides spinning.",
            "awake",
        )
    };
    let _ = writeln!(
        w,
        "## {title}\n\n{note} Percentiles by nearest rank; each sample includes two clock reads (~40 ns).\n"
    );
    let _ = writeln!(
        w,
        "| mechanism | p50 | p99 | p99.9 | samples | allocs/round trip | p50 vs {base_name} |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for c in cells {
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
    for (label, key) in [("Python `Pipe`", "pipe"), ("Python `Queue`", "queue")] {
        if let (Some(a), Some(b), Some(c)) = (
            m.py(&format!("{key}_rtt_{regime}_p50_us")),
            m.py(&format!("{key}_rtt_{regime}_p99_us")),
            m.py(&format!("{key}_rtt_{regime}_p99.9_us")),
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

fn mpmc(w: &mut String, m: &Measurements) {
    let _ = writeln!(
        w,
        "## MPMC: P producer processes → C consumer processes, one `Queue<u64>`\n"
    );
    let _ = writeln!(
        w,
        "This machine has {} cores: 2→2 runs 4 busy processes and 4→4 runs 8, so beyond 1→1 the figures measure contention plus time-slicing (a descheduled producer or consumer holds its slot claim until it runs again; its peers spin, then sleep), not parallel speed-up.\n",
        m.machine.cores
    );
    let _ = writeln!(
        w,
        "| P→C | items | msg/s (total) | vs 1→1 |\n|---|---:|---:|---:|"
    );
    let one = m
        .mpmc
        .first()
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|r| r.items as f64 / r.elapsed.as_secs_f64());
    for (k, r) in &m.mpmc {
        match r {
            Ok(r) => {
                let rate_k = r.items as f64 / r.elapsed.as_secs_f64();
                let _ = writeln!(
                    w,
                    "| {k}→{k} | {} | {} | {} |",
                    r.items,
                    rate(rate_k),
                    ratio(one.map_or(NAN, |o| rate_k / o))
                );
            }
            Err(e) => {
                let _ = writeln!(w, "| {k}→{k} | n/a: {e} | | |");
            }
        }
    }
    let _ = writeln!(w);
}

/// A lock table row: `name`, its time, and that time against `base` ns.
fn lock_row(w: &mut String, name: &str, d: &Result<Duration, BenchError>, base: f64) {
    let _ = match d {
        Ok(d) => writeln!(
            w,
            "| {name} | {} | {} |",
            ns(d.as_nanos() as f64),
            ratio(d.as_nanos() as f64 / base)
        ),
        Err(e) => writeln!(w, "| {name} | n/a: {e} | |"),
    };
}

fn locks(w: &mut String, m: &Measurements) {
    let l = &m.locks;
    let std_ns = std_mutex_ns(m);
    let _ = writeln!(
        w,
        "## Locks\n\n### Uncontended acquire + release (one thread)\n"
    );
    let _ = writeln!(
        w,
        "| lock | time | vs `std::sync::Mutex` |\n|---|---:|---:|"
    );
    lock_row(w, "**mproc `Lock`**", &l.uncontended_mproc, std_ns);
    lock_row(w, "`std::sync::Mutex`", &Ok(l.uncontended_std), std_ns);
    lock_row(
        w,
        "`parking_lot::Mutex`",
        &Ok(l.uncontended_parking_lot),
        std_ns,
    );
    lock_row(
        w,
        "robust process-shared `pthread_mutex_t`",
        &l.uncontended_pthread,
        std_ns,
    );
    if let Some(p) = m.py("lock_uncontended_ns") {
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
    let pt = l
        .handoff_pthread
        .as_ref()
        .map_or(NAN, |d| d.as_nanos() as f64);
    lock_row(w, "**mproc `Lock`**", &l.handoff_mproc, pt);
    lock_row(
        w,
        "robust process-shared `pthread_mutex_t`",
        &l.handoff_pthread,
        pt,
    );
    let _ = writeln!(w);
}

fn allocations(w: &mut String, m: &Measurements) {
    let _ = writeln!(
        w,
        "## Heap allocations per message (steady state, one process, counting `#[global_allocator]`)\n"
    );
    let _ = writeln!(
        w,
        "| operation | allocs/msg | target (0 for inline sizes) |\n|---|---:|---|"
    );
    for (i, (name, r)) in m.allocs.iter().enumerate() {
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
}

fn footprint(w: &mut String, m: &Measurements) {
    let _ = writeln!(
        w,
        "## Memory footprint (address space mapped when the object is created)\n\n| object | bytes mapped |\n|---|---:|"
    );
    for (name, r) in &m.footprint {
        let _ = match r {
            Ok(b) => writeln!(w, "| {name} | {} ({:.1} KiB) |", b, *b as f64 / 1024.0),
            Err(e) => writeln!(w, "| {name} | n/a: {e} |"),
        };
    }
    let _ = writeln!(w);
}

fn notes(w: &mut String) {
    let _ = writeln!(
        w,
        "## Notes\n\n* ipc-channel and iceoryx2 are built only with `--features peers` (iceoryx2's build needs libclang; `cargo xtask bench` adds the feature when libclang is found): {} iceoryx2 busy-polls its subscriber (publish-subscribe, one service per direction, `[u8]` samples copied in and out), so it is in the awake round-trip table only.\n* The naive ring and the raw `mproc-ring` transports spin while waiting (no futex): they measure the ring algorithms, and burn a core while idle.\n* crossbeam-channel runs between two threads of one process: a reference, not a competitor across processes.\n* POSIX mq holds at most 10 messages per queue (`msg_max`); 64 KiB messages exceed `msgsize_max` unless privileged.\n",
        if cfg!(feature = "peers") {
            "both are in this run."
        } else {
            "**neither is in this run**."
        }
    );
}
