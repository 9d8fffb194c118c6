//! Python's synchronisation family across processes: [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Event`], [`Condition`], [`Barrier`] (and [`Lock`](crate::Lock),
//! which lives in [`crate::lock`]).
pub(crate) mod backing;
