//! What every ring's shared header starts with, the errors of `init`/`attach`, and the
//! aligned heap buffer behind in-process rings.
//!
//! Each ring kind has a `#[repr(C)]` header of atomics only (so a peer writing it while we read
//! it is a wrong value, never a data race), followed by its data area at a 128-byte aligned
//! offset. Nothing in a layout is a pointer or a `usize`; positions are `u64`, sizes `u32`.
#![allow(unsafe_code)]
// The in-place helpers serve `init`/`attach`, which loom builds leave out.
#![cfg_attr(mproc_loom, allow(dead_code))]

use core::ptr::NonNull;
use std::alloc::Layout;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Alignment every region handed to `init`/`attach` must have (one x86_64 prefetch pair).
pub const REGION_ALIGN: usize = 128;

/// Layout version; bumped on any change to a header or a slot word (3: MPMC capacities are
/// exact and positions step by laps of the next power of two; 4: each MPMC hint carries a
/// poison flag on its cache line).
pub(crate) const VERSION: u32 = 4;

/// Which ring a region holds, as recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum RingKind {
    /// [`crate::SpscRing`]: fixed-size elements, one producer, one consumer.
    Spsc = 1,
    /// [`crate::RecordRing`]: variable-length records, one writer, one reader.
    Record = 2,
    /// [`crate::MpmcRing`]: slots with claimant-carrying sequence words.
    Mpmc = 3,
}

impl RingKind {
    fn from_u32(v: u32) -> Option<RingKind> {
        match v {
            1 => Some(RingKind::Spsc),
            2 => Some(RingKind::Record),
            3 => Some(RingKind::Mpmc),
            _ => None,
        }
    }
}

/// `"MPRING\0\0"` as a little-endian `u64`; the same for every kind (the kind is its own field).
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"MPRING\0\0");

/// The first 32 bytes of every ring header. Written once by `init`, `magic` last (Release);
/// `attach` loads `magic` first (Acquire) and validates everything else before use.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Common {
    /// [`MAGIC`] once initialised; 0 before.
    pub(crate) magic: AtomicU64,
    /// [`RingKind`] as `u32`.
    pub(crate) kind: AtomicU32,
    /// [`VERSION`].
    pub(crate) version: AtomicU32,
    /// Number of slots (SPSC, MPMC) or bytes (record ring): a power of two for SPSC and the
    /// record ring, any value in range for MPMC (exact, not rounded).
    pub(crate) capacity: AtomicU32,
    /// Bytes per slot (SPSC element size, MPMC payload maximum); 8 for the record ring.
    pub(crate) slot_size: AtomicU32,
    /// `required_size` of the shape when it was initialised.
    pub(crate) total_size: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only, every one validated by `attach` before use; `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for Common {}

impl Common {
    pub(crate) fn new(kind: RingKind, capacity: u32, slot_size: u32, total: u64) -> Common {
        Common {
            magic: AtomicU64::new(0),
            kind: AtomicU32::new(kind as u32),
            version: AtomicU32::new(VERSION),
            capacity: AtomicU32::new(capacity),
            slot_size: AtomicU32::new(slot_size),
            total_size: AtomicU64::new(total),
        }
    }

    /// Publishes the header: everything written before is visible to an `attach` that sees
    /// the magic. Release pairs with the Acquire in [`Common::validate`].
    pub(crate) fn publish(&self) {
        self.magic.store(MAGIC, Ordering::Release);
    }

    /// Validates kind and version and returns `(capacity, slot_size, total_size)` as recorded
    /// (the caller validates those against its own rules).
    pub(crate) fn validate(&self, want: RingKind) -> Result<(u32, u32, u64), AttachError> {
        // Acquire pairs with the Release in `publish`: the other fields are initialised.
        let magic = self.magic.load(Ordering::Acquire);
        if magic == 0 {
            return Err(AttachError::NotInitialised);
        }
        if magic != MAGIC {
            return Err(AttachError::BadMagic(magic));
        }
        // Relaxed: ordered after the magic by the Acquire above; values are validated anyway.
        let kind = self.kind.load(Ordering::Relaxed);
        match RingKind::from_u32(kind) {
            Some(k) if k == want => {}
            Some(found) => {
                return Err(AttachError::WrongKind {
                    expected: want,
                    found,
                });
            }
            None => return Err(AttachError::UnknownKind(kind)),
        }
        let version = self.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(AttachError::VersionMismatch {
                expected: VERSION,
                found: version,
            });
        }
        Ok((
            self.capacity.load(Ordering::Relaxed),
            self.slot_size.load(Ordering::Relaxed),
            self.total_size.load(Ordering::Relaxed),
        ))
    }
}

/// Why a ring could not be laid out (`required_size`, `init`, heap constructors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The capacity is zero, above the kind's maximum, or (SPSC and record rings) not a
    /// power of two.
    #[error("capacity {0} is outside the ring's limits")]
    BadCapacity(u32),
    /// The slot size is zero or above [`MAX_SLOT_SIZE`].
    #[error("slot size {0} is zero or too large")]
    BadSlotSize(u32),
    /// The region is shorter than `required_size`.
    #[error("region of {len} bytes is too small, {needed} needed")]
    RegionTooSmall {
        /// Bytes the shape needs.
        needed: usize,
        /// Bytes given.
        len: usize,
    },
    /// The region does not start on a [`REGION_ALIGN`] boundary.
    #[error("region is not aligned to {REGION_ALIGN} bytes")]
    Misaligned,
}

/// Why `attach` refused a region: one variant per check, so the caller can say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The region does not start on a [`REGION_ALIGN`] boundary.
    #[error("region is not aligned to {REGION_ALIGN} bytes")]
    Misaligned,
    /// The region is too short to hold even the header, or the size the header records.
    #[error("region of {len} bytes is too small, {needed} needed")]
    RegionTooSmall {
        /// Bytes the header says the ring needs (or the header size).
        needed: usize,
        /// Bytes given.
        len: usize,
    },
    /// The magic word is zero: nobody has initialised (or finished initialising) the ring.
    #[error("ring is not initialised")]
    NotInitialised,
    /// The magic word is neither zero nor the ring magic.
    #[error("bad magic {0:#018x}")]
    BadMagic(u64),
    /// The header holds another kind of ring.
    #[error("expected a {expected:?} ring, found a {found:?} ring")]
    WrongKind {
        /// Kind asked for.
        expected: RingKind,
        /// Kind found.
        found: RingKind,
    },
    /// The kind field holds no known kind.
    #[error("unknown ring kind {0}")]
    UnknownKind(u32),
    /// The layout version differs from this build's.
    #[error("layout version {found}, expected {expected}")]
    VersionMismatch {
        /// This build's version.
        expected: u32,
        /// Version found.
        found: u32,
    },
    /// The recorded capacity is outside the kind's limits (see [`LayoutError::BadCapacity`]).
    #[error("recorded capacity {0} is invalid")]
    BadCapacity(u32),
    /// The recorded slot size is invalid.
    #[error("recorded slot size {0} is invalid")]
    BadSlotSize(u32),
    /// The recorded total size differs from what capacity and slot size imply.
    #[error("recorded size {recorded} differs from the computed {computed}")]
    SizeMismatch {
        /// Size in the header.
        recorded: u64,
        /// Size the recorded shape needs.
        computed: u64,
    },
}

/// Largest slot size of any ring (16 MiB): keeps `capacity * slot_size` far from overflow.
pub const MAX_SLOT_SIZE: u32 = 1 << 24;

/// Rounds `n` up to a multiple of `align` (a power of two).
pub(crate) const fn round_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// Checks that `region` is aligned and at least `needed` bytes long.
pub(crate) fn check_region(
    region: NonNull<u8>,
    len: usize,
    needed: usize,
) -> Result<(), LayoutError> {
    if !(region.as_ptr() as usize).is_multiple_of(REGION_ALIGN) {
        return Err(LayoutError::Misaligned);
    }
    if len < needed {
        return Err(LayoutError::RegionTooSmall { needed, len });
    }
    Ok(())
}

/// Checks alignment and that the header itself fits, before any header field is read.
pub(crate) fn check_attach_region(
    region: NonNull<u8>,
    len: usize,
    header: usize,
) -> Result<(), AttachError> {
    if !(region.as_ptr() as usize).is_multiple_of(REGION_ALIGN) {
        return Err(AttachError::Misaligned);
    }
    if len < header {
        return Err(AttachError::RegionTooSmall {
            needed: header,
            len,
        });
    }
    Ok(())
}

/// A zeroed heap allocation aligned to [`REGION_ALIGN`], the backing of in-process rings.
#[derive(Debug)]
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer is plain bytes owned by this value; all shared access goes through the
// rings' atomics and protocols, which are designed for concurrent use.
unsafe impl Send for AlignedBuf {}
// SAFETY: as for `Send`; `&AlignedBuf` only exposes the pointer.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes (at least 1).
    pub(crate) fn zeroed(len: usize) -> AlignedBuf {
        let layout = Layout::from_size_align(len.max(1), REGION_ALIGN)
            .expect("ring size fits a Layout (checked by required_size)");
        // SAFETY: `layout` has a nonzero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        AlignedBuf { ptr, layout }
    }

    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this very layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// What keeps a heap ring's memory alive while handles to it exist.
pub(crate) type Keepalive = Option<std::sync::Arc<dyn core::any::Any + Send + Sync>>;
