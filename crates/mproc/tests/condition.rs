//! `mproc::sync::Condition` across real processes: Python's `_TestCondition` essentials
//! (notify, notify_all, wait timeouts, wait_for), a waiter SIGKILLed (notify never hangs,
//! unlike Python's, P10) and a holder SIGKILLed (OwnerDied). Every wait is bounded.
#![allow(clippy::disallowed_types)]

mod common;

use common::{
    LONG, SharedWords, exit_code, join_all_ok, kill_and_reap, start_children, start_doomed,
    start_until_ready,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mproc::Process;
use mproc::sync::{AcquireError, Condition};

#[test]
fn python_test_timeout_and_wait_for_timeout() {
    let cond = Condition::new().unwrap();
    let g = cond.acquire().unwrap();
    let (g, notified) = g.wait_timeout(Duration::ZERO).unwrap();
    assert!(!notified);
    let t0 = Instant::now();
    let (g, notified) = g.wait_timeout(Duration::from_millis(100)).unwrap();
    assert!(!notified && t0.elapsed() >= Duration::from_millis(100));
    // wait_for evaluates first, and returns the predicate's last value.
    let (g, ok) = g.wait_for(|| true, Some(Duration::ZERO)).unwrap();
    assert!(ok);
    let t0 = Instant::now();
    let (g, ok) = g
        .wait_for(|| false, Some(Duration::from_millis(100)))
        .unwrap();
    assert!(!ok && t0.elapsed() >= Duration::from_millis(100));
    // The lock is held again after every wait.
    assert!(matches!(cond.try_acquire(), Err(AcquireError::WouldBlock)));
    drop(g);
    drop(cond.try_acquire().unwrap());
}

#[test]
fn notify_wakes_a_waiter_in_another_process() {
    let cond = Condition::new().unwrap();
    let state = SharedWords::new();
    let mut p = Process::new(
        move |(cond,): (Condition,)| {
            let g = cond.acquire().unwrap();
            // Announce we wait (under the lock), then wait for the parent's 2.
            state.get(0).store(1, Ordering::SeqCst);
            g.notify();
            let (g, ok) = g
                .wait_for(|| state.get(0).load(Ordering::SeqCst) == 2, Some(LONG))
                .unwrap();
            // `exit` runs no destructors: release first.
            drop(g);
            std::process::exit(if ok { 0 } else { 1 });
        },
        (cond.clone(),),
    );
    p.start().unwrap();
    let g = cond.acquire().unwrap();
    let (g, ok) = g
        .wait_for(|| state.get(0).load(Ordering::SeqCst) == 1, Some(LONG))
        .unwrap();
    assert!(ok);
    state.get(0).store(2, Ordering::SeqCst);
    g.notify();
    drop(g);
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn notify_all_wakes_every_waiter() {
    let cond = Condition::new().unwrap();
    let state = SharedWords::new(); // low 16 bits: waiters; bit 16: go
    let kids = start_children(3, (cond.clone(),), move |(cond,): (Condition,)| {
        let g = cond.acquire().unwrap();
        state.get(0).fetch_add(1, Ordering::SeqCst);
        let (g, ok) = g
            .wait_for(
                || state.get(0).load(Ordering::SeqCst) & 0x1_0000 != 0,
                Some(LONG),
            )
            .unwrap();
        // `exit` runs no destructors: release first, or the others see
        // OwnerDied (the lock is robust).
        drop(g);
        std::process::exit(if ok { 0 } else { 1 });
    });
    let deadline = Instant::now() + LONG;
    while state.get(0).load(Ordering::SeqCst) != 3 {
        assert!(Instant::now() < deadline, "children never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    let g = cond.acquire().unwrap();
    state.get(0).fetch_or(0x1_0000, Ordering::SeqCst);
    g.notify_all();
    drop(g);
    join_all_ok(&kids);
}

#[test]
fn a_killed_waiter_does_not_hang_notify() {
    let cond = Condition::new().unwrap();
    let p = start_until_ready(&cond, |cond, ready| {
        let g = cond.acquire().unwrap();
        ready.set();
        let _ = g.wait();
        std::thread::sleep(Duration::from_secs(60));
    });
    // Once we get the lock, the child is asleep in `wait` (it released the lock there).
    let g = cond.acquire_timeout(LONG).unwrap();
    drop(g);
    kill_and_reap(&p);
    let t0 = Instant::now();
    let g = cond.acquire_timeout(LONG).unwrap();
    g.notify(); // Python's hangs here for ever
    g.notify_all();
    drop(g);
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_killed_holder_gives_owner_died() {
    let cond = Condition::new().unwrap();
    let p = start_doomed(&cond, |cond| std::mem::forget(cond.acquire().unwrap()));
    kill_and_reap(&p);
    let g = match cond.acquire_timeout(LONG) {
        Err(AcquireError::OwnerDied(g)) => g,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert!(g.is_inconsistent());
    drop(g); // not marked: the poison lasts, for waiters re-taking the lock too
    assert!(cond.is_poisoned());
    let g = match cond.acquire_timeout(LONG) {
        Err(AcquireError::OwnerDied(g)) => g,
        other => panic!("expected the poison to last, got {other:?}"),
    };
    match g.wait_timeout(Duration::from_millis(1)) {
        Err(AcquireError::OwnerDied((mut g, notified))) => {
            assert!(!notified);
            g.mark_consistent();
        }
        other => panic!("a waiter re-takes a poisoned lock: {other:?}"),
    }
    assert!(!cond.is_poisoned());
    drop(cond.acquire_timeout(LONG).unwrap());
}

#[test]
fn named_condition() {
    let name = format!("mproc-test-cond-{}", std::process::id());
    let cond = Condition::create_named(&name).unwrap();
    let same = Condition::open_named(&name).unwrap();
    let g = cond.acquire().unwrap();
    assert!(matches!(same.try_acquire(), Err(AcquireError::WouldBlock)));
    drop(g);
    assert!(mproc::Lock::open_named(&name).is_err());
    Condition::unlink_named(&name).unwrap();
}
