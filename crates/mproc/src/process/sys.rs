//! Thin, checked wrappers over the system calls process management needs.
//!
//! Every function here returns `io::Error` with the errno kept. Functions documented as
//! *async-signal-safe* only make raw system calls (no allocation, no locks), so they may
//! run in a `pre_exec` closure or in a child forked from a multithreaded parent.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::status::ExitStatus;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `pipe2(O_CLOEXEC)`: returns `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a valid, writable array of two ints, as pipe2(2) requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `pidfd_open(pid, 0)`: a descriptor that becomes readable when `pid` exits.
///
/// Race-free for our own unreaped children: the pid cannot be reused before we reap it.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Sends `sig` to our child: through its pidfd when we have one, else by pid.
///
/// The caller guarantees the child is not yet reaped (so `pid` still names it).
pub(crate) fn send_signal(
    pid: libc::pid_t,
    pidfd: Option<BorrowedFd<'_>>,
    sig: libc::c_int,
) -> io::Result<()> {
    if let Some(fd) = pidfd {
        // SAFETY: pidfd_send_signal(fd, sig, NULL, 0) passes no memory besides a null siginfo.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0 as libc::c_uint,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
    }
    // SAFETY: kill(2) takes plain integers.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `waitpid(pid, WNOHANG)`: `Ok(None)` while the child runs, its status once it ended.
pub(crate) fn try_wait(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match ret {
            0 => return Ok(None),
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            _ => return Ok(Some(ExitStatus::from_wait_status(status))),
        }
    }
}

/// What to poll for: one descriptor and whether it became readable (or hung up).
pub(crate) struct PollFd<'a> {
    pub(crate) fd: BorrowedFd<'a>,
    pub(crate) ready: bool,
}

/// `poll(2)` for readability on `fds` until one is ready or `deadline` passes (`None`: no
/// deadline). Retries `EINTR` against the same absolute deadline. Returns whether any fd is
/// ready.
pub(crate) fn poll_readable(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> io::Result<bool> {
    let mut raw: Vec<libc::pollfd> = fds
        .iter()
        .map(|p| libc::pollfd {
            fd: p.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we never wake before the deadline and spin.
                let ms = left.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `raw` is a valid array of `raw.len()` pollfd structs.
        let ret = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, timeout_ms) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        for (p, r) in fds.iter_mut().zip(&raw) {
            p.ready = r.revents != 0;
        }
        return Ok(ret > 0);
    }
}

/// Result of [`fork`].
pub(crate) enum Forked {
    /// We are the child.
    Child,
    /// We are the parent; this is the child's pid.
    Parent(libc::pid_t),
}

/// `fork(2)` (glibc's, so `pthread_atfork` handlers run).
///
/// # Safety
///
/// In the child only the calling thread exists; the caller must keep the child to what is
/// sound there (in a multithreaded parent, strictly async-signal-safe calls; in practice the
/// same bargain Python's fork start method makes) and must leave it with [`exit_now`].
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: delegated to the caller (see `# Safety`).
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// `_exit(code)`: leaves at once, without running atexit handlers or unwinding into the
/// caller's stack (which, in a forked child, belongs to the parent's logic).
/// Async-signal-safe.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Async-signal-safe. `prctl(PR_SET_PDEATHSIG, SIGKILL)`, then the race check: if the parent
/// already died (we were re-parented), returns `false`.
pub(crate) fn die_with_parent(parent: libc::pid_t) -> bool {
    // SAFETY: prctl with integer arguments only.
    let ok = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } == 0;
    // SAFETY: getppid has no preconditions.
    ok && unsafe { libc::getppid() } == parent
}

/// `getpid()`.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// `getppid()`.
pub(crate) fn getppid() -> libc::pid_t {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// Replaces fd 0 with `/dev/null`, as Python's child bootstrap does. Best effort.
pub(crate) fn stdin_to_devnull() {
    // SAFETY: the path is a NUL-terminated literal; open/dup2/close take integers.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::dup2(fd, 0);
            if fd != 0 {
                libc::close(fd);
            }
        }
    }
}

/// Async-signal-safe. Marks every descriptor `>= first` close-on-exec
/// (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`, Linux 5.11). Returns `false` where the
/// kernel lacks it, in which case only descriptors opened with `O_CLOEXEC` close at exec.
pub(crate) fn cloexec_from(first: RawFd) -> bool {
    // SAFETY: close_range takes integers only; with CLOSE_RANGE_CLOEXEC it closes nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    ret == 0
}

/// Async-signal-safe. Clears `FD_CLOEXEC` on `fd`, so it survives `exec`.
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an integer descriptor; an invalid one yields EBADF.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Whether `fd` is an open descriptor in this process.
pub(crate) fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: fcntl(F_GETFD) only inspects the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// `write(2)` until all of `bytes` is written, retrying `EINTR`.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable slice of `bytes.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// `fcntl(F_DUPFD_CLOEXEC, 3)`: a private duplicate of `fd`, never one of 0..=2.
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a borrowed (hence open) descriptor.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: fcntl returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `memfd_create(name, MFD_CLOEXEC)`.
pub(crate) fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; flags are plain bits.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes ownership of a descriptor number handed to us by our parent.
///
/// # Safety
///
/// `fd` must be open and owned by nobody else in this process (the spawn protocol hands each
/// number to exactly one importer).
pub(crate) unsafe fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: delegated to the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `pthread_atfork(NULL, NULL, child)`.
pub(crate) fn atfork_child(child: extern "C" fn()) -> io::Result<()> {
    // SAFETY: the handler is a plain `extern "C" fn` with static lifetime.
    let ret = unsafe { libc::pthread_atfork(None, None, Some(child)) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// `atexit(handler)`: `handler` runs when the process calls `exit(3)` (returning from
/// `main`, `std::process::exit`), not on `_exit` or a signal.
pub(crate) fn at_exit(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: the handler is a plain `extern "C" fn` with static lifetime.
    if unsafe { libc::atexit(handler) } == 0 {
        Ok(())
    } else {
        Err(io::Error::other("atexit: no room for another handler"))
    }
}

/// Sleeps for `d` (used only by the no-pidfd fallback's bounded backoff).
pub(crate) fn nap(d: Duration) {
    std::thread::sleep(d);
}
