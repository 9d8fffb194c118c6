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
//! | `join()` | [`JoinableQueue::join`]; [`JoinableQueue::join_timeout`] has no Python counterpart |
//! | `_unfinished_tasks` | [`JoinableQueue::unfinished_tasks`] (a snapshot) |
//!
//! # How it is built
//!
//! By composition, without copying [`Queue`]'s code: a `JoinableQueue<T>` is a [`Queue<T>`]
//! handle plus a handle to a small shared *task counter* (its own tiny segment) holding:
//!
//! * `unfinished: u64` — incremented by `put` **before** the item enters the queue (so no
//!   consumer can `task_done` it first), decremented by `task_done`, put back if the `put`
//!   fails. It saturates at `u64::MAX` (only a corrupt or hostile peer could get there).
//! * `generation: u32` — a futex word bumped every time `unfinished` reaches zero; `join`
//!   sleeps on it (in slices of at most 50 ms, re-checking the count between slices).
//! * `joiners: u32` — how many `join` calls sleep, so that `task_done` costs no system call
//!   when nobody joins.
//!
//! `join` returns once the count has been zero at some moment since it was called, even if
//! producers put more meanwhile (Python's `join` behaves the same: it is woken by the
//! `notify_all` at zero and does not re-check).
//!
//! # A worker that dies
//!
//! The count is per queue, not per process: if a worker dies between `get` and `task_done`,
//! its task stays unfinished for ever and `join` does not return — Python's behaviour too.
//! Use [`JoinableQueue::join_timeout`] where workers may die, and [`Queue::lost`]-style
//! accounting ([`JoinableQueue::lost`]) to tell such losses apart.
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
//! q.join(); // every task is done: returns at once
//! assert!(q.task_done().is_err()); // ValueError: task_done() called too many times
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use mproc_futex::{Deadline, futex};

use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::message::Message;
use crate::object::wait::CHECK_INTERVAL;
use crate::object::{self, Object, ObjectKind, ObjectSpec, OpenError};
use crate::queue::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, QueueBuilder, TryGetError,
    TryPutError,
};
use crate::shared::sync::{AtomicU32, AtomicU64, Ordering};

const TASKS_TYPE_NAME: &str = "JoinableQueue task counter";
/// Suffix of the task counter's segment name for a named queue.
const TASKS_SUFFIX: &str = ".jq-tasks";

fn tasks_fingerprint() -> u64 {
    // The counter is a synchronisation word, so it is a `Lock`-kind object; the type tag
    // keeps it apart from real locks (opening one as the other fails the fingerprint check).
    object::fingerprint(ObjectKind::Lock, "JoinableQueue.tasks/v1")
}

fn tasks_name(name: &str) -> String {
    format!("{name}{TASKS_SUFFIX}")
}

/// Why [`JoinableQueue::task_done`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskDoneError {
    /// There was no unfinished task: `task_done` was called more times than items were put.
    /// Python: `ValueError('task_done() called too many times')`.
    #[error("task_done() called too many times")]
    TooManyTimes,
}

/// The shared task counter (`#[repr(C)]`, atomics only: any bytes are a valid value, and
/// every value is untrusted — a corrupt count makes `join` early or late, nothing worse).
#[repr(C)]
struct TaskWords {
    /// Items put and not yet `task_done`.
    unfinished: AtomicU64,
    /// Bumped each time `unfinished` reaches zero; the futex word `join` sleeps on.
    generation: AtomicU32,
    /// `join` calls currently between announcing themselves and leaving.
    joiners: AtomicU32,
}

/// Bytes of the counter's sub-region (one 128-byte line).
const TASKS_REGION: u64 = 128;
const _: () = assert!(size_of::<TaskWords>() as u64 <= TASKS_REGION);

/// A process-local handle on the task counter's segment.
struct Tasks {
    obj: Object,
}

impl Tasks {
    fn create(name: Option<&str>) -> Result<Tasks, OpenError> {
        let spec = ObjectSpec {
            kind: ObjectKind::Lock,
            fingerprint: tasks_fingerprint(),
            type_name: TASKS_TYPE_NAME,
            roles: 1,
            regions: &[TASKS_REGION],
        };
        // A fresh segment is zero-filled: no unfinished task, generation 0, no joiner.
        let obj = Object::create(&spec, name, None, |_| Ok(()))?;
        Tasks::from_object(obj)
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
            .ok_or_else(|| OpenError::Corrupt("task counter has no region".into()))?;
        if r.len < size_of::<TaskWords>() as u64 {
            return Err(OpenError::Corrupt(format!(
                "task counter region of {} bytes",
                r.len
            )));
        }
        Ok(Tasks { obj })
    }

    fn words(&self) -> &TaskWords {
        let r = self.obj.region(0).expect("checked in from_object");
        // SAFETY: `from_object` checked that region 0 exists and holds a `TaskWords`; it is
        // 128-byte aligned (object layout) inside the mapping that `self.obj` keeps alive for
        // as long as `&self`; `TaskWords` is atomics only, valid for any bytes, and only ever
        // accessed atomically.
        unsafe { r.ptr.cast::<TaskWords>().as_ref() }
    }

    /// One more unfinished task (before the item is pushed). Saturates at `u64::MAX`.
    fn begin(&self) {
        let w = self.words();
        // SeqCst throughout this counter: the joiner's Dekker check (see `join`) needs the
        // count, generation and joiners operations in one total order, and the cost is noise
        // next to a queue operation.
        let mut cur = w.unfinished.load(Ordering::SeqCst);
        while cur != u64::MAX {
            match w.unfinished.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// One task fewer; wakes joiners when the count reaches zero.
    fn finish(&self) -> Result<(), TaskDoneError> {
        let w = self.words();
        // SeqCst: see `begin`. The decrement is also what makes a worker's effects before
        // `task_done` visible to a `join` that returns because of it.
        let mut cur = w.unfinished.load(Ordering::SeqCst);
        loop {
            if cur == 0 {
                return Err(TaskDoneError::TooManyTimes);
            }
            match w.unfinished.compare_exchange_weak(
                cur,
                cur - 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur == 1 {
            self.reached_zero();
        }
        Ok(())
    }

    /// The count just reached zero: bump the generation, then wake joiners if any sleep.
    fn reached_zero(&self) {
        let w = self.words();
        // SeqCst pair (Dekker) with `join`: it increments `joiners` then reads `generation`
        // and `unfinished`; we wrote `unfinished` (0), bump `generation`, then read
        // `joiners`. In the single total order either we see its increment (and wake it), or
        // it sees our generation bump and zero count (and does not sleep).
        w.generation.fetch_add(1, Ordering::SeqCst);
        if w.joiners.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&w.generation);
        }
    }

    fn unfinished(&self) -> u64 {
        self.words().unfinished.load(Ordering::SeqCst)
    }

    /// Waits until the count is (or has been, since the call) zero, or `deadline` passes;
    /// `true` unless timed out.
    fn join(&self, deadline: Option<Deadline>) -> bool {
        let w = self.words();
        if w.unfinished.load(Ordering::SeqCst) == 0 {
            return true;
        }
        // SeqCst: the joiner's half of the Dekker pair in `reached_zero`.
        w.joiners.fetch_add(1, Ordering::SeqCst);
        let start = w.generation.load(Ordering::SeqCst);
        let done = loop {
            if w.unfinished.load(Ordering::SeqCst) == 0
                || w.generation.load(Ordering::SeqCst) != start
            {
                break true;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                break false;
            }
            // Sleep in slices: a task_done whose process died between zeroing the count and
            // bumping the generation rings nobody; the next slice sees the zero count.
            let slice = Deadline::after(CHECK_INTERVAL);
            let until = match deadline {
                Some(d) if d < slice => d,
                _ => slice,
            };
            futex::wait(&w.generation, start, Some(until));
        };
        // Relaxed: `joiners` only decides whether `reached_zero` makes a wake system call; a
        // stale nonzero value costs one needless wake, nothing more.
        w.joiners.fetch_sub(1, Ordering::Relaxed);
        done
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
    pub fn new() -> Result<JoinableQueue<T>, OpenError> {
        Self::from_builder(Queue::builder())
    }

    /// A joinable queue of at most `capacity` items, exactly (0 is taken as 1; Python:
    /// `JoinableQueue(maxsize)`).
    ///
    /// # Errors
    ///
    /// As [`JoinableQueue::new`].
    pub fn with_capacity(capacity: u32) -> Result<JoinableQueue<T>, OpenError> {
        Self::from_builder(Queue::builder().capacity(capacity))
    }

    /// A joinable queue with the options of `builder` (capacity, slot and arena sizes, ...).
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`].
    pub fn from_builder(builder: QueueBuilder<T>) -> Result<JoinableQueue<T>, OpenError> {
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
    /// As [`QueueBuilder::create_named`] (an existing name is [`OpenError::Segment`]).
    pub fn create_named(
        builder: QueueBuilder<T>,
        name: &str,
    ) -> Result<JoinableQueue<T>, OpenError> {
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
    /// As [`Queue::open_named`]; [`OpenError::Segment`] (`NotFound`) if `name` is a plain
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
    /// [`OpenError::Segment`] if either name does not exist (the other is still removed).
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        let a = Queue::<T>::unlink_named(name);
        let b = crate::names::unlink(&tasks_name(name));
        a.and(b)
    }

    /// The [`Queue`] handle underneath (for `get_ref` and other queue-only calls). Items
    /// put through it directly are not counted as tasks.
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    // ------------------------------------------------------------------------------------
    // put: count first, then push; give the count back if the push fails.

    fn counted<E>(&self, push: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        self.tasks.begin();
        let r = push();
        if r.is_err() {
            // The item never entered the queue: nobody can task_done it.
            let _ = self.tasks.finish();
        }
        r
    }

    /// Puts `item` and counts one more unfinished task, blocking while the queue is full.
    /// Python: `put(item)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`] (then the task is not counted).
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.counted(|| self.queue.put(item))
    }

    /// As [`JoinableQueue::put`], blocking at most `timeout`. Python: `put(item, timeout=t)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_timeout`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.counted(|| self.queue.put_timeout(item, timeout))
    }

    /// As [`JoinableQueue::put`], only if there is room now. Python: `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_nowait`].
    pub fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
        self.counted(|| self.queue.put_nowait(item))
    }

    // ------------------------------------------------------------------------------------
    // get: as Queue.

    /// Takes the next item, blocking while the queue is empty. Python: `get()`. Call
    /// [`task_done`](Self::task_done) once it is processed.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }

    /// Takes the next item, blocking at most `timeout`. Python: `get(timeout=t)`.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.queue.get_timeout(timeout)
    }

    /// Takes the next item if there is one now. Python: `get_nowait()`.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_nowait`].
    pub fn get_nowait(&self) -> Result<T, TryGetError> {
        self.queue.get_nowait()
    }

    // ------------------------------------------------------------------------------------
    // tasks

    /// Marks one task, taken earlier with `get`, as processed. Python: `task_done()`. When
    /// the last unfinished task is done, every [`join`](Self::join) returns. Any handle (in
    /// any process) may call it for any item.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError::TooManyTimes`] when no task is unfinished (Python's `ValueError`);
    /// the count stays zero.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.tasks.finish()
    }

    /// Blocks until every item ever put has been marked [`task_done`](Self::task_done)
    /// (precisely: until the unfinished count has been zero at some moment since the call).
    /// Python: `join()`. Returns at once when nothing is unfinished.
    ///
    /// Blocks for ever if a task is never marked done — for example if the worker that got it
    /// died (see the [module docs](self)); prefer [`join_timeout`](Self::join_timeout) then.
    pub fn join(&self) {
        self.tasks.join(None);
    }

    /// As [`JoinableQueue::join`], for at most `timeout`; `true` if every task was done,
    /// `false` on timeout (no Python counterpart: Python's `join` has no timeout).
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.tasks.join(Some(Deadline::after(timeout)))
    }

    /// Items put and not yet marked done, in every process (a snapshot). Python keeps it in
    /// the private `_unfinished_tasks`.
    pub fn unfinished_tasks(&self) -> u64 {
        self.tasks.unfinished()
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
    /// [`Queue::lost`]. (Their tasks stay unfinished.)
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
        let tasks = Tasks::from_fd(fd).map_err(|e| PassError::Other(e.to_string()))?;
        Ok(JoinableQueue {
            queue,
            tasks: Arc::new(tasks),
        })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.queue.adopt()?;
        // The counter keeps no holder count (nothing waits for "every handle is gone");
        // registering gives the child its own participant entry, like a Lock.
        self.tasks
            .obj
            .me()
            .map(drop)
            .map_err(|e| PassError::Other(e.to_string()))
    }
}
