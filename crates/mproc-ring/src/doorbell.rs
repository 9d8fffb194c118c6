//! Doorbells: the 32-bit words a blocking layer sleeps on (with `futex(2)`), plus a sleeper
//! count so that a waker skips the wake system call when nobody sleeps.
//!
//! The ring never blocks and never calls the kernel; it only hosts the words. Every ring has
//! an *items* doorbell (rung after a push, slept on by a consumer that found the ring empty)
//! and a *space* doorbell (rung after a pop, slept on by a producer that found it full).
//!
//! # The protocol
//!
//! mproc-core's sleepers protocol ([`Sleepers`]; its module docs argue why no wake-up is
//! lost), with the futex word separate from the condition (the ring's indices):
//!
//! Sleeper (e.g. a consumer whose `try_pop` said `Empty`):
//! 1. `let seen = bell.prepare_sleep();` — loads the word, then registers as a sleeper
//!    ([`Sleepers::register`]: count, `fence(SeqCst)`);
//! 2. retry the operation once (`try_pop`); if it succeeds, `bell.cancel_sleep()` and stop;
//! 3. `futex::wait(bell.word(), seen, deadline)`; then `bell.cancel_sleep()` and go back to
//!    retrying the operation (the wake may be spurious or for another sleeper).
//!
//! Waker (a producer after a successful push, or a batch of them):
//! 1. `if bell.notify() { futex::wake(bell.word(), all) }` — `notify` asks
//!    [`Sleepers::should_wake`] (`fence(SeqCst)`, read the count) and only when it is
//!    nonzero bumps the word and returns `true`. Wake every sleeper: one ring may stand for
//!    several items (a batch), so a wake of one can leave a second sleeper asleep behind an
//!    item (loom's two-sleeper models fail that way).
//!
//! The word is loaded before registering and bumped only after the waker's fence, so a
//! waker that sees the sleeper bumps the word after the sleeper's `seen`: `futex::wait`
//! returns at once (value changed) or the wake arrives after the sleeper is queued.
//!
//! A sleeper that dies leaves the count too high: wakers then make a useless system call,
//! nothing worse. A hostile peer can zero the count and make a wake-up be skipped; sleepers
//! therefore always sleep with a deadline or a check interval (the facade's rule anyway,
//! since it must also notice dead peers).

use mproc_core::sleepers::Sleepers;

use crate::sync::{AtomicU32, Ordering};

/// One futex word and its sleeper count, inside a ring header (`#[repr(C)]`, 8 bytes).
#[repr(C)]
#[derive(Debug)]
pub struct Doorbell {
    /// Changes (wrapping increment) whenever a sleeper must re-check.
    word: AtomicU32,
    /// The registered sleepers (untrusted: only a hint for skipping the wake).
    sleepers: Sleepers,
}

// SAFETY: `repr(C)`, two `AtomicU32`s: any word value is a generation, and the sleeper
// count is only a hint (module docs); `Sync`. Loom atomics are not valid for any bytes.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for Doorbell {}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            word: AtomicU32::new(0),
            sleepers: Sleepers::new(),
        }
    }

    /// The word to pass to `futex::wait` / `futex::wake`.
    #[inline]
    pub fn word(&self) -> &AtomicU32 {
        &self.word
    }

    /// Current number of registered sleepers (a hint).
    #[inline]
    pub fn sleepers(&self) -> u32 {
        self.sleepers.count()
    }

    /// Step 1 of sleeping: returns the word's value to wait on; the caller must re-check its
    /// condition before waiting and must call [`Doorbell::cancel_sleep`] afterwards.
    #[inline]
    pub fn prepare_sleep(&self) -> u32 {
        // Acquire pairs with the Release bump in `notify`: if we see a bump, we see the
        // publication that preceded it.
        let seen = self.word.load(Ordering::Acquire);
        // Count, then fence (Dekker with the fence in `notify`): our registration or their
        // publication is seen.
        self.sleepers.register();
        seen
    }

    /// Unregisters a sleeper (after the re-check succeeded or after waking up).
    #[inline]
    pub fn cancel_sleep(&self) {
        self.sleepers.unregister();
    }

    /// The waker's step, after publishing: returns `true` when someone sleeps, in which case
    /// the word was bumped and the caller must `futex::wake` it.
    #[inline]
    pub fn notify(&self) -> bool {
        // Fence, then read the count (Dekker with the fence in `prepare_sleep`).
        if !self.sleepers.should_wake() {
            return false;
        }
        self.bump();
        true
    }

    /// Bumps the word unconditionally (e.g. when a role is released, so sleepers wake up and
    /// notice the peer is gone). The caller should then wake the word.
    #[inline]
    pub fn bump(&self) {
        // Release pairs with the Acquire in `prepare_sleep`.
        self.word.fetch_add(1, Ordering::Release);
    }
}
