//! MPMC ring: bounded, fixed-size slots carrying a variable-length payload, with per-slot
//! sequence words that record the state *and the claimant* of each slot.
//!
//! Algorithm: Vyukov's bounded MPMC queue with lap stamps, as in crossbeam's `ArrayQueue`,
//! changed per DESIGN.md ("the hard parts" §3) so that the CAS that claims a slot also
//! records who claimed it:
//!
//! | slot word (`u64`)                  | meaning                                          |
//! |------------------------------------|--------------------------------------------------|
//! | `EMPTY(pos)`                       | free for the producer of position `pos`          |
//! | `WRITING(pos, id)`                 | claimed by producer `id`, being filled           |
//! | `FULL(pos)`                        | holds the message of position `pos`              |
//! | `FULL(pos, TOMB)`                  | tombstone: a dead producer's slot, skipped       |
//! | `READING(pos, id)`                 | claimed by consumer `id`, being read             |
//!
//! Bits: `pos` (low 32 bits of the position) in 63..32, state in 31..30, id in 29..0.
//!
//! * push: load `tail`; CAS slot `tail` from `EMPTY(t)` to `WRITING(t, me)`; help `tail`
//!   to `next(t)`; write; store `FULL(t)` (Release).
//! * pop: load `head`; CAS slot `head` from `FULL(h)` to `READING(h, me)`; help `head` to
//!   `next(h)`; read; store `EMPTY(h + one_lap)` (Release).
//!
//! # Positions: exact capacity with lap stamps
//!
//! The capacity `n` is exact (any `n` in `1..=2^30`; Python's `maxsize`), and the ring has
//! `n` slots. As in crossbeam's `ArrayQueue`, a position (`head`, `tail`, and the stamp in
//! a slot word) is `lap * one_lap + index`, where `one_lap = n.next_power_of_two()` and the
//! index runs `0..n`: the position after `pos` (`next(pos)`) is `pos + 1` within a
//! lap and `(lap + 1) * one_lap` after index `n - 1`, an add and a compare, never a
//! division. The same slot one lap later is `pos + one_lap`. Positions grow monotonically
//! but skip the indices `n..one_lap` of each lap; `len` counts slots, not position
//! differences.
//!
//! A slot word keeps the low 32 bits of its position (the *stamp*). Invariant: `one_lap`
//! is a power of two at most `2^30`, so it divides `2^32` and the stamp is exactly
//! `(lap mod 2^(32-k)) * one_lap + index` (`one_lap = 2^k`, `32 - k >= 2`): its low `k` bits
//! are the slot index, its high bits the lap modulo at least 4. Every check compares a slot
//! word with a hint for the *same* slot (the hint's index is checked `< n` first), so the
//! wrapped difference of the stamps is a multiple of `one_lap`, read as a signed `i32`:
//! `0` (this lap), `+one_lap` (one lap ahead), `-one_lap` (one lap behind) are three
//! distinct values for every `n`, which is all the protocol needs (in a valid execution a
//! freshly loaded hint is within one lap of its slot's word, see `claim_write`). Anything
//! else is a stale hint (retry) or, seen twice, corruption; a difference that is not a
//! multiple of `one_lap` means the word names another slot (corruption). Positions wrap at
//! `2^64`, which `one_lap` divides too, so the stepping stays consistent across that wrap.
//! A hint or word whose index part is `>= n` is corruption: no valid execution stores one.
//!
//! `head` and `tail` are hints that everyone helps forward; the slot words are the truth. A
//! claimant that stops or dies between its claim and its help stalls nobody: the next one
//! helps the hint past a slot claimed for this lap, or past a slot already a lap ahead (the
//! dead claim was resolved and its lap finished before anyone came by). A producer or
//! consumer that dies mid-claim leaves a word naming it, which [`MpmcRing::recover_claim`]
//! (one slot) or [`MpmcRing::recover`] (a scan) resolves.
//!
//! # Recovery is every caller's job
//!
//! A dead claimant's word blocks one side of the ring for ever: a producer's `WRITING` at the
//! head holds back every message committed behind it (consumers see `Empty` while
//! [`MpmcRing::len`] counts them all), and a consumer's `READING` of the previous lap at the
//! tail makes the ring look full to producers. DESIGN.md ("Crash model") wants *any*
//! operation that is stuck there — blocking or timed, `*_nowait`, `qsize`/`empty`/`full`,
//! batch calls — to be able to recover it, at bounded cost. The ring has no clock and makes
//! no system call, so it offers the two halves and leaves the timing to the caller:
//!
//! * [`MpmcRing::stuck_claim`]`(side)`: one look (two loads, no scan) at the one slot that
//!   side is stuck on — the head slot for consumers ([`Side::Head`]), the tail slot for
//!   producers ([`Side::Tail`]) — returning the [`Claim`] there, if any. Equal `Claim`s are
//!   the same claim seen again; the next lap's claim of the same slot is a different one.
//! * [`MpmcRing::recover_claim`]`(claim, alive)`: asks `alive(claimant)` once and, if it is
//!   dead, resolves exactly that slot by a CAS from exactly the observed word (the same
//!   routine [`MpmcRing::recover`] runs on each slot); a live claimant's slot, or a word that
//!   moved on, is left alone.
//!
//! The caller (the facade) remembers the `Claim` it was stuck on and when it first saw it,
//! asks for liveness only when the same `Claim` is still there after a short interval (then
//! restarts the interval if the claimant is alive), and after a recovery rings both doorbells
//! and retries at once (consumers skip the tombstone; producers claim the freed slot). That
//! is O(1) loads per operation and at most one liveness question per interval per stuck
//! claim, however fast the caller polls. [`MpmcRing::recover`], the scan, stays for the
//! paths that look for claims nobody is stuck on yet: disconnect checks and teardown.
//!
//! Verification: loom models (`tests/loom_mpmc.rs`, each asserting that every outcome arm was
//! reached) and deterministic tests (`tests/claim_death.rs`) stop or kill a claimant right
//! after its claim CAS through a test-only fault hook (`with_fault_hook`, compiled only with
//! the `test-hooks` feature or under loom); fork + SIGKILL tests in `tests/process.rs`.
//!
//! Every word, index and length read from the region is untrusted: a hint's index part is
//! checked `< capacity` before use, words are compared with the hint for their own slot,
//! lengths checked against the slot size, and every retry loop is bounded
//! ([`MAX_TRIES`]), ending in `Contended` rather than spinning for ever if a peer keeps
//! flipping words.
//!
//! # Corruption: named invariants, checked where they are cheap
//!
//! A buggy or hostile peer can write anything into the region. The ring promises to report
//! the states below, which no valid execution produces, as `Corrupt` (never as `Empty`,
//! `Full` or `Contended`, which a caller would wait on for ever):
//!
//! 1. **Hint index.** The index part of `head` and `tail` is `< capacity`. Checked on every
//!    load of a hint (pop, push, [`MpmcRing::len`], [`MpmcRing::recover`]): at once.
//! 2. **Slot-word lap.** A freshly loaded hint and its slot's word are within one lap: the
//!    word's stamp is the hint's (this lap), one lap ahead (consumed already: the hint is
//!    behind, help it), or one lap behind only as the previous lap's message or claim (any
//!    state but `EMPTY`, at the tail: full) or reader (`READING`, at the head: empty). Any other
//!    stamp — behind, two laps or more ahead, or naming another slot — can be a stale hint
//!    once (the ring went round between our two loads), so a push or pop reports it only
//!    when it sees the *same* hint and the *same* word twice in a row (the hint is reloaded
//!    in between). A `FULL` word with a claimant field, and a message length above the slot
//!    size, are reported at once (the message is dropped).
//! 3. **Hint distance** (`tail − head ≤ capacity`, with the slack a lazy hint needs): in
//!    slots, the tail is at most `capacity + 1` ahead of the head (a consumer that died
//!    between its claim and its help leaves the head one behind) and the head at most one
//!    ahead of the tail (a producer that died before helping the tail, its tombstone
//!    skipped). Push and pop load only their own hint, so checking this there would cost
//!    the other side's cache line per operation; it is checked where both are loaded
//!    anyway: [`MpmcRing::len`] (so `qsize`/`empty`/`full`) and [`MpmcRing::recover`]
//!    (which blocked callers run now and then), on two consistent pairs in a row.
//!
//! 4. **Unclaimed head** (a stall with no claimant): while the hints say items are queued
//!    (the tail ahead of the head), the head slot's word is not `EMPTY` for the head's own
//!    position. The tail hint only passes a slot its producer has claimed, so a consumer
//!    that loads the head, then the tail, then the slot never meets that state in a valid
//!    execution; it would make every pop say `Empty` for ever. The ring reports the look
//!    ([`MpmcRing::unclaimed_head`]); the caller, which has a clock, reports corruption
//!    ([`MpmcRing::report_corrupt`]) when it sees the same head stalled for an interval.
//!
//! The first detection counts one in [`MpmcRing::corrupt_count`] and **poisons** the ring:
//! a flag (a copy on each hint's cache line, so checking it costs no extra line) after
//! which every push and pop returns `Corrupt` at once, for every handle, for ever (a
//! payload longer than the slot size is still `TooLarge`: that is checked first). A
//! corrupt ring does not keep half-working: the one report is not lost among later
//! successes. [`MpmcRing::stuck_claim`] then finds nothing to recover.
//!
//! What a hostile writer can still forge undetected: any *consistent* state. Hints moved
//! together with the slot words they name (e.g. both hints and every stamp shifted by the
//! same number of laps), hints moved by a multiple of `2^32` positions (the stamps keep only
//! the low 32 bits, so pushes and pops cannot tell; the distance check in `len`/`recover`
//! sees it unless both hints moved alike), a message's bytes or length rewritten within the
//! slot size, a claimant field naming another live participant, or the poison flags
//! cleared. Such a state is a ring that holds other messages than were sent — detectable
//! only by the layer above (the facade validates every message it reads).
#![allow(unsafe_code)]
// `init`/`attach` (in-place layouts) are not built under loom, which uses heap values.
#![cfg_attr(mproc_loom, allow(unused_imports))]

use core::ptr::NonNull;

use crossbeam_utils::CachePadded;
use mproc_core::shared::{SharedBytes, copy_from_shared, shared_bytes};

use crate::Doorbell;
use crate::layout::{
    AttachError, Common, LayoutError, MAX_SLOT_SIZE, REGION_ALIGN, RingKind, check_attach_region,
    check_region, round_up,
};
use crate::mem::Mem;
use crate::role::ParticipantId;
use crate::sync::{AtomicU32, AtomicU64, Ordering, spin_loop};

/// Attempts an operation makes before giving up with `Contended`.
pub const MAX_TRIES: u32 = 1 << 12;

const EMPTY: u64 = 0;
const WRITING: u64 = 1;
const FULL: u64 = 2;
const READING: u64 = 3;
const ID_MASK: u64 = (1 << ParticipantId::BITS) - 1;
/// Claimant field of a tombstone (`FULL(pos, TOMB)`): the one 30-bit value above
/// [`ParticipantId::MAX`], so never a participant's.
const TOMB: u64 = ID_MASK;
const _: () = assert!(TOMB == ParticipantId::MAX as u64 + 1);

#[inline]
fn enc(pos: u64, state: u64, id: u64) -> u64 {
    ((pos & 0xFFFF_FFFF) << 32) | (state << 30) | (id & ID_MASK)
}

#[inline]
fn dec(w: u64) -> (u32, u64, u64) {
    ((w >> 32) as u32, (w >> 30) & 3, w & ID_MASK)
}

/// Whether a slot word holds a message or a claim (`WRITING`, `READING`, or `FULL` that is
/// not a tombstone).
#[inline]
fn holds_item_or_claim(w: u64) -> bool {
    let (_, state, id) = dec(w);
    match state {
        WRITING | READING => true,
        FULL => id != TOMB,
        _ => false,
    }
}

/// `pos_in_word - pos` as a signed distance of stamps (a multiple of `one_lap` when both
/// name the same slot; see the module docs).
#[inline]
fn dist(word_pos: u32, pos: u64) -> i64 {
    i64::from(word_pos.wrapping_sub(pos as u32) as i32)
}

/// Shape of an [`MpmcRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpmcShape {
    /// Number of slots, exactly: any value in `1..=2^30` (not rounded; the ring holds at
    /// most `capacity` messages).
    pub capacity: u32,
    /// Largest payload per slot, in bytes; `1..=MAX_SLOT_SIZE`.
    pub slot_size: u32,
}

/// The shared header. Invariant (absent hostility): `head` and `tail` only grow (in the
/// position order of the module docs: `lap * one_lap + index`, index `< capacity`), and each
/// is at most one position behind the first slot position not yet claimed by its side.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct MpmcHeader {
    common: Common,
    /// Messages lost because their producer died mid-write (tombstoned by `recover`).
    lost_writes: AtomicU64,
    /// Messages lost because their consumer died mid-read (freed by `recover`).
    lost_reads: AtomicU64,
    /// Corruption detections: each operation that found a named invariant broken (module
    /// docs, "Corruption").
    corrupt: AtomicU64,
    items: Doorbell,
    space: Doorbell,
    /// Next position to pop (a hint consumers help forward), and the consumers' copy of the
    /// poison flag.
    head: CachePadded<Hint>,
    /// Next position to push (a hint producers help forward), and the producers' copy of the
    /// poison flag.
    tail: CachePadded<Hint>,
}

// SAFETY: `repr(C)`, a `Common`, atomics, `Doorbell`s and `CachePadded` (`repr(align)`)
// `Hint`s: all valid for any bytes (hints are checked where read); `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for MpmcHeader {}

/// A position hint and, on the same cache line, a copy of the ring's poison flag, so an
/// operation checks the flag without touching a line it would not load anyway.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Hint {
    /// The position (see the module docs).
    pos: AtomicU64,
    /// Nonzero once any operation has found the ring corrupt (set in both hints; never
    /// cleared: a corrupt ring stays corrupt).
    poisoned: AtomicU64,
}

// SAFETY: `repr(C)`, two `AtomicU64`s (a position is checked where read; any nonzero flag is
// "poisoned"); `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for Hint {}

impl Hint {
    fn new() -> Hint {
        Hint {
            pos: AtomicU64::new(0),
            poisoned: AtomicU64::new(0),
        }
    }

    /// Whether the ring was found corrupt.
    #[inline]
    fn is_poisoned(&self) -> bool {
        // Relaxed: a flag with no data behind it. Seeing it a moment late is as if this
        // operation had run just before the detection, which it may have.
        self.poisoned.load(Ordering::Relaxed) != 0
    }
}

impl MpmcHeader {
    fn new(capacity: u32, slot_size: u32, total: u64) -> MpmcHeader {
        MpmcHeader {
            common: Common::new(RingKind::Mpmc, capacity, slot_size, total),
            lost_writes: AtomicU64::new(0),
            lost_reads: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            items: Doorbell::new(),
            space: Doorbell::new(),
            head: CachePadded::new(Hint::new()),
            tail: CachePadded::new(Hint::new()),
        }
    }
}

/// One slot's control words (16 bytes), at the head of the slot; the payload follows them.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlotCtl {
    /// The state word (see the module table).
    seq: AtomicU64,
    /// Payload length; written before `FULL` is published, validated on read.
    len: AtomicU32,
    _reserved: AtomicU32,
}

// SAFETY: `repr(C)`, atomics only: any state word decodes to some state the algorithm
// handles (a nonsense one is corruption), the length is checked against the slot size; `Sync`.
#[cfg(not(mproc_loom))]
#[allow(unsafe_code)]
unsafe impl mproc_core::shared::SharedState for SlotCtl {}

impl SlotCtl {
    fn new(i: u64) -> SlotCtl {
        SlotCtl {
            seq: AtomicU64::new(enc(i, EMPTY, 0)),
            len: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
        }
    }
}

// The in-place layout puts `CTL_LEN` bytes of control words at the head of each slot.
#[cfg(not(mproc_loom))]
const _: () = assert!(size_of::<SlotCtl>() == MpmcRing::CTL_LEN);

/// What [`MpmcRing::recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Slots a dead producer was writing, turned into tombstones (messages lost).
    pub tombstoned: u32,
    /// Slots a dead consumer was reading, freed (messages lost).
    pub freed: u32,
}

/// An end of the ring, where one kind of operation can be stuck on another participant's
/// claim (see [`MpmcRing::stuck_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Where consumers pop: a pop that says `Empty` may be stuck behind a producer's claim
    /// on the head slot (`WRITING` of the head's lap), with messages committed behind it.
    Head,
    /// Where producers push: a push that says `Full` may be stuck on a consumer's claim on
    /// the tail slot (`READING` of the previous lap), which a reader has not freed.
    Tail,
}

/// A claim an operation found itself stuck on: one observation of one slot word, from
/// [`MpmcRing::stuck_claim`], to hand to [`MpmcRing::recover_claim`].
///
/// Opaque but comparable: two `Claim`s are equal exactly when they are the same slot word at
/// the same position, so a caller can tell "still stuck on the claim I saw before" from "stuck
/// on a new claim" (the next lap's claim of the same slot, even by the same participant, is a
/// different `Claim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The slot word exactly as observed (position, state and claimant).
    word: u64,
    /// The claimed position (full width; the word holds its low 32 bits).
    pos: u64,
}

impl Claim {
    /// The claimed position (the message's place in the ring's order):
    /// `lap * capacity.next_power_of_two() + slot index` (see the module docs), so
    /// consecutive messages have consecutive positions only within a lap.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The claimant's participant id as stored in the slot (raw: from shared memory, so
    /// possibly not a valid [`ParticipantId`] if a peer scribbled; ask liveness about it).
    pub fn claimant(&self) -> u32 {
        (self.word & ID_MASK) as u32
    }

    /// The side this claim blocks: [`Side::Head`] for a producer's (writing) claim,
    /// [`Side::Tail`] for a consumer's (reading) one.
    pub fn side(&self) -> Side {
        if dec(self.word).1 == WRITING {
            Side::Head
        } else {
            Side::Tail
        }
    }
}

/// What recovery did to one slot ([`MpmcRing::recover_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recovered {
    /// A dead producer's slot became a tombstone that consumers skip; its message is lost
    /// and counted in [`MpmcRing::lost_writes`].
    Tombstoned,
    /// A dead consumer's slot was freed for the next lap; its message is lost and counted
    /// in [`MpmcRing::lost_reads`].
    Freed,
}

/// A dead participant's claim, shown to a recovery hook ([`MpmcRing::recover_with`],
/// [`MpmcRing::recover_claim_with`]) just before its slot is resolved (a producer's
/// tombstoned, a consumer's freed).
#[derive(Debug)]
pub struct DeadClaim<'a> {
    /// The slot's stamp: the low 32 bits of the claimed position (what
    /// [`MpmcRing::try_push_at`] told the producer of this lap).
    pub stamp: u32,
    /// `Side::Tail` for a producer's claim (`WRITING`), `Side::Head` for a consumer's
    /// (`READING`).
    pub side: Side,
    /// The whole payload area of the slot: a producer's as it left it (untrusted, possibly
    /// half written); a consumer's is the committed message it was reading (untrusted too).
    pub payload: &'a [u8],
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryPushError {
    /// The next slot is not free (the ring is full, or its oldest message is still being
    /// read). Python: `queue.Full`.
    #[error("ring is full")]
    Full,
    /// The payload is longer than the slot size.
    #[error("payload of {len} bytes exceeds the slot size {max}")]
    TooLarge {
        /// Bytes given (or returned by the fill closure).
        len: usize,
        /// The slot size.
        max: u32,
    },
    /// `recover` resolved our claim while we held it (we were judged dead): the message is
    /// lost and counted in [`MpmcRing::lost_writes`].
    #[error("slot was recovered from us mid-write")]
    Recovered,
    /// The fill closure returned `None`; the claimed slot became a tombstone.
    #[error("push cancelled by the writer")]
    Cancelled,
    /// Gave up after [`MAX_TRIES`] attempts (extreme contention or a hostile peer).
    #[error("gave up after too many attempts")]
    Contended,
    /// The ring is corrupt (a buggy or hostile peer wrote its memory): this push found one
    /// of the named invariants broken (module docs, "Corruption"; counted in
    /// [`MpmcRing::corrupt_count`]), or an earlier operation did and poisoned the ring.
    /// Sticky: every later push and pop says the same.
    #[error("ring memory is corrupt")]
    Corrupt,
}

/// Why a pop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryPopError {
    /// No message ready (the ring is empty, or its oldest message is still being written).
    /// Python: `queue.Empty`.
    #[error("ring is empty")]
    Empty,
    /// The output buffer is shorter than the message (which was consumed and is lost).
    #[error("message of {len} bytes does not fit the buffer")]
    BufferTooSmall {
        /// The message's length.
        len: usize,
    },
    /// Gave up after [`MAX_TRIES`] attempts.
    #[error("gave up after too many attempts")]
    Contended,
    /// `recover` resolved our claim while we held it (we were judged dead): the message is
    /// counted lost in [`MpmcRing::lost_reads`], and what `f` saw may have been torn.
    #[error("slot was recovered from us mid-read")]
    Recovered,
    /// The ring is corrupt: this pop found one of the named invariants broken (module docs,
    /// "Corruption"; a message whose slot failed validation is dropped; counted in
    /// [`MpmcRing::corrupt_count`]), or an earlier operation did and poisoned the ring.
    /// Sticky: every later push and pop says the same.
    #[error("ring memory is corrupt")]
    Corrupt,
}

/// A bounded multi-producer multi-consumer ring of byte messages up to `slot_size` long.
/// Python: the transport of `multiprocessing.Queue`.
///
/// Cheap to clone; every operation takes the caller's [`ParticipantId`], which is recorded
/// in the slot it claims so a crash can be recovered exactly.
#[derive(Debug, Clone)]
pub struct MpmcRing {
    mem: Mem<MpmcHeader, SlotCtl>,
    /// Number of slots (exact).
    cap: u32,
    /// `cap.next_power_of_two()`: the position distance of one lap (module docs).
    one_lap: u64,
    slot: u32,
    stride: usize,
    /// Test-only fault hook of this handle (see [`crate::fault`]).
    #[cfg(any(feature = "test-hooks", mproc_loom))]
    hook: Option<crate::fault::Hook>,
}

/// Moves a slot out of our claim: explicitly with [`Finish::finish`], or on unwinding.
///
/// The move is a CAS from our exact claim word, never a blind store: if `recover` declared
/// us dead and resolved the slot meanwhile (a wrong liveness answer, or a stopped process
/// judged dead), the slot may already belong to someone else, and we must not clobber it.
struct Finish<'a> {
    ctl: &'a SlotCtl,
    claimed: u64,
    word: u64,
    armed: bool,
}

impl Finish<'_> {
    fn cas(&self) -> bool {
        // Release: our payload writes (or reads) happen before the next claimant's Acquire.
        self.ctl
            .seq
            .compare_exchange(
                self.claimed,
                self.word,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Stores the final word; `false` if our claim was taken from us by `recover`.
    fn finish(mut self) -> bool {
        self.armed = false;
        self.cas()
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cas();
        }
    }
}

impl MpmcRing {
    /// Largest capacity.
    pub const MAX_CAPACITY: u32 = 1 << 30;
    /// Region alignment `init`/`attach` need.
    pub const REQUIRED_ALIGN: usize = REGION_ALIGN;
    /// Alignment of every slot's payload (enough for rkyv archives of common types).
    pub const PAYLOAD_ALIGN: usize = 16;

    fn check_shape(shape: MpmcShape) -> Result<(), LayoutError> {
        if shape.capacity == 0 || shape.capacity > Self::MAX_CAPACITY {
            return Err(LayoutError::BadCapacity(shape.capacity));
        }
        if shape.slot_size == 0 || shape.slot_size > MAX_SLOT_SIZE {
            return Err(LayoutError::BadSlotSize(shape.slot_size));
        }
        Ok(())
    }

    /// Where slot 0 starts.
    const SLOTS_OFFSET: usize = round_up(size_of::<MpmcHeader>(), REGION_ALIGN);
    /// Bytes of a slot's control words in the in-place layout (its payload follows them).
    const CTL_LEN: usize = 16;

    /// Bytes per slot: the control words, then the payload, so a small message and its
    /// state word share a cache line (one line moves between cores per message, not two).
    fn stride(slot: u32) -> usize {
        Self::CTL_LEN + round_up(slot as usize, Self::PAYLOAD_ALIGN)
    }

    /// Bytes a region must have for `shape`.
    ///
    /// # Errors
    /// A bad capacity or slot size.
    pub fn required_size(shape: MpmcShape) -> Result<usize, LayoutError> {
        Self::check_shape(shape)?;
        Ok(Self::SLOTS_OFFSET + shape.capacity as usize * Self::stride(shape.slot_size))
    }

    /// Initialises a ring in place.
    ///
    /// # Errors
    /// Bad shape, region too small or misaligned.
    ///
    /// # Safety
    /// As for [`crate::SpscRing::init`]: the region is valid, exclusively ours during init,
    /// mapped while any handle lives, and otherwise used only through this crate.
    #[cfg(not(mproc_loom))]
    pub unsafe fn init(
        region: NonNull<u8>,
        len: usize,
        shape: MpmcShape,
    ) -> Result<MpmcRing, LayoutError> {
        let total = Self::required_size(shape)?;
        check_region(region, len, total)?;
        let hdr = region.cast::<MpmcHeader>();
        // SAFETY: `region` is aligned, holds `total` bytes, and is exclusively ours.
        unsafe {
            hdr.write(MpmcHeader::new(
                shape.capacity,
                shape.slot_size,
                total as u64,
            ));
            let slots = region.add(Self::SLOTS_OFFSET);
            let stride = Self::stride(shape.slot_size);
            for i in 0..shape.capacity as usize {
                slots
                    .add(i * stride)
                    .cast::<SlotCtl>()
                    .write(SlotCtl::new(i as u64));
            }
            hdr.as_ref().common.publish();
            Ok(Self::from_region(region, shape, None))
        }
    }

    /// # Safety
    /// `region` holds a valid ring of `shape` and stays mapped while handles live.
    #[cfg(not(mproc_loom))]
    unsafe fn from_region(
        region: NonNull<u8>,
        shape: MpmcShape,
        keep: crate::layout::Keepalive,
    ) -> MpmcRing {
        // SAFETY: offsets within `required_size(shape)`, delegated to the caller.
        let mem = unsafe {
            Mem::in_place(
                region.cast(),
                region.add(Self::SLOTS_OFFSET).cast(),
                Self::stride(shape.slot_size),
                region.add(Self::SLOTS_OFFSET + Self::CTL_LEN),
                keep,
            )
        };
        MpmcRing {
            mem,
            cap: shape.capacity,
            one_lap: u64::from(shape.capacity.next_power_of_two()),
            slot: shape.slot_size,
            stride: Self::stride(shape.slot_size),
            #[cfg(feature = "test-hooks")]
            hook: None,
        }
    }

    /// Attaches to an initialised ring, validating its header; the validated shape is copied
    /// into the handle and never re-read.
    ///
    /// # Errors
    /// One [`AttachError`] per failed check.
    ///
    /// # Safety
    /// As for [`MpmcRing::init`], minus the exclusivity.
    #[cfg(not(mproc_loom))]
    pub unsafe fn attach(region: NonNull<u8>, len: usize) -> Result<MpmcRing, AttachError> {
        check_attach_region(region, len, Self::SLOTS_OFFSET)?;
        // SAFETY: aligned and long enough for the header, which is atomics only.
        let hdr = unsafe { region.cast::<MpmcHeader>().as_ref() };
        let (capacity, slot_size, total) = hdr.common.validate(RingKind::Mpmc)?;
        let shape = MpmcShape {
            capacity,
            slot_size,
        };
        match Self::check_shape(shape) {
            Err(LayoutError::BadCapacity(c)) => return Err(AttachError::BadCapacity(c)),
            Err(_) => return Err(AttachError::BadSlotSize(slot_size)),
            Ok(()) => {}
        }
        let needed = Self::required_size(shape).expect("shape checked");
        if total != needed as u64 {
            return Err(AttachError::SizeMismatch {
                recorded: total,
                computed: needed as u64,
            });
        }
        if len < needed {
            return Err(AttachError::RegionTooSmall { needed, len });
        }
        // SAFETY: validated; lifetime delegated to the caller.
        Ok(unsafe { Self::from_region(region, shape, None) })
    }

    /// A ring on the heap, for use within one process.
    ///
    /// # Errors
    /// A bad shape.
    pub fn new(shape: MpmcShape) -> Result<MpmcRing, LayoutError> {
        let total = Self::required_size(shape)?;
        #[cfg(not(mproc_loom))]
        {
            let buf = crate::layout::AlignedBuf::zeroed(total);
            // SAFETY: a fresh, exclusive, aligned buffer of the right size.
            let mut ring = unsafe { Self::init(buf.ptr(), buf.len(), shape) }?;
            ring.mem.keep = Some(std::sync::Arc::new(buf));
            Ok(ring)
        }
        #[cfg(mproc_loom)]
        {
            let hdr = MpmcHeader::new(shape.capacity, shape.slot_size, total as u64);
            hdr.common.publish();
            let ctl = (0..u64::from(shape.capacity)).map(SlotCtl::new).collect();
            let stride = Self::stride(shape.slot_size);
            Ok(MpmcRing {
                mem: crate::mem::loom_heap::build(
                    hdr,
                    ctl,
                    shape.capacity as usize * stride,
                    shape.capacity as usize,
                ),
                cap: shape.capacity,
                one_lap: u64::from(shape.capacity.next_power_of_two()),
                slot: shape.slot_size,
                stride,
                hook: None,
            })
        }
    }

    /// Number of slots: the most messages the ring holds, exactly as given in the shape.
    pub fn capacity(&self) -> u32 {
        self.cap
    }

    /// Largest payload per message.
    pub fn slot_size(&self) -> u32 {
        self.slot
    }

    /// Messages in the ring (claimed by producers and not yet claimed by consumers): a
    /// snapshot always in `0..=capacity`, exact when nobody is mid-operation (so a ring
    /// with `capacity` messages says exactly `capacity`). Slots being written count as
    /// present; slots being read do not.
    ///
    /// A claim whose producer died counts too (once anyone has helped the tail past it), as
    /// does its tombstone until a pop skips it: `len` is the distance between the tail and
    /// the head hints (counted in slots across the lap jump, see the module docs) and does
    /// not look at slot words. So with a dead producer's claim on the
    /// head slot and `k >= 1` messages committed behind it, `len` says `k + 1` while
    /// `try_pop` says `Empty` — `qsize()` overcounts by
    /// the dead claims not yet recovered and skipped, and `empty()` can say `false` while
    /// nothing can be popped. A caller that reports `len` can check
    /// [`stuck_claim`](MpmcRing::stuck_claim)`(Side::Head)` as a pop would (see the module
    /// docs); after `recover_claim`, the next pop skips the tombstone and `len` drops by one.
    ///
    /// `len` also checks the hint distance (module docs, "Corruption"): two pairs in a row
    /// that break it poison the ring (and are counted), so the next push or pop says
    /// `Corrupt`; the count itself stays clamped.
    pub fn len(&self) -> u32 {
        let (t, hd) = self.checked_hints();
        self.count(t, hd)
    }

    /// Slots from `head` to `tail` (positions, untrusted), clamped to `0..=capacity`: no
    /// division, just the lap difference and the two indices.
    fn count(&self, tail: u64, head: u64) -> u32 {
        let n = i64::from(self.cap);
        // Indices are `< n` in every valid execution; a corrupt one only skews the clamped
        // snapshot (the operations themselves report it). A head ahead of the tail (helped
        // forward first, past a claim whose producer died before helping the tail) counts 0;
        // two laps or more apart is not a valid state and clamps.
        match self.slots_between(tail, head) {
            Ok(c) => c.clamp(0, n) as u32,
            Err(tail_ahead) => {
                if tail_ahead {
                    self.cap
                } else {
                    0
                }
            }
        }
    }

    /// Signed slots from `head` to `tail` when their laps differ by -1, 0, 1 or 2; otherwise
    /// `Err(true)` when the tail is further ahead, `Err(false)` when further behind.
    fn slots_between(&self, tail: u64, head: u64) -> Result<i64, bool> {
        let m = self.one_lap - 1;
        let n = i64::from(self.cap);
        let lap = self.one_lap as i64;
        let d = (tail & m) as i64 - (head & m) as i64;
        let laps = (tail & !m).wrapping_sub(head & !m) as i64;
        match laps {
            0 => Ok(d),
            l if l == lap => Ok(n + d),
            l if l == -lap => Ok(d - n),
            l if l == 2 * lap => Ok(2 * n + d),
            l => Err(l > 0),
        }
    }

    /// `len() == 0` (same guarantees).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len() == capacity()` (same guarantees).
    pub fn is_full(&self) -> bool {
        self.len() == self.cap
    }

    /// Rung after pushes; consumers sleep on it (see [`Doorbell`]).
    pub fn items_doorbell(&self) -> &Doorbell {
        &self.mem.hdr().items
    }

    /// Rung after pops; producers sleep on it.
    pub fn space_doorbell(&self) -> &Doorbell {
        &self.mem.hdr().space
    }

    /// Messages lost because their producer died mid-write (since init).
    pub fn lost_writes(&self) -> u64 {
        // Relaxed: a statistic.
        self.mem.hdr().lost_writes.load(Ordering::Relaxed)
    }

    /// Messages lost because their consumer died mid-read (since init).
    pub fn lost_reads(&self) -> u64 {
        // Relaxed: a statistic.
        self.mem.hdr().lost_reads.load(Ordering::Relaxed)
    }

    /// Corruption detections (since init): each operation that found a named invariant
    /// broken counts one (module docs, "Corruption"); the first one poisons the ring, and
    /// the later `Corrupt` returns of a poisoned ring are not counted again. A message
    /// dropped because its slot failed validation is one detection.
    pub fn corrupt_count(&self) -> u64 {
        // Relaxed: a statistic.
        self.mem.hdr().corrupt.load(Ordering::Relaxed)
    }

    /// Whether the ring has been found corrupt (module docs, "Corruption"): then every push
    /// and pop returns `Corrupt` at once. Never cleared.
    pub fn is_poisoned(&self) -> bool {
        let h = self.mem.hdr();
        h.head.is_poisoned() || h.tail.is_poisoned()
    }

    /// Records a corruption found by the layer above in state tied to this ring (a queue's
    /// arena, say): counts it and poisons the ring as the ring's own detections do, so the
    /// object stays corrupt for every handle. The caller returns its own `Corrupt`.
    #[cold]
    pub fn report_corrupt(&self) {
        if self.is_poisoned() {
            // Counted already; make sure both sides say so (a peer may have set one flag).
            self.set_poison_flags();
        } else {
            self.poison();
        }
    }

    /// Records a detection: counts it and poisons the ring (both hints' flags), so every
    /// later push and pop returns `Corrupt` at once. The caller returns `Corrupt`.
    #[cold]
    fn poison(&self) {
        let h = self.mem.hdr();
        // Relaxed: a statistic.
        h.corrupt.fetch_add(1, Ordering::Relaxed);
        self.set_poison_flags();
    }

    /// Sets both hints' poison flags.
    fn set_poison_flags(&self) {
        let h = self.mem.hdr();
        // Relaxed: flags with no data behind them (see `Hint::is_poisoned`); a concurrent
        // operation that misses them behaves as if it ran just before this detection.
        h.tail.poisoned.store(1, Ordering::Relaxed);
        h.head.poisoned.store(1, Ordering::Relaxed);
    }

    /// `Corrupt` for a push, after recording the detection ([`MpmcRing::poison`]).
    #[cold]
    fn corrupt_push(&self) -> TryPushError {
        self.poison();
        TryPushError::Corrupt
    }

    /// `Corrupt` for a pop, after recording the detection ([`MpmcRing::poison`]).
    #[cold]
    fn corrupt_pop(&self) -> TryPopError {
        self.poison();
        TryPopError::Corrupt
    }

    /// Checks the named invariant *hint distance* (module docs, "Corruption") on a pair of
    /// hint values, `tail` loaded before and after `head` with no change between: in slots,
    /// the tail is at most `capacity + 1` ahead of the head and the head at most one ahead of
    /// the tail, both indices name slots. `true` when it holds.
    fn hints_valid(&self, tail: u64, head: u64) -> bool {
        if self.index(tail).is_none() || self.index(head).is_none() {
            return false;
        }
        // `capacity + 1` ahead happens with the head at the last index of its lap (two laps
        // apart in positions).
        let n = i64::from(self.cap);
        matches!(self.slots_between(tail, head), Ok(c) if (-1..=n + 1).contains(&c))
    }

    /// Loads a consistent `(tail, head)` pair (a tail that did not move around the head
    /// load), or the last pair tried.
    fn hints(&self) -> (u64, u64) {
        let h = self.mem.hdr();
        let mut pair = (0, 0);
        for _ in 0..8 {
            // Acquire on all three: a tail that did not move around the head load gives a
            // consistent pair (crossbeam's `ArrayQueue::len` approach).
            let t1 = h.tail.pos.load(Ordering::Acquire);
            let hd = h.head.pos.load(Ordering::Acquire);
            pair = (t1, hd);
            if h.tail.pos.load(Ordering::Acquire) == t1 {
                break;
            }
        }
        pair
    }

    /// Checks the hint distance on two consistent pairs in a row (a single pair may be
    /// stale in ways no check can tell from corruption; the same invalid pair seen twice is
    /// a state, as in the claim loops) and poisons the ring when both break it. Returns the
    /// last pair. Costs nothing extra when the first pair is valid.
    fn checked_hints(&self) -> (u64, u64) {
        let first = self.hints();
        if self.hints_valid(first.0, first.1) {
            return first;
        }
        let again = self.hints();
        if again == first && !self.is_poisoned() {
            self.poison();
        }
        again
    }

    /// The slot index of position `pos` (a hint or a stamp, untrusted), if it names a slot:
    /// `None` when its index part is `>= capacity` (no valid execution stores one).
    #[inline]
    fn index(&self, pos: u64) -> Option<usize> {
        let i = pos & (self.one_lap - 1);
        (i < u64::from(self.cap)).then_some(i as usize)
    }

    /// The position after `pos`: the next index of its lap, or index 0 of the next lap
    /// after index `capacity - 1` (crossbeam's `ArrayQueue` stepping: an add and a compare).
    /// The one definition of "next", used by every claim, help and check.
    #[inline]
    fn next(&self, pos: u64) -> u64 {
        if (pos & (self.one_lap - 1)) + 1 < u64::from(self.cap) {
            pos.wrapping_add(1)
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// The same slot's position one lap after `pos`.
    #[inline]
    fn lap_after(&self, pos: u64) -> u64 {
        pos.wrapping_add(self.one_lap)
    }

    /// Slot `i`'s control words; `i` comes from [`MpmcRing::index`] (checked `< capacity`).
    #[inline]
    fn ctl(&self, i: usize) -> &SlotCtl {
        debug_assert!(i < self.cap as usize);
        self.mem.ctl(i)
    }

    /// Slot `i`'s payload; `i` comes from [`MpmcRing::index`] (checked `< capacity`).
    #[inline]
    fn payload(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.cap as usize);
        // SAFETY: `i < cap` (checked by `index`, the only source of slot indices); slot `i`'s
        // payload, `stride - CTL_LEN >= slot` bytes from `data + i * stride`, lies inside the
        // region (in place) or the loom data buffer.
        unsafe { self.mem.data.as_ptr().add(i * self.stride) }
    }

    /// A handle that calls `hook` at each [`FaultPoint`](crate::fault::FaultPoint) it passes
    /// (test builds only: feature `test-hooks` or `--cfg mproc_loom`; see [`crate::fault`]).
    #[doc(hidden)]
    #[cfg(any(feature = "test-hooks", mproc_loom))]
    pub fn with_fault_hook(
        &self,
        hook: impl Fn(crate::fault::FaultPoint) + Send + Sync + std::panic::RefUnwindSafe + 'static,
    ) -> MpmcRing {
        MpmcRing {
            hook: Some(crate::fault::Hook(std::sync::Arc::new(hook))),
            ..self.clone()
        }
    }

    #[cfg(any(feature = "test-hooks", mproc_loom))]
    fn fault_point(&self, point: crate::fault::FaultPoint) {
        if let Some(hook) = &self.hook {
            (hook.0)(point);
        }
    }

    /// Helps `word` from `from` to `next(from)` (failure means someone else did).
    #[inline]
    fn help(&self, word: &AtomicU64, from: u64) {
        // AcqRel: the index chain carries happens-before from each claim to later loaders
        // (so a loader of the index never sees an older slot word than the helper did).
        // Relaxed on failure: someone else moved the hint; we read nothing from it.
        let _ = word.compare_exchange(from, self.next(from), Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Claims the slot at the tail for `me`; returns its position and slot index.
    // Inlined into the generic push/pop bodies: the lap stepping made it a little larger
    // than the compiler's default threshold (measured with the `hot` bench).
    #[inline]
    fn claim_write(&self, me: ParticipantId) -> Result<(u64, usize), TryPushError> {
        let h = self.mem.hdr();
        if h.tail.is_poisoned() {
            return Err(TryPushError::Corrupt);
        }
        let lap = self.one_lap as i64;
        let mut odd = None;
        for _ in 0..MAX_TRIES {
            // Acquire: pairs with the AcqRel helping CAS (see `help`).
            let t = h.tail.pos.load(Ordering::Acquire);
            let Some(i) = self.index(t) else {
                // No valid execution stores a tail whose index part is `>= capacity`.
                return Err(self.corrupt_push());
            };
            let ctl = self.ctl(i);
            // Acquire: pairs with the Release store of `EMPTY(t)` by the consumer that freed
            // this slot, so its reads of the payload happen before our writes.
            let w = ctl.seq.load(Ordering::Acquire);
            let (p, st, _) = dec(w);
            let d = dist(p, t);
            if d == 0 {
                if st == EMPTY {
                    // Acquire as above (the CAS reads the same freed word).
                    if ctl
                        .seq
                        .compare_exchange(
                            w,
                            enc(t, WRITING, u64::from(me.get())),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        #[cfg(any(feature = "test-hooks", mproc_loom))]
                        self.fault_point(crate::fault::FaultPoint::WriteClaimed { pos: t });
                        self.help(&h.tail.pos, t);
                        return Ok((t, i));
                    }
                } else {
                    // Claimed for this lap by another producer that has not moved the tail.
                    self.help(&h.tail.pos, t);
                }
            } else if d == -lap && st != EMPTY {
                // The previous lap's message is still in this slot: *possibly* full. If the
                // tail has not moved meanwhile, it *really* was full when we looked.
                if h.tail.pos.load(Ordering::Acquire) == t {
                    return Err(TryPushError::Full);
                }
            } else if d == lap {
                // Position `t` was claimed and its lap is over (e.g. a producer died between
                // its claim and its help, and its tombstone was consumed): the tail is behind
                // and nobody else will move it. Help it (or our `t` was stale: no effect).
                self.help(&h.tail.pos, t);
            } else {
                // The word is behind the tail (not the previous lap's message), names another
                // slot, or is two laps or more ahead. Once: our `t` may have been stale (the
                // ring went round while we looked). The same tail and word seen twice in a
                // row: no valid execution shows it (a word two laps ahead means the tail
                // passed `t + one_lap`, and the Acquire on the word orders that after us),
                // so it is corruption — the hint was forged, e.g. out of range.
                if odd == Some((t, w)) {
                    return Err(self.corrupt_push());
                }
                odd = Some((t, w));
            }
            spin_loop();
        }
        Err(TryPushError::Contended)
    }

    /// Pushes a copy of `bytes`. Python: `Queue.put_nowait`.
    ///
    /// # Errors
    /// `Full`, `TooLarge`, `Contended`, `Corrupt`.
    pub fn try_push(&self, me: ParticipantId, bytes: &[u8]) -> Result<(), TryPushError> {
        if bytes.len() > self.slot as usize {
            return Err(TryPushError::TooLarge {
                len: bytes.len(),
                max: self.slot,
            });
        }
        self.try_push_with(me, |buf| {
            buf[..bytes.len()].copy_from_slice(bytes);
            Some(bytes.len())
        })
    }

    /// Claims a slot and lets `fill` write the message in place (e.g. serialise straight
    /// into shared memory); `fill` gets the whole slot (`slot_size` bytes, aligned to
    /// [`MpmcRing::PAYLOAD_ALIGN`]) and returns the length written, or `None` to cancel.
    /// While `fill` runs, consumers wait behind this slot, so keep it short. If `fill`
    /// panics or cancels, the slot becomes a tombstone that consumers skip.
    ///
    /// # Errors
    /// `Full` (then `fill` is not called), `TooLarge` (returned length above the slot
    /// size: the slot is tombstoned), `Cancelled`, `Contended`, `Corrupt`.
    pub fn try_push_with(
        &self,
        me: ParticipantId,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), TryPushError> {
        self.try_push_at(me, |_, buf| fill(buf))
    }

    /// As [`try_push_with`](MpmcRing::try_push_with), also telling `fill` the *stamp* of the
    /// claimed slot: the low 32 bits of its position, which its slot word carries and a
    /// recovery hook is shown ([`DeadClaim::stamp`]). A producer can record it next to
    /// anything it hands to the queue out of line (an arena block), so that if it dies before
    /// committing, the recoverer can tell that exactly this slot named it.
    #[inline]
    pub fn try_push_at(
        &self,
        me: ParticipantId,
        fill: impl FnOnce(u32, &mut [u8]) -> Option<usize>,
    ) -> Result<(), TryPushError> {
        let (pos, i) = self.claim_write(me)?;
        let ctl = self.ctl(i);
        let mut finish = Finish {
            ctl,
            claimed: enc(pos, WRITING, u64::from(me.get())),
            word: enc(pos, FULL, TOMB),
            armed: true,
        };
        let token = self.mem.guard(i).write();
        // SAFETY: we hold the slot (`WRITING(pos, me)`), so no one else touches its payload;
        // the payload run is in bounds (checked index, `slot <= stride - CTL_LEN`).
        let buf = unsafe { core::slice::from_raw_parts_mut(self.payload(i), self.slot as usize) };
        let r = fill(pos as u32, buf);
        crate::sync::end(token);
        let res = match r {
            Some(n) if n <= self.slot as usize => {
                // Relaxed: published by the Release CAS to `FULL` in `finish`.
                ctl.len.store(n as u32, Ordering::Relaxed);
                finish.word = enc(pos, FULL, 0);
                Ok(())
            }
            Some(n) => Err(TryPushError::TooLarge {
                len: n,
                max: self.slot,
            }),
            None => Err(TryPushError::Cancelled),
        };
        // Release (in `finish`): the payload and length happen before a consumer's Acquire
        // of `FULL`.
        if !finish.finish() {
            return Err(TryPushError::Recovered);
        }
        res
    }

    /// Claims the message at the head for `me`; returns its position and slot index.
    // Inlined into the generic push/pop bodies: the lap stepping made it a little larger
    // than the compiler's default threshold (measured with the `hot` bench). `always`: a
    // plain `#[inline]` stopped being honoured when the facade's get path grew (callgrind:
    // 45 more instructions per Queue put+get pair, +8 % time).
    #[inline(always)]
    fn claim_read(&self, me: ParticipantId) -> Result<(u64, usize), TryPopError> {
        let h = self.mem.hdr();
        if h.head.is_poisoned() {
            return Err(TryPopError::Corrupt);
        }
        let lap = self.one_lap as i64;
        let mut odd = None;
        for _ in 0..MAX_TRIES {
            // Acquire: pairs with the AcqRel helping CAS (see `help`).
            let hd = h.head.pos.load(Ordering::Acquire);
            let Some(i) = self.index(hd) else {
                // No valid execution stores a head whose index part is `>= capacity`.
                return Err(self.corrupt_pop());
            };
            let ctl = self.ctl(i);
            // Acquire: pairs with the producer's Release store of `FULL(hd)`.
            let w = ctl.seq.load(Ordering::Acquire);
            let (p, st, id) = dec(w);
            let d = dist(p, hd);
            if d == 0 {
                match st {
                    FULL if id == TOMB => {
                        // A dead producer's slot: free it for the next lap and move on.
                        // Release: pairs with the next producer's Acquire claim.
                        if ctl
                            .seq
                            .compare_exchange(
                                w,
                                enc(self.lap_after(hd), EMPTY, 0),
                                Ordering::Release,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            self.help(&h.head.pos, hd);
                        }
                        continue;
                    }
                    FULL => {
                        // Acquire as above.
                        if ctl
                            .seq
                            .compare_exchange(
                                w,
                                enc(hd, READING, u64::from(me.get())),
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            #[cfg(any(feature = "test-hooks", mproc_loom))]
                            self.fault_point(crate::fault::FaultPoint::ReadClaimed { pos: hd });
                            self.help(&h.head.pos, hd);
                            if id != 0 {
                                // A FULL word with a claimant field: not ours to trust.
                                self.drop_corrupt(hd, i);
                                return Err(TryPopError::Corrupt);
                            }
                            return Ok((hd, i));
                        }
                    }
                    READING => self.help(&h.head.pos, hd),
                    WRITING => return Err(TryPopError::Empty),
                    _ => {
                        // EMPTY(hd): no producer has claimed this lap's slot, so nothing
                        // is behind it either (producers claim in order: the tail only
                        // passes a claimed slot). A stale read can only make this a
                        // momentary Empty, as if we had looked a moment earlier. Not
                        // consulting the producers' tail here keeps a polling consumer off
                        // their cache line.
                        return Err(TryPopError::Empty);
                    }
                }
            } else if d == lap {
                // Consumed (or freed by `recover`) already, and maybe refilled for the next
                // lap: the head is behind (its claimant died before helping), or our `hd`
                // was stale. Help it.
                self.help(&h.head.pos, hd);
            } else if d == -lap && st == READING {
                // The previous lap's reader is still busy: nothing for us yet.
                return Err(TryPopError::Empty);
            } else {
                // Behind the head (beyond a busy reader of the previous lap), naming another
                // slot, or two laps or more ahead: our `hd` may have been stale once; the
                // same head and word seen twice in a row is corruption (as in
                // `claim_write`).
                if odd == Some((hd, w)) {
                    return Err(self.corrupt_pop());
                }
                odd = Some((hd, w));
            }
            spin_loop();
        }
        Err(TryPopError::Contended)
    }

    /// Drops the message of position `pos` (slot `i`), which we hold, as corrupt, and
    /// poisons the ring (counting the detection).
    fn drop_corrupt(&self, pos: u64, i: usize) {
        self.poison();
        // Release: pairs with the next producer's Acquire claim.
        self.ctl(i)
            .seq
            .store(enc(self.lap_after(pos), EMPTY, 0), Ordering::Release);
    }

    /// Pops the next message, lending its bytes to `f` in place as [`SharedBytes`] (atomic
    /// bytes: read them with [`copy_from_shared`]); the slot is freed when `f` returns (or
    /// unwinds). The hostile-safe way to read a message in place: a peer that writes the
    /// slot anyway (none should while we hold it) changes what `f` reads, never makes
    /// reading it undefined. Python: `Queue.get_nowait`.
    ///
    /// # Errors
    /// `Empty`, `Contended`, `Corrupt` (a broken invariant, e.g. a bad length: the message is
    /// dropped, the detection counted, and the ring poisoned), `Recovered`.
    pub fn try_pop_shared_with<R>(
        &self,
        me: ParticipantId,
        f: impl FnOnce(&SharedBytes) -> R,
    ) -> Result<R, TryPopError> {
        self.pop_raw(me, |payload, len| {
            // SAFETY: `payload..payload + len` is the payload of a slot we hold, in bounds
            // (`pop_raw`), alive as long as `self`; this process reads it only atomically
            // through this view.
            f(unsafe { shared_bytes(payload, len) })
        })
    }

    /// Pops the next message, lending its bytes to `f` in place as a `&[u8]`; the slot is
    /// freed when `f` returns (or unwinds). Python: `Queue.get_nowait`.
    ///
    /// A `&[u8]` tells the compiler that nobody writes the bytes while it lives. Honest peers
    /// keep that promise (nobody writes a slot another participant holds), a hostile or
    /// corrupted peer in another process can break it, and a read racing with its write is
    /// undefined behaviour. Where peers are untrusted, use
    /// [`try_pop_shared_with`](MpmcRing::try_pop_shared_with) or
    /// [`try_pop`](MpmcRing::try_pop), which read through atomics.
    ///
    /// # Errors
    /// As for [`try_pop_shared_with`](MpmcRing::try_pop_shared_with).
    pub fn try_pop_with<R>(
        &self,
        me: ParticipantId,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, TryPopError> {
        self.pop_raw(me, |payload, len| {
            // SAFETY: as in `try_pop_shared_with`; the hazard of lending `&[u8]` over memory a
            // hostile peer could write is this method's documented limit.
            f(unsafe { core::slice::from_raw_parts(payload.as_ptr(), len) })
        })
    }

    /// Claims the next message and hands `f` its payload pointer and (checked) length while
    /// the slot is held; frees the slot when `f` returns or unwinds.
    #[inline(always)]
    fn pop_raw<R>(
        &self,
        me: ParticipantId,
        f: impl FnOnce(NonNull<u8>, usize) -> R,
    ) -> Result<R, TryPopError> {
        let (pos, i) = self.claim_read(me)?;
        let ctl = self.ctl(i);
        // Relaxed: ordered after the producer's writes by the Acquire on `FULL`.
        let len = ctl.len.load(Ordering::Relaxed);
        if len > self.slot {
            self.drop_corrupt(pos, i);
            return Err(TryPopError::Corrupt);
        }
        let finish = Finish {
            ctl,
            claimed: enc(pos, READING, u64::from(me.get())),
            word: enc(self.lap_after(pos), EMPTY, 0),
            armed: true,
        };
        let token = self.mem.guard(i).read();
        // We hold the slot (`READING(pos, me)`); `len <= slot` checked above; the run is in
        // bounds (checked index).
        let payload = NonNull::new(self.payload(i)).expect("payload pointer is non-null");
        let r = f(payload, len as usize);
        crate::sync::end(token);
        if !finish.finish() {
            return Err(TryPopError::Recovered);
        }
        Ok(r)
    }

    /// Pops the next message into `out` (copied with [`copy_from_shared`]: safe against a
    /// peer writing the slot meanwhile); returns its length.
    ///
    /// # Errors
    /// As for `try_pop_with`, plus `BufferTooSmall` (the message is consumed and lost).
    pub fn try_pop(&self, me: ParticipantId, out: &mut [u8]) -> Result<usize, TryPopError> {
        self.try_pop_shared_with(me, |b| {
            if b.len() > out.len() {
                return Err(TryPopError::BufferTooSmall { len: b.len() });
            }
            copy_from_shared(&mut out[..b.len()], b);
            Ok(b.len())
        })?
    }

    /// Pops the next message into a fresh `Vec` (copied with [`copy_from_shared`]).
    ///
    /// # Errors
    /// As for `try_pop_with`.
    pub fn try_pop_vec(&self, me: ParticipantId) -> Result<Vec<u8>, TryPopError> {
        self.try_pop_shared_with(me, |b| {
            let mut v = vec![0; b.len()];
            copy_from_shared(&mut v, b);
            v
        })
    }

    /// Resolves slots claimed by participants that `alive` says are dead: a dead producer's
    /// slot becomes a tombstone that consumers skip, a dead consumer's slot becomes free
    /// again; each is counted as a lost message ([`MpmcRing::lost_writes`],
    /// [`MpmcRing::lost_reads`]). Live participants' slots are never touched (each change is
    /// a CAS from the exact word naming the dead id, which only the dead could have moved).
    ///
    /// Who calls it: anyone, any time; it scans `capacity` words, asks `alive` once per
    /// claimed slot, and is idempotent. A caller stuck on one claim should use
    /// [`stuck_claim`](MpmcRing::stuck_claim) and [`recover_claim`](MpmcRing::recover_claim)
    /// instead (O(1), the same resolution; see the module docs); the scan is for the paths
    /// that look for claims nobody is stuck on yet (disconnect checks, teardown). After a
    /// nonzero report, notify both doorbells. The caller must not let a dead participant's id
    /// be reused before recovery has run (mproc-shm reclaims ids only when its table fills).
    pub fn recover(&self, alive: impl Fn(u32) -> bool) -> RecoveryReport {
        self.recover_scan(alive, None::<fn(DeadClaim<'_>)>)
    }

    /// As [`recover`](MpmcRing::recover), showing `on_dead_claim` the payload of every dead
    /// participant's claim just before it is resolved ([`DeadClaim`]), so the layer above can
    /// free what that payload names (an arena block a producer had staged, or a consumer was
    /// reading).
    pub fn recover_with(
        &self,
        alive: impl Fn(u32) -> bool,
        on_dead_claim: impl FnMut(DeadClaim<'_>),
    ) -> RecoveryReport {
        self.recover_scan(alive, Some(on_dead_claim))
    }

    fn recover_scan<H: FnMut(DeadClaim<'_>)>(
        &self,
        alive: impl Fn(u32) -> bool,
        mut hook: Option<H>,
    ) -> RecoveryReport {
        // A scan anyway: check the hint distance too (module docs, "Corruption"), so a
        // blocked caller that recovers now and then finds hints forged consistently with
        // their slots.
        let _ = self.checked_hints();
        let mut rep = RecoveryReport::default();
        for i in 0..self.cap as usize {
            let ctl = self.ctl(i);
            // Acquire: see the claimant's word as stored.
            let w = ctl.seq.load(Ordering::Acquire);
            // A word naming another slot's position is corrupt: not a claim to resolve.
            if self.index(u64::from(dec(w).0)) != Some(i) {
                continue;
            }
            match self.resolve_dead(i, w, &alive, hook.as_mut()) {
                Some(Recovered::Tombstoned) => rep.tombstoned += 1,
                Some(Recovered::Freed) => rep.freed += 1,
                None => {}
            }
        }
        rep
    }

    /// Slots holding a message or a claim: `WRITING`, `FULL` (not a tombstone) or `READING`,
    /// counted by one pass over every slot word (O(capacity) loads; for rare callers such as
    /// a JoinableQueue's `join`).
    ///
    /// Unlike [`len`](MpmcRing::len), which counts positions between the hints, it sees a
    /// consumer's claim after the head hint has moved past it, and skips tombstones. A message
    /// present during the whole pass is counted (messages never move between slots); a
    /// consumer that records what it took somewhere else *before* releasing its `READING`
    /// claim can therefore be read as "slots first, then the other record" without a moment
    /// where the message is in neither: each slot is loaded with Acquire, which pairs with the
    /// Release store that ends a read.
    pub fn occupied(&self) -> u32 {
        let mut n = 0;
        for i in 0..self.cap as usize {
            // Acquire: see above.
            let w = self.ctl(i).seq.load(Ordering::Acquire);
            n += u32::from(holds_item_or_claim(w));
        }
        n
    }

    /// Whether the ring holds no message and no claim across a moment at which `check` runs
    /// and returns `true`: a pass that finds every slot free (as [`occupied`](MpmcRing::occupied)
    /// counts), then `check`, then a second pass that finds every slot word unchanged.
    ///
    /// One pass is not a snapshot: a consumer can take a message from a slot the pass has
    /// not reached yet and then put a new one into a slot the pass has already left (a
    /// worker putting follow-up work before marking its own task done), and the pass sees
    /// neither. With the second pass, an unchanged word means nothing happened to that slot
    /// between the passes (a word carries 32 bits of its position, so it cannot come back to
    /// the same value within that time), so the ring really was empty when `check` ran.
    /// Loads are Acquire, so whatever `check` observed that happened before a slot's change
    /// is matched by the second pass seeing the change. O(2 × capacity) loads.
    pub fn empty_across(&self, check: impl FnOnce() -> bool) -> bool {
        let mut words = Vec::with_capacity(self.cap as usize);
        for i in 0..self.cap as usize {
            // Acquire: see above.
            let w = self.ctl(i).seq.load(Ordering::Acquire);
            if holds_item_or_claim(w) {
                return false;
            }
            words.push(w);
        }
        if !check() {
            return false;
        }
        words
            .iter()
            .enumerate()
            // Acquire: see above.
            .all(|(i, &w)| self.ctl(i).seq.load(Ordering::Acquire) == w)
    }

    /// One look at the slot that `side` is stuck on, if it is stuck on another participant's
    /// claim: two loads (the hint, then its slot's word), no scan, no liveness question.
    ///
    /// * [`Side::Head`] (call it after a pop said `Empty`): the head slot holds a producer's
    ///   claim of the head's own lap, `WRITING(head, id)`. The head cannot pass it, so every
    ///   message committed behind it waits (and `len` counts them).
    /// * [`Side::Tail`] (after a push said `Full`): the tail slot still holds the previous
    ///   lap's reader, `READING(tail - one_lap, id)` (the same slot one lap earlier, see the
    ///   module docs); the ring looks full only because that reader has not finished.
    ///
    /// `None` when the side is not stuck on a claim: truly empty or full, a committed message
    /// or a tombstone there, a hint that is momentarily behind (the next pop or push helps it
    /// forward), or a word no valid execution shows.
    ///
    /// The answer is a snapshot: a live claimant may finish a moment later. A caller keeps
    /// the returned [`Claim`] and when it first saw it, and only when a later call returns an
    /// equal `Claim` after a short interval hands it to
    /// [`recover_claim`](MpmcRing::recover_claim) (see the module docs).
    #[must_use]
    pub fn stuck_claim(&self, side: Side) -> Option<Claim> {
        let h = self.mem.hdr();
        // Only this side's copy of the flag, on the hint's own line: a poller must not touch
        // the other side's line.
        let own = match side {
            Side::Head => &h.head,
            Side::Tail => &h.tail,
        };
        if own.is_poisoned() {
            // Nothing to recover: every push and pop says `Corrupt`.
            return None;
        }
        let (pos, lap, state) = match side {
            // Acquire: pairs with the AcqRel helping CAS (see `help`), as in `claim_read`.
            Side::Head => (h.head.pos.load(Ordering::Acquire), 0, WRITING),
            // Acquire: as above, as in `claim_write`.
            Side::Tail => (
                h.tail.pos.load(Ordering::Acquire),
                -(self.one_lap as i64),
                READING,
            ),
        };
        // A hint naming no slot is corrupt, not a claim (the pop or push reports it).
        let i = self.index(pos)?;
        // Acquire: the same look a pop (push) at this index takes, ordered after the index
        // load, so a claim reported here is one that pop (push) would have met.
        let w = self.ctl(i).seq.load(Ordering::Acquire);
        let (p, st, id) = dec(w);
        if st != state || dist(p, pos) != lap || id == 0 || id == TOMB {
            return None;
        }
        Some(Claim {
            word: w,
            pos: pos.wrapping_add_signed(lap),
        })
    }

    /// The head position, if the head slot stalls the ring with no claimant (module docs,
    /// "Corruption", invariant 4): the hints say items are queued, yet the head slot's word
    /// is still `EMPTY` for the head's own position. Three loads (head, tail, then the slot,
    /// each Acquire), no side effect; `None` on a poisoned ring or when nothing is stalled.
    /// Equal results over time are the same stall.
    pub fn unclaimed_head(&self) -> Option<u64> {
        let h = self.mem.hdr();
        if h.head.is_poisoned() {
            return None;
        }
        // Acquire (all three): pairs with the AcqRel helping CAS of each hint (see `help`):
        // a tail seen past the head implies its producer's claim of the head slot, which
        // the slot load after it then sees (or a later state of that slot).
        let head = h.head.pos.load(Ordering::Acquire);
        let tail = h.tail.pos.load(Ordering::Acquire);
        if !matches!(self.slots_between(tail, head), Ok(c) if c >= 1) {
            return None;
        }
        let i = self.index(head)?;
        let (p, state, _) = dec(self.ctl(i).seq.load(Ordering::Acquire));
        (state == EMPTY && dist(p, head) == 0).then_some(head)
    }

    /// Recovers `claim` (from [`stuck_claim`](MpmcRing::stuck_claim)) if its claimant is
    /// dead: asks `alive(claim.claimant())` once and, if it says `false`, resolves exactly
    /// that slot by a CAS from exactly the observed word — a producer's claim becomes a
    /// tombstone (counted in [`lost_writes`](MpmcRing::lost_writes)), a consumer's is freed
    /// (counted in [`lost_reads`](MpmcRing::lost_reads)) — the same resolution
    /// [`recover`](MpmcRing::recover) applies to each slot it scans.
    ///
    /// Returns what it did, or `None` when the claimant is alive or the word has moved on
    /// (the claimant finished, or someone else recovered it: then `alive` is not asked at
    /// all). Never touches a live claimant's slot, never resolves a slot twice, and costs one
    /// load plus, for a dead claimant, one CAS.
    ///
    /// After `Some`, notify both doorbells (sleepers on either side may now proceed) and
    /// retry the pop or push at once: consumers skip the tombstone, producers claim the freed
    /// slot. Call it only for a claim seen stuck for a while (an equal `Claim` from two
    /// `stuck_claim` calls a short interval apart): each call asks liveness, which may cost a
    /// system call. As for `recover`, a dead participant's id must not be reused before
    /// recovery has run.
    #[must_use]
    pub fn recover_claim(&self, claim: Claim, alive: impl Fn(u32) -> bool) -> Option<Recovered> {
        self.recover_one(claim, alive, None::<fn(DeadClaim<'_>)>)
    }

    /// As [`recover_claim`](MpmcRing::recover_claim), with the hook of
    /// [`recover_with`](MpmcRing::recover_with).
    pub fn recover_claim_with(
        &self,
        claim: Claim,
        alive: impl Fn(u32) -> bool,
        on_dead_claim: impl FnMut(DeadClaim<'_>),
    ) -> Option<Recovered> {
        self.recover_one(claim, alive, Some(on_dead_claim))
    }

    fn recover_one<H: FnMut(DeadClaim<'_>)>(
        &self,
        claim: Claim,
        alive: impl Fn(u32) -> bool,
        mut hook: Option<H>,
    ) -> Option<Recovered> {
        // A claim from a ring of another capacity may name no slot here.
        let i = self.index(claim.pos)?;
        // Acquire: as in `recover`.
        let w = self.ctl(i).seq.load(Ordering::Acquire);
        if w != claim.word {
            return None;
        }
        self.resolve_dead(i, w, alive, hook.as_mut())
    }

    /// Resolves one slot whose word was just seen to be `w`, if `w` is a claim whose claimant
    /// `alive` says is dead: the one routine behind both `recover` (each slot) and
    /// `recover_claim` (one slot). Asks `alive` at most once, and only about a claim. Changes
    /// the slot only by a CAS from `w`, which nobody but the claimant (dead) or another
    /// recoverer moves: a live participant's slot is never touched, and a slot is resolved
    /// and counted once.
    fn resolve_dead<H: FnMut(DeadClaim<'_>)>(
        &self,
        i: usize,
        w: u64,
        alive: impl Fn(u32) -> bool,
        hook: Option<&mut H>,
    ) -> Option<Recovered> {
        let ctl = self.ctl(i);
        let h = self.mem.hdr();
        let (p, st, id) = dec(w);
        if id == 0 || id == TOMB {
            return None;
        }
        let p = u64::from(p);
        let (resolved, lost, done) = match st {
            WRITING => (enc(p, FULL, TOMB), &h.lost_writes, Recovered::Tombstoned),
            READING => (
                enc(self.lap_after(p), EMPTY, 0),
                &h.lost_reads,
                Recovered::Freed,
            ),
            _ => return None,
        };
        if alive(id as u32) {
            return None;
        }
        if let Some(hook) = hook {
            // Before the resolving CAS: while the word says `WRITING(dead)` or
            // `READING(dead)` nobody writes the payload (its claimant is dead; consumers wait
            // behind a write, and the next lap's producer cannot claim either). But another
            // recoverer may resolve the slot between our load of `w` and our read, and the
            // next lap's producer refill it: so the payload is copied with atomic reads
            // (`copy_from_shared`: never assumed stable) and shown only if the word is still
            // `w` afterwards, as a seqlock reader does. Racing recoverers may both show it;
            // the hook must be idempotent (it acts by CAS on what the payload names).
            let token = self.mem.guard(i).read();
            let base = NonNull::new(self.payload(i)).expect("payload pointer is non-null");
            let mut copy = vec![0u8; self.slot as usize];
            // SAFETY: the slot's payload run (checked index, `slot` bytes), alive as long as
            // `self`; read only atomically here, and the copy is used only if the word proves
            // it was not being written (below).
            copy_from_shared(&mut copy, unsafe { shared_bytes(base, self.slot as usize) });
            crate::sync::end(token);
            // Acquire: pairs with the Release that moved the word on, so a changed word is seen.
            if ctl.seq.load(Ordering::Acquire) != w {
                return None;
            }
            hook(DeadClaim {
                stamp: p as u32,
                side: if st == WRITING {
                    Side::Tail
                } else {
                    Side::Head
                },
                payload: &copy,
            });
        }
        // Release: a tombstone pairs with the Acquire of the consumer that skips it; a freed
        // slot with the next producer's Acquire claim.
        ctl.seq
            .compare_exchange(w, resolved, Ordering::Release, Ordering::Relaxed)
            .ok()?;
        // Relaxed: a statistic.
        lost.fetch_add(1, Ordering::Relaxed);
        Some(done)
    }
}
