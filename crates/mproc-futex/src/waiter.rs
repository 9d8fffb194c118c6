//! [`Waiter`]: how the algorithms of this crate sleep and wake, injected so tests can swap it.
//!
//! Every primitive is generic over a `Waiter` that defaults to [`Futex`]. Under
//! `--cfg mproc_loom`, [`Futex`] itself routes to loom's parking table (see [`crate::futex`]);
//! tests may plug in their own waiter, for example one that counts system calls.
//!
//! [`SlicedWait::sliced_wait`] is the one blocking loop that waits on news some of which
//! rings no bell (a peer's death): it spins a little, then sleeps on a [`Parking`] bed in
//! slices of at most a check interval, running the caller's check (liveness, recovery)
//! between slices. The facade's queues, pipes and joinable queues and the
//! [`Barrier`](crate::Barrier) all wait through it.

use crate::deadline::{Deadline, Wait, earliest};
use crate::sync::{AtomicU32, spin_loop};
use std::time::Duration;

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

/// Attempts in the spin phase of [`SlicedWait::sliced_wait`] before it sleeps. Under loom
/// one is enough to explore both outcomes and keeps models small.
#[cfg(not(mproc_loom))]
pub const SLICED_SPINS: u32 = 64;
/// Attempts in the spin phase of [`SlicedWait::sliced_wait`] before it sleeps. Under loom
/// one is enough to explore both outcomes and keeps models small.
#[cfg(mproc_loom)]
pub const SLICED_SPINS: u32 = 1;

/// Where a [`SlicedWait::sliced_wait`] sleeps: a futex word and its sleeper-registration
/// protocol.
///
/// The wait calls [`prepare`](Self::prepare), then tries once more, then sleeps on
/// [`word`](Self::word) while it still holds the value `prepare` returned, then calls
/// [`cancel`](Self::cancel). A waker publishes its change, then changes the word (or, for a
/// bed that counts sleepers, looks for sleepers and changes the word if there are any), then
/// wakes. Either the re-try sees the change, or the word no longer holds the value and the
/// sleep returns at once: no wake-up is lost between the re-try and the sleep.
pub trait Parking {
    /// The futex word sleepers sleep on.
    fn word(&self) -> &AtomicU32;
    /// Announces a sleeper (if the bed counts them) and returns the word's value, read after
    /// the announcement, to sleep on.
    fn prepare(&self) -> u32;
    /// Withdraws what [`prepare`](Self::prepare) announced.
    fn cancel(&self);
}

/// A bare word is a bed whose wakers change it and then wake (perhaps only if a sleeper count
/// of their own says someone sleeps): `prepare` reads it, `cancel` does nothing.
impl Parking for AtomicU32 {
    #[inline]
    fn word(&self) -> &AtomicU32 {
        self
    }

    #[inline]
    fn prepare(&self) -> u32 {
        // SeqCst, not just Acquire (which pairs with the waker's Release change and makes
        // what it published visible to the re-try): a waker that changes the word and then
        // reads a sleeper count the sleeper raised before this load needs the two to be in
        // one total order (Dekker), or each could miss the other's write.
        self.load(crate::sync::Ordering::SeqCst)
    }

    #[inline]
    fn cancel(&self) {}
}

/// Which pre-sleep check of a [`SlicedWait::sliced_wait`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Before the first sleep: decide from shared memory only (recorded holders, no
    /// liveness system calls), and make no system call that could be skipped, since the
    /// wake-up that usually follows at once comes through this path.
    First,
    /// After a sleep that something woke.
    Woken,
    /// After a sleep that ran to the end of its slice: nobody rang.
    SleptOut,
    /// The caller's deadline has passed (or the wait was [`Wait::Never`]): a last check,
    /// asking the kernel, before the wait reports a timeout, so a call with a zero or short
    /// deadline still sees a dead peer.
    Deadline,
}

impl Round {
    /// Whether this check may ask a [`Liveness`](crate::Liveness) (a system call in
    /// production) which participants are alive.
    pub fn asks_liveness(self) -> bool {
        self != Round::First
    }
}

/// How a [`SlicedWait::sliced_wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<R, S> {
    /// The attempt (or a check) produced a result.
    Done(R),
    /// A check asked to stop.
    Stopped(S),
    /// The wait ran out (its deadline passed, or it was [`Wait::Never`]).
    TimedOut,
}

/// The one blocking loop of mproc: spin a little, then sleep in slices.
pub trait SlicedWait: Waiter {
    /// Blocks until `attempt` returns `Some`, `check` returns `Some`, or `wait` runs out.
    ///
    /// ```text
    /// attempt ─ok→ Done
    ///   │ would block
    ///   ├─ spin SLICED_SPINS times (spin-loop hint), attempt again each time (not for Never)
    ///   └─ loop:
    ///        check(round)   → Some(Ok(r))  Done      (e.g. the result appeared during recovery)
    ///                       → Some(Err(s)) Stopped   (e.g. a peer died: broken, disconnected)
    ///        wait ran out   → TimedOut (after one more check, Round::Deadline, that may ask
    ///                         the kernel, if the only check so far was the first)
    ///        seen = bed.prepare(); attempt → ok: bed.cancel(), Done
    ///        sleep on bed.word() while == seen, until min(now + interval, deadline)
    ///        bed.cancel(); attempt → ok: Done
    /// ```
    ///
    /// `check` runs before every sleep, so news that rings no bed (a peer's death) is
    /// noticed within one `interval`. Its [`Round`] says which check it is: the first one
    /// should make no system call, later ones say whether the last sleep ran out (a good
    /// moment for a recovery scan) or was woken. The deadline is absolute, so spurious
    /// wake-ups never stretch it. [`Wait::Never`] attempts once and checks once
    /// ([`Round::Deadline`]).
    fn sliced_wait<P, R, S>(
        bed: &P,
        wait: Wait,
        interval: Duration,
        mut attempt: impl FnMut() -> Option<R>,
        mut check: impl FnMut(Round) -> Option<Result<R, S>>,
    ) -> Outcome<R, S>
    where
        P: Parking + ?Sized,
    {
        if let Some(r) = attempt() {
            return Outcome::Done(r);
        }
        let spins = if wait.blocks() { SLICED_SPINS } else { 0 };
        for _ in 0..spins {
            spin_loop();
            if let Some(r) = attempt() {
                return Outcome::Done(r);
            }
        }
        let mut round = if wait.blocks() {
            Round::First
        } else {
            Round::Deadline
        };
        loop {
            match check(round) {
                Some(Ok(r)) => return Outcome::Done(r),
                Some(Err(s)) => return Outcome::Stopped(s),
                None => {}
            }
            if wait.has_passed() {
                if round == Round::First {
                    // No sleep follows, so no wake-up path to keep clear: ask the kernel now.
                    round = Round::Deadline;
                    continue;
                }
                return Outcome::TimedOut;
            }
            let seen = bed.prepare();
            if let Some(r) = attempt() {
                bed.cancel();
                return Outcome::Done(r);
            }
            let until = earliest(Some(Deadline::after(interval)), wait.deadline());
            // `false` only when `until` passed: a slice that ran out (or the caller's
            // deadline, which the next round reports).
            round = if Self::wait(bed.word(), seen, until) {
                Round::Woken
            } else {
                Round::SleptOut
            };
            bed.cancel();
            if let Some(r) = attempt() {
                return Outcome::Done(r);
            }
        }
    }
}

impl<W: Waiter> SlicedWait for W {}
