//! The parent's record of one started child: pid, pidfd, and its exit status once reaped.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::error::ProcessError;
use super::status::ExitStatus;
use super::sync::{AtomicBool, Ordering};
use super::sys::{self, PollFd};

/// Smallest and largest sleep of the no-pidfd fallback's `waitpid(WNOHANG)` loop.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(50);

/// Test switch: behave as on a kernel without pidfds (Linux < 5.3).
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

/// Makes every child started from now on use the `waitpid(WNOHANG)` fallback instead of a
/// pidfd, as on kernels without `pidfd_open`. For tests of that path.
#[doc(hidden)]
pub fn __disable_pidfd() {
    // Relaxed: see `ChildProc::new`.
    NO_PIDFD.store(true, Ordering::Relaxed);
}

/// A started child, from its parent's side.
///
/// Reaping and signalling happen under `status`'s lock, and only while the status is still
/// unknown: an unreaped child's pid cannot be reused, so a signal never hits a stranger.
#[derive(Debug)]
pub(crate) struct ChildProc {
    pub(crate) pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    status: Mutex<Reaped>,
}

#[derive(Debug, Clone, Copy)]
enum Reaped {
    Running,
    Done(ExitStatus),
    Lost,
}

impl ChildProc {
    /// Wraps a freshly created, unreaped child; opens its pidfd where the kernel has one.
    pub(crate) fn new(pid: libc::pid_t) -> Self {
        // Relaxed: a test-only switch, set before any child is started.
        let pidfd = if NO_PIDFD.load(Ordering::Relaxed) {
            None
        } else {
            sys::pidfd_open(pid).ok()
        };
        ChildProc {
            pid,
            pidfd,
            status: Mutex::new(Reaped::Running),
        }
    }

    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// Non-blocking: the exit status if the child has ended (reaping it), `None` if it runs.
    pub(crate) fn try_status(&self) -> Result<Option<ExitStatus>, ProcessError> {
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match *st {
            Reaped::Done(s) => return Ok(Some(s)),
            Reaped::Lost => return Err(ProcessError::Lost),
            Reaped::Running => {}
        }
        match sys::try_wait(self.pid) {
            Ok(None) => Ok(None),
            Ok(Some(s)) => {
                *st = Reaped::Done(s);
                Ok(Some(s))
            }
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                *st = Reaped::Lost;
                Err(ProcessError::Lost)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the child ends or `deadline` passes (`None`: no deadline). `Ok(None)` on
    /// timeout. Sleeps on the pidfd where there is one; otherwise polls `waitpid(WNOHANG)`
    /// with a backoff from 1 ms to 50 ms, never past the deadline.
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, ProcessError> {
        let mut backoff = BACKOFF_MIN;
        loop {
            if let Some(s) = self.try_status()? {
                return Ok(Some(s));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            match self.pidfd() {
                Some(fd) => {
                    sys::poll_readable(&mut [PollFd { fd, ready: false }], deadline)?;
                }
                None => {
                    let left = deadline.map_or(backoff, |d| d - now);
                    sys::nap(backoff.min(left));
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Sends `sig` unless the child has already been reaped (then it is a no-op).
    pub(crate) fn signal(&self, sig: libc::c_int) -> Result<(), ProcessError> {
        let st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match *st {
            Reaped::Running => match sys::send_signal(self.pid, self.pidfd(), sig) {
                // ESRCH cannot happen for an unreaped child; tolerate it anyway.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                r => r.map_err(Into::into),
            },
            Reaped::Done(_) | Reaped::Lost => Ok(()),
        }
    }

    /// Kills the child (SIGKILL) and reaps it, waiting at most `grace`. For failed starts.
    pub(crate) fn kill_and_reap(&self, grace: Duration) -> Option<ExitStatus> {
        let _ = self.signal(libc::SIGKILL);
        self.wait(Some(Instant::now() + grace)).ok().flatten()
    }
}
