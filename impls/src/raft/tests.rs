//! Raft unit tests, in the style of etcd/raft's paper tests: each sets up replicas, steps them
//! with messages and timers, and asserts the exact effects and state. Each names the rule of
//! the Raft paper (§) or dissertation (diss. §) it checks.

use super::*;
use crate::driver::Cluster;
use crate::replica::{Effect, Effects};

type Cmd = u32;
type R = Raft<Cmd>;

fn cfg() -> Config {
    Config::default()
}

fn ids(n: u8) -> Vec<NodeId> {
    (0..n).map(NodeId).collect()
}

fn boot(id: u8, n: u8, cfg: &Config) -> (R, Out<R, Cmd>) {
    let mut out = Effects::new();
    let r = R::boot(NodeId(id), &ids(n), None, cfg, &mut out);
    (r, out)
}

fn cluster(n: usize) -> Cluster<R, Cmd> {
    Cluster::new(n, cfg())
}

/// Elect node `i` by firing its election timer and delivering everything.
fn elect(c: &mut Cluster<R, Cmd>, i: usize) {
    c.fire(i, RaftTimer::Election);
    c.deliver_all();
    assert_eq!(c.leaders(), vec![i], "n{i} should lead\n{}", c.trace.join("\n"));
}

#[test]
fn smoke_three_nodes_commit_everywhere() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    c.propose(0, vec![7, 8]);
    c.deliver_all();
    c.fire(0, RaftTimer::Heartbeat);
    c.deliver_all();
    for i in 0..3 {
        assert_eq!(c.applied(i), vec![7, 8], "n{i}");
    }
    let _ = boot(0, 1, &cfg());
    let _: Option<Effect<(), (), (), ()>> = None;
}
