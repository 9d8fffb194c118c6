//! Loom models of Event: set/wait races, set+clear, two waiters asleep at once, timeouts.
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
    use mproc_futex::{Deadline, Event, Wait, futex};
    use std::time::Duration;

    /// Waits without a deadline; returns whether this thread slept and was woken.
    fn wait(e: &Event) -> bool {
        assert!(e.wait(Wait::Forever));
        let sl = futex::sleeps();
        assert_eq!(sl.timed_out, 0, "no deadline: no timeout");
        sl.woken > 0
    }

    #[test]
    fn set_wakes_waiter() {
        static ARMS: Arms<2> = Arms::new("set_wakes_waiter", SLEPT);
        ARMS.model(|| {
            let e = Arc::new(Event::new());
            let e2 = e.clone();
            let h = thread::spawn(move || wait(&e2));
            e.set();
            ARMS.slept(h.join().unwrap());
        });
    }

    /// A waiter that started before `set` returns true even if `clear` follows at once.
    #[test]
    fn set_then_clear_releases_waiters() {
        static ARMS: Arms<2> = Arms::new(
            "set_then_clear_releases_waiters",
            ["a waiter slept and was woken", "a waiter never slept"],
        );
        ARMS.model(|| {
            let e = Arc::new(Event::new());
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let e = e.clone();
                    thread::spawn(move || wait(&e))
                })
                .collect();
            e.set();
            e.clear();
            // Waiters that had not started yet would now wait for ever: set again for them.
            e.set();
            for h in hs {
                let slept = h.join().unwrap();
                ARMS.either(
                    slept,
                    "a waiter slept and was woken",
                    "a waiter never slept",
                );
            }
        });
    }

    /// The outcome arms of [`two_sleepers`]: which waiter returned first.
    const WHO_RETURNED_FIRST: [&str; 2] = ["waiter A returned first", "waiter B returned first"];

    /// Two waiters are *both* asleep before the event is set (and, with `clear`, cleared
    /// again at once, before either has run). One `set` must wake both, and each must return
    /// true: from the flag, or from the generation that `set` advanced. Waking only one, or a
    /// waiter that looks only at the flag, strands the other: a loom deadlock (no deadline).
    fn two_sleepers(arms: &'static Arms<2>, clear: bool) {
        arms.model(move || {
            let e = Arc::new(Event::new());
            let order = Arc::new(AtomicU32::new(0));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (e, order) = (e.clone(), order.clone());
                    thread::spawn(move || {
                        assert!(wait(&e), "slept and was woken");
                        order.fetch_add(1, Ordering::Relaxed)
                    })
                })
                .collect();
            while futex::parked() < 2 {
                thread::yield_now();
            }
            e.set();
            if clear {
                e.clear();
            }
            let first: Vec<_> = hs.into_iter().map(|h| h.join().unwrap() == 0).collect();
            arms.either(first[0], WHO_RETURNED_FIRST[0], WHO_RETURNED_FIRST[1]);
            assert_eq!(e.is_set(), !clear);
        });
    }

    #[test]
    fn two_sleepers_set() {
        static ARMS: Arms<2> = Arms::new("two_sleepers_set", WHO_RETURNED_FIRST);
        two_sleepers(&ARMS, false);
    }

    #[test]
    fn two_sleepers_set_then_clear() {
        static ARMS: Arms<2> = Arms::new("two_sleepers_set_then_clear", WHO_RETURNED_FIRST);
        two_sleepers(&ARMS, true);
    }

    #[test]
    fn timed_wait_reports_what_happened() {
        static ARMS: Arms<4> = Arms::new(
            "timed_wait_reports_what_happened",
            [
                "set seen without sleeping",
                "set seen after a wake",
                "timed out, set seen on the way out",
                "timed out",
            ],
        );
        ARMS.model(|| {
            let e = Arc::new(Event::new());
            let e2 = e.clone();
            let h = thread::spawn(move || {
                let r = e2.wait(Wait::Until(Deadline::after(Duration::from_millis(1))));
                (r, futex::sleeps())
            });
            futex::advance_clock();
            e.set();
            let (r, sl) = h.join().unwrap(); // either outcome is fine; no deadlock, no hang
            ARMS.hit(match (r, sl.timed_out > 0, sl.woken > 0) {
                (true, false, false) => "set seen without sleeping",
                (true, false, true) => "set seen after a wake",
                (true, true, _) => "timed out, set seen on the way out",
                (false, ..) => "timed out",
            });
            assert!(e.is_set());
        });
    }
}
