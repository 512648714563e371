//! Model-checking speed: unique states per second of each protocol's default `paxraft check`
//! configuration, bounded to a smaller depth (12 instead of 18) so a run takes seconds, not
//! minutes; at that depth some sometimes-properties are not yet reached, which the report
//! shows as a bounded run rather than a failure. Criterion reports
//! states/s (`Throughput::Elements` = unique states of one check); each check's result
//! (states, depth, time, property verdicts) goes to `reports/data/checks.json`.
//!
//! Then a side-by-side comparison, in one run: Raft's and multi-Paxos's default checks and
//! the reference model ([`paxraft_models::reference`]: single-decree Paxos written directly
//! in stateright, 3 servers, 2 clients, a duplicating network, a linearizable register), BFS
//! and DFS, one thread, plus all three with BFS on two threads right after their one-thread
//! run: the scaling, measured in such back-to-back pairs [`SCALING_ROUNDS`] times and
//! printed with its median.
//! Each run is a fresh process (this binary again, told what to run by
//! `PAXRAFT_MODEL_CHECK_ONE`), so that one run's memory neither counts toward nor is reused
//! by the next: bytes per state are the process's peak growth per unique state
//! ([`paxraft_models::memory`]). The table is printed and saved with the other checks.
//!
//! `PAXRAFT_BENCH_QUICK=1`: a shallower depth.

mod common;

use std::time::Duration;

use criterion::{SamplingMode, Throughput};
use paxraft::results::{CheckResult, PropertyResult, Results};
use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_models::{
    check, reference, Checkable, Cmd, Kind, ModelConfig, SearchOptions, Strategy, Summary,
};

/// How many actions shallower than `paxraft check`'s default depth the measured checks go
/// (each is run several times), and the quick ones.
const SHALLOWER: usize = 1;
const QUICK_SHALLOWER: usize = 3;

fn run<R: Checkable>(depth: usize) -> Summary {
    run_with::<R>(depth, Strategy::Bfs, 1)
}

fn run_with<R: Checkable>(depth: usize, strategy: Strategy, threads: usize) -> Summary {
    let search = SearchOptions {
        depth: Some(depth),
        strategy,
        threads,
        ..SearchOptions::default()
    };
    check::<R>(
        &ModelConfig::default(),
        &search,
        Duration::from_secs(3600),
        |_| {},
    )
}

/// The child process's instructions: `<model> <strategy> <threads> <depth>`.
const ONE: &str = "PAXRAFT_MODEL_CHECK_ONE";

/// Clients of the reference model: as many as the cluster models' defaults have. (With 3,
/// its duplicating network makes the space too large to exhaust in a benchmark run: over
/// 14 minutes on 2 loaded cores without finishing.)
const REFERENCE_CLIENTS: usize = 2;

fn main() {
    common::require_shipping_build();
    if let Ok(spec) = std::env::var(ONE) {
        return one(&spec);
    }
    let quick = common::quick() || !common::measuring();
    let shallower = if quick { QUICK_SHALLOWER } else { SHALLOWER };
    let mut c = common::criterion(
        Duration::from_millis(1),
        Duration::from_secs(if quick { 2 } else { 8 }),
    );
    let mut results: Vec<CheckResult> = Vec::new();
    let mut g = c.benchmark_group("model-check");
    g.sampling_mode(SamplingMode::Flat);
    type Check = fn(usize) -> Summary;
    for (name, f) in [
        ("raft", run::<Raft<Cmd>> as Check),
        ("multipaxos", run::<MultiPaxos<Cmd>> as Check),
    ] {
        let depth = paxraft_models::check::default_depth(name) - shallower;
        // One check first: its state count is the throughput unit, its verdicts the result.
        let first = f(depth);
        // A shallower bound may leave a sometimes-property unreached; no always-property may
        // be violated.
        let violated: Vec<_> = first
            .failures()
            .filter(|v| v.kind == Kind::Always)
            .map(|v| v.name)
            .collect();
        assert!(
            violated.is_empty(),
            "{name}: violated at depth {depth}: {violated:?}"
        );
        println!(
            "  {}: {} unique states, depth {}, {:.2} s, {:.0} states/s",
            first.command(),
            first.unique_states,
            first.max_depth,
            first.seconds,
            first.states_per_sec()
        );
        results.push(CheckResult::from_summary(&first));
        g.throughput(Throughput::Elements(first.unique_states as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| Duration::from_secs_f64(f(depth).seconds))
                    .sum()
            })
        });
    }
    g.finish();
    results.extend(comparison(quick));
    common::finish(&c, "model-check", |dir| {
        Results::merge_checks(dir, &results)
    });
}

/// Run one check of the comparison, as told by [`ONE`], and print its result as JSON.
fn one(spec: &str) {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [model, strategy, threads, depth] = words[..] else {
        panic!("{ONE}={spec:?}: expected <model> <strategy> <threads> <depth>")
    };
    let strategy = Strategy::parse(strategy).expect("bfs or dfs");
    let threads: usize = threads.parse().expect("threads");
    let depth: usize = depth.parse().expect("depth");
    let mut result = match model {
        "raft" => CheckResult::from_summary(&run_with::<Raft<Cmd>>(depth, strategy, threads)),
        "multipaxos" => {
            CheckResult::from_summary(&run_with::<MultiPaxos<Cmd>>(depth, strategy, threads))
        }
        "reference" => reference_result(&reference::check(REFERENCE_CLIENTS, strategy, threads)),
        other => panic!("{ONE}: no model {other}"),
    };
    // The key the results are merged by is (protocol, config): threads tell runs apart here.
    if threads > 1 && model != "reference" {
        result.config.push_str(&format!(" --threads {threads}"));
    }
    println!(
        "{}",
        serde_json::to_string(&result).expect("a result serializes")
    );
}

/// The reference model's run in the report's shape.
fn reference_result(s: &reference::RefSummary) -> CheckResult {
    CheckResult {
        protocol: "reference-paxos".into(),
        config: format!(
            "stateright single-decree Paxos: {} servers, {} clients, duplicating network, --strategy {} --threads {}",
            reference::SERVERS,
            s.clients,
            s.strategy.name(),
            s.threads
        ),
        unique_states: s.unique_states as u64,
        total_states: s.total_states as u64,
        // Stateright counts the initial state as depth 1; the report counts actions.
        max_depth: s.max_depth.saturating_sub(1) as u64,
        cuts: Some([0, 0, 0]),
        under_approximation: false,
        lapse_folded: false,
        depth_inexact: false,
        seconds: s.seconds,
        bytes_per_state: s.bytes_per_state,
        properties: s
            .properties
            .iter()
            .map(|(name, kind, status)| PropertyResult {
                name: name.to_string(),
                kind: kind.name().into(),
                status: status.name().into(),
            })
            .collect(),
        provenance: Some(paxraft::results::Provenance::now()),
    }
}

/// How many times the scaling pairs (each model's BFS on one thread, then at once on two)
/// run: the scaling printed is their median. On a shared 2-core machine one pair moved
/// between 1.47x and 2.00x for the same build (README, "Speed"), so one pair says little.
const SCALING_ROUNDS: usize = 3;

/// One run of the comparison: a model, a strategy, a thread count.
type Run = (&'static str, Strategy, usize);

/// The side-by-side comparison: each run in a fresh process, one after the other; the
/// table printed, the results returned for saving.
///
/// Order: each model's BFS on one thread and then on two, back to back (a pair: the
/// scaling), the three models in turn; then DFS on one thread; then [`SCALING_ROUNDS`] - 1
/// more rounds of the pairs. The table and the saved results are the first round's and the
/// DFS runs; the scaling line gives every round and the median.
fn comparison(quick: bool) -> Vec<CheckResult> {
    const MODELS: [&str; 3] = ["reference", "raft", "multipaxos"];
    let pairs = || {
        MODELS
            .iter()
            .flat_map(|&m| [(m, Strategy::Bfs, 1), (m, Strategy::Bfs, 2)])
            .collect::<Vec<Run>>()
    };
    let mut table: Vec<Run> = pairs();
    table.extend(MODELS.iter().map(|&m| (m, Strategy::Dfs, 1)));
    println!(
        "model-check comparison: each run in a fresh process; BFS on 1 and 2 threads back to \
         back, {SCALING_ROUNDS} rounds"
    );
    println!(
        "  {:<16} {:<4} {:>7} {:>10} {:>6} {:>8} {:>10} {:>11} {:>12}",
        "model",
        "",
        "threads",
        "unique",
        "depth",
        "seconds",
        "states/s",
        "bytes/state",
        "x reference"
    );
    let mut out: Vec<(Run, CheckResult)> = Vec::new();
    for run in table {
        let r = run_child(run, quick);
        // Against the reference run with the same strategy and threads (run before it).
        let base = out
            .iter()
            .find(|((m, st, th), _)| *m == "reference" && (*st, *th) == (run.1, run.2))
            .map(|(_, b)| b.states_per_sec());
        print_row(run, &r, base);
        out.push((run, r));
    }
    // Each round's scaling by model: the first round's from the table.
    let mut scaling: Vec<Vec<f64>> = MODELS.iter().map(|m| vec![scaling_of(&out, m)]).collect();
    for round in 2..=SCALING_ROUNDS {
        println!("  scaling round {round}:");
        let mut this: Vec<(Run, CheckResult)> = Vec::new();
        for run in pairs() {
            let r = run_child(run, quick);
            print_row(run, &r, None);
            this.push((run, r));
        }
        for (k, m) in MODELS.iter().enumerate() {
            scaling[k].push(scaling_of(&this, m));
        }
    }
    println!("  BFS, 2 threads over 1 thread, back to back (median of {SCALING_ROUNDS} rounds):");
    for (m, rounds) in MODELS.iter().zip(&scaling) {
        let mut sorted = rounds.clone();
        sorted.sort_by(f64::total_cmp);
        let each: Vec<String> = rounds.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "    {m:<16} {:.2}x (rounds {})",
            sorted[sorted.len() / 2],
            each.join(", ")
        );
    }
    out.into_iter().map(|(_, r)| r).collect()
}

/// The depth a comparison run of `model` explores to.
fn comparison_depth(model: &str, quick: bool) -> usize {
    paxraft_models::check::default_depth(model) - if quick { QUICK_SHALLOWER } else { 0 }
}

/// Run `run` in a fresh process (this benchmark again, told by [`ONE`]) and read its result;
/// a violated property fails the benchmark.
fn run_child((model, strategy, threads): Run, quick: bool) -> CheckResult {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let spec = format!(
        "{model} {} {threads} {}",
        strategy.name(),
        comparison_depth(model, quick)
    );
    let child = std::process::Command::new(&exe)
        .env(ONE, &spec)
        .output()
        .expect("run this benchmark again as a child");
    assert!(
        child.status.success(),
        "{ONE}={spec}: {}",
        String::from_utf8_lossy(&child.stderr)
    );
    let text = String::from_utf8_lossy(&child.stdout);
    let line = text.lines().last().unwrap_or_default();
    let r: CheckResult = serde_json::from_str(line).expect("the child's result");
    assert!(
        !r.properties.iter().any(|p| p.status == "violated"),
        "{spec}: a property is violated"
    );
    r
}

/// One row of the comparison's table; `base`: the reference's states/s to compare with.
fn print_row((model, strategy, threads): Run, r: &CheckResult, base: Option<f64>) {
    let ratio = match (model, base) {
        ("reference", _) | (_, None) => String::new(),
        (_, Some(b)) => format!("{:.2}", r.states_per_sec() / b),
    };
    println!(
        "  {:<16} {:<4} {:>7} {:>10} {:>6} {:>8.2} {:>10.0} {:>11} {:>12}",
        model,
        strategy.name(),
        threads,
        r.unique_states,
        r.max_depth,
        r.seconds,
        r.states_per_sec(),
        r.bytes_per_state.map_or("-".into(), |b| format!("{b:.0}")),
        ratio
    );
}

/// `model`'s BFS states/s on two threads over one, from the runs of one round.
fn scaling_of(runs: &[(Run, CheckResult)], model: &str) -> f64 {
    let rate = |threads: usize| {
        runs.iter()
            .find(|((m, st, th), _)| *m == model && *st == Strategy::Bfs && *th == threads)
            .map(|(_, r)| r.states_per_sec())
            .expect("each round runs every model's BFS pair")
    };
    rate(2) / rate(1)
}
