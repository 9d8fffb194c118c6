//! State in shared memory: the one audited way to look at bytes another process may write.
//!
//! Memory in a segment is written by peers that this process does not control: an honest
//! peer follows the protocol (a slot it does not hold, it does not touch), a crashed one may
//! have stopped half-way, and a buggy or hostile one may write anything at any time. Two
//! things follow, and this module is where each is done once:
//!
//! * **State read in place** (lock words, ring headers, holder tables) must be a type for
//!   which *every* bit pattern is a valid value and *every* access is atomic: a
//!   [`SharedState`]. Then a peer writing anything can make the state wrong (which the layers
//!   above detect: out-of-range indices, unknown states) but never undefined. [`shared_at`]
//!   is the one safe way to turn a region's bytes into a `&T` of such a type: it checks
//!   bounds and alignment, and the trait guarantees the rest.
//! * **Payload bytes** (messages) are copied out with [`copy_from_shared`], which reads
//!   through relaxed atomic loads, never with `memcpy`. A shared region is represented as
//!   `&[AtomicU8]` ([`SharedBytes`]), never as `&[u8]`: a `&[u8]` promises the compiler that
//!   nobody writes the bytes while it lives, a promise a peer process can break.
//!
//! # Why atomics and not `memcpy` or volatile
//!
//! A plain read (`copy_from_slice`, `ptr::copy_nonoverlapping`: LLVM's `memcpy`) of memory
//! another thread or process writes at the same time is a data race, and a data race is
//! undefined behaviour: the compiler may read a byte twice and act on two different values
//! (a length checked, then re-read for the copy), or assume the bytes equal what it last
//! saw. Relaxed atomic loads cannot race (a racing atomic load returns *some* value that was
//! written, and is emitted exactly once), and on every target mproc supports they compile
//! to ordinary `mov`s. Volatile reads would also be emitted exactly once, but Rust does not
//! define a volatile read that races with a write as free of undefined behaviour; atomics
//! are the only tool the language blesses for it. This is the shape of Rust's proposed
//! `AtomicPerByte` (RFC 3301) and of the `atomic-memcpy` crate: per-byte atomic semantics,
//! implemented a word at a time where alignment allows.
//!
//! Relaxed is enough: a copy is always preceded by the Acquire that handed the bytes to the
//! reader (a ring slot's state word, a lock), which orders the honest writer's stores before
//! it; the pieces need no order among themselves. If a hostile writer changes the bytes
//! during the copy the result is a mix of old and new bytes, which the caller validates on
//! its private copy (an rkyv archive is checked after the copy, never in place).
//!
//! Atomics of different sizes over the same bytes (a peer writing byte-wise, this reader
//! loading words) are outside what Rust's memory model describes for a *single* program;
//! across processes there is no single program, and what is guaranteed is what the hardware
//! and the compiler give each load: it happens once and yields bytes. That is the whole
//! point: no assumption the compiler makes about the bytes can be broken by the peer.
//!
//! # Loom
//!
//! loom's atomics are not layout-compatible with the integers they model, so nothing may
//! ever reinterpret raw bytes as them: under `--cfg mproc_loom`, [`shared_at`] is compiled
//! out (the lower crates build their headers with `new()` there, see DESIGN.md, "Loom,
//! concretely"), and the lower crates' `SharedState` impls with it. [`copy_from_shared`]
//! stays: it uses `core`'s atomics, which are layout-compatible everywhere.
#![allow(clippy::disallowed_types)] // core's atomics, deliberately: see "Loom" above.
#![allow(unsafe_code)]

use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
pub use core::sync::atomic::AtomicU8;
use core::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU16, AtomicU32, AtomicU64,
    AtomicUsize, Ordering,
};

/// Bytes in shared memory that a peer may write at any time: read them with
/// [`copy_from_shared`] (or one atomic load per byte), never as a `&[u8]`.
pub type SharedBytes = [AtomicU8];

/// A type that may be read in place in shared memory while peers write it.
///
/// Implement it only for `#[repr(C)]` (or `#[repr(transparent)]`) types whose fields are
/// all atomics (`core`'s, never loom's), arrays of them, other `SharedState` types, or
/// zero-sized markers such as `PhantomData<fn() -> W>`.
///
/// # Safety
///
/// Implementers guarantee that the type:
/// * is valid for **every** bit pattern of its size (a peer may write any bytes, including
///   into padding, so a `bool`, an enum, a reference, a `NonZero` or a loom atomic is never
///   allowed in it);
/// * is accessed **only through atomics** (its fields have interior mutability, so a
///   `&Self` over memory another process writes makes no promise that the writes break);
/// * is `Sync` (required by the trait) and has no `Drop` that would run on shared memory
///   (a `&Self` from [`shared_at`] is never dropped anyway);
/// * has the same layout in every process that maps the memory (`#[repr(C)]`, fixed-width
///   fields: no `usize` in state that a 32-bit and a 64-bit process could share).
///
/// Under `--cfg mproc_loom` the lower crates' types hold loom atomics and do not implement
/// it (see the module docs).
pub unsafe trait SharedState: Sync {}

macro_rules! shared_atomics {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: a `core` atomic integer: the size and validity of its integer (every bit
        // pattern valid), interior mutability, `Sync`.
        unsafe impl SharedState for $t {}
    )* };
}
shared_atomics!(
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicUsize,
    AtomicIsize,
);

// `AtomicBool` is deliberately not `SharedState`: a byte other than 0 or 1 is not a valid
// `bool`, and `AtomicBool::load` would produce one. Store flags in an `AtomicU8`/`AtomicU32`.

// SAFETY: an array of `SharedState` values has no padding between elements (size is a
// multiple of alignment) and inherits every property from `T`.
unsafe impl<T: SharedState, const N: usize> SharedState for [T; N] {}

// SAFETY: zero-sized, so it has no bytes a peer could write; `Sync` for any `T` because it
// holds no `T`.
unsafe impl<T: ?Sized> SharedState for core::marker::PhantomData<fn() -> T> {}

/// Why [`shared_at`] refused to lend a `T` at an offset of a region. Python raises
/// `ValueError` for the same mistakes (`ctypes.Structure.from_buffer(buf, offset)`:
/// "Buffer size too small").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedLayoutError {
    /// `offset + size` lies past the end of the region (or overflows).
    OutOfBounds {
        /// The offset asked for.
        offset: usize,
        /// The size of the type asked for.
        size: usize,
        /// The region's length.
        len: usize,
    },
    /// The address `offset` bytes into the region is not aligned for the type.
    Misaligned {
        /// The offset asked for.
        offset: usize,
        /// The alignment the type needs.
        align: usize,
    },
}

impl fmt::Display for SharedLayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SharedLayoutError::OutOfBounds { offset, size, len } => write!(
                f,
                "{size} bytes at offset {offset} do not fit a region of {len} bytes"
            ),
            SharedLayoutError::Misaligned { offset, align } => {
                write!(f, "offset {offset} is not {align}-byte aligned")
            }
        }
    }
}

impl core::error::Error for SharedLayoutError {}

/// The `T` at `offset` bytes into `region`, after checking that it fits and is aligned.
///
/// This is the one safe reinterpretation of shared bytes: `region` is already a shared
/// reference to atomics (so nothing assumes the bytes are stable), and [`SharedState`]
/// guarantees that `T` is atomics too and valid for whatever a peer wrote. Compiled out
/// under `--cfg mproc_loom` (see the module docs).
///
/// # Errors
///
/// [`SharedLayoutError::OutOfBounds`] if `offset + size_of::<T>()` passes the end of
/// `region`, [`SharedLayoutError::Misaligned`] if the address is not aligned for `T`.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
/// use mproc_core::shared::{SharedLayoutError, shared_at};
///
/// let words = [const { AtomicU32::new(0) }; 4];
/// // SAFETY: 16 bytes of atomics, alive while `bytes` is; `AtomicU8` has alignment 1.
/// let bytes: &[AtomicU8] = unsafe { core::slice::from_raw_parts(words.as_ptr().cast(), 16) };
/// let w: &AtomicU32 = shared_at(bytes, 4)?;
/// w.store(7, Ordering::Relaxed);
/// assert_eq!(words[1].load(Ordering::Relaxed), 7);
/// assert_eq!(
///     shared_at::<AtomicU32>(bytes, 2).unwrap_err(),
///     SharedLayoutError::Misaligned { offset: 2, align: 4 }
/// );
/// assert!(matches!(
///     shared_at::<AtomicU32>(bytes, 16),
///     Err(SharedLayoutError::OutOfBounds { .. })
/// ));
/// # Ok::<(), SharedLayoutError>(())
/// ```
#[cfg(not(mproc_loom))]
#[inline]
pub fn shared_at<T: SharedState>(
    region: &SharedBytes,
    offset: usize,
) -> Result<&T, SharedLayoutError> {
    let size = size_of::<T>();
    let len = region.len();
    if offset.checked_add(size).is_none_or(|end| end > len) {
        return Err(SharedLayoutError::OutOfBounds { offset, size, len });
    }
    // `wrapping_add` and an address, not `add`: the checks come first. In bounds (checked).
    let p = region.as_ptr().cast::<u8>().wrapping_add(offset);
    let align = align_of::<T>();
    if !(p as usize).is_multiple_of(align) {
        return Err(SharedLayoutError::Misaligned { offset, align });
    }
    // SAFETY:
    // * `offset..offset + size` lies inside `region` (checked), so the pointer is in bounds
    //   of one allocation and carries `region`'s provenance for all of `size` bytes;
    // * it is aligned for `T` (checked);
    // * the bytes are initialised shared memory made of `AtomicU8`s (interior mutability),
    //   and `T: SharedState` is interior-mutable too and valid for any bit pattern, so the
    //   shared reference asserts nothing a concurrent atomic write can break;
    // * the lifetime is `region`'s, which keeps the memory alive.
    Ok(unsafe { &*p.cast::<T>() })
}

/// The shared bytes `ptr..ptr + len`.
///
/// # Safety
///
/// `ptr` must be valid for reads of `len` bytes for `'a` (inside a mapping the caller keeps
/// alive that long), and every access to those bytes by this process during `'a` must be
/// atomic or through other `&[AtomicU8]`/[`SharedState`] views (peers in other processes may
/// do anything: that is what this type is for).
#[inline]
pub unsafe fn shared_bytes<'a>(ptr: NonNull<u8>, len: usize) -> &'a SharedBytes {
    // SAFETY: delegated to the caller (valid, alive for 'a, only accessed atomically);
    // `AtomicU8` has the size and alignment of `u8`.
    unsafe { core::slice::from_raw_parts(ptr.as_ptr().cast::<AtomicU8>().cast_const(), len) }
}

/// Copies `src`, bytes a peer may be writing, into private memory: the one payload copy.
///
/// Reads the whole words in the middle of `src` with relaxed `AtomicU64` loads and the
/// unaligned ends with relaxed `AtomicU8` loads, so a concurrent writer can change the
/// *result* (the caller validates the private copy) but never cause undefined behaviour.
/// See the module docs for why atomics, and why Relaxed: the Acquire that handed the bytes
/// to the caller orders an honest writer's stores before the copy.
///
/// Cost: one 8-byte load and one store per word, with no setup for short runs, which the
/// compiler may not widen into vector loads as it does for `memcpy`. Counted with callgrind
/// (mproc's `hot` bench, `Queue<u64>` put + get in one thread): 676 instructions per pair
/// with this copy on the get path, 668 with the plain `memcpy` it replaced.
///
/// # Panics
///
/// If `dst.len() != src.len()` (as `<[u8]>::copy_from_slice`).
///
/// # Examples
///
/// ```
/// use core::sync::atomic::AtomicU8;
/// use mproc_core::shared::copy_from_shared;
///
/// let shared: Vec<AtomicU8> = (0..100u8).map(AtomicU8::new).collect();
/// let mut private = [0u8; 37];
/// copy_from_shared(&mut private, &shared[3..40]);
/// assert_eq!(private[0], 3);
/// assert_eq!(private[36], 39);
/// ```
#[inline]
pub fn copy_from_shared(dst: &mut [u8], src: &SharedBytes) {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and `copy_into` writes only
    // initialised bytes, so `dst` stays initialised.
    let dst = unsafe { &mut *(core::ptr::from_mut(dst) as *mut [MaybeUninit<u8>]) };
    copy_into(dst, src);
}

/// [`copy_from_shared`] into memory that need not be initialised (a buffer's spare
/// capacity: no zero-fill before the copy); returns `dst`, now initialised.
///
/// # Panics
///
/// If `dst.len() != src.len()`.
#[inline]
pub fn copy_from_shared_uninit<'a>(
    dst: &'a mut [MaybeUninit<u8>],
    src: &SharedBytes,
) -> &'a mut [u8] {
    copy_into(dst, src);
    // SAFETY: `copy_into` wrote every byte of `dst` (the lengths are equal, checked there).
    unsafe { &mut *(core::ptr::from_mut(dst) as *mut [u8]) }
}

/// The one copy loop behind [`copy_from_shared`] and [`copy_from_shared_uninit`]: writes
/// every byte of `dst`, only ever with initialised values.
#[inline]
fn copy_into(dst: &mut [MaybeUninit<u8>], src: &SharedBytes) {
    assert_eq!(
        dst.len(),
        src.len(),
        "copy_from_shared: destination and source lengths differ"
    );
    const WORD: usize = size_of::<u64>();
    let n = src.len();
    // Raw pointers derived from the two slices (their provenance covers every byte), walked
    // with the index checked against `n` by each loop's condition: short messages, the
    // common case, pay no slicing or iterator setup.
    let from = src.as_ptr();
    let to = dst.as_mut_ptr();
    let mut i = 0;
    // Bytes before the first 8-aligned source address (all of them if the run is short).
    while i < n && !(from as usize + i).is_multiple_of(WORD) {
        // SAFETY: `i < n`: in bounds of both slices (equal lengths, asserted above).
        unsafe {
            to.add(i)
                .write(MaybeUninit::new((*from.add(i)).load(Ordering::Relaxed)))
        };
        i += 1;
    }
    while i + WORD <= n {
        // SAFETY: `from + i` is 8-aligned (the loop above stopped there, and `i` grows by
        // whole words) and starts `WORD` bytes in bounds of `src` (`i + WORD <= n`), so it is
        // one aligned `AtomicU64` over the same memory; `AtomicU64` has the size of `u64`,
        // every bit pattern valid, and the bytes are only ever read atomically here.
        // Relaxed: see the function docs (ordered by the caller's Acquire).
        let word = unsafe { (*from.add(i).cast::<AtomicU64>()).load(Ordering::Relaxed) };
        // SAFETY: `i + WORD <= n`: the 8 bytes are in bounds of `dst`; an unaligned write of
        // plain bytes into `MaybeUninit<u8>`s.
        unsafe {
            to.add(i)
                .cast::<[u8; WORD]>()
                .write_unaligned(word.to_ne_bytes());
        }
        i += WORD;
    }
    while i < n {
        // SAFETY: `i < n`, as in the first loop.
        unsafe {
            to.add(i)
                .write(MaybeUninit::new((*from.add(i)).load(Ordering::Relaxed)))
        };
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uninit_copy_fills_spare_capacity_exactly() {
        let data: std::vec::Vec<AtomicU8> = (0..100u32).map(|i| AtomicU8::new(i as u8)).collect();
        for start in 0..9 {
            for len in 0..80 {
                let mut buf: std::vec::Vec<u8> = std::vec::Vec::with_capacity(len);
                let out = copy_from_shared_uninit(
                    &mut buf.spare_capacity_mut()[..len],
                    &data[start..start + len],
                );
                let want: std::vec::Vec<u8> = (start..start + len).map(|i| i as u8).collect();
                assert_eq!(out, &want[..], "start {start}, len {len}");
            }
        }
    }

    #[test]
    fn copy_matches_a_plain_copy_for_every_alignment_and_length() {
        let data: std::vec::Vec<AtomicU8> = (0..256u32)
            .map(|i| AtomicU8::new((i * 7 + 3) as u8))
            .collect();
        let plain: std::vec::Vec<u8> = data.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        for start in 0..16 {
            for len in 0..=200 {
                let mut out = std::vec![0xEEu8; len];
                copy_from_shared(&mut out, &data[start..start + len]);
                assert_eq!(out, plain[start..start + len], "start {start} len {len}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn copy_refuses_different_lengths() {
        let data = [const { AtomicU8::new(0) }; 4];
        copy_from_shared(&mut [0u8; 3], &data);
    }
}
