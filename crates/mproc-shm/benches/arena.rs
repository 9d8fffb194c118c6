//! Arena alloc+free against the system allocator (`std::alloc`), on one and two threads.
//!
//! Run: `cargo bench -p mproc-shm --bench arena`. Each iteration is one alloc followed by
//! one free of the same size; the two-thread numbers are per operation pair per thread,
//! both threads hammering the same arena (or the same process heap) at once.
#![allow(missing_docs, clippy::disallowed_types)]

use std::alloc::{Layout, alloc, dealloc};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mproc_shm::{Arena, SegmentOptions};

const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

fn arena() -> Arena {
    let seg = Arc::new(
        SegmentOptions::new()
            .len(16 << 20)
            .create_anonymous()
            .unwrap(),
    );
    let r = seg.region();
    Arena::init(seg.clone(), r.offset(), r.len() as u64).unwrap()
}

fn arena_pair(a: &Arena, size: usize) {
    let o = a.alloc(black_box(size), 8).unwrap();
    a.free(black_box(o)).unwrap();
}

fn system_pair(size: usize) {
    let layout = Layout::from_size_align(black_box(size), 8).unwrap();
    // SAFETY: nonzero size.
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    // SAFETY: allocated just above with the same layout.
    unsafe { dealloc(black_box(p), layout) };
}

/// Runs `body` `iters` times on each of `threads` threads, started together behind a barrier;
/// returns the slowest thread's time.
fn on_threads(threads: usize, iters: u64, body: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        body();
                    }
                    start.elapsed()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

fn bench(c: &mut Criterion) {
    let a = arena();
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("alloc_free/{threads}thread"));
        for size in SIZES {
            g.bench_function(format!("arena/{size}"), |b| {
                b.iter_custom(|iters| on_threads(threads, iters, || arena_pair(&a, size)))
            });
            g.bench_function(format!("system/{size}"), |b| {
                b.iter_custom(|iters| on_threads(threads, iters, || system_pair(size)))
            });
        }
        g.finish();
    }
    a.check().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
