//! The stateright model of a cluster of any [`Replica`], with clients and faults.
//!
//! One concern per file, read in this order, like stateright's own examples: the
//! configuration ([`ModelConfig`]), the service whose workload its clients run ([`service`]:
//! the key-value store or the lock service), the messages and timers
//! ([`Msg`], [`Timer`]), the actors ([`Node`]; with the lock service, a storage actor that
//! checks fencing tokens), the server host (a replica, the key-value store behind client
//! sessions, and the durable image it saves through stateright's `Storage`; the host checks
//! it records, [`HostChecks`]; crashes between two effects of a step), the clients
//! ([`ClientState`]), the history they record for the linearizability tester
//! ([`History`]), and here the bounds and [`actors`], the actor model without properties
//! ([`fn@crate::build`] adds them; this module knows nothing of them).
//!
//! States are kept compact, because stateright keeps every state of its BFS queue whole and
//! shares only what sits behind an `Arc`: the large parts that rarely change are shared and
//! hashed once ([`Hashed`]: the durable image, the history), a message's payload is shared
//! ([`Msg`]), and a server's state is boxed so that small actors' states stay small
//! ([`NodeState`]). `models/tests/state_size.rs` prints where a state's bytes go; the
//! README's checker section has the breakdown.

use std::fmt::Debug;
use std::sync::Arc;

use paxraft_impls::replica::TERMS_NEVER_DECREASE;
use paxraft_impls::sm::{KvOp, Request};
use paxraft_impls::{Invariant, NodeId, Out, Replica, StepCheck};
use stateright::actor::{ActorModel, ActorModelState, Id, LossyNetwork, Network};

mod actor;
mod client;
mod config;
mod hashed;
mod history;
mod msg;
mod server;
pub mod service;

pub use actor::{Node, NodeState, StorageState};
pub use client::{ClientState, MAX_PIPELINE};
pub use config::{ConfigError, ModelConfig, NetworkKind, MAX_CHANGES};
pub use hashed::Hashed;
use history::{record_in, record_out};
pub use history::{History, HistoryLog, KvSpec};
pub use msg::{Answer, Msg, Timer};
pub(crate) use server::{with_now, with_tear, Tear};
pub use server::{HostCheck, HostChecks, Saved, ServerState, Storage};
pub use service::{Service, ServiceSpec};

/// The command the model replicates: an op of the store (keys or locks) with its session
/// data. The runtime's key-value command too: hosts share replica types.
pub type Cmd = Request<KvOp>;

type ModelOut<R> = stateright::actor::Out<Node<R>>;

/// What properties and bounds need besides the state: the configuration and the protocol's
/// cluster invariants (fetched once, not per state).
#[derive(Clone)]
pub struct Setup<R: Replica<Cmd>> {
    /// The configuration.
    pub cfg: ModelConfig,
    /// The protocol's cluster invariants.
    pub cluster_invariants: Vec<Invariant<paxraft_impls::ClusterCheck<R>>>,
    /// The protocol's step invariants (a violation is recorded in [`ServerState::checks`]).
    pub step_invariants: Vec<Invariant<StepCheck<R>>>,
}

impl<R: Replica<Cmd>> Setup<R> {
    /// The host check a failure of step invariant `k` records. A step invariant named like
    /// the host's own term check is that property, checked within a step as well: it is
    /// recorded as [`HostCheck::Terms`] (and has no property of its own).
    pub fn step_check(&self, k: usize) -> HostCheck {
        if self.step_invariants[k].name == TERMS_NEVER_DECREASE {
            HostCheck::Terms
        } else {
            HostCheck::Step(k)
        }
    }
}

impl<R: Replica<Cmd>> Debug for Setup<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").field("cfg", &self.cfg).finish()
    }
}

/// The model of a cluster of `R`.
pub type ClusterModel<R> = ActorModel<Node<R>, Setup<R>, History>;
/// One state of it.
pub type ClusterState<R> = ActorModelState<Node<R>, History>;

/// The live servers' states (crashed ones excluded), by index.
pub(crate) fn live_servers<'a, R: Replica<Cmd>>(
    setup: &Setup<R>,
    state: &'a ClusterState<R>,
) -> impl Iterator<Item = (usize, &'a ServerState<R>)> + 'a {
    let n = setup.cfg.servers;
    state.actor_states[..n]
        .iter()
        .enumerate()
        .filter(move |(i, _)| !state.crashed[*i])
        .filter_map(|(i, s)| s.server().map(|s| (i, s)))
}

/// Every server's state, crashed ones included (their host state is what they saved).
pub fn all_servers<'a, R: Replica<Cmd>>(
    setup: &Setup<R>,
    state: &'a ClusterState<R>,
) -> impl Iterator<Item = &'a ServerState<R>> + 'a {
    state.actor_states[..setup.cfg.servers]
        .iter()
        .filter_map(|s| s.server())
}

pub(crate) fn within_boundary<R: Replica<Cmd>>(setup: &Setup<R>, state: &ClusterState<R>) -> bool {
    let cfg = &setup.cfg;
    if state.network.len() > cfg.max_in_flight {
        return false;
    }
    if cfg.max_losses.is_some_and(|max| losses_used(state) > max) {
        return false;
    }
    // Clients do not crash (their retries are the model of a client that gives up), nor
    // does the lock service's storage.
    if state.crashed[cfg.servers..].iter().any(|&c| c) {
        return false;
    }
    let over_term = state.actor_states[..cfg.servers]
        .iter()
        .filter_map(|a| a.server())
        .any(|s| s.replica.status().term > cfg.max_term);
    !over_term && crashes_used(cfg, state) <= cfg.max_crashes
}

/// Call `f` with the replicas the protocol's cluster invariants are checked over: the live
/// ones and, for each crashed server, the replica it would boot as from its durable image
/// (what its durable log and vote still say while it is down).
pub(crate) fn with_invariant_view<R: Replica<Cmd>, T>(
    setup: &Setup<R>,
    state: &ClusterState<R>,
    f: impl FnOnce(&[&R]) -> T,
) -> T {
    let n = setup.cfg.servers;
    let crashed = state.crashed[..n].iter().any(|&c| c);
    // Most states have no server down: no members list, no boot.
    let members: Vec<NodeId> = if crashed {
        setup.cfg.initial_voters()
    } else {
        Vec::new()
    };
    let rebooted: Vec<R> = (0..n)
        .filter(|&i| crashed && state.crashed[i])
        .filter_map(|i| {
            let saved = state.actor_storages.get(i)?.as_ref()?;
            let mut out = Out::<R, Cmd>::new();
            Some(R::boot(
                NodeId(i as u8),
                &members,
                Some(&saved.durable),
                &setup.cfg.protocol,
                &mut out,
            ))
        })
        .collect();
    let view: Vec<&R> = live_servers(setup, state)
        .map(|(_, x)| &x.replica)
        .chain(&rebooted)
        .collect();
    f(&view)
}

/// Crashes a run has used: every restart so far, plus the servers down now.
pub(crate) fn crashes_used<R: Replica<Cmd>>(cfg: &ModelConfig, state: &ClusterState<R>) -> usize {
    (0..cfg.servers)
        .map(|i| {
            let restarts = state.actor_states[i]
                .server()
                .map_or(0, |s| s.saved.restarts);
            usize::from(restarts) + usize::from(state.crashed[i])
        })
        .sum()
}

/// Messages lost so far: sent, not delivered, and no longer in the network (counted only
/// under a loss budget).
pub(crate) fn losses_used<R: Replica<Cmd>>(state: &ClusterState<R>) -> usize {
    usize::from(state.history.undelivered).saturating_sub(state.network.len())
}

/// The actor model of `cfg` with no boundary and no properties: what
/// [`crate::checked::CheckModel`] wraps (it applies the bounds itself, as visible cuts).
pub fn actors<R: Replica<Cmd>>(cfg: &ModelConfig) -> ClusterModel<R> {
    // Every server boots with the initial voters; the others are spares until a change.
    let members: Arc<Vec<NodeId>> = Arc::new(cfg.initial_voters());
    let changes = Arc::new(cfg.changes.clone());
    let setup = Setup {
        cfg: cfg.clone(),
        cluster_invariants: R::cluster_invariants(),
        step_invariants: R::step_invariants(),
    };
    let step_invariants = Arc::new(
        (0..setup.step_invariants.len())
            .map(|k| (setup.step_check(k), setup.step_invariants[k].check))
            .collect::<Vec<_>>(),
    );
    let protocol = Arc::new(cfg.protocol.clone());
    let network = match cfg.network {
        NetworkKind::Unordered => Network::new_unordered_nonduplicating([]),
        NetworkKind::Duplicating => Network::new_unordered_duplicating([]),
        NetworkKind::Ordered => Network::new_ordered([]),
    };
    // The lock service's storage is the actor after the clients.
    let storage = (cfg.service == Service::Lock).then(|| Id::from(cfg.servers + cfg.clients));
    ActorModel::new(setup, History::new(cfg))
        .actors((0..cfg.servers).map(|_| Node::Server {
            members: members.clone(),
            cfg: protocol.clone(),
            step_invariants: step_invariants.clone(),
            session_timeout: cfg.service.session_timeout(),
            changes: changes.clone(),
            fold_lapse: cfg.folds_lapse(),
        }))
        .actors((0..cfg.clients).map(|c| Node::Client {
            servers: cfg.servers as u8,
            ops: Arc::new((0..cfg.ops).map(|k| cfg.op(c, k)).collect()),
            max_retries: cfg.max_retries,
            pipeline: cfg.pipeline.clamp(1, MAX_PIPELINE) as u8,
            storage,
        }))
        .actors(storage.map(|_| Node::Storage {
            cfg: protocol.clone(),
        }))
        .init_network(network)
        .lossy_network(if cfg.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        })
        .max_crashes(cfg.max_crashes)
        .record_msg_out(record_out::<R>)
        .record_msg_in(record_in::<R>)
}
