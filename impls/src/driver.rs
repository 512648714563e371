//! A deterministic in-memory cluster for tests and scripted scenarios.
//!
//! [`Cluster`] hosts replicas of any [`Replica`] type and lets a test decide *exactly* what
//! happens next: which message is delivered, dropped or duplicated, which timer fires, which
//! node crashes or restarts, which links are cut. Nothing happens on its own, so a scenario
//! reads as an interaction script: the test states an interleaving and asserts its effects.
//!
//! After every step the cluster checks, and panics on violation with the trace so far:
//!
//! * the effect contract of [`crate::replica`] (commits in increasing slot order);
//! * state machine safety across nodes (no slot committed with two different commands);
//! * the protocol's own cluster and step invariants;
//! * for reads ([`Cluster::read`]): a read is served at a slot no lower than anything any
//!   node had committed when it was asked ([`READS_SEE_EARLIER_COMMITS`]), and no higher
//!   than what the serving node has applied ([`READS_SERVED_FROM_APPLIED`]).
//!
//! Each failure is a typed [`Violation`] naming the invariant. Set [`Cluster::checking`] to
//! `false` to step a protocol with a bug switched on and call [`Cluster::check`] by hand, or
//! [`Cluster::record_violations`] to keep stepping and read the first one from
//! [`Cluster::violation`] (what random walks do: a walk that trips on an index error instead
//! then panics, and is not mistaken for a caught bug).
//!
//! The [`Cluster::trace`] has one line per step; with [`Cluster::verbose`] it also has, indented
//! under each step, the effects it carried out (timers aside) and the changes to the node's
//! [`Status`]. The script runner ([`crate::script`]) prints that text.
//!
//! # Time
//!
//! With [`ReadMode::Lease`] the cluster keeps time (rule 6 of [`crate::replica`]): real time
//! moves only when the test says so ([`Cluster::advance`]), each node's clock moves with it at
//! the node's [`ClockRate`] ([`Cluster::set_rate`]: slow or fast by [`Config::clock_drift`],
//! or exact), every input is preceded by [`Replica::set_now`] with the node's clock, and a
//! timer may fire only once the node's clock has reached its deadline (the delay's lower
//! bound after it was set): [`Cluster::fire`] refuses an early one. A crashed node's clock
//! keeps running. Without leases there is no time, and any armed timer may fire at once.
//!
//! # Snapshots
//!
//! With [`Config::snapshots`] set (and a protocol that sets [`Replica::SNAPSHOTS`]) a node's
//! host snapshots what it applied whenever [`SnapshotPolicy::due`] says so, after any step,
//! and hands the snapshot to its replica ([`Replica::compact`]); [`Cluster::snapshot`] does it
//! on demand. The driver's state machine is the map of applied commands, which a generic
//! host cannot encode: the cluster keeps every snapshot's map itself and the snapshot's
//! bytes name it (`snapshot 3 of n1 at slot 7`, long enough to travel in several chunks).
//! An [`Effect::Restore`] is checked: the snapshot agrees with what the node applied
//! ([`STATE_MACHINE_SAFETY`]), the replica's commit point covers it
//! ([`SNAPSHOTS_HOLD_COMMITTED`]), and later commits are above it ([`COMMITS_IN_SLOT_ORDER`]).
//! A host that has applied past the snapshot's slot keeps its own state (its applied map
//! survives crashes); any other takes the snapshot's.
//!
//! # Crashes between effects
//!
//! A real host carries out a step's effects one after the other, and it may crash between any
//! two of them: after a reply left but before the write it depends on reached the disk, or
//! after the write but before the reply. The effect contract of [`crate::replica`] (rule 1,
//! persist before send) is what makes every such cut safe. [`Cluster::crash`] only crashes
//! between steps, where all of a step's effects happened; to crash *inside* one:
//!
//! * [`Cluster::deliver_then_crash`] and [`Cluster::fire_then_crash`] run one step, carry out
//!   only its first `keep` effects, in order (sends reach the network, writes the durable
//!   image, commits the applied log, timers are armed as usual), and then crash the node
//!   exactly as [`Cluster::crash`] does. They return the step's whole effect list. The trace
//!   records the cut, e.g. `n1: crash after 3 of 4 effects`.
//! * [`Cluster::peek_deliver`] and [`Cluster::peek_fire`] return the effects such a step would
//!   have without taking it (replicas are deterministic), and [`crash_points`] lists the cuts
//!   of an effect list worth trying: where a run of sends gives way to a run of writes or
//!   commits, and so on. A test replays the step from a clone of the cluster once per point.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::lease::ClockRate;
use crate::membership::{Change, ChangeError, ChangeId, Membership};
use crate::replica::{
    Command, Config, Effect, NodeId, Out, ReadId, ReadMode, Replica, Slot, Snapshot,
    SnapshotPolicy, Status,
};

/// The name of the cross-node check every protocol gets from the driver: no slot is applied
/// with two different commands, on any two nodes or on one node across incarnations.
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";

/// The name of the effect contract's rule 2 (see [`crate::replica`]): within one incarnation,
/// commits are reported in strictly increasing slot order.
pub const COMMITS_IN_SLOT_ORDER: &str = "commits in slot order";

/// The name of the read rule every protocol gets from the driver: a read made ready at slot
/// `s` includes every command committed anywhere before the read was asked (else it could
/// miss a write that was already acknowledged: a stale read).
pub const READS_SEE_EARLIER_COMMITS: &str = "reads see every earlier commit";

/// The name of the effect contract's rule 4 (see [`crate::replica`]): a read is made ready at
/// a slot the serving node has already committed and reported, so a host answering at once
/// answers from a state that includes it.
pub const READS_SERVED_FROM_APPLIED: &str = "reads served from applied state";

/// The name of the snapshot rule every protocol gets from the driver: a snapshot holds only
/// committed state. A replica never keeps a snapshot past its commit point
/// ([`Status::snapshot`] at most [`Status::commit`]), and one that hands its host a snapshot
/// to restore ([`Effect::Restore`]) has committed everything in it, so that what it applies
/// next follows the snapshot and what it serves includes it.
pub const SNAPSHOTS_HOLD_COMMITTED: &str = "snapshots hold only committed slots";

/// A check the driver found broken: which invariant, and a one-line explanation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{invariant} violated: {detail}")]
pub struct Violation {
    /// The invariant's name: [`STATE_MACHINE_SAFETY`], [`COMMITS_IN_SLOT_ORDER`], or one of the
    /// protocol's own ([`Replica::cluster_invariants`], [`Replica::step_invariants`]).
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

/// One line of a node's [`Status`], as the verbose trace and the script runner print it.
pub fn status_line(s: &Status) -> String {
    let snapshot = match s.snapshot {
        0 => String::new(),
        slot => format!(" snapshot={slot}"),
    };
    format!(
        "{:?} term={} leader={} commit={} last={}{snapshot}",
        s.role,
        s.term,
        s.leader.map_or("none".into(), |l| l.to_string()),
        s.commit,
        s.last
    )
}

/// The fields that differ between two statuses of one node, as `name old->new`, or `None`.
fn status_change(a: &Status, b: &Status) -> Option<String> {
    let hint = |l: Option<NodeId>| l.map_or("none".into(), |l| l.to_string());
    let mut parts = Vec::new();
    if a.role != b.role {
        parts.push(format!("role {:?}->{:?}", a.role, b.role));
    }
    if a.term != b.term {
        parts.push(format!("term {}->{}", a.term, b.term));
    }
    if a.leader != b.leader {
        parts.push(format!("leader {}->{}", hint(a.leader), hint(b.leader)));
    }
    if a.commit != b.commit {
        parts.push(format!("commit {}->{}", a.commit, b.commit));
    }
    if a.last != b.last {
        parts.push(format!("last {}->{}", a.last, b.last));
    }
    if a.snapshot != b.snapshot {
        parts.push(format!("snapshot {}->{}", a.snapshot, b.snapshot));
    }
    if a.config != b.config {
        parts.push(format!("config {}->{}", a.config, b.config));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The cut points of a step's effect list worth crashing at: every `keep` (the number of
/// effects carried out before the crash, as in [`Cluster::deliver_then_crash`]) that separates
/// two effects of different kinds, the kinds being what leaves the host (a send or a
/// redirect), what reaches its disk (a persist) and what reaches its state machine (a commit).
/// Timer effects are ignored, as they die with the crash anyway; each point is placed right
/// after the last effect of a run, so the timers that follow it are not carried out. Cutting
/// inside a run of one kind, or at `0` or at the end (a crash before or after the whole step),
/// shows nothing new, so those are not listed. The points are strictly increasing.
pub fn crash_points<'a, M: 'a, W: 'a, T: 'a, C: 'a>(
    effects: impl IntoIterator<Item = &'a Effect<M, W, T, C>>,
) -> Vec<usize> {
    #[derive(PartialEq)]
    enum Kind {
        Out,
        Persist,
        Commit,
    }
    let mut points = Vec::new();
    // The kind of the last non-timer effect so far, and the cut right after it.
    let mut prev: Option<(Kind, usize)> = None;
    for (k, effect) in effects.into_iter().enumerate() {
        let kind = match effect {
            Effect::Send { .. }
            | Effect::Redirect { .. }
            | Effect::Busy { .. }
            | Effect::ReadReady { .. }
            | Effect::ReadRedirect { .. }
            | Effect::ChangeDone { .. } => Kind::Out,
            Effect::Persist(_) => Kind::Persist,
            Effect::Commit { .. } | Effect::Restore(_) => Kind::Commit,
            Effect::SetTimer { .. } | Effect::CancelTimer(_) => continue,
        };
        if let Some((p, cut)) = prev.take() {
            if p != kind {
                points.push(cut);
            }
        }
        prev = Some((kind, k + 1));
    }
    points
}

/// A seeded generator for random walks over a [`Cluster`] (xorshift64*): deterministic, so a
/// walk that breaks an invariant replays from its seed. For tests only; not for anything that
/// needs good randomness.
#[derive(Clone, Debug)]
pub struct WalkRng(u64);

impl WalkRng {
    /// The generator of walk `seed` (every seed, 0 included, gives a usable state).
    pub fn new(seed: u64) -> Self {
        WalkRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (which must be above 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A message in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Envelope<M> {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// Payload.
    pub msg: M,
}

/// One hosted node: its replica while up, and what survives its crashes.
#[derive(Clone, Debug)]
pub struct Node<R: Replica<C>, C: Command> {
    /// The running replica, `None` while crashed.
    pub replica: Option<R>,
    /// The durable image built from the replica's writes.
    pub durable: R::Durable,
    /// Armed timers.
    pub timers: BTreeSet<R::Timer>,
    /// With time ([`ReadMode::Lease`]): when each armed timer is due, on this node's clock.
    pub deadlines: BTreeMap<R::Timer, Duration>,
    /// This node's clock (only moves with time, see the [module docs](self)).
    pub clock: Duration,
    /// How fast this node's clock runs.
    pub rate: ClockRate,
    /// What the host applied, by slot, across incarnations.
    pub applied: BTreeMap<Slot, C>,
    /// Commands handed back by redirects, with the leader hint.
    pub redirects: Vec<(C, Option<NodeId>)>,
    /// Commands handed back busy ([`Effect::Busy`]: the leader was at its cap).
    pub busy: Vec<C>,
    /// Reads asked of this node and not yet answered: read id, and the highest slot any
    /// node had committed when it was asked (the read must include it).
    pub pending_reads: BTreeMap<ReadId, Slot>,
    /// Reads served, in order: read id and read index.
    pub reads: Vec<(ReadId, Slot)>,
    /// Reads handed back, with the leader hint.
    pub read_redirects: Vec<(ReadId, Option<NodeId>)>,
    /// Change requests answered, in order ([`Replica::change`]).
    pub changes: Vec<(ChangeId, Result<Membership, ChangeError>)>,
    /// Highest slot reported in this incarnation (commits must exceed it).
    last_reported: Slot,
    /// The host's applied point, across incarnations: every slot up to it is in `applied`
    /// (or was a no-op).
    pub applied_to: Slot,
}

/// A deterministic cluster of replicas of type `R`.
#[derive(Clone, Debug)]
pub struct Cluster<R: Replica<C>, C: Command> {
    cfg: Config,
    members: Vec<NodeId>,
    /// The configuration every node boots with (the first nodes; the rest are spares that a
    /// membership change may add).
    voters: Vec<NodeId>,
    nodes: Vec<Node<R, C>>,
    /// Messages in flight, oldest first.
    pub net: Vec<Envelope<R::Msg>>,
    /// Directed links that drop everything sent over them.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// One line per step, for failure messages (and, with [`Cluster::verbose`], the effects).
    pub trace: Vec<String>,
    /// Check invariants after every step (panicking on violation).
    pub checking: bool,
    /// Record the first violation instead of panicking (see [`Cluster::violation`]); the
    /// checks stop once one is recorded.
    pub record_violations: bool,
    /// Record in the trace, under each step, its effects and the node's status changes.
    pub verbose: bool,
    violation: Option<Violation>,
    out: Out<R, C>,
    /// Real time since the cluster booted (only moves with time).
    now: Duration,
    /// What every snapshot any host took holds (see the [module docs](self)), by number.
    snapshots: Vec<BTreeMap<Slot, C>>,
    /// A compaction step is running: the policy is not consulted after it (a replica that
    /// ignores the compaction would be asked again, for ever).
    compacting: bool,
}

/// Bound on [`Cluster::deliver_all`]: a scenario that needs more steps has a livelock.
pub const MAX_QUIESCE_STEPS: usize = 100_000;

impl<R: Replica<C>, C: Command> Cluster<R, C> {
    /// Boot `n` fresh replicas `n0..n{n-1}` with `cfg`.
    pub fn new(n: usize, cfg: Config) -> Self {
        Self::with_voters(n, n, cfg)
    }

    /// Boot `n` fresh replicas whose configuration is the first `voters` of them: the others
    /// are spares, outside the configuration until a change adds them.
    pub fn with_voters(n: usize, voters: usize, cfg: Config) -> Self {
        cfg.validate(n)
            .unwrap_or_else(|e| panic!("bad test cluster: {e}"));
        assert!(
            (1..=n).contains(&voters),
            "bad test cluster: {voters} voters of {n} nodes"
        );
        let members: Vec<NodeId> = (0..n as u8).map(NodeId).collect();
        let mut c = Cluster {
            cfg,
            voters: members[..voters].to_vec(),
            members: members.clone(),
            nodes: Vec::with_capacity(n),
            net: Vec::new(),
            cut: BTreeSet::new(),
            trace: Vec::new(),
            checking: true,
            record_violations: false,
            verbose: false,
            violation: None,
            out: Out::<R, C>::new(),
            now: Duration::ZERO,
            snapshots: Vec::new(),
            compacting: false,
        };
        for id in members {
            c.nodes.push(Node {
                replica: None,
                durable: R::Durable::default(),
                timers: BTreeSet::new(),
                deadlines: BTreeMap::new(),
                clock: Duration::ZERO,
                rate: ClockRate::Exact,
                applied: BTreeMap::new(),
                redirects: Vec::new(),
                busy: Vec::new(),
                pending_reads: BTreeMap::new(),
                reads: Vec::new(),
                read_redirects: Vec::new(),
                changes: Vec::new(),
                last_reported: 0,
                applied_to: 0,
            });
            c.boot(id, false);
        }
        c
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never: clusters have at least one).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The configuration the replicas were booted with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node<R, C> {
        &self.nodes[i]
    }

    /// The replica of node `i`; panics if it is crashed.
    pub fn replica(&self, i: usize) -> &R {
        self.nodes[i]
            .replica
            .as_ref()
            .unwrap_or_else(|| panic!("n{i} is crashed"))
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].replica.is_some()
    }

    /// The running nodes that currently consider themselves leader.
    pub fn leaders(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| {
                self.nodes[i]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.status().role == crate::Role::Leader)
            })
            .collect()
    }

    /// What node `i` applied, in slot order.
    pub fn applied(&self, i: usize) -> Vec<C> {
        self.nodes[i].applied.values().cloned().collect()
    }

    /// The first violation recorded with [`Cluster::record_violations`] on.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Whether checks are still to run after a step: on, and nothing recorded yet.
    fn checks_due(&self) -> bool {
        self.checking && self.violation.is_none()
    }

    /// Report `v`: record it when recording (the first one only), else panic with the trace.
    fn violated(&mut self, v: Violation) {
        if !self.record_violations {
            panic!("{v}\ntrace:\n{}", self.trace.join("\n"));
        }
        if self.verbose {
            self.trace.push(format!("  VIOLATION: {v}"));
        }
        self.violation.get_or_insert(v);
    }

    /// Push an indented line under the current step, when verbose.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.verbose {
            self.trace.push(format!("  {}", line()));
        }
    }

    fn boot(&mut self, id: NodeId, recover: bool) {
        let i = id.index();
        let durable = recover.then(|| self.nodes[i].durable.clone());
        let mut out = std::mem::take(&mut self.out);
        let r = R::boot(id, &self.voters, durable.as_ref(), &self.cfg, &mut out);
        let status = r.status();
        self.nodes[i].replica = Some(r);
        self.nodes[i].last_reported = 0;
        if recover {
            self.note(|| format!("{id}: {}", status_line(&status)));
        }
        self.apply_effects(i, &mut out, usize::MAX);
        self.out = out;
    }

    /// Carry out the first `keep` effects of `out` in order and forget the rest.
    fn apply_effects(&mut self, i: usize, out: &mut Out<R, C>, keep: usize) {
        let from = self.members[i];
        for effect in out.drain().take(keep) {
            match effect {
                Effect::Send { to, msg } => {
                    let cut = self.cut.contains(&(from, to));
                    self.note(|| {
                        let lost = if cut { " (cut)" } else { "" };
                        format!("send {from} -> {to}: {msg:?}{lost}")
                    });
                    if !cut {
                        self.net.push(Envelope { from, to, msg });
                    }
                }
                Effect::SetTimer { timer, after } => {
                    let node = &mut self.nodes[i];
                    node.timers.insert(timer);
                    node.deadlines.insert(timer, node.clock + after.start);
                }
                Effect::CancelTimer(timer) => {
                    self.nodes[i].timers.remove(&timer);
                    self.nodes[i].deadlines.remove(&timer);
                }
                Effect::Persist(w) => {
                    self.note(|| format!("persist {w:?}"));
                    R::apply_write_owned(&mut self.nodes[i].durable, w);
                }
                Effect::Commit { slot, cmd } => {
                    self.note(|| format!("commit {slot} {cmd:?}"));
                    self.commit(i, slot, cmd);
                }
                Effect::Redirect { cmd, leader } => {
                    self.note(|| {
                        let hint = leader.map_or("none".into(), |l| l.to_string());
                        format!("redirect {cmd:?} to {hint}")
                    });
                    self.nodes[i].redirects.push((cmd, leader));
                }
                Effect::Busy { cmd } => {
                    self.note(|| format!("busy {cmd:?}"));
                    self.nodes[i].busy.push(cmd);
                }
                Effect::ReadReady { id, slot } => {
                    self.note(|| format!("read {id} ready at {slot}"));
                    self.read_ready(i, id, slot);
                }
                Effect::ReadRedirect { id, leader } => {
                    self.note(|| {
                        let hint = leader.map_or("none".into(), |l| l.to_string());
                        format!("read {id} redirected to {hint}")
                    });
                    self.nodes[i].pending_reads.remove(&id);
                    self.nodes[i].read_redirects.push((id, leader));
                }
                Effect::ChangeDone { id, result } => {
                    self.note(|| match &result {
                        Ok(config) => format!("change {id} done: {config}"),
                        Err(e) => format!("change {id} refused: {e}"),
                    });
                    self.nodes[i].changes.push((id, result));
                }
                Effect::Restore(snapshot) => {
                    self.note(|| {
                        let name = String::from_utf8_lossy(&snapshot.data).into_owned();
                        format!("restore {name}")
                    });
                    self.restore(i, &snapshot);
                }
            }
        }
    }

    /// Node `i`'s host restores `snapshot`: check it (see the [module docs](self)), and take
    /// its state unless the host applied at least as far.
    fn restore(&mut self, i: usize, snapshot: &Snapshot) {
        let from = self.members[i];
        let commit = self.nodes[i]
            .replica
            .as_ref()
            .map_or(0, |r| r.status().commit);
        let node = &mut self.nodes[i];
        node.last_reported = node.last_reported.max(snapshot.slot);
        let Some(held) = Self::snapshot_number(&snapshot.data).and_then(|k| self.snapshots.get(k))
        else {
            let data = String::from_utf8_lossy(&snapshot.data).into_owned();
            return self.violated(Violation {
                invariant: STATE_MACHINE_SAFETY,
                detail: format!("{from} restored a snapshot no host took: {data:?}"),
            });
        };
        let mut broken = None;
        for (slot, cmd) in held {
            match node.applied.get(slot) {
                Some(prev) if prev != cmd => {
                    broken.get_or_insert(format!(
                        "{from} restored a snapshot with {cmd:?} in slot {slot}, having applied {prev:?}"
                    ));
                }
                Some(_) => {}
                None if node.applied_to < snapshot.slot => {
                    node.applied.insert(*slot, cmd.clone());
                }
                None => {}
            }
        }
        node.applied_to = node.applied_to.max(snapshot.slot);
        if !self.checks_due() {
            return;
        }
        if let Some(detail) = broken {
            return self.violated(Violation {
                invariant: STATE_MACHINE_SAFETY,
                detail,
            });
        }
        if commit < snapshot.slot {
            let slot = snapshot.slot;
            self.violated(Violation {
                invariant: SNAPSHOTS_HOLD_COMMITTED,
                detail: format!(
                    "{from} restored a snapshot at slot {slot} with only {commit} committed"
                ),
            });
        }
    }

    /// The number a snapshot's bytes name (see [`Cluster::snapshot`]).
    fn snapshot_number(data: &[u8]) -> Option<usize> {
        let text = std::str::from_utf8(data).ok()?;
        text.strip_prefix("snapshot ")?
            .split(' ')
            .next()?
            .parse()
            .ok()
    }

    /// Node `i`'s host snapshots what it applied, up to its replica's commit point, and hands
    /// the snapshot to the replica ([`Replica::compact`]). Does nothing if `i` is down, the
    /// protocol does not snapshot, or nothing was committed since its last snapshot.
    pub fn snapshot(&mut self, i: usize) {
        let Some(status) = self.nodes[i].replica.as_ref().map(|r| r.status()) else {
            return;
        };
        if !R::SNAPSHOTS || status.commit <= status.snapshot {
            return;
        }
        let slot = SnapshotPolicy::slot(&status, &self.cfg);
        let node = &self.nodes[i];
        debug_assert!(
            node.applied_to >= slot || self.cfg.any_bug(),
            "applied what committed"
        );
        let held: BTreeMap<Slot, C> = node
            .applied
            .range(..=slot)
            .map(|(s, c)| (*s, c.clone()))
            .collect();
        let k = self.snapshots.len();
        self.snapshots.push(held);
        let name = format!("snapshot {k} of n{i} at slot {slot}");
        let snapshot = Snapshot {
            slot,
            data: name.as_bytes().into(),
        };
        self.compacting = true;
        self.step(i, format!("n{i}: {name}"), |r, out| {
            r.compact(snapshot, out)
        });
        self.compacting = false;
    }

    /// After a step at node `i`: snapshot if the policy says one is due.
    fn snapshot_if_due(&mut self, i: usize) {
        let Some(policy) = self.cfg.snapshots.filter(|_| !self.compacting) else {
            return;
        };
        let due = |p: &SnapshotPolicy, r: &R| p.due(&r.status());
        if R::SNAPSHOTS
            && self.nodes[i]
                .replica
                .as_ref()
                .is_some_and(|r| due(&policy, r))
        {
            self.snapshot(i);
        }
    }

    /// Node `i`'s host serves read `id` at `slot`: check it was asked, that `slot` covers every
    /// commit the cluster had made when it was asked, and that the node has reported `slot`.
    fn read_ready(&mut self, i: usize, id: ReadId, slot: Slot) {
        let from = self.members[i];
        let asked = self.nodes[i].pending_reads.remove(&id);
        self.nodes[i].reads.push((id, slot));
        if !self.checks_due() {
            return;
        }
        let Some(floor) = asked else {
            return self.violated(Violation {
                invariant: READS_SERVED_FROM_APPLIED,
                detail: format!(
                    "{from} made read {id} ready, which it was not asked or had answered"
                ),
            });
        };
        if slot < floor {
            return self.violated(Violation {
                invariant: READS_SEE_EARLIER_COMMITS,
                detail: format!(
                    "{from} served read {id} at slot {slot}, but slot {floor} was committed before it was asked"
                ),
            });
        }
        let commit = self.nodes[i]
            .replica
            .as_ref()
            .map_or(0, |r| r.status().commit);
        if slot > commit {
            self.violated(Violation {
                invariant: READS_SERVED_FROM_APPLIED,
                detail: format!(
                    "{from} served read {id} at slot {slot} with only {commit} committed"
                ),
            });
        }
    }

    /// The highest commit point of any node up now (what a read asked now must include).
    fn commit_floor(&self) -> Slot {
        self.nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| r.status().commit)
            .chain(
                self.nodes
                    .iter()
                    .filter_map(|n| n.applied.keys().next_back().copied()),
            )
            .max()
            .unwrap_or(0)
    }

    /// Node `i`'s host applies `cmd` in `slot`, checking the effect contract's slot order and,
    /// for a slot it applied before, that the command is the same.
    fn commit(&mut self, i: usize, slot: Slot, cmd: C) {
        let from = self.members[i];
        let node = &mut self.nodes[i];
        if slot <= node.last_reported {
            let last = node.last_reported;
            self.violated(Violation {
                invariant: COMMITS_IN_SLOT_ORDER,
                detail: format!("{from} reported slot {slot} after slot {last}"),
            });
            return;
        }
        node.last_reported = slot;
        node.applied_to = node.applied_to.max(slot);
        match node.applied.get(&slot) {
            Some(prev) if *prev != cmd => {
                let detail =
                    format!("{from} re-committed slot {slot} as {cmd:?}, having applied {prev:?}");
                if self.checks_due() {
                    self.violated(Violation {
                        invariant: STATE_MACHINE_SAFETY,
                        detail,
                    });
                }
            }
            Some(_) => {}
            None => {
                node.applied.insert(slot, cmd);
            }
        }
    }

    fn step(&mut self, i: usize, what: String, f: impl FnOnce(&mut R, &mut Out<R, C>)) {
        self.run_step(i, what, None, f);
    }

    /// Run one step at node `i`: all of its effects, or with `crash_after == Some(keep)` only
    /// the first `keep` of them before crashing the node. Returns the step's whole effect list
    /// when it crashes (an empty one if the node was down), else nothing (the default path
    /// clones nothing).
    fn run_step(
        &mut self,
        i: usize,
        what: String,
        crash_after: Option<usize>,
        f: impl FnOnce(&mut R, &mut Out<R, C>),
    ) -> Out<R, C> {
        self.trace.push(what);
        let mut out = std::mem::take(&mut self.out);
        let checks_due = self.checks_due();
        let (timed, clock) = (self.timed(), self.nodes[i].clock);
        let Some(r) = self.nodes[i].replica.as_mut() else {
            self.out = out;
            return Out::<R, C>::new(); // a crashed node does nothing
        };
        if timed {
            r.set_now(clock);
        }
        let before = checks_due.then(|| r.clone());
        let status_before = r.status();
        f(r, &mut out);
        let after = self.nodes[i].replica.as_ref().expect("still up");
        let status_after = after.status();
        let broken = before.and_then(|before| {
            R::step_invariants().into_iter().find_map(|inv| {
                (inv.check)(&before, after).err().map(|detail| Violation {
                    invariant: inv.name,
                    detail,
                })
            })
        });
        if let Some(change) = status_change(&status_before, &status_after) {
            let id = self.members[i];
            self.note(|| format!("{id}: {change}"));
        }
        if let Some(v) = broken {
            self.violated(v);
        }
        let all = match crash_after {
            None => {
                self.apply_effects(i, &mut out, usize::MAX);
                // The host applied every commit reported, and the no-ops between them change
                // nothing: its state is the state at the replica's commit point.
                if let Some(commit) = self.nodes[i].replica.as_ref().map(|r| r.status().commit) {
                    let node = &mut self.nodes[i];
                    node.applied_to = node.applied_to.max(commit);
                }
                self.out = out;
                self.snapshot_if_due(i);
                out = std::mem::take(&mut self.out);
                Out::<R, C>::new()
            }
            Some(keep) => {
                let total = out.len();
                assert!(
                    keep <= total,
                    "n{i}: cannot crash after {keep} effects, the step has {total}\n{}",
                    self.trace.join("\n")
                );
                let all = out.clone();
                self.apply_effects(i, &mut out, keep);
                self.lose(i, format!("n{i}: crash after {keep} of {total} effects"));
                all
            }
        };
        self.out = out;
        if self.checks_due() {
            if let Err(v) = self.check() {
                self.violated(v);
            }
        }
        all
    }

    /// The effects node `i` emits for `f`, run on a copy of its replica (empty if it is down).
    fn peek(&self, i: usize, f: impl FnOnce(&mut R, &mut Out<R, C>)) -> Out<R, C> {
        let mut out = Out::<R, C>::new();
        if let Some(r) = &self.nodes[i].replica {
            f(&mut r.clone(), &mut out);
        }
        out
    }

    /// Check state machine safety and the protocol's cluster invariants now.
    pub fn check(&self) -> Result<(), Violation> {
        let mut chosen: BTreeMap<Slot, (usize, &C)> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for (slot, cmd) in &n.applied {
                match chosen.get(slot) {
                    Some((j, other)) if *other != cmd => {
                        return Err(Violation {
                            invariant: STATE_MACHINE_SAFETY,
                            detail: format!("slot {slot} is {other:?} on n{j} but {cmd:?} on n{i}"),
                        });
                    }
                    Some(_) => {}
                    None => {
                        chosen.insert(*slot, (i, cmd));
                    }
                }
            }
        }
        let live: Vec<&R> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .collect();
        for r in &live {
            let st = r.status();
            if st.snapshot > st.commit {
                return Err(Violation {
                    invariant: SNAPSHOTS_HOLD_COMMITTED,
                    detail: format!(
                        "{} keeps a snapshot at slot {} with only {} committed",
                        r.id(),
                        st.snapshot,
                        st.commit
                    ),
                });
            }
        }
        // A crashed node's durable log and vote still constrain the cluster: the protocol's
        // invariants see the replica it would boot as (as the model checker's do).
        let rebooted: Vec<R> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.replica.is_none())
            .map(|(i, n)| {
                let mut scratch = Out::<R, C>::new();
                R::boot(
                    self.members[i],
                    &self.voters,
                    Some(&n.durable),
                    &self.cfg,
                    &mut scratch,
                )
            })
            .collect();
        let view: Vec<&R> = live.iter().copied().chain(&rebooted).collect();
        for inv in R::cluster_invariants() {
            (inv.check)(&view).map_err(|detail| Violation {
                invariant: inv.name,
                detail,
            })?;
        }
        Ok(())
    }

    /// Fire armed timer `timer` at node `i`. Panics if it is not armed.
    pub fn fire(&mut self, i: usize, timer: R::Timer) {
        let what = self.disarm(i, timer);
        self.step(i, what, |r, out| r.on_timer(timer, out));
    }

    /// Disarm `timer` at node `i` for it to fire, and name the firing for the trace. Panics if
    /// it is not armed.
    fn disarm(&mut self, i: usize, timer: R::Timer) -> String {
        assert!(
            self.due(i, timer),
            "n{i}'s {timer:?} timer is not due: its clock reads {:?}, the timer is due at {:?}",
            self.nodes[i].clock,
            self.nodes[i].deadlines.get(&timer)
        );
        assert!(
            self.nodes[i].timers.remove(&timer),
            "n{i} has no {timer:?} timer armed (armed: {:?})",
            self.nodes[i].timers
        );
        self.nodes[i].deadlines.remove(&timer);
        format!("n{i}: {timer:?} fires")
    }

    /// Whether the cluster keeps time (with [`ReadMode::Lease`]; see the [module docs](self)).
    pub fn timed(&self) -> bool {
        self.cfg.reads == ReadMode::Lease
    }

    /// Whether `timer` may fire at node `i` now: it is armed and, with time, due on `i`'s
    /// clock.
    pub fn due(&self, i: usize, timer: R::Timer) -> bool {
        let node = &self.nodes[i];
        node.timers.contains(&timer)
            && (!self.timed() || node.deadlines.get(&timer).is_some_and(|&d| d <= node.clock))
    }

    /// Real time since the cluster booted.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Let `real` time pass: every node's clock, crashed or not, advances at its rate.
    pub fn advance(&mut self, real: Duration) {
        self.now += real;
        for node in &mut self.nodes {
            node.clock += node.rate.advance(real, &self.cfg);
        }
        let clocks: Vec<String> = (0..self.len())
            .map(|i| format!("n{i} {:?}", self.nodes[i].clock))
            .collect();
        let line = format!("time {:?}: {}", self.now, clocks.join(", "));
        self.trace.push(line);
    }

    /// From now on node `i`'s clock runs at `rate`.
    pub fn set_rate(&mut self, i: usize, rate: ClockRate) {
        self.nodes[i].rate = rate;
        self.trace.push(format!("n{i}: clock runs {rate}"));
    }

    /// With time: let real time pass, in steps of a heartbeat interval, until `timer` is due
    /// at every node of `nodes` that has it armed (a bounded wait: at most two election
    /// timeouts' worth of steps at the slowest allowed rate).
    fn wait_until_due(&mut self, nodes: &[usize], timer: R::Timer) {
        if !self.timed() {
            return;
        }
        let step = self.cfg.heartbeat_interval;
        let bound = 4 * self.cfg.election_timeout.end.as_nanos() / step.as_nanos().max(1) + 1;
        for _ in 0..bound {
            let pending = nodes.iter().any(|&j| {
                self.is_up(j) && self.nodes[j].timers.contains(&timer) && !self.due(j, timer)
            });
            if !pending {
                return;
            }
            self.advance(step);
        }
    }

    /// Fire armed timer `timer` at node `i`, carry out the first `keep` effects of that step
    /// and crash `i` (see the [module docs](self)). Returns every effect of the step, the
    /// ones not carried out included. Panics if the timer is not armed or the step has fewer
    /// than `keep` effects.
    pub fn fire_then_crash(&mut self, i: usize, timer: R::Timer, keep: usize) -> Out<R, C> {
        let what = self.disarm(i, timer);
        self.run_step(i, what, Some(keep), |r, out| r.on_timer(timer, out))
    }

    /// The effects firing `timer` at node `i` would have, without firing it (nothing
    /// changes; empty if `i` is down). Feed them to [`crash_points`].
    pub fn peek_fire(&self, i: usize, timer: R::Timer) -> Out<R, C> {
        self.peek(i, |r, out| r.on_timer(timer, out))
    }

    /// Propose `cmds` at node `i`.
    pub fn propose(&mut self, i: usize, cmds: Vec<C>) {
        self.step(i, format!("n{i}: propose {cmds:?}"), |r, out| {
            r.propose(cmds, out)
        });
    }

    /// Ask node `i` for membership change `change`, as request `id` ([`Replica::change`]).
    pub fn change(&mut self, i: usize, id: ChangeId, change: Change) {
        self.step(i, format!("n{i}: change {id} {change}"), |r, out| {
            r.change(id, change, out)
        });
    }

    /// Ask node `i` for linearizable read `id`: answered at once if the replica's
    /// [`Replica::local_reads`] allows it (with leases), else through [`Replica::read`]
    /// ([`crate::read_or_local`]). The host remembers what the cluster had committed at this
    /// moment: the read must include it.
    pub fn read(&mut self, i: usize, id: ReadId) {
        let floor = self.commit_floor();
        self.nodes[i].pending_reads.insert(id, floor);
        let now = self.timed().then_some(self.nodes[i].clock);
        self.step(i, format!("n{i}: read {id}"), |r, out| {
            crate::read_or_local(r, now, vec![id], out)
        });
    }

    /// Deliver the in-flight message at position `k` of [`Cluster::net`].
    pub fn deliver(&mut self, k: usize) {
        if let Some((to, what, env)) = self.take(k) {
            self.step(to, what, |r, out| r.on_message(env.from, env.msg, out));
        }
    }

    /// Take the in-flight message at position `k` off the network: its recipient and the
    /// trace line of its delivery, or `None` (and a trace line) when the recipient is down.
    fn take(&mut self, k: usize) -> Option<(usize, String, Envelope<R::Msg>)> {
        let env = self.net.remove(k);
        let to = env.to.index();
        let what = format!("{} -> {}: {:?}", env.from, env.to, env.msg);
        if self.nodes[to].replica.is_none() {
            self.trace
                .push(format!("{what} (lost: {} is down)", env.to));
            return None;
        }
        Some((to, what, env))
    }

    /// Deliver the in-flight message at position `k`, carry out the first `keep` effects of
    /// that step and crash the recipient (see the [module docs](self)). Returns every effect
    /// of the step, the ones not carried out included. If the recipient is down the message
    /// is lost as with [`Cluster::deliver`] and nothing is returned. Panics if the step has
    /// fewer than `keep` effects.
    pub fn deliver_then_crash(&mut self, k: usize, keep: usize) -> Out<R, C> {
        let Some((to, what, env)) = self.take(k) else {
            return Out::<R, C>::new();
        };
        self.run_step(to, what, Some(keep), |r, out| {
            r.on_message(env.from, env.msg, out)
        })
    }

    /// The effects delivering the in-flight message at position `k` would have, without
    /// delivering it (nothing changes; empty if the recipient is down). Feed them to
    /// [`crash_points`].
    pub fn peek_deliver(&self, k: usize) -> Out<R, C> {
        let env = &self.net[k];
        let (from, msg) = (env.from, env.msg.clone());
        self.peek(env.to.index(), |r, out| r.on_message(from, msg, out))
    }

    /// Deliver a copy of the in-flight message at position `k`, leaving it in flight.
    pub fn duplicate(&mut self, k: usize) {
        let env = self.net[k].clone();
        self.net.push(env);
        self.deliver(self.net.len() - 1);
    }

    /// Positions in [`Cluster::net`] of messages matching `pred`.
    pub fn find(&self, mut pred: impl FnMut(&Envelope<R::Msg>) -> bool) -> Vec<usize> {
        (0..self.net.len())
            .filter(|&k| pred(&self.net[k]))
            .collect()
    }

    /// Deliver the oldest message matching `pred`; panics if none does.
    pub fn deliver_first(&mut self, pred: impl FnMut(&Envelope<R::Msg>) -> bool) {
        let k = *self
            .find(pred)
            .first()
            .unwrap_or_else(|| panic!("no such message in flight; in flight: {:#?}", self.net));
        self.deliver(k);
    }

    /// Drop every in-flight message matching `pred`; returns how many.
    pub fn drop_where(&mut self, mut pred: impl FnMut(&Envelope<R::Msg>) -> bool) -> usize {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|e| pred(e));
        self.net = kept;
        self.trace
            .push(format!("dropped {} message(s)", gone.len()));
        self.note_dropped(&gone);
        gone.len()
    }

    /// List dropped messages under the current step, when verbose.
    fn note_dropped(&mut self, gone: &[Envelope<R::Msg>]) {
        for e in gone {
            self.note(|| format!("{} -> {}: {:?}", e.from, e.to, e.msg));
        }
    }

    /// Deliver messages oldest first until none is in flight (including those the deliveries
    /// send). Panics after [`MAX_QUIESCE_STEPS`].
    pub fn deliver_all(&mut self) {
        for _ in 0..MAX_QUIESCE_STEPS {
            if self.net.is_empty() {
                return;
            }
            self.deliver(0);
        }
        panic!("the network did not quiesce within {MAX_QUIESCE_STEPS} deliveries");
    }

    /// Node `i` bids for leadership in the way a scenario wants it to win. With CheckQuorum a
    /// node that heard from a leader lately refuses votes, so every other live node's election
    /// timer fires first (their leases lapse, or, lapsed already, they bid) and their bids are
    /// dropped; then `i`'s election timer fires (panicking if it is not armed), a second time
    /// if the first only ended `i`'s own lease, and everything is delivered.
    pub fn elect(&mut self, i: usize) {
        let all: Vec<usize> = (0..self.len()).collect();
        self.wait_until_due(&all, R::election_timer());
        if self.cfg.check_quorum {
            for j in 0..self.len() {
                if j != i && self.is_up(j) && self.nodes[j].timers.contains(&R::election_timer()) {
                    self.fire(j, R::election_timer());
                }
            }
            let me = self.members[i];
            self.drop_where(|e| e.from != me);
        }
        self.time_out(i);
        self.deliver_all();
    }

    /// Fire node `i`'s election timer so that it bids (panicking if it is not armed): twice
    /// if the first firing only ended its lease. Under CheckQuorum a follower that heard from
    /// its leader waits the minimum election timeout (its lease), then the rest of its drawn
    /// timeout before it bids (diss. §4.2.3).
    pub fn time_out(&mut self, i: usize) {
        let timer = R::election_timer();
        let lapsed_only = self.peek_fire(i, timer).only_rearms(&timer);
        self.fire(i, timer);
        if lapsed_only {
            self.wait_until_due(&[i], R::election_timer());
            self.fire(i, R::election_timer());
        }
    }

    /// Crash node `i`: its volatile state, armed timers and the messages addressed to it are
    /// lost; its durable image survives.
    pub fn crash(&mut self, i: usize) {
        self.lose(i, format!("n{i}: crash"));
    }

    /// Crash node `i`, recording `what` in the trace.
    fn lose(&mut self, i: usize, what: String) {
        self.trace.push(what);
        self.nodes[i].replica = None;
        self.nodes[i].timers.clear();
        self.nodes[i].deadlines.clear();
        // Reads die with the host's memory: their clients time out.
        self.nodes[i].pending_reads.clear();
        let id = self.members[i];
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|e| e.to == id);
        self.net = kept;
        self.note_dropped(&gone);
    }

    /// Restart crashed node `i` from its durable image.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].replica.is_none(), "n{i} is not crashed");
        self.trace.push(format!("n{i}: restart"));
        self.boot(self.members[i], true);
    }

    /// Cut both directions of every link between `side` and the other nodes. Messages already
    /// in flight over those links are dropped too.
    pub fn partition(&mut self, side: &[usize]) {
        self.trace.push(format!("partition {side:?} from the rest"));
        for &a in side {
            for b in 0..self.len() {
                if !side.contains(&b) {
                    let (a, b) = (self.members[a], self.members[b]);
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
        }
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|e| self.cut.contains(&(e.from, e.to)));
        self.net = kept;
        self.note_dropped(&gone);
    }

    /// Restore every link.
    pub fn heal(&mut self) {
        self.trace.push("heal".into());
        self.cut.clear();
    }
}
