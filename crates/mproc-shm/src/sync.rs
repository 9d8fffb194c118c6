//! The crate's one door to atomics (DESIGN.md, "Loom, concretely").
//!
//! Library code takes its atomics from here, never from `std` directly (clippy's
//! `disallowed-types` enforces it), so every atomic in the crate is greppable from one place.
//!
//! Two families:
//!
//! * [`AtomicU32`], [`AtomicU64`], [`AtomicI32`]: *overlay* atomics, `#[repr(transparent)]`
//!   wrappers that deref to std's atomics, so they have exactly the layout of the integer
//!   they overlay. Every atomic in shared memory is one of these (segment header,
//!   participant table, arena words in place), and they stay std's under `--cfg mproc_loom`
//!   too: loom's types cannot be overlaid on bytes (they are not layout-compatible and are
//!   built only by `new()`). The segment mapping, the participants' OFD locks and the
//!   `pthread_atfork` handlers are cross-process machinery loom cannot model anyway; they
//!   are covered by multi-process tests, a property test against a model, and fuzzing.
//! * `ModelAtomicU64` (`--cfg mproc_loom` only): loom's `AtomicU64`, built with `new()` on
//!   the heap. The arena's algorithm is written over the word abstraction in
//!   [`words`](crate::words), whose model memory is an array of these; that is the loom arm
//!   (`tests/loom_arena.rs`).
#![allow(clippy::disallowed_types)]

use core::ops::Deref;

pub(crate) use core::hint::spin_loop;
pub(crate) use core::sync::atomic::Ordering;

/// Rounds a waiter for the arena's guard spins (1, 2, 4 ... 32 hints each) before yielding.
#[cfg(not(mproc_loom))]
const SPIN_ROUNDS: u32 = 10;
/// Rounds it yields the CPU before it starts sleeping.
#[cfg(not(mproc_loom))]
const YIELD_ROUNDS: u32 = 10;

/// How a waiter for the arena's guard backs off in round `round` (0, 1, ... for one owner):
/// a few spin hints, then `sched_yield`, then sleeps of 50 µs doubling to 1 ms. Guard
/// critical sections are a few hundred nanoseconds, so the first rounds nearly always see it
/// free; the sleeps bound what a preempted or dead owner costs the CPU.
#[cfg(not(mproc_loom))]
pub(crate) fn backoff(round: u32) {
    if round < SPIN_ROUNDS {
        for _ in 0..1u32 << round.min(5) {
            spin_loop();
        }
    } else if round < SPIN_ROUNDS + YIELD_ROUNDS {
        std::thread::yield_now();
    } else {
        let doublings = (round - SPIN_ROUNDS - YIELD_ROUNDS).min(5);
        let micros = (50u64 << doublings).min(1000);
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }
}

/// Under loom a waiter yields to the model's scheduler (a spin would never end).
#[cfg(mproc_loom)]
pub(crate) fn backoff(_round: u32) {
    loom::thread::yield_now();
}

/// Whether a waiter for the arena's guard asks the owner's liveness in round `round`: once
/// it would start sleeping, and at every sleep after (each at most 1 ms apart). Under loom,
/// from the second round on.
pub(crate) fn time_to_ask(round: u32) -> bool {
    #[cfg(mproc_loom)]
    return round >= 1;
    #[cfg(not(mproc_loom))]
    return round >= SPIN_ROUNDS + YIELD_ROUNDS;
}

macro_rules! atomic {
    ($name:ident, $std:ty, $int:ty) => {
        /// A std atomic, layout-identical to the integer it overlays.
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub(crate) struct $name($std);

        impl $name {
            #[allow(dead_code, reason = "not every width is built by value")]
            pub(crate) const fn new(v: $int) -> Self {
                $name(<$std>::new(v))
            }
        }

        impl Deref for $name {
            type Target = $std;
            #[inline]
            fn deref(&self) -> &$std {
                &self.0
            }
        }
    };
}

atomic!(AtomicI32, core::sync::atomic::AtomicI32, i32);
atomic!(AtomicU32, core::sync::atomic::AtomicU32, u32);
atomic!(AtomicU64, core::sync::atomic::AtomicU64, u64);

/// loom's 64-bit atomic, for model memory built with `new()` (see the module docs). An alias,
/// not a re-export, so clippy's `disallowed-types` keeps seeing this shim as its only door.
#[cfg(mproc_loom)]
pub(crate) type ModelAtomicU64 = loom::sync::atomic::AtomicU64;
