//! Multi-step Raft scenarios on the deterministic driver. Each test is an interaction script:
//! it chooses the interleaving (which timer fires, which message is delivered or lost, who
//! crashes) and asserts the outcome: who leads in which term, what is committed where. The
//! driver itself checks state machine safety and Raft's invariants after every step.
//!
//! Most such scenarios are scripts with golden output in `impls/testdata/raft_*.txt` (split
//! vote, PreVote, the §5.4.1 vote restriction, Figure 8, lost appends, restarts); the ones
//! left here loop or count (cluster sizes with durable images, fast backtracking over 50
//! entries, every message duplicated and reordered).

use paxraft_impls::driver::Cluster;
use paxraft_impls::raft::{Raft, RaftTimer};
use paxraft_impls::{Config, Replica};

type C = Cluster<Raft<u32>, u32>;

fn cluster(n: usize) -> C {
    Cluster::new(n, Config::default())
}

/// Node `i` wins an election ([`Cluster::elect`]): it must end up the leader of the highest
/// term (a deposed leader cut off by a partition may still believe it leads an older one).
fn elect(c: &mut C, i: usize) {
    c.elect(i);
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
    // The second batch, refused when it overtook the first, is presumed lost once a whole
    // heartbeat interval passes without the follower's `matched` moving (flow control: a
    // replicating follower's refusals are ignored, replication.rs), then sent again; the
    // next heartbeat carries the commit point to the followers.
    for _ in 0..3 {
        c.fire(0, RaftTimer::Heartbeat);
        c.deliver_all();
    }
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![1, 2], "n{i}");
    }
}
