//! Ledger and RobustSemaphore: the rule for a dead participant, the undo journal (a death after
//! every single store of every operation, and during the restore), a model-based property
//! test, and threads and processes whose permit holder dies.
//!
//! Expected values come from `Model`, the ledger's module docs written as plain arithmetic
//! (`back = max(0, held − unattributed)`, `unattributed −= min(held, unattributed)`), and the
//! hand-made scenes also spell their numbers out.
#![allow(clippy::disallowed_types)] // tests use std atomics directly
#![cfg(not(mproc_loom))] // real processes, clocks and futexes; loom models are in loom_ledger.rs

mod common;

use common::*;
use mproc_futex::fault::{DieAt, Fault, NoFault};
use mproc_futex::{
    AlwaysAlive, CHECK_INTERVAL_MAX, Caller, Deadline, Futex, Give, GiveError, LEDGER_ENTRIES,
    Ledger, LedgerError, Liveness, RobustSemaphore, Wait,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, mpsc};
use std::time::{Duration, Instant};

fn caller(id: u32, liveness: &dyn Liveness) -> Caller<'_> {
    Caller { id, liveness }
}

// ---------------------------------------------------------------------------------------
// What a test can see of a ledger, and the model it is compared with

/// Everything a ledger records that a test can see: its counts, and who holds what (ids
/// holding nothing left out).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct State {
    value: u32,
    outstanding: i64,
    unattributed: u64,
    untracked: u64,
    reclaimed: u64,
    held: BTreeMap<u32, u64>,
}

fn observe<const N: usize>(l: &Ledger<Futex, N>, ids: impl IntoIterator<Item = u32>) -> State {
    State {
        value: l.value(),
        outstanding: l.outstanding(),
        unattributed: l.unattributed(),
        untracked: l.untracked(),
        reclaimed: l.reclaimed(),
        held: ids
            .into_iter()
            .map(|id| (id, l.held_by(id)))
            .filter(|&(_, h)| h > 0)
            .collect(),
    }
}

/// How a ledger is used: as a semaphore's permits, or as a task count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// take from `value`, give into it (refused past `bound`), reclaim into it.
    Permits { bound: u32 },
    /// take without `value`, give with `Give::Consume`, reclaim into nothing.
    Tasks,
}

impl Mode {
    fn takes_from_value(self) -> bool {
        matches!(self, Mode::Permits { .. })
    }

    fn give(self) -> Give {
        match self {
            Mode::Permits { bound } => Give::ToValue { bound },
            Mode::Tasks => Give::Consume,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Take(u32),
    Give(u32),
    Reclaim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Took(bool),
    Gave(Result<(), GiveError>),
    Reclaimed(u64),
    Died,
}

/// Runs `act` on the ledger as `who` with fault points `fault`.
fn run<const N: usize>(
    l: &Ledger<Futex, N>,
    mode: Mode,
    who: Caller<'_>,
    act: Act,
    fault: &impl Fault,
) -> Outcome {
    // Never needed (the guard is free or its holder dead whenever a test calls), but a bug
    // that left it held would otherwise hang the test.
    let d = Some(Deadline::after(Duration::from_secs(10)));
    match act {
        Act::Take(n) => match l.take_with(who, n, mode.takes_from_value(), Wait::until(d), fault) {
            Ok(took) => Outcome::Took(took),
            Err(LedgerError::Died) => Outcome::Died,
            Err(e) => panic!("take: {e}"),
        },
        Act::Give(n) => match l.give_with(who, n, mode.give(), Wait::until(d), fault) {
            Err(GiveError::Ledger(LedgerError::Died)) => Outcome::Died,
            Err(GiveError::Ledger(e)) => panic!("give: {e}"),
            r => Outcome::Gave(r),
        },
        Act::Reclaim => {
            match l.reclaim_dead_with(who, mode.takes_from_value(), Wait::until(d), fault) {
                Ok(back) => Outcome::Reclaimed(back),
                Err(LedgerError::Died) => Outcome::Died,
                Err(e) => panic!("reclaim: {e}"),
            }
        }
    }
}

/// The ledger's specification (see `ledger.rs`'s module docs) as arithmetic on a [`State`].
/// `budget` counts the commits an operation may still make (every dead holder given back is
/// one, the operation's own change one more): a participant killed mid-operation leaves the
/// commits it made and loses the rest.
#[derive(Debug, Clone)]
struct Model {
    s: State,
    entries: usize,
}

fn spend(budget: &mut usize) -> bool {
    let ok = *budget > 0;
    *budget = budget.saturating_sub(1);
    ok
}

impl Model {
    fn new(value: u32, entries: usize) -> Model {
        Model {
            s: State {
                value,
                ..State::default()
            },
            entries,
        }
    }

    /// Holders other than `who` that `dead` says are dead (in id order; the ledger meets
    /// them in table order, which changes no total).
    fn dead_holders(&self, who: u32, dead: &BTreeSet<u32>) -> Vec<u32> {
        let s = &self.s;
        s.held
            .keys()
            .copied()
            .filter(|id| *id != who && dead.contains(id))
            .collect()
    }

    /// The rule, applied to each of `ids` in turn.
    fn give_back(&mut self, ids: &[u32], to_value: bool, budget: &mut usize) -> u64 {
        let mut total = 0;
        for id in ids {
            if !spend(budget) {
                break;
            }
            let h = self.s.held.remove(id).unwrap_or(0);
            let u = self.s.unattributed;
            let back = h.saturating_sub(u);
            self.s.unattributed = u - h.min(u);
            self.s.outstanding -= back as i64;
            self.s.reclaimed += back;
            if to_value {
                self.s.value = u32::try_from(u64::from(self.s.value) + back).unwrap();
            }
            total += back;
        }
        total
    }

    fn has_entry(&self, who: u32) -> bool {
        self.s.held.contains_key(&who) || self.s.held.len() < self.entries
    }

    /// `act` by `who`, meeting dead holders in `order`, within `budget` commits.
    fn apply(
        &mut self,
        mode: Mode,
        who: u32,
        act: Act,
        order: &[u32],
        budget: &mut usize,
    ) -> Outcome {
        let s = &mut self.s;
        match act {
            Act::Take(n) => {
                if mode.takes_from_value() && s.value < n {
                    return Outcome::Took(false);
                }
                if !self.has_entry(who) {
                    // Every entry held: the take gives the dead holders' units back first.
                    self.give_back(order, mode.takes_from_value(), budget);
                }
                if !spend(budget) {
                    return Outcome::Died;
                }
                let tracked = self.has_entry(who);
                let s = &mut self.s;
                if mode.takes_from_value() {
                    s.value -= n;
                }
                if !tracked {
                    s.untracked += u64::from(n);
                } else if n > 0 {
                    *s.held.entry(who).or_default() += u64::from(n);
                }
                s.outstanding += i64::from(n);
                Outcome::Took(true)
            }
            Act::Give(n) => {
                let refused = match mode {
                    Mode::Permits { bound } => s.value.checked_add(n).is_none_or(|v| v > bound),
                    Mode::Tasks => s.outstanding < i64::from(n),
                };
                if refused {
                    return Outcome::Gave(Err(GiveError::TooMany));
                }
                if !spend(budget) {
                    return Outcome::Died;
                }
                if mode.takes_from_value() {
                    s.value += n;
                }
                let h = s.held.remove(&who).unwrap_or(0);
                let from_held = h.min(u64::from(n));
                if h > from_held {
                    s.held.insert(who, h - from_held);
                }
                s.unattributed += u64::from(n) - from_held;
                s.outstanding -= i64::from(n);
                Outcome::Gave(Ok(()))
            }
            Act::Reclaim => {
                Outcome::Reclaimed(self.give_back(order, mode.takes_from_value(), budget))
            }
        }
    }

    /// `act` run to its end.
    fn apply_all(&mut self, mode: Mode, who: u32, act: Act, dead: &BTreeSet<u32>) -> Outcome {
        let order = self.dead_holders(who, dead);
        let mut budget = usize::MAX;
        self.apply(mode, who, act, &order, &mut budget)
    }

    /// Every state `act` may leave when its caller is killed somewhere inside it and the
    /// next participant undoes the interrupted commit: any set of the dead holders it met
    /// given back (the state after giving back a set does not depend on the order), then,
    /// with all of them, its own change or not.
    fn after_a_death(&self, mode: Mode, who: u32, act: Act, dead: &BTreeSet<u32>) -> Vec<State> {
        let gives_back = match act {
            Act::Take(n) => {
                let refused = mode.takes_from_value() && self.s.value < n;
                !refused && !self.has_entry(who)
            }
            Act::Give(_) => false,
            Act::Reclaim => true,
        };
        let holders = if gives_back {
            self.dead_holders(who, dead)
        } else {
            Vec::new()
        };
        assert!(holders.len() < 16, "too many dead holders: {holders:?}");
        let mut out = Vec::new();
        for set in 0..1u32 << holders.len() {
            // The holders in `set` first: the op meets them before the others.
            let first: Vec<u32> = (0..holders.len())
                .filter(|i| set >> i & 1 == 1)
                .map(|i| holders[i])
                .collect();
            let rest = holders.iter().filter(|id| !first.contains(id));
            let order: Vec<u32> = first.iter().chain(rest).copied().collect();
            for budget in [first.len(), first.len() + 1] {
                let mut m = self.clone();
                m.apply(mode, who, act, &order, &mut { budget });
                out.push(m.s);
            }
        }
        out
    }
}

/// A ledger and its model side by side; every operation runs on both and must agree.
struct Rig<const N: usize> {
    ledger: Ledger<Futex, N>,
    model: Model,
    mode: Mode,
    init: u32,
    dead: BTreeSet<u32>,
    /// Every id that ever acted (the ones whose holdings are compared).
    ids: BTreeSet<u32>,
}

impl<const N: usize> Rig<N> {
    fn new(mode: Mode, init: u32) -> Self {
        Rig {
            ledger: Ledger::with_value_for_waiter(init),
            model: Model::new(init, N),
            mode,
            init,
            dead: BTreeSet::new(),
            ids: BTreeSet::new(),
        }
    }

    fn observe(&self) -> State {
        observe(&self.ledger, self.ids.iter().copied())
    }

    /// The liveness every participant sees: the ids in `dead` are dead.
    fn liveness(&self) -> impl Fn(u32) -> bool + use<N> {
        let dead = self.dead.clone();
        move |id| !dead.contains(&id)
    }

    /// Runs `act` as `who` on the ledger only (the caller updates the model).
    fn raw(&mut self, who: u32, act: Act, fault: &impl Fault) -> Outcome {
        assert!(!self.dead.contains(&who), "{who} is dead");
        self.ids.insert(who);
        let live = self.liveness();
        run(&self.ledger, self.mode, caller(who, &live), act, fault)
    }

    /// `who` gives `n`: refused (`TooMany`), and nothing changes.
    fn assert_give_refused(&mut self, who: u32, n: u32) {
        let before = self.observe();
        assert_eq!(
            self.act(who, Act::Give(n)),
            Outcome::Gave(Err(GiveError::TooMany)),
            "{who} gives {n}"
        );
        assert_eq!(self.observe(), before, "a refused give of {n} by {who}");
    }

    /// Runs `act` as `who` on both; asserts the same outcome and the same state after.
    fn act(&mut self, who: u32, act: Act) -> Outcome {
        let got = self.raw(who, act, &NoFault);
        let want = self.model.apply_all(self.mode, who, act, &self.dead);
        assert_eq!(got, want, "{who} {act:?}");
        self.check();
        got
    }

    fn kill(&mut self, who: u32) {
        self.dead.insert(who);
    }

    /// The ledger equals the model, and the invariant of the module docs holds.
    fn check(&self) {
        let s = self.observe();
        assert_eq!(s, self.model.s, "ledger (left) and model (right) differ");
        match self.mode {
            Mode::Permits { bound } => {
                assert_eq!(
                    i64::from(s.value) + s.outstanding,
                    i64::from(self.init),
                    "value + outstanding is constant: {s:?}"
                );
                assert!(s.value <= bound, "value past the bound: {s:?}");
            }
            Mode::Tasks => {
                assert_eq!(s.value, self.init, "a task count never touches value");
                assert!(s.outstanding >= 0, "negative task count: {s:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The rule, by hand

/// Participant 1 releases 5 times holding nothing (a signal), participant 2 acquires 3 and
/// dies: those 3 were paid for by the releases, so nothing comes back and the value stays 2.
#[test]
fn signal_pattern_gives_nothing_back() {
    let mut r = Rig::<LEDGER_ENTRIES>::new(Mode::Permits { bound: u32::MAX }, 0);
    for _ in 0..5 {
        r.act(1, Act::Give(1));
    }
    for _ in 0..3 {
        assert_eq!(r.act(2, Act::Take(1)), Outcome::Took(true));
    }
    assert_eq!((r.ledger.value(), r.ledger.outstanding()), (2, -2));
    assert_eq!(r.observe().unattributed, 5);
    r.kill(2);
    assert_eq!(r.act(1, Act::Reclaim), Outcome::Reclaimed(0));
    assert_eq!(r.ledger.value(), 2);
    assert_eq!(r.ledger.held_by(2), 0);
    assert_eq!(r.observe().unattributed, 2); // 5 − min(3, 5)
    assert_eq!(r.ledger.reclaimed(), 0);
}

/// Bounded at 2: A and C acquire, B (holding none) releases — on behalf of somebody. A dies:
/// B's release is taken to be A's, nothing comes back. C dies: its permit comes back, and the
/// value is at the bound again, never past it.
#[test]
fn resource_pattern_never_passes_the_bound() {
    const A: u32 = 1;
    const B: u32 = 2;
    const C: u32 = 3;
    let mut r = Rig::<LEDGER_ENTRIES>::new(Mode::Permits { bound: 2 }, 2);
    r.act(A, Act::Take(1));
    r.act(C, Act::Take(1));
    assert_eq!(r.act(B, Act::Give(1)), Outcome::Gave(Ok(())));
    assert_eq!(r.ledger.value(), 1);
    r.kill(A);
    assert_eq!(r.act(B, Act::Reclaim), Outcome::Reclaimed(0));
    assert_eq!(r.ledger.held_by(A), 0);
    r.kill(C);
    assert_eq!(r.act(B, Act::Reclaim), Outcome::Reclaimed(1));
    assert_eq!((r.ledger.value(), r.ledger.outstanding()), (2, 0));
    assert_eq!(r.ledger.reclaimed(), 1);
    // At the bound: one more release is refused.
    r.assert_give_refused(B, 1);
}

/// The same resource pattern through RobustSemaphore's own calls.
#[test]
fn robust_semaphore_resource_pattern() {
    let sem: RobustSemaphore = RobustSemaphore::new(2, Some(2));
    let dead = std::cell::RefCell::new(BTreeSet::new());
    let live = |id: u32| !dead.borrow().contains(&id);
    let (a, b, c) = (caller(1, &live), caller(2, &live), caller(3, &live));
    assert!(sem.try_acquire(a).unwrap());
    assert!(sem.try_acquire(c).unwrap());
    assert!(!sem.try_acquire(b).unwrap());
    sem.release(b, 1).unwrap();
    dead.borrow_mut().insert(1);
    assert_eq!(sem.reclaim_dead(b).unwrap(), 0);
    dead.borrow_mut().insert(3);
    assert_eq!(sem.reclaim_dead(b).unwrap(), 1);
    assert_eq!((sem.value(), sem.bound(), sem.reclaimed()), (2, 2, 1));
    assert_eq!(sem.release(b, 1), Err(GiveError::TooMany));
    assert_eq!(sem.value(), 2);
}

/// `Give::Consume` (a task count's `task_done`) is refused while nothing is outstanding, and
/// for more than is outstanding; nothing changes.
#[test]
fn consume_refuses_more_than_outstanding() {
    let mut r = Rig::<LEDGER_ENTRIES>::new(Mode::Tasks, 0);
    r.assert_give_refused(1, 1);
    assert_eq!(r.observe(), State::default());
    r.act(2, Act::Take(2));
    r.assert_give_refused(1, 3);
    // By a non-holder: allowed, counted as unattributed.
    assert_eq!(r.act(1, Act::Give(2)), Outcome::Gave(Ok(())));
    assert_eq!(r.ledger.outstanding(), 0);
    assert_eq!(r.observe().unattributed, 2);
    r.assert_give_refused(2, 1);
}

/// A BoundedSemaphore-style give past the bound is refused and changes nothing (neither the
/// value nor the giver's holdings nor unattributed), also for a give of several where some
/// would fit.
#[test]
fn give_past_the_bound_changes_nothing() {
    let mut r = Rig::<LEDGER_ENTRIES>::new(Mode::Permits { bound: 3 }, 3);
    r.act(1, Act::Take(2));
    let before = r.observe();
    for n in [3, 4, u32::MAX] {
        r.assert_give_refused(1, n);
    }
    r.assert_give_refused(2, 3);
    assert_eq!(r.observe(), before);
    assert_eq!(r.act(1, Act::Give(2)), Outcome::Gave(Ok(())));
    assert_eq!(r.ledger.value(), 3);
}

/// With two entries, a third live taker is untracked: its units are counted (outstanding)
/// but not attributed, and not given back when it dies.
#[test]
fn third_holder_of_two_entries_is_untracked() {
    let mut r = Rig::<2>::new(Mode::Permits { bound: u32::MAX }, 5);
    r.act(1, Act::Take(1));
    r.act(2, Act::Take(1));
    r.act(3, Act::Take(2));
    let s = r.observe();
    assert_eq!((s.value, s.outstanding, s.untracked), (1, 4, 2));
    assert_eq!(r.ledger.held_by(3), 0);
    r.kill(3);
    assert_eq!(r.act(1, Act::Reclaim), Outcome::Reclaimed(0));
    assert_eq!(r.ledger.value(), 1);
    // The tracked ones still come back.
    r.kill(2);
    assert_eq!(r.act(1, Act::Reclaim), Outcome::Reclaimed(1));
    assert_eq!(r.ledger.value(), 2);
}

/// A dead participant's entry is freed by `reclaim_dead` and the next taker gets it (tracked,
/// so its units come back when it dies in turn).
#[test]
fn dead_entry_is_freed_and_reused() {
    let mut r = Rig::<1>::new(Mode::Permits { bound: 2 }, 2);
    r.act(5, Act::Take(1));
    r.kill(5);
    assert_eq!(r.act(1, Act::Reclaim), Outcome::Reclaimed(1));
    assert_eq!(r.ledger.held_by(5), 0);
    r.act(6, Act::Take(1));
    assert_eq!(r.ledger.held_by(6), 1);
    assert_eq!(r.observe().untracked, 0);
    r.kill(6);
    assert_eq!(r.act(1, Act::Reclaim), Outcome::Reclaimed(1));
    assert_eq!((r.ledger.value(), r.ledger.reclaimed()), (2, 2));
}

/// SOURCE BUG (see the report of the commit adding this file): when every entry is held, a
/// take first gives the dead holders' units back (`reclaim_entries`) and then writes
/// `value − n` computed from the value it read *before* that give-back, so the permits just
/// returned to `value` are overwritten and lost (`value + outstanding` drops by them).
/// Here: one entry, 5 takes a permit and dies, 6 takes one: 5's permit must come back first,
/// leaving value 1; the ledger leaves 0 (and reclaimed says 1 came back).
#[test]
fn take_into_a_full_table_keeps_the_dead_holders_permits() {
    let mut r = Rig::<1>::new(Mode::Permits { bound: 2 }, 2);
    r.act(5, Act::Take(1));
    r.kill(5);
    r.act(6, Act::Take(1)); // Rig::act compares with the model: value 1 expected
    assert_eq!(r.ledger.held_by(6), 1);
    assert_eq!((r.ledger.value(), r.ledger.reclaimed()), (1, 1));
}

// ---------------------------------------------------------------------------------------
// A death after every store

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dying {
    Take,
    Give,
    Consume,
    Reclaim,
}

const DYING: u32 = 7;

/// The scene of `dying_at_every_store`: 7 holds 3, 2 holds 2, 3 holds 2, 4 (holding none)
/// gave 1; for `Reclaim`, 3 is dead. Returns the rig and what 7 does.
fn dying_scene(op: Dying) -> (Rig<LEDGER_ENTRIES>, Act) {
    let mode = match op {
        Dying::Consume => Mode::Tasks,
        _ => Mode::Permits { bound: 10 },
    };
    let mut r = Rig::new(mode, if op == Dying::Consume { 0 } else { 10 });
    r.act(DYING, Act::Take(3));
    r.act(2, Act::Take(2));
    r.act(3, Act::Take(2));
    r.act(4, Act::Give(1));
    let s = r.observe();
    assert_eq!((s.outstanding, s.unattributed), (6, 1));
    assert_eq!(s.value, if op == Dying::Consume { 0 } else { 4 });
    let act = match op {
        Dying::Take => Act::Take(1),
        Dying::Give | Dying::Consume => Act::Give(1),
        Dying::Reclaim => {
            r.kill(3);
            Act::Reclaim
        }
    };
    (r, act)
}

/// How many fault points `op` passes in its scene (the first `k` at which `DieAt` no longer
/// stops it).
fn fault_points(op: Dying) -> u32 {
    (0..1000)
        .find(|&k| {
            let (mut r, act) = dying_scene(op);
            let fault = DieAt::new(k);
            r.raw(DYING, act, &fault);
            !fault.died()
        })
        .expect("an operation ends")
}

/// 7 runs `op` and is killed at its `k`-th store, for every `k` (and once not at all). While
/// 7 is alive its guard keeps everyone out; declared dead, participant 1's next take takes the
/// guard over and undoes the interrupted change — unless 7 died only after committing, before
/// unlocking — and 1's `reclaim_dead` gives back what 7 held by the rule.
fn dying_at_every_store(op: Dying) {
    let points = fault_points(op);
    assert!(points > 10, "{op:?}: only {points} fault points");
    // What 1's reclaim returns, with 7's change undone / kept (see `dying_scene`): 7 held 3
    // and 1 unit is unattributed; 7 takes one more / gives one back / gives back 3's
    // 2 − 1 = 1.
    let (back_undone, back_done) = match op {
        Dying::Take => (2, 3),
        Dying::Give | Dying::Consume => (2, 1),
        Dying::Reclaim => (4, 3),
    };
    for k in 0..=points {
        let (mut r, act) = dying_scene(op);
        let before = r.model.s.clone();
        let mut done = r.model.clone();
        let want = done.apply_all(r.mode, DYING, act, &r.dead);
        let fault = DieAt::new(k);
        let got = r.raw(DYING, act, &fault);
        assert_eq!(fault.died(), k < points);
        if k < points {
            assert_eq!(got, Outcome::Died, "{op:?} k={k}");
            // The dead op's guard is held: a participant that thinks 7 alive cannot get in.
            let live = r.liveness();
            let d = Some(Deadline::after(Duration::ZERO));
            assert_eq!(
                r.ledger.take(
                    caller(1, &live),
                    1,
                    r.mode.takes_from_value(),
                    Wait::until(d)
                ),
                Err(LedgerError::Timeout),
                "{op:?} k={k}: the guard of a killed operation stays held"
            );
        } else {
            assert_eq!(got, want, "{op:?} completed");
        }
        r.kill(DYING);
        // Undone, unless 7 died at its very last fault point (after the commit) or not at all.
        let kept = k + 1 >= points;
        r.model.s = if kept { done.s.clone() } else { before.clone() };
        r.ids.insert(1);
        let take = Act::Take(1);
        let mut m = r.model.clone();
        assert_eq!(
            r.raw(1, take, &NoFault),
            m.apply_all(r.mode, 1, take, &r.dead)
        );
        r.model = m;
        r.check(); // the takeover restored exactly the expected state
        let after = r.observe();
        match r.mode {
            Mode::Permits { .. } => assert_eq!(
                i64::from(after.value) + after.outstanding,
                i64::from(before.value) + before.outstanding
            ),
            Mode::Tasks => assert_eq!(
                after.outstanding,
                before.outstanding + 1 - i64::from(kept && op == Dying::Consume)
            ),
        }
        let back = r.act(1, Act::Reclaim);
        assert_eq!(
            back,
            Outcome::Reclaimed(if kept { back_done } else { back_undone }),
            "{op:?} k={k}"
        );
        assert_eq!(r.ledger.held_by(DYING), 0);
        let end = r.observe();
        match op {
            Dying::Take | Dying::Give => assert_eq!((end.value, end.outstanding), (5, 5)),
            Dying::Reclaim => assert_eq!((end.value, end.outstanding), (7, 3)),
            Dying::Consume => assert_eq!((end.value, end.outstanding), (0, 5)),
        }
    }
}

#[test]
fn every_operation_dying_at_every_store() {
    for op in [Dying::Take, Dying::Give, Dying::Consume, Dying::Reclaim] {
        dying_at_every_store(op);
    }
}

/// 7 dies at every store of `op`; then 1, taking the guard over, dies at every store of its
/// restore and of its own take; then 2 takes over (restoring again where 1's restore was cut
/// short: restoring is idempotent) and reclaims both. Exact state against the model.
fn dying_twice(op: Dying) {
    let points = fault_points(op);
    let mut points1_seen = BTreeSet::new();
    for k in 0..points {
        let kept7 = k + 1 == points;
        // 7 killed at its `k`-th store, then 1's take killed at its `j`-th (the model holds the
        // state after 7's death, undone or kept).
        let scene = |j: u32| {
            let (mut r, act) = dying_scene(op);
            let mut m7 = r.model.clone();
            m7.apply_all(r.mode, DYING, act, &r.dead);
            assert_eq!(r.raw(DYING, act, &DieAt::new(k)), Outcome::Died);
            r.kill(DYING);
            if kept7 {
                r.model = m7;
            }
            let f1 = DieAt::new(j);
            let got = r.raw(1, Act::Take(1), &f1);
            (r, got, f1.died())
        };
        let points1 = (0..1000).find(|&j| !scene(j).2).expect("a take ends");
        points1_seen.insert(points1);
        for j in 0..=points1 {
            let (mut r, got, died1) = scene(j);
            assert_eq!(died1, j < points1);
            let mut m1 = r.model.clone();
            let want = m1.apply_all(r.mode, 1, Act::Take(1), &r.dead);
            assert_eq!(got, if died1 { Outcome::Died } else { want });
            // 1's take stands if it died only after its commit, or not at all.
            if j + 1 >= points1 {
                r.model = m1;
            }
            r.kill(1);
            r.act(2, Act::Take(1)); // takes over from 1 and restores: exact state
            assert!(matches!(r.act(2, Act::Reclaim), Outcome::Reclaimed(_)));
            assert_eq!((r.ledger.held_by(1), r.ledger.held_by(DYING)), (0, 0));
        }
    }
    // 1's take has more fault points (its restore's) when 7 died with the journal active.
    assert!(
        points1_seen.len() > 1,
        "{op:?}: no death during a restore was tried ({points1_seen:?})"
    );
}

#[test]
fn take_give_and_reclaim_dying_then_restorer_dying() {
    for op in [Dying::Take, Dying::Give, Dying::Reclaim] {
        dying_twice(op);
    }
}

// ---------------------------------------------------------------------------------------
// Random sequences against the model

#[derive(Debug, Clone)]
enum Step {
    /// Participant slot `who` does `act`; with `die_at`, it runs with `DieAt(k)` and is
    /// declared dead right after (a fresh participant takes the slot).
    Act {
        who: usize,
        act: Act,
        die_at: Option<u32>,
    },
    /// The participant in slot `who` dies between operations.
    Die { who: usize },
}

fn step() -> impl Strategy<Value = Step> {
    let act = prop_oneof![
        3 => (0u32..3).prop_map(Act::Take),
        3 => (0u32..3).prop_map(Act::Give),
        1 => Just(Act::Reclaim),
    ];
    prop_oneof![
        6 => (0usize..3, act.clone()).prop_map(|(who, act)| Step::Act { who, act, die_at: None }),
        2 => (0usize..3, act, 0u32..40)
            .prop_map(|(who, act, k)| Step::Act { who, act, die_at: Some(k) }),
        1 => (0usize..3).prop_map(|who| Step::Die { who }),
    ]
}

fn mode() -> impl Strategy<Value = (Mode, u32)> {
    prop_oneof![
        (0u32..4).prop_map(|v| (Mode::Permits { bound: v }, v)),
        (0u32..4).prop_map(|v| (Mode::Permits { bound: u32::MAX }, v)),
        Just((Mode::Tasks, 0)),
    ]
}

/// Three participant slots run `steps`; the ledger must match the model after every step.
/// A participant killed inside an operation leaves one of the states `Model::after_a_death`
/// lists (seen through a probe: a take the ledger must refuse, which takes the guard over).
fn against_model<const N: usize>(mode: Mode, init: u32, steps: &[Step]) {
    let mut r = Rig::<N>::new(mode, init);
    let mut slots = [1, 2, 3];
    let mut next = 4;
    for step in steps {
        match *step {
            Step::Die { who } => {
                r.kill(slots[who]);
                slots[who] = next;
                next += 1;
            }
            Step::Act {
                who,
                act,
                die_at: None,
            } => {
                r.act(slots[who], act);
            }
            Step::Act {
                who,
                act,
                die_at: Some(k),
            } => {
                let id = slots[who];
                let before = r.model.s.clone();
                let mut done = r.model.clone();
                let want = done.apply_all(mode, id, act, &r.dead);
                let states = r.model.after_a_death(mode, id, act, &r.dead);
                let fault = DieAt::new(k);
                let got = r.raw(id, act, &fault);
                r.kill(id);
                slots[who] = next;
                next += 1;
                if !fault.died() {
                    assert_eq!(got, want, "{id} {act:?}");
                    r.model = done;
                } else {
                    assert_eq!(got, Outcome::Died);
                    let probe = slots[who];
                    r.ids.insert(probe);
                    let live = r.liveness();
                    let d = Some(Deadline::after(Duration::from_secs(10)));
                    assert_eq!(
                        r.ledger
                            .take(caller(probe, &live), u32::MAX, true, Wait::until(d)),
                        Ok(false)
                    );
                    let seen = r.observe();
                    assert!(
                        states.contains(&seen),
                        "{id} killed in {act:?} at {k}: {seen:?} is none of {states:?}"
                    );
                    if k == 0 {
                        assert_eq!(seen, before, "killed before its first store");
                    }
                    r.model.s = seen;
                }
                r.check();
            }
        }
    }
    // Everybody dies; one last participant gets everything tracked back (and `check` says
    // the count is whole: value = init − untracked + what unattributed is left).
    for id in slots {
        r.kill(id);
    }
    r.act(next, Act::Reclaim);
    let s = r.observe();
    assert!(s.held.is_empty(), "{s:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A table big enough for everyone: the rule, the journal and refusals.
    #[test]
    fn matches_model_big_table(
        (mode, init) in mode(),
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        against_model::<LEDGER_ENTRIES>(mode, init, &steps);
    }

    /// Two entries for three participants and their successors: untracked takes, and takes
    /// that must first give the dead holders' units back.
    #[test]
    fn matches_model_two_entries(
        (mode, init) in mode(),
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        against_model::<2>(mode, init, &steps);
    }

    /// Two entries in a task count, where a take's give-back does not touch `value`.
    #[test]
    fn matches_model_two_entries_tasks(
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        against_model::<2>(Mode::Tasks, 0, &steps);
    }
}

// ---------------------------------------------------------------------------------------
// RobustSemaphore: deadlines, threads, processes

#[test]
fn acquire_deadline_times_out() {
    let sem: RobustSemaphore = RobustSemaphore::new(0, None);
    let me = caller(1, &AlwaysAlive);
    assert_eq!(with_deadline_kept(40, |w| sem.acquire(me, w)), Ok(false));
    // Held by a live participant: still a timeout, and its permit is left alone.
    let sem: RobustSemaphore = RobustSemaphore::new(1, Some(1));
    assert!(sem.try_acquire(caller(7, &AlwaysAlive)).unwrap());
    let t = Instant::now();
    assert_eq!(
        sem.acquire(me, Wait::Until(Deadline::after(Duration::from_millis(40)))),
        Ok(false)
    );
    assert!(t.elapsed() >= Duration::from_millis(40));
    assert_eq!((sem.value(), sem.reclaimed()), (0, 0));
    assert_eq!(sem.ledger().held_by(7), 1);
}

/// A thread asleep in `acquire(None)` gets the permit of a holder declared dead after it
/// took it, within a few check intervals.
#[test]
fn sleeper_gets_the_permit_of_a_holder_declared_dead() {
    let sem: Arc<RobustSemaphore> = Arc::new(RobustSemaphore::new(1, Some(1)));
    let dead = Arc::new(AtomicBool::new(false));
    assert!(sem.try_acquire(caller(7, &AlwaysAlive)).unwrap());
    let (tx, rx) = mpsc::channel();
    let (s, d) = (sem.clone(), dead.clone());
    std::thread::spawn(move || {
        // Acquire: pairs with the Release below, as a real liveness answer follows the death.
        let live = move |id: u32| !(id == 7 && d.load(Ordering::Acquire));
        let r = s.acquire(caller(1, &live), Wait::Forever);
        let _ = tx.send((r, Instant::now()));
    });
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        rx.try_recv().is_err(),
        "got a permit while its holder lived"
    );
    let died_at = Instant::now();
    // Release: publishes "dead" to the sleeper's liveness (pairs with its Acquire).
    dead.store(true, Ordering::Release);
    let (r, at) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the sleeper never got the dead holder's permit");
    assert_eq!(r, Ok(true));
    let delay = at - died_at;
    assert!(
        delay < CHECK_INTERVAL_MAX + Duration::from_secs(2),
        "{delay:?}"
    );
    assert_eq!((sem.value(), sem.reclaimed()), (0, 1));
    assert_eq!((sem.ledger().held_by(1), sem.ledger().held_by(7)), (1, 0));
}

/// Threads hammering a 2-permit RobustSemaphore (AlwaysAlive): never more than 2 inside, and
/// the count and the ledger are back to rest at the end.
#[test]
fn threads_never_exceed_permits() {
    const PERMITS: u32 = 2;
    let iters = mproc_testkit::iterations(500, 5_000);
    let sem: Arc<RobustSemaphore> = Arc::new(RobustSemaphore::new(PERMITS, Some(PERMITS)));
    let inside = Arc::new(AtomicU32::new(0));
    let (tx, rx) = mpsc::channel();
    for me in 1..=4 {
        let (sem, inside, tx) = (sem.clone(), inside.clone(), tx.clone());
        std::thread::spawn(move || {
            let who = caller(me, &AlwaysAlive);
            for _ in 0..iters {
                let d = Some(Deadline::after(Duration::from_secs(10)));
                assert_eq!(sem.acquire(who, Wait::until(d)), Ok(true));
                assert!(inside.fetch_add(1, Ordering::SeqCst) < PERMITS);
                inside.fetch_sub(1, Ordering::SeqCst);
                sem.release(who, 1).unwrap();
            }
            let _ = tx.send(me);
        });
    }
    drop(tx);
    for _ in 0..4 {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a worker did not finish (or panicked)");
    }
    assert_eq!(sem.value(), PERMITS);
    assert_eq!(sem.ledger().outstanding(), 0);
    assert!((1..=4).all(|id| sem.ledger().held_by(id) == 0));
}

#[repr(C)]
struct SemScene {
    sem: RobustSemaphore,
    ready: AtomicU32,
}

/// The liveness of a parent whose participant `CHILD` is the process `pid`: dead once the
/// child has exited (zombie or reaped).
fn child_liveness(pid: libc::pid_t) -> impl Fn(u32) -> bool {
    move |id| id != CHILD || !has_exited(pid)
}

const CHILD: u32 = 2;

/// A deadline no test should reach (every wait is bounded).
fn soon() -> Option<Deadline> {
    Some(Deadline::after(Duration::from_secs(10)))
}

/// A child process takes the only permit and exits without releasing it; the parent, asking
/// the kernel about the child's pid, gets the permit back through `acquire`.
#[test]
fn exited_process_permit_comes_back() {
    let _g = FORK_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let s: &'static SemScene = shared_zeroed();
    s.sem.init(1, Some(1));
    let child = fork(
        move || match s.sem.try_acquire(caller(CHILD, &AlwaysAlive)) {
            Ok(true) => 0,
            _ => 2,
        },
    );
    wait_until(Duration::from_secs(10), || has_exited(child));
    assert_eq!(s.sem.ledger().held_by(CHILD), 1);
    let live = child_liveness(child);
    let me = caller(1, &live);
    let d = Some(Deadline::after(Duration::from_secs(10)));
    assert_eq!(s.sem.acquire(me, Wait::until(d)), Ok(true));
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
    assert_eq!((s.sem.value(), s.sem.reclaimed()), (0, 1));
    assert_eq!(s.sem.ledger().held_by(CHILD), 0);
    s.sem.release(me, 1).unwrap();
    assert_eq!(s.sem.value(), 1);
}

/// The parent is already asleep in `acquire` when the child holding the permit is SIGKILLed:
/// it gets the permit within a few check intervals.
#[test]
fn sigkilled_process_permit_reaches_a_sleeper() {
    let _g = FORK_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let s: &'static SemScene = shared_zeroed();
    s.sem.init(1, Some(1));
    let child = fork(move || {
        if s.sem.try_acquire(caller(CHILD, &AlwaysAlive)) != Ok(true) {
            return 2;
        }
        // Release: the parent sees the permit taken once it sees `ready`.
        s.ready.store(1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    // Acquire: pairs with the child's Release of `ready`.
    wait_until(Duration::from_secs(10), || {
        s.ready.load(Ordering::Acquire) == 1
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let live = child_liveness(child);
        let d = Some(Deadline::after(Duration::from_secs(20)));
        let r = s.sem.acquire(caller(1, &live), Wait::until(d));
        let _ = tx.send((r, Instant::now()));
    });
    std::thread::sleep(Duration::from_millis(60));
    let alive_check = rx.try_recv();
    let killed_at = Instant::now();
    kill(child);
    let got = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Signal(libc::SIGKILL));
    assert!(alive_check.is_err(), "got a permit while its holder lived");
    let (r, at) = got.expect("the sleeper never got the killed holder's permit");
    assert_eq!(r, Ok(true));
    let delay = at - killed_at;
    println!("RobustSemaphore: permit of a SIGKILLed holder reached a sleeper after {delay:?}");
    assert!(
        delay < CHECK_INTERVAL_MAX + Duration::from_secs(2),
        "{delay:?}"
    );
    assert_eq!((s.sem.value(), s.sem.reclaimed()), (0, 1));
    assert_eq!(
        (s.sem.ledger().held_by(1), s.sem.ledger().held_by(CHILD)),
        (1, 0)
    );
}

/// A child process killed inside a ledger take (a fault point after each store, then
/// `_exit` with the guard held): the parent takes the guard over, the journal undoes the
/// half-made take (or, killed after the commit, keeps it and `reclaim_dead` gives it back),
/// and no permit is lost.
#[test]
fn process_killed_inside_take() {
    let _g = FORK_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let points = (0..100)
        .find(|&k| {
            let l: Ledger = Ledger::with_value(2);
            let f = DieAt::new(k);
            let _ = l.take_with(
                caller(CHILD, &AlwaysAlive),
                1,
                true,
                Wait::until(soon()),
                &f,
            );
            !f.died()
        })
        .expect("a take ends");
    for k in 0..points {
        let l: &'static Ledger = shared_zeroed();
        l.init(2);
        let child = fork(move || {
            let f = DieAt::new(k);
            match l.take_with(
                caller(CHILD, &AlwaysAlive),
                1,
                true,
                Wait::until(soon()),
                &f,
            ) {
                Err(LedgerError::Died) => 0,
                _ => 2,
            }
        });
        assert_eq!(wait_child(child, CHILD_TIMEOUT), End::Code(0));
        let live = child_liveness(child);
        let me = caller(1, &live);
        let kept = k + 1 == points;
        // Asking about the child: with AlwaysAlive this take would time out behind the guard
        // the child died holding.
        let d = Some(Deadline::after(Duration::from_secs(10)));
        assert_eq!(l.take(me, 1, true, Wait::until(d)), Ok(true), "k={k}");
        assert_eq!(l.value(), if kept { 0 } else { 1 }, "k={k}");
        assert_eq!(
            l.reclaim_dead(me, true, Wait::until(d)),
            Ok(u64::from(kept)),
            "k={k}"
        );
        assert_eq!((l.value(), l.outstanding(), l.held_by(CHILD)), (1, 1, 0));
    }
}
