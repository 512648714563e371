//! `paxraft zoo`: run every bug of the zoo with its detector, bug on and bug off, replay each
//! counterexample with the bug off, print the table and save it for the report. `--bug NAME` for `paxraft check` is parsed here too.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use paxraft_impls::{Bug, Config};
use paxraft_models::NetworkKind;

use super::bad;
use crate::protocol::Protocol;
use crate::zoo::{self, Half, Outcome, Verdict, ZooBug};

/// Flags of `paxraft zoo`.
#[derive(Debug, Args)]
pub struct ZooArgs {
    /// Print the results as one JSON array on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run only this bug (name or code, e.g. figure8-commit or R1); may be repeated.
    #[arg(long = "only", value_name = "NAME", value_parser = parse_bug)]
    pub only: Vec<Bug>,
    /// Checker threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Report directory: results are saved to DIR/data/zoo.json.
    #[arg(long, default_value = crate::report::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Do not save the results.
    #[arg(long)]
    pub no_save: bool,
    /// Override the registry's depth bound: most actions on an explored path, as in `paxraft
    /// check --depth` (to explore a bug further). This and the overrides below apply to the
    /// model-checked bugs only.
    #[arg(long, alias = "steps")]
    pub depth: Option<usize>,
    /// Override the registry's bound on messages in flight.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Override the network: unordered, duplicating or ordered.
    #[arg(long, value_parser = super::check::parse_network)]
    pub network: Option<NetworkKind>,
    /// Override the number of servers.
    #[arg(long)]
    pub servers: Option<usize>,
    /// Override the number of clients.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Override the ops per client.
    #[arg(long)]
    pub ops: Option<usize>,
    /// Override the highest term (ballot round) explored.
    #[arg(long)]
    pub max_term: Option<u64>,
    /// Override the crash budget.
    #[arg(long)]
    pub crashes: Option<usize>,
}

/// `--bug NAME`, shared by the commands that inject one bug.
#[derive(Debug, Args)]
pub struct BugArg {
    /// Switch one known bug on (name or code from the bug zoo, e.g. double-vote or R5).
    #[arg(long, value_name = "NAME", value_parser = parse_bug)]
    pub bug: Option<Bug>,
}

/// A bug's name or code, for clap.
pub(crate) fn parse_bug(name: &str) -> Result<Bug, String> {
    Bug::parse(name).ok_or_else(|| {
        let names: Vec<String> = Bug::ALL
            .iter()
            .map(|b| format!("{} ({})", b.name(), b.code()))
            .collect();
        format!("unknown bug {name:?}: expected one of {}", names.join(", "))
    })
}

/// Switch `bug` on in `cfg` for `protocol`: a bug of another protocol, or a build without
/// the switches, is an error.
pub(crate) fn switch_on(cfg: &mut Config, protocol: Protocol, bug: Bug) -> Result<(), String> {
    if Protocol::of_bug(bug).is_some_and(|p| p != protocol) {
        return Err(format!(
            "bug {} ({}) is not a {protocol} bug",
            bug.code(),
            bug.name()
        ));
    }
    if !cfg.set_bug(bug) {
        return Err(format!(
            "bug {} ({}) needs a build with the bug switches: rebuild with --features bug-zoo",
            bug.code(),
            bug.name()
        ));
    }
    Ok(())
}

fn select(only: &[Bug]) -> Vec<ZooBug> {
    let all = zoo::registry();
    if only.is_empty() {
        return all;
    }
    let mut picked = Vec::new();
    for &bug in only {
        if !picked.iter().any(|z: &ZooBug| z.bug == bug) {
            picked.push(
                all.iter()
                    .find(|z| z.bug == bug)
                    .cloned()
                    .expect("every bug is registered"),
            );
        }
    }
    picked
}

fn overrides(args: &ZooArgs, mut bugs: Vec<ZooBug>) -> Result<Vec<ZooBug>, String> {
    if args.depth == Some(0) {
        return Err("--depth must be at least 1".into());
    }
    for z in &mut bugs {
        if let zoo::Detector::Model { config, depth, .. } = &mut z.detector {
            if let Some(d) = args.depth {
                *depth = d;
            }
            if let Some(m) = args.max_in_flight {
                config.max_in_flight = m;
            }
            if let Some(n) = args.network {
                config.network = n;
            }
            if let Some(n) = args.servers {
                config.servers = n;
            }
            if let Some(n) = args.clients {
                config.clients = n;
            }
            if let Some(n) = args.ops {
                config.ops = n;
            }
            if let Some(n) = args.max_term {
                config.max_term = n;
            }
            if let Some(n) = args.crashes {
                config.max_crashes = n;
            }
            config.validate()?;
        }
    }
    Ok(bugs)
}

fn row(o: &Outcome) -> String {
    let e = &o.entry;
    let failed = o.failed();
    let by = if o.caught() {
        e.property.to_string()
    } else if let Some(other) = failed.first() {
        format!("only {other} (expected {})", e.property)
    } else {
        format!("nothing (expected {})", e.property)
    };
    let clean = match &o.verdict {
        _ if o.clean_passed() => "pass".to_string(),
        Verdict::Checked { clean: Some(c), .. } => match c.violated.first() {
            Some((p, _)) => format!("FALSE ALARM: {p}"),
            None => "VACUOUS: no leader".to_string(),
        },
        Verdict::Simulated { clean: Some(c), .. } => match &c.failure {
            Some(f) => format!("FALSE ALARM: {}", f.property),
            None => "VACUOUS: no runs".to_string(),
        },
        Verdict::Swept { clean: Some(c), .. } => match &c.failure {
            Some((p, _)) => format!("FALSE ALARM: {p}"),
            None => "VACUOUS: no lease read".to_string(),
        },
        Verdict::Checked { clean: None, .. }
        | Verdict::Simulated { clean: None, .. }
        | Verdict::Swept { clean: None, .. } => "not run".to_string(),
    };
    let how = match &o.verdict {
        Verdict::Checked { .. } => "bfs",
        Verdict::Simulated { .. } => "schedules",
        Verdict::Swept { .. } => "sweep",
    };
    let known = e.known_steps.map_or("-".into(), |k| k.to_string());
    let replay = replay_cell(o);
    format!(
        "{:<6} {:<30} {:<10} {:<9} {:<7} {:<44} {:>5} {:>5} {:>10} {:>8}  {:<12}  {}",
        e.bug.code(),
        e.bug.name(),
        e.protocol.name(),
        how,
        if o.caught() { "yes" } else { "NO" },
        by,
        o.trace().map_or("-".into(), |t| t.steps.len().to_string()),
        known,
        o.work(),
        format!("{:.2}", o.seconds()),
        clean,
        replay
    )
}

/// The clean replay's verdict, with what failed and why when it was not clean.
fn replay_cell(o: &Outcome) -> String {
    match &o.clean_replay {
        None => "not run".into(),
        Some(r) => match &r.failure {
            Some(f) if !f.detail.is_empty() => {
                format!("FALSE ATTRIBUTION, {}: {}", r.summary(), f.detail)
            }
            Some(_) => format!("FALSE ATTRIBUTION, {}", r.summary()),
            None => r.summary(),
        },
    }
}

fn header() -> String {
    format!(
        "{:<6} {:<30} {:<10} {:<9} {:<7} {:<44} {:>5} {:>5} {:>10} {:>8}  {:<12}  {}",
        "code",
        "bug",
        "protocol",
        "detector",
        "caught?",
        "by property",
        "trace",
        "known",
        "work",
        "seconds",
        "clean config",
        "clean replay (counterexample, bug off)"
    )
}

fn json(o: &Outcome) -> serde_json::Value {
    let mut v = serde_json::to_value(o.entry()).expect("a zoo entry serialises");
    let extra = serde_json::json!({
        "expected_property": o.entry.property,
        "known_steps": o.entry.known_steps,
        "command": zoo::command(&o.entry),
        "source": o.entry.source,
        "clean_passed": o.clean_passed(),
        "attributed": o.attributed(),
        "failed": o.failed(),
        "clean": match &o.verdict {
            Verdict::Checked { clean: None, .. } => serde_json::json!({ "not_run": "the bug escaped" }),
            Verdict::Checked { clean: Some(clean), .. } => serde_json::json!({
                "states": clean.states,
                "seconds": clean.seconds,
                "violated": clean.violated.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "not_reached": clean.not_reached,
            }),
            Verdict::Simulated { clean: None, .. } => serde_json::json!({ "not_run": "the bug escaped" }),
            Verdict::Simulated { clean: Some(clean), .. } => serde_json::json!({
                "runs": clean.runs,
                "steps": clean.steps,
                "seconds": clean.seconds,
                "violated": clean.failure.as_ref().map(|f| f.property.clone()),
            }),
            Verdict::Swept { clean: None, .. } => serde_json::json!({ "not_run": "the bug escaped" }),
            Verdict::Swept { clean: Some(clean), .. } => serde_json::json!({
                "scenarios": clean.scenarios,
                "served_alone": clean.served_alone,
                "seconds": clean.seconds,
                "violated": clean.failure.as_ref().map(|(p, _)| p.clone()),
            }),
        },
    });
    if let (Some(m), serde_json::Value::Object(x)) = (v.as_object_mut(), extra) {
        m.extend(x);
    }
    v
}

/// Run `paxraft zoo`.
pub fn run(args: &ZooArgs) -> ExitCode {
    let bugs = match overrides(args, select(&args.only)) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    if !zoo::bugs_compiled() {
        return bad("this build carries no bug switches: run `cargo run --release --features bug-zoo -- zoo`");
    }
    if args.threads == Some(0) {
        return bad("--threads must be at least 1");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = indicatif::ProgressBar::new(bugs.len() as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            .expect("a valid progress template"),
    );
    let mut outcomes = Vec::new();
    for z in &bugs {
        let name = format!("{} {}", z.bug.code(), z.bug.name());
        bar.set_message(name.clone());
        let outcome = zoo::run(z, threads, |half, p| {
            let what = match half {
                Half::Buggy => "bug on",
                Half::Clean => "bug off",
            };
            bar.set_message(format!("{name}: {what}, {p}"));
        });
        match outcome {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                bar.finish_and_clear();
                return bad(format!("{name}: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if args.json {
        let all: Vec<serde_json::Value> = outcomes.iter().map(json).collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        print_table(&outcomes);
    }
    if !args.no_save {
        if let Err(e) = zoo::save(&args.dir, &outcomes) {
            return bad(format!(
                "cannot save the results under {}: {e}",
                args.dir.display()
            ));
        }
    }
    if outcomes.iter().all(Outcome::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_table(outcomes: &[Outcome]) {
    println!("{}", header());
    for o in outcomes {
        println!("{}", row(o));
    }
    let caught = outcomes.iter().filter(|o| o.caught()).count();
    let mut secs: Vec<(f64, &Outcome)> = outcomes
        .iter()
        .filter(|o| o.caught())
        .map(|o| (o.seconds(), o))
        .collect();
    secs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = match secs.len() {
        0 => 0.0,
        n if n % 2 == 1 => secs[n / 2].0,
        n => (secs[n / 2 - 1].0 + secs[n / 2].0) / 2.0,
    };
    let by = |f: fn(&Verdict) -> bool| {
        outcomes
            .iter()
            .filter(|o| o.caught() && f(&o.verdict))
            .count()
    };
    let by_model = by(|v| matches!(v, Verdict::Checked { .. }));
    let by_sweep = by(|v| matches!(v, Verdict::Swept { .. }));
    println!();
    println!(
        "caught {caught}/{} ({by_model} by model checking, {} by fault schedules, {by_sweep} by the lease sweep); clean configurations passing {}/{}; counterexamples clean with the bug off {}/{caught}",
        outcomes.len(),
        caught - by_model - by_sweep,
        outcomes.iter().filter(|o| o.clean_passed()).count(),
        outcomes.len(),
        outcomes.iter().filter(|o| o.attributed()).count(),
    );
    let replay_secs: f64 = outcomes
        .iter()
        .filter_map(|o| o.clean_replay.as_ref())
        .map(|r| r.seconds)
        .sum();
    println!("clean replays took {replay_secs:.2} s in all");
    if let Some((slowest, o)) = secs.last() {
        println!(
            "time to detect: median {median:.2} s, slowest {slowest:.2} s ({} {})",
            o.entry.bug.code(),
            o.entry.bug.name()
        );
    }
    for o in outcomes.iter().filter(|o| !o.ok()) {
        println!(
            "{} {}: reproduce with {}",
            o.entry.bug.code(),
            o.entry.bug.name(),
            zoo::command(&o.entry)
        );
    }
}
