//! Criterion's view of round-trip latency (both sides awake, 8 B): the same body as the
//! report (`mproc_benches::body::round_trip`), one forked peer per measurement. Criterion
//! reports means; the percentiles and the after-idle regime are in the report
//! (`cargo xtask bench`). Never asserts on time.
#![allow(missing_docs)]

mod common;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use mproc_benches::Transport;
use mproc_benches::body::{self, no_allocs};
use mproc_benches::mech::*;

fn one<T: Transport>(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| {
            body::round_trip::<T>(8, 10, iters.max(1), None, no_allocs)
                .unwrap_or_else(|e| panic!("{}: {e}", T::NAME))
                .total()
        })
    });
}

fn benches(c: &mut Criterion) {
    let mut g = common::group(c, "round trip 8 B (awake)");
    one::<QueueT<u64>>(&mut g);
    one::<MprocPipe>(&mut g);
    one::<RawSpsc>(&mut g);
    one::<RawMpmc>(&mut g);
    one::<SpinFlag>(&mut g);
    one::<Lamport>(&mut g);
    one::<FutexFlag>(&mut g);
    one::<Pipe2>(&mut g);
    one::<UnixStream>(&mut g);
    one::<SeqPacket>(&mut g);
    one::<PosixMq>(&mut g);
    one::<Crossbeam<u64>>(&mut g);
    #[cfg(feature = "peers")]
    one::<IpcChannel>(&mut g);
    g.finish();
}

criterion_group!(latency, benches);
criterion_main!(latency);
