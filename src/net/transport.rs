//! Peer links: one TCP connection per pair of nodes, carrying both directions.
//!
//! The lower id of a pair dials the higher (so each pair has one connection), after the
//! handshake of [`super::auth`]. Sending: the node's outbox for a remote peer (its mailbox in
//! the node's [`Net`]) has a [`Sink`] that encodes the node's messages on the node's own
//! thread, one buffer per step and peer, and hands them to that peer's [`Outlet`], which
//! writes them to the socket at once with a non-blocking `send` when nothing is pending
//! before them: no hand-off to another thread on the way out. What the socket does not take
//! at once waits in the outlet's bounded buffer for the peer's link thread, which writes it
//! with blocking writes (coalesced: the buffer holds whatever piled up meanwhile), and which
//! also dials, redials and notices a broken connection. Receiving: a reader thread per
//! connection pushes the peer's messages into the local node's mailbox as [`Input::Msg`],
//! every whole frame of a read in one push.
//!
//! Losses are counted (`dropped`) and bounded: while a peer is unreachable its messages are
//! dropped, not kept (the protocols tolerate loss, stale messages are worth nothing after a
//! reconnect), and a peer that does not read costs at most [`OUTBOX_BYTES`] pending (plus the
//! link thread's one batch in flight) before its messages are dropped. The dialer retries
//! with doubling back-off (10 ms to 1 s); the acceptor takes the newest admitted connection
//! from that peer and closes the one it replaces.

use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paxraft_impls::sm::StateMachine;
use paxraft_impls::{NodeId, Replica};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::{nonce, Secret, Side};
use super::frame::{self, Frame, MAX_FRAME, NONCE};
use super::outlet::{Conn, Next, Outlet, Sent};
use super::poller::{NodeConn, NodePoller, PeerEnd};
use crate::runtime::{Cmd, Drained, Input, Net, Refusal, Sink};

/// How long a handshake may take, and a dial may wait for the connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// First pause before redialing a peer; doubled up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between dials of an unreachable peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Capacity of a peer's outbox mailbox. Its queue stays empty once the links start (their
/// sinks take every push); kept as a plain mailbox for its close, the node's shutdown signal.
pub const OUTBOX: usize = 1 << 14;
/// Bytes of encoded messages waiting for a peer that does not keep up: beyond it they are
/// dropped (counted). 4 MiB is about 16,000 small messages, or many full batches.
pub const OUTBOX_BYTES: usize = 4 << 20;
/// How often an idle link looks for a broken or replaced connection.
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// What a server counts, all monotonic. Relaxed atomics: they are statistics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Protocol messages sent to peers.
    pub msgs_out: AtomicU64,
    /// Bytes written to peers (frames, prefixes included).
    pub bytes_out: AtomicU64,
    /// Protocol messages received from admitted peers.
    pub msgs_in: AtomicU64,
    /// Bytes of those messages' frames.
    pub bytes_in: AtomicU64,
    /// Protocol messages dropped: a peer's outbox full or its link down, or the local
    /// mailbox full.
    pub dropped: AtomicU64,
    /// Frames refused (malformed, oversized, unknown type, or out of place): each closed
    /// its connection.
    pub bad_frames: AtomicU64,
    /// Connections refused admission (another cluster, not a member, a failed proof).
    pub refused_peers: AtomicU64,
    /// Connections refused because the server holds its maximum.
    pub refused_conns: AtomicU64,
    /// Peer connections admitted.
    pub peer_conns: AtomicU64,
    /// Client connections accepted.
    pub client_conns: AtomicU64,
    /// Client requests received.
    pub requests: AtomicU64,
}

impl Counters {
    /// Add `n` to counter `c`.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as JSON (for the status endpoint).
    pub fn to_json(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "msgs_out": g(&self.msgs_out),
            "bytes_out": g(&self.bytes_out),
            "msgs_in": g(&self.msgs_in),
            "bytes_in": g(&self.bytes_in),
            "dropped": g(&self.dropped),
            "bad_frames": g(&self.bad_frames),
            "refused_peers": g(&self.refused_peers),
            "refused_conns": g(&self.refused_conns),
            "peer_conns": g(&self.peer_conns),
            "client_conns": g(&self.client_conns),
            "requests": g(&self.requests),
        })
    }
}

/// What a dialer's [`Frame::Hello`] says, for [`Links::admit`].
#[derive(Clone, Copy, Debug)]
pub struct Hello<'a> {
    /// The dialer's cluster.
    pub cluster: &'a str,
    /// The dialer's node id.
    pub node: NodeId,
    /// The dialer's challenge.
    pub nonce: &'a [u8; NONCE],
    /// The dialer's session timeout.
    pub session_timeout: u64,
}

/// Who this node is, in which cluster, and how to reach and admit its peers.
#[derive(Clone, Debug)]
pub struct Identity {
    /// This node.
    pub me: NodeId,
    /// Every node's address, node `i` at index `i`.
    pub addrs: Vec<SocketAddr>,
    /// The cluster's id.
    pub cluster: String,
    /// The shared secret, if any.
    pub secret: Secret,
}

/// The links of one node: a slot per remote peer where an accepted connection is handed to
/// that peer's link thread.
pub struct Links<R: Replica<Cmd<S>>, S: StateMachine>
where
    R::Msg: DeserializeOwned,
{
    id: Identity,
    /// The session timeout this node's state machine expires sessions by
    /// ([`RuntimeConfig::session_timeout`](crate::runtime::RuntimeConfig::session_timeout)):
    /// a peer with another is refused, as one of another cluster is.
    session_timeout: u64,
    net: Arc<Net<R, S>>,
    counters: Arc<Counters>,
    slots: Vec<Arc<Slot>>,
    /// Reads the admitted connections on the node's thread.
    poller: Arc<NodePoller<R, S>>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Links<R, S>
where
    R::Msg: DeserializeOwned,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Links(node {}, {} nodes)", self.id.me, self.slots.len())
    }
}

/// A link's connection, as the acceptor hands it over and the link uses it.
struct Slot {
    /// Where the node's messages to this peer go: straight to the socket when it can, else
    /// pending for the link thread.
    outlet: Arc<Outlet>,
    /// An admitted connection waiting for the link thread.
    handed: Mutex<Option<TcpStream>>,
    /// A clone of the connection in use, so that a newer one can close it.
    current: Mutex<Option<TcpStream>>,
    /// The fault hook: drop every message to and from this peer (a partition).
    cut: AtomicBool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            outlet: Arc::new(Outlet::new(OUTBOX_BYTES)),
            handed: Mutex::default(),
            current: Mutex::default(),
            cut: AtomicBool::default(),
        }
    }
}

impl PeerEnd for Slot {
    fn cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }
    fn ended(&self) {
        // The link thread finds the outlet broken and redials (or waits to be dialed).
        self.outlet.fail();
    }
}

/// The node's sends to one peer: its outbox's [`Sink`], which encodes them on the node's
/// thread and hands them to the peer's [`Outlet`].
struct PeerSink<R: Replica<Cmd<S>>, S: StateMachine> {
    me: NodeId,
    peer: NodeId,
    slot: Arc<Slot>,
    counters: Arc<Counters>,
    _types: PhantomData<fn() -> (R, S)>,
}

impl<R, S> Sink<Input<R, S>> for PeerSink<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize,
    S: StateMachine,
{
    fn push(&self, items: &mut Vec<Input<R, S>>) -> Result<bool, Refusal> {
        let c = &self.counters;
        let n = items.len() as u64;
        if self.slot.cut.load(Ordering::Relaxed) {
            Counters::add(&c.dropped, n);
            items.clear();
            return Ok(true);
        }
        let (mut sent, mut bytes) = (0, 0);
        let taken = self.slot.outlet.send(n, |buf| {
            let start = buf.len();
            for input in items.drain(..) {
                if let Input::Msg { from, msg } = input {
                    let f: Frame<R::Msg, S> = Frame::Msg { from, msg };
                    match frame::encode(&f, buf) {
                        Ok(()) => sent += 1,
                        // Too big to send: the peer would refuse it. Lost like any other.
                        Err(e) => eprintln!(
                            "paxraft {}: message to node {} not sent: {e}",
                            self.me, self.peer
                        ),
                    }
                }
            }
            bytes = buf.len() - start;
        });
        match taken {
            Sent::Taken => {
                Counters::add(&c.msgs_out, sent);
                Counters::add(&c.bytes_out, bytes as u64);
                Counters::add(&c.dropped, n - sent);
                Ok(true)
            }
            // Down or broken: lost, as on a lossy network (the link reconnects).
            Sent::Down | Sent::Lost => {
                Counters::add(&c.dropped, n);
                items.clear();
                Ok(true)
            }
            Sent::Full => Err(Refusal::Full),
            Sent::Closed => Err(Refusal::Closed),
        }
    }

    fn close(&self) {
        self.slot.outlet.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R, S> Links<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    /// Start a link thread per remote peer of `id.me` in `net` (whose remote mailboxes are
    /// the outboxes); `poller` reads the connections; peers are admitted with this node's
    /// `session_timeout` only. The threads end when their outbox is closed (the node shut
    /// down).
    pub fn start(
        id: Identity,
        session_timeout: u64,
        net: Arc<Net<R, S>>,
        counters: Arc<Counters>,
        poller: Arc<NodePoller<R, S>>,
    ) -> Arc<Self> {
        let links = Arc::new(Links {
            slots: (0..net.len()).map(|_| Arc::default()).collect(),
            id,
            session_timeout,
            net,
            counters,
            poller,
        });
        for peer in 0..links.slots.len() {
            if peer == links.id.me.index() {
                continue;
            }
            let sink = PeerSink::<R, S> {
                me: links.id.me,
                peer: NodeId(peer as u8),
                slot: Arc::clone(&links.slots[peer]),
                counters: Arc::clone(&links.counters),
                _types: PhantomData,
            };
            if links
                .net
                .mailbox(NodeId(peer as u8))
                .set_sink(Box::new(sink))
                .is_err()
            {
                panic!("node {peer}'s outbox has a sink already: one set of links per net");
            }
            let l = Arc::clone(&links);
            std::thread::Builder::new()
                .name(format!("link-{peer}"))
                .spawn(move || l.run(NodeId(peer as u8)))
                .expect("spawn link thread");
        }
        links
    }

    /// What reads the node's connections.
    pub fn poller(&self) -> &Arc<NodePoller<R, S>> {
        &self.poller
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The transport's fault hook: cut (or restore) the link to `peer` in both directions.
    /// A cut link stays connected but drops every message either way (counted as dropped),
    /// as a partition between the two processes would. Unknown peers are ignored.
    pub fn cut(&self, peer: NodeId, cut: bool) {
        if let Some(slot) = self.slots.get(peer.index()) {
            slot.cut.store(cut, Ordering::Relaxed);
        }
    }

    fn log(&self, what: std::fmt::Arguments<'_>) {
        eprintln!("paxraft {}: {what}", self.id.me);
    }

    /// One peer's link, for the node's life.
    fn run(&self, peer: NodeId) {
        let outlet = &self.slots[peer.index()].outlet;
        let mut buf = Vec::new();
        let mut backoff = MIN_BACKOFF;
        let mut next_dial = Instant::now();
        let dials = self.id.me < peer;
        loop {
            let stream = if dials {
                if Instant::now() >= next_dial {
                    match self.dial(peer) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            if backoff == MIN_BACKOFF {
                                self.log(format_args!("cannot reach node {peer}: {e}"));
                            }
                            next_dial = Instant::now() + backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            None
                        }
                    }
                } else {
                    None
                }
            } else {
                lock(&self.slots[peer.index()].handed).take()
            };
            let Some(stream) = stream else {
                // Unreachable for now: sends are dropped, not kept (see the module docs),
                // by the outlet, which has no connection.
                if outlet.next(&mut buf, Instant::now() + IDLE_CHECK) == Next::Closed {
                    return;
                }
                continue;
            };
            backoff = MIN_BACKOFF;
            if self.connected(peer, stream, &mut buf) == Drained::Closed {
                return;
            }
        }
    }

    /// Carry the outlet's slow path over `stream` until it breaks (or is replaced), or the
    /// node shuts down.
    fn connected(&self, peer: NodeId, stream: TcpStream, buf: &mut Vec<u8>) -> Drained {
        let slot = &self.slots[peer.index()];
        let alive = Arc::new(AtomicBool::new(true));
        let (Ok(r), Ok(current), Ok(direct)) =
            (stream.try_clone(), stream.try_clone(), stream.try_clone())
        else {
            return Drained::Open;
        };
        if let Some(old) = lock(&slot.current).replace(current) {
            let _ = old.shutdown(Shutdown::Both);
        }
        // From here the node thread writes to the connection itself when it can.
        let stale = slot.outlet.attach(direct, &[], 0);
        Counters::add(&self.counters.dropped, stale);
        // From here the node's thread reads it.
        let end: Arc<dyn PeerEnd> = Arc::clone(slot) as Arc<dyn PeerEnd>;
        let conn = NodeConn::Peer {
            peer,
            alive: Arc::clone(&alive),
            end,
        };
        let Ok(reading) = self.poller.add(r, conn) else {
            Counters::add(&self.counters.dropped, slot.outlet.detach());
            return Drained::Open;
        };
        let result = loop {
            match slot.outlet.next(buf, Instant::now() + IDLE_CHECK) {
                Next::Closed => break Drained::Closed,
                Next::Broken => break Drained::Open,
                Next::Idle if !alive.load(Ordering::Relaxed) => break Drained::Open,
                Next::Idle => {}
                Next::Write { msgs } => {
                    if let Err(e) = stream.write_out(buf) {
                        self.log(format_args!("connection to node {peer} lost: {e}"));
                        Counters::add(&self.counters.dropped, msgs);
                        break Drained::Open;
                    }
                }
            }
        };
        // Taken off the poller before the outlet is detached, so that its end cannot fail
        // the next connection's outlet.
        let _ = stream.shutdown(Shutdown::Both);
        self.poller.remove(reading);
        Counters::add(&self.counters.dropped, slot.outlet.detach());
        result
    }

    /// Dial `peer` and run the dialer's half of the handshake.
    fn dial(&self, peer: NodeId) -> Result<TcpStream, String> {
        let addr = self.id.addrs[peer.index()];
        let mut s =
            TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT).map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mine = nonce();
        let hello: Frame<R::Msg, S> = Frame::Hello {
            cluster: self.id.cluster.clone(),
            node: self.id.me,
            nonce: mine,
            session_timeout: self.session_timeout,
        };
        frame::write(&mut s, &hello).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let answer: Frame<R::Msg, S> =
            frame::read(&mut s, &mut buf, MAX_FRAME).map_err(|e| e.to_string())?;
        let Frame::Challenge {
            node,
            proof,
            nonce: theirs,
        } = answer
        else {
            return Err(format!(
                "node {peer} answered with frame type {}",
                answer.type_of()
            ));
        };
        let secret = &self.id.secret;
        let cluster = &self.id.cluster;
        if node != peer || !secret.verify(Side::Acceptor, cluster, peer, self.id.me, &mine, &proof)
        {
            Counters::add(&self.counters.refused_peers, 1);
            return Err(format!(
                "{addr} failed admission: it claims node {node} and its proof does not check"
            ));
        }
        let proof = secret.prove(Side::Dialer, cluster, self.id.me, peer, &theirs);
        let f: Frame<R::Msg, S> = Frame::Proof { proof };
        frame::write(&mut s, &f).map_err(|e| e.to_string())?;
        s.set_read_timeout(None).map_err(|e| e.to_string())?;
        Counters::add(&self.counters.peer_conns, 1);
        Ok(s)
    }

    /// The acceptor's half of the handshake, for a connection whose first frame was a
    /// [`Frame::Hello`]: admitted, the connection goes to that peer's link; refused, it is
    /// closed and counted.
    pub fn admit(&self, mut s: TcpStream, hello: Hello<'_>) {
        let Hello {
            cluster,
            node,
            nonce: theirs,
            session_timeout,
        } = hello;
        let me = self.id.me;
        // The connection is closed as `s` drops on each return.
        let refuse = |why: String| {
            Counters::add(&self.counters.refused_peers, 1);
            self.log(format_args!("refused a peer connection: {why}"));
        };
        if cluster != self.id.cluster {
            return refuse(format!(
                "cluster {cluster:?}, this is {:?}",
                self.id.cluster
            ));
        }
        // Replicas that expire sessions at different points of the log diverge.
        if session_timeout != self.session_timeout {
            return refuse(format!(
                "node {node} expires sessions after {session_timeout} commands, this node after {} (--session-timeout must be the same on every node)",
                self.session_timeout
            ));
        }
        // Only configured nodes below this one dial it.
        if node.index() >= self.slots.len() || node >= me {
            return refuse(format!(
                "node {node} is not a configured peer that dials node {me}"
            ));
        }
        let secret = &self.id.secret;
        let mine = nonce();
        let challenge: Frame<R::Msg, S> = Frame::Challenge {
            node: me,
            proof: secret.prove(Side::Acceptor, cluster, me, node, theirs),
            nonce: mine,
        };
        if let Err(e) = frame::write(&mut s, &challenge) {
            return refuse(format!("node {node}: {e}"));
        }
        let mut buf = Vec::new();
        match frame::read::<R::Msg, S>(&mut s, &mut buf, MAX_FRAME) {
            Ok(Frame::Proof { proof })
                if secret.verify(Side::Dialer, cluster, node, me, &mine, &proof) => {}
            Ok(_) => return refuse(format!("node {node} failed its proof")),
            Err(e) => {
                if e.is_bad_frame() {
                    Counters::add(&self.counters.bad_frames, 1);
                }
                return refuse(format!("node {node}: {e}"));
            }
        }
        if s.set_read_timeout(None).is_err() {
            return;
        }
        let _ = s.set_nodelay(true);
        Counters::add(&self.counters.peer_conns, 1);
        let slot = &self.slots[node.index()];
        // The newest connection wins: close the one in use so the link takes this one.
        if let Some(old) = lock(&slot.handed).replace(s) {
            let _ = old.shutdown(Shutdown::Both);
        }
        if let Some(old) = lock(&slot.current).take() {
            let _ = old.shutdown(Shutdown::Both);
        }
    }
}
