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
//!   election timeout steps down; a follower that heard from its leader within the timeout
//!   refuses to vote (a leader lease), so a partially connected node cannot disrupt.
//!
//! Replication is pipelined as in etcd/raft: a follower known to match is sent every new
//! entry at once (the leader optimistically advances `next`); a follower whose position is
//! unknown is *probed* with one append at a time until it answers.

use std::cmp::{max, min};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bugs::Bug;
use crate::replica::Renaming;
use crate::replica::{
    quorum, ClusterCheck, Command, Config, Fixed, Invariant, NodeId, Out, Replica, Role, Slot,
    Status, StepCheck,
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
    pub use crate::replica::TERMS_NEVER_DECREASE;
    /// "one vote per term"
    pub const ONE_VOTE_PER_TERM: &str = "one vote per term";
    /// "committed entries never change"
    pub const COMMITTED_ENTRIES_NEVER_CHANGE: &str = "committed entries never change";
}

#[cfg(test)]
mod tests;

/// A log entry. `cmd == None` is the no-op a leader appends when its term starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The command, or `None` for a no-op.
    pub cmd: Option<C>,
}

/// Raft's messages (Figure 2, plus PreVote and the conflict hint).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftMsg<C> {
    /// RequestVote. With `pre_vote`, `term` is the term the sender *would* campaign in and
    /// nobody changes state on receiving it.
    RequestVote {
        term: u64,
        last_index: Slot,
        last_term: u64,
        pre_vote: bool,
    },
    /// Reply to RequestVote. For a granted pre-vote, `term` echoes the requested term.
    Vote {
        term: u64,
        granted: bool,
        pre_vote: bool,
    },
    /// AppendEntries: `entries` follow slot `prev_index`, whose term is `prev_term`. Empty
    /// entries make a heartbeat.
    Append {
        term: u64,
        prev_index: Slot,
        prev_term: u64,
        entries: Vec<Entry<C>>,
        commit: Slot,
    },
    /// Reply to AppendEntries.
    AppendReply { term: u64, result: AppendResult },
}

impl<C> RaftMsg<C> {
    /// The term the message carries: its sender's current term, except that a pre-vote
    /// request carries the term its sender would campaign in and a granted pre-vote echoes it.
    pub fn term(&self) -> u64 {
        match self {
            RaftMsg::RequestVote { term, .. }
            | RaftMsg::Vote { term, .. }
            | RaftMsg::Append { term, .. }
            | RaftMsg::AppendReply { term, .. } => *term,
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
    Ok { matched: Slot },
    /// The follower has no entry at `prev_index` with the leader's term there. The hint lets
    /// the leader skip back: `conflict_term` is the term the follower has at `prev_index` (if
    /// any) and `conflict_index` the first slot the follower holds of that term, or one past
    /// its last entry when its log is too short.
    Rejected {
        prev_index: Slot,
        conflict_term: Option<u64>,
        conflict_index: Slot,
    },
    /// The request came from a stale term.
    StaleTerm,
}

/// Raft's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftTimer {
    /// Followers and candidates: start an election. Leaders with CheckQuorum: check that a
    /// majority was heard from since the last firing.
    Election,
    /// Leaders: send heartbeats (and retransmit to lagging followers).
    Heartbeat,
}

/// What Raft keeps durable (Figure 2, "persistent state on all servers").
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RaftDurable<C> {
    /// `currentTerm`.
    pub term: u64,
    /// `votedFor` in `term`.
    pub voted_for: Option<NodeId>,
    /// The log; `log[0]` is slot 1.
    pub log: Vec<Entry<C>>,
}

impl<C> Default for RaftDurable<C> {
    fn default() -> Self {
        RaftDurable {
            term: 0,
            voted_for: None,
            log: Vec::new(),
        }
    }
}

/// One durable write.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RaftWrite<C> {
    /// Set `currentTerm` and `votedFor`.
    HardState {
        term: u64,
        voted_for: Option<NodeId>,
    },
    /// Delete every entry from slot `at` on, then append `entries` (the first at slot `at`).
    Append { at: Slot, entries: Vec<Entry<C>> },
}

/// The leader's view of one follower's log (Figure 2 `nextIndex`/`matchIndex`, plus the
/// etcd-style flow-control state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Progress {
    /// Next slot to send.
    next: Slot,
    /// Highest slot known to match the leader's log.
    matched: Slot,
    /// Whether the follower is known to match at `next - 1`, so appends may be pipelined.
    replicating: bool,
    /// Probing and an append is outstanding: wait for its answer or the next heartbeat.
    paused: bool,
}

/// What a replica keeps only while it holds one role. Leaving a role drops that role's state
/// with it, so nothing stale survives into the next (a leader's progress in a follower, a
/// candidate's votes in a leader, a follower's lease in a candidate).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RoleState {
    /// Heard from a current leader since the last election timeout (the lease behind
    /// CheckQuorum's vote refusal).
    Follower { leader_alive: bool },
    /// PreVote round: bitmask (by member position) of pre-votes granted for `term + 1`.
    PreCandidate { votes: u8 },
    /// Bitmask (by member position) of votes granted in this election.
    Candidate { votes: u8 },
    /// `active`: bitmask of members heard from since the last CheckQuorum round.
    /// `progress`: one entry per member (this replica's own entry is unused).
    Leader { active: u8, progress: Vec<Progress> },
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
    /// The cluster, this replica included; positions index `progress` and the vote bitmasks.
    members: Fixed<Vec<NodeId>>,
    cfg: Fixed<Config>,

    // Persistent state (mirrored to the host through `RaftWrite`s).
    term: u64,
    voted_for: Option<NodeId>,
    log: Vec<Entry<C>>,

    // Volatile state.
    state: RoleState,
    leader: Option<NodeId>,
    commit: Slot,
}

impl<C: Command> Raft<C> {
    fn role(&self) -> Role {
        self.state.role()
    }

    fn is_leader(&self) -> bool {
        matches!(self.state, RoleState::Leader { .. })
    }

    /// A leader's view of the member at `pos`.
    fn progress(&mut self, pos: usize) -> &mut Progress {
        match &mut self.state {
            RoleState::Leader { progress, .. } => &mut progress[pos],
            _ => unreachable!("only a leader tracks progress"),
        }
    }

    fn pos(&self, node: NodeId) -> Option<usize> {
        self.members.iter().position(|&m| m == node)
    }

    fn me(&self) -> usize {
        self.pos(self.id)
            .expect("a replica is a member of its cluster")
    }

    fn last_index(&self) -> Slot {
        self.log.len() as Slot
    }

    fn last_term(&self) -> u64 {
        self.log.last().map_or(0, |e| e.term)
    }

    /// The term of the entry at `index`; slot 0 has term 0. `None` past the end.
    fn term_at(&self, index: Slot) -> Option<u64> {
        if index == 0 {
            Some(0)
        } else {
            self.log.get(index as usize - 1).map(|e| e.term)
        }
    }

    fn peers(&self) -> impl Iterator<Item = (usize, NodeId)> + '_ {
        let me = self.id;
        self.members
            .iter()
            .copied()
            .enumerate()
            .filter(move |&(_, m)| m != me)
    }

    fn has_quorum(&self, mask: u8) -> bool {
        mask.count_ones() as usize >= quorum(self.members.len())
    }

    fn arm_election_timer(&self, out: &mut Out<Self, C>) {
        out.set_timer(RaftTimer::Election, self.cfg.election_timeout.clone());
    }

    fn persist_hard_state(&self, out: &mut Out<Self, C>) {
        out.persist(RaftWrite::HardState {
            term: self.term,
            voted_for: self.voted_for,
        });
    }

    /// Adopt a higher (or equal) term as a follower (§5.1). Persists a changed term. The lease
    /// starts lapsed, as etcd-raft's `becomeFollower` resets its leader: the caller that heard
    /// from the leader itself renews it.
    fn become_follower(&mut self, term: u64, leader: Option<NodeId>, out: &mut Out<Self, C>) {
        debug_assert!(term >= self.term, "terms never go back");
        let was_leader = self.is_leader();
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state(out);
        }
        self.state = RoleState::Follower {
            leader_alive: false,
        };
        self.leader = leader;
        if was_leader {
            out.cancel_timer(RaftTimer::Heartbeat);
            self.arm_election_timer(out);
        }
    }

    /// Election timeout at a follower or candidate: campaign (§5.2), after a PreVote round if
    /// configured (diss. §9.6).
    fn campaign(&mut self, out: &mut Out<Self, C>) {
        self.leader = None;
        if !self.cfg.pre_vote || self.cfg.bug(Bug::NoPreVote) {
            return self.start_election(out);
        }
        // The pre-vote asks for the next term without entering it: nobody changes state.
        let votes = 1 << self.me();
        self.state = RoleState::PreCandidate { votes };
        self.arm_election_timer(out);
        if self.has_quorum(votes) {
            return self.start_election(out); // a cluster of one
        }
        self.request_votes(self.term + 1, true, out);
    }

    /// Enter a new term as a candidate, vote for ourselves durably, and ask for votes (§5.2).
    fn start_election(&mut self, out: &mut Out<Self, C>) {
        let votes = 1 << self.me();
        self.state = RoleState::Candidate { votes };
        self.term += 1;
        self.voted_for = Some(self.id);
        self.persist_hard_state(out);
        self.arm_election_timer(out);
        if self.has_quorum(votes) {
            return self.become_leader(out); // a cluster of one
        }
        self.request_votes(self.term, false, out);
    }

    fn request_votes(&self, term: u64, pre_vote: bool, out: &mut Out<Self, C>) {
        let (last_index, last_term) = (self.last_index(), self.last_term());
        for (_, p) in self.peers() {
            out.send(
                p,
                RaftMsg::RequestVote {
                    term,
                    last_index,
                    last_term,
                    pre_vote,
                },
            );
        }
    }

    /// A majority granted this round's votes.
    fn win_vote_round(&mut self, out: &mut Out<Self, C>) {
        match self.state {
            // The pre-vote only said we could win: now run the real election.
            RoleState::PreCandidate { .. } => self.start_election(out),
            RoleState::Candidate { .. } => self.become_leader(out),
            RoleState::Follower { .. } | RoleState::Leader { .. } => {
                unreachable!("only candidates count votes")
            }
        }
    }

    /// Won the election: initialise the followers' progress, append a no-op of this term
    /// (diss. §6.4) and announce leadership with it.
    fn become_leader(&mut self, out: &mut Out<Self, C>) {
        debug_assert_eq!(self.role(), Role::Candidate);
        self.leader = Some(self.id);
        let next = self.last_index() + 1;
        self.state = RoleState::Leader {
            active: 1 << self.me(),
            progress: vec![
                Progress {
                    next,
                    matched: 0,
                    replicating: false,
                    paused: false
                };
                self.members.len()
            ],
        };
        out.cancel_timer(RaftTimer::Election);
        self.append_local(
            vec![Entry {
                term: self.term,
                cmd: None,
            }],
            out,
        );
        self.broadcast_append(out);
        out.set_timer(
            RaftTimer::Heartbeat,
            self.cfg.heartbeat_interval..self.cfg.heartbeat_interval,
        );
        if self.cfg.check_quorum {
            self.arm_election_timer(out);
        }
        self.maybe_commit(out);
    }

    /// Leader: append entries of its own term to its log and persist them.
    fn append_local(&mut self, entries: Vec<Entry<C>>, out: &mut Out<Self, C>) {
        debug_assert!(entries.iter().all(|e| e.term == self.term));
        let at = self.last_index() + 1;
        self.log.extend(entries.iter().cloned());
        out.persist(RaftWrite::Append { at, entries });
    }

    /// Send an AppendEntries to the member at `pos`: from `next` on, at most `max_batch`
    /// entries. A replicating follower's `next` advances optimistically (pipelining); a probed
    /// one is paused until it answers. With `heartbeat`, an empty append goes out even when
    /// there is nothing new, so that followers keep their lease and learn the commit point.
    /// With `empty_heartbeats` a heartbeat carries no entries at all (the paper's form, §5.2):
    /// still checked at `next - 1`, so a follower that lost entries answers with a rejection
    /// that sends the leader back; having sent nothing, it leaves `next` where it was.
    fn send_append(&mut self, pos: usize, heartbeat: bool, out: &mut Out<Self, C>) {
        let pr = *self.progress(pos);
        if pr.paused && !heartbeat {
            return;
        }
        let last = self.last_index();
        if pr.next > last && !heartbeat {
            return;
        }
        let prev_index = pr.next - 1;
        let prev_term = self
            .term_at(prev_index)
            .expect("next never passes the log end + 1");
        let end = if heartbeat && self.cfg.empty_heartbeats {
            prev_index
        } else {
            min(last, prev_index + self.cfg.max_batch as Slot)
        };
        let entries = self.log[prev_index as usize..end as usize].to_vec();
        let pr = self.progress(pos);
        if pr.replicating {
            pr.next = end + 1;
        } else {
            pr.paused = true;
        }
        let msg = RaftMsg::Append {
            term: self.term,
            prev_index,
            prev_term,
            entries,
            commit: self.commit,
        };
        out.send(self.members[pos], msg);
    }

    fn broadcast_append(&mut self, out: &mut Out<Self, C>) {
        for pos in 0..self.members.len() {
            if pos != self.me() {
                self.send_append(pos, false, out);
            }
        }
    }

    /// Leader: advance the commit point to the highest slot a majority stores, if that slot
    /// is of the current term (§5.4.2: earlier-term entries commit only indirectly).
    fn maybe_commit(&mut self, out: &mut Out<Self, C>) {
        let me = self.me();
        let last = self.last_index();
        let RoleState::Leader { progress, .. } = &self.state else {
            unreachable!("only a leader commits by counting")
        };
        let mut matched: Vec<Slot> = progress
            .iter()
            .enumerate()
            .map(|(pos, pr)| if pos == me { last } else { pr.matched })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let n = matched[quorum(self.members.len()) - 1];
        // B1: the leader applies whatever it stores itself, replicated or not.
        let n = if self.cfg.bug(Bug::ApplyUncommitted) {
            last
        } else {
            n
        };
        if n > self.commit
            && (self.term_at(n) == Some(self.term) || self.cfg.bug(Bug::Figure8Commit))
        {
            self.advance_commit(n, out);
        }
    }

    /// Commit every entry up to `to`, reporting the commands in slot order.
    fn advance_commit(&mut self, to: Slot, out: &mut Out<Self, C>) {
        debug_assert!(to <= self.last_index(), "cannot commit past the log");
        let from = self.commit;
        for slot in from + 1..=to {
            if let Some(cmd) = &self.log[slot as usize - 1].cmd {
                out.commit(slot, cmd.clone());
            }
        }
        self.commit = to;
    }

    /// CheckQuorum's lease: a follower heard from a live leader lately, or we lead ourselves.
    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && matches!(
                self.state,
                RoleState::Follower { leader_alive: true } | RoleState::Leader { .. }
            )
            && !self.cfg.bug(Bug::NoPreVote)
    }

    /// §5.4.1: is a log ending at (`last_term`, `last_index`) at least as up-to-date as ours?
    fn log_ok(&self, last_term: u64, last_index: Slot) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    fn on_request_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: Slot,
        last_term: u64,
        pre_vote: bool,
        out: &mut Out<Self, C>,
    ) {
        let log_ok = self.log_ok(last_term, last_index) || self.cfg.bug(Bug::VoteWithoutLogCheck);
        if pre_vote {
            // A pre-vote changes nothing here: grant if a real vote in that term could be
            // granted by the log check.
            let granted = term > self.term && log_ok;
            let reply_term = if granted { term } else { self.term };
            out.send(
                from,
                RaftMsg::Vote {
                    term: reply_term,
                    granted,
                    pre_vote: true,
                },
            );
            return;
        }
        let free = match self.voted_for {
            None => true,
            Some(v) => v == from || self.cfg.bug(Bug::DoubleVote),
        };
        let granted = term == self.term && free && log_ok;
        // R11: the reply leaves before the vote is durable (the write follows it).
        let late = granted && self.cfg.bug(Bug::VoteSentBeforePersist);
        let persist = granted && !self.cfg.bug(Bug::VoteNotPersisted);
        if granted {
            self.voted_for = Some(from);
            if persist && !late {
                self.persist_hard_state(out);
            }
            // Granting a vote resets the election timer (§5.2) so we do not compete with it.
            self.arm_election_timer(out);
        }
        out.send(
            from,
            RaftMsg::Vote {
                term: self.term,
                granted,
                pre_vote: false,
            },
        );
        if persist && late {
            self.persist_hard_state(out);
        }
    }

    fn on_vote(
        &mut self,
        from: NodeId,
        term: u64,
        granted: bool,
        pre_vote: bool,
        out: &mut Out<Self, C>,
    ) {
        let Some(pos) = self.pos(from) else { return };
        let votes = match &mut self.state {
            RoleState::PreCandidate { votes } if pre_vote && term == self.term + 1 => votes,
            RoleState::Candidate { votes } if !pre_vote && term == self.term => votes,
            _ => return,
        };
        if granted {
            *votes |= 1 << pos;
            let votes = *votes;
            if self.has_quorum(votes) {
                self.win_vote_round(out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        from: NodeId,
        term: u64,
        prev_index: Slot,
        prev_term: u64,
        entries: Vec<Entry<C>>,
        leader_commit: Slot,
        out: &mut Out<Self, C>,
    ) {
        if self.role() != Role::Follower {
            // A leader of our term exists (§5.2: a candidate that hears from the leader of its
            // term steps down).
            debug_assert!(
                !self.is_leader() || self.cfg.any_bug(),
                "two leaders in term {term}"
            );
            self.become_follower(term, Some(from), out);
        }
        self.leader = Some(from);
        self.state = RoleState::Follower { leader_alive: true };
        self.arm_election_timer(out);

        // §5.3 consistency check.
        let reject = match self.term_at(prev_index) {
            None => Some((None, self.last_index() + 1)),
            Some(t) if t != prev_term => {
                // First slot of the conflicting term, so the leader skips the whole term.
                let mut first = prev_index;
                while first > 1 && self.term_at(first - 1) == Some(t) && first - 1 > self.commit {
                    first -= 1;
                }
                Some((Some(t), first))
            }
            Some(_) => None,
        };
        if let Some((conflict_term, conflict_index)) = reject {
            let result = AppendResult::Rejected {
                prev_index,
                conflict_term,
                conflict_index,
            };
            out.send(
                from,
                RaftMsg::AppendReply {
                    term: self.term,
                    result,
                },
            );
            return;
        }

        let last_new = prev_index + entries.len() as Slot;
        if self.cfg.bug(Bug::TruncateOnStaleAppend) {
            // R6: drop everything after prev_index even when it agrees with the leader.
            self.log.truncate(prev_index as usize);
            self.log.extend(entries.iter().cloned());
            out.persist(RaftWrite::Append {
                at: prev_index + 1,
                entries,
            });
        } else {
            // §5.3: delete from the first *conflicting* entry only; a delayed append that
            // carries a prefix of what we have must not erase the entries after it.
            let first_new = entries
                .iter()
                .enumerate()
                .find(|&(i, e)| self.term_at(prev_index + 1 + i as Slot) != Some(e.term))
                .map(|(i, _)| i);
            if let Some(i) = first_new {
                let at = prev_index + 1 + i as Slot;
                debug_assert!(
                    at > self.commit || self.cfg.any_bug(),
                    "a leader asked to overwrite committed slot {at}"
                );
                self.log.truncate(at as usize - 1);
                let fresh: Vec<Entry<C>> = entries[i..].to_vec();
                self.log.extend(fresh.iter().cloned());
                if !self.cfg.bug(Bug::LogNotPersisted) {
                    out.persist(RaftWrite::Append { at, entries: fresh });
                }
            }
        }

        // Commit only what this append verified (Figure 2: min(leaderCommit, last new entry)).
        let verified = if self.cfg.bug(Bug::CommitPastVerifiedPrefix) {
            self.last_index()
        } else {
            last_new
        };
        let to = min(leader_commit, verified);
        if to > self.commit {
            self.advance_commit(to, out);
        }
        out.send(
            from,
            RaftMsg::AppendReply {
                term: self.term,
                result: AppendResult::Ok { matched: last_new },
            },
        );
    }

    /// An answer to our append of the current term (`on_message` dropped older ones).
    fn on_append_reply(&mut self, from: NodeId, result: AppendResult, out: &mut Out<Self, C>) {
        let Some(pos) = self.pos(from) else { return };
        match &mut self.state {
            RoleState::Leader { active, .. } => *active |= 1 << pos,
            _ => return,
        }
        match result {
            AppendResult::StaleTerm => {}
            AppendResult::Ok { matched } => {
                let pr = self.progress(pos);
                pr.paused = false;
                pr.replicating = true;
                if matched > pr.matched {
                    pr.matched = matched;
                }
                pr.next = max(pr.next, matched + 1);
                self.maybe_commit(out);
                // More to send (the batch limit cut the last append short)?
                self.send_append(pos, false, out);
            }
            AppendResult::Rejected {
                prev_index,
                conflict_term,
                conflict_index,
            } => {
                let pr = *self.progress(pos);
                // Ignore a reject that answers an older append than the one outstanding.
                if prev_index < pr.matched || (!pr.replicating && prev_index + 1 != pr.next) {
                    return;
                }
                // Fast backtracking (§5.3): skip to after our last entry of the conflicting
                // term, or to where the follower's log ends.
                let next = match conflict_term {
                    Some(t) => match self.log.iter().rposition(|e| e.term == t) {
                        Some(i) if (i as Slot) < prev_index => i as Slot + 2,
                        _ => conflict_index,
                    },
                    None => conflict_index,
                };
                let pr = self.progress(pos);
                pr.next = max(pr.matched + 1, min(next, prev_index));
                pr.replicating = false;
                pr.paused = false;
                self.send_append(pos, false, out);
            }
        }
    }
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
            members.contains(&id),
            "{id} is not in the cluster {members:?}"
        );
        assert!(
            members.len() <= crate::MAX_NODES,
            "at most {} members",
            crate::MAX_NODES
        );
        let d = durable.cloned().unwrap_or_default();
        let r = Raft {
            id,
            members: Fixed::new(members.to_vec()),
            cfg: Fixed::new(cfg.clone()),
            term: d.term,
            voted_for: d.voted_for,
            log: d.log,
            state: RoleState::Follower {
                leader_alive: false,
            },
            leader: None,
            commit: 0,
        };
        r.arm_election_timer(out);
        r
    }

    fn on_message(&mut self, from: NodeId, msg: RaftMsg<C>, out: &mut Out<Self, C>) {
        if from == self.id || self.pos(from).is_none() {
            return; // not a peer: ignore rather than trust it
        }
        // The term is checked once, here, as etcd-raft's `Step` does (§5.1): the handlers
        // below see messages of the current term, or a pre-vote's next term.
        let term = msg.term();
        if term > self.term {
            if let RaftMsg::RequestVote { pre_vote, .. } = msg {
                if self.in_lease() {
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
                // append names the new term's leader.
                let leader = matches!(msg, RaftMsg::Append { .. }).then_some(from);
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
                RaftMsg::Append { .. } => RaftMsg::AppendReply {
                    term,
                    result: AppendResult::StaleTerm,
                },
                RaftMsg::Vote { .. } | RaftMsg::AppendReply { .. } => return,
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
        }
    }

    fn on_timer(&mut self, timer: RaftTimer, out: &mut Out<Self, C>) {
        match (timer, self.role()) {
            (RaftTimer::Election, Role::Leader) => {
                // CheckQuorum (diss. §6.2): step down unless a majority answered lately.
                if !self.cfg.check_quorum {
                    return;
                }
                let me = 1 << self.me();
                let RoleState::Leader { active, .. } = &mut self.state else {
                    unreachable!("matched a leader")
                };
                if active.count_ones() as usize >= quorum(self.members.len()) {
                    *active = me;
                    self.arm_election_timer(out);
                } else {
                    let term = self.term;
                    self.become_follower(term, None, out);
                }
            }
            (RaftTimer::Election, _) => self.campaign(out),
            (RaftTimer::Heartbeat, Role::Leader) => {
                for pos in 0..self.members.len() {
                    if pos != self.me() {
                        self.send_append(pos, true, out);
                    }
                }
                out.set_timer(
                    RaftTimer::Heartbeat,
                    self.cfg.heartbeat_interval..self.cfg.heartbeat_interval,
                );
            }
            (RaftTimer::Heartbeat, _) => {} // a stale heartbeat timer of a deposed leader
        }
    }

    fn propose(&mut self, cmds: Vec<C>, out: &mut Out<Self, C>) {
        if !self.is_leader() {
            for cmd in cmds {
                out.redirect(cmd, self.leader);
            }
            return;
        }
        if cmds.is_empty() {
            return;
        }
        let term = self.term;
        self.append_local(
            cmds.into_iter()
                .map(|cmd| Entry {
                    term,
                    cmd: Some(cmd),
                })
                .collect(),
            out,
        );
        self.broadcast_append(out);
        self.maybe_commit(out);
    }

    fn status(&self) -> Status {
        Status {
            role: self.role(),
            term: self.term,
            leader: self.leader,
            commit: self.commit,
            last: self.last_index(),
        }
    }

    fn id(&self) -> NodeId {
        self.id
    }

    fn committed(&self) -> BTreeMap<Slot, Option<C>> {
        // `min`: a buggy replica (bug zoo R6) can hold a commit point past its log.
        self.log[..min(self.commit as usize, self.log.len())]
            .iter()
            .enumerate()
            .map(|(i, e)| (i as Slot + 1, e.cmd.clone()))
            .collect()
    }

    fn apply_write(durable: &mut RaftDurable<C>, write: &RaftWrite<C>) {
        match write {
            RaftWrite::HardState { term, voted_for } => {
                durable.term = *term;
                durable.voted_for = *voted_for;
            }
            RaftWrite::Append { at, entries } => {
                // With the log-not-persisted bug the image can lack earlier entries; never
                // panic on it, the checkers are there to notice.
                durable.log.truncate(at.saturating_sub(1) as usize);
                durable.log.extend(entries.iter().cloned());
            }
        }
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
        if from == self.id || self.pos(from).is_none() {
            return true;
        }
        match *msg {
            RaftMsg::RequestVote { .. } | RaftMsg::Append { .. } => false,
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
            RaftMsg::AppendReply { term, .. } => {
                term < self.term || (term == self.term && !self.is_leader())
            }
        }
    }

    // Symmetry reduction: Raft treats every node alike, so renaming is exact. Its messages
    // carry no node ids (the sender is implied).
    const RENAMES: bool = true;

    fn rename(&mut self, map: &Renaming) {
        self.id = map.id(self.id);
        self.voted_for = self.voted_for.map(|n| map.id(n));
        self.leader = self.leader.map(|n| map.id(n));
        match &mut self.state {
            RoleState::Follower { .. } => {}
            RoleState::PreCandidate { votes } | RoleState::Candidate { votes } => {
                *votes = map.mask(&self.members, *votes);
            }
            RoleState::Leader { active, progress } => {
                *active = map.mask(&self.members, *active);
                map.by_position(&self.members, progress);
            }
        }
    }

    fn rename_durable(durable: &mut RaftDurable<C>, map: &Renaming) {
        durable.voted_for = durable.voted_for.map(|n| map.id(n));
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
    /// The whole log; `log()[0]` is slot 1.
    pub fn log(&self) -> &[Entry<C>] {
        &self.log
    }
    /// The durable image this replica's writes have built, for hosts that want to compare.
    pub fn durable(&self) -> RaftDurable<C> {
        RaftDurable {
            term: self.term,
            voted_for: self.voted_for,
            log: self.log.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invariants (§5.2, §5.3, §5.4, Figure 3)
// ---------------------------------------------------------------------------------------------

/// Election Safety: at most one leader in any term.
fn election_safety<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    let mut leaders: BTreeMap<u64, NodeId> = BTreeMap::new();
    for r in rs.iter().filter(|r| r.is_leader()) {
        if let Some(other) = leaders.insert(r.term, r.id) {
            return Err(format!("{other} and {} both lead term {}", r.id, r.term));
        }
    }
    Ok(())
}

/// Log Matching: logs that hold an entry with the same term at the same index are identical
/// up to that index.
fn log_matching<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for (i, a) in rs.iter().enumerate() {
        for b in &rs[i + 1..] {
            let common = min(a.log.len(), b.log.len());
            // The highest index where the terms agree; everything below must match.
            if let Some(k) = (0..common).rev().find(|&k| a.log[k].term == b.log[k].term) {
                if a.log[..=k] != b.log[..=k] {
                    return Err(format!(
                        "{} and {} agree on the term of slot {} but not on the entries before it",
                        a.id,
                        b.id,
                        k + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Leader Completeness: a leader holds every entry any replica knows committed, provided that
/// replica learned it no later than the leader's term (whatever it learned was committed by a
/// leader of a term no higher than its own current term).
fn leader_completeness<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for l in rs.iter().filter(|r| r.is_leader()) {
        for r in rs.iter().filter(|r| r.term <= l.term) {
            let c = r.commit as usize;
            // A buggy replica (bug zoo R6) can hold a commit point past its own log.
            if l.log.len() < c || r.log.len() < c || l.log[..c] != r.log[..c] {
                return Err(format!(
                    "leader {} of term {} lacks entries up to slot {c} that {} committed",
                    l.id, l.term, r.id
                ));
            }
        }
    }
    Ok(())
}

fn term_monotonic<C: Command>(before: &Raft<C>, after: &Raft<C>) -> Result<(), String> {
    if after.term < before.term {
        return Err(format!(
            "{} went from term {} back to {}",
            after.id, before.term, after.term
        ));
    }
    Ok(())
}

fn one_vote_per_term<C: Command>(before: &Raft<C>, after: &Raft<C>) -> Result<(), String> {
    match (before.voted_for, after.voted_for) {
        (Some(a), Some(b)) if before.term == after.term && a != b => Err(format!(
            "{} voted for {a} and then {b} in term {}",
            after.id, after.term
        )),
        (Some(a), None) if before.term == after.term => Err(format!(
            "{} forgot its vote for {a} in term {}",
            after.id, after.term
        )),
        _ => Ok(()),
    }
}

fn committed_stable<C: Command>(before: &Raft<C>, after: &Raft<C>) -> Result<(), String> {
    let c = min(before.commit, after.commit) as usize;
    if after.log.len() < c || before.log.len() < c || before.log[..c] != after.log[..c] {
        return Err(format!(
            "{} changed an entry at or below its commit point {c}",
            after.id
        ));
    }
    Ok(())
}
