//! Real crashes in the threaded runtime: nodes killed at any point of their loop (between any
//! two effects, before the sync, between the sync and the sends, between pushes, before the
//! answers), over storage that loses unsynced writes ([`LossyStorage`] over memory and over
//! files), restarted with nothing in memory (the state machine and the client sessions
//! rebuilt from the log). Leaders and followers are crashed under pipelined load; the client
//! history, final reads of every key included, must stay linearizable, so no acknowledged
//! write may be lost and no command may take effect twice (every write's value is unique and
//! clients' compare-and-swaps chain on the value they last saw, so a second application shows).
//!
//! Each run also shows its faults were real: writes were lost, each crash hit the point it
//! aimed at, and each restarted node re-applied slots it had applied before its crash.
//!
//! And the other way round: with the bug zoo's B2 (a retried request applied twice) switched
//! on in the runtime, clients that resend eagerly produce a history the check rejects.
//!
//! No timed assertions: time limits only bound how long a broken run hangs.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use paxraft::lincheck::{check_kv, KeyFailure, LinError, Op};
use paxraft::runtime::{
    Client, ClientConfig, Cluster, Cmd, CrashPoint, Error, FileStorage, LossyStorage, MemStorage,
    RuntimeConfig, Storage,
};
use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Key, Kv, KvOp, KvOutput, Value};
use paxraft_impls::{Bug, Replica};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Scratch;

type RaftKv = Raft<Cmd<Kv>>;
type PaxosKv = MultiPaxos<Cmd<Kv>>;

/// Few keys, so clients contend and compare-and-swap chains cross.
const KEYS: Key = 8;

/// Wait until `cond` holds, failing the test after `secs` (a hang, not a slow run).
pub(super) fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

// -------------------------------------------------------------------------------------------
// The workload: unique values, compare-and-swap chains
// -------------------------------------------------------------------------------------------

/// One client's operations: 30% get, 30% put, 40% cas expecting the value this client last
/// wrote or saw on that key. Every written value is unique (client, op number), so a command
/// applied twice, or an acknowledged write lost, contradicts some later read or swap.
struct Chains {
    client: u64,
    n: u64,
    rng: StdRng,
    known: HashMap<Key, Option<Value>>,
}

impl Chains {
    fn new(client: u64, seed: u64) -> Self {
        Chains {
            client,
            n: 0,
            rng: StdRng::seed_from_u64(seed ^ client.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            known: HashMap::new(),
        }
    }

    fn next(&mut self, keys: Key) -> KvOp {
        self.n += 1;
        let key = self.rng.gen_range(0..keys);
        let value = [self.client.to_le_bytes(), self.n.to_le_bytes()].concat();
        match self.rng.gen_range(0..10) {
            0..=2 => KvOp::Get(key),
            3..=5 => KvOp::Put(key, value),
            _ => KvOp::Cas {
                key,
                expect: self.known.get(&key).cloned().flatten(),
                new: value,
            },
        }
    }

    fn learn(&mut self, op: &KvOp, out: &KvOutput) {
        let (key, now) = match (op, out) {
            (KvOp::Get(k), KvOutput::Value(v)) => (*k, v.clone()),
            (KvOp::Put(k, v), KvOutput::Written) => (*k, Some(v.clone())),
            (KvOp::Cas { key, new, .. }, KvOutput::Cas(Ok(()))) => (*key, Some(new.clone())),
            (KvOp::Cas { key, .. }, KvOutput::Cas(Err(found))) => (*key, found.clone()),
            _ => panic!("{op:?} answered {out:?}"),
        };
        self.known.insert(key, now);
    }
}

/// Drive one pipelined client: keep `pipeline` requests outstanding until `stop` (or `ops`
/// are done), then collect what is outstanding. Timed-out requests go into the history as
/// pending (they may or may not have taken effect). `pace` paces each answer, to keep the
/// history small enough to check.
#[allow(clippy::too_many_arguments)]
fn client_loop<R: Replica<Cmd<Kv>>>(
    mut c: Client<R, Kv>,
    pipeline: usize,
    keys: Key,
    ops: u64,
    pace: Duration,
    start: Instant,
    stop: &AtomicBool,
    done: &AtomicU64,
) -> Vec<Op> {
    let now = || start.elapsed().as_nanos() as u64;
    let mut w = Chains::new(c.id(), 0x5eed);
    let mut calls = HashMap::new();
    let mut hist = Vec::new();
    let mut sent = 0;
    loop {
        let stopping = stop.load(Ordering::Relaxed) || sent >= ops;
        while !stopping && c.outstanding() < pipeline {
            let op = w.next(keys);
            let call = now();
            let seq = c.send(op.clone()).expect("below the pipeline bound");
            calls.insert(seq, (call, op));
            sent += 1;
        }
        if stopping && c.outstanding() == 0 {
            return hist;
        }
        let Some((seq, res)) = c.poll(Duration::from_secs(30)) else {
            panic!("client {}: no answer within 30 s", c.id());
        };
        let (call, op) = calls.remove(&seq).expect("answers match requests");
        let (ret, out) = match res {
            Ok(out) => {
                w.learn(&op, &out);
                done.fetch_add(1, Ordering::Relaxed);
                (Some(now()), Some(out))
            }
            Err(Error::Timeout) => (None, None),
            Err(e) => panic!("client {} request {seq}: {e}", c.id()),
        };
        hist.push(Op {
            client: c.id(),
            call,
            ret,
            op,
            out,
        });
        if !pace.is_zero() {
            thread::sleep(pace);
        }
    }
}

/// Client threads running [`client_loop`] against a cluster (also used by `membership`).
pub(super) struct Load {
    start: Instant,
    /// Whether each client stops by itself after a number of ops.
    bounded: bool,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<Vec<Op>>>,
}

pub(super) struct LoadConfig {
    pub(super) clients: usize,
    pub(super) pipeline: usize,
    pub(super) keys: Key,
    /// Per client (`u64::MAX`: until stopped).
    pub(super) ops: u64,
    pub(super) pace: Duration,
    pub(super) client: ClientConfig,
}

impl Load {
    pub(super) fn start<R: Replica<Cmd<Kv>>>(
        cluster: &mut Cluster<R, Kv>,
        cfg: &LoadConfig,
    ) -> Self {
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..cfg.clients)
            .map(|_| {
                let c = cluster.client(cfg.client.clone());
                let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
                let (pipeline, keys, ops, pace) = (cfg.pipeline, cfg.keys, cfg.ops, cfg.pace);
                thread::spawn(move || {
                    client_loop(c, pipeline, keys, ops, pace, start, &stop, &done)
                })
            })
            .collect();
        Load {
            start,
            bounded: cfg.ops != u64::MAX,
            stop,
            done,
            threads,
        }
    }

    pub(super) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Wait until `n` more operations were acknowledged.
    pub(super) fn progress(&self, n: u64, what: &str) {
        let target = self.done() + n;
        wait_for(30, what, || self.done() >= target);
    }

    /// Stop the clients (or, with a bounded number of ops, wait for them), collect their
    /// history, then read every key back through a fresh client (the reads join the history:
    /// an acknowledged write lost shows there).
    pub(super) fn finish<R: Replica<Cmd<Kv>>>(
        self,
        cluster: &mut Cluster<R, Kv>,
        keys: Key,
    ) -> Vec<Op> {
        if !self.bounded {
            self.stop.store(true, Ordering::Relaxed);
        }
        let mut hist = Vec::new();
        for t in self.threads {
            hist.extend(t.join().expect("client thread"));
        }
        let mut reader = cluster.client(ClientConfig {
            timeout: Duration::from_secs(20),
            ..ClientConfig::default()
        });
        for key in 0..keys {
            let call = self.start.elapsed().as_nanos() as u64;
            let out = reader.submit(KvOp::Get(key)).expect("final read");
            hist.push(Op {
                client: reader.id(),
                call,
                ret: Some(self.start.elapsed().as_nanos() as u64),
                op: KvOp::Get(key),
                out: Some(out),
            });
        }
        hist
    }
}

/// Every node is up and has applied the same commands to equal state machines.
fn converged<R: Replica<Cmd<Kv>>>(c: &Cluster<R, Kv>) -> bool {
    let n = c.members().len();
    (0..n).all(|i| c.is_up(i))
        && (1..n).all(|i| c.applied(i) == c.applied(0) && c.state(i) == c.state(0))
        && (0..n).all(|i| c.status(i).is_some_and(|s| s.commit == c.applied(0).0))
}

// -------------------------------------------------------------------------------------------
// Clusters over lossy storage
// -------------------------------------------------------------------------------------------

#[derive(Copy, Clone, Debug, PartialEq)]
enum Disk {
    Memory,
    File,
}

/// A 3-node cluster whose nodes lose unsynced writes when they crash (seeded per node), over
/// memory or files in a fresh directory (removed when the returned guard drops).
fn lossy_cluster<R: Replica<Cmd<Kv>>>(
    disk: Disk,
    name: &str,
    seed: u64,
) -> (Cluster<R, Kv>, Option<Scratch>)
where
    FileStorage<R, Cmd<Kv>>: Storage<R, Cmd<Kv>>,
{
    let cfg = RuntimeConfig {
        seed,
        ..RuntimeConfig::default()
    };
    let seed_of = move |id: paxraft_impls::NodeId| seed ^ ((u64::from(id.0) + 1) * 0x1000_0001);
    match disk {
        Disk::Memory => {
            let c = Cluster::with_storage(3, cfg, |id| {
                let s: Box<dyn Storage<R, Cmd<Kv>>> = Box::new(LossyStorage::new(
                    MemStorage::<R, Cmd<Kv>>::default(),
                    seed_of(id),
                ));
                Ok(s)
            })
            .expect("cluster");
            (c, None)
        }
        Disk::File => {
            let dir = Scratch::new(&format!("crash-{name}-{}", R::NAME));
            let d = dir.to_path_buf();
            let c = Cluster::with_storage(3, cfg, move |id| {
                let file = FileStorage::<R, Cmd<Kv>>::open(d.join(format!("{id}.log")))?;
                let s: Box<dyn Storage<R, Cmd<Kv>>> =
                    Box::new(LossyStorage::new(file, seed_of(id)));
                Ok(s)
            })
            .expect("cluster");
            (c, Some(dir))
        }
    }
}

/// A [`lossy_cluster`] under [`sweep_load`], past a first load.
fn loaded<R: Replica<Cmd<Kv>>>(
    disk: Disk,
    name: &str,
    seed: u64,
) -> (Cluster<R, Kv>, Option<Scratch>, Load)
where
    FileStorage<R, Cmd<Kv>>: Storage<R, Cmd<Kv>>,
{
    let (mut cluster, dir) = lossy_cluster::<R>(disk, name, seed);
    let load = Load::start(&mut cluster, &sweep_load());
    load.progress(200, "a first load");
    (cluster, dir, load)
}

fn lost_writes<R: Replica<Cmd<Kv>>>(c: &Cluster<R, Kv>) -> u64 {
    (0..c.members().len()).map(|i| c.lost_writes(i)).sum()
}

fn sweep_load() -> LoadConfig {
    LoadConfig {
        clients: 4,
        pipeline: 4,
        keys: KEYS,
        ops: u64::MAX,
        // At most about 4,000 ops/s in all: histories of a few thousand operations.
        pace: Duration::from_millis(1),
        client: ClientConfig {
            retry_after: Duration::from_millis(40),
            ..ClientConfig::default()
        },
    }
}

/// The up node that leads, or (`leader == false`) an up node that does not.
fn pick<R: Replica<Cmd<Kv>>>(c: &Cluster<R, Kv>, leader: bool) -> usize {
    let mut l = None;
    wait_for(30, "a leader", || {
        l = c.leader();
        l.is_some()
    });
    let l = l.unwrap();
    if leader {
        l
    } else {
        (1..c.members().len())
            .map(|d| (l + d) % c.members().len())
            .find(|&i| c.is_up(i))
            .expect("an up follower")
    }
}

/// One crash of node `target`, armed by `arm` under load, then its restart; see
/// [`crash_and_restart_all`]. Returns the point it died at.
fn crash_and_restart<R: Replica<Cmd<Kv>>>(
    cluster: &mut Cluster<R, Kv>,
    load: &Load,
    target: usize,
    what: &str,
    arm: impl FnOnce(&mut Cluster<R, Kv>),
) -> CrashPoint {
    crash_and_restart_all(cluster, load, &[target], what, arm)[0]
}

/// A crash of the nodes `targets` at once, armed by `arm` under load, then their restart.
/// While a majority stays up, it serves on. Checks that each restarted node rebuilt: once
/// caught up, it has re-applied slots it had applied before the crash (a state machine that
/// survived the crash would skip them). Returns the points they died at.
fn crash_and_restart_all<R: Replica<Cmd<Kv>>>(
    cluster: &mut Cluster<R, Kv>,
    load: &Load,
    targets: &[usize],
    what: &str,
    arm: impl FnOnce(&mut Cluster<R, Kv>),
) -> Vec<CrashPoint> {
    wait_for(30, "the targets to apply something", || {
        targets.iter().all(|&t| cluster.applied(t).0 > 0)
    });
    let boots: Vec<u64> = targets.iter().map(|&t| cluster.boots(t)).collect();
    arm(cluster);
    wait_for(30, &format!("nodes {targets:?} to crash ({what})"), || {
        targets.iter().all(|&t| !cluster.is_up(t))
    });
    let points = targets
        .iter()
        .map(|&t| {
            cluster
                .crash_point(t)
                .expect("it crashed through its switch")
        })
        .collect();
    // While a node is down, its view holds what it had applied when it died.
    let at_crash: Vec<u64> = targets.iter().map(|&t| cluster.applied(t).0).collect();
    if 2 * targets.len() < cluster.members().len() {
        load.progress(30, &format!("progress without nodes {targets:?} ({what})"));
    }
    for (&t, boots) in targets.iter().zip(boots) {
        cluster.restart(t);
        assert_eq!(cluster.boots(t), boots + 1);
    }
    for (&t, at_crash) in targets.iter().zip(at_crash) {
        wait_for(30, &format!("node {t} to catch up ({what})"), || {
            cluster.applied(t).0 >= at_crash && cluster.first_applied(t).is_some()
        });
        let first = cluster
            .first_applied(t)
            .expect("it applied since its restart");
        assert!(
            first <= at_crash,
            "node {t} ({what}) did not rebuild: first applied slot {first} after its restart, \
             {at_crash} applied before its crash"
        );
    }
    points
}

/// The end of every crash run: clients stopped, the cluster converged (a restarted node's
/// rebuilt state machine equals the others'), the history with the final reads linearizable,
/// no panic, and writes really lost.
fn check_run<R: Replica<Cmd<Kv>>>(
    mut cluster: Cluster<R, Kv>,
    load: Load,
    dir: Option<Scratch>,
    what: &str,
) {
    let hist = load.finish(&mut cluster, KEYS);
    let acknowledged = hist.iter().filter(|o| o.ret.is_some()).count();
    assert!(acknowledged > 300, "{what}: only {acknowledged} operations");
    wait_for(30, "every node to converge", || converged(&cluster));
    assert_eq!(cluster.panics(), vec![], "{what}");
    let lost = lost_writes(&cluster);
    assert!(lost > 0, "{what}: no crash lost an unsynced write");
    let boots: u64 = (0..cluster.members().len()).map(|i| cluster.boots(i)).sum();
    // A report, not a property (run with --nocapture).
    println!(
        "{what}: {acknowledged} ops acknowledged, {} restarts, {lost} writes lost",
        boots - cluster.members().len() as u64
    );
    cluster.shutdown();
    check_kv(&hist).unwrap_or_else(|e| panic!("{what}: history not linearizable: {e}"));
    drop(dir);
}

/// Every point a leader reaches in its loop under load; a follower reaches all but the last
/// (it answers no client). `Redirect` and `Idle` are left to the random crashes.
const LEADER_POINTS: [CrashPoint; 7] = [
    CrashPoint::Persist,
    CrashPoint::Send,
    CrashPoint::Timer,
    CrashPoint::Commit,
    CrashPoint::Sync,
    CrashPoint::Push,
    CrashPoint::Answer,
];

/// The deterministic sweep: the leader, then a follower, crashed at each point of its loop
/// in turn (at the first, second or third occurrence from the moment it is armed), each time
/// restarted; then crashes just before the group sync until one has lost writes (each such
/// crash drops a uniformly drawn suffix of at least one unsynced write, so more than a few
/// are rarely needed).
fn point_sweep<R: Replica<Cmd<Kv>>>(disk: Disk, name: &str)
where
    FileStorage<R, Cmd<Kv>>: Storage<R, Cmd<Kv>>,
{
    let what = format!("{} {disk:?} point sweep", R::NAME);
    let (mut cluster, dir, load) = loaded::<R>(disk, name, 0xc4a5);
    let mut round = 0;
    for (leader, points) in [(true, &LEADER_POINTS[..]), (false, &LEADER_POINTS[..6])] {
        for &point in points {
            let target = pick(&cluster, leader);
            let role = if leader { "leader" } else { "follower" };
            let here = format!("{what}: {role} at {point:?}");
            let n = round % 3;
            round += 1;
            let hit = crash_and_restart(&mut cluster, &load, target, &here, |c| {
                c.crash_at(target, point, n)
            });
            assert_eq!(hit, point, "{here}");
        }
    }
    until_writes_lost(&mut cluster, &load, &what);
    check_run(cluster, load, dir, &what);
}

/// Crash nodes just before their group sync until some crash has lost writes. Each such crash
/// finds at least one unsynced write and drops a uniformly drawn part of them, so it loses
/// something at least half the time: 30 tries fail to only about once in 10^9 runs.
fn until_writes_lost<R: Replica<Cmd<Kv>>>(cluster: &mut Cluster<R, Kv>, load: &Load, what: &str) {
    let mut tries = 0;
    while lost_writes(cluster) == 0 {
        tries += 1;
        assert!(tries <= 30, "{what}: 30 crashes before a sync lost nothing");
        let target = pick(cluster, tries % 2 == 0);
        let hit = crash_and_restart(cluster, load, target, what, |c| {
            c.crash_at(target, CrashPoint::Sync, 0)
        });
        assert_eq!(hit, CrashPoint::Sync);
    }
}

/// `crash_after` sweeps: the leader or a follower (alternately) dies after `n` more crash
/// points of any kind, `n` growing; then crashes at random moments ([`Cluster::crash`] from
/// the test thread, landing wherever the node is), of a random node; then crashes of two
/// nodes of three at once.
fn count_and_random_sweep<R: Replica<Cmd<Kv>>>(disk: Disk, name: &str)
where
    FileStorage<R, Cmd<Kv>>: Storage<R, Cmd<Kv>>,
{
    let what = format!("{} {disk:?} count and random sweep", R::NAME);
    let (mut cluster, dir, load) = loaded::<R>(disk, name, 0x7a11);
    let mut hit = BTreeSet::new();
    for (round, n) in [0u64, 1, 2, 3, 5, 8, 13, 21, 34, 55]
        .into_iter()
        .enumerate()
    {
        let target = pick(&cluster, round % 2 == 0);
        let here = format!("{what}: crash_after {n}");
        let p = crash_and_restart(&mut cluster, &load, target, &here, |c| {
            c.crash_after(target, n)
        });
        hit.insert(format!("{p:?}"));
    }
    let mut rng = StdRng::seed_from_u64(0xd1ce);
    for round in 0..10 {
        let target = rng.gen_range(0..cluster.members().len());
        thread::sleep(Duration::from_micros(rng.gen_range(0..20_000)));
        let here = format!("{what}: random crash {round}");
        let p = crash_and_restart(&mut cluster, &load, target, &here, |c| c.crash(target));
        hit.insert(format!("{p:?}"));
    }
    // A majority at once (the leader and a follower), each at a random point: then only what
    // both synced is left of their unsynced writes, and the cluster stops until they return.
    for round in 0..4 {
        let pair = [pick(&cluster, true), pick(&cluster, false)];
        let here = format!("{what}: majority crash {round}");
        let points = crash_and_restart_all(&mut cluster, &load, &pair, &here, |c| {
            for t in pair {
                c.crash_after(t, rng.gen_range(0..200));
            }
        });
        hit.extend(points.iter().map(|p| format!("{p:?}")));
        load.progress(30, &format!("progress after {here}"));
    }
    // Not a property, a report of what the sweeps reached (run with --nocapture).
    println!("{what}: crash points hit: {hit:?}");
    until_writes_lost(&mut cluster, &load, &what);
    check_run(cluster, load, dir, &what);
}

/// The crash that persist-before-send is for. The third node is cut off, so the leader and
/// one follower commit alone; the follower is crashed just before its group sync (losing
/// some of the writes it had not synced), and the leader is crashed right after it and stays
/// down. The partition heals and the follower, restarted, serves with the third node: every
/// write acknowledged must be in what the follower kept, since it acknowledged only synced
/// writes. Repeated until the follower's crash lost writes [`LOSSY_ROUNDS`] times.
///
/// Measured: with the acknowledgements pushed before the sync (a runtime breaking the rule,
/// its sync still a crash point), this test failed the history check in 18 runs of 20 (the
/// sweeps above, which crash one node at a time, in none of 5).
fn only_the_lossy_follower_remembers<R: Replica<Cmd<Kv>>>(disk: Disk, name: &str)
where
    FileStorage<R, Cmd<Kv>>: Storage<R, Cmd<Kv>>,
{
    let what = format!("{} {disk:?} lossy follower remembers", R::NAME);
    let (mut cluster, dir, load) = loaded::<R>(disk, name, 0xf011);
    let (mut tries, mut lossy) = (0, 0);
    while lossy < LOSSY_ROUNDS {
        tries += 1;
        let leader = pick(&cluster, true);
        let follower = pick(&cluster, false);
        let cut = 3 - leader - follower;
        let lost = cluster.lost_writes(follower);
        cluster.partition(&[&[leader, follower], &[cut]]);
        load.progress(100, &format!("{what}: progress with node {cut} cut off"));
        cluster.crash_at(follower, CrashPoint::Sync, 0);
        wait_for(30, "the follower to crash", || !cluster.is_up(follower));
        cluster.crash(leader);
        cluster.heal();
        cluster.restart(follower);
        load.progress(100, &format!("{what}: progress without the leader"));
        cluster.restart(leader);
        if cluster.lost_writes(follower) > lost {
            lossy += 1;
        }
        assert!(
            tries < 40,
            "{what}: {lossy} of 40 crashes before a sync lost writes"
        );
    }
    check_run(cluster, load, dir, &what);
}

/// Rounds of [`only_the_lossy_follower_remembers`] whose crash lost writes.
const LOSSY_ROUNDS: usize = 3;

/// One test per protocol, storage and scenario (the test's name names its files too).
macro_rules! crash_tests {
    ($($name:ident: $scenario:ident::<$r:ty>($disk:expr);)*) => {$(
        #[test]
        fn $name() {
            $scenario::<$r>($disk, stringify!($name));
        }
    )*};
}

crash_tests! {
    raft_acknowledged_writes_survive_when_only_a_lossy_follower_has_them:
        only_the_lossy_follower_remembers::<RaftKv>(Disk::Memory);
    multipaxos_acknowledged_writes_survive_when_only_a_lossy_follower_has_them:
        only_the_lossy_follower_remembers::<PaxosKv>(Disk::File);
    raft_crash_point_sweep_lossy_memory: point_sweep::<RaftKv>(Disk::Memory);
    raft_crash_point_sweep_lossy_file: point_sweep::<RaftKv>(Disk::File);
    multipaxos_crash_point_sweep_lossy_memory: point_sweep::<PaxosKv>(Disk::Memory);
    multipaxos_crash_point_sweep_lossy_file: point_sweep::<PaxosKv>(Disk::File);
    raft_crash_after_and_random_crashes_lossy_memory:
        count_and_random_sweep::<RaftKv>(Disk::Memory);
    raft_crash_after_and_random_crashes_lossy_file: count_and_random_sweep::<RaftKv>(Disk::File);
    multipaxos_crash_after_and_random_crashes_lossy_memory:
        count_and_random_sweep::<PaxosKv>(Disk::Memory);
    multipaxos_crash_after_and_random_crashes_lossy_file:
        count_and_random_sweep::<PaxosKv>(Disk::File);
}

// -------------------------------------------------------------------------------------------
// B2 switched on in the runtime: the history check must reject it
// -------------------------------------------------------------------------------------------

/// Four pipelined clients resending eagerly (after 1 ms of silence) run chained operations on
/// four keys while the leader is crashed, again and again, in the middle of applying a batch
/// of commits: their requests are committed but unanswered, so the clients resend them to the
/// next leader, and they are committed twice. With sessions the second copy is answered with
/// the first one's result; with B2 it is applied again, and what the client hears (a swap
/// that failed because the key holds the very value it wrote, a write that overwrites a later
/// one) contradicts the rest of the history. Returns the history check's verdict and, at a
/// node, (commands applied, requests that took effect).
fn resends_across_crashes(b2: bool) -> (Result<(), LinError>, u64, u64) {
    let mut cfg = RuntimeConfig::default();
    if b2 {
        assert!(
            cfg.protocol.set_bug(Bug::DuplicateApply),
            "tests build with the bug zoo"
        );
    }
    let mut cluster = Cluster::<RaftKv, Kv>::new(3, cfg).expect("cluster");
    let keys = 4;
    let load = Load::start(
        &mut cluster,
        &LoadConfig {
            clients: 4,
            pipeline: 8,
            keys,
            ops: u64::MAX,
            pace: Duration::from_micros(200),
            client: ClientConfig {
                retry_after: Duration::from_millis(1),
                ..ClientConfig::default()
            },
        },
    );
    load.progress(200, "a first load");
    for _ in 0..CRASHES_PER_RUN {
        let leader = pick(&cluster, true);
        let hit = crash_and_restart(&mut cluster, &load, leader, "B2 run", |c| {
            c.crash_at(leader, CrashPoint::Commit, 0)
        });
        assert_eq!(hit, CrashPoint::Commit);
    }
    let hist = load.finish(&mut cluster, keys);
    wait_for(30, "every node to converge", || converged(&cluster));
    let (commits, took_effect) = (cluster.commits(0), cluster.applied(0).1);
    println!(
        "B2 {b2}: {} ops, {commits} commands applied, {took_effect} took effect",
        hist.len()
    );
    assert_eq!(cluster.panics(), vec![]);
    cluster.shutdown();
    (check_kv(&hist), commits, took_effect)
}

/// Leader crashes in one run of [`resends_across_crashes`]. Measured: with 12, B2 escaped 2
/// runs of 20; with 8, 3 of 20 (and crashing before the answers instead, 5 of 20).
const CRASHES_PER_RUN: usize = 10;

#[test]
fn duplicate_apply_b2_in_the_runtime_fails_the_history_check() {
    // Without the bug: resends were committed twice, the sessions answered the duplicates,
    // and the history is linearizable.
    let (verdict, commits, took_effect) = resends_across_crashes(false);
    verdict.expect("without B2 the history is linearizable");
    assert!(
        commits > took_effect,
        "no request was committed twice ({commits} commands, {took_effect} took effect): \
         the workload does not exercise the sessions"
    );
    // With it: the check fails. Retried, as a run may escape (about one in eight): ten runs
    // all escaping is a one in 10^9 event.
    const ATTEMPTS: usize = 10;
    let e = (0..ATTEMPTS)
        .find_map(|_| {
            let (verdict, commits, took_effect) = resends_across_crashes(true);
            assert_eq!(commits, took_effect, "B2: every duplicate takes effect");
            verdict.err()
        })
        .unwrap_or_else(|| panic!("B2 escaped the history check {ATTEMPTS} times"));
    assert!(
        matches!(e.failure, KeyFailure::NotLinearizable { .. }),
        "{e}"
    );
}
