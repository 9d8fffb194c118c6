//! `Offset<T>`: a typed position inside a segment, the only form in which cross-process
//! references are stored in shared memory (DESIGN.md rule 1).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// A typed byte offset from the base of a segment (or of an arena's memory, for an arena
/// built over a caller's buffer).
///
/// It is a plain `u64` in memory (`#[repr(transparent)]`), so it can be stored in a shared
/// word. Turning it back into a pointer goes through [`Segment::resolve`], which checks
/// bounds and alignment: a corrupt offset written by a peer is an error, never undefined
/// behaviour.
///
/// [`Segment::resolve`]: crate::Segment::resolve
#[repr(transparent)]
pub struct Offset<T> {
    raw: u64,
    _points_at: PhantomData<fn() -> T>,
}

impl<T> Offset<T> {
    /// An offset of `raw` bytes from the base.
    pub const fn new(raw: u64) -> Offset<T> {
        Offset {
            raw,
            _points_at: PhantomData,
        }
    }

    /// The offset in bytes.
    pub const fn get(self) -> u64 {
        self.raw
    }

    /// The same position, as another type.
    pub const fn cast<U>(self) -> Offset<U> {
        Offset::new(self.raw)
    }

    /// The position `bytes` further on, or `None` on overflow.
    pub const fn byte_add(self, bytes: u64) -> Option<Offset<T>> {
        match self.raw.checked_add(bytes) {
            Some(raw) => Some(Offset::new(raw)),
            None => None,
        }
    }
}

impl<T> Clone for Offset<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Offset<T> {}

impl<T> PartialEq for Offset<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> Eq for Offset<T> {}

impl<T> PartialOrd for Offset<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Offset<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

impl<T> Hash for Offset<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T> fmt::Debug for Offset<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Offset<{}>({})", std::any::type_name::<T>(), self.raw)
    }
}

impl<T> From<Offset<T>> for u64 {
    fn from(o: Offset<T>) -> u64 {
        o.raw
    }
}
