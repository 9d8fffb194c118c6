//! What the criterion benches share: every group's sampling settings.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

/// A benchmark group named `name` with the settings of every group here: 10 samples after a
/// 300 ms warm-up, 1 s of measurement (each sample forks a peer or runs a whole exchange).
pub(crate) fn group<'a>(
    c: &'a mut Criterion,
    name: impl Into<String>,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g
}
