//! Attacks the arena: arbitrary alloc/free sequences (including bogus offsets) against the
//! exact buddy model (`mproc_shm::test_hooks::BuddyModel`), the heap-invariant checker
//! (`Arena::check`) after every step, plus occasional byte scribbles over the arena's memory,
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
    Alloc { size: u16, align_shift: u8 },
    Free { pick: u8 },
    FreeRaw { offset: u32 },
    Scribble { at: u16, byte: u8 },
    Check,
}

/// A live allocation: offset, size, the model's `(block, order)`, the byte it holds.
type Live = (Offset<u8>, usize, (u64, u32), u8);

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
                        let p = arena.ptr(o, size).expect("alloc returned an out-of-bounds block");
                        let byte = n as u8 | 1;
                        // SAFETY: `ptr` checked that `size` bytes at `p` lie in the buffer.
                        unsafe { p.as_ptr().write_bytes(byte, size) };
                        if !scribbled {
                            let (block, order) = expect.expect("the model predicted OOM");
                            let data = (block + 16).next_multiple_of(align.max(16) as u64);
                            assert_eq!(o.get(), data, "not the model's block");
                            assert_eq!(p.as_ptr() as usize % align, 0);
                            live.push((o, size, (block, order), byte));
                        } else {
                            live.push((o, size, (0, 0), byte));
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
                let (o, size, (block, order), byte) =
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
