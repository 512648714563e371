//! [`SavedFailure`]: a failing schedule as `paxraft simulate` saves it and `paxraft replay`
//! reads it.

use std::time::Duration;

use paxraft_impls::{Bug, Change, ChangeMode, Config, ReadMode, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use super::{OptionsError, SimOptions, Workload, LOCK_SESSION_TIMEOUT};
use crate::simulate::executor::{Schedule, Violation};
use paxraft_models::model::Service;

/// The knobs a saved failure needs to rebuild its model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    /// Servers.
    pub servers: usize,
    /// Clients.
    pub clients: usize,
    /// Ops per client.
    pub ops: usize,
    /// Requests outstanding per client (absent in files written before clients pipelined: 1).
    #[serde(default = "one")]
    pub pipeline: usize,
    /// Whether crashes may tear a step (absent in older files: they could not).
    #[serde(default)]
    pub mid_step: bool,
    /// Crash budget.
    pub crashes: usize,
    /// Raft PreVote.
    pub pre_vote: bool,
    /// Raft CheckQuorum.
    pub check_quorum: bool,
    /// Most entries per append (absent in files written before it was saved: the default).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Raft heartbeats without entries (absent in older files: off).
    #[serde(default)]
    pub empty_heartbeats: bool,
    /// How reads are served (absent in files written before reads without the log: log).
    #[serde(default)]
    pub reads: ReadMode,
    /// Followers serve reads (absent in older files: off).
    #[serde(default)]
    pub follower_reads: bool,
    /// Bug-zoo switches, by name.
    pub bugs: Vec<String>,
    /// The replicated service, `kv` or `lock` (absent in files written before the simulator
    /// ran the lock service: `kv`).
    #[serde(default = "kv")]
    pub service: String,
    /// The lock service's session timeout, in applied commands (absent in older files: the
    /// default).
    #[serde(default = "session_timeout")]
    pub session_timeout: u64,
    /// Voters at boot (0: every server; absent in files written before membership changes).
    #[serde(default)]
    pub voters: usize,
    /// The operator's membership changes (absent in older files: none).
    #[serde(default)]
    pub changes: Vec<Change>,
    /// How voters change (absent in older files: one at a time).
    #[serde(default)]
    pub change_mode: ChangeMode,
    /// Multi-Paxos's reconfiguration window (absent in older files: the default).
    #[serde(default = "default_window")]
    pub window: u64,
    /// Snapshot policy, `(every, chunk)` (absent in older files: none).
    #[serde(default)]
    pub snapshots: Option<(u64, usize)>,
    /// The clock drift bound leases are timed by (absent in older files: none).
    #[serde(default)]
    pub clock_drift: Option<Duration>,
}

fn default_window() -> u64 {
    Config::default().window
}

fn one() -> usize {
    1
}

fn kv() -> String {
    Service::Kv.name().to_string()
}

fn session_timeout() -> u64 {
    LOCK_SESSION_TIMEOUT
}

fn default_max_batch() -> usize {
    Config::default().max_batch
}

/// A failing schedule as `paxraft replay` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFailure {
    /// Format version.
    pub version: u32,
    /// Protocol name.
    pub protocol: String,
    /// The model's knobs.
    pub options: SavedOptions,
    /// The seed the search started from.
    pub seed: u64,
    /// The `paxraft simulate` command that found it.
    pub command: String,
    /// The shrunk schedule.
    pub schedule: Schedule,
    /// What it violated.
    pub violation: Violation,
}

/// Why a failure could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// It did not serialize.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// For callers whose errors are still lines of text (the CLI's commands).
impl From<SaveError> for String {
    fn from(e: SaveError) -> String {
        e.to_string()
    }
}

/// Why a saved failure cannot be replayed by this build.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Written in a format version this build does not read.
    #[error("saved failure has format version {found}, this build reads {reads}")]
    Version {
        /// The file's version.
        found: u32,
        /// [`SavedFailure::VERSION`].
        reads: u32,
    },
    /// It names a bug this build does not know.
    #[error("unknown bug {0:?}")]
    UnknownBug(String),
    /// It names a service this build does not know.
    #[error("unknown service {0:?} (expected kv or lock)")]
    UnknownService(String),
    /// The configuration given has other bugs switched on than the schedule needs.
    #[error("the saved schedule needs bugs {needs:?} switched on, the configuration has {has:?}")]
    BugsDiffer {
        /// The bugs the schedule was found with, by name.
        needs: Vec<String>,
        /// The bugs the configuration has, by name.
        has: Vec<String>,
    },
    /// Its options do not validate.
    #[error(transparent)]
    Options(#[from] OptionsError),
}

/// For callers whose errors are still lines of text (the CLI's commands).
impl From<ReplayError> for String {
    fn from(e: ReplayError) -> String {
        e.to_string()
    }
}

impl SavedFailure {
    /// The format version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// Where a failure found by `protocol`'s search from `seed` is saved by default.
    pub fn file_name(protocol: &str, seed: u64) -> String {
        format!("simulate-{protocol}-seed{seed}.json")
    }

    /// Write it as pretty JSON to `path` (whose directory must exist).
    pub fn save(&self, path: &std::path::Path) -> Result<(), SaveError> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).map_err(|source| SaveError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The bugs the schedule needs switched on; `Err` names one this build does not know.
    pub fn bugs(&self) -> Result<Vec<Bug>, ReplayError> {
        self.options
            .bugs
            .iter()
            .map(|b| Bug::parse(b).ok_or_else(|| ReplayError::UnknownBug(b.clone())))
            .collect()
    }

    /// The workload the schedule ran; `Err` names a service this build does not know or a
    /// workload that does not validate.
    pub fn workload(&self) -> Result<Workload, ReplayError> {
        let service = Service::parse(&self.options.service)
            .ok_or_else(|| ReplayError::UnknownService(self.options.service.clone()))?;
        let w = Workload {
            service,
            session_timeout: self.options.session_timeout,
        };
        w.validate()?;
        Ok(w)
    }

    /// The simulation options to replay with, given the protocol configuration (with the
    /// bugs of [`SavedFailure::bugs`] switched on by the caller: only a bug-zoo build can).
    /// Checks the saved workload too ([`SavedFailure::workload`]).
    pub fn sim_options(&self, mut protocol: Config) -> Result<SimOptions, ReplayError> {
        if self.version != Self::VERSION {
            return Err(ReplayError::Version {
                found: self.version,
                reads: Self::VERSION,
            });
        }
        protocol.pre_vote = self.options.pre_vote;
        protocol.check_quorum = self.options.check_quorum;
        protocol.max_batch = self.options.max_batch;
        protocol.empty_heartbeats = self.options.empty_heartbeats;
        protocol.reads = self.options.reads;
        protocol.follower_reads = self.options.follower_reads;
        protocol.changes = self.options.change_mode;
        protocol.window = self.options.window;
        protocol.snapshots = self
            .options
            .snapshots
            .map(|(every, chunk)| SnapshotPolicy { every, chunk });
        protocol.clock_drift = self.options.clock_drift;
        let opts = SimOptions {
            seed: self.seed,
            servers: self.options.servers,
            clients: self.options.clients,
            ops: self.options.ops,
            pipeline: self.options.pipeline,
            mid_step: self.options.mid_step,
            crashes: self.options.crashes,
            settle_steps: self.schedule.profile.settle_steps.max(1),
            voters: self.options.voters,
            changes: self.options.changes.clone(),
            protocol,
            ..SimOptions::default()
        };
        let want = self.bugs()?;
        if opts.bugs() != want {
            return Err(ReplayError::BugsDiffer {
                needs: self.options.bugs.clone(),
                has: opts.bugs().iter().map(|b| b.name().to_string()).collect(),
            });
        }
        opts.validate()?;
        self.workload()?;
        Ok(opts)
    }
}

pub(super) fn saved(
    protocol: &str,
    opts: &SimOptions,
    workload: &Workload,
    command: String,
    schedule: Schedule,
    violation: Violation,
) -> SavedFailure {
    SavedFailure {
        version: SavedFailure::VERSION,
        protocol: protocol.to_string(),
        options: SavedOptions {
            servers: opts.servers,
            clients: opts.clients,
            ops: opts.ops,
            pipeline: opts.pipeline,
            mid_step: opts.mid_step,
            crashes: opts.crashes,
            pre_vote: opts.protocol.pre_vote,
            check_quorum: opts.protocol.check_quorum,
            max_batch: opts.protocol.max_batch,
            empty_heartbeats: opts.protocol.empty_heartbeats,
            reads: opts.protocol.reads,
            follower_reads: opts.protocol.follower_reads,
            bugs: opts.bugs().iter().map(|b| b.name().to_string()).collect(),
            service: workload.service.name().to_string(),
            session_timeout: workload.session_timeout,
            voters: opts.voters,
            changes: opts.changes.clone(),
            change_mode: opts.protocol.changes,
            window: opts.protocol.window,
            snapshots: opts.protocol.snapshots.map(|p| (p.every, p.chunk)),
            clock_drift: opts.protocol.clock_drift,
        },
        seed: opts.seed,
        command,
        schedule,
        violation,
    }
}
