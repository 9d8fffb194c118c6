//! Test-only fault points: stop or "kill" an MPMC claimant between its claim CAS and its
//! help of the tail or head (the crash window a random SIGKILL almost never hits).
//!
//! Compiled only with the `test-hooks` feature (which this crate's own dev-dependency on
//! itself turns on for its tests) or under `--cfg mproc_loom`; otherwise the module and every
//! call site are gone. Not part of the API: a test builds a handle with
//! [`MpmcRing::with_fault_hook`](crate::MpmcRing::with_fault_hook), and that handle calls
//! the hook at each [`FaultPoint`] it passes. The hook can
//!
//! * **freeze** the claimant: run other participants' operations inside the hook, while the
//!   claimant's own call is suspended at the point (deterministic, one thread);
//! * **kill** it: [`kill`] unwinds out of the ring call with a [`Killed`] payload, leaving the
//!   slot word naming the claimant, as a process killed there would. A liveness oracle then
//!   declares it dead and `recover` resolves the slot.

use std::fmt;
use std::panic::RefUnwindSafe;
use std::sync::Arc;

/// Where a handle built by `with_fault_hook` calls its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// A producer's claim CAS on the slot of position `pos` succeeded (`WRITING(pos, me)`);
    /// it has not helped the tail past `pos` yet.
    WriteClaimed {
        /// The claimed position.
        pos: u64,
    },
    /// A consumer's claim CAS on the slot of position `pos` succeeded (`READING(pos, me)`);
    /// it has not helped the head past `pos` yet.
    ReadClaimed {
        /// The claimed position.
        pos: u64,
    },
}

/// The unwind payload of [`kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Killed;

/// Called from a fault hook: abandons the ring call right here, as a killed process would.
/// Unwinds with [`Killed`] (`resume_unwind`, so no panic message); nothing of the call runs
/// after the point, so its claim stays in the slot word.
pub fn kill() -> ! {
    std::panic::resume_unwind(Box::new(Killed))
}

/// A handle's hook (process-local; a clone of the handle shares it). `RefUnwindSafe` so that
/// the handle keeps the auto traits it has without the feature.
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<dyn Fn(FaultPoint) + Send + Sync + RefUnwindSafe>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook(..)")
    }
}
