//! Attacks the arena: arbitrary alloc/free sequences (including bogus offsets) against the
//! exact buddy model (`mproc_shm::test_hooks::BuddyModel`), the holder words (`alloc_marked`,
//! `mark_queued`, `hold`, and the recoveries `reclaim_dead` and `reclaim_queued`, whose frees
//! the model predicts too), the heap-invariant checker (`Arena::check`) after every step,
//! plus occasional byte scribbles over the arena's memory,
//! as a corrupt peer would make. Without scribbles every result must match the model and the
//! checker must pass; with them, calls may fail but must never panic, hang, or touch memory
//! outside the arena. (Scribbles skip the guard word: a guard that names a live owner for
//! ever stalls every caller, the documented limit of any lock, which is not a memory-safety
//! question.)
#![no_main]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mproc_shm::test_hooks::{BuddyModel, block_bytes};
use mproc_shm::{Arena, ArenaError, Offset};

const LEN: usize = 32 * 1024;
/// The arena's guard word (see `mproc_shm::arena`, "Layout").
const GUARD: std::ops::Range<usize> = 64..72;

#[derive(Arbitrary, Debug)]
enum Op {
    Alloc {
        size: u16,
        align_shift: u8,
    },
    /// `alloc_marked` by writer `writer % 8`.
    AllocMarked {
        size: u16,
        writer: u8,
    },
    /// `mark_queued` of a live block (its producer hands it to slot `stamp`).
    MarkQueued {
        pick: u8,
        stamp: u8,
    },
    /// `hold` of a live block by `holder % 8`.
    Hold {
        pick: u8,
        holder: u8,
    },
    /// `reclaim_dead` where participant `id < 8` is alive iff bit `id` of `alive` is set.
    ReclaimDead {
        alive: u8,
    },
    /// `reclaim_queued` of a live block with `stamp` (it frees it only if it is `QUEUED`
    /// with exactly that stamp).
    ReclaimQueued {
        pick: u8,
        stamp: u8,
    },
    Free {
        pick: u8,
    },
    FreeRaw {
        offset: u32,
    },
    Scribble {
        at: u16,
        byte: u8,
    },
    Check,
}

/// A live allocation's holder word, as the model keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    None,
    Writing(u32),
    Queued(u32),
    Held(u32),
}

/// A live allocation: offset, size, the model's `(block, order)`, the byte it holds, its mark.
type Live = (Offset<u8>, usize, (u64, u32), u8, Mark);

/// The participant id of the fuzz target's own recoveries (never a holder: holders are 0..8).
const ME: u32 = 100;

/// Fills `size` bytes of the live block at `o` with `byte`.
fn fill(arena: &Arena, o: Offset<u8>, size: usize, byte: u8) {
    let p = arena
        .ptr(o, size)
        .expect("alloc returned an out-of-bounds block");
    // SAFETY: `ptr` checked that `size` bytes at `p` lie in the buffer; the block is ours.
    unsafe { p.as_ptr().write_bytes(byte, size) };
}

fuzz_target!(|ops: Vec<Op>| {
    let layout = Layout::from_size_align(LEN, 4096).unwrap();
    // SAFETY: nonzero size.
    let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("oom");
    // SAFETY: zeroed, valid for LEN bytes until the dealloc below, after the arena is gone.
    let arena = unsafe { Arena::init_raw(mem, LEN as u64, 0) }.expect("init");
    let mut model = BuddyModel::new(LEN as u64, arena.capacity());
    let mut live: Vec<Live> = Vec::new();
    let mut scribbled = false;
    for (n, op) in ops.into_iter().take(500).enumerate() {
        match op {
            Op::Alloc { size, align_shift } => {
                let size = usize::from(size % 8192);
                let align = 1usize << (align_shift % 14); // includes invalid 8192
                let result = arena.alloc(size, align);
                if align > 4096 {
                    assert!(matches!(result, Err(ArenaError::InvalidLayout { .. })));
                    continue;
                }
                let bytes = block_bytes(size, align);
                if bytes > model.largest_top() {
                    assert!(
                        matches!(result, Err(ArenaError::TooLarge { .. })),
                        "{result:?}"
                    );
                    continue;
                }
                let expect = if scribbled { None } else { model.alloc(bytes) };
                match result {
                    Ok(o) => {
                        // Writing into what the arena handed out must stay inside it.
                        let p = arena
                            .ptr(o, size)
                            .expect("alloc returned an out-of-bounds block");
                        let byte = n as u8 | 1;
                        // SAFETY: `ptr` checked that `size` bytes at `p` lie in the buffer.
                        unsafe { p.as_ptr().write_bytes(byte, size) };
                        if !scribbled {
                            let (block, order) = expect.expect("the model predicted OOM");
                            let data = (block + 16).next_multiple_of(align.max(16) as u64);
                            assert_eq!(o.get(), data, "not the model's block");
                            assert_eq!(p.as_ptr() as usize % align, 0);
                            live.push((o, size, (block, order), byte, Mark::None));
                        } else {
                            live.push((o, size, (0, 0), byte, Mark::None));
                        }
                    }
                    Err(e) => assert!(
                        scribbled
                            || (expect.is_none() && matches!(e, ArenaError::OutOfMemory { .. })),
                        "unexpected {e:?}"
                    ),
                }
            }
            Op::Free { pick } if !live.is_empty() => {
                let (o, size, (block, order), byte, _) =
                    live.swap_remove(usize::from(pick) % live.len());
                if !scribbled {
                    let p = arena.ptr(o, size).unwrap();
                    // SAFETY: a live block of `size` bytes inside the buffer.
                    let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
                    assert!(s.iter().all(|&b| b == byte), "block overwritten");
                    arena.free(o).expect("free");
                    model.free(block, order);
                    assert!(arena.free(o).is_err(), "a second free was accepted");
                } else {
                    let _ = arena.free(o);
                }
            }
            Op::Free { .. } => {}
            Op::AllocMarked { size, writer } => {
                let size = usize::from(size % 8192);
                let writer = u32::from(writer % 8);
                let result = arena.alloc_marked(size, 16, writer);
                let bytes = block_bytes(size, 16);
                if bytes > model.largest_top() {
                    assert!(matches!(result, Err(ArenaError::TooLarge { .. })));
                    continue;
                }
                let expect = if scribbled { None } else { model.alloc(bytes) };
                match result {
                    Ok(o) if !scribbled => {
                        let (block, order) = expect.expect("the model predicted OOM");
                        assert_eq!(o.get(), block + 16, "not the model's block");
                        live.push((o, size, (block, order), 0, Mark::Writing(writer)));
                        fill(&arena, o, size, 0);
                    }
                    Ok(_) => {}
                    Err(e) => assert!(
                        scribbled
                            || (expect.is_none() && matches!(e, ArenaError::OutOfMemory { .. })),
                        "unexpected {e:?}"
                    ),
                }
            }
            Op::MarkQueued { pick, stamp } if !live.is_empty() => {
                let i = usize::from(pick) % live.len();
                let r = arena.mark_queued(live[i].0, u32::from(stamp));
                assert!(scribbled || r.is_ok(), "{r:?}");
                live[i].4 = Mark::Queued(u32::from(stamp));
            }
            Op::Hold { pick, holder } if !live.is_empty() => {
                let i = usize::from(pick) % live.len();
                let r = arena.hold(live[i].0, u32::from(holder % 8));
                assert!(scribbled || r.is_ok(), "{r:?}");
                live[i].4 = Mark::Held(u32::from(holder % 8));
            }
            Op::MarkQueued { .. } | Op::Hold { .. } => {}
            Op::ReclaimDead { alive } => {
                let is_alive = |id: u32| id < 8 && alive & (1 << id) != 0;
                let r = arena.reclaim_dead(is_alive, ME);
                if scribbled {
                    continue;
                }
                // The walk frees, in address order, every block written or held by a dead
                // participant, and counts the held ones.
                let mut dead: Vec<Live> = Vec::new();
                live.retain(|l| {
                    let gone = match l.4 {
                        Mark::Writing(id) | Mark::Held(id) => !is_alive(id),
                        Mark::None | Mark::Queued(_) => false,
                    };
                    if gone {
                        dead.push(*l);
                    }
                    !gone
                });
                dead.sort_by_key(|l| l.2.0);
                let held = dead.iter().filter(|l| matches!(l.4, Mark::Held(_))).count();
                assert_eq!(r, Ok(held as u64));
                for l in dead {
                    model.free(l.2.0, l.2.1);
                }
            }
            Op::ReclaimQueued { pick, stamp } => {
                let stamp = u32::from(stamp);
                let Some(i) = (!live.is_empty()).then(|| usize::from(pick) % live.len()) else {
                    continue;
                };
                let r = arena.reclaim_queued(live[i].0, stamp, ME);
                if scribbled {
                    continue;
                }
                let expect = live[i].4 == Mark::Queued(stamp);
                assert_eq!(r, Ok(expect));
                if expect {
                    let l = live.swap_remove(i);
                    model.free(l.2.0, l.2.1);
                }
            }
            Op::FreeRaw { offset } => {
                let o = Offset::new(u64::from(offset));
                if live.iter().any(|l| l.0 == o) {
                    continue;
                }
                let r = arena.free(o);
                assert!(scribbled || r.is_err(), "a bogus offset was accepted");
            }
            Op::Scribble { at, byte } => {
                let at = usize::from(at) % LEN;
                if GUARD.contains(&at) {
                    continue;
                }
                // SAFETY: `at < LEN`, inside the buffer.
                unsafe { mem.as_ptr().add(at).write(byte) };
                scribbled = true;
            }
            Op::Check => {}
        }
        // The heap-invariant checker after every step.
        let r = arena.check();
        if !scribbled {
            let st = r.expect("check");
            assert_eq!(st.allocated_blocks, live.len() as u64);
            assert_eq!(st.free_blocks, model.free_blocks());
            assert_eq!(st.free_bytes + st.allocated_bytes, st.capacity);
        }
    }
    drop(arena);
    // SAFETY: allocated above with this layout; the arena is gone.
    unsafe { dealloc(mem.as_ptr(), layout) };
});
