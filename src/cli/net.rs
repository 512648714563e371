//! `paxraft serve`, `paxraft kv` and `paxraft cluster`: server processes, a client, and a
//! local multi-process cluster ([`crate::net`]).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Kv, KvOp, KvOutput};
use paxraft_impls::NodeId;

use super::{bad, parse_duration};
use crate::bench::{measure_for, LoadConfig, NetLoad};
use crate::net::auth::Secret;
use crate::net::client::NetClient;
use crate::net::parse_peers;
use crate::net::server::{wait_for, ServeConfig, ServeError, Server};
use crate::net::transport::Identity;
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::runtime::{fast_config, ClientConfig, Cmd, RuntimeConfig};

/// `paxraft serve`: run one node of a cluster.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The protocol.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// This node's id (one of the ids in --peers).
    #[arg(long)]
    pub id: u8,
    /// Every node's address, this one's included: 0=HOST:PORT,1=HOST:PORT,...
    #[arg(long, value_parser = peers)]
    pub peers: Peers,
    /// The data directory (created if absent; it records the protocol, cluster and node).
    #[arg(long)]
    pub data: PathBuf,
    /// A shared secret: peers prove they know it (HMAC challenge) before they are admitted.
    #[arg(long)]
    pub secret: Option<String>,
    /// The cluster's id: peers of another cluster are refused.
    #[arg(long, default_value = "paxraft")]
    pub cluster_id: String,
    /// Serve a JSON status page at this address (e.g. 127.0.0.1:8000; `curl` it).
    #[arg(long)]
    pub status: Option<SocketAddr>,
    /// Shortest election timeout (elections start between it and twice it).
    #[arg(long, default_value = "150ms", value_parser = parse_duration)]
    pub election_timeout: Duration,
    /// Heartbeat interval.
    #[arg(long, default_value = "30ms", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Let the status endpoint cut links to peers (`/faults/cut/1,2`) and heal them
    /// (`/faults/heal`): the transport's partition hook, for tests.
    #[arg(long)]
    pub fault_hooks: bool,
    /// Where the node keeps its writes: `file` (DIR/log, synced before any send of a
    /// step) or `memory` (nothing survives the process, and the directory refuses a
    /// restart: to measure the network alone, as `paxraft run` does without --data).
    #[arg(long, value_enum, default_value = "file")]
    pub storage: StorageKind,
    #[command(flatten)]
    pub snapshots: super::SnapshotArgs,
    /// Expire a client's session once this many commands were applied without a request of
    /// that client (log time, as in the Raft dissertation §6.3; 0: never), so that the
    /// sessions of clients gone for good (every `paxraft kv` is one) do not pile up. A
    /// request of an expired session is refused, not applied (an earlier copy of it may have
    /// been: its outcome is unknown, as after a timeout). Part of the replicated
    /// state machine: every node of a cluster must be given the same (peers with another
    /// are refused), and a data directory keeps the one it was written with.
    #[arg(long, value_name = "COMMANDS", default_value_t = DEFAULT_SESSION_TIMEOUT)]
    pub session_timeout: u64,
}

/// `serve`'s default session timeout, in applied commands: sessions live while fewer than
/// this many other commands are applied between their client's requests. It bounds the
/// live sessions (one per client with a request among the last this many commands): at the
/// 4 clients of `cluster --bench` a busy client sends one of every few commands, and an
/// interactive client would go idle through it only under a load of many seconds.
pub const DEFAULT_SESSION_TIMEOUT: u64 = 100_000;

/// Where a served node keeps its writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageKind {
    /// A log file in the data directory, fsynced.
    File,
    /// Memory only.
    Memory,
}

impl StorageKind {
    fn name(self) -> &'static str {
        match self {
            StorageKind::File => "file",
            StorageKind::Memory => "memory",
        }
    }
}

/// A cluster's addresses, node `i`'s at index `i` (a newtype: clap reads a `Vec` as many
/// values).
#[derive(Debug, Clone)]
pub struct Peers(pub Vec<SocketAddr>);

fn peers(s: &str) -> Result<Peers, String> {
    parse_peers(s).map(Peers)
}

/// The runtime configuration of a served node: the in-process defaults with the timeouts
/// given (a network and processes on shared cores need longer ones than threads do).
fn served_config(a: &ServeArgs) -> RuntimeConfig {
    let mut cfg = RuntimeConfig {
        protocol: paxraft_impls::Config {
            election_timeout: a.election_timeout..a.election_timeout * 2,
            heartbeat_interval: a.heartbeat,
            ..fast_config()
        },
        // Each process draws its own timer delays.
        seed: rand::random(),
        session_timeout: a.session_timeout,
        ..RuntimeConfig::default()
    };
    // A server runs for long: its log is compacted as `run`'s is, unless told otherwise.
    a.snapshots.apply(
        &mut cfg.protocol,
        Some(crate::runtime::DEFAULT_SNAPSHOTS.every),
    );
    cfg
}

struct Serve<'a>(&'a ServeArgs, Arc<AtomicBool>);

impl ProtocolVisitor for Serve<'_> {
    type Output = Result<(), ServeError>;
    fn visit<R: Hosted>(self) -> Result<(), ServeError> {
        let a = self.0;
        if heartbeat_too_long(a) {
            return Err(ServeError::Config(format!(
                "--heartbeat {:?} must be shorter than --election-timeout {:?}",
                a.heartbeat, a.election_timeout
            )));
        }
        let runtime = served_config(a);
        let schedule = super::snapshot_schedule(runtime.protocol.snapshots);
        let server = Server::<R, Kv>::start(ServeConfig {
            identity: Identity {
                me: NodeId(a.id),
                addrs: a.peers.0.clone(),
                cluster: a.cluster_id.clone(),
                secret: a.secret.as_deref().map_or_else(Secret::none, Secret::new),
            },
            data: a.data.clone(),
            status: a.status,
            runtime,
            fault_hooks: a.fault_hooks,
            memory: a.storage == StorageKind::Memory,
        })?;
        eprintln!(
            "paxraft n{} ({}, {} nodes, {}) serving on {}{}",
            a.id,
            R::NAME,
            a.peers.0.len(),
            schedule,
            server.addr,
            a.status
                .map(|s| format!(", status on http://{s}/"))
                .unwrap_or_default()
        );
        wait_for(&self.1, None);
        // Finish the step in progress and sync, then stop.
        server.shutdown();
        eprintln!("paxraft n{}: stopped", a.id);
        Ok(())
    }
}

fn heartbeat_too_long(a: &ServeArgs) -> bool {
    a.heartbeat >= a.election_timeout
}

/// Set the returned flag on SIGTERM or SIGINT.
fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    Ok(stop)
}

/// `paxraft serve`.
pub fn serve(args: &ServeArgs) -> ExitCode {
    let stop = match stop_flag() {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    match with_protocol(args.protocol, Serve(args, stop)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => bad(e),
    }
}

/// `paxraft kv`: one request to a cluster.
#[derive(Debug, clap::Args)]
pub struct KvArgs {
    /// The cluster's addresses: 0=HOST:PORT,1=HOST:PORT,...
    #[arg(long, value_parser = peers, global = true)]
    pub cluster: Option<Peers>,
    /// Give up after this long (the request may or may not have taken effect).
    #[arg(long, default_value = "5s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    /// The request.
    #[command(subcommand)]
    pub op: KvCommand,
}

/// A key-value request.
#[derive(Debug, clap::Subcommand)]
pub enum KvCommand {
    /// Print a key's value (`(none)` if absent).
    Get {
        /// The key.
        key: u64,
    },
    /// Write a key.
    Put {
        /// The key.
        key: u64,
        /// The value (UTF-8).
        value: String,
    },
    /// Write NEW if the key holds --expect (absent, without --expect); exit 1 if not.
    Cas {
        /// The key.
        key: u64,
        /// The value written.
        new: String,
        /// The value the key must hold.
        #[arg(long)]
        expect: Option<String>,
    },
}

/// A client of the servers at `addrs`. Clients send no protocol messages, so one replica
/// type serves for every protocol's servers.
pub fn client(addrs: &[SocketAddr], cfg: ClientConfig) -> NetClient<Raft<Cmd<Kv>>, Kv> {
    NetClient::connect(NetClient::<Raft<Cmd<Kv>>, Kv>::random_id(), addrs, cfg)
}

fn show(v: &Option<Vec<u8>>) -> String {
    match v {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "(none)".into(),
    }
}

/// `paxraft kv`.
pub fn kv(args: &KvArgs) -> ExitCode {
    let Some(Peers(addrs)) = &args.cluster else {
        return bad("the cluster's addresses are required: --cluster 0=HOST:PORT,...");
    };
    let op = match &args.op {
        KvCommand::Get { key } => KvOp::Get(*key),
        KvCommand::Put { key, value } => KvOp::Put(*key, value.clone().into_bytes()),
        KvCommand::Cas { key, new, expect } => KvOp::Cas {
            key: *key,
            expect: expect.clone().map(String::into_bytes),
            new: new.clone().into_bytes(),
        },
    };
    let mut c = client(
        addrs,
        ClientConfig {
            timeout: args.timeout,
            ..ClientConfig::default()
        },
    );
    match c.submit(op) {
        Ok(KvOutput::Value(v)) => println!("{}", show(&v)),
        Ok(KvOutput::Written) | Ok(KvOutput::Cas(Ok(()))) => println!("ok"),
        Ok(KvOutput::Cas(Err(found))) => {
            println!("not written: the key holds {}", show(&found));
            return ExitCode::from(1);
        }
        Ok(other) => println!("{other:?}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// `paxraft cluster --local N`: server processes on loopback.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Start this many server processes on loopback.
    #[arg(long)]
    pub local: usize,
    /// The protocol.
    #[arg(long, value_enum, default_value = "raft")]
    pub protocol: Protocol,
    /// Where their data directories go (default: a new directory under the system's
    /// temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run closed-loop load against them, print ops/s and latency percentiles, and stop.
    #[arg(long)]
    pub bench: bool,
    /// With --bench: how long to measure, after a warm-up of a fifth of it (not counted).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// With --bench: client threads.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// With --bench: requests each client keeps outstanding.
    #[arg(long, default_value_t = 64)]
    pub outstanding: usize,
    /// With --bench: bytes of each put's value.
    #[arg(long, default_value_t = 16)]
    pub payload: usize,
    /// Where the servers keep their writes (see `paxraft serve --storage`).
    #[arg(long, value_enum, default_value = "file")]
    pub storage: StorageKind,
    /// Passed to every server (see `paxraft serve --snapshot-every`).
    #[command(flatten)]
    pub snapshots: super::SnapshotArgs,
    /// Passed to every server (see `paxraft serve --session-timeout`).
    #[arg(long, value_name = "COMMANDS", default_value_t = DEFAULT_SESSION_TIMEOUT)]
    pub session_timeout: u64,
}

impl super::SnapshotArgs {
    /// The flags that give a `serve` process these settings (none for a setting left out).
    fn serve_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(every) = self.snapshot_every {
            flags.push("--snapshot-every".to_string());
            flags.push(match every {
                super::SnapshotEvery::Off => "off".to_string(),
                super::SnapshotEvery::Slots(n) => n.to_string(),
            });
        }
        if self.snapshot_chunk != paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK {
            flags.push("--snapshot-chunk".to_string());
            flags.push(self.snapshot_chunk.to_string());
        }
        flags
    }
}

/// A free loopback port below Linux's ephemeral range (32768 up), tried in turn from a
/// point chosen by the process id: a port the kernel handed out (bind to port 0) could be
/// handed out again as an outgoing connection's source port before the server binds it.
/// Bound and released: another process could take it in between, which `serve` reports as a
/// port in use.
pub fn free_port() -> std::io::Result<SocketAddr> {
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 1000) as u16 * 12;
    for _ in 0..1000 {
        let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr();
        }
    }
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Processes of a local cluster; stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
#[derive(Debug)]
pub struct Local {
    children: Vec<Child>,
}

/// `0=ADDR,1=ADDR,...` of the servers' addresses (the first of each pair).
fn peer_list(ports: &[(SocketAddr, SocketAddr)]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, (a, _))| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Local {
    /// Start `n` server processes of `protocol` on loopback, data and logs under `dir`:
    /// each is `program()` given `serve` and its flags (the `paxraft` binary, or a program
    /// that runs [`crate::cli::main`] as it, like the benchmarks), `serve_flags` added to
    /// each. The processes and each node's (server, status) addresses; the servers may still
    /// be starting.
    pub fn start(
        program: impl Fn() -> std::process::Command,
        protocol: Protocol,
        storage: StorageKind,
        n: usize,
        dir: &std::path::Path,
        serve_flags: &[String],
    ) -> Result<(Local, Vec<(SocketAddr, SocketAddr)>), String> {
        let ports = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| format!("no free loopback port: {e}"))?;
        let peers = peer_list(&ports);
        let mut local = Local {
            children: Vec::new(),
        };
        for (i, (_, status)) in ports.iter().enumerate() {
            let data = dir.join(format!("node{i}"));
            let log = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::File::create(dir.join(format!("node{i}.log"))))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            let child = program()
                .args(["serve", "--protocol", protocol.name(), "--id"])
                .arg(i.to_string())
                .args(["--peers", &peers, "--status", &status.to_string()])
                .args(["--storage", storage.name(), "--data"])
                .arg(&data)
                .args(serve_flags)
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start a server: {e}"))?;
            local.children.push(child);
        }
        Ok((local, ports))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        for c in &self.children {
            // SAFETY: kill(2) on a child's pid has no memory effects.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let until = Instant::now() + Duration::from_secs(5);
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `paxraft cluster`.
pub fn cluster(args: &ClusterArgs) -> ExitCode {
    if !(1..=9).contains(&args.local) {
        return bad(format!("--local takes 1 to 9 servers, got {}", args.local));
    }
    if args.clients == 0 || args.outstanding == 0 {
        return bad("--clients and --outstanding must be at least 1");
    }
    // Refused here with the servers' own reason, rather than by each server's exit.
    let mut probe = crate::runtime::fast_config();
    let every = Some(crate::runtime::DEFAULT_SNAPSHOTS.every);
    args.snapshots.apply(&mut probe, every);
    if let Err(e) = probe.validate(args.local) {
        return bad(e.to_string());
    }
    let stop = match stop_flag() {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("paxraft-local-{}", std::process::id()))
    });
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return bad(format!("cannot find this program: {e}")),
    };
    let (mut local, ports) = match Local::start(
        || std::process::Command::new(&exe),
        args.protocol,
        args.storage,
        args.local,
        &dir,
        &[
            args.snapshots.serve_flags(),
            vec!["--session-timeout".into(), args.session_timeout.to_string()],
        ]
        .concat(),
    ) {
        Ok(l) => l,
        Err(e) => return bad(e),
    };
    let peers = peer_list(&ports);
    // A directory of our own choosing is removed after a clean stop; one given with --dir,
    // or one whose servers failed (their logs say why), is left.
    let temporary = args.dir.is_none();
    println!(
        "{} {} servers, {}, data and logs in {}{}",
        args.local,
        args.protocol,
        super::snapshot_schedule(probe.snapshots),
        dir.display(),
        if temporary { " (removed at exit)" } else { "" }
    );
    for (i, (a, s)) in ports.iter().enumerate() {
        println!("  node {i}: {a}  status http://{s}/");
    }
    println!("clients: paxraft kv --cluster {peers} get 1");
    let addrs: Vec<SocketAddr> = ports.iter().map(|(a, _)| *a).collect();
    let status: Vec<SocketAddr> = ports.iter().map(|(_, s)| *s).collect();
    // Stop the servers (SIGTERM, waited for), then remove a temporary directory.
    let clean_stop = |local: Local| {
        drop(local);
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        ExitCode::SUCCESS
    };
    if args.bench {
        return match bench(&addrs, &status, args) {
            Ok(line) => {
                println!("{line}");
                clean_stop(local)
            }
            Err(e) => {
                eprintln!("error: {e}; the servers' logs are in {}", dir.display());
                ExitCode::from(1)
            }
        };
    }
    println!("Ctrl-C stops them.");
    loop {
        wait_for(&stop, Some(Instant::now() + Duration::from_millis(200)));
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for (i, c) in local.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                eprintln!(
                    "error: node {i} exited ({status}); see its log in {}",
                    dir.display()
                );
                return ExitCode::from(1);
            }
        }
    }
    clean_stop(local)
}

/// `cluster --bench`: the benchmarks' closed loop ([`NetLoad`]) on the servers started, a
/// fifth of `--duration` to warm up, then `--duration` measured; with the elections held
/// meanwhile (read from the servers' `status` pages; none is expected, as nothing fails).
fn bench(
    addrs: &[SocketAddr],
    status: &[SocketAddr],
    args: &ClusterArgs,
) -> Result<String, String> {
    let cfg = LoadConfig {
        clients: args.clients,
        snapshots: None,
        ..LoadConfig::writes(
            args.protocol,
            addrs.len(),
            args.clients * args.outstanding,
            args.payload,
        )
    };
    let mut load = NetLoad::connect(addrs, cfg).map_err(|e| e.to_string())?;
    let from = highest_term(status);
    let p = measure_for(&mut load, args.duration / 5, args.duration).map_err(|e| e.to_string())?;
    let elections = match elections_since(from, status) {
        Some(n) => format!("{n} elections"),
        None => "elections not counted (a status page did not answer)".to_string(),
    };
    let us = |v: f64| Duration::from_nanos((v * 1e3) as u64);
    Ok(format!(
        "{} clients x {} outstanding, {} B puts, {} storage, {:?}: {:.0} ops/s, p50 {:?}, p99 {:?}, {} errors, {elections}",
        args.clients,
        args.outstanding,
        args.payload,
        args.storage.name(),
        args.duration,
        p.ops_per_sec,
        us(p.p50_us),
        us(p.p99_us),
        p.errors
    ))
}

/// The highest term (or ballot round) the servers at `status` report (`None` if one does
/// not answer, or answers without a term): how a load over the network counts elections.
pub fn highest_term(status: &[SocketAddr]) -> Option<u64> {
    status
        .iter()
        .map(|&a| get_status(a).ok()?.get("term")?.as_u64())
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .max()
}

/// The elections held since the servers at `status` were at term `from` ([`highest_term`]
/// then): `None` if either reading failed.
pub fn elections_since(from: Option<u64>, status: &[SocketAddr]) -> Option<u64> {
    from.zip(highest_term(status))
        .map(|(from, now)| now.saturating_sub(from))
}

/// GET a status endpoint's JSON (for tests and scripts).
pub fn get_status(addr: SocketAddr) -> Result<serde_json::Value, String> {
    use std::io::{Read, Write};
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or("no HTTP body")?;
    serde_json::from_str(body).map_err(|e| e.to_string())
}
