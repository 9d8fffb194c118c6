//! Loom models of the SPSC ring (wrap-around at capacity 2) and the record ring (padding at
//! the wrap). Run: `RUSTFLAGS="--cfg mproc_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! mproc-ring --release --test 'loom_*'`. Each model asserts that every outcome arm was
//! reached (`Arms`, mproc-futex's `tests/common/arms.rs`).

// Shared with mproc-futex and mproc-shm: three independent crates and no test-utility
// crate, so one file included by path keeps one behaviour.
#[cfg(mproc_loom)]
#[path = "../../mproc-futex/tests/common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod common;

#[cfg(mproc_loom)]
mod tests {
    use loom::thread;
    use mproc_ring::{
        PopError, PushError, ReadError, RecordRing, RecordShape, SpscRing, SpscShape, WriteError,
    };

    use crate::arms::Arms;
    use crate::common::id;

    #[test]
    fn spsc_wraps_at_capacity_two() {
        static ARMS: Arms<2> = Arms::new(
            "spsc_wraps_at_capacity_two",
            ["a push saw Full", "a pop saw Empty"],
        );
        ARMS.model(|| {
            let r = SpscRing::new(SpscShape {
                capacity: 2,
                slot_size: 1,
            })
            .unwrap();
            let mut p = r.claim_producer(id(1)).unwrap();
            let mut c = r.claim_consumer(id(2)).unwrap();
            let t = thread::spawn(move || {
                let mut i = 0u8;
                while i < 3 {
                    match p.push(&[i]) {
                        Ok(()) => i += 1,
                        Err(PushError::Full) => {
                            ARMS.hit("a push saw Full");
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
            let mut out = [0u8];
            let mut next = 0u8;
            while next < 3 {
                match c.pop(&mut out) {
                    Ok(()) => {
                        assert_eq!(out[0], next);
                        next += 1;
                    }
                    Err(PopError::Empty) => {
                        ARMS.hit("a pop saw Empty");
                        thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
                assert!(r.len() <= 2);
            }
            t.join().unwrap();
        });
    }

    #[test]
    fn record_ring_pads_at_the_wrap() {
        static ARMS: Arms<2> = Arms::new(
            "record_ring_pads_at_the_wrap",
            ["a write saw Full", "a read saw Empty"],
        );
        ARMS.model(|| {
            // 4 units of 8 bytes; records: 1 unit, 2 units, then 2 units that need 1 unit of
            // padding at the end before wrapping to offset 0.
            let r = RecordRing::new(RecordShape { capacity: 32 }).unwrap();
            let mut w = r.claim_writer(id(1)).unwrap();
            let mut rd = r.claim_reader(id(2)).unwrap();
            let msgs: [&[u8]; 3] = [b"", b"abcdefgh", b"12345678"];
            let t = thread::spawn(move || {
                let mut i = 0;
                while i < msgs.len() {
                    match w.try_write(msgs[i]) {
                        Ok(()) => i += 1,
                        Err(WriteError::Full) => {
                            ARMS.hit("a write saw Full");
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
            let mut i = 0;
            while i < msgs.len() {
                match rd.try_read() {
                    Ok(rec) => {
                        assert_eq!(rec.bytes(), msgs[i]);
                        i += 1;
                    }
                    Err(ReadError::Empty) => {
                        ARMS.hit("a read saw Empty");
                        thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            t.join().unwrap();
        });
    }
}
