//! # paxraft
//!
//! The hosts and tools around one protocol core. The protocols ([`paxraft_impls`]: Raft,
//! multi-Paxos, an unreplicated baseline) are deterministic, sans-IO state machines behind the
//! [`Replica`](paxraft_impls::Replica) trait: a host hands a replica its inputs (boot, a
//! message, a timer, client commands) and carries out the
//! [`Effect`](paxraft_impls::Effect)s it returns, in order: persist, send, set or cancel a
//! timer, commit, redirect. Hosts differ only in how they carry effects out; none changes the
//! protocol code, so what the model checker verified is what the runtime runs.
//!
//! ```text
//!   the `paxraft` command (cli): check · simulate · replay · zoo · run · tour · report
//!          │              │                │                   │                │
//!          │              │                ▼                   │                ▼
//!          │              │      zoo: the bug registry,        │         report: saved
//!          │              │      one detector per bug          │         results, HTML
//!          │              │        │           │               │                ▲
//!          ▼              │        │           ▼               ▼                │
//!   models::check ◄───────┼────────┘    simulate ──► lincheck  runtime ◄─────── bench
//!   (every state)         └───────────► (fault schedules,      (threads,
//!          │                             walking the model)     clients)
//!          ▼                                  ▼                   ▼
//!   ┌─ hosts: each carries out the effects its own way ────────────────────────────────┐
//!   │ paxraft_models: a stateright   impls::driver: in-memory,     runtime: mailboxes, │
//!   │ actor model; network, crashes  deterministic, for scripted   timer heap, storage,│
//!   │ and timers are its actions     tests                         a sync before sends │
//!   └───┬───▲──────────────────────────────────────────────────────────────────────────┘
//!       │   │   inputs ▼  boot · on_message · on_timer · propose
//!       ▼   │   effects ▲ Out: Persist · Send · SetTimer · CancelTimer · Commit · Redirect · Busy
//!   ┌───▼───┴──────────────────────────────────────────────────────────────────────────┐
//!   │ paxraft_impls: Replica (raft · multipaxos · unreplicated), sans-IO: no threads,  │
//!   │ clocks, sockets or randomness; sm: the KV store and lock service behind sessions │
//!   └──────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Inputs flow down, effects up: nothing below the hosts knows which host runs it.
//! The simulator steps the very model the checker explores (its actions and next states), so
//! every fault it injects is one the model allows; the runtime is the same replica on real
//! threads, with the crash points, lossy storage and bounded queues of a process.
//!
//! * [`runtime`]: the threaded runtime, its clients, storage and fault injection.
//! * [`simulate`]: deep fault schedules over the model, shrunk and replayable.
//! * [`lincheck`]: the linearizability checker the simulator and the runtime tests use.
//! * [`zoo`]: the bug zoo's registry and runner (model check or fault schedules per bug).
//! * [`report`]: saved results and the HTML report.
//! * [`bench`](mod@bench): closed-loop load and recovery runs on the runtime.
//! * [`net`](mod@net): the TCP transport, server processes and their client.
//! * [`cli`]: the `paxraft` command.
//! * [`alloc`](mod@alloc): the binaries' allocator (large blocks grow without a copy).

//!
//! Built with `--cfg loom` (the loom race tests, `tests/loom_*.rs`), the crate is the runtime
//! and the network's [`net::outlet`] alone: the loom tests need nothing else, and leaving the
//! checker, the simulator, the report, the command line and the rest of the network (and
//! their dependencies) out of that second build saves about a minute and a half of the test
//! command on 2 cores.

pub use paxraft_impls as impls;
#[cfg(not(loom))]
pub use paxraft_models as models;

pub mod runtime;

#[cfg(not(loom))]
pub mod alloc;
#[cfg(not(loom))]
pub mod cpu;

#[cfg(not(loom))]
pub mod bench;
#[cfg(not(loom))]
pub mod cli;
#[cfg(not(loom))]
pub mod lincheck;
pub mod net;
#[cfg(not(loom))]
pub mod protocol;
#[cfg(not(loom))]
pub mod report;
#[cfg(not(loom))]
pub mod results;
#[cfg(not(loom))]
pub mod simulate;
#[cfg(not(loom))]
pub mod zoo;

/// The message of a caught panic (`catch_unwind`'s payload), for reports: replica threads in
/// the runtime, protocol assertions in the fault-schedule executor, stages of the tour.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
