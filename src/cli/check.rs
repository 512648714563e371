//! `paxraft check` and `paxraft explore`: model-check a protocol with stateright.

use std::process::ExitCode;
use std::time::Duration;

use std::net::SocketAddr;

use clap::Args;
use paxraft_models::model::Service;
use paxraft_models::{ModelConfig, NetworkKind, SearchOptions, Status, Strategy, Summary};

use super::bad;
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::results::{CheckResult, Trace as ReportTrace};

/// What to check and how. Shared by `check` and `explore`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The protocol.
    #[arg(value_enum)]
    pub protocol: Protocol,
    /// Servers (1 to 7). Default: 3 for the key-value store, 1 for the lock service.
    #[arg(long)]
    pub servers: Option<usize>,
    /// Clients. Default: 2; with `--reads lease`, 1.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Operations per client, issued one at a time (each after the previous one was
    /// answered): a write, then a read, alternately (with `--reads read-index`, every second
    /// client starts with a read).
    #[arg(long, default_value_t = ModelConfig::default().ops)]
    pub ops: usize,
    /// Network: unordered, duplicating or ordered.
    #[arg(long, default_value = "unordered", value_parser = parse_network)]
    pub network: NetworkKind,
    /// Messages may be lost.
    #[arg(long)]
    pub lossy: bool,
    /// Server crashes (with recovery from durable state) over a run.
    #[arg(long, default_value_t = 0)]
    pub crashes: usize,
    /// Highest term (Raft) or ballot round (Paxos) explored.
    #[arg(long, default_value_t = ModelConfig::default().max_term)]
    pub max_term: u64,
    /// Most messages between servers in flight at once (after dropping those that can have
    /// no effect); a state beyond it is checked, not expanded.
    #[arg(long, default_value_t = ModelConfig::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Resends per client request after timeouts.
    #[arg(long, default_value_t = ModelConfig::default().max_retries)]
    pub retries: u8,
    /// With --lossy: most messages lost over a run (default: any number).
    #[arg(long)]
    pub max_losses: Option<usize>,
    /// Switch Raft's PreVote off (on by default, as shipped; off is cheaper to check).
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Switch CheckQuorum off (on by default, as shipped; off is cheaper to check).
    #[arg(long)]
    pub no_check_quorum: bool,
    /// With --crashes: crash only between whole steps, never between two effects of one
    /// step (cheaper; misses a send that overtakes the persist it depends on).
    #[arg(long)]
    pub atomic_steps: bool,
    /// Explore what may happen between a follower's lease ending (at the minimum election
    /// timeout) and its own bid, instead of taking the two as one action (the default
    /// without leases: it costs an action on every path to a new term).
    #[arg(long)]
    pub unfold_lapse: bool,
    /// Raft heartbeats carry no entries, only the commit point (the paper's §5.2 form).
    #[arg(long)]
    pub empty_heartbeats: bool,
    /// Most log slots in one message (appends, accepts, a multi-Paxos promise's chunks). At
    /// least 1; small values let a model this size send a log in pieces. Default: 4096.
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Raft: most appends in flight to one replicating follower (etcd's MaxInflightMsgs). At
    /// least 1; at the default (64) the window never binds in a model this size, whose
    /// `--max-in-flight` bounds every message in the network far below it.
    #[arg(long)]
    pub max_inflight: Option<usize>,
    #[command(flatten)]
    pub reads: super::ReadArgs,
    #[command(flatten)]
    pub snapshots: super::SnapshotArgs,
    #[command(flatten)]
    pub flow: super::FlowArgs,
    #[command(flatten)]
    pub membership: super::MembershipArgs,
    /// With `--reads lease` the model keeps time: the real time one tick lets pass (each
    /// server's clock advancing at its rate). Default: 150ms.
    #[arg(long, value_parser = super::parse_duration)]
    pub tick: Option<Duration>,
    /// With `--reads lease`: the most real time a run may last (`none`: no bound). A state
    /// at it is explored without further ticks, and counted in the summary. Default: 300ms.
    #[arg(long, value_parser = parse_max_time)]
    pub max_time: Option<MaxTime>,
    /// With `--reads lease`: each server's clock rate for the whole run, e.g.
    /// `slow,fast,fast` (slow or fast by --clock-drift, or exact), or `any` (every
    /// assignment, chosen before anything happens: up to 3^servers times the states).
    /// Default: the first server slow, the others fast.
    #[arg(long, value_parser = parse_clock_rates)]
    pub clock_rates: Option<ClockRates>,
    /// The replicated service: `kv` (puts, gets, compare-and-swaps) or `lock` (the lock
    /// service with sessions that expire by log time, its fencing tokens checked by a
    /// storage actor: a holder pauses past its session, the lock passes on, its late
    /// write must be refused).
    #[arg(long, default_value = "kv", value_parser = parse_service)]
    pub service: Service,
}

/// `--clock-rates`: a rate per server, or `any`.
#[derive(Clone, Debug)]
pub struct ClockRates(pub Option<Vec<paxraft_impls::lease::ClockRate>>);

fn parse_clock_rates(s: &str) -> Result<ClockRates, String> {
    if s == "any" {
        return Ok(ClockRates(None));
    }
    s.split(',')
        .map(|r| {
            paxraft_impls::lease::ClockRate::parse(r).ok_or_else(|| {
                format!("{r:?}: expected slow, exact or fast (comma-separated), or any")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| ClockRates(Some(v)))
}

/// `--max-time`: a duration, or `none`.
#[derive(Copy, Clone, Debug)]
pub struct MaxTime(pub Option<Duration>);

fn parse_max_time(s: &str) -> Result<MaxTime, String> {
    if s == "none" {
        return Ok(MaxTime(None));
    }
    super::parse_duration(s).map(|d| MaxTime(Some(d)))
}

/// `paxraft check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Most actions on an explored path (0: no depth bound, only the model's other bounds).
    /// Default: 13 for raft, 11 for multipaxos (what fits in two minutes on two cores);
    /// with `--reads lease`, 19 and 17 (see --tick); with `--follower-reads`, 14 for raft;
    /// with `--service lock`, none (its one-server space is explored whole).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Search strategy: bfs or dfs.
    #[arg(long, default_value = "bfs", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// Collapse states that differ only by renaming servers (DFS only).
    #[arg(long)]
    pub symmetry: bool,
    /// Checker threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub bug: super::zoo::BugArg,
    /// Report directory: the summary (with any counterexample) is saved into its
    /// data/checks.json for `paxraft report`.
    #[arg(long, default_value = crate::report::DEFAULT_DIR)]
    pub report_dir: std::path::PathBuf,
    /// Do not save the summary for the report.
    #[arg(long)]
    pub no_save: bool,
}

/// `paxraft explore` flags.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to serve the Explorer (loopback only).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
}

/// `--network`, for clap.
pub(crate) fn parse_network(s: &str) -> Result<NetworkKind, String> {
    NetworkKind::parse(s).ok_or_else(|| "expected unordered, duplicating or ordered".to_string())
}

/// `--service`, for clap.
pub(crate) fn parse_service(s: &str) -> Result<Service, String> {
    Service::parse(s).ok_or_else(|| "expected kv or lock".to_string())
}

/// `--strategy`, for clap.
fn parse_strategy(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s).ok_or_else(|| "expected bfs or dfs".to_string())
}

impl ModelArgs {
    fn config(&self) -> Result<ModelConfig, String> {
        let lease = self.reads.reads == paxraft_impls::ReadMode::Lease;
        let base = match self.service {
            Service::Kv if lease => ModelConfig::lease(self.servers.unwrap_or(3)),
            Service::Kv => ModelConfig::default(),
            Service::Lock => ModelConfig::lock(),
        };
        let cfg = ModelConfig {
            servers: self.servers.unwrap_or(base.servers),
            clients: self.clients.unwrap_or(base.clients),
            ops: self.ops,
            network: self.network,
            lossy: self.lossy,
            max_crashes: self.crashes,
            max_term: self.max_term,
            max_in_flight: self.max_in_flight,
            max_retries: self.retries,
            max_losses: self.max_losses,
            tick: self.tick.unwrap_or(base.tick),
            max_time: self.max_time.map_or(base.max_time, |m| m.0),
            clock_rates: self
                .clock_rates
                .clone()
                .map_or(base.clock_rates.clone(), |r| r.0),
            ..base
        };
        let mut cfg = cfg;
        cfg.protocol.pre_vote = !self.no_pre_vote;
        cfg.protocol.check_quorum = !self.no_check_quorum;
        cfg.crash_mid_step = !self.atomic_steps;
        cfg.fold_lapse = !self.unfold_lapse;
        cfg.protocol.empty_heartbeats = self.empty_heartbeats;
        if let Some(b) = self.max_batch {
            cfg.protocol.max_batch = b;
        }
        if let Some(w) = self.max_inflight {
            cfg.protocol.max_inflight = w;
        }
        self.reads.apply(&mut cfg.protocol);
        self.snapshots.apply(&mut cfg.protocol, None);
        self.flow.apply(&mut cfg.protocol);
        self.membership.apply(&mut cfg.protocol);
        (cfg.voters, cfg.changes) = self.membership.parts();
        // Multi-Paxos with changes: α = 1 unless --window says otherwise, so that a change
        // takes effect at the next slot. At α = 2 its padded slot sends one more round of
        // accepts to every member: past --max-in-flight 5 at the default depth ("a
        // membership change is committed" not reached at depth 12 with 4 servers, add:3, one
        // client: 7.1M states, 165 s, 18 GB). The configuration line shows `--window 1`.
        if self.protocol == Protocol::MultiPaxos
            && !cfg.changes.is_empty()
            && self.membership.window.is_none()
        {
            cfg.protocol.window = 1;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl CheckArgs {
    fn search(&self, cfg: &ModelConfig) -> Result<SearchOptions, String> {
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let search = SearchOptions {
            strategy: self.strategy,
            symmetry: self.symmetry,
            threads,
            depth: match self.depth {
                None => paxraft_models::check::default_depth_for(self.model.protocol.name(), cfg),
                Some(0) => None,
                Some(d) => Some(d),
            },
            ..SearchOptions::default()
        };
        search.validate()?;
        if search.symmetry && self.model.reads.reads == paxraft_impls::ReadMode::Lease {
            return Err(paxraft_models::model::ConfigError::SymmetryWithTime.to_string());
        }
        let m = &self.model.membership;
        if search.symmetry && (m.voters.is_some() || m.changes.is_some()) {
            return Err(paxraft_models::model::ConfigError::SymmetryWithChanges.to_string());
        }
        Ok(search)
    }
}

/// Peak resident memory of this process in bytes (Linux; `None` elsewhere).
pub fn peak_memory() -> Option<u64> {
    paxraft_models::memory::peak_resident()
}

/// `paxraft check` of one protocol, with a progress spinner unless `json`.
struct RunCheck<'a>(&'a ModelConfig, &'a SearchOptions, bool);

impl ProtocolVisitor for RunCheck<'_> {
    type Output = Summary;
    fn visit<R: Hosted>(self) -> Summary {
        let RunCheck(cfg, search, json) = self;
        let bar = indicatif::ProgressBar::new_spinner();
        if json {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let summary = paxraft_models::check::<R>(cfg, search, Duration::from_millis(200), |p| {
            let secs = p.elapsed.as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} states, {} unique, depth {}, {:.0} unique states/s",
                p.total_states,
                p.unique_states,
                p.max_depth,
                p.unique_states as f64 / secs
            ));
            bar.tick();
        });
        bar.finish_and_clear();
        summary
    }
}

fn human_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The summary as one JSON object.
pub fn summary_json(s: &Summary, peak: Option<u64>) -> serde_json::Value {
    let props: Vec<serde_json::Value> = s
        .properties
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "kind": p.kind.name(),
                "status": p.status.name(),
                "trace": p.trace.as_ref().filter(|_| p.status == Status::Violated).map(|t| t.chart()),
                "steps": p.trace.as_ref().filter(|_| p.status == Status::Violated).map(|t| serde_json::to_value(ReportTrace::from_model(t)).ok()),
            })
        })
        .collect();
    serde_json::json!({
        "protocol": s.protocol,
        "command": s.command(),
        "passed": s.passed(),
        "unique_states": s.unique_states,
        "total_states": s.total_states,
        "checked_states": s.cuts.checked,
        "max_depth": s.max_depth,
        "depth_bound": s.search.depth,
        "cut_by_depth": s.cuts.depth,
        "cut_by_term": s.cuts.term,
        "cut_by_in_flight": s.cuts.in_flight,
        "under_approximation": s.under_approximation(),
        "threads": s.search.threads,
        "depth_exact": s.depth_inexact().is_none(),
        "lapse_folded": s.folds_lapse(),
        "seconds": s.seconds,
        "states_per_sec": s.states_per_sec(),
        "peak_memory_bytes": peak,
        "bytes_per_state": s.bytes_per_state,
        "properties": props,
    })
}

/// One saved check: the report's [`CheckResult`] plus, when a property failed, its
/// counterexample and the command that reproduces it. The extra fields sit beside the
/// report's own (serde flatten), so `Results::load` reads this file unchanged.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedCheck {
    /// What the report's model-checking table shows.
    #[serde(flatten)]
    pub result: CheckResult,
    /// The first failing property's counterexample, as a sequence diagram's steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<ReportTrace>,
    /// The property the trace is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_property: Option<String>,
    /// The `paxraft check` command that reproduces this run.
    #[serde(default)]
    pub command: String,
}

/// The summary in the report's shape.
pub fn saved_check(s: &Summary) -> SavedCheck {
    let failing = s
        .properties
        .iter()
        .find(|p| p.status == Status::Violated && p.trace.is_some());
    SavedCheck {
        result: CheckResult::from_summary(s),
        trace: failing
            .and_then(|p| p.trace.as_ref())
            .map(ReportTrace::from_model),
        trace_property: failing.map(|p| p.name.to_string()),
        command: s.command(),
    }
}

/// Save `check` into `dir/data/checks.json`, replacing an earlier run of the same command.
pub fn save_check(dir: &std::path::Path, check: SavedCheck) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join(crate::results::DATA_DIR).join("checks.json");
    let mut all: Vec<SavedCheck> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    all.retain(|c| !(c.command == check.command && c.result.protocol == check.result.protocol));
    all.push(check);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&all).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Run `paxraft check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let mut cfg = match args.model.config() {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    if let Some(bug) = args.bug.bug {
        if let Err(e) = super::zoo::switch_on(&mut cfg.protocol, args.model.protocol, bug) {
            return bad(e);
        }
    }
    let search = match args.search(&cfg) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let summary = with_protocol(args.model.protocol, RunCheck(&cfg, &search, args.json));
    let peak = peak_memory();
    if args.json {
        println!("{}", summary_json(&summary, peak));
    } else {
        print!("{summary:#}");
        if let Some(p) = peak {
            println!("  peak memory     {}", human_bytes(p));
        }
    }
    if !args.no_save {
        match save_check(&args.report_dir, saved_check(&summary)) {
            Ok(path) if !args.json => println!("saved for the report: {}", path.display()),
            Ok(_) => {}
            Err(e) => eprintln!("warning: could not save the summary for the report: {e}"),
        }
    }
    if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Run `paxraft explore`: stateright's Explorer on a loopback address.
pub fn explore(args: &ExploreArgs) -> ExitCode {
    let cfg = match args.model.config() {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let addr = args.addr;
    if !addr.ip().is_loopback() {
        return bad(format!(
            "--addr {addr} is not a loopback address: the Explorer has no authentication"
        ));
    }
    // stateright's server panics when it cannot bind: find out first, and say why.
    if let Err(e) = std::net::TcpListener::bind(addr) {
        return bad(format!("cannot listen on {addr}: {e}"));
    }
    with_protocol(args.model.protocol, Serve(&cfg, addr))
}

/// `paxraft explore` of one protocol: serves until killed.
struct Serve<'a>(&'a ModelConfig, SocketAddr);

impl ProtocolVisitor for Serve<'_> {
    type Output = ExitCode;
    fn visit<R: Hosted>(self) -> ExitCode {
        use stateright::Model;
        let Serve(cfg, addr) = self;
        // The very model `check` explores (cuts, crashes between effects), without a depth
        // bound: the Explorer goes as deep as its user clicks.
        let _checker = paxraft_models::checked::build_checked::<R>(cfg, None)
            .checker()
            .serve(addr);
        eprintln!("serving the Explorer on http://{}/ (Ctrl-C to stop)", addr);
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
