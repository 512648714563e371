//! Raft elections: terms (§5.1), campaigns and votes (§5.2, §5.4.1), PreVote (diss. §9.6) and
//! the CheckQuorum lease (diss. §6.2).

use super::*;

impl<C: Command> Raft<C> {
    /// Adopt a higher (or equal) term as a follower (§5.1). Persists a changed term. The lease
    /// starts lapsed, as etcd-raft's `becomeFollower` resets its leader: the caller that heard
    /// from the leader itself renews it. A leader's pending reads are handed back, and so are
    /// the reads a follower asked about in the term it leaves (diss. §6.4; [`super::read`]).
    pub(super) fn become_follower(
        &mut self,
        term: u64,
        leader: Option<NodeId>,
        out: &mut Out<Self, C>,
    ) {
        debug_assert!(term >= self.term, "terms never go back");
        let new_term = term > self.term;
        if new_term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state(out);
            // A transfer in part belongs to the leader of the term we leave.
            self.incoming = None;
        }
        let old = std::mem::replace(
            &mut self.state,
            RoleState::Follower {
                leader_alive: false,
            },
        );
        self.leader = leader;
        if let RoleState::Leader {
            reads,
            change,
            transfer,
            ..
        } = old
        {
            out.cancel_timer(RaftTimer::Heartbeat);
            out.cancel_timer(RaftTimer::Transfer);
            self.arm_election_timer(out);
            self.reads_on_step_down(*reads, leader, out);
            if let Some(p) = change {
                // Rule 9: the operator learns the leadership ended; the entry may still commit.
                out.change_done(p.id, Err(crate::membership::ChangeError::Interrupted));
            }
            if let Some(t) = transfer {
                self.step_down_in_transfer(t, term, out);
            }
        }
        if new_term {
            self.reads_on_new_term(leader, out);
        }
        self.handoff_on_term(out);
    }

    /// A message of the current leader arrived (an append or a read round): follow it, renew
    /// the lease and put off our own election (§5.2).
    pub(super) fn heard_from_leader(&mut self, from: NodeId, term: u64, out: &mut Out<Self, C>) {
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
        self.handoff_on_leader(from, term, out);
    }

    /// Does the election timer measure the lease? A follower under CheckQuorum that heard
    /// from its leader arms it for the minimum election timeout first
    /// ([`Raft::arm_election_timer`]).
    pub(super) fn lease_runs_on_timer(&self) -> bool {
        self.cfg.check_quorum && self.state == RoleState::Follower { leader_alive: true }
    }

    /// The election timer fired at a follower or candidate. At a follower still in its lease,
    /// the minimum election timeout has passed since it last heard from its leader: the lease
    /// ends here, not at its own randomized timeout. The dissertation's rule (§4.2.3) refuses
    /// votes only *within the minimum* election timeout of hearing from a leader; refusing
    /// until the follower's own timer fires would make the first candidate after a leader's
    /// crash wait for the *later* of two random timers before a quorum grants it anything.
    /// Safety of leader leases is unchanged: they assume exactly this minimum (diss. §6.4.1).
    /// The follower then waits the rest of its drawn timeout before it campaigns itself.
    pub(super) fn election_timer_fired(&mut self, out: &mut Out<Self, C>) {
        if !self.lease_runs_on_timer() {
            return self.campaign(out);
        }
        self.state = RoleState::Follower {
            leader_alive: false,
        };
        out.set_timer(RaftTimer::Election, self.cfg.election_rest());
    }

    /// Election timeout at a follower or candidate: campaign (§5.2), after a PreVote round if
    /// configured (diss. §9.6).
    pub(super) fn campaign(&mut self, out: &mut Out<Self, C>) {
        // A transfer we handed off that has not produced a leader in an election timeout
        // has failed.
        self.handoff_timed_out(out);
        if self.cfg.bug(Bug::RemovedServerDisrupts) && self.knows_it_was_removed() {
            // M5: a removed server campaigns all the same, in a new term at once.
            self.leader = None;
            return self.start_election(out);
        }
        if !self.may_campaign() {
            // Not a voter of our configuration (a learner, a spare, a removed server): wait
            // to be told of a leader (diss. §4.2.2). Its lease lapses all the same, as a
            // campaign would end it: a configuration we have not received yet may make us a
            // voter, whose vote the next leader needs (a CheckQuorum refusal for ever after
            // would leave a cluster whose leader died right after adding us without one).
            self.state = RoleState::Follower {
                leader_alive: false,
            };
            self.leader = None;
            return self.arm_election_timer(out);
        }
        self.leader = None;
        if !self.cfg.pre_vote || self.cfg.bug(Bug::NoPreVote) {
            return self.start_election(out);
        }
        // The pre-vote asks for the next term without entering it: nobody changes state.
        let votes = self.me();
        self.state = RoleState::PreCandidate { votes };
        self.arm_election_timer(out);
        if self.has_quorum(votes) {
            return self.start_election(out); // a cluster of one
        }
        self.request_votes(self.term + 1, true, out);
    }

    /// Enter a new term as a candidate, vote for ourselves durably, and ask for votes (§5.2).
    pub(super) fn start_election(&mut self, out: &mut Out<Self, C>) {
        self.start_election_as(false, out);
    }

    /// [`Raft::start_election`]; `transfer`: asked by the leader (diss. §3.10), so the votes
    /// are asked for with [`RaftMsg::TransferVote`], which CheckQuorum's lease does not refuse.
    pub(super) fn start_election_as(&mut self, transfer: bool, out: &mut Out<Self, C>) {
        let votes = self.me();
        self.state = RoleState::Candidate { votes };
        self.term += 1;
        self.voted_for = Some(self.id);
        self.incoming = None;
        self.persist_hard_state(out);
        self.reads_on_new_term(None, out);
        self.arm_election_timer(out);
        if self.has_quorum(votes) {
            return self.become_leader(out); // a cluster of one
        }
        if transfer {
            let (last_index, last_term, term) = (self.last_index(), self.last_term(), self.term);
            for p in self.peers().filter(|&p| self.config.is_voter(p)) {
                let msg = RaftMsg::TransferVote {
                    term,
                    last_index,
                    last_term,
                };
                out.send(p, msg);
            }
            return;
        }
        self.request_votes(self.term, false, out);
    }

    pub(super) fn request_votes(&self, term: u64, pre_vote: bool, out: &mut Out<Self, C>) {
        let (last_index, last_term) = (self.last_index(), self.last_term());
        // Voters only: a learner's vote counts for nothing.
        for p in self.peers().filter(|&p| self.config.is_voter(p)) {
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
    pub(super) fn win_vote_round(&mut self, out: &mut Out<Self, C>) {
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
    pub(super) fn become_leader(&mut self, out: &mut Out<Self, C>) {
        debug_assert_eq!(self.role(), Role::Candidate);
        self.leader = Some(self.id);
        let next = self.last_index() + 1;
        let len = self.config.members().span();
        self.state = RoleState::Leader {
            active: self.me(),
            progress: vec![Progress::fresh(next); len],
            reads: Box::new(LeaderReads::default()),
            change: None,
            transfer: None,
        };
        out.cancel_timer(RaftTimer::Election);
        let sent = self.append_local(vec![Entry::noop(self.term)], out);
        self.broadcast_sharing(false, Some(sent), out);
        out.set_timer(
            RaftTimer::Heartbeat,
            self.cfg.heartbeat_interval..self.cfg.heartbeat_interval,
        );
        if self.cfg.check_quorum {
            self.arm_election_timer(out);
        }
        // With leases, a round at once: its acknowledgements start the lease, so the first
        // reads of the term need no round of their own.
        if let (RoleState::Leader { reads, .. }, true) =
            (&mut self.state, self.cfg.reads == ReadMode::Lease)
        {
            reads.lease.want();
            self.renew_lease(out);
        }
        self.maybe_commit(out);
    }

    /// CheckQuorum's lease: a follower heard from a live leader lately, or we lead ourselves.
    pub(super) fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && matches!(
                self.state,
                RoleState::Follower { leader_alive: true } | RoleState::Leader { .. }
            )
            && !self.cfg.bug(Bug::NoPreVote)
    }

    /// §5.4.1: is a log ending at (`last_term`, `last_index`) at least as up-to-date as ours?
    pub(super) fn log_ok(&self, last_term: u64, last_index: Slot) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    pub(super) fn on_request_vote(
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

    pub(super) fn on_vote(
        &mut self,
        from: NodeId,
        term: u64,
        granted: bool,
        pre_vote: bool,
        out: &mut Out<Self, C>,
    ) {
        let votes = match &mut self.state {
            RoleState::PreCandidate { votes } if pre_vote && term == self.term + 1 => votes,
            RoleState::Candidate { votes } if !pre_vote && term == self.term => votes,
            _ => return,
        };
        if granted {
            votes.insert(from);
            let votes = *votes;
            if self.has_quorum(votes) {
                self.win_vote_round(out);
            }
        }
    }
}
