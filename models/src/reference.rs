//! A minimal reference model: single-decree Paxos over a write-once register, written
//! directly against stateright's actor API, with none of this crate's harness (no
//! [`paxraft_impls::Replica`], no sessions, no cuts). It is the yardstick the checker's speed
//! is compared with (`bench/benches/model_check.rs`): how many unique states per second, and
//! how many bytes per unique state, a small hand-written stateright model of consensus
//! reaches on the same machine in the same run.
//!
//! Shape, chosen to be comparable with the cluster model's defaults: three servers that are
//! each proposer, acceptor and learner (Lamport, "Paxos Made Simple", §2.2–2.3); `clients`
//! clients that each write their own value once and then read; an unordered *duplicating*
//! network (every message may be delivered any number of times); linearizability of the
//! register checked by stateright's tester. There are no timers and no retries: a proposal
//! that is pre-empted stays stuck, which keeps the space finite without a depth bound.
//!
//! The register is write-once (a consensus object): a write returns the value the register
//! holds after it, which is the first value written. So every client's write is answered,
//! whichever proposal wins, and the read after it is checked against the decision.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use stateright::actor::{Actor, ActorModel, ActorModelState, Envelope, Id, Network, Out};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use stateright::{Checker, Expectation, Model};

use crate::check::{Kind, Status, Strategy};
use crate::memory::Meter;

/// Servers in the reference model (a majority is two).
pub const SERVERS: usize = 3;
const MAJORITY: u32 = 2;

/// A value a client writes: client `c` writes `c + 1`.
pub type Value = u8;

/// A ballot: (round, proposer), ordered by round first, ties broken by the proposer's index.
pub type Ballot = (u8, u8);

/// Messages: client requests and answers, and the two phases of Paxos plus the learners'
/// announcement.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefMsg {
    /// Client: write `Value` (if the register is empty).
    Write(Value),
    /// Client: read the register.
    Read,
    /// Server: the register holds this value after the write.
    Wrote(Value),
    /// Server: the register holds this value.
    Value(Value),
    /// Phase 1a.
    Prepare(Ballot),
    /// Phase 1b: the promise, with the acceptor's highest accepted proposal.
    Promise(Ballot, Option<(Ballot, Value)>),
    /// Phase 2a.
    Accept(Ballot, Value),
    /// Phase 2b.
    Accepted(Ballot),
    /// A proposer saw its value chosen.
    Chosen(Value),
}

/// A server's proposal in progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Its ballot.
    pub ballot: Ballot,
    /// The client whose write started it (answered when a value is chosen).
    pub client: Id,
    /// The client's value, proposed unless a promise reports an accepted one.
    pub own: Value,
    /// Servers that promised (bit per server).
    pub promises: u8,
    /// The highest-ballot accepted proposal the promises reported.
    pub highest: Option<(Ballot, Value)>,
    /// The value sent in phase 2 (`None`: still in phase 1).
    pub proposed: Option<Value>,
    /// Servers that accepted (bit per server).
    pub accepts: u8,
}

/// A server: acceptor, learner and (for one client write) proposer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServerState {
    /// Highest ballot promised.
    pub promised: Ballot,
    /// Highest-ballot proposal accepted.
    pub accepted: Option<(Ballot, Value)>,
    /// The chosen value, once learned.
    pub chosen: Option<Value>,
    /// Its proposal, if a client's write started one and it has not learned a value yet.
    pub proposal: Option<Proposal>,
    /// Whether it has proposed (each server proposes at most once).
    pub proposed: bool,
}

/// A client: write, then read, then done.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// Waiting for the write's answer.
    Writing,
    /// Waiting for the read's answer.
    Reading,
    /// Both answered.
    Done,
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefState {
    /// A server.
    Server(ServerState),
    /// A client.
    Client(ClientState),
}

/// The actors.
#[derive(Clone, Debug)]
pub enum RefActor {
    /// A Paxos server.
    Server,
    /// A client; it writes to `write_to` and reads from the next server.
    Client {
        /// The server it writes to.
        write_to: Id,
    },
}

fn others(me: Id) -> impl Iterator<Item = Id> {
    (0..SERVERS).map(Id::from).filter(move |&i| i != me)
}

fn bit(id: Id) -> u8 {
    1 << usize::from(id)
}

impl RefActor {
    /// What a server does with `msg`; `None` when it ignores it (stateright then treats the
    /// delivery as a no-op).
    fn server(
        me: Id,
        s: &ServerState,
        src: Id,
        msg: RefMsg,
        o: &mut Out<Self>,
    ) -> Option<ServerState> {
        let mut s = s.clone();
        match msg {
            RefMsg::Write(v) => {
                if let Some(chosen) = s.chosen {
                    // Decided already: the write is linearized after the first one.
                    o.send(src, RefMsg::Wrote(chosen));
                    return None;
                }
                if s.proposed {
                    return None; // one proposal per server keeps the space finite
                }
                // Phase 1a with a round above any promised; the proposer promises itself.
                let ballot = (s.promised.0 + 1, usize::from(me) as u8);
                s.promised = ballot;
                s.proposed = true;
                s.proposal = Some(Proposal {
                    ballot,
                    client: src,
                    own: v,
                    promises: bit(me),
                    highest: s.accepted,
                    proposed: None,
                    accepts: 0,
                });
                for p in others(me) {
                    o.send(p, RefMsg::Prepare(ballot));
                }
            }
            RefMsg::Read => {
                // Only a learned value can be read: an empty answer could miss a value
                // chosen elsewhere.
                let chosen = s.chosen?;
                o.send(src, RefMsg::Value(chosen));
                return None;
            }
            RefMsg::Prepare(b) => {
                if b <= s.promised {
                    return None;
                }
                s.promised = b;
                o.send(src, RefMsg::Promise(b, s.accepted));
            }
            RefMsg::Promise(b, accepted) => {
                let p = s.proposal.as_mut()?;
                if p.ballot != b || p.proposed.is_some() || p.promises & bit(src) != 0 {
                    return None;
                }
                p.promises |= bit(src);
                if accepted.is_some_and(|a| p.highest.map_or(true, |h| a.0 > h.0)) {
                    p.highest = accepted;
                }
                if p.promises.count_ones() >= MAJORITY {
                    // Phase 2a: the value of the highest accepted proposal, else our own.
                    let v = p.highest.map_or(p.own, |(_, v)| v);
                    p.proposed = Some(v);
                    if s.promised == b {
                        s.accepted = Some((b, v));
                        p.accepts = bit(me);
                    }
                    for q in others(me) {
                        o.send(q, RefMsg::Accept(b, v));
                    }
                }
            }
            RefMsg::Accept(b, v) => {
                if b < s.promised {
                    return None;
                }
                s.promised = b;
                s.accepted = Some((b, v));
                o.send(src, RefMsg::Accepted(b));
            }
            RefMsg::Accepted(b) => {
                let p = s.proposal.as_mut()?;
                if p.ballot != b || p.accepts & bit(src) != 0 {
                    return None;
                }
                let v = p.proposed?;
                p.accepts |= bit(src);
                if p.accepts.count_ones() >= MAJORITY {
                    for q in others(me) {
                        o.send(q, RefMsg::Chosen(v));
                    }
                    learn(&mut s, v, o);
                }
            }
            RefMsg::Chosen(v) => {
                if s.chosen.is_some() {
                    return None;
                }
                learn(&mut s, v, o);
            }
            RefMsg::Wrote(_) | RefMsg::Value(_) => return None,
        }
        Some(s)
    }
}

/// A server learns the chosen value; its pending client write is answered with it.
fn learn(s: &mut ServerState, v: Value, o: &mut Out<RefActor>) {
    s.chosen = Some(v);
    if let Some(p) = s.proposal.take() {
        o.send(p.client, RefMsg::Wrote(v));
    }
}

impl Actor for RefActor {
    type Msg = RefMsg;
    type State = RefState;
    type Timer = ();
    type Random = ();
    type Storage = ();

    fn on_start(&self, id: Id, _: &Option<()>, o: &mut Out<Self>) -> RefState {
        match self {
            RefActor::Server => RefState::Server(ServerState::default()),
            RefActor::Client { write_to } => {
                o.send(*write_to, RefMsg::Write(value_of(id)));
                RefState::Client(ClientState::Writing)
            }
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<RefState>, src: Id, msg: RefMsg, o: &mut Out<Self>) {
        match (self, &**state) {
            (RefActor::Server, RefState::Server(s)) => {
                if let Some(next) = Self::server(id, s, src, msg, o) {
                    *state = Cow::Owned(RefState::Server(next));
                }
            }
            (RefActor::Client { write_to }, RefState::Client(c)) => match (c, msg) {
                (ClientState::Writing, RefMsg::Wrote(_)) => {
                    let read_from = Id::from((usize::from(*write_to) + 1) % SERVERS);
                    o.send(read_from, RefMsg::Read);
                    *state = Cow::Owned(RefState::Client(ClientState::Reading));
                }
                (ClientState::Reading, RefMsg::Value(_)) => {
                    *state = Cow::Owned(RefState::Client(ClientState::Done));
                }
                _ => {} // a duplicate or late answer
            },
            _ => {}
        }
    }
}

fn value_of(client: Id) -> Value {
    (usize::from(client) - SERVERS + 1) as u8
}

/// The write-once register as a sequential specification: the first write sets the value,
/// every write returns the value held after it, a read returns it (0: empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WriteOnce(pub Value);

/// An operation on [`WriteOnce`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegOp {
    /// Write a value (if empty).
    Write(Value),
    /// Read.
    Read,
}

impl SequentialSpec for WriteOnce {
    type Op = RegOp;
    type Ret = Value;
    fn invoke(&mut self, op: &RegOp) -> Value {
        if let (RegOp::Write(v), 0) = (op, self.0) {
            self.0 = *v;
        }
        self.0
    }
}

/// The clients' history: the tester, and per client whether an op is outstanding (so that a
/// duplicated answer is recorded once, as the client takes it once).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefHistory {
    /// Invocations and returns.
    pub tester: LinearizabilityTester<Id, WriteOnce>,
    /// Bit per client: an op is outstanding.
    pub outstanding: u8,
}

fn client_bit(id: Id) -> u8 {
    1 << (usize::from(id) - SERVERS)
}

fn record_out(_: &usize, h: &RefHistory, env: Envelope<&RefMsg>) -> Option<RefHistory> {
    let op = match env.msg {
        RefMsg::Write(v) => RegOp::Write(*v),
        RefMsg::Read => RegOp::Read,
        _ => return None,
    };
    let mut h = h.clone();
    let _ = h.tester.on_invoke(env.src, op);
    h.outstanding |= client_bit(env.src);
    Some(h)
}

fn record_in(_: &usize, h: &RefHistory, env: Envelope<&RefMsg>) -> Option<RefHistory> {
    let (RefMsg::Wrote(v) | RefMsg::Value(v)) = env.msg else {
        return None;
    };
    if h.outstanding & client_bit(env.dst) == 0 {
        return None;
    }
    let mut h = h.clone();
    let _ = h.tester.on_return(env.dst, *v);
    h.outstanding &= !client_bit(env.dst);
    Some(h)
}

/// The reference model's state.
pub type RefModelState = ActorModelState<RefActor, RefHistory>;

/// The reference model with `clients` clients (at most 8): client `c` writes to server
/// `c % 3` and reads from the next one.
pub fn model(clients: usize) -> ActorModel<RefActor, usize, RefHistory> {
    ActorModel::new(
        clients,
        RefHistory {
            tester: LinearizabilityTester::new(WriteOnce::default()),
            outstanding: 0,
        },
    )
    .actors((0..SERVERS).map(|_| RefActor::Server))
    .actors((0..clients.min(8)).map(|c| RefActor::Client {
        write_to: Id::from(c % SERVERS),
    }))
    .init_network(Network::new_unordered_duplicating([]))
    .property(Expectation::Always, "linearizable", |_, s| {
        s.history.tester.serialized_history().is_some()
    })
    .property(Expectation::Always, "one value is chosen", |_, s| {
        let mut chosen = servers(s).filter_map(|s| s.chosen);
        chosen.next().map_or(true, |v| chosen.all(|w| w == v))
    })
    .property(Expectation::Sometimes, "a value is chosen", |_, s| {
        servers(s).any(|s| s.chosen.is_some())
    })
    .property(
        Expectation::Sometimes,
        "every client is answered",
        |_, s| {
            s.actor_states
                .iter()
                .all(|a| !matches!(**a, RefState::Client(ref c) if *c != ClientState::Done))
        },
    )
    .record_msg_out(record_out)
    .record_msg_in(record_in)
}

fn servers(s: &RefModelState) -> impl Iterator<Item = &ServerState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        RefState::Server(s) => Some(s),
        RefState::Client(_) => None,
    })
}

/// The outcome of checking the reference model.
#[derive(Clone, Debug)]
pub struct RefSummary {
    /// Clients.
    pub clients: usize,
    /// Search strategy.
    pub strategy: Strategy,
    /// Checker threads.
    pub threads: usize,
    /// Distinct states.
    pub unique_states: usize,
    /// States generated, duplicates included.
    pub total_states: usize,
    /// Deepest path (stateright's count, the initial state at depth 1).
    pub max_depth: usize,
    /// Wall time.
    pub seconds: f64,
    /// Bytes the process grew by per unique state ([`crate::memory`]).
    pub bytes_per_state: Option<f64>,
    /// Every property's verdict, in the model's order.
    pub properties: Vec<(&'static str, Kind, Status)>,
}

impl RefSummary {
    /// Properties that failed: an always-property violated, a sometimes-property unreached.
    pub fn failures(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|(_, _, status)| !status.ok())
            .map(|(name, _, _)| *name)
            .collect()
    }

    /// Unique states per second.
    pub fn states_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.unique_states as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Check the reference model exhaustively.
pub fn check(clients: usize, strategy: Strategy, threads: usize) -> RefSummary {
    let model = model(clients);
    let props = model.properties();
    let meter = Meter::start();
    let start = Instant::now();
    let builder = model.checker().threads(threads.max(1));
    let checker: Box<dyn Checker<_>> = match strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()),
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut checker = checker;
    for h in checker.handles() {
        h.join().expect("a checker thread panicked");
    }
    let seconds = start.elapsed().as_secs_f64();
    let unique_states = checker.unique_state_count();
    let bytes_per_state = meter.bytes_per_state(unique_states);
    let discoveries = checker.discoveries();
    let properties = props
        .iter()
        .map(|p| {
            let found = discoveries.contains_key(p.name);
            let verdict = match (&p.expectation, found) {
                (Expectation::Sometimes, true) => (Kind::Sometimes, Status::Reached),
                (Expectation::Sometimes, false) => (Kind::Sometimes, Status::NotReached),
                (_, true) => (Kind::Always, Status::Violated),
                (_, false) => (Kind::Always, Status::Holds),
            };
            (p.name, verdict.0, verdict.1)
        })
        .collect();
    RefSummary {
        clients,
        strategy,
        threads,
        unique_states,
        total_states: checker.state_count(),
        max_depth: checker.max_depth(),
        seconds,
        bytes_per_state,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clients: every property holds or is reached, and the space is explored whole (no
    /// bound cuts it: the run ends on its own).
    #[test]
    fn the_reference_model_passes_with_two_clients() {
        let s = check(2, Strategy::Bfs, 1);
        assert!(s.failures().is_empty(), "{:?}", s.properties);
        assert_eq!(s.properties.len(), 4);
        assert!(s.unique_states > 1000, "{}", s.unique_states);
    }

    /// The linearizability property is not vacuous: a read of a value other than the one
    /// written first is refused by the tester with this specification.
    #[test]
    fn the_register_spec_refuses_two_different_reads() {
        let mut t = LinearizabilityTester::<u8, WriteOnce>::new(WriteOnce::default());
        t.on_invoke(0, RegOp::Write(1)).unwrap();
        t.on_return(0, 1).unwrap();
        t.on_invoke(1, RegOp::Read).unwrap();
        t.on_return(1, 2).unwrap();
        assert!(t.serialized_history().is_none());
    }
}
