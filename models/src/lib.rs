//! # paxraft-models
//!
//! One stateright model of a cluster for *any* [`paxraft_impls::Replica`]: the very protocol
//! code that runs in the threaded runtime is explored here exhaustively.
//!
//! * [`model`]: servers (a replica, the key-value store behind client sessions, and the durable
//!   image its `Persist` effects build, kept in stateright's `Storage` and restored after a
//!   crash), clients (put / get / cas with unique `(client, seq)` ids, following redirects,
//!   retrying after timeouts, recording a history for stateright's linearizability tester),
//!   and the fault model (unordered, duplicating or ordered network; loss; crashes; timers
//!   that fire at any moment). With [`model::Service::Lock`] the clients run the lock
//!   service's workload instead (sessions that expire by log time, fencing tokens checked by
//!   a storage actor; see [`model::service`]).
//! * [`mod@build`]: the model with its properties ([`model`] and [`properties`] do not
//!   import each other: the model records each server's failed host checks as a typed
//!   [`model::HostChecks`], the properties read them).
//! * [`properties`]: the always-properties and the sometimes-properties that show each of
//!   them is not vacuous, named in plain words.
//! * [`checked`]: the model the exhaustive checker explores: bounds as visible cuts, depth
//!   in actions, crashes between two effects of one step.
//! * [`packed`]: a checked state as it waits to be expanded, in less memory than stateright's
//!   layout.
//! * [`mod@check`]: run BFS or DFS with progress, and summarise a verdict per property.
//! * [`render`]: counterexamples as message-sequence charts.
//! * [`symmetry`]: symmetry reduction (servers renamed) for the DFS checker.
//! * [`memory`]: bytes per unique state, from the process's growth while a check runs.
//! * [`mod@reference`]: a minimal single-decree Paxos model written directly in stateright, the
//!   yardstick the checker's speed is compared with.
//!
//! ```
//! use paxraft_impls::raft::Raft;
//! use paxraft_models::{check, Cmd, ModelConfig, SearchOptions};
//!
//! // One server, one client, one op: small enough for a doctest.
//! let cfg = ModelConfig { servers: 1, clients: 1, ..ModelConfig::default() };
//! let summary = check::<Raft<Cmd>>(&cfg, &SearchOptions::default(), std::time::Duration::from_millis(50), |_| {});
//! assert!(summary.passed(), "{:?}", summary.failures().collect::<Vec<_>>());
//! ```

#![warn(missing_docs)]

pub mod build;
pub mod check;
pub mod checked;
pub mod memory;
pub mod model;
pub mod packed;
pub mod properties;
pub mod reference;
pub mod render;
pub mod symmetry;

pub use build::build;
pub use check::{
    check, Checkable, Kind, Progress, SearchOptions, Status, Strategy, Summary, Verdict,
};
pub use model::{ClusterModel, ClusterState, Cmd, ConfigError, ModelConfig, NetworkKind};
pub use render::{Step, Trace};
