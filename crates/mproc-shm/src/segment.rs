//! `Segment`: a mapped shared-memory file (memfd or `/dev/shm`) with a validated header, a
//! participant table and a user region.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};
use mproc_core::shared::{SharedBytes, shared_bytes};
#[cfg(not(mproc_loom))]
use mproc_core::shared::{SharedLayoutError, SharedState, shared_at};

use crate::error::{OffsetError, RegisterError, SegmentError};
use crate::header::{
    self, CREATOR_LOCK, DEFAULT_PARTICIPANTS, Entry, HEADER_SIZE, Header, Layout, Poll,
};
use crate::name::{self, Look, NameState, ShmName, ToShmName};
use crate::offset::Offset;
use crate::participant::{ParticipantId, RegState, Table};
use crate::sync::{AtomicU32, Ordering};
use crate::sys;
#[cfg(feature = "test-hooks")]
use crate::test_hooks::{self, CreatePoint};

/// Calls a test-only crash point (a no-op without the `test-hooks` feature).
macro_rules! crash_point {
    ($point:ident) => {
        #[cfg(feature = "test-hooks")]
        test_hooks::at(CreatePoint::$point);
    };
}

/// How many times `create_named` starts over (after reclaiming a stale file, or after a
/// reclaimer took its freshly made file for stale) before it reports `AlreadyExists`.
const CREATE_ATTEMPTS: u32 = 8;

/// How long an opener lets an *empty* file with a free creator lock be before calling it
/// stale: a live creator is then between its `O_CREAT|O_EXCL` and its creator lock, two
/// adjacent system calls.
const EMPTY_GRACE: Duration = Duration::from_millis(100);

/// How long [`Segment::open_named`] and friends wait for a creator to publish the header.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// Options for creating or opening a [`Segment`] (a builder; memmap2's `MmapOptions` shape).
///
/// # Examples
///
/// ```
/// use mproc_shm::SegmentOptions;
/// let seg = SegmentOptions::new().len(64 * 1024).fingerprint(7).create_anonymous()?;
/// assert!(seg.region().len() >= 64 * 1024);
/// # Ok::<(), mproc_shm::SegmentError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    len: u64,
    fingerprint: u64,
    mode: u32,
    participants: u32,
    open_timeout: Duration,
    defer_ready: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions::new()
    }
}

impl SegmentOptions {
    /// Defaults: an empty user region (rounded up to fill one page), fingerprint 0, mode
    /// 0600, 256 participant entries, a 2 s open timeout.
    pub fn new() -> SegmentOptions {
        SegmentOptions {
            len: 0,
            fingerprint: 0,
            mode: 0o600,
            participants: DEFAULT_PARTICIPANTS,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            defer_ready: false,
        }
    }

    /// The least size of the user region, in bytes. The whole segment (header, participant
    /// table, region) is rounded up to whole pages, and the region gets the rest.
    pub fn len(&mut self, bytes: u64) -> &mut Self {
        self.len = bytes;
        self
    }

    /// The fingerprint written at creation, or expected at opening (the layer above
    /// derives it from the object kind and message type).
    pub fn fingerprint(&mut self, fingerprint: u64) -> &mut Self {
        self.fingerprint = fingerprint;
        self
    }

    /// Permission bits of a named segment (default `0o600`). Applied with `fchmod`, so the
    /// umask does not narrow them.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode & 0o777;
        self
    }

    /// Number of participant-table entries (1..=4096, default 256): how many processes can
    /// be attached and registered at once.
    pub fn participants(&mut self, entries: u32) -> &mut Self {
        self.participants = entries;
        self
    }

    /// How long an opener waits for the creator to publish the header (default 2 s), and
    /// how long `create_named` waits for a live creator of the same name to finish or die.
    /// Zero means "look once".
    pub fn open_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.open_timeout = timeout;
        self
    }

    /// Creates the segment *unpublished* (default `false`): the header is written but not
    /// READY, and a named segment's creator lock stays held, until [`Segment::publish`].
    /// A layer that initialises the user region (rings, arenas) uses this so that openers
    /// wait for all of it, and so that a creator dying before `publish` leaves a segment
    /// that reads as stale ([`NameState::Stale`](crate::name::NameState::Stale)) and is
    /// reclaimed by the next `create_named`, rather than one that looks ready but is not.
    /// Dropping an unpublished named segment (in the process that created it) removes its
    /// name again.
    pub fn defer_ready(&mut self, defer: bool) -> &mut Self {
        self.defer_ready = defer;
        self
    }

    /// Creates an anonymous segment: a memfd (`MFD_CLOEXEC|MFD_ALLOW_SEALING`), sized, then
    /// sealed with `F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL`. It vanishes with its last
    /// descriptor and mapping, even after a crash. Share it by `fork`, or across `exec`
    /// with [`Segment::inherit_into`].
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidOptions`], or [`SegmentError::Io`] from `memfd_create`,
    /// `ftruncate`, sealing or `mmap`.
    pub fn create_anonymous(&self) -> Result<Segment, SegmentError> {
        let layout = Layout::new(
            self.len,
            self.participants,
            self.fingerprint,
            sys::page_size(),
        )?;
        let name: &CStr = c"mproc-shm";
        let fd = sys::memfd_create(name).map_err(SegmentError::io("memfd_create"))?;
        sys::ftruncate(fd.as_fd(), layout.total_size).map_err(SegmentError::io("ftruncate"))?;
        sys::add_seals(
            fd.as_fd(),
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        )
        .map_err(SegmentError::io("fcntl(F_ADD_SEALS)"))?;
        Segment::initialise(fd, layout, None, !self.defer_ready)
    }

    /// Creates a named segment `/dev/shm/<name>` with
    /// `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` and the configured mode (0600 by default). The
    /// name stays until [`Segment::unlink`] (Python: `SharedMemory(name, create=True)`).
    /// `name` is a `&str` (checked by [`ShmName::new`]) or a [`ShmName`] (for example from
    /// a [`Namespace`](crate::Namespace)); it is checked before anything touches `/dev/shm`.
    ///
    /// Right after `O_CREAT|O_EXCL` the creator write-locks the file's creator byte
    /// ([`CREATOR_LOCK`](crate::CREATOR_LOCK)) and holds it until the header is READY (see
    /// [`defer_ready`](SegmentOptions::defer_ready)). If the name exists already:
    /// * READY, or not an mproc segment → [`SegmentError::AlreadyExists`];
    /// * stale (not READY, creator lock free: its creator died mid-creation) → the stale
    ///   file is removed — only if the name still refers to it, checked while holding its
    ///   creator lock — and creation starts over (see [`name::reclaim`]);
    /// * being created by a live process → wait up to the open timeout for it to finish
    ///   (then `AlreadyExists`) or die (then reclaim); still creating at the deadline →
    ///   `AlreadyExists`.
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidName`], [`SegmentError::AlreadyExists`] (also when a symbolic
    /// link sits at the name: it is not followed), [`SegmentError::InvalidOptions`],
    /// [`SegmentError::Io`]. On any error after the file was created, it is unlinked again.
    pub fn create_named<N: ToShmName + ?Sized>(&self, name: &N) -> Result<Segment, SegmentError> {
        let name = name.to_shm_name()?;
        let layout = Layout::new(
            self.len,
            self.participants,
            self.fingerprint,
            sys::page_size(),
        )?;
        let path = name.c_path();
        let deadline = Instant::now() + self.open_timeout;
        let exists = || SegmentError::AlreadyExists {
            name: name.to_string(),
        };
        for _ in 0..CREATE_ATTEMPTS {
            let fd = match sys::open(
                &path,
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                self.mode as libc::mode_t,
            ) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    if settle_existing(&name, deadline)? {
                        continue;
                    }
                    return Err(exists());
                }
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(SegmentError::Symlink {
                        name: name.to_string(),
                    });
                }
                Err(e) => {
                    return Err(SegmentError::Io {
                        op: "open(O_CREAT|O_EXCL)",
                        source: e,
                    });
                }
            };
            crash_point!(Created);
            // The creator lock, before anything else. Taken means a reclaimer holds it: it
            // found our still-empty file and called it stale, so start over.
            if !sys::ofd_try_lock(fd.as_fd(), CREATOR_LOCK)
                .map_err(SegmentError::io("fcntl(F_OFD_SETLK)"))?
            {
                continue;
            }
            let id = sys::fstat(fd.as_fd())
                .map_err(SegmentError::io("fstat"))?
                .id;
            // A reclaimer that took our file for stale before we locked it has removed it
            // (reclaimers unlink while holding the lock we now hold): start over.
            match sys::lstat(&path) {
                Ok(now) if now.id == id => {}
                _ => continue,
            }
            crash_point!(Locked);
            let sized = sys::fchmod(fd.as_fd(), self.mode as libc::mode_t)
                .map_err(SegmentError::io("fchmod"))
                .and_then(|()| {
                    sys::ftruncate(fd.as_fd(), layout.total_size)
                        .map_err(SegmentError::io("ftruncate"))
                });
            let result = sized.and_then(|()| {
                Segment::initialise(fd, layout, Some(name.clone()), !self.defer_ready)
            });
            if result.is_err() {
                // Best effort: the file is ours (O_EXCL, and we hold its creator lock until
                // the descriptor closes) and useless; the original error matters.
                let _ = name::unlink_if(&path, id);
            }
            return result;
        }
        Err(exists())
    }

    /// Opens the named segment `/dev/shm/<name>` (with `O_NOFOLLOW`), waits up to the open
    /// timeout for its creator to publish it, and checks every header field against this
    /// build and the configured fingerprint (Python: `SharedMemory(name)`).
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidName`], [`SegmentError::NotFound`], [`SegmentError::Symlink`],
    /// [`SegmentError::Stale`] (its creator died before publishing it: reported at once
    /// rather than after the timeout), and every validation error listed on
    /// [`SegmentOptions::open_fd`].
    pub fn open_named<N: ToShmName + ?Sized>(&self, name: &N) -> Result<Segment, SegmentError> {
        let name = name.to_shm_name()?;
        let fd =
            sys::open(&name.c_path(), libc::O_RDWR | libc::O_NOFOLLOW, 0).map_err(|e| {
                match e.raw_os_error() {
                    Some(libc::ENOENT) => SegmentError::NotFound {
                        name: name.to_string(),
                    },
                    Some(libc::ELOOP) => SegmentError::Symlink {
                        name: name.to_string(),
                    },
                    _ => SegmentError::Io {
                        op: "open",
                        source: e,
                    },
                }
            })?;
        self.open_validated(fd, Some(name))
    }

    /// Opens a segment from a descriptor (an anonymous segment inherited across `exec`, or
    /// received over a socket). A memfd that can still be sealed is sealed against
    /// shrinking and growing first, so no peer can truncate it under us.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotRegularFile`], [`SegmentError::TooSmall`],
    /// [`SegmentError::NotReady`], [`SegmentError::Stale`], [`SegmentError::NotMproc`],
    /// [`SegmentError::VersionMismatch`], [`SegmentError::Truncated`],
    /// [`SegmentError::CorruptHeader`], [`SegmentError::FingerprintMismatch`],
    /// [`SegmentError::Io`].
    pub fn open_fd(&self, fd: OwnedFd) -> Result<Segment, SegmentError> {
        if let Some(seals) = sys::get_seals(fd.as_fd()).map_err(SegmentError::io("F_GET_SEALS"))?
            && seals & libc::F_SEAL_SEAL == 0
        {
            sys::add_seals(fd.as_fd(), libc::F_SEAL_SHRINK | libc::F_SEAL_GROW)
                .map_err(SegmentError::io("fcntl(F_ADD_SEALS)"))?;
        }
        self.open_validated(fd, None)
    }

    fn open_validated(&self, fd: OwnedFd, name: Option<ShmName>) -> Result<Segment, SegmentError> {
        let start = Instant::now();
        let deadline = start + self.open_timeout;
        let mut pause = Duration::from_micros(50);
        let stale = || SegmentError::Stale {
            name: name.as_ref().map(ShmName::to_string).unwrap_or_default(),
        };
        // Nobody holds the creator lock (through another open file description than ours,
        // which never takes it)? Then a header that is not READY will never become READY.
        let creator_gone = |fd: &OwnedFd| -> Result<bool, SegmentError> {
            sys::ofd_is_locked(fd.as_fd(), CREATOR_LOCK)
                .map(|locked| !locked)
                .map_err(SegmentError::io("fcntl(F_OFD_GETLK)"))
        };
        let wait = |pause: &mut Duration| -> Result<(), SegmentError> {
            let now = Instant::now();
            if now >= deadline {
                return Err(SegmentError::NotReady {
                    waited: now - start,
                });
            }
            std::thread::sleep((*pause).min(deadline - now));
            *pause = (*pause * 2).min(Duration::from_millis(5));
            Ok(())
        };
        let stat = |fd: &OwnedFd| -> Result<sys::Stat, SegmentError> {
            let st = sys::fstat(fd.as_fd()).map_err(SegmentError::io("fstat"))?;
            if !st.is_regular {
                return Err(SegmentError::NotRegularFile);
            }
            Ok(st)
        };
        // The creator sizes the file in one `ftruncate`; length 0 means "not yet". An empty
        // file whose creator lock stays free for EMPTY_GRACE is stale (the grace covers a
        // live creator between its O_EXCL and its lock).
        let mut empty_and_unlocked: Option<Instant> = None;
        let first = loop {
            let st = stat(&fd)?;
            if st.len >= HEADER_SIZE {
                break st;
            }
            if st.len > 0 {
                return Err(SegmentError::TooSmall {
                    len: st.len,
                    min: HEADER_SIZE,
                });
            }
            if creator_gone(&fd)? {
                let since = *empty_and_unlocked.get_or_insert_with(Instant::now);
                if since.elapsed() >= EMPTY_GRACE && stat(&fd)?.len == 0 {
                    return Err(stale());
                }
            } else {
                empty_and_unlocked = None;
            }
            wait(&mut pause)?;
        };
        let map_len = usize::try_from(first.len).map_err(|_| SegmentError::CorruptHeader {
            field: "file length",
            value: first.len,
        })?;
        let map = MmapOptions::new()
            .len(map_len)
            .map_raw(&fd)
            .map_err(SegmentError::io("mmap"))?;
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked above), page-aligned,
        // and lives as long as `map`; `Header` is all atomics, valid for any bytes.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        loop {
            if let Poll::Ready = header::poll_ready(header)? {
                break;
            }
            // Sized but not READY, and the creator lock free: the creator released it (it
            // does so only after READY, so look again) or died.
            if creator_gone(&fd)? {
                match header::poll_ready(header)? {
                    Poll::Ready => break,
                    Poll::Pending => return Err(stale()),
                }
            }
            wait(&mut pause)?;
        }
        // Look at the length again after READY: a file shrunk meanwhile is refused here.
        let file_len = first.len.min(stat(&fd)?.len);
        let layout = header::validate(header, file_len, self.fingerprint, sys::page_size())?;
        Ok(Segment::assemble(map, fd, layout, name))
    }
}

/// A mapped shared-memory segment: header, participant table and user region.
///
/// The memory is never handed out as `&[u8]` (another process writes it); use
/// [`region`](Segment::region), [`resolve`](Segment::resolve) and atomics.
/// `Segment` is `Send + Sync`; threads share one handle (and its participant entry).
///
/// Python's equivalent is `multiprocessing.shared_memory.SharedMemory`.
pub struct Segment {
    map: MmapRaw,
    fd: OwnedFd,
    layout: Layout,
    name: Option<ShmName>,
    table: Table,
    reg: RegState,
    /// 1 while this handle created the segment and has not published it yet (it then holds
    /// the creator lock through `fd`), else 0. Process-local.
    pending: AtomicU32,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("fd", &self.fd.as_raw_fd())
            .field("len", &self.layout.total_size)
            .field(
                "fingerprint",
                &format_args!("{:#x}", self.layout.fingerprint),
            )
            .field("participants", &self.layout.participant_capacity)
            .finish()
    }
}

/// The user region of a segment: what the layers above carve up.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    ptr: NonNull<u8>,
    offset: u64,
    len: usize,
}

impl Region {
    /// First byte of the region, aligned to [`REGION_ALIGN`](crate::REGION_ALIGN) (128).
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Offset of the region's first byte from the segment base.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Segment {
    /// Opens the named segment `name`, expecting `expected_fingerprint`, with the default
    /// options. See [`SegmentOptions::open_named`].
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::open_named`].
    pub fn open_named<N: ToShmName + ?Sized>(
        name: &N,
        expected_fingerprint: u64,
    ) -> Result<Segment, SegmentError> {
        SegmentOptions::new()
            .fingerprint(expected_fingerprint)
            .open_named(name)
    }

    /// Opens a segment from a descriptor. See [`SegmentOptions::open_fd`].
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::open_fd`].
    pub fn from_fd(fd: OwnedFd, expected_fingerprint: u64) -> Result<Segment, SegmentError> {
        SegmentOptions::new()
            .fingerprint(expected_fingerprint)
            .open_fd(fd)
    }

    /// Opens a segment from an inherited descriptor number, typically in a child started
    /// with [`Segment::inherit_into`].
    ///
    /// # Safety
    ///
    /// `fd` must be an open descriptor that nothing else owns or closes: the segment takes
    /// ownership of it.
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::open_fd`].
    pub unsafe fn from_raw_fd(
        fd: RawFd,
        expected_fingerprint: u64,
    ) -> Result<Segment, SegmentError> {
        // SAFETY: delegated to the caller (`fd` is open and ours to own).
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Segment::from_fd(fd, expected_fingerprint)
    }

    /// Removes the name `/dev/shm/<name>` (Python: `SharedMemory.unlink()`); existing
    /// mappings stay valid until dropped.
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidName`], [`SegmentError::NotFound`], [`SegmentError::Io`].
    pub fn unlink_named<N: ToShmName + ?Sized>(name: &N) -> Result<(), SegmentError> {
        let name = name.to_shm_name()?;
        sys::unlink(&name.c_path()).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => SegmentError::NotFound {
                name: name.to_string(),
            },
            _ => SegmentError::Io {
                op: "unlink",
                source: e,
            },
        })
    }

    /// Removes this named segment's name. Note: if someone unlinked the name and created a
    /// new segment under it meanwhile, this removes the new one's name.
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidOptions`] for an anonymous segment, otherwise as
    /// [`Segment::unlink_named`].
    pub fn unlink(&self) -> Result<(), SegmentError> {
        match &self.name {
            Some(name) => Segment::unlink_named(name),
            None => Err(SegmentError::InvalidOptions {
                reason: "an anonymous segment has no name to unlink",
            }),
        }
    }

    /// Maps a freshly made and sized file, writes its header, and publishes it now or
    /// leaves it to [`Segment::publish`]. The creator lock (named segments) is held
    /// through `fd` until publication.
    fn initialise(
        fd: OwnedFd,
        layout: Layout,
        name: Option<ShmName>,
        publish_now: bool,
    ) -> Result<Segment, SegmentError> {
        let len = usize::try_from(layout.total_size).map_err(|_| SegmentError::InvalidOptions {
            reason: "segment length too large",
        })?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw(&fd)
            .map_err(SegmentError::io("mmap"))?;
        // SAFETY: the mapping is `total_size >= HEADER_SIZE` bytes, page-aligned, and
        // lives as long as `map`; `Header` is all atomics, valid for any bytes.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        header::write_fields(header, &layout);
        let seg = Segment::assemble(map, fd, layout, name);
        // Relaxed: a process-local flag; `publish` and `Drop` read it on this handle.
        seg.pending.store(1, Ordering::Relaxed);
        if publish_now {
            seg.publish();
        }
        Ok(seg)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_SIZE bytes (validated layout), page-aligned,
        // and lives as long as `self`; `Header` is all atomics, valid for any bytes.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// Publishes a segment created with [`SegmentOptions::defer_ready`]: stores READY
    /// (Release, so everything written into the segment before is visible to an opener that
    /// sees it), then releases the creator lock. Openers waiting for it go on; from now on
    /// the name is [`NameState::Ready`](crate::name::NameState::Ready). A no-op on a
    /// published segment (every opened one, and every one created without `defer_ready`).
    pub fn publish(&self) {
        // Relaxed: process-local flag (see `pending`); the swap makes publication once.
        if self.pending.swap(0, Ordering::Relaxed) == 0 {
            return;
        }
        crash_point!(BeforePublish);
        header::publish(self.header());
        // After READY: a reclaimer that takes the lock then sees READY. An error would
        // leave the lock held until the descriptor closes, which only delays nothing: the
        // header is READY, and READY is what every reader checks first.
        let _ = sys::ofd_unlock(self.fd.as_fd(), CREATOR_LOCK);
    }

    /// Whether this handle created the segment with
    /// [`defer_ready`](SegmentOptions::defer_ready) and has not published it yet.
    pub fn is_pending(&self) -> bool {
        // Relaxed: process-local flag.
        self.pending.load(Ordering::Relaxed) != 0
    }

    fn assemble(map: MmapRaw, fd: OwnedFd, layout: Layout, name: Option<ShmName>) -> Segment {
        debug_assert!(map.len() as u64 >= layout.total_size);
        // SAFETY: the table starts at HEADER_SIZE, inside the mapping (validated layout:
        // region_offset, which follows the table, is <= total_size <= map.len()).
        let entries = unsafe { map.as_mut_ptr().add(HEADER_SIZE as usize) }.cast::<Entry>();
        let table = Table {
            entries: NonNull::new(entries).expect("mapping is non-null"),
            capacity: layout.participant_capacity,
        };
        Segment {
            map,
            fd,
            layout,
            name,
            table,
            reg: RegState::default(),
            pending: AtomicU32::new(0),
        }
    }

    /// Total size of the segment in bytes (header + participant table + region).
    pub fn len(&self) -> usize {
        self.layout.total_size as usize
    }

    /// Always false: a segment has at least a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The fingerprint in the header.
    pub fn fingerprint(&self) -> u64 {
        self.layout.fingerprint
    }

    /// The creator's pid, in the creator's pid namespace (informative only).
    pub fn creator_pid(&self) -> u32 {
        self.layout.creator_pid
    }

    /// The name of a named segment; `None` for an anonymous one.
    pub fn name(&self) -> Option<&ShmName> {
        self.name.as_ref()
    }

    /// Number of participant-table entries.
    pub fn participant_capacity(&self) -> u32 {
        self.layout.participant_capacity
    }

    /// The base of the mapping (offset 0).
    pub fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("mapping is non-null")
    }

    /// The user region: from its offset (a multiple of 128) to the end of the segment.
    pub fn region(&self) -> Region {
        Region {
            // SAFETY: region_offset <= total_size <= mapping length (validated layout).
            ptr: unsafe { self.base().add(self.layout.region_offset as usize) },
            offset: self.layout.region_offset,
            len: self.layout.region_len as usize,
        }
    }

    /// The user region as [`SharedBytes`]: atomic bytes, which is what memory other
    /// processes write is (never a `&[u8]`). Copy payloads out of it with
    /// [`copy_from_shared`](mproc_core::shared::copy_from_shared); index `i` is the byte at
    /// segment offset `region().offset() + i`.
    pub fn shared_region(&self) -> &SharedBytes {
        let r = self.region();
        // SAFETY: the user region lies inside the mapping (validated layout), which lives as
        // long as `self`; this crate and the layers above touch segment memory only through
        // atomics and `SharedState` views, never through plain references.
        unsafe { shared_bytes(r.as_ptr(), r.len()) }
    }

    /// The `T` at `offset` (from the segment base), inside the user region: the checked,
    /// safe way to look at a shared header, built on [`mproc_core::shared::shared_at`].
    /// Not under `--cfg mproc_loom` (loom atomics cannot be mapped).
    ///
    /// # Errors
    ///
    /// [`OffsetError::OutOfBounds`] if the `T` does not lie wholly inside the user region,
    /// [`OffsetError::Misaligned`] if the address is not aligned for `T` (as
    /// [`resolve`](Segment::resolve)).
    #[cfg(not(mproc_loom))]
    pub fn shared<T: SharedState>(&self, offset: Offset<T>) -> Result<&T, OffsetError> {
        let raw = offset.get();
        let start = self.layout.region_offset;
        let end = self.layout.total_size;
        let out_of_bounds = OffsetError::OutOfBounds {
            offset: raw,
            len: size_of::<T>() as u64,
            start,
            end,
        };
        let rel = raw
            .checked_sub(start)
            .and_then(|r| usize::try_from(r).ok())
            .ok_or(out_of_bounds)?;
        shared_at(self.shared_region(), rel).map_err(|e| match e {
            SharedLayoutError::Misaligned { align, .. } => OffsetError::Misaligned {
                offset: raw,
                align: align as u64,
            },
            _ => out_of_bounds,
        })
    }

    fn check_range(&self, offset: u64, bytes: u64, align: u64) -> Result<(), OffsetError> {
        let start = self.layout.region_offset;
        let end = self.layout.total_size;
        let in_bounds = offset >= start && offset.checked_add(bytes).is_some_and(|e| e <= end);
        if !in_bounds {
            return Err(OffsetError::OutOfBounds {
                offset,
                len: bytes,
                start,
                end,
            });
        }
        // The base is page-aligned, so offset alignment is address alignment for any
        // alignment up to the page size; beyond it, check the address itself.
        let addr = (self.map.as_ptr() as u64).wrapping_add(offset);
        if !addr.is_multiple_of(align) {
            return Err(OffsetError::Misaligned { offset, align });
        }
        Ok(())
    }

    /// Turns an offset into a pointer, checking that a whole `T` fits inside the user
    /// region and that it is aligned for `T`. The pointer is valid while the segment lives;
    /// reading through it is still reading memory that other processes write.
    ///
    /// # Errors
    ///
    /// [`OffsetError::OutOfBounds`], [`OffsetError::Misaligned`].
    pub fn resolve<T>(&self, offset: Offset<T>) -> Result<NonNull<T>, OffsetError> {
        let raw = offset.get();
        self.check_range(raw, size_of::<T>() as u64, align_of::<T>() as u64)?;
        // SAFETY: `raw + size_of::<T>() <= total_size <= mapping length` was just checked.
        Ok(unsafe { self.base().add(raw as usize) }.cast())
    }

    /// Like [`resolve`](Segment::resolve), for `len` consecutive `T`s.
    ///
    /// # Errors
    ///
    /// [`OffsetError::OutOfBounds`] (also when `len * size_of::<T>()` overflows),
    /// [`OffsetError::Misaligned`].
    pub fn resolve_slice<T>(
        &self,
        offset: Offset<T>,
        len: usize,
    ) -> Result<NonNull<[T]>, OffsetError> {
        let raw = offset.get();
        let bytes = (len as u64).saturating_mul(size_of::<T>() as u64);
        self.check_range(raw, bytes, align_of::<T>() as u64)?;
        // SAFETY: the whole slice lies inside the mapping (just checked).
        let first = unsafe { self.base().add(raw as usize) }.cast::<T>();
        Ok(NonNull::slice_from_raw_parts(first, len))
    }

    /// The offset of `ptr`, if it points into the user region.
    pub fn offset_of<T>(&self, ptr: *const T) -> Option<Offset<T>> {
        let off = (ptr as u64).checked_sub(self.map.as_ptr() as u64)?;
        self.check_range(off, size_of::<T>() as u64, 1).ok()?;
        Some(Offset::new(off))
    }

    /// Registers this process as a participant (idempotent: later calls, from any thread,
    /// return the same id; a forked child gets its own). See the
    /// [`participant`](crate::participant) module for how liveness works.
    ///
    /// # Errors
    ///
    /// [`RegisterError::TableFull`] when every entry is held by a live process,
    /// [`RegisterError::TooManyRegistrations`], [`RegisterError::Io`].
    pub fn register(&self) -> Result<ParticipantId, RegisterError> {
        self.table.register(self.fd.as_fd(), &self.reg)
    }

    /// This process's participant id, if it registered through this handle (and not only
    /// its parent before a fork).
    #[inline]
    pub fn participant(&self) -> Option<ParticipantId> {
        self.table.current(&self.reg)
    }

    /// Is participant `id` (a raw id, as stored in shared words) alive? Exact across pid
    /// reuse and pid namespaces; 0 and malformed ids are "not alive".
    pub fn is_alive(&self, id: u32) -> bool {
        self.table.is_alive(self.fd.as_fd(), id)
    }

    /// A liveness oracle for the layers above (`Fn(u32) -> bool`), borrowing the segment.
    pub fn liveness(&self) -> impl Fn(u32) -> bool + Clone + Send + Sync + '_ {
        move |id| self.is_alive(id)
    }

    /// Arranges for `cmd`'s child to find this segment's file at descriptor `child_fd`
    /// (open, without close-on-exec), so it can call [`Segment::from_raw_fd`] with that
    /// number. Only that child gets it: a duplicate is held by `cmd` and `dup2`ed in the
    /// child between `fork` and `exec`, so other processes spawned meanwhile do not
    /// inherit it. Pass the number to the child yourself (an env var or an argument).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `child_fd < 3` (stdio), or the error of `dup`.
    pub fn inherit_into(&self, cmd: &mut Command, child_fd: RawFd) -> io::Result<()> {
        if child_fd < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "child_fd must be >= 3",
            ));
        }
        let dup = sys::dup_cloexec(self.fd.as_fd())?;
        let hook = move || {
            let src = dup.as_raw_fd();
            if src == child_fd {
                sys::clear_cloexec(src)
            } else {
                sys::dup2(src, child_fd)
            }
        };
        // SAFETY: the hook runs in the child between fork and exec and only calls `dup2`
        // or `fcntl` (async-signal-safe, no allocation, no locks).
        unsafe { cmd.pre_exec(hook) };
        Ok(())
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Releasing the registration closes the liveness descriptor, so this process reads
        // as dead in this segment from now on. The mapping and the main descriptor are
        // released by their own `Drop`s (memmap2 ignores munmap errors: nothing could be
        // done about them).
        self.table.release(&self.reg);
        // An unpublished named segment dropped by its creator (its initialisation failed):
        // remove the name, if it is still this file's, while the creator lock (held through
        // `fd`) keeps reclaimers off it. A forked child dropping its copy leaves it alone.
        if self.is_pending()
            && self.layout.creator_pid == sys::getpid()
            && let Some(name) = &self.name
            && let Ok(st) = sys::fstat(self.fd.as_fd())
        {
            let _ = name::unlink_if(&name.c_path(), st.id);
        }
    }
}

/// `create_named` met an existing file at `name`: settles what it is. `Ok(true)`: the name
/// is free now (it vanished, or it was stale and was reclaimed): try to create again.
/// `Ok(false)`: it is taken (ready, foreign, or still being created by a live process at
/// `deadline`).
fn settle_existing(name: &ShmName, deadline: Instant) -> Result<bool, SegmentError> {
    let mut pause = Duration::from_micros(50);
    loop {
        let look = match Look::take(name, true) {
            Ok(look) => look,
            // Someone else's file that we may not open read-write: taken, as before.
            Err(SegmentError::Io { source, .. }) if source.raw_os_error() == Some(libc::EACCES) => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        match look.state() {
            NameState::Missing => return Ok(true),
            NameState::Stale => {
                // Removed, or replaced meanwhile by a new file (left alone): either way,
                // the next O_EXCL attempt decides.
                look.reclaim(name)?;
                return Ok(true);
            }
            NameState::Creating => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(false);
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            _ => return Ok(false),
        }
    }
}
