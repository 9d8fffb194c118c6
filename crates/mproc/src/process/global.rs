//! Process-global state: this process's identity, its child counter, and dropped children
//! still to be reaped.
//!
//! One mutex guards it all. mproc's fork path holds the lock across `fork()`, so the child
//! never inherits it locked by a thread that does not exist there; the child then rewrites
//! the state (new identity, no orphans: they are its parent's children, not its own).

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::child::ChildProc;
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
    /// Started children whose `Process` handle lives, with their names (for
    /// `active_children`); entries of ended or dropped children are pruned as they are seen.
    children: Vec<(Weak<ChildProc>, String)>,
    /// Dropped, not yet reaped children.
    orphans: Vec<Orphan>,
}

#[derive(Debug)]
struct Orphan {
    pid: libc::pid_t,
    name: String,
    // Kept so the pid stays pinned to this child in pidfd terms; closed when reaped.
    _pidfd: Option<OwnedFd>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    counter: 0,
    identity: Vec::new(),
    name: None,
    parent_pid: None,
    daemon: false,
    children: Vec::new(),
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
    pub(crate) fn adopt_orphan(&mut self, pid: libc::pid_t, name: String, pidfd: Option<OwnedFd>) {
        self.orphans.push(Orphan {
            pid,
            name,
            _pidfd: pidfd,
        });
    }

    /// Records a started child, for [`Global::active_children`].
    pub(crate) fn register_child(&mut self, child: &Arc<ChildProc>, name: &str) {
        self.children.retain(|(c, _)| c.strong_count() > 0);
        self.children
            .push((Arc::downgrade(child), name.to_string()));
    }

    /// Children of this process still running: those with a live `Process` handle (asking
    /// each, which reaps and records an ended one, as Python's `active_children()` joins
    /// them) and dropped ones not yet reaped.
    pub(crate) fn active_children(&mut self) -> Vec<(u32, String)> {
        self.reap_orphans();
        let mut active = Vec::new();
        self.children.retain(|(c, name)| {
            let Some(c) = c.upgrade() else {
                return false;
            };
            let running = matches!(c.try_status(), Ok(None));
            if running {
                active.push((c.pid as u32, name.clone()));
            }
            running
        });
        active.extend(self.orphans.iter().map(|o| (o.pid as u32, o.name.clone())));
        active
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
        // The parent's children and orphans are not ours: we can neither reap nor signal
        // them. Forget them (the orphans' pidfds are our copies, ours to close).
        self.children.clear();
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
