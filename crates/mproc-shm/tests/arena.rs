//! Arena: errors, alignment, a property test against an exact buddy model, threads, two
//! processes × two threads, a process SIGKILLed after every journaled store of each kind of
//! call, and the coalescing promise over randomised size histories.
#![allow(clippy::disallowed_types)]

mod common;

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Arc;

use common::{Exit, Rng};
use mproc_shm::test_hooks::{BuddyModel, block_bytes};
use mproc_shm::{Arena, ArenaError, Offset, Segment, SegmentOptions};
use proptest::prelude::*;

/// A zeroed, 128-byte aligned heap buffer (an arena's memory for in-process tests).
struct HeapBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl HeapBuf {
    fn new(len: usize) -> HeapBuf {
        let layout = Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: the layout has a nonzero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("oom");
        HeapBuf { ptr, layout }
    }

    fn arena(&self) -> Arena {
        // SAFETY: the buffer is zeroed, valid for its length, and outlives every arena the
        // tests make from it (they are dropped first).
        unsafe { Arena::init_raw(self.ptr, self.layout.size() as u64, 0) }.unwrap()
    }
}

impl Drop for HeapBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

fn fill(arena: &Arena, off: Offset<u8>, len: usize, byte: u8) {
    let p = arena.ptr(off, len).unwrap();
    // SAFETY: `len` bytes at `p` belong to this live allocation.
    unsafe { p.as_ptr().write_bytes(byte, len) };
}

fn holds(arena: &Arena, off: Offset<u8>, len: usize, byte: u8) -> bool {
    let p = arena.ptr(off, len).unwrap();
    // SAFETY: `len` bytes at `p` belong to this live allocation, written by `fill`.
    let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) };
    s.iter().all(|&b| b == byte)
}

#[test]
fn smoke_alloc_free_check() {
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    let a = arena.alloc(10, 8).unwrap();
    let b = arena.alloc(100, 16).unwrap();
    assert_ne!(a, b);
    fill(&arena, a, 10, 1);
    fill(&arena, b, 100, 2);
    assert!(holds(&arena, a, 10, 1) && holds(&arena, b, 100, 2));
    let empty = arena.check().unwrap();
    let st = arena.check().unwrap();
    assert_eq!(st.allocated_blocks, 2);
    assert_eq!(st.allocated_bytes, 64 + 128);
    arena.free(a).unwrap();
    let st = arena.check().unwrap();
    assert_eq!(st.allocated_blocks, 1);
    // A second arena handle over the same memory sees the same heap.
    // SAFETY: same buffer, still alive, already initialised.
    let other = unsafe { Arena::attach_raw(buf.ptr, buf.layout.size() as u64, 0) }.unwrap();
    other.free(b).unwrap();
    // Everything merged back: the free blocks are the top blocks again.
    let st = arena.check().unwrap();
    assert_eq!((st.allocated_blocks, st.free_bytes), (0, st.capacity));
    assert_eq!(st.free_blocks, u64::from((st.capacity / 64).count_ones()));
    let _ = empty;
}

#[test]
fn errors_layout_oom_bad_offset_double_free() {
    let buf = HeapBuf::new(16 * 1024);
    let arena = buf.arena();
    assert_eq!(
        arena.alloc(8, 3),
        Err(ArenaError::InvalidLayout { size: 8, align: 3 })
    );
    assert_eq!(
        arena.alloc(8, 8192),
        Err(ArenaError::InvalidLayout {
            size: 8,
            align: 8192
        })
    );
    assert!(matches!(
        arena.alloc(1 << 20, 8),
        Err(ArenaError::TooLarge { .. })
    ));
    assert!(matches!(
        arena.alloc(usize::MAX, 8),
        Err(ArenaError::TooLarge { .. })
    ));
    // Exhaust, then recover everything.
    let mut live = Vec::new();
    loop {
        match arena.alloc(40, 8) {
            Ok(o) => live.push(o),
            Err(ArenaError::OutOfMemory { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!live.is_empty());
    let x = live[0];
    for bad in [
        0,
        1,
        x.get() + 1,
        x.get() + 16,
        x.get() - 16,
        u64::MAX,
        16 * 1024,
    ] {
        assert!(
            matches!(
                arena.free(Offset::new(bad)),
                Err(ArenaError::BadOffset { .. })
            ),
            "{bad}"
        );
    }
    for o in &live {
        arena.free(*o).unwrap();
    }
    assert_eq!(
        arena.free(x),
        Err(ArenaError::DoubleFree { offset: x.get() })
    );
    let st = arena.check().unwrap();
    assert_eq!(st.allocated_blocks, 0);
    assert_eq!(st.free_bytes, st.capacity, "no loss");
    // Attaching to a non-arena is refused.
    let empty = HeapBuf::new(8192);
    // SAFETY: valid zeroed buffer.
    let err = unsafe { Arena::attach_raw(empty.ptr, 8192, 0) }.unwrap_err();
    assert!(matches!(err, ArenaError::NotAnArena { .. }));
    // Initialising twice is refused.
    // SAFETY: valid buffer that already holds an arena (the call must refuse it).
    let err = unsafe { Arena::init_raw(buf.ptr, 16 * 1024, 0) }.unwrap_err();
    assert!(matches!(err, ArenaError::Corrupt { .. }));
    // SAFETY: valid buffer; too small is refused before any access.
    let err = unsafe { Arena::init_raw(empty.ptr, 100, 0) }.unwrap_err();
    assert!(matches!(err, ArenaError::InvalidRange { .. }));
}

#[test]
fn alignments_up_to_a_page() {
    let buf = HeapBuf::new(256 * 1024);
    let arena = buf.arena();
    let mut live = Vec::new();
    for shift in 0..=12 {
        let align = 1usize << shift;
        for size in [1, align, 3 * align + 1] {
            let o = arena.alloc(size, align).unwrap();
            let p = arena.ptr(o, size).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0, "align {align} size {size}");
            fill(&arena, o, size, shift as u8);
            live.push((o, size, shift as u8));
        }
    }
    for &(o, size, b) in &live {
        assert!(holds(&arena, o, size, b), "overlap detected");
    }
    for &(o, ..) in &live {
        arena.free(o).unwrap();
    }
    let st = arena.check().unwrap();
    assert_eq!((st.allocated_blocks, st.free_bytes), (0, st.capacity));
}

/// An arena over the whole user region of a fresh anonymous segment of `len` bytes.
fn segment_arena(len: u64) -> (Arc<Segment>, Arena) {
    let seg = Arc::new(SegmentOptions::new().len(len).create_anonymous().unwrap());
    let r = seg.region();
    let arena = Arena::init(seg.clone(), r.offset(), r.len() as u64).unwrap();
    (seg, arena)
}

/// Every block is back and the heap is whole.
fn assert_no_loss(arena: &Arena) {
    let st = arena.check().unwrap();
    assert_eq!(
        (st.allocated_blocks, st.free_bytes),
        (0, st.capacity),
        "no loss"
    );
}

#[test]
fn arena_in_a_segment_region() {
    let (seg, arena) = segment_arena(1 << 16);
    let r = seg.region();
    let o = arena.alloc(64, 8).unwrap();
    // Offsets are segment offsets: the segment resolves them too.
    let p = seg.resolve_slice(o, 64).unwrap();
    assert_eq!(p.cast::<u8>(), arena.ptr(o, 64).unwrap());
    let again = Arena::attach(seg.clone(), r.offset(), r.len() as u64).unwrap();
    again.free(o).unwrap();
    assert!(matches!(
        Arena::init(seg.clone(), r.offset() + 8, 4096),
        Err(ArenaError::InvalidRange { .. })
    ));
    assert!(matches!(
        Arena::init(seg.clone(), 0, 4096),
        Err(ArenaError::InvalidRange { .. })
    ));
}

/// One thread's workload: random sizes, a pattern per block checked before free.
fn hammer(arena: &Arena, seed: u64, iters: usize) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let mut live: Vec<(Offset<u8>, usize, u8)> = Vec::new();
    for i in 0..iters {
        if live.len() < 32 && (live.is_empty() || rng.below(2) == 0) {
            let max = if rng.below(8) == 0 { 3000 } else { 200 };
            let size = 1 + rng.below(max) as usize;
            let align = 1 << rng.below(7);
            match arena.alloc(size, align) {
                Ok(o) => {
                    let byte = (seed as u8).wrapping_add(i as u8) | 1;
                    fill(arena, o, size, byte);
                    live.push((o, size, byte));
                }
                Err(ArenaError::OutOfMemory { .. }) => {}
                Err(e) => return Err(format!("alloc: {e}")),
            }
        } else {
            let (o, size, byte) = live.swap_remove(rng.below(live.len() as u64) as usize);
            if !holds(arena, o, size, byte) {
                return Err(format!("block at {} was overwritten (overlap)", o.get()));
            }
            arena.free(o).map_err(|e| format!("free: {e}"))?;
        }
    }
    for (o, size, byte) in live {
        if !holds(arena, o, size, byte) {
            return Err(format!("block at {} was overwritten (overlap)", o.get()));
        }
        arena.free(o).map_err(|e| format!("free: {e}"))?;
    }
    Ok(())
}

const ITERS: usize = mproc_testkit::iterations(20_000, 200_000) as usize;

#[test]
fn four_threads_in_process() {
    let buf = HeapBuf::new(1 << 20);
    let arena = buf.arena();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                s.spawn({
                    let arena = &arena;
                    move || hammer(arena, 0x1000 + t, ITERS)
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
    assert_no_loss(&arena);
}

#[test]
fn two_processes_times_two_threads() {
    let (_seg, arena) = segment_arena(1 << 20);
    let run = |base: u64| -> bool {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|t| {
                    s.spawn({
                        let arena = &arena;
                        move || hammer(arena, base + t, ITERS)
                    })
                })
                .collect();
            hs.into_iter().all(|h| match h.join().unwrap() {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("{e}");
                    false
                }
            })
        })
    };
    let pid = common::fork(|| if run(0x2000) { 0 } else { 1 });
    let ok = run(0x3000);
    assert_eq!(common::wait(pid), Exit::Code(0), "child saw a corrupt heap");
    assert!(ok, "parent saw a corrupt heap");
    assert_no_loss(&arena);
}

#[test]
fn a_process_killed_anywhere_in_the_allocator_leaks_at_most_its_blocks() {
    let (_seg, arena) = segment_arena(1 << 20);
    for round in 0..3u64 {
        let before = arena.check().unwrap();
        let pid = common::fork(|| {
            // Allocate and free for ever; the parent kills us somewhere inside.
            let mut i = 0;
            loop {
                let _ = hammer(&arena, 0x4000 + round * 1000 + i, 1000);
                i += 1;
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20 + 15 * round));
        common::kill(pid);
        assert_eq!(common::wait(pid), Exit::Signal(libc::SIGKILL));
        // Survivors go on, and the heap stays consistent.
        hammer(&arena, 0x5000 + round, 2000).unwrap();
        let st = arena.check().unwrap();
        // The dead process's live blocks (at most 32) plus one it had allocated and not yet
        // recorded are lost; a call it was inside was rolled back (`check` passed).
        assert!(
            st.allocated_blocks - before.allocated_blocks <= 33,
            "{st:?}"
        );
    }
}

/// A live allocation of the property test: offset, size, the model's `(block, order)`,
/// and the byte it was filled with.
type Live = (Offset<u8>, usize, (u64, u32), u8);

#[derive(Debug, Clone)]
enum Op {
    Alloc { size: usize, align_shift: u8 },
    Free { pick: usize },
    BadFree { raw: u64 },
    Check,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..6000, 0u8..9).prop_map(|(size, align_shift)| Op::Alloc { size, align_shift }),
        3 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => any::<u64>().prop_map(|raw| Op::BadFree { raw }),
        1 => Just(Op::Check),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(debug_assertions) { 64 } else { 256 }, ..ProptestConfig::default() })]

    /// The arena against the exact buddy model: every offset and every OutOfMemory is
    /// predicted; live blocks never overlap; check() agrees with the model; a bad or stale
    /// offset is refused; once everything is freed the arena is its top blocks again.
    #[test]
    fn ops_match_the_buddy_model(ops in proptest::collection::vec(op(), 1..200)) {
        const LEN: u64 = 48 * 1024;
        let buf = HeapBuf::new(LEN as usize);
        let arena = buf.arena();
        let mut model = BuddyModel::new(LEN, arena.capacity());
        let mut live: Vec<Live> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Alloc { size, align_shift } => {
                    let align = 1usize << align_shift;
                    let bytes = block_bytes(size, align);
                    let result = arena.alloc(size, align);
                    if bytes > model.largest_top() {
                        prop_assert!(matches!(result, Err(ArenaError::TooLarge { .. })), "{:?}", result);
                        continue;
                    }
                    let expect = model.alloc(bytes);
                    match (result, expect) {
                        (Ok(o), Some((block, order))) => {
                            let data = (block + 16).next_multiple_of(align.max(16) as u64);
                            prop_assert_eq!(o.get(), data, "the model's block");
                            let p = arena.ptr(o, size).unwrap();
                            prop_assert_eq!(p.as_ptr() as usize % align, 0);
                            for &(q, qs, ..) in &live {
                                let disjoint = o.get() + size as u64 <= q.get() || q.get() + qs as u64 <= o.get();
                                prop_assert!(disjoint, "overlapping allocations");
                            }
                            let byte = n as u8 | 1;
                            fill(&arena, o, size, byte);
                            live.push((o, size, (block, order), byte));
                        }
                        (Err(ArenaError::OutOfMemory { .. }), None) => {}
                        (r, e) => prop_assert!(false, "arena {:?}, model {:?}", r, e),
                    }
                }
                Op::Free { pick } if !live.is_empty() => {
                    let (o, size, (block, order), byte) = live.swap_remove(pick % live.len());
                    prop_assert!(holds(&arena, o, size, byte));
                    arena.free(o).unwrap();
                    model.free(block, order);
                    prop_assert!(arena.free(o).is_err(), "a second free is refused");
                }
                Op::Free { .. } => {}
                Op::BadFree { raw } => {
                    // Any offset that is not a live block's start must be refused.
                    if !live.iter().any(|l| l.0.get() == raw) {
                        prop_assert!(arena.free(Offset::new(raw)).is_err());
                    }
                }
                Op::Check => {
                    let st = arena.check().unwrap();
                    prop_assert_eq!(st.allocated_blocks, live.len() as u64);
                    prop_assert_eq!(st.free_blocks, model.free_blocks());
                    prop_assert_eq!(st.free_bytes + st.allocated_bytes, st.capacity);
                }
            }
        }
        for (o, size, _, byte) in live.drain(..) {
            prop_assert!(holds(&arena, o, size, byte));
            arena.free(o).unwrap();
        }
        let st = arena.check().unwrap();
        prop_assert_eq!(st.allocated_blocks, 0);
        prop_assert_eq!(st.free_bytes, st.capacity);
        prop_assert_eq!(st.free_blocks, model.top_blocks());
        prop_assert_eq!(arena.alloc(arena.max_alloc(), 16).map(|o| o.get() > 0), Ok(true));
    }
}

// ---------------------------------------------------------------------------------------
// Boundaries a mutation run (`cargo xtask mutants`) found untested.

/// `init_raw` over the first `len` bytes of a buffer that is a little larger (so a bug that
/// reached past `len` would not fault, only show in `capacity`).
fn arena_of_len(buf: &HeapBuf, len: u64) -> Result<Arena, ArenaError> {
    assert!(len as usize <= buf.layout.size());
    // SAFETY: zeroed, valid for `len <= buffer length` bytes, outlives the arena.
    unsafe { Arena::init_raw(buf.ptr, len, 0) }
}

#[test]
fn the_smallest_arena_is_accepted_and_one_byte_less_is_not() {
    let buf = HeapBuf::new(8192);
    let min = mproc_shm::arena::MIN_ARENA_LEN;
    let arena = arena_of_len(&buf, min).unwrap();
    assert!(arena.capacity() > 0);
    assert!(matches!(
        arena_of_len(&buf, min - 1),
        Err(ArenaError::InvalidRange { .. })
    ));
}

#[test]
fn an_arena_never_claims_bytes_past_its_range() {
    // A length that is not a whole number of allocation units: the tail is unused.
    for len in [4096 + 1, 4096 + 63, 8192 - 1, 20_000] {
        let buf = HeapBuf::new(64 * 1024);
        let arena = arena_of_len(&buf, len).unwrap();
        assert!(
            arena.capacity() < len,
            "len {len}: capacity {}",
            arena.capacity()
        );
        // Carve everything: every block — a 16-byte header, then the smallest class's
        // 48 payload bytes — lies inside the range.
        let mut blocks = Vec::new();
        while let Ok(off) = arena.alloc(16, 16) {
            assert!(off.get() + 48 <= len, "len {len}: block at {}", off.get());
            blocks.push(off);
        }
        assert!(!blocks.is_empty());
        arena.check().unwrap();
    }
}

#[test]
fn max_alloc_is_exactly_the_largest_allocation() {
    for len in [64 * 1024, 1 << 20] {
        let buf = HeapBuf::new(len);
        let arena = buf.arena();
        let max = arena.max_alloc();
        assert!(max >= 16, "len {len}: max_alloc {max}");
        let big = arena.alloc(max, 16).unwrap();
        arena.free(big).unwrap();
        assert!(
            arena.alloc(max + 1, 16).is_err(),
            "len {len}: max_alloc {max}"
        );
        arena.check().unwrap();
    }
}

#[test]
fn a_free_list_link_out_of_bounds_is_corrupt() {
    // Free one block so its class's list head points at it; find that head word by
    // comparing the memory before and after the free (it changes from empty to the block's
    // index), then point it past the arena's end.
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    let a = arena.alloc(16, 16).unwrap();
    let words = buf.layout.size() / 8;
    let base = buf.ptr.as_ptr().cast::<u64>();
    // SAFETY: `i < words`: inside the buffer; reads between arena calls on this thread.
    let read = |i: usize| unsafe { base.add(i).read_volatile() };
    let before: Vec<u64> = (0..words).map(read).collect();
    arena.free(a).unwrap();
    // Only the arena's header words before its journal (whose entries keep old values).
    let heads: Vec<usize> = (0..384 / 8)
        .filter(|&i| before[i] == 0 && read(i) != 0 && read(i) as u32 != 0)
        .collect();
    assert_eq!(
        heads.len(),
        1,
        "one list head went from empty to a block: {heads:?}"
    );
    let head = heads[0];
    // Point the link (a block index + 1) far out of range.
    let forged = 0x00FF_FFFF;
    // SAFETY: inside the buffer; the arena treats every shared word as untrusted.
    unsafe { base.add(head).write_volatile(forged) };
    assert!(
        matches!(arena.alloc(16, 16), Err(ArenaError::Corrupt { .. })),
        "a link past the end was followed"
    );
}

#[test]
fn freeing_shifted_data_retires_its_shift_mark() {
    // An allocation aligned above 16 has its data shifted inside the block, with a shift
    // mark (state 4 in the documented tag format) just in front of it; `free` retires that
    // very word (state 5), so a second free of the same offset is a double free.
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    let off = arena.alloc(100, 256).unwrap();
    assert_eq!(off.get() % 256, 0);
    let state_in_front = || {
        // SAFETY: `off >= 16` inside the buffer (the arena's base offset is 0); the word in
        // front of shifted data is the arena's shift mark, read between calls.
        let w = unsafe {
            buf.ptr
                .as_ptr()
                .add(off.get() as usize - 16)
                .cast::<u64>()
                .read_volatile()
        };
        ((w >> 48) as u16, (w >> 40) as u8)
    };
    assert_eq!(
        state_in_front(),
        (0xB10C, 4),
        "a shift mark in front of the data"
    );
    arena.free(off).unwrap();
    assert_eq!(state_in_front(), (0xB10C, 5), "the shift mark is retired");
    assert_eq!(
        arena.free(off),
        Err(ArenaError::DoubleFree { offset: off.get() })
    );
    arena.check().unwrap();
}

/// Held blocks (#12 finding 3, the `get_ref` guard): a block marked held by a participant
/// that dies is freed by the next `reclaim_dead` and counted once; a live holder's, an
/// unmarked block and a block freed by its holder are left alone; shifted data too.
#[test]
fn a_dead_holders_blocks_are_reclaimed_and_counted_once() {
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    let dead = |id: u32| id != 7;
    // Nothing marked: the walk is skipped.
    let plain = arena.alloc(100, 16).unwrap();
    assert_eq!(arena.reclaim_dead(dead, 1).unwrap(), 0);
    let held = arena.alloc(100, 16).unwrap();
    let shifted = arena.alloc(100, 256).unwrap();
    let live = arena.alloc(100, 16).unwrap();
    let freed = arena.alloc(100, 16).unwrap();
    arena.hold(held, 7).unwrap();
    arena.hold(shifted, 7).unwrap();
    arena.hold(live, 3).unwrap(); // 3 is alive below
    arena.hold(freed, 7).unwrap();
    arena.free(freed).unwrap(); // its holder freed it before dying
    let alive = |id: u32| id == 3;
    assert_eq!(arena.reclaim_dead(alive, 1).unwrap(), 2);
    assert_eq!(arena.held_reclaimed(), 2);
    assert_eq!(
        arena.free(held),
        Err(ArenaError::DoubleFree { offset: held.get() })
    );
    assert_eq!(
        arena.free(shifted),
        Err(ArenaError::DoubleFree {
            offset: shifted.get()
        })
    );
    // A second walk finds nothing more; the survivors are intact.
    assert_eq!(arena.reclaim_dead(alive, 1).unwrap(), 0);
    assert_eq!(arena.held_reclaimed(), 2);
    arena.free(live).unwrap();
    arena.free(plain).unwrap();
    let st = arena.check().unwrap();
    assert_eq!(st.allocated_blocks, 0);
    // A reused block carries no stale mark: holding it again and freeing it is ordinary.
    let again = arena.alloc(100, 16).unwrap();
    assert_eq!(arena.reclaim_dead(|_| false, 1).unwrap(), 0);
    arena.free(again).unwrap();
}

/// `hold` refuses what is not an allocated block, as `free` does.
#[test]
fn hold_checks_its_offset() {
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    let a = arena.alloc(10, 16).unwrap();
    arena.free(a).unwrap();
    assert_eq!(
        arena.hold(a, 5),
        Err(ArenaError::DoubleFree { offset: a.get() })
    );
    assert!(matches!(
        arena.hold(Offset::new(3), 5),
        Err(ArenaError::BadOffset { .. })
    ));
}

/// The producer's hand-off: `WRITING(dead)` is freed by the walk (uncounted), `QUEUED` is
/// never touched by the walk and is freed by `reclaim_queued` only with its exact stamp.
#[test]
fn a_dead_producers_block_is_freed_on_either_side_of_its_hand_off() {
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    let dead = |id: u32| id != 9;
    let writing = arena.alloc_marked(100, 16, 9).unwrap();
    let queued = arena.alloc_marked(100, 16, 9).unwrap();
    arena.mark_queued(queued, 0x1234).unwrap();
    let committed = arena.alloc_marked(100, 16, 4).unwrap();
    arena.mark_queued(committed, 0x99).unwrap();
    // The walk frees the never-handed-on block, counts nothing, and leaves QUEUED ones.
    assert_eq!(arena.reclaim_dead(dead, 1).unwrap(), 0);
    assert_eq!(
        arena.free(writing),
        Err(ArenaError::DoubleFree {
            offset: writing.get()
        })
    );
    assert_eq!(arena.held_reclaimed(), 0);
    // A wrong stamp (a half-written descriptor naming another block) frees nothing.
    assert!(!arena.reclaim_queued(queued, 0x1235, 1).unwrap());
    assert!(!arena.reclaim_queued(committed, 0x1234, 1).unwrap());
    assert!(!arena.reclaim_queued(Offset::new(8), 0x1234, 1).unwrap());
    // The exact stamp frees it, once.
    assert!(arena.reclaim_queued(queued, 0x1234, 1).unwrap());
    assert!(!arena.reclaim_queued(queued, 0x1234, 1).unwrap());
    // The committed block is its consumer's to free.
    arena.free(committed).unwrap();
    let st = arena.check().unwrap();
    assert_eq!(st.allocated_blocks, 0);
}

/// `walk_freed` moves for every block the walk frees, counted (`HELD`) or not (`WRITING`), so
/// a caller can wake producers waiting for room either way.
#[test]
fn the_walk_reports_every_block_it_frees() {
    let buf = HeapBuf::new(64 * 1024);
    let arena = buf.arena();
    arena.alloc_marked(100, 16, 9).unwrap();
    let held = arena.alloc(100, 16).unwrap();
    arena.hold(held, 9).unwrap();
    assert_eq!(arena.walk_freed(), 0);
    assert_eq!(
        arena.reclaim_dead(|id| id != 9, 1).unwrap(),
        1,
        "only HELD counts"
    );
    assert_eq!(arena.walk_freed(), 2, "both were freed");
}

// ---------------------------------------------------------------------------------------
// The coalescing promise (#13): with no live block, any allocation up to `max_alloc` fits.

/// An arena whose block area is exactly `blocks` bytes (a power of two: one top block).
fn arena_with_blocks(blocks: u64) -> (HeapBuf, Arena) {
    let len = mproc_shm::arena::ARENA_HEADER + blocks;
    let buf = HeapBuf::new(len as usize);
    let arena = buf.arena();
    assert_eq!(arena.max_alloc() as u64, blocks - 16);
    (buf, arena)
}

/// The size sequences #13 found blocking an empty queue with the size-class arena.
#[test]
fn the_histories_that_drifted_the_old_arena_leave_it_whole() {
    // A burst of 31 × 20 KiB drained, then 10 KiB messages one at a time, then the largest.
    let (_b, arena) = arena_with_blocks(1 << 20);
    let burst: Vec<_> = (0..31)
        .map(|_| arena.alloc(20 << 10, 16).unwrap())
        .collect();
    for o in burst {
        arena.free(o).unwrap();
    }
    for _ in 0..100 {
        let o = arena.alloc(10 << 10, 16).unwrap();
        arena.free(o).unwrap();
    }
    let all = arena.alloc(arena.max_alloc(), 16).unwrap();
    arena.free(all).unwrap();
    // 3 × 700 KiB, then 1.5 MiB, in a 4 MiB arena.
    let (_b, arena) = arena_with_blocks(4 << 20);
    for _ in 0..3 {
        let o = arena.alloc(700 << 10, 16).unwrap();
        arena.free(o).unwrap();
    }
    let big = arena.alloc(1536 << 10, 16).unwrap();
    arena.free(big).unwrap();
    // 1, 4, 16 MiB then 64 MiB through a 128 MiB arena (the pages are never touched but for
    // the block headers).
    let (_b, arena) = arena_with_blocks(128 << 20);
    for mib in [1, 4, 16] {
        let o = arena.alloc(mib << 20, 16).unwrap();
        arena.free(o).unwrap();
    }
    let o = arena.alloc(64 << 20, 16).unwrap();
    arena.free(o).unwrap();
    let st = arena.check().unwrap();
    assert_eq!((st.free_blocks, st.largest_free_block), (1, 128 << 20));
}

/// Randomised size histories (log-uniform sizes up to a quarter of the arena, random
/// alignments, random frees): whenever the live set empties, the largest allocation fits and
/// the checker sees one free top block; a request above `max_alloc` is `TooLarge` at once,
/// whatever is live.
#[test]
fn any_history_drained_leaves_the_whole_arena() {
    let seeds = if cfg!(debug_assertions) { 8 } else { 40 };
    for seed in 0..seeds {
        let (_b, arena) = arena_with_blocks(1 << 20);
        let mut rng = Rng(0x9e37_79b9 + seed);
        let mut live = Vec::new();
        let mut drained = 0;
        for _ in 0..3000 {
            if !live.is_empty() && rng.below(5) < 2 {
                let i = rng.below(live.len() as u64) as usize;
                arena.free(live.swap_remove(i)).unwrap();
            } else {
                let bits = 4 + rng.below(15);
                let size = (1 << bits) + rng.below(1 << bits);
                let align = 1 << rng.below(10);
                match arena.alloc(size as usize, align) {
                    Ok(o) => live.push(o),
                    Err(ArenaError::OutOfMemory { .. }) => {}
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            }
            assert!(matches!(
                arena.alloc(arena.max_alloc() + 1, 16),
                Err(ArenaError::TooLarge { .. })
            ));
            if live.is_empty() || rng.below(400) == 0 {
                for o in live.drain(..) {
                    arena.free(o).unwrap();
                }
                let st = arena.check().unwrap();
                assert_eq!((st.free_blocks, st.allocated_blocks), (1, 0), "seed {seed}");
                let all = arena.alloc(arena.max_alloc(), 16).unwrap();
                arena.free(all).unwrap();
                drained += 1;
            }
        }
        assert!(drained > 0);
    }
}

/// `free` trusts no tag it did not reach from a top block: a tag forged inside a live
/// block's bytes (any peer can write them) does not make its offset freeable.
#[test]
fn a_tag_forged_in_user_bytes_is_not_freeable() {
    let (buf, arena) = arena_with_blocks(64 << 10);
    let big = arena.alloc(4000, 16).unwrap();
    let other = arena.alloc(100, 16).unwrap();
    let before = arena.check().unwrap();
    // Forge "allocated, order 0, at this position" 64 bytes into `big`'s data.
    let forged_block = big.get() + 48; // 64-aligned: `big` is a block start + 16
    let tag = (0xB10Cu64 << 48) | (1 << 40) | (forged_block / 64);
    // SAFETY: inside `big`'s 4000 bytes, which this test owns; base offset 0.
    unsafe {
        buf.ptr
            .as_ptr()
            .add(forged_block as usize)
            .cast::<u64>()
            .write(tag)
    };
    let forged = Offset::new(forged_block + 16);
    assert!(
        matches!(arena.free(forged), Err(ArenaError::BadOffset { .. })),
        "a forged tag was trusted"
    );
    assert_eq!(arena.check().unwrap(), before, "nothing changed");
    arena.free(big).unwrap();
    arena.free(other).unwrap();
    // A stale offset into memory that merged away is a double free, not a new block.
    assert_eq!(
        arena.free(other),
        Err(ArenaError::DoubleFree {
            offset: other.get()
        })
    );
}

/// A walk over many dead holders' blocks frees each in a call of its own: no call outgrows
/// the undo journal, however many blocks a dead consumer held (found by review: one guarded
/// call for all of them overflowed the journal at a few dozen blocks and left them stuck).
#[test]
fn a_walk_frees_any_number_of_dead_holders_blocks() {
    let (_b, arena) = arena_with_blocks(1 << 20);
    let held: Vec<_> = (0..300)
        .map(|i| {
            let o = arena.alloc(50 + i % 700, 16).unwrap();
            arena.hold(o, 7).unwrap();
            o
        })
        .collect();
    assert_eq!(arena.reclaim_dead(|id| id != 7, 1).unwrap(), 300);
    assert_eq!(arena.held_reclaimed(), 300);
    let st = arena.check().unwrap();
    assert_eq!((st.allocated_blocks, st.free_blocks), (0, 1), "{st:?}");
    assert_eq!(
        arena.free(held[0]),
        Err(ArenaError::DoubleFree {
            offset: held[0].get()
        })
    );
}

/// A shift mark forged in user bytes (or left stale) is not where its block's tag says the
/// data starts, so it names no allocation (found by review: the first matching mark was
/// trusted, so an interior offset freed the block).
#[test]
fn a_shift_mark_forged_in_user_bytes_is_not_freeable() {
    let (buf, arena) = arena_with_blocks(64 << 10);
    let off = arena.alloc(400, 64).unwrap();
    let before = arena.check().unwrap();
    // The genuine mark is the word in front of `off`; copy it 64 bytes further in.
    let base = buf.ptr.as_ptr();
    // SAFETY: both words lie inside `off`'s 400 bytes or its header, in the buffer; the
    // arena treats every shared word as untrusted.
    unsafe {
        let mark = base.add(off.get() as usize - 16).cast::<u64>().read();
        base.add(off.get() as usize + 48).cast::<u64>().write(mark);
    }
    let forged = Offset::new(off.get() + 64);
    assert!(
        matches!(arena.free(forged), Err(ArenaError::BadOffset { .. })),
        "a forged shift mark was trusted"
    );
    assert_eq!(arena.check().unwrap(), before, "nothing changed");
    arena.free(off).unwrap();
    assert_eq!(arena.check().unwrap().allocated_blocks, 0);
}
