//! POSIX message queues (`mq_open(3)` via libc), one per direction. The names are unlinked
//! as soon as both are open (the descriptors keep them alive, and a fork child inherits
//! them). Sends and receives use `mq_timed*` with the measurement's deadline: a POSIX queue
//! has no end of file, so a dead peer is only noticed by the clock.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::rc::Rc;

use crate::sync::{AtomicU32, Ordering};
use crate::transport::{Duplex, get_seq, halves, put_seq};
use crate::{BenchError, Deadline, Transport};

/// Messages a queue holds (Linux's default `msg_max` ceiling is 10 for unprivileged users).
const DEPTH: libc::c_long = 10;

/// An owned `mqd_t`, closed on drop.
#[derive(Debug)]
pub struct Mqd(libc::mqd_t);

impl Drop for Mqd {
    fn drop(&mut self) {
        // SAFETY: an open descriptor owned by this value. A close error leaks nothing useful.
        unsafe { libc::mq_close(self.0) };
    }
}

/// Makes a unique queue name for this process.
fn name() -> CString {
    // Relaxed: a per-process counter; uniqueness needs only atomicity.
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    CString::new(format!("/mproc-bench-{pid}-{n}")).expect("no NUL")
}

fn open(size: usize) -> Result<Mqd, BenchError> {
    let name = name();
    // SAFETY: an all-zero mq_attr is a valid value; the fields used are set below.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = DEPTH;
    attr.mq_msgsize = size as libc::c_long;
    // SAFETY: `name` is a valid C string and `attr` a valid mq_attr for O_CREAT.
    let q = unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
            &attr as *const libc::mq_attr,
        )
    };
    if q == -1 {
        let e = std::io::Error::last_os_error();
        return Err(BenchError::Unsupported(format!(
            "mq_open with {size}-byte messages: {e} (see /proc/sys/fs/mqueue/msgsize_max)"
        )));
    }
    // SAFETY: unlinking the name we just created; the descriptor keeps the queue alive.
    unsafe { libc::mq_unlink(name.as_ptr()) };
    Ok(Mqd(q))
}

/// Two POSIX message queues.
#[derive(Debug)]
pub struct PosixMq;

impl Transport for PosixMq {
    const NAME: &'static str = "POSIX mq";
    const BLOCKING: bool = true;
    type End = Duplex<Rc<Mqd>>;

    fn pair(size: usize) -> Result<(Self::End, Self::End), BenchError> {
        let a = Rc::new(open(size.max(8))?);
        let b = Rc::new(open(size.max(8))?);
        Ok(Duplex::crossed(halves(a), halves(b), size))
    }

    fn send(e: &mut Self::End, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        let ts = deadline.realtime_timespec();
        loop {
            // SAFETY: `buf` is valid for its length; `ts` a valid timespec.
            let r =
                unsafe { libc::mq_timedsend(e.tx.0, e.buf.as_ptr().cast(), e.buf.len(), 0, &ts) };
            if r == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ETIMEDOUT) => return Err(BenchError::Timeout("mq space")),
                _ => return Err(err.into()),
            }
        }
    }

    fn recv(e: &mut Self::End, deadline: &Deadline) -> Result<u64, BenchError> {
        let ts = deadline.realtime_timespec();
        loop {
            // SAFETY: `buf` is valid for writes of its length (= the queue's msgsize).
            let r = unsafe {
                libc::mq_timedreceive(
                    e.rx.0,
                    e.buf.as_mut_ptr().cast(),
                    e.buf.len(),
                    std::ptr::null_mut(),
                    &ts,
                )
            };
            if r >= 0 {
                return get_seq(&e.buf[..r as usize]);
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ETIMEDOUT) => return Err(BenchError::Timeout("an mq message")),
                _ => return Err(err.into()),
            }
        }
    }
}
