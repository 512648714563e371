//! The `paxraft` binary.

#[cfg(not(loom))]
fn main() -> std::process::ExitCode {
    paxraft::cli::main()
}

/// Under `--cfg loom` the library is the runtime alone (see the crate docs); cargo still
/// builds the binary beside the loom tests, which never run it.
#[cfg(loom)]
fn main() -> std::process::ExitCode {
    eprintln!("error: paxraft built with --cfg loom is only the runtime, for the loom tests");
    std::process::ExitCode::from(2)
}
