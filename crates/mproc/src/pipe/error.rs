//! Errors of [`Connection`](super::Connection) (and so of [`PipeReader`](super::PipeReader)
//! and [`PipeWriter`](super::PipeWriter)), shaped like `std::sync::mpsc`'s, each naming its
//! Python counterpart.

use crate::message::MessageError;

/// Why a blocking receive failed. Python: `EOFError` from `Connection.recv()` /
/// `recv_bytes()`, or the unpickling error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing is buffered and no live holder of the other end remains (it was closed,
    /// dropped, or its process died). Python: `EOFError`. Messages sent before the peer went
    /// away are always received first; a message its writer was still streaming when it died
    /// is discarded, never returned in part.
    #[error("end of file: the other end is closed")]
    Disconnected,
    /// The message was received (and consumed) but is not a message of the end's type: it
    /// was sent with `send_bytes`, or by a buggy or hostile peer (its type check or its
    /// archive is invalid: [`MessageError::Invalid`]). Python: the exception raised by
    /// unpickling.
    #[error("message does not decode as the end's type: {0}")]
    Decode(MessageError),
    /// The shared ring held invalid data (a buggy or hostile peer); what was published was
    /// dropped. The connection stays usable.
    #[error("pipe data is corrupt")]
    Corrupt,
}

/// Why a receive with a deadline failed. Python: `poll(timeout)` returning `False`, then
/// the errors of [`RecvError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// No whole message arrived before the deadline (a message still being streamed stays
    /// buffered for the next call).
    #[error("timed out waiting on the pipe")]
    Timeout,
    /// As [`RecvError::Disconnected`] (Python's `EOFError`).
    #[error("end of file: the other end is closed")]
    Disconnected,
    /// As [`RecvError::Decode`].
    #[error("message does not decode as the end's type: {0}")]
    Decode(MessageError),
    /// As [`RecvError::Corrupt`].
    #[error("pipe data is corrupt")]
    Corrupt,
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => RecvTimeoutError::Disconnected,
            RecvError::Decode(s) => RecvTimeoutError::Decode(s),
            RecvError::Corrupt => RecvTimeoutError::Corrupt,
        }
    }
}

/// Why [`recv_bytes_into`](super::Connection::recv_bytes_into) or
/// [`recv_bytes_max`](super::Connection::recv_bytes_max) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvBytesError {
    /// The next message is `needed` bytes, more than the buffer holds. Python:
    /// `multiprocessing.BufferTooShort` — but unlike Python (pitfall P13) the message is
    /// **not** consumed: retry with a buffer of at least `needed` bytes.
    #[error("buffer too short: the message has {needed} bytes")]
    BufferTooShort {
        /// Length of the pending message.
        needed: usize,
    },
    /// The next message is `len` bytes, more than the `max` accepted. Python:
    /// `OSError('bad message length')` from `recv_bytes(maxlength)` — but unlike Python
    /// (pitfall P12) the connection stays usable and the message stays queued: retry with a
    /// larger `max`. Only the message's first fragment has been read.
    #[error("message of {len} bytes is longer than the maximum of {max}")]
    MessageTooLong {
        /// Length the message announced.
        len: u64,
        /// The limit given.
        max: usize,
    },
    /// As [`RecvError::Disconnected`] (Python's `EOFError`).
    #[error("end of file: the other end is closed")]
    Disconnected,
    /// As [`RecvError::Corrupt`].
    #[error("pipe data is corrupt")]
    Corrupt,
}

/// Why a send failed. Python: `BrokenPipeError` (errno 32), or the pickling error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No live holder of the other end remains: nobody can ever read what is sent. Python:
    /// `BrokenPipeError`. Detected at once when the reader closed or dropped its end, and
    /// at the latest when the buffer is full when its process died without closing.
    #[error("broken pipe: the other end is closed")]
    Disconnected,
    /// The value could not be serialised; nothing was sent. Python: the pickling error,
    /// raised synchronously by `send`.
    #[error("message could not be encoded: {0}")]
    Encode(MessageError),
    /// The shared ring's indices are invalid (a buggy or hostile peer).
    #[error("pipe data is corrupt")]
    Corrupt,
}
