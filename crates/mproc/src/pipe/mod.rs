//! Pipes: Python's `multiprocessing.Pipe` and `Connection`, over shared-memory record rings,
//! typed at both ends.
//!
//! ```
//! use mproc::pipe;
//!
//! // Python: a, b = Pipe(). `a` sends Strings and receives u64s; `b` the other way round.
//! let (mut a, mut b) = pipe::pipe::<String, u64>()?;
//! a.send(&String::from("hello"))?;
//! assert_eq!(b.recv()?, "hello");
//! b.send(&5)?;
//! assert_eq!(a.recv()?, 5);
//! b.send_bytes(b"raw bytes")?; // untyped, as Python's send_bytes
//! assert_eq!(a.recv_bytes()?, b"raw bytes");
//! drop(b); // the last holder of end B is gone ...
//! assert!(a.recv().is_err()); // ... so `recv` reports EOF instead of hanging
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shape
//!
//! | Python | mproc |
//! |---|---|
//! | `a, b = Pipe()` | [`pipe::<A, B>()`](pipe()) → `(Connection<A, B>, Connection<B, A>)`; `pipe::<T, T>()` for one type both ways |
//! | `r, w = Pipe(duplex=False)` | [`pipe_oneway::<T>()`](pipe_oneway()) → `(PipeReader<T>, PipeWriter<T>)` — reader first, as in Python |
//! | `conn.send(obj)` / `conn.recv()` | [`Connection::send`] / [`Connection::recv`] (the end's [`Message`] types) |
//! | `conn.send_bytes(b)` / `conn.recv_bytes()` | [`Connection::send_bytes`] / [`Connection::recv_bytes`] (untyped) |
//! | `conn.recv_bytes(maxlength)` | [`Connection::recv_bytes_max`] (keeps a longer message queued) |
//! | `conn.recv_bytes_into(buf)` | [`Connection::recv_bytes_into`] (`&mut [u8]`), [`Connection::recv_bytes_into_vec`] |
//! | `conn.poll(timeout)`, `poll(None)` | [`Connection::poll`]`(Some(timeout))`, `poll(None)` (blocks) |
//! | `recv` after `poll(t)` | [`Connection::recv_timeout`] (one call, one deadline) |
//! | `conn.close()` | [`Connection::close`] (consumes it; so does `drop`) |
//! | `EOFError`, `BrokenPipeError`, `BufferTooShort` | [`RecvError::Disconnected`], [`SendError::Disconnected`], [`RecvBytesError::BufferTooShort`] |
//! | unpickling error | [`RecvError::Decode`] with a [`MessageError`] |
//! | `OSError('connection is read-only' / 'write-only')` | does not compile: a [`PipeReader`] has no `send`, a [`PipeWriter`] no `recv` |
//! | `OSError('handle is closed')` | does not compile: `close` consumes the end |
//!
//! One type, [`Connection<S, R>`](Connection), is every end: it sends `S` and receives `R`.
//! A one-way pipe's ends are the same type with one direction marked missing:
//! [`PipeReader<T>`] is `Connection<`[`ReadOnly`]`, T>` and [`PipeWriter<T>`] is
//! `Connection<T, `[`WriteOnly`]`>` (as in Python, where both are `Connection` objects, one
//! read-only and one write-only — except that here the missing methods do not exist, and the
//! compiler's error names the marker: "the method `send` exists for struct
//! `Connection<ReadOnly, u32>`, but its trait bounds were not satisfied").
//!
//! Each direction is one SPSC [`RecordRing`] (64 KiB by default,
//! see [`PipeOptions::capacity`]) in one shared-memory segment. Messages of any size work:
//! one larger than a record is streamed through the ring in fragments and reassembled in the
//! receiver's private memory; the receiver sees it only once it is whole.
//!
//! # Types are checked, not trusted
//!
//! An end cannot be sent the wrong type: `send` takes `&S` (a compile error otherwise). The
//! pipe's shared-memory segment records the message types of both directions in its
//! fingerprint, so an end passed to a spawned child can only be imported as the type it was
//! created with (anything else fails the start with the segment's wrong-type error, as a
//! `Queue<u64>` imported as a `Queue<String>` does). And bytes that reach a typed `recv`
//! anyway — a [`send_bytes`](Connection::send_bytes) of arbitrary bytes, or a hostile peer —
//! are an error, never a value: a typed message is its rkyv archive followed by an 8-byte
//! check of its type, which `recv` compares before validating the archive (bytecheck) and
//! deserialising it. A mismatch is [`RecvError::Decode`] (the message is consumed).
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
//! ```compile_fail,E0599
//! let (mut r, _w) = mproc::pipe_oneway::<u32>()?;
//! r.send(&1u32)?; // no `send` on a PipeReader
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```compile_fail,E0599
//! let (_r, mut w) = mproc::pipe_oneway::<u32>()?;
//! let _ = w.recv(); // no `recv` on a PipeWriter
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```compile_fail,E0308
//! let (mut a, _b) = mproc::pipe::<u32, u32>()?;
//! a.send(&String::from("x"))?; // this end sends u32s
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```compile_fail,E0599
//! let (a, _b) = mproc::pipe::<u32, u32>()?;
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

mod connection;
mod end;
mod error;
mod frame;
mod pass;
mod rings;

use std::sync::Arc;

use mproc_ring::{RecordRing, RecordShape};

pub use connection::Connection;
pub use error::{RecvBytesError, RecvError, RecvTimeoutError, SendError};

use self::end::End;
use self::frame::Assembler;
#[cfg(doc)]
use crate::message::MessageError;
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

/// The two ends of a duplex pipe: the first sends `A` and receives `B`, the second the
/// other way round ([`pipe()`], [`PipeOptions::duplex`]).
pub type ConnectionPair<A, B> = (Connection<A, B>, Connection<B, A>);

/// The receiving end of a one-way pipe (Python: `r` of `r, w = Pipe(duplex=False)`): a
/// [`Connection`] that receives `T` and sends nothing, so it has no `send` (Python's
/// `OSError('connection is read-only')` is a compile error here).
pub type PipeReader<T> = Connection<ReadOnly, T>;

/// The sending end of a one-way pipe (Python: `w` of `r, w = Pipe(duplex=False)`): a
/// [`Connection`] that sends `T` and receives nothing, so it has no `recv` or `poll`
/// (Python's `OSError('connection is write-only')` is a compile error here).
pub type PipeWriter<T> = Connection<T, WriteOnly>;

/// The send side of a one-way pipe's reader: [`PipeReader<T>`] is `Connection<ReadOnly, T>`.
/// No value of it exists, and it is not a [`Message`], so the reader has no `send` (Python:
/// `OSError('connection is read-only')`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnly {}

/// The receive side of a one-way pipe's writer: [`PipeWriter<T>`] is
/// `Connection<T, WriteOnly>`. No value of it exists, and it is not a [`Message`], so the
/// writer has no `recv` or `poll` (Python: `OSError('connection is write-only')`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOnly {}

mod sealed {
    pub trait Sealed {}
    impl<T: super::Message> Sealed for T {}
    impl Sealed for super::ReadOnly {}
    impl Sealed for super::WriteOnly {}
}

/// What one direction of a [`Connection`] carries: a [`Message`] type, or [`ReadOnly`] /
/// [`WriteOnly`] for a direction the end does not have. Implemented for exactly those; sealed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be carried by a pipe: it is not an mproc `Message`",
    label = "not a `Message`",
    note = "derive `rkyv::Archive, rkyv::Serialize, rkyv::Deserialize` for `{Self}` (see `mproc::Message`)"
)]
pub trait Carried: sealed::Sealed + 'static {
    /// The type tag of the direction's messages (`None` for a missing direction).
    #[doc(hidden)]
    fn tag() -> Option<String>;
}

impl<T: Message + 'static> Carried for T {
    fn tag() -> Option<String> {
        Some(message::type_tag::<T>())
    }
}

impl Carried for ReadOnly {
    fn tag() -> Option<String> {
        None
    }
}

impl Carried for WriteOnly {
    fn tag() -> Option<String> {
        None
    }
}

/// How a pipe looks from an end of type `Connection<S, R>` holding `role`: whether it is
/// duplex, and the fingerprint of its segment, which records the message type carried
/// *into* each role (ring `i` carries messages into role `i`). Both ends of one pipe compute
/// the same fingerprint; an end of any other type (or of the wrong role of a one-way pipe)
/// computes another one.
#[derive(Debug)]
pub(super) struct Identity {
    pub(super) duplex: bool,
    pub(super) fingerprint: u64,
    pub(super) type_name: String,
}

impl Identity {
    pub(super) fn of<S: Carried, R: Carried>(role: u32) -> Identity {
        let (sends, receives) = (S::tag(), R::tag());
        let duplex = sends.is_some() && receives.is_some();
        let (into_0, into_1) = if role == 0 {
            (&receives, &sends)
        } else {
            (&sends, &receives)
        };
        let show = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
        let tag = format!("{}|{}", show(into_0), show(into_1));
        Identity {
            duplex,
            fingerprint: object::fingerprint(ObjectKind::Pipe, &tag),
            type_name: format!(
                "Connection<{}, {}>",
                std::any::type_name::<S>(),
                std::any::type_name::<R>()
            ),
        }
    }
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

    /// Creates the pipe object the role-0 end `Connection<S, R>` belongs to.
    fn create<S: Carried, R: Carried>(&self) -> Result<(Arc<Object>, Identity), CreateError> {
        let cap = self.capacity;
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            return Err(CreateError::capacity(
                "pipe capacity",
                cap,
                "a power of two in MIN_CAPACITY..=MAX_CAPACITY",
            ));
        }
        let id = Identity::of::<S, R>(0);
        let shape = RecordShape { capacity: cap };
        let ring_len = RecordRing::required_size(shape)? as u64;
        let regions = if id.duplex {
            vec![ring_len; 2]
        } else {
            vec![ring_len]
        };
        let spec = ObjectSpec {
            kind: ObjectKind::Pipe,
            fingerprint: id.fingerprint,
            roles: 2,
            regions: &regions,
        };
        let n = regions.len();
        let obj = Object::create(&spec, None, Some(PARTICIPANTS), |obj| {
            rings::init(obj, shape, n)
        })?;
        Ok((Arc::new(obj), id))
    }

    /// Creates a duplex pipe: two connected ends, the first sending `A` and receiving `B`,
    /// the second the other way round. Python: `Pipe()` / `Pipe(duplex=True)`.
    ///
    /// # Errors
    ///
    /// An invalid capacity, or the shared-memory segment could not be created.
    pub fn duplex<A: Message + 'static, B: Message + 'static>(
        &self,
    ) -> Result<ConnectionPair<A, B>, CreateError> {
        let (obj, id) = self.create::<A, B>()?;
        let a = End::new(obj.clone(), id.duplex, 0, Assembler::default())?;
        let b = End::new(obj, id.duplex, 1, Assembler::default())?;
        Ok((Connection::from_end(a), Connection::from_end(b)))
    }

    /// Creates a one-way pipe carrying `T`: `(reader, writer)`, in Python's order. Python:
    /// `Pipe(duplex=False)`.
    ///
    /// # Errors
    ///
    /// As [`PipeOptions::duplex`].
    pub fn oneway<T: Message + 'static>(
        &self,
    ) -> Result<(PipeReader<T>, PipeWriter<T>), CreateError> {
        let (obj, id) = self.create::<ReadOnly, T>()?;
        let r = End::new(obj.clone(), id.duplex, 0, Assembler::default())?;
        let w = End::new(obj, id.duplex, 1, Assembler::default())?;
        Ok((Connection::from_end(r), Connection::from_end(w)))
    }
}

/// Creates a duplex pipe with default options: the first end sends `A` and receives `B`,
/// the second sends `B` and receives `A`. Python: `a, b = Pipe()`.
///
/// # Errors
///
/// The shared-memory segment could not be created.
pub fn pipe<A: Message + 'static, B: Message + 'static>()
-> Result<ConnectionPair<A, B>, CreateError> {
    PipeOptions::new().duplex()
}

/// Creates a one-way pipe carrying `T`, with default options: `(reader, writer)`. Python:
/// `r, w = Pipe(duplex=False)`.
///
/// # Errors
///
/// The shared-memory segment could not be created.
pub fn pipe_oneway<T: Message + 'static>() -> Result<(PipeReader<T>, PipeWriter<T>), CreateError> {
    PipeOptions::new().oneway()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that writes garbage records (as a buggy or hostile writer could) makes `recv`
    /// fail with `Corrupt` or `Decode` — never a panic, never a partial message — and the
    /// stream carries on with the next well-formed message.
    #[test]
    fn garbage_records_are_errors_and_the_stream_recovers() {
        let (mut a, mut b) = pipe::<u64, u64>().unwrap();
        let ring = rings::attach(&a.end.obj, 1).unwrap(); // ring 1 carries A → B
        let me = a.end.obj.me().unwrap();
        {
            let mut w = ring.claim_writer(me).unwrap();
            w.try_write(&u64::MAX.to_le_bytes()).unwrap(); // claims an absurd length
            w.try_write(b"abc").unwrap(); // shorter than the length header
            let mut rec = 3u64.to_le_bytes().to_vec();
            rec.extend_from_slice(&[0xff; 3]); // well framed, not an archive of u64
            w.try_write(&rec).unwrap();
            std::mem::forget(w); // keep the role, as the end's own writer would
        }
        assert_eq!(b.recv(), Err(RecvError::Corrupt));
        assert_eq!(b.recv(), Err(RecvError::Corrupt));
        assert!(matches!(b.recv(), Err(RecvError::Decode(_))));
        assert_eq!(b.dropped_messages(), 2);
        a.send(&5u64).unwrap();
        assert_eq!(b.recv(), Ok(5));
    }

    #[test]
    fn capacity_is_checked() {
        for bad in [0, 1000, MIN_CAPACITY / 2, MAX_CAPACITY * 2] {
            assert!(matches!(
                PipeOptions::new().capacity(bad).duplex::<u8, u8>(),
                Err(CreateError::InvalidCapacity { .. })
            ));
        }
        let (mut r, mut w) = PipeOptions::new()
            .capacity(MIN_CAPACITY)
            .oneway::<Vec<u8>>()
            .unwrap();
        let big = vec![3u8; 10_000];
        let t = std::thread::spawn(move || w.send_bytes(&big));
        assert_eq!(r.recv_bytes().unwrap(), vec![3u8; 10_000]);
        assert_eq!(t.join().unwrap(), Ok(()));
    }
}
