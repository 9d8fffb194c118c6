//! Validated names of POSIX shared-memory segments (`/dev/shm/<name>`).

use std::ffi::CString;
use std::fmt;

/// Longest accepted name, in bytes (`NAME_MAX` of tmpfs is 255; one byte is kept for the
/// leading `/` that `shm_open(3)` callers usually write).
pub const MAX_NAME_LEN: usize = 254;

/// Directory where Linux keeps POSIX shared memory.
pub(crate) const SHM_DIR: &str = "/dev/shm/";

/// Why a segment name was refused. Each refusal is its own variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// The name's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name contains a `/` (it must name a file directly inside `/dev/shm`).
    ContainsSlash,
    /// The name is `.`, or contains `..`.
    DotDot,
    /// The name contains a NUL byte.
    ContainsNul,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("the name is empty"),
            NameError::TooLong { len, max } => {
                write!(f, "the name is {len} bytes long; at most {max} are allowed")
            }
            NameError::ContainsSlash => {
                f.write_str("the name contains '/'; give a bare file name such as \"my-queue\"")
            }
            NameError::DotDot => f.write_str("the name is \".\" or contains \"..\""),
            NameError::ContainsNul => f.write_str("the name contains a NUL byte"),
        }
    }
}

impl std::error::Error for NameError {}

/// A validated segment name: a bare file name inside `/dev/shm`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ShmName {
    name: String,
}

impl ShmName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// One [`NameError`] variant per rule: empty, too long, contains `/`, is `.` or contains
    /// `..`, contains NUL.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc_shm::{NameError, ShmName};
    /// assert!(ShmName::new("jobs-42").is_ok());
    /// assert_eq!(ShmName::new("a/b"), Err(NameError::ContainsSlash));
    /// assert_eq!(ShmName::new(".."), Err(NameError::DotDot));
    /// ```
    pub fn new(name: &str) -> Result<ShmName, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if name.contains('\0') {
            return Err(NameError::ContainsNul);
        }
        if name.contains('/') {
            return Err(NameError::ContainsSlash);
        }
        if name == "." || name.contains("..") {
            return Err(NameError::DotDot);
        }
        Ok(ShmName {
            name: name.to_owned(),
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The file's path, `/dev/shm/<name>`.
    pub fn path(&self) -> String {
        format!("{SHM_DIR}{}", self.name)
    }

    pub(crate) fn c_path(&self) -> CString {
        CString::new(self.path()).expect("validated: no NUL")
    }
}

impl fmt::Debug for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_own_error() {
        assert_eq!(ShmName::new(""), Err(NameError::Empty));
        assert_eq!(ShmName::new("a/b"), Err(NameError::ContainsSlash));
        assert_eq!(ShmName::new("/a"), Err(NameError::ContainsSlash));
        assert_eq!(ShmName::new(".."), Err(NameError::DotDot));
        assert_eq!(ShmName::new("x..y"), Err(NameError::DotDot));
        assert_eq!(ShmName::new("."), Err(NameError::DotDot));
        assert_eq!(ShmName::new("a\0b"), Err(NameError::ContainsNul));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            ShmName::new(&long),
            Err(NameError::TooLong {
                len: MAX_NAME_LEN + 1,
                max: MAX_NAME_LEN
            })
        );
        assert!(ShmName::new(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert_eq!(
            ShmName::new("ok.name-1").unwrap().path(),
            "/dev/shm/ok.name-1"
        );
    }
}
