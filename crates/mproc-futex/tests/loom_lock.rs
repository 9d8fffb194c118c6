//! Loom models of RawLock and RawRLock: mutual exclusion, no lost wake-up, owner-death
//! takeover (exactly once), timeouts.
//!
//! Run: `RUSTFLAGS="--cfg mproc_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p mproc-futex --release --test 'loom_*'`

#[cfg(mproc_loom)]
mod tests {
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use loom::thread;
    use mproc_futex::{AlwaysAlive, Deadline, LockError, RawLock, RawRLock, futex};
    use std::time::Duration;

    struct Shared {
        lock: RawLock,
        data: UnsafeCell<u32>,
    }
    // SAFETY: `data` is only touched while `lock` is held (loom checks it).
    unsafe impl Sync for Shared {}

    fn incr(s: &Shared, me: u32) {
        let g = s.lock.lock(me, &AlwaysAlive, None).unwrap();
        // SAFETY: lock held; loom's cell tracks the access.
        s.data.with_mut(|p| unsafe { *p += 1 });
        drop(g);
    }

    fn run_mutual_exclusion(threads: u32) {
        loom::model(move || {
            let s = Arc::new(Shared {
                lock: RawLock::new(),
                data: UnsafeCell::new(0),
            });
            let hs: Vec<_> = (2..=threads)
                .map(|me| {
                    let s = s.clone();
                    thread::spawn(move || incr(&s, me))
                })
                .collect();
            incr(&s, 1);
            for h in hs {
                h.join().unwrap();
            }
            // SAFETY: all threads joined.
            assert_eq!(s.data.with(|p| unsafe { *p }), threads);
            assert_eq!(s.lock.word(), 0);
        });
    }

    #[test]
    fn mutual_exclusion_two_threads() {
        run_mutual_exclusion(2);
    }

    #[test]
    fn mutual_exclusion_three_threads() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(1);
        b.check(|| {
            let s = Arc::new(Shared {
                lock: RawLock::new(),
                data: UnsafeCell::new(0),
            });
            let hs: Vec<_> = (2..=3)
                .map(|me| {
                    let s = s.clone();
                    thread::spawn(move || incr(&s, me))
                })
                .collect();
            incr(&s, 1);
            for h in hs {
                h.join().unwrap();
            }
            // SAFETY: all threads joined.
            assert_eq!(s.data.with(|p| unsafe { *p }), 3);
        });
    }

    /// The waiter sleeps while the holder unlocks: it must be woken (loom reports a deadlock
    /// otherwise, since no deadline is involved).
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let s = Arc::new(Shared {
                lock: RawLock::new(),
                data: UnsafeCell::new(0),
            });
            let g = s.lock.lock(1, &AlwaysAlive, None).unwrap();
            let s2 = s.clone();
            let h = thread::spawn(move || incr(&s2, 2));
            drop(g);
            h.join().unwrap();
            assert_eq!(s.lock.word(), 0);
        });
    }

    /// Owner 9 is dead from the start; two acquirers race: exactly one is told OwnerDied.
    #[test]
    fn dead_owner_taken_over_exactly_once() {
        loom::model(|| {
            let s = Arc::new(Shared {
                lock: RawLock::new(),
                data: UnsafeCell::new(0),
            });
            std::mem::forget(s.lock.lock(9, &AlwaysAlive, None).unwrap());
            let died = Arc::new(AtomicU32::new(0));
            let hs: Vec<_> = (1..=2)
                .map(|me| {
                    let (s, died) = (s.clone(), died.clone());
                    thread::spawn(move || {
                        let dead9 = |id: u32| id != 9;
                        let mut g = match s.lock.lock(me, &dead9, None) {
                            Ok(g) => g,
                            Err(LockError::OwnerDied(g)) => {
                                died.fetch_add(1, Ordering::Relaxed);
                                g
                            }
                            Err(e) => panic!("{e}"),
                        };
                        // SAFETY: lock held.
                        s.data.with_mut(|p| unsafe { *p += 1 });
                        g.mark_consistent();
                        drop(g);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(died.load(Ordering::Relaxed), 1);
            assert_eq!(s.lock.word(), 0);
        });
    }

    /// The owner dies while the acquirer may already sleep; one tick of the check interval
    /// later the acquirer must have noticed (a sleeper that computed its check deadline after
    /// the liveness check would sleep for ever: loom deadlock).
    #[test]
    fn owner_dies_while_acquirer_sleeps() {
        loom::model(|| {
            let lock = Arc::new(RawLock::new());
            let dead = Arc::new(AtomicBool::new(false));
            std::mem::forget(lock.lock(9, &AlwaysAlive, None).unwrap());
            let (l2, d2) = (lock.clone(), dead.clone());
            let h = thread::spawn(move || {
                let alive = move |id: u32| id != 9 || !d2.load(Ordering::Acquire);
                match l2.lock(1, &alive, None) {
                    Err(LockError::OwnerDied(g)) => drop(g), // not marked: not recoverable
                    other => panic!("expected OwnerDied, got {other:?}"),
                }
            });
            dead.store(true, Ordering::Release);
            futex::advance_clock();
            h.join().unwrap();
            assert!(lock.is_not_recoverable());
        });
    }

    /// A timed acquire either gets the lock or times out, and never leaves it unusable.
    #[test]
    fn timeout_or_acquire() {
        loom::model(|| {
            let lock = Arc::new(RawLock::new());
            let g = lock.lock(1, &AlwaysAlive, None).unwrap();
            let l2 = lock.clone();
            let h = thread::spawn(move || {
                let d = Some(Deadline::after(Duration::from_millis(1)));
                match l2.lock(2, &AlwaysAlive, d) {
                    Ok(g) => drop(g),
                    Err(LockError::Timeout) => {}
                    Err(e) => panic!("{e}"),
                }
            });
            futex::advance_clock();
            drop(g);
            h.join().unwrap();
            assert_eq!(lock.word(), 0);
        });
    }

    /// A waiter whose wake does nothing: the model must report the lost wake-up as a
    /// deadlock, which shows that the parking table really catches one. Ignored because
    /// loom's deadlock panic aborts the process (a loom object panics again while unwinding),
    /// so `should_panic` cannot observe it; run it by hand with `--ignored` and expect an
    /// abort whose message starts with "deadlock".
    struct NoWake;
    impl mproc_futex::Waiter for NoWake {
        fn wait(w: &AtomicU32, expected: u32, d: Option<Deadline>) -> bool {
            futex::wait(w, expected, d)
        }
        fn wake(_: &AtomicU32, _: u32) -> usize {
            0
        }
    }

    #[test]
    #[ignore = "aborts the process by design; see the doc comment"]
    fn lost_wakeup_is_caught() {
        loom::model(|| {
            let lock = Arc::new(RawLock::<NoWake>::new_for_waiter());
            let g = lock.lock(1, &AlwaysAlive, None).unwrap();
            let l2 = lock.clone();
            let h = thread::spawn(move || drop(l2.lock(2, &AlwaysAlive, None).unwrap()));
            drop(g);
            h.join().unwrap();
        });
    }

    #[test]
    fn rlock_reentrant_mutual_exclusion() {
        loom::model(|| {
            let l = Arc::new(RawRLock::new());
            let data = Arc::new(UnsafeCell::new(0u32));
            let work = |l: &RawRLock, data: &UnsafeCell<u32>, me: u32| {
                let a = l.lock(me, &AlwaysAlive, None).unwrap();
                let b = l.lock(me, &AlwaysAlive, None).unwrap();
                // SAFETY: lock held.
                data.with_mut(|p| unsafe { *p += 1 });
                drop(b);
                drop(a);
            };
            let (l2, d2) = (l.clone(), data.clone());
            // Same participant id, different threads: reentrancy is per thread.
            let h = thread::spawn(move || work(&l2, &d2, 1));
            work(&l, &data, 1);
            h.join().unwrap();
            // SAFETY: joined.
            assert_eq!(data.with(|p| unsafe { *p }), 2);
            assert!(!l.is_locked());
        });
    }
}
