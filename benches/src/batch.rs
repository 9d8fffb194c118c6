//! Batch throughput of `mproc::Queue<u64>` across two processes: the peer puts with
//! `put_many` in batches of [`BATCH`], this process takes with `get_many` (up to
//! [`BATCH`] at a time) and checks every sequence number. Compared in the report against
//! the naive shared-memory ring's 8-byte one-way throughput (the "within 2×").

use std::time::Instant;

use crate::mech::queue_for;
use crate::transport::slots_for;
use crate::{BenchError, Peer};

/// Items per `put_many` / most per `get_many`.
pub const BATCH: u64 = 64;

/// Messages per second over the last `n` of `warm + n` items.
///
/// # Errors
/// A queue error, an out-of-order item, or a failed peer.
pub fn queue_batch_throughput(warm: u64, n: u64) -> Result<f64, BenchError> {
    let q = queue_for::<u64>(slots_for(8))?;
    let total = warm + n;
    let peer = Peer::process(
        move |(q,): (mproc::Queue<u64>,)| {
            let mut next = 0;
            while next < total {
                let end = (next + BATCH).min(total);
                q.put_many(next..end).map_err(crate::error::api)?;
                next = end;
            }
            Ok(())
        },
        (q.clone(),),
    )?;
    let result = (|| -> Result<f64, BenchError> {
        let mut out = Vec::with_capacity(BATCH as usize);
        let mut expect = 0u64;
        let mut start = None;
        while expect < total {
            if start.is_none() && expect >= warm {
                start = Some(Instant::now());
            }
            out.clear();
            q.get_many(&mut out, BATCH as usize)
                .map_err(crate::error::api)?;
            for &v in &out {
                if v != expect {
                    return Err(BenchError::Corrupt(format!(
                        "expected message {expect}, got {v}"
                    )));
                }
                expect += 1;
            }
        }
        let t = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        Ok(n as f64 / t.max(1e-9))
    })();
    drop(q);
    let reaped = peer.wait();
    let r = result?;
    reaped?;
    Ok(r)
}
