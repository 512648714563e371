//! Attribution: a caught bug's counterexample, replayed with the bug switched off, must pass.
//! A counterexample that also fails without the bug shows a weakness of the clean protocol or
//! of the check (a false attribution), not the bug.
//!
//! The rules:
//! * **A model checker's counterexample** (an action path) is replayed action by action on the
//!   checked model of the same configuration with the bug off, checking every
//!   always-property in the initial state and after every action taken. Sometimes-properties
//!   are examples the search looks for, not requirements, and are not checked. An action the
//!   clean model does not offer in the state reached (the clean protocol never sent that
//!   message, or a bound of the configuration cuts the state), or that changes nothing there
//!   (the recipient ignores the message), is skipped and counted; the replay goes on from the
//!   same state with the next action. So every state the replay reaches is checked, and a
//!   counterexample whose steps all depend on the bug replays as a clean prefix with the rest
//!   skipped. (The zoo's clean half already explores the clean model exhaustively to the
//!   counterexample's length; the replay is the pointed check of this one trace.)
//! * **A fault-schedule search's shrunk schedule** is rerun whole, same choices and same
//!   fault profile, on the same options with the bug off: every always-property after every
//!   step, the end-of-run checks (linearizability), and the run must *settle*: within the
//!   schedule's settling budget every op answered and every server agreed, as the search
//!   demands of every run. A clean protocol settles after the faults stop; one that does not
//!   within the same budget is reported not clean (property `settles`, with what is still
//!   missing). A choice means "the k-th action of this kind" in whatever state the run is in,
//!   so the clean rerun follows the same schedule but not step for step the buggy run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use paxraft_impls::Replica;
use paxraft_models::checked::{CheckAction, CheckModel};
use paxraft_models::Cmd;
use stateright::{Expectation, Model};

use crate::results::{CleanReplay, ReplayFailure, ReplayKind};
use crate::simulate::cluster::Replayed;
use crate::simulate::executor::NO_PANIC;

/// Replay `path` (a counterexample's actions from the initial state) on `model`, checking every
/// always-property of `model` in every state reached; see the module doc for the rules.
pub fn replay_path<R: Replica<Cmd>>(model: &CheckModel<R>, path: &[CheckAction<R>]) -> CleanReplay {
    let start = Instant::now();
    let always: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .collect();
    let mut replay = CleanReplay {
        kind: ReplayKind::Path,
        steps: 0,
        skipped: 0,
        failure: None,
        seconds: 0.0,
    };
    // The action being replayed (0: the initial state), for a panic's step.
    let mut at = 0;
    // A panic (a protocol assertion) is a failure of the clean protocol like any other.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let check = |state: &_| {
            always
                .iter()
                .find(|p| !(p.condition)(model, state))
                .map(|p| p.name)
        };
        let mut state = model
            .init_states()
            .into_iter()
            .next()
            .expect("a model has an initial state");
        if let Some(name) = check(&state) {
            return Some((name.to_string(), 0));
        }
        let mut offered = Vec::new();
        for (k, action) in path.iter().enumerate() {
            at = k + 1;
            offered.clear();
            model.actions(&state, &mut offered);
            let next = offered
                .contains(action)
                .then(|| model.next_state(&state, action.clone()))
                .flatten();
            let Some(next) = next else {
                replay.skipped += 1;
                continue;
            };
            state = next;
            replay.steps += 1;
            if let Some(name) = check(&state) {
                return Some((name.to_string(), at));
            }
        }
        None
    }));
    replay.failure = match outcome {
        Ok(None) => None,
        Ok(Some((property, step))) => Some(ReplayFailure {
            property,
            step,
            detail: String::new(),
        }),
        Err(e) => Some(ReplayFailure {
            property: NO_PANIC.into(),
            step: at,
            detail: crate::panic_message(&*e),
        }),
    };
    replay.seconds = start.elapsed().as_secs_f64();
    replay
}

/// A schedule's rerun with the bug off ([`crate::simulate::cluster::replay_checking`]) in the
/// report's form.
pub fn schedule_verdict(replayed: &Replayed, seconds: f64) -> CleanReplay {
    CleanReplay {
        kind: ReplayKind::Schedule,
        steps: replayed.steps,
        skipped: 0,
        failure: replayed.violation.as_ref().map(|v| ReplayFailure {
            property: v.property.clone(),
            step: v.step,
            detail: v.detail.clone(),
        }),
        seconds,
    }
}
