//! [`JoinableQueue<T>`]: Python's `multiprocessing.JoinableQueue` — a [`Queue`] plus
//! `task_done()` and `join()`.
//!
//! # Python → mproc
//!
//! | Python | mproc |
//! |---|---|
//! | `JoinableQueue(maxsize)` | [`JoinableQueue::new`] / [`JoinableQueue::with_capacity`] / [`JoinableQueue::from_builder`] |
//! | `put`, `put_nowait`, `get`, `get_nowait`, `qsize`, `empty`, `full`, `close` | the same methods, as on [`Queue`] (`put` counts one more unfinished task) |
//! | `task_done()` | [`JoinableQueue::task_done`]; once too often is [`TaskDoneError::TooManyTimes`] (Python's `ValueError('task_done() called too many times')`) |
//! | `join()` | [`JoinableQueue::join`] → [`Joined`] (tasks that died with their workers); [`JoinableQueue::join_timeout`] has no Python counterpart |
//! | `_unfinished_tasks` | [`JoinableQueue::unfinished_tasks`] (a snapshot) |
//!
//! # How it is built: tasks are counted where the items are
//!
//! By composition, without copying [`Queue`]'s code: a `JoinableQueue<T>` is a [`Queue<T>`]
//! handle plus a handle to a small shared *task ledger* (its own segment). An unfinished task
//! is an item in one of two places, and `unfinished_tasks()` is the sum:
//!
//! * **in the queue** — a slot of the ring holding a committed item or a claim on one
//!   (`MpmcRing::occupied`: a producer's claim, a committed message, a consumer's claim; not a
//!   dead producer's tombstone). So a task counts exactly once its item holds a place in the
//!   queue: a producer blocked in `put` on a full queue, or killed there, has counted nothing
//!   (Python counts the task once the item is in, too), and a producer killed between its
//!   claim and its commit leaves a claim that recovery turns into a tombstone, which is no
//!   task.
//! * **taken, not done** — a per-process ledger (`mproc_futex::Ledger`: a robust guard and an
//!   undo journal, so a process killed in the middle of an update leaves no half-change; one
//!   entry per possible participant, so every process has its own): a
//!   `get` records one task as held by the getting process *while it still holds the slot's
//!   claim*, after the item is in private memory, then releases the slot; `task_done`
//!   gives one back.
//!
//! So the item is never in neither place: `join` reads the ring, then the ledger, then the
//! ring again (accepting only if no slot changed in between, so the zero it saw was one
//! moment's), and a get records its task before it releases the slot. `join` returns once it
//! sees both at zero (it is woken when `task_done` brings the ledger to zero, and looks again at least every
//! 50 ms).
//!
//! Items put through [`JoinableQueue::queue`] directly count as tasks too (they are in the
//! ring); items *taken* through it are not recorded, so they count as done when taken: take
//! them with the JoinableQueue's own `get` methods.
//!
//! `task_done` is refused ([`TaskDoneError::TooManyTimes`]) when no task is taken and not
//! done: Python also allows a `task_done` for an item still in the queue (it only refuses at
//! zero unfinished); mproc refuses it, because no item that was not taken can be done.
//!
//! # A worker that dies
//!
//! Python's `join` hangs for ever when a worker dies between `get` and `task_done`. Here, a
//! process that dies — killed, crashed, or exited normally — with tasks it took and did not
//! mark done has them **released** by the next `join` that looks (within ~50 ms), and `join`
//! reports them: [`Joined::died`]. Any process may call `task_done`, as in Python, so the
//! rule is the ledger's: a dead worker's open tasks are released less the `task_done` calls
//! made by processes that held no task themselves (those may have been for it). Items lost in
//! flight (a consumer killed between its claim and its record, a producer killed mid-`put`)
//! are counted by [`JoinableQueue::lost`] and in [`Joined::lost`]. A worker that exits
//! normally with open tasks counts exactly like one that was killed: its process is gone, so
//! its tasks died with it.
//!
//! # Example
//!
//! ```
//! use mproc::JoinableQueue;
//!
//! let q: JoinableQueue<u32> = JoinableQueue::new()?;
//! q.put(1).unwrap();
//! q.put(2).unwrap();
//! assert_eq!(q.unfinished_tasks(), 2);
//! while let Ok(_job) = q.get_nowait() {
//!     q.task_done()?;
//! }
//! let joined = q.join()?; // every task is done: returns at once
//! assert_eq!(joined.died, 0);
//! assert!(q.task_done().is_err()); // ValueError: task_done() called too many times
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;

use mproc_core::shared::{SharedState, shared_at};
use std::time::Duration;

use mproc_core::sleepers::Sleepers;
use mproc_futex::{
    Caller, Deadline, Futex, Give, GiveError, Ledger, LedgerError, SlicedWait, futex,
};

use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::message::{Message, MessageError};
use crate::queue::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueBuilder, TryGetError,
    TryPutError, nowait_get_error, untimed_get_error,
};
use crate::shared::sync::{AtomicU32, Ordering};
use crate::storage::object::{self, CreateError, Object, ObjectKind, ObjectSpec, OpenError};
use crate::wait::CHECK_INTERVAL;
use crate::wait::{Outcome, Round, Wait};

const TASKS_TYPE_NAME: &str = "JoinableQueue task ledger";
/// Suffix of the task ledger's segment name for a named queue.
const TASKS_SUFFIX: &str = ".jq-tasks";

fn tasks_fingerprint() -> u64 {
    // The ledger is a synchronisation object, so a `Lock`-kind object; the type tag keeps it
    // apart from real locks (opening one as the other fails the fingerprint check).
    object::fingerprint(ObjectKind::Lock, "JoinableQueue.tasks/v3")
}

fn tasks_name(name: &str) -> String {
    format!("{name}{TASKS_SUFFIX}")
}

/// Why [`JoinableQueue::task_done`] failed; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskDoneError {
    /// No task is taken and not done: `task_done` was called more times than items were
    /// taken. Python: `ValueError('task_done() called too many times')`.
    #[error("task_done() called too many times")]
    TooManyTimes,
    /// This process could not register in the task ledger's segment (every participant
    /// entry is held by a live process).
    #[error("cannot register in the task ledger's segment")]
    Register,
    /// The task ledger's shared state is corrupt (its guard is unusable): only a peer writing
    /// garbage into shared memory gets there.
    #[error("the task ledger is corrupt")]
    Corrupt,
}

/// Why [`JoinableQueue::join`] or [`JoinableQueue::join_timeout`] returned without every task
/// done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The timeout passed first (no Python counterpart: Python's `join` has no timeout).
    #[error("timed out waiting for unfinished tasks")]
    Timeout,
    /// As [`TaskDoneError::Register`].
    #[error("cannot register in the task ledger's segment")]
    Register,
    /// As [`TaskDoneError::Corrupt`].
    #[error("the task ledger is corrupt")]
    Corrupt,
}

/// What a successful [`JoinableQueue::join`] saw: every task was done, or died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Joined {
    /// Tasks released during this `join` because the process that took them died (killed,
    /// crashed, or exited) before marking them done (Python's `join` hangs for ever then).
    pub died: u64,
    /// Items lost in flight during this `join` ([`JoinableQueue::lost`]'s increase): a
    /// consumer killed while holding an item's slot, a producer killed mid-`put` of a
    /// committed item. A consumer killed in the few instructions between recording its task
    /// and releasing the slot is counted in both fields.
    pub lost: u64,
}

impl Joined {
    /// Whether every task was done by a live process (nothing died, nothing was lost).
    pub fn all_done(&self) -> bool {
        self.died == 0 && self.lost == 0
    }
}

/// One ledger entry per possible participant of the task segment
/// ([`mproc_shm::MAX_PARTICIPANTS`]): a process's entry starts at its participant index, so
/// every process that takes tasks has an entry of its own and no task is ever untracked
/// (an untracked take would be given back as a non-holder's `task_done`, which would then
/// keep a later dead worker's tasks from being released). 64 KiB of the segment, touched only
/// where used.
const TASK_LEDGER_ENTRIES: usize = mproc_shm::MAX_PARTICIPANTS as usize;
type TaskLedger = Ledger<mproc_futex::Futex, TASK_LEDGER_ENTRIES>;

/// The shared task ledger (`#[repr(C)]`, atomics only: any bytes are a valid value, and every
/// value is untrusted — a corrupt count makes `join` early or late, nothing worse).
#[repr(C)]
struct TaskWords {
    /// Tasks taken and not done, per process (the ledger's value is unused).
    ledger: TaskLedger,
    /// Bumped whenever the ledger may have reached zero; the futex word `join` sleeps on.
    generation: AtomicU32,
    /// `join` calls currently between registering and leaving (mproc-core's sleepers
    /// protocol, on `generation`).
    joiners: Sleepers,
}

// SAFETY: `repr(C)`, a `mproc_futex::Ledger` (`SharedState`) and std atomics; `Sync`.
unsafe impl SharedState for TaskWords {}

/// Bytes of the ledger's sub-region (whole 128-byte lines).
const TASKS_REGION: u64 = (size_of::<TaskWords>() as u64).div_ceil(128) * 128;

/// A process-local handle on the task ledger's segment.
struct Tasks {
    obj: Object,
}

impl From<LedgerError> for TaskDoneError {
    fn from(_: LedgerError) -> Self {
        // No deadline is passed (Timeout) and no fault point armed (Died): every ledger error
        // here means the state is not what we wrote.
        TaskDoneError::Corrupt
    }
}

impl From<LedgerError> for JoinError {
    fn from(_: LedgerError) -> Self {
        JoinError::Corrupt
    }
}

impl Tasks {
    fn create(name: Option<&str>) -> Result<Tasks, CreateError> {
        let spec = ObjectSpec {
            kind: ObjectKind::Lock,
            fingerprint: tasks_fingerprint(),
            roles: 1,
            regions: &[TASKS_REGION],
        };
        // A fresh segment is zero-filled: an empty ledger, generation 0, no joiner.
        let obj = Object::create(&spec, name, None, |_| Ok(()))?;
        Ok(Tasks::from_object(obj)?)
    }

    fn open_named(name: &str) -> Result<Tasks, OpenError> {
        let obj = Object::open_named(
            name,
            ObjectKind::Lock,
            tasks_fingerprint(),
            TASKS_TYPE_NAME,
            1,
        )?;
        Tasks::from_object(obj)
    }

    fn from_fd(fd: std::os::fd::OwnedFd) -> Result<Tasks, OpenError> {
        let obj = Object::from_fd(
            fd,
            ObjectKind::Lock,
            tasks_fingerprint(),
            TASKS_TYPE_NAME,
            1,
        )?;
        Tasks::from_object(obj)
    }

    fn from_object(obj: Object) -> Result<Tasks, OpenError> {
        let r = obj
            .region(0)
            .ok_or_else(|| OpenError::corrupt_part("task ledger region (missing)"))?;
        if r.len < size_of::<TaskWords>() as u64 {
            return Err(OpenError::corrupt("task ledger region length", r.len));
        }
        Ok(Tasks { obj })
    }

    fn words(&self) -> &TaskWords {
        let r = self.obj.region_bytes(0).expect("checked in from_object");
        shared_at(r, 0).expect("`from_object` checked that region 0 holds a `TaskWords`")
    }

    /// Runs `f` on the ledger of `w` (this object's words) as this process's participant,
    /// with the segment's liveness.
    fn as_me<R, E>(
        &self,
        w: &TaskWords,
        register: E,
        f: impl FnOnce(&TaskLedger, Caller<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let id = self.obj.me().map_err(|_| register)?.get();
        let alive = self.obj.liveness();
        f(
            &w.ledger,
            Caller {
                id,
                liveness: &alive,
            },
        )
    }

    /// Records one task as taken by this process (inside a get's claim).
    fn take(&self) -> Result<(), TaskDoneError> {
        self.as_me(self.words(), TaskDoneError::Register, |ledger, who| {
            ledger
                .take(who, 1, false, Wait::Forever)
                .map(drop)
                .map_err(Into::into)
        })
    }

    /// One task done; wakes joiners when none is left taken.
    fn done(&self) -> Result<(), TaskDoneError> {
        // One lookup of the words for the whole call (each is a checked reinterpretation).
        let w = self.words();
        self.as_me(w, TaskDoneError::Register, |ledger, who| {
            match ledger.give(who, 1, Give::Consume, Wait::Forever) {
                Ok(()) => Ok(()),
                Err(GiveError::TooMany) => Err(TaskDoneError::TooManyTimes),
                Err(GiveError::Ledger(e)) => Err(e.into()),
                // `GiveError` is non-exhaustive: anything else means unexpected state.
                Err(_) => Err(TaskDoneError::Corrupt),
            }
        })?;
        if w.ledger.outstanding() <= 0 {
            ring_joiners(w);
        }
        Ok(())
    }

    /// Releases the tasks of dead processes; wakes joiners if any were.
    fn reclaim(&self) -> Result<u64, JoinError> {
        let w = self.words();
        let n = self.as_me(w, JoinError::Register, |ledger, who| {
            ledger
                .reclaim_dead(who, false, Wait::Forever)
                .map_err(Into::into)
        })?;
        if n > 0 {
            ring_joiners(w);
        }
        Ok(n)
    }

    /// Tasks taken and not done (a snapshot, never negative).
    fn taken(&self) -> u64 {
        u64::try_from(self.words().ledger.outstanding()).unwrap_or(0)
    }

    /// Waits until no task is queued or taken, releasing dead processes' tasks on the way.
    fn join<T: Message>(&self, queue: &Queue<T>, mode: Wait) -> Result<Joined, JoinError> {
        let w = self.words();
        let died_before = w.ledger.reclaimed();
        let lost_before = queue.lost();
        // Count, then fence: the joiner's half of the Dekker pair in `ring_joiners`.
        w.joiners.register();
        // Sleep in slices: a dead worker rings nobody, and a task_done whose process died
        // between its change and its wake-up neither. The bed is `generation`, read SeqCst
        // (the rest of the joiner's half of the Dekker pair) before the last look.
        let result = match Futex::sliced_wait(
            &w.generation,
            mode,
            CHECK_INTERVAL,
            || self.all_done(queue).then_some(()),
            |round| {
                if matches!(round, Round::SleptOut | Round::Deadline) {
                    // A quiet slice (or the last look): resolve dead claims in the ring (a
                    // dead reader's slot is freed and counted lost; a dead writer's becomes a
                    // tombstone), then release the tasks of dead processes.
                    queue.recover_dead();
                    if let Err(e) = self.reclaim() {
                        return Some(Err(e));
                    }
                    return self.all_done(queue).then_some(Ok(()));
                }
                None
            },
        ) {
            Outcome::Done(()) => Ok(()),
            Outcome::Stopped(e) => Err(e),
            Outcome::TimedOut => Err(JoinError::Timeout),
        };
        w.joiners.unregister();
        result?;
        Ok(Joined {
            died: w.ledger.reclaimed().wrapping_sub(died_before),
            lost: queue.lost().saturating_sub(lost_before),
        })
    }

    /// Whether no task is queued or taken, at one moment: a pass over the ring that finds it
    /// empty, the ledger read at zero, then a second pass that finds every slot unchanged
    /// (`MpmcRing::empty_across`). A get records its task before it releases the slot, so an
    /// item that left the ring before the ledger read is seen there; an item put into a slot
    /// the first pass had already left (a worker putting follow-up work before its
    /// `task_done`) changes that slot's word, which the second pass sees.
    fn all_done<T: Message>(&self, queue: &Queue<T>) -> bool {
        // Cheap reject first: a task is taken.
        if self.taken() > 0 {
            return false;
        }
        queue.empty_across(|| self.taken() == 0)
    }
}

/// The ledger of `w` may have reached zero: bump the generation, then wake joiners if any
/// sleep.
fn ring_joiners(w: &TaskWords) {
    // Release: a `join` that reads the new generation sees the ledger change before it.
    w.generation.fetch_add(1, Ordering::Release);
    // Dekker pair with `join` (mproc-core's sleepers protocol): it registers (count,
    // fence), then reads `generation` and the counts; we changed the ledger and bumped
    // `generation`, then fence and read `joiners`. Either we see its registration (and
    // wake it), or it sees our change (and does not sleep on it).
    if w.joiners.should_wake() {
        futex::wake_all(&w.generation);
    }
}

/// Python's `multiprocessing.JoinableQueue`: a [`Queue`] whose consumers call
/// [`task_done`](Self::task_done) per item, so a producer can [`join`](Self::join) until
/// every item put has been processed. See the [module docs](self).
pub struct JoinableQueue<T: Message> {
    queue: Queue<T>,
    tasks: Arc<Tasks>,
}

impl<T: Message> JoinableQueue<T> {
    /// A joinable queue with [`Queue`]'s default options (Python: `JoinableQueue()`).
    ///
    /// # Errors
    ///
    /// A segment error (out of memory, too many open files).
    pub fn new() -> Result<JoinableQueue<T>, CreateError> {
        Self::from_builder(Queue::builder())
    }

    /// A joinable queue of at most `capacity` items, exactly (0 is taken as 1; Python:
    /// `JoinableQueue(maxsize)`).
    ///
    /// # Errors
    ///
    /// As [`JoinableQueue::new`].
    pub fn with_capacity(capacity: u32) -> Result<JoinableQueue<T>, CreateError> {
        Self::from_builder(Queue::builder().capacity(capacity))
    }

    /// A joinable queue with the options of `builder` (capacity, slot and arena sizes, ...).
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`].
    pub fn from_builder(builder: QueueBuilder<T>) -> Result<JoinableQueue<T>, CreateError> {
        let queue = builder.create()?;
        let tasks = Tasks::create(None)?;
        Ok(JoinableQueue {
            queue,
            tasks: Arc::new(tasks),
        })
    }

    /// Creates a joinable queue named `name` (its task counter is a second segment named
    /// `name` + `".jq-tasks"`), which unrelated processes open with
    /// [`JoinableQueue::open_named`].
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create_named`] (an existing name is [`CreateError::AlreadyExists`]).
    pub fn create_named(
        builder: QueueBuilder<T>,
        name: &str,
    ) -> Result<JoinableQueue<T>, CreateError> {
        let queue = builder.create_named(name)?;
        match Tasks::create(Some(&tasks_name(name))) {
            Ok(tasks) => Ok(JoinableQueue {
                queue,
                tasks: Arc::new(tasks),
            }),
            Err(e) => {
                // Do not leave half an object behind under the name.
                let _ = queue.unlink();
                Err(e)
            }
        }
    }

    /// Opens the joinable queue named `name`, checking that it holds `T`s.
    ///
    /// # Errors
    ///
    /// As [`Queue::open_named`]; [`OpenError::NotFound`] if `name` is a plain
    /// queue without a task counter.
    pub fn open_named(name: &str) -> Result<JoinableQueue<T>, OpenError> {
        let queue = Queue::open_named(name)?;
        let tasks = Tasks::open_named(&tasks_name(name))?;
        Ok(JoinableQueue {
            queue,
            tasks: Arc::new(tasks),
        })
    }

    /// Removes the names of the joinable queue `name` (queue and task counter); open handles
    /// keep working.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if either name does not exist (the other is still removed).
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        let a = Queue::<T>::unlink_named(name);
        let b = crate::storage::names::unlink(&tasks_name(name));
        a.and(b)
    }

    /// The [`Queue`] handle underneath (for queue-only calls). Items put through it count as
    /// tasks (they are in the queue); items taken through it are not recorded as taken, so
    /// they count as done at once (see the [module docs](self)).
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    // ------------------------------------------------------------------------------------
    // put: the item in the ring is the task (nothing else to count).

    /// Puts `item`, one more unfinished task once it is in the queue, blocking while the
    /// queue is full. Python: `put(item)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`] (then no task is counted).
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put(item)
    }

    /// As [`JoinableQueue::put`], blocking at most `timeout`. Python: `put(item, timeout=t)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_timeout`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.queue.put_timeout(item, timeout)
    }

    /// As [`JoinableQueue::put`], only if there is room now. Python: `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_nowait`].
    pub fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
        self.queue.put_nowait(item)
    }

    // ------------------------------------------------------------------------------------
    // get: as Queue, recording the task as taken by this process before the slot is released.

    fn get_recorded(&self, mode: Wait) -> Result<T, GetTimeoutError> {
        let record = || {
            self.tasks
                .take()
                .map_err(|e| MessageError::Invalid(format!("cannot record the task: {e}")))
        };
        self.queue.get_recorded(mode, &record)
    }

    /// Takes the next item, blocking while the queue is empty. Python: `get()`. Call
    /// [`task_done`](Self::task_done) once it is processed.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`]; [`GetError::Message`] if the task could not be recorded (this
    /// process cannot register in the ledger's segment, or it is corrupt; the item is
    /// dropped).
    pub fn get(&self) -> Result<T, GetError> {
        self.get_recorded(Wait::Forever).map_err(untimed_get_error)
    }

    /// Takes the next item, blocking at most `timeout`. Python: `get(timeout=t)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_timeout`], and as [`JoinableQueue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_recorded(Wait::Until(Deadline::after(timeout)))
    }

    /// Takes the next item if there is one now. Python: `get_nowait()`.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_nowait`], and as [`JoinableQueue::get`].
    pub fn get_nowait(&self) -> Result<T, TryGetError> {
        self.get_recorded(Wait::Never).map_err(nowait_get_error)
    }

    // ------------------------------------------------------------------------------------
    // tasks

    /// Marks one task, taken earlier with `get`, as processed. Python: `task_done()`. When
    /// the last unfinished task is done, every [`join`](Self::join) returns. Any handle (in
    /// any process) may call it for any taken item.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError::TooManyTimes`] when no task is taken and not done (Python's
    /// `ValueError`; see the [module docs](self)); nothing changes.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.tasks.done()
    }

    /// Blocks until every item put has been taken and marked
    /// [`task_done`](Self::task_done), or died with the process that took it (Python:
    /// `join()`, which hangs for ever then). Returns at once when nothing is unfinished, and
    /// reports what died ([`Joined`]).
    ///
    /// Precisely: returns once one look sees no item in the queue and no task taken and not
    /// done. A producer that keeps putting while a worker keeps up may leave no such moment
    /// for a while (Python's `join` is woken at the first zero count instead).
    ///
    /// # Errors
    ///
    /// [`JoinError::Register`] or [`JoinError::Corrupt`] (never a timeout).
    pub fn join(&self) -> Result<Joined, JoinError> {
        self.tasks.join(&self.queue, Wait::Forever)
    }

    /// As [`JoinableQueue::join`], for at most `timeout` (no Python counterpart: Python's
    /// `join` has no timeout).
    ///
    /// # Errors
    ///
    /// [`JoinError::Timeout`] if tasks were still unfinished at the deadline, and as
    /// [`JoinableQueue::join`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<Joined, JoinError> {
        self.tasks
            .join(&self.queue, Wait::Until(Deadline::after(timeout)))
    }

    /// Unfinished tasks, in every process (a snapshot): items in the queue (committed or
    /// being put or got) plus items taken and not marked done. Python keeps it in the private
    /// `_unfinished_tasks`.
    pub fn unfinished_tasks(&self) -> u64 {
        u64::from(self.queue.occupied()) + self.tasks.taken()
    }

    /// Tasks released so far because the process that took them died (by any process's
    /// `join`).
    pub fn tasks_died(&self) -> u64 {
        self.tasks.words().ledger.reclaimed()
    }

    // ------------------------------------------------------------------------------------
    // as Queue

    /// Number of slots. See [`Queue::capacity`].
    pub fn capacity(&self) -> u32 {
        self.queue.capacity()
    }

    /// Approximate number of items waiting in the queue (not the unfinished tasks). Python:
    /// `qsize()`.
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the queue looks empty. Python: `empty()`.
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// Whether the queue looks full. Python: `full()`.
    pub fn full(&self) -> bool {
        self.queue.full()
    }

    /// In-flight items lost to processes that died mid-`put` or mid-`get`. See
    /// [`Queue::lost`]. (Their tasks are gone with them: no `join` waits for them.)
    pub fn lost(&self) -> u64 {
        self.queue.lost()
    }

    /// Stops this handle being a queue holder (Python: `close()`); later `put`/`get` on it
    /// report `Closed`. [`task_done`](Self::task_done) and [`join`](Self::join) keep working.
    pub fn close(&self) {
        self.queue.close();
    }

    /// Whether [`JoinableQueue::close`] was called on this handle.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

impl<T: Message> Clone for JoinableQueue<T> {
    /// Another handle to the same queue and counter (one more queue holder).
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
            tasks: self.tasks.clone(),
        }
    }
}

impl<T: Message> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished_tasks", &self.unfinished_tasks())
            .finish()
    }
}

/// Passing: the queue as [`Queue`] passes itself, then the counter's segment (spawn: its
/// descriptor; fork: the child registers its own participant entry in it).
impl<T: Message> Passable for JoinableQueue<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.queue.export(out)?;
        let index = out.fd(self.tasks.obj.segment().as_fd())?;
        out.value(&index)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let queue = Queue::import(input)?;
        let index: u32 = input.value()?;
        let fd = input.take_fd(index)?;
        let tasks = Tasks::from_fd(fd)?;
        Ok(JoinableQueue {
            queue,
            tasks: Arc::new(tasks),
        })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.queue.adopt()?;
        // The ledger keeps no holder count (nothing waits for "every handle is gone");
        // registering gives the child its own participant entry, like a Lock.
        self.tasks.obj.me().map(drop).map_err(PassError::Open)
    }
}
