//! Throughput and latency under parallel closed-loop load: protocol × cluster size ×
//! outstanding requests × payload. rayon drives the clients (see `paxraft::bench`).
//!
//! Criterion reports ops/s (`Throughput::Elements`, one element per committed operation: a
//! request answered with an error, a timeout, is not one, see `Load::run`); ops/s, latency
//! p50/p99/p99.9 and the errors of the calls criterion measured (not its warm-up:
//! `CriterionPhases`) go to `reports/data/bench.json`. The unreplicated ceiling is measured
//! alone (1 server) and as one serving node of 3.
//!
//! Reads (groups `reads-{protocol}-3n-{path}`): 100%, 90% and 50% gets among puts, at 256
//! outstanding requests, for each read path (log, read-index, follower-reads) the protocol
//! has, 3 servers; plus one client alone doing gets (`1-client-reads`), whose p50 is a read's
//! latency on that path. Points go to `reports/data/reads.json`. A path a protocol lacks
//! (`Replica::READS` false) is skipped with a note. Run only these with
//! `cargo bench -p paxraft-bench --bench throughput -- reads`; 2 s measured per point (+0.5 s warm-up), about
//! 3 s a point with the cluster's start: 24 points when both protocols have a read path.
//!
//! Snapshots (groups `snapshots-{protocol}-3n-1024`): snapshots off against a snapshot every
//! 10,000 slots, 1024 outstanding, 3 servers, side by side.
//!
//! Loopback (groups `loopback-{protocol}-3n-{payload}B`): the same closed loop against 3
//! server processes on 127.0.0.1 (TCP, `--storage memory`, started as `paxraft cluster
//! --local` starts them), raft and multipaxos, 1, 64 and 1024 outstanding, 0 and 128 B; saved
//! beside the in-process points with `transport: loopback`. The server processes are this
//! benchmark run again with `PAXRAFT_BENCH_SERVE=1`, which makes it `paxraft serve`.
//!
//! The ceiling side by side (`throughput-side-by-side`, measured outside criterion, selected
//! by the same filter): Raft, multi-Paxos and the unreplicated ceiling (alone, and as the
//! serving node of 3) at 1024 outstanding, empty commands, 5 rounds that each measure all
//! four one after another (1 s a point, the order turned each round); each protocol's share of
//! each ceiling in its own round, median and range, go to `reports/data/ceiling_ratios.json`.
//! About 30 s.
//!
//! Reads side by side (`reads-side-by-side`, measured outside criterion, selected by the same
//! filter): each protocol at 90% reads, 256 and 1024 outstanding, 5 rounds that each measure
//! the log, read-index and lease one after another (1 s a point, the order turned each
//! round); each path's ops/s over the log's of the same round, median and range, go to
//! `reports/data/read_ratios.json`. Ratios of points measured minutes apart move with a
//! shared machine; these do not depend on when the round ran. About 100 s.
//!
//! `PAXRAFT_BENCH_QUICK=1`: 3 servers, 1 and 1024 outstanding, empty commands, 1 s each;
//! reads at 90% only; 3 side-by-side rounds of 0.5 s points.

mod common;

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, SamplingMode, Throughput};
use paxraft::bench::{
    self, AnyLoad, BenchError, CriterionPhases, LoadConfig, LoopbackLoad, ReadPath, READ_MIXES,
};
use paxraft::cli::net::StorageKind;
use paxraft::protocol::Protocol;
use paxraft::report::reads::{self as saved_reads, ReadPoint, ReadRatio};
use paxraft::results::{median, BenchPoint, Ceiling, CeilingRatio, CpuMedians, Results};

/// Set in the server processes of the loopback points: run as `paxraft` (`serve ...`).
const SERVE: &str = "PAXRAFT_BENCH_SERVE";

fn main() -> std::process::ExitCode {
    if std::env::var_os(SERVE).is_some() {
        return paxraft::cli::main();
    }
    common::require_shipping_build();
    let quick = common::quick() || !common::measuring();
    let (warm, measure) = if quick {
        (Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(4))
    };
    let mut c = common::criterion(warm, measure);
    let outstanding: &[usize] = if quick {
        &[1, 1024]
    } else {
        &[1, 16, 64, 256, 1024, 4096]
    };
    let payloads: &[usize] = if quick { &[0] } else { &[0, 128] };
    let cluster_sizes: &[usize] = if quick { &[3] } else { &[3, 5] };

    let mut points: Vec<BenchPoint> = Vec::new();
    for &payload in payloads {
        for protocol in Protocol::ALL {
            // The ceiling serves from one node whatever the cluster size: alone (one replica
            // thread), and as one of 3 nodes (the thread count of a 3-server cluster; the
            // other two only redirect, see the README's "ceiling").
            let sizes: &[usize] = if protocol == Protocol::Unreplicated {
                &[1, 3]
            } else {
                cluster_sizes
            };
            for &servers in sizes {
                let group = format!("throughput-{}-{servers}n-{payload}B", protocol.name());
                points.extend(write_group(
                    &mut c,
                    &group,
                    "",
                    LoadConfig::writes(protocol, servers, 0, payload),
                    outstanding,
                    bench::start,
                ));
            }
        }
    }
    let ceiling = ceiling_side_by_side(quick);
    points.extend(loopback(&mut c, quick, payloads));
    snapshots(&mut c, quick);
    let read_points = reads(&mut c, quick);
    let ratios = reads_side_by_side(quick);
    common::finish(&c, "throughput", |dir| {
        Results::merge_bench(dir, &points)?;
        Results::merge_ceiling(dir, &ceiling)?;
        saved_reads::merge(dir, &read_points)?;
        saved_reads::merge_ratios(dir, &ratios)
    });
    std::process::ExitCode::SUCCESS
}

/// The loopback points: 3 server processes per point (memory storage, so they compare with
/// the in-process clusters, which keep their logs in memory), started on the point's first
/// call and stopped after it.
fn loopback(c: &mut criterion::Criterion, quick: bool, payloads: &[usize]) -> Vec<BenchPoint> {
    let outstanding: &[usize] = if quick { &[1, 1024] } else { &[1, 64, 1024] };
    let exe = std::env::current_exe().expect("this benchmark's path");
    let server = || {
        let mut cmd = std::process::Command::new(&exe);
        cmd.env(SERVE, "1");
        cmd
    };
    let mut points = Vec::new();
    for &payload in payloads {
        for protocol in Protocol::REPLICATED {
            let start = |cfg: LoadConfig| -> Result<Box<dyn AnyLoad>, BenchError> {
                Ok(Box::new(LoopbackLoad::start(
                    cfg,
                    StorageKind::Memory,
                    server,
                )?))
            };
            points.extend(write_group(
                c,
                &format!("loopback-{}-3n-{payload}B", protocol.name()),
                "loopback ",
                // The servers snapshot on `serve`'s own default, as the in-process points do.
                LoadConfig {
                    snapshots: None,
                    ..LoadConfig::writes(protocol, 3, 0, payload)
                },
                outstanding,
                start,
            ));
        }
    }
    points
}

/// One group of write points: `base` at each count of `outstanding`, each load started by
/// `start`; each point is printed (after `label`) and returned.
fn write_group(
    c: &mut criterion::Criterion,
    group: &str,
    label: &str,
    base: LoadConfig,
    outstanding: &[usize],
    start: impl Fn(LoadConfig) -> Result<Box<dyn AnyLoad>, BenchError>,
) -> Vec<BenchPoint> {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat);
    let mut points = Vec::new();
    for &out in outstanding {
        let cfg = LoadConfig {
            outstanding: out,
            ..base.clone()
        };
        if let Some(p) = measured(&mut g, BenchmarkId::from_parameter(out), &cfg, &start) {
            println!(
                "  {label}{} {}n {out} outstanding {}B: {:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs{}",
                p.protocol, p.servers, cfg.payload_bytes, p.ops_per_sec, p.p50_us, p.p99_us, p.p999_us,
                elections_note(p.elections)
            );
            points.push(p);
        }
    }
    g.finish();
    points
}

/// Snapshots on against off (issue 17's target: within 10%), side by side in one group per
/// protocol: 3 servers, 1024 outstanding, empty commands, a snapshot every 10,000 slots.
fn snapshots(c: &mut criterion::Criterion, quick: bool) {
    let time = |d: Duration| if quick { d / 2 } else { d };
    for protocol in Protocol::REPLICATED {
        let mut g = c.benchmark_group(format!("snapshots-{}-3n-1024", protocol.name()));
        g.throughput(Throughput::Elements(1))
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(time(Duration::from_millis(500)))
            .measurement_time(time(Duration::from_secs(2)));
        for (id, snapshots) in [
            ("off", None),
            (
                "every-10000",
                Some(paxraft_impls::SnapshotPolicy {
                    every: 10_000,
                    chunk: paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK,
                }),
            ),
        ] {
            let cfg = LoadConfig {
                snapshots,
                ..LoadConfig::writes(protocol, 3, 1024, 0)
            };
            if let Some(p) = measured(&mut g, BenchmarkId::from_parameter(id), &cfg, bench::start) {
                println!(
                    "  snapshots {id} {} 3n 1024 outstanding: {:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs{}",
                    p.protocol, p.ops_per_sec, p.p50_us, p.p99_us, elections_note(p.elections)
                );
            }
        }
        g.finish();
    }
}

/// The read groups: every read path × read share for each protocol, and one client's reads.
fn reads(c: &mut criterion::Criterion, quick: bool) -> Vec<ReadPoint> {
    let mixes: &[u8] = if quick { &[90] } else { &READ_MIXES };
    let time = |d: Duration| if quick { d / 2 } else { d };
    let mut points = Vec::new();
    for protocol in Protocol::REPLICATED {
        for path in ReadPath::ALL {
            if !bench::has_read_path(protocol, path) {
                // Not a failure: the protocol serves reads through the log only (READS false).
                println!("  reads-{protocol}-3n-{path}: skipped, {protocol} has no such read path");
                continue;
            }
            let mut g = c.benchmark_group(format!("reads-{}-3n-{path}", protocol.name()));
            g.throughput(Throughput::Elements(1))
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(time(Duration::from_millis(500)))
                .measurement_time(time(Duration::from_secs(2)));
            // Loads of several clients at each read share; the 90/10 mix again at 1024
            // outstanding, where the paths that wait for a round (read-index) are no longer
            // bound by their latency; then one client alone reading.
            let loads = mixes
                .iter()
                .map(|&percent| (format!("{percent}pct-reads"), percent, 256))
                .chain([("90pct-reads-1024".to_string(), 90, 1024)])
                .chain([("1-client-reads".to_string(), 100, 1)]);
            for (id, percent, outstanding) in loads {
                let cfg = LoadConfig::read_mix(protocol, path, percent, outstanding);
                if let Some(p) =
                    measured(&mut g, BenchmarkId::from_parameter(&id), &cfg, bench::start)
                {
                    println!(
                        "  {} {path} {percent}% reads, {outstanding} outstanding: {:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs{}",
                        p.protocol, p.ops_per_sec, p.p50_us, p.p99_us, elections_note(p.elections)
                    );
                    points.push(bench::read_point(&cfg, p));
                }
            }
            g.finish();
        }
    }
    points
}

/// The rounds and point length of the side-by-side measurement `name` (5 of 1 s; quick: 3 of
/// 0.5 s), said on the way in; `None` when it is not selected, or in a `--test` or `--list`
/// run, which measures nothing.
fn rounds_of(name: &str, quick: bool) -> Option<(usize, Duration)> {
    if !common::measuring() || !selected(name) {
        return None;
    }
    let (rounds, per_point) = if quick {
        (3, Duration::from_millis(500))
    } else {
        (5, Duration::from_secs(1))
    };
    println!("{name}: {rounds} rounds, each load once per round, {per_point:?} a point");
    Some((rounds, per_point))
}

/// The ceiling's side-by-side rounds (`throughput-side-by-side`, outside criterion: see
/// `paxraft::bench::ceiling_side_by_side`): Raft, multi-Paxos and the ceiling (alone, and as
/// the serving node of 3) at 1024 outstanding, empty commands, 5 rounds of 1 s points (quick:
/// 3 of 0.5 s). Printed, and saved with the other results.
fn ceiling_side_by_side(quick: bool) -> Vec<CeilingRatio> {
    const NAME: &str = "throughput-side-by-side";
    let Some((rounds, per_point)) = rounds_of(NAME, quick) else {
        return Vec::new();
    };
    let ratios = bench::ceiling_side_by_side(1024, per_point, rounds, |_, _| {})
        .unwrap_or_else(|e| panic!("{NAME}: {e}"));
    for r in &ratios {
        let pct = |c| {
            let shares = r.shares(c);
            let each: Vec<String> = shares.iter().map(|x| format!("{:.0}", 100.0 * x)).collect();
            format!(
                "median {:.0}% (rounds {})",
                100.0 * median(shares),
                each.join(", ")
            )
        };
        println!(
            "  {} at 1024 outstanding: of the ceiling alone {}; of the ceiling serving 1 of 3 {}{}{}",
            r.protocol,
            pct(Ceiling::Alone),
            pct(Ceiling::OneOfN),
            errors_note(r.errors),
            elections_note(Some(r.elections))
        );
        println!(
            "    CPU per op, medians: {}",
            CpuMedians::of(&r.cpu, 0).line()
        );
    }
    // Both protocols were divided by the same ceiling measurements.
    if let Some(r) = ratios.first() {
        println!(
            "  the ceiling alone, CPU per op: {}",
            CpuMedians::of(&r.cpu, 1).line()
        );
        println!(
            "  the ceiling serving 1 of 3, CPU per op: {}",
            CpuMedians::of(&r.cpu, 2).line()
        );
    }
    ratios
}

/// ", N elections" after a point's or a side-by-side line, when its points had any: these
/// loads have no faults, so an election is leaderless time measured (see `BenchPoint`).
fn elections_note(elections: Option<u64>) -> String {
    match elections {
        Some(n) if n > 0 => format!(", {n} elections while measured"),
        _ => String::new(),
    }
}

/// ", N errors" after a side-by-side line, when its points had any.
fn errors_note(errors: u64) -> String {
    if errors > 0 {
        format!(", {errors} errors")
    } else {
        String::new()
    }
}

/// The reads' side-by-side rounds (`reads-side-by-side`, outside criterion: see
/// `paxraft::bench::side_by_side`): each protocol at 90% reads, 256 and 1024 outstanding, the
/// log against read-index and lease in alternating order, 5 rounds of 1 s points (quick: 3
/// rounds of 0.5 s). Printed, and saved with the reads.
fn reads_side_by_side(quick: bool) -> Vec<ReadRatio> {
    const NAME: &str = "reads-side-by-side";
    let Some((rounds, per_point)) = rounds_of(NAME, quick) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    for protocol in Protocol::REPLICATED {
        for outstanding in [256, 1024] {
            let ratios =
                bench::side_by_side(protocol, 90, outstanding, per_point, rounds, |_, _| {})
                    .unwrap_or_else(|e| panic!("{NAME} {protocol} {outstanding}: {e}"));
            for r in &ratios {
                let each: Vec<String> = r.ratios().iter().map(|x| format!("{x:.2}")).collect();
                println!(
                    "  {protocol} {} x log at 90% reads, {outstanding} outstanding: median {:.2}x (rounds {}){}{}",
                    r.path,
                    r.median(),
                    each.join(", "),
                    errors_note(r.errors),
                    elections_note(Some(r.elections))
                );
                println!(
                    "    CPU per op, medians: the log: {}; {}: {}",
                    CpuMedians::of(&r.cpu, 0).line(),
                    r.path,
                    CpuMedians::of(&r.cpu, 1).line()
                );
            }
            all.extend(ratios);
        }
    }
    all
}

/// Benchmark the load `cfg`, started by `start`, as `id` in group `g`; the point criterion measured, without its
/// warm-up (`None` when the benchmark was filtered out, or criterion measured nothing: a
/// `--test` or `--quick` run). Requests that failed are in the point's `errors`, and said.
fn measured(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    cfg: &LoadConfig,
    start: impl Fn(LoadConfig) -> Result<Box<dyn AnyLoad>, BenchError>,
) -> Option<BenchPoint> {
    // Started on first use, so a filtered-out point costs nothing.
    let mut load: Option<Box<dyn AnyLoad>> = None;
    let mut phases = CriterionPhases::default();
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let l = load.get_or_insert_with(|| {
                start(cfg.clone()).unwrap_or_else(|e| panic!("{cfg:?}: {e}"))
            });
            if phases.starts_measuring(iters) {
                l.reset();
            }
            l.run(iters).unwrap_or_else(|e| panic!("{cfg:?}: {e}"))
        })
    });
    let l = load?;
    if !phases.measured() {
        return None;
    }
    let p = l.point();
    if p.errors > 0 {
        eprintln!(
            "warning: {cfg:?}: {} requests failed (timed out), not counted as operations",
            p.errors
        );
    }
    Some(p)
}

/// Whether the command line selects `name` the way criterion selects a benchmark: no filter,
/// or a filter (a regular expression; a plain substring if it is not one) that matches it.
/// For measurements made outside criterion in a bench run.
fn selected(name: &str) -> bool {
    // criterion's options that take a value: their values are not filters.
    const VALUED: [&str; 16] = [
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--color",
        "--output-format",
        "--plotting-backend",
        "--format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut skip = false;
    for a in &args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a.starts_with('-') {
            skip = VALUED.contains(&a.as_str());
        } else {
            filters.push(a.as_str());
        }
    }
    filters.is_empty()
        || filters.iter().any(|f| match regex::Regex::new(f) {
            Ok(re) => re.is_match(name),
            Err(_) => name.contains(f),
        })
}
