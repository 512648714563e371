//! Multi-Paxos snapshots: log compaction, catch-up from a snapshot in chunks, and phase 1
//! above a promiser's snapshot.
//!
//! *Paxos Made Live* (Chandra, Griesemer, Redstone, PODC 2007; "PML") §5.5: the application
//! takes a snapshot of its state machine, the Paxos framework then discards the log entries
//! the snapshot covers, and "a lagging replica ... asks for a snapshot" from a replica that
//! holds it when the log entries it needs are gone. PMMC (§4, "garbage collection") makes the
//! same point: slots are forgotten only once their decisions are applied in the state kept.
//! Lamport, *Paxos Made Simple* ("PMS") §3 gives the leader change this must survive.
//!
//! # What is kept
//!
//! A replica keeps the host's latest [`Snapshot`] as durable state
//! ([`PaxosDurable::snapshot`], written with [`PaxosWrite::Snapshot`]): every slot up to its
//! slot is chosen and applied in it, and the log holds only the slots after it (`log[0]` is
//! slot `snapshot + 1`; every slot access goes through `MultiPaxos::entry` and this base).
//! The host hands a snapshot over with [`Replica::compact`]: its slot is at most the commit
//! point (a snapshot holds only committed slots) and above the one kept (an older one is
//! ignored). Accepted values above the slot stay: they may belong to a value a quorum accepted,
//! and an acceptor must still report them in phase 1.
//!
//! A restarted replica boots with its commit point at the snapshot's slot and first hands the
//! snapshot to its host ([`Effect::Restore`](crate::Effect::Restore), rule 7 of the effect
//! contract); phase 1 then starts from there, never from slot 1.
//!
//! # Catch-up from a snapshot (PML §5.5)
//!
//! A replica that is behind says so on its `Accepted`, with its commit point. If the slots it
//! lacks are above the leader's snapshot the leader re-sends them as before; if some are
//! inside it (compacted away) the leader sends the snapshot instead, in chunks of at most
//! [`crate::SnapshotPolicy::chunk`] bytes (`Snapshot { slot, offset, total, data }`), one
//! chunk outstanding per replica. The receiver acknowledges how much it holds
//! (`SnapshotAck { offset }`) and the leader sends the next chunk from there. A chunk (or its
//! acknowledgement) lost on the way is sent again from the acknowledged offset once a whole
//! heartbeat interval passed without an acknowledgement. The receiver's partial buffer is
//! volatile: after a crash it asks again from offset 0. A snapshot the leader replaced by a
//! newer one mid-transfer starts over with the newer one.
//!
//! A complete snapshot is installed only if its slot is above the receiver's commit point (a
//! replica never goes back: it holds at least as much already otherwise): made durable,
//! accepted values above its slot kept, commit point = its slot, and `Restore` handed to the
//! host before any later commit. It is safe to learn from anybody at any ballot: a snapshot
//! holds only chosen slots (its taker's commit point covered it), and a chosen value is the
//! only one ever chosen. After the last acknowledgement the leader re-sends the slots above
//! the snapshot, and the usual behind/re-send path continues from there. No log batch goes
//! to a replica while a transfer to it is on its way: its commit point is inside the snapshot
//! (else the transfer ends), and the chunks are flow-controlled already; starting a transfer
//! forgets the catch-up batch on its way to that replica, if any (see the module docs of
//! [`super`], "Catch-up flow control").
//!
//! # Phase 1 above a snapshot (PMS §2.2, P2c; PMS §3)
//!
//! A candidate prepares from its commit point + 1 (which is at least its snapshot's slot +
//! 1). An acceptor whose snapshot reaches at or above the prepare's `from` no longer holds
//! what it accepted in those slots. Reporting them as empty would be a lie that P2c turns
//! into a disaster: the candidate would fill them with no-ops over values already chosen. So
//! its `Promise` starts at its snapshot's slot + 1, and the slots it skips are, by that, known
//! chosen. The candidate keeps the highest such slot (`reach`) and who holds it, and leads
//! only once its own commit point covers `reach`: if it does not yet, it asks that promiser
//! for its snapshot (`SnapshotAck { offset: 0 }` to it; the promiser answers with chunks
//! while it still promises that ballot) and installs it first. A lost chunk stalls the
//! candidacy until its election timer starts a new one.
//!
//! **Safety argument.** Take any slot `s` at or above where phase 1 started, with a quorum
//! `Q` of promises. (i) If some promiser's snapshot covers `s`, `s` is chosen and the new
//! leader's commit point covers it before it leads: it proposes nothing there, and what it
//! holds there came from a snapshot or from learning, both only chosen values. (ii) Otherwise
//! every promiser reported what it accepted at `s`. If a value `v` was chosen at `s` in a
//! lower ballot by a quorum `Q'`, some acceptor `a` in both accepted `v` before promising (it
//! can accept nothing lower after). Compaction forgets only chosen slots (a snapshot's slot is
//! at most its replica's commit point) and an acceptor that forgot `s` is in case (i); so `a`
//! still reports an acceptance at `s` in a ballot at least `v`'s, which by induction on
//! ballots (PMS §2.2) carries `v`, and the candidate re-proposes `v`. Slots below where phase
//! 1 started are chosen and held by the candidate already. Hence a leader never proposes in a
//! slot at or below any promiser's snapshot, and never proposes a second value anywhere.
//! Bug S5 ([`Bug::Phase1SkipsAccepted`]) breaks (ii): it prepares from its own last slot + 1,
//! so values a quorum accepted between its commit point and its last slot are never asked
//! for, and its own stale acceptances there go out at its new ballot instead.
//!
//! Promises are not chunked: a promise carries the slots an acceptor holds above both the
//! prepare's `from` and its snapshot, so with snapshots on its size is bounded by how far the
//! acceptor's log runs past its latest snapshot (the host compacts every
//! [`crate::SnapshotPolicy::every`] committed slots), not by the history.

use std::fmt;

use super::*;
use crate::replica::{SnapshotData, SnapshotPolicy};

/// Snapshot bytes in a message. Printed as (escaped) text: the driver's snapshots are text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bytes(pub SnapshotData);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// A leader's snapshot on its way to one member.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Transfer {
    /// The slot of the snapshot being sent.
    slot: Slot,
    /// The bytes the member acknowledged holding.
    acked: u64,
    /// No acknowledgement since the last heartbeat: the next one re-sends from `acked`.
    quiet: bool,
}

/// A snapshot arriving in chunks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Incoming {
    /// The sender.
    pub(super) from: NodeId,
    slot: Slot,
    total: u64,
    data: Vec<u8>,
    /// The configurations above `slot` its chunks carry (see [`reconfig`]).
    pub(super) configs: Configs,
}

/// Keep `snapshot` in place of the log up to its slot (and the entries above it), unless
/// `kept` is at least as recent; returns whether it is kept. Shared by the replica and its
/// durable image.
pub(super) fn keep<C>(
    kept: &mut Option<Snapshot>,
    log: &mut Vec<Option<Entry<C>>>,
    snapshot: &Snapshot,
) -> bool {
    let base = kept.as_ref().map_or(0, |s| s.slot);
    if snapshot.slot <= base {
        return false;
    }
    let covered = ((snapshot.slot - base) as usize).min(log.len());
    log.drain(..covered);
    *kept = Some(snapshot.clone());
    true
}

impl<C: Command> MultiPaxos<C> {
    /// The slot of the snapshot kept (0: none). The log starts after it.
    pub(super) fn base(&self) -> Slot {
        self.snapshot.as_ref().map_or(0, |s| s.slot)
    }

    /// What this acceptor accepted in `slot`, if it still holds the slot (above the snapshot)
    /// and accepted something there.
    pub(super) fn entry(&self, slot: Slot) -> Option<&Entry<C>> {
        let base = self.base();
        if slot <= base {
            return None;
        }
        self.log.get((slot - base - 1) as usize)?.as_ref()
    }

    /// The host snapshotted up to `snapshot.slot` ([`Replica::compact`]).
    pub(super) fn compact_to(&mut self, mut snapshot: Snapshot, out: &mut Out<Self, C>) {
        if snapshot.slot <= self.base() {
            return; // stale: we keep a snapshot at least as recent
        }
        debug_assert!(
            snapshot.slot <= self.commit || self.cfg.any_bug(),
            "a snapshot holds only committed slots ({} above commit point {})",
            snapshot.slot,
            self.commit
        );
        // S1 (the host's bug): a slot above the commit point. Compact no further than we
        // hold; the driver sees the snapshot above the commit point.
        snapshot.slot = snapshot.slot.min(self.last());
        if snapshot.slot <= self.base() {
            return;
        }
        // The configurations above it go with it: the slots that decide them are in it.
        let configs = self.configs.as_of(snapshot.slot, self.alpha());
        out.persist(PaxosWrite::Snapshot {
            snapshot: snapshot.clone(),
            configs,
        });
        keep(&mut self.snapshot, &mut self.log, &snapshot);
        self.configs.prune(snapshot.slot);
    }

    /// Bytes per chunk.
    fn chunk_size(&self) -> usize {
        self.cfg
            .snapshots
            .map_or(SnapshotPolicy::DEFAULT_CHUNK, |p| p.chunk)
    }

    /// The chunk of our snapshot from `offset` on, at `ballot` (none without a snapshot).
    fn chunk(&self, ballot: Ballot, offset: u64) -> Option<PaxosMsg<C>> {
        let snap = self.snapshot.as_ref()?;
        let total = snap.data.len();
        let start = (offset as usize).min(total);
        let end = start.saturating_add(self.chunk_size()).min(total);
        Some(PaxosMsg::Snapshot {
            ballot,
            slot: snap.slot,
            offset: start as u64,
            total: total as u64,
            data: Bytes(snap.data[start..end].into()),
            configs: self.configs.as_of(snap.slot, self.alpha()),
        })
    }

    /// Leader: send our snapshot to `to` from offset 0. Never called with a transfer to `to`
    /// on its way: [`MultiPaxos::catch_up`] sends nothing to a replica with one (its flow
    /// is the transfer's own), no catch-up batch is kept beside one, and the transfer's last
    /// acknowledgement ends it before it sends what lies above.
    pub(super) fn start_transfer(&mut self, to: NodeId, out: &mut Out<Self, C>) {
        let (pos, base, b) = (to.index(), self.base(), self.ballot);
        let RoleState::Leader {
            transfers,
            catch_up,
            ..
        } = &mut self.state
        else {
            return;
        };
        // The snapshot replaces any catch-up batch: no log batch goes while it is on its way.
        catch_up[pos] = None;
        debug_assert!(
            transfers[pos].is_none(),
            "a transfer to {to} is on its way: one chunk outstanding at a time"
        );
        transfers[pos] = Some(Transfer {
            slot: base,
            acked: 0,
            quiet: false,
        });
        if let Some(msg) = self.chunk(b, 0) {
            out.send(to, msg);
        }
    }

    /// Leader, at a heartbeat: re-send the chunk of every transfer not acknowledged for a
    /// whole heartbeat interval (from the acknowledged offset), and start over every transfer
    /// of a snapshot we replaced since.
    pub(super) fn resend_quiet_chunks(&mut self, out: &mut Out<Self, C>) {
        let (base, b) = (self.base(), self.ballot);
        let RoleState::Leader { transfers, .. } = &mut self.state else {
            return;
        };
        let mut resend = Vec::new();
        for (pos, t) in transfers.iter_mut().enumerate() {
            let Some(t) = t else { continue };
            if t.slot != base {
                *t = Transfer {
                    slot: base,
                    acked: 0,
                    quiet: false,
                };
                resend.push((pos, 0));
            } else if t.quiet {
                t.quiet = false;
                resend.push((pos, t.acked));
            } else {
                t.quiet = true;
            }
        }
        for (pos, offset) in resend {
            if let Some(msg) = self.chunk(b, offset) {
                out.send(NodeId(pos as u8), msg);
            }
        }
    }

    /// Leader: `node` reports its commit point `f_commit`: a transfer it no longer needs ends.
    pub(super) fn end_transfer_below(&mut self, node: NodeId, f_commit: Slot) {
        if let RoleState::Leader { transfers, .. } = &mut self.state {
            if let Some(t) = transfers.get_mut(node.index()) {
                if t.is_some_and(|t| t.slot <= f_commit) {
                    *t = None;
                }
            }
        }
    }

    pub(super) fn on_snapshot_ack(
        &mut self,
        from: NodeId,
        b: Ballot,
        slot: Slot,
        offset: u64,
        out: &mut Out<Self, C>,
    ) {
        let pos = from.index();
        if self.is_leader() {
            self.on_transfer_ack(from, pos, b, slot, offset, out);
        } else if b == self.promised && b != Ballot::ZERO {
            // The candidate we promised asks for our snapshot (or the next chunk of it).
            let same = self.base() == slot;
            let done = same && offset >= self.snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
            if !done {
                if let Some(msg) = self.chunk(b, if same { offset } else { 0 }) {
                    out.send(from, msg);
                }
            }
        }
    }

    /// Leader: `from` acknowledged `offset` bytes of the snapshot at `slot`.
    fn on_transfer_ack(
        &mut self,
        from: NodeId,
        pos: usize,
        b: Ballot,
        slot: Slot,
        offset: u64,
        out: &mut Out<Self, C>,
    ) {
        let base = self.base();
        let total = self.snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
        let RoleState::Leader { transfers, .. } = &mut self.state else {
            return;
        };
        let Some(Some(t)) = transfers.get_mut(pos) else {
            return;
        };
        if b != self.ballot || t.slot != slot {
            return; // an answer to another ballot, or to a snapshot we replaced
        }
        if slot != base {
            // We compacted further meanwhile: the heartbeat starts the newer one over.
            return;
        }
        if offset >= total {
            // It holds the snapshot (or more): send what lies above it.
            transfers[pos] = None;
            return self.resend_from(from, slot + 1, out);
        }
        t.acked = offset;
        t.quiet = false;
        if let Some(msg) = self.chunk(b, offset) {
            out.send(from, msg);
        }
    }

    /// Leader: `to` lacks the chosen slots from `lo` on: send one batch of them (the catch-up
    /// batch on its way to it: see [`MultiPaxos::catch_up`]), or our snapshot if we
    /// compacted some of them away.
    pub(super) fn resend_from(&mut self, to: NodeId, lo: Slot, out: &mut Out<Self, C>) {
        if lo <= self.base() {
            return self.start_transfer(to, out);
        }
        // Our proposals only: above them our log may still hold what our acceptor accepted
        // in older ballots (the backlog's slots, see [`reconfig`]), not ours to send.
        let proposed = self.proposed();
        if lo > proposed {
            return;
        }
        let hi = proposed.min(lo + self.cfg.max_batch as Slot - 1);
        // Cut by bytes before cloning anything: a batch of large values is cloned once.
        let base = self.base();
        let span = self
            .log
            .get((lo - base - 1) as usize..(hi - base) as usize)
            .unwrap_or(&[]);
        let n = self.cfg.batch_len(span, slot_bytes);
        let cmds = self.values(lo, lo + n.max(1) as Slot - 1);
        if cmds.is_empty() {
            return;
        }
        let last = lo + cmds.len() as Slot - 1;
        if let RoleState::Leader { catch_up, .. } = &mut self.state {
            catch_up[to.index()] = Some(CatchUp {
                last,
                need: lo,
                ticks: 0,
            });
        }
        out.send(
            to,
            PaxosMsg::Accept {
                ballot: self.ballot,
                first: lo,
                cmds: cmds.into(),
                commit: self.commit,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_snapshot_chunk(
        &mut self,
        from: NodeId,
        b: Ballot,
        slot: Slot,
        offset: u64,
        total: u64,
        data: Bytes,
        configs: Configs,
        out: &mut Out<Self, C>,
    ) {
        // Who may send us a snapshot: the promiser we asked, while we are the candidate that
        // asked; or the leader we follow.
        let pulling = b == self.ballot
            && matches!(self.state, RoleState::Candidate { reach: Some((_, holder)), .. } if holder == from);
        if !pulling {
            if b < self.promised {
                // As for an Accept: tells a deposed leader its ballot is over.
                out.send(
                    from,
                    PaxosMsg::Nack {
                        ballot: b,
                        promised: self.promised,
                    },
                );
                return;
            }
            if self.role() != Role::Follower {
                return; // its next Accept or heartbeat makes us follow it first
            }
            self.leader = Some(from);
            self.state = RoleState::Follower { leader_alive: true };
            self.arm_election_timer(out);
        }
        let ack = |offset: u64| PaxosMsg::SnapshotAck {
            ballot: b,
            slot,
            offset,
        };
        if slot <= self.commit {
            // We hold as much already: tell the sender we need no more of it.
            if self
                .incoming
                .as_ref()
                .is_some_and(|i| i.slot <= self.commit)
            {
                self.incoming = None;
            }
            out.send(from, ack(total));
            if pulling {
                self.try_lead_if_quorum(out);
            }
            return;
        }
        let fits = |i: &Incoming| {
            i.from == from && i.slot == slot && i.total == total && i.configs == configs
        };
        if offset == 0 && !self.incoming.as_ref().is_some_and(fits) {
            self.incoming = Some(Incoming {
                from,
                slot,
                total,
                data: Vec::new(),
                configs: configs.clone(),
            });
        }
        let Some(inc) = self.incoming.as_mut().filter(|i| fits(i)) else {
            // A chunk of a transfer we do not hold the start of (lost with a crash).
            out.send(from, ack(0));
            return;
        };
        if offset == inc.data.len() as u64 && inc.data.len() + data.0.len() <= total as usize {
            inc.data.extend_from_slice(&data.0);
        }
        // Otherwise a duplicate or an overtaken chunk: the acknowledgement says where we are.
        let held = inc.data.len() as u64;
        let complete = held == total;
        if complete {
            let data = std::mem::take(&mut inc.data);
            let configs = std::mem::take(&mut inc.configs);
            self.incoming = None;
            self.install(
                Snapshot {
                    slot,
                    data: data.into(),
                },
                configs,
                out,
            );
        }
        out.send(from, ack(held));
        if pulling && complete {
            self.try_lead_if_quorum(out);
        }
    }

    /// A candidate that waited for a promiser's snapshot may lead now.
    fn try_lead_if_quorum(&mut self, out: &mut Out<Self, C>) {
        // (With the configurations it brought: `try_lead` asks their voters if needed.)
        if matches!(self.state, RoleState::Candidate { .. }) {
            self.try_lead(out);
        }
    }

    /// Install a complete snapshot received from a peer, with the configurations above it,
    /// if it is above our commit point.
    fn install(&mut self, snapshot: Snapshot, configs: Configs, out: &mut Out<Self, C>) {
        if snapshot.slot <= self.commit {
            return; // stale: we never go back (and hold at least as much)
        }
        if !configs.well_formed(snapshot.slot, self.alpha()) {
            return; // malformed (no replica of ours sends it): ignored
        }
        // M8: the snapshot's configurations are dropped and ours kept, though they stop at our
        // commit point: a change chosen inside the snapshot is never learned.
        let configs = if self.cfg.bug(Bug::SnapshotWithoutConfigs) {
            self.configs.as_of(snapshot.slot, self.alpha())
        } else {
            configs
        };
        // Durable first: a crash after it boots from the snapshot (and restores it then).
        out.persist(PaxosWrite::Snapshot {
            snapshot: snapshot.clone(),
            configs: configs.clone(),
        });
        keep(&mut self.snapshot, &mut self.log, &snapshot);
        self.commit = snapshot.slot;
        // Every slot up to its slot is chosen and decided these configurations. Ours reach
        // further only if we learned a later change before a restart (all chosen: they agree).
        if configs.latest_from() >= self.configs.latest_from() {
            self.configs = configs;
        } else {
            self.configs.prune(snapshot.slot);
        }
        // Rule 7: the host becomes the snapshot before any later commit.
        out.restore(snapshot);
        // Follower reads waiting for this point may be served now.
        self.release_reads(out);
    }
}
