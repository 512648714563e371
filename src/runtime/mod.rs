//! The threaded runtime: a live cluster of any [`Replica`] protocol, with clients.
//!
//! * Each replica runs on its own thread with a [`Mailbox`] (peer messages and client
//!   proposals) and a timer heap. Each wake-up drains the whole mailbox: messages are stepped
//!   in order, then *every* pending proposal goes to the replica in one `propose` call (one
//!   append/accept per batch). Effects are carried out in order; all durable writes of the
//!   batch are synced before any of its sends leave (the persist-before-send rule, with group
//!   commit), sends to each peer are coalesced into one push.
//! * Every node applies committed commands to its own [`Sessions`](paxraft_impls::sm::Sessions)
//!   state machine (exactly-once by `(client, seq)`); the node that received a proposal answers
//!   its client, after the sync.
//! * Reads without the log: with [`Config::reads`] other than [`ReadMode::Log`](paxraft_impls::ReadMode::Log) and a protocol
//!   that has a read path ([`Replica::READS`]), a client's read-only request
//!   ([`StateMachine::is_read_only`]) is not proposed: the node hands every read of a drain to
//!   the replica in one [`Replica::read`] call and answers each from its own state machine
//!   ([`StateMachine::query`]) once the replica made it ready at a slot the state machine has
//!   applied ([`Effect::ReadReady`](paxraft_impls::Effect::ReadReady)); a read handed back
//!   ([`Effect::ReadRedirect`](paxraft_impls::Effect::ReadRedirect)) gets the redirect a
//!   proposal gets. With [`Config::follower_reads`] a follower serves reads itself; a client
//!   sends its reads to a chosen node with [`ClientConfig::read_from`]. Otherwise reads are
//!   commands like any other, through the log.
//! * Clients ([`Client`]) keep many requests outstanding, follow redirects, resend on silence,
//!   and give every request an answer or an error within its timeout.
//! * Faults at run time: [`Cluster::crash`], [`Cluster::crash_after`], [`Cluster::crash_at`],
//!   [`Cluster::restart`], [`Cluster::partition`], [`Cluster::heal`]. A panicking replica
//!   thread is contained and reported ([`Cluster::panics`]). [`Cluster::shutdown`] (also on
//!   drop) joins every thread.
//! * Membership: [`RuntimeConfig::voters`] boots the first nodes as the initial configuration
//!   and the rest as spares, running outside it until a change adds them;
//!   [`Cluster::change`] asks the leader for a change ([`Input::Change`], [`Replica::change`])
//!   and waits for the configuration it committed (see below).
//!
//! # Membership changes
//!
//! A change request travels like a proposal: into a node's mailbox with a completion slot
//! ([`ChangeBox`]), to the replica, and back as [`Effect::ChangeDone`](paxraft_impls::Effect::ChangeDone),
//! sent after the step's sync. Every request gets exactly one [`ChangeReply`]: the replica's
//! answer (rule 9 of the effect contract), or [`ChangeReply::Down`] when its node went down
//! first, whether the request was still queued (the closer answers it) or held by the
//! replica (the node's thread answers it as it dies). [`Cluster::change`] turns that into a
//! call that finds the leader and retries what may pass, within a timeout.
//!
//! The configuration itself lives in the replicas (for Raft, in log entries and snapshots),
//! so a node restarted from its storage comes back in it; [`Status::config`](paxraft_impls::Status)
//! shows it. Nodes outside it keep running: a spare waits to be added, a removed node that
//! knows it was removed never campaigns (one that missed its removal may try a pre-vote,
//! which the others refuse). Clients know nothing of configurations: a node outside it
//! hands requests back like any follower, and the client tries the next node.
//!
//! # Crashes
//!
//! A crash can hit a node between any two things it does: every node checks its kill switch
//! at each [`CrashPoint`] (before each effect, before the group sync, before each peer's push,
//! before answering clients) and, when it fires, stops there: no sync, no further sends, no
//! answers. Its storage is then told ([`Storage::crash`]) and may lose what was not synced
//! ([`LossyStorage`] does). A panicking node goes the same way. The check is one relaxed
//! atomic load; the switch is armed by [`Cluster::crash`] (at the next point) or, to target
//! points deterministically, [`Cluster::crash_after`] / [`Cluster::crash_at`].
//!
//! Nothing of a node survives a crash in memory: a (re)booted node starts with an empty state
//! machine and sessions, and rebuilds them from its durable log alone, as the replica reports
//! the committed slots again from slot 1 once it learns the commit point (both protocols boot
//! with commit index 0; the effect contract, rule 2). The observers [`Cluster::applied`],
//! [`Cluster::state`] and [`Cluster::first_applied`] show the current incarnation's state
//! (while a node is down: what it held when it went down).
//!
//! # Bounds
//!
//! Every queue is bounded, and what happens at the bound is defined:
//!
//! * a node's mailbox holds [`NODE_MAILBOX`] inputs: beyond it peer messages are dropped (the
//!   protocols tolerate a lossy network) and client proposals are refused back to the client,
//!   which tries the next node after a 2 ms back-off;
//! * a client keeps at most [`ClientConfig::max_outstanding`] requests outstanding or
//!   answered-but-not-polled: [`Client::send`] returns [`Error::Busy`] beyond it;
//! * a leader holds at most [`Config::max_uncommitted`] commands it has not committed: a
//!   proposal beyond it is refused ([`Effect::Busy`](paxraft_impls::Effect::Busy)) and its
//!   client's request fails with [`Error::Overloaded`], so a leader that cannot commit (a
//!   lost quorum, a lagging disk) pushes back on its clients instead of growing its log;
//! * a client's reply mailbox holds `4 * max_outstanding + 64` replies: a node whose answers
//!   do not fit drops them, and the client's resend is answered from the session;
//! * a node's [`Pending`] holds, per client, the requests it was handed and has not answered,
//!   swept of stale ones below the client's acknowledged point (see [`batcher`]);
//! * a node has at most [`READS_IN_FLIGHT`] reads outstanding at its replica; beyond that a
//!   read goes through the log like a write (see [`reads`]);
//! * the timer heap is compacted when stale entries pile up.
//!
//! Bounded only with snapshots ([`Config::snapshots`]; [`DEFAULT_SNAPSHOTS`] in
//! [`RuntimeConfig::default`], `paxraft run` and the in-process benchmarks): the replicated
//! log, and so [`MemStorage`], which keeps what the log holds. Without them both grow for as
//! long as the cluster commits, and under an allocator that grows a large block by copying
//! it (mimalloc does) each doubling of a log's vector copies it whole: at tens of thousands of
//! entries longer than the 20 ms election timeout, which elected a new leader under load with
//! no fault (stop 45). The `paxraft` binaries map large blocks and grow them without a copy
//! ([`alloc`](mod@crate::alloc)), as glibc's malloc does. A
//! [`LossyStorage`] holds one batch's writes between two syncs.
//!
//! # Performance notes
//!
//! Measured with `paxraft run` (see the README): the hot path allocates per batch, not per
//! request (per-client pending lists, an O(1) client window indexed by sequence number,
//! [`Client::poll_many`], answers pushed with [`Mailbox::push_from`] into reused buffers), and
//! [`MemStorage`] takes writes by move. Idle mailboxes are polled for [`NODE_SPIN`] /
//! [`CLIENT_SPIN`] before their thread blocks, which saves a futex wake-up per hop.
#![warn(missing_docs)]

pub mod batcher;
pub mod client;
mod cluster;
mod crash;
pub mod local;
pub mod mailbox;
mod node;
pub mod reads;
pub mod storage;
pub mod sync;
pub(crate) mod window;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use sync::Arc;

use paxraft_impls::sm::{Request, SessionError, StateMachine};
use paxraft_impls::{Change, ChangeError, Config, Membership, NodeId, Replica};

pub use batcher::Pending;
pub use client::{Client, ClientConfig, Error};
pub use cluster::{ChangeFailure, Cluster, StartError};
pub use crash::CrashPoint;
pub use mailbox::{Drained, Mailbox, Refusal, Refused};
#[cfg(not(loom))]
pub use mailbox::{Sink, Source};
pub use node::fail_inputs;
pub use storage::{FileStorage, LossyStorage, MemStorage, Storage};

/// The command replicas carry: a client request for state machine `S`.
pub type Cmd<S> = Request<<S as StateMachine>::Op>;

/// What a client hears back about one request. Serialisable as it is: a network client
/// receives these in frames (`net::frame`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub enum Reply<S: StateMachine> {
    /// The request was applied (or found applied) with this result.
    Done {
        /// The request's sequence number.
        seq: u64,
        /// Its result, or why the session refused it.
        out: Result<S::Output, SessionError>,
    },
    /// The node cannot take it; try `leader` (a hint).
    Redirect {
        /// The request's sequence number.
        seq: u64,
        /// The node believed to lead, if any.
        leader: Option<NodeId>,
    },
    /// The node leads but holds [`Config::max_uncommitted`] commands it has not committed,
    /// and refused this one ([`Effect::Busy`](paxraft_impls::Effect::Busy)): not appended.
    Busy {
        /// The request's sequence number.
        seq: u64,
    },
    /// The node went down (crash or shutdown) before answering; try elsewhere.
    Retry {
        /// The request's sequence number.
        seq: u64,
    },
    /// A read index the client asked for ([`Input::ReadTicket`]) is confirmed and applied:
    /// the reads it parked may now pass their node's local reader ([`local`]).
    Confirmed,
    /// The node will not confirm the reads the client parked with it (not the leader, or
    /// going down): send them as requests, to `leader` (a hint) if known.
    Unconfirmed {
        /// The node the reads were parked with.
        node: NodeId,
        /// The node believed to lead, if any.
        leader: Option<NodeId>,
    },
}

impl<S: StateMachine> Reply<S> {
    /// The sequence number of the request answered (`None`: a reply about parked reads).
    pub fn seq(&self) -> Option<u64> {
        match self {
            Reply::Done { seq, .. }
            | Reply::Redirect { seq, .. }
            | Reply::Busy { seq }
            | Reply::Retry { seq } => Some(*seq),
            Reply::Confirmed | Reply::Unconfirmed { .. } => None,
        }
    }
}

/// A client's reply mailbox.
pub type ReplyBox<S> = Arc<Mailbox<Reply<S>>>;

/// What the caller of a change request hears back: exactly one of these per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeReply {
    /// The replica's answer ([`Effect::ChangeDone`](paxraft_impls::Effect::ChangeDone)):
    /// the committed configuration, or why not.
    Done(Result<Membership, ChangeError>),
    /// The node went down (crash, shutdown, panic) before its replica answered: the change
    /// may or may not take effect, as after [`ChangeError::Interrupted`].
    Down,
}

/// Where a change request's one answer goes (a mailbox of one, like a client's completion
/// slots).
pub type ChangeBox = Arc<Mailbox<ChangeReply>>;

/// What a replica thread receives.
pub enum Input<R: Replica<Cmd<S>>, S: StateMachine> {
    /// A message from a peer.
    Msg {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: R::Msg,
    },
    /// Client requests, answered through the reply box.
    Propose {
        /// The requests, in the client's order.
        reqs: Vec<Cmd<S>>,
        /// Where their answers go.
        reply: ReplyBox<S>,
    },
    /// Client `client` parked reads with this node's local reader under tickets it took
    /// before sending this ([`local::LocalReader::ticket`]): confirm them with one read
    /// index, answered [`Reply::Confirmed`] or [`Reply::Unconfirmed`] through `reply`.
    ReadTicket {
        /// The client's session id.
        client: u64,
        /// The node asked (whose reader issued the tickets).
        to: NodeId,
        /// Where the answer goes.
        reply: ReplyBox<S>,
    },
    /// An operator's membership change ([`Replica::change`]), answered through `reply`.
    Change {
        /// The change.
        change: Change,
        /// Where its one answer goes.
        reply: ChangeBox,
    },
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Input<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Msg { from, msg } => write!(f, "Msg({from}, {msg:?})"),
            Input::Propose { reqs, .. } => write!(f, "Propose({} reqs)", reqs.len()),
            Input::ReadTicket { client, .. } => write!(f, "ReadTicket({client})"),
            Input::Change { change, .. } => write!(f, "Change({change})"),
        }
    }
}

/// Bound on a node mailbox: beyond it peer messages are dropped (the network is lossy) and
/// client proposals are refused (the client retries).
pub const NODE_MAILBOX: usize = 1 << 18;

/// Most reads a node has outstanding at its replica ([`Replica::read`]) at once; beyond it,
/// reads go through the log (slower, never refused). Far above what the benchmarks keep
/// outstanding (4096 requests in all).
pub const READS_IN_FLIGHT: usize = 1 << 16;

/// The snapshot policy of [`RuntimeConfig::default`], `paxraft run` and the in-process
/// benchmarks unless told otherwise:
/// a snapshot every 10,000 committed slots, so a long run's logs and memory stay bounded as a
/// deployment's would. Without it a log only grows: `run raft --clients 4 --outstanding 256
/// --ops 6000000 --read-percent 90` held 3.4 GB and ran 2.09-2.40M ops/s against 69 MB and
/// 2.70-2.71M ops/s with it (page faults of the growing logs and stores); every 100,000
/// slots cost a p99 of 3.8-4.1 ms (one compaction drops 100,000 entries at once) against
/// 1.0 ms.
pub const DEFAULT_SNAPSHOTS: paxraft_impls::SnapshotPolicy = paxraft_impls::SnapshotPolicy {
    every: 10_000,
    chunk: paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK,
};

/// How long a replica thread polls its empty mailbox (yielding) before it blocks (see
/// [`Mailbox::with_spin`]); `PAXRAFT_NODE_SPIN_US` overrides. Measured on 2 busy cores: one
/// client's p50 latency 25-40 µs without, 17-18 µs with 20 µs; longer spins gain nothing.
/// (A server's node, which also polls its connections while it spins, spins for
/// `net::inlet::READ_SPIN` instead.)
pub const NODE_SPIN: Duration = Duration::from_micros(20);

/// How long a waiting client polls its empty reply mailbox (yielding) before it blocks;
/// `PAXRAFT_CLIENT_SPIN_US` overrides. A client that blocked must be woken by the node that
/// answers it, and under ReadIndex reads, where each batch of reads waits for a round, those
/// wake-ups were a sixth of the leader's time. At 100 µs rather than 20 the servers spent
/// 56 ns per operation against 71 at 90% ReadIndex reads (1024 outstanding, medians of 6
/// interleaved runs), and the read-index ratio of `reads-side-by-side` was 2.80x and 3.04x
/// against 2.91x and 2.72x for Raft, 3.20x and 3.16x against 2.66x and 2.75x for multi-Paxos
/// (two interleaved runs each); write-only throughput and one client's p50 latency (8-11 µs)
/// did not change. The waiting clients of the log path spend the time saved at the leader
/// spinning instead.
pub const CLIENT_SPIN: Duration = Duration::from_micros(100);

/// A spin length: `var` (microseconds) from the environment if set, for tuning, else `default`.
pub fn spin_for(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, Duration::from_micros)
}

/// The network: one mailbox per node, and which directed links are cut.
///
/// In one process every mailbox is a node's own. A node served over a network
/// ([`crate::net`]) shares its process with none of its peers: its own mailbox is the one its
/// thread drains, and each peer's is an outbox that the transport drains onto that peer's
/// connection ([`Net::with_boxes`]). The node loop cannot tell the two apart.
pub struct Net<R: Replica<Cmd<S>>, S: StateMachine> {
    boxes: Vec<Arc<Mailbox<Input<R, S>>>>,
    /// Each node's state machine and its lease permission, for in-process clients' reads.
    local: Vec<std::sync::Arc<local::LocalReader<S>>>,
    cut: Vec<AtomicBool>,
    /// Peer messages a full or closed mailbox refused (a lossy network's losses).
    dropped: AtomicU64,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Net<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Net({} nodes)", self.boxes.len())
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Net<R, S> {
    /// A network over the given mailboxes, node `i`'s at index `i`, no link cut.
    pub fn with_boxes(boxes: Vec<Arc<Mailbox<Input<R, S>>>>) -> Self {
        let n = boxes.len();
        let origin = std::time::Instant::now();
        Net {
            local: (0..n)
                .map(|_| std::sync::Arc::new(local::LocalReader::new(origin)))
                .collect(),
            boxes,
            cut: (0..n * n).map(|_| AtomicBool::new(false)).collect(),
            dropped: AtomicU64::new(0),
        }
    }
    /// Node `i`'s local reader ([`local`]).
    pub fn local(&self, i: usize) -> &std::sync::Arc<local::LocalReader<S>> {
        &self.local[i]
    }
    /// Node `to`'s mailbox (for a transport: a local node's inbox, a remote one's outbox).
    pub fn mailbox(&self, to: NodeId) -> &Arc<Mailbox<Input<R, S>>> {
        &self.boxes[to.index()]
    }
    /// Peer messages refused so far by a full or closed mailbox (dropped, as a lossy network
    /// would).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }
    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }
    /// Whether every node's mailbox is closed (the cluster shut down).
    pub(crate) fn all_closed(&self) -> bool {
        self.boxes.iter().all(|b| b.is_closed())
    }
    fn linked(&self, from: usize, to: usize) -> bool {
        // Relaxed: a partition taking effect a few messages late is just network delay.
        !self.cut[from * self.boxes.len() + to].load(Ordering::Relaxed)
    }
    /// Hand client requests to node `to`; refused items come back.
    pub fn propose(
        &self,
        to: NodeId,
        reqs: Vec<Cmd<S>>,
        reply: ReplyBox<S>,
    ) -> Result<(), Vec<Cmd<S>>> {
        match self.boxes[to.index()].push(Input::Propose { reqs, reply }) {
            Ok(()) => Ok(()),
            Err(Refused::Closed(mut v) | Refused::Full(mut v)) => match v.pop() {
                Some(Input::Propose { reqs, .. }) => Err(reqs),
                _ => unreachable!("pushed one proposal"),
            },
        }
    }
    /// Ask node `to` to confirm the reads client `client` parked with its local reader
    /// ([`Input::ReadTicket`]). False, and nothing sent, when its mailbox is closed or full.
    pub fn read_ticket(&self, to: NodeId, client: u64, reply: &ReplyBox<S>) -> bool {
        let reply = Arc::clone(reply);
        self.boxes[to.index()]
            .push(Input::ReadTicket { client, to, reply })
            .is_ok()
    }
    /// Hand a change request to node `to`; its answer goes to `reply` ([`ChangeReply::Down`]
    /// if the node goes down first). False, and nothing sent, when the node's mailbox is
    /// closed (the node is down) or full.
    pub fn change(&self, to: NodeId, change: Change, reply: &ChangeBox) -> bool {
        let reply = Arc::clone(reply);
        self.boxes[to.index()]
            .push(Input::Change { change, reply })
            .is_ok()
    }
}

/// Runtime settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The protocol's configuration (timeouts, batch size, how reads are served). Default:
    /// [`fast_config`] with a snapshot every 10,000 slots ([`DEFAULT_SNAPSHOTS`]): a cluster
    /// whose log only grows holds all of it, and under a copying allocator stalls at each
    /// doubling of the log's vector (see the module docs).
    pub protocol: Config,
    /// Seed of the timer-delay RNGs, so runs can repeat their timing choices.
    pub seed: u64,
    /// How many nodes, from node 0 up, form the initial configuration (its voters); the
    /// others boot as spares, outside it, until a change adds them ([`Cluster::change`]).
    /// `None`: every node votes. Spares need a protocol that changes its membership
    /// ([`Replica::CHANGES`]).
    pub voters: Option<usize>,
    /// Client sessions expire after this many applied commands without a request of their
    /// client ([`Sessions::with_timeout`](paxraft_impls::sm::Sessions::with_timeout); 0,
    /// the default: never). Part of the replicated state machine: every replica of a
    /// cluster must use the same value, or they expire different sessions and diverge (a
    /// served cluster checks it when peers connect and when a node restarts).
    pub session_timeout: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            protocol: Config {
                snapshots: Some(DEFAULT_SNAPSHOTS),
                ..fast_config()
            },
            seed: 0x5eed,
            voters: None,
            session_timeout: 0,
        }
    }
}

/// The clock-drift bound leases in an in-process cluster assume: 10% of [`fast_config`]'s
/// shortest election timeout (20 ms, so 2 ms), far more than any machine clock drifts (ppm).
/// The lease is then 16.4 ms, more than three heartbeat intervals, renewed by the heartbeat
/// after a read used it. (It was a fixed 15 ms, set when the election timeout was 150 ms;
/// against 20 ms that left a 2.9 ms lease, shorter than the 5 ms between heartbeats, so the
/// lease lapsed between renewals and reads waited for rounds.)
pub fn lease_clock_drift() -> Duration {
    fast_config().election_timeout.start / 10
}

/// Protocol timeouts suited to an in-process cluster: elections in 20–40 ms, heartbeats 5 ms;
/// and multi-Paxos's reconfiguration window as deep as a batch. The default α (a few slots)
/// keeps model checks small, but a leader proposes no more than α slots past its commit
/// point, so it bounds the pipeline: at α = 8, 8 clients with 64 requests outstanding ran at
/// about a third of the throughput (2 cores, in-memory storage; `paxraft_impls::multipaxos::
/// reconfig`).
pub fn fast_config() -> Config {
    let d = Config::default();
    Config {
        election_timeout: Duration::from_millis(20)..Duration::from_millis(40),
        heartbeat_interval: Duration::from_millis(5),
        window: d.max_batch as u64,
        ..d
    }
}
