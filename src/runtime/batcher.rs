//! The node side of client proposals: who waits for which request, and answering them.
//!
//! A replica thread drains its mailbox, hands every proposal in it to the protocol as one
//! batch, and notes here which client waits for which request ([`Pending::add`]). As commands
//! commit (or are redirected) it queues their answers ([`Pending::answer`]); after the step's
//! durable sync it pushes each client's answers in one batch ([`Pending::flush`]) into that
//! client's reply mailbox, its completion slots. When the node goes down, every request it
//! still holds is answered `Retry` ([`Pending::fail_all`]); requests still queued in its
//! mailbox are answered by whoever closed it. So every request handed to a node is answered
//! exactly once, or its client gives up on it (closes or drops its reply box) and the answer
//! is dropped. The loom tests (tests/loom_runtime.rs) run this code against the mailbox.
//!
//! Bounds: per client, the pending list holds what the client has outstanding at this node
//! plus stale entries (lost in a leader change), swept once they fall below the client's
//! acknowledged point; clients with nothing pending are forgotten beyond
//! [`FORGET_CLIENTS_ABOVE`] known clients.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use paxraft_impls::sm::StateMachine;
use paxraft_impls::NodeId;

use super::sync::Arc;
use super::{Cmd, Reply, ReplyBox};

/// One client's requests a node was handed and has not answered yet.
struct Waiting<S: StateMachine> {
    reply: ReplyBox<S>,
    /// Pending sequence numbers, mostly in the order they commit (so answering is a
    /// `pop_front`); a resend can sit out of order and is found by a short scan.
    seqs: VecDeque<u64>,
    /// The client has every answer below this: lower entries are stale (lost in a leader
    /// change and answered by another node) and are dropped.
    acked: u64,
    /// `seqs` is swept of stale entries when it reaches this length (amortized O(1)).
    sweep_at: usize,
    /// Answers of this step, pushed in one batch after the step's sync.
    out: Vec<Reply<S>>,
    /// Read tickets taken ([`Pending::add_ticket`]) and not yet answered.
    tickets: u32,
    /// `out` holds a [`Reply::Confirmed`] (one wakes the client for all of a step's).
    woken: bool,
}

/// The requests a node must answer: per client, not per request (one map lookup per
/// committed command, no per-request allocation or reference count).
pub struct Pending<S: StateMachine> {
    by_client: HashMap<u64, Waiting<S>, BuildHasherDefault<IdHasher>>,
    /// Clients with answers in `out`.
    dirty: Vec<u64>,
    /// Forget idle clients when more than this many are known.
    forget_at: usize,
    /// The node answering (named in [`Reply::Unconfirmed`]).
    node: NodeId,
    /// Test-only fault injection (loom must reject it): going down forgets the requests
    /// the node holds instead of answering them `Retry`.
    #[cfg(loom)]
    pub faulty_fail_all_forgets: bool,
}

impl<S: StateMachine> std::fmt::Debug for Pending<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pending({} clients)", self.by_client.len())
    }
}

impl<S: StateMachine> Default for Pending<S> {
    fn default() -> Self {
        Pending {
            by_client: HashMap::default(),
            dirty: Vec::new(),
            forget_at: FORGET_CLIENTS_ABOVE,
            node: NodeId(0),
            #[cfg(loom)]
            faulty_fail_all_forgets: false,
        }
    }
}

/// Above this many clients known, a node forgets those with nothing pending.
pub const FORGET_CLIENTS_ABOVE: usize = 1024;

impl<S: StateMachine> Pending<S> {
    /// Node `node`'s requests (the default is node 0's).
    pub fn for_node(node: NodeId) -> Self {
        Pending {
            node,
            ..Pending::default()
        }
    }

    /// Note requests handed to this node (all from one client, answered through `reply`).
    pub fn add(&mut self, reqs: &[Cmd<S>], reply: &ReplyBox<S>) {
        if self.by_client.len() > self.forget_at {
            self.by_client
                .retain(|_, w| !w.seqs.is_empty() || !w.out.is_empty() || w.tickets > 0);
            // Amortized: with many clients all waiting, do not sweep on every proposal.
            self.forget_at = (2 * self.by_client.len()).max(FORGET_CLIENTS_ABOVE);
        }
        // A proposal's requests come from one client: one map lookup per run of them.
        let mut rest = reqs;
        while let Some(first) = rest.first() {
            let client = first.client;
            let run = rest.iter().take_while(|r| r.client == client).count();
            let (mine, later) = rest.split_at(run);
            rest = later;
            let w = self.waiting(client, reply);
            for r in mine {
                w.acked = w.acked.max(r.acked);
                w.seqs.push_back(r.seq);
            }
            if w.seqs.len() >= w.sweep_at {
                let acked = w.acked;
                w.seqs.retain(|&s| s >= acked);
                w.sweep_at = (2 * w.seqs.len()).max(64);
            }
        }
    }

    /// Client `client`'s entry, answered through `reply` from now on.
    fn waiting(&mut self, client: u64, reply: &ReplyBox<S>) -> &mut Waiting<S> {
        let w = self.by_client.entry(client).or_insert_with(|| Waiting {
            reply: Arc::clone(reply),
            seqs: VecDeque::new(),
            acked: 0,
            sweep_at: 64,
            out: Vec::new(),
            tickets: 0,
            woken: false,
        });
        if !Arc::ptr_eq(&w.reply, reply) {
            w.reply = Arc::clone(reply);
        }
        w
    }

    /// Note a read ticket ([`Input::ReadTicket`](super::Input::ReadTicket)) from `client`:
    /// it is answered [`Reply::Confirmed`] ([`Pending::confirm`]) or [`Reply::Unconfirmed`]
    /// ([`Pending::unconfirm`], or when the node goes down).
    pub fn add_ticket(&mut self, client: u64, reply: &ReplyBox<S>) {
        self.waiting(client, reply).tickets += 1;
    }

    /// A ticket of `client` is confirmed: queue [`Reply::Confirmed`] (once per step: it only
    /// wakes the client to look at its reader).
    pub fn confirm(&mut self, client: u64) {
        self.ticket_answer(client, Reply::Confirmed);
    }

    /// A ticket of `client` will not be confirmed here: queue [`Reply::Unconfirmed`].
    pub fn unconfirm(&mut self, client: u64, leader: Option<NodeId>) {
        let node = self.node;
        self.ticket_answer(client, Reply::Unconfirmed { node, leader });
    }

    fn ticket_answer(&mut self, client: u64, reply: Reply<S>) {
        let Some(w) = self.by_client.get_mut(&client) else {
            return;
        };
        if w.tickets == 0 {
            return;
        }
        w.tickets -= 1;
        if matches!(reply, Reply::Confirmed) {
            if w.woken {
                return;
            }
            w.woken = true;
        }
        if w.out.is_empty() {
            self.dirty.push(client);
        }
        w.out.push(reply);
    }

    /// If this node holds request `(client, seq)`, queue its answer.
    pub fn answer(&mut self, client: u64, seq: u64, reply: impl FnOnce(u64) -> Reply<S>) {
        let Some(w) = self.by_client.get_mut(&client) else {
            return;
        };
        if w.seqs.front() == Some(&seq) {
            w.seqs.pop_front();
        } else if let Some(i) = w.seqs.iter().position(|&s| s == seq) {
            w.seqs.remove(i);
        } else {
            return; // proposed at another node, which answers it
        }
        while w.seqs.front().is_some_and(|&s| s < w.acked) {
            w.seqs.pop_front();
        }
        if w.out.is_empty() {
            self.dirty.push(client);
        }
        w.out.push(reply(seq));
    }

    /// Push this step's answers, one batch per client. Returns how many were dropped
    /// because a reply box was full or closed (its client gave up, or resends and is
    /// answered from the session with the original result).
    pub fn flush(&mut self) -> usize {
        let mut dropped = 0;
        for c in self.dirty.drain(..) {
            if let Some(w) = self.by_client.get_mut(&c) {
                w.woken = false;
                if w.reply.push_from(&mut w.out).is_err() {
                    dropped += w.out.len();
                    w.out.clear();
                }
            }
        }
        dropped
    }

    /// Whether this step queued answers ([`Pending::flush`] has something to push).
    pub(crate) fn has_answers(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The node goes down: tell every waiting client to retry elsewhere. That includes the
    /// requests answered in this step but not yet pushed (a crash before the push): a dead
    /// node's answers never leave; the retry is answered from the session elsewhere.
    pub fn fail_all(&mut self) {
        #[cfg(loom)]
        if self.faulty_fail_all_forgets {
            self.by_client.clear();
            return;
        }
        let node = self.node;
        for (_, w) in self.by_client.drain() {
            let list: Vec<Reply<S>> = w
                .out
                .iter()
                .filter_map(Reply::seq)
                .chain(w.seqs)
                .map(|seq| Reply::Retry { seq })
                // Reads it parked with this node's reader will not be confirmed here (nor
                // by a confirmation this step did not push).
                .chain(
                    (w.tickets > 0 || w.woken).then_some(Reply::Unconfirmed { node, leader: None }),
                )
                .collect();
            let _ = w.reply.push_many(list);
        }
        self.dirty.clear();
    }
}

/// A hasher for small integer keys (client ids, read ids): one multiply, not SipHash.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use paxraft_impls::sm::{Kv, KvOp, KvOutput, Request};

    use super::*;
    use crate::runtime::Mailbox;

    fn req(client: u64, seq: u64, acked: u64) -> Cmd<Kv> {
        Request {
            client,
            seq,
            acked,
            op: KvOp::Get(0),
        }
    }

    fn done(seq: u64) -> Reply<Kv> {
        Reply::Done {
            seq,
            out: Ok(KvOutput::Written),
        }
    }

    fn drained(b: &ReplyBox<Kv>) -> Vec<Reply<Kv>> {
        let mut v = Vec::new();
        b.drain(&mut v, Some(std::time::Instant::now()));
        v
    }

    #[test]
    fn a_ticket_is_answered_once_and_a_dying_node_unconfirms_what_it_held() {
        let b: ReplyBox<Kv> = Arc::new(Mailbox::new(64));
        let mut p = Pending::<Kv>::for_node(NodeId(2));
        let gone = Reply::Unconfirmed {
            node: NodeId(2),
            leader: None,
        };
        // Two tickets confirmed in one step: one wake-up.
        p.add_ticket(1, &b);
        p.add_ticket(1, &b);
        p.confirm(1);
        p.confirm(1);
        // Nothing held: nothing answered.
        p.confirm(1);
        p.unconfirm(1, None);
        p.flush();
        assert_eq!(drained(&b), vec![Reply::Confirmed]);
        // Handed back, with a hint.
        p.add_ticket(1, &b);
        p.unconfirm(1, Some(NodeId(0)));
        p.flush();
        assert_eq!(
            drained(&b),
            vec![Reply::Unconfirmed {
                node: NodeId(2),
                leader: Some(NodeId(0))
            }]
        );
        // Still held when the node goes down: unconfirmed.
        p.add_ticket(1, &b);
        p.fail_all();
        assert_eq!(drained(&b), vec![gone.clone()]);
        // Confirmed but not pushed when it goes down: unconfirmed too (the confirmation it
        // published is revoked with it).
        let mut p = Pending::<Kv>::for_node(NodeId(2));
        p.add_ticket(1, &b);
        p.confirm(1);
        p.fail_all();
        assert_eq!(drained(&b), vec![gone]);
    }

    #[test]
    fn answers_only_what_it_holds_in_commit_order_once() {
        let b: ReplyBox<Kv> = Arc::new(Mailbox::new(64));
        let mut p = Pending::<Kv>::default();
        p.add(&[req(1, 1, 1), req(1, 2, 1), req(1, 3, 1)], &b);
        // Out of order (a resend committed first), and one it never held.
        p.answer(1, 2, done);
        p.answer(1, 9, done);
        p.answer(7, 1, done);
        p.answer(1, 1, done);
        assert_eq!(p.flush(), 0);
        assert_eq!(drained(&b), vec![done(2), done(1)]);
        // Answered once: a second commit of the same request (a duplicate) is not answered.
        p.answer(1, 2, done);
        p.flush();
        assert_eq!(drained(&b), vec![]);
        // What it still holds is failed when the node goes down.
        p.fail_all();
        assert_eq!(drained(&b), vec![Reply::Retry { seq: 3 }]);
    }

    #[test]
    fn answers_not_yet_pushed_when_the_node_dies_become_retries() {
        let b: ReplyBox<Kv> = Arc::new(Mailbox::new(64));
        let mut p = Pending::<Kv>::default();
        p.add(&[req(1, 1, 1), req(1, 2, 1)], &b);
        assert!(!p.has_answers());
        p.answer(1, 1, done);
        assert!(p.has_answers());
        // A crash between the answer and its push: the client hears Retry, not Done.
        p.fail_all();
        assert_eq!(
            drained(&b),
            vec![Reply::Retry { seq: 1 }, Reply::Retry { seq: 2 }]
        );
    }

    #[test]
    fn stale_requests_are_swept_so_the_list_stays_bounded() {
        let b: ReplyBox<Kv> = Arc::new(Mailbox::new(64));
        let mut p = Pending::<Kv>::default();
        // A client whose requests here are all lost (answered elsewhere): its acknowledged
        // point moves on, and what lies below it is dropped.
        for seq in 1..100_000 {
            p.add(&[req(1, seq, seq.saturating_sub(10))], &b);
        }
        let held = p.by_client[&1].seqs.len();
        assert!(held <= 128, "{held} entries held for 10 live requests");
    }

    #[test]
    fn a_closed_reply_box_drops_the_answers() {
        let b: ReplyBox<Kv> = Arc::new(Mailbox::new(64));
        let mut p = Pending::<Kv>::default();
        p.add(&[req(1, 1, 1), req(1, 2, 1)], &b);
        b.close();
        p.answer(1, 1, done);
        p.answer(1, 2, done);
        assert_eq!(p.flush(), 2);
    }
}
