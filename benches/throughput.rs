//! Throughput and latency under parallel closed-loop load: protocol × cluster size ×
//! outstanding requests × payload. rayon drives the clients (see `paxraft::bench`).
//!
//! Criterion reports ops/s (`Throughput::Elements`, one element per committed operation);
//! latency p50/p99/p99.9 of every measured operation goes to `reports/data/bench.json`.
//!
//! `PAXRAFT_BENCH_QUICK=1`: 3 servers, 1 and 1024 outstanding, empty commands, 1 s each.

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, SamplingMode, Throughput};
use paxraft::bench::{self, AnyLoad, LoadConfig};
use paxraft::protocol::Protocol;
use paxraft::results::{BenchPoint, Results};

fn main() {
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
        &[1, 16, 256, 1024, 4096]
    };
    let payloads: &[usize] = if quick { &[0] } else { &[0, 128] };
    let cluster_sizes: &[usize] = if quick { &[3] } else { &[3, 5] };

    let mut points: Vec<BenchPoint> = Vec::new();
    for &payload in payloads {
        for protocol in Protocol::ALL {
            // The ceiling serves from one node whatever the cluster size: measure it once.
            let sizes: &[usize] = if protocol == Protocol::Unreplicated {
                &[1]
            } else {
                cluster_sizes
            };
            for &servers in sizes {
                let mut g = c.benchmark_group(format!(
                    "throughput-{}-{servers}n-{payload}B",
                    protocol.name()
                ));
                g.throughput(Throughput::Elements(1))
                    .sampling_mode(SamplingMode::Flat);
                for &out in outstanding {
                    let cfg = LoadConfig {
                        protocol,
                        servers,
                        outstanding: out,
                        payload_bytes: payload,
                        clients: 0,
                    };
                    // Started on first use, so a filtered-out point costs nothing.
                    let mut load: Option<Box<dyn AnyLoad>> = None;
                    g.bench_function(BenchmarkId::from_parameter(out), |b| {
                        b.iter_custom(|iters| {
                            let l = load.get_or_insert_with(|| {
                                bench::start(cfg.clone()).unwrap_or_else(|e| panic!("{cfg:?}: {e}"))
                            });
                            l.run(iters).unwrap_or_else(|e| panic!("{cfg:?}: {e}"))
                        })
                    });
                    if let Some(l) = load {
                        if l.errors() > 0 {
                            eprintln!("warning: {cfg:?}: {} requests timed out", l.errors());
                        }
                        let p = l.point();
                        println!(
                            "  {} {}n {out} outstanding {payload}B: {:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
                            p.protocol, p.servers, p.ops_per_sec, p.p50_us, p.p99_us, p.p999_us
                        );
                        points.push(p);
                    }
                }
                g.finish();
            }
        }
    }
    common::finish(&c, "throughput", |dir| Results::merge_bench(dir, &points));
}
