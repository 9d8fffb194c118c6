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
//! | loom: CRATE/FILE | every `crates/*/tests/loom_*.rs`, release, bounded preemptions |
//! | bench build, bench smoke | `cargo bench --no-run`, then one short iteration of every comparison body (`cargo xtask bench --quick`) |
//! | fuzz build / fuzz: TARGET | every fuzz target, a short bounded run each (builds `cfg(fuzzing)`) |
//!
//! `--quick` keeps the first five steps. Release and loom builds use their own target
//! directories so that switching flags never throws away the debug build.

use crate::fuzz;
use crate::runner::{Matrix, Step};
use std::path::Path;

/// Seconds each fuzz target runs in the smoke step.
const FUZZ_SMOKE_SECONDS: u64 = 20;
const LOOM_RUSTFLAGS: &str = "--cfg mproc_loom -C debug-assertions";
const LOOM_TARGET_DIR: &str = "target/loom";

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

    matrix.run(
        Step::new(
            "clippy (loom cfg)",
            "cargo",
            &[
                "clippy",
                "-p",
                "mproc-shm",
                "-p",
                "mproc-ring",
                "-p",
                "mproc-futex",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            20,
        )
        .env("RUSTFLAGS", LOOM_RUSTFLAGS)
        .env("CARGO_TARGET_DIR", LOOM_TARGET_DIR),
    );
    matrix.run(unit_tests(nextest, true));
    for (krate, test) in loom_suites()? {
        matrix.run(
            Step::new(
                format!("loom: {krate}/{test}"),
                "cargo",
                &["test", "-p", &krate, "--release", "--test", &test],
                20,
            )
            .env("RUSTFLAGS", LOOM_RUSTFLAGS)
            .env("CARGO_TARGET_DIR", LOOM_TARGET_DIR)
            .env("LOOM_MAX_PREEMPTIONS", "2"),
        );
    }
    crate::bench::quick_steps(&mut matrix);
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

/// `(crate, test)` for every `crates/<crate>/tests/loom_*.rs`.
fn loom_suites() -> Result<Vec<(String, String)>, String> {
    let crates_dir = crate::project_root().join("crates");
    let mut suites = Vec::new();
    for krate in read_dir_sorted(&crates_dir)? {
        let tests_dir = crates_dir.join(&krate).join("tests");
        if !tests_dir.is_dir() {
            continue;
        }
        for file in read_dir_sorted(&tests_dir)? {
            if let Some(test) = file
                .strip_suffix(".rs")
                .filter(|stem| stem.starts_with("loom_"))
            {
                suites.push((krate.clone(), test.to_owned()));
            }
        }
    }
    Ok(suites)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
