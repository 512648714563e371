//! Multi-Paxos reconfiguration (see [`super::reconfig`]), through the deterministic driver:
//! every invariant (configurations agree, proposals within the window, one value per slot
//! counted in each slot's configuration, state machine safety) is checked after every step.

use super::*;
use crate::driver::Cluster;
use crate::membership::ChangeError;
use crate::replica::SnapshotPolicy;

use super::tests::{deliver_until, heartbeats, in_flight, recv, sends};

type Cmd = u32;
type P = MultiPaxos<Cmd>;
type C = Cluster<P, Cmd>;

fn set(ids: &[u8]) -> NodeSet {
    NodeSet::of(ids.iter().map(|&i| NodeId(i)))
}

fn voters(ids: &[u8]) -> Membership {
    Membership::voters(set(ids))
}

/// A small window (α = 2), so that a change takes effect two slots after its own.
fn cfg() -> Config {
    Config {
        window: 2,
        ..Config::default()
    }
}

/// [`cfg`] without CheckQuorum: a follower promises a candidate at once, though it heard
/// from a live leader lately (with it, the leader's lease would ignore the candidate).
fn cfg_no_lease() -> Config {
    Config {
        check_quorum: false,
        ..cfg()
    }
}

/// `n` nodes, the first `v` voting, n0 elected (every promise in).
fn cluster(n: usize, v: usize, cfg: Config) -> C {
    let mut c = C::with_voters(n, v, cfg);
    c.elect(0);
    c.deliver_all();
    c
}

fn answers(c: &C, i: usize) -> Vec<(ChangeId, Result<Membership, ChangeError>)> {
    c.node(i).changes.clone()
}

fn config(c: &C, i: usize) -> Membership {
    c.replica(i).status().config
}

fn role(c: &C, i: usize) -> Role {
    c.replica(i).status().role
}

/// What node `i` holds in each slot above its snapshot: `Some(cmd)`, `None` a no-op, a
/// configuration as its voters.
fn values(c: &C, i: usize) -> Vec<Value<Cmd>> {
    c.replica(i)
        .log()
        .iter()
        .map(|e| e.as_ref().map_or(Value::Noop, |e| e.value.clone()))
        .collect()
}

/// Commit what is in flight everywhere: two heartbeat rounds after delivering everything
/// (the first re-sends what a follower lacks, the second tells it the commit point).
fn settle(c: &mut C, leader: usize) {
    c.deliver_all();
    heartbeats(c, leader, 2);
}

#[test]
fn a_spare_joins_as_a_voter_alpha_slots_after_its_change() {
    let mut c = cluster(4, 3, cfg());
    assert_eq!(config(&c, 0), voters(&[0, 1, 2]));
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    // The spare is sent the log from the moment the change is asked for.
    assert!(c.net.iter().any(|e| e.to == NodeId(3)));
    assert!(answers(&c, 0).is_empty(), "not in effect yet");
    c.deliver_all();
    // Slot 1 holds the change; slot 2 (α - 1 = 1 slot) is padded with a no-op so that it
    // takes effect at slot 3, and only then is the operator answered.
    let grown = voters(&[0, 1, 2, 3]);
    assert_eq!(answers(&c, 0), vec![(1, Ok(grown))]);
    assert_eq!(values(&c, 0), vec![Value::Config(grown), Value::Noop]);
    assert_eq!(
        c.replica(0).configs().pairs(),
        &[(1, voters(&[0, 1, 2])), (3, grown)]
    );
    settle(&mut c, 0);
    for i in 0..4 {
        assert_eq!(config(&c, i), grown, "n{i}");
    }
    // n3 counts now: n0 and n3 are two of four, no majority.
    c.partition(&[1, 2]);
    c.propose(0, vec![7]);
    c.deliver_all();
    assert!(c.applied(0).is_empty(), "n0 and n3 alone committed");
    c.heal();
    settle(&mut c, 0);
    for i in 0..4 {
        assert_eq!(c.applied(i), vec![7], "n{i}");
    }
}

#[test]
fn a_voter_leaves_and_three_of_four_become_two_of_three() {
    let mut c = cluster(4, 4, cfg());
    c.change(0, 1, Change::Remove(NodeId(3)));
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2])))]);
    settle(&mut c, 0);
    assert_eq!(config(&c, 3), voters(&[0, 1, 2]), "n3 learned it left");
    // n3 is no longer replicated to, and n0 and n1 are a majority of what remains.
    c.crash(2);
    c.crash(3);
    c.propose(0, vec![5]);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![5]);
    // The removed node never campaigns.
    c.restart(3);
    c.fire(3, PaxosTimer::Election);
    assert!(c.net.iter().all(|e| e.from != NodeId(3)));
}

/// Once every slot a configuration decides is chosen, it counts no more: right after n3's
/// removal took effect (slots 1 and 2 chosen under {0,1,2,3}, slot 3 on under {0,1,2}), two
/// of {0,1,2} are a quorum of everything above the commit point, though not 3 of the 4 that
/// decided the commit point's slot: the leader passes CheckQuorum with n1 alone, and with
/// the leader gone n1 is elected by n2's promise.
#[test]
fn the_configuration_of_chosen_slots_no_longer_counts() {
    let removed = |down: [usize; 2]| {
        let mut c = cluster(4, 4, cfg());
        c.change(0, 1, Change::Remove(NodeId(3)));
        settle(&mut c, 0);
        assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2])))]);
        assert_eq!(
            c.replica(1).status().commit,
            2,
            "slot 3 is the first of {{0,1,2}}"
        );
        for i in down {
            c.crash(i);
        }
        c
    };
    // CheckQuorum: after a check that counted everyone (they answered the settling
    // heartbeats), n1 alone answers a heartbeat, and n0 stays leader at the next check.
    let mut c = removed([2, 3]);
    c.fire(0, PaxosTimer::Election);
    c.fire(0, PaxosTimer::Heartbeat);
    c.deliver_all();
    c.fire(0, PaxosTimer::Election);
    assert_eq!(role(&c, 0), Role::Leader, "n0 and n1 are a quorum");
    // Phase 1: n1 is elected with n2's promise.
    let mut c = removed([0, 3]);
    c.elect(1);
    assert_eq!(role(&c, 1), Role::Leader, "n1 and n2 are a quorum");
}

/// A candidate's window reaches α slots past its commit point, and phase 1 needs a majority
/// of every configuration deciding a slot of it: n1 knows slot 1 chosen (n3 added, a voter
/// from slot 3 = 1 + α on), so with n0 and n3 down n2's promise is not enough (slot 3 is
/// {0,1,2,3}'s); with n3 back, it leads.
#[test]
fn phase_1_covers_every_configuration_of_the_candidate_s_window() {
    let mut c = cluster(4, 3, cfg_no_lease());
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    deliver_until(&mut c, |c| c.replica(1).status().commit == 1);
    c.crash(0);
    c.crash(3);
    c.drop_where(|_| true);
    c.time_out(1);
    c.deliver_all();
    assert_eq!(
        role(&c, 1),
        Role::Candidate,
        "n1 and n2 are not 3 of {{0,1,2,3}}"
    );
    c.restart(3);
    c.time_out(1);
    c.deliver_all();
    assert_eq!(role(&c, 1), Role::Leader, "n1, n2 and n3 are");
}

/// Phase 1 for a configuration the window reaches (module docs, "A leader's phase 1 follows
/// the window"): right after n3's removal is chosen in slot 1, slot 3 on is {0,1,2}'s, which
/// the election's promises (for {0,1,2,3}) do not cover. The leader asks exactly the voters
/// of {0,1,2} other than itself with `LatePrepare` from slot 3, the first it has not
/// proposed; asks again at a heartbeat when those were lost; counts a `LatePromise` only of
/// its ballot, well-formed (its chunk inside the range it reports) and complete (every chunk
/// of that range in); and then proposes the command that waited.
#[test]
fn a_late_phase_1_asks_the_new_voters_and_counts_only_whole_promises_of_its_ballot() {
    let mut c = cluster(4, 4, cfg());
    c.change(0, 1, Change::Remove(NodeId(3)));
    let late_prepares = |c: &C| -> Vec<(NodeId, Slot)> {
        let mut v: Vec<(NodeId, Slot)> = c
            .net
            .iter()
            .filter_map(|e| match e.msg {
                PaxosMsg::LatePrepare { from, .. } => Some((e.to, from)),
                _ => None,
            })
            .collect();
        v.sort();
        v
    };
    deliver_until(&mut c, |c| {
        in_flight(c, |m| matches!(m, PaxosMsg::LatePrepare { .. }))
    });
    let asked = vec![(NodeId(1), 3), (NodeId(2), 3)];
    assert_eq!(late_prepares(&c), asked, "n1 and n2, from slot 3");
    // Lost: the next heartbeat asks again.
    c.drop_where(|e| matches!(e.msg, PaxosMsg::LatePrepare { .. }));
    c.fire(0, PaxosTimer::Heartbeat);
    assert_eq!(late_prepares(&c), asked, "asked again at the heartbeat");
    // A command waits for slot 3; n1's promise, with n0's own, is a majority of {0,1,2}:
    // 7 is proposed once it counts, and nothing before (a promise counted too early would
    // also propose the no-ops its chunk reports).
    c.propose(0, vec![7]);
    let waiting = c.replica(0).clone();
    let b = waiting.ballot();
    // What n0 proposes when n1's message comes.
    let proposes = |msg: PaxosMsg<Cmd>| -> Vec<Value<Cmd>> {
        let mut values = Vec::new();
        for (to, m) in sends(&recv(&mut waiting.clone(), 1, msg)) {
            if let (1, PaxosMsg::Accept { cmds, .. }) = (to, m) {
                values.extend(cmds.iter().cloned());
            }
        }
        values
    };
    let promise = |ballot, first, accepted: usize, start, end| PaxosMsg::LatePromise {
        ballot,
        from: first,
        accepted: vec![None; accepted],
        start,
        end,
    };
    let other = Ballot {
        round: b.round + 1,
        ..b
    };
    for (msg, what) in [
        (promise(other, 3, 0, 3, 3), "another ballot's"),
        (promise(b, 2, 1, 3, 3), "a chunk below the range it reports"),
        (promise(b, 3, 2, 3, 4), "a chunk past the range it reports"),
        (promise(b, 3, 1, 3, 5), "the first of two chunks"),
    ] {
        assert_eq!(proposes(msg), vec![], "{what} promise counted");
    }
    assert_eq!(
        proposes(promise(b, 3, 0, 3, 3)),
        vec![Value::Cmd(7)],
        "n1's promise counts"
    );
}

/// What waits for the window goes out as one run when the window opens: a change and the
/// command queued behind it, taken slot by slot (a configuration command notes its slot)
/// and as a run, are one `Accept` of slots 3 and 4, not one a slot.
#[test]
fn a_change_and_the_commands_queued_behind_it_go_out_in_one_accept() {
    let mut c = cluster(4, 3, cfg());
    // α = 2: slots 1 and 2 fill the window; the change and 7 wait in the queue.
    c.propose(0, vec![1, 2]);
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.propose(0, vec![7]);
    c.verbose = true;
    c.deliver_all();
    let accepts: Vec<&String> = c
        .trace
        .iter()
        .filter(|l| l.starts_with("n0 -> n1: Accept") && l.contains("first: 3,"))
        .collect();
    assert_eq!(accepts.len(), 1, "{accepts:#?}");
    assert!(accepts[0].contains("cmds: [Config("), "{}", accepts[0]);
    assert!(accepts[0].contains("), Some(7)]"), "{}", accepts[0]);
}

/// A change is refused as pending while a configuration command is in the log unchosen,
/// even one the leader did not take from an operator: n0 asked to add n3 as a learner and
/// crashed with only n1 holding the command; n1, elected, proposes it again (no operator
/// request of its own pending), and refuses another change until it is chosen.
#[test]
fn a_recovered_unchosen_change_is_pending_at_the_new_leader() {
    let mut c = cluster(4, 3, cfg_no_lease());
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.deliver_first(|e| e.to == NodeId(1) && matches!(e.msg, PaxosMsg::Accept { .. }));
    c.crash(0);
    c.drop_where(|_| true);
    c.time_out(1);
    c.deliver_first(|e| e.to == NodeId(2) && matches!(e.msg, PaxosMsg::Prepare { .. }));
    c.deliver_first(|e| e.to == NodeId(1) && matches!(e.msg, PaxosMsg::Promise { .. }));
    assert_eq!(role(&c, 1), Role::Leader);
    assert!(
        in_flight(&c, |m| matches!(m, PaxosMsg::Accept { first: 1, cmds, .. }
            if matches!(cmds.first(), Some(Value::Config(_))))),
        "n1 proposes the recovered change again: {:?}",
        c.net
    );
    c.change(1, 2, Change::AddVoter(NodeId(3)));
    assert_eq!(answers(&c, 1), vec![(2, Err(ChangeError::Pending))]);
}

/// A removed node that stops hearing from the leader forgets it: it names no leader to
/// clients (found by the simulator: a stale hint sent clients back and forth between two
/// removed nodes, never to the leader).
#[test]
fn a_removed_node_forgets_the_leader_it_no_longer_hears_from() {
    let mut c = cluster(4, 4, cfg());
    c.change(0, 1, Change::Remove(NodeId(3)));
    c.deliver_all();
    settle(&mut c, 0);
    assert_eq!(config(&c, 3), voters(&[0, 1, 2]), "n3 learned it left");
    assert_eq!(c.replica(3).status().leader, Some(NodeId(0)));
    c.time_out(3);
    assert_eq!(c.replica(3).status().leader, None);
    assert_eq!(c.replica(3).status().role, Role::Follower);
    assert!(
        c.net.iter().all(|e| e.from != NodeId(3)),
        "and never campaigns"
    );
}

#[test]
fn a_removed_leader_pads_to_its_removal_tells_everyone_and_steps_down() {
    let mut c = cluster(3, 3, cfg());
    c.propose(0, vec![1]);
    c.change(0, 1, Change::Remove(NodeId(0)));
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[1, 2])))]);
    assert_eq!(role(&c, 0), Role::Follower);
    // Every slot before the change took effect is chosen, and the others know it: they
    // learned the new configuration from the leader's last heartbeat.
    for i in 1..3 {
        assert_eq!(config(&c, i), voters(&[1, 2]), "n{i}");
        assert_eq!(
            c.replica(i).status().commit,
            c.replica(0).status().commit,
            "n{i}"
        );
    }
    c.fire(0, PaxosTimer::Election);
    assert!(c.net.is_empty(), "a removed node does not run phase 1");
    c.elect(1);
    assert_eq!(role(&c, 1), Role::Leader);
    c.propose(1, vec![2]);
    c.deliver_all();
    assert_eq!(c.applied(1), vec![1, 2]);
    // The old leader is not sent anything any more.
    assert!(c.replica(0).status().commit < c.replica(1).status().commit);
}

/// A leader that removes itself proposes nothing past the slot its removal decides from, even
/// with commands queued beyond it: a run of queued commands stops at the end of the
/// configuration it was checked against. α = 2: commands 1 and 2 take slots 1 and 2, the
/// window holds 3 and the removal back; slot 2's acceptance proposes 3 and the removal (slots 3
/// and 4); slot 4's makes the removal decide from slot 6, so only slot 5 is left to n0 (command
/// 4), and the rest wait for the next leader.
#[test]
fn a_removed_leader_s_queued_commands_stop_at_its_removal() {
    let mut c = cluster(3, 3, cfg());
    c.propose(0, vec![1, 2, 3]);
    c.change(0, 1, Change::Remove(NodeId(0)));
    c.propose(0, (4..=10).collect());
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[1, 2])))]);
    assert_eq!(role(&c, 0), Role::Follower);
    // The last slot of each Accept n0 sent: its first, plus the values it carries.
    let last_slot = |l: &String| {
        let first: Slot = l.split("first: ").nth(1)?.split(',').next()?.parse().ok()?;
        let values = ["Some(", "Config(", "Noop"]
            .iter()
            .map(|v| l.matches(v).count() as Slot)
            .sum::<Slot>();
        (l.starts_with("n0 -> ") && l.contains(": Accept {") && values > 0)
            .then(|| first + values - 1)
    };
    let past = |l: &String| last_slot(l).is_some_and(|last| last >= 6);
    assert!(
        !c.trace.iter().any(past),
        "n0 proposed past its removal:\n{}",
        c.trace.join("\n")
    );
    assert_eq!(c.applied(1), vec![1, 2, 3, 4], "slots 1, 2, 3 and 5");
}

#[test]
fn bad_requests_are_refused_with_raft_s_errors_and_change_nothing() {
    let mut c = cluster(4, 3, cfg());
    let before = c.replica(0).clone();
    c.change(1, 1, Change::AddVoter(NodeId(3)));
    c.change(0, 2, Change::AddVoter(NodeId(1)));
    c.change(0, 3, Change::Remove(NodeId(3)));
    c.change(0, 4, Change::AddLearner(NodeId(2)));
    c.change(0, 5, Change::Remove(NodeId(7)));
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
            (4, Err(ChangeError::Exists(NodeId(2)))),
            (5, Err(ChangeError::Unknown(NodeId(7)))),
        ]
    );
    assert_eq!(*c.replica(0), before, "the leader is unchanged");
    assert!(c.net.is_empty(), "nothing was sent");
    // The last voter cannot go.
    let mut one = cluster(2, 1, cfg());
    one.change(0, 9, Change::Remove(NodeId(0)));
    assert_eq!(
        answers(&one, 0),
        vec![(9, Err(ChangeError::LastVoter(NodeId(0))))]
    );
}

#[test]
fn one_change_at_a_time_until_it_takes_effect() {
    let mut c = cluster(4, 3, cfg());
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.change(0, 2, Change::Remove(NodeId(2)));
    assert_eq!(answers(&c, 0), vec![(2, Err(ChangeError::Pending))]);
    // Chosen but not yet in effect (its padding is not chosen): still pending.
    c.deliver_first(|e| e.to == NodeId(1));
    c.deliver_first(|e| e.to == NodeId(0));
    assert_eq!(c.replica(0).status().commit, 1, "the change is chosen");
    c.change(0, 3, Change::Remove(NodeId(2)));
    assert_eq!(answers(&c, 0)[1], (3, Err(ChangeError::Pending)));
    c.deliver_all();
    assert_eq!(answers(&c, 0)[2], (1, Ok(voters(&[0, 1, 2, 3]))));
    c.change(0, 4, Change::Remove(NodeId(2)));
    c.deliver_all();
    assert_eq!(answers(&c, 0)[3], (4, Ok(voters(&[0, 1, 3]))));
}

#[test]
fn a_leader_that_loses_its_role_answers_interrupted() {
    let mut c = cluster(4, 3, cfg());
    c.partition(&[0]);
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.elect(1);
    c.heal();
    c.fire(1, PaxosTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Err(ChangeError::Interrupted))]);
    assert_eq!(role(&c, 0), Role::Follower);
    // Nobody else had accepted it: the new leader's log replaced it.
    for i in 0..4 {
        assert_eq!(config(&c, i), voters(&[0, 1, 2]), "n{i}");
    }
}

#[test]
fn a_learner_takes_the_log_never_counts_nor_campaigns_and_is_promoted_once_caught_up() {
    let mut c = cluster(4, 3, cfg());
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.deliver_all();
    let with_learner = Membership {
        learners: set(&[3]),
        ..voters(&[0, 1, 2])
    };
    assert_eq!(answers(&c, 0), vec![(1, Ok(with_learner))]);
    c.propose(0, vec![1]);
    settle(&mut c, 0);
    assert_eq!(c.applied(3), vec![1], "the learner applies the log");
    // n0 with the learner is no majority: nothing commits.
    c.partition(&[1, 2]);
    c.propose(0, vec![2]);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![1]);
    // A learner never runs phase 1, and a candidate does not ask it.
    c.fire(3, PaxosTimer::Election);
    assert!(c.net.iter().all(|e| e.from != NodeId(3)));
    c.heal();
    settle(&mut c, 0);
    assert_eq!(c.applied(3), vec![1, 2]);
    // Caught up: promoted.
    c.change(0, 2, Change::AddVoter(NodeId(3)));
    c.deliver_all();
    assert_eq!(answers(&c, 0)[1], (2, Ok(voters(&[0, 1, 2, 3]))));
    c.elect(2);
    let prepared: Vec<NodeId> = c
        .trace
        .iter()
        .filter(|l| l.starts_with("n2 -> ") && l.contains("Prepare"))
        .map(|l| NodeId(l.as_bytes()[7] - b'0'))
        .collect();
    assert!(prepared.contains(&NodeId(3)), "a voter now: {prepared:?}");
}

#[test]
fn a_learner_far_behind_is_not_promoted() {
    let cfg = Config {
        max_batch: 1,
        ..cfg()
    };
    let mut c = cluster(4, 3, cfg);
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.deliver_all();
    c.partition(&[3]);
    for k in 1..=3 {
        c.propose(0, vec![k]);
        c.deliver_all();
    }
    c.change(0, 2, Change::AddVoter(NodeId(3)));
    assert_eq!(answers(&c, 0)[1], (2, Err(ChangeError::Behind(NodeId(3)))));
    assert_eq!(config(&c, 0).learners, set(&[3]), "unchanged");
}

/// The promotion rule counts from what the learner holds plus `max_batch`: a learner that
/// acknowledged nothing yet is still within `max_batch` of a log of a few slots, and is
/// promoted (it catches up in one batch).
#[test]
fn a_learner_within_max_batch_of_the_last_proposal_is_promoted() {
    let mut c = cluster(4, 3, cfg());
    c.partition(&[3]);
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    c.deliver_all();
    assert!(c.replica(0).proposed() < c.config().max_batch as Slot);
    c.change(0, 2, Change::AddVoter(NodeId(3)));
    c.deliver_all();
    assert_eq!(answers(&c, 0)[1], (2, Ok(voters(&[0, 1, 2, 3]))));
}

#[test]
fn the_window_holds_back_what_lies_beyond_alpha_slots() {
    let mut c = cluster(3, 3, cfg());
    c.propose(0, vec![1, 2, 3, 4, 5]);
    // Only slots 1 and 2 may be proposed before anything is chosen; the rest wait.
    assert_eq!(c.replica(0).status().last, 2);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![1, 2, 3, 4, 5]);
    settle(&mut c, 0);
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![1, 2, 3, 4, 5], "n{i}");
    }
}

#[test]
fn a_lagging_leader_learns_the_configuration_and_asks_the_new_voter_for_a_promise() {
    // n2 misses the change that adds n3 (and everything after it).
    let mut c = cluster(4, 3, cfg());
    c.partition(&[2]);
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.deliver_all();
    c.propose(0, vec![1]);
    c.deliver_all();
    assert_eq!(answers(&c, 0), vec![(1, Ok(voters(&[0, 1, 2, 3])))]);
    assert_eq!(config(&c, 2), voters(&[0, 1, 2]), "n2 lags");
    c.heal();
    // n0 and n1 crash: n2 runs phase 1 in the configuration it knows for its window
    // ({n0,n1,n2}: it needs n1's promise), then re-proposes what it recovered, learns the
    // change as it commits it, and must ask n3, a voter of the slots from 3 on, to promise
    // too before it proposes there.
    c.crash(0);
    c.time_out(2);
    c.restart(0);
    c.deliver_all();
    assert_eq!(role(&c, 2), Role::Leader);
    assert_eq!(config(&c, 2), voters(&[0, 1, 2, 3]));
    assert!(
        c.trace
            .iter()
            .any(|l| l.starts_with("n2 -> n3: LatePrepare")),
        "n3 was asked to promise:\n{}",
        c.trace.join("\n")
    );
    c.propose(2, vec![2]);
    settle(&mut c, 2);
    for i in 0..4 {
        assert_eq!(c.applied(i), vec![1, 2], "n{i}");
    }
}

#[test]
fn a_joining_voter_may_lead_the_slots_before_its_configuration() {
    // α = 3: n3 joins by slot 1, in effect from slot 4. n0 pads slots 2 and 3, and crashes
    // with the padding accepted by n3 alone: n3 knows it votes from slot 4 on, campaigns, and
    // must propose slots 2 and 3 in the configuration it is not a voter of (a proposer need
    // not be an acceptor) before its own configuration decides anything.
    let cfg = Config {
        window: 3,
        check_quorum: false, // so that n1 and n2 answer n3 at once
        ..Config::default()
    };
    let mut c = cluster(4, 3, cfg);
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.deliver_first(|e| e.to == NodeId(1));
    c.deliver_first(|e| e.to == NodeId(3));
    c.deliver_first(|e| e.to == NodeId(0)); // n1's acceptance: slot 1 chosen, padding sent
    c.drop_where(|e| e.to == NodeId(0));
    c.deliver_first(|e| e.to == NodeId(3) && matches!(e.msg, PaxosMsg::Accept { first: 2, .. }));
    c.crash(0);
    c.drop_where(|_| true);
    assert_eq!(
        config(&c, 3),
        voters(&[0, 1, 2, 3]),
        "n3 learned the change"
    );
    assert_eq!(c.replica(3).status().commit, 1);
    c.fire(3, PaxosTimer::Election);
    c.deliver_all();
    assert_eq!(role(&c, 3), Role::Leader);
    c.propose(3, vec![9]);
    settle(&mut c, 3);
    for i in 1..4 {
        assert_eq!(c.applied(i), vec![9], "n{i}");
    }
}

#[test]
fn transfer_hands_phase_1_to_a_caught_up_target_and_answers_once_it_leads() {
    let mut c = cluster(3, 3, cfg());
    c.propose(0, vec![1]);
    settle(&mut c, 0);
    c.change(0, 1, Change::Transfer(NodeId(1)));
    // Proposals meanwhile go to the target.
    c.propose(0, vec![2]);
    assert_eq!(c.node(0).redirects, vec![(2, Some(NodeId(1)))]);
    c.change(0, 2, Change::AddLearner(NodeId(2)));
    assert_eq!(answers(&c, 0), vec![(2, Err(ChangeError::Pending))]);
    c.deliver_all();
    assert_eq!(role(&c, 1), Role::Leader);
    assert_eq!(role(&c, 0), Role::Follower);
    assert_eq!(answers(&c, 0)[1], (1, Ok(voters(&[0, 1, 2]))));
    c.propose(1, vec![2]);
    settle(&mut c, 1);
    assert_eq!(c.applied(0), vec![1, 2]);
}

/// Three nodes under `cfg`, n1 cut off while n0 commits slot 1, then asked (change 1) to
/// hand the leadership to n1, which lags.
fn transfer_to_lagging_n1(cfg: Config) -> C {
    let mut c = cluster(3, 3, cfg);
    c.partition(&[1]);
    c.propose(0, vec![1]);
    c.deliver_all();
    c.change(0, 1, Change::Transfer(NodeId(1)));
    c
}

/// `Handoff` waits until the target holds every slot proposed: a heartbeat meanwhile sends
/// the target what it lacks, not the handoff.
#[test]
fn transfer_to_a_lagging_target_waits_for_it_at_each_heartbeat() {
    let mut c = transfer_to_lagging_n1(cfg());
    c.deliver_all();
    let handoff = |out: &crate::replica::Effects<_, _, _, _>| {
        out.sends()
            .any(|(_, m)| matches!(m, PaxosMsg::Handoff { .. }))
    };
    assert!(
        !handoff(&c.peek_fire(0, PaxosTimer::Heartbeat)),
        "n1 lacks slot 1"
    );
    c.heal();
    c.fire(0, PaxosTimer::Heartbeat);
    // The handoff goes once n1 acknowledges the slot; lost, the next heartbeat sends it
    // again.
    deliver_until(&mut c, |c| {
        in_flight(c, |m| matches!(m, PaxosMsg::Handoff { .. }))
    });
    assert_eq!(
        c.drop_where(|e| matches!(e.msg, PaxosMsg::Handoff { .. })),
        1,
        "sent once n1 caught up"
    );
    assert!(
        handoff(&c.peek_fire(0, PaxosTimer::Heartbeat)),
        "sent again"
    );
    c.fire(0, PaxosTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(
        role(&c, 1),
        Role::Leader,
        "caught up, handed phase 1, elected"
    );
}

/// A transfer that another node's election ends is answered `Interrupted`, not done: n2
/// is elected while n1, the target, lags.
#[test]
fn a_transfer_overtaken_by_another_node_s_election_is_interrupted() {
    // Without CheckQuorum, so that n0 promises n2 at once (with it, n0's lease would
    // ignore n2, and its election timer would give the transfer up as timed out).
    let mut c = transfer_to_lagging_n1(cfg_no_lease());
    c.elect(2);
    assert_eq!(role(&c, 2), Role::Leader);
    assert_eq!(answers(&c, 0), vec![(1, Err(ChangeError::Interrupted))]);
}

/// A `HandoffPrepare` naming the leader's own ballot passes that leader's lease only once
/// the leader handed phase 1 over (sent `Handoff`): otherwise it is a challenger's
/// disruption, ignored, and the leader stays.
#[test]
fn a_leader_that_handed_nothing_over_ignores_a_handoff_prepare_naming_its_ballot() {
    let c = cluster(3, 3, cfg());
    let b = c.replica(0).ballot();
    let mut r = c.replica(0).clone();
    let higher = Ballot {
        round: b.round + 1,
        node: 1,
    };
    let out = recv(
        &mut r,
        1,
        PaxosMsg::HandoffPrepare {
            ballot: higher,
            from: 1,
            by: b,
        },
    );
    assert_eq!(r.status().role, Role::Leader, "{out:?}");
    assert!(
        !sends(&out)
            .iter()
            .any(|(_, m)| matches!(m, PaxosMsg::Promise { .. })),
        "{out:?}"
    );
}

/// A `Handoff` starts a campaign only at a voter that follows its sender in its ballot:
/// not from another node, not of an older ballot of the leader, not at a learner.
#[test]
fn a_handoff_is_acted_on_only_from_the_leader_in_its_ballot_by_a_voter() {
    let mut c = cluster(4, 3, cfg());
    c.change(0, 1, Change::AddLearner(NodeId(3)));
    settle(&mut c, 0);
    let b = c.replica(0).ballot();
    let campaigns = |i: usize, from: u8, ballot: Ballot| {
        let out = recv(
            &mut c.replica(i).clone(),
            from,
            PaxosMsg::Handoff { ballot },
        );
        sends(&out).into_iter().any(|(_, m)| {
            matches!(
                m,
                PaxosMsg::Prepare { .. } | PaxosMsg::HandoffPrepare { .. }
            )
        })
    };
    assert!(campaigns(1, 0, b), "n1 follows n0 in b");
    let older = Ballot {
        round: b.round - 1,
        ..b
    };
    let n2s = Ballot { node: 2, ..b };
    for (i, from, ballot, what) in [
        (1, 2, b, "from a node that is not the leader"),
        (1, 2, n2s, "from another node, in its own ballot"),
        (1, 0, older, "of an older ballot of the leader"),
        (3, 0, b, "at a learner"),
    ] {
        assert!(!campaigns(i, from, ballot), "a handoff {what} was acted on");
    }
}

#[test]
fn transfer_gives_up_after_an_election_timeout_and_takes_proposals_again() {
    let mut c = cluster(3, 3, cfg());
    c.partition(&[1]);
    c.change(0, 1, Change::Transfer(NodeId(1)));
    c.deliver_all();
    assert_eq!(role(&c, 0), Role::Leader);
    c.fire(0, PaxosTimer::Election);
    assert_eq!(
        answers(&c, 0),
        vec![(1, Err(ChangeError::TransferTimedOut(NodeId(1))))]
    );
    assert_eq!(role(&c, 0), Role::Leader);
    c.propose(0, vec![3]);
    c.deliver_all();
    assert_eq!(c.applied(0), vec![3]);
}

#[test]
fn transfer_to_itself_a_learner_or_a_stranger() {
    let mut c = cluster(4, 3, cfg());
    c.change(0, 1, Change::Transfer(NodeId(0)));
    c.change(0, 2, Change::Transfer(NodeId(3)));
    c.change(0, 3, Change::AddLearner(NodeId(3)));
    c.deliver_all();
    c.change(0, 4, Change::Transfer(NodeId(3)));
    c.change(2, 5, Change::Transfer(NodeId(1)));
    let three = voters(&[0, 1, 2]);
    assert_eq!(
        answers(&c, 0),
        vec![
            (1, Ok(three)),
            (2, Err(ChangeError::Unknown(NodeId(3)))),
            (
                3,
                Ok(Membership {
                    learners: set(&[3]),
                    ..three
                })
            ),
            (4, Err(ChangeError::NotVoter(NodeId(3)))),
        ]
    );
    assert_eq!(
        answers(&c, 2),
        vec![(
            5,
            Err(ChangeError::NotLeader {
                leader: Some(NodeId(0))
            })
        )]
    );
    assert_eq!(role(&c, 0), Role::Leader);
}

#[test]
fn the_configuration_survives_compaction_travels_with_snapshots_and_restarts() {
    let cfg = Config {
        snapshots: Some(SnapshotPolicy { every: 2, chunk: 8 }),
        ..cfg()
    };
    let mut c = cluster(5, 3, cfg);
    c.change(0, 1, Change::AddVoter(NodeId(3)));
    c.deliver_all();
    c.propose(0, vec![1, 2]);
    settle(&mut c, 0);
    let grown = voters(&[0, 1, 2, 3]);
    let r = c.replica(0);
    assert!(r.snapshot_slot() >= 3, "compacted past the change");
    assert!(
        r.log().iter().flatten().all(|e| e.value.config().is_none()),
        "the log no longer holds it"
    );
    assert_eq!(r.status().config, grown);
    c.crash(0);
    c.restart(0);
    assert_eq!(config(&c, 0), grown, "restored with the snapshot");
    // A fifth node joins: the leader (n1 now) ships it the snapshot, configurations included.
    c.elect(1);
    c.change(1, 2, Change::AddVoter(NodeId(4)));
    settle(&mut c, 1);
    assert_eq!(answers(&c, 1), vec![(2, Ok(voters(&[0, 1, 2, 3, 4])))]);
    assert!(
        c.replica(4).snapshot_slot() > 0,
        "n4 caught up from a snapshot"
    );
    assert_eq!(config(&c, 4), voters(&[0, 1, 2, 3, 4]));
    assert_eq!(c.applied(4), vec![1, 2]);
}

#[test]
fn renaming_renames_every_configuration() {
    let map = [NodeId(1), NodeId(2), NodeId(0)];
    let map = crate::Renaming(&map);
    let mut c = cluster(3, 2, cfg());
    c.change(0, 1, Change::AddLearner(NodeId(2)));
    c.deliver_all();
    let mut r = c.replica(0).clone();
    r.rename(&map);
    let renamed = Membership {
        voters: set(&[1, 2]),
        learners: set(&[0]),
        outgoing: NodeSet::EMPTY,
    };
    assert_eq!(r.status().config, renamed);
    assert_eq!(
        r.log()[0].as_ref().map(|e| &e.value),
        Some(&Value::Config(renamed))
    );
    let mut d = c.replica(0).durable();
    P::rename_durable(&mut d, &map);
    assert_eq!(
        d.log[0].as_ref().map(|e| &e.value),
        Some(&Value::Config(renamed))
    );
    let mut msg = PaxosMsg::Accept {
        ballot: Ballot { round: 1, node: 0 },
        first: 1,
        cmds: vec![Value::Config(voters(&[0]))].into(),
        commit: 0,
    };
    P::rename_msg(&mut msg, &map);
    assert!(
        matches!(msg, PaxosMsg::Accept { ref cmds, .. } if cmds[..] == [Value::Config(voters(&[1]))])
    );
}

/// One seeded walk over `n` nodes (the first 3 voting): random deliveries, losses,
/// duplicates, timers, proposals (and reads, with a read path), change requests of every
/// kind at any node, crashes and restarts, partitions. The driver checks every invariant
/// after every step, the read rules included. Returns how many changes took effect (and
/// transfers succeeded) and how many reads were served, or the first violation with the last
/// steps before it.
fn walk(n: usize, cfg: Config, seed: u64, steps: usize) -> Result<(usize, usize), String> {
    let reads = cfg.reads != crate::ReadMode::Log;
    let mut c = C::with_voters(n, 3, cfg);
    let mut read_id = 0;
    c.record_violations = true;
    let mut rng = crate::driver::WalkRng::new(seed);
    let (mut cmd, mut id) = (0u32, 0u64);
    let mut cut = false;
    for _ in 0..steps {
        let i = rng.below(n);
        let up = c.is_up(i);
        let roll = rng.below(100);
        if !c.net.is_empty() && roll < 60 {
            let k = rng.below(c.net.len());
            match roll {
                0..=52 => c.deliver(k),
                53..=56 => drop(c.net.remove(k)),
                _ => c.duplicate(k),
            }
        } else if !up {
            c.restart(i);
        } else if roll < 67 && c.node(i).timers.contains(&PaxosTimer::Election) {
            c.fire(i, PaxosTimer::Election);
        } else if roll < 80 && c.node(i).timers.contains(&PaxosTimer::Heartbeat) {
            c.fire(i, PaxosTimer::Heartbeat);
        } else if roll < 84 || (roll < 88 && !reads) {
            cmd += 1;
            c.propose(i, vec![cmd]);
        } else if roll < 88 {
            read_id += 1;
            c.read(i, read_id);
        } else if roll < 96 {
            id += 1;
            let node = NodeId(rng.below(n) as u8);
            let change = match rng.below(4) {
                0 => Change::AddVoter(node),
                1 => Change::AddLearner(node),
                2 => Change::Remove(node),
                _ => Change::Transfer(node),
            };
            c.change(i, id, change);
        } else if roll < 97 {
            match cut {
                true => c.heal(),
                false => c.partition(&[i]),
            }
            cut = !cut;
        } else if (0..n).filter(|&j| !c.is_up(j)).count() < 1 {
            c.crash(i);
        }
        if let Some(v) = c.violation() {
            let tail = c.trace.len().saturating_sub(60);
            return Err(format!("{v}\n{}", c.trace[tail..].join("\n")));
        }
    }
    let changes = (0..n)
        .map(|i| c.node(i).changes.iter().filter(|(_, r)| r.is_ok()).count())
        .sum();
    let reads = (0..n).map(|i| c.node(i).reads.len()).sum();
    Ok((changes, reads))
}

#[test]
fn random_walks_with_membership_changes_keep_every_invariant() {
    let (mut done, mut served) = (0, 0);
    for seed in 0..40 {
        for (n, cfg) in [
            (5, cfg()),
            (
                5,
                Config {
                    window: 1,
                    check_quorum: false,
                    pre_vote: false,
                    ..Config::default()
                },
            ),
            (
                4,
                Config {
                    window: 3,
                    max_batch: 2,
                    snapshots: Some(SnapshotPolicy { every: 3, chunk: 8 }),
                    ..Config::default()
                },
            ),
            (
                5,
                Config {
                    reads: crate::ReadMode::ReadIndex,
                    follower_reads: true,
                    ..cfg()
                },
            ),
        ] {
            let (d, r) = walk(n, cfg.clone(), seed, 1_500)
                .unwrap_or_else(|e| panic!("seed {seed}, {n} nodes, {cfg:?}: {e}"));
            (done, served) = (done + d, served + r);
        }
    }
    // Vacuity guard: many changes went through (measured: 624), and reads were served
    // across them (272).
    assert!(done >= 200, "only {done} changes took effect");
    assert!(served >= 100, "only {served} reads served");
}

/// A whole snapshot of slot 1 in one chunk, carrying `configs`, sent in ballot `b`.
fn snapshot_of_slot_1(b: Ballot, configs: Configs) -> PaxosMsg<Cmd> {
    PaxosMsg::Snapshot {
        ballot: b,
        slot: 1,
        offset: 0,
        total: 1,
        data: Bytes(b"x".as_slice().into()),
        configs,
    }
}

#[test]
fn forged_frames_never_panic_a_replica() {
    // Damaged or forged messages of the reconfiguration: ignored, or harmless, never a panic.
    let c = cluster(4, 3, cfg());
    let b = c.replica(0).ballot();
    let forged = [
        PaxosMsg::LatePromise {
            ballot: b,
            from: Slot::MAX - 1,
            accepted: vec![None, None, None],
            start: 1,
            end: Slot::MAX,
        },
        PaxosMsg::Accepted {
            ballot: b,
            first: Slot::MAX,
            upto: Slot::MAX,
            commit: Slot::MAX,
            behind: false,
        },
        PaxosMsg::Handoff { ballot: b },
        PaxosMsg::HandoffPrepare {
            ballot: Ballot::ZERO,
            from: Slot::MAX,
            by: b,
        },
        PaxosMsg::LatePrepare {
            ballot: b,
            from: Slot::MAX,
        },
    ];
    for msg in forged {
        let mut r = c.replica(0).clone();
        let mut out = crate::replica::Effects::new();
        r.on_message(NodeId(3), msg, &mut out);
    }
    // A snapshot whose configurations no replica would send is not installed.
    let mut r = c.replica(3).clone();
    let mut late = Configs::initial(voters(&[0, 1, 2]));
    late.learn(100, voters(&[1])); // deciding from beyond the snapshot's slot + α
    for bad in [
        Configs::default(),
        Configs::initial(Membership::default()),
        late,
    ] {
        let out = recv(&mut r, 0, snapshot_of_slot_1(b, bad));
        assert_eq!(r.status().commit, 0, "not installed: {out:?}");
    }
}

/// A snapshot carries the configurations above its slot (a change chosen inside it takes
/// effect α slots after its own, which may be past the snapshot's slot): two pairs deciding
/// from increasing slots are installed with it, and decide what they decide; pairs from one
/// slot, or out of order, come from no replica and are not installed.
#[test]
fn a_snapshot_installs_the_configurations_above_it_in_slot_order_only() {
    let c = cluster(4, 3, cfg());
    let b = c.replica(0).ballot();
    let (old, new) = (voters(&[0, 1, 2]), voters(&[0, 1, 2, 3]));
    // As the wire carries them: `Configs` is its pairs.
    let forge = |pairs: &[(Slot, Membership)]| -> Configs {
        postcard::from_bytes(&postcard::to_allocvec(pairs).unwrap()).unwrap()
    };
    // Slot 1's snapshot; α = 2, so a change chosen in slot 1 decides from slot 3 on.
    for (pairs, installed) in [
        (vec![(1, old), (3, new)], true),
        (vec![(1, old), (1, new)], false),
        (vec![(3, new), (1, old)], false),
    ] {
        let mut r = c.replica(3).clone();
        let out = recv(&mut r, 0, snapshot_of_slot_1(b, forge(&pairs)));
        if installed {
            assert_eq!(r.status().commit, 1, "{pairs:?}: installed: {out:?}");
            assert_eq!(
                (r.configs.at(2), r.configs.at(3)),
                (old, new),
                "{pairs:?}: slot 2 is the old voters', slot 3 on the new ones'"
            );
        } else {
            assert_eq!(r.status().commit, 0, "{pairs:?}: not installed: {out:?}");
        }
    }
}

/// A configuration's span is the slots it decides: from the slot asked about up to the next
/// pair's `from` (the first pair also decides the slots below it); what the leader's loops over
/// slots look up once per configuration.
#[test]
fn a_configuration_spans_the_slots_up_to_the_next() {
    let (a, b, c) = (
        voters(&[0, 1, 2]),
        voters(&[0, 1, 2, 3]),
        voters(&[1, 2, 3]),
    );
    let mut configs = Configs::initial(a);
    assert_eq!(configs.span(1), (a, Slot::MAX));
    configs.learn(10, b);
    configs.learn(12, c);
    for (slot, span) in [
        (0, (a, 10)),
        (1, (a, 10)),
        (9, (a, 10)),
        (10, (b, 12)),
        (11, (b, 12)),
        (12, (c, Slot::MAX)),
        (1000, (c, Slot::MAX)),
    ] {
        assert_eq!(configs.span(slot), span, "slot {slot}");
        assert_eq!(configs.span(slot).0, configs.at(slot), "slot {slot}");
    }
    assert_eq!(
        Configs::default().span(5),
        (Membership::default(), Slot::MAX)
    );
}

#[cfg(feature = "bug-zoo")]
mod bugs {
    use super::*;
    use crate::bugs::Bug;

    fn with(bug: Option<Bug>, cfg: Config) -> Config {
        let mut cfg = cfg;
        if let Some(bug) = bug {
            assert!(cfg.set_bug(bug));
        }
        cfg
    }

    /// Deliver every message in flight from `a` to `b`, oldest first.
    fn deliver_link(c: &mut C, a: u8, b: u8) {
        let link =
            |e: &crate::driver::Envelope<PaxosMsg<Cmd>>| e.from == NodeId(a) && e.to == NodeId(b);
        while !c.find(link).is_empty() {
            c.deliver_first(link);
        }
    }

    /// testdata/bugs/multipaxos_m7_proposes_beyond_window.txt: {n0,n1,n2} with α = 1. Cut
    /// off, n0 misses n2 removing it (slot 1: {n1,n2}) and adding n3 (slot 2: {n1,n2,n3});
    /// n2 and n3, a majority of slot 3's configuration, then choose 7 there while n1 is cut
    /// off too. n0 leads with n1's promise, which reports slots 1 and 2; the client asks n0
    /// for 8, and n1's acknowledgements of everything arrive at once.
    fn lagging_leader(bug: Option<Bug>) -> C {
        let cfg = Config {
            window: 1,
            check_quorum: false,
            ..Config::default()
        };
        let mut c = C::with_voters(4, 3, with(bug, cfg));
        c.record_violations = true;
        c.partition(&[0]);
        c.elect(2);
        c.change(2, 1, Change::Remove(NodeId(0)));
        c.deliver_all();
        c.change(2, 2, Change::AddVoter(NodeId(3)));
        c.deliver_all();
        c.heal();
        c.partition(&[0, 1]);
        c.propose(2, vec![7]);
        c.deliver_all();
        assert_eq!(c.applied(2), vec![7]);
        // n0's first ballot is below n1's promise: refused; the next one wins.
        c.elect(0);
        c.fire(0, PaxosTimer::Election);
        c.deliver_first(|e| e.to == NodeId(1));
        c.deliver_first(|e| e.to == NodeId(0));
        assert_eq!(role(&c, 0), Role::Leader);
        c.propose(0, vec![8]);
        deliver_link(&mut c, 0, 1);
        c.drop_where(|e| e.from == NodeId(1));
        c.fire(0, PaxosTimer::Heartbeat);
        c.deliver_all();
        c
    }

    #[test]
    fn m7_a_leader_past_its_window_counts_a_replaced_configuration_and_chooses_a_second_value() {
        let c = lagging_leader(Some(Bug::ProposesBeyondWindow));
        let v = c.violation().expect("caught");
        assert_eq!(v.invariant, names::PROPOSALS_WITHIN_WINDOW);
        // Played on (unchecked after the first violation): n0 counted {n0,n1}, a majority of
        // the configuration it knew, for slot 3, whose configuration {n1,n2,n3} chose 7.
        assert_eq!(c.applied(0), vec![8]);
        assert_eq!(c.applied(2), vec![7]);
    }

    #[test]
    fn m7_clean_the_window_holds_the_command_until_the_leader_learns_it_left() {
        let c = lagging_leader(None);
        assert!(c.violation().is_none(), "{:?}", c.violation());
        // n0 proposed slot 1 only; once chosen it knows slot 2 is not its to propose: it
        // steps down and hands 8 back.
        assert_eq!(role(&c, 0), Role::Follower);
        assert!(c.applied(0).is_empty());
        assert_eq!(c.node(0).redirects, vec![(8, None)]);
        assert_eq!(c.applied(2), vec![7]);
    }

    /// {n0,n1} with α = 1, a snapshot at every committed slot: n0 adds the spare n2 (slot 1)
    /// but n2 misses the Accept, so it catches up from n0's snapshot at slot 1.
    fn spare_from_snapshot(bug: Option<Bug>) -> C {
        let cfg = Config {
            window: 1,
            snapshots: Some(SnapshotPolicy {
                every: 1,
                chunk: 64,
            }),
            ..Config::default()
        };
        let mut c = cluster(3, 2, with(bug, cfg));
        c.record_violations = true;
        c.change(0, 1, Change::AddVoter(NodeId(2)));
        assert_eq!(c.drop_where(|e| e.to == NodeId(2)), 1);
        settle(&mut c, 0);
        assert_eq!(c.replica(2).snapshot_slot(), 1, "n2 installed the snapshot");
        c
    }

    #[test]
    fn m8_a_snapshot_installed_without_its_configurations_leaves_the_old_one_in_force() {
        let c = spare_from_snapshot(Some(Bug::SnapshotWithoutConfigs));
        let v = c.violation().expect("caught");
        assert_eq!(v.invariant, names::CONFIGURATIONS_AGREE);
        assert_eq!(config(&c, 2), voters(&[0, 1]));
        assert_eq!(config(&c, 0), voters(&[0, 1, 2]));
    }

    #[test]
    fn m8_clean_the_snapshot_brings_the_configuration_it_decided() {
        let c = spare_from_snapshot(None);
        assert!(c.violation().is_none(), "{:?}", c.violation());
        assert_eq!(config(&c, 2), voters(&[0, 1, 2]));
    }
}
