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

mod classify;
mod run;
mod schedule;
mod step;

use std::cell::RefCell;
use std::fmt::Debug;

use stateright::{Expectation, Model};

pub use classify::{Class, Classify};
pub use schedule::{FaultProfile, Outcome, Partition, Phase, Schedule, Stats, Violation};

/// The liveness condition a run must meet once it has settled.
type Settled<'m, M> = Box<dyn Fn(&M, &<M as Model>::State) -> bool + 'm>;

/// Says, for a run that did not settle, what is still missing.
type WhyUnsettled<'m, M> = Box<dyn Fn(&M, &<M as Model>::State) -> String + 'm>;

/// A check made once at the end of a run, over the last state and the whole path; its error
/// is the violation's detail, as text (a [`Violation`] is saved and replayed as JSON).
type EndCheck<'m, M> =
    Box<dyn Fn(&M, &<M as Model>::State, &[<M as Model>::Action]) -> Result<(), String> + 'm>;

type Condition<M> = fn(&M, &<M as Model>::State) -> bool;

/// Says which timer actions the settling phase fires only when nothing else can happen.
type QuietTimer<'m, M> = Box<dyn Fn(&M, &<M as Model>::State, &<M as Model>::Action) -> bool + 'm>;

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
    pub fn end_check<E: std::fmt::Display>(
        mut self,
        name: &'static str,
        check: impl Fn(&M, &M::State, &[M::Action]) -> Result<(), E> + 'm,
    ) -> Self {
        self.end_checks.push((
            name,
            Box::new(move |m, s, path| check(m, s, path).map_err(|e| e.to_string())),
        ));
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
}
