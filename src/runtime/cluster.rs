//! [`Cluster`]: starts the replica threads, carries the faults tests and the CLI inject
//! (crashes, restarts, partitions), and shows each node's current incarnation to observers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxraft_impls::sm::{Sessions, StateMachine};
use paxraft_impls::{Change, ChangeError, Membership, NodeId, Replica, Role, Slot, Status};

use super::crash::{CrashPoint, KillSwitch};
use super::node::{fail_inputs, node_loop, Changes, Exit};
use super::sync::Arc;
use super::{
    spin_for, ChangeBox, ChangeReply, Client, ClientConfig, Cmd, Mailbox, MemStorage, Net, Pending,
    RuntimeConfig, Storage, NODE_MAILBOX, NODE_SPIN,
};

/// What a node's thread shares with the cluster: its durable storage (the one thing that
/// survives a crash) and, for observers, its current incarnation's state, which each boot
/// starts afresh (the node rebuilds it from the log).
pub(super) struct Kept<R: Replica<Cmd<S>>, S: StateMachine> {
    pub(super) storage: Box<dyn Storage<R, Cmd<S>>>,
    /// Boots so far.
    pub(super) incarnation: u64,
    /// The state machine behind its sessions, rebuilt from the log at each boot, and the
    /// permission to read it from other threads (the network's reader for this node).
    pub(super) local: std::sync::Arc<super::local::LocalReader<S>>,
    /// The highest slot applied in this incarnation.
    pub(super) applied: Slot,
    /// The lowest slot applied in this incarnation (a rebuilt node re-applies from the start).
    pub(super) first_applied: Option<Slot>,
    /// Committed commands applied in this incarnation, duplicates (resends) included.
    pub(super) commits: u64,
    /// The replica's status after its latest step (`None` while down).
    pub(super) status: Option<Status>,
    /// Snapshots this node's state machine took in place of its own (restored from a peer's
    /// or its own snapshot), across incarnations, and their bytes.
    pub(super) restored: (u64, u64),
    /// The durable state the cluster loaded (and checked) before the first boot, which that
    /// boot takes instead of loading it again; later boots load.
    pub(super) loaded: Option<Option<R::Durable>>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Kept<R, S> {
    /// A new incarnation begins. Nothing in memory survives: the state machine and its
    /// sessions start empty and are rebuilt from the log, as the replica (booting with commit
    /// index 0) reports every committed slot again from slot 1.
    fn reboot(&mut self, session_timeout: u64) {
        self.incarnation += 1;
        // The permission first: a reader checks it under the lock this reset takes.
        self.local.revoke();
        *self.local.sessions_mut() = Sessions::with_timeout(session_timeout);
        self.applied = 0;
        self.first_applied = None;
        self.commits = 0;
    }
}

/// A node's [`Kept`], shared between its thread and the cluster.
pub(super) type Shared<R, S> = Arc<Mutex<Kept<R, S>>>;

/// Lock a node's [`Kept`], ignoring poisoning (a panicking node is contained and reported).
pub(super) fn lock_kept<R: Replica<Cmd<S>>, S: StateMachine>(
    k: &Shared<R, S>,
) -> std::sync::MutexGuard<'_, Kept<R, S>> {
    k.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a [`Cluster`] did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The protocol configuration does not suit the cluster.
    #[error("{0}")]
    Config(String),
    /// A node's storage did not open.
    #[error("storage of {node}: {source}")]
    Storage {
        /// The node.
        node: NodeId,
        /// What the storage said.
        source: std::io::Error,
    },
}

/// Refuse a store a node could not boot from, before any node starts: its durable state
/// must load, and the snapshot in it (a replica restores it at boot, rule 7 of the effect
/// contract) must decode into this host's state machine. A node thread that found out only
/// while booting would panic, and a store read as empty would lose what it acknowledged.
fn check_durable<R: Replica<Cmd<S>>, S: StateMachine>(
    id: NodeId,
    voters: &[NodeId],
    cfg: &RuntimeConfig,
    storage: &mut dyn Storage<R, Cmd<S>>,
) -> std::io::Result<Option<R::Durable>> {
    let Some(durable) = storage.load()? else {
        return Ok(None);
    };
    let mut out = paxraft_impls::Out::<R, Cmd<S>>::new();
    let _ = R::boot(id, voters, Some(&durable), &cfg.protocol, &mut out);
    for e in out.drain() {
        if let paxraft_impls::Effect::Restore(snapshot) = e {
            let invalid = |why: String| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("its snapshot at slot {} {why}", snapshot.slot),
                )
            };
            let sessions = Sessions::<S>::decode(&snapshot.data)
                .map_err(|e| invalid(format!("does not decode: {e}")))?;
            // The timeout is part of the state machine: restored under another one, this
            // node would expire other sessions than its peers and diverge from them.
            if sessions.timeout() != cfg.session_timeout {
                return Err(invalid(format!(
                    "expires sessions after {} commands, and this cluster after {} (0: never)",
                    sessions.timeout(),
                    cfg.session_timeout
                )));
            }
        }
    }
    Ok(Some(durable))
}

/// For callers whose errors are still lines of text (the CLI's commands, the benchmarks).
impl From<StartError> for String {
    fn from(e: StartError) -> String {
        e.to_string()
    }
}

/// Why [`Cluster::change`] did not change the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeFailure {
    /// The cluster refused the change and its configuration is unchanged: the change does not
    /// apply to it (the node is a member already, or is not one, or is the last voter, ...),
    /// or the protocol does not support it ([`ChangeError::Unsupported`]).
    Refused {
        /// The protocol ([`Replica::NAME`]).
        protocol: &'static str,
        /// The change.
        change: Change,
        /// Why.
        error: ChangeError,
    },
    /// No final answer within the timeout: no leader was found, or it kept answering that it
    /// could not start the change yet (`last`). With `open`, an earlier attempt was cut off
    /// (its leader lost its role or went down) and may still take effect.
    TimedOut {
        /// The change.
        change: Change,
        /// The timeout.
        timeout: Duration,
        /// The latest passing refusal heard ([`ChangeError::NotReady`], ...), if any.
        last: Option<ChangeError>,
        /// Whether an earlier attempt may still take effect.
        open: bool,
    },
    /// The cluster was shut down.
    Shutdown,
}

impl std::fmt::Display for ChangeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ChangeFailure::Refused {
                protocol,
                change,
                error: ChangeError::Unsupported,
            } => write!(f, "{protocol} does not support the change {change}"),
            ChangeFailure::Refused {
                protocol,
                change,
                error,
            } => write!(f, "{protocol} refused {change}: {error}"),
            ChangeFailure::TimedOut {
                change,
                timeout,
                last,
                open,
            } => {
                write!(f, "{change}: no answer within {timeout:?}")?;
                if let Some(last) = last {
                    write!(f, " (last heard: {last})")?;
                }
                if open {
                    write!(f, "; an interrupted attempt may still take effect")?;
                }
                Ok(())
            }
            ChangeFailure::Shutdown => write!(f, "the cluster was shut down"),
        }
    }
}

impl std::error::Error for ChangeFailure {}

/// First pause of [`Cluster::change`] before asking again, doubled up to [`CHANGE_PAUSE_MAX`].
const CHANGE_PAUSE_MIN: Duration = Duration::from_millis(1);
/// Longest pause of [`Cluster::change`] between attempts: a few heartbeats of
/// [`fast_config`](super::fast_config), so a retry follows soon after the leader is ready.
const CHANGE_PAUSE_MAX: Duration = Duration::from_millis(32);

/// A live cluster of replicas of protocol `R` serving state machine `S`.
pub struct Cluster<R: Replica<Cmd<S>>, S: StateMachine> {
    cfg: RuntimeConfig,
    /// Every node, spares included.
    members: Vec<NodeId>,
    /// The initial configuration's voters (the first [`RuntimeConfig::voters`] nodes).
    voters: Vec<NodeId>,
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
    pub fn new(n: usize, cfg: RuntimeConfig) -> Result<Self, StartError> {
        Self::with_storage(n, cfg, |_| Ok(Box::new(MemStorage::<R, Cmd<S>>::default())))
    }

    /// Start `n` replicas with in-memory storage: the first `voters` form the initial
    /// configuration, the others are spares a change may add ([`RuntimeConfig::voters`]).
    pub fn with_voters(n: usize, voters: usize, cfg: RuntimeConfig) -> Result<Self, StartError> {
        Self::new(
            n,
            RuntimeConfig {
                voters: Some(voters),
                ..cfg
            },
        )
    }

    /// Start `n` replicas, each with the storage `storage(id)` opens (of which the first
    /// [`RuntimeConfig::voters`] vote, all by default).
    pub fn with_storage(
        n: usize,
        cfg: RuntimeConfig,
        storage: impl FnMut(NodeId) -> std::io::Result<Box<dyn Storage<R, Cmd<S>>>>,
    ) -> Result<Self, StartError> {
        let net = Arc::new(Net::with_boxes(
            (0..n)
                .map(|_| {
                    Arc::new(Mailbox::with_spin(
                        NODE_MAILBOX,
                        spin_for("PAXRAFT_NODE_SPIN_US", NODE_SPIN),
                    ))
                })
                .collect(),
        ));
        Self::start(cfg, net, storage, None)
    }

    /// Start node `local` alone of a cluster whose other nodes run in other processes: `net`
    /// holds `local`'s own mailbox and, for every other node, an outbox a transport carries
    /// to it ([`crate::net`]). The other nodes have no thread, storage or status here.
    pub fn hosting(
        local: NodeId,
        net: Arc<Net<R, S>>,
        cfg: RuntimeConfig,
        storage: Box<dyn Storage<R, Cmd<S>>>,
    ) -> Result<Self, StartError> {
        let n = net.len();
        if local.index() >= n {
            return Err(StartError::Config(format!(
                "node {local} is not one of the {n} nodes"
            )));
        }
        let mut storage = Some(storage);
        Self::start(
            cfg,
            net,
            // Only the local node's storage is real: the others are placeholders that no
            // thread uses (their nodes run elsewhere).
            |id| match storage.take_if(|_| id == local) {
                Some(s) => Ok(s),
                None => Ok(Box::new(MemStorage::<R, Cmd<S>>::default())),
            },
            Some(local),
        )
    }

    /// Start the nodes of `net` (only `only`, if given), each with the storage `storage(id)`
    /// opens.
    fn start(
        cfg: RuntimeConfig,
        net: Arc<Net<R, S>>,
        mut storage: impl FnMut(NodeId) -> std::io::Result<Box<dyn Storage<R, Cmd<S>>>>,
        only: Option<NodeId>,
    ) -> Result<Self, StartError> {
        let n = net.len();
        cfg.protocol
            .validate(n)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let voters = cfg.voters.unwrap_or(n);
        if !(1..=n).contains(&voters) {
            return Err(StartError::Config(format!(
                "the initial voters must be 1 to {n} of the {n} nodes, got {voters}"
            )));
        }
        if voters < n && !R::CHANGES {
            return Err(StartError::Config(format!(
                "{} does not change its membership: every node must vote (no spares)",
                R::NAME
            )));
        }
        let members: Vec<NodeId> = (0..n as u8).map(NodeId).collect();
        let voters = members[..voters].to_vec();
        let mut kept = Vec::with_capacity(n);
        for &id in &members {
            let (storage, loaded) = storage(id)
                .and_then(|mut s| {
                    let loaded = check_durable::<R, S>(id, &voters, &cfg, &mut *s)?;
                    Ok((s, loaded))
                })
                .map_err(|source| StartError::Storage { node: id, source })?;
            kept.push(Arc::new(Mutex::new(Kept {
                storage,
                incarnation: 0,
                local: std::sync::Arc::clone(net.local(id.index())),
                applied: 0,
                first_applied: None,
                commits: 0,
                status: None,
                restored: (0, 0),
                loaded: Some(loaded),
            })));
        }
        let mut c = Cluster {
            cfg,
            members,
            voters,
            net,
            kept,
            kill: (0..n).map(|_| Arc::new(KillSwitch::default())).collect(),
            threads: (0..n).map(|_| None).collect(),
            panics: Arc::new(Mutex::new(Vec::new())),
            next_client: 1,
            down: false,
        };
        for i in 0..n {
            if only.map_or(true, |o| o.index() == i) {
                c.spawn(i);
            }
        }
        Ok(c)
    }

    fn spawn(&mut self, i: usize) {
        assert!(self.threads[i].is_none(), "node {i} already runs");
        let id = self.members[i];
        let voters = self.voters.clone();
        let net = Arc::clone(&self.net);
        let kept = Arc::clone(&self.kept[i]);
        // Before the thread starts, so that observers see the new incarnation at once.
        lock_kept(&kept).reboot(self.cfg.session_timeout);
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
                let mut pending = Pending::<S>::for_node(id);
                let mut changes = Changes::default();
                let result = catch_unwind(AssertUnwindSafe(|| {
                    node_loop::<R, S>(
                        id,
                        &voters,
                        &cfg,
                        &net,
                        &kept,
                        &kill,
                        &mut pending,
                        &mut changes,
                    )
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
                // Down: no reads answered on its permission (nor, after a reboot, on its empty
                // state machine).
                k.local.revoke();
                k.status = None;
                if crashed {
                    // The process died: the storage may lose what was not synced.
                    if let Err(e) = k.storage.crash() {
                        report(format!("storage failed its crash: {e}"));
                    }
                }
                drop(k);
                pending.fail_all();
                changes.fail_all();
            })
            .expect("spawn replica thread");
        self.threads[i] = Some(handle);
    }

    /// Every node's id, spares included (the configuration is [`Cluster::configuration`]).
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The initial configuration's voters: the first [`RuntimeConfig::voters`] nodes.
    pub fn initial_voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The network handle clients use.
    pub fn net(&self) -> Arc<Net<R, S>> {
        Arc::clone(&self.net)
    }

    /// Number the clients made from now on from `first` up (a cluster that continues from
    /// storage another process wrote must not give its clients ids whose sessions the state
    /// machine holds already: their requests would be answered as retries).
    pub fn number_clients_from(&mut self, first: u64) {
        assert!(first >= 1, "client ids start at 1");
        self.next_client = first;
    }

    /// A new client with its own id.
    pub fn client(&mut self, cfg: ClientConfig) -> Client<R, S> {
        let id = self.next_client;
        self.next_client += 1;
        Client::new(id, self.net(), cfg)
    }

    /// Reads node `i`'s local reader answered on its clients' threads, under the lease
    /// ([`super::local`]), across its incarnations.
    pub fn local_reads(&self, i: usize) -> u64 {
        self.net.local(i).served()
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

    /// CPU time each node's thread has used so far, by node index, with the thread's id
    /// (a restarted node runs on a new thread, whose time starts again from zero); `None`
    /// for a node that is down.
    #[cfg(not(loom))]
    pub fn node_cpu(&self) -> Vec<crate::cpu::ThreadCpu> {
        self.threads
            .iter()
            .map(|t| {
                let t = t.as_ref()?;
                Some((t.thread().id(), crate::cpu::of_thread(t)?))
            })
            .collect()
    }

    /// Node `i`'s status after its latest step (`None` while down).
    pub fn status(&self, i: usize) -> Option<Status> {
        lock_kept(&self.kept[i]).status
    }

    /// The configuration the leader ([`Cluster::leader`]) follows (for Raft, the latest in its
    /// log, committed or not); `None` without a leader.
    pub fn configuration(&self) -> Option<Membership> {
        self.status(self.leader()?).map(|s| s.config)
    }

    /// Change the membership ([`Replica::change`]) and wait for the configuration it
    /// committed, for at most `timeout`. The request goes to the node the cluster sees
    /// leading, follows [`ChangeError::NotLeader`] hints (else tries the nodes in turn), and
    /// asks again after a pause (1 ms, doubling to 32 ms) while the leader answers that it
    /// cannot start it yet ([`ChangeError::NotReady`], [`ChangeError::Pending`],
    /// [`ChangeError::Behind`]) or the attempt is cut off ([`ChangeError::Interrupted`], or
    /// the node goes down: [`ChangeReply::Down`]).
    ///
    /// An attempt cut off may still take effect; if a later attempt is refused because the
    /// change is in place already (an added node [`ChangeError::Exists`], a removed one
    /// [`ChangeError::Unknown`]), that attempt did, and the answer is the configuration the
    /// refusing leader follows (for a transfer: once its target leads, the configuration it
    /// follows). Any other refusal is final: [`ChangeFailure::Refused`], with
    /// the configuration unchanged. Never waits past `timeout`.
    pub fn change(&self, change: Change, timeout: Duration) -> Result<Membership, ChangeFailure> {
        if self.down {
            return Err(ChangeFailure::Shutdown);
        }
        let deadline = Instant::now() + timeout;
        let n = self.members.len();
        let mut hint: Option<usize> = None;
        let mut turn = 0;
        let mut pause = CHANGE_PAUSE_MIN;
        let mut open = false;
        let mut last = None;
        let timed_out = |last, open| ChangeFailure::TimedOut {
            change,
            timeout,
            last,
            open,
        };
        let mut answers = Vec::with_capacity(1);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out(last, open));
            }
            if let (true, Change::Transfer(to)) = (open, change) {
                // A cut-off transfer that went through: its target leads.
                let leads = self.leader().filter(|&l| l == to.index());
                if let Some(config) = leads.and_then(|l| self.status(l)).map(|s| s.config) {
                    return Ok(config);
                }
            }
            // The hint, else the leader the cluster sees, else the nodes in turn (a removed
            // or spare node answers NotLeader without a hint).
            let target = hint.take().or_else(|| self.leader()).unwrap_or_else(|| {
                turn = (turn + 1) % n;
                turn
            });
            let reply: ChangeBox = Arc::new(Mailbox::new(1));
            let answer = if self.net.change(NodeId(target as u8), change, &reply) {
                reply.drain(&mut answers, Some(deadline));
                match answers.pop() {
                    Some(answer) => answer,
                    None => return Err(timed_out(last, open)),
                }
            } else {
                // Down (or its mailbox full): as if it had answered without a hint.
                ChangeReply::Done(Err(ChangeError::NotLeader { leader: None }))
            };
            match answer {
                ChangeReply::Done(Ok(config)) => return Ok(config),
                ChangeReply::Down | ChangeReply::Done(Err(ChangeError::Interrupted)) => {
                    open = true;
                    last = Some(ChangeError::Interrupted);
                }
                ChangeReply::Done(Err(ChangeError::NotLeader { leader })) => {
                    match leader.map(NodeId::index).filter(|&l| l != target && l < n) {
                        // Straight there: only the pause below, which also stops two
                        // nodes with stale hints from bouncing the request fast.
                        Some(l) => hint = Some(l),
                        None => turn = target,
                    }
                    last = Some(ChangeError::NotLeader { leader });
                }
                ChangeReply::Done(Err(
                    e @ (ChangeError::NotReady | ChangeError::Pending | ChangeError::Behind(_)),
                )) => {
                    hint = Some(target);
                    last = Some(e);
                }
                ChangeReply::Done(Err(e @ (ChangeError::Exists(_) | ChangeError::Unknown(_))))
                    if open =>
                {
                    // In place already: the cut-off attempt took effect, unless somebody
                    // else's change did something else with the node.
                    let config = self.status(target).map(|s| s.config);
                    match config.filter(|c| in_place(change, c)) {
                        Some(config) => return Ok(config),
                        None => {
                            return Err(ChangeFailure::Refused {
                                protocol: R::NAME,
                                change,
                                error: e,
                            })
                        }
                    }
                }
                ChangeReply::Done(Err(error)) => {
                    return Err(ChangeFailure::Refused {
                        protocol: R::NAME,
                        change,
                        error,
                    })
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(CHANGE_PAUSE_MAX);
        }
    }

    /// Node `i`'s applied point in its current incarnation: (highest slot applied, requests
    /// that took effect). A restart starts it from `(0, 0)`. While down: the point it had
    /// reached when it went down.
    pub fn applied(&self, i: usize) -> (Slot, u64) {
        let k = lock_kept(&self.kept[i]);
        let sessions = k.local.sessions().applied();
        (k.applied, sessions)
    }

    /// Node `i`'s client sessions: (live, expired). A restart rebuilds them from the log.
    pub fn sessions(&self, i: usize) -> (usize, usize) {
        let k = lock_kept(&self.kept[i]);
        let s = k.local.sessions();
        (s.live(), s.expired())
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

    /// Snapshots node `i`'s state machine was restored from, over all its incarnations, and
    /// their bytes (what catching up by snapshot shipped to it, or read back at restarts).
    pub fn restored(&self, i: usize) -> (u64, u64) {
        lock_kept(&self.kept[i]).restored
    }

    /// A copy of node `i`'s state machine (its current incarnation's; see [`Cluster::applied`]).
    pub fn state(&self, i: usize) -> S {
        lock_kept(&self.kept[i]).local.sessions().state().clone()
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

/// Whether `config` shows `change` done: what a refusal of a repeated change means.
fn in_place(change: Change, config: &Membership) -> bool {
    match change {
        Change::AddVoter(id) => config.voters.contains(id) && !config.is_joint(),
        Change::AddLearner(id) => config.is_learner(id),
        Change::Remove(id) => !config.members().contains(id),
        Change::Transfer(_) => false,
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Drop for Cluster<R, S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
