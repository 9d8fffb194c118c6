//! The other side of a measurement: a forked child (raw `fork(2)`, or `mproc::Process` when
//! mproc handles must be passed to it), or a thread for in-process references. Every wait
//! for it is bounded: a child that does not finish in time is killed and reported.
#![allow(unsafe_code)]

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::deadline::{MEASUREMENT_LIMIT, watchdog};

/// How long a finished measurement waits for its peer to exit.
const REAP_LIMIT: Duration = Duration::from_secs(20);

/// A running peer; [`Peer::wait`] reaps it.
#[derive(Debug)]
pub enum Peer {
    /// A raw `fork(2)` child.
    Pid(libc::pid_t),
    /// A child started through `mproc::Process` (fork start method, handles passed as args).
    Process(mproc::Process),
    /// A thread of this process.
    Thread(std::thread::JoinHandle<Result<(), String>>),
}

/// Exit code of a child whose body returned an error.
const CHILD_FAILED: i32 = 3;
/// Exit code of a child whose body panicked.
const CHILD_PANICKED: i32 = 4;

/// Runs `body` in the child; never returns there. Ends with `_exit`, never returning into
/// the caller's code (or a test harness).
fn child_main(body: impl FnOnce() -> Result<(), BenchError>) -> ! {
    watchdog(MEASUREMENT_LIMIT.as_secs() as u32 + 10);
    let code = match std::panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("bench child: {e}");
            CHILD_FAILED
        }
        Err(_) => CHILD_PANICKED,
    };
    // SAFETY: leaves the child at once, without running the parent's atexit handlers or
    // destructors (they belong to the parent's state).
    unsafe { libc::_exit(code) }
}

impl Peer {
    /// Forks a child running `body` (anything it captures is inherited by copy: fds,
    /// `MAP_SHARED` mappings, plain values).
    ///
    /// # Errors
    /// `fork`'s errno.
    pub fn fork(body: impl FnOnce() -> Result<(), BenchError>) -> Result<Peer, BenchError> {
        // SAFETY: the child only runs `body` (bench code over inherited memory and fds)
        // and `_exit`s; the benches fork from a single-threaded parent (threads they start
        // for the in-process references are joined before any fork).
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(std::io::Error::last_os_error().into()),
            0 => child_main(body),
            pid => Ok(Peer::Pid(pid)),
        }
    }

    /// Starts `body(args)` in an `mproc::Process` (fork start method), so the mproc handles
    /// in `args` are passed (and counted) as Python's `Process(target, args)` passes them.
    ///
    /// # Errors
    /// The start hand-shake's error.
    pub fn process<A, F>(body: F, args: A) -> Result<Peer, BenchError>
    where
        A: mproc::Args,
        F: FnOnce(A) -> Result<(), BenchError> + Send + 'static,
    {
        let mut p = mproc::Process::new(move |a: A| child_main(move || body(a)), args)
            .start_method(mproc::StartMethod::Fork);
        p.start().map_err(crate::error::api)?;
        Ok(Peer::Process(p))
    }

    /// Runs `body` on a new thread (in-process references such as crossbeam-channel).
    pub fn thread(body: impl FnOnce() -> Result<(), BenchError> + Send + 'static) -> Peer {
        Peer::Thread(std::thread::spawn(move || {
            body().map_err(|e| e.to_string())
        }))
    }

    /// Waits (bounded) for the peer to finish; kills a child that does not.
    ///
    /// # Errors
    /// [`BenchError::Peer`] if it failed, [`BenchError::Timeout`] if it had to be killed.
    pub fn wait(self) -> Result<(), BenchError> {
        let end = Instant::now() + REAP_LIMIT;
        match self {
            Peer::Pid(pid) => loop {
                let mut status = 0;
                // SAFETY: reaping our own child; `status` is a valid out-pointer.
                let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                if r == pid {
                    return if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                        Ok(())
                    } else {
                        Err(BenchError::Peer(format!("child wait status {status:#x}")))
                    };
                }
                if r < 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
                if Instant::now() >= end {
                    // SAFETY: signalling and reaping our own child.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut status, 0);
                    }
                    return Err(BenchError::Timeout("the child to exit"));
                }
                std::thread::sleep(Duration::from_millis(1));
            },
            Peer::Process(p) => match p.join_timeout(REAP_LIMIT).map_err(crate::error::api)? {
                Some(s) if s.success() => Ok(()),
                Some(s) => Err(BenchError::Peer(format!(
                    "child exit code {}",
                    s.exitcode()
                ))),
                None => {
                    let _ = p.kill();
                    let _ = p.join_timeout(Duration::from_secs(5));
                    Err(BenchError::Timeout("the child to exit"))
                }
            },
            Peer::Thread(t) => {
                while !t.is_finished() {
                    if Instant::now() >= end {
                        // A thread cannot be killed; it is left behind (and reported).
                        return Err(BenchError::Timeout("the peer thread to finish"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                match t.join() {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(BenchError::Peer(e)),
                    Err(_) => Err(BenchError::Peer("thread panicked".into())),
                }
            }
        }
    }
}
