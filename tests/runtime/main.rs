//! The threaded runtime under load, faults and crashes, checked end to end against the
//! linearizability checker. One test binary (`cargo test --test runtime`), for the reason
//! given in `tests/checks/main.rs`; the loom tests stay apart (`tests/loom_*.rs`), as they
//! are built with `--cfg loom`. Filter by module: `cargo test --test runtime crash::`.
//! `net::` runs server processes (`paxraft serve`) on loopback.

mod backpressure;
mod crash;
mod e2e;
mod faults;
mod membership;
mod net;
mod reads;
mod snapshots;
