//! The arena's crash design with real processes (see `mproc_shm::arena`, "Crash design"): a
//! child is SIGKILLed right after the 1st, 2nd, ... journaled store of one call (mproc-shm's
//! `test-hooks`), until the call completes; after each death the parent's next call takes
//! the guard over and rolls the call back. Every byte of the arena outside the guard, the
//! journal and the statistics counters is then exactly as before the call, the
//! heap-invariant checker passes, and the arena is fully usable (everything freed, the
//! largest allocation fits).
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::Arc;

use common::Exit;
use mproc_shm::arena::ARENA_HEADER;
use mproc_shm::{Arena, Offset, Segment, SegmentOptions, test_hooks};

/// Block area of the arenas here: one 256 KiB top block (12 orders above the smallest).
const BLOCKS: u64 = 256 << 10;
const LEN: u64 = ARENA_HEADER + BLOCKS;
/// A participant id that is never alive (its generation is never handed out this soon).
const DEAD: u32 = 0x3fff_f001;

/// Byte ranges of the arena's header that a rolled-back call may leave changed: the
/// statistics counters (an interrupted `alloc_marked` over-counts held blocks, by design),
/// the guard and journal count, and the journal entries.
const MAY_DIFFER: [(u64, u64); 3] = [(24, 48), (64, 80), (384, ARENA_HEADER)];

fn fresh() -> (Arc<Segment>, Arena) {
    let seg = Arc::new(
        SegmentOptions::new()
            .len(LEN + 64 * 1024)
            .create_anonymous()
            .unwrap(),
    );
    let at = seg.region().offset();
    let arena = Arena::init(seg.clone(), at, LEN).unwrap();
    (seg, arena)
}

/// The arena's bytes, except the ranges a rolled-back call may leave changed (zeroed).
fn snapshot(seg: &Segment) -> Vec<u8> {
    let at = seg.region().offset();
    let p = seg
        .resolve_slice(Offset::<u8>::new(at), LEN as usize)
        .unwrap();
    let mut v: Vec<u8> = (0..LEN as usize)
        // SAFETY: `LEN` bytes from `p` lie in the segment (checked by `resolve_slice`);
        // read between calls, while no other process uses the arena.
        .map(|i| unsafe { p.cast::<u8>().as_ptr().add(i).read_volatile() })
        .collect();
    for (from, to) in MAY_DIFFER {
        v[from as usize..to as usize].fill(0);
    }
    v
}

/// One kind of call: `prepare` runs in the parent, `call` in the child that is killed.
struct Case {
    name: &'static str,
    prepare: fn(&Arena) -> Vec<Offset<u8>>,
    call: fn(&Arena, &Segment, &[Offset<u8>]),
    /// Whether the call changes words without the guard (the reclaim walk's election CAS),
    /// which a rollback does not undo: then only the checker and the usability are compared.
    exact: bool,
    /// The call makes at least this many journaled stores.
    min_stores: u32,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "alloc splitting the top block down to 64 B",
            prepare: |_| Vec::new(),
            call: |a, _, _| {
                a.alloc(10, 8).unwrap();
            },
            exact: true,
            min_stores: 4 * 12,
        },
        Case {
            name: "free merging 64 B back up to the top block",
            prepare: |a| vec![a.alloc(10, 8).unwrap()],
            call: |a, _, p| a.free(p[0]).unwrap(),
            exact: true,
            min_stores: 12,
        },
        Case {
            name: "alloc with shifted data (align 1024)",
            prepare: |a| vec![a.alloc(3000, 16).unwrap()],
            call: |a, _, _| {
                a.alloc(100, 1024).unwrap();
            },
            exact: true,
            min_stores: 5,
        },
        Case {
            name: "free of shifted data",
            prepare: |a| vec![a.alloc(100, 1024).unwrap(), a.alloc(64, 16).unwrap()],
            call: |a, _, p| a.free(p[0]).unwrap(),
            exact: true,
            min_stores: 5,
        },
        Case {
            name: "alloc_marked (the holder word is a journaled store)",
            prepare: |a| vec![a.alloc(500, 16).unwrap()],
            call: |a, _, _| {
                a.alloc_marked(100, 16, 77).unwrap();
            },
            exact: true,
            min_stores: 5,
        },
        Case {
            name: "free of a held block",
            prepare: |a| {
                let x = a.alloc(100, 16).unwrap();
                a.hold(x, 77).unwrap();
                vec![x]
            },
            call: |a, _, p| a.free(p[0]).unwrap(),
            exact: true,
            min_stores: 5,
        },
        Case {
            name: "reclaim walk freeing two dead holders' blocks",
            prepare: |a| {
                let x = a.alloc(100, 16).unwrap();
                let y = a.alloc(5000, 16).unwrap();
                let z = a.alloc(100, 256).unwrap();
                a.hold(x, DEAD).unwrap();
                a.hold(y, DEAD).unwrap();
                a.hold(z, DEAD).unwrap();
                vec![x, y, z]
            },
            call: |a, seg, _| {
                a.reclaim_dead(|id| seg.is_alive(id), 5).unwrap();
            },
            exact: false,
            min_stores: 3 * 5,
        },
        Case {
            name: "a consumer's free of a queued block, then the ring's hook judges it",
            prepare: |a| {
                let x = a.alloc_marked(100, 16, 77).unwrap();
                a.mark_queued(x, STAMP).unwrap();
                vec![x]
            },
            call: |a, _, p| a.free(p[0]).unwrap(),
            exact: true,
            min_stores: 12,
        },
    ]
}

/// The stamp of the slot the queued block of the last case is handed to.
const STAMP: u32 = 0x5a5a;

#[test]
fn a_call_killed_after_any_journaled_store_is_rolled_back() {
    for case in cases() {
        let mut stores = 1;
        loop {
            let (seg, arena) = fresh();
            let prepared = (case.prepare)(&arena);
            let before = arena.check().unwrap();
            let bytes = snapshot(&seg);
            let pid = common::fork(|| {
                test_hooks::die_after_arena_stores(stores);
                (case.call)(&arena, &seg, &prepared);
                test_hooks::die_after_arena_stores(0);
                0
            });
            match common::wait(pid) {
                Exit::Signal(libc::SIGKILL) => {}
                Exit::Code(0) => {
                    assert!(
                        stores > case.min_stores,
                        "{}: the call completed after only {} stores",
                        case.name,
                        stores - 1
                    );
                    break;
                }
                other => panic!("{}: store {stores}: child ended {other:?}", case.name),
            }
            // The ring's recovery hook may come first, before any other call took the guard
            // over (found by review): it must judge the block as rolled back, `QUEUED`
            // again, and free it.
            if case.name.contains("queued") {
                assert_eq!(
                    arena.reclaim_queued(prepared[0], STAMP, 9),
                    Ok(true),
                    "{}: store {stores}: the hook did not free the rolled-back block",
                    case.name
                );
                let st = arena.check().unwrap();
                assert_eq!((st.allocated_blocks, st.free_blocks), (0, 1), "{st:?}");
                stores += 1;
                continue;
            }
            // The parent's next call takes the guard over from the dead child and rolls back.
            let after = arena
                .check()
                .unwrap_or_else(|e| panic!("{}: store {stores}: {e}", case.name));
            if case.exact {
                assert_eq!(after, before, "{}: store {stores}", case.name);
                assert!(
                    snapshot(&seg) == bytes,
                    "{}: store {stores}: the arena's bytes differ from before the call",
                    case.name
                );
            }
            // Usable: whatever the child left is freed (a dead holder's blocks by the walk),
            // and then the arena is one free top block again.
            arena.reclaim_dead(|id| seg.is_alive(id), 9).unwrap();
            for off in prepared {
                let _ = arena.free(off);
            }
            let st = arena.check().unwrap();
            assert_eq!(
                (st.allocated_blocks, st.free_blocks),
                (0, 1),
                "{}: store {stores}: {st:?}",
                case.name
            );
            let all = arena.alloc(arena.max_alloc(), 16).unwrap();
            arena.free(all).unwrap();
            stores += 1;
        }
    }
}

/// Writes the arena header's word at `rel` (a test playing a dead or corrupt peer).
fn poke(seg: &Segment, rel: u64, value: u64) {
    let at = seg.region().offset() + rel;
    let p = seg.resolve_slice(Offset::<u8>::new(at), 8).unwrap();
    // SAFETY: 8 bytes inside the segment, 8-aligned (the arena is 128-aligned); the arena
    // treats every shared word as untrusted.
    unsafe { p.cast::<u64>().as_ptr().write_volatile(value) };
}

/// A guard owned by a dead participant (killed after its call's commit, before the release,
/// when the journal is already empty) or holding garbage is taken over by the next caller,
/// with several threads racing for it; nothing else changes.
#[test]
fn a_guard_left_by_a_dead_owner_is_taken_over() {
    let (seg, arena) = fresh();
    let keep = arena.alloc(1000, 16).unwrap();
    let before = arena.check().unwrap();
    for guard in [u64::from(DEAD), 0xdead_beef_0000_0001] {
        poke(&seg, 64, guard);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let x = arena.alloc(100, 16).unwrap();
                    arena.free(x).unwrap();
                });
            }
        });
        assert_eq!(arena.check().unwrap(), before);
    }
    arena.free(keep).unwrap();
}

/// A journal no valid execution writes is reported (`Corrupt`) and changes nothing: a count
/// past its capacity, or an entry naming a word outside the lists and blocks.
#[test]
fn a_corrupt_journal_is_reported_not_applied() {
    let (seg, arena) = fresh();
    let keep = arena.alloc(1000, 16).unwrap();
    let bytes = snapshot(&seg);
    poke(&seg, 72, 1_000);
    let err = arena.alloc(10, 16).unwrap_err();
    assert!(
        matches!(err, mproc_shm::ArenaError::Corrupt { .. }),
        "{err}"
    );
    // Sticky: the next call meets the same journal.
    assert!(arena.free(keep).is_err());
    // One entry naming the arena's magic (outside the lists and blocks).
    poke(&seg, 72, 1);
    poke(&seg, 384, 0);
    poke(&seg, 392, 0xdead);
    let err = arena.check().unwrap_err();
    assert!(
        matches!(err, mproc_shm::ArenaError::Corrupt { .. }),
        "{err}"
    );
    assert!(
        snapshot(&seg) == bytes,
        "a corrupt journal changed the arena"
    );
    // Repaired, the arena works again.
    poke(&seg, 72, 0);
    arena.free(keep).unwrap();
    assert_eq!(arena.check().unwrap().allocated_blocks, 0);
}
