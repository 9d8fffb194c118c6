//! `Process` with the fork start method: exit codes, join with timeout, liveness, signals,
//! daemons, dropping without zombies. Every wait is bounded.
#![allow(unsafe_code)]

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{pipe, read_to_end, read_up_to};
use mproc::{Process, ProcessError, StartError, StartMethod};
use mproc_testkit::eventually;

/// Generous bound for anything that should happen "at once".
const LONG: Duration = Duration::from_secs(10);

fn fork(p: Process) -> Process {
    let mut p = p.start_method(StartMethod::Fork);
    p.start().expect("start");
    p
}

fn exitcode_within(p: &Process, limit: Duration) -> i32 {
    match p.join_timeout(limit).expect("join") {
        Some(status) => status.exitcode(),
        None => {
            let _ = p.kill();
            let _ = p.join_timeout(LONG);
            panic!("child {:?} did not end within {limit:?}", p.pid());
        }
    }
}

/// The kernel's state letter for `pid` (`None` once it is gone).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ..."; comm may contain spaces, so split after the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn normal_return_is_exitcode_zero() {
    let p = fork(Process::new(|()| {}, ()));
    assert_eq!(exitcode_within(&p, LONG), 0);
    assert_eq!(p.exitcode(), Some(0));
    assert!(p.status().unwrap().success());
}

#[test]
fn process_exit_code_is_reported() {
    let p = fork(Process::new(
        |(code,): (i32,)| std::process::exit(code),
        (3,),
    ));
    assert_eq!(exitcode_within(&p, LONG), 3);
}

#[test]
fn panic_exits_1_with_message_on_stderr() {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    let p = fork(
        Process::new(
            move |(fd,): (i32,)| {
                // Point the child's stderr at our pipe, then panic.
                // SAFETY: `fd` is the inherited write end of the test's pipe.
                unsafe { libc::dup2(fd, 2) };
                panic!("boom from the child");
            },
            (wfd,),
        )
        .name("Panicker"),
    );
    drop(w);
    let err = String::from_utf8(read_to_end(r, LONG)).unwrap();
    assert_eq!(exitcode_within(&p, LONG), 1);
    assert!(err.contains("boom from the child"), "stderr was {err:?}");
    assert!(
        err.contains("Process Panicker: panicked at"),
        "stderr was {err:?}"
    );
}

#[test]
fn kill_is_minus_9_and_terminate_is_minus_15() {
    let sleeper = || Process::new(|()| std::thread::sleep(Duration::from_secs(60)), ());
    let p = fork(sleeper());
    assert!(p.is_alive());
    p.kill().unwrap();
    assert_eq!(exitcode_within(&p, LONG), -9);
    assert_eq!(p.status().unwrap().to_string(), "exitcode=-SIGKILL");
    // Signalling a reaped child is a no-op, as in Python.
    p.kill().unwrap();

    let p = fork(sleeper());
    p.terminate().unwrap();
    assert_eq!(exitcode_within(&p, LONG), -15);
}

#[test]
fn join_timeout_returns_none_in_time_then_is_alive_transitions() {
    let p = fork(Process::new(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
    ));
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    let t0 = Instant::now();
    assert_eq!(p.join_timeout(Duration::from_millis(200)).unwrap(), None);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "returned early: {waited:?}"
    );
    assert!(waited < LONG, "join_timeout overran: {waited:?}");
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), None);
    assert!(p.is_alive());
    p.terminate().unwrap();
    assert_eq!(exitcode_within(&p, LONG), -15);
    assert!(!p.is_alive());
}

#[test]
fn not_started_and_started_twice() {
    let mut p = Process::new(|()| {}, ()).start_method(StartMethod::Fork);
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.pid(), None);
    assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
    p.start().unwrap();
    assert!(matches!(p.start(), Err(StartError::AlreadyStarted)));
    assert_eq!(exitcode_within(&p, LONG), 0);
    p.close().unwrap();
}

#[test]
fn close_refuses_a_running_child() {
    let p = fork(Process::new(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
    ));
    let p = p.close().expect_err("still running").0;
    p.kill().unwrap();
    exitcode_within(&p, LONG);
    p.close().unwrap();
}

#[test]
fn names_and_current_process() {
    let main = mproc::current_process();
    let p = Process::new(|()| {}, ());
    assert!(p.get_name().starts_with("Process-"), "{}", p.get_name());
    // The child reports its name and parent through its exit code: 0 when all match.
    let name = p.get_name().to_string();
    let parent = main.pid;
    let p = fork(
        Process::new(
            move |()| {
                let me = mproc::current_process();
                let ok = me.name == "Child"
                    && me.identity.len() == main.identity.len() + 1
                    && mproc::parent_process().is_some_and(|pp| pp.pid == parent && pp.is_alive());
                std::process::exit(if ok { 0 } else { 1 });
            },
            (),
        )
        .name("Child"),
    );
    assert_ne!(name, "Child");
    assert_eq!(exitcode_within(&p, LONG), 0);
}

#[test]
fn dropping_an_unjoined_handle_leaves_no_zombie() {
    // The child outlives its handle briefly, then exits on its own.
    let p = fork(Process::new(
        |()| std::thread::sleep(Duration::from_secs(1)),
        (),
    ));
    let pid = p.pid().unwrap();
    drop(p); // still running: handed to the reaper, not killed
    assert!(
        matches!(proc_state(pid), Some(c) if c != 'Z'),
        "dropping must not kill the child"
    );
    // Once it has exited, the next Process operation (here the explicit call) reaps it.
    let gone = eventually(LONG, || {
        mproc::reap_dropped_children();
        proc_state(pid).is_none()
    });
    assert!(gone, "pid {pid} state {:?}", proc_state(pid));
}

#[test]
fn dropping_a_finished_handle_reaps_it() {
    // Sleep a little so the child is still running when start() returns (a child that ends
    // during the hand-shake is reaped by start itself, which is fine but not what we test).
    let p = fork(Process::new(
        |()| std::thread::sleep(Duration::from_millis(100)),
        (),
    ));
    let pid = p.pid().unwrap();
    // Wait for it to become a zombie without reaping it through the handle.
    assert!(
        eventually(LONG, || matches!(proc_state(pid), Some('Z') | None)),
        "state {:?}",
        proc_state(pid)
    );
    drop(p);
    assert_eq!(proc_state(pid), None);
}

/// A forked intermediate starts a daemon and a non-daemon grandchild, reports both pids, and
/// leaves with `_exit` (as a crash would: no exit hook terminates or joins anything). The
/// daemon must die with it (PR_SET_PDEATHSIG); the other must live on.
#[test]
fn daemon_child_dies_with_its_parent() {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    let mid = fork(Process::new(
        move |(fd,): (i32,)| {
            let sleeper = || Process::new(|()| std::thread::sleep(Duration::from_secs(30)), ());
            let mut daemon = sleeper().daemon(true).start_method(StartMethod::Fork);
            let mut plain = sleeper().start_method(StartMethod::Fork);
            daemon.start().unwrap();
            plain.start().unwrap();
            let pids = [daemon.pid().unwrap(), plain.pid().unwrap()];
            let bytes: Vec<u8> = pids.iter().flat_map(|p| p.to_le_bytes()).collect();
            // SAFETY: writing a valid buffer to the inherited pipe.
            unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            std::mem::forget((daemon, plain));
            // SAFETY: `_exit` has no preconditions; it skips the exit hook on purpose.
            unsafe { libc::_exit(0) }
        },
        (wfd,),
    ));
    drop(w);
    assert_eq!(exitcode_within(&mid, LONG), 0);
    // Not to EOF: the grandchildren inherited the write end.
    let bytes = read_up_to(r, 8, LONG);
    assert_eq!(bytes.len(), 8, "intermediate reported {bytes:?}");
    let daemon = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    let plain = u32::from_le_bytes(bytes[4..].try_into().unwrap());
    let dead = |pid| matches!(proc_state(pid), None | Some('Z') | Some('X'));
    assert!(
        eventually(LONG, || dead(daemon)),
        "daemon {daemon} survived its parent"
    );
    let plain_alive = !dead(plain);
    // SAFETY: kill(2) with integers; clean up the orphan either way.
    unsafe { libc::kill(plain as i32, libc::SIGKILL) };
    assert!(plain_alive, "non-daemon child died with its parent");
}

#[test]
fn join_from_another_thread_while_killing() {
    let p = std::sync::Arc::new(fork(Process::new(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
    )));
    let joiner = {
        let p = p.clone();
        std::thread::spawn(move || p.join_timeout(LONG).unwrap().map(|s| s.exitcode()))
    };
    std::thread::sleep(Duration::from_millis(50));
    p.kill().unwrap();
    assert_eq!(joiner.join().unwrap(), Some(-9));
}

#[test]
fn grandchild_names_follow_python() {
    let p = fork(Process::new(
        |()| {
            let me = mproc::current_process();
            let gc = Process::new(|()| {}, ());
            // Python: a grandchild is `Process-N:M`.
            let want = format!("{}:1", me.name);
            std::process::exit(if gc.get_name() == want { 0 } else { 1 });
        },
        (),
    ));
    assert_eq!(exitcode_within(&p, LONG), 0);
}

#[test]
fn process_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Process>();
}

#[test]
fn sentinel_becomes_readable_when_the_child_ends() {
    let p = fork(Process::new(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
    ));
    let fd = p.sentinel().expect("this kernel has pidfds").as_raw_fd();
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready_now = unsafe { libc::poll(&mut pfd, 1, 0) };
    assert_eq!(ready_now, 0, "readable while running");
    p.kill().unwrap();
    // SAFETY: as above.
    let ready_later = unsafe { libc::poll(&mut pfd, 1, LONG.as_millis() as i32) };
    assert_eq!(ready_later, 1);
    assert_eq!(exitcode_within(&p, LONG), -9);
}
