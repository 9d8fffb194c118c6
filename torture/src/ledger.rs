//! The ledger: one anonymous shared segment of `u64` words that every worker of a scenario
//! writes and the supervisor reads. It survives any worker's death (it is only ever written
//! with single atomic instructions), so after a storm it tells exactly what was committed,
//! delivered, duplicated or corrupted, and where each kill landed.
//!
//! Layout (word indices):
//!
//! | words | what |
//! |---|---|
//! | `0..64` | counters and flags ([`Word`]) |
//! | `64..64+MAX_WORKERS` | per worker slot: its phase ([`Phase`]) and since when, `since_ns << 8 \| phase` |
//! | then `MAX_INCARNATIONS` | per producer incarnation: how many of its items a `put` returned `Ok` for |
//! | then the bitmap | one bit per item id `(incarnation, seq)`: set by the consumer that got it |
#![allow(clippy::disallowed_types)] // a dev tool over real shared memory: no loom shim here

use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mproc::handle::{Exporter, Importer, PassError, Passable};
use mproc_shm::{Segment, SegmentOptions};

/// Worker slots per scenario (producers, consumers, joiners, holders).
pub(crate) const MAX_WORKERS: usize = 64;
/// Producer incarnations per scenario (each start of a producer is a fresh one).
pub(crate) const MAX_INCARNATIONS: usize = 4096;
/// Items one producer incarnation puts before it retires (and is replaced).
pub(crate) const SEQ_CAP: u64 = 1 << 16;

const FINGERPRINT: u64 = 0x746f_7274_7572_6531; // "torture1"
const PHASES: usize = 64;
const COMMITTED: usize = PHASES + MAX_WORKERS;
const BITMAP: usize = COMMITTED + MAX_INCARNATIONS;
const WORDS: usize = BITMAP + MAX_INCARNATIONS * (SEQ_CAP as usize) / 64;

/// The counter and flag words.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Word {
    /// Non-zero: producers finish their current put and exit.
    StopProducers = 0,
    /// Non-zero: consumers, joiners and holders exit.
    StopConsumers,
    /// Items received and recorded (duplicates and corrupt ones included).
    Delivered,
    /// Items whose bit was already set.
    Duplicates,
    /// Items that failed the checksum, had an impossible id, or failed to decode.
    Corrupt,
    /// `task_done` calls that returned `Ok`.
    TasksDone,
    /// Smallest payload, in bytes.
    PayloadMin,
    /// Payload sizes vary over `PayloadMin..=PayloadMin+PayloadSpan`.
    PayloadSpan,
    /// Longest completed semaphore acquire, in nanoseconds.
    MaxAcquireNs,
    /// Semaphore releases that failed (a `BoundedSemaphore` over-release).
    ReleaseErrors,
    /// `join_timeout` calls of the storm joiners that returned `true`.
    JoinTrue,
    /// ... and `false`.
    JoinFalse,
    /// First duplicate id + 1 (0: none).
    FirstDuplicate,
    /// First corrupt id + 1 (0: none).
    FirstCorrupt,
    /// Unexpected API errors in workers (`Closed`, `Disconnected` while the supervisor holds
    /// a handle, a failed `task_done`).
    WorkerErrors,
    /// The final joiner: 0 still waiting, 1 returned `false`, 2 returned `true`.
    FinalJoin,
    /// ... when it returned (monotonic ns).
    FinalJoinAt,
    /// ... the tasks it reported died with their workers (`Joined::died`).
    FinalJoinDied,
    /// Semaphore acquires that succeeded.
    Acquired,
}

/// What a worker is doing, published before and after each operation so that the
/// supervisor can tell where a kill landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Starting = 0,
    Idle,
    Put,
    /// In `get`/`get_nowait` (a kill here loses at most the item it claimed, counted in
    /// `lost()` but for the documented window after the slot's release).
    Get,
    /// Between a recorded delivery and the end of `task_done` (the task dies with it).
    TaskDone,
    Join,
    Acquire,
    Hold,
    Release,
    /// `get` returned an item, not yet recorded: a kill here loses it uncounted (the item
    /// had already left the queue).
    Got,
}

impl Phase {
    pub(crate) const ALL: [Phase; 10] = [
        Phase::Starting,
        Phase::Idle,
        Phase::Put,
        Phase::Get,
        Phase::TaskDone,
        Phase::Join,
        Phase::Acquire,
        Phase::Hold,
        Phase::Release,
        Phase::Got,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Idle => "idle",
            Phase::Put => "put",
            Phase::Get => "get",
            Phase::TaskDone => "task_done",
            Phase::Join => "join",
            Phase::Acquire => "acquire",
            Phase::Hold => "hold",
            Phase::Release => "release",
            Phase::Got => "got (unrecorded)",
        }
    }

    fn from_bits(bits: u64) -> Phase {
        Phase::ALL
            .get((bits & 0xff) as usize)
            .copied()
            .unwrap_or(Phase::Idle)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A handle to one scenario's ledger; clones share it, and it passes to children by fork
/// (the mapping is inherited) or spawn (the memfd is).
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    seg: Arc<Segment>,
}

impl Ledger {
    /// A fresh, zeroed ledger whose items have payloads of `min..=min+span` bytes.
    pub(crate) fn create(payload_min: u64, payload_span: u64) -> Result<Ledger, String> {
        let seg = SegmentOptions::new()
            .len((WORDS * 8) as u64)
            .fingerprint(FINGERPRINT)
            .create_anonymous()
            .map_err(|e| format!("ledger segment: {e}"))?;
        let ledger = Ledger::from_segment(seg)?;
        ledger.set(Word::PayloadMin, payload_min);
        ledger.set(Word::PayloadSpan, payload_span);
        Ok(ledger)
    }

    fn from_segment(seg: Segment) -> Result<Ledger, String> {
        let region = seg.region();
        if region.len() < WORDS * 8 || !(region.as_ptr().as_ptr() as usize).is_multiple_of(8) {
            return Err(format!("ledger segment too small: {} bytes", region.len()));
        }
        Ok(Ledger { seg: Arc::new(seg) })
    }

    fn at(&self, index: usize) -> &AtomicU64 {
        assert!(index < WORDS, "ledger word {index} out of range");
        // SAFETY: the region holds at least WORDS 8-aligned words (checked in
        // `from_segment`) and stays mapped while `self.seg` lives; AtomicU64 is valid for
        // any bits, and every process only ever accesses these words atomically.
        unsafe {
            &*self
                .seg
                .region()
                .as_ptr()
                .as_ptr()
                .cast::<AtomicU64>()
                .add(index)
        }
    }

    pub(crate) fn get(&self, word: Word) -> u64 {
        self.at(word as usize).load(Ordering::SeqCst)
    }

    pub(crate) fn set(&self, word: Word, value: u64) {
        self.at(word as usize).store(value, Ordering::SeqCst);
    }

    pub(crate) fn add(&self, word: Word, value: u64) -> u64 {
        self.at(word as usize).fetch_add(value, Ordering::SeqCst)
    }

    pub(crate) fn max(&self, word: Word, value: u64) {
        self.at(word as usize).fetch_max(value, Ordering::SeqCst);
    }

    pub(crate) fn stopping_producers(&self) -> bool {
        self.get(Word::StopProducers) != 0
    }

    pub(crate) fn stopping_consumers(&self) -> bool {
        self.get(Word::StopConsumers) != 0
    }

    /// Publishes worker `slot`'s phase, stamped with the time.
    pub(crate) fn phase(&self, slot: u32, phase: Phase) {
        self.at(PHASES + slot as usize)
            .store((now_ns() << 8) | phase as u64, Ordering::SeqCst);
    }

    /// Worker `slot`'s phase and since when (monotonic ns).
    pub(crate) fn phase_of(&self, slot: u32) -> (Phase, u64) {
        let bits = self.at(PHASES + slot as usize).load(Ordering::SeqCst);
        (Phase::from_bits(bits), bits >> 8)
    }

    /// Records that `put` returned `Ok` for items `0..=seq` of incarnation `inc`.
    pub(crate) fn commit(&self, inc: u32, seq: u64) {
        self.at(COMMITTED + inc as usize)
            .store(seq + 1, Ordering::SeqCst);
    }

    pub(crate) fn committed(&self, inc: u32) -> u64 {
        self.at(COMMITTED + inc as usize).load(Ordering::SeqCst)
    }

    /// Records one received item: checks its id, payload and checksum, sets its bit, and
    /// counts it as delivered, duplicate or corrupt.
    pub(crate) fn deliver(&self, item: &Item) {
        let (id, check, payload) = item;
        let (inc, seq) = split(*id);
        let sound = (inc as usize) < MAX_INCARNATIONS
            && seq < SEQ_CAP
            && *check == checksum(*id, payload)
            && *payload == self.payload(*id);
        self.add(Word::Delivered, 1);
        if !sound {
            self.corrupt(*id);
            return;
        }
        let bit = inc as usize * SEQ_CAP as usize + seq as usize;
        let mask = 1u64 << (bit % 64);
        if self.at(BITMAP + bit / 64).fetch_or(mask, Ordering::SeqCst) & mask != 0 {
            self.add(Word::Duplicates, 1);
            let _ = self.at(Word::FirstDuplicate as usize).compare_exchange(
                0,
                id + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// Counts a corrupt item (or a decode failure, `id` 0).
    pub(crate) fn corrupt(&self, id: u64) {
        self.add(Word::Corrupt, 1);
        let _ = self.at(Word::FirstCorrupt as usize).compare_exchange(
            0,
            id + 1,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Items `0..committed(inc)` of incarnation `inc` whose bit is not set.
    pub(crate) fn undelivered(&self, inc: u32) -> u64 {
        let committed = self.committed(inc).min(SEQ_CAP);
        let base = inc as usize * SEQ_CAP as usize;
        let mut missing = 0;
        for seq in 0..committed as usize {
            let bit = base + seq;
            // Relaxed: read by the supervisor after every worker was reaped (`waitpid`
            // orders their writes before this read); nothing else is read through it.
            if self.at(BITMAP + bit / 64).load(Ordering::Relaxed) & (1 << (bit % 64)) == 0 {
                missing += 1;
            }
        }
        missing
    }

    /// The item with id `(inc, seq)`.
    pub(crate) fn item(&self, inc: u32, seq: u64) -> Item {
        let id = (u64::from(inc) << 32) | seq;
        let payload = self.payload(id);
        (id, checksum(id, &payload), payload)
    }

    fn payload(&self, id: u64) -> Vec<u8> {
        let min = self.get(Word::PayloadMin);
        let span = self.get(Word::PayloadSpan);
        let len = min + mix(id ^ 0x5bd1_e995) % (span + 1);
        let mut x = mix(id) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }
}

/// A queued item: `(id, checksum, payload)`; `id = incarnation << 32 | seq`.
pub(crate) type Item = (u64, u64, Vec<u8>);

fn split(id: u64) -> (u32, u64) {
    ((id >> 32) as u32, id & 0xffff_ffff)
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn checksum(id: u64, payload: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64; // FNV-1a
    for &b in payload {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ mix(id)
}

impl Passable for Ledger {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        let index = out.fd(self.seg.as_fd())?;
        out.value(&index)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let index: u32 = input.value()?;
        let fd = input.take_fd(index)?;
        let seg = Segment::from_fd(fd, FINGERPRINT).map_err(|e| PassError::Custom(e.into()))?;
        Ledger::from_segment(seg).map_err(|e| PassError::Custom(e.into()))
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        // A forked child inherits the shared mapping itself: nothing to register.
        Ok(())
    }
}
