//! What bounds and shapes one model: the network kind, the fault budgets, the workload.

use std::time::Duration;

use paxraft_impls::lease::ClockRate;
use paxraft_impls::sm::{KvOp, LockOp};
use paxraft_impls::{Config, ReadMode};

use super::service::{Service, LOCK};

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

/// Most clients a model may have.
const MAX_CLIENTS: usize = 8;
/// Most ops a client may issue.
const MAX_OPS: usize = 8;
/// Most membership changes the model's operator asks for.
pub const MAX_CHANGES: usize = 4;

/// Why a [`ModelConfig`] cannot be checked. The messages name the CLI flags: `paxraft`
/// prints them as they are.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Too few or too many servers.
    #[error("--servers must be 1 to {max}, got {0}", max = paxraft_impls::MAX_NODES)]
    Servers(usize),
    /// Too many clients.
    #[error("--clients must be at most {MAX_CLIENTS}, got {0}")]
    Clients(usize),
    /// Too many ops per client.
    #[error("--ops must be at most {MAX_OPS}, got {0}")]
    Ops(usize),
    /// A loss budget on a network that loses nothing.
    #[error("--max-losses needs --lossy")]
    LossesWithoutLoss,
    /// A loss budget on a network where losses cannot be counted.
    #[error("--max-losses cannot count losses on a duplicating network (deliveries do not consume messages there)")]
    LossesOnDuplicating,
    /// No term to elect a leader in.
    #[error("--max-term must be at least 1 (no leader can exist in term 0)")]
    TermZero,
    /// Pipelined clients, which only the simulator models.
    #[error("the exhaustive checker's clients keep one request outstanding (pipeline 1, got {0}); pipelined clients are simulated (`paxraft simulate --pipeline`)")]
    Pipeline(usize),
    /// A tick that lets no time pass.
    #[error("--tick must be above zero")]
    TickZero,
    /// Clock rates for another number of servers.
    #[error("--clock-rates names {got} rates for {servers} servers")]
    ClockRates {
        /// Rates given.
        got: usize,
        /// Servers.
        servers: usize,
    },
    /// Initial voters outside 1..=servers.
    #[error("--voters must be 1 to --servers ({servers}), got {voters}")]
    Voters {
        /// Voters asked for.
        voters: usize,
        /// Servers.
        servers: usize,
    },
    /// A membership change naming a node outside the model.
    #[error("--changes names {node}, but the model has servers n0 to n{last}")]
    ChangeNode {
        /// The node named.
        node: paxraft_impls::NodeId,
        /// The highest server id.
        last: usize,
    },
    /// Too many membership changes for the operator's timers.
    #[error("--changes takes at most {MAX_CHANGES} changes, got {0}")]
    Changes(usize),
    /// Symmetry reduction with membership changes: the changes name servers, so renaming them
    /// does not give an equivalent run.
    #[error("--symmetry does not support --voters or --changes (changes name servers: renaming them gives another run)")]
    SymmetryWithChanges,
    /// Symmetry reduction with time: the clocks would have to be renamed with the servers.
    #[error(
        "--symmetry does not support reads=lease (the servers' clocks are not renamed with them)"
    )]
    SymmetryWithTime,
    /// The protocol configuration is invalid for this many servers.
    #[error(transparent)]
    Protocol(#[from] paxraft_impls::ConfigError),
}

/// For callers that still report errors as one-line strings.
impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

/// Multi-Paxos's α in the model ([`Config::window`]): 2, so that a leader still pipelines
/// (proposes a slot before the previous one is chosen: holes and their recovery are
/// reachable), while a change takes effect after a single padded slot. Measured with 2
/// clients x 2 ops: the default check sees 2,939,187 states at α = 2 and 2,939,175 at the
/// protocol's default 8 (the window almost never binds), and α = 1 would forbid pipelining.
pub const MODEL_WINDOW: u64 = 2;

/// Everything that bounds and shapes one model. The defaults are the bounded exhaustive
/// check `paxraft check` runs: 3 servers, 2 clients with two ops each (a write, then a read
/// that starts only after the write was answered), unordered network, the protocols'
/// shipped configuration (PreVote and CheckQuorum on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// Replicas, 1 to [`paxraft_impls::MAX_NODES`].
    pub servers: usize,
    /// The configuration the cluster boots with: servers `0..voters` vote, the others are
    /// spares that a membership change may add. `0`: every server votes.
    pub voters: usize,
    /// The membership changes an operator may ask for: at any moment, of any server that
    /// leads, each change at most once per server incarnation (a server it refuses may be
    /// asked again after a restart; a change asked of two leaders is two requests). The
    /// order of the list does not matter. Empty: the configuration never changes.
    pub changes: Vec<paxraft_impls::Change>,
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
    /// Requests a client keeps outstanding at once, 1 to [`MAX_PIPELINE`](super::MAX_PIPELINE). With more than one,
    /// a client sends its next ops before the earlier ones are answered and acknowledges
    /// only the answers below its lowest unanswered op, as the runtime's pipelined clients
    /// do. Only the fault-schedule simulator pipelines (it rebuilds the history from the
    /// path); the exhaustive checker's linearizability tester follows one op per client.
    pub pipeline: usize,
    /// The replicated service and its workload: the key-value store, or the lock service
    /// with expiring sessions and the fenced storage (see [`super::service`]).
    pub service: Service,
    /// With leases (`protocol.reads == lease`) the model keeps time: the real time one
    /// `tick` action lets pass, every server's clock advancing at its rate (slow or fast by
    /// `protocol.clock_drift`, or exact), and a replica timer may fire only once its server's
    /// clock has reached the timer's deadline. Without leases there is no time: any armed
    /// timer may fire at any moment.
    pub tick: Duration,
    /// With leases: the most real time a run may last. A state at it is still expanded, but
    /// with no further tick (counted as cut by the time bound). `None`: no bound (the
    /// simulator's walks).
    pub max_time: Option<Duration>,
    /// With leases: each server's clock rate, fixed for the whole run. `None`: a run starts
    /// by choosing them, server by server, before anything else happens (the exhaustive
    /// checker explores every assignment; a simulated walk draws one). Rates are constant
    /// within a run: a clock at a constant extreme is the adversary a lease must survive.
    /// Fixing them is a bound: the summary shows it.
    pub clock_rates: Option<Vec<ClockRate>>,
    /// Without time, take a replica timer's firing that only re-arms that timer to fire at
    /// once (a follower's CheckQuorum lease ending at the minimum election timeout, before
    /// the rest of its randomized timeout: diss. §4.2.3) together with that next firing (its
    /// bid), as one action. This leaves out the interleavings in which something happens
    /// between the two — the follower granting another's vote before it bids itself — and
    /// saves an action on every path to a new term, which the depth bound would otherwise
    /// charge. With time (leases) nothing is folded: the timed model explores the lease's end
    /// on its own. The summary says so when it folds; `--unfold-lapse` turns it off, and the
    /// fault-schedule simulator never folds.
    pub fold_lapse: bool,
    /// The protocol configuration (bug-zoo switches included).
    pub protocol: Config,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            servers: 3,
            voters: 0,
            changes: Vec::new(),
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
            fold_lapse: true,
            pipeline: 1,
            service: Service::Kv,
            tick: Duration::from_millis(50),
            max_time: Some(Duration::from_millis(500)),
            clock_rates: None,
            // What ships: PreVote and CheckQuorum on. `--no-pre-vote` / `--no-check-quorum`
            // give the cheaper variant (one round fewer per election). Multi-Paxos's window
            // is the model's (see MODEL_WINDOW).
            protocol: Config {
                window: MODEL_WINDOW,
                ..Config::default()
            },
        }
    }
}

impl ModelConfig {
    /// The lock service's default check (`paxraft check --service lock`): one server, two
    /// clients with two ops each (see [`ModelConfig::op`]). One server because the scenario
    /// is deep: three commands committed and answered in order, then two writes delivered;
    /// on three servers every commit costs a replication round, which puts the scenario
    /// past what BFS explores in two minutes (at depth 14: 7.5M states, 17.6 GB, and the
    /// handover not yet reached). The protocols' replication is what the
    /// key-value checks cover; this one checks sessions, expiry, the lock rules and fencing
    /// through the same hosts. `--servers 3` with a larger `--depth` checks more.
    pub fn lock() -> Self {
        ModelConfig {
            servers: 1,
            service: Service::Lock,
            ..ModelConfig::default()
        }
    }

    /// The exhaustive check with leases (`paxraft check --reads lease`): time makes every
    /// state a state at some moment, so the defaults shrink to what two minutes on two cores
    /// explore to the usual milestones: one client (a write, then a read), a tick of one
    /// shortest election timeout (150 ms: a timer drawn from it is due after one tick at an
    /// exact or fast clock), time bounded at two ticks, and the clocks' rates fixed to the
    /// lease's adversary: the first server slow, the others fast (`--clock-rates any`
    /// explores every assignment). `clock_drift` is the protocol's, which leases require.
    pub fn lease(servers: usize) -> Self {
        let mut rates = vec![ClockRate::Fast; servers];
        if let Some(first) = rates.first_mut() {
            *first = ClockRate::Slow;
        }
        let d = ModelConfig::default();
        ModelConfig {
            servers,
            clients: 1,
            tick: Duration::from_millis(150),
            max_time: Some(Duration::from_millis(300)),
            clock_rates: Some(rates),
            protocol: Config {
                reads: ReadMode::Lease,
                ..d.protocol.clone()
            },
            ..d
        }
    }

    /// Reject configurations that cannot be checked, with a one-line reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.servers == 0 || self.servers > paxraft_impls::MAX_NODES {
            return Err(ConfigError::Servers(self.servers));
        }
        if self.voters > self.servers {
            return Err(ConfigError::Voters {
                voters: self.voters,
                servers: self.servers,
            });
        }
        if self.changes.len() > MAX_CHANGES {
            return Err(ConfigError::Changes(self.changes.len()));
        }
        if let Some(c) = self
            .changes
            .iter()
            .find(|c| c.node().index() >= self.servers)
        {
            return Err(ConfigError::ChangeNode {
                node: c.node(),
                last: self.servers - 1,
            });
        }
        if self.clients > MAX_CLIENTS {
            return Err(ConfigError::Clients(self.clients));
        }
        if self.ops > MAX_OPS {
            return Err(ConfigError::Ops(self.ops));
        }
        if self.max_losses.is_some() && !self.lossy {
            return Err(ConfigError::LossesWithoutLoss);
        }
        if self.max_losses.is_some() && self.network == NetworkKind::Duplicating {
            return Err(ConfigError::LossesOnDuplicating);
        }
        if self.max_term == 0 {
            return Err(ConfigError::TermZero);
        }
        if self.pipeline != 1 {
            return Err(ConfigError::Pipeline(self.pipeline));
        }
        if self.timed() && self.tick.is_zero() {
            return Err(ConfigError::TickZero);
        }
        if let Some(r) = self
            .clock_rates
            .as_ref()
            .filter(|r| r.len() != self.servers)
        {
            return Err(ConfigError::ClockRates {
                got: r.len(),
                servers: self.servers,
            });
        }
        self.protocol
            .validate(self.servers)
            .map_err(ConfigError::Protocol)
    }

    /// The servers the cluster boots with as voters ([`ModelConfig::voters`]).
    pub fn initial_voters(&self) -> Vec<paxraft_impls::NodeId> {
        let v = if self.voters == 0 {
            self.servers
        } else {
            self.voters
        };
        (0..v as u8).map(paxraft_impls::NodeId).collect()
    }

    /// Whether the membership can differ from "every server votes" (spares or changes).
    pub fn reconfigures(&self) -> bool {
        (self.voters != 0 && self.voters != self.servers) || !self.changes.is_empty()
    }

    /// Whether the model keeps time (leases need it; see [`ModelConfig::tick`]).
    pub fn timed(&self) -> bool {
        self.protocol.reads == ReadMode::Lease
    }

    /// Whether a lease's end and the bid after it are one action: asked for
    /// ([`ModelConfig::fold_lapse`]) and without time.
    pub fn folds_lapse(&self) -> bool {
        self.fold_lapse && !self.timed()
    }

    /// The flags that rebuild this configuration on the command line (defaults omitted).
    pub fn flags(&self) -> String {
        let d = ModelConfig::default();
        let mut f = Vec::new();
        if self.servers != d.servers {
            f.push(format!("--servers {}", self.servers));
        }
        if self.voters != 0 && self.voters != self.servers {
            f.push(format!("--voters {}", self.voters));
        }
        if !self.changes.is_empty() {
            let list: Vec<String> = self.changes.iter().map(|c| c.to_string()).collect();
            f.push(format!("--changes {}", list.join(",")));
        }
        if self.protocol.changes != d.protocol.changes {
            f.push(format!("--change-mode {}", self.protocol.changes.name()));
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
        if !self.fold_lapse && !self.timed() {
            f.push("--unfold-lapse".into());
        }
        if self.service != d.service {
            f.push(format!("--service {}", self.service.name()));
        }
        if self.protocol.empty_heartbeats {
            f.push("--empty-heartbeats".into());
        }
        if self.protocol.max_batch != d.protocol.max_batch {
            f.push(format!("--max-batch {}", self.protocol.max_batch));
        }
        if self.protocol.max_inflight != d.protocol.max_inflight {
            f.push(format!("--max-inflight {}", self.protocol.max_inflight));
        }
        if self.protocol.window != d.protocol.window {
            f.push(format!("--window {}", self.protocol.window));
        }
        if self.protocol.max_uncommitted != d.protocol.max_uncommitted {
            f.push(format!(
                "--max-uncommitted {}",
                self.protocol.max_uncommitted
            ));
        }
        if self.protocol.reads != d.protocol.reads {
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
        if self.timed() {
            // Time's flags are spelled out against the lease preset (`ModelConfig::lease`).
            let d = ModelConfig::lease(self.servers);
            if self.tick != d.tick {
                f.push(format!("--tick {:?}", self.tick));
            }
            if self.clock_rates != d.clock_rates {
                f.push(match &self.clock_rates {
                    Some(rates) => {
                        let names: Vec<&str> = rates.iter().map(|r| r.name()).collect();
                        format!("--clock-rates {}", names.join(","))
                    }
                    None => "--clock-rates any".into(),
                });
            }
            if self.max_time != d.max_time {
                f.push(match self.max_time {
                    Some(t) => format!("--max-time {t:?}"),
                    None => "--max-time none".into(),
                });
            }
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
    ///
    /// The lock workload ([`Service::Lock`]; owners are the clients' actor ids): even
    /// clients acquire lock 0, then send keep-alives; odd clients first try to release it
    /// (refused unless they hold it: the owner rule), then acquire, alternately. Between
    /// them, an even client's silent session expires and its lock passes on.
    pub fn op(&self, c: usize, k: usize) -> KvOp {
        match self.service {
            Service::Kv => self.kv_op(c, k),
            Service::Lock => {
                let owner = (self.servers + c) as u64;
                let acquire = LockOp::Acquire { lock: LOCK, owner };
                KvOp::Lock(if c % 2 == 0 {
                    if k == 0 {
                        acquire
                    } else {
                        LockOp::KeepAlive { owner }
                    }
                } else if k % 2 == 0 {
                    LockOp::Release { lock: LOCK, owner }
                } else {
                    acquire
                })
            }
        }
    }

    /// The key-value workload's op of client `c` at step `k` (see [`ModelConfig::op`]).
    ///
    /// With reads served without the log (`--reads read-index`), odd clients start with a
    /// read, then go on as above: a read that comes only after an answered write needs more
    /// actions than the default depth holds in Raft with PreVote and CheckQuorum (the election,
    /// the leader's no-op, the write, then the read's confirmation round), so the default
    /// check would never serve one. The read-after-write order stays in every client's
    /// later ops and in the checks built for it (`--clients 1`).
    fn kv_op(&self, c: usize, k: usize) -> KvOp {
        if self.protocol.reads != ReadMode::Log && c % 2 == 1 {
            return match k {
                0 => KvOp::Get(0),
                _ => self.kv_op_in_turn(c, k - 1),
            };
        }
        self.kv_op_in_turn(c, k)
    }

    /// A write, then a read, alternately (see [`ModelConfig::op`]).
    fn kv_op_in_turn(&self, c: usize, k: usize) -> KvOp {
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

#[cfg(test)]
mod tests {
    use super::{ConfigError, ModelConfig, NetworkKind};

    /// With reads served without the log, odd clients read first (so the default depth
    /// reaches a read); even clients, and every client under the log read path, write first.
    #[test]
    fn odd_clients_read_first_only_when_reads_skip_the_log() {
        use paxraft_impls::sm::KvOp;
        let log = ModelConfig::default();
        let mut ri = ModelConfig::default();
        ri.protocol.reads = paxraft_impls::ReadMode::ReadIndex;
        assert!(matches!(log.op(1, 0), KvOp::Cas { .. }));
        assert_eq!(ri.op(1, 0), KvOp::Get(0));
        // Then the usual sequence: the CAS of the first step, with its values.
        assert_eq!(ri.op(1, 1), log.op(1, 0));
        assert_eq!(ri.op(1, 2), log.op(1, 1));
        for k in 0..3 {
            assert_eq!(ri.op(0, k), log.op(0, k), "even clients keep their order");
        }
    }

    /// The CLI prints these messages as they are: each names the flag to change.
    #[test]
    fn invalid_configurations_are_named_by_their_flag() {
        let d = ModelConfig::default();
        let cases = [
            (
                ModelConfig { servers: 0, ..d.clone() },
                ConfigError::Servers(0),
                format!("--servers must be 1 to {}, got 0", paxraft_impls::MAX_NODES),
            ),
            (
                ModelConfig { ops: 9, ..d.clone() },
                ConfigError::Ops(9),
                "--ops must be at most 8, got 9".to_string(),
            ),
            (
                ModelConfig {
                    lossy: true,
                    network: NetworkKind::Duplicating,
                    max_losses: Some(1),
                    ..d.clone()
                },
                ConfigError::LossesOnDuplicating,
                "--max-losses cannot count losses on a duplicating network (deliveries do not consume messages there)".to_string(),
            ),
            (
                ModelConfig { pipeline: 2, ..d.clone() },
                ConfigError::Pipeline(2),
                "the exhaustive checker's clients keep one request outstanding (pipeline 1, got 2); pipelined clients are simulated (`paxraft simulate --pipeline`)".to_string(),
            ),
        ];
        for (cfg, error, message) in cases {
            let got = cfg.validate().unwrap_err();
            assert_eq!(got, error);
            assert_eq!(got.to_string(), message);
        }
        assert_eq!(d.validate(), Ok(()));
    }
}
