//! mproc's task runner, in the style of `cargo xtask` (matklad): plain Rust instead of shell
//! scripts, so `.ci/run`, the GitHub workflow and a developer all run the same steps.
//!
//! * `cargo xtask test [--quick]`: the whole test matrix this machine can run (see [`mod@test`]).
//! * `cargo xtask fuzz TARGET [SECONDS]`: run one cargo-fuzz target for a bounded time.
//! * `cargo xtask bench [--quick]`: the criterion benches (see [`mod@bench`]).
//! * `cargo xtask loom [FILTER]`: the loom models, each its own step (see [`mod@loom`]).
//! * `cargo xtask mutants [CRATE...]`: mutation testing of the concurrency files (see
//!   [`mod@mutants`]).
//! * `cargo xtask torture [--secs N] [--scenario NAME]... [--strict]`: SIGKILL storms with a
//!   ledger (see [`mod@torture`]).

mod bench;
mod fuzz;
mod loom;
mod mutants;
mod runner;
mod test;
mod torture;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [--quick]           run the test matrix; --quick skips release, loom, bench and fuzz steps
  fuzz TARGET [SECONDS]    run one fuzz target (default 60 s); `fuzz --list` names them
  bench [--quick]          run the benches; --quick only builds them and runs one short pass
  loom [FILTER]            run the loom models (each its own step) whose name contains FILTER
  mutants [CRATE...] [--shard K/N] [--iterate]
                           mutation-test the lower crates' concurrency files (hours; not in test)
  torture [--secs N] [--scenario NAME]... [--strict]
                           SIGKILL storms with a ledger (default 60 s); --strict also fails on
                           the known open bugs
";

fn main() -> ExitCode {
    // cargo-mutants runs this binary as its `cargo` (see `mutants`).
    if let Some(code) = mutants::as_cargo_wrapper() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test"] => test::run(false),
        ["test", "--quick"] => test::run(true),
        ["fuzz", "--list"] => fuzz::list().map(|targets| {
            for target in targets {
                println!("{target}");
            }
        }),
        ["fuzz", target] => fuzz::run_one(target, fuzz::DEFAULT_SECONDS),
        ["fuzz", target, seconds] => match seconds.parse() {
            Ok(seconds) => fuzz::run_one(target, seconds),
            Err(_) => Err(format!("SECONDS must be a whole number, not {seconds:?}")),
        },
        ["loom"] => loom::run(None),
        ["loom", filter] => loom::run(Some(filter)),
        ["mutants", rest @ ..] => mutants::run(rest),
        ["torture", rest @ ..] => torture::run(rest),
        ["bench"] => bench::run(false),
        ["bench", "--quick"] => bench::run(true),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A command's arguments in order, each paired with the argument after it when it is one of
/// the `valued` flags (given with what its value is, for the error when it is missing).
fn with_values<'a>(
    args: &[&'a str],
    valued: &[(&str, &str)],
) -> Result<Vec<(&'a str, Option<&'a str>)>, String> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(&arg) = rest.next() {
        let value = match valued.iter().find(|(flag, _)| *flag == arg) {
            Some((_, what)) => Some(*rest.next().ok_or(format!("{arg} needs {what}"))?),
            None => None,
        };
        out.push((arg, value));
    }
    Ok(out)
}

/// The workspace root, found from this crate's manifest directory (`xtask/`).
fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::with_values;

    #[test]
    fn valued_flags_take_the_next_argument() {
        let valued = [("--secs", "a number"), ("--scenario", "a name")];
        let args = ["--secs", "5", "--strict", "--scenario", "--seed"];
        assert_eq!(
            with_values(&args, &valued).unwrap(),
            [
                ("--secs", Some("5")),
                ("--strict", None),
                ("--scenario", Some("--seed")),
            ]
        );
        assert_eq!(
            with_values(&["--strict", "--secs"], &valued).unwrap_err(),
            "--secs needs a number"
        );
    }
}
