//! The loom suites: every model in its own step, so one model's verdict never hides another's.
//!
//! loom reports a deadlock (a lost wake-up, say) by aborting the process, which would end
//! every later model of the same test binary unseen. So the binaries are built once, their
//! models listed (`--list`), and each model runs as its own bounded step
//! (`--exact NAME`): a deadlock or a hang fails that model's row of the table and the rest
//! still run.
//!
//! An `#[ignore]`d model is a *canary*: a model over a deliberately broken primitive (a
//! lock whose wake does nothing, say) that must fail, which shows that the suite can. It
//! runs with `--ignored` and its step passes only when the model fails.
//!
//! `cargo xtask loom [FILTER]` runs the models whose `crate/file::model` name contains
//! FILTER; `cargo xtask test` runs them all.

use crate::runner::{Matrix, Outcome, Step};
use std::path::Path;
use std::process::{Command, Stdio};

/// The cfg and assertions every loom build uses (DESIGN.md, "Loom, concretely").
pub(crate) const RUSTFLAGS: &str = "--cfg mproc_loom -C debug-assertions";
/// Its own target directory, so switching flags never throws away the ordinary builds.
pub(crate) const TARGET_DIR: &str = "target/loom";
/// The preemption bound of the whole matrix; a model may tighten or widen its own through
/// `loom::model::Builder`.
const MAX_PREEMPTIONS: &str = "2";
/// Minutes one model may run before its step is killed (and fails).
const MODEL_MINUTES: u64 = 10;
/// The crates whose algorithms loom models (the facade refuses the loom cfg).
pub(crate) const CRATES: [&str; 4] = ["mproc-core", "mproc-shm", "mproc-ring", "mproc-futex"];

/// One `crates/<krate>/tests/<file>.rs` loom suite.
#[derive(Debug, Clone)]
pub(crate) struct Suite {
    pub(crate) krate: String,
    pub(crate) file: String,
}

impl Suite {
    /// `cargo test` arguments that build and run this suite's binary (release).
    fn cargo_test(&self) -> [&str; 6] {
        ["test", "--release", "-p", &self.krate, "--test", &self.file]
    }
}

/// Builds every loom suite, then runs each model (whose name contains `filter`) as a step.
pub(crate) fn steps(matrix: &mut Matrix, filter: Option<&str>) -> Result<(), String> {
    let suites = suites()?;
    let mut build = vec!["test", "--release", "--no-run"];
    for suite in &suites {
        build.extend(["-p", &suite.krate, "--test", &suite.file]);
    }
    if *matrix.run(loom_step("loom build", &build, 20)) != Outcome::Passed {
        matrix.skip("loom models", "the loom build failed");
        return Ok(());
    }
    for suite in &suites {
        let models = match list_models(suite) {
            Ok(models) => models,
            Err(why) => {
                matrix.record_failure(&format!("loom: {}/{}", suite.krate, suite.file), &why);
                continue;
            }
        };
        if models.is_empty() {
            matrix.record_failure(
                &format!("loom: {}/{}", suite.krate, suite.file),
                "the suite lists no model",
            );
        }
        for (model, canary) in models {
            let kind = if canary { "loom canary" } else { "loom" };
            let name = format!("{kind}: {}/{}::{model}", suite.krate, suite.file);
            if filter.is_some_and(|f| !name.contains(f)) {
                continue;
            }
            let mut args = suite.cargo_test().to_vec();
            args.extend(["--", "--exact", &model]);
            if canary {
                args.push("--ignored");
                matrix.run(loom_step(&name, &args, MODEL_MINUTES).must_fail());
            } else {
                matrix.run(loom_step(&name, &args, MODEL_MINUTES));
            }
        }
    }
    Ok(())
}

/// `cargo xtask loom [FILTER]`: the loom matrix alone.
pub(crate) fn run(filter: Option<&str>) -> Result<(), String> {
    let mut matrix = Matrix::default();
    steps(&mut matrix, filter)?;
    matrix.finish()
}

fn loom_step(name: &str, args: &[&str], minutes: u64) -> Step {
    Step::new(name, "cargo", args, minutes)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("CARGO_TARGET_DIR", TARGET_DIR)
        .env("LOOM_MAX_PREEMPTIONS", MAX_PREEMPTIONS)
}

/// The models of one suite, as libtest's `--list --format terse` names them, each with
/// whether it is a canary (`#[ignore]`d).
fn list_models(suite: &Suite) -> Result<Vec<(String, bool)>, String> {
    let all = list(suite, false)?;
    let ignored = list(suite, true)?;
    Ok(all
        .into_iter()
        .map(|model| {
            let canary = ignored.contains(&model);
            (model, canary)
        })
        .collect())
}

fn list(suite: &Suite, ignored_only: bool) -> Result<Vec<String>, String> {
    let output = Command::new("cargo")
        .args(suite.cargo_test())
        .args(["--", "--list", "--format", "terse"])
        .args(ignored_only.then_some("--ignored"))
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("CARGO_TARGET_DIR", TARGET_DIR)
        .current_dir(crate::project_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run cargo to list the models: {e}"))?;
    if !output.status.success() {
        return Err(format!("listing the models failed: {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// Every `crates/<crate>/tests/loom_*.rs`, sorted by crate, then file.
pub(crate) fn suites() -> Result<Vec<Suite>, String> {
    let crates_dir = crate::project_root().join("crates");
    let mut suites = Vec::new();
    for krate in read_dir_sorted(&crates_dir)? {
        let tests_dir = crates_dir.join(&krate).join("tests");
        if !tests_dir.is_dir() {
            continue;
        }
        for file in read_dir_sorted(&tests_dir)? {
            if let Some(stem) = file
                .strip_suffix(".rs")
                .filter(|stem| stem.starts_with("loom_"))
            {
                suites.push(Suite {
                    krate: krate.clone(),
                    file: stem.to_owned(),
                });
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
