//! A checked state as it waits in stateright's queue: [`Packed`].
//!
//! Stateright's actor model keeps a state's network in a hash table (a table of 40-byte
//! envelopes at most half full, plus the hasher's 32 bytes of keys) and each actor's timers in
//! a hash set of their own (64 bytes inline each, and an allocation once a timer is set).
//! That layout suits a step, which looks messages and timers up; it is most of what a state
//! waiting in the BFS queue owns (measured: 535 bytes of network and 520 of timers, in 7
//! allocations, per deep Raft state). A waiting state is only ever read again when it is
//! expanded, so it waits packed: its messages and timers in two sorted slices, its crash
//! flags in a word, each actor's state beside its durable image in one slice. It is unpacked
//! into stateright's layout once, when it is expanded ([`crate::checked::CheckState`]).
//!
//! Packing is exact: a packed state unpacks into a state equal to the one packed, and two
//! states pack equal exactly when they are equal (a multiset of messages and a set of timers
//! per actor have one sorted form each), so states hash and deduplicate as before.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use paxraft_impls::Replica;
use stateright::actor::{Envelope, Network, Timers};

use crate::model::{ClusterState, Cmd, History, Msg, NodeState, Storage, Timer};

/// Messages in flight, packed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PackedNet<M: Eq + Hash> {
    /// Unordered, non-duplicating (the default): each distinct envelope once with its count,
    /// sorted.
    Unordered(Box<[(Envelope<M>, usize)]>),
    /// The other kinds, as stateright keeps them (rarely checked; not worth a second form).
    Other(Network<M>),
}

/// An actor's state beside its durable image.
type PackedActor<R> = (Arc<NodeState<R>>, Option<Storage<R>>);

/// A cluster state, packed (see the module docs).
#[derive(Debug)]
pub struct Packed<R: Replica<Cmd>> {
    /// Each actor's state and durable image.
    actors: Box<[PackedActor<R>]>,
    network: PackedNet<Msg<R::Msg>>,
    /// Every timer set, by actor, sorted.
    timers: Box<[(u8, Timer<R::Timer>)]>,
    /// Bit `i`: actor `i` is crashed.
    crashed: u64,
    history: History,
}

/// Most actors a packed state holds (one crash bit each; actor ids fit a byte).
pub const MAX_ACTORS: usize = 64;

impl<R: Replica<Cmd>> Packed<R> {
    /// `state`, packed. Its random choices are dropped: the checked model keeps none.
    pub fn pack(state: &ClusterState<R>) -> Self {
        let n = state.actor_states.len();
        assert!(
            n <= MAX_ACTORS,
            "{n} actors: a packed state holds {MAX_ACTORS}"
        );
        debug_assert!(state.random_choices.iter().all(|r| r.map.is_empty()));
        let actors = state
            .actor_states
            .iter()
            .zip(&state.actor_storages)
            .map(|(a, s)| (Arc::clone(a), s.clone()))
            .collect();
        let network = match &state.network {
            Network::UnorderedNonDuplicating(multiset) => {
                let mut entries: Vec<_> = multiset.iter().map(|(e, &c)| (e.clone(), c)).collect();
                entries.sort_unstable();
                PackedNet::Unordered(entries.into_boxed_slice())
            }
            other => PackedNet::Other(other.clone()),
        };
        let mut timers: Vec<_> = state
            .timers_set
            .iter()
            .enumerate()
            .flat_map(|(i, set)| set.iter().map(move |t| (i as u8, *t)))
            .collect();
        timers.sort_unstable();
        let crashed = state
            .crashed
            .iter()
            .enumerate()
            .fold(0u64, |bits, (i, &c)| bits | (u64::from(c) << i));
        Packed {
            actors,
            network,
            timers: timers.into_boxed_slice(),
            crashed,
            history: state.history.clone(),
        }
    }

    /// The state in stateright's layout again (no random choices, as packed).
    pub fn unpack(&self) -> ClusterState<R> {
        let n = self.actors.len();
        let network = match &self.network {
            PackedNet::Unordered(entries) => Network::new_unordered_nonduplicating(
                entries
                    .iter()
                    .flat_map(|(e, c)| std::iter::repeat(e).take(*c).cloned()),
            ),
            PackedNet::Other(net) => net.clone(),
        };
        let mut timers_set = vec![Timers::new(); n];
        for (i, t) in self.timers.iter() {
            timers_set[usize::from(*i)].set(*t);
        }
        ClusterState::<R> {
            actor_states: self.actors.iter().map(|(a, _)| Arc::clone(a)).collect(),
            network,
            timers_set,
            random_choices: Vec::new(),
            crashed: (0..n).map(|i| self.crashed >> i & 1 == 1).collect(),
            history: self.history.clone(),
            actor_storages: self.actors.iter().map(|(_, s)| s.clone()).collect(),
        }
    }

    /// A state with no actors and an empty network of `network`'s kind (what a leaf points to).
    pub fn empty(network: &Network<Msg<R::Msg>>, history: History) -> Self {
        let network = match network {
            Network::UnorderedNonDuplicating(_) => PackedNet::Unordered(Box::new([])),
            other => PackedNet::Other(other.clone()),
        };
        Packed {
            actors: Box::new([]),
            network,
            timers: Box::new([]),
            crashed: 0,
            history,
        }
    }
}

impl<R: Replica<Cmd>> Clone for Packed<R> {
    fn clone(&self) -> Self {
        Packed {
            actors: self.actors.clone(),
            network: self.network.clone(),
            timers: self.timers.clone(),
            crashed: self.crashed,
            history: self.history.clone(),
        }
    }
}

impl<R: Replica<Cmd>> PartialEq for Packed<R> {
    fn eq(&self, other: &Self) -> bool {
        self.actors == other.actors
            && self.network == other.network
            && self.timers == other.timers
            && self.crashed == other.crashed
            && self.history == other.history
    }
}
impl<R: Replica<Cmd>> Eq for Packed<R> {}

impl<R: Replica<Cmd>> Hash for Packed<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.actors.hash(state);
        self.network.hash(state);
        self.timers.hash(state);
        self.crashed.hash(state);
        self.history.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::actors;
    use crate::ModelConfig;
    use paxraft_impls::raft::Raft;
    use stateright::Model;

    /// Deep states of the default Raft model (every action, 6 levels, at most 300 per level).
    fn states() -> Vec<ClusterState<Raft<Cmd>>> {
        let m = actors::<Raft<Cmd>>(&ModelConfig::default());
        let mut level = m.init_states();
        let mut all = level.clone();
        for _ in 0..6 {
            let mut next = Vec::new();
            for s in &level {
                let mut acts = Vec::new();
                m.actions(s, &mut acts);
                next.extend(acts.into_iter().filter_map(|a| m.next_state(s, a)));
            }
            next.truncate(300);
            all.extend(next.iter().cloned());
            level = next;
        }
        all
    }

    #[test]
    fn a_packed_state_unpacks_into_the_state_packed() {
        let states = states();
        let with_messages = states.iter().filter(|s| s.network.len() > 1).count();
        let with_timers = states
            .iter()
            .filter(|s| {
                s.timers_set
                    .iter()
                    .filter(|t| t.iter().next().is_some())
                    .count()
                    > 1
            })
            .count();
        assert!(
            with_messages > 100 && with_timers > 100,
            "{with_messages} states with messages, {with_timers} with timers"
        );
        for mut s in states {
            s.random_choices = Vec::new();
            let packed = Packed::pack(&s);
            assert_eq!(packed.unpack(), s);
            assert!(Packed::pack(&packed.unpack()) == packed);
        }
    }

    #[test]
    fn states_pack_equal_exactly_when_they_are_equal() {
        let mut states = states();
        for s in &mut states {
            s.random_choices = Vec::new();
        }
        let packed: Vec<_> = states.iter().map(Packed::pack).collect();
        let mut pairs = 0;
        for (i, a) in states.iter().enumerate().step_by(7) {
            for (j, b) in states.iter().enumerate().step_by(5) {
                assert_eq!(a == b, packed[i] == packed[j], "states {i} and {j}");
                pairs += usize::from(a == b && i != j);
            }
        }
        assert!(pairs > 0, "some pairs are equal states reached twice");
    }
}
