//! The `paxraft` binary.

/// mimalloc rather than the system allocator: a check's states are allocated by one checker
/// thread and freed by another, and a client's requests are freed on a node's thread. With
/// glibc's malloc, two BFS threads ran a Raft check 1.24x as fast as one; with mimalloc 1.56x
/// (side by side, `cargo bench -p paxraft-bench --bench model_check`). Blocks of 4 MiB and
/// more are mapped on their own and grow without a copy ([`paxraft::alloc`]).
#[cfg(not(loom))]
#[global_allocator]
static ALLOC: paxraft::alloc::RemapLarge<mimalloc::MiMalloc> =
    paxraft::alloc::RemapLarge(mimalloc::MiMalloc);

#[cfg(not(loom))]
fn main() -> std::process::ExitCode {
    // Before each check's memory measurement: hand what mimalloc keeps free (an earlier
    // check's states) back to the system, so that the next check's growth is its own.
    paxraft_models::memory::on_measure_start(|| {
        // SAFETY: `mi_collect` only releases memory mimalloc holds free; any thread may call it.
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
    paxraft::cli::main()
}

/// Under `--cfg loom` the library is the runtime alone (see the crate docs); cargo still
/// builds the binary beside the loom tests, which never run it.
#[cfg(loom)]
fn main() -> std::process::ExitCode {
    eprintln!("error: paxraft built with --cfg loom is only the runtime, for the loom tests");
    std::process::ExitCode::from(2)
}
