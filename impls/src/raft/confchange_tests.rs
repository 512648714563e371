//! Membership changes (diss. §4, Raft §6), driven through the deterministic driver so that
//! every invariant is checked after every step.

use super::tests::{append, boot_with, entry, fire, ok, plain, pre_vote, recv, request_vote, vote};
use super::*;
use crate::driver::Cluster;
use crate::membership::{ChangeError, ChangeMode};
use crate::replica::Effects;

type C = Cluster<Raft<u32>, u32>;

fn set(ids: &[u8]) -> NodeSet {
    NodeSet::of(ids.iter().map(|&i| NodeId(i)))
}

fn voters(ids: &[u8]) -> Membership {
    Membership::voters(set(ids))
}

/// `n` nodes, the first `v` voting, n0 elected and its no-op committed everywhere.
fn cluster(n: usize, v: usize, cfg: Config) -> C {
    let mut c = C::with_voters(n, v, cfg);
    c.elect(0);
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    c
}

/// Appends lost in a partition are sent again once a whole heartbeat interval passed
/// without an acknowledgement (`replication.rs`, `heartbeat_to`): two heartbeats.
fn heartbeats_repair(c: &mut C) {
    for _ in 0..2 {
        c.fire(0, RaftTimer::Heartbeat);
        c.deliver_all();
    }
}

fn answers(c: &C, i: usize) -> Vec<(ChangeId, Result<Membership, ChangeError>)> {
    c.node(i).changes.clone()
}

fn config(c: &C, i: usize) -> Membership {
    c.replica(i).status().config
}

#[test]
fn a_spare_joins_as_a_voter_and_counts_from_the_append_on() {
    let mut c = cluster(4, 3, Config::default());
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    assert_eq!(
        config(&c, 0),
        voters(&[0, 1, 2, 3]),
        "in force once appended"
    );
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2, 3])))]);
    assert_eq!(config(&c, 3), voters(&[0, 1, 2, 3]), "the spare caught up");
    // Two of four is no majority any more.
    c.partition(&[1, 2]);
    c.propose(0, vec![7]);
    c.deliver_all();
    assert!(c.applied(0).is_empty(), "n0 and n3 alone committed");
    c.heal();
    heartbeats_repair(&mut c);
    assert_eq!(c.applied(0), vec![7]);
    assert_eq!(
        c.applied(3),
        vec![],
        "n3 learns the commit point at the next heartbeat"
    );
}

/// Diss. §4.1: a leader counts in the latest configuration of its log, committed or not. An
/// entry held by 2 of voters {n0,n1,n2,n3} is no majority there, but once the leader appends
/// "remove n2" it is 2 of {n0,n1,n3}, and commits: safe, since every majority of the one
/// meets every majority of the other. The invariant *committed entries are on a quorum*,
/// checked after every step by the driver, accepts that configuration (it once looked only
/// at the configuration in force at the entry's slot, and the fault schedules found this).
#[test]
fn an_entry_commits_on_a_majority_of_a_configuration_appended_after_it() {
    let mut c = cluster(4, 4, Config::default());
    c.partition(&[1, 2]);
    c.propose(0, vec![7]);
    c.deliver_all();
    assert!(c.applied(0).is_empty(), "2 of 4 is no majority");
    c.change(0, 1, Change::Remove(NodeId(2)));
    assert_eq!(config(&c, 0), voters(&[0, 1, 3]), "in force once appended");
    assert_eq!(c.applied(0), vec![7], "2 of 3 is");
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let mut c = cluster(4, 3, Config::default());
    let before = c.replica(0).clone();
    c.change(1, 1, Change::AddVoter(NodeId(3)));
    c.change(0, 2, Change::AddVoter(NodeId(1)));
    c.change(0, 3, Change::Remove(NodeId(3)));
    c.change(0, 4, Change::Transfer(NodeId(3)));
    assert_eq!(
        answers(&c, 1),
        vec![(
            1,
            Err(ChangeError::NotLeader {
                leader: Some(NodeId(0))
            })
        )]
    );
    assert_eq!(
        answers(&c, 0),
        vec![
            (2, Err(ChangeError::Exists(NodeId(1)))),
            (3, Err(ChangeError::Unknown(NodeId(3)))),
            (4, Err(ChangeError::Unknown(NodeId(3)))),
        ]
    );
    assert_eq!(*c.replica(0), before, "the leader is unchanged");
    assert!(c.net.is_empty(), "nothing was sent");

    // The last voter cannot go.
    let mut one = cluster(2, 1, Config::default());
    one.change(0, 9, Change::Remove(NodeId(0)));
    assert_eq!(
        answers(&one, 0),
        vec![(9, Err(ChangeError::LastVoter(NodeId(0))))]
    );
}

#[test]
fn one_change_at_a_time_and_none_before_the_leader_commits_in_its_term() {
    let mut c = cluster(4, 3, Config::default());
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.change(0, 2, Change::Remove(NodeId(2)));
    assert_eq!(answers(&c, 0), vec![(2, Err(ChangeError::Pending))]);
    c.deliver_all();
    assert_eq!(answers(&c, 0)[1], (1, Ok(voters(&[0, 1, 2, 3]))));
    // A new leader that has not committed its no-op yet refuses, then starts the change.
    let mut c2 = C::with_voters(
        3,
        3,
        Config {
            pre_vote: false,
            check_quorum: false,
            ..Config::default()
        },
    );
    c2.fire(0, RaftTimer::Election);
    c2.deliver_first(|e| e.to == NodeId(1));
    c2.deliver_first(|e| e.to == NodeId(0));
    assert_eq!(c2.replica(0).status().role, Role::Leader);
    c2.change(0, 5, Change::Remove(NodeId(2)));
    assert_eq!(answers(&c2, 0), vec![(5, Err(ChangeError::NotReady))]);
    c2.deliver_all();
    c2.change(0, 6, Change::Remove(NodeId(2)));
    c2.deliver_all();
    assert_eq!(answers(&c2, 0)[1], (6, Ok(voters(&[0, 1]))));
}

#[test]
fn a_new_leader_holding_an_uncommitted_configuration_refuses_a_change_as_pending() {
    // n0 wins term 2 holding term 1's change (adding n3) uncommitted: that change is still
    // in progress, whoever started it, so a second one is refused as pending (one at a
    // time), not merely as "no entry of this term committed yet".
    let log = vec![entry(1, 7), Entry::configuration(1, voters(&[0, 1, 2, 3]))];
    let mut r = boot_with(0, 3, &plain(), 1, log);
    fire(&mut r, RaftTimer::Election);
    // Three of the four voters the log's configuration names.
    for p in [1, 2] {
        recv(&mut r, p, vote(2, true));
    }
    assert!(r.is_leader());
    let mut out = Effects::new();
    r.change(9, Change::Remove(NodeId(2)), &mut out);
    assert_eq!(
        out.changes_done().collect::<Vec<_>>(),
        vec![(9, Err(ChangeError::Pending))]
    );
}

/// n0 of nodes 0-4 (`cfg`), leader of term 1, told n1 (caught up) to campaign, then stepped
/// down into term 2 on n1's vote request: the handoff waits to hear from n1 as leader of
/// term 2.
fn handing_off(cfg: &Config) -> Raft<u32> {
    let mut r = boot_with(0, 5, cfg, 0, vec![]);
    fire(&mut r, RaftTimer::Election);
    if cfg.pre_vote {
        for p in [1, 2] {
            recv(&mut r, p, pre_vote(1, true));
        }
    }
    for p in [1, 2] {
        recv(&mut r, p, vote(1, true));
    }
    assert!(r.is_leader());
    recv(&mut r, 1, ok(1, 1));
    let mut out = Effects::new();
    r.change(7, Change::Transfer(NodeId(1)), &mut out);
    assert!(out
        .sends()
        .any(|(to, m)| to == NodeId(1) && matches!(m, RaftMsg::TimeoutNow { .. })));
    let out = recv(&mut r, 1, request_vote(2, 1, 1));
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(out.changes_done().count(), 0, "waiting to hear from n1");
    r
}

#[test]
fn a_handed_off_transfer_is_answered_once_by_what_happens_next() {
    let answer = |r: &mut Raft<u32>, from: u8, msg: RaftMsg<u32>| {
        recv(r, from, msg).changes_done().collect::<Vec<_>>()
    };
    let heartbeat = |term| append(term, 1, 1, vec![], 1);
    // n1 leads term 2: done.
    let mut r = handing_off(&plain());
    assert_eq!(
        answer(&mut r, 1, heartbeat(2)),
        vec![(7, Ok(r.status().config))]
    );
    // n1 leads term 2 and hands the leadership straight back: its TimeoutNow (a message of
    // term 2's leader) comes before any append. n1 made it: done at once, not left for
    // whenever n0 next changes term (where it read "timed out"), and n0 campaigns in term 3.
    let mut r = handing_off(&plain());
    assert_eq!(
        answer(&mut r, 1, RaftMsg::TimeoutNow { term: 2 }),
        vec![(7, Ok(r.status().config))]
    );
    assert_eq!((r.status().role, r.status().term), (Role::Candidate, 3));
    // n2 leads term 2 instead (with n3 and n4's votes): interrupted.
    let mut r = handing_off(&plain());
    assert_eq!(
        answer(&mut r, 2, heartbeat(2)),
        vec![(7, Err(ChangeError::Interrupted))]
    );
    // Term 3 begins before n1 was heard from as leader of term 2: n1 did not make it.
    let mut r = handing_off(&plain());
    assert_eq!(
        answer(&mut r, 2, request_vote(3, 1, 1)),
        vec![(7, Err(ChangeError::TransferTimedOut(NodeId(1))))]
    );
    // Our election timer fires first (a pre-vote, which moves no term): n1 did not make it.
    let mut r = handing_off(&Config {
        pre_vote: true,
        ..plain()
    });
    assert_eq!(
        fire(&mut r, RaftTimer::Election)
            .changes_done()
            .collect::<Vec<_>>(),
        vec![(7, Err(ChangeError::TransferTimedOut(NodeId(1))))]
    );
}

#[test]
fn a_timeout_now_never_makes_a_non_voter_campaign() {
    // A spare (n3, booted outside the configuration of n0-n2) that a stale or misdirected
    // TimeoutNow reaches stays a follower: leadership goes to voters only (diss. §3.10
    // with §4).
    let mut spare = boot_with(3, 3, &plain(), 0, vec![]);
    let out = recv(&mut spare, 0, RaftMsg::TimeoutNow { term: 1 });
    assert_eq!(spare.status().role, Role::Follower);
    assert_eq!(out.sends().count(), 0, "no vote asked: {out:?}");
}

#[test]
fn a_truncation_takes_a_configuration_appended_inside_a_batch_with_it() {
    // Diss. §4.1: a server follows the latest configuration in its log, committed or not.
    // Term 1's leader n0 sends x and a configuration adding n3 in one append; term 2's
    // leader n2 replaces slot 2 with its no-op, and n1 falls back to the old configuration.
    let mut f = boot_with(1, 3, &plain(), 0, vec![]);
    let batch = vec![entry(1, 7), Entry::configuration(1, voters(&[0, 1, 2, 3]))];
    recv(&mut f, 0, append(1, 0, 0, batch, 0));
    assert_eq!(f.status().config, voters(&[0, 1, 2, 3]));
    recv(&mut f, 2, append(2, 1, 1, vec![Entry::noop(2)], 0));
    assert_eq!(
        (f.status().last, f.status().config),
        (2, voters(&[0, 1, 2]))
    );
}

#[test]
fn a_removed_leader_commits_its_removal_then_steps_down_and_never_campaigns() {
    let mut c = cluster(3, 3, Config::default());
    c.change(0, 1, Change::Remove(NodeId(0)));
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[1, 2])))]);
    assert_eq!(c.replica(0).status().role, Role::Follower);
    // The others heard the commit point before it left.
    assert_eq!(c.replica(1).status().commit, c.replica(0).status().commit);
    c.fire(0, RaftTimer::Election);
    assert!(c.net.is_empty(), "a removed server does not campaign");
    c.elect(1);
    assert_eq!(c.replica(1).status().role, Role::Leader);
    c.propose(1, vec![4]);
    c.deliver_all();
    assert_eq!(c.applied(1), vec![4]);
}

/// Liveness (found by the simulator): a leader appends its own removal and is cut off
/// before anyone else has it. The remaining voter, of {n0,n1}, needs n0's vote, which n0's
/// log check denies (n0's log holds {n1}, n1's does not): only n0 can be elected, so n0
/// must campaign although its latest configuration leaves it out; it then leads {n1},
/// commits its removal, and steps down.
#[test]
fn a_server_whose_removal_is_not_committed_still_campaigns_so_that_it_commits() {
    let mut c = cluster(2, 2, Config::default());
    c.partition(&[0]);
    c.change(0, 1, Change::Remove(NodeId(0)));
    c.deliver_all();
    let removal = c.replica(0).status().last;
    assert_eq!(config(&c, 0), voters(&[1]));
    assert_eq!(config(&c, 1), voters(&[0, 1]));
    // Cut off, n0 loses its role (CheckQuorum) before anyone has its removal.
    for _ in 0..3 {
        if c.replica(0).status().role == Role::Leader {
            c.fire(0, RaftTimer::Election);
        }
    }
    assert_eq!(c.replica(0).status().role, Role::Follower);
    assert_eq!(answers(&c, 0), vec![(1, Err(ChangeError::Interrupted))]);
    c.heal();
    let fire = |c: &mut C, i: usize| {
        if c.due(i, RaftTimer::Election) {
            c.fire(i, RaftTimer::Election);
            c.deliver_all();
        }
    };
    // n1 cannot be elected: n0 denies it the vote of {n0,n1} (its log is longer).
    for _ in 0..3 {
        fire(&mut c, 1);
    }
    assert_ne!(c.replica(1).status().role, Role::Leader);
    // n0 campaigns, leads {n1} (n1's vote alone), commits its removal, steps down; then n1
    // leads alone.
    let mut rounds = 0;
    while !(c.replica(1).status().role == Role::Leader && c.replica(1).status().commit > removal) {
        rounds += 1;
        assert!(
            rounds <= 6,
            "no leader of {{n1}} after {rounds} rounds:\n{}",
            c.trace.join("\n")
        );
        fire(&mut c, 0);
        if c.due(0, RaftTimer::Heartbeat) {
            c.fire(0, RaftTimer::Heartbeat);
            c.deliver_all();
        }
        fire(&mut c, 1);
    }
    assert_eq!(config(&c, 1), voters(&[1]));
    assert_eq!(
        c.replica(0).status().role,
        Role::Follower,
        "n0 stepped down"
    );
    c.propose(1, vec![5]);
    c.deliver_all();
    assert_eq!(c.applied(1), vec![5]);
}

#[test]
fn a_voter_not_yet_told_of_its_promotion_lets_its_silent_leader_go() {
    let mut c = cluster(4, 3, Config::default());
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    // n3 takes n0's first probe (it holds nothing: it asks for more), then hears nothing
    // more; the others commit the change without it.
    c.deliver_first(|e| e.to == NodeId(3));
    c.partition(&[3]);
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2, 3])))]);
    assert_eq!(
        config(&c, 3),
        voters(&[0, 1, 2]),
        "n3 does not know it votes"
    );
    // n0 dies. n1 needs n3's vote, and n3 does not campaign: its lease on n0 must lapse at
    // its election timeout all the same, or it refuses every vote for ever.
    c.crash(0);
    c.heal();
    c.elect(1);
    assert_eq!(c.replica(1).status().role, Role::Leader);
}

#[test]
fn a_leader_that_loses_its_role_tells_the_operator_the_change_was_interrupted() {
    let mut c = cluster(4, 3, Config::default());
    c.partition(&[0]);
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.elect(1);
    c.heal();
    c.fire(1, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Err(ChangeError::Interrupted))]);
    assert_eq!(
        config(&c, 0),
        voters(&[0, 1, 2]),
        "n1's log replaced the change"
    );
}

#[test]
fn a_learner_takes_the_log_never_votes_nor_counts_and_is_promoted_once_caught_up() {
    let mut c = cluster(4, 3, Config::default());
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.deliver_all();
    let with_learner = Membership {
        learners: set(&[3]),
        ..voters(&[0, 1, 2])
    };
    assert_eq!(answers(&c, 0), vec![(1, Ok(with_learner))]);
    c.propose(0, vec![1]);
    c.deliver_all();
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.applied(3), vec![1], "the learner applies the log");
    // n0 with the learner is no majority: nothing commits.
    c.partition(&[1, 2]);
    c.propose(0, vec![2]);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![1]);
    // A learner never campaigns, and a candidate does not ask it.
    c.fire(3, RaftTimer::Election);
    assert!(c.net.iter().all(|e| e.from != NodeId(3)));
    c.heal();
    heartbeats_repair(&mut c);
    // Caught up: promoted.
    c.change(0, 2, Change::AddVoter(NodeId(3)));
    c.deliver_all();
    assert_eq!(answers(&c, 0)[1], (2, Ok(voters(&[0, 1, 2, 3]))));
}

#[test]
fn a_learner_far_behind_is_not_promoted() {
    // Learner n3 caught up, then partitioned while n0 appends `cmds` (one entry a batch).
    let learner_behind = |cmds: Vec<u32>| {
        let mut c = cluster(
            4,
            3,
            Config {
                max_batch: 1,
                ..Config::default()
            },
        );
        c.change(0, 1, Change::AddLearner(NodeId(3)));
        c.deliver_all();
        c.partition(&[3]);
        c.propose(0, cmds);
        c.deliver_all();
        c.change(0, 2, Change::AddVoter(NodeId(3)));
        c
    };
    let c = learner_behind(vec![1, 2, 3]);
    assert_eq!(answers(&c, 0)[1], (2, Err(ChangeError::Behind(NodeId(3)))));
    // Exactly `max_batch` entries behind is near enough: promoted.
    let mut c = learner_behind(vec![1]);
    c.deliver_all();
    assert_eq!(answers(&c, 0)[1], (2, Ok(voters(&[0, 1, 2, 3]))));
}

#[test]
fn joint_consensus_goes_through_c_old_new_to_c_new_and_needs_both_majorities() {
    let cfg = Config {
        changes: ChangeMode::Joint,
        ..Config::default()
    };
    let mut c = cluster(4, 3, cfg);
    c.change(0, 1, Change::Remove(NodeId(2)));
    let joint = Membership {
        outgoing: set(&[0, 1, 2]),
        ..voters(&[0, 1])
    };
    assert_eq!(config(&c, 0), joint);
    // C_old,new needs {n0,n1} of C_new and two of C_old: with n1 cut off, nothing commits.
    c.partition(&[1]);
    c.deliver_all();
    assert_eq!(config(&c, 0), joint, "C_new waits for C_old,new to commit");
    assert!(answers(&c, 0).is_empty());
    c.heal();
    heartbeats_repair(&mut c);
    assert_eq!(config(&c, 0), voters(&[0, 1]));
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1])))]);
    let log = c.replica(0).log();
    let configs: Vec<Membership> = log.iter().filter_map(|e| e.config).collect();
    assert_eq!(configs, vec![joint, voters(&[0, 1])]);
}

#[test]
fn a_snapshot_keeps_the_configuration_it_replaces() {
    let cfg = Config {
        snapshots: Some(crate::SnapshotPolicy {
            every: 1,
            chunk: 64,
        }),
        ..Config::default()
    };
    let mut c = cluster(4, 3, cfg);
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.deliver_all();
    c.propose(0, vec![1]);
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    c.snapshot(0);
    let r = c.replica(0);
    assert!(
        r.log().iter().all(|e| e.config.is_none()),
        "the log no longer holds it"
    );
    assert_eq!(r.status().config, voters(&[0, 1, 2, 3]));
    c.crash(0);
    c.restart(0);
    assert_eq!(
        config(&c, 0),
        voters(&[0, 1, 2, 3]),
        "restored from the snapshot"
    );
}

#[test]
fn a_transfer_hands_leadership_to_a_caught_up_target_despite_check_quorum() {
    // PreVote and CheckQuorum on: n2 heard from n0 lately and would refuse a plain vote
    // request; the transfer's vote request is granted all the same.
    let mut c = cluster(3, 3, Config::default());
    c.propose(0, vec![1]);
    c.deliver_all();
    c.change(0, 1, Change::Transfer(NodeId(1)));
    c.deliver_all();
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2])))]);
    c.propose(1, vec![2]);
    c.deliver_all();
    assert_eq!(c.applied(1), vec![1, 2]);
    // To itself: done at once.
    c.change(1, 2, Change::Transfer(NodeId(1)));
    assert_eq!(answers(&c, 1), vec![(2, Ok(voters(&[0, 1, 2])))]);
}

#[test]
fn a_transfer_waits_for_the_target_to_catch_up_and_redirects_proposals_meanwhile() {
    let mut c = cluster(3, 3, Config::default());
    c.partition(&[1]);
    c.propose(0, vec![1]);
    c.deliver_all();
    c.heal();
    c.change(0, 1, Change::Transfer(NodeId(1)));
    assert!(
        c.net
            .iter()
            .all(|e| !matches!(e.msg, RaftMsg::TimeoutNow { .. })),
        "n1 lacks slot 2: no TimeoutNow yet"
    );
    // n2, caught up, answers a heartbeat meanwhile: it is not the target, and gets nothing.
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_first(|e| e.to == NodeId(2));
    c.deliver_first(|e| e.from == NodeId(2));
    assert!(
        c.net
            .iter()
            .all(|e| !matches!(e.msg, RaftMsg::TimeoutNow { .. })),
        "TimeoutNow only ever goes to the target"
    );
    c.propose(0, vec![9]);
    assert_eq!(c.node(0).redirects, vec![(9, Some(NodeId(1)))]);
    c.deliver_all();
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(
        c.applied(1),
        vec![1],
        "the new leader has every committed entry"
    );
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2])))]);
}

#[test]
fn a_stuck_transfer_times_out_and_the_leader_takes_proposals_again() {
    let mut c = cluster(3, 3, Config::default());
    c.partition(&[1]);
    c.change(0, 1, Change::Transfer(NodeId(1)));
    c.change(0, 2, Change::AddVoter(NodeId(2)));
    c.deliver_all();
    c.fire(0, RaftTimer::Transfer);
    assert_eq!(
        answers(&c, 0),
        vec![
            (2, Err(ChangeError::Pending)),
            (1, Err(ChangeError::TransferTimedOut(NodeId(1))))
        ]
    );
    assert_eq!(c.leaders(), vec![0]);
    c.propose(0, vec![3]);
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![3]);
}

#[test]
fn leadership_goes_to_voters_only() {
    let mut c = cluster(4, 3, Config::default());
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.deliver_all();
    c.change(0, 2, Change::Transfer(NodeId(3)));
    assert_eq!(
        answers(&c, 0)[1],
        (2, Err(ChangeError::NotVoter(NodeId(3))))
    );
}

#[cfg(feature = "bug-zoo")]
mod bugs {
    use super::*;
    use crate::bugs::Bug;

    fn with(bug: Bug, cfg: Config) -> Config {
        let mut cfg = cfg;
        assert!(cfg.set_bug(bug));
        cfg
    }

    #[test]
    fn m2_a_second_change_while_the_first_is_pending_breaks_one_change_at_a_time() {
        let mut c = cluster(4, 3, with(Bug::ConcurrentChanges, Config::default()));
        c.record_violations = true;
        c.change(0, 1, Change::AddVoter(NodeId(3)));
        c.change(0, 2, Change::Remove(NodeId(1)));
        let v = c.violation().expect("caught");
        assert_eq!(v.invariant, names::ONE_CHANGE_AT_A_TIME);
    }

    #[test]
    fn m6_a_transfer_to_a_target_that_is_behind_is_caught() {
        let mut c = cluster(3, 3, with(Bug::TransferToBehind, Config::default()));
        c.record_violations = true;
        c.partition(&[1]);
        c.propose(0, vec![1]);
        c.deliver_all();
        c.heal();
        c.change(0, 1, Change::Transfer(NodeId(1)));
        let v = c.violation().expect("caught");
        assert_eq!(v.invariant, names::TRANSFER_TO_CAUGHT_UP);
    }

    /// {n0,n1,n2} with PreVote and CheckQuorum: n0 removes itself, steps down once C_new
    /// = {n1,n2} commits, and n1 leads term 2 with n2 following it (n2's lease holds). n0
    /// heard nothing of term 2: nobody sends to a server outside their configuration.
    fn n0_removed_n1_leads(cfg: Config) -> C {
        let mut c = cluster(3, 3, cfg);
        c.change(0, 1, Change::Remove(NodeId(0)));
        c.deliver_all();
        // Not `elect`, which would fire n0's timer too: n2's lease lapses, then n1 campaigns.
        c.fire(2, RaftTimer::Election);
        c.drop_where(|e| e.from == NodeId(2));
        c.time_out(1);
        c.deliver_all();
        c.fire(1, RaftTimer::Heartbeat);
        c.deliver_all();
        assert_eq!(c.leaders(), vec![1]);
        assert_eq!(c.replica(1).status().term, 2);
        assert_eq!(c.replica(0).status().term, 1);
        assert_eq!(config(&c, 0), voters(&[1, 2]), "n0 knows it was removed");
        c
    }

    /// n0's RequestVote for `term` (n0's log ends at its C_new, slot 2 of term 1), put on
    /// the wire to n1 and delivered.
    fn n0_asks_n1(c: &mut C, term: u64) {
        c.net.push(crate::driver::Envelope {
            from: NodeId(0),
            to: NodeId(1),
            msg: RaftMsg::RequestVote {
                term,
                last_index: 2,
                last_term: 1,
                pre_vote: false,
            },
        });
        c.deliver(c.net.len() - 1);
    }

    #[test]
    fn m5_a_leader_takes_a_removed_servers_term_only_with_the_bug() {
        // Clean (diss. §4.2.3): the leader disregards a vote request that would raise its
        // term; it keeps its role and its term.
        let mut c = n0_removed_n1_leads(Config::default());
        n0_asks_n1(&mut c, 3);
        assert_eq!(c.leaders(), vec![1]);
        assert_eq!(c.replica(1).status().term, 2);
        // M5: from a server outside n1's configuration the request is taken at its term,
        // and n1 is deposed (n0's log lacks n1's no-op: no vote for it either).
        let mut c = n0_removed_n1_leads(with(Bug::RemovedServerDisrupts, Config::default()));
        n0_asks_n1(&mut c, 3);
        let s = c.replica(1).status();
        assert_eq!((s.role, s.term, s.leader), (Role::Follower, 3, None));
        assert_eq!(c.replica(1).voted_for(), None);
    }

    #[test]
    fn m5_the_lease_still_refuses_a_member_with_the_bug() {
        // Only outsiders are taken at their term: n2's request for term 3 is refused by the
        // leader as without the bug.
        let mut c = n0_removed_n1_leads(with(Bug::RemovedServerDisrupts, Config::default()));
        c.net.push(crate::driver::Envelope {
            from: NodeId(2),
            to: NodeId(1),
            msg: RaftMsg::RequestVote {
                term: 3,
                last_index: 3,
                last_term: 2,
                pre_vote: false,
            },
        });
        c.deliver(c.net.len() - 1);
        assert_eq!(c.leaders(), vec![1]);
        assert_eq!(c.replica(1).status().term, 2);
    }

    #[test]
    fn m5_a_removed_leader_keeps_campaigning_and_deposes_the_next_leader() {
        let mut c = n0_removed_n1_leads(with(Bug::RemovedServerDisrupts, Config::default()));
        // Its first campaign is for term 2, n1's own: refused like any late candidate.
        c.fire(0, RaftTimer::Election);
        let asked: Vec<_> = c
            .net
            .iter()
            .map(|e| (e.from, e.to, e.msg.clone()))
            .collect();
        let ask = |to: u8| {
            (
                NodeId(0),
                NodeId(to),
                RaftMsg::RequestVote {
                    term: 2,
                    last_index: 2,
                    last_term: 1,
                    pre_vote: false,
                },
            )
        };
        assert_eq!(
            asked,
            vec![ask(1), ask(2)],
            "no pre-vote round, C_new's voters asked"
        );
        c.deliver_all();
        assert_eq!(c.leaders(), vec![1]);
        // Its second, for term 3, deposes n1, and nobody leads.
        c.fire(0, RaftTimer::Election);
        c.deliver_all();
        assert_eq!(c.leaders(), Vec::<usize>::new());
        for i in 0..3 {
            assert_eq!(c.replica(i).status().term, 3, "n{i}");
        }
        // n1 leads again in term 4 (no lease holds after a new term: its pre-vote passes);
        // n0, still in term 3, deposes it again at its second timeout: terms climb.
        c.fire(1, RaftTimer::Election);
        c.deliver_all();
        assert_eq!((c.leaders(), c.replica(1).status().term), (vec![1], 4));
        c.fire(0, RaftTimer::Election);
        c.deliver_all();
        c.fire(0, RaftTimer::Election);
        c.deliver_all();
        assert_eq!(c.leaders(), Vec::<usize>::new());
        assert_eq!(c.replica(1).status().term, 5);
    }

    #[test]
    fn m5_a_removed_server_that_never_learned_it_still_runs_pre_vote() {
        // n0 removes n2, which never hears of it (n0 stops sending to it): n2 still counts
        // itself a voter, so the bug's campaign half does not apply, and its pre-vote is
        // refused by n0 and n1, whose logs hold C_new.
        let mut c = cluster(3, 3, with(Bug::RemovedServerDisrupts, Config::default()));
        c.change(0, 1, Change::Remove(NodeId(2)));
        c.deliver_all();
        assert_eq!(config(&c, 2), voters(&[0, 1, 2]));
        c.fire(2, RaftTimer::Election);
        assert!(c
            .net
            .iter()
            .all(|e| matches!(e.msg, RaftMsg::RequestVote { pre_vote: true, .. })));
        c.deliver_all();
        assert_eq!(c.leaders(), vec![0]);
        assert_eq!(c.replica(0).status().term, 1);
        assert_eq!(c.replica(2).status().term, 1);
    }

    #[test]
    fn m4_leaving_joint_before_it_commits_breaks_one_change_at_a_time() {
        let cfg = Config {
            changes: ChangeMode::Joint,
            ..Config::default()
        };
        let mut c = cluster(4, 3, with(Bug::JointLeftEarly, cfg));
        c.record_violations = true;
        c.change(0, 1, Change::Remove(NodeId(2)));
        let v = c.violation().expect("caught");
        assert_eq!(v.invariant, names::ONE_CHANGE_AT_A_TIME);
    }
}
