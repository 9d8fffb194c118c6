//! Helpers shared by the facade's multi-process tests: bounded joins, a child that dies
//! holding something, bounded pipe reads, a page of `MAP_SHARED` memory (and atomic words in
//! it) that forked children see, and a second mapping of a named object's file for tests
//! that play a corrupt peer. Each test binary uses a subset.
// `disallowed_types`: `SharedWords` holds std atomics in memory shared with forked
// children (the loom shim is for the crate's own models, not for test processes).
#![allow(
    dead_code,
    unused_macros,
    unused_imports,
    unsafe_code,
    clippy::disallowed_types
)]

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use mproc::handle::Args;
use mproc::sync::AcquireError;
use mproc::{Event, ExitStatus, Passable, Process};

/// The bound on every wait in these tests.
pub(crate) const LONG: Duration = Duration::from_secs(20);

/// The guard an `OwnerDied` acquisition carries (held, poisoned); panics, naming what came
/// instead, on any other outcome.
pub(crate) fn owner_died<G: std::fmt::Debug>(acquired: Result<G, AcquireError<G>>) -> G {
    match acquired {
        Err(AcquireError::OwnerDied(guard)) => guard,
        other => panic!("expected OwnerDied, got {other:?}"),
    }
}

/// Joins `p` within [`LONG`]; kills the child and fails the test if it does not finish in
/// time.
pub(crate) fn join(p: &Process) -> ExitStatus {
    match p.join_timeout(LONG).expect("join") {
        Some(status) => status,
        None => {
            let _ = p.kill();
            let _ = p.join_timeout(LONG);
            panic!("the child {:?} did not finish in time (killed)", p.pid());
        }
    }
}

/// [`join`], then Python's `exitcode`.
pub(crate) fn exit_code(p: &Process) -> i32 {
    join(p).exitcode()
}

/// [`join`], and the child must have succeeded.
pub(crate) fn join_ok(p: &Process) {
    let status = join(p);
    assert!(status.success(), "child failed: {status:?}");
}

/// A pipe (`O_CLOEXEC` both ends): (read end, write end).
pub(crate) fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Reads a pipe to EOF; fails the test if it is not closed within `limit`.
pub(crate) fn read_to_end(fd: OwnedFd, limit: Duration) -> Vec<u8> {
    read_up_to(fd, usize::MAX, limit)
}

/// Reads a pipe to EOF or until `max` bytes have come; fails the test if neither happens
/// within `limit`.
pub(crate) fn read_up_to(fd: OwnedFd, max: usize, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "pipe not closed in time; got {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return out;
        }
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
            if out.len() >= max {
                return out;
            }
        }
    }
}

/// Loop counts of the "every increment counted" tests: enough to lose updates without the
/// lock, small enough for a debug build.
pub(crate) const INCREMENTS_PER_CHILD: u64 = if cfg!(debug_assertions) {
    2_000
} else {
    20_000
};

/// Starts `n` children (fork), each running `body` on its own copy of `args`.
pub(crate) fn start_children<A, F>(n: usize, args: A, body: F) -> Vec<Process>
where
    A: Args + Clone,
    F: FnOnce(A) + Clone + Send + 'static,
{
    (0..n)
        .map(|_| {
            let mut p = Process::new(body.clone(), args.clone());
            p.start().unwrap();
            p
        })
        .collect()
}

/// [`join_ok`] for every child.
pub(crate) fn join_all_ok(children: &[Process]) {
    for p in children {
        join_ok(p);
    }
}

/// Starts a child (fork) that runs `body` with its copy of `handle` and an event to set
/// when the parent may go on; returns once it is set (within [`LONG`]).
pub(crate) fn start_until_ready<H>(
    handle: &H,
    body: impl FnOnce(H, Event) + Send + 'static,
) -> Process
where
    H: Passable + Clone + Send + 'static,
{
    let ready = Event::new().unwrap();
    let mut p = Process::new(
        move |(handle, ready): (H, Event)| body(handle, ready),
        (handle.clone(), ready.clone()),
    );
    p.start().unwrap();
    assert!(ready.wait_timeout(LONG), "the child never got ready");
    p
}

/// Starts a child (fork) that runs `doomed` on its copy of `handle` — taking whatever must
/// be held or half done when it dies — then tells the parent and sleeps until killed.
/// Returns once the child has told (within [`LONG`]); [`kill_and_reap`] finishes it.
pub(crate) fn start_doomed<H>(handle: &H, doomed: impl FnOnce(&H) + Send + 'static) -> Process
where
    H: Passable + Clone + Send + 'static,
{
    start_until_ready(handle, |handle, ready| {
        doomed(&handle);
        ready.set();
        std::thread::sleep(Duration::from_secs(60));
    })
}

/// SIGKILLs `p` and reaps it (within [`LONG`]): it must have died of the signal.
pub(crate) fn kill_and_reap(p: &Process) {
    p.kill().unwrap();
    assert_eq!(exit_code(p), -9);
}

/// One zero-filled 4096-byte `MAP_SHARED | MAP_ANONYMOUS` page, never unmapped, shared with
/// every child forked after this call.
pub(crate) fn shared_page() -> NonNull<u8> {
    mproc_testkit::SharedMem::new(4096).leak()
}

/// `AtomicU32`s in a [`shared_page`] (1024 of them, zero at first), shared with every
/// child forked after it is made.
#[derive(Clone, Copy)]
pub(crate) struct SharedWords(NonNull<AtomicU32>);

// SAFETY: the page is shared memory accessed only through atomics.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    pub(crate) fn new() -> SharedWords {
        SharedWords(shared_page().cast())
    }

    /// Word `i` (below 1024).
    pub(crate) fn get(&self, i: usize) -> &AtomicU32 {
        assert!(i < 1024);
        // SAFETY: the page holds 1024 zero-initialised words and is never unmapped.
        unsafe { self.0.add(i).as_ref() }
    }
}

/// A shared, writable second mapping of a named object's file.
pub(crate) struct Mapping {
    ptr: NonNull<u64>,
    words: usize,
}

impl Mapping {
    /// Maps `/dev/shm/mproc.<name>` (a named object's file) a second time.
    pub(crate) fn open(name: &str) -> Mapping {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm/mproc.{name}"))
            .expect("open the queue's shm file");
        let len = file.metadata().unwrap().len() as usize;
        // SAFETY: a fresh shared mapping of the whole file; nothing else aliases it as Rust
        // memory, and the file outlives the call (the mapping keeps its pages).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        Mapping {
            ptr: NonNull::new(p.cast()).unwrap(),
            words: len / 8,
        }
    }

    /// Every aligned `u64` of the file, read volatile.
    pub(crate) fn snapshot(&self) -> Vec<u64> {
        // SAFETY: `i < words`, inside the mapping; volatile reads of memory the queue's
        // atomics write (this thread is between queue calls, so nothing races).
        (0..self.words)
            .map(|i| unsafe { self.ptr.as_ptr().add(i).read_volatile() })
            .collect()
    }

    /// Writes word `i` (volatile): a test playing a corrupt or hostile peer.
    pub(crate) fn write(&self, i: usize, v: u64) {
        assert!(i < self.words);
        // SAFETY: in bounds (checked); the ring treats these words as untrusted.
        unsafe { self.ptr.as_ptr().add(i).write_volatile(v) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.words * 8) };
    }
}

/// One test per start method over a body that takes the method: `each_start_method! {
/// check_value_parity => value_parity_with_python }` makes the tests
/// `value_parity_with_python::fork` and `value_parity_with_python::spawn`.
macro_rules! each_start_method {
    ($($body:ident => $name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn fork() {
                    super::$body(mproc::StartMethod::Fork);
                }

                #[test]
                fn spawn() {
                    super::$body(mproc::StartMethod::Spawn);
                }
            }
        )+
    };
}
pub(crate) use each_start_method;
