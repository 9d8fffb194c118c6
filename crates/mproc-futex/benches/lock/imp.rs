//! The benches themselves (not compiled under loom).

use crate::common;
use criterion::{Criterion, criterion_group};
use mproc_futex::{AlwaysAlive, RawLock, Wait, futex};
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A robust, process-shared pthread mutex in shared memory.
struct PthreadRobust(*mut libc::pthread_mutex_t);
// SAFETY: the mutex is designed for concurrent use from threads and processes.
unsafe impl Sync for PthreadRobust {}
// SAFETY: as above; the pointer is to a leaked shared mapping.
unsafe impl Send for PthreadRobust {}

impl PthreadRobust {
    fn new() -> Self {
        let m = common::shared_zeroed::<libc::pthread_mutex_t>() as *const _
            as *mut libc::pthread_mutex_t;
        // SAFETY: standard attribute set-up on valid memory.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            assert_eq!(libc::pthread_mutex_init(m, &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        PthreadRobust(m)
    }
    fn lock(&self) {
        // SAFETY: initialised mutex; nobody dies in the bench, so no EOWNERDEAD.
        let r = unsafe { libc::pthread_mutex_lock(self.0) };
        debug_assert_eq!(r, 0);
    }
    fn unlock(&self) {
        // SAFETY: held by this thread.
        unsafe { libc::pthread_mutex_unlock(self.0) };
    }
}

/// Forks a child running `child`, then times `parent` here: returns the time `parent` took
/// and the time until the child was reaped as well (a blocking `waitpid`: the child always
/// finishes its bounded loop).
fn against_child(child: impl FnOnce(), parent: impl FnOnce()) -> (Duration, Duration) {
    let pid = common::fork(|| {
        child();
        0
    });
    let t0 = Instant::now();
    parent();
    let parent_done = t0.elapsed();
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    let both_done = t0.elapsed();
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "child failed: status {st:#x}"
    );
    (parent_done, both_done)
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended lock+unlock");
    let lock: RawLock = RawLock::new();
    g.bench_function("mproc RawLock (raw)", |b| {
        b.iter(|| {
            let _ = black_box(lock.acquire(1, &AlwaysAlive, Wait::Forever));
            let _ = lock.release(1);
        })
    });
    g.bench_function("mproc RawLock (guard)", |b| {
        b.iter(|| drop(black_box(lock.lock(1, &AlwaysAlive, Wait::Forever))))
    });
    let m = std::sync::Mutex::new(());
    g.bench_function("std Mutex", |b| b.iter(|| drop(black_box(m.lock()))));
    let p = parking_lot::Mutex::new(());
    g.bench_function("parking_lot Mutex", |b| {
        b.iter(|| drop(black_box(p.lock())))
    });
    let r = PthreadRobust::new();
    g.bench_function("pthread robust pshared", |b| {
        b.iter(|| {
            r.lock();
            r.unlock();
        })
    });
    g.finish();
}

/// Two contenders each do `iters` lock+unlock pairs; returns the time for all of them.
fn two_threads(iters: u64, lock: impl Fn() + Sync, unlock: impl Fn() + Sync) -> Duration {
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            start.wait();
            for _ in 0..iters {
                lock();
                unlock();
            }
        });
        start.wait();
        let t0 = Instant::now();
        for _ in 0..iters {
            lock();
            unlock();
        }
        t.join().unwrap();
        t0.elapsed()
    })
}

fn handoff_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended 2 threads (per lock+unlock pair, both sides)");
    let lock: RawLock = RawLock::new();
    g.bench_function("mproc RawLock", |b| {
        b.iter_custom(|n| {
            two_threads(
                n,
                || {
                    let _ = lock.acquire(1, &AlwaysAlive, Wait::Forever);
                },
                || {
                    let _ = lock.release(1);
                },
            ) / 2
        })
    });
    let p = parking_lot::RawMutex::INIT;
    use parking_lot::lock_api::RawMutex as _;
    g.bench_function("parking_lot", |b| {
        b.iter_custom(|n| {
            // SAFETY: each unlock follows this thread's own lock.
            two_threads(n, || p.lock(), || unsafe { p.unlock() }) / 2
        })
    });
    let r = PthreadRobust::new();
    g.bench_function("pthread robust pshared", |b| {
        b.iter_custom(|n| two_threads(n, || r.lock(), || r.unlock()) / 2)
    });
    g.finish();
}

/// A child process and this one each run `n` × `pair(me)` (participant 2 and 1) after a
/// common go; the time until both are done, per pair.
fn processes_handoff(n: u64, pair: impl Fn(u32) + Copy) -> Duration {
    let go: &'static AtomicU32 = common::shared_zeroed();
    let (_, both_done) = against_child(
        || {
            while go.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            for _ in 0..n {
                pair(2);
            }
        },
        || {
            go.store(1, Ordering::Release);
            for _ in 0..n {
                pair(1);
            }
        },
    );
    both_done / 2
}

fn handoff_processes(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended 2 processes (per lock+unlock pair, both sides)");
    g.bench_function("mproc RawLock", |b| {
        b.iter_custom(|n| {
            let lock: &'static RawLock = common::shared_zeroed();
            processes_handoff(n, |me| {
                let _ = lock.acquire(me, &AlwaysAlive, Wait::Forever);
                let _ = lock.release(me);
            })
        })
    });
    let r = PthreadRobust::new();
    g.bench_function("pthread robust pshared", |b| {
        b.iter_custom(|n| {
            processes_handoff(n, |_| {
                r.lock();
                r.unlock();
            })
        })
    });
    g.finish();
}

#[repr(C)]
struct PingPong {
    ping: AtomicU32,
    pong: AtomicU32,
}

fn wake_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross-process wake-up (one way, half a round trip)");
    g.bench_function("mproc futex wait/wake", |b| {
        b.iter_custom(|n| {
            let s: &'static PingPong = common::shared_zeroed();
            let (e, _) = against_child(
                || {
                    for i in 1..=n as u32 {
                        while s.ping.load(Ordering::Acquire) != i {
                            futex::wait(&s.ping, i - 1, None);
                        }
                        s.pong.store(i, Ordering::Release);
                        futex::wake_one(&s.pong);
                    }
                },
                || {
                    for i in 1..=n as u32 {
                        s.ping.store(i, Ordering::Release);
                        futex::wake_one(&s.ping);
                        while s.pong.load(Ordering::Acquire) != i {
                            futex::wait(&s.pong, i - 1, None);
                        }
                    }
                },
            );
            e / 2
        })
    });
    g.bench_function("pipe ping-pong (baseline)", |b| {
        b.iter_custom(|n| {
            let mut a = [0; 2];
            let mut z = [0; 2];
            // SAFETY: two fresh pipes.
            unsafe {
                assert_eq!(libc::pipe(a.as_mut_ptr()), 0);
                assert_eq!(libc::pipe(z.as_mut_ptr()), 0);
            }
            let (e, _) = against_child(
                || {
                    let mut byte = 0u8;
                    for _ in 0..n {
                        // SAFETY: valid fds and a one-byte buffer.
                        unsafe {
                            libc::read(a[0], (&mut byte as *mut u8).cast(), 1);
                            libc::write(z[1], (&byte as *const u8).cast(), 1);
                        }
                    }
                },
                || {
                    let mut byte = 0u8;
                    for _ in 0..n {
                        // SAFETY: valid fds and a one-byte buffer.
                        unsafe {
                            libc::write(a[1], (&byte as *const u8).cast(), 1);
                            libc::read(z[0], (&mut byte as *mut u8).cast(), 1);
                        }
                    }
                },
            );
            for fd in a.into_iter().chain(z) {
                // SAFETY: closing our own fds.
                unsafe { libc::close(fd) };
            }
            e / 2
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = uncontended, handoff_threads, handoff_processes, wake_latency
}
pub(crate) fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
