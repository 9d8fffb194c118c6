//! [`Event`]: Python's `multiprocessing.Event` across processes, over `mproc-futex`'s
//! [`Event`](mproc_futex::Event).

use std::fmt;
use std::time::Duration;

use mproc_futex::{Deadline, Wait};

use super::backing::Kind;
use super::handle::shared_handle;
use crate::storage::object::CreateError;

type RawEvent = mproc_futex::Event;

const KIND: Kind = Kind::of::<RawEvent>("Event/v1", "Event");

shared_handle! {
    /// A flag shared between processes (Python's `multiprocessing.Event`): [`set`](Self::set)
    /// wakes every waiter, [`clear`](Self::clear) resets it.
    ///
    /// Unlike Python's, `set` never waits for the waiters to acknowledge, so a waiter that died
    /// cannot make it hang (Python's P10).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::Event;
    /// use std::time::Duration;
    ///
    /// let ev = Event::new()?;
    /// assert!(!ev.wait_timeout(Duration::from_millis(1)));
    /// ev.set();
    /// assert!(ev.is_set() && ev.wait_timeout(Duration::ZERO));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct Event;
    kind: KIND,
    state: RawEvent,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_set() { "set" } else { "unset" };
        write!(f, "<Event {state}>")
    }
}

impl Event {
    /// A new, unset event in the small-object [cell store](crate::storage::cells) (Python: `Event()`).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new() -> Result<Event, CreateError> {
        // All-zero bytes are an unset `mproc_futex::Event`.
        Event::create(None, |_| ())
    }

    /// A new, unset event under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str) -> Result<Event, CreateError> {
        Event::create(Some(name), |_| ())
    }

    /// Whether the flag is set (Python: `is_set()`).
    pub fn is_set(&self) -> bool {
        self.state().is_set()
    }

    /// Sets the flag and wakes every waiter (Python: `set()`).
    pub fn set(&self) {
        self.state().set();
    }

    /// Clears the flag (Python: `clear()`).
    pub fn clear(&self) {
        self.state().clear();
    }

    /// Waits until the flag is set (Python: `wait()`, which then returns `True`).
    pub fn wait(&self) {
        while !self.wait_for(Wait::Forever) {}
    }

    /// Waits at most `timeout`; returns whether the flag was set (Python: `wait(timeout)`;
    /// `Duration::ZERO` never blocks). A `set` followed at once by `clear` still wakes the
    /// waiters with `true`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_for(Wait::Until(Deadline::after(timeout)))
    }

    /// Every wait goes through here with its wait mode.
    fn wait_for(&self, mode: Wait) -> bool {
        self.state().wait(mode)
    }
}
