//! `paxraft run`: a live in-process cluster under pipelined client load, with a progress bar;
//! prints throughput and latency percentiles. With `--reconfigure`, membership changes are
//! applied one by one while the load runs, each printed with its result and how long it took.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use paxraft_impls::sm::{Kv, KvOp};
use paxraft_impls::{
    Change, ChangeError, ChangeMode, Membership, NodeId, NodeSet, ReadMode, Replica, MAX_NODES,
};

use super::bad;
use crate::bench::sent::SentBatches;
use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::runtime::{
    ChangeFailure, ClientConfig, Cluster, Cmd, Error as ClientError, FileStorage, RuntimeConfig,
    Storage,
};

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
    /// Voters of the initial configuration: nodes n0 to n(N-1).
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Nodes booted outside the configuration after the servers, for `--reconfigure` to
    /// add (servers and spares together: at most 7 nodes).
    #[arg(long, default_value_t = 0)]
    pub spares: usize,
    /// Membership changes applied one after another while the load runs, comma-separated:
    /// `add:N` (make node N a voter), `learner:N` (a member that takes the log but does not
    /// vote), `remove:N`, `transfer:N` (hand the leadership to voter N), e.g.
    /// `--servers 3 --spares 2 --reconfigure add:3,add:4,remove:0`. Each is printed with the
    /// configuration it committed and the time it took. A change that does not apply (an
    /// unknown kind, a node outside the cluster, removing the last voter, adding a member,
    /// one the protocol does not support) is bad input: one line, exit 2; checked before
    /// the run against the initial configuration, or, when `--data` continues an earlier
    /// cluster, refused by the cluster during the run (later changes are then skipped). A
    /// change with no answer within 10 s exits 1.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_change)]
    pub reconfigure: Vec<Change>,
    /// How voters change: `single` (one voter at a time) or `joint` (joint consensus: the
    /// old and new voters' majorities both decide until the new configuration commits).
    #[arg(long, value_name = "MODE", default_value = "single", value_parser = parse_change_mode)]
    pub change_mode: ChangeMode,
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
    /// earlier run left there: its state, snapshots, client sessions and configuration
    /// (the run must give the same --servers and --spares). Without it, file storage goes to
    /// a new temporary directory.
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
    #[command(flatten)]
    pub flow: super::FlowArgs,
}

/// `--reconfigure`, for clap: one change.
fn parse_change(s: &str) -> Result<Change, String> {
    Change::parse(s)
}

/// `--change-mode`, for clap.
fn parse_change_mode(s: &str) -> Result<ChangeMode, String> {
    ChangeMode::parse(s).ok_or_else(|| "expected single or joint".to_string())
}

/// How long `--reconfigure` waits for each change.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a run failed: bad input (exit 2: flags, a data directory, a change that does not
/// apply), or the cluster did not do what it was asked (exit 1: a change with no answer).
#[derive(Debug)]
enum Failure {
    Bad(String),
    Failed(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Bad(e)
    }
}

/// Run the subcommand.
pub fn run(args: &RunArgs) -> ExitCode {
    if args.clients == 0 || args.ops == 0 || args.outstanding == 0 {
        return bad("--clients, --ops and --outstanding must be at least 1");
    }
    match with_protocol(args.protocol, Go(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Bad(e)) => bad(e),
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `paxraft run` of one protocol.
struct Go<'a>(&'a RunArgs);

impl ProtocolVisitor for Go<'_> {
    type Output = Result<(), Failure>;
    fn visit<R: Hosted>(self) -> Result<(), Failure> {
        go::<R>(self.0)
    }
}

/// Check the cluster's shape and the changes against it, before anything runs: the nodes
/// the changes name exist, the protocol changes its membership if asked to, and (`fresh`:
/// no earlier run's configuration to continue from) each change applies to the
/// configuration the ones before it leave, starting from the initial voters.
fn check_changes<R: Replica<Cmd<Kv>>>(args: &RunArgs, fresh: bool) -> Result<(), String> {
    let nodes = args.servers + args.spares;
    if args.servers == 0 || nodes > MAX_NODES {
        return Err(format!(
            "--servers must be at least 1, and --servers plus --spares at most {MAX_NODES} nodes (got {} and {})",
            args.servers, args.spares
        ));
    }
    if !R::CHANGES && (args.spares > 0 || !args.reconfigure.is_empty()) {
        return Err(format!(
            "{} does not support membership changes (--spares, --reconfigure)",
            R::NAME
        ));
    }
    let mut config = Membership::voters(NodeSet::first(args.servers));
    for &change in &args.reconfigure {
        let id = change.node();
        if id.index() >= nodes {
            return Err(format!(
                "--reconfigure {change}: {id} is outside the cluster (nodes n0 to n{}; --spares adds nodes)",
                nodes - 1
            ));
        }
        if !fresh {
            continue;
        }
        config = match change {
            Change::Transfer(_) if !config.is_voter(id) => Err(ChangeError::NotVoter(id)),
            Change::Transfer(_) => Ok(config),
            _ => config.changed(change, args.change_mode),
        }
        .map_err(|e| format!("--reconfigure {change}: {e}"))?
        .leave_joint();
    }
    Ok(())
}

/// Apply `--reconfigure`'s changes one by one (while the load runs), printing each; stop at
/// the first that fails.
fn reconfigure<R: Replica<Cmd<Kv>>>(
    cluster: &Cluster<R, Kv>,
    changes: &[Change],
    bar: &indicatif::ProgressBar,
) -> Result<(), Failure> {
    for (i, &change) in changes.iter().enumerate() {
        let t = Instant::now();
        let result = cluster.change(change, CHANGE_TIMEOUT);
        let took = t.elapsed().as_secs_f64() * 1000.0;
        let what = match &result {
            Ok(config) => format!("{config} in {took:.1} ms"),
            Err(e) => format!("failed after {took:.1} ms: {e}"),
        };
        bar.suspend(|| println!("change {}/{} {change}: {what}", i + 1, changes.len()));
        match result {
            Ok(_) => {}
            Err(e @ ChangeFailure::Refused { .. }) => return Err(Failure::Bad(e.to_string())),
            Err(e) => return Err(Failure::Failed(e.to_string())),
        }
    }
    Ok(())
}

fn go<R: Hosted>(args: &RunArgs) -> Result<(), Failure> {
    let fresh = args
        .data
        .as_ref()
        .map_or(true, |d| !d.join(MANIFEST).exists());
    check_changes::<R>(args, fresh)?;
    let nodes = args.servers + args.spares;
    let mut cfg = RuntimeConfig {
        voters: Some(args.servers),
        ..RuntimeConfig::default()
    };
    cfg.protocol.changes = args.change_mode;
    args.reads.apply(&mut cfg.protocol);
    args.snapshots.apply(
        &mut cfg.protocol,
        Some(crate::runtime::DEFAULT_SNAPSHOTS.every),
    );
    args.flow.apply(&mut cfg.protocol);
    let snapshots = super::snapshot_schedule(cfg.protocol.snapshots);
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
    // File storage without --data: a directory of our own, removed after a clean run (kept,
    // for its logs, when the run failed), as `cluster --local` does with its own.
    let mut temporary = None;
    let mut cluster: Cluster<R, Kv> = match storage {
        StorageKind::Memory => Cluster::new(nodes, cfg).map_err(String::from)?,
        StorageKind::File => {
            let (dir, first_client) = match &args.data {
                Some(dir) => {
                    let first =
                        Manifest::claim(dir, R::NAME, args.servers, args.spares, args.clients)?;
                    (dir.clone(), first)
                }
                None => {
                    let dir =
                        std::env::temp_dir().join(format!("paxraft-run-{}", std::process::id()));
                    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    temporary = Some(dir.clone());
                    (dir, 1)
                }
            };
            eprintln!(
                "logs in {}{}",
                dir.display(),
                if temporary.is_some() {
                    " (removed after a clean run)"
                } else {
                    ""
                }
            );
            let mut c = Cluster::with_storage(nodes, cfg, move |id| {
                let s: Box<dyn Storage<R, Cmd<Kv>>> = Box::new(FileStorage::<R, Cmd<Kv>>::open(
                    dir.join(format!("{id}.log")),
                )?);
                Ok(s)
            })
            .map_err(String::from)?;
            c.number_clients_from(first_client);
            c
        }
    };
    // The clock starts once a leader is elected: the first election is not the protocol's
    // throughput, and requests sent before it would wait for it.
    let (first_leader, first_term) = elected(&cluster, ELECTION_WAIT)
        .ok_or_else(|| Failure::Failed(format!("no leader elected within {ELECTION_WAIT:?}")))?;
    let bar = indicatif::ProgressBar::new(args.ops);
    let done = Arc::new(AtomicU64::new(0));
    let per = args.ops / args.clients as u64;
    let extra = args.ops % args.clients as u64;
    // Where the operations' CPU goes: each node's thread, and each client's (read on its own
    // thread, from its first request to its last answer).
    let nodes_cpu_from = cluster.node_cpu();
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
            let cpu_from = crate::cpu::this_thread();
            // Nanoseconds, 3 significant digits (what the percentiles print).
            let mut lat = crate::bench::histogram();
            let mut answers = Vec::with_capacity(window);
            // When each outstanding request left, one record per batch sent together (the
            // bench's driver keeps the same): memory grows with what is outstanding, not with
            // `--ops`.
            let mut sent_at = SentBatches::default();
            let (mut sent, mut errors, mut overloaded) = (0u64, 0u64, 0u64);
            while lat.len() + errors < n {
                let now = Instant::now();
                while sent < n && c.outstanding() < window {
                    // Exactly `read_percent` of every 100 operations are gets, spread out.
                    let n = sent + 1;
                    let op = if n * read_percent / 100 != sent * read_percent / 100 {
                        KvOp::Get(sent % 1024)
                    } else {
                        KvOp::Put(sent % 1024, Vec::new())
                    };
                    let seq = c.send(op).map_err(|e| format!("send: {e}"))?;
                    sent += 1;
                    debug_assert_eq!(seq, sent);
                    sent_at.push(seq, now);
                }
                c.poll_many(Duration::from_secs(10), &mut answers);
                let now = Instant::now();
                let got = answers.len() as u64;
                for (seq, res) in answers.drain(..) {
                    let batch = sent_at
                        .answer(seq)
                        .ok_or_else(|| format!("answer to request {seq}, not outstanding"))?;
                    match res {
                        Ok(_) => {
                            let latency = now.duration_since(sent_at.at(batch)).as_nanos();
                            lat.saturating_record(u64::try_from(latency).unwrap_or(u64::MAX).max(1))
                        }
                        Err(e) => {
                            errors += 1;
                            overloaded += u64::from(e == ClientError::Overloaded);
                        }
                    }
                }
                sent_at.drop_answered();
                let before = done.fetch_add(got, Ordering::Relaxed);
                if (before + got) / 4096 != before / 4096 {
                    bar.set_position(before + got);
                }
            }
            let cpu = crate::cpu::this_thread_since(cpu_from);
            Ok::<_, String>((lat, errors, overloaded, cpu))
        }));
    }
    // The changes go in while the clients run; a failed one stops the rest, not the load
    // (what the clients submitted is still answered before the run ends).
    let changed = reconfigure(&cluster, &args.reconfigure, &bar);
    let mut lat = crate::bench::histogram();
    let (mut errors, mut overloaded) = (0, 0);
    let mut clients_cpu = Some(Duration::ZERO);
    for t in threads {
        let (l, e, o, cpu) = t
            .join()
            .map_err(|_| "client thread panicked".to_string())??;
        lat.add(l).expect("latency histograms of the same bounds");
        errors += e;
        overloaded += o;
        clients_cpu = clients_cpu.zip(cpu).map(|(all, one)| all + one);
    }
    let nodes_cpu = cluster.node_cpu();
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let leadership = leadership((first_leader, first_term), elected(&cluster, ELECTION_WAIT));
    let panics = cluster.panics();
    // Where the configuration ended (for a cluster that can change it, or spares to add).
    let config = (R::CHANGES && (nodes > args.servers || !args.reconfigure.is_empty()))
        .then(|| cluster.configuration())
        .flatten();
    // Reads a leader's local reader answered on the client threads, under its lease.
    let local: u64 = (0..nodes).map(|i| cluster.local_reads(i)).sum();
    let cluster_leader = cluster.leader();
    cluster.shutdown();
    let pct = |p: f64| lat.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "{} {} servers{}, {} clients x {} outstanding, {:?} storage, {snapshots}, {}% reads ({}{}): {} ops in {:.2} s = {:.0} ops/s; \
         latency p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs; {} errors{}; {leadership}",
        R::NAME,
        args.servers,
        if args.spares > 0 {
            format!(" + {} spares", args.spares)
        } else {
            String::new()
        },
        args.clients,
        args.outstanding,
        storage,
        args.read_percent,
        args.reads.reads,
        match (args.reads.follower_reads, local) {
            (true, 0) => ", follower reads".to_string(),
            (true, n) => format!(", follower reads; {n} answered locally"),
            (false, 0) => String::new(),
            (false, n) => format!(", {n} answered locally"),
        },
        lat.len(),
        secs,
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        errors,
        // Back-pressure: requests a leader at --max-uncommitted refused.
        if overloaded > 0 {
            format!(" ({overloaded} refused by a leader at its uncommitted cap)")
        } else {
            String::new()
        }
    );
    if let Some(cpu) = crate::results::CpuUse::over(
        clients_cpu,
        &nodes_cpu_from,
        &nodes_cpu,
        lat.len(),
        cluster_leader,
    ) {
        println!("CPU per operation: {}", cpu.line());
    }
    if let Some(config) = config {
        println!("configuration: {config}");
    }
    let clean = panics.is_empty() && changed.is_ok();
    for (id, what) in panics {
        println!("replica {id} panicked: {what}");
    }
    if let Some(dir) = temporary.filter(|_| clean) {
        // The cluster is shut down: nothing writes there any more.
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    changed
}

/// How long `run` waits for a leader, before the load and after it.
const ELECTION_WAIT: Duration = Duration::from_secs(10);

/// The leader and its term (Raft's term, the Paxos ballot's round), once one is elected
/// within `wait`.
fn elected<R: Hosted>(cluster: &Cluster<R, Kv>, wait: Duration) -> Option<(usize, u64)> {
    let until = Instant::now() + wait;
    loop {
        if let Some((i, s)) = cluster.leader().and_then(|i| Some((i, cluster.status(i)?))) {
            return Some((i, s.term));
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether the leadership changed while the load ran: a new election is a pause every
/// client waited through.
fn leadership(first: (usize, u64), last: Option<(usize, u64)>) -> String {
    match last {
        Some(last) if last == first => {
            format!("leader n{} in term {} throughout", first.0, first.1)
        }
        Some((n, t)) => format!(
            "the leadership changed: n{} in term {} at the start, n{n} in term {t} at the end",
            first.0, first.1
        ),
        None => format!(
            "n{} led in term {} at the start; no leader at the end",
            first.0, first.1
        ),
    }
}

/// The manifest's file name in a `--data` directory.
const MANIFEST: &str = "paxraft.json";

/// What `--data DIR` keeps beside the replicas' logs (`DIR/paxraft.json`): the cluster the
/// logs belong to (its protocol, initial voters and spares: a rerun boots the same shape,
/// and the logs hold how the configuration changed since), and the first client id no run
/// has used yet (a run's clients must not reuse ids whose sessions the restored state
/// machine holds: their requests would be answered as retries).
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    protocol: String,
    /// The initial voters, n0 up.
    servers: usize,
    /// Nodes after them, outside the initial configuration (absent before spares existed).
    #[serde(default)]
    spares: usize,
    next_client: u64,
}

/// `3 servers and 1 spare`.
fn shape(servers: usize, spares: usize) -> String {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "{servers} server{} and {spares} spare{}",
        s(servers),
        s(spares)
    )
}

impl Manifest {
    /// Check that `dir` holds this cluster's files, or none yet, and claim `clients` client
    /// ids in it (saved before the cluster starts, so that a run that dies midway has used
    /// only ids it claimed). Returns the first.
    fn claim(
        dir: &Path,
        protocol: &str,
        servers: usize,
        spares: usize,
        clients: usize,
    ) -> Result<u64, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(MANIFEST);
        let first = match std::fs::read(&path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
                if m.protocol != protocol || m.servers != servers || m.spares != spares {
                    return Err(format!(
                        "{} holds a {} cluster of {}, not {protocol} with {}",
                        dir.display(),
                        m.protocol,
                        shape(m.servers, m.spares),
                        shape(servers, spares)
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
            spares,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_line_says_whether_the_leadership_changed_under_load() {
        assert_eq!(
            leadership((1, 1), Some((1, 1))),
            "leader n1 in term 1 throughout"
        );
        // A new term, even with the same leader, was an election the clients waited through.
        assert_eq!(
            leadership((1, 1), Some((1, 3))),
            "the leadership changed: n1 in term 1 at the start, n1 in term 3 at the end"
        );
        assert_eq!(
            leadership((0, 2), Some((2, 3))),
            "the leadership changed: n0 in term 2 at the start, n2 in term 3 at the end"
        );
        assert_eq!(
            leadership((0, 2), None),
            "n0 led in term 2 at the start; no leader at the end"
        );
    }
}
