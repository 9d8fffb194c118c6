//! Loom models of Condvar with RawLock: notify/wait races.

#[cfg(mproc_loom)]
mod tests {
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;
    use mproc_futex::{AlwaysAlive, Condvar, RawLock};

    struct Shared {
        lock: RawLock,
        cv: Condvar,
        ready: UnsafeCell<bool>,
    }
    // SAFETY: `ready` only touched under `lock`.
    unsafe impl Sync for Shared {}

    fn waiter(s: &Shared, me: u32) {
        let mut g = s.lock.lock(me, &AlwaysAlive, None).unwrap();
        // SAFETY: lock held.
        while !s.ready.with(|p| unsafe { *p }) {
            g = s.cv.wait(g, None).unwrap().0;
        }
        drop(g);
    }

    fn notifier(s: &Shared, all: bool) {
        let g = s.lock.lock(9, &AlwaysAlive, None).unwrap();
        // SAFETY: lock held.
        s.ready.with_mut(|p| unsafe { *p = true });
        if all {
            s.cv.notify_all();
        } else {
            s.cv.notify_one();
        }
        drop(g);
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            lock: RawLock::new(),
            cv: Condvar::new(),
            ready: UnsafeCell::new(false),
        })
    }

    #[test]
    fn notify_one_wakes_waiter() {
        loom::model(|| {
            let s = shared();
            let s2 = s.clone();
            let h = thread::spawn(move || waiter(&s2, 1));
            notifier(&s, false);
            h.join().unwrap();
        });
    }

    #[test]
    fn notify_all_wakes_two_waiters() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(1);
        b.check(|| {
            let s = shared();
            let hs: Vec<_> = (1..=2)
                .map(|me| {
                    let s = s.clone();
                    thread::spawn(move || waiter(&s, me))
                })
                .collect();
            notifier(&s, true);
            for h in hs {
                h.join().unwrap();
            }
        });
    }
}
