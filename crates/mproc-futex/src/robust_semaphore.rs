//! [`RobustSemaphore`]: a counting semaphore (optionally bounded) that gives back the permits
//! of a participant that dies holding them.
//!
//! See [`RobustSemaphore`] for the design, the rules and what a death does.

use std::fmt;

use crate::deadline::{Deadline, Wait, earliest};
use crate::ledger::{Caller, Give, GiveError, LEDGER_ENTRIES, Ledger, LedgerError};
use crate::lock::{CHECK_INTERVAL_MAX, CHECK_INTERVAL_MIN};
use crate::sync::{AtomicU32, Ordering};
use crate::waiter::{Futex, Waiter};
use mproc_core::sleepers::Sleepers;

/// A counting semaphore whose permits come back when their holder dies (see below).
/// `#[repr(C)]`, atomics only. All-zero bytes are a semaphore with no
/// permit and bound 0; call [`init`](Self::init) before use.
///
/// Built on a [`Ledger`]: the permits are the ledger's value (the futex word sleepers wait
/// on), each acquire records the permit as held by the caller and each release gives one back
/// from what the caller holds (a release by a participant that holds none is allowed, as in
/// Python, and counted as a give "by a non-holder"). The rule for a dead holder is the
/// ledger's: its permits come back **less every release made by a participant that held
/// none**, since such a release may have been made on its behalf. So a permit is never
/// returned twice and a `BoundedSemaphore` never passes its bound; a permit a non-holder
/// released for a *live* holder while a dead one still held one comes back only when that
/// live holder dies too.
///
/// Who notices a death: an acquirer that has slept a check interval (1 ms, doubling to
/// [`CHECK_INTERVAL_MAX`]) without a permit asks the liveness about every entry that holds
/// permits and gives a dead holder's back ([`RobustSemaphore::reclaim_dead`], which a polling
/// caller may also run itself). So a survivor blocked on a dead holder's permit gets it within
/// about one check interval plus the time to ask the kernel.
///
/// Compared with the lock-free [`Semaphore`](crate::Semaphore): every acquire and release
/// takes the ledger's robust guard (one uncontended CAS and one release store more), and the
/// value is about 1.2 KiB instead of 8 bytes.
///
/// # Examples
///
/// ```
/// use mproc_futex::{Caller, RobustSemaphore};
///
/// let sem: RobustSemaphore = RobustSemaphore::new(1, None);
/// let dead = |id: u32| id != 7; // participant 7 is dead
/// let seven = Caller { id: 7, liveness: &dead };
/// let me = Caller { id: 1, liveness: &dead };
/// assert!(sem.try_acquire(seven).unwrap()); // 7 takes the permit, then dies
/// assert!(!sem.try_acquire(me).unwrap());
/// assert_eq!(sem.reclaim_dead(me).unwrap(), 1); // its permit comes back
/// assert!(sem.try_acquire(me).unwrap());
/// ```
#[repr(C)]
pub struct RobustSemaphore<W: Waiter = Futex, const N: usize = LEDGER_ENTRIES> {
    ledger: Ledger<W, N>,
    /// Acquirers between registering and leaving (mproc-core's sleepers protocol, with the
    /// ledger's value as futex word and condition).
    sleepers: Sleepers,
    /// The most permits there may be (`u32::MAX` for an unbounded semaphore).
    bound: AtomicU32,
}

// SAFETY: `repr(C)`, a `Ledger` (`SharedState`) and two `AtomicU32`s; `Sync`.
crate::primitive::shared_primitive!(RobustSemaphore<W, const N>);

impl<W: Waiter, const N: usize> fmt::Debug for RobustSemaphore<W, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustSemaphore")
            .field("permits", &self.value())
            .field("bound", &self.bound())
            .field("ledger", &self.ledger)
            .finish()
    }
}

impl<W: Waiter, const N: usize> RobustSemaphore<W, N> {
    /// A semaphore with `permits` permits, never more than `bound` (`None`: unbounded).
    pub fn new_for_waiter(permits: u32, bound: Option<u32>) -> Self {
        let s = RobustSemaphore {
            ledger: Ledger::with_value_for_waiter(0),
            sleepers: Sleepers::new(),
            bound: AtomicU32::new(0),
        };
        s.init(permits, bound);
        s
    }

    /// Sets the count and bound of a semaphore nobody uses yet (e.g. zeroed in a fresh
    /// segment). `bound: None` is unbounded; a bound below `permits` is raised to it.
    pub fn init(&self, permits: u32, bound: Option<u32>) {
        // Relaxed: published by the Release in `Ledger::init`.
        self.bound.store(
            bound.map_or(u32::MAX, |b| b.max(permits)),
            Ordering::Relaxed,
        );
        self.ledger.init(permits);
    }

    /// The number of permits now (Python's `get_value`).
    pub fn value(&self) -> u32 {
        self.ledger.value()
    }

    /// The bound (`u32::MAX` when unbounded).
    pub fn bound(&self) -> u32 {
        // Relaxed: written once at initialisation; untrusted (a wrong bound only makes
        // releases fail or pass).
        self.bound.load(Ordering::Relaxed)
    }

    /// The ledger underneath (for diagnostics: who holds what, permits reclaimed).
    pub fn ledger(&self) -> &Ledger<W, N> {
        &self.ledger
    }

    /// Permits given back for dead holders so far.
    pub fn reclaimed(&self) -> u64 {
        self.ledger.reclaimed()
    }

    /// Takes a permit if one is available now (`acquire(block=False)`). Does not look for
    /// dead holders; see [`reclaim_dead`](Self::reclaim_dead).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Corrupt`] when the ledger's guard is unusable.
    pub fn try_acquire(&self, who: Caller<'_>) -> Result<bool, LedgerError> {
        if self.value() == 0 {
            return Ok(false);
        }
        self.ledger.take(who, 1, true, Wait::Forever)
    }

    /// Takes a permit, sleeping until one is released, a dead holder's comes back, or
    /// `wait` runs out; `Ok(false)` on timeout. [`Wait::Never`] is
    /// [`try_acquire`](Self::try_acquire).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Corrupt`] when the ledger's guard is unusable.
    pub fn acquire(&self, who: Caller<'_>, wait: Wait) -> Result<bool, LedgerError> {
        if !wait.blocks() {
            return self.try_acquire(who);
        }
        let deadline = wait.deadline();
        let mut interval = CHECK_INTERVAL_MIN;
        loop {
            if self.value() > 0 {
                match self.ledger.take(who, 1, true, Wait::until(deadline)) {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(LedgerError::Timeout) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return Ok(false);
            }
            // Fixed before the sleep: bounds how long a dead holder's permit can keep us.
            let check_at = Deadline::after(interval);
            // Register (count, fence), then look again (Dekker pair with `wake_sleepers`).
            self.sleepers.register();
            let woken = if self.value() == 0 {
                W::wait(
                    self.ledger.value_word(),
                    0,
                    earliest(Some(check_at), deadline),
                )
            } else {
                true
            };
            self.sleepers.unregister();
            if !woken && !deadline.is_some_and(|d| d.has_passed()) {
                // A whole check interval without a permit: maybe a holder died.
                interval = (interval * 2).min(CHECK_INTERVAL_MAX);
                match self.reclaim_dead_by(who, deadline) {
                    Ok(_) | Err(LedgerError::Timeout) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Gives back `n` permits and wakes up to `n` sleepers (Python's `release(n)`).
    ///
    /// # Errors
    ///
    /// [`GiveError::TooMany`] if the count would pass the bound (Python's `ValueError`);
    /// nothing is released.
    pub fn release(&self, who: Caller<'_>, n: u32) -> Result<(), GiveError> {
        if n == 0 {
            return Ok(());
        }
        let bound = self.bound();
        self.ledger
            .give(who, n, Give::ToValue { bound }, Wait::Forever)?;
        self.wake_sleepers(n);
        Ok(())
    }

    /// Gives back the permits of holders that died (asking the liveness about each holder),
    /// waking sleepers for them; returns how many came back.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Corrupt`] when the ledger's guard is unusable.
    pub fn reclaim_dead(&self, who: Caller<'_>) -> Result<u64, LedgerError> {
        self.reclaim_dead_by(who, None)
    }

    fn reclaim_dead_by(
        &self,
        who: Caller<'_>,
        deadline: Option<Deadline>,
    ) -> Result<u64, LedgerError> {
        let back = self.ledger.reclaim_dead(who, true, Wait::until(deadline))?;
        if back > 0 {
            self.wake_sleepers(u32::try_from(back).unwrap_or(u32::MAX));
        }
        Ok(back)
    }

    fn wake_sleepers(&self, n: u32) {
        // Dekker pair with `acquire`: permits published, then fence and look for sleepers.
        if self.sleepers.should_wake() {
            W::wake(self.ledger.value_word(), n);
        }
    }
}

impl RobustSemaphore {
    /// A semaphore with `permits` permits and an optional `bound`, sleeping with [`Futex`].
    pub fn new(permits: u32, bound: Option<u32>) -> Self {
        Self::new_for_waiter(permits, bound)
    }
}
