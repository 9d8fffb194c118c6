//! `mproc`: work in progress; see the workspace README.
#![deny(unsafe_code)]

pub mod message;
pub(crate) mod object;

pub use message::{Message, MessageError};
pub use object::OpenError;
