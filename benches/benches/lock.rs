//! Criterion's view of the lock comparison: uncontended acquire + release (mproc `Lock`,
//! `std::sync::Mutex`, `parking_lot::Mutex`, robust process-shared `pthread_mutex_t`) and the
//! two-process hand-off, through the same functions as the report. Never asserts on time.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mproc_benches::lock;

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock uncontended");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.bench_function("mproc Lock", |b| {
        b.iter_custom(|n| lock::uncontended_mproc(n.max(1)).expect("mproc lock") * n as u32)
    });
    g.bench_function("std Mutex", |b| {
        b.iter_custom(|n| lock::uncontended_std(n.max(1)) * n as u32)
    });
    g.bench_function("parking_lot Mutex", |b| {
        b.iter_custom(|n| lock::uncontended_parking_lot(n.max(1)) * n as u32)
    });
    g.bench_function("pthread robust pshared", |b| {
        b.iter_custom(|n| lock::uncontended_pthread(n.max(1)).expect("pthread") * n as u32)
    });
    g.finish();

    let mut g = c.benchmark_group("lock hand-off, 2 processes");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.bench_function("mproc Lock", |b| {
        b.iter_custom(|n| lock::handoff_mproc(n.max(1)).expect("mproc lock") * n as u32)
    });
    g.bench_function("pthread robust pshared", |b| {
        b.iter_custom(|n| lock::handoff_pthread(n.max(1)).expect("pthread") * n as u32)
    });
    g.finish();
}

criterion_group!(locks, benches);
criterion_main!(locks);
