//! The memory abstraction: where a ring's header, slot words and bytes live.
//!
//! The algorithms only ever see a [`Mem`]: a pointer to a header `H` built of atomics,
//! optional per-slot control words `C` (an array, or one at the head of each slot, a fixed
//! stride apart), a pointer to the data bytes, and the loom race guards. Two ways to fill it:
//!
//! * **in place** (`init`/`attach` over a caller's region, and heap rings in normal builds):
//!   header, control words and data are all inside one region, at offsets fixed by the
//!   layout; the guards are zero-sized;
//! * **loom** (`--cfg mproc_loom`): loom atomics have their own representation and must be
//!   built with `new()`, so the header and control words are ordinary boxed values, the data
//!   is a separate heap buffer, and the guards are real loom cells. Raw bytes are never cast
//!   to loom types.
#![allow(unsafe_code)]

use core::ptr::NonNull;

use crate::layout::Keepalive;
use crate::sync::DataGuard;

/// Pointers to one ring's parts, plus what keeps a heap ring alive.
pub(crate) struct Mem<H, C = ()> {
    pub(crate) hdr: NonNull<H>,
    pub(crate) ctl: NonNull<C>,
    /// Bytes from one control word to the next: `size_of::<C>()` for an array of them, more
    /// when each sits at the head of its slot (the MPMC ring's interleaved layout).
    pub(crate) ctl_stride: usize,
    pub(crate) data: NonNull<u8>,
    pub(crate) guards: NonNull<DataGuard>,
    /// Number of guards (units) behind `guards`.
    pub(crate) units: usize,
    pub(crate) keep: Keepalive,
}

impl<H, C> Clone for Mem<H, C> {
    fn clone(&self) -> Self {
        Mem {
            hdr: self.hdr,
            ctl: self.ctl,
            ctl_stride: self.ctl_stride,
            data: self.data,
            guards: self.guards,
            units: self.units,
            keep: self.keep.clone(),
        }
    }
}

impl<H, C> core::fmt::Debug for Mem<H, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mem")
            .field("hdr", &self.hdr)
            .field("data", &self.data)
            .field("heap", &self.keep.is_some())
            .finish()
    }
}

// SAFETY: `Mem` is a set of pointers into memory that is only accessed through atomics and
// the rings' claim protocols (which are designed for concurrent use from any thread or
// process); the keepalive is `Send + Sync`. `H` and `C` are made of atomics.
unsafe impl<H: Sync, C: Sync> Send for Mem<H, C> {}
// SAFETY: as for `Send`.
unsafe impl<H: Sync, C: Sync> Sync for Mem<H, C> {}

impl<H, C> Mem<H, C> {
    /// Pointers into one in-place region, control words `ctl_stride` bytes apart; the
    /// guards are zero-sized.
    ///
    /// # Safety
    /// `hdr`, `ctl` and `data` must point into a live region laid out by the ring's `init`,
    /// with a properly aligned `C` every `ctl_stride` bytes from `ctl`, one per slot.
    #[cfg_attr(mproc_loom, allow(dead_code))]
    pub(crate) unsafe fn in_place(
        hdr: NonNull<H>,
        ctl: NonNull<C>,
        ctl_stride: usize,
        data: NonNull<u8>,
        keep: Keepalive,
    ) -> Self {
        Mem {
            hdr,
            ctl,
            ctl_stride,
            data,
            guards: NonNull::dangling(),
            units: usize::MAX,
            keep,
        }
    }

    #[inline]
    pub(crate) fn hdr(&self) -> &H {
        // SAFETY: `hdr` points to an initialised header that lives as long as `self`
        // (the `init`/`attach` safety contract, or the keepalive of a heap ring).
        unsafe { self.hdr.as_ref() }
    }

    /// The control word of slot `i`.
    #[inline]
    pub(crate) fn ctl(&self, i: usize) -> &C {
        // SAFETY: callers pass an index `< capacity` (masked, or checked against the
        // capacity), and the region (or the loom box) holds `capacity` control words,
        // `ctl_stride` bytes apart.
        unsafe { self.ctl.byte_add(i * self.ctl_stride).as_ref() }
    }

    /// The race guard of data unit `i` (zero-sized outside loom).
    #[inline]
    pub(crate) fn guard(&self, i: usize) -> &DataGuard {
        #[cfg(mproc_loom)]
        assert!(i < self.units);
        // SAFETY: in production `DataGuard` is zero-sized, so any aligned non-null pointer
        // is valid; under loom the box holds `units` guards (checked above).
        unsafe { self.guards.add(i).as_ref() }
    }

    /// Guards for units `start..start + n` (indices already masked by the caller).
    pub(crate) fn guards(&self, start: usize, n: usize) -> impl Iterator<Item = &DataGuard> {
        (start..start + n).map(|i| self.guard(i))
    }
}

#[cfg(mproc_loom)]
pub(crate) mod loom_heap {
    //! Heap parts for loom models (see the module docs above).
    use super::*;
    use crate::layout::AlignedBuf;

    struct Parts<H, C> {
        _hdr: Box<H>,
        _ctl: Box<[C]>,
        _data: AlignedBuf,
        _guards: Box<[DataGuard]>,
    }

    /// Builds a [`Mem`] over boxed loom values and a heap data buffer.
    pub(crate) fn build<H, C>(hdr: H, ctl: Vec<C>, data_len: usize, units: usize) -> Mem<H, C>
    where
        H: Send + Sync + 'static,
        C: Send + Sync + 'static,
    {
        let hdr = Box::new(hdr);
        let mut ctl = ctl.into_boxed_slice();
        let data = AlignedBuf::zeroed(data_len);
        let guards: Box<[DataGuard]> = (0..units).map(|_| DataGuard::default()).collect();
        let mem = Mem {
            hdr: NonNull::from(&*hdr),
            ctl: NonNull::new(ctl.as_mut_ptr()).expect("box pointer"),
            ctl_stride: size_of::<C>(),
            data: data.ptr(),
            guards: NonNull::new(guards.as_ptr().cast_mut()).expect("box pointer"),
            units,
            keep: None,
        };
        let parts = Parts {
            _hdr: hdr,
            _ctl: ctl,
            _data: data,
            _guards: guards,
        };
        Mem {
            keep: Some(std::sync::Arc::new(parts)),
            ..mem
        }
    }
}

// The rings keep their shared state consistent across unwinding (claims are finished by
// drop guards), so handles may cross `catch_unwind` boundaries.
impl<H, C> std::panic::UnwindSafe for Mem<H, C> {}
impl<H, C> std::panic::RefUnwindSafe for Mem<H, C> {}
