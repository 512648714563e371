//! The HTML report, rendered from fixed sample results, has the expected structure: every
//! section, every chart an inline `<svg>` with axis labels and drawn data, no broken links.

use std::path::Path;

use paxraft::report::results::{
    BenchPoint, CheckResult, PropertyResult, RecoveryRun, Results, Trace, TraceStep, ZooEntry,
};
use scraper::{Html, Selector};

fn point(protocol: &str, servers: usize, outstanding: usize, ops: f64) -> BenchPoint {
    BenchPoint {
        protocol: protocol.into(),
        servers,
        outstanding,
        payload_bytes: 0,
        ops_per_sec: ops,
        p50_us: 10.0 + outstanding as f64,
        p99_us: 40.0 + 2.0 * outstanding as f64,
        p999_us: 90.0 + 3.0 * outstanding as f64,
        ops: 10_000,
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
    let prop = |name: &str, kind: &str, status: &str| PropertyResult {
        name: name.into(),
        kind: kind.into(),
        status: status.into(),
    };
    Results {
        bench,
        recovery: vec![RecoveryRun {
            protocol: "raft".into(),
            servers: 3,
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
        }],
        checks: vec![CheckResult {
            protocol: "raft".into(),
            config: "--servers 3 --clients 2".into(),
            unique_states: 123_456,
            total_states: 400_000,
            max_depth: 31,
            seconds: 2.5,
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
        }],
    }
}

#[test]
fn report_from_sample_results_has_every_section_and_chart() {
    let dir = std::env::temp_dir().join(format!("paxraft-report-test-{}", std::process::id()));
    let results = sample();
    results.save(&dir).unwrap();
    // What was saved is what is loaded: `paxraft report` rebuilds from these files.
    assert_eq!(Results::load(&dir).unwrap(), results);
    let path = paxraft::report::write(&dir).unwrap();
    let page = std::fs::read_to_string(&path).unwrap();
    let doc = Html::parse_document(&page);
    let sel = |s: &str| Selector::parse(s).unwrap();

    for id in ["checks", "zoo", "throughput", "latency", "recovery"] {
        assert_eq!(
            doc.select(&sel(&format!("section#{id}"))).count(),
            1,
            "section {id}"
        );
    }
    // One chart in each of throughput, latency, recovery, and the zoo's trace.
    let chart_in = |id: &str| {
        let svgs: Vec<_> = doc.select(&sel(&format!("section#{id} svg"))).collect();
        assert_eq!(svgs.len(), 1, "one chart in {id}");
        svgs[0]
    };
    for id in ["throughput", "latency", "recovery"] {
        let svg = chart_in(id);
        let texts: String = svg.select(&sel("text")).flat_map(|t| t.text()).collect();
        assert!(
            texts.contains("ops/s") || texts.contains("µs"),
            "{id}: y axis label: {texts}"
        );
        assert!(
            texts.contains("outstanding") || texts.contains("time, ms"),
            "{id}: x axis label: {texts}"
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
    let legend: String = chart_in("throughput")
        .select(&sel("text"))
        .flat_map(|t| t.text())
        .collect();
    assert!(
        legend.contains("raft, 3 servers") && legend.contains("unreplicated"),
        "legend: {legend}"
    );
    // The sequence diagram names every actor and every step, escaped.
    let seq: String = chart_in("zoo")
        .select(&sel("text"))
        .flat_map(|t| t.text())
        .collect();
    for needle in ["n0", "n2", "1. election timeout <term 1>", "3. RequestVote"] {
        assert!(seq.contains(needle), "{needle} in {seq}");
    }
    // Tables carry the numbers.
    let checks: String = doc
        .select(&sel("section#checks td"))
        .flat_map(|t| t.text())
        .collect();
    assert!(checks.contains("123456") && checks.contains("pass"));
    let zoo: String = doc
        .select(&sel("section#zoo"))
        .flat_map(|t| t.text())
        .collect();
    assert!(zoo.contains("1 of 1 known bugs caught") && zoo.contains("election safety"));
    // No broken links to local files.
    for a in doc.select(&sel("a[href]")) {
        let href = a.value().attr("href").unwrap();
        if !href.starts_with('#') && !href.contains("://") {
            assert!(dir.join(href).exists(), "broken link {href}");
        }
    }
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
    assert!(muted.iter().any(|m| m.contains("check raft")));
    assert_eq!(doc.select(&Selector::parse("svg").unwrap()).count(), 0);
}
