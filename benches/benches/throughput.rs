//! Criterion's view of one-way throughput: the same body as the report
//! (`mproc_benches::body::throughput`), one forked peer per measurement, for 8 B and 1 KiB
//! messages over every mechanism. Never asserts on time.
#![allow(missing_docs)]

mod common;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mproc_benches::body::{self, no_allocs};
use mproc_benches::mech::*;
use mproc_benches::{Payload, Transport};

fn one<T: Transport>(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| {
            body::throughput::<T>(size, 100, iters.max(1), no_allocs)
                .unwrap_or_else(|e| panic!("{} {size} B: {e}", T::NAME))
                .elapsed
        })
    });
}

fn size<P: Payload>(c: &mut Criterion) {
    let size = P::SIZE;
    let mut g = common::group(c, format!("throughput {size} B"));
    g.throughput(Throughput::Elements(1));
    one::<QueueT<P>>(&mut g, size);
    one::<MprocPipe>(&mut g, size);
    one::<RawSpsc>(&mut g, size);
    one::<RawRecord>(&mut g, size);
    one::<RawMpmc>(&mut g, size);
    one::<Lamport>(&mut g, size);
    one::<Pipe2>(&mut g, size);
    one::<UnixStream>(&mut g, size);
    one::<SeqPacket>(&mut g, size);
    one::<PosixMq>(&mut g, size);
    one::<Crossbeam<P>>(&mut g, size);
    #[cfg(feature = "peers")]
    one::<IpcChannel>(&mut g, size);
    g.finish();
}

fn benches(c: &mut Criterion) {
    size::<u64>(c);
    size::<[u8; 1024]>(c);
}

criterion_group!(throughput, benches);
criterion_main!(throughput);
