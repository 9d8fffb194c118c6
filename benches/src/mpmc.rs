//! Many producers → many consumers over one `mproc::Queue<u64>`, each a separate process.
//!
//! Consumers start first and block in `get`; producers wait for a shared "go" word, then put
//! `n` items each; the last item of each producer carries a flag, and the consumer that gets
//! it records the time (CLOCK_MONOTONIC, common to all processes). The figure is
//! `P × n / (latest such time − go)`. Afterwards the parent puts one sentinel per consumer.
//!
//! On a 2-core machine, 2→2 and 4→4 run 4 and 8 busy processes on 2 cores: the figures show
//! contention *and* time-slicing (a preempted producer holds no lock, but its peers spin
//! and then sleep), not parallel speed-up.

use std::time::{Duration, Instant};

use crate::deadline::monotonic_ns;
use crate::shm::SharedMap;
use crate::sync::Ordering;
use crate::transport::slots_for;
use crate::{BenchError, Deadline, Peer};

const LAST: u64 = 1 << 47;
const SENTINEL: u64 = u64::MAX;
/// Word offsets (u64 units) in the control mapping.
const GO: usize = 0;
const STAMP: usize = 16; // one u64 per consumer, 16 words apart (own cache lines)
const COUNT: usize = 17;

/// Result of one P→C run.
#[derive(Debug, Clone, Copy)]
pub struct MpmcRun {
    /// Producers.
    pub producers: u32,
    /// Consumers.
    pub consumers: u32,
    /// Items moved.
    pub items: u64,
    /// Time from "go" to the last producer's last item being received.
    pub elapsed: Duration,
}

/// Runs `producers` → `consumers` over one `Queue<u64>`, `n` items per producer.
///
/// # Errors
/// A queue or process error, a lost item, or a stuck child.
pub fn run(producers: u32, consumers: u32, n: u64) -> Result<MpmcRun, BenchError> {
    let map = SharedMap::new(4096)?;
    let ctl = map.words();
    let q = crate::mech::mproc_api::queue_for::<u64>(slots_for(8))?;
    let mut peers = Vec::new();
    for c in 0..consumers as usize {
        peers.push(Peer::process(
            move |(q,): (mproc::Queue<u64>,)| {
                let mut count = 0u64;
                loop {
                    let v = q.get().map_err(crate::error::api)?;
                    if v == SENTINEL {
                        break;
                    }
                    count += 1;
                    if v & LAST != 0 {
                        // Relaxed: read by the parent after reaping this process.
                        ctl.word(STAMP + 32 * c)
                            .fetch_max(monotonic_ns(), Ordering::Relaxed);
                    }
                }
                ctl.word(COUNT + 32 * c).store(count, Ordering::Relaxed);
                Ok(())
            },
            (q.clone(),),
        )?);
    }
    let deadline = Deadline::measurement();
    for p in 0..u64::from(producers) {
        peers.push(Peer::process(
            move |(q,): (mproc::Queue<u64>,)| {
                // Acquire: pairs with the parent's Release store of GO.
                while ctl.word(GO).load(Ordering::Acquire) == 0 {
                    if deadline.passed() {
                        return Err(BenchError::Timeout("go"));
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                for i in 0..n {
                    let flag = if i + 1 == n { LAST } else { 0 };
                    q.put((p << 48) | flag | i).map_err(crate::error::api)?;
                }
                Ok(())
            },
            (q.clone(),),
        )?);
    }
    // Let every child reach its wait, then go.
    std::thread::sleep(Duration::from_millis(20));
    let go = monotonic_ns();
    let t0 = Instant::now();
    // Release: nothing to publish but the go itself.
    ctl.word(GO).store(1, Ordering::Release);
    let mut errors = Vec::new();
    let cons: Vec<Peer> = peers.drain(..consumers as usize).collect();
    for p in peers {
        if let Err(e) = p.wait() {
            errors.push(e);
        }
    }
    for _ in 0..consumers {
        q.put(SENTINEL).map_err(crate::error::api)?;
    }
    for p in cons {
        if let Err(e) = p.wait() {
            errors.push(e);
        }
    }
    if let Some(e) = errors.pop() {
        return Err(e);
    }
    let _ = t0;
    let mut items = 0;
    let mut end = 0;
    for c in 0..consumers as usize {
        items += ctl.word(COUNT + 32 * c).load(Ordering::Relaxed);
        end = end.max(ctl.word(STAMP + 32 * c).load(Ordering::Relaxed));
    }
    let want = u64::from(producers) * n;
    if items != want {
        return Err(BenchError::Corrupt(format!(
            "{items} items received, {want} sent"
        )));
    }
    Ok(MpmcRun {
        producers,
        consumers,
        items,
        elapsed: Duration::from_nanos(end.saturating_sub(go)),
    })
}
