//! A consumer that dies while its item is still on the way into private memory (being
//! copied, validated or deserialised) dies holding the item's slot claim, so recovery counts
//! the item in `Queue::lost` (issue #12, finding 3).
//!
//! The death is made deterministic with this binary's global allocator: a child arms it
//! with a length, and the first allocation of exactly that many bytes at alignment 1 — the
//! `Vec<u8>` that deserialising the message allocates — SIGKILLs the process on the spot.
//! The lengths are odd enough that nothing else allocates them.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
#[allow(
    clippy::disallowed_types,
    reason = "a process-local flag for the test allocator, not shared memory"
)]
use std::sync::atomic::{AtomicUsize, Ordering};

use common::LONG;
use mproc::queue::GetTimeoutError;
use mproc::{Process, Queue};

/// Allocation length that kills the process (0: disarmed).
#[allow(
    clippy::disallowed_types,
    reason = "a process-local flag for the test allocator, not shared memory"
)]
static KILL_AT_LEN: AtomicUsize = AtomicUsize::new(0);

struct KillingAllocator;

// SAFETY: every call forwards to `System` unchanged; the only addition is a check that may
// end the process before the allocation happens.
unsafe impl GlobalAlloc for KillingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: read by the thread that armed it.
        let armed = KILL_AT_LEN.load(Ordering::Relaxed);
        if armed != 0 && layout.size() == armed && layout.align() == 1 {
            // SAFETY: raising a signal has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        // SAFETY: delegated to the caller (`GlobalAlloc::alloc`'s contract).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: delegated to the caller; `ptr` came from `System.alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: KillingAllocator = KillingAllocator;

/// Arms the allocator for `len`, then takes one item: dies inside `get`.
fn dying_consumer((q, len): (Queue<Vec<u8>>, usize)) {
    // Relaxed: this thread allocates next.
    KILL_AT_LEN.store(len, Ordering::Relaxed);
    let item = q.get();
    // Not reached: deserialising the item allocated `len` bytes.
    KILL_AT_LEN.store(0, Ordering::Relaxed);
    panic!("the consumer survived its get: {:?}", item.map(|v| v.len()));
}

fn consumer_killed_while_deserialising_is_counted(len: usize) {
    let q: Queue<Vec<u8>> = Queue::with_capacity(4).unwrap();
    q.put(vec![7u8; len]).unwrap();
    let mut c = Process::new(dying_consumer, (q.clone(), len));
    c.start().unwrap();
    let status = common::join(&c);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    // The child died holding the slot: the survivor's get recovers it (the child is gone,
    // so nobody else can put: Disconnected), counting the item as lost.
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Disconnected));
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.lost(), 1, "the item that died mid-get was not counted");
    // The queue still works, and the dead child's slot is reusable.
    for i in 0..8u8 {
        q.put(vec![i; len]).unwrap();
        assert_eq!(q.get().unwrap(), vec![i; len]);
    }
}

#[test]
fn consumer_killed_while_deserialising_an_inline_item_is_counted() {
    // Fits the default 127-byte slot: travels inline.
    consumer_killed_while_deserialising_is_counted(41);
}

#[test]
fn consumer_killed_while_deserialising_an_arena_item_is_counted() {
    // Larger than a slot: travels out of line, in the queue's arena.
    consumer_killed_while_deserialising_is_counted(5_003);
}
