//! Recovery measurements: throughput over time with the leader crashed under load
//! ([`recovery`]), the time from a leader crash to the next commit
//! ([`time_to_first_commit`]), and how long a restarted node takes to rebuild its state
//! from its log and catch up ([`time_to_rebuild`]); the same timeline with the leadership
//! handed over instead of crashed, and leadership transfers timed against an idle commit
//! ([`time_transfers`], [`time_idle_commits`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use paxraft_impls::sm::{Kv, KvOp};
use paxraft_impls::{Change, NodeId, Replica, Role};

use super::{default_clients, started, BenchError, Driven, Load, LoadConfig};
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::results::{CatchUpRun, Disruption, RecoveryRun, RestartRun};
use crate::runtime::{ClientConfig, Cmd};

/// Settings of a [`recovery`] run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Cluster size.
    pub servers: usize,
    /// Requests outstanding over all clients.
    pub outstanding: usize,
    /// When to crash the leader, from the start of the load.
    pub crash_at: Duration,
    /// Length of the whole run.
    pub run_for: Duration,
    /// Width of one throughput sample.
    pub bucket: Duration,
    /// What happens to the leader at `crash_at`.
    pub event: Disruption,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            servers: 3,
            outstanding: 256,
            crash_at: Duration::from_millis(300),
            run_for: Duration::from_millis(900),
            bucket: Duration::from_millis(10),
            event: Disruption::Crash,
        }
    }
}

/// How long a leader crash of `protocol` interrupts commits: the time from the crash to the
/// first commit after it, measured once (no load timeline). Used by criterion's recovery
/// benchmark.
pub fn time_to_first_commit(
    protocol: Protocol,
    servers: usize,
    outstanding: usize,
) -> Result<Duration, BenchError> {
    struct FirstCommit(RecoveryConfig);
    impl ProtocolVisitor for FirstCommit {
        type Output = Result<Duration, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            Ok(crash_under_load::<R>(&self.0)?.1)
        }
    }
    let cfg = RecoveryConfig {
        servers,
        outstanding,
        crash_at: Duration::from_millis(60),
        run_for: Duration::from_millis(60),
        bucket: Duration::from_millis(10),
        event: Disruption::Crash,
    };
    with_protocol(protocol, FirstCommit(cfg))
}

/// How long a restarted node takes to be back: `ops` commands committed under load, then a
/// follower crashed and restarted with nothing in memory; the time from its restart until it
/// has replayed its log and applied everything the cluster had committed (its state machine
/// rebuilt from slot 1; the commit point comes with the leader's next heartbeat). Used by
/// criterion's recovery benchmark.
pub fn time_to_rebuild(
    protocol: Protocol,
    servers: usize,
    ops: u64,
) -> Result<Duration, BenchError> {
    struct Rebuild(Protocol, usize, u64);
    impl ProtocolVisitor for Rebuild {
        type Output = Result<Duration, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            rebuild::<R>(self.0, self.1, self.2)
        }
    }
    with_protocol(protocol, Rebuild(protocol, servers, ops))
}

fn rebuild<R: Hosted>(
    protocol: Protocol,
    servers: usize,
    ops: u64,
) -> Result<Duration, BenchError> {
    // No snapshots: the restarted node replays the whole log, as the measurement says.
    let mut load = Load::<R>::start(LoadConfig {
        snapshots: None,
        ..LoadConfig::writes(protocol, servers, 256, 0)
    })?;
    load.run(ops)?;
    let cluster = &mut load.cluster;
    let leader = cluster
        .leader()
        .ok_or(BenchError::NoLeaderAfterLoad(R::NAME))?;
    let node = (leader + 1) % servers;
    let committed = cluster.status(leader).map_or(0, |s| s.commit);
    cluster.crash(node);
    restart_until_caught_up(cluster, node, committed, Duration::from_secs(30))
}

/// Restart crashed `node` and wait until it has applied `committed`: how long that took, or
/// [`BenchError::NoCatchUp`] after `give_up`.
fn restart_until_caught_up<R: Replica<Cmd<Kv>>>(
    cluster: &mut crate::runtime::Cluster<R, Kv>,
    node: usize,
    committed: paxraft_impls::Slot,
    give_up: Duration,
) -> Result<Duration, BenchError> {
    let restart = Instant::now();
    cluster.restart(node);
    applied_since(cluster, node, committed, restart, give_up)
}

/// Wait until `node` has applied `committed`: the time since `since`, or
/// [`BenchError::NoCatchUp`] once `give_up` has passed since then.
fn applied_since<R: Replica<Cmd<Kv>>>(
    cluster: &crate::runtime::Cluster<R, Kv>,
    node: usize,
    committed: paxraft_impls::Slot,
    since: Instant,
    give_up: Duration,
) -> Result<Duration, BenchError> {
    let deadline = since + give_up;
    while cluster.applied(node).0 < committed {
        if Instant::now() > deadline {
            return Err(BenchError::NoCatchUp(R::NAME));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok(since.elapsed())
}

/// Catch-up by snapshot: a follower of a 3-node cluster with snapshots every `every` slots
/// is crashed, the others commit `behind` commands under load (compacting as they go), and
/// the follower restarts with the little it had persisted; the time until it has applied
/// everything committed, and the snapshot bytes it was sent.
pub fn catch_up(protocol: Protocol, behind: u64, every: u64) -> Result<CatchUpRun, BenchError> {
    struct Go(Protocol, u64, u64);
    impl ProtocolVisitor for Go {
        type Output = Result<CatchUpRun, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            let Go(protocol, behind, every) = self;
            let mut load = Load::<R>::start(compacting(protocol, every))?;
            let leader = load
                .cluster
                .leader()
                .ok_or(BenchError::NoLeaderAfterLoad(R::NAME))?;
            let node = (leader + 1) % 3;
            load.cluster.crash(node);
            load.run(behind)?;
            let cluster = &mut load.cluster;
            let committed = cluster.status(leader).map_or(0, |s| s.commit);
            let before = cluster.restored(node);
            let seconds =
                restart_until_caught_up(cluster, node, committed, Duration::from_secs(60))?
                    .as_secs_f64();
            let after = cluster.restored(node);
            Ok(CatchUpRun {
                protocol: R::NAME.to_string(),
                behind,
                every,
                seconds,
                snapshots: after.0 - before.0,
                snapshot_bytes: after.1 - before.1,
                provenance: Some(crate::results::Provenance::now()),
            })
        }
    }
    with_protocol(protocol, Go(protocol, behind, every))
}

/// 3 servers, 1024 outstanding, a snapshot every `every` slots.
fn compacting(protocol: Protocol, every: u64) -> LoadConfig {
    LoadConfig {
        snapshots: Some(paxraft_impls::SnapshotPolicy {
            every,
            chunk: paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK,
        }),
        ..LoadConfig::writes(protocol, 3, 1024, 0)
    }
}

/// A leader restart with a compacted log: a 3-node cluster snapshotting every `every` slots
/// commits `ops` commands under load, then its leader is crashed and restarted at once (from
/// its snapshot and the log above it). Measured from the restart: until a new client write
/// commits (the survivors' election timeout runs out, one of the three is elected and
/// commits), and until the restarted node has applied everything committed before its crash.
pub fn leader_restart(protocol: Protocol, ops: u64, every: u64) -> Result<RestartRun, BenchError> {
    struct Go(Protocol, u64, u64);
    impl ProtocolVisitor for Go {
        type Output = Result<RestartRun, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            let Go(protocol, ops, every) = self;
            let cfg = compacting(protocol, every);
            let timeout = cfg.reads.path.runtime().protocol.election_timeout;
            let mut load = Load::<R>::start(cfg)?;
            load.run(ops)?;
            let cluster = &mut load.cluster;
            let leader = cluster
                .leader()
                .ok_or(BenchError::NoLeaderAfterLoad(R::NAME))?;
            let status = cluster
                .status(leader)
                .ok_or(BenchError::NoLeaderAfterLoad(R::NAME))?;
            cluster.crash(leader);
            let restart = Instant::now();
            cluster.restart(leader);
            // A client that resends soon: the first tries reach a cluster with no leader.
            let mut probe = cluster.client(ClientConfig {
                retry_after: Duration::from_millis(5),
                ..ClientConfig::default()
            });
            probe.submit(KvOp::Put(u64::MAX, Vec::new())).map_err(|e| {
                BenchError::NoFirstCommit {
                    protocol: R::NAME,
                    reason: e.to_string(),
                }
            })?;
            let serve = restart.elapsed();
            let rebuilt = applied_since(
                cluster,
                leader,
                status.commit,
                restart,
                Duration::from_secs(30),
            )?;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            Ok(RestartRun {
                protocol: R::NAME.to_string(),
                committed: status.commit,
                every,
                log_entries: status.last - status.snapshot,
                election_timeout_ms: (ms(timeout.start), ms(timeout.end)),
                serve_ms: ms(serve),
                rebuilt_ms: ms(rebuilt),
                provenance: Some(crate::results::Provenance::now()),
            })
        }
    }
    with_protocol(protocol, Go(protocol, ops, every))
}

/// Throughput over time with the leader crashed (or its leadership handed over) at
/// `cfg.crash_at`.
pub fn recovery<R: Replica<Cmd<Kv>>>(cfg: &RecoveryConfig) -> Result<RecoveryRun, BenchError> {
    let (done, first) = crash_under_load::<R>(cfg)?;
    let bucket_ms = cfg.bucket.as_secs_f64() * 1000.0;
    let buckets = (cfg.run_for.as_secs_f64() / cfg.bucket.as_secs_f64()).ceil() as usize;
    let mut counts = vec![0u64; buckets.max(1)];
    for t in done {
        let i = (t.as_secs_f64() / cfg.bucket.as_secs_f64()) as usize;
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let per_sec = 1.0 / cfg.bucket.as_secs_f64();
    let samples: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| ((i + 1) as f64 * bucket_ms, c as f64 * per_sec))
        .collect();
    let crash_ms = cfg.crash_at.as_secs_f64() * 1000.0;
    // Steady state: the second half of the time before the crash (the first half warms up).
    let before: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t > crash_ms / 2.0 && *t <= crash_ms)
        .map(|s| s.1)
        .collect();
    let before = before.iter().sum::<f64>() / before.len().max(1) as f64;
    let after: Vec<&(f64, f64)> = samples.iter().filter(|(t, _)| *t > crash_ms).collect();
    let min_after = after.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    // Back to 90% of the steady state: the end of the dip.
    let recovered = after
        .iter()
        .skip_while(|s| s.1 >= 0.9 * before)
        .find(|s| s.1 >= 0.9 * before)
        .map(|s| s.0 - crash_ms);
    Ok(RecoveryRun {
        protocol: R::NAME.to_string(),
        servers: cfg.servers,
        event: cfg.event,
        crash_at_ms: crash_ms,
        samples,
        time_to_first_commit_ms: first.as_secs_f64() * 1000.0,
        before_ops_per_sec: Some(before),
        min_ops_per_sec: Some(if min_after.is_finite() {
            min_after
        } else {
            0.0
        }),
        recovered_ms: recovered,
        provenance: Some(crate::results::Provenance::now()),
    })
}

/// Run closed-loop load, crash the leader at `crash_at`; returns the completion times of
/// successful requests (from the start) and the time from the crash to the first commit of a
/// later term: a survivor in a term above the crashed leader's, with a commit point past the
/// one the leader had reported.
fn crash_under_load<R: Replica<Cmd<Kv>>>(
    cfg: &RecoveryConfig,
) -> Result<(Vec<Duration>, Duration), BenchError> {
    if cfg.servers < 3 {
        return Err(BenchError::Config(
            "recovery needs at least 3 servers (a majority must survive)",
        ));
    }
    if cfg.crash_at > cfg.run_for || cfg.bucket.is_zero() || cfg.outstanding == 0 {
        return Err(BenchError::Config(
            "recovery: need crash_at <= run_for, a bucket > 0, outstanding >= 1",
        ));
    }
    // The runtime's default compacts ([`RuntimeConfig`](crate::runtime::RuntimeConfig)): when
    // it did not, these logs only grew and were copied whole at each doubling of their vector
    // (67,000 entries: a follower's append took 20 ms); both followers stalling at once past
    // the 20 ms election timeout elected a new leader several times a second before any
    // crash, which made the rate "before" a third of the throughput points' and a crash could
    // hit a leader already deposed.
    let mut cluster = started::<R>(cfg.servers)?;
    let k = default_clients(cfg.outstanding);
    let mut clients: Vec<Driven<R>> = (0..k)
        .map(|i| {
            let window = cfg.outstanding / k + usize::from(i < cfg.outstanding % k);
            let c = cluster.client(ClientConfig {
                max_outstanding: window,
                // Resend soon after silence: a crash leaves requests unanswered.
                retry_after: Duration::from_millis(20),
                ..ClientConfig::default()
            });
            Driven::new(c, window, i, 0)
        })
        .collect();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut first = None;
    let times = std::thread::scope(|s| -> Result<Vec<Duration>, BenchError> {
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|c| {
                let stop = &stop;
                s.spawn(move || {
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        while c.client.outstanding() < c.window {
                            c.key = (c.key + 1) % 1024;
                            // Only completion times are kept: no send time per request.
                            if c.client.send(KvOp::Put(c.key, Vec::new())).is_err() {
                                break;
                            }
                        }
                        if let Some((_, res)) = c.client.poll(Duration::from_millis(5)) {
                            if res.is_ok() {
                                done.push(start.elapsed());
                            }
                        }
                    }
                    done
                })
            })
            .collect();
        std::thread::sleep(cfg.crash_at.saturating_sub(start.elapsed()));
        // Under load a leader may be between terms at that instant: wait for one (bounded),
        // and for no other node to be campaigning already: a crash then would time an
        // election begun before it (the tour once printed a failover of 0.0 ms).
        let crashed = leader_within(&cluster, |l| {
            (0..cfg.servers).filter(|&i| i != l).all(|i| {
                cluster
                    .status(i)
                    .map_or(true, |s| matches!(s.role, Role::Follower | Role::Leader))
            })
        });
        if let (Some(l), Disruption::Transfer) = (crashed, cfg.event) {
            // Ask the leader to hand over to the next node; the answer comes once the old
            // leader has heard from it as leader. Its time is the disruption's measure.
            let target = NodeId(((l + 1) % cfg.servers) as u8);
            let asked = Instant::now();
            first = cluster
                .change(Change::Transfer(target), Duration::from_secs(2))
                .ok()
                .map(|_| asked.elapsed());
        } else if let Some(l) = crashed {
            // The crashed leader's term and commit point, read just before the crash. The
            // first commit after the crash is a new leader's, in a later term, past that
            // point: a survivor's applied point passing the dead leader's may be an entry the
            // old leader had committed (its last messages still arriving), and a follower's
            // term may be above the leader's already (multi-Paxos reports the highest round
            // it tried, and a follower that bid in vain under load keeps following), either
            // of which read as a failover of 0 ms.
            let last = cluster.status(l);
            cluster.crash(l);
            let crash_time = Instant::now();
            let (term, commit) = last.map_or((0, 0), |s| (s.term, s.commit));
            let deadline = crash_time + Duration::from_secs(10);
            while Instant::now() < deadline {
                let passed = (0..cfg.servers)
                    .filter(|&i| i != l)
                    .filter_map(|i| cluster.status(i))
                    .any(|s| s.role == Role::Leader && s.term > term && s.commit > commit);
                if passed {
                    first = Some(crash_time.elapsed());
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        std::thread::sleep(cfg.run_for.saturating_sub(start.elapsed()));
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| BenchError::LoadThreadPanicked)?);
        }
        if crashed.is_none() {
            return Err(BenchError::NoLeaderToCrash(R::NAME));
        }
        Ok(all)
    })?;
    let first = first.ok_or(BenchError::NoCommitAfterCrash(R::NAME))?;
    Ok((times, first))
}

/// `transfers` leadership transfers on an idle cluster of `servers` (each to the next node
/// round the ring): the time of each, from asking to the answer. A transfer that gives up
/// (the target did not catch up within an election timeout) is an error: on an idle cluster
/// the target is always caught up.
pub fn time_transfers(
    protocol: Protocol,
    servers: usize,
    transfers: u64,
) -> Result<Vec<Duration>, BenchError> {
    struct Go(usize, u64);
    impl ProtocolVisitor for Go {
        type Output = Result<Vec<Duration>, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            let Go(servers, transfers) = self;
            let cluster = started::<R>(servers)?;
            let mut took = Vec::new();
            let failed = |reason: String| BenchError::Transfer {
                protocol: R::NAME,
                reason,
            };
            for _ in 0..transfers {
                let leader = leader_within(&cluster, |_| true)
                    .ok_or(BenchError::NoLeaderAfterLoad(R::NAME))?;
                let target = NodeId(((leader + 1) % servers) as u8);
                let asked = Instant::now();
                cluster
                    .change(Change::Transfer(target), Duration::from_secs(2))
                    .map_err(|e| failed(e.to_string()))?;
                took.push(asked.elapsed());
                // The next transfer starts from a settled leader: the target's.
                leader_within(&cluster, |l| l == target.index())
                    .ok_or_else(|| failed(format!("{target} not seen leading within 2 s")))?;
            }
            Ok(took)
        }
    }
    with_protocol(protocol, Go(servers, transfers))
}

/// `commits` writes by one client, one at a time, on an idle cluster of `servers`: the time
/// of each. A commit is two message round trips (client to leader and back, leader to a
/// quorum and back), the yardstick [`time_transfers`] is read against: a transfer after the
/// target caught up is also two (TimeoutNow or Handoff out, the target's phase 1 or votes
/// out and back, its first message as leader back).
pub fn time_idle_commits(
    protocol: Protocol,
    servers: usize,
    commits: u64,
) -> Result<Vec<Duration>, BenchError> {
    struct Go(usize, u64);
    impl ProtocolVisitor for Go {
        type Output = Result<Vec<Duration>, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            let Go(servers, commits) = self;
            let mut cluster = started::<R>(servers)?;
            let mut client = cluster.client(ClientConfig::default());
            let mut took = Vec::new();
            for k in 0..commits {
                let t = Instant::now();
                client
                    .submit(KvOp::Put(k % 1024, Vec::new()))
                    .map_err(|e| BenchError::NoFirstCommit {
                        protocol: R::NAME,
                        reason: e.to_string(),
                    })?;
                took.push(t.elapsed());
            }
            Ok(took)
        }
    }
    with_protocol(protocol, Go(servers, commits))
}

/// The node that leads, once one does that `wanted` accepts: polled for at most 2 s
/// (`None` then).
fn leader_within<R: Replica<Cmd<Kv>>>(
    cluster: &crate::runtime::Cluster<R, Kv>,
    wanted: impl Fn(usize) -> bool,
) -> Option<usize> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(l) = cluster.leader().filter(|&l| wanted(l)) {
            return Some(l);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// [`recovery`] of a protocol chosen at run time (`unreplicated` has nothing to recover with).
pub fn recovery_of(protocol: Protocol, cfg: &RecoveryConfig) -> Result<RecoveryRun, BenchError> {
    struct Recover<'a>(&'a RecoveryConfig);
    impl ProtocolVisitor for Recover<'_> {
        type Output = Result<RecoveryRun, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            recovery::<R>(self.0)
        }
    }
    if protocol == Protocol::Unreplicated {
        return Err(BenchError::Config(
            "unreplicated has a single server: a crash is an outage",
        ));
    }
    with_protocol(protocol, Recover(cfg))
}
