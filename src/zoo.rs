//! The bug zoo: every known bug of ../shared/BUGZOO.md with the smallest configuration that
//! exposes it, the property expected to catch it, and the runner that proves the checks have
//! teeth: with the bug switched on the expected property must fail (BFS: the shortest trace),
//! and the very same configuration with no bug must pass (no false alarm).
//!
//! The switches themselves live in the protocols ([`paxraft_impls::bugs`]) and the model's
//! server host (R10, B2), compiled only with the `bug-zoo` feature; [`bugs_compiled`] says
//! whether this build carries them.
//!
//! Bugs whose symptom is a lost liveness property that a state predicate cannot express
//! soundly in a model where timers fire at any moment are registered with a
//! [`Detector::Schedules`] detector: the fault-schedule search of [`crate::simulate`]
//! ([`crate::simulate::cluster::hunt_with`]), whose runs end with a fault-free settling phase and the `settles`
//! liveness check, with the bug on and then off.
//!
//! Attribution ([`replay`]): every caught bug's counterexample, the BFS trace or the shrunk
//! schedule, is replayed with the bug switched off and must pass; one that fails there too is a
//! false attribution and the bug counts as not shown ([`Outcome::ok`]).
//!
//! One concern per file: [`mod@registry`] (the table), [`mod@run`] (running an entry), [`replay`]
//! (attribution), [`report`] (the saved-results adapter).

pub mod registry;
pub mod replay;
pub mod report;
pub mod run;

pub use registry::{
    command, find, registry, Detector, ZooBug, MAX_TERMS_AHEAD, SETTLES, TERMS_STAY_LOW,
};
pub use report::save;
pub use run::{clean_runs, run, with_bug, Half, Outcome, Run, Verdict, MIN_CLEAN_RUNS};

/// Whether this build carries the bug switches (the `bug-zoo` cargo feature).
pub fn bugs_compiled() -> bool {
    paxraft_impls::bugs::COMPILED
}
