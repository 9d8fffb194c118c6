//! Participants: registration, kernel-released liveness, reuse, fork semantics.
#![allow(clippy::disallowed_types)]

mod common;

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::Exit;
use mproc_shm::{Offset, ParticipantId, RegisterError, Segment, SegmentOptions};

fn word(seg: &Segment, index: u64) -> &AtomicU64 {
    let p = seg
        .resolve(Offset::<u64>::new(seg.region().offset() + index * 8))
        .expect("in bounds");
    // SAFETY: in bounds and aligned (checked by `resolve`), valid while `seg` lives; only
    // accessed atomically.
    unsafe { AtomicU64::from_ptr(p.as_ptr()) }
}

/// Slots in the region used to talk to children.
const CHILD_ID: u64 = 0;
const RELEASE: u64 = 1;
const GRANDCHILD_PID: u64 = 2;
const GRANDCHILD_SAW_STALE: u64 = 3;

/// Child body: register, publish the id, then wait (bounded) until told to exit.
fn registering_child(seg: &Segment) -> i32 {
    let Ok(id) = seg.register() else { return 2 };
    word(seg, CHILD_ID).store(u64::from(id.get()), Ordering::Release);
    let start = std::time::Instant::now();
    while word(seg, RELEASE).load(Ordering::Acquire) == 0 {
        if start.elapsed() > common::DEADLINE {
            return 3;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    0
}

fn wait_for_id(seg: &Segment) -> u32 {
    assert!(common::eventually(|| word(seg, CHILD_ID)
        .load(Ordering::Acquire)
        != 0));
    word(seg, CHILD_ID).swap(0, Ordering::AcqRel) as u32
}

#[test]
fn register_is_idempotent_and_shared_by_threads() {
    let seg = Arc::new(SegmentOptions::new().create_anonymous().unwrap());
    assert_eq!(seg.participant(), None);
    let id = seg.register().unwrap();
    assert_eq!(seg.register().unwrap(), id);
    assert_eq!(seg.participant(), Some(id));
    assert!(id.get() != 0 && id.get() <= ParticipantId::MAX);
    let ids: Vec<_> = (0..4)
        .map(|_| {
            let seg = seg.clone();
            std::thread::spawn(move || seg.register().unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(ids.iter().all(|&i| i == id));
    assert!(seg.is_alive(id.get()));
    assert!(!seg.is_alive(0));
    assert!(!seg.is_alive(u32::MAX));
    let live = seg.liveness();
    assert!(live(id.get()));
}

#[test]
fn dropping_a_handle_releases_its_entry() {
    let a = SegmentOptions::new().create_anonymous().unwrap();
    let b = Segment::from_fd(a.as_fd().try_clone_to_owned().unwrap(), 0).unwrap();
    let id_a = a.register().unwrap();
    let id_b = b.register().unwrap();
    assert_ne!(id_a.index(), id_b.index(), "two handles, two entries");
    assert!(b.is_alive(id_a.get()));
    drop(a);
    // Eventually, not at once: another test's fork may hold a copy of our liveness
    // descriptor until that child first runs (see the participant module docs).
    assert!(
        common::eventually(|| !b.is_alive(id_a.get())),
        "the liveness lock went with the handle"
    );
    assert!(b.is_alive(id_b.get()));
    // The freed entry is reused by the next registration, with a new generation.
    let c = Segment::from_fd(b.as_fd().try_clone_to_owned().unwrap(), 0).unwrap();
    let id_c = c.register().unwrap();
    assert_eq!(id_c.index(), id_a.index());
    assert_ne!(id_c, id_a);
    assert!(!c.is_alive(id_a.get()));
    assert!(c.is_alive(id_c.get()));
}

#[test]
fn child_alive_while_running_dead_after_sigkill_and_after_clean_exit_entry_reused() {
    let seg = SegmentOptions::new().create_anonymous().unwrap();
    let me = seg.register().unwrap();

    // 1. SIGKILL.
    let pid = common::fork(|| registering_child(&seg));
    let first = wait_for_id(&seg);
    assert_ne!(first, me.get(), "the child registered its own entry");
    assert!(seg.is_alive(first), "alive while it runs");
    common::kill(pid);
    assert_eq!(common::wait(pid), Exit::Signal(libc::SIGKILL));
    assert!(!seg.is_alive(first), "dead after SIGKILL");
    assert!(seg.is_alive(me.get()));

    // 2. A new child reuses the dead entry, with a new id; then exits cleanly.
    let pid = common::fork(|| registering_child(&seg));
    let second = wait_for_id(&seg);
    let (a, b) = (
        ParticipantId::new(first).unwrap(),
        ParticipantId::new(second).unwrap(),
    );
    assert_eq!(a.index(), b.index(), "entry reused");
    assert_ne!(a.generation(), b.generation());
    assert!(seg.is_alive(second));
    assert!(!seg.is_alive(first), "the reused entry's old id stays dead");
    word(&seg, RELEASE).store(1, Ordering::Release);
    assert_eq!(common::wait(pid), Exit::Code(0));
    assert!(!seg.is_alive(second), "dead after a clean exit");
}

#[test]
fn grandchild_forked_from_child_does_not_keep_it_alive() {
    let seg = SegmentOptions::new().create_anonymous().unwrap();
    seg.register().unwrap();
    let pid = common::fork(|| {
        let Ok(id) = seg.register() else { return 2 };
        let grandchild = common::fork(|| {
            // The inherited registration is stale here: a new process.
            let stale = seg.participant().is_none();
            word(&seg, GRANDCHILD_SAW_STALE).store(1 + u64::from(stale), Ordering::Release);
            let start = std::time::Instant::now();
            while word(&seg, RELEASE).load(Ordering::Acquire) == 0 {
                if start.elapsed() > common::DEADLINE {
                    return 3;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            0
        });
        word(&seg, GRANDCHILD_PID).store(grandchild as u64, Ordering::Release);
        word(&seg, CHILD_ID).store(u64::from(id.get()), Ordering::Release);
        0 // exits at once, leaving the grandchild running
    });
    let child_id = wait_for_id(&seg);
    assert_eq!(common::wait(pid), Exit::Code(0));
    let grandchild = word(&seg, GRANDCHILD_PID).load(Ordering::Acquire) as libc::pid_t;
    assert!(grandchild > 0);
    assert!(common::eventually(|| word(&seg, GRANDCHILD_SAW_STALE)
        .load(Ordering::Acquire)
        != 0));
    assert_eq!(
        word(&seg, GRANDCHILD_SAW_STALE).load(Ordering::Acquire),
        2,
        "stale registration"
    );
    assert!(
        common::exists(grandchild),
        "the grandchild is still running"
    );
    assert!(
        !seg.is_alive(child_id),
        "the grandchild must not keep the child alive"
    );
    // Let the grandchild go (it is not our child; make sure it is gone).
    word(&seg, RELEASE).store(1, Ordering::Release);
    if !common::eventually(|| !common::exists(grandchild)) {
        common::kill(grandchild);
    }
}

#[test]
fn forked_child_does_not_keep_parent_alive_and_registers_its_own_entry() {
    // The parent's liveness descriptor is closed in the child, so when the parent's handle
    // drops its registration, the parent reads as dead even though the child still runs.
    let seg = Arc::new(SegmentOptions::new().create_anonymous().unwrap());
    let observer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap(), 0).unwrap();
    let parent_id = seg.register().unwrap();
    let pid = common::fork(|| {
        if seg.participant().is_some() {
            return 4; // must be stale in the child
        }
        registering_child(&seg)
    });
    let child_id = wait_for_id(&observer);
    assert_ne!(child_id, parent_id.get());
    // Release the parent's registration by dropping the only handle holding it.
    drop(seg);
    assert!(
        common::eventually(|| !observer.is_alive(parent_id.get())),
        "the child must not hold the parent's lock"
    );
    assert!(observer.is_alive(child_id));
    word(&observer, RELEASE).store(1, Ordering::Release);
    assert_eq!(common::wait(pid), Exit::Code(0));
    assert!(!observer.is_alive(child_id));
}

#[test]
fn table_full_then_dead_entry_reclaimed() {
    let seg = SegmentOptions::new()
        .participants(2)
        .create_anonymous()
        .unwrap();
    seg.register().unwrap();
    let pid = common::fork(|| registering_child(&seg));
    let child = wait_for_id(&seg);
    // A third process finds the table full.
    let probe = common::fork(|| match seg.register() {
        Err(RegisterError::TableFull { capacity: 2 }) => 0,
        _ => 1,
    });
    assert_eq!(common::wait(probe), Exit::Code(0));
    common::kill(pid);
    assert_eq!(common::wait(pid), Exit::Signal(libc::SIGKILL));
    // Now the dead child's entry is free for the next one.
    let probe = common::fork(|| match seg.register() {
        Ok(id) if id.index() == ParticipantId::new(child).unwrap().index() => 0,
        _ => 1,
    });
    assert_eq!(common::wait(probe), Exit::Code(0));
}
