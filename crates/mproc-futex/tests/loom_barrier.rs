//! Loom models of Barrier: generations, indices, abort, reset, two parties asleep at once.
//!
//! Every model counts its outcome arms (`tests/common/arms.rs`) and fails if one was never
//! reached.

#[cfg(mproc_loom)]
#[path = "common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use super::arms::Arms;
    use loom::sync::Arc;
    use loom::thread;
    use mproc_futex::{Barrier, BarrierWaitError, futex};

    /// Whether the calling thread slept and was woken (no model here has a deadline).
    fn woken() -> bool {
        let sl = futex::sleeps();
        assert_eq!(sl.timed_out, 0, "no deadline: no timeout");
        sl.woken > 0
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
            let b = Arc::new(Barrier::with_parties(2));
            let b2 = b.clone();
            let h = thread::spawn(move || {
                let r = [b2.wait(None).unwrap(), b2.wait(None).unwrap()];
                (r, woken())
            });
            let mine = [b.wait(None).unwrap(), b.wait(None).unwrap()];
            let (theirs, slept) = h.join().unwrap();
            for g in 0..2 {
                assert_eq!(mine[g] + theirs[g], 1, "indices 0 and 1 in generation {g}");
            }
            ARMS.either(mine[0] == 0, "main arrived first", "helper arrived first");
            for slept in [slept, woken()] {
                ARMS.either(slept, "a party slept and was woken", "a party never slept");
            }
            assert_eq!(b.n_waiting(), 0);
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
            let b = Arc::new(Barrier::with_parties(2));
            let b2 = b.clone();
            let h = thread::spawn(move || (b2.wait(None), woken()));
            b.abort();
            let (r, slept) = h.join().unwrap();
            assert_eq!(r, Err(BarrierWaitError::Broken));
            // `abort` leaves the count alone: 1 if the waiter arrived before it.
            ARMS.hit(match (b.n_waiting(), slept) {
                (0, false) => "found it broken on arrival",
                (1, false) => "arrived, saw the abort before sleeping",
                (1, true) => "arrived, slept, woken by the abort",
                other => panic!("impossible: {other:?}"),
            });
        });
    }

    /// `reset` racing with a waiter: released as Broken, barrier usable afterwards.
    #[test]
    fn reset_releases_waiter() {
        static ARMS: Arms<2> = Arms::new(
            "reset_releases_waiter",
            ["slept and was woken", "never slept"],
        );
        ARMS.model(|| {
            let b = Arc::new(Barrier::with_parties(2));
            let b2 = b.clone();
            let h = thread::spawn(move || (b2.wait(None), woken()));
            // Reset only once the waiter has arrived (a later arrival would simply wait).
            while b.n_waiting() == 0 {
                thread::yield_now();
            }
            b.reset();
            let (r, slept) = h.join().unwrap();
            assert_eq!(r, Err(BarrierWaitError::Broken));
            ARMS.either(slept, "slept and was woken", "never slept");
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
            let b = Arc::new(Barrier::with_parties(3));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let b = b.clone();
                    thread::spawn(move || {
                        let i = b.wait(None).unwrap();
                        assert!(woken(), "slept and was woken");
                        i
                    })
                })
                .collect();
            while futex::parked() < 2 {
                thread::yield_now();
            }
            assert_eq!(b.wait(None), Ok(2));
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
}
