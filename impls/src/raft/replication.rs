//! Raft log replication (§5.3) and commitment (§5.4.2): the leader's appends with etcd-style
//! pipelining and probing, the follower's consistency check, and fast backtracking.

use super::*;

/// An append's entries already built in this step, `prev + 1 ..= end`: a follower sent the
/// same run shares them instead of copying them from the log again ([`Entries`]).
pub(super) struct Sent<C> {
    prev: Slot,
    end: Slot,
    entries: Entries<C>,
    /// The limit `send_from_next` found `end` with (so the next follower with the same
    /// `prev` and limit need not weigh the entries again); `None` if none did yet.
    limit: Option<usize>,
}

impl<C: Command> Raft<C> {
    /// Leader: append entries of its own term to its log and persist them. Returns them as
    /// sent, so that the appends carrying exactly them share the write's copy.
    pub(super) fn append_local(
        &mut self,
        entries: Vec<Entry<C>>,
        out: &mut Out<Self, C>,
    ) -> Sent<C> {
        debug_assert!(entries.iter().all(|e| e.term == self.term));
        let at = self.last_index() + 1;
        self.log.extend(entries.iter().cloned());
        let entries = Entries::new(entries);
        out.persist(RaftWrite::Append {
            at,
            entries: Entries::clone(&entries),
        });
        Sent {
            prev: at - 1,
            end: self.last_index(),
            entries,
            limit: None,
        }
    }

    /// Send an AppendEntries to member `to`: from `next` on, at most `max_batch` entries.
    ///
    /// Flow control follows etcd-raft's `tracker.Progress`. A *replicating* follower is sent
    /// every new batch at once, `next` advancing optimistically (pipelining), until
    /// [`Config::max_inflight`] appends are unacknowledged (`inflight.rs`). A *probed* one
    /// (its position unknown) has one append outstanding, `paused` until it answers.
    ///
    /// With `heartbeat`, something goes out even when there is nothing new, so that
    /// followers keep their lease and learn the commit point (`heartbeat_to`).
    pub(super) fn send_append(&mut self, to: NodeId, heartbeat: bool, out: &mut Out<Self, C>) {
        self.send_append_sharing(to, heartbeat, &mut None, out);
    }

    /// [`Self::send_append`], sharing the entries of `sent` if they are what `to` gets, and
    /// leaving in `sent` what it sent (for the next follower).
    fn send_append_sharing(
        &mut self,
        to: NodeId,
        heartbeat: bool,
        sent: &mut Option<Sent<C>>,
        out: &mut Out<Self, C>,
    ) {
        if heartbeat {
            return self.heartbeat_to(to, sent, out);
        }
        let cap = self.cfg.max_inflight;
        let pr = self.progress(to);
        if pr.paused || pr.inflight.full(cap) {
            return;
        }
        if pr.next <= self.snap_index() {
            // The follower needs entries we compacted away: our snapshot instead (§7).
            return self.send_snapshot(to, false, out);
        }
        if self.progress(to).next > self.last_index() {
            return;
        }
        self.send_from_next(to, self.cfg.max_batch, sent, out);
    }

    /// The heartbeat to member `to`: an append checked at its `next - 1`, which carries the
    /// commit point (and, from a replicating follower, acknowledges all it holds).
    ///
    /// * A replicating follower gets whatever the window held back (nothing when it is full:
    ///   etcd's empty MsgApp of a throttled follower). If the heartbeat overtakes appends in
    ///   flight, the follower refuses it, and the refusal is ignored (`on_append_reply`): a
    ///   replicating follower is not sent back to probing by the network's reordering.
    ///   Whether appends were lost is judged by the acknowledgements instead: if none has
    ///   advanced `matched` from one heartbeat to the next (a whole heartbeat interval), those
    ///   in flight, or their answers, are presumed lost and the follower is probed again from
    ///   `matched + 1` (etcd learns the same from the refusal of an empty append; a refusal
    ///   here may only mean "not arrived yet").
    /// * A paused probe is sent again: the first time whole (the probe or its answer may just
    ///   have been lost), then, while nothing answers, with at most one entry per heartbeat,
    ///   so that a dead follower does not cost `max_batch` entries every heartbeat (etcd:
    ///   "at most one replication message per heartbeat interval" while probing).
    ///
    /// With `empty_heartbeats` a heartbeat carries no entries at all (the paper's form, §5.2);
    /// a probed follower that lost entries answers it with a refusal that sends the leader
    /// back.
    fn heartbeat_to(&mut self, to: NodeId, sent: &mut Option<Sent<C>>, out: &mut Out<Self, C>) {
        let (cap, batch) = (self.cfg.max_inflight, self.cfg.max_batch);
        let pr = self.progress(to);
        let mut limit = batch;
        if pr.replicating && !pr.inflight.is_empty() {
            if pr.stalled {
                pr.probe_from(pr.matched + 1);
                // A fresh probe, not a heartbeat: it carries entries even with
                // `empty_heartbeats`.
                if pr.next <= self.snap_index() {
                    return self.send_snapshot(to, true, out);
                }
                return self.send_from_next(to, batch, sent, out);
            }
            pr.stalled = true;
            if pr.inflight.full(cap) {
                limit = 0;
            }
        } else if !pr.replicating && pr.paused {
            if pr.stalled {
                limit = 1;
            }
            pr.stalled = true;
        }
        if self.progress(to).next <= self.snap_index() {
            return self.send_snapshot(to, true, out);
        }
        if self.cfg.empty_heartbeats {
            limit = 0;
        }
        self.send_from_next(to, limit, sent, out);
    }

    /// Bring member `to` up to date now, without waiting a heartbeat interval to learn whether
    /// appends in flight to it were lost: probe it again from `matched + 1` if any are in
    /// flight, else send what a heartbeat sends. A leadership transfer uses this, as its
    /// target must catch up before the transfer times out.
    pub(super) fn hurry(&mut self, to: NodeId, out: &mut Out<Self, C>) {
        let pr = self.progress(to);
        pr.stalled |= pr.replicating && !pr.inflight.is_empty();
        self.heartbeat_to(to, &mut None, out);
    }

    /// Send `to` the entries from its `next` on, at most `limit` of them and
    /// [`Config::max_batch_bytes`] of commands (etcd's MaxSizePerMsg), and account for them:
    /// a replicating follower's window takes the append and `next` moves past it; a probed
    /// follower is paused until the probe is answered.
    fn send_from_next(
        &mut self,
        to: NodeId,
        limit: usize,
        sent: &mut Option<Sent<C>>,
        out: &mut Out<Self, C>,
    ) {
        let prev_index = self.progress(to).next - 1;
        let end = match sent {
            Some(s) if s.prev == prev_index && s.limit == Some(limit) => s.end,
            _ => {
                let upto = min(self.last_index(), prev_index + limit as Slot);
                let base = self.snap_index();
                let span =
                    &self.log[(prev_index - base) as usize..upto.saturating_sub(base) as usize];
                prev_index
                    + self
                        .cfg
                        .batch_len(span, |e| e.cmd.as_ref().map_or(0, Command::bytes))
                        as Slot
            }
        };
        let pr = self.progress(to);
        if pr.replicating {
            if end > prev_index {
                pr.inflight.add(end);
                pr.next = end + 1;
            }
        } else {
            pr.paused = true;
        }
        self.send_entries(to, prev_index, end, sent, out);
        if let Some(s) = sent
            .as_mut()
            .filter(|s| (s.prev, s.end) == (prev_index, end))
        {
            s.limit = Some(limit);
        }
    }

    /// The AppendEntries carrying slots `prev_index + 1 ..= end`, checked at `prev_index`:
    /// the entries of `sent` if they are those slots, else a copy from the log (then left in
    /// `sent`). A leader's log never changes at a slot it holds (it only appends, and compacts
    /// a prefix), so entries built earlier in its step are still those slots'.
    fn send_entries(
        &self,
        to: NodeId,
        prev_index: Slot,
        end: Slot,
        sent: &mut Option<Sent<C>>,
        out: &mut Out<Self, C>,
    ) {
        let prev_term = self
            .term_at(prev_index)
            .expect("appends start inside the log, at or after the snapshot");
        let entries = match sent {
            Some(s) if (s.prev, s.end) == (prev_index, end) => Entries::clone(&s.entries),
            _ => {
                let base = self.snap_index();
                let span = &self.log[(prev_index - base) as usize..(end - base) as usize];
                let entries = Entries::new(span.to_vec());
                *sent = Some(Sent {
                    prev: prev_index,
                    end,
                    entries: Entries::clone(&entries),
                    limit: None,
                });
                entries
            }
        };
        debug_assert_eq!(entries.len() as Slot, end - prev_index);
        let msg = RaftMsg::Append {
            term: self.term,
            prev_index,
            prev_term,
            entries,
            commit: self.commit,
        };
        out.send(to, msg);
    }

    pub(super) fn broadcast_append(&mut self, out: &mut Out<Self, C>) {
        self.broadcast_sharing(false, None, out);
    }

    /// An append (or with `heartbeat`, a heartbeat) to every peer, the followers sent the
    /// same entries sharing one copy: `sent`'s, if given (the batch just appended).
    pub(super) fn broadcast_sharing(
        &mut self,
        heartbeat: bool,
        sent: Option<Sent<C>>,
        out: &mut Out<Self, C>,
    ) {
        let mut sent = sent;
        for p in self.peers() {
            self.send_append_sharing(p, heartbeat, &mut sent, out);
        }
    }

    /// Leader: advance the commit point to the highest slot a majority stores, if that slot
    /// is of the current term (§5.4.2: earlier-term entries commit only indirectly).
    pub(super) fn maybe_commit(&mut self, out: &mut Out<Self, C>) {
        let (me, last) = (self.id, self.last_index());
        let RoleState::Leader { progress, .. } = &self.state else {
            unreachable!("only a leader commits by counting")
        };
        let matched = |n: NodeId| {
            if n == me {
                last
            } else {
                progress[n.index()].matched
            }
        };
        let n = if self.cfg.bug(Bug::LearnerCounted) {
            // M3: every member's acknowledgement counts toward a majority of the voters.
            let mut all: Vec<Slot> = self.config.members().iter().map(matched).collect();
            all.sort_unstable_by(|a, b| b.cmp(a));
            all[crate::quorum(self.config.voters.len()) - 1]
        } else {
            self.config.quorum_value(matched)
        };
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

    /// Commit every entry up to `to`, reporting the commands in slot order, then the reads
    /// that waited for them (diss. §6.4).
    pub(super) fn advance_commit(&mut self, to: Slot, out: &mut Out<Self, C>) {
        debug_assert!(to <= self.last_index(), "cannot commit past the log");
        let from = self.commit;
        // Slots inside the snapshot were restored with it, not committed one by one
        // (only S3 leaves the commit point below the snapshot).
        let base = self.snap_index();
        let mut slot = (from + 1).max(base + 1);
        if slot <= to {
            let span = &self.log[(slot - base - 1) as usize..(to - base) as usize];
            for run in span.split(|e| e.cmd.is_none()) {
                // Split at the entries without a command (no-ops, configurations).
                out.commit_slice(slot, run, |e| e.cmd.as_ref().expect("a run holds commands"));
                slot += run.len() as Slot + 1;
            }
        }
        self.commit = to;
        self.reads_on_commit(out);
        self.changes_on_commit(out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        term: u64,
        prev_index: Slot,
        prev_term: u64,
        entries: Entries<C>,
        leader_commit: Slot,
        out: &mut Out<Self, C>,
    ) {
        self.heard_from_leader(from, term, out);

        // Entries inside our snapshot are committed, so the leader's agree with them (§7):
        // check the append from the snapshot's slot on, whose term we know.
        let (mut prev_index, mut prev_term) = (prev_index, prev_term);
        let base = self.snap_index();
        // The message's entries from `skip` on are those after `prev_index`.
        let mut skip = 0;
        if prev_index < base {
            let covered = (base - prev_index) as usize;
            if entries.len() <= covered {
                return self.reply_ok(from, base, out);
            }
            skip = covered;
            (prev_index, prev_term) = (base, self.snap_term());
        }

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

        let last_new = prev_index + (entries.len() - skip) as Slot;
        if self.cfg.bug(Bug::TruncateOnStaleAppend) {
            // R6: drop everything after prev_index even when it agrees with the leader.
            self.log.truncate((prev_index - base) as usize);
            self.log.extend(entries[skip..].iter().cloned());
            self.config_on_append(prev_index + 1, &entries[skip..]);
            out.persist(RaftWrite::Append {
                at: prev_index + 1,
                entries: suffix(&entries, skip),
            });
        } else {
            // §5.3: delete from the first *conflicting* entry only; a delayed append that
            // carries a prefix of what we have must not erase the entries after it.
            let first_new = entries[skip..]
                .iter()
                .enumerate()
                .find(|&(i, e)| self.term_at(prev_index + 1 + i as Slot) != Some(e.term))
                .map(|(i, _)| skip + i);
            if let Some(i) = first_new {
                let at = prev_index + 1 + (i - skip) as Slot;
                debug_assert!(
                    at > self.commit || self.cfg.any_bug(),
                    "a leader asked to overwrite committed slot {at}"
                );
                self.log.truncate((at - 1 - base) as usize);
                // The log takes one copy; the durable write shares the message's entries.
                self.log.extend(entries[i..].iter().cloned());
                self.config_on_append(at, &entries[i..]);
                if !self.cfg.bug(Bug::LogNotPersisted) {
                    let entries = suffix(&entries, i);
                    out.persist(RaftWrite::Append { at, entries });
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
        self.reply_ok(from, last_new, out);
    }

    pub(super) fn reply_ok(&self, to: NodeId, matched: Slot, out: &mut Out<Self, C>) {
        let msg = RaftMsg::AppendReply {
            term: self.term,
            result: AppendResult::Ok { matched },
        };
        out.send(to, msg);
    }

    /// An answer to our append of the current term (`on_message` dropped older ones).
    pub(super) fn on_append_reply(
        &mut self,
        from: NodeId,
        result: AppendResult,
        out: &mut Out<Self, C>,
    ) {
        if !self.config.members().contains(from) {
            return; // a member we no longer replicate to (a removed server)
        }
        match &mut self.state {
            RoleState::Leader { active, .. } => active.insert(from),
            _ => return,
        }
        match result {
            AppendResult::StaleTerm => {}
            AppendResult::Ok { matched } => {
                let pr = self.progress(from);
                if matched > pr.matched {
                    pr.matched = matched;
                    pr.stalled = false;
                }
                if pr.replicating {
                    // Every append ending at or before `matched` has arrived (etcd's FreeLE).
                    pr.inflight.free_to(matched);
                    pr.next = max(pr.next, matched + 1);
                } else if matched + 1 >= pr.next {
                    // The probe (checked at `next - 1`) or a later append succeeded: the
                    // follower matches up to `matched`, so pipeline from there (etcd's
                    // BecomeReplicate).
                    pr.replicating = true;
                    pr.paused = false;
                    pr.stalled = false;
                    pr.inflight.reset();
                    pr.next = matched + 1;
                }
                // Else an answer to an older append, before the probe: the probe is still
                // outstanding, and its answer (or the next heartbeat) moves the follower on.
                // A follower that installed our snapshot (or held it all) answers with a
                // slot at or past it: appends resume after it (§7).
                if pr.sending.is_some_and(|s| matched >= s.slot) {
                    pr.sending = None;
                }
                self.maybe_commit(out);
                if !self.is_leader() {
                    return; // the commit removed us, and we stepped down
                }
                if self.send_timeout_now_if_caught_up(from, out) {
                    return; // the target has it all: it campaigns now
                }
                // More to send (the batch limit cut the last append short)?
                self.send_append(from, false, out);
            }
            AppendResult::Rejected {
                prev_index,
                conflict_term,
                conflict_index,
            } => {
                let pr = self.progress(from);
                // Ignore a refusal that says nothing new (the network reorders and
                // duplicates). A replicating follower matches at `matched`, and every append
                // in flight to it chains from there: a refusal of a slot past `matched` means
                // the append carrying it has not arrived yet (a heartbeat overtook it) or was
                // lost, which the heartbeats find out (`heartbeat_to`); one at or below
                // `matched` predates its acknowledgement, as in our term a follower never
                // deletes an entry that agrees with ours (§5.3: delete only from a conflict
                // on). Only a follower that lost its log in a crash could refuse there
                // truthfully, which durable logs rule out (bug zoo R4 breaks it, and no leader
                // could repair it anyway: `next` never goes back to `matched`). A probed
                // follower: only the answer to the probe, at `next - 1`, counts.
                if pr.replicating || prev_index + 1 != pr.next || prev_index <= pr.matched {
                    return;
                }
                // Fast backtracking (§5.3): skip to after our last entry of the conflicting
                // term, or to where the follower's log ends.
                let base = self.snap_index();
                let next = match conflict_term {
                    Some(t) => match self.log.iter().rposition(|e| e.term == t) {
                        Some(i) if base + (i as Slot) < prev_index => base + i as Slot + 2,
                        _ => conflict_index,
                    },
                    None => conflict_index,
                };
                let pr = self.progress(from);
                pr.probe_from(max(pr.matched + 1, min(next, prev_index)));
                self.send_append(from, false, out);
            }
        }
    }
}

impl Progress {
    /// Back to probing from `next` (etcd's `BecomeProbe`): nothing in flight, no probe
    /// outstanding yet; the caller sends it.
    fn probe_from(&mut self, next: Slot) {
        self.next = next;
        self.replicating = false;
        self.paused = false;
        self.stalled = false;
        self.inflight.reset();
    }
}

/// `entries` from index `from` on: the same allocation when that is all of them (the usual
/// append, whose entries are all new), else a copy of the rest.
fn suffix<C: Clone>(entries: &Entries<C>, from: usize) -> Entries<C> {
    if from == 0 {
        Entries::clone(entries)
    } else {
        Entries::new(entries[from..].to_vec())
    }
}
