//! # paxraft
//!
//! The host side of paxraft: the command-line tool, and (as they land) the threaded runtime
//! and the HTML reports. The protocols live in [`paxraft_impls`], the stateright model in
//! [`paxraft_models`].

pub use paxraft_impls as impls;
pub use paxraft_models as models;

pub mod bench;
pub mod cli;
pub mod lincheck;
pub mod protocol;
pub mod report;
pub mod results;
pub mod runtime;
pub mod simulate;
pub mod zoo;

/// The message of a caught panic (`catch_unwind`'s payload), for reports: replica threads in
/// the runtime, protocol assertions in the fault-schedule executor, stages of the tour.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
