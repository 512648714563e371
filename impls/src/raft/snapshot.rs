//! Raft log compaction and InstallSnapshot (§7 "Log compaction" of the Raft paper, Figure 13).
//!
//! * **Compaction (§7).** The host snapshots its state machine up to a committed slot and
//!   hands the snapshot to the replica ([`Replica::compact`](crate::Replica::compact)). The
//!   replica keeps it as durable state with the *last included index* and *last included
//!   term* (the slot and the term of its entry), and drops the log up to that slot: the
//!   durable log holds only the entries after it ([`RaftDurable::snapshot`]). Every log
//!   lookup goes through that offset (`term_at`, `entry_at`); the term of the last included
//!   entry stands in for it in the consistency check of the next append and in the
//!   election's up-to-date comparison (§5.4.1).
//! * **InstallSnapshot (§7, Figure 13).** A leader that must send a follower an entry it no
//!   longer holds (the follower's `next` is at or below the leader's snapshot) sends the
//!   snapshot instead, in chunks of at most [`SnapshotPolicy::chunk`] bytes
//!   ([`RaftMsg::InstallSnapshot`]). One chunk is outstanding per follower, and the follower
//!   is sent no appends meanwhile (etcd-raft's `StateSnapshot`): each acknowledgement
//!   ([`RaftMsg::SnapshotReply`], "I hold the first `offset` bytes") brings the next chunk,
//!   and a lost chunk (or reply) is sent again on the next heartbeat, from the offset the
//!   follower last acknowledged.
//! * **The follower's side (Figure 13, receiver steps 2-8).** Chunks collect in a volatile
//!   buffer for one (leader term, slot); a restart loses it. A chunk at offset 0 starts over
//!   (step 2); a chunk at any other unexpected offset is answered with the offset the
//!   follower expects, and the leader resumes there. On the last chunk (`done`, step 5) the
//!   follower installs the snapshot: if its log holds an entry at the snapshot's slot with the
//!   snapshot's term it keeps the entries after it (step 6, "retain log entries following
//!   it"), else it discards the whole log (step 7); it persists that
//!   ([`RaftWrite::Snapshot`]), moves its commit point to the slot, hands the host the
//!   snapshot to restore ([`Effect::Restore`](crate::Effect::Restore), step 8) before any
//!   later commit, and answers `AppendReply Ok { matched: slot }` so that the leader resumes
//!   appends after it. A snapshot at or below the follower's commit point adds nothing and
//!   is ignored (answered as matched up to the commit point): installing it could only lose
//!   entries the follower holds and the leader may have counted.
//! * **Restart.** A durable image with a snapshot boots with the commit point at the
//!   snapshot's slot, and the first effect is the snapshot's restore (rule 7 of the effect
//!   contract).
//!
//! Bug zoo: S2 (`SnapshotTruncatesLog`) installs every complete snapshot over the whole log,
//! even one at or below the commit point; S3 (`SnapshotKeepsCommit`) installs without moving
//! the commit point.

use std::fmt;

use super::*;
use crate::replica::{Snapshot, SnapshotData, SnapshotPolicy};

/// The snapshot a Raft replica keeps (§7): the state machine up to `slot`, and the term of
/// the entry at `slot` (the "last included index" and "last included term").
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RaftSnapshot {
    /// The last slot the snapshot includes.
    pub slot: Slot,
    /// The term of the entry at `slot`.
    pub term: u64,
    /// The host's encoding of its state machine ([`Snapshot::data`]).
    pub data: SnapshotData,
    /// The configuration in force at `slot` (§7: "the latest configuration as of the last
    /// included index").
    pub config: Membership,
}

impl fmt::Debug for RaftSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftSnapshot")
            .field("slot", &self.slot)
            .field("term", &self.term)
            .field("data", &Chunk(self.data.clone()))
            .field("config", &self.config)
            .finish()
    }
}

impl RaftSnapshot {
    /// The snapshot as its host sees it.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            slot: self.slot,
            data: self.data.clone(),
        }
    }
}

/// Some bytes of a snapshot in an [`RaftMsg::InstallSnapshot`]. Printed as a byte string, so
/// that a trace shows what travels.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Chunk(pub SnapshotData);

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// A leader sending a follower its snapshot (etcd-raft's `StateSnapshot`): no appends go to
/// that follower until it has installed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Sending {
    /// The slot of the snapshot being sent (the leader's, when it was started).
    pub(super) slot: Slot,
    /// How many bytes the follower has acknowledged: the chunk outstanding starts there.
    pub(super) acked: u64,
}

/// A follower's partly received snapshot (volatile: a restart starts the transfer over).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Incoming {
    /// The term of the leader sending it: leaders of different terms may send different
    /// bytes for the same slot (each host encodes its own).
    term: u64,
    slot: Slot,
    data: Vec<u8>,
}

/// Fold a snapshot write into a durable image (Figure 13 steps 6-7): keep the log after
/// `snap.slot` if the image holds the snapshot's last entry with its term, else drop it all.
pub(super) fn apply_snapshot<C: Clone>(durable: &mut RaftDurable<C>, snap: &RaftSnapshot) {
    let base = durable.snapshot.as_ref().map_or(0, |s| s.slot);
    let held = snap
        .slot
        .checked_sub(base + 1)
        .and_then(|k| durable.log.get(k as usize))
        .is_some_and(|e| e.term == snap.term);
    if held {
        durable.log.drain(..(snap.slot - base) as usize);
    } else {
        durable.log.clear();
    }
    durable.snapshot = Some(snap.clone());
}

impl<C: Command> Raft<C> {
    /// The slot of the snapshot this replica keeps (0: none); the log starts after it.
    pub(super) fn snap_index(&self) -> Slot {
        self.snapshot.as_ref().map_or(0, |s| s.slot)
    }

    /// The term of the snapshot's last entry (0: none).
    pub(super) fn snap_term(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.term)
    }

    /// The log entry at `slot`, if the log (not the snapshot) holds it.
    pub(super) fn entry_at(&self, slot: Slot) -> Option<&Entry<C>> {
        let k = slot.checked_sub(self.snap_index() + 1)?;
        self.log.get(k as usize)
    }

    /// Replace the snapshot with `snap`, keeping the log after it if the log holds its last
    /// entry with its term (Figure 13 step 6), else dropping the whole log (step 7; always,
    /// with S2 at a follower), and persist that.
    fn take_snapshot(&mut self, snap: RaftSnapshot, keep_suffix: bool, out: &mut Out<Self, C>) {
        let base = self.snap_index();
        let held = self.term_at(snap.slot) == Some(snap.term) && snap.slot > base;
        if keep_suffix && held {
            self.log.drain(..(snap.slot - base) as usize);
        } else {
            self.log.clear();
        }
        out.persist(RaftWrite::Snapshot(snap.clone()));
        if held && !keep_suffix {
            // S2 drops a suffix the write alone would keep: drop it on disk too, so that a
            // restart does not bring it back.
            let at = snap.slot + 1;
            out.persist(RaftWrite::Append {
                at,
                entries: Entries::default(),
            });
        }
        self.snapshot = Some(snap);
        self.config_from_log();
    }

    /// The host snapshotted its state machine up to `snapshot.slot` (§7): keep it and drop the
    /// log it covers.
    pub(super) fn compact_log(&mut self, snapshot: Snapshot, out: &mut Out<Self, C>) {
        debug_assert!(
            snapshot.slot <= self.commit || self.cfg.any_bug(),
            "a snapshot of uncommitted slot {} (commit {})",
            snapshot.slot,
            self.commit
        );
        // S1's host labels the snapshot with the last slot, committed or not: keep what the
        // log holds of it, so that the driver sees a snapshot past the commit point.
        let slot = min(snapshot.slot, self.last_index());
        if slot <= self.snap_index() {
            // A host snapshot that crossed a newer InstallSnapshot: it adds nothing.
            return;
        }
        let term = self
            .term_at(slot)
            .expect("the log holds every slot above the snapshot");
        let snap = RaftSnapshot {
            slot,
            term,
            data: snapshot.data,
            config: self.config_at(slot).0,
        };
        self.take_snapshot(snap, true, out);
    }

    /// The most bytes one InstallSnapshot carries.
    fn chunk_size(&self) -> u64 {
        self.cfg
            .snapshots
            .map_or(SnapshotPolicy::DEFAULT_CHUNK, |p| p.chunk) as u64
    }

    /// Leader: follower `pos` needs entries at or below our snapshot (its `next` is at
    /// most the snapshot's slot): send the chunk it has not acknowledged yet. Only one chunk
    /// is outstanding: a new transfer sends the first, a heartbeat sends the outstanding one
    /// again (it or its answer may be lost), anything else waits for the answer.
    pub(super) fn send_snapshot(&mut self, pos: NodeId, heartbeat: bool, out: &mut Out<Self, C>) {
        let snap = self
            .snapshot
            .clone()
            .expect("next is at or below a snapshot");
        let pr = self.progress(pos);
        let acked = match pr.sending {
            Some(s) if s.slot == snap.slot => {
                if !heartbeat {
                    return;
                }
                s.acked
            }
            // A new transfer, or a newer snapshot than the one being sent: start over.
            _ => {
                pr.sending = Some(Sending {
                    slot: snap.slot,
                    acked: 0,
                });
                pr.replicating = false;
                pr.paused = true;
                0
            }
        };
        self.send_chunk(pos, &snap, acked, out);
    }

    fn send_chunk(&self, pos: NodeId, snap: &RaftSnapshot, offset: u64, out: &mut Out<Self, C>) {
        let len = snap.data.len() as u64;
        let offset = min(offset, len);
        let end = min(len, offset + self.chunk_size());
        let msg = RaftMsg::InstallSnapshot {
            term: self.term,
            slot: snap.slot,
            last_term: snap.term,
            offset,
            data: Chunk(snap.data[offset as usize..end as usize].into()),
            done: end == len,
            config: snap.config,
        };
        out.send(pos, msg);
    }

    /// Leader: follower `from` holds the first `offset` bytes of the snapshot at `slot`.
    pub(super) fn on_snapshot_reply(
        &mut self,
        from: NodeId,
        slot: Slot,
        offset: u64,
        out: &mut Out<Self, C>,
    ) {
        if !self.config.members().contains(from) {
            return;
        }
        match &mut self.state {
            RoleState::Leader { active, .. } => active.insert(from),
            _ => return,
        }
        let pos = from;
        let current = self.snap_index();
        let pr = self.progress(pos);
        let Some(s) = &mut pr.sending else { return };
        if s.slot != slot {
            return; // an answer about a transfer we gave up
        }
        if slot != current {
            // We compacted further meanwhile: send the newer snapshot from its start.
            return self.send_snapshot(pos, false, out);
        }
        if offset == s.acked {
            return; // a duplicate answer: the chunk at `offset` is already on its way
        }
        // Forward: the next chunk. Back: the follower lost its buffer (a restart), or this
        // answer is older than one we acted on; either way, resume where it says.
        s.acked = offset;
        let snap = self.snapshot.clone().expect("checked above");
        self.send_chunk(pos, &snap, offset, out);
    }

    /// Follower: a chunk of the leader's snapshot (Figure 13, receiver).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        term: u64,
        slot: Slot,
        last_term: u64,
        offset: u64,
        data: Chunk,
        done: bool,
        config: Membership,
        out: &mut Out<Self, C>,
    ) {
        // As an append, it comes from the leader of our term (§5.2).
        self.heard_from_leader(from, term, out);
        let truncates = self.cfg.bug(Bug::SnapshotTruncatesLog);
        if slot <= self.commit && !truncates {
            // We hold all of it, committed: nothing to install (S2 installs it anyway).
            self.incoming = None;
            return self.reply_ok(from, self.commit, out);
        }
        let expected = match &self.incoming {
            Some(b) if (b.term, b.slot) == (term, slot) => b.data.len() as u64,
            _ => 0,
        };
        if offset == 0 {
            // Step 2: the first chunk starts a new buffer.
            self.incoming = Some(Incoming {
                term,
                slot,
                data: Vec::new(),
            });
        } else if offset != expected {
            // Lost or reordered chunks: tell the leader where to resume.
            let term = self.term;
            let reply = RaftMsg::SnapshotReply {
                term,
                slot,
                offset: expected,
            };
            return out.send(from, reply);
        }
        let buf = self.incoming.as_mut().expect("set or matched above");
        buf.data.extend_from_slice(&data.0);
        if !done {
            let reply = RaftMsg::SnapshotReply {
                term: self.term,
                slot,
                offset: buf.data.len() as u64,
            };
            return out.send(from, reply);
        }
        let buf = self.incoming.take().expect("just filled");
        let snap = RaftSnapshot {
            slot,
            term: last_term,
            data: buf.data.into(),
            config,
        };
        let restore = snap.snapshot();
        // Steps 6-7 (S2: discard the log whatever it holds).
        self.take_snapshot(snap, !truncates, out);
        // The snapshot holds only committed state (its leader's host took it at or below its
        // commit point), so our commit point moves to it. S3 leaves it where it was.
        if !self.cfg.bug(Bug::SnapshotKeepsCommit) {
            self.commit = max(self.commit, slot);
        }
        // Step 8: the state machine becomes the snapshot, before any later commit.
        out.restore(restore);
        self.reads_on_commit(out);
        self.reply_ok(from, slot, out);
    }
}
