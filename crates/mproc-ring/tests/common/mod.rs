//! Helpers shared by the integration tests (the ordinary ones and the loom models): ids,
//! MPMC rings, shared anonymous memory, bounded fork, killed claimants. (The loom models'
//! outcome-arm counters are mproc-futex's `tests/common/arms.rs`, included by path.)
#![allow(dead_code, unsafe_code, unreachable_pub)]

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use mproc_ring::fault::Killed;
use mproc_ring::{MpmcRing, MpmcShape, ParticipantId, TryPopError};

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

/// `MAP_SHARED | MAP_ANONYMOUS` memory that survives `fork` as shared.
pub struct Shared {
    pub ptr: NonNull<u8>,
    pub len: usize,
}

impl Shared {
    pub fn new(len: usize) -> Shared {
        // SAFETY: anonymous mapping, no fd; checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap failed");
        Shared {
            ptr: NonNull::new(p.cast()).expect("non-null mapping"),
            len,
        }
    }
}

impl Shared {
    /// The memory as 8-byte words, read now (between ring calls, on one thread).
    pub fn words(&self) -> Vec<u64> {
        (0..self.len / 8).map(|i| self.word(i)).collect()
    }

    /// 8-byte word `i`, read now.
    pub fn word(&self, i: usize) -> u64 {
        assert!(i < self.len / 8, "word {i} outside the mapping");
        // SAFETY: in bounds (checked above) and 8-aligned (the mapping is page-aligned);
        // the ring's words are atomics another process may write, so read volatile.
        unsafe { self.ptr.as_ptr().cast::<u64>().add(i).read_volatile() }
    }

    /// The address of 8-byte word `i`, for a test that forges it.
    pub fn word_ptr(&self, i: usize) -> *mut u64 {
        assert!(i < self.len / 8, "word {i} outside the mapping");
        // SAFETY: in bounds (checked above).
        unsafe { self.ptr.as_ptr().cast::<u64>().add(i) }
    }
}

/// An MPMC ring laid out in place in fresh shared test memory, for tests that read or
/// forge its words. (Not under loom, whose rings live on the heap.)
#[cfg(not(mproc_loom))]
pub fn in_place_mpmc(capacity: u32, slot_size: u32) -> (Shared, MpmcRing) {
    let shape = MpmcShape {
        capacity,
        slot_size,
    };
    let mem = Shared::new(MpmcRing::required_size(shape).unwrap());
    // SAFETY: a fresh mapping of the required size, used only through this ring.
    let r = unsafe { MpmcRing::init(mem.ptr, mem.len, shape) }.unwrap();
    (mem, r)
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; errors ignored (nothing to do about them).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Forks a child that runs `f` and `_exit`s with its return code (never returns into the
/// test harness); a panic in the child exits with 101.
pub fn fork(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `f` and `_exit`s; tests keep `f` simple (no locks held by
    // other threads are needed: the rings are lock-free and memory is pre-mapped).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child without running the harness's destructors.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for `pid` until `deadline`; kills it and panics on timeout. Returns the raw status.
pub fn wait(pid: libc::pid_t, timeout: Duration) -> i32 {
    let end = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        assert!(r == 0, "waitpid failed");
        if Instant::now() > end {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child {pid} timed out");
        }
        std::thread::sleep(Duration::from_millis(2));
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
