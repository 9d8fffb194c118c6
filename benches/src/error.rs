//! The one error every bench body returns.

use std::fmt;
use std::io;

/// Why a measurement produced no figure.
#[derive(Debug)]
pub enum BenchError {
    /// The mechanism cannot run this case here (e.g. a POSIX queue message over
    /// `msgsize_max`); the report prints "n/a" with the reason.
    Unsupported(String),
    /// A bounded wait ran out (a peer stalled or died without the mechanism noticing).
    Timeout(&'static str),
    /// A message arrived out of order or corrupted.
    Corrupt(String),
    /// The peer process or thread failed (its exit status or panic).
    Peer(String),
    /// A system call failed.
    Io(io::Error),
    /// The mechanism's own API returned an error.
    Api(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Unsupported(why) => write!(f, "unsupported: {why}"),
            BenchError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            BenchError::Corrupt(what) => write!(f, "corrupt message: {what}"),
            BenchError::Peer(what) => write!(f, "peer failed: {what}"),
            BenchError::Io(e) => write!(f, "i/o error: {e}"),
            BenchError::Api(e) => write!(f, "api error: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<io::Error> for BenchError {
    fn from(e: io::Error) -> Self {
        BenchError::Io(e)
    }
}

/// Maps any displayable API error to [`BenchError::Api`].
pub fn api(e: impl fmt::Display) -> BenchError {
    BenchError::Api(e.to_string())
}
