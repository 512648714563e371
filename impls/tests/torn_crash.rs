//! Crashes *inside* a step, between two of its effects, on the deterministic driver.
//!
//! The effect contract (rule 1 of `paxraft_impls::replica`: what a `Persist` wrote is durable
//! before any later `Send` of the same step) is what makes every such cut safe. The rules it
//! stands for:
//!
//! * Raft, Figure 2: "Persistent state on all servers: (Updated on stable storage before
//!   responding to RPCs)": `currentTerm` and `votedFor` are durable before the vote leaves.
//! * *Paxos Made Simple* §2.3: "an acceptor must remember this information even if it fails
//!   and then restarts": the promised ballot is durable before the promise leaves.
//!
//! Bug switches R11 (vote-sent-before-persist) and P7 (promise-sent-before-persist) keep the
//! write but emit it after the reply; a crash between the two is then the whole bug. Each
//! scenario runs once with the bug (a safety invariant fails) and once without, at every
//! crash point the driver names (nothing fails).

use paxraft_impls::driver::{crash_points, Cluster, Envelope};
use paxraft_impls::multipaxos;
use paxraft_impls::multipaxos::{Ballot, MultiPaxos, PaxosMsg, PaxosTimer};
use paxraft_impls::raft::{Raft, RaftMsg, RaftTimer};
use paxraft_impls::{Config, Effect, Effects, NodeId, Replica, Role};

type Cmd = u32;
type RaftCluster = Cluster<Raft<Cmd>, Cmd>;
type PaxosCluster = Cluster<MultiPaxos<Cmd>, Cmd>;

/// Bound on the deliveries of one exchange between two nodes.
const MAX_EXCHANGE: usize = 1_000;

fn n(i: u8) -> NodeId {
    NodeId(i)
}

/// Whether `e` travels between `a` and `b`, either way.
fn between<M>(e: &Envelope<M>, a: u8, b: u8) -> bool {
    (e.from, e.to) == (n(a), n(b)) || (e.from, e.to) == (n(b), n(a))
}

/// The error of the named cluster invariant of `R` over the live replicas, if it fails.
fn violated<R: Replica<Cmd>>(c: &Cluster<R, Cmd>, name: &str) -> Option<String> {
    let live: Vec<&R> = (0..c.len())
        .filter(|&i| c.is_up(i))
        .map(|i| c.replica(i))
        .collect();
    let inv = R::cluster_invariants()
        .into_iter()
        .find(|inv| inv.name == name)
        .unwrap_or_else(|| panic!("{} has no invariant named {name:?}", R::NAME));
    (inv.check)(&live).err()
}

/// Deliver, oldest first, every message between `a` and `b` (those their deliveries send
/// included) and nothing else.
fn exchange<R: Replica<Cmd>>(c: &mut Cluster<R, Cmd>, a: u8, b: u8) {
    for _ in 0..MAX_EXCHANGE {
        match c.find(|e| between(e, a, b)).first() {
            Some(&k) => c.deliver(k),
            None => return,
        }
    }
    panic!("n{a} and n{b} did not quiesce\n{}", c.trace.join("\n"));
}

/// The cuts worth trying for one step: before it, at every crash point, and after it.
fn every_cut<M, W, T, C>(effects: &Effects<M, W, T, C>) -> Vec<usize> {
    let mut cuts = vec![0];
    cuts.extend(crash_points(effects.iter()));
    cuts.push(effects.len());
    cuts
}

// ---------------------------------------------------------------------------------------------
// The crash-points helper and the torn-crash calls themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn crash_points_cut_where_the_kind_of_effect_changes() {
    use std::time::Duration;
    let t = Duration::from_millis(1)..Duration::from_millis(2);
    let mut out: Effects<&str, &str, u8, u32> = Effects::new();
    out.persist("term"); // 0
    out.persist("vote"); // 1
    out.set_timer(0, t.clone()); // 2
    out.send(n(1), "reply"); // 3
    out.send(n(2), "reply"); // 4
    out.cancel_timer(1); // 5
    out.commit(1, 7); // 6
    out.send(n(1), "ack"); // 7
    out.redirect(8, None); // 8: a redirect leaves the host like a send
    out.persist("entries"); // 9
    out.set_timer(0, t); // 10
    assert_eq!(crash_points(out.iter()), vec![2, 5, 7, 9]);

    // Nothing to separate: no effect, timers only, one kind only.
    let mut only: Effects<&str, &str, u8, u32> = Effects::new();
    assert_eq!(crash_points(only.iter()), Vec::<usize>::new());
    only.cancel_timer(0);
    assert_eq!(crash_points(only.iter()), Vec::<usize>::new());
    only.send(n(0), "a");
    only.redirect(1, Some(n(0)));
    only.send(n(1), "b");
    assert_eq!(crash_points(only.iter()), Vec::<usize>::new());
    // The helper takes any iterator of effects, a plain list included.
    let list: Vec<Effect<&str, &str, u8, u32>> =
        vec![Effect::Commit { slot: 1, cmd: 1 }, Effect::Persist("x")];
    assert_eq!(crash_points(&list), vec![1]);
}

#[test]
fn fire_then_crash_carries_out_only_the_first_effects() {
    // Raft §5.2 without PreVote: a campaign writes (term, votedFor) and then asks for votes.
    let cfg = Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::default()
    };
    let mut c = RaftCluster::new(3, cfg);
    let preview = c.peek_fire(0, RaftTimer::Election);
    assert!(
        c.net.is_empty() && c.replica(0).term() == 0,
        "peeking changes nothing"
    );
    let cuts = crash_points(preview.iter());
    assert_eq!(
        cuts,
        vec![1],
        "one cut: after the write, before the requests"
    );
    let all = c.fire_then_crash(0, RaftTimer::Election, cuts[0]);
    assert_eq!(all, preview, "the step's whole effect list is returned");
    assert!(!c.is_up(0));
    assert!(c.net.is_empty(), "the requests never left");
    assert!(
        c.node(0).timers.is_empty(),
        "armed timers die with the crash"
    );
    assert_eq!(c.node(0).durable.term, 1);
    assert_eq!(c.node(0).durable.voted_for, Some(n(0)));
    assert_eq!(
        c.trace.last().map(String::as_str),
        Some("n0: crash after 1 of 4 effects")
    );
    c.restart(0);
    assert_eq!(
        (c.replica(0).term(), c.replica(0).voted_for()),
        (1, Some(n(0)))
    );
}

#[test]
fn deliver_then_crash_to_a_crashed_node_loses_the_message() {
    let mut c = RaftCluster::new(3, Config::default());
    c.crash(1);
    c.fire(0, RaftTimer::Election); // asks the crashed n1 too
    let k = c.find(|e| e.to == n(1))[0];
    assert!(c.peek_deliver(k).is_empty(), "a crashed node does nothing");
    let before = c.net.len();
    assert!(c.deliver_then_crash(k, 0).is_empty());
    assert_eq!(c.net.len(), before - 1, "the message is consumed");
    assert!(c.trace.last().unwrap().ends_with("(lost: n1 is down)"));
}

// ---------------------------------------------------------------------------------------------
// Raft: a vote lost between the reply and the write (R11)
// ---------------------------------------------------------------------------------------------

fn is_vote_request(e: &Envelope<RaftMsg<Cmd>>, from: u8, to: u8) -> bool {
    (e.from, e.to) == (n(from), n(to))
        && matches!(
            e.msg,
            RaftMsg::RequestVote {
                pre_vote: false,
                ..
            }
        )
}

fn is_vote(e: &Envelope<RaftMsg<Cmd>>, from: u8, to: u8, granted: bool) -> bool {
    (e.from, e.to) == (n(from), n(to))
        && matches!(e.msg, RaftMsg::Vote { pre_vote: false, granted: g, .. } if g == granted)
}

fn is_pre_vote(e: &Envelope<RaftMsg<Cmd>>, from: u8, to: u8) -> bool {
    (e.from, e.to) == (n(from), n(to))
        && matches!(
            e.msg,
            RaftMsg::RequestVote { pre_vote: true, .. } | RaftMsg::Vote { pre_vote: true, .. }
        )
}

/// A 3-node Raft cluster (PreVote and CheckQuorum on) where n0 campaigns for term 1, its
/// RequestVote to n1 in flight, and n1 granted n2's pre-vote for term 1, the grant still in
/// flight (a crash of n1 drops only the messages addressed to n1). Nothing passes between n0
/// and n2, so n1 decides both elections.
fn raft_two_candidates(cfg: Config) -> RaftCluster {
    let mut c = RaftCluster::new(3, cfg);
    c.fire(0, RaftTimer::Election);
    c.fire(2, RaftTimer::Election);
    c.drop_where(|e| between(e, 0, 2));
    // n1 grants n2's pre-vote (diss. §9.6: it changes nothing at n1) while still in term 0.
    c.deliver_first(|e| is_pre_vote(e, 2, 1));
    assert_eq!(c.find(|e| is_pre_vote(e, 1, 2)).len(), 1);
    // n0 wins its pre-vote through n1 and campaigns for real.
    c.deliver_first(|e| is_pre_vote(e, 0, 1));
    c.deliver_first(|e| is_pre_vote(e, 1, 0));
    c.drop_where(|e| between(e, 0, 2));
    let s = c.replica(0).status();
    assert_eq!(
        (s.role, s.term),
        (Role::Candidate, 1),
        "{}",
        c.trace.join("\n")
    );
    assert_eq!(c.replica(2).status().role, Role::PreCandidate);
    assert_eq!(c.find(|e| is_vote_request(e, 0, 1)).len(), 1);
    c
}

/// n1's pre-vote grant reaches n2, which campaigns for term 1 in turn (its request to n0 is
/// dropped); its request reaches n1 and n1's answers reach both candidates. Returns whether
/// n1 granted n2 a vote.
fn raft_second_candidate_asks(c: &mut RaftCluster) -> bool {
    c.deliver_first(|e| is_pre_vote(e, 1, 2));
    let s = c.replica(2).status();
    assert_eq!(
        (s.role, s.term),
        (Role::Candidate, 1),
        "{}",
        c.trace.join("\n")
    );
    c.drop_where(|e| between(e, 0, 2));
    c.deliver_first(|e| is_vote_request(e, 2, 1));
    let granted = !c.find(|e| is_vote(e, 1, 2, true)).is_empty();
    while let Some(&k) = c
        .find(|e| e.from == n(1) && matches!(e.msg, RaftMsg::Vote { .. }))
        .first()
    {
        c.deliver(k);
    }
    granted
}

#[cfg(feature = "bug-zoo")]
#[test]
fn r11_vote_sent_before_persist_torn_crash_elects_two_leaders_in_one_term() {
    // Figure 2: votedFor is "updated on stable storage before responding to RPCs". With R11
    // n1's granted vote leaves before its write; n1 crashes in between, forgets the vote,
    // and grants a second one in the same term.
    let mut cfg = Config::default();
    assert!(cfg.set_bug(paxraft_impls::Bug::VoteSentBeforePersist));
    let mut c = raft_two_candidates(cfg);

    let k = c.find(|e| is_vote_request(e, 0, 1))[0];
    let effects = c.peek_deliver(k);
    let reply = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }))
        .expect("n1 answers");
    let keep = reply + 1;
    assert!(
        crash_points(effects.iter()).contains(&keep),
        "just after the reply is a crash point: {effects:?}"
    );
    let all = c.deliver_then_crash(k, keep);
    assert!(
        all.iter()
            .skip(keep)
            .any(|e| matches!(e, Effect::Persist(_))),
        "the vote's write was due after the crash: {all:?}"
    );
    assert_eq!(
        c.find(|e| is_vote(e, 1, 0, true)).len(),
        1,
        "the grant left"
    );
    let d = &c.node(1).durable;
    assert_eq!(
        (d.term, d.voted_for),
        (1, None),
        "the vote did not reach the disk"
    );

    c.restart(1);
    assert_eq!(c.replica(1).voted_for(), None);
    c.checking = false; // the next deliveries break election safety: check by hand
    assert!(
        raft_second_candidate_asks(&mut c),
        "n1 votes again in term 1"
    );
    assert_eq!(c.leaders(), vec![0, 2]);
    let err = c.check().expect_err("two leaders of term 1");
    assert_eq!(
        err.invariant,
        paxraft_impls::raft::names::ELECTION_SAFETY,
        "{err}\n{}",
        c.trace.join("\n")
    );
    assert!(violated(&c, paxraft_impls::raft::names::ELECTION_SAFETY).is_some());
}

#[test]
fn vote_persisted_before_reply_survives_a_crash_at_every_point() {
    // Figure 2, correct order: the vote is durable before the reply leaves, so a crash at any
    // point either loses the reply or keeps the vote, and n1 never votes twice in term 1.
    let base = raft_two_candidates(Config::default());
    let k = base.find(|e| is_vote_request(e, 0, 1))[0];
    let effects = base.peek_deliver(k);
    assert!(
        !crash_points(effects.iter()).is_empty(),
        "the vote step has a write and a reply: {effects:?}"
    );
    for keep in every_cut(&effects) {
        let mut c = base.clone();
        c.deliver_then_crash(k, keep);
        let reply_left = !c.find(|e| is_vote(e, 1, 0, true)).is_empty();
        c.restart(1);
        let kept_vote = c.replica(1).voted_for() == Some(n(0));
        assert!(
            !reply_left || kept_vote,
            "keep {keep}: n1 granted n0 but forgot it\n{}",
            c.trace.join("\n")
        );
        let second = raft_second_candidate_asks(&mut c);
        assert!(
            !(reply_left && second),
            "keep {keep}: n1 voted for n0 and n2 in term 1\n{}",
            c.trace.join("\n")
        );
        assert_eq!(c.check(), Ok(()), "keep {keep}");
        assert!(c.leaders().len() <= 1, "keep {keep}: {:?}", c.leaders());
    }
}

// ---------------------------------------------------------------------------------------------
// Multi-Paxos: a promise lost between the reply and the write (P7)
// ---------------------------------------------------------------------------------------------

fn is_prepare(e: &Envelope<PaxosMsg<Cmd>>, from: u8, to: u8) -> bool {
    (e.from, e.to) == (n(from), n(to)) && matches!(e.msg, PaxosMsg::Prepare { .. })
}

fn is_promise(e: &Envelope<PaxosMsg<Cmd>>, from: u8, to: u8) -> bool {
    (e.from, e.to) == (n(from), n(to)) && matches!(e.msg, PaxosMsg::Promise { .. })
}

const LOW: Ballot = Ballot { round: 1, node: 0 };
const HIGH: Ballot = Ballot { round: 1, node: 2 };

/// A 3-node multi-Paxos cluster (default config, leases on) where n2 prepares ballot (1, 2),
/// its prepare to n1 in flight (the one to n0 is dropped: n1 decides).
fn paxos_two_proposers(cfg: Config) -> PaxosCluster {
    let mut c = PaxosCluster::new(3, cfg);
    c.fire(2, PaxosTimer::Election);
    c.drop_where(|e| between(e, 0, 2));
    assert_eq!(c.replica(2).ballot(), HIGH);
    c
}

/// After n1's restart: n0 prepares the lower ballot (1, 0) (its prepare to n2 is dropped)
/// and it reaches n1; n0 and n1 talk until quiet, n0 proposes 10 and they talk again; then
/// the same for n2 with 20. Returns whether n1 promised n0's lower ballot.
fn paxos_lower_then_higher(c: &mut PaxosCluster) -> bool {
    c.fire(0, PaxosTimer::Election);
    assert_eq!(c.replica(0).ballot(), LOW);
    c.drop_where(|e| between(e, 0, 2));
    c.deliver_first(|e| is_prepare(e, 0, 1));
    let promised_low = !c.find(|e| is_promise(e, 1, 0)).is_empty();
    exchange(c, 0, 1);
    c.propose(0, vec![10]);
    exchange(c, 0, 1);
    exchange(c, 2, 1);
    c.propose(2, vec![20]);
    exchange(c, 2, 1);
    promised_low
}

#[cfg(feature = "bug-zoo")]
#[test]
fn p7_promise_sent_before_persist_torn_crash_chooses_two_values_in_one_slot() {
    // PMS §2.3: "an acceptor must remember this information even if it fails and then
    // restarts". With P7 n1's promise of (1, 2) leaves before its write; n1 crashes in
    // between, forgets the promise, promises and accepts the lower (1, 0), and the value
    // chosen there is overwritten by the value n2 chooses on the strength of the lost promise.
    let mut cfg = Config::default();
    assert!(cfg.set_bug(paxraft_impls::Bug::PromiseSentBeforePersist));
    let mut c = paxos_two_proposers(cfg);

    let k = c.find(|e| is_prepare(e, 2, 1))[0];
    let effects = c.peek_deliver(k);
    let reply = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }))
        .expect("n1 promises");
    let keep = reply + 1;
    assert!(
        crash_points(effects.iter()).contains(&keep),
        "just after the promise is a crash point: {effects:?}"
    );
    c.deliver_then_crash(k, keep);
    assert_eq!(c.find(|e| is_promise(e, 1, 2)).len(), 1, "the promise left");
    assert_eq!(
        c.node(1).durable.promised,
        Ballot::ZERO,
        "but not to the disk"
    );

    c.restart(1);
    assert_eq!(
        c.replica(1).promised(),
        Ballot::ZERO,
        "n1 went back on its promise"
    );
    c.checking = false; // the last deliveries break safety: check by hand
    assert!(
        paxos_lower_then_higher(&mut c),
        "n1 promised the lower ballot"
    );
    assert_eq!(c.applied(0), vec![10], "chosen at (1, 0) by n0 and n1");
    assert_eq!(c.applied(2), vec![20], "chosen at (1, 2) by n2 and n1");
    let err =
        violated(&c, multipaxos::names::COMMITTED_SLOTS_AGREE).expect("slot 1 committed twice");
    assert!(err.contains("slot 1"), "{err}");
    assert!(c.check().is_err());
}

#[test]
fn promise_persisted_before_reply_survives_a_crash_at_every_point() {
    // PMS §2.3, correct order: the promise is durable before it leaves, so a crash at any
    // point either loses the promise or keeps it, and n1 never promises (1, 0) after (1, 2).
    let base = paxos_two_proposers(Config::default());
    let k = base.find(|e| is_prepare(e, 2, 1))[0];
    let effects = base.peek_deliver(k);
    assert!(
        !crash_points(effects.iter()).is_empty(),
        "the promise step has a write and a reply: {effects:?}"
    );
    for keep in every_cut(&effects) {
        let mut c = base.clone();
        c.deliver_then_crash(k, keep);
        let promise_left = !c.find(|e| is_promise(e, 1, 2)).is_empty();
        c.restart(1);
        assert!(
            !promise_left || c.replica(1).promised() == HIGH,
            "keep {keep}: n1 promised (1, 2) but forgot it\n{}",
            c.trace.join("\n")
        );
        let promised_low = paxos_lower_then_higher(&mut c);
        assert!(
            !(promise_left && promised_low),
            "keep {keep}: n1 promised (1, 2) and then (1, 0)\n{}",
            c.trace.join("\n")
        );
        assert_eq!(c.check(), Ok(()), "keep {keep}");
        assert_eq!(
            violated(&c, multipaxos::names::COMMITTED_SLOTS_AGREE),
            None,
            "keep {keep}"
        );
        assert_eq!(
            violated(&c, multipaxos::names::ONE_VALUE_PER_SLOT),
            None,
            "keep {keep}"
        );
        let (a, b) = (c.applied(0), c.applied(2));
        assert!(
            a.is_empty() || b.is_empty() || a == b,
            "keep {keep}: {a:?} vs {b:?}"
        );
    }
}
