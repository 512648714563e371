//! Issue 19's back-pressure end to end: a leader that cannot commit (its followers cut off)
//! takes proposals only up to [`Config::max_uncommitted`], and the client of every request
//! past it gets [`Error::Overloaded`] at once, not a wait until its timeout; once the
//! followers are back, what the leader took commits and is answered.

use std::thread;
use std::time::{Duration, Instant};

use paxraft::runtime::{ClientConfig, Cluster, Cmd, Error, RuntimeConfig};
use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Kv, KvOp, KvOutput};
use paxraft_impls::Replica;

const CAP: usize = 4;
const SENT: usize = 10;

fn overloaded_past_the_cap<R: Replica<Cmd<Kv>>>() {
    let mut cfg = RuntimeConfig::default();
    cfg.protocol.max_uncommitted = CAP;
    // A leader cut off from its followers keeps leading (no CheckQuorum step-down), so
    // nothing it takes can commit until the heal.
    cfg.protocol.check_quorum = false;
    let mut cluster: Cluster<R, Kv> = Cluster::new(3, cfg).expect("a valid configuration");
    let mut c = cluster.client(ClientConfig {
        // No resend on silence while the followers are cut off: every copy the leader took
        // is the only one, so each request past the cap is surely refused.
        retry_after: Duration::from_secs(20),
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    });
    // Warm up: the client learns the leader, and the leader has nothing uncommitted.
    let give_up = Instant::now() + Duration::from_secs(30);
    while c.submit(KvOp::Put(0, vec![0])).is_err() {
        assert!(Instant::now() < give_up, "no leader answered");
        thread::sleep(Duration::from_millis(10));
    }
    let leader = cluster.leader().expect("a leader answered");
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    cluster.partition(&[&[leader], &others[..1], &others[1..]]);

    let seqs: Vec<u64> = (0..SENT)
        .map(|i| {
            c.send(KvOp::Put(1, vec![i as u8]))
                .expect("room in the window")
        })
        .collect();
    // Every request past the cap is refused, and promptly: the leader answers them while it
    // still cannot commit anything.
    let mut overloaded = Vec::new();
    let refused_by = Instant::now() + Duration::from_secs(10);
    while overloaded.len() < SENT - CAP {
        assert!(
            Instant::now() < refused_by,
            "refusals did not come: {overloaded:?}"
        );
        if let Some((seq, res)) = c.poll(Duration::from_millis(50)) {
            assert_eq!(
                res,
                Err(Error::Overloaded),
                "request {seq} while partitioned"
            );
            overloaded.push(seq);
        }
    }
    overloaded.sort_unstable();
    assert_eq!(
        overloaded,
        seqs[CAP..],
        "the cap takes the first {CAP}, in order"
    );
    assert_eq!(cluster.leader(), Some(leader));

    // Back together: the first CAP commit and are answered.
    cluster.heal();
    let mut done = Vec::new();
    while let Some((seq, res)) = c.poll(Duration::from_secs(30)) {
        assert_eq!(res, Ok(KvOutput::Written), "request {seq} after the heal");
        done.push(seq);
    }
    done.sort_unstable();
    assert_eq!(done, seqs[..CAP]);
    // The refused ones were never applied: the value is the last the leader took.
    assert_eq!(
        c.submit(KvOp::Get(1)),
        Ok(KvOutput::Value(Some(vec![CAP as u8 - 1])))
    );
    cluster.shutdown();
}

#[test]
fn raft_leader_at_its_cap_refuses_clients_with_an_error() {
    overloaded_past_the_cap::<Raft<Cmd<Kv>>>();
}

#[test]
fn multipaxos_leader_at_its_cap_refuses_clients_with_an_error() {
    overloaded_past_the_cap::<MultiPaxos<Cmd<Kv>>>();
}
