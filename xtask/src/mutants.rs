//! `cargo xtask mutants`: mutation testing of the lower crates' concurrency files.
//!
//! cargo-mutants plants one small bug at a time (an operator flipped, a function body
//! replaced by a constant, a `!` deleted) in a scratch copy of the workspace and runs the
//! tests; a mutant the tests do not notice ("missed") is a gap in the suites, or an
//! equivalent change. Our suites come in two builds — the ordinary tests and the loom
//! models, which need `--cfg mproc_loom` — and cargo-mutants runs one command per mutant.
//! So cargo-mutants is pointed at this binary as its `cargo` (`$CARGO`): for `cargo test`
//! it runs the mutated crate's loom suites (release, bounded preemptions, their own target
//! directory) and then its ordinary tests, and fails when either fails; every other cargo
//! command passes straight through to the real cargo.
//!
//! Not part of `cargo xtask test` (a full run takes hours on two cores): run it before
//! landing a change to one of [`FILES`], e.g. `cargo xtask mutants mproc-futex`, or a slice
//! with `--shard K/N`; `--iterate` skips the mutants an earlier run already caught.
//! Results land in `target/mutants/CRATE/mutants.out/`. Every missed mutant must be listed
//! in [`SURVIVORS`] with the reason it is equivalent or accepted; the command fails on a
//! missed mutant the file does not explain.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The concurrency files of each lower crate: the ones whose bugs tests must catch.
const FILES: [(&str, &[&str]); 3] = [
    (
        "mproc-ring",
        &["mpmc.rs", "spsc.rs", "doorbell.rs", "role.rs"],
    ),
    (
        "mproc-futex",
        &[
            "lock.rs",
            "rlock.rs",
            "semaphore.rs",
            "event.rs",
            "barrier.rs",
            "condvar.rs",
        ],
    ),
    ("mproc-shm", &["arena.rs", "participant.rs"]),
];

/// Mutants of formatting code say nothing about concurrency; skip them.
const EXCLUDE_RE: [&str; 2] = ["impl .*Debug for", "impl .*Display for"];

/// The file that explains every missed mutant (relative to the workspace root).
const SURVIVORS: &str = "docs/mutants.md";

/// Set (to the real cargo) when this binary runs as cargo-mutants' `cargo`.
const WRAPPER_ENV: &str = "MPROC_MUTANTS_REAL_CARGO";

/// `cargo xtask mutants [CRATE...] [--shard K/N] [--iterate]`.
pub(crate) fn run(args: &[&str]) -> Result<(), String> {
    let mut crates = Vec::new();
    let mut passthrough = Vec::new();
    for (arg, value) in crate::with_values(args, &[("--shard", "K/N")])? {
        match (arg, value) {
            ("--shard", Some(value)) => {
                passthrough.push(format!("--shard={value}"));
                // Every N-th mutant, so a shard is a fair sample of all the files.
                passthrough.push("--sharding=round-robin".to_owned());
            }
            ("--iterate", _) => passthrough.push("--iterate".to_owned()),
            (name, _) if FILES.iter().any(|(k, _)| *k == name) => crates.push(name),
            (other, _) => {
                return Err(format!(
                    "unknown argument {other:?}: expected a crate ({}), --shard K/N or --iterate",
                    FILES.map(|(k, _)| k).join(", ")
                ));
            }
        }
    }
    if crates.is_empty() {
        crates = FILES.iter().map(|(k, _)| *k).collect();
    }
    ensure_cargo_mutants()?;
    let explained = explained_survivors()?;
    let mut unexplained = Vec::new();
    for krate in crates {
        let report = run_crate(krate, &passthrough)?;
        println!("{krate}: {}", report.summary());
        for name in report.missed {
            let listed = explained.contains(&normalise(&name));
            println!(
                "  missed: {name}{}",
                if listed { "" } else { "  (UNEXPLAINED)" }
            );
            if !listed {
                unexplained.push(name);
            }
        }
    }
    if unexplained.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} missed mutant(s) not explained in {SURVIVORS}: add a test that catches each, \
             or list it there with the reason it is equivalent",
            unexplained.len()
        ))
    }
}

/// Outcomes of one crate's run.
#[derive(Debug, Default)]
struct Report {
    caught: usize,
    timeout: usize,
    unviable: usize,
    missed: Vec<String>,
}

impl Report {
    fn summary(&self) -> String {
        let killed = self.caught + self.timeout;
        let viable = killed + self.missed.len();
        let rate = if viable == 0 {
            0.0
        } else {
            100.0 * killed as f64 / viable as f64
        };
        format!(
            "{killed} of {viable} viable mutants killed ({rate:.1} %): {} caught, {} timed out, \
             {} missed; {} unviable",
            self.caught,
            self.timeout,
            self.missed.len(),
            self.unviable
        )
    }
}

fn run_crate(krate: &str, passthrough: &[String]) -> Result<Report, String> {
    let root = crate::project_root();
    let files = FILES
        .iter()
        .find(|(k, _)| *k == krate)
        .map(|(_, f)| *f)
        .expect("crate names are checked by the caller");
    let output = root.join("target/mutants").join(krate);
    std::fs::create_dir_all(&output).map_err(|e| format!("creating {}: {e}", output.display()))?;
    let real_cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // A private copy of this binary as cargo-mutants' `cargo`: a rebuild of xtask during the
    // hours a run takes must not pull the file from under it.
    let me = output.join("xtask-as-cargo");
    // `/proc/self/exe` still reads after the file itself was replaced by a rebuild.
    std::fs::copy("/proc/self/exe", &me)
        .map_err(|e| format!("copying this xtask binary to {}: {e}", me.display()))?;

    let mut command = Command::new("cargo-mutants");
    command
        .arg("mutants")
        .args(["--package", krate, "--test-package", krate])
        .arg(format!("--output={}", output.display()))
        // One scratch copy at a time: two cores, and each copy builds two profiles.
        .args(["--jobs", "1", "--minimum-test-timeout", "60"]);
    for file in files {
        command.arg(format!("--file=crates/{krate}/src/{file}"));
    }
    for re in EXCLUDE_RE {
        command.arg(format!("--exclude-re={re}"));
    }
    command
        .args(passthrough)
        .current_dir(&root)
        .stdin(Stdio::null())
        .env("CARGO", &me)
        .env(WRAPPER_ENV, &real_cargo);
    println!("\n==> mutants: {krate} (files: {})", files.join(", "));
    // cargo-mutants exits non-zero when a mutant is missed; the outcome files say which.
    let status = command
        .status()
        .map_err(|e| format!("could not run cargo-mutants: {e}"))?;
    let out = output.join("mutants.out");
    let read = |name: &str| -> Vec<String> {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let report = Report {
        caught: read("caught.txt").len(),
        timeout: read("timeout.txt").len(),
        unviable: read("unviable.txt").len(),
        missed: read("missed.txt"),
    };
    // Exit codes 0 (all caught) and 2 (some missed) are verdicts; anything else is a failure
    // to run, e.g. the unmutated baseline failing its own tests.
    match status.code() {
        Some(0 | 2 | 3) => Ok(report),
        _ => Err(format!(
            "cargo-mutants failed on {krate} ({status}); see {}",
            out.join("debug.log").display()
        )),
    }
}

/// A mutant's name without its `:line:col`, so the survivors file outlives edits above it.
fn normalise(name: &str) -> String {
    let mut parts = name.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(line), Some(col), Some(rest))
            if line.chars().all(|c| c.is_ascii_digit())
                && col.chars().all(|c| c.is_ascii_digit()) =>
        {
            format!("{file}:{}", rest.trim_start())
        }
        _ => name.trim().to_owned(),
    }
}

/// The mutants [`SURVIVORS`] explains: each `` `name` `` at the start of a list item.
fn explained_survivors() -> Result<BTreeSet<String>, String> {
    let path = crate::project_root().join(SURVIVORS);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| normalise(name))
        .collect())
}

fn ensure_cargo_mutants() -> Result<(), String> {
    let present = Command::new("cargo-mutants")
        .args(["mutants", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("==> installing cargo-mutants (cargo install cargo-mutants --locked)");
    let status = Command::new("cargo")
        .args(["install", "cargo-mutants", "--locked"])
        .status()
        .map_err(|e| format!("could not run cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("installing cargo-mutants failed: {status}"))
    }
}

/// When cargo-mutants runs this binary as its `cargo`: `Some(exit code)`; otherwise `None`.
pub(crate) fn as_cargo_wrapper() -> Option<ExitCode> {
    let real = std::env::var_os(WRAPPER_ENV)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    Some(wrap(Path::new(&real), &args))
}

/// Runs `cargo ARGS` as asked; for `cargo test`, the package's loom suites come first.
fn wrap(real: &Path, args: &[String]) -> ExitCode {
    let passthrough = || {
        let status = Command::new(real).args(args).status();
        exit_code(status.map(|s| s.code().unwrap_or(1)).unwrap_or(1))
    };
    if args.first().map(String::as_str) != Some("test") {
        return passthrough();
    }
    let package = args.iter().find_map(|a| {
        a.strip_prefix("--package=")
            .map(|p| p.split('@').next().unwrap_or(p).to_owned())
    });
    let Some(package) = package else {
        return passthrough();
    };
    let loom_files = loom_files(&package);
    if !loom_files.is_empty() {
        let mut loom = Command::new(real);
        loom.args(["test", "--release", "--package", &package]);
        for file in &loom_files {
            loom.args(["--test", file]);
        }
        if args.iter().any(|a| a == "--no-run") {
            loom.arg("--no-run");
        }
        // cargo-mutants passes its lint cap in CARGO_ENCODED_RUSTFLAGS, which outranks
        // RUSTFLAGS: add the loom flags to it.
        let mut flags: Vec<String> = std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .ok()
            .filter(|f| !f.is_empty())
            .map(|f| f.split('\x1f').map(str::to_owned).collect())
            .unwrap_or_default();
        flags.extend(crate::loom::RUSTFLAGS.split(' ').map(str::to_owned));
        loom.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
            .env_remove("RUSTFLAGS")
            .env("CARGO_TARGET_DIR", crate::loom::TARGET_DIR)
            .env("LOOM_MAX_PREEMPTIONS", "2");
        match loom.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("xtask mutants: the loom suites of {package} failed ({status})");
                return exit_code(status.code().unwrap_or(1));
            }
            Err(error) => {
                eprintln!("xtask mutants: could not run the loom suites: {error}");
                return exit_code(1);
            }
        }
    }
    passthrough()
}

/// `loom_*` test targets of `package`, found under the current (scratch) workspace.
fn loom_files(package: &str) -> Vec<String> {
    let tests = PathBuf::from("crates").join(package).join("tests");
    let Ok(entries) = std::fs::read_dir(tests) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_owned))
        .filter(|stem| stem.starts_with("loom_"))
        .collect();
    files.sort();
    files
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
