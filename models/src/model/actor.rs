//! The actors: servers, clients and (with the lock service) the storage the locks protect,
//! as stateright runs them.

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::Arc;

use paxraft_impls::sm::{FencedStore, Kv, KvOp, Sessions, StateMachine};
use paxraft_impls::{Config, NodeId, Out, ReadMode, Replica, Role, StepCheck};
use stateright::actor::{model_timeout, Actor, Id};

use super::client::{client_issue, client_request};
use super::server::read_id;
use super::{
    Answer, ClientState, Cmd, Hashed, HostCheck, HostChecks, Msg, Saved, ServerState, Storage,
    Timer,
};

/// The lock service's storage: a [`FencedStore`], and what it did, for the properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StorageState {
    /// The store.
    pub store: FencedStore,
    /// The tokens of the writes it accepted, in the order it accepted them.
    pub accepted: Vec<u64>,
    /// Writes it refused (a token below one it had accepted).
    pub refused: u8,
}

/// An actor's state.
///
/// Stateright keeps each actor's state behind an `Arc` and allocates a new one for every
/// step that changes it. A server's state is large (the replica: hundreds of bytes), a
/// client's is 16 bytes: the server's is boxed so that a client step allocates a small
/// state, not one the size of a server's. A `Box` hashes and compares as its contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeState<R: Replica<Cmd>> {
    /// A server.
    Server(Box<ServerState<R>>),
    /// A client.
    Client(ClientState),
    /// The storage the lock service protects.
    Storage(StorageState),
}

impl<R: Replica<Cmd>> NodeState<R> {
    /// The server state, if this is a server.
    pub fn server(&self) -> Option<&ServerState<R>> {
        match self {
            NodeState::Server(s) => Some(s),
            NodeState::Client(_) | NodeState::Storage(_) => None,
        }
    }
    /// The storage state, if this is the storage.
    pub fn storage(&self) -> Option<&StorageState> {
        match self {
            NodeState::Storage(s) => Some(s),
            NodeState::Server(_) | NodeState::Client(_) => None,
        }
    }
    /// The client state, if this is a client.
    pub fn client(&self) -> Option<&ClientState> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(_) | NodeState::Storage(_) => None,
        }
    }
}

/// The actors: servers first (ids `0..servers`), then clients, then (with the lock service)
/// the storage.
#[derive(Clone)]
pub enum Node<R: Replica<Cmd>> {
    /// A server hosting replica `R`.
    Server {
        /// All replicas.
        members: Arc<Vec<NodeId>>,
        /// The protocol configuration.
        cfg: Arc<Config>,
        /// The protocol's step invariants, checked after every step, each with the host
        /// check its failure records ([`Setup::step_check`](super::Setup::step_check)).
        step_invariants: Arc<Vec<(HostCheck, StepCheck<R>)>>,
        /// Sessions expire after this many applied commands (0: never).
        session_timeout: u64,
        /// The membership changes the operator may ask of this server.
        changes: Arc<Vec<paxraft_impls::Change>>,
        /// [`ModelConfig::fold_lapse`](super::ModelConfig::fold_lapse), without time.
        fold_lapse: bool,
    },
    /// A client issuing `ops` in order, `pipeline` at a time.
    Client {
        /// Servers it may talk to.
        servers: u8,
        /// Its ops, in order.
        ops: Arc<Vec<KvOp>>,
        /// Resends allowed without progress.
        max_retries: u8,
        /// Requests kept outstanding at once ([`ModelConfig::pipeline`](super::ModelConfig::pipeline)).
        pipeline: u8,
        /// The storage it writes to with each fencing token it gets (lock service only).
        storage: Option<Id>,
    },
    /// The storage a lock protects: it takes writes straight from clients (not through the
    /// log) and refuses those whose fencing token is older than one it accepted.
    Storage {
        /// The protocol configuration (for the storage's bug switch, L2).
        cfg: Arc<Config>,
    },
}

impl<R: Replica<Cmd>> Debug for Node<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Server { .. } => write!(f, "Server"),
            Node::Client { ops, .. } => write!(f, "Client({ops:?})"),
            Node::Storage { .. } => write!(f, "Storage"),
        }
    }
}

type ModelOut<R> = stateright::actor::Out<Node<R>>;

impl<R: Replica<Cmd>> Actor for Node<R> {
    type Msg = Msg<R::Msg>;
    type Timer = Timer<R::Timer>;
    type State = NodeState<R>;
    type Storage = Storage<R>;
    type Random = ();

    fn name(&self) -> String {
        match self {
            Node::Server { .. } => R::NAME.to_string(),
            Node::Client { .. } => "client".to_string(),
            Node::Storage { .. } => "storage".to_string(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<Storage<R>>, o: &mut ModelOut<R>) -> NodeState<R> {
        match self {
            Node::Server {
                members,
                cfg,
                session_timeout,
                changes,
                ..
            } => {
                let me = NodeId(usize::from(id) as u8);
                let mut out = Out::<R, Cmd>::new();
                let (replica, saved) = match storage {
                    None => {
                        let saved = Saved::<R> {
                            durable: R::Durable::default(),
                            sm: Sessions::with_timeout(*session_timeout),
                            applied: Vec::new(),
                            noops: Vec::new(),
                            term: 0,
                            first_commit_term: 0,
                            applied_to: 0,
                            restores: 0,
                            restarts: 0,
                            torn_crashes: 0,
                        };
                        (R::boot(me, members, None, cfg, &mut out), saved)
                    }
                    Some(st) => {
                        let mut saved = (***st).clone();
                        saved.restarts += 1;
                        (
                            R::boot(me, members, Some(&saved.durable), cfg, &mut out),
                            saved,
                        )
                    }
                };
                // The term check against what the host saw before the crash happens in `host`.
                let mut s = ServerState {
                    replica,
                    saved: Arc::new(Hashed::new(saved.clone())),
                    reported: 0,
                    known_commit: 0,
                    checks: HostChecks::default(),
                    reads: Vec::new(),
                    served_reads: 0,
                    deadlines: Vec::new(),
                    changes_done: 0,
                    refused_busy: false,
                };
                self.host(&mut s, &mut out, o, Some(saved));
                // The operator's requests, one timer each: a fresh incarnation may be asked
                // every change again.
                for k in 0..changes.len() {
                    o.set_timer(Timer::Admin(k as u8), model_timeout());
                }
                NodeState::Server(Box::new(s))
            }
            Node::Client {
                servers,
                ops,
                pipeline,
                ..
            } => {
                let mut c = ClientState {
                    target: (usize::from(id) % usize::from(*servers)) as u8,
                    ..ClientState::default()
                };
                if !ops.is_empty() {
                    client_issue(id, &mut c, ops, *servers, *pipeline, o);
                }
                NodeState::Client(c)
            }
            Node::Storage { .. } => NodeState::Storage(StorageState::default()),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<NodeState<R>>,
        src: Id,
        msg: Msg<R::Msg>,
        o: &mut ModelOut<R>,
    ) {
        self.receive(id, state, src, msg, o);
        // A reply or redirect a client ignores is still consumed. Stateright would otherwise
        // treat the delivery as a no-op and leave the message in flight for ever, where it
        // would count against `max_in_flight` and starve later behaviours of room. (Replicas'
        // ignored messages are left to stateright's no-op pruning: consuming them too makes
        // the state space ~8x larger at equal depth.)
        if let (Node::Client { .. }, Cow::Borrowed(s)) = (self, &*state) {
            *state = Cow::Owned((*s).clone());
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<NodeState<R>>,
        timer: &Timer<R::Timer>,
        o: &mut ModelOut<R>,
    ) {
        self.fire(id, state, timer, o)
    }
}

impl<R: Replica<Cmd>> Node<R> {
    /// Whether delivering `msg` from `src` to this actor (`id`, in `state`) would change
    /// nothing at all now: no state change, no output. The checker drops a message only when
    /// this holds and the message can never matter later either.
    pub(crate) fn ignores(&self, id: Id, state: &NodeState<R>, src: Id, msg: &Msg<R::Msg>) -> bool {
        let mut cow = Cow::Borrowed(state);
        let mut out = stateright::actor::Out::new();
        self.receive(id, &mut cow, src, msg.clone(), &mut out);
        stateright::actor::is_no_op::<Self>(&cow, &out)
    }

    fn receive(
        &self,
        id: Id,
        state: &mut Cow<NodeState<R>>,
        src: Id,
        msg: Msg<R::Msg>,
        o: &mut ModelOut<R>,
    ) {
        match (self, msg) {
            (Node::Server { .. }, Msg::Peer(m)) => {
                let from = NodeId(usize::from(src) as u8);
                self.server_step(state, o, None, None, 0, |r, out| {
                    r.on_message(from, Arc::unwrap_or_clone(m), out)
                });
            }
            (Node::Server { cfg, .. }, Msg::Request(cmd)) => {
                let cmd = Arc::unwrap_or_clone(cmd);
                // Bug zoo R10 (stale read): a replica that believes it leads answers a get
                // from its local store, skipping the log round that would confirm it still
                // leads. The correct path (default) sends reads through the log like writes.
                if let (true, KvOp::Get(key), Some(s)) = (
                    cfg.bug(paxraft_impls::Bug::StaleRead),
                    &cmd.op,
                    state.server(),
                ) {
                    if s.replica.status().role == Role::Leader {
                        let answer = Arc::new(Answer::Value(s.saved.sm.state().get(*key).cloned()));
                        o.send(
                            src,
                            Msg::Reply {
                                seq: cmd.seq,
                                answer,
                            },
                        );
                        return;
                    }
                }
                if cfg.reads != ReadMode::Log && R::READS && Kv::is_read_only(&cmd.op) {
                    // A read without the log: the host remembers whom to answer and asks the
                    // replica. A retry of a read already waiting is the same read.
                    let id = read_id(&cmd);
                    let waiting = state
                        .server()
                        .is_some_and(|s| s.reads.iter().any(|(r, _)| *r == id));
                    if waiting {
                        return;
                    }
                    // Under a lease the replica may let the host answer at once, as the
                    // runtime's local reader does ([`Replica::local_reads`]).
                    let (read, now) = (Some((id, cmd)), super::server::now());
                    return self.server_step(state, o, read, None, 0, |r, out| {
                        paxraft_impls::read_or_local(r, now, vec![id], out)
                    });
                }
                self.server_step(state, o, None, None, 1, |r, out| r.propose(vec![cmd], out))
            }
            (
                Node::Client {
                    servers,
                    ops,
                    pipeline,
                    ..
                },
                Msg::Reply { seq, answer },
            ) => {
                let Some(c) = state.client() else { return };
                // Replies to requests the client no longer waits for are ignored (duplicates,
                // answers to earlier retries).
                if !c.awaits(seq) {
                    return;
                }
                let mut c = c.clone();
                if *answer == Answer::Expired {
                    // The session is gone: this client id can do nothing more (a new session
                    // would need a new id). It stops; its retry timer goes with it.
                    c.expired = true;
                    o.cancel_timer(Timer::Retry);
                    *state = Cow::Owned(NodeState::Client(c));
                    return;
                }
                if let (Answer::Acquired { token }, Some(storage)) = (&*answer, self.storage()) {
                    // The holder uses its lock at once: a write fenced by the token. The
                    // network may hold it back arbitrarily long (the holder "pauses").
                    c.token = *token;
                    o.send(
                        storage,
                        Msg::Write {
                            lock: super::service::LOCK,
                            token: *token,
                        },
                    );
                }
                c.answer(seq);
                c.retries = 0;
                client_issue(id, &mut c, ops, *servers, *pipeline, o);
                *state = Cow::Owned(NodeState::Client(c));
            }
            (Node::Client { ops, .. }, Msg::Redirect { seq, leader }) => {
                let Some(c) = state.client() else { return };
                // Follow a leader hint at once (the client's later requests go there too);
                // without one, wait for the retry timer.
                let Some(leader) = leader else { return };
                if !c.awaits(seq) || leader.0 == c.target {
                    return;
                }
                let mut c = c.clone();
                c.target = leader.0;
                o.send(
                    Id::from(leader.index()),
                    Msg::Request(client_request(id, ops, &c, seq as u8).into()),
                );
                *state = Cow::Owned(NodeState::Client(c));
            }
            // Refused for back-pressure: as after a redirect without a leader hint, the client
            // waits for its retry timer and resends then (the same request: a retry is
            // applied once). The refused attempt was never appended, so in the history the
            // op stays invoked and unanswered until a retry's reply returns it.
            (Node::Client { .. }, Msg::Busy { .. }) => {}
            (Node::Storage { cfg }, Msg::Write { lock, token }) => {
                let Some(st) = state.storage() else { return };
                let mut st = st.clone();
                let value = vec![usize::from(src) as u8];
                match st.store.write_as(lock, token, value, cfg) {
                    Ok(()) => st.accepted.push(token),
                    Err(_) => st.refused = st.refused.saturating_add(1),
                }
                *state = Cow::Owned(NodeState::Storage(st));
            }
            _ => {}
        }
    }

    /// The storage a client writes to (lock service only).
    fn storage(&self) -> Option<Id> {
        match self {
            Node::Client { storage, .. } => *storage,
            _ => None,
        }
    }

    fn fire(
        &self,
        id: Id,
        state: &mut Cow<NodeState<R>>,
        timer: &Timer<R::Timer>,
        o: &mut ModelOut<R>,
    ) {
        match (self, timer) {
            (Node::Server { fold_lapse, .. }, Timer::Replica(t)) => {
                let t = *t;
                let fold = *fold_lapse;
                self.server_step(state, o, None, Some(t), 0, |r, out| {
                    r.on_timer(t, out);
                    // Re-armed to fire at once and nothing else: the next firing joins it.
                    if fold && out.only_rearms(&t) {
                        r.on_timer(t, out);
                    }
                });
            }
            (Node::Server { changes, .. }, Timer::Admin(k)) => {
                // Only a leader acts on a change (any other replica refuses it, changing
                // nothing): asking a follower is left out, so that it costs no state, and the
                // timer stays armed until a leader is asked.
                let Some(s) = state.server() else { return };
                if s.replica.status().role != Role::Leader {
                    return;
                }
                let change = changes[usize::from(*k)];
                let id = u64::from(*k) + 1;
                self.server_step(state, o, None, None, 0, |r, out| r.change(id, change, out));
            }
            (
                Node::Client {
                    servers,
                    ops,
                    max_retries,
                    ..
                },
                Timer::Retry,
            ) => {
                let Some(c) = state.client() else { return };
                if !c.waiting() || c.retries >= *max_retries {
                    return;
                }
                let mut c = c.clone();
                c.retries += 1;
                c.target = (c.target + 1) % servers;
                // Silence: resend every unanswered op to the next server.
                for k in c.unanswered() {
                    o.send(
                        Id::from(usize::from(c.target)),
                        Msg::Request(client_request(id, ops, &c, k).into()),
                    );
                }
                if c.retries < *max_retries {
                    o.set_timer(Timer::Retry, model_timeout());
                }
                *state = Cow::Owned(NodeState::Client(c));
            }
            _ => {}
        }
    }
}
