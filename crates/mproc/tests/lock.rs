//! `mproc::Lock` across real processes: Python's `_TestLock` semantics, the seed's example,
//! and a holder SIGKILLed while holding the lock. Every wait is bounded.
#![allow(unsafe_code)]

mod common;

use common::{
    INCREMENTS_PER_CHILD, LONG, join_all_ok, join_ok, kill_and_reap, owner_died, start_children,
    start_doomed,
};
#[path = "../examples/lock.rs"]
mod lock_example;

use std::collections::HashSet;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use mproc::sync::{AcquireError, LockOptions};
use mproc::{Lock, OpenError, Process, Queue};

/// One `u64` in a `MAP_SHARED` anonymous page, visible to forked children.
struct SharedCounter(NonNull<u64>);

// SAFETY: the page is only accessed under the test's `Lock` or after every writer exited.
unsafe impl Send for SharedCounter {}

impl SharedCounter {
    fn new() -> SharedCounter {
        SharedCounter(common::shared_page().cast())
    }

    /// A deliberately non-atomic read-modify-write: only the lock makes it exact.
    fn bump(&self) {
        // SAFETY: the page is mapped for the life of the process and 8-aligned; callers hold
        // the lock, so no other process touches the word meanwhile.
        unsafe {
            let v = self.0.as_ptr().read_volatile();
            std::hint::spin_loop();
            self.0.as_ptr().write_volatile(v + 1);
        }
    }

    fn get(&self) -> u64 {
        // SAFETY: as in `bump`; read after every writer has exited.
        unsafe { self.0.as_ptr().read_volatile() }
    }
}

#[test]
fn acquire_release_and_try_acquire() {
    let lock = Lock::new().unwrap();
    assert!(!lock.is_locked());
    let guard = lock.acquire().unwrap();
    assert!(lock.is_locked());
    // Python: lock.acquire(False) is False while held (here by another thread of ours:
    // a second acquire of the same process still has to wait for the first).
    let other = lock.clone();
    std::thread::spawn(move || {
        assert!(matches!(other.try_acquire(), Err(AcquireError::WouldBlock)))
    })
    .join()
    .unwrap();
    drop(guard);
    assert!(!lock.is_locked());
    let guard = lock.try_acquire().unwrap();
    guard.unlock().unwrap();
}

#[test]
fn try_acquire_fails_while_another_process_holds_it() {
    let lock = Lock::new().unwrap();
    let held = Queue::<u8>::new().unwrap();
    let release = Queue::<u8>::new().unwrap();
    let mut p = Process::new(
        |(lock, held, release): (Lock, Queue<u8>, Queue<u8>)| {
            let _g = lock.acquire().unwrap();
            held.put(1).unwrap();
            release.get_timeout(LONG).unwrap();
        },
        (lock.clone(), held.clone(), release.clone()),
    );
    p.start().unwrap();
    held.get_timeout(LONG).unwrap();
    assert!(matches!(lock.try_acquire(), Err(AcquireError::WouldBlock)));
    // Python: acquire(timeout=0.2) returns False no sooner than 0.2 s.
    let start = Instant::now();
    assert!(matches!(
        lock.acquire_timeout(Duration::from_millis(200)),
        Err(AcquireError::Timeout)
    ));
    assert!(start.elapsed() >= Duration::from_millis(200));
    release.put(1).unwrap();
    let g = lock.acquire_timeout(LONG).unwrap();
    drop(g);
    join_ok(&p);
}

#[test]
fn processes_increment_a_shared_counter_exactly() {
    let lock = Lock::new().unwrap();
    let counter = SharedCounter::new();
    let counter_addr = counter.0.as_ptr() as usize;
    let children = start_children(4, (lock.clone(),), move |(lock,): (Lock,)| {
        let counter = SharedCounter(NonNull::new(counter_addr as *mut u64).unwrap());
        for _ in 0..INCREMENTS_PER_CHILD {
            let _g = lock.acquire().unwrap();
            counter.bump();
        }
    });
    join_all_ok(&children);
    assert_eq!(counter.get(), 4 * INCREMENTS_PER_CHILD);
}

#[test]
fn holder_killed_while_holding_hands_over_with_owner_died() {
    let lock = Lock::new().unwrap();
    let p = start_doomed(&lock, |lock| std::mem::forget(lock.acquire().unwrap()));
    assert!(lock.is_locked());
    kill_and_reap(&p);

    let start = Instant::now();
    let mut guard = owner_died(lock.acquire_timeout(LONG));
    eprintln!("takeover after SIGKILL: {:?}", start.elapsed());
    assert!(guard.is_inconsistent());
    guard.mark_consistent();
    drop(guard);
    // Marked consistent: the next acquisition is clean.
    lock.acquire_timeout(LONG).unwrap().unlock().unwrap();
}

/// A holder SIGKILLed while holding `lock`, which is then reported (the child is reaped).
fn kill_while_holding(lock: &Lock) {
    let p = start_doomed(lock, |lock| std::mem::forget(lock.acquire().unwrap()));
    kill_and_reap(&p);
}

/// std's poisoning, across processes: a SIGKILLed holder poisons the lock; the guard of the
/// `OwnerDied` acquisition dropped without `mark_consistent` leaves it poisoned — every later
/// acquire (here also one in another process) still reports `OwnerDied` with the guard —
/// until `clear_poison`.
#[test]
fn unmarked_owner_died_guard_leaves_the_lock_poisoned_until_cleared() {
    let lock = Lock::new().unwrap();
    assert!(!lock.is_strict());
    kill_while_holding(&lock);
    let guard = owner_died(lock.acquire_timeout(LONG));
    assert!(guard.is_inconsistent());
    drop(guard); // released without repair
    assert!(lock.is_poisoned() && !lock.is_locked());
    for _ in 0..2 {
        match lock.acquire_timeout(LONG) {
            Err(AcquireError::OwnerDied(guard)) => drop(guard),
            other => panic!("the poison must last, got {other:?}"),
        }
    }
    match lock.try_acquire() {
        Err(e) => assert!(e.is_owner_died(), "{e:?}"),
        Ok(_) => panic!("try_acquire must report the poison too"),
    }
    let mut p = Process::new(
        |(lock,): (Lock,)| match lock.acquire_timeout(LONG) {
            Err(AcquireError::OwnerDied(_)) => {}
            other => panic!("the child must see the poison, got {other:?}"),
        },
        (lock.clone(),),
    );
    p.start().unwrap();
    join_ok(&p);
    lock.clear_poison();
    assert!(!lock.is_poisoned());
    lock.acquire_timeout(LONG)
        .expect("healed")
        .unlock()
        .unwrap();
}

/// Strict recovery (POSIX's): the same unmarked drop makes the lock not recoverable, for
/// good; `clear_poison` cannot undo it.
#[test]
fn strict_lock_not_marked_consistent_is_not_recoverable() {
    let lock = Lock::with_options(LockOptions::new().strict_recovery(true)).unwrap();
    assert!(lock.is_strict());
    lock.acquire().unwrap().unlock().unwrap();
    kill_while_holding(&lock);
    let guard = owner_died(lock.acquire_timeout(LONG));
    drop(guard); // released without repair
    for _ in 0..2 {
        assert!(matches!(
            lock.acquire_timeout(Duration::from_millis(100)),
            Err(AcquireError::NotRecoverable)
        ));
        lock.clear_poison();
    }
    // Marked in time, a strict lock goes on normally.
    let lock = Lock::with_options(LockOptions::new().strict_recovery(true)).unwrap();
    kill_while_holding(&lock);
    let mut guard = owner_died(lock.acquire_timeout(LONG));
    guard.mark_consistent();
    drop(guard);
    lock.acquire_timeout(LONG).unwrap().unlock().unwrap();
}

#[test]
fn named_lock_opens_by_name_and_checks_the_kind() {
    let name = format!("mproc-test-lock-{}", std::process::id());
    let lock = Lock::create_named(&name).unwrap();
    let same = Lock::open_named(&name).unwrap();
    let g = lock.acquire().unwrap();
    assert!(same.is_locked());
    drop(g);
    assert!(!same.is_locked());
    // A queue's name is not a lock.
    let qname = format!("mproc-test-lock-q-{}", std::process::id());
    let _q = Queue::<u8>::builder().create_named(&qname).unwrap();
    let err = Lock::open_named(&qname).unwrap_err();
    assert!(err.to_string().contains("another kind"), "{err}");
    // Nor does a lock's unlink remove it (the queue's own unlink below still finds it).
    assert!(matches!(
        Lock::unlink_named(&qname),
        Err(OpenError::WrongType { .. })
    ));
    Lock::unlink_named(&name).unwrap();
    Queue::<u8>::unlink_named(&qname).unwrap();
    assert!(Lock::open_named(&name).is_err());
}

#[test]
fn example_lock_writes_every_line_whole() {
    let path = std::env::temp_dir().join(format!("mproc-lock-test-{}.txt", std::process::id()));
    let lines = lock_example::run(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        lines.len() as u32,
        lock_example::WORKERS * lock_example::LINES
    );
    let mut seen = HashSet::new();
    for line in &lines {
        let words: Vec<&str> = line.split(' ').collect();
        assert!(
            matches!(words.as_slice(), ["worker", _, "line", _, "is", "whole"]),
            "torn line: {line:?}"
        );
        assert!(seen.insert(line.clone()), "duplicate line {line:?}");
    }
}
