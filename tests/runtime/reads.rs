//! Reads without the log in the threaded runtime ([`Replica::read`], `Config::reads`).
//!
//! Which protocols these run on: every test is written for any protocol, and each protocol's
//! case runs when that protocol has a read path (`Replica::READS`). Raft and multi-Paxos turn
//! theirs on in their own modules; until a protocol does, its read-index cases reduce to
//! checking that its reads still go through the log (`reads_skip_the_log_exactly_when_...`),
//! and the runtime's own read path is exercised through [`SoloReads`], a test protocol that
//! wraps Raft in a one-node cluster and serves reads at its commit point (what ReadIndex
//! amounts to when the leader is the whole quorum: Ongaro's dissertation §6.4). The test
//! `every_registered_consensus_protocol_serves_reads_without_the_log` states the goal, that
//! both real protocols run every case here; it is ignored while a protocol lacks the path.
//!
//! Bounded in time: each test takes a second or two; the time limits only bound a hang.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use paxraft::bench::{has_read_path, ReadPath};
use paxraft::lincheck::{check_kv, Op};
use paxraft::protocol::Protocol;
use paxraft::runtime::client::{HOLD_AT_MOST, SEND_AT_LEAST};
use paxraft::runtime::{
    Client, ClientConfig, Cluster, Cmd, Error, Mailbox, Reply, ReplyBox, RuntimeConfig,
};
use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Kv, KvOp, KvOutput, Request};
use paxraft_impls::{
    ClusterCheck, Config, Invariant, NodeId, Out, ReadId, ReadMode, Replica, Role, Slot, Status,
    StepCheck,
};

type RaftKv = Raft<Cmd<Kv>>;
type PaxosKv = MultiPaxos<Cmd<Kv>>;

/// Wait until `cond` holds, failing the test after `secs` (a hang, not a slow run).
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn runtime(reads: ReadMode, follower_reads: bool) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::default();
    cfg.protocol.reads = reads;
    cfg.protocol.follower_reads = follower_reads;
    if reads == ReadMode::Lease {
        // The runtime's clocks are the machine's: far inside the bound the benchmarks use.
        cfg.protocol.clock_drift = Some(paxraft::runtime::lease_clock_drift());
    }
    cfg
}

fn quick() -> ClientConfig {
    ClientConfig {
        retry_after: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    }
}

fn leader_of<R: Replica<Cmd<Kv>>>(c: &Cluster<R, Kv>) -> usize {
    let mut l = None;
    wait_for(30, "a leader", || {
        l = c.leader();
        l.is_some()
    });
    l.unwrap()
}

/// Commands applied by every node together (reads through the log count, reads without it
/// do not).
fn commits<R: Replica<Cmd<Kv>>>(c: &Cluster<R, Kv>) -> u64 {
    (0..c.members().len())
        .map(|i| c.commits(i))
        .max()
        .unwrap_or(0)
}

// -------------------------------------------------------------------------------------------
// A protocol with a read path in a one-node cluster
// -------------------------------------------------------------------------------------------

/// The `Replica` methods a test protocol wrapping `$inner: $R` takes over as they are (and no
/// invariants of its own).
macro_rules! wrapped_replica {
    ($inner:ident, $R:ty) => {
        fn status(&self) -> Status {
            self.$inner.status()
        }
        fn id(&self) -> NodeId {
            self.$inner.id()
        }
        fn committed(&self) -> BTreeMap<Slot, Option<Cmd<Kv>>> {
            self.$inner.committed()
        }
        fn apply_write(durable: &mut Self::Durable, write: &Self::Write) {
            <$R>::apply_write(durable, write);
        }
        fn cluster_invariants() -> Vec<Invariant<ClusterCheck<Self>>> {
            Vec::new()
        }
        fn step_invariants() -> Vec<Invariant<StepCheck<Self>>> {
            Vec::new()
        }
        fn election_timer() -> Self::Timer {
            <$R>::election_timer()
        }
        fn heartbeat_timer() -> Self::Timer {
            <$R>::heartbeat_timer()
        }
    };
}

/// While set, a [`HoldingReads`] holds the reads it is given instead of serving them (a leader
/// waiting for a confirmation round that does not come), counting them in [`HELD`].
static HOLD: AtomicBool = AtomicBool::new(false);
/// Read ids a [`HoldingReads`] holds: one per batch of reads a node drained together (the
/// node hands them to the replica as one id, `runtime::reads`).
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Raft in a one-node cluster, with a read path: the one node leads alone, so once it leads
/// and has committed everything it holds, its commit point includes every earlier commit and
/// a read is ready there at once (effect contract rule 4: every commit up to that point was
/// reported before). Otherwise it hands reads back with its leader hint. Only sound with one
/// node, which `boot` asserts. With `HOLDS`, it obeys [`HOLD`] (one test uses that switch;
/// the others, running alongside, use `SoloReads<false>`, which ignores it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SoloReads<const HOLDS: bool> {
    raft: RaftKv,
    held: Vec<ReadId>,
}

type Solo = SoloReads<false>;
type HoldingReads = SoloReads<true>;

impl<const HOLDS: bool> Replica<Cmd<Kv>> for SoloReads<HOLDS> {
    type Msg = <RaftKv as Replica<Cmd<Kv>>>::Msg;
    type Timer = <RaftKv as Replica<Cmd<Kv>>>::Timer;
    type Durable = <RaftKv as Replica<Cmd<Kv>>>::Durable;
    type Write = <RaftKv as Replica<Cmd<Kv>>>::Write;
    const NAME: &'static str = "solo-reads";
    const READS: bool = true;

    fn boot(
        id: NodeId,
        members: &[NodeId],
        durable: Option<&Self::Durable>,
        cfg: &Config,
        out: &mut Out<Self, Cmd<Kv>>,
    ) -> Self {
        assert_eq!(members.len(), 1, "SoloReads serves reads alone");
        SoloReads {
            raft: RaftKv::boot(id, members, durable, cfg, out),
            held: Vec::new(),
        }
    }
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, out: &mut Out<Self, Cmd<Kv>>) {
        self.raft.on_message(from, msg, out);
    }
    fn on_timer(&mut self, timer: Self::Timer, out: &mut Out<Self, Cmd<Kv>>) {
        self.raft.on_timer(timer, out);
    }
    fn propose(&mut self, cmds: Vec<Cmd<Kv>>, out: &mut Out<Self, Cmd<Kv>>) {
        self.raft.propose(cmds, out);
    }
    fn read(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, Cmd<Kv>>) {
        if HOLDS && HOLD.load(Ordering::SeqCst) {
            HELD.fetch_add(ids.len(), Ordering::SeqCst);
            self.held.extend(ids);
            return;
        }
        let s = self.raft.status();
        for id in ids {
            if s.role == Role::Leader && s.commit == s.last {
                out.read_ready(id, s.commit);
            } else {
                out.read_redirect(id, s.leader);
            }
        }
    }
    wrapped_replica!(raft, RaftKv);
}

// -------------------------------------------------------------------------------------------
// A write acknowledged, then read by another client
// -------------------------------------------------------------------------------------------

/// Put a value, then read it back from a second client, `reads` times; with the read path the
/// reads leave the log alone (one commit for the put), through the log each is a commit.
fn put_then_get<R: Replica<Cmd<Kv>>>(n: usize, cfg: RuntimeConfig, read_from: Option<usize>) {
    let skips_log = R::READS && cfg.protocol.reads != ReadMode::Log;
    let leased = cfg.protocol.reads == ReadMode::Lease;
    let cfg_reads = cfg.protocol.reads;
    let mut cluster = Cluster::<R, Kv>::new(n, cfg).unwrap();
    let mut writer = cluster.client(quick());
    let mut reader = cluster.client(ClientConfig {
        read_from: read_from.map(|i| NodeId(i as u8)),
        ..quick()
    });
    assert_eq!(
        writer.submit(KvOp::Put(1, b"v0".to_vec())),
        Ok(KvOutput::Written)
    );
    let before = commits(&cluster);
    for i in 1..=20u8 {
        let v = vec![b'v', i];
        assert_eq!(
            writer.submit(KvOp::Put(1, v.clone())),
            Ok(KvOutput::Written)
        );
        // Acknowledged, so committed: a later read anywhere must see it.
        assert_eq!(
            reader.submit(KvOp::Get(1)),
            Ok(KvOutput::Value(Some(v))),
            "{} read {i}",
            R::NAME
        );
    }
    let reads_in_log = commits(&cluster) - before - 20;
    let local: u64 = (0..n).map(|i| cluster.local_reads(i)).sum();
    // Reads sent where writes go are answered by the leader's local reader: under its lease
    // (only a read that met a lapsed lease goes to the node and renews it), or under a read
    // index the node confirmed for them (tickets, offered where the node alone is no quorum).
    // A pinned reader's reads go to its node: as requests under a lease; under ReadIndex,
    // parked there too when the client takes that node for the leader (a follower confirms
    // tickets with a read index from the leader), so either count is right.
    let tickets = skips_log && cfg_reads == ReadMode::ReadIndex && n > 1;
    if read_from.is_none() && (leased || tickets) {
        assert!(
            local >= 10,
            "{}: {local} of 20 reads answered locally",
            R::NAME
        );
    } else if !tickets {
        assert_eq!(local, 0, "{}: a local read off the local path", R::NAME);
    }
    if skips_log {
        assert_eq!(reads_in_log, 0, "{}: reads went through the log", R::NAME);
    } else {
        assert_eq!(reads_in_log, 20, "{}: reads skipped the log", R::NAME);
    }
}

#[test]
fn solo_read_index_serves_an_acknowledged_write_without_the_log() {
    put_then_get::<Solo>(1, runtime(ReadMode::ReadIndex, false), None);
}

#[test]
fn solo_log_reads_go_through_the_log() {
    put_then_get::<Solo>(1, runtime(ReadMode::Log, false), None);
}

#[test]
fn reads_skip_the_log_exactly_when_the_protocol_has_a_read_path() {
    // With reads=read-index, a protocol whose READS is false still sends every read through
    // the log (`put_then_get` then expects 20 reads in the log); one with a read path sends
    // none there.
    put_then_get::<RaftKv>(3, runtime(ReadMode::ReadIndex, false), None);
    put_then_get::<PaxosKv>(3, runtime(ReadMode::ReadIndex, false), None);
}

/// One pipelined client, reads among its writes: under a lease the reads of a batch are
/// answered during its flush, on the client's thread, while the writes of the same batch are
/// still out (holes in the client's window), and `poll_many` hands every answer over once,
/// into an empty vector (the queue itself) or after answers already there. Each read sees the
/// value the last write acknowledged before the read was sent.
fn pipelined_reads_among_writes<R: Replica<Cmd<Kv>>>() {
    let mut cluster = Cluster::<R, Kv>::new(3, runtime(ReadMode::Lease, false)).unwrap();
    let mut c = cluster.client(quick());
    assert_eq!(c.submit(KvOp::Put(1, vec![0])), Ok(KvOutput::Written));
    let mut answers = Vec::new();
    for round in 1..=50u8 {
        // A write to key 2 first (out until it commits), then reads of key 1, whose last
        // acknowledged value is `round - 1`.
        let mut expected = BTreeMap::new();
        expected.insert(
            c.send(KvOp::Put(2, vec![round])).unwrap(),
            KvOutput::Written,
        );
        for _ in 0..8 {
            expected.insert(
                c.send(KvOp::Get(1)).unwrap(),
                KvOutput::Value(Some(vec![round - 1])),
            );
        }
        // Half the rounds poll into a vector that still holds the last answer of a write.
        if round % 2 == 0 {
            answers.push((0, Ok(KvOutput::Written)));
        }
        let leftover = answers.len();
        let mut got = BTreeMap::new();
        let give_up = Instant::now() + Duration::from_secs(20);
        while got.len() < expected.len() {
            assert!(
                Instant::now() < give_up,
                "{}: round {round} unanswered",
                R::NAME
            );
            assert!(
                c.poll_many(Duration::from_secs(10), &mut answers) > 0,
                "{}: round {round} stuck",
                R::NAME
            );
            for (seq, res) in answers.drain(leftover..) {
                assert!(got.insert(seq, res).is_none(), "{seq} answered twice");
            }
        }
        answers.clear();
        let want: BTreeMap<u64, Result<KvOutput, Error>> =
            expected.into_iter().map(|(s, o)| (s, Ok(o))).collect();
        assert_eq!(got, want, "{}: round {round}", R::NAME);
        assert_eq!(c.submit(KvOp::Put(1, vec![round])), Ok(KvOutput::Written));
    }
    assert!(
        (0..3).map(|i| cluster.local_reads(i)).sum::<u64>() >= 200,
        "{}: most of the 400 reads answered under the lease",
        R::NAME
    );
}

#[test]
fn raft_pipelined_lease_reads_among_writes_are_answered_once() {
    pipelined_reads_among_writes::<RaftKv>();
}

#[test]
fn multipaxos_pipelined_lease_reads_among_writes_are_answered_once() {
    pipelined_reads_among_writes::<PaxosKv>();
}

/// Read index at the leader, at a follower that redirects (follower reads off), and at a
/// follower that serves (follower reads on): the reader always sees the acknowledged write.
fn read_index_everywhere<R: Replica<Cmd<Kv>>>() {
    if !R::READS {
        return;
    }
    put_then_get::<R>(3, runtime(ReadMode::ReadIndex, false), None);
    // A reader pinned to a follower: with follower reads off it is redirected to the leader.
    let follower = {
        let c = Cluster::<R, Kv>::new(3, runtime(ReadMode::ReadIndex, false)).unwrap();
        (leader_of(&c) + 1) % 3
    };
    put_then_get::<R>(3, runtime(ReadMode::ReadIndex, false), Some(follower));
    put_then_get::<R>(3, runtime(ReadMode::ReadIndex, true), Some(follower));
}

/// Leases (diss. §6.4.1) on the runtime's real clocks: the leader serves alone while its
/// lease holds, a pinned follower asks it for an index; every read sees the acknowledged
/// write, and none goes through the log.
fn lease_reads_everywhere<R: Replica<Cmd<Kv>>>() {
    put_then_get::<R>(3, runtime(ReadMode::Lease, false), None);
    let follower = {
        let c = Cluster::<R, Kv>::new(3, runtime(ReadMode::Lease, false)).unwrap();
        (leader_of(&c) + 1) % 3
    };
    put_then_get::<R>(3, runtime(ReadMode::Lease, true), Some(follower));
}

/// A cluster of 3 serving `reads`, a client that wrote 7 to key 1, and the leader, after
/// reads until one was answered at the leader's local reader (under its lease, or a ticket):
/// the client has seen the leader's reader serve, so its next read waits beside the window.
fn a_client_served_locally<R: Replica<Cmd<Kv>>>(
    reads: ReadMode,
) -> (Cluster<R, Kv>, Client<R, Kv>, usize) {
    let mut cluster = Cluster::<R, Kv>::new(3, runtime(reads, false)).unwrap();
    let mut c = cluster.client(quick());
    assert_eq!(c.submit(KvOp::Put(1, vec![7])), Ok(KvOutput::Written));
    let leader = leader_of(&cluster);
    wait_for(10, "a read answered at the leader's reader", || {
        let before = cluster.local_reads(leader);
        assert_eq!(c.submit(KvOp::Get(1)), Ok(KvOutput::Value(Some(vec![7]))));
        cluster.local_reads(leader) > before
    });
    (cluster, c, leader)
}

/// Read `seq` is answered with the value `a_client_served_locally` wrote, and not by the old
/// leader's local reader (`old`, which must not answer it).
fn answered_elsewhere<R: Replica<Cmd<Kv>>>(
    cluster: &Cluster<R, Kv>,
    c: &mut Client<R, Kv>,
    seq: u64,
    leader: usize,
    old: &str,
) {
    let served = cluster.local_reads(leader);
    assert_eq!(
        c.poll(Duration::from_secs(20)),
        Some((seq, Ok(KvOutput::Value(Some(vec![7]))))),
        "{}",
        R::NAME
    );
    assert_eq!(
        cluster.local_reads(leader),
        served,
        "{}: {old} answered a read",
        R::NAME
    );
}

/// A read sent while the client last saw the leader's lease hold is kept beside the window
/// until the next flush (`Client::send`); if the lease has lapsed by then (here its leader
/// crashed, and the lease's time ran out), the read goes to the cluster as a request: it is
/// answered, with the acknowledged value, not lost and not answered from the lapsed lease.
fn a_lease_read_flushed_after_its_lease_lapsed<R: Replica<Cmd<Kv>>>() {
    let (mut cluster, mut c, leader) = a_client_served_locally::<R>(ReadMode::Lease);
    let seq = c.send(KvOp::Get(1)).unwrap();
    cluster.crash(leader);
    // Past any lease (the election timeout bounds it), so none holds at the flush.
    thread::sleep(Duration::from_millis(400));
    answered_elsewhere(
        &cluster,
        &mut c,
        seq,
        leader,
        "the crashed leader's lapsed lease",
    );
}

#[test]
fn raft_a_lease_read_flushed_after_its_lease_lapsed_is_sent_and_answered() {
    a_lease_read_flushed_after_its_lease_lapsed::<RaftKv>();
}

#[test]
fn multipaxos_a_lease_read_flushed_after_its_lease_lapsed_is_sent_and_answered() {
    a_lease_read_flushed_after_its_lease_lapsed::<PaxosKv>();
}

/// Send `puts` puts and then a get of key 1, and poll once without waiting. `Some`: the
/// poll returned the get's answer (the value `a_client_served_locally` wrote), answered on
/// this thread under the lease, and the puts' numbers; `None`: the lease did not hold at
/// that poll, and every request sent here has been answered since.
fn puts_then_a_lease_read<R: Replica<Cmd<Kv>>>(
    c: &mut Client<R, Kv>,
    puts: usize,
) -> Option<Vec<u64>> {
    let seqs: Vec<u64> = (0..puts)
        .map(|i| c.send(KvOp::Put(2, vec![i as u8])).unwrap())
        .collect();
    let get = c.send(KvOp::Get(1)).unwrap();
    let first = c.poll(Duration::ZERO);
    if first == Some((get, Ok(KvOutput::Value(Some(vec![7]))))) {
        return Some(seqs);
    }
    while c.outstanding() > 0 {
        assert!(
            c.poll(Duration::from_secs(10)).is_some(),
            "{}: stuck",
            R::NAME
        );
    }
    None
}

/// The puts `seqs` are answered `Written` by the next polls (which wait).
fn written<R: Replica<Cmd<Kv>>>(c: &mut Client<R, Kv>, seqs: &[u64]) {
    for &seq in seqs {
        assert_eq!(
            c.poll(Duration::from_secs(10)),
            Some((seq, Ok(KvOutput::Written))),
            "{}",
            R::NAME
        );
    }
}

/// A poll that answers reads on the client's thread (the leader's lease) leaves fewer than
/// `SEND_AT_LEAST` queued writes unsent, to go in one batch with the writes its caller
/// queues next (`Client::send`): they are sent by the next poll that waits, by one that
/// finds `SEND_AT_LEAST` queued, or by one `HOLD_AT_MOST` after the first that held them.
fn writes_queued_behind_lease_reads_go_in_batches<R: Replica<Cmd<Kv>>>() {
    let (cluster, mut c, _) = a_client_served_locally::<R>(ReadMode::Lease);
    // (Each case again if the lease lapsed at its poll: then nothing was held.)
    let attempt = |c: &mut Client<R, Kv>, puts: usize| {
        (0..20)
            .find_map(|_| {
                let before = commits(&cluster);
                puts_then_a_lease_read(c, puts).map(|seqs| (before, seqs))
            })
            .unwrap_or_else(|| panic!("{}: the lease never held at a poll", R::NAME))
    };

    // One put: held by the poll that answered the read, sent by the next, which waits.
    let (before, put) = attempt(&mut c, 1);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(commits(&cluster), before, "{}: the put was sent", R::NAME);
    written(&mut c, &put);

    // `SEND_AT_LEAST` puts: sent by the poll that answered the read.
    let (before, puts) = attempt(&mut c, SEND_AT_LEAST);
    wait_for(10, "the batch applied without another poll", || {
        commits(&cluster) >= before + SEND_AT_LEAST as u64
    });
    written(&mut c, &puts);

    // One put held past `HOLD_AT_MOST`: sent by the next poll, though it answers a read.
    let (before, put) = attempt(&mut c, 1);
    thread::sleep(HOLD_AT_MOST + Duration::from_millis(50));
    assert_eq!(commits(&cluster), before, "{}: the put was sent", R::NAME);
    // (If the lease lapsed at this poll, the poll waited, sent the put, and it was answered.)
    if puts_then_a_lease_read(&mut c, 0).is_some() {
        wait_for(10, "the held put applied without another poll", || {
            commits(&cluster) > before
        });
        written(&mut c, &put);
    }
}

#[test]
fn raft_writes_queued_behind_lease_reads_go_in_batches() {
    writes_queued_behind_lease_reads_go_in_batches::<RaftKv>();
}

#[test]
fn multipaxos_writes_queued_behind_lease_reads_go_in_batches() {
    writes_queued_behind_lease_reads_go_in_batches::<PaxosKv>();
}

/// A ReadIndex read sent while the client last saw the leader offer tickets waits beside
/// the window, parked under the next flush's ticket (`Client::send`). Here the leader is cut
/// off from its peers before it can confirm the ticket: the read must still be answered,
/// with the acknowledged value, by the cluster (the isolated leader turns it away or stays
/// silent, and the client sends it again as a request), not lost and not answered by the
/// isolated leader.
fn a_ticketed_read_whose_leader_is_cut_off<R: Replica<Cmd<Kv>>>() {
    let (cluster, mut c, leader) = a_client_served_locally::<R>(ReadMode::ReadIndex);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    cluster.partition(&[&[leader], &others]);
    let seq = c.send(KvOp::Get(1)).unwrap();
    answered_elsewhere(&cluster, &mut c, seq, leader, "the isolated leader");
    cluster.heal();
}

#[test]
fn raft_a_ticketed_read_whose_leader_is_cut_off_is_answered_by_the_cluster() {
    a_ticketed_read_whose_leader_is_cut_off::<RaftKv>();
}

#[test]
fn multipaxos_a_ticketed_read_whose_leader_is_cut_off_is_answered_by_the_cluster() {
    a_ticketed_read_whose_leader_is_cut_off::<PaxosKv>();
}

#[test]
fn raft_lease_reads_see_acknowledged_writes() {
    lease_reads_everywhere::<RaftKv>();
}

#[test]
fn multipaxos_lease_reads_see_acknowledged_writes() {
    lease_reads_everywhere::<PaxosKv>();
}

#[test]
fn raft_read_index_sees_acknowledged_writes_at_leader_and_followers() {
    read_index_everywhere::<RaftKv>();
}

#[test]
fn multipaxos_read_index_sees_acknowledged_writes_at_leader_and_followers() {
    read_index_everywhere::<PaxosKv>();
}

#[test]
fn every_registered_consensus_protocol_serves_reads_without_the_log() {
    let lacking: Vec<Protocol> = Protocol::REPLICATED
        .into_iter()
        .filter(|&p| !has_read_path(p, ReadPath::ReadIndex))
        .collect();
    assert!(lacking.is_empty(), "no read path in {lacking:?}");
}

/// A client reading from a follower with follower reads on gets the value acknowledged
/// before, read after read (the follower serves them, or hands them back to be read at the
/// leader when it knows none: either way the answer must include the write).
fn follower_serves<R: Replica<Cmd<Kv>>>() {
    if !R::READS {
        return;
    }
    let mut cluster = Cluster::<R, Kv>::new(3, runtime(ReadMode::ReadIndex, true)).unwrap();
    let leader = leader_of(&cluster);
    let follower = (leader + 1) % 3;
    let mut writer = cluster.client(quick());
    assert_eq!(
        writer.submit(KvOp::Put(5, b"x".to_vec())),
        Ok(KvOutput::Written)
    );
    let mut reader = cluster.client(ClientConfig {
        read_from: Some(NodeId(follower as u8)),
        ..quick()
    });
    for _ in 0..10 {
        assert_eq!(
            reader.submit(KvOp::Get(5)),
            Ok(KvOutput::Value(Some(b"x".to_vec())))
        );
    }
}

#[test]
fn raft_follower_reads_are_served_by_the_follower() {
    follower_serves::<RaftKv>();
}

#[test]
fn multipaxos_follower_reads_are_served_by_the_follower() {
    follower_serves::<PaxosKv>();
}

// -------------------------------------------------------------------------------------------
// Concurrent reads and writes under crashes: linearizable
// -------------------------------------------------------------------------------------------

/// 60% gets, 40% puts of unique values over few keys, pipelined.
fn mixed(client: u64, i: u64) -> KvOp {
    let x = client
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let key = (x >> 9) % 8;
    if x % 5 < 3 {
        KvOp::Get(key)
    } else {
        KvOp::Put(key, [client.to_le_bytes(), i.to_le_bytes()].concat())
    }
}

/// A client keeping 4 requests outstanding until `stop`; timed-out requests join the history
/// as pending (they may or may not have taken effect).
fn client_loop<R: Replica<Cmd<Kv>>>(
    mut c: Client<R, Kv>,
    start: Instant,
    stop: &AtomicBool,
) -> (Vec<Op>, u64) {
    let now = || start.elapsed().as_nanos() as u64;
    let mut calls = HashMap::new();
    let (mut hist, mut reads, mut i) = (Vec::new(), 0u64, 0u64);
    let mut failed = false;
    loop {
        if std::mem::take(&mut failed) {
            // The node it talks to is down: wait for the restart rather than pile up
            // operations of unknown outcome, each of which the history check must place.
            thread::sleep(Duration::from_millis(30));
        }
        let stopping = stop.load(Ordering::Relaxed);
        while !stopping && c.outstanding() < 4 {
            let op = mixed(c.id(), i);
            i += 1;
            let seq = c.send(op.clone()).expect("below the bound");
            calls.insert(seq, (now(), op));
        }
        if stopping && c.outstanding() == 0 {
            return (hist, reads);
        }
        let (seq, res) = c
            .poll(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("client {}: no answer in 30 s", c.id()));
        let (call, op) = calls.remove(&seq).expect("answers match requests");
        let (ret, out) = match res {
            Ok(out) => {
                reads += u64::from(matches!(op, KvOp::Get(_)));
                (Some(now()), Some(out))
            }
            // A one-node cluster that crashed has every node closed, which the client cannot
            // tell from a shutdown: either way the outcome is unknown.
            Err(Error::Timeout | Error::Shutdown) => {
                failed = true;
                (None, None)
            }
            Err(e) => panic!("client {} request {seq}: {e}", c.id()),
        };
        hist.push(Op {
            client: c.id(),
            call,
            ret,
            op,
            out,
        });
        // Paced, so the history stays small enough to check quickly.
        thread::sleep(Duration::from_micros(300));
    }
}

/// Clients (one pinned to each node when `pin`) run [`mixed`] while `crash` crashes and
/// restarts nodes; the history must be linearizable, and reads answered.
fn linearizable_under_crashes<R: Replica<Cmd<Kv>>>(
    n: usize,
    cfg: RuntimeConfig,
    pin: bool,
    mut crash: impl FnMut(&mut Cluster<R, Kv>, usize),
) -> Cluster<R, Kv> {
    let mut cluster = Cluster::<R, Kv>::new(n, cfg).unwrap();
    leader_of(&cluster);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..n.max(3))
        .map(|i| {
            let c = cluster.client(ClientConfig {
                retry_after: Duration::from_millis(20),
                timeout: Duration::from_secs(5),
                read_from: pin.then_some(NodeId((i % n) as u8)),
                ..ClientConfig::default()
            });
            let stop = Arc::clone(&stop);
            thread::spawn(move || client_loop(c, start, &stop))
        })
        .collect();
    for round in 0..4 {
        thread::sleep(Duration::from_millis(150));
        crash(&mut cluster, round);
    }
    thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    let (mut hist, mut reads) = (Vec::new(), 0);
    for c in clients {
        let (h, r) = c.join().expect("client thread");
        hist.extend(h);
        reads += r;
    }
    assert!(reads > 50, "{}: only {reads} reads answered", R::NAME);
    assert!(cluster.panics().is_empty(), "{:?}", cluster.panics());
    check_kv(&hist).unwrap_or_else(|e| panic!("{}: {e}", R::NAME));
    cluster
}

#[test]
fn solo_reads_and_writes_stay_linearizable_across_restarts() {
    // The one node crashes and restarts: reads must wait for it to rebuild its state machine.
    linearizable_under_crashes::<Solo>(1, runtime(ReadMode::ReadIndex, false), false, |c, _| {
        c.crash(0);
        thread::sleep(Duration::from_millis(20));
        c.restart(0);
    });
}

/// Three nodes, follower reads on, a reader pinned to each node; the leader and then a
/// follower crash and restart in turn.
fn three_nodes_under_crashes<R: Replica<Cmd<Kv>>>(mode: ReadMode) {
    if !R::READS {
        return;
    }
    linearizable_under_crashes::<R>(3, runtime(mode, true), true, |c, round| {
        let leader = leader_of(c);
        let victim = if round % 2 == 0 {
            leader
        } else {
            (leader + 1) % 3
        };
        c.crash(victim);
        thread::sleep(Duration::from_millis(50));
        c.restart(victim);
    });
}

#[test]
fn raft_reads_and_writes_stay_linearizable_under_crashes() {
    three_nodes_under_crashes::<RaftKv>(ReadMode::ReadIndex);
}

#[test]
fn multipaxos_reads_and_writes_stay_linearizable_under_crashes() {
    three_nodes_under_crashes::<PaxosKv>(ReadMode::ReadIndex);
}

/// Cut a 3-node cluster's leader off from the other two.
fn isolate_leader<R: Replica<Cmd<Kv>>>(c: &mut Cluster<R, Kv>) {
    let l = leader_of(c);
    let rest: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    c.partition(&[&[l], &rest]);
}

/// More than 20 reads of a 3-node cluster were answered by local readers.
fn assert_many_local_reads<R: Replica<Cmd<Kv>>>(cluster: &Cluster<R, Kv>) {
    let local: u64 = (0..3).map(|i| cluster.local_reads(i)).sum();
    assert!(
        local > 20,
        "{}: only {local} reads answered locally",
        R::NAME
    );
}

/// Leases with reads answered by the leader's local reader, on the clients' threads
/// (`paxraft::runtime::local`): the leader is cut off from the others for 150 ms, twice. Its
/// local reader answers until its lease runs out, a new leader commits only after that, and
/// the clients that still go to the old leader are redirected once its reads stop: the
/// history must stay linearizable.
fn local_reads_under_partitions<R: Replica<Cmd<Kv>>>() {
    let cluster =
        linearizable_under_crashes::<R>(3, runtime(ReadMode::Lease, false), false, |c, round| {
            if round % 2 == 0 {
                isolate_leader(c);
            } else {
                c.heal();
            }
        });
    assert_many_local_reads(&cluster);
}

#[test]
fn raft_local_lease_reads_stay_linearizable_across_partitions() {
    local_reads_under_partitions::<RaftKv>();
}

#[test]
fn multipaxos_local_lease_reads_stay_linearizable_across_partitions() {
    local_reads_under_partitions::<PaxosKv>();
}

/// ReadIndex reads parked at the leader's local reader under tickets (`paxraft::runtime::
/// local`) and answered there once a round confirmed them: the leader is cut off from the
/// others (its rounds stop confirming, a new leader is elected on the other side), the cut
/// heals, then the leader crashes and restarts (its confirmations are revoked with its state
/// machine). Unpinned clients, so their reads go where writes go and park there: the history
/// must stay linearizable, and most reads are answered on the clients' threads.
fn ticket_reads_under_partitions_and_crashes<R: Replica<Cmd<Kv>>>() {
    let cluster = linearizable_under_crashes::<R>(
        3,
        runtime(ReadMode::ReadIndex, false),
        false,
        |c, round| match round {
            0 => {
                isolate_leader(c);
            }
            1 => c.heal(),
            2 => {
                let l = leader_of(c);
                c.crash(l);
                thread::sleep(Duration::from_millis(50));
                c.restart(l);
            }
            _ => {}
        },
    );
    assert_many_local_reads(&cluster);
}

#[test]
fn raft_ticket_reads_stay_linearizable_across_partitions_and_crashes() {
    ticket_reads_under_partitions_and_crashes::<RaftKv>();
}

#[test]
fn multipaxos_ticket_reads_stay_linearizable_across_partitions_and_crashes() {
    ticket_reads_under_partitions_and_crashes::<PaxosKv>();
}

#[test]
fn raft_lease_reads_and_writes_stay_linearizable_under_crashes() {
    three_nodes_under_crashes::<RaftKv>(ReadMode::Lease);
}

#[test]
fn multipaxos_lease_reads_and_writes_stay_linearizable_under_crashes() {
    three_nodes_under_crashes::<PaxosKv>(ReadMode::Lease);
}

// -------------------------------------------------------------------------------------------
// A crash with reads pending
// -------------------------------------------------------------------------------------------

fn get(client: u64, seq: u64) -> Cmd<Kv> {
    Request {
        client,
        seq,
        acked: 1,
        op: KvOp::Get(0),
    }
}

/// One test (the switch is global): reads the replica holds when its node crashes are
/// answered `Retry` by the node going down, not dropped; a client's reads pending at the
/// crash end, without a restart, in a timeout by the client's deadline, and with one, served.
#[test]
fn reads_pending_at_a_crash_are_answered_retry_and_no_client_hangs() {
    let mut cluster =
        Cluster::<HoldingReads, Kv>::new(1, runtime(ReadMode::ReadIndex, false)).unwrap();
    let mut w = cluster.client(quick());
    assert_eq!(w.submit(KvOp::Put(0, b"a".to_vec())), Ok(KvOutput::Written));

    // Straight to the node: five reads it hands the replica, which holds them.
    HOLD.store(true, Ordering::SeqCst);
    HELD.store(0, Ordering::SeqCst);
    let reply: ReplyBox<Kv> = Arc::new(Mailbox::new(64));
    cluster
        .net()
        .propose(
            NodeId(0),
            (1..=5).map(|s| get(99, s)).collect(),
            Arc::clone(&reply),
        )
        .expect("the node takes them");
    // One proposal, one drain: the five reads are one read id.
    wait_for(10, "the replica to hold the reads", || {
        HELD.load(Ordering::SeqCst) == 1
    });
    cluster.crash(0);
    let mut got = Vec::new();
    reply.drain(&mut got, Some(Instant::now() + Duration::from_secs(5)));
    got.sort_by_key(Reply::seq);
    assert_eq!(
        got,
        (1..=5).map(|seq| Reply::Retry { seq }).collect::<Vec<_>>()
    );

    // A client's reads pending at the crash, no restart: each ends in a timeout, in time.
    cluster.restart(0);
    let mut c = cluster.client(ClientConfig {
        timeout: Duration::from_millis(600),
        ..quick()
    });
    HELD.store(0, Ordering::SeqCst);
    let seqs: Vec<u64> = (0..3).map(|_| c.send(KvOp::Get(0)).unwrap()).collect();
    let t0 = Instant::now();
    // The client sends on its first poll; the node holds them.
    assert_eq!(c.poll(Duration::from_millis(50)), None);
    wait_for(10, "the held reads", || HELD.load(Ordering::SeqCst) == 1);
    cluster.crash(0);
    for _ in &seqs {
        let (seq, res) = c
            .poll(Duration::from_secs(5))
            .expect("an answer, not a hang");
        assert!(seqs.contains(&seq));
        // Told to retry, the client finds every node of this one-node cluster closed, which
        // it cannot tell from a shutdown; with more nodes it would time out.
        assert!(
            matches!(res, Err(Error::Timeout | Error::Shutdown)),
            "{res:?}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // Again, with a restart that serves them: the retried reads see the write.
    cluster.restart(0);
    let mut c = cluster.client(quick());
    HELD.store(0, Ordering::SeqCst);
    let seqs: Vec<u64> = (0..3).map(|_| c.send(KvOp::Get(0)).unwrap()).collect();
    assert_eq!(c.poll(Duration::from_millis(50)), None);
    wait_for(10, "the held reads", || HELD.load(Ordering::SeqCst) == 1);
    HOLD.store(false, Ordering::SeqCst);
    cluster.crash(0);
    cluster.restart(0);
    for _ in &seqs {
        let (seq, res) = c.poll(Duration::from_secs(10)).expect("an answer");
        assert!(seqs.contains(&seq));
        assert_eq!(res, Ok(KvOutput::Value(Some(b"a".to_vec()))));
    }
}

// -------------------------------------------------------------------------------------------
// Tickets: a parked read is answered only under a confirmation that covers it
// -------------------------------------------------------------------------------------------

/// While set, a [`HoldTickets`] holds the reads it is given (a leader whose confirmation round
/// does not come back), counting them in [`TICKET_HELD`], and passes the oldest held one to
/// its protocol for each count in [`TICKET_RELEASE`].
static TICKET_HOLD: AtomicBool = AtomicBool::new(false);
static TICKET_HELD: AtomicUsize = AtomicUsize::new(0);
static TICKET_RELEASE: AtomicUsize = AtomicUsize::new(0);

/// Protocol `R` with its reads held back on demand (only the test below uses it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HoldTickets<R> {
    inner: R,
    held: Vec<ReadId>,
}

impl<R: Replica<Cmd<Kv>>> HoldTickets<R> {
    fn release(&mut self, out: &mut Out<Self, Cmd<Kv>>) {
        while !self.held.is_empty()
            && TICKET_RELEASE
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            let id = self.held.remove(0);
            self.inner.read(vec![id], out);
        }
    }
}

impl<R: Replica<Cmd<Kv>>> Replica<Cmd<Kv>> for HoldTickets<R> {
    type Msg = R::Msg;
    type Timer = R::Timer;
    type Durable = R::Durable;
    type Write = R::Write;
    const NAME: &'static str = R::NAME;
    const READS: bool = R::READS;

    fn boot(
        id: NodeId,
        members: &[NodeId],
        durable: Option<&Self::Durable>,
        cfg: &Config,
        out: &mut Out<Self, Cmd<Kv>>,
    ) -> Self {
        HoldTickets {
            inner: R::boot(id, members, durable, cfg, out),
            held: Vec::new(),
        }
    }
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, out: &mut Out<Self, Cmd<Kv>>) {
        self.release(out);
        self.inner.on_message(from, msg, out);
    }
    fn on_timer(&mut self, timer: Self::Timer, out: &mut Out<Self, Cmd<Kv>>) {
        self.release(out);
        self.inner.on_timer(timer, out);
    }
    fn propose(&mut self, cmds: Vec<Cmd<Kv>>, out: &mut Out<Self, Cmd<Kv>>) {
        self.release(out);
        self.inner.propose(cmds, out);
    }
    fn read(&mut self, ids: Vec<ReadId>, out: &mut Out<Self, Cmd<Kv>>) {
        self.release(out);
        if TICKET_HOLD.load(Ordering::SeqCst) {
            TICKET_HELD.fetch_add(ids.len(), Ordering::SeqCst);
            self.held.extend(ids);
            return;
        }
        self.inner.read(ids, out);
    }
    wrapped_replica!(inner, R);
}

/// Two readers park a read each at the leader, in two groups its protocol holds. Nothing is
/// answered before a confirmation; releasing the first group answers the first reader only
/// (the second took its ticket after that group formed); releasing the second answers it.
/// Run for Raft only: the switches are global, and the node code under test is the
/// protocol-neutral runtime.
#[test]
fn a_parked_read_waits_for_a_confirmation_that_covers_its_ticket() {
    type Held = HoldTickets<RaftKv>;
    let mut cluster = Cluster::<Held, Kv>::new(3, runtime(ReadMode::ReadIndex, false)).unwrap();
    let leader = leader_of(&cluster);
    // No resends: each reader's one ticket stays in its group.
    let patient = || ClientConfig {
        retry_after: Duration::from_secs(20),
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let (mut r1, mut r2) = (cluster.client(patient()), cluster.client(patient()));
    // Writes teach each reader where the leader is, so its reads park there.
    for (r, v) in [(&mut r1, b"a"), (&mut r2, b"b")] {
        assert_eq!(r.submit(KvOp::Put(1, v.to_vec())), Ok(KvOutput::Written));
    }
    TICKET_HOLD.store(true, Ordering::SeqCst);
    let s1 = r1.send(KvOp::Get(1)).unwrap();
    assert_eq!(r1.poll(Duration::from_millis(30)), None, "no round yet");
    wait_for(10, "the first group held", || {
        TICKET_HELD.load(Ordering::SeqCst) == 1
    });
    let s2 = r2.send(KvOp::Get(1)).unwrap();
    assert_eq!(r2.poll(Duration::from_millis(30)), None, "no round yet");
    wait_for(10, "the second group held", || {
        TICKET_HELD.load(Ordering::SeqCst) == 2
    });
    assert_eq!(cluster.local_reads(leader), 0, "answered before any round");

    TICKET_RELEASE.store(1, Ordering::SeqCst);
    let got = r1
        .poll(Duration::from_secs(5))
        .expect("the first read confirmed");
    assert_eq!(got, (s1, Ok(KvOutput::Value(Some(b"b".to_vec())))));
    // The first group's confirmation does not cover a ticket taken after it formed.
    assert_eq!(
        r2.poll(Duration::from_millis(100)),
        None,
        "answered too early"
    );
    assert_eq!(cluster.local_reads(leader), 1);

    TICKET_RELEASE.store(1, Ordering::SeqCst);
    let got = r2
        .poll(Duration::from_secs(5))
        .expect("the second read confirmed");
    assert_eq!(got, (s2, Ok(KvOutput::Value(Some(b"b".to_vec())))));
    assert_eq!(cluster.local_reads(leader), 2);
    TICKET_HOLD.store(false, Ordering::SeqCst);
}
