//! Loom's stand-in for the kernel's futex queues: a parking table keyed by address.
//!
//! One loom `Mutex` guards the list of parked sleepers and one `Condvar` is notified on every
//! wake and clock tick. `wait` compares the word with `expected` *under the table lock*,
//! and wakers change the word before taking the table lock, which is exactly the atomicity
//! the kernel gives `FUTEX_WAIT`: a wake-up can never fall between the check and the sleep.
//! So if an algorithm forgets to wake somebody, loom reports a deadlock.
//!
//! Deadlines use a logical clock that only [`advance_clock`] moves, so a model decides when
//! (and whether) timeouts fire, and replays deterministically.
//!
//! Two read-only hooks let models see what the table saw: [`parked`] (how many sleepers are
//! parked now, so a model can wait until several sleep on one word at once) and [`sleeps`]
//! (how the calling thread's parked waits ended: woken, or timed out), so a model can tell a
//! sleeper that was woken from one that only got out by a timeout.
#![allow(clippy::disallowed_types)]

use crate::deadline::Deadline;
use crate::futex::Sleeps;
use crate::sync::{AtomicU32, Ordering};
use loom::sync::atomic::AtomicU64;
use loom::sync::{Condvar, Mutex};
use std::cell::Cell;

#[derive(Default)]
struct Parked {
    /// (address of the word, ticket) in arrival order, so wakes are FIFO like the kernel's.
    sleepers: Vec<(usize, u64)>,
    next_ticket: u64,
}

struct Table {
    parked: Mutex<Parked>,
    changed: Condvar,
    clock: AtomicU64,
}

loom::thread_local! {
    /// The calling model thread's [`Sleeps`]; loom gives each execution fresh threads.
    static SLEEPS: Cell<Sleeps> = Cell::new(Sleeps::default());
}

/// How the calling thread's parked waits have ended so far in this execution.
pub(crate) fn sleeps() -> Sleeps {
    SLEEPS.with(Cell::get)
}

/// How many sleepers are parked right now, on any word.
pub(crate) fn parked() -> usize {
    TABLE.parked.lock().unwrap().sleepers.len()
}

fn count(f: impl FnOnce(&mut Sleeps)) {
    SLEEPS.with(|c| {
        let mut s = c.get();
        f(&mut s);
        c.set(s);
    });
}

loom::lazy_static! {
    static ref TABLE: Table = Table {
        parked: Mutex::new(Parked::default()),
        changed: Condvar::new(),
        clock: AtomicU64::new(0),
    };
}

pub(crate) fn clock() -> u64 {
    // Relaxed is not enough to see a tick made under the table lock from outside it, but a
    // sleeper only compares the clock under that lock; elsewhere a stale reading only makes a
    // deadline look later, which the next check under the lock corrects.
    TABLE.clock.load(Ordering::Acquire)
}

pub(crate) fn advance_clock() {
    let _g = TABLE.parked.lock().unwrap();
    TABLE.clock.fetch_add(1, Ordering::Release);
    TABLE.changed.notify_all();
}

pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> bool {
    let addr = word as *const AtomicU32 as usize;
    let mut g = TABLE.parked.lock().unwrap();
    if word.load(Ordering::SeqCst) != expected {
        return true;
    }
    let ticket = g.next_ticket;
    g.next_ticket += 1;
    g.sleepers.push((addr, ticket));
    loop {
        if !g.sleepers.iter().any(|&(_, t)| t == ticket) {
            count(|s| s.woken += 1);
            return true;
        }
        if deadline.is_some_and(|d| d.has_passed()) {
            g.sleepers.retain(|&(_, t)| t != ticket);
            count(|s| s.timed_out += 1);
            return false;
        }
        g = TABLE.changed.wait(g).unwrap();
    }
}

pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let addr = word as *const AtomicU32 as usize;
    let mut g = TABLE.parked.lock().unwrap();
    let mut woken = 0usize;
    g.sleepers.retain(|&(a, _)| {
        if a == addr && woken < n as usize {
            woken += 1;
            false
        } else {
            true
        }
    });
    if woken > 0 {
        TABLE.changed.notify_all();
    }
    woken
}
