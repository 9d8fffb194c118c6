//! A reference model of the arena's buddy algorithm (feature `test-hooks`), for the property
//! test and the fuzz target: plain collections, no shared memory, no concurrency. It
//! follows the documented algorithm step by step (`mproc_shm::arena`, "Algorithm"), so it
//! predicts the exact block of every allocation and every `OutOfMemory`. Not a public API.

use std::collections::VecDeque;

/// The block size the arena uses for a request of `size` bytes aligned to `align` (the
/// documented rule: the data, its 16-byte header or alignment shift, rounded up to a power of
/// two, at least 64).
pub fn block_bytes(size: usize, align: usize) -> u64 {
    let size = size.max(1) as u64;
    let align = align as u64;
    let need = if align <= 16 {
        size + 16
    } else if align <= 64 {
        size + align
    } else {
        size + align + 16
    };
    need.max(64).next_power_of_two()
}

/// The arena's free blocks as the algorithm keeps them: per order a list (front = head), the
/// top blocks of the block area, splits listing upper halves at the front, frees merging
/// with free buddies.
#[derive(Debug, Clone)]
pub struct BuddyModel {
    first: u64,
    tops: Vec<(u64, u32)>,
    lists: Vec<VecDeque<u64>>,
}

impl BuddyModel {
    /// The model of a fresh arena of `len` bytes and `capacity` bytes of blocks (its
    /// `capacity()`), at base offset 0.
    pub fn new(len: u64, capacity: u64) -> BuddyModel {
        let first = len - capacity;
        let units = capacity / 64;
        let mut lists = vec![VecDeque::new(); 32];
        let mut tops = Vec::new();
        let mut start = first;
        for k in (0..32).rev() {
            if units & (1 << k) != 0 {
                tops.push((start, k));
                lists[k as usize].push_back(start);
                start += 64 << k;
            }
        }
        BuddyModel { first, tops, lists }
    }

    /// The size of the largest top block.
    pub fn largest_top(&self) -> u64 {
        self.tops.first().map_or(0, |&(_, k)| 64 << k)
    }

    /// How many top blocks the block area has (the free blocks of an empty arena).
    pub fn top_blocks(&self) -> u64 {
        self.tops.len() as u64
    }

    fn top_order(&self, block: u64) -> u32 {
        let top = self
            .tops
            .iter()
            .find(|&&(s, k)| block >= s && block < s + (64 << k));
        top.unwrap_or_else(|| panic!("block {block} outside the top blocks"))
            .1
    }

    /// The block an allocation of `bytes` (a power of two, see [`block_bytes`]) takes, as
    /// `(arena-relative offset, order)`, or `None` where the arena says `OutOfMemory`.
    pub fn alloc(&mut self, bytes: u64) -> Option<(u64, u32)> {
        let order = bytes.trailing_zeros().checked_sub(6)?;
        let mut k = (order..32).find(|&k| !self.lists[k as usize].is_empty())?;
        let block = self.lists[k as usize].pop_front()?;
        while k > order {
            k -= 1;
            self.lists[k as usize].push_front(block + (64 << k));
        }
        Some((block, order))
    }

    /// Frees the block at `block` of order `k` (as [`BuddyModel::alloc`] returned them).
    pub fn free(&mut self, mut block: u64, mut k: u32) {
        let top = self.top_order(block);
        while k < top {
            let buddy = self.first + ((block - self.first) ^ (64 << k));
            let list = &mut self.lists[k as usize];
            let Some(i) = list.iter().position(|&b| b == buddy) else {
                break;
            };
            list.remove(i);
            block = block.min(buddy);
            k += 1;
        }
        self.lists[k as usize].push_front(block);
    }

    /// Free blocks, all orders.
    pub fn free_blocks(&self) -> u64 {
        self.lists.iter().map(|l| l.len() as u64).sum()
    }
}
