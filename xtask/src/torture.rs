//! `cargo xtask torture [--secs N] [--scenario NAME]... [--strict]`: SIGKILL storms over
//! mproc's queues and semaphores (the `mproc-torture` binary, `torture/`), built in release
//! and run under a time limit.
//!
//! The binary runs each scenario for its share of `--secs` (default 60), then drains and
//! checks its ledger: no duplicate, no corrupt item, no uncounted loss, no stall, `join`
//! neither hanging nor returning early, permits conserved. Known open bugs (its
//! `KNOWN_FAILURES` table) are reported without failing the run unless `--strict`. The
//! step's limit is the storm time plus a bounded drain per scenario plus a minute.

use crate::runner::{Matrix, Outcome, Step};

/// Default storm time of `cargo xtask torture`, in seconds.
pub(crate) const DEFAULT_SECS: u64 = 60;

/// The build step: the torture binary in release.
pub(crate) fn build_step() -> Step {
    Step::new(
        "torture build",
        "cargo",
        &["build", "--release", "-p", "mproc-torture"],
        20,
    )
}

/// The storm step: `secs` of storms over `scenarios` (all when empty), with `extra`
/// arguments passed through (`--strict`, `--stall-ms MS`, ...). Run [`build_step`] first.
pub(crate) fn step(secs: u64, scenarios: &[&str], extra: &[&str]) -> Step {
    let secs_arg = secs.to_string();
    let mut args = vec![
        "run",
        "--release",
        "-q",
        "-p",
        "mproc-torture",
        "--",
        "--secs",
        &secs_arg,
    ];
    for name in scenarios {
        args.extend(["--scenario", name]);
    }
    args.extend(extra);
    // Each scenario's drain, final checks and stragglers take at most ~20 s.
    let minutes = (secs + 20 * 6).div_ceil(60) + 1;
    Step::new(format!("torture ({secs} s)"), "cargo", &args, minutes)
}

pub(crate) fn run(args: &[&str]) -> Result<(), String> {
    let mut secs = DEFAULT_SECS;
    let mut scenarios = Vec::new();
    let mut extra = Vec::new();
    let valued = [
        ("--secs", "a number"),
        ("--scenario", "a name"),
        ("--stall-ms", "a value"),
        ("--join-ms", "a value"),
        ("--seed", "a value"),
    ];
    for (arg, value) in crate::with_values(args, &valued)? {
        match (arg, value) {
            ("--secs", Some(value)) => {
                secs = value
                    .parse()
                    .map_err(|_| format!("--secs must be a whole number, not {value:?}"))?;
            }
            ("--scenario", Some(name)) => scenarios.push(name),
            ("--strict", None) => extra.push(arg),
            ("--stall-ms" | "--join-ms" | "--seed", Some(value)) => extra.extend([arg, value]),
            _ => return Err(format!("torture: unknown argument {arg:?}")),
        }
    }
    let mut matrix = Matrix::default();
    if *matrix.run(build_step()) != Outcome::Passed {
        return matrix.finish();
    }
    matrix.run(step(secs, &scenarios, &extra));
    matrix.finish()
}
