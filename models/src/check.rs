//! Running a check: the chosen search over a model, progress while it runs, and a summary
//! with a verdict per property and a counterexample for each failure.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use paxraft_impls::Replica;
use stateright::{Checker, Expectation, HasDiscoveries, Model};

use crate::checked::{build_checked, CheckAction, CheckModel, CutCounts};
use crate::model::{Cmd, ModelConfig};
use crate::render::{trace_of_checked, Trace};

/// Search strategy.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth first: shortest counterexamples, more memory.
    Bfs,
    /// Depth first: less memory; the only one that honours symmetry reduction.
    Dfs,
}

impl Strategy {
    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Strategy::Bfs, Strategy::Dfs]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
        }
    }
}

/// Default bound on path length, in actions, for a protocol: deep enough for an election
/// (with PreVote: five actions), a command committed on every server and answered, and a
/// later term's election after it (3 servers, 2 clients); small enough for a check under two
/// minutes on two cores. Multi-Paxos branches more per action (any replica may start phase
/// 1 with any ballot) but needs fewer actions per election.
pub fn default_depth(protocol: &str) -> usize {
    match protocol {
        "multipaxos" => 11,
        _ => DEFAULT_DEPTH,
    }
}

/// [`default_depth`] of Raft, and of any protocol it does not know.
pub const DEFAULT_DEPTH: usize = 13;

/// Default bound on path length with leases ([`ModelConfig::lease`]): the same milestones,
/// plus the ticks that let timers fire and the lease round of every new leader. Measured on
/// two cores: Raft 3.8M states in 70 s, multi-Paxos 2.6M in 37 s.
pub fn default_lease_depth(protocol: &str) -> usize {
    match protocol {
        "multipaxos" => 17,
        _ => 19,
    }
}

/// Default bound on path length with follower reads (`--follower-reads`): a follower's read
/// is a round trip to the leader plus the leader's confirmation round, one more action than
/// Raft's default depth holds with two clients ("a follower serves a read" is not reached at
/// 13). Measured on two cores: Raft at 14, 2 threads, 6.87M states in 35-48 s and 3.4 GB;
/// multi-Paxos reaches it at its default depth.
pub fn default_follower_read_depth(protocol: &str) -> usize {
    match protocol {
        "multipaxos" => default_depth(protocol),
        _ => DEFAULT_DEPTH + 1,
    }
}

/// The default depth bound of a configuration, as `paxraft check` picks it: none for the
/// lock service (its one-server space is explored whole), [`default_lease_depth`] with
/// leases, [`default_follower_read_depth`] with follower reads, else [`default_depth`].
pub fn default_depth_for(protocol: &str, cfg: &ModelConfig) -> Option<usize> {
    if cfg.service == crate::model::Service::Lock {
        None
    } else if cfg.protocol.reads == paxraft_impls::ReadMode::Lease {
        Some(default_lease_depth(protocol))
    } else if cfg.protocol.follower_reads && cfg.protocol.reads != paxraft_impls::ReadMode::Log {
        Some(default_follower_read_depth(protocol))
    } else {
        Some(default_depth(protocol))
    }
}

/// When a check may stop before the bounded space is exhausted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StopAt {
    /// Explore the whole bounded space, every property checked.
    #[default]
    Never,
    /// Check only the always-properties and stop soon after any of them fails.
    AnyViolation,
    /// Check only the always-properties and stop soon after this one fails.
    Violation(&'static str),
}

/// How to search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchOptions {
    /// BFS or DFS.
    pub strategy: Strategy,
    /// Collapse states that differ only by a renaming of the servers (DFS only).
    pub symmetry: bool,
    /// Checker threads.
    pub threads: usize,
    /// Most actions on a path (`None`: until the other bounds of the model stop it).
    pub depth: Option<usize>,
    /// Whether to stop at a first violation (the zoo's searches) or exhaust the bounds.
    pub stop_at: StopAt,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            strategy: Strategy::Bfs,
            symmetry: false,
            threads: 1,
            depth: Some(DEFAULT_DEPTH),
            stop_at: StopAt::Never,
        }
    }
}

impl SearchOptions {
    /// Reject combinations stateright cannot honour, with a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.symmetry && self.strategy == Strategy::Bfs {
            return Err("--symmetry needs --strategy dfs: stateright 0.31's BFS checker ignores symmetry reduction, so it would silently explore every state".into());
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(())
    }

    /// The flags that rebuild these options (defaults omitted).
    pub fn flags(&self) -> String {
        let mut f = Vec::new();
        if self.strategy != Strategy::Bfs {
            f.push(format!("--strategy {}", self.strategy.name()));
        }
        if self.symmetry {
            f.push("--symmetry".to_string());
        }
        // Always spelled out: the default depth depends on the protocol.
        match self.depth {
            Some(d) => f.push(format!("--depth {d}")),
            None => f.push("--depth 0".into()),
        }
        f.join(" ")
    }
}

/// What a property is expected to do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Must hold in every reachable state.
    Always,
    /// Must hold in some reachable state.
    Sometimes,
    /// A deeper milestone, reported: whether the bounds reached it (see
    /// [`crate::properties::names::COVERAGE`]). Never fails a check.
    Coverage,
}

impl Kind {
    /// The summary's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Always => "always",
            Kind::Sometimes => "sometimes",
            Kind::Coverage => "coverage",
        }
    }
}

/// The verdict on one property.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// An always-property held in every state explored.
    Holds,
    /// An always-property failed: there is a counterexample.
    Violated,
    /// A sometimes-property was reached: there is an example.
    Reached,
    /// A sometimes-property was never reached within the bounds.
    NotReached,
}

impl Status {
    /// The summary's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Violated => "violated",
            Status::Reached => "reached",
            Status::NotReached => "not reached",
        }
    }
    /// Whether this verdict passes (for a required property).
    pub fn ok(self) -> bool {
        matches!(self, Status::Holds | Status::Reached)
    }
}

/// One property's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Plain-words name.
    pub name: &'static str,
    /// Always or sometimes.
    pub kind: Kind,
    /// Holds / violated / reached / not reached.
    pub status: Status,
    /// The counterexample of a violated property (or the example of a reached one).
    pub trace: Option<Trace>,
}

/// Progress while a check runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// States generated, duplicates included.
    pub total_states: usize,
    /// Distinct states.
    pub unique_states: usize,
    /// Deepest path so far.
    pub max_depth: usize,
    /// Time since the start.
    pub elapsed: Duration,
}

/// The outcome of a check.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Protocol name.
    pub protocol: &'static str,
    /// The model's configuration.
    pub config: ModelConfig,
    /// How it was searched.
    pub search: SearchOptions,
    /// Distinct states.
    pub unique_states: usize,
    /// States generated, duplicates included.
    pub total_states: usize,
    /// The deepest state checked, in actions from the initial state.
    pub max_depth: usize,
    /// States checked, and how many each bound cut (checked, not expanded).
    pub cuts: CutCounts,
    /// Wall time.
    pub seconds: f64,
    /// Bytes the process grew by at its peak, per unique state (see [`crate::memory`] for
    /// what is counted; `None` where it cannot be measured).
    pub bytes_per_state: Option<f64>,
    /// One verdict per property, in the model's order.
    pub properties: Vec<Verdict>,
}

impl Summary {
    /// Whether every always-property held and every required sometimes-property was reached
    /// (coverage milestones are reported, not required).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }
    /// Whether the search merged states that are not equivalent (`--symmetry`: client retry
    /// rotation and ballot tie-breaks depend on node ids, see [`crate::symmetry`]), so that a
    /// pass proves less than the full search: an under-approximation.
    pub fn under_approximation(&self) -> bool {
        self.search.symmetry
    }
    /// Why this search's depth bound is not exact, if it is not: `None` for BFS on one
    /// thread (level by level, so every state is expanded from its shortest path) or without
    /// a bound. DFS, and BFS on several threads (which share one queue loosely), may reach a
    /// state first by a path longer than its shortest and expand it from that depth: one
    /// reached first at the bound is then cut where one BFS thread would expand it, and
    /// states beyond it go unexplored. With several threads the counts may also differ by a
    /// few between runs.
    pub fn depth_inexact(&self) -> Option<&'static str> {
        self.search.depth?;
        match (self.search.strategy, self.search.threads) {
            (Strategy::Bfs, 0 | 1) => None,
            (Strategy::Bfs, _) => Some("BFS on several threads"),
            (Strategy::Dfs, _) => Some("DFS"),
        }
    }
    /// Whether the check took a follower's lease end and its bid as one action
    /// ([`ModelConfig::fold_lapse`]).
    pub fn folds_lapse(&self) -> bool {
        self.config.folds_lapse()
    }
    /// With time: how many states the time bound kept from ticking, as the summary's cut
    /// line ends.
    fn time_cut(&self) -> String {
        let rates = match &self.config.clock_rates {
            Some(r) => {
                let names: Vec<&str> = r.iter().map(|r| r.name()).collect();
                format!("clock rates fixed {}", names.join(","))
            }
            None => "every assignment of clock rates".to_string(),
        };
        match (self.config.timed(), self.config.max_time) {
            (true, Some(max)) => format!(
                "; {} at --max-time {max:?} (explored without further ticks; {:?} per tick; {rates})",
                self.cuts.time, self.config.tick
            ),
            (true, None) => format!("; time unbounded ({:?} per tick; {rates})", self.config.tick),
            (false, _) => String::new(),
        }
    }
    /// Unique states per second.
    pub fn states_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.unique_states as f64 / self.seconds
        } else {
            0.0
        }
    }
    /// The failing verdicts.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.properties
            .iter()
            .filter(|p| p.kind != Kind::Coverage && !p.status.ok())
    }
    /// The verdict on property `name`.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.properties.iter().find(|p| p.name == name)
    }
    /// The `paxraft check` flags of this check (defaults omitted).
    pub fn flags(&self) -> String {
        check_flags(&self.config, &self.search)
    }
    /// The `paxraft check` command that reruns this check.
    pub fn command(&self) -> String {
        check_command(self.protocol, &self.config, &self.search)
    }
}

impl Status {
    /// How a summary shows the verdict: failures in capitals.
    fn mark(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Violated => "VIOLATED",
            Status::Reached => "reached",
            Status::NotReached => "NOT REACHED",
        }
    }
}

/// `{}`: a few lines (the verdict, the properties grouped by verdict, coverage, the cuts, any
/// counterexample), as the tour shows each check. `{:#}`: everything `paxraft check` prints
/// (every count, one line per property, each failure explained). Depths are in actions.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            self.full(f)
        } else {
            self.compact(f)
        }
    }
}

impl Summary {
    fn verdict_word(&self) -> &'static str {
        if self.passed() {
            "passed"
        } else {
            "FAILED"
        }
    }

    fn compact(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {:<11} {}: {} unique states, depth {} actions, {:.1} s, {:.0} states/s{}",
            self.protocol,
            self.verdict_word(),
            self.unique_states,
            self.max_depth,
            self.seconds,
            self.states_per_sec(),
            self.bytes_per_state
                .map_or(String::new(), |b| format!(", {b:.0} bytes/state"))
        )?;
        for status in [
            Status::Violated,
            Status::NotReached,
            Status::Holds,
            Status::Reached,
        ] {
            let names: Vec<&str> = self
                .properties
                .iter()
                .filter(|p| p.status == status && p.kind != Kind::Coverage)
                .map(|p| p.name)
                .collect();
            if !names.is_empty() {
                let label = if status.ok() {
                    status.name().to_string()
                } else {
                    status.name().to_uppercase()
                };
                writeln!(f, "              {label}: {}", names.join(", "))?;
            }
        }
        // Deeper milestones: how far the bounds reached (informational).
        let coverage: Vec<String> = self
            .properties
            .iter()
            .filter(|p| p.kind == Kind::Coverage)
            .map(|p| format!("{} ({})", p.name, p.status.name()))
            .collect();
        if !coverage.is_empty() {
            writeln!(f, "              coverage: {}", coverage.join(", "))?;
        }
        writeln!(
            f,
            "              cut (checked, not expanded): {} by depth, {} by term, {} by in-flight{}{}{}",
            self.cuts.depth,
            self.cuts.term,
            self.cuts.in_flight,
            self.time_cut(),
            if self.folds_lapse() {
                "; a lease's end and the bid after it folded into one action"
            } else {
                ""
            },
            self.depth_inexact()
                .map_or(String::new(), |why| format!(
                    "; {why}: the depth bound is not exact (BFS on --threads 1 is)"
                ))
        )?;
        for p in self.failures() {
            if let (Some(t), Status::Violated) = (&p.trace, p.status) {
                writeln!(
                    f,
                    "  counterexample: {} violated after {} steps",
                    p.name,
                    t.steps.len()
                )?;
                write!(f, "{}", t.chart())?;
            }
        }
        if !self.passed() {
            writeln!(f, "  reproduce with: {}", self.command())?;
        }
        Ok(())
    }

    fn full(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}", self.protocol, self.verdict_word())?;
        writeln!(f, "  configuration   {}", self.command())?;
        if self.under_approximation() {
            writeln!(f, "  under-approximation: --symmetry merges states that are not equivalent (retry rotation, ballot tie-breaks); a pass is not a proof")?;
        }
        if self.folds_lapse() {
            writeln!(f, "  folded          a follower's lease end and its bid are one action (--unfold-lapse explores between them)")?;
        }
        match self.depth_inexact() {
            Some(why) => writeln!(f, "  threads         {} ({why} reaches some states first by a longer path and expands them from there: one reached first at the depth bound is cut where BFS on --threads 1, which is exact, would expand it)", self.search.threads)?,
            None => writeln!(f, "  threads         {}", self.search.threads)?,
        }
        writeln!(f, "  unique states   {}", self.unique_states)?;
        writeln!(f, "  total states    {}", self.total_states)?;
        writeln!(
            f,
            "  checked states  {} (every one had every property evaluated)",
            self.cuts.checked
        )?;
        writeln!(
            f,
            "  max depth       {} actions{}",
            self.max_depth,
            self.search
                .depth
                .map_or(String::new(), |d| format!(" (bound {d})"))
        )?;
        writeln!(
            f,
            "  cut (checked, not expanded): {} by depth, {} by --max-term {}, {} by --max-in-flight {}{}",
            self.cuts.depth,
            self.cuts.term,
            self.config.max_term,
            self.cuts.in_flight,
            self.config.max_in_flight,
            self.time_cut()
        )?;
        writeln!(f, "  seconds         {:.2}", self.seconds)?;
        writeln!(f, "  states/s        {:.0} unique", self.states_per_sec())?;
        if let Some(b) = self.bytes_per_state {
            writeln!(
                f,
                "  bytes/state     {b:.0} (the process's peak growth per unique state)"
            )?;
        }
        writeln!(f, "  properties:")?;
        for p in &self.properties {
            let mark = match (p.kind, p.status) {
                // A coverage milestone informs; it does not fail the check.
                (Kind::Coverage, Status::NotReached) => "not reached",
                (_, status) => status.mark(),
            };
            writeln!(f, "    {:<12} {:<10} {}", mark, p.kind.name(), p.name)?;
        }
        for p in self.failures() {
            writeln!(f)?;
            match (&p.trace, p.status) {
                (Some(t), Status::Violated) => {
                    writeln!(
                        f,
                        "counterexample: {} violated after {} steps",
                        p.name,
                        t.steps.len()
                    )?;
                    writeln!(f, "reproduce with: {}", self.command())?;
                    write!(f, "{}", t.chart())?;
                }
                _ => writeln!(
                    f,
                    "{}: never reached within the bounds (raise --max-term, --depth or --retries?)",
                    p.name
                )?,
            }
        }
        if !self.passed() {
            writeln!(f)?;
            writeln!(f, "reproduce with: {}", self.command())?;
        }
        Ok(())
    }
}

/// The `paxraft check` flags that rebuild `config` searched with `search` (defaults omitted).
pub fn check_flags(config: &ModelConfig, search: &SearchOptions) -> String {
    [config.flags(), search.flags()]
        .into_iter()
        .filter(|f| !f.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `paxraft check` command that checks `protocol` on `config` searched with `search`.
pub fn check_command(protocol: &str, config: &ModelConfig, search: &SearchOptions) -> String {
    let flags = check_flags(config, search);
    if flags.is_empty() {
        format!("paxraft check {protocol}")
    } else {
        format!("paxraft check {protocol} {flags}")
    }
}

/// A replica the multi-threaded checkers can explore: its state and messages are shared
/// between checker threads.
pub trait Checkable: Replica<Cmd, Msg: Sync, Timer: Sync, Durable: Sync> + Sync {}
impl<R: Replica<Cmd, Msg: Sync, Timer: Sync, Durable: Sync> + Sync> Checkable for R {}

/// Model-check `R` under `cfg`, calling `progress` about every `every` while it runs.
pub fn check<R: Checkable>(
    cfg: &ModelConfig,
    search: &SearchOptions,
    every: Duration,
    progress: impl FnMut(Progress),
) -> Summary {
    check_with_paths::<R>(cfg, search, every, progress).0
}

/// The actions of a path the checker found, from the initial state (what a [`Trace`] is drawn
/// from), for replaying it on another model.
pub type Actions<R> = Vec<CheckAction<R>>;

/// [`check`], also returning the action path behind each trace of the summary, by property
/// name (a counterexample of a violated always-property, an example of a reached
/// sometimes-property): the bug zoo replays a counterexample with the bug switched off.
pub fn check_with_paths<R: Checkable>(
    cfg: &ModelConfig,
    search: &SearchOptions,
    every: Duration,
    mut progress: impl FnMut(Progress),
) -> (Summary, Vec<(&'static str, Actions<R>)>) {
    let mut model: CheckModel<R> = build_checked::<R>(cfg, search.depth);
    if search.stop_at != StopAt::Never {
        model
            .properties
            .retain(|p| p.expectation == Expectation::Always);
    }
    // BFS keeps what it has not checked yet whole in its queue: states at the depth bound
    // wait there as leaves (see [`crate::checked`]). Depth-first search holds a path, not a
    // level, and symmetry would rename a leaf it cannot see into.
    let leaves = search.strategy == Strategy::Bfs && search.depth.is_some() && !search.symmetry;
    model.leaves.store(leaves, Ordering::Relaxed);
    // A BFS level waits packed (see [`crate::packed`]).
    model
        .pack_queued
        .store(search.strategy == Strategy::Bfs, Ordering::Relaxed);
    let cuts = model.cuts.clone();
    let props = model.properties();
    let mut builder = model.checker().threads(search.threads);
    match search.stop_at {
        StopAt::Never => {}
        StopAt::AnyViolation => builder = builder.finish_when(HasDiscoveries::AnyFailures),
        StopAt::Violation(p) => {
            builder = builder.finish_when(HasDiscoveries::AnyOf(BTreeSet::from([p])))
        }
    }
    if search.symmetry {
        builder = builder.symmetry_fn(crate::checked::representative::<R>);
    }
    let meter = crate::memory::Meter::start();
    let start = Instant::now();
    let checker: Box<dyn Checker<CheckModel<R>>> = match search.strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()),
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    let mut last_report = start;
    let report = |checker: &dyn Checker<CheckModel<R>>| Progress {
        total_states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: cuts.counts().deepest,
        elapsed: start.elapsed(),
    };
    while !checker.is_done() {
        if last_report.elapsed() >= every {
            last_report = Instant::now();
            progress(report(&*checker));
        }
        // Poll often so small checks end promptly; report only every `every`.
        std::thread::sleep(Duration::from_millis(5).min(every));
    }
    let mut checker = checker;
    for h in checker.handles() {
        h.join().expect("a checker thread panicked");
    }
    let seconds = start.elapsed().as_secs_f64();
    let bytes_per_state = meter.bytes_per_state(checker.unique_state_count());
    progress(report(&*checker));
    // Before the traces are rebuilt: rebuilding a path asks the model for actions again.
    let cut_counts = cuts.counts();
    // A path rebuilt for a trace ends in a whole state.
    checker.model().leaves.store(false, Ordering::Relaxed);
    let mut discoveries = checker.discoveries();
    let mut paths = Vec::new();
    let properties = props
        .iter()
        .map(|p| {
            let found = discoveries.remove(p.name);
            let sometimes = if crate::properties::names::COVERAGE.contains(&p.name) {
                Kind::Coverage
            } else {
                Kind::Sometimes
            };
            let (kind, status) = match (&p.expectation, found.is_some()) {
                (Expectation::Sometimes, true) => (sometimes, Status::Reached),
                (Expectation::Sometimes, false) => (sometimes, Status::NotReached),
                (_, true) => (Kind::Always, Status::Violated),
                (_, false) => (Kind::Always, Status::Holds),
            };
            let trace = found.map(|path| {
                let t = trace_of_checked(checker.model(), &path, p.name);
                paths.push((p.name, path.into_actions()));
                t
            });
            Verdict {
                name: p.name,
                kind,
                status,
                trace,
            }
        })
        .collect();
    let cuts = cut_counts;
    let summary = Summary {
        protocol: R::NAME,
        config: cfg.clone(),
        search: search.clone(),
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: cuts.deepest,
        cuts,
        seconds,
        bytes_per_state,
        properties,
    };
    (summary, paths)
}
