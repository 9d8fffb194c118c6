//! The memory abstraction for algorithms over 64-bit shared words (DESIGN.md, "Loom,
//! concretely"): the arena today, any allocator that replaces it tomorrow.
//!
//! An algorithm written against [`Words`] addresses its state only as 8-byte words at byte
//! offsets `rel` from its start, and touches them only through [`Word`]'s atomic operations.
//! Two implementations:
//!
//! * [`InPlace`] (every build): the words are overlaid on caller-provided bytes — a segment
//!   or a heap buffer — as std atomics, layout-identical to the `u64` they cover. This is
//!   the only one production code uses; it is generic code monomorphised on one type, so
//!   nothing is added to the hot path.
//! * `ModelWords` (`--cfg mproc_loom` only): the same offsets backed by a heap array of
//!   loom `AtomicU64`s, each built with `new()`, because loom's atomics have their own
//!   representation and must never be cast from bytes. There are no user bytes behind it:
//!   an algorithm run over it hands out offsets, never pointers.
//!
//! [`Words::note`] lets an algorithm name the branch it took (a CAS that failed and is
//! retried, a helped bump pointer). It is a no-op in [`InPlace`]; `ModelWords` records the
//! events per loom thread, so a loom model can count which outcome arms it reached.
#![allow(unsafe_code)]

use core::ptr::NonNull;

use crate::sync::{AtomicU64, Ordering};

/// One 64-bit atomic word of an algorithm's state: the operations the algorithms use.
pub(crate) trait Word {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, val: u64, order: Ordering);
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    fn compare_exchange_weak(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
}

/// `impl_word!(Type, *...)`: implements [`Word`] for `Type` by calling the inherent methods
/// of what the given derefs of `self` reach (the overlay wrapper derefs once more to std's).
macro_rules! impl_word {
    ($ty:ty, $($deref:tt)+) => {
        impl Word for $ty {
            #[inline(always)]
            fn load(&self, order: Ordering) -> u64 {
                ($($deref)+self).load(order)
            }
            #[inline(always)]
            fn store(&self, val: u64, order: Ordering) {
                ($($deref)+self).store(val, order)
            }
            #[inline(always)]
            fn compare_exchange(
                &self,
                current: u64,
                new: u64,
                success: Ordering,
                failure: Ordering,
            ) -> Result<u64, u64> {
                ($($deref)+self).compare_exchange(current, new, success, failure)
            }
            #[inline(always)]
            fn compare_exchange_weak(
                &self,
                current: u64,
                new: u64,
                success: Ordering,
                failure: Ordering,
            ) -> Result<u64, u64> {
                ($($deref)+self).compare_exchange_weak(current, new, success, failure)
            }
        }
    };
}

impl_word!(AtomicU64, **);
#[cfg(mproc_loom)]
impl_word!(crate::sync::ModelAtomicU64, *);

/// Where an algorithm's words live: bytes addressed by offset, in 8-byte words.
pub(crate) trait Words {
    type Word: Word;

    /// The word at byte offset `rel`.
    ///
    /// # Panics
    ///
    /// If `rel` is not 8-aligned or the word does not fit in `len`: a backstop, every caller
    /// validates offsets (read from shared memory or not) first.
    fn word(&self, rel: u64) -> &Self::Word;

    /// The address that offset 0 stands for, for alignment arithmetic. Model memory has no
    /// address and answers 0 (so it counts as aligned to everything).
    fn addr(&self) -> u64;

    /// Records that the algorithm took the branch `event` at offset `at` (a no-op except in
    /// model memory; see the module docs).
    #[inline(always)]
    fn note(&self, event: &'static str, at: u64) {
        let _ = (event, at);
    }

    /// Called after each journaled store of the arena: `true` if the caller is to act as if
    /// killed right there (model memory's injected death). In place, with the `test-hooks`
    /// feature, it is where a test's armed SIGKILL strikes; otherwise it is `false`.
    #[inline(always)]
    fn die_here(&self) -> bool {
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::arena_step();
        false
    }
}

/// Words overlaid on caller-provided bytes.
#[derive(Debug)]
pub(crate) struct InPlace {
    mem: NonNull<u8>,
    len: u64,
}

// SAFETY: `InPlace` is a pointer to memory that `new`'s caller keeps valid for as long as the
// value is used, and it reaches that memory only through atomics (or hands out raw pointers,
// whose use is the receiver's responsibility), so any thread may use it.
unsafe impl Send for InPlace {}
// SAFETY: as for `Send`.
unsafe impl Sync for InPlace {}

impl InPlace {
    /// # Safety
    ///
    /// `mem..mem + len` must be 8-byte aligned, valid for reads and writes for as long as the
    /// value is used, and accessed by others only atomically (in the words this value hands
    /// out) or through pointers the algorithm hands out.
    pub(crate) unsafe fn new(mem: NonNull<u8>, len: u64) -> InPlace {
        debug_assert!((mem.as_ptr() as usize).is_multiple_of(8));
        InPlace {
            mem,
            len: len - len % 8,
        }
    }

    /// The first byte.
    #[inline]
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.mem
    }
}

impl Words for InPlace {
    type Word = AtomicU64;

    #[inline(always)]
    fn word(&self, rel: u64) -> &AtomicU64 {
        // Backstop (see the trait): panicking is better than touching memory outside.
        assert!(rel.is_multiple_of(8) && rel.checked_add(8).is_some_and(|e| e <= self.len));
        // SAFETY: `rel + 8 <= len` and 8-aligned (asserted) from an 8-aligned start, the
        // range is valid while `self` lives (`new`'s contract), and the word is accessed only
        // atomically; `AtomicU64` is layout-identical to `u64` and valid for any bytes.
        unsafe { self.mem.add(rel as usize).cast::<AtomicU64>().as_ref() }
    }

    #[inline(always)]
    fn addr(&self) -> u64 {
        self.mem.as_ptr() as u64
    }
}

/// Model memory for loom: `len` bytes' worth of loom words, all zero.
#[cfg(mproc_loom)]
pub(crate) struct ModelWords {
    words: Box<[crate::sync::ModelAtomicU64]>,
}

#[cfg(mproc_loom)]
impl core::fmt::Debug for ModelWords {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModelWords")
            .field("words", &self.words.len())
            .finish()
    }
}

#[cfg(mproc_loom)]
loom::thread_local! {
    /// Events noted by the current loom thread (see [`take_events`]).
    static EVENTS: core::cell::RefCell<Vec<(&'static str, u64)>> =
        core::cell::RefCell::new(Vec::new());
}

#[cfg(mproc_loom)]
impl ModelWords {
    /// Zeroed model memory of `len` bytes (rounded down to words). Call inside `loom::model`.
    pub(crate) fn new(len: u64) -> ModelWords {
        let n = usize::try_from(len / 8).expect("model memory is small");
        ModelWords {
            words: (0..n)
                .map(|_| crate::sync::ModelAtomicU64::new(0))
                .collect(),
        }
    }
}

/// The events the current loom thread noted through [`Words::note`] since the last call,
/// oldest first, as `(event, offset)`.
#[cfg(mproc_loom)]
pub(crate) fn take_events() -> Vec<(&'static str, u64)> {
    EVENTS.with(|e| core::mem::take(&mut *e.borrow_mut()))
}

#[cfg(mproc_loom)]
impl Words for ModelWords {
    type Word = crate::sync::ModelAtomicU64;

    fn word(&self, rel: u64) -> &crate::sync::ModelAtomicU64 {
        assert!(rel.is_multiple_of(8), "misaligned word offset {rel}");
        usize::try_from(rel / 8)
            .ok()
            .and_then(|i| self.words.get(i))
            .unwrap_or_else(|| panic!("word offset {rel} outside the model memory"))
    }

    fn addr(&self) -> u64 {
        0
    }

    fn note(&self, event: &'static str, at: u64) {
        EVENTS.with(|e| e.borrow_mut().push((event, at)));
    }

    fn die_here(&self) -> bool {
        DEATH.with(|d| match d.get() {
            Some(0) => {
                d.set(None);
                true
            }
            Some(n) => {
                d.set(Some(n - 1));
                false
            }
            None => false,
        })
    }
}

#[cfg(mproc_loom)]
loom::thread_local! {
    /// Journaled stores the current loom thread makes before its injected death (see
    /// [`die_after`]).
    static DEATH: core::cell::Cell<Option<u32>> = core::cell::Cell::new(None);
}

/// Arms the current loom thread's death: its arena call acts as killed right after its
/// `stores + 1`-th journaled store (see [`Words::die_here`]).
#[cfg(mproc_loom)]
pub(crate) fn die_after(stores: u32) {
    DEATH.with(|d| d.set(Some(stores)));
}
