//! [`Barrier`]: Python's `multiprocessing.Barrier` across processes, with an action run
//! before the parties are released, and death detection for parties waiting at it.
//!
//! The generation/arrival word follows `mproc-futex`'s `Barrier` (which is loom-checked),
//! extended with an action phase and with *watched arrivals*: each arrival records its
//! participant id in the slot of its arrival index (the first [`WATCHED`] indexes), and
//! waiters sleep in slices of [`BARRIER_CHECK_INTERVAL`], after each of which they ask the
//! segment whether the recorded parties still live.
//!
//! `state` (one 32-bit word):
//!
//! | bit 31 | bit 30 | bits 16–29  | bits 0–15 |
//! |--------|--------|-------------|-----------|
//! | BROKEN | RESET  | generation  | arrived   |
//!
//! `arrived < parties`: filling. `arrived == parties`: the last arrival is running the action
//! (later arrivals wait for the next generation). The last arrival then clears the watched
//! slots and moves to the next generation with `arrived = 0`, which releases the waiters.
//! `wake` is a separate futex word bumped on every generation change or break, so arrivals
//! do not wake sleepers.
#![allow(unsafe_code)]

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::time::Duration;

use mproc_core::shared::{SharedBytes, shared_at};
use mproc_futex::{Deadline, futex};

use super::backing::{Backing, Kind, Shared};
use super::error::BarrierError;
use super::handle::shared_handle;
use crate::storage::cells::{AtomicU32, Ordering};
use crate::storage::object::{CreateError, OpenError};

/// Longest a waiter sleeps before checking that the parties waiting with it still live: a
/// party that dies while waiting breaks the barrier for the others within about this long.
pub const BARRIER_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Arrival indexes whose participant is recorded (and watched for death).
const WATCHED: usize = 28;
/// Most parties a barrier supports.
const MAX_PARTIES: u32 = 0xFFFF;

const COUNT_MASK: u32 = 0xFFFF;
const GEN_SHIFT: u32 = 16;
const GEN_MASK: u32 = 0x3FFF;
const RESET: u32 = 1 << 30;
const BROKEN: u32 = 1 << 31;

fn generation(s: u32) -> u32 {
    (s >> GEN_SHIFT) & GEN_MASK
}

fn with_next_generation(s: u32) -> u32 {
    ((generation(s) + 1) & GEN_MASK) << GEN_SHIFT
}

/// The shared state (`#[repr(C)]`, atomics only, 128 bytes).
#[repr(C)]
struct BarrierState {
    parties: AtomicU32,
    state: AtomicU32,
    wake: AtomicU32,
    _reserved: AtomicU32,
    /// Participant id of the arrival with each index in the current generation (0: none).
    arrived: [AtomicU32; WATCHED],
}

const _: () = assert!(size_of::<BarrierState>() == 128);

// SAFETY: `repr(C)`, std atomics only (a bad `parties` is refused on open, arrival ids are
// asked about through liveness); `Sync`.
unsafe impl mproc_core::shared::SharedState for BarrierState {}

const KIND: Kind = Kind {
    tag: "Barrier/v1",
    name: "Barrier",
    size: size_of::<BarrierState>(),
    align: align_of::<BarrierState>(),
};

type Action = Arc<dyn Fn() + Send + Sync>;

/// A cyclic barrier for a fixed number of parties, shared between processes (Python's
/// `multiprocessing.Barrier`).
///
/// [`wait`](Self::wait) blocks until `parties` parties (threads of any processes) have called
/// it, then releases them all and returns each its arrival index `0..parties` (the last to
/// arrive gets `parties - 1`). The barrier can be used again at once.
///
/// * **Action**: [`with_action`](Self::with_action) runs a closure in the *last* party to
///   arrive, before the others are released — Python's rule. If it panics, the barrier
///   breaks (the others get [`BarrierError::Broken`]) and the panic continues in that party.
///   The closure lives in the process-local handle: clones and forked children carry it; a
///   handle imported by a spawned child or opened by name has none until
///   [`set_action`](Self::set_action) gives it one, so a trip completed by such a party runs
///   no action.
/// * **Breaking**: [`abort`](Self::abort), a waiter's timeout, an action's panic, or the death
///   of a party waiting at the barrier break it: current and later waiters get
///   [`BarrierError::Broken`] until [`reset`](Self::reset).
/// * **Death**: each arrival records its participant id (the first 28 arrival indexes are
///   watched) and waiters check those parties' liveness every [`BARRIER_CHECK_INTERVAL`], so
///   a party SIGKILLed while waiting breaks the barrier for the others instead of leaving a
///   ghost (Python's P10). A party that dies *before* arriving cannot be told from a slow
///   one: the others wait until their timeout, which breaks the barrier (as in Python).
///
/// # Examples
///
/// ```
/// use mproc::sync::Barrier;
///
/// let b = Barrier::new(1)?;
/// assert_eq!(b.wait()?, 0); // a single party passes at once, every time
/// assert_eq!(b.wait()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Arc<Shared>,
    /// Validated copy of the party count.
    parties: u32,
    action: Option<Action>,
}

shared_handle!(Barrier, KIND);

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .field("action", &self.action.is_some())
            .finish()
    }
}

fn check_parties(parties: u32) -> Result<(), CreateError> {
    if parties == 0 || parties > MAX_PARTIES {
        return Err(CreateError::capacity(
            "barrier parties",
            parties,
            "1 to MAX_PARTIES",
        ));
    }
    Ok(())
}

fn init(state: &SharedBytes, parties: u32) {
    // The zeroed, unpublished state of a KIND object.
    let st = shared_at::<BarrierState>(state, 0).expect("the kind's state holds a barrier");
    // Relaxed: published with the object (the pool cell's or segment header's Release).
    st.parties.store(parties, Ordering::Relaxed);
}

impl Barrier {
    /// A barrier for `parties` parties, in the small-object [cell store](crate::storage::cells) (Python:
    /// `Barrier(parties)`).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidCapacity`] for 0 parties (Python accepts `Barrier(0)`; `threading`
    /// refuses it, as mproc does) or more than 65535; a segment error.
    pub fn new(parties: u32) -> Result<Barrier, CreateError> {
        check_parties(parties)?;
        Ok(Barrier::from_shared(Shared::new(Backing::new(
            &KIND,
            |p| init(p, parties),
        )?))?)
    }

    /// A barrier whose last arriving party runs `action` before the others are released
    /// (Python: `Barrier(parties, action)`). See the type docs for where the action lives.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_action(
        parties: u32,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Result<Barrier, CreateError> {
        let mut b = Barrier::new(parties)?;
        b.set_action(action);
        Ok(b)
    }

    /// A barrier for `parties` parties under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); [`CreateError::AlreadyExists`] or [`CreateError::InvalidName`].
    pub fn create_named(name: &str, parties: u32) -> Result<Barrier, CreateError> {
        check_parties(parties)?;
        let backing = Backing::create_named(&KIND, name, |p| init(p, parties))?;
        Ok(Barrier::from_shared(Shared::new(backing))?)
    }

    fn from_shared(shared: Arc<Shared>) -> Result<Barrier, OpenError> {
        let st = shared.state::<BarrierState>();
        // Acquire: pairs with the Release that published the object.
        let parties = st.parties.load(Ordering::Acquire);
        check_parties(parties).map_err(|_| OpenError::corrupt("barrier parties", parties))?;
        Ok(Barrier {
            shared,
            parties,
            action: None,
        })
    }

    /// Gives this handle (and its later clones) an action to run when it is the last party
    /// to arrive; replaces any previous one.
    pub fn set_action(&mut self, action: impl Fn() + Send + Sync + 'static) {
        self.action = Some(Arc::new(action));
    }

    fn state(&self) -> &BarrierState {
        self.shared.state::<BarrierState>()
    }

    /// The number of parties (Python: `parties`).
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// How many parties are waiting in the current generation; 0 while the action runs
    /// (Python: `n_waiting`).
    pub fn n_waiting(&self) -> u32 {
        // Relaxed: a snapshot.
        let count = self.state().state.load(Ordering::Relaxed) & COUNT_MASK;
        if count >= self.parties { 0 } else { count }
    }

    /// Whether the barrier is broken (Python: `broken`).
    pub fn is_broken(&self) -> bool {
        // Relaxed: a snapshot.
        self.state().state.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// Waits for all parties; returns this party's arrival index (Python: `wait()`).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] if the barrier is or becomes broken (including by the death
    /// of a waiting party); [`BarrierError::Register`].
    ///
    /// # Panics
    ///
    /// Resumes the action's panic in the party that ran it (after breaking the barrier).
    pub fn wait(&self) -> Result<u32, BarrierError> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), for at most `timeout` (Python: `wait(timeout)`).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Timeout`] if the timeout passed first: the barrier is then broken for
    /// everybody, as in Python. Otherwise as [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BarrierError> {
        self.wait_until(Some(Deadline::after(timeout)))
    }

    /// Breaks the barrier: current and future waiters get [`BarrierError::Broken`] until
    /// [`reset`](Self::reset) (Python: `abort()`).
    pub fn abort(&self) {
        // AcqRel: as every state RMW.
        self.state().state.fetch_or(BROKEN, Ordering::AcqRel);
        self.bump_and_wake();
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now get
    /// [`BarrierError::Broken`] (Python: `reset()`).
    pub fn reset(&self) {
        let st = self.state();
        self.clear_watched();
        // Relaxed: the CAS synchronises.
        let mut s = st.state.load(Ordering::Relaxed);
        loop {
            let next = with_next_generation(s) | RESET;
            // AcqRel: as every state RMW.
            match st
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.bump_and_wake();
    }

    fn wait_until(&self, deadline: Option<Deadline>) -> Result<u32, BarrierError> {
        let me = self.shared.backing.me().map_err(BarrierError::Register)?;
        let st = self.state();
        let parties = self.parties;
        // Acquire: pairs with the AcqRel RMWs of other parties (what they wrote before
        // arriving, the action's effects).
        let mut s = st.state.load(Ordering::Acquire);
        let (index, my_gen) = loop {
            if s & BROKEN != 0 {
                return Err(BarrierError::Broken);
            }
            let count = s & COUNT_MASK;
            if count >= parties {
                // The last party of this generation runs the action: wait for the next one
                // (Python: "arrivals during the draining phase wait for it to finish").
                // Acquire: pairs with the Release in `bump_and_wake`.
                let w = st.wake.load(Ordering::Acquire);
                // Acquire: as above.
                if st.state.load(Ordering::Acquire) == s {
                    self.sleep_slice(w, deadline, s, me, generation(s), None)?;
                }
                // Acquire: as above.
                s = st.state.load(Ordering::Acquire);
                continue;
            }
            // AcqRel: every arrival releases what its party wrote before arriving; the RMW
            // chain carries all of it to the last arrival and, through the generation
            // change, to every waiter.
            match st
                .state
                .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break (count, generation(s)),
                Err(now) => s = now,
            }
        };
        if let Some(slot) = st.arrived.get(index as usize) {
            // Relaxed: read only for liveness checks; a stale or missing id costs at most a
            // late or spurious break, never memory safety.
            slot.store(me, Ordering::Relaxed);
        }
        if index + 1 == parties {
            return self.trip(index, my_gen);
        }
        loop {
            // Read `wake` before `state`: a state change after we look is followed by a
            // `wake` bump that makes the futex wait return at once.
            // Acquire: pairs with the Release in `bump_and_wake`.
            let w = st.wake.load(Ordering::Acquire);
            // Acquire: pairs with the AcqRel RMWs of the last arrival, abort and reset.
            let s = st.state.load(Ordering::Acquire);
            if let Some(r) = outcome(s, my_gen, index) {
                return r;
            }
            self.sleep_slice(w, deadline, s, me, my_gen, Some(index))?;
        }
    }

    /// Sleeps on `wake` (expected `w`) for at most one check interval. Afterwards: if the
    /// deadline passed, breaks the barrier and reports `Timeout` (unless the generation
    /// ended meanwhile: then `Ok` and the caller sees the outcome); if a watched party of
    /// the state `s` is dead, breaks generation `my_gen`.
    fn sleep_slice(
        &self,
        w: u32,
        deadline: Option<Deadline>,
        s: u32,
        me: u32,
        my_gen: u32,
        index: Option<u32>,
    ) -> Result<(), BarrierError> {
        let slice = Deadline::after(BARRIER_CHECK_INTERVAL);
        let until = match deadline {
            Some(d) if d < slice => d,
            _ => slice,
        };
        if futex::wait(&self.state().wake, w, Some(until)) {
            return Ok(()); // woken (or spuriously): the caller re-reads the state
        }
        if deadline.is_some_and(|d| d.has_passed()) {
            return self.time_out(my_gen, index);
        }
        if self.watched_party_died(s, me) {
            self.break_generation(my_gen);
        }
        Ok(())
    }

    /// Whether a party recorded as arrived in state `s` is dead.
    fn watched_party_died(&self, s: u32, me: u32) -> bool {
        let count = (s & COUNT_MASK).min(self.parties) as usize;
        self.state().arrived.iter().take(count).any(|slot| {
            // Relaxed: see the store in `wait_until`.
            let id = slot.load(Ordering::Relaxed);
            id != 0 && id != me && !self.shared.backing.segment().is_alive(id)
        })
    }

    /// Breaks the barrier if it is still in generation `my_gen`.
    fn break_generation(&self, my_gen: u32) {
        let st = self.state();
        // Acquire: as in `wait_until`.
        let mut s = st.state.load(Ordering::Acquire);
        while generation(s) == my_gen && s & BROKEN == 0 {
            // AcqRel: as every state RMW.
            match st
                .state
                .compare_exchange(s, s | BROKEN, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.bump_and_wake();
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    fn time_out(&self, my_gen: u32, index: Option<u32>) -> Result<(), BarrierError> {
        let st = self.state();
        // Acquire: as in `wait_until`.
        let s = st.state.load(Ordering::Acquire);
        if let Some(i) = index
            && outcome(s, my_gen, i).is_some()
        {
            return Ok(()); // it opened (or broke) as we timed out: the caller reports that
        }
        self.break_generation(my_gen);
        Err(BarrierError::Timeout)
    }

    /// The last arrival: run the action, clear the watched slots, open the next generation.
    fn trip(&self, index: u32, my_gen: u32) -> Result<u32, BarrierError> {
        if let Some(action) = &self.action
            && let Err(panic) = catch_unwind(AssertUnwindSafe(|| action()))
        {
            self.break_generation(my_gen);
            resume_unwind(panic);
        }
        self.clear_watched();
        let st = self.state();
        // Acquire: as in `wait_until`.
        let mut s = st.state.load(Ordering::Acquire);
        loop {
            if generation(s) != my_gen || s & BROKEN != 0 {
                // Reset or broken while the action ran (a waiter timed out, an abort).
                return Err(BarrierError::Broken);
            }
            // AcqRel: releases the action's effects and every arrival's writes to the
            // waiters' Acquire loads of the new generation.
            match st.state.compare_exchange(
                s,
                with_next_generation(s),
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

    fn clear_watched(&self) {
        let n = (self.parties as usize).min(WATCHED);
        for slot in &self.state().arrived[..n] {
            // Relaxed: ordered before the next generation by the AcqRel CAS that opens it.
            slot.store(0, Ordering::Relaxed);
        }
    }

    fn bump_and_wake(&self) {
        let st = self.state();
        // Release: pairs with the Acquire loads of `wake` in `wait_until`.
        st.wake.fetch_add(1, Ordering::Release);
        futex::wake(&st.wake, u32::MAX);
    }
}

/// What a waiter of generation `my_gen` concludes from `s`, or `None` to keep waiting.
fn outcome(s: u32, my_gen: u32, index: u32) -> Option<Result<u32, BarrierError>> {
    let g = generation(s);
    if g != my_gen {
        let broken_off = s & RESET != 0 && g == (my_gen + 1) & GEN_MASK;
        return Some(if broken_off {
            Err(BarrierError::Broken)
        } else {
            Ok(index)
        });
    }
    if s & BROKEN != 0 {
        return Some(Err(BarrierError::Broken));
    }
    None
}
