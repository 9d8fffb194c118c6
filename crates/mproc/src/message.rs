//! Typed messages: one blanket trait, [`Message`], hiding rkyv 0.8's bounds, plus the
//! crate-internal encode/decode helpers every channel uses.
//!
//! A message is any type rkyv can serialise, validate (bytecheck) and deserialise: derive
//! `rkyv::Archive, rkyv::Serialize, rkyv::Deserialize` on your type (std types such as
//! integers, `String`, `Vec<T>`, `Option<T>` and tuples already are). Python's counterpart is
//! "picklable".
//!
//! # Validation modes
//!
//! Received bytes are validated before use, always. The channels' default (`get`, `recv`)
//! **copies** the archive into private memory (a reusable thread-local buffer, so no
//! allocation in steady state) and validates the copy: a hostile peer that rewrites the
//! shared bytes after validation cannot reach the value. The zero-copy variants (`get_ref`,
//! ...) validate in place, which is safe against buggy peers but not hostile ones (the bytes
//! could change between the check and the read). Only an `unsafe fn` skips validation.
//!
//! # Alignment
//!
//! rkyv archives need 16-byte alignment (`ARCHIVE_ALIGN`). Ring payloads and arena blocks
//! start 16-aligned; the helpers here check alignment and report a misaligned input as
//! [`MessageError::Invalid`] rather than reading it.

use std::cell::RefCell;
use std::fmt;

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::{Arena, ArenaHandle};
use rkyv::util::AlignedVec;
use rkyv::{Archive, Archived, Deserialize, Serialize};

/// Alignment every archive is written and read at.
pub(crate) const ARCHIVE_ALIGN: usize = 16;

/// A value that can travel through a `Queue` or `Connection`: anything rkyv 0.8 can
/// serialise, validate and deserialise. Implemented for every such type; not meant to be
/// implemented by hand.
///
/// Python: "picklable".
///
/// # Example
///
/// ```
/// fn takes<T: mproc::Message>(_: T) {}
/// takes(5u64);
/// takes(String::from("hi"));
/// takes((1u8, vec![Some(2i32)]));
///
/// #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// struct Job { id: u32, name: String }
/// takes(Job { id: 1, name: "x".into() });
///
/// // Without a dependency on rkyv of your own: mproc re-exports the version it uses.
/// #[derive(mproc::rkyv::Archive, mproc::rkyv::Serialize, mproc::rkyv::Deserialize)]
/// #[rkyv(crate = mproc::rkyv)]
/// struct Point { x: i32, y: i32 }
/// takes(Point { x: 1, y: 2 });
/// ```
///
/// A type that is not a `Message` is reported as such, with what to derive:
///
/// ```compile_fail,E0277
/// struct NotAMessage;
/// let _q: mproc::Queue<NotAMessage> = mproc::Queue::new().unwrap();
/// // error[E0277]: `NotAMessage` cannot travel between processes: it is not an mproc `Message`
/// //   = note: derive `rkyv::Archive, rkyv::Serialize, rkyv::Deserialize` for `NotAMessage` ...
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel between processes: it is not an mproc `Message`",
    label = "not a `Message`",
    note = "derive `rkyv::Archive, rkyv::Serialize, rkyv::Deserialize` for `{Self}` (and for every type it contains); integers, `String`, `Vec`, `Option`, tuples and arrays of such types already are messages",
    note = "`mproc::rkyv` is the rkyv version mproc uses: `#[derive(mproc::rkyv::Archive, ...)]` with `#[rkyv(crate = mproc::rkyv)]`"
)]
pub trait Message:
    Archive<
        Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
                      + Deserialize<Self, HighDeserializer<rancor::Error>>,
    > + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
    + Sized
{
}

// Not recommended in diagnostics: a type that is not a `Message` is then reported as such,
// with `Message`'s own message and notes, instead of by the first rkyv bound it misses.
#[diagnostic::do_not_recommend]
impl<T> Message for T where
    T: Archive<
            Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
                          + Deserialize<T, HighDeserializer<rancor::Error>>,
        > + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// rkyv could not serialise the value (its `Serialize` impl failed).
    #[error("message could not be serialised: {0}")]
    Encode(String),
    /// The received bytes are not a valid archive of the expected type (a buggy or hostile
    /// peer, or corrupt memory). The message is dropped. Python: `pickle.UnpicklingError`.
    #[error("received message is invalid: {0}")]
    Invalid(String),
    /// The message is larger than the channel can ever carry.
    #[error("message of {len} bytes is larger than the channel's limit of {max} bytes")]
    TooLarge {
        /// Encoded size in bytes.
        len: usize,
        /// The channel's largest message.
        max: usize,
    },
    /// The channel's shared memory breaks one of its ring's named invariants (a buggy or
    /// hostile peer wrote it; see `mproc_ring::mpmc`, "Corruption"). Sticky: once reported,
    /// every later put and get on the channel, from any handle, reports it too (counted
    /// once, in e.g. [`Queue::corrupt`](crate::Queue::corrupt)). Recreate the channel.
    #[error("channel memory is corrupt")]
    Corrupt,
}

/// A type tag for fingerprints: the type's name plus the size and alignment of its archived
/// form (`Archived<T>`), so two types that merely share a name in different builds are still
/// told apart most of the time.
pub(crate) fn type_tag<T: Message>() -> String {
    format!(
        "{}/{}/{}",
        std::any::type_name::<T>(),
        size_of::<Archived<T>>(),
        align_of::<Archived<T>>()
    )
}

/// A reusable encoding workspace: the output buffer and rkyv's scratch arena, both kept
/// between messages, so a steady stream of sends allocates nothing and skips rkyv's
/// thread-local arena (whose per-call acquire and shrink cost as much as encoding a small
/// value).
pub(crate) struct Scratch {
    /// The encoded archive; on the receiving side, a private copy of a received one.
    pub(crate) buf: AlignedVec,
    arena: Arena,
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("buf", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Scratch {
    /// Largest buffer kept between messages: one huge message does not pin its memory.
    const KEEP: usize = 1 << 20;

    pub(crate) fn new() -> Scratch {
        Scratch {
            buf: AlignedVec::new(),
            arena: Arena::new(),
        }
    }

    /// Empties the buffer for the next message, first letting go of what one huge message
    /// grew.
    pub(crate) fn reset(&mut self) {
        if self.buf.capacity() > Self::KEEP {
            self.buf = AlignedVec::new();
        }
        // (`Arena::shrink` keeps its largest block, so only a new arena lets it go.)
        if self.arena.capacity() > Self::KEEP {
            self.arena = Arena::new();
        }
        self.buf.clear();
    }

    /// Serialises `value` into [`Scratch::buf`] (cleared first, its allocation reused).
    ///
    /// # Errors
    ///
    /// [`MessageError::Encode`].
    pub(crate) fn encode<T: Message>(&mut self, value: &T) -> Result<(), MessageError> {
        self.buf.clear();
        let buf = std::mem::take(&mut self.buf);
        match rkyv::api::high::to_bytes_in_with_alloc::<_, _, rancor::Error>(
            value,
            buf,
            self.arena.acquire(),
        ) {
            Ok(buf) => {
                self.buf = buf;
                Ok(())
            }
            Err(e) => Err(MessageError::Encode(e.to_string())),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Runs `f` with this thread's reusable [`Scratch`] (reset), for senders that have no
/// handle of their own to keep one in. Re-entrant: a nested call (a `Serialize` impl that
/// itself sends) gets a fresh one.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            s.reset();
            f(&mut s)
        }
        Err(_) => f(&mut Scratch::new()),
    })
}

/// Validates `bytes` (bytecheck) as an archive of `T` and lends it in place.
///
/// # Errors
///
/// [`MessageError::Invalid`] if `bytes` is misaligned or not a valid archive.
pub(crate) fn access<T: Message>(bytes: &[u8]) -> Result<&Archived<T>, MessageError> {
    if !(bytes.as_ptr() as usize).is_multiple_of(ARCHIVE_ALIGN) {
        return Err(MessageError::Invalid("misaligned archive".into()));
    }
    rkyv::access::<Archived<T>, rancor::Error>(bytes)
        .map_err(|e| MessageError::Invalid(e.to_string()))
}

/// Validates `bytes` and deserialises a `T`.
///
/// # Errors
///
/// [`MessageError::Invalid`] as for [`access`], or if deserialisation fails.
pub(crate) fn decode<T: Message>(bytes: &[u8]) -> Result<T, MessageError> {
    let archived = access::<T>(bytes)?;
    deserialize::<T>(archived)
}

/// Deserialises an already validated archive.
///
/// # Errors
///
/// [`MessageError::Invalid`] if rkyv's deserialiser fails.
pub(crate) fn deserialize<T: Message>(archived: &Archived<T>) -> Result<T, MessageError> {
    rkyv::deserialize::<T, rancor::Error>(archived)
        .map_err(|e| MessageError::Invalid(e.to_string()))
}

/// Copies `bytes` (e.g. shared memory a peer may still write) into this thread's private
/// scratch buffer, validates the copy and deserialises it: the default, hostile-peer-safe
/// receive path.
///
/// # Errors
///
/// As [`decode`].
#[allow(dead_code)]
pub(crate) fn decode_copy<T: Message>(bytes: &[u8]) -> Result<T, MessageError> {
    with_scratch(|s| {
        s.buf.extend_from_slice(bytes);
        decode::<T>(&s.buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_vec_and_copy() {
        let v = (7u32, String::from("hello"), vec![1u64, 2, 3]);
        let mut s = Scratch::new();
        for round in 0..3 {
            // Reused between messages, including after one too big to keep.
            s.reset();
            s.encode(&v).unwrap();
            assert_eq!(decode::<(u32, String, Vec<u64>)>(&s.buf).unwrap(), v);
            assert_eq!(decode_copy::<(u32, String, Vec<u64>)>(&s.buf).unwrap(), v);
            if round == 1 {
                s.encode(&vec![0u8; 2 << 20]).unwrap();
                s.reset();
                assert!(s.buf.capacity() <= Scratch::KEEP);
            }
        }
    }

    #[test]
    fn garbage_and_misalignment_are_errors() {
        let mut s = Scratch::new();
        s.encode(&String::from("abc")).unwrap();
        let out = &s.buf;
        // Not a bool; not a char.
        let mut bad = AlignedVec::<16>::new();
        bad.extend_from_slice(&[7]);
        assert!(matches!(
            decode::<bool>(&bad),
            Err(MessageError::Invalid(_))
        ));
        bad.clear();
        bad.extend_from_slice(&[0xff; 4]);
        assert!(matches!(
            decode::<char>(&bad),
            Err(MessageError::Invalid(_))
        ));
        let mut shifted = AlignedVec::<16>::new();
        shifted.extend_from_slice(&[0u8]);
        shifted.extend_from_slice(out);
        assert!(matches!(
            access::<String>(&shifted[1..]),
            Err(MessageError::Invalid(_))
        ));
    }

    #[test]
    fn type_tags_differ() {
        assert_ne!(type_tag::<u64>(), type_tag::<String>());
    }
}
