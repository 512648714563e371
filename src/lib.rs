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
pub mod report;
pub mod runtime;
pub mod simulate;
pub mod zoo;
