//! The leader's in-flight window for one replicating follower: the appends sent to it and
//! not yet acknowledged, as etcd-raft's `tracker.Inflights` (MaxInflightMsgs). Pipelining
//! (`replication.rs`) sends a replicating follower every new batch at once; without a bound, a
//! slow or dead follower that stays "replicating" would be sent append after append. With the
//! window full the leader stops sending new appends to it until an acknowledgement frees room.
//!
//! Only messages are counted, not bytes: a command ([`crate::Command`]) has no size the
//! protocol can read cheaply, so etcd's MaxInflightBytes has no counterpart here. The entries
//! in flight are bounded all the same, by `max_inflight × max_batch`.

use std::collections::VecDeque;

use crate::replica::Slot;

/// The last slot of each unacknowledged append, oldest first. Replicating appends are sent
/// in log order, each starting where the previous one ended, so the slots are increasing and
/// an acknowledgement of slot `m` acknowledges every append ending at or before `m`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Inflights {
    ends: VecDeque<Slot>,
}

impl Inflights {
    /// Whether `cap` appends are in flight: no new append may go out.
    pub(super) fn full(&self, cap: usize) -> bool {
        self.ends.len() >= cap
    }

    /// Whether nothing is in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// How many appends are in flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// An append ending at slot `end` went out. The caller checked [`Inflights::full`], so the
    /// queue never holds more than the window.
    pub(super) fn add(&mut self, end: Slot) {
        debug_assert!(
            self.ends.back().map_or(true, |&last| last < end),
            "appends in flight end in increasing slots"
        );
        self.ends.push_back(end);
    }

    /// The follower acknowledged every slot up to `matched` (etcd's `FreeLE`): every append
    /// ending there or before has arrived.
    pub(super) fn free_to(&mut self, matched: Slot) {
        while self.ends.front().is_some_and(|&end| end <= matched) {
            self.ends.pop_front();
        }
    }

    /// Forget everything in flight: the follower goes back to probing, where one append at a
    /// time is outstanding (`Progress::paused`), not a window.
    pub(super) fn reset(&mut self) {
        self.ends.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_frees_every_append_up_to_it() {
        let mut w = Inflights::default();
        for end in [3, 5, 9] {
            assert!(!w.full(3));
            w.add(end);
        }
        assert!(w.full(3));
        w.free_to(4); // covers the append ending at 3 only
        assert_eq!(w.len(), 2);
        assert!(!w.full(3));
        w.free_to(9);
        assert!(w.is_empty());
    }

    #[test]
    fn an_old_acknowledgement_frees_nothing_more() {
        let mut w = Inflights::default();
        w.add(5);
        w.add(8);
        w.free_to(5);
        w.free_to(2); // reordered: answers an append already freed
        assert_eq!(w.len(), 1);
        w.reset();
        assert!(w.is_empty());
    }
}
