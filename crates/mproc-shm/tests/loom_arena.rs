//! Loom models of the arena's free lists and bump pointer (`mproc_shm::arena`'s module docs),
//! run over loom's model memory by `arena::model::ModelArena`: the very code `Arena` runs on
//! a segment, on loom atomics instead of overlaid std ones.
//!
//! * `aba_stale_pop_cas_fails_after_pop_pop_free`: the ABA case the head's tag exists for.
//!   A reads head = X (next = Y) and is preempted; B pops X, pops Y and frees X, so the head
//!   is X again; A's CAS must fail and retry, or A installs Y — which B owns — as the head.
//!   Fails (checked) when the tag increments on push and pop are both removed. Removing
//!   only one of them is an equivalent mutant: the head index can only return to X through
//!   a push (lists are acyclic) and can only leave it through a pop, so either increment
//!   alone moves the tag across any A-B-A.
//! * `pop_racing_a_push_takes_each_listed_block_once`: a pop and a push (free) on one list.
//! * `concurrent_carves_of_two_classes_claim_distinct_blocks`: two carvers at the bump
//!   pointer, one helping the other past its block.
//!
//! Each model counts which outcome arms its iterations reached and asserts all were
//! (`Arms`, mproc-futex's `tests/common/arms.rs`).

// Shared with mproc-futex and mproc-ring: three independent crates and no test-utility
// crate, so one file included by path keeps one behaviour.
#[cfg(mproc_loom)]
#[path = "../../mproc-futex/tests/common/arms.rs"]
mod arms;

#[cfg(mproc_loom)]
mod tests {
    use std::collections::HashSet;

    use loom::sync::Arc;
    use loom::thread;
    use mproc_shm::arena::model::{
        CARVE_HELPED, CARVE_LOST, FIRST_BLOCK_OFFSET, ModelArena, POP_RETRY, PUSH_RETRY,
        take_events,
    };
    use mproc_shm::{ArenaStats, Offset};

    use crate::arms::Arms;

    /// Block size of class 0, and so of every `alloc(1, 1)`.
    const BLOCK: u64 = 64;

    /// An arena with room for `blocks` 64-byte blocks.
    fn arena(blocks: u64) -> Arc<ModelArena> {
        Arc::new(ModelArena::new(FIRST_BLOCK_OFFSET + blocks * BLOCK).unwrap())
    }

    /// An arena with room for `blocks` 64-byte blocks, the first two carved and held: X, Y.
    fn two_carved(blocks: u64) -> (Arc<ModelArena>, Offset<u8>, Offset<u8>) {
        let arena = arena(blocks);
        let x = arena.alloc(1, 1).unwrap();
        let y = arena.alloc(1, 1).unwrap();
        (arena, x, y)
    }

    /// What an allocating thread returns: the offset, and the events (retries, helps) its
    /// alloc recorded.
    type Allocated = (Offset<u8>, Vec<(&'static str, u64)>);

    /// A thread that allocates `size` bytes (`expect`ing `what`).
    fn spawn_alloc(
        arena: &Arc<ModelArena>,
        size: usize,
        what: &'static str,
    ) -> thread::JoinHandle<Allocated> {
        let arena = arena.clone();
        thread::spawn(move || {
            let got = arena.alloc(size, 1).expect(what);
            (got, take_events())
        })
    }

    /// The block (arena-relative offset of its header) an `alloc(_, <= 16)` offset sits in.
    fn block_of(off: Offset<u8>) -> u64 {
        off.get() - 16
    }

    /// The arena's own invariant walk, at the quiescent point after the threads joined.
    fn check(arena: &ModelArena) -> ArenaStats {
        arena
            .check()
            .unwrap_or_else(|e| panic!("free lists corrupt after the race: {e}"))
    }

    fn retried(events: &[(&str, u64)], what: &str) -> bool {
        events.iter().any(|&(e, _)| e == what)
    }

    #[test]
    fn aba_stale_pop_cas_fails_after_pop_pop_free() {
        static ARMS: Arms<6> = Arms::new(
            "aba_stale_pop_cas_fails_after_pop_pop_free",
            [
                "A popped X with no retry (A ran first)",
                "A's pop CAS failed and it retried",
                "A-B-A: A expected X, its CAS failed, and it then popped X again",
                "A popped Y (B held X)",
                "A found the list empty and carved",
                "B's second alloc found the list empty and carved",
            ],
        );
        ARMS.model(|| {
            let (arena, x, y) = two_carved(3);
            arena.free(y).unwrap();
            arena.free(x).unwrap();
            // The class-0 list is now X -> Y; one more block is left to carve.

            let a = spawn_alloc(&arena, 1, "A's alloc");
            let b = {
                let arena = arena.clone();
                thread::spawn(move || {
                    let first = arena.alloc(1, 1).expect("B's first alloc");
                    let second = arena.alloc(1, 1).expect("B's second alloc");
                    arena.free(first).expect("B's free");
                    (first, second)
                })
            };
            let (a_got, a_events) = a.join().unwrap();
            let (b_first, b_held) = b.join().unwrap();

            // Per-block ownership: A and B now each hold one block, never the same one.
            assert_ne!(a_got, b_held, "block {} handed out twice", a_got.get());
            let stats = check(&arena);
            assert_eq!(stats.allocated_blocks, 2, "{stats:?}");
            assert_eq!(stats.unlisted_free_blocks, 0, "{stats:?}");
            assert_eq!(
                stats.free_blocks + stats.allocated_blocks,
                arena.carved() / BLOCK,
                "a carved block is neither held nor listed: {stats:?}"
            );

            let a_retried = retried(&a_events, POP_RETRY);
            let fresh = |o: Offset<u8>| o != x && o != y;
            ARMS.hit_if(
                a_got == x && !a_retried && b_first == y,
                "A popped X with no retry (A ran first)",
            );
            ARMS.hit_if(a_retried, "A's pop CAS failed and it retried");
            ARMS.hit_if(
                a_got == x
                    && a_events
                        .iter()
                        .any(|&(e, at)| e == POP_RETRY && at == block_of(x)),
                "A-B-A: A expected X, its CAS failed, and it then popped X again",
            );
            ARMS.hit_if(a_got == y, "A popped Y (B held X)");
            ARMS.hit_if(fresh(a_got), "A found the list empty and carved");
            ARMS.hit_if(
                fresh(b_held),
                "B's second alloc found the list empty and carved",
            );
        });
    }

    #[test]
    fn pop_racing_a_push_takes_each_listed_block_once() {
        static ARMS: Arms<4> = Arms::new(
            "pop_racing_a_push_takes_each_listed_block_once",
            [
                "A popped X (before B's push)",
                "A popped Y (B's push landed first)",
                "A's pop CAS failed: B's push landed in between",
                "B's push CAS failed: A's pop landed in between",
            ],
        );
        ARMS.model(|| {
            let (arena, x, y) = two_carved(2);
            arena.free(x).unwrap();
            // The list holds X; B holds Y and frees it while A allocates.

            let a = spawn_alloc(&arena, 1, "A's alloc");
            let b = {
                let arena = arena.clone();
                thread::spawn(move || {
                    arena.free(y).expect("B's free");
                    take_events()
                })
            };
            let (a_got, a_events) = a.join().unwrap();
            let b_events = b.join().unwrap();

            assert!(
                a_got == x || a_got == y,
                "A carved although a block was listed"
            );
            let stats = check(&arena);
            assert_eq!(
                (stats.allocated_blocks, stats.free_blocks),
                (1, 1),
                "{stats:?}"
            );
            assert_eq!(stats.unlisted_free_blocks, 0, "{stats:?}");
            // The one listed block is the one A does not hold: pop it and compare.
            let rest = arena.alloc(1, 1).unwrap();
            assert_ne!(rest, a_got, "block {} handed out twice", a_got.get());

            ARMS.hit_if(a_got == x, "A popped X (before B's push)");
            ARMS.hit_if(a_got == y, "A popped Y (B's push landed first)");
            ARMS.hit_if(
                retried(&a_events, POP_RETRY),
                "A's pop CAS failed: B's push landed in between",
            );
            ARMS.hit_if(
                retried(&b_events, PUSH_RETRY),
                "B's push CAS failed: A's pop landed in between",
            );
        });
    }

    #[test]
    fn concurrent_carves_of_two_classes_claim_distinct_blocks() {
        static ARMS: Arms<4> = Arms::new(
            "concurrent_carves_of_two_classes_claim_distinct_blocks",
            [
                "A's block is the first carved",
                "B's block is the first carved",
                "a carver lost the tag CAS, helped the bump, retried",
                "a carver's own bump CAS found it already helped",
            ],
        );
        ARMS.model(|| {
            // Room for exactly one 64-byte and one 128-byte block, in either order.
            let arena = arena(3);
            let first = FIRST_BLOCK_OFFSET;

            let a = spawn_alloc(&arena, 1, "A's carve"); // class 0: 64 bytes
            let b = spawn_alloc(&arena, 100, "B's carve"); // class 1: 128 bytes
            let (a_got, a_events) = a.join().unwrap();
            let (b_got, b_events) = b.join().unwrap();

            let a_block = block_of(a_got);
            let b_block = block_of(b_got);
            let (lo, hi) = if a_block < b_block {
                (a_block, b_block)
            } else {
                (b_block, a_block)
            };
            let lo_size = if lo == a_block { BLOCK } else { 2 * BLOCK };
            assert_eq!(lo, first, "the first block was skipped");
            assert_eq!(hi, lo + lo_size, "the blocks overlap or leave a gap");
            assert_eq!(arena.carved(), 3 * BLOCK);
            let stats = check(&arena);
            assert_eq!(
                (stats.allocated_blocks, stats.free_blocks),
                (2, 0),
                "{stats:?}"
            );

            let all: HashSet<&str> = a_events.iter().chain(&b_events).map(|e| e.0).collect();
            ARMS.hit_if(a_block == first, "A's block is the first carved");
            ARMS.hit_if(b_block == first, "B's block is the first carved");
            ARMS.hit_if(
                all.contains(CARVE_LOST),
                "a carver lost the tag CAS, helped the bump, retried",
            );
            ARMS.hit_if(
                all.contains(CARVE_HELPED),
                "a carver's own bump CAS found it already helped",
            );
        });
    }
}
