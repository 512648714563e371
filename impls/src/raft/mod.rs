//! Raft, as a deterministic sans-IO [`Replica`].
//!
//! Raft (Ongaro & Ousterhout, *In Search of an Understandable Consensus Algorithm*, USENIX ATC
//! 2014; section numbers below refer to that paper, "diss." to Ongaro's 2014 dissertation)
//! keeps a replicated log consistent by electing one leader per *term* and letting only the
//! leader append:
//!
//! * **Terms (§5.1).** Time is divided into numbered terms, each with at most one leader.
//!   Every message carries its sender's term; a replica that sees a higher term adopts it and
//!   becomes a follower, and a message from a lower term is refused.
//! * **Election (§5.2).** A follower that hears from no leader for an election timeout (drawn
//!   at random from a range so that candidates rarely collide) becomes a candidate, votes for
//!   itself, and asks the others for votes. A replica grants at most one vote per term, made
//!   durable before the reply. A majority of votes makes a leader.
//! * **Replication (§5.3).** The leader appends commands to its log and sends AppendEntries
//!   carrying the entries after `prevLogIndex` and the term of that entry. A follower accepts
//!   only if its log holds an entry at `prevLogIndex` with that term (the Log Matching
//!   property), deletes its entries from the *first conflicting one* on, and appends the new
//!   ones. On refusal the follower returns a conflict hint so the leader can skip back a whole
//!   term at a time instead of one entry per round trip (§5.3, "the protocol can be optimized").
//! * **Safety (§5.4).** A vote is granted only to a candidate whose log is at least as
//!   up-to-date as the voter's (last term first, then length; §5.4.1). A leader counts replicas
//!   to commit only entries of its own term; earlier entries commit indirectly with them
//!   (§5.4.2, Figure 8). A new leader appends a no-op of its term at once so that earlier
//!   entries commit without waiting for a client (diss. §6.4).
//! * **Persistence (Figure 2).** `currentTerm`, `votedFor` and the log are made durable (through
//!   [`Effect::Persist`](crate::Effect::Persist)) before any message that depends on them is
//!   sent; after a crash the replica boots from them. The commit index is volatile and is
//!   relearned from the leader.
//! * **PreVote (diss. §9.6).** Before raising its term a would-be candidate asks whether it
//!   could win; a replica cut off from the cluster therefore never inflates terms and deposes
//!   a healthy leader when it reconnects.
//! * **CheckQuorum (diss. §6.2).** A leader that has not heard from a majority within an
//!   election timeout steps down; a follower that heard from its leader within the minimum
//!   election timeout refuses to vote (a leader lease, diss. §4.2.3), so a partially
//!   connected node cannot disrupt.
//! * **Reads without the log (diss. §6.4).** With [`ReadMode::ReadIndex`](crate::ReadMode)
//!   a read is served at the leader's commit point once the leader has committed an entry of
//!   its term and a majority has confirmed it still leads; a follower may serve it too, at an
//!   index it asks the leader for, once it has applied that far (`read.rs`). With
//!   [`ReadMode::Lease`](crate::ReadMode) a leader whose lease holds (diss. §6.4.1,
//!   [`crate::lease`]) skips the majority's confirmation.
//!
//! * **Log compaction (§7, Figure 13).** The host snapshots its state machine up to a
//!   committed slot ([`Replica::compact`]); the replica keeps the snapshot (with the slot and
//!   term of its last entry) in place of the log up to it, and a leader sends it in chunks
//!   (InstallSnapshot) to a follower that needs entries it no longer holds (`snapshot.rs`).
//!
//! Replication is pipelined as in etcd/raft: a follower known to match is sent every new
//! entry at once (the leader optimistically advances `next`), up to
//! [`Config::max_inflight`] unacknowledged appends (`inflight.rs`); a follower whose position
//! is unknown is *probed* with one append at a time until it answers, the probe retried on
//! each heartbeat with at most one entry (`replication.rs`).

use std::cmp::{max, min};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bugs::Bug;
use crate::membership::{Change, ChangeId, Membership, NodeSet};
use crate::replica::Renaming;
use crate::replica::{
    ClusterCheck, Command, Config, Fixed, Invariant, NodeId, Out, ReadId, ReadMode, Replica, Role,
    Slot, Snapshot, Status, StepCheck,
};

/// The names of Raft's invariants, defined once: checkers, the bug zoo and the report
/// refer to these constants, so a misspelt name is a compile error, not an escaped bug.
pub mod names {
    /// "election safety"
    pub const ELECTION_SAFETY: &str = "election safety";
    /// "log matching"
    pub const LOG_MATCHING: &str = "log matching";
    /// "leader completeness"
    pub const LEADER_COMPLETENESS: &str = "leader completeness";
    /// "committed entries are on a quorum"
    pub const COMMITTED_ON_A_QUORUM: &str = "committed entries are on a quorum";
    /// "leadership goes only to a caught-up target"
    pub const TRANSFER_TO_CAUGHT_UP: &str = "leadership goes only to a caught-up target";
    pub use crate::replica::TERMS_NEVER_DECREASE;
    /// "one vote per term"
    pub const ONE_VOTE_PER_TERM: &str = "one vote per term";
    /// "committed entries never change"
    pub const COMMITTED_ENTRIES_NEVER_CHANGE: &str = "committed entries never change";
    /// "one configuration change at a time"
    pub const ONE_CHANGE_AT_A_TIME: &str = "one configuration change at a time";
}

mod confchange;
#[cfg(test)]
mod confchange_tests;
mod election;
mod fold;
mod inflight;
mod invariants;
mod read;
#[cfg(test)]
mod read_tests;
mod replication;
mod snapshot;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;

use confchange::{Handoff, PendingChange, Transfer};
use inflight::Inflights;
pub use snapshot::{Chunk, RaftSnapshot};
use snapshot::{Incoming, Sending};

pub use read::MAX_PENDING_READS;
use read::{FollowerReads, LeaderReads};

use invariants::{
    committed_on_a_quorum, committed_stable, election_safety, leader_completeness, log_matching,
    one_change_at_a_time, one_vote_per_term, term_monotonic, transfer_to_caught_up,
};

/// A log entry: a command, the no-op a leader appends when its term starts (`cmd` and
/// `config` both `None`), or a configuration (diss. §4.1: in force from the moment it is
/// appended, committed or not).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The command, or `None` for a no-op or a configuration.
    pub cmd: Option<C>,
    /// The configuration this entry installs, if it is a configuration entry.
    pub config: Option<Membership>,
}

impl<C> Entry<C> {
    /// A command entry.
    pub fn command(term: u64, cmd: C) -> Self {
        Entry {
            term,
            cmd: Some(cmd),
            config: None,
        }
    }

    /// A leader's no-op.
    pub fn noop(term: u64) -> Self {
        Entry {
            term,
            cmd: None,
            config: None,
        }
    }

    /// A configuration entry.
    pub fn configuration(term: u64, config: Membership) -> Self {
        Entry {
            term,
            cmd: None,
            config: Some(config),
        }
    }
}

/// Printed as `Entry { term, cmd }`, with `config` only on a configuration entry, so that a
/// trace of command entries reads as it always did.
impl<C: std::fmt::Debug> std::fmt::Debug for Entry<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Entry");
        d.field("term", &self.term);
        match &self.config {
            Some(config) => d.field("config", config),
            None => d.field("cmd", &self.cmd),
        };
        d.finish()
    }
}

/// A run of entries as appends and durable writes carry it: shared, not copied. A leader's
/// new batch goes to its own store and to every follower as one allocation (it was copied
/// once per follower: 3 copies of each entry at the leader, now 1 into its log), and a
/// follower's store keeps the message's. Whoever needs entries of its own (a log) clones
/// them out; a store folding its writes moves them out when it holds the last reference
/// (`fold.rs`). Equality, hashing and the encoding are the entries' own.
pub type Entries<C> = std::sync::Arc<Vec<Entry<C>>>;

/// Raft's messages (Figure 2, plus PreVote, the conflict hint and Figure 13's
/// InstallSnapshot).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftMsg<C> {
    /// RequestVote. With `pre_vote`, `term` is the term the sender *would* campaign in and
    /// nobody changes state on receiving it.
    RequestVote {
        /// The candidate's term (or, with `pre_vote`, the term it would campaign in).
        term: u64,
        /// The index of the candidate's last log entry (§5.4.1).
        last_index: Slot,
        /// The term of the candidate's last log entry (§5.4.1).
        last_term: u64,
        /// A PreVote question rather than a real request.
        pre_vote: bool,
    },
    /// Reply to RequestVote. For a granted pre-vote, `term` echoes the requested term.
    Vote {
        /// The voter's term (or the requested term, for a granted pre-vote).
        term: u64,
        /// Whether the vote (or pre-vote) was granted.
        granted: bool,
        /// Answers a pre-vote request.
        pre_vote: bool,
    },
    /// AppendEntries: `entries` follow slot `prev_index`, whose term is `prev_term`. Empty
    /// entries make a heartbeat.
    Append {
        /// The leader's term.
        term: u64,
        /// The slot just before `entries`.
        prev_index: Slot,
        /// The term of the leader's entry at `prev_index`.
        prev_term: u64,
        /// The entries from slot `prev_index + 1` on, shared ([`Entries`]).
        entries: Entries<C>,
        /// The leader's commit point.
        commit: Slot,
    },
    /// Reply to AppendEntries.
    AppendReply {
        /// The follower's term.
        term: u64,
        /// What the follower did with the append.
        result: AppendResult,
    },
    /// ReadIndex's leadership check (diss. §6.4): round `round` of the leader of `term`. A
    /// follower treats it as hearing from its leader, as an append.
    ReadConfirm {
        /// The leader's term.
        term: u64,
        /// The round, numbered within the leadership.
        round: u64,
    },
    /// Reply to ReadConfirm, echoing its round.
    ReadAck {
        /// The follower's term.
        term: u64,
        /// The round acknowledged.
        round: u64,
    },
    /// A follower asks its leader for a read index for reads `ids` (diss. §6.4, "followers
    /// could also help").
    ReadIndex {
        /// The follower's term.
        term: u64,
        /// The follower's number for this request, echoed in the answer.
        req: u64,
        /// The reads waiting for the answer.
        ids: Vec<ReadId>,
    },
    /// The leader's answer to ReadIndex: the read index for `ids`, or `None` if it cannot
    /// give one (not the leader, or too many reads pending).
    ReadIndexReply {
        /// The leader's term.
        term: u64,
        /// The request answered.
        req: u64,
        /// The reads answered.
        ids: Vec<ReadId>,
        /// The read index, or a refusal.
        index: Option<Slot>,
    },
    /// Leadership transfer (diss. §3.10): the leader tells its caught-up target to campaign
    /// at once, without waiting for its election timeout and without PreVote.
    TimeoutNow {
        /// The leader's term.
        term: u64,
    },
    /// RequestVote of a transfer's target (etcd-raft's `campaignTransfer`): voters that heard
    /// from the leader lately grant it all the same (CheckQuorum's lease does not refuse it:
    /// the leader asked for this election), with the usual up-to-date check (§5.4.1).
    TransferVote {
        /// The candidate's term.
        term: u64,
        /// The index of the candidate's last log entry.
        last_index: Slot,
        /// The term of the candidate's last log entry.
        last_term: u64,
    },
    /// InstallSnapshot (§7, Figure 13): bytes `offset..offset + data.len()` of the leader's
    /// snapshot up to `slot`. The follower answers a chunk with [`RaftMsg::SnapshotReply`],
    /// and the last one (`done`) with `AppendReply Ok { matched }` once installed. It treats
    /// every chunk as hearing from its leader, as an append.
    InstallSnapshot {
        /// The leader's term.
        term: u64,
        /// The snapshot's last included slot.
        slot: Slot,
        /// The term of the entry at `slot` (the last included term).
        last_term: u64,
        /// Where `data` starts in the snapshot's bytes.
        offset: u64,
        /// At most [`SnapshotPolicy::chunk`](crate::SnapshotPolicy::chunk) bytes.
        data: Chunk,
        /// The configuration in force at `slot` (the latest in the log it replaces).
        config: Membership,
        /// This chunk ends the snapshot.
        done: bool,
    },
    /// Reply to a chunk of InstallSnapshot: the follower holds the first `offset` bytes of
    /// the snapshot up to `slot`, and wants the chunk starting there (after a lost or
    /// reordered chunk, or a restart, that is where the leader resumes).
    SnapshotReply {
        /// The follower's term.
        term: u64,
        /// The snapshot's slot, as in the chunk answered.
        slot: Slot,
        /// The bytes the follower holds; the next chunk it wants starts here.
        offset: u64,
    },
}

impl<C> RaftMsg<C> {
    /// The term the message carries: its sender's current term, except that a pre-vote
    /// request carries the term its sender would campaign in and a granted pre-vote echoes it.
    pub(crate) fn term(&self) -> u64 {
        match self {
            RaftMsg::RequestVote { term, .. }
            | RaftMsg::Vote { term, .. }
            | RaftMsg::Append { term, .. }
            | RaftMsg::AppendReply { term, .. }
            | RaftMsg::ReadConfirm { term, .. }
            | RaftMsg::ReadAck { term, .. }
            | RaftMsg::ReadIndex { term, .. }
            | RaftMsg::ReadIndexReply { term, .. }
            | RaftMsg::InstallSnapshot { term, .. }
            | RaftMsg::SnapshotReply { term, .. }
            | RaftMsg::TimeoutNow { term }
            | RaftMsg::TransferVote { term, .. } => *term,
        }
    }

    /// A later term that the receiver does not adopt: PreVote asks about a term without
    /// entering it (diss. §9.6), and a grant of that question enters nothing either. A
    /// pre-vote *refusal* carries the refuser's real term, which is adopted.
    fn keeps_term(&self) -> bool {
        matches!(
            self,
            RaftMsg::RequestVote { pre_vote: true, .. }
                | RaftMsg::Vote {
                    pre_vote: true,
                    granted: true,
                    ..
                }
        )
    }
}

/// The outcome of an AppendEntries at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `matched`.
    Ok {
        /// The last slot known to match.
        matched: Slot,
    },
    /// The follower has no entry at `prev_index` with the leader's term there. The hint lets
    /// the leader skip back: `conflict_term` is the term the follower has at `prev_index` (if
    /// any) and `conflict_index` the first slot the follower holds of that term, or one past
    /// its last entry when its log is too short.
    Rejected {
        /// The `prev_index` of the refused append.
        prev_index: Slot,
        /// The follower's term at `prev_index`, if it has an entry there.
        conflict_term: Option<u64>,
        /// Where the leader may resume: see above.
        conflict_index: Slot,
    },
    /// The request came from a stale term.
    StaleTerm,
}

/// Raft's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftTimer {
    /// Followers and candidates: start an election; a follower that heard from its leader
    /// under CheckQuorum first ends its lease at the minimum election timeout and waits out
    /// the rest of its drawn timeout on a second arming. Leaders with CheckQuorum: check that
    /// a majority was heard from since the last firing.
    Election,
    /// Leaders: send heartbeats (and retransmit to lagging followers).
    Heartbeat,
    /// Leaders: a leadership transfer that has not finished within an election timeout is
    /// given up.
    Transfer,
}

/// What Raft keeps durable (Figure 2, "persistent state on all servers"; §7 the snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RaftDurable<C> {
    /// `currentTerm`.
    pub term: u64,
    /// `votedFor` in `term`.
    pub voted_for: Option<NodeId>,
    /// The log after the snapshot; `log[0]` is the slot after the snapshot's (slot 1 without
    /// one).
    pub log: Vec<Entry<C>>,
    /// The snapshot that replaced the log up to its slot (§7), if any.
    pub snapshot: Option<RaftSnapshot>,
}

impl<C> Default for RaftDurable<C> {
    fn default() -> Self {
        RaftDurable {
            term: 0,
            voted_for: None,
            log: Vec::new(),
            snapshot: None,
        }
    }
}

/// One durable write.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RaftWrite<C> {
    /// Set `currentTerm` and `votedFor`.
    HardState {
        /// `currentTerm`.
        term: u64,
        /// `votedFor` in `term`.
        voted_for: Option<NodeId>,
    },
    /// Delete every entry from slot `at` on, then append `entries` (the first at slot `at`).
    Append {
        /// The first slot written.
        at: Slot,
        /// The entries from slot `at` on, shared ([`Entries`]).
        entries: Entries<C>,
    },
    /// Replace the snapshot with this one (§7, Figure 13 steps 6-7): keep the log after its
    /// slot if the log holds its last entry with its term, else discard the whole log.
    Snapshot(RaftSnapshot),
}

/// The leader's view of one follower's log (Figure 2 `nextIndex`/`matchIndex`, plus the
/// etcd-style flow-control state of etcd-raft's `tracker.Progress`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Progress {
    /// Next slot to send.
    next: Slot,
    /// Highest slot known to match the leader's log.
    matched: Slot,
    /// Whether the follower is known to match at `next - 1`, so appends may be pipelined.
    replicating: bool,
    /// Probing and an append is outstanding: wait for its answer or the next heartbeat.
    paused: bool,
    /// Replicating: the appends sent and not yet acknowledged, at most
    /// [`Config::max_inflight`] (`inflight.rs`). Empty while probing.
    inflight: Inflights,
    /// Replicating: a heartbeat found appends in flight and no acknowledgement has advanced
    /// `matched` since. The next heartbeat that finds it so presumes them lost.
    stalled: bool,
    /// Sending the follower our snapshot (§7): no appends until it is installed.
    sending: Option<Sending>,
}

/// What a replica keeps only while it holds one role. Leaving a role drops that role's state
/// with it, so nothing stale survives into the next (a leader's progress in a follower, a
/// candidate's votes in a leader, a follower's lease in a candidate).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RoleState {
    /// Heard from a current leader within the minimum election timeout (the lease behind
    /// CheckQuorum's vote refusal, diss. §4.2.3).
    Follower { leader_alive: bool },
    /// PreVote round: the nodes that granted a pre-vote for `term + 1`.
    PreCandidate { votes: NodeSet },
    /// The nodes that granted their vote in this election.
    Candidate { votes: NodeSet },
    /// `active`: nodes heard from since the last CheckQuorum round.
    /// `progress`: by node id, for every member (this replica's own entry is unused).
    /// `reads`: ReadIndex rounds and the reads waiting on them (diss. §6.4), handed back when
    /// the leadership ends.
    /// `change`: the operator's change request whose configuration entry waits to commit.
    /// `transfer`: a leadership transfer under way (no proposals meanwhile).
    Leader {
        active: NodeSet,
        progress: Vec<Progress>,
        // Boxed: the enum is as large as its largest variant, and every follower's state (the
        // model checker copies each into many states) would carry the leader's reads inline.
        reads: Box<LeaderReads>,
        change: Option<PendingChange>,
        transfer: Option<Transfer>,
    },
}

impl RoleState {
    fn role(&self) -> Role {
        match self {
            RoleState::Follower { .. } => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader { .. } => Role::Leader,
        }
    }
}

/// A Raft replica carrying commands `C`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Raft<C> {
    id: NodeId,
    cfg: Fixed<Config>,
    /// The configuration the cluster was booted with: in force until the log or a snapshot
    /// holds a later one.
    initial: Membership,

    // Persistent state (mirrored to the host through `RaftWrite`s).
    term: u64,
    voted_for: Option<NodeId>,
    /// The entries after the snapshot: `log[0]` is slot `snap_index() + 1`.
    log: Vec<Entry<C>>,
    /// The snapshot in place of the log up to its slot (§7).
    snapshot: Option<RaftSnapshot>,

    // Volatile state.
    /// The latest configuration in the log, committed or not (diss. §4.1: "a server always
    /// uses the latest configuration in its log"), else the snapshot's, else `initial`;
    /// derived from those, kept here so that quorums need no log scan.
    config: Membership,
    /// The slot of the entry `config` came from (0: the snapshot's or the initial one).
    config_index: Slot,
    state: RoleState,
    leader: Option<NodeId>,
    commit: Slot,
    /// Reads served as a follower (diss. §6.4): asked of the leader, or waiting to apply.
    reads: FollowerReads,
    /// The local clock's reading at the current input ([`Replica::set_now`]; only leases
    /// use it).
    now: std::time::Duration,
    /// A snapshot the leader is sending us, in part (Figure 13; lost on a restart).
    incoming: Option<Incoming>,
    /// A transfer this replica handed its leadership to, waiting to hear from the target as
    /// leader of the term it campaigns in (then the operator is answered).
    handoff: Option<Handoff>,
}

impl<C: Command> Raft<C> {
    fn role(&self) -> Role {
        self.state.role()
    }

    fn is_leader(&self) -> bool {
        matches!(self.state, RoleState::Leader { .. })
    }

    /// A leader's view of member `node`.
    fn progress(&mut self, node: NodeId) -> &mut Progress {
        match &mut self.state {
            RoleState::Leader { progress, .. } => &mut progress[node.index()],
            _ => unreachable!("only a leader tracks progress"),
        }
    }

    /// Whether `node` may send us protocol messages: any node of the id space but us. A node
    /// outside our configuration may be a leader whose configuration adds us, or a removed
    /// server that has not learned it yet (its terms are what PreVote and CheckQuorum guard
    /// against, diss. §4.2.3).
    fn is_peer(&self, node: NodeId) -> bool {
        node != self.id && node.index() < crate::MAX_NODES
    }

    /// Just us.
    fn me(&self) -> NodeSet {
        NodeSet::of([self.id])
    }

    fn last_index(&self) -> Slot {
        self.snap_index() + self.log.len() as Slot
    }

    fn last_term(&self) -> u64 {
        self.log.last().map_or(self.snap_term(), |e| e.term)
    }

    /// The term of the entry at `index`; slot 0 has term 0, the snapshot's slot its last
    /// included term (§7). `None` past the end, and inside the snapshot.
    fn term_at(&self, index: Slot) -> Option<u64> {
        if index == self.snap_index() {
            Some(self.snap_term())
        } else {
            self.entry_at(index).map(|e| e.term)
        }
    }

    /// The members we replicate to (voters of both halves and learners), us excluded.
    fn peers(&self) -> impl Iterator<Item = NodeId> {
        let me = self.id;
        self.config.members().iter().filter(move |&m| m != me)
    }

    fn has_quorum(&self, acks: NodeSet) -> bool {
        self.config.has_quorum(acks)
    }

    /// Arm the election timer for a whole randomized election timeout, or, at a follower that
    /// just heard from its leader under CheckQuorum, for the *minimum* timeout only: that
    /// first firing ends the lease (so the follower votes for others from then on, diss.
    /// §4.2.3) and draws the rest ([`Raft::election_timer_fired`]). The total wait before a
    /// campaign is the same random draw either way.
    fn arm_election_timer(&self, out: &mut Out<Self, C>) {
        let after = self.cfg.election_wait(self.lease_runs_on_timer());
        out.set_timer(RaftTimer::Election, after);
    }

    fn persist_hard_state(&self, out: &mut Out<Self, C>) {
        out.persist(RaftWrite::HardState {
            term: self.term,
            voted_for: self.voted_for,
        });
    }
}

/// The image's log cut for an append of entries from slot `at` on: everything from `at` on
/// goes; returns how many of the append's first entries the image's snapshot already covers.
/// With the log-not-persisted bug the image can lack earlier entries; never panic on it, the
/// checkers are there to notice. Slots are absolute: the image's log starts after its
/// snapshot, and entries inside the snapshot are not written again.
fn truncate_for_append<C>(durable: &mut RaftDurable<C>, at: Slot) -> usize {
    let base = durable.snapshot.as_ref().map_or(0, |s| s.slot);
    durable
        .log
        .truncate(at.saturating_sub(1).saturating_sub(base) as usize);
    (base + 1).saturating_sub(at) as usize
}

impl<C: Command> Replica<C> for Raft<C> {
    type Msg = RaftMsg<C>;
    type Timer = RaftTimer;
    type Durable = RaftDurable<C>;
    type Write = RaftWrite<C>;

    const NAME: &'static str = "raft";

    fn boot(
        id: NodeId,
        members: &[NodeId],
        durable: Option<&RaftDurable<C>>,
        cfg: &Config,
        out: &mut Out<Self, C>,
    ) -> Self {
        assert!(
            id.index() < crate::MAX_NODES && members.iter().all(|m| m.index() < crate::MAX_NODES),
            "node ids are below {}",
            crate::MAX_NODES
        );
        let d = durable.cloned().unwrap_or_default();
        // Rule 7: a kept snapshot is the host's first effect, and everything in it is
        // committed (§7: the snapshot holds only committed entries).
        let commit = d.snapshot.as_ref().map_or(0, |s| s.slot);
        if let Some(s) = &d.snapshot {
            out.restore(s.snapshot());
        }
        let initial = Membership::voters(NodeSet::of(members.iter().copied()));
        let mut r = Raft {
            id,
            cfg: Fixed::new(cfg.clone()),
            initial,
            config: initial,
            config_index: 0,
            term: d.term,
            voted_for: d.voted_for,
            log: d.log,
            snapshot: d.snapshot,
            // With leases a restarted replica acts as if it had just heard from a leader: it
            // may have acknowledged a lease round before the crash, and must not help elect
            // anybody else until a whole election timeout has passed (diss. §6.4.1).
            state: RoleState::Follower {
                // B4: a restart forgets it.
                leader_alive: durable.is_some()
                    && cfg.reads == ReadMode::Lease
                    && !cfg.bug(Bug::RestartForgetsLease),
            },
            leader: None,
            commit,
            reads: FollowerReads::default(),
            now: std::time::Duration::ZERO,
            incoming: None,
            handoff: None,
        };
        r.config_from_log();
        r.arm_election_timer(out);
        r
    }

    fn on_message(&mut self, from: NodeId, msg: RaftMsg<C>, out: &mut Out<Self, C>) {
        if !self.is_peer(from) {
            return; // not a node of this cluster: ignore rather than trust it
        }
        // The term is checked once, here, as etcd-raft's `Step` does (§5.1): the handlers
        // below see messages of the current term, or a pre-vote's next term.
        let term = msg.term();
        if term > self.term {
            if let RaftMsg::RequestVote { pre_vote, .. } = msg {
                // M5: a vote request from a server outside our configuration is taken at its
                // term, lease or not.
                let outsider = !pre_vote
                    && !self.config.members().contains(from)
                    && self.cfg.bug(Bug::RemovedServerDisrupts);
                if self.in_lease() && !outsider {
                    // CheckQuorum's lease (diss. §4.2.3): while we hear from a live leader, a
                    // vote request is a disruption, not an election: refuse without adopting
                    // its term.
                    let term = self.term;
                    let refusal = RaftMsg::Vote {
                        term,
                        granted: false,
                        pre_vote,
                    };
                    return out.send(from, refusal);
                }
            }
            if !msg.keeps_term() {
                if self.role() != Role::Follower && self.cfg.bug(Bug::NoStepDown) {
                    return;
                }
                // A refusal or a reply from a later term ends a campaign or a leadership; an
                // append or a read round names the new term's leader.
                let leader = matches!(
                    msg,
                    RaftMsg::Append { .. }
                        | RaftMsg::ReadConfirm { .. }
                        | RaftMsg::InstallSnapshot { .. }
                        | RaftMsg::TimeoutNow { .. }
                )
                .then_some(from);
                self.become_follower(term, leader, out);
            }
        } else if term < self.term {
            // A stale request is refused with our term, so that its sender catches up (a
            // stale leader steps down); a stale reply answers nothing we still wait for.
            let term = self.term;
            let refusal = match msg {
                RaftMsg::RequestVote { pre_vote, .. } => RaftMsg::Vote {
                    term,
                    granted: false,
                    pre_vote,
                },
                RaftMsg::TransferVote { .. } => RaftMsg::Vote {
                    term,
                    granted: false,
                    pre_vote: false,
                },
                RaftMsg::Append { .. } | RaftMsg::InstallSnapshot { .. } => RaftMsg::AppendReply {
                    term,
                    result: AppendResult::StaleTerm,
                },
                RaftMsg::ReadConfirm { round, .. } => RaftMsg::ReadAck { term, round },
                RaftMsg::ReadIndex { req, ids, .. } => RaftMsg::ReadIndexReply {
                    term,
                    req,
                    ids,
                    index: None,
                },
                RaftMsg::Vote { .. }
                | RaftMsg::AppendReply { .. }
                | RaftMsg::ReadAck { .. }
                | RaftMsg::ReadIndexReply { .. }
                | RaftMsg::SnapshotReply { .. }
                | RaftMsg::TimeoutNow { .. } => return,
            };
            return out.send(from, refusal);
        }
        match msg {
            RaftMsg::RequestVote {
                term,
                last_index,
                last_term,
                pre_vote,
            } => self.on_request_vote(from, term, last_index, last_term, pre_vote, out),
            RaftMsg::Vote {
                term,
                granted,
                pre_vote,
            } => self.on_vote(from, term, granted, pre_vote, out),
            RaftMsg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.on_append(from, term, prev_index, prev_term, entries, commit, out),
            RaftMsg::AppendReply { result, .. } => self.on_append_reply(from, result, out),
            RaftMsg::ReadConfirm { term, round } => self.on_read_confirm(from, term, round, out),
            RaftMsg::ReadAck { round, .. } => self.on_read_ack(from, round, out),
            RaftMsg::ReadIndex { req, ids, .. } => self.on_read_index(from, req, ids, out),
            RaftMsg::ReadIndexReply {
                req, ids, index, ..
            } => self.on_read_index_reply(req, ids, index, out),
            RaftMsg::InstallSnapshot {
                term,
                slot,
                last_term,
                offset,
                data,
                done,
                config,
            } => self
                .on_install_snapshot(from, term, slot, last_term, offset, data, done, config, out),
            RaftMsg::SnapshotReply { slot, offset, .. } => {
                self.on_snapshot_reply(from, slot, offset, out)
            }
            RaftMsg::TimeoutNow { term } => self.on_timeout_now(from, term, out),
            RaftMsg::TransferVote {
                term,
                last_index,
                last_term,
            } => self.on_request_vote(from, term, last_index, last_term, false, out),
        }
    }

    fn on_timer(&mut self, timer: RaftTimer, out: &mut Out<Self, C>) {
        match (timer, self.role()) {
            (RaftTimer::Election, Role::Leader) => {
                // CheckQuorum (diss. §6.2): step down unless a majority answered lately.
                if !self.cfg.check_quorum {
                    return;
                }
                let (me, config) = (self.me(), self.config);
                let RoleState::Leader { active, .. } = &mut self.state else {
                    unreachable!("matched a leader")
                };
                if config.has_quorum(*active) {
                    *active = me;
                    self.arm_election_timer(out);
                } else {
                    let term = self.term;
                    self.become_follower(term, None, out);
                }
            }
            (RaftTimer::Election, _) => self.election_timer_fired(out),
            (RaftTimer::Heartbeat, Role::Leader) => {
                self.broadcast_sharing(true, None, out);
                if !self.renew_lease(out) {
                    self.resend_read_round(out);
                }
                out.set_timer(
                    RaftTimer::Heartbeat,
                    self.cfg.heartbeat_interval..self.cfg.heartbeat_interval,
                );
            }
            (RaftTimer::Heartbeat, _) => {} // a stale heartbeat timer of a deposed leader
            (RaftTimer::Transfer, Role::Leader) => self.transfer_timed_out(out),
            (RaftTimer::Transfer, _) => {}
        }
    }

    fn propose(&mut self, cmds: Vec<C>, out: &mut Out<Self, C>) {
        if !self.is_leader() {
            for cmd in cmds {
                out.redirect(cmd, self.leader);
            }
            return;
        }
        if let RoleState::Leader {
            transfer: Some(t), ..
        } = &self.state
        {
            // A transfer under way takes no proposals (diss. §3.10): the target is told to
            // campaign once its log matches ours, so ours must stop growing.
            let target = t.target;
            for cmd in cmds {
                out.redirect(cmd, Some(target));
            }
            return;
        }
        // Back-pressure (etcd-raft's MaxUncommittedEntriesSize, counted in entries): take
        // only as many as keep at most `max_uncommitted` entries above the commit point, and
        // hand the rest back busy (rule 3).
        let mut cmds = cmds;
        let held = self.last_index() - self.commit;
        if !self
            .cfg
            .admit(held, self.cfg.bug(Bug::RaftIgnoresCap), &mut cmds, out)
        {
            return;
        }
        let term = self.term;
        let sent = self.append_local(
            cmds.into_iter()
                .map(|cmd| Entry::command(term, cmd))
                .collect(),
            out,
        );
        self.broadcast_sharing(false, Some(sent), out);
        self.maybe_commit(out);
    }

    const READS: bool = true;

    fn read(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, C>) {
        self.read_ids(ids, out);
    }

    fn local_reads(&mut self) -> Option<crate::LocalReads> {
        self.local_read_permit()
    }

    const CHANGES: bool = true;

    fn change(&mut self, id: ChangeId, change: Change, out: &mut Out<Self, C>) {
        self.on_change(id, change, out);
    }

    const SNAPSHOTS: bool = true;

    fn compact(&mut self, snapshot: Snapshot, out: &mut Out<Self, C>) {
        self.compact_log(snapshot, out);
    }

    fn set_now(&mut self, now: std::time::Duration) {
        debug_assert!(now >= self.now, "a local clock never goes back");
        self.now = now;
    }

    fn status(&self) -> Status {
        Status {
            role: self.role(),
            term: self.term,
            leader: self.leader,
            commit: self.commit,
            last: self.last_index(),
            snapshot: self.snap_index(),
            config: self.config,
            uncommitted: if self.is_leader() {
                self.last_index() - self.commit
            } else {
                0
            },
        }
    }

    fn id(&self) -> NodeId {
        self.id
    }

    /// The committed entries the log holds: those after the snapshot (§7).
    fn committed(&self) -> BTreeMap<Slot, Option<C>> {
        let base = self.snap_index();
        // `min`: a buggy replica (bug zoo R6) can hold a commit point past its log.
        let held = min(self.commit.saturating_sub(base) as usize, self.log.len());
        self.log[..held]
            .iter()
            .enumerate()
            .map(|(i, e)| (base + i as Slot + 1, e.cmd.clone()))
            .collect()
    }

    fn apply_write(durable: &mut RaftDurable<C>, write: &RaftWrite<C>) {
        match write {
            RaftWrite::HardState { term, voted_for } => {
                durable.term = *term;
                durable.voted_for = *voted_for;
            }
            RaftWrite::Append { at, entries } => {
                let skip = truncate_for_append(durable, *at);
                durable.log.extend(entries.iter().skip(skip).cloned());
            }
            RaftWrite::Snapshot(snap) => snapshot::apply_snapshot(durable, snap),
        }
    }

    fn apply_write_owned(durable: &mut RaftDurable<C>, write: RaftWrite<C>) {
        match write {
            RaftWrite::Append { at, entries } => match Entries::try_unwrap(entries) {
                Ok(mut entries) => {
                    let skip = truncate_for_append(durable, at);
                    // Dropped in place, the rest moved in one copy (`extend` over a `skip`
                    // moved them one by one).
                    entries.drain(..skip.min(entries.len()));
                    durable.log.append(&mut entries);
                }
                // Shared: copy only the entries kept (what `apply_write` does).
                Err(entries) => Self::apply_write(durable, &RaftWrite::Append { at, entries }),
            },
            other => Self::apply_write(durable, &other),
        }
    }

    fn fold_writes(durable: &mut RaftDurable<C>, writes: &mut Vec<RaftWrite<C>>) {
        fold::fold(durable, writes);
    }

    fn cluster_invariants() -> Vec<Invariant<ClusterCheck<Self>>> {
        vec![
            Invariant {
                name: names::ELECTION_SAFETY,
                check: election_safety::<C>,
            },
            Invariant {
                name: names::LOG_MATCHING,
                check: log_matching::<C>,
            },
            Invariant {
                name: names::LEADER_COMPLETENESS,
                check: leader_completeness::<C>,
            },
            Invariant {
                name: names::COMMITTED_ON_A_QUORUM,
                check: committed_on_a_quorum::<C>,
            },
            Invariant {
                name: names::TRANSFER_TO_CAUGHT_UP,
                check: transfer_to_caught_up::<C>,
            },
        ]
    }

    fn step_invariants() -> Vec<Invariant<StepCheck<Self>>> {
        vec![
            Invariant {
                name: names::TERMS_NEVER_DECREASE,
                check: term_monotonic::<C>,
            },
            Invariant {
                name: names::ONE_VOTE_PER_TERM,
                check: one_vote_per_term::<C>,
            },
            Invariant {
                name: names::COMMITTED_ENTRIES_NEVER_CHANGE,
                check: committed_stable::<C>,
            },
            Invariant {
                name: names::ONE_CHANGE_AT_A_TIME,
                check: one_change_at_a_time::<C>,
            },
        ]
    }

    fn election_timer() -> RaftTimer {
        RaftTimer::Election
    }

    fn heartbeat_timer() -> RaftTimer {
        RaftTimer::Heartbeat
    }

    /// Requests are always answered; replies are acted on only in the term and role they
    /// answer, and terms only grow: a candidacy or a leadership left is never resumed in the
    /// same term (a new campaign takes a new term).
    fn obsolete(&self, from: NodeId, msg: &RaftMsg<C>) -> bool {
        if !self.is_peer(from) {
            return true;
        }
        match *msg {
            RaftMsg::RequestVote { .. }
            | RaftMsg::TransferVote { .. }
            | RaftMsg::Append { .. }
            | RaftMsg::ReadConfirm { .. }
            | RaftMsg::ReadIndex { .. }
            | RaftMsg::InstallSnapshot { .. } => false,
            // A request to campaign in a term we have left is answered by nothing.
            RaftMsg::TimeoutNow { term } => term < self.term,
            // A pre-vote reply counts only at `self.term + 1`, or steps us down when it is a
            // refusal from a later term: one at or below our term is dead. (A grant for
            // `self.term + 1` that finds us a follower is not: a later pre-campaign in the
            // same term counts it.)
            RaftMsg::Vote {
                term,
                pre_vote: true,
                ..
            } => term <= self.term,
            RaftMsg::Vote { term, .. } => {
                term < self.term || (term == self.term && self.role() != Role::Candidate)
            }
            RaftMsg::AppendReply { term, .. }
            | RaftMsg::ReadAck { term, .. }
            | RaftMsg::SnapshotReply { term, .. } => {
                term < self.term || (term == self.term && !self.is_leader())
            }
            // An answer serves only the request it names, while that request waits; requests
            // are numbered upwards, so one that no longer waits never will again.
            RaftMsg::ReadIndexReply { term, req, .. } => {
                term < self.term || (term == self.term && !self.reads.may_answer(req))
            }
        }
    }

    // Symmetry reduction: Raft treats every node alike, so renaming is exact. Its messages
    // carry no node ids (the sender is implied; read ids are the host's, not nodes').
    const RENAMES: bool = true;

    fn rename(&mut self, map: &Renaming) {
        self.id = map.id(self.id);
        self.voted_for = self.voted_for.map(|n| map.id(n));
        self.leader = self.leader.map(|n| map.id(n));
        self.initial = self.initial.renamed(map);
        self.config = self.config.renamed(map);
        rename_entries(&mut self.log, map);
        if let Some(s) = &mut self.snapshot {
            s.config = s.config.renamed(map);
        }
        match &mut self.state {
            RoleState::Follower { .. } => {}
            RoleState::PreCandidate { votes } | RoleState::Candidate { votes } => {
                *votes = votes.renamed(map);
            }
            RoleState::Leader {
                active,
                progress,
                reads,
                change: _,
                transfer,
            } => {
                *active = active.renamed(map);
                map.by_id(progress);
                reads.rename(map);
                if let Some(t) = transfer {
                    t.target = map.id(t.target);
                }
            }
        }
        if let Some(h) = &mut self.handoff {
            h.target = map.id(h.target);
        }
    }

    fn rename_msg(msg: &mut RaftMsg<C>, map: &Renaming) {
        match msg {
            // Copied only if a configuration in it names nodes (the copy is this message's).
            RaftMsg::Append { entries, .. } if entries.iter().any(|e| e.config.is_some()) => {
                rename_entries(Entries::make_mut(entries), map)
            }
            RaftMsg::InstallSnapshot { config, .. } => *config = config.renamed(map),
            _ => {}
        }
    }

    fn rename_durable(durable: &mut RaftDurable<C>, map: &Renaming) {
        durable.voted_for = durable.voted_for.map(|n| map.id(n));
        rename_entries(&mut durable.log, map);
        if let Some(s) = &mut durable.snapshot {
            s.config = s.config.renamed(map);
        }
    }
}

/// Rename the configurations inside `entries` (commands and no-ops name no node).
fn rename_entries<C>(entries: &mut [Entry<C>], map: &Renaming) {
    for e in entries {
        if let Some(c) = &mut e.config {
            *c = c.renamed(map);
        }
    }
}

/// Accessors for tests and checkers.
impl<C: Command> Raft<C> {
    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// Whom this replica voted for in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// The log after the snapshot; `log()[0]` is slot [`Raft::log_start`].
    pub fn log(&self) -> &[Entry<C>] {
        &self.log
    }
    /// The slot of `log()[0]`: one past the snapshot's (1 without one).
    pub fn log_start(&self) -> Slot {
        self.snap_index() + 1
    }
    /// The snapshot that replaced the log up to its slot (§7), if any.
    pub fn snapshot(&self) -> Option<&RaftSnapshot> {
        self.snapshot.as_ref()
    }
    /// The durable image this replica's writes have built, for hosts that want to compare.
    pub fn durable(&self) -> RaftDurable<C> {
        RaftDurable {
            term: self.term,
            voted_for: self.voted_for,
            log: self.log.clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}
