//! # paxraft-impls
//!
//! Consensus protocols written as deterministic, sans-IO state machines behind one trait,
//! [`Replica`], plus the replicated state machines ([`sm`]) that hosts apply committed commands
//! to. Nothing here spawns a thread, reads a clock, opens a socket or draws a random number:
//! that is what lets the same code run under a model checker, a fault-schedule executor and a
//! threaded runtime.
//!
//! * [`replica`]: the trait, its effects and their contract.
//! * [`raft`]: Raft (Ongaro & Ousterhout, 2014) with PreVote and CheckQuorum.
//! * [`multipaxos`]: multi-Paxos (Lamport 2001; van Renesse & Altinbuken 2015) with a stable
//!   leader, leases and catch-up.
//! * [`membership`]: configurations (voters, learners, joint) and the changes operators ask for.
//! * [`lease`]: the leader lease both protocols' read paths share (diss. §6.4.1).
//! * [`unreplicated`]: no consensus, one node commits at once: the benchmarks' ceiling.
//! * [`sm`]: a key-value store and a lock service, behind client sessions.
//! * [`driver`]: a deterministic in-memory cluster for tests and scripted scenarios.
//! * [`sweep`]: the adversarial lease sweep over the driver (clock rates, waits, faults).
//! * [`script`]: scripted interaction tests over the driver, with golden outputs.
//! * [`bugs`]: the bug zoo's switches (active only with the `bug-zoo` feature).

#![warn(missing_docs)]

pub mod bugs;
pub mod driver;
pub mod lease;
pub mod membership;
pub mod multipaxos;
pub mod raft;
pub mod replica;
pub mod script;
pub mod sm;
pub mod sweep;
pub mod unreplicated;

pub use bugs::{Bug, BugSet};
pub use membership::{Change, ChangeError, ChangeId, ChangeMode, Membership, NodeSet};
pub use replica::Renaming;
pub use replica::{
    quorum, read_or_local, ClusterCheck, Command, Config, ConfigError, Effect, Effects, Fixed,
    Invariant, LocalReads, NodeId, Out, ReadId, ReadMode, Replica, Role, Slot, Snapshot,
    SnapshotData, SnapshotPolicy, Status, StepCheck, MAX_NODES,
};
