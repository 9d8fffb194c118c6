//! The workers the storms kill: each is a plain function, registered with
//! [`mproc::entry!`] so that it can be started by fork or by spawn, taking its shared
//! objects, the [`Ledger`] and its slot (and, for producers, its incarnation) as arguments.
//!
//! Every wait a worker makes is bounded (100 ms slices), so that it sees the stop flags.

use std::time::{Duration, Instant};

use mproc::queue::{GetTimeoutError, PutTimeoutError, TryGetError, TryPutError};
use mproc::{BoundedSemaphore, JoinableQueue, Queue, Semaphore};

use crate::ledger::{Item, Ledger, Phase, SEQ_CAP, Word, now_ns};

const SLICE: Duration = Duration::from_millis(100);

/// A tiny per-process xorshift, seeded from the slot and the clock.
struct Rng(u64);

impl Rng {
    fn new(slot: u32) -> Rng {
        Rng((now_ns() ^ (u64::from(slot) << 40)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What producers and consumers need of [`Queue`] and [`JoinableQueue`].
trait Channel {
    fn put_for(&self, item: Item) -> Result<(), PutTimeoutError<Item>>;
    fn get_for(&self) -> Result<Item, GetTimeoutError>;
}

impl Channel for Queue<Item> {
    fn put_for(&self, item: Item) -> Result<(), PutTimeoutError<Item>> {
        self.put_timeout(item, SLICE)
    }
    fn get_for(&self) -> Result<Item, GetTimeoutError> {
        self.get_timeout(SLICE)
    }
}

impl Channel for JoinableQueue<Item> {
    fn put_for(&self, item: Item) -> Result<(), PutTimeoutError<Item>> {
        self.put_timeout(item, SLICE)
    }
    fn get_for(&self) -> Result<Item, GetTimeoutError> {
        self.get_timeout(SLICE)
    }
}

/// What one put attempt came to.
enum Put {
    Done,
    /// Not put (timed out, full): try again with this item.
    Retry(Item),
    Failed,
}

/// What one get attempt came to.
enum Got {
    Item(Item),
    /// Nothing to get (timed out, empty).
    Nothing,
    /// An item that failed to decode.
    Undecodable,
    Failed,
}

/// One blocking `put` of at most a [`SLICE`].
fn put_slice(q: &impl Channel, item: Item) -> Put {
    match q.put_for(item) {
        Ok(()) => Put::Done,
        Err(PutTimeoutError::Timeout(back)) => Put::Retry(back),
        Err(_) => Put::Failed,
    }
}

/// One blocking `get` of at most a [`SLICE`].
fn get_slice(q: &impl Channel) -> Got {
    match q.get_for() {
        Ok(item) => Got::Item(item),
        Err(GetTimeoutError::Timeout) => Got::Nothing,
        Err(GetTimeoutError::Message(_)) => Got::Undecodable,
        Err(_) => Got::Failed,
    }
}

/// Puts items `(inc, 0..SEQ_CAP)` with `put` until told to stop, committing each whose `put`
/// came to [`Put::Done`]; a retried item is put again (it was not put). `pace` runs before
/// each item's first attempt.
fn produce(
    ledger: &Ledger,
    slot: u32,
    inc: u32,
    mut pace: impl FnMut(),
    mut put: impl FnMut(Item) -> Put,
) {
    ledger.phase(slot, Phase::Idle);
    'items: for seq in 0..SEQ_CAP {
        let mut item = ledger.item(inc, seq);
        pace();
        loop {
            if ledger.stopping_producers() {
                break 'items;
            }
            ledger.phase(slot, Phase::Put);
            match put(item) {
                Put::Done => break,
                Put::Retry(back) => item = back,
                Put::Failed => {
                    ledger.add(Word::WorkerErrors, 1);
                    break 'items;
                }
            }
        }
        ledger.commit(inc, seq);
        ledger.phase(slot, Phase::Idle);
    }
    ledger.phase(slot, Phase::Idle);
}

/// Gets items with `get` and records them until told to stop (checked whenever there was
/// nothing to get, before `idle` runs); with `done` (`task_done`), marks each recorded item
/// done.
fn consume(
    ledger: &Ledger,
    slot: u32,
    mut get: impl FnMut() -> Got,
    mut idle: impl FnMut(),
    done: Option<&dyn Fn() -> bool>,
) {
    loop {
        ledger.phase(slot, Phase::Get);
        match get() {
            Got::Item(item) => {
                ledger.phase(slot, Phase::Got);
                ledger.deliver(&item);
                if let Some(done) = done {
                    ledger.phase(slot, Phase::TaskDone);
                    if !done() {
                        ledger.add(Word::WorkerErrors, 1);
                    }
                }
            }
            Got::Nothing => {
                if ledger.stopping_consumers() {
                    break;
                }
                idle();
            }
            Got::Undecodable => ledger.corrupt(u64::MAX - 1),
            Got::Failed => {
                ledger.add(Word::WorkerErrors, 1);
                break;
            }
        }
    }
    ledger.phase(slot, Phase::Idle);
}

/// A `Queue` producer.
pub(crate) fn queue_producer((q, ledger, slot, inc): (Queue<Item>, Ledger, u32, u32)) {
    produce(&ledger, slot, inc, || {}, |item| put_slice(&q, item));
}
mproc::entry!(queue_producer);

/// A `Queue` producer that never blocks: only `put_nowait`, at most `per_ms` items in each
/// millisecond (back to back, then it sleeps to the next one), a short sleep and a retry
/// with the same item on `Full`. It never sleeps inside the queue, so it never runs a
/// sleeper's recovery pass.
pub(crate) fn queue_nowait_producer(
    (q, ledger, slot, inc, per_ms): (Queue<Item>, Ledger, u32, u32, u64),
) {
    const TICK: Duration = Duration::from_millis(1);
    let mut tick = Instant::now();
    let mut in_tick = 0;
    let pace = || {
        if in_tick >= per_ms {
            let now = Instant::now();
            if let Some(rest) = (tick + TICK).checked_duration_since(now) {
                std::thread::sleep(rest);
            }
            tick = Instant::now();
            in_tick = 0;
        }
        in_tick += 1;
    };
    produce(&ledger, slot, inc, pace, |item| match q.put_nowait(item) {
        Ok(()) => Put::Done,
        Err(TryPutError::Full(back)) => {
            ledger.phase(slot, Phase::Idle);
            std::thread::sleep(Duration::from_micros(200));
            Put::Retry(back)
        }
        Err(_) => Put::Failed,
    });
}
mproc::entry!(queue_nowait_producer);

/// A `Queue` consumer that blocks in `get_timeout`.
pub(crate) fn queue_consumer((q, ledger, slot): (Queue<Item>, Ledger, u32)) {
    consume(&ledger, slot, || get_slice(&q), || {}, None);
}
mproc::entry!(queue_consumer);

/// A `Queue` consumer that only ever calls `get_nowait` (and sleeps briefly when empty).
pub(crate) fn queue_poller((q, ledger, slot): (Queue<Item>, Ledger, u32)) {
    let poll = || match q.get_nowait() {
        Ok(item) => Got::Item(item),
        Err(TryGetError::Empty) => {
            ledger.phase(slot, Phase::Idle);
            Got::Nothing
        }
        Err(TryGetError::Message(_)) => Got::Undecodable,
        Err(_) => Got::Failed,
    };
    let pause = || std::thread::sleep(Duration::from_micros(200));
    consume(&ledger, slot, poll, pause, None);
}
mproc::entry!(queue_poller);

/// A `JoinableQueue` producer.
pub(crate) fn joinable_producer((q, ledger, slot, inc): (JoinableQueue<Item>, Ledger, u32, u32)) {
    produce(&ledger, slot, inc, || {}, |item| put_slice(&q, item));
}
mproc::entry!(joinable_producer);

/// A `JoinableQueue` worker: get, record, `task_done`.
pub(crate) fn joinable_worker((q, ledger, slot): (JoinableQueue<Item>, Ledger, u32)) {
    let done = || {
        let ok = q.task_done().is_ok();
        if ok {
            ledger.add(Word::TasksDone, 1);
        }
        ok
    };
    consume(&ledger, slot, || get_slice(&q), || {}, Some(&done));
}
mproc::entry!(joinable_worker);

/// A storm joiner: `join_timeout` in short slices, counting the outcomes.
pub(crate) fn joinable_joiner((q, ledger, slot): (JoinableQueue<Item>, Ledger, u32)) {
    while !ledger.stopping_consumers() {
        ledger.phase(slot, Phase::Join);
        let joined = q.join_timeout(Duration::from_millis(50)).is_ok();
        ledger.phase(slot, Phase::Idle);
        ledger.add(
            if joined {
                Word::JoinTrue
            } else {
                Word::JoinFalse
            },
            1,
        );
    }
}
mproc::entry!(joinable_joiner);

/// The final joiner: one `join_timeout(bound)`, its outcome, time and `died` published.
pub(crate) fn final_joiner((q, ledger, slot, bound_ms): (JoinableQueue<Item>, Ledger, u32, u64)) {
    ledger.phase(slot, Phase::Join);
    let joined = q.join_timeout(Duration::from_millis(bound_ms));
    ledger.set(Word::FinalJoinAt, now_ns());
    if let Ok(j) = &joined {
        ledger.set(Word::FinalJoinDied, j.died);
    }
    ledger.set(Word::FinalJoin, if joined.is_ok() { 2 } else { 1 });
    ledger.phase(slot, Phase::Idle);
}
mproc::entry!(final_joiner);

/// A semaphore holder: acquire (in slices, timing the whole wait), hold a moment, release.
/// Even slots use the `Semaphore`, odd ones the `BoundedSemaphore`.
pub(crate) fn sem_holder((sem, bounded, ledger, slot): (Semaphore, BoundedSemaphore, Ledger, u32)) {
    let mut rng = Rng::new(slot);
    let use_plain = slot % 2 == 0;
    while !ledger.stopping_consumers() {
        ledger.phase(slot, Phase::Acquire);
        let started = now_ns();
        let mut got = false;
        while !got && !ledger.stopping_consumers() {
            got = if use_plain {
                sem.acquire_timeout(SLICE)
            } else {
                bounded.acquire_timeout(SLICE)
            }
            .unwrap_or(false);
        }
        if !got {
            break;
        }
        ledger.max(Word::MaxAcquireNs, now_ns() - started);
        ledger.add(Word::Acquired, 1);
        ledger.phase(slot, Phase::Hold);
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
        ledger.phase(slot, Phase::Release);
        let released = if use_plain {
            sem.release().is_ok()
        } else {
            bounded.release().is_ok()
        };
        if !released {
            ledger.add(Word::ReleaseErrors, 1);
        }
        ledger.phase(slot, Phase::Idle);
        std::thread::sleep(Duration::from_micros(rng.below(500)));
    }
    ledger.phase(slot, Phase::Idle);
}
mproc::entry!(sem_holder);
