//! Names of POSIX shared-memory segments (`/dev/shm/<name>`): what a name may be, name
//! prefixes ([`Namespace`]) for the layers above, and what state a name is in ([`probe`]).
//!
//! # What a name may be
//!
//! A bare file name inside `/dev/shm`: not empty, at most [`MAX_NAME_LEN`] bytes, no `/`,
//! no NUL, not `.` and without `..` anywhere ([`ShmName::new`]). A layer that puts a prefix
//! in front of its users' names (mproc's facade uses `mproc.`) declares a [`Namespace`];
//! [`Namespace::name`] checks the *user's* part by the same rules — so `""` is refused as
//! empty, not accepted as the bare prefix — with the length limit reduced by the prefix, so
//! the whole name still fits `NAME_MAX`, and every error describes the user's part.
//!
//! # Stale names
//!
//! Creating a named segment is several steps (make the file, size it, write the header,
//! whatever the layer above initialises, publish READY), and a creator may die in between.
//! Right after its `O_CREAT|O_EXCL` succeeds the creator write-locks the segment's creator
//! byte ([`CREATOR_LOCK`], an OFD lock the kernel drops when the creator dies), and it
//! releases it only after publishing READY. So the state of a name is exactly
//! ([`probe`]):
//!
//! * [`NameState::Ready`] — the header is READY;
//! * [`NameState::Creating`] — not READY, and someone holds the creator lock: a live
//!   creator is still at work;
//! * [`NameState::Stale`] — not READY, and nobody holds the creator lock: its creator died
//!   or gave up while creating it. The next `create_named` of the name reclaims it (and
//!   [`reclaim`] does so on request); `open_named` reports [`SegmentError::Stale`];
//! * [`NameState::Missing`], [`NameState::Foreign`] (a symbolic link, a directory, or a file
//!   that is not an mproc segment).
//!
//! One window is inherent: between the creator's `O_CREAT|O_EXCL` and its lock (two
//! consecutive system calls) its empty file reads as stale. Reclaiming it then is safe: a
//! creator that finds its creator lock taken, or its name no longer naming its file once it
//! holds the lock, starts over. Openers wait a short grace before calling an *empty* file
//! stale, so they do not report this window as an error.
//!
//! [`CREATOR_LOCK`]: crate::CREATOR_LOCK

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};

use crate::error::SegmentError;
use crate::header::{CREATOR_LOCK, MAGIC, READY};
use crate::sys;

/// Longest accepted name, in bytes (`NAME_MAX` of tmpfs is 255; one byte is kept for the
/// leading `/` that `shm_open(3)` callers usually write).
pub const MAX_NAME_LEN: usize = 254;

/// Directory where Linux keeps POSIX shared memory.
pub(crate) const SHM_DIR: &str = "/dev/shm/";

/// Why a segment name was refused. Each refusal is its own variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// The name's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name contains a `/` (it must name a file directly inside `/dev/shm`).
    ContainsSlash,
    /// The name is `.`, or contains `..`.
    DotDot,
    /// The name contains a NUL byte.
    ContainsNul,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("the name is empty"),
            NameError::TooLong { len, max } => {
                write!(f, "the name is {len} bytes long; at most {max} are allowed")
            }
            NameError::ContainsSlash => {
                f.write_str("the name contains '/'; give a bare file name such as \"my-queue\"")
            }
            NameError::DotDot => f.write_str("the name is \".\" or contains \"..\""),
            NameError::ContainsNul => f.write_str("the name contains a NUL byte"),
        }
    }
}

impl std::error::Error for NameError {}

/// A validated segment name: a bare file name inside `/dev/shm`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ShmName {
    name: String,
}

impl ShmName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// One [`NameError`] variant per rule: empty, too long, contains `/`, is `.` or contains
    /// `..`, contains NUL.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc_shm::{NameError, ShmName};
    /// assert!(ShmName::new("jobs-42").is_ok());
    /// assert_eq!(ShmName::new("a/b"), Err(NameError::ContainsSlash));
    /// assert_eq!(ShmName::new(".."), Err(NameError::DotDot));
    /// ```
    pub fn new(name: &str) -> Result<ShmName, NameError> {
        check(name, MAX_NAME_LEN)?;
        Ok(ShmName {
            name: name.to_owned(),
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The file's path, `/dev/shm/<name>`.
    pub fn path(&self) -> String {
        format!("{SHM_DIR}{}", self.name)
    }

    pub(crate) fn c_path(&self) -> CString {
        CString::new(self.path()).expect("validated: no NUL")
    }
}

/// Checks `name` against the rules of [`ShmName::new`], with `max` bytes at most.
fn check(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            len: name.len(),
            max,
        });
    }
    if name.contains('\0') {
        return Err(NameError::ContainsNul);
    }
    if name.contains('/') {
        return Err(NameError::ContainsSlash);
    }
    if name == "." || name.contains("..") {
        return Err(NameError::DotDot);
    }
    Ok(())
}

/// Anything a segment name can be given as: a `str` or `String` (checked by
/// [`ShmName::new`]), or an already validated [`ShmName`] (for example one made by a
/// [`Namespace`]). `create_named`, `open_named` and `unlink_named` take any of them.
pub trait ToShmName {
    /// The validated name.
    ///
    /// # Errors
    ///
    /// As [`ShmName::new`].
    fn to_shm_name(&self) -> Result<ShmName, NameError>;
}

impl ToShmName for str {
    fn to_shm_name(&self) -> Result<ShmName, NameError> {
        ShmName::new(self)
    }
}

impl ToShmName for String {
    fn to_shm_name(&self) -> Result<ShmName, NameError> {
        ShmName::new(self)
    }
}

impl ToShmName for ShmName {
    fn to_shm_name(&self) -> Result<ShmName, NameError> {
        Ok(self.clone())
    }
}

/// A name prefix that a layer above puts in front of its users' names, so that its
/// segments can be listed and cleaned as a group (mproc's facade: `mproc.`).
///
/// The check of a user's name lives here, in the lowest crate, so that no layer can add its
/// prefix first and let an empty or malformed user name through.
///
/// # Examples
///
/// ```
/// use mproc_shm::{MAX_NAME_LEN, NameError, Namespace};
/// const NS: Namespace = Namespace::new("app.");
/// assert_eq!(NS.name("jobs").unwrap().as_str(), "app.jobs");
/// // The user's part is checked, not the prefixed name: "" is not "app.".
/// assert_eq!(NS.name(""), Err(NameError::Empty));
/// assert_eq!(NS.name("a/b"), Err(NameError::ContainsSlash));
/// assert_eq!(NS.max_len(), MAX_NAME_LEN - 4);
/// assert_eq!(NS.strip("app.jobs"), Some("jobs"));
/// assert_eq!(NS.strip("app."), None); // not a name NS.name can make
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespace {
    prefix: &'static str,
}

impl Namespace {
    /// A namespace whose names start with `prefix` (may be empty).
    ///
    /// # Panics
    ///
    /// (At compile time in a `const`.) If `prefix` contains `/`, NUL or `..`, or leaves no
    /// room for a name.
    pub const fn new(prefix: &'static str) -> Namespace {
        let b = prefix.as_bytes();
        assert!(b.len() < MAX_NAME_LEN, "prefix too long");
        let mut i = 0;
        while i < b.len() {
            assert!(b[i] != b'/' && b[i] != 0, "prefix contains '/' or NUL");
            assert!(
                !(b[i] == b'.' && i + 1 < b.len() && b[i + 1] == b'.'),
                "prefix contains \"..\""
            );
            i += 1;
        }
        Namespace { prefix }
    }

    /// The prefix.
    pub const fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The longest user name, in bytes: [`MAX_NAME_LEN`] minus the prefix.
    pub const fn max_len(&self) -> usize {
        MAX_NAME_LEN - self.prefix.len()
    }

    /// The segment name for the user's name `user`: `user` is checked by the rules of
    /// [`ShmName::new`] with [`max_len`](Namespace::max_len) bytes at most, before the
    /// prefix is added.
    ///
    /// # Errors
    ///
    /// As [`ShmName::new`], about `user` (its length and the reduced limit in
    /// [`NameError::TooLong`]); [`NameError::DotDot`] also when `user` starts with `.` and
    /// the prefix ends with one (together they would make `..`).
    pub fn name(&self, user: &str) -> Result<ShmName, NameError> {
        check(user, self.max_len())?;
        if self.prefix.ends_with('.') && user.starts_with('.') {
            return Err(NameError::DotDot);
        }
        Ok(ShmName {
            name: format!("{}{user}", self.prefix),
        })
    }

    /// The user's part of the file name `file`, if `file` is in this namespace and is a
    /// name [`name`](Namespace::name) can make (so listings never show a name that cannot
    /// be opened or unlinked).
    pub fn strip<'a>(&self, file: &'a str) -> Option<&'a str> {
        let user = file.strip_prefix(self.prefix)?;
        self.name(user).ok().map(|_| user)
    }
}

/// The state of a segment name (see the [module docs](self)): the one definition of a stale
/// name, shared by `create_named`, `open_named` and tools that inspect `/dev/shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameState {
    /// No file has the name.
    Missing,
    /// An mproc segment whose header is published READY.
    Ready,
    /// Not READY, and a live process holds its creator lock: being created right now.
    Creating,
    /// Not READY, and nobody holds its creator lock: its creator died or gave up while
    /// creating it. The next `create_named` of the name reclaims it.
    Stale,
    /// Something at the name that is not an mproc segment: a symbolic link (never
    /// followed), a directory or other non-regular file, or a file with a foreign magic.
    Foreign,
}

/// One look at a name. A stale name comes with the descriptor whose OFD lock on the creator
/// byte is held, so that [`Look::reclaim`] can remove exactly that file.
pub(crate) enum Look {
    /// Anything but stale.
    Settled(NameState),
    /// Stale; the creator lock is held through `fd` for as long as this lives.
    Stale { fd: OwnedFd, id: sys::FileId },
}

impl Look {
    /// Looks at `name` once. `exclusive`: open read-write and take the creator lock as a
    /// write lock (to reclaim; two reclaimers then never hold it at once), else read-only
    /// with a read lock (a pure probe, which works on read-only files too).
    pub(crate) fn take(name: &ShmName, exclusive: bool) -> Result<Look, SegmentError> {
        let flags = if exclusive {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        };
        let fd = match sys::open(&name.c_path(), flags | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::ENOENT) => Ok(Look::Settled(NameState::Missing)),
                    Some(libc::ELOOP) => Ok(Look::Settled(NameState::Foreign)),
                    _ => Err(SegmentError::Io {
                        op: "open",
                        source: e,
                    }),
                };
            }
        };
        let st = sys::fstat(fd.as_fd()).map_err(SegmentError::io("fstat"))?;
        if !st.is_regular {
            return Ok(Look::Settled(NameState::Foreign));
        }
        let locked = if exclusive {
            sys::ofd_try_lock(fd.as_fd(), CREATOR_LOCK)
        } else {
            sys::ofd_try_read_lock(fd.as_fd(), CREATOR_LOCK)
        }
        .map_err(SegmentError::io("fcntl(F_OFD_SETLK)"))?;
        if !locked {
            return Ok(Look::Settled(NameState::Creating));
        }
        // We hold the creator lock, so no creator is at work: what the header says now is
        // final unless someone else creates a new file under the name.
        let mut head = [0u8; 16];
        let n = sys::pread(fd.as_fd(), &mut head, 0).map_err(SegmentError::io("pread"))?;
        let magic = u64::from_ne_bytes(head[..8].try_into().expect("8 bytes"));
        let state = u32::from_ne_bytes(head[12..16].try_into().expect("4 bytes"));
        if n >= 8 && magic != 0 && magic != MAGIC {
            return Ok(Look::Settled(NameState::Foreign));
        }
        if n == head.len() && magic == MAGIC && state == READY {
            return Ok(Look::Settled(NameState::Ready));
        }
        Ok(Look::Stale { fd, id: st.id })
    }

    /// The state this look found.
    pub(crate) fn state(&self) -> NameState {
        match self {
            Look::Settled(s) => *s,
            Look::Stale { .. } => NameState::Stale,
        }
    }

    /// Removes a stale name, if the name still refers to the file this look found (and
    /// whose creator lock it holds). `Ok(true)` if it removed it.
    pub(crate) fn reclaim(self, name: &ShmName) -> Result<bool, SegmentError> {
        match self {
            Look::Settled(_) => Ok(false),
            Look::Stale { fd, id } => {
                let removed = unlink_if(&name.c_path(), id)?;
                drop(fd); // releases the creator lock, after the unlink
                Ok(removed)
            }
        }
    }
}

/// Unlinks `path` if it still names the file `id`. The caller holds that file's creator
/// lock, so no other reclaimer or creator of *that* file acts meanwhile; the one remaining
/// race is a plain `unlink` of the name plus a new `create_named` between the `lstat` and
/// the `unlink` below (two adjacent system calls), which would remove the newcomer's name.
pub(crate) fn unlink_if(path: &CStr, id: sys::FileId) -> Result<bool, SegmentError> {
    match sys::lstat(path) {
        Ok(now) if now.id == id => {}
        Ok(_) => return Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
        Err(e) => {
            return Err(SegmentError::Io {
                op: "lstat",
                source: e,
            });
        }
    }
    match sys::unlink(path) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(SegmentError::Io {
            op: "unlink",
            source: e,
        }),
    }
}

/// The state of the name `name` now (see the [module docs](self) for what each state
/// means). Opens the file read-only and takes its creator lock as a *read* lock for the
/// moment of the look, so it works on segments this process may only read. Changes
/// nothing, except that a creator caught in the two-syscall window between making its file
/// and locking it starts over.
///
/// # Errors
///
/// [`SegmentError::InvalidName`]; [`SegmentError::Io`] if the file cannot be opened (for
/// example `EACCES`) or examined.
///
/// # Examples
///
/// ```
/// use mproc_shm::{SegmentOptions, name::{NameState, probe}};
/// let name = format!("doc-probe-{}", std::process::id());
/// assert_eq!(probe(&name)?, NameState::Missing);
/// let seg = SegmentOptions::new().create_named(&name)?;
/// assert_eq!(probe(&name)?, NameState::Ready);
/// seg.unlink()?;
/// # Ok::<(), mproc_shm::SegmentError>(())
/// ```
pub fn probe<N: ToShmName + ?Sized>(name: &N) -> Result<NameState, SegmentError> {
    let name = name.to_shm_name()?;
    Ok(Look::take(&name, false)?.state())
}

/// Removes `name` if it is [`NameState::Stale`], and only the stale file that was looked
/// at: its creator lock is held (as a write lock) from the look to the `unlink`, and the
/// name is unlinked only if it still refers to that file. Returns the state found;
/// `Stale` means this call removed it (or found it already replaced, and left the new
/// file alone).
///
/// # Errors
///
/// As [`probe`], plus [`SegmentError::Io`] from `unlink`.
pub fn reclaim<N: ToShmName + ?Sized>(name: &N) -> Result<NameState, SegmentError> {
    let name = name.to_shm_name()?;
    let look = Look::take(&name, true)?;
    let state = look.state();
    look.reclaim(&name)?;
    Ok(state)
}

impl fmt::Debug for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_own_error() {
        assert_eq!(ShmName::new(""), Err(NameError::Empty));
        assert_eq!(ShmName::new("a/b"), Err(NameError::ContainsSlash));
        assert_eq!(ShmName::new("/a"), Err(NameError::ContainsSlash));
        assert_eq!(ShmName::new(".."), Err(NameError::DotDot));
        assert_eq!(ShmName::new("x..y"), Err(NameError::DotDot));
        assert_eq!(ShmName::new("."), Err(NameError::DotDot));
        assert_eq!(ShmName::new("a\0b"), Err(NameError::ContainsNul));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            ShmName::new(&long),
            Err(NameError::TooLong {
                len: MAX_NAME_LEN + 1,
                max: MAX_NAME_LEN
            })
        );
        assert!(ShmName::new(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert_eq!(
            ShmName::new("ok.name-1").unwrap().path(),
            "/dev/shm/ok.name-1"
        );
    }

    #[test]
    fn namespace_checks_the_users_part_before_the_prefix() {
        const NS: Namespace = Namespace::new("mproc.");
        assert_eq!(NS.max_len(), MAX_NAME_LEN - 6);
        // What the bare rules would accept once prefixed ("mproc.", "mproc.a/b" is still
        // refused but "mproc." is a valid file name): the user's part is what is checked.
        assert_eq!(NS.name(""), Err(NameError::Empty));
        assert_eq!(NS.name("a/b"), Err(NameError::ContainsSlash));
        assert_eq!(NS.name(".."), Err(NameError::DotDot));
        assert_eq!(NS.name("."), Err(NameError::DotDot));
        assert_eq!(NS.name(".x"), Err(NameError::DotDot)); // "mproc..x"
        assert_eq!(NS.name("a\0b"), Err(NameError::ContainsNul));
        let long = "x".repeat(NS.max_len() + 1);
        assert_eq!(
            NS.name(&long),
            Err(NameError::TooLong {
                len: NS.max_len() + 1,
                max: NS.max_len()
            })
        );
        let longest = NS.name(&"x".repeat(NS.max_len())).unwrap();
        assert_eq!(longest.as_str().len(), MAX_NAME_LEN);
        assert_eq!(NS.name("jobs").unwrap().as_str(), "mproc.jobs");
        assert_eq!(NS.strip("mproc.jobs"), Some("jobs"));
        assert_eq!(NS.strip("mproc."), None);
        assert_eq!(NS.strip("other.jobs"), None);
        assert_eq!(Namespace::new("").name("a").unwrap().as_str(), "a");
    }

    /// The inode check: a stale file whose name is replaced by a new file between the look
    /// and the unlink is not removed — the new file stays.
    #[test]
    fn reclaim_never_removes_a_name_replaced_after_the_look() {
        let name =
            ShmName::new(&format!("mproc-shm-unit-{}-replaced", std::process::id())).unwrap();
        let path = name.path();
        std::fs::File::create(&path).unwrap(); // empty, no creator lock: stale
        let look = Look::take(&name, true).unwrap();
        assert_eq!(look.state(), NameState::Stale);
        // Someone unlinks it and a new creator makes a file under the name meanwhile.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"new").unwrap();
        assert!(!look.reclaim(&name).unwrap(), "not the file we looked at");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // Without the replacement, the same steps remove it.
        std::fs::write(&path, b"").unwrap();
        let look = Look::take(&name, true).unwrap();
        assert!(look.reclaim(&name).unwrap());
        assert!(std::fs::metadata(&path).is_err());
    }

    /// Two reclaimers never hold a stale file's creator lock at once (it is taken as a write
    /// lock), so the second cannot unlink a name the first freed and a creator re-made.
    #[test]
    fn reclaimers_exclude_each_other() {
        let name = ShmName::new(&format!("mproc-shm-unit-{}-excl", std::process::id())).unwrap();
        std::fs::File::create(name.path()).unwrap();
        let first = Look::take(&name, true).unwrap();
        assert_eq!(first.state(), NameState::Stale);
        let second = Look::take(&name, true).unwrap();
        assert_eq!(
            second.state(),
            NameState::Creating,
            "lock held by the first"
        );
        assert!(first.reclaim(&name).unwrap());
        assert!(!second.reclaim(&name).unwrap());
    }
}
