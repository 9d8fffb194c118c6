//! Barrier: generations, indices, abort/reset, deadline breaks it, across processes; the
//! action; the registry (every registered party watched, a death between waits breaks it,
//! a death before the first wait only the timeout catches, a full registry breaks it).
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_*.rs

mod common;

use common::*;
use mproc_futex::{
    AlwaysAlive, BARRIER_CHECK_INTERVAL, Barrier, BarrierWaitError, Caller, Deadline, Liveness,
    Wait,
};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn soon() -> Wait {
    Wait::Until(Deadline::after(Duration::from_secs(10)))
}

/// Party `id` of one process, everybody alive.
fn party(id: u32) -> Caller<'static> {
    Caller {
        id,
        liveness: &AlwaysAlive,
    }
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
                    let i = b.wait(party(1), soon(), None).unwrap();
                    assert!(i < PARTIES);
                    seen.fetch_or(1 << i, Ordering::SeqCst);
                    // Second barrier: everybody has recorded before anybody checks/clears.
                    let j = b.wait(party(1), soon(), None).unwrap();
                    if j == 0 {
                        assert_eq!(seen.swap(0, Ordering::SeqCst), 0b111, "round {round}");
                    }
                    b.wait(party(1), soon(), None).unwrap();
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
        b.wait(
            party(1),
            Wait::Until(Deadline::after(Duration::from_millis(30))),
            None
        ),
        Err(BarrierWaitError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(b.is_broken());
    assert_eq!(
        b.wait(party(1), soon(), None),
        Err(BarrierWaitError::Broken)
    );
    b.reset();
    assert!(!b.is_broken());
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait(party(1), soon(), None));
        assert!(b.wait(party(1), soon(), None).is_ok());
        assert!(t.join().unwrap().is_ok());
    });
}

#[test]
fn abort_and_reset_release_waiters_as_broken() {
    for abort in [true, false] {
        let b: Barrier = Barrier::with_parties(3);
        std::thread::scope(|s| {
            let ts: Vec<_> = (0..2)
                .map(|_| s.spawn(|| b.wait(party(1), soon(), None)))
                .collect();
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
    assert_eq!(
        b.wait(party(1), Wait::Forever, None),
        Err(BarrierWaitError::Uninitialised)
    );
    b.init(1);
    assert_eq!(b.wait(party(1), Wait::Forever, None), Ok(0));
}

#[test]
fn processes_pass_together() {
    let _g = FORK_LOCK.lock().unwrap();
    let b: &'static Barrier = shared_zeroed();
    b.init(3);
    let pids: Vec<_> = (0..2)
        .map(|k| {
            fork(move || {
                let me = party(2 + k);
                for _ in 0..100 {
                    if b.wait(me, soon(), None).is_err() {
                        return 6;
                    }
                }
                0
            })
        })
        .collect();
    for _ in 0..100 {
        b.wait(party(1), soon(), None).unwrap();
    }
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), End::Code(0));
    }
}

/// A liveness that reports the ids set in a bitmask dead.
#[derive(Default)]
struct Deaths(AtomicU64);

impl Deaths {
    fn kill(&self, id: u32) {
        self.0.fetch_or(1 << id, Ordering::SeqCst);
    }
}

impl Liveness for Deaths {
    fn is_alive(&self, id: u32) -> bool {
        id >= 64 || self.0.load(Ordering::SeqCst) & (1 << id) == 0
    }
}

/// `parties` threads with ids `1..=parties` pass one generation; then the party that arrived
/// last (the highest index: long unwatched in the facade's old barrier) dies between waits,
/// and every other party's next wait ends `Broken` (not `Timeout`), within one check
/// interval of sleeping rather than at its 10 s deadline.
fn death_between_waits_breaks_it(parties: u32) {
    let deaths = Deaths::default();
    let b: Barrier = Barrier::with_parties(parties);
    let last = AtomicU32::new(0);
    let who = |id| Caller {
        id,
        liveness: &deaths,
    };
    std::thread::scope(|s| {
        for id in 1..=parties {
            let (b, last, who) = (&b, &last, &who);
            s.spawn(move || {
                if b.wait(who(id), soon(), None).unwrap() == parties - 1 {
                    last.store(id, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(b.registered(), parties);
    let dead = last.load(Ordering::SeqCst);
    assert_ne!(dead, 0);
    deaths.kill(dead);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let waits: Vec<_> = (1..=parties)
            .filter(|&id| id != dead)
            .map(|id| {
                let (b, who) = (&b, &who);
                s.spawn(move || b.wait(who(id), soon(), None))
            })
            .collect();
        for w in waits {
            assert_eq!(w.join().unwrap(), Err(BarrierWaitError::Broken));
        }
    });
    eprintln!(
        "{parties} parties: broken {:?} after the death (check interval {BARRIER_CHECK_INTERVAL:?})",
        t0.elapsed()
    );
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0, "a broken barrier has nobody waiting");
}

#[test]
fn a_party_dying_between_waits_breaks_the_barrier() {
    death_between_waits_breaks_it(3);
}

#[test]
fn thirty_two_parties_are_all_watched() {
    death_between_waits_breaks_it(32);
}

#[test]
fn a_party_dying_before_its_first_wait_is_caught_only_by_the_timeout() {
    let deaths = Deaths::default();
    deaths.kill(2); // party 2 never arrives: it is not registered, so nobody watches it
    let b: Barrier = Barrier::with_parties(2);
    let me = Caller {
        id: 1,
        liveness: &deaths,
    };
    let short = Wait::Until(Deadline::after(BARRIER_CHECK_INTERVAL * 3));
    assert_eq!(b.wait(me, short, None), Err(BarrierWaitError::Timeout));
    assert!(b.is_broken());
}

#[test]
fn threads_of_one_participant_register_with_multiplicity() {
    let b: Barrier = Barrier::with_parties(3);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| b.wait(party(7), soon(), None).unwrap());
        }
    });
    assert_eq!(b.registered(), 3);
    // Later generations register nobody; reset empties the registry.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| b.wait(party(7), soon(), None).unwrap());
        }
    });
    assert_eq!(b.registered(), 3);
    b.reset();
    assert_eq!(b.registered(), 0);
}

#[test]
fn a_full_registry_breaks_the_barrier() {
    let b: Barrier<mproc_futex::Futex, 1> = Barrier::with_parties_for_waiter(2);
    std::thread::scope(|s| {
        let first = s.spawn(|| b.wait(party(1), soon(), None));
        let t0 = Instant::now();
        while b.n_waiting() == 0 {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::yield_now();
        }
        assert_eq!(
            b.wait(party(2), soon(), None),
            Err(BarrierWaitError::RegistryFull)
        );
        assert_eq!(first.join().unwrap(), Err(BarrierWaitError::Broken));
    });
    assert!(b.is_broken());
}

/// Python's test_action: the action runs exactly once per generation, in the last party,
/// before anybody is released.
#[test]
fn the_action_runs_once_before_the_release() {
    const PARTIES: u32 = 4;
    let b: Barrier = Barrier::with_parties(PARTIES);
    let runs = AtomicU32::new(0);
    let action = || {
        runs.fetch_add(1, Ordering::SeqCst);
    };
    std::thread::scope(|s| {
        for id in 1..=PARTIES {
            let (b, runs, action) = (&b, &runs, &action);
            s.spawn(move || {
                for round in 0..50 {
                    let i = b.wait(party(id), soon(), Some(action)).unwrap();
                    assert!(
                        runs.load(Ordering::SeqCst) > round,
                        "released before the action"
                    );
                    let _ = i;
                }
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 50);
}

#[test]
fn a_panicking_action_breaks_the_barrier() {
    let b: Barrier = Barrier::with_parties(1);
    let panicky = || panic!("action fails");
    let r = std::panic::catch_unwind(|| b.wait(party(1), soon(), Some(&panicky)));
    assert!(
        r.is_err(),
        "the panic continues in the party that ran the action"
    );
    assert!(b.is_broken());
    assert_eq!(
        b.wait(party(1), soon(), None),
        Err(BarrierWaitError::Broken)
    );
}

#[test]
fn wait_never_breaks_at_once_unless_it_is_the_last() {
    let b: Barrier = Barrier::with_parties(2);
    assert_eq!(
        b.wait(party(1), Wait::Never, None),
        Err(BarrierWaitError::Timeout)
    );
    assert!(b.is_broken());
    let one: Barrier = Barrier::with_parties(1);
    assert_eq!(one.wait(party(1), Wait::Never, None), Ok(0));
}
