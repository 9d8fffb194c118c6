//! Loom models of RawLock and RawRLock: mutual exclusion, no lost wake-up (with one sleeper
//! and with two asleep on the lock at once), owner-death takeover (exactly once), timeouts.
//!
//! Every model counts its outcome arms (`tests/common/arms.rs`) and fails if one was never
//! reached. Run: `RUSTFLAGS="--cfg mproc_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p mproc-futex --release --test 'loom_*'`

#[cfg(mproc_loom)]
#[path = "common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use super::arms::{Arms, SLEPT};
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use loom::thread;
    use mproc_futex::{AlwaysAlive, Deadline, LockError, RawLock, RawRLock, Wait, futex};
    use std::time::Duration;

    struct Shared {
        lock: RawLock,
        data: UnsafeCell<u32>,
    }
    // SAFETY: `data` is only touched while `lock` is held (loom checks it).
    unsafe impl Sync for Shared {}

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            lock: RawLock::new(),
            data: UnsafeCell::new(0),
        })
    }

    /// Takes the lock as `me`, increments the data, releases. Returns the data's previous
    /// value (how many went before) and whether this thread slept and was woken on the way.
    /// No deadline and no clock tick is involved, so a sleeper nobody wakes is a loom deadlock.
    fn incr(s: &Shared, me: u32) -> (u32, bool) {
        let before = futex::sleeps();
        let g = s.lock.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
        // SAFETY: lock held; loom's cell tracks the access.
        let prev = s.data.with_mut(|p| unsafe {
            *p += 1;
            *p - 1
        });
        drop(g);
        let after = futex::sleeps();
        assert_eq!(after.timed_out, before.timed_out, "no deadline: no timeout");
        (prev, after.woken > before.woken)
    }

    fn run_mutual_exclusion(arms: &'static Arms<2>, builder: loom::model::Builder, threads: u32) {
        arms.check(builder, move || {
            let s = shared();
            let hs: Vec<_> = (2..=threads)
                .map(|me| {
                    let s = s.clone();
                    thread::spawn(move || incr(&s, me).1)
                })
                .collect();
            let mut slept = vec![incr(&s, 1).1];
            slept.extend(hs.into_iter().map(|h| h.join().unwrap()));
            for slept in slept {
                arms.slept(slept);
            }
            // SAFETY: all threads joined.
            assert_eq!(s.data.with(|p| unsafe { *p }), threads);
            assert_eq!(s.lock.word(), 0);
        });
    }

    #[test]
    fn mutual_exclusion_two_threads() {
        static ARMS: Arms<2> = Arms::new("mutual_exclusion_two_threads", SLEPT);
        run_mutual_exclusion(&ARMS, loom::model::Builder::new(), 2);
    }

    /// Three threads, at the bound `LOOM_MAX_PREEMPTIONS` gives (it used to be pinned to
    /// bound 1, when the spin's loom yield made bound 2 slow and kept every waiter awake).
    /// At bound 2 some schedules have two threads asleep at once; `two_sleepers_on_one_lock`
    /// has that in every schedule, whatever the bound.
    #[test]
    fn mutual_exclusion_three_threads() {
        static ARMS: Arms<2> = Arms::new("mutual_exclusion_three_threads", SLEPT);
        run_mutual_exclusion(&ARMS, loom::model::Builder::new(), 3);
    }

    /// Holder 1 keeps the lock until waiters 2 and 3 are *both* asleep on it, then releases.
    /// Its release wakes one of them, which takes the now-free lock in the slow path and must
    /// leave the WAITERS bit set: the other sleeper is still parked, and only the next
    /// release's wake gets it out (there is no deadline and no clock tick, so a liveness
    /// check slice never ends its sleep). Taking the lock without WAITERS strands it: a loom
    /// deadlock. Both waiters must report that a wake, not a timeout, ended their sleep.
    #[test]
    fn two_sleepers_on_one_lock() {
        static ARMS: Arms<2> = Arms::new(
            "two_sleepers_on_one_lock",
            ["waiter 2 went first", "waiter 3 went first"],
        );
        ARMS.model(|| {
            let s = shared();
            let g = s.lock.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
            let hs: Vec<_> = (2..=3)
                .map(|me| {
                    let s = s.clone();
                    thread::spawn(move || incr(&s, me))
                })
                .collect();
            while futex::parked() < 2 {
                thread::yield_now();
            }
            drop(g);
            let ends: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            for (prev, slept) in &ends {
                assert!(slept, "both waiters slept and were woken");
                assert!(*prev < 2);
            }
            ARMS.either(ends[0].0 == 0, "waiter 2 went first", "waiter 3 went first");
            assert_eq!(s.lock.word(), 0);
        });
    }

    /// The waiter sleeps while the holder unlocks: it must be woken (loom reports a deadlock
    /// otherwise, since no deadline is involved).
    #[test]
    fn no_lost_wakeup() {
        static ARMS: Arms<2> = Arms::new(
            "no_lost_wakeup",
            ["waiter slept and was woken", "waiter never slept"],
        );
        ARMS.model(|| {
            let s = shared();
            let g = s.lock.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
            let s2 = s.clone();
            let h = thread::spawn(move || incr(&s2, 2).1);
            drop(g);
            let slept = h.join().unwrap();
            ARMS.either(slept, "waiter slept and was woken", "waiter never slept");
            assert_eq!(s.lock.word(), 0);
        });
    }

    /// Owner 9 is dead from the start; two acquirers race: exactly one is told OwnerDied; the
    /// other either slept behind the new owner (and was woken) or never had to.
    #[test]
    fn dead_owner_taken_over_exactly_once() {
        static ARMS: Arms<4> = Arms::new(
            "dead_owner_taken_over_exactly_once",
            [
                "1 took over",
                "2 took over",
                "other slept behind the new owner",
                "other never slept",
            ],
        );
        ARMS.model(|| {
            let s = shared();
            std::mem::forget(s.lock.lock(9, &AlwaysAlive, Wait::Forever).unwrap());
            let died = Arc::new(AtomicU32::new(0));
            let hs: Vec<_> = (1..=2)
                .map(|me| {
                    let (s, died) = (s.clone(), died.clone());
                    thread::spawn(move || {
                        let dead9 = |id: u32| id != 9;
                        let mut g = match s.lock.lock(me, &dead9, Wait::Forever) {
                            Ok(g) => {
                                ARMS.either(
                                    futex::sleeps().woken > 0,
                                    "other slept behind the new owner",
                                    "other never slept",
                                );
                                g
                            }
                            Err(LockError::OwnerDied(g)) => {
                                died.fetch_add(1, Ordering::Relaxed);
                                ARMS.hit(if me == 1 {
                                    "1 took over"
                                } else {
                                    "2 took over"
                                });
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
    /// the liveness check would sleep for ever: loom deadlock). Nobody ever wakes the lock, so
    /// a sleeper gets out only when its check slice times out. The lock is strict, so the
    /// unmarked unlock leaves it not recoverable.
    #[test]
    fn owner_dies_while_acquirer_sleeps() {
        static ARMS: Arms<2> = Arms::new(
            "owner_dies_while_acquirer_sleeps",
            [
                "death seen before sleeping",
                "death seen when a check slice timed out",
            ],
        );
        ARMS.model(|| {
            let lock = Arc::new(RawLock::new_strict());
            let dead = Arc::new(AtomicBool::new(false));
            std::mem::forget(lock.lock(9, &AlwaysAlive, Wait::Forever).unwrap());
            let (l2, d2) = (lock.clone(), dead.clone());
            let h = thread::spawn(move || {
                let alive = move |id: u32| id != 9 || !d2.load(Ordering::Acquire);
                match l2.lock(1, &alive, Wait::Forever) {
                    Err(LockError::OwnerDied(g)) => drop(g), // not marked: not recoverable
                    other => panic!("expected OwnerDied, got {other:?}"),
                }
                let sl = futex::sleeps();
                assert_eq!(sl.woken, 0, "nobody wakes this lock");
                ARMS.either(
                    sl.timed_out == 0,
                    "death seen before sleeping",
                    "death seen when a check slice timed out",
                );
            });
            dead.store(true, Ordering::Release);
            futex::advance_clock();
            h.join().unwrap();
            assert!(lock.is_not_recoverable());
        });
    }

    /// Owner 9 is dead from the start; two acquirers race. The first takes over and unlocks
    /// *without* marking the lock consistent; the poison lasts (std's rule), so the second is
    /// told OwnerDied too — whether it took over from 9 itself, found the lock poisoned and
    /// free, or slept behind the first (whose poisoned unlock must wake it: no deadline, so a
    /// lost wake-up is a loom deadlock). The second marks it consistent: the word ends clean.
    #[test]
    fn poison_lasts_for_the_next_acquirer() {
        static ARMS: Arms<3> = Arms::new(
            "poison_lasts_for_the_next_acquirer",
            [
                "1 went first",
                "2 went first",
                "second slept behind the first",
            ],
        );
        ARMS.model(|| {
            let s = shared();
            std::mem::forget(s.lock.lock(9, &AlwaysAlive, Wait::Forever).unwrap());
            let hs: Vec<_> = (1..=2)
                .map(|me| {
                    let s = s.clone();
                    thread::spawn(move || {
                        let dead9 = |id: u32| id != 9;
                        let mut g = match s.lock.lock(me, &dead9, Wait::Forever) {
                            Err(LockError::OwnerDied(g)) => g,
                            other => panic!("every acquirer must be told: {other:?}"),
                        };
                        // SAFETY: lock held.
                        let first = s.data.with_mut(|p| unsafe {
                            *p += 1;
                            *p == 1
                        });
                        if first {
                            ARMS.hit(if me == 1 {
                                "1 went first"
                            } else {
                                "2 went first"
                            });
                            drop(g); // unmarked: stays poisoned
                        } else {
                            ARMS.hit_if(futex::sleeps().woken > 0, "second slept behind the first");
                            g.mark_consistent();
                            drop(g);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(s.lock.word(), 0);
        });
    }

    /// A timed acquire either gets the lock or times out, and never leaves it unusable.
    #[test]
    fn timeout_or_acquire() {
        static ARMS: Arms<3> = Arms::new(
            "timeout_or_acquire",
            [
                "acquired without sleeping",
                "acquired after a wake",
                "timed out",
            ],
        );
        ARMS.model(|| {
            let lock = Arc::new(RawLock::new());
            let g = lock.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
            let l2 = lock.clone();
            let h = thread::spawn(move || {
                let d = Some(Deadline::after(Duration::from_millis(1)));
                match l2.lock(2, &AlwaysAlive, Wait::until(d)) {
                    Ok(g) => {
                        drop(g);
                        ARMS.either(
                            futex::sleeps().woken > 0,
                            "acquired after a wake",
                            "acquired without sleeping",
                        );
                    }
                    Err(LockError::Timeout) => ARMS.hit("timed out"),
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
    /// so `should_panic` cannot observe it. `cargo xtask loom` runs every ignored model as a
    /// canary (with `--ignored`, in its own process) whose step passes only when it fails; by
    /// hand, expect an abort whose message starts with "deadlock".
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
            let g = lock.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
            let l2 = lock.clone();
            let h = thread::spawn(move || drop(l2.lock(2, &AlwaysAlive, Wait::Forever).unwrap()));
            drop(g);
            h.join().unwrap();
        });
    }

    #[test]
    fn rlock_reentrant_mutual_exclusion() {
        static ARMS: Arms<2> = Arms::new("rlock_reentrant_mutual_exclusion", SLEPT);
        ARMS.model(|| {
            let l = Arc::new(RawRLock::new());
            let data = Arc::new(UnsafeCell::new(0u32));
            let work = |l: &RawRLock, data: &UnsafeCell<u32>, me: u32| {
                let a = l.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
                let b = l.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
                // SAFETY: lock held.
                data.with_mut(|p| unsafe { *p += 1 });
                drop(b);
                drop(a);
                let sl = futex::sleeps();
                assert_eq!(sl.timed_out, 0);
                ARMS.slept(sl.woken > 0);
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
