//! Passing a [`Queue`] to a child process (see [`crate::handle`]).
//!
//! * fork (`adopt`, in the child, on the bitwise copy): register the child's own
//!   participant entry in the segment, count the handle there, re-stamp its owner.
//! * spawn (`export` in the parent, `import` in the child): the segment's descriptor plus
//!   one value, its index; the child maps the segment (checking the fingerprint, so a
//!   `Queue<u64>` cannot be imported as a `Queue<String>`), attaches ring and arena, and
//!   counts itself as a holder. The parent keeps its own handle until the child has done
//!   that (the start hand-shake), so the holder count never touches zero in between.

use std::os::fd::AsFd;

use super::{Queue, ROLE, ROLES, fingerprint, type_name};
use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::message::Message;
use crate::storage::object::{Object, ObjectKind};

impl<T: Message> Passable for Queue<T> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        if !self.usable() {
            return Err(PassError::Closed { what: "Queue" });
        }
        let index = out.fd(self.shared.obj.segment().as_fd())?;
        out.value(&index)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let index: u32 = input.value()?;
        let fd = input.take_fd(index)?;
        let obj = Object::from_fd(
            fd,
            ObjectKind::Queue,
            fingerprint::<T>(),
            &type_name::<T>(),
            ROLES,
        )?;
        Ok(Queue::from_object(obj)?)
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        if self.closed.get() {
            return Err(PassError::Closed { what: "Queue" });
        }
        self.shared.obj.acquire(ROLE)?;
        self.owner.adopt();
        Ok(())
    }
}
