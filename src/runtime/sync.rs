//! The synchronization shim: loom's types under `--cfg loom` (so loom can explore every
//! interleaving of the pieces built on them), std's otherwise. Only the pieces threads share
//! (mailboxes, which carry proposals, replies and the shutdown signal) use it.

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
/// cluster; the queue it held a lock on is still structurally sound (every critical section
/// only moves items in and out of a `VecDeque`).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
