//! The start hand-shake: the child reports "arguments adopted/imported" or why not, over a
//! pipe; the parent waits for that with a deadline, watching the child's pidfd meanwhile.
//!
//! Wire format (child → parent), one `write` of at most `PIPE_BUF` bytes, hence atomic:
//! `b'M'`, a status byte (0 = ready, else a [`StartStage`] code), a little-endian `u16`
//! length, then that many bytes of UTF-8 message.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::child::ChildProc;
use super::error::{StartError, StartStage};
use super::sys::{self, PollFd};

const MAGIC: u8 = b'M';
const READY: u8 = 0;
/// Exit code of a child whose start failed (it also reports why over the pipe).
pub(crate) const START_FAILED_EXIT: i32 = 1;
/// Longest message; keeps every report within `PIPE_BUF` (4096), so it is written atomically.
const MAX_MSG: usize = 1024;
/// After the child reported a failure or closed the pipe, how long to wait for it to exit
/// before killing it.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Without a pidfd, the longest single sleep between liveness checks.
const FALLBACK_SLICE: Duration = Duration::from_millis(20);

fn stage_code(stage: StartStage) -> u8 {
    match stage {
        StartStage::Adopt => 1,
        StartStage::Import => 2,
        StartStage::UnknownEntry => 3,
        StartStage::BadRequest => 4,
        StartStage::ParentGone => 5,
    }
}

fn code_stage(code: u8) -> StartStage {
    match code {
        1 => StartStage::Adopt,
        2 => StartStage::Import,
        3 => StartStage::UnknownEntry,
        5 => StartStage::ParentGone,
        _ => StartStage::BadRequest,
    }
}

/// The child's end of the hand-shake.
#[derive(Debug)]
pub(crate) struct Handshake {
    fd: OwnedFd,
}

impl Handshake {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Handshake { fd }
    }

    fn send(&self, status: u8, msg: &str) {
        let mut bytes = msg.as_bytes();
        if bytes.len() > MAX_MSG {
            let mut cut = MAX_MSG;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            bytes = &bytes[..cut];
        }
        let len = bytes.len() as u16;
        let mut frame = Vec::with_capacity(4 + bytes.len());
        frame.push(MAGIC);
        frame.push(status);
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(bytes);
        // A failed write means the parent is gone or gave up; nothing better to do.
        let _ = sys::write_all(self.fd.as_fd(), &frame);
    }

    /// Reports success and closes the pipe.
    pub(crate) fn ready(self) {
        self.send(READY, "");
    }

    /// Reports failure at `stage` and leaves the process with [`START_FAILED_EXIT`].
    pub(crate) fn fail(self, stage: StartStage, msg: &str) -> ! {
        self.send(stage_code(stage), msg);
        drop(self);
        sys::exit_now(START_FAILED_EXIT)
    }
}

/// Parses a complete frame from `buf`, if there is one.
fn parse(buf: &[u8]) -> Option<Result<(), StartError>> {
    if buf.len() < 4 {
        return None;
    }
    if buf[0] != MAGIC {
        return Some(Err(StartError::Rejected {
            stage: StartStage::BadRequest,
            message: "garbled start hand-shake".into(),
        }));
    }
    let len = u16::from_le_bytes([buf[2], buf[3]]) as usize;
    if buf.len() < 4 + len {
        return None;
    }
    if buf[1] == READY {
        return Some(Ok(()));
    }
    let message = String::from_utf8_lossy(&buf[4..4 + len]).into_owned();
    Some(Err(StartError::Rejected {
        stage: code_stage(buf[1]),
        message,
    }))
}

/// Parent side: waits until the child reports, dies, or `timeout` passes. On any failure the
/// child is gone (reaped, killed first if need be) when this returns.
pub(crate) fn await_ready(
    hs: OwnedFd,
    child: &ChildProc,
    timeout: Duration,
) -> Result<(), StartError> {
    let deadline = Instant::now() + timeout;
    let file = File::from(hs);
    let mut buf = Vec::with_capacity(64);
    let mut eof = false;
    loop {
        if let Some(outcome) = parse(&buf) {
            if outcome.is_err() {
                // The child exits right after reporting; reap it (bounded) so no zombie stays.
                if child.wait(Some(Instant::now() + EXIT_GRACE))?.is_none() {
                    child.kill_and_reap(EXIT_GRACE);
                }
            }
            return outcome;
        }
        // Nothing complete yet. Has the child ended?
        if let Some(status) = child.try_status().map_err(lost)? {
            // Whatever it wrote before dying is already in the pipe (atomic write): drain it.
            if !eof && drain_now(&file, &mut buf) {
                continue;
            }
            return Err(StartError::ChildDied { status });
        }
        if eof {
            // The pipe closed without a report: the child is dying. Give it until the
            // deadline to be reaped, then kill it.
            return match child.wait(Some(deadline))? {
                Some(status) => Err(StartError::ChildDied { status }),
                None => {
                    child.kill_and_reap(EXIT_GRACE);
                    Err(StartError::Timeout(timeout))
                }
            };
        }
        let now = Instant::now();
        if now >= deadline {
            child.kill_and_reap(EXIT_GRACE);
            return Err(StartError::Timeout(timeout));
        }
        let fd = file.as_fd();
        match child.pidfd() {
            Some(pidfd) => {
                let mut fds = [
                    PollFd { fd, ready: false },
                    PollFd {
                        fd: pidfd,
                        ready: false,
                    },
                ];
                sys::poll_readable(&mut fds, Some(deadline))?;
                if fds[0].ready {
                    eof = read_some(&file, &mut buf)?;
                }
            }
            None => {
                let slice = (now + FALLBACK_SLICE).min(deadline);
                let mut fds = [PollFd { fd, ready: false }];
                if sys::poll_readable(&mut fds, Some(slice))? {
                    eof = read_some(&file, &mut buf)?;
                }
            }
        }
    }
}

fn lost(e: super::error::ProcessError) -> StartError {
    match e {
        super::error::ProcessError::Io(e) => StartError::Io(e),
        other => StartError::Io(std::io::Error::other(other.to_string())),
    }
}

/// One `read` (the fd was reported readable, so it does not block). Returns true on EOF.
fn read_some(mut file: &File, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 512];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(false);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads whatever is immediately available. Returns whether anything was read.
fn drain_now(file: &File, buf: &mut Vec<u8>) -> bool {
    let before = buf.len();
    let mut fds = [PollFd {
        fd: file.as_fd(),
        ready: false,
    }];
    while matches!(sys::poll_readable(&mut fds, Some(Instant::now())), Ok(true)) {
        match read_some(file, buf) {
            Ok(false) => {}
            _ => break,
        }
    }
    buf.len() > before
}

impl From<super::error::ProcessError> for StartError {
    fn from(e: super::error::ProcessError) -> Self {
        lost(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse() {
        assert!(parse(b"M\0").is_none());
        assert!(matches!(parse(b"M\0\0\0"), Some(Ok(()))));
        assert!(parse(b"M\x02\x03\0ab").is_none());
        match parse(b"M\x02\x03\0abc") {
            Some(Err(StartError::Rejected {
                stage: StartStage::Import,
                message,
            })) => {
                assert_eq!(message, "abc")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(b"X\0\0\0"),
            Some(Err(StartError::Rejected { .. }))
        ));
    }
}
