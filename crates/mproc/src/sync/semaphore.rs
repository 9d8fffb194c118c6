//! [`Semaphore`] and [`BoundedSemaphore`]: Python's counting semaphores across processes,
//! over `mproc-futex`'s primitives.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mproc_futex::{Deadline, ReleaseError};

use super::backing::{Backing, Kind, Shared};
use super::handle::shared_handle;
use crate::object::OpenError;

type RawSemaphore = mproc_futex::Semaphore;
type RawBounded = mproc_futex::BoundedSemaphore;

const KIND: Kind = Kind {
    tag: "Semaphore/v1",
    name: "Semaphore",
    size: size_of::<RawSemaphore>(),
    align: align_of::<RawSemaphore>(),
};

const BOUNDED_KIND: Kind = Kind {
    tag: "BoundedSemaphore/v1",
    name: "BoundedSemaphore",
    size: size_of::<RawBounded>(),
    align: align_of::<RawBounded>(),
};

/// A counting semaphore shared between processes (Python's `multiprocessing.Semaphore`).
///
/// Any thread of any process may release it. Permits held by a process that dies are **not**
/// returned: a semaphore does not know who holds its permits (as with POSIX and Python
/// semaphores). Use a [`Lock`](crate::Lock) when ownership must survive a crash.
///
/// # Examples
///
/// ```
/// use mproc::sync::Semaphore;
/// use std::time::Duration;
///
/// let sem = Semaphore::new(2)?;
/// sem.acquire();
/// assert!(sem.try_acquire());
/// assert!(!sem.acquire_timeout(Duration::from_millis(1)));
/// sem.release()?;
/// assert_eq!(sem.get_value(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    shared: Arc<Shared>,
}

shared_handle!(Semaphore, KIND);

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Semaphore(value={})>", self.get_value())
    }
}

impl Semaphore {
    /// A semaphore with `value` permits, in the small-object [pool](crate::pool) (Python:
    /// `Semaphore(value)`; the count is unsigned, so Python's negative-value error cannot
    /// happen).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new(value: u32) -> Result<Semaphore, OpenError> {
        let backing = Backing::new(&KIND, |p| init_semaphore(p, value))?;
        Semaphore::from_shared(Shared::new(backing))
    }

    /// A semaphore with `value` permits under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::names`]).
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] for an invalid or existing name, or another segment error.
    pub fn create_named(name: &str, value: u32) -> Result<Semaphore, OpenError> {
        let backing = Backing::create_named(&KIND, name, |p| init_semaphore(p, value))?;
        Semaphore::from_shared(Shared::new(backing))
    }

    fn from_shared(shared: Arc<Shared>) -> Result<Semaphore, OpenError> {
        Ok(Semaphore { shared })
    }

    fn raw(&self) -> &RawSemaphore {
        // SAFETY: the backing was made for KIND, whose state is one `mproc_futex::Semaphore`
        // (atomics, valid for any bytes, only accessed atomically).
        unsafe { self.shared.state::<RawSemaphore>() }
    }

    /// Takes a permit, sleeping until one is available (Python: `acquire()`).
    pub fn acquire(&self) {
        while !self.raw().acquire(None) {}
    }

    /// Takes a permit if one is available now (Python: `acquire(block=False)`).
    pub fn try_acquire(&self) -> bool {
        self.raw().try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`; `false` on timeout (Python:
    /// `acquire(timeout=t)`).
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw().acquire(Some(Deadline::after(timeout)))
    }

    /// Returns a permit, waking a sleeper if any (Python: `release()`).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Overflow`] if the count would exceed `u32::MAX`.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.raw().release(1)
    }

    /// The number of permits now (Python: `get_value()`).
    pub fn get_value(&self) -> u32 {
        self.raw().value()
    }
}

fn init_semaphore(p: std::ptr::NonNull<u8>, value: u32) {
    // SAFETY: `p` is the zeroed, unpublished state of a KIND object: a valid `Semaphore`.
    unsafe { p.cast::<RawSemaphore>().as_ref() }.init(value);
}

fn init_bounded(p: std::ptr::NonNull<u8>, value: u32) {
    // SAFETY: `p` is the zeroed, unpublished state of a BOUNDED_KIND object.
    unsafe { p.cast::<RawBounded>().as_ref() }.init(value);
}

/// A semaphore whose count may never exceed its initial value (Python's
/// `multiprocessing.BoundedSemaphore`). Releasing above the bound is
/// [`ReleaseError::TooManyReleases`] (Python's `ValueError('semaphore or lock released too
/// many times')`), and, unlike Python's, the check is atomic. Death: as for [`Semaphore`].
///
/// # Examples
///
/// ```
/// use mproc::sync::{BoundedSemaphore, ReleaseError};
///
/// let sem = BoundedSemaphore::new(1)?;
/// assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
/// sem.acquire();
/// sem.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    shared: Arc<Shared>,
}

shared_handle!(BoundedSemaphore, BOUNDED_KIND);

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<BoundedSemaphore(value={}, maxvalue={})>",
            self.get_value(),
            self.raw().bound()
        )
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits and bound, in the small-object
    /// [pool](crate::pool) (Python: `BoundedSemaphore(value)`).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new(value: u32) -> Result<BoundedSemaphore, OpenError> {
        let backing = Backing::new(&BOUNDED_KIND, |p| init_bounded(p, value))?;
        BoundedSemaphore::from_shared(Shared::new(backing))
    }

    /// A bounded semaphore under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::names`]).
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] for an invalid or existing name, or another segment error.
    pub fn create_named(name: &str, value: u32) -> Result<BoundedSemaphore, OpenError> {
        let backing = Backing::create_named(&BOUNDED_KIND, name, |p| init_bounded(p, value))?;
        BoundedSemaphore::from_shared(Shared::new(backing))
    }

    fn from_shared(shared: Arc<Shared>) -> Result<BoundedSemaphore, OpenError> {
        Ok(BoundedSemaphore { shared })
    }

    fn raw(&self) -> &RawBounded {
        // SAFETY: the backing was made for BOUNDED_KIND, whose state is one
        // `mproc_futex::BoundedSemaphore` (atomics, valid for any bytes).
        unsafe { self.shared.state::<RawBounded>() }
    }

    /// See [`Semaphore::acquire`].
    pub fn acquire(&self) {
        while !self.raw().acquire(None) {}
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> bool {
        self.raw().try_acquire()
    }

    /// See [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw().acquire(Some(Deadline::after(timeout)))
    }

    /// Returns a permit unless that would exceed the initial value.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::TooManyReleases`] (Python's `ValueError`); nothing is released.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.raw().release(1)
    }

    /// The number of permits now (Python: `get_value()`).
    pub fn get_value(&self) -> u32 {
        self.raw().value()
    }

    /// The bound: the initial value (Python's `maxvalue` in `repr`).
    pub fn bound(&self) -> u32 {
        self.raw().bound()
    }
}
