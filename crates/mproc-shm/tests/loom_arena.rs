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
//! The holder words (the module docs' "Held blocks: a holder that dies"): a participant
//! dies by stopping and then storing `dead` (Release); the liveness oracle answers as
//! `Segment::is_alive` does (the model's participants are alive, the dying one until its
//! death is seen with Acquire, any other id — 0, a slot stamp read as a holder — is not).
//!
//! * `a_dead_holders_block_is_freed_once_and_counted_once`: A holds a block and dies; B
//!   (once A is dead) and C (racing A) walk while D allocates: the block is freed once,
//!   counted once, and may go straight back to D. Fails (checked) when the walk counts a
//!   block at its look instead of at its winning CAS. Counting a `RECLAIMING(dead)` block
//!   again is not caught: no model's reclaimer can die between its CAS and its free (the
//!   model arena has no stop point inside `reclaim_dead`).
//! * `a_holder_that_frees_its_own_block_races_nothing`: A holds, frees its block and dies
//!   while B walks: nothing is taken or counted, even by a walk that read `HELD(A)` before
//!   the free and found A dead after it. Fails (checked) when the walk's election CAS is a
//!   plain store.
//! * `a_producer_killed_after_alloc_marked` and `a_producer_killed_after_mark_queued`: P
//!   dies on either side of its hand-off; R (once P is dead) and S (racing P) each run the
//!   ring's recovery hook (`reclaim_queued`, S only once it has seen P dead) and a walk,
//!   then R puts again: the block is freed once (by a walk if it was `WRITING`, by one
//!   `reclaim_queued` if `QUEUED`), nothing is counted, R's new block is its own. Fail
//!   (checked) when `reclaim_queued`'s CAS is a load and a store (R's put gets the block
//!   back and S's stale hook frees it under R), when the walk skips `WRITING` blocks, and
//!   when `alloc_marked` does not raise the count of marked blocks (the walk is skipped).
//! * `a_committed_block_is_never_taken_by_the_walk`: P hands its block on, commits and
//!   dies; its consumer frees it while R walks: the consumer's free always succeeds.
//!   Fails (checked) when the walk frees `QUEUED` blocks too.
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
    use std::cell::RefCell;
    use std::collections::HashSet;

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;
    use mproc_shm::arena::model::{
        CARVE_HELPED, CARVE_LOST, FIRST_BLOCK_OFFSET, ModelArena, POP_RETRY, PUSH_RETRY,
        take_events,
    };
    use mproc_shm::{ArenaError, ArenaStats, Offset};

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

    // Held blocks: a holder that dies (`arena`'s module docs).

    /// The participant that dies in each model (A, the holder; P, the producer).
    const DYING: u32 = 1;
    /// B, R, the consumer (the model's own thread, but for the walker B of the second
    /// model), alive throughout.
    const MAIN: u32 = 2;
    /// The racing participant (C, S, the recoverer of the last model), alive throughout.
    const SECOND: u32 = 3;
    /// The allocator D of the first model, alive throughout.
    const ALLOCATOR: u32 = 4;
    /// The stamp of the slot a producer hands its block to. Read as a participant id it
    /// names nobody alive, so a walk that took a `QUEUED` word for a holder would free it.
    const STAMP: u32 = 0x5A;

    /// What a participant's liveness oracle was asked during one walk, and answered.
    type Looks = RefCell<Vec<(u32, bool)>>;

    /// The liveness oracle, answering as `Segment::is_alive` does: the model's participants
    /// are alive, `DYING` until its death is seen; any other id names nobody alive. Each
    /// answer is recorded in `looks`.
    fn liveness<'a>(dead: &'a AtomicBool, looks: &'a Looks) -> impl Fn(u32) -> bool + 'a {
        move |id| {
            let alive = match id {
                // Acquire: pairs with the Release store in `die`: a walk told "dead" sees
                // every mark the dead participant made.
                DYING => !dead.load(Ordering::Acquire),
                MAIN | SECOND | ALLOCATOR => true,
                _ => false,
            };
            looks.borrow_mut().push((id, alive));
            alive
        }
    }

    /// `DYING`'s death: it has stopped (its thread returns next), and is now dead.
    fn die(dead: &AtomicBool) {
        // Release: pairs with the Acquire loads of `dead`: whoever finds it dead sees all it
        // did.
        dead.store(true, Ordering::Release);
    }

    /// `me`'s `reclaim_dead` walk: the held blocks it counted, and the oracle's answers.
    fn walk(arena: &ModelArena, dead: &AtomicBool, me: u32) -> (u64, Vec<(u32, bool)>) {
        let looks = Looks::default();
        let counted = arena
            .reclaim_dead(liveness(dead, &looks), me)
            .unwrap_or_else(|e| panic!("participant {me}'s walk failed: {e}"));
        (counted, looks.into_inner())
    }

    /// `me`'s ring recovery hook for the dead claim of stamp `STAMP` whose payload names
    /// `x`: `true` if it freed the block.
    fn reclaim_claim(arena: &ModelArena, x: Offset<u8>, me: u32) -> bool {
        arena
            .reclaim_queued(x, STAMP, me)
            .unwrap_or_else(|e| panic!("participant {me}'s reclaim_queued failed: {e}"))
    }

    /// The end state of a held-block model, once its threads joined: `x` was freed exactly
    /// once, and `kept` (a block a live participant allocated meanwhile, perhaps `x` again)
    /// is the one block allocated. Frees `kept`.
    fn freed_once(arena: &ModelArena, x: Offset<u8>, kept: Option<Offset<u8>>) {
        let stats = check(arena);
        assert_eq!(stats.unlisted_free_blocks, 0, "{stats:?}");
        assert_eq!(
            stats.allocated_blocks,
            u64::from(kept.is_some()),
            "{stats:?}"
        );
        assert_eq!(
            stats.free_blocks + stats.allocated_blocks,
            arena.carved() / BLOCK,
            "a carved block is neither held nor listed: {stats:?}"
        );
        if let Some(kept) = kept {
            arena.free(kept).expect("the live participant's block");
        }
        assert_eq!(
            arena.free(x),
            Err(ArenaError::DoubleFree { offset: x.get() }),
            "block {} was never freed",
            x.get()
        );
        let stats = check(arena);
        assert_eq!(
            (stats.allocated_blocks, stats.unlisted_free_blocks),
            (0, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn a_dead_holders_block_is_freed_once_and_counted_once() {
        static ARMS: Arms<4> = Arms::new(
            "a_dead_holders_block_is_freed_once_and_counted_once",
            [
                "B reclaimed",
                "C reclaimed",
                "the allocator got the reclaimed block back",
                "C's walk met HELD(A) while A lived",
            ],
        );
        ARMS.model(|| {
            // Room for A's block and the one D carves if it comes before the reclaim.
            let arena = arena(2);
            let dead = Arc::new(AtomicBool::new(false));

            let a = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || {
                    let x = arena.alloc(1, 1).expect("A's alloc");
                    arena.hold(x, DYING).expect("A's hold");
                    die(&dead);
                    x
                })
            };
            let c = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || walk(&arena, &dead, SECOND))
            };
            let d = spawn_alloc(&arena, 1, "D's alloc");
            // B: a recovery that runs once A is dead.
            let x = a.join().unwrap();
            let (b_counted, _) = walk(&arena, &dead, MAIN);
            let (c_counted, c_looks) = c.join().unwrap();
            let (d_got, _) = d.join().unwrap();

            assert_eq!(
                (b_counted, c_counted, arena.held_reclaimed()),
                (1 - c_counted, c_counted, 1),
                "(B counted, C counted, held_reclaimed): the dead holder's block counted once"
            );
            freed_once(&arena, x, Some(d_got));

            ARMS.hit_if(b_counted == 1, "B reclaimed");
            ARMS.hit_if(c_counted == 1, "C reclaimed");
            ARMS.hit_if(d_got == x, "the allocator got the reclaimed block back");
            ARMS.hit_if(
                c_looks.contains(&(DYING, true)),
                "C's walk met HELD(A) while A lived",
            );
        });
    }

    #[test]
    fn a_holder_that_frees_its_own_block_races_nothing() {
        static ARMS: Arms<3> = Arms::new(
            "a_holder_that_frees_its_own_block_races_nothing",
            [
                "B's walk met HELD(A) while A lived",
                "B's walk met HELD(A) and found A dead after its free: its CAS failed",
                "B's walk asked about nobody",
            ],
        );
        ARMS.model(|| {
            let arena = arena(1);
            let dead = Arc::new(AtomicBool::new(false));

            let a = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || {
                    let x = arena.alloc(1, 1).expect("A's alloc");
                    arena.hold(x, DYING).expect("A's hold");
                    arena.free(x).expect("A's own free");
                    die(&dead);
                    x
                })
            };
            // B walks in a thread of its own: run on the model's thread right after the
            // spawn, its walk met A in one interleaving only (loom 0.7's DPOR drops a newly
            // spawned thread that starts with a load, tokio-rs/loom#392).
            let b = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || walk(&arena, &dead, MAIN))
            };
            let x = a.join().unwrap();
            let (counted, looks) = b.join().unwrap();

            assert_eq!(counted, 0, "B took a block its live holder freed");
            assert_eq!(arena.held_reclaimed(), 0);
            freed_once(&arena, x, None);

            ARMS.hit_if(
                looks.contains(&(DYING, true)),
                "B's walk met HELD(A) while A lived",
            );
            ARMS.hit_if(
                looks.contains(&(DYING, false)),
                "B's walk met HELD(A) and found A dead after its free: its CAS failed",
            );
            ARMS.hit_if(looks.is_empty(), "B's walk asked about nobody");
        });
    }

    /// Where the producer of `producer_killed` stops (and dies).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Stop {
        /// Its block is `WRITING(P)`: staged, maybe named by a half-written claim.
        AfterAllocMarked,
        /// Its block is `QUEUED(STAMP)`, named by its claim, which is not committed.
        AfterMarkQueued,
    }

    const R_WALK_TRIED: &str = "R's walk found P dead and tried its CAS";
    const S_WALK_TRIED: &str = "S's walk found P dead and tried its CAS";
    const BOTH_WALKS_TRIED: &str = "both walks found P dead: one CAS lost";
    const R_MET_S: &str = "R's walk met S's reclaim under way";
    const R_QUEUED_FREED: &str = "R's reclaim_queued freed it";
    const S_QUEUED_FREED: &str = "S's reclaim_queued freed it";
    const S_MET_R: &str = "S's walk met R's reclaim under way";
    const S_MET_P_LATE: &str = "S's walk met WRITING(P), then P handed it on and died";
    const S_MET_P_ALIVE: &str = "S's walk met WRITING(P) while P lived";
    const R_GOT_IT_BACK: &str = "R's next put got the freed block back";

    /// P stops at `stop` and dies. R (once P is dead) and S (racing P) each recover as a
    /// queue does: the ring's hook for the dead claim (`reclaim_queued`; S only once it has
    /// seen P dead, which is when the ring shows it the claim), then a walk. R then puts
    /// again (`alloc_marked`), racing S.
    fn producer_killed<const N: usize>(stop: Stop, arms: &'static Arms<N>) {
        arms.model(move || {
            // Room for P's block and the one R's next put carves if P's is not back yet.
            let arena = arena(2);
            let dead = Arc::new(AtomicBool::new(false));
            // The first block carved: only P allocates before R's next put.
            let x = Offset::new(FIRST_BLOCK_OFFSET + 16);

            let p = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || {
                    let got = arena.alloc_marked(1, 1, DYING).expect("P's alloc");
                    assert_eq!(got, x);
                    if stop == Stop::AfterMarkQueued {
                        arena.mark_queued(got, STAMP).expect("P's hand-off");
                    }
                    die(&dead);
                })
            };
            let s = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || {
                    // Acquire: pairs with the Release store in `die`: the ring shows S the
                    // dead claim, and the payload naming `x`, once P is dead.
                    let hooked = dead
                        .load(Ordering::Acquire)
                        .then(|| reclaim_claim(&arena, x, SECOND));
                    let (counted, looks) = walk(&arena, &dead, SECOND);
                    (hooked, counted, looks)
                })
            };
            // R: a recovery that runs once P is dead.
            p.join().unwrap();
            let r_freed = reclaim_claim(&arena, x, MAIN);
            let (r_counted, r_looks) = walk(&arena, &dead, MAIN);
            let r_got = arena.alloc_marked(1, 1, MAIN).expect("R's next put");
            let (s_hooked, s_counted, s_looks) = s.join().unwrap();
            let s_freed = s_hooked == Some(true);

            assert_eq!(
                (r_counted, s_counted, arena.held_reclaimed()),
                (0, 0, 0),
                "a producer's block counted as held"
            );
            match stop {
                Stop::AfterAllocMarked => assert!(
                    !r_freed && !s_freed,
                    "reclaim_queued freed a WRITING block (R {r_freed}, S {s_freed})"
                ),
                Stop::AfterMarkQueued => assert!(
                    r_freed != s_freed,
                    "the QUEUED block freed by R: {r_freed}, by S: {s_freed}"
                ),
            }
            freed_once(&arena, x, Some(r_got));

            let r_tried = r_looks.contains(&(DYING, false));
            let s_tried = s_looks.contains(&(DYING, false));
            match stop {
                Stop::AfterAllocMarked => {
                    arms.hit_if(r_tried, R_WALK_TRIED);
                    arms.hit_if(s_tried, S_WALK_TRIED);
                    arms.hit_if(r_tried && s_tried, BOTH_WALKS_TRIED);
                    arms.hit_if(r_looks.contains(&(SECOND, true)), R_MET_S);
                }
                Stop::AfterMarkQueued => {
                    arms.hit_if(r_freed, R_QUEUED_FREED);
                    arms.hit_if(s_freed, S_QUEUED_FREED);
                    arms.hit_if(s_looks.contains(&(MAIN, true)), S_MET_R);
                    // The CAS from `WRITING(P)` must fail: the word is `QUEUED` by then.
                    arms.hit_if(s_tried, S_MET_P_LATE);
                }
            }
            arms.hit_if(s_looks.contains(&(DYING, true)), S_MET_P_ALIVE);
            arms.hit_if(r_got == x, R_GOT_IT_BACK);
        });
    }

    #[test]
    fn a_producer_killed_after_alloc_marked() {
        static ARMS: Arms<6> = Arms::new(
            "a_producer_killed_after_alloc_marked",
            [
                R_WALK_TRIED,
                S_WALK_TRIED,
                BOTH_WALKS_TRIED,
                R_MET_S,
                S_MET_P_ALIVE,
                R_GOT_IT_BACK,
            ],
        );
        producer_killed(Stop::AfterAllocMarked, &ARMS);
    }

    #[test]
    fn a_producer_killed_after_mark_queued() {
        static ARMS: Arms<6> = Arms::new(
            "a_producer_killed_after_mark_queued",
            [
                R_QUEUED_FREED,
                S_QUEUED_FREED,
                S_MET_R,
                S_MET_P_LATE,
                S_MET_P_ALIVE,
                R_GOT_IT_BACK,
            ],
        );
        producer_killed(Stop::AfterMarkQueued, &ARMS);
    }

    #[test]
    fn a_committed_block_is_never_taken_by_the_walk() {
        static ARMS: Arms<3> = Arms::new(
            "a_committed_block_is_never_taken_by_the_walk",
            [
                "R's walk met WRITING(P) while P lived",
                "R's walk met WRITING(P) and found P dead after its commit",
                "R's walk asked about nobody",
            ],
        );
        ARMS.model(|| {
            let arena = arena(1);
            let dead = Arc::new(AtomicBool::new(false));

            let p = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || {
                    let x = arena.alloc_marked(1, 1, DYING).expect("P's alloc");
                    arena.mark_queued(x, STAMP).expect("P's hand-off");
                    // P commits its slot here; then it dies.
                    die(&dead);
                    x
                })
            };
            let r = {
                let (arena, dead) = (arena.clone(), dead.clone());
                thread::spawn(move || walk(&arena, &dead, SECOND))
            };
            // The consumer takes the committed slot (the join stands for the slot's
            // Release/Acquire) and frees the block it names.
            let x = p.join().unwrap();
            arena
                .free(x)
                .expect("the consumer's free of a committed block");
            let (counted, looks) = r.join().unwrap();

            assert_eq!(counted, 0, "the walk counted a committed block");
            assert_eq!(arena.held_reclaimed(), 0);
            freed_once(&arena, x, None);

            ARMS.hit_if(
                looks.contains(&(DYING, true)),
                "R's walk met WRITING(P) while P lived",
            );
            ARMS.hit_if(
                looks.contains(&(DYING, false)),
                "R's walk met WRITING(P) and found P dead after its commit",
            );
            ARMS.hit_if(looks.is_empty(), "R's walk asked about nobody");
        });
    }
}
