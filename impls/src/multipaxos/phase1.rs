//! Multi-Paxos phase 1 and leadership: campaigns with fresh ballots, promises (PMS §2.2,
//! P1a), recovery of accepted values (P2c) with gaps filled by no-ops (PMS §3), the lease, and
//! stepping down before a higher ballot.

use super::*;

impl<C: Command> MultiPaxos<C> {
    /// Give up candidacy or leadership; `leader` is the best guess of who leads now.
    pub(super) fn step_down(&mut self, leader: Option<NodeId>, out: &mut Out<Self, C>) {
        // Only a candidate or a leader steps down, and neither holds a lease.
        let old = std::mem::replace(
            &mut self.state,
            RoleState::Follower {
                leader_alive: false,
            },
        );
        self.leader = leader;
        if let RoleState::Leader {
            reads,
            queue,
            change,
            handoff,
            ..
        } = old
        {
            out.cancel_timer(PaxosTimer::Heartbeat);
            self.arm_election_timer(out);
            // The leadership's reads, queued commands and requests go with it: handed back,
            // none dropped (rules 3, 4 and 9), at the end of the step (after a promise this
            // step raises is durable, and once we know who replaced us).
            self.handed_back = Some(Box::new(reconfig::HandedBack {
                reads: *reads,
                queue,
                change,
                handoff,
                ballot: self.ballot,
            }));
        }
    }

    /// Election timeout: start phase 1 with a fresh ballot above every round seen (PMS §3:
    /// "a new leader ... executes phase 1 for infinitely many instances").
    pub(super) fn campaign(&mut self, out: &mut Out<Self, C>) {
        self.campaign_handed(None, out);
    }

    /// [`Self::campaign`]; `by`: the ballot of the leader that handed us the leadership, if
    /// one did (see [`reconfig`]).
    pub(super) fn campaign_handed(&mut self, by: Option<Ballot>, out: &mut Out<Self, C>) {
        if !self.configs.latest().is_voter(self.id) {
            // Not a voter (a learner, a spare, a removed node): phase 1 is for voters. Wait to
            // hear from a leader, knowing none: a leader we have not heard from for an
            // election timeout is no hint to give clients. (Found by the simulator: a removed
            // node kept naming the removed leader, which named nobody, and clients went back
            // and forth between the two, never reaching the new leader; Raft forgets too.)
            // Its lease lapses with it, as a campaign would end it.
            self.state = RoleState::Follower {
                leader_alive: false,
            };
            self.leader = None;
            return self.arm_election_timer(out);
        }
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
        let promises = self.me();
        // Every slot up to the commit point (and so up to the snapshot, which it covers) is
        // chosen and known here: phase 1 asks about the slots above it (PMS §3).
        // S5: from our own last slot + 1, so the slots between the commit point and it, where
        // a quorum may have accepted (even chosen) a value, are never asked about.
        let p1_from = if self.cfg.bug(Bug::Phase1SkipsAccepted) {
            self.last() + 1
        } else {
            max(self.commit, self.base()) + 1
        };
        self.state = RoleState::Candidate {
            promises,
            p1_from,
            recovered: Vec::new(),
            reach: None,
            heard: vec![Vec::new(); MAX_NODES],
        };
        self.arm_election_timer(out);
        if self.phase1_done(promises) {
            return self.become_leader(out); // a cluster of one
        }
        let (ballot, from) = (self.ballot, p1_from);
        let msg = match by {
            Some(by) => PaxosMsg::HandoffPrepare { ballot, from, by },
            None => PaxosMsg::Prepare { ballot, from },
        };
        // The voters of every configuration of our window (see [`reconfig`]): a learner's
        // promise counts for nothing.
        let mut voters = NodeSet::EMPTY;
        for c in self.window_configs() {
            voters = voters.union(c.voters);
        }
        voters.remove(self.id);
        for p in voters.iter() {
            out.send(p, msg.clone());
        }
    }

    /// Keep, per slot, the acceptance with the highest ballot (PMS §2.2, P2c); `accepted`
    /// starts `skip` slots into `recovered`.
    pub(super) fn merge(
        recovered: &mut Vec<Option<Entry<C>>>,
        skip: usize,
        accepted: &[Option<Entry<C>>],
    ) {
        if recovered.len() < skip + accepted.len() {
            recovered.resize(skip + accepted.len(), None);
        }
        for (slot, a) in recovered[skip..].iter_mut().zip(accepted) {
            if let Some(a) = a {
                if slot.as_ref().map_or(true, |s| a.ballot > s.ballot) {
                    *slot = Some(a.clone());
                }
            }
        }
    }

    /// Phase 1 succeeded: promise our own ballot, re-propose the highest-ballot value of
    /// every open slot, fill the gaps with no-ops (PMS §3), and lead. What phase 1 recovered
    /// beyond the window waits in the backlog (see [`reconfig`]).
    pub(super) fn become_leader(&mut self, out: &mut Out<Self, C>) {
        let RoleState::Candidate {
            p1_from,
            mut recovered,
            promises,
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
        debug_assert!(
            p1_from <= self.commit + 1 || self.cfg.any_bug(),
            "phase 1 starts at most past the commit point"
        );
        // Without leases a candidate may have learned chosen slots meanwhile; phase 1 reports
        // the same (chosen) values for them, so recovering from `p1_from` stays correct. A
        // candidate that installed a promiser's snapshot no longer holds the slots it covers
        // (chosen, and reported by nobody, or only by some): recovery starts above it.
        let from = if p1_from > self.base() {
            p1_from
        } else {
            // (Above the commit point, unless S1 kept a snapshot past it.)
            max(self.commit, self.base()) + 1
        };
        let skip = (from - p1_from) as usize;
        recovered.drain(..skip.min(recovered.len()));
        let b = self.ballot;
        self.promised = max(self.promised, b);
        out.persist(PaxosWrite::Promise(self.promised));
        // Our own acceptor is part of the quorum: read what it accepted now that it promised.
        let own: Vec<Option<Entry<C>>> = self
            .log
            .get((from - self.base() - 1) as usize..)
            .unwrap_or(&[])
            .to_vec();
        Self::merge(&mut recovered, 0, &own);
        // What to propose from `from` on, as entries: their ballots let a later promise's
        // report be merged in (see [`reconfig`]). A hole is a slot nobody reported: a no-op
        // goes there, unless P5-gap leaves it open.
        let mut backlog: Vec<Option<Entry<C>>> = if self.cfg.bug(Bug::SkipRecovery) {
            // P5: nothing re-proposed; new commands go where values may already be chosen.
            Vec::new()
        } else if self.cfg.bug(Bug::IgnoreAcceptedValue) {
            // P2: our own value (or a no-op) instead of the highest-ballot one reported.
            (0..recovered.len())
                .map(|i| {
                    Some(own.get(i).cloned().flatten().unwrap_or(Entry {
                        ballot: Ballot::ZERO,
                        value: Value::Noop,
                    }))
                })
                .collect()
        } else {
            recovered
        };
        // With nothing re-proposed keep what we hold up to the commit point (P5 only: else
        // an empty recovery means our own log ends before `from`).
        let keep = if backlog.is_empty() {
            max(from - 1, self.commit)
        } else {
            from - 1
        };
        if self.cfg.bug(Bug::SkipRecovery) {
            self.log.truncate((keep - self.base()) as usize);
        }
        // Slots we learned chosen meanwhile are known: nothing to propose there.
        backlog.drain(..(self.commit.saturating_sub(keep) as usize).min(backlog.len()));
        self.leader = Some(self.id);
        // The acceptors of each open slot up to where proposals resume (none, unless a bug
        // left slots above the commit point unproposed): ours, where we hold a value.
        let me = self.me();
        let acks = (self.commit + 1..=keep)
            .map(|s| {
                if self.entry(s).is_some() {
                    me
                } else {
                    NodeSet::EMPTY
                }
            })
            .collect();
        // The configurations our electing promises cover: those of the window (all of them,
        // or we would not lead), and any later one known or held that they happen to cover.
        let mut covered = Vec::new();
        let later = self.configs.between(self.commit + 1, Slot::MAX);
        let held = backlog.iter().flatten().filter_map(|e| e.value.config());
        for c in later.into_iter().chain(held) {
            if !covered.contains(&c) && self.decides(&c, promises) {
                covered.push(c);
            }
        }
        self.state = RoleState::Leader {
            heard: me,
            acks,
            reads: Box::new(LeaderReads::new()),
            transfers: vec![None; MAX_NODES],
            catch_up: vec![None; MAX_NODES],
            progress: vec![0; MAX_NODES],
            covered,
            promises: me,
            p1_heard: vec![Vec::new(); MAX_NODES],
            asked: NodeSet::EMPTY,
            backlog,
            queue: Default::default(),
            change: None,
            handoff: None,
        };
        // Phase 2 for the recovered slots the window takes (persisted first).
        let (runs, missing) = self.take_window();
        let runs = self.persist_runs(runs, out);
        if self.cfg.check_quorum {
            self.arm_election_timer(out);
        } else {
            out.cancel_timer(PaxosTimer::Election);
        }
        self.arm_heartbeat(out);
        // With none, a heartbeat announces the leadership.
        if runs.is_empty() {
            self.broadcast_accept(self.proposed() + 1, Values::default(), out);
        }
        for (first, run) in runs {
            self.broadcast_accept(first, run, out);
        }
        if let Some(config) = missing {
            self.ask_promises(&config, out);
        }
        debug_assert!(
            self.proposed() <= self.commit + self.alpha() || self.cfg.any_bug(),
            "a new leader proposes within its window"
        );
        self.note_recovered();
        self.start_lease(out);
        self.leader_progress(out);
    }

    /// Adopt a higher ballot seen in a refusal, so our next round is above it.
    pub(super) fn raise_promise(&mut self, b: Ballot, out: &mut Out<Self, C>) {
        if b > self.promised {
            self.promised = b;
            out.persist(PaxosWrite::Promise(b));
        }
    }

    pub(super) fn on_prepare(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        handed_by: Option<Ballot>,
        late: bool,
        out: &mut Out<Self, C>,
    ) {
        // The lease: while a live leader (or we ourselves) leads, a prepare from anyone else
        // is a disruption, not a leader change. Ignoring it is always safe. A proposer the
        // leader handed the leadership to passes (see [`reconfig`]).
        let lease = self.cfg.check_quorum
            && !self.lease_handed_over(handed_by)
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
        // Slots inside our snapshot are chosen, and we no longer hold what we accepted there:
        // the promise starts after them, which tells the candidate they are not empty (see
        // [`snapshot`]).
        let base = self.base();
        let first = first.max(base + 1);
        // In chunks of at most `max_batch` slots and `max_batch_bytes` of values, so that a
        // promise after a long outage (or a restart above a snapshot) is never one unbounded
        // message. All at once: asking for
        // them one round trip at a time, a candidate behind a long tail of open slots runs
        // out of election timeout before its promise is whole, again and again.
        let rest = self.log.get((first - base - 1) as usize..).unwrap_or(&[]);
        let end = first + rest.len() as Slot;
        for (at, chunk) in self.cfg.batches(rest, slot_bytes) {
            let (from_slot, accepted) = (first + at as Slot, chunk.to_vec());
            out.send(
                from,
                match late {
                    // The answer to a leader's `LatePrepare` (see [`reconfig`]).
                    true => PaxosMsg::LatePromise {
                        ballot: b,
                        from: from_slot,
                        accepted,
                        start: first,
                        end,
                    },
                    false => PaxosMsg::Promise {
                        ballot: b,
                        from: from_slot,
                        accepted,
                        start: first,
                        end,
                    },
                },
            );
        }
        if persist_late && !self.cfg.bug(Bug::PromiseNotPersisted) {
            out.persist(PaxosWrite::Promise(b));
        }
    }

    /// A promise, or one chunk of it (`reports`: the slots the whole promise reports). An
    /// acceptor's promise counts once every chunk of it is in.
    ///
    /// Why chunks may come from different answers to our ballot (a duplicated Prepare is
    /// answered twice, maybe after a compaction) and still make a valid phase 1b (PMS §2.2):
    /// every chunk is sent after the acceptor promised our ballot, so it reports, per slot,
    /// an acceptance at least as high as any the acceptor made below our ballot (acceptances
    /// only rise), which is all P2c needs; where it reports a higher-ballot value instead,
    /// that value is, if some value was chosen below our ballot, that same value (the Paxos
    /// invariant). Every chunk names where its promise starts, so each tells on its own
    /// which slots the acceptor skipped because its snapshot holds them (`reach`).
    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        accepted: Vec<Option<Entry<C>>>,
        reports: std::ops::Range<Slot>,
        out: &mut Out<Self, C>,
    ) {
        let Some(end) = first.checked_add(accepted.len() as Slot) else {
            return; // malformed
        };
        if b != self.ballot || first < reports.start || end > reports.end {
            // Another ballot's; or malformed (no acceptor of ours sends it): ignored, never
            // counted.
            return;
        }
        // S6: the promise counts at its first chunk to arrive; what the others carry is
        // never heard.
        let early = self.cfg.bug(Bug::PromiseBeforeLastChunk);
        let RoleState::Candidate {
            promises,
            p1_from,
            recovered,
            reach,
            heard,
        } = &mut self.state
        else {
            return; // a stale answer
        };
        if reports.start < *p1_from {
            return; // a stale answer
        }
        let had = *promises;
        let reached = *reach;
        Self::merge(recovered, (first - *p1_from) as usize, &accepted);
        // The promiser's snapshot covers the slots it skipped: chosen, not empty.
        if reports.start > *p1_from && reach.map_or(true, |(r, _)| reports.start - 1 > r) {
            *reach = Some((reports.start - 1, from));
        }
        let Some(heard) = heard.get_mut(from.index()) else {
            return;
        };
        add_range(heard, first..end);
        if early || covers(heard, reports) {
            promises.insert(from);
        }
        let (promises, changed) = (*promises, *reach != reached);
        let had = self.phase1_done(had);
        if !self.phase1_done(promises) || (had && !changed) {
            return; // short of a quorum, or a duplicate after it that changes nothing
        }
        self.try_lead(out);
    }

    /// Candidate with a quorum of promises: give way if our own acceptor promised a higher
    /// ballot meanwhile (of two contending proposers the higher ballot wins); else lead, or
    /// first get the snapshot of the promiser whose snapshot reaches past our commit point
    /// (see [`snapshot`]).
    pub(super) fn try_lead(&mut self, out: &mut Out<Self, C>) {
        let RoleState::Candidate {
            reach,
            promises,
            p1_from,
            ..
        } = &self.state
        else {
            return;
        };
        if !self.phase1_done(*promises) {
            // An installed snapshot moved our window onto configurations whose voters have not
            // all promised (see [`reconfig`]): ask them, from where our phase 1 started.
            let msg = PaxosMsg::Prepare {
                ballot: self.ballot,
                from: *p1_from,
            };
            let mut voters = NodeSet::EMPTY;
            for c in self.window_configs() {
                voters = voters.union(c.voters);
            }
            for p in voters
                .iter()
                .filter(|&p| p != self.id && !promises.contains(p))
            {
                out.send(p, msg.clone());
            }
            return;
        }
        if self.promised > self.ballot {
            let leader = Some(NodeId(self.promised.node)).filter(|&n| self.is_peer(n));
            return self.step_down(leader, out);
        }
        match *reach {
            Some((slot, holder)) if slot > self.commit => out.send(
                holder,
                PaxosMsg::SnapshotAck {
                    ballot: self.ballot,
                    slot,
                    offset: 0,
                },
            ),
            _ => self.become_leader(out),
        }
    }

    pub(super) fn on_nack(&mut self, b: Ballot, promised: Ballot, out: &mut Out<Self, C>) {
        if self.role() == Role::Follower || b != self.ballot || promised <= self.ballot {
            return;
        }
        // Someone promised a higher ballot: our leadership (or candidacy) is over.
        self.raise_promise(promised, out);
        self.step_down(None, out);
    }
}

/// Add `r` to `ranges` (sorted, disjoint, non-adjacent half-open ranges), merging.
pub(super) fn add_range(ranges: &mut Vec<(Slot, Slot)>, r: std::ops::Range<Slot>) {
    if r.is_empty() {
        return;
    }
    let (mut lo, mut hi) = (r.start, r.end);
    // Those that touch or overlap `r` merge into it.
    let first = ranges.partition_point(|&(_, e)| e < lo);
    let last = ranges.partition_point(|&(s, _)| s <= hi);
    if first < last {
        lo = lo.min(ranges[first].0);
        hi = hi.max(ranges[last - 1].1);
    }
    ranges.splice(first..last, [(lo, hi)]);
}

/// Whether `ranges` (as [`add_range`] keeps them) hold every slot of `r`.
pub(super) fn covers(ranges: &[(Slot, Slot)], r: std::ops::Range<Slot>) -> bool {
    r.is_empty() || ranges.iter().any(|&(s, e)| s <= r.start && r.end <= e)
}
