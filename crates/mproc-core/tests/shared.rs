//! `mproc_core::shared`: the accessor's checks, and `copy_from_shared` against a plain copy
//! and under a concurrent writer.
#![allow(clippy::disallowed_types)]
// core's atomics are what shared memory is made of here.
// `shared_at` does not exist under loom (see the module docs); nothing here is a loom model.
#![cfg(not(mproc_loom))]

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use mproc_core::shared::{SharedLayoutError, SharedState, copy_from_shared, shared_at};

/// A 64-byte, 8-aligned shared region (as `&[AtomicU8]`).
struct Region([AtomicU64; 8]);

impl Region {
    fn new() -> Region {
        Region([const { AtomicU64::new(0) }; 8])
    }

    fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: 64 bytes of atomics owned by `self`, alive as long as the borrow, only
        // accessed atomically; `AtomicU8` has alignment 1.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), 64) }
    }
}

#[repr(C)]
struct Header {
    magic: AtomicU32,
    count: AtomicU32,
    total: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only (valid for any bits), `Sync`, no padding.
unsafe impl SharedState for Header {}

#[test]
fn shared_at_lends_a_type_over_the_same_bytes() {
    let r = Region::new();
    let h: &Header = shared_at(r.bytes(), 16).unwrap();
    h.magic.store(0xABCD, Ordering::Relaxed);
    h.total.store(u64::MAX, Ordering::Relaxed);
    assert_eq!(r.0[2].load(Ordering::Relaxed), 0xABCD);
    assert_eq!(r.0[3].load(Ordering::Relaxed), u64::MAX);
    // The last place a `Header` fits, and arrays of state.
    assert!(shared_at::<Header>(r.bytes(), 48).is_ok());
    let words: &[AtomicU32; 16] = shared_at(r.bytes(), 0).unwrap();
    assert_eq!(words[4].load(Ordering::Relaxed), 0xABCD);
}

#[test]
fn shared_at_refuses_out_of_bounds() {
    let r = Region::new();
    for offset in [49, 56, 64, 65, usize::MAX - 3, usize::MAX] {
        assert_eq!(
            shared_at::<Header>(r.bytes(), offset).map(|_| ()),
            Err(SharedLayoutError::OutOfBounds {
                offset,
                size: 16,
                len: 64
            }),
            "offset {offset}"
        );
    }
    // An empty region holds no `AtomicU8`, but a zero-sized type fits anywhere in it.
    assert!(shared_at::<AtomicU8>(&r.bytes()[..0], 0).is_err());
    assert!(shared_at::<[AtomicU32; 0]>(&r.bytes()[..0], 0).is_ok());
}

#[test]
fn shared_at_refuses_misaligned() {
    let r = Region::new();
    for offset in [1, 2, 4, 12, 44] {
        assert_eq!(
            shared_at::<Header>(r.bytes(), offset).map(|_| ()),
            Err(SharedLayoutError::Misaligned { offset, align: 8 }),
            "offset {offset}"
        );
    }
    // Alignment is of the address, not the offset: a region starting 4 bytes in.
    let shifted = &r.bytes()[4..];
    assert!(matches!(
        shared_at::<AtomicU64>(shifted, 0),
        Err(SharedLayoutError::Misaligned {
            offset: 0,
            align: 8
        })
    ));
    assert!(shared_at::<AtomicU64>(shifted, 4).is_ok());
    assert!(shared_at::<AtomicU32>(shifted, 0).is_ok());
}

#[test]
fn layout_errors_say_what_was_wrong() {
    let e = SharedLayoutError::OutOfBounds {
        offset: 60,
        size: 16,
        len: 64,
    };
    assert_eq!(
        e.to_string(),
        "16 bytes at offset 60 do not fit a region of 64 bytes"
    );
    let e = SharedLayoutError::Misaligned {
        offset: 3,
        align: 8,
    };
    assert_eq!(e.to_string(), "offset 3 is not 8-byte aligned");
}

/// Every source alignment (0..16 bytes into an 8-aligned buffer), every destination
/// alignment (0..8) and every length 0..=200, against `copy_from_slice`.
#[test]
fn copy_from_shared_matches_a_plain_copy_exhaustively() {
    const LEN: usize = 232;
    let words: Vec<AtomicU64> = (0..LEN / 8).map(|_| AtomicU64::new(0)).collect();
    // SAFETY: LEN bytes of atomics, alive while `words` is; `AtomicU8` has alignment 1.
    let src: &[AtomicU8] = unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), LEN) };
    let mut plain = [0u8; LEN];
    for (i, (s, p)) in src.iter().zip(&mut plain).enumerate() {
        let v = (i as u8).wrapping_mul(31).wrapping_add(7);
        s.store(v, Ordering::Relaxed);
        *p = v;
    }
    let mut out = [0u8; LEN];
    for from in 0..16 {
        for to in 0..8 {
            for len in 0..=200 {
                out.fill(0xEE);
                copy_from_shared(&mut out[to..to + len], &src[from..from + len]);
                assert_eq!(
                    out[to..to + len],
                    plain[from..from + len],
                    "from {from} to {to} len {len}"
                );
                // Nothing outside the destination was touched.
                assert!(out[..to].iter().all(|&b| b == 0xEE));
                assert!(out[to + len..].iter().all(|&b| b == 0xEE));
            }
        }
    }
}

/// A writer flips every byte between two values that depend on its place while a reader
/// copies: each copied byte is one of its place's two values (the copy may mix old and new
/// bytes, but never invents one or takes it from the wrong place).
#[test]
fn copy_from_shared_under_a_concurrent_writer_yields_written_bytes() {
    const ROUNDS: usize = 20_000;
    const FROM: usize = 3;
    let r = Region::new();
    for (i, b) in r.bytes().iter().enumerate() {
        // Relaxed: before the threads start.
        b.store(i as u8, Ordering::Relaxed);
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut flip = 0u8;
            while !done.load(Ordering::Relaxed) {
                flip = !flip;
                for (i, b) in r.bytes().iter().enumerate() {
                    // Relaxed: the test checks values, not order.
                    b.store(i as u8 ^ flip, Ordering::Relaxed);
                }
            }
        });
        // Stops the writer however this thread leaves (a failed assertion included), so a
        // failure fails the test instead of hanging it.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                // Relaxed: only stops the loop.
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&done);
        let mut out = [0u8; 64 - FROM];
        for _ in 0..ROUNDS {
            copy_from_shared(&mut out, &r.bytes()[FROM..]);
            for (k, &b) in out.iter().enumerate() {
                let i = (FROM + k) as u8;
                assert!(b == i || b == !i, "byte {k}: {b:#x} in {out:?}");
            }
        }
    });
}
