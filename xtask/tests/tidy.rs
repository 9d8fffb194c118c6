//! Tidy rules that rustc and clippy do not check, run as an ordinary test
//! (rust-analyzer's `tidy.rs` habit).

use std::path::{Path, PathBuf};

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under the given directories, skipping build output.
fn rust_files(dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| project_root().join(d)).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with("target-") {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

const SOURCE_DIRS: &[&str] = &["crates", "xtask", "benches", "fuzz/fuzz_targets"];

/// Fails, listing `offenders` under `rule`, unless there are none.
fn assert_no_offenders(rule: &str, offenders: &[String]) {
    assert!(offenders.is_empty(), "{rule}: {offenders:#?}");
}

#[test]
fn library_modules_start_with_a_module_doc() {
    let mut missing = Vec::new();
    for file in rust_files(&["crates"]) {
        let path = file.to_string_lossy();
        if !path.contains("/src/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            missing.push(file.display().to_string());
        }
    }
    assert_no_offenders("these modules do not start with a `//!` doc", &missing);
}

#[test]
fn every_unsafe_block_says_why() {
    // clippy's undocumented_unsafe_blocks covers most of this; this also catches code
    // clippy does not see (cfg'd-out arms, fuzz targets).
    let needle = ["unsafe", "{"].join(" ");
    let mut bare = Vec::new();
    for file in rust_files(SOURCE_DIRS) {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !code.contains(&needle) {
                continue;
            }
            // A SAFETY comment on this line or within the few lines above it.
            let window = &lines[i.saturating_sub(8)..=i];
            if !window.iter().any(|l| l.contains("SAFETY")) {
                bare.push(format!("{}:{}", file.display(), i + 1));
            }
        }
    }
    assert_no_offenders("unsafe blocks without a SAFETY comment", &bare);
}

#[test]
fn no_private_futexes() {
    // Private futexes are correct within one process and silently wrong across processes:
    // a waiter in another process would never wake (DESIGN.md, "Blocking").
    let needle = ["FUTEX", "PRIVATE"].join("_");
    let offenders: Vec<String> = rust_files(SOURCE_DIRS)
        .into_iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .any(|l| l.contains(&needle) && !l.trim_start().starts_with("//"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert_no_offenders("private futex flag used in", &offenders);
}

#[test]
fn readme_gives_exactly_the_two_setup_commands_and_ci_runs_the_test_one() {
    let root = project_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("cargo xtask test"),
        "README must give `cargo xtask test`"
    );
    assert!(
        readme.contains("cargo run --release --example"),
        "README must give the demo command"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("cargo xtask test"),
        ".ci/run must call `cargo xtask test`"
    );
}
