//! Record ring: smoke, padding at the wrap, fragments, limits, model-based property tests,
//! corruption handling, threads.
#![cfg(not(mproc_loom))]
#![allow(unsafe_code)]

mod common;

use std::collections::VecDeque;

use common::{id, scaled};
use mproc_ring::{ReadError, RecordRing, RecordShape, WriteError};
use proptest::prelude::*;

fn ring(capacity: u32) -> RecordRing {
    RecordRing::new(RecordShape { capacity }).unwrap()
}

#[test]
fn smoke_and_limits() {
    let r = ring(64);
    assert_eq!(r.max_record_len(), 24);
    let mut w = r.claim_writer(id(1)).unwrap();
    let mut rd = r.claim_reader(id(2)).unwrap();
    assert!(matches!(rd.try_read(), Err(ReadError::Empty)));
    w.try_write(b"hello").unwrap();
    w.try_write(b"").unwrap();
    assert_eq!(
        w.try_write(&[0; 25]),
        Err(WriteError::TooLarge { len: 25, max: 24 })
    );
    assert_eq!(rd.try_read().unwrap().bytes(), b"hello");
    assert_eq!(rd.try_read().unwrap().bytes(), b"");
    assert!(r.is_empty());
}

#[test]
fn padding_at_wrap() {
    let r = ring(32); // 4 units; max record 8 bytes (2 units)
    let mut w = r.claim_writer(id(1)).unwrap();
    let mut rd = r.claim_reader(id(2)).unwrap();
    w.try_write(b"abc").unwrap(); // units 0..2
    assert_eq!(rd.try_read().unwrap().bytes(), b"abc");
    w.try_write(b"1").unwrap(); // units 2..4
    // Next record needs 2 units at offset 0; tail is at the end: no padding, wraps exactly.
    w.try_write(b"22").unwrap(); // units 0..2 (after the wrap)
    assert_eq!(w.try_write(b"x"), Err(WriteError::Full));
    assert_eq!(rd.try_read().unwrap().bytes(), b"1");
    w.try_write(b"").unwrap(); // 1 unit at 2
    // One unit left before the end: a 2-unit record needs padding (1) + 2 units = 3 free.
    assert_eq!(w.try_write(b"pad!"), Err(WriteError::Full));
    assert_eq!(rd.try_read().unwrap().bytes(), b"22");
    w.try_write(b"pad!").unwrap(); // pad at 3, record at 0..2
    assert_eq!(rd.try_read().unwrap().bytes(), b"");
    assert_eq!(rd.try_read().unwrap().bytes(), b"pad!");
    assert!(matches!(rd.try_read(), Err(ReadError::Empty)));
}

#[test]
fn fragments_and_reserve() {
    let r = ring(128);
    let mut w = r.claim_writer(id(1)).unwrap();
    let mut rd = r.claim_reader(id(2)).unwrap();
    w.try_write_fragment(b"part1", true).unwrap();
    let mut res = w.reserve(40).unwrap();
    res.bytes_mut()[..5].copy_from_slice(b"part2");
    res.commit_len(5, false);
    let mut out = Vec::new();
    assert!(rd.try_read_into(&mut out).unwrap());
    assert_eq!(out, b"part1");
    assert!(!rd.try_read_into(&mut out).unwrap());
    assert_eq!(out, b"part2");
    // A dropped reservation publishes nothing.
    let _ = w.reserve(8).unwrap();
    assert!(matches!(rd.try_read(), Err(ReadError::Empty)));
}

#[test]
fn corrupt_header_drops_published_bytes() {
    let (mem, r) = common::in_place_record(64);
    let mut w = r.claim_writer(id(1)).unwrap();
    let mut rd = r.claim_reader(id(2)).unwrap();
    w.try_write(b"ok").unwrap();
    w.try_write(b"bad").unwrap();
    assert_eq!(rd.try_read().unwrap().bytes(), b"ok");
    // The second record's header is at data offset 16; data starts at 384.
    // SAFETY: in bounds; the ring tolerates arbitrary data bytes.
    unsafe { mem.ptr.as_ptr().add(384 + 16).cast::<u32>().write(1000) };
    assert!(matches!(rd.try_read(), Err(ReadError::Corrupt)));
    assert_eq!(r.corrupt_count(), 1);
    w.try_write(b"after").unwrap();
    assert_eq!(rd.try_read().unwrap().bytes(), b"after");
    // SAFETY: as above; attach sees the same ring.
    let again = unsafe { RecordRing::attach(mem.ptr, mem.len) }.unwrap();
    assert_eq!(again.capacity(), 64);
}

proptest! {
    /// The model tracks the ring's exact unit accounting (8-byte units, padding at the wrap),
    /// so `Full` is checked to happen exactly when the record does not fit.
    #[test]
    fn model(cap_log in 5u32..8, ops in prop::collection::vec(prop::option::of(0usize..64), 0..300)) {
        let cap = 1u32 << cap_log;
        let units = u64::from(cap / 8);
        let r = ring(cap);
        let max = r.max_record_len();
        let mut w = r.claim_writer(id(1)).unwrap();
        let mut rd = r.claim_reader(id(2)).unwrap();
        // (bytes, units taken including padding before it)
        let mut model: VecDeque<(Vec<u8>, u64)> = VecDeque::new();
        let (mut head, mut tail) = (0u64, 0u64);
        let mut k = 0u8;
        for op in ops {
            match op {
                Some(len) => {
                    k = k.wrapping_add(1);
                    let v = vec![k; len];
                    let need = 1 + len.div_ceil(8) as u64;
                    let to_end = units - tail % units;
                    let taken = if need <= to_end { need } else { to_end + need };
                    let res = w.try_write(&v);
                    if len > max {
                        prop_assert_eq!(res, Err(WriteError::TooLarge { len, max }));
                    } else if tail - head + taken > units {
                        prop_assert_eq!(res, Err(WriteError::Full));
                    } else {
                        prop_assert_eq!(res, Ok(()));
                        tail += taken;
                        model.push_back((v, taken));
                    }
                }
                None => match model.pop_front() {
                    Some((v, taken)) => {
                        let rec = rd.try_read().unwrap();
                        prop_assert_eq!(rec.bytes(), &v[..]);
                        head += taken;
                    }
                    None => prop_assert!(matches!(rd.try_read(), Err(ReadError::Empty))),
                },
            }
            prop_assert_eq!(u64::from(r.len_bytes()), (tail - head) * 8);
        }
        while let Some((v, _)) = model.pop_front() {
            let rec = rd.try_read().unwrap();
            prop_assert_eq!(rec.bytes(), &v[..]);
        }
        // An empty ring accepts the largest record wherever its indices are.
        prop_assert!(w.try_write(&vec![1; max]).is_ok());
    }
}

#[test]
fn threads_stress() {
    let n = scaled(200_000);
    let r = ring(1024);
    let mut w = r.claim_writer(id(1)).unwrap();
    let mut rd = r.claim_reader(id(2)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let t = std::thread::spawn(move || {
        let mut msg = Vec::new();
        for i in 0..n {
            common::make_msg(1, i, 16 + (i % 300) as usize, &mut msg);
            common::spin_until_ok(
                deadline,
                |e| matches!(e, WriteError::Full),
                || w.try_write(&msg),
            );
        }
    });
    let mut expect = 0u64;
    while expect < n {
        match rd.try_read() {
            Ok(rec) => {
                let (_, seq) = common::check_msg(rec.bytes());
                assert_eq!(seq, expect);
                expect += 1;
            }
            Err(ReadError::Empty) => {
                assert!(std::time::Instant::now() < deadline);
                std::hint::spin_loop();
            }
            Err(e) => panic!("{e}"),
        }
    }
    t.join().unwrap();
}
