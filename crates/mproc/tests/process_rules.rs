//! Python's process rules (#14): a daemonic process cannot have children, a started process's
//! daemon flag and start method cannot change under it, and a spawned child sees its parent's
//! default start method (Python's spawn preparation data).
#![allow(clippy::disallowed_types)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

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
    mproc::set_start_method(StartMethod::Spawn);
    let mut p = Process::new(reports_start_method, ()).start_method(StartMethod::Spawn);
    p.start().unwrap();
    assert_eq!(
        exit_code(&p),
        Some(11),
        "the child's default is the parent's: spawn"
    );
    mproc::set_start_method(StartMethod::Fork);
    let mut q = Process::new(reports_start_method, ()).start_method(StartMethod::Spawn);
    q.start().unwrap();
    assert_eq!(
        exit_code(&q),
        Some(10),
        "the child's default is the parent's: fork"
    );
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
