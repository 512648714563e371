//! A node's local reader: lease reads answered on the client's thread, not the node's.
//!
//! Under a leader lease ([`Replica::local_reads`](paxraft_impls::Replica::local_reads),
//! Ongaro's dissertation §6.4.1) a read needs no step of the replica: no round, no log, only a
//! state machine that has applied the leader's commit point and a clock that says the lease
//! still holds. Through the node's mailbox such a read costs a hand-off to the node's thread
//! and one back, and queues behind the writes of the same step; here a client of the same
//! process answers it from the node's state machine under a read lock (TiKV serves lease
//! reads the same way, in its `LocalReader`).
//!
//! Why it is linearizable. The node's thread publishes the replica's permission after every
//! step, after applying that step's commits and syncing its writes, and *before* any of its
//! messages leave ([`LocalReader::allow`], [`LocalReader::revoke`]). So a read served on a permission sees
//! a replica whose every message so far has left under it: if a later step ends it (a
//! handover sent, the leadership lost), that step's messages leave only after the new answer
//! is published, and until then nothing it decided has reached another node. The state
//! machine only moves forward while a permission is out: every write acknowledged to any
//! client before the read began is in it (this leader applied it before acknowledging it,
//! or an earlier leader committed it below this leader's commit point, which the replica
//! checked before allowing). A reboot empties the state machine only after the node's thread
//! revoked the permission, and the reader checks the permission under the same lock it
//! reads under.
//!
//! Only durable commits are read. A commit usually covers entries a quorum synced in earlier
//! steps (the leader's own copy included: its acknowledgements answer messages sent after
//! its sync). But a commit reported after a write of the same step may cover that write,
//! not yet synced (a cluster of one commits what it has just appended): a read that saw it,
//! followed by a crash before the sync, would have seen a write that never happened. So the
//! node revokes the permission (and the confirmed tickets) before applying such a commit, and
//! allows again only after the step's sync. Such a commit is one above the last slot the
//! node held at its previous sync, in a step that wrote: at or below that slot the entry is
//! durable here, and where the node alone is no quorum, in a quorum of synced copies (a
//! follower's entries rewritten in this step are committed only once a quorum synced them).
//!
//! ReadIndex reads are answered here too, once confirmed (etcd's server does the same in its
//! linearizable read loop: one ReadIndex for every read waiting, then each reader reads the
//! store itself). A client parks its reads under a *ticket* it takes from this reader
//! ([`LocalReader::ticket`], a counter) and sends the node one
//! [`Input::ReadTicket`](super::Input::ReadTicket) for the batch, not the reads. The node
//! hands every ticket drained in a step to its replica as one read
//! ([`Replica::read`](paxraft_impls::Replica::read)), noting the highest ticket taken so far;
//! when the replica makes that read ready and the state machine has applied its slot, the
//! node publishes that ticket as confirmed ([`LocalReader::confirm`], after the step's sync)
//! and wakes the waiting clients ([`Reply::Confirmed`](super::Reply::Confirmed)), who answer
//! every read parked under a ticket up to it ([`LocalReader::confirmed`]).
//!
//! Why that is linearizable (dissertation §6.4). A ticket no higher than the one confirmed
//! was taken before the node noted it, so after the read was invoked; the replica fixed the
//! read index at its commit point then or later, and confirmed its leadership with a round
//! begun after that, so the index covers every write acknowledged before the read began.
//! The state machine read has applied that index (the node confirms only then), holds only
//! committed commands, and moves only forward while the confirmation is published: a later
//! state is as good an answer (its writes all committed before the read returns), so the
//! confirmation need not end when the leadership does. It ends when the state machine could
//! go back: a reboot revokes it before emptying the state machine (tickets keep counting
//! across incarnations, so an old ticket is confirmed again only by a new round), and the
//! unsynced commit below revokes it until the sync, as it does the lease.
//!
//! In-process clients only: a transport's client reaches server processes over the network,
//! where their nodes' readers never give it a permission or a ticket, and its reads go to the
//! node.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use paxraft_impls::sm::{Sessions, StateMachine};

/// A node's state machine, read under a permission that held when the guard was taken (the
/// lease: [`LocalReader::leased`]; confirmed tickets: [`LocalReader::confirmed`]).
pub struct Reading<'a, S: StateMachine> {
    sessions: RwLockReadGuard<'a, Sessions<S>>,
    served: &'a AtomicU64,
    /// Answered through this guard: added to `served` once, when it is dropped.
    count: Cell<u64>,
}

impl<S: StateMachine> std::fmt::Debug for Reading<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reading({} answered)", self.count.get())
    }
}

impl<S: StateMachine> Reading<'_, S> {
    /// The answer to read-only `op` (`None` if `op` is not read-only).
    pub fn query(&self, op: &S::Op) -> Option<S::Output> {
        let out = self.sessions.state().query(op)?;
        self.count.set(self.count.get() + 1);
        Some(out)
    }

    /// [`Reading::query`], the answer written into `out` ([`StateMachine::query_into`]);
    /// false if `op` is not read-only.
    pub fn query_into<E>(&self, op: &S::Op, out: &mut Result<S::Output, E>) -> bool {
        let answered = self.sessions.state().query_into(op, out);
        self.count.set(self.count.get() + u64::from(answered));
        answered
    }
}

impl<S: StateMachine> Drop for Reading<'_, S> {
    fn drop(&mut self) {
        self.served.fetch_add(self.count.get(), Ordering::Relaxed);
    }
}

/// A node's state machine and the permission to read it without the node.
pub struct LocalReader<S: StateMachine> {
    /// What `until` counts from: the network's creation, before any node's thread started.
    origin: Instant,
    /// Reads may be answered here while `origin.elapsed()` is less than this many
    /// nanoseconds; 0: not at all.
    until: AtomicU64,
    /// The node's state machine behind its client sessions, rebuilt at each boot.
    sessions: RwLock<Sessions<S>>,
    /// Reads answered here.
    served: AtomicU64,
    /// The node confirms tickets (its reads are ReadIndex reads): clients park reads here.
    tickets_on: AtomicBool,
    /// Tickets taken so far.
    tickets: AtomicU64,
    /// Reads parked under a ticket up to this one may be answered here; 0: none.
    confirmed: AtomicU64,
}

impl<S: StateMachine> std::fmt::Debug for LocalReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LocalReader(until {} ns)",
            self.until.load(Ordering::Relaxed)
        )
    }
}

impl<S: StateMachine> LocalReader<S> {
    /// A reader with an empty state machine and no permission, counting from `origin`.
    pub fn new(origin: Instant) -> Self {
        LocalReader {
            origin,
            until: AtomicU64::new(0),
            sessions: RwLock::new(Sessions::new()),
            served: AtomicU64::new(0),
            tickets_on: AtomicBool::new(false),
            tickets: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
        }
    }

    /// The state machine, to read (a poisoned lock is still sound: see
    /// [`super::sync::lock`]).
    pub fn sessions(&self) -> RwLockReadGuard<'_, Sessions<S>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The state machine, to apply to (the node's thread, and a reboot).
    pub fn sessions_mut(&self) -> RwLockWriteGuard<'_, Sessions<S>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The node's replica allows reads answered alone until `deadline` (the node's thread,
    /// after a step, before its sends).
    pub fn allow(&self, deadline: Instant) {
        let nanos = deadline.saturating_duration_since(self.origin).as_nanos();
        // An origin this far back is impossible in practice: then allow nothing.
        let nanos = u64::try_from(nanos).unwrap_or(0);
        self.until.store(nanos, Ordering::Release);
    }

    /// No reads answered alone from now on, under the lease or a confirmed ticket (a step
    /// ended the permission, or the state machine may hold an unsynced commit, or the node
    /// went down).
    pub fn revoke(&self) {
        self.until.store(0, Ordering::Release);
        self.confirmed.store(0, Ordering::Release);
    }

    /// Whether the node confirms tickets (its thread, at each boot).
    pub fn offer_tickets(&self, on: bool) {
        self.tickets_on.store(on, Ordering::Release);
    }

    /// Whether the node confirms tickets now (a hint: [`LocalReader::ticket`] decides).
    pub fn offers_tickets(&self) -> bool {
        self.tickets_on.load(Ordering::Acquire)
    }

    /// A ticket for reads invoked before this call, to park here until a ticket at least as
    /// high is confirmed; `None`: the node confirms no tickets, send the reads as requests.
    pub fn ticket(&self) -> Option<u64> {
        if !self.tickets_on.load(Ordering::Acquire) {
            return None;
        }
        Some(self.tickets.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// The highest ticket taken so far (the node's thread, after draining the tickets it
    /// will confirm with one read index).
    pub fn asked(&self) -> u64 {
        self.tickets.load(Ordering::Acquire)
    }

    /// Reads parked under a ticket up to `through` may be answered here (the node's thread,
    /// after the step's sync, once the read index confirmed for them is applied).
    pub fn confirm(&self, through: u64) {
        self.confirmed.store(through, Ordering::Release);
    }

    /// The highest ticket confirmed now (0: none), without the lock.
    pub fn confirmed_through(&self) -> u64 {
        self.confirmed.load(Ordering::Acquire)
    }

    /// The state machine under its read lock and the highest ticket confirmed, if any is:
    /// reads parked under a ticket up to it are answered from the guard.
    pub fn confirmed(&self) -> Option<(Reading<'_, S>, u64)> {
        if self.confirmed.load(Ordering::Acquire) == 0 {
            return None;
        }
        let sessions = self.sessions();
        // Checked under the lock: a reboot empties the state machine only after a revoke.
        let through = self.confirmed.load(Ordering::Acquire);
        if through == 0 {
            return None;
        }
        let reading = Reading {
            sessions,
            served: &self.served,
            count: Cell::new(0),
        };
        Some((reading, through))
    }

    /// The state machine under its read lock, if the permission holds now; `None`: send
    /// the reads to the node. Every read answered from the guard is linearized at this
    /// moment: the permission held, and the state cannot move while the guard is held. One
    /// clock reading and one lock for a client's whole batch.
    pub fn leased(&self) -> Option<Reading<'_, S>> {
        // No permission (every read of a cluster without leases): no lock, no clock.
        if self.until.load(Ordering::Acquire) == 0 {
            return None;
        }
        let sessions = self.sessions();
        // Checked under the lock: a reboot empties the state machine only after a revoke.
        let until = self.until.load(Ordering::Acquire);
        if until == 0 || self.origin.elapsed().as_nanos() >= u128::from(until) {
            return None;
        }
        Some(Reading {
            sessions,
            served: &self.served,
            count: Cell::new(0),
        })
    }

    /// Reads answered here so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxraft_impls::sm::{Kv, KvOp, KvOutput};
    use std::time::Duration;

    #[test]
    fn a_read_is_answered_only_while_the_permission_holds() {
        let r = LocalReader::<Kv>::new(Instant::now());
        let get = KvOp::Get(1);
        let read = |op| r.leased().and_then(|l| l.query(op));
        assert_eq!(read(&get), None, "no permission yet");
        r.allow(Instant::now() + Duration::from_secs(60));
        assert_eq!(read(&get), Some(KvOutput::Value(None)), "key 1 is absent");
        r.revoke();
        assert_eq!(read(&get), None, "revoked");
        r.allow(Instant::now() - Duration::from_millis(1));
        assert_eq!(read(&get), None, "expired");
        assert_eq!(r.served(), 1);
    }

    #[test]
    fn a_parked_read_is_answered_only_under_a_confirmed_ticket() {
        let r = LocalReader::<Kv>::new(Instant::now());
        assert_eq!(r.ticket(), None, "the node offers no tickets yet");
        r.offer_tickets(true);
        let (t1, t2) = (r.ticket().unwrap(), r.ticket().unwrap());
        assert!(t1 < t2 && r.asked() == t2);
        assert!(r.confirmed().is_none(), "nothing confirmed");
        r.confirm(t1);
        let (reading, through) = r.confirmed().unwrap();
        assert_eq!(through, t1, "t2 still waits");
        assert_eq!(reading.query(&KvOp::Get(1)), Some(KvOutput::Value(None)));
        drop(reading);
        r.revoke();
        assert!(r.confirmed().is_none(), "revoked with the lease");
        assert!(r.ticket().unwrap() > t2, "tickets keep counting");
        assert_eq!(r.served(), 1);
    }
}
