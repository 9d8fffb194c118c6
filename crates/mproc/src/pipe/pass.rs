//! Passing a [`Connection`] to a child process (see [`crate::handle`]).
//!
//! * fork (`adopt`, in the child, on the bitwise copy): count the child as a holder of the
//!   end's role and re-stamp its owner (ring roles are claimed at first use, see `end.rs`).
//! * spawn (`export` in the parent, `import` in the child): the segment's descriptor, the
//!   end's role and its receiver's partial message. The child maps the segment expecting the
//!   fingerprint its own `Connection<S, R>` type computes for that role ([`Identity`]), so an
//!   end can only be imported as the type it was created with.

use std::os::fd::AsFd;
use std::sync::Arc;

use super::connection::Connection;
use super::end::End;
use super::frame::Assembler;
use super::{Carried, Identity};
use crate::handle::{Exporter, Importer, PassError, Passable};
use crate::storage::object::{Object, ObjectKind};

/// What a spawned child receives besides the descriptor: `(role, fd index, assembler)`.
type State = (u32, u32, (Vec<u8>, Option<u64>, bool, bool, u64));

impl<S: Carried, R: Carried> Passable for Connection<S, R> {
    fn export(&self, out: &mut Exporter) -> Result<(), PassError> {
        self.end.check_owner();
        let fd = out.fd(self.end.obj.segment().as_fd())?;
        let state: State = (self.end.role, fd, self.end.asm.export());
        out.value(&state)
    }

    fn import(input: &mut Importer) -> Result<Self, PassError> {
        let (role, fd, asm): State = input.value()?;
        if role > 1 {
            return Err(PassError::Invalid {
                what: "pipe role",
                value: role.into(),
            });
        }
        let asm = Assembler::import(asm).ok_or(PassError::Inconsistent {
            what: "pipe receive state",
        })?;
        let fd = input.take_fd(fd)?;
        let id = Identity::of::<S, R>(role);
        let obj = Object::from_fd(fd, ObjectKind::Pipe, id.fingerprint, &id.type_name, 2)?;
        let end = End::new(Arc::new(obj), id.duplex, role, asm)?;
        Ok(Connection::from_end(end))
    }

    fn adopt(&mut self) -> Result<(), PassError> {
        Ok(self.end.adopt()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::{ReadOnly, WriteOnly, pipe, pipe_oneway};
    use crate::storage::object::OpenError;

    /// Exports `conn` as a spawn would and imports it back as a `Connection<S2, R2>`.
    fn reimport<S: Carried, R: Carried, S2: Carried, R2: Carried>(
        conn: &Connection<S, R>,
    ) -> Result<Connection<S2, R2>, PassError> {
        let mut out = Exporter::new();
        conn.export(&mut out)?;
        let mut input = Importer::new(std::mem::take(&mut out.values), out.fds);
        Connection::<S2, R2>::import(&mut input)
    }

    #[test]
    fn an_end_imports_only_as_its_own_type() {
        let (a, mut b) = pipe::<u64, String>().unwrap();
        let mut a2 = reimport::<_, _, u64, String>(&a).expect("its own type");
        drop(a);
        a2.send(&7).unwrap();
        assert_eq!(b.recv(), Ok(7));
        // Another message type either way, the peer's type, or a one-way end: wrong type.
        for err in [
            reimport::<_, _, String, String>(&a2).err(),
            reimport::<_, _, u64, u64>(&a2).err(),
            reimport::<_, _, u32, String>(&a2).err(),
        ] {
            let err = err.expect("a wrong type was imported");
            assert!(
                matches!(err, PassError::Open(OpenError::WrongType { .. })),
                "{err:?}"
            );
        }
        assert!(
            reimport::<_, _, String, u64>(&a2).is_err(),
            "the peer's type"
        );
        assert!(reimport::<_, _, ReadOnly, String>(&a2).is_err(), "a reader");
        assert!(reimport::<_, _, u64, WriteOnly>(&a2).is_err(), "a writer");
        // The right type still imports (the failed attempts changed nothing).
        assert!(reimport::<_, _, u64, String>(&a2).is_ok());
    }

    #[test]
    fn oneway_ends_import_only_in_their_own_role() {
        let (r, w) = pipe_oneway::<u32>().unwrap();
        assert!(reimport::<_, _, ReadOnly, u32>(&r).is_ok());
        assert!(reimport::<_, _, u32, WriteOnly>(&w).is_ok());
        assert!(
            reimport::<_, _, u32, WriteOnly>(&r).is_err(),
            "reader as a writer"
        );
        assert!(
            reimport::<_, _, ReadOnly, u32>(&w).is_err(),
            "writer as a reader"
        );
        assert!(reimport::<_, _, ReadOnly, u64>(&r).is_err(), "another type");
        assert!(reimport::<_, _, u32, u32>(&r).is_err(), "as a duplex end");
    }
}
