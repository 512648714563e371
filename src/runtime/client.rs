//! Clients of a live cluster: pipelined (many requests outstanding), following redirects,
//! resending on silence, and answering every request with a result or an error by its deadline.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paxraft_impls::sm::{Request, SessionError, StateMachine};
use paxraft_impls::{NodeId, Replica};

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
    /// The session refused the request (a client bug: a resent acknowledged request).
    Session(SessionError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => write!(f, "timed out"),
            Error::Shutdown => write!(f, "cluster shut down"),
            Error::Busy => write!(f, "too many requests outstanding"),
            Error::Session(e) => write!(f, "{e}"),
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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            retry_after: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
            max_outstanding: 4096,
        }
    }
}

#[derive(Debug)]
struct Outstanding<Op> {
    op: Op,
    first: Instant,
    resend_at: Instant,
    target: usize,
}

/// Back-off before resending when no leader is known.
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(2);

/// A client of a cluster of `R` serving `S`.
pub struct Client<R: Replica<Cmd<S>>, S: StateMachine> {
    id: u64,
    net: Arc<Net<R, S>>,
    inbox: ReplyBox<S>,
    cfg: ClientConfig,
    next_seq: u64,
    leader: usize,
    outstanding: BTreeMap<u64, Outstanding<S::Op>>,
    unsent: Vec<u64>,
    ready: VecDeque<(u64, Result<S::Output, Error>)>,
    replies: Vec<Reply<S>>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> fmt::Debug for Client<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Client({}, {} outstanding)",
            self.id,
            self.outstanding.len()
        )
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Client<R, S> {
    pub(super) fn new(id: u64, net: Arc<Net<R, S>>, cfg: ClientConfig) -> Self {
        assert!(cfg.max_outstanding > 0);
        let cap = 4 * cfg.max_outstanding + 64;
        Client {
            id,
            leader: (id as usize) % net.len(),
            net,
            inbox: Arc::new(Mailbox::new(cap)),
            cfg,
            next_seq: 1,
            outstanding: BTreeMap::new(),
            unsent: Vec::new(),
            ready: VecDeque::new(),
            replies: Vec::new(),
        }
    }

    /// This client's session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Requests sent and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len() + self.ready.len()
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
                    self.outstanding.contains_key(&seq),
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
    /// together with everything else queued (one push per batch).
    pub fn send(&mut self, op: S::Op) -> Result<u64, Error> {
        if self.outstanding() >= self.cfg.max_outstanding {
            return Err(Error::Busy);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let now = Instant::now();
        self.outstanding.insert(
            seq,
            Outstanding {
                op,
                first: now,
                resend_at: now,
                target: self.leader,
            },
        );
        self.unsent.push(seq);
        Ok(seq)
    }

    /// Wait up to `wait` for one answer: `(seq, result)`. `None` when nothing is outstanding or
    /// the wait ended first. Every request sent is answered by some `poll`, by its timeout.
    pub fn poll(&mut self, wait: Duration) -> Option<(u64, Result<S::Output, Error>)> {
        let until = Instant::now() + wait;
        loop {
            if let Some(done) = self.ready.pop_front() {
                return Some(done);
            }
            if self.outstanding.is_empty() {
                return None;
            }
            let now = Instant::now();
            let mut next = until;
            let mut expired = Vec::new();
            for (&seq, o) in &self.outstanding {
                if o.first + self.cfg.timeout <= now {
                    expired.push(seq);
                    continue;
                }
                if o.resend_at <= now && !self.unsent.contains(&seq) {
                    self.unsent.push(seq);
                }
                next = next
                    .min(o.first + self.cfg.timeout)
                    .min(o.resend_at.max(now));
            }
            for seq in expired {
                self.outstanding.remove(&seq);
                self.unsent.retain(|&s| s != seq);
                self.ready.push_back((seq, Err(Error::Timeout)));
            }
            self.flush(now);
            if !self.ready.is_empty() {
                continue;
            }
            let next = self
                .outstanding
                .values()
                .map(|o| o.resend_at)
                .filter(|&t| t > now)
                .fold(next, Instant::min);
            let mut replies = std::mem::take(&mut self.replies);
            self.inbox.drain(&mut replies, Some(next));
            for r in replies.drain(..) {
                self.handle(r);
            }
            self.replies = replies;
            if self.ready.is_empty() && Instant::now() >= until {
                return None;
            }
        }
    }

    fn acked(&self) -> u64 {
        self.outstanding
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_seq)
    }

    fn flush(&mut self, now: Instant) {
        if self.unsent.is_empty() {
            return;
        }
        self.unsent.sort_unstable();
        let acked = self.acked();
        let target = self.leader;
        let mut reqs = Vec::with_capacity(self.unsent.len());
        for &seq in &self.unsent {
            let o = self
                .outstanding
                .get_mut(&seq)
                .expect("unsent requests are outstanding");
            o.target = target;
            o.resend_at = now + self.cfg.retry_after;
            reqs.push(Request {
                client: self.id,
                seq,
                acked,
                op: o.op.clone(),
            });
        }
        self.unsent.clear();
        if let Err(back) = self
            .net
            .propose(NodeId(target as u8), reqs, Arc::clone(&self.inbox))
        {
            if self.net.all_closed() {
                for r in back {
                    self.outstanding.remove(&r.seq);
                    self.ready.push_back((r.seq, Err(Error::Shutdown)));
                }
                return;
            }
            self.rotate(target);
            for r in back {
                if let Some(o) = self.outstanding.get_mut(&r.seq) {
                    o.resend_at = now + NO_LEADER_BACKOFF;
                }
            }
        }
    }

    fn rotate(&mut self, from: usize) {
        if self.leader == from {
            self.leader = (from + 1) % self.net.len();
        }
    }

    fn handle(&mut self, r: Reply<S>) {
        let now = Instant::now();
        match r {
            Reply::Done { seq, out } => {
                if let Some(o) = self.outstanding.remove(&seq) {
                    self.leader = o.target;
                    self.unsent.retain(|&s| s != seq);
                    self.ready.push_back((seq, out.map_err(Error::Session)));
                }
            }
            Reply::Redirect { seq, leader } => {
                if let Some(o) = self.outstanding.get_mut(&seq) {
                    match leader {
                        Some(l) if l.index() != o.target => {
                            if self.leader == o.target {
                                self.leader = l.index();
                            }
                            o.resend_at = now;
                        }
                        _ => {
                            let t = o.target;
                            o.resend_at = now + NO_LEADER_BACKOFF;
                            self.rotate(t);
                        }
                    }
                }
            }
            Reply::Retry { seq } => {
                if let Some(o) = self.outstanding.get_mut(&seq) {
                    let t = o.target;
                    o.resend_at = now + NO_LEADER_BACKOFF;
                    self.rotate(t);
                }
            }
        }
    }
}
