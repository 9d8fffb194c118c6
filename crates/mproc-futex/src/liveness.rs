//! Participant ids and the caller-supplied question "is this participant still alive?".
//!
//! Locks record their owner as a participant id — a nonzero `u32` below 2^29 handed out by
//! `mproc-shm`'s participant table (DESIGN.md, "the hard parts" §1) — in the same atomic word
//! that takes the lock. This crate never decides liveness itself; it asks a [`Liveness`],
//! which the `mproc` facade implements with the segment's kernel-released liveness locks and
//! which a test can implement with a flag that declares an owner dead.

/// The largest valid participant id: ids use the low 29 bits of a lock word; the top three
/// bits are the lock's flags (poisoned, waiters, strict). Id 0 means "nobody".
pub const MAX_PARTICIPANT_ID: u32 = (1 << 29) - 1;

/// Answers whether participant `id` is still alive.
///
/// Implemented for every `Fn(u32) -> bool`. An answer of `false` must be final: once a
/// participant is reported dead, locks it owns are taken over, so an id must not be handed to
/// a new participant while shared words may still record the old one.
pub trait Liveness {
    /// Whether participant `id` (nonzero, at most [`MAX_PARTICIPANT_ID`]) is alive.
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

/// Panics unless `id` is a valid participant id.
#[inline]
#[track_caller]
pub(crate) fn check_id(id: u32) {
    assert!(
        id != 0 && id <= MAX_PARTICIPANT_ID,
        "participant id {id} is not in 1..=MAX_PARTICIPANT_ID"
    );
}
