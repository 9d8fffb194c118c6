//! `mproc::sync::{Semaphore, BoundedSemaphore}` across real processes: Python's
//! `_TestSemaphore` essentials, at most N holders at once, a holder SIGKILLed (its permit is
//! not returned), named open with the kind checked. Every wait is bounded.
#![allow(unsafe_code, clippy::disallowed_types)]

mod common;

use common::{LONG, exit_code};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mproc::sync::{BoundedSemaphore, Event, ReleaseError, Semaphore};
use mproc::{OpenError, Process};

/// Two `AtomicU32`s in a `MAP_SHARED` anonymous page, visible to forked children.
#[derive(Clone, Copy)]
struct Words(NonNull<AtomicU32>);

// SAFETY: the page is shared memory accessed only through atomics.
unsafe impl Send for Words {}

impl Words {
    fn new() -> Words {
        Words(common::shared_page().cast())
    }

    fn get(&self, i: usize) -> &AtomicU32 {
        // SAFETY: the page holds 1024 zero-initialised words and is never unmapped.
        unsafe { self.0.add(i).as_ref() }
    }
}

#[test]
fn python_test_semaphore() {
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(sem.get_value(), 2);
    sem.acquire();
    assert_eq!(sem.get_value(), 1);
    assert!(sem.try_acquire());
    assert_eq!(sem.get_value(), 0);
    assert!(!sem.try_acquire());
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
    assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
    sem.acquire();
    sem.acquire();
    assert!(!sem.try_acquire());
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
    assert_eq!((sem.get_value(), sem.bound()), (2, 2));
}

#[test]
fn python_test_timeout() {
    let sem = Semaphore::new(0).unwrap();
    let t0 = Instant::now();
    assert!(!sem.acquire_timeout(Duration::ZERO));
    assert!(!sem.acquire_timeout(Duration::from_millis(100)));
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
        assert!(sem.acquire_timeout(LONG));
    }
    assert_eq!(exit_code(&p), 0);
    assert_eq!(sem.get_value(), 0);
}

#[test]
fn at_most_n_holders_across_processes() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let words = Words::new(); // 0: holders now, 1: most holders seen
    let kids: Vec<Process> = (0..4)
        .map(|_| {
            let mut p = Process::new(
                move |(sem,): (BoundedSemaphore,)| {
                    for _ in 0..5 {
                        assert!(sem.acquire_timeout(LONG));
                        let now = words.get(0).fetch_add(1, Ordering::SeqCst) + 1;
                        words.get(1).fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        words.get(0).fetch_sub(1, Ordering::SeqCst);
                        sem.release().unwrap();
                    }
                },
                (sem.clone(),),
            );
            p.start().unwrap();
            p
        })
        .collect();
    for p in &kids {
        assert_eq!(exit_code(p), 0);
    }
    let most = words.get(1).load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} holders at once");
    assert_eq!(sem.get_value(), 2);
}

#[test]
fn a_killed_holder_keeps_its_permit() {
    let sem = Semaphore::new(2).unwrap();
    let held = Event::new().unwrap();
    let mut p = Process::new(
        |(sem, held): (Semaphore, Event)| {
            sem.acquire();
            held.set();
            std::thread::sleep(Duration::from_secs(60));
        },
        (sem.clone(), held.clone()),
    );
    p.start().unwrap();
    assert!(held.wait_timeout(LONG));
    p.kill().unwrap();
    assert_eq!(exit_code(&p), -9);
    // Documented: a semaphore does not know its holders; the dead one's permit is gone.
    assert_eq!(sem.get_value(), 1);
    assert!(sem.try_acquire());
    assert!(!sem.acquire_timeout(Duration::from_millis(50)));
}

#[test]
fn named_semaphores_check_the_kind() {
    let name = format!("mproc-test-sem-{}", std::process::id());
    let sem = Semaphore::create_named(&name, 3).unwrap();
    let same = Semaphore::open_named(&name).unwrap();
    assert!(same.try_acquire());
    assert_eq!(sem.get_value(), 2);
    let err = BoundedSemaphore::open_named(&name).unwrap_err();
    assert!(matches!(err, OpenError::WrongType { .. }), "{err}");
    Semaphore::unlink_named(&name).unwrap();

    let bname = format!("mproc-test-bsem-{}", std::process::id());
    let b = BoundedSemaphore::create_named(&bname, 1).unwrap();
    let other = BoundedSemaphore::open_named(&bname).unwrap();
    assert_eq!(other.release(), Err(ReleaseError::TooManyReleases));
    assert!(b.try_acquire() && !other.try_acquire());
    assert!(Semaphore::open_named(&bname).is_err());
    BoundedSemaphore::unlink_named(&bname).unwrap();
}
