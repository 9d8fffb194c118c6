//! An anonymous `MAP_SHARED` mapping: memory a forked child shares with its parent.
#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;

use mproc_testkit::SharedMem;

use crate::sync::AtomicU64;

/// `mmap(MAP_SHARED | MAP_ANONYMOUS)` of `len` zeroed bytes, page aligned; unmapped on drop
/// (in each process separately: a fork child's copy of the handle unmaps only its own view).
/// The workspace test kit's mapping, with the accessors and word view the benches use.
#[derive(Debug)]
pub struct SharedMap(SharedMem);

impl SharedMap {
    /// Maps `len` (> 0) zeroed bytes.
    ///
    /// # Errors
    /// `mmap`'s errno.
    pub fn new(len: usize) -> io::Result<SharedMap> {
        SharedMem::try_new(len).map(SharedMap)
    }

    /// The first byte (page aligned).
    pub fn ptr(&self) -> NonNull<u8> {
        self.0.ptr
    }

    /// Mapped length in bytes.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Whether `len` was 0 (a zero-length request still maps one byte).
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// The mapping as `u64` control words, for a forked child or an `mproc::Process` closure
    /// to share with this process.
    pub(crate) fn words(&self) -> Words {
        Words {
            base: self.0.ptr.as_ptr(),
            count: self.0.len / 8,
        }
    }
}

/// The `u64` words of a [`SharedMap`], as a pointer that can move into a forked child or an
/// `mproc::Process` closure: the child inherits the `MAP_SHARED` mapping at the same address.
/// The `SharedMap` must outlive every use (the parent keeps it until its children are
/// reaped; a child inherits it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words {
    base: *mut u8,
    count: usize,
}

// SAFETY: only dereferenced (atomically) in this process or a forked child, where the
// mapping it points into is inherited at the same address.
unsafe impl Send for Words {}

impl Words {
    /// Word `i`.
    pub(crate) fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.count, "word {i} outside the mapping");
        // SAFETY: in bounds (checked above), 8-aligned (the mapping is page aligned), in a
        // mapping that outlives every use (see the type's doc); only accessed atomically.
        unsafe { &*self.base.cast::<AtomicU64>().add(i) }
    }
}
