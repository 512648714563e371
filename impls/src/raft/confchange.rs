//! Raft membership changes (diss. §4; the paper's §6 for joint consensus).
//!
//! * **Configurations are log entries, in force once appended (diss. §4.1).** Every server
//!   uses the latest configuration in its log, committed or not; one truncated away takes
//!   the previous one with it (`config_from_log`). A snapshot carries the configuration at
//!   its slot, so compaction never loses it.
//! * **One change at a time, after an entry of the leader's term (diss. §4.1 and its 2015
//!   erratum).** A leader starts a change only when its latest configuration entry is
//!   committed *and* it has committed an entry of its own term (its no-op). Without the
//!   second rule two leaders of successive terms can each append one change to the same
//!   base (the first never committed, the second unaware of it); the two results differ by
//!   two servers and their majorities need not meet (Ongaro, raft-dev, "bug in single-server
//!   membership changes", 2015). Committing in its term proves that no other leader's
//!   uncommitted change can still commit ([`crate::membership`] has the quorum argument).
//! * **Joint consensus (§6), with [`ChangeMode::Joint`].** The leader appends C_old,new;
//!   from then on every decision (commit, election, read round) needs a majority of both; once
//!   C_old,new is committed it appends C_new, and the operator is answered when C_new commits.
//! * **A leader not in its new configuration** keeps leading until that configuration is
//!   committed (it replicates it without counting itself), then steps down (§6: "the leader
//!   steps down once C_new is committed"). A server that is not a voter of its latest
//!   configuration never campaigns; learners receive the log and never vote or count.
//! * **Learners are promoted only once caught up (diss. §4.2.1):** within `max_batch` entries
//!   of the leader's log, so that the new voter does not stall commitment while it catches up.

use super::*;
use crate::membership::ChangeError;

/// A leadership transfer under way at the leader (diss. §3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Transfer {
    /// The host's id for the request.
    pub(super) id: ChangeId,
    /// The voter that is to lead.
    pub(super) target: NodeId,
    /// TimeoutNow went out: the target had every entry of our log.
    pub(super) sent: bool,
}

/// A former leader waiting to hear from the target it handed off to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Handoff {
    /// The host's id for the request.
    pub(super) id: ChangeId,
    /// The target.
    pub(super) target: NodeId,
    /// The term the target campaigns in.
    pub(super) term: u64,
}

/// An operator's change whose configuration entry waits to commit at the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct PendingChange {
    /// The host's id for the request.
    pub(super) id: ChangeId,
    /// The slot of the configuration entry that answers it once committed.
    pub(super) slot: Slot,
}

impl<C: Command> Raft<C> {
    /// The configuration in force at `slot`: the latest configuration entry at or below it,
    /// else the snapshot's, else the boot configuration. `(config, its slot)`.
    pub(super) fn config_at(&self, slot: Slot) -> (Membership, Slot) {
        let base = self.snap_index();
        let top = min(slot, self.last_index());
        for s in (base + 1..=top).rev() {
            if let Some(c) = self.entry_at(s).and_then(|e| e.config) {
                return (c, s);
            }
        }
        (self.snapshot.as_ref().map_or(self.initial, |s| s.config), 0)
    }

    /// Recompute the configuration after the log changed at or below `config_index` (a
    /// truncation, a snapshot), from the log's end down.
    pub(super) fn config_from_log(&mut self) {
        (self.config, self.config_index) = self.config_at(self.last_index());
        self.resize_progress();
    }

    /// The log gained `entries` at slot `at` (after truncating from `at` on): follow the
    /// latest configuration among them, or fall back if the truncation took ours.
    pub(super) fn config_on_append(&mut self, at: Slot, entries: &[Entry<C>]) {
        if let Some((i, c)) = entries
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| e.config.map(|c| (i, c)))
        {
            self.config = c;
            self.config_index = at + i as Slot;
            self.resize_progress();
        } else if self.config_index >= at {
            self.config_from_log();
        }
    }

    /// A leader tracks every member of its configuration: a member new to it is probed from
    /// the leader's last entry (the configuration that added it, when a change did).
    fn resize_progress(&mut self) {
        let next = self.last_index().max(1);
        let members = self.config.members();
        let RoleState::Leader { progress, .. } = &mut self.state else {
            return;
        };
        let len = members.span();
        if progress.len() < len {
            progress.resize(len, Progress::fresh(next));
        }
    }

    /// An operator's change (rule 9 of the effect contract).
    pub(super) fn on_change(&mut self, id: ChangeId, change: Change, out: &mut Out<Self, C>) {
        if !self.is_leader() {
            return out.change_done(
                id,
                Err(ChangeError::NotLeader {
                    leader: self.leader,
                }),
            );
        }
        if let RoleState::Leader {
            transfer: Some(_), ..
        } = self.state
        {
            return out.change_done(id, Err(ChangeError::Pending));
        }
        if let Change::Transfer(target) = change {
            return self.start_transfer(id, target, out);
        }
        let pending = matches!(
            self.state,
            RoleState::Leader {
                change: Some(_),
                ..
            }
        );
        // One at a time: our latest configuration is committed (M2 skips this).
        let uncommitted = self.config_index > self.commit && !self.cfg.bug(Bug::ConcurrentChanges);
        // The 2015 fix: an entry of our term is committed (M1 skips this).
        let unproven = self.term_at(self.commit) != Some(self.term)
            && !self.cfg.bug(Bug::ChangeBeforeTermCommit);
        if (pending && !self.cfg.bug(Bug::ConcurrentChanges)) || uncommitted {
            return out.change_done(id, Err(ChangeError::Pending));
        }
        if unproven {
            return out.change_done(id, Err(ChangeError::NotReady));
        }
        let next = match self.config.changed(change, self.cfg.changes) {
            Ok(next) => next,
            Err(e) => return out.change_done(id, Err(e)),
        };
        if let Change::AddVoter(n) = change {
            if self.config.is_learner(n) {
                let matched = self.progress(n).matched;
                if matched + (self.cfg.max_batch as Slot) < self.last_index() {
                    return out.change_done(id, Err(ChangeError::Behind(n)));
                }
            }
        }
        self.append_config(next, out);
        if next.is_joint() && self.cfg.bug(Bug::JointLeftEarly) {
            // M4: C_new follows C_old,new at once, before C_old,new is committed.
            self.append_config(next.leave_joint(), out);
        }
        let slot = self.last_index();
        if let RoleState::Leader { change, .. } = &mut self.state {
            *change = Some(PendingChange { id, slot });
        }
        self.broadcast_append(out);
        self.maybe_commit(out);
    }

    /// Leader: append configuration `next` (in force from now on) and persist it.
    fn append_config(&mut self, next: Membership, out: &mut Out<Self, C>) {
        let at = self.last_index() + 1;
        let entry = Entry::configuration(self.term, next);
        self.append_local(vec![entry.clone()], out);
        self.config_on_append(at, &[entry]);
    }

    /// The commit point moved: a committed joint configuration moves on to C_new (§6); a
    /// committed change answers its operator; a leader its configuration no longer names as
    /// a voter steps down once that configuration is committed.
    pub(super) fn changes_on_commit(&mut self, out: &mut Out<Self, C>) {
        if !self.is_leader() || self.config_index > self.commit {
            return;
        }
        if self.config.is_joint() {
            let next = self.config.leave_joint();
            self.append_config(next, out);
            if let RoleState::Leader {
                change: Some(p), ..
            } = &mut self.state
            {
                p.slot = self.config_index;
            }
            self.broadcast_append(out);
            return self.maybe_commit(out);
        }
        let commit = self.commit;
        let done = match &mut self.state {
            RoleState::Leader { change, .. } => change.take_if(|p| p.slot <= commit),
            _ => None,
        };
        if let Some(p) = done {
            out.change_done(p.id, Ok(self.config));
        }
        if !self.config.is_voter(self.id) {
            // Tell the others the commit point first, so that they need not wait for a new
            // leader to learn that C_new (which left us out) is committed.
            for p in self.peers() {
                self.send_append(p, true, out);
            }
            let term = self.term;
            self.become_follower(term, None, out);
        }
    }

    /// Leadership transfer (diss. §3.10): stop taking proposals, bring the target up to date,
    /// then tell it to campaign at once; give up after an election timeout.
    fn start_transfer(&mut self, id: ChangeId, target: NodeId, out: &mut Out<Self, C>) {
        if target == self.id {
            return out.change_done(id, Ok(self.config));
        }
        if !self.config.members().contains(target) {
            return out.change_done(id, Err(ChangeError::Unknown(target)));
        }
        if !self.config.is_voter(target) {
            return out.change_done(id, Err(ChangeError::NotVoter(target)));
        }
        if let RoleState::Leader { transfer, .. } = &mut self.state {
            *transfer = Some(Transfer {
                id,
                target,
                sent: false,
            });
        }
        out.set_timer(RaftTimer::Transfer, self.cfg.election_timeout.clone());
        if !self.send_timeout_now_if_caught_up(target, out) {
            // Hurry its catch-up rather than wait for the next heartbeats.
            self.hurry(target, out);
        }
    }

    /// Leader: if a transfer to `from` waits for its log to match ours, and now it does, send
    /// TimeoutNow. Returns whether it went out. (M6 sends it whatever the target holds.)
    pub(super) fn send_timeout_now_if_caught_up(
        &mut self,
        from: NodeId,
        out: &mut Out<Self, C>,
    ) -> bool {
        let (last, term) = (self.last_index(), self.term);
        let behind_ok = self.cfg.bug(Bug::TransferToBehind);
        let keep_lease = self.cfg.bug(Bug::LeaseSurvivesTransfer);
        let RoleState::Leader {
            transfer: Some(t),
            progress,
            reads,
            ..
        } = &mut self.state
        else {
            return false;
        };
        if t.target != from || t.sent {
            return false;
        }
        if progress[from.index()].matched < last && !behind_ok {
            return false;
        }
        t.sent = true;
        // The target's TransferVote passes the followers' lease promise, now or whenever a
        // late copy arrives: this leadership serves no read alone again (see crate::lease).
        // B5: the lease survives it.
        if !keep_lease {
            reads.lease.end();
        }
        out.send(from, RaftMsg::TimeoutNow { term });
        true
    }

    /// Target: the leader of our term hands us its leadership: campaign now, skipping PreVote
    /// (the leader vouches for the election) and our election timeout.
    ///
    /// The sender leads our term, so it answers a handoff of ours first: a leader that hands
    /// the leadership straight back to us may send this before any append, and the campaign
    /// below moves our term on, after which the handoff could only read "timed out" (and
    /// only at our next change of term, which a campaign we win puts off).
    pub(super) fn on_timeout_now(&mut self, from: NodeId, term: u64, out: &mut Out<Self, C>) {
        debug_assert_eq!(term, self.term, "on_message checked the term");
        self.handoff_on_leader(from, term, out);
        if !self.may_campaign() || self.is_leader() {
            return;
        }
        self.leader = None;
        self.start_election_as(true, out);
    }

    /// Leader: the transfer did not finish within an election timeout: take proposals again.
    pub(super) fn transfer_timed_out(&mut self, out: &mut Out<Self, C>) {
        let RoleState::Leader { transfer, .. } = &mut self.state else {
            return;
        };
        if let Some(t) = transfer.take() {
            out.change_done(t.id, Err(ChangeError::TransferTimedOut(t.target)));
        }
    }

    /// A leader in the middle of a transfer steps down into `term`: if it had told the target
    /// to campaign, wait to hear from it as leader of that term; otherwise the transfer was
    /// cut short.
    pub(super) fn step_down_in_transfer(&mut self, t: Transfer, term: u64, out: &mut Out<Self, C>) {
        if t.sent {
            self.handoff = Some(Handoff {
                id: t.id,
                target: t.target,
                term,
            });
        } else {
            out.change_done(t.id, Err(ChangeError::Interrupted));
        }
    }

    /// Our term moved past the one the target campaigned in: the handoff failed.
    pub(super) fn handoff_on_term(&mut self, out: &mut Out<Self, C>) {
        if let Some(h) = self.handoff.filter(|h| self.term > h.term) {
            self.handoff = None;
            out.change_done(h.id, Err(ChangeError::TransferTimedOut(h.target)));
        }
    }

    /// We hear from `from`, leader of `term`: the handoff is done if it is the target.
    pub(super) fn handoff_on_leader(&mut self, from: NodeId, term: u64, out: &mut Out<Self, C>) {
        let Some(h) = self.handoff.take() else { return };
        if h.target == from && h.term == term {
            out.change_done(h.id, Ok(self.config));
        } else {
            out.change_done(h.id, Err(ChangeError::Interrupted));
        }
    }

    /// Our election timer fired with a handoff pending: the target did not win in time.
    pub(super) fn handoff_timed_out(&mut self, out: &mut Out<Self, C>) {
        if let Some(h) = self.handoff.take() {
            out.change_done(h.id, Err(ChangeError::TransferTimedOut(h.target)));
        }
    }

    /// Whether this replica may campaign: a voter of its latest configuration, or of the
    /// configuration committed below it while that latest one is not known committed. A
    /// server an uncommitted C_new removes may still be needed: the voters of the committed
    /// configuration may need its vote, which its log check denies them when its log holds
    /// C_new and theirs does not, so only it can be elected (it then leads a configuration
    /// without itself, commits C_new and steps down, diss. §4.2.2). Found by the simulator:
    /// n0 appended its own removal {n1} and was cut off; n1, of {n0,n1}, could not win n0's
    /// vote and n0 would not campaign, for ever. Campaigning is always safe (votes are
    /// counted in the candidate's latest configuration), so the rule only adds liveness.
    pub(super) fn may_campaign(&self) -> bool {
        self.config.is_voter(self.id) || self.config_at(self.commit).0.is_voter(self.id)
    }

    /// Whether our latest configuration no longer lists us though an earlier one did: a
    /// removed server that knows it (a spare never added was never listed). Only bug M5
    /// asks, so the scan of the log costs nothing otherwise.
    pub(super) fn knows_it_was_removed(&self) -> bool {
        let listed = |c: Membership| c.members().contains(self.id);
        !listed(self.config)
            && (listed(self.initial)
                || self.snapshot.as_ref().is_some_and(|s| listed(s.config))
                || self.log.iter().filter_map(|e| e.config).any(listed))
    }
}

impl Progress {
    /// A member the leader knows nothing of yet: probed from `next`.
    pub(super) fn fresh(next: Slot) -> Progress {
        Progress {
            next,
            matched: 0,
            replicating: false,
            paused: false,
            inflight: Inflights::default(),
            stalled: false,
            sending: None,
        }
    }
}
