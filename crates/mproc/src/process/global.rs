//! Process-global state: this process's identity, its child counter, and dropped children
//! still to be reaped.
//!
//! One mutex guards it all. mproc's fork path holds the lock across `fork()`, so the child
//! never inherits it locked by a thread that does not exist there; the child then rewrites
//! the state (new identity, no orphans: they are its parent's children, not its own).

use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};

use super::sys;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Global {
    /// Children created so far by this process (Python's `_counter`); names `Process-N`.
    pub(crate) counter: u32,
    /// `[]` in the main process; a child's is its parent's plus its own number.
    pub(crate) identity: Vec<u32>,
    /// `None` in the main process (`MainProcess`).
    pub(crate) name: Option<String>,
    /// The parent's pid, in a process started by mproc.
    pub(crate) parent_pid: Option<u32>,
    /// Whether this process was started as a daemon.
    pub(crate) daemon: bool,
    /// Dropped, not yet reaped children.
    orphans: Vec<Orphan>,
}

#[derive(Debug)]
struct Orphan {
    pid: libc::pid_t,
    // Kept so the pid stays pinned to this child in pidfd terms; closed when reaped.
    _pidfd: Option<OwnedFd>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    counter: 0,
    identity: Vec::new(),
    name: None,
    parent_pid: None,
    daemon: false,
    orphans: Vec::new(),
});

/// Locks the global state (a poisoned lock is still usable: every update is a plain store).
pub(crate) fn lock() -> MutexGuard<'static, Global> {
    GLOBAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Global {
    /// Reaps every orphan that has exited (`waitpid(WNOHANG)`); forgets any reaped elsewhere.
    pub(crate) fn reap_orphans(&mut self) {
        self.orphans
            .retain(|o| matches!(sys::try_wait(o.pid), Ok(None)));
    }

    /// Hands a running, dropped child to the reaper.
    pub(crate) fn adopt_orphan(&mut self, pid: libc::pid_t, pidfd: Option<OwnedFd>) {
        self.orphans.push(Orphan { pid, _pidfd: pidfd });
    }

    /// Number of dropped children not yet reaped.
    pub(crate) fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// In a new child: take on the identity the parent chose; start with no children.
    pub(crate) fn become_child(
        &mut self,
        identity: Vec<u32>,
        name: String,
        parent: u32,
        daemon: bool,
    ) {
        self.counter = 0;
        self.identity = identity;
        self.name = Some(name);
        self.parent_pid = Some(parent);
        self.daemon = daemon;
        // The parent's orphans are not our children: we can neither reap nor signal them.
        // Forget them without closing their pidfds twice: the fds are ours to close (copies).
        self.orphans.clear();
    }

    /// Allocates the identity and default name of a new child (Python: `Process-N`, and
    /// `Process-N:M` for a grandchild).
    pub(crate) fn next_child(&mut self) -> (Vec<u32>, String) {
        self.counter += 1;
        let mut identity = self.identity.clone();
        identity.push(self.counter);
        let digits: Vec<String> = identity.iter().map(u32::to_string).collect();
        (identity, format!("Process-{}", digits.join(":")))
    }
}
