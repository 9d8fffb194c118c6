//! [`Array<T>`] (a shared `[T]` of fixed length with its own lock) and [`RawArray<T>`] (no
//! lock).
//!
//! Layout of the shared state: a `u64` length (`H = max(8, align_of::<T>())` bytes), then
//! the elements. The length is written once by the creator; an opener or importer checks it
//! against the size of the cell or segment it mapped, then keeps its own copy: nothing is
//! re-read from shared memory for bounds.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use mproc_core::shared::{SharedBytes, shared_at};
use std::ptr::NonNull;
use std::sync::Arc;

use super::locked::{
    create_named_with_lock, locked_access, open_named_with_lock, unlink_named_with_lock,
};
use super::sync::{AtomicU64, Ordering};
use super::{Shareable, load, name_of, store, tag_of};
use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::storage::object::{CreateError, OpenError};
use crate::sync::AcquireError;
use crate::sync::backing::{Backing, Kind};
use crate::sync::lock::{Lock, LockGuard};

/// Bytes before the first element.
fn header<T>() -> usize {
    align_of::<T>().max(8)
}

/// Element `i`'s bytes in an array `state` (length word, then the elements).
///
/// # Panics
///
/// If element `i` lies past the end of `state` (callers check `i` against their own copy
/// of the length first).
fn element<T>(state: &SharedBytes, i: usize) -> &SharedBytes {
    let at = header::<T>() + i * size_of::<T>();
    &state[at..at + size_of::<T>()]
}

fn kind<T>(what: &str, len: usize) -> Result<Kind, CreateError> {
    let size = len
        .checked_mul(size_of::<T>())
        .and_then(|b| b.checked_add(header::<T>()))
        .filter(|&b| u32::try_from(b).is_ok())
        .ok_or_else(|| CreateError::capacity("array length", len, "below 4 GiB of elements"))?;
    Ok(Kind {
        tag: tag_of::<T>(what),
        name: name_of::<T>(what),
        size,
        align: header::<T>(),
    })
}

/// A shared `[T]` of fixed length without a lock — Python's `RawArray` /
/// `Array(..., lock=False)`. Element accesses are unsynchronised, as for
/// [`RawValue`](super::RawValue): each element is copied in word-sized atomic pieces
/// (sound, but a wide element may be read torn).
///
/// Cloning gives another handle to the same array.
#[derive(Clone)]
pub struct RawArray<T: Shareable> {
    backing: Arc<Backing>,
    len: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Shareable> RawArray<T> {
    /// A new shared array of `len` zeros (Python: `RawArray(type, len)`).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidCapacity`] if it would exceed 4 GiB; [`CreateError::NoSpace`] or
    /// another creation error.
    pub fn zeroed(len: usize) -> Result<RawArray<T>, CreateError> {
        Self::create("RawArray", None, Init::Zeroed(len))
    }

    /// A new shared array holding a copy of `items` (Python: `RawArray(type, sequence)`).
    ///
    /// # Errors
    ///
    /// As [`RawArray::zeroed`].
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>, CreateError> {
        Self::create("RawArray", None, Init::Copy(items))
    }

    /// A new shared array holding a copy of `items`, named `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] or [`CreateError::InvalidName`], and as [`RawArray::zeroed`].
    pub fn create_named(name: &str, items: &[T]) -> Result<RawArray<T>, CreateError> {
        Self::create("RawArray", Some(name), Init::Copy(items))
    }

    /// Opens the raw array named `name`, checking that it holds `T`s (any length).
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`], [`OpenError::NotFound`], [`OpenError::Corrupt`] (a length
    /// that does not fit the segment).
    pub fn open_named(name: &str) -> Result<RawArray<T>, OpenError> {
        Self::open("RawArray", name)
    }

    /// Removes the name `name`; open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if there is no such name.
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        crate::storage::names::unlink(name)
    }

    fn create(
        what: &str,
        name: Option<&str>,
        init: Init<'_, T>,
    ) -> Result<RawArray<T>, CreateError> {
        let len = init.len();
        let kind = kind::<T>(what, len)?;
        let write = |state: &SharedBytes| {
            // Relaxed: the backing's Release publish orders these writes before any opener
            // reads them.
            shared_at::<AtomicU64>(state, 0)
                .expect("an array state starts with its length word")
                .store(len as u64, Ordering::Relaxed);
            if let Init::Copy(items) = init {
                // The fresh state of `kind.size` bytes: the length word, then `len` elements
                // aligned for `T`. Not yet visible to anyone.
                for (i, &item) in items.iter().enumerate() {
                    store(element::<T>(state, i), item, Ordering::Relaxed);
                }
            }
        };
        let backing = Backing::create(&kind, name, write)?;
        Ok(RawArray {
            backing: Arc::new(backing),
            len,
            _t: PhantomData,
        })
    }

    fn open(what: &str, name: &str) -> Result<RawArray<T>, OpenError> {
        // Open with the header alone, then learn the length and check it fits.
        let header_only =
            kind::<T>(what, 0).map_err(|_| OpenError::corrupt_part("array element type"))?;
        let backing = Backing::open_named(&header_only, name)?;
        let room = match &backing {
            Backing::Named(obj) => obj.region(0).map_or(0, |r| r.len),
            Backing::Pool(_) => 0,
        };
        let len = Self::stored_len(&backing);
        let fits = usize::try_from(len)
            .ok()
            .and_then(|n| kind::<T>(what, n).ok())
            .is_some_and(|k| k.size as u64 <= room);
        if !fits {
            return Err(OpenError::corrupt("array length", len));
        }
        Ok(RawArray {
            backing: Arc::new(backing),
            len: len as usize,
            _t: PhantomData,
        })
    }

    fn import(what: &str, input: &mut Importer) -> Result<RawArray<T>, PassError> {
        let sent: u64 = input.value()?;
        let invalid = PassError::Invalid {
            what: "array length",
            value: sent,
        };
        let len = usize::try_from(sent).map_err(|_| invalid)?;
        let kind = kind::<T>(what, len).map_err(|_| PassError::Invalid {
            what: "array length",
            value: sent,
        })?;
        // The pool checks the cell's payload length against `kind.size`, a named segment its
        // region; either way the state holds `len` elements.
        let backing = Backing::import(&kind, input)?;
        let stored = Self::stored_len(&backing);
        if stored != sent {
            return Err(PassError::Mismatch {
                what: "array length",
                sent,
                expected: stored,
            });
        }
        Ok(RawArray {
            backing: Arc::new(backing),
            len,
            _t: PhantomData,
        })
    }

    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        out.value(&(self.len as u64))?;
        self.backing.export(out)
    }

    fn stored_len(backing: &Backing) -> u64 {
        // Every array state starts with an 8-aligned length word (at least the header was
        // checked to fit). Relaxed: written once before the publish the opener's Acquire
        // synchronised with.
        shared_at::<AtomicU64>(backing.bytes(), 0)
            .expect("an array state holds its length word")
            .load(Ordering::Relaxed)
    }

    fn elements(&self) -> NonNull<T> {
        // SAFETY: the header is inside the state (checked at creation, open or import).
        unsafe { self.backing.data().add(header::<T>()) }.cast()
    }

    /// Number of elements (Python: `len(a)`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, or `None` past the end (Python: `a[i]`, which raises `IndexError`).
    /// Unsynchronised: see the type docs.
    pub fn get(&self, i: usize) -> Option<T> {
        (i < self.len).then(|| {
            // `i < len` (our own validated copy), so the element is inside the state.
            // Acquire: pairs with `set`'s Release.
            load(element::<T>(self.backing.bytes(), i), Ordering::Acquire)
        })
    }

    /// Stores `value` at `i` (Python: `a[i] = x`). Unsynchronised: see the type docs.
    ///
    /// # Panics
    ///
    /// If `i >= len()` (Python: `IndexError`).
    pub fn set(&self, i: usize, value: T) {
        assert!(
            i < self.len,
            "index {i} out of range for an array of {}",
            self.len
        );
        // Release: pairs with `get`'s Acquire.
        store(
            element::<T>(self.backing.bytes(), i),
            value,
            Ordering::Release,
        )
    }

    /// A copy of every element (Python: `a[:]`). Unsynchronised: see the type docs.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len).filter_map(|i| self.get(i)).collect()
    }
}

enum Init<'a, T> {
    Zeroed(usize),
    Copy(&'a [T]),
}

impl<T> Init<'_, T> {
    fn len(&self) -> usize {
        match self {
            Init::Zeroed(n) => *n,
            Init::Copy(items) => items.len(),
        }
    }
}

impl<T: Shareable> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<T: Shareable> Passable for RawArray<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        RawArray::export(self, out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        RawArray::import("RawArray", input)
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.backing.adopt()
    }
}

/// A shared `[T]` of fixed length with its own lock — Python's `multiprocessing.Array`.
///
/// [`lock`](Self::lock) lends the whole slice under the lock (`&[T]` / `&mut [T]` through an
/// [`ArrayGuard`]); [`get`](Self::get), [`set`](Self::set) and [`to_vec`](Self::to_vec) take
/// the lock once each, as Python's indexing does. The length never changes (Python: slice
/// assignment must keep the length). See the [module docs](super).
///
/// Cloning gives another handle to the same array and lock.
#[derive(Clone)]
pub struct Array<T: Shareable> {
    data: RawArray<T>,
    lock: Lock,
}

impl<T: Shareable> Array<T> {
    /// A new array of `len` zeros with a new lock (Python: `Array(type, len)`).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidCapacity`] if it would exceed 4 GiB; [`CreateError::NoSpace`] or
    /// another creation error.
    pub fn zeroed(len: usize) -> Result<Array<T>, CreateError> {
        Ok(Array {
            data: RawArray::create("Array", None, Init::Zeroed(len))?,
            lock: Lock::new()?,
        })
    }

    /// A new array holding a copy of `items` (Python: `Array(type, sequence)`).
    ///
    /// # Errors
    ///
    /// As [`Array::zeroed`].
    pub fn from_slice(items: &[T]) -> Result<Array<T>, CreateError> {
        Self::with_lock(items, Lock::new()?)
    }

    /// A new array holding a copy of `items`, guarded by `lock` (Python: `Array(type,
    /// sequence, lock=lock)`).
    ///
    /// # Errors
    ///
    /// As [`Array::zeroed`].
    pub fn with_lock(items: &[T], lock: Lock) -> Result<Array<T>, CreateError> {
        Ok(Array {
            data: RawArray::create("Array", None, Init::Copy(items))?,
            lock,
        })
    }

    /// A new array holding a copy of `items`, named `name` (its lock is named `name` +
    /// `".lock"`).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] or [`CreateError::InvalidName`], and as [`Array::zeroed`].
    pub fn create_named(name: &str, items: &[T]) -> Result<Array<T>, CreateError> {
        let (data, lock) = create_named_with_lock(name, || {
            RawArray::create("Array", Some(name), Init::Copy(items))
        })?;
        Ok(Array { data, lock })
    }

    /// Opens the array named `name`, checking that it holds `T`s.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`], [`OpenError::NotFound`], [`OpenError::Corrupt`].
    pub fn open_named(name: &str) -> Result<Array<T>, OpenError> {
        let (data, lock) = open_named_with_lock(name, || RawArray::open("Array", name))?;
        Ok(Array { data, lock })
    }

    /// Removes the names of the array `name` (array and lock); open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if either name does not exist (the other is still removed).
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        unlink_named_with_lock(name)
    }

    /// Number of elements (Python: `len(a)`).
    pub fn len(&self) -> usize {
        self.data.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.len == 0
    }

    /// The array's lock (Python: `get_lock()`).
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    fn guard<'a>(&'a self, g: LockGuard<'a>) -> ArrayGuard<'a, T> {
        ArrayGuard {
            _lock: g,
            ptr: self.data.elements(),
            state: self.data.backing.bytes(),
            len: self.data.len,
            _t: PhantomData,
        }
    }

    locked_access! {
        Array,
        ArrayGuard,
        /// Locks the array and lends its elements (Python: `with a.get_lock(): ...`).
        lock,
    }

    /// Element `i` read under the lock, or `None` past the end (Python: `a[i]`, which
    /// raises `IndexError`; negative indices are Rust's `len - k`).
    ///
    /// # Errors
    ///
    /// As [`Array::lock`].
    pub fn get(&self, i: usize) -> Result<Option<T>, AcquireError<ArrayGuard<'_, T>>> {
        if i >= self.len() {
            return Ok(None);
        }
        let g = self.lock()?;
        Ok(Some(g.read(i)))
    }

    /// Stores `value` at `i` under the lock (Python: `a[i] = x`).
    ///
    /// # Errors
    ///
    /// As [`Array::lock`]; on [`AcquireError::OwnerDied`] nothing is written.
    ///
    /// # Panics
    ///
    /// If `i >= len()` (Python: `IndexError`).
    pub fn set(&self, i: usize, value: T) -> Result<(), AcquireError<ArrayGuard<'_, T>>> {
        assert!(
            i < self.len(),
            "index {i} out of range for an array of {}",
            self.len()
        );
        let g = self.lock()?;
        g.write(i, value);
        Ok(())
    }

    /// A copy of every element, read under the lock once (Python: `a[:]`).
    ///
    /// # Errors
    ///
    /// As [`Array::lock`].
    pub fn to_vec(&self) -> Result<Vec<T>, AcquireError<ArrayGuard<'_, T>>> {
        let g = self.lock()?;
        Ok((0..g.len).map(|i| g.read(i)).collect())
    }
}

impl<T: Shareable> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len())
            .field("lock", &self.lock)
            .finish()
    }
}

impl<T: Shareable> Passable for Array<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.data.export(out)?;
        self.lock.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let data = RawArray::import("Array", input)?;
        let lock = Lock::import(input)?;
        Ok(Array { data, lock })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.data.backing.adopt()?;
        self.lock.adopt()
    }
}

/// A locked [`Array`], lent in place as a slice (`Deref<Target = [T]>` / `DerefMut`).
/// Unlocks when dropped. Like [`ValueGuard`](super::ValueGuard), safe against buggy peers,
/// not against a hostile process writing without the lock.
#[must_use = "if unused the lock will immediately unlock"]
pub struct ArrayGuard<'a, T: Shareable> {
    _lock: LockGuard<'a>,
    ptr: NonNull<T>,
    /// The whole state (length word, then the elements), for the atomic `read`/`write`.
    state: &'a SharedBytes,
    len: usize,
    _t: PhantomData<&'a mut [T]>,
}

impl<T: Shareable> ArrayGuard<'_, T> {
    /// Declares the data consistent after an [`OwnerDied`](AcquireError::OwnerDied) takeover,
    /// so the lock is no longer poisoned after this guard unlocks.
    pub fn mark_consistent(&mut self) {
        self._lock.mark_consistent();
    }

    fn read(&self, i: usize) -> T {
        debug_assert!(i < self.len);
        // Relaxed: the lock's Acquire orders it after the previous holder's writes.
        load(element::<T>(self.state, i), Ordering::Relaxed)
    }

    fn write(&self, i: usize, value: T) {
        debug_assert!(i < self.len);
        // Relaxed: the lock's Release (on unlock) publishes it.
        store(element::<T>(self.state, i), value, Ordering::Relaxed)
    }
}

impl<T: Shareable> Deref for ArrayGuard<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `len` elements of `T` at `ptr` (validated at creation, open or import),
        // alive for 'a; the lock this guard holds keeps every mproc accessor out;
        // `T: Shareable` is valid for any bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Shareable> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only slice lent by this guard.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Shareable + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}
