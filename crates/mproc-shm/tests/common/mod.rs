//! Shared helpers for the tests: bounded fork/wait, unique names, re-invoking the test binary
//! as an unrelated child process. (The loom models' outcome-arm counters are mproc-futex's
//! `tests/common/arms.rs`, included by path.)
#![allow(dead_code, unreachable_pub, clippy::disallowed_types)]

use std::panic::AssertUnwindSafe;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Generous bound for anything a child does in these tests.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A name no other test (or concurrent test process) uses.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mproc-shm-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unlinks `/dev/shm/<name>` when dropped (whatever the test's outcome).
pub struct Unlink(pub String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// Forks; the child runs `f` and `_exit`s with its return value (101 if it panicked),
/// never returning into the test harness.
pub fn fork(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: fork has no preconditions; the child only runs `f` and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: `_exit` is always safe to call; it does not run the harness's atexit.
        unsafe { libc::_exit(code) }
    }
    pid
}

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Waits for `pid` with a deadline; on timeout kills it and panics.
pub fn wait(pid: libc::pid_t) -> Exit {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else {
                Exit::Signal(libc::WTERMSIG(status))
            };
        }
        if start.elapsed() > DEADLINE {
            kill(pid);
            // SAFETY: reap the killed child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("child {pid} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends SIGKILL.
pub fn kill(pid: libc::pid_t) {
    // SAFETY: plain kill.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Does a process with this pid exist (zombies included)?
pub fn exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Polls `cond` until true or the deadline; returns whether it became true.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// Env var that tells a re-invoked test binary to act as a child.
pub const CHILD_ENV: &str = "MPROC_SHM_TEST_CHILD";

/// If this process was started by [`spawn_self`] for `test`, returns the child's argument.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A `Command` re-running this test binary, only test `test`, as an unrelated process.
pub fn self_command(test: &str, arg: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, arg);
    cmd
}

/// Waits for a spawned child with the deadline; kills it on timeout and panics.
pub fn wait_child(mut child: Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("spawned child did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A tiny deterministic PRNG (xorshift64*), so tests need no extra dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
