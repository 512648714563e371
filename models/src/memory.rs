//! Bytes per unique state: how much the process grew while a check ran, divided by the
//! states it found.
//!
//! What is counted: the growth of the process's resident memory from the start of the check
//! to its peak (Linux `VmRSS` at the start, `VmHWM` at the end, the peak reset at the start
//! through `/proc/self/clear_refs` so that an earlier run in the same process does not set
//! it). That is everything the checker holds at its peak: stateright's fingerprint map (one
//! entry per unique state), the states waiting to be expanded (BFS: the queue of whole
//! states with their paths; DFS: the stack), the parts of states shared between them (`Arc`s),
//! and the allocator's own overhead and free lists. It is an upper bound on the bytes a state
//! needs, not a `size_of`. Memory an earlier run freed but the allocator kept is reused before
//! the process grows, so a run that follows a larger one in the same process would read low:
//! a program whose allocator can give free memory back registers how with
//! [`on_measure_start`] (the `paxraft` binary does, for mimalloc), and every measurement
//! starts after it (the tour runs its checks one after another in one process).

use std::sync::OnceLock;

/// How to give the allocator's free memory back to the system ([`on_measure_start`]).
static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Have every [`Meter::start`] call `release` first: it hands the memory the allocator keeps
/// free back to the system, so that the next measurement does not reuse it unseen. Set once
/// per process (later calls are ignored).
pub fn on_measure_start(release: fn()) {
    let _ = RELEASE.set(release);
}

/// A measurement in progress.
#[derive(Copy, Clone, Debug)]
pub struct Meter {
    start: Option<u64>,
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident memory of this process in bytes (`VmHWM`; Linux, `None` elsewhere).
pub fn peak_resident() -> Option<u64> {
    status_bytes("VmHWM:")
}

impl Meter {
    /// Start measuring: reset the peak to the current resident size, and note it.
    pub fn start() -> Meter {
        if let Some(release) = RELEASE.get() {
            release();
        }
        // "5" resets the peak resident size to the current one (Linux 4.0 and later). If it
        // cannot be reset, an earlier peak may hide this run's: then no figure is given.
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Meter {
            start: status_bytes("VmRSS:").filter(|_| reset),
        }
    }

    /// Bytes the process grew by at its peak since [`Meter::start`].
    pub fn growth(&self) -> Option<u64> {
        Some(peak_resident()?.saturating_sub(self.start?))
    }

    /// [`Meter::growth`] per unique state (`None` without states or without the figures).
    pub fn bytes_per_state(&self, unique_states: usize) -> Option<f64> {
        let grown = self.growth()?;
        (unique_states > 0).then(|| grown as f64 / unique_states as f64)
    }
}
