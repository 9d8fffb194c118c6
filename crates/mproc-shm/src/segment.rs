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

use crate::error::{OffsetError, RegisterError, SegmentError};
use crate::header::{self, DEFAULT_PARTICIPANTS, Entry, HEADER_SIZE, Header, Layout, Poll};
use crate::name::ShmName;
use crate::offset::Offset;
use crate::participant::{ParticipantId, RegState, Table};
use crate::sys;

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

    /// How long an opener waits for the creator to publish the header (default 2 s). Zero
    /// means "look once".
    pub fn open_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.open_timeout = timeout;
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
        Segment::initialise(fd, layout, None)
    }

    /// Creates a named segment `/dev/shm/<name>` with
    /// `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` and the configured mode (0600 by default). The
    /// name stays until [`Segment::unlink`] (Python: `SharedMemory(name, create=True)`).
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidName`], [`SegmentError::AlreadyExists`] (also when a symbolic
    /// link sits at the name: it is not followed), [`SegmentError::InvalidOptions`],
    /// [`SegmentError::Io`]. On any error after the file was created, it is unlinked again.
    pub fn create_named(&self, name: &str) -> Result<Segment, SegmentError> {
        let name = ShmName::new(name)?;
        let layout = Layout::new(
            self.len,
            self.participants,
            self.fingerprint,
            sys::page_size(),
        )?;
        let path = name.c_path();
        let fd = sys::open(
            &path,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            self.mode as libc::mode_t,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => SegmentError::AlreadyExists {
                name: name.to_string(),
            },
            Some(libc::ELOOP) => SegmentError::Symlink {
                name: name.to_string(),
            },
            _ => SegmentError::Io {
                op: "open(O_CREAT|O_EXCL)",
                source: e,
            },
        })?;
        let sized = sys::fchmod(fd.as_fd(), self.mode as libc::mode_t)
            .map_err(SegmentError::io("fchmod"))
            .and_then(|()| {
                sys::ftruncate(fd.as_fd(), layout.total_size).map_err(SegmentError::io("ftruncate"))
            });
        let result = sized.and_then(|()| Segment::initialise(fd, layout, Some(name.clone())));
        if result.is_err() {
            // Best effort: the file is ours (O_EXCL) and useless; the original error matters.
            let _ = sys::unlink(&path);
        }
        result
    }

    /// Opens the named segment `/dev/shm/<name>` (with `O_NOFOLLOW`), waits up to the open
    /// timeout for its creator to publish it, and checks every header field against this
    /// build and the configured fingerprint (Python: `SharedMemory(name)`).
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidName`], [`SegmentError::NotFound`], [`SegmentError::Symlink`],
    /// and every validation error listed on [`SegmentOptions::open_fd`].
    pub fn open_named(&self, name: &str) -> Result<Segment, SegmentError> {
        let name = ShmName::new(name)?;
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
    /// [`SegmentError::NotReady`], [`SegmentError::NotMproc`],
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
        // The creator sizes the file in one `ftruncate`; length 0 means "not yet".
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
            match header::poll_ready(header)? {
                Poll::Ready => break,
                Poll::Pending => wait(&mut pause)?,
            }
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
    pub fn open_named(name: &str, expected_fingerprint: u64) -> Result<Segment, SegmentError> {
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
    pub fn unlink_named(name: &str) -> Result<(), SegmentError> {
        let name = ShmName::new(name)?;
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
            Some(name) => Segment::unlink_named(name.as_str()),
            None => Err(SegmentError::InvalidOptions {
                reason: "an anonymous segment has no name to unlink",
            }),
        }
    }

    fn initialise(
        fd: OwnedFd,
        layout: Layout,
        name: Option<ShmName>,
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
        header::initialise(header, &layout);
        Ok(Segment::assemble(map, fd, layout, name))
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
    }
}
