//! [`Semaphore`] and [`BoundedSemaphore`]: Python's counting semaphores across processes,
//! over `mproc-futex`'s [`RobustSemaphore`](mproc_futex::RobustSemaphore).
//!
//! See [`Semaphore`] for what happens to the permits of a holder that dies.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mproc_core::shared::{SharedBytes, shared_at};
use mproc_futex::{Caller, Deadline, GiveError, LedgerError, Wait};
use mproc_shm::RegisterError;

use super::backing::{Kind, Shared};
use super::handle::shared_handle;
use crate::shared::sync::{AtomicU64, Ordering};
use crate::storage::object::{CreateError, OpenError};

type RawSemaphore = mproc_futex::RobustSemaphore;

const KIND: Kind = Kind::of::<RawSemaphore>("Semaphore/v2", "Semaphore");

const BOUNDED_KIND: Kind = Kind::of::<RawSemaphore>("BoundedSemaphore/v2", "BoundedSemaphore");

/// How often a `try_acquire` that finds no permit asks the kernel about the holders (a
/// blocked `acquire` asks after each check interval of its sleep).
const POLL_RECLAIM_INTERVAL: Duration = Duration::from_millis(20);

/// Why a semaphore operation could not run (nothing changed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SemaphoreError {
    /// This process could not register in the semaphore's segment (every participant entry
    /// is held by a live process).
    #[error("cannot register in the semaphore's segment: {0}")]
    Register(RegisterError),
    /// The semaphore's shared state is corrupt (its ledger guard is unusable): only a peer
    /// writing garbage into shared memory gets there.
    #[error("the semaphore's shared state is corrupt")]
    Corrupt,
}

/// Why a release was refused; nothing was released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// [`BoundedSemaphore`] only: the release would raise the count above its initial value
    /// (Python's `ValueError: Semaphore released too many times`).
    #[error("semaphore released too many times")]
    TooManyReleases,
    /// [`Semaphore`]: the count would exceed `u32::MAX`.
    #[error("semaphore count would overflow")]
    Overflow,
    /// As for an acquire.
    #[error(transparent)]
    Semaphore(#[from] SemaphoreError),
}

impl From<LedgerError> for SemaphoreError {
    fn from(e: LedgerError) -> Self {
        match e {
            // No deadline is passed for these (Timeout) and no fault point is armed (Died):
            // neither can happen; both would mean the state is not what we wrote.
            // `LedgerError` is non-exhaustive: anything new is unexpected state as well.
            LedgerError::Corrupt | LedgerError::Timeout | LedgerError::Died => {
                SemaphoreError::Corrupt
            }
            _ => SemaphoreError::Corrupt,
        }
    }
}

/// The shared part both handle types use.
struct Inner<'a> {
    shared: &'a Shared,
    /// When this handle last asked about dead holders (CLOCK_MONOTONIC nanoseconds; 0 =
    /// never): process-local, lock-free (no lock may be held across a `fork`).
    last_reclaim: &'a AtomicU64,
}

impl Inner<'_> {
    fn raw(&self) -> &RawSemaphore {
        self.shared.state::<RawSemaphore>()
    }

    /// This process as a ledger caller (registering in the segment on first use).
    fn caller(&self) -> Result<Caller<'_>, SemaphoreError> {
        let id = self.shared.backing.me().map_err(SemaphoreError::Register)?;
        Ok(Caller {
            id,
            liveness: &self.shared.liveness,
        })
    }

    fn with_caller<R>(
        &self,
        f: impl FnOnce(&RawSemaphore, Caller<'_>) -> Result<R, LedgerError>,
    ) -> Result<R, SemaphoreError> {
        Ok(f(self.raw(), self.caller()?)?)
    }

    /// Every acquire goes through here with its wait mode (`Never`: the try path, which
    /// now and then reclaims dead holders' permits).
    fn acquire(&self, mode: Wait) -> Result<bool, SemaphoreError> {
        match mode {
            Wait::Never => self.try_acquire(),
            Wait::Until(_) | Wait::Forever => self.with_caller(|raw, who| raw.acquire(who, mode)),
        }
    }

    fn try_acquire(&self) -> Result<bool, SemaphoreError> {
        let got = self.with_caller(|raw, who| raw.try_acquire(who))?;
        if got || !self.reclaim_due() {
            return Ok(got);
        }
        // A poller must not wait for ever behind a dead holder either: now and then, look.
        if self.reclaim_dead()? == 0 {
            return Ok(false);
        }
        self.with_caller(|raw, who| raw.try_acquire(who))
    }

    /// Whether this handle last asked about dead holders long enough ago.
    fn reclaim_due(&self) -> bool {
        let now = u64::try_from(Deadline::now().as_monotonic().as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: a process-local throttle; a race costs at most one extra look.
        let last = self.last_reclaim.load(Ordering::Relaxed);
        let interval = u64::try_from(POLL_RECLAIM_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < interval {
            return false;
        }
        self.last_reclaim.store(now, Ordering::Relaxed);
        true
    }

    fn reclaim_dead(&self) -> Result<u64, SemaphoreError> {
        self.with_caller(|raw, who| raw.reclaim_dead(who))
    }

    fn release(&self, overflow: ReleaseError) -> Result<(), ReleaseError> {
        match self.raw().release(self.caller()?, 1) {
            Ok(()) => Ok(()),
            Err(GiveError::TooMany) => Err(overflow),
            Err(GiveError::Ledger(e)) => Err(SemaphoreError::from(e).into()),
            // `GiveError` is non-exhaustive: anything else means unexpected state.
            Err(_) => Err(SemaphoreError::Corrupt.into()),
        }
    }
}

/// Declares a semaphore handle type: its shared part, and when this process last looked
/// for dead holders' permits (a rate limit of the reclaim).
macro_rules! semaphore_type {
    ($(#[$attr:meta])* pub struct $ty:ident; kind: $kind:expr $(,)?) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $ty {
            shared: Arc<Shared>,
            last_reclaim: Arc<AtomicU64>,
        }

        shared_handle!($ty, $kind);
    };
}

semaphore_type! {
    /// A counting semaphore shared between processes (Python's `multiprocessing.Semaphore`).
    ///
    /// Any thread of any process may release it.
    ///
    /// # A holder that dies
    ///
    /// Unlike Python's (and POSIX) semaphores, these know who holds their permits: a ledger in
    /// the semaphore's shared state records, per process, the permits it acquired and has not
    /// released. When a process dies holding permits — SIGKILL, a crash, or a normal exit without
    /// releasing — they come back: a survivor blocked in `acquire` notices within about 32 ms of
    /// sleeping (it asks the kernel about the holders whenever a check interval passes without a
    /// permit), and [`Semaphore::reclaim_dead`] does it on demand (a `try_acquire` poller calls
    /// it now and then by itself). [`Semaphore::reclaimed`] counts the permits given back.
    ///
    /// **The rule.** Any process may release, as in Python. A release by a process that holds no
    /// permit of its own is counted as made *on some holder's behalf*, so a dead holder's permits
    /// come back less the releases made by processes that held none (they may have been its).
    /// This never returns a permit twice — a `BoundedSemaphore` never exceeds its bound and a
    /// rightful release never fails because of a reclaim — and in the usual patterns it is exact:
    /// a semaphore used as a lock or a resource pool (each process releases what it acquired,
    /// at most 64 processes holding at once) gets every dead holder's permits back; a semaphore
    /// used as a signal (producers release, consumers acquire) gives nothing back for a dead consumer, because the permits it took
    /// were signals, not loans. In the mixed case (a permit released by a non-holder for a live
    /// holder while another holder is dead) the dead holder's permit comes back only once that
    /// live holder dies too.
    ///
    /// The ledger tracks [`mproc_futex::LEDGER_ENTRIES`] (64) holding processes at once (a
    /// process's entry is freed when it holds nothing). A 65th process holding permits at the
    /// same time is *untracked*: its permits are not given back if it dies, and its releases
    /// count as releases by a process holding none, which by the rule above lower what later
    /// dead holders get back (never more than is owed). The promises above hold exactly while
    /// at most 64 processes hold permits at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(2)?;
    /// sem.acquire()?;
    /// assert!(sem.try_acquire()?);
    /// assert!(!sem.acquire_timeout(Duration::from_millis(1))?);
    /// sem.release()?;
    /// assert_eq!(sem.get_value(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct Semaphore;
    kind: KIND,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Semaphore(value={})>", self.get_value())
    }
}

/// The methods both semaphore types share, written once.
macro_rules! semaphore_methods {
    ($overflow:expr) => {
        fn from_shared(shared: Arc<Shared>) -> Result<Self, OpenError> {
            Ok(Self {
                shared,
                last_reclaim: Arc::new(AtomicU64::new(0)),
            })
        }

        fn inner(&self) -> Inner<'_> {
            Inner {
                shared: &self.shared,
                last_reclaim: &self.last_reclaim,
            }
        }

        /// Takes a permit, sleeping until one is available (Python: `acquire()`). A permit
        /// whose holder died comes back to sleepers within about 32 ms.
        ///
        /// # Errors
        ///
        /// [`SemaphoreError`]: this process cannot register in the semaphore's segment, or
        /// the shared state is corrupt.
        pub fn acquire(&self) -> Result<(), SemaphoreError> {
            while !self.inner().acquire(Wait::Forever)? {}
            Ok(())
        }

        /// Takes a permit if one is available now (Python: `acquire(block=False)`). Every
        /// 20 ms at most, a call that finds none also gives back dead holders' permits.
        ///
        /// # Errors
        ///
        /// As [`acquire`](Self::acquire).
        pub fn try_acquire(&self) -> Result<bool, SemaphoreError> {
            self.inner().acquire(Wait::Never)
        }

        /// Takes a permit, waiting at most `timeout`; `Ok(false)` on timeout (Python:
        /// `acquire(timeout=t)` returning `False`).
        ///
        /// # Errors
        ///
        /// As [`acquire`](Self::acquire).
        pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, SemaphoreError> {
            self.inner().acquire(Wait::Until(Deadline::after(timeout)))
        }

        /// Returns a permit, waking a sleeper if any (Python: `release()`). Any process may
        /// release, holder or not (see [`Semaphore`] for what that means when a holder
        /// dies).
        ///
        /// # Errors
        ///
        #[doc = $overflow]
        pub fn release(&self) -> Result<(), ReleaseError> {
            self.inner().release(self.over_release())
        }

        /// The number of permits now (Python: `get_value()`).
        pub fn get_value(&self) -> u32 {
            self.inner().raw().value()
        }

        /// Gives back now the permits of holders that died (a blocked `acquire` does this by
        /// itself); returns how many came back.
        ///
        /// # Errors
        ///
        /// As [`acquire`](Self::acquire).
        pub fn reclaim_dead(&self) -> Result<u64, SemaphoreError> {
            self.inner().reclaim_dead()
        }

        /// Permits given back for dead holders so far, by every process (a snapshot).
        pub fn reclaimed(&self) -> u64 {
            self.inner().raw().reclaimed()
        }

        /// Permits this process holds: acquired by it and not released by it (a snapshot).
        pub fn held_here(&self) -> u64 {
            match self.shared.backing.me() {
                Ok(id) => self.inner().raw().ledger().held_by(id),
                Err(_) => 0,
            }
        }
    };
}

impl Semaphore {
    /// A semaphore with `value` permits, in the small-object [cell store](crate::storage::cells) (Python:
    /// `Semaphore(value)`; the count is unsigned, so Python's negative-value error cannot
    /// happen).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new(value: u32) -> Result<Semaphore, CreateError> {
        Semaphore::create(None, |p| init(p, value, None))
    }

    /// A semaphore with `value` permits under `name` in `/dev/shm` (as `mproc.<name>`, see
    /// [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str, value: u32) -> Result<Semaphore, CreateError> {
        Semaphore::create(Some(name), |p| init(p, value, None))
    }

    fn over_release(&self) -> ReleaseError {
        ReleaseError::Overflow
    }

    semaphore_methods!("[`ReleaseError::Overflow`] if the count would exceed `u32::MAX`.");
}

fn init(state: &SharedBytes, value: u32, bound: Option<u32>) {
    // The zeroed, unpublished state of a KIND or BOUNDED_KIND object.
    shared_at::<RawSemaphore>(state, 0)
        .expect("the kind's state holds a semaphore")
        .init(value, bound);
}

semaphore_type! {
    /// A semaphore whose count may never exceed its initial value (Python's
    /// `multiprocessing.BoundedSemaphore`). Releasing above the bound is
    /// [`ReleaseError::TooManyReleases`] (Python's `ValueError('semaphore or lock released too
    /// many times')`), and, unlike Python's, the check is atomic. Death: as for [`Semaphore`]; a
    /// reclaim never raises the count above the bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::{BoundedSemaphore, ReleaseError};
    ///
    /// let sem = BoundedSemaphore::new(1)?;
    /// assert!(matches!(sem.release(), Err(ReleaseError::TooManyReleases)));
    /// sem.acquire()?;
    /// sem.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct BoundedSemaphore;
    kind: BOUNDED_KIND,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<BoundedSemaphore(value={}, maxvalue={})>",
            self.get_value(),
            self.bound()
        )
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits and bound, in the small-object
    /// [cell store](crate::storage::cells) (Python: `BoundedSemaphore(value)`).
    ///
    /// # Errors
    ///
    /// A segment error when a new pool segment cannot be made.
    pub fn new(value: u32) -> Result<BoundedSemaphore, CreateError> {
        BoundedSemaphore::create(None, |p| init(p, value, Some(value)))
    }

    /// A bounded semaphore under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] for an existing name, [`CreateError::InvalidName`], or
    /// another [`CreateError`].
    pub fn create_named(name: &str, value: u32) -> Result<BoundedSemaphore, CreateError> {
        BoundedSemaphore::create(Some(name), |p| init(p, value, Some(value)))
    }

    fn over_release(&self) -> ReleaseError {
        ReleaseError::TooManyReleases
    }

    semaphore_methods!(
        "[`ReleaseError::TooManyReleases`] (Python's `ValueError`) if the count would exceed \
         the initial value; nothing is released."
    );

    /// The bound: the initial value (Python's `maxvalue` in `repr`).
    pub fn bound(&self) -> u32 {
        self.inner().raw().bound()
    }
}
