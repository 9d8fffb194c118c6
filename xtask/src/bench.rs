//! `cargo xtask bench`: the comparison report and every criterion bench in the workspace.
//!
//! | mode | steps |
//! |---|---|
//! | `bench` | the report (`mproc-benches`' `report` binary: every mechanism, percentiles, targets, chart → `target/bench-report.md`, `target/bench-report.svg`, `docs/bench.svg`), then `cargo bench --workspace` (criterion, under `target/criterion`) |
//! | `bench --quick` | `cargo bench --workspace --no-run`, then the report binary's `--quick` mode: one short iteration of every body (a smoke run for CI; its figures mean nothing) |
//!
//! Both modes build the report with `--features peers` (ipc-channel and iceoryx2 beside the
//! rest) when libclang is found, since iceoryx2's build runs bindgen, which loads it; without
//! it they say so and run the report without the third-party peers. `cargo xtask test` runs
//! the quick steps without `peers` always, so CI never needs libclang.
//!
//! Figures are only ever reported, never asserted: the machines are shared and noisy.

use std::path::{Path, PathBuf};

use crate::runner::{Matrix, Step};

/// The report binary, built with the bench profile (LTO, like the criterion benches).
fn report_args(peers: bool) -> Vec<&'static str> {
    let mut args = vec!["run", "--profile", "bench", "-p", "mproc-benches"];
    if peers {
        args.extend(["--features", "peers"]);
    }
    args.extend(["--bin", "report", "--"]);
    args
}

pub(crate) fn run(quick: bool) -> Result<(), String> {
    let mut matrix = Matrix::default();
    let peers = peers_available(&mut matrix);
    if quick {
        quick_steps_with(&mut matrix, peers);
    } else {
        let mut args = report_args(peers);
        args.push("--docs");
        matrix.run(Step::new("bench report", "cargo", &args, 60));
        matrix.run(Step::new("bench", "cargo", &["bench", "--workspace"], 120));
    }
    matrix.finish()
}

/// The quick mode's steps as `cargo xtask test` runs them: build every bench, then one
/// short iteration of every comparison body, without the `peers` feature (no libclang
/// needed).
pub(crate) fn quick_steps(matrix: &mut Matrix) {
    quick_steps_with(matrix, false);
}

fn quick_steps_with(matrix: &mut Matrix, peers: bool) {
    matrix.run(Step::new(
        "bench build",
        "cargo",
        &["bench", "--workspace", "--no-run"],
        25,
    ));
    let mut args = report_args(peers);
    args.push("--quick");
    matrix.run(Step::new(
        "bench smoke (report --quick)",
        "cargo",
        &args,
        if peers { 20 } else { 10 },
    ));
}

/// Whether the `peers` feature can be built here (libclang found); when not, records a
/// skipped step saying why, so the summary shows the report ran without iceoryx2 and
/// ipc-channel.
fn peers_available(matrix: &mut Matrix) -> bool {
    match find_libclang() {
        Some(lib) => {
            println!(
                "libclang found ({}): the report is built with --features peers (ipc-channel, iceoryx2)",
                lib.display()
            );
            true
        }
        None => {
            matrix.skip(
                "bench peers (ipc-channel, iceoryx2)",
                "libclang not found (install libclang-dev or set LIBCLANG_PATH); the report runs without --features peers",
            );
            false
        }
    }
}

/// Finds a loadable `libclang` the way bindgen's `clang-sys` looks for one: `LIBCLANG_PATH`,
/// then `llvm-config --libdir`, then the usual library directories. Only `libclang.so`,
/// `libclang.so.N` and `libclang-N.so[.M]` count: `libclang-cpp.so` (the C++ library that a
/// bare LLVM install carries) is not the C API bindgen needs.
fn find_libclang() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("LIBCLANG_PATH") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
        dirs.push(path);
    }
    if let Ok(out) = std::process::Command::new("llvm-config")
        .arg("--libdir")
        .output()
        && out.status.success()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        let mut llvm: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("llvm-"))
            })
            .map(|p| p.join("lib"))
            .collect();
        llvm.sort();
        dirs.extend(llvm.into_iter().rev());
    }
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs.iter().find_map(|d| libclang_in(d))
}

fn libclang_in(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.flatten().map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_libclang)
    })
}

/// `libclang.so`, `libclang.so.1`, `libclang-14.so`, `libclang-14.so.1`; not `libclang-cpp*`.
fn is_libclang(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("libclang") else {
        return false;
    };
    if rest.starts_with(".so") {
        return true;
    }
    rest.strip_prefix('-')
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()) && v.contains(".so"))
}

#[cfg(test)]
mod tests {
    use super::is_libclang;

    #[test]
    fn libclang_names() {
        for yes in [
            "libclang.so",
            "libclang.so.1",
            "libclang-14.so",
            "libclang-14.so.1",
        ] {
            assert!(is_libclang(yes), "{yes}");
        }
        for no in [
            "libclang-cpp.so.14",
            "libclang-cpp.so",
            "libclangBasic.a",
            "libclang.a",
            "libLLVM-14.so",
        ] {
            assert!(!is_libclang(no), "{no}");
        }
    }
}
