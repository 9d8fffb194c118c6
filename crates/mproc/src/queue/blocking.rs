//! The waiting machinery shared by puts and gets: retry-or-sleep ([`Queue::wait_until`]),
//! the holder rule that ends a wait with "disconnected" ([`Queue::no_free_peer`], [`Parked`]),
//! the blocking push and pop paths, and the mapping of their errors to each entry point's
//! error type.

use std::cell::RefCell;

use mproc_ring::Side;

use super::slot::{Popped, Staged};
use super::{
    BLOCKED_GET, BLOCKED_PUT, GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, ROLE,
    Shared, TryGetError, TryPutError,
};
use crate::message::{Message, MessageError};
use crate::wait::Wait;
use crate::wait::{self, Outcome, Round};

impl<T: Message> Queue<T> {
    /// The rule of the module docs: every *other* live handle is gone or itself blocked
    /// in an untimed call counted under `blocked_role` (so it cannot act either).
    /// `self_blocked`: this handle is registered under `blocked_role` (exclude it).
    /// Without `ask_liveness`, every recorded holder counts as alive (no system call). A
    /// `true` is then still exact: counting a dead holder as alive can only add a phantom
    /// free peer (a dead blocked holder adds one to both counts, since a process's blocked
    /// count never exceeds its handle count), never hide one. A `false` may count a dead
    /// peer as free until the next, asking, check.
    fn no_free_peer(&self, blocked_role: u32, self_blocked: bool, ask_liveness: bool) -> bool {
        // Both counts from one consistent scan, so they describe the same moment. A scan
        // that keeps being overtaken means holders are changing right now: somebody acts.
        let Ok([blocked, handles]) = self
            .shared
            .obj
            .holders_snapshot([blocked_role, ROLE], ask_liveness)
        else {
            return false;
        };
        let blocked = blocked.saturating_sub(u32::from(self_blocked));
        let others = handles.saturating_sub(1);
        others <= blocked
    }

    /// Pushes the encoded message `buf`, blocking per `mode`. Notifies consumers
    /// when it is in.
    pub(super) fn push_encoded(
        &self,
        me: mproc_ring::ParticipantId,
        buf: &[u8],
        mode: Wait,
    ) -> Result<Result<(), PutFail>, MessageError> {
        let sh = &*self.shared;
        let mut staged = self.stage(buf)?;
        // Fast path: a free slot now, taken without the waiting machinery.
        let outcome = match self.try_push_staged(me, buf, &mut staged) {
            Some(r) => Outcome::Done(r),
            None => {
                let staged = RefCell::new(&mut staged);
                self.wait_until(sh.ring.space_doorbell(), BLOCKED_PUT, mode, || {
                    self.try_push_staged(me, buf, &mut staged.borrow_mut())
                })
            }
        };
        let fail = match outcome {
            Outcome::Done(Ok(())) => {
                wait::ring(sh.ring.items_doorbell());
                return Ok(Ok(()));
            }
            Outcome::Done(Err(e)) => {
                // Not sent (a corrupt ring, a tombstoned slot): free a staged block.
                staged.release(&sh.arena);
                return Err(e);
            }
            Outcome::Stopped(()) => PutFail::Disconnected,
            // A put that never got its arena block waited for arena room, not for a slot.
            Outcome::TimedOut if matches!(staged, Staged::Arena(None)) => PutFail::ArenaFull,
            Outcome::TimedOut => PutFail::Timeout,
        };
        staged.release(&sh.arena);
        Ok(Err(fail))
    }

    /// One try without the waiting machinery (the fast path: a message there now), then
    /// the blocking machinery per `mode`.
    #[inline]
    pub(super) fn take_now_or_wait<R>(
        &self,
        mode: Wait,
        finish: &impl Fn(Popped<'_>) -> Result<R, MessageError>,
    ) -> Result<R, GetTimeoutError> {
        let now = match self.enter() {
            Ok(Some(me)) => self.try_take(me, true, finish),
            _ => None,
        };
        match now {
            Some(r) => r.map_err(GetTimeoutError::Message),
            None => self.take_deadline(mode, finish),
        }
    }

    /// Pops the next message and hands it to `finish` while its slot is still claimed,
    /// blocking per `mode`.
    pub(super) fn take_deadline<R>(
        &self,
        mode: Wait,
        finish: &impl Fn(Popped<'_>) -> Result<R, MessageError>,
    ) -> Result<R, GetTimeoutError> {
        let me = self
            .enter()
            .map_err(|e| GetTimeoutError::Message(MessageError::Invalid(e.to_string())))?
            .ok_or(GetTimeoutError::Closed)?;
        let sh = &*self.shared;
        let take = || self.try_take(me, true, finish);
        let outcome = self.wait_until(sh.ring.items_doorbell(), BLOCKED_GET, mode, take);
        match outcome {
            Outcome::Done(r) => r.map_err(GetTimeoutError::Message),
            Outcome::Stopped(()) => Err(GetTimeoutError::Disconnected),
            Outcome::TimedOut => Err(GetTimeoutError::Timeout),
        }
    }

    /// Retries `attempt` (a push or a pop) until it succeeds, sleeping on `bell` when `mode`
    /// allows it (until its deadline), else trying once. Gives up with `Stopped` when no
    /// other handle can ever act (`no_free_peer` with `blocked_role`), after a ring recovery
    /// and one last try. An untimed blocking wait counts itself under `blocked_role` while it
    /// waits (see [`Parked`]).
    fn wait_until<R>(
        &self,
        bell: &mproc_ring::Doorbell,
        blocked_role: u32,
        mode: Wait,
        attempt: impl Fn() -> Option<R>,
    ) -> Outcome<R, ()> {
        let sh = &*self.shared;
        // A try that would block may be held up by a dead participant's claim on the one
        // slot it needs: recover that (see `stuck`) and try again.
        let side = if blocked_role == BLOCKED_GET {
            Side::Head
        } else {
            Side::Tail
        };
        let attempt = || attempt().or_else(|| if self.unstick(side) { attempt() } else { None });
        // One last try after recovery freed what dead peers held.
        let last_try = || {
            sh.recover();
            attempt().ok_or(())
        };
        let out = if mode.blocks() {
            let mut parked = Parked::new(sh, blocked_role, mode == Wait::Forever);
            wait::block(bell, mode.deadline(), &attempt, |round| {
                if round == Round::SleptOut {
                    sh.recover();
                    // The scan also checks the ring's hint distance (`mproc_ring::mpmc`,
                    // "Corruption"), which pushes and pops cannot see: a ring it found
                    // corrupt answers the next attempt with `Corrupt`.
                    if sh.ring.is_poisoned() {
                        return attempt().map(Ok);
                    }
                }
                parked.enter();
                self.no_free_peer(blocked_role, parked.on, round.asks_liveness())
                    .then(last_try)
            })
        } else {
            match attempt() {
                Some(r) => Outcome::Done(r),
                None if self.no_free_peer(blocked_role, false, true) => match last_try() {
                    Ok(r) => Outcome::Done(r),
                    Err(()) => Outcome::Stopped(()),
                },
                None => Outcome::TimedOut,
            }
        };
        // Never a timeout (or "disconnected") on a corrupt ring: once anything found it
        // corrupt, the attempt says so (two flag loads, on this slow path only).
        if matches!(out, Outcome::TimedOut | Outcome::Stopped(()))
            && sh.ring.is_poisoned()
            && let Some(r) = attempt()
        {
            return Outcome::Done(r);
        }
        out
    }
}

/// Why a push of an encoded message did not happen (the caller adds the item back).
#[derive(Debug, Clone, Copy)]
pub(super) enum PutFail {
    /// Full, and no other handle can ever get.
    Disconnected,
    /// Still full at the deadline.
    Timeout,
    /// Still no arena block for the message at the deadline.
    ArenaFull,
}

impl PutFail {
    pub(super) fn with<T>(self, item: T) -> PutTimeoutError<T> {
        match self {
            PutFail::Disconnected => PutTimeoutError::Disconnected(item),
            PutFail::Timeout => PutTimeoutError::Timeout(item),
            PutFail::ArenaFull => PutTimeoutError::ArenaFull(item),
        }
    }
}

/// A get error of an untimed, blocking get (no deadline: never a timeout).
pub(crate) fn untimed_get_error(e: GetTimeoutError) -> GetError {
    match e {
        GetTimeoutError::Disconnected => GetError::Disconnected,
        GetTimeoutError::Closed => GetError::Closed,
        GetTimeoutError::Message(m) => GetError::Message(m),
        GetTimeoutError::Timeout => unreachable!("no deadline"),
    }
}

/// A get error of a `*_nowait` get (its "timeout" is Python's `queue.Empty`).
pub(crate) fn nowait_get_error(e: GetTimeoutError) -> TryGetError {
    match e {
        GetTimeoutError::Timeout => TryGetError::Empty,
        GetTimeoutError::Disconnected => TryGetError::Disconnected,
        GetTimeoutError::Closed => TryGetError::Closed,
        GetTimeoutError::Message(m) => TryGetError::Message(m),
    }
}

pub(super) fn untimed_put_error<T>(e: PutTimeoutError<T>) -> PutError<T> {
    match e {
        PutTimeoutError::Disconnected(t) => PutError::Disconnected(t),
        PutTimeoutError::Closed(t) => PutError::Closed(t),
        PutTimeoutError::Message(t, e) => PutError::Message(t, e),
        PutTimeoutError::Timeout(_) | PutTimeoutError::ArenaFull(_) => unreachable!("no deadline"),
    }
}

/// A put that does not wait: a timeout means "full now" (Python's `queue.Full`).
pub(super) fn nowait_put_error<T>(e: PutTimeoutError<T>) -> TryPutError<T> {
    match e {
        PutTimeoutError::Timeout(t) => TryPutError::Full(t),
        PutTimeoutError::ArenaFull(t) => TryPutError::ArenaFull(t),
        PutTimeoutError::Disconnected(t) => TryPutError::Disconnected(t),
        PutTimeoutError::Closed(t) => TryPutError::Closed(t),
        PutTimeoutError::Message(t, e) => TryPutError::Message(t, e),
    }
}
/// Registration of this handle as blocked in an untimed `get()`/`put()` (see
/// `no_free_peer`), undone on drop.
struct Parked<'a> {
    shared: &'a Shared,
    role: u32,
    wanted: bool,
    on: bool,
}

impl<'a> Parked<'a> {
    fn new(shared: &'a Shared, role: u32, wanted: bool) -> Self {
        Parked {
            shared,
            role,
            wanted,
            on: false,
        }
    }

    /// Registers (once) and rings every bell, so a peer asleep waiting for this handle
    /// re-checks now (a system call only if someone sleeps; see `wait::ring_all`).
    fn enter(&mut self) {
        if self.wanted && !self.on && self.shared.obj.acquire(self.role).is_ok() {
            self.on = true;
            wait::ring_all(&self.shared.bells());
        }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if self.on {
            self.shared.obj.release(self.role);
        }
    }
}
