//! Batch puts and gets: [`Queue::put_many`], [`Queue::put_many_nowait`] and
//! [`Queue::get_many`], which notify the other side once per batch instead of once per item.

use std::cell::RefCell;

use super::blocking::{nowait_put_error, untimed_put_error};
use super::slot::{Popped, decode_private};
use super::{BatchPutError, GetError, PutError, PutTimeoutError, Queue, TryPutError};
use crate::message::{Message, MessageError};
use crate::wait;
use crate::wait::Wait;

impl<T: Message> Queue<T> {
    /// Puts every item of `items` in order, blocking while the queue is full, and returns
    /// how many were put. Python: a loop of `put(item)`; here consumers are notified once
    /// per run of items that fit (and before blocking), not once per item.
    ///
    /// # Errors
    ///
    /// The first item that fails stops the batch: [`BatchPutError`] says how many were put
    /// before it and carries its [`PutError`] (with the item). Later items stay in the
    /// iterator.
    ///
    /// # Example
    ///
    /// ```
    /// let q: mproc::Queue<u64> = mproc::Queue::new()?;
    /// assert_eq!(q.put_many(0..10).unwrap(), 10);
    /// let mut out = Vec::new();
    /// assert_eq!(q.get_many(&mut out, 64).unwrap(), 10);
    /// assert_eq!(out, (0..10).collect::<Vec<_>>());
    /// # Ok::<(), mproc::CreateError>(())
    /// ```
    pub fn put_many<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, BatchPutError<PutError<T>>> {
        self.put_batch(items, Wait::Forever, untimed_put_error)
    }

    /// Puts items of `items` in order while there is room now, without blocking; returns
    /// how many were put (all of them, or an error).
    ///
    /// # Errors
    ///
    /// [`BatchPutError`] with [`TryPutError::Full`] (the item that did not fit comes back;
    /// later items stay in the iterator) or another [`TryPutError`].
    pub fn put_many_nowait<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, BatchPutError<TryPutError<T>>> {
        self.put_batch(items, Wait::Never, nowait_put_error)
    }

    /// The batch loop: each item is encoded once and pushed with one quiet attempt (no
    /// notification); when that would block, consumers are notified of the items pushed
    /// so far and the item takes the single-put path (blocking per `mode`, and
    /// reporting exact errors, mapped by `error`).
    fn put_batch<I: IntoIterator<Item = T>, E>(
        &self,
        items: I,
        mode: Wait,
        error: impl Fn(PutTimeoutError<T>) -> E,
    ) -> Result<usize, BatchPutError<E>> {
        let bell = self.shared.ring.items_doorbell();
        let mut done = 0;
        let mut pending = false;
        let res = self.with_scratch(|s| {
            for item in items {
                let me = match self.enter() {
                    Ok(Some(me)) => me,
                    Ok(None) => return Err(PutTimeoutError::Closed(item)),
                    Err(e) => {
                        let e = MessageError::Encode(e.to_string());
                        return Err(PutTimeoutError::Message(item, e));
                    }
                };
                if let Err(e) = s.encode(&item) {
                    return Err(PutTimeoutError::Message(item, e));
                }
                let quiet = match self.stage(&s.buf) {
                    Ok(mut staged) => {
                        let r = self.try_push_staged(me, &s.buf, &mut staged);
                        if !matches!(r, Some(Ok(()))) {
                            // Would block (the slow path stages again) or failed (corrupt
                            // ring, tombstoned slot): a block was never sent.
                            staged.release(&self.shared.arena);
                        }
                        r
                    }
                    Err(e) => Some(Err(e)),
                };
                match quiet {
                    Some(Ok(())) => pending = true,
                    Some(Err(e)) => return Err(PutTimeoutError::Message(item, e)),
                    None => {
                        if pending {
                            // Before anything that may block: consumers must see what is in.
                            wait::ring(bell);
                            pending = false;
                        }
                        match self.push_encoded(me, &s.buf, mode) {
                            Ok(Ok(())) => {}
                            Ok(Err(fail)) => return Err(fail.with(item)),
                            Err(e) => return Err(PutTimeoutError::Message(item, e)),
                        }
                    }
                }
                done += 1;
            }
            Ok(())
        });
        if pending {
            wait::ring(bell);
        }
        match res {
            Ok(()) => Ok(done),
            Err(e) => Err(BatchPutError {
                done,
                error: error(e),
            }),
        }
    }

    /// Takes up to `max` items into `out` (appended, in queue order): blocks for the first
    /// as [`Queue::get`] does, then takes what is there without blocking. Returns how many
    /// were taken (0 only when `max` is 0). Producers are notified once per batch.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`] for the first item. An invalid later message ends the batch with
    /// [`GetError::Message`]; the items taken before it are in `out`.
    pub fn get_many(&self, out: &mut Vec<T>, max: usize) -> Result<usize, GetError> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.get()?);
        let Ok(Some(me)) = self.enter() else {
            return Ok(1);
        };
        let mut n = 1;
        let mut freed = false;
        let res = self.with_scratch(|s| {
            let sink = RefCell::new(&mut s.buf);
            let decode = |popped: Popped<'_>| decode_private::<T>(&mut sink.borrow_mut(), popped);
            while n < max {
                match self.try_take(me, false, &decode) {
                    None => return Ok(()),
                    Some(r) => {
                        freed = true;
                        out.push(r?);
                    }
                }
                n += 1;
            }
            Ok(())
        });
        if freed {
            wait::ring(self.shared.ring.space_doorbell());
        }
        res.map_err(GetError::Message)?;
        Ok(n)
    }
}
