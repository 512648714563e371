//! Deep random walks of a stateright model, driven by a sequence of choices.
//!
//! Exhaustive search stops at small depths; real bugs often need long runs of faults. The
//! executor steps the *same* model the checker explores — its `actions` and `next_state` —
//! so every fault it injects is one the model allows, and checks every always-property after
//! every step. It does not use stateright's simulation checker (whose replayed paths can be
//! wrong in 0.31).
//!
//! A run is fully determined by a [`Schedule`]: a fault profile and a vector of `u32`
//! choices. Each choice picks the kind of step (deliver, drop, time out, crash or recover,
//! per the profile's rates) and then one action of that kind. That shape is what makes
//! proptest's shrinking useful: removing choices shortens the run, shrinking a choice towards
//! zero turns a fault into a plain delivery, and the result stays a valid schedule.
//!
//! After the faulty phase every run *settles*: partitions heal and no more faults are
//! injected; messages are delivered (and timers fired when nothing is in flight) for a
//! bounded number of steps, after which the caller's liveness predicate must hold. A run
//! that never settles is reported like a safety violation.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};
use stateright::actor::ActorModelAction;
use stateright::{Expectation, Model};

/// The kind of a model action, as far as fault injection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Deliver a message from actor `src` to actor `dst`.
    Deliver { src: usize, dst: usize },
    /// Lose a message (lossy networks only).
    Drop,
    /// Fire a timer of `node`.
    Timeout { node: usize },
    /// Crash or recover `node`.
    CrashRecover { node: usize },
    /// Anything else (random choices).
    Other,
}

/// Models whose actions can be classified. Implemented for every stateright actor model.
pub trait Classify {
    /// The kind of this action.
    fn class(&self) -> Class;
}

impl<M, T, R> Classify for ActorModelAction<M, T, R> {
    fn class(&self) -> Class {
        match self {
            ActorModelAction::Deliver { src, dst, .. } => {
                Class::Deliver { src: usize::from(*src), dst: usize::from(*dst) }
            }
            ActorModelAction::Drop(_) => Class::Drop,
            ActorModelAction::Timeout(id, _) => Class::Timeout { node: usize::from(*id) },
            ActorModelAction::Crash(id) | ActorModelAction::Recover(id) => {
                Class::CrashRecover { node: usize::from(*id) }
            }
            ActorModelAction::SelectRandom { .. } => Class::Other,
        }
    }
}

/// A window of steps during which the links between `side` and everyone else are cut:
/// messages across the cut wait (or are lost, on a lossy network) until it heals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// First step of the window.
    pub start: usize,
    /// Its length in steps.
    pub len: usize,
    /// Bitmask of the actor indices on one side.
    pub side: u64,
}

impl Partition {
    fn cuts(&self, step: usize, src: usize, dst: usize) -> bool {
        let active = step >= self.start && step < self.start.saturating_add(self.len);
        let a = src < 64 && self.side & (1 << src) != 0;
        let b = dst < 64 && self.side & (1 << dst) != 0;
        active && a != b
    }
}

/// How faulty the faulty phase is. Rates are percentages of steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultProfile {
    /// Steps that lose a message (when the network is lossy and something is in flight).
    pub loss_pct: u8,
    /// Steps that crash or recover a node (within the model's crash budget).
    pub crash_pct: u8,
    /// Steps that fire a timer.
    pub timeout_pct: u8,
    /// Partition windows.
    pub partitions: Vec<Partition>,
    /// Bound on the settling phase.
    pub settle_steps: usize,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile { loss_pct: 5, crash_pct: 2, timeout_pct: 15, partitions: Vec::new(), settle_steps: 2_000 }
    }
}

/// A replayable run: a profile and the choices that drive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Fault rates and partitions.
    pub profile: FaultProfile,
    /// One choice per faulty step.
    pub choices: Vec<u32>,
}

/// Which phase a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Faults injected per the profile.
    Faulty,
    /// Faults stopped, partitions healed.
    Settling,
}

/// A failed run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The always-property that failed, or `"settles"` when the run did not settle.
    pub property: String,
    /// Steps taken when it failed (1-based).
    pub step: usize,
    /// The phase it failed in.
    pub phase: Phase,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome<A> {
    /// The actions taken, in order (replaying them from the initial state reproduces the run).
    pub path: Vec<A>,
    /// Steps in the faulty phase.
    pub faulty_steps: usize,
    /// The violation, if any.
    pub violation: Option<Violation>,
}

/// The liveness condition a run must meet once it has settled.
pub type Settled<'m, M> = Box<dyn Fn(&M, &<M as Model>::State) -> bool + 'm>;

/// Runs schedules on a model.
pub struct Executor<'m, M: Model> {
    model: &'m M,
    /// Always-properties not checked after every step (e.g. a linearizability tester too
    /// slow for long histories, checked once at the end by the caller instead).
    skip: Vec<&'static str>,
    settled: Settled<'m, M>,
}

impl<M: Model> Debug for Executor<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("skip", &self.skip).finish()
    }
}

impl<'m, M> Executor<'m, M>
where
    M: Model,
    M::Action: Classify + Clone,
{
    /// An executor for `model`; `settled` is the liveness condition checked after settling.
    pub fn new(model: &'m M, settled: impl Fn(&M, &M::State) -> bool + 'm) -> Self {
        Executor { model, skip: Vec::new(), settled: Box::new(settled) }
    }

    /// Do not check these always-properties after every step.
    pub fn skip(mut self, names: &[&'static str]) -> Self {
        self.skip.extend_from_slice(names);
        self
    }

    fn check(&self, state: &M::State) -> Option<String> {
        self.model
            .properties()
            .into_iter()
            .filter(|p| matches!(p.expectation, Expectation::Always) && !self.skip.contains(&p.name))
            .find(|p| !(p.condition)(self.model, state))
            .map(|p| p.name.to_string())
    }

    /// Apply the first action, starting at `start` and wrapping, whose step is not a no-op.
    fn apply(&self, state: &M::State, cands: &[M::Action], start: usize) -> Option<(M::Action, M::State)> {
        (0..cands.len()).find_map(|k| {
            let a = cands[(start + k) % cands.len()].clone();
            self.model.next_state(state, a.clone()).map(|s| (a, s))
        })
    }

    /// Run `schedule` from the model's first initial state.
    pub fn run(&self, schedule: &Schedule) -> (Outcome<M::Action>, M::State) {
        let mut state = self.model.init_states().into_iter().next().expect("a model has an initial state");
        let mut path = Vec::with_capacity(schedule.choices.len() + schedule.profile.settle_steps);
        let mut actions = Vec::new();
        let p = &schedule.profile;
        let outcome = |path, faulty_steps, violation| Outcome { path, faulty_steps, violation };

        for (step, &choice) in schedule.choices.iter().enumerate() {
            actions.clear();
            self.model.actions(&state, &mut actions);
            if actions.is_empty() {
                break; // nothing can happen: the settling phase decides whether that is fine
            }
            let roll = (choice % 100) as u8;
            let pick = (choice / 100) as usize;
            let of = |f: &dyn Fn(Class) -> bool| -> Vec<M::Action> {
                actions.iter().filter(|a| f(a.class())).cloned().collect()
            };
            let deliveries = of(&|c| matches!(c, Class::Deliver { src, dst } if !p.partitions.iter().any(|w| w.cuts(step, src, dst))));
            let drops = of(&|c| c == Class::Drop);
            let crashes = of(&|c| matches!(c, Class::CrashRecover { .. }));
            let timeouts = of(&|c| matches!(c, Class::Timeout { .. }));
            let (l, c, t) = (p.loss_pct, p.loss_pct + p.crash_pct, p.loss_pct + p.crash_pct + p.timeout_pct);
            let order: [&Vec<M::Action>; 4] = if roll < l {
                [&drops, &deliveries, &timeouts, &crashes]
            } else if roll < c {
                [&crashes, &deliveries, &timeouts, &drops]
            } else if roll < t {
                [&timeouts, &deliveries, &drops, &crashes]
            } else {
                [&deliveries, &timeouts, &drops, &crashes]
            };
            let Some((a, next)) = order.iter().filter(|v| !v.is_empty()).find_map(|v| self.apply(&state, v, pick % v.len()))
            else {
                break;
            };
            path.push(a);
            state = next;
            if let Some(property) = self.check(&state) {
                let v = Violation { property, step: path.len(), phase: Phase::Faulty };
                return (outcome(path, step + 1, Some(v)), state);
            }
        }

        // Settle: no faults, every link healed. Deliver what is in flight, fire timers in
        // rotation, until the liveness condition holds or the bound runs out.
        let faulty_steps = path.len();
        for k in 0..p.settle_steps {
            if (self.settled)(self.model, &state) {
                return (outcome(path, faulty_steps, None), state);
            }
            actions.clear();
            self.model.actions(&state, &mut actions);
            let deliveries: Vec<M::Action> = actions.iter().filter(|a| matches!(a.class(), Class::Deliver { .. })).cloned().collect();
            let timeouts: Vec<M::Action> = actions.iter().filter(|a| matches!(a.class(), Class::Timeout { .. })).cloned().collect();
            // Rotate through deliveries so a duplicating network cannot starve the others;
            // every eighth step lets a timer fire even while messages are in flight, as time
            // would pass in a real network.
            let next = if k % 8 == 7 {
                self.apply(&state, &timeouts, k / 8).or_else(|| self.apply(&state, &deliveries, k))
            } else {
                self.apply(&state, &deliveries, k).or_else(|| self.apply(&state, &timeouts, k))
            };
            let Some((a, next)) = next else { break };
            path.push(a);
            state = next;
            if let Some(property) = self.check(&state) {
                let v = Violation { property, step: path.len(), phase: Phase::Settling };
                return (outcome(path, faulty_steps, Some(v)), state);
            }
        }
        let violation = (!(self.settled)(self.model, &state))
            .then(|| Violation { property: "settles".into(), step: path.len(), phase: Phase::Settling });
        (outcome(path, faulty_steps, violation), state)
    }
}
