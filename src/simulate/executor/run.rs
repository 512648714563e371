//! [`Executor::run`] in its phases: the faulty phase (one step per choice of the schedule),
//! the settling phase (no faults, until the liveness condition holds or its bound runs out),
//! and the end-of-run checks.

use stateright::Model;

use super::step::Stepped;
use super::{Class, Classify, Executor, FaultProfile, Outcome, Phase, Schedule, Stats, Violation};
use crate::simulate::SETTLES;

/// A step the phase picked, with its class for the statistics (`None`: nothing can happen).
type Picked<M> = Option<(Stepped<<M as Model>::Action, <M as Model>::State>, Class)>;

/// The run broke a property: its violation is in the outcome, and the run stops.
struct Violated;

/// The actions of one faulty step, sorted by kind: indices into the step's actions.
#[derive(Default)]
struct FaultyChoices {
    /// Deliveries no partition holds back.
    deliveries: Vec<usize>,
    /// Message losses.
    drops: Vec<usize>,
    /// Crashes and restarts.
    faults: Vec<usize>,
    /// Timers.
    timeouts: Vec<usize>,
}

/// The actions of one settling step, sorted by kind: indices into the step's actions.
#[derive(Default)]
struct SettlingChoices {
    /// Deliveries (every link is healed).
    deliveries: Vec<usize>,
    /// Timers fired in rotation.
    timeouts: Vec<usize>,
    /// Timers held back while anything else can happen ([`Executor::quiet_timers`]).
    quiet: Vec<usize>,
    /// Restarts of crashed servers.
    recovers: Vec<usize>,
}

impl<M> Executor<'_, M>
where
    M: Model,
    M::Action: Classify + Clone,
{
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
        let faulty = self.faulty_phase(schedule, &mut state, &mut out);
        out.faulty_steps = out.path.len();
        if faulty.is_err() {
            return (out, state);
        }
        let Ok(settling) = self.settling_phase(p, &mut state, &mut out) else {
            return (out, state);
        };
        self.end_of_run_checks(p, &state, &mut out, settling);
        (out, state)
    }

    /// Apply a step to the run and check the always-properties after it.
    fn take(
        &self,
        out: &mut Outcome<M::Action>,
        state: &mut M::State,
        s: Stepped<M::Action, M::State>,
        class: Class,
        phase: Phase,
    ) -> Result<(), Violated> {
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
            return Err(Violated);
        }
        Ok(())
    }

    /// One step per choice of the schedule, each a fault or a delivery as the profile's rates
    /// and the choice say; ends early when nothing can happen or nothing picked can.
    fn faulty_phase(
        &self,
        schedule: &Schedule,
        state: &mut M::State,
        out: &mut Outcome<M::Action>,
    ) -> Result<(), Violated> {
        let p = &schedule.profile;
        let mut actions = Vec::new();
        let mut classes = Vec::new();
        let mut kinds = FaultyChoices::default();
        for (step, &choice) in schedule.choices.iter().enumerate() {
            out.choices_used = step + 1;
            actions.clear();
            self.model.actions(state, &mut actions);
            if actions.is_empty() {
                break; // nothing can happen: the settling phase decides whether that is fine
            }
            classes.clear();
            classes.extend(actions.iter().map(|a| a.class()));
            let held = sort_faulty(p, step, &classes, &mut kinds);
            out.stats.held += u64::from(held);
            let (picked, torn) = self.pick_faulty(p, choice, state, &actions, &classes, &kinds);
            out.stats.torn += u64::from(torn && picked.is_some());
            if let Some(v) = self.panic_violation(out.path.len(), Phase::Faulty) {
                out.violation = Some(v);
                return Err(Violated);
            }
            let Some((s, class)) = picked else {
                break;
            };
            self.take(out, state, s, class, Phase::Faulty)?;
        }
        Ok(())
    }

    /// The step `choice` picks: its roll chooses the kind (loss, crash or restart, timer,
    /// delivery; the other kinds follow in a fixed order when there is none of it), the rest
    /// of it the action; also whether a crash tore a step (an independent bit of the choice).
    fn pick_faulty(
        &self,
        p: &FaultProfile,
        choice: u32,
        state: &M::State,
        actions: &[M::Action],
        classes: &[Class],
        kinds: &FaultyChoices,
    ) -> (Picked<M>, bool) {
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
        let k = kinds;
        let order: [&Vec<usize>; 4] = if roll < l {
            [&k.drops, &k.deliveries, &k.timeouts, &k.faults]
        } else if roll < c {
            [&k.faults, &k.deliveries, &k.timeouts, &k.drops]
        } else if roll < t {
            [&k.timeouts, &k.deliveries, &k.drops, &k.faults]
        } else {
            [&k.deliveries, &k.timeouts, &k.drops, &k.faults]
        };
        // An independent roll for tearing a crash, from the same choice (0: never).
        let tear = self.tears && (choice.wrapping_mul(0x85EB_CA6B) >> 16) & 1 == 1;
        let mut torn = false;
        let picked = order.iter().filter(|v| !v.is_empty()).find_map(|v| {
            let start = pick % v.len();
            (0..v.len()).find_map(|j| {
                let i = v[(start + j) % v.len()];
                if let (true, Class::Crash { node }) = (tear, classes[i]) {
                    let steps: Vec<usize> =
                        k.deliveries.iter().chain(&k.timeouts).copied().collect();
                    if let Some(s) = self.torn(state, actions, &steps, node, choice) {
                        torn = true;
                        return Some((s, classes[i]));
                    }
                }
                self.step(state, &actions[i], keep, Phase::Faulty)
                    .map(|s| (s, classes[i]))
            })
        });
        (picked, torn)
    }

    /// Settle: no faults, every link healed, crashed servers restart. Deliver what is in
    /// flight, in rotation so none starves; fire timers in rotation when nothing is in
    /// flight (a healthy network is fast next to its timeouts: firing election timers
    /// while a leader's messages are still on the way would depose it again and again),
    /// and anyway every 64th step, or every L-th with L messages in flight if more (a
    /// timeout outlasts the delivery of what is on the wire, say a promise in many chunks),
    /// so that stale leader hints bouncing a client between servers cannot keep the network
    /// busy for ever. No step is refused for the model's boundary here (see `step`). Says
    /// how the phase ended.
    fn settling_phase(
        &self,
        p: &FaultProfile,
        state: &mut M::State,
        out: &mut Outcome<M::Action>,
    ) -> Result<Settling, Violated> {
        let mut actions = Vec::new();
        let mut classes = Vec::new();
        let mut kinds = SettlingChoices::default();
        let mut timer_turn = 0;
        let mut since_forced = 0;
        for k in 0..p.settle_steps {
            if (self.settled)(self.model, state) {
                return Ok(Settling::Settled);
            }
            actions.clear();
            self.model.actions(state, &mut actions);
            classes.clear();
            classes.extend(actions.iter().map(|a| a.class()));
            self.sort_settling(state, &actions, &classes, &mut kinds);
            // Due every 64th step (as often as a stale hint can bounce a client), or every
            // L-th with L messages in flight if more.
            let timer_due = since_forced + 1 >= kinds.deliveries.len().max(64);
            since_forced = if timer_due { 0 } else { since_forced + 1 };
            let next = self.pick_settling(state, &actions, &kinds, k, timer_due, &mut timer_turn);
            if let Some(v) = self.panic_violation(out.path.len(), Phase::Settling) {
                out.violation = Some(v);
                return Err(Violated);
            }
            let Some((s, class)) = next else {
                return Ok(Settling::Stuck { after: k });
            };
            self.take(out, state, s, class, Phase::Settling)?;
        }
        Ok(if (self.settled)(self.model, state) {
            Settling::Settled
        } else {
            Settling::OutOfSteps
        })
    }

    /// Sort the settling step's actions by kind into `kinds`.
    fn sort_settling(
        &self,
        state: &M::State,
        actions: &[M::Action],
        classes: &[Class],
        kinds: &mut SettlingChoices,
    ) {
        kinds.deliveries.clear();
        kinds.timeouts.clear();
        kinds.quiet.clear();
        kinds.recovers.clear();
        for (i, c) in classes.iter().enumerate() {
            match c {
                Class::Deliver { .. } => kinds.deliveries.push(i),
                Class::Timeout { .. }
                    if self
                        .quiet
                        .as_ref()
                        .is_some_and(|q| q(self.model, state, &actions[i])) =>
                {
                    kinds.quiet.push(i)
                }
                Class::Timeout { .. } | Class::Time | Class::Drift => kinds.timeouts.push(i),
                Class::Recover { .. } => kinds.recovers.push(i),
                _ => {}
            }
        }
    }

    /// Settling step `k`'s pick: a restart first, then a delivery or a timer (timers first
    /// when nothing is in flight, or when `timer_due`), held-back timers last.
    fn pick_settling(
        &self,
        state: &M::State,
        actions: &[M::Action],
        kinds: &SettlingChoices,
        k: usize,
        timer_due: bool,
        timer_turn: &mut usize,
    ) -> Picked<M> {
        let timer_first = kinds.deliveries.is_empty() || timer_due;
        let next = if let Some(s) = self.first(state, actions, &kinds.recovers, 0, false) {
            Some((s, Class::Recover { node: 0 }))
        } else if timer_first {
            *timer_turn += 1;
            self.first(state, actions, &kinds.timeouts, *timer_turn, false)
                .map(|s| (s, Class::Timeout { node: 0 }))
                .or_else(|| {
                    self.first(state, actions, &kinds.deliveries, k, false)
                        .map(|s| (s, Class::Other))
                })
        } else {
            self.first(state, actions, &kinds.deliveries, k, false)
                .map(|s| (s, Class::Other))
                .or_else(|| {
                    self.first(state, actions, &kinds.timeouts, *timer_turn, false)
                        .map(|s| (s, Class::Timeout { node: 0 }))
                })
        };
        // Held-back timers last: only when nothing else can happen.
        next.or_else(|| {
            self.first(state, actions, &kinds.quiet, *timer_turn, false)
                .map(|s| (s, Class::Timeout { node: 0 }))
        })
    }

    /// The end-of-run checks, then the liveness verdict: a run that did not settle fails
    /// [`SETTLES`], with what is still missing.
    fn end_of_run_checks(
        &self,
        p: &FaultProfile,
        state: &M::State,
        out: &mut Outcome<M::Action>,
        settling: Settling,
    ) {
        let fail = |property: &str, detail: String, steps: usize| Violation {
            property: property.to_string(),
            step: steps,
            phase: Phase::Settling,
            detail,
        };
        for (name, check) in &self.end_checks {
            if let Err(detail) = check(self.model, state, &out.path) {
                out.violation = Some(fail(name, detail, out.path.len()));
                return;
            }
        }
        let unsettled = match settling {
            Settling::Settled => return,
            Settling::OutOfSteps => {
                format!("not settled within {} fault-free steps", p.settle_steps)
            }
            Settling::Stuck { after } => {
                format!("not settled: no step was possible after {after} fault-free steps")
            }
        };
        let why = self
            .why_unsettled
            .as_ref()
            .map(|why| format!(": {}", why(self.model, state)))
            .unwrap_or_default();
        out.violation = Some(fail(SETTLES, format!("{unsettled}{why}"), out.path.len()));
    }
}

/// How a run's settling phase ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Settling {
    /// The model's "settled" predicate held.
    Settled,
    /// Its step budget ran out first.
    OutOfSteps,
    /// No step was possible (nothing in flight, no timer that may fire) after `after` steps.
    Stuck { after: usize },
}

/// Sort faulty step `step`'s actions by kind into `kinds`, leaving out deliveries a partition
/// holds back; says whether it held back any.
fn sort_faulty(
    p: &FaultProfile,
    step: usize,
    classes: &[Class],
    kinds: &mut FaultyChoices,
) -> bool {
    for v in [
        &mut kinds.deliveries,
        &mut kinds.drops,
        &mut kinds.faults,
        &mut kinds.timeouts,
    ] {
        v.clear();
    }
    let mut held = false;
    for (i, c) in classes.iter().enumerate() {
        match *c {
            Class::Deliver { src, dst } => {
                if p.partitions.iter().any(|w| w.cuts(step, src, dst)) {
                    held = true;
                } else {
                    kinds.deliveries.push(i);
                }
            }
            Class::Drop => kinds.drops.push(i),
            Class::Crash { .. } | Class::Recover { .. } => kinds.faults.push(i),
            Class::Timeout { .. } | Class::Time | Class::Drift => kinds.timeouts.push(i),
            Class::Other => {}
        }
    }
    held
}
