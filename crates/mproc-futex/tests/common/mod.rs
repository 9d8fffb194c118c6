//! Helpers for tests that fork: shared anonymous memory, bounded child waits (the workspace's
//! one vocabulary, `mproc-testkit`).
#![allow(dead_code, unused_imports, unsafe_code, unreachable_pub)]

use std::time::{Duration, Instant};

use mproc_futex::{Deadline, Wait};

pub use mproc_testkit::{End, FORK_LOCK, fork, has_exited, kill, wait_child, wait_until};

/// Maps `size_of::<T>()` zeroed shared bytes and returns them as a `T` (never unmapped).
/// Only for this crate's primitives, which are atomics valid all-zero.
pub fn shared_zeroed<T>() -> &'static T {
    // SAFETY: every `T` these tests ask for is a futex primitive made of atomics, for which
    // all-zero bytes are a valid (initial) value.
    unsafe { mproc_testkit::shared_zeroed() }
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

pub const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `wait` with a deadline `ms` milliseconds away and returns what it returned, after
/// checking that it kept the deadline: at least `ms`, and less than 3 s (a sanity bound,
/// not a timing claim).
pub fn with_deadline_kept<T>(ms: u64, wait: impl FnOnce(Wait) -> T) -> T {
    let t = Instant::now();
    let r = wait(Wait::Until(Deadline::after(Duration::from_millis(ms))));
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(ms) && e < Duration::from_secs(3),
        "{e:?}"
    );
    r
}
