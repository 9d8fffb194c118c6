//! The storm engine: start a scenario's workers, SIGKILL random ones at random moments and
//! restart them, sample for stalls and over-grants, then stop, drain, and check the ledger.

use std::time::{Duration, Instant};

use mproc::{BoundedSemaphore, JoinableQueue, Process, Queue, Semaphore, StartMethod};

use crate::ledger::{Item, Ledger, MAX_INCARNATIONS, Phase, Word, now_ns};
use crate::workers;

/// What a worker slot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Producer,
    Consumer,
    Poller,
    /// JoinableQueue worker: get, record, `task_done`.
    Worker,
    Joiner,
    Holder,
}

impl Role {
    fn gets(self) -> bool {
        matches!(self, Role::Consumer | Role::Poller | Role::Worker)
    }
}

/// Which shared objects a scenario storms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Queue,
    Joinable,
    Semaphore,
}

/// One storm.
#[derive(Debug)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    kind: Kind,
    /// Producers start by spawn (everyone else by fork).
    spawn_producers: bool,
    roles: &'static [(Role, u32)],
    capacity: u32,
    /// Payload bytes: `min..=min+span`.
    payload: (u64, u64),
    /// A kill every `min..max` milliseconds.
    kill_ms: (u64, u64),
    /// How producers put and what the stall meter reads.
    producers: Producers,
    /// Only workers of this role are killed (`None`: any worker).
    victims: Option<Role>,
}

/// How a scenario's producers put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Producers {
    /// `put_timeout` in slices: a producer blocked on a full queue sleeps, and a sleeper
    /// runs the ring's full recovery pass after each slice. The stall meter reads `qsize()`.
    Blocking,
    /// Only `put_nowait`, at most this many items a millisecond per producer (a short sleep
    /// and a retry on `Full`): nobody ever sleeps in the queue, so a dead producer's claim
    /// is recovered by the `get_nowait` pollers or by nobody. The stall meter reads the
    /// ledger, not `qsize()` (which recovers stuck claims too): it counts while an item
    /// committed after the last delivery is still undelivered.
    Nowait { per_ms: u64 },
}

/// Permits of each semaphore in the `semaphore` scenario.
const PERMITS: u32 = 3;

/// What most storms share: a `Queue` of 64 slots, everyone started by fork, a kill every 5
/// to 40 ms of any worker, blocking producers. Each scenario names what differs.
const STORM: Scenario = Scenario {
    name: "",
    what: "",
    kind: Kind::Queue,
    spawn_producers: false,
    roles: &[],
    capacity: 64,
    payload: (8, 40),
    kill_ms: (5, 40),
    producers: Producers::Blocking,
    victims: None,
};

/// Every scenario, in the order they run.
pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "queue-inline",
        what: "Queue, small messages (inline in the ring), fork",
        roles: &[(Role::Producer, 3), (Role::Consumer, 3)],
        ..STORM
    },
    Scenario {
        name: "queue-arena",
        what: "Queue, messages larger than the slot (through the arena, whose blocks split and \
               merge; 64 slots of up to 32 KiB outgrow its 1 MiB, so puts also wait for \
               arena room), fork",
        roles: &[(Role::Producer, 3), (Role::Consumer, 3)],
        payload: (200, 30_000),
        ..STORM
    },
    Scenario {
        name: "queue-spawn",
        what: "Queue, producers started by spawn, mixed sizes",
        spawn_producers: true,
        roles: &[(Role::Producer, 3), (Role::Consumer, 2)],
        payload: (8, 400),
        kill_ms: (30, 120),
        ..STORM
    },
    // #12 finding 1: pollers alone behind a dead producer's claim. Nobody here ever sleeps
    // in the queue (a sleeper's 50 ms recovery pass would rescue the pollers), the queue is
    // far from full (so `put_nowait` never meets the claim either), the supervisor's meter
    // does not call `qsize()`, and the pollers, the supervisor and the other producer are
    // live holders. Only producers are killed: a poller dying in its claim would leave a
    // consumer's claim that stops the `put_nowait` producers instead (finding 3). A kill
    // lands inside a producer's slot claim a few times in ten seconds, hence two fast
    // producers of small inline items (the claim is a fixed share of a put) and a ring that
    // holds over 100 ms of their output.
    Scenario {
        name: "nowait-pollers",
        what: "Queue, get_nowait pollers behind paced put_nowait producers",
        roles: &[(Role::Producer, 2), (Role::Poller, 3)],
        capacity: 1 << 17,
        producers: Producers::Nowait { per_ms: 500 },
        victims: Some(Role::Producer),
        ..STORM
    },
    Scenario {
        name: "joinable",
        what: "JoinableQueue: put / get + task_done / join_timeout",
        kind: Kind::Joinable,
        roles: &[(Role::Producer, 3), (Role::Worker, 3), (Role::Joiner, 1)],
        capacity: 16,
        payload: (8, 200),
        ..STORM
    },
    Scenario {
        name: "semaphore",
        what: "Semaphore and BoundedSemaphore holders",
        kind: Kind::Semaphore,
        roles: &[(Role::Holder, 8)],
        capacity: 0,
        payload: (0, 0),
        ..STORM
    },
];

/// The checks; each failed one is a [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// An item delivered twice.
    Duplicate,
    /// A checksum mismatch, an impossible id or a decode error.
    Corrupt,
    /// Committed items undelivered beyond `lost()` + kills in `get`.
    Loss,
    /// No delivery for longer than the bound while items were queued and a consumer lived.
    Stall,
    /// A worker that ignored its stop flag, or a killed one not reaped in time.
    Straggler,
    /// An unexpected API error or exit in a worker, or a worker that failed to start.
    WorkerError,
    /// `unfinished_tasks` above what deaths of workers and lost items explain.
    PhantomTask,
    /// `unfinished_tasks` above what any death explains.
    TaskCount,
    /// `join` returned `true` while tasks were open.
    JoinEarly,
    /// `join` did not return within the bound after every task was done.
    JoinHang,
    /// Permits missing once every holder is gone.
    PermitsLost,
    /// No holder acquired for longer than the bound while some were waiting (or one
    /// acquire took that long).
    AcquireWait,
    /// More holders than permits, more permits than the initial value, or a refused release.
    OverGrant,
    /// Arena blocks still allocated after the drain and a recovery pass (a leak).
    ArenaLeak,
    /// The arena's heap-invariant checker (`Queue::arena_check`, run every 100 ms during the
    /// storm and after the drain) found a broken invariant.
    ArenaHeap,
}

impl Check {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Check::Duplicate => "duplicate",
            Check::Corrupt => "corrupt",
            Check::Loss => "uncounted loss",
            Check::Stall => "stall",
            Check::Straggler => "straggler",
            Check::WorkerError => "worker error",
            Check::PhantomTask => "phantom task",
            Check::TaskCount => "task count",
            Check::JoinEarly => "join returned early",
            Check::JoinHang => "join hangs",
            Check::PermitsLost => "permits lost",
            Check::AcquireWait => "acquire wait",
            Check::OverGrant => "over-grant",
            Check::ArenaLeak => "arena leak",
            Check::ArenaHeap => "arena heap invariant",
        }
    }
}

/// A failed check, with figures.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub(crate) check: Check,
    pub(crate) detail: String,
}

/// Bounds of the checks.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Longest allowed stall (and semaphore wait).
    pub(crate) stall: Duration,
    /// How long `join` may take to return once every task is done.
    pub(crate) join: Duration,
}

/// What one storm measured.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) name: &'static str,
    pub(crate) storm: Duration,
    pub(crate) total: Duration,
    pub(crate) kills: [u64; Phase::ALL.len()],
    pub(crate) starts: u64,
    pub(crate) retired: u64,
    pub(crate) kills_in_get: u64,
    pub(crate) kills_after_get: u64,
    pub(crate) producer_kills_in_put: u64,
    pub(crate) committed: u64,
    pub(crate) delivered: u64,
    pub(crate) duplicates: u64,
    pub(crate) corrupt: u64,
    pub(crate) undelivered_committed: u64,
    pub(crate) lost: Option<u64>,
    pub(crate) rescued: u64,
    /// Arena blocks still allocated after the drain (`None`: no arena here).
    pub(crate) arena_leaked: Option<u64>,
    /// Runs of the arena's heap-invariant checker (during the storm and after the drain).
    pub(crate) heap_checks: u64,
    pub(crate) longest_stall: Duration,
    pub(crate) join: Option<JoinReport>,
    pub(crate) permits: Option<PermitReport>,
    pub(crate) findings: Vec<Finding>,
}

/// The JoinableQueue figures.
#[derive(Debug, Default, Clone)]
pub(crate) struct JoinReport {
    pub(crate) storm_true: u64,
    pub(crate) storm_false: u64,
    pub(crate) unfinished: u64,
    pub(crate) explained: u64,
    pub(crate) early: bool,
    pub(crate) returned_after: Option<Duration>,
    /// Tasks the final join reported dead with their workers.
    pub(crate) final_died: u64,
    /// Tasks released for dead workers over the whole run (storm joins included).
    pub(crate) tasks_died: u64,
}

/// The semaphore figures.
#[derive(Debug, Default, Clone)]
pub(crate) struct PermitReport {
    pub(crate) initial: u32,
    pub(crate) sem_after: u32,
    pub(crate) bounded_after: u32,
    pub(crate) max_holders: u32,
    pub(crate) longest_wait: Duration,
    /// Permits the semaphores gave back for dead holders (both semaphores).
    pub(crate) reclaimed: u64,
}

impl Report {
    fn fail(&mut self, check: Check, detail: String) {
        self.findings.push(Finding { check, detail });
    }
}

enum Objects {
    Queue(Queue<Item>),
    Joinable(JoinableQueue<Item>),
    Sem(Semaphore, BoundedSemaphore),
}

impl Objects {
    fn qsize(&self) -> usize {
        match self {
            Objects::Queue(q) => q.qsize(),
            Objects::Joinable(q) => q.qsize(),
            Objects::Sem(..) => 0,
        }
    }
}

struct Worker {
    role: Role,
    slot: u32,
    proc: Option<Process>,
}

/// A small xorshift (the run's seed is printed, so a storm can be replayed roughly).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn between_ms(&mut self, (lo, hi): (u64, u64)) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }
}

struct Storm<'a> {
    sc: &'a Scenario,
    ledger: Ledger,
    objects: Objects,
    workers: Vec<Worker>,
    next_inc: u32,
    rng: Rng,
    report: Report,
    /// Stall meter: deliveries seen at the last sample, and since when nothing moved.
    last_delivered: u64,
    stall_since: Option<Instant>,
    /// Items committed when deliveries last moved (the ledger meter of `Producers::Nowait`).
    committed_at_delivery: u64,
    max_holders: u32,
    longest_wait_ns: u64,
}

/// Runs one scenario: a storm of `secs`, then the drain and the checks.
pub(crate) fn run(
    sc: &Scenario,
    storm_for: Duration,
    limits: &Limits,
    seed: u64,
) -> Result<Report, String> {
    let began = Instant::now();
    let ledger = Ledger::create(sc.payload.0, sc.payload.1)?;
    let objects = match sc.kind {
        Kind::Queue => Objects::Queue(
            Queue::builder()
                .capacity(sc.capacity)
                .create()
                .map_err(|e| format!("queue: {e}"))?,
        ),
        Kind::Joinable => Objects::Joinable(
            JoinableQueue::from_builder(Queue::builder().capacity(sc.capacity))
                .map_err(|e| format!("joinable queue: {e}"))?,
        ),
        Kind::Semaphore => Objects::Sem(
            Semaphore::new(PERMITS).map_err(|e| format!("semaphore: {e}"))?,
            BoundedSemaphore::new(PERMITS).map_err(|e| format!("bounded semaphore: {e}"))?,
        ),
    };
    let mut storm = Storm {
        sc,
        ledger,
        objects,
        workers: Vec::new(),
        next_inc: 0,
        rng: Rng(seed | 1),
        report: Report {
            name: sc.name,
            ..Report::default()
        },
        last_delivered: 0,
        stall_since: None,
        committed_at_delivery: 0,
        max_holders: 0,
        longest_wait_ns: 0,
    };
    for &(role, n) in sc.roles {
        for _ in 0..n {
            let slot = storm.workers.len() as u32;
            storm.workers.push(Worker {
                role,
                slot,
                proc: None,
            });
            storm.start(slot as usize);
        }
    }
    let start = Instant::now();
    let mut next_kill = start + storm.rng.between_ms(sc.kill_ms);
    let mut next_heap_check = start;
    while start.elapsed() < storm_for {
        storm.sample();
        storm.reap_exited(true);
        if Instant::now() >= next_heap_check {
            storm.check_heap("during the storm");
            next_heap_check = Instant::now() + Duration::from_millis(100);
        }
        if Instant::now() >= next_kill {
            storm.kill_one();
            next_kill = Instant::now() + storm.rng.between_ms(sc.kill_ms);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    storm.report.storm = start.elapsed();
    storm.finish(limits);
    storm.report.total = began.elapsed();
    Ok(storm.report)
}

impl Storm<'_> {
    fn start(&mut self, index: usize) {
        let (role, slot) = (self.workers[index].role, self.workers[index].slot);
        self.ledger.phase(slot, Phase::Starting);
        let ledger = self.ledger.clone();
        let mut method = StartMethod::Fork;
        let process = match (&self.objects, role) {
            (Objects::Queue(q), Role::Producer) => {
                if (self.next_inc as usize) >= MAX_INCARNATIONS {
                    return;
                }
                let inc = self.next_inc;
                self.next_inc += 1;
                if self.sc.spawn_producers {
                    method = StartMethod::Spawn;
                }
                match self.sc.producers {
                    Producers::Blocking => {
                        Process::new(workers::queue_producer, (q.clone(), ledger, slot, inc))
                    }
                    Producers::Nowait { per_ms } => Process::new(
                        workers::queue_nowait_producer,
                        (q.clone(), ledger, slot, inc, per_ms),
                    ),
                }
            }
            (Objects::Queue(q), Role::Consumer) => {
                Process::new(workers::queue_consumer, (q.clone(), ledger, slot))
            }
            (Objects::Queue(q), Role::Poller) => {
                Process::new(workers::queue_poller, (q.clone(), ledger, slot))
            }
            (Objects::Joinable(q), Role::Producer) => {
                if (self.next_inc as usize) >= MAX_INCARNATIONS {
                    return;
                }
                let inc = self.next_inc;
                self.next_inc += 1;
                Process::new(workers::joinable_producer, (q.clone(), ledger, slot, inc))
            }
            (Objects::Joinable(q), Role::Worker) => {
                Process::new(workers::joinable_worker, (q.clone(), ledger, slot))
            }
            (Objects::Joinable(q), Role::Joiner) => {
                Process::new(workers::joinable_joiner, (q.clone(), ledger, slot))
            }
            (Objects::Sem(s, b), Role::Holder) => {
                Process::new(workers::sem_holder, (s.clone(), b.clone(), ledger, slot))
            }
            _ => unreachable!("scenario {} has no {role:?}", self.sc.name),
        };
        let mut process = process
            .name(format!("{}-{slot}", self.sc.name))
            .daemon(true)
            .start_method(method);
        match process.start() {
            Ok(()) => {
                self.report.starts += 1;
                self.workers[index].proc = Some(process);
            }
            Err(e) => self.report.fail(
                Check::WorkerError,
                format!("{role:?} {slot} failed to start: {e}"),
            ),
        }
    }

    /// One sample of the stall meter and the semaphore watch.
    fn sample(&mut self) {
        let now = Instant::now();
        if self.sc.kind == Kind::Semaphore {
            // The semaphore's stall: nobody acquired while some holder was waiting.
            let mut holding = [0u32; 2];
            let mut waiting = false;
            for w in self.workers.iter().filter(|w| w.proc.is_some()) {
                match self.ledger.phase_of(w.slot).0 {
                    Phase::Hold => holding[(w.slot % 2) as usize] += 1,
                    Phase::Acquire => waiting = true,
                    _ => {}
                }
            }
            self.max_holders = self.max_holders.max(holding[0]).max(holding[1]);
            let acquired = self.ledger.get(Word::Acquired);
            if acquired != self.last_delivered || !waiting {
                self.last_delivered = acquired;
                self.stall_since = None;
            } else {
                let since = *self.stall_since.get_or_insert(now);
                self.longest_wait_ns = self.longest_wait_ns.max((now - since).as_nanos() as u64);
            }
            return;
        }
        let delivered = self.ledger.get(Word::Delivered);
        let consumers = self.workers.iter().any(|w| {
            w.role.gets() && w.proc.is_some() && self.ledger.phase_of(w.slot).0 != Phase::Starting
        });
        let queued = match self.sc.producers {
            Producers::Blocking => self.objects.qsize() > 0,
            Producers::Nowait { .. } => {
                let committed = self.committed();
                if delivered != self.last_delivered {
                    self.committed_at_delivery = committed;
                }
                committed > self.committed_at_delivery
            }
        };
        if delivered != self.last_delivered || !queued || !consumers {
            self.last_delivered = delivered;
            self.stall_since = None;
        } else {
            let since = *self.stall_since.get_or_insert(now);
            self.report.longest_stall = self.report.longest_stall.max(now - since);
        }
    }

    /// Items committed so far, over every producer incarnation.
    fn committed(&self) -> u64 {
        (0..self.next_inc).map(|i| self.ledger.committed(i)).sum()
    }

    /// Notices workers that exited by themselves: a producer that put its last item is
    /// replaced (when `restart`); any other exit during the storm is an error.
    fn reap_exited(&mut self, restart: bool) {
        for index in 0..self.workers.len() {
            let Some(p) = &self.workers[index].proc else {
                continue;
            };
            let Ok(Some(status)) = p.join_timeout(Duration::ZERO) else {
                continue;
            };
            let w = &mut self.workers[index];
            w.proc = None;
            let (role, slot) = (w.role, w.slot);
            if !status.success() {
                self.report.fail(
                    Check::WorkerError,
                    format!("{role:?} {slot} exited: {status:?}"),
                );
            } else if role == Role::Producer && restart {
                self.report.retired += 1;
            } else if restart {
                self.report
                    .fail(Check::WorkerError, format!("{role:?} {slot} exited early"));
            }
            if restart {
                self.start(index);
            }
        }
    }

    /// SIGKILLs one random live worker, tallies where it died, and replaces it.
    fn kill_one(&mut self) {
        let live: Vec<usize> = (0..self.workers.len())
            .filter(|&i| {
                let w = &self.workers[i];
                w.proc.is_some() && self.sc.victims.is_none_or(|r| r == w.role)
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let index = live[self.rng.below(live.len() as u64) as usize];
        let (role, slot) = (self.workers[index].role, self.workers[index].slot);
        let p = self.workers[index].proc.take().expect("live");
        let _ = p.kill();
        match p.join_timeout(Duration::from_secs(2)) {
            Ok(Some(_)) => {}
            other => self.report.fail(
                Check::Straggler,
                format!("{role:?} {slot} not reaped 2 s after SIGKILL: {other:?}"),
            ),
        }
        // Read after death: the last phase it published is where the kill landed.
        let (phase, _) = self.ledger.phase_of(slot);
        self.report.kills[phase as usize] += 1;
        if role.gets() && phase == Phase::Get {
            self.report.kills_in_get += 1;
        }
        if role.gets() && phase == Phase::Got {
            self.report.kills_after_get += 1;
        }
        if role == Role::Producer && phase == Phase::Put {
            self.report.producer_kills_in_put += 1;
        }
        self.start(index);
    }

    /// Samples for up to `limit` until `done`; returns whether `done` held.
    fn wait_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let until = Instant::now() + limit;
        loop {
            self.sample();
            self.reap_exited(false);
            if done(self) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills (as stragglers) the live workers `which` selects.
    fn kill_stragglers(&mut self, why: &str, which: impl Fn(Role) -> bool) {
        for w in &mut self.workers {
            if which(w.role)
                && let Some(p) = w.proc.take()
            {
                let _ = p.kill();
                let _ = p.join_timeout(Duration::from_secs(2));
                let (phase, _) = self.ledger.phase_of(w.slot);
                self.report.findings.push(Finding {
                    check: Check::Straggler,
                    detail: format!("{:?} {} {why} (phase {})", w.role, w.slot, phase.label()),
                });
            }
        }
    }

    fn live(&self, which: impl Fn(Role) -> bool) -> bool {
        self.workers
            .iter()
            .any(|w| which(w.role) && w.proc.is_some())
    }

    fn finish(&mut self, limits: &Limits) {
        // 1. Producers finish their current put (at most one 100 ms slice) and exit.
        self.ledger.set(Word::StopProducers, 1);
        let is_producer = |r: Role| r == Role::Producer;
        if !self.wait_until(Duration::from_secs(3), |s| !s.live(is_producer)) {
            self.kill_stragglers("still running 3 s after the stop flag", is_producer);
        }
        // 2. Consumers drain the queue: until it is empty and nothing moved for 300 ms.
        if self.sc.kind != Kind::Semaphore {
            let mut last = (self.ledger.get(Word::Delivered), Instant::now());
            self.wait_until(Duration::from_secs(4), |s| {
                let d = s.ledger.get(Word::Delivered);
                if d != last.0 {
                    last = (d, Instant::now());
                }
                s.objects.qsize() == 0 && last.1.elapsed() > Duration::from_millis(300)
            });
        }
        // 3. Everyone else stops.
        self.ledger.set(Word::StopConsumers, 1);
        if !self.wait_until(Duration::from_secs(3), |s| !s.live(|_| true)) {
            self.kill_stragglers("still running 3 s after the stop flag", |_| true);
        }
        // 4. Whatever the workers left, the supervisor takes (blocking gets recover dead
        //    claims), so that the ledger can be checked in full.
        self.rescue();
        self.check_ledger(limits);
        self.check_arena();
        match self.sc.kind {
            Kind::Joinable => self.check_join(limits),
            Kind::Semaphore => self.check_permits(limits),
            Kind::Queue => {}
        }
    }

    /// After the drain (whose waits ran recovery passes), no arena block may stay allocated:
    /// every message was delivered or counted, and dead producers' and consumers' blocks
    /// were freed.
    fn check_arena(&mut self) {
        self.check_heap("after the drain");
        let stats = match &self.objects {
            Objects::Queue(q) => q.arena_stats(),
            Objects::Joinable(q) => q.queue().arena_stats(),
            Objects::Sem(..) => return,
        };
        match stats {
            Ok(s) => {
                self.report.arena_leaked = Some(s.in_use_blocks);
                if s.in_use_blocks > 0 {
                    self.report.fail(
                        Check::ArenaLeak,
                        format!(
                            "{} arena blocks ({} bytes) still allocated after the drain, {} of \
                             them recorded to nobody (killed inside the allocator)",
                            s.in_use_blocks, s.in_use_bytes, s.in_use_unowned_blocks
                        ),
                    );
                }
            }
            Err(e) => self
                .report
                .fail(Check::ArenaLeak, format!("arena stats failed: {e}")),
        }
    }

    /// Runs the arena's heap-invariant checker (under the arena's guard, so it may run while
    /// workers allocate and are killed: a dead guard owner's call is rolled back first).
    fn check_heap(&mut self, when: &str) {
        let checked = match &self.objects {
            Objects::Queue(q) => q.arena_check(),
            Objects::Joinable(q) => q.queue().arena_check(),
            Objects::Sem(..) => return,
        };
        self.report.heap_checks += 1;
        if let Err(e) = checked {
            self.report
                .fail(Check::ArenaHeap, format!("arena checker {when}: {e}"));
        }
    }

    fn rescue(&mut self) {
        let until = Instant::now() + Duration::from_secs(3);
        let pause = Duration::from_millis(300);
        while Instant::now() < until {
            let item = match &self.objects {
                Objects::Queue(q) => q.get_timeout(pause),
                Objects::Joinable(q) => q.get_timeout(pause).inspect(|_| {
                    if q.task_done().is_ok() {
                        self.ledger.add(Word::TasksDone, 1);
                    }
                }),
                Objects::Sem(..) => return,
            };
            match item {
                Ok(item) => {
                    self.ledger.deliver(&item);
                    self.report.rescued += 1;
                }
                Err(mproc::queue::GetTimeoutError::Message(_)) => self.ledger.corrupt(u64::MAX - 1),
                Err(_) => return,
            }
        }
    }

    fn check_ledger(&mut self, limits: &Limits) {
        let r = &mut self.report;
        let l = &self.ledger;
        r.committed = (0..self.next_inc).map(|i| l.committed(i)).sum();
        r.undelivered_committed = (0..self.next_inc).map(|i| l.undelivered(i)).sum();
        r.delivered = l.get(Word::Delivered);
        r.duplicates = l.get(Word::Duplicates);
        r.corrupt = l.get(Word::Corrupt);
        r.lost = match &self.objects {
            Objects::Queue(q) => Some(q.lost()),
            Objects::Joinable(q) => Some(q.lost()),
            Objects::Sem(..) => None,
        };
        if r.duplicates > 0 {
            let id = l.get(Word::FirstDuplicate).wrapping_sub(1);
            let detail = format!(
                "{} duplicates, the first id {}:{}",
                r.duplicates,
                id >> 32,
                id & 0xffff_ffff
            );
            r.fail(Check::Duplicate, detail);
        }
        if r.corrupt > 0 {
            let id = l.get(Word::FirstCorrupt).wrapping_sub(1);
            let detail = format!("{} corrupt, the first id {id:#x}", r.corrupt);
            r.fail(Check::Corrupt, detail);
        }
        if let Some(lost) = r.lost
            && r.undelivered_committed > lost + r.kills_in_get + r.kills_after_get
        {
            let detail = format!(
                "{} committed items undelivered > lost() {lost} + consumer kills in get {} \
                 + after get {}",
                r.undelivered_committed, r.kills_in_get, r.kills_after_get
            );
            r.fail(Check::Loss, detail);
        }
        if r.longest_stall > limits.stall {
            let detail = format!(
                "no delivery for {:.2?} with items queued and a consumer alive (bound {:.2?}); \
                 {} items were left for the supervisor's final drain",
                r.longest_stall, limits.stall, r.rescued
            );
            r.fail(Check::Stall, detail);
        }
        let errors = l.get(Word::WorkerErrors);
        if errors > 0 {
            r.fail(
                Check::WorkerError,
                format!("{errors} unexpected errors in workers"),
            );
        }
    }

    fn check_join(&mut self, limits: &Limits) {
        let Objects::Joinable(q) = &self.objects else {
            return;
        };
        let l = &self.ledger;
        let mut j = JoinReport {
            storm_true: l.get(Word::JoinTrue),
            storm_false: l.get(Word::JoinFalse),
            unfinished: q.unfinished_tasks(),
            ..JoinReport::default()
        };
        // Open tasks a death explains: items recorded as delivered but never marked done
        // (the worker died in between), items lost in flight (`lost()`), and items a worker
        // got but died before recording. What is left is a phantom (or a death in the
        // documented window after a slot's release, which is rare).
        let delivered = l.get(Word::Delivered) - l.get(Word::Corrupt);
        let open_by_workers = delivered.saturating_sub(l.get(Word::TasksDone));
        j.explained = open_by_workers + self.report.lost.unwrap_or(0) + self.report.kills_after_get;
        let r = &mut self.report;
        let deaths = r.producer_kills_in_put + r.kills_in_get + r.kills_after_get;
        if j.unfinished > j.explained + deaths {
            r.fail(
                Check::TaskCount,
                format!(
                    "unfinished_tasks {} > explained {} + kills in put or get {deaths}",
                    j.unfinished, j.explained
                ),
            );
        } else if j.unfinished > j.explained {
            r.fail(
                Check::PhantomTask,
                format!(
                    "unfinished_tasks {} after the drain, only {} explained by dead workers and \
                     lost items; {} producers were killed in put",
                    j.unfinished, j.explained, r.producer_kills_in_put
                ),
            );
        }
        // The final join, with every worker gone and nobody marking their open tasks done:
        // it must release the dead workers' tasks itself (Python's join hangs for ever here)
        // and return within the bound, leaving nothing unfinished.
        let slot = self.workers.len() as u32;
        let bound_ms = (limits.join.as_millis() as u64) * 4 + 2000;
        let mut joiner = Process::new(
            workers::final_joiner,
            (q.clone(), l.clone(), slot, bound_ms),
        )
        .daemon(true)
        .name(format!("{}-final-joiner", self.sc.name));
        let started = now_ns();
        if let Err(e) = joiner.start() {
            r.fail(Check::WorkerError, format!("final joiner: {e}"));
            self.report.join = Some(j);
            return;
        }
        let opened = Instant::now();
        while l.get(Word::FinalJoin) == 0
            && opened.elapsed() < limits.join * 4 + Duration::from_secs(3)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        j.final_died = l.get(Word::FinalJoinDied);
        j.tasks_died = q.tasks_died();
        match l.get(Word::FinalJoin) {
            2 => {
                let after = Duration::from_nanos(l.get(Word::FinalJoinAt).saturating_sub(started));
                j.returned_after = Some(after);
                let left = q.unfinished_tasks();
                if left > 0 {
                    j.early = true;
                    r.fail(
                        Check::JoinEarly,
                        format!("join returned with {left} tasks still unfinished"),
                    );
                }
                if after > limits.join {
                    r.fail(
                        Check::JoinHang,
                        format!(
                            "join took {after:.2?} with every worker dead (bound {:.2?})",
                            limits.join
                        ),
                    );
                }
            }
            outcome => r.fail(
                Check::JoinHang,
                format!(
                    "join did not return with every worker dead (outcome {outcome}, unfinished {})",
                    q.unfinished_tasks()
                ),
            ),
        }
        if !matches!(joiner.join_timeout(Duration::from_secs(3)), Ok(Some(_))) {
            let _ = joiner.kill();
            let _ = joiner.join_timeout(Duration::from_secs(2));
            r.fail(Check::Straggler, "the final joiner did not exit".to_owned());
        }
        self.report.join = Some(j);
    }

    fn check_permits(&mut self, limits: &Limits) {
        let Objects::Sem(s, b) = &self.objects else {
            return;
        };
        // Every holder is gone: a survivor that asks now gets the dead holders' permits back
        // (a blocked acquirer would have, within a check interval).
        let reclaim_errors = [s.reclaim_dead().err(), b.reclaim_dead().err()];
        for e in reclaim_errors.into_iter().flatten() {
            self.report
                .fail(Check::PermitsLost, format!("reclaim_dead failed: {e}"));
        }
        let p = PermitReport {
            reclaimed: s.reclaimed() + b.reclaimed(),
            initial: PERMITS,
            sem_after: s.get_value(),
            bounded_after: b.get_value(),
            max_holders: self.max_holders,
            longest_wait: Duration::from_nanos(
                self.longest_wait_ns
                    .max(self.ledger.get(Word::MaxAcquireNs)),
            ),
        };
        let r = &mut self.report;
        let deficit =
            (PERMITS - p.sem_after.min(PERMITS)) + (PERMITS - p.bounded_after.min(PERMITS));
        if deficit > 0 {
            r.fail(
                Check::PermitsLost,
                format!(
                    "{deficit} permits missing with every holder gone (Semaphore {}/{PERMITS}, \
                     BoundedSemaphore {}/{PERMITS}); {} holders were killed holding",
                    p.sem_after,
                    p.bounded_after,
                    r.kills[Phase::Hold as usize]
                ),
            );
        }
        if p.sem_after > PERMITS || p.bounded_after > PERMITS || p.max_holders > PERMITS {
            r.fail(
                Check::OverGrant,
                format!(
                    "values after {}/{} and up to {} holders at once, with {PERMITS} permits",
                    p.sem_after, p.bounded_after, p.max_holders
                ),
            );
        }
        let refused = self.ledger.get(Word::ReleaseErrors);
        if refused > 0 {
            r.fail(Check::OverGrant, format!("{refused} releases refused"));
        }
        if p.longest_wait > limits.stall {
            r.fail(
                Check::AcquireWait,
                format!(
                    "no acquire for {:.2?} while holders waited (bound {:.2?})",
                    p.longest_wait, limits.stall
                ),
            );
        }
        self.report.permits = Some(p);
    }
}
