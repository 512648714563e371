//! Multi-step Raft scenarios on the deterministic driver. Each test is an interaction script:
//! it chooses the interleaving (which timer fires, which message is delivered or lost, who
//! crashes) and asserts the outcome: who leads in which term, what is committed where. The
//! driver itself checks state machine safety and Raft's invariants after every step.

use paxraft_impls::driver::Cluster;
use paxraft_impls::raft::{Raft, RaftMsg, RaftTimer};
use paxraft_impls::{Config, Replica, Role};

type C = Cluster<Raft<u32>, u32>;

fn cluster(n: usize) -> C {
    Cluster::new(n, Config::default())
}

/// Node `i` wins an election. With CheckQuorum every other live node's election timer runs
/// out first (so no one still holds a leader lease) and their own campaigns are lost; then
/// `i`'s timer fires. `i` must end up the leader of the highest term (a deposed leader cut
/// off by a partition may still believe it leads an older one).
fn elect(c: &mut C, i: usize) {
    if c.config().check_quorum {
        for j in 0..c.len() {
            if j != i && c.is_up(j) && c.node(j).timers.contains(&RaftTimer::Election) {
                c.fire(j, RaftTimer::Election);
            }
        }
        let me = paxraft_impls::NodeId(i as u8);
        c.drop_where(|e| e.from != me);
    }
    c.fire(i, RaftTimer::Election);
    c.deliver_all();
    let leaders = c.leaders();
    let top = leaders.iter().map(|&l| term(c, l)).max();
    assert!(
        leaders.contains(&i) && top == Some(term(c, i)),
        "n{i} should lead the highest term; leaders: {leaders:?}\n{}",
        c.trace.join("\n")
    );
}

/// Propose at the leader and let replication and one heartbeat (carrying the commit point)
/// reach everyone reachable.
fn commit(c: &mut C, leader: usize, cmds: Vec<u32>) {
    c.propose(leader, cmds);
    c.deliver_all();
    c.fire(leader, RaftTimer::Heartbeat);
    c.deliver_all();
}

fn term(c: &C, i: usize) -> u64 {
    c.replica(i).status().term
}

/// Every live node's durable image, rebuilt from its writes alone, equals its persistent
/// state: the persist effects say everything a restart needs.
fn assert_durable_images_match(c: &C) {
    for i in 0..c.len() {
        if c.is_up(i) {
            assert_eq!(
                c.node(i).durable,
                c.replica(i).durable(),
                "n{i}'s writes diverge from its state"
            );
        }
    }
}

#[test]
fn sizes_one_to_seven_elect_and_commit() {
    for n in 1..=7 {
        let mut c = cluster(n);
        elect(&mut c, n - 1);
        commit(&mut c, n - 1, vec![1, 2, 3]);
        for i in 0..n {
            assert_eq!(c.applied(i), vec![1, 2, 3], "n{i} of {n}");
        }
        assert_durable_images_match(&c);
    }
}

#[test]
fn leader_crash_and_reelection_keeps_committed_entries() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    commit(&mut c, 0, vec![1, 2]);
    c.crash(0);
    elect(&mut c, 1);
    assert!(term(&c, 1) > 1, "the new leader runs a later term");
    commit(&mut c, 1, vec![3]);
    assert_eq!(c.applied(1), vec![1, 2, 3]);
    assert_eq!(c.applied(2), vec![1, 2, 3]);
    // The old leader comes back, learns the new term and catches up.
    c.restart(0);
    c.fire(1, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.replica(0).status().role, Role::Follower);
    assert_eq!(term(&c, 0), term(&c, 1));
    assert_eq!(c.applied(0), vec![1, 2, 3]);
    assert_durable_images_match(&c);
}

#[test]
fn partitioned_old_leader_loses_its_uncommitted_entries() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    commit(&mut c, 0, vec![1]);
    c.partition(&[0]);
    // The cut-off leader still takes proposals; they can never reach a majority.
    c.propose(0, vec![20, 21]);
    c.deliver_all();
    assert_eq!(c.replica(0).status().last, 4);
    assert_eq!(c.replica(0).status().commit, 2);
    elect(&mut c, 1);
    commit(&mut c, 1, vec![4]);
    c.heal();
    // The old leader's heartbeat meets the later term and it steps down; the new leader's
    // heartbeat then overwrites its uncommitted tail.
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.replica(0).status().role, Role::Follower);
    c.fire(1, RaftTimer::Heartbeat);
    c.deliver_all();
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![1, 4], "n{i}");
    }
    assert_eq!(c.replica(0).log(), c.replica(1).log());
    assert!(c
        .replica(0)
        .log()
        .iter()
        .all(|e| e.cmd != Some(20) && e.cmd != Some(21)));
}

#[test]
fn follower_far_behind_catches_up_with_fast_backtracking() {
    let mut c = cluster(3);
    elect(&mut c, 2);
    commit(&mut c, 2, vec![1]);
    // n2 leads alone behind a partition and piles up 50 entries of its term, one by one.
    c.partition(&[2]);
    for k in 0..50 {
        c.propose(2, vec![1000 + k]);
    }
    c.deliver_all();
    elect(&mut c, 0);
    for k in 0..60 {
        c.propose(0, vec![2000 + k]);
        c.deliver_all();
    }
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    c.heal();
    let before = c.trace.len();
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    let rejections = c.trace[before..]
        .iter()
        .filter(|l| l.contains("Rejected"))
        .count();
    // One entry at a time would take ~50 round trips; the conflict hint skips n2's whole
    // term at once.
    assert!(
        rejections <= 2,
        "{rejections} rejections:\n{}",
        c.trace[before..].join("\n")
    );
    let expected: Vec<u32> = std::iter::once(1).chain(2000..2060).collect();
    for i in 0..3 {
        assert_eq!(c.applied(i), expected, "n{i}");
    }
    assert_durable_images_match(&c);
}

#[test]
fn crash_restart_of_every_node_keeps_every_committed_entry() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    commit(&mut c, 0, vec![1, 2]);
    elect(&mut c, 1);
    commit(&mut c, 1, vec![3]);
    let terms: Vec<u64> = (0..3).map(|i| term(&c, i)).collect();
    for i in 0..3 {
        c.crash(i);
    }
    for (i, &t) in terms.iter().enumerate() {
        c.restart(i);
        assert_eq!(term(&c, i), t, "n{i}'s term survived the crash");
        assert_eq!(
            c.replica(i).status().commit,
            0,
            "the commit point is volatile"
        );
    }
    elect(&mut c, 2);
    commit(&mut c, 2, vec![4]);
    for i in 0..3 {
        // The driver checks that what is re-reported after restart matches what was applied.
        assert_eq!(c.applied(i), vec![1, 2, 3, 4], "n{i}");
        assert_eq!(
            c.replica(i).status().commit,
            7,
            "three no-ops and four commands"
        );
    }
}

#[test]
fn lost_appends_are_retransmitted_by_heartbeats() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    c.propose(0, vec![7]);
    let lost = c.drop_where(|e| matches!(e.msg, RaftMsg::Append { .. }));
    assert_eq!(lost, 2);
    assert_eq!(
        c.applied(0),
        Vec::<u32>::new(),
        "nothing commits without a majority"
    );
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![7], "n{i}");
    }
}

#[test]
fn duplicated_and_reordered_messages_are_harmless() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    c.propose(0, vec![1]);
    c.propose(0, vec![2]);
    // Deliver the second batch's appends first, and every message twice.
    for _ in 0..1_000 {
        let Some(k) = c.net.len().checked_sub(1) else {
            break;
        };
        c.duplicate(k); // the copy is delivered; the original stays at k
        c.deliver(k);
    }
    assert!(c.net.is_empty(), "the exchange settles");
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![1, 2], "n{i}");
    }
}

#[test]
fn prevote_keeps_a_rejoining_node_from_deposing_the_leader() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    commit(&mut c, 0, vec![1]);
    let t = term(&c, 0);
    c.partition(&[2]);
    // Cut off, n2 times out again and again; with PreVote its term never moves.
    for _ in 0..5 {
        c.fire(2, RaftTimer::Election);
        c.deliver_all();
    }
    assert_eq!(term(&c, 2), t);
    c.heal();
    c.fire(2, RaftTimer::Election);
    c.deliver_all();
    assert_eq!(c.leaders(), vec![0], "the healthy leader stays");
    assert_eq!(term(&c, 0), t);
}

#[test]
fn without_prevote_a_rejoining_node_disrupts_the_term() {
    // The contrast to the test above: plain Raft lets the cut-off node inflate its term.
    let mut c: C = Cluster::new(
        3,
        Config {
            pre_vote: false,
            check_quorum: false,
            ..Config::default()
        },
    );
    elect(&mut c, 0);
    let t = term(&c, 0);
    c.partition(&[2]);
    for _ in 0..3 {
        c.fire(2, RaftTimer::Election);
        c.deliver_all();
    }
    assert_eq!(term(&c, 2), t + 3);
    c.heal();
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(
        c.replica(0).status().role,
        Role::Follower,
        "the leader was deposed by a higher term"
    );
}

#[test]
fn split_vote_is_resolved_in_a_later_term() {
    let mut c: C = Cluster::new(
        4,
        Config {
            pre_vote: false,
            ..Config::default()
        },
    );
    // n0 and n1 campaign at once; n2 votes for n0, n3 for n1: 2 of 4 each, nobody wins.
    c.fire(0, RaftTimer::Election);
    c.fire(1, RaftTimer::Election);
    let to = |from: u8, to: u8| {
        move |e: &paxraft_impls::driver::Envelope<RaftMsg<u32>>| e.from.0 == from && e.to.0 == to
    };
    c.deliver_first(to(0, 2));
    c.deliver_first(to(1, 3));
    c.deliver_all();
    assert!(c.leaders().is_empty());
    assert_eq!((term(&c, 0), term(&c, 1)), (1, 1));
    c.fire(0, RaftTimer::Election);
    c.deliver_all();
    assert_eq!(c.leaders(), vec![0]);
    assert_eq!(term(&c, 0), 2);
}

#[test]
fn a_leader_change_after_a_commit_keeps_it_and_commits_the_old_tail() {
    // The leader replicates slot 3 to one follower only, then crashes. The follower that has
    // it wins (its log is more up to date, §5.4.1) and commits it under its own term.
    let mut c = cluster(3);
    elect(&mut c, 0);
    commit(&mut c, 0, vec![1]);
    c.propose(0, vec![2]);
    c.deliver_first(|e| e.to.0 == 1);
    c.drop_where(|e| e.to.0 == 2 || e.to.0 == 0);
    c.crash(0);
    // n2 cannot win: its log is behind n1's.
    c.fire(2, RaftTimer::Election);
    c.fire(1, RaftTimer::Election);
    c.drop_where(|_| true);
    c.fire(2, RaftTimer::Election);
    c.deliver_all();
    assert!(
        c.leaders().is_empty(),
        "n1 must refuse the candidate that lacks slot 3"
    );
    elect(&mut c, 1);
    commit(&mut c, 1, vec![]);
    c.fire(1, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.applied(1), vec![1, 2]);
    assert_eq!(c.applied(2), vec![1, 2]);
}
