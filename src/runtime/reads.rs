//! The node side of reads without the log ([`Replica::read`](paxraft_impls::Replica::read)):
//! which client requests a read id stands for, and which reads the replica made ready but
//! the node's state machine has not yet caught up with.
//!
//! Every read-only request a node drains in one step joins that step's *group*
//! ([`Reads::start`]), and the whole group is handed to the replica as one [`ReadId`]
//! ([`Reads::take_group`]): the replica's rules are per read (a read index no lower than the
//! commit point when it arrived, a confirmation round begun after it), and reads that arrived
//! together may share them, so one id serves them all and the node's per-read cost is a push
//! and an answer, not table entries at the node and at the replica. A group also carries the
//! clients that sent a read ticket in that step ([`Reads::want`], [`super::local`]): their
//! parked reads are confirmed with the group's read index. The replica answers each
//! id exactly once (rule 4 of the effect contract):
//! [`Effect::ReadReady`](paxraft_impls::Effect::ReadReady) `{ id, slot }` holds the group
//! ([`Reads::ready`]) until the node's state machine has applied every commit up to `slot`
//! ([`Reads::release`]; with commits applied as they come that is the end of the same step);
//! [`Effect::ReadRedirect`](paxraft_impls::Effect::ReadRedirect) takes it out
//! ([`Reads::redirect`]) to be answered with redirects. The client waiting on a read is
//! tracked by [`Pending`](super::Pending) like any request, so a node going down answers it
//! `Retry`; this table dies with the node's thread.
//!
//! Bounds: at most `cap` reads are outstanding at once ([`READS_IN_FLIGHT`](super::READS_IN_FLIGHT)
//! in the runtime); beyond it [`Reads::start`] refuses and the node sends the read through
//! the log like a write, so a read is never refused or lost for want of room. A client's
//! resend of a read still outstanding here joins a later group and is answered twice; the
//! second answer finds nobody waiting ([`Pending`](super::Pending) answers a request once).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::batcher::IdHasher;

use paxraft_impls::{ReadId, Slot};

/// Reads handed to the replica as one id: the requests they answer, `(client, seq, op)`,
/// and the clients whose parked reads it confirms ([`super::local`]).
#[derive(Debug)]
struct Group<Op> {
    reqs: Vec<(u64, u64, Op)>,
    /// Clients that sent a read ticket, once per ticket.
    waiters: Vec<u64>,
    /// The highest ticket taken when the group was formed: what it confirms.
    through: u64,
    /// Made ready at this slot (`None`: not yet).
    at: Option<Slot>,
}

/// A group the replica handed back ([`Reads::redirect`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HandedBack {
    /// Its read requests, as `(client, seq)`.
    pub reads: Vec<(u64, u64)>,
    /// The clients whose tickets it held, once per ticket.
    pub waiters: Vec<u64>,
}

/// A node's outstanding reads.
#[derive(Debug)]
pub struct Reads<Op> {
    next: ReadId,
    /// This step's reads and ticket senders, not yet handed to the replica.
    open: Vec<(u64, u64, Op)>,
    open_waiters: Vec<u64>,
    // Integer keys the node makes up: no SipHash. A handful of groups are outstanding at once
    // (one per step while a confirmation round is out).
    by_id: HashMap<ReadId, Group<Op>, BuildHasherDefault<IdHasher>>,
    /// Groups made ready, in the order they were: (slot, id).
    held: Vec<(Slot, ReadId)>,
    /// Reads outstanding, open ones included.
    len: usize,
    cap: usize,
}

impl<Op> Reads<Op> {
    /// An empty table holding at most `cap` outstanding reads.
    pub fn new(cap: usize) -> Self {
        Reads {
            next: 1,
            open: Vec::new(),
            open_waiters: Vec::new(),
            by_id: HashMap::default(),
            held: Vec::new(),
            len: 0,
            cap,
        }
    }

    /// Reads outstanding (taken by [`Reads::start`] and not yet answered).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no read is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Take request `(client, seq)`, a read of `op`, into this step's group. False: the table
    /// is full, send the request through the log instead.
    #[must_use]
    pub fn start(&mut self, client: u64, seq: u64, op: Op) -> bool {
        if self.len >= self.cap {
            return false;
        }
        self.len += 1;
        self.open.push((client, seq, op));
        true
    }

    /// Client `client` sent a read ticket: this step's group confirms it. Not bounded by
    /// `cap`: a client sends one ticket per batch of its own bounded window.
    pub fn want(&mut self, client: u64) {
        self.open_waiters.push(client);
    }

    /// The id to hand the replica for this step's group (`None`: no read or ticket since the
    /// last call). `asked` reads the highest ticket taken so far: every ticket drained in
    /// this step is at or below it, and so is every ticket this group will confirm.
    pub fn take_group(&mut self, asked: impl FnOnce() -> u64) -> Option<ReadId> {
        if self.open.is_empty() && self.open_waiters.is_empty() {
            return None;
        }
        let id = self.next;
        self.next += 1;
        let waiters = std::mem::take(&mut self.open_waiters);
        let through = if waiters.is_empty() { 0 } else { asked() };
        let group = Group {
            reqs: std::mem::take(&mut self.open),
            waiters,
            through,
            at: None,
        };
        self.by_id.insert(id, group);
        Some(id)
    }

    /// The replica made read `id` ready at `slot`: hold its group until the state machine has
    /// applied `slot` ([`Reads::release`]). An id not outstanding (answered already) is
    /// ignored.
    pub fn ready(&mut self, id: ReadId, slot: Slot) {
        if let Some(g) = self.by_id.get_mut(&id) {
            if g.at.is_none() {
                g.at = Some(slot);
                self.held.push((slot, id));
            }
        }
    }

    /// Whether reads wait for [`Reads::release`].
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Take out the groups made ready at a slot the state machine has applied (`applied`: it
    /// has applied every commit up to it) and hand each of their reads to
    /// `answer(client, seq, op)` and, for groups that held tickets, their highest ticket and
    /// waiting clients to `confirmed(through, waiters)`, in the order they were made ready;
    /// the others stay held.
    pub fn release(
        &mut self,
        applied: Slot,
        mut answer: impl FnMut(u64, u64, Op),
        mut confirmed: impl FnMut(u64, Vec<u64>),
    ) {
        let by_id = &mut self.by_id;
        let len = &mut self.len;
        self.held.retain(|&(slot, id)| {
            // The rule a read is answered by (effect contract, rule 4): never from a state
            // that lacks a commit up to its read index.
            if slot > applied {
                return true;
            }
            if let Some(g) = by_id.remove(&id) {
                *len -= g.reqs.len();
                for (client, seq, op) in g.reqs {
                    answer(client, seq, op);
                }
                if !g.waiters.is_empty() {
                    confirmed(g.through, g.waiters);
                }
            }
            false
        });
    }

    /// The replica handed read `id` back: take its group out.
    pub fn redirect(&mut self, id: ReadId) -> HandedBack {
        let Some(g) = self.by_id.remove(&id) else {
            return HandedBack::default();
        };
        self.len -= g.reqs.len();
        if g.at.is_some() {
            self.held.retain(|&(_, h)| h != id);
        }
        HandedBack {
            reads: g.reqs.into_iter().map(|(c, s, _)| (c, s)).collect(),
            waiters: g.waiters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(r: &mut Reads<&'static str>, applied: Slot) -> Vec<(u64, u64, &'static str)> {
        let mut v = Vec::new();
        r.release(applied, |c, s, op| v.push((c, s, op)), |_, _| {});
        v
    }

    fn group(r: &mut Reads<&'static str>) -> Option<ReadId> {
        r.take_group(|| unreachable!("no tickets here"))
    }

    #[test]
    fn a_group_is_answered_only_once_the_state_machine_applied_its_slot() {
        let mut r = Reads::new(8);
        assert_eq!(group(&mut r), None, "no read started");
        assert!(r.start(1, 1, "a") && r.start(3, 4, "c"));
        assert_eq!(group(&mut r), Some(1));
        assert!(r.start(2, 7, "b"));
        assert_eq!(group(&mut r), Some(2));
        assert_eq!(r.len(), 3);
        r.ready(2, 5);
        r.ready(1, 3);
        // Applied up to 4: the group made ready at 3 goes, in arrival order; the one at 5
        // waits.
        assert_eq!(released(&mut r, 4), vec![(1, 1, "a"), (3, 4, "c")]);
        assert!(r.has_held());
        assert_eq!(released(&mut r, 4), vec![]);
        assert_eq!(released(&mut r, 5), vec![(2, 7, "b")]);
        assert!(r.is_empty() && !r.has_held());
        // Answered once: a second ReadReady for it changes nothing.
        r.ready(2, 5);
        assert_eq!(released(&mut r, 9), vec![]);
    }

    #[test]
    fn a_full_table_sends_reads_through_the_log_and_a_redirect_hands_a_group_back() {
        let mut r = Reads::new(2);
        assert!(r.start(1, 1, "a") && r.start(1, 2, "b"));
        assert!(!r.start(1, 3, "c"), "full: through the log");
        let g = group(&mut r).unwrap();
        assert!(!r.start(1, 3, "c"), "still full while the group is out");
        assert_eq!(r.redirect(g).reads, vec![(1, 1), (1, 2)]);
        assert_eq!(r.redirect(g), HandedBack::default(), "handed back once");
        assert!(r.is_empty());
        assert!(r.start(1, 3, "c"));
        let g = group(&mut r).unwrap();
        r.ready(g, 1);
        assert_eq!(r.redirect(g).reads, vec![(1, 3)]);
        assert!(!r.has_held() && r.is_empty());
    }

    #[test]
    fn a_group_confirms_every_ticket_taken_before_it_was_formed() {
        let mut r = Reads::new(8);
        r.want(7);
        assert!(r.start(1, 1, "a"));
        r.want(9);
        // Tickets up to 12 were taken when the group formed (some still in the mailbox).
        let g = r.take_group(|| 12).unwrap();
        r.ready(g, 2);
        let mut confirmed = Vec::new();
        let mut answered = Vec::new();
        r.release(
            1,
            |c, s, op| answered.push((c, s, op)),
            |t, w| confirmed.push((t, w)),
        );
        assert!(
            answered.is_empty() && confirmed.is_empty(),
            "slot 2 not applied"
        );
        r.release(
            2,
            |c, s, op| answered.push((c, s, op)),
            |t, w| confirmed.push((t, w)),
        );
        assert_eq!(answered, vec![(1, 1, "a")]);
        assert_eq!(confirmed, vec![(12, vec![7, 9])]);
        // A group of tickets alone, handed back: its clients hear it.
        r.want(7);
        let g = r.take_group(|| 13).unwrap();
        assert_eq!(
            r.redirect(g),
            HandedBack {
                reads: vec![],
                waiters: vec![7]
            }
        );
        assert!(r.is_empty());
    }
}
