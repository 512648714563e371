//! Multi-Paxos reads without the log ([`Replica::read`]): a quorum read at the leader, and
//! follower reads through it.
//!
//! # The leader's read (ReadIndex applied to Paxos)
//!
//! Ongaro's dissertation §6.4 serves a Raft read without a log entry: note the commit point,
//! confirm leadership with a heartbeat round to a majority, answer once the state machine has
//! applied the noted point. *Paxos Made Live* (Chandra, Griesemer, Redstone, PODC 2007) §5.2
//! reads at the master for the same reason (its state is current) and explains why the master
//! must first make sure it still is one. In multi-Paxos both halves take this form:
//!
//! 1. **The read index is the highest slot the leader proposed in its ballot, or recovered
//!    and will propose** (the last slot of its backlog, when its window held some back: see
//!    [`reconfig`]), not its commit point. Every value any replica has reported committed was
//!    chosen in some ballot. If that ballot is below ours, a quorum accepted it, so some
//!    acceptor of our phase 1 quorum reported it (PMS §2.2, the quorums intersect) and phase 1
//!    recovered it at its slot, which is at most the index (slots below where phase 1 started
//!    were already known chosen here). If it is our ballot, we proposed it (again at most the
//!    index). A new leader's commit point may lie below such a recovered slot until the
//!    slot is chosen again in its ballot: reading there would miss a value the previous
//!    leader chose and acknowledged (bug P8). So the read also waits for the commit point to
//!    reach the index, and `ReadReady { slot: index }` then comes after every commit up to it
//!    (rule 4 of the effect contract).
//! 2. **Confirm the ballot with a quorum of acceptors.** A value chosen in a *higher* ballot
//!    needs that ballot's phase 1 to have completed, so a quorum had promised it. The leader
//!    sends `ReadConfirm { ballot, round }`; an acceptor that has not promised above `ballot`
//!    answers `ReadConfirmed` (it changes no state: it only reports that its promise is not
//!    higher), else `Nack` with its promise, which deposes the leader as any refusal does. If
//!    a majority (the leader's own acceptor included) answers a round sent *after* the read
//!    arrived, no higher ballot had finished phase 1 before the read arrived (that quorum
//!    and ours intersect in an acceptor that promised higher before it answered us, and
//!    promises never go back), so nothing was chosen above our ballot before the read either.
//!    A round sent before the read may not confirm it: its answers could predate the read
//!    (bug P9 skips the round altogether). Rounds only grow within a ballot, so an answer to
//!    a later round confirms every earlier one.
//!
//! **Leases** (Ongaro's dissertation §6.4.1; *Paxos Made Live* §5.2's master leases; with
//! [`ReadMode::Lease`]): once a quorum confirmed a round sent at local time `s`, the leader
//! skips step 2 until `s + `[`Config::lease`] by its clock ([`crate::lease`]). Under leases a
//! confirmation is a promise too: the acceptor follows the leader, restarts its election
//! timer and, until it fires, ignores every `Prepare` from anybody else (`on_prepare`), so no
//! higher ballot completes phase 1 before the lease ends, whatever the clocks' drift within
//! [`Config::clock_drift`]. A restarted acceptor ignores them until its first election
//! timeout. Step 1 still applies.
//!
//! **Configurations** ([`reconfig`]). "A quorum" in both steps means a majority of the voters
//! of every configuration that may decide a slot above the commit point: those the chosen
//! slots set for the window and beyond, and those of configuration commands held above the
//! commit point (in the log or the backlog), which decide later slots if chosen. A higher
//! ballot's phase 1 for the first slot it could choose needs a majority of one of them (the
//! slots below it hold only values of our ballot or recovered by us, so its configuration is
//! one we hold), and so do the promises our step 1 relies on: a read waits until our
//! promises are a majority of each (phase 1 extended to a new voter, see [`reconfig`]).
//!
//! So the read may be linearized when it is served: every write acknowledged before the read
//! arrived is at or below the index, and everything up to the index is chosen and applied.
//!
//! A `read()` call starts one round for all its reads (the trait's batch). Reads wait in the
//! leader's role state, so they cannot outlive the leadership: stepping down hands every one
//! back (`ReadRedirect` with the new leader hint; a follower's request gets a refusal). A
//! heartbeat with reads still unconfirmed sends the latest round again, so a lost round only
//! delays them. At most [`MAX_PENDING_READS`] wait; more are handed back at once.
//!
//! # Follower reads (diss. §6.4, "followers could also help")
//!
//! With [`crate::Config::follower_reads`] a follower asks the replica it believes leads with
//! `AskReadIndex { seq, ids }`. The leader runs the same procedure and answers `ReadIndex
//! { seq, ids, index: Some(i) }` once the read is confirmed and `i` chosen (or `None`: it
//! does not lead, or is full). The follower then serves each read once its own commit point
//! reached `i`: the index was computed after the request left, so after the read arrived.
//! An answer is matched by the sequence number the follower gave the request in this
//! incarnation *and* its read ids, so a duplicated old answer cannot serve a newer read that
//! reuses an id (a host that restarts must not hand out again, for a new read, an id it used
//! before the crash while an answer for it may still be in flight: the sequence numbers
//! restart too). A follower that learns of a new ballot (a higher promise, another leader, a
//! candidacy of its own) hands back the reads still waiting for the old leader's answer:
//! that answer may never come. Reads that have their index keep waiting whatever the role:
//! the index is chosen, so the commit point reaches it. An ask still unanswered after a whole
//! heartbeat interval of its leader is sent again (the answer to either copy serves it).
//!
//! A read served at the leader costs, in a cluster of `n`, one round trip to the fastest
//! `quorum - 1` acceptors: `2 (n - 1)` messages per `read()` batch (4 for 3 nodes), no write.
//! A follower read adds its request and the answer: `2 (n - 1) + 2`.

use super::*;
use crate::lease::Lease;
use crate::replica::LocalReads;

/// Most reads one replica keeps waiting (its host's and, at a leader, its followers'), so the
/// queues stay bounded; a read beyond it is handed back at once.
pub const MAX_PENDING_READS: usize = 4096;

/// A leader's reads: lives in [`RoleState::Leader`], so it dies with the leadership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct LeaderReads {
    /// The last confirmation round sent in this ballot (0: none yet).
    round: u64,
    /// By node id, the highest round that node confirmed in this ballot.
    confirmed: Vec<u64>,
    /// Waiting reads, in arrival order.
    waiting: Vec<LeaderRead>,
    /// Reads (ids) in `waiting`.
    count: usize,
    /// With [`ReadMode::Lease`]: the lease the confirmed rounds give (diss. §6.4.1).
    lease: Lease,
    /// With [`ReadMode::Lease`]: the highest slot phase 1 recovered (or a later promise
    /// reported) while the commit point is below it, else 0 (so that leaders that differ only
    /// in a bound that no longer binds are one state). Local reads wait for it.
    recovered: Slot,
}

/// Reads that arrived together at a leader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LeaderRead {
    /// The slot every answer must include.
    index: Slot,
    /// The first round sent after they arrived (0 under P9, and for reads served under the
    /// lease: none).
    round: u64,
    ids: Vec<ReadId>,
    /// `None`: this replica's host asked. Else the follower that asked, and its request's
    /// sequence number.
    asker: Option<(NodeId, u64)>,
}

impl LeaderReads {
    /// The leadership is being handed over: the lease ends for this ballot ([`Lease::end`]).
    pub(super) fn end_lease(&mut self) {
        self.lease.end();
    }
}

/// A replica's reads served through another replica's read index. Volatile, kept across role
/// changes (see the module docs for what a role change does to them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct ForwardedReads {
    /// The sequence number of the next request (per incarnation).
    next_seq: u64,
    /// Requests awaiting the leader's answer.
    asked: Vec<Asked>,
    /// Reads with their index, waiting for the commit point to reach it.
    indexed: Vec<(ReadId, Slot)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Asked {
    seq: u64,
    /// The replica asked.
    to: NodeId,
    /// Our promise when we asked: a higher one means a new ballot.
    ballot: Ballot,
    ids: Vec<ReadId>,
    /// A heartbeat of `to` came since the request left (the next one re-sends it).
    heartbeat_seen: bool,
}

impl ForwardedReads {
    fn count(&self) -> usize {
        self.asked.iter().map(|a| a.ids.len()).sum::<usize>() + self.indexed.len()
    }
}

impl<C: Command> MultiPaxos<C> {
    /// [`Replica::read`]: the leader reads by itself, a follower asks the leader (with
    /// `follower_reads`), anybody else hands the reads back.
    pub(super) fn start_reads(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, C>) {
        if ids.is_empty() {
            return;
        }
        match self.role() {
            Role::Leader => {
                if let Err(ids) = self.lead_read(ids, None, out) {
                    for id in ids {
                        out.read_redirect(id, self.leader);
                    }
                }
            }
            Role::Follower if self.cfg.follower_reads => self.forward_reads(ids, out),
            _ => {
                for id in ids {
                    out.read_redirect(id, self.leader);
                }
            }
        }
    }

    /// Leader: note the read index of `ids`, start a confirmation round for them, and serve
    /// them if both already hold. Hands the ids back if they do not fit.
    fn lead_read(
        &mut self,
        ids: Vec<ReadId>,
        asker: Option<(NodeId, u64)>,
        out: &mut Out<Self, C>,
    ) -> Result<(), Vec<ReadId>> {
        // P8: the commit point, which after phase 1 may lie below recovered slots that hold
        // values an earlier leader chose.
        let index = if self.cfg.bug(Bug::PaxosReadBeforeRecovery) {
            self.commit
        } else {
            self.read_index()
        };
        if self.handing_to().is_some() {
            // Handing the leadership over: the target's phase 1 may pass the lease, and the
            // reads go to it (see [`reconfig`]).
            return Err(ids);
        }
        let skip_round = self.cfg.bug(Bug::PaxosReadWithoutQuorum);
        let ballot = self.ballot;
        let RoleState::Leader { reads, .. } = &mut self.state else {
            unreachable!("only a leader reads by itself")
        };
        if reads.count + ids.len() > MAX_PENDING_READS {
            return Err(ids);
        }
        // Under the lease no higher ballot can complete phase 1 (diss. §6.4.1, applied to
        // the acceptors' promises), so the reads need no round: step 2 holds already.
        let leased = self.cfg.reads == ReadMode::Lease && {
            reads.lease.want();
            reads.lease.holds(self.now)
        };
        // P9: no round; the reads count as confirmed at once.
        let round = if skip_round || leased {
            0
        } else {
            reads.round += 1;
            reads.lease.sent(reads.round, self.now);
            reads.round
        };
        reads.count += ids.len();
        reads.waiting.push(LeaderRead {
            index,
            round,
            ids,
            asker,
        });
        if round > 0 {
            self.send_confirm(ballot, round, out);
        }
        self.release_reads(out);
        Ok(())
    }

    /// A new leader with [`ReadMode::Lease`]: a round at once, whose confirmations start the
    /// lease, so the first reads of the ballot need no round of their own.
    pub(super) fn start_lease(&mut self, out: &mut Out<Self, C>) {
        if self.cfg.reads != ReadMode::Lease {
            return;
        }
        if let RoleState::Leader { reads, .. } = &mut self.state {
            reads.lease.want();
        }
        self.renew_lease(out);
    }

    /// Heartbeat at a leader with [`ReadMode::Lease`]: a lease that reads relied on since the
    /// last heartbeat is renewed with a new round (which also confirms any read waiting for
    /// one). Returns whether a round went out.
    pub(super) fn renew_lease(&mut self, out: &mut Out<Self, C>) -> bool {
        let (ballot, now) = (self.ballot, self.now);
        let RoleState::Leader { reads, .. } = &mut self.state else {
            return false;
        };
        if self.cfg.reads != ReadMode::Lease || !reads.lease.renew() {
            return false;
        }
        reads.round += 1;
        reads.lease.sent(reads.round, now);
        let round = reads.round;
        self.send_confirm(ballot, round, out);
        true
    }

    fn send_confirm(&self, ballot: Ballot, round: u64, out: &mut Out<Self, C>) {
        for p in self.peers() {
            out.send(p, PaxosMsg::ReadConfirm { ballot, round });
        }
    }

    /// Leader heartbeat: while reads wait unconfirmed, the latest round is sent again (it, or
    /// its answers, may have been lost). The same round, not a new one: every copy of it
    /// left after the reads it covers arrived, so any answer to it still confirms them, and
    /// a repeated message changes no state (a model checker sees nothing new).
    pub(super) fn reconfirm_reads(&self, out: &mut Out<Self, C>) {
        let RoleState::Leader { reads, .. } = &self.state else {
            return;
        };
        let done = self.read_round(reads).unwrap_or(0);
        if reads.waiting.iter().any(|w| w.round > done) {
            self.send_confirm(self.ballot, reads.round, out);
        }
    }

    /// [`Replica::local_reads`]: a leader whose lease holds lets its host answer reads alone
    /// at its commit point once every slot phase 1 recovered is chosen again, while its
    /// promises are a majority of every configuration ahead and it is not handing its
    /// leadership over. Step 2 is the lease's. Step 1 at the commit point, with proposals
    /// of ours still open above it: a write acknowledged before the read is either ours,
    /// answered only once its slot was committed here (a follower learns a slot chosen from
    /// us, after us), so at or below the commit point; or chosen in an earlier ballot, so
    /// reported to our phase 1 (or to a later promise of a configuration ahead, which reads
    /// wait for) and recovered at or below `recovered`; or chosen in a higher ballot, which
    /// the lease rules out. [`Replica::read`] waits for everything proposed instead (its
    /// read index), which covers the same and more.
    pub(super) fn local_read_permit(&mut self) -> Option<LocalReads> {
        if self.cfg.reads != ReadMode::Lease || self.handing_to().is_some() {
            return None;
        }
        let (now, at) = (self.now, self.commit);
        let RoleState::Leader { reads, .. } = &self.state else {
            return None;
        };
        // P10: the commit point, though a recovered slot above it may hold a value an earlier
        // leader chose and acknowledged.
        if reads.recovered > at && !self.cfg.bug(Bug::LocalReadBeforeRecovery) {
            return None;
        }
        self.read_round(reads)?;
        let RoleState::Leader { reads, .. } = &mut self.state else {
            unreachable!("a leader above")
        };
        reads.lease.local_reads(now, at)
    }

    /// Leader with leases: phase 1 (at election, or a later promise) may have recovered
    /// slots up to the read index; local reads wait until the commit point reaches them.
    pub(super) fn note_recovered(&mut self) {
        if self.cfg.reads != ReadMode::Lease {
            return;
        }
        let (index, commit) = (self.read_index(), self.commit);
        if let RoleState::Leader { reads, .. } = &mut self.state {
            if index > commit {
                reads.recovered = reads.recovered.max(index);
            }
        }
    }

    /// The slot a leader's read must include: the highest it proposed, or recovered and will
    /// propose (a value phase 1 recovered may be chosen already, and acknowledged).
    fn read_index(&self) -> Slot {
        match &self.state {
            RoleState::Leader { backlog, .. } => self.proposed() + backlog.len() as Slot,
            _ => self.last(),
        }
    }

    /// The highest round a majority of every configuration that may decide a slot above the
    /// commit point confirmed (see [`reconfig`]); `None` while our promises are no majority
    /// of one of them (phase 1 has not reached it yet: no read is served, leased or not).
    fn read_round(&self, reads: &LeaderReads) -> Option<u64> {
        let ahead = self.ahead();
        if !ahead.iter().all(|c| self.promised_by(c)) {
            return None;
        }
        ahead
            .iter()
            .map(|c| reads.confirmed_round(self.id, c))
            .min()
    }

    /// Acceptor: confirm `ballot` unless we promised a higher one (then the refusal deposes
    /// the leader, as any refusal does). No state changes: the answer only reports that our
    /// promise is not above `ballot`.
    pub(super) fn on_read_confirm(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        round: u64,
        out: &mut Out<Self, C>,
    ) {
        let msg = if ballot < self.promised {
            PaxosMsg::Nack {
                ballot,
                promised: self.promised,
            }
        } else {
            if self.cfg.reads == ReadMode::Lease {
                // Under leases the answer is also a promise: no higher ballot of anybody
                // else for an election timeout (see `on_prepare`), so this acceptor follows
                // the leader and restarts its election timer, as on hearing an `Accept`. A
                // candidate gives up its campaign, or its own phase 1 could break the lease.
                if self.role() != Role::Follower {
                    self.step_down(Some(from), out);
                }
                self.leader = Some(from);
                self.state = RoleState::Follower { leader_alive: true };
                self.arm_election_timer(out);
            }
            PaxosMsg::ReadConfirmed { ballot, round }
        };
        out.send(from, msg);
    }

    /// Leader: `from` confirmed our ballot up to `round`.
    pub(super) fn on_read_confirmed(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        round: u64,
        out: &mut Out<Self, C>,
    ) {
        let RoleState::Leader { heard, reads, .. } = &mut self.state else {
            return;
        };
        if ballot != self.ballot || round > reads.round {
            return; // another ballot's, or not a round we sent
        }
        heard.insert(from);
        let Some(confirmed) = reads.confirmed.get_mut(from.index()) else {
            return;
        };
        if round <= *confirmed {
            return; // a duplicate or a late answer: nothing new
        }
        *confirmed = round;
        let RoleState::Leader { reads, .. } = &self.state else {
            unreachable!("matched a leader above")
        };
        let done = self.read_round(reads);
        let RoleState::Leader { reads, .. } = &mut self.state else {
            unreachable!("matched a leader above")
        };
        if let Some(done) = done {
            reads.lease.confirmed(done, &self.cfg);
        }
        self.release_reads(out);
    }

    /// Serve every read whose conditions now hold: at a leader, confirmed and its index
    /// chosen; a forwarded read, its index reached by our commit point.
    pub(super) fn release_reads(&mut self, out: &mut Out<Self, C>) {
        let commit = self.commit;
        if let RoleState::Leader { reads, .. } = &mut self.state {
            if reads.recovered <= commit {
                reads.recovered = 0;
            }
        }
        let done = match &self.state {
            RoleState::Leader { reads, .. } if !reads.waiting.is_empty() => self.read_round(reads),
            _ => None,
        };
        if let RoleState::Leader { reads, .. } = &mut self.state {
            // In arrival order; a read under the lease (round 0) may be ready before reads
            // that arrived earlier and still wait for their round.
            let is_ready =
                |w: &LeaderRead| done.is_some_and(|done| w.round <= done) && w.index <= commit;
            let ready: Vec<LeaderRead> = if reads.waiting.iter().any(is_ready) {
                let (ready, waiting) = std::mem::take(&mut reads.waiting)
                    .into_iter()
                    .partition(is_ready);
                reads.waiting = waiting;
                ready
            } else {
                Vec::new()
            };
            for w in ready {
                reads.count -= w.ids.len();
                match w.asker {
                    None => {
                        for id in w.ids {
                            out.read_ready(id, w.index);
                        }
                    }
                    Some((node, seq)) => out.send(
                        node,
                        PaxosMsg::ReadIndex {
                            seq,
                            ids: w.ids,
                            index: Some(w.index),
                        },
                    ),
                }
            }
        }
        self.forwarded.indexed.retain(|&(id, index)| {
            let ready = index <= commit;
            if ready {
                out.read_ready(id, index);
            }
            !ready
        });
    }

    /// Stepping down: hand back every read the leadership held (`reads`, taken out of the
    /// leader's state), to our host with the new leader hint, to followers as a refusal.
    pub(super) fn hand_back_reads(&self, reads: LeaderReads, out: &mut Out<Self, C>) {
        for w in reads.waiting {
            match w.asker {
                None => {
                    for id in w.ids {
                        out.read_redirect(id, self.leader);
                    }
                }
                Some((node, seq)) => out.send(
                    node,
                    PaxosMsg::ReadIndex {
                        seq,
                        ids: w.ids,
                        index: None,
                    },
                ),
            }
        }
    }

    /// Follower: ask the leader we know for a read index, or hand the reads back.
    fn forward_reads(&mut self, mut ids: Vec<ReadId>, out: &mut Out<Self, C>) {
        let Some(to) = self.leader.filter(|&l| l != self.id) else {
            for id in ids {
                out.read_redirect(id, None);
            }
            return;
        };
        let room = MAX_PENDING_READS.saturating_sub(self.forwarded.count());
        if ids.len() > room {
            for id in ids.drain(room..) {
                out.read_redirect(id, self.leader);
            }
        }
        if ids.is_empty() {
            return;
        }
        let seq = self.forwarded.next_seq;
        self.forwarded.next_seq += 1;
        out.send(
            to,
            PaxosMsg::AskReadIndex {
                seq,
                ids: ids.clone(),
            },
        );
        self.forwarded.asked.push(Asked {
            seq,
            to,
            ballot: self.promised,
            ids,
            heartbeat_seen: false,
        });
    }

    /// A follower asks us for a read index: run the leader's read for it, or refuse.
    pub(super) fn on_ask_read_index(
        &mut self,
        from: NodeId,
        seq: u64,
        ids: Vec<ReadId>,
        out: &mut Out<Self, C>,
    ) {
        let refused = if self.is_leader() {
            self.lead_read(ids, Some((from, seq)), out).err()
        } else {
            Some(ids)
        };
        if let Some(ids) = refused {
            out.send(
                from,
                PaxosMsg::ReadIndex {
                    seq,
                    ids,
                    index: None,
                },
            );
        }
    }

    /// The answer to one of our requests: wait for the index, or hand the reads back.
    pub(super) fn on_read_index(
        &mut self,
        from: NodeId,
        seq: u64,
        ids: Vec<ReadId>,
        index: Option<Slot>,
        out: &mut Out<Self, C>,
    ) {
        let asked = &mut self.forwarded.asked;
        let Some(k) = asked
            .iter()
            .position(|a| a.seq == seq && a.to == from && a.ids == ids)
        else {
            return; // answered already, handed back, or not ours
        };
        let a = asked.remove(k);
        match index {
            Some(index) => {
                self.forwarded
                    .indexed
                    .extend(a.ids.into_iter().map(|id| (id, index)));
                self.release_reads(out);
            }
            None => {
                for id in a.ids {
                    out.read_redirect(id, self.leader);
                }
            }
        }
    }

    /// After every step: requests to a leader of an older ballot are handed back (its answer
    /// may never come); so are they when we no longer follow it.
    pub(super) fn drop_stale_asks(&mut self, out: &mut Out<Self, C>) {
        if self.forwarded.asked.is_empty() {
            return;
        }
        let (role, leader, promised) = (self.role(), self.leader, self.promised);
        let stale =
            |a: &Asked| role != Role::Follower || leader != Some(a.to) || promised > a.ballot;
        let (gone, kept): (Vec<Asked>, Vec<Asked>) = std::mem::take(&mut self.forwarded.asked)
            .into_iter()
            .partition(stale);
        self.forwarded.asked = kept;
        for a in gone {
            for id in a.ids {
                out.read_redirect(id, leader);
            }
        }
    }

    /// A heartbeat from `from`: send again the requests to it that already waited through one.
    pub(super) fn reask_on_heartbeat(&mut self, from: NodeId, out: &mut Out<Self, C>) {
        for a in self.forwarded.asked.iter_mut().filter(|a| a.to == from) {
            if a.heartbeat_seen {
                out.send(
                    from,
                    PaxosMsg::AskReadIndex {
                        seq: a.seq,
                        ids: a.ids.clone(),
                    },
                );
            }
            a.heartbeat_seen = true;
        }
    }

    /// Whether a `ReadIndex` answer from `from` can never be acted on: its request was
    /// answered or handed back (sequence numbers are not reused within an incarnation).
    pub(super) fn read_index_obsolete(&self, from: NodeId, seq: u64) -> bool {
        seq < self.forwarded.next_seq
            && !self
                .forwarded
                .asked
                .iter()
                .any(|a| a.seq == seq && a.to == from)
    }

    /// Rename the node ids the read state holds (see [`Replica::rename`]).
    pub(super) fn rename_reads(&mut self, map: &Renaming) {
        for a in &mut self.forwarded.asked {
            a.to = map.id(a.to);
            a.ballot = a.ballot.renamed(map);
        }
        if let RoleState::Leader { reads, .. } = &mut self.state {
            map.by_id(&mut reads.confirmed);
            for w in &mut reads.waiting {
                if let Some((node, _)) = &mut w.asker {
                    *node = map.id(*node);
                }
            }
        }
    }
}

impl LeaderReads {
    /// No reads yet.
    pub(super) fn new() -> Self {
        LeaderReads {
            confirmed: vec![0; MAX_NODES],
            ..LeaderReads::default()
        }
    }

    /// The highest round a quorum of `config` has confirmed, we ourselves (`me`) included:
    /// we confirm every round we send.
    fn confirmed_round(&self, me: NodeId, config: &Membership) -> u64 {
        config.quorum_value(|id| {
            if id == me {
                self.round
            } else {
                self.confirmed.get(id.index()).copied().unwrap_or(0)
            }
        })
    }
}
