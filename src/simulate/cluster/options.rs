//! [`SimOptions`]: what a search runs, the model and schedule space they give, and the
//! flags that rebuild them.

use paxraft_impls::{Bug, Config, MAX_NODES};
use paxraft_models::model::{NetworkKind, Service, MAX_PIPELINE};
use paxraft_models::ModelConfig;

use crate::simulate::Space;

/// Why [`SimOptions::validate`] rejected the options: one line, naming the flag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// A count outside `1..=max`.
    #[error("{flag} must be 1 to {max}, got {got}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// Its highest value.
        max: usize,
        /// The value given.
        got: usize,
    },
    /// A count that must be at least 1.
    #[error("{flag} must be at least 1")]
    Zero {
        /// The flag.
        flag: &'static str,
    },
    /// A rate above 100%.
    #[error("{flag} is a percentage (0 to 100), got {got}")]
    NotAPercentage {
        /// The flag.
        flag: &'static str,
        /// The value given.
        got: u8,
    },
    /// Loss and crash rates that leave deliveries less than 30% of the steps.
    #[error("--loss plus --crash-rate must leave at least 30% of steps for deliveries")]
    TooFewDeliveries,
    /// The protocol configuration's own check failed.
    #[error("{0}")]
    Protocol(String),
    /// Sessions that never expire under the lock service.
    #[error("--session-timeout must be at least 1 with --service lock")]
    SessionTimeoutZero,
}

/// For callers whose errors are still lines of text (the CLI's commands).
impl From<OptionsError> for String {
    fn from(e: OptionsError) -> String {
        e.to_string()
    }
}

/// What [`hunt`](super::hunt) searches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    /// Seed of the schedule generator: the same options and seed give the same runs.
    pub seed: u64,
    /// Random schedules to run.
    pub runs: u32,
    /// Most steps in a run's faulty phase.
    pub steps: usize,
    /// Bound on a run's fault-free settling phase.
    pub settle_steps: usize,
    /// Servers (1 to [`MAX_NODES`]).
    pub servers: usize,
    /// The servers that vote at boot (`0..voters`; 0: all); the others are spares
    /// ([`ModelConfig::voters`]).
    pub voters: usize,
    /// Membership changes an operator may ask of any leader, at any step
    /// ([`ModelConfig::changes`]).
    pub changes: Vec<paxraft_impls::Change>,
    /// Clients.
    pub clients: usize,
    /// Operations per client.
    pub ops: usize,
    /// Requests a client keeps outstanding at once (1 to 8): with more than one, clients
    /// pipeline and acknowledge as the runtime's clients do.
    pub pipeline: usize,
    /// Whether crashes may fall between two effects of a step (a torn step) rather than
    /// only between steps: half of the crash rolls try to tear a pending step of the
    /// crashing server (see [`crate::simulate::executor::Executor::tear_crashes`]).
    pub mid_step: bool,
    /// Highest message-loss rate, percent of steps.
    pub loss_pct: u8,
    /// Highest duplication rate, percent of deliveries.
    pub dup_pct: u8,
    /// Highest crash/restart rate, percent of steps.
    pub crash_pct: u8,
    /// Crashes allowed per run (0: none).
    pub crashes: usize,
    /// Whether runs include partition windows.
    pub partitions: bool,
    /// The protocol configuration (bug-zoo switches included).
    pub protocol: Config,
    /// Most shrinking steps once a failure is found.
    pub max_shrink_iters: u32,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 0,
            runs: 100,
            steps: 2_000,
            settle_steps: 4_000,
            servers: 3,
            voters: 0,
            changes: Vec::new(),
            clients: 3,
            ops: 20,
            pipeline: 3,
            mid_step: true,
            loss_pct: 10,
            dup_pct: 10,
            crash_pct: 3,
            crashes: 2,
            partitions: false,
            protocol: Config::default(),
            max_shrink_iters: 1_000,
        }
    }
}

/// Most ops per client (the model numbers them with a `u8`, and a client's resends too).
pub const MAX_OPS: usize = 250;
/// Most clients.
pub const MAX_CLIENTS: usize = 16;

impl SimOptions {
    /// Reject options that cannot be simulated, with a one-line reason.
    pub fn validate(&self) -> Result<(), OptionsError> {
        for (flag, got, max) in [
            ("--servers", self.servers, MAX_NODES),
            ("--clients", self.clients, MAX_CLIENTS),
            ("--ops", self.ops, MAX_OPS),
            ("--pipeline", self.pipeline, MAX_PIPELINE),
        ] {
            if got == 0 || got > max {
                return Err(OptionsError::OutOfRange { flag, max, got });
            }
        }
        for (flag, n) in [
            ("--runs", self.runs as usize),
            ("--steps", self.steps),
            ("--settle-steps", self.settle_steps),
        ] {
            if n == 0 {
                return Err(OptionsError::Zero { flag });
            }
        }
        for (flag, got) in [
            ("--loss", self.loss_pct),
            ("--dup", self.dup_pct),
            ("--crash-rate", self.crash_pct),
        ] {
            if got > 100 {
                return Err(OptionsError::NotAPercentage { flag, got });
            }
        }
        if u16::from(self.loss_pct) + u16::from(self.crash_pct) > 70 {
            return Err(OptionsError::TooFewDeliveries);
        }
        if self.voters > self.servers {
            return Err(OptionsError::OutOfRange {
                flag: "--voters",
                max: self.servers,
                got: self.voters,
            });
        }
        if let Some(c) = self
            .changes
            .iter()
            .find(|c| c.node().index() >= self.servers)
        {
            return Err(OptionsError::Protocol(format!(
                "--changes names {}, but the cluster has servers n0 to n{}",
                c.node(),
                self.servers - 1
            )));
        }
        if self.changes.len() > paxraft_models::model::MAX_CHANGES {
            return Err(OptionsError::OutOfRange {
                flag: "--changes",
                max: paxraft_models::model::MAX_CHANGES,
                got: self.changes.len(),
            });
        }
        self.protocol
            .validate(self.servers)
            .map_err(|e| OptionsError::Protocol(e.to_string()))
    }

    /// The model configuration a run of the key-value workload uses.
    pub fn model_config(&self) -> ModelConfig {
        self.model_config_for(&Workload::default())
    }

    /// The model configuration a run of `workload` uses.
    pub fn model_config_for(&self, workload: &Workload) -> ModelConfig {
        ModelConfig {
            servers: self.servers,
            voters: self.voters,
            changes: self.changes.clone(),
            clients: self.clients,
            ops: self.ops,
            network: NetworkKind::Duplicating,
            // Drops exist in the model; the schedule decides how often they happen.
            lossy: true,
            max_crashes: self.crashes,
            // Terms and retries are not what bounds a run: its length is.
            max_term: u64::MAX / 2,
            // Room for every server to broadcast and every client to wait at once; beyond it
            // a step is refused, which keeps stale heartbeats from piling up without end. A
            // broadcast of a log's worth of slots takes a message per `max_batch` of them
            // (a promise, a new leader's recovery): with small batches, room for that too,
            // or the step that would send them is refused for ever.
            max_in_flight: (4 * self.servers * self.servers + 2 * self.clients)
                * (self.clients * self.ops)
                    .div_ceil(self.protocol.max_batch.max(1))
                    .clamp(1, 64),
            max_retries: u8::MAX,
            // The schedule's loss rate decides how much is lost.
            max_losses: None,
            // The executor asks for torn steps itself, one crash at a time.
            crash_mid_step: self.mid_step,
            // No depth bound to spare: every interleaving a walk may take.
            fold_lapse: false,
            pipeline: self.pipeline,
            // The service decides the storage actor and the properties; the simulator sets
            // the clients' ops and the session timeout itself (see `sim_model`).
            service: workload.service,
            // With leases, time: a heartbeat interval per tick, unbounded; each run draws the
            // clocks' rates first.
            tick: self.protocol.heartbeat_interval,
            max_time: None,
            clock_rates: None,
            protocol: self.protocol.clone(),
        }
    }

    /// The schedule space of these options.
    pub fn space(&self) -> Space {
        Space {
            max_steps: self.steps,
            servers: self.servers,
            max_loss_pct: self.loss_pct,
            max_crash_pct: if self.crashes > 0 { self.crash_pct } else { 0 },
            max_dup_pct: self.dup_pct,
            partitions: self.partitions,
            settle_steps: self.settle_steps,
            clients_see_all: self.protocol.reads == paxraft_impls::ReadMode::Lease,
        }
    }

    /// The bugs switched on.
    pub fn bugs(&self) -> Vec<Bug> {
        self.protocol.bugs_on()
    }

    /// The `paxraft simulate` flags that rebuild these options (defaults omitted).
    pub fn flags(&self) -> String {
        let d = SimOptions::default();
        let mut f = vec![format!("--seed {}", self.seed)];
        let mut push = |name: &str, v: String, dv: String| {
            if v != dv {
                f.push(format!("--{name} {v}"));
            }
        };
        push("runs", self.runs.to_string(), d.runs.to_string());
        push("steps", self.steps.to_string(), d.steps.to_string());
        push(
            "settle-steps",
            self.settle_steps.to_string(),
            d.settle_steps.to_string(),
        );
        push("servers", self.servers.to_string(), d.servers.to_string());
        push("clients", self.clients.to_string(), d.clients.to_string());
        push("ops", self.ops.to_string(), d.ops.to_string());
        push(
            "pipeline",
            self.pipeline.to_string(),
            d.pipeline.to_string(),
        );
        push("loss", self.loss_pct.to_string(), d.loss_pct.to_string());
        push("dup", self.dup_pct.to_string(), d.dup_pct.to_string());
        push(
            "crash-rate",
            self.crash_pct.to_string(),
            d.crash_pct.to_string(),
        );
        push("crashes", self.crashes.to_string(), d.crashes.to_string());
        if self.voters != 0 && self.voters != self.servers {
            f.push(format!("--voters {}", self.voters));
        }
        if !self.changes.is_empty() {
            let list: Vec<String> = self.changes.iter().map(|c| c.to_string()).collect();
            f.push(format!("--changes {}", list.join(",")));
        }
        if self.protocol.changes != Config::default().changes {
            f.push(format!("--change-mode {}", self.protocol.changes.name()));
        }
        if self.protocol.window != Config::default().window {
            f.push(format!("--window {}", self.protocol.window));
        }
        if self.protocol.max_uncommitted != Config::default().max_uncommitted {
            f.push(format!(
                "--max-uncommitted {}",
                self.protocol.max_uncommitted
            ));
        }
        if self.partitions {
            f.push("--partitions".into());
        }
        if !self.mid_step {
            f.push("--atomic-steps".into());
        }
        if !self.protocol.pre_vote {
            f.push("--no-pre-vote".into());
        }
        if !self.protocol.check_quorum {
            f.push("--no-check-quorum".into());
        }
        if self.protocol.max_batch != Config::default().max_batch {
            f.push(format!("--max-batch {}", self.protocol.max_batch));
        }
        if self.protocol.empty_heartbeats {
            f.push("--empty-heartbeats".into());
        }
        if self.protocol.reads != Config::default().reads {
            f.push(format!("--reads {}", self.protocol.reads));
        }
        if self.protocol.follower_reads {
            f.push("--follower-reads".into());
        }
        if let Some(d) = self.protocol.clock_drift {
            f.push(format!("--clock-drift {d:?}"));
        }
        if let Some(p) = self.protocol.snapshots {
            f.push(format!("--snapshot-every {}", p.every));
            if p.chunk != paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK {
                f.push(format!("--snapshot-chunk {}", p.chunk));
            }
        }
        // Shrinking decides which failure a search ends on: part of the reproduction.
        if self.max_shrink_iters != SimOptions::default().max_shrink_iters {
            f.push(format!("--shrink {}", self.max_shrink_iters));
        }
        for b in self.bugs() {
            f.push(format!("--bug {}", b.name()));
        }
        f.join(" ")
    }
}

/// The simulator's default session timeout under the lock service, in applied commands.
///
/// The model's own ([`paxraft_models::model::service::LOCK_SESSION_TIMEOUT`], 1) is made
/// for the shortest handover a bounded search can reach; with three pipelining clients a
/// session that short expires as soon as its client waits for one answer while the others
/// write, so runs would end after a few ops each. With 16, a client expires when it falls
/// silent for longer than its peers' pipelines take to commit several rounds: a lost
/// request waiting for its retry timer, a partition, a crashed server it was talking to.
/// Measured on `--ops 30 --steps 1000 --partitions`, 100 Raft runs: some client expires in
/// 96 of them and 65% of the ops are issued (8: 100 runs, 53%; 24: 83 runs, 77%), with
/// about 40 grants after an expiry per 100 runs.
pub const LOCK_SESSION_TIMEOUT: u64 = 16;

/// Which service a simulation replicates, with its workload's knobs: what
/// [`SimOptions`] does not say. A separate struct only because `SimOptions` is built field
/// by field elsewhere (the bug zoo's registry); see [`super::hunt_service`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The key-value store (default) or the lock service with its fenced storage.
    pub service: Service,
    /// Lock service: sessions expire after this many applied commands without a request of
    /// their client (ignored by the key-value store, whose sessions never expire).
    pub session_timeout: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            service: Service::Kv,
            session_timeout: LOCK_SESSION_TIMEOUT,
        }
    }
}

impl Workload {
    /// The lock workload with the default session timeout.
    pub fn lock() -> Self {
        Workload {
            service: Service::Lock,
            ..Workload::default()
        }
    }

    /// Reject a workload that cannot be simulated, with a one-line reason.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.service == Service::Lock && self.session_timeout == 0 {
            return Err(OptionsError::SessionTimeoutZero);
        }
        Ok(())
    }

    /// The session timeout the servers use (0: sessions never expire).
    pub fn server_session_timeout(&self) -> u64 {
        match self.service {
            Service::Kv => 0,
            Service::Lock => self.session_timeout,
        }
    }

    /// The `paxraft simulate` flags that select it (empty for the default).
    pub fn flags(&self) -> String {
        let mut f = Vec::new();
        if self.service != Service::Kv {
            f.push(format!("--service {}", self.service.name()));
            if self.session_timeout != LOCK_SESSION_TIMEOUT {
                f.push(format!("--session-timeout {}", self.session_timeout));
            }
        }
        f.join(" ")
    }
}
