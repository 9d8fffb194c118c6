//! The fallback for kernels without pidfds: waiting is a `waitpid(WNOHANG)` loop with bounded
//! backoff, and the start hand-shake polls the pipe in short slices. Its own test binary,
//! because the switch is process-wide.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use mproc::handle::{Exporter, Importer};
use mproc::{PassError, Passable, Process, StartError, StartMethod};

const LONG: Duration = Duration::from_secs(10);

fn dies_in_import((_d,): (DiesOnImport,)) {}
mproc::entry!(dies_in_import);

fn exits_with((code,): (i32,)) {
    std::process::exit(code);
}
mproc::entry!(exits_with);

#[derive(Debug)]
struct DiesOnImport;

impl Passable for DiesOnImport {
    fn export(&self, _out: &mut Exporter) -> Result<(), PassError> {
        Ok(())
    }
    fn import(_input: &mut Importer) -> Result<Self, PassError> {
        // SAFETY: leaving the process at once is always sound.
        unsafe { libc::_exit(4) }
    }
    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(())
    }
}

#[test]
fn everything_works_without_pidfds() {
    mproc::process::__disable_pidfd();

    let mut p = Process::new(|()| std::thread::sleep(Duration::from_secs(60)), ())
        .start_method(StartMethod::Fork);
    p.start().unwrap();
    assert!(p.sentinel().is_none());
    let t0 = Instant::now();
    assert_eq!(p.join_timeout(Duration::from_millis(150)).unwrap(), None);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    p.terminate().unwrap();
    assert_eq!(
        p.join_timeout(LONG).unwrap().map(|s| s.exitcode()),
        Some(-15)
    );

    let mut p = Process::new(exits_with, (6,)).start_method(StartMethod::Spawn);
    p.start().unwrap();
    assert_eq!(p.join().unwrap().exitcode(), 6);

    let mut p = Process::new(dies_in_import, (DiesOnImport,)).start_method(StartMethod::Spawn);
    match p.start() {
        Err(StartError::ChildDied { status }) => assert_eq!(status.exitcode(), 4),
        other => panic!("{other:?}"),
    }
}
