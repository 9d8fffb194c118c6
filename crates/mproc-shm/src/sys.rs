//! Thin, errno-keeping wrappers over the Linux calls this crate makes.
//!
//! Each function is one system call (or a short fixed sequence), returns `io::Result`, and
//! keeps the errno. Nothing here knows about segments or headers.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries a call while it fails with `EINTR`.
fn cvt_eintr(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn owned(fd: libc::c_int) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: `fd` was just returned by a successful open-like call in this module, so it
    // is a valid descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
pub(crate) fn memfd_create(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    Ok(owned(fd))
}

/// `open(path, flags | O_CLOEXEC, mode)`.
pub(crate) fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let fd = cvt_eintr(|| {
        // SAFETY: `path` is a valid NUL-terminated string; `open` reads it only.
        unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) }
    })?;
    Ok(owned(fd))
}

/// `unlink(path)`.
pub(crate) fn unlink(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    cvt(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// `ftruncate(fd, len)`.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain syscall on a borrowed, open descriptor.
    cvt_eintr(|| unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// `fchmod(fd, mode)`.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: plain syscall on a borrowed, open descriptor.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// What this crate needs from `fstat`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) len: u64,
    pub(crate) is_regular: bool,
    /// Which file this is: `(st_dev, st_ino)`.
    pub(crate) id: FileId,
}

/// A file's identity, `(st_dev, st_ino)`: two names or descriptors with equal ids are the
/// same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        len: u64::try_from(st.st_size).unwrap_or(0),
        is_regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
        id: FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        },
    }
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable `struct stat`; the kernel fills it on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: `fstat` succeeded, so it initialised `st`.
    Ok(stat_of(&unsafe { st.assume_init() }))
}

/// `lstat(path)`: the file the name refers to now (a symbolic link itself, not its target).
pub(crate) fn lstat(path: &CStr) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated; `st` is a writable `struct stat` the kernel fills.
    cvt(unsafe { libc::lstat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: `lstat` succeeded, so it initialised `st`.
    Ok(stat_of(&unsafe { st.assume_init() }))
}

/// `pread(fd, buf, offset)`: how many bytes were read (fewer at the end of the file).
pub(crate) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Adds `seals` (`F_ADD_SEALS`).
pub(crate) fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: plain fcntl on a borrowed, open descriptor.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// `F_GET_SEALS`; `None` if the file does not support sealing (not a memfd).
pub(crate) fn get_seals(fd: BorrowedFd<'_>) -> io::Result<Option<libc::c_int>> {
    // SAFETY: plain fcntl on a borrowed, open descriptor.
    match cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) }) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens a second, independent open file description of the file behind `fd`, by
/// re-opening `/proc/self/fd/N` (read-write, close-on-exec). Works for memfds and for
/// unlinked files alike.
pub(crate) fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
    let path = CStr::from_bytes_with_nul(path.as_bytes()).expect("no interior NUL in a number");
    open(path, libc::O_RDWR, 0)
}

/// `dup(fd)` with close-on-exec set.
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

fn flock_for(byte: u64, kind: libc::c_short) -> io::Result<libc::flock> {
    let start =
        libc::off_t::try_from(byte).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `flock` is plain old data; all-zero is a valid value (and `l_pid` must be 0
    // for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = 1;
    Ok(fl)
}

/// Tries to take an OFD write lock on byte `byte` (`F_OFD_SETLK`). `Ok(false)` if another
/// open file description holds a conflicting lock.
pub(crate) fn ofd_try_lock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    ofd_try(fd, byte, libc::F_WRLCK as libc::c_short)
}

/// Tries to take an OFD *read* (shared) lock on byte `byte`: works through a read-only
/// descriptor, and conflicts only with write locks. `Ok(false)` if another open file
/// description holds a write lock there.
pub(crate) fn ofd_try_read_lock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    ofd_try(fd, byte, libc::F_RDLCK as libc::c_short)
}

/// Releases this open file description's lock on byte `byte` (no-op if it holds none).
pub(crate) fn ofd_unlock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    ofd_try(fd, byte, libc::F_UNLCK as libc::c_short).map(drop)
}

fn ofd_try(fd: BorrowedFd<'_>, byte: u64, kind: libc::c_short) -> io::Result<bool> {
    let fl = flock_for(byte, kind)?;
    // SAFETY: `fl` is a valid, initialised `struct flock` that outlives the call.
    match cvt_eintr(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) }) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Is byte `byte` write-locked by an open file description other than `fd`'s
/// (`F_OFD_GETLK`)?
pub(crate) fn ofd_is_locked(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let mut fl = flock_for(byte, libc::F_WRLCK as libc::c_short)?;
    // SAFETY: `fl` is a valid, initialised `struct flock`; the kernel writes into it.
    cvt_eintr(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) })?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// `close(fd)`, ignoring errors. Async-signal-safe (used in the `pthread_atfork` child
/// handler).
///
/// # Safety
///
/// `fd` must be a descriptor the caller owns and nothing uses afterwards.
pub(crate) unsafe fn close_raw(fd: RawFd) {
    // SAFETY: delegated to the caller (ownership of `fd`). The result is ignored: after
    // `close` the descriptor is gone whatever it returns (Linux never leaves it open on
    // EINTR), and there is nothing useful to do with an error here.
    unsafe { libc::close(fd) };
}

/// Ends this process with SIGKILL, at once (test-only crash points).
#[cfg(feature = "test-hooks")]
pub(crate) fn raise_sigkill() {
    // SAFETY: raising a signal has no memory-safety preconditions; SIGKILL ends the
    // process here.
    unsafe { libc::raise(libc::SIGKILL) };
}

/// `getpid()`.
pub(crate) fn getpid() -> u32 {
    // SAFETY: `getpid` has no preconditions and cannot fail.
    let pid = unsafe { libc::getpid() };
    pid as u32
}

/// The system page size.
pub(crate) fn page_size() -> u64 {
    // SAFETY: `sysconf` has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// Registers fork handlers (`pthread_atfork`).
pub(crate) fn atfork(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) -> io::Result<()> {
    // SAFETY: the handlers are `extern "C"` functions with static lifetime; the caller
    // (participant.rs) keeps their bodies async-signal-safe.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Makes `fd` survive `exec` (clears `FD_CLOEXEC`). Async-signal-safe.
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl; an invalid `fd` is reported as EBADF, not UB.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// `dup2(old, new)`. Async-signal-safe. The new descriptor does not have `FD_CLOEXEC`.
pub(crate) fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall; invalid descriptors are reported as EBADF.
    cvt_eintr(|| unsafe { libc::dup2(old, new) }).map(drop)
}
