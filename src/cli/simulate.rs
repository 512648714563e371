//! `paxraft simulate` and `paxraft replay`: deep fault schedules over the cluster model
//! ([`crate::simulate::hunt`]) and exact replays of a saved failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use paxraft_impls::{Bug, Config};

use super::bad;
use super::zoo::{parse_bug, switch_on};
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::simulate::cluster::{
    hunt_service, replay, Replayed, SavedFailure, SimOptions, SimReport, Workload,
};
use paxraft_models::model::Service;

/// `paxraft simulate` flags.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The protocol.
    #[arg(value_enum)]
    pub protocol: Protocol,
    /// Seed of the schedule generator (the same flags and seed give the same runs).
    #[arg(long, default_value_t = SimOptions::default().seed)]
    pub seed: u64,
    /// Random fault schedules to run.
    #[arg(long, default_value_t = SimOptions::default().runs)]
    pub runs: u32,
    /// Most steps in each run's faulty phase.
    #[arg(long, default_value_t = SimOptions::default().steps)]
    pub steps: usize,
    /// Bound on each run's fault-free settling phase (liveness).
    #[arg(long, default_value_t = SimOptions::default().settle_steps)]
    pub settle_steps: usize,
    /// Servers (1 to 7).
    #[arg(long, default_value_t = SimOptions::default().servers)]
    pub servers: usize,
    /// Clients.
    #[arg(long, default_value_t = SimOptions::default().clients)]
    pub clients: usize,
    /// Operations per client.
    #[arg(long, default_value_t = SimOptions::default().ops)]
    pub ops: usize,
    /// Requests each client keeps outstanding (1 to 8); above 1 clients pipeline, and
    /// acknowledge only the answers below their lowest unanswered request.
    #[arg(long, default_value_t = SimOptions::default().pipeline)]
    pub pipeline: usize,
    /// Crash only between whole steps (by default a crash may fall between two effects of a
    /// step: after some of its sends, persists or commits and before the rest).
    #[arg(long)]
    pub atomic_steps: bool,
    /// Highest message-loss rate, percent of steps.
    #[arg(long, default_value_t = SimOptions::default().loss_pct)]
    pub loss: u8,
    /// Highest duplication rate, percent of deliveries.
    #[arg(long, default_value_t = SimOptions::default().dup_pct)]
    pub dup: u8,
    /// Highest crash/restart rate, percent of steps.
    #[arg(long, default_value_t = SimOptions::default().crash_pct)]
    pub crash_rate: u8,
    /// Server crashes allowed per run.
    #[arg(long, default_value_t = SimOptions::default().crashes)]
    pub crashes: usize,
    /// Add partition windows that cut some servers off for a while, then heal.
    #[arg(long)]
    pub partitions: bool,
    /// Switch Raft's PreVote off.
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Switch Raft's CheckQuorum off.
    #[arg(long)]
    pub no_check_quorum: bool,
    /// Most entries (commands) per AppendEntries/Accept message.
    #[arg(long, default_value_t = Config::default().max_batch)]
    pub max_batch: usize,
    /// Raft heartbeats carry no entries, only the commit point (the paper's §5.2 form).
    #[arg(long)]
    pub empty_heartbeats: bool,
    #[command(flatten)]
    pub reads: super::ReadArgs,
    #[command(flatten)]
    pub snapshots: super::SnapshotArgs,
    #[command(flatten)]
    pub flow: super::FlowArgs,
    #[command(flatten)]
    pub membership: super::MembershipArgs,
    /// The replicated service: `kv` (puts, gets, compare-and-swaps over two keys) or `lock`
    /// (clients acquire a lock, write to fenced storage with its token, keep their session
    /// alive and release, over and over; sessions expire by log time; the lock history is
    /// checked against the lock service with expiring sessions).
    #[arg(long, default_value = "kv", value_parser = super::check::parse_service)]
    pub service: Service,
    /// With `--service lock`: a session expires after this many applied commands without a
    /// request of its client.
    #[arg(long, default_value_t = Workload::default().session_timeout)]
    pub session_timeout: u64,
    /// Switch a bug-zoo bug on, by name or code (needs a build with --features bug-zoo).
    #[arg(long, value_name = "NAME", value_parser = parse_bug)]
    pub bug: Option<Bug>,
    /// Most shrinking steps once a failure is found.
    #[arg(long, default_value_t = SimOptions::default().max_shrink_iters)]
    pub shrink: u32,
    /// Where to save a failing schedule (default: simulate-PROTOCOL-seedS.json).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `paxraft replay` flags.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A failing schedule saved by `paxraft simulate`.
    pub file: PathBuf,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The protocol configuration with `bugs` switched on, checked against `protocol`.
fn protocol_config(protocol: Protocol, bugs: &[Bug]) -> Result<Config, String> {
    let mut cfg = Config::default();
    for &bug in bugs {
        switch_on(&mut cfg, protocol, bug)?;
    }
    Ok(cfg)
}

impl SimulateArgs {
    fn workload(&self) -> Result<Workload, String> {
        let w = Workload {
            service: self.service,
            session_timeout: self.session_timeout,
        };
        w.validate()?;
        Ok(w)
    }

    fn options(&self) -> Result<SimOptions, String> {
        let bugs: Vec<Bug> = self.bug.into_iter().collect();
        let mut protocol = protocol_config(self.protocol, &bugs)?;
        protocol.pre_vote = !self.no_pre_vote;
        protocol.check_quorum = !self.no_check_quorum;
        if self.max_batch == 0 {
            return Err("--max-batch must be at least 1".into());
        }
        protocol.max_batch = self.max_batch;
        protocol.empty_heartbeats = self.empty_heartbeats;
        self.reads.apply(&mut protocol);
        self.snapshots.apply(&mut protocol, None);
        self.flow.apply(&mut protocol);
        self.membership.apply(&mut protocol);
        let (voters, changes) = self.membership.parts();
        let opts = SimOptions {
            seed: self.seed,
            runs: self.runs,
            steps: self.steps,
            settle_steps: self.settle_steps,
            servers: self.servers,
            voters,
            changes,
            clients: self.clients,
            ops: self.ops,
            pipeline: self.pipeline,
            mid_step: !self.atomic_steps,
            loss_pct: self.loss,
            dup_pct: self.dup,
            crash_pct: self.crash_rate,
            crashes: self.crashes,
            partitions: self.partitions,
            protocol,
            max_shrink_iters: self.shrink,
        };
        opts.validate()?;
        Ok(opts)
    }
}

/// `paxraft simulate` of one protocol, with a progress bar unless `quiet`.
struct Hunt<'a>(&'a SimOptions, &'a Workload, bool);

impl ProtocolVisitor for Hunt<'_> {
    type Output = SimReport;
    fn visit<R: Hosted>(self) -> SimReport {
        let Hunt(opts, workload, quiet) = self;
        let bar = indicatif::ProgressBar::new(u64::from(opts.runs));
        if quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs {msg} [{elapsed}]")
                .expect("a valid template"),
        );
        let start = std::time::Instant::now();
        let runs = u64::from(opts.runs);
        let report = hunt_service::<R>(opts, workload, Vec::new(), |t| {
            if t.runs % 4 == 0 || t.runs >= runs {
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(t.runs.min(runs));
                let phase = if t.runs > runs { "shrinking, " } else { "" };
                bar.set_message(format!(
                    "{phase}{} steps, deepest {}, {:.0} steps/s",
                    t.steps,
                    t.deepest,
                    t.steps as f64 / secs
                ));
            }
        });
        bar.finish_and_clear();
        report
    }
}

/// Run `paxraft simulate`.
pub fn run(args: &SimulateArgs) -> ExitCode {
    let (opts, workload) = match args.options().and_then(|o| Ok((o, args.workload()?))) {
        Ok(o) => o,
        Err(e) => return bad(e),
    };
    let report = with_protocol(args.protocol, Hunt(&opts, &workload, args.json));
    let saved_to = report.failure.as_ref().map(|f| {
        let path = args
            .save
            .clone()
            .unwrap_or_else(|| PathBuf::from(SavedFailure::file_name(report.protocol, opts.seed)));
        (f.saved.save(&path), path)
    });
    if args.json {
        let mut v = serde_json::to_value(&report).expect("a report serializes");
        if let Some((Ok(()), path)) = &saved_to {
            v["saved"] = serde_json::Value::from(path.display().to_string());
        }
        println!("{v}");
    } else {
        print!("{report:#}");
    }
    match saved_to {
        None => ExitCode::SUCCESS,
        Some((Ok(()), path)) => {
            if !args.json {
                println!();
                println!("saved the schedule to {}", path.display());
                println!("replay with: paxraft replay {}", path.display());
            }
            ExitCode::FAILURE
        }
        Some((Err(e), _)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `paxraft replay` of one protocol.
struct Replay<'a>(&'a SavedFailure, &'a SimOptions);

impl ProtocolVisitor for Replay<'_> {
    type Output = Replayed;
    fn visit<R: Hosted>(self) -> Replayed {
        replay::<R>(self.0, self.1)
    }
}

/// Run `paxraft replay`.
pub fn replay_file(args: &ReplayArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => return bad(format!("cannot read {}: {e}", args.file.display())),
    };
    let saved: SavedFailure = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            return bad(format!(
                "{} is not a saved schedule: {e}",
                args.file.display()
            ))
        }
    };
    let Some(protocol) = Protocol::parse(&saved.protocol) else {
        return bad(format!(
            "unknown protocol {:?} in {}",
            saved.protocol,
            args.file.display()
        ));
    };
    let opts = saved
        .bugs()
        .map_err(String::from)
        .and_then(|bugs| protocol_config(protocol, &bugs))
        .and_then(|cfg| saved.sim_options(cfg).map_err(String::from));
    let opts = match opts {
        Ok(o) => o,
        Err(e) => return bad(e),
    };
    let out = with_protocol(protocol, Replay(&saved, &opts));
    let same = out.violation.as_ref() == Some(&saved.violation);
    if args.json {
        let v = serde_json::json!({
            "protocol": saved.protocol,
            "reproduced": out.violation.is_some(),
            "same_violation": same,
            "violation": out.violation,
            "steps": out.steps,
            "chart": out.trace.as_ref().map(|t| t.chart()),
        });
        println!("{v}");
    } else {
        match (&out.violation, &out.trace) {
            (Some(v), Some(t)) => {
                let how = if same {
                    "reproduced"
                } else {
                    "fails differently than saved"
                };
                println!(
                    "{}: {how}: {} violated at step {} ({:?} phase), {} steps",
                    saved.protocol, v.property, v.step, v.phase, out.steps
                );
                print!("{}", t.chart());
                if !v.detail.is_empty() && t.explanation.as_deref() != Some(v.detail.as_str()) {
                    println!("     => {}", v.detail);
                }
            }
            _ => println!(
                "{}: no longer fails ({} steps); it was saved violating {:?}",
                saved.protocol, out.steps, saved.violation.property
            ),
        }
    }
    if out.violation.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
