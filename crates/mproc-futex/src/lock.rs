//! [`RawLock`]: a robust, process-shared mutex in one futex word, and its [`LockGuard`].
//!
//! Algorithm: Rust std's futex mutex (`library/std/src/sys/sync/mutex/futex.rs`: CAS fast
//! path, bounded load-only spin, sleep on the word, unlock wakes only if someone sleeps),
//! with the owner's participant id stored in the word the way Linux PI futexes store a tid,
//! std's poisoning for a holder that dies, and, on request, the strict state machine of a
//! POSIX robust mutex (`EOWNERDEAD` → `pthread_mutex_consistent` or `ENOTRECOVERABLE`).
//!
//! # The word
//!
//! | bit 31 `POISONED` | bit 30 `WAITERS` | bit 29 `STRICT` | bits 0–28 | state |
//! |---|---|---|---|---|
//! | 0 | 0 | 0/1 | 0 | unlocked (all-zero bytes: a zeroed segment is a valid, non-strict lock) |
//! | 0 | 0/1 | 0/1 | owner id | locked by `owner`; `WAITERS` = somebody may sleep |
//! | 1 | 0/1 | 0/1 | owner id | locked by `owner`, poisoned: a holder died, nobody marked the data consistent since |
//! | 1 | 0/1 | 0 | 0 | unlocked but poisoned: the next acquirer is told [`LockError::OwnerDied`] (with the guard) |
//! | 1 | 0/1 | 1 | 0 | not recoverable (strict lock only): every acquire fails with [`LockError::NotRecoverable`] |
//!
//! `STRICT` is set when the lock is made ([`RawLock::new_strict`]) and never changes; every
//! transition carries it along. Taking the lock and recording the owner are one CAS
//! (`0 → me`), so there is no instant at which a crash leaves the lock taken by nobody known.
//!
//! # Owner death
//!
//! A waiter asks the [`Liveness`] about the recorded owner before its first sleep, whenever it
//! sees a new owner, and each time a sleep reaches its check interval. The interval starts at
//! [`CHECK_INTERVAL_MIN`] and doubles up to [`CHECK_INTERVAL_MAX`]. If the owner is dead, the
//! waiter CASes the exact word it judged to `me | POISONED`: with many sleepers racing,
//! exactly one CAS wins and that acquirer alone is told [`LockError::OwnerDied`]; the others
//! go on waiting for the new owner. **Worst-case takeover delay**: an acquirer that arrives
//! after the death takes over at once (the check precedes its first sleep); a sleeper that was
//! already asleep notices within one check interval, so at most [`CHECK_INTERVAL_MAX`]
//! (32 ms) plus the time to be scheduled, plus however long the liveness needs to see the
//! death. `tests/lock_process.rs` measures it after a real `SIGKILL`.
//!
//! # Poisoning (std's) and strict recovery (POSIX's)
//!
//! The new holder repairs the protected data and calls `mark_consistent`. If it unlocks
//! without doing so, the lock stays *poisoned*, like a std `Mutex` whose holder panicked:
//! every later acquirer gets the lock all the same, told [`LockError::OwnerDied`] (with the
//! guard), until somebody calls `mark_consistent` on a guard or [`RawLock::clear_poison`].
//! A lock made with [`RawLock::new_strict`] behaves like a POSIX robust mutex instead:
//! unlocking without `mark_consistent` makes it not recoverable, and every later acquire
//! fails with [`LockError::NotRecoverable`] for ever (it can only be re-initialised). In both
//! modes, if the new holder dies too, the next acquirer is told `OwnerDied` again.

use crate::deadline::{Deadline, Wait, earliest};
use crate::liveness::{Liveness, ParticipantId, check_id};
use crate::sync::{AtomicU32, Ordering, SPIN_LIMIT, spin_loop};
use crate::waiter::{Futex, Waiter};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Owner participant id (0 = nobody; the low [`ParticipantId::BITS`] bits).
pub(crate) const OWNER_MASK: u32 = (1 << ParticipantId::BITS) - 1;
/// Set when the lock is made strict (`ENOTRECOVERABLE` instead of lasting poison); never
/// changes afterwards. (The reason a participant id has 29 bits, not 30.)
pub(crate) const STRICT: u32 = 1 << ParticipantId::BITS;
/// Somebody may be asleep on the word: unlock must wake.
pub(crate) const WAITERS: u32 = 1 << 30;
/// A holder died and nobody has vouched for the data since. Without an owner on a strict
/// lock: not recoverable.
pub(crate) const POISONED: u32 = 1 << 31;
const UNLOCKED: u32 = 0;

/// First interval after which a sleeper asks whether the owner still lives.
pub const CHECK_INTERVAL_MIN: Duration = Duration::from_millis(1);
/// Longest interval between two liveness checks of a sleeper: the bound on how late a
/// sleeper notices that the owner died.
pub const CHECK_INTERVAL_MAX: Duration = Duration::from_millis(32);

/// Why a [`RawLock::unlock`](RawLock::release) or `mark_consistent` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    /// The lock word does not name the caller as owner (Python's `RuntimeError: release
    /// unlocked lock`, or an `RLock` released by a thread that does not own it).
    #[error("lock is not held by the caller")]
    NotOwner,
}

/// A robust mutual-exclusion lock in one process-shared `u32` (Python's
/// `multiprocessing.Lock`, without data).
///
/// The word holds the owner's participant id in bits 0–28, bit 29 = strict recovery, bit 30 =
/// "somebody may sleep", bit 31 = poisoned (see the module docs for the table). A waiter asks
/// the [`Liveness`] about the owner before its first sleep, on every new owner, and after each
/// check interval (1 ms doubling to [`CHECK_INTERVAL_MAX`]); a dead owner's lock is CASed over
/// by exactly one acquirer, who gets [`LockError::OwnerDied`] with the guard. Worst-case
/// takeover delay for a sleeper: [`CHECK_INTERVAL_MAX`] plus scheduling plus the liveness
/// query; for a later arrival: none.
///
/// A lock whose holder died stays poisoned, like std's `Mutex`, until a holder calls
/// `mark_consistent` or anybody calls [`clear_poison`](Self::clear_poison); a lock made with
/// [`new_strict`](Self::new_strict) becomes not recoverable instead (POSIX's
/// `ENOTRECOVERABLE`) when the taker unlocks it unmarked.
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

// SAFETY: `repr(C)`, one `AtomicU32` (any value is a state the lock handles: unknown owner
// ids are asked about through the liveness oracle) and a zero-sized marker; `Sync`. Loom
// atomics are not valid for any bytes, hence not under `mproc_loom`.
crate::primitive::shared_primitive!(RawLock<W>, default: new_for_waiter());

impl<W: Waiter> fmt::Debug for RawLock<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawLock")
            .field("word", &format_args!("{:#010x}", self.word()))
            .finish()
    }
}

impl<W: Waiter> RawLock<W> {
    /// An unlocked lock (all-zero bytes) whose dead holders poison it (std's semantics).
    #[cfg(not(mproc_loom))]
    pub const fn new_for_waiter() -> Self {
        Self::from_word(UNLOCKED)
    }

    /// An unlocked lock (loom atomics cannot be built in a `const fn`).
    #[cfg(mproc_loom)]
    pub fn new_for_waiter() -> Self {
        Self::from_word(UNLOCKED)
    }

    /// An unlocked *strict* lock: after a holder died, unlocking without `mark_consistent`
    /// makes it not recoverable (POSIX's `ENOTRECOVERABLE`) instead of leaving it poisoned.
    #[cfg(not(mproc_loom))]
    pub const fn new_strict_for_waiter() -> Self {
        Self::from_word(STRICT)
    }

    /// An unlocked strict lock (loom atomics cannot be built in a `const fn`).
    #[cfg(mproc_loom)]
    pub fn new_strict_for_waiter() -> Self {
        Self::from_word(STRICT)
    }

    crate::sync::loom_const_fn! {
        fn from_word(word: u32) -> Self {
            RawLock {
                word: AtomicU32::new(word),
                _waiter: PhantomData,
            }
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

    /// Writes the initial, unlocked word (strict or not) into a lock that lives in fresh
    /// shared memory nobody uses yet (zeroed memory is already an unlocked, non-strict lock).
    /// Not for a lock in use: it would drop the owner.
    pub fn init_unlocked(&self, strict: bool) {
        // Relaxed: the memory is published by the creator's later Release (the object
        // header or cell magic), before anyone else can see this lock.
        self.word
            .store(if strict { STRICT } else { UNLOCKED }, Ordering::Relaxed);
    }

    /// Whether the lock was made strict ([`new_strict`](RawLock::new_strict)).
    pub fn is_strict(&self) -> bool {
        self.word() & STRICT != 0
    }

    /// Whether a holder died and nobody has vouched for the data since (std's
    /// `Mutex::is_poisoned`): the next acquirer will be told [`LockError::OwnerDied`]. Also
    /// true of a strict lock that is not recoverable.
    pub fn is_poisoned(&self) -> bool {
        self.word() & POISONED != 0
    }

    /// Whether the lock has become unusable (`ENOTRECOVERABLE`; strict locks only).
    pub fn is_not_recoverable(&self) -> bool {
        is_not_recoverable(self.word())
    }

    /// Clears the poison left by a holder that died (std's `Mutex::clear_poison`): the next
    /// acquirer gets the lock cleanly. Anybody may call it, holding the lock or not; called
    /// while somebody holds the lock after an owner death, it vouches for the data in that
    /// holder's stead (as its `mark_consistent` would). Does nothing to a lock that is not
    /// poisoned, nor to a strict lock that is not recoverable (that state is final).
    pub fn clear_poison(&self) {
        // Relaxed: only the flag changes; no data is published or read with it. The data
        // stays published by the last holder's Release unlock: this RMW continues that
        // release sequence, so the next acquirer's Acquire CAS still synchronises with it.
        let _ = self
            .word
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                (w & POISONED != 0 && !is_not_recoverable(w)).then_some(w & !POISONED)
            });
    }

    /// Acquires the lock for participant `me`, sleeping until it is free or `wait` runs out
    /// (Python's `Lock.acquire(timeout=...)`); [`Wait::Never`] is
    /// [`try_acquire`](Self::try_acquire) after one fast-path attempt. The lock is held on
    /// `Ok` and on [`LockError::OwnerDied`].
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] when the lock was taken from a dead holder or is poisoned
    /// (the lock *is* held: repair, then [`mark_consistent`](Self::mark_consistent));
    /// [`LockError::Timeout`] when the deadline passes first; [`LockError::WouldBlock`] for
    /// `Never` when a live participant holds it; [`LockError::NotRecoverable`] when a strict
    /// lock is unusable.
    ///
    /// # Panics
    ///
    /// If `me` is 0 or above [`ParticipantId::MAX`](crate::ParticipantId::MAX).
    #[inline(always)]
    pub fn acquire<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
        wait: Wait,
    ) -> Result<(), LockError<()>> {
        check_id(me);
        // Acquire: pairs with the Release CAS in `release`, so the previous holder's writes
        // to the protected data are visible to us.
        if self
            .word
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        match wait {
            Wait::Never => self.try_acquire(me, liveness),
            Wait::Until(_) | Wait::Forever => self.acquire_slow(me, liveness, wait.deadline()),
        }
    }

    /// Acquires the lock without sleeping: takes it if free (or poisoned), takes it over if
    /// its owner is dead (asking `liveness`), and otherwise fails with
    /// [`LockError::WouldBlock`].
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`], and as for [`acquire`](Self::acquire) (not `Timeout`).
    ///
    /// # Panics
    ///
    /// If `me` is not a valid participant id.
    pub fn try_acquire<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
    ) -> Result<(), LockError<()>> {
        check_id(me);
        let mut w = UNLOCKED;
        // A failed CAS means the word changed under us; retry a few times, never spin long.
        for _ in 0..4 {
            if is_not_recoverable(w) {
                return Err(LockError::NotRecoverable);
            }
            let owner = w & OWNER_MASK;
            if owner != 0 && liveness.is_alive(owner) {
                return Err(LockError::WouldBlock);
            }
            let next = taken_by(me, w, w & WAITERS);
            if self.take_word(&mut w, next) {
                return outcome(next);
            }
        }
        Err(LockError::WouldBlock)
    }

    /// Takes the lock by replacing exactly the word `*seen` with `next` (which holds the
    /// taker's id): `true` if it did, else `false` with the word found now in `*seen`.
    #[inline]
    fn take_word(&self, seen: &mut u32, next: u32) -> bool {
        // Acquire on success: pairs with the Release CAS in `release` (see `acquire`); after
        // a dead owner, with whatever Release the word's history carries.
        match self
            .word
            .compare_exchange(*seen, next, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(now) => {
                *seen = now;
                false
            }
        }
    }

    #[cold]
    fn acquire_slow<L: Liveness + ?Sized>(
        &self,
        me: u32,
        liveness: &L,
        deadline: Option<Deadline>,
    ) -> Result<(), LockError<()>> {
        let mut w = self.spin();
        let mut interval = CHECK_INTERVAL_MIN;
        let mut check_due = true;
        let mut alive_owner = 0;
        let mut slept = false;
        loop {
            let owner = w & OWNER_MASK;
            if owner == 0 {
                if is_not_recoverable(w) {
                    return Err(LockError::NotRecoverable);
                }
                // Free (maybe poisoned). Until we have slept, keep the WAITERS bit as found
                // (std's first attempt); after a sleep, take it marked WAITERS, as std does:
                // we cannot know whether other sleepers remain, so the next unlock must wake
                // one.
                let waiters = if slept { WAITERS } else { w & WAITERS };
                let next = taken_by(me, w, waiters);
                if self.take_word(&mut w, next) {
                    return outcome(next);
                }
                continue;
            }
            // Fixed *before* asking about the owner: if the owner dies after the check said
            // "alive", this deadline is already running and bounds how long we sleep on it.
            let check_at = Deadline::after(interval);
            if check_due || owner != alive_owner {
                if !liveness.is_alive(owner) {
                    // Take over from exactly the word we judged: among racing acquirers one
                    // CAS wins; the losers see the new owner and keep waiting. The dead owner
                    // released nothing, so the data may be inconsistent: what OwnerDied says.
                    let next = taken_by(me, w, w & WAITERS);
                    if self.take_word(&mut w, next) {
                        return outcome(next);
                    }
                    continue;
                }
                alive_owner = owner;
                check_due = false;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return Err(LockError::Timeout);
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
            slept = true;
            if !woken {
                if deadline.is_some_and(|d| d.has_passed()) {
                    return Err(LockError::Timeout);
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
    /// If the lock is poisoned (`me` took it after an owner death and has not called
    /// [`mark_consistent`](Self::mark_consistent)), it stays poisoned for the next acquirer;
    /// a strict lock becomes not recoverable instead, and all sleepers are woken to be told
    /// so.
    ///
    /// Like Python's `Lock.release`, any thread of participant `me` may release it.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] if the word does not name `me` as owner (nothing changes).
    #[inline]
    pub fn release(&self, me: u32) -> Result<(), UnlockError> {
        // Not an id (0, above the maximum, or flag bits set): it owns nothing, and must not
        // match a word that carries those flags in the fast path below.
        if ParticipantId::new(me).is_none() {
            return Err(UnlockError::NotOwner);
        }
        // Fast path: held by `me` with no flag set (non-strict, nobody waits, not
        // poisoned). Release: as in the loop below; the failure value starts the loop.
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
            // Keep STRICT and POISONED; drop the owner and WAITERS (we wake below).
            let new = w & (STRICT | POISONED);
            // Release: pairs with the Acquire CAS of the next acquirer, publishing the data
            // written under the lock. Only WAITERS and POISONED (`clear_poison`) can change
            // under us, so this loop ends after at most a few turns.
            match self
                .word
                .compare_exchange(w, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if w & WAITERS != 0 {
                        if is_not_recoverable(new) {
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

    /// Declares the data repaired after an [`LockError::OwnerDied`] acquisition
    /// (`pthread_mutex_consistent`): the lock is no longer poisoned.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] if `me` does not hold the lock.
    pub fn mark_consistent(&self, me: u32) -> Result<(), UnlockError> {
        // Relaxed: the holder changes its own flag; nothing is published.
        self.word
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                (w & OWNER_MASK == me).then_some(w & !POISONED)
            })
            .map(drop)
            .map_err(|_| UnlockError::NotOwner)
    }

    /// Whether the holder must still call [`mark_consistent`](Self::mark_consistent).
    pub fn is_inconsistent(&self) -> bool {
        let w = self.word();
        w & OWNER_MASK != 0 && w & POISONED != 0
    }

    /// Acquires the lock and returns a guard that releases it on drop.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] carries the guard (the lock *is* held) when the lock was
    /// taken over from a dead owner or is still poisoned by one; [`LockError::Timeout`] and
    /// [`LockError::NotRecoverable`] as for [`acquire`](Self::acquire).
    ///
    /// # Panics
    ///
    /// If `me` is not a valid participant id.
    #[inline(always)]
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
    /// poisoned, strict or not recoverable); then call `lock` or `try_lock`, which handle
    /// all of those.
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
        r: Result<(), LockError<()>>,
    ) -> Result<LockGuard<'a, W>, LockError<LockGuard<'a, W>>> {
        let g = |()| LockGuard {
            lock: self,
            me,
            liveness,
        };
        r.map(g).map_err(|e| e.map(g))
    }
}

/// The word with which `me` takes a lock whose word is `w` (free, poisoned, or held by a dead
/// owner), with `waiters` as its WAITERS bit: a dead owner poisons it; STRICT and POISONED
/// carry over.
fn taken_by(me: u32, w: u32, waiters: u32) -> u32 {
    let died = if w & OWNER_MASK != 0 { POISONED } else { 0 };
    me | waiters | (w & (STRICT | POISONED)) | died
}

/// What the acquirer that wrote `next` is told.
fn outcome(next: u32) -> Result<(), LockError<()>> {
    if next & POISONED != 0 {
        Err(LockError::OwnerDied(()))
    } else {
        Ok(())
    }
}

/// A strict lock, free and poisoned: nobody can take it.
fn is_not_recoverable(w: u32) -> bool {
    w & OWNER_MASK == 0 && w & (STRICT | POISONED) == STRICT | POISONED
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
    /// [`RawLock::mark_consistent`]): the lock is no longer poisoned. Does nothing for a
    /// consistent lock.
    pub fn mark_consistent(&mut self) {
        // We hold the lock, so `NotOwner` is only possible if a buggy liveness let somebody
        // take it over from us; then there is nothing to mark.
        let _ = self.lock.mark_consistent(self.me);
    }

    /// Whether [`mark_consistent`](Self::mark_consistent) is still needed (the lock is
    /// poisoned).
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

/// Why an acquire of a [`RawLock`] or [`RawRLock`](crate::RawRLock) did not simply succeed:
/// the one acquire error of this crate. `G` is what a successful acquire returns: a guard,
/// or `()` for the raw [`RawLock::acquire`].
///
/// Shaped like std's `PoisonError`: [`OwnerDied`](Self::OwnerDied) still carries the guard
/// (the lock *is* held).
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError<G> {
    /// The lock *was* acquired, but a holder died holding it (`EOWNERDEAD`) and nobody has
    /// vouched for the data since (std's poisoning): it may be half-updated. Repair it and
    /// call `mark_consistent` (or the lock's `clear_poison`); otherwise the lock stays
    /// poisoned for the next acquirer (or, if strict, becomes not recoverable) when released.
    OwnerDied(G),
    /// `try_*` only: somebody alive holds the lock.
    WouldBlock,
    /// The deadline passed first.
    Timeout,
    /// A strict lock is unusable (`ENOTRECOVERABLE`): a holder died and its successor
    /// released it without marking it consistent.
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
            LockError::OwnerDied(_) => {
                "a holder died holding the lock and its data was not marked consistent since"
            }
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

    crate::sync::loom_const_fn! {
        /// A fresh strict lock sleeping with [`Futex`]: a holder that dies and a successor
        /// that unlocks without `mark_consistent` leave it not recoverable (POSIX's
        /// `ENOTRECOVERABLE`) rather than poisoned. For another [`Waiter`], use
        /// [`RawLock::new_strict_for_waiter`].
        pub fn new_strict() -> Self {
            Self::new_strict_for_waiter()
        }
    }
}
