//! [`Value<T>`] (a shared `T` with its own lock) and [`RawValue<T>`] (no lock).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use mproc_core::shared::SharedBytes;

use super::locked::{
    create_named_with_lock, locked_access, open_named_with_lock, unlink_named_with_lock,
};
use super::sync::Ordering;
use super::{Shareable, load, name_of, store, tag_of};
use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::storage::object::{CreateError, OpenError};
use crate::sync::AcquireError;
use crate::sync::backing::{Backing, Kind};
use crate::sync::lock::{Lock, LockGuard};

fn kind<T>(what: &str) -> Kind {
    Kind::of::<T>(tag_of::<T>(what), name_of::<T>(what))
}

/// A shared `T` without a lock — Python's `RawValue` / `Value(..., lock=False)`.
///
/// [`get`](Self::get) and [`set`](Self::set) are *unsynchronised*: each copies the value in
/// word-sized atomic pieces (Acquire / Release), which is always sound, but a `T` wider than
/// one word may be read torn while another process writes it, and nothing makes a
/// read-modify-write atomic. Use [`Value`] (locked) or [`AtomicValue`](super::AtomicValue)
/// for that. See the [module docs](super).
///
/// Cloning gives another handle to the same shared `T`.
#[derive(Clone)]
pub struct RawValue<T: Shareable> {
    backing: Arc<Backing>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Shareable> RawValue<T> {
    /// A new shared `T` holding `value`, in the small-object pool (Python: `RawValue`).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment is needed and cannot be made.
    pub fn new(value: T) -> Result<RawValue<T>, CreateError> {
        Self::create(kind::<T>("RawValue"), None, value)
    }

    /// A new shared `T` named `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]), which unrelated processes open with
    /// [`RawValue::open_named`].
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str, value: T) -> Result<RawValue<T>, CreateError> {
        Self::create(kind::<T>("RawValue"), Some(name), value)
    }

    /// Opens the raw value named `name`, checking that it holds a `T`.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`] if it holds another type (or is another kind of object),
    /// [`OpenError::NotFound`] if it does not exist.
    pub fn open_named(name: &str) -> Result<RawValue<T>, OpenError> {
        Self::open(kind::<T>("RawValue"), name)
    }

    /// Removes the name `name`; open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if there is no such name.
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        crate::storage::names::unlink(name)
    }

    fn create(kind: Kind, name: Option<&str>, value: T) -> Result<RawValue<T>, CreateError> {
        // The fresh state, `size_of::<T>()` bytes aligned for `T` (the kind's layout), not
        // yet visible to anyone. Relaxed: published by the backing's Release store of the
        // cell magic / object header.
        let init = |state: &SharedBytes| store(state, value, Ordering::Relaxed);
        let backing = Backing::create(&kind, name, init)?;
        Ok(Self::from_backing(backing))
    }

    fn open(kind: Kind, name: &str) -> Result<RawValue<T>, OpenError> {
        Ok(Self::from_backing(Backing::open_named(&kind, name)?))
    }

    fn from_backing(backing: Backing) -> RawValue<T> {
        RawValue {
            backing: Arc::new(backing),
            _t: PhantomData,
        }
    }

    /// The value now (Python: `.value` of a `RawValue`). Unsynchronised: see the type docs.
    pub fn get(&self) -> T {
        // Acquire per piece: pairs with the Release stores of `set`, so a one-word value
        // carries what was written before it.
        load(self.backing.bytes(), Ordering::Acquire)
    }

    /// Stores `value` (Python: `.value = x` on a `RawValue`). Unsynchronised: see the type
    /// docs.
    pub fn set(&self, value: T) {
        // Release per piece: pairs with the Acquire loads of `get`.
        store(self.backing.bytes(), value, Ordering::Release)
    }

    /// A raw pointer to the shared `T` (for your own synchronisation). Dereferencing it is
    /// `unsafe`: other processes may write it at any time.
    pub fn as_ptr(&self) -> *mut T {
        self.data().as_ptr().cast()
    }

    pub(crate) fn data(&self) -> NonNull<u8> {
        self.backing.data()
    }
}

impl<T: Shareable + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("value", &self.get())
            .field("backing", &self.backing)
            .finish()
    }
}

impl<T: Shareable> Passable for RawValue<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.backing.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        // `import` is only reached through `Value`/`RawValue`'s own kinds: a `RawValue`
        // handle imports as a `RawValue`.
        let kind = kind::<T>("RawValue");
        Ok(Self::from_backing(Backing::import(&kind, input)?))
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.backing.adopt()
    }
}

/// A shared `T` with its own lock — Python's `multiprocessing.Value`. See the
/// [module docs](super) for what may be shared, owner death and named values.
///
/// Every access holds the lock: [`lock`](Self::lock) returns a [`ValueGuard`] for a
/// read-modify-write (`*v.lock()? += 1`, which is exact, unlike Python's `v.value += 1`);
/// [`get`](Self::get) and [`set`](Self::set) take it for one access each (Python's
/// `.value`).
///
/// Cloning gives another handle to the same value and lock.
#[derive(Clone)]
pub struct Value<T: Shareable> {
    data: RawValue<T>,
    lock: Lock,
}

impl<T: Shareable> Value<T> {
    /// A new shared `T` holding `value`, with a new [`Lock`] (Python: `Value(type, value)`,
    /// whose default lock is an `RLock`; here a guard makes re-entry unnecessary).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment is needed and cannot be made.
    pub fn new(value: T) -> Result<Value<T>, CreateError> {
        Self::with_lock(value, Lock::new()?)
    }

    /// A new shared `T` guarded by `lock`, which may guard other values too (Python:
    /// `Value(type, value, lock=lock)`).
    ///
    /// # Errors
    ///
    /// As [`Value::new`].
    pub fn with_lock(value: T, lock: Lock) -> Result<Value<T>, CreateError> {
        Ok(Value {
            data: RawValue::create(kind::<T>("Value"), None, value)?,
            lock,
        })
    }

    /// A new shared `T` named `name` (its lock is named `name` + `".lock"`), which unrelated
    /// processes open with [`Value::open_named`].
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] or [`CreateError::InvalidName`] (either name), or another
    /// segment error. Nothing is left under either name on failure.
    pub fn create_named(name: &str, value: T) -> Result<Value<T>, CreateError> {
        let (data, lock) = create_named_with_lock(name, || {
            RawValue::create(kind::<T>("Value"), Some(name), value)
        })?;
        Ok(Value { data, lock })
    }

    /// Opens the value named `name`, checking that it holds a `T`: opening a `Value<u64>` as
    /// a `Value<i32>` is [`OpenError::WrongType`].
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`], [`OpenError::NotFound`].
    pub fn open_named(name: &str) -> Result<Value<T>, OpenError> {
        let (data, lock) = open_named_with_lock(name, || RawValue::open(kind::<T>("Value"), name))?;
        Ok(Value { data, lock })
    }

    /// Removes the names of the value `name` (value and lock); open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if either name does not exist (the other is still removed).
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        unlink_named_with_lock(name)
    }

    /// The value's lock (Python: `get_lock()`). Holding it through [`Lock::acquire`] does
    /// not give access to the data; [`Value::lock`] does both.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    fn guard<'a>(&'a self, g: LockGuard<'a>) -> ValueGuard<'a, T> {
        ValueGuard {
            _lock: g,
            ptr: self.data.data().cast(),
            bytes: self.data.backing.bytes(),
            _t: PhantomData,
        }
    }

    locked_access! {
        Value,
        ValueGuard,
        /// Locks the value and lends it (Python: `with v.get_lock(): v.value ...`).
        lock,
    }

    /// The value, read under the lock (Python: `v.value`).
    ///
    /// # Errors
    ///
    /// As [`Value::lock`]; on [`AcquireError::OwnerDied`] the guard comes back unread.
    pub fn get(&self) -> Result<T, AcquireError<ValueGuard<'_, T>>> {
        let g = self.lock()?;
        Ok(g.read())
    }

    /// Stores `value` under the lock (Python: `v.value = x`).
    ///
    /// # Errors
    ///
    /// As [`Value::lock`]; on [`AcquireError::OwnerDied`] nothing is written.
    pub fn set(&self, value: T) -> Result<(), AcquireError<ValueGuard<'_, T>>> {
        let g = self.lock()?;
        g.write(value);
        Ok(())
    }

    /// Runs `f` on the value under the lock and returns its result: an exact
    /// read-modify-write (Python: `with v.get_lock(): v.value += 1`).
    ///
    /// # Errors
    ///
    /// As [`Value::lock`]; on [`AcquireError::OwnerDied`] `f` does not run.
    pub fn update<R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, AcquireError<ValueGuard<'_, T>>> {
        let mut g = self.lock()?;
        Ok(f(&mut g))
    }
}

impl<T: Shareable> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("type", &std::any::type_name::<T>())
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

impl<T: Shareable> Passable for Value<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.data.backing.export(out)?;
        self.lock.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let kind = kind::<T>("Value");
        let data = RawValue::from_backing(Backing::import(&kind, input)?);
        let lock = Lock::import(input)?;
        Ok(Value { data, lock })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.data.adopt()?;
        self.lock.adopt()
    }
}

/// A locked [`Value`], lent in place: `Deref`/`DerefMut` to the shared `T`. Unlocks when
/// dropped.
///
/// It points into shared memory: safe against buggy peers (which go through the lock), not
/// against a hostile process writing the memory without it (see the [module docs](super)).
#[must_use = "if unused the lock will immediately unlock"]
pub struct ValueGuard<'a, T: Shareable> {
    _lock: LockGuard<'a>,
    ptr: NonNull<T>,
    /// The same state, for the atomic `read`/`write`.
    bytes: &'a SharedBytes,
    _t: PhantomData<&'a mut T>,
}

impl<T: Shareable> ValueGuard<'_, T> {
    /// Declares the data consistent after an [`OwnerDied`](AcquireError::OwnerDied) takeover,
    /// so the lock is no longer poisoned after this guard unlocks.
    pub fn mark_consistent(&mut self) {
        self._lock.mark_consistent();
    }

    /// Copies the value out through atomics (sound even against a hostile writer).
    fn read(&self) -> T {
        // Relaxed: the lock's Acquire (taking it) orders this after the last holder's writes.
        load(self.bytes, Ordering::Relaxed)
    }

    /// Stores `value` through atomics.
    fn write(&self, value: T) {
        // Relaxed: the lock's Release (dropping it) publishes it.
        store(self.bytes, value, Ordering::Relaxed)
    }
}

impl<T: Shareable> Deref for ValueGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` is the value's state, aligned and sized for `T`, alive for 'a; every
        // access through mproc's API holds the lock, which this guard holds, so nothing
        // writes it meanwhile (a hostile process ignoring the lock aside, see the docs);
        // `T: Shareable` is valid for any bytes.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Shareable> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference lent by this
        // guard, and the lock keeps every other accessor out.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: Shareable + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}
