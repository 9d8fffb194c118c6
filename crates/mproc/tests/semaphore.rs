//! `mproc::sync::{Semaphore, BoundedSemaphore}` across real processes: Python's
//! `_TestSemaphore` essentials, at most N holders at once, a holder SIGKILLed (its permits
//! come back, by the documented rule), named open with the kind checked. Every wait is bounded.
#![allow(clippy::disallowed_types)]

mod common;

use common::{
    LONG, SharedWords, exit_code, join_all_ok, kill_and_reap, start_children, start_doomed,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mproc::sync::{BoundedSemaphore, ReleaseError, Semaphore};
use mproc::{OpenError, Process};

#[test]
fn python_test_semaphore() {
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(sem.get_value(), 2);
    sem.acquire().unwrap();
    assert_eq!(sem.get_value(), 1);
    assert!(sem.try_acquire().unwrap());
    assert_eq!(sem.get_value(), 0);
    assert!(!sem.try_acquire().unwrap());
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 1);
    sem.release().unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 4, "an unbounded semaphore grows");
    assert_eq!(format!("{sem:?}"), "<Semaphore(value=4)>");
}

#[test]
fn python_test_bounded_semaphore() {
    let sem = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(sem.release(), Err(ReleaseError::TooManyReleases)));
    sem.acquire().unwrap();
    sem.acquire().unwrap();
    assert!(!sem.try_acquire().unwrap());
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(matches!(sem.release(), Err(ReleaseError::TooManyReleases)));
    assert_eq!((sem.get_value(), sem.bound()), (2, 2));
}

#[test]
fn python_test_timeout() {
    let sem = Semaphore::new(0).unwrap();
    let t0 = Instant::now();
    assert!(!sem.acquire_timeout(Duration::ZERO).unwrap());
    assert!(!sem.acquire_timeout(Duration::from_millis(100)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(100), "never early");
}

#[test]
fn children_release_and_the_parent_acquires() {
    let sem = Semaphore::new(0).unwrap();
    let mut p = Process::new(
        |(sem,): (Semaphore,)| {
            for _ in 0..3 {
                sem.release().unwrap();
            }
        },
        (sem.clone(),),
    );
    p.start().unwrap();
    for _ in 0..3 {
        assert!(sem.acquire_timeout(LONG).unwrap());
    }
    assert_eq!(exit_code(&p), 0);
    assert_eq!(sem.get_value(), 0);
}

#[test]
fn at_most_n_holders_across_processes() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let words = SharedWords::new(); // 0: holders now, 1: most holders seen
    let kids = start_children(4, (sem.clone(),), move |(sem,): (BoundedSemaphore,)| {
        for _ in 0..5 {
            assert!(sem.acquire_timeout(LONG).unwrap());
            let now = words.get(0).fetch_add(1, Ordering::SeqCst) + 1;
            words.get(1).fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            words.get(0).fetch_sub(1, Ordering::SeqCst);
            sem.release().unwrap();
        }
    });
    join_all_ok(&kids);
    let most = words.get(1).load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} holders at once");
    assert_eq!(sem.get_value(), 2);
}

/// #12 finding 4: a holder SIGKILLed with two permits of a `BoundedSemaphore(2)`; a survivor
/// blocked in `acquire` gets them back (it failed for ever before the ledger).
#[test]
fn a_killed_holders_permits_come_back_to_a_blocked_acquirer() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let p = start_doomed(&sem, |sem| {
        sem.acquire().unwrap();
        sem.acquire().unwrap();
    });
    assert_eq!(sem.get_value(), 0);
    kill_and_reap(&p);
    let t0 = Instant::now();
    assert!(
        sem.acquire_timeout(LONG).unwrap(),
        "the dead holder's permit came back"
    );
    assert!(sem.try_acquire().unwrap(), "both permits came back");
    assert!(t0.elapsed() < LONG);
    assert_eq!(sem.reclaimed(), 2);
    assert_eq!(sem.held_here(), 2);
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(
        matches!(sem.release(), Err(ReleaseError::TooManyReleases)),
        "never past the bound"
    );
}

/// A `try_acquire` poller recovers a dead holder's permit too (no blocked acquirer needed).
#[test]
fn a_poller_gets_a_killed_holders_permit() {
    let sem = Semaphore::new(1).unwrap();
    let p = start_doomed(&sem, |sem| sem.acquire().unwrap());
    kill_and_reap(&p);
    let t0 = Instant::now();
    while !sem.try_acquire().unwrap() {
        assert!(t0.elapsed() < LONG, "the poller never got the permit");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(sem.reclaimed(), 1);
}

/// A holder that exits normally without releasing counts the same as one killed.
#[test]
fn a_holder_that_exits_without_releasing_gives_its_permit_back() {
    let sem = Semaphore::new(1).unwrap();
    let mut p = Process::new(
        |(sem,): (Semaphore,)| {
            sem.acquire().unwrap();
        },
        (sem.clone(),),
    );
    p.start().unwrap();
    assert_eq!(exit_code(&p), 0);
    assert!(sem.acquire_timeout(LONG).unwrap());
    assert_eq!(sem.reclaimed(), 1);
}

/// The signal pattern: a producer releases (holding nothing), a consumer acquires and dies.
/// Its permits were signals, not loans: nothing comes back.
#[test]
fn a_dead_signal_consumer_returns_nothing() {
    let sem = Semaphore::new(0).unwrap();
    for _ in 0..3 {
        sem.release().unwrap();
    }
    let mut p = Process::new(
        |(sem,): (Semaphore,)| {
            for _ in 0..2 {
                assert!(sem.acquire_timeout(LONG).unwrap());
            }
        },
        (sem.clone(),),
    );
    p.start().unwrap();
    assert_eq!(exit_code(&p), 0);
    assert_eq!(sem.reclaim_dead().unwrap(), 0);
    assert_eq!(sem.get_value(), 1);
}

#[test]
fn named_semaphores_check_the_kind() {
    let name = format!("mproc-test-sem-{}", std::process::id());
    let sem = Semaphore::create_named(&name, 3).unwrap();
    let same = Semaphore::open_named(&name).unwrap();
    assert!(same.try_acquire().unwrap());
    assert_eq!(sem.get_value(), 2);
    let err = BoundedSemaphore::open_named(&name).unwrap_err();
    assert!(matches!(err, OpenError::WrongType { .. }), "{err}");
    Semaphore::unlink_named(&name).unwrap();

    let bname = format!("mproc-test-bsem-{}", std::process::id());
    let b = BoundedSemaphore::create_named(&bname, 1).unwrap();
    let other = BoundedSemaphore::open_named(&bname).unwrap();
    assert!(matches!(
        other.release(),
        Err(ReleaseError::TooManyReleases)
    ));
    assert!(b.try_acquire().unwrap() && !other.try_acquire().unwrap());
    assert!(Semaphore::open_named(&bname).is_err());
    BoundedSemaphore::unlink_named(&bname).unwrap();
}
