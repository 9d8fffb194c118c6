//! Errors of segment creation and opening, participant registration and offsets.

use std::io;
use std::time::Duration;

use crate::name::NameError;

/// Why a segment could not be created or opened.
///
/// Python's `multiprocessing.shared_memory.SharedMemory` raises `FileExistsError`,
/// `FileNotFoundError` or `ValueError` for the first few of these; the rest are checks
/// Python does not make.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The segment name was refused.
    #[error("invalid segment name: {0}")]
    InvalidName(#[from] NameError),
    /// A file with this name already exists in `/dev/shm` (creation uses `O_EXCL`).
    /// A symbolic link planted at the name also reports this: it is never followed.
    #[error(
        "shared memory segment {name:?} already exists; pick another name or unlink the old one"
    )]
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// No segment with this name exists.
    #[error("shared memory segment {name:?} does not exist (not created yet, or already unlinked)")]
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The name is a symbolic link; segments are opened with `O_NOFOLLOW`.
    #[error("shared memory segment {name:?} is a symbolic link, which is never followed")]
    Symlink {
        /// The segment name.
        name: String,
    },
    /// The file is not a regular file (a directory, a device, ...).
    #[error("the file is not a regular file, so it cannot be an mproc segment")]
    NotRegularFile,
    /// The file is smaller than a segment header, so it cannot be an mproc segment.
    #[error("the file is {len} bytes long, smaller than an mproc segment header ({min} bytes)")]
    TooSmall {
        /// The file's length.
        len: u64,
        /// The smallest possible segment.
        min: u64,
    },
    /// The header does not start with the mproc magic number.
    #[error("not an mproc segment (magic number {found:#018x}, expected {expected:#018x})")]
    NotMproc {
        /// The value found at offset 0.
        found: u64,
        /// The mproc magic.
        expected: u64,
    },
    /// The segment was made by a build of mproc with another layout version.
    #[error(
        "segment layout version {found}, but this build of mproc-shm reads version {expected}; \
         use the same mproc version in every process"
    )]
    VersionMismatch {
        /// The version in the header.
        found: u32,
        /// The version this crate writes and reads.
        expected: u32,
    },
    /// The segment holds something other than what the caller expects (another kind of
    /// object, or another message type).
    #[error(
        "segment fingerprint {found:#018x} does not match the expected {expected:#018x} \
         (it holds another kind of object or message type)"
    )]
    FingerprintMismatch {
        /// The fingerprint in the header.
        found: u64,
        /// The fingerprint the caller expected.
        expected: u64,
    },
    /// The file is shorter than its header says: it was truncated or shrunk, and mapping it
    /// would fault (SIGBUS) later.
    #[error("segment file is {file_len} bytes but its header says {header_len}: it was truncated")]
    Truncated {
        /// The file's length.
        file_len: u64,
        /// The size recorded in the header.
        header_len: u64,
    },
    /// The creator did not publish the header as ready within the open timeout.
    #[error(
        "segment was not initialised within {waited:?} (its creator may have died while \
         creating it; unlink it and create it again, or raise the open timeout)"
    )]
    NotReady {
        /// How long the opener waited.
        waited: Duration,
    },
    /// The segment was never finished: its header is not READY and no process holds its
    /// creator lock, so its creator died (or gave up) while creating it
    /// ([`NameState::Stale`](crate::name::NameState::Stale)). Waiting would not help.
    #[error(
        "shared memory segment {name:?} is stale: its creator died while creating it; \
         create_named of the same name reclaims it"
    )]
    Stale {
        /// The segment name (empty for a segment opened from a descriptor).
        name: String,
    },
    /// A header field is inconsistent with the others (a corrupt or hostile segment).
    #[error("corrupt segment header: {field} = {value} is invalid")]
    CorruptHeader {
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// An anonymous segment's memfd is not sealed against shrinking, so a peer could
    /// truncate it under us (SIGBUS).
    #[error("the memfd is not sealed against shrinking and growing (F_SEAL_SHRINK|F_SEAL_GROW)")]
    NotSealed,
    /// The requested options cannot make a segment.
    #[error("invalid segment options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// A system call failed; the errno is kept in `source`.
    #[error("{op} failed: {source}")]
    Io {
        /// The operation that failed (`"memfd_create"`, `"open"`, `"mmap"`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl SegmentError {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> SegmentError {
        move |source| SegmentError::Io { op, source }
    }
}

/// Why a process could not register as a participant of a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Every entry of the participant table is held by a live process.
    #[error("participant table full: all {capacity} entries are held by live processes")]
    TableFull {
        /// The table's capacity.
        capacity: u32,
    },
    /// This process already has the maximum number of registrations open at once.
    #[error("this process already holds {max} segment registrations")]
    TooManyRegistrations {
        /// The per-process limit.
        max: usize,
    },
    /// A system call failed (re-opening the file, taking the OFD lock).
    #[error("{op} failed: {source}")]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why an offset could not be resolved to a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetError {
    /// The offset (or the end of the object/slice) falls outside the segment's user region.
    #[error("offset {offset} (+{len} bytes) is outside the user region {start}..{end}")]
    OutOfBounds {
        /// The offset.
        offset: u64,
        /// The size of what it should point at.
        len: u64,
        /// Start of the user region.
        start: u64,
        /// End of the user region.
        end: u64,
    },
    /// The offset is not aligned for the type.
    #[error("offset {offset} is not aligned to {align}")]
    Misaligned {
        /// The offset.
        offset: u64,
        /// The required alignment.
        align: u64,
    },
}
