//! `mproc::sync::RLock` across real processes: Python's `_TestLock.test_rlock` semantics,
//! release by a non-owner, an owner SIGKILLed while holding it, named open with the kind
//! checked, and a spawned child. Every wait is bounded.
#![allow(unsafe_code)]

mod common;

use common::{LONG, exit_code, kill_and_reap, owner_died, start_doomed};
use std::time::Duration;

use mproc::sync::{AcquireError, Event, LockOptions, NotOwner, RLock};
use mproc::{CreateError, OpenError, Process, StartMethod};

#[test]
fn reentrant_in_one_thread_and_not_in_another() {
    let lock = RLock::new().unwrap();
    assert_eq!(lock.release(), Err(NotOwner), "unowned");
    let a = lock.acquire().unwrap();
    let b = lock.try_acquire().unwrap();
    let c = lock.acquire_timeout(Duration::ZERO).unwrap();
    assert_eq!(lock.count(), 3);
    assert!(lock.is_owned());
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(!lock.is_owned());
            assert!(matches!(lock.try_acquire(), Err(AcquireError::WouldBlock)));
            assert!(matches!(
                lock.acquire_timeout(Duration::from_millis(20)),
                Err(AcquireError::Timeout)
            ));
            assert_eq!(lock.release(), Err(NotOwner), "another thread");
        });
    });
    drop(c);
    drop(b);
    assert!(lock.is_locked());
    // Python's unpaired release: forget the guard, release explicitly.
    std::mem::forget(a);
    lock.release().unwrap();
    assert!(!lock.is_locked());
    assert_eq!(lock.release(), Err(NotOwner));
}

#[test]
fn another_process_can_neither_take_nor_release_it() {
    let lock = RLock::new().unwrap();
    let guard = lock.acquire().unwrap();
    let mut p = Process::new(
        |(lock,): (RLock,)| {
            let code = match (lock.try_acquire(), lock.release()) {
                (Err(AcquireError::WouldBlock), Err(NotOwner)) => 0,
                _ => 1,
            };
            std::process::exit(code);
        },
        (lock.clone(),),
    );
    p.start().unwrap();
    assert_eq!(exit_code(&p), 0);
    drop(guard);
    // Now free: a child takes and re-enters it, then releases.
    let mut p = Process::new(
        |(lock,): (RLock,)| {
            let a = lock.acquire_timeout(LONG).unwrap();
            let b = lock.acquire().unwrap();
            assert_eq!(lock.count(), 2);
            drop((b, a));
        },
        (lock.clone(),),
    );
    p.start().unwrap();
    assert_eq!(exit_code(&p), 0);
    assert!(!lock.is_locked());
}

#[test]
fn owner_killed_while_holding_gives_owner_died() {
    let lock = RLock::new().unwrap();
    let p = start_doomed(&lock, |lock| {
        let a = lock.acquire().unwrap();
        let b = lock.acquire().unwrap();
        std::mem::forget((a, b));
    });
    assert!(lock.is_locked() && !lock.is_owned());
    kill_and_reap(&p);
    let mut guard = match lock.acquire_timeout(LONG) {
        Err(AcquireError::OwnerDied(g)) => g,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(lock.count(), 1, "the dead owner's depth is not inherited");
    assert!(guard.is_inconsistent());
    guard.mark_consistent();
    drop(guard);
    drop(lock.try_acquire().unwrap());
}

#[test]
fn owner_died_unmarked_stays_poisoned_until_cleared() {
    let lock = RLock::new().unwrap();
    let mut p = Process::new(
        |(lock,): (RLock,)| std::mem::forget(lock.acquire().unwrap()),
        (lock.clone(),),
    );
    p.start().unwrap();
    assert_eq!(exit_code(&p), 0);
    let guard = owner_died(lock.acquire_timeout(LONG));
    drop(guard); // not marked
    assert!(lock.is_poisoned() && !lock.is_locked());
    match lock.acquire_timeout(LONG) {
        Err(AcquireError::OwnerDied(g)) => drop(g),
        other => panic!("the poison must last, got {other:?}"),
    }
    lock.clear_poison();
    drop(lock.acquire_timeout(LONG).expect("healed"));
    // Strict: not recoverable instead.
    let lock = RLock::with_options(LockOptions::new().strict_recovery(true)).unwrap();
    let mut p = Process::new(
        |(lock,): (RLock,)| std::mem::forget(lock.acquire().unwrap()),
        (lock.clone(),),
    );
    p.start().unwrap();
    assert_eq!(exit_code(&p), 0);
    drop(owner_died(lock.acquire_timeout(LONG)));
    assert!(matches!(
        lock.acquire_timeout(LONG),
        Err(AcquireError::NotRecoverable)
    ));
}

#[test]
fn named_rlock_opens_by_name_and_checks_the_kind() {
    let name = format!("mproc-test-rlock-{}", std::process::id());
    let lock = RLock::create_named(&name).unwrap();
    match RLock::create_named(&name) {
        Err(CreateError::AlreadyExists { name: n }) => assert_eq!(n, name),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let same = RLock::open_named(&name).unwrap();
    let g = lock.acquire().unwrap();
    assert!(same.is_locked());
    // Each open of a named object registers its own participant: the second handle is
    // another owner identity, as in another process.
    assert!(!same.is_owned());
    drop(g);
    let err = Event::open_named(&name).unwrap_err();
    assert!(matches!(err, OpenError::WrongType { .. }), "{err}");
    assert!(err.to_string().contains("another kind"), "{err}");
    assert!(mproc::Lock::open_named(&name).is_err());
    assert!(
        Event::unlink_named(&name).is_err(),
        "unlink checks the kind"
    );
    RLock::unlink_named(&name).unwrap();
    match RLock::open_named(&name) {
        Err(OpenError::NotFound { name: n }) => assert_eq!(n, name, "the user's name"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        RLock::unlink_named(&name),
        Err(OpenError::NotFound { .. })
    ));
}

fn spawned_try_acquire((lock,): (RLock,)) {
    std::process::exit(match lock.try_acquire() {
        Err(AcquireError::WouldBlock) => 7,
        Ok(_) => 8,
        Err(_) => 9,
    });
}
mproc::entry!(spawned_try_acquire);

#[test]
fn spawned_child_sees_the_same_lock() {
    let lock = RLock::new().unwrap();
    let guard = lock.acquire().unwrap();
    let mut p = Process::new(spawned_try_acquire, (lock.clone(),)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    assert_eq!(exit_code(&p), 7);
    drop(guard);
    let mut p = Process::new(spawned_try_acquire, (lock.clone(),)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    assert_eq!(exit_code(&p), 8);
}
