//! `mproc-ring`: work in progress; see the workspace README.
