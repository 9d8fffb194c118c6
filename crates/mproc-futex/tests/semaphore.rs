//! Semaphore and BoundedSemaphore: model-based property test, deadlines, threads, processes.
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{BoundedSemaphore, Deadline, ReleaseError, Semaphore, Wait};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    TryAcquire,
    Release(u32),
    AcquireTimeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::TryAcquire),
        (0u32..4).prop_map(Op::Release),
        Just(Op::AcquireTimeout),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A semaphore behaves like a counter (and a bounded one like a counter with a ceiling).
    #[test]
    fn matches_counter_model(init in 0u32..4, ops in proptest::collection::vec(op(), 0..40)) {
        let sem: Semaphore = Semaphore::with_permits(init);
        let bsem: BoundedSemaphore = BoundedSemaphore::with_permits(init);
        let mut model = init;
        for op in ops {
            match op {
                Op::TryAcquire | Op::AcquireTimeout => {
                    let expect = model > 0;
                    let got = if matches!(op, Op::TryAcquire) {
                        (sem.try_acquire(), bsem.try_acquire())
                    } else {
                        let d = Some(Deadline::after(Duration::ZERO));
                        (sem.acquire(Wait::until(d)), bsem.acquire(Wait::until(d)))
                    };
                    prop_assert_eq!(got, (expect, expect));
                    if expect { model -= 1; }
                }
                Op::Release(n) => {
                    prop_assert_eq!(sem.release(n), Ok(()));
                    let b = bsem.release(n);
                    if model + n > init {
                        prop_assert_eq!(b, Err(ReleaseError::TooManyReleases));
                        // keep the two semaphores in step
                        sem.try_acquire_n(n);
                    } else {
                        prop_assert_eq!(b, Ok(()));
                        model += n;
                    }
                }
            }
            prop_assert_eq!(sem.value(), model);
            prop_assert_eq!(bsem.value(), model);
        }
    }
}

trait TryN {
    fn try_acquire_n(&self, n: u32);
}
impl TryN for Semaphore {
    fn try_acquire_n(&self, n: u32) {
        for _ in 0..n {
            assert!(self.try_acquire());
        }
    }
}

#[test]
fn overflow_is_an_error() {
    let s: Semaphore = Semaphore::with_permits(u32::MAX - 1);
    assert_eq!(s.release(2), Err(ReleaseError::Overflow));
    assert_eq!(s.release(1), Ok(()));
}

#[test]
fn deadline_is_respected() {
    let s: Semaphore = Semaphore::default();
    assert!(!with_deadline_kept(40, |w| s.acquire(w)));
}

#[test]
fn threads_never_exceed_permits() {
    const PERMITS: u32 = 2;
    let iters = mproc_testkit::iterations(2_000, 20_000);
    let s: Semaphore = Semaphore::with_permits(PERMITS);
    let inside = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..iters {
                    assert!(s.acquire(Wait::Until(Deadline::after(Duration::from_secs(10)))));
                    assert!(inside.fetch_add(1, Ordering::SeqCst) < PERMITS);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    s.release(1).unwrap();
                }
            });
        }
    });
    assert_eq!(s.value(), PERMITS);
}

#[repr(C)]
struct PingPong {
    sem: Semaphore,
    done: AtomicU64,
}

#[test]
fn processes_hand_permits_over() {
    let _g = FORK_LOCK.lock().unwrap();
    let p: &'static PingPong = shared_zeroed();
    let n = 1_000;
    let child = fork(move || {
        for _ in 0..n {
            if !p
                .sem
                .acquire(Wait::Until(Deadline::after(Duration::from_secs(10))))
            {
                return 3;
            }
            p.done.fetch_add(1, Ordering::SeqCst);
        }
        0
    });
    for _ in 0..n {
        p.sem.release(1).unwrap();
    }
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
    assert_eq!(p.done.load(Ordering::SeqCst), n);
    assert_eq!(p.sem.value(), 0);
}
