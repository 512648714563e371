//! Deep fault schedules: random walks of the stateright model ([`executor`]), generated and
//! shrunk by proptest ([`schedules`], [`search`]).
#![warn(missing_docs)]

pub mod cluster;
pub mod executor;

use std::cell::Cell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use stateright::Model;

use executor::{Classify, Executor, FaultProfile, Partition, Schedule, Stats, Violation};

pub use cluster::{hunt, replay, SavedFailure, SimOptions, SimReport};

/// The fault-schedule search's liveness check: after the faults stop, within a bounded
/// settling phase every client op is answered and every server has applied the same commands.
pub const SETTLES: &str = "settles";

/// The space schedules are drawn from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Space {
    /// Most steps in the faulty phase.
    pub max_steps: usize,
    /// Servers (actor indices `0..servers`), the nodes a partition splits.
    pub servers: usize,
    /// Highest loss rate, percent.
    pub max_loss_pct: u8,
    /// Highest crash/recover rate, percent.
    pub max_crash_pct: u8,
    /// Highest duplication rate, percent of deliveries (duplicating networks).
    pub max_dup_pct: u8,
    /// Whether to draw partition windows.
    pub partitions: bool,
    /// Bound on each run's settling phase.
    pub settle_steps: usize,
    /// Whether partitions split only the servers, every client keeping its links to both
    /// sides (with leases: a stale read needs a client that still reaches a cut-off leader).
    /// Otherwise the clients are on the side opposite the drawn one.
    pub clients_see_all: bool,
}

/// Schedules over `space`. Shrinking drops choices (shorter runs), lowers fault rates, and
/// removes partitions, so a failure shrinks to a short, plain schedule.
pub fn schedules(space: &Space) -> impl Strategy<Value = Schedule> {
    let steps = space.max_steps.max(1);
    let sides = (1u64 << space.servers.clamp(2, 63)) - 2; // proper, non-empty subsets
                                                          // Clients sit on the side without the servers of `side`, unless they stay linked to all.
    let members = if space.clients_see_all {
        (1u64 << space.servers.clamp(2, 63)) - 1
    } else {
        u64::MAX
    };
    let partition =
        (0..steps, 1..=steps.div_ceil(2), 1..=sides.max(1)).prop_map(move |(start, len, side)| {
            Partition {
                start,
                len,
                side,
                members,
            }
        });
    let max_windows = if space.partitions { 2 } else { 0 };
    let settle_steps = space.settle_steps;
    let rates = (
        0..=space.max_loss_pct,
        0..=space.max_crash_pct,
        5u8..=30,
        0..=space.max_dup_pct,
    );
    let profile = (rates, vec(partition, 0..=max_windows)).prop_map(
        move |((loss_pct, crash_pct, timeout_pct, dup_pct), partitions)| FaultProfile {
            loss_pct,
            crash_pct,
            timeout_pct,
            dup_pct,
            partitions,
            settle_steps,
        },
    );
    (profile, vec(any::<u32>(), 0..=steps))
        .prop_map(|(profile, choices)| Schedule { profile, choices })
}

/// A failing schedule, shrunk.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The minimal schedule proptest found.
    pub schedule: Schedule,
    /// What it violates.
    pub violation: Violation,
    /// Runs tried before the first failure.
    pub runs_before: u64,
}

/// Totals of a search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Runs executed (shrinking included).
    pub runs: u64,
    /// Model steps executed (shrinking included; the executor's bookkeeping drops excluded).
    pub steps: u64,
    /// Longest run, in steps.
    pub deepest: u64,
    /// What the faults did, summed over the runs.
    pub stats: Stats,
}

/// How long a search may look and shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Seed of the schedule generator.
    pub seed: u64,
    /// Random schedules to try.
    pub runs: u32,
    /// Most shrinking steps once a failure is found (each replays a whole run).
    pub max_shrink_iters: u32,
}

/// Run `runs` random schedules from `seed`; on a failure, shrink it and return it.
pub fn search<M>(
    exec: &Executor<'_, M>,
    space: &Space,
    seed: u64,
    runs: u32,
) -> (Option<Failure>, Totals)
where
    M: Model,
    M::Action: Classify + Clone,
{
    search_with(
        exec,
        space,
        Budget {
            seed,
            runs,
            max_shrink_iters: 2_000,
        },
        |_| {},
    )
}

/// [`search`] with a shrinking budget, calling `progress` after every run (shrinking runs
/// included) with the totals so far.
pub(crate) fn search_with<M>(
    exec: &Executor<'_, M>,
    space: &Space,
    budget: Budget,
    mut progress: impl FnMut(&Totals),
) -> (Option<Failure>, Totals)
where
    M: Model,
    M::Action: Classify + Clone,
{
    let config = RunnerConfig {
        cases: budget.runs,
        failure_persistence: None,
        // Shrinking replays whole runs, so it is bounded (a failure is reported in seconds),
        // but by the test below, not by proptest: proptest prints a line of its own when its
        // bound stops it, naming an environment variable that changes nothing here.
        max_shrink_iters: u32::MAX,
        ..RunnerConfig::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&budget.seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let totals = Cell::new(Totals::default());
    let first_fail = Cell::new(None::<u64>);
    let progress = std::cell::RefCell::new(&mut progress);
    let result = runner.run(&schedules(space), |s| {
        // Every run after the failing one (`failed` is its index) is a shrinking step. Budget
        // spent: turn every further simplification down without running it; proptest then
        // steps back to the smallest failing schedule it has, as its own bound would.
        if let Some(failed) = first_fail.get() {
            if totals.get().runs - failed > u64::from(budget.max_shrink_iters) {
                return Ok(());
            }
        }
        let (out, _) = exec.run(&s);
        let mut t = totals.get();
        t.runs += 1;
        t.steps += out.steps() as u64;
        t.deepest = t.deepest.max(out.steps() as u64);
        t.stats.add(&out.stats);
        totals.set(t);
        (progress.borrow_mut())(&t);
        match out.violation {
            None => Ok(()),
            Some(v) => {
                if first_fail.get().is_none() {
                    first_fail.set(Some(t.runs - 1));
                }
                Err(TestCaseError::fail(v.property))
            }
        }
    });
    let failure = match result {
        Ok(()) => None,
        Err(TestError::Fail(_, schedule)) => {
            let schedule = minimize(exec, schedule, budget.max_shrink_iters);
            let (out, _) = exec.run(&schedule);
            let violation = out
                .violation
                .expect("a shrunk failing schedule fails again when replayed");
            Some(Failure {
                schedule,
                violation,
                runs_before: first_fail.get().unwrap_or(0),
            })
        }
        Err(TestError::Abort(why)) => panic!("schedule search aborted: {why}"),
    };
    (failure, totals.get())
}

/// Shrink a failing schedule further than proptest's generic shrinking can: cut the choices
/// the run never used, then remove ever smaller chunks of choices (delta debugging) and
/// switch off whole kinds of faults, keeping each change that still violates the same
/// property in no more steps. Runs at most `max_runs` schedules.
pub(crate) fn minimize<M>(exec: &Executor<'_, M>, schedule: Schedule, max_runs: u32) -> Schedule
where
    M: Model,
    M::Action: Classify + Clone,
{
    let eval = |s: &Schedule| {
        let (out, _) = exec.run(s);
        let (steps, used) = (out.steps(), out.choices_used);
        out.violation.map(|v| (v.property, steps, used))
    };
    let Some((property, mut steps, used)) = eval(&schedule) else {
        return schedule;
    };
    let mut best = schedule;
    best.choices.truncate(used);
    let mut spent = 1u32;
    // Try `cand`; keep it when it fails the same way in no more steps.
    let mut try_keep = |cand: Schedule, best: &mut Schedule| -> bool {
        if spent >= max_runs {
            return false;
        }
        spent += 1;
        match eval(&cand) {
            Some((p, n, used)) if p == property && n <= steps => {
                *best = cand;
                best.choices.truncate(used);
                steps = n;
                true
            }
            _ => false,
        }
    };
    let mut chunk = best.choices.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < best.choices.len() {
            let mut cand = best.clone();
            let end = (i + chunk).min(cand.choices.len());
            cand.choices.drain(i..end);
            if !try_keep(cand, &mut best) {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    // Plainer profiles: no partitions, no loss, no crashes, no duplicates.
    let plainer: [fn(&mut FaultProfile); 4] = [
        |p| p.partitions.clear(),
        |p| p.loss_pct = 0,
        |p| p.crash_pct = 0,
        |p| p.dup_pct = 0,
    ];
    for f in plainer {
        let mut cand = best.clone();
        f(&mut cand.profile);
        if cand != best {
            try_keep(cand, &mut best);
        }
    }
    best
}
