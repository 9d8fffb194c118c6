//! Where a synchronisation object's words live: a pool cell (anonymous objects) or a named
//! object segment (named objects), behind one small interface.

use std::fmt;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::Arc;

use mproc_core::shared::{SharedBytes, SharedState, shared_at};
use mproc_futex::Liveness;
use mproc_shm::{REGION_ALIGN, RegisterError, Segment};

use crate::handle::{Exporter, Importer, PassError};
use crate::storage::cells::{self, CellKind, PoolCell};
use crate::storage::object::{self, CreateError, Object, ObjectKind, ObjectSpec, OpenError};

/// What kind of object a [`Backing`] holds: its type tag (hashed into the pool cell kind and
/// the named segment's fingerprint, so a wrong-kind open or import is refused), its Rust
/// name for errors, and the size and alignment of its shared state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Type tag with a layout version, e.g. `"RLock/v1"`.
    pub(crate) tag: &'static str,
    /// The handle type's name, e.g. `"RLock"`.
    pub(crate) name: &'static str,
    /// Bytes of shared state.
    pub(crate) size: usize,
    /// Its alignment.
    pub(crate) align: usize,
}

impl Kind {
    /// The kind whose shared state is a `T`, tagged `tag` and named `name`.
    pub(crate) const fn of<T>(tag: &'static str, name: &'static str) -> Kind {
        Kind {
            tag,
            name,
            size: size_of::<T>(),
            align: align_of::<T>(),
        }
    }

    fn fingerprint(&self) -> u64 {
        object::fingerprint(ObjectKind::Lock, self.tag)
    }

    fn cell_kind(&self) -> CellKind {
        CellKind::of(self.tag)
    }

    fn region_len(&self) -> u64 {
        (self.size as u64).div_ceil(REGION_ALIGN) * REGION_ALIGN
    }
}

/// A synchronisation object's shared state: a pool cell, or a named segment of its own.
pub(crate) enum Backing {
    /// An anonymous object in the small-object pool.
    Pool(PoolCell),
    /// A named object (`create_named` / `open_named`).
    Named(Object),
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Pool(c) => c.fmt(f),
            Backing::Named(o) => f.debug_tuple("Named").field(o.segment()).finish(),
        }
    }
}

/// Export tags.
const POOL: u8 = 0;
const NAMED: u8 = 1;

impl Backing {
    /// A new anonymous object in the pool; `init` writes the initial state into the zeroed
    /// bytes before anybody else can see them.
    pub(crate) fn new(
        kind: &Kind,
        init: impl FnOnce(&SharedBytes),
    ) -> Result<Backing, CreateError> {
        cells::alloc(kind.cell_kind(), kind.size, kind.align, init).map(Backing::Pool)
    }

    /// A new named object (`O_EXCL`: an existing name is an error).
    pub(crate) fn create_named(
        kind: &Kind,
        name: &str,
        init: impl FnOnce(&SharedBytes),
    ) -> Result<Backing, CreateError> {
        let spec = ObjectSpec {
            kind: ObjectKind::Lock,
            fingerprint: kind.fingerprint(),
            roles: 1,
            regions: &[kind.region_len()],
        };
        let obj = Object::create(&spec, Some(name), None, |obj| {
            let region = obj.region_bytes(0).ok_or(CreateError::Inconsistent {
                what: "state region (missing)",
            })?;
            init(region);
            Ok(())
        })?;
        Ok(Backing::from_object(kind, obj)?)
    }

    /// A new object: named `name` ([`create_named`](Self::create_named)), or anonymous in the
    /// pool ([`new`](Self::new)) when `name` is `None`.
    pub(crate) fn create(
        kind: &Kind,
        name: Option<&str>,
        init: impl FnOnce(&SharedBytes),
    ) -> Result<Backing, CreateError> {
        match name {
            None => Backing::new(kind, init),
            Some(name) => Backing::create_named(kind, name, init),
        }
    }

    /// Opens the named object `name`, checking that it is a `kind`.
    pub(crate) fn open_named(kind: &Kind, name: &str) -> Result<Backing, OpenError> {
        let obj = Object::open_named(name, ObjectKind::Lock, kind.fingerprint(), kind.name, 1)?;
        Backing::from_object(kind, obj)
    }

    fn from_object(kind: &Kind, obj: Object) -> Result<Backing, OpenError> {
        let region = obj
            .region(0)
            .ok_or(OpenError::corrupt_part("state region (missing)"))?;
        // Regions are REGION_ALIGN (128) aligned, more than any state here needs.
        if region.len < kind.size as u64 || kind.align as u64 > REGION_ALIGN {
            return Err(OpenError::corrupt("state region length", region.len));
        }
        Ok(Backing::Named(obj))
    }

    /// The shared state: `kind.size` bytes aligned to `kind.align`, valid as long as `self`.
    #[inline]
    pub(crate) fn data(&self) -> NonNull<u8> {
        match self {
            Backing::Pool(c) => c.data(),
            Backing::Named(o) => o.region(0).expect("checked in from_object").ptr,
        }
    }

    /// The shared state as bytes: `kind.size` bytes or more, aligned to `kind.align`.
    #[inline]
    pub(crate) fn bytes(&self) -> &SharedBytes {
        match self {
            Backing::Pool(c) => c.bytes(),
            Backing::Named(o) => o.region_bytes(0).expect("checked in from_object"),
        }
    }

    /// The segment whose participant table the state's owner ids refer to.
    #[inline]
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        match self {
            Backing::Pool(c) => c.segment(),
            Backing::Named(o) => o.segment(),
        }
    }

    /// This process's participant id in that segment, registering on first use.
    pub(crate) fn me(&self) -> Result<u32, RegisterError> {
        let seg = self.segment();
        match seg.participant() {
            Some(id) => Ok(id.get()),
            None => seg.register().map(|id| id.get()),
        }
    }

    /// Parent side of spawn.
    pub(crate) fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        match self {
            Backing::Pool(c) => {
                out.value(&POOL)?;
                c.export(out)
            }
            Backing::Named(o) => {
                out.value(&NAMED)?;
                let index = out.fd(o.segment().as_fd())?;
                out.value(&index)
            }
        }
    }

    /// Child side of spawn.
    pub(crate) fn import(kind: &Kind, input: &mut Importer) -> Result<Backing, PassError> {
        let tag: u8 = input.value()?;
        match tag {
            POOL => PoolCell::import(input, kind.cell_kind(), kind.size, kind.align, kind.name)
                .map(Backing::Pool),
            NAMED => {
                let index: u32 = input.value()?;
                let fd = input.take_fd(index)?;
                let obj = Object::from_fd(fd, ObjectKind::Lock, kind.fingerprint(), kind.name, 1)?;
                Ok(Backing::from_object(kind, obj)?)
            }
            t => Err(PassError::Invalid {
                what: "synchronisation object backing tag",
                value: t.into(),
            }),
        }
    }

    /// Child side of fork: take this process's hold and register its participant.
    pub(crate) fn adopt(&self) -> Result<(), PassError> {
        match self {
            Backing::Pool(c) => c.adopt(),
            Backing::Named(o) => o.me().map(drop).map_err(PassError::Open),
        }
    }
}

/// Asks a segment whether a participant lives (the kernel-released OFD lock).
pub(crate) struct SegmentLiveness(pub(crate) Arc<Segment>);

impl Liveness for SegmentLiveness {
    fn is_alive(&self, id: u32) -> bool {
        self.0.is_alive(id)
    }
}

impl fmt::Debug for SegmentLiveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SegmentLiveness")
    }
}

/// A handle's shared part: the backing plus the liveness oracle over its segment.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backing: Backing,
    pub(crate) liveness: SegmentLiveness,
}

impl Shared {
    pub(crate) fn new(backing: Backing) -> Arc<Shared> {
        let liveness = SegmentLiveness(backing.segment().clone());
        Arc::new(Shared { backing, liveness })
    }

    /// The state as a `T` (the kind's state type: any other `SharedState` type that fits
    /// is memory-safe, only meaningless).
    ///
    /// # Panics
    ///
    /// If a `T` does not fit the state's size and alignment (a `T` that is not the kind's
    /// state type: a bug).
    #[inline]
    pub(crate) fn state<T: SharedState>(&self) -> &T {
        shared_at(self.backing.bytes(), 0).expect("the kind's state type fits its state")
    }
}
