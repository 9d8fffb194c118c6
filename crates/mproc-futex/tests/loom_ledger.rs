//! Loom models of Ledger and RobustSemaphore: a participant killed after every single store of
//! take, give and reclaim_dead while another one works on the same ledger (the survivor takes
//! the guard over, the journal undoes the interrupted change, no unit is lost or doubled); two
//! live threads racing on a one-permit RobustSemaphore (never both inside, no lost wake-up);
//! a sleeper getting the permit of a holder killed at every store of its take.
//!
//! "Killed at store k" is `fault::DieAt::new(k)`: the operation stops before its k-th shared
//! store (or, at the last point, before unlocking), leaving the guard held, and the thread
//! then stores `dead = true` with Release, which the others' liveness closures load with
//! Acquire (as the facade's liveness follows the kernel releasing a dead process's lock).
//! Each `k` is its own `loom::model` run with its own arms.
//!
//! Every model counts its outcome arms (`tests/common/arms.rs`) and fails if one was never
//! reached. Run: `RUSTFLAGS="--cfg mproc_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test -p mproc-futex --release --test loom_ledger`

#[cfg(mproc_loom)]
#[path = "common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use super::arms::{Arms, SLEPT};
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use loom::thread;
    use mproc_futex::fault::{DieAt, Fault};
    use mproc_futex::{
        AlwaysAlive, Caller, Futex, Give, GiveError, Ledger, LedgerError, Liveness,
        RobustSemaphore, Wait, futex,
    };
    use std::cell::Cell;

    fn caller(id: u32, liveness: &dyn Liveness) -> Caller<'_> {
        Caller { id, liveness }
    }

    /// Arms built at run time (one set per fault point), leaked to be `'static` as `Arms`
    /// wants; a handful per model.
    fn arms(name: String, names: [&'static str; 3]) -> &'static Arms<3> {
        Box::leak(Box::new(Arms::new(Box::leak(name.into_boxed_str()), names)))
    }

    /// The preemption bound of these models: at least 4, whatever `LOOM_MAX_PREEMPTIONS`
    /// says (the matrix runs 2). Each run is small (a few thousand iterations at 4, well under
    /// a second), and at 3 loom never reached the schedule in which a sleeper reads the guard
    /// word naming the holder, the holder unlocks and dies, and the sleeper is then told the
    /// stale owner is dead (its takeover CAS must fail).
    fn builder() -> loom::model::Builder {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = b.preemption_bound.map(|p| p.max(4));
        b
    }

    // -----------------------------------------------------------------------------------
    // A participant killed after every store

    /// Killed at the chosen store.
    const A: u32 = 1;
    /// Works concurrently: a take, then a give.
    const B: u32 = 2;
    /// Reclaims after both threads ended.
    const MAIN: u32 = 3;
    /// Dead from the start, holding one unit (the subject of A's reclaim).
    const GONE: u32 = 9;
    /// The initial value: A, B and GONE can each hold one unit at once.
    const V0: u32 = 3;

    type L = Ledger<Futex, 3>;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        Take,
        Give,
        Reclaim,
    }

    /// The ledger before the threads start: A holds 1, and for `Reclaim` so does GONE.
    fn setup(op: Op) -> L {
        let l = L::with_value_for_waiter(V0);
        if op == Op::Reclaim {
            assert_eq!(
                l.take(caller(GONE, &AlwaysAlive), 1, true, Wait::Forever),
                Ok(true)
            );
        }
        assert_eq!(
            l.take(caller(A, &AlwaysAlive), 1, true, Wait::Forever),
            Ok(true)
        );
        l
    }

    /// A's operation: take 1, give 1 (bounded at V0), or give back GONE's unit.
    fn run_a(op: Op, l: &L, fault: &impl Fault) -> Result<(), LedgerError> {
        let live = |id: u32| id != GONE;
        let a = caller(A, &live);
        match op {
            Op::Take => l
                .take_with(a, 1, true, Wait::Forever, fault)
                .map(|took| assert!(took, "A's take is never short of a unit")),
            Op::Give => l
                .give_with(a, 1, Give::ToValue { bound: V0 }, Wait::Forever, fault)
                .map_err(|e| match e {
                    GiveError::Ledger(e) => e,
                    GiveError::TooMany => panic!("A's give never passes the bound"),
                    other => panic!("unexpected {other}"),
                }),
            Op::Reclaim => l
                .reclaim_dead_with(a, true, Wait::Forever, fault)
                .map(|back| assert_eq!(back, 1, "GONE's unit")),
        }
    }

    /// What the others can see of the ledger (read by A under the guard, where nobody else
    /// writes).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Snap {
        value: u32,
        outstanding: i64,
        reclaimed: u64,
        a: u64,
        b: u64,
        gone: u64,
    }

    fn snap(l: &L) -> Snap {
        Snap {
            value: l.value(),
            outstanding: l.outstanding(),
            reclaimed: l.reclaimed(),
            a: l.held_by(A),
            b: l.held_by(B),
            gone: l.held_by(GONE),
        }
    }

    /// A's fault points: dies where `DieAt` says, and notes what the ledger looked like at the
    /// first point (before any store) and whether that had changed where it died.
    struct Watch<'a> {
        l: &'a L,
        die: DieAt,
        first: Cell<Option<Snap>>,
        changed: Cell<Option<bool>>,
    }

    impl Fault for Watch<'_> {
        fn die(&self) -> bool {
            let first = match self.first.get() {
                Some(s) => s,
                None => {
                    let s = snap(self.l);
                    self.first.set(Some(s));
                    s
                }
            };
            let die = self.die.die();
            if die && self.changed.get().is_none() {
                self.changed.set(Some(snap(self.l) != first));
            }
            die
        }
    }

    /// Fault points of A's operation, and the first one at which a store outside the journal
    /// has been made (dying before it leaves nothing to see): one single-threaded run.
    fn phases(op: Op) -> (u32, u32) {
        struct Count<'a> {
            l: &'a L,
            n: Cell<u32>,
            first: Cell<Option<Snap>>,
            visible: Cell<Option<u32>>,
        }
        impl Fault for Count<'_> {
            fn die(&self) -> bool {
                let s = snap(self.l);
                match self.first.get() {
                    None => self.first.set(Some(s)),
                    Some(f) if f != s && self.visible.get().is_none() => {
                        self.visible.set(Some(self.n.get()));
                    }
                    Some(_) => {}
                }
                self.n.set(self.n.get() + 1);
                false
            }
        }
        let out = std::sync::Arc::new(std::sync::Mutex::new(None));
        let o = out.clone();
        loom::model(move || {
            let l = setup(op);
            let c = Count {
                l: &l,
                n: Cell::new(0),
                first: Cell::new(None),
                visible: Cell::new(None),
            };
            run_a(op, &l, &c).unwrap();
            *o.lock().unwrap() = Some((c.n.get(), c.visible.get().expect("a visible store")));
        });
        out.lock().unwrap().take().expect("the model ran")
    }

    const BEFORE: &str = "A died before its change became visible";
    const MID: &str = "A died mid-change (journal restored)";
    const AFTER: &str = "A died after its commit, holding the guard";
    const COMPLETED: &str = "A completed";
    const B_TOOK_OVER: &str = "B took the guard over from dead A";
    const MAIN_TOOK_OVER: &str = "main took the guard over from dead A";
    const B_HELD: &str = "A ran while B held a unit";
    const B_HELD_NONE: &str = "A ran while B held none";

    /// For every fault point `k` of A's `op` (and once with none): A runs `op` killed at `k`
    /// while B takes and gives one unit; then main, declaring A dead, reclaims. Whatever the
    /// interleaving: B's calls succeed, `value + outstanding` stays `V0` whenever the guard is
    /// free, and in the end every unit is back (`value == V0`, nothing outstanding, nobody
    /// holding), A's change undone exactly when it died before its commit.
    fn killed_at_every_store(op: Op, model: &str) {
        let (points, visible) = phases(op);
        assert!(
            0 < visible && visible + 1 < points,
            "{op:?}: {visible} / {points}"
        );
        // What main's reclaim gives back with A's change undone / kept: A held 1, and took one
        // more / gave it back / gave back GONE's unit itself.
        let (undone, kept) = match op {
            Op::Take => (1, 2),
            Op::Give => (1, 0),
            Op::Reclaim => (2, 1),
        };
        for k in 0..=points {
            let phase = if k == points {
                COMPLETED
            } else if k < visible {
                BEFORE
            } else if k + 1 < points {
                MID
            } else {
                AFTER
            };
            let others = if k == points {
                [B_HELD, B_HELD_NONE]
            } else {
                [B_TOOK_OVER, MAIN_TOOK_OVER]
            };
            let arms = arms(
                format!("{model} k={k}/{points}"),
                [phase, others[0], others[1]],
            );
            arms.check(builder(), move || {
                let l = Arc::new(setup(op));
                let dead = Arc::new(AtomicBool::new(false));
                let a = {
                    let (l, dead) = (l.clone(), dead.clone());
                    thread::spawn(move || {
                        let w = Watch {
                            l: &l,
                            die: DieAt::new(k),
                            first: Cell::new(None),
                            changed: Cell::new(None),
                        };
                        let r = run_a(op, &l, &w);
                        let died = w.die.died();
                        assert_eq!(r.err(), died.then_some(LedgerError::Died));
                        if died {
                            // Release: whoever is told "A is dead" sees A's stores.
                            dead.store(true, Ordering::Release);
                            // A sleeper on the guard asked before the death: its check slice ends.
                            futex::advance_clock();
                        }
                        (
                            died,
                            w.changed.get() == Some(true),
                            w.first.get().unwrap().b,
                        )
                    })
                };
                let b = {
                    let (l, dead) = (l.clone(), dead.clone());
                    thread::spawn(move || {
                        let took_over = Cell::new(false);
                        let live = |id: u32| {
                            // Acquire: pairs with A's Release of `dead` (A's stores are seen).
                            let alive = id != GONE && !(id == A && dead.load(Ordering::Acquire));
                            // B asks about A only as the guard's owner, and a dead A never
                            // unlocks: "dead" means B takes the guard over.
                            took_over.set(took_over.get() || (id == A && !alive));
                            alive
                        };
                        let me = caller(B, &live);
                        assert_eq!(l.take(me, 1, true, Wait::Forever), Ok(true));
                        assert_eq!(
                            l.give(me, 1, Give::ToValue { bound: V0 }, Wait::Forever),
                            Ok(())
                        );
                        took_over.get()
                    })
                };
                let (died, changed, b_held) = a.join().unwrap();
                let b_took_over = b.join().unwrap();
                if !died || b_took_over {
                    assert_eq!(i64::from(l.value()) + l.outstanding(), i64::from(V0));
                }
                // A's thread has ended: main declares it dead (killed or not) and gets back
                // everything it held.
                let live = |id: u32| id != A && id != GONE;
                let back = l
                    .reclaim_dead(caller(MAIN, &live), true, Wait::Forever)
                    .unwrap();
                assert!(back == undone || back == kept, "gave back {back}");
                let was_kept = back == kept;
                assert_eq!((l.value(), l.outstanding()), (V0, 0));
                assert_eq!((l.held_by(A), l.held_by(B), l.held_by(GONE)), (0, 0, 0));
                let by_a = u64::from(op == Op::Reclaim && was_kept);
                assert_eq!(l.reclaimed(), back + by_a);
                let seen = match (died, changed, was_kept) {
                    (false, _, true) => COMPLETED,
                    (true, false, false) => BEFORE,
                    (true, true, false) => MID,
                    (true, true, true) => AFTER,
                    other => panic!("k={k}: impossible (died, changed, kept) = {other:?}"),
                };
                assert_eq!(seen, phase, "k={k}");
                arms.hit(seen);
                if died {
                    arms.either(b_took_over, B_TOOK_OVER, MAIN_TOOK_OVER);
                } else {
                    assert!(!b_took_over);
                    arms.either(b_held == 1, B_HELD, B_HELD_NONE);
                }
            });
        }
    }

    #[test]
    fn take_killed_after_every_store() {
        killed_at_every_store(Op::Take, "take_killed_after_every_store");
    }

    #[test]
    fn give_killed_after_every_store() {
        killed_at_every_store(Op::Give, "give_killed_after_every_store");
    }

    #[test]
    fn reclaim_killed_after_every_store() {
        killed_at_every_store(Op::Reclaim, "reclaim_killed_after_every_store");
    }

    // -----------------------------------------------------------------------------------
    // RobustSemaphore

    type Sem = RobustSemaphore<Futex, 2>;

    /// Whether the calling thread slept and was woken since `before` (it never times out in
    /// these models: no deadline, and nobody moves the clock).
    fn woken_since(before: futex::Sleeps) -> bool {
        let now = futex::sleeps();
        assert_eq!(now.timed_out, before.timed_out, "no deadline: no timeout");
        now.woken > before.woken
    }

    /// One permit, two live participants racing acquire/release: never both inside, the count
    /// and the ledger back at rest afterwards, and a sleeper (on the permit word or the
    /// ledger's guard) is always woken: no deadline and no clock tick, so a lost wake-up is a
    /// loom deadlock.
    #[test]
    fn one_permit_two_threads() {
        static ARMS: Arms<2> = Arms::new("one_permit_two_threads", SLEPT);
        ARMS.check(builder(), || {
            let s = Arc::new(Sem::new_for_waiter(1, Some(1)));
            let inside = Arc::new(AtomicU32::new(0));
            let work = |s: &Sem, inside: &AtomicU32, me: u32| {
                let who = caller(me, &AlwaysAlive);
                assert_eq!(s.acquire(who, Wait::Forever), Ok(true));
                // Relaxed: the count itself is the check; the permit orders the section.
                assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                inside.fetch_sub(1, Ordering::Relaxed);
                s.release(who, 1).unwrap();
                ARMS.slept(woken_since(Default::default()));
            };
            let (s2, i2) = (s.clone(), inside.clone());
            let h = thread::spawn(move || work(&s2, &i2, 2));
            work(&s, &inside, 1);
            h.join().unwrap();
            assert_eq!((s.value(), s.ledger().outstanding()), (1, 0));
            assert_eq!((s.ledger().held_by(1), s.ledger().held_by(2)), (0, 0));
        });
    }

    /// Holder 7 takes the only permit through the ledger, killed at store `k` of its take (or
    /// not at all), then is declared dead; participant 1 is in `acquire(None)` meanwhile.
    /// Whenever 1 sleeps (on the permit word or on the guard 7 left held), a clock tick ends
    /// its check slice, and it must get the permit: taken before 7, handed back by the
    /// journal of a takeover, or given back by its reclaim; then a third participant's
    /// `reclaim_dead` finds the count whole (value 1, nothing outstanding, nobody holding).
    /// Nobody wakes 1 but the ticks: an acquire that stops asking about dead holders leaves
    /// main waiting for a question that never comes (loom fails the model on the spin).
    #[test]
    fn killed_holder_permit_reaches_a_sleeper() {
        const HOLDER: u32 = 7;
        let points = {
            let out = std::sync::Arc::new(std::sync::Mutex::new(None));
            let o = out.clone();
            loom::model(move || {
                let n = (0..100)
                    .find(|&k| {
                        let s = Sem::new_for_waiter(1, Some(1));
                        let f = DieAt::new(k);
                        let _ = s.ledger().take_with(
                            caller(HOLDER, &AlwaysAlive),
                            1,
                            true,
                            Wait::Forever,
                            &f,
                        );
                        !f.died()
                    })
                    .expect("a take ends");
                *o.lock().unwrap() = Some(n);
            });
            out.lock().unwrap().take().expect("the model ran")
        };
        for k in 0..=points {
            let third = if k < points {
                "1 took the guard over from dead 7"
            } else {
                "7's take counted (reclaimed)"
            };
            let arms = arms(
                format!("killed_holder_permit_reaches_a_sleeper k={k}/{points}"),
                [
                    "1 got the permit while 7 lived",
                    "1 got the permit after 7 died",
                    third,
                ],
            );
            arms.check(builder(), move || {
                let s = Arc::new(Sem::new_for_waiter(1, Some(1)));
                let dead = Arc::new(AtomicBool::new(false));
                let done = Arc::new(AtomicBool::new(false));
                let asked = Arc::new(AtomicU32::new(0));
                let h = {
                    let (s, dead, done) = (s.clone(), dead.clone(), done.clone());
                    let asked = asked.clone();
                    thread::spawn(move || {
                        let told_dead = Cell::new(false);
                        let live = |id: u32| {
                            // Release: main's next tick comes after this question.
                            asked.fetch_add(1, Ordering::Release);
                            // Acquire: pairs with the Release of `dead` below.
                            let alive = !(id == HOLDER && dead.load(Ordering::Acquire));
                            told_dead.set(told_dead.get() || !alive);
                            alive
                        };
                        let me = caller(1, &live);
                        assert_eq!(s.acquire(me, Wait::Forever), Ok(true));
                        // Acquire: as in `live` (what 7's death was ordered after).
                        let while_alive = !dead.load(Ordering::Acquire);
                        s.release(me, 1).unwrap();
                        // Release: main stops waiting for a sleeper once it sees this.
                        done.store(true, Ordering::Release);
                        (while_alive, told_dead.get())
                    })
                };
                let f = DieAt::new(k);
                let took =
                    s.ledger()
                        .take_with(caller(HOLDER, &AlwaysAlive), 1, true, Wait::Forever, &f);
                assert_eq!(took.is_err(), f.died());
                // Release: 1's liveness, told "dead", sees 7's stores.
                dead.store(true, Ordering::Release);
                // The clock moves only while 1 sleeps, one tick per sleep: each tick ends the
                // check slice 1 sleeps in, and 1 then asks its liveness (about the guard's
                // owner, or about 7's entry in a reclaim) before it can sleep again, so main
                // waits for that question before the next tick. 1 may sleep twice: after
                // taking the guard over in a take that finds no permit (7 died after its
                // commit), acquire sleeps a check slice before it reclaims. Acquire (both
                // loads): pairs with the Release of `done` and the counter's Release.
                while !done.load(Ordering::Acquire) {
                    if futex::parked() == 0 {
                        thread::yield_now();
                        continue;
                    }
                    let asked_before = asked.load(Ordering::Acquire);
                    futex::advance_clock();
                    while asked.load(Ordering::Acquire) == asked_before
                        && !done.load(Ordering::Acquire)
                    {
                        thread::yield_now();
                    }
                }
                let (while_alive, told_dead) = h.join().unwrap();
                arms.either(
                    while_alive,
                    "1 got the permit while 7 lived",
                    "1 got the permit after 7 died",
                );
                // 1 may have finished before 7's take began: then nobody has taken over 7's
                // guard yet. Main does, as a third participant, and gives back what 7 holds.
                let live = |id: u32| id != HOLDER;
                let back = s.reclaim_dead(caller(3, &live)).unwrap();
                // 7's take counts if it completed or was killed only after its commit (a
                // refused take, 1 holding the permit, has a single fault point: for k >= 1 it
                // returns Ok(false)).
                let counted = took == Ok(true) || (took.is_err() && k + 1 == points);
                assert_eq!(s.reclaimed(), u64::from(counted), "k={k} took={took:?}");
                // A counted permit was 7's alone from its commit on: 1, had it not been done
                // with the permit before 7's take, could only get it by reclaiming it.
                assert_eq!(
                    back,
                    u64::from(counted && while_alive),
                    "k={k} took={took:?}"
                );
                if k < points {
                    // 1 is told 7 is dead only when it takes over the guard 7 was killed
                    // holding (which comes before any reclaim of 7's permit).
                    arms.hit_if(told_dead, third);
                } else {
                    // 7 never held the guard dead (1 may still be told it is dead, about a
                    // stale guard word naming 7 as owner, and then fail its takeover CAS).
                    arms.hit_if(counted, third);
                }
                assert_eq!(
                    (s.value(), s.ledger().outstanding()),
                    (1, 0),
                    "k={k} took={took:?} while_alive={while_alive} told_dead={told_dead} {:?}",
                    s.ledger()
                );
                assert_eq!((s.ledger().held_by(1), s.ledger().held_by(HOLDER)), (0, 0));
            });
        }
    }
}
