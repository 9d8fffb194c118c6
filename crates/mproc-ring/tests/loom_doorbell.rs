//! Loom models of the doorbell protocol (`Doorbell`'s module docs): a sleeper that registers,
//! fences and re-checks, against a waker that publishes, fences and reads the sleeper count,
//! never loses a wake-up. "Lost" means: the re-check found nothing, and the waker did not bump
//! the word, so `futex::wait(word, seen)` would block although an item is in the ring and no
//! wake is coming. Modelled on the MPMC ring (what `Queue` sleeps on), in both directions
//! (items for a consumer, space for a producer).
//!
//! The protocol itself (mproc-core's `Sleepers`, which the doorbell uses) has its generic
//! models in mproc-core's `tests/loom_sleepers.rs`; these check it over the MPMC ring.
//! These models fail when either fence of the protocol is deleted (checked). The same models
//! over the SPSC ring pass even without the fences — loom's `SeqCst` fence is stronger than
//! C++'s against a plain Release *store* publication — so they would prove nothing and are
//! not here; the SPSC and record rings rely on the same two fences, argued in the docs.
//!
//! Two sleepers on one word: two consumers asleep for items while a producer pushes two and
//! rings once (a batch), and two producers asleep for space while a consumer pops two. Here
//! `futex(2)` is modelled by a parking table (`Futex`: loom's `Mutex` and `Condvar`)
//! without timeouts, so a lost wake-up is a loom deadlock. They fail when the sleeper count
//! is a flag rather than a count, or when the waker wakes one sleeper instead of all
//! (checked); the one-sleeper models pass both.
//!
//! Each model asserts that every outcome arm was reached (`Arms`, mproc-futex's
//! `tests/common/arms.rs`).

// Shared with mproc-futex and mproc-shm: three independent crates and no test-utility
// crate, so one file included by path keeps one behaviour.
#[cfg(mproc_loom)]
#[path = "../../mproc-futex/tests/common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
#[path = "../../mproc-futex/tests/common/parking.rs"]
mod parking;

#[cfg(mproc_loom)]
mod common;

#[cfg(mproc_loom)]
mod tests {
    use loom::sync::atomic::Ordering;
    use loom::sync::{Arc, Mutex};
    use loom::thread;
    use mproc_ring::{Doorbell, TryPopError, TryPushError};

    use crate::arms::Arms;
    use crate::common::{id, mpmc, spawn_on};
    use crate::parking::Futex;

    /// The sleeper's half: register, then re-check with `retry`; `true` if the re-check
    /// succeeded (then it unregisters), else returns the word value it would wait on.
    fn sleep_or_succeed(bell: &Doorbell, retry: impl FnOnce() -> bool) -> Result<(), u32> {
        let seen = bell.prepare_sleep();
        if retry() {
            bell.cancel_sleep();
            Ok(())
        } else {
            Err(seen)
        }
    }

    /// After the waker is done: a sleeper that would wait on `seen` must find the word
    /// changed (its `futex::wait` returns at once), or the wake-up was lost.
    fn assert_not_lost(bell: &Doorbell, slept: Result<(), u32>) {
        if let Err(seen) = slept {
            // Acquire: as in `prepare_sleep` (a bump publishes what preceded it).
            assert_ne!(
                bell.word().load(Ordering::Acquire),
                seen,
                "lost wake-up: empty re-check, and the waker saw no sleeper"
            );
        }
    }

    /// The two outcomes of [`sleep_or_succeed`], the arms of the one-sleeper models.
    const RECHECK_ARMS: [&str; 2] = ["the re-check succeeded", "would sleep"];

    /// Counts the two outcomes of [`sleep_or_succeed`].
    fn count(arms: &Arms<2>, slept: Result<(), u32>) -> Result<(), u32> {
        arms.either(slept.is_ok(), RECHECK_ARMS[0], RECHECK_ARMS[1]);
        slept
    }

    #[test]
    fn mpmc_consumer_never_misses_an_item() {
        static ARMS: Arms<2> = Arms::new("mpmc_consumer_never_misses_an_item", RECHECK_ARMS);
        ARMS.model(|| {
            let r = mpmc(2, 1);
            let p = spawn_on(&r, |r| {
                r.try_push(id(1), &[7]).unwrap();
                let _woke = r.items_doorbell().notify();
            });
            let c = spawn_on(&r, |r| {
                sleep_or_succeed(r.items_doorbell(), || match r.try_pop_vec(id(2)) {
                    Ok(v) => {
                        assert_eq!(v, [7]);
                        true
                    }
                    Err(TryPopError::Empty) => false,
                    Err(e) => panic!("{e}"),
                })
            });
            p.join().unwrap();
            let slept = count(&ARMS, c.join().unwrap());
            assert_not_lost(r.items_doorbell(), slept);
        });
    }

    #[test]
    fn mpmc_producer_never_misses_space() {
        static ARMS: Arms<2> = Arms::new("mpmc_producer_never_misses_space", RECHECK_ARMS);
        ARMS.model(|| {
            let r = mpmc(1, 1);
            r.try_push(id(1), &[1]).unwrap();
            let c = spawn_on(&r, |r| {
                assert_eq!(r.try_pop_vec(id(2)).unwrap(), [1]);
                let _woke = r.space_doorbell().notify();
            });
            let p = spawn_on(&r, |r| {
                sleep_or_succeed(r.space_doorbell(), || match r.try_push(id(1), &[2]) {
                    Ok(()) => true,
                    Err(TryPushError::Full) => false,
                    Err(e) => panic!("{e}"),
                })
            });
            c.join().unwrap();
            let slept = count(&ARMS, p.join().unwrap());
            assert_not_lost(r.space_doorbell(), slept);
        });
    }

    /// Wake every sleeper, as the facade does (`futex::wake_all`): one ring may stand for
    /// several items (a batch), so waking one could leave a sleeper behind an item.
    const WAKE: usize = usize::MAX;

    /// The facade's sleeper loop (`mproc::object::wait::block`, minus timeouts and the
    /// liveness check): register, re-check with `attempt`, sleep on `seen`, unregister,
    /// retry. Bounded: two items and one ring need at most three rounds.
    fn sleep_until(arms: &Arms<5>, bell: &Doorbell, fx: &Futex, attempt: impl Fn() -> bool) {
        for _ in 0..3 {
            let seen = bell.prepare_sleep();
            if attempt() {
                bell.cancel_sleep();
                arms.hit("a re-check succeeded");
                return;
            }
            let slept = fx.wait(bell.word(), seen);
            bell.cancel_sleep();
            arms.either(
                slept,
                "woken by a wake",
                "the word had changed before the wait",
            );
        }
        panic!("no success after three rounds");
    }

    /// The waker: after publishing, one ring.
    fn ring(bell: &Doorbell, fx: &Futex) {
        if bell.notify() {
            fx.wake(WAKE);
        }
    }

    /// Counts whether two were asleep at once, and checks every registration was cancelled.
    fn settle(arms: &Arms<5>, bell: &Doorbell, fx: &Futex) {
        arms.either(
            fx.most_queued() == 2,
            "two asleep at once",
            "never two asleep at once",
        );
        assert_eq!(bell.sleepers(), 0, "every sleeper unregistered");
    }

    const SLEEPER_ARMS: [&str; 5] = [
        "a re-check succeeded",
        "woken by a wake",
        "the word had changed before the wait",
        "two asleep at once",
        "never two asleep at once",
    ];

    /// Two consumers asleep on the items bell; one producer pushes two items, then rings
    /// once. Each consumer gets one item; nobody sleeps through an item.
    #[test]
    fn two_consumers_asleep_on_one_bell() {
        static ARMS: Arms<5> = Arms::new("two_consumers_asleep_on_one_bell", SLEEPER_ARMS);
        ARMS.model(|| {
            let r = mpmc(2, 1);
            let fx = Arc::new(Futex::default());
            let got = Arc::new(Mutex::new(Vec::new()));
            let consumers: Vec<_> = (0..2u32)
                .map(|c| {
                    let (r, fx, got) = (r.clone(), fx.clone(), got.clone());
                    thread::spawn(move || {
                        sleep_until(&ARMS, r.items_doorbell(), &fx, || {
                            match r.try_pop_vec(id(10 + c)) {
                                Ok(v) => {
                                    got.lock().unwrap().push(v[0]);
                                    true
                                }
                                Err(TryPopError::Empty) => false,
                                Err(e) => panic!("{e}"),
                            }
                        });
                    })
                })
                .collect();
            let producer = {
                let (r, fx) = (r.clone(), fx.clone());
                thread::spawn(move || {
                    r.try_push(id(1), &[1]).unwrap();
                    r.try_push(id(1), &[2]).unwrap();
                    ring(r.items_doorbell(), &fx);
                })
            };
            producer.join().unwrap();
            for c in consumers {
                c.join().unwrap();
            }
            let mut got = got.lock().unwrap().clone();
            got.sort();
            assert_eq!(got, [1, 2]);
            settle(&ARMS, r.items_doorbell(), &fx);
        });
    }

    /// Two producers asleep on the space bell of a full ring; one consumer pops two items,
    /// then rings once. Both pushes land; nobody sleeps through free space.
    #[test]
    fn two_producers_asleep_on_one_bell() {
        static ARMS: Arms<5> = Arms::new("two_producers_asleep_on_one_bell", SLEEPER_ARMS);
        ARMS.model(|| {
            let r = mpmc(2, 1);
            r.try_push(id(1), &[1]).unwrap();
            r.try_push(id(1), &[2]).unwrap();
            let fx = Arc::new(Futex::default());
            let producers: Vec<_> = (0..2u8)
                .map(|p| {
                    let (r, fx) = (r.clone(), fx.clone());
                    thread::spawn(move || {
                        sleep_until(&ARMS, r.space_doorbell(), &fx, || {
                            match r.try_push(id(10 + u32::from(p)), &[3 + p]) {
                                Ok(()) => true,
                                Err(TryPushError::Full) => false,
                                Err(e) => panic!("{e}"),
                            }
                        });
                    })
                })
                .collect();
            let consumer = {
                let (r, fx) = (r.clone(), fx.clone());
                thread::spawn(move || {
                    assert_eq!(r.try_pop_vec(id(2)).unwrap(), [1]);
                    assert_eq!(r.try_pop_vec(id(2)).unwrap(), [2]);
                    ring(r.space_doorbell(), &fx);
                })
            };
            consumer.join().unwrap();
            for p in producers {
                p.join().unwrap();
            }
            let mut left = vec![
                r.try_pop_vec(id(2)).unwrap()[0],
                r.try_pop_vec(id(2)).unwrap()[0],
            ];
            left.sort();
            assert_eq!(left, [3, 4]);
            settle(&ARMS, r.space_doorbell(), &fx);
        });
    }
}
