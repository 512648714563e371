//! Snapshots in the threaded runtime (`Config::snapshots`): logs stay bounded in a long run,
//! and a replica that fell behind the leader's snapshot catches up from it.
//!
//! Both consensus protocols run every test, through the protocol registry. Bounded in time:
//! the long run is 10^6 operations (a second or two per protocol in the optimised test
//! profile); the time limits only bound a hang.

use std::thread;
use std::time::{Duration, Instant};

use paxraft::bench::{Load, LoadConfig};
use paxraft::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use paxraft::runtime::{ClientConfig, Cluster, Cmd, Error, FileStorage, RuntimeConfig, Storage};
use paxraft_impls::sm::{Kv, KvOp, SessionError};
use paxraft_impls::{Replica, SnapshotPolicy};

/// Run `f` for every consensus protocol that snapshots.
fn for_each_protocol(f: impl Fn(Protocol) + Copy) {
    struct Snapshots;
    impl ProtocolVisitor for Snapshots {
        type Output = bool;
        fn visit<R: Hosted>(self) -> bool {
            <R as Replica<Cmd<Kv>>>::SNAPSHOTS
        }
    }
    for p in Protocol::REPLICATED {
        assert!(
            with_protocol(p, Snapshots),
            "{p}: every consensus protocol snapshots"
        );
        f(p);
    }
}

/// Issue 17's soak made short: 10^6 operations with 1024 outstanding and a snapshot every
/// 10,000 slots. Between rounds every replica's log (the slots above its snapshot) is at most
/// the threshold plus the requests in flight, and every replica has compacted.
#[test]
fn logs_stay_bounded_over_a_million_operations() {
    for_each_protocol(|protocol| {
        const EVERY: u64 = 10_000;
        const OUTSTANDING: usize = 1024;
        struct Soak(Protocol);
        impl ProtocolVisitor for Soak {
            type Output = ();
            fn visit<R: Hosted>(self) {
                let mut load = Load::<R>::start(LoadConfig {
                    snapshots: Some(SnapshotPolicy {
                        every: EVERY,
                        chunk: SnapshotPolicy::DEFAULT_CHUNK,
                    }),
                    ..LoadConfig::writes(self.0, 3, OUTSTANDING, 0)
                })
                .expect("the cluster starts");
                let mut longest = 0;
                for _ in 0..100 {
                    load.run(10_000).expect("the load runs");
                    for (i, st) in load.statuses().into_iter().enumerate() {
                        let st = st.expect("no node crashed");
                        let log = st.last - st.snapshot;
                        assert!(
                            log <= EVERY + OUTSTANDING as u64,
                            "{}: n{i} holds {log} slots above its snapshot at {} ({st:?})",
                            R::NAME,
                            st.snapshot
                        );
                        longest = longest.max(log);
                    }
                }
                assert_eq!(load.errors(), 0, "{}: every request answered", R::NAME);
                // A follower learns the last commits, and compacts, a little after the load's
                // last answer (a busy machine stretches that): wait for it, bounded.
                let floor = 1_000_000 - EVERY - OUTSTANDING as u64;
                wait_for(30, "every node to compact up to the load's end", || {
                    load.statuses()
                        .into_iter()
                        .all(|st| st.is_some_and(|st| st.snapshot >= floor))
                });
                for (i, st) in load.statuses().into_iter().enumerate() {
                    let st = st.expect("up");
                    assert!(
                        st.snapshot >= 1_000_000 - EVERY - OUTSTANDING as u64,
                        "{}: n{i} compacted as it went ({st:?})",
                        R::NAME
                    );
                }
                eprintln!("{}: longest log between rounds {longest}", R::NAME);
            }
        }
        with_protocol(protocol, Soak(protocol));
    });
}

/// Wait until `cond` holds, failing the test after `secs` (a hang, not a slow run).
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// A follower down while the others commit and compact past it restarts, receives the
/// leader's snapshot (its state machine is rebuilt from it, not from the log), and ends with
/// the same store as the others.
#[test]
fn a_restarted_follower_catches_up_from_a_snapshot() {
    for_each_protocol(|protocol| {
        struct CatchUp;
        impl ProtocolVisitor for CatchUp {
            type Output = ();
            fn visit<R: Hosted>(self) {
                let mut cfg = RuntimeConfig::default();
                cfg.protocol.snapshots = Some(SnapshotPolicy {
                    every: 50,
                    chunk: 64,
                });
                let mut c: Cluster<R, Kv> = Cluster::new(3, cfg).expect("starts");
                let mut client = c.client(ClientConfig::default());
                client.submit(KvOp::Put(0, vec![0])).expect("first commit");
                let leader = c.leader().expect("a leader committed");
                let lagging = (leader + 1) % 3;
                c.crash(lagging);
                for k in 0..500u64 {
                    client
                        .submit(KvOp::Put(k % 7, k.to_le_bytes().to_vec()))
                        .expect("a majority is up");
                }
                let st = c.status(leader).expect("leader up");
                assert!(
                    st.snapshot >= 450,
                    "{}: the leader compacted ({st:?})",
                    R::NAME
                );
                c.restart(lagging);
                wait_for(30, "the restarted follower to catch up", || {
                    c.applied(lagging).0 >= c.applied(leader).0
                        && c.state(lagging) == c.state(leader)
                });
                // Its state machine took a snapshot (it may have applied the first slots
                // itself first: a restarted Paxos acceptor learns those it holds).
                let (snapshots, bytes) = c.restored(lagging);
                assert!(
                    snapshots >= 1 && bytes > 0,
                    "{}: caught up from a snapshot (restored {snapshots}, {bytes} bytes)",
                    R::NAME
                );
                assert_eq!(c.state(lagging), c.state(leader), "{}: same store", R::NAME);
            }
        }
        with_protocol(protocol, CatchUp);
    });
}

/// Sessions expire by log time in a live cluster (`RuntimeConfig::session_timeout`, Raft
/// dissertation §6.3): a client idle through 50 commands of another is refused with
/// `Expired`, not applied; a follower that missed it all and caught up from a snapshot holds
/// the same sessions as the leader; and a store written under one timeout refuses to boot
/// under another (its replicas would expire other sessions than their peers).
#[test]
fn sessions_expire_by_log_time_and_a_store_boots_only_under_its_timeout() {
    for_each_protocol(|protocol| {
        struct Expiry;
        impl ProtocolVisitor for Expiry {
            type Output = ();
            fn visit<R: Hosted>(self) {
                let dir = crate::Scratch::new(&format!("sessions-{}", R::NAME));
                let start = |timeout: u64| {
                    let mut cfg = RuntimeConfig {
                        session_timeout: timeout,
                        ..RuntimeConfig::default()
                    };
                    cfg.protocol.snapshots = Some(SnapshotPolicy {
                        every: 40,
                        chunk: 64,
                    });
                    let d = dir.to_path_buf();
                    Cluster::<R, Kv>::with_storage(3, cfg, move |id| {
                        let s: Box<dyn Storage<R, Cmd<Kv>>> = Box::new(
                            FileStorage::<R, Cmd<Kv>>::open(d.join(format!("{id}.log")))?,
                        );
                        Ok(s)
                    })
                };
                let mut c = start(50).expect("starts");
                let mut idle = c.client(ClientConfig::default());
                let mut busy = c.client(ClientConfig::default());
                idle.submit(KvOp::Put(1, vec![1])).expect("first commit");
                let leader = c.leader().expect("a leader committed");
                let lagging = (leader + 1) % 3;
                c.crash(lagging);
                for k in 0..100u64 {
                    busy.submit(KvOp::Put(2, k.to_le_bytes().to_vec()))
                        .expect("a majority is up");
                }
                match idle.submit(KvOp::Put(1, vec![2])) {
                    Err(Error::Session(SessionError::Expired { seq: 2, .. })) => {}
                    other => panic!("{}: the idle client's put answered {other:?}", R::NAME),
                }
                assert_eq!(
                    c.state(leader).get(1),
                    Some(&vec![1]),
                    "{}: not applied",
                    R::NAME
                );
                c.restart(lagging);
                wait_for(30, "the restarted follower to catch up", || {
                    (0..3).all(|i| c.applied(i).0 >= c.applied(leader).0)
                });
                for i in 0..3 {
                    assert_eq!(
                        (c.sessions(i), c.state(i)),
                        ((1, 1), c.state(leader)),
                        "{} node {i}: the busy client's session live, the idle one's expired",
                        R::NAME
                    );
                }
                assert!(
                    c.restored(lagging).0 >= 1,
                    "{}: caught up from a snapshot",
                    R::NAME
                );
                c.shutdown();
                drop(c);
                let e = start(0).map(drop).expect_err("another timeout").to_string();
                assert!(
                    e.contains("expires sessions after 50 commands, and this cluster after 0"),
                    "{}: {e}",
                    R::NAME
                );
                start(50).expect("the same timeout boots").shutdown();
            }
        }
        with_protocol(protocol, Expiry);
    });
}

/// The catch-up measurement (`paxraft::bench::catch_up`, run at 10^6 slots behind by the
/// recovery benchmark) at a size a test affords: a follower 20,000 slots behind a cluster
/// that snapshots every 1,000 is sent at least one snapshot, of some bytes, and catches up.
#[test]
fn catch_up_by_snapshot_is_measured() {
    for_each_protocol(|protocol| {
        let r = paxraft::bench::catch_up(protocol, 20_000, 1_000).expect("catches up");
        assert!(r.snapshots >= 1 && r.snapshot_bytes > 0, "{r:?}");
        assert!(r.seconds > 0.0, "{r:?}");
        eprintln!("{r:?}");
    });
}

/// The leader-restart measurement (`paxraft::bench::leader_restart`, run after 10^6 commits by
/// the recovery benchmark) at a size a test affords: after 20,000 commits with a snapshot every
/// 1,000, the leader restarts from a compacted log (at most the threshold plus the requests in
/// flight above its snapshot), the cluster serves a new write, and the restarted node rebuilds
/// everything committed before its crash.
#[test]
fn a_leader_restart_from_a_compacted_log_is_measured() {
    for_each_protocol(|protocol| {
        let r = paxraft::bench::leader_restart(protocol, 20_000, 1_000).expect("serves again");
        assert!(r.committed >= 20_000, "{r:?}");
        assert!(r.log_entries <= 1_000 + 1024, "{r:?}");
        assert!(r.serve_ms > 0.0 && r.rebuilt_ms > 0.0, "{r:?}");
        assert!(r.election_timeout_ms.0 < r.election_timeout_ms.1, "{r:?}");
        eprintln!("{r:?}");
    });
}

/// Issue 17's catch-up target, measured: a follower 10^6 slots behind a cluster that
/// snapshots every 10,000 catches up (target: under 2 s on 2 cores). Printed, not asserted
/// on time: `cargo test --test runtime catch_up_from_a_million -- --ignored --nocapture`.
#[test]
#[ignore = "commits 10^6 commands per protocol first; a measurement"]
fn catch_up_from_a_million_slots_behind() {
    for_each_protocol(|protocol| {
        let r = paxraft::bench::catch_up(protocol, 1_000_000, 10_000).expect("catches up");
        assert!(r.snapshots >= 1, "{r:?}");
        println!(
            "{}: {} slots behind, caught up in {:.3} s from {} snapshot(s) of {} bytes",
            r.protocol, r.behind, r.seconds, r.snapshots, r.snapshot_bytes
        );
    });
}

/// Issue 17's restart target, measured: after 10^6 commits with a snapshot every 10,000, the
/// leader restarts from its compacted log and the cluster serves again (target: within 100 ms
/// plus the longest election timeout). Printed, not asserted on time:
/// `cargo test --test runtime leader_restart_after_a_million -- --ignored --nocapture`.
#[test]
#[ignore = "commits 10^6 commands per protocol first; a measurement"]
fn leader_restart_after_a_million_commits() {
    for_each_protocol(|protocol| {
        let r = paxraft::bench::leader_restart(protocol, 1_000_000, 10_000).expect("serves again");
        assert!(r.log_entries <= 10_000 + 1024, "{r:?}");
        println!(
            "{}: restarted after {} slots with {} log entries above its snapshot: serving in {:.1} ms (target {:.0} ms), rebuilt in {:.1} ms",
            r.protocol, r.committed, r.log_entries, r.serve_ms, r.target_ms(), r.rebuilt_ms
        );
    });
}

/// `paxraft run` snapshots every 10,000 slots unless told otherwise (`--snapshot-every off`:
/// never), and says which in its result line.
#[test]
fn the_cli_run_snapshots_by_default_and_says_so() {
    for (flags, says) in [
        (&[][..], "snapshots every 10000 slots"),
        (&["--snapshot-every", "off"][..], "no snapshots"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paxraft"))
            .args(["run", "raft", "--ops", "30000", "--clients", "2"])
            .args(flags)
            .output()
            .expect("paxraft runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(says) && stdout.contains(" 0 errors"),
            "{flags:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `paxraft run --storage file` without `--data` keeps its nodes' logs in a directory of its
/// own, says where, and removes it after a clean run (as `cluster --local` does); runs used
/// to leave theirs behind.
#[test]
fn the_cli_run_removes_its_temporary_directory_after_a_clean_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paxraft"))
        .args([
            "run",
            "raft",
            "--storage",
            "file",
            "--ops",
            "3000",
            "--clients",
            "2",
        ])
        .output()
        .expect("paxraft runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("File storage") && stdout.contains(" 0 errors"),
        "{stdout}\n{stderr}"
    );
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("logs in "))
        .and_then(|d| d.strip_suffix(" (removed after a clean run)"))
        .unwrap_or_else(|| panic!("no temporary directory named: {stderr}"));
    assert!(dir.contains("paxraft-run-"), "{stderr}");
    assert!(
        !std::path::Path::new(dir).exists(),
        "{dir} is still there after the run"
    );
}

/// `paxraft run` says where the operations' CPU went: the clients' threads and each node's,
/// the leader marked, and all of them together.
#[test]
fn the_cli_run_prints_the_cpu_per_operation_of_each_thread() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paxraft"))
        .args(["run", "raft", "--ops", "20000", "--clients", "2"])
        .output()
        .expect("paxraft runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CPU per operation: "))
        .unwrap_or_else(|| panic!("no CPU line: {stdout}"));
    // "clients 137 ns, n0 130 ns, n1 (leader) 170 ns, n2 106 ns; all threads 543 ns"
    let (parts, all) = line.split_once("; all threads ").expect("a total");
    let ns = |s: &str| -> f64 {
        let n = s
            .trim()
            .strip_suffix(" ns")
            .unwrap_or_else(|| panic!("{line}"));
        n.parse().unwrap_or_else(|_| panic!("{line}"))
    };
    let parts: Vec<&str> = parts.split(", ").collect();
    assert_eq!(parts.len(), 4, "{line}");
    assert!(
        parts[0].starts_with("clients ") && ns(&parts[0][8..]) > 0.0,
        "{line}"
    );
    let mut sum = ns(&parts[0][8..]);
    for (i, p) in parts[1..].iter().enumerate() {
        let rest = p
            .strip_prefix(&format!("n{i} "))
            .unwrap_or_else(|| panic!("{line}"));
        let rest = rest.strip_prefix("(leader) ").unwrap_or(rest);
        // Every node stores and applies every command.
        assert!(ns(rest) > 0.0, "{line}");
        sum += ns(rest);
    }
    assert_eq!(line.matches("(leader)").count(), 1, "{line}");
    // The total is the parts' sum (each rounded to the nanosecond when printed).
    assert!((ns(all) - sum).abs() <= 4.0, "{line}");
}

/// `paxraft run --data DIR` keeps its files: a second run boots from the first one's
/// snapshots and logs (with new client ids: the first run's sessions are in the snapshot)
/// and serves every request; a snapshot that does not decode, or an image cut short, is a
/// one-line error and exit code 2, never a panic or a cluster booted from nothing.
#[test]
fn the_cli_continues_from_its_data_directory_and_refuses_a_damaged_snapshot() {
    for protocol in ["raft", "multipaxos"] {
        let dir = std::env::temp_dir().join(format!(
            "paxraft-cli-data-{protocol}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let run = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_paxraft"))
                .args(["run", protocol, "--ops", "2000", "--clients", "2"])
                .args(["--outstanding", "8", "--snapshot-every", "100", "--data"])
                .arg(&dir)
                .output()
                .expect("paxraft runs")
        };
        for round in 0..2 {
            let out = run();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success()
                    && stdout.contains("snapshots every 100 slots")
                    && stdout.contains(": 2000 ops in")
                    && stdout.contains(" 0 errors"),
                "{protocol} round {round}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let manifest = std::fs::read_to_string(dir.join("paxraft.json")).expect("manifest");
        assert!(manifest.contains("\"next_client\": 5"), "{manifest}");
        // Another cluster's directory is refused, not read as this one's.
        let other = std::process::Command::new(env!("CARGO_BIN_EXE_paxraft"))
            .args(["run", protocol, "--servers", "5", "--data"])
            .arg(&dir)
            .output()
            .expect("paxraft runs");
        let stderr = String::from_utf8_lossy(&other.stderr);
        assert_eq!(other.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.lines().count() == 1
                && stderr.contains(&format!("holds a {protocol} cluster of 3 servers")),
            "{stderr}"
        );
        let image = dir.join("n0.log.image");
        let good = std::fs::read_to_string(&image).expect("node 0 took a snapshot");
        // The log that continues the image may hold a later snapshot, installed from the
        // leader after the last checkpoint (whether it does depends on the runs' timing); it
        // would replace the image's at boot and hide the damage. Without it the image is
        // node 0's whole durable state, which is what the damage below must reach.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name
                .strip_prefix("n0.log.")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            {
                std::fs::remove_file(&path).unwrap();
            }
        }
        // Valid JSON, but the snapshot's bytes are not a state machine.
        let at = good.find("\"data\":[").expect("the image holds a snapshot") + 8;
        let end = at + good[at..].find(']').expect("an array");
        let bad = format!("{}1,2,3{}", &good[..at], &good[end..]);
        for (damage, says) in [
            (bad, "does not decode"),
            (
                good[..good.len() / 2].to_string(),
                "n0.log.image is corrupt",
            ),
        ] {
            std::fs::write(&image, damage).unwrap();
            let out = run();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let error: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.starts_with("logs in"))
                .collect();
            assert_eq!(out.status.code(), Some(2), "{protocol}: {stderr}");
            assert!(
                error.len() == 1 && error[0].contains("storage of n0") && error[0].contains(says),
                "{protocol}: one line saying {says:?}: {stderr}"
            );
        }
        std::fs::write(&image, good).unwrap();
        assert!(
            run().status.success(),
            "{protocol}: the repaired directory boots"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A protocol that keeps no log to compact (the unreplicated ceiling) still has its store
/// folded on the snapshot policy's schedule, so that a benchmark's ceiling holds as little as
/// the replicated clusters beside it (which compact) and pays no more page faults. Without a
/// policy its store keeps every write: the control.
#[test]
fn a_protocol_without_snapshots_has_its_store_folded_on_the_policy() {
    use paxraft::runtime::{MemStorage, Storage};
    use paxraft_impls::unreplicated::Unreplicated;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;

    type U = Unreplicated;
    type C = Cmd<Kv>;
    /// A memory store that records how many writes it ever held unfolded, and its checkpoints.
    struct Watched {
        inner: MemStorage<U, C>,
        most: Arc<AtomicUsize>,
        checkpoints: Arc<AtomicU64>,
    }
    impl Storage<U, C> for Watched {
        fn append(&mut self, write: &<U as Replica<C>>::Write) -> std::io::Result<()> {
            self.inner.append(write)?;
            self.most
                .fetch_max(self.inner.unfolded(), Ordering::Relaxed);
            Ok(())
        }
        fn sync(&mut self) -> std::io::Result<()> {
            self.inner.sync()
        }
        fn load(&mut self) -> std::io::Result<Option<<U as Replica<C>>::Durable>> {
            self.inner.load()
        }
        fn checkpoint(&mut self) -> std::io::Result<()> {
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
            self.inner.checkpoint()
        }
    }
    const OPS: u64 = 2_000;
    const EVERY: u64 = 100;
    for policy in [
        Some(SnapshotPolicy {
            every: EVERY,
            chunk: SnapshotPolicy::DEFAULT_CHUNK,
        }),
        None,
    ] {
        let (most, checkpoints) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
        let mut cfg = RuntimeConfig::default();
        cfg.protocol.snapshots = policy;
        let (m, k) = (most.clone(), checkpoints.clone());
        let mut c: Cluster<U, Kv> = Cluster::with_storage(1, cfg, move |_| {
            Ok(Box::new(Watched {
                inner: MemStorage::default(),
                most: m.clone(),
                checkpoints: k.clone(),
            }))
        })
        .expect("starts");
        let mut client = c.client(ClientConfig::default());
        // One request at a time: each step makes one write of one command.
        for i in 0..OPS {
            client.submit(KvOp::Put(i % 7, vec![1])).expect("served");
        }
        drop(client);
        c.shutdown();
        let (most, checkpoints) = (
            most.load(Ordering::Relaxed),
            checkpoints.load(Ordering::Relaxed),
        );
        match policy {
            Some(_) => {
                assert!(
                    checkpoints >= OPS / EVERY - 1,
                    "the store was folded every {EVERY} commits ({checkpoints} checkpoints)"
                );
                assert!(
                    most as u64 <= EVERY + 1,
                    "at most a policy's worth of writes unfolded (held {most})"
                );
            }
            None => {
                assert_eq!(checkpoints, 0, "no policy, no checkpoint");
                assert!(most as u64 >= OPS, "every write kept (held {most})");
            }
        }
    }
}

/// A cluster built with the runtime's defaults compacts (`RuntimeConfig::default` carries
/// `DEFAULT_SNAPSHOTS`): after more commits than one snapshot interval every replica has a
/// snapshot and holds less than two intervals of log. Without a policy the log only grows,
/// and each doubling of its vector stalled the followers past the election timeout.
#[test]
fn a_default_cluster_compacts_its_logs() {
    for_each_protocol(|protocol| {
        struct Default_(Protocol);
        impl ProtocolVisitor for Default_ {
            type Output = ();
            fn visit<R: Hosted>(self) {
                let every = RuntimeConfig::default()
                    .protocol
                    .snapshots
                    .expect("the default runtime snapshots")
                    .every;
                let mut cluster: Cluster<R, Kv> =
                    Cluster::new(3, RuntimeConfig::default()).expect("the cluster starts");
                let mut client = cluster.client(ClientConfig {
                    max_outstanding: 256,
                    ..ClientConfig::default()
                });
                let (mut sent, mut done) = (0u64, 0u64);
                let total = 2 * every + every / 2;
                let deadline = Instant::now() + Duration::from_secs(60);
                while done < total {
                    assert!(Instant::now() < deadline, "{}: the load hangs", self.0);
                    while sent < total && client.outstanding() < 256 {
                        client.send(KvOp::Put(sent % 64, Vec::new())).expect("sent");
                        sent += 1;
                    }
                    if let Some((_, res)) = client.poll(Duration::from_secs(5)) {
                        res.expect("every put is answered");
                        done += 1;
                    }
                }
                for i in 0..3 {
                    // Followers learn the commit point with the next heartbeat: wait for it.
                    let until = Instant::now() + Duration::from_secs(5);
                    loop {
                        let st = cluster.status(i).expect("no node crashed");
                        if st.snapshot > 0 && st.last - st.snapshot < 2 * every {
                            break;
                        }
                        assert!(
                            Instant::now() < until,
                            "{}: node {i} did not compact: {st:?}",
                            self.0
                        );
                        thread::sleep(Duration::from_millis(5));
                    }
                }
                cluster.shutdown();
            }
        }
        with_protocol(protocol, Default_(protocol));
    });
}
