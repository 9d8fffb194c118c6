//! futex::wait / wake and Deadline: value check, deadlines, cross-process wake.
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{Deadline, futex};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[test]
fn returns_at_once_when_value_differs() {
    let w = AtomicU32::new(1);
    assert!(futex::wait(&w, 0, None));
    assert_eq!(futex::wake_all(&w), 0);
}

#[test]
fn deadline_never_early_never_absurdly_late() {
    let w = AtomicU32::new(0);
    for ms in [0u64, 1, 15, 50] {
        let d = Deadline::after(Duration::from_millis(ms));
        let t = Instant::now();
        assert!(!futex::wait(&w, 0, Some(d)));
        let e = t.elapsed();
        assert!(d.has_passed());
        assert!(e >= Duration::from_millis(ms), "{e:?} < {ms} ms");
        assert!(
            e < Duration::from_millis(ms) + Duration::from_secs(2),
            "{e:?}"
        );
    }
    let past = Deadline::now();
    assert!(!futex::wait(&w, 0, Some(past)));
    assert_eq!(past.remaining(), Duration::ZERO);
    assert!(Deadline::after(Duration::MAX) > Deadline::after(Duration::from_secs(1)));
}

#[test]
fn wakes_a_sleeper_in_another_process() {
    let _g = FORK_LOCK.lock().unwrap();
    let w: &'static AtomicU32 = shared_zeroed();
    let child = fork(move || {
        let d = Some(Deadline::after(Duration::from_secs(10)));
        while w.load(Ordering::Acquire) == 0 {
            if !futex::wait(w, 0, d) {
                return 7;
            }
        }
        0
    });
    std::thread::sleep(Duration::from_millis(20));
    w.store(1, Ordering::Release);
    futex::wake_all(w);
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
}
