//! The executor on the real cluster model: [`hunt`] runs proptest fault schedules against
//! [`paxraft_models::build()`] for any [`Replica`], and [`replay`] reruns a saved failure.
//!
//! What a run checks:
//! * after every step, every always-property of the model (state machine safety, applied
//!   prefix, terms, the protocol's own invariants) except stateright's linearizability
//!   tester, which searches without memoization and is built for short histories;
//! * at the end of every run, the whole client history with [`crate::lincheck::check_kv`]
//!   (per-key Wing–Gong/Lowe search with memoization), the history rebuilt from the path;
//!   under the lock service ([`Workload`]), with [`crate::lincheck::check_lock`] against the
//!   lock service with expiring sessions, as property [`LOCK_LINEARIZABLE`];
//! * liveness: after the faults stop, within a bounded settling phase every client op has
//!   completed (or its client was told its session expired) and every server has applied the
//!   same commands.
//!
//! The lock workload ([`lock_ops`]): clients acquire one lock, write to the storage actor
//! with their fencing token, keep their session alive and release, over and over, with
//! sessions that expire by log time ([`Workload::session_timeout`]). The storage's
//! always-property (it accepts writes in token order) is checked after every step with the
//! others; how often a run reached the lock service's sometimes-behaviours (a lock handed
//! over after its holder's session expired, a stale write refused) is counted in the report.
//!
//! The model is built for depth: a duplicating, lossy network (the executor controls how
//! often duplicates and losses happen), terms and retries effectively unbounded, a crash
//! budget per run (crashes may tear a step, see [`SimOptions::mid_step`]), and pipelined
//! clients ([`SimOptions::pipeline`]) with many ops over two keys with unique values so that
//! the linearizability check can tell every write apart, and a write applied twice.
mod history;
mod model;
mod options;
mod saved;

use std::cell::Cell;
use std::time::Instant;

use paxraft_impls::sm::{Kv, KvOutput, LockOutput, Sessions};
use paxraft_impls::Replica;
use paxraft_models::model::service::LOCK;
use paxraft_models::model::Service;
use paxraft_models::properties::names::{
    LINEARIZABLE, LOCK_HANDOVER, LOCK_LINEARIZABLE, STALE_WRITE_REFUSED,
};
use paxraft_models::{Cmd, Trace};
use serde::Serialize;

use super::executor::{Executor, Phase, Schedule, Stats, Violation};
use super::{search_with, Budget, Totals};
use crate::lincheck::{check_kv, check_lock};

pub use history::{history, pipelined_ops, trace};
pub use model::{
    client_ops, lock_ops, settled, sim_model, sim_model_for, Action, SimModel, SimState,
};
pub(crate) use model::{election_timer_under_a_leader, unsettled};
pub use options::{OptionsError, SimOptions, Workload, LOCK_SESSION_TIMEOUT, MAX_CLIENTS, MAX_OPS};
pub use saved::{ReplayError, SaveError, SavedFailure, SavedOptions};

use model::{expired, gave_up};
use saved::saved;

/// Operations the linearizability checker handled, and the time it took.
#[derive(Debug, Default)]
struct LinStats {
    ops: Cell<u64>,
    nanos: Cell<u64>,
    /// Runs in which some client gave up.
    gave_up: Cell<u64>,
    /// Ops invoked while an earlier op of the same client was still unanswered.
    pipelined: Cell<u64>,
    /// Runs that ended with a server that had answered a read without the log, and with a
    /// follower that had.
    read_runs: Cell<u64>,
    follower_read_runs: Cell<u64>,
    lease_read_runs: Cell<u64>,
    /// Runs that ended with a server that had taken a peer's snapshot in place of its
    /// lagging state machine, and with one that had restarted from its own.
    install_runs: Cell<u64>,
    changed_runs: Cell<u64>,
    restart_snapshot_runs: Cell<u64>,
    /// Lock service: runs that reached each sometimes-behaviour, and what the runs did.
    lock: Cell<LockCounts>,
}

/// What the lock workload did, summed over runs (all zero under the key-value store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LockCounts {
    /// Runs at whose end the model's sometimes-property [`LOCK_HANDOVER`] held (a client got
    /// the lock with a higher token than another, whose session expired).
    pub handover_runs: u64,
    /// Runs at whose end [`STALE_WRITE_REFUSED`] held (storage refused a write).
    pub stale_write_runs: u64,
    /// Runs in which some client was told its session expired.
    pub expired_runs: u64,
    /// Clients that had every op answered, and clients told their session expired (the
    /// settling phase accepts either; the rest gave up).
    pub clients_done: u64,
    /// Clients told their session expired.
    pub clients_expired: u64,
    /// Grants of the lock, in the log of the server that applied most (one per run).
    pub grants: u64,
    /// Of those, grants of a lock whose last holder lost it to session expiry (not by
    /// releasing it): handovers after expiry, exactly.
    pub grants_after_expiry: u64,
    /// Writes storage accepted.
    pub writes_accepted: u64,
    /// Writes storage refused (a token below one it had accepted).
    pub writes_refused: u64,
}

impl LockCounts {
    fn add(&mut self, o: &LockCounts) {
        self.handover_runs += o.handover_runs;
        self.stale_write_runs += o.stale_write_runs;
        self.expired_runs += o.expired_runs;
        self.clients_done += o.clients_done;
        self.clients_expired += o.clients_expired;
        self.grants += o.grants;
        self.grants_after_expiry += o.grants_after_expiry;
        self.writes_accepted += o.writes_accepted;
        self.writes_refused += o.writes_refused;
    }
}

/// Grants of [`LOCK`] in `applied` (a server's log, replayed through sessions with `timeout`
/// under `cfg`, as the server applied it), and how many of them came after the last holder
/// lost the lock to session expiry rather than releasing it.
fn grants(applied: &[(u64, Cmd)], timeout: u64, cfg: &paxraft_impls::Config) -> (u64, u64) {
    let mut sm = Sessions::<Kv>::with_timeout(timeout);
    let (mut grants, mut after_expiry, mut lost_to_expiry) = (0, 0, false);
    for (_, cmd) in applied {
        let before = sm.state().locks().holder(LOCK);
        let out = sm.apply_as(cmd, cfg);
        if before.is_some_and(|h| sm.is_expired(h)) {
            lost_to_expiry = true;
        }
        match out {
            Ok(KvOutput::Lock(LockOutput::Released)) => lost_to_expiry = false,
            Ok(KvOutput::Lock(LockOutput::Acquired { .. }))
                if sm.state().locks().holder(LOCK) != before =>
            {
                grants += 1;
                after_expiry += u64::from(lost_to_expiry);
                lost_to_expiry = false;
            }
            _ => {}
        }
    }
    (grants, after_expiry)
}

/// What the lock workload did in one run that ended in `state`.
fn lock_counts<R: Replica<Cmd>>(m: &SimModel<R>, state: &SimState<R>) -> LockCounts {
    let cfg = &m.actors.cfg.cfg;
    let reached = |name: &str| {
        m.properties
            .iter()
            .find(|p| p.name == name)
            .is_some_and(|p| (p.condition)(m, state))
    };
    let servers = || {
        state.actor_states[..cfg.servers]
            .iter()
            .filter_map(|a| a.server())
    };
    let timeout = servers().next().map_or(0, |s| s.saved.sm.timeout());
    let (grants, grants_after_expiry) = servers()
        .max_by_key(|s| s.saved.applied.len())
        .map_or((0, 0), |s| grants(&s.saved.applied, timeout, &cfg.protocol));
    let clients = || {
        state.actor_states[cfg.servers..cfg.servers + cfg.clients]
            .iter()
            .filter_map(|a| a.client())
    };
    let storage = state.actor_states[cfg.servers + cfg.clients..]
        .iter()
        .find_map(|a| a.storage());
    LockCounts {
        // Both hold from the moment they are reached on (expiry is for ever, tokens only
        // grow, storage only counts up), so the last state says whether the run reached them.
        handover_runs: u64::from(reached(LOCK_HANDOVER)),
        stale_write_runs: u64::from(reached(STALE_WRITE_REFUSED)),
        expired_runs: u64::from((0..cfg.clients).any(|c| expired(m, state, c))),
        clients_done: clients().filter(|c| usize::from(c.done) == cfg.ops).count() as u64,
        clients_expired: clients().filter(|c| c.expired).count() as u64,
        grants,
        grants_after_expiry,
        writes_accepted: storage.map_or(0, |s| s.accepted.len() as u64),
        writes_refused: storage.map_or(0, |s| u64::from(s.refused)),
    }
}

fn executor<'m, R: Replica<Cmd>>(
    model: &'m SimModel<R>,
    lin: &'m LinStats,
) -> Executor<'m, SimModel<R>> {
    let exec = Executor::new(model, settled::<R>);
    let exec = if model.actors.cfg.cfg.crash_mid_step {
        exec.tear_crashes()
    } else {
        exec
    };
    exec.why_unsettled(unsettled::<R>)
        .quiet_timers(election_timer_under_a_leader::<R>)
        .duplicating()
        .consume_ignored()
        .end_check(end_check_name(model), move |m, state, path| {
            let lock = m.actors.cfg.cfg.service == Service::Lock;
            if lock {
                let mut counts = lin.lock.get();
                counts.add(&lock_counts(m, state));
                lin.lock.set(counts);
            }
            if (0..m.actors.cfg.cfg.clients).any(|c| gave_up(m, state, c)) {
                lin.gave_up.set(lin.gave_up.get() + 1);
            }
            let n = m.actors.cfg.cfg.servers;
            let served = state.actor_states[..n]
                .iter()
                .filter_map(|a| a.server())
                .fold(0u8, |bits, x| bits | x.served_reads);
            if served != 0 {
                lin.read_runs.set(lin.read_runs.get() + 1);
            }
            if served & 2 != 0 {
                lin.follower_read_runs.set(lin.follower_read_runs.get() + 1);
            }
            if served & 4 != 0 {
                lin.lease_read_runs.set(lin.lease_read_runs.get() + 1);
            }
            let restores = state.actor_states[..n]
                .iter()
                .filter_map(|a| a.server())
                .fold(0u8, |bits, x| bits | x.saved.restores);
            if restores & 1 != 0 {
                lin.install_runs.set(lin.install_runs.get() + 1);
            }
            if restores & 2 != 0 {
                lin.restart_snapshot_runs
                    .set(lin.restart_snapshot_runs.get() + 1);
            }
            if state.actor_states[..n]
                .iter()
                .filter_map(|a| a.server())
                .any(|x| x.changes_done != 0)
            {
                lin.changed_runs.set(lin.changed_runs.get() + 1);
            }
            let start = Instant::now();
            let h = history::<R>(m, path);
            lin.pipelined.set(lin.pipelined.get() + pipelined_ops(&h));
            let verdict = if lock {
                check_lock(&h).map_err(|e| e.to_string())
            } else {
                check_kv(&h).map_err(|e| e.to_string())
            };
            lin.ops.set(lin.ops.get() + h.len() as u64);
            lin.nanos
                .set(lin.nanos.get() + start.elapsed().as_nanos() as u64);
            verdict
        })
}

/// The property the end-of-run history check stands for.
fn end_check_name<R: Replica<Cmd>>(model: &SimModel<R>) -> &'static str {
    match model.actors.cfg.cfg.service {
        Service::Kv => LINEARIZABLE,
        Service::Lock => LOCK_LINEARIZABLE,
    }
}

/// A failure found by [`hunt`], shrunk.
#[derive(Clone, Debug, Serialize)]
pub struct FoundFailure {
    /// The violated property ([`super::SETTLES`] for a run that did not settle).
    pub property: String,
    /// What an end-of-run check said.
    pub detail: String,
    /// The phase it failed in.
    pub phase: Phase,
    /// Steps of the shrunk run (bookkeeping excluded): the length of its chart.
    pub steps: usize,
    /// Runs that passed before the first failure.
    pub runs_before: u64,
    /// The shrunk schedule.
    pub schedule: Schedule,
    /// Its message-sequence chart.
    #[serde(skip)]
    pub trace: Trace,
    /// The chart as text.
    pub chart: String,
    /// What to save to replay it.
    pub saved: SavedFailure,
}

/// The outcome of [`hunt`].
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// Protocol name.
    pub protocol: &'static str,
    /// The replicated service (`kv` or `lock`).
    pub service: &'static str,
    /// The `paxraft simulate` command that reruns this search.
    pub command: String,
    /// Runs executed (shrinking included).
    pub runs: u64,
    /// Model steps executed (shrinking included).
    pub steps: u64,
    /// The longest run, in steps.
    pub deepest: u64,
    /// Wall time.
    pub seconds: f64,
    /// Steps per second (property checks and the end-of-run linearizability checks included).
    pub steps_per_sec: f64,
    /// Client operations the linearizability checker handled.
    pub lincheck_ops: u64,
    /// Time spent in it.
    pub lincheck_seconds: f64,
    /// Its throughput, operations per second.
    pub lincheck_ops_per_sec: f64,
    /// What the faults did, summed over all runs.
    pub stats: Stats,
    /// Runs in which a client used up the model's 255 resends and gave up (see [`settled`]).
    pub gave_up_runs: u64,
    /// Client ops invoked while an earlier op of the same client was unanswered, over all
    /// runs' histories (0 with `--pipeline 1`).
    pub pipelined_ops: u64,
    /// Runs at whose end some server had answered a read without the log (`--reads
    /// read-index`; a server that restarted forgets its own), and some follower had.
    pub read_runs: u64,
    /// Of those, runs in which a follower had (`--follower-reads`).
    pub follower_read_runs: u64,
    /// Of those, runs in which a leader had served one under its lease, with no round
    /// (`--reads lease`).
    pub lease_read_runs: u64,
    /// Runs at whose end some server had taken a peer's snapshot in place of its lagging
    /// state machine (`--snapshot-every`).
    pub install_runs: u64,
    /// Runs at whose end some server had restarted from a snapshot it kept.
    pub restart_snapshot_runs: u64,
    /// Runs at whose end some server (a leader, then) had answered one of the operator's
    /// membership changes as done, in its current incarnation (`--changes`).
    pub changed_runs: u64,
    /// What the lock workload did (`--service lock`; zero otherwise).
    pub lock: LockCounts,
    /// The failure, if one was found.
    pub failure: Option<FoundFailure>,
}

/// Search `opts.runs` random fault schedules of a cluster of `R` for a violation.
///
/// # Panics
/// When `opts` does not validate ([`SimOptions::validate`]): callers check first.
pub fn hunt<R: Replica<Cmd>>(opts: &SimOptions) -> SimReport {
    hunt_with::<R>(opts, |_| {})
}

/// [`hunt`], calling `progress` after every run with the totals so far.
pub fn hunt_with<R: Replica<Cmd>>(opts: &SimOptions, progress: impl FnMut(&Totals)) -> SimReport {
    hunt_checking::<R>(opts, Vec::new(), progress)
}

/// [`hunt_with`], checking `extra` always-properties after every step as well (the bug zoo
/// adds a bounded form of a liveness property this way).
pub fn hunt_checking<R: Replica<Cmd>>(
    opts: &SimOptions,
    extra: Vec<stateright::Property<SimModel<R>>>,
    progress: impl FnMut(&Totals),
) -> SimReport {
    hunt_service::<R>(opts, &Workload::default(), extra, progress)
}

/// [`hunt_checking`] of `workload`: the key-value store, or the lock service.
///
/// # Panics
/// When `opts` or `workload` does not validate: callers check first.
pub fn hunt_service<R: Replica<Cmd>>(
    opts: &SimOptions,
    workload: &Workload,
    extra: Vec<stateright::Property<SimModel<R>>>,
    progress: impl FnMut(&Totals),
) -> SimReport {
    if let Err(e) = opts.validate().and_then(|()| workload.validate()) {
        panic!("invalid simulation options: {e}");
    }
    let mut model = sim_model_for::<R>(opts, workload);
    model.properties.extend(extra);
    let lin = LinStats::default();
    let exec = executor::<R>(&model, &lin);
    let start = Instant::now();
    let budget = Budget {
        seed: opts.seed,
        runs: opts.runs,
        max_shrink_iters: opts.max_shrink_iters,
    };
    let (failure, totals) = search_with(&exec, &opts.space(), budget, progress);
    let seconds = start.elapsed().as_secs_f64();
    let command = [
        format!("paxraft simulate {} {}", R::NAME, opts.flags()),
        workload.flags(),
    ]
    .join(" ")
    .trim_end()
    .to_string();
    let failure = failure.map(|f| {
        let (out, _) = exec.run(&f.schedule);
        let trace = trace::<R>(&model, &out.path, &out.consumed, &f.violation);
        FoundFailure {
            property: f.violation.property.clone(),
            detail: f.violation.detail.clone(),
            phase: f.violation.phase,
            steps: trace.steps.len(),
            runs_before: f.runs_before,
            chart: trace.chart(),
            trace,
            saved: saved(
                R::NAME,
                opts,
                workload,
                command.clone(),
                f.schedule.clone(),
                f.violation,
            ),
            schedule: f.schedule,
        }
    });
    let lincheck_seconds = lin.nanos.get() as f64 / 1e9;
    SimReport {
        protocol: R::NAME,
        service: workload.service.name(),
        command,
        runs: totals.runs,
        steps: totals.steps,
        deepest: totals.deepest,
        seconds,
        steps_per_sec: totals.steps as f64 / seconds.max(1e-9),
        lincheck_ops: lin.ops.get(),
        lincheck_seconds,
        lincheck_ops_per_sec: lin.ops.get() as f64 / lincheck_seconds.max(1e-9),
        stats: totals.stats,
        gave_up_runs: lin.gave_up.get(),
        pipelined_ops: lin.pipelined.get(),
        read_runs: lin.read_runs.get(),
        follower_read_runs: lin.follower_read_runs.get(),
        lease_read_runs: lin.lease_read_runs.get(),
        install_runs: lin.install_runs.get(),
        restart_snapshot_runs: lin.restart_snapshot_runs.get(),
        changed_runs: lin.changed_runs.get(),
        lock: lin.lock.get(),
        failure,
    }
}

/// What replaying a saved failure gave.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The violation it produced now (`None`: it no longer fails).
    pub violation: Option<Violation>,
    /// Steps of the run (bookkeeping excluded).
    pub steps: usize,
    /// The chart of the run, when it failed.
    pub trace: Option<Trace>,
}

/// Replay `saved` on a cluster of `R` configured by `opts` (from [`SavedFailure::sim_options`]),
/// running the workload it was found with.
///
/// # Panics
/// When `saved` names a service this build does not know ([`SavedFailure::sim_options`]
/// says so first).
pub fn replay<R: Replica<Cmd>>(saved: &SavedFailure, opts: &SimOptions) -> Replayed {
    replay_checking::<R>(saved, opts, Vec::new())
}

/// [`replay`], checking `extra` always-properties after every step as well (those the search
/// that found `saved` checked: see [`hunt_checking`]). `opts` need not be the options the
/// failure was found with: the bug zoo replays a schedule with the bug switched off.
pub fn replay_checking<R: Replica<Cmd>>(
    saved: &SavedFailure,
    opts: &SimOptions,
    extra: Vec<stateright::Property<SimModel<R>>>,
) -> Replayed {
    let workload = saved
        .workload()
        .unwrap_or_else(|e| panic!("a saved failure to replay: {e}"));
    replay_service::<R>(saved, opts, &workload, extra)
}

/// [`replay_checking`] of `workload`, which [`replay_checking`] takes from the saved
/// failure ([`SavedFailure::workload`]): the same schedule may be replayed under another.
pub fn replay_service<R: Replica<Cmd>>(
    saved: &SavedFailure,
    opts: &SimOptions,
    workload: &Workload,
    extra: Vec<stateright::Property<SimModel<R>>>,
) -> Replayed {
    let mut model = sim_model_for::<R>(opts, workload);
    model.properties.extend(extra);
    let lin = LinStats::default();
    let exec = executor::<R>(&model, &lin);
    let (out, _) = exec.run(&saved.schedule);
    let trace = out
        .violation
        .as_ref()
        .map(|v| trace::<R>(&model, &out.path, &out.consumed, v));
    Replayed {
        steps: out.steps(),
        violation: out.violation,
        trace,
    }
}
