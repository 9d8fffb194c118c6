//! The pipe's rings inside its object: one [`RecordRing`] per direction, each in its own
//! validated sub-region of the segment. The only `unsafe` of the pipe module.
#![allow(unsafe_code)]

use mproc_ring::{RecordRing, RecordShape};

use crate::storage::object::{Object, OpenError};

/// Initialises `count` rings of `shape` in sub-regions `0..count` of a freshly created
/// object (called from `Object::create`'s `init`, before the object is published).
pub(super) fn init(obj: &Object, shape: RecordShape, count: usize) -> Result<(), OpenError> {
    for i in 0..count {
        let r = obj
            .region(i)
            .ok_or_else(|| OpenError::Corrupt(format!("pipe ring {i} missing")))?;
        let len = usize::try_from(r.len).map_err(|_| OpenError::Corrupt("ring size".into()))?;
        // SAFETY: a sub-region of the segment, validated in bounds and 128-aligned by
        // `Object`; nobody else can reach it before the object is published; the mapping is
        // kept alive by the object, which every handle to the ring holds beside it.
        unsafe { RecordRing::init(r.ptr, len, shape) }
            .map_err(|e| OpenError::InvalidOptions(e.to_string()))?;
    }
    Ok(())
}

/// Attaches to ring `i` of `obj`, validating its header.
pub(super) fn attach(obj: &Object, i: usize) -> Result<RecordRing, OpenError> {
    let r = obj
        .region(i)
        .ok_or_else(|| OpenError::Corrupt(format!("pipe ring {i} missing")))?;
    let len = usize::try_from(r.len).map_err(|_| OpenError::Corrupt("ring size".into()))?;
    // SAFETY: the sub-region was validated to lie inside the segment's mapping, which `obj`
    // keeps alive (every `End` holds its `Arc<Object>` beside its rings); it is accessed only
    // through ring handles, in every process.
    unsafe { RecordRing::attach(r.ptr, len) }
        .map_err(|e| OpenError::Corrupt(format!("pipe ring {i}: {e}")))
}
