//! The threaded runtime: a live cluster of any [`Replica`] protocol, with clients.
//!
//! * Each replica runs on its own thread with a [`Mailbox`] (peer messages and client
//!   proposals) and a timer heap. Each wake-up drains the whole mailbox: messages are stepped
//!   in order, then *every* pending proposal goes to the replica in one `propose` call (one
//!   append/accept per batch). Effects are carried out in order; all durable writes of the
//!   batch are synced before any of its sends leave (the persist-before-send rule, with group
//!   commit), sends to each peer are coalesced into one push.
//! * Every node applies committed commands to its own [`Sessions`] state machine (exactly-once
//!   by `(client, seq)`); the node that received a proposal answers its client, after the sync.
//! * Clients ([`Client`]) keep many requests outstanding, follow redirects, resend on silence,
//!   and give every request an answer or an error within its timeout.
//! * Faults at run time: [`Cluster::crash`], [`Cluster::crash_after`], [`Cluster::crash_at`],
//!   [`Cluster::restart`], [`Cluster::partition`], [`Cluster::heal`]. A panicking replica
//!   thread is contained and reported ([`Cluster::panics`]). [`Cluster::shutdown`] (also on
//!   drop) joins every thread.
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
//! * a client's reply mailbox holds `4 * max_outstanding + 64` replies: a node whose answers
//!   do not fit drops them, and the client's resend is answered from the session;
//! * a node's [`Pending`] holds, per client, the requests it was handed and has not answered,
//!   swept of stale ones below the client's acknowledged point (see [`batcher`]);
//! * the timer heap is compacted when stale entries pile up.
//!
//! Not bounded: the replicated log itself (the protocols keep it whole; there is no
//! snapshotting yet), and so [`MemStorage`], which keeps what the log holds. A
//! [`LossyStorage`] holds one batch's writes between two syncs.
//!
//! # Performance notes
//!
//! Measured with `paxraft run` (see the README): the hot path allocates per batch, not per
//! request (per-client pending lists, an O(1) client window indexed by sequence number,
//! [`Client::poll_many`], answers pushed with [`Mailbox::push_from`] into reused buffers), and
//! [`MemStorage`] takes writes by move. Idle mailboxes are polled for [`NODE_SPIN`] /
//! [`CLIENT_SPIN`] before their thread blocks, which saves a futex wake-up per hop.

pub mod batcher;
pub mod client;
pub mod mailbox;
pub mod storage;
pub mod sync;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sync::Arc;

use paxraft_impls::sm::{Request, SessionError, Sessions, StateMachine};
use paxraft_impls::{Config, Effect, NodeId, Out, Replica, Role, Slot, Status};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use batcher::Pending;
pub use client::{Client, ClientConfig, Error};
pub use mailbox::{Drained, Mailbox, Refusal, Refused};
pub use storage::{FileStorage, LossyStorage, MemStorage, Storage};

/// The command replicas carry: a client request for state machine `S`.
pub type Cmd<S> = Request<<S as StateMachine>::Op>;

/// What a client hears back about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<S: StateMachine> {
    /// The request was applied (or found applied) with this result.
    Done {
        seq: u64,
        out: Result<S::Output, SessionError>,
    },
    /// The node cannot take it; try `leader` (a hint).
    Redirect { seq: u64, leader: Option<NodeId> },
    /// The node went down (crash or shutdown) before answering; try elsewhere.
    Retry { seq: u64 },
}

impl<S: StateMachine> Reply<S> {
    /// The sequence number of the request answered.
    pub fn seq(&self) -> u64 {
        match self {
            Reply::Done { seq, .. } | Reply::Redirect { seq, .. } | Reply::Retry { seq } => *seq,
        }
    }
}

/// A client's reply mailbox.
pub type ReplyBox<S> = Arc<Mailbox<Reply<S>>>;

/// What a replica thread receives.
pub enum Input<R: Replica<Cmd<S>>, S: StateMachine> {
    /// A message from a peer.
    Msg { from: NodeId, msg: R::Msg },
    /// Client requests, answered through the reply box.
    Propose {
        reqs: Vec<Cmd<S>>,
        reply: ReplyBox<S>,
    },
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Input<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Msg { from, msg } => write!(f, "Msg({from}, {msg:?})"),
            Input::Propose { reqs, .. } => write!(f, "Propose({} reqs)", reqs.len()),
        }
    }
}

/// Bound on a node mailbox: beyond it peer messages are dropped (the network is lossy) and
/// client proposals are refused (the client retries).
pub const NODE_MAILBOX: usize = 1 << 18;

/// How long a replica thread polls its empty mailbox (yielding) before it blocks (see
/// [`Mailbox::with_spin`]); `PAXRAFT_NODE_SPIN_US` overrides. Measured on 2 busy cores: one
/// client's p50 latency 25-40 µs without, 17-18 µs with 20 µs; longer spins gain nothing.
pub const NODE_SPIN: Duration = Duration::from_micros(20);

/// How long a waiting client polls its empty reply mailbox before it blocks;
/// `PAXRAFT_CLIENT_SPIN_US` overrides.
pub const CLIENT_SPIN: Duration = Duration::from_micros(20);

/// A spin length: `var` (microseconds) from the environment if set, for tuning, else `default`.
pub fn spin_for(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, Duration::from_micros)
}

/// The network: one mailbox per node, and which directed links are cut.
pub struct Net<R: Replica<Cmd<S>>, S: StateMachine> {
    boxes: Vec<Arc<Mailbox<Input<R, S>>>>,
    cut: Vec<AtomicBool>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Net<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Net({} nodes)", self.boxes.len())
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Net<R, S> {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }
    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }
    /// Whether every node's mailbox is closed (the cluster shut down).
    pub fn all_closed(&self) -> bool {
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
}

/// Runtime settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The protocol's configuration (timeouts, batch size).
    pub protocol: Config,
    /// Seed of the timer-delay RNGs, so runs can repeat their timing choices.
    pub seed: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            protocol: fast_config(),
            seed: 0x5eed,
        }
    }
}

/// Protocol timeouts suited to an in-process cluster: elections in 20–40 ms, heartbeats 5 ms.
pub fn fast_config() -> Config {
    Config {
        election_timeout: Duration::from_millis(20)..Duration::from_millis(40),
        heartbeat_interval: Duration::from_millis(5),
        ..Config::default()
    }
}

/// What a node's thread shares with the cluster: its durable storage (the one thing that
/// survives a crash) and, for observers, its current incarnation's state, which each boot
/// starts afresh (the node rebuilds it from the log).
struct Kept<R: Replica<Cmd<S>>, S: StateMachine> {
    storage: Box<dyn Storage<R, Cmd<S>>>,
    /// Boots so far.
    incarnation: u64,
    /// The state machine behind its sessions, rebuilt from the log at each boot.
    sessions: Sessions<S>,
    /// The highest slot applied in this incarnation.
    applied: Slot,
    /// The lowest slot applied in this incarnation (a rebuilt node re-applies from the start).
    first_applied: Option<Slot>,
    /// Committed commands applied in this incarnation, duplicates (resends) included.
    commits: u64,
    /// The replica's status after its latest step (`None` while down).
    status: Option<Status>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Kept<R, S> {
    /// A new incarnation begins. Nothing in memory survives: the state machine and its
    /// sessions start empty and are rebuilt from the log, as the replica (booting with commit
    /// index 0) reports every committed slot again from slot 1.
    fn reboot(&mut self) {
        self.incarnation += 1;
        self.sessions = Sessions::new();
        self.applied = 0;
        self.first_applied = None;
        self.commits = 0;
    }
}

type Shared<R, S> = Arc<Mutex<Kept<R, S>>>;

fn lock_kept<R: Replica<Cmd<S>>, S: StateMachine>(
    k: &Shared<R, S>,
) -> std::sync::MutexGuard<'_, Kept<R, S>> {
    k.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live cluster of replicas of protocol `R` serving state machine `S`.
pub struct Cluster<R: Replica<Cmd<S>>, S: StateMachine> {
    cfg: RuntimeConfig,
    members: Vec<NodeId>,
    net: Arc<Net<R, S>>,
    kept: Vec<Shared<R, S>>,
    kill: Vec<Arc<KillSwitch>>,
    threads: Vec<Option<JoinHandle<()>>>,
    panics: Arc<Mutex<Vec<(NodeId, String)>>>,
    next_client: u64,
    down: bool,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Cluster<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cluster<{}>({} nodes)", R::NAME, self.members.len())
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Cluster<R, S> {
    /// Start `n` replicas with in-memory storage.
    pub fn new(n: usize, cfg: RuntimeConfig) -> Result<Self, String> {
        Self::with_storage(n, cfg, |_| Ok(Box::new(MemStorage::<R, Cmd<S>>::default())))
    }

    /// Start `n` replicas, each with the storage `storage(id)` opens.
    pub fn with_storage(
        n: usize,
        cfg: RuntimeConfig,
        mut storage: impl FnMut(NodeId) -> std::io::Result<Box<dyn Storage<R, Cmd<S>>>>,
    ) -> Result<Self, String> {
        cfg.protocol.validate(n)?;
        let members: Vec<NodeId> = (0..n as u8).map(NodeId).collect();
        let net = Arc::new(Net {
            boxes: (0..n)
                .map(|_| {
                    Arc::new(Mailbox::with_spin(
                        NODE_MAILBOX,
                        spin_for("PAXRAFT_NODE_SPIN_US", NODE_SPIN),
                    ))
                })
                .collect(),
            cut: (0..n * n).map(|_| AtomicBool::new(false)).collect(),
        });
        let mut kept = Vec::with_capacity(n);
        for &id in &members {
            let storage = storage(id).map_err(|e| format!("storage of {id}: {e}"))?;
            kept.push(Arc::new(Mutex::new(Kept {
                storage,
                incarnation: 0,
                sessions: Sessions::new(),
                applied: 0,
                first_applied: None,
                commits: 0,
                status: None,
            })));
        }
        let mut c = Cluster {
            cfg,
            members,
            net,
            kept,
            kill: (0..n).map(|_| Arc::new(KillSwitch::default())).collect(),
            threads: (0..n).map(|_| None).collect(),
            panics: Arc::new(Mutex::new(Vec::new())),
            next_client: 1,
            down: false,
        };
        for i in 0..n {
            c.spawn(i);
        }
        Ok(c)
    }

    fn spawn(&mut self, i: usize) {
        assert!(self.threads[i].is_none(), "node {i} already runs");
        let id = self.members[i];
        let members = self.members.clone();
        let net = Arc::clone(&self.net);
        let kept = Arc::clone(&self.kept[i]);
        // Before the thread starts, so that observers see the new incarnation at once.
        lock_kept(&kept).reboot();
        let kill = Arc::clone(&self.kill[i]);
        let panics = Arc::clone(&self.panics);
        let report = move |what: String| {
            panics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id, what));
        };
        let cfg = self.cfg.clone();
        let handle = std::thread::Builder::new()
            .name(format!("{}-{id}", R::NAME))
            .spawn(move || {
                let mut pending = Pending::<S>::default();
                let result = catch_unwind(AssertUnwindSafe(|| {
                    node_loop::<R, S>(id, &members, &cfg, &net, &kept, &kill, &mut pending)
                }));
                let crashed = match result {
                    Ok(Exit::Killed) => true,
                    // Closed while a crash was armed: [`Cluster::crash`] of a waiting node.
                    Ok(Exit::Closed) => kill.fire(CrashPoint::Idle),
                    Err(p) => {
                        report(crate::panic_message(&*p));
                        true
                    }
                };
                if crashed {
                    // Contained: the node is down, its peers go on, its clients go elsewhere.
                    fail_inputs::<R, S>(net.boxes[id.index()].close());
                }
                let mut k = lock_kept(&kept);
                k.status = None;
                if crashed {
                    // The process died: the storage may lose what was not synced.
                    if let Err(e) = k.storage.crash() {
                        report(format!("storage failed its crash: {e}"));
                    }
                }
                drop(k);
                pending.fail_all();
            })
            .expect("spawn replica thread");
        self.threads[i] = Some(handle);
    }

    /// The member ids.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The network handle clients use.
    pub fn net(&self) -> Arc<Net<R, S>> {
        Arc::clone(&self.net)
    }

    /// A new client with its own id.
    pub fn client(&mut self, cfg: ClientConfig) -> Client<R, S> {
        let id = self.next_client;
        self.next_client += 1;
        Client::new(id, self.net(), cfg)
    }

    /// Panics of replica threads so far: (node, message).
    pub fn panics(&self) -> Vec<(NodeId, String)> {
        self.panics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether node `i` runs.
    pub fn is_up(&self, i: usize) -> bool {
        !self.net.boxes[i].is_closed()
    }

    /// Crash node `i` now: its thread stops at its next [`CrashPoint`] (no sync, no further
    /// sends or answers), its volatile state and mailbox are lost, and its storage is told
    /// ([`Storage::crash`]: what was not synced may be lost). Clients waiting on it are told to
    /// retry elsewhere. Returns once the node is down.
    pub fn crash(&mut self, i: usize) {
        self.kill[i].arm(None, 0);
        fail_inputs::<R, S>(self.net.boxes[i].close());
        if let Some(h) = self.threads[i].take() {
            // The thread body catches panics itself, so join only fails if that failed.
            let _ = h.join();
        }
    }

    /// Arm node `i` to crash itself after passing `n` more crash points (of any kind), at the
    /// one after: sweeping `n` walks a crash through its loop. Returns at once; the node is
    /// down ([`Cluster::is_up`] false) once the switch fired, and stays down until restarted.
    pub fn crash_after(&self, i: usize, n: u64) {
        self.kill[i].arm(None, n);
    }

    /// Arm node `i` to crash itself at the `n+1`-th [`CrashPoint`] of kind `at` it reaches
    /// from now (`n = 0`: the next one), so a test can aim at one place of the loop.
    pub fn crash_at(&self, i: usize, at: CrashPoint, n: u64) {
        self.kill[i].arm(Some(at), n);
    }

    /// Where node `i`'s latest crash hit it (`None`: it never crashed through its switch).
    pub fn crash_point(&self, i: usize) -> Option<CrashPoint> {
        self.kill[i].last_hit()
    }

    /// How many writes node `i`'s storage lost to crashes ([`Storage::lost_writes`]).
    pub fn lost_writes(&self, i: usize) -> u64 {
        lock_kept(&self.kept[i]).storage.lost_writes()
    }

    /// How many times node `i` booted (1 before any restart).
    pub fn boots(&self, i: usize) -> u64 {
        lock_kept(&self.kept[i]).incarnation
    }

    /// Restart a crashed node from its durable storage: a fresh replica, state machine and
    /// sessions, rebuilt from the log (nothing survives in memory).
    pub fn restart(&mut self, i: usize) {
        assert!(!self.down, "restart after shutdown");
        if self.threads[i].is_some() && self.is_up(i) {
            return;
        }
        if let Some(h) = self.threads[i].take() {
            let _ = h.join();
        }
        self.kill[i].disarm();
        let queued = self.net.boxes[i].reopen();
        assert_eq!(queued, 0, "a closed mailbox took items");
        self.spawn(i);
    }

    /// Cut every link between nodes of different `sets` (nodes in no set are isolated).
    pub fn partition(&self, sets: &[&[usize]]) {
        let n = self.members.len();
        let group = |x: usize| sets.iter().position(|s| s.contains(&x));
        for a in 0..n {
            for b in 0..n {
                let same = a == b || (group(a).is_some() && group(a) == group(b));
                self.net.cut[a * n + b].store(!same, Ordering::Relaxed);
            }
        }
    }

    /// Restore every link.
    pub fn heal(&self) {
        for c in &self.net.cut {
            c.store(false, Ordering::Relaxed);
        }
    }

    /// The up node that leads in the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len())
            .filter(|&i| self.is_up(i))
            .filter_map(|i| lock_kept(&self.kept[i]).status.map(|s| (s.term, s.role, i)))
            .filter(|&(_, role, _)| role == Role::Leader)
            .max()
            .map(|(_, _, i)| i)
    }

    /// Node `i`'s status after its latest step (`None` while down).
    pub fn status(&self, i: usize) -> Option<Status> {
        lock_kept(&self.kept[i]).status
    }

    /// Node `i`'s applied point in its current incarnation: (highest slot applied, requests
    /// that took effect). A restart starts it from `(0, 0)`. While down: the point it had
    /// reached when it went down.
    pub fn applied(&self, i: usize) -> (Slot, u64) {
        let k = lock_kept(&self.kept[i]);
        (k.applied, k.sessions.applied())
    }

    /// The lowest slot node `i` applied in its current incarnation (`None`: none yet). A node
    /// that rebuilt its state machine from its log re-applied the earliest commands.
    pub fn first_applied(&self, i: usize) -> Option<Slot> {
        lock_kept(&self.kept[i]).first_applied
    }

    /// How many committed commands node `i` applied in its current incarnation, resent
    /// duplicates included: above [`Cluster::applied`]'s count of requests that took effect
    /// by the duplicates its sessions answered instead of applying.
    pub fn commits(&self, i: usize) -> u64 {
        lock_kept(&self.kept[i]).commits
    }

    /// A copy of node `i`'s state machine (its current incarnation's; see [`Cluster::applied`]).
    pub fn state(&self, i: usize) -> S {
        lock_kept(&self.kept[i]).sessions.state().clone()
    }

    /// Stop every node and join every thread. Requests still queued or waiting are answered
    /// with `Retry`, which a client turns into `Error::Shutdown` once every node refuses it.
    pub fn shutdown(&mut self) {
        self.down = true;
        for b in &self.net.boxes {
            fail_inputs::<R, S>(b.close());
        }
        for t in &mut self.threads {
            if let Some(h) = t.take() {
                let _ = h.join();
            }
        }
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Drop for Cluster<R, S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A place in a node's loop where a crash can hit it (see [`Cluster::crash_at`]). What is at
/// stake at each: before an effect, the batch's earlier writes are not synced and none of its
/// messages or answers has left; at [`CrashPoint::Sync`] all its writes wait for the sync;
/// from the first [`CrashPoint::Push`] on, its writes are durable and only some of its
/// messages (and none of its answers) have left.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// Before carrying out a durable write.
    Persist,
    /// Before queueing a message to a peer.
    Send,
    /// Before arming or cancelling a timer.
    Timer,
    /// Before applying a committed command.
    Commit,
    /// Before turning a proposal away with a leader hint.
    Redirect,
    /// After the batch's effects, before the group sync of its writes (only when it wrote).
    Sync,
    /// After the sync, before pushing one peer's messages (the first: between the sync and
    /// the sends; the others: between the pushes).
    Push,
    /// After the sends, before answering clients (only when there are answers).
    Answer,
    /// Waiting for input, everything synced and sent ([`Cluster::crash`] of an idle node).
    Idle,
}

impl CrashPoint {
    /// The crash point before carrying out effect `e`.
    fn before<M, W, T, C>(e: &Effect<M, W, T, C>) -> Self {
        match e {
            Effect::Persist(_) => CrashPoint::Persist,
            Effect::Send { .. } => CrashPoint::Send,
            Effect::SetTimer { .. } | Effect::CancelTimer(_) => CrashPoint::Timer,
            Effect::Commit { .. } => CrashPoint::Commit,
            Effect::Redirect { .. } => CrashPoint::Redirect,
        }
    }
}

/// A node's kill switch: armed by the cluster, checked by the node at every crash point.
/// Kept apart from the mailbox (closing it is what wakes a waiting node) and from the shim of
/// [`sync`]: like a partition flag, a switch seen a little late is a crash a little later.
///
/// The plan, under its mutex, is the truth; the flag (written under the same lock) only says
/// whether to look at it, so it can be read relaxed: a node that sees it set before the plan
/// is visible finds the plan not armed yet and looks again at its next point.
#[derive(Debug, Default)]
struct KillSwitch {
    /// Whether a crash is armed: all that a crash point costs on the hot path is loading it.
    armed: AtomicBool,
    plan: Mutex<KillPlan>,
}

#[derive(Debug, Default)]
struct KillPlan {
    armed: bool,
    /// Fire only at points of this kind (`None`: any).
    at: Option<CrashPoint>,
    /// Matching points still to pass before firing.
    skip: u64,
    /// Where the latest crash hit.
    hit: Option<CrashPoint>,
}

impl KillSwitch {
    fn plan(&self) -> std::sync::MutexGuard<'_, KillPlan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arm(&self, at: Option<CrashPoint>, skip: u64) {
        let mut p = self.plan();
        (p.armed, p.at, p.skip) = (true, at, skip);
        self.armed.store(true, Ordering::Relaxed);
    }

    fn disarm(&self) {
        let mut p = self.plan();
        p.armed = false;
        self.armed.store(false, Ordering::Relaxed);
    }

    fn last_hit(&self) -> Option<CrashPoint> {
        self.plan().hit
    }

    /// The node reached crash point `p`: whether it dies here.
    #[inline(always)]
    fn hit(&self, p: CrashPoint) -> bool {
        self.armed.load(Ordering::Relaxed) && self.fire(p)
    }

    /// Count `p` against the armed plan; true (and disarmed) when it fires.
    #[cold]
    #[inline(never)]
    fn fire(&self, p: CrashPoint) -> bool {
        let mut plan = self.plan();
        if !plan.armed || plan.at.is_some_and(|at| at != p) {
            return false;
        }
        if plan.skip > 0 {
            plan.skip -= 1;
            return false;
        }
        plan.armed = false;
        plan.hit = Some(p);
        self.armed.store(false, Ordering::Relaxed);
        true
    }
}

/// How a node's loop ended.
enum Exit {
    /// Its mailbox was closed (shutdown, or a crash of a node waiting for input).
    Closed,
    /// Its kill switch fired at a crash point.
    Killed,
}

/// Answer `Retry` to the proposals among inputs a closed mailbox handed back (what the
/// closer of a node's mailbox does: crash, shutdown, or a panicked node).
pub fn fail_inputs<R: Replica<Cmd<S>>, S: StateMachine>(inputs: Vec<Input<R, S>>) {
    for input in inputs {
        if let Input::Propose { reqs, reply } = input {
            let _ = reply.push_many(
                reqs.into_iter()
                    .map(|r| Reply::Retry { seq: r.seq })
                    .collect(),
            );
        }
    }
}

/// Armed timers: a min-heap of deadlines with a generation per timer, so re-arming or
/// cancelling leaves a stale heap entry that is skipped when it surfaces.
struct Timers<T: Ord + Copy> {
    heap: BinaryHeap<Reverse<(Instant, u64, T)>>,
    armed: BTreeMap<T, u64>,
    gen: u64,
}

impl<T: Ord + Copy> Timers<T> {
    fn set(&mut self, t: T, at: Instant) {
        self.gen += 1;
        self.armed.insert(t, self.gen);
        self.heap.push(Reverse((at, self.gen, t)));
        // Bounded: stale entries are dropped when the heap grows well past the armed set.
        if self.heap.len() > 64 + 8 * self.armed.len() {
            let armed = &self.armed;
            self.heap
                .retain(|Reverse((_, g, t))| armed.get(t) == Some(g));
        }
    }
    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }
    fn pop_due(&mut self, now: Instant) -> Option<T> {
        while let Some(Reverse((at, g, t))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if self.armed.get(&t) == Some(&g) {
                self.armed.remove(&t);
                return Some(t);
            }
        }
        None
    }
}

/// One replica thread's life: boot from storage, then drain, step, apply effects, until its
/// mailbox is closed or its kill switch fires.
fn node_loop<R: Replica<Cmd<S>>, S: StateMachine>(
    id: NodeId,
    members: &[NodeId],
    cfg: &RuntimeConfig,
    net: &Net<R, S>,
    kept: &Shared<R, S>,
    kill: &KillSwitch,
    pending: &mut Pending<S>,
) -> Exit {
    let mine = &net.boxes[id.index()];
    let mut out: Out<R, Cmd<S>> = Out::<R, Cmd<S>>::new();
    let (durable, incarnation) = {
        let mut k = lock_kept(kept);
        (k.storage.load().expect("load durable state"), k.incarnation)
    };
    let mut rng = StdRng::seed_from_u64(
        cfg.seed ^ (u64::from(id.0) << 32) ^ incarnation.wrapping_mul(0x9e37_79b9),
    );
    let mut replica = R::boot(id, members, durable.as_ref(), &cfg.protocol, &mut out);
    let mut timers = Timers {
        heap: BinaryHeap::new(),
        armed: BTreeMap::new(),
        gen: 0,
    };
    let mut inbox: Vec<Input<R, S>> = Vec::new();
    let mut batch: Vec<Cmd<S>> = Vec::new();
    let mut outgoing: Vec<Vec<Input<R, S>>> = (0..members.len()).map(|_| Vec::new()).collect();
    let mut last_reported: Slot = 0;
    loop {
        // Carry out the effects of everything stepped so far, in order. A crash may hit
        // before any of them, and at every later point up to the answers.
        {
            let mut k = lock_kept(kept);
            let k = &mut *k;
            let mut wrote = false;
            for e in out.drain() {
                if kill.hit(CrashPoint::before(&e)) {
                    return Exit::Killed;
                }
                match e {
                    Effect::Persist(w) => {
                        k.storage.append_owned(w).expect("durable append");
                        wrote = true;
                    }
                    Effect::Send { to, msg } => {
                        if net.linked(id.index(), to.index()) {
                            outgoing[to.index()].push(Input::Msg { from: id, msg });
                        }
                    }
                    Effect::SetTimer { timer, after } => {
                        let d = if after.start >= after.end {
                            after.start
                        } else {
                            rng.gen_range(after)
                        };
                        timers.set(timer, Instant::now() + d);
                    }
                    Effect::CancelTimer(t) => {
                        timers.armed.remove(&t);
                    }
                    Effect::Commit { slot, cmd } => {
                        assert!(
                            slot > last_reported,
                            "commits out of order: {slot} after {last_reported}"
                        );
                        last_reported = slot;
                        // This incarnation's state machine started empty: it applies every
                        // slot the replica reports, from the first.
                        k.applied = slot;
                        k.first_applied.get_or_insert(slot);
                        k.commits += 1;
                        let res = k.sessions.apply_as(&cmd, &cfg.protocol);
                        pending.answer(cmd.client, cmd.seq, |seq| Reply::Done { seq, out: res });
                    }
                    Effect::Redirect { cmd, leader } => {
                        pending.answer(cmd.client, cmd.seq, |seq| Reply::Redirect { seq, leader });
                    }
                }
            }
            if wrote && kill.hit(CrashPoint::Sync) {
                return Exit::Killed;
            }
            // Group commit: everything persisted above is durable before any send leaves.
            k.storage.sync().expect("durable sync");
            k.status = Some(replica.status());
        }
        for (to, msgs) in outgoing.iter_mut().enumerate() {
            if !msgs.is_empty() {
                if kill.hit(CrashPoint::Push) {
                    return Exit::Killed;
                }
                // A closed (crashed) or full peer drops them, like a lossy network.
                let _ = net.boxes[to].push_many(std::mem::take(msgs));
            }
        }
        if pending.has_answers() && kill.hit(CrashPoint::Answer) {
            return Exit::Killed;
        }
        pending.flush();

        // Wait for input or the next timer.
        let now = Instant::now();
        if let Some(t) = timers.pop_due(now) {
            replica.on_timer(t, &mut out);
            continue;
        }
        if mine.drain(&mut inbox, timers.next()) == Drained::Closed {
            return Exit::Closed;
        }
        for input in inbox.drain(..) {
            match input {
                Input::Msg { from, msg } => replica.on_message(from, msg, &mut out),
                Input::Propose { reqs, reply } => {
                    pending.add(&reqs, &reply);
                    batch.extend(reqs);
                }
            }
        }
        if !batch.is_empty() {
            // One propose for everything pending: one append/accept for the whole batch.
            replica.propose(std::mem::take(&mut batch), &mut out);
        }
    }
}
