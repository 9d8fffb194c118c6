//! Loom models of the MPMC ring: 2 producers / 1 consumer and 1 / 2 at the full and empty
//! boundaries; recovery racing with a writer and with a reader declared dead mid-claim; and a
//! producer and a consumer killed between their claim CAS and their help of the tail or head
//! (through the test-only fault hook), which must stall nobody; and a consumer that only
//! polls, recovering a killed producer's claim it is stuck on (`stuck_claim` +
//! `recover_claim`) while a live producer commits behind it; and the stall detector's look
//! (`unclaimed_head`), which must never fire in a valid execution, whichever claim, help and
//! commit of two producers it falls between.
//!
//! Every model counts its outcome arms and fails unless each was reached (`Arms`,
//! mproc-futex's `tests/common/arms.rs`).

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
    use mproc_ring::fault::{FaultPoint, kill};
    use mproc_ring::{MpmcRing, TryPopError, TryPushError};

    use crate::arms::Arms;
    use crate::common::{drain, expect_killed, id, mpmc, spawn_on};

    /// 2-byte slots: the models' messages are 1 byte, and every slot byte is work for loom.
    fn ring(capacity: u32) -> MpmcRing {
        mpmc(capacity, 2)
    }

    /// Producers 1 and 2 each push their id as a 1-byte message, racing: `Some(id)` if it
    /// landed, `None` (arm "a push saw Full") if the ring was full.
    fn spawn_two_pushers<const N: usize>(
        r: &MpmcRing,
        arms: &'static Arms<N>,
    ) -> Vec<thread::JoinHandle<Option<u8>>> {
        (1..=2u8)
            .map(|p| {
                spawn_on(r, move |r| match r.try_push(id(u32::from(p)), &[p]) {
                    Ok(()) => Some(p),
                    Err(TryPushError::Full) => {
                        arms.hit("a push saw Full");
                        None
                    }
                    Err(e) => panic!("{e}"),
                })
            })
            .collect()
    }

    /// Recovers once while the killed claimant's thread may still be on its way to the claim
    /// (`arms` records which came first), then again once it ended: across the two, the dead
    /// claim is resolved (`resolved` counts it) exactly once.
    fn recover_around_the_death(
        arms: &Arms<4>,
        dead: thread::JoinHandle<()>,
        resolved: impl Fn() -> u32,
    ) {
        let first = resolved();
        arms.either(
            first == 1,
            "the racing recovery found the dead claim",
            "the dead claim came after the racing recovery",
        );
        dead.join().unwrap();
        assert_eq!(first + resolved(), 1);
    }

    /// One more full lap, single-threaded: every slot word was left at the right lap (a
    /// word one lap off makes a push or pop here fail).
    fn full_lap_works(r: &MpmcRing) {
        for i in 0..r.capacity() as u8 {
            r.try_push(id(21), &[i]).unwrap();
        }
        assert_eq!(r.try_push(id(21), b"x"), Err(TryPushError::Full));
        for i in 0..r.capacity() as u8 {
            assert_eq!(r.try_pop_vec(id(22)).unwrap(), [i]);
        }
        assert!(r.is_empty());
    }

    /// Capacity 1, two producers racing one consumer: each push either lands or says `Full`
    /// (only when the slot really holds the other message); nothing is lost or duplicated.
    #[test]
    fn two_producers_one_consumer_at_full() {
        static ARMS: Arms<3> = Arms::new(
            "two_producers_one_consumer_at_full",
            [
                "a push saw Full",
                "the consumer took one",
                "the consumer saw Empty",
            ],
        );
        ARMS.model(|| {
            let r = ring(1);
            let hs = spawn_two_pushers(&r, &ARMS);
            let mut got = Vec::new();
            let c = spawn_on(&r, |r| r.try_pop_vec(id(9)));
            match c.join().unwrap() {
                Ok(v) => {
                    ARMS.hit("the consumer took one");
                    got.push(v[0]);
                }
                Err(TryPopError::Empty) => ARMS.hit("the consumer saw Empty"),
                Err(e) => panic!("{e}"),
            }
            assert!(r.len() <= 1);
            let pushed: Vec<u8> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
            assert!(!pushed.is_empty(), "with one slot, at least one push lands");
            got.extend(drain(&r).into_iter().map(|v| v[0]));
            got.sort();
            assert_eq!(got, pushed);
        });
    }

    /// Capacity 3 (not a power of two: one lap is 4 positions), two messages in, two
    /// producers racing for the last slot (position 2, after which the tail jumps to the next
    /// lap, position 4) while the consumer takes the oldest and frees slot 0 for position 4
    /// (`EMPTY(0 + one_lap)`). Each push lands or says `Full` (only while the ring really
    /// holds 3); with the consumer first, both land, the second on the next lap; FIFO holds.
    #[test]
    fn two_producers_one_consumer_at_full_capacity_three() {
        static ARMS: Arms<2> = Arms::new(
            "two_producers_one_consumer_at_full_capacity_three",
            ["a push saw Full", "both pushes landed, one on the next lap"],
        );
        ARMS.model(|| {
            let r = ring(3);
            r.try_push(id(3), &[10]).unwrap();
            r.try_push(id(3), &[11]).unwrap();
            let hs = spawn_two_pushers(&r, &ARMS);
            let c = spawn_on(&r, |r| r.try_pop_vec(id(9)));
            assert_eq!(c.join().unwrap(), Ok(vec![10]), "the oldest first");
            let pushed: Vec<u8> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
            assert!(
                !pushed.is_empty(),
                "one slot was free: at least one push lands"
            );
            if pushed.len() == 2 {
                ARMS.hit("both pushes landed, one on the next lap");
            }
            assert_eq!(r.len(), 1 + pushed.len() as u32);
            assert_eq!(r.is_full(), pushed.len() == 2);
            let rest: Vec<u8> = drain(&r).into_iter().map(|v| v[0]).collect();
            assert_eq!(rest[0], 11, "FIFO");
            let mut tail = rest[1..].to_vec();
            tail.sort();
            assert_eq!(tail, pushed);
            full_lap_works(&r);
        });
    }

    /// Capacity 2, one producer pushing two messages (the second may find the first still
    /// there or already taken) and two consumers racing at the empty boundary.
    #[test]
    fn one_producer_two_consumers_at_empty() {
        static ARMS: Arms<3> = Arms::new(
            "one_producer_two_consumers_at_empty",
            [
                "both consumers took one",
                "one took, one saw Empty",
                "both saw Empty",
            ],
        );
        ARMS.model(|| {
            let r = ring(2);
            let hs: Vec<_> = (0..2u32)
                .map(|c| {
                    spawn_on(&r, move |r| match r.try_pop_vec(id(10 + c)) {
                        Ok(v) => Some(v[0]),
                        Err(TryPopError::Empty) => None,
                        Err(e) => panic!("{e}"),
                    })
                })
                .collect();
            r.try_push(id(1), &[1]).unwrap();
            r.try_push(id(1), &[2]).unwrap();
            let mut got: Vec<u8> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
            ARMS.hit(match got.len() {
                2 => "both consumers took one",
                1 => "one took, one saw Empty",
                _ => "both saw Empty",
            });
            if got == [2] {
                panic!("message 2 taken while message 1 was left behind");
            }
            got.extend(drain(&r).into_iter().map(|v| v[0]));
            got.sort();
            assert_eq!(got, [1, 2]);
            assert!(r.is_empty());
        });
    }

    /// The stall detector's look (`mproc_ring::mpmc`, "Corruption", invariant 4) races two
    /// producers and a consumer: `unclaimed_head` never reports a stall, whether it sees the
    /// ring empty, a claim in progress, a message, or the head moved on. Fails (checked) when
    /// `unclaimed_head` takes any `EMPTY` word for a stall, not only one of the head's own
    /// position: a consumer that has read the head slot (`EMPTY` for the next lap) and not
    /// yet helped the head forward is not a stall.
    #[test]
    fn the_stall_detector_never_fires_on_a_valid_ring() {
        static ARMS: Arms<2> = Arms::new(
            "the_stall_detector_never_fires_on_a_valid_ring",
            ["the look saw items queued", "the look saw none"],
        );
        ARMS.model(|| {
            let r = ring(2);
            let producers: Vec<_> = (0..2u8)
                .map(|p| spawn_on(&r, move |r| r.try_push(id(1 + u32::from(p)), &[p]).unwrap()))
                .collect();
            let consumer = spawn_on(&r, |r| {
                let _ = r.try_pop_vec(id(10));
            });
            // The look in a thread of its own (loom 0.7's DPOR explores a thread spawned
            // after the model's own loads too narrowly, tokio-rs/loom#392).
            let look = spawn_on(&r, |r| (r.unclaimed_head(), !r.is_empty()));
            let (stall, queued) = look.join().unwrap();
            assert_eq!(stall, None, "a stall reported on a valid ring");
            ARMS.either(queued, "the look saw items queued", "the look saw none");
            for h in producers {
                h.join().unwrap();
            }
            consumer.join().unwrap();
            assert_eq!(r.unclaimed_head(), None);
        });
    }

    /// A writer declared dead (id 5, alive in fact) races recovery and a live producer: its
    /// push either finishes untouched or is tombstoned mid-write (`Recovered`, counted once,
    /// its message never delivered); the live producer's message is never lost.
    #[test]
    fn recovery_of_a_writer_declared_dead() {
        static ARMS: Arms<2> = Arms::new(
            "recovery_of_a_writer_declared_dead",
            ["recovered mid-write", "the write finished untouched"],
        );
        ARMS.model(|| {
            let r = ring(2);
            let dead = id(5);
            let w = spawn_on(&r, move |r| r.try_push(dead, b"d"));
            let rec = spawn_on(&r, |r| r.recover(|p| p != 5).tombstoned);
            // Capacity 2: at most one other message, so never Full.
            r.try_push(id(1), b"l").unwrap();
            let res = w.join().unwrap();
            let tombstoned = rec.join().unwrap();
            assert_eq!(u64::from(tombstoned), r.lost_writes());
            let got = drain(&r);
            match res {
                Ok(()) => {
                    ARMS.hit("the write finished untouched");
                    assert_eq!(tombstoned, 0);
                    assert!(got.contains(&b"d".to_vec()));
                }
                Err(TryPushError::Recovered) => {
                    ARMS.hit("recovered mid-write");
                    assert_eq!(tombstoned, 1);
                    assert!(!got.contains(&b"d".to_vec()));
                }
                Err(e) => panic!("{e}"),
            }
            assert!(got.contains(&b"l".to_vec()));
            full_lap_works(&r);
        });
    }

    /// A reader declared dead (id 6, alive in fact) races recovery on its own thread, and a
    /// producer pushes into the other slot meanwhile. Either the read finishes (nothing
    /// freed) or recovery frees the slot mid-read (`Recovered`, counted once). Then the
    /// reader's slot is reused: a freed word one lap off stalls or corrupts that push or the
    /// lap after it. (Nobody reuses the slot while the reader may still be in it: a reader
    /// wrongly judged dead can see torn bytes, as `TryPopError::Recovered` documents, and
    /// loom would rightly call that a race.)
    #[test]
    fn recovery_of_a_reader_declared_dead() {
        static ARMS: Arms<2> = Arms::new(
            "recovery_of_a_reader_declared_dead",
            ["recovered mid-read", "the read finished untouched"],
        );
        ARMS.model(|| {
            let r = ring(2);
            r.try_push(id(1), b"m").unwrap();
            let reader = spawn_on(&r, |r| r.try_pop_vec(id(6)));
            let rec = spawn_on(&r, |r| r.recover(|p| p != 6).freed);
            r.try_push(id(1), b"x").unwrap();
            let res = reader.join().unwrap();
            let freed = rec.join().unwrap();
            assert_eq!(u64::from(freed), r.lost_reads());
            match res {
                Ok(v) => {
                    ARMS.hit("the read finished untouched");
                    assert_eq!(v, b"m");
                    assert_eq!(freed, 0);
                }
                Err(TryPopError::Recovered) => {
                    ARMS.hit("recovered mid-read");
                    assert_eq!(freed, 1);
                }
                Err(e) => panic!("{e}"),
            }
            // Position 2 reuses the reader's slot (0): it needs EMPTY(2).
            r.try_push(id(1), b"y").unwrap();
            assert_eq!(drain(&r), [b"x".to_vec(), b"y".to_vec()]);
            full_lap_works(&r);
        });
    }

    /// A producer (id 5) killed right after its claim CAS, before it helps the tail: the
    /// live producer still pushes (helping the tail past the dead claim when it comes second)
    /// without any recovery; recovery, racing the claim, tombstones it exactly once; the
    /// consumer gets the live message; the ring keeps working.
    #[test]
    fn a_producer_killed_between_claim_and_help() {
        static ARMS: Arms<4> = Arms::new(
            "a_producer_killed_between_claim_and_help",
            PRODUCER_KILLED_ARMS,
        );
        producer_killed(&ARMS, 2, 0);
    }

    /// As `a_producer_killed_between_claim_and_help`, in a ring of 3 slots (one lap is 4
    /// positions) with both hints on the last slot: whoever comes second helps the tail
    /// across the jump to the next lap (2 → 4), past a claim its claimant never helped.
    #[test]
    fn a_producer_killed_between_claim_and_help_at_the_lap_jump() {
        static ARMS: Arms<4> = Arms::new(
            "a_producer_killed_between_claim_and_help_at_the_lap_jump",
            PRODUCER_KILLED_ARMS,
        );
        producer_killed(&ARMS, 3, 2);
    }

    const PRODUCER_KILLED_ARMS: [&str; 4] = [
        "the live push passed the dead claim",
        "the live push claimed first",
        "the racing recovery found the dead claim",
        "the dead claim came after the racing recovery",
    ];

    /// The producer-killed model on a ring of `cap` slots whose hints were first moved
    /// `skip` slots in (pushes and pops before any thread starts).
    fn producer_killed(arms: &'static Arms<4>, cap: u32, skip: u32) {
        // Where the second claim lands: the next slot, or the next lap's first after the last.
        let passed_at = if skip + 1 < cap {
            u64::from(skip + 1)
        } else {
            u64::from(cap.next_power_of_two())
        };
        arms.model(move || {
            let r = ring(cap);
            for _ in 0..skip {
                r.try_push(id(3), b"w").unwrap();
                assert_eq!(r.try_pop_vec(id(4)).unwrap(), b"w");
            }
            let dead = {
                let r = r.with_fault_hook(|_| kill());
                thread::spawn(move || expect_killed(|| r.try_push(id(5), b"d")))
            };
            let live = {
                let r = r.with_fault_hook(move |p| {
                    if let FaultPoint::WriteClaimed { pos } = p {
                        arms.either(
                            pos == passed_at,
                            "the live push passed the dead claim",
                            "the live push claimed first",
                        );
                    }
                });
                thread::spawn(move || r.try_push(id(1), b"l"))
            };
            // No recovery before the live push is done: it must not need one.
            live.join().unwrap().unwrap();
            recover_around_the_death(arms, dead, || r.recover(|p| p != 5).tombstoned);
            assert_eq!(r.lost_writes(), 1);
            assert_eq!(drain(&r), [b"l".to_vec()]);
            full_lap_works(&r);
        });
    }

    /// A consumer (id 6) killed right after its claim CAS, before it helps the head: the
    /// live consumer still pops (helping the head past the dead claim when it comes second)
    /// without any recovery; recovery frees the dead claim exactly once; producers get the
    /// slot back; the ring keeps working.
    #[test]
    fn a_consumer_killed_between_claim_and_help() {
        static ARMS: Arms<4> = Arms::new(
            "a_consumer_killed_between_claim_and_help",
            [
                "the live pop passed the dead claim",
                "the live pop claimed first",
                "the racing recovery found the dead claim",
                "the dead claim came after the racing recovery",
            ],
        );
        ARMS.model(|| {
            let r = ring(2);
            r.try_push(id(1), b"a").unwrap();
            r.try_push(id(1), b"b").unwrap();
            let dead = {
                let r = r.with_fault_hook(|_| kill());
                thread::spawn(move || expect_killed(|| r.try_pop_vec(id(6))))
            };
            let live = {
                let r = r.with_fault_hook(|p| {
                    if let FaultPoint::ReadClaimed { pos } = p {
                        ARMS.either(
                            pos == 1,
                            "the live pop passed the dead claim",
                            "the live pop claimed first",
                        );
                    }
                });
                thread::spawn(move || r.try_pop_vec(id(7)))
            };
            // No recovery before the live pop is done: it must not need one.
            let got = live.join().unwrap().unwrap();
            assert!(got == b"a" || got == b"b", "{got:?}");
            recover_around_the_death(&ARMS, dead, || r.recover(|p| p != 6).freed);
            assert_eq!(r.lost_reads(), 1);
            // No pop in between: the freed slot is refilled before any consumer helps the
            // head past a dead claim that the live pop did not pass.
            full_lap_works(&r);
        });
    }

    /// Issue #12, finding 1: a consumer that only polls — `try_pop`, and on `Empty` a look at
    /// the head (`stuck_claim`), recovering (`recover_claim`) a claim it saw stuck on two polls
    /// in a row (the model's stand-in for "stuck for longer than an interval") — behind a
    /// producer (id 5) killed right after its claim, while a live producer commits a message
    /// behind it. Liveness says id 5 is dead once its kill has happened. After the threads
    /// join, the same poller keeps polling alone until the message is in and nothing is
    /// stuck: it gets the live message exactly once, and the loss is counted once.
    #[test]
    fn a_pure_poller_recovers_a_dead_producers_claim() {
        use loom::sync::Arc;
        use loom::sync::atomic::{AtomicBool, Ordering};
        use mproc_ring::{Claim, Recovered, Side};

        static ARMS: Arms<4> = Arms::new(
            "a_pure_poller_recovers_a_dead_producers_claim",
            [
                "the racing poller recovered the dead claim",
                "a racing pop succeeded without needing recovery",
                "liveness asked before the kill: alive, left alone",
                "the racing polls came away empty-handed",
            ],
        );

        /// The poller's state between polls: what it got, and the claim it last saw stuck.
        #[derive(Default)]
        struct Poller {
            got: Vec<Vec<u8>>,
            last: Option<Claim>,
            recovered: u32,
        }

        impl Poller {
            /// One poll (`racing`: while the producers may still run).
            fn poll(&mut self, r: &MpmcRing, killed: &AtomicBool, racing: bool) {
                match r.try_pop_vec(id(9)) {
                    Ok(v) => {
                        if racing && self.recovered == 0 {
                            ARMS.hit("a racing pop succeeded without needing recovery");
                        }
                        self.got.push(v);
                        self.last = None;
                    }
                    Err(TryPopError::Empty) => {
                        let mut stuck = r.stuck_claim(Side::Head);
                        if let Some(claim) = stuck.filter(|c| Some(*c) == self.last) {
                            let alive = |p: u32| {
                                let alive = p != 5 || !killed.load(Ordering::SeqCst);
                                if alive {
                                    ARMS.hit("liveness asked before the kill: alive, left alone");
                                }
                                alive
                            };
                            match r.recover_claim(claim, alive) {
                                Some(Recovered::Tombstoned) => {
                                    if racing {
                                        ARMS.hit("the racing poller recovered the dead claim");
                                    }
                                    self.recovered += 1;
                                    stuck = None;
                                }
                                Some(Recovered::Freed) => panic!("freed a writer's claim"),
                                None => {}
                            }
                        }
                        self.last = stuck;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }

        ARMS.model(|| {
            let r = ring(2);
            let killed = Arc::new(AtomicBool::new(false));
            let dead = {
                let killed = killed.clone();
                let r = r.with_fault_hook(move |_| {
                    killed.store(true, Ordering::SeqCst);
                    kill()
                });
                thread::spawn(move || expect_killed(|| r.try_push(id(5), b"d")))
            };
            let live = spawn_on(&r, |r| r.try_push(id(1), b"l"));
            let poller = {
                let (r, killed) = (r.clone(), killed.clone());
                thread::spawn(move || {
                    let mut poller = Poller::default();
                    for _ in 0..3 {
                        if !poller.got.is_empty() {
                            break;
                        }
                        poller.poll(&r, &killed, true);
                    }
                    poller
                })
            };
            // Capacity 2: never Full.
            live.join().unwrap().unwrap();
            dead.join().unwrap();
            let mut poller = poller.join().unwrap();
            if poller.got.is_empty() {
                ARMS.hit("the racing polls came away empty-handed");
            }
            for _ in 0..4 {
                if !poller.got.is_empty() && r.stuck_claim(Side::Head).is_none() {
                    break;
                }
                poller.poll(&r, &killed, false);
            }
            assert_eq!(poller.got, [b"l".to_vec()], "the live message, once");
            assert_eq!(poller.recovered, 1);
            assert_eq!(r.lost_writes(), 1, "the dead message, counted once");
            assert_eq!(r.stuck_claim(Side::Head), None);
            assert_eq!(drain(&r), Vec::<Vec<u8>>::new(), "no duplicate");
            full_lap_works(&r);
        });
    }
}
