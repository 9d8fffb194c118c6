//! Names of named objects (issue #13, "Names"): the user's own name is checked before the
//! `mproc.` prefix is added, and a creator killed in the middle of `create_named` leaves a
//! stale name that `open_named` reports at once and the next `create_named` reclaims.
//! Every wait is bounded; every test removes what it made.
#![allow(unsafe_code, clippy::disallowed_types)]

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use mproc::storage::names::{self, MAX_LEN};
use mproc::{CreateError, JoinableQueue, Lock, OpenError, Queue, Value};
use mproc_shm::name::NameState;
use mproc_shm::test_hooks::{CreatePoint, die_at};
use mproc_shm::{NameError, SegmentError};

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "names-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn path(name: &str) -> String {
    format!("/dev/shm/{}{name}", names::PREFIX)
}

/// Removes `/dev/shm/mproc.<name>` when dropped, whatever the outcome.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(path(&self.0));
    }
}

/// Creating and opening report a refused name each in their own error type.
trait InvalidName: std::fmt::Debug {
    fn invalid_name(self) -> Result<NameError, Self>
    where
        Self: Sized;
}

impl InvalidName for CreateError {
    fn invalid_name(self) -> Result<NameError, Self> {
        match self {
            CreateError::InvalidName(e) => Ok(e),
            other => Err(other),
        }
    }
}

impl InvalidName for OpenError {
    fn invalid_name(self) -> Result<NameError, Self> {
        match self {
            OpenError::InvalidName(e) => Ok(e),
            other => Err(other),
        }
    }
}

fn name_error<E: InvalidName>(r: Result<impl Sized, E>) -> NameError {
    match r.map_err(InvalidName::invalid_name) {
        Err(Ok(e)) => e,
        Err(Err(other)) => panic!("expected an invalid-name error, got {other:?}"),
        Ok(_) => panic!("expected an invalid-name error, got a handle"),
    }
}

/// Regression (#13: `create_named("")` created `/dev/shm/mproc.` and listed as `""`): the
/// user's own name is checked — empty, `/`, `..`, NUL, too long — with errors about that
/// name, by every named entry point, and nothing is created in `/dev/shm`.
/// Fails on the code before the fix: `""` was accepted (the file `/dev/shm/mproc.` was
/// created) and the over-long name was reported as 255 > 254 bytes (the prefixed name).
#[test]
fn users_own_name_is_checked_before_the_prefix() {
    let bare = path("");
    let before = std::fs::symlink_metadata(&bare).ok().map(|m| m.ino());
    let long = "x".repeat(MAX_LEN + 1);
    let cases: [(&str, NameError); 5] = [
        ("", NameError::Empty),
        ("a/b", NameError::ContainsSlash),
        ("..", NameError::DotDot),
        ("a\0b", NameError::ContainsNul),
        (
            &long,
            NameError::TooLong {
                len: MAX_LEN + 1,
                max: MAX_LEN,
            },
        ),
    ];
    for (bad, want) in &cases {
        let e = name_error(Queue::<u32>::builder().create_named(bad));
        assert_eq!(&e, want, "Queue::create_named({bad:?})");
        assert_eq!(&name_error(Queue::<u32>::open_named(bad)), want);
        assert_eq!(&name_error(Queue::<u32>::unlink_named(bad)), want);
        assert_eq!(&name_error(Lock::create_named(bad)), want);
        assert_eq!(&name_error(Lock::open_named(bad)), want);
        assert_eq!(&name_error(Value::<u64>::create_named(bad, 1)), want);
        assert_eq!(&name_error(names::unlink(bad)), want);
        assert_eq!(&name_error(names::state(bad)), want);
    }
    let e = name_error(JoinableQueue::<u32>::create_named(Queue::builder(), ""));
    assert_eq!(e, NameError::Empty);
    let msg = name_error(Queue::<u32>::builder().create_named("")).to_string();
    assert!(msg.contains("empty"), "{msg}");
    let after = std::fs::symlink_metadata(&bare).ok().map(|m| m.ino());
    assert!(
        after.is_none() || after == before,
        "a file /dev/shm/mproc. was created"
    );
    assert!(!names::list().unwrap().contains(&String::new()));

    // The longest name fits, prefix included.
    let name = format!("{}-{}", std::process::id(), "y".repeat(MAX_LEN));
    let name = &name[..MAX_LEN];
    let _c = Cleanup(name.to_owned());
    let q = Queue::<u32>::builder().create_named(name).unwrap();
    assert!(names::list().unwrap().iter().any(|n| n == name));
    names::unlink(name).unwrap();
    drop(q);
}

/// Regression (#13: a creator killed in the middle of `create_named` left a half-created
/// file that blocked the name). Deterministic: a forked child SIGKILLs itself inside its
/// queue's creation, after the whole object was initialised but before it was published —
/// the longest window. Then the name reads as stale, `open_named` says so at once, and
/// `create_named` reclaims it. (Needs the test-only crash point, so it does not build on
/// the old code; `half_created_file_is_reclaimed` shows the same failure there.)
#[test]
fn queue_creator_killed_mid_create_is_reclaimed() {
    for point in [CreatePoint::Locked, CreatePoint::BeforePublish] {
        let name = unique("killed");
        let _c = Cleanup(name.clone());
        // SAFETY: the child only creates a queue (which kills it) and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            die_at(point);
            let _ = Queue::<u32>::builder().create_named(&name);
            // SAFETY: not reached (SIGKILL); `_exit` skips the harness's atexit.
            unsafe { libc::_exit(3) };
        }
        let mut status = 0;
        let start = Instant::now();
        loop {
            // SAFETY: plain waitpid on our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "child hung");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
        assert!(std::fs::metadata(path(&name)).is_ok(), "half-created file");
        assert_eq!(names::state(&name).unwrap(), NameState::Stale, "{point:?}");

        let start = Instant::now();
        let err = Queue::<u32>::open_named(&name).unwrap_err();
        assert!(
            matches!(err, OpenError::Segment(SegmentError::Stale { .. })),
            "{point:?}: {err:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(1), "reported at once");

        let q = Queue::<u32>::builder()
            .create_named(&name)
            .unwrap_or_else(|e| panic!("{point:?}: create after a dead creator: {e}"));
        q.put(7).unwrap();
        let other = Queue::<u32>::open_named(&name).unwrap();
        assert_eq!(other.get_timeout(Duration::from_secs(5)).unwrap(), 7);
        names::unlink(&name).unwrap();
    }
}

/// The same finding with the file an old-style dead creator leaves (sized, header never
/// published, no process holding it), made with plain file calls so that this test also
/// builds against the code before the fix — where `create_named` failed with
/// `AlreadyExists` and `open_named` waited 2 s for `NotReady`.
#[test]
fn half_created_file_is_reclaimed() {
    let name = unique("half");
    let _c = Cleanup(name.clone());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path(&name))
        .unwrap();
    f.set_len(1 << 16).unwrap();
    drop(f);
    let start = Instant::now();
    let err = Queue::<u32>::open_named(&name).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "waited {:?} ({err})",
        start.elapsed()
    );
    let q = Queue::<u32>::builder()
        .create_named(&name)
        .expect("the half-created file is reclaimed");
    q.put(1).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 1);
    names::unlink(&name).unwrap();
}
