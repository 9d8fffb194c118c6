//! Loom models of Semaphore and BoundedSemaphore: counts, no lost wake-up, timeouts.

#[cfg(mproc_loom)]
mod tests {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::thread;
    use mproc_futex::{BoundedSemaphore, Deadline, Semaphore, futex};
    use std::time::Duration;

    /// A sleeper on an empty semaphore is woken by a release that races with its sleep.
    #[test]
    fn release_wakes_sleeper() {
        loom::model(|| {
            let s = Arc::new(Semaphore::with_permits(0));
            let s2 = s.clone();
            let h = thread::spawn(move || assert!(s2.acquire(None)));
            s.release(1).unwrap();
            h.join().unwrap();
            assert_eq!(s.value(), 0);
        });
    }

    /// One permit, two users: never both inside; the count is back to 1 afterwards.
    #[test]
    fn one_permit_two_threads() {
        loom::model(|| {
            let s = Arc::new(Semaphore::with_permits(1));
            let inside = Arc::new(AtomicU32::new(0));
            let work = |s: &Semaphore, inside: &AtomicU32| {
                assert!(s.acquire(None));
                assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                inside.fetch_sub(1, Ordering::Relaxed);
                s.release(1).unwrap();
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
        loom::model(|| {
            let s = Arc::new(BoundedSemaphore::with_permits(2));
            assert!(s.try_acquire());
            assert!(s.try_acquire());
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || s.release(1).unwrap())
                })
                .collect();
            assert!(s.acquire(None));
            assert!(s.acquire(None));
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(s.value(), 0);
        });
    }

    /// A timed-out acquire never swallows a permit.
    #[test]
    fn timeout_keeps_permit() {
        loom::model(|| {
            let s = Arc::new(Semaphore::with_permits(0));
            let s2 = s.clone();
            let h =
                thread::spawn(move || s2.acquire(Some(Deadline::after(Duration::from_millis(1)))));
            futex::advance_clock();
            s.release(1).unwrap();
            let got = h.join().unwrap();
            assert_eq!(s.value(), if got { 0 } else { 1 });
        });
    }
}
