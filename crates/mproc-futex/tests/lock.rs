//! RawLock in one process: smoke, errors, deadlines, system-call economy, threads.
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

use mproc_futex::{
    AlwaysAlive, Deadline, Futex, LockError, LockGuard, RawLock, UnlockError, Wait, Waiter,
};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn smoke() {
    let l: RawLock = RawLock::new();
    assert_eq!(std::mem::size_of::<RawLock>(), 4);
    assert_eq!(l.word(), 0);
    assert_eq!(l.acquire(3, &AlwaysAlive, Wait::Forever), Ok(()));
    assert_eq!(l.owner(), Some(3));
    assert_eq!(l.try_acquire(4, &AlwaysAlive), Err(LockError::WouldBlock));
    assert_eq!(l.release(4), Err(UnlockError::NotOwner));
    assert_eq!(l.release(3), Ok(()));
    assert_eq!(l.release(3), Err(UnlockError::NotOwner));
    assert_eq!(l.word(), 0);
}

#[test]
fn try_acquire_of_a_free_lock_writes_exactly_the_owner() {
    // No flag may ride along: a stray WAITERS bit costs every release a wake-up call, a
    // stray POISONED bit poisons the lock for the next acquirer.
    let l: RawLock = RawLock::new();
    assert_eq!(l.try_acquire(5, &AlwaysAlive), Ok(()));
    assert_eq!(l.word(), 5);
    assert_eq!(l.release(5), Ok(()));
    assert_eq!(l.word(), 0);
    assert_eq!(l.try_acquire(6, &AlwaysAlive), Ok(()));
    assert_eq!(l.release(6), Ok(()));
    // A guard says whose it is.
    let g = l.lock(7, &AlwaysAlive, Wait::Forever).unwrap();
    assert_eq!(g.participant(), 7);
    assert_eq!(l.word(), 7);
    drop(g);
    let g = l.try_lock(8, &AlwaysAlive).unwrap();
    assert_eq!(g.participant(), 8);
    drop(g);
    assert_eq!(l.word(), 0);
}

#[test]
fn try_acquire_takes_over_a_dead_owner_as_inconsistent() {
    let l: RawLock = RawLock::new();
    assert_eq!(l.acquire(3, &AlwaysAlive, Wait::Forever), Ok(()));
    // Owner 3 is dead: taken over, reported, and marked until repaired.
    assert_eq!(
        l.try_acquire(4, &|id| id != 3),
        Err(LockError::OwnerDied(()))
    );
    assert_eq!(l.owner(), Some(4));
    assert_eq!(l.mark_consistent(4), Ok(()));
    assert_eq!(l.word(), 4);
    assert_eq!(l.release(4), Ok(()));
    assert_eq!(l.word(), 0);
}

#[test]
fn unlocking_a_guard_whose_lock_was_taken_over_says_so() {
    // A (wrong) liveness declared 3 dead while it held the lock: its guard no longer owns it.
    let l: RawLock = RawLock::new();
    let g = l.lock(3, &AlwaysAlive, Wait::Forever).unwrap();
    assert_eq!(
        l.try_acquire(4, &|id| id != 3),
        Err(LockError::OwnerDied(()))
    );
    assert_eq!(g.unlock(), Err(UnlockError::NotOwner));
    assert_eq!(l.owner(), Some(4));
    let g = l.lock(5, &|id| id != 4, Wait::Forever);
    assert!(g.is_err(), "taken over again from 4: {g:?}");
}

#[test]
#[should_panic(expected = "participant id")]
fn id_zero_panics() {
    let l: RawLock = RawLock::new();
    let _ = l.acquire(0, &AlwaysAlive, Wait::Forever);
}

#[test]
#[should_panic(expected = "participant id")]
fn id_too_large_panics() {
    let l: RawLock = RawLock::new();
    let _ = l.try_acquire(mproc_futex::ParticipantId::MAX + 1, &AlwaysAlive);
}

#[test]
fn deadline_is_respected() {
    let l: RawLock = RawLock::new();
    let _held = l.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
    for ms in [0u64, 20, 70] {
        let t = Instant::now();
        let r = l.lock(
            2,
            &AlwaysAlive,
            Wait::Until(Deadline::after(Duration::from_millis(ms))),
        );
        let e = t.elapsed();
        assert!(matches!(r, Err(LockError::Timeout)));
        assert!(
            e >= Duration::from_millis(ms),
            "returned early: {e:?} < {ms} ms"
        );
        assert!(
            e < Duration::from_millis(ms) + Duration::from_secs(2),
            "absurdly late: {e:?}"
        );
    }
}

/// Owner 9 vanishes holding `l`; id 1 takes the lock over (told `OwnerDied`) and gets the
/// inconsistent guard. The fixture of every owner-death test below.
fn taken_over_from_dead_owner(l: &RawLock) -> LockGuard<'_> {
    std::mem::forget(l.lock(9, &AlwaysAlive, Wait::Forever).unwrap());
    match l.lock(1, &|id: u32| id != 9, Wait::Forever) {
        Err(LockError::OwnerDied(g)) => g,
        other => panic!("owner 9 is dead, so id 1 must take over: {other:?}"),
    }
}

#[test]
fn strict_takeover_then_not_recoverable_wakes_sleepers() {
    let l: RawLock = RawLock::new_strict();
    let g = taken_over_from_dead_owner(&l);
    assert!(g.is_inconsistent());
    std::thread::scope(|s| {
        let sleeper = s.spawn(|| {
            l.lock(
                2,
                &AlwaysAlive,
                Wait::Until(Deadline::after(Duration::from_secs(10))),
            )
            .err()
            .map(|e| e.to_string())
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(g); // unlock without mark_consistent
        let msg = sleeper.join().unwrap();
        assert_eq!(
            msg.as_deref(),
            Some(LockError::<()>::NotRecoverable.to_string().as_str())
        );
    });
    assert!(l.is_not_recoverable());
    assert!(matches!(
        l.try_lock(3, &AlwaysAlive),
        Err(LockError::NotRecoverable)
    ));
}

/// std's poisoning: a guard dropped without `mark_consistent` leaves the lock poisoned, not
/// dead; every later acquirer gets it, told `OwnerDied`, until `clear_poison`.
#[test]
fn unmarked_takeover_stays_poisoned_until_cleared() {
    let l: RawLock = RawLock::new();
    assert!(!l.is_strict());
    let g = taken_over_from_dead_owner(&l);
    assert!(g.is_inconsistent() && l.is_poisoned());
    drop(g); // without mark_consistent
    assert!(l.is_poisoned() && !l.is_locked() && !l.is_not_recoverable());
    // Every way in reports it, with the lock held.
    for me in [2, 3] {
        let g = match l.lock(me, &AlwaysAlive, Wait::Forever) {
            Err(LockError::OwnerDied(g)) => g,
            other => panic!("poison must last: {other:?}"),
        };
        assert_eq!(l.owner(), Some(me));
        drop(g);
    }
    assert_eq!(
        l.try_acquire(4, &AlwaysAlive),
        Err(LockError::OwnerDied(()))
    );
    l.release(4).unwrap();
    assert!(
        l.lock_if_free(4, &AlwaysAlive).is_none(),
        "poisoned is not free"
    );
    l.clear_poison();
    assert!(!l.is_poisoned());
    assert_eq!(l.word(), 0);
    drop(l.lock(5, &AlwaysAlive, Wait::Forever).expect("healed"));
    assert_eq!(l.word(), 0);
}

/// A sleeper behind an unmarked takeover is woken and gets the (still poisoned) lock.
#[test]
fn sleeper_behind_an_unmarked_takeover_gets_it_poisoned() {
    let l: RawLock = RawLock::new();
    let g = taken_over_from_dead_owner(&l);
    std::thread::scope(|s| {
        let sleeper = s.spawn(|| {
            let d = Wait::Until(Deadline::after(Duration::from_secs(10)));
            match l.lock(2, &AlwaysAlive, d) {
                Err(LockError::OwnerDied(mut g)) => {
                    g.mark_consistent();
                    true
                }
                _ => false,
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(g);
        assert!(
            sleeper.join().unwrap(),
            "the sleeper must get the poisoned lock"
        );
    });
    assert_eq!(l.word(), 0, "marked consistent by the sleeper");
}

#[test]
fn clear_poison_while_held_vouches_and_never_revives_a_strict_lock() {
    let l: RawLock = RawLock::new();
    let g = taken_over_from_dead_owner(&l);
    l.clear_poison();
    assert!(!g.is_inconsistent());
    drop(g);
    assert_eq!(l.word(), 0);
    // Strict: clear_poison cannot undo NotRecoverable; its fast paths keep STRICT.
    let l: RawLock = RawLock::new_strict();
    assert!(l.is_strict());
    drop(l.lock(1, &AlwaysAlive, Wait::Forever).unwrap());
    drop(l.try_lock(1, &AlwaysAlive).unwrap());
    assert!(l.is_strict() && !l.is_locked());
    drop(taken_over_from_dead_owner(&l));
    assert!(l.is_not_recoverable());
    l.clear_poison();
    assert!(l.is_not_recoverable());
    assert!(matches!(
        l.lock(2, &AlwaysAlive, Wait::Forever),
        Err(LockError::NotRecoverable)
    ));
    // Marked in time, a strict lock is fine.
    let l: RawLock = RawLock::new_strict();
    let mut g = taken_over_from_dead_owner(&l);
    g.mark_consistent();
    drop(g);
    assert!(!l.is_poisoned());
    drop(l.lock(2, &AlwaysAlive, Wait::Forever).unwrap());
}

#[test]
fn mark_consistent_restores_normal_lock() {
    let l: RawLock = RawLock::new();
    std::mem::forget(l.lock(9, &AlwaysAlive, Wait::Forever).unwrap());
    let mut g = l
        .try_lock(1, &|id| id != 9)
        .unwrap_err()
        .into_inner()
        .unwrap();
    g.mark_consistent();
    assert!(!g.is_inconsistent());
    g.unlock().unwrap();
    assert_eq!(l.word(), 0);
}

static WAKES: AtomicUsize = AtomicUsize::new(0);
struct CountingWaiter;
impl Waiter for CountingWaiter {
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool {
        Futex::wait(word, expected, deadline)
    }
    fn wake(word: &AtomicU32, n: u32) -> usize {
        WAKES.fetch_add(1, Ordering::SeqCst);
        Futex::wake(word, n)
    }
}

#[test]
fn unlock_makes_no_syscall_without_sleepers() {
    let l: RawLock<CountingWaiter> = RawLock::new_for_waiter();
    for _ in 0..1000 {
        drop(l.lock(1, &AlwaysAlive, Wait::Forever).unwrap());
    }
    assert_eq!(WAKES.load(Ordering::SeqCst), 0);
    // With a sleeper, the unlock wakes it.
    let g = l.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| drop(l.lock(2, &AlwaysAlive, Wait::Forever).unwrap()));
        let t0 = Instant::now();
        while l.word() & (1 << 30) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "sleeper never announced itself"
            );
            std::thread::yield_now();
        }
        drop(g);
        t.join().unwrap();
    });
    assert!(WAKES.load(Ordering::SeqCst) >= 1);
}

#[test]
fn threads_mutual_exclusion() {
    const THREADS: u32 = 4;
    let iters = mproc_testkit::iterations(20_000, 200_000) as usize;
    let l: RawLock = RawLock::new();
    let inside = AtomicU32::new(0);
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for me in 1..=THREADS {
            let (l, inside, total) = (&l, &inside, &total);
            s.spawn(move || {
                for _ in 0..iters {
                    let g = l.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                    total.fetch_add(1, Ordering::Relaxed);
                    inside.fetch_sub(1, Ordering::Relaxed);
                    drop(g);
                }
            });
        }
    });
    assert_eq!(total.load(Ordering::Relaxed), THREADS as usize * iters);
    assert_eq!(l.word(), 0);
}

#[test]
fn zeroed_bytes_are_an_unlocked_lock() {
    let mut mem = std::mem::MaybeUninit::<RawLock>::zeroed();
    // SAFETY: all-zero bytes are a valid unlocked RawLock (documented layout).
    let l = unsafe { mem.assume_init_mut() };
    assert!(!l.is_locked());
    drop(l.lock(1, &AlwaysAlive, Wait::Forever).unwrap());
}

#[test]
fn release_with_a_non_id_is_not_owner_and_changes_nothing() {
    let l = RawLock::new();
    // Flag bits are not part of any id: they must never match a word that carries them.
    for bad in [
        0,
        1 << 29,
        1 << 30,
        1 << 31,
        1 | (1 << 29),
        1 | (1 << 30),
        1 | (1 << 31),
    ] {
        assert_eq!(l.release(bad), Err(UnlockError::NotOwner), "{bad:#x}");
    }
    let g = l.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
    assert_eq!(l.release(1 | (1 << 30)), Err(UnlockError::NotOwner));
    assert!(l.is_locked());
    drop(g);
    assert!(!l.is_locked());
    // A not-recoverable word is the POISONED and STRICT flags alone: "releasing" it with
    // that value as an id must not unlock it.
    let l = RawLock::new_strict();
    let g = taken_over_from_dead_owner(&l);
    drop(g); // without mark_consistent: not recoverable
    assert!(l.is_not_recoverable());
    assert_eq!(l.release(1 << 31), Err(UnlockError::NotOwner));
    assert_eq!(l.release((1 << 31) | (1 << 29)), Err(UnlockError::NotOwner));
    assert!(l.is_not_recoverable());
}
