//! `paxraft zoo`: run every bug of the zoo with its detector, bug on and bug off, print the
//! table and save it for the report. `--bug NAME` for `paxraft check` is parsed here too.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use paxraft_impls::Bug;

use super::EXIT_BAD_INPUT;
use crate::report::results::Results;
use crate::zoo::{self, Half, Outcome, Verdict, ZooBug};

/// Flags of `paxraft zoo`.
#[derive(Debug, Args)]
pub struct ZooArgs {
    /// Print the results as one JSON array on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run only this bug (name or code, e.g. figure8-commit or R1); may be repeated.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
    /// Checker threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Report directory: results are saved to DIR/data/zoo.json.
    #[arg(long, default_value = crate::report::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Do not save the results.
    #[arg(long)]
    pub no_save: bool,
}

/// `--bug NAME`, shared by the commands that inject one bug.
#[derive(Debug, Args)]
pub struct BugArg {
    /// Switch one known bug on (name or code from the bug zoo, e.g. double-vote or R5).
    #[arg(long, value_name = "NAME")]
    pub bug: Option<String>,
}

impl BugArg {
    /// The bug asked for, checked: unknown names and builds without the switches are errors.
    pub fn parse(&self) -> Result<Option<Bug>, String> {
        let Some(name) = &self.bug else {
            return Ok(None);
        };
        let bug =
            Bug::parse(name).ok_or_else(|| format!("unknown bug {name:?}: {}", known_bugs()))?;
        if !zoo::bugs_compiled() {
            return Err(
                "--bug needs a build with the bug switches: rebuild with --features bug-zoo".into(),
            );
        }
        Ok(Some(bug))
    }
}

fn known_bugs() -> String {
    let names: Vec<String> = Bug::ALL
        .iter()
        .map(|b| format!("{} ({})", b.name(), b.code()))
        .collect();
    format!("expected one of {}", names.join(", "))
}

fn select(only: &[String]) -> Result<Vec<ZooBug>, String> {
    let all = zoo::registry();
    if only.is_empty() {
        return Ok(all);
    }
    let mut picked = Vec::new();
    for name in only {
        let bug =
            Bug::parse(name).ok_or_else(|| format!("unknown bug {name:?}: {}", known_bugs()))?;
        if !picked.iter().any(|z: &ZooBug| z.bug == bug) {
            picked.push(
                all.iter()
                    .find(|z| z.bug == bug)
                    .cloned()
                    .expect("every bug is registered"),
            );
        }
    }
    Ok(picked)
}

fn row(o: &Outcome) -> String {
    let e = &o.entry;
    let (caught, by, len, states, secs, clean) = match &o.verdict {
        Verdict::Checked { buggy, clean } => {
            let by = if o.caught() {
                e.property.to_string()
            } else if let Some((other, _)) = buggy.violated.first() {
                format!("only {other} (expected {})", e.property)
            } else {
                format!("nothing (expected {})", e.property)
            };
            let clean = if o.clean_passed() {
                "pass".to_string()
            } else if let Some((p, _)) = clean.violated.first() {
                format!("FALSE ALARM: {p}")
            } else {
                "VACUOUS: no leader".to_string()
            };
            (
                if o.caught() { "yes" } else { "NO" },
                by,
                o.trace().map_or("-".into(), |t| t.steps.len().to_string()),
                buggy.states.to_string(),
                format!("{:.2}", buggy.seconds),
                clean,
            )
        }
        Verdict::Pending(_) => (
            "pending",
            format!("{} (fault schedules)", e.property),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ),
    };
    let known = e.known_steps.map_or("-".into(), |k| k.to_string());
    format!(
        "{:<4} {:<28} {:<10} {:<8} {:<44} {:>5} {:>5} {:>10} {:>8}  {}",
        e.bug.code(),
        e.bug.name(),
        e.protocol.name(),
        caught,
        by,
        len,
        known,
        states,
        secs,
        clean
    )
}

fn header() -> String {
    format!(
        "{:<4} {:<28} {:<10} {:<8} {:<44} {:>5} {:>5} {:>10} {:>8}  {}",
        "code",
        "bug",
        "protocol",
        "caught?",
        "by property",
        "trace",
        "known",
        "states",
        "seconds",
        "clean config"
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
        "clean": match &o.verdict {
            Verdict::Checked { clean, .. } => serde_json::json!({
                "states": clean.states,
                "seconds": clean.seconds,
                "violated": clean.violated.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "not_reached": clean.not_reached,
            }),
            Verdict::Pending(why) => serde_json::json!({ "pending": why }),
        },
    });
    if let (Some(m), serde_json::Value::Object(x)) = (v.as_object_mut(), extra) {
        m.extend(x);
    }
    v
}

/// Merge `outcomes` into `dir/data/zoo.json` (by bug), leaving the other results alone.
pub fn save(dir: &std::path::Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut results = Results::load(dir)?;
    for o in outcomes {
        let e = o.entry();
        match results.zoo.iter_mut().find(|z| z.code == e.code) {
            Some(z) => *z = e,
            None => results.zoo.push(e),
        }
    }
    let order = |code: &str| {
        Bug::ALL
            .iter()
            .position(|b| b.code() == code)
            .unwrap_or(usize::MAX)
    };
    results.zoo.sort_by_key(|z| order(&z.code));
    // Save the zoo part only: the other parts were loaded from disk and are left as they were.
    let zoo_only = Results {
        zoo: results.zoo,
        ..Results::default()
    };
    zoo_only.save(dir)
}

/// Run `paxraft zoo`.
pub fn run(args: &ZooArgs) -> ExitCode {
    let bugs = match select(&args.only) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if !zoo::bugs_compiled() {
        eprintln!("error: this build carries no bug switches: run `cargo run --release --features bug-zoo -- zoo`");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if args.threads == Some(0) {
        eprintln!("error: --threads must be at least 1");
        return ExitCode::from(EXIT_BAD_INPUT);
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
            bar.set_message(format!(
                "{name}: {what}, {} states, depth {}",
                p.unique_states, p.max_depth
            ));
        });
        match outcome {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                bar.finish_and_clear();
                eprintln!("error: {name}: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
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
        if let Err(e) = save(&args.dir, &outcomes) {
            eprintln!(
                "error: cannot save the results under {}: {e}",
                args.dir.display()
            );
            return ExitCode::from(EXIT_BAD_INPUT);
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
    let checked: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Checked { .. }))
        .collect();
    let caught = outcomes.iter().filter(|o| o.caught()).count();
    let mut secs: Vec<f64> = checked
        .iter()
        .filter(|o| o.caught())
        .filter_map(|o| match &o.verdict {
            Verdict::Checked { buggy, .. } => Some(buggy.seconds),
            Verdict::Pending(_) => None,
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    let median = if secs.is_empty() {
        0.0
    } else if secs.len() % 2 == 1 {
        secs[secs.len() / 2]
    } else {
        (secs[secs.len() / 2 - 1] + secs[secs.len() / 2]) / 2.0
    };
    println!();
    println!(
        "caught {caught}/{} ({} by model checking); median time to detect {median:.2} s; clean configurations passing {}/{}",
        outcomes.len(),
        checked.iter().filter(|o| o.caught()).count(),
        checked.iter().filter(|o| o.clean_passed()).count(),
        checked.len()
    );
    for o in outcomes {
        if let Verdict::Pending(why) = &o.verdict {
            println!(
                "{} {}: pending, {why}",
                o.entry.bug.code(),
                o.entry.bug.name()
            );
        }
    }
    for o in outcomes {
        if let (false, Verdict::Checked { .. }) = (o.ok(), &o.verdict) {
            println!(
                "{} {}: reproduce with {}",
                o.entry.bug.code(),
                o.entry.bug.name(),
                zoo::command(&o.entry)
            );
        }
    }
}
