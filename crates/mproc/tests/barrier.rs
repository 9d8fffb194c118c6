//! `mproc::sync::Barrier` across real processes: Python's `_TestBarrier` essentials
//! (indexes, action before release, abort, reset, timeout), a party SIGKILLed while waiting
//! (the others are told the barrier is broken, unlike Python, P10), an action that panics,
//! and a spawned party. Every wait is bounded.
#![allow(unsafe_code, clippy::disallowed_types)]

mod common;

use common::{LONG, exit_code};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mproc::sync::{Barrier, BarrierError};
use mproc::{OpenError, Process, StartMethod};

const ROUNDS: u32 = 5;

/// `AtomicU32`s in a `MAP_SHARED` anonymous page, visible to forked children.
#[derive(Clone, Copy)]
struct Words(NonNull<AtomicU32>);

// SAFETY: the page is shared memory accessed only through atomics.
unsafe impl Send for Words {}
// SAFETY: as above.
unsafe impl Sync for Words {}

impl Words {
    fn new() -> Words {
        Words(common::shared_page().cast())
    }

    fn get(&self, i: usize) -> &AtomicU32 {
        assert!(i < 1024);
        // SAFETY: the page holds 1024 zero-initialised words and is never unmapped.
        unsafe { self.0.add(i).as_ref() }
    }
}

#[test]
fn single_party_and_bad_party_counts() {
    let b = Barrier::new(1).unwrap();
    for _ in 0..3 {
        assert_eq!(b.wait().unwrap(), 0);
    }
    assert_eq!((b.parties(), b.n_waiting(), b.is_broken()), (1, 0, false));
    assert!(matches!(
        Barrier::new(0),
        Err(mproc::CreateError::InvalidCapacity {
            what: "barrier parties",
            value: 0,
            ..
        })
    ));
}

/// Python's test_wait_return + test_action: each round, indexes 0..3 each exactly once, and
/// the action has run (once) before anybody is released.
#[test]
fn indexes_and_action_across_processes() {
    let words = Words::new(); // 0: action runs; 1 + round: bitmask of indexes
    let b = Barrier::with_action(3, move || {
        words.get(0).fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let party = move |b: &Barrier| {
        for round in 0..ROUNDS {
            let i = b.wait_timeout(LONG).unwrap();
            assert!(i < 3);
            // The action ran before this party was released.
            assert!(words.get(0).load(Ordering::SeqCst) > round);
            words
                .get(1 + round as usize)
                .fetch_or(1 << i, Ordering::SeqCst);
        }
    };
    let kids: Vec<Process> = (0..2)
        .map(|_| {
            let mut p = Process::new(move |(b,): (Barrier,)| party(&b), (b.clone(),));
            p.start().unwrap();
            p
        })
        .collect();
    party(&b);
    for p in &kids {
        assert_eq!(exit_code(p), 0);
    }
    assert_eq!(words.get(0).load(Ordering::SeqCst), ROUNDS);
    for round in 0..ROUNDS as usize {
        assert_eq!(words.get(1 + round).load(Ordering::SeqCst), 0b111);
    }
}

/// A child party that waits (bounded) and exits 0 exactly when its wait ends `Broken`.
fn party_expecting_broken(b: &Barrier) -> Process {
    let mut p = Process::new(
        |(b,): (Barrier,)| {
            let r = b.wait_timeout(LONG);
            std::process::exit(if matches!(r, Err(BarrierError::Broken)) {
                0
            } else {
                1
            });
        },
        (b.clone(),),
    );
    p.start().unwrap();
    p
}

/// Waits (bounded) until one party is waiting at `b`.
fn until_one_waits(b: &Barrier) {
    let deadline = Instant::now() + LONG;
    while b.n_waiting() != 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn abort_breaks_current_and_later_waiters_until_reset() {
    let b = Barrier::new(2).unwrap();
    let p = party_expecting_broken(&b);
    until_one_waits(&b);
    b.abort();
    assert_eq!(exit_code(&p), 0);
    assert!(b.is_broken());
    assert!(matches!(b.wait_timeout(LONG), Err(BarrierError::Broken)));
    b.reset();
    assert!(!b.is_broken());
    // Usable again.
    let mut p = Process::new(
        |(b,): (Barrier,)| std::process::exit(b.wait_timeout(LONG).map_or(9, |i| i as i32)),
        (b.clone(),),
    );
    p.start().unwrap();
    let mine = b.wait_timeout(LONG).unwrap();
    assert_eq!(mine + exit_code(&p) as u32, 1);
}

#[test]
fn reset_breaks_waiters() {
    let b = Barrier::new(2).unwrap();
    let p = party_expecting_broken(&b);
    until_one_waits(&b);
    b.reset();
    assert_eq!(exit_code(&p), 0);
    assert!(!b.is_broken());
}

#[test]
fn a_timeout_breaks_the_barrier_for_everybody() {
    let b = Barrier::new(3).unwrap();
    let p = party_expecting_broken(&b);
    let t0 = Instant::now();
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(200)),
        Err(BarrierError::Timeout)
    ));
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(exit_code(&p), 0);
    assert!(b.is_broken());
}

#[test]
fn a_party_killed_while_waiting_breaks_the_barrier() {
    let b = Barrier::new(3).unwrap();
    let mut p = Process::new(
        |(b,): (Barrier,)| {
            let _ = b.wait();
            std::thread::sleep(Duration::from_secs(60));
        },
        (b.clone(),),
    );
    p.start().unwrap();
    until_one_waits(&b);
    p.kill().unwrap();
    assert_eq!(exit_code(&p), -9);
    // Python: a ghost waiter, and the survivor blocks for ever. Here: broken, promptly.
    let t0 = Instant::now();
    assert!(matches!(b.wait_timeout(LONG), Err(BarrierError::Broken)));
    let took = t0.elapsed();
    eprintln!("broken {took:?} after the party's death was noticed");
    assert!(took < Duration::from_secs(5));
    assert!(b.is_broken());
}

fn spawned_party((b,): (Barrier,)) {
    let mut last = 0;
    for _ in 0..ROUNDS {
        last = b.wait_timeout(LONG).unwrap();
    }
    std::process::exit(last as i32 + 10);
}
mproc::entry!(spawned_party);

#[test]
fn named_barrier_with_a_spawned_party() {
    let name = format!("mproc-test-barrier-{}", std::process::id());
    let b = Barrier::create_named(&name, 2).unwrap();
    let other = Barrier::open_named(&name).unwrap();
    assert_eq!(other.parties(), 2);
    let mut p = Process::new(spawned_party, (other,)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    for _ in 0..ROUNDS {
        b.wait_timeout(LONG).unwrap();
    }
    assert!((10..12).contains(&exit_code(&p)));
    assert!(matches!(
        mproc::sync::Event::open_named(&name),
        Err(OpenError::WrongType { .. })
    ));
    Barrier::unlink_named(&name).unwrap();
}
