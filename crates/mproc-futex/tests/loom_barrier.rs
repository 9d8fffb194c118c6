//! Loom models of Barrier: generations, indices, abort, reset, two parties asleep at once,
//! the action (run once, before anybody is released), and a registered party's death
//! between waits (the survivor's next wait ends `Broken` after one slice).
//!
//! Every model counts its outcome arms (`tests/common/arms.rs`) and fails if one was never
//! reached. The barriers have a registry of as many entries as parties, to keep the models
//! small.

#[cfg(mproc_loom)]
#[path = "common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use super::arms::{Arms, SLEPT};
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;
    use mproc_futex::{AlwaysAlive, Barrier, BarrierWaitError, Caller, Futex, Wait, futex};

    type Barrier2 = Barrier<Futex, 2>;
    type Barrier3 = Barrier<Futex, 3>;

    /// Party `id`, everybody alive.
    fn party(id: u32) -> Caller<'static> {
        Caller {
            id,
            liveness: &AlwaysAlive,
        }
    }

    fn wait<const N: usize>(b: &Barrier<Futex, N>, id: u32) -> Result<u32, BarrierWaitError> {
        b.wait(party(id), Wait::Forever, None)
    }

    /// Whether the calling thread slept and was woken (for models without a clock tick).
    fn woken() -> bool {
        let sl = futex::sleeps();
        assert_eq!(sl.timed_out, 0, "no clock tick: no timeout");
        sl.woken > 0
    }

    /// Party 1 waits alone at a 2-party barrier while the model's thread runs `release`
    /// (`abort`, `reset`): the wait must end `Broken`. Returns the barrier and whether the
    /// waiter slept (and was woken).
    fn lone_waiter_broken_by(release: impl FnOnce(&Barrier2)) -> (Arc<Barrier2>, bool) {
        let b = Arc::new(Barrier2::with_parties_for_waiter(2));
        let b2 = b.clone();
        let h = thread::spawn(move || (wait(&b2, 1), woken()));
        release(&b);
        let (r, slept) = h.join().unwrap();
        assert_eq!(r, Err(BarrierWaitError::Broken));
        (b, slept)
    }

    /// Two parties pass two generations; each generation hands out indices 0 and 1.
    #[test]
    fn two_generations() {
        static ARMS: Arms<4> = Arms::new(
            "two_generations",
            [
                "main arrived first",
                "helper arrived first",
                "a party slept and was woken",
                "a party never slept",
            ],
        );
        ARMS.model(|| {
            let b = Arc::new(Barrier2::with_parties_for_waiter(2));
            let b2 = b.clone();
            let h = thread::spawn(move || {
                let r = [wait(&b2, 1).unwrap(), wait(&b2, 1).unwrap()];
                (r, woken())
            });
            let mine = [wait(&b, 2).unwrap(), wait(&b, 2).unwrap()];
            let (theirs, slept) = h.join().unwrap();
            for g in 0..2 {
                assert_eq!(mine[g] + theirs[g], 1, "indices 0 and 1 in generation {g}");
            }
            ARMS.either(mine[0] == 0, "main arrived first", "helper arrived first");
            for slept in [slept, woken()] {
                ARMS.either(slept, "a party slept and was woken", "a party never slept");
            }
            assert_eq!(b.n_waiting(), 0);
            assert_eq!(b.registered(), 2);
        });
    }

    /// `abort` racing with a lone waiter (before or after it arrives): it gets Broken.
    #[test]
    fn abort_releases_waiter() {
        static ARMS: Arms<3> = Arms::new(
            "abort_releases_waiter",
            [
                "found it broken on arrival",
                "arrived, saw the abort before sleeping",
                "arrived, slept, woken by the abort",
            ],
        );
        ARMS.model(|| {
            let (b, slept) = lone_waiter_broken_by(|b| b.abort());
            // An arrival registers: 1 if the waiter arrived before the abort.
            ARMS.hit(match (b.registered(), slept) {
                (0, false) => "found it broken on arrival",
                (1, false) => "arrived, saw the abort before sleeping",
                (1, true) => "arrived, slept, woken by the abort",
                other => panic!("impossible: {other:?}"),
            });
            assert_eq!(b.n_waiting(), 0, "broken: nobody counts as waiting");
        });
    }

    /// `reset` racing with a waiter: released as Broken, barrier usable afterwards.
    #[test]
    fn reset_releases_waiter() {
        static ARMS: Arms<2> = Arms::new("reset_releases_waiter", SLEPT);
        ARMS.model(|| {
            let (b, slept) = lone_waiter_broken_by(|b| {
                // Reset only once the waiter has arrived (a later arrival would simply wait).
                while b.n_waiting() == 0 {
                    thread::yield_now();
                }
                b.reset();
            });
            ARMS.slept(slept);
            assert!(!b.is_broken());
            assert_eq!(b.n_waiting(), 0);
        });
    }

    /// Three parties: two are *both* asleep before the third arrives. The last arrival must
    /// wake both (waking one strands the other: a loom deadlock, as no deadline is given);
    /// they get indices 0 and 1 in either order, the last gets 2.
    #[test]
    fn two_sleepers_at_barrier() {
        static ARMS: Arms<2> = Arms::new(
            "two_sleepers_at_barrier",
            ["party A arrived first", "party B arrived first"],
        );
        ARMS.model(|| {
            let b = Arc::new(Barrier3::with_parties_for_waiter(3));
            let hs: Vec<_> = (1..=2)
                .map(|id| {
                    let b = b.clone();
                    thread::spawn(move || {
                        let i = wait(&b, id).unwrap();
                        assert!(woken(), "slept and was woken");
                        i
                    })
                })
                .collect();
            while futex::parked() < 2 {
                thread::yield_now();
            }
            assert_eq!(wait(&b, 3), Ok(2));
            let idx: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(idx[0] + idx[1], 1);
            ARMS.either(
                idx[0] == 0,
                "party A arrived first",
                "party B arrived first",
            );
            assert_eq!(b.n_waiting(), 0);
        });
    }

    /// The action runs exactly once, in the last party, and what it writes (to a plain cell,
    /// so loom flags an unordered access) is seen by the other party once released.
    #[test]
    fn action_runs_before_release() {
        static ARMS: Arms<2> = Arms::new(
            "action_runs_before_release",
            ["main ran the action", "helper ran the action"],
        );
        ARMS.model(|| {
            let b = Arc::new(Barrier2::with_parties_for_waiter(2));
            let cell = Arc::new(UnsafeCell::new(0u32));
            let run = |b: &Barrier2, cell: &UnsafeCell<u32>, id: u32| {
                let action = || {
                    cell.with_mut(|p| {
                        // SAFETY: only the last party writes, before the release; loom
                        // checks that no read races with it.
                        unsafe { *p += 1 }
                    });
                };
                let i = b.wait(party(id), Wait::Forever, Some(&action)).unwrap();
                let seen = cell.with(|p| {
                    // SAFETY: read after the release, which the write precedes (loom checks).
                    unsafe { *p }
                });
                assert_eq!(seen, 1, "released before the action ran (or it ran twice)");
                i
            };
            let (b2, cell2) = (b.clone(), cell.clone());
            let h = thread::spawn(move || run(&b2, &cell2, 1));
            let mine = run(&b, &cell, 2);
            let theirs = h.join().unwrap();
            assert_eq!(mine + theirs, 1);
            ARMS.either(mine == 1, "main ran the action", "helper ran the action");
        });
    }

    /// A registered party (main, id 2) dies between waits: the other party's next wait
    /// sleeps, its slice runs out (one clock tick), its check asks the liveness, and it
    /// breaks the barrier and reports `Broken` instead of waiting for ever (without the
    /// check, a loom deadlock: nothing else ends that wait).
    #[test]
    fn death_between_waits_breaks_it() {
        static ARMS: Arms<4> = Arms::new(
            "death_between_waits_breaks_it",
            [
                "helper arrived first",
                "main arrived first",
                "death seen when a slice ran out",
                "death seen without sleeping a slice out",
            ],
        );
        ARMS.model(|| {
            let b = Arc::new(Barrier2::with_parties_for_waiter(2));
            let dead = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            let (b2, dead2, done2) = (b.clone(), dead.clone(), done.clone());
            let h = thread::spawn(move || {
                let live = move |id: u32| !(id == 2 && dead2.load(Ordering::SeqCst));
                let me = Caller {
                    id: 1,
                    liveness: &live,
                };
                let first = b2.wait(me, Wait::Forever, None).unwrap();
                let second = b2.wait(me, Wait::Forever, None);
                done2.store(true, Ordering::SeqCst);
                (first, second, futex::sleeps().timed_out)
            });
            let first = wait(&b, 2).unwrap();
            // Main "dies": it never waits again and its liveness turns false.
            dead.store(true, Ordering::SeqCst);
            // Once the helper sleeps in its second wait (it cannot check liveness before its
            // first sleep), end its slice.
            // Once the helper sleeps in its second wait, end its slice. It may also see the
            // death without sleeping out a slice: its first check makes no system call and
            // so asks no liveness, but a sleep that returns at once (the wake word moved on
            // since it looked) is a "woken" round, whose check does ask.
            while !done.load(Ordering::SeqCst) {
                if futex::parked() > 0 {
                    futex::advance_clock();
                    break;
                }
                thread::yield_now();
            }
            let (theirs, second, timed_out) = h.join().unwrap();
            assert_eq!(second, Err(BarrierWaitError::Broken));
            assert!(b.is_broken());
            ARMS.either(first == 1, "helper arrived first", "main arrived first");
            ARMS.either(
                timed_out == 1,
                "death seen when a slice ran out",
                "death seen without sleeping a slice out",
            );
            assert_eq!(first + theirs, 1);
        });
    }
}
