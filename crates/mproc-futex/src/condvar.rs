//! [`Condvar`]: a condition variable used with a [`RawLock`] (Python's `Condition`).
//!
//! Algorithm: Rust std's futex condvar (`library/std/src/sys/sync/condvar/futex.rs`). One
//! futex word is a notification counter. A waiter reads it *before* releasing the lock, then
//! sleeps only while it still holds that value, so a notification made after the waiter
//! released the lock can never be missed. `notify_one` bumps the counter and wakes one
//! sleeper; `notify_all` bumps it and wakes all.
//!
//! `notify_all` wakes every sleeper, which then contend for the lock (a thundering herd).
//! Requeueing them onto the lock word (`FUTEX_CMP_REQUEUE`) would avoid that, but a requeued
//! sleeper would sleep on the lock word without its periodic owner-liveness check, so a lock
//! owner that died would strand it; and loom could not model it. Robustness wins here; the
//! herd costs one wake-up per sleeper, after which losers sleep on the lock with the usual
//! spin-then-sleep path.
//!
//! Like every condition variable, wake-ups can be spurious: wait in a loop on a predicate.
//!
//! # Participant death
//!
//! A condvar holds no ownership. If a participant dies holding the lock, a waiter that
//! re-acquires it gets `OwnerDied` (with the guard). A notification consumed by a process
//! that then dies before acting on it is lost for the others, as with any crash.

use crate::deadline::{Deadline, Wait};
use crate::lock::{LockError, LockGuard};
use crate::sync::{AtomicU32, Ordering};
use crate::waiter::{Futex, Waiter};
use std::marker::PhantomData;

/// Whether a [`Condvar::wait`] returned because its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the deadline passed (Python's `Condition.wait` returning `False`).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// What a successful (or `OwnerDied`) [`Condvar::wait`] hands back: the re-acquired guard and
/// whether the wait timed out.
pub type CondvarWait<'a, W> = (LockGuard<'a, W>, WaitTimeoutResult);

/// A process-shared condition variable, `#[repr(C)]`, four bytes; all-zero bytes are valid.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc_futex::{AlwaysAlive, Condvar, Deadline, RawLock, Wait};
///
/// let lock: RawLock = RawLock::new();
/// let cv: Condvar = Condvar::new();
/// let guard = lock.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
/// let (guard, res) = cv
///     .wait(guard, Wait::Until(Deadline::after(Duration::from_millis(1))))
///     .unwrap();
/// assert!(res.timed_out());
/// drop(guard);
/// ```
#[repr(C)]
pub struct Condvar<W: Waiter = Futex> {
    seq: AtomicU32,
    _waiter: PhantomData<fn() -> W>,
}

// SAFETY: `repr(C)`, one `AtomicU32` notification counter (any value) and a zero-sized
// marker; `Sync`.
crate::primitive::shared_primitive!(Condvar<W>, default: new_for_waiter());

crate::primitive::debug_via_getters!(Condvar<W> { .. });

impl<W: Waiter> Condvar<W> {
    /// A condition variable (all-zero bytes).
    #[cfg(not(mproc_loom))]
    pub const fn new_for_waiter() -> Self {
        Condvar {
            seq: AtomicU32::new(0),
            _waiter: PhantomData,
        }
    }

    /// A condition variable.
    #[cfg(mproc_loom)]
    pub fn new_for_waiter() -> Self {
        Condvar {
            seq: AtomicU32::new(0),
            _waiter: PhantomData,
        }
    }

    /// Releases the guard's lock, sleeps until notified (or spuriously woken, or `wait` runs
    /// out), and re-acquires the lock — with [`Wait::Forever`], like Python's
    /// `Condition.wait`; [`Wait::Never`] releases and re-acquires without sleeping.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (carrying the guard and the timeout result) if the lock was
    /// re-acquired from an owner that died (or poisoned by one); [`LockError::NotRecoverable`] if a strict lock became
    /// unusable meanwhile.
    pub fn wait<'a>(
        &self,
        guard: LockGuard<'a, W>,
        wait: Wait,
    ) -> Result<CondvarWait<'a, W>, LockError<CondvarWait<'a, W>>> {
        let deadline = match wait {
            Wait::Never => Some(Deadline::now()),
            Wait::Until(_) | Wait::Forever => wait.deadline(),
        };
        // Relaxed: read while holding the lock; any notifier that changes the predicate
        // does so under the lock after we release it, so its increment comes later in the
        // counter's modification order (std's argument).
        let seq = self.seq.load(Ordering::Relaxed);
        let lock = guard.lock();
        let me = guard.participant();
        let liveness = guard.liveness();
        // A failed unlock means a wrong liveness gave our lock away; we re-acquire anyway.
        let _ = guard.unlock();
        let woken = W::wait(&self.seq, seq, deadline);
        let res = WaitTimeoutResult(!woken);
        match lock.lock(me, liveness, Wait::Forever) {
            Ok(g) => Ok((g, res)),
            Err(e) => Err(e.map(|g| (g, res))),
        }
    }

    /// Wakes one waiter (Python's `notify()`).
    pub fn notify_one(&self) {
        // Relaxed: the counter only needs to change; data is published by the lock.
        self.seq.fetch_add(1, Ordering::Relaxed);
        W::wake(&self.seq, 1);
    }

    /// Wakes `n` waiters (Python's `notify(n)`).
    pub fn notify(&self, n: u32) {
        // Relaxed: as in `notify_one`.
        self.seq.fetch_add(1, Ordering::Relaxed);
        W::wake(&self.seq, n);
    }

    /// Wakes every waiter (Python's `notify_all()`).
    pub fn notify_all(&self) {
        // Relaxed: as in `notify_one`.
        self.seq.fetch_add(1, Ordering::Relaxed);
        W::wake(&self.seq, u32::MAX);
    }
}

impl Condvar {
    crate::sync::loom_const_fn! {
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`],
        /// use [`Condvar::new_for_waiter`].
        pub fn new() -> Self {
            Self::new_for_waiter()
        }
    }
}
