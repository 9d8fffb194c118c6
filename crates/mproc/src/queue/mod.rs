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

mod arena;
mod batch;
mod blocking;
mod error;
mod options;
mod pass;
mod slot;
mod stuck;
mod zero_copy;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use mproc_futex::Deadline;
use mproc_ring::{DeadClaim, MpmcRing, Side};
use mproc_shm::{Arena, Offset};

pub use arena::ArenaStats;
pub use error::{
    BatchPutError, GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
pub use options::{DEFAULT_ARENA_SIZE, DEFAULT_CAPACITY, DEFAULT_SLOT_SIZE, QueueBuilder};
pub use zero_copy::Ref;

pub(crate) use blocking::{nowait_get_error, untimed_get_error};

use crate::handle::Owner;
use crate::message::{Message, MessageError, Scratch};
use crate::storage::object::{CreateError, Object, ObjectKind, OpenError};
use crate::wait;
use crate::wait::Wait;
use blocking::{nowait_put_error, untimed_put_error};
use options::{fingerprint, type_name};
use slot::{DESC_LEN, Popped, TAG_ARENA, decode_private, desc_decode};
use stuck::StuckWatch;

/// Holder role: handles (every handle can put and get).
const ROLE: u32 = 0;
/// Holder role: handles blocked in an untimed `get()` on an empty queue.
const BLOCKED_GET: u32 = 1;
/// Holder role: handles blocked in an untimed `put()` on a full queue.
const BLOCKED_PUT: u32 = 2;
/// Holder roles of a queue object.
const ROLES: u32 = 3;

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

/// A handle to a shared, bounded, multi-producer multi-consumer queue of `T`s — Python's
/// `multiprocessing.Queue`. See the [module docs](self) for the holder rule, crashes and
/// message sizes.
///
/// **Threads:** a handle is `Send`, not `Sync`; give each thread its own `clone()` (cheap:
/// the clones share one mapping), so every thread counts as a holder (see the module docs).
/// Sharing `&Queue` across threads is refused at compile time, with an error that names a
/// `Cell` inside the handle:
///
/// ```compile_fail,E0277
/// let q: mproc::Queue<u32> = mproc::Queue::new()?;
/// std::thread::scope(|s| {
///     s.spawn(|| q.put(1)); // error: `Cell<..>` cannot be shared between threads safely
/// });
/// # Ok::<(), mproc::CreateError>(())
/// ```
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
/// # Ok::<(), mproc::CreateError>(())
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

impl<T: Message> Queue<T> {
    /// A queue with the default options ([`DEFAULT_CAPACITY`] items). Python: `Queue()`
    /// (which is unbounded; mproc queues are bounded shared memory).
    ///
    /// # Errors
    ///
    /// A segment error (out of memory, too many open files).
    pub fn new() -> Result<Queue<T>, CreateError> {
        Self::builder().create()
    }

    /// A queue of at most `capacity` items, exactly (0 is taken as 1). Python:
    /// `Queue(maxsize)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    pub fn with_capacity(capacity: u32) -> Result<Queue<T>, CreateError> {
        Self::builder().capacity(capacity).create()
    }

    /// Options for a new queue.
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder::default()
    }

    /// Creates a queue named `name` with the default options, for unrelated processes to
    /// open with [`Queue::open_named`] (as `Queue::builder().create_named(name)`; see
    /// [`QueueBuilder::create_named`] for the name rules and other options).
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create_named`]: an existing name is
    /// [`CreateError::AlreadyExists`].
    pub fn create_named(name: &str) -> Result<Queue<T>, CreateError> {
        Self::builder().create_named(name)
    }

    /// Opens the named queue `name` that another process created with
    /// [`Queue::create_named`] or [`QueueBuilder::create_named`], checking that it holds `T`s.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`] if it is not a `Queue<T>` (e.g. a `Queue<u64>` opened as
    /// `Queue<String>`); [`OpenError::NotFound`], [`OpenError::NotReady`],
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
    /// [`OpenError::NotFound`].
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        crate::storage::names::unlink(name)
    }

    /// Removes this named queue's name; open handles keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], or [`OpenError::Segment`] for an anonymous queue.
    pub fn unlink(&self) -> Result<(), OpenError> {
        self.shared
            .obj
            .segment()
            .unlink()
            .map_err(|e| OpenError::from_segment(e, "Queue"))
    }

    /// Attaches to the ring and arena of an object and becomes a holder.
    fn from_object(obj: Object) -> Result<Queue<T>, OpenError> {
        let r = obj
            .region(0)
            .ok_or_else(|| OpenError::corrupt_part("queue ring region (missing)"))?;
        // SAFETY: the sub-region was validated to lie inside the mapping, 128-aligned; the
        // mapping lives as long as `obj`, which the `Shared` holding the ring keeps.
        let ring = unsafe { MpmcRing::attach(r.ptr, r.len as usize) }?;
        #[cfg(feature = "test-hooks")]
        let ring = ring.with_fault_hook(crate::fault::at_claim);
        if ring.slot_size() as usize <= DESC_LEN {
            return Err(OpenError::corrupt("queue ring slot size", ring.slot_size()));
        }
        let a = obj
            .region(1)
            .ok_or_else(|| OpenError::corrupt_part("queue arena region (missing)"))?;
        let arena = if a.len > 0 {
            Arena::attach(obj.segment().clone(), a.offset, a.len)?
        } else {
            // A queue without an arena: a tiny private one that never fits a message
            // would be odd; refuse out-of-line messages instead (see `stage`).
            return Err(OpenError::corrupt("queue arena region length", 0));
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
        let id = self.shared.obj.me()?;
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

    // ------------------------------------------------------------------------------------
    // put

    /// Puts `item`, blocking while the queue is full. Python: `put(item)`.
    ///
    /// # Errors
    ///
    /// [`PutError::Disconnected`] (full, and no other handle can ever get),
    /// [`PutError::Closed`], [`PutError::Message`]. The item comes back in each.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Wait::Forever)
            .map_err(untimed_put_error)
    }

    /// Puts `item`, blocking at most `timeout` while the queue is full. Python:
    /// `put(item, timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] (Python's `queue.Full`), and as [`Queue::put`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_deadline(item, Wait::Until(Deadline::after(timeout)))
    }

    /// Puts `item` if there is room now. Python: `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] (Python's `queue.Full`), [`TryPutError::Disconnected`] (full,
    /// and no other handle can ever get), [`TryPutError::Closed`], [`TryPutError::Message`].
    /// The item comes back in each.
    pub fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
        self.put_deadline(item, Wait::Never)
            .map_err(nowait_put_error)
    }

    fn put_deadline(&self, item: T, mode: Wait) -> Result<(), PutTimeoutError<T>> {
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
            self.push_encoded(me, &s.buf, mode)
        });
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(fail)) => Err(fail.with(item)),
            Err(e) => Err(PutTimeoutError::Message(item, e)),
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
        self.get_deadline(Wait::Forever).map_err(untimed_get_error)
    }

    /// Takes the next item, blocking at most `timeout`. Python: `get(timeout=t)`. Returns
    /// no sooner than the timeout when nothing arrives (and the queue stays connected).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] (Python's `queue.Empty`), and as [`Queue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_deadline(Wait::Until(Deadline::after(timeout)))
    }

    /// Takes the next item if there is one now. Python: `get_nowait()`.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] (Python's `queue.Empty`), [`TryGetError::Disconnected`] (empty,
    /// and no other handle can ever put), [`TryGetError::Closed`], [`TryGetError::Message`].
    pub fn get_nowait(&self) -> Result<T, TryGetError> {
        self.get_deadline(Wait::Never).map_err(nowait_get_error)
    }

    fn get_deadline(&self, mode: Wait) -> Result<T, GetTimeoutError> {
        // Not `get_recorded` with a no-op record: the extra step in the decode closure changed
        // the compiler's inlining of the pop path (74 more instructions per put+get pair
        // under callgrind, +10 % time), so the plain get keeps its own closure.
        self.with_scratch(|s| {
            let sink = RefCell::new(&mut s.buf);
            let decode = |popped: Popped<'_>| decode_private::<T>(&mut sink.borrow_mut(), popped);
            self.take_now_or_wait(mode, &decode)
        })
    }

    /// A get that runs `record` once the item is in private memory, *before* its slot is
    /// released (a JoinableQueue records the task as taken there, so the item is never in
    /// neither the ring nor the record). If `record` fails, the item is dropped and its error
    /// returned.
    pub(crate) fn get_recorded(
        &self,
        mode: Wait,
        record: &impl Fn() -> Result<(), MessageError>,
    ) -> Result<T, GetTimeoutError> {
        self.with_scratch(|s| {
            let sink = RefCell::new(&mut s.buf);
            let decode = |popped: Popped<'_>| {
                let item = decode_private::<T>(&mut sink.borrow_mut(), popped)?;
                record()?;
                Ok(item)
            };
            self.take_now_or_wait(mode, &decode)
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
