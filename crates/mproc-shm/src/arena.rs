//! `Arena`: a coalescing shared-heap allocator (a binary buddy system) inside a byte range of
//! a segment, usable from any thread of any attached process at once, that survives a
//! SIGKILL at any instruction.
//!
//! # Algorithm
//!
//! A binary buddy allocator (K. C. Knowlton, *A fast storage allocator*, CACM 1965; Knuth,
//! TAOCP vol. 1, §2.5). The block area is cut into *top blocks*, one per set bit of its size
//! in 64-byte units, largest first (a power-of-two area is one top block). A block of order
//! `k` is `64 << k` bytes at an offset from the block area's start that is a multiple of its
//! size. `alloc` takes the smallest free block of an order at least the one needed and splits
//! it in halves down to that order, listing each upper half as free; `free` merges the block
//! with its buddy (the other half of the block of the next order) for as long as the buddy is
//! a whole free block of the same order, then lists the result. Each order has a doubly
//! linked free list, so a buddy is unlinked in O(1): `alloc` and `free` are O(log n) (at most
//! 32 orders).
//!
//! **Coalescing promise.** Blocks never drift: with no block allocated, every top block is
//! whole and free again, so any allocation up to [`Arena::max_alloc`] succeeds. An arena
//! whose block area is a power of two (what the facade creates) has one top block, and
//! [`Arena::max_alloc`] is that size minus the 16-byte block header.
//!
//! # Crash design: one guard word and an undo journal
//!
//! Every call that changes blocks runs under the arena's *guard*: a header word holding the
//! participant id of its owner, taken with one CAS (`0 → me`), so no instant exists at which
//! the guard is held by nobody known. Every store under the guard is *journaled*: before it,
//! the owner appends `(offset, old value)` to the undo journal in the header and raises the
//! journal's count; at the end it sets the count to 0 (the commit point) and releases the
//! guard. A waiter that finds the guard held by a participant its liveness calls dead takes it
//! over with a CAS of that exact word and rolls the journal back, newest entry first, so the
//! interrupted call is undone whichever store it died after (a death during a rollback leaves
//! the journal intact, and the next owner rolls back again: restoring old values is
//! idempotent). A call is never half done: a block is allocated, or free and listed, or as it
//! was. `tests/arena.rs` kills a process after every journaled store of each kind of call and
//! checks the heap with [`Arena::check`]; `tests/loom_arena.rs` model-checks the guard, the
//! takeover and the rollback.
//!
//! A dead owner never releases the guard, so what it stored is seen by its successor through
//! the liveness answer (the kernel's OFD lock release, a system call on both sides) and the
//! successor's Acquire CAS of the guard word, not through a Release of the owner's own.
//!
//! Waiting for the guard spins briefly, then yields, then sleeps (50 µs doubling to 1 ms),
//! asking the owner's liveness when it starts sleeping and at every sleep after. Critical
//! sections are O(log n) stores, except the repair walks ([`Arena::reclaim_dead`],
//! [`Arena::usage`], [`Arena::check`]), which are O(blocks). A guard owner that is stopped
//! (SIGSTOP) rather than dead stalls every other allocator call until it runs again, as any
//! lock does.
//!
//! Identity: an arena made over a [`Segment`] ([`Arena::init`], [`Arena::attach`]) names its
//! callers by their participant id in that segment (registering the process on first use) and
//! asks the segment's participant table whether an owner is alive. An arena over raw memory
//! ([`Arena::init_raw`]) has no participant table: all its callers share one id and are
//! taken to be alive (any other value in its guard word is garbage, taken over by the first
//! waiter that asks), so a process killed holding its guard blocks it for good; use raw
//! arenas within one process.
//!
//! The guard is the arena's own word rather than `mproc-futex`'s `RawLock`: `mproc-shm`
//! depends on no other mproc crate (its layer knows nothing of locks), and its critical
//! sections are short enough that a sleeping back-off costs less than a futex hand-off would
//! gain.
//!
//! # Layout (all offsets relative to the arena start, which is 128-byte aligned)
//!
//! ```text
//!      0  arena header: magic, version, orders, length, counters          (64 B)
//!     64  guard: owner id; then the journal's entry count                (64 B)
//!    128  free-list heads[32], one word each                              (256 B)
//!    384  undo journal: 192 entries of (offset, old value)                (3072 B)
//!   3456  block area (64-aligned)
//! ```
//!
//! Each block starts with a 16-byte header: a `tag` word and a second word that is the
//! free list's `next` link while the block is free and its *holder word* while allocated. A
//! free block also keeps its `prev` link at byte 16 (user bytes, when allocated). Links are
//! `unit + 1` (0: none), where a unit is a block offset divided by 64. For alignments above
//! 16 the user's bytes start further in, after a *shift mark* that points back at the block.
//!
//! Tag word:
//!
//! | bits   | field |
//! |--------|-------|
//! | 63..48 | `0xB10C` (marks a block tag) |
//! | 47     | 0 |
//! | 46..43 | log2 of the data's alignment, for state 2 (else 0) |
//! | 42..40 | state: 1 allocated, 2 allocated with shifted data, 3 free, 4 shift mark (in front of shifted data), 5 retired shift mark |
//! | 39..32 | order |
//! | 31..0  | unit (block offset / 64) |
//!
//! Only block starts carry current tags; the headers of blocks merged away keep stale ones.
//! So `free` never trusts the tag in front of an offset alone: it descends from the top block
//! containing it, halving, and follows tags only at offsets that are block starts whatever the
//! history (a block's start, and the start of its upper half when split), until it meets the
//! whole block. An offset that is not the start of an allocated block is refused
//! ([`ArenaError::BadOffset`], [`ArenaError::DoubleFree`]) without changing anything, even
//! when the bytes in front of it were forged.
//!
//! # Held blocks: a holder that dies
//!
//! A block handed to a process that keeps it outside any other structure (the queue's
//! zero-copy `get_ref` guard, after its slot is released) can be marked *held* by that
//! participant ([`Arena::hold`]): its holder word then holds `HELD(id)`.
//! [`Arena::reclaim_dead`] walks the blocks under the guard, asking the liveness once per
//! holder id, then frees each block held by a dead participant in a guarded call of its own
//! (the block re-checked, freed, committed) and counts it ([`Arena::held_reclaimed`]) after
//! the commit: a reclaimer killed before its commit is rolled back (the block still held by
//! the dead holder, for the next walk), one killed after it leaves an uncounted loss, never
//! a count of a block that was not reclaimed. A holder killed inside its own `free` is rolled
//! back to holding the block, which the walk then frees and counts (the count errs towards
//! "lost" for an item whose receiver had finished with it). Marking is a plain store by the one process that owns the block: a
//! process killed between receiving the block and marking it leaks it, uncounted (its
//! caller's documented window). A header count of blocks marked held lets the walk be skipped
//! when none can be.
//!
//! The same word carries a block's hand-off from a producer to a queue slot, so that a
//! producer killed mid-`put` leaks nothing: [`Arena::alloc_marked`] allocates it as
//! `WRITING(producer)` (the mark is one of the journaled stores of the allocation, so an
//! interrupted allocation leaves no unmarked block); inside its slot claim, after writing the
//! slot's descriptor, the producer marks it `QUEUED(stamp)` with the slot's stamp
//! ([`Arena::mark_queued`]) and then commits the slot. So a `WRITING(dead)` block was never
//! committed, and the walk frees it (uncounted: nothing was in the queue); a `QUEUED(stamp)`
//! block whose producer died before committing is named by that dead claim's payload, which
//! the ring shows its recoverer before tombstoning the slot, and [`Arena::reclaim_queued`]
//! frees it only if its word is still exactly `QUEUED(stamp)`. It judges under the guard,
//! after rolling back any dead owner's call: a consumer killed inside its own free of that
//! block leaves it `QUEUED` again, never "already free" to a recoverer that looked first. A committed block stays
//! `QUEUED` until its consumer frees it or marks it held; the walk never touches a `QUEUED`
//! block.
//!
//! # Corruption
//!
//! Every offset, link and tag read from shared memory is bounds-checked before use. A
//! corrupt or hostile peer can make calls fail with [`ArenaError::Corrupt`] or leak blocks;
//! it cannot make this process read or write outside the arena. [`Arena::check`] is the
//! heap-invariant checker (run under the guard, so it can run at any time): blocks tile each
//! top block exactly, each free block is listed once on its order's list with consistent
//! links, no two free buddies are left unmerged, the journal is empty, and the count of held
//! blocks is not below the blocks marked.
//!
//! # Verification
//!
//! The algorithm is written over a word abstraction (`Words`, in the crate-private `words`
//! module): [`Arena`] overlays std atomics on the arena's bytes, and under `--cfg
//! mproc_loom` `model::ModelArena` runs the same code on loom atomics built with `new()`.
//!
//! Python has no equivalent (its `multiprocessing.heap` is process-private, guarded by a
//! lock, and lives in the manager process).
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::offset::Offset;
use crate::segment::Segment;
use crate::sync::{AtomicU32, AtomicU64, Ordering, backoff};
use crate::words::{InPlace, Word, Words};

const ARENA_MAGIC: u64 = u64::from_le_bytes(*b"MPROCARN");
/// 3: the buddy allocator with its guard and journal (2 was the size-class allocator).
const ARENA_VERSION: u32 = 3;
/// Offset of the header's count of held blocks reclaimed from dead holders.
const HELD_RECLAIMED_AT: u64 = 24;
/// Offset of the header's count of blocks marked held (an over-count; see `hold`).
const HELD_NOW_AT: u64 = 32;
/// Offset of the header's count of blocks the reclaim walk freed (counted or not).
const WALK_FREED_AT: u64 = 40;
/// Offset of the guard word: the owner's participant id, 0 when free.
const GUARD_AT: u64 = 64;
/// Offset of the journal's entry count (0: no call in progress).
const JOURNAL_COUNT_AT: u64 = 72;
/// Offset of the first free-list head; the head of order `k` is at `HEADS_AT + 8 * k`.
const HEADS_AT: u64 = 128;
/// Orders: 64 B up to 128 GiB.
const NUM_ORDERS: u32 = 32;
/// Offset of the first journal entry; entry `i` is `(offset, old)` at `JOURNAL_AT + 16 * i`.
const JOURNAL_AT: u64 = HEADS_AT + 8 * NUM_ORDERS as u64;
/// Journal capacity. The longest call is an allocation that splits a block of the highest
/// order down to the lowest: 2 stores to unlink it, 5 per split (tag, two links, the old
/// head's back link, the head), 3 to mark it allocated (holder word, shift mark, tag), at most
/// 2 + 5 * 31 + 3 = 160. A free is at most 1 + 2 * 31 + 5 = 68.
const JOURNAL_ENTRIES: u64 = 192;
/// Offset of the block area.
const FIRST_BLOCK: u64 = JOURNAL_AT + 16 * JOURNAL_ENTRIES;
/// The high 16 bits of a holder word (an allocated block's second header word while a
/// holder is recorded in it; never a free-list link, whose high 32 bits are zero).
const HOLDER_MAGIC: u64 = 0x4D48;
/// Holder word state: held by the participant in the low 32 bits.
const HOLDER_HELD: u64 = 1;
/// Holder word state: being reclaimed by the participant in the low 32 bits. No call writes
/// it since reclaims run under the guard (layout 3); a block found in it (a forged word) is
/// treated as a dead holder's and freed by the walk, uncounted.
const HOLDER_RECLAIMING: u64 = 2;
/// Holder word state: being filled by the participant in the low 32 bits, not handed on yet.
const HOLDER_WRITING: u64 = 3;
/// Holder word state: handed to the slot whose stamp is in the low 32 bits.
const HOLDER_QUEUED: u64 = 4;
/// The caller id of every call on an arena over raw memory (see the module docs).
const RAW_CALLER: u32 = u32::MAX;

fn holder_word(state: u64, id: u32) -> u64 {
    (HOLDER_MAGIC << 48) | (state << 32) | u64::from(id)
}

/// `(state, id)` of a holder word, or `None` for any other value (a free-list link left
/// behind, or a block nobody holds).
fn parse_holder(w: u64) -> Option<(u64, u32)> {
    (w >> 48 == HOLDER_MAGIC).then_some(((w >> 32) & 0xffff, w as u32))
}
/// Smallest block and block alignment.
const UNIT: u64 = 64;
const BLOCK_HEADER: u64 = 16;
/// Largest supported alignment of an allocation.
pub const MAX_ALIGN: usize = 4096;
/// Required alignment of the arena's start.
pub const ARENA_ALIGN: u64 = 128;
/// Bytes of an arena's own header, in front of its block area: an arena of
/// `ARENA_HEADER + 2^k` bytes (k ≥ 6) has one top block and can hold an allocation of up to
/// `2^k - 16` bytes.
pub const ARENA_HEADER: u64 = FIRST_BLOCK;
/// Smallest arena: its header plus one 64-byte block.
pub const MIN_ARENA_LEN: u64 = FIRST_BLOCK + UNIT;
/// Largest arena (block units are 32-bit, one value is reserved).
pub const MAX_ARENA_LEN: u64 = (u32::MAX as u64 - 1) * UNIT;

const TAG_MAGIC: u64 = 0xB10C;
const ST_ALLOC: u8 = 1;
const ST_ALLOC_SHIFTED: u8 = 2;
const ST_FREE: u8 = 3;
const ST_SHIFT_MARK: u8 = 4;
const ST_SHIFT_FREED: u8 = 5;

fn make_tag(state: u8, order: u32, unit: u32) -> u64 {
    (TAG_MAGIC << 48) | (u64::from(state) << 40) | (u64::from(order & 0xff) << 32) | u64::from(unit)
}

/// The tag of a block whose data is shifted to an alignment of `1 << align_shift`: the shift
/// is kept in the tag (bits 46..43), so where the data starts is computed, never searched for.
fn shifted_tag(order: u32, unit: u32, align_shift: u32) -> u64 {
    make_tag(ST_ALLOC_SHIFTED, order, unit) | (u64::from(align_shift & 0xf) << 43)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    state: u8,
    order: u32,
    unit: u32,
    /// log2 of the data's alignment (`ST_ALLOC_SHIFTED` only; 0 otherwise).
    align_shift: u32,
}

fn parse_tag(t: u64) -> Option<Tag> {
    if t >> 48 != TAG_MAGIC {
        return None;
    }
    Some(Tag {
        state: ((t >> 40) & 7) as u8,
        order: ((t >> 32) & 0xff) as u32,
        unit: t as u32,
        align_shift: ((t >> 43) & 0xf) as u32,
    })
}

fn order_size(order: u32) -> u64 {
    UNIT << order
}

/// The free-list link that names the block at `block`.
fn link_of(block: u64) -> u64 {
    block / UNIT + 1
}

/// An allocation resolved from its offset (see `Heap::resolve_light`, `Heap::resolve`).
#[derive(Debug, Clone, Copy)]
struct Resolved {
    /// The offset as given (for errors).
    off: u64,
    /// Arena-relative offset of the block.
    block: u64,
    /// Where the shift mark sits, for shifted data.
    mark: Option<u64>,
    order: u32,
}

/// Why an arena operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArenaError {
    /// No free block large enough now (others are allocated).
    #[error("arena out of memory: no room for {size} bytes aligned to {align}")]
    OutOfMemory {
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// The request can never fit, even in the empty arena (see [`Arena::max_alloc`]).
    #[error("{size} bytes aligned to {align} can never fit in this arena")]
    TooLarge {
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// The alignment is not a power of two, or exceeds [`MAX_ALIGN`].
    #[error("invalid layout: size {size}, align {align} (align must be a power of two <= 4096)")]
    InvalidLayout {
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// `free` was given an offset that is not the start of an allocated block.
    #[error("offset {offset} is not an allocated block: {reason}")]
    BadOffset {
        /// The offset given.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `free` was given a block that is already free.
    #[error("double free of the block at offset {offset}")]
    DoubleFree {
        /// The offset given.
        offset: u64,
    },
    /// Shared arena state is inconsistent (a corrupt or hostile peer, or a bug).
    #[error("arena corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// Where (arena-relative offset, or 0 for the header).
        offset: u64,
        /// What was found.
        reason: &'static str,
    },
    /// The calling process could not register in the arena's segment (its participant table
    /// is full), so it cannot take the arena's guard.
    #[error("cannot use the arena: {reason}")]
    NoParticipant {
        /// Why registration failed.
        reason: String,
    },
    /// The byte range cannot hold an arena (too small, too large, misaligned, outside the
    /// segment's region).
    #[error("invalid arena range: {reason}")]
    InvalidRange {
        /// What is wrong.
        reason: &'static str,
    },
    /// `attach` found no initialised arena (or one of another layout) in the range.
    #[error("no arena of this layout at the given range: {reason}")]
    NotAnArena {
        /// What did not match.
        reason: &'static str,
    },
}

/// What [`Arena::usage`] saw: a consistent snapshot of the blocks (taken under the guard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaUsage {
    /// Bytes available for blocks (arena length minus its header).
    pub capacity: u64,
    /// Blocks allocated (including any leaked by a crashed process).
    pub allocated_blocks: u64,
    /// Their total size (rounded block sizes, headers included).
    pub allocated_bytes: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Their total size.
    pub free_bytes: u64,
    /// Allocated blocks by holder word (see the module docs, "Held blocks"): `[unmarked,
    /// WRITING, QUEUED, HELD, RECLAIMING]` (the last is written by no call since reclaims run
    /// under the guard: a block there was forged). After every process that used the arena
    /// has gone and a recovery pass ran, a block left here shows where it leaked.
    pub allocated_by_mark: [u64; 5],
    /// The largest allocation (`alloc(size, 16)`) that would succeed now: the largest free
    /// block minus its header.
    pub largest_alloc_now: u64,
}

/// What [`Arena::check`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Bytes available for blocks (arena length minus its header).
    pub capacity: u64,
    /// Blocks currently allocated (including any leaked by a crashed process).
    pub allocated_blocks: u64,
    /// Total size of those blocks (rounded block sizes, headers included).
    pub allocated_bytes: u64,
    /// Free blocks (each on its order's free list).
    pub free_blocks: u64,
    /// Total size of those blocks.
    pub free_bytes: u64,
    /// The largest free block's size (headers included).
    pub largest_free_block: u64,
    /// Allocated blocks whose holder word is set (see the module docs, "Held blocks").
    pub marked_blocks: u64,
}

#[repr(C)]
struct ArenaHeader {
    magic: AtomicU64,
    version: AtomicU32,
    num_orders: AtomicU32,
    len: AtomicU64,
    /// Held blocks freed because their holder died (see [`Arena::reclaim_dead`]).
    held_reclaimed: AtomicU64,
    /// Blocks marked held and not yet freed (an over-count: it only gates the reclaim walk).
    held_now: AtomicU64,
    /// Blocks the reclaim walk freed, counted or not (see [`Arena::walk_freed`]).
    walk_freed: AtomicU64,
    _pad0: [AtomicU64; 2],
    guard: AtomicU64,
    journal_count: AtomicU64,
    _pad1: [AtomicU64; 6],
    heads: [AtomicU64; NUM_ORDERS as usize],
    journal: [[AtomicU64; 2]; JOURNAL_ENTRIES as usize],
}

const _: () = assert!(size_of::<ArenaHeader>() as u64 == FIRST_BLOCK);
const _: () =
    assert!(core::mem::offset_of!(ArenaHeader, held_reclaimed) as u64 == HELD_RECLAIMED_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, held_now) as u64 == HELD_NOW_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, walk_freed) as u64 == WALK_FREED_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, guard) as u64 == GUARD_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, journal_count) as u64 == JOURNAL_COUNT_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, heads) as u64 == HEADS_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, journal) as u64 == JOURNAL_AT);
const _: () = assert!(FIRST_BLOCK.is_multiple_of(UNIT));

/// Who is calling: a participant id for the guard word, and how to tell whether the guard's
/// owner is alive.
struct Caller<'a> {
    me: u32,
    alive: &'a dyn Fn(u32) -> bool,
}

/// A handle to an arena. See the [module docs](self) for the algorithm and guarantees.
///
/// Offsets handed out are [`Offset<u8>`]s relative to the *segment* base (for an arena made
/// with [`Arena::init`]) or to `base_offset` (for [`Arena::init_raw`]), so they can be
/// stored in shared memory and resolved by any process.
pub struct Arena {
    /// The words overlay the arena's bytes, which outlive the handle (kept alive by
    /// `segment`, or guaranteed by the caller of `init_raw`/`attach_raw`).
    heap: Heap<InPlace>,
    /// The segment the arena lives in: it keeps the memory mapped and names the callers.
    segment: Option<Arc<Segment>>,
}

// `Arena` is `Send + Sync` through `InPlace`'s impls; keep it so (it is public API).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Arena>();
};

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("base_offset", &self.heap.base_offset)
            .field("len", &self.heap.len)
            .field("top_order", &self.heap.top_order())
            .finish()
    }
}

/// The allocator proper, written over the word abstraction ([`Words`]) so that the same code
/// runs in place on shared bytes ([`Arena`]) and, under `--cfg mproc_loom`, on loom's model
/// memory (`model::ModelArena`). It touches shared state only through `mem`'s words.
#[derive(Debug)]
struct Heap<M> {
    mem: M,
    /// Validated length, copied at init/attach; never re-read from shared memory.
    len: u64,
    /// Added to arena-relative offsets to make the offsets handed out.
    base_offset: u64,
    /// The block area's size in units: its set bits are the top blocks (see module docs).
    units: u64,
}

/// What [`Heap`] notes through [`Words::note`] (recorded only by model memory).
mod event {
    /// A caller found the guard held and waited.
    pub(super) const GUARD_WAIT: &str = "guard: held by another, waited";
    /// A caller took the guard over from a dead owner.
    pub(super) const GUARD_TAKEOVER: &str = "guard: taken over from a dead owner";
    /// A caller rolled back a journal left by a dead owner (offset: entries undone).
    pub(super) const ROLLBACK: &str = "journal: rolled back a dead owner's call";
    /// A free merged its block with its buddy.
    pub(super) const MERGE: &str = "free: merged with the buddy";
}

/// The guard held by this caller: journaled stores, then `commit`. Dropping it without a
/// commit rolls the journal back first (an error found midway undoes what was done).
struct Guard<'h, M: Words> {
    heap: &'h Heap<M>,
    me: u32,
    /// Entries in the journal (this owner is its only writer).
    entries: u64,
    /// The model's simulated death struck: leave everything as a killed process would.
    died: bool,
}

/// The error a model death returns (never seen outside `--cfg mproc_loom` tests).
const DIED: ArenaError = ArenaError::Corrupt {
    offset: u64::MAX,
    reason: "the caller died here (model fault injection)",
};

impl<M: Words> Guard<'_, M> {
    /// Stores `val` at `rel`, journaling the old value first.
    fn set(&mut self, rel: u64, val: u64) -> Result<(), ArenaError> {
        let h = self.heap;
        if self.entries >= JOURNAL_ENTRIES {
            return Err(ArenaError::Corrupt {
                offset: JOURNAL_COUNT_AT,
                reason: "journal overflow (a bug: a call stored more than its bound)",
            });
        }
        let w = h.word(rel);
        // Relaxed: only the guard's owner writes blocks and lists; we own it.
        let old = w.load(Ordering::Relaxed);
        let e = JOURNAL_AT + 16 * self.entries;
        // Relaxed: the count's Release store below publishes the entry.
        h.word(e).store(rel, Ordering::Relaxed);
        h.word(e + 8).store(old, Ordering::Relaxed);
        self.entries += 1;
        // Release: the entry is visible before the count that covers it, the count before
        // the store it undoes (the store below is Release too): whoever rolls back after a
        // death sees every entry of every store that happened.
        h.word(JOURNAL_COUNT_AT)
            .store(self.entries, Ordering::Release);
        w.store(val, Ordering::Release);
        if h.mem.die_here() {
            self.died = true;
            return Err(DIED);
        }
        Ok(())
    }

    /// Ends the call: the journal no longer applies (the commit point), then the guard is
    /// released.
    fn commit(mut self) {
        // Release: the call's stores happen before the journal is emptied.
        self.heap.word(JOURNAL_COUNT_AT).store(0, Ordering::Release);
        self.entries = 0;
    }
}

impl<M: Words> Drop for Guard<'_, M> {
    fn drop(&mut self) {
        if self.died {
            return;
        }
        if self.entries > 0 {
            // An error midway (a corrupt link found after some stores): undo them. A corrupt
            // journal cannot be undone; the next owner meets the same error.
            let _ = self.heap.rollback();
        }
        // Release: the call's stores (or their undoing) happen before the next owner's.
        let _ = self.heap.word(GUARD_AT).compare_exchange(
            u64::from(self.me),
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

fn top_order_for(units: u64) -> u32 {
    63 - units.leading_zeros()
}

fn check_range(mem: NonNull<u8>, len: u64) -> Result<u64, ArenaError> {
    if !(mem.as_ptr() as usize as u64).is_multiple_of(ARENA_ALIGN) {
        return Err(ArenaError::InvalidRange {
            reason: "the start must be 128-byte aligned",
        });
    }
    if len < MIN_ARENA_LEN {
        return Err(ArenaError::InvalidRange {
            reason: "too small (at least 3520 bytes)",
        });
    }
    if len > MAX_ARENA_LEN || usize::try_from(len).is_err() {
        return Err(ArenaError::InvalidRange {
            reason: "too large (at most 256 GiB)",
        });
    }
    Ok(len - len % UNIT)
}

fn segment_range(seg: &Segment, offset: u64, len: u64) -> Result<NonNull<u8>, ArenaError> {
    let usable = usize::try_from(len).map_err(|_| ArenaError::InvalidRange {
        reason: "too large for this platform",
    })?;
    seg.resolve_slice(Offset::<u8>::new(offset), usable)
        .map(|p| p.cast::<u8>())
        .map_err(|_| ArenaError::InvalidRange {
            reason: "outside the segment's user region",
        })
}

impl Arena {
    /// Initialises a new arena over `len` bytes at `offset` (from the segment base) of
    /// `segment`'s user region. The range must be 128-byte aligned and still zero-filled
    /// where the arena's header goes, as a fresh segment is. The arena keeps the segment
    /// alive, and names its callers by their participant id in it.
    ///
    /// # Errors
    ///
    /// [`ArenaError::InvalidRange`]; [`ArenaError::Corrupt`] if the range is not zeroed
    /// where an arena header would go (an arena is already there, or other data).
    pub fn init(segment: Arc<Segment>, offset: u64, len: u64) -> Result<Arena, ArenaError> {
        let mem = segment_range(&segment, offset, len)?;
        // SAFETY: `mem..mem+len` lies in the segment's mapping (checked by
        // `resolve_slice`), which `segment` keeps alive inside the returned arena. Fresh
        // segment memory is zero; the header check below refuses a reused range.
        let mut arena = unsafe { Arena::init_raw(mem, len, offset)? };
        arena.segment = Some(segment);
        Ok(arena)
    }

    /// Attaches to an arena that [`Arena::init`] made (in any process) at the same range.
    ///
    /// # Errors
    ///
    /// [`ArenaError::InvalidRange`], [`ArenaError::NotAnArena`].
    pub fn attach(segment: Arc<Segment>, offset: u64, len: u64) -> Result<Arena, ArenaError> {
        let mem = segment_range(&segment, offset, len)?;
        // SAFETY: as in `init`: the range is inside the mapping, kept alive by `segment`.
        let mut arena = unsafe { Arena::attach_raw(mem, len, offset)? };
        arena.segment = Some(segment);
        Ok(arena)
    }

    /// Initialises an arena over caller-provided memory (a heap buffer, or any mapping).
    /// Offsets handed out are `base_offset + ` the position inside `mem`. Such an arena has
    /// no participant table: see the module docs, "Identity".
    ///
    /// # Safety
    ///
    /// * `mem..mem + len` must be valid for reads and writes, and stay so as long as this
    ///   arena and every arena attached to it are used;
    /// * the bytes of the arena's header ([`ARENA_HEADER`]) must be zero;
    /// * other code may access the range only through the arena's own API and through the
    ///   blocks it hands out.
    ///
    /// # Errors
    ///
    /// [`ArenaError::InvalidRange`], [`ArenaError::Corrupt`] if the header area is not zero.
    pub unsafe fn init_raw(
        mem: NonNull<u8>,
        len: u64,
        base_offset: u64,
    ) -> Result<Arena, ArenaError> {
        let len = check_range(mem, len)?;
        // SAFETY: `mem` is 128-aligned (checked) and the caller keeps `mem..mem + len` valid
        // and touched only through this arena's API and the blocks it hands out.
        let arena = Arena::in_place(unsafe { InPlace::new(mem, len) }, len, base_offset);
        let h = arena.header();
        // Relaxed: a sanity check of the caller's promise; the real publication is below.
        if h.magic.load(Ordering::Relaxed) != 0 || h.guard.load(Ordering::Relaxed) != 0 {
            return Err(ArenaError::Corrupt {
                offset: 0,
                reason: "range is not zeroed",
            });
        }
        // Relaxed: published by the Release store of `magic`.
        h.version.store(ARENA_VERSION, Ordering::Relaxed);
        h.num_orders.store(NUM_ORDERS, Ordering::Relaxed);
        h.len.store(len, Ordering::Relaxed);
        arena.heap.format();
        // SYNC POINT: Release pairs with the Acquire load of `magic` in `attach_raw`.
        h.magic.store(ARENA_MAGIC, Ordering::Release);
        Ok(arena)
    }

    /// Attaches to an arena over caller-provided memory.
    ///
    /// # Safety
    ///
    /// As [`Arena::init_raw`], except that the bytes hold an arena instead of zeros.
    ///
    /// # Errors
    ///
    /// [`ArenaError::InvalidRange`], [`ArenaError::NotAnArena`].
    pub unsafe fn attach_raw(
        mem: NonNull<u8>,
        len: u64,
        base_offset: u64,
    ) -> Result<Arena, ArenaError> {
        let len = check_range(mem, len)?;
        // SAFETY: as in `init_raw`: aligned, and valid as long as the caller promises.
        let arena = Arena::in_place(unsafe { InPlace::new(mem, len) }, len, base_offset);
        let h = arena.header();
        // SYNC POINT: Acquire pairs with the Release store in `init_raw`.
        if h.magic.load(Ordering::Acquire) != ARENA_MAGIC {
            return Err(ArenaError::NotAnArena {
                reason: "no arena magic",
            });
        }
        // Relaxed: after the Acquire above; the values are only compared, never used.
        if h.version.load(Ordering::Relaxed) != ARENA_VERSION {
            return Err(ArenaError::NotAnArena {
                reason: "arena layout version differs",
            });
        }
        if h.len.load(Ordering::Relaxed) != len {
            return Err(ArenaError::NotAnArena {
                reason: "arena length differs",
            });
        }
        if h.num_orders.load(Ordering::Relaxed) != NUM_ORDERS {
            return Err(ArenaError::NotAnArena {
                reason: "order count differs",
            });
        }
        Ok(arena)
    }

    fn in_place(mem: InPlace, len: u64, base_offset: u64) -> Arena {
        Arena {
            heap: Heap {
                mem,
                len,
                base_offset,
                units: (len - FIRST_BLOCK) / UNIT,
            },
            segment: None,
        }
    }

    /// The header, for `init_raw`/`attach_raw` (the algorithm reaches its words through
    /// [`Heap::word`]).
    fn header(&self) -> &ArenaHeader {
        // SAFETY: `len >= MIN_ARENA_LEN > size_of::<ArenaHeader>()`, the base is 128-aligned
        // (checked in `check_range`) and valid while `self` lives; the header is atomics
        // only, valid for any bytes.
        unsafe { self.heap.mem.base().cast::<ArenaHeader>().as_ref() }
    }

    /// Runs `f` as this process's caller identity (see the module docs, "Identity").
    fn with_caller<R>(&self, f: impl FnOnce(&Caller<'_>) -> R) -> Result<R, ArenaError> {
        match &self.segment {
            // Every caller of a raw arena is `RAW_CALLER`: any other owner in the guard word
            // is garbage (a scribble), taken over at once.
            None => Ok(f(&Caller {
                me: RAW_CALLER,
                alive: &|id| id == RAW_CALLER,
            })),
            Some(seg) => {
                let me = match seg.participant() {
                    Some(id) => id,
                    None => seg.register().map_err(|e| ArenaError::NoParticipant {
                        reason: e.to_string(),
                    })?,
                };
                Ok(f(&Caller {
                    me: me.get(),
                    alive: &|id| seg.is_alive(id),
                }))
            }
        }
    }

    /// Bytes usable for blocks (the arena's length minus [`ARENA_HEADER`]).
    pub fn capacity(&self) -> u64 {
        self.heap.capacity()
    }

    /// Largest size `alloc(size, 16)` can ever satisfy in this arena: the largest top block
    /// minus its 16-byte header. With no block allocated, any allocation up to it succeeds.
    pub fn max_alloc(&self) -> usize {
        self.heap.max_alloc()
    }

    /// Allocates `size` bytes aligned to `align` (a power of two, at most 4096) and returns
    /// their offset. The bytes are not zeroed. A zero-size request is served as one byte.
    ///
    /// # Errors
    ///
    /// [`ArenaError::InvalidLayout`]; [`ArenaError::TooLarge`] for a request above what the
    /// empty arena holds; [`ArenaError::OutOfMemory`] when no free block is large enough now;
    /// [`ArenaError::Corrupt`]; [`ArenaError::NoParticipant`].
    #[inline]
    pub fn alloc(&self, size: usize, align: usize) -> Result<Offset<u8>, ArenaError> {
        self.with_caller(|c| self.heap.alloc_with(c, size, align, 0))?
    }

    /// Frees the block at `offset` (as returned by [`alloc`](Arena::alloc), by any process).
    ///
    /// # Errors
    ///
    /// [`ArenaError::DoubleFree`]; [`ArenaError::BadOffset`] if `offset` is not the start
    /// of an allocated block; [`ArenaError::Corrupt`]; [`ArenaError::NoParticipant`].
    /// Nothing is changed on error. Freeing a *stale* offset whose block was freed and
    /// allocated again with the same shape cannot be told apart from a correct free (as with
    /// any allocator).
    #[inline]
    pub fn free(&self, offset: Offset<u8>) -> Result<(), ArenaError> {
        self.with_caller(|c| self.heap.free(c, offset))?
    }

    /// As [`Arena::alloc`], the block marked `WRITING(writer)` (see the module docs, "Held
    /// blocks"): if `writer` dies before handing it on with [`Arena::mark_queued`] or freeing
    /// it, [`Arena::reclaim_dead`] frees it.
    ///
    /// # Errors
    ///
    /// As [`Arena::alloc`].
    pub fn alloc_marked(
        &self,
        size: usize,
        align: usize,
        writer: u32,
    ) -> Result<Offset<u8>, ArenaError> {
        self.with_caller(|c| self.heap.alloc_marked(c, size, align, writer))?
    }

    /// Hands the block at `offset` (allocated with [`Arena::alloc_marked`] by this process)
    /// to the queue slot of stamp `stamp`: call it inside the slot claim, after writing the
    /// slot's reference to the block, before committing. Lock-free (one store).
    ///
    /// # Errors
    ///
    /// As [`Arena::free`], for an `offset` that is not an allocated block.
    pub fn mark_queued(&self, offset: Offset<u8>, stamp: u32) -> Result<(), ArenaError> {
        self.heap.mark(offset, HOLDER_QUEUED, stamp)
    }

    /// Frees the block at `offset` if it is still exactly `QUEUED(stamp)`: a dead producer's
    /// claim of the slot of stamp `stamp` named it (see the module docs). Racing recoverers
    /// are serialised by the guard, so one frees it; `me` (the caller's participant id) is
    /// no longer needed for that and is ignored. `Ok(true)` if this call freed it; `Ok(false)` for an
    /// offset that names no such block (a half-written descriptor, or one already freed).
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`], [`ArenaError::NoParticipant`]; a bad `offset` is `Ok(false)`
    /// (it is untrusted input).
    pub fn reclaim_queued(
        &self,
        offset: Offset<u8>,
        stamp: u32,
        _me: u32,
    ) -> Result<bool, ArenaError> {
        self.with_caller(|c| self.heap.reclaim_queued(c, offset, stamp))?
    }

    /// Marks the allocated block at `offset` as held by participant `holder` (see the module
    /// docs, "Held blocks"): if `holder` dies before freeing it, [`Arena::reclaim_dead`]
    /// frees it and counts it. Only the process that owns the block may call it. Lock-free.
    ///
    /// # Errors
    ///
    /// As [`Arena::free`], for an `offset` that is not an allocated block; nothing changes.
    pub fn hold(&self, offset: Offset<u8>, holder: u32) -> Result<(), ArenaError> {
        self.heap.mark(offset, HOLDER_HELD, holder)
    }

    /// Frees every block held ([`Arena::hold`]) or being written ([`Arena::alloc_marked`])
    /// by a participant that `alive` says is dead, electing this participant (`me`) with one
    /// CAS per block; returns how many it counted (blocks it took from `HELD(dead)`; a
    /// `WRITING` block was never an item). A walk over the blocks under the guard, skipped
    /// when no block is marked held: run it now and then (a caller waiting for room), not per
    /// operation.
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] if the walk meets a block header no valid execution writes;
    /// [`ArenaError::NoParticipant`].
    pub fn reclaim_dead(&self, alive: impl Fn(u32) -> bool, me: u32) -> Result<u64, ArenaError> {
        self.with_caller(|c| self.heap.reclaim_dead(c, &alive, me))?
    }

    /// Blocks [`Arena::reclaim_dead`] has freed so far, by any process, whether counted as
    /// held or not (a dead producer's `WRITING` block is not): a caller that sees it move
    /// wakes whoever waits for room.
    pub fn walk_freed(&self) -> u64 {
        // Relaxed: a statistic, only compared before and after a walk.
        self.heap.word(WALK_FREED_AT).load(Ordering::Relaxed)
    }

    /// Held blocks freed so far because their holder died (by any process).
    pub fn held_reclaimed(&self) -> u64 {
        // Relaxed: a statistic.
        self.heap.word(HELD_RECLAIMED_AT).load(Ordering::Relaxed)
    }

    /// A pointer to `len` bytes at `offset`, checked to lie inside the arena's blocks (not
    /// that they are allocated).
    ///
    /// # Errors
    ///
    /// [`ArenaError::BadOffset`].
    pub fn ptr(&self, offset: Offset<u8>, len: usize) -> Result<NonNull<u8>, ArenaError> {
        let off = offset.get();
        let ok = off.checked_sub(self.heap.base_offset).filter(|&d| {
            d >= FIRST_BLOCK
                && d.checked_add(len as u64)
                    .is_some_and(|e| e <= self.heap.len)
        });
        match ok {
            // SAFETY: `d + len <= self.len`, inside the arena's memory.
            Some(d) => Ok(unsafe { self.heap.mem.base().add(d as usize) }),
            None => Err(ArenaError::BadOffset {
                offset: off,
                reason: "outside the arena's blocks",
            }),
        }
    }

    /// A snapshot of the arena's blocks: one walk under the guard (so it is consistent, and
    /// other allocator calls wait for it).
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] if the walk meets a block header no valid execution writes;
    /// [`ArenaError::NoParticipant`].
    pub fn usage(&self) -> Result<ArenaUsage, ArenaError> {
        self.with_caller(|c| self.heap.usage(c))?
    }

    /// The heap-invariant checker: walks every block and every free list under the guard and
    /// checks the invariants listed in the module docs ("Corruption"). Safe to run at any
    /// time, from any process; it makes other allocator calls wait for one walk.
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] naming the first inconsistency; [`ArenaError::NoParticipant`].
    pub fn check(&self) -> Result<ArenaStats, ArenaError> {
        self.with_caller(|c| self.heap.check(c))?
    }
}

impl<M: Words> Heap<M> {
    /// The 64-bit word at arena-relative `rel` (bounds asserted by `M` as a backstop).
    #[inline(always)]
    fn word(&self, rel: u64) -> &M::Word {
        self.mem.word(rel)
    }

    /// The free-list head of `order`.
    #[inline(always)]
    fn head(&self, order: u32) -> u64 {
        debug_assert!(order < NUM_ORDERS);
        HEADS_AT + 8 * u64::from(order)
    }

    fn capacity(&self) -> u64 {
        self.units * UNIT
    }

    /// The order of the largest top block.
    fn top_order(&self) -> u32 {
        top_order_for(self.units)
    }

    fn max_alloc(&self) -> usize {
        (order_size(self.top_order()) - BLOCK_HEADER) as usize
    }

    /// The top blocks, in address order: `(arena-relative start, order)`.
    fn top_blocks(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut start = FIRST_BLOCK;
        (0..NUM_ORDERS)
            .rev()
            .filter(|&k| self.units & (1 << k) != 0)
            .map(move |k| {
                let s = start;
                start += order_size(k);
                (s, k)
            })
    }

    /// The top block containing arena-relative `p`, if `p` is in the block area.
    fn top_of(&self, p: u64) -> Option<(u64, u32)> {
        self.top_blocks()
            .find(|&(s, k)| p >= s && p < s + order_size(k))
    }

    /// Lays out a fresh arena: each top block whole, free and listed (a handful of stores,
    /// before the arena is published).
    fn format(&self) {
        for (s, k) in self.top_blocks() {
            // Relaxed: published by the Release store of the magic (or, in a model, by the
            // spawning of the threads).
            self.word(s)
                .store(make_tag(ST_FREE, k, (s / UNIT) as u32), Ordering::Relaxed);
            self.word(s + 8).store(0, Ordering::Relaxed);
            self.word(s + 16).store(0, Ordering::Relaxed);
            self.word(self.head(k)).store(link_of(s), Ordering::Relaxed);
        }
    }

    /// Takes the guard (see the module docs, "Crash design"), rolling back a dead owner's
    /// journal.
    fn lock(&self, c: &Caller<'_>) -> Result<Guard<'_, M>, ArenaError> {
        let guard = self.word(GUARD_AT);
        let me = u64::from(c.me);
        let mut seen = 0;
        let mut round = 0u32;
        loop {
            // Acquire: pairs with the Release of the previous owner's unlock: its stores
            // happen before ours.
            let cur = match guard.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(cur) => cur,
            };
            if cur == 0 {
                continue; // A spurious failure of the weak CAS.
            }
            if cur != seen {
                seen = cur;
                round = 0;
                self.mem.note(event::GUARD_WAIT, cur);
            }
            let owner = cur as u32;
            if cur >> 32 != 0
                || (crate::sync::time_to_ask(round) && owner != c.me && !(c.alive)(owner))
            {
                // A dead owner (or garbage): take the exact word we judged. Acquire: what the
                // dead owner stored (its journal) is visible to the rollback.
                if guard
                    .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.mem.note(event::GUARD_TAKEOVER, cur);
                    break;
                }
                continue;
            }
            backoff(round);
            round = round.saturating_add(1);
        }
        let g = Guard {
            heap: self,
            me: c.me,
            entries: 0,
            died: false,
        };
        // A journal left by a dead owner (or by a guard released without its commit, which
        // no valid execution does) is undone before anything else.
        self.rollback()?;
        Ok(g)
    }

    /// Undoes the journal, newest entry first, then empties it. Only the guard's owner calls
    /// it.
    fn rollback(&self) -> Result<(), ArenaError> {
        // Acquire: pairs with the Release stores of the count in `Guard::set`.
        let n = self.word(JOURNAL_COUNT_AT).load(Ordering::Acquire);
        if n == 0 {
            return Ok(());
        }
        if n > JOURNAL_ENTRIES {
            return Err(ArenaError::Corrupt {
                offset: JOURNAL_COUNT_AT,
                reason: "journal count out of range",
            });
        }
        // Check every entry before restoring any, so a corrupt journal changes nothing.
        for i in 0..n {
            // Relaxed: ordered after the Acquire load of the count.
            let rel = self.word(JOURNAL_AT + 16 * i).load(Ordering::Relaxed);
            let in_heads = (HEADS_AT..JOURNAL_AT).contains(&rel);
            let in_blocks = rel >= FIRST_BLOCK && rel < self.len;
            if !rel.is_multiple_of(8) || !(in_heads || in_blocks) {
                return Err(ArenaError::Corrupt {
                    offset: JOURNAL_AT + 16 * i,
                    reason: "journal entry names a word outside the lists and blocks",
                });
            }
        }
        for i in (0..n).rev() {
            // Relaxed: as above.
            let rel = self.word(JOURNAL_AT + 16 * i).load(Ordering::Relaxed);
            let old = self.word(JOURNAL_AT + 16 * i + 8).load(Ordering::Relaxed);
            // Release: restored before the count says the journal is done.
            self.word(rel).store(old, Ordering::Release);
        }
        self.mem.note(event::ROLLBACK, n);
        // Release: the restored words happen before the journal is emptied.
        self.word(JOURNAL_COUNT_AT).store(0, Ordering::Release);
        Ok(())
    }

    fn order_for(&self, size: usize, align: usize) -> Option<u32> {
        // A zero-size request takes one byte, so its data never sits at its block's end.
        let size = size.max(1) as u64;
        let align = align as u64;
        let need = if align <= 16 {
            size.checked_add(BLOCK_HEADER)?
        } else if align <= UNIT {
            size.checked_add(align)?
        } else {
            size.checked_add(align + BLOCK_HEADER)?
        };
        let need = need.max(UNIT);
        let order = 64 - (need - 1).leading_zeros() - 6;
        (order <= self.top_order()).then_some(order)
    }

    /// The block a free-list link names, checked to be a block of `order` in the block area.
    fn linked_block(&self, link: u64, order: u32) -> Result<u64, ArenaError> {
        let corrupt = Err(ArenaError::Corrupt {
            offset: link.wrapping_sub(1).wrapping_mul(UNIT),
            reason: "free-list link out of bounds",
        });
        let Some(block) = link.checked_sub(1).and_then(|u| u.checked_mul(UNIT)) else {
            return corrupt;
        };
        let aligned = block
            .checked_sub(FIRST_BLOCK)
            .is_some_and(|rel| rel.is_multiple_of(order_size(order)));
        if !aligned || block.saturating_add(order_size(order)) > self.len {
            return corrupt;
        }
        Ok(block)
    }

    /// Unlinks the free block `block` of `order` from its list.
    fn unlink(&self, g: &mut Guard<'_, M>, block: u64, order: u32) -> Result<(), ArenaError> {
        // Relaxed (both): we own the guard; lists change only under it.
        let next = self.word(block + 8).load(Ordering::Relaxed);
        let prev = self.word(block + 16).load(Ordering::Relaxed);
        if prev == 0 {
            if self.word(self.head(order)).load(Ordering::Relaxed) != link_of(block) {
                return Err(ArenaError::Corrupt {
                    offset: block,
                    reason: "free block without a back link is not its list's head",
                });
            }
            g.set(self.head(order), next)?;
        } else {
            let p = self.linked_block(prev, order)?;
            g.set(p + 8, next)?;
        }
        if next != 0 {
            let n = self.linked_block(next, order)?;
            g.set(n + 16, prev)?;
        }
        Ok(())
    }

    /// Lists the block `block` (its tag already free, of `order`) at the front of its list.
    fn push(&self, g: &mut Guard<'_, M>, block: u64, order: u32) -> Result<(), ArenaError> {
        let head = self.head(order);
        // Relaxed: under the guard.
        let first = self.word(head).load(Ordering::Relaxed);
        g.set(block + 8, first)?;
        g.set(block + 16, 0)?;
        if first != 0 {
            let f = self.linked_block(first, order)?;
            g.set(f + 16, link_of(block))?;
        }
        g.set(head, link_of(block))
    }

    /// [`Arena::alloc`], writing `mark` (a holder word, or 0 for none) into the block's
    /// holder word as one of the allocation's journaled stores.
    fn alloc_with(
        &self,
        c: &Caller<'_>,
        size: usize,
        align: usize,
        mark: u64,
    ) -> Result<Offset<u8>, ArenaError> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(ArenaError::InvalidLayout { size, align });
        }
        let order = self
            .order_for(size, align)
            .ok_or(ArenaError::TooLarge { size, align })?;
        let mut g = self.lock(c)?;
        // Relaxed: under the guard.
        let Some((mut k, link)) = (order..=self.top_order())
            .map(|k| (k, self.word(self.head(k)).load(Ordering::Relaxed)))
            .find(|&(_, link)| link != 0)
        else {
            return Err(ArenaError::OutOfMemory { size, align });
        };
        let block = self.linked_block(link, k)?;
        let unit = (block / UNIT) as u32;
        // Relaxed: under the guard.
        if self.word(block).load(Ordering::Relaxed) != make_tag(ST_FREE, k, unit) {
            return Err(ArenaError::Corrupt {
                offset: block,
                reason: "block on a free list is not free",
            });
        }
        self.unlink(&mut g, block, k)?;
        while k > order {
            k -= 1;
            let upper = block + order_size(k);
            g.set(upper, make_tag(ST_FREE, k, (upper / UNIT) as u32))?;
            self.push(&mut g, upper, k)?;
        }
        g.set(block + 8, mark)?;
        // The block is ours: compute where the data goes.
        let block_addr = self.mem.addr() + block;
        let data_addr = (block_addr + BLOCK_HEADER).next_multiple_of(align.max(16) as u64);
        let data = data_addr - self.mem.addr();
        debug_assert!(data + size as u64 <= block + order_size(order));
        if data == block + BLOCK_HEADER {
            g.set(block, make_tag(ST_ALLOC, order, unit))?;
        } else {
            g.set(data - BLOCK_HEADER, make_tag(ST_SHIFT_MARK, order, unit))?;
            g.set(block, shifted_tag(order, unit, align.trailing_zeros()))?;
        }
        g.commit();
        Ok(Offset::new(self.base_offset + data))
    }

    /// Resolves `offset` by the tag in front of it alone, without the guard: enough for the
    /// lock-free holder-word calls (`mark`, `reclaim_queued`), whose CAS or store only ever
    /// touches a word a valid tag stands in front of. `free` re-resolves under the guard
    /// with [`Heap::resolve`].
    fn resolve_light(&self, offset: Offset<u8>) -> Result<Resolved, ArenaError> {
        let off = offset.get();
        let bad = |reason| {
            Err(ArenaError::BadOffset {
                offset: off,
                reason,
            })
        };
        let Some(data) = off.checked_sub(self.base_offset) else {
            return bad("before the arena");
        };
        if data % 16 != 0 {
            return bad("misaligned");
        }
        if data < FIRST_BLOCK + BLOCK_HEADER || data >= self.len {
            return bad("outside the arena's blocks");
        }
        // Acquire: pairs with the Release stores of tags (an allocation handed to us through
        // a channel with its own Release/Acquire is fully visible anyway).
        let front = self.word(data - BLOCK_HEADER).load(Ordering::Acquire);
        let Some(ft) = parse_tag(front) else {
            return bad("no block tag in front of it");
        };
        if ft.order > self.top_order() {
            return bad("bad order");
        }
        let (block, mark) = match ft.state {
            ST_ALLOC | ST_FREE => {
                let block = data - BLOCK_HEADER;
                if u64::from(ft.unit) * UNIT != block {
                    return bad("tag does not match its position");
                }
                if ft.state == ST_FREE {
                    return Err(ArenaError::DoubleFree { offset: off });
                }
                (block, None)
            }
            ST_SHIFT_FREED => return Err(ArenaError::DoubleFree { offset: off }),
            ST_SHIFT_MARK => {
                let block = u64::from(ft.unit) * UNIT;
                let in_block = block >= FIRST_BLOCK
                    && block + 2 * BLOCK_HEADER <= data
                    && block
                        .checked_add(order_size(ft.order))
                        .is_some_and(|e| data < e && e <= self.len);
                if !in_block {
                    return bad("shift mark points outside its block");
                }
                // The block's own tag says where its data starts: a mark anywhere else (a
                // stale one, or forged in user bytes) names no allocation. Acquire: as above.
                let bt = parse_tag(self.word(block).load(Ordering::Acquire));
                match bt.filter(|t| t.state == ST_ALLOC_SHIFTED && t.order == ft.order) {
                    Some(t) if self.data_of(block, t) == data => {}
                    Some(_) => return bad("not where its block's data starts"),
                    None => return Err(ArenaError::DoubleFree { offset: off }),
                }
                (block, Some(data - BLOCK_HEADER))
            }
            _ => return bad("not the start of an allocation"),
        };
        Ok(Resolved {
            off,
            block,
            mark,
            order: ft.order,
        })
    }

    /// The whole block that contains `p` (arena-relative, in the block area), found by
    /// descending from its top block through offsets that are block starts whatever the
    /// history (see the module docs): `(start, tag)`. Under the guard.
    fn block_containing(&self, p: u64) -> Result<(u64, Tag), ArenaError> {
        let Some((mut s, mut k)) = self.top_of(p) else {
            return Err(ArenaError::Corrupt {
                offset: p,
                reason: "offset outside every top block",
            });
        };
        loop {
            // Relaxed: under the guard.
            let t = parse_tag(self.word(s).load(Ordering::Relaxed))
                .filter(|t| u64::from(t.unit) * UNIT == s && t.order <= k)
                .filter(|t| matches!(t.state, ST_ALLOC | ST_ALLOC_SHIFTED | ST_FREE));
            let Some(t) = t else {
                return Err(ArenaError::Corrupt {
                    offset: s,
                    reason: "no valid block tag at a block start",
                });
            };
            if t.order == k {
                return Ok((s, t));
            }
            k -= 1;
            if p >= s + order_size(k) {
                s += order_size(k);
            }
        }
    }

    /// Resolves `offset` to an allocated block under the guard, exactly: the tag in front of
    /// it must be confirmed by [`Heap::block_containing`].
    fn resolve(&self, offset: Offset<u8>) -> Result<Resolved, ArenaError> {
        let r = self.resolve_light(offset)?;
        let (start, t) = self.block_containing(r.block)?;
        if t.state == ST_FREE {
            return Err(ArenaError::DoubleFree { offset: r.off });
        }
        let shape = if r.mark.is_some() {
            ST_ALLOC_SHIFTED
        } else {
            ST_ALLOC
        };
        let data = r.off - self.base_offset;
        if start != r.block
            || t.order != r.order
            || t.state != shape
            || self.data_of(start, t) != data
        {
            return Err(ArenaError::BadOffset {
                offset: r.off,
                reason: "its block is not allocated with this shape",
            });
        }
        Ok(r)
    }

    /// [`Arena::free`].
    fn free(&self, c: &Caller<'_>, offset: Offset<u8>) -> Result<(), ArenaError> {
        let mut g = self.lock(c)?;
        let r = self.resolve(offset)?;
        let was_held = self.free_locked(&mut g, &r)?;
        g.commit();
        if was_held {
            self.add_to(HELD_NOW_AT, -1);
        }
        Ok(())
    }

    /// Frees the resolved allocation under the guard, merging it with free buddies; returns
    /// whether its holder word was set (the caller lowers the held count after the commit).
    fn free_locked(&self, g: &mut Guard<'_, M>, r: &Resolved) -> Result<bool, ArenaError> {
        // Relaxed: the block is allocated; its holder word was written by its owner (which
        // is us, or dead) or by an elected reclaimer (us).
        let was_held = parse_holder(self.word(r.block + 8).load(Ordering::Relaxed)).is_some();
        if let Some(mark) = r.mark {
            // Retire the shift mark, so a second free reports `DoubleFree`.
            let unit = (r.block / UNIT) as u32;
            g.set(mark, make_tag(ST_SHIFT_FREED, r.order, unit))?;
        }
        let Some((_, top)) = self.top_of(r.block) else {
            return Err(ArenaError::Corrupt {
                offset: r.block,
                reason: "block outside every top block",
            });
        };
        let (mut block, mut k) = (r.block, r.order);
        while k < top {
            let buddy = FIRST_BLOCK + ((block - FIRST_BLOCK) ^ order_size(k));
            // Relaxed: under the guard. The buddy's offset is a block start (see module docs).
            let bt = self.word(buddy).load(Ordering::Relaxed);
            if bt != make_tag(ST_FREE, k, (buddy / UNIT) as u32) {
                break;
            }
            self.unlink(g, buddy, k)?;
            self.mem.note(event::MERGE, buddy);
            block = block.min(buddy);
            k += 1;
        }
        g.set(block, make_tag(ST_FREE, k, (block / UNIT) as u32))?;
        self.push(g, block, k)?;
        Ok(was_held)
    }

    /// Adds `delta` to the header counter at `at`, saturating at 0 and `u64::MAX` (a CAS
    /// loop: the word abstraction has no fetch-add).
    fn add_to(&self, at: u64, delta: i64) {
        let w = self.word(at);
        // Relaxed: the header counters are statistics and a walk gate (see `hold`); nothing
        // is published through them.
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add_signed(delta);
            match w.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// [`Arena::alloc_marked`]: the count first (a death after it over-counts), then the
    /// block, marked as one of its journaled stores.
    fn alloc_marked(
        &self,
        c: &Caller<'_>,
        size: usize,
        align: usize,
        writer: u32,
    ) -> Result<Offset<u8>, ArenaError> {
        self.add_to(HELD_NOW_AT, 1);
        self.alloc_with(c, size, align, holder_word(HOLDER_WRITING, writer))
            .inspect_err(|_| self.add_to(HELD_NOW_AT, -1))
    }

    /// Writes the holder word `(state, value)` of the allocated block at `offset`, which this
    /// process owns. The count of marked blocks is raised first if the block was unmarked, so
    /// that a process killed between the two leaves an over-count (a needless walk), never a
    /// marked block the walk would skip.
    fn mark(&self, offset: Offset<u8>, state: u64, value: u32) -> Result<(), ArenaError> {
        let r = self.resolve_light(offset)?;
        let word = self.word(r.block + 8);
        // Relaxed: the block is ours; its previous mark was written by this process.
        if parse_holder(word.load(Ordering::Relaxed)).is_none() {
            self.add_to(HELD_NOW_AT, 1);
        }
        // Release: a recoverer that reads the mark (Acquire) sees the block as we wrote it
        // (for `QUEUED`, the slot's descriptor was written before, inside the same claim).
        word.store(holder_word(state, value), Ordering::Release);
        Ok(())
    }

    /// [`Arena::reclaim_queued`]: all under the guard, so a dead owner's interrupted call is
    /// rolled back before the block is judged (a consumer killed inside its own free of this
    /// very block leaves it `QUEUED` again once rolled back, never "free" to a look that
    /// came first).
    fn reclaim_queued(
        &self,
        c: &Caller<'_>,
        offset: Offset<u8>,
        stamp: u32,
    ) -> Result<bool, ArenaError> {
        let mut g = self.lock(c)?;
        let r = match self.resolve(offset) {
            Ok(r) => r,
            Err(e @ ArenaError::Corrupt { .. }) => return Err(e),
            // Untrusted input: a half-written descriptor, or a block already freed.
            Err(_) => return Ok(false),
        };
        // Relaxed: under the guard; every holder-word change that matters here (the
        // producer's `QUEUED` mark) happened before the producer's death was seen.
        if self.word(r.block + 8).load(Ordering::Relaxed) != holder_word(HOLDER_QUEUED, stamp) {
            return Ok(false);
        }
        let was_held = self.free_locked(&mut g, &r)?;
        g.commit();
        if was_held {
            self.add_to(HELD_NOW_AT, -1);
        }
        Ok(true)
    }

    /// Walks the blocks of every top block in address order under the guard, checking each
    /// block's tag (present, matching its position, an order that fits its alignment and its
    /// top block, a block-start state), and hands `f` each block's offset and tag. The one
    /// walk behind `check`, `usage` and `reclaim_dead`.
    fn for_each_block(
        &self,
        mut f: impl FnMut(u64, Tag) -> Result<(), ArenaError>,
    ) -> Result<(), ArenaError> {
        let corrupt = |offset, reason| Err(ArenaError::Corrupt { offset, reason });
        for (start, top) in self.top_blocks() {
            let end = start + order_size(top);
            let mut p = start;
            while p < end {
                // Relaxed: under the guard.
                let Some(t) = parse_tag(self.word(p).load(Ordering::Relaxed)) else {
                    return corrupt(p, "no block tag");
                };
                if u64::from(t.unit) * UNIT != p || t.order > top {
                    return corrupt(p, "tag does not match its position");
                }
                let size = order_size(t.order);
                if !(p - start).is_multiple_of(size) || end - p < size {
                    return corrupt(
                        p,
                        "block misaligned for its order, or overruns its top block",
                    );
                }
                if !matches!(t.state, ST_ALLOC | ST_ALLOC_SHIFTED | ST_FREE) {
                    return corrupt(p, "bad block state");
                }
                f(p, t)?;
                p += size;
            }
        }
        Ok(())
    }

    /// [`Arena::usage`].
    fn usage(&self, c: &Caller<'_>) -> Result<ArenaUsage, ArenaError> {
        let g = self.lock(c)?;
        let mut u = ArenaUsage {
            capacity: self.capacity(),
            ..ArenaUsage::default()
        };
        let mut largest_free = 0;
        self.for_each_block(|p, t| {
            let size = order_size(t.order);
            if t.state == ST_FREE {
                u.free_blocks += 1;
                u.free_bytes += size;
                largest_free = largest_free.max(size);
                return Ok(());
            }
            u.allocated_blocks += 1;
            u.allocated_bytes += size;
            // Acquire: pairs with the Release store of a mark (made without the guard).
            let mark = parse_holder(self.word(p + 8).load(Ordering::Acquire));
            let i = match mark.map(|(state, _)| state) {
                Some(HOLDER_WRITING) => 1,
                Some(HOLDER_QUEUED) => 2,
                Some(HOLDER_HELD) => 3,
                Some(HOLDER_RECLAIMING) => 4,
                _ => 0,
            };
            u.allocated_by_mark[i] += 1;
            Ok(())
        })?;
        g.commit();
        u.largest_alloc_now = largest_free.saturating_sub(BLOCK_HEADER);
        Ok(u)
    }

    /// [`Arena::reclaim_dead`]: one walk under the guard finds the blocks of dead holders
    /// (asking `alive` once per holder id), then each is freed by a call of its own (take
    /// the guard, check the block is still the one seen and its holder word unchanged,
    /// free, commit), so no call outgrows the journal and a reclaimer killed midway has its
    /// one block rolled back, still held by the dead holder, for the next walk.
    fn reclaim_dead(
        &self,
        c: &Caller<'_>,
        alive: &dyn Fn(u32) -> bool,
        me: u32,
    ) -> Result<u64, ArenaError> {
        // Relaxed: a gate; a mark stored after this load belongs to a live holder.
        if self.word(HELD_NOW_AT).load(Ordering::Relaxed) == 0 {
            return Ok(0);
        }
        let mut dead = Vec::new();
        {
            let g = self.lock(c)?;
            let mut answers: HashMap<u32, bool> = HashMap::new();
            self.for_each_block(|p, t| {
                if t.state != ST_FREE {
                    // Acquire: pairs with the Release store of the mark in `mark`.
                    let w = self.word(p + 8).load(Ordering::Acquire);
                    // `QUEUED` blocks belong to the queue (a committed slot names them, or
                    // the dead producer's claim does, which `reclaim_queued` handles).
                    let dead_holder = parse_holder(w).is_some_and(|(state, id)| {
                        matches!(state, HOLDER_HELD | HOLDER_RECLAIMING | HOLDER_WRITING)
                            && id != me
                            && !*answers.entry(id).or_insert_with(|| alive(id))
                    });
                    if dead_holder {
                        dead.push((p, t, w));
                    }
                }
                Ok(())
            })?;
            g.commit();
        }
        let mut counted = 0;
        for (p, t, w) in dead {
            let mut g = self.lock(c)?;
            // Still the block the walk saw (same tag, found from its top block), held by the
            // same dead holder? Another walker may have freed it meanwhile.
            // Relaxed: under the guard.
            let same = self
                .block_containing(p)
                .is_ok_and(|(start, bt)| start == p && bt == t)
                && self.word(p + 8).load(Ordering::Relaxed) == w;
            if !same {
                continue;
            }
            let mark = match t.state {
                ST_ALLOC => None,
                _ => Some(self.shifted_data(p, t)? - BLOCK_HEADER),
            };
            let r = Resolved {
                off: self.base_offset + self.data_of(p, t),
                block: p,
                mark,
                order: t.order,
            };
            self.free_locked(&mut g, &r)?;
            g.commit();
            // After the commit: a reclaimer killed before these leaves an over-count of
            // held blocks (a needless walk) and an uncounted loss, never a count of a block
            // that was not reclaimed.
            self.add_to(HELD_NOW_AT, -1);
            self.add_to(WALK_FREED_AT, 1);
            // Only a held block was an item somebody had received; a `WRITING` one was never
            // committed, and a `RECLAIMING` word is written by no call (a forged one).
            if parse_holder(w).is_some_and(|(state, _)| state == HOLDER_HELD) {
                self.add_to(HELD_RECLAIMED_AT, 1);
                counted += 1;
            }
        }
        Ok(counted)
    }

    /// Where the data of block `p` (tag `t`, allocated) starts: 16 bytes in, or for shifted
    /// data at the alignment its tag records.
    fn data_of(&self, p: u64, t: Tag) -> u64 {
        if t.state != ST_ALLOC_SHIFTED {
            return p + BLOCK_HEADER;
        }
        let addr = self.mem.addr();
        (addr + p + BLOCK_HEADER).next_multiple_of(1 << t.align_shift) - addr
    }

    /// Where the data of shifted block `p` starts, checked: its shift mark must be just in
    /// front of it, inside the block.
    fn shifted_data(&self, p: u64, t: Tag) -> Result<u64, ArenaError> {
        let data = self.data_of(p, t);
        let fits = data >= p + 2 * BLOCK_HEADER && data < p + order_size(t.order);
        // Relaxed: under the guard; the marks were written under it.
        let mark = fits
            .then(|| parse_tag(self.word(data - BLOCK_HEADER).load(Ordering::Relaxed)))
            .flatten();
        if mark.is_some_and(|m| m.state == ST_SHIFT_MARK && m.unit == t.unit) {
            Ok(data)
        } else {
            Err(ArenaError::Corrupt {
                offset: p,
                reason: "shifted block without its shift mark",
            })
        }
    }

    /// [`Arena::check`].
    fn check(&self, c: &Caller<'_>) -> Result<ArenaStats, ArenaError> {
        let corrupt = |offset, reason| Err(ArenaError::Corrupt { offset, reason });
        let g = self.lock(c)?;
        let mut stats = ArenaStats {
            capacity: self.capacity(),
            ..ArenaStats::default()
        };
        // Free blocks: offset -> (order, listed).
        let mut free: HashMap<u64, (u32, bool)> = HashMap::new();
        let mut total = 0;
        self.for_each_block(|p, t| {
            let size = order_size(t.order);
            total += size;
            if t.state == ST_FREE {
                free.insert(p, (t.order, false));
                stats.free_blocks += 1;
                stats.free_bytes += size;
                stats.largest_free_block = stats.largest_free_block.max(size);
            } else {
                stats.allocated_blocks += 1;
                stats.allocated_bytes += size;
                // Acquire: pairs with the Release store of a mark.
                if parse_holder(self.word(p + 8).load(Ordering::Acquire)).is_some() {
                    stats.marked_blocks += 1;
                }
                if t.state == ST_ALLOC_SHIFTED {
                    self.shifted_data(p, t)?;
                }
            }
            Ok(())
        })?;
        if total != self.capacity() {
            return corrupt(0, "blocks do not tile the block area");
        }
        for k in 0..NUM_ORDERS {
            // Relaxed (all list loads): under the guard.
            let mut link = self.word(self.head(k)).load(Ordering::Relaxed);
            if k > self.top_order() && link != 0 {
                return corrupt(self.head(k), "a list above the top order is not empty");
            }
            let mut prev = 0;
            let mut steps = 0u64;
            while link != 0 {
                let block = self.linked_block(link, k)?;
                let Some(entry) = free.get_mut(&block) else {
                    return corrupt(block, "free list holds a block that is not free");
                };
                if entry.0 != k {
                    return corrupt(block, "free list holds a block of another order");
                }
                if entry.1 {
                    return corrupt(block, "block listed twice (cycle)");
                }
                entry.1 = true;
                if self.word(block + 16).load(Ordering::Relaxed) != prev {
                    return corrupt(
                        block,
                        "free block's back link does not name its predecessor",
                    );
                }
                steps += 1;
                if steps > stats.free_blocks {
                    return corrupt(block, "free list longer than the free blocks");
                }
                prev = link;
                link = self.word(block + 8).load(Ordering::Relaxed);
            }
        }
        for (&p, &(k, listed)) in &free {
            if !listed {
                return corrupt(p, "free block on no list");
            }
            let top = self.top_of(p).map_or(0, |(_, top)| top);
            let buddy = FIRST_BLOCK + ((p - FIRST_BLOCK) ^ order_size(k));
            if k < top && free.get(&buddy).is_some_and(|&(bk, _)| bk == k) {
                return corrupt(p, "two free buddies left unmerged");
            }
        }
        // Relaxed: a statistic; marks stored without the guard only add to it first.
        if self.word(HELD_NOW_AT).load(Ordering::Relaxed) < stats.marked_blocks {
            return corrupt(HELD_NOW_AT, "held count below the blocks marked held");
        }
        g.commit();
        Ok(stats)
    }
}

#[cfg(mproc_loom)]
pub mod model {
    //! The loom arm (`--cfg mproc_loom` only): the arena's algorithm over loom's model memory.
    //!
    //! [`ModelArena`] runs exactly the code [`Arena`](super::Arena) runs (the shared `Heap`),
    //! over words that are loom atomics built with `new()` instead of std atomics overlaid on
    //! a segment. There are no user bytes: it hands out offsets, which a model may compare and
    //! free but not resolve. Each call names its caller's participant id; [`ModelArena::kill`]
    //! marks one dead (what the guard's liveness question then answers), and [`die_after`]
    //! makes the current thread's next call stop right after a chosen journaled store, as a
    //! SIGKILL there would. The algorithm notes the branches it takes ([`take_events`]), so a
    //! model can assert that the interleavings it wants were reached. `tests/loom_arena.rs`
    //! holds the models.
    use super::{ArenaError, ArenaStats, Caller, FIRST_BLOCK, Heap, MIN_ARENA_LEN, UNIT};
    use super::{DIED, HOLDER_QUEUED, event};
    use crate::offset::Offset;
    use crate::sync::{ModelAtomicU64, Ordering};
    use crate::words::ModelWords;

    /// Noted when a caller finds the guard held and waits (offset: the guard word seen).
    pub const GUARD_WAIT: &str = event::GUARD_WAIT;
    /// Noted when a caller takes the guard over from a dead owner.
    pub const GUARD_TAKEOVER: &str = event::GUARD_TAKEOVER;
    /// Noted when a caller rolls back a dead owner's journal (offset: entries undone).
    pub const ROLLBACK: &str = event::ROLLBACK;
    /// Noted when a free merges its block with its buddy (offset: the buddy).
    pub const MERGE: &str = event::MERGE;

    /// Offset of the block area (a block allocated at its start has this offset plus 16).
    pub const FIRST_BLOCK_OFFSET: u64 = FIRST_BLOCK;

    /// The participant id of the calls that name none (`alloc`, `free`, `check`): like the
    /// threads of one process, every caller shares it, and it is never dead.
    pub const SHARED: u32 = 60;

    /// Whether `e` is the error a call returns when its injected death ([`die_after`])
    /// struck.
    pub fn is_death(e: &ArenaError) -> bool {
        *e == DIED
    }

    /// The current loom thread's next arena call stops right after its `stores + 1`-th
    /// journaled store, leaving the guard held and the journal as they are (its call returns
    /// an error for which [`is_death`] is true). Pair it with [`ModelArena::kill`].
    pub fn die_after(stores: u32) {
        crate::words::die_after(stores);
    }

    /// An arena over loom model memory. Build it inside `loom::model`.
    #[derive(Debug)]
    pub struct ModelArena {
        heap: Heap<ModelWords>,
        /// Bit `id` set: participant `id` (below 64) is dead.
        dead: ModelAtomicU64,
    }

    impl ModelArena {
        /// A fresh arena of `len` bytes whose handed-out offsets are arena-relative (base 0),
        /// set up as [`Arena::init_raw`](super::Arena::init_raw) sets up zeroed bytes. Keep
        /// `len` small: every word of it is a loom atomic.
        ///
        /// # Errors
        ///
        /// [`ArenaError::InvalidRange`] if `len` is below [`super::MIN_ARENA_LEN`].
        pub fn new(len: u64) -> Result<ModelArena, ArenaError> {
            if len < MIN_ARENA_LEN {
                return Err(ArenaError::InvalidRange {
                    reason: "too small",
                });
            }
            let len = len - len % UNIT;
            let heap = Heap {
                mem: ModelWords::new(len),
                len,
                base_offset: 0,
                units: (len - FIRST_BLOCK) / UNIT,
            };
            // (The header's magic, version and length are not read by the algorithm.)
            heap.format();
            Ok(ModelArena {
                heap,
                dead: ModelAtomicU64::new(0),
            })
        }

        /// Marks participant `id` (below 64) dead: a caller waiting for a guard it owns
        /// takes it over.
        pub fn kill(&self, id: u32) {
            // SeqCst: the liveness answer; models are small, the strongest order is fine.
            self.dead.fetch_or(1 << id, Ordering::SeqCst);
        }

        fn run<R>(&self, me: u32, f: impl FnOnce(&Caller<'_>) -> R) -> R {
            // SeqCst: as in `kill`.
            let alive = |id: u32| id >= 64 || self.dead.load(Ordering::SeqCst) & (1 << id) == 0;
            f(&Caller { me, alive: &alive })
        }

        /// As [`Arena::alloc`](super::Arena::alloc), by participant [`SHARED`].
        ///
        /// # Errors
        ///
        /// As [`Arena::alloc`](super::Arena::alloc).
        pub fn alloc(&self, size: usize, align: usize) -> Result<Offset<u8>, ArenaError> {
            self.alloc_as(SHARED, size, align)
        }

        /// As [`Arena::alloc`](super::Arena::alloc), by participant `me` (below 64).
        ///
        /// # Errors
        ///
        /// As [`Arena::alloc`](super::Arena::alloc).
        pub fn alloc_as(
            &self,
            me: u32,
            size: usize,
            align: usize,
        ) -> Result<Offset<u8>, ArenaError> {
            self.run(me, |c| self.heap.alloc_with(c, size, align, 0))
        }

        /// As [`Arena::free`](super::Arena::free), by participant [`SHARED`].
        ///
        /// # Errors
        ///
        /// As [`Arena::free`](super::Arena::free).
        pub fn free(&self, offset: Offset<u8>) -> Result<(), ArenaError> {
            self.free_as(SHARED, offset)
        }

        /// As [`Arena::free`](super::Arena::free), by participant `me` (below 64).
        ///
        /// # Errors
        ///
        /// As [`Arena::free`](super::Arena::free).
        pub fn free_as(&self, me: u32, offset: Offset<u8>) -> Result<(), ArenaError> {
            self.run(me, |c| self.heap.free(c, offset))
        }

        /// As [`Arena::alloc_marked`](super::Arena::alloc_marked), by participant `writer`.
        ///
        /// # Errors
        ///
        /// As [`Arena::alloc`](super::Arena::alloc).
        pub fn alloc_marked(
            &self,
            size: usize,
            align: usize,
            writer: u32,
        ) -> Result<Offset<u8>, ArenaError> {
            self.run(writer, |c| self.heap.alloc_marked(c, size, align, writer))
        }

        /// As [`Arena::mark_queued`](super::Arena::mark_queued).
        ///
        /// # Errors
        ///
        /// As [`Arena::mark_queued`](super::Arena::mark_queued).
        pub fn mark_queued(&self, offset: Offset<u8>, stamp: u32) -> Result<(), ArenaError> {
            self.heap.mark(offset, HOLDER_QUEUED, stamp)
        }

        /// As [`Arena::reclaim_queued`](super::Arena::reclaim_queued), by participant `me`.
        ///
        /// # Errors
        ///
        /// As [`Arena::reclaim_queued`](super::Arena::reclaim_queued).
        pub fn reclaim_queued(
            &self,
            offset: Offset<u8>,
            stamp: u32,
            me: u32,
        ) -> Result<bool, ArenaError> {
            self.run(me, |c| self.heap.reclaim_queued(c, offset, stamp))
        }

        /// As [`Arena::hold`](super::Arena::hold).
        ///
        /// # Errors
        ///
        /// As [`Arena::hold`](super::Arena::hold).
        pub fn hold(&self, offset: Offset<u8>, holder: u32) -> Result<(), ArenaError> {
            self.heap.mark(offset, super::HOLDER_HELD, holder)
        }

        /// As [`Arena::reclaim_dead`](super::Arena::reclaim_dead), by participant `me`: the
        /// walk asks `alive` about holders; the guard asks the model's liveness
        /// ([`ModelArena::kill`]) about its owner.
        ///
        /// # Errors
        ///
        /// As [`Arena::reclaim_dead`](super::Arena::reclaim_dead).
        pub fn reclaim_dead(
            &self,
            alive: impl Fn(u32) -> bool,
            me: u32,
        ) -> Result<u64, ArenaError> {
            self.run(me, |c| self.heap.reclaim_dead(c, &alive, me))
        }

        /// As [`Arena::held_reclaimed`](super::Arena::held_reclaimed).
        pub fn held_reclaimed(&self) -> u64 {
            // Relaxed: a statistic read after the model's threads joined.
            self.heap
                .word(super::HELD_RECLAIMED_AT)
                .load(Ordering::Relaxed)
        }

        /// As [`Arena::check`](super::Arena::check), by participant [`SHARED`] (it takes the
        /// guard, so it rolls back a dead owner's call first).
        ///
        /// # Errors
        ///
        /// As [`Arena::check`](super::Arena::check).
        pub fn check(&self) -> Result<ArenaStats, ArenaError> {
            self.run(SHARED, |c| self.heap.check(c))
        }

        /// As [`Arena::max_alloc`](super::Arena::max_alloc).
        pub fn max_alloc(&self) -> usize {
            self.heap.max_alloc()
        }
    }

    /// The events (`GUARD_WAIT`, ...) the current loom thread's arena calls noted since the
    /// last call, oldest first, each with its offset or value.
    pub fn take_events() -> Vec<(&'static str, u64)> {
        crate::words::take_events()
    }
}
