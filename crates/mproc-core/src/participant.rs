//! [`ParticipantId`]: who a process is in a segment — the one id type, with the one maximum,
//! that every layer records in shared words and asks liveness about.
//!
//! mproc-shm's participant table hands ids out (one per attached process, with
//! kernel-released liveness; DESIGN.md, "the hard parts" §1); the rings record them as claim
//! holders, the futex locks as owners, in the same atomic word that takes the claim or the
//! lock. An id therefore has to leave room in a 32-bit word: it uses the low
//! [`ParticipantId::BITS`] = 29 bits, and the top three are the lock words' flags (poisoned,
//! waiters, strict recovery: mproc-futex's `RawLock`) or the MPMC slot state.
//!
//! # Layout
//!
//! | bits | what |
//! |---|---|
//! | `0..12` | the participant-table index ([`ParticipantId::index`]) |
//! | `12..29` | the entry's generation when the id was issued ([`ParticipantId::generation`]), `1..=`[`ParticipantId::MAX_GENERATION`] |
//! | `29..32` | zero (free for the flags of the layers above) |
//!
//! Every id is in `1..=`[`ParticipantId::MAX`] (`2^29 - 2`): 0 means "nobody", and the
//! 29-bit all-ones value `2^29 - 1` is reserved (the MPMC ring's tombstone claimant). The
//! table never issues generation 0, so the largest id it issues is well below the maximum;
//! ids built with [`ParticipantId::new`] from small numbers (tests, one process) have
//! generation 0 and are valid everywhere except as a table entry's id.

use core::fmt;
use core::num::NonZeroU32;

/// A participant's id: nonzero, at most [`ParticipantId::MAX`] (see the [module
/// docs](self) for the layout).
///
/// # Examples
///
/// ```
/// use mproc_core::participant::ParticipantId;
///
/// let id = ParticipantId::from_parts(3, 1).unwrap(); // table entry 3, first generation
/// assert_eq!((id.index(), id.generation()), (3, 1));
/// assert_eq!(ParticipantId::new(id.get()), Some(id)); // through a shared word and back
/// assert_eq!(ParticipantId::new(0), None); // "nobody"
/// assert_eq!(ParticipantId::new(ParticipantId::MAX + 1), None); // reserved
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(NonZeroU32);

impl ParticipantId {
    /// Bits of a word an id may use (the low ones); the top three are left to flags.
    pub const BITS: u32 = 29;
    /// The largest valid id, `2^29 - 2` (`2^29 - 1` is the MPMC ring's tombstone claimant).
    pub const MAX: u32 = (1 << Self::BITS) - 2;
    /// Bits of the participant-table index (the low bits of an id).
    pub const INDEX_BITS: u32 = 12;
    /// The largest table index (so a table has at most `MAX_INDEX + 1` = 4096 entries).
    pub const MAX_INDEX: u32 = (1 << Self::INDEX_BITS) - 1;
    /// The largest generation a table issues (`2^17 - 2`): with any index, at most
    /// [`ParticipantId::MAX`]. After it, an entry's generation wraps to 1.
    pub const MAX_GENERATION: u32 = (1 << (Self::BITS - Self::INDEX_BITS)) - 2;

    /// The id stored as `raw` in a shared word: `Some` for `1..=MAX`, `None` for 0
    /// ("nobody") and for values a peer's scribble may have left (above `MAX`).
    #[inline]
    pub const fn new(raw: u32) -> Option<ParticipantId> {
        if raw > Self::MAX {
            return None;
        }
        match NonZeroU32::new(raw) {
            Some(nz) => Some(ParticipantId(nz)),
            None => None,
        }
    }

    /// The id of table entry `index` in its `generation`: `None` unless
    /// `index <= MAX_INDEX` and `1 <= generation <= MAX_GENERATION`.
    #[inline]
    pub const fn from_parts(index: u32, generation: u32) -> Option<ParticipantId> {
        if index > Self::MAX_INDEX || generation == 0 || generation > Self::MAX_GENERATION {
            return None;
        }
        Self::new((generation << Self::INDEX_BITS) | index)
    }

    /// The raw value, to store in a shared word.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// The participant-table index (bits `0..12`).
    #[inline]
    pub const fn index(self) -> u32 {
        self.0.get() & Self::MAX_INDEX
    }

    /// The table entry's generation when this id was issued (bits `12..30`; 0 for an id
    /// no table issued).
    #[inline]
    pub const fn generation(self) -> u32 {
        self.0.get() >> Self::INDEX_BITS
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParticipantId({}#{})", self.index(), self.generation())
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "participant {}#{}", self.index(), self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::ParticipantId;

    #[test]
    fn range() {
        assert_eq!(ParticipantId::new(0), None);
        assert_eq!(ParticipantId::new(1).map(ParticipantId::get), Some(1));
        assert_eq!(
            ParticipantId::new(ParticipantId::MAX).map(ParticipantId::get),
            Some((1 << 29) - 2)
        );
        assert_eq!(ParticipantId::new((1 << 29) - 1), None, "the tombstone");
        assert_eq!(ParticipantId::new(1 << 29), None, "a flag bit");
        assert_eq!(ParticipantId::new(u32::MAX), None);
    }

    #[test]
    fn parts() {
        let top =
            ParticipantId::from_parts(ParticipantId::MAX_INDEX, ParticipantId::MAX_GENERATION)
                .expect("the largest pair fits");
        assert!(top.get() <= ParticipantId::MAX);
        assert_eq!(top.index(), ParticipantId::MAX_INDEX);
        assert_eq!(top.generation(), ParticipantId::MAX_GENERATION);
        assert_eq!(ParticipantId::new(top.get()), Some(top));
        assert_eq!(
            ParticipantId::from_parts(5, 0),
            None,
            "generation 0 is never issued"
        );
        assert_eq!(
            ParticipantId::from_parts(0, ParticipantId::MAX_GENERATION + 1),
            None
        );
        assert_eq!(
            ParticipantId::from_parts(ParticipantId::MAX_INDEX + 1, 1),
            None
        );
        let small = ParticipantId::new(7).unwrap();
        assert_eq!((small.index(), small.generation()), (7, 0));
    }

    #[test]
    fn formats() {
        let id = ParticipantId::from_parts(3, 2).unwrap();
        assert_eq!(format!("{id:?}"), "ParticipantId(3#2)");
        assert_eq!(format!("{id}"), "participant 3#2");
    }
}
