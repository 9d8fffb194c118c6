//! [`SimpleQueue<T>`]: Python's `multiprocessing.SimpleQueue`, the lightest queue — `put`,
//! `get`, `empty`, `close` and nothing else — as a thin layer over the facade's
//! [`Queue`].
//!
//! # Python → mproc
//!
//! | Python | mproc |
//! |---|---|
//! | `SimpleQueue()` | [`SimpleQueue::new`] ([`DEFAULT_CAPACITY`] items) / [`SimpleQueue::with_capacity`] |
//! | `put(obj)` | [`SimpleQueue::put`] (blocks while full, like Python's on a full pipe) |
//! | `get()` | [`SimpleQueue::get`]; [`SimpleQueue::get_timeout`] has no Python counterpart |
//! | `empty()` | [`SimpleQueue::empty`] (a snapshot) |
//! | `close()` (3.9) | [`SimpleQueue::close`]; later `put`/`get` are `Closed` (Python: `OSError('handle is closed')`) |
//! | `Process(target, args=(q,))` | pass the queue (or a `clone()`) in `Process` args |
//!
//! # Capacity: bounded shared memory underneath
//!
//! Python's `SimpleQueue` is a pipe: no capacity to choose, but `put` blocks once the kernel's
//! pipe buffer (about 64 KiB) is full. Here the queue is a [`Queue`] ring in shared memory of
//! [`DEFAULT_CAPACITY`] items (8192 — far more than a pipe buffer holds for small messages;
//! messages larger than a slot go out of line in a 1 MiB arena, as in [`Queue`]). When it is
//! full, [`put`](SimpleQueue::put) **blocks** until a consumer makes room, as Python's does;
//! unlike Python's, it returns [`PutError::Disconnected`] instead of blocking for ever when
//! no other handle could ever get. [`SimpleQueue::with_capacity`] picks another size.
//!
//! Everything else — the holder rule that makes [`GetError::Disconnected`] exact, crash
//! recovery, message validation — is [`Queue`]'s, see its [module docs](crate::queue).
//!
//! # Differences from Python
//!
//! * [`empty`](SimpleQueue::empty) on a closed handle still answers (Python raises `OSError`):
//!   it only reads the shared ring.
//! * A named `SimpleQueue<T>` is a named `Queue<T>` underneath: either type opens the other's
//!   name (they share one layout and fingerprint).
//!
//! # Example
//!
//! ```
//! use mproc::{Process, SimpleQueue};
//! use std::time::Duration;
//!
//! let q: SimpleQueue<String> = SimpleQueue::new()?;
//! let mut child = Process::new(
//!     |(q,): (SimpleQueue<String>,)| q.put("from the child".to_string()).expect("put"),
//!     (q.clone(),),
//! );
//! child.start()?;
//! assert_eq!(q.get_timeout(Duration::from_secs(10))?, "from the child");
//! assert_eq!(child.join_timeout(Duration::from_secs(10))?.map(|s| s.exitcode()), Some(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::message::Message;
use crate::queue::{GetError, GetTimeoutError, PutError, Queue};
use crate::storage::object::{CreateError, OpenError};

/// Default number of slots of a [`SimpleQueue`]: large, so that `put` rarely blocks (Python's
/// pipe-backed `SimpleQueue` blocks after about 64 KiB).
pub const DEFAULT_CAPACITY: u32 = 8192;

/// Python's `multiprocessing.SimpleQueue`: a [`Queue`] with only `put`, `get`, `empty` and
/// `close`. See the [module docs](self).
pub struct SimpleQueue<T: Message> {
    inner: Queue<T>,
}

impl<T: Message> SimpleQueue<T> {
    /// A queue of [`DEFAULT_CAPACITY`] items (Python: `SimpleQueue()`).
    ///
    /// # Errors
    ///
    /// A segment error (out of memory, too many open files).
    pub fn new() -> Result<SimpleQueue<T>, CreateError> {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A queue of `capacity` items, exactly (0 is taken as 1); `put` blocks when it is
    /// full.
    ///
    /// # Errors
    ///
    /// As [`SimpleQueue::new`].
    pub fn with_capacity(capacity: u32) -> Result<SimpleQueue<T>, CreateError> {
        Ok(SimpleQueue {
            inner: Queue::builder().capacity(capacity).create()?,
        })
    }

    /// Creates a queue of [`DEFAULT_CAPACITY`] items named `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]), which
    /// unrelated processes open with [`SimpleQueue::open_named`] (or [`Queue::open_named`]).
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create_named`](crate::queue::QueueBuilder::create_named).
    pub fn create_named(name: &str) -> Result<SimpleQueue<T>, CreateError> {
        Ok(SimpleQueue {
            inner: Queue::builder()
                .capacity(DEFAULT_CAPACITY)
                .create_named(name)?,
        })
    }

    /// Opens the queue named `name`, checking that it holds `T`s.
    ///
    /// # Errors
    ///
    /// As [`Queue::open_named`]: [`OpenError::WrongType`] for another message type.
    pub fn open_named(name: &str) -> Result<SimpleQueue<T>, OpenError> {
        Ok(SimpleQueue {
            inner: Queue::open_named(name)?,
        })
    }

    /// Removes the name `name`; open handles keep working.
    ///
    /// # Errors
    ///
    /// As [`Queue::unlink_named`].
    pub fn unlink_named(name: &str) -> Result<(), OpenError> {
        Queue::<T>::unlink_named(name)
    }

    /// Wraps an existing queue handle (for example one built with [`Queue::builder`]).
    pub fn from_queue(queue: Queue<T>) -> SimpleQueue<T> {
        SimpleQueue { inner: queue }
    }

    /// The underlying [`Queue`] handle (with timeouts, `qsize`, `get_ref`, ...).
    pub fn into_queue(self) -> Queue<T> {
        self.inner
    }

    /// Puts `item`, blocking while the queue is full (Python: `put(obj)`). The item is
    /// encoded here, synchronously: an encoding error reaches the caller (Python's does too,
    /// unlike `Queue.put`).
    ///
    /// # Errors
    ///
    /// [`PutError::Disconnected`] (full, and no other handle can ever get),
    /// [`PutError::Closed`], [`PutError::Message`]; the item comes back in each.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.inner.put(item)
    }

    /// Takes the next item, blocking while the queue is empty (Python: `get()`).
    ///
    /// # Errors
    ///
    /// [`GetError::Disconnected`] (empty, and no other handle can ever put — Python would
    /// block for ever), [`GetError::Closed`], [`GetError::Message`].
    pub fn get(&self) -> Result<T, GetError> {
        self.inner.get()
    }

    /// Takes the next item, blocking at most `timeout` (no Python counterpart: mproc gives
    /// every blocking call a bounded sibling).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`], and as [`SimpleQueue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.inner.get_timeout(timeout)
    }

    /// Whether the queue looks empty (Python: `empty()`): a snapshot, exact when nobody is
    /// mid-operation. Right after this process's own `put` it is `false` (Python's may still
    /// be `true`, its pitfall P1).
    pub fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// Stops this handle being a holder (Python: `close()`); later `put`/`get` on it report
    /// `Closed`. Idempotent; dropping the handle does the same.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`SimpleQueue::close`] was called on this handle.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl<T: Message> Clone for SimpleQueue<T> {
    /// Another handle to the same queue, counted as one more holder.
    fn clone(&self) -> Self {
        SimpleQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Message> From<Queue<T>> for SimpleQueue<T> {
    fn from(queue: Queue<T>) -> Self {
        SimpleQueue::from_queue(queue)
    }
}

impl<T: Message> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimpleQueue").field(&self.inner).finish()
    }
}

impl<T: Message> Passable for SimpleQueue<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.inner.export(out)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        Ok(SimpleQueue {
            inner: Queue::import(input)?,
        })
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        self.inner.adopt()
    }
}
