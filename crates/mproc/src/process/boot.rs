//! The child's side of starting: what runs between `fork`/`exec` and the target, and how the
//! child leaves.
//!
//! Both start methods end in [`run_target`]: the target runs inside `catch_unwind`; a normal
//! return exits 0, a panic exits 1 after the panic message was written to stderr; the
//! child's own children are finished as at a normal exit (daemonic ones terminated, the others
//! joined: `at_exit.rs`); stdout and stderr are flushed; then `_exit`. The child never returns into its caller's stack (under
//! `cargo test` that stack is the test harness's) and never runs the parent's atexit handlers.
#![allow(unsafe_code)]

use std::any::type_name;
use std::ffi::{OsStr, c_char, c_int};
use std::io::{Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::error::StartStage;
use super::global;
use super::handshake::{Handshake, START_FAILED_EXIT};
use super::registry;
use super::spawn::{ArchivedSpawnRequest, ENV_VAR, PROTOCOL_VERSION, SpawnRequest};
use super::sync::{AtomicBool, Ordering};
use super::sys;
use crate::handle::{self, Args, Importer};

/// Everything a spawned child's entry point needs: its arguments and its hand-shake.
#[doc(hidden)]
#[derive(Debug)]
pub struct SpawnedChild {
    importer: Importer,
    handshake: Handshake,
    args_type: String,
}

/// Child side of an entry point registered with [`entry!`](crate::entry).
#[doc(hidden)]
pub fn run_entry<F, A>(target: F, child: SpawnedChild) -> !
where
    F: FnOnce(A),
    A: Args,
{
    let SpawnedChild {
        mut importer,
        handshake,
        args_type,
    } = child;
    if args_type != type_name::<A>() {
        handshake.fail(
            StartStage::Import,
            &format!(
                "argument type mismatch: parent sent `{args_type}`, entry takes `{}`",
                type_name::<A>()
            ),
        );
    }
    let args = match catch_unwind(AssertUnwindSafe(|| A::import_all(&mut importer))) {
        Ok(Ok(args)) => args,
        Ok(Err(e)) => handshake.fail(StartStage::Import, &e.report()),
        Err(_) => handshake.fail(StartStage::Import, "panicked while importing arguments"),
    };
    if !importer.is_exhausted() {
        handshake.fail(
            StartStage::Import,
            "more argument values than the entry takes",
        );
    }
    // Descriptors no import claimed are closed here, so the child holds exactly its arguments.
    drop(importer);
    handshake.ready();
    run_target(move || target(args))
}

/// Child side of the fork start method: adopt the arguments, report, run. Never returns.
pub(crate) fn fork_child<A: Args>(
    target: impl FnOnce(A),
    mut args: A,
    handshake: Handshake,
    daemon_parent: Option<libc::pid_t>,
) -> ! {
    // Anything that unwinds here would unwind into the parent's code (copied by fork).
    let outcome = catch_unwind(AssertUnwindSafe(move || {
        if let Some(parent) = daemon_parent
            && !sys::die_with_parent(parent)
        {
            handshake.fail(
                StartStage::ParentGone,
                "parent exited before the daemon child armed PR_SET_PDEATHSIG",
            );
        }
        sys::stdin_to_devnull();
        match catch_unwind(AssertUnwindSafe(|| args.adopt_all())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => handshake.fail(StartStage::Adopt, &e.report()),
            Err(_) => handshake.fail(StartStage::Adopt, "panicked while adopting arguments"),
        }
        handshake.ready();
        run_target(move || target(args))
    }));
    let _ = outcome;
    sys::exit_now(START_FAILED_EXIT)
}

/// Runs the target and leaves the process: exit code 0, or 1 after a panic.
pub(crate) fn run_target(target: impl FnOnce()) -> ! {
    install_panic_hook();
    let code = match catch_unwind(AssertUnwindSafe(target)) {
        Ok(()) => 0,
        Err(payload) => {
            // Dropping a panic payload can panic again; it is about to vanish with us anyway.
            std::mem::forget(payload);
            1
        }
    };
    // As Python's `_bootstrap`: terminate our daemonic children, join the others.
    let _ = catch_unwind(super::at_exit::finish_children);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    sys::exit_now(code)
}

/// In a child: report panics straight to fd 2 as `Process <name>: panicked at …`.
///
/// Replaces any hook inherited through fork: under `cargo test` the default hook writes into
/// the harness's output capture, which a child that `_exit`s would never deliver.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let name = global::lock()
            .name
            .clone()
            .unwrap_or_else(|| "MainProcess".into());
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr().lock(),
            "Process {name}: panicked{at}:\n{msg}"
        );
    }));
}

// ---------------------------------------------------------------------------------------------
// The pre-main spawn hook.

/// Set by the hook in every process of a binary that links it; the parent refuses to spawn
/// without it (a child would run `main`).
static HOOK_RAN: AtomicBool = AtomicBool::new(false);

/// Whether the pre-main hook is linked into (and ran in) this binary.
pub(crate) fn hook_linked() -> bool {
    // Acquire: pairs with the Release store in `spawn_hook`, which ran before `main`.
    HOOK_RAN.load(Ordering::Acquire)
}

/// `.init_array` entry: runs before `main` in every process of the binary (and before the
/// libtest harness under `cargo test`/nextest). It does nothing unless `MPROC_SPAWN` is set.
#[used]
#[unsafe(link_section = ".init_array")]
static SPAWN_HOOK: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = spawn_hook;

extern "C" fn spawn_hook(_argc: c_int, _argv: *const *const c_char, _env: *const *const c_char) {
    // Release: pairs with the Acquire in `hook_linked`.
    HOOK_RAN.store(true, Ordering::Release);
    handle::ensure_atfork();
    let Some(value) = std::env::var_os(ENV_VAR) else {
        return;
    };
    // SAFETY: we are before `main`, single-threaded, so nothing reads the environment
    // concurrently. Removed so that the child's own children never see it.
    unsafe { std::env::remove_var(ENV_VAR) };
    // Never unwind out of an `extern "C"` function (that aborts); fail cleanly instead.
    let _ = catch_unwind(|| spawned_child_main(&value));
    sys::exit_now(START_FAILED_EXIT)
}

/// Parses `v<version>:<handshake fd>:<request fd>`.
fn parse_env(value: &OsStr) -> Option<(RawFd, RawFd)> {
    let text = std::str::from_utf8(value.as_bytes()).ok()?;
    let mut parts = text.split(':');
    let version = parts.next()?.strip_prefix('v')?.parse::<u32>().ok()?;
    let hs = parts.next()?.parse::<RawFd>().ok()?;
    let req = parts.next()?.parse::<RawFd>().ok()?;
    (version == PROTOCOL_VERSION && parts.next().is_none() && hs > 2 && req > 2 && hs != req)
        .then_some((hs, req))
}

fn spawned_child_main(value: &OsStr) -> ! {
    let Some((hs_fd, req_fd)) = parse_env(value) else {
        // No hand-shake channel to report on; the parent sees the child die.
        sys::exit_now(START_FAILED_EXIT)
    };
    if !sys::fd_is_open(hs_fd) || !sys::fd_is_open(req_fd) {
        sys::exit_now(START_FAILED_EXIT)
    }
    // SAFETY: the parent made exactly these two numbers inheritable for us, and nothing else
    // in this fresh process has claimed them.
    let handshake = Handshake::new(unsafe { sys::own_fd(hs_fd) });
    // SAFETY: as above.
    let req_file = std::fs::File::from(unsafe { sys::own_fd(req_fd) });
    let req = match read_request(req_file) {
        Ok(req) => req,
        Err(msg) => handshake.fail(StartStage::BadRequest, &msg),
    };
    let mut fds = Vec::with_capacity(req.fds.len());
    for &fd in &req.fds {
        if fd <= 2 || fd == hs_fd || fd == req_fd || !sys::fd_is_open(fd) || fds_contains(&fds, fd)
        {
            handshake.fail(
                StartStage::BadRequest,
                &format!("descriptor {fd} was not passed"),
            );
        }
        // SAFETY: the parent cleared close-on-exec on exactly the numbers in `req.fds` (each
        // a private duplicate), and each number is wrapped once (checked just above).
        fds.push(unsafe { sys::own_fd(fd) });
    }
    {
        let mut g = global::lock();
        g.become_child(
            req.identity.clone(),
            req.name.clone(),
            req.parent_pid,
            req.daemon,
        );
    }
    if req.start_method_spawn {
        super::set_start_method(super::StartMethod::Spawn);
    }
    sys::stdin_to_devnull();
    // Rust's runtime ignores SIGPIPE before `main`; this child never gets there, so do it here
    // (`std::process::Command` reset it to the default in the exec'd image).
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    let mut found = registry::by_name(&req.entry);
    let entry = match (found.next(), found.next()) {
        (Some(e), None) => e,
        (None, _) => handshake.fail(
            StartStage::UnknownEntry,
            &format!("no entry point `{}` in this binary", req.entry),
        ),
        (Some(_), Some(_)) => handshake.fail(
            StartStage::UnknownEntry,
            &format!("entry point `{}` is registered more than once", req.entry),
        ),
    };
    let child = SpawnedChild {
        importer: Importer::new(req.values, fds),
        handshake,
        args_type: req.args_type,
    };
    (entry.run)(child)
}

fn fds_contains(fds: &[OwnedFd], fd: RawFd) -> bool {
    use std::os::fd::AsRawFd;
    fds.iter().any(|f| f.as_raw_fd() == fd)
}

/// Reads and validates the start request (bytecheck) from the parent's memfd.
fn read_request(mut file: std::fs::File) -> Result<SpawnRequest, String> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("reading start request: {e}"))?;
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(&bytes);
    let archived = rkyv::access::<ArchivedSpawnRequest, rkyv::rancor::Error>(&aligned)
        .map_err(|e| format!("invalid start request: {e}"))?;
    if archived.version != PROTOCOL_VERSION {
        return Err(format!(
            "start request version {} (expected {PROTOCOL_VERSION})",
            archived.version
        ));
    }
    rkyv::deserialize::<SpawnRequest, rkyv::rancor::Error>(archived)
        .map_err(|e| format!("invalid start request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_value_is_checked() {
        let ok = format!("v{PROTOCOL_VERSION}:5:6");
        assert_eq!(parse_env(OsStr::new(&ok)), Some((5, 6)));
        assert_eq!(parse_env(OsStr::new("v999:5:6")), None);
        assert_eq!(
            parse_env(OsStr::new(&format!("v{PROTOCOL_VERSION}:1:6"))),
            None
        );
        assert_eq!(
            parse_env(OsStr::new(&format!("v{PROTOCOL_VERSION}:5:5"))),
            None
        );
        assert_eq!(
            parse_env(OsStr::new(&format!("v{PROTOCOL_VERSION}:5:6:7"))),
            None
        );
        assert_eq!(parse_env(OsStr::new("garbage")), None);
    }

    #[test]
    fn hook_is_linked_in_unit_tests() {
        assert!(hook_linked());
    }
}
