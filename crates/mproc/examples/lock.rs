//! The seed's Lock: several processes append lines to one file, each line written in
//! several pieces (several `write(2)` calls), under one `mproc::Lock`. Without the lock the
//! pieces of different processes interleave; with it, the file ends with every line whole.
//!
//! Run it with `cargo run --release -p mproc --example lock`.

use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mproc::{Lock, Process};

/// Processes that write.
pub(crate) const WORKERS: u32 = 4;
/// Lines each process appends.
pub(crate) const LINES: u32 = 50;

/// Python: `def worker(lock, path, n)`: append `LINES` lines, each in four writes, holding
/// the lock for the whole line.
fn worker((lock, path, n): (Lock, String, u32)) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open the shared file");
    for line in 0..LINES {
        let _held = lock.acquire().expect("acquire the lock");
        // Four separate system calls: another process could slip in between any two of
        // them if it were not for the lock.
        for piece in [
            format!("worker {n} "),
            format!("line {line} "),
            "is whole".to_string(),
            "\n".to_string(),
        ] {
            file.write_all(piece.as_bytes()).expect("append");
            file.flush().expect("flush");
        }
    }
}

/// The body of `if __name__ == '__main__':`, writing to `path`; returns the lines written.
pub(crate) fn run(path: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    std::fs::write(path, "")?;
    let lock = Lock::new()?;
    let path_str = path.to_str().ok_or("path is not UTF-8")?.to_string();
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        let mut p = Process::new(worker, (lock.clone(), path_str.clone(), n));
        p.start()?;
        workers.push(p);
    }
    for p in &workers {
        let status = p
            .join_timeout(Duration::from_secs(60))?
            .ok_or("a worker did not finish within 60 s")?;
        if !status.success() {
            return Err(format!("a worker failed: exit code {}", status.exitcode()).into());
        }
    }
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::to_owned)
        .collect())
}

#[allow(dead_code)] // the integration test includes this file and calls `run` only
fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::temp_dir().join(format!("mproc-lock-{}.txt", std::process::id()));
    let lines = run(&path)?;
    let whole = lines
        .iter()
        .filter(|l| l.starts_with("worker ") && l.ends_with(" is whole"))
        .count();
    println!(
        "{} processes appended {} lines to {}: {} whole, {} torn",
        WORKERS,
        lines.len(),
        path.display(),
        whole,
        lines.len() - whole
    );
    std::fs::remove_file(&path)?;
    Ok(())
}
