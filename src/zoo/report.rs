//! The zoo's outcomes in the saved-results format of the report ([`ZooEntry`]).

use std::path::Path;

use paxraft_impls::Bug;

use super::run::Outcome;
use crate::results::{Results, Trace as SavedTrace, ZooEntry};

impl Outcome {
    /// The result in the report's format.
    pub fn entry(&self) -> ZooEntry {
        ZooEntry {
            code: self.entry.bug.code().into(),
            name: self.entry.bug.name().into(),
            protocol: self.entry.protocol.name().into(),
            caught: self.caught(),
            property: self.caught().then(|| self.entry.property.to_string()),
            trace_len: self.trace().map(|t| t.steps.len()),
            states: self.work(),
            seconds: self.seconds(),
            trace: self.trace().map(SavedTrace::from_model),
            clean_replay: self.clean_replay.clone(),
            provenance: Some(self.provenance.clone()),
        }
    }
}

/// Merge `outcomes` into `dir/data/zoo.json` (by bug), leaving the other results alone.
pub fn save(dir: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut results = Results::load(dir)?;
    for o in outcomes {
        let e = o.entry();
        match results.zoo.iter_mut().find(|z| z.code == e.code) {
            Some(z) => *z = e,
            None => results.zoo.push(e),
        }
    }
    let order = |code: &str| {
        Bug::ALL
            .iter()
            .position(|b| b.code() == code)
            .unwrap_or(usize::MAX)
    };
    results.zoo.sort_by_key(|z| order(&z.code));
    // Save the zoo part only: the other parts were loaded from disk and are left as they were.
    let zoo_only = Results {
        zoo: results.zoo,
        ..Results::default()
    };
    zoo_only.save(dir)
}
