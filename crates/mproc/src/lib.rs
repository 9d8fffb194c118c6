//! `mproc`: Python's `multiprocessing` for Rust on Linux.
//!
//! # Map
//!
//! | module | Python | what |
//! |---|---|---|
//! | [`process`] | `Process`, `current_process` | [`Process`] (start, join, exitcode, terminate, kill, daemon), [`StartMethod`] (fork / spawn), [`entry!`] |
//! | [`handle`] | pickling handles into a child | how handles reach children: [`Passable`], [`Args`], fork epochs ([`handle::Owner`]) |
//! | [`queue`] | `Queue` | [`Queue`]: the MPMC ring, any message size (a coalescing arena for large ones), crash-counted losses |
//! | [`joinable_queue`] | `JoinableQueue` | [`JoinableQueue`]: `task_done` / `join` that a dead worker cannot wedge |
//! | [`simple_queue`] | `SimpleQueue` | [`SimpleQueue`]: `put` / `get` / `empty` only |
//! | [`message`] | picklable | [`Message`]: the rkyv bound every queued type meets; [`rkyv`] re-exported |
//! | [`pipe`](mod@pipe) | `Pipe`, `Connection` | [`pipe()`], [`pipe_oneway()`] → typed [`Connection<S, R>`](Connection) / [`PipeReader<T>`](PipeReader) + [`PipeWriter<T>`](PipeWriter), exact EOF |
//! | [`sync`] | `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` | [`Lock`] (a robust lock whose dead holder is reported, not a hang) and the rest of the family, with its one [`sync::AcquireError`] |
//! | [`shared`] | `Value`, `Array` | [`Value`], [`Array`] (with a lock), [`RawValue`], [`RawArray`], [`AtomicValue`] |
//! | [`storage`] | — | where state lives: [`storage::cells`] (many small objects share a few segments), [`storage::names`] (what a name may be; listing and removing named objects) |
//!
//! # Example
//!
//! ```
//! use mproc::Process;
//! use std::time::Duration;
//!
//! // Fork (the default start method): the closure runs in the child.
//! let mut p = Process::new(|(a, b): (u32, u32)| assert_eq!(a + b, 5), (2u32, 3u32));
//! p.start()?;
//! let status = p.join_timeout(Duration::from_secs(10))?.expect("child finished");
//! assert!(status.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Spawn (re-exec the binary; safe from multithreaded parents) needs the target registered:
//!
//! ```
//! use mproc::{Process, StartMethod};
//! use std::time::Duration;
//!
//! fn worker((label,): (String,)) {
//!     std::process::exit(label.len() as i32);
//! }
//! mproc::entry!(worker);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut p = Process::new(worker, ("four".to_string(),)).start_method(StartMethod::Spawn);
//! p.start()?;
//! assert_eq!(p.join_timeout(Duration::from_secs(10))?.map(|s| s.exitcode()), Some(4));
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]

// The facade runs over real segments, futexes and processes, none of which loom can model;
// its lower crates carry the loom models (DESIGN.md, "Loom, concretely").
#[cfg(mproc_loom)]
compile_error!(
    "the mproc facade has no loom mode: run the loom models of mproc-ring and mproc-futex \
     (`cargo xtask test` does)"
);

pub mod handle;
pub mod joinable_queue;
pub mod message;
pub mod pipe;
pub mod process;
pub mod queue;
pub mod shared;
pub mod simple_queue;
pub mod storage;
pub mod sync;
pub(crate) mod wait;

/// The rkyv that [`Message`] is defined over, so a user's derives name the same version:
/// `#[derive(mproc::rkyv::Archive, mproc::rkyv::Serialize, mproc::rkyv::Deserialize)]` with
/// `#[rkyv(crate = mproc::rkyv)]`.
pub use rkyv;

pub use handle::{Args, PassError, Passable, Plain};
pub use joinable_queue::{JoinError, JoinableQueue, Joined, TaskDoneError};
pub use message::{Message, MessageError};
/// Error types of the layers below that appear in mproc's own errors (as sources).
pub use mproc_ring::{AttachError as RingAttachError, LayoutError as RingLayoutError};
pub use mproc_shm::{ArenaError, NameError, RegisterError, SegmentError};
pub use pipe::{Connection, PipeReader, PipeWriter, pipe, pipe_oneway};
pub use process::{
    ActiveChild, ExitStatus, Process, ProcessError, StartError, StartMethod, StartStage,
    StillRunning, active_children, current_process, get_start_method, parent_process,
    reap_dropped_children, set_start_method,
};
pub use queue::Queue;
pub use shared::{Array, AtomicValue, RawArray, RawValue, Shareable, Value};
pub use simple_queue::SimpleQueue;
pub use storage::{CreateError, OpenError};
pub use sync::{
    AcquireError, Barrier, BarrierError, BoundedSemaphore, Condition, Event, Lock, LockGuard,
    LockOptions, NotOwner, RLock, ReleaseError, Semaphore, SemaphoreError,
};

/// Test-only crash points (feature `test-hooks`, for this crate's own tests).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod fault;

/// Implementation details used by [`entry!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::process::{ENTRIES, EntryPoint, SpawnedChild, run_entry, type_id_of_val};
    pub use linkme;
}

/// The READMEs' Rust examples run as doc tests, so the front pages cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
