//! The server host: a replica, the service's state machine behind client sessions, and the durable
//! image its `Persist` effects build; what it checks after every step; and crashes that the
//! exhaustive checker asks to fall between two effects of one step.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use paxraft_impls::driver::crash_points;
use paxraft_impls::sm::{Kv, SessionError, Sessions, StateMachine};
use paxraft_impls::{Effect, Out, ReadId, Replica, Role, Slot, Snapshot, SnapshotPolicy};
use stateright::actor::{model_timeout, Id};

use super::{Answer, Cmd, Hashed, ModelOut, Msg, Node, NodeState, Timer};

/// What a server host keeps durable: the replica's image built from its writes, and the
/// state machine with what was applied to it (a host applies and records atomically, so a
/// restarted host skips the slots the replica reports again).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Saved<R: Replica<Cmd>> {
    /// The replica's durable image.
    pub durable: R::Durable,
    /// The store (keys and locks) behind client sessions.
    pub sm: Sessions<Kv>,
    /// Applied commands by slot, in slot order (no-ops are not reported).
    pub applied: Vec<(Slot, Cmd)>,
    /// Slots this host learned were committed as no-ops, in order (from the replica's
    /// [`Replica::committed`] view whenever its commit point advances), so that state
    /// machine safety compares them too.
    pub noops: Vec<Slot>,
    /// Highest term the host saw the replica in (terms must never go back, even after a restart).
    pub term: u64,
    /// Term in which this host first applied a command (0: not yet).
    pub first_commit_term: u64,
    /// The host's applied point: every slot up to it is applied (reported commits, the
    /// replica's commit point, restored snapshots), across restarts.
    pub applied_to: Slot,
    /// Snapshots restored: bit 0, a peer's snapshot taken in place of a lagging state
    /// machine; bit 1, the replica's own one, restored at a restart.
    pub restores: u8,
    /// Restarts so far.
    pub restarts: u8,
    /// Crashes that fell between two effects of one step.
    pub torn_crashes: u8,
}

/// The storage stateright keeps across a crash.
pub type Storage<R> = Arc<Hashed<Saved<R>>>;

/// A check a server's host makes after every replica step; a failure is kept in the server's
/// [`HostChecks`] for the always-properties to read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostCheck {
    /// The replica's term went back, within a step or across a restart.
    Terms,
    /// A slot was reported twice in one incarnation, or out of order.
    Order,
    /// A slot the host had applied was reported again with another command, or a slot below
    /// one already applied was reported (a hole in the prefix).
    Prefix,
    /// A read was made ready at a slot the replica had not committed (and so the host had not
    /// applied): answering it at once would miss writes the read must see.
    ReadAhead,
    /// The replica keeps a snapshot past its commit point, or hands its host one to restore
    /// past it, or one that does not decode: a snapshot claims state that is not committed.
    Snapshot,
    /// A leader took more of a proposal than its cap admits ([`Config::admits`] of what its
    /// [`Status::uncommitted`](paxraft_impls::Status) said before the step): back-pressure
    /// (rule 3 of the effect contract) was ignored.
    ///
    /// [`Config::admits`]: paxraft_impls::Config::admits
    Cap,
    /// The protocol's step invariant with this index in [`Setup::step_invariants`](super::Setup::step_invariants).
    Step(usize),
}

/// The host checks a server has failed: a set of [`HostCheck`]s, kept as bits so that a
/// server state stays small and cheap to hash.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostChecks(u32);

impl HostChecks {
    /// Step invariants the set can hold.
    pub const MAX_STEP_INVARIANTS: usize = 26;

    fn bit(check: HostCheck) -> u32 {
        match check {
            HostCheck::Terms => 1 << 0,
            HostCheck::Order => 1 << 1,
            HostCheck::Prefix => 1 << 2,
            HostCheck::ReadAhead => 1 << 3,
            HostCheck::Snapshot => 1 << 4,
            HostCheck::Cap => 1 << 5,
            HostCheck::Step(k) => {
                assert!(
                    k < Self::MAX_STEP_INVARIANTS,
                    "step invariant {k} out of range"
                );
                1 << (6 + k)
            }
        }
    }

    /// Record that `check` failed.
    pub fn fail(&mut self, check: HostCheck) {
        self.0 |= Self::bit(check);
    }

    /// Whether `check` failed.
    pub fn failed(self, check: HostCheck) -> bool {
        self.0 & Self::bit(check) != 0
    }
}

/// A server's state: the replica, and the host around it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerState<R: Replica<Cmd>> {
    /// The protocol replica.
    pub replica: R,
    /// The host's durable part (also saved to stateright's storage).
    pub saved: Storage<R>,
    /// Highest slot reported in this incarnation.
    pub reported: Slot,
    /// The replica's commit point when the host last looked for committed no-ops.
    pub known_commit: Slot,
    /// The host checks that failed.
    pub checks: HostChecks,
    /// Reads handed to the replica ([`Replica::read`]) and not yet answered, by read id.
    /// Volatile: they die with a crash (their clients retry).
    pub reads: Vec<(ReadId, Cmd)>,
    /// Reads this host answered without the log: bit 0 as leader, bit 1 as a follower, bit 2
    /// as a leader of several servers in the step the read arrived (no round: a lease).
    pub served_reads: u8,
    /// With time (leases): when each armed replica timer is due, on this server's clock, by
    /// timer. A timer may fire only once the clock has reached it ([`crate::checked`]).
    pub deadlines: Vec<(R::Timer, Duration)>,
    /// The operator's changes this server answered as done, by bit (change `k` of
    /// [`ModelConfig::changes`](super::ModelConfig::changes) is request `k + 1`).
    pub changes_done: u8,
    /// This host handed a client's request back busy ([`Effect::Busy`]: its leader was at
    /// [`Config::max_uncommitted`](paxraft_impls::Config::max_uncommitted)).
    pub refused_busy: bool,
}

/// The read id a model host gives a client's request (clients and sequence numbers are
/// small).
pub(super) fn read_id(cmd: &Cmd) -> ReadId {
    cmd.client << 8 | cmd.seq
}

/// A crash inside one step, as the exhaustive checker asks for it ([`crate::checked`]): the
/// checker sets the request around one `next_state` call on its thread, the host reads it
/// while it carries out the effects and leaves its answer. A thread-local keeps stateright's
/// actor interface unchanged; every checker thread computes its own successors.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tear {
    /// No request: carry out every effect.
    Off,
    /// Carry out every effect, and report how many crash points the step had.
    Count,
    /// Crash at crash point `p` (see [`crash_points`]).
    At(usize),
    /// The host's answer: the step had `points` crash points; `torn` when it crashed.
    Done { points: usize, torn: bool },
}

thread_local! {
    static TEAR: std::cell::Cell<Tear> = const { std::cell::Cell::new(Tear::Off) };
    /// With time: the clock reading of the server that steps ([`with_now`]).
    static NOW: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Run `f` (one step of the actor model) with `now` as the stepping server's clock: its host
/// tells the replica ([`Replica::set_now`]) and dates the timers it arms. `None`: the model
/// keeps no time. Like [`with_tear`], a thread-local keeps stateright's actor interface as it
/// is.
pub(crate) fn with_now<T>(now: Option<Duration>, f: impl FnOnce() -> T) -> T {
    NOW.with(|n| n.set(now));
    let out = f();
    NOW.with(|n| n.set(None));
    out
}

pub(super) fn now() -> Option<Duration> {
    NOW.with(|n| n.get())
}

/// Run `f` with `tear` requested of the host; returns what the host answered (`Done`), or
/// `Done { points: 0, torn: false }` when no replica step ran.
pub(crate) fn with_tear<T>(tear: Tear, f: impl FnOnce() -> T) -> (T, usize, bool) {
    TEAR.with(|t| t.set(tear));
    let out = f();
    let answer = TEAR.with(|t| t.replace(Tear::Off));
    match answer {
        Tear::Done { points, torn } => (out, points, torn),
        _ => (out, 0, false),
    }
}

impl<R: Replica<Cmd>> Node<R> {
    /// Carry out a replica's effects, in order, on the host `s`. Persist before send holds
    /// within a step: the image is saved in the same atomic model step, unless the checker
    /// asked for a crash between two effects ([`Tear`]), in which case only the effects
    /// before the crash point are carried out and the server is marked for the crash.
    pub(super) fn host(
        &self,
        s: &mut ServerState<R>,
        out: &mut Out<R, Cmd>,
        o: &mut ModelOut<R>,
        mut saved: Option<Saved<R>>,
    ) {
        // Only a boot hands its host a fresh image to start from.
        let booting = saved.is_some();
        let Node::Server { cfg, .. } = self else {
            unreachable!("only servers host replicas")
        };
        let leader = s.replica.status().role == Role::Leader;
        let mut effects: Vec<_> = out.drain().collect();
        let mut torn = false;
        let tear = TEAR.with(|t| t.get());
        if tear != Tear::Off {
            let points = crash_points(&effects);
            if let Tear::At(p) = tear {
                if let Some(&cut) = points.get(p) {
                    effects.truncate(cut);
                    torn = true;
                }
            }
            TEAR.with(|t| {
                t.set(Tear::Done {
                    points: points.len(),
                    torn,
                })
            });
        }
        // A term is exposed once a send of this step went out; a torn step that sent
        // nothing leaves no trace of a term it did not persist.
        let mut sent = false;
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => {
                    sent = true;
                    o.send(Id::from(to.index()), Msg::Peer(Arc::new(msg)))
                }
                Effect::SetTimer { timer, after } => {
                    if let Some(now) = now() {
                        let due = now + after.start;
                        match s.deadlines.binary_search_by_key(&timer, |(t, _)| *t) {
                            Ok(k) => s.deadlines[k].1 = due,
                            Err(k) => s.deadlines.insert(k, (timer, due)),
                        }
                    }
                    o.set_timer(Timer::Replica(timer), model_timeout())
                }
                Effect::CancelTimer(timer) => {
                    s.deadlines.retain(|(t, _)| *t != timer);
                    o.cancel_timer(Timer::Replica(timer))
                }
                Effect::Persist(w) => {
                    let sv = saved.get_or_insert_with(|| (**s.saved).clone());
                    R::apply_write(&mut sv.durable, &w);
                }
                Effect::Commit { slot, cmd } => {
                    if slot <= s.reported {
                        s.checks.fail(HostCheck::Order);
                    }
                    s.reported = s.reported.max(slot);
                    let sv = saved.get_or_insert_with(|| (**s.saved).clone());
                    sv.applied_to = sv.applied_to.max(slot);
                    match sv.applied.binary_search_by_key(&slot, |(k, _)| *k) {
                        Ok(i) => {
                            // Reported again after a restart: the host applied it already.
                            if sv.applied[i].1 != cmd {
                                s.checks.fail(HostCheck::Prefix);
                            }
                        }
                        Err(i) => {
                            if i < sv.applied.len() {
                                // A slot below one already applied: a hole in the prefix.
                                s.checks.fail(HostCheck::Prefix);
                            }
                            // Bug zoo B2 and L1 switch inside, through the config.
                            let answer = match sv.sm.apply_as(&cmd, cfg) {
                                Ok(answer) => Some(Answer::from(answer)),
                                // An expired session is told so, explicitly.
                                Err(SessionError::Expired { .. }) => Some(Answer::Expired),
                                // Stale and reused requests come from no correct client.
                                Err(_) => None,
                            };
                            if sv.first_commit_term == 0 {
                                sv.first_commit_term = s.replica.status().term.max(1);
                            }
                            // The leader answers; a retry reaching a later leader is answered
                            // from the session.
                            if let (true, Some(answer)) = (leader, answer) {
                                let (seq, answer) = (cmd.seq, Arc::new(answer));
                                o.send(Id::from(cmd.client as usize), Msg::Reply { seq, answer });
                            }
                            sv.applied.insert(i, (slot, cmd));
                        }
                    }
                }
                Effect::Redirect { cmd, leader } => {
                    o.send(
                        Id::from(cmd.client as usize),
                        Msg::Redirect {
                            seq: cmd.seq,
                            leader,
                        },
                    );
                }
                // Back-pressure: the client is told, and the command was not appended.
                Effect::Busy { cmd } => {
                    let seq = cmd.seq;
                    s.refused_busy = true;
                    o.send(Id::from(cmd.client as usize), Msg::Busy { seq });
                }
                Effect::ReadReady { id, slot } => {
                    // This host applies commits as they come: a read made ready at a slot the
                    // replica has committed is answered at once, from state that includes it.
                    if slot > s.replica.status().commit {
                        s.checks.fail(HostCheck::ReadAhead);
                    }
                    let Some(k) = s.reads.iter().position(|(r, _)| *r == id) else {
                        continue; // a read this incarnation was not asked: nobody waits
                    };
                    let (_, cmd) = s.reads.remove(k);
                    let sm = saved.as_ref().map_or(&s.saved.sm, |sv| &sv.sm);
                    let answer = sm.state().query(&cmd.op).expect("only reads are read");
                    s.served_reads |= if leader { 1 } else { 2 };
                    o.send(
                        Id::from(cmd.client as usize),
                        Msg::Reply {
                            seq: cmd.seq,
                            answer: Arc::new(answer.into()),
                        },
                    );
                }
                Effect::Restore(snapshot) => {
                    // Rule 7 of the effect contract: a host whose state machine applied at
                    // least this far keeps it (this host's survives crashes); any other takes
                    // the snapshot's, sessions included.
                    if snapshot.slot > s.replica.status().commit {
                        s.checks.fail(HostCheck::Snapshot);
                    }
                    s.reported = s.reported.max(snapshot.slot);
                    let sv = saved.get_or_insert_with(|| (**s.saved).clone());
                    if booting {
                        sv.restores |= 2;
                    }
                    if sv.applied_to < snapshot.slot {
                        match Sessions::decode(&snapshot.data) {
                            Ok(sm) => sv.sm = sm,
                            Err(_) => s.checks.fail(HostCheck::Snapshot),
                        }
                        sv.applied_to = snapshot.slot;
                        sv.restores |= 1;
                    }
                }
                // The model's operator asks and does not wait for the answer; the host keeps
                // which changes were done, for the sometimes-properties.
                Effect::ChangeDone { id, result } => {
                    if let (Ok(_), Some(k)) = (result, id.checked_sub(1).filter(|&k| k < 8)) {
                        s.changes_done |= 1 << k;
                    }
                }
                Effect::ReadRedirect { id, leader } => {
                    let Some(k) = s.reads.iter().position(|(r, _)| *r == id) else {
                        continue;
                    };
                    let (_, cmd) = s.reads.remove(k);
                    o.send(
                        Id::from(cmd.client as usize),
                        Msg::Redirect {
                            seq: cmd.seq,
                            leader,
                        },
                    );
                }
            }
        }
        let status = s.replica.status();
        let term = status.term;
        if term < s.saved.term || saved.as_ref().is_some_and(|sv| term < sv.term) {
            s.checks.fail(HostCheck::Terms);
        }
        // The replica's memory dies with a torn step: only a term some send exposed counts.
        let exposed = !torn || sent;
        if exposed && term > s.saved.term && saved.is_none() {
            saved = Some((**s.saved).clone());
        }
        if !torn && status.commit > s.known_commit {
            // Learn which newly committed slots are no-ops (they are not reported).
            let committed = s.replica.committed();
            let sv = saved.get_or_insert_with(|| (**s.saved).clone());
            for (&slot, entry) in committed.range(s.known_commit + 1..=status.commit) {
                if entry.is_none() {
                    if let Err(i) = sv.noops.binary_search(&slot) {
                        sv.noops.insert(i, slot);
                    }
                }
            }
            // The state machine has applied every slot up to the commit point (the no-ops
            // among them change nothing).
            sv.applied_to = sv.applied_to.max(status.commit);
            s.known_commit = status.commit;
        }
        if torn {
            let sv = saved.get_or_insert_with(|| (**s.saved).clone());
            sv.torn_crashes = sv.torn_crashes.saturating_add(1);
        } else if cfg
            .snapshots
            .is_some_and(|p| R::SNAPSHOTS && p.due(&status))
        {
            // The snapshot policy, at the end of the step that committed enough: a host whose
            // state machine is ahead of the replica (it survived a crash the replica's commit
            // point did not) waits until the replica has caught up, so that the snapshot's
            // slot names the state it holds.
            let applied_to = saved
                .as_ref()
                .map_or(s.saved.applied_to, |sv| sv.applied_to);
            if applied_to <= status.commit {
                let sv = saved.get_or_insert_with(|| (**s.saved).clone());
                let snapshot = Snapshot {
                    slot: SnapshotPolicy::slot(&status, cfg),
                    data: sv.sm.encode_as(cfg),
                };
                let mut writes = Out::<R, Cmd>::new();
                s.replica.compact(snapshot, &mut writes);
                for e in writes.drain() {
                    match e {
                        Effect::Persist(w) => R::apply_write(&mut sv.durable, &w),
                        Effect::SetTimer { .. } | Effect::CancelTimer(_) => {}
                        other => unreachable!("compaction only writes: {other:?}"),
                    }
                }
            }
        }
        // After the step and any compaction: no snapshot above the commit point.
        let now = s.replica.status();
        if now.snapshot > now.commit {
            s.checks.fail(HostCheck::Snapshot);
        }
        if let Some(mut sv) = saved {
            if exposed {
                sv.term = sv.term.max(term);
            }
            s.saved = Arc::new(Hashed::new(sv));
            o.save(s.saved.clone());
        }
    }

    /// Run one replica step on a copy of the server state, check the protocol's step
    /// invariants against the state before, and carry out the effects. Leaves `state`
    /// borrowed when nothing happened, so stateright prunes the no-op. `read`: a read the
    /// host starts waiting for before the step (the step may answer it at once). `fired`: the
    /// replica timer whose firing this step is (its deadline goes).
    pub(super) fn server_step(
        &self,
        state: &mut Cow<NodeState<R>>,
        o: &mut ModelOut<R>,
        read: Option<(ReadId, Cmd)>,
        fired: Option<R::Timer>,
        proposed: usize,
        f: impl FnOnce(&mut R, &mut Out<R, Cmd>),
    ) {
        let Node::Server {
            step_invariants,
            cfg,
            ..
        } = self
        else {
            unreachable!()
        };
        let NodeState::Server(before) = &**state else {
            unreachable!("servers have server state")
        };
        let mut s = before.clone();
        let mut out = Out::<R, Cmd>::new();
        let asked = read.as_ref().map(|(id, _)| *id);
        if let Some(read) = read {
            s.reads.push(read);
        }
        // With time the replica first learns its clock; a step that changes nothing else is
        // still a no-op (the reading alone must not tell states apart).
        let unchanged = now().map(|now| {
            s.replica.set_now(now);
            s.replica.clone()
        });
        if let Some(t) = fired {
            s.deadlines.retain(|(d, _)| *d != t);
        }
        f(&mut s.replica, &mut out);
        let Node::Server { members, .. } = self else {
            unreachable!()
        };
        if members.len() > 1 && asked.is_some_and(|a| out.reads_ready().any(|(id, _)| id == a)) {
            s.served_reads |= 4;
        }
        let same = s.replica == *unchanged.as_ref().unwrap_or(&before.replica);
        if out.is_empty() && same && s.reads == before.reads {
            return;
        }
        for (records, check) in step_invariants.iter() {
            if check(&before.replica, &s.replica).is_err() {
                s.checks.fail(*records);
            }
        }
        if proposed > 0 {
            // Every command of a proposal is taken or handed back (busy, or redirected by a
            // replica that does not lead); a leader takes at most what its cap admits.
            let held = before.replica.status().uncommitted;
            let refused = out
                .iter()
                .filter(|e| matches!(e, Effect::Busy { .. } | Effect::Redirect { .. }))
                .count();
            if proposed.saturating_sub(refused) > cfg.admits(held, proposed) {
                s.checks.fail(HostCheck::Cap);
            }
        }
        self.host(&mut s, &mut out, o, None);
        *state = Cow::Owned(NodeState::Server(s));
    }
}
