//! Comparison benches (see the workspace README).
