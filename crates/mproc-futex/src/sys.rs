//! Small system calls other than `futex(2)`: the monotonic clock and the thread id.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::Once;
use std::time::Duration;

/// Reads `CLOCK_MONOTONIC` (`clock_gettime(2)`, a vDSO call that does not enter the kernel).
///
/// See <https://man7.org/linux/man-pages/man2/clock_gettime.2.html>.
pub(crate) fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    // The monotonic clock never goes negative; the casts are lossless for valid values.
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

std::thread_local! {
    /// The calling thread's tid, 0 until first asked. Reset in a forked child (see below).
    static TID: Cell<u32> = const { Cell::new(0) };
}

static ATFORK: Once = Once::new();

extern "C" fn reset_tid_in_child() {
    // After fork the child's only thread is a copy of the forking thread, with a new tid but
    // a copy of its thread-locals: forget the cached value so the next call asks the kernel.
    let _ = TID.try_with(|t| t.set(0));
}

/// `gettid(2)` (<https://man7.org/linux/man-pages/man2/gettid.2.html>), cached per thread.
///
/// The cache is cleared in a child created by `fork(2)` through a `pthread_atfork` handler,
/// registered on first use, so a forked child never reports its parent's thread id. (A child
/// made by a raw `clone` system call that bypasses libc is not covered.)
pub(crate) fn cached_gettid() -> u32 {
    TID.with(|t| {
        let cached = t.get();
        if cached != 0 {
            return cached;
        }
        ATFORK.call_once(|| {
            // SAFETY: registers a plain `extern "C"` function with no preconditions; the
            // handler only touches this thread's thread-local cell.
            unsafe { libc::pthread_atfork(None, None, Some(reset_tid_in_child)) };
        });
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        t.set(tid);
        tid
    })
}
