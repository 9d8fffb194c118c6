//! Helpers shared by the integration tests (the ordinary ones and the loom models): ids,
//! MPMC rings, shared anonymous memory, bounded fork, killed claimants. (The loom models'
//! outcome-arm counters are mproc-futex's `tests/common/arms.rs`, included by path.)
#![allow(dead_code, unused_imports, unsafe_code, unreachable_pub)]

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use mproc_ring::fault::Killed;
use mproc_ring::{
    LayoutError, MpmcRing, MpmcShape, ParticipantId, RecordRing, RecordShape, SpscRing, SpscShape,
    TryPopError,
};

/// A participant id from a small number (test shorthand).
pub fn id(n: u32) -> ParticipantId {
    ParticipantId::new(n).expect("valid test id")
}

/// A heap-backed MPMC ring of `capacity` slots of `slot_size` bytes.
pub fn mpmc(capacity: u32, slot_size: u32) -> MpmcRing {
    MpmcRing::new(MpmcShape {
        capacity,
        slot_size,
    })
    .unwrap()
}

/// Pops everything left, in order, as participant 20 (after the racing threads joined, so
/// single-threaded and exact).
pub fn drain(r: &MpmcRing) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        match r.try_pop_vec(id(20)) {
            Ok(v) => got.push(v),
            Err(TryPopError::Empty) => return got,
            Err(e) => panic!("drain: {e}"),
        }
    }
}

/// Runs `f` on a handle of its own to `r` (cloned before the spawn), in a loom thread.
#[cfg(mproc_loom)]
pub fn spawn_on<T: Send + 'static>(
    r: &MpmcRing,
    f: impl FnOnce(&MpmcRing) -> T + Send + 'static,
) -> loom::thread::JoinHandle<T> {
    let r = r.clone();
    loom::thread::spawn(move || f(&r))
}

/// Runs `op`, a ring call on a handle whose fault hook calls `fault::kill`, and asserts that
/// it was killed there (unwound with `Killed`); any other panic goes on unwinding.
pub fn expect_killed<T: Debug>(op: impl FnOnce() -> T) {
    match catch_unwind(AssertUnwindSafe(op)) {
        Err(payload) if payload.is::<Killed>() => {}
        Err(payload) => resume_unwind(payload),
        Ok(v) => panic!("the fault hook should have killed this call; it returned {v:?}"),
    }
}

/// Scales an iteration count down in debug builds.
pub const fn scaled(n: u64) -> u64 {
    if cfg!(debug_assertions) { n / 20 } else { n }
}

/// `MAP_SHARED | MAP_ANONYMOUS` memory that survives `fork` as shared (the workspace's one
/// test-helper vocabulary, `mproc-testkit`).
pub use mproc_testkit::SharedMem as Shared;
/// Forks a child that runs `f` and `_exit`s with its return code (101 if it panicked).
pub use mproc_testkit::fork;
/// Waits (bounded) for a child; kills it and panics on timeout. Returns the raw status.
pub use mproc_testkit::wait_status as wait;

/// A ring laid out in place by its `init` in fresh shared test memory of `size` bytes, for
/// tests that read or forge its words or share it with a forked child. (Not under loom,
/// whose rings live on the heap.)
#[cfg(not(mproc_loom))]
fn in_place<S, R>(
    size: Result<usize, LayoutError>,
    init: unsafe fn(std::ptr::NonNull<u8>, usize, S) -> Result<R, LayoutError>,
    shape: S,
) -> (Shared, R) {
    let mem = Shared::new(size.unwrap());
    // SAFETY: a fresh mapping of the required size, used only through this ring.
    let r = unsafe { init(mem.ptr, mem.len, shape) }.unwrap();
    (mem, r)
}

/// An MPMC ring laid out in place in fresh shared test memory (see [`in_place`]).
#[cfg(not(mproc_loom))]
pub fn in_place_mpmc(capacity: u32, slot_size: u32) -> (Shared, MpmcRing) {
    let shape = MpmcShape {
        capacity,
        slot_size,
    };
    in_place(MpmcRing::required_size(shape), MpmcRing::init, shape)
}

/// An SPSC ring laid out in place in fresh shared test memory (see [`in_place`]).
#[cfg(not(mproc_loom))]
pub fn in_place_spsc(capacity: u32, slot_size: u32) -> (Shared, SpscRing) {
    let shape = SpscShape {
        capacity,
        slot_size,
    };
    in_place(SpscRing::required_size(shape), SpscRing::init, shape)
}

/// A record ring of `capacity` bytes laid out in place in fresh shared test memory (see
/// [`in_place`]).
#[cfg(not(mproc_loom))]
pub fn in_place_record(capacity: u32) -> (Shared, RecordRing) {
    let shape = RecordShape { capacity };
    in_place(RecordRing::required_size(shape), RecordRing::init, shape)
}

/// Runs `op` until it succeeds, spinning while `retry` says its error means "try again"
/// (full, empty) and panicking on any other; a retry after `deadline` fails the test.
pub fn spin_until_ok<T, E: std::fmt::Display>(
    deadline: std::time::Instant,
    retry: impl Fn(&E) -> bool,
    mut op: impl FnMut() -> Result<T, E>,
) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if retry(&e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "still \"{e}\" at the deadline"
                );
                std::hint::spin_loop();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Waits and asserts a clean exit with code 0.
pub fn wait_ok(pid: libc::pid_t, timeout: Duration) {
    let status = wait(pid, timeout);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child {pid} failed: status {status:#x}"
    );
}

/// A cheap checksum of a message body.
pub fn checksum(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5_u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(0x0100_0193)
    })
}

/// A message: producer (u32), sequence (u64), padding up to `len`, checksum (u32) at the end.
pub fn make_msg(producer: u32, seq: u64, len: usize, out: &mut Vec<u8>) {
    assert!(len >= 16);
    out.clear();
    out.extend_from_slice(&producer.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    for i in 12..len - 4 {
        out.push((seq as usize + i) as u8);
    }
    let c = checksum(out);
    out.extend_from_slice(&c.to_le_bytes());
}

/// Parses and verifies a message from `make_msg`; returns (producer, seq).
pub fn check_msg(b: &[u8]) -> (u32, u64) {
    assert!(b.len() >= 16, "short message");
    let n = b.len();
    let c = u32::from_le_bytes(b[n - 4..].try_into().unwrap());
    assert_eq!(checksum(&b[..n - 4]), c, "checksum mismatch");
    (
        u32::from_le_bytes(b[..4].try_into().unwrap()),
        u64::from_le_bytes(b[4..12].try_into().unwrap()),
    )
}
