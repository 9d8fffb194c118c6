//! [`AtomicValue<T>`]: a shared integer (or `bool`) updated with atomic instructions, no lock.
//!
//! Every operation is `SeqCst`: these are cross-process counters and flags, where the
//! simplest ordering is the one to reason with, and on x86-64 it costs nothing over AcqRel
//! for read-modify-writes.

use std::fmt;
use std::marker::PhantomData;

use mproc_core::shared::{SharedBytes, SharedState, shared_at};
use std::sync::Arc;

use super::sync::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering,
};
use super::{name_of, tag_of};
use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::storage::object::{CreateError, OpenError};
use crate::sync::backing::{Backing, Kind};

mod sealed {
    /// Only mproc's primitive types are [`AtomicPrimitive`](super::AtomicPrimitive)s.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// The types an [`AtomicValue`] can hold: `u8`..`u64`, `i8`..`i64` and `bool`. Sealed.
///
/// The methods are the value type's side of [`AtomicValue`]'s (which documents them), all
/// `SeqCst`; they are hidden because only `AtomicValue` calls them.
pub trait AtomicPrimitive: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The atomic type that holds it in shared memory.
    #[doc(hidden)]
    type Atom: SharedState;

    /// Writes `value` into a fresh, unshared state (one `Self::Atom`).
    #[doc(hidden)]
    fn init(state: &SharedBytes, value: Self);

    #[doc(hidden)]
    fn load(atom: &Self::Atom) -> Self;

    #[doc(hidden)]
    fn store(atom: &Self::Atom, value: Self);

    #[doc(hidden)]
    fn swap(atom: &Self::Atom, value: Self) -> Self;

    #[doc(hidden)]
    fn compare_exchange(atom: &Self::Atom, current: Self, new: Self) -> Result<Self, Self>;
}

/// The integer [`AtomicPrimitive`]s (with `fetch_add` and friends). Sealed.
pub trait AtomicInteger: AtomicPrimitive {
    /// The read-modify-write `op` applied with `value`, returning the previous value.
    #[doc(hidden)]
    fn fetch(atom: &Self::Atom, op: FetchOp, value: Self) -> Self;

    #[doc(hidden)]
    fn fetch_update(atom: &Self::Atom, f: impl FnMut(Self) -> Option<Self>) -> Result<Self, Self>;
}

/// The read-modify-writes of [`AtomicInteger`]s.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum FetchOp {
    /// Wrapping add.
    Add,
    /// Wrapping subtract.
    Sub,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

fn kind<T: AtomicPrimitive>() -> Kind {
    Kind::of::<T::Atom>(tag_of::<T>("AtomicValue"), name_of::<T>("AtomicValue"))
}

/// A shared integer or `bool` updated atomically, without a lock (no Python counterpart:
/// Python's `Value` always locks; this is its fast path for counters and flags).
///
/// # Example
///
/// ```
/// use mproc::AtomicValue;
///
/// let hits = AtomicValue::new(0u64)?;
/// assert_eq!(hits.fetch_add(5), 0);
/// assert_eq!(hits.compare_exchange(5, 7), Ok(5));
/// assert_eq!(hits.load(), 7);
/// # Ok::<(), mproc::CreateError>(())
/// ```
///
/// Cloning gives another handle to the same shared atomic.
#[derive(Clone)]
pub struct AtomicValue<T: AtomicPrimitive> {
    backing: Arc<Backing>,
    _t: PhantomData<fn() -> T>,
}

impl<T: AtomicPrimitive> AtomicValue<T> {
    /// A new shared atomic holding `value`, in the small-object pool.
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment is needed and cannot be made.
    pub fn new(value: T) -> Result<Self, CreateError> {
        Self::create(None, |p| T::init(p, value))
    }

    /// A new shared atomic holding `value`, named `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]), which unrelated
    /// processes open with [`AtomicValue::open_named`].
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str, value: T) -> Result<Self, CreateError> {
        Self::create(Some(name), |p| T::init(p, value))
    }

    fn create(name: Option<&str>, init: impl FnOnce(&SharedBytes)) -> Result<Self, CreateError> {
        let kind = kind::<T>();
        let backing = Backing::create(&kind, name, init)?;
        Ok(AtomicValue {
            backing: Arc::new(backing),
            _t: PhantomData,
        })
    }

    /// Opens the atomic value named `name`, checking that it holds a `T`.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`], [`OpenError::NotFound`].
    pub fn open_named(name: &str) -> Result<Self, OpenError> {
        Ok(AtomicValue {
            backing: Arc::new(Backing::open_named(&kind::<T>(), name)?),
            _t: PhantomData,
        })
    }

    /// Removes the name `name`; open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if there is no such name.
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        crate::storage::names::unlink(name)
    }

    fn atom(&self) -> &T::Atom {
        // The backing holds `size_of::<T::Atom>()` bytes aligned for it (the kind's layout,
        // checked when made, opened or imported).
        shared_at(self.backing.bytes(), 0).expect("the state holds one atom")
    }
}

impl<T: AtomicPrimitive> AtomicValue<T> {
    /// The value now.
    pub fn load(&self) -> T {
        T::load(self.atom())
    }

    /// Stores `value`.
    pub fn store(&self, value: T) {
        T::store(self.atom(), value);
    }

    /// Stores `value`, returning the previous value.
    pub fn swap(&self, value: T) -> T {
        T::swap(self.atom(), value)
    }

    /// Stores `new` if the value is `current`: `Ok(previous)` if it did, `Err(actual)` if
    /// not.
    ///
    /// # Errors
    ///
    /// `Err(actual)` when the value was not `current`.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        T::compare_exchange(self.atom(), current, new)
    }
}

/// The read-modify-writes of [`AtomicInteger`]s, one method per [`FetchOp`], from a table
/// of names and docs.
macro_rules! fetch_ops {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => { $(
        $(#[$doc])*
        pub fn $name(&self, value: T) -> T {
            T::fetch(self.atom(), FetchOp::$op, value)
        }
    )* };
}

impl<T: AtomicInteger> AtomicValue<T> {
    fetch_ops! {
        /// Adds `value` (wrapping on overflow), returning the previous value.
        fetch_add => Add;
        /// Subtracts `value` (wrapping on overflow), returning the previous value.
        fetch_sub => Sub;
        /// Bitwise and with `value`, returning the previous value.
        fetch_and => And;
        /// Bitwise or with `value`, returning the previous value.
        fetch_or => Or;
        /// Bitwise xor with `value`, returning the previous value.
        fetch_xor => Xor;
        /// Stores the maximum of the value and `value`, returning the previous value.
        fetch_max => Max;
        /// Stores the minimum of the value and `value`, returning the previous value.
        fetch_min => Min;
    }

    /// Applies `f` until it succeeds against concurrent writers (a CAS loop), returning the
    /// previous value; `Err(current)` if `f` returned `None`.
    ///
    /// # Errors
    ///
    /// `Err(current)` when `f` declined.
    pub fn fetch_update(&self, f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
        T::fetch_update(self.atom(), f)
    }
}

macro_rules! atomic_int {
    ($($t:ty => $atom:ty),* $(,)?) => { $(
        impl sealed::Sealed for $t {}
        impl AtomicPrimitive for $t {
            type Atom = $atom;

            fn init(state: &SharedBytes, value: $t) {
                // Relaxed: the backing's Release publish orders it.
                shared_at::<$atom>(state, 0)
                    .expect("the kind's state holds one atom")
                    .store(value, Ordering::Relaxed);
            }

            fn load(atom: &$atom) -> $t {
                atom.load(Ordering::SeqCst)
            }

            fn store(atom: &$atom, value: $t) {
                atom.store(value, Ordering::SeqCst)
            }

            fn swap(atom: &$atom, value: $t) -> $t {
                atom.swap(value, Ordering::SeqCst)
            }

            fn compare_exchange(atom: &$atom, current: $t, new: $t) -> Result<$t, $t> {
                atom.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
            }
        }

        impl AtomicInteger for $t {
            fn fetch(atom: &$atom, op: FetchOp, value: $t) -> $t {
                match op {
                    FetchOp::Add => atom.fetch_add(value, Ordering::SeqCst),
                    FetchOp::Sub => atom.fetch_sub(value, Ordering::SeqCst),
                    FetchOp::And => atom.fetch_and(value, Ordering::SeqCst),
                    FetchOp::Or => atom.fetch_or(value, Ordering::SeqCst),
                    FetchOp::Xor => atom.fetch_xor(value, Ordering::SeqCst),
                    FetchOp::Max => atom.fetch_max(value, Ordering::SeqCst),
                    FetchOp::Min => atom.fetch_min(value, Ordering::SeqCst),
                }
            }

            fn fetch_update(
                atom: &$atom,
                f: impl FnMut($t) -> Option<$t>,
            ) -> Result<$t, $t> {
                atom.fetch_update(Ordering::SeqCst, Ordering::SeqCst, f)
            }
        }
    )* };
}

atomic_int!(
    u8 => AtomicU8,
    u16 => AtomicU16,
    u32 => AtomicU32,
    u64 => AtomicU64,
    i8 => AtomicI8,
    i16 => AtomicI16,
    i32 => AtomicI32,
    i64 => AtomicI64,
);

impl sealed::Sealed for bool {}
/// A shared flag. Stored as a byte: any nonzero byte reads as `true`, so a peer writing a
/// stray value can never make an invalid `bool`.
impl AtomicPrimitive for bool {
    type Atom = AtomicU8;

    fn init(state: &SharedBytes, value: bool) {
        // Relaxed: the backing's Release publish orders it.
        shared_at::<AtomicU8>(state, 0)
            .expect("the kind's state holds one byte")
            .store(u8::from(value), Ordering::Relaxed);
    }

    fn load(atom: &AtomicU8) -> bool {
        atom.load(Ordering::SeqCst) != 0
    }

    fn store(atom: &AtomicU8, value: bool) {
        atom.store(u8::from(value), Ordering::SeqCst)
    }

    fn swap(atom: &AtomicU8, value: bool) -> bool {
        atom.swap(u8::from(value), Ordering::SeqCst) != 0
    }

    fn compare_exchange(atom: &AtomicU8, current: bool, new: bool) -> Result<bool, bool> {
        // Compare on the byte actually stored (any nonzero byte is `true`). Bounded: only a
        // peer rewriting the byte between our load and CAS makes us go round again, and we
        // give up (reporting the value we saw) after a few tries rather than spin.
        let mut raw = atom.load(Ordering::SeqCst);
        for _ in 0..64 {
            if (raw != 0) != current {
                return Err(raw != 0);
            }
            match atom.compare_exchange(raw, u8::from(new), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Ok(current),
                Err(now) => raw = now,
            }
        }
        Err(raw != 0)
    }
}

impl<T: AtomicPrimitive> fmt::Debug for AtomicValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicValue")
            .field("type", &std::any::type_name::<T>())
            .field("backing", &self.backing)
            .finish()
    }
}

impl<T: AtomicPrimitive> Passable for AtomicValue<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.backing.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        Ok(AtomicValue {
            backing: Arc::new(Backing::import(&kind::<T>(), input)?),
            _t: PhantomData,
        })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.backing.adopt()
    }
}
