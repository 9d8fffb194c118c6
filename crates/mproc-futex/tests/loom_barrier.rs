//! Loom models of Barrier: generations, indices, abort.

#[cfg(mproc_loom)]
mod tests {
    use loom::sync::Arc;
    use loom::thread;
    use mproc_futex::{Barrier, BarrierWaitError};

    /// Two parties pass two generations; each generation hands out indices 0 and 1.
    #[test]
    fn two_generations() {
        loom::model(|| {
            let b = Arc::new(Barrier::with_parties(2));
            let b2 = b.clone();
            let h = thread::spawn(move || [b2.wait(None).unwrap(), b2.wait(None).unwrap()]);
            let mine = [b.wait(None).unwrap(), b.wait(None).unwrap()];
            let theirs = h.join().unwrap();
            for g in 0..2 {
                assert_eq!(mine[g] + theirs[g], 1, "indices 0 and 1 in generation {g}");
            }
            assert_eq!(b.n_waiting(), 0);
        });
    }

    /// `abort` racing with a lone waiter (before or after it arrives): it gets Broken.
    #[test]
    fn abort_releases_waiter() {
        loom::model(|| {
            let b = Arc::new(Barrier::with_parties(2));
            let b2 = b.clone();
            let h = thread::spawn(move || b2.wait(None));
            b.abort();
            assert_eq!(h.join().unwrap(), Err(BarrierWaitError::Broken));
        });
    }

    /// `reset` racing with a waiter: released as Broken, barrier usable afterwards.
    #[test]
    fn reset_releases_waiter() {
        loom::model(|| {
            let b = Arc::new(Barrier::with_parties(2));
            let b2 = b.clone();
            let h = thread::spawn(move || b2.wait(None));
            // Reset only once the waiter has arrived (a later arrival would simply wait).
            while b.n_waiting() == 0 {
                thread::yield_now();
            }
            b.reset();
            assert_eq!(h.join().unwrap(), Err(BarrierWaitError::Broken));
            assert!(!b.is_broken());
            assert_eq!(b.n_waiting(), 0);
        });
    }
}
