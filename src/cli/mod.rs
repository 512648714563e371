//! The `paxraft` command line. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod net;
pub mod overview;
mod print;
pub mod report;
pub mod run;
pub mod simulate;
pub mod tour;
pub mod zoo;

/// Model-check, fault-test and benchmark consensus protocols that share one sans-IO trait.
#[derive(Debug, Parser)]
#[command(name = "paxraft", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands. With none, `paxraft` runs the default tour.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe the protocols, their invariants and the bug zoo.
    Overview,
    /// Run a live in-process cluster under client load; print throughput and latency.
    Run(run::RunArgs),
    /// Rebuild the HTML report from saved results, rerunning nothing.
    Report(report::ReportArgs),
    /// Model-check a protocol exhaustively within bounds (stateright).
    Check(check::CheckArgs),
    /// Browse a protocol's state space in stateright's Explorer (loopback only).
    Explore(check::ExploreArgs),
    /// Run the bug zoo: every known bug switched on must be caught, and off must pass.
    Zoo(zoo::ZooArgs),
    /// Run deep random fault schedules (proptest) on the cluster model; shrink a failure.
    Simulate(simulate::SimulateArgs),
    /// Replay a failing schedule saved by `simulate`, exactly.
    Replay(simulate::ReplayArgs),
    /// Run one node of a cluster as a server process, over TCP, with its data in a directory.
    Serve(net::ServeArgs),
    /// Send one key-value request to a cluster of server processes.
    Kv(net::KvArgs),
    /// Start a cluster of server processes on loopback (and, with --bench, load it).
    Cluster(net::ClusterArgs),
}

/// Exit code for bad input (flags, configs, cluster sizes).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Report bad input: `error: MSG` on one line of stderr, and exit code 2.
pub(crate) fn bad(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// clap's error on one line: its message and any possible values or tip, without the usage
/// block and the pointer to `--help` (bad input is always one line, see [`bad`]).
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    // Tips and possible values come before the usage block; the pointer to --help after it.
    let msg = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    msg.strip_prefix("error: ").unwrap_or(&msg).to_string()
}

/// Parse the arguments and run. Bad flags exit 2 with clap's error on one line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => return bad(one_line(&e)),
        Err(e) => {
            // --help and --version: clap's text, as it is.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // The commands that only print end quietly when their reader goes away (`replay | head`)
    // as Unix tools do, instead of panicking on a broken pipe. The network commands keep
    // Rust's ignored SIGPIPE: a peer or client closing its socket is an error to handle there.
    if !matches!(
        cli.command,
        Some(Command::Serve(_) | Command::Kv(_) | Command::Cluster(_))
    ) {
        // SAFETY: at the start of main, before any thread is spawned; restores the default
        // disposition of one signal.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        None => tour::run(),
        Some(Command::Overview) => overview::run(),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Explore(args)) => check::explore(&args),
        Some(Command::Zoo(args)) => zoo::run(&args),
        Some(Command::Simulate(args)) => simulate::run(&args),
        Some(Command::Replay(args)) => simulate::replay_file(&args),
        Some(Command::Serve(args)) => net::serve(&args),
        Some(Command::Kv(args)) => net::kv(&args),
        Some(Command::Cluster(args)) => net::cluster(&args),
    }
}

/// How a cluster serves reads: shared by the commands that build a protocol configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// How reads are served: `log` (a read is a command: a log write and a replication
    /// round), `read-index` (the leader confirms it still leads with one round to a
    /// majority, then answers from its state machine; no log write) or `lease` (a leader
    /// whose lease holds answers alone, with no round; in `run` the clients answer from the
    /// leader's state machine on their own threads while the replica allows it; needs
    /// --clock-drift).
    #[arg(long, default_value = "log", value_parser = parse_reads)]
    pub reads: paxraft_impls::ReadMode,
    /// With `--reads read-index` or `lease`: followers serve reads too, asking the leader
    /// for a read index and waiting until they have applied it.
    #[arg(long)]
    pub follower_reads: bool,
    /// With `--reads lease`: how far a clock may gain or lose over one (shortest) election
    /// timeout, e.g. a tenth of it: `2ms` for `run` (20 ms), `30ms` for `check` (150 ms). The
    /// lease is shortened to stay safe under it; the model and the simulator run clocks that
    /// drift by exactly this much.
    #[arg(long, value_parser = parse_duration)]
    pub clock_drift: Option<std::time::Duration>,
}

impl ReadArgs {
    /// Set the read path of `cfg` (checked later by the configuration's own validation).
    pub fn apply(&self, cfg: &mut paxraft_impls::Config) {
        cfg.reads = self.reads;
        cfg.follower_reads = self.follower_reads;
        cfg.clock_drift = self.clock_drift;
    }
}

/// Back-pressure at the leader: shared by the commands that build a protocol configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct FlowArgs {
    /// The most commands a leader holds uncommitted (at least 1); a proposal past it is
    /// refused busy, and its client told so. Default: 65536, which no benchmark load reaches
    /// while commits flow.
    #[arg(long, default_value_t = paxraft_impls::Config::DEFAULT_MAX_UNCOMMITTED)]
    pub max_uncommitted: usize,
}

impl FlowArgs {
    /// Set the cap of `cfg` (checked later by the configuration's own validation).
    pub fn apply(&self, cfg: &mut paxraft_impls::Config) {
        cfg.max_uncommitted = self.max_uncommitted;
    }
}

/// When hosts snapshot and replicas compact their logs: shared by the commands that build a
/// protocol configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotArgs {
    /// Snapshot the state machine (client sessions included) and compact the log once this
    /// many slots were committed since the last snapshot (at least 1), or `off`. Default:
    /// off for check and simulate, 10000 for run and serve.
    #[arg(long, value_name = "SLOTS|off", value_parser = parse_snapshot_every)]
    pub snapshot_every: Option<SnapshotEvery>,
    /// With --snapshot-every: most snapshot bytes in one message (a larger snapshot travels
    /// in chunks, each acknowledged). At least 1. Default: 64 KiB.
    #[arg(long, default_value_t = paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK)]
    pub snapshot_chunk: usize,
}

/// What a snapshot policy does, as the command lines say it (`run`'s result line, `serve`'s
/// and `cluster`'s first lines).
pub(crate) fn snapshot_schedule(p: Option<paxraft_impls::SnapshotPolicy>) -> String {
    p.map_or("no snapshots".to_string(), |p| {
        format!("snapshots every {} slots", p.every)
    })
}

/// `--snapshot-every`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotEvery {
    /// `off`: never snapshot.
    Off,
    /// Snapshot every this many committed slots (0 is refused by the configuration's
    /// validation, with the reason).
    Slots(u64),
}

fn parse_snapshot_every(s: &str) -> Result<SnapshotEvery, String> {
    if s == "off" {
        return Ok(SnapshotEvery::Off);
    }
    s.parse()
        .map(SnapshotEvery::Slots)
        .map_err(|_| "expected a number of slots or off".to_string())
}

impl SnapshotArgs {
    /// Set the snapshot policy of `cfg` (checked later by the configuration's own
    /// validation): what `--snapshot-every` says, or `default` slots without it.
    pub fn apply(&self, cfg: &mut paxraft_impls::Config, default: Option<u64>) {
        let every = match self.snapshot_every {
            Some(SnapshotEvery::Off) => None,
            Some(SnapshotEvery::Slots(n)) => Some(n),
            None => default,
        };
        cfg.snapshots = every.map(|every| paxraft_impls::SnapshotPolicy {
            every,
            chunk: self.snapshot_chunk,
        });
    }
}

/// Membership changes in checks and simulations: `--voters`, `--changes`, `--change-mode`.
#[derive(Debug, clap::Args)]
pub struct MembershipArgs {
    /// Servers that vote at boot (the first N); the others are spares that --changes may
    /// add. Default: all.
    #[arg(long)]
    pub voters: Option<usize>,
    /// Membership changes an operator may ask of any leader at any step, comma-separated:
    /// add:N (a voter), learner:N, remove:N, transfer:N.
    #[arg(long, value_parser = parse_changes)]
    pub changes: Option<Changes>,
    /// How voters change: single (one at a time, diss. §4.1) or joint (Raft §6).
    #[arg(long, default_value = "single", value_parser = parse_change_mode)]
    pub change_mode: paxraft_impls::ChangeMode,
    /// Multi-Paxos: α, the slots between a configuration's own and the first it decides
    /// (at least 1). It also bounds a leader's pipeline: it proposes no further than α slots
    /// past its commit point. Default: `check` 2 (1 with `--changes` on multi-Paxos, so that
    /// a change takes effect within the default depth), `simulate` the protocol's 8.
    #[arg(long)]
    pub window: Option<u64>,
}

/// A parsed `--changes` list.
#[derive(Clone, Debug)]
pub struct Changes(pub Vec<paxraft_impls::Change>);

impl MembershipArgs {
    /// The initial voters (0: all) and the operator's changes.
    pub fn parts(&self) -> (usize, Vec<paxraft_impls::Change>) {
        (
            self.voters.unwrap_or(0),
            self.changes.clone().map_or_else(Vec::new, |c| c.0),
        )
    }

    /// Set how voters change in `cfg`.
    pub fn apply(&self, cfg: &mut paxraft_impls::Config) {
        cfg.changes = self.change_mode;
        if let Some(w) = self.window {
            cfg.window = w;
        }
    }
}

/// `--changes`, for clap.
fn parse_changes(s: &str) -> Result<Changes, String> {
    s.split(',')
        .map(|c| paxraft_impls::Change::parse(c.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map(Changes)
}

/// `--change-mode`, for clap.
fn parse_change_mode(s: &str) -> Result<paxraft_impls::ChangeMode, String> {
    paxraft_impls::ChangeMode::parse(s).ok_or_else(|| "expected single or joint".to_string())
}

/// `--reads`, for clap.
fn parse_reads(s: &str) -> Result<paxraft_impls::ReadMode, String> {
    paxraft_impls::ReadMode::parse(s).ok_or_else(|| "expected log, read-index or lease".to_string())
}

/// A duration flag, for clap: a whole number and a unit (`ns`, `us`, `ms`, `s`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    paxraft_impls::lease::parse_duration(s)
        .ok_or_else(|| "expected a whole number and a unit, e.g. 30ms, 250us, 2s".to_string())
}
