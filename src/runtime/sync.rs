//! The synchronization shim: loom's types under `--cfg loom` (so loom can explore every
//! interleaving of the pieces built on them), std's otherwise. The pieces threads share use it:
//! the mailboxes (node inputs and proposals; clients' replies, their completion slots; closing
//! is the crash/shutdown signal), the reference-counted reply boxes the batcher
//! ([`super::batcher::Pending`]) holds, and the network's outlets ([`crate::net::outlet`]: the
//! producers' direct writes and the flusher's buffer). What stays on std: the partition flags
//! (a flag read a little late is network delay), the crash switches (read late: a crash a
//! little later) and the status/panic reports (read by tests and the CLI).

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread;

/// Lock, ignoring poisoning: a panicking replica thread is contained and reported by the
/// cluster; the queue it held a lock on is still structurally sound (a mailbox's critical
/// sections only move items in and out of a `VecDeque`; an outlet's append or swap bytes, and
/// its encoders, which run under its lock, only append).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
