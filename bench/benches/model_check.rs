//! Model-checking speed: unique states per second of each protocol's default `paxraft check`
//! configuration, bounded to a smaller depth (12 instead of 18) so a run takes seconds, not
//! minutes; at that depth some sometimes-properties are not yet reached, which the report
//! shows as a bounded run rather than a failure. Criterion reports
//! states/s (`Throughput::Elements` = unique states of one check); each check's result
//! (states, depth, time, property verdicts) goes to `reports/data/checks.json`.
//!
//! `PAXRAFT_BENCH_QUICK=1`: a shallower depth.

mod common;

use std::time::Duration;

use criterion::{SamplingMode, Throughput};
use paxraft::results::{CheckResult, Results};
use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_models::{check, Checkable, Cmd, Kind, ModelConfig, SearchOptions, Summary};

/// How many actions shallower than `paxraft check`'s default depth the measured checks go
/// (each is run several times), and the quick ones.
const SHALLOWER: usize = 1;
const QUICK_SHALLOWER: usize = 3;

fn run<R: Checkable>(depth: usize) -> Summary {
    let search = SearchOptions {
        depth: Some(depth),
        ..SearchOptions::default()
    };
    check::<R>(
        &ModelConfig::default(),
        &search,
        Duration::from_secs(3600),
        |_| {},
    )
}

fn main() {
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
    common::finish(&c, "model-check", |dir| {
        Results::merge_checks(dir, &results)
    });
}
