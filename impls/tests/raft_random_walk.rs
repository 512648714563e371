//! Seeded random walks of small Raft clusters on the deterministic driver: random delivery
//! order, loss, duplication, timer firings, proposals, crashes and restarts. The driver checks
//! state machine safety and every Raft invariant after each step, so a walk passes only if no
//! step broke one. (The proptest fault schedules that shrink failures come with their own
//! issue; this is the protocol's own smoke test.)

use paxraft_impls::driver::{Cluster, Violation, WalkRng};
use paxraft_impls::raft::{Raft, RaftTimer};
use paxraft_impls::{Config, Replica};

/// One walk: (highest term, most commands applied by one node), or the first invariant a step
/// broke. Anything else that goes wrong (an index out of bounds) panics.
fn walk(n: usize, cfg: Config, seed: u64, steps: usize) -> Result<(u64, usize), Violation> {
    let mut c: Cluster<Raft<u32>, u32> = Cluster::new(n, cfg);
    c.record_violations = true;
    let mut rng = WalkRng::new(seed);
    let mut next_cmd = 0u32;
    for _ in 0..steps {
        let i = rng.below(n);
        match rng.below(100) {
            0..=54 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.deliver(k);
            }
            55..=59 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.net.remove(k); // loss
            }
            60..=62 if !c.net.is_empty() => {
                let k = rng.below(c.net.len());
                c.duplicate(k);
            }
            63..=72 if c.is_up(i) && c.node(i).timers.contains(&RaftTimer::Election) => {
                c.fire(i, RaftTimer::Election)
            }
            73..=85 if c.is_up(i) && c.node(i).timers.contains(&RaftTimer::Heartbeat) => {
                c.fire(i, RaftTimer::Heartbeat)
            }
            86..=95 if c.is_up(i) => {
                next_cmd += 1;
                c.propose(i, vec![next_cmd]);
            }
            96..=97 if c.is_up(i) && (0..n).filter(|&j| !c.is_up(j)).count() < n / 2 => c.crash(i),
            _ if !c.is_up(i) => c.restart(i),
            _ => {}
        }
        if let Some(v) = c.violation() {
            return Err(v.clone());
        }
    }
    let committed = (0..n).map(|i| c.node(i).applied.len()).max().unwrap_or(0);
    let top_term = (0..n)
        .filter(|&i| c.is_up(i))
        .map(|i| c.replica(i).status().term)
        .max()
        .unwrap_or(0);
    Ok((top_term, committed))
}

#[test]
fn random_walks_keep_every_invariant() {
    let mut total_committed = 0;
    let mut max_term = 0;
    for seed in 0..150 {
        for (n, cfg) in [
            (3, Config::default()),
            (5, Config::default()),
            (
                3,
                Config {
                    pre_vote: false,
                    check_quorum: false,
                    ..Config::default()
                },
            ),
        ] {
            let (t, committed) = walk(n, cfg.clone(), seed, 1_500)
                .unwrap_or_else(|v| panic!("seed {seed}, {n} nodes, {cfg:?}: {v}"));
            total_committed += committed;
            max_term = max_term.max(t);
        }
    }
    // Vacuity guard: the walks elected leaders in many terms and committed commands.
    assert!(max_term >= 5, "walks never got past term {max_term}");
    assert!(
        total_committed >= 1_000,
        "walks committed only {total_committed} commands"
    );
}

/// The walks have teeth: with a known bug switched on, some seed breaks the invariant the bug
/// is about (or the state machine safety it leads to). (Bugs that need a precise schedule,
/// like Figure 8, are left to the model checker.)
#[cfg(feature = "bug-zoo")]
#[test]
fn random_walks_catch_known_bugs() {
    use paxraft_impls::driver::STATE_MACHINE_SAFETY as SMS;
    use paxraft_impls::raft::names::*;
    use paxraft_impls::{Bug, BugSet};
    for (bug, expected) in [
        (Bug::DoubleVote, &[ONE_VOTE_PER_TERM, ELECTION_SAFETY][..]),
        (Bug::VoteWithoutLogCheck, &[LEADER_COMPLETENESS, SMS][..]),
        (
            Bug::TruncateOnStaleAppend,
            &[
                COMMITTED_ENTRIES_NEVER_CHANGE,
                COMMITTED_ON_A_QUORUM,
                LEADER_COMPLETENESS,
                SMS,
            ][..],
        ),
    ] {
        let cfg = Config {
            bugs: BugSet::only(bug),
            pre_vote: false,
            check_quorum: false,
            ..Config::default()
        };
        let caught = (0..500).find_map(|seed| walk(3, cfg.clone(), seed, 1_500).err());
        let v = caught.unwrap_or_else(|| panic!("{} escaped 500 random walks", bug.name()));
        assert!(expected.contains(&v.invariant), "{}: {v}", bug.name());
    }
}
