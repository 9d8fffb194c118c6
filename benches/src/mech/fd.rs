//! Kernel byte and packet channels: `pipe(2)` (two, one per direction), a Unix stream
//! socketpair and a Unix seqpacket socketpair. Plain blocking `read`/`write`: a peer that
//! dies closes its descriptors, so a blocked call returns (EOF, EPIPE) instead of hanging.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use crate::transport::{get_seq, message_buf, put_seq};
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

fn fd_send(e: &mut FdEnd, seq: u64) -> Result<(), BenchError> {
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

fn fd_recv(e: &mut FdEnd) -> Result<u64, BenchError> {
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

/// Two `pipe(2)`s.
#[derive(Debug)]
pub struct Pipe2;

impl Transport for Pipe2 {
    const NAME: &'static str = "pipe(2)";
    const BLOCKING: bool = true;
    type End = FdEnd;

    fn pair(size: usize) -> Result<(FdEnd, FdEnd), BenchError> {
        let (r1, w1) = pipe2()?;
        let (r2, w2) = pipe2()?;
        Ok((end(w1, r2, size, false), end(w2, r1, size, false)))
    }
    fn send(e: &mut FdEnd, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        fd_send(e, seq)
    }
    fn recv(e: &mut FdEnd, _: &Deadline) -> Result<u64, BenchError> {
        fd_recv(e)
    }
}

/// A Unix stream socketpair.
#[derive(Debug)]
pub struct UnixStream;

impl Transport for UnixStream {
    const NAME: &'static str = "unix stream";
    const BLOCKING: bool = true;
    type End = FdEnd;

    fn pair(size: usize) -> Result<(FdEnd, FdEnd), BenchError> {
        let (a, b) = socketpair(libc::SOCK_STREAM)?;
        let (a2, b2) = (a.try_clone()?, b.try_clone()?);
        Ok((end(a, a2, size, false), end(b, b2, size, false)))
    }
    fn send(e: &mut FdEnd, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        fd_send(e, seq)
    }
    fn recv(e: &mut FdEnd, _: &Deadline) -> Result<u64, BenchError> {
        fd_recv(e)
    }
}

/// A Unix seqpacket socketpair (message boundaries kept by the kernel).
#[derive(Debug)]
pub struct SeqPacket;

impl Transport for SeqPacket {
    const NAME: &'static str = "unix seqpacket";
    const BLOCKING: bool = true;
    type End = FdEnd;

    fn pair(size: usize) -> Result<(FdEnd, FdEnd), BenchError> {
        let (a, b) = socketpair(libc::SOCK_SEQPACKET)?;
        let (a2, b2) = (a.try_clone()?, b.try_clone()?);
        Ok((end(a, a2, size, true), end(b, b2, size, true)))
    }
    fn send(e: &mut FdEnd, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        fd_send(e, seq)
    }
    fn recv(e: &mut FdEnd, _: &Deadline) -> Result<u64, BenchError> {
        fd_recv(e)
    }
}
