//! Recovery is every caller's job: a handle whose `get` found the queue empty only because
//! a producer's claim holds the head slot (or whose `put` found it full only because a
//! consumer's claim holds the tail slot) recovers that claim itself once it has seen the
//! same claim stuck for [`STUCK_INTERVAL`] and the claimant is dead — whether the caller
//! blocks, times out, polls with `*_nowait` or asks `qsize`.
//!
//! The mechanism is the ring's ([`MpmcRing::stuck_claim`], [`MpmcRing::recover_claim`]);
//! this module only adds the clock the ring has not got. Cost when nothing is stuck: the
//! ring's two loads. When something is: one clock read per call, and one liveness question
//! (a system call) per interval per stuck claim.

use std::cell::Cell;
use std::time::{Duration, Instant};

use mproc_ring::{Claim, DeadClaim, MpmcRing, Recovered, Side};

/// How long one claim must be seen holding up a side before its claimant's liveness is
/// asked (and how often it is asked again while the claimant lives). A live claimant holds
/// a slot for a copy of one message; a descheduled one for a scheduler tick or so.
pub(super) const STUCK_INTERVAL: Duration = Duration::from_millis(20);

/// How long a consumer must see the same head stalled with no claimant (`mproc_ring::mpmc`,
/// "Corruption", invariant 4: items queued by the hints, the head slot never claimed) before
/// it reports the queue corrupt. No valid execution makes that state at all; the interval
/// only keeps one unlucky look from condemning a queue.
pub(super) const STALL_INTERVAL: Duration = Duration::from_secs(1);

/// One handle's memory of the claim one side of its queue was last seen stuck on (and, for
/// the head, of an unclaimed stall).
#[derive(Debug, Default)]
pub(super) struct StuckWatch {
    seen: Cell<Option<(Claim, Instant)>>,
    stalled: Cell<Option<(u64, Instant)>>,
}

impl StuckWatch {
    /// The stall detector (head side only; call it when a pop found the queue empty and
    /// [`StuckWatch::unstick`] found no claim): `true` once this handle has seen the same
    /// head stalled with no claimant for [`STALL_INTERVAL`], after poisoning the ring (so
    /// the retry, and every later operation, reports `Corrupt`).
    pub(super) fn stalled(&self, ring: &MpmcRing) -> bool {
        let Some(head) = ring.unclaimed_head() else {
            self.stalled.set(None);
            return false;
        };
        let now = Instant::now();
        match self.stalled.get() {
            Some((seen, since)) if seen == head => {
                if now.duration_since(since) < STALL_INTERVAL {
                    return false;
                }
                ring.report_corrupt();
                true
            }
            _ => {
                self.stalled.set(Some((head, now)));
                false
            }
        }
    }

    /// Looks at `side` once; if it has been stuck on the same claim for at least
    /// [`STUCK_INTERVAL`] (as seen by this handle), asks `alive` about the claimant and
    /// recovers the slot if it is dead. `Some` when a slot was recovered: the caller should
    /// ring both doorbells and retry at once.
    pub(super) fn unstick(
        &self,
        ring: &MpmcRing,
        side: Side,
        alive: impl Fn(u32) -> bool,
        on_dead_claim: impl FnMut(DeadClaim<'_>),
    ) -> Option<Recovered> {
        let Some(claim) = ring.stuck_claim(side) else {
            self.seen.set(None);
            return None;
        };
        self.stalled.set(None);
        let now = Instant::now();
        match self.seen.get() {
            Some((seen, since)) if seen == claim => {
                if now.duration_since(since) < STUCK_INTERVAL {
                    return None;
                }
                // Ask at most once per interval while the claimant lives.
                self.seen.set(Some((claim, now)));
                let recovered = ring.recover_claim_with(claim, alive, on_dead_claim);
                if recovered.is_some() {
                    self.seen.set(None);
                }
                recovered
            }
            _ => {
                self.seen.set(Some((claim, now)));
                None
            }
        }
    }
}
