//! The bench bodies, written once over [`Transport`]: one-way throughput and round-trip
//! latency. The criterion benches and the report binary both call these.

use std::time::{Duration, Instant};

use crate::{BenchError, Deadline, Transport};

/// Reads a process-wide allocation counter (the report binary's counting allocator); the
/// criterion benches pass [`no_allocs`].
pub type AllocProbe = fn() -> u64;

/// An [`AllocProbe`] that counts nothing.
pub fn no_allocs() -> u64 {
    0
}

/// One throughput run.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Messages timed.
    pub msgs: u64,
    /// Time to receive them.
    pub elapsed: Duration,
    /// Allocations the receiving process made while receiving them.
    pub allocs: u64,
}

impl Throughput {
    /// Messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.msgs as f64 / self.elapsed.as_secs_f64().max(1e-12)
    }
}

/// One-way throughput: the peer sends `warm + n` messages of `size` bytes as fast as it can;
/// this process receives them, checks every sequence number, and times the last `n` (the
/// first `warm` fill the pipeline, fault the pages in and let both sides reach steady state).
///
/// # Errors
/// Any transport error, an out-of-order message, or a failed peer.
pub fn throughput<T: Transport>(
    size: usize,
    warm: u64,
    n: u64,
    allocs: AllocProbe,
) -> Result<Throughput, BenchError> {
    let deadline = Deadline::measurement();
    let peer = move |end: &mut T::End| {
        for seq in 0..warm + n {
            T::send(end, seq, &deadline)?;
        }
        Ok(())
    };
    with_peer::<T, _>(size, peer, |mine| {
        for seq in 0..warm {
            expect(T::recv(mine, &deadline)?, seq)?;
        }
        let a0 = allocs();
        let start = Instant::now();
        for seq in warm..warm + n {
            expect(T::recv(mine, &deadline)?, seq)?;
        }
        let elapsed = start.elapsed();
        Ok(Throughput {
            msgs: n,
            elapsed,
            allocs: allocs() - a0,
        })
    })
}

/// Round-trip samples.
#[derive(Debug, Clone)]
pub struct Latency {
    /// One round trip each, in nanoseconds (sorted ascending).
    pub samples_ns: Vec<u64>,
    /// Allocations this process made over all timed round trips (its send and its receive).
    pub allocs: u64,
}

impl Latency {
    /// The `p`-th percentile (0..=100) in nanoseconds (nearest rank).
    pub fn percentile(&self, p: f64) -> f64 {
        if self.samples_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.samples_ns.len() as f64).ceil() as usize;
        self.samples_ns[rank.clamp(1, self.samples_ns.len()) - 1] as f64
    }

    /// Total time of all samples.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.samples_ns.iter().sum())
    }
}

/// Ping-pong: this process sends message `i`, the peer echoes it, this process receives it
/// and checks it; each round trip is one sample (two clock reads, ~40 ns, included).
/// With `idle = Some(d)` this process sleeps `d` before each ping, so the peer has been idle
/// long enough to go to sleep (futex wait, blocking syscall) and every ping must wake it.
///
/// # Errors
/// Any transport error, a wrong echo, or a failed peer.
pub fn round_trip<T: Transport>(
    size: usize,
    warm: u64,
    n: u64,
    idle: Option<Duration>,
    allocs: AllocProbe,
) -> Result<Latency, BenchError> {
    let deadline = Deadline::measurement();
    let peer = move |end: &mut T::End| {
        for _ in 0..warm + n {
            let seq = T::recv(end, &deadline)?;
            T::send(end, seq, &deadline)?;
        }
        Ok(())
    };
    let mut samples = Vec::with_capacity(n as usize);
    let allocs = with_peer::<T, _>(size, peer, |mine| {
        let mut a = 0;
        for seq in 0..warm + n {
            if let Some(d) = idle {
                std::thread::sleep(d);
            }
            let a0 = allocs();
            let t0 = Instant::now();
            T::send(mine, seq, &deadline)?;
            let back = T::recv(mine, &deadline)?;
            let dt = t0.elapsed();
            if seq >= warm {
                a += allocs() - a0;
                samples.push(dt.as_nanos() as u64);
            }
            expect(back, seq)?;
        }
        Ok(a)
    })?;
    samples.sort_unstable();
    Ok(Latency {
        samples_ns: samples,
        allocs,
    })
}

/// Makes a `size`-byte pair, runs `peer` with one end in the peer ([`Transport::spawn`]) and
/// `mine` with the other here, then drops this end and reaps the peer: `mine`'s error first,
/// then the peer's.
fn with_peer<T: Transport, R>(
    size: usize,
    peer: impl FnOnce(&mut T::End) -> Result<(), BenchError> + Send + 'static,
    mine: impl FnOnce(&mut T::End) -> Result<R, BenchError>,
) -> Result<R, BenchError> {
    let (mut end, theirs) = T::pair(size)?;
    let peer = T::spawn(theirs, peer)?;
    let result = mine(&mut end);
    drop(end);
    let reaped = peer.wait();
    let r = result?;
    reaped?;
    Ok(r)
}

fn expect(got: u64, want: u64) -> Result<(), BenchError> {
    if got == want {
        Ok(())
    } else {
        Err(BenchError::Corrupt(format!(
            "expected message {want}, got {got}"
        )))
    }
}
