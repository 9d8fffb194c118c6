//! What a process does with its children when it exits normally, as Python's
//! `multiprocessing.util._exit_function` does: **terminate the daemonic children, then join
//! the others.**
//!
//! * The main process: an `atexit(3)` handler, registered the first time it starts a child,
//!   so it runs when `main` returns or `std::process::exit` is called (not after a signal,
//!   an abort or `_exit`).
//! * A child started by mproc: [`finish_children`] runs when its target returns or panics,
//!   just before the child `_exit`s (Python's `_bootstrap` calls `_exit_function` too); a
//!   child that calls `std::process::exit` gets there through the handler it inherited.
//!
//! Daemonic children get SIGTERM (Python's `terminate()`), then [`DAEMON_GRACE`] to end; one
//! that is still running then is SIGKILLed and reaped (bounded too: Python would wait for
//! ever on a daemon that ignores SIGTERM). **Non-daemonic children are joined without a
//! timeout, as Python joins them**: a child that never ends keeps its parent from exiting.
//! Make such a child a daemon, or terminate it before returning from `main`.
//!
//! Only the process that started the children acts on them. A process forked by mproc starts
//! with no children (the parent's list is cleared); one forked by other means (a raw
//! `fork(2)`) inherits the parent's list and the handler, so the handler checks that the
//! current pid is the one that started the listed children ([`OWNER`]) before it even takes
//! the registry's lock (which such a child may have inherited locked).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::global::{self, Running};
use super::sync::{AtomicI32, Ordering};
use super::sys;

/// How long a SIGTERMed daemonic child has to end before it is SIGKILLed.
pub(crate) const DAEMON_GRACE: Duration = Duration::from_secs(1);

/// How long the kernel gets to end a SIGKILLed daemonic child before the hook gives up
/// on reaping it (it is then left to `init`).
const KILL_GRACE: Duration = Duration::from_secs(1);

/// The pid whose children the registry lists (0: none yet in this process).
static OWNER: AtomicI32 = AtomicI32::new(0);

static REGISTERED: Once = Once::new();

/// Called after every successful start: this process now has children to finish at exit.
pub(crate) fn children_started() {
    // Relaxed: read back by this process's own exit hook or `finish_children`, after the
    // start returned (program order on one thread, or a thread join / exit that orders it).
    OWNER.store(sys::getpid(), Ordering::Relaxed);
    REGISTERED.call_once(|| {
        // Best effort: if libc refuses (its table is full), the process exits as before this
        // hook existed, leaving the children running.
        let _ = sys::at_exit(exit_hook);
    });
}

/// In a new child (mproc's fork or spawn path): the children listed are the parent's.
pub(crate) fn disown_children() {
    // Relaxed: the child is single-threaded here.
    OWNER.store(0, Ordering::Relaxed);
}

extern "C" fn exit_hook() {
    // Never unwind out of an `extern "C"` function (that aborts the exit).
    let _ = catch_unwind(AssertUnwindSafe(finish_children));
}

/// Terminates this process's daemonic children (SIGTERM, bounded reap, SIGKILL after
/// [`DAEMON_GRACE`]) and joins the others without a timeout. A no-op in a process whose
/// listed children are not its own (see the module docs).
pub(crate) fn finish_children() {
    // Relaxed: see `children_started`.
    if OWNER.load(Ordering::Relaxed) != sys::getpid() {
        return;
    }
    // Listed under the lock, waited for without it: another thread may still need the
    // registry (starting or dropping a process) for a child to end.
    let running = global::lock().running_children();
    let (daemons, others): (Vec<Running>, Vec<Running>) =
        running.into_iter().partition(|c| c.daemon);
    for d in &daemons {
        let _ = d.child.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + DAEMON_GRACE;
    for d in &daemons {
        if !matches!(d.child.wait(Some(deadline)), Ok(Some(_))) {
            let _ = d.child.kill_and_reap(KILL_GRACE);
        }
    }
    for c in &others {
        // Python's `join()`: no timeout (see the module docs).
        let _ = c.child.wait(None);
    }
    // Dropped handles' records of the children just reaped go too.
    global::lock().reap_orphans();
}
