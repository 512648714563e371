//! Raft unit tests, in the style of etcd/raft's paper tests: each sets up replicas, steps them
//! with messages and timers, and asserts the exact effects and state. Each names the rule of
//! the Raft paper (§) or the dissertation (diss. §) it checks. Multi-step scenarios on the
//! deterministic driver are in `tests/raft_scenarios.rs` at the crate root.

use super::*;
use crate::replica::{Effect, Effects};

type Cmd = u32;
type R = Raft<Cmd>;
type O = Out<R, Cmd>;

/// PreVote and CheckQuorum off: the plain algorithm of the paper.
pub(super) fn plain() -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::default()
    }
}

pub(super) fn ids(n: u8) -> Vec<NodeId> {
    (0..n).map(NodeId).collect()
}

pub(super) fn entry(term: u64, cmd: Cmd) -> Entry<Cmd> {
    Entry::command(term, cmd)
}

fn noop(term: u64) -> Entry<Cmd> {
    Entry::noop(term)
}

/// Boot node `id` of an `n`-node cluster from a durable image.
pub(super) fn boot_with(id: u8, n: u8, cfg: &Config, term: u64, log: Vec<Entry<Cmd>>) -> R {
    let mut out = Effects::new();
    let d = RaftDurable {
        term,
        voted_for: None,
        log,
        snapshot: None,
    };
    R::boot(NodeId(id), &ids(n), Some(&d), cfg, &mut out)
}

fn fresh(id: u8, n: u8, cfg: &Config) -> R {
    boot_with(id, n, cfg, 0, vec![])
}

pub(super) fn recv(r: &mut R, from: u8, msg: RaftMsg<Cmd>) -> O {
    let mut out = Effects::new();
    r.on_message(NodeId(from), msg, &mut out);
    out
}

pub(super) fn fire(r: &mut R, t: RaftTimer) -> O {
    let mut out = Effects::new();
    r.on_timer(t, &mut out);
    out
}

pub(super) fn sends(out: &O) -> Vec<(u8, RaftMsg<Cmd>)> {
    out.sends().map(|(to, m)| (to.0, m.clone())).collect()
}

pub(super) fn vote(term: u64, granted: bool) -> RaftMsg<Cmd> {
    RaftMsg::Vote {
        term,
        granted,
        pre_vote: false,
    }
}

pub(super) fn request_vote(term: u64, last_index: Slot, last_term: u64) -> RaftMsg<Cmd> {
    RaftMsg::RequestVote {
        term,
        last_index,
        last_term,
        pre_vote: false,
    }
}

fn pre_vote_request(term: u64, last_index: Slot, last_term: u64) -> RaftMsg<Cmd> {
    RaftMsg::RequestVote {
        term,
        last_index,
        last_term,
        pre_vote: true,
    }
}

pub(super) fn pre_vote(term: u64, granted: bool) -> RaftMsg<Cmd> {
    RaftMsg::Vote {
        term,
        granted,
        pre_vote: true,
    }
}

pub(super) fn append(
    term: u64,
    prev_index: Slot,
    prev_term: u64,
    entries: Vec<Entry<Cmd>>,
    commit: Slot,
) -> RaftMsg<Cmd> {
    RaftMsg::Append {
        term,
        prev_index,
        prev_term,
        entries: entries.into(),
        commit,
    }
}

pub(super) fn ok(term: u64, matched: Slot) -> RaftMsg<Cmd> {
    RaftMsg::AppendReply {
        term,
        result: AppendResult::Ok { matched },
    }
}

pub(super) fn reject(
    term: u64,
    prev_index: Slot,
    conflict_term: Option<u64>,
    conflict_index: Slot,
) -> RaftMsg<Cmd> {
    RaftMsg::AppendReply {
        term,
        result: AppendResult::Rejected {
            prev_index,
            conflict_term,
            conflict_index,
        },
    }
}

/// The one message `out` sends: an Append to `to` after `prev` (slot, term). Returns how
/// many entries it carries (the backtracking tests' check of where the leader resumed).
pub(super) fn one_append_after(out: &O, to: u8, prev: (Slot, u64)) -> usize {
    match &sends(out)[..] {
        [(
            t,
            RaftMsg::Append {
                prev_index,
                prev_term,
                entries,
                ..
            },
        )] if *t == to && (*prev_index, *prev_term) == prev => entries.len(),
        other => panic!("expected one append to n{to} after {prev:?}, got {other:?}"),
    }
}

/// Make node 0 of an `n`-node cluster the leader of `term` (plain config), with `log`
/// already in place. Returns the leader and the effects of winning.
fn leader_with(n: u8, cfg: &Config, term: u64, log: Vec<Entry<Cmd>>) -> (R, O) {
    let mut r = boot_with(0, n, cfg, term - 1, log);
    let mut out = fire(&mut r, RaftTimer::Election);
    if cfg.pre_vote {
        for p in 1..n {
            out = recv(&mut r, p, pre_vote(term, true));
            if r.role() == Role::Candidate {
                break;
            }
        }
    }
    for p in 1..n {
        if r.role() == Role::Leader {
            break;
        }
        out = recv(&mut r, p, vote(term, true));
    }
    assert_eq!((r.role(), r.term), (Role::Leader, term));
    (r, out)
}

/// Whether a follower holds CheckQuorum's lease (heard from a live leader lately).
fn lease(r: &R) -> bool {
    matches!(r.state, RoleState::Follower { leader_alive: true })
}

/// A leader's state in an `n`-node cluster that has heard from nobody, for invariant tests.
fn leading(n: usize) -> RoleState {
    let pr = Progress {
        next: 1,
        matched: 0,
        replicating: false,
        paused: false,
        ..Progress::default()
    };
    RoleState::Leader {
        active: NodeSet::from_bits(0),
        progress: vec![pr; n],
        reads: Box::new(LeaderReads::default()),
        change: None,
        transfer: None,
    }
}

// ---------------------------------------------------------------------------------------------
// §5.1 Terms
// ---------------------------------------------------------------------------------------------

#[test]
fn s5_1_follower_adopts_a_higher_term_and_persists_it() {
    let mut r = boot_with(1, 3, &plain(), 1, vec![]);
    r.voted_for = Some(NodeId(2));
    let out = recv(&mut r, 0, append(3, 0, 0, vec![], 0));
    assert_eq!((r.term, r.voted_for, r.leader), (3, None, Some(NodeId(0))));
    // The new term is durable before the reply that reveals it.
    let persisted = out.iter().position(|e| {
        matches!(
            e,
            Effect::Persist(RaftWrite::HardState {
                term: 3,
                voted_for: None
            })
        )
    });
    let replied = out.iter().position(|e| matches!(e, Effect::Send { .. }));
    assert!(persisted.unwrap() < replied.unwrap());
    assert_eq!(sends(&out), vec![(0, ok(3, 0))]);
}

#[test]
fn s5_1_stale_append_is_refused_with_the_current_term() {
    let mut r = boot_with(1, 3, &plain(), 5, vec![entry(5, 1)]);
    let out = recv(&mut r, 0, append(4, 0, 0, vec![entry(4, 9)], 1));
    assert_eq!(
        sends(&out),
        vec![(
            0,
            RaftMsg::AppendReply {
                term: 5,
                result: AppendResult::StaleTerm
            }
        )]
    );
    assert_eq!(r.log, vec![entry(5, 1)], "a stale leader changes nothing");
    assert_eq!(r.commit, 0);
}

#[test]
fn s5_1_stale_vote_request_is_refused() {
    let mut r = boot_with(1, 3, &plain(), 5, vec![]);
    let out = recv(&mut r, 2, request_vote(4, 10, 4));
    assert_eq!(sends(&out), vec![(2, vote(5, false))]);
    assert_eq!(r.voted_for, None);
}

#[test]
fn s5_1_leader_steps_down_on_a_reply_from_a_later_term() {
    let (mut l, _) = leader_with(3, &plain(), 2, vec![]);
    let out = recv(
        &mut l,
        1,
        RaftMsg::AppendReply {
            term: 7,
            result: AppendResult::StaleTerm,
        },
    );
    assert_eq!((l.role(), l.term, l.leader), (Role::Follower, 7, None));
    assert!(out
        .iter()
        .any(|e| matches!(e, Effect::CancelTimer(RaftTimer::Heartbeat))));
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: RaftTimer::Election,
            ..
        }
    )));
}

#[test]
fn s5_1_candidate_steps_down_on_a_refusal_from_a_later_term() {
    let mut r = fresh(0, 3, &plain());
    fire(&mut r, RaftTimer::Election);
    assert_eq!((r.role(), r.term), (Role::Candidate, 1));
    recv(&mut r, 1, vote(4, false));
    assert_eq!((r.role(), r.term, r.voted_for), (Role::Follower, 4, None));
}

#[test]
fn prevote_refusal_from_a_later_term_brings_the_pre_candidate_up_to_date() {
    // §5.1 applies to pre-vote replies too: a refusal carrying a later term ends the
    // pre-campaign and the sender adopts that term (obsolete() relies on this).
    let mut r = boot_with(0, 3, &Config::default(), 2, vec![]);
    fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::PreCandidate);
    recv(&mut r, 1, pre_vote(5, false));
    assert_eq!((r.role(), r.term), (Role::Follower, 5));
}

#[test]
fn prevote_grants_count_only_for_the_term_being_asked_for() {
    // A pre-candidate in term 3 asks for term 4; a grant for term 3 answers an older
    // pre-campaign and must not start an election (diss. §9.6).
    let mut r = boot_with(0, 3, &Config::default(), 3, vec![]);
    fire(&mut r, RaftTimer::Election);
    recv(&mut r, 1, pre_vote(3, true));
    assert_eq!(
        (&r.state, r.term),
        (
            &RoleState::PreCandidate {
                votes: NodeSet::from_bits(0b001)
            },
            3
        )
    );
    recv(&mut r, 1, pre_vote(4, true));
    assert_eq!((r.role(), r.term), (Role::Candidate, 4));
}

// ---------------------------------------------------------------------------------------------
// §5.2 Leader election
// ---------------------------------------------------------------------------------------------

#[test]
fn s5_2_election_timeout_starts_a_durable_campaign() {
    let mut r = boot_with(0, 3, &plain(), 2, vec![entry(1, 1), entry(2, 2)]);
    let out = fire(&mut r, RaftTimer::Election);
    assert_eq!(
        (r.role(), r.term, r.voted_for),
        (Role::Candidate, 3, Some(NodeId(0)))
    );
    let effects: Vec<_> = out.iter().cloned().collect();
    assert_eq!(
        effects[0],
        Effect::Persist(RaftWrite::HardState {
            term: 3,
            voted_for: Some(NodeId(0))
        })
    );
    assert!(matches!(
        effects[1],
        Effect::SetTimer {
            timer: RaftTimer::Election,
            ..
        }
    ));
    assert_eq!(
        sends(&out),
        vec![(1, request_vote(3, 2, 2)), (2, request_vote(3, 2, 2))]
    );
}

#[test]
fn s5_2_majority_of_votes_makes_a_leader() {
    let mut r = fresh(0, 5, &plain());
    fire(&mut r, RaftTimer::Election);
    recv(&mut r, 1, vote(1, true));
    assert_eq!(r.role(), Role::Candidate, "2 of 5 is no majority");
    recv(&mut r, 2, vote(1, false));
    recv(&mut r, 1, vote(1, true)); // a duplicate counts once
    assert_eq!(r.role(), Role::Candidate);
    let out = recv(&mut r, 3, vote(1, true));
    assert_eq!((r.role(), r.leader), (Role::Leader, Some(NodeId(0))));
    // It announces itself with its no-op to every peer.
    let to: Vec<u8> = sends(&out).iter().map(|(to, _)| *to).collect();
    assert_eq!(to, vec![1, 2, 3, 4]);
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: RaftTimer::Heartbeat,
            ..
        }
    )));
}

#[test]
fn s5_2_one_vote_per_term_first_come_first_served() {
    let mut r = fresh(2, 3, &plain());
    let out = recv(&mut r, 0, request_vote(1, 0, 0));
    assert_eq!(sends(&out), vec![(0, vote(1, true))]);
    let out = recv(&mut r, 1, request_vote(1, 0, 0));
    assert_eq!(
        sends(&out),
        vec![(1, vote(1, false))],
        "already voted for n0 in term 1"
    );
    assert_eq!(r.voted_for, Some(NodeId(0)));
    // The same candidate asking again (its request was duplicated) gets the same answer.
    let out = recv(&mut r, 0, request_vote(1, 0, 0));
    assert_eq!(sends(&out), vec![(0, vote(1, true))]);
}

#[test]
fn s5_2_a_vote_is_durable_before_the_reply() {
    let mut r = fresh(1, 3, &plain());
    let out = recv(&mut r, 0, request_vote(1, 0, 0));
    let effects: Vec<_> = out.iter().cloned().collect();
    let persist = effects
        .iter()
        .position(|e| {
            *e == Effect::Persist(RaftWrite::HardState {
                term: 1,
                voted_for: Some(NodeId(0)),
            })
        })
        .expect("vote persisted");
    let reply = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }))
        .unwrap();
    assert!(persist < reply);
}

#[test]
fn s5_2_a_granted_vote_is_written_once_and_nothing_follows_the_reply() {
    // Figure 2: the new term, then the vote, are durable before the reply; the reply is the
    // step's last effect (a write after it would be a second, needless one).
    let mut r = fresh(1, 3, &plain());
    let out = recv(&mut r, 0, request_vote(1, 0, 0));
    let hard = |voted_for| RaftWrite::HardState { term: 1, voted_for };
    assert_eq!(
        out.writes().cloned().collect::<Vec<_>>(),
        vec![hard(None), hard(Some(NodeId(0)))]
    );
    assert!(
        matches!(out.iter().last(), Some(Effect::Send { .. })),
        "{out:?}"
    );
}

#[test]
fn s5_2_granting_a_vote_resets_the_election_timer() {
    let mut r = fresh(1, 3, &plain());
    let out = recv(&mut r, 0, request_vote(1, 0, 0));
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: RaftTimer::Election,
            ..
        }
    )));
    let out = recv(&mut r, 2, request_vote(1, 0, 0));
    assert!(
        !out.iter().any(|e| matches!(e, Effect::SetTimer { .. })),
        "a refused vote does not reset the timer"
    );
}

#[test]
fn s5_2_candidate_yields_to_a_leader_of_its_term() {
    let mut r = fresh(1, 3, &plain());
    fire(&mut r, RaftTimer::Election);
    assert_eq!((r.role(), r.term), (Role::Candidate, 1));
    let out = recv(&mut r, 2, append(1, 0, 0, vec![noop(1)], 0));
    assert_eq!(
        (r.role(), r.term, r.leader),
        (Role::Follower, 1, Some(NodeId(2)))
    );
    assert_eq!(sends(&out), vec![(2, ok(1, 1))]);
}

#[test]
fn s5_2_split_vote_times_out_into_a_new_term() {
    let mut r = fresh(0, 3, &plain());
    fire(&mut r, RaftTimer::Election);
    recv(&mut r, 1, vote(1, false));
    recv(&mut r, 2, vote(1, false));
    assert_eq!(r.role(), Role::Candidate);
    let out = fire(&mut r, RaftTimer::Election);
    assert_eq!(
        (r.role(), r.term, r.voted_for),
        (Role::Candidate, 2, Some(NodeId(0)))
    );
    assert_eq!(sends(&out).len(), 2);
}

#[test]
fn s5_2_a_cluster_of_one_elects_itself_at_once() {
    for cfg in [plain(), Config::default()] {
        let mut r = fresh(0, 1, &cfg);
        fire(&mut r, RaftTimer::Election);
        assert_eq!((r.role(), r.term), (Role::Leader, 1));
        let out = {
            let mut out = Effects::new();
            r.propose(vec![5], &mut out);
            out
        };
        assert_eq!(out.commits().collect::<Vec<_>>(), vec![(2, &5)]);
    }
}

// ---------------------------------------------------------------------------------------------
// §5.3 Log replication
// ---------------------------------------------------------------------------------------------

#[test]
fn s5_3_append_refused_when_prev_entry_is_missing() {
    let mut r = boot_with(1, 3, &plain(), 2, vec![entry(1, 1)]);
    let out = recv(&mut r, 0, append(2, 4, 2, vec![entry(2, 5)], 0));
    let hint = AppendResult::Rejected {
        prev_index: 4,
        conflict_term: None,
        conflict_index: 2,
    };
    assert_eq!(
        sends(&out),
        vec![(
            0,
            RaftMsg::AppendReply {
                term: 2,
                result: hint
            }
        )]
    );
    assert_eq!(r.log, vec![entry(1, 1)]);
}

#[test]
fn s5_3_append_refused_on_term_mismatch_with_first_index_of_that_term() {
    let log = vec![entry(1, 1), entry(2, 2), entry(2, 3), entry(2, 4)];
    let mut r = boot_with(1, 3, &plain(), 3, log.clone());
    let out = recv(&mut r, 0, append(4, 4, 3, vec![], 0));
    let hint = AppendResult::Rejected {
        prev_index: 4,
        conflict_term: Some(2),
        conflict_index: 2,
    };
    assert_eq!(
        sends(&out),
        vec![(
            0,
            RaftMsg::AppendReply {
                term: 4,
                result: hint
            }
        )]
    );
    assert_eq!(r.log, log);
}

#[test]
fn s5_3_conflict_hint_stops_above_the_commit_point() {
    // Entries up to the commit point match the leader (§5.4, leader completeness), so the
    // first conflicting entry of the term is above it even when the term began below it.
    let log = vec![entry(1, 1), entry(2, 2), entry(2, 3), entry(2, 4)];
    let mut r = boot_with(1, 3, &plain(), 3, log);
    recv(&mut r, 0, append(3, 2, 2, vec![], 2));
    assert_eq!(r.commit, 2);
    let out = recv(&mut r, 0, append(4, 4, 3, vec![], 2));
    assert_eq!(sends(&out), vec![(0, reject(4, 4, Some(2), 3))]);
}

#[test]
fn s5_3_follower_deletes_from_the_first_conflicting_entry_only() {
    let mut r = boot_with(
        1,
        3,
        &plain(),
        2,
        vec![entry(1, 1), entry(2, 2), entry(2, 3)],
    );
    let out = recv(
        &mut r,
        0,
        append(3, 1, 1, vec![entry(2, 2), entry(3, 7)], 0),
    );
    assert_eq!(r.log, vec![entry(1, 1), entry(2, 2), entry(3, 7)]);
    // Only the changed suffix is written.
    let writes: Vec<_> = out.writes().cloned().collect();
    assert!(writes.contains(&RaftWrite::Append {
        at: 3,
        entries: vec![entry(3, 7)].into()
    }));
    assert_eq!(sends(&out), vec![(0, ok(3, 3))]);
}

#[test]
fn s5_3_a_delayed_shorter_append_does_not_truncate() {
    // The follower already has slots 1..=3 from the leader of term 2; an older append that
    // carries only slot 2 arrives late. Nothing may be deleted (BUGZOO R6).
    let log = vec![entry(2, 1), entry(2, 2), entry(2, 3)];
    let mut r = boot_with(1, 3, &plain(), 2, log.clone());
    let out = recv(&mut r, 0, append(2, 1, 2, vec![entry(2, 2)], 0));
    assert_eq!(r.log, log);
    assert_eq!(out.writes().count(), 0, "nothing changed, nothing written");
    assert_eq!(
        sends(&out),
        vec![(0, ok(2, 2))],
        "acknowledges only what this append verified"
    );
}

#[test]
fn s5_3_follower_commit_is_bounded_by_the_verified_prefix() {
    // The follower holds a stale entry at slot 3 from term 1; the leader of term 2 verifies
    // only slots 1..=2 yet reports commit 3. The follower may commit 2, not its stale 3 (R7).
    let mut r = boot_with(
        1,
        3,
        &plain(),
        1,
        vec![entry(1, 1), entry(1, 2), entry(1, 99)],
    );
    let out = recv(&mut r, 0, append(2, 1, 1, vec![entry(1, 2)], 3));
    assert_eq!(r.commit, 2);
    assert_eq!(out.commits().collect::<Vec<_>>(), vec![(1, &1), (2, &2)]);
}

#[test]
fn s5_3_heartbeat_carries_the_commit_point() {
    let mut r = boot_with(1, 3, &plain(), 2, vec![entry(2, 1), entry(2, 2)]);
    let out = recv(&mut r, 0, append(2, 2, 2, vec![], 1));
    assert_eq!(out.commits().collect::<Vec<_>>(), vec![(1, &1)]);
    let out = recv(&mut r, 0, append(2, 2, 2, vec![], 2));
    assert_eq!(out.commits().collect::<Vec<_>>(), vec![(2, &2)]);
    assert_eq!(r.commit, 2);
}

/// The entries of the appends in `out`'s sends and writes, in order.
fn appended(out: &O) -> (Vec<Entries<Cmd>>, Vec<Entries<Cmd>>) {
    let sent = out.sends().filter_map(|(_, m)| match m {
        RaftMsg::Append { entries, .. } => Some(Entries::clone(entries)),
        _ => None,
    });
    let written = out.writes().filter_map(|w| match w {
        RaftWrite::Append { entries, .. } => Some(Entries::clone(entries)),
        _ => None,
    });
    (sent.collect(), written.collect())
}

#[test]
fn s5_3_a_new_batch_is_one_copy_shared_by_the_write_and_every_follower_sent_it() {
    let (mut l, _) = leader_with(3, &plain(), 1, vec![]);
    for p in [1, 2] {
        recv(&mut l, p, ok(1, 1)); // both replicating from slot 2 on
    }
    let mut out = Effects::new();
    l.propose(vec![10, 11], &mut out);
    let (sent, written) = appended(&out);
    assert_eq!((sent.len(), written.len()), (2, 1));
    assert_eq!(*written[0], vec![entry(1, 10), entry(1, 11)]);
    for s in &sent {
        assert!(
            Entries::ptr_eq(s, &written[0]),
            "a follower's append copied the batch"
        );
    }
}

#[test]
fn s5_3_followers_sent_a_run_cut_at_max_batch_bytes_share_one_copy_of_it() {
    // Commands that weigh something (`&str`: their length), 10 bytes a message: 2 of 4.
    type S = Raft<&'static str>;
    let cfg = Config {
        max_batch_bytes: 10,
        ..plain()
    };
    let mut l = S::boot(NodeId(0), &ids(3), None, &cfg, &mut Effects::new());
    l.on_timer(RaftTimer::Election, &mut Effects::new());
    for p in [1, 2] {
        let granted = RaftMsg::Vote {
            term: 1,
            granted: true,
            pre_vote: false,
        };
        l.on_message(NodeId(p), granted, &mut Effects::new());
    }
    assert_eq!(l.role(), Role::Leader);
    for p in [1, 2] {
        let acked = RaftMsg::AppendReply {
            term: 1,
            result: AppendResult::Ok { matched: 1 },
        };
        l.on_message(NodeId(p), acked, &mut Effects::new()); // the no-op: both replicating
    }
    let mut out = Effects::new();
    l.propose(vec!["aaaa", "bbbb", "cccc", "dddd"], &mut out);
    let sent: Vec<_> = out
        .sends()
        .filter_map(|(_, m)| match m {
            RaftMsg::Append { entries, .. } => Some(Entries::clone(entries)),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2);
    let first_two: Vec<_> = ["aaaa", "bbbb"].map(|c| Entry::command(1, c)).into();
    for s in &sent {
        assert_eq!(**s, first_two, "each message stops at 10 bytes");
    }
    assert!(
        Entries::ptr_eq(&sent[0], &sent[1]),
        "the second follower copied the run"
    );
}

#[test]
fn s5_3_a_follower_stores_an_append_it_takes_whole_as_the_message_and_copies_a_part() {
    let mut r = boot_with(1, 3, &plain(), 1, vec![entry(1, 1)]);
    let msg = |prev_index, entries: &Entries<Cmd>| RaftMsg::Append {
        term: 1,
        prev_index,
        prev_term: u64::from(prev_index > 0),
        entries: Entries::clone(entries),
        commit: 0,
    };
    // Slot 1 is held already: only slots 2 and 3 are written, a copy of them.
    let overlapping = Entries::new(vec![entry(1, 1), entry(1, 2), entry(1, 3)]);
    let (_, written) = appended(&recv(&mut r, 0, msg(0, &overlapping)));
    assert_eq!(written.len(), 1);
    assert_eq!(*written[0], vec![entry(1, 2), entry(1, 3)]);
    assert!(!Entries::ptr_eq(&written[0], &overlapping));
    // All new: the write is the message's entries.
    let fresh = Entries::new(vec![entry(1, 4)]);
    let (_, written) = appended(&recv(&mut r, 0, msg(3, &fresh)));
    assert_eq!(written.len(), 1);
    assert!(
        Entries::ptr_eq(&written[0], &fresh),
        "the follower copied an append it took whole"
    );
    assert_eq!(
        r.log,
        vec![entry(1, 1), entry(1, 2), entry(1, 3), entry(1, 4)]
    );
}

#[test]
fn s5_3_leader_commits_once_a_majority_stores_an_entry() {
    let (mut l, _) = leader_with(3, &plain(), 1, vec![]);
    let mut out = Effects::new();
    l.propose(vec![10, 11], &mut out);
    assert_eq!(l.commit, 0);
    let out = recv(&mut l, 2, ok(1, 3));
    assert_eq!(l.commit, 3);
    assert_eq!(out.commits().collect::<Vec<_>>(), vec![(2, &10), (3, &11)]);
}

#[test]
fn s5_4_2_commits_report_each_command_at_its_slot_around_the_noop() {
    // Log: t1 t1, then the no-op of term 2 in slot 3, then two commands: committed in one
    // go, the commands are reported in two runs on either side of the no-op.
    let (mut l, _) = leader_with(3, &plain(), 2, vec![entry(1, 1), entry(1, 2)]);
    assert_eq!(l.log.last(), Some(&noop(2)));
    let mut out = Effects::new();
    l.propose(vec![10, 11], &mut out);
    let out = recv(&mut l, 1, ok(2, 5));
    assert_eq!(l.commit, 5);
    assert_eq!(
        out.commits().collect::<Vec<_>>(),
        vec![(1, &1), (2, &2), (4, &10), (5, &11)]
    );
}

#[test]
fn s5_3_fast_backtracking_skips_a_whole_term() {
    // Leader log: t1 t1 t4 t4 t4 (noop of t5 appended on winning). Follower: t1 t1 t2 t2 t2 t2.
    let (mut l, _) = leader_with(
        2,
        &plain(),
        5,
        vec![
            entry(1, 1),
            entry(1, 2),
            entry(4, 3),
            entry(4, 4),
            entry(4, 5),
        ],
    );
    assert_eq!(l.progress(NodeId(1)).next, 6);
    // The follower refuses prev 5 (it has term 2 there, first of that term at slot 3).
    let out = recv(&mut l, 1, reject(5, 5, Some(2), 3));
    // The leader has no term-2 entry: it jumps straight to slot 3, not to 5.
    assert_eq!(l.progress(NodeId(1)).next, 3);
    assert_eq!(one_append_after(&out, 1, (2, 1)), 4);
}

#[test]
fn s5_3_fast_backtracking_skips_to_after_the_leaders_last_entry_of_the_conflicting_term() {
    // Leader: t1 t1 t2 t2 t4 t4, then its t5 no-op. The follower has term 2 at slot 6 and
    // from slot 3 on: the leader holds term 2 up to slot 4, so it resumes at slot 5 (the
    // follower's term-2 entries up to 4 may match) instead of the follower's slot 3.
    let log = vec![
        entry(1, 1),
        entry(1, 2),
        entry(2, 3),
        entry(2, 4),
        entry(4, 5),
        entry(4, 6),
    ];
    let (mut l, _) = leader_with(2, &plain(), 5, log);
    assert_eq!(l.progress(NodeId(1)).next, 7, "probing from its no-op");
    let out = recv(&mut l, 1, reject(5, 6, Some(2), 3));
    assert_eq!(l.progress(NodeId(1)).next, 5);
    assert_eq!(one_append_after(&out, 1, (4, 2)), 3);
}

#[test]
fn s5_3_a_rejection_older_than_what_the_follower_matched_is_ignored() {
    // Replies may be reordered: once slot 3 is known to match, a refusal at slot 1 answers
    // an older append and must not send the follower back.
    let (mut l, _) = leader_with(2, &plain(), 5, vec![entry(1, 1), entry(1, 2)]);
    recv(&mut l, 1, ok(5, 3));
    let before = l.progress(NodeId(1)).clone();
    assert_eq!((before.matched, before.replicating), (3, true));
    let out = recv(&mut l, 1, reject(5, 1, None, 1));
    assert!(sends(&out).is_empty(), "{out:?}");
    assert_eq!(*l.progress(NodeId(1)), before);
}

#[test]
fn s5_3_backtracking_never_goes_back_to_what_is_known_to_match() {
    // A probe at slot 6 is refused with an old hint (the follower then held two entries),
    // answered after slot 4 was acknowledged: the hint points below slot 4, but the leader
    // resumes at slot 5.
    let log = (1..=6).map(|c| entry(1, c)).collect();
    let (mut l, _) = leader_with(2, &plain(), 5, log);
    *l.progress(NodeId(1)) = Progress {
        next: 7,
        matched: 4,
        replicating: false,
        paused: false,
        ..Progress::default()
    };
    let out = recv(&mut l, 1, reject(5, 6, None, 3));
    assert_eq!(l.progress(NodeId(1)).next, 5);
    assert!(
        matches!(
            &sends(&out)[..],
            [(1, RaftMsg::Append { prev_index: 4, .. })]
        ),
        "{out:?}"
    );
}

#[test]
fn s5_3_a_probe_answered_in_full_sends_nothing_more() {
    // The probe after winning carried the no-op (slot 3): once it is acknowledged, the next
    // slot to send is 4, past the leader's log, so nothing is re-sent.
    let (mut l, _) = leader_with(3, &plain(), 2, vec![entry(1, 1), entry(1, 2)]);
    let out = recv(&mut l, 1, ok(2, 3));
    assert_eq!(l.progress(NodeId(1)).next, 4);
    assert_eq!(l.commit, 3);
    assert!(
        !sends(&out).iter().any(|(to, _)| *to == 1),
        "re-sent to n1: {out:?}"
    );
}

#[test]
fn committed_lists_every_committed_slot_no_ops_included() {
    let mut r = fresh(1, 3, &plain());
    recv(
        &mut r,
        0,
        append(1, 0, 0, vec![noop(1), entry(1, 7), entry(1, 8)], 2),
    );
    assert_eq!(
        r.committed(),
        BTreeMap::from([(1, None), (2, Some(7))]),
        "slot 3 is not committed yet"
    );
    assert_eq!(r.log(), &[noop(1), entry(1, 7), entry(1, 8)]);
}

#[test]
fn s5_3_fast_backtracking_to_the_end_of_a_short_log() {
    let (mut l, _) = leader_with(
        2,
        &plain(),
        3,
        vec![entry(1, 1), entry(2, 2), entry(2, 3), entry(2, 4)],
    );
    let hint = AppendResult::Rejected {
        prev_index: 4,
        conflict_term: None,
        conflict_index: 2,
    };
    recv(
        &mut l,
        1,
        RaftMsg::AppendReply {
            term: 3,
            result: hint,
        },
    );
    assert_eq!(l.progress(NodeId(1)).next, 2);
}

#[test]
fn s5_3_a_replicating_follower_gets_new_entries_pipelined() {
    let (mut l, _) = leader_with(3, &plain(), 1, vec![]);
    recv(&mut l, 1, ok(1, 1)); // n1 matches: replicate mode, and the no-op commits; n2 is probed
    assert_eq!(l.commit, 1);
    let mut out = Effects::new();
    l.propose(vec![1], &mut out);
    let mut out2 = Effects::new();
    l.propose(vec![2], &mut out2);
    // n1 gets each batch at once; n2's probe is outstanding so it waits.
    assert_eq!(
        sends(&out),
        vec![(1, append(1, 1, 1, vec![entry(1, 1)], 1))]
    );
    assert_eq!(
        sends(&out2),
        vec![(1, append(1, 2, 1, vec![entry(1, 2)], 1))]
    );
    // A heartbeat re-probes the paused follower from where it stands, whole the first time;
    // n1 is checked at its `next - 1`, behind the entries in flight.
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(
        sends(&hb),
        vec![
            (1, append(1, 3, 1, vec![], 1)),
            (
                2,
                append(1, 0, 0, vec![noop(1), entry(1, 1), entry(1, 2)], 1)
            )
        ]
    );
}

#[test]
fn s5_2_empty_heartbeats_carry_only_the_commit_point_and_still_repair() {
    let cfg = Config {
        empty_heartbeats: true,
        ..plain()
    };
    let (mut l, _) = leader_with(3, &cfg, 1, vec![]);
    recv(&mut l, 1, ok(1, 1)); // n1 matches and the no-op commits; n2's probe is outstanding
    let mut out = Effects::new();
    l.propose(vec![1], &mut out);
    // Both followers get the paper's empty AppendEntries, each checked at its `next - 1`:
    // n1 at the entry in flight to it, the paused n2 at its probe's slot.
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(
        sends(&hb),
        vec![
            (1, append(1, 2, 1, vec![], 1)),
            (2, append(1, 0, 0, vec![], 1))
        ]
    );
    // n2 lost the probe but agrees at slot 0: its answer resumes replication from there.
    let out = recv(&mut l, 2, ok(1, 0));
    assert_eq!(
        sends(&out),
        vec![(2, append(1, 0, 0, vec![noop(1), entry(1, 1)], 1))]
    );
    // n1 lost the entry in flight and refuses the heartbeat: for a replicating follower the
    // refusal may only mean "not arrived yet", so it is ignored; the next heartbeat, with
    // still nothing acknowledged, presumes the entry lost and probes n1 again with it.
    let out = recv(&mut l, 1, reject(1, 2, None, 2));
    assert!(sends(&out).is_empty(), "{out:?}");
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(sends(&hb)[0], (1, append(1, 1, 1, vec![entry(1, 1)], 1)));
    assert!(!l.progress(NodeId(1)).replicating);
}

#[test]
fn s5_3_follower_redirects_proposals_to_its_leader() {
    let mut r = fresh(1, 3, &plain());
    recv(&mut r, 0, append(1, 0, 0, vec![], 0));
    let mut out = Effects::new();
    r.propose(vec![4, 5], &mut out);
    let redirects: Vec<_> = out.iter().cloned().collect();
    assert_eq!(
        redirects,
        vec![
            Effect::Redirect {
                cmd: 4,
                leader: Some(NodeId(0))
            },
            Effect::Redirect {
                cmd: 5,
                leader: Some(NodeId(0))
            }
        ]
    );
    assert!(r.log.is_empty());
}

/// The commands handed back busy, in order.
fn busy(out: &O) -> Vec<Cmd> {
    out.refused_busy().copied().collect()
}

#[test]
fn a_leader_at_its_uncommitted_cap_hands_proposals_back_busy_until_entries_commit() {
    // etcd-raft's MaxUncommittedEntriesSize, in entries: at most 3 above the commit point,
    // the leader's no-op included.
    let cfg = Config {
        max_uncommitted: 3,
        ..plain()
    };
    let (mut l, _) = leader_with(3, &cfg, 1, vec![]);
    let mut out = Effects::new();
    l.propose(vec![10, 11, 12], &mut out);
    assert_eq!(busy(&out), vec![12], "no-op + 10 + 11 fill the cap");
    assert_eq!((l.last_index(), l.commit), (3, 0));
    let mut out = Effects::new();
    l.propose(vec![13], &mut out);
    assert_eq!(busy(&out), vec![13]);
    assert_eq!(out.len(), 1, "a refused proposal changes nothing else");
    assert_eq!(l.last_index(), 3);

    // A majority stores everything: it commits, and the leader has room again.
    recv(&mut l, 2, ok(1, 3));
    assert_eq!(l.commit, 3);
    let mut out = Effects::new();
    l.propose(vec![14, 15, 16, 17], &mut out);
    assert_eq!(busy(&out), vec![17]);
    assert_eq!(l.last_index(), 6);
    let tail: Vec<_> = l.log[3..].iter().map(|e| e.cmd).collect();
    assert_eq!(tail, vec![Some(14), Some(15), Some(16)]);
}

#[test]
fn a_follower_redirects_rather_than_refusing_busy_whatever_its_log() {
    // The cap is a leader's: a follower with a long uncommitted tail still redirects.
    let cfg = Config {
        max_uncommitted: 1,
        ..plain()
    };
    let mut r = fresh(1, 3, &cfg);
    recv(
        &mut r,
        0,
        append(1, 0, 0, vec![entry(1, 1), entry(1, 2)], 0),
    );
    let mut out = Effects::new();
    r.propose(vec![4], &mut out);
    assert_eq!(busy(&out), Vec::<Cmd>::new());
    assert!(matches!(
        out.iter().next(),
        Some(Effect::Redirect {
            cmd: 4,
            leader: Some(NodeId(0))
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Flow control, after etcd-raft's tracker package (progress.go: probe and replicate states;
// inflights.go: MaxInflightMsgs)
// ---------------------------------------------------------------------------------------------

/// A leader of term 1 of two nodes (plain config, in-flight window `max_inflight`) whose
/// follower n1 acknowledged the no-op: n1 replicates.
fn replicating_leader(max_inflight: usize) -> R {
    let cfg = Config {
        max_inflight,
        ..plain()
    };
    let (mut l, _) = leader_with(2, &cfg, 1, vec![]);
    recv(&mut l, 1, ok(1, 1));
    assert!(l.progress(NodeId(1)).replicating);
    l
}

/// Deliver `msg` from n1 to leader `l` and check that it is ignored: nothing sent, n1's
/// progress unchanged.
fn assert_ignored(l: &mut R, msg: RaftMsg<Cmd>) {
    let before = l.progress(NodeId(1)).clone();
    let out = recv(l, 1, msg);
    assert!(sends(&out).is_empty(), "{out:?}");
    assert_eq!(*l.progress(NodeId(1)), before);
}

fn propose(l: &mut R, cmds: Vec<Cmd>) -> O {
    let mut out = Effects::new();
    l.propose(cmds, &mut out);
    out
}

#[test]
fn flow_a_full_window_holds_new_appends_until_an_acknowledgement_frees_it() {
    // etcd's MaxInflightMsgs: at most `max_inflight` appends unacknowledged.
    let mut l = replicating_leader(2);
    assert_eq!(
        sends(&propose(&mut l, vec![1])),
        vec![(1, append(1, 1, 1, vec![entry(1, 1)], 1))]
    );
    assert_eq!(
        sends(&propose(&mut l, vec![2])),
        vec![(1, append(1, 2, 1, vec![entry(1, 2)], 1))]
    );
    // Two in flight: the third batch waits.
    assert!(sends(&propose(&mut l, vec![3])).is_empty());
    assert!(sends(&propose(&mut l, vec![4])).is_empty());
    assert_eq!(l.progress(NodeId(1)).next, 4);
    // The first is acknowledged: room for one append, carrying all that waited.
    let out = recv(&mut l, 1, ok(1, 2));
    assert_eq!(
        sends(&out),
        vec![(1, append(1, 3, 1, vec![entry(1, 3), entry(1, 4)], 2))]
    );
    assert_eq!(l.progress(NodeId(1)).inflight.len(), 2);
}

#[test]
fn flow_an_acknowledgement_frees_every_append_in_flight_up_to_it() {
    // etcd's FreeLE: Ok { matched } answers every append ending at or before `matched`.
    let mut l = replicating_leader(3);
    for c in 1..=3 {
        propose(&mut l, vec![c]);
    }
    assert!(l.progress(NodeId(1)).inflight.full(3));
    // The answer to the third append arrives first (the network reorders): all three are done.
    let out = recv(&mut l, 1, ok(1, 4));
    assert!(sends(&out).is_empty(), "nothing left to send: {out:?}");
    assert!(l.progress(NodeId(1)).inflight.is_empty());
    // The older answers then free nothing and move nothing back.
    recv(&mut l, 1, ok(1, 2));
    let pr = l.progress(NodeId(1)).clone();
    assert_eq!((pr.matched, pr.next, pr.inflight.len()), (4, 5, 0));
    assert_eq!(
        sends(&propose(&mut l, vec![5])),
        vec![(1, append(1, 4, 1, vec![entry(1, 5)], 4))]
    );
}

#[test]
fn flow_a_paused_probe_is_retried_on_the_heartbeat_then_with_one_entry() {
    // etcd probes one message per heartbeat interval. The first retry is whole (a lost probe
    // or answer is repaired at once); while nothing answers, later ones carry at most one
    // entry, so a dead follower with a long way to go costs one entry per heartbeat, not
    // `max_batch`.
    let log: Vec<_> = (1..=10).map(|c| entry(1, c)).collect();
    let (mut l, won) = leader_with(2, &plain(), 2, log);
    // Winning probed n1 at the end of the log, with the no-op.
    assert_eq!(sends(&won), vec![(1, append(2, 10, 1, vec![noop(2)], 0))]);
    for _ in 0..2 {
        let hb = fire(&mut l, RaftTimer::Heartbeat);
        assert_eq!(sends(&hb), vec![(1, append(2, 10, 1, vec![noop(2)], 0))]);
    }
    // The follower holds only slots 1..=4: the probe backs off to slot 5 and, answered by a
    // rejection, goes out with a whole batch; heartbeats retry it whole, then with one entry.
    let out = recv(&mut l, 1, reject(2, 10, None, 5));
    let batch: Vec<_> = (5..=10).map(|c| entry(1, c)).chain([noop(2)]).collect();
    assert_eq!(sends(&out), vec![(1, append(2, 4, 1, batch.clone(), 0))]);
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(sends(&hb), vec![(1, append(2, 4, 1, batch, 0))]);
    for _ in 0..2 {
        let hb = fire(&mut l, RaftTimer::Heartbeat);
        assert_eq!(sends(&hb), vec![(1, append(2, 4, 1, vec![entry(1, 5)], 0))]);
    }
    assert!(l.progress(NodeId(1)).paused);
}

#[test]
fn flow_a_heartbeat_that_overtakes_its_appends_keeps_the_follower_replicating() {
    // The heartbeat, checked at `next - 1`, reaches n1 before the appends it overtook: n1
    // refuses it, and the leader ignores the refusal (the appends may be on their way).
    let mut l = replicating_leader(Config::default().max_inflight);
    propose(&mut l, vec![1]);
    propose(&mut l, vec![2]);
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(sends(&hb), vec![(1, append(1, 3, 1, vec![], 1))]);
    let (_, heartbeat) = sends(&hb).remove(0);
    // The follower got only the no-op so far.
    let mut f = boot_with(1, 2, &plain(), 1, vec![noop(1)]);
    let reply = recv(&mut f, 0, heartbeat);
    assert_eq!(sends(&reply), vec![(0, reject(1, 3, None, 2))]);
    assert_ignored(&mut l, reject(1, 3, None, 2));
    let pr = l.progress(NodeId(1));
    assert!(pr.replicating && pr.next == 4);
    // The appends then arrive and are acknowledged: nothing is sent twice.
    let out = recv(&mut l, 1, ok(1, 3));
    assert!(sends(&out).is_empty(), "{out:?}");
    assert!(l.progress(NodeId(1)).inflight.is_empty());
}

#[test]
fn flow_appends_unacknowledged_for_a_heartbeat_interval_are_presumed_lost() {
    // With nothing acknowledged from one heartbeat to the next, the appends in flight (or
    // their answers) are presumed lost: probe again after what the follower acknowledged.
    let mut l = replicating_leader(Config::default().max_inflight);
    propose(&mut l, vec![1, 2]);
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(sends(&hb), vec![(1, append(1, 3, 1, vec![], 1))]);
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(
        sends(&hb),
        vec![(1, append(1, 1, 1, vec![entry(1, 1), entry(1, 2)], 1))]
    );
    let pr = l.progress(NodeId(1)).clone();
    assert!(!pr.replicating && pr.paused && pr.inflight.is_empty());
    assert_eq!(pr.next, 2);
    // An acknowledgement between the two heartbeats shows the follower is alive: no probe.
    let mut l = replicating_leader(Config::default().max_inflight);
    propose(&mut l, vec![1]);
    propose(&mut l, vec![2]);
    fire(&mut l, RaftTimer::Heartbeat);
    recv(&mut l, 1, ok(1, 2)); // slot 2 (and the commit point) moves; slot 3 is in flight
    let hb = fire(&mut l, RaftTimer::Heartbeat);
    assert_eq!(sends(&hb), vec![(1, append(1, 3, 1, vec![], 2))]);
    assert!(l.progress(NodeId(1)).replicating);
}

#[test]
fn flow_a_duplicated_rejection_at_exactly_matched_is_ignored() {
    // n1 refused a probe at slot 1 (it had nothing), then acknowledged slot 1. A duplicate of
    // the refusal arrives: with durable logs a follower never lacks a slot it acknowledged in
    // this term, so it is stale, and must not send n1 back to probing.
    let (mut l, _) = leader_with(2, &plain(), 2, vec![entry(1, 1)]);
    recv(&mut l, 1, reject(2, 1, None, 1));
    recv(&mut l, 1, ok(2, 1));
    propose(&mut l, vec![5]);
    let pr = l.progress(NodeId(1));
    assert_eq!((pr.matched, pr.replicating), (1, true));
    assert_ignored(&mut l, reject(2, 1, None, 1));
}

#[test]
fn flow_a_replicating_follower_ignores_a_rejection_of_an_earlier_probe_past_next() {
    // Probes back off downwards; once a lower one succeeds, a late refusal of a higher one
    // (at or after `next`) answers no append sent since, and is ignored.
    let log: Vec<_> = (1..=4).map(|c| entry(1, c)).collect();
    let (mut l, _) = leader_with(2, &plain(), 2, log);
    recv(&mut l, 1, reject(2, 4, None, 2)); // probe at 4 refused: back to 2
    recv(&mut l, 1, ok(2, 5)); // the probe from slot 2 succeeded: replicating from 6
    let pr = l.progress(NodeId(1));
    assert!(pr.replicating && pr.next == 6);
    assert_ignored(&mut l, reject(2, 4, None, 2));
}

#[test]
fn flow_an_old_acknowledgement_does_not_end_a_probe() {
    // etcd turns a probe into replication only on an answer at or past the probe's slot: an
    // older acknowledgement says nothing about `next - 1`.
    let log: Vec<_> = (1..=4).map(|c| entry(1, c)).collect();
    let (mut l, _) = leader_with(2, &plain(), 2, log);
    recv(&mut l, 1, reject(2, 4, None, 4)); // probing from slot 4
    let out = recv(&mut l, 1, ok(2, 2));
    assert!(sends(&out).is_empty(), "{out:?}");
    let pr = l.progress(NodeId(1)).clone();
    assert_eq!(
        (pr.replicating, pr.paused, pr.matched, pr.next),
        (false, true, 2, 4)
    );
}

#[test]
fn flow_a_window_of_zero_is_a_config_error() {
    let cfg = Config {
        max_inflight: 0,
        ..Config::default()
    };
    assert_eq!(cfg.validate(3), Err(crate::ConfigError::MaxInflight));
    assert_eq!(
        crate::ConfigError::MaxInflight.to_string(),
        "max in-flight appends must be at least 1"
    );
}

// ---------------------------------------------------------------------------------------------
// §5.4 Safety
// ---------------------------------------------------------------------------------------------

#[test]
fn s5_4_1_votes_go_only_to_logs_at_least_as_up_to_date() {
    // §5.4.1: compare the last entries' terms first, then the lengths. Each row: the voter's
    // log (entry terms), the candidate's (last index, last term), whether the vote is granted.
    let cases: [(&[u64], Slot, u64, bool, &str); 5] = [
        (
            &[1, 3],
            5,
            2,
            false,
            "an older last term loses, however long",
        ),
        (
            &[3, 3],
            1,
            3,
            false,
            "a shorter log of the same last term loses",
        ),
        (&[3], 1, 3, true, "an equal log wins"),
        (&[3], 2, 3, true, "a longer log of the same last term wins"),
        (&[2, 2, 2], 1, 3, true, "a later last term wins over length"),
    ];
    for (terms, last_index, last_term, granted, why) in cases {
        let log = terms.iter().zip(1..).map(|(&t, c)| entry(t, c)).collect();
        let mut r = boot_with(1, 3, &plain(), 3, log);
        let out = recv(&mut r, 0, request_vote(4, last_index, last_term));
        assert_eq!(sends(&out), vec![(0, vote(4, granted))], "{why}");
        // The term is adopted whether or not the vote is granted.
        let voted = granted.then_some(NodeId(0));
        assert_eq!((r.term, r.voted_for), (4, voted), "{why}");
    }
}

#[test]
fn s5_4_2_earlier_term_entries_are_not_committed_by_counting() {
    // Figure 8: the leader of term 4 holds slot 2 from term 2; a majority storing slot 2 is
    // not enough to commit it. Once the leader's own no-op (term 4) is on a majority, both
    // commit together.
    let (mut l, _) = leader_with(3, &plain(), 4, vec![entry(1, 1), entry(2, 2)]);
    assert_eq!(l.log.last(), Some(&noop(4)));
    let out = recv(&mut l, 1, ok(4, 2));
    assert_eq!(
        l.commit, 0,
        "slot 2 is from term 2: not committed by counting"
    );
    assert_eq!(out.commits().count(), 0);
    let out = recv(&mut l, 1, ok(4, 3));
    assert_eq!(l.commit, 3);
    assert_eq!(
        out.commits().collect::<Vec<_>>(),
        vec![(1, &1), (2, &2)],
        "no-ops are not reported"
    );
}

#[test]
fn diss_6_4_a_new_leader_appends_a_noop_of_its_term() {
    let (l, out) = leader_with(3, &plain(), 2, vec![entry(1, 1)]);
    assert_eq!(l.log, vec![entry(1, 1), noop(2)]);
    assert!(out.writes().any(|w| *w
        == RaftWrite::Append {
            at: 2,
            entries: vec![noop(2)].into()
        }));
    // The no-op goes out with prev = the leader's old last entry.
    assert!(sends(&out).contains(&(1, append(2, 1, 1, vec![noop(2)], 0))));
}

// ---------------------------------------------------------------------------------------------
// PreVote (diss. §9.6)
// ---------------------------------------------------------------------------------------------

#[test]
fn prevote_does_not_raise_the_term() {
    let mut r = boot_with(0, 3, &Config::default(), 2, vec![]);
    let out = fire(&mut r, RaftTimer::Election);
    assert_eq!(
        (r.role(), r.term, r.voted_for),
        (Role::PreCandidate, 2, None)
    );
    assert_eq!(out.writes().count(), 0, "a pre-vote persists nothing");
    let pre = pre_vote_request(3, 0, 0);
    assert_eq!(sends(&out), vec![(1, pre.clone()), (2, pre)]);
}

#[test]
fn prevote_receiver_changes_nothing() {
    let mut r = boot_with(1, 3, &Config::default(), 2, vec![]);
    let out = recv(&mut r, 0, pre_vote_request(3, 0, 0));
    assert_eq!(sends(&out), vec![(0, pre_vote(3, true))]);
    assert_eq!((r.term, r.voted_for), (2, None));
    assert_eq!(out.writes().count(), 0);
}

#[test]
fn prevote_refused_to_a_log_that_is_behind() {
    let mut r = boot_with(1, 3, &Config::default(), 2, vec![entry(2, 1)]);
    let out = recv(&mut r, 0, pre_vote_request(3, 0, 0));
    assert_eq!(sends(&out), vec![(0, pre_vote(2, false))]);
}

#[test]
fn prevote_for_the_receivers_own_term_is_refused_with_that_term() {
    // A pre-vote asks whether the sender could win the next term (diss. §9.6). A receiver
    // already in that term has seen its candidate or leader: it refuses, and its term in
    // the refusal brings the sender up to date instead of into a campaign.
    let mut r = boot_with(1, 3, &Config::default(), 2, vec![]);
    let out = recv(&mut r, 0, pre_vote_request(2, 0, 0));
    assert_eq!(sends(&out), vec![(0, pre_vote(2, false))]);
    assert_eq!(r.term, 2);
}

#[test]
fn prevote_majority_starts_the_real_election() {
    let mut r = boot_with(0, 3, &Config::default(), 2, vec![]);
    fire(&mut r, RaftTimer::Election);
    let out = recv(&mut r, 2, pre_vote(3, true));
    assert_eq!(
        (r.role(), r.term, r.voted_for),
        (Role::Candidate, 3, Some(NodeId(0)))
    );
    assert_eq!(
        sends(&out),
        vec![(1, request_vote(3, 0, 0)), (2, request_vote(3, 0, 0))]
    );
    // A late pre-vote grant no longer counts for anything.
    recv(&mut r, 1, pre_vote(3, true));
    assert_eq!(r.role(), Role::Candidate);
}

// ---------------------------------------------------------------------------------------------
// CheckQuorum (diss. §6.2) and the leader lease of diss. §4.2.3
// ---------------------------------------------------------------------------------------------

#[test]
fn checkquorum_leader_without_a_majority_steps_down() {
    let cfg = Config {
        pre_vote: false,
        ..Config::default()
    };
    let (mut l, _) = leader_with(5, &cfg, 1, vec![]);
    recv(&mut l, 1, ok(1, 1)); // only n1 answered: 2 of 5
    fire(&mut l, RaftTimer::Election);
    assert_eq!((l.role(), l.term, l.leader), (Role::Follower, 1, None));
}

#[test]
fn checkquorum_leader_with_a_majority_stays_and_starts_a_new_round() {
    let cfg = Config {
        pre_vote: false,
        ..Config::default()
    };
    let (mut l, _) = leader_with(3, &cfg, 1, vec![]);
    recv(&mut l, 2, ok(1, 1));
    fire(&mut l, RaftTimer::Election);
    assert_eq!(l.role(), Role::Leader);
    // Nobody answered in the new round: the next check deposes it.
    fire(&mut l, RaftTimer::Election);
    assert_eq!(l.role(), Role::Follower);
}

#[test]
fn a_node_other_than_n0_counts_itself_in_every_majority() {
    // §5.2: a candidate votes for itself; diss. §9.6: a pre-candidate counts its own pre-vote;
    // diss. §6.2: a leader counts itself among the members heard from. Node 2, so that its
    // bit is not bit 0.
    let mut r = fresh(2, 3, &Config::default());
    fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::PreCandidate);
    recv(&mut r, 0, pre_vote(1, true));
    assert_eq!(
        (r.role(), r.term),
        (Role::Candidate, 1),
        "its pre-vote and n0's"
    );
    recv(&mut r, 0, vote(1, true));
    assert_eq!(r.role(), Role::Leader, "its vote and n0's");
    let out = recv(&mut r, 0, ok(1, 1));
    assert_eq!(r.commit, 1, "its no-op is stored on itself and n0: {out:?}");
    // CheckQuorum: itself and n0 were heard, before the first check and after its reset.
    fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::Leader);
    recv(&mut r, 0, ok(1, 1));
    fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::Leader);
}

#[test]
fn checkquorum_follower_with_a_live_leader_refuses_to_vote() {
    let cfg = Config {
        pre_vote: false,
        ..Config::default()
    };
    let mut r = boot_with(1, 3, &cfg, 1, vec![]);
    recv(&mut r, 0, append(1, 0, 0, vec![], 0));
    let out = recv(&mut r, 2, request_vote(2, 5, 1));
    assert_eq!(sends(&out), vec![(2, vote(1, false))]);
    assert_eq!(
        (r.term, r.voted_for),
        (1, None),
        "the disruptive term is not adopted"
    );
    // Once the *minimum* election timeout passes without word from the leader, the lease is
    // gone (diss. §4.2.3), before the replica's own randomized timeout makes it campaign: a
    // request for term 2 deposes nothing and gets the vote, durably, before the reply.
    fire(&mut r, RaftTimer::Election);
    assert_eq!((r.role(), r.term), (Role::Follower, 1));
    let out = recv(&mut r, 2, request_vote(2, 5, 1));
    assert_eq!(sends(&out), vec![(2, vote(2, true))]);
    assert_eq!(
        (r.role(), r.term, r.voted_for),
        (Role::Follower, 2, Some(NodeId(2)))
    );
    assert!(out.writes().any(|w| *w
        == RaftWrite::HardState {
            term: 2,
            voted_for: Some(NodeId(2))
        }));
}

/// Diss. §4.2.3: the lease lasts the minimum election timeout, while the follower's own bid
/// waits for its randomized one. Hearing from the leader arms the election timer for exactly
/// the minimum; that firing ends the lease and arms the rest of the range, so the total wait
/// is still a draw from the whole range; the next firing campaigns.
#[test]
fn checkquorum_the_lease_ends_at_the_minimum_election_timeout_and_the_bid_waits_for_the_rest() {
    let cfg = Config::default();
    let (min, max) = (cfg.election_timeout.start, cfg.election_timeout.end);
    assert!(min < max, "the default draws from a range");
    let election = |out: &O| {
        out.iter()
            .filter_map(|e| match e {
                Effect::SetTimer {
                    timer: RaftTimer::Election,
                    after,
                } => Some(after.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut r = boot_with(1, 3, &cfg, 1, vec![]);
    let out = recv(&mut r, 0, append(1, 0, 0, vec![], 0));
    assert_eq!(
        election(&out),
        vec![min..min],
        "the lease: the minimum, exactly"
    );
    assert!(r.in_lease());
    let out = fire(&mut r, RaftTimer::Election);
    assert!(!r.in_lease(), "the lease ended at the minimum");
    assert_eq!(r.role(), Role::Follower, "no bid yet");
    assert!(sends(&out).is_empty(), "{out:?}");
    assert_eq!(
        election(&out),
        vec![std::time::Duration::ZERO..max - min],
        "the rest"
    );
    let out = fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::PreCandidate, "the bid");
    assert_eq!(sends(&out).len(), 2, "pre-votes to both peers: {out:?}");
    assert_eq!(election(&out), vec![min..max], "a whole draw for the round");
    // Without CheckQuorum there is no lease: one whole draw, then the bid.
    let cfg = Config {
        check_quorum: false,
        ..Config::default()
    };
    let mut r = boot_with(1, 3, &cfg, 1, vec![]);
    let out = recv(&mut r, 0, append(1, 0, 0, vec![], 0));
    assert_eq!(election(&out), vec![min..max]);
    fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::PreCandidate);
}

#[test]
fn checkquorum_a_lease_lapses_when_a_later_term_is_adopted_without_a_leader() {
    // etcd-raft's becomeFollower(term, None) forgets the leader, and with it the lease: a
    // follower that learns of a later term from anything but that term's leader (here a
    // stale leader's late reply) grants a vote at once rather than after one more timeout.
    let mut r = boot_with(1, 3, &Config::default(), 1, vec![]);
    recv(&mut r, 0, append(1, 0, 0, vec![], 0));
    assert!(lease(&r));
    recv(&mut r, 2, ok(2, 0));
    assert_eq!(
        (r.role(), r.term, r.leader, lease(&r)),
        (Role::Follower, 2, None, false)
    );
    let out = recv(&mut r, 2, request_vote(3, 5, 2));
    assert_eq!(sends(&out), vec![(2, vote(3, true))]);
}

#[test]
fn checkquorum_lease_refuses_only_requests_that_would_raise_the_term() {
    // The lease exists so that a disruptive node cannot raise the term (diss. §4.2.3). A
    // request of the current term raises nothing: it is judged by §5.2/§5.4.1 as usual, so a
    // follower that had not voted in term 1 may grant a late candidate of term 1 (safe: the
    // leader's majority voted for the leader and refuses it).
    let mut r = boot_with(1, 3, &Config::default(), 1, vec![]);
    recv(&mut r, 0, append(1, 0, 0, vec![], 0));
    assert!(lease(&r) && r.voted_for.is_none());
    let out = recv(&mut r, 2, request_vote(1, 0, 0));
    assert_eq!(sends(&out), vec![(2, vote(1, true))]);
}

#[test]
fn a_vote_request_of_the_current_term_does_not_depose_a_leader_or_candidate() {
    // §5.1: only a *higher* term turns a leader or candidate into a follower. A losing
    // candidate's late request of the same term is refused (the vote went to ourselves).
    let (mut l, _) = leader_with(3, &plain(), 2, vec![]);
    let out = recv(&mut l, 1, request_vote(2, 5, 2));
    assert_eq!(sends(&out), vec![(1, vote(2, false))]);
    assert_eq!(l.role(), Role::Leader);
    assert!(
        !out.iter().any(|e| matches!(e, Effect::CancelTimer(_))),
        "the heartbeat goes on"
    );
    let mut c = fresh(0, 3, &plain());
    fire(&mut c, RaftTimer::Election);
    let out = recv(&mut c, 1, request_vote(1, 5, 1));
    assert_eq!(sends(&out), vec![(1, vote(1, false))]);
    assert_eq!(
        c.state,
        RoleState::Candidate {
            votes: NodeSet::from_bits(0b001)
        }
    );
}

#[test]
fn checkquorum_a_leader_refuses_pre_votes_and_votes_while_it_leads() {
    let cfg = Config {
        pre_vote: true,
        ..Config::default()
    };
    let (mut l, _) = leader_with(3, &cfg, 2, vec![]);
    let out = recv(&mut l, 2, pre_vote_request(3, 9, 2));
    assert_eq!(sends(&out), vec![(2, pre_vote(2, false))]);
    let out = recv(&mut l, 2, request_vote(3, 9, 2));
    assert_eq!(sends(&out), vec![(2, vote(2, false))]);
    assert_eq!((l.role(), l.term), (Role::Leader, 2));
}

// ---------------------------------------------------------------------------------------------
// Persistence (Figure 2) and restart
// ---------------------------------------------------------------------------------------------

#[test]
fn restart_restores_term_vote_and_log_but_not_commit() {
    // Figure 2: the replica boots from what it persisted, nothing else. Every write it emits
    // from a fresh boot on (its vote, its no-op, a command) is replayed onto an empty image,
    // and the restarted replica is booted from that image alone.
    let mut image = RaftDurable::default();
    let mut keep = |out: &O| {
        for w in out.writes() {
            R::apply_write(&mut image, w);
        }
    };
    let mut out = Effects::new();
    let mut l = R::boot(NodeId(0), &ids(3), None, &plain(), &mut out);
    keep(&out);
    keep(&fire(&mut l, RaftTimer::Election));
    keep(&recv(&mut l, 1, vote(1, true)));
    let mut out = Effects::new();
    l.propose(vec![3], &mut out);
    keep(&out);
    keep(&recv(&mut l, 1, ok(1, 2)));
    assert_eq!((l.role(), l.commit), (Role::Leader, 2));

    let mut out = Effects::new();
    let r = R::boot(NodeId(0), &ids(3), Some(&image), &plain(), &mut out);
    assert_eq!(
        (r.term, r.voted_for, r.log.clone()),
        (1, Some(NodeId(0)), vec![noop(1), entry(1, 3)])
    );
    assert_eq!(
        (r.role(), r.commit),
        (Role::Follower, 0),
        "volatile state is relearned"
    );
}

#[test]
fn apply_write_truncates_then_appends() {
    let mut d = RaftDurable {
        term: 1,
        voted_for: None,
        log: vec![entry(1, 1), entry(1, 2), entry(1, 3)],
        snapshot: None,
    };
    R::apply_write(
        &mut d,
        &RaftWrite::Append {
            at: 2,
            entries: vec![entry(2, 9)].into(),
        },
    );
    assert_eq!(d.log, vec![entry(1, 1), entry(2, 9)]);
    R::apply_write(
        &mut d,
        &RaftWrite::HardState {
            term: 2,
            voted_for: Some(NodeId(3)),
        },
    );
    assert_eq!((d.term, d.voted_for), (2, Some(NodeId(3))));
}

// ---------------------------------------------------------------------------------------------
// The invariants themselves can fail
// ---------------------------------------------------------------------------------------------

#[test]
fn invariants_reject_broken_states() {
    let (a, _) = leader_with(3, &plain(), 2, vec![]);
    let mut b = a.clone();
    b.id = NodeId(1);
    assert!(election_safety(&[&a, &b]).is_err(), "two leaders of term 2");
    b.state = RoleState::Follower {
        leader_alive: false,
    };
    assert!(election_safety(&[&a, &b]).is_ok());

    let mut c = b.clone();
    c.log = vec![entry(1, 1), entry(2, 2)];
    b.log = vec![entry(1, 7), entry(2, 2)];
    assert!(
        log_matching(&[&b, &c]).is_err(),
        "same term at slot 2, different slot 1"
    );

    c.commit = 2;
    c.term = 1;
    assert!(
        leader_completeness(&[&a, &c]).is_err(),
        "leader lacks c's committed entries"
    );

    let mut d = a.clone();
    d.term = 1;
    assert!(term_monotonic(&a, &d).is_err());
    let mut e = a.clone();
    e.voted_for = Some(NodeId(2));
    assert!(one_vote_per_term(&a, &e).is_err());
}

#[test]
fn each_registered_invariant_flags_its_own_violation_only() {
    // The checkers (the driver after every step, the model in every state) see only what
    // these lists register: each must be there and catch its own violation.
    let base = fresh(0, 3, &plain());
    let with = |f: &dyn Fn(&mut R)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let steps = [
        // terms never decrease
        (with(&|r| r.term = 2), with(&|r| r.term = 1)),
        // one vote per term
        (
            with(&|r| (r.term, r.voted_for) = (2, Some(NodeId(0)))),
            with(&|r| (r.term, r.voted_for) = (2, Some(NodeId(2)))),
        ),
        // committed entries never change
        (
            with(&|r| (r.commit, r.log) = (1, vec![entry(1, 1)])),
            with(&|r| (r.commit, r.log) = (1, vec![entry(1, 2)])),
        ),
        // one configuration change at a time: a leader of term 2 that has committed nothing
        // of its term appends a configuration
        (
            with(&|r| (r.state, r.term, r.log) = (leading(3), 2, vec![noop(2)])),
            with(&|r| {
                let c = Membership::voters(NodeSet::first(2));
                (r.state, r.term) = (leading(3), 2);
                r.log = vec![noop(2), Entry::configuration(2, c)];
            }),
        ),
    ];
    let pair = (base.clone(), base.clone());
    crate::replica::assert_each_flags_only_its_own(
        &R::step_invariants(),
        &steps,
        &pair,
        |check, (before, after)| check(before, after).is_err(),
    );

    let leader =
        |id: u8, term: u64| with(&|r| (r.id, r.state, r.term) = (NodeId(id), leading(3), term));
    let clusters = [
        // two leaders of term 2
        vec![leader(0, 2), leader(1, 2)],
        // the same term at slot 2, different entries at slot 1
        vec![
            with(&|r| r.log = vec![entry(1, 7), entry(2, 2)]),
            with(&|r| r.log = vec![entry(1, 1), entry(2, 2)]),
        ],
        // a leader of term 2 lacks what a follower of term 1 committed (on a quorum)
        vec![
            leader(0, 2),
            with(&|r| (r.id, r.term, r.commit, r.log) = (NodeId(1), 1, 1, vec![entry(1, 1)])),
            with(&|r| (r.id, r.term, r.log) = (NodeId(2), 1, vec![entry(1, 1)])),
        ],
        // n1 committed slot 1, which no other replica holds
        vec![with(&|r| {
            (r.id, r.term, r.commit, r.log) = (NodeId(1), 1, 1, vec![entry(1, 1)])
        })],
        // n0 leads term 2 and told n1 to campaign, but n1 lacks its last entry
        vec![
            with(&|r| {
                (r.state, r.term, r.log) = (leading(3), 2, vec![noop(2)]);
                if let RoleState::Leader { transfer, .. } = &mut r.state {
                    *transfer = Some(Transfer {
                        id: 1,
                        target: NodeId(1),
                        sent: true,
                    });
                }
            }),
            with(&|r| (r.id, r.term) = (NodeId(1), 2)),
        ],
    ];
    crate::replica::assert_each_flags_only_its_own(
        &R::cluster_invariants(),
        &clusters,
        &vec![leader(0, 2), base.clone()],
        |check, rs| check(&rs.iter().collect::<Vec<_>>()).is_err(),
    );
}

#[test]
fn invariants_report_a_commit_point_past_the_log_and_a_forgotten_vote() {
    // A buggy replica (bug zoo R6) can hold a commit point past its own log: the checks say
    // so instead of panicking on the slice.
    let base = fresh(0, 3, &plain());
    let with = |f: &dyn Fn(&mut R)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let leader =
        with(&|r| (r.state, r.term, r.log) = (leading(3), 2, vec![entry(1, 1), entry(1, 2)]));
    let short = with(&|r| (r.term, r.commit, r.log) = (1, 2, vec![entry(1, 1)]));
    assert!(leader_completeness(&[&leader, &short]).is_err());
    let full = with(&|r| (r.commit, r.log) = (2, vec![entry(1, 1), entry(1, 2)]));
    let cut = with(&|r| (r.commit, r.log) = (2, vec![entry(1, 1)]));
    assert!(
        committed_stable(&full, &cut).is_err(),
        "a committed entry was cut off"
    );
    assert!(
        committed_stable(&cut, &full).is_err(),
        "it committed past its log"
    );
    // §5.2: a vote, once cast, is kept for the whole term.
    let voted = with(&|r| (r.term, r.voted_for) = (2, Some(NodeId(1))));
    let forgot = with(&|r| r.term = 2);
    assert!(one_vote_per_term(&voted, &forgot).is_err());
    assert!(
        one_vote_per_term(&voted, &with(&|r| r.term = 3)).is_ok(),
        "a new term"
    );
}

// ---------------------------------------------------------------------------------------------
// Symmetry reduction
// ---------------------------------------------------------------------------------------------

/// The renaming n0 -> n1, n1 -> n2, n2 -> n0.
const ROTATE: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(0)];

#[test]
fn renaming_moves_every_node_id_and_every_per_member_position() {
    // Symmetry reduction (models/src/symmetry.rs) keeps one state per renaming class. Raft
    // treats all nodes alike, so the renamed replica must be exactly the one the renamed run
    // would hold: every id it stores and every per-member bitmask and progress slot moves.
    let (mut r, _) = leader_with(3, &plain(), 2, vec![noop(1)]);
    r.voted_for = Some(NodeId(0));
    let p = |next, matched| Progress {
        next,
        matched,
        replicating: matched > 0,
        paused: false,
        ..Progress::default()
    };
    r.state = RoleState::Leader {
        active: NodeSet::from_bits(0b101), // n0 and n2
        progress: vec![p(9, 0), p(3, 2), p(2, 0)],
        reads: Box::new(LeaderReads::default()),
        change: None,
        transfer: None,
    };
    let before = r.clone();
    r.rename(&Renaming(&ROTATE));
    assert_eq!(r.id, NodeId(1));
    assert_eq!(r.voted_for, Some(NodeId(1)));
    assert_eq!(r.leader, Some(NodeId(1)));
    assert_eq!(
        r.state,
        RoleState::Leader {
            active: NodeSet::from_bits(0b011), // n1 and n0 were heard
            progress: vec![p(2, 0), p(9, 0), p(3, 2)],
            reads: Box::new(LeaderReads::default()),
            change: None,
            transfer: None,
        }
    );
    // A candidate's votes move the same way.
    let mut c = fresh(0, 3, &plain());
    c.state = RoleState::Candidate {
        votes: NodeSet::from_bits(0b011),
    }; // n0 and n1
    c.rename(&Renaming(&ROTATE));
    assert_eq!(
        c.state,
        RoleState::Candidate {
            votes: NodeSet::from_bits(0b110)
        },
        "n1 and n2 voted"
    );
    // What names no node stays.
    assert_eq!(
        (r.term, &r.log, r.commit),
        (before.term, &before.log, before.commit)
    );

    let mut d = before.durable();
    R::rename_durable(&mut d, &Renaming(&ROTATE));
    assert_eq!(d.voted_for, Some(NodeId(1)));
    assert_eq!((d.term, d.log), (before.term, before.log));
}

// ---------------------------------------------------------------------------------------------
// Bug-zoo switches change exactly the rule they name
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Obsolete messages (hosts may drop them; the model checker does)
// ---------------------------------------------------------------------------------------------

/// Every message `obsolete` declares dead is also a no-op now: no effect, no state change.
fn assert_dead_and_ignored(r: &R, from: u8, msg: RaftMsg<Cmd>) {
    assert!(r.obsolete(NodeId(from), &msg), "{msg:?} should be obsolete");
    let mut x = r.clone();
    let out = recv(&mut x, from, msg.clone());
    assert!(out.is_empty() && x == *r, "{msg:?} was acted on: {out:?}");
}

#[test]
fn messages_from_itself_or_outside_the_id_space_are_ignored() {
    // A vote request from outside the id space (or looped back from ourselves) must not win
    // a vote or raise the term, and a host may drop such messages. (A node of the id space
    // outside our configuration is heard: it may lead a configuration that adds us.)
    let r = fresh(1, 3, &plain());
    for from in [1, 7] {
        let msg = request_vote(9, 0, 0);
        assert!(r.obsolete(NodeId(from), &msg), "from n{from}");
        let mut x = r.clone();
        let out = recv(&mut x, from, msg);
        assert!(out.is_empty() && x == r, "n{from} was answered: {out:?}");
    }
}

#[test]
fn replies_from_a_term_or_role_left_behind_are_obsolete() {
    // A leader of term 3: a vote from its own campaign, a pre-vote from before it, and an
    // append reply from an older term are all dead; requests never are.
    let (r, _) = leader_with(3, &plain(), 3, vec![]);
    assert_dead_and_ignored(&r, 2, vote(3, true));
    assert_dead_and_ignored(&r, 2, vote(2, true));
    assert_dead_and_ignored(&r, 2, pre_vote(3, true));
    assert_dead_and_ignored(&r, 2, ok(2, 0));
    assert!(
        !r.obsolete(NodeId(2), &ok(3, 1)),
        "its own term's reply counts"
    );
    assert!(
        !r.obsolete(NodeId(2), &request_vote(1, 0, 0)),
        "requests are answered"
    );
    assert!(!r.obsolete(NodeId(2), &append(1, 0, 0, vec![], 0)));
}

#[test]
fn replies_that_can_still_change_something_are_not_obsolete() {
    // A candidate counts votes of its own term; a later term in any reply deposes a leader
    // or moves a follower on (§5.1). Only a follower's reply to an append of its own term
    // is dead: it sent no append in that term.
    let mut c = fresh(0, 3, &plain());
    fire(&mut c, RaftTimer::Election);
    assert!(!c.obsolete(NodeId(1), &vote(1, true)));
    let (l, _) = leader_with(3, &plain(), 3, vec![]);
    assert!(!l.obsolete(NodeId(1), &vote(5, false)));
    let f = boot_with(1, 3, &plain(), 3, vec![]);
    assert!(!f.obsolete(NodeId(0), &ok(5, 1)));
    assert_dead_and_ignored(&f, 0, ok(3, 1));
}

#[test]
fn a_pre_vote_grant_for_the_next_term_is_kept_for_a_later_pre_campaign() {
    // A follower of term 1 got a pre-vote grant for term 2 after its pre-campaign ended: it
    // ignores it now, but a later pre-campaign in term 1 would count it, so it is not dead.
    let mut cfg = plain();
    cfg.pre_vote = true;
    let mut r = fresh(0, 3, &cfg);
    fire(&mut r, RaftTimer::Election);
    assert_eq!(r.role(), Role::PreCandidate);
    let mut follower = r.clone();
    recv(&mut follower, 1, append(1, 0, 0, vec![], 0));
    assert_eq!((follower.role(), follower.term), (Role::Follower, 1));
    assert!(!follower.obsolete(NodeId(2), &pre_vote(2, true)));
    fire(&mut follower, RaftTimer::Election);
    assert_eq!(follower.role(), Role::PreCandidate);
    recv(&mut follower, 2, pre_vote(2, true));
    assert_eq!(follower.role(), Role::Candidate, "the late grant counted");
}

#[cfg(feature = "bug-zoo")]
mod bugs {
    use super::*;
    use crate::bugs::BugSet;

    fn with(bug: Bug) -> Config {
        Config {
            bugs: BugSet::only(bug),
            ..plain()
        }
    }

    #[test]
    fn r1_figure8_commit_counts_an_old_term_entry() {
        let (mut l, _) = leader_with(
            3,
            &with(Bug::Figure8Commit),
            4,
            vec![entry(1, 1), entry(2, 2)],
        );
        recv(&mut l, 1, ok(4, 2));
        assert_eq!(l.commit, 2);
    }

    #[test]
    fn r2_vote_without_log_check_grants_to_a_behind_candidate() {
        let mut r = boot_with(1, 3, &with(Bug::VoteWithoutLogCheck), 3, vec![entry(3, 1)]);
        assert_eq!(
            sends(&recv(&mut r, 0, request_vote(4, 0, 0))),
            vec![(0, vote(4, true))]
        );
    }

    #[test]
    fn r3_vote_not_persisted_replies_without_a_write() {
        let mut r = fresh(1, 3, &with(Bug::VoteNotPersisted));
        let out = recv(&mut r, 0, request_vote(1, 0, 0));
        assert_eq!(
            out.writes().cloned().collect::<Vec<_>>(),
            vec![RaftWrite::HardState {
                term: 1,
                voted_for: None
            }]
        );
    }

    #[test]
    fn r4_log_not_persisted_acks_without_a_write() {
        let mut r = fresh(1, 3, &with(Bug::LogNotPersisted));
        let out = recv(&mut r, 0, append(1, 0, 0, vec![entry(1, 1)], 0));
        assert!(!out.writes().any(|w| matches!(w, RaftWrite::Append { .. })));
        assert_eq!(sends(&out), vec![(0, ok(1, 1))]);
    }

    #[test]
    fn r5_double_vote_grants_a_second_candidate() {
        let mut r = fresh(2, 3, &with(Bug::DoubleVote));
        recv(&mut r, 0, request_vote(1, 0, 0));
        assert_eq!(
            sends(&recv(&mut r, 1, request_vote(1, 0, 0))),
            vec![(1, vote(1, true))]
        );
    }

    #[test]
    fn r6_truncate_on_stale_append_erases_later_entries() {
        let mut r = boot_with(
            1,
            3,
            &with(Bug::TruncateOnStaleAppend),
            2,
            vec![entry(2, 1), entry(2, 2), entry(2, 3)],
        );
        let out = recv(&mut r, 0, append(2, 1, 2, vec![entry(2, 2)], 0));
        assert_eq!(r.log, vec![entry(2, 1), entry(2, 2)]);
        // The write says the same, so the durable image loses slot 3 too.
        assert_eq!(
            out.writes().cloned().collect::<Vec<_>>(),
            vec![RaftWrite::Append {
                at: 2,
                entries: vec![entry(2, 2)].into()
            }]
        );
    }

    #[test]
    fn r7_commit_past_verified_prefix_applies_a_stale_entry() {
        let mut r = boot_with(
            1,
            3,
            &with(Bug::CommitPastVerifiedPrefix),
            1,
            vec![entry(1, 1), entry(1, 2), entry(1, 99)],
        );
        recv(&mut r, 0, append(2, 1, 1, vec![entry(1, 2)], 3));
        assert_eq!(r.commit, 3);
    }

    #[test]
    fn r8_no_step_down_keeps_a_leader_in_place() {
        let (mut l, _) = leader_with(3, &with(Bug::NoStepDown), 2, vec![]);
        recv(
            &mut l,
            1,
            RaftMsg::AppendReply {
                term: 7,
                result: AppendResult::StaleTerm,
            },
        );
        assert_eq!((l.role(), l.term), (Role::Leader, 2));
    }

    #[test]
    fn r8_no_step_down_ignores_every_later_term_but_followers_still_adopt_it() {
        let cfg = with(Bug::NoStepDown);
        // A leader ignores a later term in a vote request and in an append.
        let (mut l, _) = leader_with(3, &cfg, 2, vec![]);
        let out = recv(&mut l, 1, request_vote(7, 9, 7));
        assert!(out.is_empty(), "{out:?}");
        recv(&mut l, 1, append(7, 0, 0, vec![], 0));
        assert_eq!((l.role(), l.term), (Role::Leader, 2));
        // A candidate ignores a refusal from a later term.
        let mut c = fresh(0, 3, &cfg);
        fire(&mut c, RaftTimer::Election);
        recv(&mut c, 1, vote(4, false));
        assert_eq!((c.role(), c.term), (Role::Candidate, 1));
        // It still yields to a leader of its own term (§5.2): the bug is about later terms.
        recv(&mut c, 2, append(1, 0, 0, vec![], 0));
        assert_eq!((c.role(), c.leader), (Role::Follower, Some(NodeId(2))));
        // The bug is the leader's and the candidate's only: a follower adopts later terms.
        let mut f = fresh(1, 3, &cfg);
        recv(&mut f, 0, request_vote(3, 0, 0));
        assert_eq!(f.term, 3);
        recv(&mut f, 2, append(4, 0, 0, vec![], 0));
        assert_eq!(f.term, 4);
        recv(&mut f, 2, vote(5, false));
        assert_eq!((f.role(), f.term), (Role::Follower, 5));
    }

    #[test]
    fn r11_vote_sent_before_persist_replies_ahead_of_the_write() {
        // Figure 2: "Persistent state on all servers: (Updated on stable storage before
        // responding to RPCs)". R11 still writes the vote, but after the reply.
        let mut r = fresh(1, 3, &with(Bug::VoteSentBeforePersist));
        let out = recv(&mut r, 0, request_vote(1, 0, 0));
        let vote_write = RaftWrite::HardState {
            term: 1,
            voted_for: Some(NodeId(0)),
        };
        let effects: Vec<_> = out.iter().cloned().collect();
        let persist = effects
            .iter()
            .position(|e| *e == Effect::Persist(vote_write.clone()))
            .expect("the vote is still written");
        let reply = effects
            .iter()
            .position(|e| matches!(e, Effect::Send { .. }))
            .unwrap();
        assert_eq!(persist, reply + 1, "the write comes right after the reply");
        assert_eq!(sends(&out), vec![(0, vote(1, true))]);
        // The new term alone (no vote) may still be written first.
        assert!(effects[..reply]
            .iter()
            .all(|e| *e != Effect::Persist(vote_write.clone())));
        assert_eq!(r.voted_for, Some(NodeId(0)));
    }

    #[test]
    fn r9_no_prevote_campaigns_with_a_raised_term() {
        let cfg = Config {
            bugs: BugSet::only(Bug::NoPreVote),
            ..Config::default()
        };
        let mut r = fresh(0, 3, &cfg);
        fire(&mut r, RaftTimer::Election);
        assert_eq!((r.role(), r.term), (Role::Candidate, 1));
    }
}
