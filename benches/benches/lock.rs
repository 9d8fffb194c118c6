//! Criterion's view of the lock comparison: uncontended acquire + release (mproc `Lock`,
//! `std::sync::Mutex`, `parking_lot::Mutex`, robust process-shared `pthread_mutex_t`) and the
//! two-process hand-off, through the same functions as the report. Never asserts on time.
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mproc_benches::{BenchError, lock};

/// A lock bench: `per_op(n)` runs `n` rounds and returns the time of one.
type PerOp = fn(u64) -> Result<Duration, BenchError>;

fn benches(c: &mut Criterion) {
    let groups: [(&str, &[(&str, PerOp)]); 2] = [
        (
            "lock uncontended",
            &[
                ("mproc Lock", lock::uncontended_mproc),
                ("std Mutex", |n| Ok(lock::uncontended_std(n))),
                ("parking_lot Mutex", |n| {
                    Ok(lock::uncontended_parking_lot(n))
                }),
                ("pthread robust pshared", lock::uncontended_pthread),
            ],
        ),
        (
            "lock hand-off, 2 processes",
            &[
                ("mproc Lock", lock::handoff_mproc),
                ("pthread robust pshared", lock::handoff_pthread),
            ],
        ),
    ];
    for (name, locks) in groups {
        let mut g = common::group(c, name);
        for &(lock, per_op) in locks {
            g.bench_function(lock, |b| {
                b.iter_custom(|n| {
                    per_op(n.max(1)).unwrap_or_else(|e| panic!("{lock}: {e}")) * n as u32
                })
            });
        }
        g.finish();
    }
}

criterion_group!(locks, benches);
criterion_main!(locks);
