//! The bug table: every bug of ../shared/BUGZOO.md with the smallest configuration that
//! exposes it, the property expected to catch it and how it is searched ([`Detector`]), and
//! the command that reproduces it. Data only: [`super::run()`] runs an entry.

use paxraft_impls::multipaxos::names::{CONFIGURATIONS_AGREE, PROPOSALS_WITHIN_WINDOW};
use paxraft_impls::raft::names::{
    COMMITTED_ON_A_QUORUM, ELECTION_SAFETY, LEADER_COMPLETENESS, ONE_CHANGE_AT_A_TIME,
    TRANSFER_TO_CAUGHT_UP,
};
use paxraft_impls::Bug;
use paxraft_models::check::{check_command, SearchOptions, Strategy};
use paxraft_models::properties::names;
use paxraft_models::ModelConfig;

use crate::protocol::Protocol;
use crate::simulate::cluster::SimOptions;
pub use crate::simulate::SETTLES;

/// How a bug is expected to be caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detector {
    /// Exhaustive model checking (stateright) of `config` to `depth`.
    Model {
        /// The model, with no bug switched on (the runner switches the bug on).
        config: ModelConfig,
        /// BFS gives the shortest counterexample; DFS goes deeper with less memory.
        strategy: Strategy,
        /// Most steps (actions) in an explored path.
        depth: usize,
    },
    /// The proptest fault-schedule search (see [`crate::simulate`]) with these options, the
    /// bug off (the runner switches it on). Bounded by `runs` random schedules.
    Schedules(SimOptions),
    /// The adversarial lease sweep over the deterministic driver
    /// ([`paxraft_impls::sweep`]: every assignment of clock rates, waits from 0 to 200 ms,
    /// a lost renewal, a restarted follower, a leadership transfer; 13,284 scenarios), with this protocol
    /// configuration, the bug off (the runner switches it on). For the lease bugs: their
    /// window is one scenario in a thousand, which random schedules rarely time right.
    Sweep(paxraft_impls::Config),
}

/// One bug of the zoo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZooBug {
    /// The switch.
    pub bug: Bug,
    /// The protocol it is injected into.
    pub protocol: Protocol,
    /// The property expected to catch it (a name from [`names`] or a protocol invariant).
    pub property: &'static str,
    /// How it is caught, and the smallest configuration that exposes it.
    pub detector: Detector,
    /// Steps of the smallest known scenario in BUGZOO.md, when it gives a number.
    pub known_steps: Option<usize>,
    /// The smallest known scenario, in BUGZOO.md's words.
    pub known: &'static str,
    /// Where the bug comes from: a paper section or the public incident it mirrors.
    pub source: &'static str,
}

/// The smallest model the BFS detectors start from: the defaults with one op per client
/// and without PreVote and CheckQuorum (each adds a round to every election, which lengthens
/// every trace that needs a leader change by two actions). Each bug's clean half runs the
/// same configuration, so a false alarm would show; the in-flight bound stays the default.
fn raft_base() -> ModelConfig {
    let d = ModelConfig::default();
    ModelConfig {
        ops: 1,
        protocol: paxraft_impls::Config {
            pre_vote: false,
            check_quorum: false,
            ..d.protocol.clone()
        },
        ..d
    }
}

/// The knobs of a bug's fault-schedule search that differ between bugs.
#[derive(Copy, Clone)]
struct SimKnobs {
    servers: usize,
    clients: usize,
    ops: usize,
    steps: usize,
    runs: u32,
    loss_pct: u8,
    /// Raft without PreVote and CheckQuorum: leaders change far more often, which the safety
    /// bugs need (the clean half runs without them too).
    no_pre_vote: bool,
}

const RAFT_SIM: SimKnobs = SimKnobs {
    servers: 3,
    clients: 2,
    ops: 3,
    steps: 200,
    runs: 2_000,
    loss_pct: 5,
    no_pre_vote: true,
};

const PAXOS_SIM: SimKnobs = SimKnobs {
    no_pre_vote: false,
    ..RAFT_SIM
};

/// More clients and ops: more slots in flight when leaders change.
const PAXOS_SIM_DEEP: SimKnobs = SimKnobs {
    clients: 3,
    ops: 6,
    steps: 300,
    runs: 5_000,
    loss_pct: 10,
    ..PAXOS_SIM
};

/// A fault-schedule search: short runs with partition windows and some message loss (a
/// leader change needs them), then a fault-free settling phase after which every op must be
/// answered and every server agree. No crashes, no duplicates: the bugs need neither.
fn sim(k: SimKnobs) -> SimOptions {
    let mut protocol = paxraft_impls::Config::default();
    if k.no_pre_vote {
        protocol.pre_vote = false;
        protocol.check_quorum = false;
    }
    SimOptions {
        seed: 0,
        runs: k.runs,
        steps: k.steps,
        settle_steps: 2_000,
        servers: k.servers,
        voters: 0,
        changes: Vec::new(),
        clients: k.clients,
        ops: k.ops,
        // One request per client at a time and whole steps (no crashes here anyway): the
        // tuned searches below were measured that way.
        pipeline: 1,
        mid_step: false,
        loss_pct: k.loss_pct,
        dup_pct: 0,
        crash_pct: 0,
        crashes: 0,
        partitions: true,
        protocol,
        max_shrink_iters: 300,
    }
}

/// R1's search. A new leader's own no-op rides on every AppendEntries it sends, so an
/// older-term entry is almost never counted alone (the Figure 8 window) unless appends carry
/// one entry each (`max_batch` 1); and Figure 8 needs leaders to crash and come back.
fn figure8_sim() -> SimOptions {
    let mut o = sim(RAFT_SIM);
    o.protocol.max_batch = 1;
    o.crash_pct = 5;
    o.crashes = 3;
    o.runs = 3_000;
    o.steps = 400;
    o
}

/// A read bug's search: `k` with reads served by ReadIndex (and by followers too when
/// `follower_reads`), one op at a time per client so that a read starts after the write
/// before it was answered (a stale read is then a violation, not an overlap).
fn reads_sim(k: SimKnobs, follower_reads: bool) -> SimOptions {
    let mut o = sim(k);
    o.protocol.reads = paxraft_impls::ReadMode::ReadIndex;
    o.protocol.follower_reads = follower_reads;
    o
}

/// A local-read bug's search: `k` with the lease sweep's leases ([`lease_config`]),
/// CheckQuorum on as leases need; the hosts answer reads alone whenever the replica allows it
/// ([`paxraft_impls::Replica::local_reads`]).
fn lease_sim(k: SimKnobs) -> SimOptions {
    let mut o = sim(k);
    o.protocol = paxraft_impls::Config {
        pre_vote: o.protocol.pre_vote,
        check_quorum: true,
        ..lease_config()
    };
    o
}

/// A snapshot bug's search: `k` with a snapshot every 2 committed slots, shipped in 8-byte
/// chunks, so that compaction and catch-up from a snapshot interleave with the leader
/// changes the partitions bring (with whole-snapshot chunks S5 shows as a cluster that does
/// not settle, a later symptom).
fn snapshot_sim(k: SimKnobs) -> SimOptions {
    let mut o = sim(k);
    o.protocol.snapshots = Some(paxraft_impls::SnapshotPolicy { every: 2, chunk: 8 });
    o
}

/// S6's search: [`PAXOS_SIM_DEEP`] (slots open when leaders change) with one slot per
/// message (`max_batch` 1), so that a promise reporting two or more slots travels in chunks
/// and a candidate can hear some of them before the others.
fn chunked_sim() -> SimOptions {
    let mut o = sim(PAXOS_SIM_DEEP);
    o.protocol.max_batch = 1;
    o
}

/// The smallest model the snapshot bugs show in: [`raft_base`] with a snapshot at every
/// committed slot (one chunk each), so that the first commit already compacts.
fn snapshot_base() -> ModelConfig {
    let mut m = raft_base();
    m.protocol.snapshots = Some(paxraft_impls::SnapshotPolicy {
        every: 1,
        chunk: paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK,
    });
    m
}

/// The membership bugs' model: `raft_base` on `servers` servers, the first `voters` voting,
/// one client with one op, and the operator's `changes` (asked of any leader at any step).
fn membership_base(servers: usize, voters: usize, changes: &[&str]) -> ModelConfig {
    ModelConfig {
        servers,
        voters,
        changes: changes
            .iter()
            .map(|c| paxraft_impls::Change::parse(c).expect("a valid change"))
            .collect(),
        clients: 1,
        ..raft_base()
    }
}

/// Multi-Paxos's membership model: [`membership_base`] with α = 1 (`--window 1`, what `paxraft
/// check` takes with `--changes`), so that a change takes effect at the next slot.
fn paxos_membership(servers: usize, voters: usize, changes: &[&str]) -> ModelConfig {
    let mut m = membership_base(servers, voters, changes);
    m.protocol.window = 1;
    m
}

/// [`paxos_membership`] on 3 servers, 2 voting, `add:2`, with a snapshot at every committed
/// slot (one chunk each), so that a spare that missed its change catches up from a snapshot.
fn paxos_membership_snapshots() -> ModelConfig {
    let mut m = paxos_membership(3, 2, &["add:2"]);
    m.protocol.snapshots = Some(paxraft_impls::SnapshotPolicy {
        every: 1,
        chunk: paxraft_impls::SnapshotPolicy::DEFAULT_CHUNK,
    });
    m
}

/// P9's search: the simulator's default fault profile (crashes and duplicates too: none of
/// 3,000 runs without them found it), the leader lease (CheckQuorum) off, or the old leader's
/// acceptors ignore the new proposer while it lives, and follower reads, which give the stale
/// leader more reads to answer (without them, none in 2,000 runs). Seed 0 finds it after
/// 1,225 runs.
fn p9_sim() -> SimOptions {
    let protocol = paxraft_impls::Config {
        pre_vote: false,
        check_quorum: false,
        reads: paxraft_impls::ReadMode::ReadIndex,
        follower_reads: true,
        ..paxraft_impls::Config::default()
    };
    SimOptions {
        runs: 3_000,
        steps: 200,
        clients: 2,
        ops: 3,
        pipeline: 1,
        loss_pct: 5,
        partitions: true,
        protocol,
        ..SimOptions::default()
    }
}

/// The model a read bug needs when random schedules miss it: one client that puts then gets
/// (the get after the put was answered), two terms, reads by ReadIndex, at most 3 messages in
/// flight (the base's 5 make 22 actions out of reach).
fn reads_model() -> ModelConfig {
    let mut cfg = ModelConfig {
        clients: 1,
        ops: 2,
        max_in_flight: 3,
        ..raft_base()
    };
    cfg.protocol.reads = paxraft_impls::ReadMode::ReadIndex;
    cfg
}

fn model(config: ModelConfig, depth: usize) -> Detector {
    Detector::Model {
        config,
        strategy: Strategy::Bfs,
        depth,
    }
}

/// Every bug of BUGZOO.md, in its order, with its detector.
pub fn registry() -> Vec<ZooBug> {
    use Bug::*;
    let d = raft_base();
    vec![
        ZooBug {
            bug: Figure8Commit,
            protocol: Protocol::Raft,
            // The entry committed too early is missing from the next leader's log before that
            // leader overwrites it anywhere: leader completeness fails first.
            property: LEADER_COMPLETENESS,
            detector: Detector::Schedules(figure8_sim()),
            known_steps: Some(11),
            known: "3 nodes, ~11 events",
            source: "Raft paper §5.4.2 and Figure 8",
        },
        ZooBug {
            bug: VoteWithoutLogCheck,
            protocol: Protocol::Raft,
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "3 nodes, a committed entry on two, the empty third wins",
            source: "Raft paper §5.4.1 (election restriction)",
        },
        ZooBug {
            bug: VoteNotPersisted,
            protocol: Protocol::Raft,
            property: ELECTION_SAFETY,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    max_crashes: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a crash-restarted voter votes twice in one term",
            source: "Raft paper Figure 2 (persistent state updated before responding)",
        },
        ZooBug {
            bug: LogNotPersisted,
            protocol: Protocol::Raft,
            // Caught first as "committed entries are on a quorum": the restarted follower lost
            // the entry the leader counted as committed (and could next win an election
            // without it: leader completeness, further down the same path).
            property: COMMITTED_ON_A_QUORUM,
            // Three messages in flight suffice for the 10-action trace; the default five
            // took 3.1M states (50 s) to reach it, three take 0.8M.
            detector: model(
                ModelConfig {
                    clients: 1,
                    max_crashes: 1,
                    max_in_flight: 3,
                    ..d.clone()
                },
                14,
            ),
            known_steps: None,
            known: "a counted entry lost by a restarted follower",
            source: "Raft paper Figure 2 (log persisted before responding)",
        },
        ZooBug {
            bug: DoubleVote,
            protocol: Protocol::Raft,
            property: ELECTION_SAFETY,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    ..d.clone()
                },
                8,
            ),
            known_steps: Some(4),
            known: "3 nodes, 4 deliveries",
            source: "Raft paper §5.2 (one vote per term, first-come-first-served)",
        },
        ZooBug {
            bug: TruncateOnStaleAppend,
            protocol: Protocol::Raft,
            // Caught first as "committed entries are on a quorum": the follower's truncation
            // drops an entry the leader counted, leaving it on a minority, steps before a
            // leader lacks it (leader completeness) or a conflicting command is applied
            // elsewhere (state machine safety).
            property: COMMITTED_ON_A_QUORUM,
            detector: model(
                ModelConfig {
                    servers: 2,
                    clients: 1,
                    ..d.clone()
                },
                12,
            ),
            known_steps: None,
            known: "2 nodes, a delayed older AppendEntries",
            source: "Raft paper Figure 2, AppendEntries rule 3 (truncate only on conflict)",
        },
        ZooBug {
            bug: CommitPastVerifiedPrefix,
            protocol: Protocol::Raft,
            // The follower commits its stale no-op of the older term, which the leader's log
            // lacks: leader completeness fails at the very step it is applied.
            property: LEADER_COMPLETENESS,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    protocol: paxraft_impls::Config {
                        // Our default heartbeat re-sends the probe's entries, so every append
                        // a follower accepts reaches its first conflicting slot and truncates
                        // the stale tail first: R7 is masked. The paper's empty heartbeat
                        // verifies only up to `next - 1` while carrying the leader's commit.
                        empty_heartbeats: true,
                        ..d.protocol.clone()
                    },
                    ..d.clone()
                },
                12,
            ),
            known_steps: None,
            known: "3 nodes, a stale entry from an older term applied",
            source: "Raft paper Figure 2, AppendEntries rule 5 (min(leaderCommit, last new entry))",
        },
        ZooBug {
            bug: NoStepDown,
            protocol: Protocol::Raft,
            property: SETTLES,
            // Not a safety violation in the model: the stale leader cannot commit (every
            // follower refuses its term), but it never steps down, keeps its clients and
            // never learns later commits, so the cluster does not settle.
            detector: Detector::Schedules(sim(SimKnobs { no_pre_vote: false, ..RAFT_SIM })),
            known_steps: None,
            known: "a deposed leader keeps leading beside the new one",
            source: "Raft paper §5.1 (a higher term makes any server a follower)",
        },
        ZooBug {
            bug: NoPreVote,
            protocol: Protocol::Raft,
            property: TERMS_STAY_LOW,
            detector: Detector::Schedules(sim(SimKnobs { no_pre_vote: false, ..RAFT_SIM })),
            known_steps: None,
            known: "a partially partitioned node deposes a healthy leader",
            source: "Ongaro's dissertation §9.6 (PreVote), §6.2 (CheckQuorum); the 2020 etcd partial-partition outage",
        },
        ZooBug {
            bug: StaleRead,
            protocol: Protocol::Raft,
            // A read that starts after a write was answered: one client, a put then a get.
            // n1 leads term 1 unseen; n0 leads term 2 and commits the put; the get goes to
            // n0, the client's retry goes on to n1, which answers from its stale store.
            property: names::LINEARIZABLE,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ops: 2,
                    ..d.clone()
                },
                16,
            ),
            known_steps: None,
            known: "a deposed leader on the minority side returns an old value",
            source: "Ongaro's dissertation §6.4 (ReadIndex, leases); the etcd stale-read issue (Jepsen 2014)",
        },
        ZooBug {
            bug: AcceptBelowPromise,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM_DEEP)),
            known_steps: None,
            known: "3 acceptors, two values chosen for one slot",
            source: "Paxos Made Simple §2.2 (P1a: accept only if no higher promise)",
        },
        ZooBug {
            bug: IgnoreAcceptedValue,
            protocol: Protocol::MultiPaxos,
            // Caught first by state machine safety since it compares no-ops too: the new
            // leader fills the slot a command was chosen in with a no-op of its own (or its
            // own command), and a host learns that no-op committed before any replica
            // holding both commits it (the protocol's "committed slots agree").
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM)),
            known_steps: None,
            known: "a chosen value replaced by the next leader's own",
            source: "Paxos Made Simple §2.2 (P2c: propose the highest-numbered accepted value)",
        },
        ZooBug {
            bug: NonUniqueBallot,
            protocol: Protocol::MultiPaxos,
            // Two proposers with one ballot each get a quorum for their own value in one
            // slot. Both safety checks catch it; since heartbeats re-acknowledge held slots
            // (a multi-Paxos liveness fix), the zoo's search meets state machine safety first.
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM_DEEP)),
            known_steps: None,
            known: "two proposers run the same ballot with different values",
            source: "Paxos Made Simple §2.2 (disjoint proposal numbers); Paxos Made Moderately Complex §3",
        },
        ZooBug {
            bug: ChosenWithoutQuorum,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: model(
                ModelConfig {
                    clients: 2,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "clients see v, then w",
            source: "Paxos Made Simple §2.1 (a value is chosen by a majority)",
        },
        ZooBug {
            bug: SkipRecovery,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: Detector::Schedules(sim(PAXOS_SIM)),
            known_steps: None,
            known: "a new leader writes over a possibly chosen slot (the overwrite form)",
            source: "Paxos Made Simple §3 (phase 1 for every open instance, no-ops for gaps)",
        },
        ZooBug {
            bug: GapNotFilled,
            protocol: Protocol::MultiPaxos,
            // Liveness: the hole is never chosen, so no later slot is applied and the clients
            // wait for ever under a healthy leader. A hole needs an Accept lost to the whole
            // next quorum while a later one got through: heavy loss makes that common.
            property: SETTLES,
            detector: Detector::Schedules(sim(SimKnobs {
                loss_pct: 30,
                ..PAXOS_SIM
            })),
            known_steps: None,
            known: "a slot left open by a new leader stalls every later slot (the gap form)",
            source: "Paxos Made Simple §3 (gaps filled with no-ops so later commands can execute)",
        },
        ZooBug {
            bug: PromiseNotPersisted,
            protocol: Protocol::MultiPaxos,
            // Caught first by the host's term check across restarts: the restarted acceptor's
            // promised ballot is lower than the one it promised before the crash, which is the
            // bug itself, before it gets to accept a lower ballot (state machine safety later).
            property: names::TERMS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    max_crashes: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a restarted acceptor accepts a lower ballot it promised to refuse",
            source: "Paxos Made Simple §2.3 (an acceptor remembers its promise through failures)",
        },
        ZooBug {
            bug: ApplyUncommitted,
            protocol: Protocol::Raft,
            // Caught first as "committed entries are on a quorum": the leader's commit point
            // covers an entry only it holds, steps before the next leader lacks it (leader
            // completeness) or applies a different command in the slot (state machine safety).
            property: COMMITTED_ON_A_QUORUM,
            detector: model(
                ModelConfig {
                    clients: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "an entry applied before a majority stores it, then overwritten",
            source: "Raft paper §5.3 (apply only committed entries); Paxos Made Simple §2.4 (learn only chosen values)",
        },
        ZooBug {
            bug: DuplicateApply,
            protocol: Protocol::Raft,
            property: names::LINEARIZABLE,
            detector: model(
                ModelConfig {
                    servers: 1,
                    clients: 3,
                    ops: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a retried request applied twice",
            source: "Ongaro's dissertation §6.3 (client sessions for exactly-once)",
        },
        ZooBug {
            bug: VoteSentBeforePersist,
            protocol: Protocol::Raft,
            // Invisible to a model whose steps are atomic: the voter crashes after its vote
            // left and before the vote reached its disk, restarts, and votes again.
            property: ELECTION_SAFETY,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    max_crashes: 1,
                    ..d.clone()
                },
                10,
            ),
            known_steps: None,
            known: "a vote sent, the voter crashes before persisting it and votes again",
            source: "Raft paper Figure 2 (persistent state updated before responding to RPCs); effect contract rule 1",
        },
        ZooBug {
            bug: PromiseSentBeforePersist,
            protocol: Protocol::MultiPaxos,
            // The acceptor crashes after its promise left and before it reached its disk: the
            // restarted acceptor's promise is below the one it announced.
            property: names::TERMS,
            detector: model(
                ModelConfig {
                    clients: 1,
                    max_crashes: 1,
                    ..d
                },
                10,
            ),
            known_steps: None,
            known: "a promise sent, the acceptor crashes before persisting it",
            source: "Paxos Made Simple §2.3 (an acceptor remembers its promise through failures); effect contract rule 1",
        },
        ZooBug {
            bug: ReadIndexBeforeTermCommit,
            protocol: Protocol::Raft,
            property: names::LINEARIZABLE,
            detector: Detector::Schedules(reads_sim(RAFT_SIM, false)),
            known_steps: None,
            known: "3 nodes: L1 commits x on {L1,F1} and is cut off before F1 learns the commit; F1 leads and serves a read before committing an entry of its term",
            source: "Ongaro's dissertation §6.4 (step 1); etcd #7331/#7332, TiKV #6340, RedisRaft #19 (Jepsen 2020)",
        },
        ZooBug {
            bug: ReadWithoutQuorum,
            protocol: Protocol::Raft,
            // One client puts then gets. n1 leads term 1 and commits its no-op; n0 leads term
            // 2 with n2 and commits the put, answered; the get's retry reaches n1, which still
            // thinks it leads and answers at once from its old state. Random schedules rarely
            // line this up (none in 3,000 runs); BFS needs 22 actions with at most 3 messages
            // in flight (about a minute on 2 cores), so the test command catches R13 with the
            // driver's random walks instead (impls/src/raft/read_tests.rs).
            property: names::LINEARIZABLE,
            detector: model(reads_model(), 22),
            known_steps: None,
            known: "a leader cut off in a minority serves a read while the majority elected a new leader and committed a write",
            source: "Ongaro's dissertation §6.4 (step 2); etcd #741 (Jepsen etcd 0.4.1), Consul #54",
        },
        ZooBug {
            bug: FollowerReadNoWait,
            protocol: Protocol::Raft,
            property: names::READS_FROM_APPLIED,
            detector: Detector::Schedules(reads_sim(RAFT_SIM, true)),
            known_steps: None,
            known: "a lagging follower answers at the leader's read index before it has applied it",
            source: "Ongaro's dissertation §6.4 (followers wait to apply the read index); Consul #2644/#3154, openraft PR #964",
        },
        ZooBug {
            bug: PaxosReadBeforeRecovery,
            protocol: Protocol::MultiPaxos,
            property: names::LINEARIZABLE,
            detector: Detector::Schedules(reads_sim(PAXOS_SIM, false)),
            known_steps: None,
            known: "a new leader reads at its commit point before the slots its phase 1 recovered are chosen again",
            source: "Ongaro's dissertation §6.4 (the read index covers every earlier commit) applied to Paxos; Paxos Made Live §5.2",
        },
        ZooBug {
            bug: PaxosReadWithoutQuorum,
            protocol: Protocol::MultiPaxos,
            // See `p9_sim`.
            property: names::LINEARIZABLE,
            detector: Detector::Schedules(p9_sim()),
            known_steps: None,
            known: "a leader whose ballot was preempted serves a read while a new leader chose a write",
            source: "Paxos Made Live §5.2 (a master lease or a quorum round before a local read); Ongaro's dissertation §6.4",
        },
        ZooBug {
            bug: LockReleaseByNonOwner,
            // A state-machine bug: any protocol shows it; the lock model's one server is
            // explored whole (20 actions), so the clean half checks every state.
            protocol: Protocol::Raft,
            property: names::LOCK_LINEARIZABLE,
            detector: model(ModelConfig::lock(), LOCK_DEPTH),
            known_steps: None,
            known: "A holds lock 0; B, which never acquired it, releases it and is told Released",
            source: "Burrows, The Chubby lock service, §2.4 (only the holder releases); dissertation §6.3 (sessions)",
        },
        ZooBug {
            bug: StorageWithoutFencing,
            protocol: Protocol::Raft,
            property: names::STORAGE_IN_ORDER,
            detector: model(ModelConfig::lock(), LOCK_DEPTH),
            known_steps: None,
            known: "A acquires (token 1) and its write is delayed; A's session expires, B acquires (token 2) and writes; A's write lands after B's",
            source: "Burrows, The Chubby lock service, §2.4 (sequencers); Kleppmann, How to do distributed locking (2016), fencing tokens",
        },
        ZooBug {
            bug: LeaseIgnoresDrift,
            protocol: Protocol::Raft,
            property: paxraft_impls::driver::READS_SEE_EARLIER_COMMITS,
            detector: Detector::Sweep(lease_config()),
            known_steps: None,
            known: "n0 leads with a slow clock, renews its lease and is cut off; n1 and n2 (fast clocks) time out after 125 ms of real time, elect n1, commit y; n0's clock has advanced 104 ms of its 150 ms lease: it serves a read without y",
            source: "Ongaro, dissertation §6.4.1 (the lease must allow for clock drift); etcd-io/etcd#741 class of lease reads",
        },
        ZooBug {
            bug: RestartForgetsLease,
            protocol: Protocol::MultiPaxos,
            property: paxraft_impls::driver::READS_SEE_EARLIER_COMMITS,
            detector: Detector::Sweep(lease_config()),
            known_steps: None,
            known: "n1 acknowledges n0's lease round and restarts; n2 missed the round and times out early; n1 promises at once, n2 leads and chooses y while n0's lease still runs: n0 serves a read without y",
            source: "Ongaro, dissertation §6.4.1 (followers must not vote while a lease they granted runs); Paxos Made Live §5.2 (master leases)",
        },
        ZooBug {
            bug: SnapshotUncommitted,
            // A host bug: any protocol that snapshots shows it.
            protocol: Protocol::Raft,
            property: names::SNAPSHOTS_COMMITTED,
            detector: model(snapshot_base(), 6),
            known_steps: Some(6),
            known: "a new leader holds its no-op and a client's put; the no-op commits and the host snapshots at the put's slot",
            source: "Raft §7 (each server snapshots only committed entries); Figure 13",
        },
        ZooBug {
            bug: SnapshotTruncatesLog,
            protocol: Protocol::Raft,
            property: paxraft_impls::raft::names::LEADER_COMPLETENESS,
            detector: Detector::Schedules(snapshot_sim(RAFT_SIM)),
            known_steps: None,
            known: "a late copy of an old snapshot makes a follower drop an entry it acknowledged and the leader committed; it then wins an election without it",
            source: "Raft §7 and Figure 13, InstallSnapshot receiver rule 6 (retain the entries after the snapshot); etcd-raft ignores a snapshot at or below the commit point",
        },
        ZooBug {
            bug: SnapshotKeepsCommit,
            protocol: Protocol::Raft,
            property: names::SNAPSHOTS_COMMITTED,
            detector: model(snapshot_base(), 7),
            known_steps: Some(7),
            known: "a lagging follower installs the leader's snapshot and restores it with its commit point still 0",
            source: "Raft Figure 13, InstallSnapshot receiver rule 8 (reset the state machine from the snapshot: its slots are committed)",
        },
        ZooBug {
            bug: SnapshotWithoutSessions,
            // A host bug: any protocol that snapshots shows it.
            protocol: Protocol::Raft,
            property: names::SAME_STATE,
            detector: model(snapshot_base(), 10),
            known_steps: Some(10),
            known: "a lagging follower restores a snapshot without the client sessions: at the same applied point its state differs, and a retry of the put would apply again",
            source: "Ongaro's dissertation §6.3 (client sessions are replicated state) and §5 (snapshots hold the state machine's state)",
        },
        ZooBug {
            bug: Phase1SkipsAccepted,
            protocol: Protocol::MultiPaxos,
            property: names::SAME_STATE,
            // Seed 1: the bug has a second symptom, a leader that never fills the slots it
            // skipped (*settles* fails), and since catch-up is flow-controlled seed 0's
            // search meets that one first (after 57 runs); seed 1 finds the divergence
            // after 2 (of seeds 0-8, five find it first).
            detector: Detector::Schedules(SimOptions {
                seed: 1,
                ..snapshot_sim(PAXOS_SIM)
            }),
            known_steps: None,
            known: "a new leader prepares from its last slot: a value accepted by a majority above its snapshot is not recovered and another is chosen there",
            source: "Paxos Made Simple §3 (phase 1 covers every slot not known chosen); Paxos Made Live §5.5 (snapshots)",
        },
        ZooBug {
            bug: PromiseBeforeLastChunk,
            protocol: Protocol::MultiPaxos,
            property: names::SAFETY,
            detector: Detector::Schedules(chunked_sim()),
            known_steps: None,
            known: "a candidate leads on the first chunk of a promise: a value a quorum accepted in a slot of a later chunk is not recovered, and another is chosen there",
            source: "Paxos Made Simple §2.2 (phase 1b reports every proposal accepted, P2c); issue 17 (promises in bounded chunks)",
        },
        ZooBug {
            bug: ChangeBeforeTermCommit,
            protocol: Protocol::Raft,
            property: ONE_CHANGE_AT_A_TIME,
            detector: model(membership_base(4, 4, &["remove:3"]), 6),
            known_steps: Some(6),
            known: "a new leader removes a server before its no-op commits: with the previous leader's uncommitted change in another log, two configurations two servers apart can each commit (testdata/bugs/raft_m1_change_before_term_commit.txt plays it to two leaders whose logs disagree at committed slots)",
            source: "Ongaro, raft-dev, \"bug in single-server membership changes\" (2015); the fix in the dissertation's erratum to §4.1",
        },
        ZooBug {
            bug: ConcurrentChanges,
            protocol: Protocol::Raft,
            property: ONE_CHANGE_AT_A_TIME,
            detector: model(membership_base(4, 3, &["add:3", "remove:2"]), 7),
            known_steps: Some(7),
            known: "a leader adds n3 and, before that commits, removes n2: its log is two servers away from the last committed configuration",
            source: "Ongaro's dissertation §4.1 (\"the leader does not begin a new change until the previous one commits\")",
        },
        ZooBug {
            bug: LearnerCounted,
            protocol: Protocol::Raft,
            property: COMMITTED_ON_A_QUORUM,
            detector: model(membership_base(4, 3, &["learner:3"]), 10),
            known_steps: Some(10),
            known: "a leader counts its learner's acknowledgement toward a majority of three voters: the learner's configuration entry commits on the leader and the learner alone",
            source: "Ongaro's dissertation §4.2.1 (non-voting members); etcd-raft's learners (not counted in any quorum)",
        },
        ZooBug {
            bug: JointLeftEarly,
            protocol: Protocol::Raft,
            property: ONE_CHANGE_AT_A_TIME,
            detector: model(joint(membership_base(3, 3, &["remove:2"])), 6),
            known_steps: Some(6),
            known: "a leader appends C_old,new and C_new together: C_new decides before C_old,new is committed, while servers without it still use C_old",
            source: "Raft §6 (C_new only once C_old,new is committed)",
        },
        ZooBug {
            bug: TransferToBehind,
            protocol: Protocol::Raft,
            property: TRANSFER_TO_CAUGHT_UP,
            detector: model(membership_base(3, 3, &["transfer:1"]), 4),
            known_steps: Some(4),
            known: "a new leader hands off to n1 before n1 has its no-op: n1's campaign fails the up-to-date check, and the cluster waits an election timeout for a leader",
            source: "Ongaro's dissertation §3.10 (the leader first brings the target's log up to date); etcd-raft (MsgTimeoutNow only once the transferee's match is the leader's last index)",
        },
        ZooBug {
            bug: RemovedServerDisrupts,
            protocol: Protocol::Raft,
            property: TERMS_STAY_LOW,
            detector: Detector::Schedules(removal_sim()),
            known_steps: None,
            known: "n0 leads, removes itself and steps down once C_new = {n1,n2} commits; it keeps campaigning, and its vote requests depose the next leader; cut off, its term runs ahead",
            source: "Ongaro's dissertation §4.2.3 (disruptive servers); LogCabin #56 and #205; hashicorp/raft PR #476 (a removed node never becomes a candidate) and PR #526 (a vote request from outside the configuration changes no term)",
        },
        ZooBug {
            bug: ProposesBeyondWindow,
            protocol: Protocol::MultiPaxos,
            // The operator's change takes slot 1 and the client's put, at once, slot 2: past
            // commit 0 + α. Two values are the least that overflow α = 1, so one op and one
            // change; testdata/bugs/multipaxos_m7_proposes_beyond_window.txt plays the
            // overflow on to two values chosen in one slot (it takes two changes: the
            // configurations of a single change, one server apart, have meeting majorities).
            property: PROPOSALS_WITHIN_WINDOW,
            detector: model(paxos_membership(3, 2, &["add:2"]), 5),
            known_steps: Some(5),
            known: "a new leader of {n0,n1} takes the operator's add:2 into slot 1 and the client's put into slot 2 with nothing chosen yet; with the window its put waits until slot 1 is chosen and it knows slot 2's configuration",
            source: "Lamport, Paxos Made Simple §3 (instance i + α is run by the servers named after instance i); van Renesse & Altinbuken, Paxos Made Moderately Complex, invariant R5 (WINDOW); Lamport, Malkhi, Zhou, Reconfiguring a State Machine (α)",
        },
        ZooBug {
            bug: SnapshotWithoutConfigs,
            protocol: Protocol::MultiPaxos,
            // A leader adds the spare n2 in slot 1 and compacts; a replica that did not learn
            // slot 1 chosen catches up from that snapshot (BFS's shortest: a candidate pulls
            // it from its promiser; else the leader sends it to n2) and keeps the configuration
            // it had for slot 2. The clients are left out: the trace needs none (the whole
            // search to depth 12, where the leader's own transfer to n2 shows it too, takes
            // 0.4 s without, 4.8 s with one). (Taking a
            // configuration into force when accepted, as Raft does on append, was the first
            // candidate: it shows only once a higher ballot replaces the value, which takes
            // two leaders on 3 voters, 12 actions or more, and more messages in flight than
            // the default 5 (not found at depth 12 with 5: 2.3M states; not done in 10
            // minutes with 8).
            property: CONFIGURATIONS_AGREE,
            detector: model(
                ModelConfig {
                    clients: 0,
                    ops: 0,
                    ..paxos_membership_snapshots()
                },
                11,
            ),
            known_steps: Some(11),
            known: "n1 leads and adds n2 in slot 1, which n0 accepts; n1 compacts; n0 campaigns, n1's promise starts after its snapshot, n0 installs it and keeps {n0,n1} for slot 2 (the leader's snapshot to a spare that missed slot 1 shows it in 12)",
            source: "openraft #1808 (a snapshot install keeps a stale membership; fixed in PR #1809); Lamport, Paxos Made Simple §3 and Lamport, Malkhi, Zhou, Reconfiguring a State Machine (the configuration is state the commands build); Paxos Made Live §5.5 (catch-up from a snapshot)",
        },
        ZooBug {
            bug: RaftIgnoresCap,
            protocol: Protocol::Raft,
            property: names::WITHIN_CAP,
            // A new leader's no-op counts: at a cap of 1 it takes nothing until the no-op
            // commits, so the bug shows at the first request to reach it.
            detector: model(capped(raft_base()), 8),
            known_steps: Some(4),
            known: "n1 wins an election and holds its uncommitted no-op, its cap of 1; c1's cas reaches it and is appended anyway",
            source: "etcd-io/etcd PR #10167 (MaxUncommittedEntries, after cockroachdb/cockroach#27772: re-proposals grew a leader's uncommitted tail without bound while it could not commit)",
        },
        ZooBug {
            bug: PaxosIgnoresCap,
            protocol: Protocol::MultiPaxos,
            property: names::WITHIN_CAP,
            detector: model(capped(raft_base()), 8),
            known_steps: Some(6),
            known: "n1 leads after one promise; c0's put reaches it and is proposed, its cap of 1; c1's cas reaches it before the put is chosen and is queued too",
            source: "etcd-io/etcd PR #10167 (the same cap for Raft); van Renesse & Altinbuken, Paxos Made Moderately Complex (a leader's proposals wait for slots within its window, an unbounded queue without a cap)",
        },
        ZooBug {
            bug: LeaseSurvivesTransfer,
            protocol: Protocol::Raft,
            property: paxraft_impls::driver::READS_SEE_EARLIER_COMMITS,
            detector: Detector::Sweep(lease_config()),
            known_steps: None,
            known: "n0 holds a lease and hands its leadership to n1; n1 takes TimeoutNow and campaigns with a TransferVote, which n2 grants past its lease promise; n0 is cut off; n1 commits a write, and n0, its lease still counted, serves a read without it",
            source: "tikv/tikv#1593 (clear the lease when TimeoutNow is sent); etcd-io/etcd#12704; Ongaro, dissertation §3.10 and §6.4.1",
        },
        ZooBug {
            bug: LeaseSurvivesHandoff,
            protocol: Protocol::MultiPaxos,
            property: paxraft_impls::driver::READS_SEE_EARLIER_COMMITS,
            detector: Detector::Sweep(lease_config()),
            known_steps: None,
            known: "n0 holds a lease and hands its leadership to n1, whose Handoff stays in the network; n0 gives the transfer up, a read renews its lease; the late Handoff makes n1 campaign, n2 promises past its lease; n1 chooses a write while n0, cut off, serves a read without it",
            source: "tikv/raft-rs#234 (a late MsgTimeoutNow after the transfer was aborted breaks the lease); Ongaro, dissertation §6.4.1",
        },
        ZooBug {
            bug: LocalReadBeforeTermCommit,
            protocol: Protocol::Raft,
            property: names::LINEARIZABLE,
            detector: Detector::Schedules(lease_sim(RAFT_SIM)),
            known_steps: None,
            known: "3 nodes: L1 commits x on {L1,F1} and is cut off before F1 learns the commit; F1 leads, its election round gives it a lease, and its host answers a read alone before F1 commits an entry of its term",
            source: "Ongaro's dissertation §6.4 (step 1) and §6.4.1; TiKV's local reader serves lease reads only once the leader has applied an entry of its term",
        },
        ZooBug {
            bug: LocalReadBeforeRecovery,
            protocol: Protocol::MultiPaxos,
            property: names::LINEARIZABLE,
            detector: Detector::Schedules(lease_sim(PAXOS_SIM)),
            known_steps: None,
            known: "a new leader under its lease lets its host read at its commit point before the slots its phase 1 recovered are chosen again",
            source: "Ongaro's dissertation §6.4 (the read index covers every earlier commit) and §6.4.1; Paxos Made Live §5.2 (master leases); P8 on the local path",
        },
    ]
}

/// M5's search: R9's (PreVote and CheckQuorum on, partition windows, some loss), with the
/// operator asking the leader to remove n0. M5 shows only when n0 leads then: a leader that
/// removed itself is the removed server that knows it (one that never learns of its removal
/// runs PreVote and is refused, bug or not).
fn removal_sim() -> SimOptions {
    let mut o = sim(SimKnobs {
        no_pre_vote: false,
        ..RAFT_SIM
    });
    o.changes = vec![paxraft_impls::Change::Remove(paxraft_impls::NodeId(0))];
    o
}

/// `config` with a cap of one uncommitted command (below the two clients: the cap binds).
fn capped(mut config: ModelConfig) -> ModelConfig {
    config.protocol.max_uncommitted = 1;
    config
}

/// `config` with joint consensus.
fn joint(mut config: ModelConfig) -> ModelConfig {
    config.protocol.changes = paxraft_impls::ChangeMode::Joint;
    config
}

/// The lease sweep's configuration: leases with a 30 ms drift bound over the 150 ms election
/// timeout (each clock 20% slow or fast at the extremes).
fn lease_config() -> paxraft_impls::Config {
    paxraft_impls::Config {
        reads: paxraft_impls::ReadMode::Lease,
        clock_drift: Some(std::time::Duration::from_millis(30)),
        ..paxraft_impls::Config::default()
    }
}

/// The lock model's whole space ([`ModelConfig::lock`]): its longest path has 20 actions.
const LOCK_DEPTH: usize = 20;

/// Look a bug up by name or code.
pub fn find(name: &str) -> Option<ZooBug> {
    let bug = Bug::parse(name)?;
    registry().into_iter().find(|z| z.bug == bug)
}

/// R9's symptom within a bounded run. A server cut off from the majority by a partition
/// window keeps timing out; without PreVote every timeout starts an election in a new term,
/// so its term runs ahead of every other server's, and the inflated term deposes the healthy
/// leader when the window heals (the etcd 2020 outage). With PreVote a server enters a new
/// term only after a majority granted it the pre-vote, so it is at most a term or two ahead
/// (pre-votes granted again before its vote requests arrive). "A leader connected to a
/// majority stays leader once the network is stable" is not a state predicate (the settling
/// phase ends as soon as the run settles); the term inflation that breaks it is. M5's removed
/// server shows the same symptom: it campaigns without PreVote, and while cut off its term
/// runs ahead (connected, its vote requests drag the others' terms up with it, and depose
/// their leader).
pub const TERMS_STAY_LOW: &str = "no server runs terms ahead of all others";

/// How many terms one server may be ahead of every other for [`TERMS_STAY_LOW`].
pub const MAX_TERMS_AHEAD: u64 = 3;

/// The `paxraft check` command that reproduces `entry` with its bug on.
pub fn command(entry: &ZooBug) -> String {
    match &entry.detector {
        Detector::Model {
            config,
            strategy,
            depth,
        } => {
            let search = SearchOptions {
                strategy: *strategy,
                depth: Some(*depth),
                ..SearchOptions::default()
            };
            let check = check_command(entry.protocol.name(), config, &search);
            format!("{check} --bug {}", entry.bug.name())
        }
        // The term-inflation check is the zoo's own: `paxraft simulate` does not run it.
        Detector::Schedules(_) if entry.property == TERMS_STAY_LOW => {
            format!("paxraft zoo --only {}", entry.bug.name())
        }
        Detector::Schedules(opts) => format!(
            "paxraft simulate {} {} --bug {}",
            entry.protocol.name(),
            opts.flags(),
            entry.bug.name()
        ),
        // The sweep has no command of its own: the zoo runs it.
        Detector::Sweep(_) => format!("paxraft zoo --only {}", entry.bug.name()),
    }
}
