//! Test-only crash points (feature `test-hooks`, which only this crate's dev-dependency on
//! itself and mproc's `test-hooks` turn on): make this process SIGKILL itself at a chosen
//! step of its next `create_named`, or after a chosen number of the arena's journaled
//! stores, so tests hit half-done states deterministically; and a reference model of the
//! arena's buddy algorithm ([`BuddyModel`]) for the property test and the fuzz target. Not a
//! public API.

use crate::sync::{AtomicU32, Ordering};

pub use crate::buddy_model::{BuddyModel, block_bytes};

/// A step of `create_named` (and of the publication that ends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum CreatePoint {
    /// Right after `O_CREAT|O_EXCL` made the (empty) file, before the creator lock.
    Created = 1,
    /// Right after the creator lock was taken, before the file is sized.
    Locked = 2,
    /// In `Segment::publish` (or the end of a non-deferred `create_named`), before READY:
    /// everything is initialised but not published.
    BeforePublish = 3,
}

static ARMED: AtomicU32 = AtomicU32::new(0);

/// This process dies (SIGKILL) when it next reaches `point`.
pub fn die_at(point: CreatePoint) {
    // Relaxed: a process-local flag read by this process after the call.
    ARMED.store(point as u32, Ordering::Relaxed);
}

/// Called at each point; kills the process if it is armed for it.
pub(crate) fn at(point: CreatePoint) {
    // Relaxed: as in `die_at`.
    if ARMED.load(Ordering::Relaxed) == point as u32 {
        crate::sys::raise_sigkill();
    }
}

/// Journaled arena stores left before this process dies (0: not armed).
static ARENA_STORES: AtomicU32 = AtomicU32::new(0);

/// This process dies (SIGKILL) right after its `stores`-th journaled arena store from now
/// (`stores >= 1`; 0 disarms). Every store inside an arena call under its guard is one (see
/// `mproc_shm::arena`, "Crash design").
pub fn die_after_arena_stores(stores: u32) {
    // Relaxed: a process-local counter used by this process's own later calls.
    ARENA_STORES.store(stores, Ordering::Relaxed);
}

/// Called after each journaled arena store; kills the process when the armed count runs out.
#[inline]
pub(crate) fn arena_step() {
    // Relaxed: as in `die_after_arena_stores`.
    let left = ARENA_STORES.load(Ordering::Relaxed);
    if left == 0 {
        return;
    }
    ARENA_STORES.store(left - 1, Ordering::Relaxed);
    if left == 1 {
        crate::sys::raise_sigkill();
    }
}
