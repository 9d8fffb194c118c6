//! Single-word mailboxes in shared memory, one per direction: the floors for round trips.
//!
//! * [`SpinFlag`]: both sides spin on the word — the shared-memory spin floor (two cache
//!   line transfers per round trip).
//! * [`FutexFlag`]: the receiver sleeps in `futex(FUTEX_WAIT)` at once (no spinning) and
//!   every send does a `FUTEX_WAKE` — the bare futex ping-pong, the kernel's wake floor.
//!
//! A mailbox holds one message (word = sequence + 1, 0 = empty), so these are for
//! ping-pong, not throughput.
#![allow(unsafe_code)]

use std::rc::Rc;

use crate::shm::SharedMap;
use crate::sync::{AtomicU32, Ordering};
use crate::{BenchError, Deadline, Spin, Transport};

/// One end: the word it sends on, the word it receives from.
#[derive(Debug)]
pub struct FlagEnd {
    map: Rc<SharedMap>,
    tx: usize,
    rx: usize,
}

impl FlagEnd {
    fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is 0 or 128, 4-aligned inside the zeroed shared mapping `map` keeps
        // alive; the word is only ever accessed atomically.
        unsafe { &*self.map.ptr().as_ptr().add(at).cast::<AtomicU32>() }
    }
}

fn flag_pair() -> Result<(FlagEnd, FlagEnd), BenchError> {
    let map = Rc::new(SharedMap::new(4096)?);
    Ok((
        FlagEnd {
            map: map.clone(),
            tx: 0,
            rx: 128,
        },
        FlagEnd {
            map,
            tx: 128,
            rx: 0,
        },
    ))
}

fn flag_send(e: &FlagEnd, seq: u64, deadline: &Deadline, futex: bool) -> Result<(), BenchError> {
    let w = e.word(e.tx);
    let mut spin = Spin::new(deadline, "an empty mailbox");
    // Acquire: pairs with the receiver's Release clear (it has read the previous value).
    while w.load(Ordering::Acquire) != 0 {
        spin.turn()?;
    }
    // Release: publishes the message (nothing else to publish; kept for symmetry).
    w.store(seq as u32 + 1, Ordering::Release);
    if futex {
        mproc_futex::futex::wake(w, 1);
    }
    Ok(())
}

fn flag_recv(e: &FlagEnd, deadline: &Deadline, futex: bool) -> Result<u64, BenchError> {
    let w = e.word(e.rx);
    let mut spin = Spin::new(deadline, "a mailbox message");
    let v = loop {
        // Acquire: pairs with the sender's Release store.
        let v = w.load(Ordering::Acquire);
        if v != 0 {
            break v;
        }
        if futex {
            if !mproc_futex::futex::wait(w, 0, Some(deadline.futex())) {
                return Err(BenchError::Timeout("a futex wake"));
            }
        } else {
            spin.turn()?;
        }
    };
    // Release: our read of the value happens before the sender's next store.
    w.store(0, Ordering::Release);
    Ok(u64::from(v - 1))
}

/// Spinning single-word mailboxes (the spin floor).
#[derive(Debug)]
pub struct SpinFlag;

impl Transport for SpinFlag {
    const NAME: &'static str = "spin floor (shm word)";
    const BLOCKING: bool = false;
    type End = FlagEnd;

    fn pair(_size: usize) -> Result<(FlagEnd, FlagEnd), BenchError> {
        flag_pair()
    }
    fn send(e: &mut FlagEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        flag_send(e, seq, deadline, false)
    }
    fn recv(e: &mut FlagEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        flag_recv(e, deadline, false)
    }
}

/// Futex single-word mailboxes (the wake floor).
#[derive(Debug)]
pub struct FutexFlag;

impl Transport for FutexFlag {
    const NAME: &'static str = "bare futex";
    const BLOCKING: bool = true;
    type End = FlagEnd;

    fn pair(_size: usize) -> Result<(FlagEnd, FlagEnd), BenchError> {
        flag_pair()
    }
    fn send(e: &mut FlagEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        flag_send(e, seq, deadline, true)
    }
    fn recv(e: &mut FlagEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        flag_recv(e, deadline, true)
    }
}
