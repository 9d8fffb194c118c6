//! Pipes: Python's `multiprocessing.Pipe` and `Connection`, over shared-memory record rings.
//!
//! ```
//! use mproc::pipe;
//!
//! let (mut a, mut b) = pipe::pipe()?; // Python: a, b = Pipe()
//! a.send(&String::from("hello"))?;
//! assert_eq!(b.recv::<String>()?, "hello");
//! b.send_bytes(b"raw bytes")?;
//! assert_eq!(a.recv_bytes()?, b"raw bytes");
//! drop(b); // the last holder of end B is gone ...
//! assert!(a.recv::<u32>().is_err()); // ... so `recv` reports EOF instead of hanging
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shape
//!
//! | Python | mproc |
//! |---|---|
//! | `a, b = Pipe()` | [`pipe()`] → `(Connection, Connection)` |
//! | `r, w = Pipe(duplex=False)` | [`pipe_oneway()`] → `(PipeReader, PipeWriter)` — reader first, as in Python |
//! | `conn.send(obj)` / `conn.recv()` | [`Connection::send`] / [`Connection::recv`] (any [`Message`], i.e. rkyv type) |
//! | `conn.send_bytes(b)` / `conn.recv_bytes()` | [`Connection::send_bytes`] / [`Connection::recv_bytes`] |
//! | `conn.recv_bytes(maxlength)` | [`Connection::recv_bytes_max`] (keeps a longer message queued) |
//! | `conn.recv_bytes_into(buf)` | [`Connection::recv_bytes_into`] (`&mut [u8]`), [`Connection::recv_bytes_into_vec`] |
//! | `conn.poll(timeout)`, `poll(None)` | [`Connection::poll`]`(Some(timeout))`, `poll(None)` (blocks) |
//! | `recv` after `poll(t)` | [`Connection::recv_timeout`] (one call, one deadline) |
//! | `conn.close()` | [`Connection::close`] (consumes it; so does `drop`) |
//! | `EOFError`, `BrokenPipeError`, `BufferTooShort` | [`RecvError::Disconnected`], [`SendError::Disconnected`], [`RecvBytesError::BufferTooShort`] |
//! | `OSError('connection is read-only' / 'write-only')` | does not compile: a [`PipeReader`] has no `send`, a [`PipeWriter`] no `recv` |
//! | `OSError('handle is closed')` | does not compile: `close` consumes the end |
//!
//! Each direction is one SPSC [`RecordRing`] (64 KiB by default,
//! see [`PipeOptions::capacity`]) in one shared-memory segment. Messages of any size work:
//! one larger than a record is streamed through the ring in fragments and reassembled in the
//! receiver's private memory; the receiver sees it only once it is whole.
//!
//! # EOF is exact
//!
//! Each end is one holder *role* of the pipe (end A, end B), counted per process in shared
//! memory. `recv` on an end returns [`RecvError::Disconnected`] (Python's `EOFError`) exactly
//! when nothing is buffered for it and **no live holder of the other end remains**: that end
//! was closed, dropped, or its process died (however it died, even SIGKILLed). Everything
//! sent before is received first; a message whose writer died while streaming it is dropped
//! (never returned in part; counted by [`Connection::dropped_messages`]). So the seed's pipe
//! program, whose receiver waits for a `None` that never comes, ends instead of hanging as
//! Python's does (pitfall P6): see `examples/pipe.rs`.
//!
//! That works because an end is **not `Clone`** (a pipe direction has exactly one reader
//! and one writer) and reaches a child process only by being **moved** into its arguments
//! ([`Process::new`](crate::Process::new)`(target, (conn,))`, either start method): the parent
//! keeps counting its copy until the child has adopted it, then drops it. A copy that a fork
//! child inherits without being passed it is *disowned*: dropping it changes nothing, and
//! using it panics (it would otherwise steal the parent's ring roles).
//!
//! `send` returns [`SendError::Disconnected`] (Python's `BrokenPipeError`) at once when the
//! other end was closed or dropped; if its process died without closing it, at the latest
//! when the ring is full (until then the send only fills a buffer nobody will read).
//!
//! Direction is enforced by the types: a one-way pipe's reader cannot send and its writer
//! cannot receive (Python raises `OSError` at run time; here it does not compile):
//!
//! ```compile_fail
//! let (mut r, _w) = mproc::pipe_oneway()?;
//! r.send(&1u32)?; // no `send` on a PipeReader
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```compile_fail
//! let (_r, mut w) = mproc::pipe_oneway()?;
//! let _ = w.recv::<u32>(); // no `recv` on a PipeWriter
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```compile_fail
//! let (a, _b) = mproc::pipe()?;
//! let _copy = a.clone(); // an end is not `Clone`: one reader and one writer per direction
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Blocking
//!
//! Blocking calls spin briefly, then sleep on the ring's doorbell futex, waking to re-check
//! the peer's liveness at least every 50 ms. A send or receive that does not need to wait
//! makes no system call when the peer is not asleep. All ends' methods take `&mut self`:
//! move an end to another thread if needed (it is `Send`), but one end serves one thread at
//! a time, as in Python.
//!
//! # Messages
//!
//! [`Connection::send`] serialises with rkyv into a reusable buffer and streams the bytes;
//! [`Connection::recv`] validates (bytecheck) the private reassembled copy before
//! deserialising — safe against a hostile peer. `send_bytes`/`recv_bytes` move raw bytes
//! with the same framing, so a message sent with one may be received with the other
//! (`recv::<T>` of raw bytes that are not a `T` archive is [`RecvError::Decode`]).

mod end;
mod error;
mod frame;
mod rings;

use std::sync::Arc;
use std::time::Duration;

use mproc_futex::Deadline;
use mproc_ring::{RecordRing, RecordShape};

pub use error::{RecvBytesError, RecvError, RecvTimeoutError, SendError};

use self::end::{End, Got};
use self::frame::Assembler;
use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::message::{self, Message};
use crate::storage::object::{self, CreateError, Object, ObjectKind, ObjectSpec};

/// Default bytes of ring space per direction (Python's OS pipe buffer is 64 KiB too).
pub const DEFAULT_CAPACITY: u32 = 64 << 10;
/// Smallest ring capacity accepted by [`PipeOptions::capacity`].
pub const MIN_CAPACITY: u32 = 1 << 10;
/// Largest ring capacity accepted by [`PipeOptions::capacity`].
pub const MAX_CAPACITY: u32 = 1 << 30;
/// Participant-table entries of a pipe's segment: processes attached at the same time
/// (entries of dead processes are reused).
const PARTICIPANTS: u32 = 64;

fn tag(duplex: bool) -> &'static str {
    if duplex { "duplex" } else { "oneway" }
}

fn fingerprint(duplex: bool) -> u64 {
    object::fingerprint(ObjectKind::Pipe, tag(duplex))
}

/// Options for a new pipe (builder). Python: `Pipe(duplex=...)`; the capacity has no Python
/// counterpart (the OS pipe or socket buffer size).
#[derive(Debug, Clone, Copy)]
pub struct PipeOptions {
    capacity: u32,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions::new()
    }
}

impl PipeOptions {
    /// Default options: [`DEFAULT_CAPACITY`] bytes per direction.
    pub fn new() -> PipeOptions {
        PipeOptions {
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Bytes of ring space per direction: a power of two in
    /// [`MIN_CAPACITY`]`..=`[`MAX_CAPACITY`]. Larger messages still work (streamed).
    pub fn capacity(&mut self, bytes: u32) -> &mut Self {
        self.capacity = bytes;
        self
    }

    fn create(&self, duplex: bool) -> Result<Arc<Object>, CreateError> {
        let cap = self.capacity;
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            return Err(CreateError::capacity(
                "pipe capacity",
                cap,
                "a power of two in MIN_CAPACITY..=MAX_CAPACITY",
            ));
        }
        let shape = RecordShape { capacity: cap };
        let ring_len = RecordRing::required_size(shape)? as u64;
        let regions = if duplex {
            vec![ring_len; 2]
        } else {
            vec![ring_len]
        };
        let spec = ObjectSpec {
            kind: ObjectKind::Pipe,
            fingerprint: fingerprint(duplex),
            roles: 2,
            regions: &regions,
        };
        let n = regions.len();
        let obj = Object::create(&spec, None, Some(PARTICIPANTS), |obj| {
            rings::init(obj, shape, n)
        })?;
        Ok(Arc::new(obj))
    }

    /// Creates a duplex pipe: two connected [`Connection`]s, each able to send and receive.
    /// Python: `Pipe()` / `Pipe(duplex=True)`.
    ///
    /// # Errors
    ///
    /// An invalid capacity, or the shared-memory segment could not be created.
    pub fn duplex(&self) -> Result<(Connection, Connection), CreateError> {
        let obj = self.create(true)?;
        let a = End::new(obj.clone(), true, 0, Assembler::default())?;
        let b = End::new(obj, true, 1, Assembler::default())?;
        Ok((Connection { end: a }, Connection { end: b }))
    }

    /// Creates a one-way pipe: `(reader, writer)`, in Python's order. Python:
    /// `Pipe(duplex=False)`.
    ///
    /// # Errors
    ///
    /// As [`PipeOptions::duplex`].
    pub fn oneway(&self) -> Result<(PipeReader, PipeWriter), CreateError> {
        let obj = self.create(false)?;
        let r = End::new(obj.clone(), false, 0, Assembler::default())?;
        let w = End::new(obj, false, 1, Assembler::default())?;
        Ok((PipeReader { end: r }, PipeWriter { end: w }))
    }
}

/// Creates a duplex pipe with default options. Python: `a, b = Pipe()`.
///
/// # Errors
///
/// The shared-memory segment could not be created.
pub fn pipe() -> Result<(Connection, Connection), CreateError> {
    PipeOptions::new().duplex()
}

/// Creates a one-way pipe with default options: `(reader, writer)`. Python:
/// `r, w = Pipe(duplex=False)`.
///
/// # Errors
///
/// The shared-memory segment could not be created.
pub fn pipe_oneway() -> Result<(PipeReader, PipeWriter), CreateError> {
    PipeOptions::new().oneway()
}

// ---- shared implementations -------------------------------------------------------------

impl End {
    fn send_value<T: Message>(&mut self, value: &T) -> Result<(), SendError> {
        message::with_scratch(|s| {
            s.encode(value)
                .map_err(|e| SendError::Encode(e.to_string()))?;
            self.send(&s.buf)
        })
    }

    fn recv_value<T: Message>(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<T, RecvTimeoutError> {
        match self.wait_message(deadline, u64::MAX)? {
            Got::Message => {}
            Got::Eof | Got::TooLong(_) => return Err(RecvTimeoutError::Disconnected),
        }
        // The assembled message is a private, 16-aligned copy: validate and decode it.
        let r = message::decode::<T>(self.asm.message());
        self.asm.consume();
        r.map_err(|e| RecvTimeoutError::Decode(e.to_string()))
    }

    fn recv_vec(&mut self, deadline: Option<Deadline>) -> Result<Vec<u8>, RecvTimeoutError> {
        match self.wait_message(deadline, u64::MAX)? {
            Got::Message => {}
            Got::Eof | Got::TooLong(_) => return Err(RecvTimeoutError::Disconnected),
        }
        let v = self.asm.message().to_vec();
        self.asm.consume();
        Ok(v)
    }

    /// Waits for a message of at most `max` bytes (the message is kept if it is longer).
    fn wait_bytes(&mut self, max: usize) -> Result<(), RecvBytesError> {
        match self.wait_message(None, max as u64) {
            Ok(Got::Message) => {
                let len = self.asm.message().len();
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
            Err(_) => Err(RecvBytesError::Corrupt),
        }
    }

    fn recv_max(&mut self, max: usize) -> Result<Vec<u8>, RecvBytesError> {
        self.wait_bytes(max)?;
        let v = self.asm.message().to_vec();
        self.asm.consume();
        Ok(v)
    }

    fn recv_into_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvBytesError> {
        match self.wait_bytes(buf.len()) {
            Ok(()) => {}
            Err(RecvBytesError::MessageTooLong { len, .. }) => {
                let needed = usize::try_from(len).unwrap_or(usize::MAX);
                return Err(RecvBytesError::BufferTooShort { needed });
            }
            Err(e) => return Err(e),
        }
        let msg = self.asm.message();
        let n = msg.len();
        buf[..n].copy_from_slice(msg);
        self.asm.consume();
        Ok(n)
    }

    fn recv_into_vec(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        match self.wait_message(None, u64::MAX).map_err(untimed)? {
            Got::Message => {}
            Got::Eof | Got::TooLong(_) => return Err(RecvError::Disconnected),
        }
        let msg = self.asm.message();
        out.clear();
        out.extend_from_slice(msg);
        self.asm.consume();
        Ok(out.len())
    }

    fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, RecvError> {
        match self.wait_message(Deadline::within(timeout), u64::MAX) {
            Ok(_) => Ok(true), // a whole message, or EOF
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(e) => Err(untimed(e)),
        }
    }

    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.check_owner();
        let fd = out.fd(std::os::fd::AsFd::as_fd(&**self.obj.segment()))?;
        out.value(&(self.duplex, self.role, fd, self.asm.export()))
    }

    fn import(input: &mut Importer) -> Result<End, PassError> {
        type State = (bool, u32, u32, (Vec<u8>, Option<u64>, bool, bool, u64));
        let (duplex, role, fd, asm): State = input.value()?;
        if role > 1 {
            return Err(PassError::Invalid {
                what: "pipe role",
                value: role.into(),
            });
        }
        let asm = Assembler::import(asm).ok_or(PassError::Inconsistent {
            what: "pipe receive state",
        })?;
        let fd = input.take_fd(fd)?;
        let obj = Object::from_fd(fd, ObjectKind::Pipe, fingerprint(duplex), tag(duplex), 2)?;
        Ok(End::new(Arc::new(obj), duplex, role, asm)?)
    }
}

fn untimed(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout => RecvError::Disconnected,
        RecvTimeoutError::Decode(s) => RecvError::Decode(s),
        RecvTimeoutError::Corrupt => RecvError::Corrupt,
    }
}

// ---- Connection ---------------------------------------------------------------------------

/// One end of a duplex pipe (Python's `multiprocessing.connection.Connection` from `Pipe()`):
/// sends to and receives from the other end. Not `Clone`; pass it to a child by moving it
/// into the child's arguments. See the [module docs](self).
///
/// # Panics
///
/// Every method panics if this end was inherited through `fork` without being passed to the
/// current process (a disowned copy; see the module docs).
#[derive(Debug)]
pub struct Connection {
    end: End,
}

impl Connection {
    /// Sends `value` (serialised with rkyv), blocking while the pipe is full. Any size works.
    /// Python: `send(obj)`.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] (Python's `BrokenPipeError`) when no live holder of the
    /// other end remains; [`SendError::Encode`] if serialisation fails (nothing is sent);
    /// [`SendError::Corrupt`].
    pub fn send<T: Message>(&mut self, value: &T) -> Result<(), SendError> {
        self.end.send_value(value)
    }

    /// Sends `bytes` as one message. Python: `send_bytes(buf)` (slice first for
    /// `offset`/`size`).
    ///
    /// # Errors
    ///
    /// As [`Connection::send`], minus `Encode`.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.end.send(bytes)
    }

    /// Receives the next message as a `T`, blocking until one arrives or EOF. Python:
    /// `recv()`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] (Python's `EOFError`): nothing buffered and no live holder
    /// of the other end; [`RecvError::Decode`]: the message (consumed) is not a valid `T`;
    /// [`RecvError::Corrupt`].
    pub fn recv<T: Message>(&mut self) -> Result<T, RecvError> {
        self.end.recv_value(None).map_err(untimed)
    }

    /// As [`Connection::recv`], giving up after `timeout` (Python: `poll(timeout)` then
    /// `recv()`). A message half-streamed at the deadline stays buffered for the next call.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`Connection::recv`].
    pub fn recv_timeout<T: Message>(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.end.recv_value(Some(Deadline::after(timeout)))
    }

    /// Receives the next message's bytes. Python: `recv_bytes()`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`], [`RecvError::Corrupt`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.end.recv_vec(None).map_err(untimed)
    }

    /// As [`Connection::recv_bytes`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`Connection::recv_bytes`].
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.end.recv_vec(Some(Deadline::after(timeout)))
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
        self.end.recv_max(max)
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
        self.end.recv_into_slice(buf)
    }

    /// Receives the next message into `out` (replacing its contents, reusing its allocation)
    /// and returns its length. Python: `recv_bytes_into(bytearray)`, without the
    /// `BufferTooShort` case.
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes`].
    pub fn recv_bytes_into_vec(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.end.recv_into_vec(out)
    }

    /// Whether a whole message can be received, or the other end is gone (then `recv` returns
    /// EOF at once) — waiting up to `timeout`; `None` waits for ever. Python: `poll(timeout)`,
    /// `poll(None)`; `poll()` is `poll(Some(Duration::ZERO))`. Never consumes a message.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`].
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, RecvError> {
        self.end.poll(timeout)
    }

    /// Closes this end (Python: `close()`); the same as dropping it. The other end's `recv`
    /// returns EOF once it has received everything sent before.
    pub fn close(self) {
        drop(self);
    }

    /// Messages this end dropped because they were malformed or torn (their writer died
    /// mid-stream). Python has no counterpart (it would hang, pitfall P9).
    pub fn dropped_messages(&self) -> u64 {
        self.end.asm.dropped
    }
}

/// What an imported end is, for [`PassError::WrongKind`].
fn describe(end: &End) -> &'static str {
    match (end.duplex, end.role) {
        (true, _) => "an end of a duplex pipe",
        (false, 0) => "the reader of a one-way pipe",
        (false, _) => "the writer of a one-way pipe",
    }
}

impl Passable for Connection {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.end.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let end = End::import(input)?;
        if !end.duplex {
            return Err(PassError::WrongKind {
                expected: "an end of a duplex pipe",
                found: describe(&end),
            });
        }
        Ok(Connection { end })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(self.end.adopt()?)
    }
}

// ---- one-way ends -------------------------------------------------------------------------

/// The receiving end of a one-way pipe (Python: `r` of `r, w = Pipe(duplex=False)`). It has
/// no `send`: Python's `OSError('connection is read-only')` is a compile error here. Methods
/// are as on [`Connection`].
#[derive(Debug)]
pub struct PipeReader {
    end: End,
}

impl PipeReader {
    /// As [`Connection::recv`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv`].
    pub fn recv<T: Message>(&mut self) -> Result<T, RecvError> {
        self.end.recv_value(None).map_err(untimed)
    }

    /// As [`Connection::recv_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_timeout`].
    pub fn recv_timeout<T: Message>(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.end.recv_value(Some(Deadline::after(timeout)))
    }

    /// As [`Connection::recv_bytes`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.end.recv_vec(None).map_err(untimed)
    }

    /// As [`Connection::recv_bytes_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes_timeout`].
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.end.recv_vec(Some(Deadline::after(timeout)))
    }

    /// As [`Connection::recv_bytes_max`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes_max`].
    pub fn recv_bytes_max(&mut self, max: usize) -> Result<Vec<u8>, RecvBytesError> {
        self.end.recv_max(max)
    }

    /// As [`Connection::recv_bytes_into`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes_into`].
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvBytesError> {
        self.end.recv_into_slice(buf)
    }

    /// As [`Connection::recv_bytes_into_vec`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_bytes_into_vec`].
    pub fn recv_bytes_into_vec(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.end.recv_into_vec(out)
    }

    /// As [`Connection::poll`].
    ///
    /// # Errors
    ///
    /// As [`Connection::poll`].
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, RecvError> {
        self.end.poll(timeout)
    }

    /// As [`Connection::close`].
    pub fn close(self) {
        drop(self);
    }

    /// As [`Connection::dropped_messages`].
    pub fn dropped_messages(&self) -> u64 {
        self.end.asm.dropped
    }
}

/// The sending end of a one-way pipe (Python: `w` of `r, w = Pipe(duplex=False)`). It has no
/// `recv` or `poll`: Python's `OSError('connection is write-only')` is a compile error here.
#[derive(Debug)]
pub struct PipeWriter {
    end: End,
}

impl PipeWriter {
    /// As [`Connection::send`].
    ///
    /// # Errors
    ///
    /// As [`Connection::send`].
    pub fn send<T: Message>(&mut self, value: &T) -> Result<(), SendError> {
        self.end.send_value(value)
    }

    /// As [`Connection::send_bytes`].
    ///
    /// # Errors
    ///
    /// As [`Connection::send_bytes`].
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.end.send(bytes)
    }

    /// As [`Connection::close`]: the reader gets EOF after draining.
    pub fn close(self) {
        drop(self);
    }
}

impl Passable for PipeReader {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.end.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let end = End::import(input)?;
        if end.duplex || end.role != 0 {
            return Err(PassError::WrongKind {
                expected: "the reader of a one-way pipe",
                found: describe(&end),
            });
        }
        Ok(PipeReader { end })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(self.end.adopt()?)
    }
}

impl Passable for PipeWriter {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.end.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let end = End::import(input)?;
        if end.duplex || end.role != 1 {
            return Err(PassError::WrongKind {
                expected: "the writer of a one-way pipe",
                found: describe(&end),
            });
        }
        Ok(PipeWriter { end })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(self.end.adopt()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that writes garbage records (as a buggy or hostile writer could) makes `recv`
    /// fail with `Corrupt` or `Decode` — never a panic, never a partial message — and the
    /// stream carries on with the next well-formed message.
    #[test]
    fn garbage_records_are_errors_and_the_stream_recovers() {
        let (mut a, mut b) = pipe().unwrap();
        let ring = rings::attach(&a.end.obj, 1).unwrap(); // ring 1 carries A → B
        let me = a.end.obj.ring_id().unwrap();
        {
            let mut w = ring.claim_writer(me).unwrap();
            w.try_write(&u64::MAX.to_le_bytes()).unwrap(); // claims an absurd length
            w.try_write(b"abc").unwrap(); // shorter than the length header
            let mut rec = 3u64.to_le_bytes().to_vec();
            rec.extend_from_slice(&[0xff; 3]); // well framed, not an archive of u64
            w.try_write(&rec).unwrap();
            std::mem::forget(w); // keep the role, as the end's own writer would
        }
        assert_eq!(b.recv::<u64>(), Err(RecvError::Corrupt));
        assert_eq!(b.recv::<u64>(), Err(RecvError::Corrupt));
        assert!(matches!(b.recv::<u64>(), Err(RecvError::Decode(_))));
        assert_eq!(b.dropped_messages(), 2);
        a.send(&5u64).unwrap();
        assert_eq!(b.recv::<u64>(), Ok(5));
    }

    #[test]
    fn capacity_is_checked() {
        for bad in [0, 1000, MIN_CAPACITY / 2, MAX_CAPACITY * 2] {
            assert!(matches!(
                PipeOptions::new().capacity(bad).duplex(),
                Err(CreateError::InvalidCapacity { .. })
            ));
        }
        let (mut r, mut w) = PipeOptions::new().capacity(MIN_CAPACITY).oneway().unwrap();
        let big = vec![3u8; 10_000];
        let t = std::thread::spawn(move || w.send_bytes(&big));
        assert_eq!(r.recv_bytes().unwrap(), vec![3u8; 10_000]);
        assert_eq!(t.join().unwrap(), Ok(()));
    }
}
