//! Zero-copy gets: [`Queue::get_ref`] and its guard [`Ref`], which lends a received
//! message in place as `&Archived<T>`.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use rkyv::Archived;
use rkyv::util::AlignedVec;

use super::blocking::{nowait_get_error, untimed_get_error};
use super::slot::{Block, Popped, copy_private};
use super::{GetError, GetTimeoutError, Queue, TryGetError};
use crate::message::{self, Message, MessageError};
use crate::wait::Wait;

impl<T: Message> Queue<T> {
    /// Takes the next item and lends its archived form (`&Archived<T>`) through a guard,
    /// blocking while the queue is empty. Out-of-line messages are validated in place in the
    /// arena and never copied (their block is freed when the guard drops); inline ones
    /// (small by definition) are copied out of the slot first. Validating in place protects
    /// against buggy peers, not hostile ones: a process that rewrites the block while the
    /// guard lives races with our reads of `&Archived<T>` (undefined behaviour, and bytes
    /// changed after the check). Honest peers never write a block they handed over; use
    /// [`Queue::get`], which validates a private copy, when peers are untrusted.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get_ref(&self) -> Result<Ref<'_, T>, GetError> {
        self.get_ref_deadline(Wait::Forever)
            .map_err(untimed_get_error)
    }

    /// [`Queue::get_ref`] without blocking.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_nowait`].
    pub fn get_ref_nowait(&self) -> Result<Ref<'_, T>, TryGetError> {
        self.get_ref_deadline(Wait::Never).map_err(nowait_get_error)
    }

    fn get_ref_deadline(&self, mode: Wait) -> Result<Ref<'_, T>, GetTimeoutError> {
        // The slot is released once the archive is private (inline) or in a block we own
        // (out of line), and validated: a bad message is dropped while we still hold it.
        let lend = |popped: Popped<'_>| -> Result<RefBytes, MessageError> {
            let raw = match popped {
                Popped::Inline(body) => {
                    let mut private = AlignedVec::new();
                    copy_private(&mut private, body);
                    RefBytes::Private(private)
                }
                Popped::Block(b) => RefBytes::Block(b),
            };
            message::access::<T>(raw.bytes())?;
            Ok(raw)
        };
        let raw = self.take_deadline(mode, &lend)?;
        if let RefBytes::Block(b) = &raw {
            // The slot is released: from here the block is the guard's alone. Mark it held by
            // this process, so that if the process dies with the guard, recovery frees the
            // block and counts the item in `lost()` (a death before this store leaks it,
            // uncounted: the documented window after a slot's release).
            b.hold(&self.shared)?;
        }
        Ok(Ref {
            raw,
            _q: PhantomData,
        })
    }
}

enum RefBytes {
    Private(AlignedVec),
    Block(Block),
}

impl RefBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            RefBytes::Private(v) => v,
            RefBytes::Block(b) => b.in_place(),
        }
    }
}

/// A received message lent in place as `&Archived<T>` (see [`Queue::get_ref`]); validated
/// when it was taken. Dropping it frees the message's arena block.
pub struct Ref<'q, T: Message> {
    raw: RefBytes,
    _q: PhantomData<&'q Queue<T>>,
}

impl<T: Message> Ref<'_, T> {
    /// Deserialises the archived value into an owned `T`.
    ///
    /// # Errors
    ///
    /// [`MessageError::Invalid`] if rkyv's deserialiser fails.
    pub fn deserialize(&self) -> Result<T, MessageError> {
        message::deserialize::<T>(self)
    }

    /// Whether the value is read in place in shared memory (an out-of-line message), as
    /// opposed to a private copy (a small inline one).
    pub fn is_in_place(&self) -> bool {
        matches!(self.raw, RefBytes::Block(_))
    }
}

impl<T: Message> Deref for Ref<'_, T> {
    type Target = Archived<T>;

    fn deref(&self) -> &Archived<T> {
        // SAFETY: the bytes were validated as an `Archived<T>` (bytecheck, alignment) when
        // this guard was made and are ours since: a private copy, or an arena block only we
        // may touch until we free it on drop (a hostile peer writing it anyway is the
        // documented limit of `get_ref`).
        unsafe { rkyv::access_unchecked::<Archived<T>>(self.raw.bytes()) }
    }
}

impl<T: Message> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ref")
            .field("len", &self.raw.bytes().len())
            .field("in_place", &self.is_in_place())
            .finish()
    }
}
