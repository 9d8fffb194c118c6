//! Handle passing, exercised with a real (test-only) handle: a holder counter in a
//! `MAP_SHARED` memfd page. Checks that a child holds exactly the handles in its arguments,
//! with both start methods: passed handles are adopted/imported before the parent lets go of
//! its copy (the count never touches zero meanwhile), and inherited-but-not-passed copies
//! are disowned (dropping them in the child changes nothing).
#![allow(unsafe_code, clippy::disallowed_types)]

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mproc::handle::{Exporter, Importer, Owner};
use mproc::{Event, PassError, Passable, Process, StartMethod};

const LONG: Duration = Duration::from_secs(10);
const HOLDERS: usize = 0;
const ZERO_EVENTS: usize = 1;

/// A shared holder count: what a queue's per-role holder count will be.
#[derive(Debug)]
struct Holder {
    fd: OwnedFd,
    page: *mut AtomicU32,
    /// `None` for an observer (not counted).
    owner: Option<Owner>,
}

// SAFETY: the page is shared memory accessed only through atomics.
unsafe impl Send for Holder {}

fn map(fd: &OwnedFd) -> *mut AtomicU32 {
    // SAFETY: mapping one page of a memfd we own (or were passed), shared.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p.cast()
}

impl Holder {
    fn new() -> Self {
        // SAFETY: NUL-terminated name; flags are plain bits.
        let raw = unsafe { libc::memfd_create(c"holder".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sizing our own memfd.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) }, 0);
        let h = Holder {
            page: map(&fd),
            fd,
            owner: Some(Owner::current()),
        };
        h.word(HOLDERS).store(1, Ordering::SeqCst);
        h
    }

    fn observer(&self) -> Self {
        let fd = self.fd.try_clone().unwrap();
        Holder {
            page: map(&fd),
            fd,
            owner: None,
        }
    }

    fn word(&self, i: usize) -> &AtomicU32 {
        // SAFETY: the page is 4096 bytes, mapped for our lifetime; i < 2.
        unsafe { &*self.page.add(i) }
    }

    fn holders(&self) -> u32 {
        self.word(HOLDERS).load(Ordering::SeqCst)
    }

    fn zero_events(&self) -> u32 {
        self.word(ZERO_EVENTS).load(Ordering::SeqCst)
    }

    fn hold(&self) {
        self.word(HOLDERS).fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if self.owner.is_some_and(|o| o.is_current())
            && self.word(HOLDERS).fetch_sub(1, Ordering::SeqCst) == 1
        {
            self.word(ZERO_EVENTS).fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: unmapping our own mapping; nothing borrows it past `drop`.
        unsafe { libc::munmap(self.page.cast(), 4096) };
    }
}

impl Passable for Holder {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        let i = out.fd(self.fd.as_fd())?;
        out.value(&(i, self.owner.is_some()))
    }
    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let (i, counted): (u32, bool) = input.value()?;
        let fd = input.take_fd(i)?;
        let h = Holder {
            page: map(&fd),
            fd,
            owner: counted.then(Owner::current),
        };
        if counted {
            h.hold();
        }
        Ok(h)
    }
    fn adopt(&mut self) -> Result<(), PassError> {
        if let Some(owner) = &mut self.owner {
            owner.adopt();
            self.hold();
        }
        Ok(())
    }
}

/// Child body shared by both start methods: `passed` is ours; `inherited` (fork only) is a
/// copy we did not get as an argument. Exit code: 10 × passed holders seen once the parent let
/// go + whether dropping `inherited` changed its count (0 = no). `checked` is set once the
/// parent has looked at the count: `passed` stays held until then (dropping it sooner races
/// the parent's look).
fn child_body(
    passed: Holder,
    passed_obs: Holder,
    checked: &Event,
    inherited: Option<(Holder, Holder)>,
) -> i32 {
    // The parent drops its copy right after our hand-shake: wait until only we hold it.
    if !mproc_testkit::eventually(LONG, || passed.holders() == 1) {
        return 99;
    }
    if !checked.wait_timeout(LONG) {
        return 98;
    }
    let seen = passed_obs.holders();
    let mut changed = 0;
    if let Some((copy, obs)) = inherited {
        let before = obs.holders();
        drop(copy);
        changed = i32::from(obs.holders() != before);
    }
    seen as i32 * 10 + changed
}

/// Starts `p`, whose args hold the handle `passed_obs` observes, and checks the hand-over:
/// when `start` returns the child alone holds it, and its count never touched zero meanwhile.
fn start_handing_over(p: &mut Process, passed_obs: &Holder, checked: &Event) {
    p.start().unwrap();
    assert_eq!(
        passed_obs.holders(),
        1,
        "only the child holds the passed handle"
    );
    assert_eq!(
        passed_obs.zero_events(),
        0,
        "the count never touched zero during start"
    );
    checked.set();
}

/// Joins `p` within [`LONG`] and returns its exit code.
fn exit_code(p: &Process) -> i32 {
    p.join_timeout(LONG)
        .unwrap()
        .expect("child ended")
        .exitcode()
}

/// Nobody holds `obs`'s handle any more, and its count reached zero exactly once.
fn assert_released_once(obs: &Holder) {
    assert_eq!(obs.holders(), 0, "still held");
    assert_eq!(obs.zero_events(), 1, "released exactly once");
}

#[test]
fn fork_adopts_passed_and_disowns_captured_handles() {
    let passed = Holder::new();
    let passed_obs = passed.observer();
    let captured = Holder::new();
    let captured_obs = captured.observer();
    let in_child_obs = captured.observer();
    let observer_for_child = passed.observer();
    let checked = Event::new().unwrap();
    let mut p = Process::new(
        move |(h, checked): (Holder, Event)| {
            let code = child_body(
                h,
                observer_for_child,
                &checked,
                Some((captured, in_child_obs)),
            );
            std::process::exit(code);
        },
        (passed, checked.clone()),
    )
    .start_method(StartMethod::Fork);
    // The child adopts `passed` before the parent drops its copy.
    start_handing_over(&mut p, &passed_obs, &checked);
    assert_eq!(
        exit_code(&p),
        10,
        "child saw 1 holder and its inherited drop changed nothing"
    );
    // The captured handle went with the closure: the parent dropped it, the child's copy is
    // inert, so exactly the parent's drop released it.
    assert_released_once(&captured_obs);
    // The child's drop of its adopted copy released it.
    assert_released_once(&passed_obs);
}

fn spawned_holder((h, obs, checked): (Holder, Holder, Event)) {
    std::process::exit(child_body(h, obs, &checked, None));
}
mproc::entry!(spawned_holder);

#[test]
fn spawn_imports_passed_handles_before_the_parent_lets_go() {
    let passed = Holder::new();
    let passed_obs = passed.observer();
    let child_obs = passed.observer();
    let not_passed = Holder::new();
    let checked = Event::new().unwrap();
    let mut p = Process::new(spawned_holder, (passed, child_obs, checked.clone()))
        .start_method(StartMethod::Spawn);
    start_handing_over(&mut p, &passed_obs, &checked);
    assert_eq!(exit_code(&p), 10);
    assert_released_once(&passed_obs);
    assert_eq!(not_passed.holders(), 1, "a handle not passed is untouched");
}

#[test]
fn failed_start_releases_the_parents_copy() {
    let passed = Holder::new();
    let obs = passed.observer();
    let mut p =
        Process::new(|(_h, ()): (Holder, ())| {}, (passed, ())).start_method(StartMethod::Spawn); // a closure: refused before any child exists
    assert!(p.start().is_err());
    assert_eq!(obs.holders(), 0);
}

/// A raw `fork()` that bypasses `Process` still makes every inherited handle foreign (the
/// `pthread_atfork` child hook bumps the epoch).
#[test]
fn raw_fork_disowns_inherited_handles() {
    let h = Holder::new();
    let obs = h.observer();
    // SAFETY: the child only reads an atomic, drops a handle and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = !h.owner.unwrap().is_current();
        drop(h); // must not decrement
        // SAFETY: leaving the forked child without returning into the harness.
        unsafe { libc::_exit(if ok && obs.holders() == 1 { 0 } else { 1 }) };
    }
    // Bounded: kills the child and fails the test if it hangs.
    let status = mproc_testkit::wait_status(pid, LONG);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    assert_eq!(obs.holders(), 1);
    assert!(h.owner.unwrap().is_current());
}
