//! Parent side of the spawn start method: re-execute `/proc/self/exe` with a start request.
//!
//! The request (entry name, child identity, the exported argument values, the numbers of the
//! descriptors to inherit) is rkyv-serialised into a memfd. The child finds two numbers in
//! `MPROC_SPAWN=v<version>:<hand-shake fd>:<request fd>`. `std::process::Command` forks and
//! execs; its `pre_exec` closure only makes async-signal-safe system calls, so spawning is
//! safe from a multithreaded parent: it marks every descriptor `>= 3` close-on-exec
//! (`close_range`), clears close-on-exec on exactly the hand-shake, request and exported
//! descriptors, and, for a daemon, arms `PR_SET_PDEATHSIG(SIGKILL)` and checks that the parent
//! is still the one that forked it.
#![allow(unsafe_code)]

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::boot;
use super::error::StartError;
use super::sys;

/// The environment variable that marks a spawned child.
pub(crate) const ENV_VAR: &str = "MPROC_SPAWN";
/// Bumped whenever [`SpawnRequest`] changes shape.
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// What a spawned child is told. Validated with bytecheck in the child before use.
#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct SpawnRequest {
    pub(crate) version: u32,
    /// Registered entry point name.
    pub(crate) entry: String,
    /// `type_name` of the arguments tuple, checked against the entry's.
    pub(crate) args_type: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent_pid: u32,
    /// The parent's default start method is spawn (a forked child inherits the default with
    /// its memory; a spawned one is told, as Python's spawn preparation data does).
    pub(crate) start_method_spawn: bool,
    /// Descriptor numbers the child inherits, in export order.
    pub(crate) fds: Vec<i32>,
    /// Exported argument values, in order.
    pub(crate) values: Vec<Vec<u8>>,
}

/// Moves `fd` to a number `>= 3`: a parent that closed its stdio would otherwise get 0..=2
/// for these descriptors, and the child's stdio set-up would overwrite them.
fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        Ok(fd)
    } else {
        sys::dup_cloexec(fd.as_fd())
    }
}

/// Forks and execs the child. Returns its pid and the parent's end of the hand-shake pipe.
/// `exported` are the exporter's descriptors; the caller keeps them open until the hand-shake
/// ends.
pub(crate) fn spawn_child(
    request: &SpawnRequest,
    exported: &[RawFd],
) -> Result<(libc::pid_t, OwnedFd), StartError> {
    if !boot::hook_linked() {
        return Err(StartError::HookNotLinked);
    }
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(request)
        .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))?;
    let mut req_file = std::fs::File::from(above_stdio(sys::memfd(c"mproc-spawn")?)?);
    req_file.write_all(&bytes)?;
    req_file.seek(SeekFrom::Start(0))?;
    let (hs_r, hs_w) = sys::pipe()?;
    let hs_w = above_stdio(hs_w)?;

    let mut keep: Vec<RawFd> = Vec::with_capacity(exported.len() + 2);
    keep.push(hs_w.as_raw_fd());
    keep.push(req_file.as_raw_fd());
    keep.extend_from_slice(exported);
    let daemon_parent = request.daemon.then(sys::getpid);

    let exe = "/proc/self/exe";
    let mut cmd = Command::new(exe);
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.env(
        ENV_VAR,
        format!("v{PROTOCOL_VERSION}:{}:{}", keep[0], keep[1]),
    );
    cmd.stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls (close_range, fcntl, prctl, getppid); it allocates
    // nothing (`keep` was built in the parent and is only read).
    unsafe {
        cmd.pre_exec(move || {
            sys::cloexec_from(3);
            for &fd in &keep {
                sys::clear_cloexec(fd)?;
            }
            if let Some(parent) = daemon_parent
                && !sys::die_with_parent(parent)
            {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // `Child` does not reap on drop; mproc reaps by pid from here on.
    let pid = child.id() as libc::pid_t;
    drop(child);
    drop(hs_w);
    drop(req_file);
    Ok((pid, hs_r))
}
