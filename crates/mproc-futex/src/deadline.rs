//! [`Deadline`]: an absolute point on `CLOCK_MONOTONIC`.
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
