//! Multi-Paxos snapshot tests (see [`super::snapshot`]): each asserts the exact effects or
//! state its rule claims. The driver scenarios at the end run with every driver check on
//! (a violation panics), so they also assert state machine safety and "snapshots hold only
//! committed slots" at every step.

use super::tests::{
    b, deliver_until, e, fire, heartbeats, ids, recv, sends, snap_write, three, vals,
};
use super::*;
use crate::driver::{Cluster, Envelope, WalkRng};
use crate::replica::{Effect, Effects, SnapshotPolicy};

type Cmd = u32;
type P = MultiPaxos<Cmd>;
type O = Out<P, Cmd>;
type C = Cluster<P, Cmd>;

fn snap(slot: Slot, text: &str) -> Snapshot {
    Snapshot {
        slot,
        data: text.as_bytes().into(),
    }
}

fn cfg(chunk: usize) -> Config {
    Config {
        snapshots: Some(SnapshotPolicy { every: 4, chunk }),
        ..Config::default()
    }
}

fn boot(id: u8, d: Option<PaxosDurable<Cmd>>, cfg: &Config) -> (P, O) {
    let mut out = Effects::new();
    let r = P::boot(NodeId(id), &ids(3), d.as_ref(), cfg, &mut out);
    (r, out)
}

fn compact(r: &mut P, s: Snapshot) -> O {
    let mut out = Effects::new();
    r.compact(s, &mut out);
    out
}

fn writes(out: &O) -> Vec<PaxosWrite<Cmd>> {
    out.writes().cloned().collect()
}

fn restores(out: &O) -> Vec<Snapshot> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Restore(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// n0 of 3, an acceptor of leader n1 in ballot (1, 1), holding 10 20 30 40 50 in slots 1-5
/// with slots 1-3 known chosen (without CheckQuorum, so that it answers other proposers).
fn follower_with_commit_3() -> P {
    let d = PaxosDurable {
        promised: b(1, 1),
        tried: 0,
        snapshot: None,
        log: (1..=5).map(|k| e(b(1, 1), Some(k * 10))).collect(),
        configs: Configs::default(),
    };
    let cfg = Config {
        check_quorum: false,
        ..cfg(8)
    };
    let (mut r, _) = boot(0, Some(d), &cfg);
    recv(
        &mut r,
        1,
        PaxosMsg::Accept {
            ballot: b(1, 1),
            first: 6,
            cmds: vals(vec![]),
            commit: 3,
        },
    );
    assert_eq!((r.status().commit, r.status().last), (3, 5));
    r
}

#[test]
fn compaction_drops_the_prefix_and_keeps_accepted_values_above_it() {
    let mut r = follower_with_commit_3();
    let before = r.durable();
    let out = compact(&mut r, snap(3, "s3"));
    assert_eq!(writes(&out), vec![snap_write(snap(3, "s3"))]);
    assert_eq!(sends(&out), vec![]);
    // Slots 4 and 5 are accepted, not chosen: an acceptor must still report them.
    assert_eq!(r.log(), &[e(b(1, 1), Some(40)), e(b(1, 1), Some(50))]);
    let st = r.status();
    assert_eq!((st.snapshot, st.commit, st.last), (3, 3, 5));
    assert_eq!(r.committed(), BTreeMap::new(), "only the suffix it holds");
    // The write does to the durable image what the replica did to itself.
    let mut d = before;
    P::apply_write(&mut d, &writes(&out)[0]);
    assert_eq!(d, r.durable());
    assert_eq!(d.snapshot, Some(snap(3, "s3")));
    // A snapshot not above the one kept changes nothing.
    assert!(compact(&mut r, snap(2, "s2")).is_empty());
    assert!(compact(&mut r, snap(3, "other")).is_empty());
    assert_eq!(r.snapshot(), Some(&snap(3, "s3")));
}

#[test]
fn restart_from_snapshot_and_log_restores_first_and_prepares_above_it() {
    let d = PaxosDurable {
        promised: b(1, 1),
        tried: 0,
        snapshot: Some(snap(3, "s3")),
        log: vec![e(b(1, 1), Some(40))],
        configs: Configs::default(),
    };
    let (mut r, out) = boot(0, Some(d), &cfg(8));
    assert!(
        matches!(out.iter().next(), Some(Effect::Restore(s)) if *s == snap(3, "s3")),
        "the first effect restores the snapshot: {out:?}"
    );
    assert_eq!(restores(&out).len(), 1);
    let st = r.status();
    assert_eq!((st.commit, st.snapshot, st.last), (3, 3, 4));
    assert_eq!(
        r.entry(4),
        Some(&Entry {
            ballot: b(1, 1),
            value: Some(40).into()
        })
    );
    let out = fire(&mut r, PaxosTimer::Election);
    let prepare = PaxosMsg::Prepare {
        ballot: b(2, 0),
        from: 4,
    };
    assert_eq!(sends(&out), vec![(1, prepare.clone()), (2, prepare)]);
}

#[test]
fn a_promise_starts_after_the_acceptors_snapshot() {
    let mut r = follower_with_commit_3();
    compact(&mut r, snap(3, "s3"));
    let out = recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(2, 2),
            from: 1,
        },
    );
    // Slots 1-3 are in the snapshot: not reported as empty, skipped.
    assert_eq!(
        sends(&out),
        vec![(
            2,
            PaxosMsg::Promise {
                ballot: b(2, 2),
                from: 4,
                accepted: vec![e(b(1, 1), Some(40)), e(b(1, 1), Some(50))],
                start: 4,
                end: 6,
            }
        )]
    );
}

#[test]
fn a_candidate_never_fills_a_slot_inside_a_promisers_snapshot_with_a_noop() {
    // A fresh n0 campaigns from slot 1; n1's snapshot reaches slot 5 and it accepted 60 in 6.
    let (mut r, _) = boot(0, None, &cfg(4));
    fire(&mut r, PaxosTimer::Election);
    let out = recv(
        &mut r,
        1,
        PaxosMsg::Promise {
            ballot: b(1, 0),
            from: 6,
            accepted: vec![e(b(1, 1), Some(60))],
            start: 6,
            end: 7,
        },
    );
    // A quorum, but slots 1-5 are chosen and unknown here: it asks n1 for its snapshot and
    // proposes nothing.
    assert_eq!(r.status().role, Role::Candidate);
    assert_eq!(writes(&out), vec![]);
    assert_eq!(
        sends(&out),
        vec![(
            1,
            PaxosMsg::SnapshotAck {
                ballot: b(1, 0),
                slot: 5,
                offset: 0,
            }
        )]
    );
    // n1 sends it in two chunks; the second completes it.
    let chunk = |offset: u64, text: &str| PaxosMsg::Snapshot {
        ballot: b(1, 0),
        slot: 5,
        offset,
        total: 6,
        data: Bytes(text.as_bytes().into()),
        configs: three(),
    };
    let out = recv(&mut r, 1, chunk(0, "snap"));
    assert_eq!(writes(&out), vec![]);
    assert_eq!(r.status().role, Role::Candidate);
    let out = recv(&mut r, 1, chunk(4, "5!"));
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(restores(&out), vec![snap(5, "snap5!")]);
    // Installed (durable, restored) before it proposes: then only slot 6, with n1's 60.
    assert_eq!(
        writes(&out),
        vec![
            snap_write(snap(5, "snap5!")),
            PaxosWrite::Promise(b(1, 0)),
            PaxosWrite::Accept {
                ballot: b(1, 0),
                first: 6,
                cmds: vals(vec![Some(60)]),
            },
        ]
    );
    let accepts: Vec<Slot> = sends(&out)
        .into_iter()
        .filter_map(|(_, m)| match m {
            PaxosMsg::Accept { first, cmds, .. } if !cmds.is_empty() => Some(first),
            _ => None,
        })
        .collect();
    assert_eq!(accepts, vec![6, 6], "no proposal at or below slot 5");
    assert_eq!((r.status().commit, r.status().snapshot), (5, 5));
}

#[test]
fn a_promiser_answers_the_candidates_request_with_its_snapshot_in_chunks() {
    let mut r = follower_with_commit_3();
    compact(&mut r, snap(3, "abcdefghij"));
    recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(2, 2),
            from: 1,
        },
    );
    let ask = |offset| PaxosMsg::SnapshotAck {
        ballot: b(2, 2),
        slot: 3,
        offset,
    };
    let out = recv(&mut r, 2, ask(0));
    assert_eq!(
        sends(&out),
        vec![(
            2,
            PaxosMsg::Snapshot {
                ballot: b(2, 2),
                slot: 3,
                offset: 0,
                total: 10,
                data: Bytes(b"abcdefgh".as_slice().into()),
                configs: three(),
            }
        )]
    );
    let out = recv(&mut r, 2, ask(8));
    assert!(
        matches!(&sends(&out)[..], [(2, PaxosMsg::Snapshot { offset: 8, data, .. })] if data.0[..] == *b"ij")
    );
    assert!(recv(&mut r, 2, ask(10)).is_empty(), "all of it is held");
    // A ballot it did not promise gets nothing.
    let other = PaxosMsg::SnapshotAck {
        ballot: b(1, 2),
        slot: 3,
        offset: 0,
    };
    assert!(recv(&mut r, 2, other).is_empty());
}

#[test]
fn a_snapshot_not_above_the_followers_commit_point_is_ignored() {
    for slot in [2, 3] {
        let mut r = follower_with_commit_3();
        let before = r.durable();
        let out = recv(
            &mut r,
            1,
            PaxosMsg::Snapshot {
                ballot: b(1, 1),
                slot,
                offset: 0,
                total: 2,
                data: Bytes(b"ss".as_slice().into()),
                configs: three(),
            },
        );
        assert_eq!(writes(&out), vec![], "slot {slot}");
        assert_eq!(restores(&out), vec![], "slot {slot}");
        // Acknowledged in full, so the leader stops sending it.
        assert_eq!(
            sends(&out),
            vec![(
                1,
                PaxosMsg::SnapshotAck {
                    ballot: b(1, 1),
                    slot,
                    offset: 2,
                }
            )]
        );
        assert_eq!(r.durable(), before);
        assert_eq!((r.status().commit, r.status().snapshot), (3, 0));
    }
}

/// A follower's transfer buffer: a chunk of a snapshot it holds already (at or below its
/// commit point) leaves the buffer of a newer one alone, and a chunk of another transfer
/// never lands in it, even one of the same length and configurations at the offset it
/// reached (its bytes would install as neither snapshot).
#[test]
fn an_old_chunk_leaves_the_buffer_and_chunks_of_two_transfers_are_never_mixed() {
    let mut r = follower_with_commit_3();
    let chunk = |slot, offset, bytes: &[u8]| PaxosMsg::Snapshot {
        ballot: b(1, 1),
        slot,
        offset,
        total: 8,
        data: Bytes(bytes.into()),
        configs: three(),
    };
    let ack = |slot, offset| {
        (
            1,
            PaxosMsg::SnapshotAck {
                ballot: b(1, 1),
                slot,
                offset,
            },
        )
    };
    assert_eq!(
        sends(&recv(&mut r, 1, chunk(9, 0, b"abcd"))),
        vec![ack(9, 4)]
    );
    assert_eq!(
        sends(&recv(&mut r, 1, chunk(2, 0, b"zz"))),
        vec![ack(2, 8)],
        "held already: acknowledged in full"
    );
    assert_eq!(
        sends(&recv(&mut r, 1, chunk(13, 4, b"EFGH"))),
        vec![ack(13, 0)],
        "another transfer's chunk: not appended to this one's buffer"
    );
    let out = recv(&mut r, 1, chunk(9, 4, b"efgh"));
    assert_eq!(restores(&out), vec![snap(9, "abcdefgh")]);
    assert_eq!(r.status().snapshot, 9);
}

#[test]
fn an_installed_snapshot_keeps_accepted_values_above_it_and_restores_before_commits() {
    let mut r = follower_with_commit_3();
    let out = recv(
        &mut r,
        1,
        PaxosMsg::Snapshot {
            ballot: b(1, 1),
            slot: 4,
            offset: 0,
            total: 2,
            data: Bytes(b"s4".as_slice().into()),
            configs: three(),
        },
    );
    assert_eq!(writes(&out), vec![snap_write(snap(4, "s4"))]);
    assert_eq!(restores(&out), vec![snap(4, "s4")]);
    assert_eq!(r.log(), &[e(b(1, 1), Some(50))]);
    assert_eq!((r.status().commit, r.status().snapshot), (4, 4));
    // Slot 5 is learned above it as usual.
    let out = recv(
        &mut r,
        1,
        PaxosMsg::Accept {
            ballot: b(1, 1),
            first: 6,
            cmds: vals(vec![]),
            commit: 5,
        },
    );
    assert_eq!(
        out.commits().map(|(s, c)| (s, *c)).collect::<Vec<_>>(),
        vec![(5, 50)]
    );
}

#[test]
fn a_chunk_out_of_order_is_answered_with_the_offset_held() {
    let mut r = follower_with_commit_3();
    let chunk = |offset: u64, text: &str| PaxosMsg::Snapshot {
        ballot: b(1, 1),
        slot: 5,
        offset,
        total: 6,
        data: Bytes(text.as_bytes().into()),
        configs: three(),
    };
    let ack = |offset| {
        vec![(
            1,
            PaxosMsg::SnapshotAck {
                ballot: b(1, 1),
                slot: 5,
                offset,
            },
        )]
    };
    // Nothing held yet (the start was lost): start over.
    assert_eq!(sends(&recv(&mut r, 1, chunk(2, "ap"))), ack(0));
    assert_eq!(sends(&recv(&mut r, 1, chunk(0, "sn"))), ack(2));
    // A duplicate changes nothing.
    assert_eq!(sends(&recv(&mut r, 1, chunk(0, "sn"))), ack(2));
    assert_eq!(sends(&recv(&mut r, 1, chunk(2, "ap"))), ack(4));
    let out = recv(&mut r, 1, chunk(4, "5!"));
    assert_eq!(restores(&out), vec![snap(5, "snap5!")]);
    assert_eq!(r.status().commit, 5);
}

// --- Scenarios on the driver -----------------------------------------------------------------

fn is_chunk_at(offset: u64) -> impl Fn(&Envelope<PaxosMsg<Cmd>>) -> bool {
    move |e| matches!(e.msg, PaxosMsg::Snapshot { offset: o, .. } if o == offset)
}

fn settle(c: &mut C, leader: usize) {
    heartbeats(c, leader, 8);
}

/// n0 leads n0-n2 (4 slots an accept, snapshot chunks of 4 bytes) and commits `cmds`, five
/// a proposal, while n2 is down; the host snapshots every 4 committed slots.
fn committed_without_n2(cmds: &[Cmd]) -> C {
    let cfg = Config {
        max_batch: 4,
        ..cfg(4)
    };
    let mut c = C::new(3, cfg);
    c.elect(0);
    c.crash(2);
    for k in cmds.chunks(5) {
        c.propose(0, k.to_vec());
        c.deliver_all();
    }
    c
}

#[test]
fn a_crashed_acceptor_catches_up_by_snapshot_chunks_then_by_resends() {
    let want: Vec<Cmd> = (1..=12).collect();
    let mut c = committed_without_n2(&want[..10]);
    // The host snapshots every 4 committed slots: accepts go 4 slots a message, so the commit
    // point moves 4, 5, 9, 10, and the snapshots are taken at 4 and at 9.
    assert_eq!(c.replica(0).status().snapshot, 9);
    c.propose(0, want[10..].to_vec());
    c.deliver_all();
    c.restart(2);
    c.fire(0, PaxosTimer::Heartbeat);
    // Chunks flow until the one at offset 8 is on its way; it is lost.
    for _ in 0..32 {
        if !c.find(is_chunk_at(8)).is_empty() {
            break;
        }
        let chunks = c.find(|e| matches!(e.msg, PaxosMsg::Snapshot { .. }));
        assert!(chunks.len() <= 1, "one chunk outstanding");
        c.deliver(0);
    }
    assert_eq!(c.drop_where(is_chunk_at(8)), 1);
    c.deliver_all();
    assert_eq!(c.replica(2).status().commit, 0);
    // The next heartbeat only notes that no acknowledgement came since the chunk went out;
    // the one after (a whole interval without one) re-sends from the acknowledged offset.
    c.fire(0, PaxosTimer::Heartbeat);
    assert!(c.find(is_chunk_at(8)).is_empty());
    c.deliver_all();
    c.fire(0, PaxosTimer::Heartbeat);
    assert_eq!(c.find(is_chunk_at(8)).len(), 1);
    settle(&mut c, 0);
    let st = c.replica(2).status();
    assert_eq!((st.snapshot, st.commit, st.last), (9, 12, 12));
    assert_eq!(c.applied(2), want);
    assert_eq!(
        c.replica(2).committed(),
        BTreeMap::from([(10, Some(10)), (11, Some(11)), (12, Some(12))])
    );
    assert_eq!(c.node(2).durable, c.replica(2).durable());
    assert_eq!(c.check(), Ok(()));
    // And it survives a restart from what it installed.
    c.crash(2);
    c.restart(2);
    settle(&mut c, 0);
    assert_eq!(c.applied(2), want);
    assert_eq!(c.replica(2).status().commit, 12);
}

/// A transfer's bookkeeping at the leader: one chunk out at a time even when the follower
/// says twice that it is behind, an acknowledgement of another ballot moves nothing, and a
/// follower that reports a commit point at the snapshot's slot needs no more chunks, though
/// its last acknowledgement was lost.
#[test]
fn a_transfer_keeps_one_chunk_out_heeds_its_ballot_and_ends_once_the_follower_commits_past_it() {
    let mut c = committed_without_n2(&(1..=10).collect::<Vec<Cmd>>());
    assert_eq!(c.replica(0).status().snapshot, 9);
    c.restart(2);
    c.fire(0, PaxosTimer::Heartbeat);
    c.deliver_first(|e| e.to == NodeId(2));
    let behind = |e: &Envelope<PaxosMsg<Cmd>>| {
        e.from == NodeId(2) && matches!(e.msg, PaxosMsg::Accepted { behind: true, .. })
    };
    let answer = c.find(behind);
    assert_eq!(answer.len(), 1, "n2 says it is behind");
    c.duplicate(answer[0]); // delivers a copy, then the answer itself:
    c.deliver_first(behind);
    let chunk_to_2 = |e: &Envelope<PaxosMsg<Cmd>>| {
        e.to == NodeId(2) && matches!(e.msg, PaxosMsg::Snapshot { .. })
    };
    assert_eq!(c.find(chunk_to_2).len(), 1, "one chunk outstanding");
    assert_eq!(c.find(is_chunk_at(0)).len(), 1);

    // An acknowledgement of 4 bytes in another ballot: not this transfer's.
    c.net.push(Envelope {
        from: NodeId(2),
        to: NodeId(0),
        msg: PaxosMsg::SnapshotAck {
            ballot: Ballot::ZERO,
            slot: 9,
            offset: 4,
        },
    });
    c.deliver_first(|e| matches!(e.msg, PaxosMsg::SnapshotAck { .. }));
    assert!(c.find(is_chunk_at(4)).is_empty(), "no chunk sent for it");

    // The chunks flow until n2 installs the snapshot; its last acknowledgement is lost.
    deliver_until(&mut c, |c| c.replica(2).status().snapshot == 9);
    let last_ack = |e: &Envelope<PaxosMsg<Cmd>>| {
        e.from == NodeId(2) && matches!(e.msg, PaxosMsg::SnapshotAck { .. })
    };
    assert_eq!(c.drop_where(last_ack), 1);
    c.deliver_all();
    // Its answer to the next heartbeat reports its commit point at the snapshot's slot: the
    // transfer is over, and no later heartbeat sends it a chunk again.
    for _ in 0..3 {
        c.fire(0, PaxosTimer::Heartbeat);
        assert!(c.find(chunk_to_2).is_empty(), "a chunk re-sent");
        c.deliver_all();
    }
    assert_eq!(c.replica(2).status().commit, 10);
    assert_eq!(c.check(), Ok(()));
}

#[test]
fn a_behind_candidate_gets_a_promisers_snapshot_before_it_leads() {
    let mut c = C::new(3, cfg(4));
    c.elect(0);
    c.crash(2);
    let want: Vec<Cmd> = (1..=8).collect();
    c.propose(0, want.clone());
    c.deliver_all();
    settle(&mut c, 0);
    assert_eq!(c.replica(1).status().snapshot, 8);
    c.crash(0);
    c.restart(2);
    // n2 knows nothing; n1's promise starts after its snapshot at 8.
    c.elect(2);
    assert_eq!(c.leaders(), vec![2]);
    let st = c.replica(2).status();
    assert_eq!((st.snapshot, st.commit), (8, 8));
    assert_eq!(c.applied(2), want, "installed, not filled with no-ops");
    c.propose(2, vec![9]);
    c.deliver_all();
    settle(&mut c, 2);
    let all: Vec<Cmd> = (1..=9).collect();
    assert_eq!(c.applied(1), all);
    assert_eq!(c.applied(2), all);
    assert_eq!(c.check(), Ok(()));
}

// --- Random walks ----------------------------------------------------------------------------

/// What a walk did: commands applied by its most advanced node, last chunks of a snapshot
/// delivered, restarts of a node that kept a snapshot.
#[derive(Default)]
struct Walked {
    applied: usize,
    installs: usize,
    restarts_from_snapshot: usize,
}

/// One seeded walk of 3 nodes with snapshots every 3 slots in 4-byte chunks: random delivery
/// order, loss, duplication, timers, proposals, on-demand snapshots, crashes and restarts. The
/// driver checks state machine safety, "snapshots hold only committed slots" and every
/// multi-Paxos invariant after each step; the first violation ends the walk.
fn walk(cfg: &Config, seed: u64, steps: usize) -> Result<Walked, crate::driver::Violation> {
    let n = 3;
    let mut c = C::new(n, cfg.clone());
    c.record_violations = true;
    let mut rng = WalkRng::new(seed);
    let mut next_cmd = 0;
    let mut w = Walked::default();
    for _ in 0..steps {
        let i = rng.below(n);
        match rng.below(100) {
            0..=54 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                if let PaxosMsg::Snapshot {
                    offset,
                    total,
                    data,
                    ..
                } = &c.net[k].msg
                {
                    w.installs += usize::from(offset + data.0.len() as u64 == *total);
                }
                c.deliver(k);
            }
            55..=59 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.net.remove(k);
            }
            60..=62 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.duplicate(k);
            }
            63..=70 if c.is_up(i) && c.node(i).timers.contains(&PaxosTimer::Election) => {
                c.fire(i, PaxosTimer::Election)
            }
            71..=83 if c.is_up(i) && c.node(i).timers.contains(&PaxosTimer::Heartbeat) => {
                c.fire(i, PaxosTimer::Heartbeat)
            }
            84..=93 if c.is_up(i) => {
                next_cmd += 1;
                c.propose(i, vec![next_cmd]);
            }
            94 if c.is_up(i) => c.snapshot(i),
            95..=97 if c.is_up(i) && (0..n).all(|j| c.is_up(j)) => c.crash(i),
            _ if !c.is_up(i) => {
                w.restarts_from_snapshot += usize::from(c.node(i).durable.snapshot.is_some());
                c.restart(i);
            }
            _ => {}
        }
        if let Some(v) = c.violation() {
            return Err(v.clone());
        }
    }
    w.applied = (0..n).map(|i| c.node(i).applied.len()).max().unwrap_or(0);
    Ok(w)
}

#[test]
fn random_walks_with_snapshots_keep_every_invariant() {
    let mut total = Walked::default();
    for seed in 0..60 {
        for check_quorum in [true, false] {
            let cfg = Config {
                check_quorum,
                snapshots: Some(SnapshotPolicy { every: 3, chunk: 4 }),
                ..Config::default()
            };
            let w = walk(&cfg, seed, 1_500)
                .unwrap_or_else(|v| panic!("seed {seed}, check_quorum {check_quorum}: {v}"));
            total.applied += w.applied;
            total.installs += w.installs;
            total.restarts_from_snapshot += w.restarts_from_snapshot;
        }
    }
    // Vacuity guard: the walks committed, shipped whole snapshots and restarted from them.
    assert!(total.applied >= 1_000, "applied only {}", total.applied);
    assert!(
        total.installs >= 50,
        "only {} snapshots arrived whole",
        total.installs
    );
    assert!(
        total.restarts_from_snapshot >= 50,
        "only {} restarts from a snapshot",
        total.restarts_from_snapshot
    );
}

/// The walks have teeth: with S5 ([`Bug::Phase1SkipsAccepted`]) a walk soon has a new leader
/// propose over a value a quorum accepted, and the driver catches the slot chosen twice.
#[cfg(feature = "bug-zoo")]
#[test]
fn random_walks_catch_phase1_skipping_accepted_slots() {
    use crate::driver::STATE_MACHINE_SAFETY;
    use names::{COMMITTED_SLOTS_AGREE, ONE_VALUE_PER_SLOT};
    let cfg = Config {
        check_quorum: false,
        snapshots: Some(SnapshotPolicy { every: 3, chunk: 4 }),
        bugs: crate::bugs::BugSet::only(Bug::Phase1SkipsAccepted),
        ..Config::default()
    };
    let v = (0..100)
        .find_map(|seed| walk(&cfg, seed, 1_500).err())
        .expect("S5 escaped 100 random walks");
    let expected = [
        STATE_MACHINE_SAFETY,
        ONE_VALUE_PER_SLOT,
        COMMITTED_SLOTS_AGREE,
    ];
    assert!(expected.contains(&v.invariant), "{v}");
}

/// A host that folds the writes it keeps moves them into the image
/// ([`Replica::apply_write_owned`]): the same image as applying each by reference, through
/// accepts that overwrite slots at a higher ballot, leave a gap, start inside the snapshot,
/// and a snapshot in between.
#[test]
fn moving_writes_into_the_image_folds_them_as_copying_does() {
    let writes = vec![
        PaxosWrite::Promise(b(1, 1)),
        PaxosWrite::Accept {
            ballot: b(1, 1),
            first: 1,
            cmds: vals(vec![Some(10), Some(20), None, Some(40)]),
        },
        // Slots 3 and 4 again at a higher ballot, and a gap at 5 before slot 6.
        PaxosWrite::Accept {
            ballot: b(2, 0),
            first: 3,
            cmds: vals(vec![Some(30), Some(41)]),
        },
        PaxosWrite::Accept {
            ballot: b(2, 0),
            first: 6,
            cmds: vals(vec![Some(60)]),
        },
        PaxosWrite::Tried(3),
        snap_write(snap(3, "three")),
        // Starts inside the snapshot: slots 2 and 3 are skipped.
        PaxosWrite::Accept {
            ballot: b(3, 2),
            first: 2,
            cmds: vals(vec![Some(21), Some(31), Some(42), Some(50)]),
        },
        // All inside the snapshot: nothing but the promise.
        PaxosWrite::Accept {
            ballot: b(4, 0),
            first: 1,
            cmds: vals(vec![Some(11)]),
        },
    ];
    let (mut copied, mut moved) = (PaxosDurable::default(), PaxosDurable::default());
    for (i, w) in writes.into_iter().enumerate() {
        P::apply_write(&mut copied, &w);
        P::apply_write_owned(&mut moved, w);
        assert_eq!(moved, copied, "after write {i}");
    }
    assert_eq!(copied.promised, b(4, 0));
    assert_eq!(
        copied.log,
        vec![
            e(b(3, 2), Some(42)),
            e(b(3, 2), Some(50)),
            e(b(2, 0), Some(60))
        ]
    );
}
