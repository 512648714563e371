//! Multi-Paxos, as a deterministic sans-IO [`Replica`].
//!
//! Every replica plays all three Paxos roles: proposer, acceptor and learner. The rules below
//! come from Lamport, *Paxos Made Simple* (2001; "PMS §") and van Renesse & Altinbuken,
//! *Paxos Made Moderately Complex* (ACM Computing Surveys 2015; "PMMC").
//!
//! * **Ballots (PMS §2.2, PMMC §2).** A ballot is a pair (round, node id), ordered by round
//!   first and node id second, so no two proposers ever use the same ballot. A proposer makes
//!   the round it tries durable before it uses it (`PaxosWrite::Tried`), so a restarted
//!   proposer never reuses a ballot either. [`Status::term`] is the highest round this replica
//!   tried or promised: it never decreases, even across restarts.
//! * **Acceptors (PMS §2.2, P1a; PMMC "Acceptor").** An acceptor *promises* a ballot `b` (phase
//!   1b) only if `b` is at least its current promise, and then refuses to accept anything below
//!   `b`. It accepts `(b, v)` for a slot (phase 2b) only if `b` is at least its promise. Both
//!   the promise and every acceptance are made durable (through `Persist` effects) before the
//!   reply that announces them is sent, so a crash-restart cannot make it go back on its word.
//! * **Phase 1 once per leadership (PMS §3, PMMC "Scout").** A would-be leader (a
//!   `Candidate`) sends one `Prepare` for *all* slots above its commit point. Each acceptor
//!   answers with every (ballot, value) it accepted in those slots (those above its snapshot:
//!   the ones inside it are chosen, and the promise says so; see [`snapshot`]), in chunks
//!   of at most `max_batch` slots, all sent at once; the candidate counts a promise once
//!   every chunk of it is in. With a quorum of promises
//!   the proposer re-proposes, slot by slot, the value with the highest ballot reported (PMS
//!   §2.2, P2c), and fills every remaining gap with a no-op (PMS §3) so later slots can be
//!   applied. It then leads (`Leader`).
//! * **Phase 2 per batch (PMS §3, PMMC "Commander").** A stable leader skips phase 1 for new
//!   slots: one `Accept` carries a batch of consecutive slots and one `Accepted` answers it, so
//!   a batch costs one round trip. A slot is chosen when a quorum accepted it in the leader's
//!   ballot; the leader tracks this with one bitmask per open slot.
//! * **Learning (PMS §2.3).** The leader's commit point (all slots up to it chosen) rides on
//!   every `Accept`, heartbeats included. An acceptor learns a slot chosen when its own
//!   acceptance there is from the same ballot as the leader's (a leader proposes one value
//!   per slot per ballot). A replica that lacks some slot (it missed messages or restarted)
//!   says it is *behind*, and the leader re-sends those slots at its ballot (or its snapshot,
//!   if it compacted some of them away; see [`snapshot`]): the values up to
//!   the commit point are chosen, so accepting them again at a later ballot is safe. A
//!   heartbeat names the leader's last slot: a replica answers it for every open slot it
//!   holds in the leader's ballot (an acknowledgement lost on the way is given again) and
//!   says it is behind when it lacks one (an `Accept` lost to every acceptor is re-sent).
//!   The leader cannot tell loss from delay, and one open slot stalls every later one.
//!   Replicas apply in slot order; no-ops take a slot but are not reported.
//! * **Catch-up flow control (not in PMS or PMMC; etcd-raft's `StateProbe` is the analogue).**
//!   A replica that is behind answers every `Accept` and heartbeat "behind" until it has
//!   caught up, so re-sending on each answer would send it overlapping batches, quadratic in
//!   the load. The leader keeps, per replica, the one catch-up batch (at most `max_batch`
//!   slots) on its way: the next goes only when an answer shows the replica holds this one
//!   (what it lacks starts past it); otherwise nothing is re-sent until the batch has been on
//!   its way for two heartbeats, when it is deemed lost and sent again from what the replica
//!   last said it lacks. A replica receiving a snapshot gets no batch: the chunks are their
//!   own flow, and the last one's acknowledgement sends the first batch above it. This state
//!   is the leadership's: a new leader starts with none.
//! * **Leader stability (PMMC §3, "leases"; as Raft's CheckQuorum).** The leader sends
//!   heartbeats. An acceptor that heard from a live leader within the minimum election
//!   timeout ignores `Prepare`s from anybody else (the minimum, as Raft's rule in diss.
//!   §4.2.3: were it each acceptor's own random timeout, the first candidate after a leader's
//!   crash would wait for the later of two timers), and a candidate that hears from a live leader
//!   backs off, so a replica that merely lost a heartbeat cannot depose a healthy leader.
//!   A candidate does not promise its own ballot until its phase 1 succeeded, so its own
//!   acceptor keeps serving the live leader meanwhile. A leader that has not heard from a
//!   quorum within an election timeout steps down; a dead leader is replaced when the
//!   followers' election timers fire. (All of this is liveness: safety holds whatever the
//!   timing.)
//!
//! * **Reads without the log ([`read`]).** A leader reads at the highest slot it proposed,
//!   once that slot is chosen and a quorum of acceptors confirmed its ballot after the read
//!   arrived (ReadIndex, Ongaro's dissertation §6.4, as a Paxos quorum read; *Paxos Made
//!   Live* §5.2); a follower asks the leader for that index and waits until it has applied
//!   it. The module docs of [`read`] give the safety argument.
//!
//! * **Snapshots ([`snapshot`]).** A host's snapshot replaces the log up to its slot; a
//!   replica that needs slots its leader compacted away gets the snapshot in chunks, and
//!   phase 1 never proposes in a slot some promiser holds only in its snapshot. The module
//!   docs of [`snapshot`] give the design and its safety argument.
//!
//! * **Reconfiguration ([`reconfig`]; PMS §3, last paragraphs: "α").** Voters and learners
//!   change through configuration commands in the log ([`Value::Config`]): one chosen in slot
//!   `s` decides the slots from `s + α` on ([`Config::window`]), so a slot's configuration is
//!   a function of the chosen slots α below it, and a leader proposes only within α of its
//!   commit point, where it knows them. Phase 1 and phase 2 for a slot count majorities of its
//!   configuration's voters; phase 1 follows the window onto new configurations; learners
//!   accept but never count. A leader can also hand its leadership to a caught-up voter
//!   ([`crate::Change::Transfer`]). The module docs of [`reconfig`] give the design and its
//!   safety argument.
//!
//! Bug-zoo switches P1 to P9 (../shared/BUGZOO.md; P7 to P9 are appended after it), the
//! snapshot bugs S5 and S6 and the reconfiguration bugs M7 and M8 are wired at the exact rule
//! they break.

use std::cmp::max;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bugs::Bug;
use crate::membership::{Change, ChangeError, ChangeId, Membership, NodeSet};
use crate::replica::Renaming;
use crate::replica::{
    ClusterCheck, Command, Config, Fixed, Invariant, NodeId, Out, ReadId, ReadMode, Replica, Role,
    Slot, Snapshot, Status, StepCheck, MAX_NODES,
};
use phase2::CatchUp;
use read::{ForwardedReads, LeaderReads};
pub use reconfig::Configs;
use reconfig::{Handoff, PendingChange};
pub use snapshot::Bytes;
use snapshot::{Incoming, Transfer};

/// The names of multi-Paxos's invariants, defined once: checkers, the bug zoo and the report
/// refer to these constants, so a misspelt name is a compile error, not an escaped bug.
pub mod names {
    /// "one value chosen per slot"
    pub const ONE_VALUE_PER_SLOT: &str = "one value chosen per slot";
    /// "accepted ballot at most promised"
    pub const ACCEPTED_AT_MOST_PROMISED: &str = "accepted ballot at most promised";
    /// "committed slots agree"
    pub const COMMITTED_SLOTS_AGREE: &str = "committed slots agree";
    pub use crate::replica::TERMS_NEVER_DECREASE;
    /// "promises never go back"
    pub const PROMISES_NEVER_GO_BACK: &str = "promises never go back";
    /// "committed slots never change"
    pub const COMMITTED_SLOTS_NEVER_CHANGE: &str = "committed slots never change";
    /// "replicas agree on each slot's configuration"
    pub const CONFIGURATIONS_AGREE: &str = "replicas agree on each slot's configuration";
    /// "leaders propose only within the window"
    pub const PROPOSALS_WITHIN_WINDOW: &str = "leaders propose only within the window";
}

mod fold;
mod invariants;
mod phase1;
mod phase2;
pub mod read;
#[cfg(test)]
mod read_tests;
pub mod reconfig;
#[cfg(test)]
mod reconfig_tests;
pub mod snapshot;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;

use invariants::{
    accepted_below_promise, committed_agree, committed_stable, configurations_agree,
    one_value_per_slot, promise_monotonic, proposals_within_window, term_monotonic,
};

/// A ballot: ordered by round, then node id (PMS §2.2: proposal numbers from disjoint sets).
/// `Ballot::ZERO` is below every real ballot (real rounds start at 1).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Ballot {
    /// The round.
    pub round: u64,
    /// The proposer that owns the ballot (the tiebreak).
    pub node: u8,
}

impl Ballot {
    /// Below every ballot a proposer uses.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };
}

/// What a slot holds: a client command, a no-op, or a configuration (see [`reconfig`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Value<C> {
    /// A no-op: fills a slot phase 1 found empty (PMS §3), or pads the window so that a
    /// chosen configuration takes effect (see [`reconfig`]). Takes a slot, reported to nobody.
    Noop,
    /// A client command.
    Cmd(C),
    /// A configuration: it decides the slots from [`Config::window`] slots after its own on.
    /// Takes a slot, reported to nobody (rule 2 of the effect contract: an internal entry).
    Config(Membership),
}

impl<C: Command> Value<C> {
    /// The bytes [`Config::max_batch_bytes`] counts: a command's, nothing for the rest.
    pub fn bytes(&self) -> usize {
        match self {
            Value::Cmd(c) => c.bytes(),
            Value::Noop | Value::Config(_) => 0,
        }
    }
}

/// The bytes [`Config::max_batch_bytes`] counts for a slot of a log: its value's, if any.
fn slot_bytes<C: Command>(slot: &Option<Entry<C>>) -> usize {
    slot.as_ref().map_or(0, |e| e.value.bytes())
}

impl<C> Value<C> {
    /// The client command, if this is one.
    pub fn cmd(&self) -> Option<&C> {
        match self {
            Value::Cmd(c) => Some(c),
            _ => None,
        }
    }

    /// The configuration, if this is one.
    pub fn config(&self) -> Option<Membership> {
        match self {
            Value::Config(m) => Some(*m),
            _ => None,
        }
    }

    /// The value with every node id renamed (only a configuration names nodes).
    fn renamed(&mut self, map: &Renaming) {
        if let Value::Config(m) = self {
            *m = m.renamed(map);
        }
    }
}

/// A command is `Some`, a no-op `None`: what a slot held before configurations.
impl<C> From<Option<C>> for Value<C> {
    fn from(cmd: Option<C>) -> Self {
        cmd.map_or(Value::Noop, Value::Cmd)
    }
}

/// Printed as the `Option<C>` it generalises (a command `Some(cmd)`, a no-op `None`), a
/// configuration as `Config(..)`: traces without configurations read as they always did.
impl<C: std::fmt::Debug> std::fmt::Debug for Value<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Noop => f.write_str("None"),
            Value::Cmd(c) => f.debug_tuple("Some").field(c).finish(),
            Value::Config(m) => write!(f, "Config({m})"),
        }
    }
}

/// What an acceptor accepted in one slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    /// The ballot the value was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub value: Value<C>,
}

/// A run of values as accepts and durable writes carry it: shared, not copied. A leader's
/// new run goes to its own store and to every acceptor as one allocation (it was copied for
/// the write, for the send, and again per acceptor), and an acceptor's store keeps the
/// message's. Whoever needs values of its own (a log) clones them out; a store folding its
/// writes skips those a later snapshot drops ([`Replica::fold_writes`]). Equality, hashing
/// and the encoding are the values' own.
pub type Values<C> = std::sync::Arc<Vec<Value<C>>>;

/// Multi-Paxos messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PaxosMsg<C> {
    /// Phase 1a for every slot from `from` on.
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The first slot phase 1 covers.
        from: Slot,
    },
    /// Phase 1b: the promise, or one chunk of it: what the acceptor accepted in slots
    /// `from..from + accepted.len()` (`None`: nothing accepted in that slot), at most
    /// `max_batch` slots. The chunks of one promise report `start..end` between them.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The first slot of this chunk.
        from: Slot,
        /// What the acceptor accepted, per slot from `from` on.
        accepted: Vec<Option<Entry<C>>>,
        /// The first slot the promise reports: the prepare's `from`, or one past the
        /// acceptor's snapshot if that is higher. Every slot from the prepare's `from` up to
        /// here is chosen and held in that snapshot, so it is *not* empty (see [`snapshot`]).
        start: Slot,
        /// One past the acceptor's last slot: the promise is whole once every slot of
        /// `start..end` has been reported.
        end: Slot,
    },
    /// Phase 2a for slots `first..first + cmds.len()`, carrying the leader's commit point.
    /// With no `cmds` it is a heartbeat.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot of the first command (for a heartbeat: one past the leader's last slot).
        first: Slot,
        /// The values, shared ([`Values`]).
        cmds: Values<C>,
        /// The leader's commit point.
        commit: Slot,
    },
    /// Phase 2b for slots `first..=upto` (none if `upto < first`). `commit` is the acceptor's
    /// commit point; `behind` says it could not learn up to the leader's.
    Accepted {
        /// The ballot accepted in.
        ballot: Ballot,
        /// The first slot acknowledged.
        first: Slot,
        /// The last slot acknowledged.
        upto: Slot,
        /// The acceptor's commit point.
        commit: Slot,
        /// The acceptor lacks chosen or open slots the leader should re-send.
        behind: bool,
    },
    /// Refusal: the acceptor promised `promised`, above `ballot`.
    Nack {
        /// The refused ballot.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
    /// A leader asks whether any acceptor promised above its ballot, for reads that arrived
    /// before this round (see [`read`]). Refused with a `Nack`.
    ReadConfirm {
        /// The leader's ballot.
        ballot: Ballot,
        /// The round: grows within the ballot.
        round: u64,
    },
    /// A piece of a snapshot: bytes `offset..offset + data.len()` of the snapshot at `slot`,
    /// `total` bytes long. A leader sends it to a replica that needs slots it compacted away;
    /// an acceptor sends it to the candidate it promised, when that candidate asks for it
    /// (see [`snapshot`]).
    Snapshot {
        /// The leader's ballot, or the candidate's that asked.
        ballot: Ballot,
        /// The snapshot's slot.
        slot: Slot,
        /// Where `data` starts in the snapshot.
        offset: u64,
        /// The snapshot's size in bytes.
        total: u64,
        /// At most [`crate::SnapshotPolicy::chunk`] bytes.
        data: Bytes,
        /// The configurations of the slots above `slot`, as far as the snapshot decides them
        /// (see [`reconfig`]).
        configs: Configs,
    },
    /// The receiver holds the first `offset` bytes of the snapshot at `slot` (all of it, or
    /// it needs it no more, when `offset` is its size): send the chunk from there. A
    /// candidate asks a promiser for its snapshot this way (`offset` 0).
    SnapshotAck {
        /// The ballot of the chunk answered (or of the asking candidate).
        ballot: Ballot,
        /// The snapshot's slot.
        slot: Slot,
        /// The bytes held so far.
        offset: u64,
    },
    /// The acceptor has promised nothing above `ballot` (answering `round`).
    ReadConfirmed {
        /// The confirmed ballot.
        ballot: Ballot,
        /// The round answered.
        round: u64,
    },
    /// Phase 1a from a leader, for its ballot, to a voter of a configuration its window
    /// reached (see [`reconfig`]): as `Prepare`, answered with `LatePromise`.
    LatePrepare {
        /// The leader's ballot.
        ballot: Ballot,
        /// The first slot the leader has not proposed.
        from: Slot,
    },
    /// Phase 1b answering a `LatePrepare`: as `Promise` (in chunks, the same fields).
    LatePromise {
        /// The ballot promised.
        ballot: Ballot,
        /// The first slot of this chunk.
        from: Slot,
        /// What the acceptor accepted, per slot from `from` on.
        accepted: Vec<Option<Entry<C>>>,
        /// The first slot the promise reports.
        start: Slot,
        /// One past the acceptor's last slot.
        end: Slot,
    },
    /// The leader hands the leadership over (see [`reconfig`]): "run phase 1 now". Acted
    /// on only by a voter that follows that leader in `ballot`.
    Handoff {
        /// The leader's ballot.
        ballot: Ballot,
    },
    /// Phase 1a from a proposer the leader of ballot `by` handed the leadership to: as
    /// `Prepare`, and it passes the lease of an acceptor that follows that leader (who gave
    /// its lease up when it handed over).
    HandoffPrepare {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The first slot phase 1 covers.
        from: Slot,
        /// The ballot of the leader that handed over.
        by: Ballot,
    },
    /// A follower asks the leader for the read index of its reads `ids`.
    AskReadIndex {
        /// The follower's number for this request (per incarnation).
        seq: u64,
        /// The follower's read ids.
        ids: Vec<ReadId>,
    },
    /// The leader's answer: reads `ids` may be served once `index` is applied (`None`: they
    /// cannot be served through this replica).
    ReadIndex {
        /// The request's number.
        seq: u64,
        /// The request's read ids.
        ids: Vec<ReadId>,
        /// The read index, chosen and confirmed; or a refusal.
        index: Option<Slot>,
    },
}

/// Multi-Paxos timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PaxosTimer {
    /// Non-leaders: start phase 1; a follower that heard from its leader under CheckQuorum
    /// first ends its lease at the minimum election timeout and waits out the rest of its
    /// drawn timeout on a second arming. Leaders: check that a quorum was heard from lately.
    Election,
    /// Leaders: send heartbeats (and the commit point).
    Heartbeat,
}

/// What a multi-Paxos replica keeps durable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaxosDurable<C> {
    /// The acceptor's promise.
    pub promised: Ballot,
    /// The highest round this proposer tried.
    pub tried: u64,
    /// The host's latest snapshot: every slot up to its slot is chosen and applied in it.
    pub snapshot: Option<Snapshot>,
    /// Accepted values of the slots above the snapshot; `log[0]` is the slot after it.
    pub log: Vec<Option<Entry<C>>>,
    /// The configurations of the slots above the snapshot, as far as this replica learned
    /// them (empty: the boot configuration; see [`reconfig`]).
    pub configs: Configs,
}

impl<C> Default for PaxosDurable<C> {
    fn default() -> Self {
        PaxosDurable {
            promised: Ballot::ZERO,
            tried: 0,
            snapshot: None,
            log: Vec::new(),
            configs: Configs::default(),
        }
    }
}

/// One durable write.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaxosWrite<C> {
    /// Raise the promise to this ballot.
    Promise(Ballot),
    /// This proposer is about to try this round.
    Tried(u64),
    /// Accept `cmds` at `ballot` in slots `first..` (raising the promise to `ballot` if lower).
    Accept {
        /// The ballot accepted in.
        ballot: Ballot,
        /// The slot of the first value.
        first: Slot,
        /// The values, shared ([`Values`]).
        cmds: Values<C>,
    },
    /// A configuration command was learned chosen: these are the configurations from then
    /// on (kept unless those kept already reach as far).
    Configs(Configs),
    /// Keep this snapshot in place of the log up to its slot (and every accepted value above
    /// it), and `configs` as the configurations above it (unless those kept reach further),
    /// unless the snapshot kept is at least as recent.
    Snapshot {
        /// The host's snapshot.
        snapshot: Snapshot,
        /// The configurations of the slots above it (see [`reconfig`]).
        configs: Configs,
    },
}

/// As derived, except that a snapshot's bytes print as (escaped) text, as the driver's are.
impl<C: std::fmt::Debug> std::fmt::Debug for PaxosWrite<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaxosWrite::Promise(b) => f.debug_tuple("Promise").field(b).finish(),
            PaxosWrite::Tried(r) => f.debug_tuple("Tried").field(r).finish(),
            PaxosWrite::Configs(c) => f.debug_tuple("Configs").field(c).finish(),
            PaxosWrite::Accept {
                ballot,
                first,
                cmds,
            } => f
                .debug_struct("Accept")
                .field("ballot", ballot)
                .field("first", first)
                .field("cmds", cmds)
                .finish(),
            PaxosWrite::Snapshot {
                snapshot: s,
                configs,
            } => write!(
                f,
                "Snapshot {{ slot: {}, data: {:?}, configs: {configs:?} }}",
                s.slot,
                Bytes(s.data.clone())
            ),
        }
    }
}

/// What a replica keeps only while it holds one role. Leaving a role drops that role's state
/// with it, so nothing stale survives into the next, and each node set means one thing.
// One per replica, cloned with it (the model checker clones states all the time): boxing the
// leader's fields would cost an allocation per clone to save a few hundred bytes of copying.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RoleState<C> {
    /// Heard from a live leader within the minimum election timeout (the lease).
    Follower { leader_alive: bool },
    /// Running phase 1: `promises` is the set of nodes whose whole promise (every chunk)
    /// arrived for our ballot (us included); phase 1 covers slots from `p1_from` on (commit + 1 when
    /// it started); `recovered` holds the highest-ballot acceptance reported per slot from
    /// `p1_from` on. `reach`: the highest snapshot a promiser reported above `p1_from - 1`,
    /// and who holds it: every slot up to it is chosen, and the candidate leads only once its
    /// commit point covers it (it asks that promiser for the snapshot; see [`snapshot`]).
    /// `heard`: by node id, the slots its promise chunks reported so far, as sorted,
    /// disjoint, non-adjacent ranges.
    Candidate {
        promises: NodeSet,
        p1_from: Slot,
        recovered: Vec<Option<Entry<C>>>,
        reach: Option<(Slot, NodeId)>,
        heard: Vec<Vec<(Slot, Slot)>>,
    },
    /// `heard`: the nodes heard from since the last CheckQuorum round. `acks`: the nodes
    /// that accepted each open slot `commit + 1 ..= proposed()` in our ballot. `reads`: the
    /// reads this leadership serves (they cannot outlive it). `transfers`: by node id, the
    /// snapshot on its way to that node, if any. `catch_up`: by node id, the catch-up batch
    /// on its way to that node, if any (one at a time; see [`CatchUp`]). `progress`: by node id, the slot up to which
    /// it reported holding every value (chosen, or ours), kept for learners and a transfer's
    /// target only (a promotion or a transfer waits for them to catch up).
    ///
    /// Phase 1 goes on while we lead, for configurations that come into the window (see
    /// [`reconfig`]): `covered` holds the configurations a majority of whose voters promised
    /// our ballot in the phase 1 that elected us (those promises cover every later slot),
    /// `promises` the nodes whose `LatePromise` arrived since (us included), `p1_heard` (by
    /// node id) the slots their chunks reported, `asked` the nodes we sent a `LatePrepare`
    /// since the last heartbeat. (Not the electing promises themselves: the model checker
    /// would tell apart leaders elected by different majorities for nothing.) `backlog` holds what phase 1 recovered for
    /// the slots from `proposed() + 1` on, not yet re-proposed (the window stopped it),
    /// `queue` the values waiting behind it. `change` is the operator's change in progress,
    /// `handoff` a leadership transfer.
    Leader {
        heard: NodeSet,
        acks: Vec<NodeSet>,
        // Boxed, as `handed_back` is: the enum is as large as its largest variant, and every
        // follower's and candidate's state (the model checker copies each into many states)
        // would carry the leader's reads inline.
        reads: Box<LeaderReads>,
        transfers: Vec<Option<Transfer>>,
        catch_up: Vec<Option<CatchUp>>,
        progress: Vec<Slot>,
        covered: Vec<Membership>,
        promises: NodeSet,
        p1_heard: Vec<Vec<(Slot, Slot)>>,
        asked: NodeSet,
        backlog: Vec<Option<Entry<C>>>,
        queue: std::collections::VecDeque<Value<C>>,
        change: Option<PendingChange>,
        handoff: Option<Handoff>,
    },
}

impl<C> RoleState<C> {
    fn role(&self) -> Role {
        match self {
            RoleState::Follower { .. } => Role::Follower,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader { .. } => Role::Leader,
        }
    }
}

/// A multi-Paxos replica carrying commands `C`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultiPaxos<C> {
    id: NodeId,
    cfg: Fixed<Config>,
    /// The configuration the cluster was booted with (its voters): it decides every slot
    /// until a chosen configuration takes over (see [`reconfig`]).
    initial: Membership,
    /// Which configuration decides each slot above the snapshot, as far as the chosen slots
    /// up to the commit point decide it (see [`reconfig`]). Durable with the snapshot; the
    /// rest is learned again with the commit point.
    configs: Configs,

    // Durable (mirrored through `PaxosWrite`s).
    promised: Ballot,
    tried: u64,
    /// The latest snapshot: `log[0]` is the slot after it (see [`snapshot`]).
    snapshot: Option<Snapshot>,
    log: Vec<Option<Entry<C>>>,

    // Volatile.
    state: RoleState<C>,
    /// A snapshot arriving in chunks (lost with a crash: the sender starts it over).
    incoming: Option<Incoming>,
    leader: Option<NodeId>,
    /// Every slot up to here is chosen and holds the chosen value.
    commit: Slot,
    /// The ballot this proposer runs (candidates and leaders) or ran last: kept after it
    /// leaves the role, so that answers to that ballot are known to be obsolete.
    ballot: Ballot,
    /// Reads served through a leader's read index.
    forwarded: ForwardedReads,
    /// What a leadership held for others (reads, queued commands, a change or transfer
    /// request), between its step-down and the end of that step, when it is handed back:
    /// after every write of the step, so that no message leaves before a promise the same
    /// step raised is durable (always `None` between steps, so boxed: inline it made every
    /// replica state 200 bytes larger for nothing).
    handed_back: Option<Box<reconfig::HandedBack<C>>>,
    /// The local clock's reading at the current input ([`Replica::set_now`]; only leases
    /// use it).
    now: std::time::Duration,
}

impl<C: Command> MultiPaxos<C> {
    fn role(&self) -> Role {
        self.state.role()
    }

    fn is_leader(&self) -> bool {
        matches!(self.state, RoleState::Leader { .. })
    }

    /// The nodes that accepted each of a leader's open slots.
    fn acks(&mut self) -> &mut Vec<NodeSet> {
        match &mut self.state {
            RoleState::Leader { acks, .. } => acks,
            _ => unreachable!("only a leader counts acceptances"),
        }
    }

    /// Whether `node` may send us protocol messages: any node of the id space but us. A node
    /// outside our configuration may be a leader whose configuration adds us, or a removed
    /// one that has not learned it yet: what it says is judged by ballots, like anyone's.
    fn is_peer(&self, node: NodeId) -> bool {
        node != self.id && node.index() < MAX_NODES
    }

    /// Just us.
    fn me(&self) -> NodeSet {
        NodeSet::of([self.id])
    }

    /// Leader: the values it holds that are not chosen yet, as [`Config::max_uncommitted`]
    /// counts them: its open slots, what phase 1 recovered and it has not re-proposed, and
    /// its queue. 0 at any other role.
    fn uncommitted(&self) -> u64 {
        match &self.state {
            RoleState::Leader {
                acks,
                backlog,
                queue,
                ..
            } => (acks.len() + backlog.len() + queue.len()) as u64,
            _ => 0,
        }
    }

    fn last(&self) -> Slot {
        self.base() + self.log.len() as Slot
    }

    /// The nodes we replicate to (voters and learners of every configuration that may
    /// decide a slot above the commit point; see [`reconfig`]), us excluded.
    fn peers(&self) -> impl Iterator<Item = NodeId> {
        self.audience().iter()
    }

    /// Whether the promises or acceptances of `acks` decide in `config`: a majority of its
    /// voters (learners never count).
    fn decides(&self, config: &Membership, acks: NodeSet) -> bool {
        if self.cfg.bug(Bug::ChosenWithoutQuorum) {
            // P4: one acceptance too few.
            let voters = config.voters;
            return voters.intersection(acks).len() + 1 >= crate::quorum(voters.len());
        }
        config.has_quorum(acks)
    }

    /// Arm the election timer for a whole randomized election timeout, or, at a follower in
    /// its lease under CheckQuorum, for the minimum only: that firing ends the lease and draws
    /// the rest ([`MultiPaxos::election_timer_fired`]), the same total wait.
    fn arm_election_timer(&self, out: &mut Out<Self, C>) {
        let after = self.cfg.election_wait(self.lease_runs_on_timer());
        out.set_timer(PaxosTimer::Election, after);
    }

    /// Does the election timer measure the lease (a follower under CheckQuorum that heard
    /// from its leader)?
    fn lease_runs_on_timer(&self) -> bool {
        self.cfg.check_quorum && matches!(self.state, RoleState::Follower { leader_alive: true })
    }

    /// The election timer fired at a non-leader. A follower still in its lease has not heard
    /// from its leader for the minimum election timeout: the lease ends here, so its acceptor
    /// promises to other proposers from now on, and it waits the rest of its drawn timeout
    /// before it runs phase 1 itself. Leader leases assume exactly this minimum (diss.
    /// §6.4.1). Anything else campaigns.
    fn election_timer_fired(&mut self, out: &mut Out<Self, C>) {
        if !self.lease_runs_on_timer() {
            return self.campaign(out);
        }
        self.state = RoleState::Follower {
            leader_alive: false,
        };
        out.set_timer(PaxosTimer::Election, self.cfg.election_rest());
    }

    fn arm_heartbeat(&self, out: &mut Out<Self, C>) {
        out.set_timer(
            PaxosTimer::Heartbeat,
            self.cfg.heartbeat_interval..self.cfg.heartbeat_interval,
        );
    }
}

impl<C: Command> MultiPaxos<C> {
    /// `on_message` after its sender check, before the reads a step-down handed back go out.
    fn step_message(&mut self, from: NodeId, msg: PaxosMsg<C>, out: &mut Out<Self, C>) {
        match msg {
            PaxosMsg::Prepare {
                ballot,
                from: first,
            } => self.on_prepare(from, ballot, first, None, false, out),
            PaxosMsg::HandoffPrepare {
                ballot,
                from: first,
                by,
            } => self.on_prepare(from, ballot, first, Some(by), false, out),
            PaxosMsg::LatePrepare {
                ballot,
                from: first,
            } => self.on_prepare(from, ballot, first, None, true, out),
            PaxosMsg::LatePromise {
                ballot,
                from: first,
                accepted,
                start,
                end,
            } => self.on_late_promise(from, ballot, first, accepted, start..end, out),
            PaxosMsg::Handoff { ballot } => self.on_handoff(from, ballot, out),
            PaxosMsg::Promise {
                ballot,
                from: first,
                accepted,
                start,
                end,
            } => self.on_promise(from, ballot, first, accepted, start..end, out),
            PaxosMsg::Accept {
                ballot,
                first,
                cmds,
                commit,
            } => self.on_accept(from, ballot, first, cmds, commit, out),
            PaxosMsg::Accepted {
                ballot,
                first,
                upto,
                commit,
                behind,
            } => self.on_accepted(from, ballot, first, upto, commit, behind, out),
            PaxosMsg::Nack { ballot, promised } => self.on_nack(ballot, promised, out),
            PaxosMsg::ReadConfirm { ballot, round } => {
                self.on_read_confirm(from, ballot, round, out)
            }
            PaxosMsg::ReadConfirmed { ballot, round } => {
                self.on_read_confirmed(from, ballot, round, out)
            }
            PaxosMsg::Snapshot {
                ballot,
                slot,
                offset,
                total,
                data,
                configs,
            } => self.on_snapshot_chunk(from, ballot, slot, offset, total, data, configs, out),
            PaxosMsg::SnapshotAck {
                ballot,
                slot,
                offset,
            } => self.on_snapshot_ack(from, ballot, slot, offset, out),
            PaxosMsg::AskReadIndex { seq, ids } => self.on_ask_read_index(from, seq, ids, out),
            PaxosMsg::ReadIndex { seq, ids, index } => {
                self.on_read_index(from, seq, ids, index, out)
            }
        }
        self.drop_stale_asks(out);
    }

    /// `on_timer`, before the reads a step-down handed back go out.
    fn step_timer(&mut self, timer: PaxosTimer, out: &mut Out<Self, C>) {
        match (timer, self.role()) {
            (PaxosTimer::Election, Role::Leader) => {
                // A leadership transfer not done within an election timeout is given up.
                self.handoff_timed_out(out);
                if !self.cfg.check_quorum {
                    return;
                }
                // Step down unless a quorum (of every configuration that may decide a slot
                // above the commit point) answered since the last check.
                let (me, ahead) = (self.me(), self.ahead());
                let RoleState::Leader { heard, .. } = &mut self.state else {
                    unreachable!("matched a leader")
                };
                if ahead.iter().all(|c| c.has_quorum(*heard)) {
                    *heard = me;
                    self.arm_election_timer(out);
                } else {
                    self.step_down(None, out);
                }
            }
            (PaxosTimer::Election, _) => self.election_timer_fired(out),
            (PaxosTimer::Heartbeat, Role::Leader) => {
                self.broadcast_accept(self.proposed() + 1, Values::default(), out);
                self.resend_quiet_chunks(out);
                self.resend_lost_batches(out);
                if !self.renew_lease(out) {
                    self.reconfirm_reads(out);
                }
                self.arm_heartbeat(out);
                self.heartbeat_progress(out);
            }
            (PaxosTimer::Heartbeat, _) => {}
        }
        self.drop_stale_asks(out);
    }

    /// Hand back what a leadership this step ended held, after everything else the step
    /// emitted (see `handed_back`).
    fn flush_handed_back(&mut self, out: &mut Out<Self, C>) {
        if let Some(h) = self.handed_back.take() {
            self.hand_back(*h, out);
        }
    }
}

/// An accept of `len` values from slot `first` at `ballot`, applied to a durable image: the
/// promise raised to the ballot and the log grown to hold the values; returns how many of the
/// first values the image's snapshot covers (skipped: those slots are chosen and kept there,
/// a replica never writes them) and the log index the rest start at.
fn accept_room<C>(
    durable: &mut PaxosDurable<C>,
    ballot: Ballot,
    first: Slot,
    len: usize,
) -> (usize, usize) {
    durable.promised = max(durable.promised, ballot);
    let base = durable.snapshot.as_ref().map_or(0, |s| s.slot);
    let skip = (base + 1).saturating_sub(first).min(len as Slot) as usize;
    if skip == len {
        // Every value inside the snapshot: nothing to place (and no index to start at).
        return (skip, 0);
    }
    let start = (first + skip as Slot - base - 1) as usize;
    if durable.log.len() < start + len - skip {
        durable.log.resize_with(start + len - skip, || None);
    }
    (skip, start)
}

/// Accept copies of `values` at `ballot` in slots from `first` on (those the image's snapshot
/// covers skipped: see [`accept_room`]).
fn place<C: Clone>(
    durable: &mut PaxosDurable<C>,
    ballot: Ballot,
    first: Slot,
    values: &[Value<C>],
) {
    let (skip, start) = accept_room(durable, ballot, first, values.len());
    for (i, value) in values[skip..].iter().enumerate() {
        durable.log[start + i] = Some(Entry {
            ballot,
            value: value.clone(),
        });
    }
}

impl<C: Command> Replica<C> for MultiPaxos<C> {
    type Msg = PaxosMsg<C>;
    type Timer = PaxosTimer;
    type Durable = PaxosDurable<C>;
    type Write = PaxosWrite<C>;

    const NAME: &'static str = "multipaxos";

    fn boot(
        id: NodeId,
        members: &[NodeId],
        durable: Option<&PaxosDurable<C>>,
        cfg: &Config,
        out: &mut Out<Self, C>,
    ) -> Self {
        // A spare may boot outside the configuration it is given: a change adds it later.
        assert!(
            id.index() < MAX_NODES && members.iter().all(|m| m.index() < MAX_NODES),
            "node ids are below {MAX_NODES}"
        );
        let d = durable.cloned().unwrap_or_default();
        // Rule 7: the host's state machine becomes the kept snapshot before anything else;
        // every slot up to it is chosen (a snapshot holds only committed slots).
        let commit = d.snapshot.as_ref().map_or(0, |s| s.slot);
        if let Some(snapshot) = &d.snapshot {
            out.restore(snapshot.clone());
        }
        let initial = Membership::voters(NodeSet::of(members.iter().copied()));
        // The configurations as far as we learned them (chosen: they hold whatever the
        // commit point, which is learned again; see [`reconfig`]).
        let configs = if d.configs.is_empty() {
            Configs::initial(initial)
        } else {
            d.configs
        };
        let r = MultiPaxos {
            id,
            cfg: Fixed::new(cfg.clone()),
            initial,
            configs,
            promised: d.promised,
            tried: d.tried,
            snapshot: d.snapshot,
            log: d.log,
            // With leases a restarted acceptor acts as if it had just heard from a leader: it
            // may have confirmed a lease round before the crash, and must not promise anybody
            // a higher ballot until a whole election timeout has passed (diss. §6.4.1).
            state: RoleState::Follower {
                // B4: a restart forgets it.
                leader_alive: durable.is_some()
                    && cfg.reads == ReadMode::Lease
                    && !cfg.bug(Bug::RestartForgetsLease),
            },
            incoming: None,
            leader: None,
            commit,
            ballot: Ballot::ZERO,
            forwarded: ForwardedReads::default(),
            handed_back: None,
            now: std::time::Duration::ZERO,
        };
        r.arm_election_timer(out);
        r
    }

    fn on_message(&mut self, from: NodeId, msg: PaxosMsg<C>, out: &mut Out<Self, C>) {
        debug_assert!(self.handed_back.is_none(), "handed back within its step");
        if !self.is_peer(from) {
            return; // not a node of this cluster: ignore rather than trust it
        }
        self.step_message(from, msg, out);
        self.flush_handed_back(out);
    }

    fn on_timer(&mut self, timer: PaxosTimer, out: &mut Out<Self, C>) {
        debug_assert!(self.handed_back.is_none(), "handed back within its step");
        self.step_timer(timer, out);
        self.flush_handed_back(out);
    }

    fn propose(&mut self, cmds: Vec<C>, out: &mut Out<Self, C>) {
        // A leader handing over takes no more proposals: they go to the new leader.
        let refuse = match self.handing_to() {
            Some(target) => Some(Some(target)),
            None => (!self.is_leader()).then_some(self.leader),
        };
        if let Some(leader) = refuse {
            for cmd in cmds {
                out.redirect(cmd, leader);
            }
            return;
        }
        // Back-pressure (etcd-raft's MaxUncommittedEntriesSize, counted in values): take only
        // as many as keep at most `max_uncommitted` values proposed above the commit point,
        // recovered but not re-proposed, or queued; hand the rest back busy (rule 3). This
        // is what bounds the queue.
        let mut cmds = cmds;
        let held = self.uncommitted();
        if !self
            .cfg
            .admit(held, self.cfg.bug(Bug::PaxosIgnoresCap), &mut cmds, out)
        {
            return;
        }
        // Into the queue, and from there into the log as far as the window allows (all of
        // them, unless the window is full: see [`reconfig`]).
        if let RoleState::Leader { queue, .. } = &mut self.state {
            if queue.is_empty() {
                // The batch becomes the queue in place (a value is a command's size), which
                // `take_window` then takes whole: no copy through the queue's own buffer.
                *queue = cmds.into_iter().map(Value::Cmd).collect::<Vec<_>>().into();
            } else {
                queue.extend(cmds.into_iter().map(Value::Cmd));
            }
        }
        self.leader_progress(out);
        // (A commit it makes may complete a change that removed us.)
        self.flush_handed_back(out);
    }

    const READS: bool = true;

    const CHANGES: bool = true;

    fn change(&mut self, id: ChangeId, change: Change, out: &mut Out<Self, C>) {
        self.on_change(id, change, out);
        self.flush_handed_back(out);
    }

    fn read(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, C>) {
        self.start_reads(ids, out);
    }

    fn local_reads(&mut self) -> Option<crate::LocalReads> {
        self.local_read_permit()
    }

    fn set_now(&mut self, now: std::time::Duration) {
        debug_assert!(now >= self.now, "a local clock never goes back");
        self.now = now;
    }

    fn status(&self) -> Status {
        Status {
            role: self.role(),
            term: max(self.tried, self.promised.round),
            leader: self.leader,
            commit: self.commit,
            last: self.last(),
            snapshot: self.base(),
            // The latest configuration the chosen slots decide (it decides from its first
            // slot on: see [`reconfig`]).
            config: self.configs.latest(),
            uncommitted: self.uncommitted(),
        }
    }

    fn id(&self) -> NodeId {
        self.id
    }

    /// The chosen slots this replica still holds: those above its snapshot.
    fn committed(&self) -> BTreeMap<Slot, Option<C>> {
        let base = self.base();
        self.log[..self.commit.saturating_sub(base) as usize]
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((base + 1 + i as Slot, e.as_ref()?.value.cmd().cloned())))
            .collect()
    }

    const SNAPSHOTS: bool = true;

    fn compact(&mut self, snapshot: Snapshot, out: &mut Out<Self, C>) {
        self.compact_to(snapshot, out);
    }

    fn apply_write(durable: &mut PaxosDurable<C>, write: &PaxosWrite<C>) {
        match write {
            PaxosWrite::Promise(b) => durable.promised = max(durable.promised, *b),
            PaxosWrite::Tried(r) => durable.tried = max(durable.tried, *r),
            PaxosWrite::Accept {
                ballot,
                first,
                cmds,
            } => place(durable, *ballot, *first, cmds),
            PaxosWrite::Configs(configs) => {
                if configs.latest_from() > durable.configs.latest_from()
                    || durable.configs.is_empty()
                {
                    durable.configs = configs.clone();
                }
            }
            PaxosWrite::Snapshot { snapshot, configs } => {
                if snapshot::keep(&mut durable.snapshot, &mut durable.log, snapshot) {
                    // Configurations learned after the snapshot's slot reach further: kept.
                    if configs.latest_from() >= durable.configs.latest_from()
                        || durable.configs.is_empty()
                    {
                        durable.configs = configs.clone();
                    } else {
                        durable.configs.prune(snapshot.slot);
                    }
                }
            }
        }
    }

    fn apply_write_owned(durable: &mut PaxosDurable<C>, write: PaxosWrite<C>) {
        match write {
            PaxosWrite::Accept {
                ballot,
                first,
                cmds,
            } => match Values::try_unwrap(cmds) {
                Ok(cmds) => {
                    let (skip, start) = accept_room(durable, ballot, first, cmds.len());
                    for (i, value) in cmds.into_iter().skip(skip).enumerate() {
                        durable.log[start + i] = Some(Entry { ballot, value });
                    }
                }
                // Shared: copy only the values placed.
                Err(cmds) => place(durable, ballot, first, &cmds),
            },
            other => Self::apply_write(durable, &other),
        }
    }

    fn fold_writes(durable: &mut PaxosDurable<C>, writes: &mut Vec<PaxosWrite<C>>) {
        fold::fold(durable, writes);
    }

    fn cluster_invariants() -> Vec<Invariant<ClusterCheck<Self>>> {
        vec![
            Invariant {
                name: names::ONE_VALUE_PER_SLOT,
                check: one_value_per_slot::<C>,
            },
            Invariant {
                name: names::ACCEPTED_AT_MOST_PROMISED,
                check: accepted_below_promise::<C>,
            },
            Invariant {
                name: names::COMMITTED_SLOTS_AGREE,
                check: committed_agree::<C>,
            },
            Invariant {
                name: names::CONFIGURATIONS_AGREE,
                check: configurations_agree::<C>,
            },
            Invariant {
                name: names::PROPOSALS_WITHIN_WINDOW,
                check: proposals_within_window::<C>,
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
                name: names::PROMISES_NEVER_GO_BACK,
                check: promise_monotonic::<C>,
            },
            Invariant {
                name: names::COMMITTED_SLOTS_NEVER_CHANGE,
                check: committed_stable::<C>,
            },
        ]
    }

    fn election_timer() -> PaxosTimer {
        PaxosTimer::Election
    }

    fn heartbeat_timer() -> PaxosTimer {
        PaxosTimer::Heartbeat
    }

    /// Prepares and accepts are always answered. Answers (promises, acceptances, refusals)
    /// are acted on only under the ballot they answer, while this proposer still runs it as
    /// a candidate or leader; a proposer never runs a ballot again once it left it (the next
    /// campaign takes a higher round, durable across restarts).
    fn obsolete(&self, from: NodeId, msg: &PaxosMsg<C>) -> bool {
        if !self.is_peer(from) {
            return true;
        }
        let left =
            |b: Ballot, role: Role| b < self.ballot || (b == self.ballot && self.role() != role);
        match *msg {
            PaxosMsg::Prepare { .. }
            | PaxosMsg::HandoffPrepare { .. }
            | PaxosMsg::LatePrepare { .. }
            | PaxosMsg::Accept { .. }
            | PaxosMsg::ReadConfirm { .. }
            | PaxosMsg::AskReadIndex { .. }
            | PaxosMsg::Snapshot { .. } => false,
            // Acted on by the leader of that ballot or by the acceptor that promised it; our
            // ballots only grow (a restarted proposer's next is above every round it tried)
            // and so does our promise.
            PaxosMsg::SnapshotAck { ballot, .. } => ballot < self.ballot && ballot < self.promised,
            PaxosMsg::Promise { ballot, .. } => left(ballot, Role::Candidate),
            PaxosMsg::LatePromise { ballot, .. } => left(ballot, Role::Leader),
            // Acted on by a follower whose promise is that ballot: promises only rise.
            PaxosMsg::Handoff { ballot } => ballot < self.promised,
            PaxosMsg::Accepted { ballot, .. } | PaxosMsg::ReadConfirmed { ballot, .. } => {
                left(ballot, Role::Leader)
            }
            PaxosMsg::ReadIndex { seq, .. } => self.read_index_obsolete(from, seq),
            PaxosMsg::Nack { ballot, promised } => {
                ballot < self.ballot
                    || (ballot == self.ballot
                        && (self.role() == Role::Follower || promised <= self.ballot))
            }
        }
    }

    // Symmetry reduction. Ballots name their proposer, so they are renamed too; since the node
    // id breaks ties between equal rounds, two renamed states are alike only up to that
    // tiebreak (see the model's symmetry notes).
    const RENAMES: bool = true;

    fn rename(&mut self, map: &Renaming) {
        self.id = map.id(self.id);
        self.promised = self.promised.renamed(map);
        self.ballot = self.ballot.renamed(map);
        self.leader = self.leader.map(|n| map.id(n));
        self.initial = self.initial.renamed(map);
        self.configs = self.configs.renamed(map);
        rename_entries(&mut self.log, map);
        match &mut self.state {
            RoleState::Follower { .. } => {}
            RoleState::Candidate {
                promises,
                recovered,
                reach,
                heard,
                ..
            } => {
                *promises = promises.renamed(map);
                rename_entries(recovered, map);
                if let Some((_, n)) = reach {
                    *n = map.id(*n);
                }
                map.by_id(heard);
            }
            RoleState::Leader {
                heard,
                acks,
                reads: _,
                transfers,
                catch_up,
                progress,
                covered,
                promises,
                p1_heard,
                asked,
                backlog,
                queue,
                change: _,
                handoff,
            } => {
                for c in covered {
                    *c = c.renamed(map);
                }
                *heard = heard.renamed(map);
                for a in acks {
                    *a = a.renamed(map);
                }
                map.by_id(transfers);
                map.by_id(catch_up);
                map.by_id(progress);
                *promises = promises.renamed(map);
                map.by_id(p1_heard);
                *asked = asked.renamed(map);
                rename_entries(backlog, map);
                for v in queue {
                    v.renamed(map);
                }
                if let Some(h) = handoff {
                    h.target = map.id(h.target);
                }
            }
        }
        if let Some(inc) = &mut self.incoming {
            inc.from = map.id(inc.from);
            inc.configs = inc.configs.renamed(map);
        }
        self.rename_reads(map);
    }

    fn rename_msg(msg: &mut PaxosMsg<C>, map: &Renaming) {
        match msg {
            PaxosMsg::Accept { ballot, cmds, .. } => {
                *ballot = ballot.renamed(map);
                // Copied only if a configuration in it names nodes (the copy is this message's).
                if cmds.iter().any(|v| v.config().is_some()) {
                    for v in Values::make_mut(cmds) {
                        v.renamed(map);
                    }
                }
            }
            PaxosMsg::Snapshot {
                ballot, configs, ..
            } => {
                *ballot = ballot.renamed(map);
                *configs = configs.renamed(map);
            }
            PaxosMsg::HandoffPrepare { ballot, by, .. } => {
                *ballot = ballot.renamed(map);
                *by = by.renamed(map);
            }
            PaxosMsg::LatePromise {
                ballot, accepted, ..
            } => {
                *ballot = ballot.renamed(map);
                rename_entries(accepted, map);
            }
            PaxosMsg::Prepare { ballot, .. }
            | PaxosMsg::LatePrepare { ballot, .. }
            | PaxosMsg::Handoff { ballot }
            | PaxosMsg::Accepted { ballot, .. }
            | PaxosMsg::ReadConfirm { ballot, .. }
            | PaxosMsg::ReadConfirmed { ballot, .. }
            | PaxosMsg::SnapshotAck { ballot, .. } => *ballot = ballot.renamed(map),
            PaxosMsg::AskReadIndex { .. } | PaxosMsg::ReadIndex { .. } => {}
            PaxosMsg::Promise {
                ballot, accepted, ..
            } => {
                *ballot = ballot.renamed(map);
                rename_entries(accepted, map);
            }
            PaxosMsg::Nack { ballot, promised } => {
                *ballot = ballot.renamed(map);
                *promised = promised.renamed(map);
            }
        }
    }

    fn rename_durable(durable: &mut PaxosDurable<C>, map: &Renaming) {
        durable.promised = durable.promised.renamed(map);
        rename_entries(&mut durable.log, map);
        durable.configs = durable.configs.renamed(map);
    }
}

impl Ballot {
    /// This ballot with its proposer renamed (`ZERO` names nobody and stays).
    fn renamed(self, map: &Renaming) -> Ballot {
        if self.round == 0 {
            return self;
        }
        Ballot {
            round: self.round,
            node: map.id(NodeId(self.node)).0,
        }
    }
}

fn rename_entries<C>(entries: &mut [Option<Entry<C>>], map: &Renaming) {
    for e in entries.iter_mut().flatten() {
        e.ballot = e.ballot.renamed(map);
        e.value.renamed(map);
    }
}

/// Accessors for tests and checkers.
impl<C: Command> MultiPaxos<C> {
    /// The acceptor's promise.
    pub fn promised(&self) -> Ballot {
        self.promised
    }
    /// The ballot this replica runs as proposer (`Ballot::ZERO` if it never tried).
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }
    /// What the acceptor accepted above its snapshot; `log()[0]` is slot
    /// [`MultiPaxos::snapshot_slot`]` + 1`.
    pub fn log(&self) -> &[Option<Entry<C>>] {
        &self.log
    }
    /// The slot of the snapshot kept (0: none): the log holds only the slots above it.
    pub fn snapshot_slot(&self) -> Slot {
        self.base()
    }
    /// The snapshot kept, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// The durable image this replica's writes have built.
    pub fn durable(&self) -> PaxosDurable<C> {
        PaxosDurable {
            promised: self.promised,
            tried: self.tried,
            snapshot: self.snapshot.clone(),
            log: self.log.clone(),
            // Written when a change is learned or a snapshot kept: before that, nothing.
            configs: if self.snapshot.is_none() && self.configs == Configs::initial(self.initial) {
                Configs::default()
            } else {
                self.configs.clone()
            },
        }
    }
    /// Which configuration decides each slot above the snapshot, as far as this replica
    /// knows (see [`reconfig`]).
    pub fn configs(&self) -> &Configs {
        &self.configs
    }
}
