//! Helpers for tests that fork: shared anonymous memory, bounded child waits.
#![allow(dead_code, unsafe_code, unreachable_pub)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serialises forking tests within one test binary, so no other test thread is mid-allocation
/// while we fork (a child only runs async-signal-safe-ish code: atomics and futex calls).
pub static FORK_LOCK: Mutex<()> = Mutex::new(());

/// Maps `size_of::<T>()` zeroed bytes `MAP_SHARED | MAP_ANONYMOUS` and returns them as a `T`
/// (leaked: the mapping lives until the test process exits). `T` must be valid all-zero.
pub fn shared_zeroed<T>() -> &'static T {
    let len = std::mem::size_of::<T>().max(1);
    // SAFETY: anonymous shared mapping with no address hint; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap failed");
    // SAFETY: fresh zeroed page-aligned mapping, which the caller promises is a valid `T`.
    unsafe { &*(p as *const T) }
}

/// Like [`shared_zeroed`], but the mapping starts as `value` (written before any reference
/// to it exists).
pub fn shared_value<T>(value: T) -> &'static T {
    let p = shared_zeroed::<T>() as *const T as *mut T;
    // SAFETY: a fresh, page-aligned, writable mapping of `size_of::<T>()` bytes that nobody
    // else uses yet; the zeroed `T` there needs no drop.
    unsafe {
        p.write(value);
        &*p
    }
}

/// Forks; the child runs `f` and `_exit`s with its return value (101 if it panicked).
pub fn fork(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: fork has no preconditions; the child never returns into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: _exit skips atexit handlers and the harness; always safe to call.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Code(i32),
    Signal(i32),
}

/// Waits (polling, bounded) for `pid`; kills it and panics after `timeout`.
pub fn wait_child(pid: libc::pid_t, timeout: Duration) -> End {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid failed");
        if r == pid {
            if libc::WIFEXITED(status) {
                return End::Code(libc::WEXITSTATUS(status));
            }
            return End::Signal(libc::WTERMSIG(status));
        }
        if start.elapsed() > timeout {
            kill(pid);
            // SAFETY: reap the killed child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("child {pid} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn kill(pid: libc::pid_t) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Whether child `pid` has terminated (zombie or reaped), without reaping it.
pub fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is writable; WNOWAIT leaves the child waitable.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return true; // ECHILD: already reaped
    }
    // SAFETY: si_pid is valid to read for waitid results.
    unsafe { info.si_pid() != 0 }
}

/// Spins (bounded) until `cond` holds; panics after `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "condition not reached within {timeout:?}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub const CHILD_TIMEOUT: Duration = Duration::from_secs(30);
