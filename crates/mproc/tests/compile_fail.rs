//! Compile-time diagnostics (#14, "an API that teaches"): each `tests/ui/*.rs` case must fail
//! to compile, and its error output must contain the case's key lines, given in the case as
//! `// expect: <text>` comments (substrings of the compiler's output).
//!
//! # Why a harness of key lines rather than `trybuild`
//!
//! `trybuild` compares the whole normalised stderr with a `.stderr` file: every span, line
//! number, secondary note and help text of rustc. Those change between compiler releases
//! (and with the rust-version this crate supports), so such files break on a toolchain
//! upgrade while what we test — our own `#[diagnostic::on_unimplemented]` messages and
//! notes, the error codes, the types named — has not changed. Checking key lines keeps the
//! test about what we control; and it needs no dependency.
//!
//! # How
//!
//! The cases become the binaries of a small crate under this test's `CARGO_TARGET_TMPDIR`
//! that depends on this one by path, with a copy of the workspace's `Cargo.lock` (so it
//! resolves to the versions already built, offline), checked one at a time with
//! `cargo check --offline`. The first check builds the dependencies (`check` only, kept
//! between runs in that directory); each case then takes about a second.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The case directory.
fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

/// Writes the case crate (idempotent) and returns its directory.
fn case_crate(cases: &[(String, String)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile_fail");
    let bins = dir.join("src/bin");
    // Stale cases (renamed or removed ones) would be checked too: start the bins afresh.
    let _ = std::fs::remove_dir_all(&bins);
    std::fs::create_dir_all(&bins).unwrap();
    let manifest = format!(
        "[package]\n\
         name = \"mproc-compile-fail\"\n\
         version = \"0.0.0\"\n\
         edition = \"2024\"\n\
         publish = false\n\
         \n\
         # Its own workspace, though it lies under the mproc workspace's target directory.\n\
         [workspace]\n\
         \n\
         [dependencies]\n\
         mproc = {{ path = {:?} }}\n",
        env!("CARGO_MANIFEST_DIR")
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    // The workspace's versions, which are built and cached (cargo prunes what the case crate
    // does not use; the copy is refreshed whenever the workspace's lock file changes).
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let lock = std::fs::read_to_string(lock).unwrap();
    let lock_copy = dir.join("Cargo.lock.workspace");
    if std::fs::read_to_string(&lock_copy).ok().as_deref() != Some(lock.as_str()) {
        std::fs::write(dir.join("Cargo.lock"), &lock).unwrap();
        std::fs::write(&lock_copy, &lock).unwrap();
    }
    for (name, source) in cases {
        std::fs::write(bins.join(format!("{name}.rs")), source).unwrap();
    }
    dir
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// Every case: `(name, source)`, sorted by name.
fn cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = std::fs::read_dir(ui_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    cases.sort();
    cases
}

/// The `// expect: ` lines of a case.
fn expectations(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("// expect: "))
        .map(str::trim)
        .collect()
}

#[test]
fn each_case_fails_to_compile_with_its_key_lines() {
    let cases = cases();
    assert!(cases.len() >= 5, "cases missing from {:?}", ui_dir());
    let dir = case_crate(&cases);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let mut failures = Vec::new();
    for (name, source) in &cases {
        let expected = expectations(source);
        assert!(!expected.is_empty(), "{name}: no `// expect: ` lines");
        let out = Command::new(&cargo)
            .args(["check", "--offline", "--quiet", "--color", "never", "--bin"])
            .arg(name)
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .output()
            .expect("run cargo check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            failures.push(format!("{name}: compiled, but must not"));
            continue;
        }
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|e| !stderr.contains(e))
            .collect();
        if !missing.is_empty() {
            failures.push(format!(
                "{name}: the compiler's output lacks {missing:?}\n--- output ---\n{stderr}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
