//! Loom models of the doorbell protocol (`Doorbell`'s module docs): a sleeper that registers,
//! fences and re-checks, against a waker that publishes, fences and reads the sleeper count,
//! never loses a wake-up. "Lost" means: the re-check found nothing, and the waker did not bump
//! the word, so `futex::wait(word, seen)` would block although an item is in the ring and no
//! wake is coming. Modelled on the MPMC ring (what `Queue` sleeps on), in both directions
//! (items for a consumer, space for a producer).
//!
//! These models fail when either fence of the protocol is deleted (checked). The same models
//! over the SPSC ring pass even without the fences — loom's `SeqCst` fence is stronger than
//! C++'s against a plain Release *store* publication — so they would prove nothing and are
//! not here; the SPSC and record rings rely on the same two fences, argued in the docs.

#[cfg(mproc_loom)]
mod tests {
    use loom::sync::atomic::Ordering;
    use loom::thread;
    use mproc_ring::{Doorbell, MpmcRing, MpmcShape, ParticipantId, TryPopError, TryPushError};

    fn id(n: u32) -> ParticipantId {
        ParticipantId::new(n).unwrap()
    }

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

    #[test]
    fn mpmc_consumer_never_misses_an_item() {
        loom::model(|| {
            let r = MpmcRing::new(MpmcShape {
                capacity: 2,
                slot_size: 1,
            })
            .unwrap();
            let p = {
                let r = r.clone();
                thread::spawn(move || {
                    r.try_push(id(1), &[7]).unwrap();
                    let _woke = r.items_doorbell().notify();
                })
            };
            let slept = sleep_or_succeed(r.items_doorbell(), || match r.try_pop_vec(id(2)) {
                Ok(v) => {
                    assert_eq!(v, [7]);
                    true
                }
                Err(TryPopError::Empty) => false,
                Err(e) => panic!("{e}"),
            });
            p.join().unwrap();
            assert_not_lost(r.items_doorbell(), slept);
        });
    }

    #[test]
    fn mpmc_producer_never_misses_space() {
        loom::model(|| {
            let r = MpmcRing::new(MpmcShape {
                capacity: 1,
                slot_size: 1,
            })
            .unwrap();
            r.try_push(id(1), &[1]).unwrap();
            let c = {
                let r = r.clone();
                thread::spawn(move || {
                    assert_eq!(r.try_pop_vec(id(2)).unwrap(), [1]);
                    let _woke = r.space_doorbell().notify();
                })
            };
            let slept = sleep_or_succeed(r.space_doorbell(), || match r.try_push(id(1), &[2]) {
                Ok(()) => true,
                Err(TryPushError::Full) => false,
                Err(e) => panic!("{e}"),
            });
            c.join().unwrap();
            assert_not_lost(r.space_doorbell(), slept);
        });
    }
}
