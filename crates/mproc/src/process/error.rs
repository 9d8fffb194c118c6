//! Errors of starting and managing a child process.

use std::io;
use std::time::Duration;

use super::status::ExitStatus;
use crate::handle::PassError;

/// Why [`Process::start`](super::Process::start) failed. The child, if one was created, is
/// gone (reaped) when this is returned, and the arguments were dropped in the parent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `start` was called twice (Python: `AssertionError('cannot start a process twice')`).
    #[error("cannot start a process twice")]
    AlreadyStarted,
    /// This process is a daemon, and daemonic processes may not have children (Python:
    /// `AssertionError: daemonic processes are not allowed to have children`): a daemon is
    /// killed with its parent, and would leave its own children orphaned.
    #[error("a daemonic process cannot start children")]
    DaemonicParent,
    /// The spawn start method needs a target registered with [`entry!`](crate::entry); a
    /// closure (or an unregistered function) can only be forked. Python's counterpart is the
    /// `PicklingError` a lambda target raises under spawn.
    #[error("target `{target}` is not registered with mproc::entry! and cannot be spawned")]
    NotSpawnable {
        /// The target's type name.
        target: &'static str,
    },
    /// Two entry points were registered under one name.
    #[error("entry point `{0}` is registered more than once")]
    DuplicateEntry(String),
    /// The pre-main spawn hook is not linked into this binary, so a spawned child would run
    /// `main` instead of its entry point; refused rather than risk a fork bomb.
    #[error("the mproc spawn hook is not linked into this binary")]
    HookNotLinked,
    /// Exporting the arguments failed (in the parent, before any child existed).
    #[error("cannot pass arguments: {0}")]
    Export(#[from] PassError),
    /// The child rejected its start: it could not import/adopt its arguments, did not know
    /// the entry point, or got a malformed request. The message is the child's.
    #[error("child failed to start ({stage}): {message}")]
    Rejected {
        /// Which step failed in the child.
        stage: StartStage,
        /// What the child reported.
        message: String,
    },
    /// The child died before completing the start hand-shake.
    #[error("child died during start-up ({status})")]
    ChildDied {
        /// How it ended.
        status: ExitStatus,
    },
    /// The child did not complete the hand-shake before the start deadline; it was killed.
    #[error("child did not start within {0:?}")]
    Timeout(Duration),
    /// A system call failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// The child-side step of the start hand-shake that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartStage {
    /// Fork: adopting the arguments.
    Adopt,
    /// Spawn: importing (validating) the arguments.
    Import,
    /// Spawn: the entry point name is unknown to the child's binary.
    UnknownEntry,
    /// Spawn: the start request itself was malformed.
    BadRequest,
    /// Daemon: the parent was already gone when the child armed its death signal.
    ParentGone,
}

impl std::fmt::Display for StartStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartStage::Adopt => "adopting arguments",
            StartStage::Import => "importing arguments",
            StartStage::UnknownEntry => "unknown entry point",
            StartStage::BadRequest => "bad start request",
            StartStage::ParentGone => "parent gone",
        })
    }
}

/// Why an operation on a started (or not yet started) [`Process`](super::Process) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The process was never started (Python: `AssertionError('can only join a started
    /// process')`).
    #[error("process not started")]
    NotStarted,
    /// This handle was inherited by a forked child; only the process that created the child
    /// may join or signal it (Python: `AssertionError('can only join a child process')`).
    #[error("can only join a child process")]
    NotParent,
    /// Somebody else reaped the child (a `waitpid(-1)` elsewhere, or `SIGCHLD` ignored), so
    /// its exit status is unknown.
    #[error("child was reaped elsewhere; exit status lost")]
    Lost,
    /// A system call failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// [`Process::close`](super::Process::close) on a process that is still running (Python:
/// `ValueError('Cannot close a process while it is still running…')`). Gives the process back.
#[derive(Debug, thiserror::Error)]
#[error("cannot close a process while it is still running")]
pub struct StillRunning(pub Box<super::Process>);
