//! Queue errors, shaped like std's and crossbeam's channel errors: a failed put hands the
//! item back; each names its Python counterpart.

use std::fmt;

use crate::message::MessageError;

/// Why [`Queue::put`](super::Queue::put) failed. The item comes back in every variant.
#[derive(PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue is full and no other handle can ever get from it (every other handle was
    /// dropped or closed, or lives in a dead process). Python has no counterpart (its `put`
    /// blocks for ever); crossbeam: `SendError`.
    Disconnected(T),
    /// This handle was closed, or is a copy inherited through `fork` that this process does
    /// not hold (pass handles in `Process` args). Python: `ValueError: Queue is closed`.
    Closed(T),
    /// The item cannot be sent (its encoding failed, or it is larger than the queue's arena
    /// can ever hold). Python: `pickle.PicklingError`.
    Message(T, MessageError),
}

/// Why [`Queue::put_nowait`](super::Queue::put_nowait) failed. The item comes back.
#[derive(PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum TryPutError<T> {
    /// No free slot right now (the message had its arena block, or needed none). Python:
    /// `queue.Full`.
    Full(T),
    /// The queue's arena had no block large enough for this message right now (messages
    /// larger than a slot travel in the arena, see
    /// [`Queue::arena_stats`](super::Queue::arena_stats)); a put takes its block before its
    /// slot, so the slots may have been full too. Python: `queue.Full`.
    ArenaFull(T),
    /// As [`PutError::Disconnected`], reported only when the queue is also full.
    Disconnected(T),
    /// As [`PutError::Closed`].
    Closed(T),
    /// As [`PutError::Message`].
    Message(T, MessageError),
}

/// Why [`Queue::put_timeout`](super::Queue::put_timeout) failed. The item comes back.
#[derive(PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum PutTimeoutError<T> {
    /// No slot came free before the timeout ran out (the message had its arena block, or
    /// needed none). Python: `queue.Full` (from `put(timeout=...)`).
    Timeout(T),
    /// No arena block large enough for this message came free before the timeout ran out
    /// (see [`TryPutError::ArenaFull`]). Python: `queue.Full`.
    ArenaFull(T),
    /// As [`PutError::Disconnected`].
    Disconnected(T),
    /// As [`PutError::Closed`].
    Closed(T),
    /// As [`PutError::Message`].
    Message(T, MessageError),
}

impl<T> PutError<T> {
    /// Takes the item back.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Disconnected(t) | PutError::Closed(t) | PutError::Message(t, _) => t,
        }
    }
}

impl<T> TryPutError<T> {
    /// Takes the item back.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t)
            | TryPutError::ArenaFull(t)
            | TryPutError::Disconnected(t)
            | TryPutError::Closed(t)
            | TryPutError::Message(t, _) => t,
        }
    }

    /// Whether the queue was full, of slots or of arena room (Python's `queue.Full`).
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_) | TryPutError::ArenaFull(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// Takes the item back.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(t)
            | PutTimeoutError::ArenaFull(t)
            | PutTimeoutError::Disconnected(t)
            | PutTimeoutError::Closed(t)
            | PutTimeoutError::Message(t, _) => t,
        }
    }
}

/// Why [`Queue::get`](super::Queue::get) failed.
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is empty and no other handle can ever put (every other handle was dropped
    /// or closed, or lives in a dead process). Python has no counterpart (its `get` blocks
    /// for ever — the seed's consumer hangs there); crossbeam: `RecvError`.
    Disconnected,
    /// This handle was closed, or is an inherited copy this process does not hold.
    /// Python: `ValueError: Queue is closed`.
    Closed,
    /// The next message failed validation (a buggy or hostile peer): it was dropped.
    /// Python: `pickle.UnpicklingError`.
    Message(MessageError),
}

/// Why [`Queue::get_nowait`](super::Queue::get_nowait) failed.
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum TryGetError {
    /// Nothing to get right now. Python: `queue.Empty`.
    Empty,
    /// As [`GetError::Disconnected`] (the queue is also empty).
    Disconnected,
    /// As [`GetError::Closed`].
    Closed,
    /// As [`GetError::Message`].
    Message(MessageError),
}

/// Why [`Queue::get_timeout`](super::Queue::get_timeout) failed.
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum GetTimeoutError {
    /// Still empty when the timeout ran out. Python: `queue.Empty` (from
    /// `get(timeout=...)`).
    Timeout,
    /// As [`GetError::Disconnected`].
    Disconnected,
    /// As [`GetError::Closed`].
    Closed,
    /// As [`GetError::Message`].
    Message(MessageError),
}

macro_rules! put_fmt {
    ($name:ident { $($var:ident => $text:literal),* }) => {
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$var(..) => f.write_str(concat!(stringify!($name), "::", stringify!($var), "(..)")), )*
                    $name::Message(_, e) => write!(f, "{}::Message(.., {e:?})", stringify!($name)),
                }
            }
        }
        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$var(..) => f.write_str($text), )*
                    $name::Message(_, e) => write!(f, "{e}"),
                }
            }
        }
        impl<T> std::error::Error for $name<T> {}
    };
}

put_fmt!(PutError {
    Disconnected => "putting on a full queue that no other handle can get from",
    Closed => "putting on a closed queue handle"
});
put_fmt!(TryPutError {
    Full => "putting on a full queue",
    ArenaFull => "putting on a queue whose arena has no room for this message now",
    Disconnected => "putting on a full queue that no other handle can get from",
    Closed => "putting on a closed queue handle"
});
put_fmt!(PutTimeoutError {
    Timeout => "timed out putting on a full queue",
    ArenaFull => "timed out putting: the queue's arena had no room for this message",
    Disconnected => "putting on a full queue that no other handle can get from",
    Closed => "putting on a closed queue handle"
});

macro_rules! get_fmt {
    ($name:ident { $($var:ident => $text:literal),* }) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$var => f.write_str($text), )*
                    $name::Message(e) => write!(f, "{e}"),
                }
            }
        }
        impl std::error::Error for $name {}
    };
}

get_fmt!(GetError {
    Disconnected => "getting from an empty queue that no other handle can put on",
    Closed => "getting from a closed queue handle"
});
get_fmt!(TryGetError {
    Empty => "getting from an empty queue",
    Disconnected => "getting from an empty queue that no other handle can put on",
    Closed => "getting from a closed queue handle"
});
get_fmt!(GetTimeoutError {
    Timeout => "timed out getting from an empty queue",
    Disconnected => "getting from an empty queue that no other handle can put on",
    Closed => "getting from a closed queue handle"
});

/// Why a batch put ([`Queue::put_many`](super::Queue::put_many),
/// [`Queue::put_many_nowait`](super::Queue::put_many_nowait)) stopped early: the first
/// `done` items were put, then `error` (which hands the failed item back) happened; the
/// items after it were not taken from the iterator (pass `iter.by_ref()` to keep them).
#[derive(PartialEq, Eq, Clone)]
pub struct BatchPutError<E> {
    /// Items put before the error.
    pub done: usize,
    /// The error of the item that failed (it carries the item).
    pub error: E,
}

impl<E: fmt::Debug> fmt::Debug for BatchPutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchPutError")
            .field("done", &self.done)
            .field("error", &self.error)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for BatchPutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (after {} items were put)", self.error, self.done)
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for BatchPutError<E> {}
