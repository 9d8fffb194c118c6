//! Bounded waiting: a deadline per measurement, a spinner that checks it, and an `alarm(2)`
//! backstop for blocking calls that have no timeout of their own.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use crate::BenchError;

/// How long any one measurement (one fork) may take before it is declared stuck.
pub const MEASUREMENT_LIMIT: Duration = Duration::from_secs(60);

/// An absolute point in time after which a wait gives up.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    /// The same instant for `mproc_futex` (CLOCK_MONOTONIC), computed once, not per wait.
    futex: mproc_futex::Deadline,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
            futex: mproc_futex::Deadline::after(timeout),
        }
    }

    /// The default deadline of one measurement ([`MEASUREMENT_LIMIT`]).
    pub fn measurement() -> Deadline {
        Deadline::after(MEASUREMENT_LIMIT)
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The deadline as an `Instant`.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The same deadline as an `mproc_futex` deadline.
    pub fn futex(&self) -> mproc_futex::Deadline {
        self.futex
    }

    /// The deadline as an absolute `CLOCK_REALTIME` timespec (POSIX `mq_timed*`).
    pub fn realtime_timespec(&self) -> libc::timespec {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid out-pointer; CLOCK_REALTIME always exists.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let rem = self.remaining();
        let mut sec = now.tv_sec + rem.as_secs() as libc::time_t;
        let mut nsec = now.tv_nsec + libc::c_long::from(rem.subsec_nanos() as i32);
        if nsec >= 1_000_000_000 {
            sec += 1;
            nsec -= 1_000_000_000;
        }
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        }
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: a clock every process reads alike (an `Instant`
/// cannot cross a process boundary).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A busy-wait helper: a pause hint per turn, a `yield` every 64 Ki turns (so a spinner
/// whose peer was descheduled onto its own core lets it run — this machine has 2 shared
/// cores), and a deadline check every 1024 turns (one clock read per ~1024 pauses).
#[derive(Debug)]
pub struct Spin<'a> {
    deadline: &'a Deadline,
    turns: u32,
    what: &'static str,
}

impl<'a> Spin<'a> {
    /// A spinner waiting for `what` until `deadline`.
    pub fn new(deadline: &'a Deadline, what: &'static str) -> Spin<'a> {
        Spin {
            deadline,
            turns: 0,
            what,
        }
    }

    /// One turn of waiting.
    ///
    /// # Errors
    /// [`BenchError::Timeout`] once the deadline has passed.
    #[inline]
    pub fn turn(&mut self) -> Result<(), BenchError> {
        std::hint::spin_loop();
        self.turns = self.turns.wrapping_add(1);
        if self.turns.is_multiple_of(1024) {
            if self.turns.is_multiple_of(64 << 10) {
                std::thread::yield_now();
            }
            if self.deadline.passed() {
                return Err(BenchError::Timeout(self.what));
            }
        }
        Ok(())
    }
}

/// Arms `alarm(2)` for `seconds` (0 disarms): the backstop for blocking calls that have no
/// timeout of their own (`Queue::get`, `Connection::recv_bytes_into`, `read(2)`). Those
/// return an error when the peer dies, so only a bug that leaves a live peer stuck reaches
/// it; then SIGALRM's default action ends this process, which beats hanging CI. Alarms are
/// per process and not inherited by `fork`, so each child arms its own.
pub fn watchdog(seconds: u32) {
    // SAFETY: alarm has no memory-safety preconditions.
    unsafe { libc::alarm(seconds) };
}
