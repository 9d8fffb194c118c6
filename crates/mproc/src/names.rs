//! Named objects: every mproc object created under a name lives at `/dev/shm/mproc.<name>`,
//! so a user (or a test, or an operator) can list what mproc left behind and clean it up.
//!
//! Python's `multiprocessing.shared_memory` uses the name as given (with a `psm_` prefix for
//! generated ones); mproc always adds [`PREFIX`], so `Queue::open_named("jobs")` in one
//! program and `ls /dev/shm/mproc.jobs` agree, and nothing outside mproc is ever touched by
//! [`unlink`]. A name is still checked by `mproc-shm` (no `/`, no `..`, a length limit) with
//! the prefix included.
//!
//! ```
//! let name = format!("doc-names-{}", std::process::id());
//! let q = mproc::Queue::<u32>::builder().create_named(&name)?;
//! assert!(mproc::names::list()?.contains(&name));
//! mproc::names::unlink(&name)?;
//! assert!(!mproc::names::list()?.contains(&name));
//! drop(q); // open handles keep working after unlink
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;

use mproc_shm::Segment;

use crate::object::OpenError;

/// What mproc puts in front of every name in `/dev/shm` (as `mproc.<name>`, see [`crate::names`]).
pub const PREFIX: &str = "mproc.";

/// Where POSIX shared memory names live on Linux.
const SHM_DIR: &str = "/dev/shm";

/// The `/dev/shm` name of the mproc object called `name`.
pub(crate) fn shm_name(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The names (without [`PREFIX`]) of every named mproc object that currently exists in
/// `/dev/shm`, sorted. Objects of every kind are listed; their kinds are checked only when
/// they are opened.
///
/// # Errors
///
/// The error of reading `/dev/shm`.
pub fn list() -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(SHM_DIR)?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|file| file.strip_prefix(PREFIX).map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// Removes the name of the mproc object called `name`, whatever its kind (Python:
/// `SharedMemory.unlink()`); processes that have it open keep using it.
///
/// # Errors
///
/// [`OpenError::Segment`] if there is no such name or it is invalid.
pub fn unlink(name: &str) -> Result<(), OpenError> {
    Segment::unlink_named(&shm_name(name)).map_err(OpenError::Segment)
}
