//! `unreplicated`: no consensus at all, the ceiling the benchmarks compare against.
//!
//! One node (the member with the lowest id) takes every proposal and commits it at once, in
//! the next slot, without asking anybody. Run on the same threaded runtime as Raft and
//! multi-Paxos, it measures what the runtime, the client sessions and the state machine cost on
//! their own: whatever a real protocol loses beyond it is the price of replication.
//!
//! A fair ceiling pays for everything but replication: each batch is persisted with its
//! commands ([`UnreplicatedWrite`]), as Raft's `Append` and multi-Paxos's accepted values
//! carry theirs, so the host's storage does the same work per command (an in-memory store
//! keeps them, a file store writes them); sessions, the state machine, batching and the
//! client path are the host's and the same for every protocol.
//!
//! It is also the smallest complete example of implementing [`Replica`]: no messages, one
//! timer that is never armed, and a durable image of one number (the last slot used), so
//! that after a restart it does not hand out a slot twice (the runtime skips commits it has
//! already applied by slot). The commands written are not read back: the host rebuilds
//! nothing from them.
//!
//! It is not fault tolerant and makes no claim to be: other members only redirect to the
//! serving node, and while that node is down nothing commits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::replica::{
    ClusterCheck, Command, Config, Invariant, NodeId, Out, Replica, Role, Slot, Status, StepCheck,
};

/// Messages: there are none, so this type has no values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NoMsg {}

/// The one timer kind, required by the trait; never armed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UnreplicatedTimer {
    /// Stands in for both the election and the heartbeat timer.
    Idle,
}

/// One durable write: the commands of a batch, the first at slot `at` (see the
/// [module docs](self) for why the commands are written at all).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnreplicatedWrite<C> {
    /// The slot of the first command.
    pub at: Slot,
    /// The batch, in slot order (never empty).
    pub cmds: Vec<C>,
}

impl<C> UnreplicatedWrite<C> {
    /// The last slot it uses.
    pub fn last(&self) -> Slot {
        self.at + self.cmds.len() as Slot - 1
    }
}

/// A node that commits every proposal immediately (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Unreplicated {
    id: NodeId,
    /// The member that serves (the lowest id).
    server: NodeId,
    /// Last slot handed out (and committed).
    last: Slot,
}

impl Unreplicated {
    fn serves(&self) -> bool {
        self.id == self.server
    }
}

impl<C: Command> Replica<C> for Unreplicated {
    type Msg = NoMsg;
    type Timer = UnreplicatedTimer;
    /// The last slot used.
    type Durable = Slot;
    /// A batch of commands, which uses their slots.
    type Write = UnreplicatedWrite<C>;

    const NAME: &'static str = "unreplicated";

    fn boot(
        id: NodeId,
        members: &[NodeId],
        durable: Option<&Slot>,
        _cfg: &Config,
        _out: &mut Out<Self, C>,
    ) -> Self {
        assert!(members.contains(&id), "{id} is not a member");
        let server = *members.iter().min().expect("members include id");
        Unreplicated {
            id,
            server,
            last: durable.copied().unwrap_or(0),
        }
    }

    fn on_message(&mut self, _from: NodeId, msg: NoMsg, _out: &mut Out<Self, C>) {
        match msg {}
    }

    fn on_timer(&mut self, _timer: UnreplicatedTimer, _out: &mut Out<Self, C>) {}

    fn propose(&mut self, cmds: Vec<C>, out: &mut Out<Self, C>) {
        if !self.serves() {
            for cmd in cmds {
                out.redirect(cmd, Some(self.server));
            }
            return;
        }
        if cmds.is_empty() {
            return;
        }
        // One durable write per batch, before the commits it covers, holding its commands
        // (a copy: the commits take the originals, as a leader's log and commits do).
        out.persist(UnreplicatedWrite {
            at: self.last + 1,
            cmds: cmds.clone(),
        });
        let first = self.last + 1;
        self.last += cmds.len() as Slot;
        out.commit_vec(first, cmds);
    }

    fn status(&self) -> Status {
        Status {
            role: if self.serves() {
                Role::Leader
            } else {
                Role::Follower
            },
            term: 1,
            leader: Some(self.server),
            commit: self.last,
            last: self.last,
            snapshot: 0,
            config: crate::Membership::voters(crate::NodeSet::of([self.server])),
            // Commits in the step that takes a command: nothing is ever held.
            uncommitted: 0,
        }
    }

    fn id(&self) -> NodeId {
        self.id
    }

    /// Commands are applied by the host and not kept here: the whole log counts as compacted.
    fn committed(&self) -> BTreeMap<Slot, Option<C>> {
        BTreeMap::new()
    }

    fn apply_write(durable: &mut Slot, write: &UnreplicatedWrite<C>) {
        *durable = (*durable).max(write.last());
    }

    fn cluster_invariants() -> Vec<Invariant<ClusterCheck<Self>>> {
        vec![Invariant {
            name: ONLY_SERVER_COMMITS,
            check: only_server_commits,
        }]
    }

    fn step_invariants() -> Vec<Invariant<StepCheck<Self>>> {
        vec![Invariant {
            name: SLOTS_NEVER_GO_BACK,
            check: slots_never_go_back,
        }]
    }

    fn election_timer() -> UnreplicatedTimer {
        UnreplicatedTimer::Idle
    }

    fn heartbeat_timer() -> UnreplicatedTimer {
        UnreplicatedTimer::Idle
    }
}

/// "only the serving node commits"
pub const ONLY_SERVER_COMMITS: &str = "only the serving node commits";
/// "slots never go back"
pub const SLOTS_NEVER_GO_BACK: &str = "slots never go back";

fn only_server_commits(nodes: &[&Unreplicated]) -> Result<(), String> {
    match nodes.iter().find(|n| !n.serves() && n.last > 0) {
        Some(n) => Err(format!(
            "{} is not the server but used slot {}",
            n.id, n.last
        )),
        None => Ok(()),
    }
}

fn slots_never_go_back(before: &Unreplicated, after: &Unreplicated) -> Result<(), String> {
    if after.last < before.last {
        return Err(format!(
            "{} went back from slot {} to {}",
            after.id, before.last, after.last
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::{Effect, Effects};

    type U = Unreplicated;
    type E = Out<U, &'static str>;

    fn boot(id: u8, n: u8, durable: Option<&Slot>) -> (U, E) {
        let ids: Vec<NodeId> = (0..n).map(NodeId).collect();
        let mut out = Effects::new();
        let r = <U as Replica<&'static str>>::boot(
            NodeId(id),
            &ids,
            durable,
            &Config::default(),
            &mut out,
        );
        (r, out)
    }

    #[test]
    fn commits_every_proposal_at_once_in_order_after_persisting() {
        let (mut r, out) = boot(0, 1, None);
        assert!(out.is_empty(), "booting asks for nothing: {out:?}");
        let mut out = E::new();
        r.propose(vec!["a", "b"], &mut out);
        r.propose(vec!["c"], &mut out);
        let effects: Vec<_> = out.into_iter().collect();
        assert_eq!(
            effects,
            vec![
                Effect::Persist(UnreplicatedWrite {
                    at: 1,
                    cmds: vec!["a", "b"]
                }),
                Effect::Commit { slot: 1, cmd: "a" },
                Effect::Commit { slot: 2, cmd: "b" },
                Effect::Persist(UnreplicatedWrite {
                    at: 3,
                    cmds: vec!["c"]
                }),
                Effect::Commit { slot: 3, cmd: "c" },
            ]
        );
        let s = Replica::<&'static str>::status(&r);
        assert_eq!(
            (s.role, s.commit, s.leader),
            (Role::Leader, 3, Some(NodeId(0)))
        );
    }

    #[test]
    fn a_restart_continues_after_the_last_persisted_slot() {
        let (mut r, _) = boot(0, 1, None);
        let mut out = E::new();
        r.propose(vec!["a", "b"], &mut out);
        let mut durable: Slot = 0;
        for w in out.writes() {
            <U as Replica<&'static str>>::apply_write(&mut durable, w);
        }
        let (mut r, _) = boot(0, 1, Some(&durable));
        let mut out = E::new();
        r.propose(vec!["c"], &mut out);
        assert_eq!(out.commits().collect::<Vec<_>>(), vec![(3, &"c")]);
    }

    #[test]
    fn other_members_redirect_to_the_lowest_id() {
        let (mut r, _) = boot(2, 3, None);
        let mut out = E::new();
        r.propose(vec!["x"], &mut out);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec![Effect::Redirect {
                cmd: "x",
                leader: Some(NodeId(0))
            }]
        );
        assert_eq!(Replica::<&'static str>::status(&r).role, Role::Follower);
    }

    #[test]
    fn invariants_reject_a_broken_state() {
        let (server, _) = boot(0, 2, None);
        let (mut other, _) = boot(1, 2, None);
        let checks = <U as Replica<&'static str>>::cluster_invariants();
        assert!((checks[0].check)(&[&server, &other]).is_ok());
        other.last = 5; // a non-serving node that committed: broken
        assert!((checks[0].check)(&[&server, &other]).is_err());
        let steps = <U as Replica<&'static str>>::step_invariants();
        let mut later = server.clone();
        later.last = 4;
        assert!((steps[0].check)(&server, &later).is_ok());
        assert!((steps[0].check)(&later, &server).is_err());
    }
}
