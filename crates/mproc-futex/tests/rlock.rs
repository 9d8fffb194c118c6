//! RawRLock: reentrancy, thread ownership, deadlines.
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{AlwaysAlive, Deadline, LockError, RawRLock, UnlockError, Wait};
use std::time::{Duration, Instant};

#[test]
fn reentrant_and_counted() {
    let l: RawRLock = RawRLock::new();
    assert_eq!(std::mem::size_of::<RawRLock>(), 12);
    let a = l.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
    let b = l.try_lock(1, &AlwaysAlive).unwrap();
    assert_eq!(l.count(), 2);
    // The underlying lock word names the owning participant.
    assert_eq!(l.raw().owner(), Some(1));
    drop(b);
    assert!(l.is_locked());
    drop(a);
    assert!(!l.is_locked());
    assert_eq!(l.raw().owner(), None);
    assert_eq!(l.release(1), Err(UnlockError::NotOwner));
}

#[test]
fn other_thread_of_same_participant_cannot_release_or_reenter() {
    let l: RawRLock = RawRLock::new();
    assert_eq!(l.acquire(1, &AlwaysAlive, Wait::Forever), Ok(()));
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(l.release(1), Err(UnlockError::NotOwner));
            assert_eq!(l.try_acquire(1, &AlwaysAlive), Err(LockError::WouldBlock));
            let t = Instant::now();
            let r = l.lock(
                1,
                &AlwaysAlive,
                Wait::Until(Deadline::after(Duration::from_millis(30))),
            );
            assert!(matches!(r, Err(LockError::Timeout)));
            assert!(t.elapsed() >= Duration::from_millis(30));
        });
    });
    assert_eq!(l.release(1), Ok(()));
}

#[test]
fn other_participant_blocks_until_release() {
    let l: RawRLock = RawRLock::new();
    let g = l.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let g = l.lock(
                2,
                &AlwaysAlive,
                Wait::Until(Deadline::after(Duration::from_secs(10))),
            );
            assert!(g.is_ok());
            drop(g);
        });
        std::thread::sleep(Duration::from_millis(10));
        drop(g);
        t.join().unwrap();
    });
}

/// The thread id is cached per thread; a forked child must not inherit its parent's cached
/// id, or it would "re-enter" a lock that the parent's thread holds.
#[test]
fn forked_child_does_not_inherit_thread_identity() {
    let _g = FORK_LOCK.lock().unwrap();
    let l: &'static RawRLock = shared_zeroed();
    assert_eq!(l.acquire(1, &AlwaysAlive, Wait::Forever), Ok(()));
    let child = fork(move || match l.try_acquire(1, &AlwaysAlive) {
        Err(LockError::WouldBlock) => 0,
        _ => 8,
    });
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
    assert_eq!(l.count(), 1);
    l.release(1).unwrap();
}

/// A dead owner's RLock stays poisoned (std's rule) across unmarked holders until cleared;
/// a strict one becomes not recoverable.
#[test]
fn rlock_poison_lasts_until_cleared_strict_is_not_recoverable() {
    for strict in [false, true] {
        let l: RawRLock = if strict {
            RawRLock::new_strict()
        } else {
            RawRLock::new()
        };
        std::mem::forget(l.lock(9, &AlwaysAlive, Wait::Forever).unwrap());
        let g = match l.lock(1, &|id| id != 9, Wait::Forever) {
            Err(LockError::OwnerDied(g)) => g,
            other => panic!("{other:?}"),
        };
        assert!(g.is_inconsistent() && l.is_poisoned());
        assert_eq!(l.count(), 1);
        drop(g); // not marked consistent
        assert!(!l.is_locked());
        if strict {
            assert!(matches!(
                l.lock(2, &AlwaysAlive, Wait::Forever),
                Err(LockError::NotRecoverable)
            ));
            l.clear_poison();
            assert!(l.raw().is_not_recoverable());
            continue;
        }
        match l.lock(2, &AlwaysAlive, Wait::Forever) {
            Err(LockError::OwnerDied(g)) => drop(g),
            other => panic!("the poison must last: {other:?}"),
        }
        l.clear_poison();
        assert!(!l.is_poisoned());
        drop(l.lock(2, &AlwaysAlive, Wait::Forever).expect("cleared"));
        assert_eq!(l.raw().word(), 0);
    }
}
