//! [`Deadline`]: an absolute point on `CLOCK_MONOTONIC`, and [`Wait`], the wait mode built on it.
//!
//! `std::time::Instant` is also CLOCK_MONOTONIC on Linux, but it cannot be turned into the
//! `timespec` that `FUTEX_WAIT_BITSET` wants, so blocking calls here take a `Deadline`. A
//! deadline is absolute: a wait interrupted by a signal or a spurious wake-up resumes with the
//! same deadline, never a fresh timeout. Being on the monotonic clock, it is unaffected by
//! changes to the wall clock, and it means the same in every process of the machine.
//!
//! Under `--cfg mproc_loom` the clock is logical instead (see [`crate::futex`]): it stands
//! still unless a model advances it, so a deadline expires exactly when the model says.

use std::time::Duration;

/// An absolute deadline on `CLOCK_MONOTONIC` (`clock_gettime(2)`).
///
/// Build one with [`Deadline::after`] (like Python's `timeout=` argument), or from an
/// optional timeout with [`Deadline::within`], where `None` means "wait for ever".
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc_futex::Deadline;
///
/// let d = Deadline::after(Duration::from_millis(50));
/// assert!(!d.has_passed());
/// assert!(d.remaining() <= Duration::from_millis(50));
/// assert!(Deadline::within(None).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Deadline {
    #[cfg(not(mproc_loom))]
    at: Duration,
    #[cfg(mproc_loom)]
    at: u64,
}

#[cfg(not(mproc_loom))]
impl Deadline {
    /// The current time, as a deadline that has already passed.
    pub fn now() -> Self {
        Deadline {
            at: crate::sys::monotonic_now(),
        }
    }

    /// The deadline `timeout` from now. Saturates instead of overflowing, so
    /// `Duration::MAX` is a deadline that never comes.
    pub fn after(timeout: Duration) -> Self {
        Deadline {
            at: crate::sys::monotonic_now().saturating_add(timeout),
        }
    }

    /// `None` stays `None` (no deadline); `Some(timeout)` becomes [`Deadline::after`].
    pub fn within(timeout: Option<Duration>) -> Option<Self> {
        timeout.map(Deadline::after)
    }

    /// Whether the deadline is now or in the past.
    pub fn has_passed(&self) -> bool {
        crate::sys::monotonic_now() >= self.at
    }

    /// Time left until the deadline, zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_sub(crate::sys::monotonic_now())
    }

    /// The deadline as time since the `CLOCK_MONOTONIC` epoch (boot, on Linux).
    pub fn as_monotonic(&self) -> Duration {
        self.at
    }

    /// The deadline as an absolute `timespec`, clamped to what a `time_t` can hold.
    pub(crate) fn timespec(&self) -> libc::timespec {
        libc::timespec {
            tv_sec: i64::try_from(self.at.as_secs()).unwrap_or(i64::MAX) as libc::time_t,
            tv_nsec: self.at.subsec_nanos() as libc::c_long,
        }
    }
}

#[cfg(mproc_loom)]
impl Deadline {
    /// The current logical time.
    pub fn now() -> Self {
        Deadline {
            at: crate::loom_park::clock(),
        }
    }

    /// Under loom: a zero timeout is now; any other timeout is the next tick of the logical
    /// clock, which comes only when the model calls [`crate::futex::advance_clock`].
    pub fn after(timeout: Duration) -> Self {
        let now = crate::loom_park::clock();
        Deadline {
            at: if timeout.is_zero() { now } else { now + 1 },
        }
    }

    /// `None` stays `None` (no deadline); `Some(timeout)` becomes [`Deadline::after`].
    pub fn within(timeout: Option<Duration>) -> Option<Self> {
        timeout.map(Deadline::after)
    }

    /// Whether the logical clock has reached the deadline.
    pub fn has_passed(&self) -> bool {
        crate::loom_park::clock() >= self.at
    }

    /// Zero once passed, else one nanosecond per remaining tick (only the zero-ness means
    /// anything under loom).
    pub fn remaining(&self) -> Duration {
        Duration::from_nanos(self.at.saturating_sub(crate::loom_park::clock()))
    }
}

/// How long a blocking call may wait: the one wait mode of mproc's blocking calls, in place
/// of a `(deadline, block)` pair or an `Option<Deadline>` (Python's `block=` and `timeout=`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc_futex::{Deadline, Wait};
///
/// assert!(!Wait::Never.blocks());
/// assert_eq!(Wait::Forever.deadline(), None);
/// assert!(Wait::within(Some(Duration::from_millis(5))).deadline().is_some());
/// assert_eq!(Wait::within(None), Wait::Forever);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Try once, never sleep (`try_*` and `*_nowait` calls; Python's `block=False`).
    Never,
    /// Until the deadline (`*_timeout` calls; Python's `timeout=`).
    Until(Deadline),
    /// As long as it takes (Python's default `block=True` with no timeout).
    Forever,
}

impl Wait {
    /// `Forever` for `None`, else `Until` the deadline `timeout` from now.
    pub fn within(timeout: Option<Duration>) -> Wait {
        timeout.map_or(Wait::Forever, |t| Wait::Until(Deadline::after(t)))
    }

    /// `Forever` for `None`, else `Until(deadline)`: for callers that hold an optional
    /// deadline meaning "none: wait for ever".
    pub fn until(deadline: Option<Deadline>) -> Wait {
        deadline.map_or(Wait::Forever, Wait::Until)
    }

    /// The deadline of a timed wait (`None` for `Never` and `Forever`).
    pub fn deadline(self) -> Option<Deadline> {
        match self {
            Wait::Until(d) => Some(d),
            Wait::Never | Wait::Forever => None,
        }
    }

    /// Whether the call may sleep at all.
    pub fn blocks(self) -> bool {
        self != Wait::Never
    }

    /// Whether the wait is over: `Never` always is, `Until` once its deadline has passed,
    /// `Forever` never.
    pub fn has_passed(self) -> bool {
        match self {
            Wait::Never => true,
            Wait::Until(d) => d.has_passed(),
            Wait::Forever => false,
        }
    }
}

impl From<Duration> for Deadline {
    /// Same as [`Deadline::after`].
    fn from(timeout: Duration) -> Self {
        Deadline::after(timeout)
    }
}

/// The earlier of two optional deadlines, `None` meaning "never".
pub(crate) fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
