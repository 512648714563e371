//! The checks: model checking, fault schedules, the bug zoo, the linearizability checker, the
//! tour and the report. One test binary for all of them (`cargo test --test checks`): each
//! integration test file would otherwise be its own binary, linking the workspace and
//! compiling the generic protocols and models again, which cost the test command minutes.
//! Filter by module: `cargo test --test checks zoo::`.

mod lincheck_differential;
mod model_check;
mod report;
mod simulate_cluster;
mod simulate_executor;
mod tour;
mod zoo;
