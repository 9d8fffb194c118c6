//! [`Connection<S, R>`]: the one typed face over an [`End`]. It sends `S` and receives `R`;
//! a side whose type is [`ReadOnly`](super::ReadOnly) or [`WriteOnly`](super::WriteOnly)
//! has no methods, which is all that makes a
//! [`PipeReader`](super::PipeReader) or a [`PipeWriter`](super::PipeWriter).
//!
//! A typed message is the value's rkyv archive followed by an 8-byte *type check* (the
//! fingerprint of the message type's tag, see [`crate::message::type_tag`]); `recv`
//! compares it before it validates the archive, so bytes that were not sent as an `R` (by
//! `send_bytes`, or a hostile peer) are a [`MessageError`], never a value.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use mproc_futex::Deadline;

use super::Carried;
use super::end::{End, Got};
use super::error::{RecvBytesError, RecvError, RecvTimeoutError, SendError};
use crate::message::{self, Message, MessageError};
use crate::storage::object::{self, ObjectKind};
use crate::wait::Wait;

/// Bytes of the type check after a typed message's archive.
const CHECK_LEN: usize = 8;

/// One end of a pipe (Python's `multiprocessing.connection.Connection`): sends `S` to the
/// other end and receives `R` from it. [`pipe::<A, B>()`](super::pipe()) makes a
/// `Connection<A, B>` and its peer, a `Connection<B, A>`; `Connection<T>` is
/// `Connection<T, T>`. The one-way ends are the same type with one side missing:
/// [`PipeReader<T>`](super::PipeReader) and [`PipeWriter<T>`](super::PipeWriter).
///
/// Not `Clone`; pass it to a child by moving it into the child's arguments. See the
/// [module docs](super).
///
/// # Panics
///
/// Every method panics if this end was inherited through `fork` without being passed to the
/// current process (a disowned copy; see the module docs).
pub struct Connection<S, R = S> {
    pub(super) end: End,
    /// The type check appended to every typed message sent (0 for a reader).
    send_check: u64,
    /// The type check every typed message received must carry (0 for a writer).
    recv_check: u64,
    _types: PhantomData<fn(S) -> R>,
}

impl<S, R> fmt::Debug for Connection<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sends", &std::any::type_name::<S>())
            .field("receives", &std::any::type_name::<R>())
            .field("end", &self.end)
            .finish()
    }
}

/// The type check of messages of type `T` (0 for a missing direction: nothing is ever checked).
fn type_check<T: Carried>() -> u64 {
    T::tag().map_or(0, |tag| object::fingerprint(ObjectKind::Pipe, &tag))
}

impl<S: Carried, R: Carried> Connection<S, R> {
    /// The typed face over `end`, whose pipe was created or verified for these types.
    pub(super) fn from_end(end: End) -> Self {
        Connection {
            end,
            send_check: type_check::<S>(),
            recv_check: type_check::<R>(),
            _types: PhantomData,
        }
    }
}

impl<S, R> Connection<S, R> {
    /// Closes this end (Python: `close()`); the same as dropping it. The other end's `recv`
    /// returns EOF once it has received everything sent before.
    pub fn close(self) {
        drop(self);
    }
}

// ---- sending ------------------------------------------------------------------------------

impl<S: Message, R> Connection<S, R> {
    /// Sends `value` (serialised with rkyv), blocking while the pipe is full. Any size works.
    /// Python: `send(obj)`.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] (Python's `BrokenPipeError`) when no live holder of the
    /// other end remains; [`SendError::Encode`] if serialisation fails (nothing is sent);
    /// [`SendError::Corrupt`].
    pub fn send(&mut self, value: &S) -> Result<(), SendError> {
        let check = self.send_check;
        message::with_scratch(|s| {
            s.encode(value).map_err(SendError::Encode)?;
            s.buf.extend_from_slice(&check.to_le_bytes());
            self.end.send(&s.buf)
        })
    }

    /// Sends `bytes` as one message, untyped. Python: `send_bytes(buf)` (slice first for
    /// `offset`/`size`). A typed `recv` on the other end reports such a message as
    /// [`RecvError::Decode`]; `recv_bytes` receives it.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`], minus `Encode`.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.end.send(bytes)
    }
}

// ---- receiving ----------------------------------------------------------------------------

impl<S, R: Message> Connection<S, R> {
    /// Receives the next message, blocking until one arrives or EOF. Python: `recv()`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] (Python's `EOFError`): nothing buffered and no live holder
    /// of the other end; [`RecvError::Decode`]: the message (consumed) is not a valid `R`
    /// (sent with `send_bytes`, or by a buggy or hostile peer); [`RecvError::Corrupt`].
    pub fn recv(&mut self) -> Result<R, RecvError> {
        self.recv_value(Wait::Forever).map_err(untimed)
    }

    /// As [`Connection::recv`], giving up after `timeout` (Python: `poll(timeout)` then
    /// `recv()`). A message half-streamed at the deadline stays buffered for the next call.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`Connection::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<R, RecvTimeoutError> {
        self.recv_value(Wait::Until(Deadline::after(timeout)))
    }

    /// Receives the next message's bytes, untyped (a typed message's bytes are its archive
    /// and type check). Python: `recv_bytes()`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`], [`RecvError::Corrupt`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Wait::Forever).map_err(untimed)
    }

    /// As [`Connection::recv_bytes`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`Connection::recv_bytes`].
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_vec(Wait::Until(Deadline::after(timeout)))
    }

    /// Receives the next message's bytes if it has at most `max` bytes. Python:
    /// `recv_bytes(maxlength)`.
    ///
    /// # Errors
    ///
    /// [`RecvBytesError::MessageTooLong`] if it is longer: unlike Python, the message stays
    /// queued and the connection usable (only its first fragment was read), so retry with a
    /// larger `max`. [`RecvBytesError::Disconnected`], [`RecvBytesError::Corrupt`].
    pub fn recv_bytes_max(&mut self, max: usize) -> Result<Vec<u8>, RecvBytesError> {
        self.wait_bytes(max)?;
        let v = self.end.asm.message().to_vec();
        self.end.asm.consume();
        Ok(v)
    }

    /// Receives the next message into `buf` and returns its length. Python:
    /// `recv_bytes_into(buf)`.
    ///
    /// # Errors
    ///
    /// [`RecvBytesError::BufferTooShort`] if the message is longer than `buf`: unlike
    /// Python, the message is kept, so retry with a buffer of `needed` bytes.
    /// [`RecvBytesError::Disconnected`], [`RecvBytesError::Corrupt`].
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvBytesError> {
        match self.wait_bytes(buf.len()) {
            Ok(()) => {}
            Err(RecvBytesError::MessageTooLong { len, .. }) => {
                let needed = usize::try_from(len).unwrap_or(usize::MAX);
                return Err(RecvBytesError::BufferTooShort { needed });
            }
            Err(e) => return Err(e),
        }
        let msg = self.end.asm.message();
        let n = msg.len();
        buf[..n].copy_from_slice(msg);
        self.end.asm.consume();
        Ok(n)
    }

    /// Receives the next message into `out` (replacing its contents, reusing its allocation)
    /// and returns its length. Python: `recv_bytes_into(bytearray)`, without the
    /// `BufferTooShort` case.
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes`].
    pub fn recv_bytes_into_vec(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.wait_whole(Wait::Forever).map_err(untimed)?;
        let msg = self.end.asm.message();
        out.clear();
        out.extend_from_slice(msg);
        self.end.asm.consume();
        Ok(out.len())
    }

    /// Whether a whole message can be received, or the other end is gone (then `recv` returns
    /// EOF at once) — waiting up to `timeout`; `None` waits for ever. Python: `poll(timeout)`,
    /// `poll(None)`; `poll()` is `poll(Some(Duration::ZERO))`, which does not sleep. Never
    /// consumes a message.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`].
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, RecvError> {
        let mode = match timeout {
            None => Wait::Forever,
            Some(Duration::ZERO) => Wait::Never,
            Some(t) => Wait::Until(Deadline::after(t)),
        };
        match self.end.wait_message(mode, u64::MAX) {
            Ok(_) => Ok(true), // a whole message, or EOF
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(e) => Err(untimed(e)),
        }
    }

    /// Messages this end dropped because they were malformed or torn (their writer died
    /// mid-stream). Python has no counterpart (it would hang, pitfall P9).
    pub fn dropped_messages(&self) -> u64 {
        self.end.asm.dropped
    }

    /// Waits per `mode` for a whole message; EOF is `Disconnected`.
    fn wait_whole(&mut self, mode: Wait) -> Result<(), RecvTimeoutError> {
        match self.end.wait_message(mode, u64::MAX)? {
            Got::Message => Ok(()),
            Got::Eof | Got::TooLong(_) => Err(RecvTimeoutError::Disconnected),
        }
    }

    fn recv_value(&mut self, mode: Wait) -> Result<R, RecvTimeoutError> {
        self.wait_whole(mode)?;
        // The assembled message is a private, 16-aligned copy: check, validate, decode.
        let r = decode_checked::<R>(self.end.asm.message(), self.recv_check);
        self.end.asm.consume();
        r.map_err(RecvTimeoutError::Decode)
    }

    fn recv_vec(&mut self, mode: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        self.wait_whole(mode)?;
        let v = self.end.asm.message().to_vec();
        self.end.asm.consume();
        Ok(v)
    }

    /// Waits for a message of at most `max` bytes (the message is kept if it is longer).
    fn wait_bytes(&mut self, max: usize) -> Result<(), RecvBytesError> {
        match self.end.wait_message(Wait::Forever, max as u64) {
            Ok(Got::Message) => {
                let len = self.end.asm.message().len();
                if len > max {
                    return Err(RecvBytesError::MessageTooLong {
                        len: len as u64,
                        max,
                    });
                }
                Ok(())
            }
            Ok(Got::TooLong(len)) => Err(RecvBytesError::MessageTooLong { len, max }),
            Ok(Got::Eof) | Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => {
                Err(RecvBytesError::Disconnected)
            }
            Err(RecvTimeoutError::Decode(_) | RecvTimeoutError::Corrupt) => {
                Err(RecvBytesError::Corrupt)
            }
        }
    }
}

/// Checks the type check at the end of `msg`, then validates and decodes the archive before
/// it (which starts where `msg` does: 16-aligned).
fn decode_checked<T: Message>(msg: &[u8], check: u64) -> Result<T, MessageError> {
    let Some(archive_len) = msg.len().checked_sub(CHECK_LEN) else {
        return Err(MessageError::Invalid(format!(
            "a {}-byte message is too short to be a typed message",
            msg.len()
        )));
    };
    let (archive, found) = msg.split_at(archive_len);
    if found != check.to_le_bytes() {
        return Err(MessageError::Invalid(format!(
            "not a message of type `{}` (sent with `send_bytes`, or by a peer of another type)",
            std::any::type_name::<T>()
        )));
    }
    message::decode::<T>(archive)
}

/// A wait without a deadline never times out; map what it can return.
fn untimed(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout => RecvError::Disconnected,
        RecvTimeoutError::Decode(e) => RecvError::Decode(e),
        RecvTimeoutError::Corrupt => RecvError::Corrupt,
    }
}
