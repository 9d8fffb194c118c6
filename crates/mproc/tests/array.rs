//! `mproc::Array` and `RawArray` across real processes: Python's `_TestArray` (`test_array`,
//! `test_rawarray`, `test_array_from_size`), named arrays with their type checked, a spawned
//! child, and a holder that dies. Every wait is bounded.

mod common;

use common::{LONG, join_ok};

use mproc::sync::AcquireError;
use mproc::{Array, OpenError, Process, RawArray, StartMethod};

/// Python's `f`: running sums, in place.
fn prefix_sums(seq: &mut [i32]) {
    for i in 1..seq.len() {
        seq[i] += seq[i - 1];
    }
}

fn child_prefix_sums((arr,): (Array<i32>,)) {
    prefix_sums(&mut arr.lock().unwrap());
}
mproc::entry!(child_prefix_sums);

fn check_array_parity(method: StartMethod) {
    let mut seq = vec![680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    let arr = Array::from_slice(&seq).unwrap();
    assert_eq!(arr.len(), seq.len());
    assert_eq!(arr.get(3).unwrap(), Some(seq[3]));
    assert_eq!(&arr.to_vec().unwrap()[2..7], &seq[2..7]);
    // arr[4:8] = seq[4:8] = [1, 2, 3, 4]
    seq[4..8].copy_from_slice(&[1, 2, 3, 4]);
    arr.lock().unwrap()[4..8].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(arr.to_vec().unwrap(), seq);
    prefix_sums(&mut seq);
    let mut p = Process::new(child_prefix_sums, (arr.clone(),)).start_method(method);
    p.start().unwrap();
    join_ok(&p);
    assert_eq!(arr.to_vec().unwrap(), seq);
    // Python: IndexError('invalid index').
    assert_eq!(arr.get(10).unwrap(), None);
}

common::each_start_method! { check_array_parity => array_parity_with_python }

/// Python's `test_rawarray`.
#[test]
fn rawarray_parity_with_python() {
    let seq = [680i32, 626, 934, 821, 150];
    let arr = RawArray::from_slice(&seq).unwrap();
    assert_eq!((arr.len(), arr.get(3)), (5, Some(821)));
    let mut p = Process::new(
        |(arr,): (RawArray<i32>,)| {
            for i in 1..arr.len() {
                arr.set(i, arr.get(i).unwrap() + arr.get(i - 1).unwrap());
            }
        },
        (arr.clone(),),
    );
    p.start().unwrap();
    join_ok(&p);
    assert_eq!(arr.to_vec(), vec![680, 1306, 2240, 3061, 3211]);
    assert_eq!(arr.get(5), None);
}

/// Python's `test_array_from_size`.
#[test]
fn array_from_size() {
    for _ in 0..3 {
        let arr: Array<i32> = Array::zeroed(10).unwrap();
        assert_eq!(arr.len(), 10);
        assert_eq!(arr.to_vec().unwrap(), vec![0; 10]);
        for (i, x) in arr.lock().unwrap().iter_mut().enumerate() {
            *x = i as i32;
        }
        assert_eq!(arr.to_vec().unwrap(), (0..10).collect::<Vec<_>>());
    }
    let empty: Array<u8> = Array::zeroed(0).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_vec().unwrap(), Vec::<u8>::new());
}

#[test]
#[should_panic(expected = "out of range")]
fn set_past_the_end_panics_like_index_error() {
    let arr: Array<u16> = Array::zeroed(2).unwrap();
    let _ = arr.set(2, 1);
}

#[test]
fn named_array_opens_by_name_with_its_type_checked() {
    let name = format!("mproc-test-array-{}", std::process::id());
    let arr = Array::create_named(&name, &[1u32, 2, 3]).unwrap();
    let opened: Array<u32> = Array::open_named(&name).unwrap();
    assert_eq!(opened.len(), 3);
    opened.set(1, 20).unwrap();
    assert_eq!(arr.to_vec().unwrap(), vec![1, 20, 3]);
    let err = Array::<u64>::open_named(&name).unwrap_err();
    assert!(matches!(err, OpenError::WrongType { .. }), "{err}");
    Array::<u32>::unlink_named(&name).unwrap();
}

#[test]
fn owner_death_while_holding_an_array() {
    let arr: Array<u64> = Array::zeroed(4).unwrap();
    let mut p = Process::new(
        |(arr,): (Array<u64>,)| {
            let mut g = arr.lock().unwrap();
            g[..2].fill(9); // half of a four-element update, then the holder is gone
            std::mem::forget(g);
        },
        (arr.clone(),),
    );
    p.start().unwrap();
    join_ok(&p);
    let mut g = match arr.lock_timeout(LONG) {
        Err(AcquireError::OwnerDied(g)) => g,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(&*g, &[9, 9, 0, 0]);
    g.fill(9);
    g.mark_consistent();
    drop(g);
    assert_eq!(arr.to_vec().unwrap(), vec![9; 4]);
}
