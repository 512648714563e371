//! The properties every model is checked against, named in plain words.
//!
//! Every always-property has a sometimes-property that shows the states it constrains are
//! reached: a model that can do nothing would satisfy every always-property, and fails
//! loudly here instead of passing.
//!
//! | always                         | shown reachable by                                    |
//! |--------------------------------|-------------------------------------------------------|
//! | linearizable                   | a client op is answered                               |
//! | state machine safety           | a command is committed on every server                |
//! | applied prefix never shrinks   | a command is committed on every server                |
//! | terms never decrease           | a leader is elected; a later term's election starts   |
//! |                                | after a commit                                        |
//! | the protocol's invariants      | the same two                                          |
//! | (with crashes)                 | a server recovers and catches up; a server crashes    |
//! |                                | between two effects of a step                         |
//! | reads served from applied      | a read is served without the log; (with follower      |
//! | state (reads without the log)  | reads) a follower serves a read; (with leases) a      |
//! |                                | leader serves a read under its lease, with no round   |
//! | (lock service) the lock        | a lock passes to a second owner after the first's     |
//! | history is linearizable        | session expired                                       |
//! | (lock service) storage accepts | storage refuses a stale holder's write                |
//! | writes in token order          |                                                       |
//! | linearizable (with a cap on    | a leader at its cap refuses a proposal busy           |
//! | uncommitted commands)          |                                                       |
//! | (snapshots) snapshots hold     | a lagging server restores a peer's snapshot; (with    |
//! | only committed slots; servers  | crashes) a server restarts from its snapshot          |
//! | at one applied point hold one  |                                                       |
//! | state                          |                                                       |
//!
//! With the lock service ([`crate::model::Service::Lock`]) the clients' history is a lock
//! history, checked against [`crate::model::ServiceSpec`] (the clean lock service plus
//! session expiry) under its own name, and the storage the locks protect is checked too.
//! Three deeper milestones are reported as *coverage* ([`names::COVERAGE`]), not required:
//! every client gets every reply, an op issued after another was answered is answered
//! (real-time order), and a leader change happens after a commit. They say how far the
//! bounds reached; with PreVote on, Raft needs about 16 actions for the last two.
//!
//! State machine safety compares what every server's host applied, no-ops included (a slot
//! committed as a no-op on one server and as a command on another is a conflict), crashed
//! servers included. The protocol's cluster invariants see the live replicas and, for each
//! crashed server, the replica its durable image would boot as.

use paxraft_impls::{Replica, Role, Slot};
use stateright::{Model, Property};

use crate::model::{
    all_servers, live_servers, with_invariant_view, ClusterModel, ClusterState, Cmd, HostCheck,
    ServerState, Setup,
};

/// A model whose states are (or wrap) cluster states: the actor model the fault-schedule
/// search steps ([`ClusterModel`]) and the bounded model the exhaustive checker explores
/// ([`crate::checked::CheckModel`]). The properties are written once against this view.
pub trait ClusterView: Model + Sized {
    /// The protocol.
    type R: Replica<Cmd>;
    /// The configuration and the protocol's invariants.
    fn setup(&self) -> &Setup<Self::R>;
    /// The cluster state inside a model state.
    fn cluster(state: &Self::State) -> &ClusterState<Self::R>;
}

impl<R: Replica<Cmd>> ClusterView for ClusterModel<R> {
    type R = R;
    fn setup(&self) -> &Setup<R> {
        &self.cfg
    }
    fn cluster(state: &ClusterState<R>) -> &ClusterState<R> {
        state
    }
}

/// Plain-words property names.
pub mod names {
    /// The clients' history is linearizable (key-value semantics).
    pub const LINEARIZABLE: &str = "linearizable";
    /// No two servers apply different commands in the same slot.
    pub const SAFETY: &str = "state machine safety";
    /// What a server applied is never lost or changed, and commits come in slot order.
    pub const PREFIX: &str = "applied prefix never shrinks";
    /// Terms (ballot rounds) never go back, across restarts too.
    pub const TERMS: &str = paxraft_impls::replica::TERMS_NEVER_DECREASE;
    /// Some replica becomes leader.
    pub const LEADER: &str = "a leader is elected";
    /// Some command is applied by every server.
    pub const COMMITTED_EVERYWHERE: &str = "a command is committed on every server";
    /// Every client received a reply to each of its ops.
    pub const ALL_REPLIES: &str = "every client gets every reply";
    /// A leader of a later term exists after a command was committed.
    pub const LEADER_CHANGE: &str = "a leader change happens after a commit";
    /// A server campaigns (or leads) in a term above the one in which a command was first
    /// committed: the election restriction is exercised against a committed entry.
    pub const LATER_TERM: &str = "a later term's election starts after a commit";
    /// An op that a client issued after its previous op was answered is answered too: the
    /// history has real-time order for the linearizability tester to check.
    pub const REAL_TIME: &str = "an op issued after another was answered is answered";
    /// Some client op was answered.
    pub const ANSWERED: &str = "a client op is answered";
    /// Milestones reported as coverage, not required: how far the bounds reached. The
    /// required sometimes-properties are the cheapest states that make each always-property
    /// non-vacuous; these deeper ones say whether the bounds also reached real-time order,
    /// a completed leader change and a finished workload.
    pub const COVERAGE: &[&str] = &[ALL_REPLIES, REAL_TIME, LEADER_CHANGE];
    /// A restarted server has caught up with the most advanced one.
    pub const RECOVERS: &str = "a server recovers and catches up";
    /// A server crashed part-way through the effects of one step (after some of its sends,
    /// persists or commits were carried out and before the rest).
    pub const CRASHED_MID_STEP: &str = "a server crashes between two effects of a step";
    /// Every read made ready without the log was made ready at a slot its replica had
    /// committed, so the host answered it from state that includes the read index.
    pub const READS_FROM_APPLIED: &str = paxraft_impls::driver::READS_SERVED_FROM_APPLIED;
    /// Some read was answered without going through the log.
    pub const READ_SERVED: &str = "a read is served without the log";
    /// Some follower answered a read itself (with follower reads on).
    pub const FOLLOWER_READ: &str = "a follower serves a read";
    /// Some leader of several servers answered a read in the very step it arrived, with no
    /// confirmation round: under its lease (with leases on).
    pub const LEASE_READ: &str = "a leader serves a read under its lease, with no round";
    /// The lock service's clients' history is linearizable against the lock service with
    /// expiring sessions: holders exclusive among live sessions, only a holder releases,
    /// tokens count acquisitions, an expired session never acts again.
    pub const LOCK_LINEARIZABLE: &str = "the lock history is linearizable";
    /// No replica keeps a snapshot past its commit point or hands its host one to restore
    /// past it, and every snapshot decodes.
    pub const SNAPSHOTS_COMMITTED: &str = paxraft_impls::driver::SNAPSHOTS_HOLD_COMMITTED;
    /// Two servers whose state machines applied the same slots hold the same state, client
    /// sessions included (the state machine is deterministic): what a snapshot carries is
    /// all of it.
    pub const SAME_STATE: &str = "servers at one applied point hold one state";
    /// A server whose state machine lagged took a peer's snapshot in its place.
    pub const SNAPSHOT_INSTALLED: &str = "a lagging server restores a peer's snapshot";
    /// A server restarted from a snapshot it had kept.
    pub const SNAPSHOT_RESTART: &str = "a server restarts from its snapshot";
    /// The storage never accepted a write whose token is older than one it accepted before.
    pub const STORAGE_IN_ORDER: &str = "storage accepts writes in token order";
    /// A client acquired the lock with a higher token than another client got, and the
    /// other's session expired: the lock passed on from an expired holder.
    pub const LOCK_HANDOVER: &str =
        "a lock passes to a second owner after the first's session expired";
    /// The storage refused a write: a holder that lost its lock wrote with its old token.
    pub const STALE_WRITE_REFUSED: &str = "storage refuses a stale holder's write";
    /// With membership changes: some server follows a configuration other than the one the
    /// cluster booted with (the states "one configuration change at a time" guards).
    pub const CONFIG_CHANGED: &str = "a membership change takes effect";
    /// With membership changes: a leader answers the operator that a change is committed
    /// (the states a new configuration's quorums decide).
    pub const CONFIG_COMMITTED: &str = "a membership change is committed";
    /// With a transfer among the changes: the old leader hears from its target as leader
    /// (the states "leadership goes only to a caught-up target" guards).
    pub const TRANSFERRED: &str = "a leadership transfer completes";
    /// Sometimes, with a cap on uncommitted commands below the clients' count: a leader at
    /// the cap hands a proposal back busy (which "a client op is answered" then shows is
    /// retried to an answer, with the history linearizable).
    pub const REFUSED_BUSY: &str = "a leader at its cap refuses a proposal busy";
    /// With a cap on uncommitted commands below the clients' count: no leader took more of a
    /// proposal than [`Config::admits`](paxraft_impls::Config::admits) of what it held
    /// ([`Status::uncommitted`](paxraft_impls::Status)) allowed, so a leader that cannot
    /// commit holds a bounded log (rule 3 of the effect contract). Zoo bugs F1 and F2.
    pub const WITHIN_CAP: &str = "leaders take commands only under their cap";
}

type Cond<M> = fn(&M, &<M as Model>::State) -> bool;

fn linearizable<M: ClusterView>(_: &M, s: &M::State) -> bool {
    M::cluster(s).history.consistent
}

/// What one server's host applied, by slot: commands and the no-ops it learned committed.
fn applied_slots<R: Replica<Cmd>>(
    x: &ServerState<R>,
) -> impl Iterator<Item = (Slot, Option<&Cmd>)> + '_ {
    let cmds = x.saved.applied.iter().map(|(k, c)| (*k, Some(c)));
    let noops = x.saved.noops.iter().map(|&k| (k, None));
    cmds.chain(noops)
}

/// No two servers applied different entries in one slot. No-ops count as entries: a slot one
/// server committed as a no-op and another applied as a command is a conflict too.
fn state_machine_safety<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let mut seen: std::collections::BTreeMap<Slot, Option<&Cmd>> = Default::default();
    for x in all_servers(m.setup(), M::cluster(s)) {
        for (slot, entry) in applied_slots(x) {
            if *seen.entry(slot).or_insert(entry) != entry {
                return false;
            }
        }
    }
    true
}

/// No server's host recorded a failure of any of `checks`.
fn passed<M: ClusterView>(m: &M, s: &M::State, checks: &[HostCheck]) -> bool {
    all_servers(m.setup(), M::cluster(s)).all(|x| checks.iter().all(|&c| !x.checks.failed(c)))
}

fn applied_prefix<M: ClusterView>(m: &M, s: &M::State) -> bool {
    passed(m, s, &[HostCheck::Prefix, HostCheck::Order])
}

fn terms<M: ClusterView>(m: &M, s: &M::State) -> bool {
    passed(m, s, &[HostCheck::Terms])
}

/// The protocol's cluster invariant `K` over every server: the live replicas, and for each
/// crashed server the replica it would boot as from its durable image (a crashed server's
/// durable log and vote still constrain the cluster: leader completeness and log matching
/// hold over them too).
fn cluster_invariant<M: ClusterView, const K: usize>(m: &M, s: &M::State) -> bool {
    let setup = m.setup();
    with_invariant_view(setup, M::cluster(s), |replicas| {
        (setup.cluster_invariants[K].check)(replicas).is_ok()
    })
}

fn step_invariant<M: ClusterView, const K: usize>(m: &M, s: &M::State) -> bool {
    passed(m, s, &[HostCheck::Step(K)])
}

/// The configuration the model's cluster boots with.
fn initial_config<M: ClusterView>(m: &M) -> paxraft_impls::Membership {
    paxraft_impls::Membership::voters(paxraft_impls::NodeSet::of(m.setup().cfg.initial_voters()))
}

fn config_changed<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let initial = initial_config(m);
    live_servers(m.setup(), M::cluster(s)).any(|(_, x)| x.replica.status().config != initial)
}

/// Some server answered one of the operator's changes of kind `transfer` (or not) as done.
fn change_done<M: ClusterView>(m: &M, s: &M::State, transfer: bool) -> bool {
    let changes = &m.setup().cfg.changes;
    all_servers(m.setup(), M::cluster(s)).any(|x| {
        changes.iter().enumerate().any(|(k, c)| {
            x.changes_done & (1 << k) != 0
                && matches!(c, paxraft_impls::Change::Transfer(_)) == transfer
        })
    })
}

fn config_committed<M: ClusterView>(m: &M, s: &M::State) -> bool {
    change_done(m, s, false)
}

fn transferred<M: ClusterView>(m: &M, s: &M::State) -> bool {
    change_done(m, s, true)
}

fn leader_elected<M: ClusterView>(m: &M, s: &M::State) -> bool {
    live_servers(m.setup(), M::cluster(s)).any(|(_, x)| x.replica.status().role == Role::Leader)
}

/// The boot configuration's voters all applied the first command (spares need not: a
/// change may never add them).
fn committed_everywhere<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let voters = m.setup().cfg.initial_voters().len();
    let mut servers = all_servers(m.setup(), M::cluster(s)).take(voters);
    let Some(first) = servers
        .next()
        .and_then(|x| x.saved.applied.first().cloned())
    else {
        return false;
    };
    // A server that restored a snapshot covering the slot holds the command in its state.
    servers.all(|x| x.saved.applied.contains(&first) || x.saved.applied_to >= first.0)
}

fn all_replies<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let ops = m.setup().cfg.ops as u8;
    M::cluster(s)
        .history
        .invoked
        .iter()
        .all(|&(inv, ret)| inv == ops && ret == ops)
}

fn answered<M: ClusterView>(_: &M, s: &M::State) -> bool {
    M::cluster(s)
        .history
        .invoked
        .iter()
        .any(|&(_, ret)| ret >= 1)
}

fn real_time<M: ClusterView>(_: &M, s: &M::State) -> bool {
    M::cluster(s)
        .history
        .invoked
        .iter()
        .any(|&(_, ret)| ret >= 2)
}

/// The term in which some host first applied a command, if any did.
fn first_commit_term<R: Replica<Cmd>>(setup: &Setup<R>, state: &ClusterState<R>) -> Option<u64> {
    all_servers(setup, state)
        .map(|x| x.saved.first_commit_term)
        .filter(|&t| t > 0)
        .min()
}

fn later_term<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let (setup, state) = (m.setup(), M::cluster(s));
    let Some(first) = first_commit_term(setup, state) else {
        return false;
    };
    live_servers(setup, state).any(|(_, x)| {
        let st = x.replica.status();
        matches!(st.role, Role::Candidate | Role::Leader) && st.term > first
    })
}

fn leader_change<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let (setup, state) = (m.setup(), M::cluster(s));
    let Some(first) = first_commit_term(setup, state) else {
        return false;
    };
    live_servers(setup, state).any(|(_, x)| {
        let st = x.replica.status();
        st.role == Role::Leader && st.term > first
    })
}

fn recovers<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let (setup, state) = (m.setup(), M::cluster(s));
    let most = all_servers(setup, state)
        .filter_map(|x| x.saved.applied.last().map(|e| e.0))
        .max()
        .unwrap_or(0);
    most > 0 && live_servers(setup, state).any(|(_, x)| x.saved.restarts > 0 && x.reported >= most)
}

/// Whether the clients can overrun the cap: more of them than it admits, with requests.
fn capped<R: Replica<Cmd>>(setup: &Setup<R>) -> bool {
    setup.cfg.protocol.max_uncommitted < setup.cfg.clients && setup.cfg.ops > 0
}

fn within_cap<M: ClusterView>(m: &M, s: &M::State) -> bool {
    passed(m, s, &[HostCheck::Cap])
}

fn reads_from_applied<M: ClusterView>(m: &M, s: &M::State) -> bool {
    passed(m, s, &[HostCheck::ReadAhead])
}

fn read_served<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.served_reads != 0)
}

fn follower_read<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.served_reads & 2 != 0)
}

fn refused_busy<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.refused_busy)
}

fn lease_read<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.served_reads & 4 != 0)
}

/// The lock service's storage, if the model has one (the actor after the clients).
fn storage<'a, M: ClusterView>(m: &M, s: &'a M::State) -> Option<&'a crate::model::StorageState> {
    let cfg = &m.setup().cfg;
    M::cluster(s)
        .actor_states
        .get(cfg.servers + cfg.clients)
        .and_then(|a| a.storage())
}

fn storage_in_order<M: ClusterView>(m: &M, s: &M::State) -> bool {
    storage(m, s).map_or(true, |st| st.accepted.windows(2).all(|w| w[0] <= w[1]))
}

fn stale_write_refused<M: ClusterView>(m: &M, s: &M::State) -> bool {
    storage(m, s).is_some_and(|st| st.refused > 0)
}

fn lock_handover<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let (setup, state) = (m.setup(), M::cluster(s));
    let n = setup.cfg.servers;
    let clients: Vec<(u64, u64)> = state.actor_states[n..n + setup.cfg.clients]
        .iter()
        .enumerate()
        .filter_map(|(c, a)| a.client().map(|x| ((n + c) as u64, x.token)))
        .filter(|&(_, token)| token > 0)
        .collect();
    clients.iter().any(|&(first, t1)| {
        clients.iter().any(|&(_, t2)| t2 > t1)
            && all_servers(setup, state).any(|x| x.saved.sm.is_expired(first))
    })
}

fn snapshots_committed<M: ClusterView>(m: &M, s: &M::State) -> bool {
    passed(m, s, &[HostCheck::Snapshot])
}

fn same_state<M: ClusterView>(m: &M, s: &M::State) -> bool {
    let servers: Vec<_> = all_servers(m.setup(), M::cluster(s)).collect();
    servers.iter().enumerate().all(|(i, a)| {
        servers[i + 1..].iter().all(|b| {
            a.saved.applied_to != b.saved.applied_to
                || a.saved.applied_to == 0
                || a.saved.sm == b.saved.sm
        })
    })
}

fn snapshot_installed<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.saved.restores & 1 != 0)
}

fn snapshot_restart<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.saved.restores & 2 != 0)
}

fn crashed_mid_step<M: ClusterView>(m: &M, s: &M::State) -> bool {
    all_servers(m.setup(), M::cluster(s)).any(|x| x.saved.torn_crashes > 0)
}

/// Up to this many protocol invariants of each kind get a property of their own.
pub(crate) const MAX_PROTOCOL_INVARIANTS: usize = 8;

fn cluster_fn<M: ClusterView>(k: usize) -> Cond<M> {
    [
        cluster_invariant::<M, 0>,
        cluster_invariant::<M, 1>,
        cluster_invariant::<M, 2>,
        cluster_invariant::<M, 3>,
        cluster_invariant::<M, 4>,
        cluster_invariant::<M, 5>,
        cluster_invariant::<M, 6>,
        cluster_invariant::<M, 7>,
    ][k]
}

fn step_fn<M: ClusterView>(k: usize) -> Cond<M> {
    [
        step_invariant::<M, 0>,
        step_invariant::<M, 1>,
        step_invariant::<M, 2>,
        step_invariant::<M, 3>,
        step_invariant::<M, 4>,
        step_invariant::<M, 5>,
        step_invariant::<M, 6>,
        step_invariant::<M, 7>,
    ][k]
}

/// Every property of a model of `setup`.
pub fn properties<M: ClusterView>(setup: &Setup<M::R>) -> Vec<Property<M>> {
    use names::*;
    assert!(
        setup.cluster_invariants.len() <= MAX_PROTOCOL_INVARIANTS
            && setup.step_invariants.len() <= MAX_PROTOCOL_INVARIANTS,
        "at most {MAX_PROTOCOL_INVARIANTS} protocol invariants of each kind"
    );
    let lock = setup.cfg.service == crate::model::Service::Lock;
    let mut p = vec![
        Property::always(
            if lock {
                LOCK_LINEARIZABLE
            } else {
                LINEARIZABLE
            },
            linearizable::<M>,
        ),
        Property::always(SAFETY, state_machine_safety::<M>),
        Property::always(PREFIX, applied_prefix::<M>),
        Property::always(TERMS, terms::<M>),
    ];
    let reads = setup.cfg.protocol.reads != paxraft_impls::ReadMode::Log
        && <M::R as Replica<Cmd>>::READS
        && setup.cfg.ops > 0
        && setup.cfg.clients > 0;
    if lock {
        p.push(Property::always(STORAGE_IN_ORDER, storage_in_order::<M>));
    }
    if reads {
        p.push(Property::always(
            READS_FROM_APPLIED,
            reads_from_applied::<M>,
        ));
    }
    // Two clients' requests at one leader before either commits overrun a cap of 1: below
    // that the cap never binds (its sometimes-property, REFUSED_BUSY, is pushed likewise).
    if capped(setup) {
        p.push(Property::always(WITHIN_CAP, within_cap::<M>));
    }
    let snapshots = setup.cfg.protocol.snapshots.is_some() && <M::R as Replica<Cmd>>::SNAPSHOTS;
    if snapshots {
        p.push(Property::always(
            SNAPSHOTS_COMMITTED,
            snapshots_committed::<M>,
        ));
        p.push(Property::always(SAME_STATE, same_state::<M>));
    }
    let mut taken: Vec<&str> = p.iter().map(|p| p.name).collect();
    for (k, inv) in setup.cluster_invariants.iter().enumerate() {
        if !taken.contains(&inv.name) {
            taken.push(inv.name);
            p.push(Property::always(inv.name, cluster_fn::<M>(k)));
        }
    }
    for (k, inv) in setup.step_invariants.iter().enumerate() {
        // A step invariant recorded as a host check is that check's property already.
        if setup.step_check(k) == HostCheck::Step(k) && !taken.contains(&inv.name) {
            taken.push(inv.name);
            p.push(Property::always(inv.name, step_fn::<M>(k)));
        }
    }
    p.push(Property::sometimes(LEADER, leader_elected::<M>));
    if setup.cfg.ops > 0 && setup.cfg.clients > 0 {
        p.push(Property::sometimes(
            COMMITTED_EVERYWHERE,
            committed_everywhere::<M>,
        ));
        p.push(Property::sometimes(ANSWERED, answered::<M>));
        p.push(Property::sometimes(ALL_REPLIES, all_replies::<M>));
        if setup.cfg.ops >= 2 {
            p.push(Property::sometimes(REAL_TIME, real_time::<M>));
        }
    }
    // One server without crashes never changes leader; nor does anything within term 1.
    if setup.cfg.max_term >= 2 && (setup.cfg.servers > 1 || setup.cfg.max_crashes > 0) {
        p.push(Property::sometimes(LATER_TERM, later_term::<M>));
        p.push(Property::sometimes(LEADER_CHANGE, leader_change::<M>));
    }
    if setup.cfg.max_crashes > 0 {
        p.push(Property::sometimes(RECOVERS, recovers::<M>));
    }
    if reads {
        p.push(Property::sometimes(READ_SERVED, read_served::<M>));
        if setup.cfg.protocol.follower_reads && setup.cfg.servers > 1 {
            p.push(Property::sometimes(FOLLOWER_READ, follower_read::<M>));
        }
        if setup.cfg.timed() && setup.cfg.servers > 1 {
            p.push(Property::sometimes(LEASE_READ, lease_read::<M>));
        }
    }
    // A handover needs two clients (the second after the first); the workload makes
    // clients 0 and 1 contend.
    if lock && setup.cfg.clients >= 2 && setup.cfg.ops > 0 {
        p.push(Property::sometimes(LOCK_HANDOVER, lock_handover::<M>));
        p.push(Property::sometimes(
            STALE_WRITE_REFUSED,
            stale_write_refused::<M>,
        ));
    }
    if snapshots && setup.cfg.servers > 1 {
        p.push(Property::sometimes(
            SNAPSHOT_INSTALLED,
            snapshot_installed::<M>,
        ));
    }
    if snapshots && setup.cfg.max_crashes > 0 {
        p.push(Property::sometimes(SNAPSHOT_RESTART, snapshot_restart::<M>));
    }
    if capped(setup) {
        p.push(Property::sometimes(REFUSED_BUSY, refused_busy::<M>));
    }
    if setup.cfg.max_crashes > 0 && setup.cfg.crash_mid_step {
        p.push(Property::sometimes(CRASHED_MID_STEP, crashed_mid_step::<M>));
    }
    if <M::R as Replica<Cmd>>::CHANGES {
        let changes = &setup.cfg.changes;
        let is_transfer =
            |c: &&paxraft_impls::Change| matches!(c, paxraft_impls::Change::Transfer(_));
        if changes.iter().any(|c| !is_transfer(&c)) {
            p.push(Property::sometimes(CONFIG_CHANGED, config_changed::<M>));
            p.push(Property::sometimes(CONFIG_COMMITTED, config_committed::<M>));
        }
        if changes.iter().any(|c| is_transfer(&c)) {
            p.push(Property::sometimes(TRANSFERRED, transferred::<M>));
        }
    }
    p
}
