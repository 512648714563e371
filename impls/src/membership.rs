//! Cluster membership: who votes, who only learns, and how an operator changes it.
//!
//! A [`Membership`] is a *configuration*: the voters whose majorities decide, the learners
//! that receive the log but never vote nor count toward a quorum, and, during a joint change
//! (Raft §6, "joint consensus"), the outgoing voters whose majority must *also* agree. It is
//! protocol-neutral: Raft keeps it in configuration entries of its log, and any protocol
//! behind [`Replica::change`](crate::Replica::change) reports it in its
//! [`Status`](crate::Status).
//!
//! Quorums are computed here once, for every protocol: [`Membership::has_quorum`] (a set of
//! acknowledgements that decides) and [`Membership::quorum_value`] (the highest value a
//! quorum has reached, as Raft's commit index is the highest slot a quorum matches).
//!
//! # Why one change at a time is safe (single-server changes, diss. §4.1)
//!
//! Adding or removing one voter changes a majority by at most one member, so any majority of
//! the old voters and any majority of the new ones share a node: the two configurations cannot
//! both decide, independently, on different values. That argument needs the *old*
//! configuration to be the one every server might still use, which is why a leader proposes a
//! change only when no earlier change is pending in its log, and (the 2015 fix, Ongaro,
//! raft-dev "bug in single-server membership changes") only once it has committed an entry of
//! its own term: otherwise two leaders of different terms could each add one change to the
//! same base, and the two results, two servers apart, have disjoint majorities.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::replica::{quorum, NodeId, Renaming, MAX_NODES};

/// A set of node ids, as a bitmask over [`NodeId::index`] (ids are below [`MAX_NODES`]).
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeSet(u8);

const _: () = assert!(MAX_NODES <= 8, "a NodeSet is one byte");

impl NodeSet {
    /// No nodes.
    pub const EMPTY: NodeSet = NodeSet(0);

    /// The set of `ids`.
    pub fn of(ids: impl IntoIterator<Item = NodeId>) -> NodeSet {
        let mut s = NodeSet::EMPTY;
        for id in ids {
            s.insert(id);
        }
        s
    }

    /// The set whose bit `i` holds node `i`.
    pub const fn from_bits(bits: u8) -> NodeSet {
        NodeSet(bits)
    }

    /// The bits of [`NodeSet::from_bits`].
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Nodes `0..n`.
    pub fn first(n: usize) -> NodeSet {
        debug_assert!(n <= MAX_NODES);
        NodeSet::of((0..n as u8).map(NodeId))
    }

    fn bit(id: NodeId) -> u8 {
        assert!(id.index() < MAX_NODES, "{id} is outside the id space");
        1 << id.index()
    }

    /// Whether `id` is in the set.
    pub fn contains(self, id: NodeId) -> bool {
        id.index() < MAX_NODES && self.0 & (1 << id.index()) != 0
    }

    /// Add `id`.
    pub fn insert(&mut self, id: NodeId) {
        self.0 |= Self::bit(id);
    }

    /// Remove `id`.
    pub fn remove(&mut self, id: NodeId) {
        self.0 &= !Self::bit(id);
    }

    /// How many nodes.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The nodes, in id order.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        (0..MAX_NODES as u8)
            .map(NodeId)
            .filter(move |&id| self.contains(id))
    }

    /// One past the highest id in the set: the length of a vector indexed by its ids.
    pub fn span(self) -> usize {
        self.iter().last().map_or(0, |id| id.index() + 1)
    }

    /// Nodes in either set.
    pub fn union(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 | other.0)
    }

    /// Nodes in both sets.
    pub fn intersection(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 & other.0)
    }

    /// Whether a majority of this set is in `acks` (an empty set needs nothing).
    pub fn majority_in(self, acks: NodeSet) -> bool {
        self.is_empty() || self.intersection(acks).len() >= quorum(self.len())
    }

    /// The set with every id renamed through `map`.
    pub fn renamed(self, map: &Renaming) -> NodeSet {
        NodeSet::of(self.iter().map(|id| map.id(id)))
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, id) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str("}")
    }
}

/// A cluster configuration: voters, learners, and during a joint change the outgoing voters.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Membership {
    /// The voters whose majority decides (C_new during a joint change).
    pub voters: NodeSet,
    /// Members that receive the log but neither vote nor count toward any quorum.
    pub learners: NodeSet,
    /// During a joint change (Raft §6), the previous voters (C_old), whose majority must also
    /// agree; empty otherwise.
    pub outgoing: NodeSet,
}

impl Membership {
    /// A configuration of voters `voters` and nothing else.
    pub fn voters(voters: NodeSet) -> Membership {
        Membership {
            voters,
            ..Membership::default()
        }
    }

    /// Whether this is a joint configuration (C_old,new).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes (in either half of a joint configuration).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(id) || self.outgoing.contains(id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(id)
    }

    /// Every node that receives the log: voters of both halves and learners.
    pub fn members(&self) -> NodeSet {
        self.voters.union(self.outgoing).union(self.learners)
    }

    /// Whether `acks` decides: a majority of the voters and, in a joint configuration, a
    /// majority of the outgoing voters too. Learners never count.
    pub fn has_quorum(&self, acks: NodeSet) -> bool {
        !self.voters.is_empty() && self.voters.majority_in(acks) && self.outgoing.majority_in(acks)
    }

    /// The highest value a quorum has reached, given each voter's value: Raft's commit index
    /// from the slots each voter matches, a read round from the rounds each acknowledged.
    pub fn quorum_value(&self, value: impl Fn(NodeId) -> u64) -> u64 {
        let of = |set: NodeSet| {
            if set.is_empty() {
                return u64::MAX;
            }
            let mut vals: Vec<u64> = set.iter().map(&value).collect();
            vals.sort_unstable_by(|a, b| b.cmp(a));
            vals[quorum(vals.len()) - 1]
        };
        let v = of(self.voters).min(of(self.outgoing));
        if v == u64::MAX {
            0
        } else {
            v
        }
    }

    /// The configuration `change` leads to from this one (`mode` says how voters change), or
    /// why it is refused. A leader transfer changes no configuration: it is refused here.
    pub fn changed(&self, change: Change, mode: ChangeMode) -> Result<Membership, ChangeError> {
        if self.is_joint() {
            return Err(ChangeError::Pending);
        }
        let mut next = *self;
        match change {
            Change::AddVoter(id)
            | Change::AddLearner(id)
            | Change::Remove(id)
            | Change::Transfer(id)
                if id.index() >= MAX_NODES =>
            {
                return Err(ChangeError::Unknown(id))
            }
            Change::AddVoter(id) => {
                if self.voters.contains(id) {
                    return Err(ChangeError::Exists(id));
                }
                next.learners.remove(id);
                next.voters.insert(id);
            }
            Change::AddLearner(id) => {
                if self.members().contains(id) {
                    return Err(ChangeError::Exists(id));
                }
                next.learners.insert(id);
            }
            Change::Remove(id) => {
                if self.learners.contains(id) {
                    next.learners.remove(id);
                    return Ok(next);
                }
                if !self.voters.contains(id) {
                    return Err(ChangeError::Unknown(id));
                }
                if self.voters.len() == 1 {
                    return Err(ChangeError::LastVoter(id));
                }
                next.voters.remove(id);
            }
            Change::Transfer(_) => unreachable!("a transfer is not a configuration change"),
        }
        if mode == ChangeMode::Joint && next.voters != self.voters {
            next.outgoing = self.voters;
        }
        Ok(next)
    }

    /// The configuration a joint one leads to once it is committed: C_new alone.
    pub fn leave_joint(&self) -> Membership {
        Membership {
            outgoing: NodeSet::EMPTY,
            ..*self
        }
    }

    /// The configuration with every id renamed through `map`.
    pub fn renamed(&self, map: &Renaming) -> Membership {
        Membership {
            voters: self.voters.renamed(map),
            learners: self.learners.renamed(map),
            outgoing: self.outgoing.renamed(map),
        }
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "voters {}", self.voters)?;
        if self.is_joint() {
            write!(f, " joint with {}", self.outgoing)?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners {}", self.learners)?;
        }
        Ok(())
    }
}

/// What an operator asks of a cluster ([`Replica::change`](crate::Replica::change)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Change {
    /// Make `id` a voter: a new node, or a learner promoted once it has caught up.
    AddVoter(NodeId),
    /// Add `id` as a learner: it receives the log, never votes.
    AddLearner(NodeId),
    /// Take `id` out of the configuration (a voter or a learner).
    Remove(NodeId),
    /// Hand leadership to voter `id` once its log has caught up.
    Transfer(NodeId),
}

impl Change {
    /// The node the change is about.
    pub fn node(self) -> NodeId {
        match self {
            Change::AddVoter(id)
            | Change::AddLearner(id)
            | Change::Remove(id)
            | Change::Transfer(id) => id,
        }
    }

    /// Parse the CLI and script spelling: `add:N`, `learner:N`, `remove:N`, `transfer:N`.
    pub fn parse(s: &str) -> Result<Change, String> {
        let (verb, id) = s.split_once(':').ok_or_else(|| {
            format!("change {s:?}: expected add:N, learner:N, remove:N or transfer:N")
        })?;
        let id = id
            .trim_start_matches('n')
            .parse::<u8>()
            .ok()
            .filter(|&n| usize::from(n) < MAX_NODES)
            .map(NodeId)
            .ok_or_else(|| format!("change {s:?}: node must be 0 to {}", MAX_NODES - 1))?;
        match verb {
            "add" => Ok(Change::AddVoter(id)),
            "learner" => Ok(Change::AddLearner(id)),
            "remove" => Ok(Change::Remove(id)),
            "transfer" => Ok(Change::Transfer(id)),
            _ => Err(format!(
                "change {s:?}: unknown kind {verb:?} (add, learner, remove or transfer)"
            )),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, id) = match *self {
            Change::AddVoter(id) => ("add", id),
            Change::AddLearner(id) => ("learner", id),
            Change::Remove(id) => ("remove", id),
            Change::Transfer(id) => ("transfer", id),
        };
        write!(f, "{verb}:{}", id.0)
    }
}

/// A host's name for one change request, handed back in its answer.
pub type ChangeId = u64;

/// Why a change was refused or did not finish. The cluster's configuration is unchanged by
/// a refusal; [`ChangeError::Interrupted`] alone leaves the outcome open.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
pub enum ChangeError {
    /// This replica does not lead; ask `leader`.
    #[error("not the leader ({})", leader.map_or("no leader known".to_string(), |l| format!("ask {l}")))]
    NotLeader {
        /// Who this replica believes leads, if anyone.
        leader: Option<NodeId>,
    },
    /// Another change is still pending (one at a time): retry once it is committed.
    #[error("another configuration change is pending")]
    Pending,
    /// The leader has not yet committed an entry of its term (the 2015 fix): retry shortly.
    #[error("the leader has not yet committed an entry of its term")]
    NotReady,
    /// Removing the only voter would leave nobody to decide.
    #[error("{0} is the last voter")]
    LastVoter(NodeId),
    /// The node already holds that place in the configuration.
    #[error("{0} is already a member")]
    Exists(NodeId),
    /// The node is not in the configuration (or outside the id space).
    #[error("{0} is not a member")]
    Unknown(NodeId),
    /// Leadership goes to voters only.
    #[error("{0} is not a voter")]
    NotVoter(NodeId),
    /// A learner is promoted, and leadership transferred, only once its log is close to the
    /// leader's.
    #[error("{0} has not caught up with the leader's log")]
    Behind(NodeId),
    /// The transfer did not finish within an election timeout, and was given up.
    #[error("the leadership transfer to {0} timed out")]
    TransferTimedOut(NodeId),
    /// The leader lost its role before the change committed: it may still take effect.
    #[error("interrupted by a leader change: the change may or may not take effect")]
    Interrupted,
    /// This protocol does not change its membership.
    #[error("this protocol does not support membership changes")]
    Unsupported,
}

/// How a protocol changes its voters ([`Config::changes`](crate::Config::changes)).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum ChangeMode {
    /// One voter at a time (diss. §4.1), with the 2015 fix.
    #[default]
    SingleServer,
    /// Joint consensus (Raft §6): C_old,new, then C_new.
    Joint,
}

impl ChangeMode {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            ChangeMode::SingleServer => "single",
            ChangeMode::Joint => "joint",
        }
    }

    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<ChangeMode> {
        [ChangeMode::SingleServer, ChangeMode::Joint]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u8]) -> NodeSet {
        NodeSet::of(ids.iter().map(|&i| NodeId(i)))
    }

    #[test]
    fn a_quorum_is_a_majority_of_the_voters_and_learners_never_count() {
        let m = Membership {
            voters: set(&[0, 1, 2]),
            learners: set(&[3, 4]),
            outgoing: NodeSet::EMPTY,
        };
        assert!(m.has_quorum(set(&[0, 1])));
        assert!(!m.has_quorum(set(&[0, 3, 4])));
        assert_eq!(m.quorum_value(|id| [5, 7, 1, 9, 9][id.index()]), 5);
    }

    #[test]
    fn a_joint_quorum_needs_both_majorities() {
        let m = Membership {
            voters: set(&[2, 3, 4]),
            learners: NodeSet::EMPTY,
            outgoing: set(&[0, 1, 2]),
        };
        assert!(!m.has_quorum(set(&[3, 4])), "C_new alone");
        assert!(!m.has_quorum(set(&[0, 1])), "C_old alone");
        assert!(m.has_quorum(set(&[0, 2, 3])));
        // C_old's quorum reaches 6 (n0, n1), C_new's only 4 (n2 at 4, n3 at 4): the lower.
        assert_eq!(m.quorum_value(|id| [6, 6, 4, 4, 0][id.index()]), 4);
    }

    #[test]
    fn single_server_changes_and_their_refusals() {
        let m = Membership::voters(set(&[0, 1, 2]));
        let single = ChangeMode::SingleServer;
        assert_eq!(
            m.changed(Change::AddVoter(NodeId(3)), single)
                .unwrap()
                .voters,
            set(&[0, 1, 2, 3])
        );
        assert_eq!(
            m.changed(Change::AddVoter(NodeId(1)), single),
            Err(ChangeError::Exists(NodeId(1)))
        );
        assert_eq!(
            m.changed(Change::Remove(NodeId(5)), single),
            Err(ChangeError::Unknown(NodeId(5)))
        );
        let l = m.changed(Change::AddLearner(NodeId(4)), single).unwrap();
        assert_eq!(l.learners, set(&[4]));
        assert_eq!(
            l.changed(Change::AddLearner(NodeId(4)), single),
            Err(ChangeError::Exists(NodeId(4)))
        );
        let promoted = l.changed(Change::AddVoter(NodeId(4)), single).unwrap();
        assert_eq!(
            (promoted.voters, promoted.learners),
            (set(&[0, 1, 2, 4]), NodeSet::EMPTY)
        );
        let one = Membership::voters(set(&[2]));
        assert_eq!(
            one.changed(Change::Remove(NodeId(2)), single),
            Err(ChangeError::LastVoter(NodeId(2)))
        );
    }

    #[test]
    fn a_joint_change_keeps_the_old_voters_until_it_is_left() {
        let m = Membership::voters(set(&[0, 1, 2]));
        let joint = m
            .changed(Change::Remove(NodeId(0)), ChangeMode::Joint)
            .unwrap();
        assert!(joint.is_joint());
        assert_eq!(
            (joint.voters, joint.outgoing),
            (set(&[1, 2]), set(&[0, 1, 2]))
        );
        assert_eq!(
            joint.changed(Change::AddVoter(NodeId(3)), ChangeMode::Joint),
            Err(ChangeError::Pending)
        );
        assert_eq!(joint.leave_joint(), Membership::voters(set(&[1, 2])));
        // A learner change moves no voter: no joint phase.
        let l = m
            .changed(Change::AddLearner(NodeId(3)), ChangeMode::Joint)
            .unwrap();
        assert!(!l.is_joint());
    }

    #[test]
    fn changes_parse_from_their_spelling_and_bad_ones_say_why() {
        assert_eq!(Change::parse("add:3"), Ok(Change::AddVoter(NodeId(3))));
        assert_eq!(Change::parse("remove:n0"), Ok(Change::Remove(NodeId(0))));
        assert_eq!(
            Change::parse("transfer:2").unwrap().to_string(),
            "transfer:2"
        );
        assert!(Change::parse("add").unwrap_err().contains("expected add:N"));
        assert!(Change::parse("add:9").unwrap_err().contains("0 to 6"));
        assert!(Change::parse("grow:1")
            .unwrap_err()
            .contains("unknown kind"));
    }
}
