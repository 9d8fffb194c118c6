//! Python's process rules (#14): a daemonic process cannot have children, a started process's
//! daemon flag and start method cannot change under it, a spawned child sees its parent's
//! default start method (Python's spawn preparation data), and a process that exits normally
//! terminates its daemonic children and joins the others first (Python's `_exit_function`).
#![allow(clippy::disallowed_types)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mproc::{Process, StartError, StartMethod};

const LONG: Duration = Duration::from_secs(10);

/// Exits 10 + 1 if this (spawned) process's default start method is spawn, 10 + 0 if fork.
fn reports_start_method(_: ()) {
    let spawn = mproc::get_start_method() == StartMethod::Spawn;
    std::process::exit(10 + i32::from(spawn));
}
mproc::entry!(reports_start_method);

fn exit_code(p: &Process) -> Option<i32> {
    p.join_timeout(LONG)
        .expect("join")
        .map(|status| status.exitcode())
}

#[test]
fn a_daemonic_process_cannot_start_children() {
    let mut p = Process::new(
        |(): ()| {
            let mut grandchild = Process::new(|(): ()| {}, ());
            let code = match grandchild.start() {
                Err(StartError::DaemonicParent) => 0,
                Err(_) => 2,
                Ok(()) => 3,
            };
            std::process::exit(code);
        },
        (),
    )
    .daemon(true);
    p.start().unwrap();
    assert_eq!(exit_code(&p), Some(0), "0: refused as a daemonic parent");
    // A non-daemonic child may.
    let mut q = Process::new(
        |(): ()| {
            let mut grandchild = Process::new(|(): ()| {}, ());
            let ok = grandchild.start().is_ok() && grandchild.join_timeout(LONG).is_ok();
            std::process::exit(if ok { 0 } else { 1 });
        },
        (),
    );
    q.start().unwrap();
    assert_eq!(exit_code(&q), Some(0));
}

#[test]
fn daemon_and_start_method_cannot_change_after_start() {
    let mut p = Process::new(|(): ()| std::thread::sleep(Duration::from_millis(50)), ());
    p.start().unwrap();
    let p = match catch_unwind(AssertUnwindSafe(move || p.daemon(true))) {
        Ok(_) => panic!("daemon(true) after start() was accepted"),
        Err(_) => Process::new(|(): ()| {}, ()),
    };
    let mut started = p;
    started.start().unwrap();
    assert!(!started.is_daemon());
    assert!(
        catch_unwind(AssertUnwindSafe(
            move || started.start_method(StartMethod::Spawn)
        ))
        .is_err(),
        "start_method after start() was accepted"
    );
}

#[test]
fn a_spawned_child_sees_its_parents_start_method() {
    for (parents, code) in [(StartMethod::Spawn, 11), (StartMethod::Fork, 10)] {
        mproc::set_start_method(parents);
        let mut p = Process::new(reports_start_method, ()).start_method(StartMethod::Spawn);
        p.start().unwrap();
        assert_eq!(
            exit_code(&p),
            Some(code),
            "the child's default is the parent's: {parents:?}"
        );
    }
}

/// `active_children()` (Python's): the running children, whether their handles live or were
/// dropped; an ended child is reaped and left out, its handle still reports its status.
#[test]
fn active_children_lists_the_running_ones() {
    let sleeper = |(): ()| std::thread::sleep(Duration::from_secs(30));
    let mut kept = Process::new(sleeper, ()).name("kept");
    kept.start().unwrap();
    let mut dropped = Process::new(sleeper, ()).name("dropped");
    dropped.start().unwrap();
    let dropped_pid = dropped.pid().unwrap();
    drop(dropped);
    let mut quick = Process::new(|(): ()| {}, ()).name("quick");
    quick.start().unwrap();
    // Wait (bounded) until the quick one has ended, without joining it.
    let deadline = std::time::Instant::now() + LONG;
    let names = loop {
        let active = mproc::active_children();
        let names: Vec<String> = active.iter().map(|c| c.name.clone()).collect();
        if !names.iter().any(|n| n == "quick") || std::time::Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(names.contains(&"kept".to_string()), "{names:?}");
    assert!(names.contains(&"dropped".to_string()), "{names:?}");
    assert!(!names.contains(&"quick".to_string()), "{names:?}");
    assert_eq!(
        quick.exitcode(),
        Some(0),
        "the handle still reports the reaped child"
    );
    assert!(
        mproc::active_children()
            .iter()
            .any(|c| c.pid == dropped_pid)
    );
    kept.kill().unwrap();
    kept.join_timeout(LONG).unwrap();
    // The dropped sleeper has no handle left: signal it by pid.
    let _ = std::process::Command::new("kill")
        .args(["-9", &dropped_pid.to_string()])
        .status();
}

// ---- at exit ------------------------------------------------------------------------------

/// The helper's mode and report file, `<mode>:<path>`; the helper test does nothing without it.
const AT_EXIT_HELPER: &str = "MPROC_AT_EXIT_HELPER";

/// Whether `pid` no longer exists (ended *and* reaped).
fn is_gone(pid: u32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with signal 0 only checks the pid.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// The non-daemonic worker: works a while (long enough that a parent that did not join it
/// would be gone), waits (bounded) until the daemonic sibling is gone, and reports whether
/// its parent was still alive — joining it — by then.
fn at_exit_worker((daemon_pid, report): (u32, String)) {
    std::thread::sleep(Duration::from_millis(300));
    // Shorter than the test's bound on the helper, so a daemon left running is reported.
    let deadline = Instant::now() + LONG / 2;
    let mut daemon_gone = is_gone(daemon_pid);
    while !daemon_gone && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        daemon_gone = is_gone(daemon_pid);
    }
    let parent_alive = mproc::parent_process().is_some_and(|p| p.is_alive());
    std::fs::write(
        report,
        format!("worked daemon_gone={daemon_gone} parent_alive={parent_alive}"),
    )
    .unwrap();
}

/// The daemonic sleeper: blocks SIGTERM, writes `armed` to its file, and waits for the
/// signal; on SIGTERM (Python's `terminate()`) writes `SIGTERM` and returns. Any other end
/// (SIGKILL) leaves `armed`.
fn sigterm_sleeper((marker,): (String,)) {
    #[allow(unsafe_code)]
    // SAFETY: plain signal-mask calls on a local, initialised set; this forked child has one
    // thread, so blocking SIGTERM here blocks it for the process and `sigwait` receives it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::fs::write(&marker, "armed").unwrap();
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
    }
    std::fs::write(&marker, "SIGTERM").unwrap();
}

/// Starts [`sigterm_sleeper`] as a daemon and waits (bounded) until it is armed.
fn start_sleeper(marker: &str) -> Process {
    let _ = std::fs::remove_file(marker);
    let mut daemon = Process::new(sigterm_sleeper, (marker.to_string(),))
        .daemon(true)
        .name("sleeper");
    daemon.start().unwrap();
    let deadline = Instant::now() + LONG;
    while std::fs::read_to_string(marker).ok().as_deref() != Some("armed") {
        assert!(Instant::now() < deadline, "the sleeper never armed");
        std::thread::sleep(Duration::from_millis(2));
    }
    daemon
}

fn marker_of(report: &str) -> String {
    format!("{report}.daemon")
}

/// Starts a daemonic sleeper and a non-daemonic worker, then leaves them to the exit hook:
/// returns (the harness's `main` returns) or calls `std::process::exit(0)`.
#[test]
fn at_exit_helper() {
    let Some(spec) = std::env::var_os(AT_EXIT_HELPER) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let (mode, report) = spec.split_once(':').unwrap();
    let daemon = start_sleeper(&marker_of(report));
    let mut worker =
        Process::new(at_exit_worker, (daemon.pid().unwrap(), report.to_string())).name("worker");
    worker.start().unwrap();
    if mode == "exit" {
        // From the thread that started the daemon, so its PR_SET_PDEATHSIG (armed on this
        // thread's exit) cannot be what ends it: only the exit hook can, before we leave.
        std::process::exit(0);
    }
    // "return": the handles drop here, the harness returns from `main`.
}

/// Runs [`at_exit_helper`] in a copy of this test binary (bounded) and returns the worker's
/// report, read as soon as the helper has exited.
fn run_at_exit_helper(mode: &str) -> String {
    let report: PathBuf =
        std::env::temp_dir().join(format!("mproc-at-exit-{mode}-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let helper = mproc_testkit::self_command(
        AT_EXIT_HELPER,
        "at_exit_helper",
        &format!("{mode}:{}", report.display()),
    )
    .spawn()
    .unwrap();
    let status = mproc_testkit::wait_spawned(helper, LONG);
    assert!(status.success(), "{mode}: helper {status:?}");
    let out = read_report(&report);
    let marker = marker_of(&report.display().to_string());
    let daemon = std::fs::read_to_string(&marker).unwrap_or_default();
    std::fs::remove_file(&report).ok();
    std::fs::remove_file(&marker).ok();
    format!("{out}; daemon {daemon}")
}

fn read_report(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|_| "no report: the worker was not joined".into())
}

#[test]
fn at_exit_the_daemon_is_terminated_and_the_worker_joined() {
    // `std::process::exit` from the starting thread: the daemon is gone while the parent
    // still lives (its hook terminated and reaped it), and the worker finished first.
    assert_eq!(
        run_at_exit_helper("exit"),
        "worked daemon_gone=true parent_alive=true; daemon SIGTERM"
    );
}

#[test]
fn at_exit_after_main_returns_the_worker_is_joined() {
    // The daemon may be gone before the hook runs: libtest runs the test on a thread of its
    // own, whose end fires the daemon's PR_SET_PDEATHSIG (SIGKILL, so no SIGTERM report).
    // Either way it is gone, reaped by the hook, before the worker finishes.
    let out = run_at_exit_helper("return");
    assert!(
        out.starts_with("worked daemon_gone=true parent_alive=true; daemon "),
        "{out}"
    );
}

#[test]
fn a_child_joins_its_own_children_when_its_target_returns() {
    let report =
        std::env::temp_dir().join(format!("mproc-at-exit-child-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let path = report.display().to_string();
    let mut child = Process::new(
        |(path,): (String,)| {
            let daemon = start_sleeper(&marker_of(&path));
            let mut worker = Process::new(at_exit_worker, (daemon.pid().unwrap(), path));
            worker.start().unwrap();
            // Returns with both running; `Process` handles dropped.
        },
        (path,),
    );
    child.start().unwrap();
    assert_eq!(exit_code(&child), Some(0));
    let out = read_report(&report);
    let marker = marker_of(&report.display().to_string());
    let daemon = std::fs::read_to_string(&marker).unwrap_or_default();
    std::fs::remove_file(&report).ok();
    std::fs::remove_file(&marker).ok();
    assert_eq!(
        format!("{out}; daemon {daemon}"),
        "worked daemon_gone=true parent_alive=true; daemon SIGTERM"
    );
}
