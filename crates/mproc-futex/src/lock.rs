//! [`RawLock`]: a robust, process-shared mutex in one futex word, and its [`LockGuard`].
//!
//! Algorithm: Rust std's futex mutex (`library/std/src/sys/sync/mutex/futex.rs`: CAS fast
//! path, bounded load-only spin, sleep on the word, unlock wakes only if someone sleeps),
//! with the owner's participant id stored in the word the way Linux PI futexes store a tid,
//! and the state machine of a POSIX robust mutex (`EOWNERDEAD` → `pthread_mutex_consistent`
//! or `ENOTRECOVERABLE`).
//!
//! # The word
//!
//! | bits 31       | bit 30    | bits 0–29     | state                                             |
//! |---------------|-----------|---------------|---------------------------------------------------|
//! | 0             | 0         | 0             | unlocked (all-zero bytes: a zeroed segment is a valid lock) |
//! | 0             | 0/1       | owner id      | locked by `owner`; bit 30 = somebody may sleep   |
//! | 1             | 0/1       | owner id      | locked by `owner`, who took it from a dead owner and has not called `mark_consistent` yet |
//! | 1             | 0         | 0             | not recoverable: an owner died and its successor unlocked without marking it consistent |
//!
//! Taking the lock and recording the owner are one CAS (`0 → me`), so there is no instant at
//! which a crash leaves the lock taken by nobody known.
//!
//! # Owner death
//!
//! A waiter asks the [`Liveness`] about the recorded owner before its first sleep, whenever it
//! sees a new owner, and each time a sleep reaches its check interval. The interval starts at
//! [`CHECK_INTERVAL_MIN`] and doubles up to [`CHECK_INTERVAL_MAX`]. If the owner is dead, the
//! waiter CASes the exact word it judged to `me | INCONSISTENT`: with many sleepers racing,
//! exactly one CAS wins and that acquirer alone is told [`Acquired::OwnerDied`]; the others go
//! on waiting for the new owner. **Worst-case takeover delay**: an acquirer that arrives after
//! the death takes over at once (the check precedes its first sleep); a sleeper that was
//! already asleep notices within one check interval, so at most [`CHECK_INTERVAL_MAX`]
//! (32 ms) plus the time to be scheduled, plus however long the liveness needs to see the
//! death. `tests/lock_process.rs` measures it after a real `SIGKILL`.
//!
//! The new holder repairs the protected data and calls `mark_consistent`; if it unlocks
//! without doing so, the lock becomes not recoverable and every later acquire fails with
//! [`AcquireError::NotRecoverable`] (it can only be re-initialised). If the new holder dies
//! too, the next acquirer is told `OwnerDied` again.

use crate::deadline::{Deadline, Wait, earliest};
use crate::liveness::{Liveness, check_id};
use crate::sync::{AtomicU32, Ordering, SPIN_LIMIT, spin_loop};
use crate::waiter::{Futex, Waiter};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Owner participant id (0 = nobody).
pub(crate) const OWNER_MASK: u32 = (1 << 30) - 1;
/// Somebody may be asleep on the word: unlock must wake.
pub(crate) const WAITERS: u32 = 1 << 30;
/// With an owner: taken over from a dead owner, not yet marked consistent.
/// Without an owner: not recoverable.
pub(crate) const INCONSISTENT: u32 = 1 << 31;
const UNLOCKED: u32 = 0;
const NOT_RECOVERABLE: u32 = INCONSISTENT;

/// First interval after which a sleeper asks whether the owner still lives.
pub const CHECK_INTERVAL_MIN: Duration = Duration::from_millis(1);
/// Longest interval between two liveness checks of a sleeper: the bound on how late a
/// sleeper notices that the owner died.
pub const CHECK_INTERVAL_MAX: Duration = Duration::from_millis(32);

/// How a lock was acquired.
#[must_use = "an OwnerDied acquisition must be handled (repair, then mark_consistent)"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Taken from an unlocked state (or handed over by a live owner).
    Clean,
    /// Taken over from an owner that died holding it (`EOWNERDEAD`): the protected data may
    /// be half-updated. Call `mark_consistent` after repairing it, before unlocking.
    OwnerDied,
}

/// Why an acquire failed at the raw level (the lock is not held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// `try_*` only: somebody alive holds the lock.
    #[error("lock is held by another participant")]
    WouldBlock,
    /// The deadline passed first.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// An owner died and its successor unlocked without marking the lock consistent
    /// (`ENOTRECOVERABLE`). The lock stays unusable until re-initialised.
    #[error("lock is not recoverable: an owner died and the lock was not marked consistent")]
    NotRecoverable,
}

/// Why an unlock or `mark_consistent` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnlockError {
    /// The lock word does not name the caller as owner (Python's `RuntimeError: release
    /// unlocked lock`, or an `RLock` released by a thread that does not own it).
    #[error("lock is not held by the caller")]
    NotOwner,
}

/// A robust mutual-exclusion lock in one process-shared `u32` (Python's
/// `multiprocessing.Lock`, without data).
///
/// The word holds the owner's participant id in bits 0–29, bit 30 = "somebody may sleep",
/// bit 31 = "taken over from a dead owner, not yet marked consistent" (with no owner: not
/// recoverable). A waiter asks the [`Liveness`] about the owner before its first sleep, on
/// every new owner, and after each check interval (1 ms doubling to [`CHECK_INTERVAL_MAX`]);
/// a dead owner's lock is CASed over by exactly one acquirer, who gets
/// [`Acquired::OwnerDied`]. Worst-case takeover delay for a sleeper: [`CHECK_INTERVAL_MAX`]
/// plus scheduling plus the liveness query; for a later arrival: none.
///
/// `#[repr(C)]`, four bytes, position-independent: all-zero bytes are an unlocked lock, so it
/// can live in a zeroed shared segment, in a `static` or on the heap, and works the same.
/// Every call names the caller's participant id `me`.
///
/// # Examples
///
/// ```
/// use mproc_futex::{AlwaysAlive, RawLock, Wait};
///
/// static LOCK: RawLock = RawLock::new();
/// let guard = LOCK.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
/// assert_eq!(LOCK.owner(), Some(1));
/// drop(guard);
/// assert_eq!(LOCK.owner(), None);
/// ```
#[repr(C)]
pub struct RawLock<W: Waiter = Futex> {
    word: AtomicU32,
    _waiter: PhantomData<fn() -> W>,
}

impl<W: Waiter> Default for RawLock<W> {
    fn default() -> Self {
        Self::new_for_waiter()
    }
}

impl<W: Waiter> fmt::Debug for RawLock<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawLock")
            .field("word", &format_args!("{:#010x}", self.word()))
            .finish()
    }
}

impl<W: Waiter> RawLock<W> {
    /// An unlocked lock (all-zero bytes).
    #[cfg(not(mproc_loom))]
    pub const fn new_for_waiter() -> Self {
        RawLock {
            word: AtomicU32::new(UNLOCKED),
            _waiter: PhantomData,
        }
    }

    /// An unlocked lock (loom atomics cannot be built in a `const fn`).
    #[cfg(mproc_loom)]
    pub fn new_for_waiter() -> Self {
        RawLock {
            word: AtomicU32::new(UNLOCKED),
            _waiter: PhantomData,
        }
    }

    /// The raw word, for diagnostics.
    pub fn word(&self) -> u32 {
        // Relaxed: a diagnostic snapshot, no data is read on the strength of it.
        self.word.load(Ordering::Relaxed)
    }

    /// The futex word itself (for a [`Condvar`](crate::Condvar) or for tests).
    pub(crate) fn atomic(&self) -> &AtomicU32 {
        &self.word
    }

    /// The recorded owner, if the lock is held.
    pub fn owner(&self) -> Option<u32> {
        match self.word() & OWNER_MASK {
            0 => None,
            id => Some(id),
        }
    }

    /// Whether the lock is held by somebody.
    pub fn is_locked(&self) -> bool {
        self.owner().is_some()
    }

    /// Whether the lock has become unusable (`ENOTRECOVERABLE`).
    pub fn is_not_recoverable(&self) -> bool {
        self.word() & !WAITERS == NOT_RECOVERABLE
    }

    /// Acquires the lock for participant `me`, sleeping until it is free or `wait` runs out
    /// (Python's `Lock.acquire(timeout=...)`); [`Wait::Never`] is
    /// [`try_acquire`](Self::try_acquire) after one fast-path attempt.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Timeout`] when the deadline passes first, [`AcquireError::WouldBlock`]
    /// for `Never` when a live participant holds it, and [`AcquireError::NotRecoverable`]
    /// when the lock is unusable.
    ///
    /// # Panics
    ///
    /// If `me` is 0 or above [`MAX_PARTICIPANT_ID`](crate::MAX_PARTICIPANT_ID).
    #[inline]
    pub fn acquire<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
        wait: Wait,
    ) -> Result<Acquired, AcquireError> {
        check_id(me);
        // Acquire: pairs with the Release CAS in `release`, so the previous holder's writes
        // to the protected data are visible to us.
        if self
            .word
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Acquired::Clean);
        }
        match wait {
            Wait::Never => self.try_acquire(me, liveness),
            Wait::Until(_) | Wait::Forever => self.acquire_slow(me, liveness, wait.deadline()),
        }
    }

    /// Acquires the lock without sleeping: takes it if free, takes it over if its owner is
    /// dead (asking `liveness`), and otherwise fails with [`AcquireError::WouldBlock`].
    ///
    /// # Errors
    ///
    /// [`AcquireError::WouldBlock`] or [`AcquireError::NotRecoverable`].
    ///
    /// # Panics
    ///
    /// If `me` is not a valid participant id.
    pub fn try_acquire<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
    ) -> Result<Acquired, AcquireError> {
        check_id(me);
        let mut w = UNLOCKED;
        // A failed CAS means the word changed under us; retry a few times, never spin long.
        for _ in 0..4 {
            // Acquire on success: pairs with the Release CAS in `release` (see `acquire`).
            match self.word.compare_exchange(
                w,
                self.next_for(me, w),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(self.outcome(w)),
                Err(now) => w = now,
            }
            let owner = w & OWNER_MASK;
            if owner == 0 {
                if w & INCONSISTENT != 0 {
                    return Err(AcquireError::NotRecoverable);
                }
                continue;
            }
            if liveness.is_alive(owner) {
                return Err(AcquireError::WouldBlock);
            }
        }
        Err(AcquireError::WouldBlock)
    }

    /// The word that `me` writes to acquire from `w`, assuming `w` is free or has a dead owner.
    fn next_for(&self, me: u32, w: u32) -> u32 {
        if w & OWNER_MASK == 0 {
            me | (w & WAITERS)
        } else {
            me | INCONSISTENT | (w & WAITERS)
        }
    }

    fn outcome(&self, w: u32) -> Acquired {
        if w & OWNER_MASK == 0 {
            Acquired::Clean
        } else {
            Acquired::OwnerDied
        }
    }

    #[cold]
    fn acquire_slow<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
        deadline: Option<Deadline>,
    ) -> Result<Acquired, AcquireError> {
        let mut w = self.spin();
        let mut interval = CHECK_INTERVAL_MIN;
        let mut check_due = true;
        let mut alive_owner = 0;
        loop {
            let owner = w & OWNER_MASK;
            if owner == 0 {
                if w & INCONSISTENT != 0 {
                    return Err(AcquireError::NotRecoverable);
                }
                // Free. Take it marked WAITERS, as std does after contention: we cannot know
                // whether other sleepers remain, so the next unlock must wake one.
                // Acquire: pairs with the Release CAS in `release`.
                match self.word.compare_exchange(
                    w,
                    me | WAITERS,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Acquired::Clean),
                    Err(now) => {
                        w = now;
                        continue;
                    }
                }
            }
            // Fixed *before* asking about the owner: if the owner dies after the check said
            // "alive", this deadline is already running and bounds how long we sleep on it.
            let check_at = Deadline::after(interval);
            if check_due || owner != alive_owner {
                if !liveness.is_alive(owner) {
                    // Take over from exactly the word we judged: among racing acquirers one
                    // CAS wins; the losers see the new owner and keep waiting.
                    // Acquire: the dead owner released nothing, but we do pair with whatever
                    // Release the word's history carries; the data may be inconsistent, which
                    // is what OwnerDied says.
                    match self.word.compare_exchange(
                        w,
                        me | INCONSISTENT | (w & WAITERS),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Ok(Acquired::OwnerDied),
                        Err(now) => {
                            w = now;
                            continue;
                        }
                    }
                }
                alive_owner = owner;
                check_due = false;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return Err(AcquireError::Timeout);
            }
            if w & WAITERS == 0 {
                // Relaxed: only announces a sleeper; nothing is published with it.
                if let Err(now) =
                    self.word
                        .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                {
                    w = now;
                    continue;
                }
            }
            let woken = W::wait(&self.word, w | WAITERS, earliest(Some(check_at), deadline));
            if !woken {
                if deadline.is_some_and(|d| d.has_passed()) {
                    return Err(AcquireError::Timeout);
                }
                interval = (interval * 2).min(CHECK_INTERVAL_MAX);
                check_due = true;
            }
            // Relaxed: the acquiring CAS above carries the Acquire.
            w = self.word.load(Ordering::Relaxed);
        }
    }

    /// Bounded load-only spin: returns the word once it is free, somebody already sleeps on
    /// it (spinning behind sleepers is wasted), or the budget is spent.
    fn spin(&self) -> u32 {
        let mut budget = SPIN_LIMIT;
        loop {
            // Relaxed: we only look; the acquiring CAS carries the Acquire.
            let w = self.word.load(Ordering::Relaxed);
            if w & OWNER_MASK == 0 || w & WAITERS != 0 || budget == 0 {
                return w;
            }
            spin_loop();
            budget -= 1;
        }
    }

    /// Releases the lock held by `me`. Makes a system call only if somebody may be asleep.
    /// If `me` took the lock over from a dead owner and has not called
    /// [`mark_consistent`](Self::mark_consistent), the lock becomes not recoverable and all
    /// sleepers are woken to be told so.
    ///
    /// Like Python's `Lock.release`, any thread of participant `me` may release it.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] if the word does not name `me` as owner (nothing changes).
    #[inline]
    pub fn release(&self, me: u32) -> Result<(), UnlockError> {
        // Not an id (0, or flag bits set): it owns nothing, and must not match a word that
        // carries those flags in the fast path below.
        if me == 0 || me & !OWNER_MASK != 0 {
            return Err(UnlockError::NotOwner);
        }
        // Fast path: held by `me` with no flag set (nobody waits, consistent). Release: as
        // in the loop below; the failure value starts the loop.
        let Err(mut w) =
            self.word
                .compare_exchange(me, UNLOCKED, Ordering::Release, Ordering::Relaxed)
        else {
            return Ok(());
        };
        loop {
            if w & OWNER_MASK != me {
                return Err(UnlockError::NotOwner);
            }
            let new = if w & INCONSISTENT != 0 {
                NOT_RECOVERABLE
            } else {
                UNLOCKED
            };
            // Release: pairs with the Acquire CAS of the next acquirer, publishing the data
            // written under the lock. Only the WAITERS bit can change under us, so this
            // loop ends after at most a few turns.
            match self
                .word
                .compare_exchange(w, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if w & WAITERS != 0 {
                        if new == NOT_RECOVERABLE {
                            W::wake(&self.word, u32::MAX);
                        } else {
                            W::wake(&self.word, 1);
                        }
                    }
                    return Ok(());
                }
                Err(now) => w = now,
            }
        }
    }

    /// Declares the data repaired after an [`Acquired::OwnerDied`] acquisition
    /// (`pthread_mutex_consistent`), so that unlocking leaves a normal lock.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] if `me` does not hold the lock.
    pub fn mark_consistent(&self, me: u32) -> Result<(), UnlockError> {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & OWNER_MASK != me {
                return Err(UnlockError::NotOwner);
            }
            if w & INCONSISTENT == 0 {
                return Ok(());
            }
            // Relaxed: the holder changes its own flag; nothing is published.
            match self.word.compare_exchange(
                w,
                w & !INCONSISTENT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => w = now,
            }
        }
    }

    /// Whether the holder must still call [`mark_consistent`](Self::mark_consistent).
    pub fn is_inconsistent(&self) -> bool {
        let w = self.word();
        w & OWNER_MASK != 0 && w & INCONSISTENT != 0
    }

    /// Acquires the lock and returns a guard that releases it on drop.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] carries the guard (the lock *is* held) when the lock was
    /// taken over from a dead owner; [`LockError::Timeout`] and
    /// [`LockError::NotRecoverable`] as for [`acquire`](Self::acquire).
    ///
    /// # Panics
    ///
    /// If `me` is not a valid participant id.
    #[inline]
    pub fn lock<'a>(
        &'a self,
        me: u32,
        liveness: &'a dyn Liveness,
        wait: Wait,
    ) -> Result<LockGuard<'a, W>, LockError<LockGuard<'a, W>>> {
        let r = self.acquire(me, liveness, wait);
        self.guard(me, liveness, r)
    }

    /// The uncontended fast path of [`lock`](Self::lock): one CAS from unlocked, with none
    /// of the result plumbing. `None` when the lock is not free right now (held, contended,
    /// inconsistent or not recoverable); then call `lock` or `try_lock`, which handle all
    /// of those.
    ///
    /// # Panics
    ///
    /// If `me` is not a valid participant id.
    #[inline]
    pub fn lock_if_free<'a>(
        &'a self,
        me: u32,
        liveness: &'a dyn Liveness,
    ) -> Option<LockGuard<'a, W>> {
        check_id(me);
        // Acquire: pairs with the Release CAS in `release` (see `acquire`).
        self.word
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| LockGuard {
                lock: self,
                me,
                liveness,
            })
    }

    /// Like [`lock`](Self::lock) without sleeping.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if a live participant holds it; otherwise as for `lock`.
    pub fn try_lock<'a>(
        &'a self,
        me: u32,
        liveness: &'a dyn Liveness,
    ) -> Result<LockGuard<'a, W>, LockError<LockGuard<'a, W>>> {
        let r = self.try_acquire(me, liveness);
        self.guard(me, liveness, r)
    }

    pub(crate) fn guard<'a>(
        &'a self,
        me: u32,
        liveness: &'a dyn Liveness,
        r: Result<Acquired, AcquireError>,
    ) -> Result<LockGuard<'a, W>, LockError<LockGuard<'a, W>>> {
        let g = |_| LockGuard {
            lock: self,
            me,
            liveness,
        };
        match r {
            Ok(Acquired::Clean) => Ok(g(())),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(g(()))),
            Err(e) => Err(e.into()),
        }
    }
}

/// Holds a [`RawLock`] for participant `me`; releases it when dropped.
#[must_use = "if unused the lock will immediately unlock"]
pub struct LockGuard<'a, W: Waiter = Futex> {
    lock: &'a RawLock<W>,
    me: u32,
    liveness: &'a dyn Liveness,
}

impl<W: Waiter> fmt::Debug for LockGuard<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", self.lock)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl<'a, W: Waiter> LockGuard<'a, W> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &'a RawLock<W> {
        self.lock
    }

    /// The participant that holds it.
    pub fn participant(&self) -> u32 {
        self.me
    }

    pub(crate) fn liveness(&self) -> &'a dyn Liveness {
        self.liveness
    }

    /// Declares the protected data repaired after an owner death (see
    /// [`RawLock::mark_consistent`]). Does nothing for a consistent lock.
    pub fn mark_consistent(&mut self) {
        // We hold the lock, so `NotOwner` is only possible if a buggy liveness let somebody
        // take it over from us; then there is nothing to mark.
        let _ = self.lock.mark_consistent(self.me);
    }

    /// Whether [`mark_consistent`](Self::mark_consistent) is still needed.
    pub fn is_inconsistent(&self) -> bool {
        self.lock.is_inconsistent()
    }

    /// Releases the lock now, reporting whether we still owned it.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] if somebody took the lock over from us (only possible when
    /// a liveness wrongly declared us dead).
    pub fn unlock(self) -> Result<(), UnlockError> {
        let this = std::mem::ManuallyDrop::new(self);
        this.lock.release(this.me)
    }
}

impl<W: Waiter> Drop for LockGuard<'_, W> {
    fn drop(&mut self) {
        // An error means a (wrong) liveness let somebody take the lock from us; there is
        // nothing left to release.
        let _ = self.lock.release(self.me);
    }
}

/// Why [`RawLock::lock`] (and the other guard-returning acquires) did not simply succeed.
/// Shaped like std's `PoisonError`: [`OwnerDied`](Self::OwnerDied) still carries the guard.
pub enum LockError<G> {
    /// The lock *was* acquired, from an owner that died holding it (`EOWNERDEAD`). Repair the
    /// data, call `mark_consistent`, or the lock becomes not recoverable when released.
    OwnerDied(G),
    /// `try_*` only: somebody alive holds the lock.
    WouldBlock,
    /// The deadline passed first.
    Timeout,
    /// The lock is unusable (`ENOTRECOVERABLE`).
    NotRecoverable,
}

impl<G> LockError<G> {
    /// The guard of an [`OwnerDied`](Self::OwnerDied) acquisition, like
    /// `PoisonError::into_inner`; `None` for the other variants.
    pub fn into_inner(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Maps the carried guard.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(g) => LockError::OwnerDied(f(g)),
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::Timeout => LockError::Timeout,
            LockError::NotRecoverable => LockError::NotRecoverable,
        }
    }
}

impl<G> From<AcquireError> for LockError<G> {
    fn from(e: AcquireError) -> Self {
        match e {
            AcquireError::WouldBlock => LockError::WouldBlock,
            AcquireError::Timeout => LockError::Timeout,
            AcquireError::NotRecoverable => LockError::NotRecoverable,
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied(_) => "the previous owner died holding the lock",
            LockError::WouldBlock => "lock is held by another participant",
            LockError::Timeout => "timed out waiting for the lock",
            LockError::NotRecoverable => {
                "lock is not recoverable: an owner died and the lock was not marked consistent"
            }
        })
    }
}

impl<G> std::error::Error for LockError<G> {}

impl RawLock {
    crate::sync::loom_const_fn! {
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`],
        /// use [`RawLock::new_for_waiter`].
        pub fn new() -> Self {
            Self::new_for_waiter()
        }
    }
}
