//! Loom models of the JoinableQueue protocol (mproc's `joinable_queue.rs`, "How it is built:
//! tasks are counted where the items are"): an unfinished task is a ring slot holding a
//! message or a claim (`MpmcRing::occupied`) or a task taken and not done in the task
//! ledger (`Ledger::outstanding`); a get records its task *inside* `try_pop_with`'s closure,
//! while it still holds the slot's `READING` claim; `task_done` gives one back; `join` is
//! done when one look (`MpmcRing::empty_across`) finds every slot free, *then* reads
//! `outstanding() <= 0`, then finds every slot word unchanged, and a joiner that sees work
//! outstanding runs `recover` and `reclaim_dead` to release what dead participants held.
//!
//! * `join_never_returns_early`: producer, consumer and joiner race over one item; the
//!   joiner never sees zero once the push has returned unless `task_done` has begun, and
//!   always sees zero once `task_done` has returned.
//! * `a_consumer_killed_at_every_step_of_its_get` and
//!   `a_consumer_killed_at_every_step_of_task_done`: the consumer dies right after its
//!   claim, at every fault point of its ledger `take` (inside the pop closure, the `READING`
//!   claim left as a killed process leaves it), between its get and its `task_done`, and at
//!   every fault point of the `task_done`; the joiner never sees zero while it lives and has
//!   not begun `task_done`, sees zero after recovery, and the task is accounted exactly as
//!   the ledger's rule says (lost in flight, released from the dead worker, or done).
//! * `a_producer_killed_after_its_claim`: the producer dies holding `WRITING`; the joiner
//!   counts that slot until recovery tombstones it, then sees zero; no task is ever counted
//!   for it in the ledger (no phantom), and no consumer ever gets it.
//! * `join_never_returns_early_when_a_worker_puts_follow_up_work`: the "crawler" pattern on
//!   a 2-slot ring: a worker gets A from the slot a look reaches last, puts follow-up B into
//!   the slot it reached first, then calls `task_done` for A (and later gets B and calls
//!   `task_done` for it); the joiner never sees zero before B's `task_done` has begun. A
//!   single pass over the slots (then the ledger) fails this model.
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
    use std::cell::Cell;

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;
    use mproc_futex::fault::{DieAt, Fault, NoFault};
    use mproc_futex::{
        AlwaysAlive, Caller, Futex, Give, GiveError, Ledger, LedgerError, Wait, futex,
    };
    use mproc_ring::fault::{FaultPoint, kill};
    use mproc_ring::{MpmcRing, TryPopError};

    use crate::arms::Arms;
    use crate::common::{drain, expect_killed, id, mpmc};

    /// The task ledger, as small as loom wants it: two entries (the consumer's, and one
    /// spare).
    type Tasks = Ledger<Futex, 2>;

    const PRODUCER: u32 = 5;
    const CONSUMER: u32 = 6;
    const JOINER: u32 = 9;
    /// The consumer as the ledger sees it (alive throughout in every model).
    const THE_CONSUMER: Caller<'static> = Caller {
        id: CONSUMER,
        liveness: &AlwaysAlive,
    };
    /// The one item of every model.
    const ITEM: &[u8] = b"t";
    /// Looks a racing joiner takes before it leaves the rest to the model's final look
    /// (enough to see work, recover after a death, and see zero).
    const PASSES: usize = 3;

    /// The queue of a JoinableQueue: a 1-slot ring with 2-byte slots (every slot byte is
    /// work for loom) and the task ledger.
    fn queue() -> (MpmcRing, Arc<Tasks>) {
        (mpmc(1, 2), Arc::new(Tasks::with_value_for_waiter(0)))
    }

    /// One look of `join` (`Tasks::all_done`): a pass over the ring, the ledger, a second
    /// pass (`empty_across`). (`all_done` first rejects cheaply on a nonzero ledger; that
    /// load can only say "not done".)
    fn all_done(ring: &MpmcRing, tasks: &Tasks) -> bool {
        ring.empty_across(|| tasks.outstanding() <= 0)
    }

    /// `get` as JoinableQueue does it: pops, recording one task for `who` inside the pop's
    /// closure (while the slot's `READING` claim is still held), through `fault`.
    fn get<F: Fault>(
        ring: &MpmcRing,
        tasks: &Tasks,
        who: Caller<'_>,
        fault: &F,
    ) -> Result<Result<bool, LedgerError>, TryPopError> {
        ring.try_pop_with(id(who.id), |bytes| {
            assert_eq!(bytes, ITEM);
            tasks.take_with(who, 1, false, Wait::Forever, fault)
        })
    }

    /// `task_done` as JoinableQueue does it.
    fn task_done<F: Fault>(tasks: &Tasks, who: Caller<'_>, fault: &F) -> Result<(), GiveError> {
        tasks.give_with(who, 1, Give::Consume, Wait::Forever, fault)
    }

    /// What a joiner that saw work outstanding does (`Tasks::join` on a quiet slice):
    /// resolves dead claims in the ring, then releases dead participants' tasks. Returns
    /// whether it released anything.
    fn recover(ring: &MpmcRing, tasks: &Tasks, alive: &dyn Fn(u32) -> bool) -> bool {
        let rep = ring.recover(alive);
        let who = Caller {
            id: JOINER,
            liveness: &alive,
        };
        let released = tasks
            .reclaim_dead(who, false, Wait::Forever)
            .expect("ledger usable");
        rep.freed + rep.tombstoned > 0 || released > 0
    }

    // ------------------------------------------------------------------------------------
    // 1. join never returns early

    /// A producer pushes the item, a consumer gets it (task recorded inside the pop's claim)
    /// and calls `task_done`, and a joiner looks (ring, then ledger) up to [`PASSES`] times,
    /// running recovery between looks as `join` does (everyone is alive: it must release
    /// nothing). A look that sees zero is early if the push had returned before the look
    /// began and `task_done` had not even begun when it ended (`task_done` takes effect at
    /// its ledger store, somewhere inside the call); a look that sees work after `task_done`
    /// returned is late. Neither may happen.
    #[test]
    fn join_never_returns_early() {
        static ARMS: Arms<4> = Arms::new(
            "join_never_returns_early",
            [
                "join saw work outstanding",
                "join saw zero after task_done",
                "join saw zero once task_done had begun",
                "join saw zero before the push",
            ],
        );
        ARMS.model(|| {
            let (ring, tasks) = queue();
            // Set when the push returned / just before task_done / when task_done returned.
            let pushed = Arc::new(AtomicBool::new(false));
            let done_begun = Arc::new(AtomicBool::new(false));
            let done_returned = Arc::new(AtomicBool::new(false));

            let producer = {
                let (ring, pushed) = (ring.clone(), pushed.clone());
                thread::spawn(move || {
                    ring.try_push(id(PRODUCER), ITEM).unwrap();
                    // Release: a joiner that reads `true` (Acquire) then sees the committed
                    // slot in its look; with Relaxed it could read an older slot word and the
                    // model would call a correct zero early.
                    pushed.store(true, Ordering::Release);
                })
            };
            let consumer = {
                let (ring, tasks) = (ring.clone(), tasks.clone());
                let (begun, returned) = (done_begun.clone(), done_returned.clone());
                thread::spawn(move || {
                    let me = THE_CONSUMER;
                    loop {
                        match get(&ring, &tasks, me, &NoFault) {
                            Ok(taken) => {
                                assert_eq!(taken, Ok(true));
                                break;
                            }
                            Err(TryPopError::Empty) => thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    // Release: a joiner whose look saw the count task_done brings to zero
                    // also sees this flag (it is ordered before the ledger's Release store
                    // that the look's Acquire load read).
                    begun.store(true, Ordering::Release);
                    task_done(&tasks, me, &NoFault).unwrap();
                    // Release: a joiner that reads `true` (Acquire) before its look must see
                    // everything task_done did.
                    returned.store(true, Ordering::Release);
                })
            };
            let joiner = {
                let (ring, tasks) = (ring.clone(), tasks.clone());
                let (pushed, begun, returned) =
                    (pushed.clone(), done_begun.clone(), done_returned.clone());
                thread::spawn(move || {
                    let alive = |_: u32| true;
                    for _ in 0..PASSES {
                        // Acquire (both): pair with the Release stores above.
                        let pushed_before = pushed.load(Ordering::Acquire);
                        let returned_before = returned.load(Ordering::Acquire);
                        let zero = all_done(&ring, &tasks);
                        // Acquire: pairs with the Release store before task_done.
                        let begun_after = begun.load(Ordering::Acquire);
                        if returned_before {
                            assert!(zero, "join is late: task_done had returned");
                        }
                        if zero {
                            assert!(
                                !pushed_before || begun_after,
                                "join returned early: the item was pushed and task_done had \
                                 not begun"
                            );
                            ARMS.hit(if returned_before {
                                "join saw zero after task_done"
                            } else if begun_after {
                                "join saw zero once task_done had begun"
                            } else {
                                "join saw zero before the push"
                            });
                            return;
                        }
                        ARMS.hit("join saw work outstanding");
                        assert!(!recover(&ring, &tasks, &alive), "everyone is alive");
                        thread::yield_now();
                    }
                })
            };
            producer.join().unwrap();
            consumer.join().unwrap();
            joiner.join().unwrap();
            assert!(all_done(&ring, &tasks));
            assert_eq!((ring.lost_reads(), tasks.reclaimed()), (0, 0));
            let me = THE_CONSUMER;
            assert_eq!(
                task_done(&tasks, me, &NoFault),
                Err(GiveError::TooMany),
                "one item, one task"
            );
        });
    }

    // ------------------------------------------------------------------------------------
    // 2. a consumer killed at every step

    /// Where the consumer dies.
    #[derive(Debug, Clone, Copy)]
    enum Death {
        /// Right after its claim CAS (ring fault point `ReadClaimed`): nothing recorded yet.
        AfterClaim,
        /// At fault point `k` of its ledger changes, counted across its `take` (inside the
        /// pop's closure) and then its `task_done`.
        Ledger(u32),
        /// After its get returned (task recorded, slot released), before `task_done`.
        BeforeTaskDone,
    }

    /// A fault that never fires and counts the fault points it passes.
    #[derive(Default)]
    struct Count(Cell<u32>);

    impl Fault for Count {
        fn die(&self) -> bool {
            self.0.set(self.0.get() + 1);
            false
        }
    }

    /// The fault points of the consumer's `take` and of its `task_done`, as the model runs
    /// them (fresh ledger, one task), counted in a one-thread loom execution (the ledger's
    /// atomics are loom's). The last point of each is after its commit (journal cleared),
    /// before the unlock.
    fn fault_points() -> (u32, u32) {
        let points = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
        let out = points.clone();
        loom::model(move || {
            let (ring, tasks) = queue();
            ring.try_push(id(PRODUCER), ITEM).unwrap();
            let me = THE_CONSUMER;
            let (take, give) = (Count::default(), Count::default());
            assert_eq!(get(&ring, &tasks, me, &take), Ok(Ok(true)));
            task_done(&tasks, me, &give).unwrap();
            *out.lock().unwrap() = (take.0.get(), give.0.get());
        });
        let (take, give) = *points.lock().unwrap();
        assert!(take > 0 && give > 0, "no fault point counted");
        (take, give)
    }

    /// What the consumer's death leaves to recovery: (`lost_reads`, `reclaimed`). A change
    /// the ledger journaled is undone unless its death came after its commit, at its last
    /// fault point (module docs of `ledger.rs`).
    fn expected(death: Death, take_points: u32, give_points: u32) -> (u64, u64) {
        match death {
            // The READING claim stays (nothing recorded): lost in flight.
            Death::AfterClaim => (1, 0),
            // Inside the pop's closure: the READING claim stays (lost in flight), and a take
            // that had committed is a task of a dead worker too (counted in both, as
            // `Joined::lost` documents).
            Death::Ledger(k) if k < take_points => (1, u64::from(k == take_points - 1)),
            // Inside task_done: the task was recorded and the slot released. A committed
            // task_done is done; any earlier death is undone and the task released.
            Death::Ledger(k) => (0, u64::from(k - take_points != give_points - 1)),
            Death::BeforeTaskDone => (0, 1),
        }
    }

    /// One model of a consumer (id 6) dying at `death`, with a joiner (the model's own
    /// thread) racing it. The item is in the ring before the consumer starts.
    ///
    /// The consumer's death: it stops, then is marked dead (Release; the liveness closures
    /// load it with Acquire). A death inside the pop's closure keeps the `READING` claim:
    /// the thread stays there, inside the ring call, until the model has finished recovering
    /// (unwinding would run the ring's claim guard, which a killed process never does; once
    /// let go, its pop says `Recovered`). A death holding the ledger's guard then stands for
    /// the passage of time too: it ticks the logical clock until the joiner is done, so a
    /// joiner asleep on that guard reaches its liveness check interval (as it would within
    /// 32 ms), however often it went back to sleep first.
    fn consumer_killed(death: Death, take_points: u32, give_points: u32) {
        const SLEPT: &str =
            "the racing join slept on the dead worker's guard until a liveness check";
        const RELEASED: &str = "the racing join released what the dead worker held";
        let names = match death {
            Death::Ledger(k) if k >= take_points => [
                "join saw work outstanding",
                "join saw zero once task_done had begun",
                SLEPT,
            ],
            Death::Ledger(_) => [
                "join saw work outstanding",
                "join saw zero once the worker was dead",
                SLEPT,
            ],
            Death::AfterClaim | Death::BeforeTaskDone => [
                "join saw work outstanding",
                "join saw zero once the worker was dead",
                RELEASED,
            ],
        };
        let model: &'static str =
            Box::leak(format!("consumer killed at {death:?}").into_boxed_str());
        let arms: &'static Arms<3> = Box::leak(Box::new(Arms::new(model, names)));
        let (lost, reclaimed) = expected(death, take_points, give_points);
        // Two threads: a bound one above the matrix's costs little (under a second each).
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        arms.check(builder, move || {
            let (ring, tasks) = queue();
            ring.try_push(id(PRODUCER), ITEM).unwrap();
            let dead = Arc::new(AtomicBool::new(false));
            // Set just before task_done.
            let done_begun = Arc::new(AtomicBool::new(false));
            // Set when the joiner has made its racing looks / when the model has finished
            // recovering.
            let joined = Arc::new(AtomicBool::new(false));
            let reaped = Arc::new(AtomicBool::new(false));

            let consumer = {
                let (ring, tasks) = (ring.clone(), tasks.clone());
                let (dead, begun) = (dead.clone(), done_begun.clone());
                let (joined, reaped) = (joined.clone(), reaped.clone());
                thread::spawn(move || {
                    let me = THE_CONSUMER;
                    let die = |holding_guard: bool| {
                        // Release: pairs with the Acquire of the liveness closures, so a
                        // participant told "dead" sees everything the consumer did.
                        dead.store(true, Ordering::Release);
                        // Acquire: pairs with the joiner's Release store.
                        while holding_guard && !joined.load(Ordering::Acquire) {
                            futex::advance_clock();
                            thread::yield_now();
                        }
                    };
                    match death {
                        Death::AfterClaim => {
                            let r = ring.with_fault_hook(|p| {
                                if let FaultPoint::ReadClaimed { .. } = p {
                                    kill();
                                }
                            });
                            expect_killed(|| get(&r, &tasks, me, &NoFault).map(drop));
                            die(false);
                        }
                        Death::Ledger(k) => {
                            let fault = DieAt::new(k);
                            let popped = ring.try_pop_with(id(CONSUMER), |bytes| {
                                assert_eq!(bytes, ITEM);
                                let taken = tasks.take_with(me, 1, false, Wait::Forever, &fault);
                                if taken == Err(LedgerError::Died) {
                                    die(true);
                                    // Dead inside the ring call: stay until reaped.
                                    // Acquire: pairs with the model's Release store.
                                    while !reaped.load(Ordering::Acquire) {
                                        thread::yield_now();
                                    }
                                }
                                taken
                            });
                            if fault.died() {
                                assert_eq!(popped, Err(TryPopError::Recovered));
                                return;
                            }
                            assert_eq!(popped, Ok(Ok(true)));
                            // Release: as in `join_never_returns_early`, a look that saw the
                            // count this task_done lowered sees the flag.
                            begun.store(true, Ordering::Release);
                            assert_eq!(
                                task_done(&tasks, me, &fault),
                                Err(GiveError::Ledger(LedgerError::Died)),
                                "k counts the fault points of the take, then the task_done"
                            );
                            die(true);
                        }
                        Death::BeforeTaskDone => {
                            let got = get(&ring, &tasks, me, &NoFault);
                            assert_eq!(got, Ok(Ok(true)));
                            die(false);
                        }
                    }
                })
            };

            // The joiner.
            // Acquire: pairs with the consumer's Release store of `dead`.
            let alive = |p: u32| p != CONSUMER || !dead.load(Ordering::Acquire);
            let mut released = false;
            for _ in 0..PASSES {
                if all_done(&ring, &tasks) {
                    // Acquire (both): the flags were stored (Release) before the death, or
                    // before the task_done, whose effect the look saw.
                    let dead_after = dead.load(Ordering::Acquire);
                    let begun_after = done_begun.load(Ordering::Acquire);
                    assert!(
                        dead_after || begun_after,
                        "join returned early: the worker lives and has not begun task_done"
                    );
                    arms.hit(names[1]);
                    break;
                }
                arms.hit("join saw work outstanding");
                released |= recover(&ring, &tasks, &alive);
                thread::yield_now();
            }
            if names[2] == SLEPT {
                // Its only sleeps are on the ledger's guard, and only a dead holder's guard
                // lets a sleep end by a tick.
                arms.hit_if(futex::sleeps().timed_out > 0, SLEPT);
            } else {
                arms.hit_if(released, RELEASED);
            }
            // Release: pairs with the dead consumer's Acquire load (time may stop).
            joined.store(true, Ordering::Release);

            // Acquire: pairs with the consumer's Release store.
            while !dead.load(Ordering::Acquire) {
                thread::yield_now();
            }
            // The consumer is dead now: the final look of a join, after recovery.
            recover(&ring, &tasks, &alive);
            assert!(all_done(&ring, &tasks), "zero after recovery");
            // The task is accounted, exactly: lost in flight and/or released from the dead
            // worker (at least one of the two), unless its task_done committed first.
            assert_eq!(
                (ring.lost_reads(), tasks.reclaimed()),
                (lost, reclaimed),
                "(lost in flight, released from the dead worker)"
            );
            assert_eq!(ring.lost_writes(), 0);
            // Release: pairs with the consumer's Acquire load.
            reaped.store(true, Ordering::Release);
            consumer.join().unwrap();
            assert_eq!(drain(&ring), Vec::<Vec<u8>>::new(), "nothing left behind");
        });
    }

    /// The consumer dies right after its claim, at every fault point of the ledger `take`
    /// it makes inside the pop's closure, and after its get returned (before `task_done`).
    #[test]
    fn a_consumer_killed_at_every_step_of_its_get() {
        let (take, give) = fault_points();
        consumer_killed(Death::AfterClaim, take, give);
        for k in 0..take {
            consumer_killed(Death::Ledger(k), take, give);
        }
        consumer_killed(Death::BeforeTaskDone, take, give);
    }

    /// The consumer dies at every fault point of its `task_done`.
    #[test]
    fn a_consumer_killed_at_every_step_of_task_done() {
        let (take, give) = fault_points();
        for k in take..take + give {
            consumer_killed(Death::Ledger(k), take, give);
        }
    }

    // ------------------------------------------------------------------------------------
    // 3. a producer killed after its claim

    /// A producer (id 5) killed right after its claim CAS (`WRITING` left in the slot), a
    /// consumer polling twice (recording a task inside the pop's closure, as a get does), and
    /// a joiner looking up to [`PASSES`] times, recovering between looks. The joiner counts
    /// the dead claim as long as it stands (once it has seen the claim made), and sees zero
    /// once its recovery has tombstoned it; the ledger never counts a task (no phantom);
    /// nobody ever gets the dead item.
    #[test]
    fn a_producer_killed_after_its_claim() {
        static ARMS: Arms<3> = Arms::new(
            "a_producer_killed_after_its_claim",
            [
                "join saw the dead claim outstanding",
                "join saw zero after the tombstone",
                "join saw zero before the claim",
            ],
        );
        ARMS.model(|| {
            let (ring, tasks) = queue();
            // Set by the hook right after the claim CAS / after the kill.
            let claimed = Arc::new(AtomicBool::new(false));
            let dead = Arc::new(AtomicBool::new(false));

            let producer = {
                let (claimed, dead) = (claimed.clone(), dead.clone());
                let ring = ring.with_fault_hook(move |p| {
                    if let FaultPoint::WriteClaimed { .. } = p {
                        // Release: a joiner that reads `true` (Acquire) sees the claim.
                        claimed.store(true, Ordering::Release);
                        kill();
                    }
                });
                thread::spawn(move || {
                    expect_killed(|| ring.try_push(id(PRODUCER), ITEM));
                    // Release: pairs with the Acquire of the liveness closures.
                    dead.store(true, Ordering::Release);
                })
            };
            let consumer = {
                let (ring, tasks) = (ring.clone(), tasks.clone());
                thread::spawn(move || {
                    let me = THE_CONSUMER;
                    for _ in 0..2 {
                        match get(&ring, &tasks, me, &NoFault) {
                            Err(TryPopError::Empty) => thread::yield_now(),
                            other => panic!("a get of a dead producer's item: {other:?}"),
                        }
                    }
                })
            };
            let joiner = {
                let (ring, tasks) = (ring.clone(), tasks.clone());
                let (claimed, dead) = (claimed.clone(), dead.clone());
                thread::spawn(move || {
                    // Acquire: pairs with the producer's Release store of `dead`.
                    let alive = |p: u32| p != PRODUCER || !dead.load(Ordering::Acquire);
                    let mut tombstoned = false;
                    for _ in 0..PASSES {
                        // Acquire: pairs with the hook's Release store.
                        let claimed_before = claimed.load(Ordering::Acquire);
                        let occupied = ring.occupied();
                        let outstanding = tasks.outstanding();
                        assert_eq!(outstanding, 0, "a phantom task");
                        if tombstoned {
                            assert_eq!(occupied, 0, "a tombstone counted as a task");
                        } else if claimed_before {
                            assert_eq!(occupied, 1, "the dead claim not counted");
                        }
                        if occupied == 0 {
                            ARMS.either(
                                tombstoned,
                                "join saw zero after the tombstone",
                                "join saw zero before the claim",
                            );
                            return;
                        }
                        ARMS.hit("join saw the dead claim outstanding");
                        tombstoned |= ring.recover(alive).tombstoned > 0;
                        let who = Caller {
                            id: JOINER,
                            liveness: &alive,
                        };
                        assert_eq!(tasks.reclaim_dead(who, false, Wait::Forever), Ok(0));
                        thread::yield_now();
                    }
                })
            };
            producer.join().unwrap();
            consumer.join().unwrap();
            joiner.join().unwrap();
            // Everyone is done: the final look of a join, after recovery.
            let alive = |p: u32| p != PRODUCER;
            recover(&ring, &tasks, &alive);
            assert!(all_done(&ring, &tasks));
            assert_eq!(ring.lost_writes(), 1, "the dead item, counted once");
            assert_eq!((ring.lost_reads(), tasks.reclaimed()), (0, 0));
            assert_eq!(
                drain(&ring),
                Vec::<Vec<u8>>::new(),
                "nobody gets the dead item"
            );
            let me = THE_CONSUMER;
            assert_eq!(
                task_done(&tasks, me, &NoFault),
                Err(GiveError::TooMany),
                "no task was ever counted"
            );
        });
    }

    // ------------------------------------------------------------------------------------
    // 4. a worker that puts follow-up work

    /// [`all_done`], recording in `checked` what the ledger read said, if the first pass let
    /// it run.
    fn look(ring: &MpmcRing, tasks: &Tasks, checked: &Cell<Option<bool>>) -> bool {
        ring.empty_across(|| {
            let zero = tasks.outstanding() <= 0;
            checked.set(Some(zero));
            zero
        })
    }

    /// The "crawler" pattern: a worker gets item A, puts follow-up item B, calls
    /// `task_done` for A, then gets B and calls `task_done` for it; a joiner looks up to
    /// [`PASSES`] times. The ring has 2 slots and one item has been through it first, so A
    /// sits in slot 1 and B lands in slot 0: the slot a look's first pass has already left
    /// when it reaches A's. There is no moment with the ring empty and the ledger at zero
    /// until B's `task_done`, so a look that sees zero must end after that `task_done` has
    /// begun, and one that begins after it returned must see zero.
    ///
    /// A single pass (`occupied() == 0`, then the ledger) fails here: it reads slot 0 before
    /// B is put, slot 1 after A was got, and the ledger after `task_done(A)`, and says zero
    /// with B queued (it fails this model at a preemption bound of 1 already).
    /// `empty_across`'s second pass finds slot 0 changed ("caught B"). Two threads: its own
    /// bound, one above the matrix's, costs little (well under a second).
    #[test]
    fn join_never_returns_early_when_a_worker_puts_follow_up_work() {
        static ARMS: Arms<5> = Arms::new(
            "join_never_returns_early_when_a_worker_puts_follow_up_work",
            [
                "join's first pass saw an item or a claim",
                "join saw the worker's task in the ledger",
                "join read the ledger at zero and its second pass caught B",
                "join saw zero once B's task_done had begun",
                "join saw zero after B's task_done",
            ],
        );
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        ARMS.check(builder, || {
            let (ring, tasks) = (mpmc(2, 2), Arc::new(Tasks::with_value_for_waiter(0)));
            // One item through slot 0 (single-threaded), so the ring's next positions are
            // 1 (slot 1: A) and 2 (slot 0: B).
            ring.try_push(id(PRODUCER), ITEM).unwrap();
            assert_eq!(drain(&ring), [ITEM]);
            ring.try_push(id(PRODUCER), ITEM).unwrap();
            // Set just before / when B's task_done returned.
            let done_begun = Arc::new(AtomicBool::new(false));
            let done_returned = Arc::new(AtomicBool::new(false));

            let worker = {
                let (ring, tasks) = (ring.clone(), tasks.clone());
                let (begun, returned) = (done_begun.clone(), done_returned.clone());
                thread::spawn(move || {
                    let me = THE_CONSUMER;
                    // A, from slot 1; then B, the follow-up work, into slot 0, before A is
                    // done.
                    assert_eq!(get(&ring, &tasks, me, &NoFault), Ok(Ok(true)));
                    ring.try_push(id(CONSUMER), ITEM).unwrap();
                    task_done(&tasks, me, &NoFault).unwrap();
                    // B, the only item left: the worker is its only consumer.
                    assert_eq!(get(&ring, &tasks, me, &NoFault), Ok(Ok(true)));
                    // Release: a look whose ledger read saw the count B's task_done brings to
                    // zero also sees this flag.
                    begun.store(true, Ordering::Release);
                    task_done(&tasks, me, &NoFault).unwrap();
                    // Release: a joiner that reads `true` (Acquire) before its look sees
                    // everything the worker did.
                    returned.store(true, Ordering::Release);
                })
            };

            // The joiner.
            for _ in 0..PASSES {
                // Acquire: pairs with the Release store after B's task_done.
                let returned_before = done_returned.load(Ordering::Acquire);
                let checked = Cell::new(None);
                let zero = look(&ring, &tasks, &checked);
                // Acquire: pairs with the Release store before B's task_done.
                let begun_after = done_begun.load(Ordering::Acquire);
                if returned_before {
                    assert!(zero, "join is late: the worker had finished");
                }
                if zero {
                    assert!(
                        begun_after,
                        "join returned early: B (or A) was outstanding throughout the look"
                    );
                    ARMS.either(
                        returned_before,
                        "join saw zero after B's task_done",
                        "join saw zero once B's task_done had begun",
                    );
                    break;
                }
                ARMS.hit(match checked.get() {
                    None => "join's first pass saw an item or a claim",
                    Some(false) => "join saw the worker's task in the ledger",
                    Some(true) => "join read the ledger at zero and its second pass caught B",
                });
                thread::yield_now();
            }
            worker.join().unwrap();
            assert!(
                look(&ring, &tasks, &Cell::new(None)),
                "zero once all is done"
            );
            assert_eq!((ring.lost_reads(), tasks.reclaimed()), (0, 0));
            assert_eq!(drain(&ring), Vec::<Vec<u8>>::new(), "B was got");
            let me = THE_CONSUMER;
            assert_eq!(
                task_done(&tasks, me, &NoFault),
                Err(GiveError::TooMany),
                "two items, two tasks"
            );
        });
    }
}
