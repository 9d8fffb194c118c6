//! [`Event`]: a flag that processes can wait for (Python's `multiprocessing.Event`).
//!
//! One futex word:
//!
//! | bits 2–31  | bit 1   | bit 0 |
//! |------------|---------|-------|
//! | generation | WAITERS | SET   |
//!
//! `set` bumps the generation, sets SET and clears WAITERS in one CAS, then wakes everybody if
//! WAITERS was set. A waiter returns `true` once it sees SET *or* a generation different from
//! the one it started with, so a `set()` immediately followed by `clear()` still releases
//! everybody who was waiting, as in Python (where `wait` returns the notification, not a
//! later re-read of the flag).
//!
//! # Participant death
//!
//! An event holds no ownership, so a dead participant blocks nobody. One that dies asleep
//! leaves WAITERS set, which costs the next `set` one wake-up call that finds nobody.

use crate::deadline::Wait;
use crate::sync::{AtomicU32, Ordering};
use crate::waiter::{Futex, Waiter};
use std::marker::PhantomData;

const SET: u32 = 1;
const WAITERS: u32 = 2;
const GEN_ONE: u32 = 4;
const GEN_MASK: u32 = !(SET | WAITERS);

/// An event flag, `#[repr(C)]`, four bytes; all-zero bytes are a clear event.
///
/// # Examples
///
/// ```
/// use mproc_futex::{Event, Wait};
///
/// let ev: Event = Event::new();
/// assert!(!ev.is_set());
/// ev.set();
/// assert!(ev.wait(Wait::Forever));
/// ev.clear();
/// assert!(!ev.is_set());
/// ```
#[repr(C)]
pub struct Event<W: Waiter = Futex> {
    word: AtomicU32,
    _waiter: PhantomData<fn() -> W>,
}

// SAFETY: `repr(C)`, one `AtomicU32` (any nonzero value reads as set) and a zero-sized
// marker; `Sync`.
crate::primitive::shared_primitive!(Event<W>, default: new_for_waiter());

crate::primitive::debug_via_getters!(Event<W> { set: is_set, .. });

impl<W: Waiter> Event<W> {
    /// A clear event.
    #[cfg(not(mproc_loom))]
    pub const fn new_for_waiter() -> Self {
        Event {
            word: AtomicU32::new(0),
            _waiter: PhantomData,
        }
    }

    /// A clear event.
    #[cfg(mproc_loom)]
    pub fn new_for_waiter() -> Self {
        Event {
            word: AtomicU32::new(0),
            _waiter: PhantomData,
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        // Acquire: pairs with the Release in `set`, so a caller that sees the flag also sees
        // what the setter wrote before setting it.
        self.word.load(Ordering::Acquire) & SET != 0
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        // Relaxed: the CAS below synchronises.
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & SET != 0 {
                return;
            }
            let next = (w & GEN_MASK).wrapping_add(GEN_ONE) | SET;
            // Release: pairs with the Acquire loads in `is_set` and `wait`.
            match self
                .word
                .compare_exchange_weak(w, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        if w & WAITERS != 0 {
            W::wake(&self.word, u32::MAX);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        // Relaxed: clearing publishes nothing; waiters wait for a later `set`.
        self.word.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Waits until the flag is set or `wait` runs out. Returns `true` if the flag was set
    /// (or was set and cleared again while waiting), `false` on timeout — Python's
    /// `Event.wait(timeout)`. [`Wait::Never`] only looks.
    pub fn wait(&self, wait: Wait) -> bool {
        // Acquire: pairs with the Release CAS in `set`.
        let mut w = self.word.load(Ordering::Acquire);
        if w & SET != 0 {
            return true;
        }
        if !wait.blocks() {
            return false;
        }
        let deadline = wait.deadline();
        let start_gen = w & GEN_MASK;
        loop {
            if w & SET != 0 || w & GEN_MASK != start_gen {
                return true;
            }
            if w & WAITERS == 0 {
                // Relaxed: announcing a sleeper publishes nothing.
                if let Err(now) = self.word.compare_exchange_weak(
                    w,
                    w | WAITERS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    w = now;
                    continue;
                }
                w |= WAITERS;
            }
            if !W::wait(&self.word, w, deadline) {
                // Timed out; report a set that raced with the timeout.
                let w = self.word.load(Ordering::Acquire);
                return w & SET != 0 || w & GEN_MASK != start_gen;
            }
            // Acquire: pairs with the Release CAS in `set`.
            w = self.word.load(Ordering::Acquire);
        }
    }
}

impl Event {
    crate::sync::loom_const_fn! {
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`],
        /// use [`Event::new_for_waiter`].
        pub fn new() -> Self {
            Self::new_for_waiter()
        }
    }
}
