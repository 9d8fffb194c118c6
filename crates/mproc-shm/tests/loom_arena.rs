//! Loom models of the arena (`mproc_shm::arena`'s module docs), run over loom's model memory
//! by `arena::model::ModelArena`: the very code `Arena` runs on a segment, on loom atomics
//! instead of overlaid std ones.
//!
//! The guard and its undo journal ("Crash design"): a participant dies by stopping right
//! after a chosen journaled store of its call (`model::die_after`) and then being marked dead
//! (`ModelArena::kill`), which is what the guard's liveness question answers.
//!
//! * `two_allocators_share_the_guard`: A and B each allocate and free (splits and merges of
//!   one small top block): distinct blocks, and the heap whole again. Fails (checked) when
//!   the guard's CAS is a load and a store (both split the same block).
//! * `a_dead_owners_call_is_rolled_back_at_every_store` (one model per store of an
//!   allocation that splits twice, then per store of the free that merges it back): A dies
//!   after store k while B allocates: B either runs first or waits, takes the guard over and
//!   rolls A's call back; the heap is then as if A had never called. Fails (checked) when the
//!   rollback skips its oldest entry, or when a takeover does not roll back.
//! * `a_reclaimer_killed_inside_its_walk`: R dies after each store of its walk's free; S
//!   walks after: the dead holder's block is freed once, counted at most once.
//!
//! The holder words (the module docs' "Held blocks: a holder that dies"): a participant
//! dies by stopping and then storing `dead` (Release); the walk's liveness oracle answers as
//! `Segment::is_alive` does (the model's participants are alive, the dying one until its
//! death is seen with Acquire, any other id — 0, a slot stamp read as a holder — is not).
//! A walk finds dead holders' blocks under the guard, then frees each in a guarded call of
//! its own that re-checks the block first, so two walks may both find a block and the second
//! then finds it gone; `reclaim_queued` judges under the guard too. The holder marks
//! themselves (`hold`, `mark_queued`) stay lock-free stores by the block's owner.
//!
//! * `a_dead_holders_block_is_freed_once_and_counted_once`: A holds a block and dies; B
//!   (once A is dead) and C (racing A) walk while D allocates: the block is freed once,
//!   counted once, and may go straight back to D. Fails (checked), as do the producer
//!   models and `a_committed_block_is_never_taken_by_the_walk`, when the walk's guarded
//!   re-check of each block before freeing it is removed.
//! * `a_holder_that_frees_its_own_block_races_nothing`: A holds, frees its block and dies
//!   while B walks: nothing is taken or counted.
//! * `a_producer_killed_after_alloc_marked` and `a_producer_killed_after_mark_queued`: P
//!   dies on either side of its hand-off; R (once P is dead) and S (racing P) each run the
//!   ring's recovery hook (`reclaim_queued`, S only once it has seen P dead) and a walk,
//!   then R puts again: the block is freed once (by a walk if it was `WRITING`, by one
//!   `reclaim_queued` if `QUEUED`), nothing is counted, R's new block is its own.
//! * `a_committed_block_is_never_taken_by_the_walk`: P hands its block on, commits and
//!   dies; its consumer frees it while R walks: the consumer's free always succeeds.
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

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;
    use mproc_shm::arena::model::{
        FIRST_BLOCK_OFFSET, GUARD_TAKEOVER, GUARD_WAIT, ModelArena, ROLLBACK, die_after, is_death,
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

    /// The arena's own invariant walk, at the quiescent point after the threads joined.
    fn check(arena: &ModelArena) -> ArenaStats {
        arena
            .check()
            .unwrap_or_else(|e| panic!("heap corrupt after the race: {e}"))
    }

    fn noted(events: &[(&str, u64)], what: &str) -> bool {
        events.iter().any(|&(e, _)| e == what)
    }

    /// The guard's participants: A and B (alive, or A dying), and the checker (`SHARED`).
    const A: u32 = 1;
    const B: u32 = 2;

    #[test]
    fn two_allocators_share_the_guard() {
        static ARMS: Arms<3> = Arms::new(
            "two_allocators_share_the_guard",
            [
                "A waited for B's guard",
                "B waited for A's guard",
                "both got the block at the start",
            ],
        );
        ARMS.model(|| {
            // One top block of 4 units: each 64-byte allocation splits it twice (or once).
            let arena = arena(4);
            let first = Offset::<u8>::new(FIRST_BLOCK_OFFSET + 16);
            let spawn = |me: u32| {
                let arena = arena.clone();
                thread::spawn(move || {
                    let x = arena.alloc_as(me, 1, 1).expect("alloc");
                    let events = take_events();
                    (x, events)
                })
            };
            let a = spawn(A);
            let b = spawn(B);
            let (xa, ea) = a.join().unwrap();
            let (xb, eb) = b.join().unwrap();
            assert_ne!(xa, xb, "one block handed out twice");
            let st = check(&arena);
            assert_eq!(st.allocated_blocks, 2, "{st:?}");
            arena.free(xa).unwrap();
            arena.free(xb).unwrap();
            let st = check(&arena);
            assert_eq!((st.allocated_blocks, st.free_blocks), (0, 1), "{st:?}");

            ARMS.hit_if(noted(&ea, GUARD_WAIT), "A waited for B's guard");
            ARMS.hit_if(noted(&eb, GUARD_WAIT), "B waited for A's guard");
            ARMS.hit_if(
                xa == first || xb == first,
                "both got the block at the start",
            );
        });
    }

    /// What A does in `a_dead_owners_call_is_rolled_back_at_every_store`.
    #[derive(Debug, Clone, Copy)]
    enum Call {
        /// An allocation of 64 bytes from a whole 4-unit top block (11 stores).
        Alloc,
        /// The free of such a block, merging it back twice (6 stores).
        Free,
    }

    /// A dies after store `k` of `call` (and is then marked dead) while B allocates 64 bytes.
    fn rolled_back_at(call: Call, k: u32, arms: &'static Arms<3>) {
        arms.model(move || {
            let arena = arena(4);
            let mine = match call {
                Call::Alloc => None,
                Call::Free => Some(arena.alloc_as(A, 1, 1).unwrap()),
            };
            let before = check(&arena);
            let a = {
                let arena = arena.clone();
                thread::spawn(move || {
                    die_after(k);
                    let r = match (call, mine) {
                        (Call::Free, Some(x)) => arena.free_as(A, x).map(|()| x),
                        _ => arena.alloc_as(A, 1, 1),
                    };
                    match r {
                        Err(e) if is_death(&e) => {
                            arena.kill(A);
                            true
                        }
                        Err(e) => panic!("A's call failed: {e}"),
                        Ok(_) => false,
                    }
                })
            };
            let (xb, eb) = {
                let x = arena.alloc_as(B, 1, 1).expect("B's alloc");
                (x, take_events())
            };
            let died = a.join().unwrap();
            let st = check(&arena);
            if !died {
                // B ran first, and A's call then needed fewer stores than `k + 1`.
                let expected = match call {
                    Call::Alloc => 2,
                    Call::Free => 1,
                };
                assert_eq!(st.allocated_blocks, expected, "{call:?} {k}: {st:?}");
                arms.hit("B ran before A took the guard");
                return;
            }
            // A's call is undone: B's block is the only change from before.
            assert_eq!(st.allocated_blocks, before.allocated_blocks + 1, "{st:?}");
            if let Some(x) = mine {
                assert_ne!(x, xb, "A's block handed to B while A held it");
            }
            arena.free(xb).unwrap();
            assert_eq!(
                check(&arena),
                before,
                "the heap differs from before A's call"
            );

            arms.hit_if(!noted(&eb, GUARD_WAIT), "B ran before A took the guard");
            arms.hit_if(
                noted(&eb, GUARD_TAKEOVER),
                "B took the guard over from dead A",
            );
            arms.hit_if(noted(&eb, ROLLBACK), "B rolled A's call back");
            let _ = k;
        });
    }

    #[test]
    fn a_dead_owners_call_is_rolled_back_at_every_store() {
        // Every arm is reached at every store: A's call is the first to take the guard in
        // some interleaving, and then it dies there.
        const NAMES: [&str; 3] = [
            "B ran before A took the guard",
            "B took the guard over from dead A",
            "B rolled A's call back",
        ];
        static ALLOC: [Arms<3>; 11] = [const { Arms::new("rolled back: alloc", NAMES) }; 11];
        static FREE: [Arms<3>; 6] = [const { Arms::new("rolled back: free", NAMES) }; 6];
        for (k, arms) in ALLOC.iter().enumerate() {
            rolled_back_at(Call::Alloc, k as u32, arms);
        }
        for (k, arms) in FREE.iter().enumerate() {
            rolled_back_at(Call::Free, k as u32, arms);
        }
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

    /// Runs `f` in a thread of its own with its own handles on the arena and the death
    /// flag (cloned before the spawn, as each model's threads need).
    fn spawn_with<T: Send + 'static>(
        arena: &Arc<ModelArena>,
        dead: &Arc<AtomicBool>,
        f: impl FnOnce(&ModelArena, &AtomicBool) -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let (arena, dead) = (arena.clone(), dead.clone());
        thread::spawn(move || f(&arena, &dead))
    }

    /// An arena with room for `blocks` blocks, and `DYING`'s death flag (alive yet).
    fn arena_and_death(blocks: u64) -> (Arc<ModelArena>, Arc<AtomicBool>) {
        (arena(blocks), Arc::new(AtomicBool::new(false)))
    }

    /// A, the holder, in a thread of its own: allocates a block and holds it as `DYING`,
    /// frees it again if `frees_own`, then dies. Returns the block.
    fn spawn_holder(
        arena: &Arc<ModelArena>,
        dead: &Arc<AtomicBool>,
        frees_own: bool,
    ) -> thread::JoinHandle<Offset<u8>> {
        spawn_with(arena, dead, move |arena, dead| {
            let x = arena.alloc(1, 1).expect("A's alloc");
            arena.hold(x, DYING).expect("A's hold");
            if frees_own {
                arena.free(x).expect("A's own free");
            }
            die(dead);
            x
        })
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
    /// is the one block allocated. Frees `kept`: the arena is then its one top block again.
    fn freed_once(arena: &ModelArena, x: Offset<u8>, kept: Option<Offset<u8>>) {
        let stats = check(arena);
        assert_eq!(
            stats.allocated_blocks,
            u64::from(kept.is_some()),
            "{stats:?}"
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
            (stats.allocated_blocks, stats.free_blocks),
            (0, 1),
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
            // Room for A's block and the one D splits off if it comes before the reclaim.
            let (arena, dead) = arena_and_death(2);

            let a = spawn_holder(&arena, &dead, false);
            let c = spawn_with(&arena, &dead, move |arena, dead| walk(arena, dead, SECOND));
            // B: a recovery that runs once A is dead; then D, an allocation racing C. (A
            // fourth thread for D makes three guard waiters at once, which loom cannot
            // explore in reasonable time; D after B on the model's thread still races C.)
            let x = a.join().unwrap();
            let (b_counted, _) = walk(&arena, &dead, MAIN);
            let d_got = arena.alloc(1, 1).expect("D's alloc");
            let (c_counted, c_looks) = c.join().unwrap();

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
        // (A walk that met `HELD(A)` and found A dead after its free cannot happen any
        // more: the walk and the free both run under the guard.)
        static ARMS: Arms<2> = Arms::new(
            "a_holder_that_frees_its_own_block_races_nothing",
            [
                "B's walk met HELD(A) while A lived",
                "B's walk asked about nobody",
            ],
        );
        ARMS.model(|| {
            let (arena, dead) = arena_and_death(1);

            let a = spawn_holder(&arena, &dead, true);
            // B walks in a thread of its own: run on the model's thread right after the
            // spawn, its walk met A in one interleaving only (loom 0.7's DPOR drops a newly
            // spawned thread that starts with a load, tokio-rs/loom#392).
            let b = spawn_with(&arena, &dead, move |arena, dead| walk(arena, dead, MAIN));
            let x = a.join().unwrap();
            let (counted, looks) = b.join().unwrap();

            assert_eq!(counted, 0, "B took a block its live holder freed");
            assert_eq!(arena.held_reclaimed(), 0);
            freed_once(&arena, x, None);

            ARMS.hit_if(
                looks.contains(&(DYING, true)),
                "B's walk met HELD(A) while A lived",
            );
            assert!(
                !looks.contains(&(DYING, false)),
                "B's walk met HELD(A) after A's free"
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
    const BOTH_WALKS_TRIED: &str = "both walks found P dead: the second's re-check failed";
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
            let (arena, dead) = arena_and_death(2);
            // The block at the start: only P allocates before R's next put.
            let x = Offset::new(FIRST_BLOCK_OFFSET + 16);

            let p = spawn_with(&arena, &dead, move |arena, dead| {
                let got = arena.alloc_marked(1, 1, DYING).expect("P's alloc");
                assert_eq!(got, x);
                if stop == Stop::AfterMarkQueued {
                    arena.mark_queued(got, STAMP).expect("P's hand-off");
                }
                die(dead);
            });
            let s = spawn_with(&arena, &dead, move |arena, dead| {
                // Acquire: pairs with the Release store in `die`: the ring shows S the
                // dead claim, and the payload naming `x`, once P is dead.
                let hooked = dead
                    .load(Ordering::Acquire)
                    .then(|| reclaim_claim(arena, x, SECOND));
                let (counted, looks) = walk(arena, dead, SECOND);
                (hooked, counted, looks)
            });
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
        // (One walk meeting the other's reclaim under way cannot happen any more: each
        // block is re-checked and freed by a guarded call of its own.)
        static ARMS: Arms<5> = Arms::new(
            "a_producer_killed_after_alloc_marked",
            [
                R_WALK_TRIED,
                S_WALK_TRIED,
                BOTH_WALKS_TRIED,
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
            let (arena, dead) = arena_and_death(1);

            let p = spawn_with(&arena, &dead, move |arena, dead| {
                let x = arena.alloc_marked(1, 1, DYING).expect("P's alloc");
                arena.mark_queued(x, STAMP).expect("P's hand-off");
                // P commits its slot here; then it dies.
                die(dead);
                x
            });
            let r = spawn_with(&arena, &dead, move |arena, dead| walk(arena, dead, SECOND));
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
