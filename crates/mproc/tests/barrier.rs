//! `mproc::sync::Barrier` across real processes: Python's `_TestBarrier` essentials
//! (indexes, action before release, abort, reset, timeout), a party SIGKILLed while waiting
//! or between two waits (the others are told the barrier is broken, unlike Python, P10),
//! 32 parties all watched (the last arrival's death is seen too), and a spawned party.
//! Every wait is bounded.
#![allow(clippy::disallowed_types)]

mod common;

use common::{LONG, SharedWords, exit_code, join_all_ok, kill_and_reap, start_children};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mproc::sync::{Barrier, BarrierError};
use mproc::{OpenError, Process, StartMethod};

const ROUNDS: u32 = 5;

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
    let words = SharedWords::new(); // 0: action runs; 1 + round: bitmask of indexes
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
    let kids = start_children(2, (b.clone(),), move |(b,): (Barrier,)| party(&b));
    party(&b);
    join_all_ok(&kids);
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
    mproc_testkit::wait_until(LONG, || b.n_waiting() == 1);
}

/// A barrier of two with a child party waiting at it, broken by `breaker`: the child must see
/// `Broken`.
fn break_a_waiting_party(breaker: impl FnOnce(&Barrier)) -> Barrier {
    let b = Barrier::new(2).unwrap();
    let p = party_expecting_broken(&b);
    until_one_waits(&b);
    breaker(&b);
    assert_eq!(exit_code(&p), 0);
    b
}

#[test]
fn abort_breaks_current_and_later_waiters_until_reset() {
    let b = break_a_waiting_party(Barrier::abort);
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
    let b = break_a_waiting_party(Barrier::reset);
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
    kill_and_reap(&p);
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

/// A child that waits once at `b`, then sleeps between waits (until killed).
fn party_that_passes_once_then_sleeps(b: &Barrier) -> Process {
    let mut p = Process::new(
        |(b,): (Barrier,)| {
            if b.wait_timeout(LONG).is_err() {
                std::process::exit(3);
            }
            std::thread::sleep(Duration::from_secs(60));
        },
        (b.clone(),),
    );
    p.start().unwrap();
    p
}

#[test]
fn a_party_killed_between_waits_breaks_the_barrier() {
    let b = Barrier::new(2).unwrap();
    let p = party_that_passes_once_then_sleeps(&b);
    b.wait_timeout(LONG).unwrap();
    kill_and_reap(&p);
    // The dead party registered at its first wait, so the survivor's next wait is broken
    // (not timed out) within a check interval or so of the death.
    let t0 = Instant::now();
    assert!(matches!(b.wait_timeout(LONG), Err(BarrierError::Broken)));
    eprintln!("broken {:?} into the wait after the death", t0.elapsed());
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    // Reset forgets the dead party: a new one can take its place.
    b.reset();
    let mut q = Process::new(
        |(b,): (Barrier,)| std::process::exit(b.wait_timeout(LONG).map_or(9, |_| 0)),
        (b.clone(),),
    );
    q.start().unwrap();
    b.wait_timeout(LONG).unwrap();
    assert_eq!(exit_code(&q), 0);
}

/// 32 parties: 31 threads of this process and a child that arrives last (index 31: the old
/// barrier watched indexes below 28 only). The child is killed between waits; the 31
/// threads' next wait ends `Broken`.
#[test]
fn thirty_two_parties_are_all_watched() {
    const THREADS: u32 = 31;
    let words = SharedWords::new(); // 0: go signal for the child
    let b = Barrier::new(THREADS + 1).unwrap();
    let mut child = Process::new(
        move |(b,): (Barrier,)| {
            let deadline = Instant::now() + LONG;
            while words.get(0).load(Ordering::SeqCst) == 0 {
                if Instant::now() > deadline {
                    std::process::exit(4);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let i = b.wait_timeout(LONG);
            std::process::exit(if i.ok() == Some(THREADS) { 0 } else { 5 });
        },
        (b.clone(),),
    );
    child.start().unwrap();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| b.wait_timeout(LONG)))
            .collect();
        let deadline = Instant::now() + LONG;
        while b.n_waiting() != THREADS {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        words.get(0).store(1, Ordering::SeqCst);
        for t in threads {
            assert!(t.join().unwrap().unwrap() < THREADS);
        }
    });
    // The child exits after its wait returned index 31: a party gone between waits.
    assert_eq!(exit_code(&child), 0);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| b.wait_timeout(LONG)))
            .collect();
        for t in threads {
            assert!(matches!(t.join().unwrap(), Err(BarrierError::Broken)));
        }
    });
    assert!(b.is_broken());
}
