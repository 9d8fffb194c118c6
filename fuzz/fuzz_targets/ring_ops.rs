//! Arbitrary operation sequences on the SPSC, record and MPMC rings, replayed against a
//! `VecDeque` model: every result must match the model exactly.
#![no_main]

use std::collections::VecDeque;
use std::fmt::Debug;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mproc_ring::{
    MpmcRing, MpmcShape, ParticipantId, PopError, PushError, ReadError, RecordRing, RecordShape,
    SpscRing, SpscShape, TryPopError, TryPushError, WriteError,
};

#[derive(Debug, Arbitrary)]
enum Op {
    Push(Vec<u8>),
    Pop,
    PushSlice(u8),
    PopSlice(u8),
    Cancel,
    Recover,
}

#[derive(Debug, Arbitrary)]
struct Input {
    kind: u8,
    cap_log: u8,
    slot: u8,
    ops: Vec<Op>,
}

fn id(n: u32) -> ParticipantId {
    ParticipantId::new(n).unwrap()
}

/// Checks a push's result against the model's prediction: refused as too large (the error
/// `too_large` recognises) unless it `fits`, else `full` if the ring `is_full`, else `Ok`.
/// Returns whether it was accepted (the caller records it in the model).
fn expect_push<E: PartialEq + Debug>(
    res: Result<(), E>,
    fits: bool,
    is_full: bool,
    too_large: fn(&E) -> bool,
    full: E,
) -> bool {
    if !fits {
        assert!(matches!(&res, Err(e) if too_large(e)), "{res:?}");
        false
    } else if is_full {
        assert_eq!(res, Err(full));
        false
    } else {
        res.unwrap();
        true
    }
}

fn spsc(cap: u32, slot: u32, ops: &[Op]) {
    let r = SpscRing::new(SpscShape { capacity: cap, slot_size: slot }).unwrap();
    let mut p = r.claim_producer(id(1)).unwrap();
    let mut c = r.claim_consumer(id(2)).unwrap();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let s = slot as usize;
    for op in ops {
        match op {
            Op::Push(v) => {
                let res = p.push(v);
                let wrong_length = |e: &PushError| matches!(e, PushError::WrongLength { .. });
                let full = model.len() == cap as usize;
                if expect_push(res, v.len() == s, full, wrong_length, PushError::Full) {
                    model.push_back(v.clone());
                }
            }
            Op::PushSlice(n) => {
                let bytes: Vec<u8> = (0..*n as usize * s).map(|i| i as u8).collect();
                let k = p.push_slice(&bytes).unwrap() as usize;
                assert_eq!(k, (*n as usize).min(cap as usize - model.len()));
                for e in bytes.chunks(s).take(k) {
                    model.push_back(e.to_vec());
                }
            }
            Op::Pop | Op::Cancel | Op::Recover => {
                let mut out = vec![0; s];
                match model.pop_front() {
                    Some(v) => {
                        c.pop(&mut out).unwrap();
                        assert_eq!(out, v);
                    }
                    None => assert_eq!(c.pop(&mut out), Err(PopError::Empty)),
                }
            }
            Op::PopSlice(n) => {
                let mut out = vec![0; *n as usize * s];
                let k = c.pop_slice(&mut out).unwrap() as usize;
                assert_eq!(k, (*n as usize).min(model.len()));
                for e in out.chunks(s).take(k) {
                    assert_eq!(e, &model.pop_front().unwrap()[..]);
                }
            }
        }
        assert_eq!(r.len() as usize, model.len());
    }
}

fn record(cap: u32, ops: &[Op]) {
    let r = RecordRing::new(RecordShape { capacity: cap }).unwrap();
    let max = r.max_record_len();
    let units = u64::from(cap / 8);
    let mut w = r.claim_writer(id(1)).unwrap();
    let mut rd = r.claim_reader(id(2)).unwrap();
    let mut model: VecDeque<(Vec<u8>, bool, u64)> = VecDeque::new();
    let (mut head, mut tail) = (0u64, 0u64);
    for op in ops {
        let (v, more) = match op {
            Op::Push(v) => (v.clone(), false),
            Op::PushSlice(n) => (vec![*n; *n as usize], true),
            Op::Cancel => {
                // A dropped reservation publishes nothing.
                let _ = w.reserve(0);
                continue;
            }
            _ => {
                match model.pop_front() {
                    Some((v, more, taken)) => {
                        let rec = rd.try_read().unwrap();
                        assert_eq!(rec.bytes(), &v[..]);
                        assert_eq!(rec.more_follows(), more);
                        head += taken;
                    }
                    None => assert!(matches!(rd.try_read(), Err(ReadError::Empty))),
                }
                continue;
            }
        };
        let need = 1 + v.len().div_ceil(8) as u64;
        let to_end = units - tail % units;
        let taken = if need <= to_end { need } else { to_end + need };
        let res = w.try_write_fragment(&v, more);
        let too_large = |e: &WriteError| matches!(e, WriteError::TooLarge { .. });
        let full = tail - head + taken > units;
        if expect_push(res, v.len() <= max, full, too_large, WriteError::Full) {
            tail += taken;
            model.push_back((v, more, taken));
        }
        assert_eq!(u64::from(r.len_bytes()), (tail - head) * 8);
    }
}

fn mpmc(cap: u32, slot: u32, ops: &[Op]) {
    let r = MpmcRing::new(MpmcShape { capacity: cap, slot_size: slot }).unwrap();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    for op in ops {
        match op {
            Op::Push(v) => {
                let res = r.try_push(id(1), v);
                let too_large = |e: &TryPushError| matches!(e, TryPushError::TooLarge { .. });
                let fits = v.len() <= slot as usize;
                let full = model.len() == cap as usize;
                if expect_push(res, fits, full, too_large, TryPushError::Full) {
                    model.push_back(v.clone());
                }
            }
            Op::Cancel => {
                // A cancelled push leaves a tombstone that takes a slot until skipped; the
                // model cannot see it, so only run it when the ring is empty and drain it.
                if model.is_empty() {
                    let res = r.try_push_with(id(1), |_| None);
                    assert_eq!(res, Err(TryPushError::Cancelled));
                    assert_eq!(r.try_pop_vec(id(2)), Err(TryPopError::Empty));
                }
            }
            Op::Recover => {
                // Nobody is mid-claim in a single thread: recovery must change nothing.
                assert_eq!(r.recover(|_| false), Default::default());
            }
            Op::Pop | Op::PopSlice(_) | Op::PushSlice(_) => match model.pop_front() {
                Some(v) => assert_eq!(r.try_pop_vec(id(2)).unwrap(), v),
                None => assert_eq!(r.try_pop_vec(id(2)), Err(TryPopError::Empty)),
            },
        }
        assert_eq!(r.len() as usize, model.len());
    }
}

fuzz_target!(|input: Input| {
    let ops = &input.ops[..input.ops.len().min(512)];
    match input.kind % 3 {
        0 => spsc(1 << (input.cap_log % 6), u32::from(input.slot % 16) + 1, ops),
        1 => record(32 << (input.cap_log % 5), ops),
        // Any MPMC capacity (exact, not only powers of two).
        _ => mpmc(u32::from(input.cap_log % 40) + 1, u32::from(input.slot % 16) + 1, ops),
    }
});
