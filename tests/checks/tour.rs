//! The tour (`cargo run --release` with no arguments) at tiny sizes: every stage runs and
//! the report it writes has every section; a violation or a broken stage is reported, gives
//! exit code 1, and the other stages (the report included) still run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use paxraft::bench::RecoveryConfig;
use paxraft::cli::tour::{tour, StageStatus, TourOptions, TourOutcome};
use paxraft::models::{ModelConfig, SearchOptions};
use paxraft::simulate::cluster::SimOptions;
use paxraft::zoo::{self, Detector};
use paxraft_impls::Bug;
use scraper::{Html, Selector};

/// A fresh, empty report directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("paxraft-tour-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // One level down: the report links criterion's report at `../target/criterion` when that
    // exists, and the system's temp dir may hold a `target` (a bench run from there made
    // one, and the test of the section without it failed).
    root.join("reports")
}

/// Remove what [`temp_dir`] made.
fn clean(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.parent().expect("temp_dir nests the report"));
}

/// Sizes that take a few seconds: a 2-server model deep enough to reach every sometimes-
/// property, a few fault schedules, one zoo bug, two throughput points per protocol.
fn tiny(dir: &Path) -> TourOptions {
    TourOptions {
        dir: dir.to_path_buf(),
        check: ModelConfig {
            servers: 2,
            clients: 1,
            ..ModelConfig::default()
        },
        search: SearchOptions {
            threads: 1,
            depth: Some(13),
            ..SearchOptions::default()
        },
        sim: SimOptions {
            runs: 4,
            ..SimOptions::default()
        },
        zoo: vec![Bug::DoubleVote],
        outstanding: vec![1, 16],
        per_point: Duration::from_millis(50),
        recovery: RecoveryConfig {
            crash_at: Duration::from_millis(150),
            run_for: Duration::from_millis(400),
            ..RecoveryConfig::default()
        },
        snapshot_slots: 2_000,
        quiet: true,
    }
}

fn run(opts: &TourOptions) -> (TourOutcome, String) {
    let mut out = Vec::new();
    let outcome = tour(opts, &mut out);
    (outcome, String::from_utf8(out).expect("utf-8 output"))
}

fn status<'a>(o: &'a TourOutcome, name: &str) -> &'a StageStatus {
    &o.stages
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name}: {o:?}"))
        .status
}

fn page(o: &TourOutcome) -> Html {
    let path = o.report.as_ref().expect("a report was written");
    assert!(path.is_absolute(), "{}", path.display());
    Html::parse_document(&std::fs::read_to_string(path).expect("the report is readable"))
}

fn section_text(html: &Html, id: &str) -> String {
    let sel = Selector::parse(&format!("section#{id}")).expect("a valid selector");
    let s = html
        .select(&sel)
        .next()
        .unwrap_or_else(|| panic!("no section #{id}"));
    s.text().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_tiny_tour_passes_every_stage_and_writes_a_report_with_every_section() {
    let dir = temp_dir("tiny");
    let (o, text) = run(&tiny(&dir));
    assert_eq!(o.exit_code(), 0, "{text}");
    assert_eq!(o.stages.len(), 6, "{text}");
    for s in &o.stages {
        assert_eq!(s.status, StageStatus::Passed, "{}: {text}", s.name);
    }
    for line in [
        "raft        passed:",
        "multipaxos  passed:",
        "raft        no violation: 4 runs",
        "R5 double-vote",
        "unreplicated, 1 server",
        "unreplicated, 1 of 3 serving",
        "raft         leader crash under load: first commit",
        "multipaxos   a follower 2000 slots behind caught up",
        "tour passed: 6 stages held",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // One request's latency where it was measured; the ceiling beside idle peers has no
    // point at 1 outstanding, and its line says so instead of quoting the top load's.
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start) && l.contains(" ops/s at "))
            .unwrap_or_else(|| panic!("no line {start:?} in:\n{text}"))
    };
    assert!(
        line("unreplicated, 1 of 3 serving").ends_with("errors); not measured at 1"),
        "{text}"
    );
    for name in ["unreplicated, 1 server", "raft ", "multipaxos "] {
        let l = line(name);
        assert!(
            l.contains("ops/s at 16 outstanding") && l.ends_with(" µs at 1"),
            "{l}"
        );
    }
    // Every line says what an operation cost in CPU at the top load, all threads together.
    for name in [
        "unreplicated, 1 server",
        "unreplicated, 1 of 3 serving",
        "raft ",
        "multipaxos ",
    ] {
        let l = line(name);
        let ns: f64 = l
            .split(" ns of CPU an op")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no CPU figure in {l}"));
        assert!(ns > 0.0, "{l}");
    }
    let report = o.report.clone().expect("a report");
    assert!(
        text.contains(&format!("report: {}", report.display())),
        "{text}"
    );
    for f in [
        "checks.json",
        "zoo.json",
        "bench.json",
        "recovery.json",
        "catch_up.json",
        "restart.json",
    ] {
        assert!(dir.join("data").join(f).exists(), "no {f}");
    }

    let html = page(&o);
    let checks = section_text(&html, "checks");
    assert!(
        checks.contains("raft") && checks.contains("multipaxos"),
        "{checks}"
    );
    assert!(
        checks.contains("pass") && !checks.contains("FAIL"),
        "{checks}"
    );
    assert!(section_text(&html, "zoo").contains("double-vote"));
    for id in ["throughput", "latency", "reads", "recovery"] {
        let sel = Selector::parse(&format!("section#{id} svg")).expect("a valid selector");
        assert!(html.select(&sel).next().is_some(), "no chart in #{id}");
    }
    // The recovery section has the crash timeline and both snapshot tables.
    let recovery = section_text(&html, "recovery");
    for needle in [
        "first commit",
        "after the leader crash",
        "slots behind",
        "serving after",
    ] {
        assert!(recovery.contains(needle), "{needle:?} not in {recovery}");
    }
    assert!(!recovery.contains("No snapshot measurements"), "{recovery}");
    // The comparison says what the ceiling includes, with both of its variants.
    let throughput = section_text(&html, "throughput");
    assert!(
        throughput.contains("same host path") && throughput.contains("serving 1 of n"),
        "{throughput}"
    );
    // No criterion report here: the section says how to make it.
    assert!(section_text(&html, "criterion").contains("cargo bench"));
    clean(&dir);
}

#[test]
fn a_violation_fails_its_stage_exits_1_and_the_report_is_still_written() {
    let dir = temp_dir("violation");
    let entry = zoo::find("double-vote").expect("registered");
    let Detector::Model { config, depth, .. } = entry.detector else {
        panic!("double-vote is model-checked");
    };
    let mut opts = tiny(&dir);
    opts.check = config;
    assert!(
        opts.check.protocol.set_bug(Bug::DoubleVote),
        "tests carry the bug switches"
    );
    opts.search.depth = Some(depth);
    opts.zoo.clear();
    opts.outstanding = vec![4];
    let (o, text) = run(&opts);
    assert_eq!(o.exit_code(), 1, "{text}");
    assert!(
        matches!(status(&o, "model checks"), StageStatus::Failed(why) if why.contains("raft")),
        "{text}"
    );
    assert!(text.contains("raft        FAILED"), "{text}");
    assert!(text.contains("VIOLATED: election safety"), "{text}");
    assert!(
        text.contains("reproduce with: paxraft check raft"),
        "{text}"
    );
    // The stages after it ran anyway.
    for name in ["fault schedules", "throughput", "report"] {
        assert_eq!(status(&o, name), &StageStatus::Passed, "{name}: {text}");
    }
    assert!(text.contains("tour FAILED in model checks"), "{text}");
    assert!(section_text(&page(&o), "checks").contains("FAIL"));
    clean(&dir);
}

#[test]
fn broken_stages_are_reported_as_errors_and_the_others_still_run() {
    let dir = temp_dir("broken");
    let mut opts = tiny(&dir);
    opts.sim.servers = 0;
    opts.outstanding = vec![0];
    opts.zoo.clear();
    let (o, text) = run(&opts);
    assert_eq!(o.exit_code(), 1, "{text}");
    assert!(
        matches!(status(&o, "fault schedules"), StageStatus::Error(e) if e.contains("--servers")),
        "{text}"
    );
    assert!(
        matches!(status(&o, "throughput"), StageStatus::Error(e) if e.contains("at least 1")),
        "{text}"
    );
    assert!(
        text.contains("fault schedules: error: bad fault-schedule options"),
        "{text}"
    );
    for name in ["model checks", "report"] {
        assert_eq!(status(&o, name), &StageStatus::Passed, "{name}: {text}");
    }
    assert!(
        text.contains("tour FAILED in fault schedules, throughput"),
        "{text}"
    );
    let html = page(&o);
    assert!(section_text(&html, "checks").contains("multipaxos"));
    assert!(section_text(&html, "throughput").contains("cargo bench"));
    clean(&dir);
}

/// A printing command whose reader goes away (`paxraft overview | head -1`) ends as Unix
/// tools do, by SIGPIPE or having written everything first, never with a panic on the
/// broken pipe.
#[test]
fn a_closed_stdout_ends_a_printing_command_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paxraft"))
        .arg("overview")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the paxraft binary runs");
    // Close the read end before reading anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}
