//! One step of a run: taking an action with the executor's bookkeeping (consumed duplicates
//! and ignored messages), tearing a step with a crash, and catching panics of the model.

use std::panic::{catch_unwind, AssertUnwindSafe};

use stateright::Model;

use super::{Class, Classify, Executor, Phase, Stats, Violation, NO_PANIC};

/// How a delivery went.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivered {
    Once,
    Kept,
    Ignored,
}

/// One executed step: the path entries it adds (`true`: bookkeeping) and the state after.
pub(super) struct Stepped<A, S> {
    pub(super) entries: Vec<(A, bool)>,
    pub(super) state: S,
    pub(super) delivered: Option<Delivered>,
}

impl<'m, M> Executor<'m, M>
where
    M: Model,
    M::Action: Classify + Clone,
{
    pub(super) fn check(&self, state: &M::State) -> Option<String> {
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
    pub(super) fn next(&self, state: &M::State, a: &M::Action) -> Option<M::State> {
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

    pub(super) fn panic_violation(&self, steps: usize, phase: Phase) -> Option<Violation> {
        let detail = self.panicked.borrow_mut().take()?;
        Some(Violation {
            property: NO_PANIC.into(),
            step: steps,
            phase,
            detail,
        })
    }

    /// Take action `a`: a delivery (with its bookkeeping) or any other action. `None` when it
    /// cannot happen here or, in the faulty phase, leaves the model's boundary.
    ///
    /// The settling phase takes a step past the boundary: the boundary (the simulator's bound
    /// on messages in flight) is there to keep a faulty phase's garbage from piling up, and
    /// settling piles up nothing (it delivers in rotation, fires timers only when nothing or
    /// little is in flight, and is itself bounded by `settle_steps`). Refusing there turned
    /// any state whose every way forward sends a burst (a leader stepping down hands each
    /// command it queued back to its client at once) into a dead end, reported as a run that
    /// did not settle although nothing was stuck but the walk.
    pub(super) fn step(
        &self,
        state: &M::State,
        a: &M::Action,
        keep: bool,
        phase: Phase,
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
        (phase == Phase::Settling || self.model.within_boundary(&stepped.state)).then_some(stepped)
    }

    /// A crash of `node` that tears one of its steps (a delivery among `cands` or one of its
    /// timers, picked by `choice`) at a crash point `choice` picks; `None` when no step of
    /// `node` can be torn here.
    pub(super) fn torn(
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
    pub(super) fn torn_at(
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

    /// Settling: take the first of `cands` (indices into `actions`), starting at `start` and
    /// wrapping, that can happen.
    pub(super) fn first(
        &self,
        state: &M::State,
        actions: &[M::Action],
        cands: &[usize],
        start: usize,
        keep: bool,
    ) -> Option<Stepped<M::Action, M::State>> {
        (0..cands.len()).find_map(|k| {
            self.step(
                state,
                &actions[cands[(start + k) % cands.len()]],
                keep,
                Phase::Settling,
            )
        })
    }

    pub(super) fn record(stats: &mut Stats, class: Class, delivered: Option<Delivered>) {
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
}
