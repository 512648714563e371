//! The report's "Reads" section: throughput of read-heavy and mixed workloads per way of
//! serving reads, and one client's read latency. The benchmarks (bench/benches/throughput.rs,
//! groups `reads-*`) and the tour save [`ReadPoint`]s in `data/reads.json`; [`section`]
//! renders them.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::charts;
use super::html::{
    build_note, compaction_note, elections_cell, errors_cell, escape, provenance_note,
};
use crate::results::{self, BenchPoint, DATA_DIR};

/// The file under `reports/data/`.
pub const FILE: &str = "reads.json";

/// One measurement of a workload with reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadPoint {
    /// How reads were served: `log`, `read-index` or `follower-reads`.
    pub path: String,
    /// Percent of operations that were gets (the rest puts).
    pub read_percent: u8,
    /// The measurement (ops/s counts gets and puts alike).
    #[serde(flatten)]
    pub point: BenchPoint,
}

/// A read path against the log, measured side by side ([`crate::bench::side_by_side`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadRatio {
    /// The protocol.
    pub protocol: String,
    /// Servers in the cluster.
    pub servers: usize,
    /// Requests outstanding over all clients.
    pub outstanding: usize,
    /// Percent of operations that were gets.
    pub read_percent: u8,
    /// The path compared with the log: `read-index` or `lease`.
    pub path: String,
    /// Each round's ops/s: the log's, then this path's, measured one after the other.
    pub rounds: Vec<[f64; 2]>,
    /// Each round's CPU use per operation, the log's then this path's (empty in results
    /// saved before it was measured).
    #[serde(default)]
    pub cpu: Vec<[Option<results::CpuUse>; 2]>,
    /// Requests that failed over every point of the comparison (timeouts: not operations).
    pub errors: u64,
    /// Elections over every point of the comparison ([`BenchPoint::elections`]; 0 in results
    /// saved before they were counted).
    #[serde(default)]
    pub elections: u64,
    /// When and from what build.
    #[serde(default)]
    pub provenance: Option<results::Provenance>,
}

impl ReadRatio {
    /// This path's ops/s over the log's, round by round (rounds where the log did nothing are
    /// left out).
    pub fn ratios(&self) -> Vec<f64> {
        results::per_round(&self.rounds, 1, 0)
    }

    /// The median of [`ReadRatio::ratios`] ([`results::median`]).
    pub fn median(&self) -> f64 {
        results::median(self.ratios())
    }
}

/// The file of the side-by-side ratios under `reports/data/`.
pub const RATIOS_FILE: &str = "read_ratios.json";

/// The side-by-side ratios saved under `report_dir` (none when the file is missing).
pub fn load_ratios(report_dir: &Path) -> io::Result<Vec<ReadRatio>> {
    results::load(&report_dir.join(DATA_DIR).join(RATIOS_FILE))
}

/// Merge `ratios` into `report_dir/data/read_ratios.json`: each replaces the saved one of the
/// same protocol, cluster size, load, read share and path.
pub fn merge_ratios(report_dir: &Path, ratios: &[ReadRatio]) -> io::Result<()> {
    results::merge(&report_dir.join(DATA_DIR).join(RATIOS_FILE), ratios, |r| {
        (
            r.protocol.clone(),
            r.servers,
            r.outstanding,
            r.read_percent,
            r.path.clone(),
        )
    })
}

/// Which points are the same measurement.
fn key(p: &ReadPoint) -> (String, usize, usize, usize, String, u8) {
    (
        p.point.protocol.clone(),
        p.point.servers,
        p.point.outstanding,
        p.point.payload_bytes,
        p.path.clone(),
        p.read_percent,
    )
}

/// The points saved under `report_dir` (none when the file is missing).
pub fn load(report_dir: &Path) -> io::Result<Vec<ReadPoint>> {
    results::load(&report_dir.join(DATA_DIR).join(FILE))
}

/// Merge `points` into `report_dir/data/reads.json`: each replaces the saved point of the same
/// protocol, cluster size, load, path and read share; the others are kept.
pub fn merge(report_dir: &Path, points: &[ReadPoint]) -> io::Result<()> {
    results::merge(&report_dir.join(DATA_DIR).join(FILE), points, key)
}

/// Like [`merge`], for short measurements (the tour's): a saved point that measured more
/// operations is kept.
pub fn merge_short(report_dir: &Path, points: &[ReadPoint]) -> io::Result<()> {
    results::merge_by(
        &report_dir.join(DATA_DIR).join(FILE),
        points,
        key,
        |new, old| new.point.ops >= old.point.ops,
    )
}

/// What each path costs, in one sentence each.
const COSTS: &str = "<ul>\
<li><b>log</b>: a get is a command like a put: a log append at the leader, a replication \
round to a majority (and their durable writes), then it is applied and answered.</li>\
<li><b>read-index</b> (Ongaro's dissertation §6.4): no log write; the leader notes its commit \
point, confirms it still leads with one heartbeat round to a majority (reads that arrive \
together share it), and answers from its state machine once it has applied that point.</li>\
<li><b>lease</b> (§6.4.1): while a majority's acknowledgements promise that no other leader \
exists (the lease, shortened by the clock drift bound), the leader's state machine answers \
at once, on the client's own thread: no round, no message. The heartbeat renews it.</li>\
<li><b>follower-reads</b>: read index at whichever node the client reads from; a follower \
asks the leader for the read index (one round trip, plus the leader's confirmation round), \
waits until it has applied it, and answers, so reads spread over every node.</li></ul>";

/// Render the section into `h`: the points, then the side-by-side ratios.
pub fn section(h: &mut String, points: &[ReadPoint], ratios: &[ReadRatio]) {
    h.push_str("<section id=\"reads\"><h2>Reads</h2>");
    h.push_str(COSTS);
    points_part(h, points);
    ratios_part(h, ratios);
    h.push_str("</section>");
}

fn points_part(h: &mut String, points: &[ReadPoint]) {
    if points.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">No read measurements yet: run <code>cargo bench -p paxraft-bench --bench \
             throughput -- reads</code> (or the tour).</p>"
        );
        return;
    }
    h.push_str(&provenance_note(
        points.iter().map(|p| p.point.provenance.as_ref()),
    ));
    h.push_str(&build_note(
        points.iter().map(|p| p.point.provenance.as_ref()),
    ));
    h.push_str(&compaction_note(points.iter().map(|p| &p.point)));
    // The chart draws the sweep over read shares: the load with the most points (the lighter
    // one on a tie). Other loads (one mix at 1024 outstanding) are single points, in the table.
    let sweep = points
        .iter()
        .map(|p| p.point.outstanding)
        .filter(|&o| o > 1)
        .max_by_key(|&o| {
            (
                points.iter().filter(|p| p.point.outstanding == o).count(),
                std::cmp::Reverse(o),
            )
        });
    let loaded: Vec<&ReadPoint> = points
        .iter()
        .filter(|p| Some(p.point.outstanding) == sweep)
        .collect();
    if !loaded.is_empty() {
        match charts::reads(&loaded) {
            Ok(svg) => {
                h.push_str(&svg);
                let _ = write!(
                    h,
                    "<p class=\"muted\">The chart: {} outstanding requests; every load is in \
                     the table.</p>",
                    sweep.unwrap_or_default()
                );
            }
            Err(e) => {
                let _ = write!(h, "<p class=\"muted\">{}</p>", escape(&e));
            }
        }
    }
    h.push_str(
        "<table><tr><th class=\"l\">protocol</th><th class=\"l\">read path</th><th>reads %</th>\
         <th>servers</th><th>outstanding</th><th>ops/s</th><th>x log</th><th>p50 µs</th>\
         <th>p99 µs</th><th>errors</th><th>elections</th></tr>",
    );
    let mut sorted: Vec<&ReadPoint> = points.iter().collect();
    sorted.sort_by(|a, b| {
        (
            &a.point.protocol,
            a.point.outstanding,
            b.read_percent,
            &a.path,
        )
            .cmp(&(
                &b.point.protocol,
                b.point.outstanding,
                a.read_percent,
                &b.path,
            ))
    });
    for p in sorted {
        // Throughput as a multiple of the log path's at the same protocol, mix and load, and
        // with the same compaction (a log that grows is slower).
        let log = points.iter().find(|l| {
            l.path == "log"
                && l.read_percent == p.read_percent
                && (&l.point.protocol, l.point.servers, l.point.outstanding)
                    == (&p.point.protocol, p.point.servers, p.point.outstanding)
                && l.point.payload_bytes == p.point.payload_bytes
                && l.point.snapshot_every == p.point.snapshot_every
        });
        let times = match log {
            Some(l) if p.path != "log" && l.point.ops_per_sec > 0.0 => {
                format!("{:.1}x", p.point.ops_per_sec / l.point.ops_per_sec)
            }
            _ => String::new(),
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{times}</td><td>{:.1}</td><td>{:.1}</td>{}{}</tr>",
            escape(&p.point.protocol),
            escape(&p.path),
            p.read_percent,
            p.point.servers,
            p.point.outstanding,
            charts::human(p.point.ops_per_sec),
            p.point.p50_us,
            p.point.p99_us,
            errors_cell(p.point.errors),
            elections_cell(p.point.elections)
        );
    }
    h.push_str(
        "</table><p class=\"muted\">x log: the row's throughput over the log path's at the same \
         protocol, read share and load. Rows with 1 outstanding request are one client reading \
         alone: their p50 is the latency of a read on that path.</p>",
    );
}

/// The side-by-side table: per protocol, load and path, the median and range of its ratio
/// to the log over rounds that measured both one after the other.
fn ratios_part(h: &mut String, ratios: &[ReadRatio]) {
    h.push_str("<h3 id=\"reads-side-by-side\">Side by side with the log</h3>");
    if ratios.is_empty() {
        h.push_str(
            "<p class=\"muted\">No side-by-side rounds yet: run <code>cargo bench -p \
             paxraft-bench --bench throughput -- reads-side-by-side</code>.</p>",
        );
        return;
    }
    h.push_str(&provenance_note(
        ratios.iter().map(|r| r.provenance.as_ref()),
    ));
    h.push_str(
        "<table><tr><th class=\"l\">protocol</th><th class=\"l\">read path</th><th>reads %</th>\
         <th>outstanding</th><th>x log, median</th><th>lowest</th><th>highest</th>\
         <th>CPU per op, all threads,<br>log / this path, median ns</th>\
         <th>rounds</th><th>errors</th><th>elections</th></tr>",
    );
    for r in ratios {
        let ratios = r.ratios();
        let [median, low, high] = match results::spread(&ratios) {
            Some((m, l, h)) => [m, l, h].map(|x| format!("{x:.2}x")),
            None => ["-".to_string(), "-".to_string(), "-".to_string()],
        };
        let all = |i| results::CpuMedians::of(&r.cpu, i).all;
        let cpu = match (all(0), all(1)) {
            (Some(log), Some(path)) => format!("{log:.0} / {path:.0}"),
            _ => "-".to_string(),
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
             <td>{median}</td><td>{low}</td><td>{high}</td><td>{cpu}</td><td>{}</td>{}{}</tr>",
            escape(&r.protocol),
            escape(&r.path),
            r.read_percent,
            r.outstanding,
            ratios.len(),
            errors_cell(r.errors),
            elections_cell(Some(r.elections))
        );
    }
    h.push_str(
        "</table><p class=\"muted\">Each round measures the log and every other path one after \
         another on fresh 3-server clusters (the order turned each round), and divides each \
         path's ops/s by the log's of the same round: points measured minutes apart meet a \
         different machine, so the table above can disagree with these.</p>",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn point(protocol: &str, path: &str, percent: u8, outstanding: usize, ops: f64) -> ReadPoint {
        ReadPoint {
            path: path.into(),
            read_percent: percent,
            point: BenchPoint {
                protocol: protocol.into(),
                servers: 3,
                outstanding,
                payload_bytes: 0,
                ops_per_sec: ops,
                p50_us: 12.5,
                p99_us: 40.0,
                p999_us: 90.0,
                ops: 1000,
                errors: 0,
                transport: Default::default(),
                provenance: None,
                snapshot_every: Some(10_000),
                cpu: None,
                elections: Some(0),
            },
        }
    }

    #[test]
    fn the_section_charts_loads_lists_every_point_and_says_how_to_fill_it_when_empty() {
        let mut h = String::new();
        section(&mut h, &[], &[]);
        assert!(
            h.contains("cargo bench -p paxraft-bench --bench throughput -- reads"),
            "{h}"
        );
        assert!(!h.contains("<svg"));
        // Every path the benchmarks run is explained.
        for path in ["log", "read-index", "lease", "follower-reads"] {
            assert!(h.contains(&format!("<li><b>{path}</b>")), "{path}: {h}");
        }

        let points = [
            point("raft", "log", 90, 256, 7e5),
            point("raft", "read-index", 90, 256, 1.4e6),
            point("raft", "log", 50, 256, 8e5),
            point("raft", "read-index", 100, 1, 6e4),
            point("raft", "log", 90, 1024, 1e6),
            point("raft", "read-index", 90, 1024, 3.5e6),
        ];
        let mut h = String::new();
        section(&mut h, &points, &[]);
        assert_eq!(h.matches("<svg").count(), 1, "one chart");
        assert!(h.contains("Reads: throughput by read share"));
        // The chart is the sweep at 256: no series of the single points at 1024.
        assert!(!h.contains("1024 outstanding"), "{h}");
        assert!(h.contains("The chart: 256 outstanding requests"), "{h}");
        // As many points at both loads (a run of the 90/10 mix only): the lighter load.
        let mut tie = String::new();
        section(&mut tie, &[&points[..2], &points[4..]].concat(), &[]);
        assert!(tie.contains("The chart: 256 outstanding requests"), "{tie}");
        // One row per point, the single client's among them.
        assert_eq!(h.matches("<tr><td").count(), 6);
        assert!(h.contains("1.4M") && h.contains("read-index"), "{h}");
        // Each read path against the log path at its own load: 1.4M / 0.7M, 3.5M / 1.0M;
        // none for the single client, which has no log point beside it.
        assert!(
            h.contains("<td>2.0x</td>") && h.contains("<td>3.5x</td>"),
            "{h}"
        );
        assert_eq!(h.matches("x</td><td>12.5").count(), 2, "{h}");
        // A log point that never compacted is no baseline for one that did.
        let mut old_log = points[0].clone();
        old_log.point.snapshot_every = None;
        let mut mixed = String::new();
        section(&mut mixed, &[old_log, points[1].clone()], &[]);
        assert!(!mixed.contains("2.0x"), "{mixed}");
        assert!(mixed.contains("1 point ran without compaction"), "{mixed}");
    }

    fn ratio(protocol: &str, path: &str, rounds: &[[f64; 2]]) -> ReadRatio {
        ReadRatio {
            protocol: protocol.into(),
            servers: 3,
            outstanding: 1024,
            read_percent: 90,
            path: path.into(),
            rounds: rounds.to_vec(),
            cpu: Vec::new(),
            errors: 0,
            elections: 0,
            provenance: None,
        }
    }

    #[test]
    fn side_by_side_ratios_are_per_round_with_their_median_and_range_in_the_section() {
        let r = ratio(
            "raft",
            "lease",
            &[[2e6, 11e6], [1e6, 6e6], [2e6, 9e6], [0.0, 1e6]],
        );
        // The round whose log did nothing is left out; the median of 5.5, 6, 4.5 is 5.5.
        assert_eq!(r.ratios(), [5.5, 6.0, 4.5]);
        assert_eq!(r.median(), 5.5);
        let even = ratio("raft", "read-index", &[[1e6, 3e6], [1e6, 4e6]]);
        assert_eq!(even.median(), 3.5);
        assert_eq!(ratio("raft", "lease", &[]).median(), 0.0);
        // A comparison whose every log point did nothing has no ratio: dashes, not infinity.
        let mut dead = String::new();
        section(&mut dead, &[], &[ratio("raft", "lease", &[[0.0, 1e6]])]);
        assert!(
            dead.contains("<td>-</td><td>-</td><td>-</td><td>-</td><td>0</td>"),
            "{dead}"
        );

        // Each round's CPU per operation, all threads, the log's then the lease's: medians
        // 500 and 110 (the round without a measurement left out).
        let use_of = |total: f64| {
            Some(results::CpuUse {
                clients_ns: total / 2.0,
                servers_ns: vec![Some(total / 4.0), Some(total / 8.0), Some(total / 8.0)],
                leader: Some(0),
            })
        };
        let mut r = r;
        r.cpu = vec![
            [use_of(480.0), use_of(100.0)],
            [use_of(520.0), use_of(120.0)],
            [None, None],
            [use_of(500.0), use_of(110.0)],
        ];
        let mut h = String::new();
        section(&mut h, &[], &[r.clone(), even]);
        let row = |path: &str| {
            let at = h.find(&format!("<td class=\"l\">{path}</td>")).expect(path);
            h[at..].split("</tr>").next().unwrap().to_string()
        };
        let lease = row("lease");
        for cell in [
            "<td>5.50x</td>",
            "<td>4.50x</td>",
            "<td>6.00x</td>",
            "<td>500 / 110</td>",
            "<td>3</td>",
        ] {
            assert!(lease.contains(cell), "{cell} in {lease}");
        }
        assert!(row("read-index").contains("<td>3.50x</td>"));
        assert!(h.ends_with("</section>"), "{h}");

        let mut empty = String::new();
        section(&mut empty, &[], &[]);
        assert!(
            empty.contains("--bench throughput -- reads-side-by-side"),
            "{empty}"
        );

        // Saved and merged: the same protocol, load and path replaced, others kept.
        let dir = std::env::temp_dir().join(format!("paxraft-ratios-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        merge_ratios(
            &dir,
            &[r.clone(), ratio("multipaxos", "lease", &[[1e6, 5e6]])],
        )
        .unwrap();
        let newer = ratio("raft", "lease", &[[1e6, 7e6]]);
        merge_ratios(&dir, std::slice::from_ref(&newer)).unwrap();
        let saved = load_ratios(&dir).unwrap();
        assert_eq!(saved.len(), 2);
        assert!(saved.contains(&newer) && !saved.contains(&r));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merging_replaces_the_same_point_and_a_short_run_keeps_a_longer_one() {
        let dir = std::env::temp_dir().join(format!("paxraft-reads-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        merge(&dir, &[point("raft", "log", 90, 256, 1.0)]).unwrap();
        merge(&dir, &[point("raft", "log", 90, 256, 2.0)]).unwrap();
        merge(&dir, &[point("raft", "log", 50, 256, 3.0)]).unwrap();
        let mut short = point("raft", "log", 90, 256, 9.0);
        short.point.ops = 10;
        merge_short(&dir, &[short]).unwrap();
        let saved: Vec<(u8, f64)> = load(&dir)
            .unwrap()
            .iter()
            .map(|p| (p.read_percent, p.point.ops_per_sec))
            .collect();
        assert_eq!(saved, [(50, 3.0), (90, 2.0)]);
        let _ = fs::remove_dir_all(&dir);
    }
}
