//! [`Sleepers`]: the one sleepers protocol — a count of threads that may be asleep on a futex
//! word, so that a waker makes the wake system call only when somebody may sleep.
//!
//! Every blocking object of mproc uses it: the rings' doorbells (`mproc_ring::Doorbell`), the
//! semaphores (`mproc_futex::Semaphore`, `RobustSemaphore`) and the joinable queue's task
//! counter (`mproc::JoinableQueue::join`). This type makes no system call: the caller sleeps
//! and wakes with `futex(2)` (mproc-futex's `futex::wait` / `futex::wake`).
//!
//! # The protocol
//!
//! A *condition* (an item in a ring, a permit, "no task left") is published by wakers and
//! waited for by sleepers, who sleep on a 32-bit *futex word*. Either the word is the
//! condition itself (a semaphore's permit count: sleep while it is 0), or it is a separate
//! word that wakers change after publishing (a doorbell's word, the task counter's
//! generation).
//!
//! Sleeper (whose attempt failed: the ring was empty, no permit was left):
//! 1. with a separate word, `let seen = word.load(Acquire);` — the value it will wait on;
//! 2. [`sleepers.register()`](Sleepers::register) — counts itself, then `fence(SeqCst)`;
//! 3. re-checks the condition (retries the operation); if it holds, `unregister` and stop;
//! 4. `futex::wait(word, seen, deadline)` (with the word as condition: `expected` = the
//!    value that means "not yet");
//! 5. [`sleepers.unregister()`](Sleepers::unregister), then back to the attempt (the wake
//!    may be spurious, for another sleeper, or a timeout).
//!
//! A sleeper may also stay registered across several rounds (register once, unregister when
//! it leaves), as long as each round takes `seen` before its re-check; being counted longer
//! only costs wakers a useless wake.
//!
//! Waker (after publishing the condition with a store or RMW):
//! 1. [`if sleepers.should_wake()`](Sleepers::should_wake) — `fence(SeqCst)`, then reads
//!    the count;
//! 2. when it returns `true`: with a separate word, `word.fetch_add(1, Release)` (or bump
//!    the word unconditionally as the last step of the publication, before `should_wake`,
//!    as the joinable queue does), then `futex::wake(word, n)`. Wake as many as the
//!    publication may satisfy (every sleeper, if one change can stand for several items):
//!    waking one can leave a second sleeper asleep behind an item.
//!
//! # Why no wake-up is lost
//!
//! The sleeper's "register, fence, re-check" and the waker's "publish, fence, read the
//! count" are a Dekker pair: the two `SeqCst` fences are ordered one way or the other, and
//! each side reads after its fence what the other side wrote before its own.
//!
//! * The waker's fence comes first: the sleeper's re-check (after its fence) sees the
//!   publication, and it does not sleep.
//! * The sleeper's fence comes first: the waker reads a nonzero count (it sees the
//!   registration, and no later decrement of that sleeper's has happened, since the sleeper
//!   unregisters only after its wait), so it changes the word and wakes. If the sleeper's
//!   `seen` predates that change, `futex::wait` returns at once (the kernel compares the word
//!   under its queue lock) or the sleeper is queued when the wake comes. If `seen` already
//!   is the changed word, its Acquire load made the publication (which precedes the Release
//!   change) visible, and the re-check, after it, finds the condition. With the word as
//!   condition, the publication is the change, and the kernel's compare sees it.
//!
//! Drop either fence and neither case need hold: both sides may read before the other's
//! write lands (store buffering), the waker sees no sleeper and the sleeper no condition,
//! and the sleeper waits for a wake that never comes. The count must be a count, too: with a
//! flag, a sleeper that times out would clear another's registration. The loom models in
//! `tests/loom_sleepers.rs` deadlock (a lost wake-up) with either bug.
//!
//! # Counts are hints
//!
//! The count lives in shared memory and is untrusted. A sleeper that dies leaves it one too
//! high: wakers then make a useless system call, nothing worse. A peer that zeroes it makes a
//! waker skip a wake, so every sleeper sleeps with a deadline or a check interval (the
//! facade's rule anyway, since it must notice dead peers too); an unregister below zero
//! wraps to a huge count, which again only costs useless wakes.

use crate::sync::{AtomicU32, Ordering, fence};

/// The count of registered sleepers on one futex word (`#[repr(transparent)]` over an
/// `AtomicU32`, so 4 bytes in a shared `#[repr(C)]` header; all-zero bytes are an empty
/// count). See the [module docs](self) for the protocol.
///
/// # Examples
///
/// ```
/// use mproc_core::sleepers::Sleepers;
///
/// let sleepers = Sleepers::new();
/// // Nobody registered: a waker skips the wake system call.
/// assert!(!sleepers.should_wake());
/// // A sleeper registers, then re-checks its condition before it waits.
/// sleepers.register();
/// assert!(sleepers.should_wake());
/// // Woken (or its re-check succeeded): it leaves.
/// sleepers.unregister();
/// assert_eq!(sleepers.count(), 0);
/// ```
#[repr(transparent)]
#[derive(Debug, Default)]
pub struct Sleepers {
    /// Sleepers between [`Sleepers::register`] and [`Sleepers::unregister`].
    count: AtomicU32,
}

impl Sleepers {
    /// An empty count.
    #[cfg(not(mproc_loom))]
    #[inline]
    pub const fn new() -> Sleepers {
        Sleepers {
            count: AtomicU32::new(0),
        }
    }

    /// An empty count (loom's atomics have no `const` constructor).
    #[cfg(mproc_loom)]
    #[inline]
    pub fn new() -> Sleepers {
        Sleepers {
            count: AtomicU32::new(0),
        }
    }

    /// The sleeper's step before its re-check: counts the caller as a sleeper, then
    /// `fence(SeqCst)`. The caller must re-check its condition before it waits (after taking
    /// the value to wait on, if the futex word is not the condition), and must call
    /// [`Sleepers::unregister`] when it stops sleeping.
    #[inline]
    pub fn register(&self) {
        // Relaxed: made visible to wakers by the fence below, not by the increment.
        self.count.fetch_add(1, Ordering::Relaxed);
        // SYNC POINT (Dekker): pairs with the fence in `should_wake`; our registration or
        // the waker's publication is seen by the other side.
        fence(Ordering::SeqCst);
    }

    /// The sleeper's last step: it no longer counts (its re-check succeeded, or it woke up,
    /// or it gave up).
    #[inline]
    pub fn unregister(&self) {
        // Relaxed: the count only decides whether a waker makes a wake call; a waker that
        // still reads us costs one useless wake, and we no longer need one.
        self.count.fetch_sub(1, Ordering::Relaxed);
    }

    /// The waker's step after publishing: `fence(SeqCst)`, then whether anybody is
    /// registered. When `true`, the caller must change the futex word (unless its
    /// publication did) and wake it.
    #[inline]
    #[must_use = "a `true` means a sleeper may be waiting for a wake"]
    pub fn should_wake(&self) -> bool {
        // SYNC POINT (Dekker): pairs with the fence in `register`.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        self.count.load(Ordering::Relaxed) != 0
    }

    /// How many sleepers are registered now (a snapshot, and a hint: see the module docs).
    #[inline]
    pub fn count(&self) -> u32 {
        // Relaxed: a statistic; the protocol's ordering comes from the fences.
        self.count.load(Ordering::Relaxed)
    }
}
