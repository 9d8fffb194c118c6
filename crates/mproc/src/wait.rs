//! The blocking loop every object shares: try, spin briefly, then sleep on a ring doorbell
//! in slices of at most [`CHECK_INTERVAL`], re-checking the world between slices. The loop
//! itself is `mproc_futex`'s [`SlicedWait::sliced_wait`] (shared with the barrier and
//! the joinable queue's `join`); this module gives it the ring's doorbells, and re-exports
//! the wait mode [`Wait`] and the loop's [`Round`] and [`Outcome`].
//!
//! ```text
//! attempt ─ok→ Done
//!   │ would block
//!   ├─ spin SLICED_SPINS times (spin_loop hint), attempt again each time
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

use mproc_futex::{Deadline, Futex, Parking, SlicedWait, futex};
use mproc_ring::Doorbell;

use crate::storage::cells::AtomicU32;

pub(crate) use mproc_futex::{Outcome, Round, Wait};

/// Longest single sleep: the bound on how late a sleeper notices a dead peer.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// A ring doorbell as a [`Parking`] bed: `prepare_sleep` announces the sleeper (so [`ring`]
/// knows to wake) and returns the word to sleep on; `cancel_sleep` withdraws.
struct Bell<'a>(&'a Doorbell);

impl Parking for Bell<'_> {
    #[inline]
    fn word(&self) -> &AtomicU32 {
        self.0.word()
    }

    #[inline]
    fn prepare(&self) -> u32 {
        self.0.prepare_sleep()
    }

    #[inline]
    fn cancel(&self) {
        self.0.cancel_sleep();
    }
}

/// Blocks until `attempt` returns `Some`, `check` returns `Some`, or `deadline` passes:
/// [`SlicedWait::sliced_wait`] on `bell` in slices of [`CHECK_INTERVAL`].
///
/// * `attempt`: try the operation once; `None` means "would block".
/// * `check(round)`: called before each sleep (see [`Round`]): return `Some(Err(s))` to
///   stop (e.g. disconnected), `Some(Ok(r))` to finish with a result, `None` to keep waiting.
/// * `bell`: the doorbell wakers ring when `attempt` may succeed.
pub(crate) fn block<R, S>(
    bell: &Doorbell,
    deadline: Option<Deadline>,
    attempt: impl FnMut() -> Option<R>,
    check: impl FnMut(Round) -> Option<Result<R, S>>,
) -> Outcome<R, S> {
    Futex::sliced_wait(
        &Bell(bell),
        Wait::until(deadline),
        CHECK_INTERVAL,
        attempt,
        check,
    )
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
