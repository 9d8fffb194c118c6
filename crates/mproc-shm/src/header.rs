//! The segment header at offset 0, and the participant table that follows it.
//!
//! ```text
//! offset  size  field                 (all little-endian native atomics)
//!      0     8  magic                 b"MPROCSHM"
//!      8     4  version               LAYOUT_VERSION
//!     12     4  init_state            0 = being created, READY = published
//!     16     8  total_size            bytes, a multiple of the page size
//!     24     8  fingerprint           set by the layer above (kind + message type)
//!     32     4  creator_pid           pid of the creator, in its pid namespace (informative)
//!     36     4  participant_capacity  entries in the participant table
//!     40     8  region_offset         start of the user region
//!     48     8  region_len            length of the user region
//!     56    72  reserved (zero)
//!    128  16*n  participant table     n = participant_capacity
//!      …        user region           aligned to REGION_ALIGN (128)
//! ```
//!
//! Two ranges of the file's byte offsets are reserved for OFD locks (`F_OFD_SETLK`), not
//! storage (locks past the end of a file are legal and take no space):
//!
//! ```text
//! 2^40 - 1          creator lock (CREATOR_LOCK): write-held by the creator from right after
//!                   it made the file until it publishes READY, then released
//! 2^40 .. 2^40+n    participant i's liveness lock at LOCK_BASE + i (see `participant`)
//! ```
//!
//! So a file whose `init_state` is not READY and whose creator lock nobody holds is *stale*:
//! its creator died (or gave up) while creating it. See [`crate::name::probe`].
//!
//! Every field is an atomic, because another process may write the bytes at any time;
//! the creator writes them before publishing `init_state = READY` with Release, and an
//! opener reads them after observing READY with Acquire.

use crate::error::SegmentError;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// `b"MPROCSHM"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"MPROCSHM");
/// Layout version written and accepted by this build.
pub const LAYOUT_VERSION: u32 = 1;
/// `init_state` once the creator has finished.
pub(crate) const READY: u32 = 0x5245_4459; // "READ" + "Y", any value but 0
/// Size of the header in bytes.
pub const HEADER_SIZE: u64 = 128;
/// Size of one participant-table entry in bytes.
pub(crate) const ENTRY_SIZE: u64 = 16;
/// Alignment of the user region, relative to the segment base (which is page-aligned in
/// every process), so also its alignment in memory.
pub const REGION_ALIGN: u64 = 128;
/// Most participant entries a segment can have (the index lives in the low 12 bits of a
/// [`ParticipantId`](crate::ParticipantId)).
pub const MAX_PARTICIPANTS: u32 = crate::ParticipantId::MAX_INDEX + 1;
/// Default number of participant entries.
pub const DEFAULT_PARTICIPANTS: u32 = 256;
/// Byte offset of the creator lock in a segment's file (an OFD lock, not storage): the
/// creator write-locks it right after making the file and releases it once the header is
/// READY. Just below the participants' liveness locks ([`LOCK_BASE`]), so the two never
/// overlap, and far beyond any segment's data.
///
/// [`LOCK_BASE`]: crate::participant::LOCK_BASE
pub const CREATOR_LOCK: u64 = crate::participant::LOCK_BASE - 1;

/// The header, overlaid on offset 0 of the mapping.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) init_state: AtomicU32,
    pub(crate) total_size: AtomicU64,
    pub(crate) fingerprint: AtomicU64,
    pub(crate) creator_pid: AtomicU32,
    pub(crate) participant_capacity: AtomicU32,
    pub(crate) region_offset: AtomicU64,
    pub(crate) region_len: AtomicU64,
    _reserved: [AtomicU64; 9],
}

const _: () = assert!(size_of::<Header>() as u64 == HEADER_SIZE);

/// One participant-table entry. Written only by the process holding the entry's OFD lock.
#[repr(C)]
pub(crate) struct Entry {
    /// Generation of the current (or last) owner; bumped by each new owner. 0 = never used.
    pub(crate) generation: AtomicU32,
    /// pid of the owner in its own namespace (informative only; liveness is the lock).
    pub(crate) pid: AtomicU32,
    _reserved: AtomicU64,
}

const _: () = assert!(size_of::<Entry>() as u64 == ENTRY_SIZE);

/// Where the user region starts for a table of `capacity` entries.
pub(crate) fn region_offset(capacity: u32) -> u64 {
    (HEADER_SIZE + u64::from(capacity) * ENTRY_SIZE).next_multiple_of(REGION_ALIGN)
}

/// The layout fields of a header, validated and copied into the process-local handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) total_size: u64,
    pub(crate) fingerprint: u64,
    pub(crate) creator_pid: u32,
    pub(crate) participant_capacity: u32,
    pub(crate) region_offset: u64,
    pub(crate) region_len: u64,
}

impl Layout {
    /// The layout of a new segment whose user region holds at least `min_region` bytes.
    pub(crate) fn new(
        min_region: u64,
        capacity: u32,
        fingerprint: u64,
        page: u64,
    ) -> Result<Layout, SegmentError> {
        if capacity == 0 || capacity > MAX_PARTICIPANTS {
            return Err(SegmentError::InvalidOptions {
                reason: "participant capacity must be between 1 and 4096",
            });
        }
        let region_offset = region_offset(capacity);
        let total_size = region_offset
            .checked_add(min_region)
            .and_then(|t| t.checked_next_multiple_of(page))
            .filter(|&t| t <= i64::MAX as u64 && usize::try_from(t).is_ok())
            .ok_or(SegmentError::InvalidOptions {
                reason: "segment length too large",
            })?;
        Ok(Layout {
            total_size,
            fingerprint,
            creator_pid: crate::sys::getpid(),
            participant_capacity: capacity,
            region_offset,
            region_len: total_size - region_offset,
        })
    }
}

/// Writes a fresh header into `h`, leaving `init_state` as it is (0: being created);
/// [`publish`] makes it READY.
pub(crate) fn write_fields(h: &Header, layout: &Layout) {
    // Relaxed: these plain fields are published by the Release store of `init_state`
    // in `publish`; openers read them only after an Acquire load sees READY.
    h.magic.store(MAGIC, Ordering::Relaxed);
    h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
    h.total_size.store(layout.total_size, Ordering::Relaxed);
    h.fingerprint.store(layout.fingerprint, Ordering::Relaxed);
    h.creator_pid.store(layout.creator_pid, Ordering::Relaxed);
    h.participant_capacity
        .store(layout.participant_capacity, Ordering::Relaxed);
    h.region_offset
        .store(layout.region_offset, Ordering::Relaxed);
    h.region_len.store(layout.region_len, Ordering::Relaxed);
}

/// Publishes a header written by [`write_fields`] (and whatever the creator wrote into the
/// segment after it) as READY.
pub(crate) fn publish(h: &Header) {
    // SYNC POINT (publish): Release pairs with the Acquire load in `poll_ready`.
    h.init_state.store(READY, Ordering::Release);
}

/// What one look at a header found.
#[derive(Debug)]
pub(crate) enum Poll {
    /// Published; the layout still needs `validate`.
    Ready,
    /// Not published yet (magic still zero, or state not READY): wait and look again.
    Pending,
}

/// Looks at `header` once.
///
/// # Errors
///
/// [`SegmentError::NotMproc`] when the magic is neither zero (not yet written) nor ours.
pub(crate) fn poll_ready(header: &Header) -> Result<Poll, SegmentError> {
    // SYNC POINT (observe): Acquire pairs with the Release store in `initialise`, so the
    // fields read by `validate` are the creator's.
    let state = header.init_state.load(Ordering::Acquire);
    // Relaxed: a hint only, to refuse a foreign file without waiting; it is re-read in
    // `validate` after READY was observed.
    let magic = header.magic.load(Ordering::Relaxed);
    if magic != 0 && magic != MAGIC {
        return Err(SegmentError::NotMproc {
            found: magic,
            expected: MAGIC,
        });
    }
    if state == READY && magic == MAGIC {
        Ok(Poll::Ready)
    } else {
        Ok(Poll::Pending)
    }
}

/// Checks every field of a READY header against `file_len` and the expected fingerprint,
/// and returns the validated layout. Pure over its inputs (the fuzz target drives it).
///
/// # Errors
///
/// One [`SegmentError`] variant per mismatch.
pub(crate) fn validate(
    header: &Header,
    file_len: u64,
    expected_fingerprint: u64,
    page: u64,
) -> Result<Layout, SegmentError> {
    // Relaxed: these loads follow the Acquire load of READY in `poll_ready`. Every value is
    // untrusted and checked below; a peer rewriting them later cannot affect the copy.
    let magic = header.magic.load(Ordering::Relaxed);
    if magic != MAGIC {
        return Err(SegmentError::NotMproc {
            found: magic,
            expected: MAGIC,
        });
    }
    let version = header.version.load(Ordering::Relaxed);
    if version != LAYOUT_VERSION {
        return Err(SegmentError::VersionMismatch {
            found: version,
            expected: LAYOUT_VERSION,
        });
    }
    let total_size = header.total_size.load(Ordering::Relaxed);
    let capacity = header.participant_capacity.load(Ordering::Relaxed);
    let region_offset = header.region_offset.load(Ordering::Relaxed);
    let region_len = header.region_len.load(Ordering::Relaxed);
    let corrupt = |field, value| Err(SegmentError::CorruptHeader { field, value });
    if total_size < HEADER_SIZE
        || !total_size.is_multiple_of(page)
        || total_size > i64::MAX as u64
        || usize::try_from(total_size).is_err()
    {
        return corrupt("total_size", total_size);
    }
    if file_len < total_size {
        return Err(SegmentError::Truncated {
            file_len,
            header_len: total_size,
        });
    }
    if capacity == 0 || capacity > MAX_PARTICIPANTS {
        return corrupt("participant_capacity", u64::from(capacity));
    }
    if region_offset != crate::header::region_offset(capacity) || region_offset > total_size {
        return corrupt("region_offset", region_offset);
    }
    if region_len != total_size - region_offset {
        return corrupt("region_len", region_len);
    }
    let fingerprint = header.fingerprint.load(Ordering::Relaxed);
    if fingerprint != expected_fingerprint {
        return Err(SegmentError::FingerprintMismatch {
            found: fingerprint,
            expected: expected_fingerprint,
        });
    }
    Ok(Layout {
        total_size,
        fingerprint,
        creator_pid: header.creator_pid.load(Ordering::Relaxed),
        participant_capacity: capacity,
        region_offset,
        region_len,
    })
}
