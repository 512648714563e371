//! The model the exhaustive checker explores: the actor model of [`crate::model`] with its
//! bounds applied as *visible cuts*, depth counted in actions, and crashes that may fall
//! between two effects of one step.
//!
//! Stateright's own bounds drop a successor that fails `within_boundary` before any property
//! is evaluated on it, and `target_max_depth` counts the initial state and skips the states
//! at the target unchecked. [`CheckModel`] uses neither:
//!
//! * **Cuts.** Every generated state has every property evaluated. A state beyond a bound
//!   (at the depth bound, a term above `max_term`, or more messages between servers in
//!   flight than `max_in_flight`) is checked and then not expanded, and counted in [`Cuts`]
//!   under the first of those it hits, in that order; the summary prints the counts. A step that breaks safety while it broadcasts past the in-flight bound
//!   is therefore still caught.
//! * **Fault budgets** (crashes, losses, no client crashes) shape the actions offered: no
//!   crash action once the crash budget is used, no loss once the loss budget is.
//! * **Garbage** is dropped as a lossy network could drop it: messages to a crashed server,
//!   replies a client no longer waits for, messages a replica declares obsolete
//!   ([`Replica::obsolete`]). Otherwise it would stay in flight for ever and tell apart states
//!   that are otherwise one. Only messages between servers count against `max_in_flight`.
//! * **Depth** is the number of actions from the initial state; it rides along in the state
//!   ([`CheckState::depth`]) without taking part in its identity, so a state is expanded
//!   from the depth it was first reached at (with one BFS thread: its shortest path).
//! * **Crashes between effects.** With crashes enabled, every replica step (a delivery or a
//!   timer at a server) is offered once more per crash point of its effect list (see
//!   [`paxraft_impls::driver::crash_points`]): the effects before the point are carried out, then the
//!   server crashes. A protocol that sends a vote before persisting it is caught this way;
//!   an atomic step could never show it.
//! * **Time** (with leases, [`ModelConfig::timed`]). The state carries real time and each
//!   server's clock ([`Clocks`]); a [`CheckAction::Tick`] lets [`ModelConfig::tick`] of real
//!   time pass, each clock advancing at its [`ClockRate`]. A replica timer is offered only
//!   once its server's clock has reached the timer's deadline (the delay's lower bound after
//!   it was armed: rule 6 of the effect contract), and every step tells the replica its
//!   clock. A run first picks each clock's rate, server by server, before anything else
//!   happens ([`CheckAction::Drift`]: the exhaustive checker explores every assignment, a
//!   walk draws one), unless [`ModelConfig::clock_rates`] fixes them. Time stops at
//!   [`ModelConfig::max_time`]: a state there is expanded without ticks, and counted.
//! * **Leaves** (BFS with a depth bound). A state at the depth bound is never expanded, yet
//!   stateright would keep it whole in its queue until its turn to be checked: those states
//!   are more than half of a default check, and the queue at its longest is most of the
//!   check's memory. [`CheckModel::next_state`] therefore evaluates every property on such
//!   a state when it makes it and hands stateright a [`Leaf`] instead: the verdicts and the
//!   state's digest, with an empty cluster. The property stateright evaluates on it reads
//!   the recorded verdict; a leaf hashes and compares as the state it stands for (every
//!   state hashes as its digest), so it is deduplicated as before and a path rebuilt
//!   after the check, with leaves turned off, meets the same fingerprints.

use std::fmt::Debug;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use paxraft_impls::lease::ClockRate;
use paxraft_impls::{NodeId, Replica};
use stateright::actor::{ActorModelAction, Envelope, Network};
use stateright::{Model, Property};

use crate::model::{
    actors, crashes_used, losses_used, with_now, with_tear, ClusterModel, ClusterState, Cmd,
    ModelConfig, Msg, Setup, Tear, Timer,
};
use crate::packed::Packed;
use crate::properties::ClusterView;

/// One action of the actor model.
pub type ActorAction<R> =
    ActorModelAction<Msg<<R as Replica<Cmd>>::Msg>, Timer<<R as Replica<Cmd>>::Timer>, ()>;

/// An action of the checked model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckAction<R: Replica<Cmd>> {
    /// An action of the actor model, carried out whole.
    Step(ActorAction<R>),
    /// A delivery or timer at a server whose effects stop at crash point `point`: the
    /// effects before it are carried out, then the server crashes.
    CrashDuring {
        /// The delivery or timer.
        step: ActorAction<R>,
        /// Which crash point of the step's effects (0: the first).
        point: usize,
    },
    /// With time: [`ModelConfig::tick`] of real time passes.
    Tick,
    /// With time, before anything else: server `node`'s clock runs at `rate`.
    Drift {
        /// The server.
        node: usize,
        /// Its clock's new rate.
        rate: ClockRate,
    },
}

/// Time in a checked state (with leases): real time, and each server's clock and its rate.
/// All zero and exact without leases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Clocks {
    /// Real time since the run began.
    pub now: Duration,
    /// Each server's clock reading.
    pub local: Vec<Duration>,
    /// Each server's clock rate.
    pub rates: Vec<ClockRate>,
    /// Rates are chosen before anything else happens, in server order: the servers from
    /// this one on have none yet.
    pub open_from: usize,
}

/// A state of the checked model: a cluster state and the number of actions that first
/// reached it. The depth takes no part in equality or hashing (a state is the same state
/// whatever path led to it).
///
/// The cluster waits [`Packed`] (about half the bytes of stateright's layout); it is
/// unpacked the first time it is read ([`CheckState::cluster`], and `Deref`), which for a
/// state in the queue is when it is expanded, and the unpacked copy goes with the state.
#[derive(Debug)]
pub struct CheckState<R: Replica<Cmd>> {
    /// The cluster, packed (in a leaf, the model's empty one). Shared: a tick or a drift
    /// changes only the clocks, and every leaf points to one empty cluster.
    packed: Arc<Packed<R>>,
    /// The cluster in stateright's layout, made from `packed` when first read.
    unpacked: OnceLock<Box<ClusterState<R>>>,
    /// What the state hashes as (see [`CheckState::digest`]).
    digest: u64,
    /// Actions from the initial state along the path that first reached it.
    pub depth: usize,
    /// Time (with leases; see the module docs). Shared: only a tick or a drift changes it,
    /// and inline it made every queued state 64 bytes larger.
    pub clocks: Arc<Clocks>,
    /// A state at the depth bound, already checked: what is left of it (see the module docs).
    pub leaf: Option<Leaf>,
}

impl<R: Replica<Cmd>> Clone for CheckState<R> {
    fn clone(&self) -> Self {
        CheckState {
            packed: Arc::clone(&self.packed),
            unpacked: OnceLock::new(),
            digest: self.digest,
            depth: self.depth,
            clocks: Arc::clone(&self.clocks),
            leaf: self.leaf,
        }
    }
}

/// What a checked state at the depth bound leaves in stateright's queue: its properties'
/// verdicts, bit `i` for property `i` (it keeps its digest, and hashes as the state it
/// stands for).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Bit `i`: property `i`'s condition held.
    pub verdicts: u64,
}

/// Most properties a leaf records ([`Leaf::verdicts`] has a bit each).
pub const MAX_PROPERTIES: usize = 64;

/// The digest of a packed cluster at `clocks`.
fn digest_of<R: Replica<Cmd>>(packed: &Packed<R>, clocks: &Clocks) -> u64 {
    // Fixed seeds: a state's digest is the same in every run and on every thread.
    let mut h = ahash::RandomState::with_seeds(0x70617872, 0x61667463, 0x6865636b, 0x6c656166)
        .build_hasher();
    packed.hash(&mut h);
    clocks.hash(&mut h);
    h.finish()
}

impl<R: Replica<Cmd>> CheckState<R> {
    /// A whole state (not a leaf) of `cluster`, packed, and kept unpacked as well until the
    /// model hands it to a BFS queue.
    pub fn new(cluster: ClusterState<R>, depth: usize, clocks: Arc<Clocks>) -> Self {
        let packed = Packed::pack(&cluster);
        CheckState {
            digest: digest_of(&packed, &clocks),
            packed: Arc::new(packed),
            unpacked: OnceLock::from(Box::new(cluster)),
            depth,
            clocks,
            leaf: None,
        }
    }

    /// The same cluster at another time (a tick or a drift changes only the clocks).
    fn with_time(&self, depth: usize, clocks: Arc<Clocks>) -> Self {
        debug_assert!(self.leaf.is_none(), "a leaf is never expanded");
        CheckState {
            digest: digest_of(&self.packed, &clocks),
            packed: Arc::clone(&self.packed),
            unpacked: OnceLock::new(),
            depth,
            clocks,
            leaf: None,
        }
    }

    /// The cluster (unpacked on the first read).
    pub fn cluster(&self) -> &ClusterState<R> {
        self.unpacked.get_or_init(|| Box::new(self.packed.unpack()))
    }

    /// The cluster as it waits in the queue.
    pub fn packed(&self) -> &Packed<R> {
        &self.packed
    }

    /// Drop the unpacked cluster: what waits in the queue is the packed one.
    fn unload(mut self) -> Self {
        self.unpacked.take();
        self
    }

    /// A 64-bit digest of the cluster and the clocks: what the state hashes as. Stateright
    /// identifies states by a 64-bit hash anyway; hashing the digest adds no new collisions.
    pub fn digest(&self) -> u64 {
        self.digest
    }
}

impl<R: Replica<Cmd>> PartialEq for CheckState<R> {
    fn eq(&self, other: &Self) -> bool {
        if self.leaf.is_some() || other.leaf.is_some() {
            return self.digest == other.digest;
        }
        self.packed == other.packed && self.clocks == other.clocks
    }
}
impl<R: Replica<Cmd>> Eq for CheckState<R> {}
impl<R: Replica<Cmd>> Hash for CheckState<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.digest);
    }
}

impl<R: Replica<Cmd>> std::ops::Deref for CheckState<R> {
    type Target = ClusterState<R>;
    fn deref(&self) -> &ClusterState<R> {
        self.cluster()
    }
}

/// How many states each bound cut, and how many were checked: shared by the checker threads.
#[derive(Debug, Default)]
pub struct Cuts {
    /// States whose properties were evaluated and whose successors were asked for.
    pub checked: AtomicUsize,
    /// The deepest state checked, in actions.
    pub deepest: AtomicUsize,
    /// States at the depth bound (checked, not expanded).
    pub depth: AtomicUsize,
    /// States with a term or ballot round above `max_term` (checked, not expanded).
    pub term: AtomicUsize,
    /// States with more messages between servers in flight than `max_in_flight` (checked,
    /// not expanded).
    pub in_flight: AtomicUsize,
    /// With time: states at `max_time` (expanded, but no more time passes from them).
    pub time: AtomicUsize,
}

/// A snapshot of [`Cuts`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CutCounts {
    /// States checked.
    pub checked: usize,
    /// Deepest state checked, in actions.
    pub deepest: usize,
    /// Cut by the depth bound.
    pub depth: usize,
    /// Cut by the term bound.
    pub term: usize,
    /// Cut by the in-flight bound.
    pub in_flight: usize,
    /// At the time bound (no tick offered).
    pub time: usize,
}

impl Cuts {
    /// The counts now.
    pub fn counts(&self) -> CutCounts {
        let l = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        CutCounts {
            checked: l(&self.checked),
            deepest: l(&self.deepest),
            depth: l(&self.depth),
            term: l(&self.term),
            in_flight: l(&self.in_flight),
            time: l(&self.time),
        }
    }
}

/// Messages in flight between servers. Client requests and replies are bounded by the
/// workload itself (one request per client at a time, its retries, its answer).
fn peer_messages<R: Replica<Cmd>>(state: &ClusterState<R>) -> usize {
    state
        .network
        .iter_all()
        .filter(|e| matches!(e.msg, Msg::Peer(_)))
        .count()
}

/// The model `paxraft check` explores.
pub struct CheckModel<R: Replica<Cmd>> {
    /// The actor model (no boundary of its own).
    pub actors: ClusterModel<R>,
    /// The properties, evaluated on every generated state.
    pub properties: Vec<Property<CheckModel<R>>>,
    /// Most actions on a path (`None`: only the other bounds stop the search).
    pub depth: Option<usize>,
    /// What the bounds cut, counted as the search goes.
    pub cuts: Arc<Cuts>,
    /// How the bounds apply.
    pub bounds: Bounds,
    /// Whether a state at the depth bound becomes a [`Leaf`] (BFS; off while paths are
    /// rebuilt, so that a path ends in a whole state).
    pub leaves: AtomicBool,
    /// The cluster every [`Leaf`] points to: no actors, the model's empty network.
    pub leaf_cluster: Arc<Packed<R>>,
    /// Whether a new state waits [`Packed`] only (BFS, whose queue holds a level of states);
    /// otherwise it keeps its unpacked cluster too (DFS holds one path, and pops a state soon
    /// after it was made; a walk steps from it next).
    pub pack_queued: AtomicBool,
}

/// How a [`CheckModel`] applies the bounds of its configuration.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Bounds {
    /// The exhaustive checker's: a state past a bound is checked, not expanded, and counted
    /// in [`Cuts`]; garbage is collected (see the module doc).
    Cut,
    /// A random walk's ([`build_walk`]): a step into a state past a bound is refused
    /// (`within_boundary`), so the walk takes another; nothing is collected, the walk's
    /// executor consumes what its recipient ignores itself. Crashes between effects are
    /// not enumerated: the walk asks for them one at a time with [`CheckAction::CrashDuring`].
    Refuse,
}

impl<R: Replica<Cmd>> Debug for CheckModel<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckModel")
            .field("cfg", &self.actors.cfg.cfg)
            .field("depth", &self.depth)
            .finish()
    }
}

/// The checked model of `cfg` for replica type `R`, with every property of
/// [`crate::properties`], exploring paths of at most `depth` actions.
pub fn build_checked<R: Replica<Cmd>>(cfg: &ModelConfig, depth: Option<usize>) -> CheckModel<R> {
    let actors = actors::<R>(cfg);
    let properties = crate::properties::properties::<CheckModel<R>>(&actors.cfg);
    assert!(
        properties.len() <= MAX_PROPERTIES,
        "a leaf records at most {MAX_PROPERTIES} verdicts"
    );
    let leaf_cluster = Arc::new(Packed::empty(
        &actors.init_network,
        actors.init_history.clone(),
    ));
    CheckModel {
        actors,
        properties,
        depth,
        cuts: Arc::new(Cuts::default()),
        bounds: Bounds::Cut,
        leaves: AtomicBool::new(false),
        leaf_cluster,
        pack_queued: AtomicBool::new(false),
    }
}

/// The model of `cfg` for random walks (the fault-schedule simulator): the checked model's
/// actions, torn steps included, with the bounds applied as stateright's boundary
/// ([`Bounds::Refuse`]) and no depth bound.
pub fn build_walk<R: Replica<Cmd>>(cfg: &ModelConfig) -> CheckModel<R> {
    CheckModel {
        bounds: Bounds::Refuse,
        ..build_checked(cfg, None)
    }
}

impl<R: Replica<Cmd>> ClusterView for CheckModel<R> {
    type R = R;
    fn setup(&self) -> &Setup<R> {
        &self.actors.cfg
    }
    fn cluster(state: &CheckState<R>) -> &ClusterState<R> {
        state.cluster()
    }
}

impl<R: Replica<Cmd>> CheckModel<R> {
    fn cfg(&self) -> &ModelConfig {
        &self.actors.cfg.cfg
    }

    /// Drop from the network what can have no effect, as a real network could lose it:
    /// messages to a crashed server (a crash loses what was on its way to it), replies a
    /// client no longer waits for (its sequence numbers only grow), and messages the
    /// recipient replica declares obsolete ([`Replica::obsolete`]: it will never act on them)
    /// and would ignore now. Only messages to or from `actor`, the one that just stepped, can
    /// have changed status. Every drop is a behaviour of an asynchronous network anyway (a
    /// loss); without it, garbage would stay in flight for ever and tell apart states that are
    /// otherwise one.
    fn collect_garbage(&self, cluster: &mut ClusterState<R>, actor: usize) {
        let servers = self.cfg().servers;
        let dead = |env: &Envelope<&Msg<R::Msg>>| {
            let (src, dst) = (usize::from(env.src), usize::from(env.dst));
            if src != actor && dst != actor {
                return false;
            }
            if cluster.crashed[dst] {
                return true;
            }
            let declared = match (env.msg, cluster.actor_states[dst].server()) {
                (Msg::Peer(m), Some(s)) if dst < servers => {
                    s.replica.obsolete(NodeId(src as u8), m)
                }
                (Msg::Reply { .. } | Msg::Busy { .. }, None) => true,
                _ => false,
            };
            declared
                && self.actors.actors[dst].ignores(
                    env.dst,
                    &cluster.actor_states[dst],
                    env.src,
                    env.msg,
                )
        };
        let gone: Vec<Envelope<Msg<R::Msg>>> = match &cluster.network {
            Network::Ordered(_) => return, // a queue's head decides; leave FIFO links alone
            net => net
                .iter_deliverable()
                .filter(|e| dead(e))
                .map(|e| e.to_cloned_msg())
                .collect(),
        };
        if gone.is_empty() {
            return;
        }
        let mut dropped = 0;
        match &mut cluster.network {
            Network::UnorderedNonDuplicating(multiset) => {
                for env in gone {
                    dropped += multiset.remove(&env).unwrap_or(0);
                }
            }
            Network::UnorderedDuplicating(set, _) => {
                for env in gone {
                    set.remove(&env);
                }
            }
            Network::Ordered(_) => unreachable!(),
        }
        if self.cfg().max_losses.is_some() && dropped > 0 {
            // The loss budget counts what the network lost, not what it dropped as garbage.
            cluster.history = cluster.history.forget_undelivered(dropped);
        }
    }

    /// Which bound, if any, cuts `state` (it is checked, not expanded).
    fn cut(&self, state: &CheckState<R>) -> Option<&AtomicUsize> {
        let cfg = self.cfg();
        if self.at_depth_bound(state) {
            return Some(&self.cuts.depth);
        }
        let over_term = state.actor_states[..cfg.servers]
            .iter()
            .filter_map(|a| a.server())
            .any(|s| s.replica.status().term > cfg.max_term);
        if over_term {
            return Some(&self.cuts.term);
        }
        if peer_messages(state) > cfg.max_in_flight {
            return Some(&self.cuts.in_flight);
        }
        None
    }

    /// The server an actor-model action steps (a delivery to it, a timer or a restart of it).
    fn stepped_server(&self, a: &ActorAction<R>) -> Option<usize> {
        let i = match a {
            ActorModelAction::Deliver { dst, .. } => usize::from(*dst),
            ActorModelAction::Timeout(id, _) | ActorModelAction::Recover(id) => usize::from(*id),
            _ => return None,
        };
        (i < self.cfg().servers).then_some(i)
    }

    /// Run one actor-model action on `cluster`, telling the stepping server its clock.
    fn run(
        &self,
        cluster: &ClusterState<R>,
        clocks: &Clocks,
        a: ActorAction<R>,
    ) -> Option<ClusterState<R>> {
        let now = self
            .stepped_server(&a)
            .filter(|_| self.cfg().timed())
            .map(|i| clocks.local[i]);
        with_now(now, || self.actors.next_state(cluster, a))
    }

    /// With time: whether replica timer `t` of server `i` is due on its clock.
    fn due(&self, state: &CheckState<R>, i: usize, t: &R::Timer) -> bool {
        let Some(s) = state.actor_states[i].server() else {
            return true;
        };
        match s.deadlines.binary_search_by_key(t, |(d, _)| *d) {
            Ok(k) => s.deadlines[k].1 <= state.clocks.local[i],
            Err(_) => true, // armed before time was kept: never (a boot arms with a date)
        }
    }

    /// With time: the time actions offered in `state`. While rates are being chosen, the
    /// next server's three rates and nothing else; then a tick, unless at the time bound.
    /// Returns whether rates are still being chosen (no other action is offered then).
    fn time_actions(&self, state: &CheckState<R>, actions: &mut Vec<CheckAction<R>>) -> bool {
        let cfg = self.cfg();
        let c = &state.clocks;
        if c.open_from < cfg.servers {
            for rate in ClockRate::ALL {
                actions.push(CheckAction::Drift {
                    node: c.open_from,
                    rate,
                });
            }
            return true;
        }
        if cfg.max_time.is_some_and(|max| c.now + cfg.tick > max) {
            if self.bounds == Bounds::Cut {
                self.cuts.time.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            actions.push(CheckAction::Tick);
        }
        false
    }

    /// Whether `state` is at the depth bound: cut by depth, and (in a BFS) kept as a leaf.
    /// Leaves must be exactly the states this cuts first, before it reads their cluster.
    fn at_depth_bound(&self, state: &CheckState<R>) -> bool {
        self.depth.is_some_and(|d| state.depth >= d)
    }

    /// The state `action` leads to from `state`, whole.
    fn step(&self, state: &CheckState<R>, action: CheckAction<R>) -> Option<CheckState<R>> {
        let depth = state.depth + 1;
        let mut clocks = state.clocks.clone();
        match action {
            CheckAction::Tick => {
                let tick = self.cfg().tick;
                let c = Arc::make_mut(&mut clocks);
                c.now += tick;
                for (local, rate) in c.local.iter_mut().zip(&c.rates) {
                    *local += rate.advance(tick, &self.cfg().protocol);
                }
                Some(state.with_time(depth, clocks))
            }
            CheckAction::Drift { node, rate } => {
                let c = Arc::make_mut(&mut clocks);
                c.rates[node] = rate;
                c.open_from = node + 1;
                Some(state.with_time(depth, clocks))
            }
            CheckAction::Step(a) => {
                let actor = match &a {
                    ActorModelAction::Deliver { dst, .. } => Some(usize::from(*dst)),
                    ActorModelAction::Timeout(id, _)
                    | ActorModelAction::Crash(id)
                    | ActorModelAction::Recover(id) => Some(usize::from(*id)),
                    ActorModelAction::Drop(_) | ActorModelAction::SelectRandom { .. } => None,
                };
                let cluster = match a {
                    // Carried out here, not by stateright: checked states keep no random
                    // choices, which its `Crash` indexes (see `crash`).
                    ActorModelAction::Crash(id) => {
                        let mut cluster = state.cluster().clone();
                        crash(&mut cluster, usize::from(id));
                        cluster
                    }
                    a => self.run(state.cluster(), &state.clocks, a)?,
                };
                Some(self.settled(cluster, actor, depth, clocks))
            }
            CheckAction::CrashDuring { step, point } => {
                let i = self.server_step(state.cluster(), &step)?;
                let (next, _, torn) = with_tear(Tear::At(point), || {
                    self.run(state.cluster(), &state.clocks, step)
                });
                let mut cluster = next?;
                if !torn {
                    return None;
                }
                crash(&mut cluster, i);
                Some(self.settled(cluster, Some(i), depth, clocks))
            }
        }
    }

    /// The whole state a step at `actor` (if any) left: the garbage it made dropped (under
    /// cuts).
    fn settled(
        &self,
        mut cluster: ClusterState<R>,
        actor: Option<usize>,
        depth: usize,
        clocks: Arc<Clocks>,
    ) -> CheckState<R> {
        if let (Some(actor), Bounds::Cut) = (actor, self.bounds) {
            self.collect_garbage(&mut cluster, actor);
        }
        CheckState::new(cluster, depth, clocks)
    }

    /// `state`, at the depth bound, as a [`Leaf`]: every property evaluated now, on the
    /// whole state, and its cluster swapped for the model's empty one (shared by every leaf:
    /// nothing allocated). The leaf is checked when stateright comes to it (by the verdicts
    /// it recorded) and cut by depth, as the whole state would have been.
    pub fn leaf(&self, state: CheckState<R>) -> CheckState<R> {
        let mut verdicts = 0u64;
        for (i, p) in self.properties.iter().enumerate() {
            if (p.condition)(self, &state) {
                verdicts |= 1 << i;
            }
        }
        CheckState {
            packed: Arc::clone(&self.leaf_cluster),
            unpacked: OnceLock::new(),
            digest: state.digest,
            depth: state.depth,
            // Shared with the state it stands for: kept rather than a new allocation.
            clocks: state.clocks,
            leaf: Some(Leaf { verdicts }),
        }
    }

    /// Whether `a` is a replica step at a live server (what a crash may tear).
    fn server_step(&self, state: &ClusterState<R>, a: &ActorAction<R>) -> Option<usize> {
        let i = match a {
            ActorModelAction::Deliver { dst, .. } => usize::from(*dst),
            ActorModelAction::Timeout(id, Timer::Replica(_)) => usize::from(*id),
            _ => return None,
        };
        (i < self.cfg().servers && !state.crashed[i]).then_some(i)
    }
}

/// Actor `i` crashes, as stateright's `Crash` does it but for the random choices: its timers
/// are gone. (The checked model's states keep no random choices, see `init_states`, which is
/// why crashes are carried out here and not by stateright.)
fn crash<R: Replica<Cmd>>(cluster: &mut ClusterState<R>, i: usize) {
    debug_assert!(cluster.random_choices.is_empty());
    cluster.timers_set[i].cancel_all();
    cluster.crashed[i] = true;
}

impl<R: Replica<Cmd>> Model for CheckModel<R> {
    type State = CheckState<R>;
    type Action = CheckAction<R>;

    fn init_states(&self) -> Vec<CheckState<R>> {
        let cfg = self.cfg();
        let n = cfg.servers;
        let clocks = if cfg.timed() {
            Clocks {
                now: Duration::ZERO,
                local: vec![Duration::ZERO; n],
                rates: cfg
                    .clock_rates
                    .clone()
                    .unwrap_or_else(|| vec![ClockRate::Exact; n]),
                open_from: if cfg.clock_rates.is_some() { n } else { 0 },
            }
        } else {
            Clocks::default()
        };
        let clocks = Arc::new(clocks);
        // Every clock reads zero at boot.
        let now = cfg.timed().then_some(Duration::ZERO);
        with_now(now, || self.actors.init_states())
            .into_iter()
            .map(|mut cluster| {
                // No actor draws random choices (`Actor::on_random`): stateright's empty map
                // per actor would only be copied into every state (320 bytes a state, one
                // allocation). Crashes, the only other reader, are carried out here (`crash`).
                debug_assert!(cluster.random_choices.iter().all(|r| r.map.is_empty()));
                cluster.random_choices = Vec::new();
                CheckState::new(cluster, 0, clocks.clone())
            })
            .collect()
    }

    fn actions(&self, state: &CheckState<R>, actions: &mut Vec<CheckAction<R>>) {
        // Called once per distinct state, after its properties were evaluated.
        self.cuts.checked.fetch_add(1, Ordering::Relaxed);
        self.cuts.deepest.fetch_max(state.depth, Ordering::Relaxed);
        if let Some(counter) = self.cut(state).filter(|_| self.bounds == Bounds::Cut) {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cfg = self.cfg();
        let crash_left = crashes_used(cfg, state) < cfg.max_crashes;
        let loss_left = match cfg.max_losses {
            Some(m) => losses_used(state) < m,
            None => true,
        };
        let timed = cfg.timed();
        if timed && self.time_actions(state, actions) {
            return;
        }
        let mut inner = Vec::new();
        self.actors.actions(state.cluster(), &mut inner);
        for a in inner {
            if let (true, ActorModelAction::Timeout(id, Timer::Replica(t))) = (timed, &a) {
                if !self.due(state, usize::from(*id), t) {
                    continue;
                }
            }
            match &a {
                // Clients do not crash: their bounded retries model a client that gives up.
                ActorModelAction::Crash(id) if usize::from(*id) >= cfg.servers || !crash_left => {
                    continue
                }
                ActorModelAction::Drop(_) if !loss_left => continue,
                _ => {}
            }
            // A walk asks for torn steps one at a time: enumerating every crash point of
            // every step would cost a model step per action per walk step.
            let enumerate = cfg.crash_mid_step && self.bounds == Bounds::Cut;
            if crash_left && enumerate && self.server_step(state, &a).is_some() {
                // Run the step once to learn its crash points.
                let (_, points, _) = with_tear(Tear::Count, || {
                    self.run(state.cluster(), &state.clocks, a.clone())
                });
                for point in 0..points {
                    actions.push(CheckAction::CrashDuring {
                        step: a.clone(),
                        point,
                    });
                }
            }
            actions.push(CheckAction::Step(a));
        }
    }

    fn next_state(&self, state: &CheckState<R>, action: CheckAction<R>) -> Option<CheckState<R>> {
        let next = self.step(state, action)?;
        Some(
            if self.at_depth_bound(&next) && self.leaves.load(Ordering::Relaxed) {
                self.leaf(next)
            } else if self.pack_queued.load(Ordering::Relaxed) {
                next.unload()
            } else {
                next
            },
        )
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let conditions = leaf_or_evaluate_all::<R>();
        self.properties
            .iter()
            .zip(conditions)
            .map(|(p, condition)| Property {
                expectation: p.expectation.clone(),
                name: p.name,
                condition,
            })
            .collect()
    }

    fn within_boundary(&self, state: &CheckState<R>) -> bool {
        match self.bounds {
            Bounds::Cut => true,
            Bounds::Refuse => crate::model::within_boundary(&self.actors.cfg, state.cluster()),
        }
    }

    fn format_action(&self, action: &CheckAction<R>) -> String {
        match action {
            CheckAction::Step(a) => self.actors.format_action(a),
            CheckAction::CrashDuring { step, point } => format!(
                "{} then crash at point {point}",
                self.actors.format_action(step)
            ),
            CheckAction::Tick => format!("time passes ({:?})", self.cfg().tick),
            CheckAction::Drift { node, rate } => format!("n{node}'s clock runs {rate}"),
        }
    }

    fn format_step(&self, last_state: &CheckState<R>, action: CheckAction<R>) -> Option<String> {
        self.next_state(last_state, action)
            .map(|next| format!("{:#?}", next.cluster()))
    }
}

/// A property's condition as stateright evaluates it on a checked state.
type Condition<R> = fn(&CheckModel<R>, &CheckState<R>) -> bool;

/// Property `I`'s verdict on `state`: the one recorded when the state became a [`Leaf`],
/// else evaluated now.
fn leaf_or_evaluate<R: Replica<Cmd>, const I: usize>(
    model: &CheckModel<R>,
    state: &CheckState<R>,
) -> bool {
    match state.leaf {
        Some(leaf) => leaf.verdicts >> I & 1 == 1,
        None => (model.properties[I].condition)(model, state),
    }
}

macro_rules! leaf_or_evaluate_all {
    ($($i:literal)*) => {
        /// [`leaf_or_evaluate`] for every property index a leaf has a bit for.
        fn leaf_or_evaluate_all<R: Replica<Cmd>>() -> [Condition<R>; MAX_PROPERTIES] {
            [$(leaf_or_evaluate::<R, $i>),*]
        }
    };
}
leaf_or_evaluate_all!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
    62 63
);

/// The symmetry representative of a checked state (see [`crate::symmetry`]); keeps its depth.
/// (Symmetry is refused with time: the clocks are not renamed.)
pub fn representative<R: Replica<Cmd>>(state: &CheckState<R>) -> CheckState<R> {
    CheckState::new(
        crate::symmetry::representative::<R>(state.cluster()),
        state.depth,
        state.clocks.clone(),
    )
}
