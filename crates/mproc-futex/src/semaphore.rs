//! [`Semaphore`] and [`BoundedSemaphore`]: counting semaphores in shared memory.
//!
//! Two words: the permit count (the futex word) and a count of sleepers, so a release makes a
//! system call only when somebody may sleep. They follow mproc-core's sleepers protocol
//! ([`Sleepers`], whose docs argue it) with the futex word as the condition: a releaser adds
//! permits, then asks [`Sleepers::should_wake`] (fence, read the count); a sleeper registers
//! ([`Sleepers::register`]: count, fence), then reads the permits and sleeps only on 0, so at
//! least one of them sees the other (and the kernel re-checks the permit word before
//! sleeping).
//!
//! # Participant death
//!
//! Permits held by a process that dies are **not** returned (as with POSIX and Python
//! semaphores: a semaphore does not know who holds its permits). A process that dies while
//! asleep leaves the sleeper count one too high, which only costs later releases a wake-up
//! call that finds nobody. Use a lock (robust) when ownership must survive crashes.

use crate::deadline::Wait;
use crate::sync::{AtomicU32, Ordering};
use crate::waiter::{Futex, Waiter};
use mproc_core::sleepers::Sleepers;
use std::marker::PhantomData;

/// Why a release was refused; nothing was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// [`BoundedSemaphore`] only: the release would raise the count above its initial value
    /// (Python's `ValueError: Semaphore released too many times`).
    #[error("semaphore released too many times")]
    TooManyReleases,
    /// The count would exceed `u32::MAX`.
    #[error("semaphore count would overflow")]
    Overflow,
}

/// A counting semaphore (Python's `multiprocessing.Semaphore`), `#[repr(C)]`, eight bytes.
/// All-zero bytes are a semaphore with no permits; [`init`](Self::init) sets a count.
///
/// # Examples
///
/// ```
/// use mproc_futex::{Semaphore, Wait};
///
/// let sem: Semaphore = Semaphore::with_permits(1);
/// assert!(sem.try_acquire());
/// assert!(!sem.try_acquire());
/// sem.release(1).unwrap();
/// assert!(sem.acquire(Wait::Forever));
/// ```
#[repr(C)]
pub struct Semaphore<W: Waiter = Futex> {
    permits: AtomicU32,
    sleepers: Sleepers,
    _waiter: PhantomData<fn() -> W>,
}

// SAFETY: `repr(C)`, two `AtomicU32`s (any count is a count) and a zero-sized marker;
// `Sync`.
crate::primitive::shared_primitive!(Semaphore<W>, default: with_permits_for_waiter(0));

crate::primitive::debug_via_getters!(Semaphore<W> { permits: value, .. });

impl<W: Waiter> Semaphore<W> {
    /// A semaphore holding `permits` permits.
    #[cfg(not(mproc_loom))]
    pub const fn with_permits_for_waiter(permits: u32) -> Self {
        Semaphore {
            permits: AtomicU32::new(permits),
            sleepers: Sleepers::new(),
            _waiter: PhantomData,
        }
    }

    /// A semaphore holding `permits` permits.
    #[cfg(mproc_loom)]
    pub fn with_permits_for_waiter(permits: u32) -> Self {
        Semaphore {
            permits: AtomicU32::new(permits),
            sleepers: Sleepers::new(),
            _waiter: PhantomData,
        }
    }

    /// Sets the count of a semaphore nobody uses yet (e.g. a zeroed one in a fresh segment).
    pub fn init(&self, permits: u32) {
        // Release: publishes the count to whoever later observes the object as ready.
        self.permits.store(permits, Ordering::Release);
    }

    /// The current number of permits (a snapshot; Python's `get_value`).
    pub fn value(&self) -> u32 {
        // Relaxed: a snapshot for display.
        self.permits.load(Ordering::Relaxed)
    }

    /// Takes a permit if one is available, without sleeping (`acquire(block=False)`).
    pub fn try_acquire(&self) -> bool {
        // Relaxed: the CAS below is the synchronising access.
        let mut c = self.permits.load(Ordering::Relaxed);
        while c > 0 {
            // Acquire: pairs with the Release in `release`, so what the releaser wrote before
            // releasing is visible to the acquirer.
            match self
                .permits
                .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Takes a permit, sleeping until one is released or `wait` runs out; `false` on
    /// timeout (Python's `acquire(timeout=...)` returning `False`). [`Wait::Never`] is
    /// [`try_acquire`](Self::try_acquire).
    pub fn acquire(&self, wait: Wait) -> bool {
        if !wait.blocks() {
            return self.try_acquire();
        }
        let deadline = wait.deadline();
        loop {
            if self.try_acquire() {
                return true;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return false;
            }
            // Register (count, fence), then look again (Dekker pair with `release`).
            self.sleepers.register();
            // Relaxed: the fence orders it; the CAS in try_acquire does the Acquire.
            let woken = if self.permits.load(Ordering::Relaxed) == 0 {
                W::wait(&self.permits, 0, deadline)
            } else {
                true
            };
            self.sleepers.unregister();
            if !woken {
                // One last try: a permit may have arrived with the timeout.
                return self.try_acquire();
            }
        }
    }

    /// Adds `n` permits and wakes up to `n` sleepers (Python's `release(n)`).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Overflow`] if the count would exceed `u32::MAX`.
    pub fn release(&self, n: u32) -> Result<(), ReleaseError> {
        self.release_bounded(n, u32::MAX, ReleaseError::Overflow)
    }

    fn release_bounded(&self, n: u32, bound: u32, err: ReleaseError) -> Result<(), ReleaseError> {
        if n == 0 {
            return Ok(());
        }
        // Relaxed: the CAS below is the synchronising access.
        let mut c = self.permits.load(Ordering::Relaxed);
        loop {
            let next = match c.checked_add(n) {
                Some(next) if next <= bound => next,
                Some(_) => return Err(err),
                None => return Err(ReleaseError::Overflow),
            };
            // Release: pairs with the Acquire CAS in `try_acquire`.
            match self
                .permits
                .compare_exchange_weak(c, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        // Dekker pair with `acquire`: permits published, then fence and look for sleepers.
        if self.sleepers.should_wake() {
            W::wake(&self.permits, n);
        }
        Ok(())
    }
}

/// A semaphore whose count may never exceed its initial value (Python's
/// `multiprocessing.BoundedSemaphore`), `#[repr(C)]`, twelve bytes.
///
/// All-zero bytes are a semaphore with bound 0; call [`init`](Self::init) before use. The
/// bound lives in shared memory too: a peer that corrupts it can only cause errors.
/// Participant death: as for [`Semaphore`], permits held by a dead process are not returned.
///
/// # Examples
///
/// ```
/// use mproc_futex::{BoundedSemaphore, ReleaseError, Wait};
///
/// let sem: BoundedSemaphore = BoundedSemaphore::with_permits(1);
/// assert_eq!(sem.release(1), Err(ReleaseError::TooManyReleases));
/// assert!(sem.acquire(Wait::Forever));
/// assert_eq!(sem.release(1), Ok(()));
/// ```
#[repr(C)]
pub struct BoundedSemaphore<W: Waiter = Futex> {
    sem: Semaphore<W>,
    bound: AtomicU32,
}

// SAFETY: `repr(C)`, a `Semaphore` (`SharedState`) and an `AtomicU32` bound; `Sync`.
crate::primitive::shared_primitive!(BoundedSemaphore<W>);

crate::primitive::debug_via_getters!(BoundedSemaphore<W> { permits: value, bound: bound });

impl<W: Waiter> BoundedSemaphore<W> {
    /// A semaphore with `permits` permits and the same bound.
    #[cfg(not(mproc_loom))]
    pub const fn with_permits_for_waiter(permits: u32) -> Self {
        BoundedSemaphore {
            sem: Semaphore::with_permits_for_waiter(permits),
            bound: AtomicU32::new(permits),
        }
    }

    /// A semaphore with `permits` permits and the same bound.
    #[cfg(mproc_loom)]
    pub fn with_permits_for_waiter(permits: u32) -> Self {
        BoundedSemaphore {
            sem: Semaphore::with_permits_for_waiter(permits),
            bound: AtomicU32::new(permits),
        }
    }

    /// Sets count and bound of a semaphore nobody uses yet.
    pub fn init(&self, permits: u32) {
        // Relaxed: published by the Release in `Semaphore::init`.
        self.bound.store(permits, Ordering::Relaxed);
        self.sem.init(permits);
    }

    /// The bound (initial value).
    pub fn bound(&self) -> u32 {
        // Relaxed: written once at initialisation.
        self.bound.load(Ordering::Relaxed)
    }

    /// The current number of permits.
    pub fn value(&self) -> u32 {
        self.sem.value()
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// See [`Semaphore::acquire`].
    pub fn acquire(&self, wait: Wait) -> bool {
        self.sem.acquire(wait)
    }

    /// Adds `n` permits unless that would exceed the bound.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::TooManyReleases`] if the count would exceed the bound.
    pub fn release(&self, n: u32) -> Result<(), ReleaseError> {
        self.sem
            .release_bounded(n, self.bound(), ReleaseError::TooManyReleases)
    }
}

impl Semaphore {
    crate::sync::loom_const_fn! {
        /// A fresh value sleeping with [`Futex`] (see the type docs). For another [`Waiter`],
        /// use [`Semaphore::with_permits_for_waiter`].
        pub fn with_permits(permits: u32) -> Self {
            Self::with_permits_for_waiter(permits)
        }
    }
}

impl BoundedSemaphore {
    crate::sync::loom_const_fn! {
        /// A bounded semaphore with `permits` permits and that bound, sleeping with [`Futex`].
        /// (For another [`Waiter`], use [`BoundedSemaphore::with_permits_for_waiter`].)
        pub fn with_permits(permits: u32) -> Self {
            Self::with_permits_for_waiter(permits)
        }
    }
}
