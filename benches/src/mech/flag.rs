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
use crate::transport::{crossed, halves};
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

/// Single-word mailboxes; with `FUTEX` the receiver sleeps in `futex(FUTEX_WAIT)` and every
/// send wakes it, without it both sides spin (see the module doc).
#[derive(Debug)]
pub struct Flag<const FUTEX: bool>;

/// Spinning single-word mailboxes (the spin floor).
pub type SpinFlag = Flag<false>;

/// Futex single-word mailboxes (the wake floor).
pub type FutexFlag = Flag<true>;

impl<const FUTEX: bool> Transport for Flag<FUTEX> {
    const NAME: &'static str = if FUTEX {
        "bare futex"
    } else {
        "spin floor (shm word)"
    };
    const BLOCKING: bool = FUTEX;
    type End = FlagEnd;

    fn pair(_size: usize) -> Result<(FlagEnd, FlagEnd), BenchError> {
        let map = Rc::new(SharedMap::new(4096)?);
        Ok(crossed(halves(0), halves(128), |_, tx, rx| FlagEnd {
            map: map.clone(),
            tx,
            rx,
        }))
    }

    fn send(e: &mut FlagEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        let w = e.word(e.tx);
        let mut spin = Spin::new(deadline, "an empty mailbox");
        // Acquire: pairs with the receiver's Release clear (it has read the previous value).
        while w.load(Ordering::Acquire) != 0 {
            spin.turn()?;
        }
        // Release: publishes the message (nothing else to publish; kept for symmetry).
        w.store(seq as u32 + 1, Ordering::Release);
        if FUTEX {
            mproc_futex::futex::wake(w, 1);
        }
        Ok(())
    }

    fn recv(e: &mut FlagEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        let w = e.word(e.rx);
        let mut spin = Spin::new(deadline, "a mailbox message");
        let v = loop {
            // Acquire: pairs with the sender's Release store.
            let v = w.load(Ordering::Acquire);
            if v != 0 {
                break v;
            }
            if FUTEX {
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
}
