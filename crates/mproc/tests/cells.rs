//! The small-object pool: 10,000 locks created and used from two processes within a small,
//! fixed number of descriptors and mappings; handles passed to a spawned child share one
//! mapping there. Every wait is bounded.

mod common;

use common::exit_code;

use std::time::Duration;

use mproc::sync::{Event, Semaphore};
use mproc::{Lock, Process, StartMethod};

const LONG: Duration = Duration::from_secs(30);
const N: usize = 10_000;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn ten_thousand_locks_in_two_processes() {
    let (fds0, maps0) = (open_fds(), mappings());
    let locks: Vec<Lock> = (0..N).map(|_| Lock::new().unwrap()).collect();
    for l in &locks {
        drop(l.acquire().unwrap());
    }
    let (fds1, maps1) = (open_fds(), mappings());
    // Other tests of this binary run in parallel and may add a pool segment or two.
    assert!(fds1 <= fds0 + 8, "{fds0} -> {fds1} descriptors");
    assert!(maps1 <= maps0 + 8, "{maps0} -> {maps1} mappings");
    assert!(mproc::storage::cells::stats().segments <= 3);

    // The child uses every lock (inherited through fork: a Lock may be used without being
    // passed; it registers the child in the pool segment on first use), creates 10,000 of
    // its own, and checks its own descriptor count; the parent holds lock 0 meanwhile.
    let held = locks[0].acquire().unwrap();
    let done = Event::new().unwrap();
    let shared = locks.clone();
    let mut p = Process::new(
        move |(done,): (Event,)| {
            let fds = open_fds();
            assert!(shared[0].try_acquire().is_err(), "the parent holds lock 0");
            for l in &shared[1..] {
                drop(l.try_acquire().unwrap());
            }
            let mine: Vec<Lock> = (0..N).map(|_| Lock::new().unwrap()).collect();
            for l in &mine {
                drop(l.acquire().unwrap());
            }
            let grew = open_fds() - fds.min(open_fds());
            done.set();
            std::process::exit(if grew <= 8 { 0 } else { 100 + grew as i32 });
        },
        (done.clone(),),
    );
    p.start().unwrap();
    assert!(done.wait_timeout(LONG));
    drop(held);
    assert_eq!(exit_code(&p), 0);
    assert!(open_fds() <= fds0 + 8);
}

/// In a spawned child: every passed handle brought its own descriptor of the pool
/// segment; the importer kept one mapping and closed the rest.
fn spawned_counts((a, b, c, s): (Lock, Lock, Lock, Semaphore)) {
    let stats = mproc::storage::cells::stats();
    let ok = stats.mapped == 1 && a.try_acquire().is_err() && b.try_acquire().is_ok();
    drop(c.acquire().unwrap());
    s.release().unwrap();
    std::process::exit(if ok { 0 } else { 100 + stats.mapped as i32 });
}
mproc::entry!(spawned_counts);

#[test]
fn a_spawned_child_maps_a_pool_segment_once() {
    let (a, b, c) = (
        Lock::new().unwrap(),
        Lock::new().unwrap(),
        Lock::new().unwrap(),
    );
    let s = Semaphore::new(0).unwrap();
    let held = a.acquire().unwrap();
    let mut p = Process::new(spawned_counts, (a.clone(), b.clone(), c.clone(), s.clone()))
        .start_method(StartMethod::Spawn);
    p.start().unwrap();
    assert!(s.acquire_timeout(LONG).unwrap());
    assert_eq!(exit_code(&p), 0);
    drop(held);
}

/// A cell larger than a standard pool segment's arena can ever hold gets a dedicated segment
/// (the buddy arena says `TooLarge` for it in the standard ones, which must mean "try the
/// next segment", not an error), and small cells still share the standard segments.
#[test]
fn a_cell_larger_than_a_pool_segment_gets_its_own() {
    // A small cell first, so a standard segment exists when the large one is asked for.
    let small = mproc::Array::<u64>::zeroed(4).unwrap();
    assert_eq!(small.len(), 4);
    let big = mproc::Array::<u64>::zeroed(300_000).unwrap(); // 2.4 MB
    assert_eq!(big.len(), 300_000);
    let huge = mproc::RawArray::<u8>::zeroed(3 << 20).unwrap();
    assert_eq!(huge.len(), 3 << 20);
}
