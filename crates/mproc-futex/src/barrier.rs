//! [`Barrier`]: a cyclic barrier for a fixed number of parties (Python's `Barrier`).
//!
//! Three words: `parties` (written at initialisation), `state` and a futex word `wake` on
//! which waiters sleep, so that arrivals (which change `state`) do not wake the sleepers; only
//! a generation change or a break bumps `wake`.
//!
//! `state`:
//!
//! | bit 31 | bit 30 | bits 16–29  | bits 0–15 |
//! |--------|--------|-------------|-----------|
//! | BROKEN | RESET  | generation  | arrived   |
//!
//! The last arrival of a generation CASes `arrived` to 0 and advances the generation; the
//! others sleep until the generation changes. `abort` sets BROKEN; `reset` starts the next
//! generation with the RESET flag, which tells the waiters of the previous one that they
//! were broken off. A timed-out `wait` breaks the barrier, as in Python.
//!
//! Known limit: a waiter that is descheduled for two whole generations after a `reset` cannot
//! tell which way its own generation ended and reports success.
//!
//! # Participant death
//!
//! A party that dies *after* arriving has been counted and the barrier can still open. A party
//! that dies *before* arriving leaves the others waiting: give `wait` a deadline, whose expiry
//! breaks the barrier for everybody (Python's behaviour), or have a supervisor `abort` it.

use crate::deadline::Deadline;
use crate::sync::{AtomicU32, Ordering};
use crate::waiter::{Futex, Waiter};
use std::fmt;
use std::marker::PhantomData;

/// The largest number of parties a barrier supports.
pub const MAX_PARTIES: u32 = 0xFFFF;

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

/// Why [`Barrier::wait`] did not pass (Python's `BrokenBarrierError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierWaitError {
    /// The barrier is broken: aborted, reset while we waited, or another waiter timed out.
    #[error("barrier is broken")]
    Broken,
    /// Our deadline passed; the barrier is now broken for everybody.
    #[error("timed out waiting at the barrier; the barrier is now broken")]
    Timeout,
    /// The barrier was never initialised (or its `parties` word is corrupt).
    #[error("barrier is not initialised")]
    Uninitialised,
}

/// A cyclic barrier, `#[repr(C)]`, twelve bytes. All-zero bytes are an uninitialised barrier:
/// call [`init`](Self::init) before use.
///
/// # Examples
///
/// ```
/// use mproc_futex::Barrier;
///
/// let b: Barrier = Barrier::with_parties(1);
/// assert_eq!(b.wait(None), Ok(0));
/// assert_eq!(b.wait(None), Ok(0)); // cyclic
/// ```
#[repr(C)]
pub struct Barrier<W: Waiter = Futex> {
    parties: AtomicU32,
    state: AtomicU32,
    wake: AtomicU32,
    _waiter: PhantomData<fn() -> W>,
}

// SAFETY: `repr(C)`, three `AtomicU32`s (a bad `parties` or state is reported, not
// trusted) and a zero-sized marker; `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl<W: Waiter> mproc_core::shared::SharedState for Barrier<W> {}

impl<W: Waiter> fmt::Debug for Barrier<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

impl<W: Waiter> Barrier<W> {
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

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        // Acquire: pairs with the Release in `init`.
        self.parties.load(Ordering::Acquire)
    }

    /// How many parties are waiting in the current generation.
    pub fn n_waiting(&self) -> u32 {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & COUNT_MASK
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// Waits until all parties have called `wait`; returns this party's arrival index in
    /// `0..parties` (the last to arrive gets `parties - 1`), like Python's `Barrier.wait`.
    ///
    /// # Errors
    ///
    /// [`BarrierWaitError::Broken`] if the barrier is or becomes broken;
    /// [`BarrierWaitError::Timeout`] if `deadline` passed first (the barrier is then broken);
    /// [`BarrierWaitError::Uninitialised`] for a barrier with no valid party count.
    pub fn wait(&self, deadline: Option<Deadline>) -> Result<u32, BarrierWaitError> {
        let parties = self.parties();
        if parties == 0 || parties > MAX_PARTIES {
            return Err(BarrierWaitError::Uninitialised);
        }
        // Acquire: see the CAS below.
        let mut s = self.state.load(Ordering::Acquire);
        let (index, my_gen) = loop {
            if s & BROKEN != 0 {
                return Err(BarrierWaitError::Broken);
            }
            let count = s & COUNT_MASK;
            // `>=`: a corrupt count (from a buggy peer) still opens the barrier.
            let last = count + 1 >= parties;
            let next = if last { with_next_generation(s) } else { s + 1 };
            // AcqRel: every arrival releases what its party wrote before arriving; the RMW
            // chain carries all of it to the waiters' Acquire loads of the new generation.
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if last => {
                    self.bump_and_wake();
                    return Ok(count);
                }
                Ok(_) => break (count, generation(s)),
                Err(now) => s = now,
            }
        };
        loop {
            // Read `wake` before `state`: if `state` changes after we look, the `wake` bump
            // that follows it makes the futex wait return at once.
            // Acquire: pairs with the Release in `bump_and_wake`.
            let w = self.wake.load(Ordering::Acquire);
            // Acquire: pairs with the AcqRel CAS of the last arrival, `abort` and `reset`.
            let s = self.state.load(Ordering::Acquire);
            if let Some(r) = Self::outcome(s, my_gen, index) {
                return r;
            }
            if !W::wait(&self.wake, w, deadline) {
                return self.time_out(my_gen, index);
            }
        }
    }

    /// What a waiter of generation `my_gen` concludes from `s`, or `None` to keep waiting.
    fn outcome(s: u32, my_gen: u32, index: u32) -> Option<Result<u32, BarrierWaitError>> {
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

    fn time_out(&self, my_gen: u32, index: u32) -> Result<u32, BarrierWaitError> {
        // Acquire: as in `wait`.
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if let Some(r) = Self::outcome(s, my_gen, index) {
                return r; // the barrier opened (or broke) as we timed out
            }
            // AcqRel: as the other state CASes.
            match self
                .state
                .compare_exchange(s, s | BROKEN, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.bump_and_wake();
                    return Err(BarrierWaitError::Timeout);
                }
                Err(now) => s = now,
            }
        }
    }

    fn bump_and_wake(&self) {
        // Release: pairs with the Acquire load of `wake` in `wait`.
        self.wake.fetch_add(1, Ordering::Release);
        W::wake(&self.wake, u32::MAX);
    }

    /// Breaks the barrier: current and future waiters get `Broken` until [`reset`](Self::reset)
    /// (Python's `abort()`).
    pub fn abort(&self) {
        // AcqRel: as the other state CASes.
        self.state.fetch_or(BROKEN, Ordering::AcqRel);
        self.bump_and_wake();
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now get `Broken`
    /// (Python's `reset()`).
    pub fn reset(&self) {
        // Relaxed: the CAS synchronises.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let next = with_next_generation(s) | RESET;
            // AcqRel: as the other state CASes.
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
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`],
        /// use [`Barrier::with_parties_for_waiter`].
        pub fn with_parties(parties: u32) -> Self {
            Self::with_parties_for_waiter(parties)
        }
    }
}
