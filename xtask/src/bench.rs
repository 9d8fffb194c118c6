//! `cargo xtask bench`: every criterion bench in the workspace.
//!
//! Figures are only ever reported (criterion's output under `target/criterion`), never
//! asserted: the machines are shared and noisy.

use crate::runner::{Matrix, Step};

pub(crate) fn run(quick: bool) -> Result<(), String> {
    let mut matrix = Matrix::default();
    if quick {
        matrix.run(Step::new(
            "bench build",
            "cargo",
            &["bench", "--workspace", "--no-run"],
            25,
        ));
        // One short pass of every bench: proves each body runs, measures nothing worth quoting.
        matrix.run(Step::new(
            "bench smoke",
            "cargo",
            &[
                "bench",
                "--workspace",
                "--",
                "--warm-up-time",
                "0.05",
                "--measurement-time",
                "0.1",
                "--sample-size",
                "10",
            ],
            25,
        ));
    } else {
        matrix.run(Step::new("bench", "cargo", &["bench", "--workspace"], 120));
    }
    matrix.finish()
}
