//! Loom models of Condvar with RawLock: notify/wait races, two waiters asleep at once.
//!
//! Every model counts its outcome arms (`tests/common/arms.rs`) and fails if one was never
//! reached.

#[cfg(mproc_loom)]
#[path = "common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use super::arms::Arms;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;
    use mproc_futex::{AlwaysAlive, Condvar, RawLock, Wait, futex};

    struct Shared {
        lock: RawLock,
        cv: Condvar,
        ready: UnsafeCell<bool>,
        /// How many waiters have re-taken the lock after `ready` (order of return).
        done: UnsafeCell<u32>,
    }
    // SAFETY: `ready` and `done` only touched under `lock`.
    unsafe impl Sync for Shared {}

    /// Waits under the lock until `ready`. Returns how many condvar waits it took and how many
    /// waiters finished before it.
    fn waiter(s: &Shared, me: u32) -> (u32, u32) {
        let mut g = s.lock.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
        let mut waits = 0;
        // SAFETY: lock held.
        while !s.ready.with(|p| unsafe { *p }) {
            g = s.cv.wait(g, Wait::Forever).unwrap().0;
            waits += 1;
        }
        // SAFETY: lock held.
        let before = s.done.with_mut(|p| unsafe {
            *p += 1;
            *p - 1
        });
        drop(g);
        assert_eq!(futex::sleeps().timed_out, 0, "no deadline: no timeout");
        (waits, before)
    }

    fn notifier(s: &Shared, all: bool) {
        let g = s.lock.lock(9, &AlwaysAlive, Wait::Forever).unwrap();
        // SAFETY: lock held.
        s.ready.with_mut(|p| unsafe { *p = true });
        if all {
            s.cv.notify_all();
        } else {
            s.cv.notify_one();
        }
        drop(g);
    }

    /// Waiters 1..=`n`, each in a thread of its own, in that order.
    fn spawn_waiters(s: &Arc<Shared>, n: u32) -> Vec<thread::JoinHandle<(u32, u32)>> {
        (1..=n)
            .map(|me| {
                let s = s.clone();
                thread::spawn(move || waiter(&s, me))
            })
            .collect()
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            lock: RawLock::new(),
            cv: Condvar::new(),
            ready: UnsafeCell::new(false),
            done: UnsafeCell::new(0),
        })
    }

    /// The arms of [`waiters_are_woken`].
    const WAITED: [&str; 2] = ["a waiter waited on the condvar", "a waiter found it ready"];

    /// Waiters 1..=`n`, then the notifier (`notify_all` if `all`, else `notify_one`); each
    /// waiter counts whether it waited on the condvar or found `ready` already.
    fn waiters_are_woken(arms: &'static Arms<2>, n: u32, all: bool) {
        arms.model(move || {
            let s = shared();
            let hs = spawn_waiters(&s, n);
            notifier(&s, all);
            for h in hs {
                let (waits, _) = h.join().unwrap();
                arms.either(waits > 0, WAITED[0], WAITED[1]);
            }
        });
    }

    #[test]
    fn notify_one_wakes_waiter() {
        static ARMS: Arms<2> = Arms::new("notify_one_wakes_waiter", WAITED);
        waiters_are_woken(&ARMS, 1, false);
    }

    /// Two waiters and a notifier, at the bound `LOOM_MAX_PREEMPTIONS` gives (it used to be
    /// pinned to bound 1). At bound 2 some schedules have both waiters asleep at once;
    /// `two_sleepers_on_condvar` has that in every schedule, whatever the bound.
    #[test]
    fn notify_all_wakes_two_waiters() {
        static ARMS: Arms<2> = Arms::new("notify_all_wakes_two_waiters", WAITED);
        waiters_are_woken(&ARMS, 2, true);
    }

    /// Two waiters are *both* asleep on the condvar (having released the lock) before the
    /// notifier takes the lock, sets `ready` and calls `notify_all`. Both must be woken and
    /// re-take the lock one after the other; waking only one strands the other: a loom
    /// deadlock (no deadline).
    #[test]
    fn two_sleepers_on_condvar() {
        static ARMS: Arms<2> = Arms::new(
            "two_sleepers_on_condvar",
            [
                "waiter 1 re-took the lock first",
                "waiter 2 re-took the lock first",
            ],
        );
        ARMS.model(|| {
            let s = shared();
            let hs = spawn_waiters(&s, 2);
            // Both parked: on the condvar word, since nobody holds the lock now.
            while futex::parked() < 2 {
                thread::yield_now();
            }
            notifier(&s, true);
            let ends: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            for (waits, _) in &ends {
                assert_eq!(*waits, 1, "each waited once on the condvar");
            }
            ARMS.either(
                ends[0].1 == 0,
                "waiter 1 re-took the lock first",
                "waiter 2 re-took the lock first",
            );
        });
    }
}
