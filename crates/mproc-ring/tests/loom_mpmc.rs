//! Loom models of the MPMC ring: 2 producers / 1 consumer and 1 / 2 at the full and empty
//! boundaries, and recovery racing with a participant declared dead mid-claim.

#[cfg(mproc_loom)]
mod tests {
    use loom::thread;
    use mproc_ring::{MpmcRing, MpmcShape, ParticipantId, TryPopError, TryPushError};

    fn id(n: u32) -> ParticipantId {
        ParticipantId::new(n).unwrap()
    }

    fn ring(capacity: u32) -> MpmcRing {
        MpmcRing::new(MpmcShape {
            capacity,
            slot_size: 2,
        })
        .unwrap()
    }

    fn push_until_ok(r: &MpmcRing, me: ParticipantId, v: &[u8]) {
        loop {
            match r.try_push(me, v) {
                Ok(()) => return,
                Err(TryPushError::Full) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Drains what is left after the threads joined (single-threaded, so exact).
    fn drain(r: &MpmcRing) -> Vec<u8> {
        let mut got = Vec::new();
        while let Ok(v) = r.try_pop_vec(id(20)) {
            got.push(v[0]);
        }
        got
    }

    /// Capacity 1, two producers racing one consumer: each push either lands or says `Full`
    /// (only when the slot really holds the other message); nothing is lost or duplicated.
    #[test]
    fn two_producers_one_consumer_at_full() {
        loom::model(|| {
            let r = ring(1);
            let hs: Vec<_> = (1..=2u8)
                .map(|p| {
                    let r = r.clone();
                    thread::spawn(move || match r.try_push(id(u32::from(p)), &[p]) {
                        Ok(()) => Some(p),
                        Err(TryPushError::Full) => None,
                        Err(e) => panic!("{e}"),
                    })
                })
                .collect();
            let mut got = Vec::new();
            match r.try_pop_vec(id(9)) {
                Ok(v) => got.push(v[0]),
                Err(TryPopError::Empty) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(r.len() <= 1);
            let pushed: Vec<u8> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
            assert!(!pushed.is_empty(), "with one slot, at least one push lands");
            got.extend(drain(&r));
            got.sort();
            assert_eq!(got, pushed);
        });
    }

    /// Capacity 2, one producer pushing two messages (the second may find the first still
    /// there or already taken) and two consumers racing at the empty boundary.
    #[test]
    fn one_producer_two_consumers_at_empty() {
        loom::model(|| {
            let r = ring(2);
            let hs: Vec<_> = (0..2u32)
                .map(|c| {
                    let r = r.clone();
                    thread::spawn(move || match r.try_pop_vec(id(10 + c)) {
                        Ok(v) => Some(v[0]),
                        Err(TryPopError::Empty) => None,
                        Err(e) => panic!("{e}"),
                    })
                })
                .collect();
            r.try_push(id(1), &[1]).unwrap();
            r.try_push(id(1), &[2]).unwrap();
            let mut got: Vec<u8> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
            if got == [2] {
                panic!("message 2 taken while message 1 was left behind");
            }
            got.extend(drain(&r));
            got.sort();
            assert_eq!(got, [1, 2]);
            assert!(r.is_empty());
        });
    }

    #[test]
    fn recovery_of_a_writer_declared_dead() {
        loom::model(|| {
            let r = ring(2);
            let dead = id(5);
            let r2 = r.clone();
            // The "dead" writer: recovery may resolve its slot while it is mid-claim.
            let w = thread::spawn(move || r2.try_push(dead, b"d"));
            let r3 = r.clone();
            let rec = thread::spawn(move || r3.recover(|p| p != 5).tombstoned);
            push_until_ok(&r, id(1), b"l"); // capacity 2: at most one other message
            let res = w.join().unwrap();
            let tombstoned = rec.join().unwrap();
            assert_eq!(u64::from(tombstoned), r.lost_writes());
            let mut got = Vec::new();
            while let Ok(v) = r.try_pop_vec(id(9)) {
                got.push(v);
            }
            match res {
                Ok(()) => {
                    assert_eq!(tombstoned, 0);
                    assert!(got.contains(&b"d".to_vec()));
                }
                Err(TryPushError::Recovered) => {
                    assert_eq!(tombstoned, 1);
                    assert!(!got.contains(&b"d".to_vec()));
                }
                Err(TryPushError::Full) => {}
                Err(e) => panic!("{e}"),
            }
            // The live producer's message is never lost.
            assert!(got.contains(&b"l".to_vec()));
            assert!(r.is_empty());
        });
    }

    #[test]
    fn recovery_of_a_reader_declared_dead() {
        loom::model(|| {
            let r = ring(1);
            r.try_push(id(1), b"m").unwrap();
            let r2 = r.clone();
            let reader = thread::spawn(move || r2.try_pop_vec(id(6)));
            let freed = r.recover(|p| p != 6).freed;
            let res = reader.join().unwrap();
            assert_eq!(u64::from(freed), r.lost_reads());
            match res {
                Ok(v) => {
                    assert_eq!(v, b"m");
                    assert_eq!(freed, 0);
                }
                Err(TryPopError::Recovered) => assert_eq!(freed, 1),
                Err(e) => panic!("{e}"),
            }
            // Either way the slot is free again: a push succeeds and no message remains.
            r.try_push(id(1), b"n").unwrap();
            assert_eq!(r.try_pop_vec(id(2)).unwrap(), b"n");
        });
    }
}
