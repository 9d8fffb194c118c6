//! Shared objects: the segment layout every facade object (Queue, Pipe, Lock, ...) uses,
//! its holder table, and the blocking loop they share. Crate-internal.
//!
//! # Layout
//!
//! Each object lives in its own `mproc_shm::Segment` (anonymous memfd, or named in
//! `/dev/shm`) whose fingerprint is [`fingerprint`]`(kind, type tag)`, so opening an object
//! as the wrong kind or message type fails in `mproc-shm` before anything is mapped as a
//! type. The segment's user region holds:
//!
//! ```text
//! region start  ObjectHeader (128 B): magic (published last), version, kind, roles,
//!               holder capacity, region count, up to MAX_REGIONS (offset, len) pairs
//! +128          holder table: one HolderEntry (16 B) per participant-table entry
//! (128-aligned) sub-region 0 (e.g. the ring)
//! (128-aligned) sub-region 1 (e.g. the arena) ...
//! ```
//!
//! Offsets are relative to the segment base. An opener waits (bounded) for the magic, then
//! validates every field against the segment it mapped and copies the validated values into
//! its process-local [`Object`]; nothing is re-read from shared memory for bounds.
//!
//! # Holders
//!
//! See [`holders`]: per-participant, per-role holder counts make EOF and `Disconnected` exact
//! (DESIGN.md, "the hard parts" §4).
//!
//! # Blocking
//!
//! See [`crate::wait`]: spin, then sleep on a ring doorbell in slices of at most
//! [`crate::wait::CHECK_INTERVAL`], re-checking holders' liveness and recovering the ring between
//! slices.
#![allow(unsafe_code)]

mod error;
pub(crate) mod holders;
mod sync;

use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mproc_core::shared::{SharedBytes, SharedState, shared_bytes};
use mproc_shm::{Offset, ParticipantId, REGION_ALIGN, Segment, SegmentOptions};

pub use error::{CreateError, OpenError};
use sync::{AtomicU32, AtomicU64, Ordering};

/// Written last by the creator (Release); an opener waits for it (Acquire).
const OBJECT_MAGIC: u32 = u32::from_le_bytes(*b"MPOB");
/// Layout version of the object header and holder table.
pub(crate) const OBJECT_VERSION: u32 = 1;
/// Most sub-regions an object can have.
pub(crate) const MAX_REGIONS: usize = 6;
/// Most roles an object can count holders for (Queue: 3, Pipe: 2).
pub(crate) const MAX_ROLES: u32 = 3;
/// Size of [`ObjectHeader`].
const HEADER_LEN: u64 = 128;
/// How long `open` waits for a creator to publish the header.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// The kinds of shared object; part of the fingerprint and checked again in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ObjectKind {
    /// `Queue<T>`: one MPMC ring + an arena.
    Queue = 1,
    /// `Pipe`/`Connection`: two record rings.
    #[allow(dead_code)]
    Pipe = 2,
    /// `Lock` and the other synchronisation objects.
    #[allow(dead_code)]
    Lock = 3,
}

impl ObjectKind {
    fn tag(self) -> &'static str {
        match self {
            ObjectKind::Queue => "mproc.Queue",
            ObjectKind::Pipe => "mproc.Pipe",
            ObjectKind::Lock => "mproc.Lock",
        }
    }
}

/// The fingerprint of an object of `kind` carrying `type_tag` (e.g. the message type's
/// name plus the size and alignment of its archived form; see
/// [`crate::message::type_tag`]): FNV-1a 64 over the kind tag, the object layout version
/// and the type tag.
pub(crate) fn fingerprint(kind: ObjectKind, type_tag: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(kind.tag().as_bytes());
    eat(&OBJECT_VERSION.to_le_bytes());
    eat(&[0xff]);
    eat(type_tag.as_bytes());
    // 0 would mean "no fingerprint" to some readers; never produce it.
    if h == 0 { 1 } else { h }
}

/// The object header at the start of the user region (`#[repr(C)]`, 128 bytes, atomics
/// only, so any bytes are a valid value; every field is validated before use).
#[repr(C)]
struct ObjectHeader {
    magic: AtomicU32,
    version: AtomicU32,
    kind: AtomicU32,
    roles: AtomicU32,
    holder_capacity: AtomicU32,
    region_count: AtomicU32,
    /// Bumped (SeqCst) after every holder-count change, so a scan of the holder table can
    /// tell it saw one consistent state (see [`holders`]).
    holder_changes: AtomicU32,
    _reserved: AtomicU32,
    /// `[offset from the segment base, length]` per sub-region.
    regions: [[AtomicU64; 2]; MAX_REGIONS],
}

const _: () = assert!(size_of::<ObjectHeader>() as u64 == HEADER_LEN);

// SAFETY: `repr(C)`, std atomics only (every field validated before use, see above); `Sync`.
unsafe impl SharedState for ObjectHeader {}

/// The object header at the start of `seg`'s user region.
///
/// # Errors
///
/// [`OpenError::Corrupt`] if the region cannot hold one.
fn header_of(seg: &Segment) -> Result<&ObjectHeader, OpenError> {
    seg.shared(Offset::new(seg.region().offset()))
        .map_err(|_| OpenError::corrupt_part("object header (outside the region or misaligned)"))
}

/// What to create: kind, fingerprint, number of holder roles and the byte sizes of the
/// sub-regions (each placed at a [`REGION_ALIGN`] boundary).
#[derive(Debug, Clone)]
pub(crate) struct ObjectSpec<'a> {
    /// The object kind (checked by openers).
    pub(crate) kind: ObjectKind,
    /// From [`fingerprint`].
    pub(crate) fingerprint: u64,
    /// Holder roles (1 to [`MAX_ROLES`]).
    pub(crate) roles: u32,
    /// Sizes of the sub-regions, in order.
    pub(crate) regions: &'a [u64],
}

/// One sub-region of an object, validated: in bounds of the user region, 128-aligned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubRegion {
    /// Offset from the segment base.
    pub(crate) offset: u64,
    /// Length in bytes.
    pub(crate) len: u64,
    /// First byte (inside the mapping, which the owning [`Object`] keeps alive).
    pub(crate) ptr: NonNull<u8>,
}

/// A process-local view of a shared object: the segment, the validated header fields and
/// pointers to the holder table and sub-regions. Cheap to share (`Arc` the segment); it does
/// not count as a holder by itself — handles call [`Object::acquire`] / [`Object::release`].
#[derive(Debug)]
pub(crate) struct Object {
    seg: Arc<Segment>,
    kind: ObjectKind,
    roles: u32,
    /// Offset of the holder table from the segment base.
    holders_at: u64,
    holder_cap: u32,
    regions: Vec<SubRegion>,
}

// SAFETY: the pointers point into the segment's mapping, which `seg` (an `Arc`) keeps alive
// as long as the `Object`; everything reached through them is atomics (holder table) or
// handed to code that treats it as shared memory (rings, arena).
unsafe impl Send for Object {}
// SAFETY: as for `Send`; shared access goes through atomics only.
unsafe impl Sync for Object {}

impl Object {
    /// Creates an object: a new anonymous segment (`name == None`) or named segment, the
    /// header and holder table, then `init` for the sub-regions (ring `init`, arena
    /// `init`, ...), and only then publishes the header (openers wait for that). This
    /// process is registered as a participant, but holds no role yet.
    ///
    /// # Errors
    ///
    /// Segment creation ([`CreateError::AlreadyExists`], [`CreateError::NoSpace`], ...),
    /// registration, a bad spec, or `init`'s error.
    pub(crate) fn create(
        spec: &ObjectSpec<'_>,
        name: Option<&str>,
        participants: Option<u32>,
        init: impl FnOnce(&Object) -> Result<(), CreateError>,
    ) -> Result<Object, CreateError> {
        if spec.roles == 0 || spec.roles > MAX_ROLES {
            return Err(CreateError::capacity("holder roles", spec.roles, "1 to 3"));
        }
        if spec.regions.len() > MAX_REGIONS {
            return Err(CreateError::capacity(
                "sub-regions",
                spec.regions.len(),
                "at most 6",
            ));
        }
        let mut opts = SegmentOptions::new();
        opts.fingerprint(spec.fingerprint);
        if let Some(p) = participants {
            opts.participants(p);
        }
        let cap = participants.unwrap_or(mproc_shm::DEFAULT_PARTICIPANTS);
        // Region-relative layout.
        let mut cursor = round_up(HEADER_LEN + u64::from(cap) * holders::ENTRY_LEN);
        let mut rel = Vec::with_capacity(spec.regions.len());
        for &len in spec.regions {
            rel.push((cursor, len));
            cursor = len
                .checked_add(cursor)
                .map(round_up)
                .ok_or_else(|| CreateError::capacity("object size", len, "below 2^64"))?;
        }
        opts.len(cursor);
        // Unpublished until the object is: openers wait for all of it, and a creator that
        // dies before the end leaves a stale name that the next `create_named` reclaims.
        opts.defer_ready(true);
        let seg = match name {
            None => opts.create_anonymous(),
            Some(n) => opts.create_named(&crate::storage::names::shm_name(n)?),
        }
        .map_err(CreateError::from_segment)?;
        let seg = Arc::new(seg);
        let region = seg.region();
        if seg.participant_capacity() != cap || (region.len() as u64) < cursor {
            return Err(CreateError::Inconsistent {
                what: "segment smaller than requested",
            });
        }
        let hdr = header_of(&seg)?;
        // Relaxed stores: published by the Release store of `magic` below.
        hdr.version.store(OBJECT_VERSION, Ordering::Relaxed);
        hdr.kind.store(spec.kind as u32, Ordering::Relaxed);
        hdr.roles.store(spec.roles, Ordering::Relaxed);
        hdr.holder_capacity.store(cap, Ordering::Relaxed);
        hdr.region_count.store(rel.len() as u32, Ordering::Relaxed);
        for (i, &(off, len)) in rel.iter().enumerate() {
            hdr.regions[i][0].store(region.offset() + off, Ordering::Relaxed);
            hdr.regions[i][1].store(len, Ordering::Relaxed);
        }
        let obj = Object::from_header(seg, spec.kind, spec.roles).map_err(|_| {
            CreateError::Inconsistent {
                what: "object header",
            }
        })?;
        obj.segment().register()?;
        init(&obj)?;
        // Release: every header field and whatever `init` wrote happen before an opener's
        // Acquire load of the magic (`wait_ready`).
        obj.header().magic.store(OBJECT_MAGIC, Ordering::Release);
        // Only now READY (and the creator lock released): an error or a death before this
        // point leaves no name that looks ready (dropping the unpublished segment removes
        // the name; a death leaves it stale).
        obj.segment().publish();
        Ok(obj)
    }

    /// Opens the named object `name`, expecting `kind`, `fingerprint` and `roles`; waits
    /// (bounded) for its creator to finish, then validates the header. Registers this
    /// process as a participant; holds no role yet.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongType`] for another kind or message type, [`OpenError::Segment`]
    /// (not found, ...), [`OpenError::NotReady`], [`OpenError::Corrupt`].
    pub(crate) fn open_named(
        name: &str,
        kind: ObjectKind,
        fingerprint: u64,
        type_name: &str,
        roles: u32,
    ) -> Result<Object, OpenError> {
        let seg = Segment::open_named(&crate::storage::names::shm_name(name)?, fingerprint)
            .map_err(|e| OpenError::from_segment(e, type_name))?;
        Object::attach(Arc::new(seg), kind, roles)
    }

    /// Opens an object from a descriptor of its segment (a spawned child importing a
    /// handle). As [`Object::open_named`] otherwise.
    ///
    /// # Errors
    ///
    /// As [`Object::open_named`].
    pub(crate) fn from_fd(
        fd: OwnedFd,
        kind: ObjectKind,
        fingerprint: u64,
        type_name: &str,
        roles: u32,
    ) -> Result<Object, OpenError> {
        let seg =
            Segment::from_fd(fd, fingerprint).map_err(|e| OpenError::from_segment(e, type_name))?;
        Object::attach(Arc::new(seg), kind, roles)
    }

    fn attach(seg: Arc<Segment>, kind: ObjectKind, roles: u32) -> Result<Object, OpenError> {
        let hdr = header_of(&seg)?;
        let start = Instant::now();
        // Acquire: pairs with the creator's Release store of the magic in `create`.
        while hdr.magic.load(Ordering::Acquire) != OBJECT_MAGIC {
            if start.elapsed() > OPEN_TIMEOUT {
                return Err(OpenError::NotReady);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let obj = Object::from_header(seg, kind, roles)?;
        obj.segment().register()?;
        Ok(obj)
    }

    /// Validates the header (everything but the magic) and builds the local view.
    fn from_header(seg: Arc<Segment>, kind: ObjectKind, roles: u32) -> Result<Object, OpenError> {
        let region = seg.region();
        let hdr = header_of(&seg)?;
        let bad = |what: &'static str, v: u64| Err(OpenError::corrupt(what, v));
        // Relaxed loads: ordered after the creator's writes by the Acquire of the magic (or
        // written by this very thread in `create`).
        let version = hdr.version.load(Ordering::Relaxed);
        if version != OBJECT_VERSION {
            return Err(OpenError::VersionMismatch {
                found: version,
                expected: OBJECT_VERSION,
            });
        }
        let k = hdr.kind.load(Ordering::Relaxed);
        if k != kind as u32 {
            return bad("object kind", k.into());
        }
        let r = hdr.roles.load(Ordering::Relaxed);
        if r != roles {
            return bad("holder roles", r.into());
        }
        let cap = hdr.holder_capacity.load(Ordering::Relaxed);
        if cap != seg.participant_capacity() {
            return bad("holder capacity", cap.into());
        }
        let start = region.offset();
        let end = start + region.len() as u64;
        let table_end = start + HEADER_LEN + u64::from(cap) * holders::ENTRY_LEN;
        if table_end > end {
            return bad("holder capacity", cap.into());
        }
        let n = hdr.region_count.load(Ordering::Relaxed);
        if n as usize > MAX_REGIONS {
            return bad("region count", n.into());
        }
        let mut regions = Vec::with_capacity(n as usize);
        let mut floor = table_end;
        for i in 0..n as usize {
            let off = hdr.regions[i][0].load(Ordering::Relaxed);
            let len = hdr.regions[i][1].load(Ordering::Relaxed);
            let ok = off >= floor
                && off.is_multiple_of(REGION_ALIGN)
                && off.checked_add(len).is_some_and(|e| e <= end);
            if !ok {
                return bad("sub-region offset", off);
            }
            floor = off + len;
            // `start <= off <= end - len` (checked): inside the user region.
            let rel = (off - start) as usize;
            let ptr = seg.shared_region()[rel..].as_ptr().cast::<u8>().cast_mut();
            regions.push(SubRegion {
                offset: off,
                len,
                ptr: NonNull::new(ptr).expect("a mapped address is non-null"),
            });
        }
        let obj = Object {
            holders_at: start + HEADER_LEN,
            holder_cap: cap,
            seg,
            kind,
            roles,
            regions,
        };
        // The whole table fits (checked above), so its last entry resolves; a table that
        // does not is refused here rather than at the first use.
        if cap > 0 {
            obj.try_entry(cap - 1)?;
        }
        Ok(obj)
    }

    fn header(&self) -> &ObjectHeader {
        header_of(&self.seg).expect("validated at construction")
    }

    /// The segment (keeps the mapping alive; share it with an `Arena`).
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }

    /// The object's kind.
    #[allow(dead_code)]
    pub(crate) fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// Sub-region `i` (validated), or `None` past the end.
    pub(crate) fn region(&self, i: usize) -> Option<SubRegion> {
        self.regions.get(i).copied()
    }

    /// Sub-region `i` as shared bytes (see [`mproc_core::shared`]), or `None` past the end.
    pub(crate) fn region_bytes(&self, i: usize) -> Option<&SharedBytes> {
        let r = self.regions.get(i)?;
        // SAFETY: `ptr..ptr + len` was validated inside the user region in `from_header`,
        // in the mapping `self.seg` keeps alive as long as `self`; the facade touches segment
        // memory only through atomics and `SharedState` views.
        Some(unsafe { shared_bytes(r.ptr, r.len as usize) })
    }

    /// This process's participant id in the segment, registering if needed (first use in a
    /// forked child). The fast path is two loads, no system call.
    ///
    /// # Errors
    ///
    /// [`OpenError::Register`].
    pub(crate) fn me(&self) -> Result<ParticipantId, OpenError> {
        match self.seg.participant() {
            Some(id) => Ok(id),
            None => Ok(self.seg.register()?),
        }
    }

    /// A liveness oracle over the segment's participants, for `recover`.
    pub(crate) fn liveness(&self) -> impl Fn(u32) -> bool + '_ {
        self.seg.liveness()
    }
}

fn round_up(x: u64) -> u64 {
    x.div_ceil(REGION_ALIGN) * REGION_ALIGN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fp: u64) -> ObjectSpec<'static> {
        ObjectSpec {
            kind: ObjectKind::Queue,
            fingerprint: fp,
            roles: 2,
            regions: &[1000, 4096],
        }
    }

    #[test]
    fn create_carves_aligned_regions_and_counts_holders() {
        let obj = Object::create(
            &spec(fingerprint(ObjectKind::Queue, "t")),
            None,
            Some(8),
            |_| Ok(()),
        )
        .unwrap();
        let r0 = obj.region(0).unwrap();
        let r1 = obj.region(1).unwrap();
        assert!(obj.region(2).is_none());
        assert_eq!(r0.offset % REGION_ALIGN, 0);
        assert!(r1.offset >= r0.offset + 1000);
        assert_eq!(r1.offset % REGION_ALIGN, 0);
        assert_eq!((r0.len, r1.len), (1000, 4096));
        assert_eq!(obj.live_holders(0), 0);
        obj.acquire(0).unwrap();
        obj.acquire(0).unwrap();
        obj.acquire(1).unwrap();
        assert_eq!((obj.live_holders(0), obj.live_holders(1)), (2, 1));
        assert_eq!(obj.own_holders(0), 2);
        obj.release(0);
        obj.release(1);
        obj.release(1); // saturates
        assert_eq!((obj.live_holders(0), obj.live_holders(1)), (1, 0));
    }

    #[test]
    fn named_open_checks_fingerprint_and_kind() {
        let name = format!("mproc-objtest-{}", std::process::id());
        let fp = fingerprint(ObjectKind::Queue, "u64");
        let obj = Object::create(&spec(fp), Some(&name), None, |_| Ok(())).unwrap();
        obj.acquire(0).unwrap();
        let other = Object::open_named(&name, ObjectKind::Queue, fp, "Queue<u64>", 2).unwrap();
        assert_eq!(other.region(1).unwrap().len, 4096);
        // Same process, another handle of the segment: another participant entry.
        assert_eq!(other.live_holders(0), 1);
        let wrong = fingerprint(ObjectKind::Queue, "String");
        let err =
            Object::open_named(&name, ObjectKind::Queue, wrong, "Queue<String>", 2).unwrap_err();
        assert!(matches!(err, OpenError::WrongType { .. }), "{err}");
        let err = Object::open_named(&name, ObjectKind::Queue, fp, "Queue<u64>", 1).unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::Corrupt {
                    what: "holder roles",
                    ..
                }
            ),
            "{err}"
        );
        obj.segment().unlink().unwrap();
    }
}
