//! Process-global state: this process's identity, its child counter, its started children
//! (for `active_children` and the exit hook) and dropped children still to be reaped.
//!
//! One mutex guards it all. mproc's fork path holds the lock across `fork()`, so the child
//! never inherits it locked by a thread that does not exist there; the child then rewrites
//! the state (new identity, no orphans: they are its parent's children, not its own).

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::at_exit;
use super::child::ChildProc;

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
    /// Started children whose `Process` handle lives (for `active_children` and the exit
    /// hook); entries of ended or dropped children are pruned as they are seen.
    children: Vec<Started<Weak<ChildProc>>>,
    /// Dropped, not yet reaped children (their pidfds kept, so each pid stays pinned to its
    /// child; closed when reaped).
    orphans: Vec<Started<Arc<ChildProc>>>,
}

/// A started child as the registry keeps it.
#[derive(Debug)]
struct Started<C> {
    child: C,
    name: String,
    daemon: bool,
}

/// A running child of this process, as [`Global::running_children`] lists it.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) child: Arc<ChildProc>,
    pub(crate) name: String,
    pub(crate) daemon: bool,
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
            .retain(|o| matches!(o.child.try_status(), Ok(None)));
    }

    /// Hands a running, dropped child to the reaper.
    pub(crate) fn adopt_orphan(&mut self, child: ChildProc, name: String, daemon: bool) {
        self.orphans.push(Started {
            child: Arc::new(child),
            name,
            daemon,
        });
    }

    /// Records a started child, for [`Global::active_children`] and the exit hook.
    pub(crate) fn register_child(&mut self, child: &Arc<ChildProc>, name: &str, daemon: bool) {
        self.children.retain(|c| c.child.strong_count() > 0);
        self.children.push(Started {
            child: Arc::downgrade(child),
            name: name.to_string(),
            daemon,
        });
    }

    /// Children of this process still running: those with a live `Process` handle (asking
    /// each, which reaps and records an ended one, as Python's `active_children()` joins
    /// them) and dropped ones not yet reaped.
    pub(crate) fn running_children(&mut self) -> Vec<Running> {
        self.reap_orphans();
        let mut active = Vec::new();
        self.children.retain(|c| {
            let Some(child) = c.child.upgrade() else {
                return false;
            };
            let running = matches!(child.try_status(), Ok(None));
            if running {
                active.push(Running {
                    child,
                    name: c.name.clone(),
                    daemon: c.daemon,
                });
            }
            running
        });
        active.extend(self.orphans.iter().map(|o| Running {
            child: o.child.clone(),
            name: o.name.clone(),
            daemon: o.daemon,
        }));
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
        at_exit::disown_children();
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
