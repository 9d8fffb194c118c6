//! Participants: one entry per attached process, with kernel-released liveness
//! (DESIGN.md, "the hard parts" §1).
//!
//! # How it works
//!
//! Entry `i` of a segment's participant table is *claimed* by holding an OFD write lock
//! (`fcntl(F_OFD_SETLK)`) on byte [`LOCK_BASE`]` + i` of the segment's file, taken through a
//! private open file description of that file (a re-open of `/proc/self/fd/N`, which works
//! for memfds and unlinked files alike). Locks beyond the end of a file are allowed, so no
//! bytes are reserved for them. The kernel drops the lock when the last descriptor of that
//! open file description closes — in particular when the process dies, however it dies.
//!
//! * **Register**: try the locks of entries `0, 1, ...` until one is free; that entry is ours
//!   (a free lock means the entry was never used or its owner is dead, so reclaiming dead
//!   entries is automatic). Then bump the entry's generation (`1..=`
//!   [`ParticipantId::MAX_GENERATION`], then back to 1) and publish it. The [`ParticipantId`]
//!   (mproc-core's; re-exported here) is `(generation << 12) | index`, so a reclaimed
//!   entry's new owner never has the dead owner's id; an id is reused only after its entry
//!   has been claimed `MAX_GENERATION - 1` more times.
//! * **`is_alive(id)`**: the entry's generation equals the id's, *and* `F_OFD_GETLK` through
//!   the segment's main descriptor (which never takes locks) reports the byte locked. No pid
//!   is consulted, so the answer is exact across pid reuse and pid namespaces. Between a new
//!   owner taking the lock and bumping the generation, the previous (dead) id briefly reads
//!   as alive; it never happens the other way round (a live id never reads as dead).
//! * **Threads** of a process share its entry: registration is cached in the [`Segment`]
//!   handle (share the handle, e.g. in an `Arc`). Opening the same segment twice in one
//!   process makes two handles, and each registers separately.
//! * **fork**: the child is a new process. A process-global `pthread_atfork` child handler
//!   (installed at the first registration) closes every inherited liveness descriptor —
//!   otherwise the parent would look alive for as long as the child lives — and marks the
//!   inherited registrations stale (a fork epoch). The child registers its own entry on its
//!   first [`Segment::register`]. Registration also compares the pid, for forks that bypass
//!   `pthread_atfork` (a raw `clone`). The liveness descriptors are close-on-exec.
//!   One window remains, inherent to `fork`: the kernel copies the descriptor table at
//!   once, and the child closes its copies only when it first runs its handler. If a
//!   process forks and then dies (or drops its registration) before that child is first
//!   scheduled, it keeps reading as alive until the child runs — normally microseconds,
//!   longer on a loaded machine or if the child is stopped before it runs. The error is
//!   always towards "alive", never a live participant reported dead, so callers that poll
//!   liveness (owner-death takeover) see the death on a later check.
//!
//! Python's `multiprocessing` has no equivalent: it tracks children by pid and sentinel
//! pipes, which says nothing about unrelated processes sharing a segment.
//!
//! [`Segment`]: crate::Segment
//! [`Segment::register`]: crate::Segment::register
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::ptr::NonNull;

use crate::error::RegisterError;
use crate::header::Entry;
use crate::sync::{AtomicI32, AtomicU32, AtomicU64, Ordering, spin_loop};
use crate::sys;

/// Byte offset of entry 0's liveness lock in the segment's file. Far beyond any segment's
/// data; fcntl locks past the end of a file are legal and need no storage.
pub const LOCK_BASE: u64 = 1 << 40;

pub use mproc_core::participant::ParticipantId;

// ---- process-global state (touched by the atfork child handler: atomics only) ----

/// Most liveness descriptors one process can hold at once (one per registered handle).
pub const MAX_REGISTRATIONS: usize = 1024;

/// The liveness descriptors this process holds (-1 = free slot). The atfork child handler
/// closes every one of them in the child.
static LIVENESS_FDS: [AtomicI32; MAX_REGISTRATIONS] =
    [const { AtomicI32::new(-1) }; MAX_REGISTRATIONS];
/// Bumped in every forked child; a registration made in another epoch is stale.
static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
/// Serialises registration, release and fork (the prepare handler takes it), so a fork
/// never copies a liveness descriptor that is not yet in `LIVENESS_FDS`.
static REG_LOCK: AtomicU32 = AtomicU32::new(0);
/// `pthread_atfork` installation: `(installer_pid << 2) | state`, state 0 = not installed,
/// 1 = being installed by `installer_pid`, 2 = installed. Not a `std::sync::Once`: a fork
/// while another thread is inside `call_once` would leave the child's `Once` running for
/// ever. Here a child that inherits "being installed by someone else" just starts over.
static ATFORK: AtomicU32 = AtomicU32::new(0);
const INSTALLED: u32 = 2;

fn ensure_atfork() -> std::io::Result<()> {
    let me = sys::getpid();
    loop {
        // Acquire pairs with the Release store of INSTALLED below.
        let w = ATFORK.load(Ordering::Acquire);
        match w & 3 {
            INSTALLED => return Ok(()),
            0 => {
                let mine = (me << 2) | 1;
                // Relaxed: the CAS only elects the installer; INSTALLED is published below.
                if ATFORK
                    .compare_exchange(w, mine, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    let r = sys::atfork(atfork_prepare, atfork_parent, atfork_child);
                    // Release pairs with the Acquire load above.
                    ATFORK.store(if r.is_ok() { INSTALLED } else { 0 }, Ordering::Release);
                    return r;
                }
            }
            _ if w >> 2 != me => {
                // Forked while our parent was installing: start over in this process.
                // Relaxed: as above.
                let _ = ATFORK.compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
            _ => std::thread::yield_now(),
        }
    }
}

fn lock_global() {
    let mut spins = 0u32;
    // Acquire pairs with the Release in `unlock_global`: the table updates of the previous
    // holder are visible.
    while REG_LOCK
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        if spins < 64 {
            spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn unlock_global() {
    // Release pairs with the Acquire in `lock_global`.
    REG_LOCK.store(0, Ordering::Release);
}

unsafe extern "C" fn atfork_prepare() {
    lock_global();
}

unsafe extern "C" fn atfork_parent() {
    unlock_global();
}

/// Runs in the child right after `fork`, single-threaded: only atomics and `close`
/// (async-signal-safe).
unsafe extern "C" fn atfork_child() {
    for slot in &LIVENESS_FDS {
        // Relaxed: the child is single-threaded here.
        let fd = slot.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: `fd` is a liveness descriptor this process owned (copied by fork);
            // it was removed from the table, so nothing else closes or uses it.
            unsafe { sys::close_raw(fd) };
        }
    }
    // Relaxed: single-threaded child; later threads are spawned after this (thread spawn
    // synchronises).
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    // This handler runs, so the handlers are installed in this process too.
    ATFORK.store(INSTALLED, Ordering::Relaxed);
    unlock_global();
}

#[inline]
fn current_epoch() -> u32 {
    // Relaxed: the epoch only changes in a forked child before it runs anything else.
    FORK_EPOCH.load(Ordering::Relaxed)
}

/// The per-handle registration cache. Atomics only, so a fork in the middle of nothing can
/// leave it in a state the child cannot read.
#[derive(Debug, Default)]
pub(crate) struct RegState {
    /// `(epoch << 32) | id`, 0 = not registered.
    word: AtomicU64,
    /// Slot in `LIVENESS_FDS`.
    slot: AtomicU32,
    /// pid at registration.
    pid: AtomicU32,
}

/// The participant table of one mapping, plus the main descriptor used to query liveness.
pub(crate) struct Table {
    pub(crate) entries: NonNull<Entry>,
    pub(crate) capacity: u32,
}

// SAFETY: `entries` points into a shared mapping owned by the same `Segment` as the
// `Table`; it is only accessed through atomics.
unsafe impl Send for Table {}
// SAFETY: as above, all access is through atomics.
unsafe impl Sync for Table {}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Table {
    fn entry(&self, index: u32) -> &Entry {
        assert!(index < self.capacity);
        // SAFETY: `entries` points at `capacity` entries inside the mapping (validated at
        // create/open and copied into this handle), the mapping outlives `self`, and
        // `index < capacity` was just checked.
        unsafe { self.entries.add(index as usize).as_ref() }
    }

    /// Raw id → alive? See the module docs.
    pub(crate) fn is_alive(&self, main_fd: BorrowedFd<'_>, raw: u32) -> bool {
        let Some(id) = ParticipantId::new(raw) else {
            return false;
        };
        // Generation 0 is never issued (an entry nobody registered reads 0).
        if id.generation() == 0 || id.index() >= self.capacity {
            return false;
        }
        // Acquire pairs with the Release store of the generation in `register`.
        if self.entry(id.index()).generation.load(Ordering::Acquire) != id.generation() {
            return false;
        }
        // If the kernel cannot answer (it always can for a valid descriptor), say "alive":
        // a false "dead" would let a survivor take over a live owner's lock.
        sys::ofd_is_locked(main_fd, LOCK_BASE + u64::from(id.index())).unwrap_or(true)
    }

    /// The cached id, if registered in this process (not a stale copy from before a fork).
    #[inline]
    pub(crate) fn current(&self, state: &RegState) -> Option<ParticipantId> {
        // Acquire pairs with the Release store in `register`.
        let w = state.word.load(Ordering::Acquire);
        if (w >> 32) as u32 != current_epoch() {
            return None;
        }
        ParticipantId::new(w as u32)
    }

    /// Registers this process (idempotent per handle and process).
    pub(crate) fn register(
        &self,
        main_fd: BorrowedFd<'_>,
        state: &RegState,
    ) -> Result<ParticipantId, RegisterError> {
        let pid = sys::getpid();
        if let Some(id) = self.current(state) {
            // Relaxed: written before `word` (Release) in the same registration.
            if state.pid.load(Ordering::Relaxed) == pid {
                return Ok(id);
            }
        }
        ensure_atfork().map_err(|source| RegisterError::Io {
            op: "pthread_atfork",
            source,
        })?;

        lock_global();
        let result = self.register_locked(main_fd, state, pid);
        unlock_global();
        result
    }

    fn register_locked(
        &self,
        main_fd: BorrowedFd<'_>,
        state: &RegState,
        pid: u32,
    ) -> Result<ParticipantId, RegisterError> {
        // Relaxed (all three): `REG_LOCK` orders them.
        let w = state.word.load(Ordering::Relaxed);
        if w != 0 && (w >> 32) as u32 == current_epoch() {
            if state.pid.load(Ordering::Relaxed) == pid {
                // Another thread registered while we waited.
                return Ok(ParticipantId::new(w as u32).expect("valid cached id"));
            }
            // Forked without the atfork handler: the slot holds the parent's inherited
            // descriptor; close our copy of it.
            let slot = state.slot.load(Ordering::Relaxed) as usize;
            release_slot(slot);
        }
        state.word.store(0, Ordering::Relaxed);

        let Some(slot) = LIVENESS_FDS
            .iter()
            .position(|s| s.load(Ordering::Relaxed) < 0)
        else {
            return Err(RegisterError::TooManyRegistrations {
                max: MAX_REGISTRATIONS,
            });
        };
        let fd = sys::reopen(main_fd).map_err(|source| RegisterError::Io {
            op: "open /proc/self/fd",
            source,
        })?;
        let raw: RawFd = fd.as_raw_fd();
        // Relaxed: `REG_LOCK` orders table updates against the atfork handlers.
        LIVENESS_FDS[slot].store(fd.into_raw_fd(), Ordering::Relaxed);

        let mut claimed = None;
        for index in 0..self.capacity {
            // SAFETY: `raw` is the descriptor just stored in `LIVENESS_FDS[slot]`, which
            // stays open while `REG_LOCK` is held (only holders of it close table entries).
            let fd = unsafe { BorrowedFd::borrow_raw(raw) };
            match sys::ofd_try_lock(fd, LOCK_BASE + u64::from(index)) {
                Ok(true) => {
                    claimed = Some(index);
                    break;
                }
                Ok(false) => {}
                Err(source) => {
                    release_slot(slot);
                    return Err(RegisterError::Io {
                        op: "fcntl(F_OFD_SETLK)",
                        source,
                    });
                }
            }
        }
        let Some(index) = claimed else {
            release_slot(slot);
            return Err(RegisterError::TableFull {
                capacity: self.capacity,
            });
        };

        let entry = self.entry(index);
        // Relaxed: only the lock holder (us) writes the entry.
        let old = entry.generation.load(Ordering::Relaxed);
        // Untrusted (shared memory): anything out of range restarts at 1.
        let generation = match old.wrapping_add(1) {
            next @ 1..=ParticipantId::MAX_GENERATION => next,
            _ => 1,
        };
        // Relaxed: published by the Release store of `generation` just below.
        entry.pid.store(pid, Ordering::Relaxed);
        // SYNC POINT: Release pairs with the Acquire load in `is_alive`.
        entry.generation.store(generation, Ordering::Release);

        let id = ParticipantId::from_parts(index, generation)
            .expect("index below MAX_PARTICIPANTS, generation in 1..=MAX_GENERATION");
        // Relaxed: published by the Release store of `word`.
        state.slot.store(slot as u32, Ordering::Relaxed);
        state.pid.store(pid, Ordering::Relaxed);
        // Release pairs with the Acquire load in `current`.
        state.word.store(
            (u64::from(current_epoch()) << 32) | u64::from(id.get()),
            Ordering::Release,
        );
        Ok(id)
    }

    /// Drops this handle's registration (the entry reads as dead afterwards). Called from
    /// `Segment::drop`.
    pub(crate) fn release(&self, state: &RegState) {
        // Relaxed: a registration made by this handle in this process happened before (same
        // thread or synchronised by whoever handed us the handle).
        if state.word.load(Ordering::Relaxed) == 0 {
            return;
        }
        lock_global();
        let w = state.word.load(Ordering::Relaxed);
        if w != 0
            && (w >> 32) as u32 == current_epoch()
            && state.pid.load(Ordering::Relaxed) == sys::getpid()
        {
            release_slot(state.slot.load(Ordering::Relaxed) as usize);
        }
        // A stale registration (made before a fork) owns nothing here: the child handler
        // already closed its descriptor.
        state.word.store(0, Ordering::Relaxed);
        unlock_global();
    }
}

/// Closes and frees liveness slot `slot`. Caller holds `REG_LOCK`.
fn release_slot(slot: usize) {
    // Relaxed: ordered by `REG_LOCK`.
    let fd = LIVENESS_FDS[slot].swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the table owned `fd`; it was removed from it under `REG_LOCK`, so nothing
        // else closes or uses it.
        unsafe { sys::close_raw(fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_id_is_valid() {
        // The largest index a table has, in the largest generation it issues.
        let id =
            ParticipantId::from_parts(crate::MAX_PARTICIPANTS - 1, ParticipantId::MAX_GENERATION)
                .expect("fits");
        assert!(id.get() <= ParticipantId::MAX);
        assert_eq!(ParticipantId::new(id.get()), Some(id));
    }
}
