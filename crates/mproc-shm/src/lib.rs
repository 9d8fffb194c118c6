//! `mproc-shm`: work in progress; see the workspace README.
