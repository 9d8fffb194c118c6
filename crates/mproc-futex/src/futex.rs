//! Waiting and waking on a 32-bit word: the only module of mproc that calls `futex(2)`.
//!
//! Everything here is process-shared: `FUTEX_PRIVATE_FLAG` is never used, so a word in shared
//! memory wakes sleepers in every process that maps it. Deadlines are absolute on
//! `CLOCK_MONOTONIC` (`FUTEX_WAIT_BITSET` with the match-any mask), so a signal or a spurious
//! wake-up never stretches them. The contract follows std's `futex_wait`/`futex_wake`.
//!
//! Anyone may sleep on any `AtomicU32` with these functions — the `mproc` facade sleeps on the
//! doorbell words of `mproc-ring` this way.
//!
//! Under `--cfg mproc_loom` the same functions are emulated by a parking table (a loom `Mutex`
//! and `Condvar` keyed by the word's address; see `loom_park.rs`), so a lost wake-up shows as
//! a loom deadlock instead of passing silently. There, deadlines follow a logical clock that
//! only `advance_clock` (loom builds only) moves: a model that never advances it checks that nothing depends
//! on a timeout to make progress.

use crate::deadline::Deadline;
use crate::sync::AtomicU32;

/// `futex(addr, FUTEX_WAIT_BITSET, expected, deadline, NULL, FUTEX_BITSET_MATCH_ANY)`:
/// sleeps while `*word == expected`, until woken or until `deadline` passes.
///
/// See <https://man7.org/linux/man-pages/man2/futex.2.html>.
///
/// Returns `false` only when the deadline passed; `true` means "woken, or the value was not
/// `expected`, or a spurious wake-up": the caller re-checks its condition and calls again.
/// Outcomes of the system call:
///
/// | kernel result | meaning                                  | returned |
/// |---------------|------------------------------------------|----------|
/// | 0             | woken by [`wake`] (or spuriously)        | `true`   |
/// | `EAGAIN`      | `*word != expected` when the kernel looked | `true` |
/// | `EINTR`       | a signal handler ran                     | the wait resumes with the same absolute deadline (after re-checking the value) |
/// | `ETIMEDOUT`   | the deadline passed                      | `false`  |
///
/// # Panics
///
/// On any other error (`EFAULT`, `EINVAL`, `ENOSYS`), which a valid reference cannot cause.
#[cfg(not(mproc_loom))]
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool {
    sys::wait(word, expected, deadline)
}

/// `futex(addr, FUTEX_WAKE, n)`: wakes up to `n` threads (of any process) sleeping in
/// [`wait`] on `word`; returns how many were woken.
///
/// See <https://man7.org/linux/man-pages/man2/futex.2.html>. `n` is clamped to `i32::MAX`.
/// Callers change the word *before* waking, so a sleeper that has not reached the kernel yet
/// sees the new value and does not sleep.
#[cfg(not(mproc_loom))]
pub fn wake(word: &AtomicU32, n: u32) -> usize {
    sys::wake(word, n)
}

/// Loom emulation of [`wait`] (see the module docs).
#[cfg(mproc_loom)]
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool {
    crate::loom_park::wait(word, expected, deadline)
}

/// Loom emulation of [`wake`] (see the module docs).
#[cfg(mproc_loom)]
pub fn wake(word: &AtomicU32, n: u32) -> usize {
    crate::loom_park::wake(word, n)
}

/// Moves the logical loom clock one tick forward and wakes every sleeper whose deadline it
/// reaches. Only under `--cfg mproc_loom`.
#[cfg(mproc_loom)]
pub fn advance_clock() {
    crate::loom_park::advance_clock()
}

/// How the calling thread's parked waits ended (loom builds only; see [`sleeps`]).
#[cfg(mproc_loom)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sleeps {
    /// Waits that parked and were ended by a [`wake`] on their word.
    pub woken: u32,
    /// Waits that parked and were ended by their deadline (a clock tick the model made).
    pub timed_out: u32,
}

/// How the calling model thread's waits have ended so far in this loom execution. A wait
/// that returned at once because the word did not hold `expected` is in neither count. Only
/// under `--cfg mproc_loom`: models use it to tell which outcome an iteration reached (slept
/// and was woken, or never slept, or got out only by a timeout).
#[cfg(mproc_loom)]
pub fn sleeps() -> Sleeps {
    crate::loom_park::sleeps()
}

/// How many sleepers are parked in loom's table right now, on any word. Only under
/// `--cfg mproc_loom`: a model polls it (with `loom::thread::yield_now`) to wait until
/// several threads sleep at once before it wakes them.
#[cfg(mproc_loom)]
pub fn parked() -> usize {
    crate::loom_park::parked()
}

/// `futex(addr, FUTEX_WAKE, 1)`: [`wake`] one sleeper; `true` if one was woken.
pub fn wake_one(word: &AtomicU32) -> bool {
    wake(word, 1) > 0
}

/// `futex(addr, FUTEX_WAKE, INT_MAX)`: [`wake`] every sleeper; returns how many.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, u32::MAX)
}

#[cfg(not(mproc_loom))]
mod sys {
    #![allow(unsafe_code)]

    use super::{AtomicU32, Deadline};
    use crate::sync::Ordering;
    use std::io;

    pub(super) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool {
        let ts = deadline.map(|d| d.timespec());
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        loop {
            // Relaxed: only a fast exit; the kernel compares again atomically with queueing.
            if word.load(Ordering::Relaxed) != expected {
                return true;
            }
            // SAFETY: `word` is a live, aligned 4-byte atomic for the duration of the call;
            // `ts_ptr` is null or points to `ts`, which outlives the call. FUTEX_WAIT_BITSET
            // takes an absolute CLOCK_MONOTONIC timeout (no FUTEX_CLOCK_REALTIME) and the
            // match-any bitset; FUTEX_PRIVATE_FLAG is deliberately absent (shared memory).
            let r = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAIT_BITSET,
                    expected,
                    ts_ptr,
                    std::ptr::null::<u32>(),
                    libc::FUTEX_BITSET_MATCH_ANY,
                )
            };
            if r == 0 {
                return true;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return true,
                Some(libc::ETIMEDOUT) => return false,
                e => panic!("futex(FUTEX_WAIT_BITSET) failed: errno {e:?}"),
            }
        }
    }

    pub(super) fn wake(word: &AtomicU32, n: u32) -> usize {
        let n = n.min(i32::MAX as u32) as libc::c_int;
        // SAFETY: `word` is a live, aligned 4-byte atomic; FUTEX_WAKE reads no other argument.
        // No FUTEX_PRIVATE_FLAG (shared memory).
        let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
        // FUTEX_WAKE cannot fail for a valid address; treat a failure as "woke nobody".
        usize::try_from(r).unwrap_or(0)
    }
}
