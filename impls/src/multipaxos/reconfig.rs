//! Multi-Paxos reconfiguration: voters and learners change through commands in the log,
//! each taking effect α slots after its own ([`Config::window`]), and leadership moves to a
//! chosen voter on request.
//!
//! # The design (Lamport, *Paxos Made Simple*, §3, last paragraphs)
//!
//! The set of servers is part of the replicated state, changed by ordinary commands, and the
//! servers that run instance `i + α` of consensus are the ones the state names after command
//! `i` has been executed: a leader may then run α instances ahead of what it has learned. The
//! same rule is the `WINDOW` of *Paxos Made Moderately Complex* (van Renesse & Altinbuken,
//! ACM Computing Surveys 2015: invariant R5, "a replica proposes commands only for slots for
//! which it knows the configuration") and the basic method of *Reconfiguring a State Machine*
//! (Lamport, Malkhi, Zhou, SIGACT News 2010), which notes that α may be any positive integer.
//! (The stop-sign alternative, *Stoppable Paxos*, needs no window but a recovery rule for
//! values past a stop command; the window keeps phase 1 exactly PMS's.) So:
//!
//! * A configuration ([`Membership`]: voters, learners) is a [`Value::Config`] in a slot `s`
//!   of the log, chosen like any command. `cfg(t)`, the configuration that decides slot `t`,
//!   is the one of the latest configuration command chosen in a slot `s <= t - α`, else the
//!   boot configuration. It is a function of the chosen prefix up to `t - α` and of nothing
//!   else, so every replica that knows that prefix computes the same `cfg(t)` (invariant
//!   [`names::CONFIGURATIONS_AGREE`]). [`Configs`] holds it: `(from, config)` pairs, each
//!   learned when its command is committed (`from = s + α`).
//! * **Phase 2 for slot `t` counts acceptances of `cfg(t)`'s voters** (a majority of them
//!   chooses), and **phase 1 for slot `t` needs promises of a majority of `cfg(t)`'s
//!   voters**. Learners are sent every value and accept it (that is how they catch up), but
//!   their acceptances and promises never count: [`Membership::has_quorum`] counts voters only.
//! * **The window: a leader proposes in slot `t` only if `t <= commit + α`** (invariant
//!   [`names::PROPOSALS_WITHIN_WINDOW`]). Then `t - α` is at most its commit point: every slot
//!   that decides `cfg(t)` is chosen and known to it, so the configuration it counts for
//!   slot `t`, in phase 2 and in the phase 1 that licensed the proposal, is *the* `cfg(t)`, the
//!   one any other proposer of any ballot uses for slot `t`. This is where the whole safety
//!   argument rests: per slot, multi-Paxos is single-decree Paxos whose acceptors (the
//!   voters of `cfg(t)`) every proposer agrees on, and PMS §2.2's proof applies to it as it
//!   is. A leader that proposed beyond its window could count a quorum of a configuration a
//!   concurrent change replaces, and two values could be chosen by two disjoint majorities
//!   (one single-server change behind, its majority still meets the real one; two behind,
//!   it need not: bug M7, [`Bug::ProposesBeyondWindow`], and its script).
//!   What does not fit in the window waits at the leader: values phase 1 recovered (the
//!   `backlog`, proposed first, in slot order), then client commands and the operator's
//!   change (the `queue`). Both go out as the commit point moves the window on.
//! * **A leader's phase 1 follows the window.** A candidate asks the voters of every
//!   configuration that decides a slot in `commit + 1 ..= commit + α` (it knows them: they
//!   depend on chosen slots only) and leads once a majority of each promised. A promise
//!   covers every slot from the candidate's commit point on, so it licenses later slots too,
//!   *for as long as their configuration is one the promisers form a majority of*: the leader
//!   keeps those configurations (`covered`). When the window reaches a slot `t` whose
//!   configuration is not one of them (a voter was added), the leader sends that
//!   configuration's voters a `LatePrepare` of the same ballot from `t` (the first slot it has
//!   not proposed), merges what their `LatePromise`s report into the backlog (the highest
//!   ballot wins, P2c), and proposes at `t` and beyond only once a majority of `cfg(t)`
//!   promised. Why that is PMS §2.2's phase 1 for every slot `u >= t`: each promise is a
//!   promise of our ballot that reports every acceptance its sender made at `u`, and we have
//!   proposed nothing at `u`, so the value we propose there is the highest-ballot one a
//!   majority of `cfg(u)` reported (or anything, if none reported one), exactly as at a fresh
//!   election. (Late answers to the electing `Prepare` are not used: they are obsolete, as
//!   they always were, so a model checker that never changes the configuration sees the
//!   states it saw before.)
//! * **A candidate that lags learns the configurations as it learns the values.** It knows
//!   `cfg(t)` only up to its commit point + α; phase 1 reports the values above it and the
//!   new leader proposes them again within its window, one window at a time. Each one chosen
//!   (again: the same value, if one was chosen) moves its commit point, and a configuration
//!   command among them is learned at that moment and decides its slots from α slots on,
//!   exactly as it did for everybody else. A promiser's snapshot that reaches past the commit
//!   point is installed first (see [`snapshot`]) and brings its configurations with it. A
//!   lagging leader is slower, never unsafe: it never acts on a slot whose configuration it
//!   does not know.
//! * **A change takes effect α slots later; the leader pads the gap.** Once its command,
//!   chosen in slot `s`, is committed, the leader fills the slots up to `s + α - 1` with
//!   no-ops if nothing else fills them, so a change takes effect even in an idle cluster. The
//!   operator is answered `Ok(new configuration)` when it *takes effect*: when every slot up
//!   to `s + α - 1` is chosen, so that every later decision is the new configuration's.
//! * **One change at a time.** A leader refuses a change ([`ChangeError::Pending`]) while
//!   another is unchosen (in its queue, backlog or log above the commit point) or not yet in
//!   effect. Safety does not need it (with α any change is safe, even one that replaces
//!   every voter: no two proposers ever disagree on a slot's configuration, so the old and new
//!   majorities need not meet, unlike Raft's single-server rule and its 2015 erratum); it keeps
//!   the answers simple and each change validated against the configuration it replaces.
//!   Requests are validated with [`Membership::changed`], with Raft's errors; for the same
//!   reason [`Config::changes`] does not apply (no joint configuration is ever needed).
//! * **Joining and leaving.** A node that is not a voter of the latest configuration it
//!   knows never runs phase 1 (a learner, a spare, a removed node). A voter being added may
//!   lead before its configuration takes effect: it proposes the slots before it too (a
//!   proposer need not be an acceptor), counting the old voters. A removed leader proposes
//!   only in slots whose configuration it votes in, pads up to the change, and once the change
//!   takes effect it tells every member the commit point (so that the remaining voters learn
//!   the new configuration at once and may campaign) and steps down. A replica makes each
//!   configuration it learns durable, so a restarted removed node knows it left; one that
//!   never learned it may still believe it votes and campaign: its phase 1 is ordinary Paxos
//!   (safe), and the configurations it learns from what it recovers tell it to step down.
//! * **Learners** ([`Change::AddLearner`]) get every value and catch up like any replica, and
//!   are promoted ([`Change::AddVoter`] of a learner) only once caught up: holding, by what
//!   they acknowledged, every slot up to within [`Config::max_batch`] of the leader's last
//!   proposal (else [`ChangeError::Behind`]), so that a new voter does not stall the slots it
//!   must accept.
//! * **Snapshots and restarts.** A snapshot at slot `S` carries [`Configs`] as of `S` (the
//!   configurations of the slots `S + 1 ..= S + α`, and the one in force after them): durable
//!   with it, shipped with every chunk of it, installed with it (bug M8,
//!   [`Bug::SnapshotWithoutConfigs`], installs it without them). A replica also persists its
//!   configurations whenever it learns a new one chosen (`PaxosWrite::Configs`), so a restart
//!   boots into the latest configuration it learned (else its snapshot's, else the boot one);
//!   the commit point, volatile, is learned again, and with it anything later.
//!
//! # Leadership transfer ([`Change::Transfer`])
//!
//! (Raft's dissertation §3.10 does the same with TimeoutNow.) The leader stops taking
//! proposals and reads (it hands them to the target, and refuses other changes as pending),
//! asks the target with a heartbeat how much it holds, and once it holds every slot the leader
//! proposed sends it `Handoff { ballot }`: "run phase 1 now". The target, if it still follows
//! that ballot and votes, campaigns at once with a ballot above every one it saw, with
//! `HandoffPrepare { by: ballot }`: an acceptor whose lease (CheckQuorum) would ignore a
//! challenger promises it if the leader it follows is the one that handed over, and so does
//! that leader. Leases stay sound: the only lease such a prepare passes is the handing-over
//! leader's, which serves no read that arrives after the transfer started (a read that arrived
//! before is linearized at its arrival, before the target can choose anything), and which
//! ends for the rest of the ballot when `Handoff` first leaves ([`crate::lease::Lease::end`]):
//! a transfer given up leaves copies in the network, and a late one still starts a campaign
//! the followers promise (tikv/raft-rs#234; bug B6 brings the lease back). The old leader
//! answers `Ok` when it learns of a higher ballot *of the target* (its prepare, accept or a
//! refusal naming it) and steps down; if an election timeout passes first it gives up with
//! [`ChangeError::TransferTimedOut`] and takes proposals again. A transfer to the leader itself
//! is answered at once, one to a learner is [`ChangeError::NotVoter`], to a non-member
//! [`ChangeError::Unknown`]. Safety never depends on the transfer: the target runs ordinary
//! phase 1.
//!
//! # Answers (rule 9 of the effect contract)
//!
//! Exactly one [`Effect::ChangeDone`](crate::Effect::ChangeDone) per request: at once for a
//! refusal, a non-leader ([`ChangeError::NotLeader`]) or a transfer to oneself; `Ok` when the
//! change takes effect (or the target leads); [`ChangeError::Interrupted`] if the leader loses
//! its role first (the command may still be chosen by a later leader, which re-proposes what
//! it recovers); [`ChangeError::TransferTimedOut`] for a transfer given up.

use std::collections::VecDeque;
use std::fmt;

use super::*;
use crate::membership::ChangeMode;

/// Which configuration decides each slot above a replica's snapshot: `(from, config)` pairs
/// in increasing `from` order, each deciding the slots from `from` up to the next one's
/// (see the [module docs](self)). The first pair decides every slot below it too.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Configs(Vec<(Slot, Membership)>);

impl Configs {
    /// Just `config`, from slot 1 on (a cluster's boot configuration).
    pub fn initial(config: Membership) -> Configs {
        Configs(vec![(1, config)])
    }

    /// Whether this holds nothing (a durable image without a snapshot).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `(from, config)` pairs.
    pub fn pairs(&self) -> &[(Slot, Membership)] {
        &self.0
    }

    /// The configuration that decides `slot` (the latest known, beyond what is known).
    pub fn at(&self, slot: Slot) -> Membership {
        self.span(slot).0
    }

    /// [`Configs::at`]`(slot)`, and the first slot above `slot` that another pair decides
    /// (`Slot::MAX`: none): every slot from `slot` up to it has that configuration. What a
    /// leader's loops over slots look up once per configuration, not once per slot.
    pub fn span(&self, slot: Slot) -> (Membership, Slot) {
        let i = self
            .0
            .partition_point(|&(from, _)| from <= slot)
            .saturating_sub(1);
        let config = self.0.get(i).map_or_else(Membership::default, |&(_, m)| m);
        let end = self.0.get(i + 1).map_or(Slot::MAX, |&(from, _)| from);
        debug_assert!(end > slot);
        (config, end)
    }

    /// The latest configuration: it decides every slot from its `from` on.
    pub fn latest(&self) -> Membership {
        self.0.last().map_or_else(Membership::default, |&(_, m)| m)
    }

    /// The slot the latest configuration decides from.
    pub fn latest_from(&self) -> Slot {
        self.0.last().map_or(1, |&(from, _)| from)
    }

    /// A configuration command chosen in slot `from - α` decides the slots from `from` on;
    /// returns whether that is news (a restarted replica learns again what it kept).
    pub(super) fn learn(&mut self, from: Slot, config: Membership) -> bool {
        if self.0.last().is_some_and(|&(f, _)| f >= from) {
            debug_assert!(
                self.0.contains(&(from, config)) || self.0.first().is_some_and(|&(f, _)| f > from),
                "a configuration learned twice differs"
            );
            return false;
        }
        self.0.push((from, config));
        true
    }

    /// The distinct configurations that decide some slot of `lo..=hi`, in slot order.
    pub fn between(&self, lo: Slot, hi: Slot) -> Vec<Membership> {
        let mut out = vec![self.at(lo)];
        for &(from, m) in &self.0 {
            if from > lo && from <= hi && out.last() != Some(&m) {
                out.push(m);
            }
        }
        out
    }

    /// The configurations from `slot` on: those a snapshot at `slot` carries, given α (the
    /// pairs learned from commands above `slot` are left out: they are not in it).
    pub fn as_of(&self, slot: Slot, alpha: Slot) -> Configs {
        let mut c = Configs(
            self.0
                .iter()
                .copied()
                .filter(|&(from, _)| from <= slot + alpha)
                .collect(),
        );
        c.prune(slot);
        c
    }

    /// Forget the pairs that decide no slot above `base` (a snapshot holds those).
    pub(super) fn prune(&mut self, base: Slot) {
        let dead = self
            .0
            .iter()
            .skip(1)
            .take_while(|&&(from, _)| from <= base + 1)
            .count();
        self.0.drain(..dead);
    }

    /// Whether this is what a replica's snapshot at `slot` carries: some configuration, each
    /// with voters, deciding from increasing slots, none later than α past `slot`. (A forged
    /// message holding anything else is ignored.)
    pub(super) fn well_formed(&self, slot: Slot, alpha: Slot) -> bool {
        !self.0.is_empty()
            && self.0.windows(2).all(|w| w[0].0 < w[1].0)
            && self.0.iter().all(|&(from, m)| {
                from >= 1 && from <= slot.saturating_add(alpha) && !m.voters.is_empty()
            })
    }

    /// Every node id renamed through `map`.
    pub fn renamed(&self, map: &Renaming) -> Configs {
        Configs(self.0.iter().map(|&(f, m)| (f, m.renamed(map))).collect())
    }
}

impl fmt::Debug for Configs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (from, m)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{from}: {m}")?;
        }
        f.write_str("]")
    }
}

/// Runs of consecutive slots a leader proposes: `(first slot, values)`.
pub(super) type Runs<C> = Vec<(Slot, Vec<Value<C>>)>;

/// The operator's change request a leader works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct PendingChange {
    /// The host's id for the request.
    pub(super) id: ChangeId,
    /// The slot its configuration command went to (`None`: still queued).
    pub(super) slot: Option<Slot>,
}

/// A leadership transfer in progress ([`Change::Transfer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Handoff {
    /// The host's id for the request.
    pub(super) id: ChangeId,
    /// Who is to lead.
    pub(super) target: NodeId,
    /// Whether the target was told to run phase 1 (the lease no longer holds from then on).
    pub(super) sent: bool,
}

/// What a leadership held for others, handed back at the end of the step that ended it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct HandedBack<C> {
    pub(super) reads: LeaderReads,
    pub(super) queue: VecDeque<Value<C>>,
    pub(super) change: Option<PendingChange>,
    pub(super) handoff: Option<Handoff>,
    /// The ballot the leadership ran.
    pub(super) ballot: Ballot,
}

impl<C: Command> MultiPaxos<C> {
    /// α: a configuration chosen in slot `s` decides the slots from `s + α` on.
    pub(super) fn alpha(&self) -> Slot {
        self.cfg.window.max(1)
    }

    /// The highest slot a leader proposed in its ballot (`last()` at anyone else).
    pub(super) fn proposed(&self) -> Slot {
        match &self.state {
            RoleState::Leader { acks, .. } => self.commit + acks.len() as Slot,
            _ => self.last(),
        }
    }

    /// The configurations that decide a slot of the window `commit + 1 ..= commit + α`
    /// (all known: they depend on chosen slots only).
    pub(super) fn window_configs(&self) -> Vec<Membership> {
        self.configs
            .between(self.commit + 1, self.commit + self.alpha())
    }

    /// The configurations that may decide some slot above the commit point before any
    /// change this leader does not know of: the window's and later known ones, and those of
    /// configuration commands above the commit point in our log and backlog (chosen, they
    /// decide slots α later). Reads and CheckQuorum need a majority of each.
    pub(super) fn ahead(&self) -> Vec<Membership> {
        let mut out = self.configs.between(self.commit + 1, Slot::MAX);
        let held = |e: &Option<Entry<C>>| e.as_ref().and_then(|e| e.value.config());
        let mut more: Vec<Membership> = (self.commit + 1..=self.proposed())
            .filter_map(|s| self.entry(s).and_then(|e| e.value.config()))
            .collect();
        if let RoleState::Leader { backlog, .. } = &self.state {
            more.extend(backlog.iter().filter_map(held));
        }
        for m in more {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// Every node we replicate to: the members of every configuration [`Self::ahead`] and of
    /// one waiting in the queue (so that a node joins the replication, and catches up, from
    /// the moment its change is asked for), us excluded.
    pub(super) fn audience(&self) -> NodeSet {
        let mut all = NodeSet::EMPTY;
        for m in self.ahead() {
            all = all.union(m.members());
        }
        if let RoleState::Leader { queue, .. } = &self.state {
            for m in queue.iter().filter_map(Value::config) {
                all = all.union(m.members());
            }
        }
        all.remove(self.id);
        all
    }

    /// Whether `acks` decides in every configuration of `configs`.
    pub(super) fn decides_all(&self, configs: &[Membership], acks: NodeSet) -> bool {
        configs.iter().all(|c| self.decides(c, acks))
    }

    /// A candidate leads once a majority of every configuration of its window promised.
    pub(super) fn phase1_done(&self, promises: NodeSet) -> bool {
        self.decides_all(&self.window_configs(), promises)
    }

    /// Leader: whether a majority of `config`'s voters promised our ballot (in the phase 1
    /// that elected us, or since).
    pub(super) fn promised_by(&self, config: &Membership) -> bool {
        match &self.state {
            RoleState::Leader {
                covered, promises, ..
            } => covered.contains(config) || self.decides(config, *promises),
            _ => false,
        }
    }

    /// Leader: what to propose next, as far as the window allows: the backlog, then the
    /// queue, then no-ops up to the slot the latest configuration takes effect in. Updates
    /// the log and the acknowledgements, and returns the new runs of consecutive slots (more
    /// than one only where P5-gap leaves a hole), which the caller persists and then
    /// broadcasts; and the configuration of the next slot if our promises are no majority of
    /// it (phase 1 must reach it first).
    pub(super) fn take_window(&mut self) -> (Runs<C>, Option<Membership>) {
        let (b, me, alpha) = (self.ballot, self.me(), self.alpha());
        let holes = self.cfg.bug(Bug::GapNotFilled);
        // M7: no window: everything that waits goes out at once, each slot counted in the
        // configuration we know for it (the latest learned), which a change chosen in a slot
        // we have not learned yet may already have replaced.
        let unbounded = self.cfg.bug(Bug::ProposesBeyondWindow);
        let pad_to = self.configs.latest_from();
        let leaving = !self.configs.latest().is_voter(self.id);
        let mut runs: Runs<C> = Vec::new();
        loop {
            let t = self.proposed() + 1;
            if t > self.commit + alpha && !unbounded {
                break; // the window: we may not know cfg(t) yet
            }
            let (config, config_end) = self.configs.span(t);
            if leaving && !config.is_voter(self.id) {
                break; // removed: we propose only where we vote (see the module docs)
            }
            if !self.promised_by(&config) {
                return (runs, Some(config)); // phase 1 has not reached cfg(t) yet
            }
            // The slots from `t` on that the window and `config` cover: the checks above hold
            // for all of them (nothing in this loop changes the configurations, the commit
            // point or the promises).
            let room = if unbounded {
                Slot::MAX
            } else {
                self.commit + alpha + 1 - t
            }
            .min(config_end - t);
            let at_end = self.log.len() as Slot == t - self.base() - 1;
            let RoleState::Leader {
                backlog,
                queue,
                change,
                acks,
                ..
            } = &mut self.state
            else {
                unreachable!("matched a leader above")
            };
            // The common case, a run at a time: commands waiting in the queue, no backlog
            // from phase 1, appended at the log's end. The same slots, values and
            // acknowledgements as the slot-by-slot path below (a configuration command stops
            // the run: it goes that way, which notes its slot).
            let plain = if backlog.is_empty() && at_end {
                queue
                    .iter()
                    .take(usize::try_from(room).unwrap_or(usize::MAX))
                    .take_while(|v| !matches!(v, Value::Config(_)))
                    .count()
            } else {
                0
            };
            if plain > 0 {
                let values: Vec<Value<C>> = if plain == queue.len() {
                    // All of it: the queue's buffer itself (no move of a value when the
                    // queue starts at its buffer's start, as one made from a batch does).
                    std::mem::take(queue).into()
                } else {
                    queue.drain(..plain).collect()
                };
                self.log.extend(values.iter().map(|value| {
                    Some(Entry {
                        ballot: b,
                        value: value.clone(),
                    })
                }));
                acks.resize(acks.len() + plain, me);
                match runs.last_mut() {
                    Some((first, run)) if *first + run.len() as Slot == t => run.extend(values),
                    _ => runs.push((t, values)),
                }
                continue;
            }
            let value = if !backlog.is_empty() {
                match backlog.remove(0) {
                    Some(e) => Some(e.value),
                    None if holes => None, // P5-gap: the hole stays unproposed
                    None => Some(Value::Noop),
                }
            } else if let Some(v) = queue.pop_front() {
                if let (Value::Config(_), Some(p)) = (&v, change.as_mut()) {
                    p.slot = Some(t);
                }
                Some(v)
            } else if t < pad_to {
                Some(Value::Noop) // the latest change takes effect at `pad_to`
            } else {
                break;
            };
            let k = (t - self.base() - 1) as usize;
            if self.log.len() <= k {
                self.log.resize(k + 1, None);
            }
            self.log[k] = value.clone().map(|value| Entry { ballot: b, value });
            self.acks()
                .push(if value.is_some() { me } else { NodeSet::EMPTY });
            let Some(value) = value else { continue };
            match runs.last_mut() {
                Some((first, run)) if *first + run.len() as Slot == t => run.push(value),
                _ => runs.push((t, vec![value])),
            }
        }
        (runs, None)
    }

    /// Persist each run at our ballot, as one copy that the caller's accepts then share.
    pub(super) fn persist_runs(
        &self,
        runs: Runs<C>,
        out: &mut Out<Self, C>,
    ) -> Vec<(Slot, Values<C>)> {
        let runs: Vec<(Slot, Values<C>)> = runs
            .into_iter()
            .map(|(first, run)| (first, Values::new(run)))
            .collect();
        for (first, run) in &runs {
            out.persist(PaxosWrite::Accept {
                ballot: self.ballot,
                first: *first,
                cmds: Values::clone(run),
            });
        }
        runs
    }

    /// Persist each run, then send each (persist before send).
    pub(super) fn emit_runs(&self, runs: Runs<C>, out: &mut Out<Self, C>) {
        for (first, run) in self.persist_runs(runs, out) {
            self.broadcast_accept(first, run, out);
        }
    }

    /// Leader: propose what the window takes, commit what a quorum accepted, and again while
    /// either moves (a cluster of one commits as it proposes).
    pub(super) fn leader_progress(&mut self, out: &mut Out<Self, C>) {
        while self.is_leader() {
            let (runs, missing) = self.take_window();
            let took = !runs.is_empty();
            self.emit_runs(runs, out);
            if let Some(config) = missing {
                self.ask_promises(&config, out);
            }
            let before = self.commit;
            self.advance_leader_commit(out);
            if self.commit > before {
                self.changes_on_commit(before, out);
            }
            if !took && self.commit == before {
                return;
            }
        }
    }

    /// Leader: ask the voters of `config` that have not promised our ballot since we lead (nor
    /// been asked since the last heartbeat) for a promise, from the first slot we have not
    /// proposed.
    pub(super) fn ask_promises(&mut self, config: &Membership, out: &mut Out<Self, C>) {
        let (b, from, me) = (self.ballot, self.proposed() + 1, self.id);
        let RoleState::Leader {
            promises, asked, ..
        } = &mut self.state
        else {
            return;
        };
        for p in config.voters.iter() {
            if p != me && !promises.contains(p) && !asked.contains(p) {
                asked.insert(p);
                out.send(p, PaxosMsg::LatePrepare { ballot: b, from });
            }
        }
    }

    /// Leader, at a heartbeat: ask again whoever did not answer, and propose what waits.
    pub(super) fn heartbeat_progress(&mut self, out: &mut Out<Self, C>) {
        if let RoleState::Leader { asked, .. } = &mut self.state {
            *asked = NodeSet::EMPTY;
        }
        self.leader_progress(out);
        self.resend_handoff(out);
    }

    /// Leader: a voter we asked promised our ballot (phase 1 for a configuration the window
    /// reached). What it reports for the slots we have not proposed yet joins the backlog
    /// (the highest ballot wins: PMS §2.2, P2c); once every chunk of it is in, the node
    /// counts among our promises.
    pub(super) fn on_late_promise(
        &mut self,
        from: NodeId,
        b: Ballot,
        first: Slot,
        accepted: Vec<Option<Entry<C>>>,
        reports: std::ops::Range<Slot>,
        out: &mut Out<Self, C>,
    ) {
        let Some(end) = first.checked_add(accepted.len() as Slot) else {
            return; // malformed (no acceptor of ours sends it)
        };
        if !self.is_leader() || b != self.ballot || first < reports.start || end > reports.end {
            return; // another ballot's, or malformed
        }
        let next = self.proposed() + 1;
        if reports.start > next {
            // Its snapshot holds slots we have not proposed: chosen ones we would have to
            // install first. Rare (see the module docs); a new phase 1 handles it.
            return self.step_down(None, out);
        }
        let RoleState::Leader { backlog, .. } = &mut self.state else {
            return;
        };
        let skip = next.saturating_sub(first).min(accepted.len() as Slot) as usize;
        let at = (first + skip as Slot).saturating_sub(next) as usize;
        Self::merge(backlog, at, &accepted[skip..]);
        self.note_recovered();
        let RoleState::Leader {
            promises, p1_heard, ..
        } = &mut self.state
        else {
            unreachable!("a leader above")
        };
        let Some(heard) = p1_heard.get_mut(from.index()) else {
            return;
        };
        phase1::add_range(heard, first..end);
        if phase1::covers(heard, reports) && !promises.contains(from) {
            promises.insert(from);
            self.leader_progress(out);
        }
    }

    /// Leader: the commit point moved on from `before`. A change that took effect is
    /// answered, the nodes it removed are told the commit point (so that they learn they left
    /// and stay quiet), and a leader it removed tells everybody and steps down.
    fn changes_on_commit(&mut self, before: Slot, out: &mut Out<Self, C>) {
        let (commit, alpha) = (self.commit, self.alpha());
        // Configurations that took effect in (before, commit]: their first slot is above both.
        let took: Vec<(Slot, Membership)> = self
            .configs
            .pairs()
            .iter()
            .copied()
            .filter(|&(from, _)| from > before + 1 && from <= commit + 1)
            .collect();
        let RoleState::Leader { change, .. } = &mut self.state else {
            return;
        };
        if let Some(p) = change.take_if(|p| p.slot.is_some_and(|s| s + alpha <= commit + 1)) {
            let config = self.configs.at(p.slot.unwrap_or(0) + alpha);
            out.change_done(p.id, Ok(config));
        }
        for (from, config) in took {
            let old = self.configs.at(from - 1);
            let mut gone = old.members();
            for m in config.members().iter() {
                gone.remove(m);
            }
            if gone.contains(self.id) {
                // We left: everybody learns the commit point first, then we step down.
                let all = old.members().union(config.members());
                self.heartbeat_to(all, out);
                self.step_down(None, out);
                return;
            }
            self.heartbeat_to(gone, out);
        }
    }

    /// Send a heartbeat (the commit point) to `nodes` (us excluded).
    fn heartbeat_to(&self, nodes: NodeSet, out: &mut Out<Self, C>) {
        let msg = PaxosMsg::Accept {
            ballot: self.ballot,
            first: self.proposed() + 1,
            cmds: Values::default(),
            commit: self.commit,
        };
        for n in nodes.iter().filter(|&n| n != self.id) {
            out.send(n, msg.clone());
        }
    }

    /// Whether a change or transfer is in progress at this leader, or a configuration
    /// command is unchosen (queued, recovered, or above the commit point) or not yet in
    /// effect: a new change waits (one at a time).
    fn change_pending(&self) -> bool {
        let RoleState::Leader {
            change,
            handoff,
            backlog,
            queue,
            ..
        } = &self.state
        else {
            return false;
        };
        change.is_some()
            || handoff.is_some()
            || queue.iter().any(|v| v.config().is_some())
            || backlog.iter().flatten().any(|e| e.value.config().is_some())
            || (self.commit + 1..=self.proposed())
                .any(|s| self.entry(s).is_some_and(|e| e.value.config().is_some()))
            || self.configs.latest_from() > self.commit + 1
    }

    /// An operator's change (rule 9 of the effect contract; see the module docs).
    pub(super) fn on_change(&mut self, id: ChangeId, change: Change, out: &mut Out<Self, C>) {
        if !self.is_leader() {
            let leader = self.leader.filter(|&l| l != self.id);
            return out.change_done(id, Err(ChangeError::NotLeader { leader }));
        }
        let latest = self.configs.latest();
        if let Change::Transfer(target) = change {
            return self.start_handoff(id, target, out);
        }
        if self.change_pending() {
            return out.change_done(id, Err(ChangeError::Pending));
        }
        // Joint consensus is Raft's device for disjoint majorities; here each slot has one
        // configuration, so a change is always a single step.
        let next = match latest.changed(change, ChangeMode::SingleServer) {
            Ok(next) => next,
            Err(e) => return out.change_done(id, Err(e)),
        };
        if let Change::AddVoter(n) = change {
            if latest.is_learner(n) && !self.caught_up(n) {
                return out.change_done(id, Err(ChangeError::Behind(n)));
            }
        }
        let RoleState::Leader {
            queue,
            change: pending,
            ..
        } = &mut self.state
        else {
            unreachable!("checked above")
        };
        queue.push_back(Value::Config(next));
        *pending = Some(PendingChange { id, slot: None });
        self.leader_progress(out);
    }

    /// Whether `node` holds every slot up to within `max_batch` of our last proposal.
    fn caught_up(&self, node: NodeId) -> bool {
        self.holds_up_to(node) + self.cfg.max_batch as Slot >= self.proposed()
    }

    /// Leader: the slot up to which `node` reported holding every value (see `progress`).
    fn holds_up_to(&self, node: NodeId) -> Slot {
        match &self.state {
            RoleState::Leader { progress, .. } => progress.get(node.index()).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// Leader: the operator asks that `target` lead (see the module docs).
    fn start_handoff(&mut self, id: ChangeId, target: NodeId, out: &mut Out<Self, C>) {
        let latest = self.configs.latest();
        if target == self.id {
            return out.change_done(id, Ok(latest)); // we lead already
        }
        if !latest.members().contains(target) {
            return out.change_done(id, Err(ChangeError::Unknown(target)));
        }
        if !latest.is_voter(target) {
            return out.change_done(id, Err(ChangeError::NotVoter(target)));
        }
        if self.change_pending() {
            return out.change_done(id, Err(ChangeError::Pending));
        }
        if let RoleState::Leader { handoff, .. } = &mut self.state {
            *handoff = Some(Handoff {
                id,
                target,
                sent: false,
            });
        }
        // An election timeout from now we give up.
        self.arm_election_timer(out);
        // Its answer to a heartbeat says how much it holds; the handoff follows.
        self.heartbeat_to(NodeSet::of([target]), out);
    }

    /// Leader: tell the target to run phase 1 once it holds every slot we proposed (its
    /// phase 1 then recovers nothing it lacks, and it leads at once).
    pub(super) fn maybe_handoff(&mut self, out: &mut Out<Self, C>) {
        self.handoff_step(false, out);
    }

    /// [`Self::maybe_handoff`], and with `again` (at a heartbeat) tell it again if we told it
    /// already: a lost message only delays the transfer, and the target acts on one copy at
    /// most (it campaigns only while it follows our ballot).
    fn handoff_step(&mut self, again: bool, out: &mut Out<Self, C>) {
        let b = self.ballot;
        let Some(target) = self.handing_to() else {
            return;
        };
        let holds_all = self.holds_up_to(target) >= self.proposed();
        let keep_lease = self.cfg.bug(Bug::LeaseSurvivesHandoff);
        let RoleState::Leader {
            handoff: Some(h),
            reads,
            ..
        } = &mut self.state
        else {
            return;
        };
        if (h.sent && again) || (!h.sent && holds_all) {
            h.sent = true;
            // A HandoffPrepare passes the followers' lease promise, and a copy of this message
            // may arrive after the transfer is given up: this ballot serves no read alone
            // again (see crate::lease). B6: the lease comes back when the transfer is given up.
            if !keep_lease {
                reads.end_lease();
            }
            out.send(h.target, PaxosMsg::Handoff { ballot: b });
        }
    }

    /// Leader, at a heartbeat: the handoff goes out again (or for the first time).
    fn resend_handoff(&mut self, out: &mut Out<Self, C>) {
        self.handoff_step(true, out);
    }

    /// Leader, at its election timer: a transfer not done within an election timeout is
    /// given up, and we take proposals again.
    pub(super) fn handoff_timed_out(&mut self, out: &mut Out<Self, C>) {
        if let RoleState::Leader { handoff, .. } = &mut self.state {
            if let Some(h) = handoff.take() {
                out.change_done(h.id, Err(ChangeError::TransferTimedOut(h.target)));
            }
        }
    }

    /// Whether a leadership transfer is in progress here, and to whom.
    pub(super) fn handing_to(&self) -> Option<NodeId> {
        match &self.state {
            RoleState::Leader {
                handoff: Some(h), ..
            } => Some(h.target),
            _ => None,
        }
    }

    /// The leader we follow (`from`, in `ballot`) hands us the leadership: run phase 1 now,
    /// if we still follow that ballot and vote.
    pub(super) fn on_handoff(&mut self, from: NodeId, ballot: Ballot, out: &mut Out<Self, C>) {
        let follows = self.role() == Role::Follower
            && self.leader == Some(from)
            && self.promised == ballot
            && ballot.node == from.0;
        if follows && self.configs.latest().is_voter(self.id) {
            self.campaign_handed(Some(ballot), out);
        }
    }

    /// Whether a prepare may pass the lease (see `on_prepare`): the proposer was handed the
    /// leadership by the leader of ballot `by`, and that leader is the one whose lease we
    /// keep (it gave its lease up when it handed over), or we are that leader.
    pub(super) fn lease_handed_over(&self, by: Option<Ballot>) -> bool {
        let Some(by) = by else { return false };
        match &self.state {
            RoleState::Follower { .. } => self.leader == Some(NodeId(by.node)),
            RoleState::Leader { handoff, .. } => {
                by == self.ballot && handoff.is_some_and(|h| h.sent)
            }
            RoleState::Candidate { .. } => false,
        }
    }

    /// End of a step that ended a leadership: hand back what it held. Queued commands go
    /// back to their clients; a change or transfer in progress is answered: a transfer `Ok`
    /// if the ballot that replaced ours is its target's, anything else `Interrupted`.
    pub(super) fn hand_back(&mut self, h: HandedBack<C>, out: &mut Out<Self, C>) {
        self.hand_back_reads(h.reads, out);
        for v in h.queue {
            if let Value::Cmd(cmd) = v {
                out.redirect(cmd, self.leader);
            }
        }
        if let Some(p) = h.change {
            out.change_done(p.id, Err(ChangeError::Interrupted));
        }
        if let Some(t) = h.handoff {
            let result = if self.promised > h.ballot && self.promised.node == t.target.0 {
                Ok(self.configs.latest())
            } else {
                Err(ChangeError::Interrupted)
            };
            out.change_done(t.id, result);
        }
    }
}
