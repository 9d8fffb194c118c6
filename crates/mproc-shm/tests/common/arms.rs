//! Outcome coverage for loom models: one counter per outcome arm, summed over every
//! iteration of a `loom::model`, so a model can assert that it explored each arm it claims
//! to check (a model that cannot reach its interesting arm cannot fail).
//!
//! The counters are plain std atomics on purpose: they live outside the model, across
//! iterations, and must not be loom objects (loom resets those every iteration).
#![allow(
    clippy::disallowed_types,
    reason = "bookkeeping outside the model: std atomics are what is wanted, not the shim"
)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// One outcome arm of a model: a name and how often an iteration reached it.
#[derive(Debug)]
pub struct Arm {
    name: &'static str,
    hits: AtomicUsize,
}

impl Arm {
    pub const fn new(name: &'static str) -> Arm {
        Arm {
            name,
            hits: AtomicUsize::new(0),
        }
    }

    /// Counts one iteration that reached this arm.
    pub fn hit(&self) {
        // Relaxed: a counter read after `loom::model` returns (same OS thread).
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the iteration if `reached`.
    pub fn hit_if(&self, reached: bool) {
        if reached {
            self.hit();
        }
    }

    pub fn hits(&self) -> usize {
        // Relaxed: see `hit`.
        self.hits.load(Ordering::Relaxed)
    }
}

/// Prints every arm's count and panics naming the arms no iteration reached. Call after
/// `loom::model(...)` returns.
pub fn assert_all_reached(model: &str, arms: &[&Arm]) {
    for a in arms {
        eprintln!("{model}: {:>7} x {}", a.hits(), a.name);
    }
    let missed: Vec<&str> = arms
        .iter()
        .filter(|a| a.hits() == 0)
        .map(|a| a.name)
        .collect();
    assert!(
        missed.is_empty(),
        "{model}: no iteration reached these arms: {missed:?}"
    );
}
