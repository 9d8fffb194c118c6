//! Loom models of Semaphore and BoundedSemaphore: counts, no lost wake-up (with one sleeper
//! and with two asleep on the permit word at once), timeouts.
//!
//! Every model counts its outcome arms (`tests/common/arms.rs`) and fails if one was never
//! reached.

#[cfg(mproc_loom)]
#[path = "common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use super::arms::{Arms, SLEPT};
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::thread;
    use mproc_futex::{BoundedSemaphore, Deadline, Semaphore, Wait, futex};
    use std::time::Duration;

    /// Whether the calling thread slept and was woken since `before` (it never times out in
    /// these models: no deadline, or none that the clock reaches).
    fn woken_since(before: futex::Sleeps) -> bool {
        let now = futex::sleeps();
        assert_eq!(now.timed_out, before.timed_out, "no deadline: no timeout");
        now.woken > before.woken
    }

    /// A sleeper on an empty semaphore is woken by a release that races with its sleep.
    #[test]
    fn release_wakes_sleeper() {
        static ARMS: Arms<2> = Arms::new("release_wakes_sleeper", SLEPT);
        ARMS.model(|| {
            let s = Arc::new(Semaphore::with_permits(0));
            let s2 = s.clone();
            let h = thread::spawn(move || {
                assert!(s2.acquire(Wait::Forever));
                woken_since(Default::default())
            });
            s.release(1).unwrap();
            ARMS.slept(h.join().unwrap());
            assert_eq!(s.value(), 0);
        });
    }

    /// One permit, two users: never both inside; the count is back to 1 afterwards.
    #[test]
    fn one_permit_two_threads() {
        static ARMS: Arms<2> = Arms::new("one_permit_two_threads", SLEPT);
        ARMS.model(|| {
            let s = Arc::new(Semaphore::with_permits(1));
            let inside = Arc::new(AtomicU32::new(0));
            let work = |s: &Semaphore, inside: &AtomicU32| {
                assert!(s.acquire(Wait::Forever));
                assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                inside.fetch_sub(1, Ordering::Relaxed);
                s.release(1).unwrap();
                let slept = woken_since(Default::default());
                ARMS.slept(slept);
            };
            let (s2, i2) = (s.clone(), inside.clone());
            let h = thread::spawn(move || work(&s2, &i2));
            work(&s, &inside);
            h.join().unwrap();
            assert_eq!(s.value(), 1);
        });
    }

    /// Two releasers, one acquirer taking two permits: counts add up, no lost wake-up.
    #[test]
    fn two_releases_two_acquires() {
        static ARMS: Arms<2> = Arms::new(
            "two_releases_two_acquires",
            ["acquirer slept and was woken", "acquirer never slept"],
        );
        ARMS.model(|| {
            let s = Arc::new(BoundedSemaphore::with_permits(2));
            assert!(s.try_acquire());
            assert!(s.try_acquire());
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || s.release(1).unwrap())
                })
                .collect();
            assert!(s.acquire(Wait::Forever));
            assert!(s.acquire(Wait::Forever));
            let slept = woken_since(Default::default());
            ARMS.either(
                slept,
                "acquirer slept and was woken",
                "acquirer never slept",
            );
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(s.value(), 0);
        });
    }

    /// Two acquirers are *both* asleep on an empty semaphore before anything is released;
    /// then `release` runs as given (`[1, 1]`: two releases of one, `[2]`: one of two). Both
    /// sleepers must be woken by a wake (no deadline, no clock tick), whatever order they
    /// run in; a release that wakes fewer sleepers than it adds permits, or a sleeper count
    /// that forgets the second sleeper, strands one: a loom deadlock.
    fn two_sleepers(arms: &'static Arms<2>, releases: &'static [u32]) {
        arms.model(move || {
            let s = Arc::new(Semaphore::with_permits(0));
            let order = Arc::new(AtomicU32::new(0));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (s, order) = (s.clone(), order.clone());
                    thread::spawn(move || {
                        assert!(s.acquire(Wait::Forever));
                        assert!(woken_since(Default::default()), "slept and was woken");
                        order.fetch_add(1, Ordering::Relaxed)
                    })
                })
                .collect();
            while futex::parked() < 2 {
                thread::yield_now();
            }
            for &n in releases {
                s.release(n).unwrap();
            }
            let first: Vec<_> = hs.into_iter().map(|h| h.join().unwrap() == 0).collect();
            assert_ne!(first[0], first[1]);
            arms.either(
                first[0],
                "sleeper A got a permit first",
                "sleeper B got a permit first",
            );
            assert_eq!(s.value(), 0);
        });
    }

    #[test]
    fn two_sleepers_two_releases_of_one() {
        static ARMS: Arms<2> = Arms::new(
            "two_sleepers_two_releases_of_one",
            [
                "sleeper A got a permit first",
                "sleeper B got a permit first",
            ],
        );
        two_sleepers(&ARMS, &[1, 1]);
    }

    #[test]
    fn two_sleepers_one_release_of_two() {
        static ARMS: Arms<2> = Arms::new(
            "two_sleepers_one_release_of_two",
            [
                "sleeper A got a permit first",
                "sleeper B got a permit first",
            ],
        );
        two_sleepers(&ARMS, &[2]);
    }

    /// A timed-out acquire never swallows a permit.
    #[test]
    fn timeout_keeps_permit() {
        static ARMS: Arms<4> = Arms::new(
            "timeout_keeps_permit",
            [
                "got it without sleeping",
                "got it after a wake",
                "timed out, permit taken on the way out",
                "timed out",
            ],
        );
        ARMS.model(|| {
            let s = Arc::new(Semaphore::with_permits(0));
            let s2 = s.clone();
            let h = thread::spawn(move || {
                let got = s2.acquire(Wait::Until(Deadline::after(Duration::from_millis(1))));
                (got, futex::sleeps())
            });
            futex::advance_clock();
            s.release(1).unwrap();
            let (got, sl) = h.join().unwrap();
            ARMS.hit(match (got, sl.timed_out > 0, sl.woken > 0) {
                (true, false, false) => "got it without sleeping",
                (true, false, true) => "got it after a wake",
                (true, true, _) => "timed out, permit taken on the way out",
                (false, ..) => "timed out",
            });
            assert_eq!(s.value(), if got { 0 } else { 1 });
        });
    }
}
