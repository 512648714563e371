//! The `paxraft` command line. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod overview;
pub mod report;
pub mod run;
pub mod simulate;
pub mod tour;
pub mod zoo;

/// Model-check, fault-test and benchmark consensus protocols that share one sans-IO trait.
#[derive(Debug, Parser)]
#[command(name = "paxraft", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands. With none, `paxraft` runs the default tour.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe the protocols, their invariants and the bug zoo.
    Overview,
    /// Run a live in-process cluster under client load; print throughput and latency.
    Run(run::RunArgs),
    /// Rebuild the HTML report from saved results, rerunning nothing.
    Report(report::ReportArgs),
    /// Model-check a protocol exhaustively within bounds (stateright).
    Check(check::CheckArgs),
    /// Browse a protocol's state space in stateright's Explorer (loopback only).
    Explore(check::ExploreArgs),
    /// Run the bug zoo: every known bug switched on must be caught, and off must pass.
    Zoo(zoo::ZooArgs),
    /// Run deep random fault schedules (proptest) on the cluster model; shrink a failure.
    Simulate(simulate::SimulateArgs),
    /// Replay a failing schedule saved by `simulate`, exactly.
    Replay(simulate::ReplayArgs),
}

/// Exit code for bad input (flags, configs, cluster sizes).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Parse the arguments and run. Bad flags exit 2 with clap's one-line error.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        None => tour::run(),
        Some(Command::Overview) => overview::run(),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Explore(args)) => check::explore(&args),
        Some(Command::Zoo(args)) => zoo::run(&args),
        Some(Command::Simulate(args)) => simulate::run(&args),
        Some(Command::Replay(args)) => simulate::replay_file(&args),
    }
}
