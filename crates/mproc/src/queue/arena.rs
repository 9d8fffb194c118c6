//! How a queue's arena (where messages larger than a slot travel) is used:
//! [`ArenaStats`], [`Queue::arena_stats`], [`Queue::arena_check`], and how an arena failure
//! becomes the queue's error.

use mproc_shm::ArenaError;

use super::Queue;
#[cfg(doc)]
use super::QueueBuilder;
use crate::message::{Message, MessageError};

/// How a queue's arena is used ([`Queue::arena_stats`], [`Queue::arena_check`]).
/// Out-of-line messages (larger than a slot) each take one block, rounded up to a power of
/// two with a 16-byte header; free blocks merge with their buddies, so with no message out of
/// line `largest_message_now` is `max_message` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Bytes the arena can give to blocks.
    pub capacity: u64,
    /// Bytes in blocks now allocated: messages in the queue or being put or read, `get_ref`
    /// guards, and blocks leaked by a process killed in the window described below.
    pub in_use_bytes: u64,
    /// Those blocks.
    pub in_use_blocks: u64,
    /// Of those, blocks recorded to no process and no slot. Every block a queue operation
    /// holds is recorded (to its producer, its slot or its `get_ref` guard) from the moment
    /// the allocator hands it out, except a consumer's block in the few instructions between
    /// its slot's release and its `get_ref` guard recording it; so when every process that
    /// used the queue is gone and a recovery pass has run, these are blocks leaked by a
    /// process killed right there.
    pub in_use_unowned_blocks: u64,
    /// The largest encoded message that would find room now.
    pub largest_message_now: usize,
    /// The largest encoded message the arena can ever hold (a larger one is
    /// [`MessageError::TooLarge`] at once).
    pub max_message: usize,
}

impl<T: Message> Queue<T> {
    /// How the queue's arena (where messages larger than a slot travel) is used now: a
    /// snapshot for sizing [`QueueBuilder::arena_size`], safe to take while others put and
    /// get. No Python counterpart.
    ///
    /// # Errors
    ///
    /// [`MessageError::Corrupt`] if the arena's block headers are corrupt.
    pub fn arena_stats(&self) -> Result<ArenaStats, MessageError> {
        let a = &self.shared.arena;
        let u = a.usage().map_err(|e| self.arena_error(e))?;
        Ok(ArenaStats {
            capacity: u.capacity,
            in_use_bytes: u.allocated_bytes,
            in_use_blocks: u.allocated_blocks,
            in_use_unowned_blocks: u.allocated_by_mark[0],
            largest_message_now: usize::try_from(u.largest_alloc_now).unwrap_or(usize::MAX),
            max_message: a.max_alloc(),
        })
    }

    /// Runs the arena's heap-invariant checker (`mproc_shm::Arena::check`: blocks tile the
    /// arena, every free block is listed once, no two free buddies are left unmerged, no
    /// interrupted call is left undone) and returns what it saw. It walks every block under
    /// the arena's guard, so other puts and gets of large messages wait for one walk: a
    /// diagnostic (the torture suite runs it under SIGKILL storms), not for hot paths; the
    /// figures returned are [`Queue::arena_stats`]'s, taken right after the check. No Python
    /// counterpart.
    ///
    /// # Errors
    ///
    /// [`MessageError::Corrupt`] if an invariant is broken (the queue is then corrupt for
    /// good, as for a corrupt ring); [`MessageError::Encode`] if this process cannot
    /// register in the queue's segment.
    pub fn arena_check(&self) -> Result<ArenaStats, MessageError> {
        self.shared.arena.check().map_err(|e| self.arena_error(e))?;
        // The figures from a usage walk right after the check (a second, shorter walk).
        self.arena_stats()
    }

    /// The queue's error for an arena failure: a corrupt arena poisons the queue's ring, so
    /// the queue stays corrupt (and counts the detection); the others are refusals.
    pub(super) fn arena_error(&self, e: ArenaError) -> MessageError {
        match e {
            ArenaError::Corrupt { .. } => {
                self.shared.ring.report_corrupt();
                MessageError::Corrupt
            }
            ArenaError::TooLarge { size, .. } => MessageError::TooLarge {
                len: size,
                max: self.shared.arena.max_alloc(),
            },
            other => MessageError::Encode(other.to_string()),
        }
    }
}
