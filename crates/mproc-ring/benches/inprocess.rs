//! In-process throughput and round-trip latency of the rings against
//! `crossbeam_queue::ArrayQueue` and `rtrb`, two threads pinned to CPUs 0 and 1 when the
//! machine allows. Never asserts on time.
#![allow(unsafe_code, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mproc_ring::{
    MpmcRing, MpmcShape, ParticipantId, RecordRing, RecordShape, SpscRing, SpscShape,
};

const CAP: u32 = 1024;

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it; failure is ignored
    // (pinning is best effort).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % 2, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

fn id(n: u32) -> ParticipantId {
    ParticipantId::new(n).unwrap()
}

/// Runs `peer(i)` for `i` in `0..iters` on a thread pinned to CPU 1 and times `here(i)` for
/// the same `i`s on this thread, pinned to CPU 0; returns once the peer is joined.
fn against_peer<P, H>(iters: u64, mut peer: P, mut here: H) -> Duration
where
    P: FnMut(u64) + Send + 'static,
    H: FnMut(u64),
{
    let t = std::thread::spawn(move || {
        pin(1);
        for i in 0..iters {
            peer(i);
        }
    });
    pin(0);
    let start = Instant::now();
    for i in 0..iters {
        here(i);
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

/// Times `iters` transfers: `send(i)` spins until it lands, `recv()` until it gets one.
fn transfer<S, R>(iters: u64, send: S, mut recv: R) -> Duration
where
    S: FnMut(u64) + Send + 'static,
    R: FnMut() -> u64,
{
    against_peer(iters, send, |_| {
        black_box(recv());
    })
}

/// Times `iters` round trips: `ping(i)` sends `i` and spins until it is back; `echo()`, on
/// the peer thread, spins until it receives one and sends it back.
fn round_trips<E, P>(iters: u64, mut echo: E, ping: P) -> Duration
where
    E: FnMut() + Send + 'static,
    P: FnMut(u64),
{
    against_peer(iters, move |_| echo(), ping)
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput_u64");
    g.measurement_time(Duration::from_secs(3)).sample_size(10);

    g.bench_function("crossbeam_arrayqueue", |b| {
        b.iter_custom(|iters| {
            let q = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAP as usize));
            let q2 = q.clone();
            transfer(
                iters,
                move |i| while q2.push(i).is_err() {},
                || loop {
                    if let Some(v) = q.pop() {
                        return v;
                    }
                },
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            let (mut p, mut c) = rtrb::RingBuffer::<u64>::new(CAP as usize);
            transfer(
                iters,
                move |i| while p.push(i).is_err() {},
                || loop {
                    if let Ok(v) = c.pop() {
                        return v;
                    }
                },
            )
        })
    });
    g.bench_function("mproc_spsc", |b| {
        b.iter_custom(|iters| {
            let r = SpscRing::new(SpscShape {
                capacity: CAP,
                slot_size: 8,
            })
            .unwrap();
            let mut p = r.claim_producer(id(1)).unwrap();
            let mut c = r.claim_consumer(id(2)).unwrap();
            let mut out = [0u8; 8];
            transfer(
                iters,
                move |i| while p.push(&i.to_le_bytes()).is_err() {},
                move || loop {
                    if c.pop(&mut out).is_ok() {
                        return u64::from_le_bytes(out);
                    }
                },
            )
        })
    });
    g.bench_function("mproc_mpmc", |b| {
        b.iter_custom(|iters| {
            let r = MpmcRing::new(MpmcShape {
                capacity: CAP,
                slot_size: 8,
            })
            .unwrap();
            let r2 = r.clone();
            let mut out = [0u8; 8];
            transfer(
                iters,
                move |i| while r2.try_push(id(1), &i.to_le_bytes()).is_err() {},
                move || loop {
                    if r.try_pop(id(2), &mut out).is_ok() {
                        return u64::from_le_bytes(out);
                    }
                },
            )
        })
    });
    g.bench_function("mproc_record", |b| {
        b.iter_custom(|iters| {
            let r = RecordRing::new(RecordShape { capacity: CAP * 16 }).unwrap();
            let mut w = r.claim_writer(id(1)).unwrap();
            let mut rd = r.claim_reader(id(2)).unwrap();
            transfer(
                iters,
                move |i| while w.try_write(&i.to_le_bytes()).is_err() {},
                move || loop {
                    if let Ok(rec) = rd.try_read() {
                        return u64::from_le_bytes(rec.bytes().try_into().unwrap());
                    }
                },
            )
        })
    });
    g.finish();

    // Batched: 64 elements per chunk on both sides (the reason for the chunk API).
    let mut g = c.benchmark_group("throughput_u64_batch64");
    g.measurement_time(Duration::from_secs(3)).sample_size(10);
    g.bench_function("rtrb_chunks", |b| {
        b.iter_custom(|iters| {
            let (mut p, mut c) = rtrb::RingBuffer::<u64>::new(CAP as usize);
            let batches = iters.div_ceil(64);
            transfer(
                batches,
                move |i| loop {
                    if let Ok(ch) = p.write_chunk_uninit(64) {
                        ch.fill_from_iter((0..64).map(|k| i * 64 + k));
                        return;
                    }
                },
                move || loop {
                    if let Ok(ch) = c.read_chunk(64) {
                        let (a, _) = ch.as_slices();
                        let v = a[0];
                        ch.commit_all();
                        return v;
                    }
                },
            )
        })
    });
    g.bench_function("mproc_spsc_slices", |b| {
        b.iter_custom(|iters| {
            let r = SpscRing::new(SpscShape {
                capacity: CAP,
                slot_size: 8,
            })
            .unwrap();
            let mut p = r.claim_producer(id(1)).unwrap();
            let mut c = r.claim_consumer(id(2)).unwrap();
            let batches = iters.div_ceil(64);
            let src = [7u8; 64 * 8];
            let mut dst = [0u8; 64 * 8];
            transfer(
                batches,
                move |_| {
                    let mut sent = 0;
                    while sent < 64 {
                        sent += p.push_slice(&src[sent * 8..]).unwrap() as usize;
                    }
                },
                move || {
                    let mut got = 0;
                    while got < 64 {
                        got += c.pop_slice(&mut dst[got * 8..]).unwrap() as usize;
                    }
                    u64::from(dst[0])
                },
            )
        })
    });
    g.finish();
}

/// Round trip: A sends, B echoes, A receives.
fn latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip_u64");
    g.measurement_time(Duration::from_secs(3)).sample_size(10);
    g.bench_function("crossbeam_arrayqueue", |b| {
        b.iter_custom(|iters| {
            let ab = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(8));
            let ba = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(8));
            let (ab2, ba2) = (ab.clone(), ba.clone());
            round_trips(
                iters,
                move || {
                    let v = loop {
                        if let Some(v) = ab2.pop() {
                            break v;
                        }
                    };
                    while ba2.push(v).is_err() {}
                },
                |i| {
                    while ab.push(i).is_err() {}
                    while ba.pop().is_none() {}
                },
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            let (mut pa, mut ca) = rtrb::RingBuffer::<u64>::new(8);
            let (mut pb, mut cb) = rtrb::RingBuffer::<u64>::new(8);
            round_trips(
                iters,
                move || {
                    let v = loop {
                        if let Ok(v) = ca.pop() {
                            break v;
                        }
                    };
                    while pb.push(v).is_err() {}
                },
                |i| {
                    while pa.push(i).is_err() {}
                    while cb.pop().is_err() {}
                },
            )
        })
    });
    g.bench_function("mproc_spsc", |b| {
        b.iter_custom(|iters| {
            let shape = SpscShape {
                capacity: 8,
                slot_size: 8,
            };
            let (ra, rb) = (SpscRing::new(shape).unwrap(), SpscRing::new(shape).unwrap());
            let (mut pa, mut ca) = (
                ra.claim_producer(id(1)).unwrap(),
                ra.claim_consumer(id(2)).unwrap(),
            );
            let (mut pb, mut cb) = (
                rb.claim_producer(id(2)).unwrap(),
                rb.claim_consumer(id(1)).unwrap(),
            );
            let mut echoed = [0u8; 8];
            let mut back = [0u8; 8];
            round_trips(
                iters,
                move || {
                    while ca.pop(&mut echoed).is_err() {}
                    while pb.push(&echoed).is_err() {}
                },
                |i| {
                    while pa.push(&i.to_le_bytes()).is_err() {}
                    while cb.pop(&mut back).is_err() {}
                },
            )
        })
    });
    g.bench_function("mproc_mpmc", |b| {
        b.iter_custom(|iters| {
            let shape = MpmcShape {
                capacity: 8,
                slot_size: 8,
            };
            let (ab, ba) = (MpmcRing::new(shape).unwrap(), MpmcRing::new(shape).unwrap());
            let (ab2, ba2) = (ab.clone(), ba.clone());
            let mut echoed = [0u8; 8];
            let mut back = [0u8; 8];
            round_trips(
                iters,
                move || {
                    while ab2.try_pop(id(2), &mut echoed).is_err() {}
                    while ba2.try_push(id(2), &echoed).is_err() {}
                },
                |i| {
                    while ab.try_push(id(1), &i.to_le_bytes()).is_err() {}
                    while ba.try_pop(id(1), &mut back).is_err() {}
                },
            )
        })
    });
    g.finish();
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);
