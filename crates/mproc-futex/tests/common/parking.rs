//! `futex(2)` on one word, as loom can see it: a parking table (`Futex`: loom's `Mutex` and
//! `Condvar`). `wait` compares the word under the table lock (as the kernel does under its
//! bucket lock, which the waker's `wake` takes after its change of the word) and sleeps
//! until a `wake` picks it; no timeout, so a sleeper nobody wakes is a loom deadlock and a
//! lost wake-up fails the model.
//!
//! The one copy shared by the loom models of the sleepers protocol: mproc-core's
//! `tests/loom_sleepers.rs` and mproc-ring's `tests/loom_doorbell.rs` include it with
//! `#[path = "../../mproc-futex/tests/common/parking.rs"]`, as they include `arms.rs`
//! (independent crates and no test-utility crate; one file keeps one behaviour).
#![allow(dead_code)]

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::{Condvar, Mutex};

/// A parking table for one futex word.
#[derive(Default)]
pub(crate) struct Futex {
    table: Mutex<Table>,
    woken: Condvar,
}

#[derive(Default)]
struct Table {
    next: u32,
    queued: Vec<u32>,
    most_queued: usize,
}

impl Futex {
    /// `futex_wait(word, expected)`: `false` at once if the word is not `expected`, else
    /// `true` after a `wake` picked this sleeper.
    pub(crate) fn wait(&self, word: &AtomicU32, expected: u32) -> bool {
        let mut t = self.table.lock().unwrap();
        // Acquire: a changed word publishes what preceded the change (a bump, a release of
        // permits); the table lock orders this compare against the waker's change-then-wake.
        if word.load(Ordering::Acquire) != expected {
            return false;
        }
        let me = t.next;
        t.next += 1;
        t.queued.push(me);
        t.most_queued = t.most_queued.max(t.queued.len());
        while t.queued.contains(&me) {
            t = self.woken.wait(t).unwrap();
        }
        true
    }

    /// `futex_wake(word, n)`: wakes up to `n` queued sleepers, oldest first.
    pub(crate) fn wake(&self, n: usize) {
        let mut t = self.table.lock().unwrap();
        let n = n.min(t.queued.len());
        t.queued.drain(..n);
        drop(t);
        self.woken.notify_all();
    }

    /// The most sleepers that were queued at once.
    pub(crate) fn most_queued(&self) -> usize {
        self.table.lock().unwrap().most_queued
    }
}
