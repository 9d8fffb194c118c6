//! [`Queue<T>`]: Python's `multiprocessing.Queue`, a bounded MPMC queue of typed messages in
//! shared memory, over `mproc-ring`'s MPMC ring.
//!
//! # Python → mproc
//!
//! | Python | mproc |
//! |---|---|
//! | `Queue(maxsize)` | [`Queue::new`] / [`Queue::with_capacity`] / [`Queue::builder`] (bounded; the capacity is exact: `full()` at `maxsize`) |
//! | `put(item)` | [`Queue::put`] (blocks while full) |
//! | a loop of `put` / `get` | [`Queue::put_many`], [`Queue::put_many_nowait`], [`Queue::get_many`] (one notification per batch) |
//! | `put(item, timeout=t)` | [`Queue::put_timeout`] |
//! | `put_nowait(item)` / `queue.Full` | [`Queue::put_nowait`] / [`TryPutError::Full`] (the item comes back) |
//! | `get()` | [`Queue::get`] (blocks while empty) |
//! | `get(timeout=t)` / `get_nowait()` / `queue.Empty` | [`Queue::get_timeout`] / [`Queue::get_nowait`] / [`TryGetError::Empty`] |
//! | — | [`Queue::get_ref`]: the archived value in place, zero copy |
//! | `qsize()`, `empty()`, `full()` | [`Queue::qsize`], [`Queue::empty`], [`Queue::full`] (snapshots, as in Python) |
//! | `close()` | [`Queue::close`] (this handle stops being a holder; later use is [`GetError::Closed`]) |
//! | `Process(target, args=(q,))` | pass the queue (or a `clone()`) in `Process` args |
//! | — | [`Queue::lost`]: in-flight items lost to dead processes |
//!
//! # Disconnected: how a blocked consumer learns nobody can ever put
//!
//! Every handle (each `clone`, each one passed to a child) counts as a *holder* in shared
//! memory, per process. A [`Queue::get`] on an **empty** queue returns
//! [`GetError::Disconnected`] exactly when no *other* live handle could put: every other
//! handle was dropped or closed, lives in a process that died (noticed within 50 ms, with
//! no cleanup by anyone), or is itself blocked in an untimed [`Queue::get`] on this empty
//! queue (a wait that could otherwise never end: so several consumers all finish once the
//! producers are gone). Handles in `get_timeout` are not counted as blocked: they may put
//! after their timeout. Other handles of the same process (clones in other threads) count
//! like any other. Likewise a [`Queue::put`] on a **full** queue returns
//! [`PutError::Disconnected`] when no other handle could ever get. Items already in the
//! queue are always delivered first. This is what lets the seed's consumer finish: the
//! producer process exits, the parent moved (not cloned) its handle into the consumer, so
//! the consumer's handle is the last one.
//!
//! `Queue` is `Send` but not `Sync`: threads each hold their own `clone()`, which keeps
//! the count exact (with a shared `&Queue`, one thread's `get` could not tell another
//! thread's coming `put` apart from nobody). A handle a child inherited through `fork`
//! without being passed in its args is *disowned*: it does not count, and using it reports
//! `Closed`. For a **named** queue another process may open it later: there
//! `Disconnected` means "no other holder when the queue was found empty".
//!
//! # Crashes
//!
//! A process SIGKILLed mid-`put` or mid-`get` leaves a ring slot claim naming it. Nobody
//! stalls behind it: **recovery is every caller's job.** Any call held up by a claim on the
//! one slot it needs — `get`, `get_timeout`, `get_nowait`, `qsize`, `empty` (the head slot,
//! a producer's claim), `put`, `put_timeout`, `put_nowait`, `full` (the tail slot, a
//! consumer's claim), the batch calls — remembers that claim and, once it has seen the same
//! claim there for 20 ms, asks whether the claimant lives (a system call, at most once per
//! 20 ms per stuck claim) and if not resolves that one slot: a dead producer's slot becomes a
//! tombstone that consumers skip, a dead consumer's slot is freed. So a pure `get_nowait`
//! poller receives every item committed behind a dead producer's claim. Sleepers also run a
//! full recovery pass after each 50 ms slice, and a call that finds no other live handle
//! does before it reports `Disconnected`. While a dead claim is not yet recovered, `qsize`
//! counts it as an item.
//!
//! **What [`Queue::lost`] counts**, exactly: items whose slot claim was resolved because
//! the process holding it died — a producer that died after claiming its slot and before
//! committing the item (the item never became visible), and a consumer that died after
//! claiming a committed item and before its `get` released the slot — plus items whose
//! [`Queue::get_ref`] guard died with its process (below). A consumer keeps its
//! claim until the item is in its private memory (copied, validated, deserialised; an
//! out-of-line message's arena block is freed then too), so a consumer dying anywhere in
//! `get` before that point is counted. `lost()` never counts an item that was delivered, and
//! a recovered producer claim counts once.
//!
//! **What is not counted:**
//! * a consumer that dies after its slot's release and before `get` returns (the value
//!   existed only in the dead process's memory). That window is a few instructions plus,
//!   when a producer sleeps waiting for room, the system call that wakes it (the wake must
//!   follow the release, or the producer could miss it), so under a storm of kills it is hit
//!   more often than its length in instructions suggests; `cargo xtask torture` counts such
//!   kills and allows one loss for each;
//! * a producer that dies while *blocked* in `put`: the item never entered the queue, so
//!   nothing was lost from it;
//! * a consumer killed between a [`Queue::get_ref`]'s slot release and the moment its guard
//!   marks the arena block as held (a few instructions): the block leaks, uncounted.
//!
//! Out-of-line messages leak no arena block when a producer dies: the block is marked as the
//! producer's while it is filled, handed to the slot (marked with the slot's stamp) inside the
//! slot claim just before the commit, and recovery frees a dead producer's block whichever
//! side of that hand-off it died on (`mproc_shm::Arena`, "Held blocks"); the lost write is
//! counted as above, a producer that died before claiming a slot loses nothing.
//!
//! A consumer killed while *holding* a [`Queue::get_ref`] guard is counted: the guard holds
//! no slot, but its arena block is marked held by the guard's process, and the next
//! recovery pass (a blocked caller's 50 ms slice, a `Disconnected` check, a JoinableQueue's
//! `join`) frees the block and counts the item in `lost()`.
//!
//! Items other processes committed are never lost or duplicated.
//!
//! # Messages
//!
//! Any [`Message`] (rkyv) type. An encoded message that fits the slot
//! ([`QueueBuilder::slot_size`], default 127 bytes) travels inline in the ring; a larger one
//! goes out of line in the queue's arena ([`QueueBuilder::arena_size`], default 1 MiB) and
//! the slot carries its offset. Sending encodes into a reusable per-handle buffer, then
//! copies into the slot: no slot is held while user `Serialize` code runs. Receiving copies
//! the bytes into private memory and validates the copy (safe against hostile peers);
//! [`Queue::get_ref`] validates out-of-line messages in place (zero copy; safe against buggy
//! but not hostile peers).
//!
//! # Corruption
//!
//! The ring under the queue checks named invariants on its shared words (its head and tail
//! hints and slot words; `mproc_ring::mpmc`, "Corruption"). A put or get that finds one
//! broken fails with [`MessageError::Corrupt`] — never "full", "empty" or a timeout — and
//! the queue stays corrupt: every later put and get, from any handle, fails the same way
//! ([`Queue::corrupt`] counts the detections). A stall with nobody to blame is corruption
//! too: items queued by the ring's hints while the head slot was never claimed, seen by a
//! consumer for a second (`mproc_ring::mpmc`, "Corruption", invariant 4), poisons the queue
//! instead of leaving every `get` to time out in silence. So does a corrupt arena (its
//! heap-invariant checker is [`Queue::arena_check`]). A hostile peer can still forge a
//! consistent state (other messages than were sent), which no check can tell from a real
//! one.
#![allow(unsafe_code)]

mod error;
mod pass;
mod stuck;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use mproc_futex::Deadline;
use mproc_ring::{DeadClaim, MpmcRing, MpmcShape, Side, TryPopError, TryPushError};
use mproc_shm::{Arena, ArenaError, Offset};
use rkyv::Archived;
use rkyv::util::AlignedVec;

pub use error::{
    BatchPutError, GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};

use crate::handle::Owner;
use crate::message::{self, ARCHIVE_ALIGN, Message, MessageError, Scratch};
use crate::object::wait::{self, Outcome, Round};
use crate::object::{self, Object, ObjectKind, ObjectSpec, OpenError};
use stuck::StuckWatch;

/// Holder role: handles (every handle can put and get).
const ROLE: u32 = 0;
/// Holder role: handles blocked in an untimed `get()` on an empty queue.
const BLOCKED_GET: u32 = 1;
/// Holder role: handles blocked in an untimed `put()` on a full queue.
const BLOCKED_PUT: u32 = 2;
/// Holder roles of a queue object.
const ROLES: u32 = 3;
/// Last byte of a slot: the archive is inline, before it.
const TAG_INLINE: u8 = 0x51;
/// Last byte of a slot: 16 bytes before it are `(offset: u64, len: u64)` (LE) of an arena
/// block holding the archive.
const TAG_ARENA: u8 = 0xA7;
const DESC_LEN: usize = 16;

/// The arena descriptor of a slot: `(offset, len)` as 16 little-endian bytes.
fn desc_encode(off: u64, len: u64) -> [u8; DESC_LEN] {
    let mut d = [0u8; DESC_LEN];
    d[..8].copy_from_slice(&off.to_le_bytes());
    d[8..].copy_from_slice(&len.to_le_bytes());
    d
}

/// `(offset, len)` from the first [`DESC_LEN`] bytes of `b` (untrusted), if it has them.
fn desc_decode(b: &[u8]) -> Option<(u64, u64)> {
    let d: &[u8; DESC_LEN] = b.get(..DESC_LEN)?.try_into().ok()?;
    let (off, len) = d.split_at(8);
    Some((
        u64::from_le_bytes(off.try_into().ok()?),
        u64::from_le_bytes(len.try_into().ok()?),
    ))
}

/// Default number of slots.
pub const DEFAULT_CAPACITY: u32 = 256;
/// Default largest inline message, in bytes (the ring slot is one byte more).
pub const DEFAULT_SLOT_SIZE: u32 = 127;
/// Default [`QueueBuilder::arena_size`]: the largest message the default arena holds, in
/// bytes (its blocks then take exactly 1 MiB).
pub const DEFAULT_ARENA_SIZE: u64 = (1 << 20) - 16;

/// What every handle of one queue in this process shares.
struct Shared {
    obj: Object,
    ring: MpmcRing,
    arena: Arena,
}

impl Shared {
    fn bells(&self) -> [&mproc_ring::Doorbell; 2] {
        [self.ring.items_doorbell(), self.ring.space_doorbell()]
    }

    /// A dead participant's claim is about to be resolved: free the arena block its payload
    /// names, if the block is still handed to exactly that slot (`Arena::reclaim_queued`;
    /// the payload is untrusted, a producer's may be half written). A dead producer's block
    /// was never delivered; a dead consumer's was being read (the ring counts the item in
    /// `lost()`), or already freed by it (then the stamp no longer matches).
    fn free_staged(&self, dead: DeadClaim<'_>) {
        let p = dead.payload;
        if p.get(DESC_LEN) != Some(&TAG_ARENA) {
            return;
        }
        let Some((off, _)) = desc_decode(p) else {
            return;
        };
        if let Ok(me) = self.obj.me() {
            // Err is a corrupt arena, which the next allocation or free reports.
            let _ = self
                .arena
                .reclaim_queued(Offset::new(off), dead.stamp, me.get());
        }
    }

    /// Resolves dead participants' claims in the ring (a scan), then frees the arena blocks
    /// that dead `get_ref` guards held or dead producers were filling (a walk, skipped while
    /// no block is marked); wakes both
    /// sides if anything was freed.
    fn recover(&self) {
        let rep = self
            .ring
            .recover_with(self.obj.liveness(), |dead| self.free_staged(dead));
        let mut freed = u64::from(rep.tombstoned + rep.freed);
        if let Ok(me) = self.obj.me() {
            let before = self.arena.walk_freed();
            // An error is a corrupt arena, which the next allocation or free reports.
            let _ = self.arena.reclaim_dead(self.obj.liveness(), me.get());
            // Any block freed (a dead producer's `WRITING` one too, which is not counted in
            // `lost()`) is room a waiting producer can use.
            freed += self.arena.walk_freed().wrapping_sub(before);
        }
        if freed > 0 {
            wait::wake_all(&self.bells());
        }
    }
}

/// How a queue's arena is used ([`Queue::arena_stats`], [`Queue::arena_check`]).
/// Out-of-line messages (larger than a slot) each take one block, rounded up to a power of
/// two with a 16-byte header; free blocks merge with their buddies, so with no message out of
/// line `largest_message_now` is `max_message` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Bytes the arena can give to blocks.
    pub capacity: u64,
    /// Bytes in blocks now allocated: messages in the queue or being put or read, `get_ref`
    /// guards, and blocks leaked by a process killed in the window described below.
    pub in_use_bytes: u64,
    /// Those blocks.
    pub in_use_blocks: u64,
    /// Of those, blocks recorded to no process and no slot. Every block a queue operation
    /// holds is recorded (to its producer, its slot or its `get_ref` guard) from the moment
    /// the allocator hands it out, except a consumer's block in the few instructions between
    /// its slot's release and its `get_ref` guard recording it; so when every process that
    /// used the queue is gone and a recovery pass has run, these are blocks leaked by a
    /// process killed right there.
    pub in_use_unowned_blocks: u64,
    /// The largest encoded message that would find room now.
    pub largest_message_now: usize,
    /// The largest encoded message the arena can ever hold (a larger one is
    /// [`MessageError::TooLarge`] at once).
    pub max_message: usize,
}

/// A handle to a shared, bounded, multi-producer multi-consumer queue of `T`s — Python's
/// `multiprocessing.Queue`. See the [module docs](self) for the holder rule, crashes and
/// message sizes.
///
/// # Example
///
/// ```
/// use mproc::queue::{Queue, TryGetError};
///
/// let q: Queue<String> = Queue::new()?;
/// q.put("hello".to_string()).unwrap();
/// assert_eq!(q.qsize(), 1);
/// assert_eq!(q.get().unwrap(), "hello");
/// assert_eq!(q.get_nowait(), Err(TryGetError::Disconnected)); // empty, and no other handle
/// let other = q.clone();
/// assert_eq!(q.get_nowait(), Err(TryGetError::Empty)); // `other` could still put
/// # drop(other);
/// # Ok::<(), mproc::OpenError>(())
/// ```
pub struct Queue<T: Message> {
    shared: Arc<Shared>,
    owner: Owner,
    closed: Cell<bool>,
    /// This process's ring participant id, cached with the fork epoch it was looked up in
    /// (a forked child's copy sees another epoch and looks it up again).
    me: Cell<Option<(u64, mproc_ring::ParticipantId)>>,
    /// This handle's encode/receive workspace (steady state allocates nothing; a
    /// re-entrant use, e.g. a `Serialize` impl that puts on the same handle, gets a fresh one).
    scratch: RefCell<Scratch>,
    /// The claims this handle last saw holding up a `get` (head) and a `put` (tail).
    stuck: [StuckWatch; 2],
    _t: PhantomData<fn(T) -> T>,
}

/// Options for a new [`Queue`] (Python: the `maxsize` argument, and more).
#[derive(Debug, Clone)]
pub struct QueueBuilder<T> {
    capacity: u32,
    slot_size: u32,
    arena_size: u64,
    participants: Option<u32>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T: Message> Default for QueueBuilder<T> {
    fn default() -> Self {
        QueueBuilder {
            capacity: DEFAULT_CAPACITY,
            slot_size: DEFAULT_SLOT_SIZE,
            arena_size: DEFAULT_ARENA_SIZE,
            participants: None,
            _t: PhantomData,
        }
    }
}

impl<T: Message> QueueBuilder<T> {
    /// Most items in the queue at once (Python's `maxsize`), exactly: `full()` is true at
    /// `items`, and `qsize()` never exceeds it. At least 1 (0 is taken as 1), at most
    /// 2^30. Default [`DEFAULT_CAPACITY`].
    pub fn capacity(mut self, items: u32) -> Self {
        self.capacity = items;
        self
    }

    /// Largest encoded message carried inline in a slot; larger ones go through the arena.
    /// Default [`DEFAULT_SLOT_SIZE`].
    pub fn slot_size(mut self, bytes: u32) -> Self {
        self.slot_size = bytes;
        self
    }

    /// The largest message, in bytes (encoded), that the queue's arena for messages larger
    /// than a slot must hold (0: no arena, so such messages are refused). Default
    /// [`DEFAULT_ARENA_SIZE`].
    ///
    /// The arena is a buddy allocator (`mproc_shm::arena`): each out-of-line message takes
    /// one block of its encoded length plus a 16-byte header, rounded up to a power of two
    /// (at least 64 bytes), and free blocks merge back with their buddies, so the arena never
    /// drifts. It is sized so that `bytes` holds: its blocks take `(bytes + 16)` rounded up to
    /// a power of two (plus 3,456 bytes of its own header), and **whenever no other message is
    /// out of line, any message of up to `bytes` bytes fits** — exactly up to that power of
    /// two minus 16, which [`Queue::arena_stats`] reports as `max_message`. A larger message
    /// is [`MessageError::TooLarge`] at once. Messages that are in flight together share the
    /// arena: a put that finds no block large enough waits for one to come free (a consumer's
    /// get frees its message's block and wakes it), and its timeout says so
    /// ([`PutTimeoutError::ArenaFull`]). The pages of the arena are touched only as blocks
    /// are used.
    pub fn arena_size(mut self, bytes: u64) -> Self {
        self.arena_size = bytes;
        self
    }

    /// How many processes can use the queue at once (the segment's participant table).
    pub fn participants(mut self, processes: u32) -> Self {
        self.participants = Some(processes);
        self
    }

    /// Creates an anonymous queue (shared with children through `Process` args).
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidOptions`], or a segment error.
    pub fn create(self) -> Result<Queue<T>, OpenError> {
        self.build(None)
    }

    /// Creates a queue named `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::names`]) (`O_EXCL`, mode 0600), which unrelated
    /// processes open with [`Queue::open_named`]. The name stays until
    /// [`Queue::unlink`].
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`]; an existing name is [`OpenError::Segment`]
    /// (`AlreadyExists`).
    pub fn create_named(self, name: &str) -> Result<Queue<T>, OpenError> {
        self.build(Some(name))
    }

    fn build(self, name: Option<&str>) -> Result<Queue<T>, OpenError> {
        // Exact (the ring takes any capacity in range); too large is refused below.
        let capacity = self.capacity.max(1);
        let ring_slot = self.slot_size.saturating_add(1).max(DESC_LEN as u32 + 1);
        let shape = MpmcShape {
            capacity,
            slot_size: ring_slot,
        };
        let ring_len =
            MpmcRing::required_size(shape).map_err(|e| OpenError::InvalidOptions(e.to_string()))?;
        let arena_len = if self.arena_size == 0 {
            0
        } else {
            // One top block: the power of two that holds `arena_size` bytes and a header.
            let blocks = self
                .arena_size
                .checked_add(16)
                .and_then(u64::checked_next_power_of_two)
                .filter(|&b| b <= mproc_shm::arena::MAX_ARENA_LEN / 2)
                .ok_or_else(|| OpenError::InvalidOptions("arena_size is too large".into()))?;
            mproc_shm::arena::ARENA_HEADER + blocks.max(64)
        };
        let tname = type_name::<T>();
        let spec = ObjectSpec {
            kind: ObjectKind::Queue,
            fingerprint: fingerprint::<T>(),
            type_name: &tname,
            roles: ROLES,
            regions: &[ring_len as u64, arena_len],
        };
        let obj = Object::create(&spec, name, self.participants, |obj| {
            let r = obj.region(0).expect("two regions");
            // SAFETY: the sub-region is 128-aligned, `len` bytes inside the mapping (which
            // `obj` keeps alive, and the `Shared` built below keeps `obj`), freshly zeroed
            // and not yet published to anyone else.
            unsafe { MpmcRing::init(r.ptr, r.len as usize, shape) }
                .map_err(|e| OpenError::Corrupt(e.to_string()))?;
            let a = obj.region(1).expect("two regions");
            if a.len > 0 {
                Arena::init(obj.segment().clone(), a.offset, a.len)?;
            }
            Ok(())
        })?;
        Queue::from_object(obj)
    }
}

fn type_name<T>() -> String {
    format!("Queue<{}>", std::any::type_name::<T>())
}

fn fingerprint<T: Message>() -> u64 {
    object::fingerprint(ObjectKind::Queue, &message::type_tag::<T>())
}

impl<T: Message> Queue<T> {
    /// A queue with the default options ([`DEFAULT_CAPACITY`] items). Python: `Queue()`
    /// (which is unbounded; mproc queues are bounded shared memory).
    ///
    /// # Errors
    ///
    /// A segment error (out of memory, too many open files).
    pub fn new() -> Result<Queue<T>, OpenError> {
        Self::builder().create()
    }

    /// A queue of at most `capacity` items, exactly (0 is taken as 1). Python:
    /// `Queue(maxsize)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    pub fn with_capacity(capacity: u32) -> Result<Queue<T>, OpenError> {
        Self::builder().capacity(capacity).create()
    }

    /// Options for a new queue.
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder::default()
    }

    /// Opens the named queue `name` that another process created with
    /// [`QueueBuilder::create_named`], checking that it holds `T`s.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`] if it is not a `Queue<T>` (e.g. a `Queue<u64>` opened as
    /// `Queue<String>`); [`OpenError::Segment`] (`NotFound`, ...), [`OpenError::NotReady`],
    /// [`OpenError::Corrupt`].
    pub fn open_named(name: &str) -> Result<Queue<T>, OpenError> {
        let obj = Object::open_named(
            name,
            ObjectKind::Queue,
            fingerprint::<T>(),
            &type_name::<T>(),
            ROLES,
        )?;
        Queue::from_object(obj)
    }

    /// Removes the name `name` from `/dev/shm`; open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] (`NotFound`, ...).
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        crate::names::unlink(name)
    }

    /// Removes this named queue's name; open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] (also for an anonymous queue).
    pub fn unlink(&self) -> Result<(), OpenError> {
        self.shared
            .obj
            .segment()
            .unlink()
            .map_err(OpenError::Segment)
    }

    /// Attaches to the ring and arena of an object and becomes a holder.
    fn from_object(obj: Object) -> Result<Queue<T>, OpenError> {
        let r = obj
            .region(0)
            .ok_or_else(|| OpenError::Corrupt("no ring region".into()))?;
        // SAFETY: the sub-region was validated to lie inside the mapping, 128-aligned; the
        // mapping lives as long as `obj`, which the `Shared` holding the ring keeps.
        let ring = unsafe { MpmcRing::attach(r.ptr, r.len as usize) }
            .map_err(|e| OpenError::Corrupt(format!("ring: {e}")))?;
        #[cfg(feature = "test-hooks")]
        let ring = ring.with_fault_hook(crate::fault::at_claim);
        if ring.slot_size() as usize <= DESC_LEN {
            return Err(OpenError::Corrupt("ring slot too small".into()));
        }
        let a = obj
            .region(1)
            .ok_or_else(|| OpenError::Corrupt("no arena region".into()))?;
        let arena = if a.len > 0 {
            Arena::attach(obj.segment().clone(), a.offset, a.len)?
        } else {
            // A queue without an arena: a tiny private one that never fits a message
            // would be odd; refuse out-of-line messages instead (see `stage`).
            return Err(OpenError::InvalidOptions("a queue needs an arena".into()));
        };
        obj.acquire(ROLE)?;
        Ok(Queue {
            shared: Arc::new(Shared { obj, ring, arena }),
            owner: Owner::current(),
            closed: Cell::new(false),
            me: Cell::new(None),
            scratch: RefCell::new(Scratch::new()),
            stuck: Default::default(),
            _t: PhantomData,
        })
    }

    /// Whether this handle may be used: not closed, and held by this process.
    fn usable(&self) -> bool {
        !self.closed.get() && self.owner.is_current()
    }

    /// The per-call entry check: `Ok(None)` when the handle is not [usable](Self::usable),
    /// else this process's ring id — cached per handle and fork epoch, so the steady state
    /// costs one epoch read instead of the segment's participant lookup.
    fn enter(&self) -> Result<Option<mproc_ring::ParticipantId>, OpenError> {
        if self.closed.get() {
            return Ok(None);
        }
        let epoch = crate::handle::epoch();
        if !self.owner.held_in(epoch) {
            return Ok(None);
        }
        if let Some((e, id)) = self.me.get()
            && e == epoch
        {
            return Ok(Some(id));
        }
        let id = self.shared.obj.ring_id()?;
        self.me.set(Some((epoch, id)));
        Ok(Some(id))
    }

    /// Recovery by every caller: if `side` has been held up by the same dead participant's
    /// claim for a while (as this handle saw it), resolves that one slot and wakes every
    /// sleeper. `true` when a slot was recovered (retry at once).
    fn unstick(&self, side: Side) -> bool {
        let sh = &*self.shared;
        let watch = &self.stuck[usize::from(side == Side::Tail)];
        let staged = |dead: DeadClaim<'_>| sh.free_staged(dead);
        let resolved = watch
            .unstick(&sh.ring, side, sh.obj.liveness(), staged)
            .is_some()
            || (side == Side::Head && watch.stalled(&sh.ring));
        if resolved {
            wait::wake_all(&sh.bells());
        }
        resolved
    }

    /// Runs `f` with this handle's [`Scratch`] (reset); a re-entrant call gets a fresh one.
    fn with_scratch<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        match self.scratch.try_borrow_mut() {
            Ok(mut s) => {
                s.reset();
                f(&mut s)
            }
            Err(_) => f(&mut Scratch::new()),
        }
    }

    /// Number of slots: the `maxsize` given, exactly (0 taken as 1).
    pub fn capacity(&self) -> u32 {
        self.shared.ring.capacity()
    }

    /// Approximate number of items in the queue. Python: `qsize()` (also approximate
    /// there); exact when nobody is mid-operation.
    ///
    /// A dead producer's claim on the head slot counts as an item until it is recovered; like
    /// `get_nowait`, `qsize` recovers a claim it has seen stuck for a while (see the module
    /// docs, "Crashes").
    pub fn qsize(&self) -> usize {
        self.unstick(Side::Head);
        self.shared.ring.len() as usize
    }

    /// Whether the queue looks empty. Python: `empty()` (same caveat as `qsize`).
    pub fn empty(&self) -> bool {
        self.unstick(Side::Head);
        self.shared.ring.is_empty()
    }

    /// Whether the queue looks full. Python: `full()` (same caveat as `qsize`).
    pub fn full(&self) -> bool {
        self.unstick(Side::Tail);
        self.shared.ring.is_full()
    }

    /// In-flight items lost because the process putting or getting them died mid-operation
    /// (since the queue was created): exactly the slot claims recovered from dead processes
    /// (see the module docs, "Crashes", for what is and is not counted). No Python
    /// counterpart.
    pub fn lost(&self) -> u64 {
        self.shared.ring.lost_writes()
            + self.shared.ring.lost_reads()
            + self.shared.arena.held_reclaimed()
    }

    /// How the queue's arena (where messages larger than a slot travel) is used now: a
    /// snapshot for sizing [`QueueBuilder::arena_size`], safe to take while others put and
    /// get. No Python counterpart.
    ///
    /// # Errors
    ///
    /// [`MessageError::Corrupt`] if the arena's block headers are corrupt.
    pub fn arena_stats(&self) -> Result<ArenaStats, MessageError> {
        let a = &self.shared.arena;
        let u = a.usage().map_err(|e| self.arena_error(e))?;
        Ok(ArenaStats {
            capacity: u.capacity,
            in_use_bytes: u.allocated_bytes,
            in_use_blocks: u.allocated_blocks,
            in_use_unowned_blocks: u.allocated_by_mark[0],
            largest_message_now: usize::try_from(u.largest_alloc_now).unwrap_or(usize::MAX),
            max_message: a.max_alloc(),
        })
    }

    /// Runs the arena's heap-invariant checker (`mproc_shm::Arena::check`: blocks tile the
    /// arena, every free block is listed once, no two free buddies are left unmerged, no
    /// interrupted call is left undone) and returns what it saw. It walks every block under
    /// the arena's guard, so other puts and gets of large messages wait for one walk: a
    /// diagnostic (the torture suite runs it under SIGKILL storms), not for hot paths. No
    /// Python counterpart.
    ///
    /// # Errors
    ///
    /// [`MessageError::Corrupt`] if an invariant is broken (the queue is then corrupt for
    /// good, as for a corrupt ring); [`MessageError::Encode`] if this process cannot
    /// register in the queue's segment.
    pub fn arena_check(&self) -> Result<ArenaStats, MessageError> {
        let a = &self.shared.arena;
        let s = a.check().map_err(|e| self.arena_error(e))?;
        Ok(ArenaStats {
            capacity: s.capacity,
            in_use_bytes: s.allocated_bytes,
            in_use_blocks: s.allocated_blocks,
            in_use_unowned_blocks: s.allocated_blocks - s.marked_blocks,
            largest_message_now: usize::try_from(s.largest_free_block.saturating_sub(16))
                .unwrap_or(usize::MAX),
            max_message: a.max_alloc(),
        })
    }

    /// The queue's error for an arena failure: a corrupt arena poisons the queue's ring, so
    /// the queue stays corrupt (and counts the detection); the others are refusals.
    fn arena_error(&self, e: ArenaError) -> MessageError {
        match e {
            ArenaError::Corrupt { .. } => {
                self.shared.ring.report_corrupt();
                MessageError::Corrupt
            }
            ArenaError::TooLarge { size, .. } => MessageError::TooLarge {
                len: size,
                max: self.shared.arena.max_alloc(),
            },
            other => MessageError::Encode(other.to_string()),
        }
    }

    /// Times the queue's ring was found corrupt (a buggy or hostile peer broke one of its
    /// named invariants, see `mproc_ring::mpmc`, "Corruption"; a dropped message is one).
    /// The first detection makes the queue corrupt for good: every later put and get, from
    /// any handle, fails with [`MessageError::Corrupt`]. Messages rejected by validation
    /// of their bytes alone (a bad tag or archive, [`MessageError::Invalid`]) are not
    /// counted here.
    pub fn corrupt(&self) -> u64 {
        self.shared.ring.corrupt_count()
    }

    /// Handles held by live processes, this one included (a snapshot).
    pub fn holders(&self) -> u32 {
        self.shared.obj.live_holders(ROLE)
    }

    /// Stops this handle being a holder (Python: `close()`); later calls on it report
    /// `Closed`. Idempotent; dropping the handle does the same.
    pub fn close(&self) {
        if self.usable() {
            self.closed.set(true);
            self.shared.obj.release(ROLE);
            wait::wake_all(&self.shared.bells());
        }
        self.closed.set(true);
    }

    /// Whether [`Queue::close`] was called on this handle.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

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

    // ------------------------------------------------------------------------------------
    // put

    /// Puts `item`, blocking while the queue is full. Python: `put(item)`.
    ///
    /// # Errors
    ///
    /// [`PutError::Disconnected`] (full, and no other handle can ever get),
    /// [`PutError::Closed`], [`PutError::Message`]. The item comes back in each.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None, true)
            .map_err(untimed_put_error)
    }

    /// Puts `item`, blocking at most `timeout` while the queue is full. Python:
    /// `put(item, timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] (Python's `queue.Full`), and as [`Queue::put`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_deadline(item, Some(Deadline::after(timeout)), true)
    }

    /// Puts `item` if there is room now. Python: `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] (Python's `queue.Full`), [`TryPutError::Disconnected`] (full,
    /// and no other handle can ever get), [`TryPutError::Closed`], [`TryPutError::Message`].
    /// The item comes back in each.
    pub fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
        self.put_deadline(item, Some(Deadline::now()), false)
            .map_err(nowait_put_error)
    }

    // ------------------------------------------------------------------------------------
    // batches

    /// Puts every item of `items` in order, blocking while the queue is full, and returns
    /// how many were put. Python: a loop of `put(item)`; here consumers are notified once
    /// per run of items that fit (and before blocking), not once per item.
    ///
    /// # Errors
    ///
    /// The first item that fails stops the batch: [`BatchPutError`] says how many were put
    /// before it and carries its [`PutError`] (with the item). Later items stay in the
    /// iterator.
    ///
    /// # Example
    ///
    /// ```
    /// let q: mproc::Queue<u64> = mproc::Queue::new()?;
    /// assert_eq!(q.put_many(0..10).unwrap(), 10);
    /// let mut out = Vec::new();
    /// assert_eq!(q.get_many(&mut out, 64).unwrap(), 10);
    /// assert_eq!(out, (0..10).collect::<Vec<_>>());
    /// # Ok::<(), mproc::OpenError>(())
    /// ```
    pub fn put_many<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, BatchPutError<PutError<T>>> {
        self.put_batch(items, None, true, untimed_put_error)
    }

    /// Puts items of `items` in order while there is room now, without blocking; returns
    /// how many were put (all of them, or an error).
    ///
    /// # Errors
    ///
    /// [`BatchPutError`] with [`TryPutError::Full`] (the item that did not fit comes back;
    /// later items stay in the iterator) or another [`TryPutError`].
    pub fn put_many_nowait<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, BatchPutError<TryPutError<T>>> {
        self.put_batch(items, Some(Deadline::now()), false, nowait_put_error)
    }

    /// The batch loop: each item is encoded once and pushed with one quiet attempt (no
    /// notification); when that would block, consumers are notified of the items pushed
    /// so far and the item takes the single-put path (blocking per `deadline`/`block`, and
    /// reporting exact errors, mapped by `error`).
    fn put_batch<I: IntoIterator<Item = T>, E>(
        &self,
        items: I,
        deadline: Option<Deadline>,
        block: bool,
        error: impl Fn(PutTimeoutError<T>) -> E,
    ) -> Result<usize, BatchPutError<E>> {
        let bell = self.shared.ring.items_doorbell();
        let mut done = 0;
        let mut pending = false;
        let res = self.with_scratch(|s| {
            for item in items {
                let me = match self.enter() {
                    Ok(Some(me)) => me,
                    Ok(None) => return Err(PutTimeoutError::Closed(item)),
                    Err(e) => {
                        let e = MessageError::Encode(e.to_string());
                        return Err(PutTimeoutError::Message(item, e));
                    }
                };
                if let Err(e) = s.encode(&item) {
                    return Err(PutTimeoutError::Message(item, e));
                }
                let quiet = match self.stage(&s.buf) {
                    Ok(mut staged) => {
                        let r = self.try_push_staged(me, &s.buf, &mut staged);
                        if !matches!(r, Some(Ok(()))) {
                            // Would block (the slow path stages again) or failed (corrupt
                            // ring, tombstoned slot): a block was never sent.
                            staged.release(&self.shared.arena);
                        }
                        r
                    }
                    Err(e) => Some(Err(e)),
                };
                match quiet {
                    Some(Ok(())) => pending = true,
                    Some(Err(e)) => return Err(PutTimeoutError::Message(item, e)),
                    None => {
                        if pending {
                            // Before anything that may block: consumers must see what is in.
                            wait::ring(bell);
                            pending = false;
                        }
                        match self.push_encoded(me, &s.buf, deadline, block) {
                            Ok(Ok(())) => {}
                            Ok(Err(fail)) => return Err(fail.with(item)),
                            Err(e) => return Err(PutTimeoutError::Message(item, e)),
                        }
                    }
                }
                done += 1;
            }
            Ok(())
        });
        if pending {
            wait::ring(bell);
        }
        match res {
            Ok(()) => Ok(done),
            Err(e) => Err(BatchPutError {
                done,
                error: error(e),
            }),
        }
    }

    /// Takes up to `max` items into `out` (appended, in queue order): blocks for the first
    /// as [`Queue::get`] does, then takes what is there without blocking. Returns how many
    /// were taken (0 only when `max` is 0). Producers are notified once per batch.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`] for the first item. An invalid later message ends the batch with
    /// [`GetError::Message`]; the items taken before it are in `out`.
    pub fn get_many(&self, out: &mut Vec<T>, max: usize) -> Result<usize, GetError> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.get()?);
        let Ok(Some(me)) = self.enter() else {
            return Ok(1);
        };
        let mut n = 1;
        let mut freed = false;
        let res = self.with_scratch(|s| {
            let sink = RefCell::new(&mut s.buf);
            let decode = |popped: Popped<'_>| decode_private::<T>(&mut sink.borrow_mut(), popped);
            while n < max {
                match self.try_take(me, false, &decode) {
                    None => return Ok(()),
                    Some(r) => {
                        freed = true;
                        out.push(r?);
                    }
                }
                n += 1;
            }
            Ok(())
        });
        if freed {
            wait::ring(self.shared.ring.space_doorbell());
        }
        res.map_err(GetError::Message)?;
        Ok(n)
    }

    fn put_deadline(
        &self,
        item: T,
        deadline: Option<Deadline>,
        block: bool,
    ) -> Result<(), PutTimeoutError<T>> {
        let me = match self.enter() {
            Ok(Some(me)) => me,
            Ok(None) => return Err(PutTimeoutError::Closed(item)),
            Err(e) => {
                return Err(PutTimeoutError::Message(
                    item,
                    MessageError::Encode(e.to_string()),
                ));
            }
        };
        let res = self.with_scratch(|s| {
            s.encode(&item)?;
            self.push_encoded(me, &s.buf, deadline, block)
        });
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(fail)) => Err(fail.with(item)),
            Err(e) => Err(PutTimeoutError::Message(item, e)),
        }
    }

    /// Pushes the encoded message `buf`, blocking per `deadline`/`block`. Notifies consumers
    /// when it is in.
    fn push_encoded(
        &self,
        me: mproc_ring::ParticipantId,
        buf: &[u8],
        deadline: Option<Deadline>,
        block: bool,
    ) -> Result<Result<(), PutFail>, MessageError> {
        let sh = &*self.shared;
        let mut staged = self.stage(buf)?;
        // Fast path: a free slot now, taken without the waiting machinery.
        let outcome = match self.try_push_staged(me, buf, &mut staged) {
            Some(r) => Outcome::Done(r),
            None => {
                let staged = RefCell::new(&mut staged);
                self.wait_until(
                    sh.ring.space_doorbell(),
                    BLOCKED_PUT,
                    deadline,
                    block,
                    || self.try_push_staged(me, buf, &mut staged.borrow_mut()),
                )
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

    /// Decides where the encoded message goes: inline, or an arena block (allocated lazily
    /// by the first push attempt, since the arena may be full for now).
    fn stage(&self, bytes: &[u8]) -> Result<Staged, MessageError> {
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
    fn try_push_staged(
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
        }
    }

    // ------------------------------------------------------------------------------------
    // get

    /// Takes the next item, blocking while the queue is empty. Python: `get()`.
    ///
    /// # Errors
    ///
    /// [`GetError::Disconnected`] (empty, and no other handle can ever put),
    /// [`GetError::Closed`], [`GetError::Message`] (the next message was invalid and dropped,
    /// or [`MessageError::Corrupt`]: the queue's memory is corrupt, see the module docs).
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None, true).map_err(untimed_get_error)
    }

    /// Takes the next item, blocking at most `timeout`. Python: `get(timeout=t)`. Returns
    /// no sooner than the timeout when nothing arrives (and the queue stays connected).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] (Python's `queue.Empty`), and as [`Queue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_deadline(Some(Deadline::after(timeout)), true)
    }

    /// Takes the next item if there is one now. Python: `get_nowait()`.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] (Python's `queue.Empty`), [`TryGetError::Disconnected`] (empty,
    /// and no other handle can ever put), [`TryGetError::Closed`], [`TryGetError::Message`].
    pub fn get_nowait(&self) -> Result<T, TryGetError> {
        self.get_deadline(Some(Deadline::now()), false)
            .map_err(nowait_get_error)
    }

    fn get_deadline(&self, deadline: Option<Deadline>, block: bool) -> Result<T, GetTimeoutError> {
        // Not `get_recorded` with a no-op record: the extra step in the decode closure changed
        // the compiler's inlining of the pop path (74 more instructions per put+get pair
        // under callgrind, +10 % time), so the plain get keeps its own closure.
        self.with_scratch(|s| {
            let sink = RefCell::new(&mut s.buf);
            let decode = |popped: Popped<'_>| decode_private::<T>(&mut sink.borrow_mut(), popped);
            self.take_now_or_wait(deadline, block, &decode)
        })
    }

    /// One try without the waiting machinery (the fast path: a message there now), then
    /// the blocking machinery per `deadline`/`block`.
    #[inline]
    fn take_now_or_wait<R>(
        &self,
        deadline: Option<Deadline>,
        block: bool,
        finish: &impl Fn(Popped<'_>) -> Result<R, MessageError>,
    ) -> Result<R, GetTimeoutError> {
        let now = match self.enter() {
            Ok(Some(me)) => self.try_take(me, true, finish),
            _ => None,
        };
        match now {
            Some(r) => r.map_err(GetTimeoutError::Message),
            None => self.take_deadline(deadline, block, finish),
        }
    }

    /// A get that runs `record` once the item is in private memory, *before* its slot is
    /// released (a JoinableQueue records the task as taken there, so the item is never in
    /// neither the ring nor the record). If `record` fails, the item is dropped and its error
    /// returned.
    pub(crate) fn get_recorded(
        &self,
        deadline: Option<Deadline>,
        block: bool,
        record: &impl Fn() -> Result<(), MessageError>,
    ) -> Result<T, GetTimeoutError> {
        self.with_scratch(|s| {
            let sink = RefCell::new(&mut s.buf);
            let decode = |popped: Popped<'_>| {
                let item = decode_private::<T>(&mut sink.borrow_mut(), popped)?;
                record()?;
                Ok(item)
            };
            self.take_now_or_wait(deadline, block, &decode)
        })
    }

    /// Slots holding a message or a claim, by a pass over the ring (see
    /// `MpmcRing::occupied`).
    pub(crate) fn occupied(&self) -> u32 {
        self.shared.ring.occupied()
    }

    /// Whether the ring held no message and no claim across a moment at which `check` ran
    /// and said `true` (see `MpmcRing::empty_across`).
    pub(crate) fn empty_across(&self, check: impl FnOnce() -> bool) -> bool {
        self.shared.ring.empty_across(check)
    }

    /// Resolves every claim of a dead participant (a ring scan), waking waiters if any was.
    pub(crate) fn recover_dead(&self) {
        self.shared.recover();
    }

    /// Takes the next item and lends its archived form (`&Archived<T>`) through a guard,
    /// blocking while the queue is empty. Out-of-line messages are validated in place in the
    /// arena and never copied (their block is freed when the guard drops); inline ones
    /// (small by definition) are copied out of the slot first. Validating in place protects
    /// against buggy peers, not hostile ones (which could rewrite the bytes after the check);
    /// use [`Queue::get`] when peers are untrusted.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get_ref(&self) -> Result<Ref<'_, T>, GetError> {
        self.get_ref_deadline(None, true).map_err(untimed_get_error)
    }

    /// [`Queue::get_ref`] without blocking.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_nowait`].
    pub fn get_ref_nowait(&self) -> Result<Ref<'_, T>, TryGetError> {
        self.get_ref_deadline(Some(Deadline::now()), false)
            .map_err(nowait_get_error)
    }

    fn get_ref_deadline(
        &self,
        deadline: Option<Deadline>,
        block: bool,
    ) -> Result<Ref<'_, T>, GetTimeoutError> {
        // The slot is released once the archive is private (inline) or in a block we own
        // (out of line), and validated: a bad message is dropped while we still hold it.
        let lend = |popped: Popped<'_>| -> Result<RefBytes, MessageError> {
            let raw = match popped {
                Popped::Inline(body) => {
                    let mut private = AlignedVec::new();
                    private.extend_from_slice(body);
                    RefBytes::Private(private)
                }
                Popped::Block(b) => RefBytes::Block(b),
            };
            message::access::<T>(raw.bytes())?;
            Ok(raw)
        };
        let raw = self.take_deadline(deadline, block, &lend)?;
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

    /// Pops the next message and hands it to `finish` while its slot is still claimed,
    /// blocking per `deadline`/`block`.
    fn take_deadline<R>(
        &self,
        deadline: Option<Deadline>,
        block: bool,
        finish: &impl Fn(Popped<'_>) -> Result<R, MessageError>,
    ) -> Result<R, GetTimeoutError> {
        let me = self
            .enter()
            .map_err(|e| GetTimeoutError::Message(MessageError::Invalid(e.to_string())))?
            .ok_or(GetTimeoutError::Closed)?;
        let sh = &*self.shared;
        let take = || self.try_take(me, true, finish);
        let outcome = self.wait_until(sh.ring.items_doorbell(), BLOCKED_GET, deadline, block, take);
        match outcome {
            Outcome::Done(r) => r.map_err(GetTimeoutError::Message),
            Outcome::Stopped(()) => Err(GetTimeoutError::Disconnected),
            Outcome::TimedOut => Err(GetTimeoutError::Timeout),
        }
    }

    /// Retries `attempt` (a push or a pop) until it succeeds, sleeping on `bell` when
    /// `block` (until `deadline`), else trying once. Gives up with `Stopped` when no other
    /// handle can ever act (`no_free_peer` with `blocked_role`), after a ring recovery and
    /// one last try. An untimed blocking wait counts itself under `blocked_role` while it
    /// waits (see [`Parked`]).
    fn wait_until<R>(
        &self,
        bell: &mproc_ring::Doorbell,
        blocked_role: u32,
        deadline: Option<Deadline>,
        block: bool,
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
        let out = if block {
            let mut parked = Parked::new(sh, blocked_role, deadline.is_none());
            wait::block(bell, deadline, &attempt, |round| {
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

    /// One pop attempt: `None` = nothing to take now. The message is handed to `finish`
    /// while its slot is still claimed, so a process that dies before `finish` has put the
    /// value in private memory (copied, validated, deserialised) dies holding the claim, and
    /// recovery counts the item in [`Queue::lost`]; if `finish` unwinds (a panicking
    /// `Deserialize`, a failed allocation), the claim is released and the item dropped.
    /// `notify`: wake producers waiting for room (a batch passes `false` and rings once at
    /// its end).
    fn try_take<R>(
        &self,
        me: mproc_ring::ParticipantId,
        notify: bool,
        finish: &impl Fn(Popped<'_>) -> Result<R, MessageError>,
    ) -> Option<Result<R, MessageError>> {
        let sh = &*self.shared;
        let r = sh.ring.try_pop_with(me, |slot| -> Result<R, MessageError> {
            let Some((&tag, body)) = slot.split_last() else {
                return Err(MessageError::Invalid("empty slot".into()));
            };
            match tag {
                TAG_INLINE => finish(Popped::Inline(body)),
                TAG_ARENA if body.len() == DESC_LEN => {
                    let (off, len) = desc_decode(body).expect("DESC_LEN bytes");
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
        }
    }
}

/// Copies a popped archive into `sink` (private, aligned memory), frees its arena block if
/// it had one, then validates and deserialises the copy: the default, hostile-safe read.
fn decode_private<T: Message>(
    sink: &mut AlignedVec,
    popped: Popped<'_>,
) -> Result<T, MessageError> {
    sink.clear();
    match popped {
        Popped::Inline(body) => sink.extend_from_slice(body),
        Popped::Block(block) => {
            sink.extend_from_slice(block.bytes());
            // Freed while the slot is still claimed: a death from here on is a counted loss.
            drop(block);
        }
    }
    message::decode::<T>(sink)
}

/// Why a push of an encoded message did not happen (the caller adds the item back).
#[derive(Debug, Clone, Copy)]
enum PutFail {
    /// Full, and no other handle can ever get.
    Disconnected,
    /// Still full at the deadline.
    Timeout,
    /// Still no arena block for the message at the deadline.
    ArenaFull,
}

impl PutFail {
    fn with<T>(self, item: T) -> PutTimeoutError<T> {
        match self {
            PutFail::Disconnected => PutTimeoutError::Disconnected(item),
            PutFail::Timeout => PutTimeoutError::Timeout(item),
            PutFail::ArenaFull => PutTimeoutError::ArenaFull(item),
        }
    }
}

/// A put without a deadline cannot time out.
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

fn untimed_put_error<T>(e: PutTimeoutError<T>) -> PutError<T> {
    match e {
        PutTimeoutError::Disconnected(t) => PutError::Disconnected(t),
        PutTimeoutError::Closed(t) => PutError::Closed(t),
        PutTimeoutError::Message(t, e) => PutError::Message(t, e),
        PutTimeoutError::Timeout(_) | PutTimeoutError::ArenaFull(_) => unreachable!("no deadline"),
    }
}

/// A put that does not wait: a timeout means "full now" (Python's `queue.Full`).
fn nowait_put_error<T>(e: PutTimeoutError<T>) -> TryPutError<T> {
    match e {
        PutTimeoutError::Timeout(t) => TryPutError::Full(t),
        PutTimeoutError::ArenaFull(t) => TryPutError::ArenaFull(t),
        PutTimeoutError::Disconnected(t) => TryPutError::Disconnected(t),
        PutTimeoutError::Closed(t) => TryPutError::Closed(t),
        PutTimeoutError::Message(t, e) => TryPutError::Message(t, e),
    }
}

/// A popped message, lent to a `finish` closure while its slot is still claimed.
enum Popped<'a> {
    /// An inline archive, still in the slot (unaligned: copy it before reading).
    Inline(&'a [u8]),
    /// An out-of-line archive, in an arena block we now own.
    Block(Block),
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

/// Where a staged put's bytes go.
enum Staged {
    Inline,
    /// An arena block, once allocated.
    Arena(Option<Offset<u8>>),
    /// Pushed: the consumer owns the block now.
    Sent,
}

impl Staged {
    /// Frees an allocated block that was never sent.
    fn release(&mut self, arena: &Arena) {
        if let Staged::Arena(Some(off)) = *self {
            let _ = arena.free(off);
        }
        *self = Staged::Sent;
    }
}

/// An arena block taken from the queue: ours to read; freed on drop (then producers waiting
/// for arena room are woken).
struct Block {
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
    fn hold(&self, shared: &Shared) -> Result<(), GetTimeoutError> {
        let me = shared
            .obj
            .me()
            .map_err(|e| GetTimeoutError::Message(MessageError::Invalid(e.to_string())))?;
        shared
            .arena
            .hold(self.off, me.get())
            .map_err(|e| GetTimeoutError::Message(MessageError::Invalid(e.to_string())))
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` was checked to lie inside the arena, which is mapped while
        // `self.shared` keeps the segment alive; the block was handed to us by the descriptor
        // we consumed, so no honest peer writes it until we free it.
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

enum RefBytes {
    Private(AlignedVec),
    Block(Block),
}

impl RefBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            RefBytes::Private(v) => v,
            RefBytes::Block(b) => b.bytes(),
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

impl<T: Message> Clone for Queue<T> {
    /// Another handle to the same queue, counted as one more holder (Python: passing the
    /// same queue to several processes). Cloning a closed or disowned handle gives one in
    /// the same state.
    fn clone(&self) -> Self {
        // A usable handle's clone is counted (if counting fails, the clone starts closed);
        // a closed or disowned handle's clone is the same.
        let closed = if self.usable() {
            self.shared.obj.acquire(ROLE).is_err()
        } else {
            self.closed.get()
        };
        Queue {
            shared: self.shared.clone(),
            owner: self.owner,
            closed: Cell::new(closed),
            me: Cell::new(None),
            scratch: RefCell::new(Scratch::new()),
            stuck: Default::default(),
            _t: PhantomData,
        }
    }
}

impl<T: Message> Drop for Queue<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T: Message> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("type", &std::any::type_name::<T>())
            .field("capacity", &self.capacity())
            .field("qsize", &self.qsize())
            .field("closed", &self.closed.get())
            .field("owned", &self.owner.is_current())
            .field("name", &self.shared.obj.segment().name())
            .finish()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("obj", &self.obj)
            .finish_non_exhaustive()
    }
}
