//! `mproc::Value`, `RawValue` and `AtomicValue` across real processes: Python's `_TestValue`
//! (`test_value`, `test_rawvalue`, `test_getobj_getlock`), exact counting under the lock,
//! a holder that dies holding the lock (owner death carries the guard), named values with
//! their type checked, a spawned child, and many values from the pool. Every wait is bounded.

mod common;

use common::{
    INCREMENTS_PER_CHILD, LONG, join_all_ok, join_ok, kill_and_reap, owner_died, start_children,
    start_doomed,
};

use std::time::Duration;

use mproc::sync::{AcquireError, LockOptions};
use mproc::{AtomicValue, Lock, OpenError, Process, RawValue, StartMethod, Value};

/// Python's `codes_values`: ('i', 4343, 24234), ('d', 3.625, -4.25), ('h', -232, 234),
/// ('q', 2**33, 2**34), ('c', b'x', b'y').
type Values = (Value<i32>, Value<f64>, Value<i16>, Value<i64>, Value<u8>);

fn set_second((i, d, h, q, c): Values) {
    i.set(24234).unwrap();
    d.set(-4.25).unwrap();
    h.set(234).unwrap();
    q.set(1 << 34).unwrap();
    c.set(b'y').unwrap();
}
mproc::entry!(set_second);

fn check_value_parity(method: StartMethod) {
    let values: Values = (
        Value::new(4343).unwrap(),
        Value::new(3.625).unwrap(),
        Value::new(-232).unwrap(),
        Value::new(1 << 33).unwrap(),
        Value::new(b'x').unwrap(),
    );
    assert_eq!(values.0.get().unwrap(), 4343);
    assert_eq!(values.1.get().unwrap(), 3.625);
    assert_eq!(values.2.get().unwrap(), -232);
    assert_eq!(values.3.get().unwrap(), 1 << 33);
    assert_eq!(values.4.get().unwrap(), b'x');
    let mut p = Process::new(set_second, values.clone()).start_method(method);
    p.start().unwrap();
    join_ok(&p);
    assert_eq!(values.0.get().unwrap(), 24234);
    assert_eq!(values.1.get().unwrap(), -4.25);
    assert_eq!(values.2.get().unwrap(), 234);
    assert_eq!(values.3.get().unwrap(), 1 << 34);
    assert_eq!(values.4.get().unwrap(), b'y');
}

common::each_start_method! { check_value_parity => value_parity_with_python }

/// Python's `test_rawvalue`.
#[test]
fn rawvalue_parity_with_python() {
    let (i, d) = (
        RawValue::new(4343i32).unwrap(),
        RawValue::new(3.625f64).unwrap(),
    );
    assert_eq!((i.get(), d.get()), (4343, 3.625));
    let mut p = Process::new(
        |(i, d): (RawValue<i32>, RawValue<f64>)| {
            i.set(24234);
            d.set(-4.25);
        },
        (i.clone(), d.clone()),
    );
    p.start().unwrap();
    join_ok(&p);
    assert_eq!((i.get(), d.get()), (24234, -4.25));
}

/// Python's `test_getobj_getlock`: a value's own lock, and a lock shared by several values.
#[test]
fn get_lock_and_a_shared_lock() {
    let v = Value::new(5i32).unwrap();
    assert!(!v.get_lock().is_locked());
    {
        let g = v.lock().unwrap();
        assert_eq!(*g, 5);
        assert!(v.get_lock().is_locked());
        assert!(matches!(v.try_lock(), Err(AcquireError::WouldBlock)));
    }
    let lock = Lock::new().unwrap();
    let a = Value::with_lock(1u32, lock.clone()).unwrap();
    let b = Value::with_lock(2u32, lock.clone()).unwrap();
    let _held = a.lock().unwrap();
    assert!(lock.is_locked());
    assert!(matches!(b.try_lock(), Err(AcquireError::WouldBlock)));
    assert!(matches!(
        b.lock_timeout(Duration::from_millis(20)),
        Err(AcquireError::Timeout)
    ));
}

/// Python's documented pitfall: `v.value += 1` in 4 processes loses updates; the guard (and
/// `update`) hold the lock across the read-modify-write, and atomics need no lock.
#[test]
fn processes_count_exactly_under_the_lock_and_with_atomics() {
    let per = INCREMENTS_PER_CHILD;
    let counter = Value::new(0u64).unwrap();
    let atomic = AtomicValue::new(0u64).unwrap();
    let children = start_children(
        3,
        (counter.clone(), atomic.clone()),
        move |(c, a): (Value<u64>, AtomicValue<u64>)| {
            for i in 0..per {
                if i % 2 == 0 {
                    *c.lock().unwrap() += 1;
                } else {
                    c.update(|v| *v += 1).unwrap();
                }
                a.fetch_add(1);
            }
        },
    );
    join_all_ok(&children);
    assert_eq!(counter.get().unwrap(), 3 * per);
    assert_eq!(atomic.load(), 3 * per);
}

/// A process dies holding the value's lock, halfway through a two-word update: the next
/// locker is told, gets the guard, sees the half-written data, repairs it and marks it
/// consistent; the lock then works as before.
#[test]
fn owner_death_hands_over_the_guard_with_half_written_data() {
    let pair = Value::new([0u64; 2]).unwrap();
    let p = start_doomed(&pair, |pair| {
        let mut g = pair.lock().unwrap();
        g[0] = 1; // ... and dies before writing g[1]
        std::mem::forget(g);
    });
    kill_and_reap(&p);
    match pair.lock_timeout(LONG) {
        Err(AcquireError::OwnerDied(mut g)) => {
            assert_eq!(*g, [1, 0], "the dead holder's half-written data");
            g[1] = 1; // repair
            g.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(pair.get().unwrap(), [1, 1]);
    pair.set([2, 2]).unwrap();
    assert_eq!(pair.get().unwrap(), [2, 2]);
}

#[test]
fn owner_death_not_marked_consistent_poisons_until_cleared() {
    let v = Value::new(7u32).unwrap();
    let mut p = Process::new(
        |(v,): (Value<u32>,)| std::mem::forget(v.lock().unwrap()),
        (v.clone(),),
    );
    p.start().unwrap();
    join_ok(&p);
    let g = owner_died(v.lock_timeout(LONG));
    drop(g); // not marked consistent
    assert!(matches!(v.get(), Err(AcquireError::OwnerDied(_))));
    assert!(matches!(v.set(8), Err(AcquireError::OwnerDied(_))));
    assert!(v.get_lock().is_poisoned());
    v.get_lock().clear_poison();
    assert_eq!(v.get().unwrap(), 7, "nothing was written while poisoned");
}

#[test]
fn owner_death_not_marked_consistent_with_a_strict_lock_is_not_recoverable() {
    let strict = Lock::with_options(LockOptions::new().strict_recovery(true)).unwrap();
    let v = Value::with_lock(7u32, strict).unwrap();
    let mut p = Process::new(
        |(v,): (Value<u32>,)| std::mem::forget(v.lock().unwrap()),
        (v.clone(),),
    );
    p.start().unwrap();
    join_ok(&p);
    drop(owner_died(v.lock_timeout(LONG)));
    assert!(matches!(v.get(), Err(AcquireError::NotRecoverable)));
}

#[test]
fn named_values_open_by_name_with_their_type_checked() {
    let name = format!("mproc-test-value-{}", std::process::id());
    let v = Value::create_named(&name, 41u64).unwrap();
    let opened: Value<u64> = Value::open_named(&name).unwrap();
    opened.update(|x| *x += 1).unwrap();
    assert_eq!(v.get().unwrap(), 42);
    // Opening a Value<u64> as a Value<i32> is a clear error, not a reinterpretation.
    let err = Value::<i32>::open_named(&name).unwrap_err();
    assert!(matches!(err, OpenError::WrongType { .. }), "{err}");
    assert!(err.to_string().contains("Value<i32>"), "{err}");
    // ... and so is opening it as another kind of object.
    assert!(matches!(
        RawValue::<u64>::open_named(&name),
        Err(OpenError::WrongType { .. })
    ));
    assert!(
        Value::<u64>::create_named(&name, 0).is_err(),
        "name collision"
    );
    Value::<u64>::unlink_named(&name).unwrap();
    assert!(Value::<u64>::open_named(&name).is_err());

    let aname = format!("mproc-test-atomic-{}", std::process::id());
    let a = AtomicValue::create_named(&aname, 5i64).unwrap();
    let b = AtomicValue::<i64>::open_named(&aname).unwrap();
    b.fetch_sub(7);
    assert_eq!(a.load(), -2);
    assert!(matches!(
        AtomicValue::<u64>::open_named(&aname),
        Err(OpenError::WrongType { .. })
    ));
    AtomicValue::<i64>::unlink_named(&aname).unwrap();
}

fn spawned_atomics((n, f): (AtomicValue<u32>, AtomicValue<bool>)) {
    n.fetch_add(10);
    assert!(f.compare_exchange(false, true).is_ok());
}
mproc::entry!(spawned_atomics);

#[test]
fn atomic_values_pass_to_a_spawned_child() {
    let n = AtomicValue::new(1u32).unwrap();
    let f = AtomicValue::new(false).unwrap();
    let mut p =
        Process::new(spawned_atomics, (n.clone(), f.clone())).start_method(StartMethod::Spawn);
    p.start().unwrap();
    join_ok(&p);
    assert_eq!(n.load(), 11);
    assert!(f.load());
    assert_eq!(f.compare_exchange(false, true), Err(true));
    assert!(f.swap(false));
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Values live in the small-object pool: a thousand of them (each a value cell plus a lock
/// cell) cost no descriptor each.
#[test]
fn many_values_share_the_pool() {
    let before = open_fds();
    let values: Vec<Value<u64>> = (0..1000).map(|i| Value::new(i).unwrap()).collect();
    assert!(
        open_fds() < before + 20,
        "{} descriptors for 1000 values",
        open_fds() - before
    );
    let sum: u64 = values.iter().map(|v| v.get().unwrap()).sum();
    assert_eq!(sum, 999 * 1000 / 2);
}

/// Values of several atomic pieces of each width, so each piece is read and written at its
/// own place (a load that rereads the first piece, or a store that writes one piece twice,
/// fails here).
#[test]
fn multi_piece_values_round_trip_every_piece() {
    let v = RawValue::new([1u32, 2, 3, 4, 5]).unwrap();
    assert_eq!(v.get(), [1, 2, 3, 4, 5]);
    v.set([10, 20, 30, 40, 50]);
    assert_eq!(v.get(), [10, 20, 30, 40, 50]);
    let w = Value::new([7u64, 8, 9]).unwrap();
    assert_eq!(w.get().unwrap(), [7, 8, 9]);
    w.set([u64::MAX, 0, 1]).unwrap();
    assert_eq!(*w.lock().unwrap(), [u64::MAX, 0, 1]);
    let b = RawValue::new([1u8, 2, 3, 4, 5, 6, 7]).unwrap();
    b.set([7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(b.get(), [7, 6, 5, 4, 3, 2, 1]);
    let h = RawValue::new([0x1111u16, 0x2222, 0x3333]).unwrap();
    assert_eq!(h.get(), [0x1111, 0x2222, 0x3333]);
}
