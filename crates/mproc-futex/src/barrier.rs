//! [`Barrier`]: a cyclic barrier for a fixed number of parties (Python's `Barrier`), with an
//! action run before the parties are released and death detection for registered parties.
//!
//! Three words and a registry: `parties` (written at initialisation), `state`, a futex word
//! `wake` on which waiters sleep (so that arrivals, which change `state`, do not wake them;
//! only a generation change or a break bumps `wake`), and `N` registry entries.
//!
//! `state`:
//!
//! | bit 31 | bit 30 | bit 29     | bits 16–28 | bits 0–15 |
//! |--------|--------|------------|------------|-----------|
//! | BROKEN | RESET  | REGISTERED | generation | arrived   |
//!
//! An arrival CASes `arrived` up by one; its index is the old count. `arrived < parties`:
//! filling. `arrived == parties`: the last arrival runs the action (if it has one), then
//! CASes to the next generation with `arrived = 0` and REGISTERED set, which releases the
//! waiters. `abort` sets BROKEN; `reset` clears the registry and starts the next generation
//! with RESET (telling the waiters of the previous one that they were broken off) and
//! without REGISTERED. A timed-out `wait`, a panicking action and a dead registered party
//! break the barrier, as in Python (the last is mproc's addition: Python waits for ever).
//!
//! # Registry and participant death
//!
//! Each arrival of the first generation after initialisation or a [`reset`](Barrier::reset)
//! (REGISTERED clear) registers its participant id in the registry: an open-addressing table
//! of `(id, count)` entries, `count` being how many parties of that participant (threads)
//! registered. That generation cannot end before every party arrived, so when it ends every
//! party is registered, and later arrivals register nothing. Waiters sleep through
//! [`SlicedWait::sliced_wait`] in slices of at most [`BARRIER_CHECK_INTERVAL`], and after each
//! slice ask the [`Liveness`](crate::Liveness) about *every* registered participant, so:
//!
//! * a registered party that dies — while waiting, running the action, or between two
//!   `wait`s — breaks the barrier for the waiters within one check interval (plus the time
//!   the liveness needs to see the death);
//! * a party that dies *before its first `wait`* is not registered and cannot be told from a
//!   slow one: the others wait until their timeout, which breaks the barrier (Python's
//!   behaviour), or until a supervisor calls [`abort`](Barrier::abort).
//!
//! The registry holds `N` distinct participants; an arrival that finds it full (more
//! distinct participants than `N`, or foreign ids in a corrupt registry) breaks the barrier
//! and is told [`BarrierWaitError::RegistryFull`]: an arrival that nobody could watch is
//! never accepted silently.
//!
//! Known limits: a waiter that is descheduled for two whole generations after a `reset`
//! cannot tell which way its own generation ended and reports success. A `reset` that races
//! with a first-generation arrival between its arrival and its registration can leave that
//! registration in the new epoch (counted once too often, or watched once more than
//! needed); `reset` with parties still arriving is already a race in Python.

use crate::deadline::Wait;
use crate::ledger::Caller;
use crate::sync::{AtomicU32, Ordering};
use crate::waiter::{Futex, Outcome, Round, SlicedWait, Waiter};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

/// The largest number of parties a barrier supports.
pub const MAX_PARTIES: u32 = 0xFFFF;

/// The default number of registry entries of a [`Barrier`]: how many distinct participants
/// it can watch.
pub const BARRIER_REGISTRY: usize = 64;

/// Longest a waiter sleeps before asking whether the registered parties still live: a
/// registered party that dies breaks the barrier for the waiters within about this long.
pub const BARRIER_CHECK_INTERVAL: Duration = Duration::from_millis(20);

const COUNT_MASK: u32 = 0xFFFF;
const GEN_SHIFT: u32 = 16;
const GEN_MASK: u32 = 0x1FFF;
const REGISTERED: u32 = 1 << 29;
const RESET: u32 = 1 << 30;
const BROKEN: u32 = 1 << 31;

fn generation(s: u32) -> u32 {
    (s >> GEN_SHIFT) & GEN_MASK
}

fn with_next_generation(s: u32) -> u32 {
    ((generation(s) + 1) & GEN_MASK) << GEN_SHIFT
}

/// Why [`Barrier::wait`] did not pass (Python's `BrokenBarrierError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierWaitError {
    /// The barrier is broken: aborted, reset while we waited, another waiter timed out, the
    /// action panicked, or a registered party died.
    #[error("barrier is broken")]
    Broken,
    /// Our deadline passed (or the wait was [`Wait::Never`]); the barrier is now broken for
    /// everybody.
    #[error("timed out waiting at the barrier; the barrier is now broken")]
    Timeout,
    /// The barrier was never initialised (or its `parties` word is corrupt).
    #[error("barrier is not initialised")]
    Uninitialised,
    /// Our participant could not be registered (more distinct participants than registry
    /// entries, or a corrupt registry); the barrier is now broken for everybody.
    #[error("barrier registry is full; the barrier is now broken")]
    RegistryFull,
}

/// One registry entry: a participant id (0: free) and how many of its parties registered.
#[repr(C)]
struct Entry {
    id: AtomicU32,
    count: AtomicU32,
}

impl Entry {
    crate::sync::loom_const_fn! {
        fn new() -> Entry {
            Entry {
                id: AtomicU32::new(0),
                count: AtomicU32::new(0),
            }
        }
    }
}

/// A cyclic barrier, `#[repr(C)]`, `12 + 8 * N` bytes (`N` registry entries, see the module
/// docs). All-zero bytes are an uninitialised barrier: call [`init`](Self::init) before use.
///
/// # Examples
///
/// ```
/// use mproc_futex::{AlwaysAlive, Barrier, Caller, Wait};
///
/// let b: Barrier = Barrier::with_parties(1);
/// let me = Caller { id: 1, liveness: &AlwaysAlive };
/// assert_eq!(b.wait(me, Wait::Forever, None), Ok(0));
/// assert_eq!(b.wait(me, Wait::Forever, None), Ok(0)); // cyclic
/// assert_eq!(b.registered(), 1);
/// ```
#[repr(C)]
pub struct Barrier<W: Waiter = Futex, const N: usize = BARRIER_REGISTRY> {
    parties: AtomicU32,
    state: AtomicU32,
    wake: AtomicU32,
    registry: [Entry; N],
    _waiter: PhantomData<fn() -> W>,
}

// SAFETY: `repr(C)`, three `AtomicU32`s (a bad `parties` or state is reported, not
// trusted), a registry of `AtomicU32` pairs (ids are only asked about through liveness, counts
// are bounded by `parties`) and a zero-sized marker; `Sync`.
crate::primitive::shared_primitive!(Barrier<W, const N>);

crate::primitive::debug_via_getters!(Barrier<W, const N> {
    parties: parties, n_waiting: n_waiting, broken: is_broken, registered: registered
});

impl<W: Waiter, const N: usize> Barrier<W, N> {
    /// A barrier for `parties` parties.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or above [`MAX_PARTIES`].
    #[cfg(not(mproc_loom))]
    pub const fn with_parties_for_waiter(parties: u32) -> Self {
        assert!(parties != 0 && parties <= MAX_PARTIES, "bad party count");
        Barrier {
            parties: AtomicU32::new(parties),
            state: AtomicU32::new(0),
            wake: AtomicU32::new(0),
            registry: [const { Entry::new() }; N],
            _waiter: PhantomData,
        }
    }

    /// A barrier for `parties` parties.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or above [`MAX_PARTIES`].
    #[cfg(mproc_loom)]
    pub fn with_parties_for_waiter(parties: u32) -> Self {
        assert!(parties != 0 && parties <= MAX_PARTIES, "bad party count");
        Barrier {
            parties: AtomicU32::new(parties),
            state: AtomicU32::new(0),
            wake: AtomicU32::new(0),
            registry: std::array::from_fn(|_| Entry::new()),
            _waiter: PhantomData,
        }
    }

    /// Sets the party count of a zeroed barrier nobody uses yet.
    ///
    /// # Panics
    ///
    /// As [`with_parties`](Self::with_parties_for_waiter).
    pub fn init(&self, parties: u32) {
        assert!(parties != 0 && parties <= MAX_PARTIES, "bad party count");
        // Release: publishes the count to whoever later observes the object as ready.
        self.parties.store(parties, Ordering::Release);
    }

    /// The number of parties (Python's `parties`).
    pub fn parties(&self) -> u32 {
        // Acquire: pairs with the Release in `init`.
        self.parties.load(Ordering::Acquire)
    }

    /// How many parties are waiting in the current generation (Python's `n_waiting`): 0
    /// once the barrier is broken (its waiters are on their way out) and while the last
    /// arrival runs the action (nobody still waits for a party).
    pub fn n_waiting(&self) -> u32 {
        // Relaxed: a snapshot.
        let s = self.state.load(Ordering::Relaxed);
        let count = s & COUNT_MASK;
        if s & BROKEN != 0 || count >= self.parties() {
            0
        } else {
            count
        }
    }

    /// Whether the barrier is broken (Python's `broken`).
    pub fn is_broken(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// How many parties are registered (a snapshot; threads of one participant count once
    /// each): `parties` once the first generation since `init` or `reset` has ended.
    pub fn registered(&self) -> u32 {
        self.registry
            .iter()
            // Relaxed: a snapshot.
            .map(|e| e.count.load(Ordering::Relaxed))
            .fold(0u32, u32::saturating_add)
    }

    /// Waits until all parties have called `wait`; returns this party's arrival index in
    /// `0..parties` (the last to arrive gets `parties - 1`), like Python's `Barrier.wait`.
    ///
    /// `who` is the calling party: its participant id (registered if this is the first
    /// generation since `init` or `reset`) and the liveness asked about the registered
    /// parties between sleeps. If the caller is the last to arrive and `action` is given, it
    /// runs `action` before anybody is released (Python's `action`); parties of other
    /// generations are never held up by it.
    ///
    /// # Errors
    ///
    /// [`BarrierWaitError::Broken`] if the barrier is or becomes broken;
    /// [`BarrierWaitError::Timeout`] if `wait` ran out first (the barrier is then broken);
    /// [`BarrierWaitError::RegistryFull`] (see the module docs);
    /// [`BarrierWaitError::Uninitialised`] for a barrier with no valid party count.
    ///
    /// # Panics
    ///
    /// If `who.id` is not a valid participant id. A panic of `action` breaks the barrier and
    /// then continues in the caller.
    pub fn wait(
        &self,
        who: Caller<'_>,
        wait: Wait,
        action: Option<&dyn Fn()>,
    ) -> Result<u32, BarrierWaitError> {
        crate::liveness::check_id(who.id);
        let parties = self.parties();
        if parties == 0 || parties > MAX_PARTIES {
            return Err(BarrierWaitError::Uninitialised);
        }
        // Acquire: pairs with the AcqRel RMWs of other parties (what they wrote before
        // arriving, the action's effects).
        let mut s = self.state.load(Ordering::Acquire);
        let (index, my_gen) = loop {
            if s & BROKEN != 0 {
                return Err(BarrierWaitError::Broken);
            }
            let count = s & COUNT_MASK;
            if count >= parties {
                // The last party of this generation runs the action (or a corrupt count):
                // wait for the next generation, then arrive in it.
                s = self.wait_for_change(who, wait, s)?;
                continue;
            }
            // AcqRel: every arrival releases what its party wrote before arriving; the RMW
            // chain carries all of it to the last arrival and, through the generation
            // change, to every waiter.
            match self
                .state
                .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break (count, generation(s)),
                Err(now) => s = now,
            }
        };
        if s & REGISTERED == 0 && !self.register(who.id) {
            self.break_generation(my_gen);
            return Err(BarrierWaitError::RegistryFull);
        }
        if index + 1 >= parties {
            return self.trip(index, my_gen, action);
        }
        let out = W::sliced_wait(
            &self.wake,
            wait,
            BARRIER_CHECK_INTERVAL,
            || self.outcome(my_gen, index),
            |round| self.watch(who, round, my_gen, index),
        );
        match out {
            Outcome::Done(r) => r,
            Outcome::Stopped(never) => match never {},
            Outcome::TimedOut => self.time_out(my_gen, index),
        }
    }

    /// While the last arrival of state `s` runs the action: sleeps until the state changes,
    /// watching the registered parties; returns the new state.
    fn wait_for_change(
        &self,
        who: Caller<'_>,
        wait: Wait,
        s: u32,
    ) -> Result<u32, BarrierWaitError> {
        let gen_of_s = generation(s);
        let changed = || {
            // Acquire: as the first load in `wait`.
            let now = self.state.load(Ordering::Acquire);
            (now != s).then_some(now)
        };
        let out = W::sliced_wait(&self.wake, wait, BARRIER_CHECK_INTERVAL, changed, |round| {
            if round.asks_liveness() && self.registered_party_died(who) {
                self.break_generation(gen_of_s);
            }
            changed().map(Ok::<u32, Infallible>)
        });
        match out {
            Outcome::Done(now) => Ok(now),
            Outcome::Stopped(never) => match never {},
            Outcome::TimedOut => {
                // Not arrived: breaking the generation we wait behind is what Python's
                // timeout does to everybody.
                self.break_generation(gen_of_s);
                Err(BarrierWaitError::Timeout)
            }
        }
    }

    /// What a waiter of generation `my_gen` with arrival `index` concludes from the state
    /// now, or `None` to keep waiting.
    fn outcome(&self, my_gen: u32, index: u32) -> Option<Result<u32, BarrierWaitError>> {
        // Acquire: pairs with the AcqRel RMWs of the last arrival, abort and reset.
        let s = self.state.load(Ordering::Acquire);
        let g = generation(s);
        if g != my_gen {
            let broken_off = s & RESET != 0 && g == (my_gen + 1) & GEN_MASK;
            return Some(if broken_off {
                Err(BarrierWaitError::Broken)
            } else {
                Ok(index)
            });
        }
        if s & BROKEN != 0 {
            return Some(Err(BarrierWaitError::Broken));
        }
        None
    }

    /// The check between sleeps: after a sleep (never before the first: no system call on
    /// the wake-up path), breaks generation `my_gen` if a registered party died.
    fn watch(
        &self,
        who: Caller<'_>,
        round: Round,
        my_gen: u32,
        index: u32,
    ) -> Option<Result<Result<u32, BarrierWaitError>, Infallible>> {
        if round.asks_liveness() && self.registered_party_died(who) {
            self.break_generation(my_gen);
        }
        self.outcome(my_gen, index).map(Ok)
    }

    /// Whether a registered participant other than the caller is dead.
    fn registered_party_died(&self, who: Caller<'_>) -> bool {
        self.registry.iter().any(|e| {
            // Relaxed: read only for liveness checks; a stale or missing id costs at most a
            // late or spurious break, never memory safety.
            let id = e.id.load(Ordering::Relaxed);
            id != who.id && crate::ParticipantId::new(id).is_some() && !who.liveness.is_alive(id)
        })
    }

    /// Registers one party of participant `me`; `false` if the registry is full.
    fn register(&self, me: u32) -> bool {
        let start = me as usize % N.max(1);
        for k in 0..N {
            let e = &self.registry[(start + k) % N];
            // Relaxed: entries are only read for liveness checks (see
            // `registered_party_died`); the CAS below makes a claim exclusive.
            let mut id = e.id.load(Ordering::Relaxed);
            loop {
                if id == me {
                    // Relaxed: a count, read only as a snapshot.
                    e.count.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                if id != 0 {
                    break; // another participant's entry: probe on
                }
                // Relaxed: as the load; exclusivity needs only the CAS's atomicity.
                match e
                    .id
                    .compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => id = me, // counts itself on the next turn
                    Err(now) => id = now,
                }
            }
        }
        false
    }

    fn clear_registry(&self) {
        for e in &self.registry {
            // Relaxed: ordered before the next generation by the AcqRel CAS of `reset`.
            e.id.store(0, Ordering::Relaxed);
            // Relaxed: as above.
            e.count.store(0, Ordering::Relaxed);
        }
    }

    /// The deadline passed: unless the generation ended meanwhile (then its outcome), breaks
    /// it and reports `Timeout`.
    fn time_out(&self, my_gen: u32, index: u32) -> Result<u32, BarrierWaitError> {
        if let Some(r) = self.outcome(my_gen, index) {
            return r; // the barrier opened (or broke) as we timed out
        }
        if self.break_generation(my_gen) {
            Err(BarrierWaitError::Timeout)
        } else {
            // It ended between the two looks.
            self.outcome(my_gen, index)
                .unwrap_or(Err(BarrierWaitError::Broken))
        }
    }

    /// The last arrival: runs the action, then opens the next generation.
    fn trip(
        &self,
        index: u32,
        my_gen: u32,
        action: Option<&dyn Fn()>,
    ) -> Result<u32, BarrierWaitError> {
        if let Some(action) = action
            && let Err(panic) = catch_unwind(AssertUnwindSafe(action))
        {
            self.break_generation(my_gen);
            resume_unwind(panic);
        }
        // Acquire: as in `wait`.
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if generation(s) != my_gen || s & BROKEN != 0 {
                // Reset or broken while the action ran (a waiter timed out, an abort, a
                // death).
                return Err(BarrierWaitError::Broken);
            }
            // AcqRel: releases the action's effects and every arrival's writes to the
            // waiters' Acquire loads of the new generation.
            match self.state.compare_exchange(
                s,
                with_next_generation(s) | REGISTERED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.bump_and_wake();
                    return Ok(index);
                }
                Err(now) => s = now,
            }
        }
    }

    /// Breaks the barrier if it is still in generation `my_gen`; `true` if this call did.
    fn break_generation(&self, my_gen: u32) -> bool {
        // Acquire: as in `wait`.
        let mut s = self.state.load(Ordering::Acquire);
        while generation(s) == my_gen && s & BROKEN == 0 {
            // AcqRel: as every state RMW.
            match self
                .state
                .compare_exchange(s, s | BROKEN, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.bump_and_wake();
                    return true;
                }
                Err(now) => s = now,
            }
        }
        false
    }

    fn bump_and_wake(&self) {
        // Release: pairs with the load of `wake` before a waiter's last look at the state.
        self.wake.fetch_add(1, Ordering::Release);
        W::wake(&self.wake, u32::MAX);
    }

    /// Breaks the barrier: current and future waiters get `Broken` until [`reset`](Self::reset)
    /// (Python's `abort()`).
    pub fn abort(&self) {
        // AcqRel: as the other state RMWs.
        self.state.fetch_or(BROKEN, Ordering::AcqRel);
        self.bump_and_wake();
    }

    /// Returns the barrier to its empty, unbroken, unregistered state; parties waiting now
    /// get `Broken` (Python's `reset()`), and the parties register again at their next
    /// `wait`.
    pub fn reset(&self) {
        self.clear_registry();
        // Relaxed: the CAS synchronises.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let next = with_next_generation(s) | RESET;
            // AcqRel: as the other state RMWs (and orders the registry's clearing before
            // the new generation's registrations).
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.bump_and_wake();
    }
}

impl Barrier {
    crate::sync::loom_const_fn! {
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`]
        /// or registry size, use [`Barrier::with_parties_for_waiter`].
        pub fn with_parties(parties: u32) -> Self {
            Self::with_parties_for_waiter(parties)
        }
    }
}
