//! `paxraft run`: a live in-process cluster under pipelined client load, with a progress bar;
//! prints throughput and latency percentiles.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use paxraft_impls::sm::{Kv, KvOp};
use paxraft_impls::{NodeId, ReadMode};

use super::bad;
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::runtime::{ClientConfig, Cluster, Cmd, FileStorage, RuntimeConfig, Storage};

/// Where replicas keep durable state.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StorageKind {
    /// In memory.
    Memory,
    /// Append-only files with fsync (in a temporary directory).
    File,
}

/// Arguments of `paxraft run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The protocol.
    #[arg(value_enum)]
    pub protocol: Protocol,
    /// Cluster size (1 to 7).
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Client threads.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Total operations.
    #[arg(long, default_value_t = 200_000)]
    pub ops: u64,
    /// Requests each client keeps outstanding.
    #[arg(long, default_value_t = 64)]
    pub outstanding: usize,
    /// Durable storage.
    #[arg(long, value_enum, default_value_t = StorageKind::Memory)]
    pub storage: StorageKind,
    /// Keep the replicas' files in DIR (implies `--storage file`) and boot from what an
    /// earlier run left there: its state, snapshots and client sessions. Without it, file
    /// storage goes to a new temporary directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Percent of operations that are gets (the rest are puts).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// How reads are served; with `--follower-reads`, client i reads from node i mod
    /// servers.
    #[command(flatten)]
    pub reads: super::ReadArgs,
    #[command(flatten)]
    pub snapshots: super::SnapshotArgs,
}

/// Run the subcommand.
pub fn run(args: &RunArgs) -> ExitCode {
    if args.clients == 0 || args.ops == 0 || args.outstanding == 0 {
        return bad("--clients, --ops and --outstanding must be at least 1");
    }
    match with_protocol(args.protocol, Go(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => bad(e),
    }
}

/// `paxraft run` of one protocol.
struct Go<'a>(&'a RunArgs);

impl ProtocolVisitor for Go<'_> {
    type Output = Result<(), String>;
    fn visit<R: Hosted>(self) -> Result<(), String> {
        go::<R>(self.0)
    }
}

fn go<R: Hosted>(args: &RunArgs) -> Result<(), String> {
    let mut cfg = RuntimeConfig::default();
    args.reads.apply(&mut cfg.protocol);
    args.snapshots.apply(&mut cfg.protocol);
    if cfg.protocol.reads != ReadMode::Log && !<R as paxraft_impls::Replica<Cmd<Kv>>>::READS {
        eprintln!(
            "note: {} has no read path without the log: its reads go through the log",
            R::NAME
        );
    }
    let storage = match args.data {
        Some(_) => StorageKind::File,
        None => args.storage,
    };
    let mut cluster: Cluster<R, Kv> = match storage {
        StorageKind::Memory => Cluster::new(args.servers, cfg)?,
        StorageKind::File => {
            let (dir, first_client) = match &args.data {
                Some(dir) => {
                    let first = Manifest::claim(dir, R::NAME, args.servers, args.clients)?;
                    (dir.clone(), first)
                }
                None => {
                    let dir =
                        std::env::temp_dir().join(format!("paxraft-run-{}", std::process::id()));
                    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    (dir, 1)
                }
            };
            eprintln!("logs in {}", dir.display());
            let mut c = Cluster::with_storage(args.servers, cfg, move |id| {
                let s: Box<dyn Storage<R, Cmd<Kv>>> = Box::new(FileStorage::<R, Cmd<Kv>>::open(
                    dir.join(format!("{id}.log")),
                )?);
                Ok(s)
            })?;
            c.number_clients_from(first_client);
            c
        }
    };
    let bar = indicatif::ProgressBar::new(args.ops);
    let done = Arc::new(AtomicU64::new(0));
    let per = args.ops / args.clients as u64;
    let extra = args.ops % args.clients as u64;
    let start = Instant::now();
    let mut threads = Vec::new();
    for i in 0..args.clients as u64 {
        let mut c = cluster.client(ClientConfig {
            max_outstanding: args.outstanding,
            read_from: args
                .reads
                .follower_reads
                .then(|| NodeId((i % args.servers as u64) as u8)),
            ..ClientConfig::default()
        });
        let read_percent = u64::from(args.read_percent);
        let n = per + u64::from(i < extra);
        let (done, bar, window) = (Arc::clone(&done), bar.clone(), args.outstanding);
        threads.push(std::thread::spawn(move || {
            let mut lat = Vec::with_capacity(n as usize);
            // Send times by sequence number (a client numbers its requests 1, 2, ...), as
            // nanoseconds since `start`: no map on the measuring path.
            let mut sent_at: Vec<u64> = Vec::with_capacity(n as usize + 1);
            sent_at.push(0);
            let mut answers = Vec::with_capacity(window);
            let (mut sent, mut errors) = (0u64, 0u64);
            while (lat.len() as u64) + errors < n {
                let now = start.elapsed().as_nanos() as u64;
                while sent < n && c.outstanding() < window {
                    // Exactly `read_percent` of every 100 operations are gets, spread out.
                    let n = sent + 1;
                    let op = if n * read_percent / 100 != sent * read_percent / 100 {
                        KvOp::Get(sent % 1024)
                    } else {
                        KvOp::Put(sent % 1024, Vec::new())
                    };
                    let seq = c.send(op).map_err(|e| format!("send: {e}"))?;
                    debug_assert_eq!(seq as usize, sent_at.len());
                    sent_at.push(now);
                    sent += 1;
                }
                c.poll_many(Duration::from_secs(10), &mut answers);
                let now = start.elapsed().as_nanos() as u64;
                let got = answers.len() as u64;
                for (seq, res) in answers.drain(..) {
                    match res {
                        Ok(_) => lat.push(now - sent_at[seq as usize]),
                        Err(_) => errors += 1,
                    }
                }
                let before = done.fetch_add(got, Ordering::Relaxed);
                if (before + got) / 4096 != before / 4096 {
                    bar.set_position(before + got);
                }
            }
            Ok::<_, String>((lat, errors))
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t
            .join()
            .map_err(|_| "client thread panicked".to_string())??;
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let panics = cluster.panics();
    cluster.shutdown();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    println!(
        "{} {} servers, {} clients x {} outstanding, {:?} storage, {}% reads ({}{}): {} ops in {:.2} s = {:.0} ops/s; \
         latency p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs; {} errors",
        R::NAME,
        args.servers,
        args.clients,
        args.outstanding,
        storage,
        args.read_percent,
        args.reads.reads,
        if args.reads.follower_reads { ", follower reads" } else { "" },
        lat.len(),
        secs,
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        errors
    );
    for (id, what) in panics {
        println!("replica {id} panicked: {what}");
    }
    Ok(())
}

/// What `--data DIR` keeps beside the replicas' logs (`DIR/paxraft.json`): the cluster the
/// logs belong to, and the first client id no run has used yet (a run's clients must not
/// reuse ids whose sessions the restored state machine holds: their requests would be
/// answered as retries).
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    protocol: String,
    servers: usize,
    next_client: u64,
}

impl Manifest {
    /// Check that `dir` holds this cluster's files, or none yet, and claim `clients` client
    /// ids in it (saved before the cluster starts, so that a run that dies midway has used
    /// only ids it claimed). Returns the first.
    fn claim(dir: &Path, protocol: &str, servers: usize, clients: usize) -> Result<u64, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("paxraft.json");
        let first = match std::fs::read(&path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
                if m.protocol != protocol || m.servers != servers {
                    return Err(format!(
                        "{} holds a {} cluster of {} servers, not {protocol} with {servers}",
                        dir.display(),
                        m.protocol,
                        m.servers
                    ));
                }
                m.next_client
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::read_dir(dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?
                    .next()
                    .is_some()
                {
                    return Err(format!(
                        "{} is not empty and holds no paxraft.json: not a paxraft data directory",
                        dir.display()
                    ));
                }
                1
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let next = Manifest {
            protocol: protocol.to_string(),
            servers,
            next_client: first + clients as u64,
        };
        let tmp = dir.join("paxraft.json.tmp");
        let json = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(first)
    }
}
