//! Condvar with RawLock: producer/consumer, notify_all, deadlines, across processes.
#![allow(unsafe_code, clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{AlwaysAlive, Condvar, Deadline, RawLock, Wait};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[repr(C)]
struct Queue {
    lock: RawLock,
    not_empty: Condvar,
    items: UnsafeCell<u64>,
}
// SAFETY: `items` only touched under `lock`.
unsafe impl Sync for Queue {}

fn consume(q: &Queue, me: u32, n: u64) -> bool {
    for _ in 0..n {
        let mut g = q.lock.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
        // SAFETY: lock held.
        while unsafe { *q.items.get() } == 0 {
            let (g2, res) = q
                .not_empty
                .wait(g, Wait::Until(Deadline::after(Duration::from_secs(10))))
                .unwrap();
            if res.timed_out() {
                return false;
            }
            g = g2;
        }
        // SAFETY: lock held.
        unsafe { *q.items.get() -= 1 };
        drop(g);
    }
    true
}

fn produce(q: &Queue, me: u32, n: u64) {
    for _ in 0..n {
        let g = q.lock.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
        // SAFETY: lock held.
        unsafe { *q.items.get() += 1 };
        q.not_empty.notify_one();
        drop(g);
    }
}

#[test]
fn threads_producer_consumer() {
    let q = Queue {
        lock: RawLock::new(),
        not_empty: Condvar::new(),
        items: UnsafeCell::new(0),
    };
    std::thread::scope(|s| {
        let c = s.spawn(|| consume(&q, 2, 5_000));
        produce(&q, 1, 5_000);
        assert!(c.join().unwrap());
    });
}

#[test]
fn processes_producer_consumer() {
    let _g = FORK_LOCK.lock().unwrap();
    let q: &'static Queue = shared_zeroed();
    let child = fork(move || if consume(q, 2, 2_000) { 0 } else { 5 });
    produce(q, 1, 2_000);
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
}

#[test]
fn notify_all_wakes_everybody() {
    let lock: RawLock = RawLock::new();
    let cv: Condvar = Condvar::new();
    let go = AtomicU32::new(0);
    std::thread::scope(|s| {
        let ts: Vec<_> = (1..=3u32)
            .map(|me| {
                let (lock, cv, go) = (&lock, &cv, &go);
                s.spawn(move || {
                    let mut g = lock.lock(me, &AlwaysAlive, Wait::Forever).unwrap();
                    let deadline = Some(Deadline::after(Duration::from_secs(10)));
                    while go.load(Ordering::Relaxed) == 0 {
                        let (g2, res) = cv.wait(g, Wait::until(deadline)).unwrap();
                        assert!(!res.timed_out());
                        g = g2;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        let g = lock.lock(9, &AlwaysAlive, Wait::Forever).unwrap();
        go.store(1, Ordering::Relaxed);
        cv.notify_all();
        drop(g);
        for t in ts {
            t.join().unwrap();
        }
    });
}

#[test]
fn wait_deadline() {
    let lock: RawLock = RawLock::new();
    let cv: Condvar = Condvar::new();
    let g = lock.lock(1, &AlwaysAlive, Wait::Forever).unwrap();
    let (g, res) = with_deadline_kept(30, |w| cv.wait(g, w)).unwrap();
    assert!(res.timed_out());
    assert_eq!(lock.owner(), Some(1));
    drop(g);
}
