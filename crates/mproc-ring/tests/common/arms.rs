//! Outcome coverage for loom models: which arms a model reached across its iterations.
//!
//! A loom model that passes may never have reached the case it was written for (one
//! iteration explores nothing; a recovery that always runs first never meets a claim). So
//! each model names its outcome arms, counts every arm an iteration reaches, and after
//! `loom::model` returns asserts that each arm was reached at least once.
//!
//! The counters are plain std atomics on purpose: they live outside the model, count across
//! iterations, and must add no interleavings for loom to explore.
#![allow(
    clippy::disallowed_types,
    reason = "std counters outside the loom model: they must survive iterations and add no interleavings"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Named outcome counters of one loom model; declare one `static` per model.
pub struct Arms<const N: usize> {
    model: &'static str,
    names: [&'static str; N],
    hits: [AtomicUsize; N],
    iterations: AtomicUsize,
}

impl<const N: usize> Arms<N> {
    /// Counters for `model` with the given arm names, all zero.
    pub const fn new(model: &'static str, names: [&'static str; N]) -> Self {
        Arms {
            model,
            names,
            hits: [const { AtomicUsize::new(0) }; N],
            iterations: AtomicUsize::new(0),
        }
    }

    /// Records that this iteration reached arm `name` (panics on a name not declared).
    pub fn hit(&self, name: &str) {
        let Some(i) = self.names.iter().position(|n| *n == name) else {
            panic!("{}: no arm named {name:?}", self.model);
        };
        // Relaxed: a counter read only after every iteration has finished.
        self.hits[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Records `yes` if `cond` holds, else `no`.
    pub fn either(&self, cond: bool, yes: &str, no: &str) {
        self.hit(if cond { yes } else { no });
    }

    /// Runs `f` under `loom::model` (so `LOOM_MAX_PREEMPTIONS` applies), prints the
    /// iteration count, time and hits per arm, and asserts that every arm was reached.
    pub fn model<F>(&'static self, f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        let start = Instant::now();
        loom::model(move || {
            // Relaxed: as in `hit`.
            self.iterations.fetch_add(1, Ordering::Relaxed);
            f();
        });
        let iterations = self.iterations.load(Ordering::Relaxed);
        let hits: Vec<_> = self
            .names
            .iter()
            .zip(&self.hits)
            .map(|(n, h)| (*n, h.load(Ordering::Relaxed)))
            .collect();
        let line: Vec<_> = hits.iter().map(|(n, h)| format!("{n}={h}")).collect();
        eprintln!(
            "loom model {}: {iterations} iterations in {:.2?}; arms: {}",
            self.model,
            start.elapsed(),
            line.join(", ")
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
