//! A server node's connections, read by the node's own thread.
//!
//! Every admitted peer connection and every client connection is registered here, and the
//! node's mailbox has this as its [`Source`]: when the node loop drains its mailbox it also
//! reads whatever its connections hold (non-blocking), decodes the frames into the inputs a
//! reader thread would have pushed, and when there is nothing it waits in one `epoll` over all
//! of them and an eventfd that the mailbox's pushes (and its close) ring. A frame therefore
//! goes from the socket to the replica on one thread: no reader thread to wake, no hand-off
//! to the node (on the 2-core VMs measured here, each wake-up costs more than the work; see
//! [`super::inlet`] for numbers).
//!
//! Bounds: at most [`READ_BUDGET`] bytes are taken from one connection per pass (a busy
//! client cannot starve the peers: what is left stays in the socket, and TCP pushes back on
//! the sender), a frame may be at most [`MAX_FRAME`] bytes, and a client connection idle for
//! [`CLIENT_IDLE`](super::server::CLIENT_IDLE) is closed.
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
use crate::runtime::{Cmd, Input, ReplyBox, Source};

/// Most bytes read from one connection in one pass.
pub const READ_BUDGET: usize = 256 << 10;
/// Bytes a read asks the socket for at once.
const CHUNK: usize = 64 << 10;
/// The waker's token; a connection in slot `i` has token `i + 1`.
const WAKER: Token = Token(0);
/// Events taken from one `epoll_wait`.
const EVENTS: usize = 64;
/// How often idle client connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The link a peer connection belongs to (the transport's).
pub trait PeerEnd: Send + Sync {
    /// Whether the fault hook cuts this peer off: its messages are dropped (and counted).
    fn cut(&self) -> bool;
    /// The connection ended (closed by the peer, broken, or a bad frame closed it).
    fn ended(&self);
}

enum Kind<S: StateMachine> {
    Peer {
        peer: NodeId,
        /// Cleared when the connection ends: the link thread watches it.
        alive: Arc<AtomicBool>,
        end: Arc<dyn PeerEnd>,
    },
    Client {
        replies: ReplyBox<S>,
        /// Released when the connection is: the server's count of client connections.
        _held: Box<dyn Send>,
    },
}

struct Conn<S: StateMachine> {
    stream: TcpStream,
    /// Bytes read and not yet decoded: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    kind: Kind<S>,
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

struct Conns<S: StateMachine> {
    slots: Vec<Option<Conn<S>>>,
    /// Slots of connections that may hold unread bytes.
    hot: Vec<usize>,
    next_sweep: Instant,
    /// Closed by the mailbox's close: registrations are refused.
    closed: bool,
}

/// A server node's connections (see the module docs).
pub struct Poller<R, S: StateMachine> {
    me: NodeId,
    counters: Arc<Counters>,
    registry: Registry,
    waker: Waker,
    /// The node thread's alone (locked only to satisfy `Sync`).
    poll: Mutex<(Poll, Events)>,
    conns: Mutex<Conns<S>>,
    client_idle: Duration,
    _types: PhantomData<fn() -> R>,
}

impl<R, S: StateMachine> std::fmt::Debug for Poller<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = lock(&self.conns);
        let open = c.slots.iter().filter(|s| s.is_some()).count();
        write!(f, "Poller(node {}, {open} connections)", self.me)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R, S> Poller<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    /// An empty poller for node `me`; client connections idle for `client_idle` are closed.
    pub fn new(me: NodeId, counters: Arc<Counters>, client_idle: Duration) -> io::Result<Self> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Poller {
            me,
            counters,
            registry,
            waker,
            poll: Mutex::new((poll, Events::with_capacity(EVENTS))),
            conns: Mutex::new(Conns {
                slots: Vec::new(),
                hot: Vec::new(),
                next_sweep: Instant::now() + SWEEP_EVERY,
                closed: false,
            }),
            client_idle,
            _types: PhantomData,
        })
    }

    fn add(&self, stream: TcpStream, kind: Kind<S>) -> Option<usize> {
        let mut c = lock(&self.conns);
        if c.closed {
            return None;
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
            return None;
        }
        c.slots[i] = Some(Conn {
            stream,
            buf: Vec::new(),
            start: 0,
            kind,
            last: Instant::now(),
            // Bytes may have arrived before the registration: read it on the next pass.
            hot: true,
        });
        c.hot.push(i);
        drop(c);
        let _ = self.waker.wake();
        Some(i)
    }

    /// Read peer `peer`'s admitted connection from now on; its messages become
    /// [`Input::Msg`]. Returns its handle for [`Poller::remove`] (`None`: not registered,
    /// the stream is dropped).
    pub fn add_peer(
        &self,
        stream: TcpStream,
        peer: NodeId,
        alive: Arc<AtomicBool>,
        end: Arc<dyn PeerEnd>,
    ) -> Option<usize> {
        self.add(stream, Kind::Peer { peer, alive, end })
    }

    /// Read a client's connection from now on; its requests become [`Input::Propose`]s
    /// answered to `replies`. `held` is dropped when the connection is closed. False: not
    /// registered (the poller is closed), and `replies` closed.
    pub fn add_client(&self, stream: TcpStream, replies: ReplyBox<S>, held: Box<dyn Send>) -> bool {
        let kind = Kind::Client {
            replies: Arc::clone(&replies),
            _held: held,
        };
        let added = self.add(stream, kind).is_some();
        if !added {
            replies.close();
        }
        added
    }

    /// Stop reading connection `i` (its link replaced or dropped it); its end is not told.
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
                eprintln!("paxraft {}: epoll: {e}", self.me);
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
    fn read_hot(&self, into: &mut Vec<Input<R, S>>) {
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
                    matches!(conn.kind, Kind::Client { .. })
                        && now.duration_since(conn.last) >= self.client_idle
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
        conn: &mut Conn<S>,
        into: &mut Vec<Input<R, S>>,
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

    /// Decode `conn`'s whole frames into inputs.
    fn decode(&self, conn: &mut Conn<S>, into: &mut Vec<Input<R, S>>) -> Result<(), Closing> {
        let c = &self.counters;
        loop {
            let (f, used) = match frame::split(&conn.buf[conn.start..], MAX_FRAME) {
                Ok(Some((body, used))) => (frame::decode::<R::Msg, S>(body), used),
                Ok(None) => break,
                Err(e) => return Err(Closing::Bad(e.to_string())),
            };
            conn.start += used;
            let f = f.map_err(|e| Closing::Bad(e.to_string()))?;
            match (&conn.kind, f) {
                (Kind::Peer { peer, end, .. }, Frame::Msg { from, msg }) if from == *peer => {
                    Counters::add(&c.bytes_in, used as u64);
                    Counters::add(&c.msgs_in, 1);
                    if end.cut() {
                        Counters::add(&c.dropped, 1);
                    } else {
                        into.push(Input::Msg { from, msg });
                    }
                }
                (Kind::Client { replies, .. }, Frame::Request { reqs }) => {
                    Counters::add(&c.requests, reqs.len() as u64);
                    into.push(Input::Propose {
                        reqs,
                        reply: Arc::clone(replies),
                    });
                }
                (Kind::Peer { peer, .. }, other) => {
                    return Err(Closing::Bad(format!(
                        "frame type {} from node {peer} on a peer link",
                        other.type_of()
                    )))
                }
                (Kind::Client { .. }, other) => {
                    return Err(Closing::Bad(format!("frame type {}", other.type_of())))
                }
            }
        }
        if conn.start == conn.buf.len() {
            conn.buf.clear();
            conn.start = 0;
        }
        Ok(())
    }

    /// Close connection `i`: deregister it, shut it down, and tell its end.
    fn close(&self, c: &mut Conns<S>, i: usize, why: Closing) {
        let Some(conn) = c.slots[i].take() else {
            return;
        };
        let _ = self
            .registry
            .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
        let _ = conn.stream.shutdown(Shutdown::Both);
        let me = self.me;
        if let Closing::Bad(why) = &why {
            Counters::add(&self.counters.bad_frames, 1);
            match &conn.kind {
                Kind::Peer { peer, .. } => {
                    eprintln!("paxraft {me}: closed the link to {peer}: {why}")
                }
                Kind::Client { .. } => eprintln!("paxraft {me}: closed a client connection: {why}"),
            }
        }
        match conn.kind {
            Kind::Peer { alive, end, .. } => {
                alive.store(false, Ordering::Relaxed);
                end.ended();
            }
            Kind::Client { replies, .. } => {
                replies.close();
            }
        }
    }
}

/// The node mailbox's view of a [`Poller`].
#[derive(Debug)]
pub struct NodeSource<R, S: StateMachine>(pub Arc<Poller<R, S>>);

impl<R, S> Source<Input<R, S>> for NodeSource<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    fn poll(&self, into: &mut Vec<Input<R, S>>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Drained, Mailbox};
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
    fn peer(poller: &Poller<R, Kv>) -> (TcpStream, Arc<AtomicBool>, Arc<End>) {
        let (theirs, ours) = pair();
        let alive = Arc::new(AtomicBool::new(true));
        let end = Arc::new(End::default());
        poller
            .add_peer(ours, NodeId(1), Arc::clone(&alive), end.clone())
            .unwrap();
        (theirs, alive, end)
    }

    /// A node mailbox reading one peer connection through a poller.
    fn node() -> (Arc<Poller<R, Kv>>, NodeBox, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let poller = Arc::new(
            Poller::new(NodeId(0), Arc::clone(&counters), Duration::from_secs(60)).unwrap(),
        );
        let mb = Mailbox::with_spin(64, Duration::ZERO);
        assert!(mb
            .set_source(Box::new(NodeSource(Arc::clone(&poller))))
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
        assert!(poller.add_client(ours, Arc::clone(&replies), Box::new(())));
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
}
