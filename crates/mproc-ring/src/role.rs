//! Role words: who holds the producer or consumer end of an SPSC ring (or the writer or
//! reader end of a record ring), as a [`ParticipantId`] (mproc-core's, re-exported here).
//!
//! A role word holds `0` (never claimed), a holder's participant id, or [`ROLE_CLOSED`]
//! (released: the peer is gone). Claiming is one CAS, so a crash leaves the word naming
//! the dead holder, and a successor that the caller's liveness check declares dead can take
//! the role over (DESIGN.md, "the hard parts" §3).

pub use mproc_core::participant::ParticipantId;

use crate::sync::{AtomicU32, Ordering};

/// Role word value after the holder released the role.
pub(crate) const ROLE_CLOSED: u32 = u32::MAX;
const ROLE_FREE: u32 = 0;

/// What a role word says about its end of an SPSC ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nobody has claimed this end yet.
    Free,
    /// Held by this participant id (possibly dead; ask your liveness check).
    Held(u32),
    /// The holder released it (dropped its handle): the peer is gone.
    Closed,
}

impl Role {
    pub(crate) fn from_word(w: u32) -> Role {
        match w {
            ROLE_FREE => Role::Free,
            ROLE_CLOSED => Role::Closed,
            id => Role::Held(id),
        }
    }
}

/// Why a role could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// Another participant holds the role (and, if a liveness check was given, is alive).
    #[error("role is held by participant {0}")]
    Held(u32),
    /// The role word kept changing under us (a hostile or very busy peer); gave up.
    #[error("role word kept changing; gave up")]
    Contended,
    /// The ring's indices are inconsistent, so the role cannot be resumed safely.
    #[error("ring indices are corrupt")]
    Corrupt,
}

const CLAIM_TRIES: u32 = 64;

/// Claims `word` for `me`: from free or closed, or from a holder `alive` says is dead.
pub(crate) fn claim(
    word: &AtomicU32,
    me: ParticipantId,
    alive: Option<&dyn Fn(u32) -> bool>,
) -> Result<(), ClaimError> {
    for _ in 0..CLAIM_TRIES {
        // Acquire: pairs with the Release in `release`/a previous claim, so we see the ring
        // state the previous holder left (its last index store).
        let cur = word.load(Ordering::Acquire);
        let takeable = match Role::from_word(cur) {
            Role::Free | Role::Closed => true,
            Role::Held(id) if id == me.get() => return Ok(()),
            Role::Held(id) => match alive {
                Some(alive) if !alive(id) => true,
                _ => return Err(ClaimError::Held(id)),
            },
        };
        debug_assert!(takeable);
        // AcqRel: Acquire as above; Release so a later taker sees our claim in order.
        if word
            .compare_exchange(cur, me.get(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(ClaimError::Contended)
}

/// Releases `word` if `me` still holds it; returns whether it did.
pub(crate) fn release(word: &AtomicU32, me: ParticipantId) -> bool {
    // Release: our last index store happens-before the next claimer's Acquire.
    word.compare_exchange(me.get(), ROLE_CLOSED, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}
