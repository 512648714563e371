//! The `paxraft` binary.

fn main() -> std::process::ExitCode {
    paxraft::cli::main()
}
