//! `mproc::sync::Event` across real processes: Python's `_TestEvent.test_event` essentials,
//! waiters in several processes, and a waiter SIGKILLed (set never hangs, unlike Python's,
//! P10). Every wait is bounded.

mod common;

use common::{LONG, exit_code, join_all_ok, kill_and_reap, start_children, start_until_ready};
use std::time::{Duration, Instant};

use mproc::sync::Event;
use mproc::{OpenError, Process, StartMethod};

#[test]
fn python_test_event() {
    let ev = Event::new().unwrap();
    assert!(!ev.is_set());
    assert!(!ev.wait_timeout(Duration::ZERO));
    let t0 = Instant::now();
    assert!(!ev.wait_timeout(Duration::from_millis(100)));
    assert!(t0.elapsed() >= Duration::from_millis(100), "never early");
    ev.set();
    assert!(ev.is_set());
    assert!(ev.wait_timeout(Duration::ZERO));
    ev.wait();
    ev.clear();
    assert!(!ev.is_set() && !ev.wait_timeout(Duration::ZERO));
    assert_eq!(format!("{ev:?}"), "<Event unset>");
}

#[test]
fn set_wakes_waiters_in_every_process() {
    let ev = Event::new().unwrap();
    let kids = start_children(3, (ev.clone(),), |(ev,): (Event,)| {
        std::process::exit(if ev.wait_timeout(LONG) { 0 } else { 1 })
    });
    std::thread::sleep(Duration::from_millis(50));
    ev.set();
    join_all_ok(&kids);
}

#[test]
fn a_killed_waiter_does_not_hang_set() {
    let ev = Event::new().unwrap();
    let doomed = start_until_ready(&ev, |ev, ready| {
        ready.set();
        ev.wait();
    });
    std::thread::sleep(Duration::from_millis(20)); // let it sleep on the event
    kill_and_reap(&doomed);
    let mut survivor = Process::new(
        |(ev,): (Event,)| std::process::exit(if ev.wait_timeout(LONG) { 0 } else { 1 }),
        (ev.clone(),),
    );
    survivor.start().unwrap();
    let t0 = Instant::now();
    ev.set(); // Python's hangs here for ever
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(exit_code(&survivor), 0);
}

fn spawned_wait((ev,): (Event,)) {
    std::process::exit(if ev.wait_timeout(LONG) { 0 } else { 1 });
}
mproc::entry!(spawned_wait);

#[test]
fn named_and_spawned() {
    let name = format!("mproc-test-event-{}", std::process::id());
    let ev = Event::create_named(&name).unwrap();
    let other = Event::open_named(&name).unwrap();
    let mut p = Process::new(spawned_wait, (other,)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    ev.set();
    assert_eq!(exit_code(&p), 0);
    assert!(matches!(
        mproc::sync::Semaphore::open_named(&name),
        Err(OpenError::WrongType { .. })
    ));
    Event::unlink_named(&name).unwrap();
}
