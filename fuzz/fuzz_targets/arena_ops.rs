//! Attacks the arena: arbitrary alloc/free sequences (including bogus offsets) against an
//! exact model, plus occasional byte scribbles over the arena's memory, as a corrupt peer
//! would make. Without scribbles every result must match the model and `check()` must pass;
//! with them, calls may fail but must never panic, hang, or touch memory outside the arena.
#![no_main]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::HashMap;
use std::ptr::NonNull;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mproc_shm::{Arena, ArenaError, Offset};

const LEN: usize = 32 * 1024;

#[derive(Arbitrary, Debug)]
enum Op {
    Alloc { size: u16, align_shift: u8 },
    Free { pick: u8 },
    FreeRaw { offset: u32 },
    Scribble { at: u16, byte: u8 },
    Check,
}

fn class_bytes(size: usize, align: usize) -> u64 {
    let size = size.max(1);
    let need = if align <= 16 {
        size as u64 + 16
    } else if align <= 64 {
        (size + align) as u64
    } else {
        (size + align + 16) as u64
    };
    need.max(64).next_power_of_two()
}

fuzz_target!(|ops: Vec<Op>| {
    let layout = Layout::from_size_align(LEN, 4096).unwrap();
    // SAFETY: nonzero size.
    let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("oom");
    // SAFETY: zeroed, valid for LEN bytes until the dealloc below, after the arena is gone.
    let arena = unsafe { Arena::init_raw(mem, LEN as u64, 0) }.expect("init");
    let first = LEN as u64 - arena.capacity();
    let mut bump = first;
    let mut free: HashMap<u64, u64> = HashMap::new();
    let mut live: Vec<(Offset<u8>, usize, u64, u8)> = Vec::new();
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
                let class = class_bytes(size, align);
                let from_list = free.get(&class).copied().unwrap_or(0) > 0;
                let expect_ok = from_list || LEN as u64 - bump >= class;
                match result {
                    Ok(o) => {
                        // Writing into what the arena handed out must stay inside it.
                        let p = arena.ptr(o, size).expect("alloc returned an out-of-bounds block");
                        let byte = n as u8 | 1;
                        // SAFETY: `ptr` checked that `size` bytes at `p` lie in the buffer.
                        unsafe { p.as_ptr().write_bytes(byte, size) };
                        if !scribbled {
                            assert!(expect_ok, "model predicted OOM");
                            assert_eq!(p.as_ptr() as usize % align, 0);
                            if from_list {
                                *free.get_mut(&class).unwrap() -= 1;
                            } else {
                                bump += class;
                            }
                        }
                        live.push((o, size, class, byte));
                    }
                    Err(e) => assert!(
                        scribbled || (!expect_ok && matches!(e, ArenaError::OutOfMemory { .. })),
                        "unexpected {e:?}"
                    ),
                }
            }
            Op::Free { pick } if !live.is_empty() => {
                let (o, size, class, byte) = live.swap_remove(usize::from(pick) % live.len());
                if !scribbled {
                    let p = arena.ptr(o, size).unwrap();
                    // SAFETY: a live block of `size` bytes inside the buffer.
                    let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
                    assert!(s.iter().all(|&b| b == byte), "block overwritten");
                    arena.free(o).expect("free");
                    *free.entry(class).or_default() += 1;
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
                // SAFETY: `at < LEN`, inside the buffer.
                unsafe { mem.as_ptr().add(at).write(byte) };
                scribbled = true;
            }
            Op::Check => {
                let r = arena.check();
                if !scribbled {
                    let st = r.expect("check");
                    assert_eq!(st.allocated_blocks, live.len() as u64);
                    assert_eq!(st.free_blocks, free.values().sum::<u64>());
                    assert_eq!(st.carved, bump - first);
                }
            }
        }
    }
    drop(arena);
    // SAFETY: allocated above with this layout; the arena is gone.
    unsafe { dealloc(mem.as_ptr(), layout) };
});
