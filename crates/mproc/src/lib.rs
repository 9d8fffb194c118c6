//! `mproc`: work in progress; see the workspace README.
