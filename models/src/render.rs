//! Counterexamples, readably: one step per line of a message-sequence chart with one column
//! per actor. The same [`Trace`] feeds the terminal chart ([`Trace::chart`]) and the SVG the
//! report draws.

use std::fmt::Write;

use paxraft_impls::Replica;
use stateright::actor::{ActorModelAction, Id};
use stateright::Path;

use crate::checked::{ActorAction, CheckAction, CheckModel, CheckState};
use crate::model::{ClusterModel, ClusterState, Cmd, Msg, Timer};

/// One step: who acted, who received (for a delivery), and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Column of the acting actor (the sender, for a delivery).
    pub actor: usize,
    /// Column of the recipient of a delivery.
    pub to: Option<usize>,
    /// What happened, one line.
    pub label: String,
}

/// A counterexample (or example) path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The property it is about.
    pub property: String,
    /// Column names: servers `n0..`, clients `c0..`.
    pub actors: Vec<String>,
    /// The steps, in order. A crash between two effects of one step is drawn as two (the
    /// step, then the crash), so there can be more steps than actions.
    pub steps: Vec<Step>,
    /// Model actions on the path: its depth in the checker's terms.
    pub actions: usize,
    /// A one-line explanation of what is wrong in the last state, when one is known.
    pub explanation: Option<String>,
}

/// Column names: servers `n0..`, clients `c0..`, and the lock service's storage `st`.
fn actor_names(cfg: &crate::model::ModelConfig) -> Vec<String> {
    let storage = (cfg.service == crate::model::Service::Lock).then(|| "st".to_string());
    (0..cfg.servers)
        .map(|i| format!("n{i}"))
        .chain((0..cfg.clients).map(|c| format!("c{c}")))
        .chain(storage)
        .collect()
}

fn short(s: String) -> String {
    const MAX: usize = 90;
    if s.chars().count() > MAX {
        let mut t: String = s.chars().take(MAX - 1).collect();
        t.push('…');
        t
    } else {
        s
    }
}

fn msg_label<M: std::fmt::Debug>(msg: &Msg<M>) -> String {
    match msg {
        Msg::Peer(m) => format!("{m:?}"),
        Msg::Request(cmd) => format!("request #{} {:?}", cmd.seq, cmd.op),
        Msg::Reply { seq, answer } => format!("reply #{seq} {answer:?}"),
        Msg::Write { lock, token } => format!("write lock {lock} token {token}"),
        Msg::Busy { seq } => format!("busy #{seq}"),
        Msg::Redirect { seq, leader } => match leader {
            Some(l) => format!("redirect #{seq} to {l}"),
            None => format!("redirect #{seq} (no leader known)"),
        },
    }
}

/// A path of the model, as the checkers report it.
pub type ModelPath<R> = Path<ClusterState<R>, ActorAction<R>>;

fn step_of<R: Replica<Cmd>>(cfg: &crate::model::ModelConfig, a: &ActorAction<R>) -> Step {
    let col = |id: Id| usize::from(id);
    match a {
        ActorModelAction::Deliver { src, dst, msg } => Step {
            actor: col(*src),
            to: Some(col(*dst)),
            label: short(msg_label(msg)),
        },
        ActorModelAction::Drop(env) => Step {
            actor: col(env.src),
            to: None,
            label: short(format!(
                "lost to {}: {}",
                actor_names(cfg)[col(env.dst)],
                msg_label(&env.msg)
            )),
        },
        ActorModelAction::Timeout(id, Timer::Replica(t)) => Step {
            actor: col(*id),
            to: None,
            label: format!("{t:?} timer fires"),
        },
        ActorModelAction::Timeout(id, Timer::Admin(k)) => Step {
            actor: col(*id),
            to: None,
            label: match cfg.changes.get(usize::from(*k)) {
                Some(change) => format!("operator asks {change}"),
                None => format!("operator asks change {k}"),
            },
        },
        ActorModelAction::Timeout(id, Timer::Retry) => Step {
            actor: col(*id),
            to: None,
            label: "retry timer fires".into(),
        },
        ActorModelAction::Crash(id) => Step {
            actor: col(*id),
            to: None,
            label: "crashes".into(),
        },
        ActorModelAction::Recover(id) => Step {
            actor: col(*id),
            to: None,
            label: "restarts from its durable state".into(),
        },
        ActorModelAction::SelectRandom { actor, .. } => Step {
            actor: col(*actor),
            to: None,
            label: "random choice".into(),
        },
    }
}

fn trace<R: Replica<Cmd>>(
    setup: &crate::model::Setup<R>,
    actions: usize,
    steps: Vec<Step>,
    last: &ClusterState<R>,
    property: &str,
) -> Trace {
    let cfg = &setup.cfg;
    Trace {
        property: property.to_string(),
        actors: actor_names(cfg),
        steps,
        actions,
        explanation: explain(setup, last),
    }
}

/// Turn a path of the actor model (the fault-schedule search's) into a [`Trace`] about
/// `property`.
pub fn trace_of<R: Replica<Cmd>>(
    model: &ClusterModel<R>,
    path: &ModelPath<R>,
    property: &str,
) -> Trace {
    let steps = path
        .clone()
        .into_actions()
        .iter()
        .map(|a| step_of::<R>(&model.cfg.cfg, a))
        .collect();
    let actions = path.clone().into_actions().len();
    trace(&model.cfg, actions, steps, path.last_state(), property)
}

/// Turn a path of the checked model into a [`Trace`] about `property`. A crash between two
/// effects of a step is drawn as the step, then the crash.
pub(crate) fn trace_of_checked<R: Replica<Cmd>>(
    model: &CheckModel<R>,
    path: &Path<CheckState<R>, CheckAction<R>>,
    property: &str,
) -> Trace {
    trace_of_actions(
        model,
        &path.clone().into_actions(),
        path.last_state(),
        property,
    )
}

/// Turn the actions of a checked-model run and the state they led to into a [`Trace`] about
/// `property` (for runs stateright's `Path` cannot rebuild: a random walk's torn steps are
/// not among the actions its model enumerates).
pub fn trace_of_actions<R: Replica<Cmd>>(
    model: &CheckModel<R>,
    path_actions: &[CheckAction<R>],
    last: &CheckState<R>,
    property: &str,
) -> Trace {
    let cfg = &model.actors.cfg.cfg;
    let mut steps = Vec::new();
    let actions = path_actions.len();
    let mut clock = std::time::Duration::ZERO;
    for a in path_actions.iter().cloned() {
        match a {
            CheckAction::Step(a) => steps.push(step_of::<R>(cfg, &a)),
            CheckAction::CrashDuring { step, point } => {
                let first = step_of::<R>(cfg, &step);
                let server = first.to.unwrap_or(first.actor);
                steps.push(first);
                steps.push(Step {
                    actor: server,
                    to: None,
                    label: format!("crashes mid-step (at crash point {point}: later effects lost)"),
                });
            }
            CheckAction::Tick => {
                clock += cfg.tick;
                steps.push(Step {
                    actor: 0,
                    to: None,
                    label: format!("time passes: {clock:?}"),
                });
            }
            CheckAction::Drift { node, rate } => steps.push(Step {
                actor: node,
                to: None,
                label: format!("clock runs {rate}"),
            }),
        }
    }
    trace(&model.actors.cfg, actions, steps, last.cluster(), property)
}

/// Why the last state breaks a protocol invariant, when one of them says so.
fn explain<R: Replica<Cmd>>(
    setup: &crate::model::Setup<R>,
    state: &ClusterState<R>,
) -> Option<String> {
    crate::model::with_invariant_view(setup, state, |replicas| {
        setup.cluster_invariants.iter().find_map(|inv| {
            (inv.check)(replicas)
                .err()
                .map(|e| format!("{}: {e}", inv.name))
        })
    })
    .or_else(|| {
        (!state.history.tester.is_consistent_history()).then(|| {
            format!(
                "the clients' history has no linearization: {:?}",
                state.history.tester
            )
        })
    })
}

trait Consistent {
    fn is_consistent_history(&self) -> bool;
}

impl<T: stateright::semantics::ConsistencyTester<Id, crate::model::ServiceSpec>> Consistent for T {
    fn is_consistent_history(&self) -> bool {
        self.is_consistent()
    }
}

impl Trace {
    /// The message-sequence chart for a terminal: a header of actor names, then one line per
    /// step with an arrow from sender to recipient (or a mark on the actor for a local
    /// event) followed by what happened.
    pub fn chart(&self) -> String {
        const W: usize = 6;
        let n = self.actors.len();
        let mut s = String::new();
        let mut head = String::from("     ");
        for a in &self.actors {
            let _ = write!(head, "{a:<W$}");
        }
        let _ = writeln!(s, "{}", head.trim_end());
        for (k, step) in self.steps.iter().enumerate() {
            let mut line: Vec<char> = vec![' '; n * W];
            for c in 0..n {
                line[c * W] = '|';
            }
            match step.to {
                Some(to) if to != step.actor => {
                    let (a, b) = (step.actor.min(to) * W, step.actor.max(to) * W);
                    for ch in &mut line[a + 1..b] {
                        *ch = '-';
                    }
                    if to > step.actor {
                        line[b - 1] = '>';
                        line[a] = '*';
                    } else {
                        line[a + 1] = '<';
                        line[b] = '*';
                    }
                }
                _ => line[step.actor * W] = 'X',
            }
            let row: String = line.into_iter().collect();
            let who = match step.to {
                Some(to) => format!("{}→{}", self.actors[step.actor], self.actors[to]),
                None => self.actors[step.actor].clone(),
            };
            let _ = writeln!(s, "{:>3}. {}  {who}: {}", k + 1, row.trim_end(), step.label);
        }
        if let Some(e) = &self.explanation {
            let _ = writeln!(s, "     => {e}");
        }
        s
    }
}
