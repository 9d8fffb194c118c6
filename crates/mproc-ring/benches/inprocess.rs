//! In-process throughput and round-trip latency of the rings against
//! `crossbeam_queue::ArrayQueue` and `rtrb`, two threads pinned to CPUs 0 and 1 when the
//! machine allows. Never asserts on time.
#![allow(unsafe_code, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use mproc_ring::{
    Consumer, MpmcRing, MpmcShape, ParticipantId, Producer, RecordReader, RecordRing, RecordShape,
    RecordWriter, SpscRing, SpscShape,
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

/// The sending end of a queue under test: one attempt per call.
trait Tx: Send + 'static {
    fn try_send(&mut self, v: u64) -> bool;
}

/// The receiving end of a queue under test: one attempt per call.
trait Rx: Send + 'static {
    fn try_recv(&mut self) -> Option<u64>;
}

impl Tx for Arc<ArrayQueue<u64>> {
    fn try_send(&mut self, v: u64) -> bool {
        self.push(v).is_ok()
    }
}

impl Rx for Arc<ArrayQueue<u64>> {
    fn try_recv(&mut self) -> Option<u64> {
        self.pop()
    }
}

impl Tx for rtrb::Producer<u64> {
    fn try_send(&mut self, v: u64) -> bool {
        self.push(v).is_ok()
    }
}

impl Rx for rtrb::Consumer<u64> {
    fn try_recv(&mut self) -> Option<u64> {
        self.pop().ok()
    }
}

impl Tx for Producer {
    fn try_send(&mut self, v: u64) -> bool {
        self.push(&v.to_le_bytes()).is_ok()
    }
}

impl Rx for Consumer {
    fn try_recv(&mut self) -> Option<u64> {
        let mut out = [0u8; 8];
        self.pop(&mut out).ok().map(|()| u64::from_le_bytes(out))
    }
}

/// An MPMC ring used as participant `.1`.
struct Mpmc(MpmcRing, ParticipantId);

impl Tx for Mpmc {
    fn try_send(&mut self, v: u64) -> bool {
        self.0.try_push(self.1, &v.to_le_bytes()).is_ok()
    }
}

impl Rx for Mpmc {
    fn try_recv(&mut self) -> Option<u64> {
        let mut out = [0u8; 8];
        self.0
            .try_pop(self.1, &mut out)
            .ok()
            .map(|_| u64::from_le_bytes(out))
    }
}

impl Tx for RecordWriter {
    fn try_send(&mut self, v: u64) -> bool {
        self.try_write(&v.to_le_bytes()).is_ok()
    }
}

impl Rx for RecordReader {
    fn try_recv(&mut self) -> Option<u64> {
        let rec = self.try_read().ok()?;
        Some(u64::from_le_bytes(rec.bytes().try_into().unwrap()))
    }
}

/// Sends `v`, spinning until it lands.
fn send(tx: &mut impl Tx, v: u64) {
    while !tx.try_send(v) {}
}

/// Receives one value, spinning until there is one.
fn recv(rx: &mut impl Rx) -> u64 {
    loop {
        if let Some(v) = rx.try_recv() {
            return v;
        }
    }
}

/// Times `iters` transfers from a peer thread sending on `tx` to this one receiving on `rx`.
fn transfer(iters: u64, mut tx: impl Tx, mut rx: impl Rx) -> Duration {
    against_peer(
        iters,
        move |i| send(&mut tx, i),
        |_| {
            black_box(recv(&mut rx));
        },
    )
}

/// Times `iters` round trips: this thread sends `i` on `out` and waits for it on `back`;
/// the peer thread echoes each from `out` to `back`. Each is a (sending, receiving) pair.
fn round_trips(iters: u64, out: (impl Tx, impl Rx), back: (impl Tx, impl Rx)) -> Duration {
    let ((mut out_tx, mut out_rx), (mut back_tx, mut back_rx)) = (out, back);
    against_peer(
        iters,
        move |_| {
            let v = recv(&mut out_rx);
            send(&mut back_tx, v);
        },
        |i| {
            send(&mut out_tx, i);
            recv(&mut back_rx);
        },
    )
}

fn spsc(capacity: u32) -> (Producer, Consumer) {
    let r = SpscRing::new(SpscShape {
        capacity,
        slot_size: 8,
    })
    .unwrap();
    (
        r.claim_producer(id(1)).unwrap(),
        r.claim_consumer(id(2)).unwrap(),
    )
}

fn mpmc(capacity: u32) -> (Mpmc, Mpmc) {
    let r = MpmcRing::new(MpmcShape {
        capacity,
        slot_size: 8,
    })
    .unwrap();
    (Mpmc(r.clone(), id(1)), Mpmc(r, id(2)))
}

fn array_queue(capacity: usize) -> (Arc<ArrayQueue<u64>>, Arc<ArrayQueue<u64>>) {
    let q = Arc::new(ArrayQueue::new(capacity));
    (q.clone(), q)
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput_u64");
    g.measurement_time(Duration::from_secs(3)).sample_size(10);
    g.bench_function("crossbeam_arrayqueue", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = array_queue(CAP as usize);
            transfer(iters, tx, rx)
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = rtrb::RingBuffer::<u64>::new(CAP as usize);
            transfer(iters, tx, rx)
        })
    });
    g.bench_function("mproc_spsc", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = spsc(CAP);
            transfer(iters, tx, rx)
        })
    });
    g.bench_function("mproc_mpmc", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = mpmc(CAP);
            transfer(iters, tx, rx)
        })
    });
    g.bench_function("mproc_record", |b| {
        b.iter_custom(|iters| {
            let r = RecordRing::new(RecordShape { capacity: CAP * 16 }).unwrap();
            let (tx, rx) = (
                r.claim_writer(id(1)).unwrap(),
                r.claim_reader(id(2)).unwrap(),
            );
            transfer(iters, tx, rx)
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
            against_peer(
                batches,
                move |i| loop {
                    if let Ok(ch) = p.write_chunk_uninit(64) {
                        ch.fill_from_iter((0..64).map(|k| i * 64 + k));
                        return;
                    }
                },
                move |_| loop {
                    if let Ok(ch) = c.read_chunk(64) {
                        let (a, _) = ch.as_slices();
                        black_box(a[0]);
                        ch.commit_all();
                        return;
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
            against_peer(
                batches,
                move |_| {
                    let mut sent = 0;
                    while sent < 64 {
                        sent += p.push_slice(&src[sent * 8..]).unwrap() as usize;
                    }
                },
                move |_| {
                    let mut got = 0;
                    while got < 64 {
                        got += c.pop_slice(&mut dst[got * 8..]).unwrap() as usize;
                    }
                    black_box(dst[0]);
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
        b.iter_custom(|iters| round_trips(iters, array_queue(8), array_queue(8)))
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            let out = rtrb::RingBuffer::<u64>::new(8);
            round_trips(iters, out, rtrb::RingBuffer::<u64>::new(8))
        })
    });
    g.bench_function("mproc_spsc", |b| {
        b.iter_custom(|iters| round_trips(iters, spsc(8), spsc(8)))
    });
    g.bench_function("mproc_mpmc", |b| {
        b.iter_custom(|iters| round_trips(iters, mpmc(8), mpmc(8)))
    });
    g.finish();
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);
