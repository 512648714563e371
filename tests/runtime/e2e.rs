//! End to end: live clusters, 8 concurrent pipelined clients, 10,000 mixed KV ops, every op
//! acknowledged, the history linearizable; and the same with the leader crashed mid-run and
//! restarted from durable storage (memory and file). No timed assertions: timeouts only bound
//! how long a broken run hangs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paxraft::lincheck::{check_kv, Op};
use paxraft::runtime::{Client, ClientConfig, Cluster, Cmd, FileStorage, RuntimeConfig, Storage};
use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Kv, KvOp, KvOutput};
use paxraft_impls::Replica;

const CLIENTS: u64 = 8;
const OPS: u64 = 10_000;
const KEYS: u64 = 32;
const PIPELINE: usize = 8;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    CrashLeader,
}

fn op_for(client: u64, i: u64) -> KvOp {
    // A cheap deterministic mix: 40% get, 40% put, 20% cas; values unique per write.
    let x = client
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let key = (x >> 7) % KEYS;
    let val = |tag: u64| [client.to_le_bytes(), i.to_le_bytes(), tag.to_le_bytes()].concat();
    match x % 5 {
        0 | 1 => KvOp::Get(key),
        2 | 3 => KvOp::Put(key, val(0)),
        _ => KvOp::Cas {
            key,
            expect: None,
            new: val(1),
        },
    }
}

fn client_run<R: Replica<Cmd<Kv>>>(
    mut c: Client<R, Kv>,
    n: u64,
    start: Instant,
    done: &AtomicU64,
) -> Vec<Op> {
    let now = || start.elapsed().as_nanos() as u64;
    let mut calls = std::collections::HashMap::new();
    let mut hist = Vec::new();
    let mut sent = 0;
    while (hist.len() as u64) < n {
        while sent < n && c.outstanding() < PIPELINE {
            let op = op_for(c.id(), sent);
            let t = now();
            let seq = c.send(op.clone()).expect("below the pipeline bound");
            calls.insert(seq, (t, op));
            sent += 1;
        }
        if let Some((seq, res)) = c.poll(Duration::from_secs(30)) {
            let (call, op) = calls.remove(&seq).expect("answers match requests");
            let out: KvOutput = res.unwrap_or_else(|e| panic!("client {} op {seq}: {e}", c.id()));
            hist.push(Op {
                client: c.id(),
                call,
                ret: Some(now()),
                op,
                out: Some(out),
            });
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    hist
}

fn run<R: Replica<Cmd<Kv>>>(mut cluster: Cluster<R, Kv>, fault: Fault) {
    let start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let history = Arc::new(Mutex::new(Vec::new()));
    let cfg = ClientConfig {
        retry_after: Duration::from_millis(60),
        ..ClientConfig::default()
    };
    let mut threads = Vec::new();
    for _ in 0..CLIENTS {
        let c = cluster.client(cfg.clone());
        let (done, history) = (Arc::clone(&done), Arc::clone(&history));
        threads.push(std::thread::spawn(move || {
            let h = client_run(c, OPS / CLIENTS, start, &done);
            history.lock().unwrap().extend(h);
        }));
    }
    if fault == Fault::CrashLeader {
        let give_up = Instant::now() + Duration::from_secs(60);
        let wait = |what: &str| {
            assert!(
                Instant::now() < give_up,
                "no progress while waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        while done.load(Ordering::Relaxed) < OPS / 3 {
            wait("a third of the ops");
        }
        let leader = loop {
            if let Some(l) = cluster.leader() {
                break l;
            }
            wait("a leader");
        };
        cluster.crash(leader);
        let before = done.load(Ordering::Relaxed);
        // Wait for progress without it (a new leader), then bring it back.
        while done.load(Ordering::Relaxed) < before + 500 && done.load(Ordering::Relaxed) < OPS {
            wait("progress after the crash");
        }
        cluster.restart(leader);
    }
    for t in threads {
        t.join().expect("client thread");
    }
    // Read back every key: acknowledged writes must all be visible (the checker sees to it).
    let mut reader = cluster.client(cfg);
    let mut hist = std::mem::take(&mut *history.lock().unwrap());
    assert_eq!(hist.len() as u64, OPS, "every op acknowledged");
    for key in 0..KEYS {
        let call = start.elapsed().as_nanos() as u64;
        let out = reader.submit(KvOp::Get(key)).expect("final read");
        let ret = start.elapsed().as_nanos() as u64;
        hist.push(Op {
            client: reader.id(),
            call,
            ret: Some(ret),
            op: KvOp::Get(key),
            out: Some(out),
        });
    }
    assert_eq!(cluster.panics(), vec![]);
    cluster.shutdown();
    check_kv(&hist).unwrap_or_else(|e| panic!("{} history not linearizable: {e}", R::NAME));
}

fn mem<R: Replica<Cmd<Kv>>>(n: usize) -> Cluster<R, Kv> {
    Cluster::new(n, RuntimeConfig::default()).expect("cluster")
}

/// A cluster whose nodes log to files in a fresh temporary directory.
macro_rules! file_cluster {
    ($r:ty, $n:expr, $name:expr) => {{
        let dir = std::env::temp_dir().join(format!("paxraft-{}-{}", $name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.clone();
        let c = Cluster::<$r, Kv>::with_storage($n, RuntimeConfig::default(), move |id| {
            let s: Box<dyn Storage<$r, Cmd<Kv>>> = Box::new(FileStorage::<$r, Cmd<Kv>>::open(
                d.join(format!("{id}.log")),
            )?);
            Ok(s)
        })
        .expect("cluster");
        (c, dir)
    }};
}

#[test]
fn raft_3_nodes_linearizable() {
    run(mem::<Raft<Cmd<Kv>>>(3), Fault::None);
}

#[test]
fn raft_5_nodes_linearizable() {
    run(mem::<Raft<Cmd<Kv>>>(5), Fault::None);
}

#[test]
fn raft_leader_crash_memory_storage() {
    run(mem::<Raft<Cmd<Kv>>>(3), Fault::CrashLeader);
}

#[test]
fn raft_leader_crash_file_storage() {
    let (c, dir) = file_cluster!(Raft<Cmd<Kv>>, 3, "raft-crash");
    run(c, Fault::CrashLeader);
    let _ = std::fs::remove_dir_all(dir);
}

type Paxos = paxraft_impls::multipaxos::MultiPaxos<Cmd<Kv>>;

#[test]
fn multipaxos_3_nodes_linearizable() {
    run(mem::<Paxos>(3), Fault::None);
}

#[test]
fn multipaxos_5_nodes_linearizable() {
    run(mem::<Paxos>(5), Fault::None);
}

#[test]
fn multipaxos_leader_crash_memory_storage() {
    run(mem::<Paxos>(3), Fault::CrashLeader);
}

#[test]
fn multipaxos_leader_crash_file_storage() {
    let (c, dir) = file_cluster!(Paxos, 3, "paxos-crash");
    run(c, Fault::CrashLeader);
    let _ = std::fs::remove_dir_all(dir);
}
