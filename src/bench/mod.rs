//! Closed-loop load on a live cluster, for the criterion benchmarks (bench/benches/) and the
//! tour's short throughput comparison ([`compare`]).
//!
//! * [`Load`]: a running cluster of any protocol (`raft`, `multipaxos`, `unreplicated`) with
//!   clients driven in parallel by a rayon pool. Each client keeps its share of the requests
//!   outstanding: as soon as one is answered, another is sent (closed loop). [`Load::run`]
//!   completes a given number of operations and returns how long they took, which is exactly
//!   what criterion's `iter_custom` wants; latencies of every operation go into an
//!   hdrhistogram, and [`Load::point`] summarises everything measured so far.
//! * [`recovery`]: throughput over time with the leader crashed at a fixed point; the time
//!   from the crash to the first commit after it, and the dip. [`time_to_rebuild`]: how long a
//!   restarted node takes to rebuild its state machine from its log and catch up.
//! * [`compare`]: a few points of the sweep, short, for the tour; results are saved where
//!   the report reads them.
//! * Reads ([`ReadLoad`]): a share of the operations are gets, served by one of the
//!   [`ReadPath`]s (through the log, by read index at the leader, or by read index at any
//!   node with follower reads); [`compare_reads`] is the tour's short comparison of two paths.

use std::borrow::BorrowMut;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use paxraft_impls::sm::{Kv, KvOp, KvOutput};
use paxraft_impls::{NodeId, Replica};

use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};
use crate::results::{BenchPoint, CeilingRatio, CpuUse, Results};
use crate::runtime::{Client, ClientConfig, Cluster, Cmd, Error as ClientError, RuntimeConfig};
use sent::SentBatches;

mod loopback;
mod reads;
mod recovery;
pub(crate) mod sent;
pub use loopback::{LoopbackLoad, NetLoad};
pub use reads::{
    compare_reads, has_read_path, read_point, side_by_side, ReadLoad, ReadPath, READ_MIXES,
    SIDE_BY_SIDE,
};
pub use recovery::{
    catch_up, leader_restart, recovery, recovery_of, time_idle_commits, time_to_first_commit,
    time_to_rebuild, time_transfers, RecoveryConfig,
};

/// Why a load, a measurement or a recovery run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A configuration that cannot run, with the reason.
    #[error("{0}")]
    Config(&'static str),
    /// More client threads than outstanding requests.
    #[error("{clients} clients cannot share {outstanding} outstanding requests")]
    ClientsOverOutstanding {
        /// Client threads asked for.
        clients: usize,
        /// Requests outstanding.
        outstanding: usize,
    },
    /// A payload over 1 MiB.
    #[error("payload of {0} bytes is over 1 MiB")]
    PayloadTooLarge(usize),
    /// The server processes of a loopback load could not be started or did not answer.
    #[error("loopback: {0}")]
    Loopback(String),
    /// The runtime could not start the cluster (its reason).
    #[error(transparent)]
    Cluster(#[from] crate::runtime::StartError),
    /// The client thread pool could not be built.
    #[error("client pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    /// The cluster did not commit the probe request that waits for a leader.
    #[error("{protocol} did not commit a first request: {reason}")]
    NoFirstCommit {
        /// The protocol.
        protocol: &'static str,
        /// The client's error.
        reason: String,
    },
    /// A client failed while driving load.
    #[error("{protocol}: {failure}")]
    Client {
        /// The protocol.
        protocol: &'static str,
        /// What went wrong.
        failure: ClientFailure,
    },
    /// A replica thread panicked.
    #[error("{protocol} replica {id} panicked: {what}")]
    ReplicaPanicked {
        /// The protocol.
        protocol: &'static str,
        /// The replica.
        id: paxraft_impls::NodeId,
        /// The panic's message.
        what: String,
    },
    /// A leadership transfer was refused, timed out, or its target was not seen leading.
    #[error("{protocol}: leadership transfer failed: {reason}")]
    Transfer {
        /// The protocol.
        protocol: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// No leader once the load was done (to pick a follower to restart).
    #[error("{0}: no leader after the load")]
    NoLeaderAfterLoad(&'static str),
    /// No leader to crash at the crash instant (nor within 2 s).
    #[error("{0}: no leader to crash")]
    NoLeaderToCrash(&'static str),
    /// A restarted node did not catch up in time.
    #[error("{0}: a restarted node did not catch up within 30 s")]
    NoCatchUp(&'static str),
    /// Nothing committed after the leader crash in time.
    #[error("{0}: nothing committed within 10 s of the crash")]
    NoCommitAfterCrash(&'static str),
    /// A load thread panicked.
    #[error("load thread panicked")]
    LoadThreadPanicked,
    /// A read path other than the log, on a protocol that has none ([`Replica::READS`]).
    #[error(
        "{protocol} has no read path without the log (READS is false): cannot measure {path} reads"
    )]
    NoReadPath {
        /// The protocol.
        protocol: &'static str,
        /// The path asked for.
        path: &'static str,
    },
    /// A read share above 100%.
    #[error("read share must be 0 to 100%, got {0}%")]
    ReadPercent(u8),
    /// The results could not be saved.
    #[error("{dir}: {source}")]
    Save {
        /// The report directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How one client's closed loop failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientFailure {
    /// The client refused a request.
    #[error("{0}")]
    Send(String),
    /// No answer at all for this many seconds.
    #[error("no answer for {0} s: cluster stuck")]
    Stuck(u64),
    /// An answer to a request that is not outstanding: never sent, or answered already.
    #[error("answer to request {0}, which is not outstanding (never sent, or answered already)")]
    UnknownAnswer(u64),
    /// More requests failed than the round could complete (a cluster that answers with
    /// errors, such as timeouts, would otherwise keep the closed loop going forever).
    #[error("{errors} requests failed ({last}) while {ok} succeeded: giving up")]
    Failing {
        /// Requests answered with an error in this round.
        errors: u64,
        /// Requests that succeeded in this round.
        ok: u64,
        /// The last error.
        last: String,
    },
}

/// What load to put on which cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// Cluster size (`unreplicated` serves from one node whatever the size).
    pub servers: usize,
    /// Requests outstanding over all clients together.
    pub outstanding: usize,
    /// Bytes of each put's value.
    pub payload_bytes: usize,
    /// Client threads; 0 picks [`default_clients`].
    pub clients: usize,
    /// What share of the operations are gets, and how they are served (default: none).
    pub reads: ReadLoad,
    /// When the replicas snapshot and compact their logs (`None`: never).
    pub snapshots: Option<paxraft_impls::SnapshotPolicy>,
}

/// Most client threads by default. The replicas already take a thread each and the machine
/// may have two cores: more client threads only add context switches, while each client
/// pipelines its share of the outstanding requests.
pub const MAX_DEFAULT_CLIENTS: usize = 4;

/// Client threads for `outstanding` requests: one per request up to [`MAX_DEFAULT_CLIENTS`].
pub fn default_clients(outstanding: usize) -> usize {
    outstanding.clamp(1, MAX_DEFAULT_CLIENTS)
}

impl LoadConfig {
    /// Puts only (no reads, the default client count, a snapshot every
    /// [`DEFAULT_SNAPSHOTS`](crate::runtime::DEFAULT_SNAPSHOTS)`.every` slots): the
    /// throughput sweep's load. Loads on server processes take `snapshots: None` (the
    /// servers' own flags decide), as does a load that replays a whole log.
    pub fn writes(
        protocol: Protocol,
        servers: usize,
        outstanding: usize,
        payload_bytes: usize,
    ) -> Self {
        LoadConfig {
            protocol,
            servers,
            outstanding,
            payload_bytes,
            clients: 0,
            reads: ReadLoad::default(),
            snapshots: Some(crate::runtime::DEFAULT_SNAPSHOTS),
        }
    }

    /// `percent`% gets served by read path `path` among empty puts, `outstanding` requests,
    /// 3 servers, compacting as [`LoadConfig::writes`] does: the reads' load.
    pub fn read_mix(protocol: Protocol, path: ReadPath, percent: u8, outstanding: usize) -> Self {
        LoadConfig {
            reads: ReadLoad { percent, path },
            ..LoadConfig::writes(protocol, 3, outstanding, 0)
        }
    }

    /// Reject what cannot run, with a one-line reason.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.outstanding == 0 {
            return Err(BenchError::Config(
                "outstanding requests must be at least 1",
            ));
        }
        if self.clients > self.outstanding {
            return Err(BenchError::ClientsOverOutstanding {
                clients: self.clients,
                outstanding: self.outstanding,
            });
        }
        if self.payload_bytes > 1 << 20 {
            return Err(BenchError::PayloadTooLarge(self.payload_bytes));
        }
        if self.reads.percent > 100 {
            return Err(BenchError::ReadPercent(self.reads.percent));
        }
        Ok(())
    }

    fn client_count(&self) -> usize {
        if self.clients == 0 {
            default_clients(self.outstanding)
        } else {
            self.clients
        }
    }
}

/// A client driven in closed loop, with its latency record.
///
/// `C` is the client: an in-process [`Client`], or a [`crate::net::client::NetClient`] (which
/// lends its `Client`) for server processes.
struct Driven<R: Replica<Cmd<Kv>>, C: BorrowMut<Client<R, Kv>> = Client<R, Kv>> {
    client: C,
    replica: PhantomData<fn() -> R>,
    window: usize,
    /// When each outstanding request was sent, by batch.
    sent: SentBatches,
    /// Answers of the last poll (kept for its capacity).
    answers: Vec<(u64, Result<KvOutput, ClientError>)>,
    hist: Histogram<u64>,
    key: u64,
    /// Requests answered with an error (not counted as operations).
    errors: u64,
    /// Requests answered with a result, since the last reset.
    done: u64,
    /// Percent of operations that are gets.
    read_percent: u64,
    /// Operations issued so far (spreads the gets evenly: exactly `read_percent` of them).
    issued: u64,
    /// CPU time of the thread driving this client, while it drove it, since the last reset
    /// (`None`: the thread's clock could not be read).
    cpu: Option<Duration>,
}

/// Latency histogram in nanoseconds, 1 ns to 100 s, 3 significant digits (the benchmarks'
/// and `paxraft run`'s).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Give up on a client that hears nothing at all for this long: the cluster is stuck.
const STUCK: Duration = Duration::from_secs(10);

impl<R: Replica<Cmd<Kv>>, C: BorrowMut<Client<R, Kv>>> Driven<R, C> {
    /// Complete `n` operations successfully, keeping `window` outstanding. A request answered
    /// with an error (a timeout: it may or may not have taken effect) is not one of them: it
    /// is counted in `errors` and another request takes its place, so the time a round takes
    /// is the time of `n` successes. More errors in one round than `max(n, window)` (every
    /// request of the window failing, then as many again) ends it with
    /// [`ClientFailure::Failing`].
    fn drive(&mut self, n: u64, payload: &[u8]) -> Result<(), ClientFailure> {
        let (mut ok, mut failed) = (0u64, 0u64);
        let give_up = n.max(self.window as u64);
        let mut answers = std::mem::take(&mut self.answers);
        // One clock reading a pass: when its answers came. A request's latency is from the
        // batch it left in to the batch that brought its answer; a batch is stamped with the
        // reading of the answers counted just before it left (so a latency is overstated by
        // that counting, never understated). Under lease reads a pass sends a few dozen
        // requests, and each reading cost about a read's worth.
        let mut now = Instant::now();
        while ok < n {
            // This pass's requests: a run of numbers from `first`, recorded at once below.
            let (mut first, mut count) = (0, 0);
            while ok + self.sent.live() + count < n
                && self.client.borrow().outstanding() < self.window
            {
                self.key = (self.key + 1) % 1024;
                self.issued += 1;
                let op = if is_read(self.issued, self.read_percent) {
                    KvOp::Get(self.key)
                } else {
                    KvOp::Put(self.key, payload.to_vec())
                };
                let seq = match self.client.borrow_mut().send(op) {
                    Ok(seq) => seq,
                    Err(e) => {
                        // What was sent stays recorded: its answers may still come.
                        self.sent.push_run(first, count, now);
                        return Err(ClientFailure::Send(e.to_string()));
                    }
                };
                if count > 0 && seq != first + count {
                    // Not the next number (the client numbers in order, so not expected).
                    self.sent.push_run(first, count, now);
                    count = 0;
                }
                if count == 0 {
                    first = seq;
                }
                count += 1;
            }
            self.sent.push_run(first, count, now);
            if self.client.borrow_mut().poll_many(STUCK, &mut answers) == 0 {
                return Err(ClientFailure::Stuck(STUCK.as_secs()));
            }
            now = Instant::now();
            // Answers of one batch polled together have one latency: counted, then recorded
            // at once. `run`: (the batch, its successes so far).
            let mut run: Option<(usize, u64)> = None;
            let record =
                |hist: &mut Histogram<u64>, sent: &SentBatches, run: Option<(usize, u64)>| {
                    if let Some((batch, count)) = run {
                        let latency = now.duration_since(sent.at(batch)).as_nanos().max(1);
                        hist.saturating_record_n(latency as u64, count);
                    }
                };
            for (seq, res) in answers.drain(..) {
                let batch = self
                    .sent
                    .answer(seq)
                    .ok_or(ClientFailure::UnknownAnswer(seq))?;
                match res {
                    Ok(_) => {
                        ok += 1;
                        self.done += 1;
                        match &mut run {
                            Some((b, count)) if *b == batch => *count += 1,
                            _ => {
                                record(&mut self.hist, &self.sent, run);
                                run = Some((batch, 1));
                            }
                        }
                    }
                    Err(e) => {
                        self.errors += 1;
                        failed += 1;
                        if failed > give_up {
                            return Err(ClientFailure::Failing {
                                errors: failed,
                                ok,
                                last: e.to_string(),
                            });
                        }
                    }
                }
            }
            record(&mut self.hist, &self.sent, run);
            self.sent.drop_answered();
        }
        self.answers = answers;
        Ok(())
    }
}

/// Whether a load's `n`-th operation (from 1) is a get, at `percent`% gets: exactly that
/// share of every 100, spread evenly among the puts.
fn is_read(n: u64, percent: u64) -> bool {
    n * percent / 100 != (n - 1) * percent / 100
}

/// A cluster of `servers` replicas that has elected a leader and committed: one blocking
/// request returns once it has.
fn started<R: Replica<Cmd<Kv>>>(servers: usize) -> Result<Cluster<R, Kv>, BenchError> {
    started_with(servers, RuntimeConfig::default())
}

/// [`started`], with `cfg`.
fn started_with<R: Replica<Cmd<Kv>>>(
    servers: usize,
    cfg: RuntimeConfig,
) -> Result<Cluster<R, Kv>, BenchError> {
    let mut cluster: Cluster<R, Kv> = Cluster::new(servers, cfg)?;
    let mut probe = cluster.client(ClientConfig::default());
    probe
        .submit(KvOp::Put(0, Vec::new()))
        .map_err(|e| BenchError::NoFirstCommit {
            protocol: R::NAME,
            reason: e.to_string(),
        })?;
    Ok(cluster)
}

/// A running cluster under closed-loop load.
pub struct Load<R: Replica<Cmd<Kv>>> {
    cfg: LoadConfig,
    drivers: Drivers<R>,
    /// Each server thread's id and CPU time at the start or the last reset.
    servers_cpu_from: Vec<crate::cpu::ThreadCpu>,
    /// The servers' highest term at the start or the last reset ([`BenchPoint::elections`]).
    term_from: u64,
    // Dropped after the clients (field order): shutting down joins the replica threads.
    cluster: Cluster<R, Kv>,
}

/// Clients driven in parallel, and the time they have been driven.
struct Drivers<R: Replica<Cmd<Kv>>, C: BorrowMut<Client<R, Kv>> = Client<R, Kv>> {
    clients: Vec<Driven<R, C>>,
    pool: rayon::ThreadPool,
    payload: Vec<u8>,
    busy: Duration,
}

impl<R: Replica<Cmd<Kv>>> std::fmt::Debug for Load<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Load({:?}, {} ops so far)", self.cfg, self.ops())
    }
}

impl<R: Replica<Cmd<Kv>>> Load<R> {
    /// Start the cluster, wait until it commits, and make the clients.
    pub fn start(cfg: LoadConfig) -> Result<Self, BenchError> {
        Self::start_with(cfg, ClientConfig::default())
    }

    /// [`Load::start`], with the clients' settings taken from `client` (its
    /// `max_outstanding` and `read_from` are set per client from `cfg`).
    pub fn start_with(cfg: LoadConfig, client: ClientConfig) -> Result<Self, BenchError> {
        cfg.validate()?;
        let path = cfg.reads.path;
        if path != ReadPath::Log && !R::READS {
            return Err(BenchError::NoReadPath {
                protocol: R::NAME,
                path: path.name(),
            });
        }
        let mut runtime = path.runtime();
        runtime.protocol.snapshots = cfg.snapshots;
        let mut cluster = started_with::<R>(cfg.servers, runtime)?;
        let k = cfg.client_count();
        let clients = (0..k)
            .map(|i| {
                let window = cfg.outstanding / k + usize::from(i < cfg.outstanding % k);
                // Follower reads: each client reads from its own node, spreading the reads.
                let read_from = (path == ReadPath::FollowerReads)
                    .then(|| NodeId((i % cfg.servers.max(1)) as u8));
                let c = cluster.client(ClientConfig {
                    max_outstanding: window,
                    read_from,
                    ..client.clone()
                });
                Driven::new(c, window, i, cfg.reads.percent)
            })
            .collect();
        Ok(Load {
            drivers: Drivers::new(clients, cfg.payload_bytes)?,
            servers_cpu_from: cluster.node_cpu(),
            term_from: highest_term(&cluster),
            cfg,
            cluster,
        })
    }

    /// Complete `ops` operations over all clients in parallel; how long it took. Requests
    /// answered with an error are not operations: they are counted ([`Load::errors`]) and
    /// replaced, so the time is that of `ops` successes (see `Driven::drive`).
    pub fn run(&mut self, ops: u64) -> Result<Duration, BenchError> {
        let took = self.drivers.run(ops, R::NAME)?;
        if let Some((id, what)) = self.cluster.panics().into_iter().next() {
            return Err(BenchError::ReplicaPanicked {
                protocol: R::NAME,
                id,
                what,
            });
        }
        Ok(took)
    }

    /// Everything measured since the start (or the last [`Load::reset`]).
    pub fn point(&self) -> BenchPoint {
        let mut point =
            self.drivers
                .point(R::NAME, &self.cfg, crate::results::Transport::InProcess);
        point.cpu = self.cpu_use(point.ops);
        // Saturating: with every server down there is no term to read (0).
        point.elections = Some(highest_term(&self.cluster).saturating_sub(self.term_from));
        point
    }

    /// CPU time per operation since the start or the last reset, over `ops` operations.
    fn cpu_use(&self, ops: u64) -> Option<CpuUse> {
        CpuUse::over(
            self.drivers.cpu(),
            &self.servers_cpu_from,
            &self.cluster.node_cpu(),
            ops,
            self.cluster.leader(),
        )
    }

    /// Each server's status now (`None` while it is down).
    pub fn statuses(&self) -> Vec<Option<paxraft_impls::Status>> {
        (0..self.cfg.servers)
            .map(|i| self.cluster.status(i))
            .collect()
    }

    /// Requests that ended in an error (timeouts) since the start or the last reset.
    pub fn errors(&self) -> u64 {
        self.drivers.errors()
    }

    /// Operations completed successfully since the start or the last reset.
    pub fn ops(&self) -> u64 {
        self.drivers.ops()
    }

    /// Forget what was measured (after a warm-up).
    pub fn reset(&mut self) {
        self.drivers.reset();
        self.servers_cpu_from = self.cluster.node_cpu();
        self.term_from = highest_term(&self.cluster);
    }
}

/// The highest term (or ballot round) any running server of `cluster` has reached.
fn highest_term<R: Replica<Cmd<Kv>>>(cluster: &Cluster<R, Kv>) -> u64 {
    (0..cluster.members().len())
        .filter_map(|i| cluster.status(i))
        .map(|s| s.term)
        .max()
        .unwrap_or(0)
}

impl<R: Replica<Cmd<Kv>>, C: BorrowMut<Client<R, Kv>>> Driven<R, C> {
    /// Client number `i`, keeping `window` requests outstanding, `read_percent`% gets.
    fn new(client: C, window: usize, i: usize, read_percent: u8) -> Self {
        Driven {
            client,
            replica: PhantomData,
            window,
            sent: SentBatches::default(),
            answers: Vec::with_capacity(window),
            hist: histogram(),
            key: i as u64 * 7,
            errors: 0,
            done: 0,
            read_percent: u64::from(read_percent),
            issued: 0,
            cpu: Some(Duration::ZERO),
        }
    }
}

impl<R: Replica<Cmd<Kv>>, C: BorrowMut<Client<R, Kv>> + Send> Drivers<R, C> {
    /// A rayon thread per client, each sending `payload_bytes`-byte puts.
    fn new(clients: Vec<Driven<R, C>>, payload_bytes: usize) -> Result<Self, BenchError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(clients.len())
            .thread_name(|i| format!("bench-client-{i}"))
            .build()?;
        Ok(Drivers {
            clients,
            pool,
            payload: vec![0xab; payload_bytes],
            busy: Duration::ZERO,
        })
    }

    /// Complete `ops` operations over all clients in parallel (`protocol`'s); how long it
    /// took.
    fn run(&mut self, ops: u64, protocol: &'static str) -> Result<Duration, BenchError> {
        let k = self.clients.len() as u64;
        let payload = &self.payload;
        let failure: Mutex<Option<ClientFailure>> = Mutex::new(None);
        let start = Instant::now();
        self.pool.scope(|s| {
            for (i, c) in self.clients.iter_mut().enumerate() {
                let n = ops / k + u64::from((i as u64) < ops % k);
                let failure = &failure;
                if n > 0 {
                    s.spawn(move |_| {
                        // Charged to this client: the pool's thread may have driven another
                        // one before, and idles between calls.
                        let from = crate::cpu::this_thread();
                        let result = c.drive(n, payload);
                        let used = crate::cpu::this_thread_since(from);
                        c.cpu = c.cpu.zip(used).map(|(total, used)| total + used);
                        if let Err(e) = result {
                            *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        }
                    });
                }
            }
        });
        let took = start.elapsed();
        // Counted even when the round failed: its successes are in the clients' counts.
        self.busy += took;
        if let Some(failure) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(BenchError::Client { protocol, failure });
        }
        Ok(took)
    }

    /// Everything measured since the start (or the last reset), as `protocol`'s point.
    fn point(
        &self,
        protocol: &str,
        cfg: &LoadConfig,
        transport: crate::results::Transport,
    ) -> BenchPoint {
        let mut hist = histogram();
        for c in &self.clients {
            hist.add(&c.hist).expect("histograms with equal bounds add");
        }
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        let ops = self.ops();
        BenchPoint {
            protocol: protocol.to_string(),
            servers: cfg.servers,
            outstanding: cfg.outstanding,
            payload_bytes: cfg.payload_bytes,
            ops_per_sec: if self.busy > Duration::ZERO {
                ops as f64 / self.busy.as_secs_f64()
            } else {
                0.0
            },
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            ops,
            errors: self.errors(),
            transport,
            provenance: Some(crate::results::Provenance::now()),
            snapshot_every: cfg.snapshots.map(|p| p.every),
            // The servers' share and their terms are known only to a load that runs them
            // ([`Load::point`]).
            cpu: None,
            elections: None,
        }
    }

    /// The client threads' CPU time while driving, since the last reset (`None` if a
    /// thread's clock could not be read).
    fn cpu(&self) -> Option<Duration> {
        self.clients.iter().map(|c| c.cpu).sum()
    }

    fn errors(&self) -> u64 {
        self.clients.iter().map(|c| c.errors).sum()
    }

    fn ops(&self) -> u64 {
        self.clients.iter().map(|c| c.done).sum()
    }

    fn reset(&mut self) {
        for c in &mut self.clients {
            c.hist.reset();
            c.errors = 0;
            c.done = 0;
            c.cpu = Some(Duration::ZERO);
        }
        self.busy = Duration::ZERO;
    }
}

/// A [`Load`] of any protocol, chosen at run time.
pub trait AnyLoad: Send {
    /// See [`Load::run`].
    fn run(&mut self, ops: u64) -> Result<Duration, BenchError>;
    /// See [`Load::point`].
    fn point(&self) -> BenchPoint;
    /// See [`Load::errors`].
    fn errors(&self) -> u64;
    /// See [`Load::reset`].
    fn reset(&mut self);
}

impl<R: Replica<Cmd<Kv>>> AnyLoad for Load<R> {
    fn run(&mut self, ops: u64) -> Result<Duration, BenchError> {
        Load::run(self, ops)
    }
    fn point(&self) -> BenchPoint {
        Load::point(self)
    }
    fn errors(&self) -> u64 {
        Load::errors(self)
    }
    fn reset(&mut self) {
        Load::reset(self)
    }
}

/// Start a load of `cfg.protocol`.
pub fn start(cfg: LoadConfig) -> Result<Box<dyn AnyLoad>, BenchError> {
    struct Start(LoadConfig);
    impl ProtocolVisitor for Start {
        type Output = Result<Box<dyn AnyLoad>, BenchError>;
        fn visit<R: Hosted>(self) -> Self::Output {
            Ok(Box::new(Load::<R>::start(self.0)?))
        }
    }
    with_protocol(cfg.protocol, Start(cfg))
}

/// Tells criterion's warm-up calls of an `iter_custom` routine from its measured ones, so
/// that a [`Load`] driven by criterion saves only what criterion measured.
///
/// Criterion (0.8, `Routine::warm_up`) warms up with calls of 1, 2, 4, ... iterations until
/// the warm-up time has passed, then (in `SamplingMode::Flat`, which the benches use) makes
/// `sample_size` calls of one equal iteration count. The first call that breaks the doubling
/// is the first measured one. Should the measured count be exactly the next power of two,
/// its first sample passes for warm-up: the point then holds one sample fewer, never a
/// warm-up one.
#[derive(Debug, Default)]
pub struct CriterionPhases {
    calls: u32,
    measuring: bool,
}

impl CriterionPhases {
    /// Note a call of `iters` iterations before it runs: true exactly once, on the first
    /// measured call (reset the load's counts then: [`Load::reset`]).
    pub fn starts_measuring(&mut self, iters: u64) -> bool {
        if self.measuring {
            return false;
        }
        let warm_up = self.calls < 64 && iters == 1u64 << self.calls;
        self.calls += 1;
        self.measuring = !warm_up;
        self.measuring
    }

    /// Whether a measured call was seen: not in criterion's `--test` run (one call of one
    /// iteration), nor in its `--quick` mode (doubling calls only), whose counts are then
    /// all warm-up and must not be saved.
    pub fn measured(&self) -> bool {
        self.measuring
    }
}

/// Run `load` for about `time` (after `warm_up`, not measured) in rounds of operations sized
/// from the rate seen so far; returns the point measured.
pub fn measure_for(
    load: &mut dyn AnyLoad,
    warm_up: Duration,
    time: Duration,
) -> Result<BenchPoint, BenchError> {
    let mut round = 64u64;
    for phase in [warm_up, time] {
        let until = Instant::now() + phase;
        while Instant::now() < until {
            let took = load.run(round)?;
            // Aim for rounds of ~50 ms: long enough to amortise the pipeline fill.
            let rate = round as f64 / took.as_secs_f64().max(1e-6);
            round = ((rate * 0.05) as u64).clamp(16, 1 << 22);
        }
        if phase == warm_up {
            load.reset();
        }
    }
    Ok(load.point())
}

/// The tour's short throughput comparison: every protocol, 3 servers, empty commands, at each
/// of the `outstanding` levels, `per_point` each (plus a fifth of it to warm up); the
/// unreplicated ceiling on 1 server, and at the top level also as the serving node of 3
/// ([`compare_points`] points in all). `progress(done, total)` is called after each point. With `save_to`, the points are merged
/// into that report directory's `data/bench.json`, where they do not replace longer
/// measurements of the same point saved by `cargo bench`.
pub fn compare(
    outstanding: &[usize],
    per_point: Duration,
    save_to: Option<&Path>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<BenchPoint>, BenchError> {
    let top = outstanding.iter().copied().max().unwrap_or(0);
    let mut configs = Vec::new();
    for protocol in Protocol::ALL {
        for &outstanding in outstanding {
            // The ceiling alone on 1 server at every load; as the serving node of 3 (the
            // replicated clusters' thread count) at the top load only, to keep the tour short.
            let sizes: &[usize] = match protocol {
                Protocol::Unreplicated if outstanding == top => &[1, 3],
                Protocol::Unreplicated => &[1],
                _ => &[3],
            };
            for &servers in sizes {
                configs.push(LoadConfig::writes(protocol, servers, outstanding, 0));
            }
        }
    }
    let mut points = Vec::new();
    for (i, cfg) in configs.iter().enumerate() {
        let mut load = start(cfg.clone())?;
        points.push(measure_for(load.as_mut(), per_point / 5, per_point)?);
        progress(i + 1, configs.len());
    }
    if let Some(dir) = save_to {
        Results::merge_bench_short(dir, &points).map_err(|source| BenchError::Save {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(points)
}

/// Measure every load of `configs` once per round, one after another, for `rounds` rounds
/// (`per_point` each on a fresh cluster, after a fifth of it to warm up), the order turned by
/// one load each round so that none is always first: `points[load][round]`. On a shared
/// machine two points measured minutes apart meet different machines; a ratio of two loads
/// of the same round does not depend on when the round ran. `progress(done, total)` after
/// each point.
pub fn side_by_side_rounds(
    configs: &[LoadConfig],
    per_point: Duration,
    rounds: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Vec<BenchPoint>>, BenchError> {
    let n = configs.len();
    let mut points: Vec<Vec<BenchPoint>> = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let mut load = start(configs[i].clone())?;
            points[i].push(measure_for(load.as_mut(), per_point / 5, per_point)?);
            progress(round * n + k + 1, rounds * n);
        }
    }
    Ok(points)
}

/// Raft and multi-Paxos on 3 servers against the unreplicated ceiling, alone and as the
/// serving node of 3, all at `outstanding` requests with empty commands, side by side
/// ([`side_by_side_rounds`]): one [`CeilingRatio`] per protocol.
pub fn ceiling_side_by_side(
    outstanding: usize,
    per_point: Duration,
    rounds: usize,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<CeilingRatio>, BenchError> {
    let mut configs: Vec<LoadConfig> = Protocol::REPLICATED
        .iter()
        .map(|&p| LoadConfig::writes(p, 3, outstanding, 0))
        .collect();
    let k = configs.len();
    configs.push(LoadConfig::writes(
        Protocol::Unreplicated,
        1,
        outstanding,
        0,
    ));
    configs.push(LoadConfig::writes(
        Protocol::Unreplicated,
        3,
        outstanding,
        0,
    ));
    let points = side_by_side_rounds(&configs, per_point, rounds, progress)?;
    let (alone, of_n) = (&points[k], &points[k + 1]);
    Ok(Protocol::REPLICATED
        .iter()
        .zip(&points)
        .map(|(protocol, ps)| CeilingRatio {
            protocol: protocol.name().to_string(),
            servers: 3,
            outstanding,
            rounds: (0..rounds)
                .map(|r| [ps[r].ops_per_sec, alone[r].ops_per_sec, of_n[r].ops_per_sec])
                .collect(),
            cpu: (0..rounds)
                .map(|r| [ps[r].cpu.clone(), alone[r].cpu.clone(), of_n[r].cpu.clone()])
                .collect(),
            errors: ps.iter().chain(alone).chain(of_n).map(|p| p.errors).sum(),
            elections: ps
                .iter()
                .chain(alone)
                .chain(of_n)
                .filter_map(|p| p.elections)
                .sum(),
            provenance: Some(crate::results::Provenance::now()),
        })
        .collect())
}

/// How many points [`compare`] measures for `levels` outstanding-request levels.
pub fn compare_points(levels: usize) -> usize {
    if levels == 0 {
        0
    } else {
        Protocol::ALL.len() * levels + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(protocol: Protocol, servers: usize, outstanding: usize) -> LoadConfig {
        LoadConfig::writes(protocol, servers, outstanding, 8)
    }

    #[test]
    fn a_load_completes_exactly_the_operations_asked_and_records_each_latency() {
        let mut load = start(cfg(Protocol::Unreplicated, 1, 64)).unwrap();
        load.run(1000).unwrap();
        load.run(37).unwrap();
        let p = load.point();
        assert_eq!((p.protocol.as_str(), p.ops), ("unreplicated", 1037));
        assert!(p.ops_per_sec > 0.0 && p.p50_us > 0.0, "{p:?}");
        assert!(p.p50_us <= p.p99_us && p.p99_us <= p.p999_us, "{p:?}");
        assert_eq!(load.errors(), 0);
        load.reset();
        assert_eq!(load.point().ops, 0);
    }

    /// Criterion's call pattern (warm-up 1, 2, 4, 8, then ten samples of 37): the reset
    /// comes on the first sample, once; a sample count equal to the next power of two (16)
    /// is recognised one sample late, never early; a `--test` run is never measured.
    #[test]
    fn criterion_phases_start_measuring_on_the_first_call_that_breaks_the_doubling() {
        let resets = |calls: &[u64]| {
            let mut p = CriterionPhases::default();
            let at: Vec<usize> = (0..calls.len())
                .filter(|&i| p.starts_measuring(calls[i]))
                .collect();
            (at, p.measured())
        };
        assert_eq!(resets(&[1, 2, 4, 8, 37, 37, 37, 37]), (vec![4], true));
        assert_eq!(resets(&[1, 2, 4, 8, 16, 16, 16]), (vec![5], true));
        assert_eq!(resets(&[1, 5, 5]), (vec![1], true));
        assert_eq!(resets(&[1]), (vec![], false));
    }

    /// A request that times out is an error, not an operation: with the serving node down,
    /// every request of the round times out, the round gives up, and the point counts the
    /// operations completed before (exactly) and the errors apart.
    #[test]
    fn timed_out_requests_are_counted_as_errors_not_operations() {
        let client = ClientConfig {
            timeout: Duration::from_millis(60),
            retry_after: Duration::from_millis(20),
            ..ClientConfig::default()
        };
        let mut load = Load::<paxraft_impls::unreplicated::Unreplicated>::start_with(
            cfg(Protocol::Unreplicated, 3, 8),
            client,
        )
        .unwrap();
        load.run(300).unwrap();
        load.cluster.crash(0);
        let e = load.run(40).unwrap_err().to_string();
        assert!(e.contains("timed out") && e.contains("giving up"), "{e}");
        let p = load.point();
        assert_eq!(p.ops, 300, "{p:?}");
        assert!(p.errors > 0 && p.errors == load.errors(), "{p:?}");
        // The node that went down has no share of the CPU; its idle peers have theirs.
        let cpu = p
            .cpu
            .as_ref()
            .expect("an in-process point measures its CPU");
        assert!(
            cpu.servers_ns[0].is_none() && cpu.total_ns().is_none(),
            "{cpu:?}"
        );
        assert!(cpu.servers_ns[1..].iter().all(Option::is_some), "{cpu:?}");
        // Rates and latencies are of the successes only.
        assert!(p.p999_us < 60_000.0, "{p:?}");
        load.reset();
        assert_eq!((load.point().ops, load.point().errors), (0, 0));
    }

    /// A point counts the elections held while it was measured, from the last reset on: none
    /// right after a reset, at least one over a leader's crash.
    #[test]
    fn a_point_counts_the_elections_it_measured() {
        let mut load =
            Load::<paxraft_impls::raft::Raft<Cmd<Kv>>>::start(cfg(Protocol::Raft, 3, 8)).unwrap();
        load.run(200).unwrap();
        load.reset();
        assert_eq!(load.point().elections, Some(0));
        let leader = load.cluster.leader().expect("a leader after 200 commits");
        load.cluster.crash(leader);
        load.run(200).unwrap();
        let p = load.point();
        assert!(p.elections >= Some(1), "{p:?}");
        load.reset();
        assert_eq!(load.point().elections, Some(0));
    }

    #[test]
    fn raft_under_load_commits_through_the_same_driver() {
        let mut load = start(cfg(Protocol::Raft, 3, 16)).unwrap();
        load.run(500).unwrap();
        let p = load.point();
        assert_eq!(p.ops, 500);
        // Every thread did work for these operations: the clients, the leader, and each
        // follower (which stores and applies every one of them).
        let cpu = p.cpu.expect("an in-process point measures its CPU");
        assert_eq!(cpu.servers_ns.len(), 3, "{cpu:?}");
        assert!(cpu.clients_ns > 0.0, "{cpu:?}");
        let (leader, follower) = (cpu.leader_ns(), cpu.follower_ns());
        assert!(leader > Some(0.0) && follower > Some(0.0), "{cpu:?}");
        let parts = cpu.clients_ns + leader.unwrap() + 2.0 * follower.unwrap();
        let total = cpu.total_ns().expect("every thread measured");
        assert!((total - parts).abs() <= 1e-9 * total, "{cpu:?}");
    }

    #[test]
    fn bad_load_configs_are_refused_with_a_reason() {
        for (c, needle) in [
            (cfg(Protocol::Raft, 3, 0), "at least 1"),
            (
                LoadConfig {
                    snapshots: None,
                    clients: 9,
                    ..cfg(Protocol::Raft, 3, 4)
                },
                "cannot share",
            ),
            (cfg(Protocol::Raft, 0, 4), "cluster size"),
        ] {
            let e = start(c).err().expect("refused").to_string();
            assert!(e.contains(needle), "{e}");
        }
        let e = recovery_of(
            Protocol::Raft,
            &RecoveryConfig {
                servers: 1,
                ..RecoveryConfig::default()
            },
        );
        assert!(e.unwrap_err().to_string().contains("at least 3 servers"));
    }

    #[test]
    fn the_ceiling_side_by_side_measures_each_protocol_and_both_ceilings_every_round() {
        let mut calls = Vec::new();
        let ratios =
            ceiling_side_by_side(8, Duration::from_millis(40), 2, |d, t| calls.push((d, t)))
                .unwrap();
        assert_eq!(calls, (1..=8).map(|d| (d, 8)).collect::<Vec<_>>());
        let names: Vec<&str> = ratios.iter().map(|r| r.protocol.as_str()).collect();
        assert_eq!(names, ["raft", "multipaxos"]);
        for r in &ratios {
            assert_eq!((r.servers, r.outstanding, r.rounds.len()), (3, 8, 2));
            assert!(r.rounds.iter().flatten().all(|&ops| ops > 0.0), "{r:?}");
            // Each point's CPU use, beside its throughput.
            assert_eq!(r.cpu.len(), 2, "{r:?}");
            assert!(r.cpu.iter().flatten().all(|c| c.is_some()), "{r:?}");
        }
        // Both protocols are divided by the same ceiling measurements of each round.
        let ceilings = |r: &CeilingRatio| r.rounds.iter().map(|x| [x[1], x[2]]).collect::<Vec<_>>();
        assert_eq!(ceilings(&ratios[0]), ceilings(&ratios[1]));
    }

    /// The transfer timeline hands the leadership to another node under load (not crashed:
    /// the old leader keeps serving as a follower) and the cluster serves on; transfers and
    /// idle commits are each timed once per request.
    #[test]
    fn a_transfer_timeline_moves_the_leader_and_the_cluster_serves_on() {
        for protocol in Protocol::REPLICATED {
            let cfg = RecoveryConfig {
                event: crate::results::Disruption::Transfer,
                crash_at: Duration::from_millis(150),
                run_for: Duration::from_millis(400),
                ..RecoveryConfig::default()
            };
            let r = recovery_of(protocol, &cfg).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.event, crate::results::Disruption::Transfer);
            assert!(r.time_to_first_commit_ms > 0.0, "{r:?}");
            let after: f64 = r
                .samples
                .iter()
                .filter(|(t, _)| *t > r.crash_at_ms + r.time_to_first_commit_ms + 20.0)
                .map(|s| s.1)
                .sum();
            assert!(
                after > 0.0,
                "{}: nothing served after the transfer",
                r.protocol
            );
            assert_eq!(
                time_transfers(protocol, 3, 4).map(|t| t.len()).ok(),
                Some(4)
            );
            assert_eq!(
                time_idle_commits(protocol, 3, 4).map(|t| t.len()).ok(),
                Some(4)
            );
        }
    }
}
