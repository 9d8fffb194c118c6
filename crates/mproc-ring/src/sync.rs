//! The one place that names atomics, cells and the spin hint, switched by `--cfg mproc_loom`.
//!
//! Library code imports only from here, so the same algorithms run on std atomics (heap and
//! shared memory) and on loom's model-checked ones. `clippy.toml` bans std atomics elsewhere.
//!
//! Payload bytes are plain memory (a heap buffer or a shared segment), never loom values. So
//! that loom still catches a data race on them, every ring keeps one [`DataGuard`] per data
//! unit (a slot, or 8 bytes of a record ring): under loom it is a `loom::cell::UnsafeCell<()>`
//! whose read/write tokens are held while the bytes are touched; in production it is a
//! zero-sized type and the tokens are `()`.
#![allow(clippy::disallowed_types)]

// The atomics are mproc-core's shim (one place names them for every loom-checked crate).
pub(crate) use mproc_core::sync::{AtomicU32, AtomicU64, Ordering};

/// The spin-loop hint; under loom it yields so the model can make progress.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(mproc_loom))]
    core::hint::spin_loop();
    #[cfg(mproc_loom)]
    loom::hint::spin_loop();
}

/// A race detector for one unit of payload bytes (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct DataGuard {
    #[cfg(mproc_loom)]
    cell: loom::cell::UnsafeCell<()>,
}

// SAFETY: under loom the cell is only a race detector: every access goes through loom's
// tracked `get`/`get_mut`, which reports concurrent conflicting access instead of racing.
#[cfg(mproc_loom)]
#[allow(unsafe_code)]
unsafe impl Sync for DataGuard {}

/// Held while payload bytes are read (loom: a tracked shared access).
#[cfg(mproc_loom)]
pub(crate) type ReadToken = loom::cell::ConstPtr<()>;
/// Held while payload bytes are read (production: nothing).
#[cfg(not(mproc_loom))]
pub(crate) type ReadToken = NoToken;
/// Held while payload bytes are written (loom: a tracked exclusive access).
#[cfg(mproc_loom)]
pub(crate) type WriteToken = loom::cell::MutPtr<()>;
/// Held while payload bytes are written (production: nothing).
#[cfg(not(mproc_loom))]
pub(crate) type WriteToken = NoToken;

/// The production token: zero-sized, and not `Copy`, so dropping it reads as intended.
#[cfg(not(mproc_loom))]
#[derive(Debug)]
pub(crate) struct NoToken;

impl DataGuard {
    /// Starts a tracked read of this unit.
    #[inline]
    pub(crate) fn read(&self) -> ReadToken {
        #[cfg(mproc_loom)]
        return self.cell.get();
        #[cfg(not(mproc_loom))]
        NoToken
    }

    /// Starts a tracked write of this unit.
    #[inline]
    pub(crate) fn write(&self) -> WriteToken {
        #[cfg(mproc_loom)]
        return self.cell.get_mut();
        #[cfg(not(mproc_loom))]
        NoToken
    }
}

/// Ends a tracked access (drops a token; a no-op in production).
#[inline]
pub(crate) fn end<T>(_token: T) {}

/// Tokens for a run of units, held by chunk and reservation guards.
#[derive(Debug, Default)]
#[allow(dead_code)] // held for their `Drop`, which ends the tracked access
pub(crate) struct Tokens {
    #[cfg(mproc_loom)]
    reads: Vec<ReadToken>,
    #[cfg(mproc_loom)]
    writes: Vec<WriteToken>,
}

impl Tokens {
    /// Tracks reads of `guards` (loom only; free in production).
    #[inline]
    #[cfg_attr(not(mproc_loom), allow(unused_variables))]
    pub(crate) fn read<'a>(guards: impl Iterator<Item = &'a DataGuard>) -> Tokens {
        #[cfg(mproc_loom)]
        return Tokens {
            reads: guards.map(DataGuard::read).collect(),
            writes: Vec::new(),
        };
        #[cfg(not(mproc_loom))]
        Tokens {}
    }

    /// Tracks writes of `guards` (loom only; free in production).
    #[inline]
    #[cfg_attr(not(mproc_loom), allow(unused_variables))]
    pub(crate) fn write<'a>(guards: impl Iterator<Item = &'a DataGuard>) -> Tokens {
        #[cfg(mproc_loom)]
        return Tokens {
            reads: Vec::new(),
            writes: guards.map(DataGuard::write).collect(),
        };
        #[cfg(not(mproc_loom))]
        Tokens {}
    }
}
