//! The HTML report, rendered from fixed sample results, has the expected structure: every
//! section, every chart an inline `<svg>` with axis labels and drawn data, no broken links.

use std::path::Path;

use paxraft::results::{
    BenchPoint, CatchUpRun, CeilingRatio, CheckResult, CleanReplay, CpuUse, Disruption,
    PropertyResult, Provenance, RecoveryRun, ReplayFailure, ReplayKind, RestartRun, Results, Trace,
    TraceStep, Transport, ZooEntry,
};
use scraper::{Html, Selector};

fn point(protocol: &str, servers: usize, outstanding: usize, ops: f64) -> BenchPoint {
    sized(protocol, servers, outstanding, 0, ops)
}

fn sized(protocol: &str, servers: usize, outstanding: usize, bytes: usize, ops: f64) -> BenchPoint {
    BenchPoint {
        protocol: protocol.into(),
        servers,
        outstanding,
        payload_bytes: bytes,
        ops_per_sec: ops,
        p50_us: 10.0 + outstanding as f64,
        p99_us: 40.0 + 2.0 * outstanding as f64,
        p999_us: 90.0 + 3.0 * outstanding as f64,
        ops: 10_000,
        errors: 0,
        transport: Transport::InProcess,
        provenance: Some(stamp("abc1234", "2026-05-01T09:30:00Z")),
        snapshot_every: Some(10_000),
        cpu: None,
        elections: Some(0),
    }
}

/// CPU per operation: the clients', each server's, and who led.
fn cpu(clients_ns: f64, servers_ns: &[Option<f64>], leader: Option<usize>) -> CpuUse {
    CpuUse {
        clients_ns,
        servers_ns: servers_ns.to_vec(),
        leader,
    }
}

fn stamp(commit: &str, date: &str) -> Provenance {
    Provenance {
        commit: commit.into(),
        date: date.into(),
        bug_switches: false,
    }
}

fn sample() -> Results {
    let mut bench = Vec::new();
    for (proto, n, scale) in [
        ("raft", 3, 1.0),
        ("multipaxos", 3, 0.9),
        ("unreplicated", 1, 2.0),
    ] {
        for (k, out) in [1, 16, 256, 1024].into_iter().enumerate() {
            bench.push(point(proto, n, out, scale * 1e5 * (k + 1) as f64));
        }
    }
    // Raft at 1024 outstanding measured its CPU per operation (the other points, as if saved
    // before it was, did not).
    bench[3].cpu = Some(cpu(
        130.0,
        &[Some(110.0), Some(180.0), Some(100.0)],
        Some(1),
    ));
    let prop = |name: &str, kind: &str, status: &str| PropertyResult {
        name: name.into(),
        kind: kind.into(),
        status: status.into(),
    };
    Results {
        bench,
        recovery: vec![
            RecoveryRun {
                protocol: "raft".into(),
                servers: 3,
                event: Disruption::Crash,
                crash_at_ms: 100.0,
                samples: vec![
                    (0.0, 9e5),
                    (50.0, 9.1e5),
                    (100.0, 2e5),
                    (150.0, 0.0),
                    (200.0, 8.8e5),
                ],
                time_to_first_commit_ms: 212.0,
                before_ops_per_sec: Some(9.05e5),
                min_ops_per_sec: Some(0.0),
                recovered_ms: Some(100.0),
                provenance: Some(stamp("abc1234", "2026-05-01T09:40:00Z")),
            },
            RecoveryRun {
                protocol: "raft".into(),
                servers: 3,
                event: Disruption::Transfer,
                crash_at_ms: 100.0,
                samples: vec![(0.0, 9e5), (50.0, 9.1e5), (100.0, 7e5), (150.0, 9e5)],
                time_to_first_commit_ms: 0.3,
                before_ops_per_sec: Some(9.05e5),
                min_ops_per_sec: Some(7e5),
                recovered_ms: Some(50.0),
                provenance: Some(stamp("abc1234", "2026-05-01T09:40:00Z")),
            },
        ],
        checks: vec![CheckResult {
            protocol: "raft".into(),
            config: "--servers 3 --clients 2".into(),
            unique_states: 123_456,
            total_states: 400_000,
            max_depth: 31,
            cuts: Some([1_000, 20, 300]),
            under_approximation: false,
            lapse_folded: false,
            depth_inexact: false,
            seconds: 2.5,
            bytes_per_state: Some(913.4),
            provenance: Some(stamp("def5678-dirty", "2026-04-30T18:00:00Z")),
            properties: vec![
                prop("linearizable", "always", "holds"),
                prop("a leader is elected", "sometimes", "reached"),
            ],
        }],
        zoo: vec![ZooEntry {
            code: "R5".into(),
            name: "double-vote".into(),
            protocol: "raft".into(),
            caught: true,
            property: Some("election safety".into()),
            trace_len: Some(3),
            states: 812,
            seconds: 0.02,
            trace: Some(Trace {
                actors: vec!["n0".into(), "n1".into(), "n2".into()],
                steps: vec![
                    TraceStep {
                        actor: "n0".into(),
                        to: None,
                        label: "election timeout <term 1>".into(),
                    },
                    TraceStep {
                        actor: "n0".into(),
                        to: Some("n2".into()),
                        label: "RequestVote".into(),
                    },
                    TraceStep {
                        actor: "n1".into(),
                        to: Some("n2".into()),
                        label: "RequestVote".into(),
                    },
                ],
            }),
            clean_replay: Some(CleanReplay {
                kind: ReplayKind::Path,
                steps: 2,
                skipped: 1,
                failure: None,
                seconds: 0.001,
            }),
            provenance: Some(stamp("0a1b2c3", "2026-05-02T07:00:00Z")),
        }],
        catch_up: vec![CatchUpRun {
            protocol: "raft".into(),
            behind: 1_000_000,
            every: 10_000,
            seconds: 0.007,
            snapshots: 1,
            snapshot_bytes: 8_128,
            provenance: Some(stamp("abc1234", "2026-05-01T09:40:00Z")),
        }],
        restarts: vec![RestartRun {
            protocol: "multipaxos".into(),
            committed: 1_000_001,
            every: 10_000,
            log_entries: 4_321,
            election_timeout_ms: (150.0, 300.0),
            serve_ms: 412.5,
            rebuilt_ms: 3.26,
            provenance: Some(stamp("abc1234", "2026-05-01T09:40:00Z")),
        }],
        ceiling: vec![CeilingRatio {
            protocol: "raft".into(),
            servers: 3,
            outstanding: 1024,
            // Shares of the ceiling alone 40%, 50%, 45%; of the serving node 50%, 25%, 30%.
            rounds: vec![
                [2.0e6, 5.0e6, 4.0e6],
                [2.5e6, 5.0e6, 10.0e6],
                [1.8e6, 4.0e6, 6.0e6],
            ],
            // Where the CPU went: medians of 3 rounds (a round without a measurement, as
            // saved before it was taken, is left out).
            cpu: vec![
                [
                    Some(cpu(
                        140.0,
                        &[Some(210.0), Some(130.0), Some(150.0)],
                        Some(0),
                    )),
                    Some(cpu(150.0, &[Some(90.0)], Some(0))),
                    Some(cpu(150.0, &[Some(95.0), Some(1.0), Some(1.0)], Some(0))),
                ],
                [
                    Some(cpu(
                        160.0,
                        &[Some(230.0), Some(150.0), Some(170.0)],
                        Some(0),
                    )),
                    Some(cpu(130.0, &[Some(100.0)], Some(0))),
                    Some(cpu(140.0, &[Some(97.0), Some(3.0), Some(3.0)], Some(0))),
                ],
                [
                    // A restarted follower: its share (and so the total) is unknown.
                    Some(cpu(150.0, &[Some(220.0), None, Some(160.0)], Some(0))),
                    None,
                    None,
                ],
            ],
            errors: 0,
            elections: 0,
            provenance: Some(stamp("abc1234", "2026-05-01T09:45:00Z")),
        }],
        mutants: None,
    }
}

/// The page `write_results` renders for `results` in a fresh report directory laid out as in
/// the workspace (`reports/` beside `target/`), with criterion's index present or not.
fn render_in_tree(
    name: &str,
    results: &Results,
    with_criterion: bool,
) -> (std::path::PathBuf, Html) {
    let root = std::env::temp_dir().join(format!("paxraft-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("reports");
    if with_criterion {
        let c = root.join("target/criterion/report");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("index.html"), "<html></html>").unwrap();
    }
    results.save(&dir).unwrap();
    // What was saved is what is loaded: `paxraft report` rebuilds from these files.
    assert_eq!(&Results::load(&dir).unwrap(), results);
    let path = paxraft::report::write(&dir).unwrap();
    let page = std::fs::read_to_string(path).unwrap();
    (root, Html::parse_document(&page))
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: scraper::ElementRef<'_>) -> String {
    e.text().collect()
}

/// The texts of the elements of `doc` that `selector` selects, in document order.
fn texts(doc: &Html, selector: &str) -> Vec<String> {
    doc.select(&sel(selector)).map(text).collect()
}

/// The cells' texts of each of `rows` after the first (the header).
fn body_rows<'a>(rows: impl Iterator<Item = scraper::ElementRef<'a>>) -> Vec<Vec<String>> {
    rows.skip(1)
        .map(|r| r.select(&sel("td")).map(text).collect())
        .collect()
}

#[test]
fn report_from_sample_results_has_every_section_and_chart() {
    let mut results = sample();
    // A second payload size and cluster size: one more chart in throughput and latency.
    for (k, out) in [1, 16, 256, 1024].into_iter().enumerate() {
        results
            .bench
            .push(sized("raft", 5, out, 128, 5e4 * (k + 1) as f64));
        results
            .bench
            .push(sized("unreplicated", 1, out, 128, 2e5 * (k + 1) as f64));
    }
    // A depth-bounded run (as the model-check bench saves) that did not reach an example.
    let mut bounded = results.checks[0].clone();
    bounded.config = "--depth 12".into();
    bounded.properties[1].status = "not reached".into();
    results.checks.push(bounded);
    let mut broken = results.checks[0].clone();
    broken.config = "--depth 9".into();
    broken.properties[0].status = "violated".into();
    results.checks.push(broken);
    let (root, doc) = render_in_tree("full", &results, true);
    let dir = root.join("reports");
    // Every sample point compacted, and the section says how often.
    let throughput = text(doc.select(&sel("section#throughput")).next().unwrap());
    assert!(
        throughput.contains("compacted their logs every 10000 committed slots")
            && !throughput.contains("without compaction"),
        "{throughput}"
    );

    for id in [
        "checks",
        "zoo",
        "throughput",
        "latency",
        "recovery",
        "criterion",
    ] {
        assert_eq!(
            doc.select(&sel(&format!("section#{id}"))).count(),
            1,
            "section {id}"
        );
    }
    let charts_in = |id: &str| {
        doc.select(&sel(&format!("section#{id} svg")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        charts_in("throughput").len(),
        2,
        "a throughput chart per payload size"
    );
    assert_eq!(
        charts_in("latency").len(),
        2,
        "a latency chart per payload size"
    );
    assert_eq!(charts_in("recovery").len(), 1);
    assert_eq!(charts_in("zoo").len(), 1, "one sequence diagram per trace");
    // Every chart on the page is an inline SVG with a title, axes and drawn data.
    for (id, x_label, y_label) in [
        ("throughput", "outstanding requests", "committed ops/s"),
        ("latency", "outstanding requests", "latency, µs"),
        ("recovery", "time, ms", "committed ops/s"),
    ] {
        for svg in charts_in(id) {
            let texts: String = svg.select(&sel("text")).map(text).collect();
            assert!(texts.contains(y_label), "{id}: y axis label: {texts}");
            assert!(texts.contains(x_label), "{id}: x axis label: {texts}");
            assert!(
                svg.select(&sel("line")).count() >= 2,
                "{id}: axes are drawn"
            );
            assert!(
                svg.select(&sel("polyline")).count() >= 1,
                "{id}: a data line is drawn"
            );
            assert!(
                svg.select(&sel("circle")).count() >= 4,
                "{id}: data points are drawn"
            );
        }
    }
    let titles: Vec<String> = doc
        .select(&sel("svg"))
        .map(|s| s.select(&sel("text")).map(text).collect())
        .collect();
    assert!(titles[..]
        .iter()
        .any(|t| t.contains("Throughput, 128-byte commands")));
    let legend: String = charts_in("throughput")[0]
        .select(&sel("text"))
        .map(text)
        .collect();
    assert!(
        legend.contains("raft, 3 servers")
            && legend.contains("multipaxos, 3 servers")
            && legend.contains("unreplicated"),
        "legend: {legend}"
    );
    let legend: String = charts_in("latency")[0]
        .select(&sel("text"))
        .map(text)
        .collect();
    assert!(
        legend.contains("raft, 3 servers p50") && legend.contains("raft, 3 servers p99"),
        "legend: {legend}"
    );
    // The sequence diagram names every actor and every step, escaped.
    let seq: String = charts_in("zoo")[0].select(&sel("text")).map(text).collect();
    for needle in ["n0", "n2", "1. election timeout <term 1>", "3. RequestVote"] {
        assert!(seq.contains(needle), "{needle} in {seq}");
    }
    // Tables carry the numbers.
    let checks: String = doc.select(&sel("section#checks td")).map(text).collect();
    assert!(
        checks.contains("123456")
            && checks.contains("pass")
            && checks.contains("--servers 3 --clients 2")
    );
    assert!(
        checks.contains("49.4k"),
        "states/s = 123456 / 2.5 s: {checks}"
    );
    assert!(checks.contains("913"), "bytes/state, rounded: {checks}");
    // Each run's properties: counted on one line, with a violation or an example not
    // reached beside the count, and the whole list folded.
    assert!(
        checks.contains("always 1/1 hold · sometimes 1/1 reached")
            && checks.contains("always 1/1 hold · sometimes 0/1 reached")
            && checks.contains("always 0/1 hold · sometimes 1/1 reached"),
        "{checks}"
    );
    let unfolded = texts(&doc, "section#checks td > span");
    assert_eq!(unfolded, ["not reached", "violated"], "{checks}");
    assert_eq!(doc.select(&sel("section#checks td > details")).count(), 3);
    let zoo = text(doc.select(&sel("section#zoo")).next().unwrap());
    assert!(zoo.contains("1 of 1 known bugs caught") && zoo.contains("election safety"));
    // The comparison at the highest load: multipaxos 0.9 x raft, raft 0.5 x unreplicated.
    let cmp = texts(&doc, "section#throughput table tr");
    assert!(
        cmp.iter()
            .any(|r| r.contains("90%") && r.contains("50%") && r.contains("45%")),
        "{cmp:?}"
    );
    // Side by side with the ceiling: the median share and the range over the rounds.
    let side = text(
        doc.select(&sel(
            "section#throughput h3#ceiling-side-by-side + p + table",
        ))
        .next()
        .expect("the side-by-side table after its provenance note"),
    );
    assert!(
        side.contains("45% (40-50%)") && side.contains("30% (25-50%)"),
        "{side}"
    );
    // Where the CPU went, medians over the rounds that measured it: the protocol's leader,
    // its followers' mean and every thread together (the round with a restarted follower
    // counts for the clients and the leader only); the ceiling's server, and no other
    // server beside it when alone.
    let rows: Vec<Vec<String>> =
        body_rows(doc.select(&sel("section#throughput table#ceiling-cpu tr")));
    assert_eq!(
        rows,
        [
            ["raft, 3 servers", "150", "220", "150", "670"],
            ["unreplicated alone", "140", "95", "-", "235"],
            ["unreplicated serving 1 of 3", "145", "96", "2", "245"],
        ]
    );
    let lat = text(doc.select(&sel("section#latency table")).next().unwrap());
    let cpu_cells = texts(&doc, "section#latency table tr td:nth-child(10)");
    assert_eq!(
        cpu_cells.iter().filter(|c| *c == "-").count(),
        cpu_cells.len() - 1
    );
    assert!(
        cpu_cells.contains(&"130 / 180 / 520".to_string()),
        "{cpu_cells:?}"
    );
    assert!(
        lat.contains("p99.9") && lat.contains("3162.0"),
        "p99.9 of 1024 outstanding: {lat}"
    );
    let rec = text(doc.select(&sel("section#recovery")).next().unwrap());
    assert!(
        rec.contains("first commit 212.0 ms after the leader crash")
            && rec.contains("back to 90% after 100 ms")
            && rec.contains("leadership transfer answered 0.3 ms after asking")
            && rec.contains("back to 90% after 50 ms"),
        "{rec}"
    );
    // Criterion's report is linked, and no link to a local file is broken.
    let links: Vec<&str> = doc
        .select(&sel("a[href]"))
        .map(|a| a.value().attr("href").unwrap())
        .collect();
    assert!(
        links
            .iter()
            .any(|h| h.ends_with("criterion/report/index.html")),
        "{links:?}"
    );
    for href in links {
        if let Some(anchor) = href.strip_prefix('#') {
            assert_eq!(
                doc.select(&sel(&format!("#{anchor}"))).count(),
                1,
                "dangling anchor {href}"
            );
        } else if !href.contains("://") {
            assert!(dir.join(href).exists(), "broken link {href}");
        }
    }
    assert_eq!(doc.select(&sel("script")).count(), 0, "no JavaScript");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn without_criterion_output_the_report_links_nothing_broken() {
    let (root, doc) = render_in_tree("nocrit", &sample(), false);
    let note = text(doc.select(&sel("section#criterion")).next().unwrap());
    assert!(note.contains("cargo bench"), "{note}");
    for a in doc.select(&sel("a[href]")) {
        let href = a.value().attr("href").unwrap();
        assert!(href.starts_with('#'), "only in-page links: {href}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_chart_that_cannot_be_drawn_says_so_instead_of_an_empty_svg() {
    // Broken input the structure checks above must not accept: a trace naming an actor
    // that has no column.
    let mut results = sample();
    let trace = results.zoo[0].trace.as_mut().unwrap();
    trace.steps[1].to = Some("n9".into());
    let page = paxraft::report::html::render(&results, "", None::<&Path>);
    let doc = Html::parse_document(&page);
    assert_eq!(doc.select(&sel("section#zoo svg")).count(), 0);
    let bad = text(
        doc.select(&sel("section#zoo p.bad"))
            .next()
            .expect("an error note"),
    );
    assert!(bad.contains("n9"), "{bad}");
}

#[test]
fn merging_results_replaces_only_what_was_measured_again() {
    let dir = std::env::temp_dir().join(format!("paxraft-report-merge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Results::merge_bench(&dir, &[point("raft", 3, 1, 1.0), point("raft", 3, 16, 2.0)]).unwrap();
    Results::merge_bench(
        &dir,
        &[point("raft", 3, 16, 3.0), point("multipaxos", 3, 16, 4.0)],
    )
    .unwrap();
    let bench = Results::load(&dir).unwrap().bench;
    let got: Vec<(&str, usize, f64)> = bench
        .iter()
        .map(|p| (p.protocol.as_str(), p.outstanding, p.ops_per_sec))
        .collect();
    assert_eq!(
        got,
        vec![("multipaxos", 16, 4.0), ("raft", 1, 1.0), ("raft", 16, 3.0)]
    );
    // A short measurement (the tour's) does not replace a longer one of the same point, but
    // adds points not measured yet and replaces shorter ones.
    let short = |p: BenchPoint| BenchPoint { ops: 100, ..p };
    Results::merge_bench_short(
        &dir,
        &[
            short(point("raft", 3, 16, 9.0)),
            short(point("raft", 3, 256, 5.0)),
        ],
    )
    .unwrap();
    Results::merge_bench_short(
        &dir,
        &[BenchPoint {
            ops: 200,
            ..point("raft", 3, 256, 6.0)
        }],
    )
    .unwrap();
    let bench = Results::load(&dir).unwrap().bench;
    let raft: Vec<(usize, f64)> = bench
        .iter()
        .filter(|p| p.protocol == "raft")
        .map(|p| (p.outstanding, p.ops_per_sec))
        .collect();
    assert_eq!(raft, vec![(1, 1.0), (16, 3.0), (256, 6.0)]);
    let mut check = sample().checks[0].clone();
    Results::merge_checks(&dir, std::slice::from_ref(&check)).unwrap();
    check.seconds = 1.0;
    Results::merge_checks(&dir, std::slice::from_ref(&check)).unwrap();
    assert_eq!(Results::load(&dir).unwrap().checks, vec![check]);
    // Side-by-side shares: replaced by protocol, cluster size and load.
    let ceiling = sample().ceiling;
    let mut at_256 = ceiling[0].clone();
    at_256.outstanding = 256;
    Results::merge_ceiling(&dir, &[ceiling[0].clone(), at_256.clone()]).unwrap();
    let mut again = ceiling[0].clone();
    again.rounds.truncate(1);
    Results::merge_ceiling(&dir, std::slice::from_ref(&again)).unwrap();
    assert_eq!(Results::load(&dir).unwrap().ceiling, vec![at_256, again]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The recovery section's snapshot tables: each measurement with issue 17's target beside it,
/// and a restart over its target says so.
#[test]
fn the_recovery_section_shows_catch_up_and_restart_against_their_targets() {
    let page = paxraft::report::html::render(&sample(), "", None::<&Path>);
    let doc = Html::parse_document(&page);
    let rows: Vec<Vec<String>> = doc
        .select(&sel("section#recovery table tr"))
        .map(|tr| tr.select(&sel("td")).map(text).collect())
        .filter(|cells: &Vec<String>| !cells.is_empty())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "raft",
                "1000000",
                "10000",
                "0.007 s",
                "1",
                "8128",
                "within the target"
            ],
            vec![
                "multipaxos",
                "1000001",
                "4321",
                "150–300 ms",
                "412.5 ms (OVER)",
                "400 ms",
                "3.3 ms"
            ],
        ]
    );
    let dir = std::env::temp_dir().join(format!("paxraft-report-snap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = sample();
    Results::merge_catch_up(&dir, &s.catch_up).unwrap();
    Results::merge_restarts(&dir, &s.restarts).unwrap();
    let loaded = Results::load(&dir).unwrap();
    assert_eq!((loaded.catch_up, loaded.restarts), (s.catch_up, s.restarts));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_report_says_how_to_fill_it() {
    let page = paxraft::report::html::render(&Results::default(), "", None::<&Path>);
    let doc = Html::parse_document(&page);
    let muted: Vec<String> = doc
        .select(&Selector::parse("p.muted").unwrap())
        .map(|p| p.text().collect())
        .collect();
    assert!(muted.iter().any(|m| m.contains("cargo bench")));
    assert!(muted
        .iter()
        .any(|m| m.contains("No snapshot measurements yet") && m.contains("--bench recovery")));
    assert!(muted.iter().any(|m| m.contains("check raft")));
    assert_eq!(doc.select(&Selector::parse("svg").unwrap()).count(), 0);
}

fn zoo_entry(code: &str, caught: bool, clean_replay: Option<CleanReplay>) -> ZooEntry {
    ZooEntry {
        code: code.into(),
        name: format!("bug-{code}"),
        protocol: "raft".into(),
        caught,
        property: caught.then(|| "settles".to_string()),
        trace_len: caught.then_some(7),
        states: 10,
        seconds: 0.5,
        trace: None,
        clean_replay,
        provenance: Some(stamp("0a1b2c3", "2026-05-02T07:00:00Z")),
    }
}

/// The text of each cell of the zoo table's rows (header row excluded), and the header.
fn zoo_table(doc: &Html) -> (Vec<String>, Vec<Vec<String>>) {
    let table = doc
        .select(&sel("section#zoo table"))
        .next()
        .expect("a table");
    let header = table.select(&sel("th")).map(text).collect();
    let rows = body_rows(table.select(&sel("tr")));
    (header, rows)
}

#[test]
fn the_zoo_table_shows_the_clean_replay_next_to_caught() {
    let mut results = sample();
    results.zoo.push(zoo_entry(
        "R8",
        true,
        Some(CleanReplay {
            kind: ReplayKind::Schedule,
            steps: 1003,
            skipped: 0,
            failure: Some(ReplayFailure {
                property: "settles".into(),
                step: 1003,
                detail: "not settled within 1 fault-free steps: c0 <waits>".into(),
            }),
            seconds: 0.01,
        }),
    ));
    results.zoo.push(zoo_entry("R9", false, None));
    let page = paxraft::report::html::render(&results, "", None::<&Path>);
    let doc = Html::parse_document(&page);
    let (header, rows) = zoo_table(&doc);
    let caught = header.iter().position(|h| h == "caught").unwrap();
    assert_eq!(header[caught + 1], "clean replay", "{header:?}");
    let col = caught + 1;
    assert_eq!(rows[0][col], "clean (2 of 3 actions, 1 skipped)");
    // Not clean: the property, the step and why, marked bad (escaped).
    assert_eq!(
        rows[1][col],
        "NOT CLEAN: settles at step 1003not settled within 1 fault-free steps: c0 <waits>"
    );
    let bad = texts(&doc, "section#zoo td.bad");
    assert!(
        bad.iter().any(|b| b.starts_with("NOT CLEAN: settles")),
        "{bad:?}"
    );
    // An escaped bug has nothing to replay: absent, not passed.
    assert_eq!(rows[2][col], "—");
    let zoo = text(doc.select(&sel("section#zoo p")).next().unwrap());
    assert!(
        zoo.contains("2 of 3 known bugs caught")
            && zoo.contains("1 of 2 counterexamples pass when replayed with the bug off"),
        "{zoo}"
    );
}

#[test]
fn results_saved_before_replays_and_stamps_load_and_show_as_unknown() {
    // Files as earlier versions wrote them: no clean replay, no date, no commit.
    let dir = std::env::temp_dir().join(format!("paxraft-report-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("zoo.json"),
        r#"[{"code": "R2", "name": "vote-without-log-check", "protocol": "raft", "caught": true,
             "property": "leader completeness", "trace_len": 8, "states": 61703,
             "seconds": 0.34, "trace": null}]"#,
    )
    .unwrap();
    std::fs::write(
        data.join("bench.json"),
        r#"[{"protocol": "raft", "servers": 3, "outstanding": 1, "payload_bytes": 0,
             "ops_per_sec": 1000.0, "p50_us": 4.5, "p99_us": 8.6, "p999_us": 44.0, "ops": 100}]"#,
    )
    .unwrap();
    std::fs::write(
        data.join("checks.json"),
        r#"[{"protocol": "raft", "config": "(defaults)", "unique_states": 10,
             "total_states": 20, "max_depth": 3, "seconds": 1.0, "properties": [],
             "command": "paxraft check raft"}]"#,
    )
    .unwrap();
    let results = Results::load(&dir).unwrap();
    assert_eq!(results.zoo[0].clean_replay, None);
    assert_eq!(results.zoo[0].provenance, None);
    assert_eq!(results.bench[0].provenance, None);
    assert_eq!(results.bench[0].snapshot_every, None);
    assert_eq!(results.checks[0].provenance, None);
    let doc = Html::parse_document(
        &std::fs::read_to_string(paxraft::report::write(&dir).unwrap()).unwrap(),
    );
    let (header, rows) = zoo_table(&doc);
    let col = header.iter().position(|h| h == "clean replay").unwrap();
    assert_eq!(rows[0][col], "—", "absent, not passed");
    let saved = header.iter().position(|h| h == "saved").unwrap();
    assert_eq!(rows[0][saved], "unknown");
    let zoo = text(doc.select(&sel("section#zoo")).next().unwrap());
    assert!(
        !zoo.contains("pass when replayed")
            && zoo.contains("1 caught bug has no clean replay on record"),
        "{zoo}"
    );
    // A point saved before the benchmarks compacted is marked as such.
    let throughput = text(doc.select(&sel("section#throughput")).next().unwrap());
    assert!(
        throughput.contains("1 point ran without compaction"),
        "{throughput}"
    );
    for id in ["zoo", "checks", "throughput"] {
        let note = text(
            doc.select(&sel(&format!("section#{id} p.provenance")))
                .next()
                .unwrap_or_else(|| panic!("{id}: a provenance note")),
        );
        assert!(
            note == "1 result saved before results were stamped: commit and date unknown.",
            "{id}: {note}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_section_shows_the_date_and_commit_its_results_came_from() {
    let mut results = sample();
    // A merged file: points from two runs, and one saved before stamping.
    results.bench[1].provenance = Some(stamp("fff0000", "2026-04-01T00:00:00Z"));
    results.bench[2].provenance = None;
    let (root, doc) = render_in_tree("stamps", &results, false);
    let note = |id: &str| {
        text(
            doc.select(&sel(&format!("section#{id} p.provenance")))
                .next()
                .unwrap_or_else(|| panic!("{id}: a provenance note")),
        )
    };
    assert_eq!(
        note("checks"),
        "Saved from commit def5678-dirty, 2026-04-30T18:00:00Z."
    );
    assert_eq!(
        note("zoo"),
        "Saved from commit 0a1b2c3, 2026-05-02T07:00:00Z."
    );
    assert_eq!(
        note("recovery"),
        "Saved from commit abc1234, 2026-05-01T09:40:00Z."
    );
    // Newest commit first, with how many results each and when.
    assert_eq!(
        note("throughput"),
        "Saved from commit abc1234 (10 results, 2026-05-01T09:30:00Z); \
         commit fff0000 (1 result, 2026-04-01T00:00:00Z). \
         1 result saved before results were stamped: commit and date unknown."
    );
    let (header, rows) = zoo_table(&doc);
    let saved = header.iter().position(|h| h == "saved").unwrap();
    assert_eq!(rows[0][saved], "0a1b2c3, 2026-05-02");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_result_is_stamped_with_the_utc_date_and_the_commit_of_its_tree() {
    use paxraft::report::provenance::{commit_of, UNKNOWN_COMMIT};
    let p = Provenance::now();
    // UTC ISO 8601 to the second: 2026-05-01T09:30:00Z.
    let d = p.date.as_bytes();
    assert_eq!(p.date.len(), 20, "{}", p.date);
    for (i, c) in d.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{}", p.date),
            10 => assert_eq!(*c, b'T', "{}", p.date),
            13 | 16 => assert_eq!(*c, b':', "{}", p.date),
            19 => assert_eq!(*c, b'Z', "{}", p.date),
            _ => assert!(c.is_ascii_digit(), "{}", p.date),
        }
    }
    // The commit is the source tree's, as git says it (when this test runs in a checkout).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert!(
            p.commit == head || p.commit == format!("{head}-dirty"),
            "{} vs HEAD {head}",
            p.commit
        ),
        None => assert_eq!(p.commit, UNKNOWN_COMMIT),
    }
    // Outside any repository (or without git): unknown, no panic.
    let outside = std::env::temp_dir().join(format!("paxraft-no-repo-{}", std::process::id()));
    std::fs::create_dir_all(&outside).unwrap();
    assert_eq!(commit_of(&outside), UNKNOWN_COMMIT);
    assert_eq!(commit_of(&outside.join("missing")), UNKNOWN_COMMIT);
    std::fs::remove_dir_all(&outside).unwrap();
}

/// `scripts/mutants` writes `data/mutants.json`; the report reads it into its own section:
/// the score, the counts, every survivor with its status and reason, and where it came from.
/// Without the file the section says how to make it; a file that does not parse is an error.
#[test]
fn the_mutation_score_section_shows_the_score_and_every_survivor() {
    let root = std::env::temp_dir().join(format!("paxraft-report-mutants-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let page = |root: &Path| {
        let path = paxraft::report::write(root).unwrap();
        Html::parse_document(&std::fs::read_to_string(path).unwrap())
    };
    let section = |doc: &Html| -> String {
        doc.select(&sel("section#mutants"))
            .next()
            .map(text)
            .expect("a mutation section")
    };
    assert!(section(&page(&root)).contains("run scripts/mutants"));

    let json = serde_json::json!({
        "date": "2026-12-01T18:00:00Z", "commit": "0123456789abcdef", "dirty": false,
        "cargo_mutants": "27.1.0", "files": ["impls/src/sm.rs"], "partial": false,
        "test_command": "cargo nextest run",
        "counts": {"total": 30, "caught": 24, "missed": 2, "unviable": 3, "timeout": 1, "equivalent": 1},
        "score": 92.31, "score_without_equivalent": 96.0, "duration_seconds": 3725,
        "survivors": [
            {"file": "impls/src/sm.rs", "line": 86, "column": 9, "function": "Kv::len",
             "mutation": "replace Kv::len -> usize with 1", "name": "x", "status": "equivalent",
             "reason": "only the tests call it"},
            {"file": "impls/src/sm.rs", "line": 90, "column": 9, "function": "Kv::is_empty",
             "mutation": "replace Kv::is_empty -> bool with true", "name": "y", "status": "missed"}
        ],
        "timeouts": [{"file": "impls/src/sm.rs", "line": 99, "function": "f", "mutation": "loop"}],
        "stale_equivalents": [], "runs": [], "mutants": []
    });
    std::fs::write(data.join("mutants.json"), json.to_string()).unwrap();
    let doc = page(&root);
    let s = section(&doc);
    assert!(s.contains("92.31%"), "{s}");
    assert!(
        s.contains("24 caught, 2 survived (1 of them equivalent"),
        "{s}"
    );
    assert!(s.contains("1h 02m of testing"), "{s}");
    assert!(s.contains("commit 0123456"), "{s}");
    let rows = body_rows(doc.select(&sel("section#mutants tr")));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "impls/src/sm.rs:86");
    assert_eq!(rows[0][3], "equivalent");
    assert_eq!(rows[0][4], "only the tests call it");
    assert_eq!(rows[1][3], "missed");
    assert!(s.contains("Timed out: impls/src/sm.rs:99 loop"), "{s}");

    std::fs::write(data.join("mutants.json"), "{\"score\": \"high\"}").unwrap();
    let err = paxraft::report::write(&root).unwrap_err();
    assert!(err.to_string().contains("mutants.json"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

/// The elections a point measured are in the latency table: marked when there were any (the
/// loads have no faults), "-" where they were not counted (results saved before they were).
#[test]
fn elections_while_measured_are_marked_in_the_latency_table() {
    let mut results = Results::default();
    let mut unsteady = point("raft", 3, 1, 5e4);
    unsteady.elections = Some(15);
    let mut uncounted = point("multipaxos", 3, 1, 9e4);
    uncounted.elections = None;
    results.bench = vec![unsteady, uncounted, point("raft", 3, 1024, 2e6)];
    let page = paxraft::report::html::render(&results, "", None::<&Path>);
    let doc = Html::parse_document(&page);
    let marked = texts(&doc, "section#latency td.bad");
    assert_eq!(marked, vec!["15".to_string()], "{page}");
    let rows = body_rows(doc.select(&sel("section#latency table tr")));
    let elections: Vec<&str> = rows.iter().map(|r| r[11].as_str()).collect();
    assert_eq!(elections.len(), 3, "{rows:?}");
    assert!(
        elections.contains(&"-") && elections.contains(&"0"),
        "{rows:?}"
    );
}

/// A point's failed requests are in the latency table (marked), a result measured by a build
/// with the bug switches is flagged, and the comparison shows each protocol against the
/// ceiling alone and as the serving node of 3, with what the ceiling includes.
#[test]
fn errors_bug_switch_builds_and_both_ceilings_are_shown() {
    let mut results = Results::default();
    let mut failing = point("raft", 3, 1024, 9e5);
    failing.errors = 17;
    let mut zooed = point("multipaxos", 3, 1024, 8e5);
    if let Some(p) = zooed.provenance.as_mut() {
        p.bug_switches = true;
    }
    results.bench = vec![
        failing,
        zooed,
        point("unreplicated", 1, 1024, 3e6),
        point("unreplicated", 3, 1024, 2e6),
    ];
    let page = paxraft::report::html::render(&results, "", None::<&Path>);
    let doc = Html::parse_document(&page);
    let cells = texts(&doc, "section#latency td.bad");
    assert_eq!(cells, vec!["17".to_string()], "{page}");
    let warning = texts(&doc, "section#throughput p.bad");
    assert!(
        warning.len() == 1
            && warning[0]
                .contains("1 result was measured by a build carrying the bug-zoo switches"),
        "{warning:?}"
    );
    let rows = body_rows(doc.select(&sel("section#throughput table tr")));
    // raft 900k against 3M alone and 2M as 1 of 3: 30% · 45%.
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][7], "30% · 45%", "{rows:?}");
    assert!(text(
        doc.select(&sel("p.ceiling"))
            .next()
            .expect("the ceiling note")
    )
    .contains("same host path"));
}

#[test]
fn loopback_points_sit_beside_the_in_process_ones() {
    let mut results = Results::default();
    let over_tcp = |p: BenchPoint| BenchPoint {
        transport: Transport::Loopback,
        ..p
    };
    results.bench = vec![
        point("raft", 3, 1024, 8e5),
        over_tcp(point("raft", 3, 1024, 4e5)),
        point("multipaxos", 3, 1024, 6e5),
        // No in-process point at 64: a dash, not a wrong ratio.
        over_tcp(point("multipaxos", 3, 64, 1e5)),
        // An in-process point that never compacted is no baseline for one that did.
        BenchPoint {
            snapshot_every: None,
            cpu: None,
            ..point("multipaxos", 3, 16, 3e5)
        },
        over_tcp(point("multipaxos", 3, 16, 5e4)),
    ];
    let page = paxraft::report::html::render(&results, "", None::<&Path>);
    let doc = Html::parse_document(&page);
    let table = doc
        .select(&sel("section#throughput h3#loopback + table"))
        .next()
        .expect("the loopback table follows its heading");
    let rows = body_rows(table.select(&sel("tr")));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // protocol, servers, outstanding, bytes, in-process, loopback, share, p50s.
    assert_eq!(
        rows[0][..7],
        ["raft", "3", "1024", "0", "800.0k", "400.0k", "50%"]
    );
    assert_eq!(
        rows[1][..7],
        ["multipaxos", "3", "64", "0", "-", "100.0k", "-"]
    );
    assert_eq!(
        rows[2][..7],
        ["multipaxos", "3", "16", "0", "-", "50.0k", "-"]
    );
    // The in-process comparison still compares in-process points (raft 800k, not 400k).
    let compared = texts(&doc, "section#throughput h3 + table tr td");
    assert_eq!(compared[2], "800.0k", "{compared:?}");
    // The chart has a line of its own for the loopback points, the latency table says which.
    assert!(
        page.contains("raft, 3 servers, loopback"),
        "no loopback line in the chart"
    );
    let transports = texts(&doc, "section#latency tr td:nth-child(2)");
    assert_eq!(transports, ["in-process", "loopback"].repeat(3));
    // Saved beside each other: the transport is part of a point's identity.
    let dir = std::env::temp_dir().join(format!("paxraft-loopback-merge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Results::merge_bench(&dir, &results.bench[..2]).unwrap();
    assert_eq!(Results::load(&dir).unwrap().bench.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
