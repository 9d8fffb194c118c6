//! Kernel byte and packet channels: `pipe(2)` (two, one per direction), a Unix stream
//! socketpair and a Unix seqpacket socketpair. Plain blocking `read`/`write`: a peer that
//! dies closes its descriptors, so a blocked call returns (EOF, EPIPE) instead of hanging.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use crate::transport::{Duplex, get_seq, put_seq};
use crate::{BenchError, Deadline, Transport};

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

impl<const KIND: libc::c_int> Fd<KIND> {
    /// Packets: one `send`/`recv` per message; streams: `write_all`/`read_exact`.
    const PACKET: bool = KIND == libc::SOCK_SEQPACKET;
}

impl<const KIND: libc::c_int> Transport for Fd<KIND> {
    const NAME: &'static str = match KIND {
        PIPE => "pipe(2)",
        libc::SOCK_STREAM => "unix stream",
        libc::SOCK_SEQPACKET => "unix seqpacket",
        _ => "unix socketpair",
    };
    const BLOCKING: bool = true;
    type End = Duplex<File>;

    fn pair(size: usize) -> Result<(Self::End, Self::End), BenchError> {
        if KIND == PIPE {
            let (r1, w1) = pipe2()?;
            let (r2, w2) = pipe2()?;
            let (a, b) = ((w1.into(), r1.into()), (w2.into(), r2.into()));
            return Ok(Duplex::crossed(a, b, size));
        }
        let (a, b) = socketpair(KIND)?;
        let (a2, b2) = (a.try_clone()?, b.try_clone()?);
        Ok((
            Duplex::new(a.into(), a2.into(), size),
            Duplex::new(b.into(), b2.into(), size),
        ))
    }

    fn send(e: &mut Self::End, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        if Self::PACKET {
            let n = e.tx.write(&e.buf)?;
            if n != e.buf.len() {
                return Err(BenchError::Corrupt(format!("short packet write {n}")));
            }
            Ok(())
        } else {
            Ok(e.tx.write_all(&e.buf)?)
        }
    }

    fn recv(e: &mut Self::End, _: &Deadline) -> Result<u64, BenchError> {
        if Self::PACKET {
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
