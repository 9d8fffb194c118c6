//! Handle passing: how objects reach a child process, and why inherited copies are inert.
//!
//! DESIGN.md, "the hard parts" §4: the handles a child holds are **exactly** the ones passed in
//! its arguments (Python's `Process(target, args)`), with both start methods. That is what lets
//! a queue or pipe count its holders exactly, and so report EOF / `Disconnected` exactly.
//!
//! * **Spawn** (re-exec): the parent [exports](Passable::export) each argument into an
//!   [`Exporter`]: plain rkyv values plus the descriptors that must survive `exec`. Only those
//!   descriptors are made inheritable, and only in the child (every other descriptor of the
//!   parent is close-on-exec there). The child [imports](Passable::import) them from an
//!   [`Importer`], validating every value (bytecheck) before use.
//! * **Fork**: the child has a bitwise copy of the parent's whole memory, so every handle the
//!   parent had exists in the child too. The library bumps this process's *epoch* in the
//!   child (a `pthread_atfork` child hook, and again explicitly on mproc's own fork path);
//!   every handle records, in an [`Owner`], the epoch in which it was created or adopted. The
//!   child then calls [`Passable::adopt`] on the arguments only, which re-stamps them and
//!   registers the child as a holder. Every *other* inherited handle still carries an old
//!   epoch: it is **disowned**, and its `Drop` must change nothing in shared state (check
//!   [`Owner::is_current`] first).
//! * **Start hand-shake**: the parent keeps its own copies of the arguments until the child
//!   reports that it has adopted/imported them (or died, or the start deadline passed), and
//!   only then drops them. So a queue's sender count never touches zero in between.
//!
//! Why epochs are enough: memory is only ever inherited from an ancestor, and each fork makes
//! the child's epoch strictly larger than its parent's, so a handle stamped with the current
//! epoch was created or adopted by this very process. (A raw `clone(2)` that skips glibc's
//! fork handlers is not supported.)
//!
//! Plain data (anything rkyv can serialise and validate, see [`Plain`]) is [`Passable`]
//! through a blanket impl; arguments are tuples of passables ([`Args`], up to six).

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Once;

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use mproc_shm::RegisterError;

use crate::process::sync::{AtomicU64, Ordering};
use crate::process::sys;
use crate::storage::OpenError;

/// Why a handle could not be passed to (exported, imported or adopted in) a child.
///
/// Python's counterpart is a `PicklingError` in the parent or an exception while unpickling
/// in the child; the start fails with it either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// A value could not be serialised, or failed validation (bytecheck) in the child.
    #[error("argument encoding failed")]
    Encoding(#[source] rkyv::rancor::Error),
    /// The child's importer ran out of values: the parent sent fewer than the child expects.
    #[error("missing argument value")]
    MissingValue,
    /// A descriptor index was out of range or already taken.
    #[error("bad descriptor index {0}")]
    BadFd(u32),
    /// A system call failed while passing a handle.
    #[error("i/o error while passing a handle")]
    Io(#[from] std::io::Error),
    /// The handle was closed (or is a disowned copy inherited through `fork`): there is
    /// nothing to pass.
    #[error("cannot pass a closed or disowned {what} handle")]
    Closed {
        /// The handle type, e.g. `"Queue"`.
        what: &'static str,
    },
    /// The parent sent a handle of another kind than the child expects (the two disagree on
    /// the argument types), e.g. the writer of a pipe where a reader is expected.
    #[error("expected {expected}, the parent sent {found}")]
    WrongKind {
        /// What the child expects, e.g. `"the reader of a one-way pipe"`.
        expected: &'static str,
        /// What the parent sent.
        found: &'static str,
    },
    /// A value the parent sent is out of range for it (an unknown tag, an impossible length):
    /// a corrupt or foreign argument stream.
    #[error("{what}: the parent sent {value}, which is out of range")]
    Invalid {
        /// Which value, e.g. `"Lock backing tag"`.
        what: &'static str,
        /// The value received.
        value: u64,
    },
    /// What the parent sent disagrees with the shared object it names (e.g. an array length
    /// that is not the array's, a cell of another size).
    #[error("{what}: the parent sent {sent}, the shared object has {expected}")]
    Mismatch {
        /// The quantity, e.g. `"array length"`.
        what: &'static str,
        /// The value the parent sent.
        sent: u64,
        /// The value the child found (or requires).
        expected: u64,
    },
    /// Process-local state that came along with the handle is inconsistent (e.g. a pipe's
    /// partly received message).
    #[error("inconsistent {what} in a passed handle")]
    Inconsistent {
        /// Which state.
        what: &'static str,
    },
    /// The shared object behind the handle could not be opened or attached in the child, or
    /// the child could not become one of its holders.
    #[error("cannot open the passed object")]
    Open(#[from] OpenError),
    /// The child could not register as a participant of the object's segment.
    #[error("cannot register in the passed object's segment")]
    Register(#[from] RegisterError),
    /// A [`Passable`] implemented outside mproc refused, for its own reason.
    #[error("the handle refused to be passed")]
    Custom(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl PassError {
    /// The error with its whole `source` chain (`outer: cause: root cause`), for reporting it
    /// across the start hand-shake, where only text travels.
    pub(crate) fn report(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Epochs and owners.

/// This process's fork epoch. 0 in a freshly executed process; strictly larger in every forked
/// child than in its parent (bumped by the `pthread_atfork` child hook and by mproc's own fork
/// path).
static EPOCH: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn bump_epoch_in_child() {
    bump_epoch();
}

/// Makes every handle the child inherited by fork foreign. Async-signal-safe (one atomic RMW).
pub(crate) fn bump_epoch() {
    // Relaxed: the forked child is single-threaded when this runs; the new value is published
    // to any thread it later starts by that thread's creation (a happens-before edge).
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// Registers the fork hook once. Called before any [`Owner`] is stamped and from the pre-main
/// spawn hook, so no fork can slip between creating a handle and the hook existing.
pub(crate) fn ensure_atfork() {
    ATFORK.call_once(|| {
        // If registration fails (ENOMEM), mproc's own fork path still bumps the epoch; only
        // raw user forks would then inherit live-looking handles.
        let _ = sys::atfork_child(bump_epoch_in_child);
    });
}

/// The current fork epoch of this process (see the module docs).
pub fn epoch() -> u64 {
    ensure_atfork();
    // Relaxed: only this process writes its epoch, and only while single-threaded (just after
    // fork), so any thread reading it sees the value of its own process.
    EPOCH.load(Ordering::Relaxed)
}

/// Who holds a handle: the process (fork epoch) that created or adopted it.
///
/// A handle type embeds an `Owner` and consults [`Owner::is_current`] in its `Drop` (and in
/// anything else that touches shared holder counts): a copy inherited through `fork` but not
/// passed to the child is *disowned* there, and must release nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    epoch: u64,
}

impl Owner {
    /// Stamps a new handle as held by the current process.
    pub fn current() -> Self {
        Owner { epoch: epoch() }
    }

    /// Whether this process holds the handle (it created, imported or adopted it), as opposed
    /// to having merely inherited a bitwise copy through `fork`.
    pub fn is_current(&self) -> bool {
        self.epoch == epoch()
    }

    /// [`Owner::is_current`] against an epoch the caller already read with [`epoch`].
    pub(crate) fn held_in(&self, epoch: u64) -> bool {
        self.epoch == epoch
    }

    /// Re-stamps the handle as held by the current process. Call it from
    /// [`Passable::adopt`], together with registering this process as a holder.
    pub fn adopt(&mut self) {
        self.epoch = epoch();
    }
}

impl Default for Owner {
    fn default() -> Self {
        Owner::current()
    }
}

// ---------------------------------------------------------------------------------------------
// Plain data.

/// Plain data that travels by value: anything rkyv 0.8 can serialise, validate (bytecheck) and
/// deserialise. Implemented for every such type; not meant to be implemented by hand.
///
/// Python's counterpart is "picklable".
pub trait Plain: Sized {
    /// Serialises `self` to an rkyv archive.
    #[doc(hidden)]
    fn encode_plain(&self) -> Result<AlignedVec, PassError>;
    /// Validates `bytes` as an archive of `Self` and deserialises it.
    #[doc(hidden)]
    fn decode_plain(bytes: &[u8]) -> Result<Self, PassError>;
}

// As for `Passable`: report the outer trait, not rkyv's bounds.
#[diagnostic::do_not_recommend]
impl<T> Plain for T
where
    T: Archive + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, HighDeserializer<rancor::Error>>,
{
    fn encode_plain(&self) -> Result<AlignedVec, PassError> {
        rkyv::to_bytes::<rancor::Error>(self).map_err(PassError::Encoding)
    }

    fn decode_plain(bytes: &[u8]) -> Result<Self, PassError> {
        // rkyv needs the archive aligned; the bytes come from a larger message, so copy.
        let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<T, rancor::Error>(&aligned).map_err(PassError::Encoding)
    }
}

// ---------------------------------------------------------------------------------------------
// Exporter / Importer.

/// Collects what a spawned child needs to rebuild the arguments: a sequence of serialised
/// values and a list of descriptors to inherit.
#[derive(Debug, Default)]
pub struct Exporter {
    pub(crate) values: Vec<Vec<u8>>,
    pub(crate) fds: Vec<OwnedFd>,
}

impl Exporter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends a plain value; the child reads values back in the same order with
    /// [`Importer::value`].
    ///
    /// # Errors
    ///
    /// [`PassError::Encoding`] if rkyv cannot serialise it.
    pub fn value<T: Plain>(&mut self, value: &T) -> Result<(), PassError> {
        self.values.push(value.encode_plain()?.to_vec());
        Ok(())
    }

    /// Arranges for `fd` to be inherited by the child and returns its index, to be sent along
    /// as a value and redeemed with [`Importer::take_fd`].
    ///
    /// The exporter holds a private duplicate (close-on-exec in the parent and in every other
    /// child) until the start hand-shake ends, so the handle may even be dropped meanwhile.
    ///
    /// # Errors
    ///
    /// [`PassError::Io`] if the descriptor cannot be duplicated.
    pub fn fd(&mut self, fd: BorrowedFd<'_>) -> Result<u32, PassError> {
        let index = u32::try_from(self.fds.len()).map_err(|_| PassError::BadFd(u32::MAX))?;
        self.fds.push(sys::dup_cloexec(fd)?);
        Ok(index)
    }

    pub(crate) fn raw_fds(&self) -> Vec<RawFd> {
        self.fds.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

/// The child-side reader of what an [`Exporter`] collected.
#[derive(Debug)]
pub struct Importer {
    values: std::vec::IntoIter<Vec<u8>>,
    fds: Vec<Option<OwnedFd>>,
}

impl Importer {
    pub(crate) fn new(values: Vec<Vec<u8>>, fds: Vec<OwnedFd>) -> Self {
        Importer {
            values: values.into_iter(),
            fds: fds.into_iter().map(Some).collect(),
        }
    }

    /// Reads the next value, validated (bytecheck) before it is deserialised.
    ///
    /// # Errors
    ///
    /// [`PassError::MissingValue`] past the end, [`PassError::Encoding`] if the bytes are not a
    /// valid archive of `T`.
    pub fn value<T: Plain>(&mut self) -> Result<T, PassError> {
        let bytes = self.values.next().ok_or(PassError::MissingValue)?;
        T::decode_plain(&bytes)
    }

    /// Takes ownership of the descriptor the parent exported as `index`. Each index can be
    /// taken once.
    ///
    /// # Errors
    ///
    /// [`PassError::BadFd`] if `index` is out of range or was already taken.
    pub fn take_fd(&mut self, index: u32) -> Result<OwnedFd, PassError> {
        self.fds
            .get_mut(index as usize)
            .and_then(Option::take)
            .ok_or(PassError::BadFd(index))
    }

    /// Whether every value was consumed (a surplus means parent and child disagree on the
    /// argument type).
    pub(crate) fn is_exhausted(&self) -> bool {
        self.values.len() == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Passable and Args.

/// Something that can be handed to a child process as (part of) its arguments.
///
/// Queues, connections, locks and the other shared objects implement this; plain data gets it
/// through the blanket impl over [`Plain`]. See the module docs for the protocol.
///
/// # Implementing
///
/// * `export` (spawn, in the parent): write what the child needs ([`Exporter::value`]) and
///   the descriptors it must inherit ([`Exporter::fd`]). It must not change holder counts:
///   the parent still holds its copy until the hand-shake ends.
/// * `import` (spawn, in the child): rebuild the handle, register this process as a holder
///   and stamp an [`Owner::current`].
/// * `adopt` (fork, in the child, on the bitwise copy): register this process as a holder and
///   [`Owner::adopt`].
/// * `Drop`: release the holder registration **only if** `owner.is_current()`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed to a child process: it is not `Passable`",
    label = "not `Passable`",
    note = "a child's arguments are plain data (derive `rkyv::Archive, rkyv::Serialize, rkyv::Deserialize`) or mproc handles (`Queue`, `Connection`, `Lock`, ...), moved into the argument tuple",
    note = "a handle the target closure captures is not passed: it is disowned in a forked child and cannot reach a spawned one"
)]
pub trait Passable: Sized {
    /// Parent side of spawn: describe `self` for the child.
    ///
    /// # Errors
    ///
    /// Whatever prevents describing the handle; the start fails with it.
    fn export(&self, out: &mut Exporter) -> Result<(), PassError>;

    /// Child side of spawn: rebuild the handle and become one of its holders.
    ///
    /// # Errors
    ///
    /// Invalid or missing data; the parent's start fails with it.
    fn import(input: &mut Importer) -> Result<Self, PassError>;

    /// Child side of fork: become a holder of this inherited copy.
    ///
    /// # Errors
    ///
    /// Registration failed; the parent's start fails with it.
    fn adopt(&mut self) -> Result<(), PassError>;
}

// Not recommended in diagnostics: a type that is neither plain data nor a handle is then
// reported as not `Passable`, with `Passable`'s notes, instead of by a missing rkyv bound.
#[diagnostic::do_not_recommend]
impl<T: Plain> Passable for T {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        out.value(self)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        input.value()
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(())
    }
}

/// A process's arguments: `()` or a tuple of up to six [`Passable`]s (Python's `args=(...)`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process's argument tuple",
    label = "not `()` or a tuple of up to six `Passable` values",
    note = "arguments are a tuple, as Python's `args=(...)`: `()`, `(queue,)` (note the comma), `(conn, 5u32)`; each element `Passable`, `Send` and `'static`"
)]
pub trait Args: Sized + Send + 'static {
    /// Exports every element, in order.
    ///
    /// # Errors
    ///
    /// The first element's failure.
    fn export_all(&self, out: &mut Exporter) -> Result<(), PassError>;
    /// Imports every element, in order.
    ///
    /// # Errors
    ///
    /// The first element's failure.
    fn import_all(input: &mut Importer) -> Result<Self, PassError>;
    /// Adopts every element.
    ///
    /// # Errors
    ///
    /// The first element's failure.
    fn adopt_all(&mut self) -> Result<(), PassError>;
}

macro_rules! impl_args {
    ($($t:ident . $i:tt),*) => {
        impl<$($t: Passable + Send + 'static),*> Args for ($($t,)*) {
            #[allow(unused_variables)]
            fn export_all(&self, out: &mut Exporter) -> Result<(), PassError> {
                $( self.$i.export(out)?; )*
                Ok(())
            }
            #[allow(unused_variables)]
            fn import_all(input: &mut Importer) -> Result<Self, PassError> {
                Ok(($( $t::import(input)?, )*))
            }
            fn adopt_all(&mut self) -> Result<(), PassError> {
                $( self.$i.adopt()?; )*
                Ok(())
            }
        }
    };
}

impl_args!();
impl_args!(A.0);
impl_args!(A.0, B.1);
impl_args!(A.0, B.1, C.2);
impl_args!(A.0, B.1, C.2, D.3);
impl_args!(A.0, B.1, C.2, D.3, E.4);
impl_args!(A.0, B.1, C.2, D.3, E.4, F.5);

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_roundtrip_through_exporter() {
        let mut ex = Exporter::new();
        (7u32, String::from("hi"), vec![1u64, 2])
            .export_all(&mut ex)
            .unwrap();
        let mut im = Importer::new(ex.values, Vec::new());
        let back = <(u32, String, Vec<u64>)>::import_all(&mut im).unwrap();
        assert_eq!(back, (7, "hi".to_string(), vec![1, 2]));
        assert!(im.is_exhausted());
    }

    #[test]
    fn wrong_type_is_an_error_not_ub() {
        let mut ex = Exporter::new();
        (1u8,).export_all(&mut ex).unwrap();
        let mut im = Importer::new(ex.values, Vec::new());
        assert!(<(String,)>::import_all(&mut im).is_err());
        let mut empty = Importer::new(Vec::new(), Vec::new());
        assert!(matches!(
            <(u8,)>::import_all(&mut empty),
            Err(PassError::MissingValue)
        ));
    }

    #[test]
    fn fd_index_taken_once() {
        let (r, _w) = sys::pipe().unwrap();
        let mut ex = Exporter::new();
        let i = ex.fd(std::os::fd::AsFd::as_fd(&r)).unwrap();
        let mut im = Importer::new(Vec::new(), ex.fds);
        assert!(im.take_fd(i).is_ok());
        assert!(matches!(im.take_fd(i), Err(PassError::BadFd(0))));
        assert!(matches!(im.take_fd(9), Err(PassError::BadFd(9))));
    }

    /// Exports `handle` and imports it back in this process as an `H`.
    fn reimport<H: Passable>(handle: &impl Passable) -> Result<H, PassError> {
        let mut ex = Exporter::new();
        handle.export(&mut ex).unwrap();
        H::import(&mut Importer::new(ex.values, ex.fds))
    }

    #[test]
    fn import_failures_are_typed_and_keep_their_cause() {
        // A lock's cell imported as an event (same size, another kind).
        let lock = crate::Lock::new().unwrap();
        let err = reimport::<crate::Event>(&lock).unwrap_err();
        assert!(
            matches!(err, PassError::Open(OpenError::WrongType { .. })),
            "{err:?}"
        );
        assert!(err.report().contains("another kind"), "{}", err.report());
        // ... and as an RLock (another size).
        let err = reimport::<crate::RLock>(&lock).unwrap_err();
        assert!(
            matches!(
                err,
                PassError::Mismatch {
                    what: "cell size",
                    sent: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        // One end of a duplex pipe imported as the reader of a one-way pipe.
        let (a, _b) = crate::pipe::<u32, u32>().unwrap();
        match reimport::<crate::PipeReader<u32>>(&a) {
            // The pipe's fingerprint records its shape and types: a duplex end is not a reader.
            Err(PassError::Open(crate::OpenError::WrongType { .. })) => {}
            other => panic!("{other:?}"),
        }
        // A backing tag that means nothing.
        let mut ex = Exporter::new();
        ex.value(&7u8).unwrap();
        let err = crate::Lock::import(&mut Importer::new(ex.values, Vec::new())).unwrap_err();
        assert!(
            matches!(err, PassError::Invalid { value: 7, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn owner_is_current_in_its_epoch() {
        let o = Owner::current();
        assert!(o.is_current());
    }
}
