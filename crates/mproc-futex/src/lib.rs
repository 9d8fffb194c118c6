//! `mproc-futex`: work in progress; see the workspace README.
