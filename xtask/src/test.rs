//! `cargo xtask test`: the whole matrix, in the order that fails fastest.
//!
//! | step | what |
//! |---|---|
//! | fmt | `cargo fmt --all --check` |
//! | clippy | `-D warnings` on all targets |
//! | test (debug) | every unit and integration test (nextest when installed: per-test time limits) |
//! | doctest | doc tests |
//! | doc | rustdoc with `-D warnings` |
//! | clippy (loom cfg) | the `mproc_loom` arm of the three lower crates compiles and is lint-clean (the facade has no loom mode: it refuses to build under that cfg) |
//! | test (release) | the suites again in release: multi-process stress runs at full size |
//! | loom build, loom: CRATE/FILE::MODEL | every model of every `crates/*/tests/loom_*.rs`, each its own step (see [`mod@crate::loom`]), release, bounded preemptions |
//! | torture build, torture (40 s) | SIGKILL storms over queues and semaphores with a ledger (see [`mod@crate::torture`]); known open bugs reported, not failed |
//! | bench build, bench smoke | `cargo bench --no-run`, then one short iteration of every comparison body (`cargo xtask bench --quick`) |
//! | fuzz build / fuzz: TARGET | every fuzz target, a short bounded run each (builds `cfg(fuzzing)`) |
//!
//! `--quick` keeps the first five steps. Release and loom builds use their own target
//! directories so that switching flags never throws away the debug build.

use crate::runner::{Matrix, Outcome, Step};
use crate::{fuzz, loom, torture};

/// Seconds of SIGKILL storms in the torture step (shared by its scenarios).
const TORTURE_SECONDS: u64 = 40;
/// Seconds each fuzz target runs in the smoke step.
const FUZZ_SMOKE_SECONDS: u64 = 20;

pub(crate) fn run(quick: bool) -> Result<(), String> {
    let mut matrix = Matrix::default();
    let nextest = has_nextest();

    matrix.run(Step::new("fmt", "cargo", &["fmt", "--all", "--check"], 3));
    matrix.run(Step::new(
        "clippy",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        25,
    ));
    matrix.run(unit_tests(nextest, false));
    matrix.run(Step::new(
        "doctest",
        "cargo",
        &["test", "--workspace", "--doc"],
        15,
    ));
    matrix.run(
        Step::new("doc", "cargo", &["doc", "--workspace", "--no-deps"], 10)
            .env("RUSTDOCFLAGS", "-D warnings"),
    );
    if quick {
        return matrix.finish();
    }

    let mut loom_clippy = vec!["clippy"];
    for krate in loom::CRATES {
        loom_clippy.extend(["-p", krate]);
    }
    loom_clippy.extend(["--all-targets", "--", "-D", "warnings"]);
    matrix.run(
        Step::new("clippy (loom cfg)", "cargo", &loom_clippy, 20)
            .env("RUSTFLAGS", loom::RUSTFLAGS)
            .env("CARGO_TARGET_DIR", loom::TARGET_DIR),
    );
    matrix.run(unit_tests(nextest, true));
    loom::steps(&mut matrix, None)?;
    crate::bench::quick_steps(&mut matrix);
    if *matrix.run(torture::build_step()) == Outcome::Passed {
        matrix.run(torture::step(TORTURE_SECONDS, &[], &[]));
    } else {
        matrix.skip("torture", "the torture build failed");
    }
    fuzz::smoke(&mut matrix, FUZZ_SMOKE_SECONDS)?;
    matrix.finish()
}

/// The unit and integration suites, with nextest's per-test time limits when it is there.
fn unit_tests(nextest: bool, release: bool) -> Step {
    let name = if release {
        "test (release)"
    } else {
        "test (debug)"
    };
    let mut args = if nextest {
        vec!["nextest", "run", "--workspace", "--profile", "ci"]
    } else {
        vec!["test", "--workspace", "--all-targets"]
    };
    if release {
        args.push("--release");
    }
    let step = Step::new(name, "cargo", &args, 30);
    if release {
        // Distinct directory: a release build must not evict the debug one, and vice versa.
        step.env("CARGO_TARGET_DIR", "target/release-tests")
    } else {
        step
    }
}

fn has_nextest() -> bool {
    std::process::Command::new("cargo")
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
