//! `Process` with the spawn start method: registered entry points re-executed from the test
//! binary (the pre-main hook runs them, so the child never reaches libtest), from a
//! multithreaded parent, and every way the start hand-shake can fail, each within its deadline.
#![allow(unsafe_code, clippy::disallowed_types)]

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{pipe, read_to_end};
use mproc::handle::{Exporter, Importer};
use mproc::{PassError, Passable, Process, StartError, StartMethod, StartStage};

const LONG: Duration = Duration::from_secs(10);

fn exit_with((code, label): (i32, String)) {
    assert_eq!(label, "label");
    std::process::exit(code);
}
mproc::entry!(exit_with);

fn returns_normally(_: ()) {}
mproc::entry!(returns_normally);

fn panics((fd,): (PassFd,)) {
    // SAFETY: `fd` is the pipe write end the parent passed; make it our stderr.
    unsafe { libc::dup2(fd.0.as_raw_fd(), 2) };
    panic!("spawned child panics");
}
mproc::entry!(panics);

/// Counts this process's open descriptors above 2 (minus the one reading the directory).
fn count_fds((expect,): (u32,)) {
    let n = std::fs::read_dir("/proc/self/fd").unwrap().count() as u32;
    // 0, 1, 2 and read_dir's own descriptor.
    std::process::exit(if n == 4 + expect { 0 } else { 100 + n as i32 });
}
mproc::entry!(count_fds);

fn sleeps(_: ()) {
    std::thread::sleep(Duration::from_secs(60));
}
mproc::entry!(sleeps);

fn takes_handle((_h,): (Misbehaves,)) {}
mproc::entry!(takes_handle);

/// Test-only passable descriptor.
#[derive(Debug)]
struct PassFd(OwnedFd);

impl Passable for PassFd {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        let i = out.fd(self.0.as_fd())?;
        out.value(&i)
    }
    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let i: u32 = input.value()?;
        Ok(PassFd(input.take_fd(i)?))
    }
    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(())
    }
}

/// A handle whose import misbehaves in the way its value says.
#[derive(Debug)]
struct Misbehaves(u8);
const DIE: u8 = 1;
const REJECT: u8 = 2;
const HANG: u8 = 3;

impl Passable for Misbehaves {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        out.value(&self.0)
    }
    fn import(input: &mut Importer) -> Result<Self, PassError> {
        match input.value::<u8>()? {
            // SAFETY: leaving the process at once is always sound.
            DIE => unsafe { libc::_exit(9) },
            REJECT => Err(PassError::Custom("refused on purpose".into())),
            HANG => {
                std::thread::sleep(Duration::from_secs(60));
                unreachable!()
            }
            v => Ok(Misbehaves(v)),
        }
    }
    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(())
    }
}

fn spawn(p: Process) -> Process {
    let mut p = p.start_method(StartMethod::Spawn);
    p.start().expect("spawn");
    p
}

fn exitcode(p: &Process) -> i32 {
    match p.join_timeout(LONG).unwrap() {
        Some(s) => s.exitcode(),
        None => {
            let _ = p.kill();
            let _ = p.join_timeout(LONG);
            panic!("spawned child did not end in time");
        }
    }
}

#[test]
fn entry_runs_with_args_and_reports_exit_code() {
    let p = spawn(Process::new(exit_with, (7, "label".to_string())));
    assert_eq!(exitcode(&p), 7);
    let p = spawn(Process::new(returns_normally, ()));
    assert_eq!(exitcode(&p), 0);
}

#[test]
fn entry_also_forks() {
    let mut p = Process::new(exit_with, (5, "label".to_string())).start_method(StartMethod::Fork);
    p.start().unwrap();
    assert_eq!(exitcode(&p), 5);
}

#[test]
fn spawn_from_a_multithreaded_parent() {
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                // Relaxed: a stop flag; nothing else is published through it.
                while !stop.load(Ordering::Relaxed) {
                    x = x.wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let codes: Vec<i32> = (0..3)
        .map(|i| {
            exitcode(&spawn(Process::new(
                exit_with,
                (10 + i, "label".to_string()),
            )))
        })
        .collect();
    // Relaxed: see above.
    stop.store(true, Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
    assert_eq!(codes, [10, 11, 12]);
}

#[test]
fn spawned_panic_exits_1_with_message() {
    let (r, w) = pipe();
    let p = spawn(Process::new(panics, (PassFd(w),)).name("SpawnPanic"));
    let err = String::from_utf8(read_to_end(r, LONG)).unwrap();
    assert_eq!(exitcode(&p), 1);
    assert!(err.contains("spawned child panics"), "{err:?}");
    assert!(err.contains("Process SpawnPanic: panicked at"), "{err:?}");
}

#[test]
fn child_holds_exactly_the_passed_descriptors() {
    // Two descriptors the parent has, not passed; one passed.
    let (_r1, _w1) = pipe();
    let (r2, w2) = pipe();
    let p = spawn(Process::new(count_fds, (0u32,)));
    assert_eq!(
        exitcode(&p),
        0,
        "a spawned child with no handles has no extra descriptors"
    );
    drop((r2, w2));
    let (r3, _w3) = pipe();
    // The entry takes one u32, so pass the fd through a second process: a PassFd entry.
    let p = spawn(Process::new(count_one_fd, (PassFd(r3),)));
    assert_eq!(exitcode(&p), 0);
}

fn count_one_fd((_fd,): (PassFd,)) {
    let n = std::fs::read_dir("/proc/self/fd").unwrap().count() as i32;
    std::process::exit(if n == 5 { 0 } else { 100 + n });
}
mproc::entry!(count_one_fd);

#[test]
fn closure_cannot_be_spawned() {
    let mut p = Process::new(|()| {}, ()).start_method(StartMethod::Spawn);
    assert!(matches!(p.start(), Err(StartError::NotSpawnable { .. })));
}

/// `start` must fail with the child's refusal at `stage`, its message saying `why`.
fn assert_rejected(p: &mut Process, stage: StartStage, why: &str) {
    match p.start() {
        Err(StartError::Rejected {
            stage: got,
            message,
        }) if got == stage => assert!(message.contains(why), "{message}"),
        other => panic!("expected a refusal at {stage:?}: {other:?}"),
    }
}

#[test]
fn unknown_entry_name_is_a_start_error() {
    let t0 = Instant::now();
    let mut p = Process::new(sleeps, ())
        .start_method(StartMethod::Spawn)
        .__entry_name_override("no::such::entry");
    assert_rejected(&mut p, StartStage::UnknownEntry, "no::such::entry");
    assert!(t0.elapsed() < LONG);
}

#[test]
fn child_dying_during_handshake_is_a_start_error() {
    let mut p = Process::new(takes_handle, (Misbehaves(DIE),)).start_method(StartMethod::Spawn);
    match p.start() {
        Err(StartError::ChildDied { status }) => assert_eq!(status.exitcode(), 9),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_arguments_are_a_start_error() {
    let mut p = Process::new(takes_handle, (Misbehaves(REJECT),)).start_method(StartMethod::Spawn);
    assert_rejected(&mut p, StartStage::Import, "refused on purpose");
}

#[test]
fn hung_handshake_times_out_and_kills_the_child() {
    let t0 = Instant::now();
    let mut p = Process::new(takes_handle, (Misbehaves(HANG),))
        .start_method(StartMethod::Spawn)
        .start_timeout(Duration::from_millis(300));
    assert!(matches!(p.start(), Err(StartError::Timeout(_))));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < LONG,
        "{took:?}"
    );
}

#[test]
fn spawned_child_sees_its_name_and_parent() {
    let p = spawn(Process::new(check_identity, (std::process::id(),)).name("Named"));
    assert_eq!(exitcode(&p), 0);
}

fn check_identity((parent,): (u32,)) {
    let me = mproc::current_process();
    let ok = me.name == "Named"
        && !me.identity.is_empty()
        && mproc::parent_process().is_some_and(|p| p.pid == parent);
    std::process::exit(if ok { 0 } else { 1 });
}
mproc::entry!(check_identity);

fn sleeps_then_exits(_: ()) {
    std::thread::sleep(Duration::from_secs(30));
}
mproc::entry!(sleeps_then_exits);

/// A forked intermediate spawns a daemon (PR_SET_PDEATHSIG armed in `pre_exec`, kept across
/// exec) and reports its pid; when the intermediate exits, the daemon dies.
#[test]
fn spawned_daemon_dies_with_its_parent() {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    let mut mid = Process::new(
        move |(fd,): (i32,)| {
            let mut d = Process::new(sleeps_then_exits, ())
                .daemon(true)
                .start_method(StartMethod::Spawn);
            d.start().unwrap();
            let pid = d.pid().unwrap().to_le_bytes();
            // SAFETY: writing a valid buffer to the inherited pipe.
            unsafe { libc::write(fd, pid.as_ptr().cast(), pid.len()) };
            std::mem::forget(d);
        },
        (wfd,),
    )
    .start_method(StartMethod::Fork);
    mid.start().unwrap();
    drop(w);
    assert_eq!(exitcode(&mid), 0);
    let mut buf = [0u8; 4];
    let mut pfd = libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; then a read into a valid 4-byte buffer.
    let n = unsafe {
        libc::poll(&mut pfd, 1, LONG.as_millis() as i32);
        libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), 4)
    };
    assert_eq!(n, 4);
    let daemon = u32::from_le_bytes(buf);
    let deadline = Instant::now() + LONG;
    let dead = || {
        std::fs::read_to_string(format!("/proc/{daemon}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    while !dead() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(dead(), "spawned daemon {daemon} survived its parent");
}
