//! `paxraft overview`: what is in the box. (`cargo run --release` with no arguments runs the
//! tour, [`super::tour`].)

use std::process::ExitCode;

use paxraft_impls::Bug;
use paxraft_models::properties::names;

use crate::protocol::{with_protocol, Hosted, Protocol, ProtocolVisitor};

/// Print a protocol's name and invariants.
struct Describe;

impl ProtocolVisitor for Describe {
    type Output = ();
    fn visit<R: Hosted>(self) {
        println!("  {}", R::NAME);
        let cluster: Vec<&str> = R::cluster_invariants().iter().map(|i| i.name).collect();
        let step: Vec<&str> = R::step_invariants().iter().map(|i| i.name).collect();
        println!("    cluster invariants: {}", cluster.join(", "));
        println!("    step invariants:    {}", step.join(", "));
    }
}

/// Print the overview.
pub fn run() -> ExitCode {
    println!(
        "paxraft {}: consensus protocols behind one sans-IO trait",
        env!("CARGO_PKG_VERSION")
    );
    println!();
    println!("protocols:");
    for p in Protocol::REPLICATED {
        with_protocol(p, Describe);
    }
    println!();
    println!("state machines: kv (get, put, cas), lock (acquire, release, fencing tokens),");
    println!("                behind client sessions (a retried request applies once)");
    println!();
    println!(
        "bug zoo ({} known bugs, compiled in with --features bug-zoo):",
        Bug::ALL.len()
    );
    for b in Bug::ALL {
        println!("  {:<4} {}", b.code(), b.name());
    }
    println!();
    println!("model-check properties (always, required sometimes, coverage):");
    for (kind, names) in [
        (
            "always",
            &[
                names::LINEARIZABLE,
                names::SAFETY,
                names::PREFIX,
                names::TERMS,
            ][..],
        ),
        (
            "sometimes",
            &[
                names::LEADER,
                names::COMMITTED_EVERYWHERE,
                names::ANSWERED,
                names::LATER_TERM,
                names::RECOVERS,
                names::CRASHED_MID_STEP,
            ][..],
        ),
        ("coverage", names::COVERAGE),
    ] {
        println!("  {kind:<10} {}", names.join("; "));
    }
    println!();
    println!("run every check:  ./scripts/test-all   (see README.md)");
    ExitCode::SUCCESS
}
