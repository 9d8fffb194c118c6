//! Test-only crash points in named-segment creation (feature `test-hooks`, which only this
//! crate's dev-dependency on itself and mproc's `test-hooks` turn on): make this process
//! SIGKILL itself at a chosen step of its next `create_named`, so tests hit the half-created
//! states deterministically. Not a public API.

use crate::sync::{AtomicU32, Ordering};

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
