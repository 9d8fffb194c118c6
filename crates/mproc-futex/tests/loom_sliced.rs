//! Loom models of `SlicedWait::sliced_wait` over a bed that counts its sleepers (the
//! facade's doorbells work this way: a waker makes the wake system call only when someone
//! sleeps): no lost wake-up between the re-try after `prepare` and the sleep, two sleepers
//! both woken, and a timed wait that sleeps a slice out and reports the timeout after its
//! checks. The barrier models (`loom_barrier.rs`) cover the bare-word bed.
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
    use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering, fence};
    use loom::thread;
    use mproc_futex::{Deadline, Futex, Outcome, Parking, Round, SlicedWait, Wait, futex};
    use std::time::Duration;

    /// A flag and a bed that counts its sleepers; `ring` wakes only if someone sleeps.
    #[derive(Default)]
    struct Counted {
        flag: AtomicBool,
        word: AtomicU32,
        sleepers: AtomicU32,
    }

    impl Parking for Counted {
        fn word(&self) -> &AtomicU32 {
            &self.word
        }

        fn prepare(&self) -> u32 {
            // As mproc-ring's `Doorbell::prepare_sleep`. Acquire: pairs with the Release
            // bump in `ring`.
            let seen = self.word.load(Ordering::Acquire);
            // Relaxed: made visible to `ring` by the fence (Dekker; loom models SeqCst
            // fences, not a total order of SeqCst accesses).
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            seen
        }

        fn cancel(&self) {
            // Relaxed: only decides whether `ring` wakes.
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    impl Counted {
        fn ring(&self) {
            // As mproc-ring's `notify` after a publication. Relaxed: ordered by the fence.
            self.flag.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            // Relaxed: ordered by the fence (Dekker with `prepare`).
            if self.sleepers.load(Ordering::Relaxed) > 0 {
                // Release: pairs with the Acquire in `prepare`.
                self.word.fetch_add(1, Ordering::Release);
                futex::wake(&self.word, u32::MAX);
            }
        }

        fn wait(&self, mode: Wait) -> (Outcome<(), ()>, Vec<Round>) {
            let mut rounds = Vec::new();
            let out = Futex::sliced_wait(
                self,
                mode,
                Duration::from_millis(1),
                // Acquire: the flag carries no data, but a seen ring is then a finished one.
                || self.flag.load(Ordering::Acquire).then_some(()),
                |round| {
                    rounds.push(round);
                    None
                },
            );
            (out, rounds)
        }
    }

    /// One sleeper and one ring: the sleeper always ends `Done` (a lost wake-up is a loom
    /// deadlock: no clock tick ends a slice here).
    #[test]
    fn ring_is_never_lost() {
        static ARMS: Arms<3> = Arms::new(
            "ring_is_never_lost",
            [
                "done before any check",
                "done after the first check, without sleeping",
                "slept and was woken",
            ],
        );
        ARMS.model(|| {
            let bed = Arc::new(Counted::default());
            let bed2 = bed.clone();
            let h = thread::spawn(move || {
                let (out, rounds) = bed2.wait(Wait::Forever);
                (out, rounds, futex::sleeps())
            });
            bed.ring();
            let (out, rounds, sleeps) = h.join().unwrap();
            assert_eq!(out, Outcome::Done(()));
            assert_eq!(sleeps.timed_out, 0);
            ARMS.hit(match (rounds.as_slice(), sleeps.woken) {
                ([], 0) => "done before any check",
                ([Round::First], 0) => "done after the first check, without sleeping",
                (_, 1) => "slept and was woken",
                other => panic!("impossible: {other:?}"),
            });
            assert_eq!(
                bed.sleepers.load(Ordering::SeqCst),
                0,
                "every prepare cancelled"
            );
        });
    }

    /// Two sleepers on the bed at once: one ring must wake both.
    #[test]
    fn two_sleepers_one_ring() {
        static ARMS: Arms<1> = Arms::new("two_sleepers_one_ring", ["both slept and were woken"]);
        ARMS.model(|| {
            let bed = Arc::new(Counted::default());
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let bed = bed.clone();
                    thread::spawn(move || {
                        let (out, _) = bed.wait(Wait::Forever);
                        assert_eq!(out, Outcome::Done(()));
                        futex::sleeps().woken
                    })
                })
                .collect();
            while futex::parked() < 2 {
                thread::yield_now();
            }
            bed.ring();
            let woken: u32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(woken, 2);
            ARMS.hit("both slept and were woken");
        });
    }

    /// A timed wait nobody rings: it checks before sleeping (First), sleeps until the
    /// deadline (one clock tick), checks again (SleptOut), then reports `TimedOut`.
    #[test]
    fn timed_wait_sleeps_out_then_times_out() {
        static ARMS: Arms<1> = Arms::new(
            "timed_wait_sleeps_out_then_times_out",
            ["First, SleptOut, TimedOut"],
        );
        ARMS.model(|| {
            let bed = Arc::new(Counted::default());
            let bed2 = bed.clone();
            let h = thread::spawn(move || {
                bed2.wait(Wait::Until(Deadline::after(Duration::from_millis(1))))
            });
            while futex::parked() == 0 {
                thread::yield_now();
            }
            futex::advance_clock();
            let (out, rounds) = h.join().unwrap();
            assert_eq!(out, Outcome::TimedOut);
            assert_eq!(rounds, [Round::First, Round::SleptOut]);
            ARMS.hit("First, SleptOut, TimedOut");
        });
    }
}
