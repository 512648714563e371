//! The HTML page: one self-contained file, charts inline as SVG, no JavaScript.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::charts;
use crate::results::{
    ns_or_dash, BenchPoint, Ceiling, CeilingRatio, CpuMedians, Disruption, Provenance, Results,
    Transport, ZooEntry,
};

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}.ok{color:#17702a;font-weight:600}.bad{color:#b00020;font-weight:600}\
.muted{color:#777}figure{margin:1em 0}svg{max-width:100%;height:auto}details{margin:.5em 0}";

fn chart_or_note(out: &mut String, chart: Result<String, String>) {
    match chart {
        Ok(svg) => {
            let _ = write!(out, "<figure>{svg}</figure>");
        }
        Err(e) => {
            let _ = write!(out, "<p class=\"bad\">{}</p>", escape(&e));
        }
    }
}

fn missing(out: &mut String, what: &str, how: &str) {
    let _ = write!(
        out,
        "<p class=\"muted\">No {what} yet: run <code>{}</code>.</p>",
        escape(how)
    );
}

/// One line saying which runs a section's results came from: per commit, how many results
/// and when; results saved before runs were stamped are counted as unknown, never guessed.
/// Empty when there are no results.
pub fn provenance_note<'a>(stamps: impl IntoIterator<Item = Option<&'a Provenance>>) -> String {
    // commit -> (results, earliest date, latest date)
    let mut by_commit: BTreeMap<&str, (usize, &str, &str)> = BTreeMap::new();
    let mut unknown = 0;
    for stamp in stamps {
        match stamp {
            Some(p) => {
                let e = by_commit
                    .entry(p.commit.as_str())
                    .or_insert((0, &p.date, &p.date));
                e.0 += 1;
                e.1 = e.1.min(p.date.as_str());
                e.2 = e.2.max(p.date.as_str());
            }
            None => unknown += 1,
        }
    }
    let total = unknown + by_commit.values().map(|v| v.0).sum::<usize>();
    if total == 0 {
        return String::new();
    }
    let plural = |n: usize| if n == 1 { "result" } else { "results" };
    // Newest first.
    let mut commits: Vec<_> = by_commit.into_iter().collect();
    commits.sort_by(|a, b| b.1 .2.cmp(a.1 .2));
    let when = |first: &str, last: &str| {
        if first == last {
            escape(first)
        } else {
            format!("{} to {}", escape(first), escape(last))
        }
    };
    let parts: Vec<String> = commits
        .iter()
        .map(|(commit, (n, first, last))| {
            if commits.len() == 1 && unknown == 0 {
                format!(
                    "commit <code>{}</code>, {}",
                    escape(commit),
                    when(first, last)
                )
            } else {
                format!(
                    "commit <code>{}</code> ({n} {}, {})",
                    escape(commit),
                    plural(*n),
                    when(first, last)
                )
            }
        })
        .collect();
    let mut note = Vec::new();
    if !parts.is_empty() {
        note.push(format!("Saved from {}.", parts.join("; ")));
    }
    if unknown > 0 {
        note.push(format!(
            "{unknown} {} saved before results were stamped: commit and date unknown.",
            plural(unknown)
        ));
    }
    format!("<p class=\"muted provenance\">{}</p>", note.join(" "))
}

/// A warning when some of a section's results were measured by a build carrying the
/// bug-zoo switches (not what ships); empty when none were.
pub fn build_note<'a>(stamps: impl IntoIterator<Item = Option<&'a Provenance>>) -> String {
    let with = stamps
        .into_iter()
        .flatten()
        .filter(|p| p.bug_switches)
        .count();
    if with == 0 {
        return String::new();
    }
    format!(
        "<p class=\"bad\">{with} {} measured by a build carrying the bug-zoo switches, not \
         what ships: measure with <code>cargo bench -p paxraft-bench</code> or \
         <code>cargo run --release</code> (no <code>--features bug-zoo</code>).</p>",
        if with == 1 {
            "result was"
        } else {
            "results were"
        }
    )
}

/// What a section's throughput points did with their logs: a warning when some (or all)
/// never compacted, as every point saved before the benchmarks snapshotted (their logs grew
/// for the whole point, and page faults cost them up to two thirds of their throughput);
/// a plain line when all compacted.
pub fn compaction_note<'a>(points: impl IntoIterator<Item = &'a BenchPoint>) -> String {
    let (mut never, mut every) = (0usize, std::collections::BTreeSet::new());
    for p in points {
        match p.snapshot_every {
            Some(n) => {
                every.insert(n);
            }
            None => never += 1,
        }
    }
    let schedules = every
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    match (never, every.is_empty()) {
        (0, true) => String::new(),
        (0, false) => format!(
            "<p class=\"muted\">Every point's servers snapshotted and compacted their logs \
             every {schedules} committed slots.</p>"
        ),
        (n, _) => format!(
            "<p class=\"bad\">{n} {} without compaction (saved before the benchmarks \
             snapshotted, or with snapshots off): their logs grew for the whole point, which \
             costs throughput; compare them only with each other. Rerun <code>cargo bench -p \
             paxraft-bench</code> to replace them.</p>",
            if n == 1 { "point ran" } else { "points ran" }
        ),
    }
}

/// A table cell of a point's failed requests (client timeouts), marked when there are any.
pub fn errors_cell(errors: u64) -> String {
    if errors == 0 {
        "<td>0</td>".into()
    } else {
        format!("<td class=\"bad\">{errors}</td>")
    }
}

/// A point's elections ([`crate::results::BenchPoint::elections`]): flagged when a point
/// without faults had any, "-" when not counted.
pub fn elections_cell(elections: Option<u64>) -> String {
    match elections {
        None => "<td>-</td>".into(),
        Some(0) => "<td>0</td>".into(),
        Some(n) => format!("<td class=\"bad\">{n}</td>"),
    }
}

/// What the unreplicated ceiling includes, said wherever it is compared against.
pub const CEILING: &str = "<p class=\"muted ceiling\">The unreplicated ceiling runs on the same \
runtime as Raft and multi-Paxos and takes the same host path: the same clients and mailboxes, \
the same batching of a drain into one proposal, the same durable append of the commands of \
each batch and one sync per step (in-memory storage here, as for the others, folded on the \
schedule of their snapshots, <code>runtime::DEFAULT_SNAPSHOTS</code>), the same \
session table and state machine applying every command, and the same answers. It leaves out \
only replication: no messages to peers, so no follower threads at work and no quorum wait. \
It is measured on 1 server (one replica thread) and as the serving node of 3 (the thread \
count of a 3-server cluster; the other two only redirect to it and stay idle).</p>";

/// A run's properties counted by kind: "always 12/12 hold · sometimes 4/4 reached ·
/// coverage 1/3 reached".
fn property_counts(props: &[crate::results::PropertyResult]) -> String {
    let mut parts = Vec::new();
    for (kind, good, verb) in [
        ("always", "holds", "hold"),
        ("sometimes", "reached", "reached"),
        ("coverage", "reached", "reached"),
    ] {
        let of_kind: Vec<_> = props.iter().filter(|p| p.kind == kind).collect();
        if !of_kind.is_empty() {
            let ok = of_kind.iter().filter(|p| p.status == good).count();
            parts.push(format!("{kind} {ok}/{} {verb}", of_kind.len()));
        }
    }
    parts.join(" · ")
}

/// Render the report. `criterion_index`, when given, is a path relative to the report's
/// directory that exists (the caller checks), linked as criterion's own report. The reads
/// section says how to measure reads ([`render_with_reads`] shows them).
pub fn render(results: &Results, title_note: &str, criterion_index: Option<&Path>) -> String {
    render_with_reads(results, &[], &[], title_note, criterion_index)
}

/// [`render`], with the read measurements `reads` and the side-by-side ratios `ratios` in
/// the reads section.
pub fn render_with_reads(
    results: &Results,
    reads: &[super::reads::ReadPoint],
    ratios: &[super::reads::ReadRatio],
    title_note: &str,
    criterion_index: Option<&Path>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>paxraft report</title>\
         <style>{STYLE}</style></head><body><h1>paxraft report</h1><p class=\"muted\">{}</p>\
         <nav><a href=\"#checks\">Model checking</a> · <a href=\"#zoo\">Bug zoo</a> · <a href=\"#mutants\">Mutation score</a> · \
         <a href=\"#throughput\">Throughput</a> · <a href=\"#latency\">Latency</a> · \
         <a href=\"#reads\">Reads</a> · <a href=\"#recovery\">Recovery</a> · <a href=\"#criterion\">Criterion</a></nav>",
        escape(title_note)
    );

    // Model checking.
    h.push_str("<section id=\"checks\"><h2>Model checking</h2>");
    if results.checks.is_empty() {
        missing(
            &mut h,
            "model-checking results",
            "cargo run --release -- check raft",
        );
    } else {
        h.push_str(&provenance_note(
            results.checks.iter().map(|c| c.provenance.as_ref()),
        ));
        h.push_str(
            "<table><tr><th class=\"l\">protocol</th><th class=\"l\">configuration</th><th>unique states</th>\
             <th>total states</th><th>max depth</th><th>cut by depth / term / in-flight</th><th>seconds</th><th>states/s</th><th>bytes/state</th><th class=\"l\">verdict</th>\
             <th class=\"l\">properties</th></tr>",
        );
        for c in &results.checks {
            let props: Vec<(bool, String)> = c
                .properties
                .iter()
                .map(|p| {
                    let class = match p.status.as_str() {
                        "holds" | "reached" => "ok",
                        "not reached" => "muted",
                        _ => "bad",
                    };
                    let class = match p.kind.as_str() {
                        "coverage" if p.status == "not reached" => "muted",
                        _ => class,
                    };
                    // What a reader must see without unfolding: a violation, or an example
                    // a sometimes-property promises and the run did not reach.
                    let problem =
                        p.status == "violated" || (p.kind == "sometimes" && p.status != "reached");
                    let line = format!(
                        "{} {}: <span class=\"{class}\">{}</span>",
                        escape(&p.kind),
                        escape(&p.name),
                        escape(&p.status)
                    );
                    (problem, line)
                })
                .collect();
            let problems: Vec<&str> = props
                .iter()
                .filter(|(problem, _)| *problem)
                .map(|(_, line)| line.as_str())
                .collect();
            let every: Vec<&str> = props.iter().map(|(_, line)| line.as_str()).collect();
            // One line per run, the whole list folded: a row per property made each run a
            // screen tall.
            let props = format!(
                "{}{}<details><summary>every property</summary>{}</details>",
                property_counts(&c.properties),
                problems
                    .iter()
                    .map(|l| format!("<br>{l}"))
                    .collect::<String>(),
                every.join("<br>")
            );
            let (class, verdict) = if c.passed() {
                ("ok", "pass")
            } else if c.properties.iter().any(|p| p.status == "violated") {
                ("bad", "FAIL")
            } else {
                // Nothing violated, but an example was not reached within the bounds.
                ("muted", "bounded")
            };
            let cuts = match c.cuts {
                // Saved by a version that dropped states past a bound without checking them.
                None => "not counted (older run)".to_string(),
                Some([depth, term, in_flight]) => format!(
                    "{depth} / {term} / {in_flight}{}{}{}",
                    if c.under_approximation {
                        " (symmetry: under-approximation)"
                    } else {
                        ""
                    },
                    if c.lapse_folded {
                        " (lease end and bid folded)"
                    } else {
                        ""
                    },
                    if c.depth_inexact {
                        " (DFS or BFS on several threads: depth bound not exact)"
                    } else {
                        ""
                    }
                ),
            };
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td class=\"l {class}\">{verdict}</td><td class=\"l\">{}</td></tr>",
                escape(&c.protocol),
                escape(&c.config),
                c.unique_states,
                c.total_states,
                c.max_depth,
                cuts,
                c.seconds,
                charts::human(c.states_per_sec()),
                // The process's peak growth per unique state (not measured by older runs).
                c.bytes_per_state.map_or("—".to_string(), |b| format!("{b:.0}")),
                props
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");

    zoo_section(&mut h, &results.zoo);
    super::mutants::section(&mut h, results.mutants.as_ref());

    // Throughput and latency, one chart per payload size.
    let mut payloads: Vec<usize> = results.bench.iter().map(|p| p.payload_bytes).collect();
    payloads.sort_unstable();
    payloads.dedup();
    h.push_str("<section id=\"throughput\"><h2>Throughput</h2>");
    if payloads.is_empty() {
        missing(&mut h, "benchmark results", "cargo bench -p paxraft-bench");
    }
    h.push_str(&provenance_note(
        results.bench.iter().map(|p| p.provenance.as_ref()),
    ));
    h.push_str(&build_note(
        results.bench.iter().map(|p| p.provenance.as_ref()),
    ));
    h.push_str(&compaction_note(&results.bench));
    for &b in &payloads {
        chart_or_note(&mut h, charts::throughput(&results.bench, b));
    }
    comparison(&mut h, results);
    ceiling_side_by_side(&mut h, &results.ceiling);
    loopback(&mut h, &results.bench);
    if !payloads.is_empty() {
        h.push_str(CEILING);
    }
    h.push_str("</section><section id=\"latency\"><h2>Latency</h2>");
    if payloads.is_empty() {
        missing(&mut h, "benchmark results", "cargo bench -p paxraft-bench");
    }
    for &b in &payloads {
        chart_or_note(&mut h, charts::latency(&results.bench, b));
    }
    if !results.bench.is_empty() {
        h.push_str(
            "<table><tr><th class=\"l\">protocol</th><th class=\"l\">transport</th><th>servers</th>\
             <th>outstanding</th><th>bytes</th><th>ops/s</th><th>p50 µs</th><th>p99 µs</th><th>p99.9 µs</th>\
             <th>CPU per op, ns: clients / leader / all</th><th>errors</th><th>elections</th></tr>",
        );
        for p in &results.bench {
            let cpu = p.cpu.as_ref().map_or("-".to_string(), |c| {
                format!(
                    "{} / {} / {}",
                    ns_or_dash(Some(c.clients_ns)),
                    ns_or_dash(c.leader_ns()),
                    ns_or_dash(c.total_ns())
                )
            });
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{cpu}</td>{}{}</tr>",
                escape(&p.protocol),
                p.transport.name(),
                p.servers,
                p.outstanding,
                p.payload_bytes,
                charts::human(p.ops_per_sec),
                p.p50_us,
                p.p99_us,
                p.p999_us,
                errors_cell(p.errors),
                elections_cell(p.elections)
            );
        }
        h.push_str(
            "</table><p class=\"muted\">ops/s and latencies count requests answered with a \
             result; a request that timed out is an error, in the errors column, not an \
             operation. CPU per operation: the client threads', the leader's (the ceiling's \
             server), and every thread's together, from their CPU clocks over the operations \
             completed (in-process points; \"-\" for points saved before it was measured, and \
             over loopback, whose servers are other processes). At low loads most of it is \
             threads spin-waiting for their next message before they block, not work. \
             Elections: terms (Raft) or ballot rounds (multi-Paxos) the cluster moved through \
             while the point was measured; these runs have no faults, so any is leaderless \
             time measured (\"-\": not counted, in results saved before it was).</p>",
        );
    }
    h.push_str("</section>");

    super::reads::section(&mut h, reads, ratios);

    // Recovery.
    h.push_str("<section id=\"recovery\"><h2>Recovery</h2>");
    if results.recovery.is_empty() {
        missing(&mut h, "recovery timelines", "cargo bench -p paxraft-bench");
    } else {
        h.push_str(&provenance_note(
            results.recovery.iter().map(|r| r.provenance.as_ref()),
        ));
        h.push_str(&build_note(
            results.recovery.iter().map(|r| r.provenance.as_ref()),
        ));
        chart_or_note(&mut h, charts::recovery(&results.recovery));
        h.push_str("<ul>");
        for r in &results.recovery {
            let _ = match r.event {
                Disruption::Crash => write!(
                    h,
                    "<li>{}, {} servers: first commit {:.1} ms after the leader crash",
                    escape(&r.protocol),
                    r.servers,
                    r.time_to_first_commit_ms
                ),
                Disruption::Transfer => write!(
                    h,
                    "<li>{}, {} servers: leadership transfer answered {:.1} ms after asking",
                    escape(&r.protocol),
                    r.servers,
                    r.time_to_first_commit_ms
                ),
            };
            if let (Some(before), Some(low)) = (r.before_ops_per_sec, r.min_ops_per_sec) {
                let _ = write!(
                    h,
                    "; throughput {} ops/s before, {} ops/s at the bottom of the dip",
                    charts::human(before),
                    charts::human(low)
                );
            }
            match r.recovered_ms {
                Some(ms) => {
                    let _ = write!(h, "; back to 90% after {ms:.0} ms");
                }
                None if r.before_ops_per_sec.is_some() => {
                    h.push_str("; not back to 90% within the run");
                }
                None => {}
            }
            h.push_str("</li>");
        }
        h.push_str("</ul>");
    }
    super::snapshots::section(&mut h, &results.catch_up, &results.restarts);
    h.push_str("</section>");

    h.push_str("<section id=\"criterion\"><h2>Criterion</h2>");
    if let Some(p) = criterion_index {
        let href = p.to_string_lossy().replace('\\', "/");
        let _ = write!(
            h,
            "<p><a href=\"{}\">Criterion's own report</a>: every benchmark's samples, \
             distributions and comparison with the previous run or a saved baseline.</p>",
            escape(&href)
        );
    } else {
        missing(&mut h, "criterion report", "cargo bench -p paxraft-bench");
    }
    h.push_str("</section>");
    h.push_str("</body></html>\n");
    h
}

/// The bug zoo: per bug, caught or not, its counterexample replayed with the bug off, and the
/// counterexample as a sequence diagram.
fn zoo_section(h: &mut String, zoo: &[ZooEntry]) {
    h.push_str("<section id=\"zoo\"><h2>Bug zoo</h2>");
    if zoo.is_empty() {
        missing(
            h,
            "bug zoo results",
            "cargo run --release --features bug-zoo -- zoo",
        );
        h.push_str("</section>");
        return;
    }
    let caught = zoo.iter().filter(|z| z.caught).count();
    let replayed = zoo
        .iter()
        .filter(|z| z.caught && z.clean_replay.is_some())
        .count();
    let clean = zoo
        .iter()
        .filter(|z| z.caught && z.clean_replay.as_ref().is_some_and(|r| r.clean()))
        .count();
    let _ = write!(h, "<p>{caught} of {} known bugs caught.", zoo.len());
    if replayed > 0 {
        let _ = write!(
            h,
            " {clean} of {replayed} counterexamples pass when replayed with the bug off \
             (one that fails without the bug too does not show the bug)."
        );
    }
    if replayed < caught {
        let _ = write!(
            h,
            " {} caught {} no clean replay on record (saved before replays were made).",
            caught - replayed,
            if caught - replayed == 1 {
                "bug has"
            } else {
                "bugs have"
            }
        );
    }
    h.push_str("</p>");
    h.push_str(&provenance_note(zoo.iter().map(|z| z.provenance.as_ref())));
    h.push_str(
        "<table><tr><th class=\"l\">bug</th><th class=\"l\">protocol</th><th class=\"l\">caught</th>\
         <th class=\"l\">clean replay</th><th class=\"l\">by property</th><th>trace length</th><th>states</th>\
         <th>seconds</th><th class=\"l\">saved</th></tr>",
    );
    for z in zoo {
        let (class, yes) = if z.caught {
            ("ok", "yes")
        } else {
            ("bad", "NO")
        };
        // Absent is not passed: an old result without a replay shows a dash.
        let replay = match &z.clean_replay {
            None => "<td class=\"l muted\" title=\"not replayed\">—</td>".to_string(),
            Some(r) => {
                let detail = r
                    .failure
                    .as_ref()
                    .filter(|f| !f.detail.is_empty())
                    .map(|f| format!("<br><span class=\"muted\">{}</span>", escape(&f.detail)))
                    .unwrap_or_default();
                format!(
                    "<td class=\"l {}\">{}{detail}</td>",
                    if r.clean() { "ok" } else { "bad" },
                    escape(&r.summary())
                )
            }
        };
        let saved = z.provenance.as_ref().map_or_else(
            || "<span class=\"muted\">unknown</span>".to_string(),
            |p| {
                format!(
                    "<code>{}</code>, <span title=\"{}\">{}</span>",
                    escape(&p.commit),
                    escape(&p.date),
                    escape(p.day())
                )
            },
        );
        let _ = write!(
            h,
            "<tr><td class=\"l\">{} {}</td><td class=\"l\">{}</td><td class=\"l {class}\">{yes}</td>{replay}\
             <td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td class=\"l\">{saved}</td></tr>",
            escape(&z.code),
            escape(&z.name),
            escape(&z.protocol),
            escape(z.property.as_deref().unwrap_or("-")),
            z.trace_len.map_or("-".into(), |n| n.to_string()),
            z.states,
            z.seconds
        );
    }
    h.push_str("</table>");
    for z in zoo.iter().filter(|z| z.trace.is_some()) {
        let trace = z.trace.as_ref().expect("filtered");
        let _ = write!(
            h,
            "<details><summary>{} {}: counterexample</summary>",
            escape(&z.code),
            escape(&z.name)
        );
        chart_or_note(
            h,
            charts::sequence(&format!("{} {}", z.code, z.name), trace),
        );
        h.push_str("</details>");
    }
    h.push_str("</section>");
}

/// At the highest load measured for each cluster size and payload: each protocol's
/// throughput, and as a share of Raft's and of the unreplicated ceiling's.
fn comparison(h: &mut String, results: &Results) {
    // In-process points only: the loopback ones have their own table (`loopback`).
    let bench: Vec<&BenchPoint> = results
        .bench
        .iter()
        .filter(|p| p.transport == Transport::InProcess)
        .collect();
    let Some(top) = bench.iter().map(|p| p.outstanding).max() else {
        return;
    };
    let at = |proto: &str, servers: Option<usize>, bytes: usize| {
        bench
            .iter()
            .find(|p| {
                p.protocol == proto
                    && p.outstanding == top
                    && p.payload_bytes == bytes
                    && servers.map_or(true, |n| p.servers == n)
            })
            .copied()
    };
    let mut keys: Vec<(usize, usize)> = bench
        .iter()
        .filter(|p| p.outstanding == top && p.protocol != "unreplicated")
        .map(|p| (p.servers, p.payload_bytes))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    // A share only between points of the same compaction: a log that grows is slower.
    let pct = |a: Option<&BenchPoint>, b: Option<&BenchPoint>| match (a, b) {
        (Some(a), Some(b)) if b.ops_per_sec > 0.0 && a.snapshot_every == b.snapshot_every => {
            format!("{:.0}%", 100.0 * a.ops_per_sec / b.ops_per_sec)
        }
        _ => "-".into(),
    };
    let _ = write!(
        h,
        "<h3>Comparison at {top} outstanding requests</h3><table><tr><th>servers</th><th>bytes</th>\
         <th>raft ops/s</th><th>multipaxos ops/s</th><th>unreplicated, 1 server</th>\
         <th>unreplicated, serving 1 of n</th><th>multipaxos / raft</th>\
         <th>raft / unreplicated<br>(1 server · 1 of n)</th>\
         <th>multipaxos / unreplicated<br>(1 server · 1 of n)</th></tr>"
    );
    let show = |v: Option<&BenchPoint>| v.map_or("-".into(), |p| charts::human(p.ops_per_sec));
    for (n, bytes) in keys {
        let (raft, mp, alone, of_n) = (
            at("raft", Some(n), bytes),
            at("multipaxos", Some(n), bytes),
            at("unreplicated", Some(1), bytes),
            at("unreplicated", Some(n), bytes),
        );
        let _ = write!(
            h,
            "<tr><td>{n}</td><td>{bytes}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{} · {}</td><td>{} · {}</td></tr>",
            show(raft),
            show(mp),
            show(alone),
            show(of_n),
            pct(mp, raft),
            pct(raft, alone),
            pct(raft, of_n),
            pct(mp, alone),
            pct(mp, of_n)
        );
    }
    h.push_str("</table>");
}

/// The replicated protocols' share of the ceiling measured side by side in rounds
/// ([`crate::bench::ceiling_side_by_side`]): median and range per protocol and load.
fn ceiling_side_by_side(h: &mut String, ratios: &[CeilingRatio]) {
    if ratios.is_empty() {
        return;
    }
    h.push_str("<h3 id=\"ceiling-side-by-side\">Side by side with the ceiling</h3>");
    h.push_str(&provenance_note(
        ratios.iter().map(|r| r.provenance.as_ref()),
    ));
    h.push_str(
        "<table><tr><th class=\"l\">protocol</th><th>servers</th><th>outstanding</th>\
         <th>share of the ceiling alone,<br>median (range)</th>\
         <th>share of the ceiling serving 1 of n,<br>median (range)</th><th>rounds</th>\
         <th>errors</th><th>elections</th></tr>",
    );
    let cell = |shares: Vec<f64>| match crate::results::spread(&shares) {
        Some((median, low, high)) => format!(
            "{:.0}% ({:.0}-{:.0}%)",
            100.0 * median,
            100.0 * low,
            100.0 * high
        ),
        None => "-".to_string(),
    };
    for r in ratios {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}</tr>",
            escape(&r.protocol),
            r.servers,
            r.outstanding,
            cell(r.shares(Ceiling::Alone)),
            cell(r.shares(Ceiling::OneOfN)),
            r.rounds.len(),
            errors_cell(r.errors),
            elections_cell(Some(r.elections))
        );
    }
    h.push_str(
        "</table><p class=\"muted\">Each round measures the protocol and the ceiling (alone, and \
         as the serving node of n) one after another on fresh clusters, with empty commands, \
         and divides: points measured minutes apart meet a different machine, so the \
         comparison above can disagree with these. <code>cargo bench -p paxraft-bench --bench \
         throughput -- throughput-side-by-side</code>.</p>",
    );
    ceiling_cpu(h, ratios);
}

/// Where an operation's CPU goes in the rounds of [`ceiling_side_by_side`]: medians of each
/// role's CPU time per operation, for the protocols and the ceiling they are divided by.
fn ceiling_cpu(h: &mut String, ratios: &[CeilingRatio]) {
    if ratios.iter().all(|r| r.cpu.is_empty()) {
        return;
    }
    h.push_str(
        "<table id=\"ceiling-cpu\"><tr><th class=\"l\">CPU per operation, median ns</th>\
         <th>clients</th><th>leader (the ceiling: its server)</th><th>each other server</th>\
         <th>all threads</th></tr>",
    );
    let mut row = |name: String, r: &CeilingRatio, i: usize| {
        let m = CpuMedians::of(&r.cpu, i);
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name),
            ns_or_dash(m.clients),
            ns_or_dash(m.leader),
            ns_or_dash(m.follower),
            ns_or_dash(m.all),
        );
    };
    for r in ratios {
        row(format!("{}, {} servers", r.protocol, r.servers), r, 0);
    }
    // Every protocol was divided by the same ceiling measurements: shown once.
    let first = &ratios[0];
    row("unreplicated alone".to_string(), first, 1);
    row(
        format!("unreplicated serving 1 of {}", first.servers),
        first,
        2,
    );
    h.push_str(
        "</table><p class=\"muted\">Each thread's CPU time (the operating system's per-thread \
         clocks) over the operations its point completed. On two cores every point is \
         CPU-bound, so a protocol's share of the ceiling is about the ceiling's CPU per \
         operation over the protocol's; these columns say which threads make the \
         difference.</p>",
    );
}

/// Each loopback point beside the in-process point of the same protocol, cluster size,
/// outstanding requests, payload and compaction: throughput, its share, and median latency.
fn loopback(h: &mut String, bench: &[BenchPoint]) {
    let remote: Vec<&BenchPoint> = bench
        .iter()
        .filter(|p| p.transport == Transport::Loopback)
        .collect();
    if remote.is_empty() {
        return;
    }
    h.push_str(
        "<h3 id=\"loopback\">Loopback processes beside in-process threads</h3>\
         <table><tr><th class=\"l\">protocol</th><th>servers</th><th>outstanding</th><th>bytes</th>\
         <th>in-process ops/s</th><th>loopback ops/s</th><th>loopback / in-process</th>\
         <th>in-process p50 µs</th><th>loopback p50 µs</th><th>loopback errors</th></tr>",
    );
    for r in remote {
        let local = bench.iter().find(|p| {
            p.transport == Transport::InProcess
                && p.protocol == r.protocol
                && p.servers == r.servers
                && p.outstanding == r.outstanding
                && p.payload_bytes == r.payload_bytes
                && p.snapshot_every == r.snapshot_every
        });
        let (ops, share, p50) = match local {
            Some(l) if l.ops_per_sec > 0.0 => (
                charts::human(l.ops_per_sec),
                format!("{:.0}%", 100.0 * r.ops_per_sec / l.ops_per_sec),
                format!("{:.1}", l.p50_us),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{ops}</td><td>{}</td>\
             <td>{share}</td><td>{p50}</td><td>{:.1}</td>{}</tr>",
            escape(&r.protocol),
            r.servers,
            r.outstanding,
            r.payload_bytes,
            charts::human(r.ops_per_sec),
            r.p50_us,
            errors_cell(r.errors)
        );
    }
    h.push_str(
        "</table><p class=\"muted\">Loopback: one <code>paxraft serve</code> process per \
         replica on 127.0.0.1 with <code>--storage memory</code>, clients in the bench process \
         over TCP; in-process: replica threads and channels in one process. Same closed loop, \
         same client count, both snapshotting on the same default \
         (<code>runtime::DEFAULT_SNAPSHOTS</code>). A dash: no in-process point at that \
         load.</p>",
    );
}
