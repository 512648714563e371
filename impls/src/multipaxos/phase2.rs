//! Multi-Paxos phase 2 and learning: a stable leader's batched accepts (PMS §3, PMMC
//! "Commander"), acceptances counted per open slot, the commit point learned by acceptors (PMS
//! §2.3), heartbeats, and catch-up of replicas that are behind.

use super::*;

impl<C: Command> MultiPaxos<C> {
    /// Send `cmds` (slots from `first`) at our ballot to every peer, at most `max_batch`
    /// values and [`Config::max_batch_bytes`] a message: each message's values one copy that
    /// every peer shares (none when one message carries them all).
    pub(super) fn broadcast_accept(&self, first: Slot, cmds: Values<C>, out: &mut Out<Self, C>) {
        let chunks = self.cfg.batches(&cmds, Value::bytes);
        let shared: Vec<(usize, Values<C>)> = match chunks[..] {
            [(0, c)] if c.len() == cmds.len() => vec![(0, Values::clone(&cmds))],
            _ => chunks
                .iter()
                .map(|&(at, c)| (at, Values::new(c.to_vec())))
                .collect(),
        };
        for p in self.peers() {
            for (at, c) in &shared {
                out.send(
                    p,
                    PaxosMsg::Accept {
                        ballot: self.ballot,
                        first: first + *at as Slot,
                        cmds: Values::clone(c),
                        commit: self.commit,
                    },
                );
            }
        }
    }

    /// Leader: the values of slots `first..=upto` (chosen ones up to the commit point, our
    /// own proposals above it: all valid at our ballot), stopping short of a hole that only
    /// P5-gap leaves (a no-op sent there would fill it).
    pub(super) fn values(&self, first: Slot, upto: Slot) -> Vec<Value<C>> {
        let base = self.base();
        debug_assert!(first > base, "values above the snapshot only");
        let values: Vec<Value<C>> = self
            .log
            .get((first.max(base + 1) - base - 1) as usize..(upto - base) as usize)
            .unwrap_or(&[])
            .iter()
            .map_while(|e| e.as_ref().map(|e| e.value.clone()))
            .collect();
        debug_assert!(
            values.len() as Slot == upto + 1 - first || self.cfg.any_bug(),
            "a leader's log has no gaps"
        );
        values
    }

    /// Leader: advance the commit point over every slot a quorum of its configuration
    /// accepted in our ballot (see [`reconfig`]: we know the configuration of every slot we
    /// proposed).
    pub(super) fn advance_leader_commit(&mut self, out: &mut Out<Self, C>) {
        let RoleState::Leader { acks, .. } = &self.state else {
            unreachable!("only a leader commits by counting")
        };
        // The chosen prefix of the open slots: a configuration at a time, each looked up once.
        let (mut n, mut slot) = (0, self.commit + 1);
        while n < acks.len() {
            let (config, end) = self.configs.span(slot);
            let span =
                usize::try_from(end - slot).map_or(acks.len() - n, |s| s.min(acks.len() - n));
            let chosen = acks[n..n + span]
                .iter()
                .take_while(|&&a| self.decides(&config, a))
                .count();
            n += chosen;
            if chosen < span {
                break;
            }
            slot += span as Slot;
        }
        if n > 0 {
            self.acks().drain(..n);
            self.commit_to(self.commit + n as Slot, out);
        }
    }

    /// Mark every slot up to `to` chosen, reporting the commands in slot order.
    pub(super) fn commit_to(&mut self, to: Slot, out: &mut Out<Self, C>) {
        debug_assert!(to <= self.last() && to > self.commit);
        let mut slot = self.commit + 1;
        while slot <= to {
            let run = self.commands_from(slot, to);
            if !run.is_empty() {
                out.commit_slice(slot, run, |e| match e {
                    Some(Entry {
                        value: Value::Cmd(cmd),
                        ..
                    }) => cmd,
                    _ => unreachable!("a run holds commands only"),
                });
                slot += run.len() as Slot;
                continue;
            }
            match self.entry(slot).map(|e| &e.value) {
                // Only a snapshot above the commit point (S1, the host's bug) hides one.
                None => assert!(self.cfg.any_bug(), "a chosen slot holds its value"),
                Some(Value::Cmd(_)) => unreachable!("commands are reported in runs"),
                // Chosen: it decides the slots from α slots on (see [`reconfig`]), and a
                // restart keeps knowing it.
                Some(&Value::Config(m)) => {
                    if self.configs.learn(slot + self.alpha(), m) {
                        out.persist(PaxosWrite::Configs(self.configs.clone()));
                    }
                }
                Some(Value::Noop) => {}
            }
            slot += 1;
        }
        self.commit = to;
        // Reads waiting for the commit point may now be served, after the commits above.
        self.release_reads(out);
    }

    /// The longest run of log slots from `from` (at most through `to`) that hold commands:
    /// what [`Self::commit_to`] reports with one [`Out::commit_slice`].
    fn commands_from(&self, from: Slot, to: Slot) -> &[Option<Entry<C>>] {
        let base = self.base();
        if from <= base {
            return &[];
        }
        let span = &self.log[(from - base - 1) as usize..(to - base) as usize];
        let n = span
            .iter()
            .take_while(|e| {
                matches!(
                    e,
                    Some(Entry {
                        value: Value::Cmd(_),
                        ..
                    })
                )
            })
            .count();
        &span[..n]
    }

    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        cmds: Values<C>,
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
        // Slots at or below our commit point (and so inside our snapshot) are chosen already:
        // keep them as they are.
        let skip = (max(self.commit, self.base()) + 1)
            .saturating_sub(first)
            .min(cmds.len() as Slot) as usize;
        let fresh_first = first + skip as Slot;
        // A heartbeat carries no commands.
        let heartbeat = cmds.is_empty();
        // The log takes one copy; the durable write shares the message's values (a copy of
        // the rest if some were chosen here already).
        let fresh = if skip == 0 {
            cmds
        } else {
            Values::new(cmds[skip..].to_vec())
        };
        let promise_up = b > self.promised;
        if !fresh.is_empty() {
            let start = (fresh_first - self.base() - 1) as usize;
            let entry = |value: &Value<C>| {
                Some(Entry {
                    ballot: b,
                    value: value.clone(),
                })
            };
            if start == self.log.len() {
                // The common case, the run right after our last slot: written once, not
                // first filled with holes and then overwritten.
                self.log.extend(fresh.iter().map(entry));
            } else {
                let end = start + fresh.len();
                if self.log.len() < end {
                    self.log.resize(end, None);
                }
                for (i, value) in fresh.iter().enumerate() {
                    self.log[start + i] = entry(value);
                }
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
            match self.entry(to + 1) {
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
        let (first, upto, lacks_open_slot) = if heartbeat {
            let open = leader_commit + 1;
            let held = (open..first)
                .take_while(|&s| {
                    s <= self.commit || matches!(self.entry(s), Some(e) if e.ballot == b)
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
        // Follower reads whose request went unanswered for a whole heartbeat interval.
        if heartbeat && self.role() == Role::Follower {
            self.reask_on_heartbeat(from, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_accepted(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        upto: Slot,
        f_commit: Slot,
        behind: bool,
        out: &mut Out<Self, C>,
    ) {
        let (commit, last) = (self.commit, self.proposed());
        // Kept for learners (a promotion waits for them) and a transfer's target only.
        let track = self.configs.latest().is_learner(from) || self.handing_to() == Some(from);
        let RoleState::Leader {
            heard,
            acks,
            progress,
            ..
        } = &mut self.state
        else {
            return;
        };
        if b != self.ballot {
            return;
        }
        heard.insert(from);
        // What it holds without a gap: the chosen slots up to its commit point, and the
        // slots of ours it acknowledged right after them.
        if let Some(p) = progress.get_mut(from.index()).filter(|_| track) {
            let held = if first <= max(*p, f_commit).saturating_add(1) {
                max(f_commit, upto)
            } else {
                f_commit
            };
            *p = max(*p, held.min(last));
        }
        for slot in max(first, commit + 1)..=upto.min(last) {
            acks[(slot - commit - 1) as usize].insert(from);
        }
        self.leader_progress(out);
        if !self.is_leader() {
            return; // a change that removed us took effect
        }
        self.end_transfer_below(from, f_commit);
        self.maybe_handoff(out);
        // Catch-up: from its commit point if it is below ours (the chosen slots it lacks; our
        // snapshot if we compacted some of them away), else from the first open slot it has
        // not accepted.
        let need = behind.then(|| {
            if f_commit < self.commit {
                Some(f_commit + 1)
            } else {
                self.acks()
                    .iter()
                    .position(|a| !a.contains(from))
                    .map(|i| self.commit + 1 + i as Slot)
            }
        });
        self.catch_up(from, need.flatten(), out);
    }

    /// Leader: `to` answered, lacking the slots from `need` on (`None`: it lacks nothing we
    /// can send). Flow control: one catch-up batch on its way to it at a time. Its next
    /// batch goes once an answer shows it holds this one (`need` past the batch); an answer
    /// that does not says nothing new (it may have been sent before the batch arrived), so
    /// nothing is re-sent until the heartbeat deems the batch lost ([`CatchUp::TICKS`]).
    /// Without this every "behind" answer (one per Accept and heartbeat it gets) would
    /// re-send an overlapping batch: quadratic traffic towards a replica that is behind under
    /// load, and the most towards a slow one. (Neither PMS nor PMMC says anything on
    /// catch-up traffic; this is the analogue of etcd-raft's `StateProbe`, `tracker/state.go`:
    /// one append in flight to a follower until it is answered, or a heartbeat interval.)
    pub(super) fn catch_up(&mut self, to: NodeId, need: Option<Slot>, out: &mut Out<Self, C>) {
        let RoleState::Leader {
            transfers,
            catch_up,
            ..
        } = &mut self.state
        else {
            return;
        };
        let Some(c) = catch_up.get_mut(to.index()) else {
            return;
        };
        if transfers[to.index()].is_some() {
            // A snapshot is on its way, with its own flow: its end sends the slots above it.
            *c = None;
            return;
        }
        let Some(need) = need else {
            *c = None; // caught up: whatever was on its way arrived, or is not needed
            return;
        };
        if let Some(batch) = c.as_mut().filter(|batch| need <= batch.last) {
            batch.need = need;
            return;
        }
        *c = None;
        self.resend_from(to, need, out);
    }

    /// Leader, at a heartbeat: a catch-up batch on its way for [`CatchUp::TICKS`] heartbeats
    /// is deemed lost (or its answer is); send the slots its replica last said it lacks again.
    pub(super) fn resend_lost_batches(&mut self, out: &mut Out<Self, C>) {
        let audience = self.audience();
        let RoleState::Leader { catch_up, .. } = &mut self.state else {
            return;
        };
        let mut lost = Vec::new();
        for (pos, c) in catch_up.iter_mut().enumerate() {
            let Some(batch) = c else { continue };
            batch.ticks += 1;
            if batch.ticks >= CatchUp::TICKS {
                lost.push((NodeId(pos as u8), batch.need));
                *c = None;
            }
        }
        for (to, need) in lost {
            // Not to a replica a change removed: it needs nothing more from us.
            if audience.contains(to) {
                self.resend_from(to, need, out);
            }
        }
    }
}

/// A leader's catch-up batch on its way to one replica, re-sent at our ballot (see
/// [`MultiPaxos::catch_up`]). Its first slot is not kept: an answer showing the replica
/// lacks a slot at or below the last is no news either way.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct CatchUp {
    /// The last slot of the batch.
    pub(super) last: Slot,
    /// The first slot the replica said it lacks since: where a re-send starts.
    pub(super) need: Slot,
    /// Heartbeats since it was sent.
    pub(super) ticks: u8,
}

impl CatchUp {
    /// Heartbeats a batch may be on its way before it is deemed lost: two, so that it is
    /// given one to two whole heartbeat intervals (as a snapshot chunk is; see [`snapshot`]).
    pub(super) const TICKS: u8 = 2;
}
