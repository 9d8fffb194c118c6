//! The blocking loop every object shares: try, spin briefly, then sleep on a ring doorbell
//! in slices of at most [`CHECK_INTERVAL`], re-checking the world between slices.
//!
//! ```text
//! attempt ─ok→ Done
//!   │ would block
//!   ├─ spin SPIN_TRIES times (spin_loop hint), attempt again each time
//!   └─ loop:
//!        check(round)   → Some(Ok(r))  Done       (e.g. the item appeared during recovery)
//!                       → Some(Err(s)) Stopped    (e.g. Disconnected: no live peer holder)
//!        deadline passed → TimedOut (after one more check that asks the kernel, if the
//!                          only check so far was the first, syscall-free one)
//!        seen = bell.prepare_sleep(); attempt → ok: cancel_sleep, Done
//!        futex::wait(bell.word(), seen, min(now + CHECK_INTERVAL, deadline)); cancel_sleep
//!        attempt → ok: Done
//! ```
//!
//! `check` runs before every sleep, so a peer's death (which rings no bell) is noticed within
//! one interval, and a released holder (which rings every bell, see [`wake_all`]) at once.
//! Its argument, a [`Round`], says which check this is. The first one makes no system call:
//! it sits between "would block" and the sleep, on the path of the wake-up that usually
//! follows at once, and the kernel's liveness answer costs microseconds; a dead peer is then
//! caught by the next check, one slice later. If the caller's deadline has already passed
//! after it, one more check asks the kernel before the wait reports a timeout, so a call
//! with a zero or short deadline (`poll()`, `get_timeout(ZERO)`) still sees a dead peer.
//! Later checks say whether the last sleep ran out (a good moment for a ring `recover`
//! scan) or was woken. Wakers use [`ring`]: `notify` + `futex::wake` only when someone
//! sleeps, so the fast path costs no system call. The caller's deadline is absolute
//! (`mproc_futex::Deadline`), so spurious wake-ups never stretch it.

use std::time::Duration;

use mproc_futex::{Deadline, futex};
use mproc_ring::Doorbell;

/// Longest single sleep: the bound on how late a sleeper notices a dead peer.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Attempts in the spin phase before sleeping.
pub(crate) const SPIN_TRIES: u32 = 64;

/// How long a blocking call may wait: the one mode of the facade's blocking calls, in place
/// of a `(deadline, block)` pair (Python's `block=` and `timeout=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Try once (`*_nowait`; Python's `block=False`).
    Never,
    /// Until the deadline (`*_timeout`; Python's `timeout=`).
    Until(Deadline),
    /// As long as it takes (Python's default `block=True`, no timeout).
    Forever,
}

impl Wait {
    /// The deadline of a timed wait.
    pub(crate) fn deadline(self) -> Option<Deadline> {
        match self {
            Wait::Until(d) => Some(d),
            Wait::Never | Wait::Forever => None,
        }
    }

    /// Whether the call may sleep at all.
    pub(crate) fn blocks(self) -> bool {
        self != Wait::Never
    }
}

/// Which pre-sleep check this is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// Before the first sleep: decide from shared memory only (recorded holders, no
    /// liveness system calls), and make no system call that could be skipped.
    First,
    /// After a sleep that something woke.
    Woken,
    /// After a sleep that ran to the end of its slice: nobody rang.
    SleptOut,
    /// The caller's deadline has passed: a last check, asking the kernel, before the wait
    /// reports a timeout (so a call with a zero or short deadline still sees a dead peer).
    Deadline,
}

impl Round {
    /// Whether this check may ask the kernel which peers are alive.
    pub(crate) fn asks_liveness(self) -> bool {
        self != Round::First
    }
}

/// How [`block`] ended.
#[derive(Debug)]
pub(crate) enum Outcome<R, S> {
    /// `attempt` (or `check`) produced a result.
    Done(R),
    /// `check` asked to stop.
    Stopped(S),
    /// The deadline passed first.
    TimedOut,
}

/// Blocks until `attempt` returns `Some`, `check` returns `Some`, or `deadline` passes.
///
/// * `attempt`: try the operation once; `None` means "would block".
/// * `check(round)`: called before each sleep (see [`Round`]): return `Some(Err(s))` to
///   stop (e.g. disconnected), `Some(Ok(r))` to finish with a result, `None` to keep waiting.
/// * `bell`: the doorbell wakers ring when `attempt` may succeed.
pub(crate) fn block<R, S>(
    bell: &Doorbell,
    deadline: Option<Deadline>,
    mut attempt: impl FnMut() -> Option<R>,
    mut check: impl FnMut(Round) -> Option<Result<R, S>>,
) -> Outcome<R, S> {
    if let Some(r) = attempt() {
        return Outcome::Done(r);
    }
    for _ in 0..SPIN_TRIES {
        std::hint::spin_loop();
        if let Some(r) = attempt() {
            return Outcome::Done(r);
        }
    }
    let mut round = Round::First;
    loop {
        match check(round) {
            Some(Ok(r)) => return Outcome::Done(r),
            Some(Err(s)) => return Outcome::Stopped(s),
            None => {}
        }
        if deadline.is_some_and(|d| d.has_passed()) {
            if round == Round::First {
                // No sleep follows, so no wake-up path to keep clear: ask the kernel now.
                round = Round::Deadline;
                continue;
            }
            return Outcome::TimedOut;
        }
        let seen = bell.prepare_sleep();
        if let Some(r) = attempt() {
            bell.cancel_sleep();
            return Outcome::Done(r);
        }
        let slice = Deadline::after(CHECK_INTERVAL);
        let until = match deadline {
            Some(d) if d < slice => d,
            _ => slice,
        };
        // `false` only when `until` passed: a slice that ran out (or the caller's deadline,
        // which the next round reports).
        round = if futex::wait(bell.word(), seen, Some(until)) {
            Round::Woken
        } else {
            Round::SleptOut
        };
        bell.cancel_sleep();
        if let Some(r) = attempt() {
            return Outcome::Done(r);
        }
    }
}

/// The waker's side: after publishing (a push, a pop, a freed block), wake sleepers on
/// `bell` — a system call only if someone sleeps.
#[inline]
pub(crate) fn ring(bell: &Doorbell) {
    if bell.notify() {
        futex::wake_all(bell.word());
    }
}

/// [`ring`]s every doorbell in `bells`: for news sleepers should see soon but that no
/// sleeper's progress depends on at once (a handle registering as blocked), so a system call
/// is made only for a bell with sleepers. A sleeper caught between its check and its
/// registration as a sleeper misses it and sees it at its next check, one slice later.
pub(crate) fn ring_all(bells: &[&Doorbell]) {
    for bell in bells {
        ring(bell);
    }
}

/// Bumps and wakes every doorbell in `bells` unconditionally: after a holder release or a
/// recovery, so every sleeper re-checks at once.
pub(crate) fn wake_all(bells: &[&Doorbell]) {
    for bell in bells {
        bell.bump();
        futex::wake_all(bell.word());
    }
}
