//! The holder table: how many handles of each role every participant holds, so a blocked
//! receiver can tell that nobody can ever send again (DESIGN.md, "the hard parts" §4).
//!
//! One [`HolderEntry`] per participant-table index of the segment:
//! `{ id, counts: [role 0, role 1, role 2] }`, four `AtomicU32`s. What a role means is the
//! object's business (Queue: handles, handles blocked in `get()`, handles blocked in `put()`;
//! Pipe: end A, end B).
//!
//! * **Claim** (first acquire by a process whose id is not in its entry): a CAS of `id` to
//!   `me | CLAIMING` elects one of this process's threads, which zeroes the counts, then
//!   stores `id = me` (lock-free, so fork-safe; see `claim`). The previous id at that index is dead by construction: the
//!   participant table only hands out an index whose liveness lock was free.
//! * **Acquire** (a handle is created, cloned, adopted after fork, or imported after spawn):
//!   `counts[role] += 1` in this process's entry.
//! * **Release** (a handle this process holds is dropped or closed): `counts[role] -= 1`
//!   (saturating). The caller then rings every doorbell of the object and wakes all, so
//!   blocked peers re-check. A handle inherited through `fork` but not passed to the child
//!   is *disowned* (its `Owner` is stale) and never acquires or releases.
//! * **Live holders** of a role: the sum of `counts[role]` over entries whose `id` is nonzero
//!   and alive (`Segment::is_alive`, an `F_OFD_GETLK`, asked only for other processes'
//!   entries with a nonzero count). A process that dies stops counting at once, however it
//!   died, with no cleanup by anyone.
//! * **Recorded holders** of a role: the same sum without asking the kernel (every recorded
//!   id counts as alive). It can only over-count, so "no recorded holder" is exact; blocking
//!   loops use it before their first sleep, where a system call per peer would sit on the
//!   wake-up path, and ask for live holders from the next check on (see `wait::Round`).
//!
//! **Consistent scans.** Summing entry by entry is not a snapshot: while a handle moves from
//! a parent (a high index) to its child (a low index), a scan could read the child's entry
//! before the child's increment and the parent's after the parent's decrement, and see nobody.
//! So every count change is followed by a SeqCst bump of the header's `holder_changes`, and a
//! scan is only trusted if that word did not change while it ran (a seqlock read). A hand-over
//! orders the child's increment and bump before the parent's decrement, so a scan that missed
//! the increment either overlaps the bump (and is retried) or ends before the decrement (and
//! saw the parent's count). A scan that keeps being overtaken reports at least one holder:
//! holders are actively changing, so somebody is alive, and the caller re-checks within its
//! check interval.
//!
//! Reading an entry is `id`, `count`, `id` again: a claim stores `id` (Release) before the
//! new owner's first increment (Release RMW), so a reader that saw the new count also sees the
//! new id on its second read, and retries instead of crediting the count to the dead id.
//!
//! All counts are untrusted: a hostile peer can make them wrong, which makes EOF early or
//! late for its peers — never undefined behaviour (every index comes from this process's
//! own id, masked against the capacity validated at attach).

use super::sync::{AtomicU32, Ordering};
use mproc_core::shared::SharedState;
use mproc_shm::Offset;

use super::{MAX_ROLES, Object};

/// Bytes per entry.
pub(crate) const ENTRY_LEN: u64 = 16;

/// One participant's holder counts (`#[repr(C)]`, 16 bytes, atomics only).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct HolderEntry {
    /// Full participant id of the process counting here; 0 = never claimed.
    id: AtomicU32,
    /// Handles held per role.
    counts: [AtomicU32; MAX_ROLES as usize],
}

const _: () = assert!(size_of::<HolderEntry>() as u64 == ENTRY_LEN);

// SAFETY: `repr(C)`, std atomics only (an unknown id is asked about through liveness, counts
// are only counts); `Sync`.
unsafe impl SharedState for HolderEntry {}

/// Scans of the holder table tried before [`Object::live_holders`] settles for "somebody".
const SCAN_TRIES: u32 = 8;

/// Bit 31 of `id` while a claim is in progress (participant ids fit in 30 bits).
const CLAIMING: u32 = 1 << 31;

/// Makes `e` this process's entry (`me`), zeroing the dead previous owner's counts.
///
/// Lock-free, so a `fork` in another thread can never leave a child blocked on a lock it
/// inherited held: the CAS `old -> me | CLAIMING` elects one claimer among this process's
/// threads; it zeroes the counts and stores `me` (Release). The losers spin (bounded by the
/// winner's few stores) until they see `me`. If the winner's thread is gone (a forked child
/// whose parent was mid-claim), `me` differs in the child anyway (the child registers its
/// own id), so nobody waits on it.
fn claim(e: &HolderEntry, me: u32) -> Result<(), super::OpenError> {
    // Bounded: only a hostile peer flipping the word could keep us here.
    for _ in 0..1 << 16 {
        // Acquire: pairs with the Release store of `me` by the winning claimer.
        let id = e.id.load(Ordering::Acquire);
        if id == me {
            return Ok(());
        }
        if id == me | CLAIMING {
            std::hint::spin_loop();
            std::thread::yield_now();
            continue;
        }
        // Acquire on success: nothing to see; the zeroing below is ordered by the Release
        // store of `me`.
        if e.id
            .compare_exchange(id, me | CLAIMING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // Relaxed: ordered before the id store by its Release.
            for c in &e.counts {
                c.store(0, Ordering::Relaxed);
            }
            // Release: the zeroed counts happen before any reader that sees our id.
            e.id.store(me, Ordering::Release);
            return Ok(());
        }
    }
    Err(super::OpenError::corrupt_part(
        "holder entry keeps changing",
    ))
}

/// A holder role: an index below the object's role count (at most [`MAX_ROLES`]).
pub(crate) type Role = u32;

impl Object {
    fn entry(&self, index: u32) -> &HolderEntry {
        assert!(index < self.holder_cap, "holder index out of range");
        self.try_entry(index)
            .expect("the holder table was validated at construction")
    }

    /// Entry `index` of the holder table, checked against the segment.
    pub(super) fn try_entry(&self, index: u32) -> Result<&HolderEntry, super::OpenError> {
        let at = self.holders_at + u64::from(index) * ENTRY_LEN;
        self.seg
            .shared(Offset::new(at))
            .map_err(|_| super::OpenError::corrupt("holder entry (outside the segment)", index))
    }

    fn check_role(&self, role: Role) {
        assert!(
            role < self.roles,
            "role {role} of an object with {} roles",
            self.roles
        );
    }

    /// Counts one more handle of `role` held by this process (registering the process and
    /// claiming its entry first if needed).
    ///
    /// # Errors
    ///
    /// Registration failed ([`super::OpenError::Register`]); [`super::OpenError::Corrupt`] if
    /// the entry keeps changing under us (a hostile peer).
    ///
    /// # Panics
    ///
    /// If `role` is not below the object's role count (a bug in the caller).
    pub(crate) fn acquire(&self, role: Role) -> Result<(), super::OpenError> {
        self.check_role(role);
        let me = self.me()?;
        let e = self.entry(me.index());
        claim(e, me.get())?;
        // SeqCst: ordered before the `holder_changes` bump below, so a consistent scan that
        // starts after the bump sees this count (see "Consistent scans"); it also releases
        // our id store to a reader's Acquire of this count.
        e.counts[role as usize].fetch_add(1, Ordering::SeqCst);
        self.note_holder_change();
        Ok(())
    }

    /// Counts one handle of `role` fewer (saturating at zero). The caller must then wake
    /// every sleeper of the object (see [`super::wait::wake_all`]).
    ///
    /// # Panics
    ///
    /// If `role` is not below the object's role count (a bug in the caller).
    pub(crate) fn release(&self, role: Role) {
        self.check_role(role);
        let Ok(me) = self.me() else { return };
        let e = self.entry(me.index());
        // Acquire: as in `acquire`.
        if e.id.load(Ordering::Acquire) != me.get() {
            return; // never acquired here: nothing to give back
        }
        // SeqCst: ordered before the `holder_changes` bump (see "Consistent scans");
        // saturating, because the count is shared memory a peer could have zeroed.
        let _ = e.counts[role as usize]
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1));
        self.note_holder_change();
    }

    /// Marks that a holder count changed, so a scan that overlapped the change retries.
    fn note_holder_change(&self) {
        // SeqCst: the count change above and a scanner's two loads of this word are in one
        // total order (the seqlock argument in the module docs).
        self.header().holder_changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Handles of `role` held by live participants, this process's included.
    ///
    /// # Panics
    ///
    /// If `role` is not below the object's role count (a bug in the caller).
    pub(crate) fn live_holders(&self, role: Role) -> u32 {
        self.holders(role, true)
    }

    /// [`Object::live_holders`] when `ask_liveness`; otherwise the *recorded* holders
    /// (every recorded participant counted as alive, no system call): an upper bound of
    /// the live count, exact when 0. A consistent sum either way (see "Consistent scans").
    ///
    /// # Panics
    ///
    /// If `role` is not below the object's role count (a bug in the caller).
    pub(crate) fn holders(&self, role: Role, ask_liveness: bool) -> u32 {
        match self.holders_snapshot([role], ask_liveness) {
            Ok([total]) => total,
            // Overtaken every time: holders are changing right now, so somebody is alive.
            Err([total]) => total.max(1),
        }
    }

    /// The holders of several roles read in *one* consistent scan (see "Consistent
    /// scans"), so the sums can be compared with each other; `Err` (with the last,
    /// unreliable sums) when every scan was overtaken by a holder change, i.e. holders are
    /// changing right now.
    ///
    /// # Panics
    ///
    /// If a role is not below the object's role count (a bug in the caller).
    pub(crate) fn holders_snapshot<const N: usize>(
        &self,
        roles: [Role; N],
        ask_liveness: bool,
    ) -> Result<[u32; N], [u32; N]> {
        for role in roles {
            self.check_role(role);
        }
        let mut totals = [0; N];
        for _ in 0..SCAN_TRIES {
            // SeqCst (both loads): see "Consistent scans" in the module docs.
            let before = self.header().holder_changes.load(Ordering::SeqCst);
            totals = roles.map(|role| self.scan_holders(role, ask_liveness));
            if self.header().holder_changes.load(Ordering::SeqCst) == before {
                return Ok(totals);
            }
        }
        Err(totals)
    }

    /// One pass over the table (not a snapshot by itself; see [`Object::live_holders`]).
    fn scan_holders(&self, role: Role, ask_liveness: bool) -> u32 {
        let me = self.seg.participant().map_or(0, |p| p.get());
        let mut total: u32 = 0;
        for i in 0..self.holder_cap {
            let e = self.entry(i);
            // A bounded retry: a claim in progress settles after one re-read; a peer
            // flipping the id for ever is hostile, and then we count what we saw.
            for _ in 0..4 {
                // Acquire (all three): see the module docs (id, count, id).
                let id = e.id.load(Ordering::Acquire);
                if id == 0 || id & CLAIMING != 0 {
                    // Never claimed, or being claimed: the counts are being zeroed and the
                    // new owner has not counted a handle yet.
                    break;
                }
                let c = e.counts[role as usize].load(Ordering::Acquire);
                if e.id.load(Ordering::Acquire) != id {
                    continue;
                }
                if c != 0 && (id == me || !ask_liveness || self.seg.is_alive(id)) {
                    total = total.saturating_add(c);
                }
                break;
            }
        }
        total
    }

    /// Handles of `role` held by this process (this process's entry only).
    #[allow(dead_code)]
    pub(crate) fn own_holders(&self, role: Role) -> u32 {
        self.check_role(role);
        let Some(me) = self.seg.participant() else {
            return 0;
        };
        let e = self.entry(me.index());
        // Acquire: as in `live_holders`.
        if e.id.load(Ordering::Acquire) != me.get() {
            return 0;
        }
        e.counts[role as usize].load(Ordering::Acquire)
    }
}
