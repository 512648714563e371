//! What the producers (benchmarks, model checks, the bug zoo, fault schedules) save, and what
//! the report is rendered from. Each producer writes its own JSON file under
//! `reports/data/`, so `paxraft report` can rebuild the HTML without rerunning anything.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use crate::report::provenance::Provenance;

/// One throughput/latency measurement: a protocol under a closed-loop load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchPoint {
    /// `raft`, `multipaxos` or `unreplicated`.
    pub protocol: String,
    /// Cluster size.
    pub servers: usize,
    /// Requests kept outstanding by the clients together.
    pub outstanding: usize,
    /// Command payload size in bytes.
    pub payload_bytes: usize,
    /// Committed operations per second.
    pub ops_per_sec: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: f64,
    /// Operations measured: requests answered with a result (errors are not operations).
    pub ops: u64,
    /// Requests answered with an error (a client timeout) while measuring: not in `ops` nor
    /// in the latencies. 0 in results saved before errors were counted.
    #[serde(default)]
    pub errors: u64,
    /// Where the servers ran: threads of the bench process, or server processes over
    /// loopback TCP (in-process in results saved before loopback was measured).
    #[serde(default)]
    pub transport: Transport,
    /// When and from which commit it was made (`None` in results saved before runs were
    /// stamped: unknown, shown as such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Every how many committed slots the servers snapshotted and compacted their logs
    /// (`None`: never, so the logs grew for the whole point; so did every point saved before
    /// the benchmarks compacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// Where the operations' CPU went ([`crate::cpu`]): in-process points only (`None` over
    /// loopback, off Unix, and in results saved before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuUse>,
    /// Elections while measured: how many terms (Raft) or ballot rounds (multi-Paxos) the
    /// cluster's highest moved on. A point without faults should have none: one that has
    /// measured leaderless time. Over loopback read from the servers' status pages (`None`
    /// when one did not answer, and in results saved before it was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elections: Option<u64>,
}

/// CPU time per completed operation, in nanoseconds, while a point was measured: what the
/// client threads (the driver's loop, the client library, lease and ReadIndex reads answered
/// on their threads) and each server's thread spent, divided by the operations completed.
/// On two cores a point is CPU-bound, so these say where its throughput goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// The client threads together.
    pub clients_ns: f64,
    /// Each server's thread, by node index (`None`: down at the end of the point, or its
    /// thread changed).
    pub servers_ns: Vec<Option<f64>>,
    /// The node that led at the end of the point, if any.
    pub leader: Option<usize>,
}

impl CpuUse {
    /// The CPU use of `ops` operations: the client threads' time `clients` (`None`: a clock
    /// could not be read), and each node's thread from `from` to `to`
    /// ([`Cluster::node_cpu`](crate::runtime::Cluster::node_cpu) before and after; a node
    /// down at either end, or restarted between them, has no share). `None` without
    /// operations or the clients' time.
    pub fn over(
        clients: Option<Duration>,
        from: &[crate::cpu::ThreadCpu],
        to: &[crate::cpu::ThreadCpu],
        ops: u64,
        leader: Option<usize>,
    ) -> Option<CpuUse> {
        if ops == 0 {
            return None;
        }
        let per_op = |d: Duration| d.as_nanos() as f64 / ops as f64;
        Some(CpuUse {
            clients_ns: per_op(clients?),
            servers_ns: from
                .iter()
                .zip(to)
                .map(|(from, to)| match (from, to) {
                    (Some((was, from)), Some((id, to))) if id == was => {
                        Some(per_op(to.saturating_sub(*from)))
                    }
                    _ => None,
                })
                .collect(),
            leader,
        })
    }

    /// The leader's thread, per operation.
    pub fn leader_ns(&self) -> Option<f64> {
        self.servers_ns.get(self.leader?).copied().flatten()
    }

    /// The other servers' threads, per operation each (their mean; `None` with one server,
    /// without a leader, or with one of them not measured).
    pub fn follower_ns(&self) -> Option<f64> {
        let leader = self.leader?;
        let others: Option<Vec<f64>> = self
            .servers_ns
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != leader)
            .map(|(_, ns)| *ns)
            .collect();
        let others = others?;
        (!others.is_empty()).then(|| others.iter().sum::<f64>() / others.len() as f64)
    }

    /// Every thread together, per operation (`None` if a server was not measured).
    pub fn total_ns(&self) -> Option<f64> {
        let servers: Option<Vec<f64>> = self.servers_ns.iter().copied().collect();
        Some(self.clients_ns + servers?.iter().sum::<f64>())
    }

    /// One line, node by node: "clients 139 ns, n0 112 ns, n1 (leader) 198 ns, n2 113 ns;
    /// all threads 562 ns" ("-" for a node not measured).
    pub fn line(&self) -> String {
        let mut s = format!("clients {:.0} ns", self.clients_ns);
        for (i, ns) in self.servers_ns.iter().enumerate() {
            let lead = if self.leader == Some(i) {
                " (leader)"
            } else {
                ""
            };
            match ns {
                Some(ns) => s.push_str(&format!(", n{i}{lead} {ns:.0} ns")),
                None => s.push_str(&format!(", n{i}{lead} -")),
            }
        }
        match self.total_ns() {
            Some(t) => s.push_str(&format!("; all threads {t:.0} ns")),
            None => s.push_str("; all threads -"),
        }
        s
    }
}

/// How a benchmark's clients and servers talk.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Replica threads in the bench process, messages through in-memory channels.
    #[default]
    InProcess,
    /// One server process per replica on 127.0.0.1, TCP between them and to the clients.
    Loopback,
}

impl Transport {
    /// `in-process` or `loopback`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::InProcess => "in-process",
            Transport::Loopback => "loopback",
        }
    }
}

/// Throughput over time with the leader crashed part-way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryRun {
    /// Protocol measured.
    pub protocol: String,
    /// Cluster size.
    pub servers: usize,
    /// What disrupted the leader (saved runs from before transfers were measured: a crash).
    #[serde(default)]
    pub event: Disruption,
    /// When the leader was crashed (or asked to transfer), milliseconds from the start.
    pub crash_at_ms: f64,
    /// (time in ms, operations per second in the window ending then).
    pub samples: Vec<(f64, f64)>,
    /// A crash: from the crash to the first commit after it. A transfer: from asking to the
    /// answer (the old leader has heard from the target as leader). Milliseconds.
    pub time_to_first_commit_ms: f64,
    /// Mean throughput in the steady state before the crash, ops/s.
    #[serde(default)]
    pub before_ops_per_sec: Option<f64>,
    /// Lowest throughput sample after the crash (the bottom of the dip), ops/s.
    #[serde(default)]
    pub min_ops_per_sec: Option<f64>,
    /// From the crash until throughput is back to 90% of the steady state, milliseconds
    /// (`None`: not within the run).
    #[serde(default)]
    pub recovered_ms: Option<f64>,
    /// When and from which commit it was made (`None` in results saved before runs were
    /// stamped: unknown, shown as such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// What a recovery timeline does to the leader under load.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Disruption {
    /// The leader crashes: the others elect a new one after an election timeout.
    #[default]
    Crash,
    /// The leader is asked to hand its leadership to the next node
    /// ([`paxraft_impls::Change::Transfer`]): no timeout to wait out.
    Transfer,
}

impl Disruption {
    /// How the report names it: "leader crash", "leadership transfer".
    pub fn describe(self) -> &'static str {
        match self {
            Disruption::Crash => "leader crash",
            Disruption::Transfer => "leadership transfer",
        }
    }
}

/// A follower that fell behind the leader's snapshot, restarted and caught up
/// ([`crate::bench::catch_up`]; issue 17's target: under 2 s at 10^6 slots behind).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatchUpRun {
    /// The protocol's name.
    pub protocol: String,
    /// Slots the cluster committed while the follower was down.
    pub behind: u64,
    /// The snapshot threshold ([`paxraft_impls::SnapshotPolicy::every`]).
    pub every: u64,
    /// From the follower's restart until it had applied everything committed before it.
    pub seconds: f64,
    /// Snapshots its state machine was restored from: what catching up shipped to it besides
    /// the log entries above the snapshot.
    pub snapshots: u64,
    /// The bytes of those snapshots.
    pub snapshot_bytes: u64,
    /// When and from which commit it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl CatchUpRun {
    /// Issue 17's target: a follower this many slots behind ...
    pub const TARGET_BEHIND: u64 = 1_000_000;
    /// ... catches up in under this many seconds.
    pub const TARGET_SECS: f64 = 2.0;
}

/// A leader restarted from a compacted log (snapshot plus the entries above it):
/// [`crate::bench::leader_restart`]; issue 17's target: the cluster serves again within
/// 100 ms plus the election timeout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartRun {
    /// The protocol's name.
    pub protocol: String,
    /// Slots committed before the leader was crashed.
    pub committed: u64,
    /// The snapshot threshold.
    pub every: u64,
    /// Entries the leader's log held above its snapshot when it crashed: what its restart
    /// replayed besides the snapshot.
    pub log_entries: u64,
    /// The election timeout range the cluster ran with, milliseconds.
    pub election_timeout_ms: (f64, f64),
    /// From the restart until a new client write committed (an election, then a commit).
    pub serve_ms: f64,
    /// From the restart until the restarted node had applied everything committed before
    /// its crash (its state machine rebuilt from the snapshot and the log above it).
    pub rebuilt_ms: f64,
    /// When and from which commit it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl RestartRun {
    /// Issue 17's bound on `serve_ms`: 100 ms plus the longest election timeout.
    pub fn target_ms(&self) -> f64 {
        100.0 + self.election_timeout_ms.1
    }
}

/// The verdict on one model property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyResult {
    /// Plain-words name.
    pub name: String,
    /// `always`, `sometimes` or `coverage` (a milestone reported, not required).
    pub kind: String,
    /// `holds`, `violated`, `reached` or `not reached`.
    pub status: String,
}

/// One model-checking run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Protocol checked.
    pub protocol: String,
    /// The configuration in CLI flags, e.g. `--servers 3 --clients 2`.
    pub config: String,
    /// Distinct states.
    pub unique_states: u64,
    /// States visited, duplicates included.
    pub total_states: u64,
    /// The deepest state checked, in actions.
    pub max_depth: u64,
    /// States checked and not expanded because of the depth bound, the term bound and the
    /// in-flight bound (`None` in results saved before cuts were counted, which dropped
    /// states past a bound unchecked).
    #[serde(default)]
    pub cuts: Option<[u64; 3]>,
    /// Whether the search merged states that are not equivalent (`--symmetry`).
    #[serde(default)]
    pub under_approximation: bool,
    /// Whether a follower's lease end and its bid were one action
    /// ([`paxraft_models::ModelConfig::fold_lapse`]).
    #[serde(default)]
    pub lapse_folded: bool,
    /// Whether the search's depth bound was not exact: DFS, or BFS on several threads
    /// ([`paxraft_models::Summary::depth_inexact`]).
    #[serde(default)]
    pub depth_inexact: bool,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The process's peak growth per unique state, in bytes (`paxraft_models::memory`;
    /// `None` in results saved before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_state: Option<f64>,
    /// Property verdicts.
    pub properties: Vec<PropertyResult>,
    /// When and from which commit it was made (`None` in results saved before runs were
    /// stamped: unknown, shown as such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl CheckResult {
    /// Unique states per second.
    pub fn states_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.unique_states as f64 / self.seconds
        } else {
            0.0
        }
    }
    /// Whether every always-property held and every required sometimes-property was reached
    /// (coverage milestones inform, they do not fail a check).
    pub fn passed(&self) -> bool {
        self.properties
            .iter()
            .all(|p| p.kind == "coverage" || p.status == "holds" || p.status == "reached")
    }
}

impl CheckResult {
    /// The report's record of a finished model check.
    pub fn from_summary(s: &paxraft_models::Summary) -> CheckResult {
        let flags = s.flags();
        CheckResult {
            protocol: s.protocol.to_string(),
            config: if flags.is_empty() {
                "(defaults)".into()
            } else {
                flags
            },
            unique_states: s.unique_states as u64,
            total_states: s.total_states as u64,
            max_depth: s.max_depth as u64,
            cuts: Some([s.cuts.depth, s.cuts.term, s.cuts.in_flight].map(|c| c as u64)),
            under_approximation: s.under_approximation(),
            lapse_folded: s.folds_lapse(),
            depth_inexact: s.depth_inexact().is_some(),
            seconds: s.seconds,
            bytes_per_state: s.bytes_per_state,
            provenance: Some(Provenance::now()),
            properties: s
                .properties
                .iter()
                .map(|v| PropertyResult {
                    name: v.name.to_string(),
                    kind: v.kind.name().into(),
                    status: v.status.name().to_string(),
                })
                .collect(),
        }
    }
}

/// One step of a counterexample, for sequence diagrams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Acting actor (column), e.g. `n0` or `client 1`.
    pub actor: String,
    /// Recipient when the step is a delivery, else `None` (a timer, crash, ...).
    pub to: Option<String>,
    /// What happened.
    pub label: String,
}

/// A counterexample trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The columns, left to right.
    pub actors: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<TraceStep>,
}

impl Trace {
    /// The report's form of a model checker's trace.
    pub fn from_model(t: &paxraft_models::Trace) -> Trace {
        let name = |i: usize| t.actors.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        Trace {
            actors: t.actors.clone(),
            steps: t
                .steps
                .iter()
                .map(|s| TraceStep {
                    actor: name(s.actor),
                    to: s.to.map(name),
                    label: s.label.clone(),
                })
                .collect(),
        }
    }
}

/// One bug of the zoo and whether the checks caught it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZooEntry {
    /// BUGZOO.md code, e.g. `R1`.
    pub code: String,
    /// BUGZOO.md name.
    pub name: String,
    /// Protocol it is injected into.
    pub protocol: String,
    /// Whether a check failed with the bug on.
    pub caught: bool,
    /// The property that caught it.
    pub property: Option<String>,
    /// Steps in the counterexample.
    pub trace_len: Option<usize>,
    /// States explored (or steps executed) before it was caught.
    pub states: u64,
    /// Time to detect, seconds.
    pub seconds: f64,
    /// The counterexample.
    pub trace: Option<Trace>,
    /// The counterexample replayed with the bug switched off (`None`: not replayed, because
    /// the bug escaped or the result was saved before replays were made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_replay: Option<CleanReplay>,
    /// When and from which commit it was made (`None` in results saved before runs were
    /// stamped: unknown, shown as such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// How a counterexample was replayed with the bug off.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayKind {
    /// A model checker's counterexample: its actions, one by one, on the clean model.
    Path,
    /// A fault-schedule search's shrunk schedule, rerun whole (settling phase included).
    Schedule,
    /// A lease sweep's failing scenario, rerun on the driver.
    Scenario,
}

/// What failed when a counterexample was replayed with the bug off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayFailure {
    /// The property (or `settles`, `no panic`).
    pub property: String,
    /// The step it failed at: for a path, the counterexample's action (1-based); for a
    /// schedule, the run's step.
    pub step: usize,
    /// What the check said (may be empty).
    #[serde(default)]
    pub detail: String,
}

/// A caught bug's counterexample replayed with the bug switched off: the attribution check. A
/// counterexample that fails without the bug too does not show the bug.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CleanReplay {
    /// Path or schedule.
    pub kind: ReplayKind,
    /// Steps taken: for a path, its actions the clean model could take; for a schedule, the
    /// whole rerun, settling included.
    pub steps: usize,
    /// Actions of a path the clean model did not offer or that changed nothing there (a
    /// message the clean protocol never sent, say), skipped. Always 0 for a schedule.
    pub skipped: usize,
    /// `None`: every property held after every step (and a schedule's run settled).
    pub failure: Option<ReplayFailure>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl CleanReplay {
    /// Whether the replay passed.
    pub fn clean(&self) -> bool {
        self.failure.is_none()
    }

    /// One line for tables: `clean (...)` or `NOT CLEAN: <property> at step N`.
    pub fn summary(&self) -> String {
        match (&self.failure, self.kind) {
            (None, ReplayKind::Path) => format!(
                "clean ({} of {} actions, {} skipped)",
                self.steps,
                self.steps + self.skipped,
                self.skipped
            ),
            (None, ReplayKind::Schedule) => format!("clean ({} steps, settled)", self.steps),
            (None, ReplayKind::Scenario) => format!("clean ({} driver steps)", self.steps),
            (Some(f), kind) => format!(
                "NOT CLEAN: {} at {} {}",
                f.property,
                match kind {
                    ReplayKind::Path => "action",
                    ReplayKind::Schedule | ReplayKind::Scenario => "step",
                },
                f.step
            ),
        }
    }
}

/// A replicated protocol against the unreplicated ceiling, measured side by side in rounds
/// ([`crate::bench::ceiling_side_by_side`]): each round runs the protocol and the ceiling
/// (alone, and as the serving node of 3) one after another, so a share does not depend on
/// the minute a round ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CeilingRatio {
    /// The replicated protocol.
    pub protocol: String,
    /// Its servers.
    pub servers: usize,
    /// Requests outstanding over all clients.
    pub outstanding: usize,
    /// Each round's ops/s: the protocol's, the ceiling's alone (1 server), the ceiling's as
    /// the serving node of `servers`.
    pub rounds: Vec<[f64; 3]>,
    /// Each round's CPU use per operation, in the same order as `rounds` (empty in results
    /// saved before it was measured).
    #[serde(default)]
    pub cpu: Vec<[Option<CpuUse>; 3]>,
    /// Requests that failed over every point of the comparison (timeouts: not operations).
    pub errors: u64,
    /// Elections over every point of the comparison ([`BenchPoint::elections`]; 0 in results
    /// saved before they were counted).
    #[serde(default)]
    pub elections: u64,
    /// When and from what build.
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

/// Which ceiling a [`CeilingRatio`] share is of.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ceiling {
    /// The ceiling on 1 server.
    Alone,
    /// The ceiling as the serving node of the protocol's cluster size.
    OneOfN,
}

impl CeilingRatio {
    /// The protocol's ops/s over `ceiling`'s, round by round (rounds where the ceiling did
    /// nothing are left out).
    pub fn shares(&self, ceiling: Ceiling) -> Vec<f64> {
        let i = match ceiling {
            Ceiling::Alone => 1,
            Ceiling::OneOfN => 2,
        };
        per_round(&self.rounds, 0, i)
    }
}

/// Medians over side-by-side rounds of one measurement's CPU use per operation, in ns
/// ([`CpuMedians::of`]); `None` where no round measured it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuMedians {
    /// The client threads together ([`CpuUse::clients_ns`]).
    pub clients: Option<f64>,
    /// The leader's thread ([`CpuUse::leader_ns`]).
    pub leader: Option<f64>,
    /// Each other server's ([`CpuUse::follower_ns`]).
    pub follower: Option<f64>,
    /// Every thread together ([`CpuUse::total_ns`]).
    pub all: Option<f64>,
}

impl CpuMedians {
    /// Measurement `i` of each of `rounds` (rounds without it left out).
    pub fn of<const N: usize>(rounds: &[[Option<CpuUse>; N]], i: usize) -> Self {
        let median_of = |part: &dyn Fn(&CpuUse) -> Option<f64>| {
            let xs: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r[i].as_ref().and_then(part))
                .collect();
            (!xs.is_empty()).then(|| median(xs))
        };
        CpuMedians {
            clients: median_of(&|c| Some(c.clients_ns)),
            leader: median_of(&CpuUse::leader_ns),
            follower: median_of(&CpuUse::follower_ns),
            all: median_of(&CpuUse::total_ns),
        }
    }

    /// One line: "clients 150, leader 220, each follower 150, all 670 ns".
    pub fn line(&self) -> String {
        format!(
            "clients {}, leader {}, each follower {}, all {} ns",
            ns_or_dash(self.clients),
            ns_or_dash(self.leader),
            ns_or_dash(self.follower),
            ns_or_dash(self.all)
        )
    }
}

/// A figure in whole nanoseconds, or "-" when there is none (a report cell, a printed line).
pub fn ns_or_dash(ns: Option<f64>) -> String {
    ns.map_or("-".to_string(), |x| format!("{x:.0}"))
}

/// Each round's measurement `of` over its measurement `over`, the rounds where `over` is 0
/// left out: the ratios of a side-by-side comparison.
pub fn per_round<const N: usize>(rounds: &[[f64; N]], of: usize, over: usize) -> Vec<f64> {
    rounds
        .iter()
        .filter(|r| r[over] > 0.0)
        .map(|r| r[of] / r[over])
        .collect()
}

/// `(median, lowest, highest)` of `values`; `None` for none.
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let low = values.iter().copied().reduce(f64::min)?;
    let high = values.iter().copied().reduce(f64::max)?;
    Some((median(values.to_vec()), low, high))
}

/// The median of `values` (the mean of the middle two for an even count; 0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Everything a report shows; each part may be missing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Throughput/latency points.
    pub bench: Vec<BenchPoint>,
    /// Recovery timelines.
    pub recovery: Vec<RecoveryRun>,
    /// Followers catching up by snapshot.
    #[serde(default)]
    pub catch_up: Vec<CatchUpRun>,
    /// Leaders restarting from a compacted log.
    #[serde(default)]
    pub restarts: Vec<RestartRun>,
    /// Model-checking runs.
    pub checks: Vec<CheckResult>,
    /// The replicated protocols against the ceiling, side by side.
    #[serde(default)]
    pub ceiling: Vec<CeilingRatio>,
    /// Bug zoo results.
    pub zoo: Vec<ZooEntry>,
    /// The mutation score `scripts/mutants` saved (read, never written, by the binary).
    #[serde(skip)]
    pub mutants: Option<crate::report::mutants::MutationResult>,
}

/// Where the producers save their results, relative to the report directory.
pub const DATA_DIR: &str = "data";

const BENCH_FILE: &str = "bench.json";
const RECOVERY_FILE: &str = "recovery.json";
const CHECKS_FILE: &str = "checks.json";
const ZOO_FILE: &str = "zoo.json";
const CATCH_UP_FILE: &str = "catch_up.json";
const RESTART_FILE: &str = "restart.json";
const CEILING_FILE: &str = "ceiling_ratios.json";

/// `path`'s JSON (the default when the file is missing; an error naming the file when it does
/// not decode).
pub(crate) fn load<T: DeserializeOwned + Default>(path: &Path) -> io::Result<T> {
    match fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

fn save<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, json)?;
    fs::rename(tmp, path)
}

impl Results {
    fn paths(report_dir: &Path) -> [PathBuf; 7] {
        let d = report_dir.join(DATA_DIR);
        [
            d.join(BENCH_FILE),
            d.join(RECOVERY_FILE),
            d.join(CHECKS_FILE),
            d.join(ZOO_FILE),
            d.join(CEILING_FILE),
            d.join(CATCH_UP_FILE),
            d.join(RESTART_FILE),
        ]
    }

    /// Load whatever results exist under `report_dir/data/` (missing files are empty parts).
    pub fn load(report_dir: &Path) -> io::Result<Results> {
        let [bench, recovery, checks, zoo, ceiling, catch_up, restarts] = Self::paths(report_dir);
        Ok(Results {
            bench: load(&bench)?,
            recovery: load(&recovery)?,
            catch_up: load(&catch_up)?,
            restarts: load(&restarts)?,
            checks: load(&checks)?,
            ceiling: load(&ceiling)?,
            zoo: load(&zoo)?,
            mutants: crate::report::mutants::MutationResult::load(report_dir)?,
        })
    }

    /// Save every non-empty part under `report_dir/data/`, replacing what was there.
    pub fn save(&self, report_dir: &Path) -> io::Result<()> {
        let [bench, recovery, checks, zoo, ceiling, catch_up, restarts] = Self::paths(report_dir);
        if !self.ceiling.is_empty() {
            save(&ceiling, &self.ceiling)?;
        }
        if !self.catch_up.is_empty() {
            save(&catch_up, &self.catch_up)?;
        }
        if !self.restarts.is_empty() {
            save(&restarts, &self.restarts)?;
        }
        if !self.bench.is_empty() {
            save(&bench, &self.bench)?;
        }
        if !self.recovery.is_empty() {
            save(&recovery, &self.recovery)?;
        }
        if !self.checks.is_empty() {
            save(&checks, &self.checks)?;
        }
        if !self.zoo.is_empty() {
            save(&zoo, &self.zoo)?;
        }
        Ok(())
    }

    /// Merge `points` into `report_dir/data/bench.json`: a point replaces the saved one of the
    /// same protocol, cluster size, outstanding requests and payload; others are kept (so a
    /// filtered `cargo bench` run updates only what it measured).
    pub fn merge_bench(report_dir: &Path, points: &[BenchPoint]) -> io::Result<()> {
        let [path, ..] = Self::paths(report_dir);
        merge(&path, points, bench_key)
    }

    /// Like [`Results::merge_bench`], for short measurements (the tour's): a saved point that
    /// measured more operations (a `cargo bench` run) is kept, not replaced by a shorter one.
    pub fn merge_bench_short(report_dir: &Path, points: &[BenchPoint]) -> io::Result<()> {
        let [path, ..] = Self::paths(report_dir);
        merge_by(&path, points, bench_key, |new, old| new.ops >= old.ops)
    }

    /// Merge `ratios` into `report_dir/data/ceiling_ratios.json`, by protocol, cluster size
    /// and load.
    pub fn merge_ceiling(report_dir: &Path, ratios: &[CeilingRatio]) -> io::Result<()> {
        let [_, _, _, _, path, ..] = Self::paths(report_dir);
        merge(&path, ratios, |r| {
            (r.protocol.clone(), r.servers, r.outstanding)
        })
    }

    /// Merge `runs` into `report_dir/data/recovery.json`, by protocol, cluster size and
    /// disruption.
    pub fn merge_recovery(report_dir: &Path, runs: &[RecoveryRun]) -> io::Result<()> {
        let [_, path, ..] = Self::paths(report_dir);
        merge(&path, runs, |r| (r.protocol.clone(), r.servers, r.event))
    }

    /// Merge `runs` into `report_dir/data/catch_up.json`, by protocol.
    pub fn merge_catch_up(report_dir: &Path, runs: &[CatchUpRun]) -> io::Result<()> {
        let [.., path, _] = Self::paths(report_dir);
        merge(&path, runs, |r| r.protocol.clone())
    }

    /// Like [`Results::merge_catch_up`] and [`Results::merge_restarts`] together, for short
    /// runs (the tour's): a saved run from further behind, or after more commits (a `cargo
    /// bench` run), is kept, not replaced by a smaller one.
    pub fn merge_snapshot_runs_short(
        report_dir: &Path,
        catch_up: &[CatchUpRun],
        restarts: &[RestartRun],
    ) -> io::Result<()> {
        let [.., catch_up_path, restart_path] = Self::paths(report_dir);
        merge_by(
            &catch_up_path,
            catch_up,
            |r| r.protocol.clone(),
            |new, old| new.behind >= old.behind,
        )?;
        merge_by(
            &restart_path,
            restarts,
            |r| r.protocol.clone(),
            |new, old| new.committed >= old.committed,
        )
    }

    /// Merge `runs` into `report_dir/data/restart.json`, by protocol.
    pub fn merge_restarts(report_dir: &Path, runs: &[RestartRun]) -> io::Result<()> {
        let [.., path] = Self::paths(report_dir);
        merge(&path, runs, |r| r.protocol.clone())
    }

    /// Merge `checks` into `report_dir/data/checks.json`, by protocol and configuration.
    pub fn merge_checks(report_dir: &Path, checks: &[CheckResult]) -> io::Result<()> {
        let [_, _, path, ..] = Self::paths(report_dir);
        merge(&path, checks, |c| (c.protocol.clone(), c.config.clone()))
    }
}

/// Which bench points are the same measurement: protocol, cluster size, outstanding requests
/// and payload.
fn bench_key(p: &BenchPoint) -> (String, usize, usize, usize, Transport) {
    (
        p.protocol.clone(),
        p.servers,
        p.outstanding,
        p.payload_bytes,
        p.transport,
    )
}

/// Replace the saved items whose key one of `new` has, keep the rest, save sorted by key.
pub(crate) fn merge<T, K>(path: &Path, new: &[T], key: impl Fn(&T) -> K) -> io::Result<()>
where
    T: Clone + Serialize + DeserializeOwned,
    K: Ord,
{
    merge_by(path, new, key, |_, _| true)
}

/// [`merge`], where an item of `new` replaces a saved one of the same key only when
/// `replaces(new, saved)`; otherwise the saved one is kept and the new one dropped.
pub(crate) fn merge_by<T, K>(
    path: &Path,
    new: &[T],
    key: impl Fn(&T) -> K,
    replaces: impl Fn(&T, &T) -> bool,
) -> io::Result<()>
where
    T: Clone + Serialize + DeserializeOwned,
    K: Ord,
{
    let mut all: Vec<T> = load(path)?;
    let new: Vec<&T> = new
        .iter()
        .filter(|n| all.iter().all(|old| key(old) != key(n) || replaces(n, old)))
        .collect();
    all.retain(|old| new.iter().all(|n| key(n) != key(old)));
    all.extend(new.into_iter().cloned());
    all.sort_by_key(|a| key(a));
    save(path, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_use_divides_each_threads_time_and_leaves_out_a_node_that_restarted_or_went_down() {
        let ms = Duration::from_millis;
        // Three threads' ids: node 1's thread at the end is another one (it restarted).
        let ids: Vec<std::thread::ThreadId> = (0..4)
            .map(|_| {
                std::thread::spawn(|| std::thread::current().id())
                    .join()
                    .unwrap()
            })
            .collect();
        let from = [
            Some((ids[0], ms(10))),
            Some((ids[1], ms(10))),
            Some((ids[2], ms(0))),
        ];
        let to = [Some((ids[0], ms(30))), Some((ids[3], ms(15))), None];
        let cpu = CpuUse::over(Some(ms(50)), &from, &to, 1_000_000, Some(0)).unwrap();
        assert_eq!(cpu.clients_ns, 50.0);
        assert_eq!(cpu.servers_ns, [Some(20.0), None, None]);
        assert_eq!(
            (cpu.leader_ns(), cpu.follower_ns(), cpu.total_ns()),
            (Some(20.0), None, None)
        );
        assert_eq!(
            cpu.line(),
            "clients 50 ns, n0 (leader) 20 ns, n1 -, n2 -; all threads -"
        );
        let all = [
            Some((ids[0], ms(30))),
            Some((ids[1], ms(20))),
            Some((ids[2], ms(12))),
        ];
        let cpu = CpuUse::over(Some(ms(50)), &from, &all, 1_000_000, Some(1)).unwrap();
        assert_eq!(
            (cpu.leader_ns(), cpu.follower_ns(), cpu.total_ns()),
            (Some(10.0), Some(16.0), Some(92.0))
        );
        assert_eq!(
            cpu.line(),
            "clients 50 ns, n0 20 ns, n1 (leader) 10 ns, n2 12 ns; all threads 92 ns"
        );
        // Nothing to divide by, or no clients' time: no figure.
        assert_eq!(CpuUse::over(Some(ms(50)), &from, &all, 0, Some(1)), None);
        assert_eq!(CpuUse::over(None, &from, &all, 10, Some(1)), None);
    }
}
