//! The threaded runtime under load, faults and crashes, checked end to end against the
//! linearizability checker. One test binary (`cargo test --test runtime`), for the reason
//! given in `tests/checks/main.rs`; the loom tests stay apart (`tests/loom_*.rs`), as they
//! are built with `--cfg loom`. Filter by module: `cargo test --test runtime crash::`.
//! `net::` runs server processes (`paxraft serve`) on loopback.

mod backpressure;
mod crash;
mod e2e;
mod faults;
mod membership;
mod net;
mod reads;
mod snapshots;

use std::ops::Deref;
use std::path::Path;

/// A fresh directory for one test's files (data directories, server logs): removed when
/// dropped, but kept, and named on stderr, when the test is failing, so that its logs can be
/// read. Tests that left theirs behind filled a machine's disk after some fifty runs.
pub(crate) struct Scratch(tempfile::TempDir);

impl Scratch {
    /// A new empty directory in the system's temp dir, named `paxraft-{name}-` and a random
    /// suffix (so tests of one run, and runs side by side, never share one).
    pub(crate) fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("paxraft-{name}-"))
            .tempdir()
            .expect("a scratch directory");
        Scratch(dir)
    }
}

impl Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("kept {} for the failing test", self.0.path().display());
        }
    }
}
