//! A run's inputs (its [`Schedule`]: fault profile and choices) and outputs (its
//! [`Outcome`]: path, violation, fault statistics).

use serde::{Deserialize, Serialize};

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
    /// Bitmask of the actors the partition splits; links to and from the others (clients,
    /// with leases) stay up, so a client can still reach a cut-off leader, as in Jepsen's
    /// partitions of the database nodes. Every actor when absent (schedules saved before).
    #[serde(default = "every_actor")]
    pub members: u64,
}

fn every_actor() -> u64 {
    u64::MAX
}

impl Partition {
    pub(super) fn cuts(&self, step: usize, src: usize, dst: usize) -> bool {
        let active = step >= self.start && step < self.start.saturating_add(self.len);
        let member = |i: usize| i < 64 && self.members & (1 << i) != 0;
        let a = src < 64 && self.side & (1 << src) != 0;
        let b = dst < 64 && self.side & (1 << dst) != 0;
        active && member(src) && member(dst) && a != b
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
    /// The always-property that failed, an end-of-run check's name, or
    /// [`SETTLES`](crate::simulate::SETTLES) when the run did not settle.
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
    /// Crashes that fell between two effects of a step ([`Classify::tear`](super::Classify::tear)).
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
