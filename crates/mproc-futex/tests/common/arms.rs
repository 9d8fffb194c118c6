//! Outcome coverage for loom models: which arms a model reached across its iterations.
//!
//! A loom model that passes may simply never have reached the case it was written for (one
//! iteration explores nothing; a preemption bound too low never puts two threads to sleep
//! at once; a recovery that always runs first never meets a claim). So each model names its
//! outcome arms, counts every arm an iteration reaches, and after `loom::model` returns
//! asserts that each arm was reached at least once.
//!
//! The counters are plain std atomics on purpose: they live outside the model, count across
//! iterations, and must not add interleavings for loom to explore (nor be loom objects,
//! which loom resets every iteration).
//!
//! The one copy shared by the loom suites of the four lower crates: mproc-futex's
//! `tests/loom_*.rs` include it with `#[path = "common/arms.rs"]`, mproc-core's, mproc-ring's
//! and mproc-shm's with `#[path = "../../mproc-futex/tests/common/arms.rs"]` (independent
//! crates and no test-utility crate; one file keeps one behaviour).
#![allow(
    clippy::disallowed_types,
    reason = "std counters outside the loom model: they must survive iterations and add no interleavings"
)]
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The arms of a model that asks one thing of a waiter: did it sleep (and was it woken), or
/// never sleep. Used with [`Arms::slept`].
pub(crate) const SLEPT: [&str; 2] = ["slept and was woken", "never slept"];

/// Named outcome counters of one loom model; declare one `static` per model.
pub(crate) struct Arms<const N: usize> {
    model: &'static str,
    names: [&'static str; N],
    hits: [AtomicUsize; N],
    iterations: AtomicUsize,
}

impl<const N: usize> Arms<N> {
    /// Counters for `model` with the given arm names, all zero.
    pub(crate) const fn new(model: &'static str, names: [&'static str; N]) -> Self {
        Arms {
            model,
            names,
            hits: [const { AtomicUsize::new(0) }; N],
            iterations: AtomicUsize::new(0),
        }
    }

    /// Records that this iteration reached arm `name` (panics on a name not declared).
    pub(crate) fn hit(&self, name: &str) {
        self.hit_if(true, name);
    }

    /// Records arm `name` if `reached` (for arms that are not exclusive); panics on a name
    /// not declared whether or not `reached`.
    pub(crate) fn hit_if(&self, reached: bool, name: &str) {
        let Some(i) = self.names.iter().position(|n| *n == name) else {
            panic!("{}: no arm named {name:?}", self.model);
        };
        if reached {
            // Relaxed: a counter read only after every iteration has finished.
            self.hits[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records `yes` if `cond` holds, else `no`.
    pub(crate) fn either(&self, cond: bool, yes: &str, no: &str) {
        self.hit(if cond { yes } else { no });
    }

    /// Runs `f` under `loom::model` (default builder, so `LOOM_MAX_PREEMPTIONS` applies),
    /// then asserts that every arm was reached.
    pub(crate) fn model<F>(&'static self, f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        self.check(loom::model::Builder::new(), f);
    }

    /// As [`model`](Self::model) with the given builder (e.g. its own preemption bound).
    pub(crate) fn check<F>(&'static self, builder: loom::model::Builder, f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        let start = Instant::now();
        builder.check(move || {
            // Relaxed: as in `hit`.
            self.iterations.fetch_add(1, Ordering::Relaxed);
            f();
        });
        self.assert_all_reached(start);
    }

    fn assert_all_reached(&self, start: Instant) {
        let hits: Vec<_> = self
            .names
            .iter()
            .zip(&self.hits)
            .map(|(n, h)| (*n, h.load(Ordering::Relaxed)))
            .collect();
        let iterations = self.iterations.load(Ordering::Relaxed);
        let line = hits
            .iter()
            .map(|(n, h)| format!("{n}={h}"))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!(
            "loom model {}: {iterations} iterations in {:.2?}; arms: {line}",
            self.model,
            start.elapsed()
        );
        let missed: Vec<_> = hits
            .iter()
            .filter(|(_, h)| *h == 0)
            .map(|(n, _)| *n)
            .collect();
        assert!(
            missed.is_empty(),
            "loom model {}: arms never reached in {iterations} iterations: {missed:?}",
            self.model
        );
    }
}

impl Arms<2> {
    /// Records one of the [`SLEPT`] arms: whether the waiter `slept` and was woken.
    pub(crate) fn slept(&self, slept: bool) {
        self.either(slept, SLEPT[0], SLEPT[1]);
    }
}
