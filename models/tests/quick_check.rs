//! A short model check and a short fault search of each protocol: seconds, not minutes.
//! `scripts/mutants` runs them against every mutant of the protocol cores, next to the
//! protocols' unit and scenario tests; tests/checks/model_check.rs (exhaustive checks) and
//! tests/checks/simulate_cluster.rs (deep proptest fault schedules) are far too slow to run
//! hundreds of times.

use std::time::Duration;

use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_models::properties::names;
use paxraft_models::{build, check, Checkable, Cmd, ModelConfig, SearchOptions, Status};
use stateright::actor::ActorModelAction;
use stateright::{Expectation, Model};

/// No PreVote or CheckQuorum (each election is two actions shorter), one client, one op.
fn small(max_term: u64, max_in_flight: usize) -> ModelConfig {
    let mut cfg = ModelConfig {
        clients: 1,
        ops: 1,
        max_term,
        max_in_flight,
        ..ModelConfig::default()
    };
    cfg.protocol.pre_vote = false;
    cfg.protocol.check_quorum = false;
    cfg
}

/// Exhaustive BFS to `depth`: every always-property holds, and the guards show that a leader
/// was elected, a command committed on every server and a client answered.
fn quick_check<R: Checkable>(cfg: ModelConfig, depth: usize) {
    cfg.validate().expect("a valid configuration");
    let search = SearchOptions {
        depth: Some(depth),
        threads: 1,
        ..SearchOptions::default()
    };
    let s = check::<R>(&cfg, &search, Duration::from_secs(3600), |_| {});
    let failures: Vec<String> = s
        .failures()
        .map(|v| {
            let chart = v.trace.as_ref().map(|t| t.chart()).unwrap_or_default();
            format!("{}: {}\n{chart}", v.name, v.status.name())
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{}: {}",
        s.command(),
        failures.join("\n")
    );
    for name in [names::LEADER, names::COMMITTED_EVERYWHERE, names::ANSWERED] {
        assert_eq!(
            s.verdict(name).map(|v| v.status),
            Some(Status::Reached),
            "{name} ({})",
            s.command()
        );
    }
}

#[test]
fn raft_quick_check() {
    // Two terms, so a second election over a committed entry is in the space (1 to 2 s).
    quick_check::<Raft<Cmd>>(small(2, 3), 12);
}

#[test]
fn multipaxos_quick_check() {
    // Multi-Paxos needs more messages in flight to commit everywhere (about 3 s).
    quick_check::<MultiPaxos<Cmd>>(small(1, 5), 11);
}

/// xorshift64*: the walk replays from its seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// What the fault walks did, so that a walk that injected nothing cannot pass.
#[derive(Debug, Default)]
struct Walked {
    steps: usize,
    drops: usize,
    timeouts: usize,
    crashes: usize,
    recovers: usize,
    /// Runs in which a client got an answer.
    answered: usize,
}

/// Seeded random walks of the model the fault search steps (lossy network, crashes, timers
/// at any moment), every always-property checked after every step. A step is a delivery
/// three times in four, else a loss, a timer, a crash or a recovery (whichever the model
/// allows), so runs get far enough to elect, commit and answer between faults.
fn fault_walks<R: Checkable>(runs: u64, steps: usize) -> Walked {
    let cfg = ModelConfig {
        clients: 2,
        ops: 2,
        lossy: true,
        max_crashes: 2,
        max_term: 6,
        max_in_flight: 12,
        max_retries: 3,
        ..ModelConfig::default()
    };
    cfg.validate().expect("a valid configuration");
    let model = build::<R>(&cfg);
    let always: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .collect();
    assert!(always.len() >= 4, "the always-properties are checked");
    let mut w = Walked::default();
    let mut actions = Vec::new();
    for seed in 1..=runs {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut state = model.init_states().remove(0);
        for _ in 0..steps {
            actions.clear();
            model.actions(&state, &mut actions);
            // Pick the kind of step by weight among the kinds the model offers now.
            let mut kinds: [Vec<_>; 4] = Default::default();
            for a in actions.drain(..) {
                let k = match a {
                    ActorModelAction::Deliver { .. } => 0,
                    ActorModelAction::Drop(_) => 1,
                    ActorModelAction::Timeout(..) => 2,
                    _ => 3,
                };
                kinds[k].push(a);
            }
            const WEIGHTS: [usize; 4] = [80, 6, 10, 4];
            let total: usize = (0..4)
                .filter(|&k| !kinds[k].is_empty())
                .map(|k| WEIGHTS[k])
                .sum();
            if total == 0 {
                break;
            }
            let mut pick = rng.below(total);
            let k = (0..4)
                .filter(|&k| !kinds[k].is_empty())
                .find(|&k| {
                    let hit = pick < WEIGHTS[k];
                    pick = pick.saturating_sub(WEIGHTS[k]);
                    hit
                })
                .expect("the weights add up");
            let action = kinds[k].swap_remove(rng.below(kinds[k].len()));
            let kind = match &action {
                ActorModelAction::Drop(_) => Some(&mut w.drops),
                ActorModelAction::Timeout(..) => Some(&mut w.timeouts),
                ActorModelAction::Crash(_) => Some(&mut w.crashes),
                ActorModelAction::Recover(_) => Some(&mut w.recovers),
                _ => None,
            };
            // Stay within the model's bounds (fault budget, terms, messages in flight; clients
            // never crash): an action that leaves them is not taken.
            let Some(next) = model
                .next_state(&state, action)
                .filter(|n| Model::within_boundary(&model, n))
            else {
                continue;
            };
            if let Some(n) = kind {
                *n += 1;
            }
            w.steps += 1;
            for p in &always {
                assert!(
                    (p.condition)(&model, &next),
                    "{}: {} violated in run {seed} after {} steps",
                    R::NAME,
                    p.name,
                    w.steps
                );
            }
            state = next;
        }
        if (Model::property(&model, names::ANSWERED).condition)(&model, &state) {
            w.answered += 1;
        }
    }
    w
}

fn assert_faults_happened(w: &Walked, runs: usize) {
    for (what, n) in [
        ("drops", w.drops),
        ("timeouts", w.timeouts),
        ("crashes", w.crashes),
        ("recoveries", w.recovers),
    ] {
        assert!(n >= 10, "only {n} {what}: {w:?}");
    }
    assert!(
        w.answered * 4 >= runs,
        "a client was answered in too few runs: {w:?}"
    );
}

#[test]
fn raft_quick_fault_walks() {
    let w = fault_walks::<Raft<Cmd>>(40, 300);
    assert_faults_happened(&w, 40);
}

#[test]
fn multipaxos_quick_fault_walks() {
    let w = fault_walks::<MultiPaxos<Cmd>>(40, 300);
    assert_faults_happened(&w, 40);
}

/// Every property of a model with every option on is named by a constant: the harness's
/// (`properties::names`) or the protocol's (`paxraft_impls::{raft,multipaxos}::names`).
/// The protocol's step invariant "terms never decrease" is the host's property of that name,
/// not a second one.
#[test]
fn every_property_is_named_by_a_constant() {
    use paxraft_impls::{multipaxos, raft};
    let cfg = ModelConfig {
        max_crashes: 1,
        ..ModelConfig::default()
    };
    let harness = [
        names::LINEARIZABLE,
        names::SAFETY,
        names::PREFIX,
        names::TERMS,
        names::LEADER,
        names::COMMITTED_EVERYWHERE,
        names::ANSWERED,
        names::ALL_REPLIES,
        names::REAL_TIME,
        names::LATER_TERM,
        names::LEADER_CHANGE,
        names::RECOVERS,
        names::CRASHED_MID_STEP,
    ];
    let raft = [
        raft::names::ELECTION_SAFETY,
        raft::names::LOG_MATCHING,
        raft::names::LEADER_COMPLETENESS,
        raft::names::COMMITTED_ON_A_QUORUM,
        raft::names::TRANSFER_TO_CAUGHT_UP,
        raft::names::ONE_VOTE_PER_TERM,
        raft::names::COMMITTED_ENTRIES_NEVER_CHANGE,
        raft::names::ONE_CHANGE_AT_A_TIME,
    ];
    let paxos = [
        multipaxos::names::ONE_VALUE_PER_SLOT,
        multipaxos::names::ACCEPTED_AT_MOST_PROMISED,
        multipaxos::names::COMMITTED_SLOTS_AGREE,
        multipaxos::names::PROMISES_NEVER_GO_BACK,
        multipaxos::names::COMMITTED_SLOTS_NEVER_CHANGE,
        multipaxos::names::CONFIGURATIONS_AGREE,
        multipaxos::names::PROPOSALS_WITHIN_WINDOW,
    ];
    let named = |model: Vec<&'static str>, protocol: &[&str]| {
        let mut got = model.clone();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), model.len(), "a property name twice: {model:?}");
        let mut want: Vec<&str> = harness.iter().chain(protocol).copied().collect();
        want.sort_unstable();
        assert_eq!(got, want);
    };
    let raft_model = build::<Raft<Cmd>>(&cfg).properties();
    named(raft_model.iter().map(|p| p.name).collect(), &raft);
    let paxos_model = build::<MultiPaxos<Cmd>>(&cfg).properties();
    named(paxos_model.iter().map(|p| p.name).collect(), &paxos);
}
