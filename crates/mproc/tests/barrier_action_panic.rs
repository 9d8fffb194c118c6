//! `mproc::sync::Barrier`: an action that panics breaks the barrier and the panic continues
//! in the party that ran it. In its own test binary: a panic in one test thread while another
//! test forks could leave the child's copy of std's panic-hook lock held (a fork hazard of
//! multithreaded parents, see the report), so nothing here forks.

use std::time::Duration;

use mproc::sync::{Barrier, BarrierError};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn a_panicking_action_breaks_the_barrier_and_propagates() {
    let b = Barrier::with_action(2, || panic!("action fails")).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait_timeout(LONG));
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.wait_timeout(LONG)));
        let theirs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.join()));
        // Exactly one party (the last to arrive) ran the action and panicked; the other
        // was told the barrier broke.
        let outcomes = [mine.is_err(), matches!(theirs, Ok(Err(_)))];
        assert_eq!(outcomes.iter().filter(|&&x| x).count(), 1, "one panic");
        let broken_one = match (mine, theirs) {
            (Ok(r), _) => r,
            (_, Ok(Ok(r))) => r,
            _ => panic!("no party returned"),
        };
        assert!(matches!(broken_one, Err(BarrierError::Broken)));
    });
    assert!(b.is_broken());
}
