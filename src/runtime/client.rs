//! Clients of a live cluster: pipelined (many requests outstanding), following redirects,
//! resending on silence, and answering every request with a result or an error by its deadline.

use super::sync::Arc;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use paxraft_impls::sm::{Request, SessionError, StateMachine};
use paxraft_impls::{NodeId, Replica};

use super::local::Reading;
use super::window::SeqWindow;
use super::{Cmd, Mailbox, Net, Reply, ReplyBox};

/// Why a request has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No answer within the client's timeout. The request may or may not have taken effect.
    Timeout,
    /// The cluster shut down. The request may or may not have taken effect.
    Shutdown,
    /// Too many requests outstanding; nothing was sent.
    Busy,
    /// The leader refused the request: it holds as many commands it has not committed as it
    /// may ([`Config::max_uncommitted`](paxraft_impls::Config::max_uncommitted)), so the
    /// cluster is not keeping up (a lost quorum, a slow disk). The request did not take
    /// effect: the client reports this only when no copy of it can be in a log (a request
    /// with a copy that went unanswered is resent instead, and ends answered or timed out).
    /// Try again after a pause.
    Overloaded,
    /// The session refused the request: a client bug (a resent acknowledged request, a
    /// sequence number reused for another op), or the session expired (the client was idle
    /// through the cluster's session timeout, [`RuntimeConfig::session_timeout`](super::RuntimeConfig::session_timeout)):
    /// the copy refused was not applied, and no later request of this client will be; go on
    /// under a new client id. An expired request's outcome is unknown, as a timed-out one's:
    /// a copy sent earlier may have taken effect before the session expired, its answer
    /// lost, so do not resend it under the new id as if it had not.
    Session(SessionError),
    /// The operation encodes to more bytes than the client may send
    /// ([`Client::limit_op_bytes`]: a network client's frames are bounded); nothing was sent.
    TooLarge {
        /// The operation's encoded size.
        bytes: usize,
        /// The most the client sends.
        max: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => write!(f, "timed out"),
            Error::Shutdown => write!(f, "cluster shut down"),
            Error::Busy => write!(f, "too many requests outstanding"),
            Error::Overloaded => write!(f, "leader overloaded: too many commands uncommitted"),
            Error::Session(e) => write!(f, "{e}"),
            Error::TooLarge { bytes, max } => {
                write!(
                    f,
                    "operation of {bytes} bytes encoded, over the limit of {max}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Resend a request that heard nothing for this long (to the next node).
    pub retry_after: Duration,
    /// Give up on a request after this long.
    pub timeout: Duration,
    /// Most requests outstanding at once.
    pub max_outstanding: usize,
    /// Send read-only requests ([`StateMachine::is_read_only`]) to this node rather than to
    /// the leader: a nearby replica. With follower reads on
    /// ([`Config::follower_reads`](paxraft_impls::Config::follower_reads)) a follower serves
    /// them itself; otherwise it redirects them and the client follows the redirect to the
    /// leader. A read that is redirected or told to retry goes where writes go from then on;
    /// so does one left unanswered for `retry_after`, and the client then sends no reads to
    /// that node for [`NEAR_SILENT_BACKOFF`] (a node removed from the configuration never
    /// applies anything again, so a read it took would wait there until its timeout).
    /// `None` (the default): reads go where writes go.
    pub read_from: Option<NodeId>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            retry_after: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
            max_outstanding: 4096,
            read_from: None,
        }
    }
}

#[derive(Debug)]
struct Outstanding<Op> {
    op: Op,
    /// When it was first sent (set by the first flush).
    first: Instant,
    resend_at: Instant,
    target: usize,
    /// Sent at least once (so `first` is set).
    sent: bool,
    /// Listed in `unsent` (so a resend is not listed twice).
    queued: bool,
    /// A read sent to [`ClientConfig::read_from`] rather than to the leader (until that
    /// node turns it away).
    pinned: bool,
    /// A copy sent earlier may be in some log: it went unanswered (resent on silence) or its
    /// node went down. A copy refused busy or redirected was handed back, so it is not.
    uncertain: bool,
    /// A read parked with node `.0`'s local reader under ticket `.1` ([`super::local`]),
    /// answered there once that ticket is confirmed.
    parked: Option<(usize, u64)>,
}

/// The reads of one flush parked under one ticket beside the window (see [`Client`]'s
/// `ticketed`): moved there as they were kept, vectors and all. Parked one by one, each read
/// was built on the stack from the pair the flush took apart and copied into the queue, and
/// the copy stalled (43% of `Client::fill`'s samples under ReadIndex reads).
#[derive(Debug)]
struct Ticketed<Op> {
    reads: Beside<Op>,
    /// The node whose local reader gave the ticket.
    node: usize,
    ticket: u64,
    /// When they were parked.
    at: Instant,
}

/// Back-off before resending when no leader is known.
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(2);

/// How long a client sends no reads to its [`ClientConfig::read_from`] node after that node
/// left one unanswered for `retry_after`: long against a read's round trip (microseconds), so
/// that a node that will never answer (removed from the configuration) costs its readers one
/// `retry_after` a second, short enough that a node slow for a moment is used again soon.
pub const NEAR_SILENT_BACKOFF: Duration = Duration::from_secs(1);

/// A flush that answered reads on the client's thread (under the leader's lease) sends the
/// requests it has queued only once this many wait, or [`HOLD_AT_MOST`] after the first
/// flush that held them: its caller has answers to take and polls again at once, so the
/// requests go together in one batch rather than a few at a time behind every batch of reads.
/// Without it a client at 90% lease reads sent its writes a few at a time, and the leader
/// proposed batches about 5 times smaller than under writes alone. With it the servers spent
/// 37 ns per operation against 43, and the cluster ran 19.7M ops/s against 18.4M (Raft, 90%
/// lease reads, 1024 outstanding, the bench's point: medians of 6 runs interleaved with the
/// build before). 32 and 128 did as well as 64.
pub const SEND_AT_LEAST: usize = 64;

/// The longest a flush that answered reads here holds back queued requests
/// ([`SEND_AT_LEAST`]): a caller that keeps polling, with reads answered every time, still
/// sends its writes within this. (20 µs and 100 µs did the same at the lease point; no bound
/// did no better.) A flush that will wait sends everything.
pub const HOLD_AT_MOST: Duration = Duration::from_micros(20);

/// Reads kept beside the window until the next flush (lease reads, and reads waiting for a
/// ticket), in the order they were sent: their numbers and their ops in two vectors. A
/// vector of pairs built each pair on the stack from an op just written, and copied it twice
/// more; each copy read back stores not yet done and stalled on them (in a profile of the
/// bench's lease point, the driver's loop went from 19% of the clients' samples to 10%). The
/// clients' threads spent 52 ns per operation against 56 (`paxraft run`, Raft, 90% lease
/// reads, 1024 outstanding: medians of 6 runs interleaved with the paired build's).
#[derive(Debug)]
struct Beside<Op> {
    seqs: Vec<u64>,
    ops: Vec<Op>,
}

impl<Op> Default for Beside<Op> {
    fn default() -> Self {
        Beside {
            seqs: Vec::new(),
            ops: Vec::new(),
        }
    }
}

impl<Op> Beside<Op> {
    fn len(&self) -> usize {
        debug_assert_eq!(self.seqs.len(), self.ops.len());
        self.seqs.len()
    }

    fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Move `other`'s reads after these.
    fn append(&mut self, other: &mut Self) {
        self.seqs.append(&mut other.seqs);
        self.ops.append(&mut other.ops);
    }

    /// Drop every read (the vectors keep their capacity).
    fn clear(&mut self) {
        self.seqs.clear();
        self.ops.clear();
    }

    /// Every read, in order, emptied (the vectors keep their capacity).
    fn drain(&mut self) -> impl Iterator<Item = (u64, Op)> + '_ {
        debug_assert_eq!(self.seqs.len(), self.ops.len());
        self.seqs.drain(..).zip(self.ops.drain(..))
    }
}

/// Answer read `seq` of `op` from `reading` in a new slot at the back of `ready`, where it is
/// polled from (`StateMachine::query_into`: an answer returned by value was copied there and
/// stalled); false, with nothing pushed, if `op` is not read-only.
fn answer_into<S: StateMachine>(
    ready: &mut VecDeque<(u64, Result<S::Output, Error>)>,
    reading: &Reading<'_, S>,
    seq: u64,
    op: &S::Op,
) -> bool {
    ready.push_back((seq, Err(Error::Busy)));
    let slot = &mut ready.back_mut().expect("just pushed").1;
    if reading.query_into(op, slot) {
        return true;
    }
    ready.pop_back();
    false
}

/// Push `item` onto `v`, copied a word at a time. The caller (a client's `send`) has just
/// built `item` on the stack in 8-byte stores, and `Vec::push` copies it in 16-byte loads: a
/// load that spans two recent stores cannot take its data from them and waits until both
/// reach the cache (a store-forwarding stall, 38-45% of the bench driver's samples at 90%
/// lease reads, where a read costs little more than its copies). A load no wider than the
/// store it reads is forwarded. The loads are volatile so that the compiler does not merge
/// them back into wide ones. Types that are not whole aligned words are pushed as usual.
#[inline(always)]
fn push_words<T>(v: &mut Vec<T>, item: T) {
    use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
    if size_of::<T>() % 8 != 0 || align_of::<T>() < 8 {
        v.push(item);
        return;
    }
    v.reserve(1);
    let item = ManuallyDrop::new(item);
    let src = (&*item as *const T).cast::<MaybeUninit<u64>>();
    // SAFETY: `reserve` left room for one more `T` at index `len`. `T` is a whole number of
    // 8-byte words and 8-aligned, so both places are arrays of aligned words; each word is
    // copied as `MaybeUninit` (the item's padding may be uninitialized); the item is moved,
    // not dropped (`ManuallyDrop`), and the length grows only once it is all written.
    unsafe {
        let dst = v.as_mut_ptr().add(v.len()).cast::<MaybeUninit<u64>>();
        for i in 0..size_of::<T>() / 8 {
            dst.add(i).write(std::ptr::read_volatile(src.add(i)));
        }
        v.set_len(v.len() + 1);
    }
}

/// A client of a cluster of `R` serving `S`.
///
/// Bounds: at most `max_outstanding` requests are outstanding or answered-but-not-polled
/// ([`Error::Busy`] beyond); the reply mailbox holds `4 * max_outstanding + 64` replies (a
/// node whose reply does not fit drops it and the request is resent after `retry_after`,
/// answered from the session). Outstanding requests live in a window indexed by sequence
/// number (O(1) send and answer); its span, from the oldest unanswered request to the newest,
/// is at most what was sent within one `timeout`, since every request is answered or times
/// out by then. A read sent while the leader's lease held at the last flush waits beside the
/// window instead, until the next flush answers it (or, the lease gone, puts it in the
/// window); so does a read sent while the leader offered tickets (ReadIndex), parked under
/// the next flush's ticket until the leader confirms it, turns it away or stays silent for
/// `retry_after` (then it goes in the window). Both count as outstanding, and the oldest
/// parked read holds back the acknowledgement as a request in the window does.
pub struct Client<R: Replica<Cmd<S>>, S: StateMachine> {
    id: u64,
    net: Arc<Net<R, S>>,
    inbox: ReplyBox<S>,
    cfg: ClientConfig,
    next_seq: u64,
    leader: usize,
    /// The requests outstanding, by sequence number.
    window: SeqWindow<Outstanding<S::Op>>,
    /// No request needs a resend or times out before this (so `poll` need not look).
    next_scan: Instant,
    unsent: Vec<u64>,
    ready: VecDeque<(u64, Result<S::Output, Error>)>,
    replies: Vec<Reply<S>>,
    /// No reads go to [`ClientConfig::read_from`] before this (it left one unanswered).
    near_silent_until: Option<Instant>,
    /// The largest operation sent, encoded ([`Client::limit_op_bytes`]).
    max_op_bytes: Option<usize>,
    /// Reads parked with a node's local reader (the leader's, or the pinned node's), in the
    /// order they were: entries whose read was answered or sent elsewhere since are skipped
    /// and dropped.
    parked: Vec<u64>,
    /// Reads sent while the leader's last flush found its lease holding: kept out of the
    /// window, answered by the next flush under the lease with no more bookkeeping than
    /// this (or, if the lease no longer holds, put in the window and sent then).
    lease_reads: Beside<S::Op>,
    /// The leader's local reader granted the lease at the last flush.
    lease_seen: bool,
    /// Reads sent while the leader's local reader offered tickets at the last flush
    /// (ReadIndex): kept out of the window too; the next flush parks them under one ticket
    /// (or, if it gets none, puts them in the window).
    ticket_reads: Beside<S::Op>,
    /// Reads parked under a ticket beside the window, in sequence (and parking) order:
    /// answered from the front as their node confirms, or put in the window if it turns
    /// them away or stays silent for `retry_after`.
    ticketed: VecDeque<Ticketed<S::Op>>,
    /// Reads in `ticketed`.
    ticketed_len: usize,
    /// Emptied vectors of answered `ticketed` batches, for the next reads kept beside.
    spare: Vec<Beside<S::Op>>,
    /// The leader's local reader offered tickets at the last flush.
    tickets_seen: bool,
    /// Queued requests have been held back since this flush ([`SEND_AT_LEAST`]).
    held_since: Option<Instant>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> fmt::Debug for Client<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client({}, {} outstanding)", self.id, self.window.live())
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Client<R, S> {
    /// A client with session id `id` (unique among the cluster's clients, from 1) over
    /// `net`: a [`Cluster`](super::Cluster)'s, or a transport's whose mailboxes carry
    /// requests to server processes ([`crate::net`]).
    pub fn new(id: u64, net: Arc<Net<R, S>>, cfg: ClientConfig) -> Self {
        assert!(cfg.max_outstanding > 0);
        assert!(
            cfg.read_from.map_or(true, |n| n.index() < net.len()),
            "read_from names a node outside the cluster"
        );
        let cap = 4 * cfg.max_outstanding + 64;
        Client {
            id,
            leader: (id as usize) % net.len(),
            net,
            inbox: Arc::new(Mailbox::with_spin(
                cap,
                super::spin_for("PAXRAFT_CLIENT_SPIN_US", super::CLIENT_SPIN),
            )),
            cfg,
            next_seq: 1,
            window: SeqWindow::default(),
            next_scan: Instant::now(),
            unsent: Vec::new(),
            ready: VecDeque::new(),
            replies: Vec::new(),
            near_silent_until: None,
            max_op_bytes: None,
            parked: Vec::new(),
            lease_reads: Beside::default(),
            lease_seen: false,
            ticket_reads: Beside::default(),
            ticketed: VecDeque::new(),
            ticketed_len: 0,
            spare: Vec::new(),
            tickets_seen: false,
            held_since: None,
        }
    }

    /// Refuse operations that encode (postcard, the network's codec) to more than `max`
    /// bytes with [`Error::TooLarge`], at once, rather than sending what a transport with
    /// bounded frames cannot carry (it would be lost and time out). No limit by default: in
    /// one process nothing is encoded.
    pub fn limit_op_bytes(&mut self, max: usize) {
        self.max_op_bytes = Some(max);
    }

    /// Have this client's thread read its replies from `source` itself (a transport's
    /// connections, [`crate::net::poller`]) as it waits for them, spinning `spin` before it
    /// blocks. Before the first request: the reply mailbox is replaced.
    #[cfg(not(loom))]
    pub(crate) fn read_through(
        &mut self,
        source: Box<dyn super::Source<Reply<S>>>,
        spin: std::time::Duration,
    ) {
        assert_eq!(
            self.next_seq, 1,
            "the reply mailbox is replaced before any request"
        );
        let inbox = Mailbox::with_spin(4 * self.cfg.max_outstanding + 64, spin);
        if inbox.set_source(source).is_err() {
            unreachable!("a new mailbox has no source");
        }
        self.inbox = Arc::new(inbox);
    }

    /// This client's session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Requests sent and not yet returned by `poll`.
    pub fn outstanding(&self) -> usize {
        self.window.live()
            + self.lease_reads.len()
            + self.ticket_reads.len()
            + self.ticketed_len
            + self.ready.len()
    }

    /// Submit `op` and wait for its result.
    pub fn submit(&mut self, op: S::Op) -> Result<S::Output, Error> {
        let seq = self.send(op)?;
        // Answers to earlier pipelined requests are kept for later `poll`s, not dropped.
        let mut others = Vec::new();
        let res = loop {
            match self.poll(self.cfg.timeout) {
                Some((s, res)) if s == seq => break res,
                Some(other) => others.push(other),
                None => assert!(
                    self.get(seq).is_some(),
                    "request {seq} neither answered nor outstanding"
                ),
            }
        };
        for o in others.into_iter().rev() {
            self.ready.push_front(o);
        }
        res
    }

    /// Queue `op` without waiting; returns its sequence number. It is sent on the next `poll`,
    /// together with everything else queued (one push per batch), unless that poll returns
    /// reads answered on this thread and fewer than [`SEND_AT_LEAST`] requests are queued: then
    /// on a later poll, within [`HOLD_AT_MOST`] of the first that held it.
    // Inlined: the operation is then built in place, not copied through the stack twice
    // (a lease read costs little more than that copy).
    #[inline(always)]
    pub fn send(&mut self, op: S::Op) -> Result<u64, Error> {
        if self.outstanding() >= self.cfg.max_outstanding {
            return Err(Error::Busy);
        }
        // (Under loom there is no network, nor its codec.)
        #[cfg(not(loom))]
        if let Some(max) = self.max_op_bytes {
            // An operation that cannot be encoded cannot be sent either: call it too large.
            let bytes = postcard::experimental::serialized_size(&op).unwrap_or(usize::MAX);
            if bytes > max {
                return Err(Error::TooLarge { bytes, max });
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let read = S::is_read_only(&op);
        if read && self.lease_seen && self.cfg.read_from.is_none() {
            // Pushed field by field here: through a method of `Beside` (even inlined) the op
            // took one more copy on the stack, and stalled again; and word by word
            // (`push_words`).
            self.lease_reads.seqs.push(seq);
            push_words(&mut self.lease_reads.ops, op);
        } else if read && self.tickets_seen && self.cfg.read_from.is_none() {
            self.ticket_reads.seqs.push(seq);
            push_words(&mut self.ticket_reads.ops, op);
        } else {
            self.enqueue(seq, op, read);
        }
        Ok(seq)
    }

    /// Put request `seq` in the window, to be sent by the next flush.
    #[inline(never)]
    fn enqueue(&mut self, seq: u64, op: S::Op, read: bool) {
        // `first` is stamped by the flush that sends it: one clock read per batch.
        let placeholder = self.next_scan;
        self.window.insert(
            seq,
            Outstanding {
                op,
                first: placeholder,
                resend_at: placeholder,
                target: self.leader,
                sent: false,
                queued: true,
                pinned: read && self.cfg.read_from.is_some(),
                uncertain: false,
                parked: None,
            },
        );
        self.unsent.push(seq);
    }

    /// Wait up to `wait` for one answer: `(seq, result)`. `None` when nothing is outstanding or
    /// the wait ended first. Every request sent is answered by some `poll`, by its timeout.
    pub fn poll(&mut self, wait: Duration) -> Option<(u64, Result<S::Output, Error>)> {
        if self.fill(wait) {
            self.ready.pop_front()
        } else {
            None
        }
    }

    /// Like [`Client::poll`], but moves every answer available into `out` (waiting up to
    /// `wait` for the first); returns how many. The pipelined fast path: one call per batch.
    pub fn poll_many(
        &mut self,
        wait: Duration,
        out: &mut Vec<(u64, Result<S::Output, Error>)>,
    ) -> usize {
        if self.fill(wait) {
            let n = self.ready.len();
            if out.is_empty() {
                // Hand over the whole queue, and keep `out`'s buffer for the next answers:
                // no answer moved (a queue that starts at its buffer's start, as one refilled
                // from an empty `Vec` does, becomes a `Vec` in place).
                let answers = Vec::from(std::mem::take(&mut self.ready));
                self.ready = VecDeque::from(std::mem::replace(out, answers));
            } else {
                out.extend(self.ready.drain(..));
            }
            n
        } else {
            0
        }
    }

    /// Send what is queued, and wait up to `wait` until some answer is ready. False when
    /// nothing is outstanding or the wait ended first.
    fn fill(&mut self, wait: Duration) -> bool {
        // One clock reading a pass: at entry, then after each wait (under lease reads a call
        // answers a few dozen reads, and each reading of the clock cost about a read's worth).
        let mut now = Instant::now();
        let until = now + wait;
        loop {
            if !self.ready.is_empty() {
                return true;
            }
            // (`ready` is empty here: nothing else is outstanding.)
            if self.outstanding() == 0 {
                return false;
            }
            if now >= self.next_scan {
                self.scan(now);
            }
            self.flush(now);
            self.answer_ticketed();
            // Parked reads are looked at on every pass, not only when a wake-up names them: a
            // confirmation may come with another client's wake-up, or after a revoke hid it.
            self.answer_parked();
            if !self.ready.is_empty() {
                continue;
            }
            let mut replies = std::mem::take(&mut self.replies);
            self.inbox
                .drain(&mut replies, Some(until.min(self.next_scan)));
            for r in replies.drain(..) {
                self.handle(r);
            }
            self.replies = replies;
            now = Instant::now();
            if self.ready.is_empty() && now >= until {
                return false;
            }
        }
    }

    /// Time out what is past its deadline and queue what is due for a resend; note when the
    /// next of either is due. O(window), but only when something is due.
    fn scan(&mut self, now: Instant) {
        let mut next = now + self.cfg.timeout;
        let mut expired = Vec::new();
        for (seq, o) in self.window.iter_mut() {
            if !o.sent {
                continue; // queued already; the flush stamps it
            }
            let deadline = o.first + self.cfg.timeout;
            if deadline <= now {
                expired.push(seq);
                continue;
            }
            if o.resend_at <= now && !o.queued {
                o.queued = true;
                o.uncertain = true;
                self.unsent.push(seq);
                if std::mem::replace(&mut o.pinned, false) {
                    // Its chosen node was silent: the leader answers it, and the next reads.
                    self.near_silent_until = Some(now + NEAR_SILENT_BACKOFF);
                }
            }
            next = next.min(deadline);
            if o.resend_at > now {
                next = next.min(o.resend_at);
            }
        }
        for seq in expired {
            self.remove(seq);
            self.ready.push_back((seq, Err(Error::Timeout)));
        }
        // Ticketed reads whose node said nothing for `retry_after` (its ticket may be lost
        // with a crash): sent again through the window, where they time out, `timeout` after
        // this resend at the latest.
        while let Some(b) = self.ticketed.front() {
            if b.at + self.cfg.retry_after > now {
                next = next.min(b.at + self.cfg.retry_after);
                break;
            }
            let b = self.pop_ticketed();
            // Sent by the flush that follows this scan.
            self.unticket(b);
        }
        self.next_scan = next;
    }

    fn get(&self, seq: u64) -> Option<&Outstanding<S::Op>> {
        self.window.get(seq)
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Outstanding<S::Op>> {
        self.window.get_mut(seq)
    }

    fn remove(&mut self, seq: u64) -> Option<Outstanding<S::Op>> {
        self.window.take(seq)
    }

    /// [`Client::remove`], the request dropped (a read answered on this thread: nothing of
    /// it is needed); false if it was not outstanding.
    fn forget(&mut self, seq: u64) -> bool {
        self.window.forget(seq)
    }

    /// Every request below this one has been answered (what the session may forget).
    fn acked(&self) -> u64 {
        // Ticketed reads are in sequence order: the front is the oldest.
        let ticketed = self
            .ticketed
            .front()
            .and_then(|b| b.reads.seqs.first().copied());
        match (self.window.oldest(), ticketed) {
            (Some(w), Some(t)) => w.min(t),
            (w, t) => w.or(t).unwrap_or(self.next_seq),
        }
    }

    fn flush(&mut self, now: Instant) {
        if self.unsent.is_empty() && self.lease_reads.is_empty() && self.ticket_reads.is_empty() {
            return;
        }
        let leader = self.leader;
        // Reads to the leader its local reader answers under its lease ([`super::local`]):
        // one permission check for the batch, the state held still until the batch is done.
        let net = Arc::clone(&self.net);
        let leased = net.local(leader).leased();
        self.lease_seen = leased.is_some();
        if leased.is_some() {
            // Reads waiting for a ticket are answered under the lease like the lease reads.
            self.lease_reads.append(&mut self.ticket_reads);
        }
        if !self.lease_reads.is_empty() {
            let mut reads = std::mem::take(&mut self.lease_reads);
            for (seq, op) in reads.drain() {
                let Some(l) = leased.as_ref() else {
                    // No lease now: sent to the node like any request.
                    self.enqueue(seq, op, true);
                    continue;
                };
                let answered = answer_into(&mut self.ready, l, seq, &op);
                debug_assert!(answered, "only read-only ops are lease reads");
                if !answered {
                    self.enqueue(seq, op, true);
                }
            }
            self.lease_reads = reads;
        }
        if !self.ticket_reads.is_empty() {
            self.park_ticket_reads(leader, now);
        }
        self.tickets_seen = net.local(leader).offers_tickets();
        if self.holds_back(now) {
            return;
        }
        // Resends are listed after newer sends; keep each batch in sequence order.
        if self.unsent.windows(2).any(|w| w[0] > w[1]) {
            self.unsent.sort_unstable();
        }
        // After the lease reads went in the window: none of them is acknowledged.
        let acked = self.acked();
        let near = self
            .cfg
            .read_from
            .filter(|_| self.near_silent_until.map_or(true, |t| now >= t))
            .map(NodeId::index);
        let resend_at = now + self.cfg.retry_after;
        // Allocated at the first request: a batch of reads answered here sends none.
        let mut reqs = Vec::new();
        // Reads pinned to `read_from`, when it is not the leader: a second push.
        let mut reads = Vec::new();
        let mut unsent = std::mem::take(&mut self.unsent);
        let client = self.id;
        // Otherwise, reads park with their node's local reader under one ticket per node for
        // the batch, if it confirms tickets (ReadIndex reads, [`super::local`]; the leader,
        // or a pinned node): taken at the node's first read, after every read of the batch
        // was invoked. Per node: its ticket (`None`: it offers none), and whether reads
        // parked there (new, or again under the ticket they hold).
        // (No allocation unless a read parks.)
        let mut tickets: Vec<(usize, Option<u64>, bool)> = Vec::new();
        for (i, &seq) in unsent.iter().enumerate() {
            // Answered (or timed out) since it was listed: nothing to send.
            let Some(o) = self.get_mut(seq) else { continue };
            if !o.sent {
                o.sent = true;
                o.first = now;
            }
            o.queued = false;
            // A read queued while its node is shunned goes where writes go.
            o.pinned &= near.is_some();
            o.target = match near {
                Some(n) if o.pinned => n,
                _ => leader,
            };
            o.resend_at = resend_at;
            // Resent to the node whose ticket it holds, it keeps it (any confirmation covering
            // that ticket covers the read, invoked before it); sent elsewhere, it drops it.
            let target = o.target;
            let kept = o.parked.take().filter(|&(n, _)| n == target);
            if let (Some(l), true) = (&leased, target == leader) {
                if let Some(out) = l.query(&o.op) {
                    self.forget(seq);
                    self.ready.push_back((seq, Ok(out)));
                    continue;
                }
            } else if S::is_read_only(&o.op) {
                let i = match tickets.iter().position(|t| t.0 == target) {
                    Some(i) => i,
                    None => {
                        tickets.push((target, net.local(target).ticket(), false));
                        tickets.len() - 1
                    }
                };
                if kept.is_some() {
                    // Still listed in `parked`.
                    o.parked = kept;
                    tickets[i].2 = true;
                    continue;
                }
                if let Some(t) = tickets[i].1 {
                    o.parked = Some((target, t));
                    tickets[i].2 = true;
                    self.parked.push(seq);
                    continue;
                }
            }
            let req = Request {
                client,
                seq,
                acked,
                op: o.op.clone(),
            };
            if o.target == leader {
                if reqs.capacity() == 0 {
                    reqs.reserve(unsent.len() - i);
                }
                reqs.push(req);
            } else {
                reads.push(req);
            }
        }
        drop(leased);
        unsent.clear();
        self.unsent = unsent;
        self.next_scan = self.next_scan.min(resend_at);
        for (node, _, parked) in tickets {
            if parked && !net.read_ticket(NodeId(node as u8), client, &self.inbox) {
                // Its node is down or full: the reads parked there go as requests after a
                // back-off.
                let back = self.parked.clone();
                self.unpark(back, node, None, now);
            }
        }
        for (target, batch) in [(leader, reqs), (near.unwrap_or(leader), reads)] {
            if !batch.is_empty() {
                self.push(target, batch, now);
            }
        }
    }

    /// Whether this flush leaves its queued requests for a later one ([`SEND_AT_LEAST`]): it
    /// has answers for its caller (reads answered here, or timeouts), fewer than
    /// [`SEND_AT_LEAST`] requests wait, and they have been held for less than [`HOLD_AT_MOST`].
    /// A flush with no answer to return is followed by a wait, and sends everything.
    fn holds_back(&mut self, now: Instant) -> bool {
        if self.ready.is_empty() || self.unsent.is_empty() || self.unsent.len() >= SEND_AT_LEAST {
            self.held_since = None;
            return false;
        }
        let since = *self.held_since.get_or_insert(now);
        if now < since + HOLD_AT_MOST {
            return true;
        }
        self.held_since = None;
        false
    }

    /// The reads sent beside the window since the last flush, while the leader offered
    /// tickets (and its lease, if any, does not hold now): parked with its local reader under
    /// one ticket taken now (after every one of them was invoked), the node told once. Without
    /// a ticket, or with the node down or full, they go in the window and are sent as requests.
    fn park_ticket_reads(&mut self, leader: usize, now: Instant) {
        let net = Arc::clone(&self.net);
        let ticket = net
            .local(leader)
            .ticket()
            .filter(|_| net.read_ticket(NodeId(leader as u8), self.id, &self.inbox));
        match ticket {
            Some(ticket) => {
                let reads =
                    std::mem::replace(&mut self.ticket_reads, self.spare.pop().unwrap_or_default());
                debug_assert!(self
                    .ticketed
                    .back()
                    .map_or(true, |b| { b.reads.seqs.last() < reads.seqs.first() }));
                self.ticketed_len += reads.len();
                self.ticketed.push_back(Ticketed {
                    reads,
                    node: leader,
                    ticket,
                    at: now,
                });
                self.debug_check_ticketed();
                self.next_scan = self.next_scan.min(now + self.cfg.retry_after);
            }
            None => {
                let mut reads = std::mem::take(&mut self.ticket_reads);
                for (seq, op) in reads.drain() {
                    self.enqueue(seq, op, true);
                }
                self.ticket_reads = reads;
            }
        }
    }

    /// The oldest batch of ticketed reads, taken out.
    fn pop_ticketed(&mut self) -> Ticketed<S::Op> {
        let b = self.ticketed.pop_front().expect("a batch is parked");
        self.ticketed_len -= b.reads.len();
        self.debug_check_ticketed();
        b
    }

    /// `ticketed_len` counts the ticketed reads (a handful of batches: checked in debug
    /// builds wherever it changes).
    fn debug_check_ticketed(&self) {
        debug_assert_eq!(
            self.ticketed_len,
            self.ticketed.iter().map(|b| b.reads.len()).sum::<usize>()
        );
    }

    /// Ticketed reads that will not be answered under their ticket go in the window, sent by
    /// the next flush.
    fn unticket(&mut self, mut b: Ticketed<S::Op>) {
        for (seq, op) in b.reads.drain() {
            self.enqueue(seq, op, true);
        }
        self.spare.push(b.reads);
    }

    /// Answer the ticketed reads, from the front, whose node has confirmed their ticket.
    fn answer_ticketed(&mut self) {
        let net = Arc::clone(&self.net);
        while let Some(front) = self.ticketed.front() {
            let node = front.node;
            // One atomic load, no lock, while nothing new is confirmed.
            if net.local(node).confirmed_through() < front.ticket {
                return;
            }
            let Some((reading, through)) = net.local(node).confirmed() else {
                return;
            };
            let before = self.ticketed_len;
            while let Some(b) = self.ticketed.front() {
                if b.node != node || b.ticket > through {
                    break;
                }
                let mut b = self.pop_ticketed();
                for (&seq, op) in b.reads.seqs.iter().zip(&b.reads.ops) {
                    assert!(
                        answer_into(&mut self.ready, &reading, seq, op),
                        "a read-only op has a query answer (StateMachine::query)"
                    );
                }
                b.reads.clear();
                self.spare.push(b.reads);
            }
            if self.ticketed_len == before {
                // The confirmation moved between the two loads (a revoke, then a lower one):
                // nothing to answer yet.
                return;
            }
        }
    }

    /// Answer the parked reads whose ticket their node's reader has confirmed; the others
    /// stay parked (until confirmed, handed back, or resent on silence).
    fn answer_parked(&mut self) {
        // The oldest parked read has the lowest ticket at its node: if that is not confirmed,
        // nothing is looked at (one atomic load, no lock).
        let first = self
            .parked
            .iter()
            .find_map(|&seq| self.get(seq).and_then(|o| o.parked));
        match first {
            None => {
                self.parked.clear();
                return;
            }
            Some((node, ticket)) if self.net.local(node).confirmed_through() < ticket => return,
            Some(_) => {}
        }
        let net = Arc::clone(&self.net);
        let mut parked = std::mem::take(&mut self.parked);
        // Parked reads wait at one node, the leader, unless it changed: one guard per run.
        let mut guard = None;
        let mut answered = Vec::new();
        parked.retain(|&seq| {
            let Some((o, (node, ticket))) = self.get(seq).and_then(|o| Some((o, o.parked?))) else {
                return false; // answered, timed out or sent again since
            };
            if guard.as_ref().map_or(true, |(n, _)| *n != node) {
                guard = Some((node, net.local(node).confirmed()));
            }
            let Some((_, Some((reading, through)))) = &guard else {
                return true;
            };
            if ticket > *through {
                return true;
            }
            let out = reading
                .query(&o.op)
                .expect("a read-only op has a query answer (StateMachine::query)");
            answered.push((seq, out));
            false
        });
        drop(guard);
        self.parked = parked;
        for (seq, out) in answered {
            // A read parked again (resent on silence to the same node) is listed twice.
            if self.forget(seq) {
                self.ready.push_back((seq, Ok(out)));
            }
        }
    }

    /// Send parked reads `seqs` as requests: their node `from` will not confirm them. To
    /// `leader` at once if that hint names another node, else after a back-off to the next.
    fn unpark(&mut self, seqs: Vec<u64>, from: usize, leader: Option<NodeId>, now: Instant) {
        let mut gone = Vec::new();
        for seq in seqs {
            let Some(o) = self.get_mut(seq) else { continue };
            if o.parked.is_some_and(|(n, _)| n == from) {
                o.parked = None;
                // A read its chosen node turned away goes where writes go from now on.
                o.pinned = false;
                gone.push(seq);
            }
        }
        if gone.is_empty() {
            return;
        }
        let at = self.turned_away(from, leader, now);
        for seq in gone {
            if let Some(o) = self.get_mut(seq) {
                o.resend_at = at;
            }
        }
    }

    /// Node `from` turned requests away with leader hint `leader`: follow the hint if it
    /// names another node and `from` was taken for the leader, or with no hint try the next
    /// node (only if `from` was taken for the leader: a pinned read's node may know no
    /// leader where the client does). When to resend them: at once with a hint, else after
    /// a back-off.
    fn turned_away(&mut self, from: usize, leader: Option<NodeId>, now: Instant) -> Instant {
        let hint = leader.map(NodeId::index).filter(|&l| l != from);
        match hint {
            Some(l) if self.leader == from => self.leader = l,
            Some(_) => {}
            None => self.rotate(from),
        }
        let at = if hint.is_some() {
            now
        } else {
            now + NO_LEADER_BACKOFF
        };
        self.next_scan = self.next_scan.min(at);
        at
    }

    /// Hand `reqs` to node `target`; what it refuses is resent after a back-off, to the next
    /// node (or, when every node is closed, fails with [`Error::Shutdown`]).
    fn push(&mut self, target: usize, reqs: Vec<Cmd<S>>, now: Instant) {
        if let Err(back) = self
            .net
            .propose(NodeId(target as u8), reqs, Arc::clone(&self.inbox))
        {
            if self.net.all_closed() {
                for r in back {
                    self.remove(r.seq);
                    self.ready.push_back((r.seq, Err(Error::Shutdown)));
                }
                return;
            }
            self.rotate(target);
            let at = now + NO_LEADER_BACKOFF;
            for r in back {
                if let Some(o) = self.get_mut(r.seq) {
                    o.resend_at = at;
                    // A read its node refused goes where writes go.
                    o.pinned = false;
                }
            }
            self.next_scan = self.next_scan.min(at);
        }
    }

    fn rotate(&mut self, from: usize) {
        if self.leader == from {
            self.leader = (from + 1) % self.net.len();
        }
    }

    fn handle(&mut self, r: Reply<S>) {
        match r {
            Reply::Done { seq, out } => {
                if let Some(o) = self.remove(seq) {
                    // Whoever answered a write leads; a read served by its chosen node says
                    // nothing about who leads.
                    if !o.pinned {
                        self.leader = o.target;
                    }
                    self.ready.push_back((seq, out.map_err(Error::Session)));
                }
            }
            Reply::Redirect { seq, leader } => {
                let Some(o) = self.get_mut(seq) else { return };
                let t = o.target;
                // A read its chosen node turned away follows the leader from now on.
                o.pinned = false;
                let at = self.turned_away(t, leader, Instant::now());
                if let Some(o) = self.get_mut(seq) {
                    o.resend_at = at;
                }
            }
            // Back-pressure: the caller hears it at once (an error it can see, not a resend
            // loop that would keep the leader at its cap), when it is sure the request took
            // no effect. If an earlier copy may still be in a log, an error would misreport
            // it: resend after `retry_after`, to the same leader, until answered or timed out.
            Reply::Busy { seq } => {
                let at = Instant::now() + self.cfg.retry_after;
                let Some(o) = self.get_mut(seq) else { return };
                if o.uncertain {
                    o.resend_at = at;
                    self.next_scan = self.next_scan.min(at);
                } else if let Some(o) = self.remove(seq) {
                    self.leader = o.target;
                    self.ready.push_back((seq, Err(Error::Overloaded)));
                }
            }
            // Looked at by the caller's loop (`fill`) right after.
            Reply::Confirmed => {}
            Reply::Unconfirmed { node, leader } => {
                // Ticketed reads parked there go in the window, sent again by the next flush.
                let at = node.index();
                if self.ticketed.iter().any(|b| b.node == at) {
                    let (gone, kept) = std::mem::take(&mut self.ticketed)
                        .into_iter()
                        .partition::<Vec<_>, _>(|b| b.node == at);
                    self.ticketed = kept.into();
                    for b in gone {
                        self.ticketed_len -= b.reads.len();
                        self.unticket(b);
                    }
                    self.debug_check_ticketed();
                    self.turned_away(at, leader, Instant::now());
                }
                // Every read parked with that node goes; the others stay.
                let parked = std::mem::take(&mut self.parked);
                let (gone, kept) = parked.into_iter().partition(|&s| {
                    self.get(s)
                        .and_then(|o| o.parked)
                        .is_some_and(|(n, _)| n == node.index())
                });
                self.parked = kept;
                self.unpark(gone, node.index(), leader, Instant::now());
            }
            Reply::Retry { seq } => {
                let at = Instant::now() + NO_LEADER_BACKOFF;
                let Some(o) = self.get_mut(seq) else { return };
                // Its node may have appended it before going down.
                o.uncertain = true;
                let t = o.target;
                o.pinned = false;
                o.resend_at = at;
                self.next_scan = self.next_scan.min(at);
                self.rotate(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{push_words, Beside};
    use paxraft_impls::sm::{KvOp, LockOp};
    use std::rc::Rc;

    /// `push_words` moves every kind of op in whole (a put's value, a CAS's two, a lock op's
    /// fields), grows the vector as `push` does, falls back to `push` for a type that is not
    /// whole words, and neither drops nor leaks what it moves.
    #[test]
    fn push_words_moves_items_whole_and_drops_each_once() {
        let ops = [
            KvOp::Get(7),
            KvOp::Put(8, b"value".to_vec()),
            KvOp::Put(9, Vec::new()),
            KvOp::Cas {
                key: 10,
                expect: Some(b"old".to_vec()),
                new: b"new".to_vec(),
            },
            KvOp::Lock(LockOp::Acquire { lock: 3, owner: 4 }),
        ];
        let mut v = Vec::new();
        for op in ops.iter().cycle().take(40) {
            push_words(&mut v, op.clone());
        }
        let want: Vec<KvOp> = ops.iter().cycle().take(40).cloned().collect();
        assert_eq!(v, want);
        let counted = Rc::new(());
        let mut rcs = Vec::new();
        for _ in 0..5 {
            push_words(&mut rcs, (Rc::clone(&counted), 1u64));
        }
        assert_eq!(Rc::strong_count(&counted), 6, "moved, not dropped");
        drop(rcs);
        assert_eq!(Rc::strong_count(&counted), 1, "dropped once each");
        // Three bytes: not whole words, pushed as usual.
        let mut small = Vec::new();
        for i in 0..10u8 {
            push_words(&mut small, [i, i + 1, i + 2]);
        }
        assert_eq!(small[9], [9, 10, 11]);
        assert_eq!(small.len(), 10);
    }

    /// Reads kept beside the window come out in the order they went in, each with its own
    /// op, the ticket reads after the lease reads they were appended to, and both emptied.
    #[test]
    fn reads_beside_the_window_keep_their_order_and_their_ops() {
        let (mut lease, mut tickets) = (Beside::default(), Beside::default());
        for seq in [3, 5, 8] {
            lease.seqs.push(seq);
            lease.ops.push(seq * 10);
        }
        tickets.seqs.push(9);
        tickets.ops.push(90);
        lease.append(&mut tickets);
        assert!(tickets.is_empty());
        assert_eq!(lease.len(), 4);
        let all: Vec<(u64, u64)> = lease.drain().collect();
        assert_eq!(all, [(3, 30), (5, 50), (8, 80), (9, 90)]);
        assert!(lease.is_empty() && lease.ops.is_empty());
    }
}
