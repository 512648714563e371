//! How a fault-schedule search's report reads: `{}` compact (a line, and the shrunk
//! counterexample: the tour), `{:#}` full (every count, then the failure: `paxraft
//! simulate`). Here rather than beside [`SimReport`] so the simulator stays free of
//! presentation; Rust allows the impl in any module of the crate.

use std::fmt;

use crate::simulate::cluster::SimReport;

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            full(self, f)
        } else {
            compact(self, f)
        }
    }
}

fn compact(r: &SimReport, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let s = &r.stats;
    let verdict = match &r.failure {
        None => "no violation".to_string(),
        Some(x) => format!("VIOLATED {} (shrunk to {} steps)", x.property, x.steps),
    };
    writeln!(
        f,
        "  {:<11} {verdict}: {} runs, {} steps, {:.0} steps/s; faults: {} drops, {} duplicates, {} crashes ({} mid-step), {} partitioned steps",
        r.protocol, r.runs, r.steps, r.steps_per_sec, s.drops, s.duplicates, s.crashes, s.torn, s.held
    )?;
    if let Some(x) = &r.failure {
        write!(f, "{}", x.chart)?;
        if !x.detail.is_empty() {
            writeln!(f, "     => {}", x.detail)?;
        }
    }
    Ok(())
}

fn full(r: &SimReport, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match &r.failure {
        None => writeln!(f, "{}: no violation in {} runs", r.protocol, r.runs)?,
        Some(x) => writeln!(
            f,
            "{}: VIOLATED {:?} after {} passing runs; shrunk to {} steps",
            r.protocol, x.property, x.runs_before, x.steps
        )?,
    }
    writeln!(f, "  search          {}", r.command)?;
    writeln!(
        f,
        "  steps           {} ({:.0} steps/s)",
        r.steps, r.steps_per_sec
    )?;
    writeln!(f, "  deepest run     {} steps", r.deepest)?;
    writeln!(f, "  seconds         {:.2}", r.seconds)?;
    writeln!(
        f,
        "  linearizability {} client ops checked ({:.0} ops/s), {} issued while the same client waited on another",
        r.lincheck_ops, r.lincheck_ops_per_sec, r.pipelined_ops
    )?;
    if r.read_runs > 0 {
        writeln!(
            f,
            "  reads           answered without the log in {} runs ({} by a follower, {} under a leader's lease with no round)",
            r.read_runs, r.follower_read_runs, r.lease_read_runs
        )?;
    }
    if r.install_runs + r.restart_snapshot_runs > 0 {
        writeln!(
            f,
            "  snapshots       a lagging server restored a peer's snapshot in {} runs, a server restarted from its own in {}",
            r.install_runs, r.restart_snapshot_runs
        )?;
    }
    if r.changed_runs > 0 {
        writeln!(
            f,
            "  membership      a leader answered a change as done in {} runs",
            r.changed_runs
        )?;
    }
    let s = &r.stats;
    writeln!(
        f,
        "  faults          {} drops, {} duplicates, {} crashes ({} mid-step), {} restarts, {} partitioned steps",
        s.drops, s.duplicates, s.crashes, s.torn, s.recovers, s.held
    )?;
    writeln!(
        f,
        "  also            {} deliveries, {} ignored messages, {} timers fired",
        s.deliveries, s.ignored, s.timeouts
    )?;
    if let Some(x) = &r.failure {
        writeln!(f)?;
        writeln!(
            f,
            "{} violated at step {} ({:?} phase):",
            x.property, x.saved.violation.step, x.phase
        )?;
        write!(f, "{}", x.chart)?;
        if !x.detail.is_empty() && x.trace.explanation.as_deref() != Some(x.detail.as_str()) {
            writeln!(f, "     => {}", x.detail)?;
        }
    }
    Ok(())
}
