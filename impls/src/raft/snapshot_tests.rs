//! Raft log compaction and InstallSnapshot unit tests (§7 "Log compaction", Figure 13). Each
//! names the rule it checks; the golden scripts `testdata/raft_snapshot.txt` and
//! `testdata/bugs/raft_snapshot_s*.txt` show whole runs.

use super::tests::{entry, ids, one_append_after, recv, reject, sends};
use super::*;
use crate::driver::{Cluster, Violation, WalkRng};
use crate::replica::{Effect, Effects, SnapshotData, SnapshotPolicy};

type Cmd = u32;
type R = Raft<Cmd>;
type O = Out<R, Cmd>;

fn cfg(chunk: usize) -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        snapshots: Some(SnapshotPolicy { every: 1000, chunk }),
        ..Config::default()
    }
}

fn data(text: &str) -> SnapshotData {
    text.as_bytes().into()
}

fn image(term: u64, log: Vec<Entry<Cmd>>, snapshot: Option<RaftSnapshot>) -> RaftDurable<Cmd> {
    RaftDurable {
        term,
        voted_for: None,
        log,
        snapshot,
    }
}

fn boot(id: u8, d: &RaftDurable<Cmd>, c: &Config) -> (R, O) {
    let mut out = Effects::new();
    let r = R::boot(NodeId(id), &ids(3), Some(d), c, &mut out);
    (r, out)
}

fn ok(matched: Slot) -> RaftMsg<Cmd> {
    RaftMsg::AppendReply {
        term: 1,
        result: AppendResult::Ok { matched },
    }
}

fn chunk(slot: Slot, offset: u64, bytes: &str, done: bool) -> RaftMsg<Cmd> {
    RaftMsg::InstallSnapshot {
        term: 1,
        slot,
        last_term: 1,
        offset,
        data: Chunk(data(bytes)),
        done,
        config: Membership::voters(NodeSet::first(3)),
    }
}

fn snap_reply(slot: Slot, offset: u64) -> RaftMsg<Cmd> {
    RaftMsg::SnapshotReply {
        term: 1,
        slot,
        offset,
    }
}

/// Node 0 leads term 1 of 3 with `log` (slots 1..) and its no-op after it, follower 1 known
/// to match all of it (so all of it is committed) and follower 2 not heard from.
fn leader(log: Vec<Entry<Cmd>>, c: &Config) -> R {
    let (mut r, _) = boot(0, &image(0, log, None), c);
    win(&mut r);
    let last = r.last_index();
    recv(&mut r, 1, ok(last));
    assert_eq!(r.commit, last);
    r
}

/// Node 0 campaigns in the term after its own and wins it with node 1's vote.
fn win(r: &mut R) {
    let mut out = Effects::new();
    r.on_timer(RaftTimer::Election, &mut out);
    let term = r.term;
    recv(
        r,
        1,
        RaftMsg::Vote {
            term,
            granted: true,
            pre_vote: false,
        },
    );
    assert!(r.is_leader());
}

fn compact(r: &mut R, slot: Slot, bytes: &str) -> O {
    let mut out = Effects::new();
    r.compact(
        Snapshot {
            slot,
            data: data(bytes),
        },
        &mut out,
    );
    out
}

fn persists(out: &O) -> Vec<RaftWrite<Cmd>> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Persist(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn snap(slot: Slot, term: u64, bytes: &str) -> RaftSnapshot {
    RaftSnapshot {
        slot,
        term,
        data: data(bytes),
        config: Membership::voters(NodeSet::first(3)),
    }
}

/// §7: compaction replaces the log up to the snapshot's slot with the snapshot (its last
/// included index and term) and keeps the entries after it; the write says exactly that, and
/// folding it into the durable image gives the replica's state.
#[test]
fn s7_compaction_drops_the_prefix_and_keeps_the_suffix() {
    let log: Vec<_> = (1..=6).map(|c| entry(1, c)).collect();
    let mut r = leader(log, &cfg(8));
    let mut durable = r.durable();
    let out = compact(&mut r, 4, "four");
    assert_eq!(
        persists(&out),
        vec![RaftWrite::Snapshot(snap(4, 1, "four"))]
    );
    assert_eq!(r.log(), &[entry(1, 5), entry(1, 6), Entry::noop(1)][..]);
    assert_eq!(r.log_start(), 5);
    let st = r.status();
    assert_eq!((st.snapshot, st.commit, st.last), (4, 7, 7));
    assert_eq!(
        (r.term_at(4), r.term_at(3), r.entry_at(5)),
        (Some(1), None, Some(&entry(1, 5)))
    );
    // The image keeps its log after slot 4 too.
    for w in persists(&out) {
        R::apply_write(&mut durable, &w);
    }
    assert_eq!(durable, r.durable());
    // `committed` reports only what the log still holds.
    assert_eq!(
        r.committed().keys().copied().collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    // A stale snapshot (not above the current one) changes nothing.
    assert!(compact(&mut r, 3, "three").is_empty());
    assert_eq!(r.snap_index(), 4);
}

/// §7 and rule 7 of the effect contract: a replica restarted from a snapshot and the log
/// after it hands its host the snapshot first, before any other effect, with its commit point
/// at the snapshot's slot; the log after it is uncommitted until a leader says otherwise.
#[test]
fn s7_restart_from_snapshot_and_log_restores_first_with_commit_at_its_slot() {
    let d = image(2, vec![entry(1, 5), entry(2, 6)], Some(snap(4, 1, "four")));
    let (r, out) = boot(1, &d, &cfg(8));
    let first = out.iter().next().cloned();
    assert_eq!(
        first,
        Some(Effect::Restore(Snapshot {
            slot: 4,
            data: data("four")
        }))
    );
    let st = r.status();
    assert_eq!((st.commit, st.snapshot, st.last), (4, 4, 6));
    assert_eq!(
        (r.last_term(), r.term_at(4), r.term_at(6)),
        (2, Some(1), Some(2))
    );
    assert!(
        r.committed().is_empty(),
        "slots 5 and 6 are not known committed"
    );
    assert_eq!(r.durable(), d);
    // §5.4.1 with a snapshot: the up-to-date check uses the log's last entry.
    assert!(r.log_ok(2, 6) && !r.log_ok(1, 9));
}

/// §7: an append whose `prev_index` lies inside the follower's snapshot is checked from the
/// snapshot's slot on: the entries the snapshot covers are committed and skipped, the rest
/// appended at their absolute slots.
#[test]
fn s7_an_append_reaching_into_the_snapshot_appends_only_what_follows_it() {
    let d = image(1, vec![entry(1, 5)], Some(snap(4, 1, "four")));
    let (mut r, _) = boot(1, &d, &cfg(8));
    let entries: Vec<_> = (3..=6).map(|c| entry(1, c)).collect();
    let out = recv(
        &mut r,
        0,
        RaftMsg::Append {
            term: 1,
            prev_index: 2,
            prev_term: 1,
            entries: entries.into(),
            commit: 6,
        },
    );
    assert_eq!(r.log(), &[entry(1, 5), entry(1, 6)][..]);
    assert_eq!(
        persists(&out),
        vec![RaftWrite::Append {
            at: 6,
            entries: vec![entry(1, 6)].into()
        }]
    );
    assert_eq!(sends(&out), vec![(0, ok(6))]);
    assert_eq!(r.commit, 6);
    // One that lies wholly inside is answered as matched up to the snapshot.
    let out = recv(
        &mut r,
        0,
        RaftMsg::Append {
            term: 1,
            prev_index: 1,
            prev_term: 1,
            entries: vec![entry(1, 2)].into(),
            commit: 6,
        },
    );
    assert_eq!(sends(&out), vec![(0, ok(4))]);
    assert!(persists(&out).is_empty());
}

/// Figure 13: a leader whose follower needs a slot inside its snapshot sends the snapshot in
/// chunks of at most `chunk` bytes, one outstanding; the next goes out on each
/// acknowledgement, none on a duplicate one, and no append meanwhile.
#[test]
fn fig13_the_leader_sends_one_chunk_at_a_time() {
    let log: Vec<_> = (1..=6).map(|c| entry(1, c)).collect();
    let mut r = leader(log, &cfg(4));
    compact(&mut r, 6, "0123456789");
    // Follower 2 lost everything: its rejection sends the leader back to slot 1.
    let out = recv(
        &mut r,
        2,
        RaftMsg::AppendReply {
            term: 1,
            result: AppendResult::Rejected {
                prev_index: 6,
                conflict_term: None,
                conflict_index: 1,
            },
        },
    );
    assert_eq!(sends(&out), vec![(2, chunk(6, 0, "0123", false))]);
    // New entries go to follower 1 only.
    let mut out = Effects::new();
    r.propose(vec![9], &mut out);
    assert_eq!(sends(&out).iter().map(|s| s.0).collect::<Vec<_>>(), vec![1]);
    let out = recv(&mut r, 2, snap_reply(6, 4));
    assert_eq!(sends(&out), vec![(2, chunk(6, 4, "4567", false))]);
    assert!(
        sends(&recv(&mut r, 2, snap_reply(6, 4))).is_empty(),
        "a duplicate answer"
    );
    let out = recv(&mut r, 2, snap_reply(6, 8));
    assert_eq!(sends(&out), vec![(2, chunk(6, 8, "89", true))]);
    // Installed: appends resume after the snapshot's slot.
    let out = recv(&mut r, 2, ok(6));
    let RaftMsg::Append {
        prev_index,
        entries,
        ..
    } = &sends(&out)[0].1
    else {
        panic!("an append: {out:?}")
    };
    assert_eq!((*prev_index, entries.len()), (6, 2));
    assert_eq!(r.progress(NodeId(2)).sending, None);
}

/// Figure 13 with loss: a lost chunk is sent again on the heartbeat from the offset the
/// follower last acknowledged; a follower given a chunk at an offset it does not expect
/// answers with the one it does, and the leader resumes there.
#[test]
fn fig13_a_lost_chunk_is_resumed_from_the_followers_offset() {
    let log: Vec<_> = (1..=3).map(|c| entry(1, c)).collect();
    let c = cfg(4);
    let mut l = leader(log, &c);
    compact(&mut l, 3, "abcdefghij");
    let (mut f, _) = boot(2, &image(1, vec![], None), &c);
    let out = recv(
        &mut l,
        2,
        RaftMsg::AppendReply {
            term: 1,
            result: AppendResult::Rejected {
                prev_index: 3,
                conflict_term: None,
                conflict_index: 1,
            },
        },
    );
    let (_, first) = sends(&out).remove(0);
    let out = recv(&mut f, 0, first);
    assert_eq!(sends(&out), vec![(0, snap_reply(3, 4))]);
    let out = recv(&mut l, 2, snap_reply(3, 4));
    assert_eq!(sends(&out), vec![(2, chunk(3, 4, "efgh", false))]);
    // That chunk is lost. The heartbeat sends it again, from offset 4.
    let mut out = Effects::new();
    l.on_timer(RaftTimer::Heartbeat, &mut out);
    let to_2: Vec<_> = sends(&out).into_iter().filter(|s| s.0 == 2).collect();
    assert_eq!(to_2, vec![(2, chunk(3, 4, "efgh", false))]);
    // A chunk past what the follower holds is answered with the offset it expects.
    let out = recv(&mut f, 0, chunk(3, 8, "ij", true));
    assert_eq!(sends(&out), vec![(0, snap_reply(3, 4))]);
    let out = recv(&mut f, 0, chunk(3, 4, "efgh", false));
    assert_eq!(sends(&out), vec![(0, snap_reply(3, 8))]);
    // A restart loses the follower's buffer: it wants offset 0, and the leader goes back.
    let (mut f, _) = boot(2, &f.durable(), &c);
    let out = recv(&mut f, 0, chunk(3, 8, "ij", true));
    assert_eq!(sends(&out), vec![(0, snap_reply(3, 0))]);
    let out = recv(&mut l, 2, snap_reply(3, 0));
    assert_eq!(sends(&out), vec![(2, chunk(3, 0, "abcd", false))]);
}

/// Figure 13 with a newer snapshot: the leader compacted again mid-transfer, so the next
/// chunk it sends is the newer snapshot's first, not the old one's next; and a follower
/// buffering one snapshot never appends another's chunk to it, even at the offset its
/// buffer reached (its bytes would install as neither snapshot).
#[test]
fn fig13_a_newer_snapshot_starts_over_and_chunks_of_two_are_never_mixed() {
    let c = cfg(4);
    let mut l = leader((1..=6).map(|c| entry(1, c)).collect(), &c);
    compact(&mut l, 6, "abcdefghij");
    let rejected = RaftMsg::AppendReply {
        term: 1,
        result: AppendResult::Rejected {
            prev_index: 6,
            conflict_term: None,
            conflict_index: 1,
        },
    };
    assert_eq!(
        sends(&recv(&mut l, 2, rejected)),
        vec![(2, chunk(6, 0, "abcd", false))]
    );
    recv(&mut l, 2, snap_reply(6, 4));
    // The leader's no-op at slot 7 is committed: its host snapshots it.
    compact(&mut l, 7, "ABCDEFGHIJ");
    let mut out = Effects::new();
    l.on_timer(RaftTimer::Heartbeat, &mut out);
    let to_2: Vec<_> = sends(&out).into_iter().filter(|s| s.0 == 2).collect();
    assert_eq!(
        to_2,
        vec![(2, chunk(7, 0, "ABCD", false))],
        "from its start"
    );

    let (mut f, _) = boot(2, &image(1, vec![], None), &c);
    assert_eq!(
        sends(&recv(&mut f, 0, chunk(6, 0, "abcd", false))),
        vec![(0, snap_reply(6, 4))]
    );
    assert_eq!(
        sends(&recv(&mut f, 0, chunk(7, 4, "EFGH", false))),
        vec![(0, snap_reply(7, 0))],
        "another snapshot's chunk is not appended to this one's buffer"
    );
    recv(&mut f, 0, chunk(7, 0, "ABCD", false));
    recv(&mut f, 0, chunk(7, 4, "EFGH", false));
    let out = recv(&mut f, 0, chunk(7, 8, "IJ", true));
    let restored: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Restore(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        restored,
        vec![Snapshot {
            slot: 7,
            data: data("ABCDEFGHIJ")
        }]
    );
}

/// Figure 13 steps 5-8: on the last chunk a follower whose log holds the snapshot's last
/// entry with its term keeps the entries after it; it persists the snapshot, moves its commit
/// point to the slot, restores the snapshot before any later commit and answers as matched up
/// to the slot. A follower whose entry there has another term discards its whole log.
#[test]
fn fig13_a_follower_holding_the_snapshots_last_entry_keeps_its_suffix() {
    let c = cfg(64);
    let log: Vec<_> = (1..=6).map(|c| entry(1, c)).collect();
    let (mut f, _) = boot(1, &image(1, log, None), &c);
    let out = recv(&mut f, 0, chunk(4, 0, "four", true));
    let effects: Vec<_> = out.iter().cloned().collect();
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer {
                timer: RaftTimer::Election,
                after: c.election_timeout.clone()
            },
            Effect::Persist(RaftWrite::Snapshot(snap(4, 1, "four"))),
            Effect::Restore(Snapshot {
                slot: 4,
                data: data("four")
            }),
            Effect::Send {
                to: NodeId(0),
                msg: ok(4)
            },
        ]
    );
    assert_eq!(f.log(), &[entry(1, 5), entry(1, 6)][..]);
    assert_eq!((f.commit, f.snap_index(), f.last_index()), (4, 4, 6));
    assert_eq!(
        f.leader,
        Some(NodeId(0)),
        "a chunk comes from the leader, as an append"
    );

    // Another term at slot 4: the log goes (step 7).
    let log = vec![
        entry(1, 1),
        entry(1, 2),
        entry(1, 3),
        entry(0, 4),
        entry(1, 5),
    ];
    let (mut f, _) = boot(1, &image(1, log, None), &c);
    recv(&mut f, 0, chunk(4, 0, "four", true));
    assert!(f.log().is_empty());
    assert_eq!((f.commit, f.last_index()), (4, 4));
    // The durable images fold the write the same way (steps 6 and 7).
    let mut kept = image(1, (1..=6).map(|c| entry(1, c)).collect(), None);
    R::apply_write(&mut kept, &RaftWrite::Snapshot(snap(4, 1, "four")));
    assert_eq!(kept.log, vec![entry(1, 5), entry(1, 6)]);
    let mut gone = image(
        1,
        vec![entry(1, 1), entry(1, 2), entry(1, 3), entry(0, 4)],
        None,
    );
    R::apply_write(&mut gone, &RaftWrite::Snapshot(snap(4, 1, "four")));
    assert!(gone.log.is_empty());
    assert_eq!(gone.snapshot, Some(snap(4, 1, "four")));
}

/// §7: a snapshot at or below the follower's commit point adds nothing; installing it could
/// only lose entries after it. It is ignored and answered as matched up to the commit point.
#[test]
fn s7_a_snapshot_older_than_the_commit_point_is_ignored() {
    let c = cfg(64);
    let log: Vec<_> = (1..=5).map(|c| entry(1, c)).collect();
    let (mut f, _) = boot(1, &image(1, log.clone(), None), &c);
    recv(
        &mut f,
        0,
        RaftMsg::Append {
            term: 1,
            prev_index: 5,
            prev_term: 1,
            entries: vec![].into(),
            commit: 5,
        },
    );
    assert_eq!(f.commit, 5);
    let out = recv(&mut f, 0, chunk(3, 0, "three", true));
    assert_eq!(sends(&out), vec![(0, ok(5))]);
    assert!(persists(&out).is_empty());
    assert!(!out.iter().any(|e| matches!(e, Effect::Restore(_))));
    assert_eq!((f.log(), f.snap_index()), (&log[..], 0));
}

/// What a walk reached: snapshots installed by InstallSnapshot, nodes that restored one at
/// boot, and the most commands one node applied.
#[derive(Default)]
struct Reached {
    installs: usize,
    applied: usize,
}

/// A seeded random walk with snapshots on (`every` slots, `chunk` bytes): random delivery
/// order, loss, duplication, timers, proposals, crashes, restarts and snapshots on demand.
/// The driver checks state machine safety, "snapshots hold only committed slots" and every
/// Raft invariant after each step; the walk checks that every live node's writes rebuild its
/// durable state.
fn walk(cfg: Config, seed: u64, steps: usize, reached: &mut Reached) -> Result<(), Violation> {
    let n = 3;
    // The driver applies the snapshot policy after every step; the walk adds snapshots on
    // demand.
    let mut c: Cluster<R, Cmd> = Cluster::new(n, cfg);
    c.record_violations = true;
    let mut rng = WalkRng::new(seed);
    let mut next_cmd = 0;
    for _ in 0..steps {
        let i = rng.below(n);
        match rng.below(100) {
            0..=54 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                let install = matches!(c.net[k].msg, RaftMsg::InstallSnapshot { done: true, .. });
                let before = c
                    .is_up(c.net[k].to.index())
                    .then(|| c.replica(c.net[k].to.index()).snap_index());
                let to = c.net[k].to.index();
                c.deliver(k);
                if install && c.is_up(to) && before != Some(c.replica(to).snap_index()) {
                    reached.installs += 1;
                }
            }
            55..=59 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.net.remove(k);
            }
            60..=62 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.duplicate(k);
            }
            63..=70 if c.is_up(i) && c.node(i).timers.contains(&RaftTimer::Election) => {
                c.fire(i, RaftTimer::Election)
            }
            71..=83 if c.is_up(i) && c.node(i).timers.contains(&RaftTimer::Heartbeat) => {
                c.fire(i, RaftTimer::Heartbeat)
            }
            84..=93 if c.is_up(i) => {
                next_cmd += 1;
                c.propose(i, vec![next_cmd]);
            }
            94..=95 if c.is_up(i) => c.snapshot(i),
            96..=97 if c.is_up(i) && (0..n).filter(|&j| !c.is_up(j)).count() < n / 2 => c.crash(i),
            _ if !c.is_up(i) => c.restart(i),
            _ => {}
        }
        if let Some(v) = c.violation() {
            return Err(v.clone());
        }
        // The writes say everything a restart needs (Figure 13's writes included).
        for j in (0..n).filter(|&j| c.is_up(j) && !c.config().any_bug()) {
            assert_eq!(c.node(j).durable, c.replica(j).durable(), "n{j}'s image");
        }
    }
    let most = (0..n).map(|i| c.node(i).applied.len()).max().unwrap_or(0);
    reached.applied = reached.applied.max(most);
    Ok(())
}

fn walk_cfg(every: u64, chunk: usize) -> Config {
    Config {
        snapshots: Some(SnapshotPolicy { every, chunk }),
        ..Config::default()
    }
}

/// §7 under faults: random walks with frequent snapshots (every 2 to 4 committed slots, in
/// chunks of 5 or 64 bytes) keep every invariant, and do install snapshots by InstallSnapshot.
#[test]
fn s7_random_walks_with_snapshots_keep_every_invariant() {
    let mut reached = Reached::default();
    for seed in 0..60 {
        for (every, chunk) in [(2, 5), (4, 64)] {
            let cfg = walk_cfg(every, chunk);
            walk(cfg, seed, 1_500, &mut reached)
                .unwrap_or_else(|v| panic!("seed {seed}, every {every}, chunk {chunk}: {v}"));
        }
    }
    // Vacuity guard: snapshots travelled and were installed, and commands were applied.
    assert!(reached.installs >= 20, "only {} installs", reached.installs);
    assert!(reached.applied >= 20, "at most {} applied", reached.applied);
}

/// The walks have teeth: S2 and S3 are caught, each by the rule it breaks. S2 needs a whole
/// snapshot delivered again after the follower moved past it, so its walks send snapshots in
/// one chunk (a duplicated last chunk alone is answered with the offset 0 the follower wants).
#[cfg(feature = "bug-zoo")]
#[test]
fn s7_random_walks_catch_the_snapshot_bugs() {
    use crate::driver::{COMMITS_IN_SLOT_ORDER, SNAPSHOTS_HOLD_COMMITTED, STATE_MACHINE_SAFETY};
    use names::*;
    for (bug, chunk, expected) in [
        (
            Bug::SnapshotTruncatesLog,
            64,
            &[
                COMMITTED_ENTRIES_NEVER_CHANGE,
                LEADER_COMPLETENESS,
                STATE_MACHINE_SAFETY,
            ][..],
        ),
        (
            Bug::SnapshotKeepsCommit,
            5,
            &[SNAPSHOTS_HOLD_COMMITTED, COMMITS_IN_SLOT_ORDER][..],
        ),
    ] {
        let mut cfg = walk_cfg(2, chunk);
        cfg.bugs = crate::bugs::BugSet::only(bug);
        let mut reached = Reached::default();
        let caught = (0..300).find_map(|seed| walk(cfg.clone(), seed, 1_500, &mut reached).err());
        let v = caught.unwrap_or_else(|| panic!("{} escaped 300 random walks", bug.name()));
        assert!(expected.contains(&v.invariant), "{}: {v}", bug.name());
    }
}

/// §7 end to end on the driver: a follower that crashed before the slots its leader then
/// compacted catches up by InstallSnapshot, in several chunks, and then by appends; its host
/// restores the snapshot and applies what follows, agreeing with the others (the driver checks
/// state machine safety and every invariant after each step), and every node's writes rebuild
/// its state.
#[test]
fn s7_a_lagging_follower_catches_up_by_chunks_then_appends() {
    let mut c: Cluster<R, Cmd> = Cluster::new(3, cfg(4));
    let commit = |c: &mut Cluster<R, Cmd>, cmds: Vec<Cmd>| {
        c.propose(0, cmds);
        c.deliver_all();
        c.fire(0, RaftTimer::Heartbeat);
        c.deliver_all();
    };
    c.elect(0);
    commit(&mut c, vec![1, 2]);
    c.crash(2);
    commit(&mut c, vec![3, 4]);
    c.snapshot(0);
    assert_eq!(
        (c.replica(0).snap_index(), c.replica(0).log().len()),
        (5, 0)
    );
    c.restart(2);
    c.fire(0, RaftTimer::Heartbeat);
    let mut chunks = 0;
    while !c.net.is_empty() {
        chunks += usize::from(matches!(c.net[0].msg, RaftMsg::InstallSnapshot { .. }));
        c.deliver(0);
    }
    // "snapshot 0 of n0 at slot 5" is 26 bytes: 7 chunks of at most 4.
    assert_eq!(chunks, 7);
    let st = c.replica(2).status();
    assert_eq!((st.snapshot, st.commit, st.last), (5, 5, 5));
    commit(&mut c, vec![5]);
    let st = c.replica(2).status();
    assert_eq!((st.snapshot, st.commit, st.last), (5, 6, 6));
    assert_eq!(c.replica(2).log(), &[entry(1, 5)][..]);
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![1, 2, 3, 4, 5], "n{i}");
        assert_eq!(c.node(i).durable, c.replica(i).durable(), "n{i}'s image");
    }
    assert_eq!(c.check(), Ok(()));
}

/// A host that folds the writes it keeps moves them into the image
/// ([`Replica::apply_write_owned`]): the same image as applying each by reference, through
/// appends that overwrite a suffix, appends inside the snapshot, and snapshots that keep the
/// log after them or drop it.
#[test]
fn moving_writes_into_the_image_folds_them_as_copying_does() {
    let writes = vec![
        RaftWrite::HardState {
            term: 1,
            voted_for: Some(NodeId(0)),
        },
        RaftWrite::Append {
            at: 1,
            entries: (1..=5).map(|c| entry(1, c)).collect::<Vec<_>>().into(),
        },
        // Overwrites slots 4 and 5 with a later term's entries.
        RaftWrite::Append {
            at: 4,
            entries: vec![entry(2, 40), entry(2, 50), entry(2, 60)].into(),
        },
        // Keeps 5 and 6 after it: slot 4 holds term 2.
        RaftWrite::Snapshot(snap(4, 2, "four")),
        // Starts inside the snapshot: slots 3 and 4 are skipped.
        RaftWrite::Append {
            at: 3,
            entries: vec![entry(2, 3), entry(2, 40), entry(2, 50), entry(3, 70)].into(),
        },
        // Slot 6 no longer holds term 9: the log after it goes.
        RaftWrite::Snapshot(snap(6, 9, "six")),
        RaftWrite::Append {
            at: 7,
            entries: vec![entry(9, 7)].into(),
        },
    ];
    let (mut copied, mut moved) = (RaftDurable::default(), RaftDurable::default());
    for (i, w) in writes.into_iter().enumerate() {
        R::apply_write(&mut copied, &w);
        R::apply_write_owned(&mut moved, w);
        assert_eq!(moved, copied, "after write {i}");
    }
    assert_eq!(
        (copied.log, copied.snapshot),
        (vec![entry(9, 7)], Some(snap(6, 9, "six")))
    );
}

/// §5.3's fast backtracking over a compacted log: the leader's last entry of the conflicting
/// term is found by its position after the snapshot, so the slot it resumes at counts the
/// snapshot's slots too. Snapshot at slot 4; the leader holds term 2 in slots 5-8, term 3 in
/// 9-10, and its term-4 no-op at 11. The follower refuses the probe at slot 10 with term 2
/// from slot 6: the leader resumes after its own last term-2 entry, slot 8, at 9.
#[test]
fn s5_3_fast_backtracking_counts_the_slots_the_snapshot_holds() {
    let log = vec![
        entry(2, 5),
        entry(2, 6),
        entry(2, 7),
        entry(2, 8),
        entry(3, 9),
        entry(3, 10),
    ];
    let (mut l, _) = boot(0, &image(3, log, Some(snap(4, 1, "four"))), &cfg(64));
    win(&mut l);
    assert_eq!((l.term, l.snap_index(), l.last_index()), (4, 4, 11));
    assert_eq!(l.progress(NodeId(2)).next, 11, "probing from its no-op");
    let out = recv(&mut l, 2, reject(4, 10, Some(2), 6));
    assert_eq!(l.progress(NodeId(2)).next, 9);
    assert_eq!(one_append_after(&out, 2, (8, 2)), 3);
}
