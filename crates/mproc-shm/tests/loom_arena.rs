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
//! (tests/common/arms.rs).

mod common;

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

    use crate::common::arms::{Arm, assert_all_reached};

    /// Block size of class 0, and so of every `alloc(1, 1)`.
    const BLOCK: u64 = 64;

    /// An arena with room for `blocks` 64-byte blocks.
    fn arena(blocks: u64) -> Arc<ModelArena> {
        Arc::new(ModelArena::new(FIRST_BLOCK_OFFSET + blocks * BLOCK).unwrap())
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

    static ABA_A_FIRST: Arm = Arm::new("A popped X with no retry (A ran first)");
    static ABA_A_RETRIED: Arm = Arm::new("A's pop CAS failed and it retried");
    static ABA_SHAPE: Arm =
        Arm::new("A-B-A: A expected X, its CAS failed, and it then popped X again");
    static ABA_A_GOT_Y: Arm = Arm::new("A popped Y (B held X)");
    static ABA_A_CARVED: Arm = Arm::new("A found the list empty and carved");
    static ABA_B_CARVED: Arm = Arm::new("B's second alloc found the list empty and carved");

    #[test]
    fn aba_stale_pop_cas_fails_after_pop_pop_free() {
        loom::model(|| {
            let arena = arena(3);
            let x = arena.alloc(1, 1).unwrap();
            let y = arena.alloc(1, 1).unwrap();
            arena.free(y).unwrap();
            arena.free(x).unwrap();
            // The class-0 list is now X -> Y; one more block is left to carve.

            let a = {
                let arena = arena.clone();
                thread::spawn(move || {
                    let got = arena.alloc(1, 1).expect("A's alloc");
                    (got, take_events())
                })
            };
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
            ABA_A_FIRST.hit_if(a_got == x && !a_retried && b_first == y);
            ABA_A_RETRIED.hit_if(a_retried);
            ABA_SHAPE.hit_if(
                a_got == x
                    && a_events
                        .iter()
                        .any(|&(e, at)| e == POP_RETRY && at == block_of(x)),
            );
            ABA_A_GOT_Y.hit_if(a_got == y);
            ABA_A_CARVED.hit_if(fresh(a_got));
            ABA_B_CARVED.hit_if(fresh(b_held));
        });
        assert_all_reached(
            "aba_stale_pop_cas_fails_after_pop_pop_free",
            &[
                &ABA_A_FIRST,
                &ABA_A_RETRIED,
                &ABA_SHAPE,
                &ABA_A_GOT_Y,
                &ABA_A_CARVED,
                &ABA_B_CARVED,
            ],
        );
    }

    static PP_A_GOT_X: Arm = Arm::new("A popped X (before B's push)");
    static PP_A_GOT_Y: Arm = Arm::new("A popped Y (B's push landed first)");
    static PP_POP_RETRY: Arm = Arm::new("A's pop CAS failed: B's push landed in between");
    static PP_PUSH_RETRY: Arm = Arm::new("B's push CAS failed: A's pop landed in between");

    #[test]
    fn pop_racing_a_push_takes_each_listed_block_once() {
        loom::model(|| {
            let arena = arena(2);
            let x = arena.alloc(1, 1).unwrap();
            let y = arena.alloc(1, 1).unwrap();
            arena.free(x).unwrap();
            // The list holds X; B holds Y and frees it while A allocates.

            let a = {
                let arena = arena.clone();
                thread::spawn(move || {
                    let got = arena.alloc(1, 1).expect("A's alloc");
                    (got, take_events())
                })
            };
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

            PP_A_GOT_X.hit_if(a_got == x);
            PP_A_GOT_Y.hit_if(a_got == y);
            PP_POP_RETRY.hit_if(retried(&a_events, POP_RETRY));
            PP_PUSH_RETRY.hit_if(retried(&b_events, PUSH_RETRY));
        });
        assert_all_reached(
            "pop_racing_a_push_takes_each_listed_block_once",
            &[&PP_A_GOT_X, &PP_A_GOT_Y, &PP_POP_RETRY, &PP_PUSH_RETRY],
        );
    }

    static CV_A_FIRST: Arm = Arm::new("A's block is the first carved");
    static CV_B_FIRST: Arm = Arm::new("B's block is the first carved");
    static CV_LOST: Arm = Arm::new("a carver lost the tag CAS, helped the bump, retried");
    static CV_HELPED: Arm = Arm::new("a carver's own bump CAS found it already helped");

    #[test]
    fn concurrent_carves_of_two_classes_claim_distinct_blocks() {
        loom::model(|| {
            // Room for exactly one 64-byte and one 128-byte block, in either order.
            let arena = arena(3);
            let first = FIRST_BLOCK_OFFSET;

            let spawn = |size: usize| {
                let arena = arena.clone();
                thread::spawn(move || {
                    let got = arena.alloc(size, 1).expect("carve");
                    (got, take_events())
                })
            };
            let a = spawn(1); // class 0: 64 bytes
            let b = spawn(100); // class 1: 128 bytes
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
            CV_A_FIRST.hit_if(a_block == first);
            CV_B_FIRST.hit_if(b_block == first);
            CV_LOST.hit_if(all.contains(CARVE_LOST));
            CV_HELPED.hit_if(all.contains(CARVE_HELPED));
        });
        assert_all_reached(
            "concurrent_carves_of_two_classes_claim_distinct_blocks",
            &[&CV_A_FIRST, &CV_B_FIRST, &CV_LOST, &CV_HELPED],
        );
    }
}
