//! [`Ledger`]: a shared counter that knows which participant holds how much of it, so what a
//! dead participant held can be given back — the mechanism under the robust semaphores and
//! JoinableQueue's task count.
//!
//! See [`Ledger`] for the design, the rules and what a death does.

use std::fmt;

use crate::deadline::Wait;
use crate::liveness::{Liveness, ParticipantId};
use crate::lock::{LockError, LockGuard, RawLock};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::waiter::{Futex, Waiter};

/// Entries in a [`Ledger`]: how many participants can hold units at once and be tracked.
/// A participant that takes units while every entry is held by a live participant is counted
/// in `untracked` and its units are not given back if it dies.
pub const LEDGER_ENTRIES: usize = 64;

/// A ledger entry: participant `id` (0 = free) holds `held` units.
#[repr(C)]
struct Entry {
    id: AtomicU32,
    _pad: AtomicU32,
    held: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only (an unknown `id` is a participant the liveness oracle is
// asked about; `held` is clamped by the journaled arithmetic); `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for Entry {}

impl Entry {
    fn new() -> Entry {
        Entry {
            id: AtomicU32::new(0),
            _pad: AtomicU32::new(0),
            held: AtomicU64::new(0),
        }
    }
}

/// The undo journal: the words one change may touch, as they were before it.
#[repr(C)]
struct Journal {
    /// 1 while a change is in progress (the words below are its "before" image).
    active: AtomicU32,
    /// Index of the entry the change touches, or [`NO_ENTRY`].
    entry: AtomicU32,
    entry_id: AtomicU32,
    value: AtomicU32,
    entry_held: AtomicU64,
    unattributed: AtomicU64,
    untracked: AtomicU64,
    outstanding: AtomicU64,
    reclaimed: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only (an out-of-range `entry` index is checked before use);
// `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for Journal {}

const NO_ENTRY: u32 = u32::MAX;

impl Journal {
    fn new() -> Journal {
        Journal {
            active: AtomicU32::new(0),
            entry: AtomicU32::new(NO_ENTRY),
            entry_id: AtomicU32::new(0),
            value: AtomicU32::new(0),
            entry_held: AtomicU64::new(0),
            unattributed: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
        }
    }
}

/// Why a ledger operation did not happen (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The deadline passed while another participant held the ledger's guard.
    #[error("timed out waiting for the ledger")]
    Timeout,
    /// The guard is not recoverable: only a peer writing garbage into shared memory can get
    /// there (the ledger always marks its guard consistent after a repair).
    #[error("the ledger's guard is corrupt")]
    Corrupt,
    /// A test fault point stopped the operation here, as if the process had been killed
    /// (only with [`fault::DieAt`]).
    #[error("the operation was stopped by a test fault point")]
    Died,
}

/// Test-only fault points: stop an operation after its `n`-th shared store, as if the
/// process had been SIGKILLed there (the guard stays held, the journal as it was).
#[doc(hidden)]
pub mod fault {
    use std::cell::Cell;

    /// Where an operation may be stopped.
    pub trait Fault {
        /// Called before each shared store (and before unlocking); `true` = die now.
        fn die(&self) -> bool;
    }

    /// No fault: never dies (compiled away).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct NoFault;

    impl Fault for NoFault {
        #[inline(always)]
        fn die(&self) -> bool {
            false
        }
    }

    /// Dies at the `n`-th fault point (0 = before the first store), counting across the
    /// operations it is passed to.
    #[derive(Debug, Default)]
    pub struct DieAt {
        left: Cell<u32>,
        died: Cell<bool>,
    }

    impl DieAt {
        /// Dies at fault point `n`.
        pub fn new(n: u32) -> DieAt {
            DieAt {
                left: Cell::new(n),
                died: Cell::new(false),
            }
        }

        /// Whether it has died (the fault point was reached).
        pub fn died(&self) -> bool {
            self.died.get()
        }
    }

    impl Fault for DieAt {
        fn die(&self) -> bool {
            if self.died.get() {
                return true;
            }
            match self.left.get() {
                0 => {
                    self.died.set(true);
                    true
                }
                n => {
                    self.left.set(n - 1);
                    false
                }
            }
        }
    }
}

use fault::{Fault, NoFault};

/// Who calls: a participant id (nonzero, at most [`ParticipantId::MAX`](crate::ParticipantId::MAX))
/// and the [`Liveness`] that answers for the other participants of the same memory.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The caller's participant id.
    pub id: u32,
    /// Answers whether another participant is alive.
    pub liveness: &'a dyn Liveness,
}

impl fmt::Debug for Caller<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where given-back units go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Give {
    /// Into `value`, refused past `bound` (a semaphore; `u32::MAX` for an unbounded one).
    ToValue {
        /// The highest `value` may become.
        bound: u32,
    },
    /// Nowhere (a task count): a give that would make `outstanding` negative is refused.
    Consume,
}

/// Why a give was refused (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GiveError {
    /// `value` would pass its bound (Python's `ValueError: Semaphore released too many
    /// times`), or, for [`Give::Consume`], nothing is outstanding (`task_done() called too
    /// many times`).
    #[error("given back more times than taken")]
    TooMany,
    /// The ledger could not be used.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A shared counter with a per-participant ledger of who holds what (see the
/// sections below). `#[repr(C)]`, all atomics: all-zero bytes are an empty ledger with
/// value 0.
///
/// # What it records
///
/// * `value`: a `u32` the owner of the ledger exposes and sleeps on (a semaphore's permits;
///   unused, always 0, for a task count).
/// * One [`LEDGER_ENTRIES`]-long table of entries `{ id, held }`: participant `id` holds `held`
///   units (permits taken and not given back; tasks taken and not done).
/// * `unattributed`: units given back by participants that held none. Python lets any process
///   release a semaphore or call `task_done`, so a give by a non-holder may well have been
///   made on a holder's behalf; which holder is unknowable.
/// * `untracked`: units taken by participants that found no free entry (every entry in use by
///   a live holder). They are never given back for a dead participant.
/// * `outstanding = Σ held + untracked − unattributed` (a wrapping `u64` read as `i64`: a
///   semaphore released more often than acquired, a signal, is negative), and `reclaimed`,
///   the units given back for dead participants so far.
///
/// # The rule for a dead participant
///
/// When participant `d` is found dead holding `h` units, the ledger gives back
/// `max(0, h − unattributed)` of them and lowers `unattributed` by `min(h, unattributed)`:
/// every give by a non-holder is taken to have been made on the dead holder's behalf. The rule
/// never gives back a unit somebody alive still holds (so a `BoundedSemaphore` never exceeds
/// its bound and a later rightful release never fails), at the price of keeping a unit
/// ungiven when a non-holder's give was in truth made for a *live* holder; that unit comes
/// back when that holder dies. Invariant, kept by every operation:
/// `value + outstanding` is constant (the initial value, for a semaphore without foreign
/// releases and with no dead holders outstanding).
///
/// # Surviving a crash: one robust lock and an undo journal
///
/// Every change happens under a [`RawLock`] (the ledger's `guard`) whose word names its
/// holder, and is journaled: before writing anything, the holder copies every word the change
/// may touch (`value`, `unattributed`, `untracked`, `outstanding`, `reclaimed`, and the one
/// entry) into the journal and sets `journal.active`; it clears `active` when done. A
/// participant that takes the guard over from a dead holder (`OwnerDied`) restores the
/// journal if it is active — the interrupted change is undone, whichever store it died after
/// — then marks the guard consistent. The dead caller never returned, so undoing its change
/// is as good as never having made it; a completed change that died only before clearing
/// `active` is undone too, which the rule above then accounts for (a dead acquirer's permit
/// goes back either way). A death during a restore leaves `active` set, and the next taker
/// restores again (restoring is idempotent).
///
/// The words are plain atomics read `Relaxed` under the guard (stored `Release`, for the
/// lock-free readers of `value` and `outstanding`): the guard's
/// Acquire/Release orders them between live holders, and a takeover after a death follows
/// the liveness answer "dead", which in the facade is the kernel releasing the dead process's
/// lock (in loom models, a flag stored with Release after the dead thread's last step and
/// loaded with Acquire by the liveness closure).
///
/// Every word is untrusted: a hostile peer can make counts wrong (early or late wake-ups,
/// permits that appear or vanish), never undefined behaviour; entry indices come from this
/// process's own scan, never from shared memory. Verified by loom models that kill a
/// participant after every single store of every operation (`tests/loom_ledger.rs`).
///
/// # Examples
///
/// ```
/// use mproc_futex::{AlwaysAlive, Caller, Give, Ledger, Wait};
///
/// let ledger: Ledger = Ledger::with_value(2);
/// let me = Caller { id: 1, liveness: &AlwaysAlive };
/// assert!(ledger.take(me, 1, true, Wait::Forever).unwrap());
/// assert_eq!((ledger.value(), ledger.held_by(1), ledger.outstanding()), (1, 1, 1));
/// ledger.give(me, 1, Give::ToValue { bound: 2 }, Wait::Forever).unwrap();
/// assert_eq!((ledger.value(), ledger.held_by(1)), (2, 0));
/// ```
#[repr(C)]
pub struct Ledger<W: Waiter = Futex, const N: usize = LEDGER_ENTRIES> {
    guard: RawLock<W>,
    value: AtomicU32,
    unattributed: AtomicU64,
    untracked: AtomicU64,
    outstanding: AtomicU64,
    reclaimed: AtomicU64,
    journal: Journal,
    entries: [Entry; N],
}

// SAFETY: `repr(C)`, a `RawLock`, atomics, a `Journal` and `Entry`s (all `SharedState`);
// `Sync`.
crate::primitive::shared_primitive!(Ledger<W, const N>);

crate::primitive::debug_via_getters!(Ledger<W, const N> {
    value: value, outstanding: outstanding, unattributed: unattributed,
    untracked: untracked, reclaimed: reclaimed, ..
});

/// The words one journaled change may touch, read under the guard.
#[derive(Debug, Clone, Copy)]
struct Image {
    value: u32,
    unattributed: u64,
    untracked: u64,
    outstanding: u64,
    reclaimed: u64,
}

/// A change in progress: the guard is held. Every store goes through [`Change::put`], a fault
/// point.
struct Change<'a, W: Waiter, const N: usize, F: Fault> {
    ledger: &'a Ledger<W, N>,
    fault: &'a F,
}

impl<W: Waiter, const N: usize, F: Fault> Change<'_, W, N, F> {
    /// The fault point before every store: `Died` if the fault says this participant dies
    /// here (tests only; `NoFault` never does).
    #[inline]
    fn may_die(&self) -> Result<(), LedgerError> {
        if self.fault.die() {
            return Err(LedgerError::Died);
        }
        Ok(())
    }

    #[inline]
    fn put32(&self, word: &AtomicU32, v: u32) -> Result<(), LedgerError> {
        self.may_die()?;
        // Release: under the guard (see the module docs), but also read without it (`value`
        // peeks, `outstanding`): a reader that sees this store sees the change's earlier ones
        // and what the caller did before the operation.
        word.store(v, Ordering::Release);
        Ok(())
    }

    #[inline]
    fn put64(&self, word: &AtomicU64, v: u64) -> Result<(), LedgerError> {
        self.may_die()?;
        // Release: as in `put32`.
        word.store(v, Ordering::Release);
        Ok(())
    }

    /// Writes the journal's before-image of the shared words and of `entry`, then sets
    /// `active`.
    fn begin(&self, entry: Option<usize>) -> Result<Image, LedgerError> {
        let l = self.ledger;
        let j = &l.journal;
        let image = l.image();
        self.put32(&j.value, image.value)?;
        self.put64(&j.unattributed, image.unattributed)?;
        self.put64(&j.untracked, image.untracked)?;
        self.put64(&j.outstanding, image.outstanding)?;
        self.put64(&j.reclaimed, image.reclaimed)?;
        match entry {
            Some(i) => {
                let e = &l.entries[i];
                // Relaxed: under the guard.
                self.put32(&j.entry_id, e.id.load(Ordering::Relaxed))?;
                self.put64(&j.entry_held, e.held.load(Ordering::Relaxed))?;
                self.put32(&j.entry, i as u32)?;
            }
            None => self.put32(&j.entry, NO_ENTRY)?,
        }
        self.put32(&j.active, 1)?;
        Ok(image)
    }

    /// Ends the change: the journal no longer applies.
    fn commit(&self) -> Result<(), LedgerError> {
        self.put32(&self.ledger.journal.active, 0)
    }
}

impl<W: Waiter, const N: usize> Ledger<W, N> {
    /// An empty ledger whose value is `value`.
    pub fn with_value_for_waiter(value: u32) -> Self {
        Ledger {
            guard: RawLock::new_for_waiter(),
            value: AtomicU32::new(value),
            unattributed: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            journal: Journal::new(),
            entries: std::array::from_fn(|_| Entry::new()),
        }
    }

    /// Sets the value of a ledger nobody uses yet (e.g. a zeroed one in a fresh segment).
    pub fn init(&self, value: u32) {
        // Release: publishes the value to whoever later observes the object as ready.
        self.value.store(value, Ordering::Release);
    }

    /// The value (a snapshot).
    pub fn value(&self) -> u32 {
        // Relaxed: a snapshot; changes are made under the guard.
        self.value.load(Ordering::Relaxed)
    }

    /// The value word, for futex waits on it.
    pub(crate) fn value_word(&self) -> &AtomicU32 {
        &self.value
    }

    /// Units held and not given back, minus gives by non-holders (`Σ held + untracked −
    /// unattributed`; negative for a semaphore released more than acquired). A snapshot.
    pub fn outstanding(&self) -> i64 {
        // Acquire: a reader that sees a count also sees what the changer did before it (a
        // joiner deciding that every task is done).
        self.outstanding.load(Ordering::Acquire) as i64
    }

    /// Units given back by participants that held none, not yet set against a dead
    /// holder's units (a snapshot; see the rule above).
    pub fn unattributed(&self) -> u64 {
        // Relaxed: a diagnostic snapshot.
        self.unattributed.load(Ordering::Relaxed)
    }

    /// Units taken by participants that found no free entry (a snapshot).
    pub fn untracked(&self) -> u64 {
        // Relaxed: a diagnostic snapshot.
        self.untracked.load(Ordering::Relaxed)
    }

    /// Units given back so far for participants found dead.
    pub fn reclaimed(&self) -> u64 {
        // Relaxed: a statistic.
        self.reclaimed.load(Ordering::Relaxed)
    }

    /// Units the ledger records participant `id` as holding (a snapshot; 0 if it has no
    /// entry).
    pub fn held_by(&self, id: u32) -> u64 {
        self.entries
            .iter()
            // Relaxed: a diagnostic snapshot.
            .find(|e| e.id.load(Ordering::Relaxed) == id)
            .map_or(0, |e| e.held.load(Ordering::Relaxed))
    }

    fn image(&self) -> Image {
        // Relaxed: under the guard.
        Image {
            value: self.value.load(Ordering::Relaxed),
            unattributed: self.unattributed.load(Ordering::Relaxed),
            untracked: self.untracked.load(Ordering::Relaxed),
            outstanding: self.outstanding.load(Ordering::Relaxed),
            reclaimed: self.reclaimed.load(Ordering::Relaxed),
        }
    }

    // ---------------------------------------------------------------------------------
    // The guard

    /// Takes the guard, undoing the change of a holder that died with it.
    #[inline(always)]
    fn enter<'a, F: Fault>(
        &'a self,
        who: Caller<'a>,
        wait: Wait,
        fault: &'a F,
    ) -> Result<LockGuard<'a, W>, LedgerError> {
        // `lock` checks `who.id` (panicking on an invalid id) before anything uses it.
        let mut guard = match self.guard.lock(who.id, who.liveness, wait) {
            Ok(g) => return Ok(g),
            Err(LockError::OwnerDied(g)) => g,
            Err(LockError::Timeout | LockError::WouldBlock) => return Err(LedgerError::Timeout),
            Err(LockError::NotRecoverable) => return Err(LedgerError::Corrupt),
        };
        if let Err(e) = self.restore(fault) {
            // Killed while repairing: the guard stays held, the journal still active.
            std::mem::forget(guard);
            return Err(e);
        }
        guard.mark_consistent();
        Ok(guard)
    }

    /// Undoes an interrupted change, if the journal says one was in progress.
    fn restore<F: Fault>(&self, fault: &F) -> Result<(), LedgerError> {
        let j = &self.journal;
        // Relaxed: under the guard (taken over after the liveness answer "dead", see the
        // module docs).
        if j.active.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let c = Change {
            ledger: self,
            fault,
        };
        c.put32(&self.value, j.value.load(Ordering::Relaxed))?;
        c.put64(&self.unattributed, j.unattributed.load(Ordering::Relaxed))?;
        c.put64(&self.untracked, j.untracked.load(Ordering::Relaxed))?;
        c.put64(&self.outstanding, j.outstanding.load(Ordering::Relaxed))?;
        c.put64(&self.reclaimed, j.reclaimed.load(Ordering::Relaxed))?;
        let i = j.entry.load(Ordering::Relaxed);
        // Untrusted index: only an index inside the table is restored.
        if let Some(e) = self.entries.get(i as usize) {
            c.put32(&e.id, j.entry_id.load(Ordering::Relaxed))?;
            c.put64(&e.held, j.entry_held.load(Ordering::Relaxed))?;
        }
        c.commit()
    }

    /// Runs `body` under the guard; a fault that stops it leaves the guard held (as a killed
    /// process would).
    fn locked<R, F: Fault>(
        &self,
        who: Caller<'_>,
        wait: Wait,
        fault: &F,
        body: impl FnOnce(&Change<'_, W, N, F>) -> Result<R, LedgerError>,
    ) -> Result<R, LedgerError> {
        let guard = self.enter(who, wait, fault)?;
        let r = body(&Change {
            ledger: self,
            fault,
        });
        if matches!(r, Err(LedgerError::Died)) || fault.die() {
            // Killed: the guard stays held by a dead owner.
            std::mem::forget(guard);
            return Err(LedgerError::Died);
        }
        drop(guard);
        r
    }

    /// The index of `id`'s entry, or of a free one (id 0, or nothing held), or `None`.
    fn find(&self, id: u32) -> Option<(usize, bool)> {
        let start = id as usize % N;
        let mut free = None;
        for k in 0..N {
            let i = (start + k) % N;
            let e = &self.entries[i];
            // Relaxed: under the guard.
            let eid = e.id.load(Ordering::Relaxed);
            if eid == id {
                return Some((i, true));
            }
            if free.is_none() && (eid == 0 || e.held.load(Ordering::Relaxed) == 0) {
                free = Some(i);
            }
        }
        free.map(|i| (i, false))
    }

    // ---------------------------------------------------------------------------------
    // Operations

    /// Takes `n` units for `who`: from `value` if `from_value` (refused, returning
    /// `Ok(false)`, unless `value >= n`), and records them as held by `who`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Timeout`] if `wait` ran out (or was [`Wait::Never`]) while the guard
    /// was busy;
    /// [`LedgerError::Corrupt`].
    pub fn take(
        &self,
        who: Caller<'_>,
        n: u32,
        from_value: bool,
        wait: Wait,
    ) -> Result<bool, LedgerError> {
        self.take_with(who, n, from_value, wait, &NoFault)
    }

    #[doc(hidden)]
    /// [`Ledger::take`] with fault points (tests).
    pub fn take_with<F: Fault>(
        &self,
        who: Caller<'_>,
        n: u32,
        from_value: bool,
        wait: Wait,
        fault: &F,
    ) -> Result<bool, LedgerError> {
        self.locked(who, wait, fault, |c| {
            // Relaxed: under the guard.
            let value = self.value.load(Ordering::Relaxed);
            if from_value && value < n {
                return Ok(false);
            }
            let slot = match self.find(who.id) {
                Some(s) => Some(s),
                None => {
                    // Every entry is held: free the dead participants' ones first. Their units
                    // go back to the value exactly when this ledger's units live there.
                    self.reclaim_entries(c, who, from_value)?;
                    self.find(who.id)
                }
            };
            let image = c.begin(slot.map(|(i, _)| i))?;
            if from_value {
                // The image, not `value`: a reclaim above may have given units back into it.
                c.put32(&self.value, image.value - n)?;
            }
            match slot {
                Some((i, mine)) => {
                    let e = &self.entries[i];
                    if !mine {
                        c.put64(&e.held, 0)?;
                        c.put32(&e.id, who.id)?;
                    }
                    // Relaxed: under the guard.
                    let held = e.held.load(Ordering::Relaxed);
                    c.put64(&e.held, held.saturating_add(u64::from(n)))?;
                }
                None => c.put64(
                    &self.untracked,
                    image.untracked.saturating_add(u64::from(n)),
                )?,
            }
            c.put64(
                &self.outstanding,
                image.outstanding.wrapping_add(u64::from(n)),
            )?;
            c.commit()?;
            Ok(true)
        })
    }

    /// Gives `n` units back for `who`: from what `who` holds first, the rest as a give by a
    /// non-holder (`unattributed`); the units go where `to` says.
    ///
    /// # Errors
    ///
    /// [`GiveError::TooMany`] (nothing changes) if `value` would pass the bound of
    /// [`Give::ToValue`], or, for [`Give::Consume`], if fewer than `n` units are
    /// outstanding; [`GiveError::Ledger`] as for [`Ledger::take`].
    pub fn give(&self, who: Caller<'_>, n: u32, to: Give, wait: Wait) -> Result<(), GiveError> {
        self.give_with(who, n, to, wait, &NoFault)
    }

    #[doc(hidden)]
    /// [`Ledger::give`] with fault points (tests).
    pub fn give_with<F: Fault>(
        &self,
        who: Caller<'_>,
        n: u32,
        to: Give,
        wait: Wait,
        fault: &F,
    ) -> Result<(), GiveError> {
        let mut too_many = false;
        self.locked(who, wait, fault, |c| {
            let image = self.image();
            let new_value = match to {
                Give::ToValue { bound } => match image.value.checked_add(n) {
                    Some(v) if v <= bound => Some(v),
                    _ => {
                        too_many = true;
                        return Ok(());
                    }
                },
                Give::Consume => {
                    if (image.outstanding as i64) < i64::from(n) {
                        too_many = true;
                        return Ok(());
                    }
                    None
                }
            };
            let mine = self.find(who.id).filter(|&(_, mine)| mine).map(|(i, _)| i);
            c.begin(mine)?;
            if let Some(v) = new_value {
                c.put32(&self.value, v)?;
            }
            let mut rest = u64::from(n);
            if let Some(i) = mine {
                let e = &self.entries[i];
                // Relaxed: under the guard.
                let held = e.held.load(Ordering::Relaxed);
                let from_held = held.min(rest);
                c.put64(&e.held, held - from_held)?;
                rest -= from_held;
            }
            if rest > 0 {
                c.put64(&self.unattributed, image.unattributed.saturating_add(rest))?;
            }
            c.put64(
                &self.outstanding,
                image.outstanding.wrapping_sub(u64::from(n)),
            )?;
            c.commit()
        })?;
        if too_many {
            return Err(GiveError::TooMany);
        }
        Ok(())
    }

    /// Gives back what dead participants held (see the rule in the [`Ledger`] docs),
    /// asking `who.liveness` about every other participant with an entry; returns the units
    /// given back (into `value` if `to_value`).
    ///
    /// # Errors
    ///
    /// As [`Ledger::take`].
    pub fn reclaim_dead(
        &self,
        who: Caller<'_>,
        to_value: bool,
        wait: Wait,
    ) -> Result<u64, LedgerError> {
        self.reclaim_dead_with(who, to_value, wait, &NoFault)
    }

    #[doc(hidden)]
    /// [`Ledger::reclaim_dead`] with fault points (tests).
    pub fn reclaim_dead_with<F: Fault>(
        &self,
        who: Caller<'_>,
        to_value: bool,
        wait: Wait,
        fault: &F,
    ) -> Result<u64, LedgerError> {
        self.locked(who, wait, fault, |c| {
            // Relaxed: under the guard.
            let before = self.reclaimed.load(Ordering::Relaxed);
            self.reclaim_entries(c, who, to_value)?;
            Ok(self.reclaimed.load(Ordering::Relaxed).wrapping_sub(before))
        })
    }

    fn reclaim_entries<F: Fault>(
        &self,
        c: &Change<'_, W, N, F>,
        who: Caller<'_>,
        to_value: bool,
    ) -> Result<(), LedgerError> {
        for (i, e) in self.entries.iter().enumerate() {
            // Relaxed: under the guard.
            let id = e.id.load(Ordering::Relaxed);
            if id == who.id || ParticipantId::new(id).is_none() {
                continue;
            }
            let held = e.held.load(Ordering::Relaxed);
            // An entry that holds nothing is free already (`find` reuses it): no need to ask
            // the kernel about its participant.
            if held == 0 || who.liveness.is_alive(id) {
                continue;
            }
            let image = c.begin(Some(i))?;
            let u = image.unattributed;
            let back = held.saturating_sub(u);
            c.put64(&self.unattributed, u - held.min(u))?;
            c.put64(&self.outstanding, image.outstanding.wrapping_sub(back))?;
            c.put64(&self.reclaimed, image.reclaimed.wrapping_add(back))?;
            if to_value {
                let v = u64::from(image.value).saturating_add(back);
                c.put32(&self.value, u32::try_from(v).unwrap_or(u32::MAX))?;
            }
            c.put64(&e.held, 0)?;
            c.put32(&e.id, 0)?;
            c.commit()?;
        }
        Ok(())
    }
}

impl Ledger {
    /// An empty ledger with `value`, sleeping with [`Futex`].
    pub fn with_value(value: u32) -> Self {
        Self::with_value_for_waiter(value)
    }
}
