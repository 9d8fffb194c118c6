//! Event: set/clear/wait, deadlines, set+clear releases current waiters, across processes.
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{Deadline, Event, Wait};
use std::time::Duration;

#[test]
fn smoke_and_deadline() {
    let e: Event = Event::new();
    assert!(!with_deadline_kept(30, |w| e.wait(w)));
    e.set();
    e.set();
    assert!(e.is_set());
    assert!(e.wait(Wait::Until(Deadline::now())));
    e.clear();
    assert!(!e.wait(Wait::Until(Deadline::now())));
}

#[test]
fn set_then_clear_still_releases_sleepers() {
    let e: Event = Event::new();
    std::thread::scope(|s| {
        let ts: Vec<_> = (0..3)
            .map(|_| s.spawn(|| e.wait(Wait::Until(Deadline::after(Duration::from_secs(10))))))
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        e.set();
        e.clear();
        for t in ts {
            assert!(t.join().unwrap());
        }
    });
}

#[test]
fn wakes_other_process() {
    let _g = FORK_LOCK.lock().unwrap();
    let e: &'static Event = shared_zeroed();
    let child = fork(move || {
        if e.wait(Wait::Until(Deadline::after(Duration::from_secs(10)))) {
            0
        } else {
            4
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    e.set();
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
}
