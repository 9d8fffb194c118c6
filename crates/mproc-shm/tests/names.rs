//! Names: stale names (a creator killed mid-creation), the creator lock, `probe`/`reclaim`
//! (issue #13, "Names"). Every wait is bounded; every test removes what it made.
#![allow(clippy::disallowed_types)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{Exit, fork, kill, scratch_name, wait};
use mproc_shm::name::{NameState, probe, reclaim};
use mproc_shm::test_hooks::{CreatePoint, die_at};
use mproc_shm::{Segment, SegmentError, SegmentOptions};

const FP: u64 = 0x5eed;

/// Options with the tests' fingerprint that wait up to `timeout` for another creator
/// (`create_named`) or for the segment to become ready (`open_named`).
fn waiting(timeout: Duration) -> SegmentOptions {
    let mut options = SegmentOptions::new();
    options.fingerprint(FP).open_timeout(timeout);
    options
}

fn path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

fn inode(name: &str) -> Option<u64> {
    std::fs::symlink_metadata(path(name)).ok().map(|m| m.ino())
}

/// A pipe: the child writes one byte when it is ready; the parent waits for it (bounded).
struct Ready {
    r: libc::c_int,
    w: libc::c_int,
}

impl Ready {
    fn new() -> Ready {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a writable array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Ready {
            r: fds[0],
            w: fds[1],
        }
    }

    fn wait(&self) {
        let mut pfd = libc::pollfd {
            fd: self.r,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
        assert_eq!(n, 1, "child did not get ready in 20 s");
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        // SAFETY: our own descriptors, closed once.
        unsafe {
            libc::close(self.r);
            libc::close(self.w);
        }
    }
}

/// A child that creates `name` unpublished (creator lock held), tells us, and then stays
/// alive (publishing after `publish_after`, if given) until killed.
fn live_creator(name: &str, publish_after: Option<Duration>) -> (libc::pid_t, Ready) {
    let ready = Ready::new();
    let name = name.to_owned();
    let w = ready.w;
    let pid = fork(move || {
        let seg = SegmentOptions::new()
            .fingerprint(FP)
            .defer_ready(true)
            .create_named(&name)
            .expect("child: create");
        // SAFETY: one byte to the inherited pipe.
        unsafe { libc::write(w, [1u8].as_ptr().cast(), 1) };
        if let Some(d) = publish_after {
            std::thread::sleep(d);
            seg.publish();
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    ready.wait();
    (pid, ready)
}

/// Regression (#13, finding "a creator killed in the middle of create_named leaves a
/// half-created file that blocks the name"): at each step of creation, a SIGKILLed creator
/// leaves a name that reads as stale, that `open_named` reports as stale at once instead of
/// waiting, and that the next `create_named` reclaims.
#[test]
fn creator_killed_at_each_step_leaves_a_stale_name_that_create_reclaims() {
    for point in [
        CreatePoint::Created,
        CreatePoint::Locked,
        CreatePoint::BeforePublish,
    ] {
        let (name, _guard) = scratch_name("killed");
        let child_name = name.clone();
        let pid = fork(move || {
            die_at(point);
            let _ = SegmentOptions::new()
                .fingerprint(FP)
                .len(4096)
                .create_named(&child_name);
            0 // not reached
        });
        assert_eq!(wait(pid), Exit::Signal(libc::SIGKILL), "{point:?}");
        let stale_ino = inode(&name).expect("the half-created file is there");
        assert_eq!(probe(&name).unwrap(), NameState::Stale, "{point:?}");

        let start = Instant::now();
        let err = waiting(Duration::from_secs(5))
            .open_named(&name)
            .unwrap_err();
        assert!(
            matches!(err, SegmentError::Stale { .. }),
            "{point:?}: {err:?}"
        );
        assert!(err.to_string().contains("stale"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{point:?}: stale reported only after {:?}",
            start.elapsed()
        );

        let seg = SegmentOptions::new()
            .fingerprint(FP)
            .create_named(&name)
            .unwrap_or_else(|e| panic!("{point:?}: create after a dead creator: {e}"));
        assert_ne!(inode(&name), Some(stale_ino), "{point:?}: a new file");
        assert_eq!(probe(&name).unwrap(), NameState::Ready);
        Segment::open_named(&name, FP).expect("the new segment opens");
        seg.unlink().unwrap();
    }
}

/// A live creator's file is never reclaimed: `create_named` waits (bounded) and reports
/// `AlreadyExists`, the file is untouched, openers wait (not "stale"); once the creator is
/// dead, the name is stale and reclaimed.
#[test]
fn live_creator_in_progress_is_never_reclaimed() {
    let (name, _guard) = scratch_name("live");
    let (pid, _ready) = live_creator(&name, None);
    let ino = inode(&name).unwrap();
    assert_eq!(probe(&name).unwrap(), NameState::Creating);
    assert_eq!(reclaim(&name).unwrap(), NameState::Creating);

    let start = Instant::now();
    let err = waiting(Duration::from_millis(300))
        .create_named(&name)
        .unwrap_err();
    assert!(matches!(err, SegmentError::AlreadyExists { .. }), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(300), "it waited");
    assert!(start.elapsed() < Duration::from_secs(5), "bounded");
    assert_eq!(inode(&name), Some(ino), "the creator's file is still there");

    let err = waiting(Duration::from_millis(200))
        .open_named(&name)
        .unwrap_err();
    assert!(matches!(err, SegmentError::NotReady { .. }), "{err:?}");
    assert_eq!(inode(&name), Some(ino));

    kill(pid);
    assert_eq!(wait(pid), Exit::Signal(libc::SIGKILL));
    assert_eq!(probe(&name).unwrap(), NameState::Stale);
    let seg = SegmentOptions::new()
        .fingerprint(FP)
        .create_named(&name)
        .unwrap();
    assert_ne!(inode(&name), Some(ino));
    seg.unlink().unwrap();
}

/// A live creator that publishes while `create_named` waits for it: `AlreadyExists`, and
/// the published segment opens.
#[test]
fn live_creator_that_finishes_wins() {
    let (name, _guard) = scratch_name("finish");
    let (pid, _ready) = live_creator(&name, Some(Duration::from_millis(100)));
    let err = waiting(Duration::from_secs(10))
        .create_named(&name)
        .unwrap_err();
    assert!(matches!(err, SegmentError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(probe(&name).unwrap(), NameState::Ready);
    Segment::open_named(&name, FP).expect("published by the child");
    kill(pid);
    wait(pid);
    assert_eq!(
        probe(&name).unwrap(),
        NameState::Ready,
        "READY outlives its creator"
    );
}

/// `defer_ready`: openers wait for `publish` (here from another thread of the creator), and
/// dropping an unpublished segment removes its name.
#[test]
fn deferred_publish_and_drop_before_publish() {
    let (name, _guard) = scratch_name("defer");
    let seg = SegmentOptions::new()
        .fingerprint(FP)
        .defer_ready(true)
        .create_named(&name)
        .unwrap();
    assert!(seg.is_pending());
    assert_eq!(probe(&name).unwrap(), NameState::Creating);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            seg.publish();
        });
        let other = Segment::open_named(&name, FP).expect("waits for publish");
        assert_eq!(other.len(), seg.len());
    });
    assert!(!seg.is_pending());
    assert_eq!(probe(&name).unwrap(), NameState::Ready);
    drop(seg);
    assert_eq!(
        probe(&name).unwrap(),
        NameState::Ready,
        "published: the name stays"
    );
    Segment::unlink_named(&name).unwrap();

    let seg = SegmentOptions::new()
        .defer_ready(true)
        .create_named(&name)
        .unwrap();
    drop(seg);
    assert_eq!(probe(&name).unwrap(), NameState::Missing);
}

/// An empty file nobody holds the creator lock of (a creator killed between its O_EXCL and
/// its lock, or an old one): openers call it stale after a short grace; `reclaim` removes it.
#[test]
fn empty_unlocked_file_is_stale_after_the_grace() {
    let (name, _guard) = scratch_name("empty");
    std::fs::File::create(path(&name)).unwrap();
    assert_eq!(probe(&name).unwrap(), NameState::Stale);
    let err = SegmentOptions::new()
        .open_timeout(Duration::from_secs(5))
        .open_named(&name)
        .unwrap_err();
    assert!(matches!(err, SegmentError::Stale { .. }), "{err:?}");
    assert_eq!(reclaim(&name).unwrap(), NameState::Stale);
    assert_eq!(probe(&name).unwrap(), NameState::Missing);
}

/// `probe` and `reclaim` never touch what is not a stale mproc segment.
#[test]
fn probe_states_and_reclaim_leaves_others_alone() {
    let (name, _guard) = scratch_name("states");
    assert_eq!(probe(&name).unwrap(), NameState::Missing);
    assert_eq!(reclaim(&name).unwrap(), NameState::Missing);
    assert!(matches!(
        probe(""),
        Err(SegmentError::InvalidName(mproc_shm::NameError::Empty))
    ));

    // A foreign file (not an mproc magic) and a symbolic link: foreign, left alone.
    std::fs::write(path(&name), b"GARBAGE!GARBAGE!").unwrap();
    assert_eq!(probe(&name).unwrap(), NameState::Foreign);
    assert_eq!(reclaim(&name).unwrap(), NameState::Foreign);
    assert!(inode(&name).is_some());
    let err = SegmentOptions::new().create_named(&name).unwrap_err();
    assert!(matches!(err, SegmentError::AlreadyExists { .. }), "{err:?}");
    std::fs::remove_file(path(&name)).unwrap();
    std::os::unix::fs::symlink("/dev/null", path(&name)).unwrap();
    assert_eq!(probe(&name).unwrap(), NameState::Foreign);
    assert_eq!(reclaim(&name).unwrap(), NameState::Foreign);
    assert!(inode(&name).is_some());
    std::fs::remove_file(path(&name)).unwrap();

    // A ready segment: ready, left alone.
    let seg = SegmentOptions::new().create_named(&name).unwrap();
    assert_eq!(reclaim(&name).unwrap(), NameState::Ready);
    assert_eq!(probe(&name).unwrap(), NameState::Ready);
    seg.unlink().unwrap();
}
