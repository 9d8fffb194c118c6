//! Participant ids and the caller-supplied question "is this participant still alive?".
//!
//! Locks record their owner as a participant id — the raw value of a [`ParticipantId`]
//! (mproc-core's: nonzero, at most [`ParticipantId::MAX`] = `2^29 - 2`) handed out by
//! `mproc-shm`'s participant table (DESIGN.md, "the hard parts" §1) — in the same atomic word
//! that takes the lock. This crate never decides liveness itself; it asks a [`Liveness`],
//! which the `mproc` facade implements with the segment's kernel-released liveness locks and
//! which a test can implement with a flag that declares an owner dead.

pub use mproc_core::participant::ParticipantId;

/// Answers whether participant `id` is still alive.
///
/// Implemented for every `Fn(u32) -> bool`. An answer of `false` must be final: once a
/// participant is reported dead, locks it owns are taken over, so an id must not be handed to
/// a new participant while shared words may still record the old one.
pub trait Liveness {
    /// Whether participant `id` (nonzero, at most [`ParticipantId::MAX`]) is alive.
    fn is_alive(&self, id: u32) -> bool;
}

impl<F: Fn(u32) -> bool + ?Sized> Liveness for F {
    #[inline]
    fn is_alive(&self, id: u32) -> bool {
        self(id)
    }
}

/// A [`Liveness`] that declares everybody alive: for use within one process, where an owner
/// cannot die without taking the waiters with it (owner death is then never detected).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlwaysAlive;

impl Liveness for AlwaysAlive {
    #[inline]
    fn is_alive(&self, _id: u32) -> bool {
        true
    }
}

/// Panics unless `id` is a valid participant id ([`ParticipantId::new`] accepts it).
#[inline]
#[track_caller]
pub(crate) fn check_id(id: u32) {
    assert!(
        ParticipantId::new(id).is_some(),
        "participant id {id} is not in 1..=ParticipantId::MAX"
    );
}
