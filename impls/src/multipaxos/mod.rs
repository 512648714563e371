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
//!   answers with every (ballot, value) it accepted in those slots. With a quorum of promises
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
//!   says it is *behind*, and the leader re-sends those slots at its ballot: the values up to
//!   the commit point are chosen, so accepting them again at a later ballot is safe. A
//!   heartbeat names the leader's last slot: a replica answers it for every open slot it
//!   holds in the leader's ballot (an acknowledgement lost on the way is given again) and
//!   says it is behind when it lacks one (an `Accept` lost to every acceptor is re-sent).
//!   The leader cannot tell loss from delay, and one open slot stalls every later one.
//!   Replicas apply in slot order; no-ops take a slot but are not reported.
//! * **Leader stability (PMMC §3, "leases"; as Raft's CheckQuorum).** The leader sends
//!   heartbeats. An acceptor that heard from a live leader since its last election timeout
//!   ignores `Prepare`s from anybody else, and a candidate that hears from a live leader
//!   backs off, so a replica that merely lost a heartbeat cannot depose a healthy leader.
//!   A candidate does not promise its own ballot until its phase 1 succeeded, so its own
//!   acceptor keeps serving the live leader meanwhile. A leader that has not heard from a
//!   quorum within an election timeout steps down; a dead leader is replaced when the
//!   followers' election timers fire. (All of this is liveness: safety holds whatever the
//!   timing.)
//!
//! Bug-zoo switches P1 to P7 (../shared/BUGZOO.md; P7 is appended after it) are wired at the
//! exact rule they break.

use std::cmp::max;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bugs::Bug;
use crate::replica::Renaming;
use crate::replica::{
    quorum, ClusterCheck, Command, Config, Fixed, Invariant, NodeId, Out, Replica, Role, Slot,
    Status, StepCheck,
};

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
}

#[cfg(test)]
mod tests;

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

/// What an acceptor accepted in one slot. `cmd == None` is a no-op (a gap filler).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    /// The ballot the value was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub cmd: Option<C>,
}

/// Multi-Paxos messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PaxosMsg<C> {
    /// Phase 1a for every slot from `from` on.
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b: the promise, with what the acceptor accepted from slot `from` on (`None`:
    /// nothing accepted in that slot).
    Promise {
        ballot: Ballot,
        from: Slot,
        accepted: Vec<Option<Entry<C>>>,
    },
    /// Phase 2a for slots `first..first + cmds.len()`, carrying the leader's commit point.
    /// With no `cmds` it is a heartbeat.
    Accept {
        ballot: Ballot,
        first: Slot,
        cmds: Vec<Option<C>>,
        commit: Slot,
    },
    /// Phase 2b for slots `first..=upto` (none if `upto < first`). `commit` is the acceptor's
    /// commit point; `behind` says it could not learn up to the leader's.
    Accepted {
        ballot: Ballot,
        first: Slot,
        upto: Slot,
        commit: Slot,
        behind: bool,
    },
    /// Refusal: the acceptor promised `promised`, above `ballot`.
    Nack { ballot: Ballot, promised: Ballot },
}

/// Multi-Paxos timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PaxosTimer {
    /// Non-leaders: start phase 1. Leaders: check that a quorum was heard from lately.
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
    /// Accepted values; `log[0]` is slot 1.
    pub log: Vec<Option<Entry<C>>>,
}

impl<C> Default for PaxosDurable<C> {
    fn default() -> Self {
        PaxosDurable {
            promised: Ballot::ZERO,
            tried: 0,
            log: Vec::new(),
        }
    }
}

/// One durable write.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaxosWrite<C> {
    /// Raise the promise to this ballot.
    Promise(Ballot),
    /// This proposer is about to try this round.
    Tried(u64),
    /// Accept `cmds` at `ballot` in slots `first..` (raising the promise to `ballot` if lower).
    Accept {
        ballot: Ballot,
        first: Slot,
        cmds: Vec<Option<C>>,
    },
}

/// What a replica keeps only while it holds one role. Leaving a role drops that role's state
/// with it, so nothing stale survives into the next, and each bitmask means one thing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RoleState<C> {
    /// Heard from a live leader since the last election timeout (the lease).
    Follower { leader_alive: bool },
    /// Running phase 1: `promises` is the bitmask of members that promised our ballot; phase 1
    /// covers slots from `p1_from` on (commit + 1 when it started); `recovered` holds the
    /// highest-ballot acceptance reported per slot from `p1_from` on.
    Candidate {
        promises: u8,
        p1_from: Slot,
        recovered: Vec<Option<Entry<C>>>,
    },
    /// `heard`: bitmask of members heard from since the last CheckQuorum round. `acks`: the
    /// acceptance bitmask of each open slot `commit + 1 ..= log.len()`.
    Leader { heard: u8, acks: Vec<u8> },
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
    members: Fixed<Vec<NodeId>>,
    cfg: Fixed<Config>,

    // Durable (mirrored through `PaxosWrite`s).
    promised: Ballot,
    tried: u64,
    log: Vec<Option<Entry<C>>>,

    // Volatile.
    state: RoleState<C>,
    leader: Option<NodeId>,
    /// Every slot up to here is chosen and holds the chosen value.
    commit: Slot,
    /// The ballot this proposer runs (candidates and leaders) or ran last: kept after it
    /// leaves the role, so that answers to that ballot are known to be obsolete.
    ballot: Ballot,
}

impl<C: Command> MultiPaxos<C> {
    fn role(&self) -> Role {
        self.state.role()
    }

    fn is_leader(&self) -> bool {
        matches!(self.state, RoleState::Leader { .. })
    }

    /// A leader's acceptance bitmasks of its open slots.
    fn acks(&mut self) -> &mut Vec<u8> {
        match &mut self.state {
            RoleState::Leader { acks, .. } => acks,
            _ => unreachable!("only a leader counts acceptances"),
        }
    }

    fn pos(&self, node: NodeId) -> Option<usize> {
        self.members.iter().position(|&m| m == node)
    }

    fn me(&self) -> usize {
        self.pos(self.id)
            .expect("a replica is a member of its cluster")
    }

    fn last(&self) -> Slot {
        self.log.len() as Slot
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.members.iter().copied().filter(move |&m| m != me)
    }

    /// Acceptances needed to choose a value.
    fn needed(&self) -> usize {
        let q = quorum(self.members.len());
        if self.cfg.bug(Bug::ChosenWithoutQuorum) {
            // P4: one acceptance too few.
            q - 1
        } else {
            q
        }
    }

    fn has_quorum(&self, mask: u8) -> bool {
        mask.count_ones() as usize >= self.needed()
    }

    fn arm_election_timer(&self, out: &mut Out<Self, C>) {
        out.set_timer(PaxosTimer::Election, self.cfg.election_timeout.clone());
    }

    fn arm_heartbeat(&self, out: &mut Out<Self, C>) {
        out.set_timer(
            PaxosTimer::Heartbeat,
            self.cfg.heartbeat_interval..self.cfg.heartbeat_interval,
        );
    }

    /// Give up candidacy or leadership; `leader` is the best guess of who leads now.
    fn step_down(&mut self, leader: Option<NodeId>, out: &mut Out<Self, C>) {
        let was_leader = self.is_leader();
        // Only a candidate or a leader steps down, and neither holds a lease.
        self.state = RoleState::Follower {
            leader_alive: false,
        };
        self.leader = leader;
        if was_leader {
            out.cancel_timer(PaxosTimer::Heartbeat);
            self.arm_election_timer(out);
        }
    }

    /// Election timeout: start phase 1 with a fresh ballot above every round seen (PMS §3:
    /// "a new leader ... executes phase 1 for infinitely many instances").
    fn campaign(&mut self, out: &mut Out<Self, C>) {
        let round = max(self.tried, self.promised.round) + 1;
        // P3: without the node-id tiebreak two proposers may pick the same ballot.
        let node = if self.cfg.bug(Bug::NonUniqueBallot) {
            0
        } else {
            self.id.0
        };
        self.tried = round;
        // Durable before the ballot is used, so a restarted proposer never reuses it.
        out.persist(PaxosWrite::Tried(round));
        self.ballot = Ballot { round, node };
        self.leader = None;
        let promises = 1 << self.me();
        let p1_from = self.commit + 1;
        self.state = RoleState::Candidate {
            promises,
            p1_from,
            recovered: Vec::new(),
        };
        self.arm_election_timer(out);
        if self.has_quorum(promises) {
            return self.become_leader(out); // a cluster of one
        }
        let msg = PaxosMsg::Prepare {
            ballot: self.ballot,
            from: p1_from,
        };
        for p in self.peers() {
            out.send(p, msg.clone());
        }
    }

    /// Keep, per slot, the acceptance with the highest ballot (PMS §2.2, P2c).
    fn merge(recovered: &mut Vec<Option<Entry<C>>>, accepted: &[Option<Entry<C>>]) {
        if recovered.len() < accepted.len() {
            recovered.resize(accepted.len(), None);
        }
        for (slot, a) in recovered.iter_mut().zip(accepted) {
            if let Some(a) = a {
                if slot.as_ref().map_or(true, |s| a.ballot > s.ballot) {
                    *slot = Some(a.clone());
                }
            }
        }
    }

    /// Phase 1 succeeded: promise our own ballot, re-propose the highest-ballot value of
    /// every open slot, fill the gaps with no-ops (PMS §3), and lead.
    fn become_leader(&mut self, out: &mut Out<Self, C>) {
        let RoleState::Candidate {
            p1_from: from,
            mut recovered,
            ..
        } = std::mem::replace(
            &mut self.state,
            RoleState::Follower {
                leader_alive: false,
            },
        )
        else {
            unreachable!("only a candidate becomes leader")
        };
        debug_assert!(
            self.promised <= self.ballot || self.cfg.any_bug(),
            "promised above our own ballot"
        );
        // Without leases a candidate may have learned chosen slots meanwhile; phase 1 reports
        // the same (chosen) values for them, so recovering from `p1_from` stays correct.
        debug_assert!(
            from <= self.commit + 1,
            "phase 1 starts at most past the commit point"
        );
        let b = self.ballot;
        self.promised = max(self.promised, b);
        out.persist(PaxosWrite::Promise(self.promised));
        // Our own acceptor is part of the quorum: read what it accepted now that it promised.
        let own: Vec<Option<Entry<C>>> = self.log.get(from as usize - 1..).unwrap_or(&[]).to_vec();
        Self::merge(&mut recovered, &own);
        // P5, gap form: the slots no acceptor of the quorum reported stay unproposed.
        let holes: Vec<bool> = if self.cfg.bug(Bug::GapNotFilled) {
            recovered.iter().map(Option::is_none).collect()
        } else {
            Vec::new()
        };
        let cmds: Vec<Option<C>> = if self.cfg.bug(Bug::SkipRecovery) {
            // P5: nothing re-proposed; new commands go where values may already be chosen.
            Vec::new()
        } else if self.cfg.bug(Bug::IgnoreAcceptedValue) {
            // P2: our own value (or a no-op) instead of the highest-ballot one reported.
            (0..recovered.len())
                .map(|i| own.get(i).cloned().flatten().and_then(|e| e.cmd))
                .collect()
        } else {
            recovered
                .into_iter()
                .map(|e| e.and_then(|e| e.cmd))
                .collect()
        };
        // With nothing re-proposed keep what we hold up to the commit point (P5 only: else
        // an empty recovery means our own log ends before `from`).
        let keep = if cmds.is_empty() {
            max(from - 1, self.commit)
        } else {
            from - 1
        };
        self.log.truncate(keep as usize);
        let hole = |i: usize| holes.get(i).copied().unwrap_or(false);
        self.log.extend(cmds.iter().enumerate().map(|(i, cmd)| {
            (!hole(i)).then(|| Entry {
                ballot: b,
                cmd: cmd.clone(),
            })
        }));
        // The recovered slots as runs of consecutive proposals (one run unless P5-gap left
        // holes between them).
        let mut runs: Vec<(Slot, Vec<Option<C>>)> = Vec::new();
        for (i, cmd) in cmds.into_iter().enumerate() {
            if hole(i) {
                continue;
            }
            let slot = from + i as Slot;
            match runs.last_mut() {
                Some((first, run)) if *first + run.len() as Slot == slot => run.push(cmd),
                _ => runs.push((slot, vec![cmd])),
            }
        }
        for (first, run) in &runs {
            out.persist(PaxosWrite::Accept {
                ballot: b,
                first: *first,
                cmds: run.clone(),
            });
        }
        self.leader = Some(self.id);
        // One bitmask per open slot (above the commit point), our own acceptance in each.
        let me = 1 << self.me();
        let acks = (self.commit + 1..=self.last())
            .map(|s| {
                if self.log[s as usize - 1].is_some() {
                    me
                } else {
                    0
                }
            })
            .collect();
        self.state = RoleState::Leader { heard: me, acks };
        if self.cfg.check_quorum {
            self.arm_election_timer(out);
        } else {
            out.cancel_timer(PaxosTimer::Election);
        }
        self.arm_heartbeat(out);
        // Phase 2 for the recovered slots; with none it announces the leadership.
        if runs.is_empty() {
            self.broadcast_accept(from, Vec::new(), out);
        }
        for (first, run) in runs {
            self.broadcast_accept(first, run, out);
        }
        self.advance_leader_commit(out);
    }

    /// Send `cmds` (slots from `first`) at our ballot to every peer, at most `max_batch` a message.
    fn broadcast_accept(&self, first: Slot, cmds: Vec<Option<C>>, out: &mut Out<Self, C>) {
        let batch = self.cfg.max_batch;
        let mut chunks: Vec<(Slot, Vec<Option<C>>)> = Vec::new();
        if cmds.is_empty() {
            chunks.push((first, cmds));
        } else {
            for (k, c) in cmds.chunks(batch).enumerate() {
                chunks.push((first + (k * batch) as Slot, c.to_vec()));
            }
        }
        for p in self.peers() {
            for (f, c) in &chunks {
                out.send(
                    p,
                    PaxosMsg::Accept {
                        ballot: self.ballot,
                        first: *f,
                        cmds: c.clone(),
                        commit: self.commit,
                    },
                );
            }
        }
    }

    /// Leader: the values of slots `first..=upto` (chosen ones up to the commit point, our
    /// own proposals above it: all valid at our ballot), stopping short of a hole that only
    /// P5-gap leaves (a no-op sent there would fill it).
    fn values(&self, first: Slot, upto: Slot) -> Vec<Option<C>> {
        let values: Vec<Option<C>> = self.log[first as usize - 1..upto as usize]
            .iter()
            .map_while(|e| e.as_ref().map(|e| e.cmd.clone()))
            .collect();
        debug_assert!(
            values.len() as Slot == upto + 1 - first || self.cfg.any_bug(),
            "a leader's log has no gaps"
        );
        values
    }

    /// Leader: advance the commit point over every slot a quorum accepted in our ballot.
    fn advance_leader_commit(&mut self, out: &mut Out<Self, C>) {
        let RoleState::Leader { acks, .. } = &self.state else {
            unreachable!("only a leader commits by counting")
        };
        let n = acks.iter().take_while(|&&a| self.has_quorum(a)).count();
        if n > 0 {
            self.acks().drain(..n);
            self.commit_to(self.commit + n as Slot, out);
        }
    }

    /// Mark every slot up to `to` chosen, reporting the commands in slot order.
    fn commit_to(&mut self, to: Slot, out: &mut Out<Self, C>) {
        debug_assert!(to <= self.last() && to > self.commit);
        for slot in self.commit + 1..=to {
            let e = self.log[slot as usize - 1]
                .as_ref()
                .expect("a chosen slot holds its value");
            if let Some(cmd) = &e.cmd {
                out.commit(slot, cmd.clone());
            }
        }
        self.commit = to;
    }

    /// Adopt a higher ballot seen in a refusal, so our next round is above it.
    fn raise_promise(&mut self, b: Ballot, out: &mut Out<Self, C>) {
        if b > self.promised {
            self.promised = b;
            out.persist(PaxosWrite::Promise(b));
        }
    }

    fn on_prepare(&mut self, from: NodeId, b: Ballot, first: Slot, out: &mut Out<Self, C>) {
        // The lease: while a live leader (or we ourselves) leads, a prepare from anyone else
        // is a disruption, not a leader change. Ignoring it is always safe.
        let lease = self.cfg.check_quorum
            && match self.state {
                RoleState::Follower { leader_alive } => leader_alive && self.leader != Some(from),
                RoleState::Candidate { .. } => false,
                RoleState::Leader { .. } => true,
            };
        if lease && b > self.promised {
            return;
        }
        // PMS §2.2 (P1a): promise only a ballot at least our promise.
        if b < self.promised {
            out.send(
                from,
                PaxosMsg::Nack {
                    ballot: b,
                    promised: self.promised,
                },
            );
            return;
        }
        // A leader gives way to a higher ballot. A candidate's acceptor promises like any
        // other (it has not promised its own ballot yet) and the candidacy goes on: it can
        // only succeed if its own promise is still free when its quorum is complete.
        if self.is_leader() && b != self.ballot {
            self.step_down(Some(from), out);
        }
        // P7: the promise leaves before the raised promise is durable (the write follows it).
        let persist_late = b > self.promised && self.cfg.bug(Bug::PromiseSentBeforePersist);
        if b > self.promised {
            self.promised = b;
            if !self.cfg.bug(Bug::PromiseNotPersisted) && !persist_late {
                out.persist(PaxosWrite::Promise(b));
            }
        }
        self.leader = Some(from);
        // Do not compete with the proposer we just promised.
        self.arm_election_timer(out);
        let accepted = self
            .log
            .get(first.max(1) as usize - 1..)
            .unwrap_or(&[])
            .to_vec();
        out.send(
            from,
            PaxosMsg::Promise {
                ballot: b,
                from: first,
                accepted,
            },
        );
        if persist_late && !self.cfg.bug(Bug::PromiseNotPersisted) {
            out.persist(PaxosWrite::Promise(b));
        }
    }

    fn on_promise(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        accepted: Vec<Option<Entry<C>>>,
        out: &mut Out<Self, C>,
    ) {
        let Some(pos) = self.pos(from) else { return };
        let RoleState::Candidate {
            promises,
            p1_from,
            recovered,
        } = &mut self.state
        else {
            return; // a stale answer
        };
        if b != self.ballot || first != *p1_from {
            return; // a stale or duplicate answer
        }
        Self::merge(recovered, &accepted);
        *promises |= 1 << pos;
        let promises = *promises;
        if !self.has_quorum(promises) {
            return;
        }
        if self.promised > self.ballot {
            // Our own acceptor promised a higher ballot meanwhile: of two contending
            // proposers the higher ballot wins; we give way.
            let leader = Some(NodeId(self.promised.node)).filter(|n| self.pos(*n).is_some());
            return self.step_down(leader, out);
        }
        self.become_leader(out);
    }

    fn on_accept(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        cmds: Vec<Option<C>>,
        leader_commit: Slot,
        out: &mut Out<Self, C>,
    ) {
        // PMS §2.2 (P1a): never accept below the promise.
        if b < self.promised && !self.cfg.bug(Bug::AcceptBelowPromise) {
            out.send(
                from,
                PaxosMsg::Nack {
                    ballot: b,
                    promised: self.promised,
                },
            );
            return;
        }
        if first == 0 {
            return; // malformed: slots are 1-based
        }
        // A leader gives way to a higher ballot. A candidate backs off before a live leader
        // when leases are on (it could not win against it anyway); without leases it backs
        // off only before a ballot at least its own, since a higher ballot will win.
        let back_off = self.is_leader() || self.cfg.check_quorum || b >= self.ballot;
        if self.role() != Role::Follower && back_off {
            debug_assert!(
                !self.is_leader() || b > self.ballot || self.cfg.any_bug(),
                "two leaders with ballot {b:?}"
            );
            self.step_down(Some(from), out);
        }
        if self.role() == Role::Follower {
            self.leader = Some(from);
            self.state = RoleState::Follower { leader_alive: true };
            self.arm_election_timer(out);
        }
        let upto = first + cmds.len() as Slot - 1;
        // Slots at or below our commit point are chosen already: keep them as they are.
        let skip = (self.commit + 1)
            .saturating_sub(first)
            .min(cmds.len() as Slot) as usize;
        let fresh_first = first + skip as Slot;
        let fresh: Vec<Option<C>> = cmds[skip..].to_vec();
        let promise_up = b > self.promised;
        if !fresh.is_empty() {
            let end = (fresh_first as usize - 1) + fresh.len();
            if self.log.len() < end {
                self.log.resize(end, None);
            }
            for (i, cmd) in fresh.iter().enumerate() {
                self.log[fresh_first as usize - 1 + i] = Some(Entry {
                    ballot: b,
                    cmd: cmd.clone(),
                });
            }
            self.promised = max(self.promised, b);
            out.persist(PaxosWrite::Accept {
                ballot: b,
                first: fresh_first,
                cmds: fresh,
            });
        } else if promise_up {
            self.promised = b;
            out.persist(PaxosWrite::Promise(b));
        }
        // Learn (PMS §2.3): slots up to the leader's commit point that we accepted in its
        // ballot hold the chosen value.
        let mut to = self.commit;
        while to < leader_commit.min(self.last()) {
            match &self.log[to as usize] {
                Some(e) if e.ballot == b => to += 1,
                _ => break,
            }
        }
        if to > self.commit {
            self.commit_to(to, out);
        }
        // A heartbeat names the leader's open slots (`leader_commit + 1 .. first`). We answer
        // it for those we hold, in its ballot or chosen (as an Accept's answer covers the
        // chosen slots it skipped), so an acknowledgement lost on the way is given again; and
        // we say we are behind if we lack one, so an Accept lost on the way to every acceptor
        // is re-sent. The leader alone cannot tell either loss from delay, and one open slot
        // stalls every slot after it.
        let (first, upto, lacks_open_slot) = if cmds.is_empty() {
            let open = leader_commit + 1;
            let held = (open..first)
                .take_while(|&s| {
                    s <= self.commit
                        || matches!(self.log.get(s as usize - 1), Some(Some(e)) if e.ballot == b)
                })
                .count() as Slot;
            let upto = open - 1 + held;
            (open, upto, upto + 1 < first)
        } else {
            (first, upto, false)
        };
        let behind = self.commit < leader_commit || lacks_open_slot;
        out.send(
            from,
            PaxosMsg::Accepted {
                ballot: b,
                first,
                upto,
                commit: self.commit,
                behind,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn on_accepted(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        upto: Slot,
        f_commit: Slot,
        behind: bool,
        out: &mut Out<Self, C>,
    ) {
        let Some(pos) = self.pos(from) else { return };
        let (commit, last) = (self.commit, self.last());
        let RoleState::Leader { heard, acks } = &mut self.state else {
            return;
        };
        if b != self.ballot {
            return;
        }
        *heard |= 1 << pos;
        for slot in max(first, commit + 1)..=upto.min(last) {
            acks[(slot - commit - 1) as usize] |= 1 << pos;
        }
        self.advance_leader_commit(out);
        if !behind {
            return;
        }
        // Catch-up: re-send, one batch, from its commit point if it is below ours (the chosen
        // slots it lacks), else from the first open slot it has not accepted.
        let lo = if f_commit < self.commit {
            Some(f_commit + 1)
        } else {
            let bit = 1 << pos;
            self.acks()
                .iter()
                .position(|&a| a & bit == 0)
                .map(|i| self.commit + 1 + i as Slot)
        };
        let Some(lo) = lo else { return };
        let hi = self.last().min(lo + self.cfg.max_batch as Slot - 1);
        let cmds = self.values(lo, hi);
        if !cmds.is_empty() {
            out.send(
                from,
                PaxosMsg::Accept {
                    ballot: b,
                    first: lo,
                    cmds,
                    commit: self.commit,
                },
            );
        }
    }

    fn on_nack(&mut self, b: Ballot, promised: Ballot, out: &mut Out<Self, C>) {
        if self.role() == Role::Follower || b != self.ballot || promised <= self.ballot {
            return;
        }
        // Someone promised a higher ballot: our leadership (or candidacy) is over.
        self.raise_promise(promised, out);
        self.step_down(None, out);
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
        let r = MultiPaxos {
            id,
            members: Fixed::new(members.to_vec()),
            cfg: Fixed::new(cfg.clone()),
            promised: d.promised,
            tried: d.tried,
            log: d.log,
            state: RoleState::Follower {
                leader_alive: false,
            },
            leader: None,
            commit: 0,
            ballot: Ballot::ZERO,
        };
        r.arm_election_timer(out);
        r
    }

    fn on_message(&mut self, from: NodeId, msg: PaxosMsg<C>, out: &mut Out<Self, C>) {
        if from == self.id || self.pos(from).is_none() {
            return;
        }
        match msg {
            PaxosMsg::Prepare {
                ballot,
                from: first,
            } => self.on_prepare(from, ballot, first, out),
            PaxosMsg::Promise {
                ballot,
                from: first,
                accepted,
            } => self.on_promise(from, ballot, first, accepted, out),
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
        }
    }

    fn on_timer(&mut self, timer: PaxosTimer, out: &mut Out<Self, C>) {
        match (timer, self.role()) {
            (PaxosTimer::Election, Role::Leader) => {
                if !self.cfg.check_quorum {
                    return;
                }
                // Step down unless a quorum answered since the last check.
                let me = 1 << self.me();
                let RoleState::Leader { heard, .. } = &mut self.state else {
                    unreachable!("matched a leader")
                };
                if heard.count_ones() as usize >= quorum(self.members.len()) {
                    *heard = me;
                    self.arm_election_timer(out);
                } else {
                    self.step_down(None, out);
                }
            }
            (PaxosTimer::Election, _) => self.campaign(out),
            (PaxosTimer::Heartbeat, Role::Leader) => {
                self.broadcast_accept(self.last() + 1, Vec::new(), out);
                self.arm_heartbeat(out);
            }
            (PaxosTimer::Heartbeat, _) => {}
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
        let first = self.last() + 1;
        let b = self.ballot;
        let cmds: Vec<Option<C>> = cmds.into_iter().map(Some).collect();
        self.log.extend(cmds.iter().map(|c| {
            Some(Entry {
                ballot: b,
                cmd: c.clone(),
            })
        }));
        let bit = 1u8 << self.me();
        let acks = self.acks();
        acks.resize(acks.len() + cmds.len(), bit);
        out.persist(PaxosWrite::Accept {
            ballot: b,
            first,
            cmds: cmds.clone(),
        });
        self.broadcast_accept(first, cmds, out);
        self.advance_leader_commit(out);
    }

    fn status(&self) -> Status {
        Status {
            role: self.role(),
            term: max(self.tried, self.promised.round),
            leader: self.leader,
            commit: self.commit,
            last: self.last(),
        }
    }

    fn id(&self) -> NodeId {
        self.id
    }

    fn committed(&self) -> BTreeMap<Slot, Option<C>> {
        self.log[..self.commit as usize]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    i as Slot + 1,
                    e.as_ref().expect("chosen slots hold a value").cmd.clone(),
                )
            })
            .collect()
    }

    fn apply_write(durable: &mut PaxosDurable<C>, write: &PaxosWrite<C>) {
        match write {
            PaxosWrite::Promise(b) => durable.promised = max(durable.promised, *b),
            PaxosWrite::Tried(r) => durable.tried = max(durable.tried, *r),
            PaxosWrite::Accept {
                ballot,
                first,
                cmds,
            } => {
                durable.promised = max(durable.promised, *ballot);
                let start = *first as usize - 1;
                if durable.log.len() < start + cmds.len() {
                    durable.log.resize(start + cmds.len(), None);
                }
                for (i, cmd) in cmds.iter().enumerate() {
                    durable.log[start + i] = Some(Entry {
                        ballot: *ballot,
                        cmd: cmd.clone(),
                    });
                }
            }
        }
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
        if from == self.id || self.pos(from).is_none() {
            return true;
        }
        let left =
            |b: Ballot, role: Role| b < self.ballot || (b == self.ballot && self.role() != role);
        match *msg {
            PaxosMsg::Prepare { .. } | PaxosMsg::Accept { .. } => false,
            PaxosMsg::Promise { ballot, .. } => left(ballot, Role::Candidate),
            PaxosMsg::Accepted { ballot, .. } => left(ballot, Role::Leader),
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
        rename_entries(&mut self.log, map);
        match &mut self.state {
            RoleState::Follower { .. } => {}
            RoleState::Candidate {
                promises,
                recovered,
                ..
            } => {
                *promises = map.mask(&self.members, *promises);
                rename_entries(recovered, map);
            }
            RoleState::Leader { heard, acks } => {
                *heard = map.mask(&self.members, *heard);
                for a in acks {
                    *a = map.mask(&self.members, *a);
                }
            }
        }
    }

    fn rename_msg(msg: &mut PaxosMsg<C>, map: &Renaming) {
        match msg {
            PaxosMsg::Prepare { ballot, .. }
            | PaxosMsg::Accept { ballot, .. }
            | PaxosMsg::Accepted { ballot, .. } => *ballot = ballot.renamed(map),
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
    /// What the acceptor accepted; `log()[0]` is slot 1.
    pub fn log(&self) -> &[Option<Entry<C>>] {
        &self.log
    }
    /// The durable image this replica's writes have built.
    pub fn durable(&self) -> PaxosDurable<C> {
        PaxosDurable {
            promised: self.promised,
            tried: self.tried,
            log: self.log.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invariants (PMS §2.1 safety requirements, PMMC §3 invariants A1-A5)
// ---------------------------------------------------------------------------------------------

/// At most one value is chosen per slot: a value is chosen when a quorum of the replicas
/// accepted it in the same ballot.
fn one_value_per_slot<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    let Some(first) = rs.first() else {
        return Ok(());
    };
    let q = quorum(first.members.len());
    let longest = rs.iter().map(|r| r.log.len()).max().unwrap_or(0);
    for i in 0..longest {
        let mut chosen: Option<&Entry<C>> = None;
        for r in rs {
            let Some(Some(e)) = r.log.get(i) else {
                continue;
            };
            let n = rs
                .iter()
                .filter(|o| matches!(o.log.get(i), Some(Some(x)) if x == e))
                .count();
            if n < q {
                continue;
            }
            match chosen {
                Some(c) if c.cmd != e.cmd => {
                    return Err(format!(
                        "slot {} chosen twice: {:?} in ballot {:?} and {:?} in ballot {:?}",
                        i + 1,
                        c.cmd,
                        c.ballot,
                        e.cmd,
                        e.ballot
                    ));
                }
                _ => chosen = Some(e),
            }
        }
    }
    Ok(())
}

/// PMMC A2/A3: an acceptor accepts only ballots at or below its promise.
fn accepted_below_promise<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    for r in rs {
        if let Some((i, e)) = r
            .log
            .iter()
            .enumerate()
            .find_map(|(i, e)| e.as_ref().filter(|e| e.ballot > r.promised).map(|e| (i, e)))
        {
            return Err(format!(
                "{} accepted ballot {:?} in slot {} above its promise {:?}",
                r.id,
                e.ballot,
                i + 1,
                r.promised
            ));
        }
    }
    Ok(())
}

/// Replicas that consider a slot chosen agree on its value (PMS §2.1).
fn committed_agree<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    for (k, a) in rs.iter().enumerate() {
        for b in &rs[k + 1..] {
            let c = a.commit.min(b.commit) as usize;
            for i in 0..c {
                let (x, y) = (
                    a.log[i].as_ref().map(|e| &e.cmd),
                    b.log[i].as_ref().map(|e| &e.cmd),
                );
                if x != y {
                    return Err(format!(
                        "{} and {} committed different values in slot {}",
                        a.id,
                        b.id,
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

fn term_monotonic<C: Command>(before: &MultiPaxos<C>, after: &MultiPaxos<C>) -> Result<(), String> {
    let (b, a) = (before.status().term, after.status().term);
    if a < b {
        return Err(format!("{} went from round {b} back to {a}", after.id));
    }
    Ok(())
}

/// PMS §2.2: an acceptor never goes back on a promise.
fn promise_monotonic<C: Command>(
    before: &MultiPaxos<C>,
    after: &MultiPaxos<C>,
) -> Result<(), String> {
    if after.promised < before.promised {
        return Err(format!(
            "{} promised {:?} and then only {:?}",
            after.id, before.promised, after.promised
        ));
    }
    Ok(())
}

fn committed_stable<C: Command>(
    before: &MultiPaxos<C>,
    after: &MultiPaxos<C>,
) -> Result<(), String> {
    let c = before.commit.min(after.commit) as usize;
    let cmds = |r: &MultiPaxos<C>| -> Vec<Option<C>> {
        r.log[..c]
            .iter()
            .map(|e| e.as_ref().and_then(|e| e.cmd.clone()))
            .collect()
    };
    if after.log.len() < c || cmds(before) != cmds(after) {
        return Err(format!(
            "{} changed a value at or below its commit point {c}",
            after.id
        ));
    }
    Ok(())
}
