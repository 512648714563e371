//! Raft read-only requests without the log: ReadIndex (Ongaro's dissertation §6.4), served
//! by the leader or, with [`Config::follower_reads`], by a follower that asks it for the index.
//!
//! A read must see every write committed before it arrived. Writing it to the log would do,
//! at the cost of a log write and a replication round; §6.4 does without both:
//!
//! 1. **The term's first commit.** A new leader's commit point may lag what its predecessor
//!    committed (it learns only by committing an entry of its own term, §5.4.2). Reads wait
//!    until the leader's no-op of this term has committed; then the *read index* is the commit
//!    point at that moment (or at the read's arrival, if the term has committed already).
//! 2. **Still the leader?** A newer leader may have committed writes this one does not know.
//!    The leader sends a *round* to its peers and waits until a majority (itself included)
//!    has acknowledged it in the current term: no majority can then have elected a newer
//!    leader before the round left, so nothing was committed elsewhere before it. The round
//!    must have left *after* the read arrived: acknowledgements of an earlier round may
//!    predate the read, and a newer leader may have committed between them and the read.
//!    Rounds are numbered, the number only grows within the leadership, and a read belongs to
//!    the first round sent after it arrived; an acknowledgement of that round or a later one
//!    counts. Every read of one [`Replica::read`] call (or one follower's request) shares one
//!    round. A cluster of one confirms at once.
//! 3. **Serve.** The leader has committed the index, so it emits
//!    [`Effect::ReadReady`](crate::Effect::ReadReady) at once: the host answers from a state
//!    machine that has applied at least the index.
//!
//! **Followers could also help** (§6.4): a follower asks its leader for a read index (one
//! [`RaftMsg::ReadIndex`] per batch), the leader runs steps 1 and 2 and answers with the
//! index ([`RaftMsg::ReadIndexReply`], or a refusal when it cannot), and the follower serves
//! the read once its own commit point has reached the index. Reads the follower has asked
//! about and that have no index yet are handed back when its term changes (the answer, if it
//! comes, is from a term it left); reads that have one keep waiting for it (the index stays
//! valid: it covers every commit before the read arrived, whatever happens next).
//!
//! **Leases** (§6.4.1, with [`ReadMode::Lease`]): a majority's acknowledgement of a round
//! sent at local time `s` lets the leader skip step 2 until `s + `[`Config::lease`] by its
//! clock ([`crate::lease`]): the followers that acknowledged restarted their election timers
//! and refuse votes (CheckQuorum) until those run out, so no newer leader exists before then,
//! even with every clock drifting by [`Config::clock_drift`]. A restarted follower refuses
//! votes until its first election timeout (it may have acknowledged a round before the
//! crash). Step 1 still applies. Rounds renew the lease with the heartbeat after a read used
//! it; outside the lease reads confirm with a round, as above. A leader that sent TimeoutNow
//! ends its lease for the rest of its term ([`Lease::end`]): the target's TransferVote passes
//! the followers' promise, now or when a late copy arrives (bug B5 keeps the lease).
//!
//! # Why a dedicated message pair, not a context on AppendEntries
//!
//! etcd-raft piggybacks the round on heartbeats (a context echoed in the reply). Here the
//! round is its own pair, [`RaftMsg::ReadConfirm`] and [`RaftMsg::ReadAck`]: it leaves the
//! replication path (its flow control, its probing, its golden traces) untouched, so reads
//! through the log behave exactly as before; a round goes out the moment reads arrive instead
//! of waiting up to a heartbeat interval; and the model checker meets read messages only in
//! runs that read, instead of a round number in every append of every run. It costs the same
//! as one heartbeat round: 2 (n - 1) messages, 4 in a 3-node cluster (plus the follower's
//! request and answer for a follower read: 6). A follower treats a `ReadConfirm` exactly as it
//! treats an append (it hears from its leader: lease renewed, election timer reset), and a
//! leader counts a `ReadAck` towards CheckQuorum's `active` set like any append reply.
//!
//! # Bounds and hand-backs
//!
//! Every queue is bounded by [`MAX_PENDING_READS`] read ids (one bound for what a leader
//! holds, one for what a follower holds); a read past it is handed back at once. A leader's
//! read state lives in [`RoleState::Leader`], so it cannot outlive the leadership: stepping
//! down hands every pending read back (its own host's with a redirect, a follower's with a
//! refusal). A lost round is re-sent (same number, so still after every pending read) with
//! each heartbeat while reads wait.

use super::*;
use crate::lease::Lease;
use crate::replica::{LocalReads, ReadId, ReadMode};

/// Most read ids a replica holds at once: as leader (its host's reads and its followers'
/// requests), and separately as a follower (asked, or waiting to apply). A read past it is
/// handed back at once, so that no queue grows without bound.
pub const MAX_PENDING_READS: usize = 4096;

/// Who waits for a batch of reads a leader confirms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Asker {
    /// This replica's host (through [`Replica::read`]).
    Local,
    /// Request `req` of the follower `node` ([`RaftMsg::ReadIndex`]).
    Follower { node: NodeId, req: u64 },
}

/// A batch of reads that arrived together at a leader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ReadBatch {
    pub(super) asker: Asker,
    pub(super) ids: Vec<ReadId>,
    /// The first round sent after the batch arrived: its acknowledgement by a majority
    /// confirms the leadership for these reads (step 2).
    pub(super) round: u64,
    /// The read index, `None` until the leader has committed an entry of its term (step 1).
    pub(super) index: Option<Slot>,
}

/// A leader's read-only state (kept in [`RoleState::Leader`], so it dies with the leadership).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct LeaderReads {
    /// The last round sent in this leadership (0: none yet). Only grows.
    pub(super) round: u64,
    /// By node id: the highest round that member acknowledged in this term (the leader's
    /// own entry is the last round it sent: it agrees with itself).
    pub(super) acked: [u64; crate::MAX_NODES],
    /// The batches not yet served, in the order they arrived (so by round).
    pub(super) batches: Vec<ReadBatch>,
    /// With [`ReadMode::Lease`]: the lease the acknowledged rounds give (diss. §6.4.1).
    pub(super) lease: Lease,
}

impl LeaderReads {
    fn pending(&self) -> usize {
        self.batches.iter().map(|b| b.ids.len()).sum()
    }

    /// The highest round a quorum of `config` has acknowledged.
    fn confirmed(&self, config: &Membership) -> u64 {
        config.quorum_value(|n| self.acked[n.index()])
    }

    pub(super) fn rename(&mut self, map: &Renaming) {
        let old = self.acked;
        for (i, &a) in old.iter().enumerate() {
            self.acked[map.id(NodeId(i as u8)).index()] = a;
        }
        for b in &mut self.batches {
            if let Asker::Follower { node, .. } = &mut b.asker {
                *node = map.id(*node);
            }
        }
    }
}

/// A replica's reads served as a follower. Not role state: reads that have their index keep
/// waiting through role changes (the index stays valid), and a pre-candidate that returns to
/// following in the same term may still get the answers it asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct FollowerReads {
    /// The number of the next request to the leader. Only grows within an incarnation, so a
    /// duplicated answer to an earlier request never serves a later read that reused an id.
    pub(super) next_req: u64,
    /// Requests sent to the leader and not yet answered: number and the reads still waiting.
    pub(super) asking: Vec<(u64, Vec<ReadId>)>,
    /// Reads with a read index, waiting for this replica to commit up to it.
    pub(super) applying: Vec<(Slot, ReadId)>,
}

impl FollowerReads {
    fn pending(&self) -> usize {
        self.asking.iter().map(|(_, ids)| ids.len()).sum::<usize>() + self.applying.len()
    }

    /// Whether an answer to request `req` could still serve a read (see [`Replica::obsolete`]).
    pub(super) fn may_answer(&self, req: u64) -> bool {
        req >= self.next_req || self.asking.iter().any(|(r, _)| *r == req)
    }
}

/// Split `ids` into the ones that fit beside `pending` reads and the overflow.
fn fit(mut ids: Vec<ReadId>, pending: usize) -> (Vec<ReadId>, Vec<ReadId>) {
    let room = MAX_PENDING_READS.saturating_sub(pending);
    let over = ids.split_off(min(room, ids.len()));
    (ids, over)
}

impl<C: Command> Raft<C> {
    /// [`Replica::read`]: the leader confirms, a follower with `follower_reads` asks its
    /// leader, anyone else hands the reads back.
    ///
    /// A read asked again while it waits here (a host retrying it, perhaps because a request
    /// or its answer was lost) is withdrawn from where it waited and taken as a new read: it
    /// is answered once, and at an index fixed after the last time it was asked.
    pub(super) fn read_ids(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, C>) {
        self.reads.applying.retain(|(_, id)| !ids.contains(id));
        for (_, waiting) in &mut self.reads.asking {
            waiting.retain(|id| !ids.contains(id));
        }
        self.reads.asking.retain(|(_, waiting)| !waiting.is_empty());
        if let RoleState::Leader { reads, .. } = &mut self.state {
            for b in reads.batches.iter_mut().filter(|b| b.asker == Asker::Local) {
                b.ids.retain(|id| !ids.contains(id));
            }
            reads.batches.retain(|b| !b.ids.is_empty());
        }
        if ids.is_empty() {
            return;
        }
        if self.is_leader() {
            let over = self.start_read(Asker::Local, ids, out);
            let me = Some(self.id);
            for id in over {
                out.read_redirect(id, me);
            }
            return;
        }
        let leader = match self.leader {
            Some(l) if self.cfg.follower_reads && self.role() == Role::Follower => l,
            hint => {
                for id in ids {
                    out.read_redirect(id, hint);
                }
                return;
            }
        };
        let (ids, over) = fit(ids, self.reads.pending());
        for id in over {
            out.read_redirect(id, Some(leader));
        }
        if ids.is_empty() {
            return;
        }
        let req = self.reads.next_req;
        self.reads.next_req += 1;
        self.reads.asking.push((req, ids.clone()));
        let term = self.term;
        out.send(leader, RaftMsg::ReadIndex { term, req, ids });
    }

    /// Leader: take a batch of reads, fix its index if the term has committed (step 1), send a
    /// new round for it (step 2) and serve what is confirmed. Returns the reads past the bound.
    fn start_read(
        &mut self,
        asker: Asker,
        ids: Vec<ReadId>,
        out: &mut Out<Self, C>,
    ) -> Vec<ReadId> {
        // R12: the index is the commit point at arrival even before the term's first commit.
        let index = (self.term_committed() || self.cfg.bug(Bug::ReadIndexBeforeTermCommit))
            .then_some(self.commit);
        // R13: no round at all; the reads go as soon as they have an index.
        let quorum_round = !self.cfg.bug(Bug::ReadWithoutQuorum);
        let (me, term) = (self.id.index(), self.term);
        let RoleState::Leader { reads, .. } = &mut self.state else {
            unreachable!("only a leader confirms reads")
        };
        let (ids, over) = fit(ids, reads.pending());
        if ids.is_empty() {
            return over;
        }
        if self.cfg.reads == ReadMode::Lease {
            reads.lease.want();
            // Under the lease no newer leader exists (diss. §6.4.1), so once this term has
            // committed, the commit point covers every write acknowledged before the reads.
            if let (true, Some(index)) = (reads.lease.holds(self.now), index) {
                reads.batches.push(ReadBatch {
                    asker,
                    ids,
                    round: 0,
                    index: Some(index),
                });
                self.serve_reads(out);
                return over;
            }
        }
        if quorum_round {
            reads.round += 1;
            reads.acked[me] = reads.round;
            reads.lease.sent(reads.round, self.now);
        }
        reads.batches.push(ReadBatch {
            asker,
            ids,
            round: reads.round,
            index,
        });
        if quorum_round {
            let round = reads.round;
            for p in self.peers() {
                out.send(p, RaftMsg::ReadConfirm { term, round });
            }
        }
        self.serve_reads(out);
        over
    }

    /// [`Replica::local_reads`]: a leader whose lease holds lets its host answer reads alone
    /// at its commit point, once this term has committed (step 1: before that the commit
    /// point may lag what the previous leader committed; bug R16 skips the check). Step 2 is
    /// the lease's: no newer leader exists before it ends, and a handover ends it first.
    pub(super) fn local_read_permit(&mut self) -> Option<LocalReads> {
        let term_committed = self.term_committed() || self.cfg.bug(Bug::LocalReadBeforeTermCommit);
        if self.cfg.reads != ReadMode::Lease || !term_committed {
            return None;
        }
        let (now, at) = (self.now, self.commit);
        let RoleState::Leader { reads, .. } = &mut self.state else {
            return None;
        };
        reads.lease.local_reads(now, at)
    }

    /// Whether the leader has committed an entry of its own term (§6.4 step 1; §5.4.2: only
    /// then does its commit point cover everything committed before it).
    pub(super) fn term_committed(&self) -> bool {
        self.term_at(self.commit) == Some(self.term)
    }

    /// Leader: serve every batch that has its index and whose round a majority acknowledged.
    fn serve_reads(&mut self, out: &mut Out<Self, C>) {
        let skip_round = self.cfg.bug(Bug::ReadWithoutQuorum);
        let term = self.term;
        let RoleState::Leader { reads, .. } = &mut self.state else {
            return;
        };
        let confirmed = reads.confirmed(&self.config);
        let (ready, waiting): (Vec<ReadBatch>, Vec<ReadBatch>) = std::mem::take(&mut reads.batches)
            .into_iter()
            .partition(|b| b.index.is_some() && (skip_round || b.round <= confirmed));
        reads.batches = waiting;
        for b in ready {
            let index = b.index.expect("partitioned on it");
            debug_assert!(index <= self.commit, "a leader serves what it committed");
            match b.asker {
                Asker::Local => {
                    for id in b.ids {
                        out.read_ready(id, index);
                    }
                }
                Asker::Follower { node, req } => {
                    let msg = RaftMsg::ReadIndexReply {
                        term,
                        req,
                        ids: b.ids,
                        index: Some(index),
                    };
                    out.send(node, msg);
                }
            }
        }
    }

    /// The commit point advanced (at any role): a leader whose term has now committed fixes
    /// the index of the reads that waited for it (step 1) and serves what is confirmed; reads
    /// served as a follower whose index is now committed are ready.
    pub(super) fn reads_on_commit(&mut self, out: &mut Out<Self, C>) {
        if self.is_leader() && self.term_committed() {
            let commit = self.commit;
            if let RoleState::Leader { reads, .. } = &mut self.state {
                for b in reads.batches.iter_mut().filter(|b| b.index.is_none()) {
                    b.index = Some(commit);
                }
            }
            self.serve_reads(out);
        }
        let commit = self.commit;
        let applying = std::mem::take(&mut self.reads.applying);
        for (index, id) in applying {
            if index <= commit {
                out.read_ready(id, index);
            } else {
                self.reads.applying.push((index, id));
            }
        }
    }

    /// Heartbeat at a leader: re-send the last round to the peers that have not acknowledged
    /// it while reads wait for it (a lost round must not strand them). The same number is
    /// still a round sent after every pending read arrived.
    pub(super) fn resend_read_round(&self, out: &mut Out<Self, C>) {
        let RoleState::Leader { reads, .. } = &self.state else {
            return;
        };
        if !reads
            .batches
            .iter()
            .any(|b| b.round > reads.confirmed(&self.config))
        {
            return;
        }
        let (term, round) = (self.term, reads.round);
        for p in self.peers() {
            if reads.acked[p.index()] < round {
                out.send(p, RaftMsg::ReadConfirm { term, round });
            }
        }
    }

    /// A leader steps down (its role state is gone, in `old`): hand back every read it held,
    /// its host's with a redirect to `hint`, a follower's with a refusal.
    pub(super) fn reads_on_step_down(
        &mut self,
        old: LeaderReads,
        hint: Option<NodeId>,
        out: &mut Out<Self, C>,
    ) {
        let term = self.term;
        for b in old.batches {
            match b.asker {
                Asker::Local => {
                    for id in b.ids {
                        out.read_redirect(id, hint);
                    }
                }
                Asker::Follower { node, req } => {
                    let msg = RaftMsg::ReadIndexReply {
                        term,
                        req,
                        ids: b.ids,
                        index: None,
                    };
                    out.send(node, msg);
                }
            }
        }
    }

    /// This replica's term changed: reads it asked a leader about and has no index for are
    /// handed back (any answer would come from a term it left); reads with an index wait on.
    pub(super) fn reads_on_new_term(&mut self, hint: Option<NodeId>, out: &mut Out<Self, C>) {
        for (_, ids) in std::mem::take(&mut self.reads.asking) {
            for id in ids {
                out.read_redirect(id, hint);
            }
        }
    }

    /// A round from the leader of our term: it is hearing from the leader (as an append is),
    /// and the acknowledgement echoes the round.
    pub(super) fn on_read_confirm(
        &mut self,
        from: NodeId,
        term: u64,
        round: u64,
        out: &mut Out<Self, C>,
    ) {
        self.heard_from_leader(from, term, out);
        out.send(from, RaftMsg::ReadAck { term, round });
    }

    /// Leader: a peer acknowledged round `round` of this term.
    pub(super) fn on_read_ack(&mut self, from: NodeId, round: u64, out: &mut Out<Self, C>) {
        if !self.config.members().contains(from) {
            return;
        }
        let RoleState::Leader { active, reads, .. } = &mut self.state else {
            return;
        };
        active.insert(from);
        let pos = from.index();
        if round > reads.acked[pos] {
            reads.acked[pos] = round;
            let confirmed = reads.confirmed(&self.config);
            reads.lease.confirmed(confirmed, &self.cfg);
            self.serve_reads(out);
        }
    }

    /// Heartbeat at a leader with [`ReadMode::Lease`]: a lease that reads relied on since the
    /// last heartbeat is renewed with a new round (which also confirms any read waiting for
    /// one). Returns whether a round went out.
    pub(super) fn renew_lease(&mut self, out: &mut Out<Self, C>) -> bool {
        let (me, term, now) = (self.id.index(), self.term, self.now);
        let RoleState::Leader { reads, .. } = &mut self.state else {
            return false;
        };
        if self.cfg.reads != ReadMode::Lease || !reads.lease.renew() {
            return false;
        }
        reads.round += 1;
        reads.acked[me] = reads.round;
        reads.lease.sent(reads.round, now);
        let round = reads.round;
        for p in self.peers() {
            out.send(p, RaftMsg::ReadConfirm { term, round });
        }
        true
    }

    /// A follower asks for a read index: a leader runs steps 1 and 2 for it; anyone else, or a
    /// leader past its bound, refuses.
    pub(super) fn on_read_index(
        &mut self,
        from: NodeId,
        req: u64,
        ids: Vec<ReadId>,
        out: &mut Out<Self, C>,
    ) {
        let over = if self.is_leader() {
            self.start_read(Asker::Follower { node: from, req }, ids, out)
        } else {
            ids
        };
        if !over.is_empty() {
            let term = self.term;
            let msg = RaftMsg::ReadIndexReply {
                term,
                req,
                ids: over,
                index: None,
            };
            out.send(from, msg);
        }
    }

    /// The leader answered request `req` of this term: each read still waiting for it gets
    /// its index (served once this replica has committed up to it) or is handed back.
    pub(super) fn on_read_index_reply(
        &mut self,
        req: u64,
        ids: Vec<ReadId>,
        index: Option<Slot>,
        out: &mut Out<Self, C>,
    ) {
        let Some(k) = self.reads.asking.iter().position(|(r, _)| *r == req) else {
            return; // answered already (a duplicate) or handed back
        };
        // R14: serve at the index from whatever is applied, without waiting to reach it.
        let no_wait = self.cfg.bug(Bug::FollowerReadNoWait);
        for id in ids {
            let waiting = &mut self.reads.asking[k].1;
            let Some(w) = waiting.iter().position(|&x| x == id) else {
                continue;
            };
            waiting.remove(w);
            match index {
                Some(index) if index <= self.commit || no_wait => out.read_ready(id, index),
                Some(index) => self.reads.applying.push((index, id)),
                None => out.read_redirect(id, self.leader),
            }
        }
        if self.reads.asking[k].1.is_empty() {
            self.reads.asking.remove(k);
        }
    }
}
