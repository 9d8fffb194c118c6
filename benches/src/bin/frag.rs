//! `frag`: arena fragmentation over a randomised size history, the figure issue #13 asks
//! for: `cargo run --release -p mproc-benches --bin frag [-- SEED]`. For each arena size it
//! runs rounds of random allocations (log-uniform sizes, 64 B to a quarter of the arena) and
//! random frees, and prints, averaged over the rounds, the largest allocation that succeeds
//! while half the blocks are still live, and after every block was freed (an empty arena),
//! each as a fraction of the arena's capacity, and the allocations that failed for want of
//! room. Nothing asserts on the figures.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use mproc_shm::Arena;

/// A small xorshift generator, so runs repeat from a seed without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The largest `alloc(size, 16)` that succeeds now, found by bisection (then freed).
fn largest_fit(arena: &Arena) -> u64 {
    let (mut lo, mut hi) = (0u64, arena.capacity());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match arena.alloc(mid as usize, 16) {
            Ok(off) => {
                arena.free(off).expect("free");
                lo = mid;
            }
            Err(_) => hi = mid - 1,
        }
    }
    lo
}

fn run(len: u64, seed: u64, rounds: u32) -> (f64, f64, u64) {
    let layout = Layout::from_size_align(len as usize, 4096).expect("layout");
    // SAFETY: a non-zero size; freed at the end of this function.
    let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("memory");
    // SAFETY: `mem..mem+len` is ours, zeroed, and outlives `arena` (dropped first).
    let arena = unsafe { Arena::init_raw(mem, len, 0) }.expect("arena");
    let mut rng = Rng(seed | 1);
    let cap = arena.capacity();
    let (mut live_sum, mut empty_sum, mut failed) = (0.0, 0.0, 0u64);
    for _ in 0..rounds {
        let mut live = Vec::new();
        for _ in 0..400 {
            if !live.is_empty() && rng.below(3) == 0 {
                let i = rng.below(live.len() as u64) as usize;
                arena.free(live.swap_remove(i)).expect("free");
                continue;
            }
            let bits = 6 + rng.below(u64::from((cap / 4).ilog2()) - 5);
            let size = (1u64 << bits) + rng.below(1 << bits);
            match arena.alloc(size.min(cap / 4) as usize, 16) {
                Ok(off) => live.push(off),
                Err(_) => failed += 1,
            }
        }
        // Free half of what is live, measure, then free the rest and measure again.
        while live.len() > 1 && rng.below(2) == 0 {
            let i = rng.below(live.len() as u64) as usize;
            arena.free(live.swap_remove(i)).expect("free");
        }
        live_sum += largest_fit(&arena) as f64 / cap as f64;
        for off in live.drain(..) {
            arena.free(off).expect("free");
        }
        empty_sum += largest_fit(&arena) as f64 / cap as f64;
    }
    drop(arena);
    // SAFETY: allocated above with this layout; the arena is gone.
    unsafe { dealloc(mem.as_ptr(), layout) };
    (
        live_sum / f64::from(rounds),
        empty_sum / f64::from(rounds),
        failed,
    )
}

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0x5eed);
    println!(
        "{:>12} {:>20} {:>20} {:>14}",
        "arena bytes", "largest fit (live)", "largest fit (empty)", "failed allocs"
    );
    // Round lengths (a buddy arena then has several top blocks, the largest about half of
    // it), then the lengths the queue gives its arena (its header plus a power of two: one
    // top block).
    let header = mproc_shm::arena::ARENA_HEADER;
    let round = [64 << 10, (1 << 20) + 8192, 4 << 20, 16 << 20];
    let sized = [header + (64 << 10), header + (1 << 20), header + (4 << 20)];
    for len in round.into_iter().chain(sized) {
        let (live, empty, failed) = run(len, seed, 30);
        println!("{len:>12} {live:>20.3} {empty:>20.3} {failed:>14}");
    }
}
