//! `mproc`: work in progress; see the workspace README.
#![deny(unsafe_code)]

pub mod message;
pub(crate) mod object;
pub mod queue;

pub use message::{Message, MessageError};
pub use object::OpenError;
pub use queue::Queue;
