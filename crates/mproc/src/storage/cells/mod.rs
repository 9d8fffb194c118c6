//! The small-object cell store (Python has no counterpart; not to be confused with a process
//! pool): many small shared objects (locks, semaphores, events, values, ...) share a few
//! *pool segments* instead of one segment — one descriptor and one mapping — each.
//! Creating 10,000 [`Lock`](crate::Lock)s needs one 1 MiB segment, one descriptor and one
//! mapping (plus one liveness descriptor per process that uses it), not 10,000 of each.
//!
//! # Layout
//!
//! A *pool segment* is an anonymous `mproc_shm::Segment` (memfd, sealed) of at least
//! [`SEGMENT_LEN`] bytes with room for [`PARTICIPANTS`] participants and a fingerprint of its
//! own ("pool segment, layout v1"), whose whole user region is one [`mproc_shm::Arena`]. A
//! *cell* is one arena block:
//!
//! ```text
//! +0   cell header (16 B): magic "MPCL" (published last), kind, holder count, payload length
//! +16  payload (or at `align` for alignments above 16), zero-filled at allocation
//! ```
//!
//! The *kind* is a 32-bit hash of a type tag (`CellKind::of("mproc.Lock/v1")`, or a tag
//! that includes a value type's name, size and alignment), so importing a cell as the wrong
//! kind of object is an error, not a reinterpretation.
//!
//! # Which segment
//!
//! Each process keeps the pool segments it created (for the whole life of the process: they
//! are cheap, their untouched pages cost nothing) and allocates in the newest one with room,
//! making a new one when all are full (or a larger, dedicated one for a request above what a
//! standard segment can hold). A forked child inherits that list and allocates in its
//! parent's segments too (they are `MAP_SHARED`), registering its own participant entry on
//! first use.
//!
//! # Lifetime of a cell
//!
//! The header's holder count counts *processes* holding the cell: a process's handles share
//! one process-local `PoolCell` (behind an `Arc`), which adds one on creation, import or
//! adoption, and removes one when this process's last handle is dropped. The process that
//! removes the last one frees the block. A process that ends without dropping its handles
//! (a crash, SIGKILL, or a forked child ending with `_exit` while inherited copies are still
//! on its stack) never removes its count, so that cell **leaks** until its segment dies (when
//! every process that mapped it has gone). That costs a few dozen bytes per cell and can never
//! free a cell that is still in use.
//!
//! # Passing
//!
//! A pool handle exports one descriptor of its pool segment plus the cell's offset and
//! payload length (one descriptor per handle: arguments are at most six). The importer maps
//! the segment only if this process has not mapped it already — mappings are cached by the
//! memfd's `(st_dev, st_ino)`, so 10,000 imported locks share one mapping — then checks the
//! offset against the arena's bounds, the header's magic, kind and length, and takes a
//! holder count only if the count is nonzero (a freed cell cannot be revived). A forked child
//! adopts the inherited `PoolCell`: it takes a holder count and registers its participant.
//!
//! Named objects never live here: each has its own named segment (`Object::create` with a
//! name), because a name must map to something an unrelated process can open.
//!
//! # Fork caveat
//!
//! The pool's bookkeeping sits behind one process-local `Mutex`, held only for a few loads
//! and an arena allocation (or, rarely, creating a segment). A fork from a multithreaded
//! process at the instant another thread holds it would leave the child's copy locked (as
//! with any lock and `fork`); use the spawn start method from heavily multithreaded parents.
#![allow(unsafe_code)]

mod shim;

pub(crate) use shim::{AtomicU32, Ordering};

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use mproc_core::shared::{SharedBytes, SharedState, shared_bytes};
use mproc_shm::{Arena, ArenaError, Offset, RegisterError, Segment, SegmentOptions};

use crate::handle::{Exporter, Importer, Owner, PassError};
use crate::storage::object::{CreateError, OpenError};

/// Size of a standard pool segment's user region.
pub const SEGMENT_LEN: u64 = 1 << 20;
/// Participant entries of a pool segment (processes that can use one segment at once).
pub const PARTICIPANTS: u32 = 1024;
/// Size of the cell header.
const CELL_HEADER: usize = 16;
/// Written last (Release) when a cell is ready; cleared when it is freed.
const CELL_MAGIC: u32 = u32::from_le_bytes(*b"MPCL");
/// Largest payload alignment.
const MAX_ALIGN: usize = 4096;
/// A holder count above this is corrupt (no process holds that many).
const MAX_HOLDERS: u32 = 1 << 24;

/// FNV-1a, 64 bits.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The fingerprint of a pool segment (never that of an object segment: a pool segment's
/// descriptor is refused where an object's is expected, and the other way round).
fn pool_fingerprint() -> u64 {
    fnv64(b"mproc.PoolSegment/v1") | 1
}

/// What a cell holds: a 32-bit hash of a type tag, checked when a cell is imported.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellKind(u32);

impl CellKind {
    /// The kind for `tag` (e.g. `"mproc.Lock/v1"`, or a tag naming a value type with its
    /// size and alignment). Never 0.
    pub(crate) fn of(tag: &str) -> CellKind {
        let h = fnv64(tag.as_bytes());
        let k = (h ^ (h >> 32)) as u32;
        CellKind(if k == 0 { 1 } else { k })
    }
}

impl fmt::Debug for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CellKind({:#010x})", self.0)
    }
}

/// The header in front of every cell (`#[repr(C)]`, atomics only, so any bytes are a valid
/// value; every field is validated before use).
#[repr(C)]
struct CellHeader {
    magic: AtomicU32,
    kind: AtomicU32,
    /// Processes holding the cell (see the module docs).
    holders: AtomicU32,
    /// Payload length in bytes.
    len: AtomicU32,
}

const _: () = assert!(size_of::<CellHeader>() == CELL_HEADER);

// SAFETY: `repr(C)`, std atomics only (every field validated before use); `Sync`.
unsafe impl SharedState for CellHeader {}

/// `(st_dev, st_ino)` of a segment's file: identifies a memfd across descriptors.
type FileKey = (u64, u64);

fn file_key(fd: BorrowedFd<'_>) -> std::io::Result<FileKey> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is a valid descriptor (borrowed); `st` is a writable `stat` buffer.
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fstat` succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// One mapped pool segment and its arena.
struct PoolSegment {
    seg: Arc<Segment>,
    arena: Arena,
}

impl fmt::Debug for PoolSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSegment")
            .field("segment", &self.seg)
            .finish_non_exhaustive()
    }
}

impl PoolSegment {
    fn create(min_block: usize) -> Result<(FileKey, Arc<PoolSegment>), CreateError> {
        // A standard segment, or a larger dedicated one for a large request (the arena's
        // blocks are powers of two; its header takes a few KiB).
        let need = (min_block as u64)
            .checked_next_power_of_two()
            .and_then(|b| b.checked_add(8192))
            .ok_or_else(|| CreateError::capacity("cell size", min_block, "below 2^63"))?;
        let len = need.max(SEGMENT_LEN);
        let seg = SegmentOptions::new()
            .len(len)
            .fingerprint(pool_fingerprint())
            .participants(PARTICIPANTS)
            .create_anonymous()
            .map_err(CreateError::from_segment)?;
        let key = file_key(seg.as_fd()).map_err(|e| CreateError::from_io("fstat", e))?;
        let seg = Arc::new(seg);
        let region = seg.region();
        let arena = Arena::init(seg.clone(), region.offset(), region.len() as u64)?;
        Ok((key, Arc::new(PoolSegment { seg, arena })))
    }

    fn attach(fd: OwnedFd) -> Result<Arc<PoolSegment>, OpenError> {
        let seg = Segment::from_fd(fd, pool_fingerprint())
            .map_err(|e| OpenError::from_segment(e, "pool segment"))?;
        let seg = Arc::new(seg);
        let region = seg.region();
        let arena = Arena::attach(seg.clone(), region.offset(), region.len() as u64)?;
        Ok(Arc::new(PoolSegment { seg, arena }))
    }
}

/// The process-local pool: the segments this process (or an ancestor, before a fork)
/// created, and a cache of every pool segment mapped, by file identity.
struct Pool {
    own: Vec<Arc<PoolSegment>>,
    mapped: Vec<(FileKey, Weak<PoolSegment>)>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    own: Vec::new(),
    mapped: Vec::new(),
});

fn pool() -> MutexGuard<'static, Pool> {
    // A panic while holding the lock leaves the lists consistent (pushes only).
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Numbers about this process's pool (for tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Pool segments this process (or an ancestor before a fork) created.
    pub segments: usize,
    /// Pool segments mapped here and still in use (created or imported).
    pub mapped: usize,
}

/// This process's [`PoolStats`].
pub fn stats() -> PoolStats {
    let p = pool();
    PoolStats {
        segments: p.own.len(),
        mapped: p
            .mapped
            .iter()
            .filter(|(_, w)| w.strong_count() > 0)
            .count(),
    }
}

fn data_offset(align: usize) -> usize {
    CELL_HEADER.max(align)
}

fn check_layout(size: usize, align: usize) -> Result<usize, CreateError> {
    if !align.is_power_of_two() || align > MAX_ALIGN {
        return Err(CreateError::capacity(
            "cell alignment",
            align,
            "a power of two up to 4096",
        ));
    }
    let too_large = || CreateError::capacity("cell size", size, "below 4 GiB");
    if u32::try_from(size).is_err() {
        return Err(too_large());
    }
    data_offset(align).checked_add(size).ok_or_else(too_large)
}

/// Allocates a zero-filled cell of `kind` with a `size`-byte payload aligned to `align` (a
/// power of two, at most 4096), held by this process. The payload is zero bytes: every
/// `mproc-futex` primitive is valid (unlocked, empty) as all-zero bytes, or initialise it in
/// `init` before the cell is published.
///
/// # Errors
///
/// [`CreateError::InvalidCapacity`] for a bad layout; [`CreateError::NoSpace`] or another
/// creation error when a new pool segment cannot be made.
pub(crate) fn alloc(
    kind: CellKind,
    size: usize,
    align: usize,
    init: impl FnOnce(&SharedBytes),
) -> Result<PoolCell, CreateError> {
    let total = check_layout(size, align)?;
    let block_align = align.max(CELL_HEADER);
    let mut p = pool();
    let mut found = None;
    for seg in p.own.iter().rev() {
        match seg.arena.alloc(total, block_align) {
            Ok(at) => {
                found = Some((seg.clone(), at));
                break;
            }
            // No room now, or more than this segment's arena can ever hold: try the next
            // segment, or make one large enough.
            Err(ArenaError::OutOfMemory { .. } | ArenaError::TooLarge { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let (seg, at) = match found {
        Some(f) => f,
        None => {
            let (key, seg) = PoolSegment::create(total + CELL_HEADER + block_align)?;
            p.own.push(seg.clone());
            p.mapped.retain(|(_, w)| w.strong_count() > 0);
            p.mapped.push((key, Arc::downgrade(&seg)));
            let at = seg.arena.alloc(total, block_align)?;
            (seg, at)
        }
    };
    drop(p);
    let base = seg.arena.ptr(at, total)?;
    // SAFETY: the arena handed us `total` bytes at `base` (checked by `ptr`), ours alone
    // until we publish the cell; zeroing them gives every field and primitive its initial
    // value.
    unsafe { base.as_ptr().write_bytes(0, total) };
    // SAFETY: `data_offset(align) + size == total`, inside the block.
    let data = unsafe { base.add(data_offset(align)) };
    let cell = PoolCell {
        seg,
        at: at.get(),
        data,
        len: size,
        kind,
        owner: Mutex::new(Some(Owner::current())),
    };
    init(cell.bytes());
    let h = cell.header();
    // Relaxed: published by the Release store of the magic below.
    h.kind.store(kind.0, Ordering::Relaxed);
    h.len.store(size as u32, Ordering::Relaxed);
    h.holders.store(1, Ordering::Relaxed);
    // Release: the zeroed payload, `init`'s writes and the header fields happen before an
    // importer's Acquire load of the magic (`PoolCell::attach`).
    h.magic.store(CELL_MAGIC, Ordering::Release);
    Ok(cell)
}

/// This process's hold on one pool cell. Handles share it through an `Arc`; see the module
/// docs for the holder count it keeps.
pub(crate) struct PoolCell {
    seg: Arc<PoolSegment>,
    /// Offset of the cell header from the segment base (the arena block's data offset).
    at: u64,
    /// The payload (inside the mapping `seg` keeps alive).
    data: NonNull<u8>,
    /// Payload length, validated at allocation or import.
    len: usize,
    kind: CellKind,
    /// The process (fork epoch) whose holder count this is; `None` while none is taken.
    owner: Mutex<Option<Owner>>,
}

// SAFETY: `data` points into the segment's mapping, which `seg` (an `Arc`) keeps alive as long
// as the cell; everything reached through it is shared memory accessed atomically.
unsafe impl Send for PoolCell {}
// SAFETY: as for `Send`.
unsafe impl Sync for PoolCell {}

impl fmt::Debug for PoolCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolCell")
            .field("segment", &self.seg.seg)
            .field("offset", &self.at)
            .field("len", &self.len)
            .field("kind", &self.kind)
            .finish()
    }
}

impl PoolCell {
    fn header(&self) -> &CellHeader {
        // `at` was checked to start a block of at least CELL_HEADER bytes inside the arena.
        self.seg
            .seg
            .shared(Offset::new(self.at))
            .expect("checked when the cell was made or imported")
    }

    /// The payload: [`len`](Self::len) zero-initialised-at-allocation bytes, aligned as
    /// requested, valid as long as `self`. Shared memory: access it atomically.
    pub(crate) fn data(&self) -> NonNull<u8> {
        self.data
    }

    /// Payload length.
    #[allow(dead_code)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The payload as shared bytes (see [`mproc_core::shared`]).
    pub(crate) fn bytes(&self) -> &SharedBytes {
        // SAFETY: `data..data + len` lies inside the block checked when the cell was made or
        // imported, in the mapping `self.seg` keeps alive; cell payloads are only accessed
        // atomically.
        unsafe { shared_bytes(self.data, self.len) }
    }

    /// The pool segment (its participant table is the cell's).
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.seg.seg
    }

    /// This process's participant id in the pool segment, registering on first use (the
    /// fast path is two loads, no system call).
    ///
    /// # Errors
    ///
    /// [`RegisterError`] when the segment's participant table is full of live processes.
    pub(crate) fn me(&self) -> Result<u32, RegisterError> {
        let seg = &self.seg.seg;
        match seg.participant() {
            Some(id) => Ok(id.get()),
            None => seg.register().map(|id| id.get()),
        }
    }

    /// Whether participant `id` of the pool segment is alive.
    #[allow(dead_code)]
    pub(crate) fn is_alive(&self, id: u32) -> bool {
        self.seg.seg.is_alive(id)
    }

    /// Parent side of spawn: one descriptor of the pool segment, the cell's offset and
    /// payload length.
    ///
    /// # Errors
    ///
    /// [`PassError::Io`] if the descriptor cannot be duplicated.
    pub(crate) fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        let index = out.fd(self.seg.seg.as_fd())?;
        out.value(&(index, self.at, self.len as u64))
    }

    /// Child side of spawn: maps the segment (or reuses this process's mapping of it),
    /// validates the cell as `kind` with a `len`-byte payload aligned to `align`, and takes a
    /// holder count. `what` names the object type in errors.
    ///
    /// # Errors
    ///
    /// [`PassError::Mismatch`] for a cell of another size, [`PassError::Open`] for a segment
    /// or cell that does not check out.
    pub(crate) fn import(
        input: &mut Importer,
        kind: CellKind,
        len: usize,
        align: usize,
        what: &str,
    ) -> Result<PoolCell, PassError> {
        let (index, at, sent_len): (u32, u64, u64) = input.value()?;
        let fd = input.take_fd(index)?;
        if sent_len != len as u64 {
            return Err(PassError::Mismatch {
                what: "cell size",
                sent: sent_len,
                expected: len as u64,
            });
        }
        let seg = map_segment(fd)?;
        Ok(PoolCell::attach(seg, at, kind, len, align, what)?)
    }

    fn attach(
        seg: Arc<PoolSegment>,
        at: u64,
        kind: CellKind,
        len: usize,
        align: usize,
        what: &str,
    ) -> Result<PoolCell, OpenError> {
        let total = check_layout(len, align).map_err(|_| OpenError::corrupt("cell size", len))?;
        if !at.is_multiple_of(CELL_HEADER as u64) || !at.is_multiple_of(align as u64) {
            return Err(OpenError::corrupt("cell offset (misaligned)", at));
        }
        let base = seg
            .arena
            .ptr(Offset::new(at), total)
            .map_err(|_| OpenError::corrupt("cell offset (outside the arena)", at))?;
        // SAFETY: `total` bytes at `base` lie inside the arena (checked by `ptr`).
        let data = unsafe { base.add(data_offset(align)) };
        let cell = PoolCell {
            seg,
            at,
            data,
            len,
            kind,
            // Not ours until the holder count below is taken: a failed attach must not
            // release anything on drop.
            owner: Mutex::new(None),
        };
        let h = cell.header();
        let fail = |e: OpenError| -> Result<PoolCell, OpenError> { Err(e) };
        // Acquire: pairs with the Release store of the magic in `alloc`.
        if h.magic.load(Ordering::Acquire) != CELL_MAGIC {
            return fail(OpenError::corrupt("cell offset (no live cell)", at));
        }
        // Relaxed: ordered by the Acquire load of the magic.
        let k = h.kind.load(Ordering::Relaxed);
        if k != kind.0 {
            return fail(OpenError::WrongType {
                expected: what.to_string(),
                found: k.into(),
                fingerprint: kind.0.into(),
            });
        }
        // Relaxed: as above.
        let l = h.len.load(Ordering::Relaxed);
        if l as usize != len {
            return fail(OpenError::corrupt("cell length", l));
        }
        // Relaxed: the CAS below decides.
        let mut n = h.holders.load(Ordering::Relaxed);
        loop {
            if n == 0 || n >= MAX_HOLDERS {
                return fail(OpenError::corrupt("cell holder count (freed)", n));
            }
            // Relaxed: a count only; the cell's contents are synchronised by its own atomics.
            match h
                .holders
                .compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        let mut cell = cell;
        *cell.owner.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(Owner::current());
        Ok(cell)
    }

    /// Child side of fork: takes a holder count for this process (once, however many
    /// handles share this cell) and registers its participant.
    ///
    /// # Errors
    ///
    /// [`PassError::Register`] if registration fails.
    pub(crate) fn adopt(&self) -> Result<(), PassError> {
        {
            let mut owner = self.owner.lock().unwrap_or_else(|e| e.into_inner());
            if !owner.is_some_and(|o| o.is_current()) {
                // Relaxed: a count only. Our parent still holds its count (the start
                // hand-shake), so the cell cannot be freed meanwhile.
                self.header().holders.fetch_add(1, Ordering::Relaxed);
                *owner = Some(Owner::current());
            }
        }
        self.me().map(drop).map_err(PassError::Register)
    }
}

impl Drop for PoolCell {
    fn drop(&mut self) {
        let owner = self.owner.get_mut().unwrap_or_else(|e| e.into_inner());
        if !owner.is_some_and(|o| o.is_current()) {
            return; // inherited through fork, never adopted: not ours to release
        }
        let h = self.header();
        // Relaxed: the CAS below decides.
        let mut n = h.holders.load(Ordering::Relaxed);
        loop {
            if n == 0 || n >= MAX_HOLDERS {
                return; // corrupt: leak rather than free something in use
            }
            // AcqRel (as `Arc`'s drop): every holder's use of the cell happens before the
            // last holder frees it.
            match h
                .holders
                .compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if n == 1 {
            // Relaxed: importers check the holder count (now 0) too; this only makes a
            // stale offset fail early.
            h.magic.store(0, Ordering::Relaxed);
            // A failure here means a corrupt arena: leaking the block is all we can do.
            let _ = self.seg.arena.free(Offset::new(self.at));
        }
    }
}

/// Maps the pool segment behind `fd`, or returns this process's existing mapping of it.
fn map_segment(fd: OwnedFd) -> Result<Arc<PoolSegment>, OpenError> {
    let key = file_key(fd.as_fd()).map_err(|source| OpenError::Io {
        op: "fstat",
        source,
    })?;
    let mut p = pool();
    if let Some(seg) = p
        .mapped
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(seg); // `fd` closes here: the cached mapping has its own descriptor
    }
    let seg = PoolSegment::attach(fd)?;
    p.mapped.retain(|(_, w)| w.strong_count() > 0);
    p.mapped.push((key, Arc::downgrade(&seg)));
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> CellKind {
        CellKind::of("mproc.test/v1")
    }

    fn pass(cell: &PoolCell) -> Importer {
        let mut out = Exporter::new();
        cell.export(&mut out).unwrap();
        Importer::new(out.values, out.fds)
    }

    #[test]
    fn cells_are_zeroed_aligned_and_share_a_segment() {
        let a = alloc(kind(), 40, 8, |_| {}).unwrap();
        let b = alloc(kind(), 40, 64, |p| p[0].store(7, Ordering::Relaxed)).unwrap();
        assert_eq!(a.data().as_ptr() as usize % 16, 0);
        assert_eq!(b.data().as_ptr() as usize % 64, 0);
        assert!(Arc::ptr_eq(&a.seg, &b.seg));
        assert_eq!((a.bytes().len(), b.bytes().len()), (40, 40));
        assert_eq!(b.bytes()[0].load(Ordering::Relaxed), 7);
        assert_eq!(a.bytes()[39].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn import_reuses_the_mapping_and_checks_the_kind() {
        let a = alloc(kind(), 4, 4, |_| {}).unwrap();
        let b = PoolCell::import(&mut pass(&a), kind(), 4, 4, "Test").unwrap();
        assert!(Arc::ptr_eq(&a.seg, &b.seg), "one mapping per segment");
        assert_eq!(a.data(), b.data());
        assert_eq!(a.header().holders.load(Ordering::Relaxed), 2);
        let err = PoolCell::import(&mut pass(&a), CellKind::of("other"), 4, 4, "Other");
        assert!(
            matches!(err, Err(PassError::Open(OpenError::WrongType { .. }))),
            "{err:?}"
        );
        let err = PoolCell::import(&mut pass(&a), kind(), 8, 4, "Test");
        assert!(
            matches!(
                err,
                Err(PassError::Mismatch {
                    sent: 4,
                    expected: 8,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(a.header().holders.load(Ordering::Relaxed), 2);
        drop(b);
        assert_eq!(a.header().holders.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn last_holder_frees_and_a_freed_cell_cannot_be_imported() {
        let a = alloc(kind(), 4, 4, |_| {}).unwrap();
        let mut stale = pass(&a);
        let at = a.at;
        drop(a);
        let err = PoolCell::import(&mut stale, kind(), 4, 4, "Test");
        assert!(
            matches!(
                err,
                Err(PassError::Open(OpenError::Corrupt {
                    what: "cell offset (no live cell)" | "cell holder count (freed)",
                    ..
                }))
            ),
            "{err:?}"
        );
        let _ = at;
    }

    #[test]
    fn bad_offsets_are_errors() {
        let a = alloc(kind(), 4, 4, |_| {}).unwrap();
        for at in [0, 3, u64::MAX - 15, a.at + 1] {
            let err = PoolCell::attach(a.seg.clone(), at, kind(), 4, 4, "Test");
            assert!(
                matches!(err, Err(OpenError::Corrupt { value: Some(v), .. }) if v == at),
                "{err:?}"
            );
        }
        assert_eq!(a.header().holders.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn large_requests_get_a_dedicated_segment() {
        let big = alloc(kind(), 3 << 20, 16, |_| {}).unwrap();
        assert!(big.segment().region().len() >= 3 << 20);
    }
}
