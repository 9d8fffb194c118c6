//! The seed's Pipe program (`examples/pipe.rs`) as a test: the same code, its output lines
//! collected from both processes through an append-only file, checked line by line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[allow(dead_code)]
#[path = "../examples/pipe.rs"]
mod example;

static LOG: OnceLock<PathBuf> = OnceLock::new();

/// Appends one line with a single `write` (O_APPEND: lines from the two processes never
/// interleave within a line).
fn log_line(line: &str) {
    let path = LOG.get().expect("log path set before the children start");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("write log");
}

#[test]
fn seed_pipe_program_ends_on_eof_with_the_seeds_output() {
    let path = std::env::temp_dir().join(format!("mproc-pipe-example-{}.log", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    LOG.set(path.clone()).unwrap();

    // Bounded: `run` kills and reports any process still running after its join timeout.
    let (sender, receiver) = example::run(log_line).expect("the program finishes");
    assert_eq!((sender, receiver), (0, 0));

    let out = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let lines: Vec<&str> = out.lines().collect();
    let (sent, received): (Vec<&str>, Vec<&str>) =
        lines.iter().partition(|l| l.starts_with("Sent"));
    assert_eq!(
        sent,
        [
            "Sent message: Hello",
            "Sent message: World",
            "Sent message: Bye"
        ],
        "{out}"
    );
    assert_eq!(
        received,
        [
            "Received message: Hello",
            "Received message: World",
            "Received message: Bye",
            "Receiver: end of file, every sending end is closed (Python would wait for ever)",
        ],
        "{out}"
    );
}
