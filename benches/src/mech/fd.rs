//! Kernel byte and packet channels: `pipe(2)` (two, one per direction), a Unix stream
//! socketpair and a Unix seqpacket socketpair. Plain blocking `read`/`write`: a peer that
//! dies closes its descriptors, so a blocked call returns (EOF, EPIPE) instead of hanging.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use crate::transport::{crossed, get_seq, message_buf, put_seq};
use crate::{BenchError, Deadline, Transport};

/// One end: a descriptor to write to, one to read from (the same socket for socketpairs),
/// and a message buffer.
#[derive(Debug)]
pub struct FdEnd {
    tx: File,
    rx: File,
    buf: Vec<u8>,
    /// Packets: one `send`/`recv` per message; streams: `write_all`/`read_exact`.
    packet: bool,
}

fn pipe2() -> Result<(OwnedFd, OwnedFd), BenchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn socketpair(kind: libc::c_int) -> Result<(OwnedFd, OwnedFd), BenchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn end(tx: OwnedFd, rx: OwnedFd, size: usize, packet: bool) -> FdEnd {
    FdEnd {
        tx: File::from(tx),
        rx: File::from(rx),
        buf: message_buf(size),
        packet,
    }
}

/// The `KIND` of [`Fd`] that is two `pipe(2)`s (no socket type is 0).
pub const PIPE: libc::c_int = 0;

/// Kernel channels: two `pipe(2)`s (`KIND` = [`PIPE`]), or a Unix socketpair of socket type
/// `KIND` (`SOCK_STREAM`, `SOCK_SEQPACKET`: one `send`/`recv` per message).
#[derive(Debug)]
pub struct Fd<const KIND: libc::c_int>;

/// Two `pipe(2)`s.
pub type Pipe2 = Fd<PIPE>;

/// A Unix stream socketpair.
pub type UnixStream = Fd<{ libc::SOCK_STREAM }>;

/// A Unix seqpacket socketpair (message boundaries kept by the kernel).
pub type SeqPacket = Fd<{ libc::SOCK_SEQPACKET }>;

impl<const KIND: libc::c_int> Transport for Fd<KIND> {
    const NAME: &'static str = match KIND {
        PIPE => "pipe(2)",
        libc::SOCK_STREAM => "unix stream",
        libc::SOCK_SEQPACKET => "unix seqpacket",
        _ => "unix socketpair",
    };
    const BLOCKING: bool = true;
    type End = FdEnd;

    fn pair(size: usize) -> Result<(FdEnd, FdEnd), BenchError> {
        if KIND == PIPE {
            let (r1, w1) = pipe2()?;
            let (r2, w2) = pipe2()?;
            return Ok(crossed((w1, r1), (w2, r2), |_, tx, rx| {
                end(tx, rx, size, false)
            }));
        }
        let packet = KIND == libc::SOCK_SEQPACKET;
        let (a, b) = socketpair(KIND)?;
        let (a2, b2) = (a.try_clone()?, b.try_clone()?);
        Ok((end(a, a2, size, packet), end(b, b2, size, packet)))
    }

    fn send(e: &mut FdEnd, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        if e.packet {
            let n = e.tx.write(&e.buf)?;
            if n != e.buf.len() {
                return Err(BenchError::Corrupt(format!("short packet write {n}")));
            }
            Ok(())
        } else {
            Ok(e.tx.write_all(&e.buf)?)
        }
    }

    fn recv(e: &mut FdEnd, _: &Deadline) -> Result<u64, BenchError> {
        if e.packet {
            let n = e.rx.read(&mut e.buf)?;
            if n == 0 {
                return Err(BenchError::Peer("end of file".into()));
            }
            if n != e.buf.len() {
                return Err(BenchError::Corrupt(format!("packet of {n} bytes")));
            }
        } else {
            e.rx.read_exact(&mut e.buf)?;
        }
        get_seq(&e.buf)
    }
}
