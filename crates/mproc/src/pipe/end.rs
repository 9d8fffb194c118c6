//! One end of a pipe: the untyped, process-local state behind every
//! [`Connection`](super::Connection) (duplex ends, and the one-way
//! [`PipeReader`](super::PipeReader) and [`PipeWriter`](super::PipeWriter)). It moves bytes;
//! the typed face in `connection.rs` encodes and decodes.
//!
//! An end is holder role `role` of its pipe object (end A = 0, end B = 1; for a one-way pipe
//! the reader is 0 and the writer 1). It reads ring `role` (messages *into* it) and writes
//! ring `1 - role`; a one-way pipe has only ring 0.
//!
//! # Ring roles are claimed lazily
//!
//! The record ring's writer and reader roles name the participant using them, so they are
//! claimed by the process that actually sends or receives, at its first send/receive — not
//! when the end is created or adopted. While an end is being handed to a child, the parent
//! still holds the roles it used until it drops its copy (after the start hand-shake); the
//! child's first operation waits for that (the parent's drop rings every doorbell) or takes
//! the role over from a holder that died (`claim_*_from_dead`).
//!
//! # Drop
//!
//! Only an end stamped with the current fork epoch ([`Owner::is_current`]) releases
//! anything: its holder count, then its ring roles, then it rings every doorbell so blocked
//! peers re-check. A copy inherited through `fork` but not passed is forgotten silently (its
//! ring handles carry the parent's participant id and must not release the parent's roles).

use std::mem::ManuallyDrop;
use std::sync::Arc;

use mproc_ring::{ClaimError, Doorbell, RecordReader, RecordRing, RecordWriter, Role, WriteError};
use mproc_shm::ParticipantId;

use super::error::{RecvTimeoutError, SendError};
use super::frame::{self, Assembler, Outgoing, Pulled};
use super::rings;
use crate::handle::Owner;
use crate::storage::object::{Object, OpenError};
use crate::wait::{self, Outcome, Round, Wait};

/// Which rings an end uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    /// Reads and writes (a duplex connection).
    Both,
    /// Reads only (a one-way pipe's reader).
    Read,
    /// Writes only (a one-way pipe's writer).
    Write,
}

/// The state of one end (see the module docs).
#[derive(Debug)]
pub(super) struct End {
    pub(super) obj: Arc<Object>,
    pub(super) role: u32,
    pub(super) owner: Owner,
    /// Whether this end's holder count was acquired (and must be released on drop).
    counted: bool,
    incoming: Option<RecordRing>,
    outgoing: Option<RecordRing>,
    reader: Option<RecordReader>,
    writer: Option<RecordWriter>,
    pub(super) asm: Assembler,
}

/// Why a ring role could not be had right now.
enum Claim<T> {
    Got(T),
    /// Held by another live participant (an end in hand-over): wait.
    Busy,
    /// The ring's indices are corrupt.
    Corrupt,
}

impl End {
    /// Builds the end for `role` over `obj`'s rings and acquires its holder count.
    pub(super) fn new(
        obj: Arc<Object>,
        duplex: bool,
        role: u32,
        asm: Assembler,
    ) -> Result<End, OpenError> {
        let ring = |i: usize| rings::attach(&obj, i);
        let dir = Self::dir_of(duplex, role);
        let incoming = matches!(dir, Dir::Both | Dir::Read)
            .then(|| ring(role as usize))
            .transpose()?;
        let outgoing = matches!(dir, Dir::Both | Dir::Write)
            .then(|| ring(if duplex { 1 - role as usize } else { 0 }))
            .transpose()?;
        let mut end = End {
            obj,
            role,
            owner: Owner::current(),
            counted: false,
            incoming,
            outgoing,
            reader: None,
            writer: None,
            asm,
        };
        end.obj.acquire(role)?;
        end.counted = true;
        Ok(end)
    }

    fn dir_of(duplex: bool, role: u32) -> Dir {
        match (duplex, role) {
            (true, _) => Dir::Both,
            (false, 0) => Dir::Read,
            (false, _) => Dir::Write,
        }
    }

    /// The peer's holder role.
    fn peer(&self) -> u32 {
        1 - self.role
    }

    /// Panics unless this process holds the end (see the module docs of `pipe`).
    pub(super) fn check_owner(&self) {
        assert!(
            self.owner.is_current(),
            "mproc: this pipe end was inherited through fork but not passed to this process; \
             pass connections to a child in its Process arguments"
        );
    }

    /// Fork child: become the holder of this bitwise copy.
    pub(super) fn adopt(&mut self) -> Result<(), OpenError> {
        // The inherited ring handles carry the parent's participant id: never drop them.
        if let Some(r) = self.reader.take() {
            std::mem::forget(r);
        }
        if let Some(w) = self.writer.take() {
            std::mem::forget(w);
        }
        self.counted = false;
        self.owner.adopt();
        self.obj.acquire(self.role)?;
        self.counted = true;
        Ok(())
    }

    /// Every doorbell of the pipe (both rings).
    fn bells(&self) -> Vec<&Doorbell> {
        let mut v = Vec::with_capacity(4);
        for r in [&self.incoming, &self.outgoing].into_iter().flatten() {
            v.push(r.items_doorbell());
            v.push(r.space_doorbell());
        }
        v
    }

    // ---- sending ------------------------------------------------------------------------

    /// Sends one message (any length), blocking while the ring is full ([`Wait::Forever`]:
    /// Python's `send` has no timeout either; a dead reader ends the wait).
    pub(super) fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.check_owner();
        let ring = self
            .outgoing
            .as_ref()
            .expect("a writable end has an outgoing ring");
        // Fast check, one load of a word that rarely changes: the peer released its reader
        // role (closed, dropped, or handing over). Only then count live holders. A peer that
        // died without closing is noticed when the ring fills (see `SendError`).
        if ring.reader_role() == Role::Closed && peer_gone(&self.obj, self.peer(), true) {
            return Err(SendError::Disconnected);
        }
        let cap = ring.capacity();
        let (obj, writer, peer) = (&*self.obj, &mut self.writer, 1 - self.role);
        let mut st = Outgoing::default();
        let attempt = || -> Option<Result<(), SendError>> {
            let w = match claim_role(obj, writer, |me| {
                ring.claim_writer_from_dead(me, obj.liveness())
            }) {
                Claim::Got(w) => w,
                Claim::Busy => return None,
                Claim::Corrupt => return Some(Err(SendError::Corrupt)),
            };
            let frag = frame::fragment_len(w, cap);
            match frame::push(w, frag, msg, &mut st) {
                Ok(p) => {
                    if p.progressed {
                        wait::ring(ring.items_doorbell());
                    }
                    p.done.then_some(Ok(()))
                }
                Err(WriteError::Corrupt) => Some(Err(SendError::Corrupt)),
                Err(_) => None,
            }
        };
        let check = |round: Round| {
            peer_gone(obj, peer, round.asks_liveness()).then_some(Err(SendError::Disconnected))
        };
        match wait::block(
            ring.space_doorbell(),
            Wait::Forever.deadline(),
            attempt,
            check,
        ) {
            Outcome::Done(r) => r,
            Outcome::Stopped(e) => Err(e),
            Outcome::TimedOut => unreachable!("Wait::Forever has no deadline"),
        }
    }

    // ---- receiving ----------------------------------------------------------------------

    /// Waits, as `mode` allows, until a whole message is assembled ([`Got::Message`]), EOF
    /// ([`Got::Eof`]: nothing buffered and no live writer; a torn partial message was
    /// discarded), or the message announces more than `limit` bytes ([`Got::TooLong`],
    /// nothing more is read of it). [`Wait::Never`] tries once and then asks the kernel
    /// whether the writer lives (so `poll()` sees a SIGKILLed peer); giving up is
    /// [`RecvTimeoutError::Timeout`].
    pub(super) fn wait_message(&mut self, mode: Wait, limit: u64) -> Result<Got, RecvTimeoutError> {
        self.check_owner();
        let ring = self
            .incoming
            .as_ref()
            .expect("a readable end has an incoming ring");
        let (obj, reader, asm, peer) = (&*self.obj, &mut self.reader, &mut self.asm, 1 - self.role);
        let mut attempt = || -> Option<Result<Got, RecvTimeoutError>> {
            if asm.is_complete() {
                return Some(Ok(Got::Message));
            }
            let r = match claim_role(obj, reader, |me| {
                ring.claim_reader_from_dead(me, obj.liveness())
            }) {
                Claim::Got(r) => r,
                Claim::Busy => return None,
                Claim::Corrupt => return Some(Err(RecvTimeoutError::Corrupt)),
            };
            let mut consumed = false;
            let res = asm.pull_limited(r, &mut consumed, limit);
            if consumed {
                wait::ring(ring.space_doorbell());
            }
            match res {
                Ok(Pulled::Complete) => Some(Ok(Got::Message)),
                Ok(Pulled::TooLong(total)) => Some(Ok(Got::TooLong(total))),
                Ok(Pulled::Empty) => None,
                Err(_) => Some(Err(RecvTimeoutError::Corrupt)),
            }
        };
        let check = |round: Round| peer_gone(obj, peer, round.asks_liveness()).then_some(Err(()));
        let out = match mode {
            Wait::Never => match attempt() {
                Some(r) => Outcome::Done(r),
                None if peer_gone(obj, peer, true) => Outcome::Stopped(()),
                None => Outcome::TimedOut,
            },
            Wait::Until(_) | Wait::Forever => {
                wait::block(ring.items_doorbell(), mode.deadline(), &mut attempt, check)
            }
        };
        match out {
            Outcome::Done(r) => r,
            Outcome::TimedOut => Err(RecvTimeoutError::Timeout),
            Outcome::Stopped(()) => {
                // No live writer: everything it published happened before its release (or
                // death), so one more pull sees all of it.
                match attempt() {
                    Some(r) => r,
                    None => {
                        asm.discard_partial();
                        Ok(Got::Eof)
                    }
                }
            }
        }
    }
}

/// What [`End::wait_message`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Got {
    /// A whole message is ready in the assembler.
    Message,
    /// End of file.
    Eof,
    /// The next message has this many bytes, more than the caller's limit.
    TooLong(u64),
}

/// Whether no live participant holds role `peer`.
///
/// Scanned twice: one scan reads the holder entries one after another, so while an end is
/// being handed to a child it could read the child's entry before the child counted itself
/// and the parent's after the parent stopped counting, and see zero holders. The child
/// counts itself before the parent stops (start hand-shake), so a second scan that starts
/// after the first ended sees the child, unless a further hand-over completed in between
/// with the same unlucky timing. (An exact fix is an acquire generation in the object
/// header, re-read around the scan; see the report on the holder table.)
///
/// Without `ask_liveness`, recorded holders count as alive (no system call): a `true` is
/// still exact, a dead peer shows up at the next, asking, check.
fn peer_gone(obj: &Object, peer: u32, ask_liveness: bool) -> bool {
    obj.holders(peer, ask_liveness) == 0 && obj.holders(peer, ask_liveness) == 0
}

/// The role (`ring`'s writer or reader) kept in `slot`, claimed for this process on first
/// use with `claim` (given this process's participant id in `obj`).
fn claim_role<'a, R>(
    obj: &Object,
    slot: &'a mut Option<R>,
    claim: impl FnOnce(ParticipantId) -> Result<R, ClaimError>,
) -> Claim<&'a mut R> {
    if slot.is_none() {
        let Ok(me) = obj.me() else {
            return Claim::Corrupt;
        };
        match claim(me) {
            Ok(role) => *slot = Some(role),
            Err(ClaimError::Held(_) | ClaimError::Contended) => return Claim::Busy,
            Err(ClaimError::Corrupt) => return Claim::Corrupt,
            // `ClaimError` is non-exhaustive: anything else is treated as corruption.
            Err(_) => return Claim::Corrupt,
        }
    }
    match slot.as_mut() {
        Some(role) => Claim::Got(role),
        None => Claim::Busy,
    }
}

impl Drop for End {
    fn drop(&mut self) {
        if !self.owner.is_current() {
            // Disowned (inherited through fork, not passed): release nothing.
            let _ = ManuallyDrop::new(self.reader.take());
            let _ = ManuallyDrop::new(self.writer.take());
            return;
        }
        if self.counted {
            self.obj.release(self.role);
        }
        // Release our ring roles (each release bumps a doorbell). A reader role we never
        // claimed is claimed and released at once, so the peer's writer sees `Closed` and
        // checks holders on its next send (`SendError::Disconnected` without waiting for a
        // full ring). If someone else holds it (a child we handed this end to), leave it.
        drop(self.writer.take());
        if self.reader.take().is_none()
            && let Some(ring) = &self.incoming
            && ring.reader_role() == Role::Free
            && let Ok(me) = self.obj.me()
        {
            drop(ring.claim_reader(me));
        }
        wait::wake_all(&self.bells());
    }
}
