//! Helpers shared by the facade's multi-process tests: bounded joins and a page of
//! `MAP_SHARED` memory that forked children see. Each test binary uses a subset.
#![allow(dead_code, unsafe_code)]

use std::ptr::NonNull;
use std::time::Duration;

use mproc::{ExitStatus, Process};

/// The bound on every wait in these tests.
pub(crate) const LONG: Duration = Duration::from_secs(20);

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

/// One zero-filled 4096-byte `MAP_SHARED | MAP_ANONYMOUS` page, never unmapped, shared with
/// every child forked after this call.
pub(crate) fn shared_page() -> NonNull<u8> {
    // SAFETY: a fresh anonymous shared mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    NonNull::new(p.cast()).expect("mmap returned a non-null address")
}
