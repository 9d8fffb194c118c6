//! [`Waiter`]: how the algorithms of this crate sleep and wake, injected so tests can swap it.
//!
//! Every primitive is generic over a `Waiter` that defaults to [`Futex`]. Under
//! `--cfg mproc_loom`, [`Futex`] itself routes to loom's parking table (see [`crate::futex`]);
//! tests may plug in their own waiter, for example one that counts system calls.

use crate::deadline::Deadline;
use crate::sync::AtomicU32;

/// Sleeps and wakes on a 32-bit word with `futex(2)` semantics.
///
/// The word type is `std::sync::atomic::AtomicU32` (loom's under `--cfg mproc_loom`).
pub trait Waiter: 'static {
    /// Sleeps while `*word == expected` until woken or `deadline`; `false` only on timeout.
    /// Same contract as [`crate::futex::wait`]; spurious `true` returns are allowed.
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool;

    /// Wakes up to `n` sleepers on `word`; returns how many were woken.
    fn wake(word: &AtomicU32, n: u32) -> usize;
}

/// The production [`Waiter`]: [`crate::futex::wait`] and [`crate::futex::wake`], shared
/// between processes (never `FUTEX_PRIVATE_FLAG`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Futex;

impl Waiter for Futex {
    #[inline]
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool {
        crate::futex::wait(word, expected, deadline)
    }

    #[inline]
    fn wake(word: &AtomicU32, n: u32) -> usize {
        crate::futex::wake(word, n)
    }
}
