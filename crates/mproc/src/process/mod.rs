//! Child processes: Python's `multiprocessing.Process`, in Rust form.
//!
//! ```
//! use mproc::{Process, StartMethod};
//! use std::time::Duration;
//!
//! let mut p = Process::new(|(n,): (u32,)| std::process::exit(n as i32), (3u32,))
//!     .start_method(StartMethod::Fork);
//! p.start()?;
//! let status = p.join_timeout(Duration::from_secs(10))?.expect("child finished");
//! assert_eq!(status.exitcode(), 3);
//! assert_eq!(p.exitcode(), Some(3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Start methods ([`StartMethod`], Python's `set_start_method`)
//!
//! * **Fork** (the default, as in Python ≤ 3.13 on Linux): the target closure runs in a
//!   `fork(2)`ed child. Only the calling thread exists there; a lock another thread held at
//!   the fork stays locked in the child (Python's fork caveat, which 3.12 warns about). Use
//!   Spawn from a multithreaded parent unless the target is careful.
//! * **Spawn**: the child re-executes the current binary (`/proc/self/exe`) and runs an entry
//!   point registered with [`entry!`](crate::entry), with the arguments rkyv-serialised and
//!   validated in the child. Safe from a multithreaded parent. A closure cannot be spawned
//!   ([`StartError::NotSpawnable`], Python's `PicklingError` for a lambda).
//!
//! **Nothing to call in `main`**: a spawned child is caught before `main` by an
//! `.init_array` hook that sees `MPROC_SPAWN` in its environment, runs the entry point and
//! exits, so it works unchanged under `cargo test` and nextest (the child never reaches the
//! test harness). If the hook is not linked into a binary, spawning fails with
//! [`StartError::HookNotLinked`] instead of starting a copy of `main`.
//!
//! # Arguments and handles
//!
//! Arguments are a tuple of [`Passable`](crate::Passable) values ([`Args`]): plain data, and
//! (later) queues, connections and locks. A child holds exactly the handles in its arguments;
//! see [`handle`](crate::handle). With Fork, handles a closure *captures* are inherited but
//! disowned in the child: pass handles as arguments, not captures.
//!
//! The start is a hand-shake with a deadline ([`Process::start_timeout`], 10 s by default):
//! the parent keeps its copies of the arguments until the child reports that it adopted or
//! imported them; a child that dies, rejects its arguments or does not know its entry point
//! makes `start` return a [`StartError`] (never hang), and leaves no zombie.
//!
//! # Exit codes (Python's `exitcode`)
//!
//! [`Process::exitcode`] is `None` while the child runs (or before start); 0 when the target
//! returned; `n` after `std::process::exit(n)`; **1 after a panic**, with
//! `Process <name>: panicked at <file:line>:` and the message on the child's stderr; and minus
//! the signal number after a signal (−15 after [`terminate`](Process::terminate), −9 after
//! [`kill`](Process::kill)). A child always leaves with `_exit` after flushing stdout/stderr:
//! it never returns into the parent's code. (A binary built with `panic = "abort"` reports a
//! panic as −6, SIGABRT.)
//!
//! # Daemons
//!
//! A daemon child ([`Process::daemon`]) gets `PR_SET_PDEATHSIG(SIGKILL)`, checked against the
//! race where the parent died first (the child then exits at once).
//!
//! # At exit (Python's `multiprocessing.util._exit_function`)
//!
//! When a process that started children exits normally — `main` returns or
//! `std::process::exit` is called in the main process (an `atexit` handler registered at its
//! first start), or a child's target returns or panics — it first **terminates its daemonic
//! children** (SIGTERM; one still running after 1 s is SIGKILLed; every one is reaped) and
//! then **joins its non-daemonic children, without a timeout, as Python does**: a
//! non-daemonic child that never ends keeps its parent from exiting. Handles dropped earlier
//! count too. A process killed by a signal, or leaving with `_exit`, does none of this; its
//! daemonic children still die with it (`PR_SET_PDEATHSIG`), which Python's would not: here a
//! daemonic child also dies when its parent crashes, with SIGKILL (no cleanup in the child),
//! and the kernel sends that signal when the **thread** that started the child exits, so
//! start daemons from a thread that lives as long as the parent (for example `main`).
//!
//! As in Python, a daemonic process cannot start children ([`StartError::DaemonicParent`]),
//! and a started process's daemon flag and start method cannot change
//! ([`Process::daemon`] and [`Process::start_method`] panic after [`Process::start`], as
//! Python's assignments raise). A spawned child's [`get_start_method`] is its parent's, as a
//! forked child's is (Python passes it in the spawn preparation data).
//!
//! # Dropping a `Process`
//!
//! Dropping never blocks and never signals: a running child keeps running (daemon or not)
//! until it ends or its parent exits (see "At exit"). If
//! it has already ended, the drop reaps it. If not, its pid goes to a process-wide list of
//! dropped children, reaped (`waitpid(WNOHANG)`) at the next `Process::new`, `start`, drop,
//! or [`reap_dropped_children`] call, so a long-running parent that keeps starting processes
//! holds at most the zombies of children that ended since its last such call. Join (or call
//! `reap_dropped_children`) if that matters.
//!
//! # Python mapping
//!
//! | Python | mproc |
//! |---|---|
//! | `Process(target=f, args=a, name=n, daemon=d)` | `Process::new(f, a).name(n).daemon(d)` |
//! | `set_start_method('fork' / 'spawn')` | [`set_start_method`], or per process [`Process::start_method`] |
//! | `start()`, `join()`, `join(t)` | [`start`](Process::start), [`join`](Process::join), [`join_timeout`](Process::join_timeout) |
//! | `is_alive()`, `exitcode`, `pid`, `name`, `daemon`, `sentinel` | same names; the getters of the builder's `name` and `daemon` are [`Process::get_name`] and [`Process::is_daemon`] |
//! | `terminate()`, `kill()`, `close()` | same names |
//! | `current_process()`, `parent_process()` | [`current_process`], [`parent_process`] |
//! | `active_children()` | [`active_children`] (pids and names of the running children, handles kept or dropped; reaps the ended ones), [`reap_dropped_children`] |

mod at_exit;
mod boot;
mod child;
mod error;
mod global;
mod handshake;
mod registry;
mod spawn;
mod status;
pub(crate) mod sync;
pub(crate) mod sys;

use std::any::{TypeId, type_name};
use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use error::{ProcessError, StartError, StartStage, StillRunning};
pub use status::ExitStatus;

#[doc(hidden)]
pub use boot::{SpawnedChild, run_entry};
#[doc(hidden)]
pub use child::__disable_pidfd;
#[doc(hidden)]
pub use registry::{ENTRIES, EntryPoint, type_id_of_val};

use self::child::ChildProc;
use self::handshake::Handshake;
use self::sync::{AtomicBool, Ordering};
use crate::handle::{Args, Exporter, Owner, PassError};

/// Default deadline of the start hand-shake.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// How a child process is created (Python's start methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartMethod {
    /// `fork(2)`; the target closure runs in the copy. Python's `'fork'`.
    #[default]
    Fork,
    /// Re-execute the current binary and run a registered entry point. Python's `'spawn'`.
    Spawn,
}

/// `true` once [`set_start_method`] chose Spawn.
static DEFAULT_SPAWN: AtomicBool = AtomicBool::new(false);

/// Sets the start method of processes that do not choose one (Python's
/// `set_start_method(method, force=True)`).
pub fn set_start_method(method: StartMethod) {
    // Relaxed: a lone flag; a start racing with this call may use either method.
    DEFAULT_SPAWN.store(method == StartMethod::Spawn, Ordering::Relaxed);
}

/// The start method of processes that do not choose one (Python's `get_start_method()`).
pub fn get_start_method() -> StartMethod {
    // Relaxed: see `set_start_method`.
    if DEFAULT_SPAWN.load(Ordering::Relaxed) {
        StartMethod::Spawn
    } else {
        StartMethod::Fork
    }
}

/// Type-erased target + arguments, consumed by `start`.
trait Job: Send {
    fn target_type(&self) -> (TypeId, &'static str);
    fn args_type(&self) -> &'static str;
    fn export(&self, out: &mut Exporter) -> Result<(), PassError>;
    fn run_forked(self: Box<Self>, handshake: Handshake, daemon_parent: Option<libc::pid_t>) -> !;
}

struct Target<F, A> {
    target: F,
    args: A,
}

impl<F, A> Job for Target<F, A>
where
    F: FnOnce(A) + Send + 'static,
    A: Args,
{
    fn target_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<F>(), type_name::<F>())
    }

    fn args_type(&self) -> &'static str {
        type_name::<A>()
    }

    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.args.export_all(out)
    }

    fn run_forked(self: Box<Self>, handshake: Handshake, daemon_parent: Option<libc::pid_t>) -> ! {
        let Target { target, args } = *self;
        boot::fork_child(target, args, handshake, daemon_parent)
    }
}

/// A child process (Python's `multiprocessing.Process`).
///
/// Built with [`Process::new`] and the builder methods, then [`start`](Process::start)ed once.
/// After start, the query and signal methods take `&self` and the type is `Sync`, so one
/// thread may [`join`](Process::join) while another [`kill`](Process::kill)s.
/// See the [module docs](self) for start methods, exit codes, daemons and what dropping does.
pub struct Process {
    name: String,
    identity: Vec<u32>,
    daemon: bool,
    method: Option<StartMethod>,
    start_timeout: Duration,
    job: Mutex<Option<Box<dyn Job>>>,
    child: Option<Arc<ChildProc>>,
    /// The process that created this handle; only it may start, join or signal the child.
    owner: Owner,
    /// Test hook: send this entry name instead of the registered one.
    entry_override: Option<String>,
}

impl Process {
    /// A process that will run `target(args)` (Python's `Process(target=…, args=…)`).
    ///
    /// Its name defaults to `Process-N` (`Process-N:M` in a child), `daemon` to whether the
    /// current process is a daemon, and its start method to [`get_start_method`] at start.
    pub fn new<F, A>(target: F, args: A) -> Process
    where
        F: FnOnce(A) + Send + 'static,
        A: Args,
    {
        let (identity, name, daemon) = {
            let mut g = global::lock();
            g.reap_orphans();
            let (identity, name) = g.next_child();
            (identity, name, g.daemon)
        };
        Process {
            name,
            identity,
            daemon,
            method: None,
            start_timeout: DEFAULT_START_TIMEOUT,
            job: Mutex::new(Some(Box::new(Target { target, args }))),
            child: None,
            owner: Owner::current(),
            entry_override: None,
        }
    }

    /// Sets the name (Python's `name=`). Only used for display and `current_process()`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Makes the child a daemon: it is killed when its parent dies (see the module docs).
    ///
    /// # Panics
    ///
    /// After [`Process::start`], as Python's `daemon = ...` on a started process raises
    /// (`AssertionError: process has already started`): the child runs as it was started,
    /// and [`Process::is_daemon`] must keep saying so.
    pub fn daemon(mut self, daemon: bool) -> Self {
        assert!(
            self.child.is_none(),
            "Process::daemon after start(): the child is already running as started"
        );
        self.daemon = daemon;
        self
    }

    /// Chooses the start method of this process (Python: `get_context(method).Process`).
    ///
    /// # Panics
    ///
    /// After [`Process::start`] (the child was already started one way).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        assert!(
            self.child.is_none(),
            "Process::start_method after start(): the child was already started"
        );
        self.method = Some(method);
        self
    }

    /// Sets the deadline of the start hand-shake (default [`DEFAULT_START_TIMEOUT`]).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Test hook: make the spawned child look up `name` instead of the registered entry name,
    /// to exercise the child-side "unknown entry" path.
    #[doc(hidden)]
    pub fn __entry_name_override(mut self, name: &str) -> Self {
        self.entry_override = Some(name.to_string());
        self
    }

    /// The process's name.
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Whether the process is (to be) a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// The child's pid once started (Python's `pid`; `None` before start).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid as u32)
    }

    /// A descriptor that becomes readable when the child ends (Python's `sentinel`): its
    /// pidfd. `None` before start or where the kernel has no pidfd (Linux < 5.3).
    pub fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.child.as_ref().and_then(|c| c.pidfd())
    }

    /// Starts the child (Python's `start()`); returns once the child has adopted or imported
    /// its arguments, after which the parent's copies of target and arguments are dropped.
    ///
    /// # Errors
    ///
    /// See [`StartError`]: a second start, a closure under Spawn, argument export failures, and
    /// every way the hand-shake can fail (each within the start deadline). On error no child
    /// remains.
    pub fn start(&mut self) -> Result<(), StartError> {
        let job = self
            .job
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(job) = job.filter(|_| self.child.is_none() && self.owner.is_current()) else {
            return Err(StartError::AlreadyStarted);
        };
        if global::lock().daemon {
            // Put the job back: the process was not started.
            *self.job.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(job);
            return Err(StartError::DaemonicParent);
        }
        global::lock().reap_orphans();
        let method = self.method.unwrap_or_else(get_start_method);
        let child = match method {
            StartMethod::Fork => self.start_fork(job)?,
            StartMethod::Spawn => self.start_spawn(job)?,
        };
        let child = Arc::new(child);
        global::lock().register_child(&child, &self.name, self.daemon);
        at_exit::children_started();
        self.child = Some(child);
        Ok(())
    }

    #[allow(unsafe_code)] // fork(2); see the SAFETY comment.
    fn start_fork(&self, job: Box<dyn Job>) -> Result<ChildProc, StartError> {
        let (hs_r, hs_w) = sys::pipe()?;
        let parent = sys::getpid();
        let identity = self.identity.clone();
        let name = self.name.clone();
        // Held across fork so the child never inherits the lock taken by another thread.
        let mut g = global::lock();
        // SAFETY: the child branch below only runs `run_forked`, which never returns (it
        // leaves with `_exit`), and keeps to what a fork child may do (see the module docs).
        match unsafe { sys::fork() }? {
            sys::Forked::Child => {
                crate::handle::bump_epoch();
                g.become_child(identity, name, parent as u32, self.daemon);
                drop(g);
                drop(hs_r);
                job.run_forked(Handshake::new(hs_w), self.daemon.then_some(parent))
            }
            sys::Forked::Parent(pid) => {
                drop(g);
                drop(hs_w);
                let child = ChildProc::new(pid);
                handshake::await_ready(hs_r, &child, self.start_timeout)?;
                // The child holds its arguments now; release the parent's copies.
                drop(job);
                Ok(child)
            }
        }
    }

    fn start_spawn(&self, job: Box<dyn Job>) -> Result<ChildProc, StartError> {
        let (type_id, target_name) = job.target_type();
        let entry = registry::by_type(type_id).ok_or(StartError::NotSpawnable {
            target: target_name,
        })?;
        if registry::by_name(entry.name).count() > 1 {
            return Err(StartError::DuplicateEntry(entry.name.to_string()));
        }
        let mut exporter = Exporter::new();
        job.export(&mut exporter)?;
        let request = spawn::SpawnRequest {
            version: spawn::PROTOCOL_VERSION,
            entry: self
                .entry_override
                .clone()
                .unwrap_or_else(|| entry.name.to_string()),
            args_type: job.args_type().to_string(),
            identity: self.identity.clone(),
            name: self.name.clone(),
            daemon: self.daemon,
            parent_pid: sys::getpid() as u32,
            start_method_spawn: get_start_method() == StartMethod::Spawn,
            fds: exporter.raw_fds(),
            values: std::mem::take(&mut exporter.values),
        };
        let child = self.spawn_request(&request, &exporter)?;
        drop(exporter);
        drop(job);
        Ok(child)
    }

    fn spawn_request(
        &self,
        request: &spawn::SpawnRequest,
        exporter: &Exporter,
    ) -> Result<ChildProc, StartError> {
        let (pid, hs_r) = spawn::spawn_child(request, &exporter.raw_fds())?;
        let child = ChildProc::new(pid);
        handshake::await_ready(hs_r, &child, self.start_timeout)?;
        Ok(child)
    }

    fn started(&self) -> Result<&ChildProc, ProcessError> {
        let child = self.child.as_ref().ok_or(ProcessError::NotStarted)?;
        if !self.owner.is_current() {
            return Err(ProcessError::NotParent);
        }
        Ok(child)
    }

    /// Waits for the child to end (Python's `join()`) and returns how it ended.
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotStarted`], [`ProcessError::NotParent`] (a copy inherited by a
    /// child), [`ProcessError::Lost`] if the child was reaped elsewhere.
    pub fn join(&self) -> Result<ExitStatus, ProcessError> {
        self.started()?
            .wait(None)
            .map(|s| s.expect("waited without a deadline"))
    }

    /// Waits at most `timeout` (Python's `join(timeout)`): `Ok(None)` if the child still runs.
    /// `Duration::ZERO` just polls.
    ///
    /// # Errors
    ///
    /// As [`join`](Process::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, ProcessError> {
        self.started()?.wait(Some(Instant::now() + timeout))
    }

    /// Whether the child has been started and has not ended (Python's `is_alive()`).
    pub fn is_alive(&self) -> bool {
        self.started()
            .is_ok_and(|c| matches!(c.try_status(), Ok(None)))
    }

    /// Python's `exitcode`: `None` before start or while running; else the exit code, or
    /// minus the signal number.
    pub fn exitcode(&self) -> Option<i32> {
        self.status().map(ExitStatus::exitcode)
    }

    /// How the child ended, if it has (non-blocking; reaps it).
    pub fn status(&self) -> Option<ExitStatus> {
        self.started().ok()?.try_status().ok().flatten()
    }

    /// Sends SIGTERM (Python's `terminate()`). A no-op once the child has been reaped.
    ///
    /// # Errors
    ///
    /// As [`join`](Process::join), or the signal could not be sent.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.started()?.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL (Python's `kill()`). A no-op once the child has been reaped.
    ///
    /// # Errors
    ///
    /// As [`terminate`](Process::terminate).
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.started()?.signal(libc::SIGKILL)
    }

    /// Releases the handle (Python's `close()`); refused while the child runs.
    ///
    /// # Errors
    ///
    /// [`StillRunning`], giving the process back.
    pub fn close(self) -> Result<(), StillRunning> {
        if self.is_alive() {
            Err(StillRunning(Box::new(self)))
        } else {
            Ok(())
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let current = self.owner.is_current();
        let Some(child) = self.child.take() else {
            return;
        };
        if !current {
            // An inherited copy: not our child; nothing to reap.
            return;
        }
        let running = matches!(child.try_status(), Ok(None));
        let mut g = global::lock();
        if running {
            // The registry holds only weak references, so the child is ours alone here
            // unless a `running_children` list (the exit hook's, `active_children`'s) holds
            // it for a moment: then a second record of the same unreaped child will do.
            let child = Arc::try_unwrap(child).unwrap_or_else(|c| ChildProc::new(c.pid));
            g.adopt_orphan(child, self.name.clone(), self.daemon);
        }
        g.reap_orphans();
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("daemon", &self.daemon)
            .field(
                "status",
                &self
                    .child
                    .as_ref()
                    .and_then(|c| c.try_status().ok().flatten()),
            )
            .finish_non_exhaustive()
    }
}

/// Reaps dropped children that have ended; returns how many dropped children still run
/// (Python's `active_children()` also reaps as a side effect).
pub fn reap_dropped_children() -> usize {
    let mut g = global::lock();
    g.reap_orphans();
    g.orphan_count()
}

/// This process as mproc sees it (Python's `current_process()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentProcess {
    /// `MainProcess`, or the name the parent gave (`Process-N`, …).
    pub name: String,
    /// This process's pid.
    pub pid: u32,
    /// Whether it was started as a daemon.
    pub daemon: bool,
    /// Empty in the main process; the child numbers along the way (`[1, 2]` for
    /// `Process-1:2`), Python's `_identity`.
    pub identity: Vec<u32>,
}

/// This process's name, pid and identity (Python's `current_process()`).
pub fn current_process() -> CurrentProcess {
    let g = global::lock();
    CurrentProcess {
        name: g.name.clone().unwrap_or_else(|| "MainProcess".into()),
        pid: sys::getpid() as u32,
        daemon: g.daemon,
        identity: g.identity.clone(),
    }
}

/// A running child of this process, as [`active_children`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActiveChild {
    /// Its pid.
    pub pid: u32,
    /// Its name ([`Process::name`], `Process-N` by default).
    pub name: String,
}

/// The children this process started that are still running, whether or not their
/// [`Process`] handles still exist (Python's `active_children()`). Like Python's, it reaps the
/// children it finds ended (their handles still report the status).
pub fn active_children() -> Vec<ActiveChild> {
    global::lock()
        .running_children()
        .into_iter()
        .map(|c| ActiveChild {
            pid: c.child.pid as u32,
            name: c.name,
        })
        .collect()
}

/// The process that started this one, if mproc started it (Python's `parent_process()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentProcess {
    /// The parent's pid.
    pub pid: u32,
}

impl ParentProcess {
    /// Whether the parent is still alive (we have not been re-parented).
    pub fn is_alive(&self) -> bool {
        sys::getppid() as u32 == self.pid
    }
}

/// The parent, in a process started by mproc; `None` in the main process.
pub fn parent_process() -> Option<ParentProcess> {
    global::lock().parent_pid.map(|pid| ParentProcess { pid })
}
