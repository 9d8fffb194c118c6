//! Shared helpers for the tests: bounded fork/wait, unique names, re-invoking the test binary
//! as an unrelated child process (the workspace's one vocabulary, `mproc-testkit`, with this
//! crate's bound and prefixes). (The loom models' outcome-arm counters are mproc-futex's
//! `tests/common/arms.rs`, included by path.)
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::process::{Child, Command};
use std::time::Duration;

pub use mproc_testkit::{End as Exit, Rng, Unlink, exists, fork, kill};

/// Generous bound for anything a child does in these tests.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A name no other test (or concurrent test process) uses.
pub fn unique_name(tag: &str) -> String {
    mproc_testkit::unique_name("mproc-shm-test", tag)
}

/// A [`unique_name`] with its guard: the name's `/dev/shm` entry is removed when the guard
/// drops (whether or not the test created it).
pub fn scratch_name(tag: &str) -> (String, Unlink) {
    let name = unique_name(tag);
    let guard = Unlink(name.clone());
    (name, guard)
}

/// Waits for `pid` within [`DEADLINE`]; on timeout kills it and panics.
pub fn wait(pid: libc::pid_t) -> Exit {
    mproc_testkit::wait_child(pid, DEADLINE)
}

/// Polls `cond` until true or [`DEADLINE`]; returns whether it became true.
pub fn eventually(cond: impl FnMut() -> bool) -> bool {
    mproc_testkit::eventually(DEADLINE, cond)
}

/// Env var that tells a re-invoked test binary to act as a child.
pub const CHILD_ENV: &str = "MPROC_SHM_TEST_CHILD";

/// If this process was started by [`self_command`], the child's argument.
pub fn child_role() -> Option<String> {
    mproc_testkit::child_role(CHILD_ENV)
}

/// A `Command` re-running this test binary, only test `test`, as an unrelated process.
pub fn self_command(test: &str, arg: &str) -> Command {
    mproc_testkit::self_command(CHILD_ENV, test, arg)
}

/// Waits for a spawned child within [`DEADLINE`]; kills it on timeout and panics.
pub fn wait_child(child: Child) -> std::process::ExitStatus {
    mproc_testkit::wait_spawned(child, DEADLINE)
}
