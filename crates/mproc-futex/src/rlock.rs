//! [`RawRLock`]: a reentrant robust lock owned by one thread of one participant.
//!
//! Built on [`RawLock`]: the lock word records the owning participant (so owner death is
//! detected and handled exactly as for `RawLock`), and two more words, written only while the
//! lock is held, record the owning thread (`gettid(2)`) and the recursion count.
//!
//! # Participant death
//!
//! If the owning process dies, the next acquirer takes the lock over and is told `OwnerDied`
//! (with the count reset to 1), exactly as for [`RawLock`], and the lock stays poisoned
//! (or, if strict, becomes not recoverable) until marked consistent, as a `RawLock` does. A *thread* that exits while
//! holding the lock is not detected: its process is still alive, so the lock stays held
//! (as with a Python `RLock` whose owning thread ended).

use crate::deadline::Wait;
use crate::liveness::Liveness;
use crate::lock::{LockError, OWNER_MASK, RawLock, UnlockError};
use crate::sync::{AtomicU32, Ordering, thread_id};
use crate::waiter::{Futex, Waiter};
use std::fmt;
use std::marker::PhantomData;

/// A reentrant robust lock (Python's `multiprocessing.RLock`), `#[repr(C)]`, twelve bytes,
/// all-zero = unlocked. The same thread of the same participant may acquire it again; it is
/// released when released as many times. Release by any other thread is an error.
///
/// # Examples
///
/// ```
/// use mproc_futex::{AlwaysAlive, RawRLock, Wait};
///
/// let lock: RawRLock = RawRLock::new();
/// let a = lock.lock(7, &AlwaysAlive, Wait::Forever).unwrap();
/// let b = lock.lock(7, &AlwaysAlive, Wait::Forever).unwrap(); // reentrant
/// assert_eq!(lock.count(), 2);
/// drop(b);
/// drop(a);
/// assert!(!lock.is_locked());
/// ```
#[repr(C)]
pub struct RawRLock<W: Waiter = Futex> {
    lock: RawLock<W>,
    /// Owning thread's id; written only by the holder, 0 when not held.
    tid: AtomicU32,
    /// Recursion depth; written only by the holder, 0 when not held.
    count: AtomicU32,
}

// SAFETY: `repr(C)`, a `RawLock` (itself `SharedState`) and two `AtomicU32`s, any values
// of which the algorithm tolerates (tid and count are trusted only by their holder). `Sync`.
crate::primitive::shared_primitive!(RawRLock<W>, default: new_for_waiter());

impl<W: Waiter> fmt::Debug for RawRLock<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRLock")
            .field("lock", &self.lock)
            .field("tid", &self.tid.load(Ordering::Relaxed))
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl<W: Waiter> RawRLock<W> {
    /// An unlocked lock (all-zero bytes).
    #[cfg(not(mproc_loom))]
    pub const fn new_for_waiter() -> Self {
        RawRLock {
            lock: RawLock::new_for_waiter(),
            tid: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// An unlocked lock.
    #[cfg(mproc_loom)]
    pub fn new_for_waiter() -> Self {
        RawRLock {
            lock: RawLock::new_for_waiter(),
            tid: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// An unlocked strict lock (see [`RawLock::new_strict_for_waiter`]).
    #[cfg(not(mproc_loom))]
    pub const fn new_strict_for_waiter() -> Self {
        RawRLock {
            lock: RawLock::new_strict_for_waiter(),
            tid: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// An unlocked strict lock.
    #[cfg(mproc_loom)]
    pub fn new_strict_for_waiter() -> Self {
        RawRLock {
            lock: RawLock::new_strict_for_waiter(),
            tid: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// The underlying [`RawLock`] (owner participant, consistency state).
    pub fn raw(&self) -> &RawLock<W> {
        &self.lock
    }

    /// Whether somebody holds it.
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// The recursion depth (meaningful to the holder; 0 when free).
    pub fn count(&self) -> u32 {
        // Relaxed: a diagnostic read, written only by the holder.
        self.count.load(Ordering::Relaxed)
    }

    /// Whether the calling thread of participant `me` holds the lock.
    pub fn is_owned_by_me(&self, me: u32) -> bool {
        // Acquire: if the word names `me`, it was written by an acquisition by some thread of
        // `me`, whose Acquire CAS read the previous release (which cleared `tid` before its
        // Release); so the `tid` we read is 0, our own, or that of the current holder.
        self.lock.atomic().load(Ordering::Acquire) & OWNER_MASK == me
            && self.tid.load(Ordering::Relaxed) == thread_id()
    }

    /// Acquires (or re-acquires) for the calling thread of participant `me`.
    ///
    /// # Errors
    ///
    /// As [`RawLock::acquire`] (on `OwnerDied` the lock is held, at depth 1); re-acquiring
    /// more than `u32::MAX` times fails with `WouldBlock`.
    pub fn acquire<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
        wait: Wait,
    ) -> Result<(), LockError<()>> {
        if self.is_owned_by_me(me) {
            return self.recurse();
        }
        self.take(self.lock.acquire(me, liveness, wait))
    }

    /// Like [`acquire`](Self::acquire) without sleeping.
    ///
    /// # Errors
    ///
    /// As [`RawLock::try_acquire`].
    pub fn try_acquire<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
    ) -> Result<(), LockError<()>> {
        if self.is_owned_by_me(me) {
            return self.recurse();
        }
        self.take(self.lock.try_acquire(me, liveness))
    }

    fn recurse(&self) -> Result<(), LockError<()>> {
        // Relaxed: only the holding thread reads or writes the count while held.
        let c = self.count.load(Ordering::Relaxed);
        let Some(next) = c.checked_add(1) else {
            return Err(LockError::WouldBlock);
        };
        self.count.store(next, Ordering::Relaxed);
        Ok(())
    }

    /// Records the calling thread as holder at depth 1 if `r` says the lock is held (`Ok` or
    /// `OwnerDied`).
    fn take(&self, r: Result<(), LockError<()>>) -> Result<(), LockError<()>> {
        if matches!(r, Ok(()) | Err(LockError::OwnerDied(()))) {
            // Relaxed: written while holding the lock; published by the lock's Release.
            self.tid.store(thread_id(), Ordering::Relaxed);
            self.count.store(1, Ordering::Relaxed);
        }
        r
    }

    /// Clears the poison a dead holder left (see [`RawLock::clear_poison`]).
    pub fn clear_poison(&self) {
        self.lock.clear_poison();
    }

    /// Whether the lock is poisoned (see [`RawLock::is_poisoned`]).
    pub fn is_poisoned(&self) -> bool {
        self.lock.is_poisoned()
    }

    /// Releases one level; the lock is freed when the count reaches 0.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] unless the calling thread of `me` holds it (Python's
    /// `RuntimeError: cannot release un-acquired lock`).
    pub fn release(&self, me: u32) -> Result<(), UnlockError> {
        if !self.is_owned_by_me(me) {
            return Err(UnlockError::NotOwner);
        }
        // Relaxed: holder-only fields; the final `release` below is the Release.
        let c = self.count.load(Ordering::Relaxed);
        if c > 1 {
            self.count.store(c - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.count.store(0, Ordering::Relaxed);
        self.tid.store(0, Ordering::Relaxed);
        self.lock.release(me)
    }

    /// After an `OwnerDied` acquisition: see [`RawLock::mark_consistent`].
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] unless the calling thread of `me` holds it.
    pub fn mark_consistent(&self, me: u32) -> Result<(), UnlockError> {
        if !self.is_owned_by_me(me) {
            return Err(UnlockError::NotOwner);
        }
        self.lock.mark_consistent(me)
    }

    /// Acquires and returns a guard that releases one level on drop.
    ///
    /// # Errors
    ///
    /// As [`RawLock::lock`]: `OwnerDied` carries the guard.
    pub fn lock(
        &self,
        me: u32,
        liveness: &dyn Liveness,
        wait: Wait,
    ) -> Result<RLockGuard<'_, W>, LockError<RLockGuard<'_, W>>> {
        let r = self.acquire(me, liveness, wait);
        self.guard(me, r)
    }

    /// Like [`lock`](Self::lock) without sleeping.
    ///
    /// # Errors
    ///
    /// As [`RawLock::try_lock`].
    pub fn try_lock(
        &self,
        me: u32,
        liveness: &dyn Liveness,
    ) -> Result<RLockGuard<'_, W>, LockError<RLockGuard<'_, W>>> {
        let r = self.try_acquire(me, liveness);
        self.guard(me, r)
    }

    fn guard(
        &self,
        me: u32,
        r: Result<(), LockError<()>>,
    ) -> Result<RLockGuard<'_, W>, LockError<RLockGuard<'_, W>>> {
        let g = |()| RLockGuard {
            lock: self,
            me,
            _not_send: PhantomData,
        };
        r.map(g).map_err(|e| e.map(g))
    }
}

/// Holds one level of a [`RawRLock`]; not `Send`, since ownership belongs to the thread.
#[must_use = "if unused the lock will immediately unlock"]
pub struct RLockGuard<'a, W: Waiter = Futex> {
    lock: &'a RawRLock<W>,
    me: u32,
    _not_send: PhantomData<*const ()>,
}

impl<W: Waiter> fmt::Debug for RLockGuard<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("lock", self.lock)
            .field("me", &self.me)
            .finish()
    }
}

impl<W: Waiter> RLockGuard<'_, W> {
    /// Declares the data repaired after `OwnerDied` (see [`RawLock::mark_consistent`]).
    pub fn mark_consistent(&mut self) {
        // We hold it on this thread, so NotOwner cannot happen short of a wrong liveness.
        let _ = self.lock.mark_consistent(self.me);
    }

    /// Whether `mark_consistent` is still needed.
    pub fn is_inconsistent(&self) -> bool {
        self.lock.lock.is_inconsistent()
    }
}

impl<W: Waiter> Drop for RLockGuard<'_, W> {
    fn drop(&mut self) {
        // The guard is !Send, so this is the acquiring thread; an error means a wrong
        // liveness let somebody take the lock from us.
        let _ = self.lock.release(self.me);
    }
}

impl RawRLock {
    crate::sync::loom_const_fn! {
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`],
        /// use [`RawRLock::new_for_waiter`].
        pub fn new() -> Self {
            Self::new_for_waiter()
        }
    }

    crate::sync::loom_const_fn! {
        /// A fresh strict lock sleeping with [`Futex`] (see [`RawLock::new_strict`]).
        pub fn new_strict() -> Self {
            Self::new_strict_for_waiter()
        }
    }
}
