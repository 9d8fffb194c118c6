//! [`Barrier`]: Python's `multiprocessing.Barrier` across processes, with an action run
//! before the parties are released, and death detection for the parties.
//!
//! The algorithm is `mproc-futex`'s [`Barrier`](mproc_futex::Barrier) (loom-checked: arrival
//! and release, the action, a party's death): this module gives it its storage (a pool cell
//! or a named segment), its passing to other processes, its name, the process-local action,
//! and the segment's liveness. The shared state is that barrier with a registry of
//! [`REGISTRY`] entries, one per distinct participant: as many as a pool segment has
//! participants (a named object's segment has fewer), so every party is watched.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mproc_core::shared::{SharedBytes, shared_at};
use mproc_futex::{BarrierWaitError, Caller, Deadline, Futex, MAX_PARTIES, Wait};

use super::backing::{Kind, Shared};
use super::error::BarrierError;
use super::handle::shared_handle;
use crate::storage::cells::PARTICIPANTS;
use crate::storage::object::{CreateError, OpenError};

pub use mproc_futex::BARRIER_CHECK_INTERVAL;

/// Registry entries of the shared barrier: distinct participants it can watch.
const REGISTRY: usize = PARTICIPANTS as usize;
const _: () = assert!(REGISTRY >= mproc_shm::DEFAULT_PARTICIPANTS as usize);

/// The shared state (`#[repr(C)]`, atomics only, valid for any bytes; all-zero bytes plus a
/// party count are a fresh barrier).
type RawBarrier = mproc_futex::Barrier<Futex, REGISTRY>;

const KIND: Kind = Kind::of::<RawBarrier>("Barrier/v2", "Barrier");

type Action = Arc<dyn Fn() + Send + Sync>;

/// A cyclic barrier for a fixed number of parties, shared between processes (Python's
/// `multiprocessing.Barrier`).
///
/// [`wait`](Self::wait) blocks until `parties` parties (threads of any processes) have called
/// it, then releases them all and returns each its arrival index `0..parties` (the last to
/// arrive gets `parties - 1`). The barrier can be used again at once.
///
/// * **Action**: [`with_action`](Self::with_action) runs a closure in the *last* party to
///   arrive, before the others are released — Python's rule. If it panics, the barrier
///   breaks (the others get [`BarrierError::Broken`]) and the panic continues in that party.
///   The closure lives in the process-local handle: clones and forked children carry it; a
///   handle imported by a spawned child or opened by name has none until
///   [`set_action`](Self::set_action) gives it one, so a trip completed by such a party runs
///   no action.
/// * **Breaking**: [`abort`](Self::abort), a waiter's timeout, an action's panic, or the death
///   of a party waiting at the barrier break it: current and later waiters get
///   [`BarrierError::Broken`] until [`reset`](Self::reset).
/// * **Death**: each party registers its participant at its first `wait` (the first
///   generation after creation or [`reset`](Self::reset)), and waiters ask every registered
///   participant's liveness every [`BARRIER_CHECK_INTERVAL`], so a party SIGKILLed while
///   waiting, while running the action, or *between* two waits breaks the barrier for the
///   others instead of leaving them with a ghost (Python's P10). A party that dies *before
///   its first `wait`* cannot be told from a slow one: the others wait until their timeout,
///   which breaks the barrier (as in Python), or until somebody calls [`abort`](Self::abort).
///
/// # Examples
///
/// ```
/// use mproc::sync::Barrier;
///
/// let b = Barrier::new(1)?;
/// assert_eq!(b.wait()?, 0); // a single party passes at once, every time
/// assert_eq!(b.wait()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Arc<Shared>,
    /// Validated copy of the party count.
    parties: u32,
    action: Option<Action>,
}

shared_handle!(Barrier, KIND);

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .field("action", &self.action.is_some())
            .finish()
    }
}

fn check_parties(parties: u32) -> Result<(), CreateError> {
    if parties == 0 || parties > MAX_PARTIES {
        return Err(CreateError::capacity(
            "barrier parties",
            parties,
            "1 to MAX_PARTIES",
        ));
    }
    Ok(())
}

fn init(state: &SharedBytes, parties: u32) {
    // The zeroed, unpublished state of a KIND object: a barrier without parties.
    let st = shared_at::<RawBarrier>(state, 0).expect("the kind's state holds a barrier");
    st.init(parties);
}

impl Barrier {
    /// A barrier for `parties` parties, in the small-object [cell store](crate::storage::cells) (Python:
    /// `Barrier(parties)`).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidCapacity`] for 0 parties (Python accepts `Barrier(0)`; `threading`
    /// refuses it, as mproc does) or more than 65535; a segment error.
    pub fn new(parties: u32) -> Result<Barrier, CreateError> {
        check_parties(parties)?;
        Barrier::create(None, |p| init(p, parties))
    }

    /// A barrier whose last arriving party runs `action` before the others are released
    /// (Python: `Barrier(parties, action)`). See the type docs for where the action lives.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_action(
        parties: u32,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Result<Barrier, CreateError> {
        let mut b = Barrier::new(parties)?;
        b.set_action(action);
        Ok(b)
    }

    /// A barrier for `parties` parties under `name` in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); [`CreateError::AlreadyExists`] or [`CreateError::InvalidName`].
    pub fn create_named(name: &str, parties: u32) -> Result<Barrier, CreateError> {
        check_parties(parties)?;
        Barrier::create(Some(name), |p| init(p, parties))
    }

    fn from_shared(shared: Arc<Shared>) -> Result<Barrier, OpenError> {
        let st = shared.state::<RawBarrier>();
        let parties = st.parties();
        check_parties(parties).map_err(|_| OpenError::corrupt("barrier parties", parties))?;
        Ok(Barrier {
            shared,
            parties,
            action: None,
        })
    }

    /// Gives this handle (and its later clones) an action to run when it is the last party
    /// to arrive; replaces any previous one.
    pub fn set_action(&mut self, action: impl Fn() + Send + Sync + 'static) {
        self.action = Some(Arc::new(action));
    }

    fn raw(&self) -> &RawBarrier {
        self.shared.state::<RawBarrier>()
    }

    /// The number of parties (Python: `parties`).
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// How many parties are waiting in the current generation; 0 while the action runs and
    /// once the barrier is broken (Python: `n_waiting`).
    pub fn n_waiting(&self) -> u32 {
        self.raw().n_waiting()
    }

    /// Whether the barrier is broken (Python: `broken`).
    pub fn is_broken(&self) -> bool {
        self.raw().is_broken()
    }

    /// Waits for all parties; returns this party's arrival index (Python: `wait()`).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] if the barrier is or becomes broken (including by the death
    /// of a waiting party); [`BarrierError::Register`].
    ///
    /// # Panics
    ///
    /// Resumes the action's panic in the party that ran it (after breaking the barrier).
    pub fn wait(&self) -> Result<u32, BarrierError> {
        self.wait_for(Wait::Forever)
    }

    /// As [`wait`](Self::wait), for at most `timeout` (Python: `wait(timeout)`).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Timeout`] if the timeout passed first: the barrier is then broken for
    /// everybody, as in Python. Otherwise as [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BarrierError> {
        self.wait_for(Wait::Until(Deadline::after(timeout)))
    }

    /// Breaks the barrier: current and future waiters get [`BarrierError::Broken`] until
    /// [`reset`](Self::reset) (Python: `abort()`).
    pub fn abort(&self) {
        self.raw().abort();
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now get
    /// [`BarrierError::Broken`], and every party registers again at its next wait (Python:
    /// `reset()`).
    pub fn reset(&self) {
        self.raw().reset();
    }

    fn wait_for(&self, mode: Wait) -> Result<u32, BarrierError> {
        let me = self.shared.backing.me().map_err(BarrierError::Register)?;
        let who = Caller {
            id: me,
            liveness: &self.shared.liveness,
        };
        let action = self.action.as_deref().map(|a| a as &dyn Fn());
        self.raw().wait(who, mode, action).map_err(|e| match e {
            BarrierWaitError::Timeout => BarrierError::Timeout,
            // A full registry (more distinct participants than a segment holds: corrupt) or
            // a corrupt party count also leaves the barrier broken.
            _ => BarrierError::Broken,
        })
    }
}
