//! Multi-Paxos unit tests: each steps replicas by hand and asserts the exact effects, naming
//! the rule it checks (*Paxos Made Simple* "PMS §", *Paxos Made Moderately Complex* "PMMC").
//! Below them, multi-step scenarios on the deterministic driver; protocol-neutral scenarios
//! shared with Raft are in `tests/scenarios.rs` at the crate root.

use super::*;
use crate::driver::Cluster;
use crate::replica::{Effect, Effects};

type Cmd = u32;
type P = MultiPaxos<Cmd>;
type O = Out<P, Cmd>;

pub(super) fn ids(n: u8) -> Vec<NodeId> {
    (0..n).map(NodeId).collect()
}

pub(super) fn b(round: u64, node: u8) -> Ballot {
    Ballot { round, node }
}

/// n1's promise to ballot (1, 0), with nothing accepted: what makes node 0 of 3 leader.
fn empty_promise<C>() -> PaxosMsg<C> {
    PaxosMsg::Promise {
        ballot: b(1, 0),
        from: 1,
        accepted: vec![],
        start: 1,
        end: 1,
    }
}

/// Commands as values: `Some` a command, `None` a no-op.
pub(super) fn vals(cmds: Vec<Option<Cmd>>) -> Values<Cmd> {
    Values::new(cmds.into_iter().map(Value::from).collect())
}

/// The configurations of a cluster booted with voters n0, n1, n2.
pub(super) fn three() -> Configs {
    Configs::initial(Membership::voters(NodeSet::first(3)))
}

/// The write that keeps snapshot `s` of a 3-node cluster that never changed.
pub(super) fn snap_write(s: Snapshot) -> PaxosWrite<Cmd> {
    PaxosWrite::Snapshot {
        snapshot: s,
        configs: three(),
    }
}

pub(super) fn e(ballot: Ballot, cmd: Option<Cmd>) -> Option<Entry<Cmd>> {
    Some(Entry {
        ballot,
        value: cmd.into(),
    })
}

/// Node 0 of 3, having promised (2, 2) and holding `log`, campaigns in round 3 and wins on
/// n1's promise reporting `accepted` from slot 1. Returns it and the effects of winning.
fn win_round_3(
    cfg: &Config,
    log: Vec<Option<Entry<Cmd>>>,
    accepted: Vec<Option<Entry<Cmd>>>,
) -> (P, O) {
    let d = PaxosDurable {
        promised: b(2, 2),
        tried: 0,
        snapshot: None,
        log,
        configs: Configs::default(),
    };
    let mut r = boot_with(0, 3, cfg, d);
    fire(&mut r, PaxosTimer::Election);
    let end = 1 + accepted.len() as Slot;
    let out = recv(
        &mut r,
        1,
        PaxosMsg::Promise {
            ballot: b(3, 0),
            from: 1,
            accepted,
            start: 1,
            end,
        },
    );
    (r, out)
}

fn boot_with(id: u8, n: u8, cfg: &Config, d: PaxosDurable<Cmd>) -> P {
    let mut out = Effects::new();
    P::boot(NodeId(id), &ids(n), Some(&d), cfg, &mut out)
}

fn fresh(id: u8, n: u8) -> P {
    boot_with(id, n, &Config::default(), PaxosDurable::default())
}

pub(super) fn recv(r: &mut P, from: u8, msg: PaxosMsg<Cmd>) -> O {
    let mut out = Effects::new();
    r.on_message(NodeId(from), msg, &mut out);
    out
}

pub(super) fn fire(r: &mut P, t: PaxosTimer) -> O {
    let mut out = Effects::new();
    r.on_timer(t, &mut out);
    out
}

fn propose(r: &mut P, cmds: Vec<Cmd>) -> O {
    let mut out = Effects::new();
    r.propose(cmds, &mut out);
    out
}

pub(super) fn sends(out: &O) -> Vec<(u8, PaxosMsg<Cmd>)> {
    out.sends().map(|(to, m)| (to.0, m.clone())).collect()
}

fn writes(out: &O) -> Vec<PaxosWrite<Cmd>> {
    out.writes().cloned().collect()
}

fn commits(out: &O) -> Vec<(Slot, Cmd)> {
    out.commits().map(|(s, c)| (s, *c)).collect()
}

/// Position of the first effect matching `f`.
fn at(
    out: &O,
    f: impl Fn(&Effect<PaxosMsg<Cmd>, PaxosWrite<Cmd>, PaxosTimer, Cmd>) -> bool,
) -> usize {
    out.iter().position(f).expect("effect present")
}

fn accept(ballot: Ballot, first: Slot, cmds: Vec<Option<Cmd>>, commit: Slot) -> PaxosMsg<Cmd> {
    PaxosMsg::Accept {
        ballot,
        first,
        cmds: vals(cmds),
        commit,
    }
}

fn accepted(ballot: Ballot, first: Slot, upto: Slot, commit: Slot, behind: bool) -> PaxosMsg<Cmd> {
    PaxosMsg::Accepted {
        ballot,
        first,
        upto,
        commit,
        behind,
    }
}

fn nack(ballot: Ballot, promised: Ballot) -> PaxosMsg<Cmd> {
    PaxosMsg::Nack { ballot, promised }
}

/// Node 0 of an `n`-node cluster, leading ballot (1, 0) with an empty log.
fn leader(n: u8) -> P {
    leader_with(n, &Config::default())
}

/// [`leader`], configured by `cfg`.
fn leader_with(n: u8, cfg: &Config) -> P {
    let mut r = boot_with(0, n, cfg, PaxosDurable::default());
    fire(&mut r, PaxosTimer::Election);
    for p in 1..crate::quorum(n as usize) as u8 {
        recv(&mut r, p, empty_promise());
    }
    assert_eq!(r.status().role, Role::Leader);
    r
}

/// Node 0 of 3 campaigning with ballot (1, 0), whose own acceptor then promises `ballot` to n1.
/// Returns it and the effects of that promise.
fn candidate_whose_acceptor_promised(ballot: Ballot) -> (P, O) {
    let mut r = fresh(0, 3);
    fire(&mut r, PaxosTimer::Election);
    let out = recv(&mut r, 1, PaxosMsg::Prepare { ballot, from: 1 });
    assert_eq!(r.status().role, Role::Candidate);
    (r, out)
}

/// Rebuild a replica's durable image from the writes it emitted.
fn image(ws: &[PaxosWrite<Cmd>]) -> PaxosDurable<Cmd> {
    let mut d = PaxosDurable::default();
    for w in ws {
        P::apply_write(&mut d, w);
    }
    d
}

// --- Ballots and phase 1 -----------------------------------------------------------------------

#[test]
fn ballots_order_by_round_then_node() {
    // PMS §2.2: proposal numbers are totally ordered and disjoint per proposer.
    assert!(b(1, 2) < b(2, 0));
    assert!(b(2, 0) < b(2, 1));
    assert!(Ballot::ZERO < b(1, 0));
}

#[test]
fn campaign_makes_the_round_durable_before_preparing() {
    // PMMC: a proposer never reuses a ballot; the tried round is durable before phase 1a.
    let mut r = fresh(1, 3);
    let out = fire(&mut r, PaxosTimer::Election);
    assert_eq!(writes(&out), vec![PaxosWrite::Tried(1)]);
    assert_eq!(
        sends(&out),
        vec![
            (
                0,
                PaxosMsg::Prepare {
                    ballot: b(1, 1),
                    from: 1
                }
            ),
            (
                2,
                PaxosMsg::Prepare {
                    ballot: b(1, 1),
                    from: 1
                }
            )
        ]
    );
    assert!(
        at(&out, |e| matches!(e, Effect::Persist(_)))
            < at(&out, |e| matches!(e, Effect::Send { .. }))
    );
    assert_eq!(r.status().role, Role::Candidate);
    assert_eq!(r.status().term, 1);
    // A candidate has not promised its own ballot yet: its acceptor still serves the old leader.
    assert_eq!(r.promised(), Ballot::ZERO);
}

#[test]
fn acceptor_persists_promise_before_promising() {
    // PMS §2.2 phase 1b, made durable first.
    let mut r = fresh(1, 3);
    let out = recv(
        &mut r,
        0,
        PaxosMsg::Prepare {
            ballot: b(1, 0),
            from: 1,
        },
    );
    assert_eq!(writes(&out), vec![PaxosWrite::Promise(b(1, 0))]);
    assert_eq!(sends(&out), vec![(0, empty_promise())]);
    assert!(
        at(&out, |e| matches!(e, Effect::Persist(_)))
            < at(&out, |e| matches!(e, Effect::Send { .. }))
    );
    assert_eq!(r.promised(), b(1, 0));
}

#[test]
fn a_repeated_prepare_at_the_promised_ballot_is_promised_again() {
    // PMS §2.2 (P1a) refuses only ballots *below* the promise: phase 1b is idempotent, so a
    // duplicated prepare can stand in for a promise the network lost.
    let mut r = fresh(1, 3);
    let prepare = PaxosMsg::Prepare {
        ballot: b(1, 0),
        from: 1,
    };
    let first = recv(&mut r, 0, prepare.clone());
    let again = recv(&mut r, 0, prepare);
    let promise = empty_promise();
    assert_eq!(sends(&first), vec![(0, promise.clone())]);
    assert_eq!(sends(&again), vec![(0, promise)]);
    assert_eq!(writes(&again), vec![], "the promise is durable already");
}

#[test]
fn acceptor_refuses_prepares_and_accepts_below_its_promise() {
    // PMS §2.2 (P1a): a promise is never broken, neither by a promise nor by an acceptance.
    let requests = [
        PaxosMsg::Prepare {
            ballot: b(1, 0),
            from: 1,
        },
        accept(b(1, 0), 1, vec![Some(5)], 0),
    ];
    for msg in requests {
        let d = PaxosDurable {
            promised: b(2, 2),
            tried: 0,
            snapshot: None,
            log: vec![],
            configs: Configs::default(),
        };
        let mut r = boot_with(1, 3, &Config::default(), d);
        let out = recv(&mut r, 0, msg.clone());
        assert_eq!(sends(&out), vec![(0, nack(b(1, 0), b(2, 2)))], "{msg:?}");
        assert!(writes(&out).is_empty(), "{msg:?}");
        assert_eq!((r.promised(), r.log()), (b(2, 2), &[][..]), "{msg:?}");
    }
}

#[test]
fn promise_reports_every_accepted_value_from_the_asked_slot() {
    // PMS §2.2: the promise carries the highest-numbered proposal accepted, per slot.
    let d = PaxosDurable {
        promised: b(1, 0),
        tried: 0,
        snapshot: None,
        log: vec![e(b(1, 0), Some(5)), None, e(b(1, 0), Some(7))],
        configs: Configs::default(),
    };
    let mut r = boot_with(1, 3, &Config::default(), d);
    let out = recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(2, 2),
            from: 2,
        },
    );
    assert_eq!(
        sends(&out),
        vec![(
            2,
            PaxosMsg::Promise {
                ballot: b(2, 2),
                from: 2,
                accepted: vec![None, e(b(1, 0), Some(7))],
                start: 2,
                end: 4,
            }
        )]
    );
}

#[test]
fn new_leader_reproposes_highest_ballot_values_and_fills_gaps_with_noops() {
    // PMS §2.2 (P2c) and §3: highest-ballot value per slot; no-ops in the gaps.
    let (mut r, out) = win_round_3(
        &Config::default(),
        vec![e(b(1, 1), Some(10))],
        vec![e(b(2, 2), Some(20)), None, e(b(1, 1), Some(30))],
    );
    assert_eq!(r.ballot(), b(3, 0), "the round goes above every round seen");
    assert_eq!(r.status().role, Role::Leader);
    let cmds = vec![Some(20), None, Some(30)];
    assert_eq!(
        writes(&out),
        vec![
            PaxosWrite::Promise(b(3, 0)),
            PaxosWrite::Accept {
                ballot: b(3, 0),
                first: 1,
                cmds: vals(cmds.clone())
            }
        ]
    );
    let acc = accept(b(3, 0), 1, cmds, 0);
    assert_eq!(sends(&out), vec![(1, acc.clone()), (2, acc)]);
    // A quorum accepts: slots 1..3 are chosen; the no-op in slot 2 is not reported.
    let out = recv(&mut r, 2, accepted(b(3, 0), 1, 3, 0, false));
    assert_eq!(commits(&out), vec![(1, 20), (3, 30)]);
    assert_eq!(
        r.committed(),
        BTreeMap::from([(1, Some(20)), (2, None), (3, Some(30))])
    );
}

#[test]
fn stale_or_duplicate_promises_are_ignored() {
    let mut r = fresh(0, 5);
    fire(&mut r, PaxosTimer::Election);
    let promise = empty_promise();
    recv(&mut r, 1, promise.clone());
    let out = recv(&mut r, 1, promise);
    assert!(out.is_empty(), "the same acceptor counts once");
    assert_eq!(r.status().role, Role::Candidate);
    let out = recv(
        &mut r,
        2,
        PaxosMsg::Promise {
            ballot: b(9, 9),
            from: 1,
            accepted: vec![],
            start: 1,
            end: 1,
        },
    );
    assert!(out.is_empty());
    recv(&mut r, 3, empty_promise());
    assert_eq!(r.status().role, Role::Leader, "three of five");
}

/// PMS §2.2 with bounded messages: an acceptor's promise of five slots with `max_batch` 2
/// travels as three chunks sent at once, each naming the five slots (1..6) the whole promise
/// reports.
#[test]
fn a_promise_is_sent_in_chunks_of_max_batch_slots() {
    let cfg = Config {
        max_batch: 2,
        ..Config::default()
    };
    let d = PaxosDurable {
        promised: b(1, 0),
        tried: 0,
        snapshot: None,
        log: (1..=5).map(|v| e(b(1, 0), Some(v))).collect(),
        configs: Configs::default(),
    };
    let mut r = boot_with(1, 3, &cfg, d);
    let out = recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(2, 2),
            from: 1,
        },
    );
    let chunks: Vec<(Slot, usize, Slot, Slot)> = sends(&out)
        .into_iter()
        .map(|(to, m)| match m {
            PaxosMsg::Promise {
                from,
                accepted,
                start,
                end,
                ..
            } if to == 2 => (from, accepted.len(), start, end),
            other => panic!("only promises to n2: {other:?}"),
        })
        .collect();
    assert_eq!(chunks, vec![(1, 2, 1, 6), (3, 2, 1, 6), (5, 1, 1, 6)]);
}

/// The candidate side: chunks arriving out of order, one of them twice, count the promise
/// only once every slot of it is in, and recovery then re-proposes every reported value.
#[test]
fn a_promise_counts_once_every_chunk_is_in_whatever_their_order() {
    let mut r = fresh(0, 3);
    fire(&mut r, PaxosTimer::Election);
    let chunk = |from: Slot, vals: &[u32]| PaxosMsg::Promise {
        ballot: b(1, 0),
        from,
        accepted: vals.iter().map(|&v| e(b(0, 1), Some(v))).collect(),
        start: 1,
        end: 6,
    };
    for msg in [chunk(5, &[50]), chunk(1, &[10, 20]), chunk(5, &[50])] {
        recv(&mut r, 1, msg);
        assert_eq!(
            r.status().role,
            Role::Candidate,
            "slots 3 and 4 are missing"
        );
    }
    recv(&mut r, 1, chunk(3, &[30, 40]));
    assert_eq!(r.status().role, Role::Leader);
    let cmds: Vec<Option<Cmd>> = r
        .log
        .iter()
        .map(|e| e.as_ref().and_then(|e| e.value.cmd().copied()))
        .collect();
    assert_eq!(cmds, [10, 20, 30, 40, 50].map(Some));
}

/// A chunk that lies outside the slots its own promise names (no acceptor sends one; a
/// damaged or forged message might) is ignored: no panic, no promise counted.
#[test]
fn a_chunk_outside_its_promise_is_ignored() {
    let mut r = fresh(0, 3);
    fire(&mut r, PaxosTimer::Election);
    for (from, start, end) in [(1, 2, 6), (4, 1, 5)] {
        let out = recv(
            &mut r,
            1,
            PaxosMsg::Promise {
                ballot: b(1, 0),
                from,
                accepted: vec![e(b(0, 1), Some(1)), e(b(0, 1), Some(2))],
                start,
                end,
            },
        );
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(r.status().role, Role::Candidate);
    }
}

/// The ranges a candidate keeps per promiser merge when they touch or overlap, and cover a
/// range only when one of them holds it whole.
#[test]
fn promise_ranges_merge_and_cover() {
    use super::phase1::{add_range, covers};
    let mut r = Vec::new();
    add_range(&mut r, 5..7);
    add_range(&mut r, 1..3);
    add_range(&mut r, 4..4); // empty: nothing
    assert_eq!(r, vec![(1, 3), (5, 7)]);
    assert!(covers(&r, 1..3) && covers(&r, 6..7) && covers(&r, 9..9));
    assert!(!covers(&r, 1..6), "slots 3 and 4 are missing");
    add_range(&mut r, 3..5); // touches both: one range
    assert_eq!(r, vec![(1, 7)]);
    add_range(&mut r, 2..9); // overlaps and extends
    add_range(&mut r, 10..12);
    add_range(&mut r, 0..1);
    assert_eq!(r, vec![(0, 9), (10, 12)]);
    assert!(covers(&r, 0..9) && !covers(&r, 8..11));
}

// --- Phase 2 and learning -------------------------------------------------------------------

#[test]
fn leader_batches_one_accept_and_commits_on_a_quorum() {
    // PMS §3: with phase 1 done, a batch of commands costs one phase-2 round trip.
    let mut r = leader(3);
    let out = propose(&mut r, vec![1, 2]);
    let cmds = vec![Some(1), Some(2)];
    assert_eq!(
        writes(&out),
        vec![PaxosWrite::Accept {
            ballot: b(1, 0),
            first: 1,
            cmds: vals(cmds.clone())
        }]
    );
    assert_eq!(
        sends(&out),
        vec![
            (1, accept(b(1, 0), 1, cmds.clone(), 0)),
            (2, accept(b(1, 0), 1, cmds, 0))
        ]
    );
    assert!(commits(&out).is_empty(), "the leader alone is no quorum");
    let out = recv(&mut r, 2, accepted(b(1, 0), 1, 2, 0, false));
    assert_eq!(commits(&out), vec![(1, 1), (2, 2)]);
    assert_eq!(r.status().commit, 2);
    // A late acceptance changes nothing.
    assert!(recv(&mut r, 1, accepted(b(1, 0), 1, 2, 0, false)).is_empty());
}

/// The values of the accepts in `out`'s sends and writes, in order.
fn accepted_values(out: &O) -> (Vec<Values<Cmd>>, Vec<Values<Cmd>>) {
    let sent = out.sends().filter_map(|(_, m)| match m {
        PaxosMsg::Accept { cmds, .. } => Some(Values::clone(cmds)),
        _ => None,
    });
    let written = out.writes().filter_map(|w| match w {
        PaxosWrite::Accept { cmds, .. } => Some(Values::clone(cmds)),
        _ => None,
    });
    (sent.collect(), written.collect())
}

#[test]
fn a_new_run_is_one_copy_shared_by_the_write_and_every_accept() {
    let mut r = leader(3);
    let (sent, written) = accepted_values(&propose(&mut r, vec![1, 2]));
    assert_eq!((sent.len(), written.len()), (2, 1));
    assert_eq!(written[0], vals(vec![Some(1), Some(2)]));
    for s in &sent {
        assert!(Values::ptr_eq(s, &written[0]), "an accept copied the run");
    }
}

/// A batch proposed while nothing waits is queued and taken in its own buffer: the run the
/// leader persists and sends is the proposal's vector, not a copy through the queue. (With
/// the commands the runtime proposes, client requests, whose value is their own size.)
#[test]
fn a_batch_proposed_to_an_empty_queue_is_persisted_in_its_own_buffer() {
    use crate::sm::{KvOp, Request};
    type R = Request<KvOp>;
    assert_eq!(std::mem::size_of::<Value<R>>(), std::mem::size_of::<R>());
    let mut out = Effects::new();
    let mut r = MultiPaxos::<R>::boot(NodeId(0), &ids(3), None, &Config::default(), &mut out);
    r.on_timer(PaxosTimer::Election, &mut out);
    let promise = empty_promise();
    r.on_message(NodeId(1), promise, &mut out);
    assert_eq!(r.status().role, Role::Leader);
    let request = |seq| Request {
        client: 1,
        seq,
        acked: 0,
        op: KvOp::Get(seq),
    };
    for round in 0..2u64 {
        let batch: Vec<R> = (1..=3).map(|i| request(3 * round + i)).collect();
        let (buffer, expected) = (batch.as_ptr() as usize, batch.clone());
        let mut out = Effects::new();
        r.propose(batch, &mut out);
        let written: Vec<_> = out
            .writes()
            .filter_map(|w| match w {
                PaxosWrite::Accept { cmds, .. } => Some(Values::clone(cmds)),
                _ => None,
            })
            .collect();
        assert_eq!(written.len(), 1, "round {round}: one run");
        let expected: Vec<Value<R>> = expected.into_iter().map(Value::Cmd).collect();
        assert_eq!(*written[0], expected, "round {round}");
        assert_eq!(
            written[0].as_ptr() as usize,
            buffer,
            "round {round}: the run was copied out of the proposal's buffer"
        );
    }
}

#[test]
fn an_acceptor_stores_an_accept_it_takes_whole_as_the_message_and_copies_a_part() {
    let mut r = boot_with(1, 3, &Config::default(), PaxosDurable::default());
    let whole = vals(vec![Some(1), Some(2)]);
    let msg = |first, cmds: &Values<Cmd>, commit| PaxosMsg::Accept {
        ballot: b(1, 0),
        first,
        cmds: Values::clone(cmds),
        commit,
    };
    let (_, written) = accepted_values(&recv(&mut r, 0, msg(1, &whole, 0)));
    assert!(
        Values::ptr_eq(&written[0], &whole),
        "the acceptor copied an accept it took whole"
    );
    // A heartbeat: slots 1 and 2 are chosen. Then only slot 3 is written, a copy of it.
    recv(&mut r, 0, msg(3, &Values::default(), 2));
    assert_eq!(r.status().commit, 2);
    let overlapping = vals(vec![Some(1), Some(2), Some(3)]);
    let (_, written) = accepted_values(&recv(&mut r, 0, msg(1, &overlapping, 2)));
    assert_eq!(written, vec![vals(vec![Some(3)])]);
    assert!(!Values::ptr_eq(&written[0], &overlapping));
}

/// The commands handed back busy, in order.
fn busy(out: &O) -> Vec<Cmd> {
    out.refused_busy().copied().collect()
}

#[test]
fn a_leader_at_its_uncommitted_cap_hands_proposals_back_busy_until_slots_are_chosen() {
    // The cap counts open slots and the queue behind the window (etcd-raft's
    // MaxUncommittedEntriesSize, in values), so the queue is bounded too.
    let cfg = Config {
        max_uncommitted: 4,
        window: 2,
        ..Config::default()
    };
    let mut r = leader_with(3, &cfg);
    let out = propose(&mut r, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(busy(&out), vec![5, 6]);
    assert_eq!(r.uncommitted(), 4, "slots 1 and 2 open, 3 and 4 queued");
    assert_eq!(r.proposed(), 2);
    let out = propose(&mut r, vec![7]);
    assert_eq!(busy(&out), vec![7]);
    assert_eq!(out.len(), 1, "a refused proposal changes nothing else");

    // Slots 1 and 2 are chosen: the window moves on to the queue, and two values fit again.
    let out = recv(&mut r, 2, accepted(b(1, 0), 1, 2, 0, false));
    assert_eq!(commits(&out), vec![(1, 1), (2, 2)]);
    assert_eq!((r.proposed(), r.uncommitted()), (4, 2));
    let out = propose(&mut r, vec![8, 9, 10]);
    assert_eq!(busy(&out), vec![10]);
    assert_eq!(r.uncommitted(), 4);
    let RoleState::Leader { queue, .. } = &r.state else {
        panic!("still leads")
    };
    assert_eq!(
        queue.iter().cloned().collect::<Vec<_>>(),
        *vals(vec![Some(8), Some(9)])
    );
}

#[test]
fn accept_batches_are_cut_at_max_batch() {
    let cfg = Config {
        max_batch: 2,
        ..Config::default()
    };
    let mut r = fresh(0, 1);
    r.cfg = Fixed::new(cfg);
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(
        r.status().role,
        Role::Leader,
        "a cluster of one leads at once"
    );
    let out = propose(&mut r, vec![1, 2, 3]);
    assert_eq!(
        commits(&out),
        vec![(1, 1), (2, 2), (3, 3)],
        "a majority of one"
    );
    let mut r = leader(2);
    r.cfg = Fixed::new(Config {
        max_batch: 2,
        ..Config::default()
    });
    let out = propose(&mut r, vec![1, 2, 3]);
    assert_eq!(
        sends(&out),
        vec![
            (1, accept(b(1, 0), 1, vec![Some(1), Some(2)], 0)),
            (1, accept(b(1, 0), 3, vec![Some(3)], 0))
        ]
    );
}

#[test]
fn acceptor_persists_acceptance_before_answering() {
    // PMS §2.2 phase 2b, durable first.
    let mut r = fresh(1, 3);
    let out = recv(&mut r, 0, accept(b(1, 0), 1, vec![Some(5)], 0));
    assert_eq!(
        writes(&out),
        vec![PaxosWrite::Accept {
            ballot: b(1, 0),
            first: 1,
            cmds: vals(vec![Some(5)])
        }]
    );
    assert_eq!(sends(&out), vec![(0, accepted(b(1, 0), 1, 1, 0, false))]);
    assert!(
        at(&out, |e| matches!(e, Effect::Persist(_)))
            < at(&out, |e| matches!(e, Effect::Send { .. }))
    );
    assert_eq!(r.promised(), b(1, 0), "accepting raises the promise");
    assert_eq!(r.status().leader, Some(NodeId(0)));
}

#[test]
fn follower_learns_only_slots_accepted_in_the_leaders_ballot() {
    // PMS §2.3: a learner may only conclude "chosen" for the value of the leader's ballot.
    let d = PaxosDurable {
        promised: b(1, 1),
        tried: 0,
        snapshot: None,
        log: vec![e(b(1, 1), Some(9))],
        configs: Configs::default(),
    };
    let mut r = boot_with(2, 3, &Config::default(), d);
    let out = recv(&mut r, 0, accept(b(2, 0), 2, vec![], 1));
    assert!(
        commits(&out).is_empty(),
        "slot 1 holds an older ballot's value"
    );
    // The leader has no open slot (its commit point is its last slot): nothing to answer for.
    assert_eq!(sends(&out), vec![(0, accepted(b(2, 0), 2, 1, 0, true))]);
    let out = recv(&mut r, 0, accept(b(2, 0), 1, vec![Some(4)], 1));
    assert_eq!(commits(&out), vec![(1, 4)]);
    assert_eq!(sends(&out), vec![(0, accepted(b(2, 0), 1, 1, 1, false))]);
}

#[test]
fn an_accept_leaves_slots_at_or_below_the_commit_point_as_they_are() {
    // Slots up to the commit point hold their chosen value: a batch re-sent over them (by a
    // later leader, at its ballot) writes only the slots above.
    let mut r = fresh(1, 3);
    recv(&mut r, 0, accept(b(1, 0), 1, vec![Some(1), Some(2)], 0));
    let out = recv(&mut r, 0, accept(b(1, 0), 3, vec![], 2));
    assert_eq!(commits(&out), vec![(1, 1), (2, 2)]);
    assert_eq!(
        writes(&out),
        vec![],
        "a heartbeat at the promised ballot changes nothing durable"
    );
    let out = recv(
        &mut r,
        2,
        accept(b(2, 2), 1, vec![Some(1), Some(2), Some(3)], 2),
    );
    assert_eq!(
        writes(&out),
        vec![PaxosWrite::Accept {
            ballot: b(2, 2),
            first: 3,
            cmds: vals(vec![Some(3)])
        }]
    );
    assert_eq!(
        r.log(),
        &[
            e(b(1, 0), Some(1)),
            e(b(1, 0), Some(2)),
            e(b(2, 2), Some(3))
        ]
    );
}

#[test]
fn an_accept_lost_to_every_acceptor_is_resent_after_a_heartbeat() {
    // Slot 1's Accept reached nobody, slot 2's did: the leader cannot tell loss from delay,
    // and slot 2 cannot be applied before slot 1 is chosen. The follower can: the heartbeat
    // names the leader's last slot, so it says it is behind, and the leader re-sends from the
    // first slot it has not acknowledged.
    let mut r = leader(3);
    propose(&mut r, vec![1]); // lost to both followers
    propose(&mut r, vec![2]);
    recv(&mut r, 1, accepted(b(1, 0), 2, 2, 0, false));
    assert_eq!(r.status().commit, 0, "slot 2 waits for slot 1");
    let hb = fire(&mut r, PaxosTimer::Heartbeat);
    assert!(sends(&hb).contains(&(1, accept(b(1, 0), 3, vec![], 0))));

    // The follower's side: it holds slot 2 only, so the heartbeat finds it behind, and its
    // answer acknowledges nothing from its commit point on (slot 1 is missing).
    let mut f = boot_with(1, 3, &Config::default(), PaxosDurable::default());
    recv(&mut f, 0, accept(b(1, 0), 2, vec![Some(2)], 0));
    let out = recv(&mut f, 0, accept(b(1, 0), 3, vec![], 0));
    assert_eq!(sends(&out), vec![(0, accepted(b(1, 0), 1, 0, 0, true))]);

    let out = recv(&mut r, 1, accepted(b(1, 0), 1, 0, 0, true));
    assert_eq!(
        sends(&out),
        vec![(1, accept(b(1, 0), 1, vec![Some(1), Some(2)], 0))]
    );
    let out = recv(&mut r, 1, accepted(b(1, 0), 1, 2, 0, false));
    assert_eq!(commits(&out), vec![(1, 1), (2, 2)]);
}

#[test]
fn catch_up_resends_from_the_first_open_slot_the_follower_has_not_acknowledged() {
    // Five nodes: n1's acknowledgement of slot 1 does not choose it. n1 lost slot 2's Accept
    // and says it is behind, with the leader's commit point: the leader re-sends from slot 2,
    // not from slot 1 that n1 holds already.
    let mut r = leader(5);
    propose(&mut r, vec![10]);
    propose(&mut r, vec![11]);
    propose(&mut r, vec![12]);
    recv(&mut r, 1, accepted(b(1, 0), 1, 1, 0, false));
    assert_eq!(r.status().commit, 0);
    let out = recv(&mut r, 1, accepted(b(1, 0), 1, 1, 0, true));
    assert_eq!(
        sends(&out),
        vec![(1, accept(b(1, 0), 2, vec![Some(11), Some(12)], 0))]
    );
}

#[test]
fn an_acknowledgement_lost_on_the_way_is_given_again_on_the_next_heartbeat() {
    // Both followers accepted slot 1 but both answers were lost: the leader would wait for
    // ever. The heartbeat's answer acknowledges every open slot held in the leader's ballot.
    let mut r = leader(3);
    propose(&mut r, vec![1]);
    let mut f = boot_with(1, 3, &Config::default(), PaxosDurable::default());
    recv(&mut f, 0, accept(b(1, 0), 1, vec![Some(1)], 0)); // its answer is lost
    let out = recv(&mut f, 0, accept(b(1, 0), 2, vec![], 0));
    let reply = accepted(b(1, 0), 1, 1, 0, false);
    assert_eq!(sends(&out), vec![(0, reply.clone())]);
    let out = recv(&mut r, 1, reply);
    assert_eq!(commits(&out), vec![(1, 1)]);
}

#[test]
fn a_heartbeat_answer_acknowledges_slots_the_follower_knows_chosen() {
    // The follower learned slot 1 chosen under ballot (1, 0); a new leader of ballot (2, 1)
    // re-proposed it (phase 1 recovered the chosen value) but that Accept's answer was lost.
    // A chosen slot is kept as it is, not re-accepted, yet the answer must still count it,
    // or the new leader could never commit past slot 1.
    let mut f = boot_with(2, 3, &Config::default(), PaxosDurable::default());
    recv(&mut f, 0, accept(b(1, 0), 1, vec![Some(1)], 1));
    assert_eq!(f.status().commit, 1);
    let out = recv(&mut f, 1, accept(b(2, 1), 2, vec![], 0));
    assert_eq!(sends(&out), vec![(1, accepted(b(2, 1), 1, 1, 1, false))]);
}

// --- Catch-up flow control (one batch on its way per replica) ----------------------------------

/// Node 0 of 3 leading ballot (1, 0) with `max_batch` 2, slots 1-3 chosen (n1 accepted them),
/// after n2 said it was behind with nothing and got the catch-up batch of slots 1-2: chosen
/// slots re-sent at the leader's ballot, one batch from its commit point.
fn leader_catching_up_n2() -> P {
    let mut r = leader(3);
    r.cfg = Fixed::new(Config {
        max_batch: 2,
        ..Config::default()
    });
    propose(&mut r, vec![1, 2, 3]);
    recv(&mut r, 1, accepted(b(1, 0), 1, 3, 0, false));
    assert_eq!(r.status().commit, 3);
    let out = recv(&mut r, 2, accepted(b(1, 0), 4, 3, 0, true));
    assert_eq!(
        sends(&out),
        vec![(2, accept(b(1, 0), 1, vec![Some(1), Some(2)], 3))]
    );
    r
}

#[test]
fn a_burst_of_behind_answers_sends_one_catch_up_batch() {
    // Every Accept and heartbeat a lagging replica gets is answered "behind" until the batch
    // arrives; each used to re-send a batch. With one on its way they send nothing (the
    // analogue of etcd raft's probe state: one append in flight).
    let mut r = leader_catching_up_n2();
    for _ in 0..3 {
        let out = recv(&mut r, 2, accepted(b(1, 0), 4, 3, 0, true));
        assert_eq!(sends(&out), vec![]);
    }
    // New slots go to it as usual; its behind answer to them re-sends nothing either.
    let out = propose(&mut r, vec![4]);
    assert!(sends(&out).contains(&(2, accept(b(1, 0), 4, vec![Some(4)], 3))));
    let out = recv(&mut r, 2, accepted(b(1, 0), 4, 4, 0, true));
    assert_eq!(sends(&out), vec![]);
}

#[test]
fn the_next_catch_up_batch_goes_once_an_answer_shows_the_first_arrived() {
    let mut r = leader_catching_up_n2();
    // Its answer to the batch: it learned slots 1-2 chosen, past the batch's last slot.
    let out = recv(&mut r, 2, accepted(b(1, 0), 1, 2, 2, true));
    assert_eq!(sends(&out), vec![(2, accept(b(1, 0), 3, vec![Some(3)], 3))]);
    // That one is on its way now: a heartbeat's answer sent before it arrived re-sends nothing.
    let out = recv(&mut r, 2, accepted(b(1, 0), 4, 3, 2, true));
    assert_eq!(sends(&out), vec![]);
    // Caught up (not behind): nothing is on its way any more, so the next "behind" (slot 4
    // lost) sends at once.
    recv(&mut r, 2, accepted(b(1, 0), 3, 3, 3, false));
    propose(&mut r, vec![4]);
    let out = recv(&mut r, 2, accepted(b(1, 0), 5, 3, 3, true));
    assert_eq!(sends(&out), vec![(2, accept(b(1, 0), 4, vec![Some(4)], 3))]);
}

#[test]
fn a_lost_catch_up_batch_is_resent_after_two_heartbeats() {
    let mut r = leader_catching_up_n2();
    let hb = |commit| {
        vec![
            (1, accept(b(1, 0), 4, vec![], commit)),
            (2, accept(b(1, 0), 4, vec![], commit)),
        ]
    };
    // The batch is lost. The first heartbeat after it went only counts it (it may have gone
    // out just before); the answer to that heartbeat says nothing new.
    let out = fire(&mut r, PaxosTimer::Heartbeat);
    assert_eq!(sends(&out), hb(3));
    assert_eq!(
        sends(&recv(&mut r, 2, accepted(b(1, 0), 4, 3, 0, true))),
        vec![]
    );
    // The second: on its way for a whole heartbeat interval, it is deemed lost and sent again.
    let out = fire(&mut r, PaxosTimer::Heartbeat);
    let mut want = hb(3);
    want.push((2, accept(b(1, 0), 1, vec![Some(1), Some(2)], 3)));
    assert_eq!(sends(&out), want);
    // Sent again, it is the one on its way.
    assert_eq!(
        sends(&recv(&mut r, 2, accepted(b(1, 0), 4, 3, 0, true))),
        vec![]
    );
}

#[test]
fn a_new_leader_starts_with_no_catch_up_batch_on_its_way() {
    // Catch-up state is the leadership's: deposed with a batch on its way to n2, then elected
    // again in a later ballot, the leader sends n2's first "behind" answer a batch at once.
    let mut r = leader_catching_up_n2();
    recv(&mut r, 1, nack(b(1, 0), b(2, 1)));
    assert_eq!(r.status().role, Role::Follower);
    fire(&mut r, PaxosTimer::Election);
    recv(
        &mut r,
        1,
        PaxosMsg::Promise {
            ballot: b(3, 0),
            from: 4,
            accepted: vec![],
            start: 4,
            end: 4,
        },
    );
    assert_eq!(r.status().role, Role::Leader);
    let RoleState::Leader { catch_up, .. } = &r.state else {
        unreachable!("leads")
    };
    assert!(catch_up.iter().all(Option::is_none));
    let out = recv(&mut r, 2, accepted(b(3, 0), 4, 3, 0, true));
    assert_eq!(
        sends(&out),
        vec![(2, accept(b(3, 0), 1, vec![Some(1), Some(2)], 3))]
    );
}

#[test]
fn no_catch_up_batch_goes_to_a_replica_receiving_the_snapshot() {
    // The snapshot transfer has its own flow (one chunk outstanding); the batch of slots above
    // it goes when the last chunk is acknowledged, and is then the batch on its way.
    let mut r = leader(3);
    r.cfg = Fixed::new(Config {
        max_batch: 2,
        ..Config::default()
    });
    propose(&mut r, vec![1, 2, 3, 4]);
    recv(&mut r, 1, accepted(b(1, 0), 1, 4, 0, false));
    let snapshot = Snapshot {
        slot: 2,
        data: b"ab".as_slice().into(),
    };
    r.compact(snapshot, &mut Effects::new());
    let is_chunk = |m: &PaxosMsg<Cmd>| {
        matches!(
            m,
            PaxosMsg::Snapshot {
                slot: 2,
                offset: 0,
                ..
            }
        )
    };
    let out = recv(&mut r, 2, accepted(b(1, 0), 5, 4, 0, true));
    let sent = sends(&out);
    assert!(
        sent.len() == 1 && sent[0].0 == 2 && is_chunk(&sent[0].1),
        "{sent:?}"
    );
    // Behind answers meanwhile (its commit point 0 is still inside the snapshot) send nothing.
    assert_eq!(
        sends(&recv(&mut r, 2, accepted(b(1, 0), 5, 4, 0, true))),
        vec![]
    );
    let ack = PaxosMsg::SnapshotAck {
        ballot: b(1, 0),
        slot: 2,
        offset: 2,
    };
    let out = recv(&mut r, 2, ack);
    assert_eq!(
        sends(&out),
        vec![(2, accept(b(1, 0), 3, vec![Some(3), Some(4)], 4))]
    );
    // An answer to a heartbeat sent before the snapshot was installed re-sends nothing.
    assert_eq!(
        sends(&recv(&mut r, 2, accepted(b(1, 0), 5, 4, 0, true))),
        vec![]
    );
    assert_eq!(
        sends(&recv(&mut r, 2, accepted(b(1, 0), 5, 4, 2, true))),
        vec![]
    );
}

// --- Leadership ------------------------------------------------------------------------------

#[test]
fn nack_with_a_higher_ballot_deposes_the_leader() {
    let mut r = leader(3);
    let out = recv(
        &mut r,
        1,
        PaxosMsg::Nack {
            ballot: b(1, 0),
            promised: b(2, 1),
        },
    );
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(writes(&out), vec![PaxosWrite::Promise(b(2, 1))]);
    assert!(out
        .iter()
        .any(|e| matches!(e, Effect::CancelTimer(PaxosTimer::Heartbeat))));
    assert_eq!(r.status().term, 2, "the next round goes above the one seen");
    let out = propose(&mut r, vec![3]);
    assert!(matches!(
        out.iter().next(),
        Some(Effect::Redirect {
            cmd: 3,
            leader: None
        })
    ));
}

#[test]
fn nack_naming_the_promise_already_held_ends_the_candidacy_without_a_write() {
    // A candidate's own acceptor promised n1's higher ballot; n2's refusal names the same
    // ballot. The candidacy ends, and nothing new needs to be durable.
    let (mut r, out) = candidate_whose_acceptor_promised(b(2, 1));
    assert_eq!(writes(&out), vec![PaxosWrite::Promise(b(2, 1))]);
    let out = recv(&mut r, 2, nack(b(1, 0), b(2, 1)));
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(writes(&out), vec![], "the promise is durable already");
}

#[test]
fn lease_ignores_prepares_while_the_leader_is_alive() {
    // Leader stability: a follower that heard from its leader does not promise another.
    let mut r = fresh(1, 3);
    recv(&mut r, 0, accept(b(1, 0), 1, vec![], 0));
    let out = recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(5, 2),
            from: 1,
        },
    );
    assert!(out.is_empty());
    assert_eq!(r.promised(), b(1, 0));
    // After the minimum election timeout (no word from the leader) the lease is gone, before
    // its own randomized timeout makes it campaign: its acceptor promises the same prepare,
    // durably, before answering.
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.status().role, Role::Follower, "no bid of its own yet");
    let out = recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(5, 2),
            from: 1,
        },
    );
    assert_eq!(writes(&out), vec![PaxosWrite::Promise(b(5, 2))]);
    assert!(matches!(
        sends(&out)[..],
        [(2, PaxosMsg::Promise { ballot, .. })] if ballot == b(5, 2)
    ));
}

#[test]
fn candidate_backs_off_when_a_live_leader_speaks() {
    let mut r = fresh(2, 3);
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.ballot(), b(1, 2));
    let out = recv(&mut r, 0, accept(b(1, 0), 1, vec![Some(8)], 0));
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(r.status().leader, Some(NodeId(0)));
    assert_eq!(sends(&out), vec![(0, accepted(b(1, 0), 1, 1, 0, false))]);
}

#[test]
fn candidate_whose_acceptor_promised_higher_gives_way() {
    // PMS §2.2: the candidate's own acceptor promises like any other; a proposer may count
    // its own promise only if it is still free, so the higher of two ballots wins.
    let (mut r, out) = candidate_whose_acceptor_promised(b(1, 1));
    assert_eq!(
        sends(&out),
        vec![(
            1,
            PaxosMsg::Promise {
                ballot: b(1, 1),
                from: 1,
                accepted: vec![],
                start: 1,
                end: 1,
            }
        )]
    );
    let out = recv(&mut r, 2, empty_promise());
    assert_eq!(
        r.status().role,
        Role::Follower,
        "a quorum, but our own promise is taken"
    );
    assert_eq!(r.status().leader, Some(NodeId(1)));
    assert!(writes(&out).is_empty() && sends(&out).is_empty());
}

#[test]
fn a_proposer_other_than_n0_counts_itself_in_every_quorum() {
    // PMS §2.2: the proposer's own acceptor is one of the majority, in phase 1 and in phase 2;
    // leases (PMMC §3): the leader counts itself among the members heard from. Node 2, so
    // that its bit is not bit 0.
    let mut r = fresh(2, 3);
    fire(&mut r, PaxosTimer::Election);
    recv(
        &mut r,
        0,
        PaxosMsg::Promise {
            ballot: b(1, 2),
            from: 1,
            accepted: vec![e(b(1, 0), Some(7))],
            start: 1,
            end: 2,
        },
    );
    assert_eq!(r.status().role, Role::Leader, "its promise and n0's");
    let out = recv(&mut r, 0, accepted(b(1, 2), 1, 1, 0, false));
    assert_eq!(
        commits(&out),
        vec![(1, 7)],
        "re-proposed: its acceptance and n0's"
    );
    propose(&mut r, vec![5]);
    let out = recv(&mut r, 0, accepted(b(1, 2), 2, 2, 1, false));
    assert_eq!(
        commits(&out),
        vec![(2, 5)],
        "proposed: its acceptance and n0's"
    );
    // CheckQuorum: itself and n0 were heard, before the first check and after its reset.
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.status().role, Role::Leader);
    recv(&mut r, 0, accepted(b(1, 2), 3, 2, 2, false));
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.status().role, Role::Leader);
}

#[test]
fn leader_without_a_quorum_steps_down_at_the_check() {
    let mut r = leader(3);
    // n1 answers a heartbeat; the first check passes and resets.
    recv(&mut r, 1, accepted(b(1, 0), 1, 0, 0, false));
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.status().role, Role::Leader);
    let out = fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.status().role, Role::Follower, "nobody answered since");
    assert!(out
        .iter()
        .any(|e| matches!(e, Effect::CancelTimer(PaxosTimer::Heartbeat))));
}

// --- Crash-restart ---------------------------------------------------------------------------

#[test]
fn restarted_acceptor_keeps_its_promise_and_proposer_its_round() {
    let mut r = fresh(1, 3);
    let mut ws = writes(&recv(
        &mut r,
        2,
        PaxosMsg::Prepare {
            ballot: b(3, 2),
            from: 1,
        },
    ));
    ws.extend(writes(&fire(&mut r, PaxosTimer::Election)));
    let d = image(&ws);
    assert_eq!(d, r.durable());
    let mut r = boot_with(1, 3, &Config::default(), d);
    assert_eq!(r.status().term, 4);
    let out = recv(&mut r, 0, accept(b(2, 0), 1, vec![Some(1)], 0));
    assert_eq!(
        sends(&out),
        vec![(
            0,
            PaxosMsg::Nack {
                ballot: b(2, 0),
                promised: b(3, 2)
            }
        )]
    );
    fire(&mut r, PaxosTimer::Election);
    assert_eq!(r.ballot(), b(5, 1), "never a round tried before the crash");
}

// --- Invariants ------------------------------------------------------------------------------

#[test]
fn invariants_flag_two_chosen_values_and_acceptance_above_promise() {
    let mut a = fresh(0, 3);
    let mut c = fresh(1, 3);
    let mut d = fresh(2, 3);
    a.log = vec![e(b(1, 0), Some(1))];
    c.log = vec![e(b(1, 0), Some(1))];
    d.log = vec![e(b(2, 2), Some(2))];
    a.promised = b(1, 0);
    c.promised = b(2, 2);
    d.promised = b(2, 2);
    assert!(one_value_per_slot(&[&a, &c, &d]).is_ok());
    c.log = vec![e(b(2, 2), Some(2))];
    let err = one_value_per_slot(&[&a, &c, &d, &{ a.clone() }]).unwrap_err();
    assert!(err.contains("slot 1 chosen twice"), "{err}");
    assert!(accepted_below_promise(&[&a, &c, &d]).is_ok());
    a.promised = Ballot::ZERO;
    assert!(accepted_below_promise(&[&a]).is_err());
    assert!(promise_monotonic(&c, &a).is_err());
    assert!(promise_monotonic(&a, &c).is_ok());
}

// --- Symmetry reduction ----------------------------------------------------------------------

/// The renaming n0 -> n1, n1 -> n2, n2 -> n0.
const ROTATE: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(0)];

#[test]
fn renaming_moves_every_node_id_ballots_included() {
    // Symmetry reduction (models/src/symmetry.rs) renames whole states. A ballot names its
    // proposer, so every ballot the replica holds (promise, own ballot, accepted entries,
    // phase-1 reports) is renamed with the ids and per-member bitmasks; rounds and values stay.
    let mut r = fresh(0, 3);
    r.promised = b(2, 1);
    r.ballot = b(3, 0);
    r.leader = Some(NodeId(2));
    r.log = vec![e(b(1, 2), Some(7)), None, e(Ballot::ZERO, None)];
    r.state = RoleState::Candidate {
        promises: NodeSet::from_bits(0b001),
        p1_from: 1,
        recovered: vec![e(b(1, 1), None)],
        reach: Some((3, NodeId(2))),
        heard: vec![vec![], vec![(1, 3)], vec![(2, 4), (6, 7)]],
    };
    let before = r.clone();
    r.rename(&Renaming(&ROTATE));
    assert_eq!(r.id, NodeId(1));
    assert_eq!((r.promised, r.ballot), (b(2, 2), b(3, 1)));
    assert_eq!(r.leader, Some(NodeId(0)));
    // Ballot::ZERO names nobody and stays below every real ballot.
    assert_eq!(
        r.log,
        vec![e(b(1, 0), Some(7)), None, e(Ballot::ZERO, None)]
    );
    assert_eq!(
        r.state,
        RoleState::Candidate {
            promises: NodeSet::from_bits(0b010),
            p1_from: 1,
            recovered: vec![e(b(1, 2), None)],
            reach: Some((3, NodeId(0))),
            // What n0 reported is n1's now, and so on.
            heard: vec![vec![(2, 4), (6, 7)], vec![], vec![(1, 3)]],
        }
    );
    assert_eq!((r.tried, r.commit), (before.tried, before.commit));
    // A leader's node sets and per-node state (a catch-up batch on its way to the handoff's
    // target) move the same way, and so do the configurations it holds: in its log, backlog
    // and queue, and those that decide its slots.
    let set = |ids: &[u8]| NodeSet::of(ids.iter().map(|&i| NodeId(i)));
    let config = |ids: &[u8]| Value::Config(Membership::voters(set(ids)));
    let leader_state = |heard: &[u8], acks: [&[u8]; 2], promises: &[u8], target: u8, c: &[u8]| {
        // The backlog's ballot names the proposer that leads after the renaming too.
        let ballot = b(1, target);
        RoleState::Leader {
            heard: set(heard),
            acks: acks.iter().map(|a| set(a)).collect(),
            reads: Box::new(read::LeaderReads::new()),
            transfers: vec![None; MAX_NODES],
            catch_up: (0..MAX_NODES)
                .map(|i| {
                    (i == target as usize).then_some(CatchUp {
                        last: 5,
                        need: 3,
                        ticks: 1,
                    })
                })
                .collect(),
            progress: vec![0; MAX_NODES],
            covered: vec![Membership::voters(set(promises))],
            promises: set(promises),
            p1_heard: vec![Vec::new(); MAX_NODES],
            asked: NodeSet::EMPTY,
            backlog: vec![Some(Entry {
                ballot,
                value: config(c),
            })],
            queue: [config(c), Value::Cmd(4)].into(),
            change: None,
            handoff: Some(reconfig::Handoff {
                id: 1,
                target: NodeId(target),
                sent: false,
            }),
        }
    };
    let mut l = before.clone();
    l.state = leader_state(&[0, 2], [&[0, 1], &[2]], &[0, 1], 2, &[0, 1]);
    l.configs = Configs::initial(Membership::voters(set(&[0, 1])));
    l.rename(&Renaming(&ROTATE));
    assert_eq!(
        l.state,
        leader_state(&[1, 0], [&[1, 2], &[0]], &[1, 2], 0, &[1, 2])
    );
    assert_eq!(
        l.configs,
        Configs::initial(Membership::voters(set(&[1, 2])))
    );

    let mut d = before.durable();
    P::rename_durable(&mut d, &Renaming(&ROTATE));
    assert_eq!(d.promised, b(2, 2));
    assert_eq!(d.log, r.log);
    assert_eq!(d.tried, before.tried);
}

#[test]
fn renaming_a_message_renames_every_ballot_in_it() {
    let map = Renaming(&ROTATE);
    let renamed = |mut m: PaxosMsg<Cmd>| {
        P::rename_msg(&mut m, &map);
        m
    };
    assert_eq!(
        renamed(PaxosMsg::Prepare {
            ballot: b(2, 0),
            from: 3
        }),
        PaxosMsg::Prepare {
            ballot: b(2, 1),
            from: 3
        }
    );
    assert_eq!(
        renamed(accept(b(2, 1), 1, vec![Some(5)], 0)),
        accept(b(2, 2), 1, vec![Some(5)], 0)
    );
    assert_eq!(
        renamed(accepted(b(2, 2), 1, 1, 0, true)),
        accepted(b(2, 0), 1, 1, 0, true)
    );
    assert_eq!(
        renamed(PaxosMsg::Promise {
            ballot: b(2, 0),
            from: 1,
            accepted: vec![e(b(1, 2), Some(4)), None],
            start: 1,
            end: 3,
        }),
        PaxosMsg::Promise {
            ballot: b(2, 1),
            from: 1,
            accepted: vec![e(b(1, 0), Some(4)), None],
            start: 1,
            end: 3,
        }
    );
    assert_eq!(
        renamed(PaxosMsg::Nack {
            ballot: b(1, 0),
            promised: b(2, 2)
        }),
        PaxosMsg::Nack {
            ballot: b(1, 1),
            promised: b(2, 0)
        }
    );
}

// --- Bug zoo: each switch changes the behaviour at its rule ----------------------------------

#[test]
fn each_registered_invariant_flags_its_own_violation_only() {
    // The checkers (the driver after every step, the model in every state) see only what
    // these lists register: each must be there and catch its own violation.
    let base = fresh(0, 3);
    let with = |f: &dyn Fn(&mut P)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let steps = [
        // terms never decrease: round 2 tried, then round 1
        (with(&|r| r.tried = 2), with(&|r| r.tried = 1)),
        // promises never go back (the round stays 5 through the tried round)
        (
            with(&|r| (r.tried, r.promised) = (5, b(2, 1))),
            with(&|r| (r.tried, r.promised) = (5, b(1, 1))),
        ),
        // committed slots never change
        (
            with(&|r| (r.commit, r.log) = (1, vec![e(b(1, 0), Some(1))])),
            with(&|r| (r.commit, r.log) = (1, vec![e(b(1, 0), Some(2))])),
        ),
    ];
    let pair = (base.clone(), base.clone());
    crate::replica::assert_each_flags_only_its_own(
        &P::step_invariants(),
        &steps,
        &pair,
        |check, (before, after)| check(before, after).is_err(),
    );

    let accepted = |ballot: Ballot, cmd: Cmd, commit: Slot| {
        with(&|r| (r.promised, r.log, r.commit) = (ballot, vec![e(ballot, Some(cmd))], commit))
    };
    let (one, two) = (accepted(b(1, 0), 1, 0), accepted(b(2, 2), 2, 0));
    let clusters = [
        // two values chosen in slot 1: each by two of the three (four replicas listed)
        vec![one.clone(), one.clone(), two.clone(), two.clone()],
        // an acceptance above the promise
        vec![with(&|r| r.log = vec![e(b(1, 0), Some(1))])],
        // two replicas committed different values in slot 1 (neither chosen by a majority)
        vec![
            accepted(b(1, 0), 1, 1),
            accepted(b(2, 2), 2, 1),
            base.clone(),
        ],
        // two replicas disagree on the configuration of slot 2, which both know (α = 8)
        vec![
            base.clone(),
            with(&|r| {
                r.id = NodeId(1);
                r.configs.learn(2, Membership::voters(NodeSet::first(2)));
            }),
        ],
        // a leader whose ballot holds slot 10 with nothing committed (α = 8)
        vec![{
            let mut l = leader(3);
            l.log = vec![e(b(1, 0), Some(1)); 10];
            l
        }],
    ];
    crate::replica::assert_each_flags_only_its_own(
        &P::cluster_invariants(),
        &clusters,
        &vec![one.clone(), one, base.clone()],
        |check, rs| check(&rs.iter().collect::<Vec<_>>()).is_err(),
    );
}

#[test]
fn refusals_that_cannot_depose_are_obsolete() {
    // A refusal of our own ballot deposes us only if it names a higher promise and we still
    // run that ballot; any other is dead (and ignored).
    let assert_dead = |r: &P, msg: PaxosMsg<Cmd>| {
        assert!(r.obsolete(NodeId(2), &msg), "{msg:?}");
        let mut x = r.clone();
        let out = recv(&mut x, 2, msg.clone());
        assert!(out.is_empty() && x == *r, "{msg:?} was acted on: {out:?}");
    };
    let mut r = leader(3);
    assert_dead(&r, nack(b(1, 0), b(1, 0)));
    assert!(!r.obsolete(NodeId(2), &nack(b(1, 0), b(2, 1))));
    recv(&mut r, 1, nack(b(1, 0), b(2, 1)));
    assert_eq!(r.status().role, Role::Follower);
    assert_dead(&r, nack(b(1, 0), b(5, 2)));
}

#[test]
fn messages_from_itself_or_outside_the_id_space_are_ignored() {
    // A prepare from outside the id space (or looped back from ourselves) must not win a
    // promise, and a host may drop such messages. (A node of the id space outside our
    // configuration may be a leader whose configuration adds us: it is judged by its ballot.)
    let r = fresh(1, 3);
    for from in [1, MAX_NODES as u8] {
        let msg = PaxosMsg::Prepare {
            ballot: b(9, from),
            from: 1,
        };
        assert!(r.obsolete(NodeId(from), &msg), "from n{from}");
        let mut x = r.clone();
        let out = recv(&mut x, from, msg);
        assert!(out.is_empty() && x == r, "n{from} was answered: {out:?}");
    }
}

#[test]
fn answers_to_a_ballot_left_behind_are_obsolete() {
    // A leader of b(1, 0): promises for its own ballot, acceptances and refusals of an older
    // ballot are dead (and ignored); prepares and accepts never are, nor are late promises
    // of its ballot (phase 1 for a configuration its window reached: see [`reconfig`]).
    let r = leader(3);
    let late = PaxosMsg::LatePromise {
        ballot: b(1, 0),
        from: 1,
        accepted: vec![],
        start: 1,
        end: 1,
    };
    assert!(!r.obsolete(NodeId(2), &late));
    let dead = [
        empty_promise(),
        accepted(b(0, 2), 1, 1, 0, false),
        PaxosMsg::Nack {
            ballot: b(0, 2),
            promised: b(5, 1),
        },
    ];
    for msg in dead {
        assert!(r.obsolete(NodeId(2), &msg), "{msg:?}");
        let mut x = r.clone();
        let out = recv(&mut x, 2, msg.clone());
        assert!(out.is_empty() && x == r, "{msg:?} was acted on: {out:?}");
    }
    assert!(!r.obsolete(NodeId(2), &accepted(b(1, 0), 1, 1, 0, false)));
    assert!(!r.obsolete(
        NodeId(2),
        &PaxosMsg::Nack {
            ballot: b(1, 0),
            promised: b(5, 1)
        }
    ));
    assert!(!r.obsolete(
        NodeId(2),
        &PaxosMsg::Prepare {
            ballot: b(0, 2),
            from: 1
        }
    ));
}

#[cfg(feature = "bug-zoo")]
mod bugs {
    use super::*;
    use crate::bugs::BugSet;

    fn with(bug: Bug) -> Config {
        Config {
            bugs: BugSet::only(bug),
            ..Config::default()
        }
    }

    #[test]
    fn p1_accepts_below_promise() {
        let d = PaxosDurable {
            promised: b(2, 2),
            tried: 0,
            snapshot: None,
            log: vec![],
            configs: Configs::default(),
        };
        let mut r = boot_with(1, 3, &with(Bug::AcceptBelowPromise), d);
        let out = recv(&mut r, 0, accept(b(1, 0), 1, vec![Some(5)], 0));
        assert_eq!(sends(&out), vec![(0, accepted(b(1, 0), 1, 1, 0, false))]);
        assert_eq!(r.log(), &[e(b(1, 0), Some(5))]);
        assert!(
            accepted_below_promise(&[&r]).is_ok(),
            "the promise stays; the acceptance is the bug"
        );
        assert_eq!(r.promised(), b(2, 2));
    }

    #[test]
    fn p2_ignores_the_reported_value() {
        let d = PaxosDurable {
            promised: b(2, 2),
            tried: 0,
            snapshot: None,
            log: vec![e(b(1, 1), Some(10))],
            configs: Configs::default(),
        };
        let mut r = boot_with(0, 3, &with(Bug::IgnoreAcceptedValue), d);
        fire(&mut r, PaxosTimer::Election);
        let out = recv(
            &mut r,
            1,
            PaxosMsg::Promise {
                ballot: b(3, 0),
                from: 1,
                accepted: vec![e(b(2, 2), Some(20)), None, e(b(1, 1), Some(30))],
                start: 1,
                end: 4,
            },
        );
        assert_eq!(
            writes(&out)[1],
            PaxosWrite::Accept {
                ballot: b(3, 0),
                first: 1,
                cmds: vals(vec![Some(10), None, None])
            },
            "own values instead of 20 and 30"
        );
    }

    #[test]
    fn p3_ballots_lack_the_tiebreak() {
        let mut r = boot_with(2, 3, &with(Bug::NonUniqueBallot), PaxosDurable::default());
        let out = fire(&mut r, PaxosTimer::Election);
        assert_eq!(r.ballot(), b(1, 0), "node 2 uses node 0's ballot");
        assert_eq!(
            sends(&out)[0],
            (
                0,
                PaxosMsg::Prepare {
                    ballot: b(1, 0),
                    from: 1
                }
            )
        );
    }

    #[test]
    fn p4_chooses_without_a_quorum() {
        let mut r = boot_with(
            0,
            3,
            &with(Bug::ChosenWithoutQuorum),
            PaxosDurable::default(),
        );
        fire(&mut r, PaxosTimer::Election);
        assert_eq!(
            r.status().role,
            Role::Leader,
            "its own promise counted as a quorum of 3"
        );
        let out = propose(&mut r, vec![7]);
        assert_eq!(
            commits(&out),
            vec![(1, 7)],
            "chosen with one acceptance of three"
        );
    }

    #[test]
    fn p5_skips_recovery() {
        let (mut r, out) =
            win_round_3(&with(Bug::SkipRecovery), vec![], vec![e(b(2, 2), Some(20))]);
        assert_eq!(
            writes(&out),
            vec![PaxosWrite::Promise(b(3, 0))],
            "nothing re-proposed"
        );
        let out = propose(&mut r, vec![99]);
        assert_eq!(
            writes(&out),
            vec![PaxosWrite::Accept {
                ballot: b(3, 0),
                first: 1,
                cmds: vals(vec![Some(99)])
            }]
        );
    }

    #[test]
    fn p5_new_commands_overwrite_even_the_leaders_own_acceptance() {
        // P5 at its plainest: no phase 1 for open slots, so the new leader drops what it
        // accepted itself above its commit point and proposes slot 1 afresh.
        let (mut r, _) = win_round_3(&with(Bug::SkipRecovery), vec![e(b(2, 2), Some(20))], vec![]);
        assert_eq!(r.log(), &[] as &[Option<Entry<Cmd>>]);
        let out = propose(&mut r, vec![99]);
        assert_eq!(
            writes(&out),
            vec![PaxosWrite::Accept {
                ballot: b(3, 0),
                first: 1,
                cmds: vals(vec![Some(99)])
            }]
        );
    }

    #[test]
    fn p5_gap_leaves_an_unreported_slot_open_and_stalls_every_later_slot() {
        let (mut r, out) = win_round_3(
            &with(Bug::GapNotFilled),
            vec![],
            vec![e(b(2, 2), Some(20)), None, e(b(1, 1), Some(30))],
        );
        // Slots 1 and 3 re-proposed, slot 2 left open: no no-op anywhere.
        let write = |first, cmds| PaxosWrite::Accept {
            ballot: b(3, 0),
            first,
            cmds,
        };
        assert_eq!(
            writes(&out),
            vec![
                PaxosWrite::Promise(b(3, 0)),
                write(1, vals(vec![Some(20)])),
                write(3, vals(vec![Some(30)]))
            ]
        );
        recv(&mut r, 2, accepted(b(3, 0), 1, 1, 0, false));
        let out = recv(&mut r, 2, accepted(b(3, 0), 3, 3, 0, false));
        assert_eq!(commits(&out), vec![], "slot 3 waits behind the hole");
        assert_eq!(r.committed(), BTreeMap::from([(1, Some(20))]));
        // A lagging acceptor's catch-up stops short of the hole instead of filling it.
        let out = recv(&mut r, 1, accepted(b(3, 0), 1, 0, 0, true));
        assert_eq!(
            sends(&out),
            vec![(1, accept(b(3, 0), 1, vec![Some(20)], 1))]
        );
    }

    #[test]
    fn p6_promise_not_persisted() {
        let mut r = boot_with(
            1,
            3,
            &with(Bug::PromiseNotPersisted),
            PaxosDurable::default(),
        );
        let out = recv(
            &mut r,
            2,
            PaxosMsg::Prepare {
                ballot: b(3, 2),
                from: 1,
            },
        );
        assert!(writes(&out).is_empty());
        assert!(matches!(sends(&out)[0], (2, PaxosMsg::Promise { .. })));
        let mut r = boot_with(1, 3, &with(Bug::PromiseNotPersisted), image(&writes(&out)));
        let out = recv(&mut r, 0, accept(b(1, 0), 1, vec![Some(1)], 0));
        assert_eq!(
            sends(&out),
            vec![(0, accepted(b(1, 0), 1, 1, 0, false))],
            "went back on its promise"
        );
    }

    #[test]
    fn p7_promise_sent_before_persist() {
        // PMS §2.3: "an acceptor must remember this information even if it fails and then
        // restarts". P7 still writes the promise, but after sending it.
        let mut r = boot_with(
            1,
            3,
            &with(Bug::PromiseSentBeforePersist),
            PaxosDurable::default(),
        );
        let out = recv(
            &mut r,
            2,
            PaxosMsg::Prepare {
                ballot: b(3, 2),
                from: 1,
            },
        );
        assert_eq!(writes(&out), vec![PaxosWrite::Promise(b(3, 2))]);
        let persist = at(&out, |e| matches!(e, Effect::Persist(_)));
        let reply = at(&out, |e| matches!(e, Effect::Send { .. }));
        assert_eq!(
            persist,
            reply + 1,
            "the write comes right after the promise"
        );
        assert_eq!(r.promised(), b(3, 2));
        // A prepare at the promised ballot raises nothing and writes nothing, as without P7.
        let out = recv(
            &mut r,
            2,
            PaxosMsg::Prepare {
                ballot: b(3, 2),
                from: 1,
            },
        );
        assert!(writes(&out).is_empty());
    }
}

// --- Scenarios on the driver -----------------------------------------------------------------

type C = Cluster<P, Cmd>;

fn is_accept(to: u8) -> impl Fn(&crate::driver::Envelope<PaxosMsg<Cmd>>) -> bool {
    move |e| e.to == NodeId(to) && matches!(e.msg, PaxosMsg::Accept { .. })
}

/// Every other live node's election timer runs out (their bids lost), then `i`'s.
fn elect(c: &mut C, i: usize) {
    for j in 0..c.len() {
        if j != i && c.is_up(j) && c.node(j).timers.contains(&PaxosTimer::Election) {
            c.fire(j, PaxosTimer::Election);
        }
    }
    let me = NodeId(i as u8);
    c.drop_where(|e| e.from != me);
    c.time_out(i);
    c.deliver_all();
    assert!(
        c.leaders().contains(&i),
        "n{i} should lead\n{}",
        c.trace.join("\n")
    );
}

/// The leader's heartbeat fires `rounds` times, everything in flight delivered after each:
/// enough rounds for catch-up, commit-point news and resends to settle.
pub(super) fn heartbeats(c: &mut C, leader: usize, rounds: usize) {
    for _ in 0..rounds {
        c.fire(leader, PaxosTimer::Heartbeat);
        c.deliver_all();
    }
}

fn settle(c: &mut C, leader: usize) {
    heartbeats(c, leader, 32);
}

/// Deliver the oldest message in flight until `done` holds of the cluster (at most 100
/// deliveries).
pub(super) fn deliver_until(c: &mut C, done: impl Fn(&C) -> bool) {
    for _ in 0..100 {
        if done(c) {
            return;
        }
        c.deliver(0);
    }
    assert!(done(c), "not reached within 100 deliveries");
}

/// Whether a message `m` matches is in flight.
pub(super) fn in_flight(c: &C, m: impl Fn(&PaxosMsg<Cmd>) -> bool) -> bool {
    c.net.iter().any(|e| m(&e.msg))
}

#[test]
fn leader_crash_mid_slot_value_on_a_minority_is_recovered() {
    let mut c = C::new(5, Config::default());
    elect(&mut c, 0);
    c.propose(0, vec![7]);
    // Only n1 receives the accept: 7 sits on n0 and n1, two of five.
    c.deliver_first(is_accept(1));
    c.drop_where(|_| true);
    c.crash(0);
    elect(&mut c, 1);
    settle(&mut c, 1);
    for i in 1..5 {
        assert_eq!(c.applied(i), vec![7], "n{i}");
    }
    c.restart(0);
    settle(&mut c, 1);
    assert_eq!(c.applied(0), vec![7]);
    assert_eq!(c.replica(0).committed(), BTreeMap::from([(1, Some(7))]));
}

#[test]
fn contending_proposers_the_higher_ballot_wins() {
    let cfg = Config {
        check_quorum: false,
        ..Config::default()
    };
    let mut c = C::new(3, cfg);
    c.fire(0, PaxosTimer::Election);
    c.fire(1, PaxosTimer::Election);
    c.deliver_all();
    assert_eq!(c.leaders(), vec![1], "ballot (1, n1) beats (1, n0)");
    assert_eq!(c.replica(1).ballot(), b(1, 1));
    c.propose(1, vec![1]);
    // n0 tries again with a higher round; its prepares overtake n1's accepts of 1.
    c.fire(0, PaxosTimer::Election);
    for _ in 0..2 {
        c.deliver_first(|e| matches!(e.msg, PaxosMsg::Prepare { .. }));
    }
    c.deliver_all();
    assert_eq!(c.leaders(), vec![0]);
    assert_eq!(c.replica(0).ballot(), b(2, 0));
    c.propose(0, vec![2]);
    c.deliver_all();
    settle(&mut c, 0);
    // n1's accepts were refused, but phase 1 found 1 accepted by n1 itself in slot 1 and
    // re-proposed it: no slot holds two values.
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![1, 2], "n{i}");
    }
    assert_eq!(c.replica(1).status().role, Role::Follower);
}

#[test]
fn a_gap_is_filled_with_a_noop() {
    let mut c = C::new(3, Config::default());
    elect(&mut c, 0);
    c.propose(0, vec![1]);
    c.deliver_all();
    c.propose(0, vec![2]);
    c.drop_where(|e| matches!(e.msg, PaxosMsg::Accept { .. })); // slot 2 only on n0
    c.propose(0, vec![3]);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![1], "slot 3 waits for slot 2");
    c.crash(0);
    elect(&mut c, 1);
    settle(&mut c, 1);
    for i in 1..3 {
        assert_eq!(c.applied(i), vec![1, 3], "n{i}");
        assert_eq!(
            c.replica(i).committed().get(&2),
            Some(&None),
            "slot 2 is a no-op"
        );
    }
    c.restart(0);
    settle(&mut c, 1);
    assert_eq!(
        c.applied(0),
        vec![1, 3],
        "its own slot-2 value was never chosen"
    );
}

#[test]
fn restarted_acceptor_refuses_the_deposed_leader() {
    let mut c = C::new(3, Config::default());
    elect(&mut c, 0);
    c.partition(&[0]);
    c.time_out(1);
    c.time_out(2);
    c.deliver_all();
    assert!(c.leaders().contains(&2) || c.leaders().contains(&1));
    let promised = c.replica(1).promised();
    c.crash(1);
    c.restart(1);
    assert_eq!(c.replica(1).promised(), promised);
    c.heal();
    c.propose(0, vec![5]);
    c.deliver_all();
    assert!(c.applied(0).is_empty() && c.applied(1).is_empty());
    assert_eq!(
        c.replica(0).status().role,
        Role::Follower,
        "nacked by the promise that survived"
    );
    assert!(c.replica(1).log().is_empty(), "5 was refused");
}

/// Three nodes (`max_batch` 4) with n0 leading: n2 crashes, 40 commands are chosen without
/// it, and it restarts. Returns the cluster and the commands.
fn n2_restarted_40_behind() -> (C, Vec<Cmd>) {
    let mut c = C::new(
        3,
        Config {
            max_batch: 4,
            ..Config::default()
        },
    );
    elect(&mut c, 0);
    c.crash(2);
    let want: Vec<Cmd> = (1..=40).collect();
    for k in want.chunks(5) {
        c.propose(0, k.to_vec());
        c.deliver_all();
    }
    c.restart(2);
    (c, want)
}

#[test]
fn replica_far_behind_after_a_crash_catches_up() {
    let (mut c, want) = n2_restarted_40_behind();
    settle(&mut c, 0);
    assert_eq!(c.applied(2), want);
    assert_eq!(c.replica(2).status().commit, 40);
    assert_eq!(c.node(2).durable, c.replica(2).durable());
}

#[test]
fn a_replica_behind_under_load_is_caught_up_with_each_slot_sent_at_most_twice_on_average() {
    // n2 restarts 40 slots behind while the leader takes a command a step, and only four
    // messages are delivered a step (a busy network). Each Accept and heartbeat n2 gets is
    // answered "behind" until it has caught up. One catch-up batch on its way at a time keeps
    // what is re-sent to it near the 40 slots it lacks (64 here: batches still queued after
    // two heartbeats were deemed lost and sent again); re-sending a batch on every "behind"
    // answer re-sent 1496 slots and so flooded the network that n2 took 296 steps to catch
    // up instead of 88.
    let (mut c, behind) = n2_restarted_40_behind();
    // Slots re-sent to n2 from its gap (at or below slot 40; new slots start at 41).
    let mut resent = 0;
    let mut deliver = |c: &mut C, n: usize| {
        for _ in 0..n.min(c.net.len()) {
            let e = &c.net[0];
            if let PaxosMsg::Accept { cmds, first, .. } = &e.msg {
                if e.to == NodeId(2) && *first <= 40 {
                    resent += cmds.len();
                }
            }
            c.deliver(0);
        }
    };
    let mut steps = 0;
    while c.replica(2).status().commit < 40 {
        assert!(steps < 200, "n2 did not catch up within 200 steps");
        c.propose(0, vec![41 + steps]);
        if steps % 4 == 3 {
            c.fire(0, PaxosTimer::Heartbeat);
        }
        deliver(&mut c, 4);
        steps += 1;
    }
    assert_eq!(c.applied(2)[..40], behind[..]);
    assert!(resent <= 80, "{resent} slots re-sent for 40 lacking");
}
