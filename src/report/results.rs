//! What the producers (benchmarks, model checks, the bug zoo, fault schedules) save, and what
//! the report is rendered from. Each producer writes its own JSON file under
//! `reports/data/`, so `paxraft report` can rebuild the HTML without rerunning anything.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

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
    /// Operations measured.
    pub ops: u64,
}

/// Throughput over time with the leader crashed part-way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryRun {
    /// Protocol measured.
    pub protocol: String,
    /// Cluster size.
    pub servers: usize,
    /// When the leader was crashed, milliseconds from the start.
    pub crash_at_ms: f64,
    /// (time in ms, operations per second in the window ending then).
    pub samples: Vec<(f64, f64)>,
    /// From the crash to the first commit after it, milliseconds.
    pub time_to_first_commit_ms: f64,
}

/// The verdict on one model property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyResult {
    /// Plain-words name.
    pub name: String,
    /// `always` or `sometimes`.
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
    /// Deepest path.
    pub max_depth: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Property verdicts.
    pub properties: Vec<PropertyResult>,
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
    /// Whether every always-property held and every sometimes-property was reached.
    pub fn passed(&self) -> bool {
        self.properties.iter().all(|p| p.status == "holds" || p.status == "reached")
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
}

/// Everything a report shows; each part may be missing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Throughput/latency points.
    pub bench: Vec<BenchPoint>,
    /// Recovery timelines.
    pub recovery: Vec<RecoveryRun>,
    /// Model-checking runs.
    pub checks: Vec<CheckResult>,
    /// Bug zoo results.
    pub zoo: Vec<ZooEntry>,
}

/// Where the producers save their results, relative to the report directory.
pub const DATA_DIR: &str = "data";

const BENCH_FILE: &str = "bench.json";
const RECOVERY_FILE: &str = "recovery.json";
const CHECKS_FILE: &str = "checks.json";
const ZOO_FILE: &str = "zoo.json";

fn load<T: DeserializeOwned + Default>(path: &Path) -> io::Result<T> {
    match fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
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
    fn paths(report_dir: &Path) -> [PathBuf; 4] {
        let d = report_dir.join(DATA_DIR);
        [d.join(BENCH_FILE), d.join(RECOVERY_FILE), d.join(CHECKS_FILE), d.join(ZOO_FILE)]
    }

    /// Load whatever results exist under `report_dir/data/` (missing files are empty parts).
    pub fn load(report_dir: &Path) -> io::Result<Results> {
        let [bench, recovery, checks, zoo] = Self::paths(report_dir);
        Ok(Results {
            bench: load(&bench)?,
            recovery: load(&recovery)?,
            checks: load(&checks)?,
            zoo: load(&zoo)?,
        })
    }

    /// Save every non-empty part under `report_dir/data/`, replacing what was there.
    pub fn save(&self, report_dir: &Path) -> io::Result<()> {
        let [bench, recovery, checks, zoo] = Self::paths(report_dir);
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
}
