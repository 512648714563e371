//! Running one bug of the registry: with the bug on until its property fails (the model
//! checker to a shortest trace, or the fault-schedule search), the same configuration with no
//! bug, and the counterexample replayed with no bug ([`super::replay`]).
//!
//! The model checks go through [`paxraft_models::check()`] (its [`StopAt`] stops a search at
//! the first violation and checks the always-properties only). The zoo's [`Run`] is not a
//! second [`paxraft_models::Summary`]: it is the sum of the several searches that narrow a
//! counterexample to a shortest one (their states and seconds added up), keeping only what
//! the zoo's verdict reads.

use std::time::{Duration, Instant};

use paxraft_models::check::{
    check_with_paths, Actions, Kind, Progress, SearchOptions, Status, StopAt, Strategy,
};
use paxraft_models::checked::build_checked;
use paxraft_models::model::all_servers;
use paxraft_models::properties::names;
use paxraft_models::{Checkable, ModelConfig, Trace};
use stateright::Property;

use super::registry::{Detector, ZooBug, MAX_TERMS_AHEAD, TERMS_STAY_LOW};
use super::replay;
use crate::protocol::{with_protocol, Hosted, ProtocolVisitor};
use crate::results::{CleanReplay, Provenance, ReplayFailure, ReplayKind};
use crate::simulate::cluster::{
    hunt_checking, replay_checking, SimModel, SimOptions, SimReport, SimState,
};
use crate::simulate::Totals;

/// One model-checking run of the zoo.
#[derive(Clone, Debug)]
pub struct Run {
    /// Always-properties that failed, with their traces.
    pub violated: Vec<(&'static str, Trace)>,
    /// Sometimes-properties never reached (only asked for in clean runs).
    pub not_reached: Vec<&'static str>,
    /// Distinct states explored.
    pub states: usize,
    /// The deepest state checked, in actions from the initial state.
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

/// Model-check `cfg` over paths of at most `steps` actions with [`fn@paxraft_models::check`].
/// With a `stop_at` other than [`StopAt::Never`], only always-properties are checked and the
/// search stops soon after the first violation it asks for; with `Never`, every property is
/// checked over the whole bounded space.
///
/// Stateright 0.31 keeps the *last* counterexample a checker block visits, not the first, so
/// a BFS trace can be a step or two longer than the shortest: [`shortest`] narrows it.
fn model_run<R: Checkable>(
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
fn shortest<R: Checkable>(
    cfg: &ModelConfig,
    strategy: Strategy,
    steps: usize,
    threads: usize,
    property: &'static str,
    mut progress: impl FnMut(Progress),
) -> Found<R> {
    let mut best = model_run::<R>(
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
    // Search for `property` alone within `depth` actions; keep what it found, if anything,
    // with the work of every search counted (the cost of the shortest trace). Whether it did.
    let mut narrow = |best: &mut Found<R>, depth: usize| {
        let next = model_run::<R>(
            cfg,
            strategy,
            depth,
            threads,
            StopAt::Violation(property),
            &mut progress,
        );
        let states = best.run.states + next.run.states;
        let seconds = best.run.seconds + next.run.seconds;
        let found = next.run.trace(property).is_some();
        if found {
            *best = next;
        }
        best.run.states = states;
        best.run.seconds = seconds;
        found
    };
    if best.run.trace(property).is_none() {
        let Some(first) = best.run.violated.iter().map(|(_, t)| t.actions).min() else {
            return best; // nothing failed within the bounds
        };
        if !narrow(&mut best, first) {
            return best;
        }
    }
    // Bounded: each round needs a strictly shorter trace.
    while let Some(len) = best.run.trace(property).map(|t| t.actions) {
        if len <= 1 || !narrow(&mut best, len - 1) {
            break;
        }
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
    /// Swept over adversarial lease scenarios on the driver, with the bug on and off.
    Swept {
        /// With the bug on (up to its first failing scenario).
        buggy: Box<SweepReport>,
        /// Every scenario with no bug (`None` when the bug escaped).
        clean: Option<Box<SweepReport>>,
    },
}

/// A lease sweep ([`paxraft_impls::sweep`]) as the zoo reads it.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// Scenarios run.
    pub scenarios: usize,
    /// The first failure: the driver's invariant and the scenario drawn as a trace.
    pub failure: Option<(String, Trace)>,
    /// The failing scenario's inputs, to rerun it with the bug off.
    scenario: Option<Scenario>,
    /// Scenarios in which the cut-off leader served a read alone (the clean sweep's sign of
    /// life: leases were used).
    pub served_alone: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

type Scenario = (
    [paxraft_impls::lease::ClockRate; 3],
    Duration,
    paxraft_impls::sweep::Faults,
);

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
            Verdict::Swept { buggy, .. } => buggy
                .failure
                .as_ref()
                .filter(|(p, _)| p == self.entry.property)
                .map(|(_, t)| t),
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
            Verdict::Swept { buggy, .. } => buggy.failure.iter().map(|(p, _)| p.clone()).collect(),
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
            Verdict::Swept {
                clean: Some(clean), ..
            } => clean.failure.is_none() && clean.served_alone > 0,
            Verdict::Checked { clean: None, .. }
            | Verdict::Simulated { clean: None, .. }
            | Verdict::Swept { clean: None, .. } => false,
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
    /// States explored (model checking), steps run (fault schedules) or scenarios run (a
    /// lease sweep) with the bug on.
    pub fn work(&self) -> u64 {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => buggy.states as u64,
            Verdict::Simulated { buggy, .. } => buggy.steps,
            Verdict::Swept { buggy, .. } => buggy.scenarios as u64,
        }
    }
    /// Seconds to detect (or to give up) with the bug on.
    pub fn seconds(&self) -> f64 {
        match &self.verdict {
            Verdict::Checked { buggy, .. } => buggy.seconds,
            Verdict::Simulated { buggy, .. } => buggy.seconds,
            Verdict::Swept { buggy, .. } => buggy.seconds,
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
            // No false alarm: the very schedules the buggy search ran up to the one that
            // caught the bug (same seed, so the same first runs), with no bug; at least
            // MIN_CLEAN_RUNS of them.
            let clean = caught.map(|f| {
                let clean_opts = SimOptions {
                    runs: clean_runs(opts.runs, f.runs_before),
                    ..opts.clone()
                };
                Box::new(run_sim::<R>(entry, &clean_opts, Half::Clean, progress))
            });
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
        Detector::Sweep(cfg) => {
            cfg.validate(3).map_err(|e| e.to_string())?;
            let buggy_cfg = with_bug(entry, cfg)?;
            progress(Half::Buggy, "sweeping lease scenarios".into());
            let buggy = Box::new(run_sweep(entry, &buggy_cfg));
            let caught = buggy
                .failure
                .as_ref()
                .is_some_and(|(p, _)| p == entry.property);
            let clean = caught.then(|| {
                progress(Half::Clean, "sweeping lease scenarios".into());
                Box::new(run_sweep(entry, cfg))
            });
            // Attribution: the failing scenario rerun with the bug off.
            let replay = buggy
                .scenario
                .filter(|_| caught)
                .map(|(rates, wait, faults)| {
                    let start = Instant::now();
                    let run = sweep_scenario(entry, cfg, rates, wait, faults);
                    CleanReplay {
                        kind: ReplayKind::Scenario,
                        steps: run.trace.len(),
                        skipped: 0,
                        failure: run.violation.map(|v| ReplayFailure {
                            property: v.invariant.to_string(),
                            step: run.trace.len(),
                            detail: v.detail,
                        }),
                        seconds: start.elapsed().as_secs_f64(),
                    }
                });
            (Verdict::Swept { buggy, clean }, replay)
        }
    })
}

/// The lease sweep of `entry`'s protocol (with `u32` commands: the driver's), stopping at the
/// first failing scenario.
fn run_sweep(entry: &ZooBug, cfg: &paxraft_impls::Config) -> SweepReport {
    use paxraft_impls::multipaxos::MultiPaxos;
    use paxraft_impls::raft::Raft;
    use paxraft_impls::sweep::sweep;
    let start = Instant::now();
    let s = match entry.protocol {
        crate::protocol::Protocol::MultiPaxos => sweep::<MultiPaxos<u32>>(cfg),
        // The registry test keeps sweeps to the two protocols with leases.
        _ => sweep::<Raft<u32>>(cfg),
    };
    let seconds = start.elapsed().as_secs_f64();
    let (failure, scenario) = match s.failure {
        Some((rates, wait, faults, run)) => {
            let v = run
                .violation
                .clone()
                .expect("a failing scenario has a violation");
            let trace = driver_trace(v.invariant, &v.detail, &run.trace);
            (
                Some((v.invariant.to_string(), trace)),
                Some((rates, wait, faults)),
            )
        }
        None => (None, None),
    };
    SweepReport {
        scenarios: s.scenarios,
        failure,
        scenario,
        served_alone: s.served_alone,
        seconds,
    }
}

fn sweep_scenario(
    entry: &ZooBug,
    cfg: &paxraft_impls::Config,
    rates: [paxraft_impls::lease::ClockRate; 3],
    wait: Duration,
    faults: paxraft_impls::sweep::Faults,
) -> paxraft_impls::sweep::LeaseRun {
    use paxraft_impls::multipaxos::MultiPaxos;
    use paxraft_impls::raft::Raft;
    use paxraft_impls::sweep::scenario;
    match entry.protocol {
        crate::protocol::Protocol::MultiPaxos => {
            scenario::<MultiPaxos<u32>>(cfg, rates, wait, faults)
        }
        _ => scenario::<Raft<u32>>(cfg, rates, wait, faults),
    }
}

/// A driver trace drawn as a [`Trace`]: one step per line, in the column of the node the line
/// starts with (`n1: ...`, `n1 -> n2: ...`).
fn driver_trace(property: &str, detail: &str, lines: &[String]) -> Trace {
    let node = |s: &str| -> Option<usize> {
        let digits: String = s
            .strip_prefix('n')?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let steps = lines
        .iter()
        .map(|l| {
            let to = l.split_once(" -> ").and_then(|(_, rest)| node(rest));
            paxraft_models::render::Step {
                actor: node(l).unwrap_or(0),
                to,
                label: l.clone(),
            }
        })
        .collect::<Vec<_>>();
    Trace {
        property: property.to_string(),
        actors: vec!["n0".into(), "n1".into(), "n2".into()],
        actions: steps.len(),
        steps,
        explanation: Some(detail.to_string()),
    }
}

/// Fewest schedules a fault-schedule bug's clean half runs (fewer only when the search's
/// whole budget is smaller).
pub const MIN_CLEAN_RUNS: u32 = 300;

/// How many schedules the clean half of a fault-schedule bug runs when the buggy search, with
/// `budget` runs, caught the bug after `runs_before` passing ones: the schedules the bug needed
/// (the clean half reruns exactly those, with the bug off), at least [`MIN_CLEAN_RUNS`], at
/// most the budget. Rerunning the budget's remaining schedules would show nothing about the
/// bug and cost most of the zoo's time.
pub fn clean_runs(budget: u32, runs_before: u64) -> u32 {
    let needed = u32::try_from(runs_before + 1).unwrap_or(u32::MAX);
    needed.max(MIN_CLEAN_RUNS).min(budget)
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
    )
    .run;
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
/// the model's own: the bounded term inflation of R9 and M5.
fn zoo_checks<R: Checkable>(entry: &ZooBug) -> Vec<Property<SimModel<R>>> {
    if entry.property == TERMS_STAY_LOW {
        vec![Property::always(TERMS_STAY_LOW, terms_stay_low::<R>)]
    } else {
        Vec::new()
    }
}

fn terms_stay_low<R: Checkable>(m: &SimModel<R>, s: &SimState<R>) -> bool {
    let terms: Vec<u64> = all_servers(&m.actors.cfg, s.cluster())
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
