//! An adversarial sweep of leader leases over [`crate::driver`]: every assignment of clock
//! rates, a range of waits, a lost renewal and a restarted follower (Ongaro's dissertation
//! §6.4.1; rule 6 of the effect contract). The scenario is the one a lease exists to survive:
//! the leader is cut off while its lease runs, the rest elect a new leader as soon as their
//! clocks allow and commit a write, and the old leader is asked to read. A read it serves
//! alone then misses the write: the driver reports "reads see every earlier commit".
//!
//! Used by the protocol scenarios (every protocol passes it; bugs B3 and B4 fail it) and by
//! the bug zoo as the detector of the lease bugs, which a random walk rarely times right.

use std::time::Duration;

use crate::driver::{Cluster, Violation};
use crate::lease::ClockRate;
use crate::replica::{Config, NodeId, Replica};

/// What one scenario ([`scenario`]) came to.
#[derive(Clone, Debug, Default)]
pub struct LeaseRun {
    /// A majority elected a new leader that committed a write.
    pub new_leader: bool,
    /// The cut-off old leader served the read asked after that, alone (from its lease).
    pub served_alone: bool,
    /// The first check the driver found broken.
    pub violation: Option<Violation>,
    /// The driver's trace of the scenario.
    pub trace: Vec<String>,
}

/// The faults of one scenario: the renewal lost on its way to n2, n1 restarted after it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// The heartbeat that renews the lease never reaches n2, so n2's election timer runs
    /// from the append before (n0 and n1 are a majority).
    pub lost_round: bool,
    /// n1 crashes and restarts right after it acknowledged the renewal.
    pub restart_n1: bool,
}

/// Every combination of [`Faults`].
pub const FAULTS: [Faults; 4] = [
    Faults {
        lost_round: false,
        restart_n1: false,
    },
    Faults {
        lost_round: true,
        restart_n1: false,
    },
    Faults {
        lost_round: false,
        restart_n1: true,
    },
    Faults {
        lost_round: true,
        restart_n1: true,
    },
];

/// The waits a sweep tries after the leader is cut off: 0 to 200 ms in 5 ms steps (past
/// the 150 ms election timeout at the slowest rate the tests use).
pub fn waits() -> impl Iterator<Item = Duration> {
    (0..=200).step_by(5).map(Duration::from_millis)
}

/// Every assignment of a clock rate to each of three nodes.
pub fn rate_assignments() -> Vec<[ClockRate; 3]> {
    let mut all = Vec::new();
    for a in ClockRate::ALL {
        for b in ClockRate::ALL {
            for c in ClockRate::ALL {
                all.push([a, b, c]);
            }
        }
    }
    all
}

/// One scenario on three nodes with `cfg` (leases on): n0 leads with clocks at `rates` (its
/// lease starts with its election), serves a read 70 ms after its last append and renews the
/// lease with the next heartbeat; it is then cut off. After `wait` of real time, n2 and n1
/// campaign as soon as their election timers are due; a new leader commits a write; then n0
/// is asked to read.
pub fn scenario<R: Replica<u32>>(
    cfg: &Config,
    rates: [ClockRate; 3],
    wait: Duration,
    faults: Faults,
) -> LeaseRun {
    let mut c = Cluster::<R, u32>::new(3, cfg.clone());
    c.record_violations = true;
    for (i, &r) in rates.iter().enumerate() {
        c.set_rate(i, r);
    }
    c.elect(0);
    c.propose(0, vec![1]);
    c.deliver_all();
    c.advance(Duration::from_millis(70));
    c.read(0, 1);
    c.deliver_all();
    // The read relied on the lease: the heartbeat renews it with a round.
    c.fire(0, R::heartbeat_timer());
    if faults.lost_round {
        c.drop_where(|e| e.to == NodeId(2));
    }
    c.deliver_all();
    c.partition(&[0]);
    if faults.restart_n1 {
        c.crash(1);
        c.restart(1);
    }
    c.advance(wait);
    let timer = R::election_timer();
    for _ in 0..2 {
        for j in [2, 1] {
            if c.due(j, timer) {
                c.fire(j, timer);
                c.deliver_all();
            }
        }
    }
    let mut run = LeaseRun::default();
    if let Some(&l) = c.leaders().iter().find(|&&l| l != 0) {
        c.propose(l, vec![2]);
        c.deliver_all();
        run.new_leader = c.applied(l) == [1, 2];
    }
    c.read(0, 2);
    run.served_alone = c.node(0).reads.iter().any(|&(id, _)| id == 2);
    run.violation = c.violation().cloned();
    run.trace = std::mem::take(&mut c.trace);
    run
}

/// What a whole sweep came to.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    /// Scenarios run (up to and including the first that failed).
    pub scenarios: usize,
    /// Scenarios in which the cut-off leader served a read alone.
    pub served_alone: usize,
    /// Scenarios in which a new leader committed a write.
    pub new_leader: usize,
    /// The first failing scenario: its rates, wait, faults and run.
    pub failure: Option<([ClockRate; 3], Duration, Faults, LeaseRun)>,
}

/// Run every scenario (rates x waits x faults: 4,428) with `cfg`, stopping at the first
/// that breaks a check.
pub fn sweep<R: Replica<u32>>(cfg: &Config) -> Sweep {
    let mut s = Sweep::default();
    for rates in rate_assignments() {
        for wait in waits() {
            for faults in FAULTS {
                let run = scenario::<R>(cfg, rates, wait, faults);
                s.scenarios += 1;
                s.served_alone += usize::from(run.served_alone);
                s.new_leader += usize::from(run.new_leader);
                if run.violation.is_some() {
                    s.failure = Some((rates, wait, faults, run));
                    return s;
                }
            }
        }
    }
    s
}
