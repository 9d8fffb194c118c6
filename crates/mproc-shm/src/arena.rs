//! `Arena`: a lock-free shared-heap allocator inside a byte range of a segment, usable from
//! any thread of any attached process at once.
//!
//! Algorithm: segregated power-of-two size classes (64 B, 128 B, ... up to the arena), each
//! a Treiber stack (R. K. Treiber, *Systems Programming: Coping with Parallelism*, IBM
//! 1986) whose 64-bit head packs a 32-bit ABA tag with a 32-bit block index, plus a
//! lock-free bump pointer that carves fresh blocks from the untouched end.
//!
//! # Layout (all offsets relative to the arena start, which is 128-byte aligned)
//!
//! ```text
//!      0  arena header: magic, version, class count, length       (64 B)
//!     64  bump: offset of the first never-carved byte             (64 B, own cache line)
//!    128  heads[32]: free-list heads, one cache line each        (2048 B)
//!   2176  blocks, carved in order; block size = 64 << class, blocks are 64-aligned
//! ```
//!
//! Each block starts with a 16-byte header: a `tag` word and a `next` word (the free-list
//! link, only meaningful while the block is free). The user's bytes start 16 bytes in, or
//! further for alignments above 16, in which case a second tag sits just before them and
//! points back at the block. Free-list links live in the block header, never in user bytes.
//!
//! Tag word (state table):
//!
//! | bits   | field |
//! |--------|-------|
//! | 63..48 | `0xB10C` (marks a block tag) |
//! | 47..40 | state: 1 allocated, 2 allocated with shifted data, 3 free, 4 shift mark (in front of shifted data), 5 retired shift mark |
//! | 39..32 | size class |
//! | 31..0  | block index (block offset / 64) |
//!
//! # Crash safety
//!
//! Every step that changes shared state is one CAS, and each CAS is a commit point:
//!
//! * carving: the CAS of the block's (zero) tag to "allocated" claims the block; moving the
//!   bump pointer past it is then done by the carver *or by anyone who finds the claimed
//!   tag at the bump position* (helping). A carver killed between the two loses its block,
//!   nobody waits.
//! * pop: the CAS of the head claims the block, then its tag is checked (free) and set to
//!   allocated. Killed in between: that block is leaked.
//! * free: the CAS of the tag from allocated to free (it also catches double frees), then a
//!   push. Killed in between: that block is leaked (it shows in
//!   [`ArenaStats::unlisted_free_blocks`]).
//!
//! A link read from a block that another thread popped meanwhile may be garbage, but then
//! the head CAS fails (the tag changed); every index read from shared memory is bounds
//! checked before use. A hostile or corrupt peer can make calls fail with
//! [`ArenaError::Corrupt`] or leak blocks; it cannot make this process read or write outside
//! the arena.
//!
//! # Held blocks: a holder that dies
//!
//! A block handed to a process that keeps it outside any other structure (the queue's
//! zero-copy `get_ref` guard, after its slot is released) can be marked *held* by that
//! participant ([`Arena::hold`]): while a block is allocated, its second header word (the
//! free-list link while it is free) then holds `HELD(id)`. [`Arena::reclaim_dead`] walks the
//! carved blocks and frees every block held by a dead participant, counting it
//! ([`Arena::held_reclaimed`]): one CAS of the holder word from `HELD(dead)` to
//! `RECLAIMING(me)` elects the reclaimer, which frees the block as [`Arena::free`] does and
//! then counts it. A reclaimer that dies after its CAS leaves `RECLAIMING(dead)`, which the
//! next walk frees without counting (an uncounted loss, never a count of a block that was
//! not reclaimed); a holder killed inside its own `free` leaves a free block, which the walk
//! skips. The holder's own `free` overwrites the word with a
//! link as usual. Marking is a plain store by the one process that owns the block: a process
//! killed between receiving the block and marking it leaks it, uncounted (its caller's
//! documented window). A header count of blocks marked held lets the walk be skipped when
//! none can be.
//!
//! The same word carries a block's hand-off from a producer to a queue slot, so that a
//! producer killed mid-`put` leaks nothing: [`Arena::alloc_marked`] allocates it as
//! `WRITING(producer)`; inside its slot claim, after writing the slot's descriptor, the
//! producer marks it `QUEUED(stamp)` with the slot's stamp ([`Arena::mark_queued`]) and then
//! commits the slot. So a `WRITING(dead)` block was never committed, and the walk frees it
//! (uncounted: nothing was in the queue); a `QUEUED(stamp)` block whose producer died before
//! committing is named by that dead claim's payload, which the ring shows its recoverer before
//! tombstoning the slot, and [`Arena::reclaim_queued`] frees it only if its word is still
//! exactly `QUEUED(stamp)` (a half-written descriptor naming another block cannot match:
//! stamps are unique among live claims). A committed block stays `QUEUED` until its consumer
//! frees it or marks it held; the walk never touches a `QUEUED` block.
//!
//! # Fragmentation
//!
//! Requests are rounded up to a power of two including the 16-byte header (so up to about
//! half of a block can be slack). Blocks never split or coalesce: memory once carved for a
//! class stays in that class. A workload whose sizes drift can therefore run out of memory
//! while free blocks of other classes exist; size the arena for the peak of each class, or
//! keep messages in a few sizes. In exchange every alloc and free is O(1) and lock-free.
//!
//! # Verification
//!
//! The algorithm is written over a word abstraction (`Words`, in the crate-private `words`
//! module): [`Arena`] overlays std atomics on the arena's bytes, and under `--cfg
//! mproc_loom` `model::ModelArena` runs the same code on loom atomics built with `new()`.
//! `tests/loom_arena.rs` model-checks the ABA case (a stale pop whose block was popped and
//! freed meanwhile), a pop racing a push, and two carvers helping each other; the
//! multi-process, property and crash tests in `tests/arena.rs` cover the rest.
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
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::words::{InPlace, Word, Words};

const ARENA_MAGIC: u64 = u64::from_le_bytes(*b"MPROCARN");
const ARENA_VERSION: u32 = 2;
/// Offset of the header's count of held blocks reclaimed from dead holders.
const HELD_RECLAIMED_AT: u64 = 24;
/// Offset of the header's count of blocks marked held (an over-count; see `hold`).
const HELD_NOW_AT: u64 = 32;
/// Offset of the header's count of blocks the reclaim walk freed (counted or not).
const WALK_FREED_AT: u64 = 40;
/// The high 16 bits of a holder word (an allocated block's second header word while a
/// holder is recorded in it; never a free-list link, whose high 32 bits are zero).
const HOLDER_MAGIC: u64 = 0x4D48;
/// Holder word state: held by the participant in the low 32 bits.
const HOLDER_HELD: u64 = 1;
/// Holder word state: being reclaimed by the participant in the low 32 bits.
const HOLDER_RECLAIMING: u64 = 2;
/// Holder word state: being filled by the participant in the low 32 bits, not handed on yet.
const HOLDER_WRITING: u64 = 3;
/// Holder word state: handed to the slot whose stamp is in the low 32 bits.
const HOLDER_QUEUED: u64 = 4;

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
const NUM_CLASSES: usize = 32;
const BLOCK_HEADER: u64 = 16;
/// Offset of the bump pointer.
const BUMP_AT: u64 = 64;
/// Offset of the first free-list head; head `c` is at `HEADS_AT + 64 * c`.
const HEADS_AT: u64 = 128;
/// Offset of the first block.
const FIRST_BLOCK: u64 = HEADS_AT + NUM_CLASSES as u64 * 64;
/// Largest supported alignment of an allocation.
pub const MAX_ALIGN: usize = 4096;
/// Required alignment of the arena's start.
pub const ARENA_ALIGN: u64 = 128;
/// Smallest arena: its header plus one 64-byte block.
pub const MIN_ARENA_LEN: u64 = FIRST_BLOCK + UNIT;
/// Largest arena (block indexes are 32-bit, one value is reserved).
pub const MAX_ARENA_LEN: u64 = (u32::MAX as u64 - 1) * UNIT;

const TAG_MAGIC: u64 = 0xB10C;
const ST_ALLOC: u8 = 1;
const ST_ALLOC_SHIFTED: u8 = 2;
const ST_FREE: u8 = 3;
const ST_SHIFT_MARK: u8 = 4;
const ST_SHIFT_FREED: u8 = 5;

fn make_tag(state: u8, class: u32, unit: u32) -> u64 {
    (TAG_MAGIC << 48) | (u64::from(state) << 40) | (u64::from(class & 0xff) << 32) | u64::from(unit)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    state: u8,
    class: u32,
    unit: u32,
}

/// An allocation resolved from its offset (see `Heap::resolve`).
#[derive(Debug, Clone, Copy)]
struct Resolved {
    /// The offset as given (for errors).
    off: u64,
    /// Arena-relative offset of the block.
    block: u64,
    /// The tag the block has while allocated with this shape.
    expected: u64,
    /// Where the shift mark sits, for shifted data.
    mark: Option<u64>,
    class: u32,
    unit: u32,
}

fn parse_tag(t: u64) -> Option<Tag> {
    if t >> 48 != TAG_MAGIC {
        return None;
    }
    Some(Tag {
        state: (t >> 40) as u8,
        class: ((t >> 32) & 0xff) as u32,
        unit: t as u32,
    })
}

fn class_size(class: u32) -> u64 {
    UNIT << class
}

/// Why an arena operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArenaError {
    /// No free block of the needed class and no room left to carve one.
    #[error("arena out of memory: no room for {size} bytes aligned to {align}")]
    OutOfMemory {
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

/// What [`Arena::usage`] saw: a snapshot of the blocks, safe to take at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaUsage {
    /// Bytes available for blocks (arena length minus its header).
    pub capacity: u64,
    /// Blocks allocated (including any leaked by a crashed process).
    pub allocated_blocks: u64,
    /// Their total size (rounded class sizes, headers included).
    pub allocated_bytes: u64,
    /// Blocks free for reuse by their size class.
    pub free_blocks: u64,
    /// Their total size.
    pub free_bytes: u64,
    /// Allocated blocks by holder word (see the module docs, "Held blocks"): `[unmarked,
    /// WRITING, QUEUED, HELD, RECLAIMING]`. After every process that used the arena has
    /// gone and a recovery pass ran, a block left here shows where it leaked.
    pub allocated_by_mark: [u64; 5],
    /// The largest allocation (`alloc(size, 16)`) that would succeed now: from a free block
    /// or from the never-carved rest. Blocks do not split or coalesce (see the module docs),
    /// so this can be far below `free_bytes`.
    pub largest_alloc_now: u64,
}

/// What [`Arena::check`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Bytes available for blocks (arena length minus its header).
    pub capacity: u64,
    /// Bytes carved into blocks so far.
    pub carved: u64,
    /// Blocks currently allocated (including any leaked by a crashed process).
    pub allocated_blocks: u64,
    /// Total size of those blocks (rounded class sizes, headers included).
    pub allocated_bytes: u64,
    /// Blocks on the free lists.
    pub free_blocks: u64,
    /// Total size of those blocks.
    pub free_bytes: u64,
    /// Blocks marked free but on no list: a process died between the two steps of `free`.
    /// Always 0 unless a process crashed inside `free`.
    pub unlisted_free_blocks: u64,
}

#[repr(C)]
struct ArenaHeader {
    magic: AtomicU64,
    version: AtomicU32,
    num_classes: AtomicU32,
    len: AtomicU64,
    /// Held blocks freed because their holder died (see [`Arena::reclaim_dead`]).
    held_reclaimed: AtomicU64,
    /// Blocks marked held and not yet freed (an over-count: it only gates the reclaim walk).
    held_now: AtomicU64,
    /// Blocks the reclaim walk freed, counted or not (see [`Arena::walk_freed`]).
    walk_freed: AtomicU64,
    _pad0: [AtomicU64; 2],
    bump: AtomicU64,
    _pad1: [AtomicU64; 7],
    heads: [Head; NUM_CLASSES],
}

#[repr(C, align(64))]
struct Head {
    /// `(aba_tag << 32) | (block_index + 1)`; low half 0 = empty list.
    word: AtomicU64,
    _pad: [AtomicU64; 7],
}

const _: () = assert!(size_of::<ArenaHeader>() as u64 == FIRST_BLOCK);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, bump) as u64 == BUMP_AT);
const _: () =
    assert!(core::mem::offset_of!(ArenaHeader, held_reclaimed) as u64 == HELD_RECLAIMED_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, held_now) as u64 == HELD_NOW_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, walk_freed) as u64 == WALK_FREED_AT);
const _: () = assert!(core::mem::offset_of!(ArenaHeader, heads) as u64 == HEADS_AT);
const _: () = assert!(size_of::<Head>() == 64 && core::mem::offset_of!(Head, word) == 0);
const _: () = assert!(FIRST_BLOCK.is_multiple_of(UNIT));

/// A handle to an arena. See the [module docs](self) for the algorithm and guarantees.
///
/// Offsets handed out are [`Offset<u8>`]s relative to the *segment* base (for an arena made
/// with [`Arena::init`]) or to `base_offset` (for [`Arena::init_raw`]), so they can be
/// stored in shared memory and resolved by any process.
pub struct Arena {
    /// The words overlay the arena's bytes, which outlive the handle (kept alive by
    /// `_owner`, or guaranteed by the caller of `init_raw`/`attach_raw`).
    heap: Heap<InPlace>,
    _owner: Option<Arc<Segment>>,
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
            .field("classes", &self.heap.num_classes)
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
    num_classes: u32,
}

/// What [`Heap`] notes through [`Words::note`] (recorded only by model memory).
mod event {
    /// A pop's head CAS failed (the head moved since it was read); it retries.
    pub(super) const POP_RETRY: &str = "pop: head CAS failed, retry";
    /// A push's head CAS failed; it retries.
    pub(super) const PUSH_RETRY: &str = "push: head CAS failed, retry";
    /// A carver lost the tag CAS at the bump position to another carver; it helps, retries.
    pub(super) const CARVE_LOST: &str = "carve: block claimed by another, help and retry";
    /// A carver found its own bump CAS already done by a helper.
    pub(super) const CARVE_HELPED: &str = "carve: bump pointer moved by a helper";
}

fn classes_for(len: u64) -> u32 {
    let cap = len - FIRST_BLOCK;
    let mut n = 0;
    while (n as usize) < NUM_CLASSES && class_size(n) <= cap {
        n += 1;
    }
    n
}

fn check_range(mem: NonNull<u8>, len: u64) -> Result<u64, ArenaError> {
    if !(mem.as_ptr() as usize as u64).is_multiple_of(ARENA_ALIGN) {
        return Err(ArenaError::InvalidRange {
            reason: "the start must be 128-byte aligned",
        });
    }
    if len < MIN_ARENA_LEN {
        return Err(ArenaError::InvalidRange {
            reason: "too small (at least 2240 bytes)",
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
    /// `segment`'s user region. The range must be 128-byte aligned, and still zero-filled as
    /// a fresh segment is (the carving protocol relies on untouched bytes being zero). The
    /// arena keeps the segment alive.
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
        arena._owner = Some(segment);
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
        arena._owner = Some(segment);
        Ok(arena)
    }

    /// Initialises an arena over caller-provided memory (a heap buffer, or any mapping).
    /// Offsets handed out are `base_offset + ` the position inside `mem`.
    ///
    /// # Safety
    ///
    /// * `mem..mem + len` must be valid for reads and writes, and stay so as long as this
    ///   arena and every arena attached to it are used;
    /// * the bytes must be zero-filled;
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
        if h.magic.load(Ordering::Relaxed) != 0 || h.bump.load(Ordering::Relaxed) != 0 {
            return Err(ArenaError::Corrupt {
                offset: 0,
                reason: "range is not zeroed",
            });
        }
        // Relaxed: published by the Release store of `magic`.
        h.version.store(ARENA_VERSION, Ordering::Relaxed);
        h.num_classes
            .store(arena.heap.num_classes, Ordering::Relaxed);
        h.len.store(len, Ordering::Relaxed);
        h.bump.store(FIRST_BLOCK, Ordering::Relaxed);
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
        if h.num_classes.load(Ordering::Relaxed) != arena.heap.num_classes {
            return Err(ArenaError::NotAnArena {
                reason: "class count differs",
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
                num_classes: classes_for(len),
            },
            _owner: None,
        }
    }

    /// The header, for `init_raw`/`attach_raw` (the algorithm reaches the bump pointer and
    /// the list heads as words, see [`Heap::bump`]).
    fn header(&self) -> &ArenaHeader {
        // SAFETY: `len >= MIN_ARENA_LEN > size_of::<ArenaHeader>()`, the base is 128-aligned
        // (checked in `check_range`) and valid while `self` lives; the header is atomics
        // only, valid for any bytes.
        unsafe { self.heap.mem.base().cast::<ArenaHeader>().as_ref() }
    }

    /// Bytes usable for blocks.
    pub fn capacity(&self) -> u64 {
        self.heap.capacity()
    }

    /// Bytes carved into blocks so far (a cheap snapshot; blocks are never un-carved).
    pub fn carved(&self) -> u64 {
        self.heap.carved()
    }

    /// Largest size `alloc(size, 16)` can ever satisfy in this arena.
    pub fn max_alloc(&self) -> usize {
        self.heap.max_alloc()
    }

    /// Allocates `size` bytes aligned to `align` (a power of two, at most 4096) and returns
    /// their offset. The bytes are not zeroed. A zero-size request is served as one byte.
    ///
    /// # Errors
    ///
    /// [`ArenaError::InvalidLayout`], [`ArenaError::OutOfMemory`], [`ArenaError::Corrupt`].
    #[inline]
    pub fn alloc(&self, size: usize, align: usize) -> Result<Offset<u8>, ArenaError> {
        self.heap.alloc(size, align)
    }

    /// Frees the block at `offset` (as returned by [`alloc`](Arena::alloc), by any process).
    ///
    /// # Errors
    ///
    /// [`ArenaError::DoubleFree`]; [`ArenaError::BadOffset`] if `offset` is not the start
    /// of an allocated block; [`ArenaError::Corrupt`]. Nothing is changed on error.
    /// Freeing a *stale* offset whose block was freed and allocated again with the same
    /// shape cannot be told apart from a correct free (as with any allocator).
    #[inline]
    pub fn free(&self, offset: Offset<u8>) -> Result<(), ArenaError> {
        self.heap.free(offset)
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
        self.heap.alloc_marked(size, align, writer)
    }

    /// Hands the block at `offset` (allocated with [`Arena::alloc_marked`] by this process)
    /// to the queue slot of stamp `stamp`: call it inside the slot claim, after writing the
    /// slot's reference to the block, before committing.
    ///
    /// # Errors
    ///
    /// As [`Arena::free`], for an `offset` that is not an allocated block.
    pub fn mark_queued(&self, offset: Offset<u8>, stamp: u32) -> Result<(), ArenaError> {
        self.heap.mark(offset, HOLDER_QUEUED, stamp)
    }

    /// Frees the block at `offset` if it is still exactly `QUEUED(stamp)`: a dead producer's
    /// claim of the slot of stamp `stamp` named it (see the module docs). `me` elects the
    /// freer among racing recoverers. `Ok(true)` if this call freed it; `Ok(false)` for an
    /// offset that names no such block (a half-written descriptor, or one already freed).
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] only; a bad `offset` is `Ok(false)` (it is untrusted input).
    pub fn reclaim_queued(
        &self,
        offset: Offset<u8>,
        stamp: u32,
        me: u32,
    ) -> Result<bool, ArenaError> {
        self.heap.reclaim_queued(offset, stamp, me)
    }

    /// Marks the allocated block at `offset` as held by participant `holder` (see the module
    /// docs, "Held blocks"): if `holder` dies before freeing it, [`Arena::reclaim_dead`]
    /// frees it and counts it. Only the process that owns the block may call it.
    ///
    /// # Errors
    ///
    /// As [`Arena::free`], for an `offset` that is not an allocated block; nothing changes.
    pub fn hold(&self, offset: Offset<u8>, holder: u32) -> Result<(), ArenaError> {
        self.heap.hold(offset, holder)
    }

    /// Frees every block held ([`Arena::hold`]) or being written ([`Arena::alloc_marked`])
    /// by a participant that `alive` says is dead, electing this participant (`me`) with one
    /// CAS per block; returns how many it counted (blocks it took from `HELD(dead)`; a
    /// `WRITING` block was never an item). A walk over the carved blocks, skipped when no
    /// block is marked held: run it now and then (a caller waiting for room), not per
    /// operation.
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] if the walk meets a block header no valid execution writes.
    pub fn reclaim_dead(&self, alive: impl Fn(u32) -> bool, me: u32) -> Result<u64, ArenaError> {
        self.heap.reclaim_dead(alive, me)
    }

    /// Blocks [`Arena::reclaim_dead`] has freed so far, by any process, whether counted as
    /// held or not (a dead producer's `WRITING` block is not): a caller that sees it move
    /// wakes whoever waits for room.
    pub fn walk_freed(&self) -> u64 {
        // Relaxed: a statistic, only compared before and after a walk.
        self.heap.mem.word(WALK_FREED_AT).load(Ordering::Relaxed)
    }

    /// Held blocks freed so far because their holder died (by any process).
    pub fn held_reclaimed(&self) -> u64 {
        // Relaxed: a statistic.
        self.heap
            .mem
            .word(HELD_RECLAIMED_AT)
            .load(Ordering::Relaxed)
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

    /// A snapshot of the arena's blocks (one walk over the carved blocks' tags, no free-list
    /// walk), safe while other processes allocate and free: each block is seen in one state
    /// or another, so the figures are a consistent-enough picture for sizing, not an audit
    /// (that is [`Arena::check`]).
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] if the walk meets a block header no valid execution writes.
    pub fn usage(&self) -> Result<ArenaUsage, ArenaError> {
        self.heap.usage()
    }

    /// Walks every block and every free list and checks that they agree. Run it while no
    /// other thread or process allocates or frees (a test's quiescent point); concurrent
    /// use may make it report errors, never undefined behaviour.
    ///
    /// # Errors
    ///
    /// [`ArenaError::Corrupt`] naming the first inconsistency.
    pub fn check(&self) -> Result<ArenaStats, ArenaError> {
        self.heap.check()
    }
}

impl<M: Words> Heap<M> {
    /// The 64-bit word at arena-relative `rel` (bounds asserted by `M` as a backstop).
    #[inline(always)]
    fn word(&self, rel: u64) -> &M::Word {
        self.mem.word(rel)
    }

    /// The bump pointer (the header's `bump`).
    #[inline(always)]
    fn bump(&self) -> &M::Word {
        self.mem.word(BUMP_AT)
    }

    /// The free-list head of `class` (the header's `heads[class].word`).
    #[inline(always)]
    fn head(&self, class: u32) -> &M::Word {
        debug_assert!(class < self.num_classes);
        self.mem.word(HEADS_AT + u64::from(class) * 64)
    }

    fn capacity(&self) -> u64 {
        self.len - FIRST_BLOCK
    }

    fn carved(&self) -> u64 {
        // Relaxed: a statistic.
        self.bump()
            .load(Ordering::Relaxed)
            .clamp(FIRST_BLOCK, self.len)
            - FIRST_BLOCK
    }

    fn max_alloc(&self) -> usize {
        (class_size(self.num_classes.saturating_sub(1)) - BLOCK_HEADER) as usize
    }

    fn class_for(&self, size: usize, align: usize) -> Option<u32> {
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
        let class = 64 - (need - 1).leading_zeros() - 6;
        (class < self.num_classes).then_some(class)
    }

    /// [`Arena::alloc`].
    fn alloc(&self, size: usize, align: usize) -> Result<Offset<u8>, ArenaError> {
        self.alloc_with(size, align, 0)
    }

    /// [`Arena::alloc`], writing `mark` (a holder word, or 0 for none) into the block's
    /// holder word the moment the block becomes ours, before its tag says allocated (pop) or
    /// right after the carving CAS (carve): a process killed later leaves a marked block.
    fn alloc_with(&self, size: usize, align: usize, mark: u64) -> Result<Offset<u8>, ArenaError> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(ArenaError::InvalidLayout { size, align });
        }
        let class = self
            .class_for(size, align)
            .ok_or(ArenaError::OutOfMemory { size, align })?;
        let block = match self.pop(class, mark)? {
            Some(b) => b,
            None => self
                .carve(class, mark)?
                .ok_or(ArenaError::OutOfMemory { size, align })?,
        };
        // The block is ours: compute where the data goes.
        let block_addr = self.mem.addr() + block;
        let data_addr = (block_addr + BLOCK_HEADER).next_multiple_of(align.max(16) as u64);
        let data = data_addr - self.mem.addr();
        debug_assert!(data + size as u64 <= block + class_size(class));
        if data != block + BLOCK_HEADER {
            let unit = (block / UNIT) as u32;
            // Relaxed: the block is exclusively ours; the offset reaches other processes
            // through a channel with its own Release/Acquire, which carries these stores.
            self.word(data - BLOCK_HEADER)
                .store(make_tag(ST_SHIFT_MARK, class, unit), Ordering::Relaxed);
            self.word(block)
                .store(make_tag(ST_ALLOC_SHIFTED, class, unit), Ordering::Relaxed);
        }
        Ok(Offset::new(self.base_offset + data))
    }

    /// Pops a block of `class` from its free list.
    fn pop(&self, class: u32, mark: u64) -> Result<Option<u64>, ArenaError> {
        let head = self.head(class);
        loop {
            // SYNC POINT: Acquire pairs with the Release CAS in `push`: the link and the
            // free tag written before the push are visible.
            let h = head.load(Ordering::Acquire);
            let idx = h as u32;
            if idx == 0 {
                return Ok(None);
            }
            let block = u64::from(idx - 1) * UNIT;
            if block < FIRST_BLOCK || block + class_size(class) > self.len {
                return Err(ArenaError::Corrupt {
                    offset: block,
                    reason: "free-list link out of bounds",
                });
            }
            // Relaxed: ordered after the Acquire load of `h`. If another thread popped this
            // block meanwhile, `next` may be anything; the CAS below then fails (the ABA tag
            // moved on), and a bad value that does get installed is caught by the bounds
            // check above on the next pop.
            let next = self.word(block + 8).load(Ordering::Relaxed) as u32;
            let new = (((h >> 32) as u32).wrapping_add(1) as u64) << 32 | u64::from(next);
            // Acquire on success: we now own the block and read its tag.
            if head
                .compare_exchange_weak(h, new, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                let unit = idx - 1;
                let tag = self.word(block);
                // The head CAS made the block exclusively ours, so a check and a plain store
                // suffice (no second CAS). Relaxed: the Acquire CAS above ordered us after
                // the push that listed the block.
                if tag.load(Ordering::Relaxed) != make_tag(ST_FREE, class, unit) {
                    return Err(ArenaError::Corrupt {
                        offset: block,
                        reason: "block on a free list is not free",
                    });
                }
                if mark != 0 {
                    // Release: a reclaimer that reads the mark sees the block as ours. A
                    // process killed before this store leaves a free-tagged block on no list
                    // (`unlisted_free_blocks`), never an unmarked allocated one.
                    self.word(block + 8).store(mark, Ordering::Release);
                }
                // Relaxed: the offset reaches other processes through a channel with its
                // own Release/Acquire, which carries this store.
                tag.store(make_tag(ST_ALLOC, class, unit), Ordering::Relaxed);
                return Ok(Some(block));
            }
            self.mem.note(event::POP_RETRY, block);
        }
    }

    /// Carves a fresh block of `class` at the bump pointer (with helping; see module docs).
    fn carve(&self, class: u32, mark: u64) -> Result<Option<u64>, ArenaError> {
        let bump = self.bump();
        let size = class_size(class);
        loop {
            // Acquire pairs with the AcqRel CAS below (by any process): the tag of the
            // block before `b` is committed.
            let b = bump.load(Ordering::Acquire);
            if b < FIRST_BLOCK || !b.is_multiple_of(UNIT) || b > self.len {
                return Err(ArenaError::Corrupt {
                    offset: 0,
                    reason: "bump pointer out of range",
                });
            }
            if self.len - b < size {
                return Ok(None);
            }
            let tag = self.word(b);
            let unit = (b / UNIT) as u32;
            // AcqRel: the commit point of carving; pairs with the Acquire load in helpers.
            let cur = match tag.compare_exchange(
                0,
                make_tag(ST_ALLOC, class, unit),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if mark != 0 {
                        // Release: as in `pop`; the next instruction after the claim.
                        self.word(b + 8).store(mark, Ordering::Release);
                    }
                    // Move the bump pointer past our block, unless someone helped already.
                    // AcqRel: pairs with the Acquire load of `bump` above.
                    if bump
                        .compare_exchange(b, b + size, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        self.mem.note(event::CARVE_HELPED, b);
                    }
                    return Ok(Some(b));
                }
                Err(cur) => cur,
            };
            // Someone claimed the block at `b`: help move the bump pointer past it.
            self.mem.note(event::CARVE_LOST, b);
            let Some(t) = parse_tag(cur).filter(|t| t.unit == unit && t.class < self.num_classes)
            else {
                return Err(ArenaError::Corrupt {
                    offset: b,
                    reason: "garbage at the bump pointer",
                });
            };
            let their = class_size(t.class);
            if self.len - b < their {
                return Err(ArenaError::Corrupt {
                    offset: b,
                    reason: "block at the bump pointer overruns the arena",
                });
            }
            // AcqRel: pairs with the Acquire load of `bump` above. Failure: someone else moved it.
            let _ = bump.compare_exchange(b, b + their, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Resolves `offset` (handed out by `alloc`) to its allocated block: `(block, the tag
    /// the block must still have, the shift mark's position if shifted, the class and
    /// unit)`. Every value comes from shared memory and is checked.
    fn resolve(&self, offset: Offset<u8>) -> Result<Resolved, ArenaError> {
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
        // Acquire: pairs with the Release that handed us the offset, via the tags' stores.
        let front = self.word(data - BLOCK_HEADER).load(Ordering::Acquire);
        let Some(ft) = parse_tag(front) else {
            return bad("no block tag in front of it");
        };
        if ft.class >= self.num_classes {
            return bad("bad size class");
        }
        let (block, expected, mark) = match ft.state {
            ST_ALLOC | ST_FREE => {
                let block = data - BLOCK_HEADER;
                if u64::from(ft.unit) * UNIT != block {
                    return bad("tag does not match its position");
                }
                if ft.state == ST_FREE {
                    return Err(ArenaError::DoubleFree { offset: off });
                }
                (block, front, None)
            }
            ST_SHIFT_FREED => return Err(ArenaError::DoubleFree { offset: off }),
            ST_SHIFT_MARK => {
                let block = u64::from(ft.unit) * UNIT;
                let in_block = block >= FIRST_BLOCK
                    && block + 2 * BLOCK_HEADER <= data
                    && block
                        .checked_add(class_size(ft.class))
                        .is_some_and(|e| data < e && e <= self.len);
                if !in_block {
                    return bad("shift mark points outside its block");
                }
                (
                    block,
                    make_tag(ST_ALLOC_SHIFTED, ft.class, ft.unit),
                    Some(data - BLOCK_HEADER),
                )
            }
            _ => return bad("not the start of an allocation"),
        };
        Ok(Resolved {
            off,
            block,
            expected,
            mark,
            class: ft.class,
            unit: ft.unit,
        })
    }

    /// [`Arena::free`].
    fn free(&self, offset: Offset<u8>) -> Result<(), ArenaError> {
        let r = self.resolve(offset)?;
        self.free_resolved(&r)
    }

    fn free_resolved(&self, r: &Resolved) -> Result<(), ArenaError> {
        let free_tag = make_tag(ST_FREE, r.class, r.unit);
        // Acquire: the holder word as its last holder left it (a marked block, see `hold`).
        let was_held = parse_holder(self.word(r.block + 8).load(Ordering::Acquire)).is_some();
        // SYNC POINT (free): Release publishes the user's writes to the block to whoever
        // allocates it next (with the Release of `push`); Acquire orders it after the
        // checks. This CAS is the commit point and catches double frees.
        match self.word(r.block).compare_exchange(
            r.expected,
            free_tag,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(cur) if cur == free_tag => return Err(ArenaError::DoubleFree { offset: r.off }),
            Err(_) => {
                return Err(ArenaError::BadOffset {
                    offset: r.off,
                    reason: "its block is not allocated with this shape",
                });
            }
        }
        if was_held {
            self.add_to(HELD_NOW_AT, -1);
        }
        if let Some(mark) = r.mark {
            // Relaxed: retiring our own mark so a second free reports `DoubleFree` (until
            // the block is reused); published by the Release of `push`.
            self.word(mark)
                .store(make_tag(ST_SHIFT_FREED, r.class, r.unit), Ordering::Relaxed);
        }
        self.push(r.class, r.block);
        Ok(())
    }

    /// Adds `delta` to the header counter at `at`, saturating at 0 and `u64::MAX` (a CAS
    /// loop: the word abstraction has no fetch-add).
    fn add_to(&self, at: u64, delta: i64) {
        let w = self.mem.word(at);
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
    /// block, marked as it is claimed.
    fn alloc_marked(
        &self,
        size: usize,
        align: usize,
        writer: u32,
    ) -> Result<Offset<u8>, ArenaError> {
        self.add_to(HELD_NOW_AT, 1);
        self.alloc_with(size, align, holder_word(HOLDER_WRITING, writer))
            .inspect_err(|_| self.add_to(HELD_NOW_AT, -1))
    }

    /// [`Arena::hold`].
    fn hold(&self, offset: Offset<u8>, holder: u32) -> Result<(), ArenaError> {
        self.mark(offset, HOLDER_HELD, holder)
    }

    /// Writes the holder word `(state, value)` of the allocated block at `offset`, which this
    /// process owns. The count of marked blocks is raised first if the block was unmarked, so
    /// that a process killed between the two leaves an over-count (a needless walk), never a
    /// marked block the walk would skip.
    fn mark(&self, offset: Offset<u8>, state: u64, value: u32) -> Result<(), ArenaError> {
        let r = self.resolve(offset)?;
        let word = self.word(r.block + 8);
        // Relaxed: the block is ours; its previous mark was written by this process (or it
        // is a free-list link left behind).
        if parse_holder(word.load(Ordering::Relaxed)).is_none() {
            self.add_to(HELD_NOW_AT, 1);
        }
        // Release: a recoverer that reads the mark (Acquire) sees the block as we wrote it
        // (for `QUEUED`, the slot's descriptor was written before, inside the same claim).
        word.store(holder_word(state, value), Ordering::Release);
        Ok(())
    }

    /// [`Arena::reclaim_queued`].
    fn reclaim_queued(&self, offset: Offset<u8>, stamp: u32, me: u32) -> Result<bool, ArenaError> {
        let Ok(r) = self.resolve(offset) else {
            return Ok(false);
        };
        let want = holder_word(HOLDER_QUEUED, stamp);
        // AcqRel: the block as the dead producer left it is ours now; one CAS elects the
        // freer among racing recoverers.
        if self
            .word(r.block + 8)
            .compare_exchange(
                want,
                holder_word(HOLDER_RECLAIMING, me),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Ok(false);
        }
        match self.free_resolved(&r) {
            Ok(()) => Ok(true),
            Err(ArenaError::Corrupt { offset, reason }) => {
                Err(ArenaError::Corrupt { offset, reason })
            }
            // Freed meanwhile: only a peer that broke the protocol gets here.
            Err(_) => Ok(false),
        }
    }

    /// Walks the carved blocks below `bump` in address order, checking each block's tag
    /// (present, matching its position and a valid class, inside `bump`, a block-start
    /// state), and hands `f` each block's offset, tag and size. The one walk behind
    /// `check`, `usage` and `reclaim_dead`.
    fn for_each_block(
        &self,
        bump: u64,
        mut f: impl FnMut(u64, Tag, u64) -> Result<(), ArenaError>,
    ) -> Result<(), ArenaError> {
        let corrupt = |offset, reason| Err(ArenaError::Corrupt { offset, reason });
        let mut p = FIRST_BLOCK;
        while p < bump {
            // Acquire: pairs with the tag CASes (carve, pop, free).
            let Some(t) = parse_tag(self.word(p).load(Ordering::Acquire)) else {
                return corrupt(p, "no block tag");
            };
            if u64::from(t.unit) * UNIT != p || t.class >= self.num_classes {
                return corrupt(p, "tag does not match its position");
            }
            let size = class_size(t.class);
            if bump - p < size {
                return corrupt(p, "block overruns the bump pointer");
            }
            if !matches!(t.state, ST_ALLOC | ST_ALLOC_SHIFTED | ST_FREE) {
                return corrupt(p, "bad block state");
            }
            f(p, t, size)?;
            p += size;
        }
        Ok(())
    }

    /// [`Arena::usage`].
    fn usage(&self) -> Result<ArenaUsage, ArenaError> {
        // Acquire: pairs with the AcqRel CASes of `bump`: every block below it has its tag.
        let bump = self
            .bump()
            .load(Ordering::Acquire)
            .clamp(FIRST_BLOCK, self.len);
        let mut u = ArenaUsage {
            capacity: self.capacity(),
            ..ArenaUsage::default()
        };
        let mut largest_free_class = None;
        self.for_each_block(bump, |p, t, size| {
            if t.state == ST_FREE {
                u.free_blocks += 1;
                u.free_bytes += size;
                largest_free_class = largest_free_class.max(Some(t.class));
                return Ok(());
            }
            u.allocated_blocks += 1;
            u.allocated_bytes += size;
            // Acquire: pairs with the Release store of a mark.
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
        // The largest class the never-carved rest can still hold.
        let rest = self.len - bump;
        let carvable = (0..self.num_classes).rev().find(|&c| class_size(c) <= rest);
        u.largest_alloc_now = largest_free_class
            .max(carvable)
            .map_or(0, |c| class_size(c) - BLOCK_HEADER);
        Ok(u)
    }

    /// [`Arena::reclaim_dead`].
    fn reclaim_dead(&self, alive: impl Fn(u32) -> bool, me: u32) -> Result<u64, ArenaError> {
        // Relaxed: a gate; a mark stored after this load belongs to a live holder.
        if self.mem.word(HELD_NOW_AT).load(Ordering::Relaxed) == 0 {
            return Ok(0);
        }
        // Acquire: pairs with the AcqRel CASes of `bump`: every block below it has its tag.
        let bump = self.bump().load(Ordering::Acquire).min(self.len);
        let mut counted = 0;
        self.for_each_block(bump, |p, t, _| {
            if t.state != ST_FREE {
                counted += u64::from(self.reclaim_block(p, t, &alive, me)?);
            }
            Ok(())
        })?;
        Ok(counted)
    }

    /// Frees block `p` (tag `t`, allocated) if a dead participant holds it; `true` if this
    /// call took it from `HELD(dead)` (and counted it).
    fn reclaim_block(
        &self,
        p: u64,
        t: Tag,
        alive: &impl Fn(u32) -> bool,
        me: u32,
    ) -> Result<bool, ArenaError> {
        // Acquire: pairs with the Release store of the mark in `hold`.
        let w = self.word(p + 8).load(Ordering::Acquire);
        let Some((state, id)) = parse_holder(w) else {
            return Ok(false);
        };
        // `QUEUED` blocks belong to the queue (a committed slot names them, or the dead
        // producer's claim does, which `reclaim_queued` handles).
        if !matches!(state, HOLDER_HELD | HOLDER_RECLAIMING | HOLDER_WRITING)
            || id == me
            || alive(id)
        {
            return Ok(false);
        }
        // One CAS elects the reclaimer among racing walkers.
        // AcqRel: the block's contents as the dead holder left them are ours now.
        if self
            .word(p + 8)
            .compare_exchange(
                w,
                holder_word(HOLDER_RECLAIMING, me),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Ok(false);
        }
        // Only a held block was an item somebody had received; a `WRITING` one was never
        // committed, and a `RECLAIMING` one belongs to a reclaimer that died (see below).
        let counted = state == HOLDER_HELD;
        let data = match t.state {
            ST_ALLOC => p + BLOCK_HEADER,
            _ => self.shifted_data(p, t)?,
        };
        match self.free(Offset::new(self.base_offset + data)) {
            Ok(()) => {}
            // The holder was killed inside its own `free`, after the tag CAS and before the
            // push rewrote this word: the block is free (on no list: the allocator's own
            // documented leak), nothing is left to reclaim, and no item to count.
            Err(ArenaError::DoubleFree { .. } | ArenaError::BadOffset { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.add_to(WALK_FREED_AT, 1);
        // Counted once freed: a reclaimer killed between the two leaves an uncounted loss,
        // never a count of a block that was not reclaimed.
        if counted {
            self.add_to(HELD_RECLAIMED_AT, 1);
        }
        Ok(counted)
    }

    /// Where the data of shifted block `p` starts: just after its shift mark, which sits at
    /// most `MAX_ALIGN` bytes in.
    fn shifted_data(&self, p: u64, t: Tag) -> Result<u64, ArenaError> {
        let end = (p + class_size(t.class)).min(p + BLOCK_HEADER + MAX_ALIGN as u64);
        let mut q = p + BLOCK_HEADER;
        while q + BLOCK_HEADER < end {
            // Acquire: pairs with the Release that published the block's marks.
            let m = parse_tag(self.word(q).load(Ordering::Acquire));
            if m.is_some_and(|m| m.state == ST_SHIFT_MARK && m.unit == t.unit) {
                return Ok(q + BLOCK_HEADER);
            }
            q += BLOCK_HEADER;
        }
        Err(ArenaError::Corrupt {
            offset: p,
            reason: "shifted block without its shift mark",
        })
    }

    fn push(&self, class: u32, block: u64) {
        let head = self.head(class);
        let idx = (block / UNIT) as u32 + 1;
        // Relaxed: the value is only a CAS expectation.
        let mut h = head.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS below.
            self.word(block + 8)
                .store(u64::from(h as u32), Ordering::Relaxed);
            let new = (((h >> 32) as u32).wrapping_add(1) as u64) << 32 | u64::from(idx);
            // SYNC POINT: Release pairs with the Acquire load in `pop`.
            match head.compare_exchange_weak(h, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(cur) => h = cur,
            }
            self.mem.note(event::PUSH_RETRY, block);
        }
    }

    /// [`Arena::check`].
    fn check(&self) -> Result<ArenaStats, ArenaError> {
        let corrupt = |offset, reason| Err(ArenaError::Corrupt { offset, reason });
        // Acquire: pairs with the AcqRel CASes of `bump`.
        let bump = self.bump().load(Ordering::Acquire);
        if bump < FIRST_BLOCK || !bump.is_multiple_of(UNIT) || bump > self.len {
            return corrupt(0, "bump pointer out of range");
        }
        let mut stats = ArenaStats {
            capacity: self.capacity(),
            carved: bump - FIRST_BLOCK,
            ..ArenaStats::default()
        };
        let mut blocks: HashMap<u64, (u32, u8, bool)> = HashMap::new();
        self.for_each_block(bump, |p, t, size| {
            if t.state != ST_FREE {
                stats.allocated_blocks += 1;
                stats.allocated_bytes += size;
            }
            blocks.insert(p, (t.class, t.state, false));
            Ok(())
        })?;
        for class in 0..self.num_classes {
            // Acquire: pairs with the Release CAS in `push`.
            let mut idx = self.head(class).load(Ordering::Acquire) as u32;
            let mut steps = 0usize;
            while idx != 0 {
                let block = u64::from(idx - 1) * UNIT;
                let Some(entry) = blocks.get_mut(&block) else {
                    return corrupt(block, "free list points at no block");
                };
                if entry.0 != class || entry.1 != ST_FREE {
                    return corrupt(block, "free list holds a block of another class or state");
                }
                if entry.2 {
                    return corrupt(block, "block listed twice (cycle)");
                }
                entry.2 = true;
                stats.free_blocks += 1;
                stats.free_bytes += class_size(class);
                steps += 1;
                if steps > blocks.len() {
                    return corrupt(block, "free list longer than the heap");
                }
                // Relaxed: quiescent walk, after the Acquire of the head.
                idx = self.word(block + 8).load(Ordering::Relaxed) as u32;
            }
        }
        stats.unlisted_free_blocks = blocks
            .values()
            .filter(|(_, state, listed)| *state == ST_FREE && !listed)
            .count() as u64;
        Ok(stats)
    }
}

#[cfg(mproc_loom)]
pub mod model {
    //! The loom arm (`--cfg mproc_loom` only): the arena's algorithm over loom's model memory.
    //!
    //! [`ModelArena`] runs exactly the code [`Arena`](super::Arena) runs (the shared `Heap`), over words that
    //! are loom atomics built with `new()` instead of std atomics overlaid on a segment. There are
    //! no user bytes: it hands out offsets, which a model may compare and free but not resolve.
    //! The algorithm notes the branches it takes ([`take_events`]), so a model can assert that
    //! the interleavings it wants were reached. `tests/loom_arena.rs` holds the models.
    use super::{ArenaError, ArenaStats, FIRST_BLOCK, Heap, MIN_ARENA_LEN, UNIT, classes_for};
    use super::{BUMP_AT, Words, event};
    use crate::offset::Offset;
    use crate::sync::Ordering;
    use crate::words::ModelWords;

    /// Noted when a pop's head CAS fails and it retries; the offset is the block it expected
    /// to take.
    pub const POP_RETRY: &str = event::POP_RETRY;
    /// Noted when a push's head CAS fails and it retries; the offset is the pushed block.
    pub const PUSH_RETRY: &str = event::PUSH_RETRY;
    /// Noted when a carver loses the block at the bump pointer to another carver.
    pub const CARVE_LOST: &str = event::CARVE_LOST;
    /// Noted when a carver's own bump CAS finds that a helper already moved the pointer.
    pub const CARVE_HELPED: &str = event::CARVE_HELPED;

    /// Offset of the first block (the first block carved has this offset plus 16).
    pub const FIRST_BLOCK_OFFSET: u64 = FIRST_BLOCK;

    /// An arena over loom model memory. Build it inside `loom::model`.
    #[derive(Debug)]
    pub struct ModelArena {
        heap: Heap<ModelWords>,
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
                    reason: "too small (at least 2240 bytes)",
                });
            }
            let len = len - len % UNIT;
            let heap = Heap {
                mem: ModelWords::new(len),
                len,
                base_offset: 0,
                num_classes: classes_for(len),
            };
            // Relaxed: nothing else runs yet; threads spawned later synchronise with us.
            // (The header's magic, version and length are not read by the algorithm.)
            heap.mem.word(BUMP_AT).store(FIRST_BLOCK, Ordering::Relaxed);
            Ok(ModelArena { heap })
        }

        /// As [`Arena::alloc`](super::Arena::alloc).
        ///
        /// # Errors
        ///
        /// As [`Arena::alloc`](super::Arena::alloc).
        pub fn alloc(&self, size: usize, align: usize) -> Result<Offset<u8>, ArenaError> {
            self.heap.alloc(size, align)
        }

        /// As [`Arena::free`](super::Arena::free).
        ///
        /// # Errors
        ///
        /// As [`Arena::free`](super::Arena::free).
        pub fn free(&self, offset: Offset<u8>) -> Result<(), ArenaError> {
            self.heap.free(offset)
        }

        /// As [`Arena::alloc_marked`](super::Arena::alloc_marked).
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
            self.heap.alloc_marked(size, align, writer)
        }

        /// As [`Arena::mark_queued`](super::Arena::mark_queued).
        ///
        /// # Errors
        ///
        /// As [`Arena::mark_queued`](super::Arena::mark_queued).
        pub fn mark_queued(&self, offset: Offset<u8>, stamp: u32) -> Result<(), ArenaError> {
            self.heap.mark(offset, super::HOLDER_QUEUED, stamp)
        }

        /// As [`Arena::reclaim_queued`](super::Arena::reclaim_queued).
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
            self.heap.reclaim_queued(offset, stamp, me)
        }

        /// As [`Arena::hold`](super::Arena::hold).
        ///
        /// # Errors
        ///
        /// As [`Arena::hold`](super::Arena::hold).
        pub fn hold(&self, offset: Offset<u8>, holder: u32) -> Result<(), ArenaError> {
            self.heap.hold(offset, holder)
        }

        /// As [`Arena::reclaim_dead`](super::Arena::reclaim_dead).
        ///
        /// # Errors
        ///
        /// As [`Arena::reclaim_dead`](super::Arena::reclaim_dead).
        pub fn reclaim_dead(
            &self,
            alive: impl Fn(u32) -> bool,
            me: u32,
        ) -> Result<u64, ArenaError> {
            self.heap.reclaim_dead(alive, me)
        }

        /// As [`Arena::held_reclaimed`](super::Arena::held_reclaimed).
        pub fn held_reclaimed(&self) -> u64 {
            // Relaxed: a statistic read after the model's threads joined.
            self.heap
                .mem
                .word(super::HELD_RECLAIMED_AT)
                .load(Ordering::Relaxed)
        }

        /// As [`Arena::check`](super::Arena::check) (run it at a quiescent point).
        ///
        /// # Errors
        ///
        /// As [`Arena::check`](super::Arena::check).
        pub fn check(&self) -> Result<ArenaStats, ArenaError> {
            self.heap.check()
        }

        /// As [`Arena::carved`](super::Arena::carved).
        pub fn carved(&self) -> u64 {
            self.heap.carved()
        }
    }

    /// The events (`POP_RETRY`, ...) the current loom thread's arena calls noted since the
    /// last call, oldest first, each with its arena-relative offset.
    pub fn take_events() -> Vec<(&'static str, u64)> {
        crate::words::take_events()
    }
}
