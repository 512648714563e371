//! The node side of reads without the log ([`Replica::read`](paxraft_impls::Replica::read)):
//! which read id stands for which client request, and which reads the replica made ready but
//! the node's state machine has not yet caught up with.
//!
//! A node gives every read-only request it hands the replica a [`ReadId`] and remembers the
//! request here ([`Reads::start`]). The replica answers each id exactly once (rule 4 of the
//! effect contract): [`Effect::ReadReady`](paxraft_impls::Effect::ReadReady) `{ id, slot }`
//! moves it to the held list ([`Reads::ready`]), and the node answers it from its state
//! machine once it has applied every commit up to `slot` ([`Reads::release`]; with commits
//! applied as they come that is at the end of the same step);
//! [`Effect::ReadRedirect`](paxraft_impls::Effect::ReadRedirect) takes it out
//! ([`Reads::redirect`]) to be answered with a redirect. The client waiting on a read is
//! tracked by [`Pending`](super::Pending) like any request, so a node going down answers it
//! `Retry`; this table dies with the node's thread.
//!
//! Bounds: at most `cap` reads are outstanding at once ([`READS_IN_FLIGHT`](super::READS_IN_FLIGHT) in the runtime);
//! beyond it [`Reads::start`] says [`Start::Full`] and the node sends the read through the
//! log like a write, so a read is never refused or lost for want of room. A resend of a read
//! still outstanding here is the same read ([`Start::Waiting`]), not a second one.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::batcher::IdHasher;

use paxraft_impls::{ReadId, Slot};

/// A read the replica was given: the request it answers.
#[derive(Debug)]
struct Read<Op> {
    client: u64,
    seq: u64,
    op: Op,
    /// Made ready at this slot (`None`: not yet).
    at: Option<Slot>,
}

/// What [`Reads::start`] did with a read-only request.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// A new read: hand this id to the replica.
    New(ReadId),
    /// The same request is already outstanding here (a client's resend): it will be answered.
    Waiting,
    /// The table is full: send the request through the log instead.
    Full,
}

/// A node's outstanding reads.
#[derive(Debug)]
pub struct Reads<Op> {
    next: ReadId,
    // Integer keys the node makes up or its clients number: no SipHash (it showed at ~8% of a
    // read-heavy run's profile).
    by_id: HashMap<ReadId, Read<Op>, BuildHasherDefault<IdHasher>>,
    by_req: HashMap<(u64, u64), ReadId, BuildHasherDefault<IdHasher>>,
    /// Reads made ready, in the order they were: (slot, id).
    held: Vec<(Slot, ReadId)>,
    cap: usize,
}

impl<Op> Reads<Op> {
    /// An empty table holding at most `cap` outstanding reads.
    pub fn new(cap: usize) -> Self {
        Reads {
            next: 1,
            by_id: HashMap::default(),
            by_req: HashMap::default(),
            held: Vec::new(),
            cap,
        }
    }

    /// Reads outstanding (given to the replica and not yet answered).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no read is outstanding.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Note request `(client, seq)`, a read of `op`.
    pub fn start(&mut self, client: u64, seq: u64, op: Op) -> Start {
        if self.by_req.contains_key(&(client, seq)) {
            return Start::Waiting;
        }
        if self.by_id.len() >= self.cap {
            return Start::Full;
        }
        let id = self.next;
        self.next += 1;
        self.by_id.insert(
            id,
            Read {
                client,
                seq,
                op,
                at: None,
            },
        );
        self.by_req.insert((client, seq), id);
        Start::New(id)
    }

    /// The replica made read `id` ready at `slot`: hold it until the state machine has applied
    /// `slot` ([`Reads::release`]). An id not outstanding (answered already) is ignored.
    pub fn ready(&mut self, id: ReadId, slot: Slot) {
        if let Some(r) = self.by_id.get_mut(&id) {
            if r.at.is_none() {
                r.at = Some(slot);
                self.held.push((slot, id));
            }
        }
    }

    /// Whether reads wait for [`Reads::release`].
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Take out the reads made ready at a slot the state machine has applied (`applied`: it
    /// has applied every commit up to it) and hand each to `answer(client, seq, op)`, in the
    /// order they were made ready; the others stay held.
    pub fn release(&mut self, applied: Slot, mut answer: impl FnMut(u64, u64, Op)) {
        let by_id = &mut self.by_id;
        let by_req = &mut self.by_req;
        self.held.retain(|&(slot, id)| {
            // The rule a read is answered by (effect contract, rule 4): never from a state
            // that lacks a commit up to its read index.
            if slot > applied {
                return true;
            }
            if let Some(r) = by_id.remove(&id) {
                by_req.remove(&(r.client, r.seq));
                answer(r.client, r.seq, r.op);
            }
            false
        });
    }

    /// The replica handed read `id` back: take it out, as `(client, seq)`.
    pub fn redirect(&mut self, id: ReadId) -> Option<(u64, u64)> {
        let r = self.by_id.remove(&id)?;
        self.by_req.remove(&(r.client, r.seq));
        if r.at.is_some() {
            self.held.retain(|&(_, h)| h != id);
        }
        Some((r.client, r.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(r: &mut Reads<&'static str>, applied: Slot) -> Vec<(u64, u64, &'static str)> {
        let mut v = Vec::new();
        r.release(applied, |c, s, op| v.push((c, s, op)));
        v
    }

    #[test]
    fn a_read_is_answered_only_once_the_state_machine_applied_its_slot() {
        let mut r = Reads::new(8);
        assert_eq!(r.start(1, 1, "a"), Start::New(1));
        assert_eq!(r.start(2, 7, "b"), Start::New(2));
        r.ready(2, 5);
        r.ready(1, 3);
        // Applied up to 4: the read made ready at 3 goes, the one at 5 waits.
        assert_eq!(released(&mut r, 4), vec![(1, 1, "a")]);
        assert!(r.has_held());
        assert_eq!(released(&mut r, 4), vec![]);
        assert_eq!(released(&mut r, 5), vec![(2, 7, "b")]);
        assert!(r.is_empty() && !r.has_held());
        // Answered once: a second ReadReady for it changes nothing.
        r.ready(2, 5);
        assert_eq!(released(&mut r, 9), vec![]);
    }

    #[test]
    fn a_resend_is_the_same_read_and_a_full_table_sends_reads_through_the_log() {
        let mut r = Reads::new(2);
        assert_eq!(r.start(1, 1, "a"), Start::New(1));
        assert_eq!(r.start(1, 1, "a"), Start::Waiting);
        assert_eq!(r.start(1, 2, "b"), Start::New(2));
        assert_eq!(r.start(1, 3, "c"), Start::Full);
        assert_eq!(r.len(), 2);
        // Handed back: out of the table, so the request may be read again later.
        assert_eq!(r.redirect(1), Some((1, 1)));
        assert_eq!(r.redirect(1), None);
        assert_eq!(r.start(1, 1, "a"), Start::New(3));
        r.ready(3, 1);
        assert_eq!(r.redirect(3), Some((1, 1)));
        assert!(!r.has_held());
    }
}
