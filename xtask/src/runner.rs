//! Runs commands as bounded steps and prints the summary table.
//!
//! Every step runs in its own process group with a time limit; on expiry the whole group
//! (cargo, rustc, test binaries and any process a test forked) is killed, so one hung test
//! fails its step instead of hanging CI.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command of the matrix.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) name: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    limit: Duration,
    must_fail: bool,
}

impl Step {
    /// A step running `program args...` in the workspace root, killed after `minutes`.
    pub(crate) fn new(name: impl Into<String>, program: &str, args: &[&str], minutes: u64) -> Self {
        Step {
            name: name.into(),
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            limit: Duration::from_secs(minutes * 60),
            must_fail: false,
        }
    }

    /// Sets an environment variable for this step only.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Turns the step into a canary: it passes only if the command fails (a planted bug
    /// that the suite must catch). A canary that runs past its limit still fails.
    pub(crate) fn must_fail(mut self) -> Self {
        self.must_fail = true;
        self
    }

    fn command_line(&self) -> String {
        let mut line = String::new();
        for (key, value) in &self.env {
            let _ = write!(line, "{key}={value:?} ");
        }
        line.push_str(&self.program);
        for arg in &self.args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed(String),
    TimedOut,
    Skipped(String),
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Passed => "ok".to_owned(),
            Outcome::Failed(why) => format!("FAILED ({why})"),
            Outcome::TimedOut => "FAILED (time limit)".to_owned(),
            Outcome::Skipped(why) => format!("skipped ({why})"),
        }
    }

    fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_) | Outcome::TimedOut)
    }
}

/// Collects step results and prints them as a table at the end.
#[derive(Debug, Default)]
pub(crate) struct Matrix {
    rows: Vec<(String, Duration, Outcome)>,
}

impl Matrix {
    /// Runs `step` to completion (or its time limit) and records the outcome.
    pub(crate) fn run(&mut self, step: Step) -> &Outcome {
        println!("\n==> [{}] {}", step.name, step.command_line());
        let start = Instant::now();
        let outcome = match (run_bounded(&step), step.must_fail) {
            (Outcome::Passed, true) => {
                Outcome::Failed("a canary must fail, and this one passed".to_owned())
            }
            (Outcome::Failed(_), true) => Outcome::Passed,
            (outcome, _) => outcome,
        };
        let elapsed = start.elapsed();
        println!(
            "<== [{}] {} in {}",
            step.name,
            outcome.label(),
            format_duration(elapsed)
        );
        self.rows.push((step.name, elapsed, outcome));
        &self.rows.last().expect("just pushed").2
    }

    /// Records a step that was not run, with the reason.
    pub(crate) fn skip(&mut self, name: &str, why: &str) {
        println!("\n==> [{name}] skipped: {why}");
        self.rows.push((
            name.to_owned(),
            Duration::ZERO,
            Outcome::Skipped(why.to_owned()),
        ));
    }

    /// Records a step that could not even be started as it should (a listing failed, say).
    pub(crate) fn record_failure(&mut self, name: &str, why: &str) {
        println!("\n==> [{name}] FAILED: {why}");
        self.rows.push((
            name.to_owned(),
            Duration::ZERO,
            Outcome::Failed(why.to_owned()),
        ));
    }

    /// Prints the table; `Err` names the failed steps.
    pub(crate) fn finish(self) -> Result<(), String> {
        let width = self
            .rows
            .iter()
            .map(|(n, ..)| n.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let total: Duration = self.rows.iter().map(|(_, d, _)| *d).sum();
        println!("\n{:<width$}  {:>8}  result", "step", "time");
        println!("{:-<width$}  {:->8}  ------", "", "");
        for (name, elapsed, outcome) in &self.rows {
            println!(
                "{name:<width$}  {:>8}  {}",
                format_duration(*elapsed),
                outcome.label()
            );
        }
        println!("{:<width$}  {:>8}", "total", format_duration(total));
        let failed: Vec<&str> = self
            .rows
            .iter()
            .filter(|(_, _, o)| o.is_failure())
            .map(|(n, ..)| n.as_str())
            .collect();
        let passed = self
            .rows
            .iter()
            .filter(|(_, _, o)| *o == Outcome::Passed)
            .count();
        // The plain closing line CI readers understand.
        println!("steps: {passed} passed, {} failed", failed.len());
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("failed steps: {}", failed.join(", ")))
        }
    }
}

/// Runs the step in a new process group; kills the whole group at the time limit.
fn run_bounded(step: &Step) -> Outcome {
    let mut command = Command::new(&step.program);
    command
        .args(&step.args)
        .current_dir(crate::project_root())
        .stdin(Stdio::null())
        .process_group(0);
    for (key, value) in &step.env {
        command.env(key, value);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return Outcome::Failed(format!("could not start {}: {error}", step.program)),
    };
    let deadline = Instant::now() + step.limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Outcome::Passed,
            Ok(Some(status)) => return Outcome::Failed(status.to_string()),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(child.id());
                let _ = child.wait();
                return Outcome::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => return Outcome::Failed(format!("wait failed: {error}")),
        }
    }
}

/// Kills every process in the group led by `pid` (the step and all it started).
fn kill_group(pid: u32) {
    let group = format!("-{pid}");
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
}

/// `1m05s` / `12.3s`.
fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{secs:.1}s")
    }
}
