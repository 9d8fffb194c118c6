//! An anonymous `MAP_SHARED` mapping: memory a forked child shares with its parent.
#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;

use crate::sync::AtomicU64;

/// `mmap(MAP_SHARED | MAP_ANONYMOUS)` of `len` zeroed bytes, page aligned; unmapped on drop
/// (in each process separately: a fork child's copy of the handle unmaps only its own view).
#[derive(Debug)]
pub struct SharedMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMap {
    /// Maps `len` (> 0) zeroed bytes.
    ///
    /// # Errors
    /// `mmap`'s errno.
    pub fn new(len: usize) -> io::Result<SharedMap> {
        // SAFETY: a fresh anonymous mapping; no existing memory is touched. Checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            ptr: NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len: len.max(1),
        })
    }

    /// The first byte (page aligned).
    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Mapped length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (the mapping is at least one byte); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The mapping as `u64` control words, for a forked child or an `mproc::Process` closure
    /// to share with this process.
    pub(crate) fn words(&self) -> Words {
        Words {
            base: self.ptr.as_ptr(),
            count: self.len / 8,
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

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with exactly this pointer and length; every user of the
        // memory borrows the `SharedMap` (or owns it) so none outlives this. An error cannot
        // be handled in drop and would only leak address space.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
