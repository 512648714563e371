//! The executor on the real cluster model: [`hunt`] runs proptest fault schedules against
//! [`paxraft_models::build`] for any [`Replica`], and [`replay`] reruns a saved failure.
//!
//! What a run checks:
//! * after every step, every always-property of the model (state machine safety, applied
//!   prefix, terms, the protocol's own invariants) except stateright's linearizability
//!   tester, which searches without memoization and is built for short histories;
//! * at the end of every run, the whole client history with [`crate::lincheck::check_kv`]
//!   (per-key Wing–Gong/Lowe search with memoization), the history rebuilt from the path;
//! * liveness: after the faults stop, within a bounded settling phase every client op has
//!   completed and every server has applied the same commands.
//!
//! The model is built for depth: a duplicating, lossy network (the executor controls how
//! often duplicates and losses happen), terms and retries effectively unbounded, a crash
//! budget per run (crashes may tear a step, see [`SimOptions::mid_step`]), and pipelined
//! clients ([`SimOptions::pipeline`]) with many ops over two keys with unique values so that
//! the linearizability check can tell every write apart, and a write applied twice.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use paxraft_impls::sm::{KvOp, KvOutput};
use paxraft_impls::{Bug, Config, Replica, Role, MAX_NODES};
use paxraft_models::checked::{build_walk, CheckAction, CheckModel, CheckState};
use paxraft_models::model::{Answer, ClientState, Msg, NetworkKind, Node, Timer, MAX_PIPELINE};
use paxraft_models::properties::names::LINEARIZABLE;
use paxraft_models::render::trace_of_actions;
use paxraft_models::{Cmd, ModelConfig, Trace};
use serde::{Deserialize, Serialize};
use stateright::actor::ActorModelAction;
use stateright::Model;

use super::executor::{Classify, Executor, Phase, Schedule, Stats, Violation};
use super::{search_with, Budget, Space, Totals};
use crate::lincheck::{check_kv, Op};

/// What [`hunt`] searches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    /// Seed of the schedule generator: the same options and seed give the same runs.
    pub seed: u64,
    /// Random schedules to run.
    pub runs: u32,
    /// Most steps in a run's faulty phase.
    pub steps: usize,
    /// Bound on a run's fault-free settling phase.
    pub settle_steps: usize,
    /// Servers (1 to [`MAX_NODES`]).
    pub servers: usize,
    /// Clients.
    pub clients: usize,
    /// Operations per client.
    pub ops: usize,
    /// Requests a client keeps outstanding at once (1 to 8): with more than one, clients
    /// pipeline and acknowledge as the runtime's clients do.
    pub pipeline: usize,
    /// Whether crashes may fall between two effects of a step (a torn step) rather than
    /// only between steps: half of the crash rolls try to tear a pending step of the
    /// crashing server (see [`super::executor::Executor::tear_crashes`]).
    pub mid_step: bool,
    /// Highest message-loss rate, percent of steps.
    pub loss_pct: u8,
    /// Highest duplication rate, percent of deliveries.
    pub dup_pct: u8,
    /// Highest crash/restart rate, percent of steps.
    pub crash_pct: u8,
    /// Crashes allowed per run (0: none).
    pub crashes: usize,
    /// Whether runs include partition windows.
    pub partitions: bool,
    /// The protocol configuration (bug-zoo switches included).
    pub protocol: Config,
    /// Most shrinking steps once a failure is found.
    pub max_shrink_iters: u32,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 0,
            runs: 100,
            steps: 2_000,
            settle_steps: 4_000,
            servers: 3,
            clients: 3,
            ops: 20,
            pipeline: 3,
            mid_step: true,
            loss_pct: 10,
            dup_pct: 10,
            crash_pct: 3,
            crashes: 2,
            partitions: false,
            protocol: Config::default(),
            max_shrink_iters: 1_000,
        }
    }
}

/// Most ops per client (the model numbers them with a `u8`, and a client's resends too).
pub const MAX_OPS: usize = 250;
/// Most clients.
pub const MAX_CLIENTS: usize = 16;

impl SimOptions {
    /// Reject options that cannot be simulated, with a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers == 0 || self.servers > MAX_NODES {
            return Err(format!(
                "--servers must be 1 to {MAX_NODES}, got {}",
                self.servers
            ));
        }
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(format!(
                "--clients must be 1 to {MAX_CLIENTS}, got {}",
                self.clients
            ));
        }
        if self.ops == 0 || self.ops > MAX_OPS {
            return Err(format!("--ops must be 1 to {MAX_OPS}, got {}", self.ops));
        }
        if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
            return Err(format!(
                "--pipeline must be 1 to {MAX_PIPELINE}, got {}",
                self.pipeline
            ));
        }
        if self.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        if self.steps == 0 {
            return Err("--steps must be at least 1".into());
        }
        if self.settle_steps == 0 {
            return Err("--settle-steps must be at least 1".into());
        }
        for (flag, v) in [
            ("--loss", self.loss_pct),
            ("--dup", self.dup_pct),
            ("--crash-rate", self.crash_pct),
        ] {
            if v > 100 {
                return Err(format!("{flag} is a percentage (0 to 100), got {v}"));
            }
        }
        if u16::from(self.loss_pct) + u16::from(self.crash_pct) > 70 {
            return Err(
                "--loss plus --crash-rate must leave at least 30% of steps for deliveries".into(),
            );
        }
        self.protocol.validate(self.servers)
    }

    /// The model configuration a run uses.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            servers: self.servers,
            clients: self.clients,
            ops: self.ops,
            network: NetworkKind::Duplicating,
            // Drops exist in the model; the schedule decides how often they happen.
            lossy: true,
            max_crashes: self.crashes,
            // Terms and retries are not what bounds a run: its length is.
            max_term: u64::MAX / 2,
            // Room for every server to broadcast and every client to wait at once; beyond it
            // a step is refused, which keeps stale heartbeats from piling up without end.
            max_in_flight: 4 * self.servers * self.servers + 2 * self.clients,
            max_retries: u8::MAX,
            // The schedule's loss rate decides how much is lost.
            max_losses: None,
            // The executor asks for torn steps itself, one crash at a time.
            crash_mid_step: self.mid_step,
            pipeline: self.pipeline,
            protocol: self.protocol.clone(),
        }
    }

    /// The schedule space of these options.
    pub fn space(&self) -> Space {
        Space {
            max_steps: self.steps,
            servers: self.servers,
            max_loss_pct: self.loss_pct,
            max_crash_pct: if self.crashes > 0 { self.crash_pct } else { 0 },
            max_dup_pct: self.dup_pct,
            partitions: self.partitions,
            settle_steps: self.settle_steps,
        }
    }

    /// The bugs switched on.
    pub fn bugs(&self) -> Vec<Bug> {
        self.protocol.bugs_on()
    }

    /// The `paxraft simulate` flags that rebuild these options (defaults omitted).
    pub fn flags(&self) -> String {
        let d = SimOptions::default();
        let mut f = vec![format!("--seed {}", self.seed)];
        let mut push = |name: &str, v: String, dv: String| {
            if v != dv {
                f.push(format!("--{name} {v}"));
            }
        };
        push("runs", self.runs.to_string(), d.runs.to_string());
        push("steps", self.steps.to_string(), d.steps.to_string());
        push(
            "settle-steps",
            self.settle_steps.to_string(),
            d.settle_steps.to_string(),
        );
        push("servers", self.servers.to_string(), d.servers.to_string());
        push("clients", self.clients.to_string(), d.clients.to_string());
        push("ops", self.ops.to_string(), d.ops.to_string());
        push(
            "pipeline",
            self.pipeline.to_string(),
            d.pipeline.to_string(),
        );
        push("loss", self.loss_pct.to_string(), d.loss_pct.to_string());
        push("dup", self.dup_pct.to_string(), d.dup_pct.to_string());
        push(
            "crash-rate",
            self.crash_pct.to_string(),
            d.crash_pct.to_string(),
        );
        push("crashes", self.crashes.to_string(), d.crashes.to_string());
        if self.partitions {
            f.push("--partitions".into());
        }
        if !self.mid_step {
            f.push("--atomic-steps".into());
        }
        if !self.protocol.pre_vote {
            f.push("--no-pre-vote".into());
        }
        if !self.protocol.check_quorum {
            f.push("--no-check-quorum".into());
        }
        if self.protocol.max_batch != Config::default().max_batch {
            f.push(format!("--max-batch {}", self.protocol.max_batch));
        }
        if self.protocol.empty_heartbeats {
            f.push("--empty-heartbeats".into());
        }
        // Shrinking decides which failure a search ends on: part of the reproduction.
        if self.max_shrink_iters != SimOptions::default().max_shrink_iters {
            f.push(format!("--shrink {}", self.max_shrink_iters));
        }
        for b in self.bugs() {
            f.push(format!("--bug {}", b.name()));
        }
        f.join(" ")
    }
}

/// The ops of client `c`: puts, gets and compare-and-swaps over two keys, every written
/// value unique (client, op index), so a read names the write it saw.
pub fn client_ops(c: usize, ops: usize) -> Vec<KvOp> {
    let mut last: [Option<Vec<u8>>; 2] = [None, None];
    (0..ops)
        .map(|k| {
            let key = ((k / 3) % 2) as u64;
            let value = vec![c as u8, k as u8];
            match k % 3 {
                0 => {
                    last[key as usize] = Some(value.clone());
                    KvOp::Put(key, value)
                }
                1 => KvOp::Get(key),
                _ => {
                    let expect = last[key as usize].replace(value.clone());
                    KvOp::Cas {
                        key,
                        expect,
                        new: value,
                    }
                }
            }
        })
        .collect()
}

/// The model a simulation runs: the checked model's actions and properties, torn steps
/// included, with its bounds as a boundary ([`build_walk`]), the clients' ops of
/// [`client_ops`], and without stateright's history recording (the history is rebuilt from
/// the path instead, see [`history`]), so states stay small however long the run.
pub fn sim_model<R: Replica<Cmd>>(opts: &SimOptions) -> SimModel<R> {
    let cfg = opts.model_config();
    let mut model = build_walk::<R>(&cfg);
    for (c, actor) in model.actors.actors[cfg.servers..].iter_mut().enumerate() {
        if let Node::Client { ops, .. } = actor {
            *ops = Arc::new(client_ops(c, cfg.ops));
        }
    }
    model.actors.record_msg_in = |_, _, _| None;
    model.actors.record_msg_out = |_, _, _| None;
    model.properties.retain(|p| p.name != LINEARIZABLE);
    model
}

/// The model a simulation walks.
pub type SimModel<R> = CheckModel<R>;
/// One of its states.
pub type SimState<R> = CheckState<R>;

/// Whether client `c` gave up: it waits, but has used all the resends the model allows (255)
/// and nothing it sent is still on the way. The model's clients have a bounded retry budget;
/// a run with a long partition can exhaust it, and such a client is then no more alive than a
/// crashed one: its op stays pending (the history check still covers it).
fn gave_up<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>, c: usize) -> bool {
    let id = model.actors.cfg.cfg.servers + c;
    let Some(cl) = state.actor_states[id].client() else {
        return false;
    };
    cl.waiting()
        && cl.retries >= model.actors.cfg.cfg.max_retries
        && !state
            .network
            .iter_deliverable()
            .any(|e| usize::from(e.src) == id || usize::from(e.dst) == id)
}

/// The liveness condition: no server is down, every client has had every op answered (or gave
/// up, see `gave_up`), and every server has applied the same commands.
pub fn settled<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>) -> bool {
    let cfg = &model.actors.cfg.cfg;
    let n = cfg.servers;
    if state.crashed.iter().any(|&c| c) {
        return false;
    }
    let clients_done = state.actor_states[n..].iter().enumerate().all(|(c, a)| {
        a.client().is_some_and(|cl| usize::from(cl.done) == cfg.ops) || gave_up(model, state, c)
    });
    if !clients_done {
        return false;
    }
    let mut servers = state.actor_states[..n].iter().filter_map(|a| a.server());
    let Some(first) = servers.next() else {
        return true;
    };
    servers.all(|s| s.saved.applied == first.saved.applied)
}

/// A non-leader's election timer while some server leads: on a healthy network the leader's
/// messages keep re-arming it, so the settling phase fires it only when nothing else can
/// happen (a leader that stalls must not be rescued by an election it would not have had).
pub fn election_timer_under_a_leader<R: Replica<Cmd>>(
    model: &SimModel<R>,
    state: &SimState<R>,
    action: &Action<R>,
) -> bool {
    let CheckAction::Step(ActorModelAction::Timeout(id, Timer::Replica(t))) = action else {
        return false;
    };
    let n = model.actors.cfg.cfg.servers;
    let leads = |i: usize| {
        !state.crashed[i]
            && state.actor_states[i]
                .server()
                .is_some_and(|s| s.replica.status().role == Role::Leader)
    };
    *t == R::election_timer() && !leads(usize::from(*id)) && (0..n).any(leads)
}

/// What keeps a state from [`settled`], in a few words.
pub fn unsettled<R: Replica<Cmd>>(model: &SimModel<R>, state: &SimState<R>) -> String {
    let cfg = &model.actors.cfg.cfg;
    let n = cfg.servers;
    let mut why = Vec::new();
    for (i, _) in state.crashed.iter().enumerate().filter(|(_, &c)| c) {
        why.push(format!("n{i} is down"));
    }
    for (c, a) in state.actor_states[n..].iter().enumerate() {
        if let Some(cl) = a.client().filter(|cl| usize::from(cl.done) < cfg.ops) {
            why.push(format!(
                "c{c} has {} of {} ops answered in order (waits for {:?}, last sent to n{}, after {} retries)",
                cl.done,
                cfg.ops,
                cl.unanswered().map(|k| format!("#{k}")).collect::<Vec<_>>(),
                cl.target,
                cl.retries
            ));
        }
    }
    let servers: Vec<String> = state.actor_states[..n]
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.server().map(|s| {
                let st = s.replica.status();
                format!(
                    "n{i} {:?} term {} applied {}",
                    st.role,
                    st.term,
                    s.saved.applied.len()
                )
            })
        })
        .collect();
    why.push(servers.join(", "));
    why.join("; ")
}

fn output(a: &Answer) -> KvOutput {
    match a {
        Answer::Value(v) => KvOutput::Value(v.clone()),
        Answer::Written => KvOutput::Written,
        Answer::Swapped => KvOutput::Cas(Ok(())),
        Answer::NotSwapped(v) => KvOutput::Cas(Err(v.clone())),
    }
}

/// An action of the simulated cluster.
pub type Action<R> = CheckAction<R>;

/// The clients' history along `path`, for the linearizability checker. It follows the
/// clients' own rules (the model's [`ClientState`]): a reply counts when it answers an op
/// its client still waits for; the client then issues its next ops, as many as its
/// pipeline has room for, at that moment. Step `t` (1-based) happens at time `2t`;
/// invocations that follow a return come just after it, at `2t + 1`; first ops are invoked
/// at time 1. Ops never answered are pending (no return).
pub fn history<R: Replica<Cmd>>(model: &SimModel<R>, path: &[Action<R>]) -> Vec<Op> {
    let cfg = &model.actors.cfg.cfg;
    let ops: Vec<Vec<KvOp>> = (0..cfg.clients).map(|c| client_ops(c, cfg.ops)).collect();
    let pipeline = cfg.pipeline.clamp(1, MAX_PIPELINE);
    let mut clients = vec![ClientState::default(); cfg.clients];
    // Per client, per op (0-based): when it was invoked.
    let mut called: Vec<Vec<u64>> = vec![Vec::with_capacity(cfg.ops); cfg.clients];
    let issue = |c: &mut ClientState, called: &mut Vec<u64>, now: u64| {
        while usize::from(c.seq) < cfg.ops && usize::from(c.seq) < usize::from(c.done) + pipeline {
            c.seq += 1;
            called.push(now);
        }
    };
    for (c, called) in clients.iter_mut().zip(&mut called) {
        issue(c, called, 1);
    }
    let mut h = Vec::with_capacity(cfg.clients * cfg.ops);
    for (t, a) in path.iter().enumerate() {
        let CheckAction::Step(ActorModelAction::Deliver {
            dst,
            msg: Msg::Reply { seq, answer },
            ..
        }) = a
        else {
            continue;
        };
        let Some(c) = usize::from(*dst)
            .checked_sub(cfg.servers)
            .filter(|&c| c < cfg.clients)
        else {
            continue;
        };
        if !clients[c].awaits(*seq) {
            continue; // not awaited: the client ignores it
        }
        let now = 2 * (t as u64 + 1);
        let k = *seq as usize;
        h.push(Op {
            client: c as u64,
            call: called[c][k - 1],
            ret: Some(now),
            op: ops[c][k - 1].clone(),
            out: Some(output(answer)),
        });
        clients[c].answer(*seq);
        issue(&mut clients[c], &mut called[c], now + 1);
    }
    for (c, cl) in clients.iter().enumerate() {
        for k in cl.unanswered() {
            let k = usize::from(k);
            h.push(Op {
                client: c as u64,
                call: called[c][k - 1],
                ret: None,
                op: ops[c][k - 1].clone(),
                out: None,
            });
        }
    }
    h
}

/// The message-sequence chart of a run's path, about `violation`: the executor's
/// bookkeeping drops are hidden, and a message its recipient ignored shows as a delivery
/// marked "(ignored)".
pub fn trace<R: Replica<Cmd>>(
    model: &SimModel<R>,
    path: &[Action<R>],
    consumed: &[usize],
    violation: &Violation,
) -> Trace {
    let init = model
        .init_states()
        .into_iter()
        .next()
        .expect("a model has an initial state");
    let last = path.iter().fold(init, |s, a| {
        model
            .next_state(&s, a.clone())
            .expect("a path the executor took replays")
    });
    let mut t = trace_of_actions(model, path, &last, &violation.property);
    // The chart's first step for each path entry: a torn step is drawn as two.
    let mut first = Vec::with_capacity(path.len());
    let mut k = 0;
    for a in path {
        first.push(k);
        k += if matches!(a, CheckAction::CrashDuring { .. }) {
            2
        } else {
            1
        };
    }
    let mut hide = vec![false; t.steps.len()];
    for &i in consumed {
        let after_delivery = i > 0 && path[i - 1].consume().as_ref() == Some(&path[i]);
        if after_delivery {
            hide[first[i]] = true;
        } else if let CheckAction::Step(ActorModelAction::Drop(env)) = &path[i] {
            let step = &mut t.steps[first[i]];
            let what = step
                .label
                .split_once(": ")
                .map_or(step.label.clone(), |(_, m)| m.to_string());
            step.to = Some(usize::from(env.dst));
            step.label = format!("{what} (ignored)");
        }
    }
    let mut k = 0;
    t.steps.retain(|_| {
        k += 1;
        !hide[k - 1]
    });
    if !violation.detail.is_empty() {
        t.explanation = Some(violation.detail.clone());
    }
    t
}

/// Operations the linearizability checker handled, and the time it took.
#[derive(Debug, Default)]
struct LinStats {
    ops: Cell<u64>,
    nanos: Cell<u64>,
    /// Runs in which some client gave up.
    gave_up: Cell<u64>,
    /// Ops invoked while an earlier op of the same client was still unanswered.
    pipelined: Cell<u64>,
}

/// Ops of `h` invoked while an earlier op of the same client had not returned: how much the
/// clients actually pipelined.
pub fn pipelined_ops(h: &[Op]) -> u64 {
    let mut by_client: std::collections::BTreeMap<u64, Vec<&Op>> = Default::default();
    for o in h {
        by_client.entry(o.client).or_default().push(o);
    }
    by_client
        .values_mut()
        .map(|ops| {
            ops.sort_by_key(|o| o.call);
            let mut open_until = 0; // the latest return among earlier ops (MAX: pending)
            let mut n = 0;
            for o in ops.iter() {
                n += u64::from(o.call < open_until);
                open_until = open_until.max(o.ret.unwrap_or(u64::MAX));
            }
            n
        })
        .sum()
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
        .end_check(LINEARIZABLE, move |m, state, path| {
            if (0..m.actors.cfg.cfg.clients).any(|c| gave_up(m, state, c)) {
                lin.gave_up.set(lin.gave_up.get() + 1);
            }
            let start = Instant::now();
            let h = history::<R>(m, path);
            lin.pipelined.set(lin.pipelined.get() + pipelined_ops(&h));
            let verdict = check_kv(&h);
            lin.ops.set(lin.ops.get() + h.len() as u64);
            lin.nanos
                .set(lin.nanos.get() + start.elapsed().as_nanos() as u64);
            verdict
        })
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
    /// The failure, if one was found.
    pub failure: Option<FoundFailure>,
}

/// The knobs a saved failure needs to rebuild its model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    /// Servers.
    pub servers: usize,
    /// Clients.
    pub clients: usize,
    /// Ops per client.
    pub ops: usize,
    /// Requests outstanding per client (absent in files written before clients pipelined: 1).
    #[serde(default = "one")]
    pub pipeline: usize,
    /// Whether crashes may tear a step (absent in older files: they could not).
    #[serde(default)]
    pub mid_step: bool,
    /// Crash budget.
    pub crashes: usize,
    /// Raft PreVote.
    pub pre_vote: bool,
    /// Raft CheckQuorum.
    pub check_quorum: bool,
    /// Most entries per append (absent in files written before it was saved: the default).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Raft heartbeats without entries (absent in older files: off).
    #[serde(default)]
    pub empty_heartbeats: bool,
    /// Bug-zoo switches, by name.
    pub bugs: Vec<String>,
}

fn one() -> usize {
    1
}

fn default_max_batch() -> usize {
    Config::default().max_batch
}

/// A failing schedule as `paxraft replay` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFailure {
    /// Format version.
    pub version: u32,
    /// Protocol name.
    pub protocol: String,
    /// The model's knobs.
    pub options: SavedOptions,
    /// The seed the search started from.
    pub seed: u64,
    /// The `paxraft simulate` command that found it.
    pub command: String,
    /// The shrunk schedule.
    pub schedule: Schedule,
    /// What it violated.
    pub violation: Violation,
}

impl SavedFailure {
    /// The format version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// Where a failure found by `protocol`'s search from `seed` is saved by default.
    pub fn file_name(protocol: &str, seed: u64) -> String {
        format!("simulate-{protocol}-seed{seed}.json")
    }

    /// Write it as pretty JSON to `path` (whose directory must exist).
    pub fn save(&self, path: &std::path::Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The bugs the schedule needs switched on; `Err` names one this build does not know.
    pub fn bugs(&self) -> Result<Vec<Bug>, String> {
        self.options
            .bugs
            .iter()
            .map(|b| Bug::parse(b).ok_or_else(|| format!("unknown bug {b:?}")))
            .collect()
    }

    /// The simulation options to replay with, given the protocol configuration (with the
    /// bugs of [`SavedFailure::bugs`] switched on by the caller: only a bug-zoo build can).
    pub fn sim_options(&self, mut protocol: Config) -> Result<SimOptions, String> {
        if self.version != Self::VERSION {
            return Err(format!(
                "saved failure has format version {}, this build reads {}",
                self.version,
                Self::VERSION
            ));
        }
        protocol.pre_vote = self.options.pre_vote;
        protocol.check_quorum = self.options.check_quorum;
        protocol.max_batch = self.options.max_batch;
        protocol.empty_heartbeats = self.options.empty_heartbeats;
        let opts = SimOptions {
            seed: self.seed,
            servers: self.options.servers,
            clients: self.options.clients,
            ops: self.options.ops,
            pipeline: self.options.pipeline,
            mid_step: self.options.mid_step,
            crashes: self.options.crashes,
            settle_steps: self.schedule.profile.settle_steps.max(1),
            protocol,
            ..SimOptions::default()
        };
        let want = self.bugs()?;
        if opts.bugs() != want {
            return Err(format!(
                "the saved schedule needs bugs {:?} switched on, the configuration has {:?}",
                self.options.bugs,
                opts.bugs().iter().map(|b| b.name()).collect::<Vec<_>>()
            ));
        }
        opts.validate()?;
        Ok(opts)
    }
}

fn saved(
    protocol: &str,
    opts: &SimOptions,
    command: String,
    schedule: Schedule,
    violation: Violation,
) -> SavedFailure {
    SavedFailure {
        version: SavedFailure::VERSION,
        protocol: protocol.to_string(),
        options: SavedOptions {
            servers: opts.servers,
            clients: opts.clients,
            ops: opts.ops,
            pipeline: opts.pipeline,
            mid_step: opts.mid_step,
            crashes: opts.crashes,
            pre_vote: opts.protocol.pre_vote,
            check_quorum: opts.protocol.check_quorum,
            max_batch: opts.protocol.max_batch,
            empty_heartbeats: opts.protocol.empty_heartbeats,
            bugs: opts.bugs().iter().map(|b| b.name().to_string()).collect(),
        },
        seed: opts.seed,
        command,
        schedule,
        violation,
    }
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
    if let Err(e) = opts.validate() {
        panic!("invalid simulation options: {e}");
    }
    let mut model = sim_model::<R>(opts);
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
    let command = format!("paxraft simulate {} {}", R::NAME, opts.flags());
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

/// Replay `saved` on a cluster of `R` configured by `opts` (from [`SavedFailure::sim_options`]).
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
    let mut model = sim_model::<R>(opts);
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
