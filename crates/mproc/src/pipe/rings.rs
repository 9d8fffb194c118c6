//! The pipe's rings inside its object: one [`RecordRing`] per direction, each in its own
//! validated sub-region of the segment. The only `unsafe` of the pipe module.
#![allow(unsafe_code)]

use mproc_ring::{RecordRing, RecordShape};

use crate::storage::object::{CreateError, Object, OpenError};

/// Initialises `count` rings of `shape` in sub-regions `0..count` of a freshly created
/// object (called from `Object::create`'s `init`, before the object is published).
pub(super) fn init(obj: &Object, shape: RecordShape, count: usize) -> Result<(), CreateError> {
    for i in 0..count {
        let missing = || CreateError::Inconsistent {
            what: "pipe ring region",
        };
        let r = obj.region(i).ok_or_else(missing)?;
        let len = usize::try_from(r.len).map_err(|_| missing())?;
        // SAFETY: a sub-region of the segment, validated in bounds and 128-aligned by
        // `Object`; nobody else can reach it before the object is published; the mapping is
        // kept alive by the object, which every handle to the ring holds beside it.
        unsafe { RecordRing::init(r.ptr, len, shape) }?;
    }
    Ok(())
}

/// Attaches to ring `i` of `obj`, validating its header.
pub(super) fn attach(obj: &Object, i: usize) -> Result<RecordRing, OpenError> {
    let r = obj
        .region(i)
        .ok_or_else(|| OpenError::corrupt("pipe ring (missing)", i))?;
    let len = usize::try_from(r.len).map_err(|_| OpenError::corrupt("pipe ring length", r.len))?;
    // SAFETY: the sub-region was validated to lie inside the segment's mapping, which `obj`
    // keeps alive (every `End` holds its `Arc<Object>` beside its rings); it is accessed only
    // through ring handles, in every process.
    Ok(unsafe { RecordRing::attach(r.ptr, len) }?)
}
