//! `mproc-testkit`: the one test-helper vocabulary of the mproc crates' tests (a
//! dev-dependency, never published).
//!
//! Every wait here is bounded: a child that does not finish in time is SIGKILLed, reaped and
//! the test fails, so a bug fails a test instead of hanging CI.
//!
//! | helper | what |
//! |---|---|
//! | [`fork`], [`wait_status`], [`wait_child`], [`End`] | fork a child that runs a closure and `_exit`s; wait for it with a bound |
//! | [`kill`], [`exists`], [`has_exited`] | signal and look at a child |
//! | [`wait_until`], [`eventually`] | poll a condition with a bound |
//! | [`SharedMem`], [`shared_zeroed`] | `MAP_SHARED` anonymous memory that forked children share |
//! | [`unique_name`], [`Unlink`] | names no other test process uses, removed at the end |
//! | [`self_command`], [`child_role`], [`wait_spawned`] | re-run this test binary as an unrelated process |
//! | [`Rng`] | a tiny deterministic PRNG |
//! | [`iterations`] | a stress test's count for this build (debug or release) |
//!
//! ```
//! use mproc_testkit::{End, fork, wait_child};
//! use std::time::Duration;
//!
//! let pid = fork(|| 7);
//! assert_eq!(wait_child(pid, Duration::from_secs(10)), End::Code(7));
//! ```
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, ExitStatus};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serialises forking tests within one test binary, so no other test thread is mid-allocation
/// (holding the allocator's lock) when a test forks.
pub static FORK_LOCK: Mutex<()> = Mutex::new(());

/// Forks; the child runs `f` and `_exit`s with its return value (101 if it panicked), never
/// returning into the test harness.
pub fn fork(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: fork has no preconditions; the child only runs `f` and `_exit`s (tests keep `f`
    // to atomics, futex calls and memory mapped before the fork).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: `_exit` is always safe to call; it skips the harness's destructors and
        // atexit handlers.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl End {
    /// Decodes a `waitpid` status.
    pub fn from_status(status: libc::c_int) -> End {
        if libc::WIFEXITED(status) {
            End::Code(libc::WEXITSTATUS(status))
        } else {
            End::Signal(libc::WTERMSIG(status))
        }
    }
}

/// Waits for child `pid` for at most `timeout` and returns its raw `waitpid` status; on
/// timeout SIGKILLs and reaps it, then panics.
pub fn wait_status(pid: libc::pid_t, timeout: Duration) -> libc::c_int {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return status;
        }
        if start.elapsed() > timeout {
            kill(pid);
            // SAFETY: reaps the child just killed.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("child {pid} did not finish within {timeout:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// [`wait_status`], decoded.
pub fn wait_child(pid: libc::pid_t, timeout: Duration) -> End {
    End::from_status(wait_status(pid, timeout))
}

/// Sends SIGKILL to `pid`.
pub fn kill(pid: libc::pid_t) {
    // SAFETY: plain kill(2) of a child of this test.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Whether a process with this pid exists (zombies included).
pub fn exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks.
    unsafe { libc::kill(pid, 0) == 0 }
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
        // ECHILD: already reaped.
        return true;
    }
    // SAFETY: si_pid is valid to read for waitid results.
    unsafe { info.si_pid() != 0 }
}

/// Polls `cond` until it holds; panics after `timeout`.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        eventually(timeout, cond),
        "condition not reached within {timeout:?}"
    );
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    cond()
}

/// `MAP_SHARED | MAP_ANONYMOUS` zero-filled memory that survives `fork` as shared; unmapped
/// on drop.
#[derive(Debug)]
pub struct SharedMem {
    /// Start of the mapping (page-aligned).
    pub ptr: NonNull<u8>,
    /// Its length in bytes.
    pub len: usize,
}

impl SharedMem {
    /// Maps `len` zeroed bytes; panics if `mmap` fails (see [`SharedMem::try_new`]).
    pub fn new(len: usize) -> SharedMem {
        SharedMem::try_new(len).expect("mmap failed")
    }

    /// Maps `len` zeroed bytes, for a caller (a bench harness) that reports the failure.
    ///
    /// # Errors
    /// `mmap`'s errno.
    pub fn try_new(len: usize) -> std::io::Result<SharedMem> {
        // SAFETY: a fresh anonymous mapping with no address hint; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(SharedMem { ptr, len })
    }

    /// Never unmaps (for memory a test hands out as `'static`).
    pub fn leak(self) -> NonNull<u8> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }

    /// The memory as 8-byte words, read now (volatile).
    pub fn words(&self) -> Vec<u64> {
        (0..self.len / 8).map(|i| self.word(i)).collect()
    }

    /// 8-byte word `i`, read now (volatile: another process may write it).
    pub fn word(&self, i: usize) -> u64 {
        // SAFETY: in bounds and 8-aligned (`word_ptr` checks; the mapping is page-aligned).
        unsafe { self.word_ptr(i).read_volatile() }
    }

    /// Writes 8-byte word `i` (volatile): a test playing a corrupt or hostile peer.
    pub fn write_word(&self, i: usize, v: u64) {
        // SAFETY: in bounds and 8-aligned (`word_ptr` checks); the code under test treats
        // these words as untrusted.
        unsafe { self.word_ptr(i).write_volatile(v) }
    }

    /// The address of 8-byte word `i`, for a test that forges it.
    pub fn word_ptr(&self, i: usize) -> *mut u64 {
        assert!(i < self.len / 8, "word {i} outside the mapping");
        // SAFETY: in bounds (checked above).
        unsafe { self.ptr.as_ptr().cast::<u64>().add(i) }
    }
}

impl Drop for SharedMem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; errors ignored (nothing to do).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len.max(1)) };
    }
}

/// Maps `size_of::<T>()` zeroed shared bytes and returns them as a `&'static T` (never
/// unmapped).
///
/// # Safety
/// All-zero bytes must be a valid `T` (true of atomics and `#[repr(C)]` structs of them).
pub unsafe fn shared_zeroed<T>() -> &'static T {
    assert!(align_of::<T>() <= 4096, "page alignment at most");
    let p = SharedMem::new(size_of::<T>()).leak();
    // SAFETY: a fresh, zeroed, page-aligned mapping of `size_of::<T>()` bytes that is never
    // unmapped; the caller promises all-zero is a valid `T`.
    unsafe { p.cast::<T>().as_ref() }
}

/// A name no other test (or concurrently running test process) uses: `<prefix>-<pid>-<n>-<tag>`.
pub fn unique_name(prefix: &str, tag: &str) -> String {
    static N: Mutex<u64> = Mutex::new(0);
    let n = {
        let mut n = N.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    };
    format!("{prefix}-{}-{n}-{tag}", std::process::id())
}

/// Removes `/dev/shm/<name>` when dropped, whatever the test's outcome.
#[derive(Debug)]
pub struct Unlink(pub String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// If this process was started by [`self_command`] with `env`, the child's argument.
pub fn child_role(env: &str) -> Option<String> {
    std::env::var(env).ok()
}

/// A `Command` that re-runs this test binary, only test `test`, as an unrelated process
/// whose [`child_role`]`(env)` is `arg`.
pub fn self_command(env: &str, test: &str, arg: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, arg);
    cmd
}

/// Waits for a spawned child for at most `timeout`; kills it and panics on timeout.
pub fn wait_spawned(mut child: Child, timeout: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("spawned child did not finish within {timeout:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How many iterations a stress test runs in this build: `debug` in a build with debug
/// assertions (unoptimised, several times slower), `release` in an optimised one. The
/// checks are the same; only the count differs.
pub const fn iterations(debug: u64, release: u64) -> u64 {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

/// A tiny deterministic PRNG (xorshift64*), so tests need no extra dependency.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
