//! The slot wire format and slot-level push and pop: a message travels inline in its ring
//! slot ([`TAG_INLINE`]) or in an arena block the slot names ([`TAG_ARENA`], a
//! [`DESC_LEN`]-byte descriptor); [`Staged`] is where a put's bytes go, [`Block`] an arena
//! block a get took, [`Popped`] what a pop lends to its `finish` closure.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::Arc;

use mproc_core::shared::{SharedBytes, copy_from_shared, copy_from_shared_uninit, shared_bytes};
use mproc_ring::{TryPopError, TryPushError};
use mproc_shm::{Arena, ArenaError, Offset};
use rkyv::util::AlignedVec;

use super::{GetTimeoutError, Queue, Shared};
use crate::message::{self, ARCHIVE_ALIGN, Message, MessageError};
use crate::shared::sync::Ordering;
use crate::wait;

/// Last byte of a slot: the archive is inline, before it.
pub(super) const TAG_INLINE: u8 = 0x51;
/// Last byte of a slot: 16 bytes before it are `(offset: u64, len: u64)` (LE) of an arena
/// block holding the archive.
pub(super) const TAG_ARENA: u8 = 0xA7;
pub(super) const DESC_LEN: usize = 16;

/// The arena descriptor of a slot: `(offset, len)` as 16 little-endian bytes.
fn desc_encode(off: u64, len: u64) -> [u8; DESC_LEN] {
    let mut d = [0u8; DESC_LEN];
    d[..8].copy_from_slice(&off.to_le_bytes());
    d[8..].copy_from_slice(&len.to_le_bytes());
    d
}

/// `(offset, len)` from the first [`DESC_LEN`] bytes of `b` (untrusted), if it has them.
pub(super) fn desc_decode(b: &[u8]) -> Option<(u64, u64)> {
    let d: &[u8; DESC_LEN] = b.get(..DESC_LEN)?.try_into().ok()?;
    let (off, len) = d.split_at(8);
    Some((
        u64::from_le_bytes(off.try_into().ok()?),
        u64::from_le_bytes(len.try_into().ok()?),
    ))
}

impl<T: Message> Queue<T> {
    /// Decides where the encoded message goes: inline, or an arena block (allocated lazily
    /// by the first push attempt, since the arena may be full for now).
    pub(super) fn stage(&self, bytes: &[u8]) -> Result<Staged, MessageError> {
        let inline_max = self.shared.ring.slot_size() as usize - 1;
        if bytes.len() <= inline_max {
            return Ok(Staged::Inline);
        }
        let max = self.shared.arena.max_alloc();
        if bytes.len() > max {
            return Err(MessageError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        Ok(Staged::Arena(None))
    }

    /// One push attempt; `None` means "would block" (full ring or full arena).
    pub(super) fn try_push_staged(
        &self,
        me: mproc_ring::ParticipantId,
        bytes: &[u8],
        staged: &mut Staged,
    ) -> Option<Result<(), MessageError>> {
        let sh = &*self.shared;
        let mut frame = [0u8; DESC_LEN + 1];
        let payload: &[u8] = match staged {
            Staged::Sent => return Some(Ok(())),
            Staged::Inline => bytes,
            Staged::Arena(block) => {
                let off = match block {
                    Some(off) => *off,
                    None => {
                        // Marked as ours until the slot takes it (see `mproc_shm::Arena`,
                        // "Held blocks"): if we die before, recovery frees it.
                        let off = match sh.arena.alloc_marked(bytes.len(), ARCHIVE_ALIGN, me.get())
                        {
                            Ok(off) => off,
                            // Room may come free: wait for it (a consumer's free rings us).
                            Err(ArenaError::OutOfMemory { .. }) => return None,
                            Err(e) => return Some(Err(self.arena_error(e))),
                        };
                        let Ok(p) = sh.arena.ptr(off, bytes.len()) else {
                            let _ = sh.arena.free(off);
                            return Some(Err(MessageError::Encode(
                                "arena returned a bad block".into(),
                            )));
                        };
                        // SAFETY: `p` points at `bytes.len()` bytes of a block we own until
                        // a consumer frees it; nobody else writes it.
                        unsafe {
                            p.as_ptr()
                                .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
                        };
                        *block = Some(off);
                        off
                    }
                };
                frame[..DESC_LEN].copy_from_slice(&desc_encode(off.get(), bytes.len() as u64));
                &frame[..DESC_LEN]
            }
        };
        let tag = match staged {
            Staged::Inline | Staged::Sent => TAG_INLINE,
            Staged::Arena(_) => TAG_ARENA,
        };
        let block = match staged {
            Staged::Arena(Some(off)) => Some(*off),
            _ => None,
        };
        let r = sh.ring.try_push_at(me, |stamp, slot| {
            let n = payload.len();
            if n + 1 > slot.len() {
                return None;
            }
            slot[..n].copy_from_slice(payload);
            slot[n] = tag;
            if let Some(off) = block {
                // After the descriptor, before the commit: a death from here on leaves a
                // claim whose payload names the block, which its recoverer frees.
                let _ = sh.arena.mark_queued(off, stamp);
                #[cfg(feature = "test-hooks")]
                crate::fault::after_arena_handoff();
            }
            Some(n + 1)
        });
        match r {
            Ok(()) => {
                *staged = Staged::Sent;
                Some(Ok(()))
            }
            Err(TryPushError::Full | TryPushError::Contended) => None,
            Err(TryPushError::Recovered) => {
                // Our claim was resolved by a recoverer that judged us dead (only a wrong
                // liveness answer does that). Its hook may have freed the block we had handed
                // to the slot: forget it (a leak at worst, never a block freed twice) and
                // stage the message again on the retry.
                if let Staged::Arena(block) = staged {
                    *block = None;
                }
                None
            }
            Err(TryPushError::TooLarge { .. } | TryPushError::Cancelled) => {
                Some(Err(MessageError::TooLarge {
                    len: payload.len(),
                    max: sh.ring.slot_size() as usize - 1,
                }))
            }
            // Never "would block": a corrupt ring stays corrupt (it is poisoned), and waiting
            // on it would be the silent timeout of issue #13.
            Err(TryPushError::Corrupt) => Some(Err(MessageError::Corrupt)),
            // `TryPushError` is non-exhaustive: anything else is treated as corruption.
            Err(_) => Some(Err(MessageError::Corrupt)),
        }
    }

    /// One pop attempt: `None` = nothing to take now. The message is handed to `finish`
    /// while its slot is still claimed, so a process that dies before `finish` has put the
    /// value in private memory (copied, validated, deserialised) dies holding the claim, and
    /// recovery counts the item in [`Queue::lost`]; if `finish` unwinds (a panicking
    /// `Deserialize`, a failed allocation), the claim is released and the item dropped.
    /// `notify`: wake producers waiting for room (a batch passes `false` and rings once at
    /// its end).
    pub(super) fn try_take<R>(
        &self,
        me: mproc_ring::ParticipantId,
        notify: bool,
        finish: &impl Fn(Popped<'_>) -> Result<R, MessageError>,
    ) -> Option<Result<R, MessageError>> {
        let sh = &*self.shared;
        // The slot's bytes are lent as `SharedBytes` and read only through atomics: a peer
        // writing the slot while we hold it (none should) changes what we read, never makes
        // reading it undefined.
        let r = sh
            .ring
            .try_pop_shared_with(me, |slot| -> Result<R, MessageError> {
                let Some((tag, body)) = slot.split_last() else {
                    return Err(MessageError::Invalid("empty slot".into()));
                };
                // Relaxed: ordered after the producer's writes by the ring's Acquire of the slot.
                let tag = tag.load(Ordering::Relaxed);
                match tag {
                    TAG_INLINE => finish(Popped::Inline(body)),
                    TAG_ARENA if body.len() == DESC_LEN => {
                        let mut desc = [0u8; DESC_LEN];
                        copy_from_shared(&mut desc, body);
                        let (off, len) = desc_decode(&desc).expect("DESC_LEN bytes");
                        finish(Popped::Block(Block::claim(&self.shared, off, len)?))
                    }
                    _ => Err(MessageError::Invalid(format!("bad slot tag {tag:#x}"))),
                }
            });
        match r {
            Ok(taken) => {
                // A slot is free: wake a producer blocked on a full ring.
                if notify {
                    wait::ring(sh.ring.space_doorbell());
                }
                Some(taken)
            }
            Err(TryPopError::Empty | TryPopError::Contended | TryPopError::Recovered) => None,
            // As for a push: reported, never waited on.
            Err(TryPopError::Corrupt) => Some(Err(MessageError::Corrupt)),
            Err(TryPopError::BufferTooSmall { .. }) => Some(Err(MessageError::Invalid(
                "queue slot failed validation".into(),
            ))),
            // `TryPopError` is non-exhaustive: anything else is treated as corruption.
            Err(_) => Some(Err(MessageError::Corrupt)),
        }
    }
}

/// Copies a popped archive into `sink` (private, aligned memory) with
/// [`copy_from_shared`], frees its arena block if it had one, then validates and
/// deserialises the copy: the default, hostile-safe read (the bytes are checked where no
/// peer can change them).
pub(super) fn decode_private<T: Message>(
    sink: &mut AlignedVec,
    popped: Popped<'_>,
) -> Result<T, MessageError> {
    match popped {
        Popped::Inline(body) => copy_private(sink, body),
        Popped::Block(block) => {
            copy_private(sink, block.shared());
            // Freed while the slot is still claimed: a death from here on is a counted loss.
            drop(block);
        }
    }
    message::decode::<T>(sink)
}

/// Replaces `sink`'s contents with a copy of `bytes` (see [`copy_from_shared`]).
pub(super) fn copy_private(sink: &mut AlignedVec, bytes: &SharedBytes) {
    let n = bytes.len();
    sink.clear();
    sink.reserve(n);
    // SAFETY: `reserve` made room for `n` bytes at `as_mut_ptr()`; viewed as
    // `MaybeUninit<u8>` they need no initialisation, and nothing else aliases the buffer.
    let spare = unsafe { std::slice::from_raw_parts_mut(sink.as_mut_ptr().cast(), n) };
    copy_from_shared_uninit(spare, bytes);
    // SAFETY: `copy_from_shared_uninit` initialised all `n` bytes, within the capacity.
    unsafe { sink.set_len(n) };
}
/// A popped message, lent to a `finish` closure while its slot is still claimed.
pub(super) enum Popped<'a> {
    /// An inline archive, still in the slot (unaligned: copy it before reading).
    Inline(&'a SharedBytes),
    /// An out-of-line archive, in an arena block we now own.
    Block(Block),
}
/// Where a staged put's bytes go.
pub(super) enum Staged {
    Inline,
    /// An arena block, once allocated.
    Arena(Option<Offset<u8>>),
    /// Pushed: the consumer owns the block now.
    Sent,
}

impl Staged {
    /// Frees an allocated block that was never sent.
    pub(super) fn release(&mut self, arena: &Arena) {
        if let Staged::Arena(Some(off)) = *self {
            let _ = arena.free(off);
        }
        *self = Staged::Sent;
    }
}

/// An arena block taken from the queue: ours to read; freed on drop (then producers waiting
/// for arena room are woken).
pub(super) struct Block {
    shared: Arc<Shared>,
    off: Offset<u8>,
    ptr: NonNull<u8>,
    len: usize,
}

impl Block {
    /// Checks a descriptor read from a slot (untrusted) and takes the block.
    fn claim(shared: &Arc<Shared>, off: u64, len: u64) -> Result<Block, MessageError> {
        let bad = || MessageError::Invalid(format!("bad arena descriptor ({off}, {len})"));
        let arena = &shared.arena;
        let len = usize::try_from(len).map_err(|_| bad())?;
        if len > arena.max_alloc() {
            return Err(bad());
        }
        let off = Offset::new(off);
        let ptr = arena.ptr(off, len).map_err(|_| bad())?;
        if !(ptr.as_ptr() as usize).is_multiple_of(ARCHIVE_ALIGN) {
            return Err(bad());
        }
        Ok(Block {
            shared: shared.clone(),
            off,
            ptr,
            len,
        })
    }

    /// Marks the block held by this process (see `Arena::hold`).
    pub(super) fn hold(&self, shared: &Shared) -> Result<(), GetTimeoutError> {
        let me = shared
            .obj
            .me()
            .map_err(|e| GetTimeoutError::Message(MessageError::Invalid(e.to_string())))?;
        shared
            .arena
            .hold(self.off, me.get())
            .map_err(|e| GetTimeoutError::Message(MessageError::Invalid(e.to_string())))
    }

    /// The block's bytes as [`SharedBytes`]: the default way to read them (copy them out
    /// with [`copy_from_shared`]).
    pub(super) fn shared(&self) -> &SharedBytes {
        // SAFETY: `ptr..ptr+len` was checked to lie inside the arena, which is mapped while
        // `self.shared` keeps the segment alive; read only atomically through this view.
        unsafe { shared_bytes(self.ptr, self.len) }
    }

    /// The block's bytes as a `&[u8]`, for reading in place ([`Queue::get_ref`] only).
    ///
    /// The hazard: a `&[u8]` promises that nobody writes the bytes while it lives. The
    /// block was handed to us by the descriptor we consumed, so no honest peer writes it
    /// until we free it; a hostile process mapping the segment could, and a read racing
    /// with its write is undefined behaviour (and could change bytes after validation).
    /// That is `get_ref`'s documented limit; every other path copies with `shared`.
    pub(super) fn in_place(&self) -> &[u8] {
        // SAFETY: as in `shared`, and no honest peer writes the block until we free it (see
        // above for the hostile case, the documented limit of `get_ref`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // A bad free (a hostile descriptor naming someone else's block) is refused by the
        // arena; nothing else to do about it here.
        let _ = self.shared.arena.free(self.off);
        wait::ring(self.shared.ring.space_doorbell());
    }
}
