//! Allocations per message on the hot path (with a counting allocator supplied by the
//! caller: the report binary installs one as `#[global_allocator]`) and the memory a queue
//! maps.

use std::collections::HashSet;

use crate::BenchError;
use crate::body::AllocProbe;
use crate::transport::{Payload, message_buf, put_seq, slots_for};

/// Messages per allocation-count run (after as many again for warm-up).
pub const ALLOC_MSGS: u64 = 10_000;

/// Allocations per `round` in steady state: [`ALLOC_MSGS`] rounds to warm up, then as many
/// counted by `probe`.
fn steady_allocs(
    probe: AllocProbe,
    mut round: impl FnMut(u64) -> Result<(), BenchError>,
) -> Result<f64, BenchError> {
    for seq in 0..ALLOC_MSGS {
        round(seq)?;
    }
    let a0 = probe();
    for seq in 0..ALLOC_MSGS {
        round(seq)?;
    }
    Ok((probe() - a0) as f64 / ALLOC_MSGS as f64)
}

/// Allocations per `put` + `get` pair on one `Queue<P>` handle, in one thread, steady state.
///
/// # Errors
/// A queue error.
pub fn queue_put_get<P: Payload>(probe: AllocProbe) -> Result<f64, BenchError> {
    let q = crate::mech::mproc_api::queue_for::<P>(slots_for(P::SIZE))?;
    steady_allocs(probe, |seq| {
        q.put(P::with_seq(seq)).map_err(crate::error::api)?;
        let got = q.get().map_err(crate::error::api)?;
        std::hint::black_box(got.seq());
        Ok(())
    })
}

/// Allocations per `send_bytes` + `recv_bytes_into` of `size` bytes over one mproc pipe
/// (one thread sends then receives, so `size` must fit the pipe's ring: at most a few KiB).
///
/// # Errors
/// A pipe error.
pub fn pipe_bytes(size: usize, probe: AllocProbe) -> Result<f64, BenchError> {
    // Bytes only: the message type is never used.
    let (mut a, mut b) = mproc::pipe::<Vec<u8>, Vec<u8>>().map_err(crate::error::api)?;
    let mut buf = message_buf(size);
    let mut out = message_buf(size);
    steady_allocs(probe, |seq| {
        put_seq(&mut buf, seq);
        a.send_bytes(&buf).map_err(crate::error::api)?;
        b.recv_bytes_into(&mut out).map_err(crate::error::api)?;
        Ok(())
    })
}

/// Allocations per typed `send` + `recv` over one mproc `Connection<u64>`.
///
/// # Errors
/// A pipe error.
pub fn pipe_typed_u64(probe: AllocProbe) -> Result<f64, BenchError> {
    let (mut a, mut b) = mproc::pipe::<u64, u64>().map_err(crate::error::api)?;
    steady_allocs(probe, |seq| {
        a.send(&seq).map_err(crate::error::api)?;
        std::hint::black_box(b.recv().map_err(crate::error::api)?);
        Ok(())
    })
}

/// Address ranges mapped by this process now (from `/proc/self/maps`).
fn mappings() -> Result<HashSet<(u64, u64)>, BenchError> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    Ok(maps
        .lines()
        .filter_map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect())
}

/// Bytes of address space that `make` maps (new ranges in `/proc/self/maps` while its
/// result is alive): the shared segment of a queue, its control pages, anything else.
///
/// # Errors
/// `/proc/self/maps` unreadable, or `make` failed.
pub fn mapped_by<T>(make: impl FnOnce() -> Result<T, BenchError>) -> Result<u64, BenchError> {
    let before = mappings()?;
    let obj = make()?;
    let after = mappings()?;
    drop(obj);
    Ok(after.difference(&before).map(|(a, b)| b - a).sum())
}

/// The segment bytes of a `Queue<u64>` with `capacity` slots and `arena` arena bytes
/// (default slot size; a queue needs an arena, and a request below the smallest arena is
/// rounded up to it).
///
/// # Errors
/// As [`mapped_by`].
pub fn queue_bytes(capacity: u32, arena: u64) -> Result<u64, BenchError> {
    mapped_by(|| {
        mproc::Queue::<u64>::builder()
            .capacity(capacity)
            .arena_size(arena)
            .create()
            .map_err(crate::error::api)
    })
}
