//! Locks: uncontended acquire + release, and hand-off between two processes.
//!
//! Uncontended: `mproc::Lock` against `std::sync::Mutex`, `parking_lot::Mutex` and a
//! process-shared robust `pthread_mutex_t` (glibc; the usual C way to lock across
//! processes), each `n` times in a loop on one thread.
//!
//! Hand-off: two processes each run `n` × (acquire, increment a shared counter, release)
//! after a common "go"; the figure is the time until both are done divided by `2n`, and the
//! counter must read `2n`. With two processes on two cores this is the contended path
//! (spin, then futex sleep and wake) that decides how fast work passes between processes.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::deadline::monotonic_ns;
use crate::shm::{SharedMap, Words};
use crate::sync::Ordering;
use crate::{BenchError, Deadline, Peer};

/// Time per acquire + release over `n` uncontended rounds of `op`.
fn per_op(n: u64, mut op: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        op();
    }
    let t = Instant::now();
    for _ in 0..n {
        op();
    }
    t.elapsed() / n as u32
}

/// `mproc::Lock` (a futex word in a shared segment, owner id in the word, robust).
///
/// # Errors
/// The lock could not be created or acquired.
pub fn uncontended_mproc(n: u64) -> Result<Duration, BenchError> {
    let lock = mproc::Lock::new().map_err(crate::error::api)?;
    let mut err = None;
    let d = per_op(n, || match lock.acquire() {
        Ok(g) => drop(black_box(g)),
        Err(e) => err = Some(e.to_string()),
    });
    err.map_or(Ok(d), |e| Err(BenchError::Api(e)))
}

/// `std::sync::Mutex<()>`.
pub fn uncontended_std(n: u64) -> Duration {
    let m = std::sync::Mutex::new(());
    per_op(n, || drop(black_box(m.lock())))
}

/// `parking_lot::Mutex<()>`.
pub fn uncontended_parking_lot(n: u64) -> Duration {
    let m = parking_lot::Mutex::new(());
    per_op(n, || drop(black_box(m.lock())))
}

/// A process-shared robust `pthread_mutex_t` in a `MAP_SHARED` mapping.
#[derive(Debug)]
pub struct PthreadMutex {
    map: SharedMap,
}

impl PthreadMutex {
    /// Initialises one (`PTHREAD_PROCESS_SHARED`, `PTHREAD_MUTEX_ROBUST`).
    ///
    /// # Errors
    /// The mapping or a pthread call failed.
    pub fn new() -> Result<PthreadMutex, BenchError> {
        let map = SharedMap::new(4096)?;
        let m = map.ptr().as_ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: `attr` is initialised by pthread_mutexattr_init before use and destroyed
        // after; `m` points to zeroed, suitably aligned (page) shared memory big enough for a
        // pthread_mutex_t, initialised once here.
        let r = unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            let r = libc::pthread_mutex_init(m, &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            r
        };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r).into());
        }
        Ok(PthreadMutex { map })
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.map.ptr().as_ptr().cast()
    }

    /// Locks (repairing the state after an owner died), then unlocks after `f`.
    pub fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the mutex was initialised in `new` and lives as long as `self`.
        let r = unsafe { libc::pthread_mutex_lock(self.raw()) };
        if r == libc::EOWNERDEAD {
            // SAFETY: we hold the lock after EOWNERDEAD, as pthread_mutex_consistent requires.
            unsafe { libc::pthread_mutex_consistent(self.raw()) };
        }
        let out = f();
        // SAFETY: we hold the lock.
        unsafe { libc::pthread_mutex_unlock(self.raw()) };
        out
    }
}

/// A robust process-shared `pthread_mutex_t`, uncontended.
///
/// # Errors
/// The mutex could not be initialised.
pub fn uncontended_pthread(n: u64) -> Result<Duration, BenchError> {
    let m = PthreadMutex::new()?;
    Ok(per_op(n, || m.with(|| black_box(()))))
}

/// Word offsets in a hand-off run's control mapping: the go word, the counter and two
/// finish stamps.
const GO: usize = 0;
const COUNTER: usize = 16;
const DONE: usize = 32;

/// One side of a hand-off run: wait for go, `n` critical sections, stamp the finish.
fn side(
    ctl: Words,
    me: usize,
    n: u64,
    deadline: Deadline,
    mut locked: impl FnMut(&dyn Fn()),
) -> Result<(), BenchError> {
    // Acquire: pairs with the parent's Release store of GO.
    while ctl.word(GO).load(Ordering::Acquire) == 0 {
        if deadline.passed() {
            return Err(BenchError::Timeout("go"));
        }
        std::hint::spin_loop();
    }
    let bump = || {
        // Relaxed: inside the critical section; the lock orders it.
        let c = ctl.word(COUNTER).load(Ordering::Relaxed);
        ctl.word(COUNTER).store(c + 1, Ordering::Relaxed);
    };
    for _ in 0..n {
        locked(&bump);
    }
    // Release: the parent reads the stamp after reaping the child / after this returns.
    ctl.word(DONE + 8 * me)
        .store(monotonic_ns(), Ordering::Release);
    Ok(())
}

/// Runs the hand-off protocol: `start_peer` starts the other process's side, then this
/// process runs its own side with `locked`.
fn handoff(
    n: u64,
    start_peer: impl FnOnce(Words, Deadline) -> Result<Peer, BenchError>,
    locked: impl FnMut(&dyn Fn()),
) -> Result<Duration, BenchError> {
    let map = SharedMap::new(4096)?;
    let ctl = map.words();
    let deadline = Deadline::measurement();
    let peer = start_peer(ctl, deadline)?;
    std::thread::sleep(Duration::from_millis(10));
    let go = monotonic_ns();
    // Release: nothing to publish but the go itself.
    ctl.word(GO).store(1, Ordering::Release);
    let mine = side(ctl, 0, n, deadline, locked);
    let theirs = peer.wait();
    mine?;
    theirs?;
    let count = ctl.word(COUNTER).load(Ordering::Acquire);
    if count != 2 * n {
        return Err(BenchError::Corrupt(format!(
            "counter {count}, expected {}",
            2 * n
        )));
    }
    let end = ctl
        .word(DONE)
        .load(Ordering::Acquire)
        .max(ctl.word(DONE + 8).load(Ordering::Acquire));
    Ok(Duration::from_nanos(end.saturating_sub(go)) / (2 * n) as u32)
}

/// Hand-off of an `mproc::Lock` between two processes (the child gets it through
/// `mproc::Process` args); time per acquire.
///
/// # Errors
/// A lock, process or counting error.
pub fn handoff_mproc(n: u64) -> Result<Duration, BenchError> {
    let lock = mproc::Lock::new().map_err(crate::error::api)?;
    let child_lock = lock.clone();
    handoff(
        n,
        move |ctl, deadline| {
            Peer::process(
                move |(l,): (mproc::Lock,)| {
                    side(ctl, 1, n, deadline, |f| {
                        let g = l.acquire().map_err(|e| e.to_string());
                        f();
                        drop(g);
                    })
                },
                (child_lock,),
            )
        },
        |f| {
            let g = lock.acquire().map_err(|e| e.to_string());
            f();
            drop(g);
        },
    )
}

/// Hand-off of a robust process-shared `pthread_mutex_t` between two processes.
///
/// # Errors
/// A mutex, fork or counting error.
pub fn handoff_pthread(n: u64) -> Result<Duration, BenchError> {
    let m = PthreadMutex::new()?;
    let mref = &m;
    handoff(
        n,
        move |ctl, deadline| Peer::fork(move || side(ctl, 1, n, deadline, |f| mref.with(f))),
        |f| m.with(f),
    )
}
