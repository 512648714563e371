//! Connections read by the thread that consumes what they carry.
//!
//! A server node's connections (every admitted peer connection and every client
//! connection) and a network client's connections to the servers are registered with a
//! [`Poller`], and the consuming thread's mailbox has the poller as its [`Source`]: when the
//! node loop (or the client) drains its mailbox it also reads whatever its connections hold
//! (non-blocking), decodes the frames into the items a reader thread would have pushed
//! (the node's [`Input`]s, the client's [`Reply`]s: a [`Handler`] says how), and when there
//! is nothing it waits in one `epoll` over all of them and an eventfd that the mailbox's
//! pushes (and its close) ring. A frame therefore goes from the socket to the thread that acts
//! on it with no reader thread to wake and no hand-off (on the 2-core VMs measured here,
//! each wake-up costs more than the work; see [`super::inlet`] for numbers).
//!
//! Bounds: at most [`READ_BUDGET`] bytes are taken from one connection per pass (a busy
//! connection cannot starve the others: what is left stays in the socket, and TCP pushes
//! back on the sender), a frame may be at most [`MAX_FRAME`] bytes, and a connection its
//! handler gives an idle limit is closed once idle that long.
//!
//! `mio` registers edge-triggered: a connection reports readiness once per arrival, so a
//! connection left with bytes in its socket (its budget spent) is kept on a *hot* list and
//! read on the next pass without waiting for an event.

use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use paxraft_impls::sm::StateMachine;
use paxraft_impls::{NodeId, Replica};
use serde::de::DeserializeOwned;

use super::frame::{self, Frame, MAX_FRAME};
use super::transport::Counters;
use crate::runtime::{Cmd, Input, Reply, ReplyBox, Source};

/// Most bytes read from one connection in one pass.
pub const READ_BUDGET: usize = 256 << 10;
/// Bytes a read asks the socket for at once.
const CHUNK: usize = 64 << 10;
/// The waker's token; a connection in slot `i` has token `i + 1`.
const WAKER: Token = Token(0);
/// Events taken from one `epoll_wait`.
const EVENTS: usize = 64;
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What a [`Poller`]'s connections carry, and what to do when one ends.
pub trait Handler: Send + Sync {
    /// What frames become.
    type Item;
    /// What the poller keeps with each connection.
    type Conn: Send;
    /// Turn one frame (`used` bytes on the wire) into items; `Err`: a reason to close the
    /// connection (a bad frame, counted and logged).
    fn frame(
        &self,
        conn: &Self::Conn,
        frame: Frame<Self::Msg, Self::State>,
        used: usize,
        into: &mut Vec<Self::Item>,
    ) -> Result<(), String>;
    /// The protocol message type frames decode with.
    type Msg: DeserializeOwned;
    /// The state machine whose requests and answers frames carry.
    type State: StateMachine;
    /// Connection `conn` was closed: `bad` says why when it misbehaved (a bad frame),
    /// `None` when it ended or broke.
    fn closed(&self, conn: Self::Conn, bad: Option<&str>);
    /// How long `conn` may stay idle before it is closed (`None`: for ever).
    fn idle_limit(&self, conn: &Self::Conn) -> Option<Duration>;
}

struct Conn<C> {
    stream: TcpStream,
    /// Bytes read and not yet decoded: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    data: C,
    /// The last time bytes arrived.
    last: Instant,
    /// On the hot list.
    hot: bool,
}

/// Why a connection is closed.
enum Closing {
    /// It ended or broke: not the peer's fault, not logged.
    Ended,
    /// It sent something it must not: counted and logged.
    Bad(String),
}

struct Conns<C> {
    slots: Vec<Option<Conn<C>>>,
    /// Slots of connections that may hold unread bytes.
    hot: Vec<usize>,
    next_sweep: Instant,
    /// Closed by the mailbox's close: registrations are refused.
    closed: bool,
}

/// Connections read by their consumer's thread (see the module docs).
pub struct Poller<H: Handler> {
    handler: H,
    registry: Registry,
    waker: Waker,
    /// The consumer thread's alone (locked only to satisfy `Sync`).
    poll: Mutex<(Poll, Events)>,
    conns: Mutex<Conns<H::Conn>>,
}

impl<H: Handler> std::fmt::Debug for Poller<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = lock(&self.conns);
        let open = c.slots.iter().filter(|s| s.is_some()).count();
        write!(f, "Poller({open} connections)")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<H: Handler> Poller<H> {
    /// An empty poller whose connections `handler` interprets.
    pub fn new(handler: H) -> io::Result<Self> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Poller {
            handler,
            registry,
            waker,
            poll: Mutex::new((poll, Events::with_capacity(EVENTS))),
            conns: Mutex::new(Conns {
                slots: Vec::new(),
                hot: Vec::new(),
                next_sweep: Instant::now() + SWEEP_EVERY,
                closed: false,
            }),
        })
    }

    /// Read `stream` from now on, keeping `data` with it. Returns its handle for
    /// [`Poller::remove`]; `Err` hands `data` back (the poller is closed, or the stream
    /// could not be registered), the stream dropped.
    pub fn add(&self, stream: TcpStream, data: H::Conn) -> Result<usize, H::Conn> {
        let mut c = lock(&self.conns);
        if c.closed {
            return Err(data);
        }
        let i = match c.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                c.slots.push(None);
                c.slots.len() - 1
            }
        };
        let fd = stream.as_raw_fd();
        if self
            .registry
            .register(&mut SourceFd(&fd), Token(i + 1), Interest::READABLE)
            .is_err()
        {
            return Err(data);
        }
        c.slots[i] = Some(Conn {
            stream,
            buf: Vec::new(),
            start: 0,
            data,
            last: Instant::now(),
            // Bytes may have arrived before the registration: read it on the next pass.
            hot: true,
        });
        c.hot.push(i);
        drop(c);
        let _ = self.waker.wake();
        Ok(i)
    }

    /// Stop reading connection `i` (its owner replaced or dropped it); the handler is not
    /// told.
    pub fn remove(&self, i: usize) {
        let mut c = lock(&self.conns);
        if let Some(conn) = c.slots.get_mut(i).and_then(Option::take) {
            let _ = self
                .registry
                .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
        }
    }

    /// Wait in `epoll` for up to `timeout` and mark what is ready hot.
    fn wait_events(&self, timeout: Option<Duration>) {
        let mut p = lock(&self.poll);
        let (poll, events) = &mut *p;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("paxraft: epoll: {e}");
            }
            return;
        }
        if events.is_empty() {
            return;
        }
        let mut c = lock(&self.conns);
        for ev in events.iter() {
            let Some(i) = ev.token().0.checked_sub(1) else {
                continue; // the waker
            };
            if let Some(Some(conn)) = c.slots.get_mut(i) {
                if !conn.hot {
                    conn.hot = true;
                    c.hot.push(i);
                }
            }
        }
    }

    /// Read every hot connection into `into`, closing those that ended or misbehaved.
    fn read_hot(&self, into: &mut Vec<H::Item>) {
        let mut c = lock(&self.conns);
        let now = Instant::now();
        let mut hot = std::mem::take(&mut c.hot);
        for &i in &hot {
            let Some(conn) = c.slots[i].as_mut() else {
                continue;
            };
            conn.hot = false;
            if let Err(why) = self.read(conn, into, now) {
                self.close(&mut c, i, why);
            }
        }
        hot.retain(|&i| c.slots[i].as_ref().is_some_and(|conn| conn.hot));
        c.hot = hot;
        if now >= c.next_sweep {
            c.next_sweep = now + SWEEP_EVERY;
            for i in 0..c.slots.len() {
                let idle = c.slots[i].as_ref().is_some_and(|conn| {
                    self.handler
                        .idle_limit(&conn.data)
                        .is_some_and(|limit| now.duration_since(conn.last) >= limit)
                });
                if idle {
                    self.close(&mut c, i, Closing::Ended);
                }
            }
        }
    }

    /// Read what `conn` holds (up to the budget) and decode its whole frames into `into`.
    fn read(
        &self,
        conn: &mut Conn<H::Conn>,
        into: &mut Vec<H::Item>,
        now: Instant,
    ) -> Result<(), Closing> {
        let mut budget = READ_BUDGET;
        loop {
            if conn.buf.capacity() - conn.buf.len() < CHUNK {
                // Move the undecoded tail to the front before growing.
                conn.buf.drain(..conn.start);
                conn.start = 0;
                conn.buf.reserve(CHUNK);
            }
            let sock = socket2::SockRef::from(&conn.stream);
            let spare: &mut [MaybeUninit<u8>] = conn.buf.spare_capacity_mut();
            match sock.recv_with_flags(spare, libc::MSG_DONTWAIT) {
                Ok(0) => {
                    self.decode(conn, into)?;
                    return Err(Closing::Ended);
                }
                Ok(n) => {
                    // SAFETY: `recv` initialised the first `n` spare bytes.
                    unsafe { conn.buf.set_len(conn.buf.len() + n) };
                    conn.last = now;
                    self.decode(conn, into)?;
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        // Left in the socket: read on the next pass (no new edge will come).
                        conn.hot = true;
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Closing::Ended),
            }
        }
    }

    /// Decode `conn`'s whole frames and hand them to the handler.
    fn decode(&self, conn: &mut Conn<H::Conn>, into: &mut Vec<H::Item>) -> Result<(), Closing> {
        loop {
            let (f, used) = match frame::split(&conn.buf[conn.start..], MAX_FRAME) {
                Ok(Some((body, used))) => (frame::decode::<H::Msg, H::State>(body), used),
                Ok(None) => break,
                Err(e) => return Err(Closing::Bad(e.to_string())),
            };
            conn.start += used;
            let f = f.map_err(|e| Closing::Bad(e.to_string()))?;
            self.handler
                .frame(&conn.data, f, used, into)
                .map_err(Closing::Bad)?;
        }
        if conn.start == conn.buf.len() {
            conn.buf.clear();
            conn.start = 0;
        }
        Ok(())
    }

    /// Close connection `i`: deregister it, shut it down, and tell the handler.
    fn close(&self, c: &mut Conns<H::Conn>, i: usize, why: Closing) {
        let Some(conn) = c.slots[i].take() else {
            return;
        };
        let _ = self
            .registry
            .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
        let _ = conn.stream.shutdown(Shutdown::Both);
        let bad = match &why {
            Closing::Bad(why) => Some(why.as_str()),
            Closing::Ended => None,
        };
        self.handler.closed(conn.data, bad);
    }
}

/// A mailbox's view of a [`Poller`]: its [`Source`].
#[derive(Debug)]
pub struct PollerSource<H: Handler>(pub Arc<Poller<H>>);

impl<H: Handler> Source<H::Item> for PollerSource<H> {
    fn poll(&self, into: &mut Vec<H::Item>) {
        self.0.wait_events(Some(Duration::ZERO));
        self.0.read_hot(into);
    }

    fn wait(&self, deadline: Option<Instant>) {
        // A connection with bytes left in its socket gets no new event: read it instead.
        if !lock(&self.0.conns).hot.is_empty() {
            return;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.0.wait_events(timeout);
    }

    fn wake(&self) {
        let _ = self.0.waker.wake();
    }

    fn close(&self) {
        let mut c = lock(&self.0.conns);
        c.closed = true;
        for i in 0..c.slots.len() {
            self.0.close(&mut c, i, Closing::Ended);
        }
        c.hot.clear();
    }
}

/// The link a server's peer connection belongs to (the transport's).
pub trait PeerEnd: Send + Sync {
    /// Whether the fault hook cuts this peer off: its messages are dropped (and counted).
    fn cut(&self) -> bool;
    /// The connection ended (closed by the peer, broken, or a bad frame closed it).
    fn ended(&self);
}

/// A server node's connection.
pub enum NodeConn<S: StateMachine> {
    /// An admitted peer's.
    Peer {
        /// The peer.
        peer: NodeId,
        /// Cleared when the connection ends: the link thread watches it.
        alive: Arc<AtomicBool>,
        /// Its link.
        end: Arc<dyn PeerEnd>,
    },
    /// A client's.
    Client {
        /// Where the node answers it.
        replies: ReplyBox<S>,
        /// Released when the connection is: the server's count of client connections.
        held: Box<dyn Send>,
    },
}

impl<S: StateMachine> std::fmt::Debug for NodeConn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeConn::Peer { peer, .. } => write!(f, "NodeConn::Peer({peer})"),
            NodeConn::Client { .. } => write!(f, "NodeConn::Client"),
        }
    }
}

/// A server node's connections: peers' messages become [`Input::Msg`], clients' requests
/// [`Input::Propose`]s answered to their connection's reply mailbox.
#[derive(Debug)]
pub struct NodeHandler<R, S: StateMachine> {
    me: NodeId,
    counters: Arc<Counters>,
    client_idle: Duration,
    _types: PhantomData<fn() -> (R, S)>,
}

impl<R, S: StateMachine> NodeHandler<R, S> {
    /// Node `me`'s, counting in `counters`; client connections idle for `client_idle` are
    /// closed.
    pub fn new(me: NodeId, counters: Arc<Counters>, client_idle: Duration) -> Self {
        NodeHandler {
            me,
            counters,
            client_idle,
            _types: PhantomData,
        }
    }
}

impl<R, S> Handler for NodeHandler<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    type Item = Input<R, S>;
    type Conn = NodeConn<S>;
    type Msg = R::Msg;
    type State = S;

    fn frame(
        &self,
        conn: &NodeConn<S>,
        f: Frame<R::Msg, S>,
        used: usize,
        into: &mut Vec<Input<R, S>>,
    ) -> Result<(), String> {
        let c = &self.counters;
        match (conn, f) {
            (NodeConn::Peer { peer, end, .. }, Frame::Msg { from, msg }) if from == *peer => {
                Counters::add(&c.bytes_in, used as u64);
                Counters::add(&c.msgs_in, 1);
                if end.cut() {
                    Counters::add(&c.dropped, 1);
                } else {
                    into.push(Input::Msg { from, msg });
                }
            }
            (NodeConn::Client { replies, .. }, Frame::Request { reqs }) => {
                Counters::add(&c.requests, reqs.len() as u64);
                into.push(Input::Propose {
                    reqs,
                    reply: Arc::clone(replies),
                });
            }
            (NodeConn::Peer { peer, .. }, other) => {
                return Err(format!(
                    "frame type {} from node {peer} on a peer link",
                    other.type_of()
                ))
            }
            (NodeConn::Client { .. }, other) => {
                return Err(format!("frame type {}", other.type_of()))
            }
        }
        Ok(())
    }

    fn closed(&self, conn: NodeConn<S>, bad: Option<&str>) {
        let me = self.me;
        if let Some(why) = bad {
            Counters::add(&self.counters.bad_frames, 1);
            match &conn {
                NodeConn::Peer { peer, .. } => {
                    eprintln!("paxraft {me}: closed the link to {peer}: {why}")
                }
                NodeConn::Client { .. } => {
                    eprintln!("paxraft {me}: closed a client connection: {why}")
                }
            }
        }
        match conn {
            NodeConn::Peer { alive, end, .. } => {
                alive.store(false, Ordering::Relaxed);
                end.ended();
            }
            NodeConn::Client { replies, .. } => {
                replies.close();
            }
        }
    }

    fn idle_limit(&self, conn: &NodeConn<S>) -> Option<Duration> {
        matches!(conn, NodeConn::Client { .. }).then_some(self.client_idle)
    }
}

/// A server node's poller.
pub type NodePoller<R, S> = Poller<NodeHandler<R, S>>;

/// A network client's connections to the servers: their [`Frame::Reply`]s become the
/// client's [`Reply`]s; anything else closes the connection.
#[derive(Debug)]
pub struct ReplyHandler<R, S> {
    _types: PhantomData<fn() -> (R, S)>,
}

impl<R, S> Default for ReplyHandler<R, S> {
    fn default() -> Self {
        ReplyHandler {
            _types: PhantomData,
        }
    }
}

/// The link a client's server connection belongs to.
pub type ServerEnd = Arc<dyn Fn() + Send + Sync>;

impl<R, S> Handler for ReplyHandler<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    type Item = Reply<S>;
    /// Called when the connection ends (the client's link then redials on demand).
    type Conn = ServerEnd;
    type Msg = R::Msg;
    type State = S;

    fn frame(
        &self,
        _conn: &ServerEnd,
        f: Frame<R::Msg, S>,
        _used: usize,
        into: &mut Vec<Reply<S>>,
    ) -> Result<(), String> {
        match f {
            Frame::Reply { replies } => {
                into.extend(replies);
                Ok(())
            }
            other => Err(format!("frame type {} from a server", other.type_of())),
        }
    }

    fn closed(&self, conn: ServerEnd, _bad: Option<&str>) {
        conn();
    }

    fn idle_limit(&self, _conn: &ServerEnd) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Drained, Mailbox, Reply};
    use paxraft_impls::raft::{Raft, RaftMsg};
    use paxraft_impls::sm::Request;
    use paxraft_impls::sm::{Kv, KvOp};
    use std::io::Write;
    use std::net::TcpListener;

    type R = Raft<Cmd<Kv>>;
    type F = Frame<RaftMsg<Cmd<Kv>>, Kv>;
    type NodeBox = Mailbox<Input<R, Kv>>;

    #[derive(Default)]
    struct End {
        cut: AtomicBool,
        ended: AtomicBool,
    }
    impl PeerEnd for End {
        fn cut(&self) -> bool {
            self.cut.load(Ordering::Relaxed)
        }
        fn ended(&self) {
            self.ended.store(true, Ordering::Relaxed);
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// A vote request from `from`, framed.
    fn vote_from(from: u8, term: u64) -> Vec<u8> {
        let f: F = Frame::Msg {
            from: NodeId(from),
            msg: RaftMsg::RequestVote {
                term,
                last_index: 0,
                last_term: 0,
                pre_vote: false,
            },
        };
        let mut v = Vec::new();
        frame::encode(&f, &mut v).unwrap();
        v
    }

    fn vote(term: u64) -> Vec<u8> {
        vote_from(1, term)
    }

    /// A connection from node 1 registered with `poller`: the far end, and the link's flag
    /// and end.
    fn peer(poller: &NodePoller<R, Kv>) -> (TcpStream, Arc<AtomicBool>, Arc<End>) {
        let (theirs, ours) = pair();
        let alive = Arc::new(AtomicBool::new(true));
        let end = Arc::new(End::default());
        let conn = NodeConn::Peer {
            peer: NodeId(1),
            alive: Arc::clone(&alive),
            end: end.clone(),
        };
        assert!(poller.add(ours, conn).is_ok());
        (theirs, alive, end)
    }

    /// A node mailbox reading one peer connection through a poller.
    fn node() -> (Arc<NodePoller<R, Kv>>, NodeBox, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let handler = NodeHandler::new(NodeId(0), Arc::clone(&counters), Duration::from_secs(60));
        let poller = Arc::new(Poller::new(handler).unwrap());
        let mb = Mailbox::with_spin(64, Duration::ZERO);
        assert!(mb
            .set_source(Box::new(PollerSource(Arc::clone(&poller))))
            .is_ok());
        (poller, mb, counters)
    }

    fn terms(inputs: &[Input<R, Kv>]) -> Vec<u64> {
        inputs
            .iter()
            .map(|i| match i {
                Input::Msg {
                    msg: RaftMsg::RequestVote { term, .. },
                    ..
                } => *term,
                other => panic!("not a vote: {other:?}"),
            })
            .collect()
    }

    /// Drain until `n` inputs came (each drain waits in epoll), or 5 s.
    fn take(mb: &NodeBox, n: usize) -> Vec<Input<R, Kv>> {
        let until = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < until {
            assert_eq!(mb.drain(&mut got, Some(until)), Drained::Open);
        }
        got
    }

    /// A peer's frames reach the node's drain in order, whole, also when one arrives in two
    /// pieces with a pause between them (the drain blocks in epoll meanwhile) and when more
    /// arrive at once than one pass reads (the rest is read without a new event).
    #[test]
    fn a_peers_frames_reach_the_drain_whole_and_in_order() {
        let (poller, mb, counters) = node();
        let (mut theirs, alive, end) = peer(&poller);
        let one = vote(1);
        theirs.write_all(&one[..3]).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            theirs.write_all(&one[3..]).unwrap();
            // Well over one pass's budget, in one burst.
            let burst: Vec<u8> = (2..=100_000).flat_map(vote).collect();
            assert!(burst.len() > 2 * READ_BUDGET);
            theirs.write_all(&burst).unwrap();
            theirs
        });
        let got = take(&mb, 100_000);
        let _theirs = writer.join().unwrap();
        assert_eq!(terms(&got), (1..=100_000).collect::<Vec<_>>());
        assert_eq!(counters.msgs_in.load(Ordering::Relaxed), 100_000);
        assert!(alive.load(Ordering::Relaxed) && !end.ended.load(Ordering::Relaxed));
    }

    /// A bad frame closes that connection, counted, and tells its link; a message from a
    /// node other than the link's peer is a bad frame too. The frames before it still count.
    #[test]
    fn a_bad_frame_closes_the_connection_and_tells_its_link() {
        let (poller, mb, counters) = node();
        // An unknown frame type; a message from node 2 on node 1's link.
        for bad in [vec![0, 0, 0, 1, 99], vote_from(2, 9)] {
            let (mut theirs, alive, end) = peer(&poller);
            theirs.write_all(&vote(7)).unwrap();
            theirs.write_all(&bad).unwrap();
            assert_eq!(terms(&take(&mb, 1)), vec![7]);
            let until = Instant::now() + Duration::from_secs(5);
            while !end.ended.load(Ordering::Relaxed) && Instant::now() < until {
                mb.drain(
                    &mut Vec::new(),
                    Some(Instant::now() + Duration::from_millis(10)),
                );
            }
            assert!(end.ended.load(Ordering::Relaxed) && !alive.load(Ordering::Relaxed));
        }
        assert_eq!(counters.bad_frames.load(Ordering::Relaxed), 2);
    }

    /// A client's requests become proposals answered to its reply mailbox; closing the node's
    /// mailbox closes the connection (the client sees its end) and the reply mailbox.
    #[test]
    fn a_clients_requests_become_proposals_and_a_close_ends_the_connection() {
        let (poller, mb, counters) = node();
        let (mut theirs, ours) = pair();
        let replies: ReplyBox<Kv> = Arc::new(Mailbox::new(8));
        let conn = NodeConn::Client {
            replies: Arc::clone(&replies),
            held: Box::new(()),
        };
        assert!(poller.add(ours, conn).is_ok());
        let f: F = Frame::Request {
            reqs: vec![Request {
                client: 5,
                seq: 1,
                acked: 0,
                op: KvOp::Get(3),
            }],
        };
        frame::write(&mut theirs, &f).unwrap();
        let got = take(&mb, 1);
        assert!(
            matches!(&got[..], [Input::Propose { reqs, .. }] if reqs[0].seq == 1),
            "{got:?}"
        );
        assert_eq!(counters.requests.load(Ordering::Relaxed), 1);
        mb.close();
        assert!(replies.is_closed());
        theirs
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 1];
        assert_eq!(
            std::io::Read::read(&mut theirs, &mut b).unwrap(),
            0,
            "closed"
        );
        assert_eq!(mb.drain(&mut Vec::new(), None), Drained::Closed);
    }

    /// A client's server connection: its reply frames become the client's replies, and
    /// anything else closes it and tells its link (which then redials on demand).
    #[test]
    fn a_servers_replies_reach_the_client_and_another_frame_closes_the_connection() {
        let poller = Arc::new(Poller::new(ReplyHandler::<R, Kv>::default()).unwrap());
        let mb: Mailbox<Reply<Kv>> = Mailbox::with_spin(8, Duration::ZERO);
        assert!(mb
            .set_source(Box::new(PollerSource(Arc::clone(&poller))))
            .is_ok());
        let (mut theirs, ours) = pair();
        let ended = Arc::new(AtomicBool::new(false));
        let e = Arc::clone(&ended);
        assert!(poller
            .add(ours, Arc::new(move || e.store(true, Ordering::Relaxed)))
            .is_ok());
        let reply: F = Frame::Reply {
            replies: vec![Reply::Retry { seq: 4 }],
        };
        frame::write(&mut theirs, &reply).unwrap();
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(5);
        while got.is_empty() && Instant::now() < until {
            mb.drain(&mut got, Some(until));
        }
        assert!(matches!(got[..], [Reply::Retry { seq: 4 }]), "{got:?}");
        theirs.write_all(&vote(1)).unwrap();
        while !ended.load(Ordering::Relaxed) && Instant::now() < until {
            mb.drain(&mut got, Some(Instant::now() + Duration::from_millis(10)));
        }
        assert!(
            ended.load(Ordering::Relaxed),
            "a vote from a server closed it"
        );
        assert_eq!(got.len(), 1);
    }
}
