//! The stateright model of a cluster of any [`Replica`], with clients and faults.
//!
//! Read top to bottom, like stateright's own examples: the messages and the actors, the
//! server host (a replica, the key-value store behind client sessions, and the durable image
//! it saves through stateright's `Storage`), the clients, the history they record for the
//! linearizability tester, the bounds, and finally [`actors`], the actor model without
//! properties ([`crate::build`] adds them; this module knows nothing of them).

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use paxraft_impls::replica::TERMS_NEVER_DECREASE;
use paxraft_impls::sm::{Kv, KvOp, KvOutput, Request, Sessions, StateMachine};
use paxraft_impls::{Config, Effect, Invariant, NodeId, Out, Replica, Role, Slot, StepCheck};
use stateright::actor::{
    model_timeout, Actor, ActorModel, ActorModelState, Envelope, Id, LossyNetwork, Network,
};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// The command the model replicates: a key-value op with its session data.
pub type Cmd = Request<KvOp>;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Which network semantics stateright simulates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// Messages arrive in any order, each at most once (the default).
    Unordered,
    /// Messages arrive in any order, any number of times.
    Duplicating,
    /// Per-link FIFO.
    Ordered,
}

impl NetworkKind {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Unordered => "unordered",
            NetworkKind::Duplicating => "duplicating",
            NetworkKind::Ordered => "ordered",
        }
    }

    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            NetworkKind::Unordered,
            NetworkKind::Duplicating,
            NetworkKind::Ordered,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// Everything that bounds and shapes one model. The defaults are the bounded exhaustive
/// check `paxraft check` runs: 3 servers, 2 clients with two ops each (a write, then a read
/// that starts only after the write was answered), unordered network, the protocols'
/// shipped configuration (PreVote and CheckQuorum on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// Replicas, 1 to [`paxraft_impls::MAX_NODES`].
    pub servers: usize,
    /// Client actors.
    pub clients: usize,
    /// Operations each client issues, one at a time.
    pub ops: usize,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether messages may be lost.
    pub lossy: bool,
    /// Server crashes (each followed, or not, by a recovery) over a whole run.
    pub max_crashes: usize,
    /// Highest term or ballot round a replica may reach: a state beyond it is checked but
    /// not expanded (counted as cut by the term bound).
    pub max_term: u64,
    /// Most messages in flight at once: timers may fire at any moment, so without this bound
    /// heartbeats alone would fill the network without end. The checker counts only
    /// messages between servers (client traffic is bounded by the workload), after dropping
    /// those that can have no effect (see [`crate::checked`]); a state beyond it is checked
    /// but not expanded.
    pub max_in_flight: usize,
    /// How many times a client resends one request after a timeout.
    pub max_retries: u8,
    /// With a lossy network, most messages lost over a whole run (`None`: any number). Like
    /// `max_crashes`, a fault budget: each loss multiplies the states, so a small budget keeps
    /// exhaustive checks of a lossy network feasible. Counting needs an unordered
    /// non-duplicating or an ordered network.
    pub max_losses: Option<usize>,
    /// Whether a crash may fall between two effects of one step (after some of a step's
    /// sends, persists or commits and before the rest), in the exhaustive checker. Only
    /// matters with `max_crashes > 0`.
    pub crash_mid_step: bool,
    /// Requests a client keeps outstanding at once, 1 to [`MAX_PIPELINE`]. With more than one,
    /// a client sends its next ops before the earlier ones are answered and acknowledges
    /// only the answers below its lowest unanswered op, as the runtime's pipelined clients
    /// do. Only the fault-schedule simulator pipelines (it rebuilds the history from the
    /// path); the exhaustive checker's linearizability tester follows one op per client.
    pub pipeline: usize,
    /// The protocol configuration (bug-zoo switches included).
    pub protocol: Config,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            servers: 3,
            clients: 2,
            ops: 2,
            network: NetworkKind::Unordered,
            lossy: false,
            max_crashes: 0,
            max_term: 2,
            max_in_flight: 5,
            max_retries: 1,
            max_losses: None,
            crash_mid_step: true,
            pipeline: 1,
            // What ships: PreVote and CheckQuorum on. `--no-pre-vote` / `--no-check-quorum`
            // give the cheaper variant (one round fewer per election).
            protocol: Config::default(),
        }
    }
}

impl ModelConfig {
    /// Reject configurations that cannot be checked, with a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers == 0 || self.servers > paxraft_impls::MAX_NODES {
            return Err(format!(
                "--servers must be 1 to {}, got {}",
                paxraft_impls::MAX_NODES,
                self.servers
            ));
        }
        if self.clients > 8 {
            return Err(format!("--clients must be at most 8, got {}", self.clients));
        }
        if self.ops > 8 {
            return Err(format!("--ops must be at most 8, got {}", self.ops));
        }
        if self.max_losses.is_some() && !self.lossy {
            return Err("--max-losses needs --lossy".into());
        }
        if self.max_losses.is_some() && self.network == NetworkKind::Duplicating {
            return Err(
                "--max-losses cannot count losses on a duplicating network (deliveries do not consume messages there)"
                    .into(),
            );
        }
        if self.max_term == 0 {
            return Err("--max-term must be at least 1 (no leader can exist in term 0)".into());
        }
        if self.pipeline != 1 {
            return Err(format!(
                "the exhaustive checker's clients keep one request outstanding (pipeline 1, got {}); pipelined clients are simulated (`paxraft simulate --pipeline`)",
                self.pipeline
            ));
        }
        self.protocol.validate(self.servers)
    }

    /// The flags that rebuild this configuration on the command line (defaults omitted).
    pub fn flags(&self) -> String {
        let d = ModelConfig::default();
        let mut f = Vec::new();
        if self.servers != d.servers {
            f.push(format!("--servers {}", self.servers));
        }
        if self.clients != d.clients {
            f.push(format!("--clients {}", self.clients));
        }
        if self.ops != d.ops {
            f.push(format!("--ops {}", self.ops));
        }
        if self.network != d.network {
            f.push(format!("--network {}", self.network.name()));
        }
        if self.lossy {
            f.push("--lossy".into());
        }
        if self.max_crashes != d.max_crashes {
            f.push(format!("--crashes {}", self.max_crashes));
        }
        if self.max_term != d.max_term {
            f.push(format!("--max-term {}", self.max_term));
        }
        if self.max_in_flight != d.max_in_flight {
            f.push(format!("--max-in-flight {}", self.max_in_flight));
        }
        if self.max_retries != d.max_retries {
            f.push(format!("--retries {}", self.max_retries));
        }
        if let Some(l) = self.max_losses {
            f.push(format!("--max-losses {l}"));
        }
        if !self.protocol.pre_vote {
            f.push("--no-pre-vote".into());
        }
        if !self.protocol.check_quorum {
            f.push("--no-check-quorum".into());
        }
        if !self.crash_mid_step {
            f.push("--atomic-steps".into());
        }
        if self.protocol.empty_heartbeats {
            f.push("--empty-heartbeats".into());
        }
        // A bug-zoo switch must be part of the command, or the rerun checks the correct code.
        for b in self.protocol.bugs_on() {
            f.push(format!("--bug {}", b.name()));
        }
        f.join(" ")
    }

    /// The op client `c` (0-based among clients) issues `k`-th. Each client alternates a
    /// write and a read, and issues an op only once the one before it was answered, so the
    /// history has real-time order within and across clients: a read that starts after a
    /// write finished must see it (a stale read or a lost write is a linearizability
    /// violation, not an overlap). Even clients put; odd clients compare-and-swap the value
    /// the client before them writes at the same step, so a CAS can succeed or fail
    /// depending on the order. All ops touch key 0 so that every pair of them conflicts;
    /// values are one byte, unique per (client, op).
    pub fn op(&self, c: usize, k: usize) -> KvOp {
        let value = |c: usize| vec![(16 * (c + 1) + k) as u8];
        if k % 2 == 1 {
            KvOp::Get(0)
        } else if c % 2 == 0 {
            KvOp::Put(0, value(c))
        } else {
            KvOp::Cas {
                key: 0,
                expect: Some(value(c - 1)),
                new: value(c),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages and timers
// ---------------------------------------------------------------------------------------------

/// What a `KvOp` returned, in a form that can travel in an (ordered) message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    /// A get's value.
    Value(Option<Vec<u8>>),
    /// A put took effect.
    Written,
    /// A CAS swapped.
    Swapped,
    /// A CAS found this value instead.
    NotSwapped(Option<Vec<u8>>),
}

impl From<KvOutput> for Answer {
    fn from(o: KvOutput) -> Self {
        match o {
            KvOutput::Value(v) => Answer::Value(v),
            KvOutput::Written => Answer::Written,
            KvOutput::Cas(Ok(())) => Answer::Swapped,
            KvOutput::Cas(Err(v)) => Answer::NotSwapped(v),
        }
    }
}

/// Every message of the model: replica to replica, client to server, server to client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg<M> {
    /// A protocol message between replicas.
    Peer(M),
    /// A client request.
    Request(Cmd),
    /// The result of request `seq`.
    Reply { seq: u64, answer: Answer },
    /// Request `seq` reached a replica that cannot take it.
    Redirect { seq: u64, leader: Option<NodeId> },
}

/// Timers: the replica's own, and the client's retry timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer<T> {
    /// A replica timer.
    Replica(T),
    /// A client gives up waiting and resends.
    Retry,
}

// ---------------------------------------------------------------------------------------------
// A value hashed once
// ---------------------------------------------------------------------------------------------

/// A value that hashes as a fingerprint computed when it was built. The durable image is
/// hashed twice per state (in the server's state and in stateright's storage vector) and
/// rarely changes: hashing it once per change keeps states cheap to fingerprint. Stateright
/// itself identifies states by 64-bit fingerprints, so this adds no new kind of collision.
#[derive(Clone, Debug)]
pub struct Hashed<T> {
    fp: u64,
    value: T,
}

impl<T: Hash> Hashed<T> {
    /// Wrap `value`, fingerprinting it.
    pub fn new(value: T) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut h);
        Hashed {
            fp: h.finish(),
            value,
        }
    }
}

impl<T> std::ops::Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.fp == other.fp && self.value == other.value
    }
}
impl<T: Eq> Eq for Hashed<T> {}
impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fp);
    }
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// What a server host keeps durable: the replica's image built from its writes, and the
/// state machine with what was applied to it (a host applies and records atomically, so a
/// restarted host skips the slots the replica reports again).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Saved<R: Replica<Cmd>> {
    /// The replica's durable image.
    pub durable: R::Durable,
    /// The key-value store behind client sessions.
    pub sm: Sessions<Kv>,
    /// Applied commands by slot, in slot order (no-ops are not reported).
    pub applied: Vec<(Slot, Cmd)>,
    /// Slots this host learned were committed as no-ops, in order (from the replica's
    /// [`Replica::committed`] view whenever its commit point advances), so that state
    /// machine safety compares them too.
    pub noops: Vec<Slot>,
    /// Highest term the host saw the replica in (terms must never go back, even after a restart).
    pub term: u64,
    /// Term in which this host first applied a command (0: not yet).
    pub first_commit_term: u64,
    /// Restarts so far.
    pub restarts: u8,
    /// Crashes that fell between two effects of one step.
    pub torn_crashes: u8,
}

/// The storage stateright keeps across a crash.
pub type Storage<R> = Arc<Hashed<Saved<R>>>;

/// A check a server's host makes after every replica step; a failure is kept in the server's
/// [`HostChecks`] for the always-properties to read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostCheck {
    /// The replica's term went back, within a step or across a restart.
    Terms,
    /// A slot was reported twice in one incarnation, or out of order.
    Order,
    /// A slot the host had applied was reported again with another command, or a slot below
    /// one already applied was reported (a hole in the prefix).
    Prefix,
    /// The protocol's step invariant with this index in [`Setup::step_invariants`].
    Step(usize),
}

/// The host checks a server has failed: a set of [`HostCheck`]s, kept as bits so that a
/// server state stays small and cheap to hash.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostChecks(u32);

impl HostChecks {
    /// Step invariants the set can hold.
    pub const MAX_STEP_INVARIANTS: usize = 29;

    fn bit(check: HostCheck) -> u32 {
        match check {
            HostCheck::Terms => 1 << 0,
            HostCheck::Order => 1 << 1,
            HostCheck::Prefix => 1 << 2,
            HostCheck::Step(k) => {
                assert!(
                    k < Self::MAX_STEP_INVARIANTS,
                    "step invariant {k} out of range"
                );
                1 << (3 + k)
            }
        }
    }

    /// Record that `check` failed.
    pub fn fail(&mut self, check: HostCheck) {
        self.0 |= Self::bit(check);
    }

    /// Whether `check` failed.
    pub fn failed(self, check: HostCheck) -> bool {
        self.0 & Self::bit(check) != 0
    }
}

/// A server's state: the replica, and the host around it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerState<R: Replica<Cmd>> {
    /// The protocol replica.
    pub replica: R,
    /// The host's durable part (also saved to stateright's storage).
    pub saved: Storage<R>,
    /// Highest slot reported in this incarnation.
    pub reported: Slot,
    /// The replica's commit point when the host last looked for committed no-ops.
    pub known_commit: Slot,
    /// The host checks that failed.
    pub checks: HostChecks,
}

/// Most requests a client keeps outstanding ([`ModelConfig::pipeline`]).
pub const MAX_PIPELINE: usize = 8;

/// A client's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientState {
    /// Sequence number of the last op issued (0: none yet).
    pub seq: u8,
    /// Every op up to this sequence number is answered.
    pub done: u8,
    /// Ops above `done + 1` answered out of order: bit `k` is op `done + 2 + k` (always 0
    /// with one request outstanding).
    pub ahead: u8,
    /// Server the client sends to.
    pub target: u8,
    /// Resends after timeouts since the client last made progress.
    pub retries: u8,
}

impl ClientState {
    /// Whether the client waits for a reply.
    pub fn waiting(&self) -> bool {
        self.done < self.seq
    }

    /// Whether the client still waits for the answer to op `seq`.
    pub fn awaits(&self, seq: u64) -> bool {
        let (done, last) = (u64::from(self.done), u64::from(self.seq));
        if seq <= done || seq > last {
            return false;
        }
        seq == done + 1 || self.ahead & (1 << (seq - done - 2)) == 0
    }

    /// The ops issued and not answered, lowest first.
    pub fn unanswered(&self) -> impl Iterator<Item = u8> + '_ {
        (self.done + 1..=self.seq).filter(|&k| self.awaits(u64::from(k)))
    }

    /// Record the answer to op `seq` (which [`ClientState::awaits`]); the answered prefix
    /// grows over answers that came ahead of it.
    pub fn answer(&mut self, seq: u64) {
        debug_assert!(self.awaits(seq));
        if seq == u64::from(self.done) + 1 {
            self.done += 1;
            while self.ahead & 1 == 1 {
                self.ahead >>= 1;
                self.done += 1;
            }
            self.ahead >>= 1;
        } else {
            self.ahead |= 1 << (seq - u64::from(self.done) - 2);
        }
    }
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeState<R: Replica<Cmd>> {
    /// A server.
    Server(ServerState<R>),
    /// A client.
    Client(ClientState),
}

impl<R: Replica<Cmd>> NodeState<R> {
    /// The server state, if this is a server.
    pub fn server(&self) -> Option<&ServerState<R>> {
        match self {
            NodeState::Server(s) => Some(s),
            NodeState::Client(_) => None,
        }
    }
    /// The client state, if this is a client.
    pub fn client(&self) -> Option<&ClientState> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(_) => None,
        }
    }
}

/// The actors: servers first (ids `0..servers`), then clients.
#[derive(Clone)]
pub enum Node<R: Replica<Cmd>> {
    /// A server hosting replica `R`.
    Server {
        /// All replicas.
        members: Arc<Vec<NodeId>>,
        /// The protocol configuration.
        cfg: Arc<Config>,
        /// The protocol's step invariants, checked after every step, each with the host
        /// check its failure records ([`Setup::step_check`]).
        step_invariants: Arc<Vec<(HostCheck, StepCheck<R>)>>,
    },
    /// A client issuing `ops` in order, `pipeline` at a time.
    Client {
        /// Servers it may talk to.
        servers: u8,
        /// Its ops, in order.
        ops: Arc<Vec<KvOp>>,
        /// Resends allowed without progress.
        max_retries: u8,
        /// Requests kept outstanding at once ([`ModelConfig::pipeline`]).
        pipeline: u8,
    },
}

impl<R: Replica<Cmd>> Debug for Node<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Server { .. } => write!(f, "Server"),
            Node::Client { ops, .. } => write!(f, "Client({ops:?})"),
        }
    }
}

type ModelOut<R> = stateright::actor::Out<Node<R>>;

/// Request `seq` of client `id` in state `c`. It acknowledges every answer below the
/// client's lowest unanswered op (the sessions may forget those results), and no other:
/// an op answered ahead of an earlier one is not acknowledged until the earlier one is.
fn client_request(id: Id, ops: &[KvOp], c: &ClientState, seq: u8) -> Cmd {
    Request {
        client: usize::from(id) as u64,
        seq: u64::from(seq),
        acked: u64::from(c.done) + 1,
        op: ops[seq as usize - 1].clone(),
    }
}

/// Issue ops while fewer than `pipeline` are unanswered (counted from the lowest, as the
/// session's acknowledgement point is), then (re)arm or cancel the retry timer.
fn client_issue(
    id: Id,
    c: &mut ClientState,
    ops: &[KvOp],
    servers: u8,
    pipeline: u8,
    o: &mut ModelOut<impl Replica<Cmd>>,
) {
    while usize::from(c.seq) < ops.len() && c.seq < c.done.saturating_add(pipeline) {
        c.seq += 1;
        o.send(
            Id::from(usize::from(c.target % servers)),
            Msg::Request(client_request(id, ops, c, c.seq)),
        );
    }
    if c.waiting() {
        o.set_timer(Timer::Retry, model_timeout());
    } else {
        o.cancel_timer(Timer::Retry);
    }
}

pub use paxraft_impls::driver::crash_points;

/// A crash inside one step, as the exhaustive checker asks for it ([`crate::checked`]): the
/// checker sets the request around one `next_state` call on its thread, the host reads it
/// while it carries out the effects and leaves its answer. A thread-local keeps stateright's
/// actor interface unchanged; every checker thread computes its own successors.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tear {
    /// No request: carry out every effect.
    Off,
    /// Carry out every effect, and report how many crash points the step had.
    Count,
    /// Crash at crash point `p` (see [`crash_points`]).
    At(usize),
    /// The host's answer: the step had `points` crash points; `torn` when it crashed.
    Done { points: usize, torn: bool },
}

thread_local! {
    static TEAR: std::cell::Cell<Tear> = const { std::cell::Cell::new(Tear::Off) };
}

/// Run `f` with `tear` requested of the host; returns what the host answered (`Done`), or
/// `Done { points: 0, torn: false }` when no replica step ran.
pub(crate) fn with_tear<T>(tear: Tear, f: impl FnOnce() -> T) -> (T, usize, bool) {
    TEAR.with(|t| t.set(tear));
    let out = f();
    let answer = TEAR.with(|t| t.replace(Tear::Off));
    match answer {
        Tear::Done { points, torn } => (out, points, torn),
        _ => (out, 0, false),
    }
}

impl<R: Replica<Cmd>> Node<R> {
    /// Carry out a replica's effects, in order, on the host `s`. Persist before send holds
    /// within a step: the image is saved in the same atomic model step, unless the checker
    /// asked for a crash between two effects ([`Tear`]), in which case only the effects
    /// before the crash point are carried out and the server is marked for the crash.
    fn host(
        &self,
        s: &mut ServerState<R>,
        out: &mut Out<R, Cmd>,
        o: &mut ModelOut<R>,
        mut saved: Option<Saved<R>>,
    ) {
        let Node::Server { cfg, .. } = self else {
            unreachable!("only servers host replicas")
        };
        let leader = s.replica.status().role == Role::Leader;
        let mut effects: Vec<_> = out.drain().collect();
        let mut torn = false;
        let tear = TEAR.with(|t| t.get());
        if tear != Tear::Off {
            let points = crash_points(&effects);
            if let Tear::At(p) = tear {
                if let Some(&cut) = points.get(p) {
                    effects.truncate(cut);
                    torn = true;
                }
            }
            TEAR.with(|t| {
                t.set(Tear::Done {
                    points: points.len(),
                    torn,
                })
            });
        }
        // A term is exposed once a send of this step went out; a torn step that sent
        // nothing leaves no trace of a term it did not persist.
        let mut sent = false;
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => {
                    sent = true;
                    o.send(Id::from(to.index()), Msg::Peer(msg))
                }
                Effect::SetTimer { timer, .. } => {
                    o.set_timer(Timer::Replica(timer), model_timeout())
                }
                Effect::CancelTimer(timer) => o.cancel_timer(Timer::Replica(timer)),
                Effect::Persist(w) => {
                    let sv = saved.get_or_insert_with(|| (**s.saved).clone());
                    R::apply_write(&mut sv.durable, &w);
                }
                Effect::Commit { slot, cmd } => {
                    if slot <= s.reported {
                        s.checks.fail(HostCheck::Order);
                    }
                    s.reported = s.reported.max(slot);
                    let sv = saved.get_or_insert_with(|| (**s.saved).clone());
                    match sv.applied.binary_search_by_key(&slot, |(k, _)| *k) {
                        Ok(i) => {
                            // Reported again after a restart: the host applied it already.
                            if sv.applied[i].1 != cmd {
                                s.checks.fail(HostCheck::Prefix);
                            }
                        }
                        Err(i) => {
                            if i < sv.applied.len() {
                                // A slot below one already applied: a hole in the prefix.
                                s.checks.fail(HostCheck::Prefix);
                            }
                            let answer = if cfg.bug(paxraft_impls::Bug::DuplicateApply) {
                                sv.sm.apply_without_dedup_or_apply(&cmd)
                            } else {
                                sv.sm.apply(&cmd)
                            };
                            if sv.first_commit_term == 0 {
                                sv.first_commit_term = s.replica.status().term.max(1);
                            }
                            // The leader answers; a retry reaching a later leader is answered
                            // from the session.
                            if let (true, Ok(answer)) = (leader, answer) {
                                let seq = cmd.seq;
                                o.send(
                                    Id::from(cmd.client as usize),
                                    Msg::Reply {
                                        seq,
                                        answer: answer.into(),
                                    },
                                );
                            }
                            sv.applied.insert(i, (slot, cmd));
                        }
                    }
                }
                Effect::Redirect { cmd, leader } => {
                    o.send(
                        Id::from(cmd.client as usize),
                        Msg::Redirect {
                            seq: cmd.seq,
                            leader,
                        },
                    );
                }
            }
        }
        let status = s.replica.status();
        let term = status.term;
        if term < s.saved.term || saved.as_ref().is_some_and(|sv| term < sv.term) {
            s.checks.fail(HostCheck::Terms);
        }
        // The replica's memory dies with a torn step: only a term some send exposed counts.
        let exposed = !torn || sent;
        if exposed && term > s.saved.term && saved.is_none() {
            saved = Some((**s.saved).clone());
        }
        if !torn && status.commit > s.known_commit {
            // Learn which newly committed slots are no-ops (they are not reported).
            let committed = s.replica.committed();
            let sv = saved.get_or_insert_with(|| (**s.saved).clone());
            for (&slot, entry) in committed.range(s.known_commit + 1..=status.commit) {
                if entry.is_none() {
                    if let Err(i) = sv.noops.binary_search(&slot) {
                        sv.noops.insert(i, slot);
                    }
                }
            }
            s.known_commit = status.commit;
        }
        if torn {
            let sv = saved.get_or_insert_with(|| (**s.saved).clone());
            sv.torn_crashes = sv.torn_crashes.saturating_add(1);
        }
        if let Some(mut sv) = saved {
            if exposed {
                sv.term = sv.term.max(term);
            }
            s.saved = Arc::new(Hashed::new(sv));
            o.save(s.saved.clone());
        }
    }

    /// Run one replica step on a copy of the server state, check the protocol's step
    /// invariants against the state before, and carry out the effects. Leaves `state`
    /// borrowed when nothing happened, so stateright prunes the no-op.
    fn server_step(
        &self,
        state: &mut Cow<NodeState<R>>,
        o: &mut ModelOut<R>,
        f: impl FnOnce(&mut R, &mut Out<R, Cmd>),
    ) {
        let Node::Server {
            step_invariants, ..
        } = self
        else {
            unreachable!()
        };
        let NodeState::Server(before) = &**state else {
            unreachable!("servers have server state")
        };
        let mut s = before.clone();
        let mut out = Out::<R, Cmd>::new();
        f(&mut s.replica, &mut out);
        if out.is_empty() && s.replica == before.replica {
            return;
        }
        for (records, check) in step_invariants.iter() {
            if check(&before.replica, &s.replica).is_err() {
                s.checks.fail(*records);
            }
        }
        self.host(&mut s, &mut out, o, None);
        *state = Cow::Owned(NodeState::Server(s));
    }
}

/// Bug zoo B2 when the feature is on; plain session apply otherwise.
trait ApplyMaybeTwice {
    fn apply_without_dedup_or_apply(&mut self, cmd: &Cmd) -> paxraft_impls::sm::Applied<Kv>;
}

impl ApplyMaybeTwice for Sessions<Kv> {
    fn apply_without_dedup_or_apply(&mut self, cmd: &Cmd) -> paxraft_impls::sm::Applied<Kv> {
        #[cfg(feature = "bug-zoo")]
        {
            self.apply_without_dedup(cmd)
        }
        #[cfg(not(feature = "bug-zoo"))]
        {
            self.apply(cmd)
        }
    }
}

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
        }
    }

    fn on_start(&self, id: Id, storage: &Option<Storage<R>>, o: &mut ModelOut<R>) -> NodeState<R> {
        match self {
            Node::Server { members, cfg, .. } => {
                let me = NodeId(usize::from(id) as u8);
                let mut out = Out::<R, Cmd>::new();
                let (replica, saved) = match storage {
                    None => {
                        let saved = Saved::<R> {
                            durable: R::Durable::default(),
                            sm: Sessions::new(),
                            applied: Vec::new(),
                            noops: Vec::new(),
                            term: 0,
                            first_commit_term: 0,
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
                };
                self.host(&mut s, &mut out, o, Some(saved));
                NodeState::Server(s)
            }
            Node::Client {
                servers,
                ops,
                pipeline,
                ..
            } => {
                let mut c = ClientState {
                    seq: 0,
                    done: 0,
                    ahead: 0,
                    target: (usize::from(id) % usize::from(*servers)) as u8,
                    retries: 0,
                };
                if !ops.is_empty() {
                    client_issue(id, &mut c, ops, *servers, *pipeline, o);
                }
                NodeState::Client(c)
            }
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
                self.server_step(state, o, |r, out| r.on_message(from, m, out));
            }
            (Node::Server { cfg, .. }, Msg::Request(cmd)) => {
                // Bug zoo R10 (stale read): a replica that believes it leads answers a get
                // from its local store, skipping the log round that would confirm it still
                // leads. The correct path (default) sends reads through the log like writes.
                if let (true, KvOp::Get(key), Some(s)) = (
                    cfg.bug(paxraft_impls::Bug::StaleRead),
                    &cmd.op,
                    state.server(),
                ) {
                    if s.replica.status().role == Role::Leader {
                        let answer = Answer::Value(s.saved.sm.state().get(*key).cloned());
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
                self.server_step(state, o, |r, out| r.propose(vec![cmd], out))
            }
            (
                Node::Client {
                    servers,
                    ops,
                    pipeline,
                    ..
                },
                Msg::Reply { seq, .. },
            ) => {
                let Some(c) = state.client() else { return };
                // Replies to requests the client no longer waits for are ignored (duplicates,
                // answers to earlier retries).
                if !c.awaits(seq) {
                    return;
                }
                let mut c = c.clone();
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
                    Msg::Request(client_request(id, ops, &c, seq as u8)),
                );
                *state = Cow::Owned(NodeState::Client(c));
            }
            _ => {}
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
            (Node::Server { .. }, Timer::Replica(t)) => {
                let t = *t;
                self.server_step(state, o, |r, out| r.on_timer(t, out));
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
                        Msg::Request(client_request(id, ops, &c, k)),
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

// ---------------------------------------------------------------------------------------------
// History: what the clients saw, for the linearizability tester
// ---------------------------------------------------------------------------------------------

/// The key-value store as a sequential specification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec(pub Kv);

impl SequentialSpec for KvSpec {
    type Op = KvOp;
    type Ret = Answer;
    fn invoke(&mut self, op: &KvOp) -> Answer {
        self.0.apply(op).into()
    }
}

/// The clients' history. A retried request is one invocation; its first matching reply is
/// its return, and later duplicates are not recorded (the clients ignore them too).
///
/// Every explored state holds one, and most steps do not change it: it is shared (`Arc`),
/// hashed once per change ([`Hashed`]), and its verdict is computed once per change too, so
/// cloning, fingerprinting and checking a state cost nothing for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct History(Arc<Hashed<HistoryLog>>);

impl std::ops::Deref for History {
    type Target = HistoryLog;
    fn deref(&self) -> &HistoryLog {
        &self.0
    }
}

/// What [`History`] shares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryLog {
    /// Whether `tester` finds the history linearizable (kept up to date on every change).
    pub consistent: bool,
    /// Invocations and returns, per client.
    pub tester: LinearizabilityTester<Id, KvSpec>,
    /// Per client (by client index): highest sequence number invoked, and returned.
    pub invoked: Vec<(u8, u8)>,
    /// Number of servers (client `c` is actor `servers + c`).
    servers: u8,
    /// Messages sent and not delivered, counted only under a loss budget: whatever of them
    /// is not in the network was lost.
    pub undelivered: u16,
}

impl History {
    fn new(cfg: &ModelConfig) -> Self {
        History::from(HistoryLog {
            consistent: true,
            tester: LinearizabilityTester::new(KvSpec::default()),
            invoked: vec![(0, 0); cfg.clients],
            servers: cfg.servers as u8,
            undelivered: 0,
        })
    }

    fn from(log: HistoryLog) -> Self {
        History(Arc::new(Hashed::new(log)))
    }

    /// This history with `n` fewer messages counted as sent and undelivered (the checker
    /// dropped them as garbage: they were not lost).
    pub(crate) fn forget_undelivered(&self, n: usize) -> Self {
        let mut log = (**self.0).clone();
        log.undelivered = log.undelivered.saturating_sub(n as u16);
        History::from(log)
    }
}

impl HistoryLog {
    fn client(&self, id: Id) -> Option<usize> {
        usize::from(id)
            .checked_sub(usize::from(self.servers))
            .filter(|&c| c < self.invoked.len())
    }
}

fn record_out<R: Replica<Cmd>>(
    setup: &Setup<R>,
    h: &History,
    env: Envelope<&Msg<R::Msg>>,
) -> Option<History> {
    let counted = if setup.cfg.max_losses.is_some() {
        let mut h = (**h.0).clone();
        h.undelivered += 1;
        Some(h)
    } else {
        None
    };
    let invocation = match env.msg {
        Msg::Request(cmd) => h
            .client(env.src)
            .filter(|&c| cmd.seq > u64::from(h.invoked[c].0)),
        _ => None, // not a request, or a retry of an invocation already recorded
    };
    let Some(c) = invocation else {
        return counted.map(History::from);
    };
    let Msg::Request(cmd) = env.msg else {
        unreachable!()
    };
    let mut h = counted.unwrap_or_else(|| (**h.0).clone());
    let _ = h.tester.on_invoke(env.src, cmd.op.clone());
    h.invoked[c].0 = cmd.seq as u8;
    h.consistent = h.tester.is_consistent();
    Some(History::from(h))
}

fn record_in<R: Replica<Cmd>>(
    setup: &Setup<R>,
    h: &History,
    env: Envelope<&Msg<R::Msg>>,
) -> Option<History> {
    let counted = if setup.cfg.max_losses.is_some() {
        let mut h = (**h.0).clone();
        h.undelivered = h.undelivered.saturating_sub(1);
        Some(h)
    } else {
        None
    };
    let Msg::Reply { seq, answer } = env.msg else {
        return counted.map(History::from);
    };
    let Some(c) = h.client(env.dst) else {
        return counted.map(History::from);
    };
    let (invoked, returned) = h.invoked[c];
    if *seq != u64::from(invoked) || returned >= invoked {
        return counted.map(History::from); // not awaited: the client ignores it
    }
    let mut h = counted.unwrap_or_else(|| (**h.0).clone());
    let _ = h.tester.on_return(env.dst, answer.clone());
    h.invoked[c].1 = invoked;
    h.consistent = h.tester.is_consistent();
    Some(History::from(h))
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

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
pub fn live_servers<'a, R: Replica<Cmd>>(
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
    // Clients do not crash (their retries are the model of a client that gives up).
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
pub fn with_invariant_view<R: Replica<Cmd>, T>(
    setup: &Setup<R>,
    state: &ClusterState<R>,
    f: impl FnOnce(&[&R]) -> T,
) -> T {
    let n = setup.cfg.servers;
    let crashed = state.crashed[..n].iter().any(|&c| c);
    // Most states have no server down: no members list, no boot.
    let members: Vec<NodeId> = if crashed {
        (0..n as u8).map(NodeId).collect()
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
    let members: Arc<Vec<NodeId>> = Arc::new((0..cfg.servers as u8).map(NodeId).collect());
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
    ActorModel::new(setup, History::new(cfg))
        .actors((0..cfg.servers).map(|_| Node::Server {
            members: members.clone(),
            cfg: protocol.clone(),
            step_invariants: step_invariants.clone(),
        }))
        .actors((0..cfg.clients).map(|c| Node::Client {
            servers: cfg.servers as u8,
            ops: Arc::new((0..cfg.ops).map(|k| cfg.op(c, k)).collect()),
            max_retries: cfg.max_retries,
            pipeline: cfg.pipeline.clamp(1, MAX_PIPELINE) as u8,
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

#[cfg(test)]
mod tests {
    use super::ClientState;

    fn client() -> ClientState {
        ClientState::default()
    }

    /// The answered prefix grows over answers that came ahead of it; what is below it or
    /// not yet issued is not awaited, nor is an answer received twice.
    #[test]
    fn a_pipelined_client_awaits_exactly_its_unanswered_ops() {
        let mut c = ClientState { seq: 5, ..client() };
        assert_eq!(c.unanswered().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        c.answer(3);
        c.answer(5);
        assert_eq!((c.done, c.ahead), (0, 0b1010));
        assert!(!c.awaits(3) && !c.awaits(5) && !c.awaits(6) && !c.awaits(0));
        assert_eq!(c.unanswered().collect::<Vec<_>>(), [1, 2, 4]);
        c.answer(2);
        assert_eq!((c.done, c.ahead), (0, 0b1011));
        c.answer(1);
        // 1, 2, 3 answered: the prefix slides over 2 and 3 and stops at 4.
        assert_eq!((c.done, c.ahead), (3, 0b1));
        assert!(c.waiting() && c.awaits(4) && !c.awaits(5));
        c.answer(4);
        assert_eq!((c.done, c.ahead), (5, 0));
        assert!(!c.waiting());
        assert_eq!(c.unanswered().count(), 0);
    }

    /// One request at a time, the window is the old client's: the op issued is the only one
    /// awaited, and `ahead` never holds a bit.
    #[test]
    fn a_client_without_pipelining_awaits_its_last_op_only() {
        let mut c = client();
        for k in 1..=4u8 {
            c.seq = k;
            assert!(c.awaits(u64::from(k)) && !c.awaits(u64::from(k) - 1));
            c.answer(u64::from(k));
            assert_eq!((c.done, c.ahead), (k, 0));
        }
    }
}
