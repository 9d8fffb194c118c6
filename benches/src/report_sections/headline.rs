//! The `report` binary's headline views of one run — the SVG chart
//! (`target/bench-report.svg`, `docs/bench.svg`) and the README table
//! (`target/bench-readme.md`): 8-byte throughput and round-trip p50 per mechanism. Part of
//! the binary (`src/bin/report.rs` declares it with `#[path]`), not of the library's
//! `report` module.

use std::fmt::Write as _;

use mproc_benches::body::Latency;
use mproc_benches::report::{self, Bar, Panel, ns, rate};

use crate::{Cell, Measurements, get};

/// The chart: 8-byte throughput, then round-trip p50 awake and after idle.
pub(crate) fn chart(m: &Measurements) -> String {
    let bars8: Vec<Bar> = m
        .tput8()
        .iter()
        .map(|c| Bar {
            label: c.name.to_owned(),
            value: c.result.as_ref().map_or(f64::NAN, |t| t.msgs_per_sec()),
            mproc: c.mproc,
        })
        .chain(m.py_queue().map(|q| Bar {
            label: "Python mp.Queue".into(),
            value: q,
            mproc: false,
        }))
        .collect();
    report::svg(
        "mproc vs the alternatives (cross-process unless marked threads)",
        &format!(
            "{} · {} cores · load {} · `cargo xtask bench`",
            m.machine.cpu, m.machine.cores, m.load_start
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
                bars: rtt_bars(m, &m.awake, "pipe_rtt_awake_p50_us"),
            },
            Panel {
                title: "8-byte round trip p50 after 1 ms idle (log scale, shorter is better)"
                    .into(),
                fmt: ns,
                bars: rtt_bars(m, &m.idle, "pipe_rtt_idle_p50_us"),
            },
        ],
    )
}

/// One bar per round-trip cell (p50), then Python's `Pipe` from `py_key` (µs) if it ran.
fn rtt_bars(m: &Measurements, cells: &[Cell<Latency>], py_key: &str) -> Vec<Bar> {
    cells
        .iter()
        .map(|c| Bar {
            label: c.name.to_owned(),
            value: c.result.as_ref().map_or(f64::NAN, |l| l.percentile(50.0)),
            mproc: c.mproc,
        })
        .chain(m.py(py_key).map(|v| Bar {
            label: "Python mp.Pipe".into(),
            value: v * 1e3,
            mproc: false,
        }))
        .collect()
}

/// The README's table: every mechanism of the 8-byte throughput and round-trip tables.
pub(crate) fn readme_table(m: &Measurements) -> String {
    let mut readme = String::new();
    let _ = writeln!(
        readme,
        "| mechanism | 8 B msg/s | round trip p50, awake | round trip p50, after idle |\n|---|---:|---:|---:|"
    );
    let mut names: Vec<&str> = m.tput8().iter().map(|c| c.name).collect();
    for c in m.awake.iter().chain(m.idle.iter()) {
        if !names.contains(&c.name) {
            names.push(c.name);
        }
    }
    for name in names {
        let t = get(m.tput8(), name).map_or("—".to_owned(), |t| rate(t.msgs_per_sec()));
        let a = get(&m.awake, name).map_or("—".to_owned(), |l| ns(l.percentile(50.0)));
        let i = get(&m.idle, name).map_or("—".to_owned(), |l| ns(l.percentile(50.0)));
        let bold = name.starts_with("mproc");
        let _ = writeln!(
            readme,
            "| {}{name}{} | {t} | {a} | {i} |",
            if bold { "**" } else { "" },
            if bold { "**" } else { "" }
        );
    }
    if let Some(q) = m.py_queue() {
        let a = m
            .py("queue_rtt_awake_p50_us")
            .map_or("—".into(), |v| ns(v * 1e3));
        let i = m
            .py("queue_rtt_idle_p50_us")
            .map_or("—".into(), |v| ns(v * 1e3));
        let _ = writeln!(
            readme,
            "| Python `multiprocessing.Queue` | {} | {a} | {i} |",
            rate(q)
        );
    }
    readme
}
