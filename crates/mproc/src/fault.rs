//! Test-only crash points for the facade's own tests (feature `test-hooks`, which only the
//! crate's dev-dependency on itself turns on): make this process SIGKILL itself right after
//! its next queue slot claim, before it helps the tail or head on — the crash window a
//! random SIGKILL almost never hits. Not a public API.
//!
//! Built on mproc-ring's fault points: every queue ring this process attaches to calls
//! [`at_claim`], which does nothing unless a test armed it.
#![allow(unsafe_code)]

use mproc_ring::fault::FaultPoint;

use crate::shared::sync::{AtomicU32, Ordering};

const OFF: u32 = 0;
const AFTER_WRITE_CLAIM: u32 = 1;
const AFTER_READ_CLAIM: u32 = 2;
const STOP_AFTER_WRITE_CLAIM: u32 = 3;
const AFTER_ARENA_HANDOFF: u32 = 4;

static ARMED: AtomicU32 = AtomicU32::new(OFF);

/// The next `put` by this process (any queue) dies right after claiming its slot.
pub fn die_after_next_put_claim() {
    // Relaxed: read by this process's own threads after the call.
    ARMED.store(AFTER_WRITE_CLAIM, Ordering::Relaxed);
}

/// The next `get` by this process (any queue) dies right after claiming its slot.
pub fn die_after_next_get_claim() {
    // Relaxed: as above.
    ARMED.store(AFTER_READ_CLAIM, Ordering::Relaxed);
}

/// The next `put` by this process stops (SIGSTOP) right after claiming its slot: a live
/// claimant that is merely slow, until someone sends SIGCONT.
pub fn stop_after_next_put_claim() {
    // Relaxed: as above.
    ARMED.store(STOP_AFTER_WRITE_CLAIM, Ordering::Relaxed);
}

/// The next `put` of an out-of-line message by this process dies right after handing its
/// arena block to the claimed slot (`QUEUED`), before committing the slot.
pub fn die_after_next_arena_handoff() {
    // Relaxed: as above.
    ARMED.store(AFTER_ARENA_HANDOFF, Ordering::Relaxed);
}

/// Called by a queue `put` right after it handed its arena block to its slot.
pub(crate) fn after_arena_handoff() {
    // Relaxed: as in `at_claim`.
    if ARMED.load(Ordering::Relaxed) == AFTER_ARENA_HANDOFF {
        // SAFETY: raising a signal has no memory-safety preconditions; SIGKILL ends the
        // process here, with the slot claimed and the block marked for it.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

/// The hook every queue ring calls at its fault points.
pub(crate) fn at_claim(point: FaultPoint) {
    // Relaxed: a process-local flag set before the operation it targets.
    let armed = ARMED.load(Ordering::Relaxed);
    let hit = matches!(
        (armed, point),
        (AFTER_WRITE_CLAIM, FaultPoint::WriteClaimed { .. })
            | (AFTER_READ_CLAIM, FaultPoint::ReadClaimed { .. })
    );
    if hit {
        // SAFETY: raising a signal has no memory-safety preconditions; SIGKILL ends the
        // process here, with the claim in the slot word.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    if armed == STOP_AFTER_WRITE_CLAIM && matches!(point, FaultPoint::WriteClaimed { .. }) {
        // Relaxed: as in the setters; disarmed so the resumed process goes on normally.
        ARMED.store(OFF, Ordering::Relaxed);
        // SAFETY: as above; SIGSTOP suspends the process here until SIGCONT.
        unsafe { libc::raise(libc::SIGSTOP) };
    }
}
