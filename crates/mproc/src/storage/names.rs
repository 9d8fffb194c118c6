//! Named objects: every mproc object created under a name lives at `/dev/shm/mproc.<name>`,
//! so a user (or a test, or an operator) can list what mproc left behind and clean it up.
//!
//! Python's `multiprocessing.shared_memory` uses the name as given (with a `psm_` prefix for
//! generated ones); mproc always adds [`PREFIX`], so `Queue::open_named("jobs")` in one
//! program and `ls /dev/shm/mproc.jobs` agree, and nothing outside mproc is ever touched by
//! [`unlink`].
//!
//! # What a name may be
//!
//! Your name — the part after `mproc.` — is checked *before* the prefix is added and before
//! anything touches `/dev/shm`, by `mproc-shm`'s rules ([`mproc_shm::Namespace`]): not
//! empty, at most [`MAX_LEN`] bytes (the whole file name must fit `NAME_MAX`), no `/`, no
//! NUL byte, no `..` anywhere and not `.`, and not starting with `.` (after `mproc.` that
//! would make `..`). A refused name is [`CreateError::InvalidName`] (or
//! [`OpenError::InvalidName`] when opening), whose [`NameError`]
//! describes your name, not the prefixed one. Every
//! entry point that takes a name — `create_named`, `open_named` and `unlink_named` of every
//! object kind, and [`unlink`] — goes through that one check. Objects that use more than
//! one name (a `JoinableQueue`'s task counter `<name>.tasks`, a `Value`'s lock
//! `<name>.lock`) check each of them.
//!
//! # Stale names
//!
//! A creator that dies while creating an object leaves a *stale* name: the file exists but
//! was never published. mproc-shm recognises it exactly (a kernel-released creator lock;
//! see [`mproc_shm::name`]): `open_named` reports
//! [`OpenError::Segment`]`(`[`SegmentError::Stale`]`)` at once instead of waiting, and the next `create_named` of the
//! same name removes it and creates the object. A name whose creator is still alive and
//! working is never removed: `create_named` waits (up to 2 s) for it to finish, then reports
//! that it already exists. [`state`] tells which state a name is in.
//!
//! ```
//! let name = format!("doc-names-{}", std::process::id());
//! let q = mproc::Queue::<u32>::builder().create_named(&name)?;
//! assert!(mproc::storage::names::list()?.contains(&name));
//! mproc::storage::names::unlink(&name)?;
//! assert!(!mproc::storage::names::list()?.contains(&name));
//! drop(q); // open handles keep working after unlink
//! // The user's own name is checked: "" is refused, not turned into "/dev/shm/mproc.".
//! assert!(mproc::Queue::<u32>::builder().create_named("").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;

#[allow(unused_imports)] // for doc links
use mproc_shm::SegmentError;
use mproc_shm::{NameError, NameState, Namespace, Segment, ShmName};

#[allow(unused_imports)] // for doc links
use crate::storage::object::CreateError;
use crate::storage::object::OpenError;

/// What mproc puts in front of every name in `/dev/shm` (as `mproc.<name>`, see [`crate::storage::names`]).
pub const PREFIX: &str = NAMESPACE.prefix();

/// The namespace of mproc's named objects; the only way the facade turns a user's name
/// into a segment name.
const NAMESPACE: Namespace = Namespace::new("mproc.");

/// The longest name an object can have, in bytes (the file name `mproc.<name>` must fit
/// `NAME_MAX`).
pub const MAX_LEN: usize = NAMESPACE.max_len();

/// Where POSIX shared memory names live on Linux.
const SHM_DIR: &str = "/dev/shm";

/// The segment name of the mproc object called `name`, after checking `name` itself (see
/// the [module docs](self)). Every facade path from a user's name to `/dev/shm` goes
/// through here.
pub(crate) fn shm_name(name: &str) -> Result<ShmName, NameError> {
    NAMESPACE.name(name)
}

/// The state of the name `name` (see `mproc_shm`'s [`NameState`]): missing, ready, being
/// created by a live process, or stale (its creator died while creating it; the next
/// `create_named` reclaims it).
///
/// # Errors
///
/// [`OpenError::InvalidName`] for an invalid name; [`OpenError::Io`] or
/// [`OpenError::Segment`] if the file cannot be examined.
pub fn state(name: &str) -> Result<NameState, OpenError> {
    mproc_shm::name::probe(&shm_name(name)?).map_err(|e| OpenError::from_segment(e, name))
}

/// The names (without [`PREFIX`]) of every named mproc object that currently exists in
/// `/dev/shm`, sorted. Objects of every kind are listed (stale ones too: see [`state`]);
/// their kinds are checked only when they are opened. Files under the prefix that are not
/// valid names (such as a bare `mproc.` left by an older mproc) are not listed.
///
/// # Errors
///
/// The error of reading `/dev/shm`.
pub fn list() -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(SHM_DIR)?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|file| NAMESPACE.strip(&file).map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// Removes the name of the mproc object called `name`, whatever its kind (Python:
/// `SharedMemory.unlink()`); processes that have it open keep using it.
///
/// # Errors
///
/// [`OpenError::NotFound`] if there is no such name, [`OpenError::InvalidName`] if it is
/// invalid.
pub fn unlink(name: &str) -> Result<(), OpenError> {
    Segment::unlink_named(&shm_name(name)?).map_err(|e| OpenError::from_segment(e, name))
}
