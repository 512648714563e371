//! The cluster model a simulation walks, and the liveness condition its settling phase waits for.

use std::sync::Arc;

use paxraft_impls::sm::{KvOp, LockOp};
use paxraft_impls::{NodeId, Replica, Role};
use paxraft_models::checked::{build_walk, CheckAction, CheckModel, CheckState};
use paxraft_models::model::service::LOCK;
use paxraft_models::model::{Node, Service, Timer};
use paxraft_models::properties::names::{LINEARIZABLE, LOCK_LINEARIZABLE};
use paxraft_models::Cmd;
use stateright::actor::ActorModelAction;

use super::{SimOptions, Workload};

/// The ops of client `c`: puts, gets and compare-and-swaps over two keys, every written
/// value unique (client, op index), so a read names the write it saw.
pub fn client_ops(c: usize, ops: usize) -> Vec<KvOp> {
    let mut last: [Option<Vec<u8>>; 2] = [None, None];
    (0..ops)
        .map(|k| {
            let key = ((k / 3) % 2) as u64;
            let value = vec![c as u8, k as u8];
            match k % 3 {
                0 => {
                    last[key as usize] = Some(value.clone());
                    KvOp::Put(key, value)
                }
                1 => KvOp::Get(key),
                _ => {
                    let expect = last[key as usize].replace(value.clone());
                    KvOp::Cas {
                        key,
                        expect,
                        new: value,
                    }
                }
            }
        })
        .collect()
}

/// The lock workload's ops of client `c` (actor id, so lock owner, `servers + c`): acquire
/// the lock, keep the session alive, release it, over and over. On every grant the model's
/// client writes to the storage actor with its fencing token at once. The clients start
/// at different points of the cycle (client 1 with a keep-alive, client 2 with a release it
/// is refused unless it holds the lock), so that they contend from the first ops on.
///
/// One lock ([`LOCK`]): the model's clients write to storage under that lock whichever lock
/// they acquired, so a second lock would mix two token sequences in one storage cell.
pub fn lock_ops(c: usize, servers: usize, ops: usize) -> Vec<KvOp> {
    let owner = (servers + c) as u64;
    (0..ops)
        .map(|k| {
            KvOp::Lock(match (k + c) % 3 {
                0 => LockOp::Acquire { lock: LOCK, owner },
                1 => LockOp::KeepAlive { owner },
                _ => LockOp::Release { lock: LOCK, owner },
            })
        })
        .collect()
}

/// The model a simulation of the key-value workload runs (see [`sim_model_for`]).
pub fn sim_model<R: Replica<Cmd>>(opts: &SimOptions) -> SimModel<R> {
    sim_model_for(opts, &Workload::default())
}

/// The model a simulation runs: the checked model's actions and properties, torn steps
/// included, with its bounds as a boundary ([`build_walk`]), the clients' ops of
/// [`client_ops`] (key-value) or [`lock_ops`] (lock service, with the storage actor and the
/// workload's session timeout), and without stateright's history recording (the history is
/// rebuilt from the path instead, see [`history`](fn@super::history)), so states stay small
/// however long the run.
pub fn sim_model_for<R: Replica<Cmd>>(opts: &SimOptions, workload: &Workload) -> SimModel<R> {
    let cfg = opts.model_config_for(workload);
    let mut model = build_walk::<R>(&cfg);
    for (i, actor) in model.actors.actors.iter_mut().enumerate() {
        match actor {
            Node::Client { ops, .. } => {
                let c = i - cfg.servers;
                *ops = Arc::new(match workload.service {
                    Service::Kv => client_ops(c, cfg.ops),
                    Service::Lock => lock_ops(c, cfg.servers, cfg.ops),
                });
            }
            Node::Server {
                session_timeout, ..
            } => *session_timeout = workload.server_session_timeout(),
            _ => {}
        }
    }
    model.actors.record_msg_in = |_, _, _| None;
    model.actors.record_msg_out = |_, _, _| None;
    model
        .properties
        .retain(|p| p.name != LINEARIZABLE && p.name != LOCK_LINEARIZABLE);
    model
}

/// The model a simulation walks.
pub type SimModel<R> = CheckModel<R>;
/// One of its states.
pub type SimState<R> = CheckState<R>;

/// Whether client `c` gave up: it waits, but has used all the resends the model allows (255)
/// and nothing it sent is still on the way. The model's clients have a bounded retry budget;
/// a run with a long partition can exhaust it, and such a client is then no more alive than a
/// crashed one: its op stays pending (the history check still covers it).
pub(super) fn gave_up<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>, c: usize) -> bool {
    let id = model.actors.cfg.cfg.servers + c;
    let Some(cl) = state.actor_states[id].client() else {
        return false;
    };
    cl.waiting()
        && cl.retries >= model.actors.cfg.cfg.max_retries
        && !state
            .network
            .iter_deliverable()
            .any(|e| usize::from(e.src) == id || usize::from(e.dst) == id)
}

/// Whether client `c` stopped because its session expired (lock service): the servers
/// refused a request of it as expired, explicitly, and a client id whose session is gone can
/// do nothing more.
pub(super) fn expired<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>, c: usize) -> bool {
    let id = model.actors.cfg.cfg.servers + c;
    state.actor_states[id].client().is_some_and(|cl| cl.expired)
}

/// The liveness condition: no server is down, every client has had every op answered (or was
/// told its session expired, or gave up, see `gave_up`), and every server has applied the
/// same slots into the same state (the state, not the list of commands: a server that
/// restored a snapshot applied its slots without reporting them one by one).
pub fn settled<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>) -> bool {
    let cfg = &model.actors.cfg.cfg;
    let n = cfg.servers;
    if state.crashed.iter().any(|&c| c) {
        return false;
    }
    let clients_done = state.actor_states[n..n + cfg.clients]
        .iter()
        .enumerate()
        .all(|(c, a)| {
            a.client()
                .is_some_and(|cl| usize::from(cl.done) == cfg.ops || cl.expired)
                || gave_up(model, state, c)
        });
    if !clients_done {
        return false;
    }
    // The servers that must agree: the members of the configuration the furthest-applied
    // server follows (every server, unless membership changed: a removed server or a spare
    // never added is left behind by design).
    let servers: Vec<_> = state.actor_states[..n]
        .iter()
        .filter_map(|a| a.server())
        .collect();
    let Some(first) = servers.iter().max_by_key(|s| s.saved.applied_to) else {
        return true;
    };
    let members = first.replica.status().config.members();
    servers
        .iter()
        .filter(|s| members.contains(s.replica.id()))
        .all(|s| s.saved.applied_to == first.saved.applied_to && s.saved.sm == first.saved.sm)
}

/// A non-leader's election timer while some server leads *it*: on a healthy network that
/// leader's messages keep re-arming it, so the settling phase fires it only when nothing else
/// can happen (a leader that stalls must not be rescued by an election it would not have had).
///
/// Only a leader whose latest configuration has the node as a member counts: a leader sends
/// nothing to a node outside it (a removed node, a spare), whose timer nothing re-arms. Held
/// back anyway, it never fired while clients kept the network busy: a removed node that never
/// learned it left kept naming the old leader, which named nobody, and clients retrying in
/// rotation went back and forth between the two, never reaching the new leader (found by
/// `simulate multipaxos --changes remove:2,remove:0 --window 1 --partitions --loss 5 --seed 7`).
/// Its election is what lets it learn it left (see the multi-Paxos `reconfig` docs).
pub(crate) fn election_timer_under_a_leader<R: Replica<Cmd>>(
    model: &SimModel<R>,
    state: &SimState<R>,
    action: &Action<R>,
) -> bool {
    let CheckAction::Step(ActorModelAction::Timeout(id, Timer::Replica(t))) = action else {
        return false;
    };
    let n = model.actors.cfg.cfg.servers;
    let me = usize::from(*id);
    // The configuration server `i` leads, if it is up and leads.
    let led = |i: usize| {
        (!state.crashed[i])
            .then(|| state.actor_states[i].server())
            .flatten()
            .map(|s| s.replica.status())
            .filter(|st| st.role == Role::Leader)
            .map(|st| st.config)
    };
    *t == R::election_timer()
        && led(me).is_none()
        && (0..n)
            .filter_map(led)
            .any(|config| config.members().contains(NodeId(me as u8)))
}

/// What keeps a state from [`settled`], in a few words.
pub(crate) fn unsettled<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>) -> String {
    let cfg = &model.actors.cfg.cfg;
    let n = cfg.servers;
    let mut why = Vec::new();
    for (i, _) in state.crashed.iter().enumerate().filter(|(_, &c)| c) {
        why.push(format!("n{i} is down"));
    }
    for (c, a) in state.actor_states[n..n + cfg.clients].iter().enumerate() {
        if let Some(cl) = a
            .client()
            .filter(|cl| usize::from(cl.done) < cfg.ops && !cl.expired)
        {
            why.push(format!(
                "c{c} has {} of {} ops answered in order (waits for {:?}, last sent to n{}, after {} retries)",
                cl.done,
                cfg.ops,
                cl.unanswered().map(|k| format!("#{k}")).collect::<Vec<_>>(),
                cl.target,
                cl.retries
            ));
        }
    }
    let servers: Vec<String> = state.actor_states[..n]
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.server().map(|s| {
                let st = s.replica.status();
                format!(
                    "n{i} {:?} term {} applied {}",
                    st.role,
                    st.term,
                    s.saved.applied.len()
                )
            })
        })
        .collect();
    why.push(servers.join(", "));
    why.join("; ")
}

/// An action of the simulated cluster.
pub type Action<R> = CheckAction<R>;
