//! `cargo xtask bench`: the comparison report and every criterion bench in the workspace.
//!
//! | mode | steps |
//! |---|---|
//! | `bench` | the report (`mproc-benches`' `report` binary: every mechanism, percentiles, targets, chart → `target/bench-report.md`, `target/bench-report.svg`, `docs/bench.svg`), then `cargo bench --workspace` (criterion, under `target/criterion`) |
//! | `bench --quick` | `cargo bench --workspace --no-run`, then the report binary's `--quick` mode: one short iteration of every body (a smoke run for CI; its figures mean nothing) |
//!
//! Figures are only ever reported, never asserted: the machines are shared and noisy.

use crate::runner::{Matrix, Step};

/// The report binary, built with the bench profile (LTO, like the criterion benches).
const REPORT: &[&str] = &[
    "run",
    "--profile",
    "bench",
    "-p",
    "mproc-benches",
    "--bin",
    "report",
    "--",
];

pub(crate) fn run(quick: bool) -> Result<(), String> {
    let mut matrix = Matrix::default();
    if quick {
        quick_steps(&mut matrix);
    } else {
        let mut args = REPORT.to_vec();
        args.push("--docs");
        matrix.run(Step::new("bench report", "cargo", &args, 60));
        matrix.run(Step::new("bench", "cargo", &["bench", "--workspace"], 120));
    }
    matrix.finish()
}

/// The quick mode's steps (also run by `cargo xtask test`): build every bench, then one
/// short iteration of every comparison body.
pub(crate) fn quick_steps(matrix: &mut Matrix) {
    matrix.run(Step::new(
        "bench build",
        "cargo",
        &["bench", "--workspace", "--no-run"],
        25,
    ));
    let mut args = REPORT.to_vec();
    args.push("--quick");
    matrix.run(Step::new(
        "bench smoke (report --quick)",
        "cargo",
        &args,
        10,
    ));
}
