//! Loom models of the sleepers protocol (`mproc_core::sleepers`): sleepers that register,
//! fence and re-check, against a waker that publishes, fences and reads the count, never lose
//! a wake-up — with two sleepers asleep on one word at once, in both shapes the objects use
//! (a separate futex word that the waker bumps, as the doorbells and the joinable queue's
//! generation; the condition as futex word, as the semaphores' permits), and with a sleeper
//! that times out beside one that sleeps.
//!
//! `futex(2)` is modelled by a parking table (`Futex`: loom's `Mutex` and `Condvar`) that
//! compares the word under its lock, as the kernel does under its queue lock, and has no
//! timeouts: a sleeper nobody wakes is a loom deadlock, so a lost wake-up fails the model.
//! The condition is a count of items the waker publishes; a sleeper *looks* at it (a load,
//! as the objects' re-checks do) before it takes one.
//!
//! These models fail when either `fence(SeqCst)` of the protocol is removed (checked: the
//! sleeper's in `Sleepers::register`, the waker's in `Sleepers::should_wake`). The
//! object-specific models stay with the objects: the doorbells over the MPMC ring
//! (mproc-ring's `tests/loom_doorbell.rs`), the semaphores' counts and timeouts
//! (mproc-futex's `tests/loom_semaphore.rs`).
//!
//! Each model asserts that every outcome arm was reached (`Arms`, mproc-futex's
//! `tests/common/arms.rs`).

// Shared with the loom suites of the other crates: independent crates and no test-utility
// crate, so one file included by path keeps one behaviour.
#[cfg(mproc_loom)]
#[path = "../../mproc-futex/tests/common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
#[path = "../../mproc-futex/tests/common/parking.rs"]
mod parking;

#[cfg(mproc_loom)]
mod tests {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::thread;
    use mproc_core::sleepers::Sleepers;

    use crate::arms::Arms;
    use crate::parking::Futex;

    /// One shared object: a count of published items (the condition), a futex word and the
    /// sleepers on it.
    #[derive(Default)]
    struct Object {
        items: AtomicU32,
        /// The doorbell shape's word (unused when the items count is the futex word).
        word: AtomicU32,
        sleepers: Sleepers,
        futex: Futex,
    }

    /// Which word the sleepers sleep on.
    #[derive(Clone, Copy)]
    enum Shape {
        /// A separate word the waker bumps when it sees sleepers (doorbells, the joinable
        /// queue's generation).
        Bell,
        /// The items count itself; sleep while it is 0 (the semaphores' permits).
        Count,
    }

    impl Object {
        /// The re-check: a look at the condition (a load, as the objects do), then a take.
        fn try_take(&self) -> bool {
            // Relaxed: ordered after the registration by its fence; the CAS acquires.
            let mut n = self.items.load(Ordering::Relaxed);
            while n > 0 {
                // Acquire: pairs with the publication's Release.
                match self
                    .items
                    .compare_exchange(n, n - 1, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return true,
                    Err(now) => n = now,
                }
            }
            false
        }

        /// The sleeper's loop: take the word's value, register, re-check, sleep, unregister,
        /// retry. Bounded: two items and one wake need at most three rounds.
        fn take_or_sleep(&self, shape: Shape, arms: &Arms<5>) {
            for _ in 0..3 {
                // Acquire: pairs with the waker's Release bump (a seen bump publishes the
                // items before it).
                let seen = self.word.load(Ordering::Acquire);
                self.sleepers.register();
                if self.try_take() {
                    self.sleepers.unregister();
                    arms.hit("a re-check succeeded");
                    return;
                }
                let slept = match shape {
                    Shape::Bell => self.futex.wait(&self.word, seen),
                    Shape::Count => self.futex.wait(&self.items, 0),
                };
                self.sleepers.unregister();
                arms.either(
                    slept,
                    "woken by a wake",
                    "the word had changed before the wait",
                );
            }
            panic!("no item after three rounds");
        }

        /// The waker: publish `n` items, then ring once (waking every sleeper: the items may
        /// be for several); whether it rang.
        fn publish(&self, shape: Shape, n: u32) -> bool {
            // Release: pairs with the taker's Acquire CAS.
            self.items.fetch_add(n, Ordering::Release);
            if self.sleepers.should_wake() {
                if let Shape::Bell = shape {
                    // Release: pairs with the sleeper's Acquire load of `seen`.
                    self.word.fetch_add(1, Ordering::Release);
                }
                self.futex.wake(usize::MAX);
                return true;
            }
            false
        }
    }

    const TWO_SLEEPER_ARMS: [&str; 5] = [
        "a re-check succeeded",
        "woken by a wake",
        "the word had changed before the wait",
        "two asleep at once",
        "never two asleep at once",
    ];

    /// Two sleepers for one item each, one waker that publishes two items and rings once.
    /// Each sleeper gets an item, none sleeps through one, and every registration is undone.
    fn two_sleepers_one_waker(arms: &'static Arms<5>, shape: Shape) {
        arms.model(move || {
            let obj = Arc::new(Object::default());
            let sleepers: Vec<_> = (0..2)
                .map(|_| {
                    let obj = obj.clone();
                    thread::spawn(move || obj.take_or_sleep(shape, arms))
                })
                .collect();
            let _rang = obj.publish(shape, 2);
            for s in sleepers {
                s.join().unwrap();
            }
            assert_eq!(obj.items.load(Ordering::Relaxed), 0, "both items taken");
            assert_eq!(obj.sleepers.count(), 0, "every sleeper unregistered");
            arms.either(
                obj.futex.most_queued() == 2,
                "two asleep at once",
                "never two asleep at once",
            );
        });
    }

    #[test]
    fn two_sleepers_on_a_bell() {
        static ARMS: Arms<5> = Arms::new("two_sleepers_on_a_bell", TWO_SLEEPER_ARMS);
        two_sleepers_one_waker(&ARMS, Shape::Bell);
    }

    #[test]
    fn two_sleepers_on_the_count() {
        static ARMS: Arms<5> = Arms::new("two_sleepers_on_the_count", TWO_SLEEPER_ARMS);
        two_sleepers_one_waker(&ARMS, Shape::Count);
    }

    /// A sleeper that times out (registers, re-checks, gives up without a wake: a deadline
    /// that passed) beside one that sleeps for the one item: its unregistration must not hide
    /// the other from the waker (a flag instead of a count would), and the other still gets
    /// the item. The timed-out sleeper waits for a condition of its own that never comes, so
    /// it never takes the item.
    #[test]
    fn a_timed_out_sleeper_hides_no_other() {
        static ARMS: Arms<5> = Arms::new(
            "a_timed_out_sleeper_hides_no_other",
            [
                "a re-check succeeded",
                "woken by a wake",
                "the word had changed before the wait",
                "rang, and the timed-out sleeper has left",
                "did not ring",
            ],
        );
        ARMS.model(|| {
            let obj = Arc::new(Object::default());
            // The timed-out sleeper's own condition (never set), and whether it has left.
            let never = Arc::new(AtomicU32::new(0));
            let left = Arc::new(AtomicU32::new(0));
            let sleeper = {
                let obj = obj.clone();
                thread::spawn(move || obj.take_or_sleep(Shape::Bell, &ARMS))
            };
            let timed_out = {
                let (obj, never, left) = (obj.clone(), never.clone(), left.clone());
                thread::spawn(move || {
                    obj.sleepers.register();
                    // Relaxed: ordered by the registration's fence; it never changes.
                    assert_eq!(never.load(Ordering::Relaxed), 0);
                    // Its deadline passes: it leaves without a wake.
                    obj.sleepers.unregister();
                    // Release: pairs with the waker's Acquire look below.
                    left.store(1, Ordering::Release);
                })
            };
            let rang = obj.publish(Shape::Bell, 1);
            // Acquire: pairs with the Release store of `left`.
            let gone = left.load(Ordering::Acquire) == 1;
            ARMS.hit_if(rang && gone, "rang, and the timed-out sleeper has left");
            ARMS.hit_if(!rang, "did not ring");
            sleeper.join().unwrap();
            timed_out.join().unwrap();
            assert_eq!(obj.items.load(Ordering::Relaxed), 0, "the item was taken");
            assert_eq!(obj.sleepers.count(), 0, "every sleeper unregistered");
        });
    }
}
