//! The bug zoo's switches: each known consensus bug of ../shared/BUGZOO.md, injectable into
//! the protocols so that the checkers can prove they catch it.
//!
//! The [`Bug`] names always exist (so registries and CLIs can name them), but a protocol
//! consults them only through [`crate::Config::bug`], which is constant `false` unless the
//! `bug-zoo` feature is on: release builds carry no buggy code path.

use serde::{Deserialize, Serialize};

/// One known bug. The doc line of each says what the switched-on code does wrong.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Bug {
    /// R1: the leader commits an earlier-term entry by counting replicas (Raft §5.4.2, Fig. 8).
    Figure8Commit,
    /// R2: votes are granted without the up-to-date log check (§5.4.1).
    VoteWithoutLogCheck,
    /// R3: the vote (term, votedFor) is not persisted before the reply.
    VoteNotPersisted,
    /// R4: a follower acknowledges entries before persisting them.
    LogNotPersisted,
    /// R5: a voter overwrites votedFor when a second candidate asks in the same term.
    DoubleVote,
    /// R6: on a matching AppendEntries the follower truncates everything after prevLogIndex.
    TruncateOnStaleAppend,
    /// R7: the follower sets commit to leaderCommit beyond the entries this append verified.
    CommitPastVerifiedPrefix,
    /// R8: a leader or candidate ignores a higher term and stays in its role.
    NoStepDown,
    /// R9: PreVote and CheckQuorum are off (liveness).
    NoPreVote,
    /// R10: the leader answers reads from local state without confirming leadership.
    StaleRead,
    /// P1: an acceptor accepts a ballot below its promise.
    AcceptBelowPromise,
    /// P2: a new leader proposes its own value instead of the highest-ballot accepted one.
    IgnoreAcceptedValue,
    /// P3: ballots lack the node-id tiebreak (or a restarted proposer forgets its ballot).
    NonUniqueBallot,
    /// P4: a slot is declared chosen with one acceptance too few.
    ChosenWithoutQuorum,
    /// P5: a new leader skips phase 1 for open slots.
    SkipRecovery,
    /// P5, the gap form (liveness): a new leader re-proposes what phase 1 reported but leaves
    /// the slots nobody reported unfilled instead of proposing a no-op there.
    GapNotFilled,
    /// P6: the promised ballot is not persisted before the promise is sent.
    PromiseNotPersisted,
    /// B1: the state machine applies an entry before it is committed.
    ApplyUncommitted,
    /// B2: a retried client request is applied twice (no session dedup).
    DuplicateApply,
    /// R11: the granted vote is sent before (term, votedFor) is persisted: the write still
    /// comes, but after the reply in the same step, so a crash between the two loses the vote.
    VoteSentBeforePersist,
    /// P7: the promise is sent before the promised ballot is persisted: the write still comes,
    /// but after the reply in the same step, so a crash between the two loses the promise.
    PromiseSentBeforePersist,
    /// R12: a new leader serves a ReadIndex read before it committed an entry of its own term,
    /// so its commit point may lag what the previous leader committed (etcd #7331; TiKV #6340).
    ReadIndexBeforeTermCommit,
    /// R13: a ReadIndex read is released without the heartbeat round that confirms the leader
    /// still leads (etcd #741, Jepsen etcd 0.4.1; Consul #54).
    ReadWithoutQuorum,
    /// R14: a follower read is served as soon as the leader answers with a read index, from
    /// whatever the follower has applied, without waiting to apply up to it (Consul #2644).
    FollowerReadNoWait,
    /// P8: a new multi-Paxos leader reads at its commit point before the slots its phase 1
    /// recovered are chosen again, so a value the previous leader had chosen is missed.
    PaxosReadBeforeRecovery,
    /// P9: a multi-Paxos leader serves a read without a quorum confirming its ballot.
    PaxosReadWithoutQuorum,
    /// L1: the lock service's Release frees the lock whoever asks, not only its holder
    /// (Burrows §2.4: only the holder may release; a release by anyone lets a second client
    /// in while the first still holds the lock).
    LockReleaseByNonOwner,
    /// L2: the storage the locks protect accepts a write whatever its fencing token, so a
    /// holder that paused past its session overwrites its successor (Burrows §2.4,
    /// sequencers; Kleppmann 2016, "How to do distributed locking").
    StorageWithoutFencing,
    /// B3: a leader lease lasts a whole election timeout from the acknowledged round's send,
    /// as if clocks kept perfect time: with the leader's clock slow and the followers' fast,
    /// a new leader is elected while the old one still serves reads from its lease (Ongaro's
    /// dissertation §6.4.1 divides by the drift bound for this reason).
    LeaseIgnoresDrift,
    /// B4: a restarted replica forgets that it may have acknowledged a lease round just before
    /// it crashed, and votes (or promises) at once: with the old leader's lease still running,
    /// it helps elect a new one (diss. §6.4.1: the followers' promise not to vote must survive
    /// a restart, or be kept by waiting an election timeout after it).
    RestartForgetsLease,
    /// S1: the host labels its snapshot with the replica's last slot instead of its commit
    /// point, so the snapshot claims slots that are not committed (and may never be), and a
    /// follower that installs it counts them as applied.
    SnapshotUncommitted,
    /// S2: a Raft follower given a snapshot discards its whole log, even when the snapshot
    /// is older than its commit point or its log holds the snapshot's last entry (Raft §7:
    /// "retain log entries following it"), losing entries a leader counted as replicated.
    SnapshotTruncatesLog,
    /// S3: a follower installs a snapshot without moving its commit point to the snapshot's
    /// slot, so it reports slots below the snapshot after restoring it, or serves reads from
    /// a state it does not know is committed.
    SnapshotKeepsCommit,
    /// S4: the snapshot holds the store but not the client sessions, so after a restore a
    /// retried request the snapshot covers is applied a second time (diss. §6.3: sessions
    /// are part of the replicated state, and of its snapshots).
    SnapshotWithoutSessions,
    /// S5: a multi-Paxos proposer runs phase 1 from its snapshot point and skips the slots
    /// an acceptor accepted above it (it asks from its own last slot), so a value that may
    /// have been chosen there is not recovered.
    Phase1SkipsAccepted,
    /// S6: a multi-Paxos candidate counts an acceptor's promise at its first chunk, so the
    /// acceptances the later chunks carry are never heard, and a value a quorum accepted
    /// (maybe chosen) in those slots is replaced.
    PromiseBeforeLastChunk,
    /// M1: a Raft leader starts a single-server change before it has committed an entry of
    /// its own term, so two leaders can each add one change to the same base, and the two
    /// configurations, two servers apart, have disjoint majorities (Ongaro, raft-dev, "bug in
    /// single-server membership changes", 2015; the fix is in diss. §4.1's erratum).
    ChangeBeforeTermCommit,
    /// M2: a Raft leader starts a second single-server change while the first is still
    /// uncommitted, so its log moves two servers away from the last committed configuration
    /// (diss. §4.1: "the leader does not begin a new change until the previous one commits").
    ConcurrentChanges,
    /// M3: a learner's acknowledgement counts toward the commit quorum: the leader takes a
    /// majority of the voters' size from every member's acknowledgements, learners included,
    /// so an entry is committed on a minority of the voters (diss. §4.2.1 and etcd-raft's
    /// learners: non-voting members must not count toward any majority).
    LearnerCounted,
    /// M4: joint consensus leaves C_old,new before it is committed: the leader appends C_new
    /// at once, so C_new decides while servers that never saw C_old,new still use C_old, and
    /// their majorities need not meet (Raft §6: C_new only once C_old,new is committed).
    JointLeftEarly,
    /// M6: a leader transfers its leadership to a target whose log is behind: it tells it to
    /// campaign at once, and stops leading for a candidate that cannot win the up-to-date
    /// check (diss. §3.10: the leader first brings the target's log up to date; etcd-raft
    /// sends MsgTimeoutNow only once the transferee's match index is the leader's last).
    TransferToBehind,
    /// M5: a server removed from the configuration disrupts the cluster it left. Two rules
    /// go, each only for servers outside a configuration: a server whose latest
    /// configuration no longer lists it (it knows it was removed: the leader that removed
    /// itself and stepped down once C_new committed) still campaigns, at once in a new term,
    /// without PreVote (hashicorp/raft before PR #476; LogCabin #205); and a vote request
    /// from a server outside the receiver's configuration is taken at its term although the
    /// receiver hears from a leader, or leads (diss. §4.2.3's disregard skipped for it:
    /// hashicorp/raft before PR #526, LogCabin before #56's fix). Its timeouts depose the
    /// leader again and again and terms climb; cut off, its term runs ahead. A removed
    /// server that never heard of its removal (a leader stops replicating to it at C_new) is
    /// not touched: it counts itself a voter and runs PreVote, which C_new's majority
    /// refuses (their logs hold C_new, its log does not); it could disrupt only with PreVote
    /// off for every server, which is R9's half, not a membership bug.
    RemovedServerDisrupts,
    /// M7: a multi-Paxos leader proposes everything that waits (the values phase 1
    /// recovered, queued commands, the operator's change) without the window, beyond its
    /// commit point + α, counting each slot in the latest configuration it knows, which a
    /// change in a slot it has not learned chosen may have replaced: two proposers count
    /// different voters for one slot (Lamport, Paxos Made Simple §3: instance `i + α` is run
    /// by the servers named after instance `i`; van Renesse & Altinbuken, Paxos Made
    /// Moderately Complex, invariant R5 and its `WINDOW`; Lamport, Malkhi, Zhou,
    /// Reconfiguring a State Machine, the basic method's α).
    ProposesBeyondWindow,
    /// M8: a multi-Paxos replica that installs a snapshot sent to it (it was behind) keeps
    /// its own configurations instead of those the snapshot carries, so it misses every
    /// change chosen inside the snapshot and counts the old voters for the slots after it
    /// (openraft #1808, fixed by PR #1809: a snapshot install kept a stale membership and
    /// the node counted a quorum of a superseded configuration; Paxos Made Simple §3 and
    /// Lamport, Malkhi, Zhou, Reconfiguring a State Machine: the configuration is part of the
    /// state the commands build, so a snapshot of the state must carry it; Paxos Made Live
    /// §5.5: a lagging replica catches up from a snapshot).
    SnapshotWithoutConfigs,
    /// F1: a Raft leader appends every command proposed to it, ignoring
    /// [`crate::Config::max_uncommitted`]: a leader that cannot commit (a lost quorum, a slow
    /// disk) grows its log without bound instead of handing proposals back busy (etcd-io/etcd
    /// PR #10167 added `MaxUncommittedEntries` for this, after cockroachdb/cockroach#27772:
    /// re-proposals grew a leader's uncommitted tail without bound during a loss of quorum).
    RaftIgnoresCap,
    /// F2: a multi-Paxos leader queues every command proposed to it, ignoring
    /// [`crate::Config::max_uncommitted`]: the queue behind its window grows without bound
    /// while nothing is chosen.
    PaxosIgnoresCap,
    /// B5: a Raft leader keeps its lease after it sent TimeoutNow: the target's TransferVote
    /// passes the followers' lease promise, so a new leader commits while the old one, cut
    /// off, still serves reads alone (tikv/tikv#1593; etcd-io/etcd#12704).
    LeaseSurvivesTransfer,
    /// B6: a multi-Paxos leader that gave a transfer up serves reads under its lease again,
    /// though its `Handoff` may still be in flight: a late copy makes the target campaign
    /// past the followers' lease promise (tikv/raft-rs#234, the same window in raft-rs).
    LeaseSurvivesHandoff,
    /// R16: a new Raft leader lets its host serve reads alone ([`crate::Replica::local_reads`])
    /// under its lease before it committed an entry of its own term: the lease rules out a
    /// newer leader, not an older leader's commits this one has not yet learned (TiKV's local
    /// reader checks the applied term for this reason).
    LocalReadBeforeTermCommit,
    /// P10: a new multi-Paxos leader lets its host serve reads alone under its lease before
    /// the slots its phase 1 recovered are chosen again (P8 on the local path).
    LocalReadBeforeRecovery,
}

impl Bug {
    /// Every bug, in BUGZOO.md order, then the ones added since (appended so that no
    /// discriminant moves): R11 and P7 (torn steps), the read bugs R12 to R14, P8 and P9,
    /// the lock-service bugs L1 and L2, the lease bugs B3 and B4, the snapshot bugs S1 to S6,
    /// the membership bugs M1 to M4 and M6, then M5 (Raft's), M7 and M8 (multi-Paxos's), then
    /// the flow-control bugs F1 and F2, then the lease-and-transfer bugs B5 and B6, then the
    /// local-read bugs R16 and P10.
    pub const ALL: [Bug; 50] = [
        Bug::Figure8Commit,
        Bug::VoteWithoutLogCheck,
        Bug::VoteNotPersisted,
        Bug::LogNotPersisted,
        Bug::DoubleVote,
        Bug::TruncateOnStaleAppend,
        Bug::CommitPastVerifiedPrefix,
        Bug::NoStepDown,
        Bug::NoPreVote,
        Bug::StaleRead,
        Bug::AcceptBelowPromise,
        Bug::IgnoreAcceptedValue,
        Bug::NonUniqueBallot,
        Bug::ChosenWithoutQuorum,
        Bug::SkipRecovery,
        Bug::GapNotFilled,
        Bug::PromiseNotPersisted,
        Bug::ApplyUncommitted,
        Bug::DuplicateApply,
        Bug::VoteSentBeforePersist,
        Bug::PromiseSentBeforePersist,
        Bug::ReadIndexBeforeTermCommit,
        Bug::ReadWithoutQuorum,
        Bug::FollowerReadNoWait,
        Bug::PaxosReadBeforeRecovery,
        Bug::PaxosReadWithoutQuorum,
        Bug::LockReleaseByNonOwner,
        Bug::StorageWithoutFencing,
        Bug::LeaseIgnoresDrift,
        Bug::RestartForgetsLease,
        Bug::SnapshotUncommitted,
        Bug::SnapshotTruncatesLog,
        Bug::SnapshotKeepsCommit,
        Bug::SnapshotWithoutSessions,
        Bug::Phase1SkipsAccepted,
        Bug::PromiseBeforeLastChunk,
        Bug::ChangeBeforeTermCommit,
        Bug::ConcurrentChanges,
        Bug::LearnerCounted,
        Bug::JointLeftEarly,
        Bug::TransferToBehind,
        Bug::RemovedServerDisrupts,
        Bug::ProposesBeyondWindow,
        Bug::SnapshotWithoutConfigs,
        Bug::RaftIgnoresCap,
        Bug::PaxosIgnoresCap,
        Bug::LeaseSurvivesTransfer,
        Bug::LeaseSurvivesHandoff,
        Bug::LocalReadBeforeTermCommit,
        Bug::LocalReadBeforeRecovery,
    ];

    /// The BUGZOO.md code, e.g. `"R1"`.
    pub fn code(self) -> &'static str {
        const CODES: [&str; 50] = [
            "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "P1", "P2", "P3", "P4",
            "P5", "P5-gap", "P6", "B1", "B2", "R11", "P7", "R12", "R13", "R14", "P8", "P9", "L1",
            "L2", "B3", "B4", "S1", "S2", "S3", "S4", "S5", "S6", "M1", "M2", "M3", "M4", "M6",
            "M5", "M7", "M8", "F1", "F2", "B5", "B6", "R16", "P10",
        ];
        CODES[self as usize]
    }

    /// The BUGZOO.md name, e.g. `"figure8-commit"`.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 50] = [
            "figure8-commit",
            "vote-without-log-check",
            "vote-not-persisted",
            "log-not-persisted",
            "double-vote",
            "truncate-on-stale-append",
            "commit-past-verified-prefix",
            "no-step-down",
            "no-prevote",
            "stale-read",
            "accept-below-promise",
            "ignore-accepted-value",
            "non-unique-ballot",
            "chosen-without-quorum",
            "skip-recovery",
            "gap-not-filled",
            "promise-not-persisted",
            "apply-uncommitted",
            "duplicate-apply",
            "vote-sent-before-persist",
            "promise-sent-before-persist",
            "readindex-before-term-commit",
            "read-without-quorum-check",
            "follower-read-no-wait",
            "read-before-recovery",
            "read-without-ballot-check",
            "lock-release-by-non-owner",
            "storage-without-fencing",
            "lease-ignores-drift",
            "restart-forgets-lease",
            "snapshot-of-uncommitted-state",
            "snapshot-truncates-log",
            "snapshot-keeps-commit-point",
            "snapshot-without-sessions",
            "phase1-skips-accepted",
            "promise-before-last-chunk",
            "change-before-term-commit",
            "concurrent-changes",
            "learner-counted",
            "joint-left-early",
            "transfer-to-behind",
            "removed-server-disrupts",
            "proposes-beyond-window",
            "snapshot-without-configuration",
            "leader-ignores-cap",
            "leader-ignores-queue-cap",
            "lease-survives-transfer",
            "lease-survives-handoff",
            "local-read-before-term-commit",
            "local-read-before-recovery",
        ];
        NAMES[self as usize]
    }

    /// The `NAME` of the protocol the bug belongs to: `"raft"` for the R codes and B1 (its
    /// switch is in Raft's apply path), `"multipaxos"` for the P codes, S5, S6, M7, M8 and B6, `"raft"` for S2, S3, M1 to M6 and
    /// B5; `None` for B2, S1, S4, L1 and L2,
    /// which live in the hosts' state machine or in the storage the locks protect, and B3 and
    /// B4, which live in the lease both protocols share: they fit any protocol. A name, not a type: the
    /// protocol registry is the hosts' (the root crate's `Protocol`).
    pub fn protocol(self) -> Option<&'static str> {
        use Bug::*;
        match self {
            Figure8Commit
            | VoteWithoutLogCheck
            | VoteNotPersisted
            | LogNotPersisted
            | DoubleVote
            | TruncateOnStaleAppend
            | CommitPastVerifiedPrefix
            | NoStepDown
            | NoPreVote
            | StaleRead
            | ApplyUncommitted
            | VoteSentBeforePersist
            | ReadIndexBeforeTermCommit
            | ReadWithoutQuorum
            | FollowerReadNoWait
            | SnapshotTruncatesLog
            | SnapshotKeepsCommit
            | ChangeBeforeTermCommit
            | ConcurrentChanges
            | LearnerCounted
            | JointLeftEarly
            | TransferToBehind
            | RemovedServerDisrupts
            | RaftIgnoresCap
            | LeaseSurvivesTransfer
            | LocalReadBeforeTermCommit => Some("raft"),
            AcceptBelowPromise
            | IgnoreAcceptedValue
            | NonUniqueBallot
            | ChosenWithoutQuorum
            | SkipRecovery
            | GapNotFilled
            | PromiseNotPersisted
            | PromiseSentBeforePersist
            | PaxosReadBeforeRecovery
            | PaxosReadWithoutQuorum
            | Phase1SkipsAccepted
            | PromiseBeforeLastChunk
            | ProposesBeyondWindow
            | SnapshotWithoutConfigs
            | PaxosIgnoresCap
            | LeaseSurvivesHandoff
            | LocalReadBeforeRecovery => Some("multipaxos"),
            DuplicateApply
            | LockReleaseByNonOwner
            | StorageWithoutFencing
            | LeaseIgnoresDrift
            | RestartForgetsLease
            | SnapshotUncommitted
            | SnapshotWithoutSessions => None,
        }
    }

    /// Look a bug up by its name or code (case-insensitive).
    pub fn parse(s: &str) -> Option<Bug> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s) || b.code().eq_ignore_ascii_case(s))
    }
}

/// Whether the switches are compiled in (the `bug-zoo` feature). Without it [`crate::Config::set_bug`]
/// refuses, so a zoo run on a release build says so instead of reporting every bug escaped.
pub const COMPILED: bool = cfg!(feature = "bug-zoo");

impl crate::Config {
    /// The bugs switched on, in BUGZOO.md order (none without the `bug-zoo` feature).
    pub fn bugs_on(&self) -> Vec<Bug> {
        Bug::ALL.into_iter().filter(|&b| self.bug(b)).collect()
    }

    /// Switch `bug` on. Returns `false` (and changes nothing) when the switches are not
    /// compiled in; callers outside this crate need no `cfg` of their own.
    pub fn set_bug(&mut self, bug: Bug) -> bool {
        #[cfg(feature = "bug-zoo")]
        {
            self.bugs.insert(bug);
            true
        }
        #[cfg(not(feature = "bug-zoo"))]
        {
            let _ = bug;
            false
        }
    }
}

/// A set of bugs switched on at once.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct BugSet(u64);

impl BugSet {
    /// The set holding just `bug`.
    pub fn only(bug: Bug) -> Self {
        BugSet(1 << bug as u64)
    }
    /// Add `bug`.
    pub fn insert(&mut self, bug: Bug) {
        self.0 |= 1 << bug as u64;
    }
    /// Whether `bug` is in the set.
    pub fn contains(self, bug: Bug) -> bool {
        self.0 & (1 << bug as u64) != 0
    }
    /// Whether no bug is on.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for b in Bug::ALL {
            assert_eq!(Bug::parse(b.name()), Some(b));
            assert_eq!(Bug::parse(b.code()), Some(b));
        }
        assert_eq!(Bug::parse("no-such-bug"), None);
    }

    #[test]
    fn bug_set_holds_what_was_inserted() {
        let mut s = BugSet::default();
        assert!(s.is_empty());
        s.insert(Bug::DoubleVote);
        assert!(s.contains(Bug::DoubleVote));
        assert!(!s.contains(Bug::Figure8Commit));
        assert!(BugSet::only(Bug::StaleRead).contains(Bug::StaleRead));
    }
}
