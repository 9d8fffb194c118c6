//! Barrier: generations, indices, abort/reset, deadline breaks it, across processes.
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{Barrier, BarrierWaitError, Deadline};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn soon() -> Option<Deadline> {
    Some(Deadline::after(Duration::from_secs(10)))
}

#[test]
fn threads_generations_and_indices() {
    const PARTIES: u32 = 3;
    let b: Barrier = Barrier::with_parties(PARTIES);
    let seen = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..PARTIES {
            s.spawn(|| {
                for round in 0..200u32 {
                    let i = b.wait(soon()).unwrap();
                    assert!(i < PARTIES);
                    seen.fetch_or(1 << i, Ordering::SeqCst);
                    // Second barrier: everybody has recorded before anybody checks/clears.
                    let j = b.wait(soon()).unwrap();
                    if j == 0 {
                        assert_eq!(seen.swap(0, Ordering::SeqCst), 0b111, "round {round}");
                    }
                    b.wait(soon()).unwrap();
                }
            });
        }
    });
    assert_eq!(b.n_waiting(), 0);
}

#[test]
fn timeout_breaks_barrier_until_reset() {
    let b: Barrier = Barrier::with_parties(2);
    let t = Instant::now();
    assert_eq!(
        b.wait(Some(Deadline::after(Duration::from_millis(30)))),
        Err(BarrierWaitError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(b.is_broken());
    assert_eq!(b.wait(soon()), Err(BarrierWaitError::Broken));
    b.reset();
    assert!(!b.is_broken());
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait(soon()));
        assert!(b.wait(soon()).is_ok());
        assert!(t.join().unwrap().is_ok());
    });
}

#[test]
fn abort_and_reset_release_waiters_as_broken() {
    for abort in [true, false] {
        let b: Barrier = Barrier::with_parties(3);
        std::thread::scope(|s| {
            let ts: Vec<_> = (0..2).map(|_| s.spawn(|| b.wait(soon()))).collect();
            let t0 = Instant::now();
            while b.n_waiting() < 2 {
                assert!(t0.elapsed() < Duration::from_secs(10));
                std::thread::yield_now();
            }
            if abort {
                b.abort()
            } else {
                b.reset()
            }
            for t in ts {
                assert_eq!(t.join().unwrap(), Err(BarrierWaitError::Broken));
            }
        });
        assert_eq!(b.is_broken(), abort);
    }
}

#[test]
fn zeroed_is_uninitialised() {
    let b: &Barrier = shared_zeroed();
    assert_eq!(b.wait(None), Err(BarrierWaitError::Uninitialised));
    b.init(1);
    assert_eq!(b.wait(None), Ok(0));
}

#[test]
fn processes_pass_together() {
    let _g = FORK_LOCK.lock().unwrap();
    let b: &'static Barrier = shared_zeroed();
    b.init(3);
    let pids: Vec<_> = (0..2)
        .map(|_| {
            fork(move || {
                for _ in 0..100 {
                    if b.wait(soon()).is_err() {
                        return 6;
                    }
                }
                0
            })
        })
        .collect();
    for _ in 0..100 {
        b.wait(soon()).unwrap();
    }
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), End::Code(0));
    }
}
