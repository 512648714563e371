//! Unit tests of Raft's reads without the log (ReadIndex, Ongaro's dissertation §6.4; see
//! [`super::read`]): each steps one replica with messages and asserts the exact effects, and
//! names the rule it checks. A seeded random walk at the end runs reads among every other
//! fault on the driver, which checks "reads see every earlier commit" and "reads served from
//! applied state" after each step.

use super::read::Asker;
use super::tests::{boot_with, entry, fire, ok, recv, sends};
use super::*;
use crate::driver::WalkRng;
use crate::replica::{Effect, Effects, LocalReads, ReadMode};

type Cmd = u32;
type R = Raft<Cmd>;
type O = Out<R, Cmd>;

/// ReadIndex reads, PreVote and CheckQuorum off (the plain algorithm), follower reads as asked.
fn cfg(follower_reads: bool) -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        reads: ReadMode::ReadIndex,
        follower_reads,
        ..Config::default()
    }
}

fn read(r: &mut R, ids: &[ReadId]) -> O {
    let mut out = Effects::new();
    r.read(ids.to_vec(), &mut out);
    out
}

fn ready(out: &O) -> Vec<(ReadId, Slot)> {
    out.reads_ready().collect()
}

fn redirects(out: &O) -> Vec<(ReadId, Option<NodeId>)> {
    out.read_redirects().collect()
}

fn confirm(term: u64, round: u64) -> RaftMsg<Cmd> {
    RaftMsg::ReadConfirm { term, round }
}

fn ack(term: u64, round: u64) -> RaftMsg<Cmd> {
    RaftMsg::ReadAck { term, round }
}

/// Fire the heartbeat timer; the read rounds it sends, as (peer, round number).
fn heartbeat_rounds(r: &mut R) -> Vec<(u8, u64)> {
    rounds(&fire(r, RaftTimer::Heartbeat))
}

/// The read rounds among `out`'s sends, as (peer, round number).
fn rounds(out: &O) -> Vec<(u8, u64)> {
    sends(out)
        .into_iter()
        .filter_map(|(to, m)| match m {
            RaftMsg::ReadConfirm { round, .. } => Some((to, round)),
            _ => None,
        })
        .collect()
}

fn index_reply(term: u64, req: u64, ids: &[ReadId], index: Option<Slot>) -> RaftMsg<Cmd> {
    RaftMsg::ReadIndexReply {
        term,
        req,
        ids: ids.to_vec(),
        index,
    }
}

/// Node `id` of an `n`-node cluster wins `term` with `log` in place; its no-op of `term` is
/// appended but not committed.
fn leader(id: u8, n: u8, cfg: &Config, term: u64, log: Vec<Entry<Cmd>>) -> R {
    let mut r = boot_with(id, n, cfg, term - 1, log);
    // Restarted under leases it starts in a lease (diss. §6.4.1): its end first, then the bid.
    if r.lease_runs_on_timer() {
        r.on_timer(RaftTimer::Election, &mut Effects::new());
    }
    r.on_timer(RaftTimer::Election, &mut Effects::new());
    for p in (0..n).filter(|&p| p != id) {
        if r.is_leader() {
            break;
        }
        recv(
            &mut r,
            p,
            RaftMsg::Vote {
                term,
                granted: true,
                pre_vote: false,
            },
        );
    }
    assert!(r.is_leader() && r.term == term);
    r
}

/// A leader whose no-op of its term is committed (a majority stored it), so reads get an
/// index at once.
fn committed_leader(n: u8, cfg: &Config, term: u64) -> R {
    let mut r = leader(0, n, cfg, term, vec![]);
    let last = r.last_index();
    for p in 1..=(n / 2) {
        recv(&mut r, p, ok(term, last));
    }
    assert!(r.term_committed());
    r
}

/// The follower `id` of an `n`-node cluster, following n0 in `term` with `log` and `commit`.
fn follower(id: u8, n: u8, cfg: &Config, term: u64, log: Vec<Entry<Cmd>>, commit: Slot) -> R {
    let mut r = boot_with(id, n, cfg, term, vec![]);
    let append = RaftMsg::Append {
        term,
        prev_index: 0,
        prev_term: 0,
        entries: log.into(),
        commit,
    };
    recv(&mut r, 0, append);
    assert_eq!((r.leader, r.commit), (Some(NodeId(0)), commit));
    r
}

// ---------------------------------------------------------------------------------------------
// The leader (diss. §6.4 steps 1 to 3)
// ---------------------------------------------------------------------------------------------

#[test]
fn diss_6_4_a_read_waits_for_the_terms_first_commit() {
    // n0 leads term 2 holding x (slot 1, term 1) that it cannot know committed; its no-op is
    // slot 2. A read confirmed by a majority still waits: the commit point (0) may lag what
    // the last leader committed. When the no-op commits, the index is that commit point (2),
    // made ready after the commits it covers.
    let mut r = leader(0, 3, &cfg(false), 2, vec![entry(1, 7)]);
    let out = read(&mut r, &[10]);
    assert_eq!(
        sends(&out),
        vec![(1, confirm(2, 1)), (2, confirm(2, 1))],
        "one round for the read"
    );
    assert!(ready(&out).is_empty());
    let out = recv(&mut r, 1, ack(2, 1));
    assert!(
        ready(&out).is_empty(),
        "confirmed, but the term has not committed"
    );
    let out = recv(&mut r, 1, ok(2, 2));
    let effects: Vec<_> = out
        .iter()
        .filter(|e| matches!(e, Effect::Commit { .. } | Effect::ReadReady { .. }))
        .cloned()
        .collect();
    assert_eq!(
        effects,
        vec![
            Effect::Commit { slot: 1, cmd: 7 },
            Effect::ReadReady { id: 10, slot: 2 }
        ]
    );
}

#[test]
fn diss_6_4_a_read_after_the_terms_first_commit_is_indexed_at_the_commit_point() {
    let mut r = committed_leader(3, &cfg(false), 1);
    let mut out = Effects::new();
    r.propose(vec![5], &mut out);
    recv(&mut r, 1, ok(1, 2));
    assert_eq!(r.commit, 2);
    read(&mut r, &[1, 2]);
    let out = recv(&mut r, 2, ack(1, 1));
    assert_eq!(
        ready(&out),
        vec![(1, 2), (2, 2)],
        "one round serves the batch"
    );
}

#[test]
fn diss_6_4_a_round_sent_before_the_read_does_not_confirm_it() {
    // Read 1 gets round 1; read 2 arrives later and gets round 2. An acknowledgement of round
    // 1 (n1's, then a late one from n2) may predate read 2: a newer leader could have
    // committed in between. Only an acknowledgement of round 2 serves it.
    let mut r = committed_leader(3, &cfg(false), 1);
    read(&mut r, &[1]);
    let out = recv(&mut r, 1, ack(1, 1));
    assert_eq!(ready(&out), vec![(1, 1)]);
    let out = read(&mut r, &[2]);
    assert_eq!(sends(&out), vec![(1, confirm(1, 2)), (2, confirm(1, 2))]);
    let out = recv(&mut r, 2, ack(1, 1));
    assert!(
        ready(&out).is_empty(),
        "an old round's ack confirmed read 2"
    );
    let out = recv(&mut r, 1, ack(1, 1));
    assert!(
        ready(&out).is_empty(),
        "a duplicated old ack confirmed read 2"
    );
    let out = recv(&mut r, 2, ack(1, 2));
    assert_eq!(ready(&out), vec![(2, 1)]);
}

#[test]
fn diss_6_4_a_later_rounds_ack_confirms_earlier_reads() {
    // A round sent after read 1 arrived confirms it, whichever round that is.
    let mut r = committed_leader(3, &cfg(false), 1);
    read(&mut r, &[1]);
    read(&mut r, &[2]);
    let out = recv(&mut r, 2, ack(1, 2));
    assert_eq!(ready(&out), vec![(1, 1), (2, 1)]);
}

#[test]
fn diss_6_4_a_read_is_confirmed_only_by_a_majority() {
    // Five nodes: the leader and n1 are two, not a majority; n3 makes three.
    let mut r = committed_leader(5, &cfg(false), 1);
    read(&mut r, &[1]);
    let out = recv(&mut r, 1, ack(1, 1));
    assert!(ready(&out).is_empty(), "two of five confirmed the read");
    let out = recv(&mut r, 1, ack(1, 1));
    assert!(ready(&out).is_empty(), "one peer acking twice is still one");
    let out = recv(&mut r, 3, ack(1, 1));
    assert_eq!(ready(&out), vec![(1, 1)]);
}

#[test]
fn diss_6_4_a_cluster_of_one_serves_a_read_at_once() {
    let mut r = boot_with(0, 1, &cfg(false), 0, vec![]);
    r.on_timer(RaftTimer::Election, &mut Effects::new());
    assert!(r.is_leader() && r.commit == 1);
    let out = read(&mut r, &[4]);
    assert_eq!(ready(&out), vec![(4, 1)]);
    assert_eq!(out.sends().count(), 0);
}

#[test]
fn diss_6_4_read_acks_keep_the_leader_in_check_quorum() {
    // An acknowledgement counts for CheckQuorum as an append reply does.
    let mut c = cfg(false);
    c.check_quorum = true;
    let mut r = committed_leader(3, &c, 1);
    r.on_timer(RaftTimer::Election, &mut Effects::new()); // n1 was active: a new round
    read(&mut r, &[1]);
    recv(&mut r, 2, ack(1, 1));
    let mut out = Effects::new();
    r.on_timer(RaftTimer::Election, &mut out);
    assert!(r.is_leader(), "n2's ack kept the leader: {out:?}");
}

#[test]
fn diss_6_4_a_lost_round_is_sent_again_with_the_heartbeat() {
    let mut r = committed_leader(3, &cfg(false), 1);
    read(&mut r, &[1]);
    assert_eq!(heartbeat_rounds(&mut r), vec![(1, 1), (2, 1)]);
    // Once served, heartbeats carry no round.
    recv(&mut r, 1, ack(1, 1));
    assert_eq!(heartbeat_rounds(&mut r), vec![]);
    // Of five, n1's acknowledgement is not a majority yet: the round goes again only to
    // the peers that have not acknowledged it.
    let mut r = committed_leader(5, &cfg(false), 1);
    read(&mut r, &[1]);
    assert!(ready(&recv(&mut r, 1, ack(1, 1))).is_empty());
    assert_eq!(heartbeat_rounds(&mut r), vec![(2, 1), (3, 1), (4, 1)]);
}

#[test]
fn diss_6_4_a_confirmed_read_waiting_for_the_terms_commit_sends_no_round_again() {
    // n0 leads term 2 holding x from term 1: read 1's round is acknowledged by n1 (a
    // majority with n0), but the read waits for term 2's first commit (step 1). A heartbeat
    // has nothing to confirm, so it carries no round, not even to n2, which never answered.
    let mut r = leader(0, 3, &cfg(false), 2, vec![entry(1, 7)]);
    read(&mut r, &[1]);
    assert!(ready(&recv(&mut r, 1, ack(2, 1))).is_empty());
    assert_eq!(heartbeat_rounds(&mut r), vec![]);
    assert_eq!(ready(&recv(&mut r, 1, ok(2, 2))), vec![(1, 2)]);
}

#[test]
fn diss_6_4_a_deposed_leader_hands_its_reads_back() {
    // n0 holds its host's read 1 and n2's request for read 9 when an append of term 2 from
    // n1 deposes it: read 1 goes back with n1 as the hint, n2 is refused.
    let mut r = committed_leader(3, &cfg(true), 1);
    read(&mut r, &[1]);
    recv(
        &mut r,
        2,
        RaftMsg::ReadIndex {
            term: 1,
            req: 4,
            ids: vec![9],
        },
    );
    let append = RaftMsg::Append {
        term: 2,
        prev_index: 1,
        prev_term: 1,
        entries: vec![].into(),
        commit: 1,
    };
    let out = recv(&mut r, 1, append);
    assert_eq!(redirects(&out), vec![(1, Some(NodeId(1)))]);
    assert!(sends(&out).contains(&(2, index_reply(2, 4, &[9], None))));
    assert!(ready(&out).is_empty());
    // The persisted new term comes before the refusal leaves (effect contract rule 1).
    let persist = out.iter().position(|e| matches!(e, Effect::Persist(_)));
    let refusal = out
        .iter()
        .position(|e| matches!(e, Effect::Send { to: NodeId(2), .. }));
    assert!(persist < refusal);
}

#[test]
fn diss_6_4_a_leader_that_loses_check_quorum_hands_its_reads_back() {
    let mut c = cfg(false);
    c.check_quorum = true;
    let mut r = committed_leader(3, &c, 1);
    r.on_timer(RaftTimer::Election, &mut Effects::new());
    read(&mut r, &[3]);
    let mut out = Effects::new();
    r.on_timer(RaftTimer::Election, &mut out); // nobody answered
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(redirects(&out), vec![(3, None)]);
}

#[test]
fn diss_6_4_pending_reads_at_a_leader_are_bounded() {
    // The term has not committed, so reads queue; past the bound they go back at once.
    let mut r = leader(0, 3, &cfg(false), 1, vec![]);
    let all: Vec<ReadId> = (0..MAX_PENDING_READS as ReadId + 2).collect();
    let out = read(&mut r, &all[..MAX_PENDING_READS - 1]);
    assert!(redirects(&out).is_empty());
    let out = read(&mut r, &all[MAX_PENDING_READS - 1..]);
    let over = MAX_PENDING_READS as ReadId;
    assert_eq!(
        redirects(&out),
        vec![(over, Some(NodeId(0))), (over + 1, Some(NodeId(0)))]
    );
    // A follower's request past the bound is refused.
    let out = recv(
        &mut r,
        2,
        RaftMsg::ReadIndex {
            term: 1,
            req: 0,
            ids: vec![77],
        },
    );
    assert_eq!(sends(&out), vec![(2, index_reply(1, 0, &[77], None))]);
}

// ---------------------------------------------------------------------------------------------
// Followers (diss. §6.4, "followers could also help")
// ---------------------------------------------------------------------------------------------

#[test]
fn diss_6_4_a_follower_read_waits_to_apply_the_index() {
    // n1 has committed slot 1 of 2; the leader says the index is 2. The read waits for slot 2
    // to commit here, then is made ready after that commit.
    let log = vec![entry(1, 7), entry(1, 8)];
    let mut f = follower(1, 3, &cfg(true), 1, log, 1);
    let out = read(&mut f, &[9]);
    assert_eq!(
        sends(&out),
        vec![(
            0,
            RaftMsg::ReadIndex {
                term: 1,
                req: 0,
                ids: vec![9]
            }
        )]
    );
    let out = recv(&mut f, 0, index_reply(1, 0, &[9], Some(2)));
    assert!(out.is_empty(), "served before applying the index: {out:?}");
    let append = RaftMsg::Append {
        term: 1,
        prev_index: 2,
        prev_term: 1,
        entries: vec![].into(),
        commit: 2,
    };
    let out = recv(&mut f, 0, append);
    let effects: Vec<_> = out
        .iter()
        .filter(|e| matches!(e, Effect::Commit { .. } | Effect::ReadReady { .. }))
        .cloned()
        .collect();
    assert_eq!(
        effects,
        vec![
            Effect::Commit { slot: 2, cmd: 8 },
            Effect::ReadReady { id: 9, slot: 2 }
        ]
    );
}

#[test]
fn diss_6_4_a_follower_that_has_applied_the_index_serves_at_once() {
    let mut f = follower(1, 3, &cfg(true), 1, vec![entry(1, 7)], 1);
    read(&mut f, &[9]);
    let out = recv(&mut f, 0, index_reply(1, 0, &[9], Some(1)));
    assert_eq!(ready(&out), vec![(9, 1)]);
    // A duplicate of the answer serves nothing again, and a host may drop it.
    assert!(f.obsolete(NodeId(0), &index_reply(1, 0, &[9], Some(1))));
    let out = recv(&mut f, 0, index_reply(1, 0, &[9], Some(1)));
    assert!(out.is_empty());
}

#[test]
fn diss_6_4_the_leader_answers_a_follower_after_its_round() {
    let mut r = committed_leader(3, &cfg(true), 1);
    let out = recv(
        &mut r,
        2,
        RaftMsg::ReadIndex {
            term: 1,
            req: 3,
            ids: vec![8, 9],
        },
    );
    assert_eq!(sends(&out), vec![(1, confirm(1, 1)), (2, confirm(1, 1))]);
    let out = recv(&mut r, 1, ack(1, 1));
    assert_eq!(sends(&out), vec![(2, index_reply(1, 3, &[8, 9], Some(1)))]);
    assert!(
        ready(&out).is_empty(),
        "the follower serves its reads, not the leader"
    );
}

#[test]
fn a_read_asked_again_is_answered_once() {
    // A retry is a new read: at a follower it is asked anew (the first request may be lost)
    // and the answer to the first request no longer serves it; at a leader it waits for a
    // round sent after the retry.
    let mut f = follower(1, 3, &cfg(true), 1, vec![entry(1, 7)], 1);
    read(&mut f, &[9]);
    let out = read(&mut f, &[9]);
    assert_eq!(
        sends(&out),
        vec![(
            0,
            RaftMsg::ReadIndex {
                term: 1,
                req: 1,
                ids: vec![9]
            }
        )]
    );
    assert!(f.obsolete(NodeId(0), &index_reply(1, 0, &[9], Some(1))));
    assert!(recv(&mut f, 0, index_reply(1, 0, &[9], Some(1))).is_empty());
    let out = recv(&mut f, 0, index_reply(1, 1, &[9], Some(1)));
    assert_eq!(ready(&out), vec![(9, 1)]);

    let mut r = committed_leader(3, &cfg(false), 1);
    read(&mut r, &[4]);
    read(&mut r, &[4]);
    let out = recv(&mut r, 1, ack(1, 1));
    assert!(ready(&out).is_empty(), "round 1 predates the retry");
    let out = recv(&mut r, 1, ack(1, 2));
    assert_eq!(ready(&out), vec![(4, 1)], "served once");
}

#[test]
fn diss_6_4_a_follower_hands_back_what_it_cannot_serve() {
    // Without follower reads, without a known leader, or campaigning: back at once.
    let mut f = follower(1, 3, &cfg(false), 1, vec![], 0);
    assert_eq!(redirects(&read(&mut f, &[1])), vec![(1, Some(NodeId(0)))]);
    let mut f = boot_with(1, 3, &cfg(true), 1, vec![]);
    assert_eq!(redirects(&read(&mut f, &[2])), vec![(2, None)]);
    f.on_timer(RaftTimer::Election, &mut Effects::new());
    assert_eq!(f.role(), Role::Candidate);
    assert_eq!(redirects(&read(&mut f, &[3])), vec![(3, None)]);
    // A refusal from the leader hands the read back.
    let mut f = follower(1, 3, &cfg(true), 1, vec![], 0);
    read(&mut f, &[4]);
    let out = recv(&mut f, 0, index_reply(1, 0, &[4], None));
    assert_eq!(redirects(&out), vec![(4, Some(NodeId(0)))]);
}

#[test]
fn diss_6_4_a_new_term_hands_back_unanswered_follower_reads_and_keeps_indexed_ones() {
    // Read 1 has its index (2, not yet applied); read 2 waits for the leader's answer. A
    // vote request of term 2 moves n1 on: read 2 goes back, read 1 still waits for slot 2.
    let log = vec![entry(1, 7), entry(1, 8)];
    let mut f = follower(1, 3, &cfg(true), 1, log, 1);
    read(&mut f, &[1]);
    recv(&mut f, 0, index_reply(1, 0, &[1], Some(2)));
    read(&mut f, &[2]);
    let out = recv(
        &mut f,
        2,
        RaftMsg::RequestVote {
            term: 2,
            last_index: 2,
            last_term: 1,
            pre_vote: false,
        },
    );
    assert_eq!(redirects(&out), vec![(2, None)]);
    assert!(ready(&out).is_empty());
    // The stale answer to read 2's request is dead.
    assert!(f.obsolete(NodeId(0), &index_reply(1, 1, &[2], Some(2))));
    let append = RaftMsg::Append {
        term: 2,
        prev_index: 2,
        prev_term: 1,
        entries: vec![].into(),
        commit: 2,
    };
    let out = recv(&mut f, 2, append);
    assert_eq!(ready(&out), vec![(1, 2)]);
}

#[test]
fn diss_6_4_pending_reads_at_a_follower_are_bounded() {
    let mut f = follower(1, 3, &cfg(true), 1, vec![], 0);
    let all: Vec<ReadId> = (0..MAX_PENDING_READS as ReadId + 1).collect();
    let out = read(&mut f, &all);
    assert_eq!(
        redirects(&out),
        vec![(MAX_PENDING_READS as ReadId, Some(NodeId(0)))]
    );
    let RaftMsg::ReadIndex { ids, .. } = &sends(&out)[0].1 else {
        panic!("no request: {out:?}")
    };
    assert_eq!(ids.len(), MAX_PENDING_READS);
    // While those wait, the next read finds no room: handed back, nothing asked.
    let out = read(&mut f, &[MAX_PENDING_READS as ReadId + 1]);
    assert_eq!(
        redirects(&out),
        vec![(MAX_PENDING_READS as ReadId + 1, Some(NodeId(0)))]
    );
    assert!(sends(&out).is_empty());
}

#[test]
fn diss_6_4_a_read_round_is_hearing_from_the_leader() {
    // A candidate of term 2 yields to a round of term 2's leader, as to its append, and
    // acknowledges it; a stale round is answered with the current term.
    let mut c = boot_with(1, 3, &cfg(false), 1, vec![]);
    c.on_timer(RaftTimer::Election, &mut Effects::new());
    assert_eq!((c.role(), c.term), (Role::Candidate, 2));
    let out = recv(&mut c, 0, confirm(2, 5));
    assert_eq!(sends(&out), vec![(0, ack(2, 5))]);
    assert_eq!(
        (c.role(), c.leader, &c.state),
        (
            Role::Follower,
            Some(NodeId(0)),
            &RoleState::Follower { leader_alive: true }
        )
    );
    let out = recv(&mut c, 2, confirm(1, 3));
    assert_eq!(sends(&out), vec![(2, ack(2, 3))]);
    let out = recv(
        &mut c,
        2,
        RaftMsg::ReadIndex {
            term: 1,
            req: 0,
            ids: vec![6],
        },
    );
    assert_eq!(sends(&out), vec![(2, index_reply(2, 0, &[6], None))]);
}

// ---------------------------------------------------------------------------------------------
// Obsolete messages and renaming
// ---------------------------------------------------------------------------------------------

#[test]
fn read_messages_are_obsolete_only_when_nothing_can_act_on_them() {
    let r = committed_leader(3, &cfg(true), 2);
    assert!(!r.obsolete(NodeId(1), &ack(2, 9)), "a leader's own term");
    assert!(r.obsolete(NodeId(1), &ack(1, 9)), "a term left");
    assert!(
        !r.obsolete(NodeId(1), &confirm(1, 1)),
        "requests are answered"
    );
    let f = follower(1, 3, &cfg(true), 2, vec![], 0);
    assert!(
        f.obsolete(NodeId(0), &ack(2, 1)),
        "a follower sent no round"
    );
    assert!(
        !f.obsolete(NodeId(0), &ack(3, 1)),
        "a later term moves it on"
    );
    assert!(
        !f.obsolete(NodeId(0), &index_reply(2, 0, &[1], Some(1))),
        "request 0 is not asked yet: after a restart it may be"
    );
}

/// The renaming n0 -> n1, n1 -> n2, n2 -> n0.
const ROTATE: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(0)];

#[test]
fn renaming_covers_the_read_state() {
    // Leader n0 holds n2's request and n1's ack; renamed, it must equal the leader n1 of the
    // same run with n0's request and n2's ack (symmetry reduction relies on it).
    let run = |me: u8, asker: u8, acker: u8| {
        let mut r = leader(me, 3, &cfg(true), 1, vec![]);
        let ask = RaftMsg::ReadIndex {
            term: 1,
            req: 0,
            ids: vec![9],
        };
        recv(&mut r, asker, ask);
        recv(&mut r, acker, ack(1, 1));
        r
    };
    let mut r = run(0, 2, 1);
    let RoleState::Leader { reads, .. } = &r.state else {
        panic!("leads")
    };
    assert_eq!(reads.acked[..3], [1, 1, 0]);
    assert_eq!(
        reads.batches[0].asker,
        Asker::Follower {
            node: NodeId(2),
            req: 0
        }
    );
    r.rename(&Renaming(&ROTATE));
    assert_eq!(r, run(1, 0, 2));
    let RoleState::Leader { reads, .. } = &r.state else {
        panic!("leads")
    };
    assert_eq!(reads.acked[..3], [0, 1, 1]);
    assert_eq!(
        reads.batches[0].asker,
        Asker::Follower {
            node: NodeId(0),
            req: 0
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Local reads (Replica::local_reads): the lease's reads, answered by the host alone
// ---------------------------------------------------------------------------------------------

/// Leases (CheckQuorum on, as leases need), PreVote off so that `leader` elects at once.
fn lease_cfg() -> Config {
    Config {
        pre_vote: false,
        reads: ReadMode::Lease,
        clock_drift: Some(std::time::Duration::from_millis(30)),
        ..Config::default()
    }
}

#[test]
fn diss_6_4_1_local_reads_need_the_lease_and_the_terms_first_commit() {
    use std::time::Duration;
    // n0 wins term 2 holding x (slot 1, term 1); its election sends a lease round at 0 ms.
    let c = lease_cfg();
    let mut r = leader(0, 3, &c, 2, vec![entry(1, 7)]);
    assert_eq!(
        r.local_reads(),
        None,
        "no majority acknowledged a round yet"
    );
    recv(&mut r, 1, ack(2, 1));
    assert_eq!(
        r.local_reads(),
        None,
        "a lease, but the commit point (0) may lag what term 1 committed (step 1)"
    );
    recv(&mut r, 1, ok(2, 2));
    let lease = c.lease().expect("a drift bound below the election timeout");
    assert_eq!(
        r.local_reads(),
        Some(LocalReads {
            until: lease,
            at: 2
        }),
        "the no-op committed: reads at the commit point until the lease ends"
    );
    // The permission says until when; the replica's clock says whether it still holds.
    r.set_now(lease - Duration::from_millis(1));
    assert!(r
        .local_reads()
        .is_some_and(|l| l.allows(r.now, 2) && !l.allows(r.now, 1)));
    r.set_now(lease);
    assert_eq!(r.local_reads(), None, "the lease ran out");
    // ReadIndex has no lease: never.
    let mut r = committed_leader(3, &cfg(false), 1);
    assert_eq!(r.local_reads(), None);
}

/// n0 leading term 2 over x (slot 1, term 1): its lease round acknowledged by n1 and its
/// no-op committed, so it reads at slot 2 under the lease.
fn leased_leader(c: &Config) -> R {
    let mut r = leader(0, 3, c, 2, vec![entry(1, 7)]);
    recv(&mut r, 1, ack(2, 1));
    recv(&mut r, 1, ok(2, 2));
    r
}

#[test]
fn diss_6_4_1_under_the_lease_a_read_needs_no_round_until_the_lease_runs_out() {
    // A host that reads through the replica (not alone, as `local_reads` lets it) gets the
    // same: while the lease holds and the term has committed, the read is ready at once.
    let c = lease_cfg();
    let mut r = leased_leader(&c);
    let out = read(&mut r, &[9]);
    assert_eq!(ready(&out), vec![(9, 2)]);
    assert!(sends(&out).is_empty(), "the lease holds: no round: {out:?}");
    r.set_now(c.lease().expect("a lease"));
    let out = read(&mut r, &[10]);
    assert!(ready(&out).is_empty(), "the lease ran out");
    assert_eq!(rounds(&out).len(), 2, "a round to both peers: {out:?}");
}

#[test]
fn diss_6_4_1_a_heartbeat_renews_only_a_lease_that_reads_relied_on() {
    let mut r = leased_leader(&lease_cfg());
    assert_eq!(ready(&read(&mut r, &[9])), vec![(9, 2)]);
    assert_eq!(
        heartbeat_rounds(&mut r).len(),
        2,
        "read 9 relied on the lease: renewed"
    );
    assert_eq!(
        heartbeat_rounds(&mut r),
        vec![],
        "no read since: the lease is let run"
    );
}

#[test]
fn diss_3_10_a_handover_ends_local_reads_before_it_leaves() {
    // A leasing leader that sends TimeoutNow must not let its host answer alone again: the
    // target's TransferVote passes the followers' lease promise (bug B5's window).
    let c = lease_cfg();
    let mut r = leader(0, 3, &c, 1, vec![]);
    recv(&mut r, 1, ack(1, 1));
    recv(&mut r, 1, ok(1, 1));
    assert!(r.local_reads().is_some());
    let mut out = Effects::new();
    r.change(1, crate::Change::Transfer(NodeId(1)), &mut out);
    assert!(
        out.sends()
            .any(|(_, m)| matches!(m, RaftMsg::TimeoutNow { .. })),
        "n1 is caught up: TimeoutNow leaves in this step"
    );
    assert_eq!(r.local_reads(), None);
}

// ---------------------------------------------------------------------------------------------
// Bug switches (bug zoo R12 to R14) change exactly the step they name
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "bug-zoo")]
fn with_bug(bug: crate::Bug, follower_reads: bool) -> Config {
    let mut c = cfg(follower_reads);
    c.bugs = crate::BugSet::only(bug);
    c
}

#[cfg(feature = "bug-zoo")]
#[test]
fn r12_reads_at_the_commit_point_before_the_terms_first_commit() {
    let mut r = leader(
        0,
        3,
        &with_bug(Bug::ReadIndexBeforeTermCommit, false),
        2,
        vec![entry(1, 7)],
    );
    read(&mut r, &[10]);
    let out = recv(&mut r, 1, ack(2, 1));
    assert_eq!(
        ready(&out),
        vec![(10, 0)],
        "slot 1 may be committed, and is missed"
    );
}

#[cfg(feature = "bug-zoo")]
#[test]
fn r13_reads_without_a_round() {
    let mut r = committed_leader(3, &with_bug(Bug::ReadWithoutQuorum, false), 1);
    let out = read(&mut r, &[1]);
    assert_eq!(ready(&out), vec![(1, 1)]);
    assert_eq!(out.sends().count(), 0, "no round at all");
}

#[cfg(feature = "bug-zoo")]
#[test]
fn r16_local_reads_before_the_terms_first_commit() {
    let mut c = lease_cfg();
    c.bugs = crate::BugSet::only(Bug::LocalReadBeforeTermCommit);
    let mut r = leader(0, 3, &c, 2, vec![entry(1, 7)]);
    recv(&mut r, 1, ack(2, 1));
    assert_eq!(
        r.local_reads().map(|l| l.at),
        Some(0),
        "slot 1 may be committed, and local reads at 0 miss it"
    );
}

#[cfg(feature = "bug-zoo")]
#[test]
fn r14_a_follower_serves_before_applying_the_index() {
    let log = vec![entry(1, 7), entry(1, 8)];
    let mut f = follower(1, 3, &with_bug(Bug::FollowerReadNoWait, true), 1, log, 1);
    read(&mut f, &[9]);
    let out = recv(&mut f, 0, index_reply(1, 0, &[9], Some(2)));
    assert_eq!(ready(&out), vec![(9, 2)]);
    assert_eq!(f.commit, 1, "served at 2 with 1 committed");
}

// ---------------------------------------------------------------------------------------------
// Random walks: reads among every fault
// ---------------------------------------------------------------------------------------------

/// One walk of `n` nodes with reads among deliveries, losses, duplicates, timers, proposals,
/// crashes and restarts: (reads served by a leader, by a follower), or the first violation.
fn walk(
    n: usize,
    cfg: Config,
    seed: u64,
    steps: usize,
) -> Result<(usize, usize), crate::driver::Violation> {
    use crate::driver::Cluster;
    let mut c: Cluster<R, Cmd> = Cluster::new(n, cfg);
    c.record_violations = true;
    let mut rng = WalkRng::new(seed);
    let (mut next_cmd, mut next_read) = (0, 0);
    let (mut by_leader, mut by_follower) = (0, 0);
    let mut served = vec![0; n];
    for _ in 0..steps {
        let i = rng.below(n);
        match rng.below(100) {
            0..=49 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.deliver(k);
            }
            50..=54 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.net.remove(k); // loss
            }
            55..=57 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.duplicate(k);
            }
            58..=66 if c.is_up(i) && c.node(i).timers.contains(&RaftTimer::Election) => {
                c.fire(i, RaftTimer::Election)
            }
            67..=77 if c.is_up(i) && c.node(i).timers.contains(&RaftTimer::Heartbeat) => {
                c.fire(i, RaftTimer::Heartbeat)
            }
            78..=84 if c.is_up(i) => {
                next_cmd += 1;
                c.propose(i, vec![next_cmd]);
            }
            85..=93 if c.is_up(i) => {
                // Read ids are never reused, as a host's are not.
                next_read += 1;
                c.read(i, next_read);
            }
            94..=96 if c.is_up(i) && !c.node(i).pending_reads.is_empty() => {
                // A host retries a read still waiting (its request or answer may be lost).
                let waiting: Vec<ReadId> = c.node(i).pending_reads.keys().copied().collect();
                c.read(i, waiting[rng.below(waiting.len())]);
            }
            97..=98 if c.is_up(i) && (0..n).filter(|&j| !c.is_up(j)).count() < n / 2 => c.crash(i),
            _ if !c.is_up(i) => c.restart(i),
            _ => {}
        }
        if let Some(v) = c.violation() {
            return Err(v.clone());
        }
        // Who served the reads of this step: a leader, or a follower (a crashed node served
        // nothing: its reads were cleared).
        for (j, seen) in served.iter_mut().enumerate() {
            let now = c.node(j).reads.len();
            if now > *seen && c.is_up(j) {
                match c.replica(j).status().role {
                    Role::Leader => by_leader += now - *seen,
                    _ => by_follower += now - *seen,
                }
            }
            *seen = now;
        }
    }
    Ok((by_leader, by_follower))
}

#[test]
fn diss_6_4_random_walks_never_serve_a_stale_or_unapplied_read() {
    // Reads at leaders and followers among every fault: the driver checks after each step
    // that a read includes every commit made before it was asked and comes from applied
    // state. Vacuity guard: the walks served reads (not only handed them back).
    let (mut by_leader, mut by_follower) = (0, 0);
    for seed in 0..150 {
        for (n, follower_reads, check_quorum) in
            [(3, true, true), (3, false, false), (5, true, false)]
        {
            let c = Config {
                pre_vote: check_quorum,
                check_quorum,
                reads: ReadMode::ReadIndex,
                follower_reads,
                ..Config::default()
            };
            let (l, f) = walk(n, c.clone(), seed, 600)
                .unwrap_or_else(|v| panic!("seed {seed}, {n} nodes, {c:?}: {v}"));
            by_leader += l;
            by_follower += f;
        }
    }
    eprintln!("random walks served {by_leader} reads at leaders, {by_follower} at followers");
    assert!(by_leader >= 600, "leaders served only {by_leader} reads");
    assert!(
        by_follower >= 100,
        "followers served only {by_follower} reads"
    );
}

/// The walks have teeth: with a read bug switched on, some seed breaks a read rule.
#[cfg(feature = "bug-zoo")]
#[test]
fn random_walks_catch_read_bugs() {
    use crate::driver::{READS_SEE_EARLIER_COMMITS, READS_SERVED_FROM_APPLIED};
    for (bug, expected) in [
        (Bug::ReadIndexBeforeTermCommit, READS_SEE_EARLIER_COMMITS),
        (Bug::ReadWithoutQuorum, READS_SEE_EARLIER_COMMITS),
        (Bug::FollowerReadNoWait, READS_SERVED_FROM_APPLIED),
    ] {
        let c = Config {
            pre_vote: false,
            check_quorum: false,
            reads: ReadMode::ReadIndex,
            follower_reads: true,
            bugs: crate::BugSet::only(bug),
            ..Config::default()
        };
        let caught = (0..500).find_map(|seed| walk(3, c.clone(), seed, 600).err());
        let v = caught.unwrap_or_else(|| panic!("{} escaped 500 random walks", bug.name()));
        assert_eq!(v.invariant, expected, "{}: {v}", bug.name());
    }
}

/// The read bugs' scripted scenarios (`impls/testdata/bugs/*read*.txt`, run against their
/// goldens by `tests/scripts.rs` with the bug zoo compiled in; see [`crate::script`]): each
/// shows the driver catching the bug by the rule it breaks.
#[cfg(feature = "bug-zoo")]
#[test]
fn read_bug_scripts_show_the_rule_each_bug_breaks() {
    use crate::driver::{READS_SEE_EARLIER_COMMITS, READS_SERVED_FROM_APPLIED};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bugs");
    for (file, rule) in [
        (
            "raft_read_r12_before_term_commit.txt",
            READS_SEE_EARLIER_COMMITS,
        ),
        (
            "raft_read_r13_without_quorum.txt",
            READS_SEE_EARLIER_COMMITS,
        ),
        ("raft_read_r14_no_wait.txt", READS_SERVED_FROM_APPLIED),
        (
            "raft_lease_r16_local_read_before_term_commit.txt",
            READS_SEE_EARLIER_COMMITS,
        ),
        (
            "multipaxos_read_before_recovery.txt",
            READS_SEE_EARLIER_COMMITS,
        ),
        (
            "multipaxos_read_without_quorum.txt",
            READS_SEE_EARLIER_COMMITS,
        ),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("readable script");
        let violation = format!("VIOLATION: {rule}");
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&violation)),
            "{file} does not show {violation}"
        );
    }
}
