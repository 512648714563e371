//! Symmetry reduction: cluster states that differ only by the names of the servers are
//! explored once.
//!
//! stateright's own `Representative` for `ActorModelState` sorts *every* actor's state and
//! permutes them all, which does not fit this model: the clients are not interchangeable
//! (each has its own ops) and a server's state holds node ids (its own, votes, leader hints,
//! ballots), so raw states never sort alike. [`representative`] (handed to stateright's DFS
//! with `symmetry_fn`) instead
//!
//! 1. orders the servers by a key that holds no node id (role, term, log length, commit
//!    point, what the host applied, crashes, armed timers, messages in and out),
//! 2. among servers with equal keys tries every order (at most [`MAX_ORDERS`]), and
//! 3. renames the whole state through the chosen permutation with stateright's `Rewrite`
//!    for ids and the protocol's [`Replica::rename`] for what the replicas hold: every
//!    server's state, durable image and in-flight message, client targets and redirects.
//!
//! The representative is the renamed state with the smallest fingerprint, so two states
//! that are renamings of one another get the same one whenever the ties were enumerated.
//!
//! Soundness: stateright's DFS only *deduplicates* by the representative and keeps
//! exploring the original state, so a reported violation is always real. States are merged
//! only when one is a renaming of the other; this loses nothing when the model treats every
//! server alike. Two things do not, so with symmetry the search is an under-approximation
//! (use it to hunt bugs fast; the full search is the proof): a client's retry goes to the
//! *next* server by index, and a Paxos ballot's node id breaks ties between equal rounds.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use paxraft_impls::{NodeId, Renaming, Replica};
use stateright::actor::{ActorModelState, Envelope, Id, Network};

use crate::model::{ClusterState, Cmd, Hashed, Msg, NodeState, ServerState, Storage};

/// Most orders of tied servers tried per state (3 tied servers: 6).
pub const MAX_ORDERS: usize = 24;

fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// A key for server `i` that renaming leaves unchanged.
fn key<R: Replica<Cmd>>(s: &ClusterState<R>, i: usize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.crashed[i].hash(&mut h);
    if let Some(x) = s.actor_states[i].server() {
        let st = x.replica.status();
        (st.role, st.term, st.commit, st.last).hash(&mut h);
        (x.reported, x.known_commit, x.checks).hash(&mut h);
        (
            &x.saved.noops,
            x.saved.torn_crashes,
            &x.saved.applied,
            x.saved.term,
            x.saved.first_commit_term,
            x.saved.restarts,
        )
            .hash(&mut h);
    }
    s.timers_set[i].hash(&mut h);
    let id = Id::from(i);
    let (mut sent, mut received) = (0usize, 0usize);
    for e in s.network.iter_all() {
        sent += usize::from(e.src == id);
        received += usize::from(e.dst == id);
    }
    (sent, received).hash(&mut h);
    h.finish()
}

/// Every order of the servers (as `order[new] = old`) consistent with their keys, at most
/// [`MAX_ORDERS`] of them (past that, the sorted order alone).
fn orders(keys: &[u64]) -> Vec<Vec<usize>> {
    let mut sorted: Vec<usize> = (0..keys.len()).collect();
    sorted.sort_by_key(|&i| keys[i]);
    let mut out = vec![Vec::new()];
    let mut start = 0;
    while start < sorted.len() {
        let end = start
            + sorted[start..]
                .iter()
                .take_while(|&&i| keys[i] == keys[sorted[start]])
                .count();
        let group = &sorted[start..end];
        let perms = permutations(group);
        if out.len() * perms.len() > MAX_ORDERS {
            return vec![sorted];
        }
        out = out
            .iter()
            .flat_map(|prefix| {
                perms.iter().map(move |p| {
                    let mut v = prefix.clone();
                    v.extend_from_slice(p);
                    v
                })
            })
            .collect();
        start = end;
    }
    out
}

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for k in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(k);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

fn rename_saved<R: Replica<Cmd>>(saved: &Storage<R>, map: &Renaming) -> Storage<R> {
    let mut sv = (***saved).clone();
    R::rename_durable(&mut sv.durable, map);
    Arc::new(Hashed::new(sv))
}

fn rename_msg<R: Replica<Cmd>>(msg: &Msg<R::Msg>, map: &Renaming) -> Msg<R::Msg> {
    match msg {
        Msg::Peer(m) => {
            let mut m = (**m).clone();
            R::rename_msg(&mut m, map);
            Msg::Peer(Arc::new(m))
        }
        Msg::Redirect { seq, leader } => Msg::Redirect {
            seq: *seq,
            leader: leader.map(|l| map.id(l)),
        },
        other => other.clone(),
    }
}

/// `state` with server `order[new]` renamed `new`.
fn renamed<R: Replica<Cmd>>(s: &ClusterState<R>, n: usize, order: &[usize]) -> ClusterState<R> {
    let mut names = vec![NodeId(0); n];
    for (new, &old) in order.iter().enumerate() {
        names[old] = NodeId(new as u8);
    }
    let map = Renaming(&names);
    let id = |i: Id| -> Id {
        let i = usize::from(i);
        Id::from(if i < n { names[i].index() } else { i })
    };
    let total = s.actor_states.len();
    let from = |new: usize| if new < n { order[new] } else { new };

    let mut actor_states = Vec::with_capacity(total);
    let mut actor_storages = Vec::with_capacity(total);
    for new in 0..total {
        let old = from(new);
        match &*s.actor_states[old] {
            NodeState::Server(x) => {
                let mut replica = x.replica.clone();
                replica.rename(&map);
                let saved = rename_saved::<R>(&x.saved, &map);
                // The host's state and stateright's storage usually share one image.
                let storage = match &s.actor_storages[old] {
                    Some(st) if Arc::ptr_eq(st, &x.saved) => Some(saved.clone()),
                    Some(st) => Some(rename_saved::<R>(st, &map)),
                    None => None,
                };
                actor_states.push(Arc::new(NodeState::Server(Box::new(ServerState {
                    replica,
                    saved,
                    reported: x.reported,
                    known_commit: x.known_commit,
                    checks: x.checks,
                    // Read ids name clients and their requests, never servers.
                    reads: x.reads.clone(),
                    served_reads: x.served_reads,
                    // Empty: symmetry is refused with time.
                    deadlines: x.deadlines.clone(),
                    // Zero: symmetry is refused with membership changes.
                    changes_done: x.changes_done,
                    refused_busy: x.refused_busy,
                }))));
                actor_storages.push(storage);
            }
            NodeState::Storage(_) => {
                actor_states.push(s.actor_states[old].clone());
                actor_storages.push(s.actor_storages[old].clone());
            }
            NodeState::Client(c) => {
                let target = map.id(NodeId(c.target)).0;
                if target == c.target {
                    actor_states.push(s.actor_states[old].clone());
                } else {
                    let mut c = c.clone();
                    c.target = target;
                    actor_states.push(Arc::new(NodeState::Client(c)));
                }
                actor_storages.push(s.actor_storages[old].clone());
            }
        }
    }
    let env = |e: &Envelope<Msg<R::Msg>>| Envelope {
        src: id(e.src),
        dst: id(e.dst),
        msg: rename_msg::<R>(&e.msg, &map),
    };
    let network = match &s.network {
        Network::UnorderedNonDuplicating(m) => {
            Network::UnorderedNonDuplicating(m.iter().map(|(e, k)| (env(e), *k)).collect())
        }
        Network::UnorderedDuplicating(set, last) => {
            Network::UnorderedDuplicating(set.iter().map(env).collect(), last.as_ref().map(env))
        }
        Network::Ordered(map_) => Network::Ordered(
            map_.iter()
                .map(|(&(a, b), q)| {
                    (
                        (id(a), id(b)),
                        q.iter().map(|m| rename_msg::<R>(m, &map)).collect(),
                    )
                })
                .collect(),
        ),
    };
    ActorModelState {
        actor_states,
        network,
        timers_set: (0..total).map(|k| s.timers_set[from(k)].clone()).collect(),
        // The checked model's states keep no random choices (an empty vector).
        random_choices: (0..total)
            .filter_map(|k| s.random_choices.get(from(k)).cloned())
            .collect(),
        crashed: (0..total).map(|k| s.crashed[from(k)]).collect(),
        // Clients keep their names: the history is theirs alone.
        history: s.history.clone(),
        actor_storages,
    }
}

/// The representative of `state`'s class of server renamings (see the module docs). States
/// of a protocol that does not rename ([`Replica::RENAMES`] false) are their own
/// representative.
pub fn representative<R: Replica<Cmd>>(state: &ClusterState<R>) -> ClusterState<R> {
    let n = state
        .actor_states
        .iter()
        .take_while(|a| a.server().is_some())
        .count();
    if !R::RENAMES || n < 2 {
        return state.clone();
    }
    let keys: Vec<u64> = (0..n).map(|i| key(state, i)).collect();
    let mut best: Option<(u64, ClusterState<R>)> = None;
    let candidates = orders(&keys);
    let single = candidates.len() == 1;
    for order in candidates {
        let r = renamed(state, n, &order);
        if single {
            return r;
        }
        let fp = hash_of(&r);
        if best.as_ref().map_or(true, |(b, _)| fp < *b) {
            best = Some((fp, r));
        }
    }
    best.expect("at least one order").1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_enumerate_ties_only() {
        assert_eq!(orders(&[3, 1, 2]), vec![vec![1, 2, 0]]);
        let o = orders(&[5, 5, 1]);
        assert_eq!(o, vec![vec![2, 0, 1], vec![2, 1, 0]]);
        assert_eq!(orders(&[7, 7, 7]).len(), 6);
        // Too many ties: the sorted order alone.
        assert_eq!(orders(&[0; 5]).len(), 1);
    }
}
