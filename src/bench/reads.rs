//! Read-heavy and mixed workloads: what each way of serving reads costs under load.
//!
//! A [`ReadLoad`] makes a share of a [`Load`](super::Load)'s operations gets (spread evenly
//! among the puts) and says how the cluster serves them ([`ReadPath`]). The benchmarks
//! (bench/benches/throughput.rs, groups `reads-*`) sweep [`READ_MIXES`] for every path and protocol;
//! [`compare_reads`] is the tour's one-line version. Results go to `data/reads.json`
//! ([`crate::report::reads`]).

use std::path::Path;
use std::time::Duration;

use paxraft_impls::ReadMode;

use super::{measure_for, start, BenchError, LoadConfig};
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::report::reads::{merge_short, ReadPoint, ReadRatio};
use crate::runtime::RuntimeConfig;

/// How a cluster serves reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReadPath {
    /// A get is a command like a put: appended, replicated to a majority, committed, applied.
    #[default]
    Log,
    /// ReadIndex at the leader (Ongaro's dissertation §6.4): one heartbeat round to a majority
    /// confirms it still leads, then it answers from its state machine. No log write.
    ReadIndex,
    /// Leader leases (diss. §6.4.1): a leader whose lease holds answers at once, with no
    /// round (the clients read its state machine on their own threads while its replica
    /// allows it: `runtime::local`); the heartbeat renews the lease (drift bound:
    /// [`crate::runtime::lease_clock_drift`]).
    Lease,
    /// ReadIndex with follower reads on, each client reading from its own node: a follower
    /// asks the leader for the read index, waits until it has applied it, and answers.
    FollowerReads,
}

impl ReadPath {
    /// Every path, cheapest-to-explain first.
    pub const ALL: [ReadPath; 4] = [
        ReadPath::Log,
        ReadPath::ReadIndex,
        ReadPath::Lease,
        ReadPath::FollowerReads,
    ];

    /// The name in saved results and reports: `log`, `read-index`, `lease`,
    /// `follower-reads`.
    pub fn name(self) -> &'static str {
        match self {
            ReadPath::Log => "log",
            ReadPath::ReadIndex => "read-index",
            ReadPath::Lease => "lease",
            ReadPath::FollowerReads => "follower-reads",
        }
    }

    /// The runtime configuration that serves reads this way.
    pub fn runtime(self) -> RuntimeConfig {
        let mut cfg = RuntimeConfig::default();
        cfg.protocol.reads = match self {
            ReadPath::Log => ReadMode::Log,
            ReadPath::ReadIndex | ReadPath::FollowerReads => ReadMode::ReadIndex,
            ReadPath::Lease => ReadMode::Lease,
        };
        cfg.protocol.follower_reads = self == ReadPath::FollowerReads;
        if self == ReadPath::Lease {
            cfg.protocol.clock_drift = Some(crate::runtime::lease_clock_drift());
        }
        cfg
    }
}

impl std::fmt::Display for ReadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The reads of a load: what share of operations are gets, and how they are served.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadLoad {
    /// Percent of operations that are gets (0 to 100); the rest are puts.
    pub percent: u8,
    /// How they are served.
    pub path: ReadPath,
}

/// The read shares the benchmarks sweep: read-only, read-heavy, balanced.
pub const READ_MIXES: [u8; 3] = [100, 90, 50];

/// Whether `protocol` can serve reads by `path` (every protocol can through the log; the
/// others need [`Replica::READS`](paxraft_impls::Replica::READS)).
pub fn has_read_path(protocol: Protocol, path: ReadPath) -> bool {
    struct Reads;
    impl ProtocolVisitor for Reads {
        type Output = bool;
        fn visit<R: Hosted>(self) -> bool {
            <R as paxraft_impls::Replica<crate::runtime::Cmd<paxraft_impls::sm::Kv>>>::READS
        }
    }
    path == ReadPath::Log || with_protocol(protocol, Reads)
}

/// A measured point of a read load, for the report.
pub fn read_point(cfg: &LoadConfig, point: crate::results::BenchPoint) -> ReadPoint {
    ReadPoint {
        path: cfg.reads.path.name().to_string(),
        read_percent: cfg.reads.percent,
        point,
    }
}

/// The tour's comparison: `protocol` on 3 servers at `percent`% reads and `outstanding`
/// requests, once per path of `paths` that the protocol has (a path it lacks is left out),
/// `per_point` each after a fifth of it to warm up. With `save_to`, merged into that report
/// directory's `data/reads.json` without replacing longer measurements.
pub fn compare_reads(
    protocol: Protocol,
    paths: &[ReadPath],
    percent: u8,
    outstanding: usize,
    per_point: Duration,
    save_to: Option<&Path>,
) -> Result<Vec<ReadPoint>, BenchError> {
    let mut points = Vec::new();
    for &path in paths {
        if let Some(p) = measure_path(protocol, path, percent, outstanding, per_point)? {
            points.push(p);
        }
    }
    if let Some(dir) = save_to {
        merge_short(dir, &points).map_err(|source| BenchError::Save {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(points)
}

/// One point: `protocol` on 3 servers serving `percent`% reads by `path` under `outstanding`
/// requests, `per_point` after a fifth of it to warm up (`None`: the protocol lacks the path).
fn measure_path(
    protocol: Protocol,
    path: ReadPath,
    percent: u8,
    outstanding: usize,
    per_point: Duration,
) -> Result<Option<ReadPoint>, BenchError> {
    let cfg = LoadConfig::read_mix(protocol, path, percent, outstanding);
    let mut load = match start(cfg.clone()) {
        Err(BenchError::NoReadPath { .. }) => return Ok(None),
        other => other?,
    };
    let p = measure_for(load.as_mut(), per_point / 5, per_point)?;
    Ok(Some(read_point(&cfg, p)))
}

/// The paths [`side_by_side`] compares with the log: the leader's (follower reads spread the
/// reads over nodes, a different measurement).
pub const SIDE_BY_SIDE: [ReadPath; 3] = [ReadPath::Log, ReadPath::ReadIndex, ReadPath::Lease];

/// Each read path's throughput as a multiple of the log's, measured side by side
/// ([`super::side_by_side_rounds`]): `rounds` rounds, each measuring every path of
/// [`SIDE_BY_SIDE`] the protocol has at `percent`% reads and `outstanding` requests, 3 servers.
/// `progress(done, total)` after each point.
pub fn side_by_side(
    protocol: Protocol,
    percent: u8,
    outstanding: usize,
    per_point: Duration,
    rounds: usize,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<ReadRatio>, BenchError> {
    let paths: Vec<ReadPath> = SIDE_BY_SIDE
        .into_iter()
        .filter(|&p| has_read_path(protocol, p))
        .collect();
    if paths.len() < 2 {
        return Ok(Vec::new());
    }
    let configs: Vec<LoadConfig> = paths
        .iter()
        .map(|&path| LoadConfig::read_mix(protocol, path, percent, outstanding))
        .collect();
    let points = super::side_by_side_rounds(&configs, per_point, rounds, progress)?;
    let log = &points[0];
    Ok(paths
        .iter()
        .zip(&points)
        .skip(1)
        .map(|(path, ps)| ReadRatio {
            protocol: protocol.name().to_string(),
            servers: 3,
            outstanding,
            read_percent: percent,
            path: path.name().to_string(),
            rounds: log
                .iter()
                .zip(ps)
                .map(|(l, p)| [l.ops_per_sec, p.ops_per_sec])
                .collect(),
            cpu: log
                .iter()
                .zip(ps)
                .map(|(l, p)| [l.cpu.clone(), p.cpu.clone()])
                .collect(),
            errors: log.iter().chain(ps).map(|p| p.errors).sum(),
            elections: log.iter().chain(ps).filter_map(|p| p.elections).sum(),
            provenance: Some(crate::results::Provenance::now()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_runtime_configuration() {
        let modes: Vec<_> = ReadPath::ALL
            .iter()
            .map(|p| {
                let c = p.runtime().protocol;
                (p.name(), c.reads, c.follower_reads)
            })
            .collect();
        assert_eq!(
            modes,
            [
                ("log", ReadMode::Log, false),
                ("read-index", ReadMode::ReadIndex, false),
                ("lease", ReadMode::Lease, false),
                ("follower-reads", ReadMode::ReadIndex, true),
            ]
        );
        let lease = ReadPath::Lease.runtime().protocol;
        assert_eq!(lease.clock_drift, Some(crate::runtime::lease_clock_drift()));
        // A lease shorter than the heartbeat interval lapses between renewals, and the
        // lease benchmark would measure rounds, not leases.
        let length = lease.lease().expect("the drift bound leaves a lease");
        assert!(
            length >= 3 * lease.heartbeat_interval,
            "a {length:?} lease against a heartbeat every {:?}",
            lease.heartbeat_interval
        );
        for p in ReadPath::ALL {
            p.runtime().protocol.validate(3).unwrap();
        }
    }

    #[test]
    fn a_read_share_over_100_and_a_path_the_protocol_lacks_are_refused() {
        let cfg = |percent, path| LoadConfig {
            reads: ReadLoad { percent, path },
            ..LoadConfig::writes(Protocol::Unreplicated, 1, 4, 0)
        };
        let e = start(cfg(101, ReadPath::Log)).err().expect("refused");
        assert!(matches!(e, BenchError::ReadPercent(101)), "{e}");
        // The unreplicated ceiling has no read path without the log.
        let e = start(cfg(90, ReadPath::ReadIndex)).err().expect("refused");
        assert!(
            matches!(
                e,
                BenchError::NoReadPath {
                    protocol: "unreplicated",
                    path: "read-index"
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn gets_are_exactly_the_read_share_spread_among_the_puts() {
        for p in [0, 50, 90, 100] {
            let reads: Vec<bool> = (1..=100u64).map(|i| super::super::is_read(i, p)).collect();
            assert_eq!(reads.iter().filter(|&&r| r).count() as u64, p, "{p}%");
            // Spread: no ten operations in a row without a get, unless the share is 0.
            if p >= 50 {
                assert!(reads.chunks(10).all(|c| c.contains(&true)), "{p}%");
            }
        }
    }

    #[test]
    fn side_by_side_measures_every_leader_path_each_round_against_the_log_of_that_round() {
        let mut calls = Vec::new();
        let ratios = side_by_side(
            Protocol::Raft,
            90,
            8,
            Duration::from_millis(50),
            2,
            |done, total| calls.push((done, total)),
        )
        .unwrap();
        assert_eq!(calls, (1..=6).map(|d| (d, 6)).collect::<Vec<_>>());
        let paths: Vec<&str> = ratios.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["read-index", "lease"]);
        for r in &ratios {
            assert_eq!(
                (r.protocol.as_str(), r.outstanding, r.read_percent),
                ("raft", 8, 90)
            );
            assert_eq!(r.rounds.len(), 2, "{r:?}");
            // The same log measurement of a round is the base of every path's ratio.
            assert_eq!(
                r.rounds.iter().map(|[log, _]| *log).collect::<Vec<_>>(),
                ratios[0]
                    .rounds
                    .iter()
                    .map(|[log, _]| *log)
                    .collect::<Vec<_>>()
            );
            assert!(r.rounds.iter().flatten().all(|&ops| ops > 0.0), "{r:?}");
            assert_eq!(r.ratios().len(), 2);
        }
        // The ceiling has no path but the log: nothing to compare.
        assert!(side_by_side(
            Protocol::Unreplicated,
            90,
            8,
            Duration::from_millis(10),
            1,
            |_, _| {}
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn a_90_percent_read_load_through_the_log_completes_every_operation() {
        let mut load = start(LoadConfig {
            reads: ReadLoad {
                percent: 90,
                path: ReadPath::Log,
            },
            ..LoadConfig::writes(Protocol::Raft, 3, 8, 0)
        })
        .unwrap();
        load.run(400).unwrap();
        assert_eq!((load.point().ops, load.errors()), (400, 0));
    }
}
