//! A shared counter: several processes increment one `Value<u64>` under its lock, and one
//! `AtomicValue<u64>` without a lock. Both end exact.
//!
//! Python's version of this loses updates when written `v.value += 1` (each read and each
//! write takes the lock separately: 4 processes x 20,000 gave 45,904); the guard returned by
//! `Value::lock` holds the lock across the whole read-modify-write.
//!
//! Run it with `cargo run --release -p mproc --example shared_counter`.

use std::error::Error;
use std::time::Duration;

use mproc::{AtomicValue, Process, Value};

/// Processes that count.
const WORKERS: u64 = 4;
/// Increments per process, of each counter.
const PER_WORKER: u64 = 20_000;

/// Python: `def work(v): for _ in range(n): with v.get_lock(): v.value += 1`.
fn work((locked, atomic): (Value<u64>, AtomicValue<u64>)) {
    for _ in 0..PER_WORKER {
        // The guard derefs to the shared u64 and unlocks when it goes out of scope.
        *locked.lock().expect("lock the counter") += 1;
        // No lock at all: one atomic instruction on shared memory.
        atomic.fetch_add(1);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // Both live in the small-object pool: no descriptor or mapping of their own.
    let locked = Value::new(0u64)?;
    let atomic = AtomicValue::new(0u64)?;

    // Each child gets its own handles (clones) in its arguments, as in Python's
    // `Process(target=work, args=(v,))`.
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let mut p = Process::new(work, (locked.clone(), atomic.clone()));
        p.start()?;
        workers.push(p);
    }
    for p in &workers {
        let status = p
            .join_timeout(Duration::from_secs(60))?
            .ok_or("a worker did not finish")?;
        assert!(status.success(), "worker failed: {status:?}");
    }

    // `get` takes the lock for one read (Python's `v.value`).
    let expected = WORKERS * PER_WORKER;
    let (got_locked, got_atomic) = (locked.get().map_err(|e| e.to_string())?, atomic.load());
    println!("Value<u64> under its lock: {got_locked} (expected {expected})");
    println!("AtomicValue<u64>:          {got_atomic} (expected {expected})");
    assert_eq!((got_locked, got_atomic), (expected, expected));
    Ok(())
}
