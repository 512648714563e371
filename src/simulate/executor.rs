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

//!
//! Two network behaviours need the executor's help to stay faithful over long runs:
//! * on a *duplicating* network (`Executor::duplicating`) a delivered message stays in
//!   flight; the executor removes it right after the delivery (with the model's drop of the
//!   same envelope) unless the schedule asks for a duplicate, so duplicates are a fault the
//!   schedule controls rather than the norm;
//! * a message its recipient ignores is a no-op for stateright and would otherwise stay in
//!   flight for ever (`Executor::consume_ignored`): the executor consumes it, as a real
//!   network would have delivered it and the recipient dropped it.
//!
//! Those bookkeeping drops are kept in the path (replaying needs them) and listed in
//! [`Outcome::consumed`], so traces can hide them and step counts exclude them.

use std::cell::RefCell;
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::SETTLES;
use paxraft_models::checked::CheckAction;
use serde::{Deserialize, Serialize};
use stateright::actor::{ActorModelAction, Envelope};
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
    /// Crash `node`.
    Crash { node: usize },
    /// Restart crashed `node`.
    Recover { node: usize },
    /// Anything else (random choices).
    Other,
}

/// Models whose actions can be classified. Implemented for every stateright actor model.
pub trait Classify: Sized {
    /// The kind of this action.
    fn class(&self) -> Class;
    /// For a delivery: the action that takes the same message off the network without
    /// delivering it, if the model has one (stateright's lossy networks do).
    fn consume(&self) -> Option<Self> {
        None
    }
    /// For a delivery to or a timer of a server: the same step torn by a crash at crash
    /// point `point` of its effects (the effects before it carried out, then the server
    /// crashes), if the model can tear steps. The model refuses (`next_state` gives `None`)
    /// when the step has no such point.
    fn tear(&self, _point: usize) -> Option<Self> {
        None
    }
}

impl<M: Clone, T, R> Classify for ActorModelAction<M, T, R> {
    fn class(&self) -> Class {
        match self {
            ActorModelAction::Deliver { src, dst, .. } => Class::Deliver {
                src: usize::from(*src),
                dst: usize::from(*dst),
            },
            ActorModelAction::Drop(_) => Class::Drop,
            ActorModelAction::Timeout(id, _) => Class::Timeout {
                node: usize::from(*id),
            },
            ActorModelAction::Crash(id) => Class::Crash {
                node: usize::from(*id),
            },
            ActorModelAction::Recover(id) => Class::Recover {
                node: usize::from(*id),
            },
            ActorModelAction::SelectRandom { .. } => Class::Other,
        }
    }

    fn consume(&self) -> Option<Self> {
        match self {
            ActorModelAction::Deliver { src, dst, msg } => Some(ActorModelAction::Drop(Envelope {
                src: *src,
                dst: *dst,
                msg: msg.clone(),
            })),
            _ => None,
        }
    }
}

impl<R: paxraft_impls::Replica<paxraft_models::Cmd>> Classify for CheckAction<R> {
    fn class(&self) -> Class {
        match self {
            CheckAction::Step(a) => a.class(),
            CheckAction::CrashDuring { step, .. } => match step.class() {
                Class::Deliver { dst: node, .. } | Class::Timeout { node } => Class::Crash { node },
                _ => Class::Other,
            },
        }
    }

    fn consume(&self) -> Option<Self> {
        match self {
            CheckAction::Step(a) => a.consume().map(CheckAction::Step),
            CheckAction::CrashDuring { .. } => None,
        }
    }

    fn tear(&self, point: usize) -> Option<Self> {
        match self {
            CheckAction::Step(a)
                if matches!(a.class(), Class::Deliver { .. } | Class::Timeout { .. }) =>
            {
                Some(CheckAction::CrashDuring {
                    step: a.clone(),
                    point,
                })
            }
            _ => None,
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
    /// Deliveries that leave their message in flight, to be delivered again (duplicating
    /// networks only).
    #[serde(default)]
    pub dup_pct: u8,
    /// Partition windows.
    pub partitions: Vec<Partition>,
    /// Bound on the settling phase.
    pub settle_steps: usize,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            loss_pct: 5,
            crash_pct: 2,
            timeout_pct: 15,
            dup_pct: 0,
            partitions: Vec::new(),
            settle_steps: 2_000,
        }
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
    /// The always-property that failed, an end-of-run check's name, or [`SETTLES`] when the
    /// run did not settle.
    pub property: String,
    /// Steps taken when it failed (path entries, 1-based).
    pub step: usize,
    /// The phase it failed in.
    pub phase: Phase,
    /// What an end-of-run check said (empty for per-step properties).
    #[serde(default)]
    pub detail: String,
}

/// What the faults of a run (or a search) actually did: the vacuity guard of a fault test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Messages delivered.
    pub deliveries: u64,
    /// Deliveries that left their message in flight (duplicating networks).
    pub duplicates: u64,
    /// Deliveries the recipient ignored (consumed).
    pub ignored: u64,
    /// Messages lost.
    pub drops: u64,
    /// Timers fired.
    pub timeouts: u64,
    /// Crashes (torn steps included).
    pub crashes: u64,
    /// Crashes that fell between two effects of a step ([`Classify::tear`]).
    #[serde(default)]
    pub torn: u64,
    /// Restarts.
    pub recovers: u64,
    /// Faulty steps during which a partition held back at least one message.
    pub held: u64,
}

impl Stats {
    /// Add `o` to these.
    pub fn add(&mut self, o: &Stats) {
        self.deliveries += o.deliveries;
        self.duplicates += o.duplicates;
        self.ignored += o.ignored;
        self.drops += o.drops;
        self.timeouts += o.timeouts;
        self.crashes += o.crashes;
        self.torn += o.torn;
        self.recovers += o.recovers;
        self.held += o.held;
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome<A> {
    /// The actions taken, in order (replaying them from the initial state reproduces the run).
    pub path: Vec<A>,
    /// Indices in `path` of the executor's bookkeeping drops (see the module doc): not
    /// faults, not steps.
    pub consumed: Vec<usize>,
    /// Steps in the faulty phase (path entries).
    pub faulty_steps: usize,
    /// The violation, if any.
    pub violation: Option<Violation>,
    /// What the run's faults did.
    pub stats: Stats,
    /// Choices of the schedule the faulty phase used (the rest cannot matter).
    pub choices_used: usize,
}

impl<A> Outcome<A> {
    /// Steps taken: path entries that are not bookkeeping.
    pub fn steps(&self) -> usize {
        self.path.len() - self.consumed.len()
    }
}

/// The liveness condition a run must meet once it has settled.
pub type Settled<'m, M> = Box<dyn Fn(&M, &<M as Model>::State) -> bool + 'm>;

/// Says, for a run that did not settle, what is still missing.
pub type WhyUnsettled<'m, M> = Box<dyn Fn(&M, &<M as Model>::State) -> String + 'm>;

/// A check made once at the end of a run, over the last state and the whole path.
pub type EndCheck<'m, M> =
    Box<dyn Fn(&M, &<M as Model>::State, &[<M as Model>::Action]) -> Result<(), String> + 'm>;

type Condition<M> = fn(&M, &<M as Model>::State) -> bool;

/// Says which timer actions the settling phase fires only when nothing else can happen.
pub type QuietTimer<'m, M> =
    Box<dyn Fn(&M, &<M as Model>::State, &<M as Model>::Action) -> bool + 'm>;

/// Runs schedules on a model.
pub struct Executor<'m, M: Model> {
    model: &'m M,
    /// Always-properties checked after every step (the model's, less the skipped ones).
    always: Vec<(&'static str, Condition<M>)>,
    /// Always-properties not checked after every step (e.g. a linearizability tester too
    /// slow for long histories, checked once at the end by the caller instead).
    skip: Vec<&'static str>,
    settled: Settled<'m, M>,
    why_unsettled: Option<WhyUnsettled<'m, M>>,
    end_checks: Vec<(&'static str, EndCheck<'m, M>)>,
    duplicating: bool,
    consume_ignored: bool,
    tears: bool,
    quiet: Option<QuietTimer<'m, M>>,
    /// A panic caught in the model or a property during the current run.
    panicked: RefCell<Option<String>>,
}

/// The property a panic in the model (a protocol assertion) or in a property counts against.
pub const NO_PANIC: &str = "no panic";

impl<M: Model> Debug for Executor<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("skip", &self.skip)
            .field(
                "end_checks",
                &self.end_checks.iter().map(|c| c.0).collect::<Vec<_>>(),
            )
            .field("duplicating", &self.duplicating)
            .field("consume_ignored", &self.consume_ignored)
            .finish()
    }
}

/// How a delivery went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Once,
    Kept,
    Ignored,
}

/// One executed step: the path entries it adds (`true`: bookkeeping) and the state after.
struct Stepped<A, S> {
    entries: Vec<(A, bool)>,
    state: S,
    delivered: Option<Delivered>,
}

impl<'m, M> Executor<'m, M>
where
    M: Model,
    M::Action: Classify + Clone,
{
    /// An executor for `model`; `settled` is the liveness condition checked after settling.
    pub fn new(model: &'m M, settled: impl Fn(&M, &M::State) -> bool + 'm) -> Self {
        let always = model
            .properties()
            .into_iter()
            .filter(|p| matches!(p.expectation, Expectation::Always))
            .map(|p| (p.name, p.condition))
            .collect();
        Executor {
            model,
            always,
            skip: Vec::new(),
            settled: Box::new(settled),
            why_unsettled: None,
            end_checks: Vec::new(),
            duplicating: false,
            consume_ignored: false,
            tears: false,
            quiet: None,
            panicked: RefCell::new(None),
        }
    }

    /// Do not check these always-properties after every step.
    pub fn skip(mut self, names: &[&'static str]) -> Self {
        self.skip.extend_from_slice(names);
        self.always.retain(|(n, _)| !names.contains(n));
        self
    }

    /// Check `check` once at the end of every run that had no other violation; an `Err` is a
    /// violation of property `name` with the error as its detail.
    pub fn end_check(
        mut self,
        name: &'static str,
        check: impl Fn(&M, &M::State, &[M::Action]) -> Result<(), String> + 'm,
    ) -> Self {
        self.end_checks.push((name, Box::new(check)));
        self
    }

    /// Describe, for a run that did not settle, what is still missing (the violation's detail).
    pub fn why_unsettled(mut self, why: impl Fn(&M, &M::State) -> String + 'm) -> Self {
        self.why_unsettled = Some(Box::new(why));
        self
    }

    /// The model's network keeps delivered messages (see the module doc).
    pub fn duplicating(mut self) -> Self {
        self.duplicating = true;
        self
    }

    /// Timers the settling phase holds back while anything else can happen: on a healthy
    /// network some timers would never run out (a follower's election timer, re-armed by
    /// every heartbeat of a live leader). Firing them anyway lets leader churn paper over a
    /// leader that stalls, which is the liveness bug the settling phase is there to catch.
    pub fn quiet_timers(mut self, quiet: impl Fn(&M, &M::State, &M::Action) -> bool + 'm) -> Self {
        self.quiet = Some(Box::new(quiet));
        self
    }

    /// Consume messages whose recipient ignores them (see the module doc).
    pub fn consume_ignored(mut self) -> Self {
        self.consume_ignored = true;
        self
    }

    /// Let crashes fall between two effects of a step at the crashing server
    /// ([`Classify::tear`]): half of the crash rolls (an independent bit of the choice) tear
    /// a delivery to it or one of its timers, cut at a crash point the choice picks (the
    /// nearest existing one below it). Only steps with effects of more than one kind have
    /// crash points; when the server has none pending, or the model cannot tear steps, the
    /// crash is whole ([`Stats::torn`] counts the torn ones: about one crash in six in the
    /// default `paxraft simulate` search).
    pub fn tear_crashes(mut self) -> Self {
        self.tears = true;
        self
    }

    /// The model.
    pub fn model(&self) -> &'m M {
        self.model
    }

    fn check(&self, state: &M::State) -> Option<String> {
        let found = catch_unwind(AssertUnwindSafe(|| {
            self.always
                .iter()
                .find(|(_, c)| !c(self.model, state))
                .map(|(n, _)| n.to_string())
        }));
        found.unwrap_or_else(|e| {
            *self.panicked.borrow_mut() = Some(crate::panic_message(&*e));
            Some(NO_PANIC.to_string())
        })
    }

    /// The next state, `None` for a no-op; a panic is caught, remembered, and ends the run.
    fn next(&self, state: &M::State, a: &M::Action) -> Option<M::State> {
        if self.panicked.borrow().is_some() {
            return None;
        }
        catch_unwind(AssertUnwindSafe(|| self.model.next_state(state, a.clone()))).unwrap_or_else(
            |e| {
                *self.panicked.borrow_mut() = Some(crate::panic_message(&*e));
                None
            },
        )
    }

    fn panic_violation(&self, steps: usize, phase: Phase) -> Option<Violation> {
        let detail = self.panicked.borrow_mut().take()?;
        Some(Violation {
            property: NO_PANIC.into(),
            step: steps,
            phase,
            detail,
        })
    }

    /// Take action `a`: a delivery (with its bookkeeping) or any other action. `None` when it
    /// cannot happen here or leaves the model's boundary.
    fn step(
        &self,
        state: &M::State,
        a: &M::Action,
        keep: bool,
    ) -> Option<Stepped<M::Action, M::State>> {
        let is_delivery = matches!(a.class(), Class::Deliver { .. });
        let stepped = match self.next(state, a) {
            Some(s1) if is_delivery && self.duplicating && !keep => {
                let c = a.consume()?;
                let s2 = self.next(&s1, &c)?;
                Stepped {
                    entries: vec![(a.clone(), false), (c, true)],
                    state: s2,
                    delivered: Some(Delivered::Once),
                }
            }
            Some(s1) => {
                let delivered = is_delivery.then_some(if self.duplicating {
                    Delivered::Kept
                } else {
                    Delivered::Once
                });
                Stepped {
                    entries: vec![(a.clone(), false)],
                    state: s1,
                    delivered,
                }
            }
            None if is_delivery && self.consume_ignored => {
                let c = a.consume()?;
                let s = self.next(state, &c)?;
                Stepped {
                    entries: vec![(c, true)],
                    state: s,
                    delivered: Some(Delivered::Ignored),
                }
            }
            None => return None,
        };
        self.model
            .within_boundary(&stepped.state)
            .then_some(stepped)
    }

    /// A crash of `node` that tears one of its steps (a delivery among `cands` or one of its
    /// timers, picked by `choice`) at a crash point `choice` picks; `None` when no step of
    /// `node` can be torn here.
    fn torn(
        &self,
        state: &M::State,
        actions: &[M::Action],
        cands: &[usize],
        node: usize,
        choice: u32,
    ) -> Option<Stepped<M::Action, M::State>> {
        let mine: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|&i| match actions[i].class() {
                Class::Deliver { dst, .. } => dst == node,
                Class::Timeout { node: n } => n == node,
                _ => false,
            })
            .collect();
        if mine.is_empty() {
            return None;
        }
        let first = (choice.wrapping_mul(0x85EB_CA6B) >> 8) as usize % mine.len();
        let top = (choice.wrapping_mul(0xC2B2_AE35) >> 24) as usize % 4;
        // The picked step, or the next one that can be torn (a step whose effects are all
        // of one kind has no crash point), at the picked point or the nearest one below.
        for k in 0..mine.len() {
            let a = &actions[mine[(first + k) % mine.len()]];
            for point in (0..=top).rev() {
                if let Some(s) = self.torn_at(state, a, point) {
                    return Some(s);
                }
            }
        }
        None
    }

    /// Step `a` torn at crash point `point`, if it has one.
    fn torn_at(
        &self,
        state: &M::State,
        a: &M::Action,
        point: usize,
    ) -> Option<Stepped<M::Action, M::State>> {
        let t = a.tear(point)?;
        let s1 = self.next(state, &t)?;
        let mut entries = vec![(t, false)];
        // On a duplicating network the delivered message stays in flight; consume it, as
        // after a whole delivery.
        let state = if self.duplicating && matches!(a.class(), Class::Deliver { .. }) {
            let c = a.consume()?;
            let s2 = self.next(&s1, &c)?;
            entries.push((c, true));
            s2
        } else {
            s1
        };
        self.model.within_boundary(&state).then_some(Stepped {
            entries,
            state,
            delivered: None,
        })
    }

    /// Take the first of `cands` (indices into `actions`), starting at `start` and wrapping,
    /// that can happen.
    fn first(
        &self,
        state: &M::State,
        actions: &[M::Action],
        cands: &[usize],
        start: usize,
        keep: bool,
    ) -> Option<Stepped<M::Action, M::State>> {
        (0..cands.len())
            .find_map(|k| self.step(state, &actions[cands[(start + k) % cands.len()]], keep))
    }

    fn record(stats: &mut Stats, class: Class, delivered: Option<Delivered>) {
        match (class, delivered) {
            (_, Some(Delivered::Once)) => stats.deliveries += 1,
            (_, Some(Delivered::Kept)) => {
                stats.deliveries += 1;
                stats.duplicates += 1;
            }
            (_, Some(Delivered::Ignored)) => stats.ignored += 1,
            (Class::Drop, None) => stats.drops += 1,
            (Class::Timeout { .. }, None) => stats.timeouts += 1,
            (Class::Crash { .. }, None) => stats.crashes += 1,
            (Class::Recover { .. }, None) => stats.recovers += 1,
            _ => {}
        }
    }

    /// Run `schedule` from the model's first initial state.
    pub fn run(&self, schedule: &Schedule) -> (Outcome<M::Action>, M::State) {
        let mut state = self
            .model
            .init_states()
            .into_iter()
            .next()
            .expect("a model has an initial state");
        let p = &schedule.profile;
        let mut out = Outcome {
            path: Vec::with_capacity(schedule.choices.len() + p.settle_steps),
            consumed: Vec::new(),
            faulty_steps: 0,
            violation: None,
            stats: Stats::default(),
            choices_used: 0,
        };
        self.panicked.borrow_mut().take();
        let mut actions = Vec::new();
        let mut classes = Vec::new();
        let (mut deliveries, mut drops, mut faults, mut timeouts, mut recovers) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut quiet = Vec::new();

        // Apply a step to the run; `Err(())` when it broke a property.
        let take = |out: &mut Outcome<M::Action>,
                    state: &mut M::State,
                    s: Stepped<M::Action, M::State>,
                    class: Class,
                    phase: Phase|
         -> Result<(), ()> {
            Self::record(&mut out.stats, class, s.delivered);
            for (a, bookkeeping) in s.entries {
                if bookkeeping {
                    out.consumed.push(out.path.len());
                }
                out.path.push(a);
            }
            *state = s.state;
            if let Some(property) = self.check(state) {
                out.violation = Some(Violation {
                    property,
                    step: out.path.len(),
                    phase,
                    detail: self.panicked.borrow_mut().take().unwrap_or_default(),
                });
                return Err(());
            }
            Ok(())
        };

        for (step, &choice) in schedule.choices.iter().enumerate() {
            out.choices_used = step + 1;
            actions.clear();
            self.model.actions(&state, &mut actions);
            if actions.is_empty() {
                break; // nothing can happen: the settling phase decides whether that is fine
            }
            classes.clear();
            classes.extend(actions.iter().map(|a| a.class()));
            for v in [&mut deliveries, &mut drops, &mut faults, &mut timeouts] {
                v.clear();
            }
            let mut held = false;
            for (i, c) in classes.iter().enumerate() {
                match *c {
                    Class::Deliver { src, dst } => {
                        if p.partitions.iter().any(|w| w.cuts(step, src, dst)) {
                            held = true;
                        } else {
                            deliveries.push(i);
                        }
                    }
                    Class::Drop => drops.push(i),
                    Class::Crash { .. } | Class::Recover { .. } => faults.push(i),
                    Class::Timeout { .. } => timeouts.push(i),
                    Class::Other => {}
                }
            }
            out.stats.held += u64::from(held);
            let roll = (choice % 100) as u8;
            let pick = (choice / 100) as usize;
            // An independent roll for duplication, from the same choice.
            let keep = ((choice.wrapping_mul(0x9E37_79B1) >> 16) % 100) < u32::from(p.dup_pct);
            let (l, c, t) = (
                p.loss_pct,
                p.loss_pct.saturating_add(p.crash_pct),
                p.loss_pct
                    .saturating_add(p.crash_pct)
                    .saturating_add(p.timeout_pct),
            );
            let order: [&Vec<usize>; 4] = if roll < l {
                [&drops, &deliveries, &timeouts, &faults]
            } else if roll < c {
                [&faults, &deliveries, &timeouts, &drops]
            } else if roll < t {
                [&timeouts, &deliveries, &drops, &faults]
            } else {
                [&deliveries, &timeouts, &drops, &faults]
            };
            // An independent roll for tearing a crash, from the same choice (0: never).
            let tear = self.tears && (choice.wrapping_mul(0x85EB_CA6B) >> 16) & 1 == 1;
            let mut torn = false;
            let picked = order.iter().filter(|v| !v.is_empty()).find_map(|v| {
                let start = pick % v.len();
                (0..v.len()).find_map(|k| {
                    let i = v[(start + k) % v.len()];
                    if let (true, Class::Crash { node }) = (tear, classes[i]) {
                        let steps: Vec<usize> =
                            deliveries.iter().chain(&timeouts).copied().collect();
                        if let Some(s) = self.torn(&state, &actions, &steps, node, choice) {
                            torn = true;
                            return Some((s, classes[i]));
                        }
                    }
                    self.step(&state, &actions[i], keep)
                        .map(|s| (s, classes[i]))
                })
            });
            out.stats.torn += u64::from(torn && picked.is_some());
            if let Some(v) = self.panic_violation(out.path.len(), Phase::Faulty) {
                out.violation = Some(v);
                out.faulty_steps = out.path.len();
                return (out, state);
            }
            let Some((s, class)) = picked else {
                break;
            };
            if take(&mut out, &mut state, s, class, Phase::Faulty).is_err() {
                out.faulty_steps = out.path.len();
                return (out, state);
            }
        }

        // Settle: no faults, every link healed, crashed servers restart. Deliver what is in
        // flight, in rotation so none starves; fire timers in rotation when nothing is in
        // flight (a healthy network is fast next to its timeouts: firing election timers
        // while a leader's messages are still on the way would depose it again and again),
        // and every 64th step anyway, so that stale leader hints bouncing a client between
        // servers cannot keep the network busy for ever.
        out.faulty_steps = out.path.len();
        let mut timer_turn = 0;
        let mut settled = false;
        for k in 0..p.settle_steps {
            if (self.settled)(self.model, &state) {
                settled = true;
                break;
            }
            actions.clear();
            self.model.actions(&state, &mut actions);
            classes.clear();
            classes.extend(actions.iter().map(|a| a.class()));
            deliveries.clear();
            timeouts.clear();
            quiet.clear();
            recovers.clear();
            for (i, c) in classes.iter().enumerate() {
                match c {
                    Class::Deliver { .. } => deliveries.push(i),
                    Class::Timeout { .. }
                        if self
                            .quiet
                            .as_ref()
                            .is_some_and(|q| q(self.model, &state, &actions[i])) =>
                    {
                        quiet.push(i)
                    }
                    Class::Timeout { .. } => timeouts.push(i),
                    Class::Recover { .. } => recovers.push(i),
                    _ => {}
                }
            }
            let timer_first = deliveries.is_empty() || k % 64 == 63;
            let next = if let Some(s) = self.first(&state, &actions, &recovers, 0, false) {
                Some((s, Class::Recover { node: 0 }))
            } else if timer_first {
                timer_turn += 1;
                self.first(&state, &actions, &timeouts, timer_turn, false)
                    .map(|s| (s, Class::Timeout { node: 0 }))
                    .or_else(|| {
                        self.first(&state, &actions, &deliveries, k, false)
                            .map(|s| (s, Class::Other))
                    })
            } else {
                self.first(&state, &actions, &deliveries, k, false)
                    .map(|s| (s, Class::Other))
                    .or_else(|| {
                        self.first(&state, &actions, &timeouts, timer_turn, false)
                            .map(|s| (s, Class::Timeout { node: 0 }))
                    })
            };
            // Held-back timers last: only when nothing else can happen.
            let next = next.or_else(|| {
                self.first(&state, &actions, &quiet, timer_turn, false)
                    .map(|s| (s, Class::Timeout { node: 0 }))
            });
            if let Some(v) = self.panic_violation(out.path.len(), Phase::Settling) {
                out.violation = Some(v);
                return (out, state);
            }
            let Some((s, class)) = next else { break };
            if take(&mut out, &mut state, s, class, Phase::Settling).is_err() {
                return (out, state);
            }
        }
        settled = settled || (self.settled)(self.model, &state);
        let fail = |property: &str, detail: String, steps: usize| Violation {
            property: property.to_string(),
            step: steps,
            phase: Phase::Settling,
            detail,
        };
        for (name, check) in &self.end_checks {
            if let Err(detail) = check(self.model, &state, &out.path) {
                out.violation = Some(fail(name, detail, out.path.len()));
                return (out, state);
            }
        }
        if !settled {
            out.violation = Some(fail(
                SETTLES,
                format!(
                    "not settled within {} fault-free steps{}",
                    p.settle_steps,
                    self.why_unsettled
                        .as_ref()
                        .map(|why| format!(": {}", why(self.model, &state)))
                        .unwrap_or_default()
                ),
                out.path.len(),
            ));
        }
        (out, state)
    }
}
