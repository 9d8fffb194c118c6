//! Where every object's state lives: the segment layout and holder table each facade object
//! uses (crate-internal), the small-object [`cells`] store that
//! anonymous locks, events and values share, and the [`names`] of named objects in
//! `/dev/shm`.

pub mod cells;
pub mod names;
pub(crate) mod object;

pub use object::{CreateError, OpenError};
