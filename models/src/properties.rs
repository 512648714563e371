//! The properties every model is checked against, named in plain words.
//!
//! Every always-property has a sometimes-property that shows the states it constrains are
//! reached: a model that can do nothing would satisfy every always-property, and fails
//! loudly here instead of passing.
//!
//! | always                         | shown reachable by                                    |
//! |--------------------------------|-------------------------------------------------------|
//! | linearizable                   | every client gets every reply                         |
//! | state machine safety           | a command is committed on every server                |
//! | applied prefix never shrinks   | a command is committed on every server                |
//! | terms never decrease           | a leader is elected; a leader change after a commit   |
//! | the protocol's invariants      | a leader is elected; a leader change after a commit   |
//! | (with crashes)                 | a server recovers and catches up                      |

use paxraft_impls::{Replica, Role, Slot};
use stateright::Property;

use crate::model::{
    all_servers, live_servers, ClusterModel, ClusterState, Cmd, Setup, BROKEN_ORDER, BROKEN_PREFIX,
    BROKEN_TERM, STEP_BASE,
};

/// Plain-words property names.
pub mod names {
    /// The clients' history is linearizable (key-value semantics).
    pub const LINEARIZABLE: &str = "linearizable";
    /// No two servers apply different commands in the same slot.
    pub const SAFETY: &str = "state machine safety";
    /// What a server applied is never lost or changed, and commits come in slot order.
    pub const PREFIX: &str = "applied prefix never shrinks";
    /// Terms (ballot rounds) never go back, across restarts too.
    pub const TERMS: &str = crate::model::TERMS_NEVER_DECREASE;
    /// Some replica becomes leader.
    pub const LEADER: &str = "a leader is elected";
    /// Some command is applied by every server.
    pub const COMMITTED_EVERYWHERE: &str = "a command is committed on every server";
    /// Every client received a reply to each of its ops.
    pub const ALL_REPLIES: &str = "every client gets every reply";
    /// A leader of a later term exists after a command was committed.
    pub const LEADER_CHANGE: &str = "a leader change happens after a commit";
    /// A restarted server has caught up with the most advanced one.
    pub const RECOVERS: &str = "a server recovers and catches up";
}

type Cond<R> = fn(&ClusterModel<R>, &ClusterState<R>) -> bool;

fn linearizable<R: Replica<Cmd>>(_: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    s.history.consistent
}

fn state_machine_safety<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    let logs: Vec<&[(Slot, Cmd)]> = all_servers(&m.cfg, s)
        .map(|x| x.saved.applied.as_slice())
        .collect();
    for (i, a) in logs.iter().enumerate() {
        for b in &logs[i + 1..] {
            // Both are sorted by slot: walk them together.
            let (mut x, mut y) = (a.iter().peekable(), b.iter().peekable());
            while let (Some(p), Some(q)) = (x.peek(), y.peek()) {
                match p.0.cmp(&q.0) {
                    std::cmp::Ordering::Less => {
                        x.next();
                    }
                    std::cmp::Ordering::Greater => {
                        y.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if p.1 != q.1 {
                            return false;
                        }
                        x.next();
                        y.next();
                    }
                }
            }
        }
    }
    true
}

fn no_flag<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>, mask: u32) -> bool {
    all_servers(&m.cfg, s).all(|x| x.broken & mask == 0)
}

fn applied_prefix<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    no_flag(m, s, BROKEN_PREFIX | BROKEN_ORDER)
}

fn terms<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    no_flag(m, s, BROKEN_TERM)
}

fn cluster_invariant<R: Replica<Cmd>, const K: usize>(
    m: &ClusterModel<R>,
    s: &ClusterState<R>,
) -> bool {
    let live: Vec<&R> = live_servers(&m.cfg, s).map(|(_, x)| &x.replica).collect();
    (m.cfg.cluster_invariants[K].check)(&live).is_ok()
}

fn step_invariant<R: Replica<Cmd>, const K: u32>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    no_flag(m, s, 1 << (STEP_BASE + K))
}

fn leader_elected<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    live_servers(&m.cfg, s).any(|(_, x)| x.replica.status().role == Role::Leader)
}

fn committed_everywhere<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    let mut servers = all_servers(&m.cfg, s);
    let Some(first) = servers
        .next()
        .and_then(|x| x.saved.applied.first().cloned())
    else {
        return false;
    };
    servers.all(|x| x.saved.applied.contains(&first))
}

fn all_replies<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    let ops = m.cfg.cfg.ops as u8;
    s.history
        .invoked
        .iter()
        .all(|&(inv, ret)| inv == ops && ret == ops)
}

fn leader_change<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    let Some(first) = all_servers(&m.cfg, s)
        .map(|x| x.saved.first_commit_term)
        .filter(|&t| t > 0)
        .min()
    else {
        return false;
    };
    live_servers(&m.cfg, s).any(|(_, x)| {
        let st = x.replica.status();
        st.role == Role::Leader && st.term > first
    })
}

fn recovers<R: Replica<Cmd>>(m: &ClusterModel<R>, s: &ClusterState<R>) -> bool {
    let most = all_servers(&m.cfg, s)
        .filter_map(|x| x.saved.applied.last().map(|e| e.0))
        .max()
        .unwrap_or(0);
    most > 0 && live_servers(&m.cfg, s).any(|(_, x)| x.saved.restarts > 0 && x.reported >= most)
}

/// Up to this many protocol invariants of each kind get a property of their own.
pub const MAX_PROTOCOL_INVARIANTS: usize = 8;

fn cluster_fn<R: Replica<Cmd>>(k: usize) -> Cond<R> {
    [
        cluster_invariant::<R, 0>,
        cluster_invariant::<R, 1>,
        cluster_invariant::<R, 2>,
        cluster_invariant::<R, 3>,
        cluster_invariant::<R, 4>,
        cluster_invariant::<R, 5>,
        cluster_invariant::<R, 6>,
        cluster_invariant::<R, 7>,
    ][k]
}

fn step_fn<R: Replica<Cmd>>(k: usize) -> Cond<R> {
    [
        step_invariant::<R, 0>,
        step_invariant::<R, 1>,
        step_invariant::<R, 2>,
        step_invariant::<R, 3>,
        step_invariant::<R, 4>,
        step_invariant::<R, 5>,
        step_invariant::<R, 6>,
        step_invariant::<R, 7>,
    ][k]
}

/// Every property of a model of `setup`.
pub fn properties<R: Replica<Cmd>>(setup: &Setup<R>) -> Vec<Property<ClusterModel<R>>> {
    use names::*;
    assert!(
        setup.cluster_invariants.len() <= MAX_PROTOCOL_INVARIANTS
            && setup.step_invariants.len() <= MAX_PROTOCOL_INVARIANTS,
        "at most {MAX_PROTOCOL_INVARIANTS} protocol invariants of each kind"
    );
    let mut p = vec![
        Property::always(LINEARIZABLE, linearizable::<R>),
        Property::always(SAFETY, state_machine_safety::<R>),
        Property::always(PREFIX, applied_prefix::<R>),
        Property::always(TERMS, terms::<R>),
    ];
    let mut taken: Vec<&str> = p.iter().map(|p| p.name).collect();
    for (k, inv) in setup.cluster_invariants.iter().enumerate() {
        if !taken.contains(&inv.name) {
            taken.push(inv.name);
            p.push(Property::always(inv.name, cluster_fn::<R>(k)));
        }
    }
    for (k, inv) in setup.step_invariants.iter().enumerate() {
        // A step invariant named like a host check is folded into it (see `model`).
        if !taken.contains(&inv.name) {
            taken.push(inv.name);
            p.push(Property::always(inv.name, step_fn::<R>(k)));
        }
    }
    p.push(Property::sometimes(LEADER, leader_elected::<R>));
    if setup.cfg.ops > 0 && setup.cfg.clients > 0 {
        p.push(Property::sometimes(
            COMMITTED_EVERYWHERE,
            committed_everywhere::<R>,
        ));
        p.push(Property::sometimes(ALL_REPLIES, all_replies::<R>));
    }
    // One server without crashes never changes leader; nor does anything within term 1.
    if setup.cfg.max_term >= 2 && (setup.cfg.servers > 1 || setup.cfg.max_crashes > 0) {
        p.push(Property::sometimes(LEADER_CHANGE, leader_change::<R>));
    }
    if setup.cfg.max_crashes > 0 {
        p.push(Property::sometimes(RECOVERS, recovers::<R>));
    }
    p
}
