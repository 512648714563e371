//! The one trait every protocol implements, and the effects it emits.
//!
//! A [`Replica`] is a deterministic, sans-IO state machine. It never touches threads, clocks,
//! sockets, files or randomness: a *host* (the stateright model, the proptest executor, the
//! threaded runtime, or a test driving it by hand) feeds it inputs and carries out the effects it
//! asks for. That single decision is what lets the very same protocol code be model-checked,
//! fault-tested and benchmarked.
//!
//! # Inputs
//!
//! * [`Replica::boot`]: start fresh (`durable == None`) or recover from durable state after a
//!   crash. Volatile state is gone; only what the replica persisted survives.
//! * [`Replica::on_message`]: a message from a peer arrived.
//! * [`Replica::on_timer`]: a timer the replica set earlier fired.
//! * [`Replica::propose`]: a batch of client commands to replicate.
//! * [`Replica::read`]: a linearizable read that does not go through the log (when
//!   [`Config::reads`] is not [`ReadMode::Log`] and the protocol sets [`Replica::READS`]).
//! * [`Replica::set_now`]: the replica's local clock reading, given before each of the
//!   inputs above by a host whose cluster serves reads under leases ([`ReadMode::Lease`]).
//! * [`Replica::change`]: an operator asks to add or remove a voter or a learner, or to
//!   move the leadership (when the protocol sets [`Replica::CHANGES`]).
//! * [`Replica::compact`]: the host snapshotted its state machine; the replica keeps the
//!   snapshot as durable state and drops the log it covers (when [`Config::snapshots`] is
//!   set and the protocol sets [`Replica::SNAPSHOTS`]).
//!
//! # Outputs: the effect contract
//!
//! Every input appends [`Effect`]s to an [`Effects`] buffer, *in order*. A host must carry them
//! out in that order, with these guarantees:
//!
//! 1. **Persist before send.** What a [`Effect::Persist`] wrote is durable before any *later*
//!    [`Effect::Send`] of the same step leaves the host. (A vote or an acceptance may only be
//!    announced once it survives a crash.) A host may batch the writes of one step into one
//!    fsync, as long as it does so before the first send that follows them.
//! 2. **Commits in slot order.** [`Effect::Commit`] effects arrive with strictly increasing slots,
//!    across all steps of one incarnation. Slots are 1-based. Internal entries (a Raft no-op, a
//!    Paxos gap filler) take a slot but are not reported, so reported slots may skip numbers.
//!    After a restart a replica may report again slots it reported before the crash (it does
//!    not know what the host applied); they carry the same command, and a host that remembers
//!    what it applied skips them. An [`Effect::Restore`] moves the point: every later commit
//!    is above its snapshot's slot.
//! 3. **Every proposed command is answered.** Each command handed to `propose` is either
//!    appended to the log (and later committed, or lost to a leader change, which the client
//!    learns by timing out and retrying) or handed straight back: in an [`Effect::Redirect`]
//!    carrying a leader hint when this replica does not lead, or in an [`Effect::Busy`] when
//!    it leads but taking the command would leave it more than [`Config::max_uncommitted`]
//!    commands not yet committed (back-pressure: the host answers the client with an error
//!    it can retry after a pause; the command was not appended and is never applied). The
//!    replica never silently drops a command it was given. (A multi-Paxos leader may queue a
//!    command until its window admits it, the queue counting toward the cap: a command still
//!    queued when the leadership ends is handed back then.)
//! 4. **Every read is answered or handed back.** Each read given to [`Replica::read`] ends in
//!    exactly one [`Effect::ReadReady`] (the read may be served) or [`Effect::ReadRedirect`]
//!    (it cannot be served here), unless the replica loses its role first, in which case it hands the read
//!    back then, or crashes (the client times out and retries, as after a lost proposal).
//!    `ReadReady { slot }` comes only after every [`Effect::Commit`] up to `slot` (in this step
//!    or an earlier one), so a host that applies commits as they come answers at once; a host
//!    that applies them later waits until it has applied `slot`. Either way the answer is read
//!    from a state machine that has applied at least `slot` (more is fine: those commands
//!    committed before the answer).
//! 5. **Timers.** [`Effect::SetTimer`] (re)arms a timer to fire once after a delay chosen by the
//!    host from the given range; setting an armed timer replaces it. A model checker may fire
//!    any armed timer at any moment: protocols must be *safe* whatever the timing, and only
//!    their liveness depends on the delays.
//! 6. **Time.** A replica never reads a clock. With [`ReadMode::Lease`] the host tells it the
//!    reading of its local clock with [`Replica::set_now`] before every input (monotonic
//!    within one incarnation), and fires a timer only once that same clock has advanced by at
//!    least the delay it drew: never early. The clock may run fast or slow against real time,
//!    by at most [`Config::clock_drift`] over each [`Config::election_timeout`]`.start`; a
//!    lease is safe under exactly that assumption, and the model checker, the fault-schedule
//!    simulator and [`crate::driver`] check it under it (their clocks drift by that bound).
//!    Without leases the protocols ignore time, and the hosts need not tell it.
//! 7. **Snapshots.** [`Effect::Restore`] hands the host a snapshot its state machine must
//!    become: one a peer sent (Raft's InstallSnapshot, §7 of the paper), or, first thing at a
//!    [`Replica::boot`], the one the replica kept durable. A host whose state machine has
//!    already applied at least the snapshot's slot (it survived the crash, or is ahead) keeps
//!    its own; any other host replaces its state machine, client sessions included, and counts
//!    every slot up to the snapshot's as applied. The data is the host's own encoding (from
//!    [`Replica::compact`], on this node or another): the protocol only stores and ships it.
//! 8. **Obsolete messages.** [`Replica::obsolete`] may declare a message one the replica will
//!    never act on, now or later (a reply from a term it left, an answer to a campaign it
//!    gave up). A host may drop such a message, as a lossy network could; the model checker
//!    does, so that garbage in flight does not tell apart otherwise equal states. The
//!    default declares nothing obsolete.
//! 9. **Every change request is answered once.** Each request given to [`Replica::change`]
//!    ends in exactly one [`Effect::ChangeDone`] with its id: at once when it is refused (the
//!    configuration is unchanged: bad input, another change pending, not ready) or when this
//!    replica does not lead ([`ChangeError::NotLeader`], with
//!    a hint); else `Ok` with the new configuration once the change is done (Raft: its entry
//!    committed; multi-Paxos: in effect, see [`crate::multipaxos::reconfig`]; a transfer: the
//!    target leads), or an error once a transfer is given up. A leader that loses its role
//!    first answers [`ChangeError::Interrupted`]: the change
//!    may still take effect. A crash answers nothing (the operator times out and asks again,
//!    as a client does after a lost proposal).
//!
//! 9. **Membership.** Each request given to [`Replica::change`] ends in exactly one
//!    [`Effect::ChangeDone`], unless the replica crashes first (the operator times out and
//!    asks again: a repeated change is refused as [`ChangeError::Exists`] or
//!    [`ChangeError::Unknown`] once the first took effect). A refusal leaves the configuration
//!    unchanged; [`ChangeError::Interrupted`] (the leader lost its role) leaves it open. A
//!    replica may be booted outside the configuration it is given (a spare a later change
//!    adds): it takes part only once a configuration names it.
//!
//! A host may crash between any two effects of one step (after a send and before a later
//! persist, after a persist and before the sends): rule 1 is what makes every such cut safe,
//! and the model checker (`--crashes`) and [`crate::driver`] both explore them.
//!
//! # Durable state
//!
//! Persistence is incremental: a replica emits [`Replica::Write`]s (append these entries, set
//! the term, accept this value) and the host applies them to its copy of
//! [`Replica::Durable`] with [`Replica::apply_write`]. An in-memory host keeps the image; a
//! file-backed host appends the writes to a log and replays them on restart. This keeps the
//! cost of a step proportional to what changed, not to the length of the log.
//!
//! # Example: driving a replica by hand
//!
//! ```
//! use paxraft_impls::{Config, Effect, Effects, NodeId, Replica, Role};
//! use paxraft_impls::raft::{Raft, RaftTimer};
//!
//! let cfg = Config::default();
//! let ids = [NodeId(0)];
//! let mut out = Effects::new();
//! // A single-node cluster: booting arms the election timer.
//! let mut r: Raft<&'static str> = Raft::boot(NodeId(0), &ids, None, &cfg, &mut out);
//! assert!(out.iter().any(|e| matches!(e, Effect::SetTimer { timer: RaftTimer::Election, .. })));
//! out.clear();
//!
//! // The timer fires: with no peers the node is a majority of one and leads at once.
//! r.on_timer(RaftTimer::Election, &mut out);
//! assert_eq!(r.status().role, Role::Leader);
//!
//! // It made its new term, its vote and its no-op entry durable.
//! assert_eq!(out.writes().count(), 2);
//! out.clear();
//!
//! // Propose a command: it is persisted, then committed in slot 2 (slot 1 is the leader's no-op).
//! r.propose(vec!["x=1"], &mut out);
//! let persisted = out.iter().position(|e| matches!(e, Effect::Persist(_))).unwrap();
//! let committed = out.iter().position(|e| matches!(e, Effect::Commit { .. })).unwrap();
//! assert!(persisted < committed);
//! assert_eq!(out.commits().collect::<Vec<_>>(), vec![(2, &"x=1")]);
//!
//! // A follower cannot take proposals: it hands them back with a leader hint.
//! # let mut out2 = Effects::new();
//! let mut f: Raft<&'static str> = Raft::boot(NodeId(1), &[NodeId(0), NodeId(1)], None, &cfg, &mut out2);
//! out2.clear();
//! f.propose(vec!["y=2"], &mut out2);
//! assert!(matches!(out2.iter().next(), Some(Effect::Redirect { cmd: "y=2", leader: None })));
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::membership::{Change, ChangeError, ChangeId, ChangeMode, Membership};

/// A replica's identity within its cluster. Clusters hold at most [`MAX_NODES`] replicas.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u8);

impl NodeId {
    /// The id as an index into per-node vectors.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// The largest cluster the protocols support (and test).
pub const MAX_NODES: usize = 7;

/// A slot in the replicated log, 1-based (slot 0 means "nothing").
pub type Slot = u64;

/// What a log carries. The protocol never looks inside a command; it asks only how big it is,
/// to keep its messages within [`Config::max_batch_bytes`]. `Sync`: a batch of commands is
/// shared by the messages and writes that carry it ([`crate::raft::Entries`],
/// [`crate::multipaxos::Values`]).
pub trait Command: Clone + Debug + Eq + Hash + Ord + Send + Sync + 'static {
    /// About how many bytes the command takes in a message: its encoded size, or an estimate
    /// that does not undercount by much. Cheap: it is asked for every entry a message may
    /// carry. The default, 0, leaves messages bounded by [`Config::max_batch`] alone, which
    /// suits commands of a few bytes.
    fn bytes(&self) -> usize {
        0
    }
}

impl Command for u32 {}

impl Command for &'static str {
    fn bytes(&self) -> usize {
        self.len()
    }
}

impl<Op: Command> Command for crate::sm::Request<Op> {
    fn bytes(&self) -> usize {
        // The session header (client, seq, acked), then the op.
        24 + self.op.bytes()
    }
}

/// A host's snapshot of its state machine, taken after applying every command up to `slot`
/// and none after it ([`Replica::compact`], [`Effect::Restore`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every slot up to this one is applied in the snapshot (no-ops included), none above.
    pub slot: Slot,
    /// The state machine, client sessions included, in the host's encoding. Opaque to the
    /// protocol, and shared: replicas and messages that hold one snapshot hold one copy.
    pub data: SnapshotData,
}

/// A snapshot's bytes ([`Snapshot::data`]).
pub type SnapshotData = std::sync::Arc<[u8]>;

/// Something a replica asks its host to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Effect<M, W, T, C> {
    /// Send `msg` to peer `to`. Delivery may be lost, delayed, reordered or duplicated.
    Send {
        /// The peer.
        to: NodeId,
        /// The message.
        msg: M,
    },
    /// Arm `timer` to fire once after a delay the host picks from `after`.
    SetTimer {
        /// The timer.
        timer: T,
        /// The range the host draws the delay from.
        after: Range<Duration>,
    },
    /// Disarm `timer` if it is armed.
    CancelTimer(T),
    /// Make `W` durable before any later send of this step.
    Persist(W),
    /// The command in `slot` is committed; apply it. Slots strictly increase.
    Commit {
        /// The slot (1-based).
        slot: Slot,
        /// The committed command.
        cmd: C,
    },
    /// This replica cannot take `cmd` (it is not the leader). `leader` is its best guess.
    Redirect {
        /// The command handed back.
        cmd: C,
        /// Who this replica believes leads, if anyone.
        leader: Option<NodeId>,
    },
    /// This replica leads but cannot take `cmd` now: it already holds
    /// [`Config::max_uncommitted`] commands it has not committed (rule 3 of the
    /// [module docs](crate::replica)). The command was not appended; the host answers its
    /// client with a "busy" error, which the client may retry after a pause.
    Busy {
        /// The command handed back.
        cmd: C,
    },
    /// Read `id` ([`Replica::read`]) is linearizable at `slot`: answer it from a state machine
    /// that has applied every commit up to `slot` (all of them were emitted before this).
    ReadReady {
        /// The host's id for the read.
        id: ReadId,
        /// The read index: the state the answer must include.
        slot: Slot,
    },
    /// Read `id` cannot be served here (not the leader, leadership lost before it was
    /// confirmed, or no leader known to ask). `leader` is this replica's best guess.
    ReadRedirect {
        /// The host's id for the read.
        id: ReadId,
        /// Who this replica believes leads, if anyone.
        leader: Option<NodeId>,
    },
    /// Make the state machine this snapshot, unless it has applied at least the snapshot's
    /// slot already (rule 7 of the [module docs](crate::replica)). Later commits are above
    /// the snapshot's slot.
    Restore(Snapshot),
    /// The answer to change request `id` ([`Replica::change`], rule 9): the configuration it
    /// committed (a transfer: the configuration the new leader leads), or why not.
    ChangeDone {
        /// The host's id for the request.
        id: ChangeId,
        /// The committed configuration, or the reason.
        result: Result<Membership, ChangeError>,
    },
}

/// A host's name for one read ([`Replica::read`]), unique among the reads it has outstanding
/// at one replica. Opaque to the protocol, which only hands it back (and may carry it in its
/// messages, for a follower's read served through the leader).
pub type ReadId = u64;

/// What [`Replica::local_reads`] lets a host do: answer reads alone, with no step of the
/// replica, while the replica's clock reads less than `until`, from a state machine that has
/// applied at least slot `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalReads {
    /// The replica's clock ([`Replica::set_now`]) at which the permission ends.
    pub until: Duration,
    /// The slot every answer must include (the replica's commit point when asked).
    pub at: Slot,
}

impl LocalReads {
    /// Whether a read may be answered alone at the replica's clock `now` from a state machine
    /// that has applied `applied`.
    pub fn allows(&self, now: Duration, applied: Slot) -> bool {
        now < self.until && applied >= self.at
    }
}

/// A host's read: answered at once when [`Replica::local_reads`] allows it (the host's state
/// machine applies commits as they are reported, so it has applied the commit point; with
/// leases the host passes the replica's clock as `now`), else given to [`Replica::read`].
/// The driver and the model checker read through this, as the runtime's node thread does, so
/// the checks see the path the runtime's local reader takes.
pub fn read_or_local<R: Replica<C>, C: Command>(
    r: &mut R,
    now: Option<Duration>,
    ids: Vec<ReadId>,
    out: &mut Out<R, C>,
) {
    if let Some(now) = now {
        let at = r.status().commit;
        if r.local_reads().is_some_and(|l| l.allows(now, at)) {
            for id in ids {
                out.read_ready(id, at);
            }
            return;
        }
    }
    r.read(ids, out)
}

/// The ordered effects of one or more steps.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Effects<M, W, T, C> {
    list: Vec<Effect<M, W, T, C>>,
}

impl<M, W, T, C> Default for Effects<M, W, T, C> {
    fn default() -> Self {
        Effects { list: Vec::new() }
    }
}

impl<M: Debug, W: Debug, T: Debug, C: Debug> Debug for Effects<M, W, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

impl<M, W, T, C> Effects<M, W, T, C> {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Queue a send.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.list.push(Effect::Send { to, msg });
    }
    /// Queue a timer (re)arm.
    pub fn set_timer(&mut self, timer: T, after: Range<Duration>) {
        debug_assert!(after.start <= after.end, "empty timer range");
        self.list.push(Effect::SetTimer { timer, after });
    }
    /// Queue a timer cancel.
    pub fn cancel_timer(&mut self, timer: T) {
        self.list.push(Effect::CancelTimer(timer));
    }
    /// Queue a durable write.
    pub fn persist(&mut self, write: W) {
        self.list.push(Effect::Persist(write));
    }
    /// Queue a commit.
    pub fn commit(&mut self, slot: Slot, cmd: C) {
        debug_assert!(slot > 0, "slots are 1-based");
        self.list.push(Effect::Commit { slot, cmd });
    }
    /// Queue the commits of `entries`, at consecutive slots from `first`, each command
    /// `cmd(entry)` cloned. One [`Vec::extend`] over a slice writes each effect in place: a
    /// [`Self::commit`] per command built each one on the stack first and copied it, and
    /// the copy stalled on the clone's stores (store forwarding; perf annotate of a Raft
    /// follower put about half its commit loop there).
    pub fn commit_slice<E>(&mut self, first: Slot, entries: &[E], cmd: impl Fn(&E) -> &C)
    where
        C: Clone,
    {
        debug_assert!(first > 0, "slots are 1-based");
        self.list
            .extend(entries.iter().enumerate().map(|(i, e)| Effect::Commit {
                slot: first + i as Slot,
                cmd: cmd(e).clone(),
            }));
    }
    /// Queue the commits of `cmds`, moved, at consecutive slots from `first` (as
    /// [`Self::commit_slice`] does for borrowed ones).
    pub fn commit_vec(&mut self, first: Slot, cmds: Vec<C>) {
        debug_assert!(first > 0, "slots are 1-based");
        self.list
            .extend(cmds.into_iter().enumerate().map(|(i, cmd)| Effect::Commit {
                slot: first + i as Slot,
                cmd,
            }));
    }
    /// Queue a redirect of a command this replica cannot take.
    pub fn redirect(&mut self, cmd: C, leader: Option<NodeId>) {
        self.list.push(Effect::Redirect { cmd, leader });
    }
    /// Queue a command refused for back-pressure ([`Effect::Busy`]).
    pub fn busy(&mut self, cmd: C) {
        self.list.push(Effect::Busy { cmd });
    }
    /// Queue a read that may now be served at `slot`.
    pub fn read_ready(&mut self, id: ReadId, slot: Slot) {
        self.list.push(Effect::ReadReady { id, slot });
    }
    /// Queue a read handed back to the host.
    pub fn read_redirect(&mut self, id: ReadId, leader: Option<NodeId>) {
        self.list.push(Effect::ReadRedirect { id, leader });
    }
    /// Queue a snapshot for the host's state machine to become.
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.list.push(Effect::Restore(snapshot));
    }
    /// Queue the answer to a change request.
    pub fn change_done(&mut self, id: ChangeId, result: Result<Membership, ChangeError>) {
        self.list.push(Effect::ChangeDone { id, result });
    }
    /// The effects, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Effect<M, W, T, C>> {
        self.list.iter()
    }
    /// Take every effect out, in order, leaving the buffer empty (its capacity is kept).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect<M, W, T, C>> {
        self.list.drain(..)
    }
    /// Whether the step did nothing but re-arm `timer` to fire at once (no minimum delay): a
    /// firing that only ended a CheckQuorum lease ([`Config::election_rest`]), after which
    /// the next firing is the bid.
    pub fn only_rearms(&self, timer: &T) -> bool
    where
        T: PartialEq,
    {
        matches!(&self.list[..], [Effect::SetTimer { timer: t, after }]
            if t == timer && after.start.is_zero())
    }
    /// Forget every effect.
    pub fn clear(&mut self) {
        self.list.clear();
    }
    /// Number of queued effects.
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// Whether no effect is queued.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The queued sends, as (recipient, message).
    pub fn sends(&self) -> impl Iterator<Item = (NodeId, &M)> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg)),
            _ => None,
        })
    }
    /// The queued commits, as (slot, command).
    pub fn commits(&self) -> impl Iterator<Item = (Slot, &C)> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::Commit { slot, cmd } => Some((*slot, cmd)),
            _ => None,
        })
    }
    /// The commands handed back busy ([`Effect::Busy`]), in order.
    pub fn refused_busy(&self) -> impl Iterator<Item = &C> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::Busy { cmd } => Some(cmd),
            _ => None,
        })
    }
    /// The reads made ready, as (read id, read index).
    pub fn reads_ready(&self) -> impl Iterator<Item = (ReadId, Slot)> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::ReadReady { id, slot } => Some((*id, *slot)),
            _ => None,
        })
    }
    /// The reads handed back, as (read id, leader hint).
    pub fn read_redirects(&self) -> impl Iterator<Item = (ReadId, Option<NodeId>)> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::ReadRedirect { id, leader } => Some((*id, *leader)),
            _ => None,
        })
    }
    /// The change requests answered, as (request id, result).
    pub fn changes_done(
        &self,
    ) -> impl Iterator<Item = (ChangeId, Result<Membership, ChangeError>)> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::ChangeDone { id, result } => Some((*id, *result)),
            _ => None,
        })
    }
    /// The queued durable writes.
    pub fn writes(&self) -> impl Iterator<Item = &W> + '_ {
        self.list.iter().filter_map(|e| match e {
            Effect::Persist(w) => Some(w),
            _ => None,
        })
    }
}

impl<M, W, T, C> IntoIterator for Effects<M, W, T, C> {
    type Item = Effect<M, W, T, C>;
    type IntoIter = std::vec::IntoIter<Effect<M, W, T, C>>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

/// The effects buffer of replica type `R` carrying commands `C`.
pub type Out<R, C> =
    Effects<<R as Replica<C>>::Msg, <R as Replica<C>>::Write, <R as Replica<C>>::Timer, C>;

/// The role a replica currently plays. Multi-Paxos maps onto it too: a proposer running
/// phase 1 is a `Candidate`, one whose phase 1 succeeded is the `Leader`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Raft PreVote: asks whether it could win before disturbing anyone's term.
    PreCandidate,
    /// Campaigning (Raft) or running phase 1 (Paxos).
    Candidate,
    /// Takes proposals.
    Leader,
}

/// A protocol-neutral view of a replica, for hosts, checkers and reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    /// Current role.
    pub role: Role,
    /// Raft's current term, or the Paxos ballot round. Never decreases, even across restarts.
    pub term: u64,
    /// Who this replica believes leads (itself if it leads).
    pub leader: Option<NodeId>,
    /// Highest slot known committed (and reported through [`Effect::Commit`]).
    pub commit: Slot,
    /// Highest slot this replica holds an entry for (committed or not).
    pub last: Slot,
    /// The slot of the snapshot this replica keeps (0: none): its log holds only the slots
    /// above it, and the host's next snapshot is due [`SnapshotPolicy::every`] slots later.
    pub snapshot: Slot,
    /// The configuration this replica follows: for Raft the latest in its log, committed or
    /// not (diss. §4.1); for multi-Paxos the latest it learned chosen, which decides the
    /// slots from α after its own on ([`crate::multipaxos::reconfig`]).
    pub config: Membership,
    /// A leader's holdings as [`Config::max_uncommitted`] counts them (what
    /// [`Config::admits`] is given when commands are proposed); 0 at any other role. Hosts
    /// check against it that a leader takes commands only under its cap.
    pub uncommitted: u64,
}

/// A protocol invariant checked over the states of a set of replicas (the live ones; a crashed
/// replica has no state until it reboots). Returns a one-line explanation when violated.
pub type ClusterCheck<R> = fn(&[&R]) -> Result<(), String>;

/// A protocol invariant over one replica's successive states (e.g. "the promised ballot never
/// decreases"). The states may straddle a crash-restart.
pub type StepCheck<R> = fn(&R, &R) -> Result<(), String>;

/// The name of the step invariant every protocol has: a replica's term (or ballot) never
/// decreases. Shared because the model treats it specially (it is what a lost vote or promise
/// breaks first, and the model checks it across crash-restarts).
pub const TERMS_NEVER_DECREASE: &str = "terms never decrease";

/// A named invariant, so checkers can report which one failed.
#[derive(Clone, Copy)]
pub struct Invariant<F> {
    /// Plain-words name, e.g. "election safety".
    pub name: &'static str,
    /// The check.
    pub check: F,
}

impl<F> Debug for Invariant<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invariant")
            .field("name", &self.name)
            .finish()
    }
}

/// A deterministic, sans-IO consensus replica carrying commands of type `C`.
///
/// See the [module docs](self) for the effect contract every implementation keeps and every
/// host relies on.
pub trait Replica<C: Command>: Clone + Debug + Eq + Hash + Send + 'static {
    /// Messages between replicas.
    type Msg: Clone + Debug + Eq + Hash + Ord + Send + 'static;
    /// Timers the replica sets.
    type Timer: Copy + Debug + Eq + Hash + Ord + Send + 'static;
    /// The full durable image: what survives a crash.
    type Durable: Clone + Debug + Default + Eq + Hash + Send + 'static;
    /// One incremental durable write.
    type Write: Clone + Debug + Eq + Hash + Send + 'static;

    /// Short protocol name for reports and the CLI, e.g. `"raft"`.
    const NAME: &'static str;

    /// Start replica `id` of the cluster `members` (which includes `id`), fresh when `durable`
    /// is `None`, else recovering from what it persisted before a crash.
    fn boot(
        id: NodeId,
        members: &[NodeId],
        durable: Option<&Self::Durable>,
        cfg: &Config,
        out: &mut Out<Self, C>,
    ) -> Self;

    /// A message from peer `from` arrived.
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, out: &mut Out<Self, C>);

    /// Timer `timer` fired.
    fn on_timer(&mut self, timer: Self::Timer, out: &mut Out<Self, C>);

    /// Replicate `cmds`, in order. A replica that cannot take them redirects each one.
    fn propose(&mut self, cmds: Vec<C>, out: &mut Out<Self, C>);

    /// Whether this protocol serves reads without the log ([`Replica::read`]). Hosts of a
    /// protocol that does not send reads through the log, as commands, whatever
    /// [`Config::reads`] says.
    const READS: bool = false;

    /// Serve reads `ids` without writing the log: confirm that the state this replica would
    /// answer from includes every command committed before the reads arrived, then emit
    /// [`Effect::ReadReady`] with the slot each answer must include, or hand a read back with
    /// [`Effect::ReadRedirect`] (rule 4 of the [module docs](self)). A batch, like
    /// [`Replica::propose`]: reads that arrive together may share one confirmation round
    /// (a round sent before a read arrived may not confirm it: its answers could predate the
    /// read). Only called when [`Replica::READS`] and [`Config::reads`] is not
    /// [`ReadMode::Log`]. The default hands every read back.
    fn read(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, C>) {
        let leader = self.status().leader;
        for id in ids {
            out.read_redirect(id, leader);
        }
    }

    /// The replica's local clock reads `now` (time since an origin of the host's choosing, on
    /// a clock that never goes back within one incarnation): rule 6 of the
    /// [module docs](self). Hosts of a cluster with [`ReadMode::Lease`] call it before every
    /// input; a protocol without leases ignores it (the default).
    fn set_now(&mut self, now: Duration) {
        let _ = now;
    }

    /// Reads the host may serve alone, without [`Replica::read`] and without a step: under a
    /// leader lease (Ongaro's dissertation §6.4.1) nothing can commit elsewhere before the
    /// lease ends, so a read that arrives while this replica's clock (rule 6) reads less than
    /// `until` may be answered from a state machine that has applied `at`, the commit point
    /// now (with every commit reported so far, as [`Replica::read`]'s answers are). A host
    /// serves such reads on other threads than the replica's (TiKV's local reader does the
    /// same), so the answer binds the host, not the replica:
    ///
    /// - It holds for the replica as it is now. A step may end it (a leadership handed over,
    ///   lost, or a lease run out): the host asks again after every step, *before* any send
    ///   of that step leaves, and from then on uses only the new answer. A read served on
    ///   the old answer before that moment was served while nothing the step decided had
    ///   reached any other node.
    /// - The state machine answers only from durable commits: a commit reported after a
    ///   write of the same step may cover that write (a cluster of one commits what it has
    ///   just appended), so no read answered alone sees it before the step's writes are
    ///   durable.
    /// - Asking counts as a read that used the lease: the next heartbeat renews it.
    ///
    /// `None`: every read goes through [`Replica::read`]. Only asked with
    /// [`ReadMode::Lease`]. The default never allows it.
    fn local_reads(&mut self) -> Option<LocalReads> {
        None
    }

    /// Whether this protocol compacts its log into snapshots ([`Replica::compact`],
    /// [`Effect::Restore`]). Hosts of a protocol that does not never snapshot, whatever
    /// [`Config::snapshots`] says; the runtime still checkpoints its durable store on the
    /// policy's schedule (cheap for an image as small as the unreplicated ceiling's; a
    /// protocol that keeps a log in its image should compact it instead).
    const SNAPSHOTS: bool = false;

    /// The host's state machine has applied every command up to `snapshot.slot` (at most
    /// [`Status::commit`], and above [`Status::snapshot`]) and saved itself as
    /// `snapshot.data`: keep the snapshot as durable state, in place of the log up to its slot,
    /// and ship it to any peer that needs entries it no longer holds. Only called when
    /// [`Replica::SNAPSHOTS`] and [`Config::snapshots`] is set. The default ignores it.
    fn compact(&mut self, snapshot: Snapshot, out: &mut Out<Self, C>) {
        let _ = (snapshot, out);
    }

    /// Whether this protocol changes its membership ([`Replica::change`]).
    const CHANGES: bool = false;

    /// An operator asks for `change` (rule 9 of the [module docs](self)): a leader validates
    /// it against its configuration and either refuses it at once or starts it, and answers
    /// with exactly one [`Effect::ChangeDone`] once the new configuration is committed (or the
    /// transfer done, or given up). A replica that does not lead answers
    /// [`ChangeError::NotLeader`]. The default answers [`ChangeError::Unsupported`].
    fn change(&mut self, id: ChangeId, change: Change, out: &mut Out<Self, C>) {
        let _ = change;
        out.change_done(id, Err(ChangeError::Unsupported));
    }

    /// A protocol-neutral view of the replica.
    fn status(&self) -> Status;

    /// This replica's id.
    fn id(&self) -> NodeId;

    /// The entries this replica holds up to its commit point, by slot, no-ops included as
    /// `None`. Checkers compare these across replicas (state machine safety). A replica that
    /// compacted its log may return only the suffix it still holds.
    fn committed(&self) -> BTreeMap<Slot, Option<C>>;

    /// Apply one durable write to the durable image. Pure: hosts call it to maintain the
    /// image they hand back to [`Replica::boot`] after a crash.
    fn apply_write(durable: &mut Self::Durable, write: &Self::Write);

    /// [`Replica::apply_write`] for a write the host gives up: the same image, with what the
    /// write carries moved into it rather than copied (a host that keeps writes and folds
    /// them in batches calls this). Defaults to `apply_write`.
    fn apply_write_owned(durable: &mut Self::Durable, write: Self::Write) {
        Self::apply_write(durable, &write)
    }

    /// Fold `writes`, in order, into the image, leaving `writes` empty: the image
    /// [`Replica::apply_write_owned`] gives write by write (the default), which a protocol may
    /// reach with less work, such as not moving in the entries a later write in the run drops
    /// (a host that keeps writes and folds them at each compaction calls this).
    fn fold_writes(durable: &mut Self::Durable, writes: &mut Vec<Self::Write>) {
        for write in writes.drain(..) {
            Self::apply_write_owned(durable, write);
        }
    }

    /// Invariants over the states of several replicas of one cluster.
    fn cluster_invariants() -> Vec<Invariant<ClusterCheck<Self>>>;

    /// Invariants over successive states of one replica.
    fn step_invariants() -> Vec<Invariant<StepCheck<Self>>>;

    /// The timer whose firing at a non-leader starts a bid for leadership (Raft's election
    /// timeout, Paxos's phase 1). Lets protocol-neutral tests and tools elect a leader.
    fn election_timer() -> Self::Timer;

    /// The timer whose firing at a leader sends heartbeats (and with them the commit point).
    fn heartbeat_timer() -> Self::Timer;

    /// Whether this replica will never act on `msg` from `from`, now or in any later state
    /// (its delivery would change nothing and emit nothing, for ever). Hosts may drop such a
    /// message. Must be `false` for any message the replica might still act on: when unsure,
    /// `false` (the default) is always correct.
    fn obsolete(&self, from: NodeId, msg: &Self::Msg) -> bool {
        let _ = (from, msg);
        false
    }

    /// Whether this protocol implements renaming ([`Replica::rename`], [`Replica::rename_msg`],
    /// [`Replica::rename_durable`]). Model checkers use renaming for symmetry reduction: two
    /// cluster states that differ only by the names of the servers are explored once.
    const RENAMES: bool = false;

    /// Rename every node id this replica holds (its own, votes, leader hints, ballots, ...)
    /// through `map`, as if the cluster had been booted with the names permuted. Only called
    /// when [`Replica::RENAMES`]; the default does nothing. Timers must carry no node ids.
    fn rename(&mut self, map: &Renaming) {
        let _ = map;
    }

    /// Rename the node ids inside a message (see [`Replica::rename`]).
    fn rename_msg(msg: &mut Self::Msg, map: &Renaming) {
        let _ = (msg, map);
    }

    /// Rename the node ids inside a durable image (see [`Replica::rename`]).
    fn rename_durable(durable: &mut Self::Durable, map: &Renaming) {
        let _ = (durable, map);
    }
}

/// A permutation of a cluster's node ids: node `n` is renamed `map[n]` (ids past the end keep
/// their name). Symmetry reduction applies one to a whole cluster state at once.
#[derive(Clone, Copy, Debug)]
pub struct Renaming<'a>(pub &'a [NodeId]);

impl Renaming<'_> {
    /// The new name of `n`.
    #[inline]
    pub fn id(&self, n: NodeId) -> NodeId {
        self.0.get(n.index()).copied().unwrap_or(n)
    }

    /// Permute a vector indexed by node id, growing it (with defaults) to hold every
    /// renamed id.
    pub fn by_id<T: Clone + Default>(&self, v: &mut Vec<T>) {
        let old = std::mem::take(v);
        let len = (0..old.len())
            .map(|i| self.id(NodeId(i as u8)).index() + 1)
            .max()
            .unwrap_or(0);
        v.resize(len.max(old.len()), T::default());
        for (i, x) in old.into_iter().enumerate() {
            v[self.id(NodeId(i as u8)).index()] = x;
        }
    }
}

/// Protocol configuration. Times are only handed back to the host in timer effects: the
/// protocol itself never reads a clock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Range the host draws each election (leader-failure) timeout from. Randomized to break
    /// split votes (Raft §5.2).
    pub election_timeout: Range<Duration>,
    /// How often a leader sends heartbeats. Must be well below `election_timeout.start`.
    pub heartbeat_interval: Duration,
    /// Raft PreVote (Raft dissertation §9.6): a node first asks whether it could win before
    /// raising its term, so a node cut off from the cluster cannot depose a healthy leader.
    pub pre_vote: bool,
    /// Raft CheckQuorum (dissertation §6.2): a leader that has not heard from a majority within
    /// an election timeout steps down; a follower that heard from a live leader recently
    /// ignores vote requests.
    pub check_quorum: bool,
    /// Most log entries sent in one append/accept message.
    pub max_batch: usize,
    /// Most command bytes ([`Command::bytes`]) in one message that carries log entries
    /// (Raft's appends, multi-Paxos's accepts, catch-up batches and promises), as etcd-raft's
    /// MaxSizePerMsg; a single entry larger than this still goes, alone. Without it a batch
    /// of large commands becomes one message too big for a transport's frames (the network's
    /// frames hold 16 MiB), dropped every time it is sent, and the follower never catches
    /// up. With [`Config::max_inflight`] it also bounds the bytes in flight to a follower.
    /// Default 1 MiB.
    pub max_batch_bytes: usize,
    /// Raft: most appends in flight (sent, not yet acknowledged) to one replicating follower,
    /// as etcd-raft's MaxInflightMsgs; at least 1. With the window full the leader sends that
    /// follower nothing new until an acknowledgement frees room, so a slow follower holds at
    /// most `max_inflight × max_batch` entries of the leader's sends, and about
    /// `max_inflight × max_batch_bytes` bytes of commands (etcd's MaxInflightBytes follows
    /// from the two bounds here rather than being a third). Default 64,
    /// below etcd's 256 because the runtime hands every pending proposal to one `propose`
    /// (one append per follower per drain of its inbox): a follower keeping up has a few
    /// appends in flight, never dozens, so the window binds only for a follower that falls
    /// behind.
    pub max_inflight: usize,
    /// Raft: heartbeats carry no entries, only the commit point, as in the paper (§5.2: "empty
    /// AppendEntries RPCs"). Off by default: a heartbeat to a follower still being probed then
    /// re-sends the probe's first entry, repairing a lost probe one round trip sooner. Either form
    /// is safe; the empty one is the form under which bug R7 can apply a stale entry.
    pub empty_heartbeats: bool,
    /// How reads are served: through the log (the default), or by the protocol's read path
    /// ([`Replica::read`]).
    pub reads: ReadMode,
    /// Whether a follower serves reads itself, asking the leader for a read index and waiting
    /// until it has applied it (diss. §6.4, "followers could also help"), instead of handing
    /// them to the leader. Only with [`ReadMode::ReadIndex`] or [`ReadMode::Lease`].
    pub follower_reads: bool,
    /// The bound on clock drift that leases rely on: over any stretch of real time as long as
    /// `election_timeout.start`, a replica's clock gains or loses at most this much. Required
    /// by [`ReadMode::Lease`] (and below `election_timeout.start`); `None` otherwise.
    pub clock_drift: Option<Duration>,
    /// When hosts snapshot their state machines and replicas compact their logs (`None`:
    /// never; logs grow without bound).
    pub snapshots: Option<SnapshotPolicy>,
    /// How voters change ([`Replica::change`]): one at a time, or by joint consensus.
    pub changes: ChangeMode,
    /// Multi-Paxos: α of *Paxos Made Simple* §3 (PMMC's `WINDOW`; at least 1). A
    /// configuration chosen in slot `s` decides the slots from `s + window` on, and a leader
    /// proposes no slot more than `window` past its commit point, so that it always knows the
    /// configuration of the slots it proposes: the window bounds its pipeline. Small by
    /// default, so that a change takes effect within a model-checkable run (the leader pads
    /// the slots between a change and its effect with no-ops); a host that wants a deeper
    /// pipeline raises it.
    pub window: u64,
    /// The most commands a leader holds that it has not committed (at least 1): a proposal
    /// that would take it past this is handed back in an [`Effect::Busy`] (rule 3 of the
    /// [module docs](self)), so that a leader whose followers lag or whose quorum is gone
    /// pushes back on its clients instead of growing its log, and the memory of every host
    /// behind it, without bound. Raft counts the entries above its commit point (its no-op and
    /// configuration entries included); multi-Paxos the slots it proposed above its commit
    /// point, the values recovered by phase 1 still to re-propose and the values queued
    /// behind its window. The analogue of etcd-raft's `MaxUncommittedEntriesSize`
    /// (raft.go: "limits the aggregate byte size of the uncommitted entries that may be
    /// appended to a leader's log"), counted in entries rather than bytes, as the protocols
    /// never look inside a command. Default [`Config::DEFAULT_MAX_UNCOMMITTED`].
    pub max_uncommitted: usize,
    /// Bugs switched on for the bug zoo (see ../shared/BUGZOO.md).
    #[cfg(feature = "bug-zoo")]
    pub bugs: crate::bugs::BugSet,
}

/// When a host snapshots its state machine, and how a snapshot travels ([`Config::snapshots`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotPolicy {
    /// Snapshot once the commit point is this many slots past the last snapshot (at least 1).
    pub every: u64,
    /// Most snapshot bytes in one message: a larger snapshot travels in chunks, each
    /// acknowledged, and a lost chunk is sent again from where the receiver stopped (at
    /// least 1).
    pub chunk: usize,
}

impl SnapshotPolicy {
    /// The default chunk: 64 KiB, well inside any transport's frame.
    pub const DEFAULT_CHUNK: usize = 64 * 1024;

    /// Whether a host whose replica reports `status` should snapshot now.
    pub fn due(&self, status: &Status) -> bool {
        status.commit >= status.snapshot.saturating_add(self.every)
    }

    /// The slot a host's snapshot covers when its replica reports `status` and its state
    /// machine has applied up to the commit point: that point. (Bug S1 takes the replica's
    /// last slot, committed or not.)
    pub fn slot(status: &Status, cfg: &Config) -> Slot {
        if cfg.bug(crate::bugs::Bug::SnapshotUncommitted) {
            return status.last.max(status.commit);
        }
        status.commit
    }
}

/// How a cluster serves reads ([`Config::reads`]).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum ReadMode {
    /// A read is a command like any other: appended, replicated, committed, applied. Costs a
    /// log write and a replication round, needs nothing else.
    #[default]
    Log,
    /// ReadIndex (Ongaro's dissertation §6.4): the leader notes its commit point, confirms it
    /// still leads with one heartbeat round to a majority, and answers once its state machine
    /// has applied that point. A new leader first commits an entry of its own term, as only
    /// then does its commit point cover every earlier commit. No log write.
    ReadIndex,
    /// Leader leases (diss. §6.4.1): a majority's acknowledgement of a heartbeat round sent
    /// at local time `s` lets the leader serve reads alone, with no round, until
    /// `s + `[`Config::lease`] by its own clock: the followers that acknowledged will not
    /// help elect anybody else before then, even with their clocks drifting by
    /// [`Config::clock_drift`]. Needs CheckQuorum (the followers' refusal to vote) and a
    /// drift bound. Outside a lease, reads fall back to ReadIndex.
    Lease,
}

impl ReadMode {
    /// Every mode, for CLIs and reports.
    pub const ALL: [ReadMode; 3] = [ReadMode::Log, ReadMode::ReadIndex, ReadMode::Lease];

    /// The CLI spelling: `log`, `read-index`, `lease`.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Log => "log",
            ReadMode::ReadIndex => "read-index",
            ReadMode::Lease => "lease",
        }
    }

    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<ReadMode> {
        ReadMode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_timeout: Duration::from_millis(150)..Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            max_batch: 4096,
            max_batch_bytes: 1 << 20,
            max_inflight: 64,
            empty_heartbeats: false,
            reads: ReadMode::Log,
            follower_reads: false,
            clock_drift: None,
            snapshots: None,
            changes: ChangeMode::SingleServer,
            window: 8,
            max_uncommitted: Config::DEFAULT_MAX_UNCOMMITTED,
            #[cfg(feature = "bug-zoo")]
            bugs: crate::bugs::BugSet::default(),
        }
    }
}

/// Why a [`Config`] does not suit a cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No nodes, or more than the protocols can address.
    #[error("cluster size must be 1 to {MAX_NODES}, got {0}")]
    ClusterSize(usize),
    /// An empty or zero election timeout range.
    #[error("election timeout range must be non-empty and above zero")]
    ElectionTimeout,
    /// A heartbeat that would not keep followers from campaigning.
    #[error("heartbeat interval must be above zero and below the election timeout")]
    Heartbeat,
    /// A batch that could carry nothing.
    #[error("max batch (entries and bytes) must be at least 1")]
    MaxBatch,
    /// An in-flight window that lets a leader send nothing.
    #[error("max in-flight appends must be at least 1")]
    MaxInflight,
    /// Follower reads without a read path to serve them by.
    #[error("follower reads need reads=read-index or reads=lease (a follower asks the leader for a read index)")]
    FollowerReadsWithoutReadIndex,
    /// Leases without a bound on clock drift: no lease length is safe.
    #[error("reads=lease needs a clock drift bound (e.g. --clock-drift 2ms, a tenth of the runtime's shortest election timeout): a lease is only as safe as the clocks it is timed by")]
    LeaseWithoutDriftBound,
    /// A drift bound at least the shortest election timeout: no lease is left.
    #[error("the clock drift bound ({drift:?}) must be below the shortest election timeout ({election:?}): no lease is left")]
    DriftTooLarge {
        /// The drift bound.
        drift: Duration,
        /// The shortest election timeout.
        election: Duration,
    },
    /// Leases without CheckQuorum: followers would vote for a new leader during the lease.
    #[error("reads=lease needs CheckQuorum (followers that heard from the leader refuse to vote, which is what the lease relies on)")]
    LeaseWithoutCheckQuorum,
    /// A snapshot policy that would snapshot at every slot of nothing.
    #[error("the snapshot threshold must be at least 1 slot")]
    SnapshotEvery,
    /// Snapshot chunks that carry nothing.
    #[error("the snapshot chunk size must be at least 1 byte")]
    SnapshotChunk,
    /// A reconfiguration window that lets a leader propose nothing.
    #[error("the reconfiguration window must be at least 1 slot")]
    Window,
    /// A cap on uncommitted commands that lets a leader take none.
    #[error("max uncommitted must be at least 1 command")]
    MaxUncommitted,
}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

impl Config {
    /// The default [`Config::max_uncommitted`]: 65536 commands. The benchmarks keep at most
    /// 1024 requests outstanding (a closed loop: one per client, plus the retries of a client
    /// that timed out while its first attempt still waits), so a leader never holds more than
    /// a few thousand, and [`Config::max_batch`] (4096) fits many times over: the cap is only
    /// ever reached when commits stop (a lost quorum, a stalled disk), which is what it is
    /// for. 65536 small commands are a few MiB of log, a bound any host can afford.
    pub const DEFAULT_MAX_UNCOMMITTED: usize = 1 << 16;

    /// How many of `items` (log entries in order) one message carries: at most
    /// [`Config::max_batch`], and no more than [`Config::max_batch_bytes`] by `bytes`, except
    /// that the first always goes (one too big for the bound goes alone). 0 only for none.
    pub fn batch_len<T>(&self, items: &[T], bytes: impl Fn(&T) -> usize) -> usize {
        let mut total = 0usize;
        for (i, item) in items.iter().take(self.max_batch).enumerate() {
            total = total.saturating_add(bytes(item));
            if i > 0 && total > self.max_batch_bytes {
                return i;
            }
        }
        items.len().min(self.max_batch)
    }

    /// `items` cut into messages by [`Config::batch_len`], with each message's offset in
    /// `items`; one empty message when `items` is empty (a message that carries no entries
    /// still goes: an empty accept, a promise of nothing).
    pub fn batches<'a, T>(
        &self,
        items: &'a [T],
        bytes: impl Fn(&T) -> usize,
    ) -> Vec<(usize, &'a [T])> {
        let mut out = vec![];
        let mut at = 0;
        loop {
            let n = self.batch_len(&items[at..], &bytes);
            out.push((at, &items[at..at + n]));
            at += n;
            if at == items.len() {
                return out;
            }
        }
    }

    /// Of `n` commands proposed to a leader that holds `uncommitted` commands it has not
    /// committed, how many it takes (the first ones; the rest get [`Effect::Busy`]).
    pub fn admits(&self, uncommitted: u64, n: usize) -> usize {
        let room = (self.max_uncommitted as u64).saturating_sub(uncommitted);
        n.min(usize::try_from(room).unwrap_or(usize::MAX))
    }

    /// Back-pressure at a leader that holds `uncommitted` commands: keep in `cmds` the first
    /// [`Config::admits`] of them and hand the rest back busy (rule 3). `ignore_cap` (a zoo
    /// switch) keeps them all. Whether anything is left to propose.
    pub fn admit<M, W, T, C>(
        &self,
        uncommitted: u64,
        ignore_cap: bool,
        cmds: &mut Vec<C>,
        out: &mut Effects<M, W, T, C>,
    ) -> bool {
        let take = if ignore_cap {
            cmds.len()
        } else {
            self.admits(uncommitted, cmds.len())
        };
        for cmd in cmds.drain(take..) {
            out.busy(cmd);
        }
        !cmds.is_empty()
    }

    /// Check the configuration makes sense for a cluster of `members` nodes.
    pub fn validate(&self, members: usize) -> Result<(), ConfigError> {
        if members == 0 || members > MAX_NODES {
            return Err(ConfigError::ClusterSize(members));
        }
        if self.election_timeout.start > self.election_timeout.end
            || self.election_timeout.start.is_zero()
        {
            return Err(ConfigError::ElectionTimeout);
        }
        if self.heartbeat_interval.is_zero()
            || self.heartbeat_interval >= self.election_timeout.start
        {
            return Err(ConfigError::Heartbeat);
        }
        if self.max_batch == 0 || self.max_batch_bytes == 0 {
            return Err(ConfigError::MaxBatch);
        }
        if self.max_inflight == 0 {
            return Err(ConfigError::MaxInflight);
        }
        if self.follower_reads && self.reads == ReadMode::Log {
            return Err(ConfigError::FollowerReadsWithoutReadIndex);
        }
        if self.reads == ReadMode::Lease {
            let election = self.election_timeout.start;
            match self.clock_drift {
                None => return Err(ConfigError::LeaseWithoutDriftBound),
                Some(drift) if drift >= election => {
                    return Err(ConfigError::DriftTooLarge { drift, election })
                }
                Some(_) => {}
            }
            if !self.check_quorum {
                return Err(ConfigError::LeaseWithoutCheckQuorum);
            }
        }
        if self.window == 0 {
            return Err(ConfigError::Window);
        }
        if self.max_uncommitted == 0 {
            return Err(ConfigError::MaxUncommitted);
        }
        if let Some(policy) = self.snapshots {
            if policy.every == 0 {
                return Err(ConfigError::SnapshotEvery);
            }
            if policy.chunk == 0 {
                return Err(ConfigError::SnapshotChunk);
            }
        }
        Ok(())
    }

    /// How long to arm the election timer. A follower that just heard from its leader under
    /// CheckQuorum (`in_lease`) waits exactly the minimum election timeout first: its lease
    /// ends there (diss. §4.2.3), and [`Config::election_rest`] is armed next. Anything else
    /// draws from the whole range.
    pub fn election_wait(&self, in_lease: bool) -> Range<Duration> {
        let min = self.election_timeout.start;
        if in_lease {
            min..min
        } else {
            self.election_timeout.clone()
        }
    }

    /// What is left of a randomized election timeout once the minimum has passed: the two
    /// armings together draw from the whole range.
    pub fn election_rest(&self) -> Range<Duration> {
        Duration::ZERO..self.election_timeout.end - self.election_timeout.start
    }

    /// How long a lease lasts on the leader's clock, from the moment it sent the round a
    /// majority acknowledged (diss. §6.4.1: "start + election timeout / clock drift bound").
    ///
    /// Why it is safe. Write `E` for `election_timeout.start`, `d` for [`Config::clock_drift`]
    /// and `ρ = d / E`: every clock runs at a rate within `[1 - ρ, 1 + ρ]` of real time. The
    /// leader sends the round at real time `t0`; a follower acknowledges it at `t1 >= t0` and
    /// arms its election timer for exactly `E` (its CheckQuorum lease, diss. §4.2.3), so it
    /// neither campaigns nor grants a vote before its own clock has advanced by `E`, at real
    /// time `t1 + E / (1 + ρ)` or later. No
    /// leader of a later term can be elected without a vote from one of the majority that
    /// acknowledged, so none exists before `t0 + E / (1 + ρ)`. The leader's clock advances by
    /// `L` in at most `L / (1 - ρ)` of real time, so it must hold `L / (1 - ρ) <= E / (1 + ρ)`:
    /// `L = E (1 - ρ) / (1 + ρ) = E (E - d) / (E + d)`, rounded down. `None` without a drift
    /// bound (no lease). Bug R15 uses `E` itself, as if clocks did not drift.
    pub fn lease(&self) -> Option<Duration> {
        let e = self.election_timeout.start.as_nanos();
        let d = self.clock_drift?.as_nanos();
        if d >= e {
            return None;
        }
        let nanos = e * (e - d) / (e + d);
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    /// Whether any bug is switched on (so that internal assertions, which a bug may break on
    /// purpose, give way to the checkers that are meant to catch it).
    #[inline(always)]
    pub fn any_bug(&self) -> bool {
        #[cfg(feature = "bug-zoo")]
        {
            !self.bugs.is_empty()
        }
        #[cfg(not(feature = "bug-zoo"))]
        {
            false
        }
    }

    /// Whether `bug` is switched on. Always `false` without the `bug-zoo` feature, so the
    /// buggy branches compile away.
    #[inline(always)]
    pub fn bug(&self, bug: crate::bugs::Bug) -> bool {
        #[cfg(feature = "bug-zoo")]
        {
            self.bugs.contains(bug)
        }
        #[cfg(not(feature = "bug-zoo"))]
        {
            let _ = bug;
            false
        }
    }
}

/// Test helper: each of `invariants` fails on exactly its own case of `cases` (listed in the
/// same order) and on no other, and passes on `ok`. `fails` runs one check on one case.
#[cfg(test)]
pub(crate) fn assert_each_flags_only_its_own<F, C>(
    invariants: &[Invariant<F>],
    cases: &[C],
    ok: &C,
    fails: impl Fn(&F, &C) -> bool,
) {
    assert_eq!(invariants.len(), cases.len(), "one case per invariant");
    for (i, inv) in invariants.iter().enumerate() {
        for (j, case) in cases.iter().enumerate() {
            assert_eq!(fails(&inv.check, case), i == j, "{} on case {j}", inv.name);
        }
        assert!(!fails(&inv.check, ok), "{} on the sound case", inv.name);
    }
}

/// The size of a majority of `n` nodes.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// A value fixed for a replica's lifetime (its configuration, its membership) that takes no
/// part in equality or hashing: every replica of a checked cluster shares it, so hashing it in
/// every explored state would only cost time.
#[derive(Clone, Debug)]
pub struct Fixed<T>(pub std::sync::Arc<T>);

impl<T> Fixed<T> {
    /// Wrap a value.
    pub fn new(value: T) -> Self {
        Fixed(std::sync::Arc::new(value))
    }
}

impl<T> std::ops::Deref for Fixed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> PartialEq for Fixed<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Fixed<T> {}
impl<T> Hash for Fixed<T> {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// For a protocol's fold test: the image `first` leaves, after `writes` folded
/// ([`Replica::fold_writes`]), and after them applied one by one
/// ([`Replica::apply_write_owned`]). A correct fold leaves the two equal, and no write behind.
#[cfg(test)]
pub(crate) fn folded_and_one_by_one<R: Replica<C>, C: Command>(
    first: Vec<R::Write>,
    writes: Vec<R::Write>,
) -> (R::Durable, R::Durable) {
    let mut image = R::Durable::default();
    for w in first {
        R::apply_write_owned(&mut image, w);
    }
    let mut one_by_one = image.clone();
    for w in writes.clone() {
        R::apply_write_owned(&mut one_by_one, w);
    }
    let mut writes = writes;
    R::fold_writes(&mut image, &mut writes);
    assert!(writes.is_empty(), "a fold drains its writes");
    (image, one_by_one)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_slice_and_commit_vec_report_consecutive_slots_in_order() {
        let mut out: Effects<(), (), (), u32> = Effects::new();
        let entries = [(7u64, 70u32), (8, 80)];
        out.commit_slice(4, &entries, |e| &e.1);
        out.commit_vec(6, vec![90, 100]);
        out.commit(9, 110);
        assert_eq!(
            out.commits().collect::<Vec<_>>(),
            vec![(4, &70), (5, &80), (6, &90), (7, &100), (9, &110)]
        );
        out.commit_slice(10, &entries[..0], |e| &e.1);
        out.commit_vec(10, Vec::new());
        assert_eq!(out.commits().count(), 5, "empty runs add nothing");
    }

    #[test]
    fn a_zero_uncommitted_cap_is_a_config_error_with_a_one_line_message() {
        let cfg = Config {
            max_uncommitted: 0,
            ..Config::default()
        };
        let err = cfg.validate(3).unwrap_err();
        assert_eq!(err, ConfigError::MaxUncommitted);
        assert!(!err.to_string().contains('\n'));
        let one = Config {
            max_uncommitted: 1,
            ..Config::default()
        };
        assert_eq!(one.validate(3), Ok(()));
    }

    #[test]
    fn admits_takes_what_fits_under_the_cap_and_nothing_past_it() {
        let cfg = Config {
            max_uncommitted: 5,
            ..Config::default()
        };
        assert_eq!(cfg.admits(0, 3), 3);
        assert_eq!(cfg.admits(3, 3), 2);
        assert_eq!(cfg.admits(5, 1), 0);
        // A new leader may inherit more than the cap (its commit point lags): it takes none.
        assert_eq!(cfg.admits(9, 4), 0);
    }

    /// A message takes entries while they fit `max_batch_bytes`, at most `max_batch` of
    /// them, and always the first: one entry too big for the bound goes alone.
    #[test]
    fn a_batch_is_cut_by_bytes_and_count_and_takes_at_least_one() {
        let cfg = Config {
            max_batch: 3,
            max_batch_bytes: 10,
            ..Config::default()
        };
        let len = |sizes: &[usize]| cfg.batch_len(sizes, |&b| b);
        assert_eq!(len(&[]), 0);
        assert_eq!(len(&[4, 4, 4]), 2, "4 + 4 fit 10, a third does not");
        assert_eq!(len(&[4, 6, 1]), 2, "exactly the bound fits");
        assert_eq!(len(&[1, 1, 1, 1]), 3, "max_batch");
        assert_eq!(len(&[50, 1]), 1, "too big alone still goes, alone");
        assert_eq!(len(&[0; 8]), 3, "commands of no size: the count alone");
        let cuts = |sizes: &[usize]| -> Vec<(usize, usize)> {
            cfg.batches(sizes, |&b| b)
                .into_iter()
                .map(|(at, b)| (at, b.len()))
                .collect()
        };
        assert_eq!(cuts(&[]), [(0, 0)], "one empty message for nothing");
        assert_eq!(cuts(&[4, 4, 4, 50, 1]), [(0, 2), (2, 1), (3, 1), (4, 1)]);
        let zero = Config {
            max_batch_bytes: 0,
            ..Config::default()
        };
        assert_eq!(zero.validate(3), Err(ConfigError::MaxBatch));
    }
}
