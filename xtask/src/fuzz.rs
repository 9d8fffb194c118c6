//! Fuzzing with cargo-fuzz (`fuzz/` is its own workspace, laid out as `cargo fuzz init` does).
//!
//! cargo-fuzz needs nightly rustc flags. When a `nightly` toolchain is installed it is used
//! with cargo-fuzz's defaults (AddressSanitizer). Without one, the stable compiler is told to
//! accept nightly flags (`RUSTC_BOOTSTRAP=1`) and the sanitizer is turned off, since stable
//! ships no sanitizer runtime; coverage-guided fuzzing and every bounds check still run.

use crate::runner::{Matrix, Outcome, Step};

/// Seconds `cargo xtask fuzz TARGET` runs when none are given.
pub(crate) const DEFAULT_SECONDS: u64 = 60;

/// The targets declared in `fuzz/Cargo.toml`, in order.
pub(crate) fn list() -> Result<Vec<String>, String> {
    let manifest = crate::project_root().join("fuzz/Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(value) = line.strip_prefix("name").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            targets.push(value.trim().trim_matches('"').to_owned());
        }
    }
    Ok(targets)
}

/// `cargo xtask fuzz TARGET SECONDS`.
pub(crate) fn run_one(target: &str, seconds: u64) -> Result<(), String> {
    let targets = list()?;
    if !targets.iter().any(|t| t == target) {
        return Err(format!(
            "no fuzz target {target:?}; the targets are: {}",
            targets.join(", ")
        ));
    }
    let mut matrix = Matrix::default();
    if ensure_cargo_fuzz(&mut matrix) {
        matrix.run(run_step(target, seconds));
    }
    matrix.finish()
}

/// The smoke steps of `cargo xtask test`: build every target, then run each briefly.
pub(crate) fn smoke(matrix: &mut Matrix, seconds: u64) -> Result<(), String> {
    let targets = list()?;
    if targets.is_empty() {
        matrix.skip("fuzz", "fuzz/Cargo.toml declares no target");
        return Ok(());
    }
    if !ensure_cargo_fuzz(matrix) {
        return Ok(());
    }
    let toolchain = Toolchain::detect();
    let build = toolchain.apply(Step::new(
        "fuzz build",
        "cargo",
        &toolchain.args(&["fuzz", "build"]),
        30,
    ));
    if *matrix.run(build) != Outcome::Passed {
        for target in &targets {
            matrix.skip(&format!("fuzz: {target}"), "fuzz build failed");
        }
        return Ok(());
    }
    for target in &targets {
        matrix.run(run_step(target, seconds));
    }
    Ok(())
}

fn run_step(target: &str, seconds: u64) -> Step {
    let toolchain = Toolchain::detect();
    let max_time = format!("-max_total_time={seconds}");
    let args = toolchain.args(&[
        "fuzz",
        "run",
        target,
        "--",
        &max_time,
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
    ]);
    // libFuzzer stops itself at max_total_time; the step limit only catches a hang in the build.
    let minutes = seconds / 60 + 15;
    toolchain.apply(Step::new(
        format!("fuzz: {target}"),
        "cargo",
        &args,
        minutes,
    ))
}

/// Installs cargo-fuzz when missing (as `.ci/run` does); false (and a failed step) if it can't.
fn ensure_cargo_fuzz(matrix: &mut Matrix) -> bool {
    let present = std::process::Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    present
        || *matrix.run(Step::new(
            "install cargo-fuzz",
            "cargo",
            &["install", "cargo-fuzz", "--locked"],
            20,
        )) == Outcome::Passed
}

/// Which compiler builds the fuzz targets.
#[derive(Debug, Clone, Copy)]
enum Toolchain {
    Nightly,
    StableBootstrapped,
}

impl Toolchain {
    fn detect() -> Self {
        let nightly = std::process::Command::new("rustup")
            .args(["run", "nightly", "rustc", "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if nightly {
            Toolchain::Nightly
        } else {
            Toolchain::StableBootstrapped
        }
    }

    /// `cargo` arguments, with the toolchain and sanitizer choice folded in.
    fn args<'a>(self, args: &[&'a str]) -> Vec<&'a str> {
        let mut out = Vec::with_capacity(args.len() + 3);
        if let Toolchain::Nightly = self {
            out.push("+nightly");
        }
        // `cargo fuzz <verb> ...`: flags go right after the verb.
        out.extend_from_slice(&args[..2]);
        out.push("--fuzz-dir");
        out.push("fuzz");
        if let Toolchain::StableBootstrapped = self {
            out.push("--sanitizer");
            out.push("none");
        }
        out.extend_from_slice(&args[2..]);
        out
    }

    fn apply(self, step: Step) -> Step {
        match self {
            Toolchain::Nightly => step,
            Toolchain::StableBootstrapped => step.env("RUSTC_BOOTSTRAP", "1"),
        }
    }
}
