//! What every synchronisation handle shares: opening and unlinking by name (kind-checked)
//! and passing to children. One macro, so the handle types stay small.

/// Implements `open_named`, `unlink_named`, [`Passable`](crate::Passable) and the private
/// constructor `create` for a handle type with a `fn from_shared(Arc<Shared>) ->
/// Result<Self, OpenError>` and a `shared: Arc<Shared>` field. Given a `pub struct` with its
/// kind and state type `T` instead, for a handle that is only that field, it also declares
/// the struct and writes that `from_shared` and `fn state(&self) -> &T`.
macro_rules! shared_handle {
    // A handle that is just its shared part: declares it (cloning gives another handle to
    // the same object) and writes `from_shared` and `state` too.
    ($(#[$attr:meta])* pub struct $ty:ident; kind: $kind:expr, state: $state:ty $(,)?) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $ty {
            shared: std::sync::Arc<crate::sync::backing::Shared>,
        }

        impl $ty {
            fn from_shared(
                shared: std::sync::Arc<crate::sync::backing::Shared>,
            ) -> Result<$ty, crate::OpenError> {
                Ok($ty { shared })
            }

            /// The shared state.
            #[inline]
            fn state(&self) -> &$state {
                self.shared.state::<$state>()
            }
        }

        crate::sync::handle::shared_handle!($ty, $kind);
    };
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// A handle over a new object whose fresh state `init` writes: named `name`, or
            /// anonymous in the pool when `name` is `None`.
            fn create(
                name: Option<&str>,
                init: impl FnOnce(&mproc_core::shared::SharedBytes),
            ) -> Result<$ty, crate::CreateError> {
                let backing = crate::sync::backing::Backing::create(&$kind, name, init)?;
                Ok($ty::from_shared(crate::sync::backing::Shared::new(
                    backing,
                ))?)
            }

            /// Opens the object created under `name` by
            #[doc = concat!("[`", stringify!($ty), "::create_named`], checking its kind.")]
            ///
            /// # Errors
            ///
            /// [`OpenError::WrongType`](crate::OpenError::WrongType) if `name` holds another
            /// kind of object, [`OpenError::NotFound`](crate::OpenError::NotFound) if it does
            /// not exist, [`OpenError::Corrupt`](crate::OpenError::Corrupt) for a damaged
            /// header.
            pub fn open_named(name: &str) -> Result<$ty, crate::OpenError> {
                let backing = crate::sync::backing::Backing::open_named(&$kind, name)?;
                $ty::from_shared(crate::sync::backing::Shared::new(backing))
            }

            /// Removes the name `/dev/shm/mproc.<name>` after checking that it holds this kind of
            /// object; open handles keep working.
            ///
            /// # Errors
            ///
            /// As [`open_named`](Self::open_named).
            pub fn unlink_named(name: &str) -> Result<(), crate::OpenError> {
                let backing = crate::sync::backing::Backing::open_named(&$kind, name)?;
                crate::storage::names::unlink(name).map(|()| drop(backing))
            }
        }

        impl crate::Passable for $ty {
            fn export(&self, out: &mut crate::handle::Exporter) -> Result<(), crate::PassError> {
                self.shared.backing.export(out)
            }

            fn import(input: &mut crate::handle::Importer) -> Result<Self, crate::PassError> {
                let backing = crate::sync::backing::Backing::import(&$kind, input)?;
                Ok($ty::from_shared(crate::sync::backing::Shared::new(
                    backing,
                ))?)
            }

            fn adopt(&mut self) -> Result<(), crate::PassError> {
                // Registers the child's own participant entry (what it takes is then
                // recorded under its own id, and its death is told apart from the parent's)
                // and, for a pool object, takes the child's hold on the cell.
                self.shared.backing.adopt()
            }
        }
    };
}

pub(crate) use shared_handle;
