//! [`CreateError`] and [`OpenError`]: why a shared object (a queue, a pipe, a lock, a value,
//! ...) could not be made, or could not be opened, imported or attached.
//!
//! Two types, because the two fail differently: creating runs into names that exist, full
//! memory and bad options; opening runs into names that do not exist, objects of another
//! type or version, and memory that does not pass its checks. Operating-system errors are
//! kept as the `source` of the variant that reports them.

use std::io;

use mproc_shm::{ArenaError, NameError, RegisterError, SegmentError};

/// Why a shared object could not be created: `new` (an anonymous object, or a cell of the
/// small-object [cell store](crate::storage::cells)), `create_named`, `with_options`, ...
///
/// Python raises `FileExistsError` for an existing name, `ValueError` for bad options and
/// `OSError` (or `MemoryError`) when memory runs out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// `create_named`: the name exists already (Python's `FileExistsError`). A stale name
    /// (its creator died while creating it) is reclaimed instead, never reported.
    #[error("shared object {name:?} already exists; pick another name or unlink the old one")]
    AlreadyExists {
        /// The name, as given.
        name: String,
    },
    /// The name is not a valid object name (see [`crate::storage::names`]; Python's
    /// `ValueError`).
    #[error("invalid object name")]
    InvalidName(#[source] NameError),
    /// Out of shared memory: `/dev/shm` is full (`ENOSPC`), memory or address space is
    /// exhausted (`ENOMEM`), or the object's own arena has no room (Python's `OSError` /
    /// `MemoryError`).
    #[error("out of shared memory ({op})")]
    NoSpace {
        /// The operation that failed (`"ftruncate"`, `"mmap"`, `"allocate a cell"`, ...).
        op: &'static str,
        /// The OS error (`ENOSPC`, `ENOMEM`, ...), if the OS reported it.
        #[source]
        source: Option<io::Error>,
    },
    /// Another system call failed (too many open files, permissions, ...).
    #[error("{op} failed")]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A capacity, size or count is out of range: a zero capacity, a message slot too
    /// large, an array too long, a barrier of no parties (Python's `ValueError`).
    #[error("invalid {what}: {value} (must be {limit})")]
    InvalidCapacity {
        /// What was asked for, e.g. `"barrier parties"`.
        what: &'static str,
        /// The value asked for (saturated at `u64::MAX`).
        value: u64,
        /// The rule it breaks, e.g. `"at least 1"`.
        limit: &'static str,
    },
    /// A ring of the requested shape cannot be laid out (queue and pipe capacities and slot
    /// sizes).
    #[error("invalid ring shape")]
    RingLayout(#[source] mproc_ring::LayoutError),
    /// The creator could not register as a participant of the new segment.
    #[error("cannot register in the new segment")]
    Register(#[source] RegisterError),
    /// The object's arena could not be set up.
    #[error("cannot set up the object's arena")]
    Arena(#[source] ArenaError),
    /// The new segment is not laid out as requested (a bug, or a process that wrote into
    /// it before it was published).
    #[error("the new object failed its own checks: {what}")]
    Inconsistent {
        /// What did not check out.
        what: &'static str,
    },
    /// The creator could not attach the object it had just made as a handle (a check of
    /// the new object failed).
    #[error("cannot attach the new object")]
    Attach(#[source] OpenError),
    /// Any other segment error.
    #[error("cannot create the object's segment")]
    Segment(#[source] SegmentError),
}

impl From<OpenError> for CreateError {
    /// Attaching a new object: registration, arena and OS errors keep their creation
    /// variants; the rest is [`CreateError::Attach`].
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Register(e) => CreateError::Register(e),
            OpenError::Arena(e) => CreateError::from(e),
            OpenError::Io { op, source } => CreateError::from_io(op, source),
            other => CreateError::Attach(other),
        }
    }
}

impl CreateError {
    /// Maps a segment error of a creation.
    pub(crate) fn from_segment(e: SegmentError) -> CreateError {
        match e {
            SegmentError::AlreadyExists { name } | SegmentError::Symlink { name } => {
                CreateError::AlreadyExists {
                    name: user_name(name),
                }
            }
            SegmentError::InvalidName(e) => CreateError::InvalidName(e),
            SegmentError::Io { op, source } => CreateError::from_io(op, source),
            other => CreateError::Segment(other),
        }
    }

    /// Maps an OS error of `op`: memory exhaustion is [`CreateError::NoSpace`].
    pub(crate) fn from_io(op: &'static str, source: io::Error) -> CreateError {
        match source.raw_os_error() {
            Some(libc::ENOSPC | libc::ENOMEM | libc::EFBIG | libc::EDQUOT) => {
                CreateError::NoSpace {
                    op,
                    source: Some(source),
                }
            }
            _ => CreateError::Io { op, source },
        }
    }

    /// An `InvalidCapacity` for a value of any integer type.
    pub(crate) fn capacity(
        what: &'static str,
        value: impl TryInto<u64>,
        limit: &'static str,
    ) -> CreateError {
        CreateError::InvalidCapacity {
            what,
            value: value.try_into().unwrap_or(u64::MAX),
            limit,
        }
    }
}

impl From<NameError> for CreateError {
    fn from(e: NameError) -> Self {
        CreateError::InvalidName(e)
    }
}

impl From<RegisterError> for CreateError {
    fn from(e: RegisterError) -> Self {
        CreateError::Register(e)
    }
}

impl From<ArenaError> for CreateError {
    fn from(e: ArenaError) -> Self {
        match e {
            ArenaError::OutOfMemory { .. } => CreateError::NoSpace {
                op: "allocate in the arena",
                source: None,
            },
            other => CreateError::Arena(other),
        }
    }
}

impl From<mproc_ring::LayoutError> for CreateError {
    fn from(e: mproc_ring::LayoutError) -> Self {
        CreateError::RingLayout(e)
    }
}

/// Why a shared object could not be opened (`open_named`), imported by a spawned child, or
/// attached.
///
/// Python raises `FileNotFoundError` for a missing name; the type, version and layout
/// checks have no Python counterpart (a pickled object is checked only when unpickled).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No object has this name (not created yet, or unlinked; Python's
    /// `FileNotFoundError`).
    #[error("shared object {name:?} does not exist (not created yet, or already unlinked)")]
    NotFound {
        /// The name, as given.
        name: String,
    },
    /// The name is not a valid object name (Python's `ValueError`).
    #[error("invalid object name")]
    InvalidName(#[source] NameError),
    /// The named object holds another kind of object or another message type: for
    /// example a `Queue<u64>` opened as a `Queue<String>`.
    #[error(
        "the object holds another kind of object or message type than {expected} \
         (fingerprint {found:#018x}, expected {fingerprint:#018x})"
    )]
    WrongType {
        /// What the caller asked for, e.g. `Queue<alloc::string::String>`.
        expected: String,
        /// The fingerprint found in the segment.
        found: u64,
        /// The fingerprint the caller's type has.
        fingerprint: u64,
    },
    /// The object was made by a build of mproc with another layout version: use the same
    /// mproc version in every process.
    #[error("object layout version {found}, but this build of mproc reads version {expected}")]
    VersionMismatch {
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// The object's creator did not finish initialising it within the open timeout (it may
    /// have died while creating it).
    #[error("the object was not initialised within the open timeout (its creator may have died)")]
    NotReady,
    /// The object header or one of its parts is inconsistent (corrupt or hostile memory).
    #[error("corrupt object: {what}{}", value.map(|v| format!(" = {v}")).unwrap_or_default())]
    Corrupt {
        /// What failed its check, e.g. `"holder capacity"`.
        what: &'static str,
        /// The offending value, when there is one.
        value: Option<u64>,
    },
    /// A ring inside the object failed its checks.
    #[error("corrupt ring")]
    Ring(#[source] mproc_ring::AttachError),
    /// The object's arena could not be attached.
    #[error("cannot attach the object's arena")]
    Arena(#[source] ArenaError),
    /// This process could not register as a participant of the segment.
    #[error("cannot register in the object's segment")]
    Register(#[source] RegisterError),
    /// A system call failed.
    #[error("{op} failed")]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Any other segment error (a stale name, a file that is not an mproc segment, a
    /// truncated file, ...).
    #[error("cannot open the object's segment")]
    Segment(#[source] SegmentError),
}

impl OpenError {
    /// Maps a segment error of an open, turning a fingerprint mismatch into
    /// [`OpenError::WrongType`].
    pub(crate) fn from_segment(e: SegmentError, expected: &str) -> OpenError {
        match e {
            SegmentError::FingerprintMismatch {
                found,
                expected: fp,
            } => OpenError::WrongType {
                expected: expected.to_string(),
                found,
                fingerprint: fp,
            },
            SegmentError::NotFound { name } => OpenError::NotFound {
                name: user_name(name),
            },
            SegmentError::InvalidName(e) => OpenError::InvalidName(e),
            SegmentError::VersionMismatch { found, expected } => {
                OpenError::VersionMismatch { found, expected }
            }
            SegmentError::NotReady { .. } => OpenError::NotReady,
            SegmentError::Io { op, source } => OpenError::Io { op, source },
            other => OpenError::Segment(other),
        }
    }

    /// A [`OpenError::Corrupt`] with the offending value.
    pub(crate) fn corrupt(what: &'static str, value: impl TryInto<u64>) -> OpenError {
        OpenError::Corrupt {
            what,
            value: value.try_into().ok(),
        }
    }

    /// A [`OpenError::Corrupt`] without a value.
    pub(crate) fn corrupt_part(what: &'static str) -> OpenError {
        OpenError::Corrupt { what, value: None }
    }
}

impl From<NameError> for OpenError {
    fn from(e: NameError) -> Self {
        OpenError::InvalidName(e)
    }
}

impl From<RegisterError> for OpenError {
    fn from(e: RegisterError) -> Self {
        OpenError::Register(e)
    }
}

impl From<ArenaError> for OpenError {
    fn from(e: ArenaError) -> Self {
        OpenError::Arena(e)
    }
}

impl From<mproc_ring::AttachError> for OpenError {
    fn from(e: mproc_ring::AttachError) -> Self {
        OpenError::Ring(e)
    }
}

/// The user's name for a segment name (`mproc.<name>` → `<name>`).
fn user_name(shm: String) -> String {
    match shm.strip_prefix(crate::storage::names::PREFIX) {
        Some(user) => user.to_string(),
        None => shm,
    }
}
