//! An adversarial sweep of leader leases over [`crate::driver`]: every assignment of clock
//! rates, a range of waits, a lost renewal, a restarted follower and a leadership transfer
//! (Ongaro's dissertation §6.4.1 and §3.10; rule 6 of the effect contract). The scenario is
//! the one a lease exists to survive: the leader is cut off while its lease runs, the rest
//! elect a new leader as soon as their clocks allow (or at once, when the leader handed its
//! leadership over) and commit a write, and the old leader is asked to read. A read it serves
//! alone then misses the write: the driver reports "reads see every earlier commit".
//!
//! Used by the protocol scenarios (every protocol passes it; bugs B3 to B6 fail it) and by
//! the bug zoo as the detector of the lease bugs, which a random walk rarely times right.
//!
//! The transfers are generic: the sweep asks for [`Change::Transfer`] and tells the message
//! that hands the leadership over (Raft's TimeoutNow, multi-Paxos's `Handoff`) by what it
//! does: delivered, it makes n1 write to n2, which a follower never does (it answers its
//! leader only) and a candidate does at once.

use std::time::Duration;

use crate::driver::{Cluster, Violation};
use crate::lease::ClockRate;
use crate::membership::{Change, ChangeError};
use crate::replica::{Config, NodeId, Replica};

/// What one scenario ([`scenario`]) came to.
#[derive(Clone, Debug, Default)]
pub struct LeaseRun {
    /// A majority elected a new leader that committed a write.
    pub new_leader: bool,
    /// The cut-off old leader served the read asked after that, alone (from its lease).
    pub served_alone: bool,
    /// The new leader was n1, elected by the campaign the old leader's handover started
    /// (with [`Handoff::Prompt`] or [`Handoff::Late`]), and committed the write.
    pub handed_over: bool,
    /// With [`Handoff::Late`]: n0 gave the transfer up while its handover was in flight.
    pub gave_up: bool,
    /// The first check the driver found broken.
    pub violation: Option<Violation>,
    /// The driver's trace of the scenario.
    pub trace: Vec<String>,
}

/// The faults of one scenario: the renewal lost on its way to n2, n1 restarted after it, a
/// leadership transfer to n1.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// The heartbeat that renews the lease never reaches n2, so n2's election timer runs
    /// from the append before (n0 and n1 are a majority).
    pub lost_round: bool,
    /// n1 crashes and restarts right after it acknowledged the renewal.
    pub restart_n1: bool,
    /// After the renewal n0 hands its leadership to n1 ([`Change::Transfer`]).
    pub handoff: Handoff,
}

/// How a scenario's leadership transfer goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// No transfer.
    None,
    /// n1 gets the handover message at once and campaigns; n0 is cut off before it hears.
    Prompt,
    /// The handover message is held in the network; n0 gives the transfer up after an
    /// election timeout, serves a read confirmed by a round, and only then does the message
    /// reach n1 (tikv/raft-rs#234); n0 is cut off as n1 campaigns.
    Late,
}

/// Every combination of [`Faults`] (12).
pub fn faults() -> Vec<Faults> {
    let mut all = Vec::new();
    for handoff in [Handoff::None, Handoff::Prompt, Handoff::Late] {
        for lost_round in [false, true] {
            for restart_n1 in [false, true] {
                all.push(Faults {
                    lost_round,
                    restart_n1,
                    handoff,
                });
            }
        }
    }
    all
}

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
/// lease with the next heartbeat; with a [`Handoff`] it then hands its leadership to n1; it is
/// then cut off. After `wait` of real time, n2 and n1 campaign as soon as their election
/// timers are due; a new leader commits a write; then n0 is asked to read.
pub fn scenario<R: Replica<u32>>(
    cfg: &Config,
    rates: [ClockRate; 3],
    wait: Duration,
    faults: Faults,
) -> LeaseRun {
    let mut run = LeaseRun::default();
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
    match faults.handoff {
        Handoff::None => {}
        Handoff::Prompt => {
            c.change(0, 1, Change::Transfer(NodeId(1)));
            deliver_holding_handoffs(&mut c);
            deliver_handoff(&mut c);
        }
        Handoff::Late => {
            c.change(0, 1, Change::Transfer(NodeId(1)));
            deliver_holding_handoffs(&mut c);
            // An election timeout passes (at the slowest clock the bound allows); n0's due
            // timers fire, the transfer's among them, with the handover still in flight.
            let slowest = cfg.election_timeout.end + cfg.clock_drift.unwrap_or_default();
            c.advance(slowest);
            let armed: Vec<R::Timer> = c.node(0).timers.iter().copied().collect();
            for t in armed {
                if c.due(0, t) {
                    c.fire(0, t);
                    deliver_holding_handoffs(&mut c);
                }
            }
            let gave_up = c
                .node(0)
                .changes
                .iter()
                .any(|(id, r)| *id == 1 && matches!(r, Err(ChangeError::TransferTimedOut(_))));
            run.gave_up = gave_up;
            if gave_up {
                // n0 leads on: a read confirms with a round (with B6 it renews the lease).
                c.read(0, 3);
                deliver_holding_handoffs(&mut c);
                deliver_handoff(&mut c);
            }
        }
    }
    c.partition(&[0]);
    if faults.restart_n1 {
        c.crash(1);
        c.restart(1);
    }
    // A campaign the handover started runs now.
    c.deliver_all();
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
    if let Some(&l) = c.leaders().iter().find(|&&l| l != 0) {
        c.propose(l, vec![2]);
        c.deliver_all();
        run.new_leader = c.applied(l) == [1, 2];
        run.handed_over = run.new_leader && l == 1 && faults.handoff != Handoff::None;
    }
    c.read(0, 2);
    run.served_alone = c.node(0).reads.iter().any(|&(id, _)| id == 2);
    run.violation = c.violation().cloned();
    run.trace = std::mem::take(&mut c.trace);
    run
}

/// Whether delivering message `k` would make n1 campaign: n1 would write to n2, which only a
/// candidate does (see the [module docs](self)).
fn hands_over<R: Replica<u32>>(c: &Cluster<R, u32>, k: usize) -> bool {
    c.net[k].to == NodeId(1) && c.peek_deliver(k).sends().any(|(to, _)| to == NodeId(2))
}

/// Deliver the oldest message held by [`deliver_holding_handoffs`], if any: n1 campaigns.
fn deliver_handoff<R: Replica<u32>>(c: &mut Cluster<R, u32>) {
    if let Some(k) = (0..c.net.len()).find(|&k| hands_over(c, k)) {
        c.deliver(k);
    }
}

/// Deliver the oldest message that does not hand the leadership over, until only those are
/// left in flight (they stay there).
fn deliver_holding_handoffs<R: Replica<u32>>(c: &mut Cluster<R, u32>) {
    // Bounded: with no timer fired, a 3-node exchange dies out in a few dozen deliveries.
    for _ in 0..1_000 {
        match (0..c.net.len()).find(|&k| !hands_over(c, k)) {
            Some(k) => c.deliver(k),
            None => return,
        }
    }
    panic!("the messages of a transfer did not die out");
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
    /// Scenarios in which the target of a transfer was elected by the handover and committed.
    pub handed_over: usize,
    /// Scenarios in which the leader gave a transfer up with its handover still in flight.
    pub gave_up: usize,
    /// The first failing scenario: its rates, wait, faults and run.
    pub failure: Option<([ClockRate; 3], Duration, Faults, LeaseRun)>,
}

/// Run every scenario (rates x waits x faults: 27 x 41 x 12 = 13,284) with `cfg`, stopping at
/// the first that breaks a check.
pub fn sweep<R: Replica<u32>>(cfg: &Config) -> Sweep {
    let mut s = Sweep::default();
    for rates in rate_assignments() {
        for wait in waits() {
            for faults in faults() {
                let run = scenario::<R>(cfg, rates, wait, faults);
                s.scenarios += 1;
                s.served_alone += usize::from(run.served_alone);
                s.new_leader += usize::from(run.new_leader);
                s.handed_over += usize::from(run.handed_over);
                s.gave_up += usize::from(run.gave_up);
                if run.violation.is_some() {
                    s.failure = Some((rates, wait, faults, run));
                    return s;
                }
            }
        }
    }
    s
}
