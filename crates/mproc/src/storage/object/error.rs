//! [`OpenError`]: why a shared object (a queue, a pipe, ...) could not be created or opened.

use mproc_shm::{ArenaError, RegisterError, SegmentError};

/// Why a shared object could not be created, opened or attached.
///
/// Python raises `FileExistsError` / `FileNotFoundError` (named shared memory) or `OSError`
/// for the first few; the type and layout checks have no Python counterpart (a pickled
/// object is checked only when it is unpickled).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
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
    /// The segment could not be created, opened or mapped.
    #[error(transparent)]
    Segment(SegmentError),
    /// This process could not register as a participant of the segment.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// The object's creator did not finish initialising it within the open timeout (it may
    /// have died while creating it).
    #[error("the object was not initialised within the open timeout (its creator may have died)")]
    NotReady,
    /// The object header or one of its parts is inconsistent (corrupt or hostile memory, or
    /// a segment made by another version of mproc).
    #[error("corrupt object: {0}")]
    Corrupt(String),
    /// The options cannot make an object (a zero capacity, a slot too large, ...).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The object's arena could not be set up.
    #[error("arena: {0}")]
    Arena(#[from] ArenaError),
}

impl OpenError {
    /// Maps a segment error, turning a fingerprint mismatch into [`OpenError::WrongType`].
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
            other => OpenError::Segment(other),
        }
    }
}
