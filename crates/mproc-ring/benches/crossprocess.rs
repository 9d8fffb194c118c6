//! Cross-process throughput: a forked producer and the parent as consumer, over
//! `MAP_SHARED | MAP_ANONYMOUS` memory, for 8-, 64- and 1024-byte messages on the MPMC ring
//! and the record ring. Never asserts on time.
#![allow(unsafe_code, missing_docs)]

// In-place rings (`init` over shared memory) are not built under `--cfg mproc_loom`, where
// ring headers are loom values on the heap; the bench is then an empty binary.
#[cfg(mproc_loom)]
fn main() {}

#[cfg(not(mproc_loom))]
criterion::criterion_main!(bench::benches);

// Ids, shared anonymous memory and bounded fork, as the process tests use them.
#[cfg(not(mproc_loom))]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(not(mproc_loom))]
mod bench {
    use std::time::{Duration, Instant};

    use criterion::{Criterion, Throughput, criterion_group};
    use mproc_ring::{MpmcRing, MpmcShape, RecordRing, RecordShape};

    use crate::common::{Shared, fork, id, wait_ok};

    /// Forks a producer running `f`, times the parent's `consume`, reaps the child (bounded).
    fn with_child(f: impl FnOnce(), consume: impl FnOnce()) -> Duration {
        let pid = fork(|| {
            f();
            0
        });
        let start = Instant::now();
        consume();
        let d = start.elapsed();
        wait_ok(pid, Duration::from_secs(30));
        d
    }

    fn cross_process(c: &mut Criterion) {
        let mut g = c.benchmark_group("cross_process");
        g.measurement_time(Duration::from_secs(3)).sample_size(10);
        for size in [8usize, 64, 1024] {
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("mpmc_{size}B"), |b| {
                let shape = MpmcShape {
                    capacity: 1024,
                    slot_size: size as u32,
                };
                let mem = Shared::new(MpmcRing::required_size(shape).unwrap());
                b.iter_custom(|iters| {
                    // SAFETY: a fresh shared mapping per sample; outlives both processes' use.
                    let r = unsafe { MpmcRing::init(mem.ptr, mem.len, shape) }.unwrap();
                    let msg = vec![0x5a_u8; size];
                    let mut out = vec![0u8; size];
                    with_child(
                        || {
                            for _ in 0..iters {
                                while r.try_push(id(1), &msg).is_err() {
                                    std::hint::spin_loop();
                                }
                            }
                        },
                        || {
                            for _ in 0..iters {
                                while r.try_pop(id(2), &mut out).is_err() {
                                    std::hint::spin_loop();
                                }
                            }
                        },
                    )
                })
            });
            g.bench_function(format!("record_{size}B"), |b| {
                let shape = RecordShape { capacity: 1 << 16 };
                let mem = Shared::new(RecordRing::required_size(shape).unwrap());
                b.iter_custom(|iters| {
                    // SAFETY: as above.
                    let r = unsafe { RecordRing::init(mem.ptr, mem.len, shape) }.unwrap();
                    let msg = vec![0x5a_u8; size];
                    let mut rd = r.claim_reader(id(2)).unwrap();
                    let d = with_child(
                        || {
                            let mut w = r.claim_writer(id(1)).unwrap();
                            for _ in 0..iters {
                                while w.try_write(&msg).is_err() {
                                    std::hint::spin_loop();
                                }
                            }
                        },
                        || {
                            for _ in 0..iters {
                                loop {
                                    if let Ok(rec) = rd.try_read() {
                                        std::hint::black_box(rec.bytes());
                                        break;
                                    }
                                    std::hint::spin_loop();
                                }
                            }
                        },
                    );
                    drop(rd);
                    d
                })
            });
        }
        g.finish();
    }

    criterion_group!(benches, cross_process);
}
