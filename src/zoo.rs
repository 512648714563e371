//! The bug zoo: every known bug of ../shared/BUGZOO.md with the smallest configuration that
//! exposes it, the property expected to catch it, and the runner that proves the checks have
//! teeth: with the bug switched on the expected property must fail (BFS: the shortest trace),
//! and the very same configuration with no bug must pass (no false alarm).
//!
//! The switches themselves live in the protocols ([`paxraft_impls::bugs`]) and the model's
//! server host (R10, B2), compiled only with the `bug-zoo` feature; [`bugs_compiled`] says
//! whether this build carries them.
//!
//! Bugs whose symptom is a lost liveness property that a state predicate cannot express
//! soundly in a model where timers fire at any moment are registered with a
//! [`Detector::Schedules`] detector: the fault-schedule search of [`crate::simulate`]
//! ([`crate::simulate::cluster::hunt_with`]), whose runs end with a fault-free settling phase and the `settles`
//! liveness check, with the bug on and then off.
//!
//! Attribution ([`replay`]): every caught bug's counterexample, the BFS trace or the shrunk
//! schedule, is replayed with the bug switched off and must pass; one that fails there too is a
//! false attribution and the bug counts as not shown ([`Outcome::ok`]).

pub mod replay;

use std::time::{Duration, Instant};

use paxraft_impls::raft::names::{ELECTION_SAFETY, LEADER_COMPLETENESS};
use paxraft_impls::Bug;
use paxraft_models::check::{
    check_command, check_with_paths, Actions, Kind, Progress, SearchOptions, Status, StopAt,
    Strategy,
};
use paxraft_models::checked::build_checked;
use paxraft_models::model::all_servers;
use paxraft_models::properties::names;
use paxraft_models::{Checkable, ModelConfig, Trace};
use stateright::Property;

pub use crate::protocol::Protocol;
use crate::protocol::{with_protocol, Hosted, ProtocolVisitor};
use crate::report::results::{CleanReplay, Provenance, Trace as SavedTrace, ZooEntry};
use crate::simulate::cluster::{
    hunt_checking, replay_checking, SimModel, SimOptions, SimReport, SimState,
};
use crate::simulate::Totals;

/// Whether this build carries the bug switches (the `bug-zoo` cargo feature).
pub fn bugs_compiled() -> bool {
    paxraft_impls::bugs::COMPILED
}

/// How a bug is expected to be caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detector {
    /// Exhaustive model checking (stateright) of `config` to `depth`.
    Model {
        /// The model, with no bug switched on (the runner switches the bug on).
        config: ModelConfig,
        /// BFS gives the shortest counterexample; DFS goes deeper with less memory.
        strategy: Strategy,
        /// Most steps (actions) in an explored path.
        depth: usize,
    },
    /// The proptest fault-schedule search (see [`crate::simulate`]) with these options, the
    /// bug off (the runner switches it on). Bounded by `runs` random schedules.
    Schedules(SimOptions),
}

/// One bug of the zoo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZooBug {
    /// The switch.
    pub bug: Bug,
    /// The protocol it is injected into.
    pub protocol: Protocol,
    /// The property expected to catch it (a name from [`names`] or a protocol invariant).
    pub property: &'static str,
    /// How it is caught, and the smallest configuration that exposes it.
    pub detector: Detector,
    /// Steps of the smallest known scenario in BUGZOO.md, when it gives a number.
    pub known_steps: Option<usize>,
    /// The smallest known scenario, in BUGZOO.md's words.
    pub known: &'static str,
    /// Where the bug comes from: a paper section or the public incident it mirrors.
    pub source: &'static str,
}

/// The smallest model the BFS detectors start from: the defaults with one op per client
/// and without PreVote and CheckQuorum (each adds a round to every election, which lengthens
/// every trace that needs a leader change by two actions). Each bug's clean half runs the
/// same configuration, so a false alarm would show; the in-flight bound stays the default.
fn raft_base() -> ModelConfig {
    let d = ModelConfig::default();
    ModelConfig {
        ops: 1,
        protocol: paxraft_impls::Config {
            pre_vote: false,
            check_quorum: false,
            ..d.protocol.clone()
        },
        ..d
    }
}

/// The knobs of a bug's fault-schedule search that differ between bugs.
#[derive(Copy, Clone)]
struct SimKnobs {
    servers: usize,
    clients: usize,
    ops: usize,
    steps: usize,
    runs: u32,
    loss_pct: u8,
    /// Raft without PreVote and CheckQuorum: leaders change far more often, which the safety
    /// bugs need (the clean half runs without them too).
    no_pre_vote: bool,
}

const RAFT_SIM: SimKnobs = SimKnobs {
    servers: 3,
    clients: 2,
    ops: 3,
    steps: 200,
    runs: 2_000,
    loss_pct: 5,
    no_pre_vote: true,
};

const PAXOS_SIM: SimKnobs = SimKnobs {
    no_pre_vote: false,
    ..RAFT_SIM
};

/// More clients and ops: more slots in flight when leaders change.
const PAXOS_SIM_DEEP: SimKnobs = SimKnobs {
    clients: 3,
    ops: 6,
    steps: 300,
    runs: 5_000,
    loss_pct: 10,
    ..PAXOS_SIM
};

/// A fault-schedule search: short runs with partition windows and some message loss (a
/// leader change needs them), then a fault-free settling phase after which every op must be
/// answered and every server agree. No crashes, no duplicates: the bugs need neither.
fn sim(k: SimKnobs) -> SimOptions {
    let mut protocol = paxraft_impls::Config::default();
    if k.no_pre_vote {
        protocol.pre_vote = false;
        protocol.check_quorum = false;
    }
    SimOptions {
        seed: 0,
        runs: k.runs,
        steps: k.steps,
        settle_steps: 1_000,
        servers: k.servers,
        clients: k.clients,
        ops: k.ops,
        // One request per client at a time and whole steps (no crashes here anyway): the
        // tuned searches below were measured that way.
        pipeline: 1,
        mid_step: false,
        loss_pct: k.loss_pct,
        dup_pct: 0,
        crash_pct: 0,
        crashes: 0,
        partitions: true,
        protocol,
        max_shrink_iters: 300,
    }
}

/// R1's search. A new leader's own no-op rides on every AppendEntries it sends, so an
/// older-term entry is almost never counted alone (the Figure 8 window) unless appends carry
/// one entry each (`max_batch` 1); and Figure 8 needs leaders to crash and come back.
fn figure8_sim() -> SimOptions {
    let mut o = sim(RAFT_SIM);
    o.protocol.max_batch = 1;
    o.crash_pct = 5;
    o.crashes = 3;
    o.runs = 3_000;
    o.steps = 400;
    o
}

fn model(config: ModelConfig, depth: usize) -> Detector {
    Detector::Model {
        config,
        strategy: Strategy::Bfs,
        depth,
    }
}

/// Every bug of BUGZOO.md, in its order, with its detector.
pub fn registry() -> Vec<ZooBug> {
    use Bug::*;
    let d = raft_base();
    vec![
        ZooBug {
            bug: Figure8Commit,
            protocol: Protocol::Raft,
            // The entry committed too early is missing from the next leader's log before that
            // leader overwrites it anywhere: leader completeness fails first.
            property: LEADER_COMPLETENESS,
            detector: Detector::Schedules(figure8_sim()),
            known_steps: Some(11),
            known: "3 nodes, ~11 events",
            source: "Raft paper §5.4.2 and Figure 8",
        },
        ZooBug {
            bug: VoteWithoutLogCheck,
            protocol: Protocol::Raft,
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "3 nodes, a committed entry on two, the empty third wins",
            source: "Raft paper §5.4.1 (election restriction)",
        },
        ZooBug {
            bug: VoteNotPersisted,
            protocol: Protocol::Raft,
            property: ELECTION_SAFETY,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    max_crashes: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a crash-restarted voter votes twice in one term",
            source: "Raft paper Figure 2 (persistent state updated before responding)",
        },
        ZooBug {
            bug: LogNotPersisted,
            protocol: Protocol::Raft,
            // Caught first as a leader-completeness failure: the restarted follower lost the
            // entry the leader counted as committed, and wins the next election without it.
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    max_crashes: 1,
                    ..d.clone()
                },
                14,
            ),
            known_steps: None,
            known: "a counted entry lost by a restarted follower",
            source: "Raft paper Figure 2 (log persisted before responding)",
        },
        ZooBug {
            bug: DoubleVote,
            protocol: Protocol::Raft,
            property: ELECTION_SAFETY,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    ..d.clone()
                },
                8,
            ),
            known_steps: Some(4),
            known: "3 nodes, 4 deliveries",
            source: "Raft paper §5.2 (one vote per term, first-come-first-served)",
        },
        ZooBug {
            bug: TruncateOnStaleAppend,
            protocol: Protocol::Raft,
            // Caught first as a leader-completeness failure: the follower's truncation drops
            // an entry below its own commit point, which no leader may lack, many steps before
            // a conflicting command gets applied elsewhere (state machine safety).
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    servers: 2,
                    clients: 1,
                    ..d.clone()
                },
                12,
            ),
            known_steps: None,
            known: "2 nodes, a delayed older AppendEntries",
            source: "Raft paper Figure 2, AppendEntries rule 3 (truncate only on conflict)",
        },
        ZooBug {
            bug: CommitPastVerifiedPrefix,
            protocol: Protocol::Raft,
            // The follower commits its stale no-op of the older term, which the leader's log
            // lacks: leader completeness fails at the very step it is applied.
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    protocol: paxraft_impls::Config {
                        // Our default heartbeat re-sends the probe's entries, so every append
                        // a follower accepts reaches its first conflicting slot and truncates
                        // the stale tail first: R7 is masked. The paper's empty heartbeat
                        // verifies only up to `next - 1` while carrying the leader's commit.
                        empty_heartbeats: true,
                        ..d.protocol.clone()
                    },
                    ..d.clone()
                },
                12,
            ),
            known_steps: None,
            known: "3 nodes, a stale entry from an older term applied",
            source: "Raft paper Figure 2, AppendEntries rule 5 (min(leaderCommit, last new entry))",
        },
        ZooBug {
            bug: NoStepDown,
            protocol: Protocol::Raft,
            property: SETTLES,
            // Not a safety violation in the model: the stale leader cannot commit (every
            // follower refuses its term), but it never steps down, keeps its clients and
            // never learns later commits, so the cluster does not settle.
            detector: Detector::Schedules(sim(SimKnobs { no_pre_vote: false, ..RAFT_SIM })),
            known_steps: None,
            known: "a deposed leader keeps leading beside the new one",
            source: "Raft paper §5.1 (a higher term makes any server a follower)",
        },
        ZooBug {
            bug: NoPreVote,
            protocol: Protocol::Raft,
            property: TERMS_STAY_LOW,
            detector: Detector::Schedules(sim(SimKnobs { no_pre_vote: false, ..RAFT_SIM })),
            known_steps: None,
            known: "a partially partitioned node deposes a healthy leader",
            source: "Ongaro's dissertation §9.6 (PreVote), §6.2 (CheckQuorum); the 2020 etcd partial-partition outage",
        },
        ZooBug {
            bug: StaleRead,
            protocol: Protocol::Raft,
            // A read that starts after a write was answered: one client, a put then a get.
            // n1 leads term 1 unseen; n0 leads term 2 and commits the put; the get goes to
            // n0, the client's retry goes on to n1, which answers from its stale store.
            property: names::LINEARIZABLE,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ops: 2,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "a deposed leader on the minority side returns an old value",
            source: "Ongaro's dissertation §6.4 (ReadIndex, leases); the etcd stale-read issue (Jepsen 2014)",
        },
        ZooBug {
            bug: AcceptBelowPromise,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM_DEEP)),
            known_steps: None,
            known: "3 acceptors, two values chosen for one slot",
            source: "Paxos Made Simple §2.2 (P1a: accept only if no higher promise)",
        },
        ZooBug {
            bug: IgnoreAcceptedValue,
            protocol: Protocol::MultiPaxos,
            // Caught first by state machine safety since it compares no-ops too: the new
            // leader fills the slot a command was chosen in with a no-op of its own (or its
            // own command), and a host learns that no-op committed before any replica
            // holding both commits it (the protocol's "committed slots agree").
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM)),
            known_steps: None,
            known: "a chosen value replaced by the next leader's own",
            source: "Paxos Made Simple §2.2 (P2c: propose the highest-numbered accepted value)",
        },
        ZooBug {
            bug: NonUniqueBallot,
            protocol: Protocol::MultiPaxos,
            // Two proposers with one ballot each get a quorum for their own value in one
            // slot. Both safety checks catch it; since heartbeats re-acknowledge held slots
            // (a multi-Paxos liveness fix), the zoo's search meets state machine safety first.
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM_DEEP)),
            known_steps: None,
            known: "two proposers run the same ballot with different values",
            source: "Paxos Made Simple §2.2 (disjoint proposal numbers); Paxos Made Moderately Complex §3",
        },
        ZooBug {
            bug: ChosenWithoutQuorum,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "clients see v, then w",
            source: "Paxos Made Simple §2.1 (a value is chosen by a majority)",
        },
        ZooBug {
            bug: SkipRecovery,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM)),
            known_steps: None,
            known: "a new leader writes over a possibly chosen slot (the overwrite form)",
            source: "Paxos Made Simple §3 (phase 1 for every open instance, no-ops for gaps)",
        },
        ZooBug {
            bug: GapNotFilled,
            protocol: Protocol::MultiPaxos,
            // Liveness: the hole is never chosen, so no later slot is applied and the clients
            // wait for ever under a healthy leader. A hole needs an Accept lost to the whole
            // next quorum while a later one got through: heavy loss makes that common.
            property: SETTLES,
            detector: Detector::Schedules(sim(SimKnobs {
                loss_pct: 30,
                ..PAXOS_SIM
            })),
            known_steps: None,
            known: "a slot left open by a new leader stalls every later slot (the gap form)",
            source: "Paxos Made Simple §3 (gaps filled with no-ops so later commands can execute)",
        },
        ZooBug {
            bug: PromiseNotPersisted,
            protocol: Protocol::MultiPaxos,
            // Caught first by the host's term check across restarts: the restarted acceptor's
            // promised ballot is lower than the one it promised before the crash, which is the
            // bug itself, before it gets to accept a lower ballot (state machine safety later).
            property: names::TERMS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    max_crashes: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a restarted acceptor accepts a lower ballot it promised to refuse",
            source: "Paxos Made Simple §2.3 (an acceptor remembers its promise through failures)",
        },
        ZooBug {
            bug: ApplyUncommitted,
            protocol: Protocol::Raft,
            // Caught first as a leader-completeness failure: the entry the old leader applied
            // (committed locally) is missing from the next leader's log, before that leader
            // gets a different command applied in the same slot (state machine safety).
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "an entry applied before a majority stores it, then overwritten",
            source: "Raft paper §5.3 (apply only committed entries); Paxos Made Simple §2.4 (learn only chosen values)",
        },
        ZooBug {
            bug: DuplicateApply,
            protocol: Protocol::Raft,
            property: names::LINEARIZABLE,
            detector: model(
                ModelConfig {
                    servers: 1,
                    clients: 3,
                    ops: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a retried request applied twice",
            source: "Ongaro's dissertation §6.3 (client sessions for exactly-once)",
        },
        ZooBug {
            bug: VoteSentBeforePersist,
            protocol: Protocol::Raft,
            // Invisible to a model whose steps are atomic: the voter crashes after its vote
            // left and before the vote reached its disk, restarts, and votes again.
            property: ELECTION_SAFETY,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    max_crashes: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a vote sent, the voter crashes before persisting it and votes again",
            source: "Raft paper Figure 2 (persistent state updated before responding to RPCs); effect contract rule 1",
        },
        ZooBug {
            bug: PromiseSentBeforePersist,
            protocol: Protocol::MultiPaxos,
            // The acceptor crashes after its promise left and before it reached its disk: the
            // restarted acceptor's promise is below the one it announced.
            property: names::TERMS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    max_crashes: 1,
                    ..d
                },
                10,
            ),
            known_steps: None,
            known: "a promise sent, the acceptor crashes before persisting it",
            source: "Paxos Made Simple §2.3 (an acceptor remembers its promise through failures); effect contract rule 1",
        },
    ]
}

/// Look a bug up by name or code.
pub fn find(name: &str) -> Option<ZooBug> {
    let bug = Bug::parse(name)?;
    registry().into_iter().find(|z| z.bug == bug)
}

/// One model-checking run of the zoo.
#[derive(Clone, Debug)]
pub struct Run {
    /// Always-properties that failed, with their traces.
    pub violated: Vec<(&'static str, Trace)>,
    /// Sometimes-properties never reached (only asked for in clean runs).
    pub not_reached: Vec<&'static str>,
    /// Distinct states explored.
    pub states: usize,
    /// Deepest path.
    pub max_depth: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl Run {
    /// The trace of `property`, if it failed.
    pub fn trace(&self, property: &str) -> Option<&Trace> {
        self.violated
            .iter()
            .find(|(n, _)| *n == property)
            .map(|(_, t)| t)
    }
}

pub use crate::simulate::SETTLES;

/// Model-check `cfg` over paths of at most `steps` actions with [`fn@paxraft_models::check`].
/// With a `stop_at` other than [`StopAt::Never`], only always-properties are checked and the
/// search stops soon after the first violation it asks for; with `Never`, every property is
/// checked over the whole bounded space.
///
/// Stateright 0.31 keeps the *last* counterexample a checker block visits, not the first, so
/// a BFS trace can be a step or two longer than the shortest: [`shortest_run`] narrows it.
pub fn model_run<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    stop_at: StopAt,
    progress: impl FnMut(Progress),
) -> Run {
    model_run_paths::<R>(cfg, strategy, steps, threads, stop_at, progress).run
}

/// A model-checking run with the action path behind each of its traces, by property.
struct Found<R: Checkable> {
    run: Run,
    paths: Vec<(&'static str, Actions<R>)>,
}

impl<R: Checkable> Found<R> {
    fn path(&self, property: &str) -> Option<&Actions<R>> {
        self.paths
            .iter()
            .find(|(n, _)| *n == property)
            .map(|(_, p)| p)
    }
}

/// [`model_run`], keeping the paths.
fn model_run_paths<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    stop_at: StopAt,
    progress: impl FnMut(Progress),
) -> Found<R> {
    let search = SearchOptions {
        strategy,
        symmetry: false,
        threads: threads.max(1),
        depth: Some(steps),
        stop_at,
    };
    let (s, paths) = check_with_paths::<R>(cfg, &search, Duration::from_millis(200), progress);
    let run = Run {
        violated: s
            .properties
            .iter()
            .filter(|v| v.status == Status::Violated)
            .filter_map(|v| Some((v.name, v.trace.clone()?)))
            .collect(),
        not_reached: s
            .properties
            .iter()
            .filter(|v| v.kind == Kind::Sometimes && v.status == Status::NotReached)
            .map(|v| v.name)
            .collect(),
        states: s.unique_states,
        max_depth: s.max_depth,
        seconds: s.seconds,
    };
    Found { run, paths }
}

/// Search for `property` failing within `steps`, then search again below each trace's length
/// until no shorter trace exists: the trace returned is a shortest one (BFS). The states and
/// seconds are those of all searches together: the cost of finding the shortest trace.
///
/// The first pass stops at whichever always-property fails first. When that is another
/// property, `property` still counts as caught if it fails within the same number of steps
/// (a tie: BFS with several threads may meet either first); if it only fails later, the bug
/// is reported as escaped, with what failed instead: the registry must name the property
/// that really catches the bug first.
pub fn shortest_run<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    property: &'static str,
    progress: impl FnMut(Progress),
) -> Run {
    shortest::<R>(cfg, strategy, steps, threads, property, progress).run
}

/// [`shortest_run`], keeping the paths of the run it returns.
fn shortest<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    property: &'static str,
    mut progress: impl FnMut(Progress),
) -> Found<R> {
    // `later`'s result, with the work of both counted: the cost of the shortest trace.
    let add = |earlier: &Run, later: Found<R>| Found {
        run: Run {
            states: earlier.states + later.run.states,
            seconds: earlier.seconds + later.run.seconds,
            ..later.run
        },
        paths: later.paths,
    };
    let mut best = model_run_paths::<R>(
        cfg,
        strategy,
        steps,
        threads,
        StopAt::AnyViolation,
        &mut progress,
    );
    if strategy != Strategy::Bfs {
        return best;
    }
    if best.run.trace(property).is_none() {
        let Some(first) = best.run.violated.iter().map(|(_, t)| t.actions).min() else {
            return best; // nothing failed within the bounds
        };
        let tie = model_run_paths::<R>(
            cfg,
            strategy,
            first,
            threads,
            StopAt::Violation(property),
            &mut progress,
        );
        if tie.run.trace(property).is_none() {
            best.run.states += tie.run.states;
            best.run.seconds += tie.run.seconds;
            return best;
        }
        best = add(&best.run, tie);
    }
    // Bounded: each round needs a strictly shorter trace.
    while let Some(len) = best.run.trace(property).map(|t| t.actions) {
        if len <= 1 {
            break;
        }
        let shorter = model_run_paths::<R>(
            cfg,
            strategy,
            len - 1,
            threads,
            StopAt::Violation(property),
            &mut progress,
        );
        if shorter.run.trace(property).is_none() {
            best.run.states += shorter.run.states;
            best.run.seconds += shorter.run.seconds;
            break;
        }
        best = add(&best.run, shorter);
    }
    best
}

/// The outcome of one bug.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Model-checked with the bug on and off.
    Checked {
        /// With the bug on.
        buggy: Run,
        /// The same configuration with no bug, explored exhaustively to the caught trace's
        /// length (`None` when the bug escaped: there is no exposing bound to compare against).
        clean: Option<Run>,
    },
    /// Searched with fault schedules, with the bug on and off.
    Simulated {
        /// With the bug on.
        buggy: Box<SimReport>,
        /// The same options with no bug (`None` when the bug escaped).
        clean: Option<Box<SimReport>>,
    },
}

/// One bug's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The bug and its registry entry.
    pub entry: ZooBug,
    /// What happened.
    pub verdict: Verdict,
    /// The expected property's counterexample replayed with the bug off ([`replay`]);
    /// `None` when the bug escaped (there is nothing to replay).
    pub clean_replay: Option<CleanReplay>,
    /// When the run ended, and the commit of the source tree.
    pub provenance: Provenance,
}

impl Outcome {
    /// Whether the expected property failed with the bug on.
    pub fn caught(&self) -> bool {
        self.trace().is_some()
    }
    /// The expected property's counterexample (shrunk, for the fault-schedule search).
    pub fn trace(&self) -> Option<&Trace> {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => buggy.trace(self.entry.property),
            Verdict::Simulated { buggy, .. } => buggy
                .failure
                .as_ref()
                .filter(|f| f.property == self.entry.property)
                .map(|f| &f.trace),
        }
    }
    /// What failed with the bug on, expected property or not.
    pub fn failed(&self) -> Vec<String> {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => {
                buggy.violated.iter().map(|(n, _)| n.to_string()).collect()
            }
            Verdict::Simulated { buggy, .. } => {
                buggy.failure.iter().map(|f| f.property.clone()).collect()
            }
        }
    }
    /// Whether the clean configuration passed. A model check: no always-property failed and
    /// a leader was elected (a clean run that does nothing proves nothing). A fault-schedule
    /// search: no run failed, and so every run settled with every op answered.
    pub fn clean_passed(&self) -> bool {
        match &self.verdict {
            Verdict::Checked {
                clean: Some(clean), ..
            } => clean.violated.is_empty() && !clean.not_reached.contains(&names::LEADER),
            Verdict::Simulated {
                clean: Some(clean), ..
            } => clean.failure.is_none() && clean.runs > 0,
            Verdict::Checked { clean: None, .. } | Verdict::Simulated { clean: None, .. } => false,
        }
    }
    /// Whether the counterexample replayed with the bug off passed: the failure is the bug's.
    pub fn attributed(&self) -> bool {
        self.clean_replay.as_ref().is_some_and(CleanReplay::clean)
    }
    /// Every check passed: caught with the bug on, silent with it off, and the counterexample
    /// clean without the bug.
    pub fn ok(&self) -> bool {
        self.caught() && self.clean_passed() && self.attributed()
    }
    /// States explored (model checking) or steps run (fault schedules) with the bug on.
    pub fn work(&self) -> u64 {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => buggy.states as u64,
            Verdict::Simulated { buggy, .. } => buggy.steps,
        }
    }
    /// Seconds to detect (or to give up) with the bug on.
    pub fn seconds(&self) -> f64 {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => buggy.seconds,
            Verdict::Simulated { buggy, .. } => buggy.seconds,
        }
    }
    /// The result in the report's format.
    pub fn entry(&self) -> ZooEntry {
        ZooEntry {
            code: self.entry.bug.code().into(),
            name: self.entry.bug.name().into(),
            protocol: self.entry.protocol.name().into(),
            caught: self.caught(),
            property: self.caught().then(|| self.entry.property.to_string()),
            trace_len: self.trace().map(|t| t.steps.len()),
            states: self.work(),
            seconds: self.seconds(),
            trace: self.trace().map(SavedTrace::from_model),
            clean_replay: self.clean_replay.clone(),
            provenance: Some(self.provenance.clone()),
        }
    }
}

/// Which half of a bug's check is running (for progress display).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Half {
    /// The bug switched on.
    Buggy,
    /// No bug.
    Clean,
}

/// `cfg` with `entry`'s bug switched on. `Err` when this build carries no bug switches.
pub fn with_bug(
    entry: &ZooBug,
    cfg: &paxraft_impls::Config,
) -> Result<paxraft_impls::Config, String> {
    let mut cfg = cfg.clone();
    if !cfg.set_bug(entry.bug) {
        return Err("this build carries no bug switches: rebuild with --features bug-zoo".into());
    }
    Ok(cfg)
}

/// Run one bug: with the bug on until the expected property fails (or the bounds are
/// exhausted), then, if it was caught, the same configuration with no bug within the bounds
/// that exposed it, and the counterexample replayed with no bug ([`replay`]). `progress` gets
/// a one-line description of the work so far.
pub fn run(
    entry: &ZooBug,
    threads: usize,
    mut progress: impl FnMut(Half, String),
) -> Result<Outcome, String> {
    let (verdict, clean_replay) = with_protocol(
        entry.protocol,
        RunBug {
            entry,
            threads,
            progress: &mut progress,
        },
    )?;
    Ok(Outcome {
        entry: entry.clone(),
        verdict,
        clean_replay,
        provenance: Provenance::now(),
    })
}

/// [`run`] with the entry's protocol.
struct RunBug<'a> {
    entry: &'a ZooBug,
    threads: usize,
    progress: &'a mut dyn FnMut(Half, String),
}

impl ProtocolVisitor for RunBug<'_> {
    type Output = Result<(Verdict, Option<CleanReplay>), String>;
    fn visit<R: Hosted>(self) -> Self::Output {
        run_as::<R>(self.entry, self.threads, self.progress)
    }
}

fn run_as<R: Hosted>(
    entry: &ZooBug,
    threads: usize,
    progress: &mut dyn FnMut(Half, String),
) -> Result<(Verdict, Option<CleanReplay>), String> {
    Ok(match &entry.detector {
        Detector::Model {
            config,
            strategy,
            depth,
        } => {
            config.validate()?;
            let buggy_cfg = ModelConfig {
                protocol: with_bug(entry, &config.protocol)?,
                ..config.clone()
            };
            let (buggy, clean, replay) = run_model::<R>(
                entry, config, &buggy_cfg, *strategy, *depth, threads, progress,
            );
            (Verdict::Checked { buggy, clean }, replay)
        }
        Detector::Schedules(opts) => {
            opts.validate()?;
            let buggy_opts = SimOptions {
                protocol: with_bug(entry, &opts.protocol)?,
                ..opts.clone()
            };
            let buggy = run_sim::<R>(entry, &buggy_opts, Half::Buggy, progress);
            let caught = buggy
                .failure
                .as_ref()
                .filter(|f| f.property == entry.property);
            // No false alarm: the very same schedules (same seed and runs) with no bug.
            let clean = caught.map(|_| Box::new(run_sim::<R>(entry, opts, Half::Clean, progress)));
            // Attribution: the shrunk schedule that failed, rerun with no bug.
            let replay = caught.map(|f| {
                progress(Half::Clean, "replaying the shrunk schedule".into());
                let start = Instant::now();
                let replayed = replay_checking::<R>(&f.saved, opts, zoo_checks(entry));
                replay::schedule_verdict(&replayed, start.elapsed().as_secs_f64())
            });
            (
                Verdict::Simulated {
                    buggy: Box::new(buggy),
                    clean,
                },
                replay,
            )
        }
    })
}

/// The model-checked halves of one bug: with the bug on (the shortest counterexample), then
/// with no bug exhaustively to that length, and that counterexample replayed with no bug.
fn run_model<R: Checkable>(
    entry: &ZooBug,
    config: &ModelConfig,
    buggy_cfg: &ModelConfig,
    strategy: Strategy,
    depth: usize,
    threads: usize,
    progress: &mut dyn FnMut(Half, String),
) -> (Run, Option<Run>, Option<CleanReplay>) {
    let buggy = shortest::<R>(
        buggy_cfg,
        strategy,
        depth,
        threads,
        entry.property,
        states(Half::Buggy, progress),
    );
    let Some(len) = buggy.run.trace(entry.property).map(|t| t.actions) else {
        return (buggy.run, None, None);
    };
    // No false alarm within the bounds that exposed the bug: the clean configuration is
    // explored exhaustively to the length of the bug's trace.
    let clean = model_run::<R>(
        config,
        strategy,
        len,
        threads,
        StopAt::Never,
        states(Half::Clean, progress),
    );
    let replay = buggy.path(entry.property).map(|path| {
        progress(Half::Clean, "replaying the counterexample".into());
        // No depth bound: the replay is no longer than the counterexample.
        replay::replay_path(&build_checked::<R>(config, None), path)
    });
    (buggy.run, Some(clean), replay)
}

/// The checker's progress as a line for `half`.
fn states<'p>(half: Half, progress: &'p mut dyn FnMut(Half, String)) -> impl FnMut(Progress) + 'p {
    move |x: Progress| {
        progress(
            half,
            format!("{} states, depth {}", x.unique_states, x.max_depth),
        )
    }
}

fn run_sim<R: Hosted>(
    entry: &ZooBug,
    opts: &SimOptions,
    half: Half,
    progress: &mut dyn FnMut(Half, String),
) -> SimReport {
    let runs = u64::from(opts.runs);
    let p = |t: &Totals| {
        let phase = if t.runs > runs { "shrinking, " } else { "" };
        progress(half, format!("{phase}{} runs, {} steps", t.runs, t.steps));
    };
    hunt_checking::<R>(opts, zoo_checks(entry), p)
}

/// The checks the zoo adds to a fault-schedule search for `entry` (and to its replay), beyond
/// the model's own: R9's bounded term inflation.
fn zoo_checks<R: Checkable>(entry: &ZooBug) -> Vec<Property<SimModel<R>>> {
    if entry.property == TERMS_STAY_LOW {
        vec![Property::always(TERMS_STAY_LOW, terms_stay_low::<R>)]
    } else {
        Vec::new()
    }
}

/// R9's symptom within a bounded run. A server cut off from the majority by a partition
/// window keeps timing out; without PreVote every timeout starts an election in a new term,
/// so its term runs ahead of every other server's, and the inflated term deposes the healthy
/// leader when the window heals (the etcd 2020 outage). With PreVote a server enters a new
/// term only after a majority granted it the pre-vote, so it is at most a term or two ahead
/// (pre-votes granted again before its vote requests arrive). "A leader connected to a
/// majority stays leader once the network is stable" is not a state predicate (the settling
/// phase ends as soon as the run settles); the term inflation that breaks it is.
pub const TERMS_STAY_LOW: &str = "no server runs terms ahead of all others";

/// How many terms one server may be ahead of every other for [`TERMS_STAY_LOW`].
pub const MAX_TERMS_AHEAD: u64 = 3;

fn terms_stay_low<R: Checkable>(m: &SimModel<R>, s: &SimState<R>) -> bool {
    let terms: Vec<u64> = all_servers(&m.actors.cfg, &s.cluster)
        .map(|x| x.replica.status().term)
        .collect();
    terms.iter().enumerate().all(|(i, &t)| {
        let others = terms
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != i)
            .map(|(_, &o)| o)
            .max()
            .unwrap_or(t);
        t <= others + MAX_TERMS_AHEAD
    })
}

/// The `paxraft check` command that reproduces `entry` with its bug on.
pub fn command(entry: &ZooBug) -> String {
    match &entry.detector {
        Detector::Model {
            config,
            strategy,
            depth,
        } => {
            let search = SearchOptions {
                strategy: *strategy,
                depth: Some(*depth),
                ..SearchOptions::default()
            };
            let check = check_command(entry.protocol.name(), config, &search);
            format!("{check} --bug {}", entry.bug.name())
        }
        // The term-inflation check is the zoo's own: `paxraft simulate` does not run it.
        Detector::Schedules(_) if entry.property == TERMS_STAY_LOW => {
            format!("paxraft zoo --only {}", entry.bug.name())
        }
        Detector::Schedules(opts) => format!(
            "paxraft simulate {} {} --bug {}",
            entry.protocol.name(),
            opts.flags(),
            entry.bug.name()
        ),
    }
}
