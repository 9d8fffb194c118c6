//! Segments: create, open, validate; every error provoked on purpose.
#![allow(clippy::disallowed_types)]

mod common;

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{scratch_name, unique_name};
use mproc_shm::{
    HEADER_SIZE, LAYOUT_VERSION, MAGIC, NameError, Offset, OffsetError, REGION_ALIGN, Segment,
    SegmentError, SegmentOptions,
};

const FP: u64 = 0x1234_5678_9abc_def0;

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

fn word(seg: &Segment, off: u64) -> &AtomicU64 {
    let p = seg.resolve(Offset::<u64>::new(off)).expect("in bounds");
    // SAFETY: in bounds and aligned (checked by `resolve`), valid while `seg` lives; only
    // accessed atomically. (`Segment::shared` does this safely, but not under loom, where
    // these tests are built too.)
    unsafe { AtomicU64::from_ptr(p.as_ptr()) }
}

#[test]
fn anonymous_create_layout_and_seals() {
    let seg = SegmentOptions::new()
        .len(10_000)
        .fingerprint(FP)
        .create_anonymous()
        .unwrap();
    let page = 4096;
    assert_eq!(seg.len() % page, 0);
    let r = seg.region();
    assert!(r.len() >= 10_000);
    assert_eq!(r.offset() % REGION_ALIGN, 0);
    assert_eq!(r.as_ptr().as_ptr() as usize % REGION_ALIGN as usize, 0);
    assert_eq!(r.offset() as usize + r.len(), seg.len());
    assert_eq!(seg.fingerprint(), FP);
    assert_eq!(seg.creator_pid(), std::process::id());
    assert!(seg.name().is_none());
    // Sealed: nobody can shrink (SIGBUS) or grow it.
    let file = std::fs::File::from(seg.as_fd().try_clone_to_owned().unwrap());
    let err = file.set_len(4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    let err = file.set_len(seg.len() as u64 * 2).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    // Re-opening the same memfd validates it.
    let again = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap(), FP).unwrap();
    assert_eq!(again.len(), seg.len());
    word(&seg, r.offset()).store(77, Ordering::Relaxed);
    assert_eq!(word(&again, r.offset()).load(Ordering::Relaxed), 77);
}

#[test]
fn named_create_open_unlink_and_mode_0600() {
    let (name, _guard) = scratch_name("named");
    let seg = SegmentOptions::new()
        .len(1000)
        .fingerprint(FP)
        .create_named(&name)
        .unwrap();
    assert_eq!(seg.name().unwrap().as_str(), name);
    let meta = std::fs::symlink_metadata(shm_path(&name)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), seg.len() as u64);
    let off = seg.region().offset();
    word(&seg, off).store(5, Ordering::Relaxed);

    let other = Segment::open_named(&name, FP).unwrap();
    assert_eq!(word(&other, off).load(Ordering::Relaxed), 5);
    seg.unlink().unwrap();
    assert!(!std::path::Path::new(&shm_path(&name)).exists());
    // Mappings stay valid after unlink.
    word(&other, off).store(6, Ordering::Relaxed);
    assert_eq!(word(&seg, off).load(Ordering::Relaxed), 6);
    assert!(matches!(seg.unlink(), Err(SegmentError::NotFound { .. })));
}

#[test]
fn named_mode_is_applied_despite_umask() {
    let (name, _guard) = scratch_name("mode");
    let _seg = SegmentOptions::new()
        .mode(0o640)
        .create_named(&name)
        .unwrap();
    let meta = std::fs::metadata(shm_path(&name)).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
}

#[test]
fn error_invalid_name() {
    for (bad, want) in [
        ("", NameError::Empty),
        ("a/b", NameError::ContainsSlash),
        ("..", NameError::DotDot),
        ("a\0b", NameError::ContainsNul),
    ] {
        match SegmentOptions::new().create_named(bad) {
            Err(SegmentError::InvalidName(e)) => assert_eq!(e, want),
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(matches!(
            Segment::open_named(bad, FP),
            Err(SegmentError::InvalidName(_))
        ));
    }
    let long = "n".repeat(300);
    assert!(matches!(
        Segment::open_named(&long, FP),
        Err(SegmentError::InvalidName(NameError::TooLong {
            len: 300,
            ..
        }))
    ));
}

#[test]
fn error_already_exists() {
    let (name, _guard) = scratch_name("exists");
    let _seg = SegmentOptions::new().create_named(&name).unwrap();
    let err = SegmentOptions::new().create_named(&name).unwrap_err();
    assert!(matches!(err, SegmentError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"));
}

#[test]
fn error_symlink_planted_at_name_is_not_followed() {
    let (name, _g1) = scratch_name("link");
    let (target, _g2) = scratch_name("target");
    std::os::unix::fs::symlink(shm_path(&target), shm_path(&name)).unwrap();
    // Creating: O_EXCL refuses the link, and the target is not created through it.
    let err = SegmentOptions::new().create_named(&name).unwrap_err();
    assert!(matches!(err, SegmentError::AlreadyExists { .. }), "{err:?}");
    assert!(!std::path::Path::new(&shm_path(&target)).exists());
    // Opening: O_NOFOLLOW refuses the link even when the target is a real segment.
    let _real = SegmentOptions::new()
        .fingerprint(FP)
        .create_named(&target)
        .unwrap();
    let err = Segment::open_named(&name, FP).unwrap_err();
    assert!(matches!(err, SegmentError::Symlink { .. }), "{err:?}");
}

#[test]
fn error_not_found() {
    let name = unique_name("missing");
    assert!(matches!(
        Segment::open_named(&name, FP),
        Err(SegmentError::NotFound { .. })
    ));
    assert!(matches!(
        Segment::unlink_named(&name),
        Err(SegmentError::NotFound { .. })
    ));
}

/// Creates a named segment, then edits its file with `edit`, then opens it.
fn open_after_edit(edit: impl FnOnce(&std::fs::File)) -> Result<Segment, SegmentError> {
    let (name, _guard) = scratch_name("edit");
    let _seg = SegmentOptions::new()
        .fingerprint(FP)
        .create_named(&name)
        .unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    edit(&file);
    SegmentOptions::new()
        .fingerprint(FP)
        .open_timeout(Duration::from_millis(50))
        .open_named(&name)
}

#[test]
fn error_truncated_file() {
    let err = open_after_edit(|f| f.set_len(HEADER_SIZE + 8).unwrap()).unwrap_err();
    assert!(
        matches!(err, SegmentError::Truncated { file_len, .. } if file_len == HEADER_SIZE + 8),
        "{err:?}"
    );
}

#[test]
fn error_too_small() {
    let err = open_after_edit(|f| f.set_len(20).unwrap()).unwrap_err();
    assert!(
        matches!(err, SegmentError::TooSmall { len: 20, .. }),
        "{err:?}"
    );
}

#[test]
fn error_not_ready_when_file_is_empty_or_unpublished() {
    // Empty, creator lock free: within the 50 ms timeout it could still be a creator between
    // its O_EXCL and its lock (the opener's grace is longer), so "not ready".
    let err = open_after_edit(|f| f.set_len(0).unwrap()).unwrap_err();
    assert!(matches!(err, SegmentError::NotReady { .. }), "{err:?}");
    // A sized header that is not READY while nobody holds its creator lock will never be
    // published: stale, reported at once (tests/names.rs covers real dead creators).
    let err = open_after_edit(|f| f.write_all_at(&0u32.to_ne_bytes(), 12).unwrap()).unwrap_err();
    assert!(matches!(err, SegmentError::Stale { .. }), "{err:?}");
}

#[test]
fn error_not_mproc() {
    let err = open_after_edit(|f| f.write_all_at(b"GARBAGE!", 0).unwrap()).unwrap_err();
    match err {
        SegmentError::NotMproc { found, expected } => {
            assert_eq!(found, u64::from_ne_bytes(*b"GARBAGE!"));
            assert_eq!(expected, MAGIC);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_version_mismatch() {
    let v = (LAYOUT_VERSION + 1).to_ne_bytes();
    let err = open_after_edit(|f| f.write_all_at(&v, 8).unwrap()).unwrap_err();
    assert!(
        matches!(err, SegmentError::VersionMismatch { found, expected }
            if found == LAYOUT_VERSION + 1 && expected == LAYOUT_VERSION),
        "{err:?}"
    );
}

#[test]
fn error_fingerprint_mismatch() {
    let (name, _guard) = scratch_name("fp");
    let _seg = SegmentOptions::new()
        .fingerprint(1)
        .create_named(&name)
        .unwrap();
    let err = Segment::open_named(&name, 2).unwrap_err();
    assert!(
        matches!(
            err,
            SegmentError::FingerprintMismatch {
                found: 1,
                expected: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn error_corrupt_header() {
    /// What is forged, at which header offset, with which bytes; the field reported and the
    /// value it must report, if exact.
    struct Forged<'a>(&'static str, u64, &'a [u8], &'static str, Option<u64>);
    let forged = [
        Forged(
            "no participant entries",
            36,
            &[0; 4],
            "participant_capacity",
            Some(0),
        ),
        Forged(
            "region inside the header",
            40,
            &8u64.to_ne_bytes(),
            "region_offset",
            None,
        ),
        Forged(
            "size not a page multiple",
            16,
            &4095u64.to_ne_bytes(),
            "total_size",
            None,
        ),
    ];
    for Forged(what, offset, bytes, want_field, want_value) in forged {
        let err = open_after_edit(|f| f.write_all_at(bytes, offset).unwrap()).unwrap_err();
        match err {
            SegmentError::CorruptHeader { field, value } => {
                assert_eq!(field, want_field, "{what}");
                if let Some(v) = want_value {
                    assert_eq!(value, v, "{what}");
                }
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn error_not_regular_file() {
    let dev_null = std::fs::File::open("/dev/null").unwrap();
    let err = Segment::from_fd(dev_null.into(), FP).unwrap_err();
    assert!(matches!(err, SegmentError::NotRegularFile), "{err:?}");
}

#[test]
fn error_invalid_options() {
    type Set = fn(&mut SegmentOptions) -> &mut SegmentOptions;
    let invalid: [(&str, Set); 3] = [
        ("no participants", |o| o.participants(0)),
        ("5000 participants", |o| o.participants(5000)),
        ("a length near u64::MAX", |o| o.len(u64::MAX - 10)),
    ];
    for (what, set) in invalid {
        let err = set(&mut SegmentOptions::new())
            .create_anonymous()
            .unwrap_err();
        assert!(
            matches!(err, SegmentError::InvalidOptions { .. }),
            "{what}: {err:?}"
        );
    }
    let anon = SegmentOptions::new().create_anonymous().unwrap();
    assert!(matches!(
        anon.unlink(),
        Err(SegmentError::InvalidOptions { .. })
    ));
}

#[test]
fn error_io_keeps_errno() {
    // Far more than the address space: the kernel refuses, and the errno survives.
    let err = SegmentOptions::new()
        .len(1 << 60)
        .create_anonymous()
        .unwrap_err();
    match &err {
        SegmentError::Io { op, source } => {
            assert!(source.raw_os_error().is_some(), "{op}: {source:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some());
}

/// `Segment::shared` lends state only wholly inside the user region, aligned, and reports
/// which rule an offset broke, with the offset as given (from the segment base).
#[cfg(not(mproc_loom))]
#[test]
fn shared_state_at_offsets_with_bounds_and_alignment() {
    let seg = SegmentOptions::new().len(4096).create_anonymous().unwrap();
    let r = seg.region();
    let end = seg.len() as u64;
    let at = |off: u64| seg.shared::<AtomicU64>(Offset::new(off)).map(|_| ());
    assert_eq!(at(r.offset()), Ok(()));
    assert_eq!(at(end - 8), Ok(()));
    for off in [end - 4, end, 0, r.offset() - 8, u64::MAX - 3] {
        assert_eq!(
            at(off),
            Err(OffsetError::OutOfBounds {
                offset: off,
                len: 8,
                start: r.offset(),
                end
            }),
            "offset {off}"
        );
    }
    assert_eq!(
        at(r.offset() + 4),
        Err(OffsetError::Misaligned {
            offset: r.offset() + 4,
            align: 8
        })
    );
    // The same memory as the region's bytes.
    word(&seg, r.offset() + 64).store(u64::MAX, Ordering::Relaxed);
    assert_eq!(seg.shared_region()[64].load(Ordering::Relaxed), 0xFF);
    assert_eq!(seg.shared_region().len(), r.len());
}

#[test]
fn offsets_resolve_with_bounds_and_alignment() {
    let seg = SegmentOptions::new().len(4096).create_anonymous().unwrap();
    let r = seg.region();
    let end = seg.len() as u64;
    assert!(seg.resolve(Offset::<u64>::new(r.offset())).is_ok());
    assert!(seg.resolve(Offset::<u64>::new(end - 8)).is_ok());
    assert!(matches!(
        seg.resolve(Offset::<u64>::new(end - 4)),
        Err(OffsetError::OutOfBounds { .. })
    ));
    assert!(matches!(
        seg.resolve(Offset::<u64>::new(0)),
        Err(OffsetError::OutOfBounds { .. })
    ));
    assert!(matches!(
        seg.resolve(Offset::<u64>::new(r.offset() - 8)),
        Err(OffsetError::OutOfBounds { .. })
    ));
    assert!(matches!(
        seg.resolve(Offset::<u64>::new(u64::MAX - 3)),
        Err(OffsetError::OutOfBounds { .. })
    ));
    assert!(matches!(
        seg.resolve(Offset::<u64>::new(r.offset() + 4)),
        Err(OffsetError::Misaligned { align: 8, .. })
    ));
    let s = seg
        .resolve_slice(Offset::<u32>::new(r.offset()), r.len() / 4)
        .unwrap();
    assert_eq!(s.len(), r.len() / 4);
    assert!(
        seg.resolve_slice(Offset::<u32>::new(r.offset()), r.len() / 4 + 1)
            .is_err()
    );
    assert!(
        seg.resolve_slice(Offset::<u64>::new(r.offset()), usize::MAX)
            .is_err()
    );
    let p = seg.resolve(Offset::<u64>::new(r.offset() + 64)).unwrap();
    assert_eq!(
        seg.offset_of(p.as_ptr()),
        Some(Offset::new(r.offset() + 64))
    );
    assert_eq!(seg.offset_of(&0u64 as *const u64), None);
}

#[test]
fn fork_parent_creates_child_writes_parent_reads() {
    let seg = SegmentOptions::new()
        .len(64 * 1024)
        .create_anonymous()
        .unwrap();
    let r = seg.region();
    let n = r.len() as u64 / 8;
    let pid = common::fork(|| {
        for i in 0..n {
            word(&seg, r.offset() + i * 8).store(i * 3 + 1, Ordering::Relaxed);
        }
        0
    });
    assert_eq!(common::wait(pid), common::Exit::Code(0));
    for i in 0..n {
        assert_eq!(
            word(&seg, r.offset() + i * 8).load(Ordering::Relaxed),
            i * 3 + 1
        );
    }
}

#[test]
fn named_segment_opened_by_unrelated_process() {
    const TEST: &str = "named_segment_opened_by_unrelated_process";
    if let Some(arg) = common::child_role() {
        // Child side: a separate program that only knows the name.
        let seg = Segment::open_named(&arg, FP).expect("child: open");
        let id = seg.register().expect("child: register");
        let off = seg.region().offset();
        let v = word(&seg, off).load(Ordering::Acquire);
        word(&seg, off + 8).store(v + 1, Ordering::Relaxed);
        word(&seg, off + 16).store(u64::from(id.get()), Ordering::Release);
        std::process::exit(0);
    }
    let (name, _guard) = scratch_name("unrelated");
    let seg = SegmentOptions::new()
        .fingerprint(FP)
        .create_named(&name)
        .unwrap();
    let off = seg.region().offset();
    word(&seg, off).store(41, Ordering::Release);
    let child = common::self_command(TEST, &name).spawn().unwrap();
    let status = common::wait_child(child);
    assert!(status.success(), "{status:?}");
    assert_eq!(word(&seg, off + 8).load(Ordering::Relaxed), 42);
    let id = word(&seg, off + 16).load(Ordering::Acquire) as u32;
    assert_ne!(id, 0);
    assert!(
        !seg.is_alive(id),
        "the child exited, so its participant is dead"
    );
}

#[test]
fn memfd_inherited_across_exec_and_reopened_from_its_number() {
    const TEST: &str = "memfd_inherited_across_exec_and_reopened_from_its_number";
    const CHILD_FD: i32 = 77;
    if let Some(arg) = common::child_role() {
        let fd: i32 = arg.parse().expect("fd number");
        // SAFETY: the parent put the segment's file at this number for us (inherit_into).
        let seg = unsafe { Segment::from_raw_fd(fd, FP) }.expect("child: from_raw_fd");
        let off = seg.region().offset();
        let v = word(&seg, off).load(Ordering::Acquire);
        word(&seg, off + 8).store(v * 2, Ordering::Release);
        std::process::exit(0);
    }
    let seg = SegmentOptions::new()
        .fingerprint(FP)
        .create_anonymous()
        .unwrap();
    let off = seg.region().offset();
    word(&seg, off).store(21, Ordering::Release);
    let mut cmd = common::self_command(TEST, &CHILD_FD.to_string());
    seg.inherit_into(&mut cmd, CHILD_FD).unwrap();
    let status = common::wait_child(cmd.spawn().unwrap());
    assert!(status.success(), "{status:?}");
    assert_eq!(word(&seg, off + 8).load(Ordering::Acquire), 42);
    // Without inherit_into, the descriptor is close-on-exec.
    assert!(
        seg.inherit_into(&mut std::process::Command::new("true"), 2)
            .is_err()
    );
}
