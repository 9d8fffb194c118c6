//! [`Condition`]: Python's `multiprocessing.Condition` across processes: a robust lock and
//! `mproc-futex`'s [`Condvar`] (a notification counter: `notify` never waits for anybody).
#![allow(unsafe_code)]

use mproc_core::shared::SharedBytes;
use std::fmt;
use std::time::Duration;

use mproc_futex::{Condvar, Deadline, LockGuard, RawLock, Wait};

use super::acquire::lock_methods;
use super::backing::Kind;
use super::error::AcquireError;
use super::handle::shared_handle;
use super::lock::LockOptions;
use crate::storage::object::CreateError;

/// The shared state: the lock and the condition variable's counter.
#[repr(C)]
struct CondState {
    lock: RawLock,
    cv: Condvar,
}

// SAFETY: `repr(C)`, a `RawLock` and a `Condvar`, both `SharedState`; `Sync`.
unsafe impl mproc_core::shared::SharedState for CondState {}

const KIND: Kind = Kind::of::<CondState>("Condition/v1", "Condition");

shared_handle! {
    /// A condition variable with its own lock, shared between processes (Python's
    /// `multiprocessing.Condition`).
    ///
    /// Acquire it to get a [`ConditionGuard`]; the guard waits ([`ConditionGuard::wait`],
    /// [`wait_timeout`](ConditionGuard::wait_timeout), [`wait_for`](ConditionGuard::wait_for))
    /// and notifies ([`notify`](ConditionGuard::notify), [`notify_all`](ConditionGuard::notify_all)),
    /// so Python's "lock not owned" errors cannot happen. The lock is not reentrant (see the
    /// [module docs](super#why-condition-uses-a-plain-lock)). Wake-ups can be spurious, as with
    /// every condition variable: wait in a loop on a predicate, or use `wait_for`.
    ///
    /// Death: a holder that dies gives the next acquirer (or a waiter re-taking the lock)
    /// [`AcquireError::OwnerDied`] with the guard, and the lock stays poisoned until
    /// [`ConditionGuard::mark_consistent`] or [`Condition::clear_poison`], as a
    /// [`Lock`](crate::Lock)'s does (see its docs; [`Condition::with_options`] makes it strict);
    /// a waiter that dies changes nothing for the others (`notify` never waits for
    /// acknowledgements, unlike Python's, which hangs).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::Condition;
    /// use std::time::Duration;
    ///
    /// let cond = Condition::new()?;
    /// let guard = cond.acquire().expect("free");
    /// let (guard, notified) = guard.wait_timeout(Duration::from_millis(1)).expect("re-taken");
    /// assert!(!notified);
    /// guard.notify_all();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct Condition;
    kind: KIND,
    state: CondState,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("owner", &self.state().lock.owner())
            .finish()
    }
}

/// What [`ConditionGuard::wait_timeout`] and [`ConditionGuard::wait_for`] return: the guard
/// (the lock is held again) and Python's boolean result.
pub type WaitResult<'a> = (ConditionGuard<'a>, bool);

impl Condition {
    /// A new condition (with its lock unlocked) in the small-object [cell store](crate::storage::cells)
    /// (Python: `Condition()`).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new() -> Result<Condition, CreateError> {
        // All-zero bytes are an unlocked lock and a fresh counter.
        Condition::create(None, |_| ())
    }

    /// A new condition whose lock has `options` (e.g. strict recovery).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_options(options: LockOptions) -> Result<Condition, CreateError> {
        // The state is a `CondState` whose first field (`repr(C)`) is the lock; the counter
        // stays all-zero.
        let init = |state: &SharedBytes| options.init_raw_lock(state);
        Condition::create(None, init)
    }

    /// A new condition under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str) -> Result<Condition, CreateError> {
        Condition::create(Some(name), |_| ())
    }

    /// The condition's robust lock.
    fn raw_lock(&self) -> &RawLock {
        &self.state().lock
    }

    fn guard<'a>(
        &'a self,
        r: Result<LockGuard<'a>, mproc_futex::LockError<LockGuard<'a>>>,
    ) -> Result<ConditionGuard<'a>, AcquireError<ConditionGuard<'a>>> {
        let wrap = |g| ConditionGuard {
            guard: g,
            cv: &self.state().cv,
        };
        r.map(wrap).map_err(|e| AcquireError::from(e).map(wrap))
    }

    /// Takes the condition's lock (Python: `acquire()` / `with cond:`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] (with the guard: held, and poisoned),
    /// [`AcquireError::NotRecoverable`] (strict), [`AcquireError::Register`].
    pub fn acquire(&self) -> Result<ConditionGuard<'_>, AcquireError<ConditionGuard<'_>>> {
        self.lock_with(Wait::Forever)
    }

    /// Every acquire goes through here with its wait mode (`Never`: the try path).
    fn lock_with(
        &self,
        mode: Wait,
    ) -> Result<ConditionGuard<'_>, AcquireError<ConditionGuard<'_>>> {
        let me = self.me()?;
        let (lock, liveness) = (self.raw_lock(), &self.shared.liveness);
        self.guard(lock.lock(me, liveness, mode))
    }

    lock_methods! {
        guard: ConditionGuard<'_>,
        raw: raw_lock,
        /// Takes the lock without sleeping (Python: `acquire(block=False)`).
        try_acquire,
    }
}

/// Holds a [`Condition`]'s lock; waits and notifies through it; releases the lock on drop.
#[must_use = "if unused the lock will immediately unlock"]
pub struct ConditionGuard<'a> {
    guard: LockGuard<'a>,
    cv: &'a Condvar,
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("guard", &self.guard)
            .finish()
    }
}

impl<'a> ConditionGuard<'a> {
    /// Every wait goes through here with its wait mode.
    fn wait_with(self, mode: Wait) -> Result<WaitResult<'a>, AcquireError<WaitResult<'a>>> {
        let cv = self.cv;
        let wrap = |(guard, res): (LockGuard<'a>, mproc_futex::WaitTimeoutResult)| {
            (ConditionGuard { guard, cv }, !res.timed_out())
        };
        cv.wait(self.guard, mode)
            .map(wrap)
            .map_err(|e| AcquireError::from(e).map(wrap))
    }

    /// Releases the lock, sleeps until notified (or woken spuriously), and takes the lock
    /// again (Python: `wait()`).
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] (with the guard) if a holder died while we slept;
    /// [`AcquireError::NotRecoverable`].
    pub fn wait(self) -> Result<ConditionGuard<'a>, AcquireError<ConditionGuard<'a>>> {
        self.wait_with(Wait::Forever)
            .map(|(g, _)| g)
            .map_err(|e| e.map(|(g, _)| g))
    }

    /// As [`wait`](Self::wait), for at most `timeout`; the `bool` is `false` if the timeout
    /// passed (Python: `wait(timeout)`; `Duration::ZERO` returns `false` at once). The lock
    /// is held again either way.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(
        self,
        timeout: Duration,
    ) -> Result<WaitResult<'a>, AcquireError<WaitResult<'a>>> {
        self.wait_with(Wait::Until(Deadline::after(timeout)))
    }

    /// Waits until `predicate()` is true, or `timeout` passes (`None`: no limit); returns the
    /// predicate's last value (Python: `wait_for(predicate, timeout)`). The predicate is
    /// evaluated first, and always with the lock held; the deadline is absolute (monotonic),
    /// so spurious wake-ups never stretch it.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_for(
        self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<WaitResult<'a>, AcquireError<WaitResult<'a>>> {
        let mode = Wait::within(timeout);
        let mut guard = self;
        loop {
            if predicate() {
                return Ok((guard, true));
            }
            if mode.has_passed() {
                return Ok((guard, false));
            }
            let (g, _) = guard.wait_with(mode)?;
            guard = g;
        }
    }

    /// Wakes one waiter, if any (Python: `notify()`).
    pub fn notify(&self) {
        self.cv.notify_one();
    }

    /// Wakes up to `n` waiters (Python: `notify(n)`).
    pub fn notify_n(&self, n: u32) {
        self.cv.notify(n);
    }

    /// Wakes every waiter (Python: `notify_all()`).
    pub fn notify_all(&self) {
        self.cv.notify_all();
    }

    /// Declares the protected state repaired after [`AcquireError::OwnerDied`]: the lock is
    /// no longer poisoned.
    pub fn mark_consistent(&mut self) {
        self.guard.mark_consistent();
    }

    /// Whether [`mark_consistent`](Self::mark_consistent) is still needed.
    pub fn is_inconsistent(&self) -> bool {
        self.guard.is_inconsistent()
    }
}
