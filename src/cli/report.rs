//! `paxraft report`: rebuild the HTML report from saved results, rerunning nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Flags of `paxraft report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Report directory: results are read from DIR/data/, the page written to DIR/index.html.
    #[arg(long, default_value = crate::report::DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// Run `paxraft report`.
pub fn run(args: &ReportArgs) -> ExitCode {
    match crate::report::write(&args.dir) {
        Ok(path) => {
            println!("report written to {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: cannot build the report in {}: {e}",
                args.dir.display()
            );
            ExitCode::from(super::EXIT_BAD_INPUT)
        }
    }
}
