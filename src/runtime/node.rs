//! One replica thread's loop: drain the mailbox, step the replica, carry out its effects with
//! one group sync before any send, and stop at a crash point when the kill switch fires.
//!
//! Reads without the log (when [`Replica::READS`] and [`Config::reads`](paxraft_impls::Config)
//! is not [`ReadMode::Log`]): the read-only requests of a drain go to the replica in one
//! [`Replica::read`] call, after the step's one `propose`, as one
//! [`ReadId`](paxraft_impls::ReadId) standing for them all (a group in the node's [`Reads`]
//! table). A read made ready is answered from the node's state machine once it has applied
//! the read's slot; a read handed back gets the redirect a proposal gets. In-process clients
//! park their reads at the node's local reader instead and send tickets, confirmed by the
//! same groups ([`super::local`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::Instant;

use paxraft_impls::sm::{Sessions, StateMachine};
use paxraft_impls::{
    ChangeError, ChangeId, Effect, Membership, NodeId, NodeSet, Out, ReadMode, Replica, Slot,
    Snapshot, SnapshotPolicy,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cluster::{lock_kept, Shared};
use super::crash::{CrashPoint, KillSwitch};
use super::reads::Reads;
use super::{
    ChangeBox, ChangeReply, Cmd, Drained, Input, Net, Pending, Refused, Reply, RuntimeConfig,
    READS_IN_FLIGHT,
};

/// How a node's loop ended.
pub(super) enum Exit {
    /// Its mailbox was closed (shutdown, or a crash of a node waiting for input).
    Closed,
    /// Its kill switch fired at a crash point.
    Killed,
}

/// Answer `Retry` to the proposals, and [`ChangeReply::Down`] to the change requests, among
/// inputs a closed mailbox handed back (what the closer of a node's mailbox does: crash,
/// shutdown, or a panicked node).
pub fn fail_inputs<R: Replica<Cmd<S>>, S: StateMachine>(inputs: Vec<Input<R, S>>) {
    for input in inputs {
        match input {
            Input::Propose { reqs, reply } => {
                let _ = reply.push_many(
                    reqs.into_iter()
                        .map(|r| Reply::Retry { seq: r.seq })
                        .collect(),
                );
            }
            Input::ReadTicket { to, reply, .. } => {
                let _ = reply.push(Reply::Unconfirmed {
                    node: to,
                    leader: None,
                });
            }
            Input::Change { reply, .. } => {
                let _ = reply.push(ChangeReply::Down);
            }
            Input::Msg { .. } => {}
        }
    }
}

/// The change requests a node's replica holds (rule 9: each ends in exactly one
/// [`Effect::ChangeDone`]), under ids unique in this node thread's life, and the answers of
/// the current step, pushed after its sync like clients' answers. Owned by the thread, not
/// the loop, so that a node that dies (crash or panic) answers [`ChangeReply::Down`] to
/// every request it still holds ([`Changes::fail_all`]).
#[derive(Debug, Default)]
pub(super) struct Changes {
    next: ChangeId,
    waiting: HashMap<ChangeId, ChangeBox>,
    answers: Vec<(ChangeBox, ChangeReply)>,
}

impl Changes {
    /// Note a request; its id for [`Replica::change`].
    fn add(&mut self, reply: ChangeBox) -> ChangeId {
        self.next += 1;
        self.waiting.insert(self.next, reply);
        self.next
    }

    /// The replica answered request `id`: queue the answer for [`Changes::flush`].
    fn answer(&mut self, id: ChangeId, result: Result<Membership, ChangeError>) {
        // A replica answers only ids it was given, once each (rule 9).
        let reply = self
            .waiting
            .remove(&id)
            .unwrap_or_else(|| panic!("change {id} answered twice, or never asked"));
        self.answers.push((reply, ChangeReply::Done(result)));
    }

    fn has_answers(&self) -> bool {
        !self.answers.is_empty()
    }

    /// Push this step's answers (after its sync: an answer reports what is durable).
    fn flush(&mut self) {
        for (reply, answer) in self.answers.drain(..) {
            // A caller that gave up dropped its box; nobody else reads it.
            let _ = reply.push(answer);
        }
    }

    /// The node went down: every request it held or had answered but not yet sent hears
    /// [`ChangeReply::Down`] (an answer not sent was never given).
    pub(super) fn fail_all(&mut self) {
        let held = self.waiting.drain().map(|(_, reply)| reply);
        for reply in held.chain(self.answers.drain(..).map(|(reply, _)| reply)) {
            let _ = reply.push(ChangeReply::Down);
        }
    }
}

/// Armed timers: a min-heap of deadlines with a generation per timer, so re-arming or
/// cancelling leaves a stale heap entry that is skipped when it surfaces.
struct Timers<T: Ord + Copy> {
    heap: BinaryHeap<Reverse<(Instant, u64, T)>>,
    armed: BTreeMap<T, u64>,
    gen: u64,
}

impl<T: Ord + Copy> Timers<T> {
    fn set(&mut self, t: T, at: Instant) {
        self.gen += 1;
        self.armed.insert(t, self.gen);
        self.heap.push(Reverse((at, self.gen, t)));
        // Bounded: stale entries are dropped when the heap grows well past the armed set.
        if self.heap.len() > 64 + 8 * self.armed.len() {
            let armed = &self.armed;
            self.heap
                .retain(|Reverse((_, g, t))| armed.get(t) == Some(g));
        }
    }
    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }
    fn pop_due(&mut self, now: Instant) -> Option<T> {
        while let Some(Reverse((at, g, t))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if self.armed.get(&t) == Some(&g) {
                self.armed.remove(&t);
                return Some(t);
            }
        }
        None
    }
}

/// One replica thread's life: boot from storage (as a node of the cluster whose initial
/// configuration is `voters`, which need not include it), then drain, step, apply effects,
/// until its mailbox is closed or its kill switch fires.
#[allow(clippy::too_many_arguments)]
pub(super) fn node_loop<R: Replica<Cmd<S>>, S: StateMachine>(
    id: NodeId,
    voters: &[NodeId],
    cfg: &RuntimeConfig,
    net: &Net<R, S>,
    kept: &Shared<R, S>,
    kill: &KillSwitch,
    pending: &mut Pending<S>,
    changes: &mut Changes,
) -> Exit {
    let mine = &net.boxes[id.index()];
    let mut out: Out<R, Cmd<S>> = Out::<R, Cmd<S>>::new();
    let (durable, incarnation) = {
        let mut k = lock_kept(kept);
        let durable = match k.loaded.take() {
            Some(checked) => checked,
            None => k.storage.load().expect("load durable state"),
        };
        (durable, k.incarnation)
    };
    let mut rng = StdRng::seed_from_u64(
        cfg.seed ^ (u64::from(id.0) << 32) ^ incarnation.wrapping_mul(0x9e37_79b9),
    );
    let mut replica = R::boot(id, voters, durable.as_ref(), &cfg.protocol, &mut out);
    let mut timers = Timers {
        heap: BinaryHeap::new(),
        armed: BTreeMap::new(),
        gen: 0,
    };
    let mut inbox: Vec<Input<R, S>> = Vec::new();
    let mut batch: Vec<Cmd<S>> = Vec::new();
    // Reads skip the log only where the protocol has a read path and the config asks for it.
    let reads_on = R::READS && cfg.protocol.reads != ReadMode::Log;
    // Leases need time (rule 6 of the effect contract): this node's monotonic clock, read
    // just before each input so that the replica never acts on a reading older than now.
    let timed = cfg.protocol.reads == ReadMode::Lease;
    // Lease reads answered on clients' threads ([`super::local`]) need a permission.
    let local_on = reads_on && timed;
    // ReadIndex reads parked on clients' threads wait for their tickets' confirmation.
    let tickets_on = reads_on && cfg.protocol.reads == ReadMode::ReadIndex;
    // The node's own reader (the one its `Kept` shares): no tickets before its first step.
    let local = net.local(id.index());
    local.offer_tickets(false);
    // The highest ticket confirmed in this incarnation (published after every sync).
    let mut confirmed: u64 = 0;
    // Tickets are offered from the first step's end while the node alone is no quorum.
    let mut offered = false;
    // Every entry up to this slot was durable here at the end of the last step.
    let mut synced_last: Slot = 0;
    let epoch = Instant::now();
    let mut reads: Reads<S::Op> = Reads::new(READS_IN_FLIGHT);
    // Every node of the net, spares included: a change may make any of them a peer.
    let mut outgoing: Vec<Vec<Input<R, S>>> = (0..net.len()).map(|_| Vec::new()).collect();
    let mut last_reported: Slot = 0;
    // A protocol without snapshots: the commit point at its store's last checkpoint.
    let mut folded: Slot = 0;
    loop {
        // Carry out the effects of everything stepped so far, in order. A crash may hit
        // before any of them, and at every later point up to the answers.
        {
            let mut k = lock_kept(kept);
            let k = &mut *k;
            let mut wrote = false;
            // The state machine's write lock, held across a run of commits: one acquisition
            // per run rather than one per command, which under lease reads would queue
            // behind the clients' read guards once for every command.
            let mut applying = None;
            for e in out.drain() {
                if kill.hit(CrashPoint::before(&e)) {
                    return Exit::Killed;
                }
                if !matches!(e, Effect::Commit { .. }) {
                    applying = None;
                }
                match e {
                    Effect::Persist(w) => {
                        k.storage.append_owned(w).expect("durable append");
                        wrote = true;
                    }
                    Effect::Send { to, msg } => {
                        if net.linked(id.index(), to.index()) {
                            outgoing[to.index()].push(Input::Msg { from: id, msg });
                        }
                    }
                    Effect::SetTimer { timer, after } => {
                        let d = if after.start >= after.end {
                            after.start
                        } else {
                            rng.gen_range(after)
                        };
                        timers.set(timer, Instant::now() + d);
                    }
                    Effect::CancelTimer(t) => {
                        timers.armed.remove(&t);
                    }
                    Effect::Commit { slot, cmd } => {
                        assert!(
                            slot > last_reported,
                            "commits out of order: {slot} after {last_reported}"
                        );
                        last_reported = slot;
                        if wrote && slot > synced_last && (local_on || tickets_on) {
                            // A commit after a write of this same step, above what was
                            // durable here before it, may not be durable yet (a cluster of
                            // one commits what it has just written): no local read may see
                            // it before the sync ([`super::local`]). Below that line it is
                            // durable here, and a quorum that counts a copy only once it
                            // was synced holds it.
                            k.local.revoke();
                        }
                        // This incarnation's state machine started empty: it applies every
                        // slot the replica reports, from the first.
                        k.applied = slot;
                        k.first_applied.get_or_insert(slot);
                        k.commits += 1;
                        let sm = applying.get_or_insert_with(|| local.sessions_mut());
                        let res = sm.apply_as(&cmd, &cfg.protocol);
                        pending.answer(cmd.client, cmd.seq, |seq| Reply::Done { seq, out: res });
                    }
                    Effect::Redirect { cmd, leader } => {
                        pending.answer(cmd.client, cmd.seq, |seq| Reply::Redirect { seq, leader });
                    }
                    Effect::Busy { cmd } => {
                        pending.answer(cmd.client, cmd.seq, |seq| Reply::Busy { seq });
                    }
                    Effect::Restore(snapshot) => {
                        // Rule 7: this incarnation's state machine takes the snapshot unless
                        // it applied that far already; commits resume above it.
                        last_reported = last_reported.max(snapshot.slot);
                        if k.applied < snapshot.slot {
                            let restored = Sessions::decode(&snapshot.data)
                                .expect("a snapshot this cluster's hosts encoded decodes");
                            // Peers agree on it (checked when they connect and restart).
                            assert_eq!(
                                restored.timeout(),
                                cfg.session_timeout,
                                "a snapshot's session timeout"
                            );
                            *k.local.sessions_mut() = restored;
                            k.applied = snapshot.slot;
                            k.first_applied.get_or_insert(snapshot.slot);
                            k.restored.0 += 1;
                            k.restored.1 += snapshot.data.len() as u64;
                        }
                    }
                    Effect::ReadReady { id, slot } => reads.ready(id, slot),
                    Effect::ChangeDone { id, result } => changes.answer(id, result),
                    Effect::ReadRedirect { id, leader } => {
                        let back = reads.redirect(id);
                        for (client, seq) in back.reads {
                            pending.answer(client, seq, |seq| Reply::Redirect { seq, leader });
                        }
                        for client in back.waiters {
                            pending.unconfirm(client, leader);
                        }
                    }
                }
            }
            // Released before the snapshot and the held reads below read the state machine.
            drop(applying);
            // The snapshot policy: the state machine has applied up to the commit point
            // (every commit reported so far is applied above, or restored), so a snapshot of
            // it now is the state at that slot. The compaction only writes.
            let mut compacted = false;
            if let Some(policy) = cfg.protocol.snapshots {
                let status = replica.status();
                if !R::SNAPSHOTS {
                    // No log to compact (the unreplicated ceiling keeps none): the store still
                    // folds its writes on the policy's schedule, as if it snapshotted at
                    // `folded`, so that it holds as little as the others' stores do and the
                    // comparison stays fair.
                    if policy.due(&paxraft_impls::Status {
                        snapshot: folded,
                        ..status
                    }) {
                        folded = status.commit;
                        compacted = true;
                    }
                } else if policy.due(&status) {
                    let snapshot = Snapshot {
                        slot: SnapshotPolicy::slot(&status, &cfg.protocol),
                        data: k.local.sessions().encode_as(&cfg.protocol),
                    };
                    replica.compact(snapshot, &mut out);
                    for e in out.drain() {
                        match e {
                            Effect::Persist(w) => {
                                k.storage.append_owned(w).expect("durable append");
                                wrote = true;
                                compacted = true;
                            }
                            Effect::SetTimer { .. } | Effect::CancelTimer(_) => {}
                            other => unreachable!("compaction only writes: {other:?}"),
                        }
                    }
                }
            }
            if reads.has_held() {
                // Every commit the replica reported is applied above, and it reports every
                // command up to its commit point (rule 2; internal entries such as a no-op
                // are not reported, which is why the applied point is the replica's commit
                // point and not the last slot applied): the state machine has applied
                // everything up to it. Reads made ready at or below it are answered from it.
                let applied = replica.status().commit;
                debug_assert!(k.applied <= applied, "applied past the commit point");
                let sessions = k.local.sessions();
                let (sm, pending) = (sessions.state(), &mut *pending);
                let mut woken = Vec::new();
                reads.release(
                    applied,
                    |client, seq, op| {
                        let out = sm
                            .query(&op)
                            .expect("a read-only op has a query answer (StateMachine::query)");
                        pending.answer(client, seq, |seq| Reply::Done { seq, out: Ok(out) });
                    },
                    |through, waiters| {
                        confirmed = confirmed.max(through);
                        woken.extend(waiters);
                    },
                );
                drop(sessions);
                for client in woken {
                    pending.confirm(client);
                }
            }
            if wrote && kill.hit(CrashPoint::Sync) {
                return Exit::Killed;
            }
            // Group commit: everything persisted above is durable before any send leaves.
            k.storage.sync().expect("durable sync");
            if compacted {
                k.storage.checkpoint().expect("storage checkpoint");
            }
            let status = replica.status();
            synced_last = status.last;
            if tickets_on {
                // A node that is a quorum alone commits its writes before syncing them and
                // would hide its confirmations for the sync of every step that writes (the
                // revoke above): a parked read could miss its wake-up. Its reads go to the
                // node, which answers them after the sync.
                let offer = !status.config.has_quorum(NodeSet::of([id]));
                if offered != offer {
                    offered = offer;
                    k.local.offer_tickets(offer);
                }
                if confirmed > 0 {
                    // After the sync, as for the lease; the wake-ups leave after this.
                    k.local.confirm(confirmed);
                }
            }
            if local_on {
                // After the sync (the state machine holds only durable commits again) and
                // before this step's sends leave: a step that ended the permission lets no
                // message out while reads are still answered on it ([`super::local`]).
                match replica.local_reads().filter(|l| l.at <= status.commit) {
                    Some(l) => k.local.allow(epoch + l.until),
                    None => k.local.revoke(),
                }
            }
            k.status = Some(status);
        }
        for (to, msgs) in outgoing.iter_mut().enumerate() {
            if !msgs.is_empty() {
                if kill.hit(CrashPoint::Push) {
                    return Exit::Killed;
                }
                // A closed (crashed) or full peer drops them, like a lossy network.
                if let Err(Refused::Closed(lost) | Refused::Full(lost)) =
                    net.boxes[to].push_many(std::mem::take(msgs))
                {
                    net.dropped
                        .fetch_add(lost.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        if (pending.has_answers() || changes.has_answers()) && kill.hit(CrashPoint::Answer) {
            return Exit::Killed;
        }
        pending.flush();
        changes.flush();

        // Wait for input or the next timer.
        let now = Instant::now();
        if let Some(t) = timers.pop_due(now) {
            if timed {
                replica.set_now(now - epoch);
            }
            replica.on_timer(t, &mut out);
            continue;
        }
        if mine.drain(&mut inbox, timers.next()) == Drained::Closed {
            return Exit::Closed;
        }
        if timed {
            replica.set_now(epoch.elapsed());
        }
        for input in inbox.drain(..) {
            match input {
                Input::Msg { from, msg } => replica.on_message(from, msg, &mut out),
                Input::ReadTicket { client, reply, .. } => {
                    if tickets_on {
                        pending.add_ticket(client, &reply);
                        reads.want(client);
                    } else {
                        let _ = reply.push(Reply::Unconfirmed {
                            node: id,
                            leader: None,
                        });
                    }
                }
                Input::Change { change, reply } => {
                    let id = changes.add(reply);
                    replica.change(id, change, &mut out);
                }
                Input::Propose { reqs, reply } => {
                    pending.add(&reqs, &reply);
                    if reads_on {
                        for r in reqs {
                            if !S::is_read_only(&r.op) {
                                batch.push(r);
                                continue;
                            }
                            // Beyond the bound the read takes the log: slower, never lost.
                            if !reads.start(r.client, r.seq, r.op.clone()) {
                                batch.push(r);
                            }
                        }
                    } else {
                        batch.extend(reqs);
                    }
                }
            }
        }
        if !batch.is_empty() {
            // One propose for everything pending: one append/accept for the whole batch.
            replica.propose(std::mem::take(&mut batch), &mut out);
        }
        if let Some(id) = reads.take_group(|| local.asked()) {
            let now = timed.then(|| epoch.elapsed());
            if let Some(now) = now {
                replica.set_now(now);
            }
            // One read id for every read drained: they share one read index and one
            // confirmation round ([`super::reads`]), or are answered at once under the
            // lease, as a client's local read would be.
            paxraft_impls::read_or_local(&mut replica, now, vec![id], &mut out);
        }
    }
}
