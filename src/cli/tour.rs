//! The tour: what `cargo run --release` does with no arguments. Default model checks of both
//! protocols, a short fault-schedule run of each, the bug zoo (a quick subset, when this build
//! carries the bug switches), a short throughput comparison (with one line on the read paths),
//! a short recovery run (a leader crash under load, a follower catching up by snapshot, a
//! leader restarting from a compacted log), then the HTML report: every section `cargo
//! bench` fills has the tour's shorter measurements until `cargo bench` replaces them.
//!
//! Each stage has its own progress bar and ends with a short result line; a stage that fails
//! (or panics) is reported and the next one runs anyway, so the report is always written.
//! [`TourOptions`] sizes every stage: [`TourOptions::default`] is what the CLI runs (measured
//! to take about 2 minutes on 2 cores), tests use tiny sizes.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use paxraft_impls::Bug;
use paxraft_models::{ModelConfig, SearchOptions, Summary};

use super::check::{save_check, saved_check};
use crate::bench;
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::results::Results;
use crate::simulate::cluster::{hunt_with, SavedFailure, SimOptions, SimReport};
use crate::zoo::{self, Outcome};

/// How big each stage is, and where the report goes.
#[derive(Clone, Debug)]
pub struct TourOptions {
    /// Report directory: results are saved under `dir/data/`, the page is `dir/index.html`.
    pub dir: PathBuf,
    /// The model both protocols are checked on (default: `paxraft check`'s).
    pub check: ModelConfig,
    /// How the checks search (default: `paxraft check`'s).
    pub search: SearchOptions,
    /// The fault schedules run on each protocol.
    pub sim: SimOptions,
    /// The bugs of the zoo to run when the build carries the switches.
    pub zoo: Vec<Bug>,
    /// Outstanding-request levels of the throughput comparison (3 servers, empty commands).
    pub outstanding: Vec<usize>,
    /// Measured time per throughput point (a fifth more warms up).
    pub per_point: Duration,
    /// The leader-crash timeline taken of each protocol (`cargo bench`'s is the default).
    pub recovery: bench::RecoveryConfig,
    /// Slots a follower falls behind before catching up by snapshot, and slots committed
    /// before the leader restarts from its compacted log (a snapshot every tenth of them);
    /// 0 skips both. `cargo bench` takes 10^6.
    pub snapshot_slots: u64,
    /// Hide the progress bars.
    pub quiet: bool,
}

/// Bugs quick to model-check both ways (bug on: caught; bug off: the bounded space passes):
/// the tour's sample of the zoo when the build carries the switches. Measured with
/// `paxraft zoo --only CODE` on 2 cores: R2 15 s, R3 5 s, R5 0.5 s, B2 0.9 s; every other
/// bug takes over 25 s.
pub const QUICK_ZOO: &[Bug] = &[
    Bug::VoteWithoutLogCheck,
    Bug::VoteNotPersisted,
    Bug::DoubleVote,
    Bug::DuplicateApply,
];

impl Default for TourOptions {
    fn default() -> Self {
        TourOptions {
            dir: PathBuf::from(crate::report::DEFAULT_DIR),
            check: ModelConfig::default(),
            // Like `paxraft check`: one checker thread per core, each protocol's default
            // depth (`depth: None` here means that, not "unbounded").
            search: SearchOptions {
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                depth: None,
                ..SearchOptions::default()
            },
            sim: SimOptions {
                runs: 150,
                partitions: true,
                ..SimOptions::default()
            },
            zoo: QUICK_ZOO.to_vec(),
            outstanding: vec![1, 16, 256, 1024],
            per_point: Duration::from_secs(1),
            recovery: bench::RecoveryConfig::default(),
            snapshot_slots: 50_000,
            quiet: false,
        }
    }
}

/// How a stage ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageStatus {
    /// Everything it checked held (or it measured what it should).
    Passed,
    /// Not run in this build, with the reason.
    Skipped(String),
    /// A check found a violation (or a property not reached, or a bug not caught).
    Failed(String),
    /// The stage could not run to the end.
    Error(String),
}

/// One stage's outcome.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Short name, e.g. `model checks`.
    pub name: &'static str,
    /// How it ended.
    pub status: StageStatus,
    /// Wall time.
    pub seconds: f64,
}

/// What the tour did.
#[derive(Clone, Debug, Default)]
pub struct TourOutcome {
    /// Every stage, in order.
    pub stages: Vec<Stage>,
    /// The report written, as an absolute path.
    pub report: Option<PathBuf>,
}

impl TourOutcome {
    /// 0 when every stage passed or was skipped, else 1.
    pub fn exit_code(&self) -> u8 {
        let ok = self
            .stages
            .iter()
            .all(|s| matches!(s.status, StageStatus::Passed | StageStatus::Skipped(_)));
        if ok {
            0
        } else {
            1
        }
    }
}

/// Run the tour with the production sizes, printing to stdout.
pub fn run() -> ExitCode {
    let outcome = tour(&TourOptions::default(), &mut std::io::stdout());
    ExitCode::from(outcome.exit_code())
}

fn bar(opts: &TourOptions, len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if opts.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = format!("  {{bar:30}} {{pos}}/{{len}} {unit} {{msg}} [{{elapsed}}]");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid progress template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// How many stages the tour has.
const STAGES: usize = 6;

/// Run `f` as one stage: time it, turn a panic into an error, record the outcome.
fn stage(
    out: &mut dyn Write,
    outcome: &mut TourOutcome,
    name: &'static str,
    f: impl FnOnce(&mut dyn Write) -> StageStatus,
) {
    let n = outcome.stages.len() + 1;
    let _ = writeln!(out, "[{n}/{STAGES}] {name}");
    let start = Instant::now();
    let status = catch_unwind(AssertUnwindSafe(|| f(&mut *out)))
        .unwrap_or_else(|p| StageStatus::Error(format!("panicked: {}", crate::panic_message(&*p))));
    let seconds = start.elapsed().as_secs_f64();
    match &status {
        StageStatus::Passed => {
            let _ = writeln!(out, "  {name}: ok ({seconds:.1} s)");
        }
        StageStatus::Skipped(why) => {
            let _ = writeln!(out, "  {name}: skipped: {why}");
        }
        StageStatus::Failed(why) => {
            let _ = writeln!(out, "  {name}: FAILED: {why} ({seconds:.1} s)");
        }
        StageStatus::Error(why) => {
            let _ = writeln!(out, "  {name}: error: {why} ({seconds:.1} s)");
        }
    }
    outcome.stages.push(Stage {
        name,
        status,
        seconds,
    });
}

/// Run every stage with `opts`, printing result lines to `out` (progress bars go to stderr).
pub fn tour(opts: &TourOptions, out: &mut dyn Write) -> TourOutcome {
    let start = Instant::now();
    let mut outcome = TourOutcome::default();
    let _ = writeln!(
        out,
        "paxraft {} tour: model checks, fault schedules, bug zoo, throughput, recovery, report",
        env!("CARGO_PKG_VERSION")
    );
    stage(out, &mut outcome, "model checks", |out| checks(opts, out));
    stage(out, &mut outcome, "fault schedules", |out| {
        schedules(opts, out)
    });
    stage(out, &mut outcome, "bug zoo", |out| bug_zoo(opts, out));
    stage(out, &mut outcome, "throughput", |out| throughput(opts, out));
    stage(out, &mut outcome, "recovery", |out| recovery(opts, out));
    let mut report = None;
    stage(
        out,
        &mut outcome,
        "report",
        |out| match crate::report::write(&opts.dir) {
            Ok(path) => {
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                let _ = writeln!(out, "  report: {}", path.display());
                report = Some(path);
                StageStatus::Passed
            }
            Err(e) => StageStatus::Error(format!(
                "cannot write the report in {}: {e}",
                opts.dir.display()
            )),
        },
    );
    outcome.report = report;
    let failed: Vec<&str> = outcome
        .stages
        .iter()
        .filter(|s| matches!(s.status, StageStatus::Failed(_) | StageStatus::Error(_)))
        .map(|s| s.name)
        .collect();
    let passed = outcome
        .stages
        .iter()
        .filter(|s| s.status == StageStatus::Passed)
        .count();
    let skipped: Vec<&str> = outcome
        .stages
        .iter()
        .filter(|s| matches!(s.status, StageStatus::Skipped(_)))
        .map(|s| s.name)
        .collect();
    let _ = writeln!(out);
    if failed.is_empty() {
        let skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} skipped)", skipped.join(", "))
        };
        let _ = writeln!(
            out,
            "tour passed: {passed} stages held{skipped}, in {:.0} s",
            start.elapsed().as_secs_f64()
        );
    } else {
        let _ = writeln!(
            out,
            "tour FAILED in {}; {passed} of {} stages passed, in {:.0} s",
            failed.join(", "),
            outcome.stages.len(),
            start.elapsed().as_secs_f64()
        );
    }
    if let Some(p) = &outcome.report {
        let _ = writeln!(out, "open {}", p.display());
    }
    outcome
}

// Stage 1: the default model check of each protocol, saved like `paxraft check` saves it.

fn checks(opts: &TourOptions, out: &mut dyn Write) -> StageStatus {
    if let Err(e) = opts
        .check
        .validate()
        .map_err(String::from)
        .and_then(|()| opts.search.validate())
    {
        return StageStatus::Error(format!("bad model configuration: {e}"));
    }
    let bar = bar(opts, Protocol::REPLICATED.len() as u64, "protocols");
    let mut bad = Vec::new();
    for (i, p) in Protocol::REPLICATED.into_iter().enumerate() {
        let summary = with_protocol(p, CheckOne(opts, &bar));
        bar.set_position(i as u64 + 1);
        let _ = bar.suspend(|| write!(out, "{summary}"));
        if let Err(e) = save_check(&opts.dir, saved_check(&summary)) {
            bar.finish_and_clear();
            return StageStatus::Error(format!("cannot save the check for the report: {e}"));
        }
        if !summary.passed() {
            bad.push(summary.protocol);
        }
    }
    bar.finish_and_clear();
    if bad.is_empty() {
        StageStatus::Passed
    } else {
        StageStatus::Failed(format!("{} did not pass", bad.join(" and ")))
    }
}

/// The tour's model check of one protocol.
struct CheckOne<'a>(&'a TourOptions, &'a ProgressBar);

impl ProtocolVisitor for CheckOne<'_> {
    type Output = Summary;
    fn visit<R: Hosted>(self) -> Summary {
        let CheckOne(opts, bar) = self;
        bar.set_message(format!("{}: starting", R::NAME));
        let mut search = opts.search.clone();
        if search.depth.is_none() {
            search.depth = Some(paxraft_models::check::default_depth(R::NAME));
        }
        paxraft_models::check::<R>(&opts.check, &search, Duration::from_millis(200), |p| {
            let secs = p.elapsed.as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{}: {} unique states, depth {}, {:.0} states/s",
                R::NAME,
                p.unique_states,
                p.max_depth,
                p.unique_states as f64 / secs
            ));
        })
    }
}

// Stage 2: fault schedules on each protocol.

fn schedules(opts: &TourOptions, out: &mut dyn Write) -> StageStatus {
    if let Err(e) = opts.sim.validate() {
        return StageStatus::Error(format!("bad fault-schedule options: {e}"));
    }
    let runs = u64::from(opts.sim.runs);
    let protocols = Protocol::REPLICATED;
    let bar = bar(opts, protocols.len() as u64 * runs, "runs");
    let mut bad = Vec::new();
    for (i, p) in protocols.into_iter().enumerate() {
        let hunt = HuntOne(opts, &bar, i as u64 * runs);
        let report = with_protocol(p, hunt);
        let saved = report.failure.as_ref().map(|f| {
            let data = opts.dir.join(crate::results::DATA_DIR);
            std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
            let path = data.join(SavedFailure::file_name(report.protocol, opts.sim.seed));
            f.saved.save(&path).map(|()| path).map_err(String::from)
        });
        bar.suspend(|| print_hunt(out, &report, saved.as_ref()));
        if report.failure.is_some() {
            bad.push(report.protocol);
        }
    }
    bar.finish_and_clear();
    if bad.is_empty() {
        StageStatus::Passed
    } else {
        StageStatus::Failed(format!("a violation in {}", bad.join(" and ")))
    }
}

/// The tour's fault schedules on one protocol; its bar counts on from `base` runs.
struct HuntOne<'a>(&'a TourOptions, &'a ProgressBar, u64);

impl ProtocolVisitor for HuntOne<'_> {
    type Output = SimReport;
    fn visit<R: Hosted>(self) -> SimReport {
        let HuntOne(opts, bar, base) = self;
        let runs = u64::from(opts.sim.runs);
        hunt_with::<R>(&opts.sim, |t| {
            bar.set_position(base + t.runs.min(runs));
            let phase = if t.runs > runs { "shrinking, " } else { "" };
            bar.set_message(format!("{}: {phase}{} steps", R::NAME, t.steps));
        })
    }
}

fn print_hunt(out: &mut dyn Write, r: &SimReport, saved: Option<&Result<PathBuf, String>>) {
    let _ = write!(out, "{r}");
    if r.failure.is_some() {
        match saved {
            Some(Ok(path)) => {
                let _ = writeln!(out, "  replay with: paxraft replay {}", path.display());
            }
            Some(Err(e)) => {
                let _ = writeln!(out, "  could not save the schedule: {e}");
            }
            None => {}
        }
        let _ = writeln!(out, "  rerun with: {}", r.command);
    }
}

// Stage 3: the bug zoo, when the build carries the switches.

fn bug_zoo(opts: &TourOptions, out: &mut dyn Write) -> StageStatus {
    const HOW: &str = "cargo run --release --features bug-zoo -- zoo";
    if !zoo::bugs_compiled() {
        let saved = Results::load(&opts.dir).map(|r| r.zoo).unwrap_or_default();
        let _ = writeln!(
            out,
            "  this build carries no bug switches; run the zoo with `{HOW}`"
        );
        if !saved.is_empty() {
            let _ = writeln!(
                out,
                "  the report shows the saved zoo run: {} of {} bugs caught",
                saved.iter().filter(|z| z.caught).count(),
                saved.len()
            );
        }
        return StageStatus::Skipped("no bug switches in this build".into());
    }
    let registry = zoo::registry();
    let bugs: Vec<_> = opts
        .zoo
        .iter()
        .filter_map(|b| registry.iter().find(|z| z.bug == *b).cloned())
        .collect();
    let threads = opts.search.threads;
    let bar = bar(opts, bugs.len() as u64, "bugs");
    let mut outcomes: Vec<Outcome> = Vec::new();
    for z in &bugs {
        let name = format!("{} {}", z.bug.code(), z.bug.name());
        bar.set_message(name.clone());
        match zoo::run(z, threads, |_, p| {
            bar.set_message(format!("{name}: {p}"));
        }) {
            Ok(o) => {
                let e = o.entry();
                let line = if o.ok() {
                    format!(
                        "caught by {} ({} steps, {:.2} s); clean config passes; counterexample clean without the bug",
                        e.property.unwrap_or_default(),
                        e.trace_len.unwrap_or(0),
                        e.seconds
                    )
                } else if !o.caught() {
                    format!("NOT CAUGHT (expected {})", z.property)
                } else if !o.clean_passed() {
                    "FALSE ALARM: the clean configuration fails".to_string()
                } else {
                    format!(
                        "FALSE ATTRIBUTION: the counterexample fails without the bug too ({})",
                        e.clean_replay
                            .map_or("not replayed".into(), |r| r.summary())
                    )
                };
                bar.suspend(|| {
                    let _ = writeln!(out, "  {name:<34} {line}");
                });
                outcomes.push(o);
            }
            Err(e) => {
                bar.suspend(|| {
                    let _ = writeln!(out, "  {name:<34} error: {e}");
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = writeln!(
        out,
        "  {} of the zoo's {} bugs run here; all of them: `{HOW}`",
        bugs.len(),
        Bug::ALL.len()
    );
    if let Err(e) = zoo::save(&opts.dir, &outcomes) {
        return StageStatus::Error(format!("cannot save the zoo results: {e}"));
    }
    if outcomes.len() < bugs.len() {
        StageStatus::Error("some bugs could not be run".into())
    } else if outcomes.iter().all(Outcome::ok) {
        StageStatus::Passed
    } else {
        StageStatus::Failed(format!(
            "{} of {} bugs not caught cleanly",
            outcomes.iter().filter(|o| !o.ok()).count(),
            outcomes.len()
        ))
    }
}

// Stage 4: a short throughput comparison, saved where `cargo bench` saves its points.

fn throughput(opts: &TourOptions, out: &mut dyn Write) -> StageStatus {
    let total = bench::compare_points(opts.outstanding.len()) as u64;
    let bar = bar(opts, total, "points");
    let points = bench::compare(
        &opts.outstanding,
        opts.per_point,
        Some(&opts.dir),
        |done, _| bar.set_position(done as u64),
    );
    bar.finish_and_clear();
    let points = match points {
        Ok(p) => p,
        Err(e) => return StageStatus::Error(e.to_string()),
    };
    let top = opts.outstanding.iter().copied().max().unwrap_or(0);
    let low = opts.outstanding.iter().copied().min().unwrap_or(0);
    let reads = read_paths(opts, top);
    let mut lines: Vec<(
        String,
        &crate::results::BenchPoint,
        Option<&crate::results::BenchPoint>,
    )> = Vec::new();
    for proto in Protocol::ALL {
        let servers: &[usize] = if proto == Protocol::Unreplicated {
            &[1, 3]
        } else {
            &[3]
        };
        for &n in servers {
            let at = |level: usize| {
                points.iter().find(|p| {
                    p.protocol == proto.name() && p.outstanding == level && p.servers == n
                })
            };
            let name = match (proto, n) {
                (Protocol::Unreplicated, 1) => "unreplicated, 1 server".to_string(),
                (Protocol::Unreplicated, n) => format!("unreplicated, 1 of {n} serving"),
                (p, _) => p.name().to_string(),
            };
            // The ceiling beside idle peers is measured at the top load only: its line has
            // no latency at the low load, rather than the top load's under the low's heading.
            if let Some(hi) = at(top) {
                lines.push((name, hi, at(low).filter(|_| low != top)));
            }
        }
    }
    let width = lines.iter().map(|l| l.0.len()).max().unwrap_or(0);
    for (name, hi, lo) in &lines {
        let latency = match lo {
            Some(lo) => format!("p50 {:.1} µs at {low}", lo.p50_us),
            None if low == top => format!("p50 {:.1} µs at {top}", hi.p50_us),
            None => format!("not measured at {low}"),
        };
        // Every thread's CPU per operation at the top load (see the report's latency table).
        let cpu = hi
            .cpu
            .as_ref()
            .and_then(crate::results::CpuUse::total_ns)
            .map_or(String::new(), |ns| format!(", {ns:.0} ns of CPU an op"));
        let _ = writeln!(
            out,
            "  {name:<width$} {:>9.0} ops/s at {top} outstanding (p99 {:.0} µs{cpu}, {} errors); {latency}",
            hi.ops_per_sec,
            hi.p99_us,
            hi.errors + lo.map_or(0, |lo| lo.errors),
        );
    }
    match reads {
        Ok(line) => {
            let _ = writeln!(out, "  {line}");
            StageStatus::Passed
        }
        Err(e) => StageStatus::Error(format!("reads: {e}")),
    }
}

// Stage 5: recovery, short: the report's recovery section without `cargo bench`.

fn recovery(opts: &TourOptions, out: &mut dyn Write) -> StageStatus {
    let protocols = Protocol::REPLICATED;
    let per_protocol = if opts.snapshot_slots > 0 { 3 } else { 1 };
    let bar = bar(opts, (protocols.len() * per_protocol) as u64, "runs");
    let mut runs = Vec::new();
    let (mut catch_ups, mut restarts) = (Vec::new(), Vec::new());
    let mut failed = Vec::new();
    // One run: its line printed and its result kept, or its error noted.
    let mut report = |what: String, line: Result<String, bench::BenchError>| {
        match line {
            Ok(line) => bar.suspend(|| {
                let _ = writeln!(out, "  {line}");
            }),
            Err(e) => failed.push(format!("{what}: {e}")),
        }
        bar.inc(1);
    };
    for protocol in protocols {
        let name = protocol.name();
        bar.set_message(format!("{name}: leader crash under load"));
        let run = bench::recovery_of(protocol, &opts.recovery).map(|r| {
            keep(&mut runs, r, |r| {
            format!(
                "{name:<12} leader crash under load: first commit {:.1} ms after it; {:.0} ops/s before, {:.0} at the bottom, {}",
                r.time_to_first_commit_ms,
                r.before_ops_per_sec.unwrap_or(0.0),
                r.min_ops_per_sec.unwrap_or(0.0),
                r.recovered_ms.map_or("not back to 90% within the run".into(), |ms| {
                    format!("back to 90% after {ms:.0} ms")
                })
            )
            })
        });
        report(format!("{name} crash timeline"), run);
        if opts.snapshot_slots == 0 {
            continue;
        }
        let (slots, every) = (opts.snapshot_slots, (opts.snapshot_slots / 10).max(1));
        bar.set_message(format!("{name}: catch-up by snapshot"));
        let run = bench::catch_up(protocol, slots, every).map(|r| {
            keep(&mut catch_ups, r, |r| {
            format!(
                "{name:<12} a follower {slots} slots behind caught up in {:.3} s ({} snapshot bytes)",
                r.seconds, r.snapshot_bytes
            )
            })
        });
        report(format!("{name} catch-up"), run);
        bar.set_message(format!("{name}: leader restart"));
        let run = bench::leader_restart(protocol, slots, every).map(|r| {
            keep(&mut restarts, r, |r| {
            format!(
                "{name:<12} leader restarted after {slots} commits: serving again in {:.1} ms, rebuilt in {:.1} ms",
                r.serve_ms, r.rebuilt_ms
            )
            })
        });
        report(format!("{name} leader restart"), run);
    }
    bar.finish_and_clear();
    let saved = Results::merge_recovery(&opts.dir, &runs)
        .and_then(|()| Results::merge_snapshot_runs_short(&opts.dir, &catch_ups, &restarts));
    let _ = writeln!(
        out,
        "  every cluster size, leadership transfers, 10^6 slots: cargo bench -p paxraft-bench --bench recovery"
    );
    if let Err(e) = saved {
        return StageStatus::Error(format!("cannot save the recovery runs: {e}"));
    }
    if failed.is_empty() {
        StageStatus::Passed
    } else {
        StageStatus::Error(failed.join("; "))
    }
}

/// Keep `run` in `into`; its line.
fn keep<T>(into: &mut Vec<T>, run: T, line: impl FnOnce(&T) -> String) -> String {
    let line = line(&run);
    into.push(run);
    line
}

/// The read paths in one line: Raft at 90% reads and the comparison's top load, through the
/// log, by read index and under a lease, a third of a point's time each.
fn read_paths(opts: &TourOptions, outstanding: usize) -> Result<String, bench::BenchError> {
    use bench::ReadPath;
    let start = Instant::now();
    let paths = [ReadPath::Log, ReadPath::ReadIndex, ReadPath::Lease];
    let points = bench::compare_reads(
        Protocol::Raft,
        &paths,
        90,
        outstanding.max(1),
        opts.per_point / 3,
        Some(&opts.dir),
    )?;
    let at = |path: ReadPath| {
        points
            .iter()
            .find(|p| p.path == path.name())
            .map_or("no such path yet".to_string(), |p| {
                format!("{:.0} ops/s", p.point.ops_per_sec)
            })
    };
    Ok(format!(
        "reads, raft at 90% reads: log {}, read-index {}, lease {} ({:.1} s; every path: cargo bench -p paxraft-bench -- reads)",
        at(ReadPath::Log),
        at(ReadPath::ReadIndex),
        at(ReadPath::Lease),
        start.elapsed().as_secs_f64()
    ))
}
