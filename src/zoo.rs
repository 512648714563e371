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
//! [`Detector::Schedules`] detector: the fault-schedule search with a settling phase is the
//! tool for them, and the runner reports them as [`Verdict::Pending`] until it is wired in.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_impls::Bug;
use paxraft_models::check::{Progress, Strategy};
use paxraft_models::properties::names;
use paxraft_models::render::trace_of;
use paxraft_models::{build, Checkable, ClusterModel, Cmd, ModelConfig, Trace};
use stateright::{Checker, Expectation, HasDiscoveries, Model};

use crate::report::results::{Trace as SavedTrace, TraceStep, ZooEntry};

/// Whether this build carries the bug switches (the `bug-zoo` cargo feature).
pub fn bugs_compiled() -> bool {
    paxraft_impls::bugs::COMPILED
}

/// The protocols a bug can be injected into.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// [`Raft`].
    Raft,
    /// [`MultiPaxos`].
    MultiPaxos,
}

impl Protocol {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Raft => "raft",
            Protocol::MultiPaxos => "multipaxos",
        }
    }
}

/// What a fault-schedule search needs to expose a bug (for bugs beyond exhaustive search).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleNeeds {
    /// The model to walk (bug off: the runner switches it on).
    pub config: ModelConfig,
    /// Steps of the faulty phase.
    pub max_steps: usize,
    /// Highest loss rate, percent.
    pub max_loss_pct: u8,
    /// Highest crash rate, percent.
    pub max_crash_pct: u8,
    /// Whether partitions are drawn.
    pub partitions: bool,
    /// A partition that must *persist* through the settling phase: the bitmask of the servers
    /// on one side and the bitmask of the servers that stay connected to both sides (a
    /// partial partition). `None`: every partition heals when the run settles.
    pub persistent_partial_partition: Option<(u64, u64)>,
    /// Settling steps before the liveness predicate is judged.
    pub settle_steps: usize,
    /// The liveness predicate the settled run must meet, in words.
    pub liveness: &'static str,
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
    /// The proptest fault-schedule search (see [`crate::simulate`]).
    Schedules(ScheduleNeeds),
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

fn raft_base() -> ModelConfig {
    ModelConfig::default()
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
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    max_term: 3,
                    ..d.clone()
                },
                20,
            ),
            known_steps: Some(11),
            known: "3 nodes, ~11 events",
            source: "Raft paper §5.4.2 and Figure 8",
        },
        ZooBug {
            bug: VoteWithoutLogCheck,
            protocol: Protocol::Raft,
            property: "leader completeness",
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
            property: "election safety",
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
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    max_crashes: 1,
                    ..d.clone()
                },
                18,
            ),
            known_steps: None,
            known: "a counted entry lost by a restarted follower",
            source: "Raft paper Figure 2 (log persisted before responding)",
        },
        ZooBug {
            bug: DoubleVote,
            protocol: Protocol::Raft,
            property: "election safety",
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    max_in_flight: 6,
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
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    servers: 2,
                    clients: 2,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "2 nodes, a delayed older AppendEntries",
            source: "Raft paper Figure 2, AppendEntries rule 3 (truncate only on conflict)",
        },
        ZooBug {
            bug: CommitPastVerifiedPrefix,
            protocol: Protocol::Raft,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    max_term: 3,
                    ..d.clone()
                },
                20,
            ),
            known_steps: None,
            known: "3 nodes, a stale entry from an older term applied",
            source: "Raft paper Figure 2, AppendEntries rule 5 (min(leaderCommit, last new entry))",
        },
        ZooBug {
            bug: NoStepDown,
            protocol: Protocol::Raft,
            property: "a single leader once settled",
            detector: Detector::Schedules(ScheduleNeeds {
                config: d.clone(),
                max_steps: 60,
                max_loss_pct: 10,
                max_crash_pct: 0,
                partitions: true,
                persistent_partial_partition: None,
                settle_steps: 400,
                liveness: "after settling exactly one leader remains and every live server is in its term",
            }),
            known_steps: None,
            known: "a deposed leader keeps leading beside the new one",
            source: "Raft paper §5.1 (a higher term makes any server a follower)",
        },
        ZooBug {
            bug: NoPreVote,
            protocol: Protocol::Raft,
            property: "a leader connected to a majority stays leader",
            detector: Detector::Schedules(ScheduleNeeds {
                config: ModelConfig {
                    protocol: paxraft_impls::Config {
                        pre_vote: true,
                        check_quorum: true,
                        ..d.protocol.clone()
                    },
                    ..d.clone()
                },
                max_steps: 60,
                max_loss_pct: 0,
                max_crash_pct: 0,
                partitions: false,
                // n2 cut from n0, n1 connected to both: the etcd 2020 partial partition.
                persistent_partial_partition: Some((0b100, 0b010)),
                settle_steps: 400,
                liveness: "the leader elected before the window (connected to a majority) keeps its term and role",
            }),
            known_steps: None,
            known: "a partially partitioned node deposes a healthy leader",
            source: "Ongaro's dissertation §9.6 (PreVote), §6.2 (CheckQuorum); the 2020 etcd partial-partition outage",
        },
        ZooBug {
            bug: StaleRead,
            protocol: Protocol::Raft,
            property: names::LINEARIZABLE,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ops: 2,
                    max_in_flight: 6,
                    ..d.clone()
                },
                14,
            ),
            known_steps: None,
            known: "a deposed leader on the minority side returns an old value",
            source: "Ongaro's dissertation §6.4 (ReadIndex, leases); the etcd stale-read issue (Jepsen 2014)",
        },
        ZooBug {
            bug: AcceptBelowPromise,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "3 acceptors, two values chosen for one slot",
            source: "Paxos Made Simple §2.2 (P1a: accept only if no higher promise)",
        },
        ZooBug {
            bug: IgnoreAcceptedValue,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "a chosen value replaced by the next leader's own",
            source: "Paxos Made Simple §2.2 (P2c: propose the highest-numbered accepted value)",
        },
        ZooBug {
            bug: NonUniqueBallot,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    ..d.clone()
                },
                16,
            ),
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
                16,
            ),
            known_steps: None,
            known: "clients see v, then w",
            source: "Paxos Made Simple §2.1 (a value is chosen by a majority)",
        },
        ZooBug {
            bug: SkipRecovery,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "a new leader writes over a possibly chosen slot (the gap form is liveness)",
            source: "Paxos Made Simple §3 (phase 1 for every open instance, no-ops for gaps)",
        },
        ZooBug {
            bug: PromiseNotPersisted,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    max_crashes: 1,
                    ..d.clone()
                },
                18,
            ),
            known_steps: None,
            known: "a restarted acceptor accepts a lower ballot it promised to refuse",
            source: "Paxos Made Simple §2.3 (an acceptor remembers its promise through failures)",
        },
        ZooBug {
            bug: ApplyUncommitted,
            protocol: Protocol::Raft,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    max_in_flight: 8,
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
                    ..d
                },
                10,
            ),
            known_steps: None,
            known: "a retried request applied twice",
            source: "Ongaro's dissertation §6.3 (client sessions for exactly-once)",
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

/// Stateright's `target_max_depth` counts the initial state as depth 1 and skips states *at*
/// the target unchecked: paths of `steps` actions need a target of `steps + 2`.
pub fn stateright_depth(steps: usize) -> usize {
    steps + 2
}

/// Model-check `cfg` over paths of at most `steps` actions. With `stop_at`, only
/// always-properties are checked and the search stops soon after that property fails;
/// without, every property is checked over the whole bounded space.
///
/// Stateright 0.31 keeps the *last* counterexample a checker block visits, not the first, so
/// a BFS trace can be a step or two longer than the shortest: [`shortest_run`] narrows it.
pub fn model_run<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    stop_at: Option<&'static str>,
    mut progress: impl FnMut(Progress),
) -> Run {
    let mut model: ClusterModel<R> = build::<R>(cfg);
    if stop_at.is_some() {
        model
            .properties
            .retain(|p| p.expectation == Expectation::Always);
    }
    let props = model.properties();
    let mut builder = model
        .checker()
        .threads(threads.max(1))
        .target_max_depth(stateright_depth(steps));
    if let Some(p) = stop_at {
        builder = builder.finish_when(HasDiscoveries::AnyOf(BTreeSet::from([p])));
    }
    let start = Instant::now();
    let checker: Box<dyn Checker<ClusterModel<R>>> = match strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()),
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    let mut last = start;
    while !checker.is_done() {
        if last.elapsed() >= Duration::from_millis(200) {
            last = Instant::now();
            progress(Progress {
                total_states: checker.state_count(),
                unique_states: checker.unique_state_count(),
                max_depth: checker.max_depth(),
                elapsed: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut checker = checker;
    for h in checker.handles() {
        h.join().expect("a checker thread panicked");
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut found = checker.discoveries();
    let mut violated = Vec::new();
    let mut not_reached = Vec::new();
    for p in &props {
        match (&p.expectation, found.remove(p.name)) {
            (Expectation::Sometimes, None) => not_reached.push(p.name),
            (Expectation::Sometimes, Some(_)) => {}
            (_, Some(path)) => violated.push((p.name, trace_of(checker.model(), &path, p.name))),
            (_, None) => {}
        }
    }
    Run {
        violated,
        not_reached,
        states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        seconds,
    }
}

/// Search for `property` failing within `steps`, then search again below each trace's length
/// until no shorter trace exists: the trace returned is a shortest one (BFS). The states and
/// seconds are those of all searches together: the cost of finding the shortest trace.
pub fn shortest_run<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    property: &'static str,
    mut progress: impl FnMut(Progress),
) -> Run {
    let mut best = model_run::<R>(cfg, strategy, steps, threads, Some(property), &mut progress);
    if strategy != Strategy::Bfs {
        return best;
    }
    // Bounded: each round needs a strictly shorter trace.
    while let Some(len) = best.trace(property).map(|t| t.steps.len()) {
        if len <= 1 {
            break;
        }
        let shorter = model_run::<R>(
            cfg,
            strategy,
            len - 1,
            threads,
            Some(property),
            &mut progress,
        );
        let (states, seconds) = (best.states + shorter.states, best.seconds + shorter.seconds);
        if shorter.trace(property).is_none() {
            best.states = states;
            best.seconds = seconds;
            break;
        }
        best = Run {
            states,
            seconds,
            ..shorter
        };
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
        /// The same configuration, no bug.
        clean: Run,
    },
    /// Needs the fault-schedule search, not wired into the zoo yet.
    Pending(String),
}

/// One bug's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The bug and its registry entry.
    pub entry: ZooBug,
    /// What happened.
    pub verdict: Verdict,
}

impl Outcome {
    /// Whether the expected property failed with the bug on.
    pub fn caught(&self) -> bool {
        self.trace().is_some()
    }
    /// The expected property's counterexample.
    pub fn trace(&self) -> Option<&Trace> {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => buggy.trace(self.entry.property),
            Verdict::Pending(_) => None,
        }
    }
    /// Whether the clean configuration passed: no always-property failed and a leader was
    /// elected (a clean run that does nothing proves nothing).
    pub fn clean_passed(&self) -> bool {
        match &self.verdict {
            Verdict::Checked { clean, .. } => {
                clean.violated.is_empty() && !clean.not_reached.contains(&names::LEADER)
            }
            Verdict::Pending(_) => false,
        }
    }
    /// Both halves passed: caught with the bug on, silent with it off.
    pub fn ok(&self) -> bool {
        self.caught() && self.clean_passed()
    }
    /// The result in the report's format.
    pub fn entry(&self) -> ZooEntry {
        let (states, seconds) = match &self.verdict {
            Verdict::Checked { buggy, .. } => (buggy.states as u64, buggy.seconds),
            Verdict::Pending(_) => (0, 0.0),
        };
        ZooEntry {
            code: self.entry.bug.code().into(),
            name: self.entry.bug.name().into(),
            protocol: self.entry.protocol.name().into(),
            caught: self.caught(),
            property: self.caught().then(|| self.entry.property.to_string()),
            trace_len: self.trace().map(|t| t.steps.len()),
            states,
            seconds,
            trace: self.trace().map(saved_trace),
        }
    }
}

/// A model trace in the report's format.
pub fn saved_trace(t: &Trace) -> SavedTrace {
    SavedTrace {
        actors: t.actors.clone(),
        steps: t
            .steps
            .iter()
            .map(|s| TraceStep {
                actor: t.actors[s.actor].clone(),
                to: s.to.map(|k| t.actors[k].clone()),
                label: s.label.clone(),
            })
            .collect(),
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

/// The configuration of `entry` with its bug switched on. `Err` when this build carries no
/// bug switches.
pub fn with_bug(entry: &ZooBug, cfg: &ModelConfig) -> Result<ModelConfig, String> {
    let mut cfg = cfg.clone();
    if !cfg.protocol.set_bug(entry.bug) {
        return Err("this build carries no bug switches: rebuild with --features bug-zoo".into());
    }
    Ok(cfg)
}

/// Run one bug: the buggy configuration until the expected property fails (or the bounds are
/// exhausted), then the clean one over the whole bounded space.
pub fn run(
    entry: &ZooBug,
    threads: usize,
    mut progress: impl FnMut(Half, Progress),
) -> Result<Outcome, String> {
    let (config, strategy, depth) = match &entry.detector {
        Detector::Model {
            config,
            strategy,
            depth,
        } => (config, *strategy, *depth),
        Detector::Schedules(needs) => {
            return Ok(Outcome {
                entry: entry.clone(),
                verdict: Verdict::Pending(format!(
                    "needs the fault-schedule search: {} steps, loss ≤ {}%, crashes ≤ {}%{}{}; liveness: {}",
                    needs.max_steps,
                    needs.max_loss_pct,
                    needs.max_crash_pct,
                    if needs.partitions { ", partitions" } else { "" },
                    match needs.persistent_partial_partition {
                        Some((side, bridge)) => format!(
                            ", a persistent partial partition (side {side:#b}, bridge {bridge:#b})"
                        ),
                        None => String::new(),
                    },
                    needs.liveness
                )),
            })
        }
    };
    config.validate()?;
    let buggy_cfg = with_bug(entry, config)?;
    let go = |cfg: &ModelConfig,
              stop: Option<&'static str>,
              half: Half,
              progress: &mut dyn FnMut(Half, Progress)| {
        let p = |x: Progress| progress(half, x);
        match entry.protocol {
            Protocol::Raft => match stop {
                Some(prop) => shortest_run::<Raft<Cmd>>(cfg, strategy, depth, threads, prop, p),
                None => model_run::<Raft<Cmd>>(cfg, strategy, depth, threads, None, p),
            },
            Protocol::MultiPaxos => match stop {
                Some(prop) => {
                    shortest_run::<MultiPaxos<Cmd>>(cfg, strategy, depth, threads, prop, p)
                }
                None => model_run::<MultiPaxos<Cmd>>(cfg, strategy, depth, threads, None, p),
            },
        }
    };
    let buggy = go(&buggy_cfg, Some(entry.property), Half::Buggy, &mut progress);
    let clean = go(config, None, Half::Clean, &mut progress);
    Ok(Outcome {
        entry: entry.clone(),
        verdict: Verdict::Checked { buggy, clean },
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
            let mut c = format!("paxraft check {}", entry.protocol.name());
            let flags = config.flags();
            if !flags.is_empty() {
                c.push(' ');
                c.push_str(&flags);
            }
            if *strategy != Strategy::Bfs {
                c.push_str(&format!(" --strategy {}", strategy.name()));
            }
            c.push_str(&format!(
                " --depth {} --bug {}",
                stateright_depth(*depth),
                entry.bug.name()
            ));
            c
        }
        Detector::Schedules(_) => format!("(fault-schedule search) --bug {}", entry.bug.name()),
    }
}
