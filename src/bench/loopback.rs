//! Closed-loop load on server processes over loopback TCP: the multi-process counterpart of
//! [`Load`](super::Load), for the benchmarks' `loopback` points. The servers are
//! `paxraft serve` processes started as `paxraft cluster --local` starts them
//! ([`Local::start`]); the clients are [`NetClient`]s driven exactly as the in-process
//! clients are (same windows, same closed loop, same histograms), so the two kinds of point
//! differ only in where the replicas run and how messages travel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Kv, KvOp};

use super::{AnyLoad, BenchError, Driven, Drivers, LoadConfig};
use crate::cli::net::{client, elections_since, highest_term, Local, StorageKind};
use crate::net::client::NetClient;
use crate::results::{BenchPoint, Transport};
use crate::runtime::{ClientConfig, Cmd};

/// The replica type of the clients: clients send no protocol messages, so one serves for
/// every protocol's servers (see [`client`]).
type Wire = Raft<Cmd<Kv>>;

/// Closed-loop clients of servers already running at some addresses: what [`LoopbackLoad`]
/// puts on the servers it starts, and what `paxraft cluster --local N --bench` puts on its.
pub struct NetLoad {
    cfg: LoadConfig,
    drivers: Drivers<Wire, NetClient<Wire, Kv>>,
}

impl std::fmt::Debug for NetLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NetLoad({:?})", self.cfg)
    }
}

impl NetLoad {
    /// Wait (up to 10 s) until the servers at `addrs` commit a first request, then connect
    /// `cfg`'s clients, sharing `cfg.outstanding` among them. Puts only: `cfg.reads` must be
    /// all puts, `cfg.snapshots` off (the servers' own flags decide those).
    pub fn connect(addrs: &[SocketAddr], cfg: LoadConfig) -> Result<Self, BenchError> {
        cfg.validate()?;
        if cfg.reads.percent != 0 || cfg.snapshots.is_some() {
            return Err(BenchError::Config(
                "loopback loads are puts only, and the servers set their own snapshots",
            ));
        }
        let mut probe = client(
            addrs,
            ClientConfig {
                timeout: Duration::from_secs(10),
                ..ClientConfig::default()
            },
        );
        probe.submit(KvOp::Put(0, Vec::new())).map_err(|e| {
            BenchError::Loopback(format!("{} servers do not answer ({e})", cfg.protocol))
        })?;
        drop(probe);
        let k = cfg.client_count();
        let clients = (0..k)
            .map(|i| {
                let window = cfg.outstanding / k + usize::from(i < cfg.outstanding % k);
                let c = client(
                    addrs,
                    ClientConfig {
                        max_outstanding: window,
                        ..ClientConfig::default()
                    },
                );
                Driven::new(c, window, i, 0)
            })
            .collect();
        Ok(NetLoad {
            drivers: Drivers::new(clients, cfg.payload_bytes)?,
            cfg,
        })
    }
}

impl AnyLoad for NetLoad {
    fn run(&mut self, ops: u64) -> Result<Duration, BenchError> {
        self.drivers.run(ops, self.cfg.protocol.name())
    }
    fn point(&self) -> BenchPoint {
        self.drivers
            .point(self.cfg.protocol.name(), &self.cfg, Transport::Loopback)
    }
    fn errors(&self) -> u64 {
        self.drivers.errors()
    }
    fn reset(&mut self) {
        self.drivers.reset()
    }
}

/// Server processes on loopback under closed-loop load from this process.
pub struct LoopbackLoad {
    storage: StorageKind,
    // Dropped first (field order): the clients close their connections before the servers
    // are stopped.
    load: NetLoad,
    servers: Local,
    /// Each server's status address, and the highest term they had reached at the start or
    /// the last reset (`None` if a server did not answer: the point's elections are then
    /// not counted).
    status: Vec<SocketAddr>,
    term_from: Option<u64>,
    // Removed last, once the servers have stopped.
    dir: TempDir,
}

/// A directory removed when dropped (the servers' data and logs).
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::fmt::Debug for LoopbackLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LoopbackLoad({:?}, {:?} storage, {:?} in {})",
            self.load.cfg,
            self.storage,
            self.servers,
            self.dir.0.display()
        )
    }
}

impl LoopbackLoad {
    /// Start `cfg.servers` server processes of `cfg.protocol` with `storage`, each
    /// `program()` given `serve` and its flags (see [`Local::start`]), wait (up to 10 s)
    /// until they commit a first request, and connect the clients. Reads and snapshots are
    /// not offered over the network load: `cfg.reads` must be all puts, `cfg.snapshots` off.
    pub fn start(
        cfg: LoadConfig,
        storage: StorageKind,
        program: impl Fn() -> Command,
    ) -> Result<Self, BenchError> {
        cfg.validate()?;
        let dir = std::env::temp_dir().join(format!(
            "paxraft-bench-{}-{}-{}",
            std::process::id(),
            cfg.protocol.name(),
            crate::cli::net::free_port()
                .map(|a| a.port())
                .map_err(|e| BenchError::Loopback(e.to_string()))?
        ));
        let (servers, ports) = Local::start(program, cfg.protocol, storage, cfg.servers, &dir, &[])
            .map_err(BenchError::Loopback)?;
        let addrs: Vec<_> = ports.iter().map(|(a, _)| *a).collect();
        let load = NetLoad::connect(&addrs, cfg).map_err(|e| match e {
            BenchError::Loopback(why) => {
                BenchError::Loopback(format!("{why}; their logs are in {}", dir.display()))
            }
            e => e,
        })?;
        let status: Vec<SocketAddr> = ports.iter().map(|(_, s)| *s).collect();
        Ok(LoopbackLoad {
            load,
            storage,
            servers,
            term_from: highest_term(&status),
            status,
            dir: TempDir(dir),
        })
    }
}

impl AnyLoad for LoopbackLoad {
    fn run(&mut self, ops: u64) -> Result<Duration, BenchError> {
        self.load.run(ops)
    }
    fn point(&self) -> BenchPoint {
        BenchPoint {
            // The servers it started snapshot on `serve`'s default.
            snapshot_every: Some(crate::runtime::DEFAULT_SNAPSHOTS.every),
            // The servers are other processes.
            cpu: None,
            elections: elections_since(self.term_from, &self.status),
            ..self.load.point()
        }
    }
    fn errors(&self) -> u64 {
        self.load.errors()
    }
    fn reset(&mut self) {
        self.load.reset();
        self.term_from = highest_term(&self.status);
    }
}
