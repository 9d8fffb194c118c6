//! Shared plain data: Python's `multiprocessing.sharedctypes` — [`Value`], [`Array`],
//! [`RawValue`], [`RawArray`] — plus [`AtomicValue`] for integers where a lock is needless.
//!
//! # Python → mproc
//!
//! | Python | mproc |
//! |---|---|
//! | `Value('Q', 5)` | [`Value::new(5u64)`](Value::new) — typed, no typecodes |
//! | `v.value` (read / write, each under the lock) | [`Value::get`] / [`Value::set`] |
//! | `with v.get_lock(): v.value += 1` | [`*v.lock()? += 1`](Value::lock) — a [`ValueGuard`] (`Deref`/`DerefMut`), or [`Value::update`] |
//! | `v.get_lock()` | [`Value::get_lock`] → the [`Lock`](crate::Lock) |
//! | `Value('i', 0, lock=lk)` | [`Value::with_lock`] (several values under one lock) |
//! | `Value('i', lock=False)`, `RawValue('i')` | [`RawValue`]: no lock; `get`/`set` are unsynchronised (see below) |
//! | — | [`AtomicValue`]: `fetch_add`, `compare_exchange`, ... on a shared integer, no lock |
//! | `Array('i', 10)`, `Array('i', [1, 2])` | [`Array::zeroed(10)`](Array::zeroed), [`Array::from_slice`] |
//! | `len(a)`, `a[i]`, `a[i] = x`, `a[:]` | [`Array::len`], [`Array::get`], [`Array::set`], [`Array::to_vec`] (each takes the lock once) |
//! | `with a.get_lock(): ...` | [`Array::lock`] → an [`ArrayGuard`] (`&[T]` / `&mut [T]`) |
//! | `RawArray('i', 10)` | [`RawArray`] |
//! | `Structure` subclasses | any `#[repr(C)]` type with an `unsafe impl` [`Shareable`] |
//!
//! # What can be shared: [`Shareable`]
//!
//! Plain old data only: integers, floats, arrays of them, and `#[repr(C)]` structs of those
//! whose every byte pattern is a valid value. `bool` and `char` are deliberately not
//! [`Shareable`] — a buggy or hostile peer could store a byte that is not a valid `bool`, which
//! would be undefined behaviour in us — use a `u8`, or [`AtomicValue<bool>`] (which maps any
//! nonzero byte to `true`). mproc has its own marker trait instead of depending on `bytemuck`:
//! the contract is exactly what shared memory needs (any bit pattern valid, no padding, no
//! pointers), and a type that is `bytemuck::Pod` meets it, so bridging is a one-line
//! `unsafe impl`.
//!
//! # Where the data lives
//!
//! Anonymous values and arrays are cells of the small-object [cell store](crate::storage::cells): creating
//! 10,000 of them needs no more descriptors or mappings than creating one. Each [`Value`]'s
//! lock is a [`Lock`](crate::Lock), another pool cell. Named ones (`create_named`) each have
//! their own named segment (a value's lock is named `name` + `".lock"`), and opening one
//! checks its type: opening a `Value<u64>` as a `Value<i32>` is [`OpenError::WrongType`].
//!
//! # Locks, and a holder that dies
//!
//! Every access to a [`Value`]'s or [`Array`]'s data through mproc's safe API holds its lock,
//! so accesses never race. If a process dies holding the lock — perhaps halfway through
//! writing a multi-word value — the next locker gets the lock family's one acquire error,
//! [`AcquireError::OwnerDied`](crate::sync::AcquireError::OwnerDied), which **carries the
//! guard** (std's `PoisonError` shape): the data may be half-written; repair it, call
//! [`ValueGuard::mark_consistent`] and carry on. Unlocking without marking leaves the lock
//! poisoned — every later locker is told `OwnerDied`, with the guard — until somebody marks
//! it or calls [`Lock::clear_poison`](crate::Lock::clear_poison) on
//! [`Value::get_lock`]; with a strict lock ([`Value::with_lock`] and
//! [`LockOptions::strict_recovery`](crate::sync::LockOptions::strict_recovery)) it becomes
//! [`NotRecoverable`](crate::sync::AcquireError::NotRecoverable) for good (see the
//! [`Lock`](crate::Lock) docs). Python has no counterpart (a dead holder's lock stays locked
//! for ever).
//!
//! `RawValue`/`RawArray` (Python's `lock=False`) have no lock: their `get`/`set` copy the
//! value in word-sized atomic pieces (Acquire loads, Release stores), so concurrent use is
//! never undefined behaviour — but a value wider than one word may be read *torn* (half old,
//! half new), and there is no read-modify-write. Use [`AtomicValue`] for counters and flags.
//!
//! A [`ValueGuard`] lends the data in place (`&T` / `&mut T` into shared memory): safe
//! against buggy peers, which go through the lock, but not against a hostile process that
//! writes the memory without it (as with [`Queue::get_ref`](crate::Queue::get_ref)).
//! [`Value::get`] and [`Value::set`] copy through atomics and stay sound even then.
//!
//! # Example
//!
//! ```
//! use mproc::{Process, Value};
//! use std::time::Duration;
//!
//! let counter = Value::new(0u64)?;
//! let mut child = Process::new(
//!     |(c,): (Value<u64>,)| {
//!         for _ in 0..100 {
//!             *c.lock().expect("lock") += 1; // read-modify-write under the lock
//!         }
//!     },
//!     (counter.clone(),),
//! );
//! child.start()?;
//! for _ in 0..100 {
//!     counter.update(|v| *v += 1).expect("lock");
//! }
//! child.join_timeout(Duration::from_secs(10))?;
//! assert_eq!(counter.get().expect("lock"), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(unsafe_code)]

mod array;
mod atomic;
mod locked;
pub(crate) mod sync;
mod value;

use std::collections::HashSet;

use mproc_core::shared::{SharedBytes, shared_at};
use std::sync::{Mutex, OnceLock};

pub use array::{Array, ArrayGuard, RawArray};
pub use atomic::{AtomicInteger, AtomicPrimitive, AtomicValue};
pub use value::{RawValue, Value, ValueGuard};

#[allow(unused_imports)] // for doc links
use crate::storage::object::OpenError;
use sync::{AtomicU16, AtomicU32, AtomicU64, Ordering};

/// Plain old data that may live in shared memory: [`Value<T>`], [`Array<T>`],
/// [`RawValue<T>`], [`RawArray<T>`].
///
/// Implemented for the integer and float types (not `usize`/`isize`, whose width is not
/// fixed; not `bool`/`char`, which have invalid bit patterns) and for arrays of
/// `Shareable` types. Implement it for your own `#[repr(C)]` structs with an `unsafe impl`.
///
/// # Safety
///
/// Implementers guarantee that the type:
/// * is valid for **every** bit pattern of its size (a peer may write any bytes);
/// * has **no padding** bytes (values are copied byte-wise into shared memory, and padding is
///   uninitialised);
/// * has a fixed layout, the same in every process using it: a primitive, an array, or a
///   `#[repr(C)]` / `#[repr(transparent)]` struct whose fields are all `Shareable`;
/// * holds no pointers, references or process-local handles (they would mean nothing in
///   another process) and needs no `Drop`;
/// * has an alignment of at most 4096 bytes.
///
/// A type that is `bytemuck::Pod` meets every point.
///
/// # Example
///
/// ```
/// use mproc::shared::Shareable;
///
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, Default, PartialEq)]
/// struct Point {
///     x: f64,
///     y: f64,
/// }
/// // SAFETY: `repr(C)`, two `f64`s (any bits are valid), no padding, no pointers.
/// unsafe impl Shareable for Point {}
///
/// let p = mproc::Value::new(Point { x: 1.0, y: 2.0 })?;
/// p.lock().expect("lock").y = 3.0;
/// assert_eq!(p.get().expect("lock"), Point { x: 1.0, y: 3.0 });
/// # Ok::<(), mproc::CreateError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory: it is not `Shareable`",
    label = "not `Shareable`",
    note = "`Value` and `Array` hold plain, pointer-free `Copy` data: integers, floats, arrays of them, or a `#[repr(C)]` struct of such fields with `unsafe impl mproc::shared::Shareable` (see its safety rules)",
    note = "for a `String`, a `Vec` or any other owning type, send it through a `Queue` or a `Connection` instead"
)]
pub unsafe trait Shareable: Copy + Send + Sync + 'static {}

macro_rules! shareable {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive number: every bit pattern is valid, no padding, no pointers.
        unsafe impl Shareable for $t {}
    )* };
}
shareable!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

// SAFETY: an array of `Shareable`s has no padding between elements (size is a multiple of
// alignment) and inherits every other property from `T`.
unsafe impl<T: Shareable, const N: usize> Shareable for [T; N] {}

/// The type tag of a shared `T` for object `what`: name, size and alignment, interned (the
/// pool and object layers take `&'static str` tags; one leaked string per distinct type).
pub(crate) fn tag_of<T>(what: &str) -> &'static str {
    intern(format!(
        "{what}<{}>/v1/{}/{}",
        std::any::type_name::<T>(),
        size_of::<T>(),
        align_of::<T>()
    ))
}

/// The Rust name of `what<T>` for errors, interned.
pub(crate) fn name_of<T>(what: &str) -> &'static str {
    intern(format!("{what}<{}>", std::any::type_name::<T>()))
}

fn intern(s: String) -> &'static str {
    static TABLE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&found) = table.get(s.as_str()) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    table.insert(leaked);
    leaked
}

/// Width of the atomic pieces `T` is copied in: its alignment, at most 8.
fn piece<T>() -> usize {
    align_of::<T>().min(8)
}

/// Checks that `bytes` can hold a `T` at its start: long enough and aligned.
fn check_fits<T>(bytes: &SharedBytes) {
    assert!(
        bytes.len() >= size_of::<T>() && (bytes.as_ptr() as usize).is_multiple_of(align_of::<T>()),
        "shared state of {} bytes cannot hold a {}-byte value",
        bytes.len(),
        size_of::<T>()
    );
}

/// Copies a `T` out of the start of `src` in atomic pieces of its alignment (at most 8;
/// `order` per piece: Acquire or Relaxed), so a peer writing meanwhile changes the value,
/// never makes reading it undefined. Not [`copy_from_shared`](mproc_core::shared::copy_from_shared):
/// the pieces carry the caller's ordering.
///
/// # Panics
///
/// If `src` is shorter than a `T` or not aligned for it.
pub(crate) fn load<T: Shareable>(src: &SharedBytes, order: Ordering) -> T {
    check_fits::<T>(src);
    let mut out = std::mem::MaybeUninit::<T>::uninit();
    let dst = out.as_mut_ptr().cast::<u8>();
    let w = piece::<T>();
    let at = |i: usize| -> [u8; 8] {
        // `i + w <= size_of::<T>() <= src.len()` (the size is a multiple of the alignment,
        // hence of `w`), and `src + i` is `w`-aligned: `shared_at` cannot fail.
        let fits = "a piece inside an aligned T";
        let mut b = [0u8; 8];
        match w {
            8 => b.copy_from_slice(
                &shared_at::<AtomicU64>(src, i)
                    .expect(fits)
                    .load(order)
                    .to_ne_bytes(),
            ),
            4 => b[..4].copy_from_slice(
                &shared_at::<AtomicU32>(src, i)
                    .expect(fits)
                    .load(order)
                    .to_ne_bytes(),
            ),
            2 => b[..2].copy_from_slice(
                &shared_at::<AtomicU16>(src, i)
                    .expect(fits)
                    .load(order)
                    .to_ne_bytes(),
            ),
            _ => b[0] = src[i].load(order),
        }
        b
    };
    let mut i = 0;
    while i < size_of::<T>() {
        let piece = at(i);
        // SAFETY: `i + w <= size_of::<T>()`, so `dst + i .. + w` lies inside `out`.
        unsafe { dst.add(i).copy_from_nonoverlapping(piece.as_ptr(), w) };
        i += w;
    }
    // SAFETY: every byte was written above, and `T: Shareable` is valid for any bytes.
    unsafe { out.assume_init() }
}

/// Copies `value` into the start of `dst` in atomic pieces (`order` per piece: Release or
/// Relaxed).
///
/// # Panics
///
/// If `dst` is shorter than a `T` or not aligned for it.
pub(crate) fn store<T: Shareable>(dst: &SharedBytes, value: T, order: Ordering) {
    check_fits::<T>(dst);
    // SAFETY: `value` is a live `T` for this whole function, and has no padding
    // (`Shareable`), so all of its `size_of::<T>()` bytes are initialised.
    let src =
        unsafe { std::slice::from_raw_parts((&raw const value).cast::<u8>(), size_of::<T>()) };
    let w = piece::<T>();
    let fits = "a piece inside an aligned T";
    for (i, s) in src.chunks_exact(w).enumerate().map(|(k, s)| (k * w, s)) {
        // As in `load`: every piece is in bounds and aligned.
        match w {
            8 => shared_at::<AtomicU64>(dst, i)
                .expect(fits)
                .store(u64::from_ne_bytes(s.try_into().expect("8 bytes")), order),
            4 => shared_at::<AtomicU32>(dst, i)
                .expect(fits)
                .store(u32::from_ne_bytes(s.try_into().expect("4 bytes")), order),
            2 => shared_at::<AtomicU16>(dst, i)
                .expect(fits)
                .store(u16::from_ne_bytes(s.try_into().expect("2 bytes")), order),
            _ => dst[i].store(s[0], order),
        }
    }
}
