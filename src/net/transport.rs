//! Peer links: one TCP connection per pair of nodes, carrying both directions.
//!
//! The lower id of a pair dials the higher (so each pair has one connection), after the
//! handshake of [`super::auth`]. A link is a thread per remote peer that owns that peer's
//! outbox (its mailbox in the node's [`Net`]): it drains everything queued, encodes it into
//! one buffer and writes it with one `write` (coalescing: under load a drain holds many
//! messages), and a reader thread per connection that pushes the peer's messages into the
//! local node's mailbox as [`Input::Msg`]. While a peer is unreachable its link drains the
//! outbox and drops what it held (counted): the protocols tolerate loss, stale messages are
//! worth nothing after a reconnect, and memory stays bounded by the outbox's capacity. The
//! dialer retries with doubling back-off (10 ms to 1 s); the acceptor takes the newest
//! admitted connection from that peer and closes the one it replaces.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paxraft_impls::sm::StateMachine;
use paxraft_impls::{NodeId, Replica};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::{nonce, Secret, Side};
use super::frame::{self, Frame, FrameOf, MAX_FRAME, NONCE};
use crate::runtime::{Cmd, Drained, Input, Net, Refused};

/// How long a handshake may take, and a dial may wait for the connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// First pause before redialing a peer; doubled up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between dials of an unreachable peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Capacity of a peer's outbox: a peer that does not keep up loses messages beyond it.
pub const OUTBOX: usize = 1 << 14;
/// How often an idle link looks for a broken or replaced connection.
const IDLE_CHECK: Duration = Duration::from_millis(50);
/// Read buffer per connection.
const READ_BUFFER: usize = 1 << 16;

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
pub struct Links<R: Replica<Cmd<S>>, S: StateMachine> {
    id: Identity,
    net: Arc<Net<R, S>>,
    counters: Arc<Counters>,
    slots: Vec<Arc<Slot>>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Links<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Links(node {}, {} nodes)", self.id.me, self.slots.len())
    }
}

/// A link's connection, as the acceptor hands it over and the link uses it.
#[derive(Default)]
struct Slot {
    /// An admitted connection waiting for the link thread.
    handed: Mutex<Option<TcpStream>>,
    /// A clone of the connection in use, so that a newer one can close it.
    current: Mutex<Option<TcpStream>>,
    /// The fault hook: drop every message to and from this peer (a partition).
    cut: AtomicBool,
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
    /// the outboxes). The threads end when their outbox is closed (the node shut down).
    pub fn start(id: Identity, net: Arc<Net<R, S>>, counters: Arc<Counters>) -> Arc<Self> {
        let links = Arc::new(Links {
            slots: (0..net.len()).map(|_| Arc::default()).collect(),
            id,
            net,
            counters,
        });
        for peer in 0..links.slots.len() {
            if peer == links.id.me.index() {
                continue;
            }
            let l = Arc::clone(&links);
            std::thread::Builder::new()
                .name(format!("link-{peer}"))
                .spawn(move || l.run(NodeId(peer as u8)))
                .expect("spawn link thread");
        }
        links
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
        let outbox = Arc::clone(self.net.mailbox(peer));
        let mut batch: Vec<Input<R, S>> = Vec::new();
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
                // Unreachable for now: what is queued is dropped, not kept (see the module
                // docs).
                if self.idle(&outbox, &mut batch, IDLE_CHECK) == Drained::Closed {
                    return;
                }
                continue;
            };
            backoff = MIN_BACKOFF;
            if self.connected(peer, stream, &outbox, &mut batch) == Drained::Closed {
                return;
            }
        }
    }

    /// Drain the outbox for up to `wait`, dropping what it held.
    fn idle(
        &self,
        outbox: &crate::runtime::Mailbox<Input<R, S>>,
        batch: &mut Vec<Input<R, S>>,
        wait: Duration,
    ) -> Drained {
        let d = outbox.drain(batch, Some(Instant::now() + wait));
        Counters::add(&self.counters.dropped, batch.len() as u64);
        batch.clear();
        d
    }

    /// Carry the outbox over `stream` until it breaks (or is replaced), or the outbox closes.
    fn connected(
        &self,
        peer: NodeId,
        stream: TcpStream,
        outbox: &crate::runtime::Mailbox<Input<R, S>>,
        batch: &mut Vec<Input<R, S>>,
    ) -> Drained {
        let alive = Arc::new(AtomicBool::new(true));
        let (Ok(reader), Ok(current)) = (stream.try_clone(), stream.try_clone()) else {
            return Drained::Open;
        };
        if let Some(old) = lock(&self.slots[peer.index()].current).replace(current) {
            let _ = old.shutdown(Shutdown::Both);
        }
        {
            let (net, counters, alive, slot) = (
                Arc::clone(&self.net),
                Arc::clone(&self.counters),
                Arc::clone(&alive),
                Arc::clone(&self.slots[peer.index()]),
            );
            let me = self.id.me;
            std::thread::Builder::new()
                .name(format!("read-{peer}"))
                .spawn(move || {
                    read_peer::<R, S>(me, peer, reader, &net, &counters, &alive, &slot.cut)
                })
                .expect("spawn reader thread");
        }
        let mut stream = stream;
        let mut buf = Vec::with_capacity(READ_BUFFER);
        let result = loop {
            let d = outbox.drain(batch, Some(Instant::now() + IDLE_CHECK));
            if d == Drained::Closed {
                break Drained::Closed;
            }
            if !alive.load(Ordering::Relaxed) {
                Counters::add(&self.counters.dropped, batch.len() as u64);
                batch.clear();
                break Drained::Open;
            }
            if batch.is_empty() {
                continue;
            }
            if self.slots[peer.index()].cut.load(Ordering::Relaxed) {
                Counters::add(&self.counters.dropped, batch.len() as u64);
                batch.clear();
                continue;
            }
            buf.clear();
            let mut sent = 0;
            for input in batch.drain(..) {
                if let Input::Msg { from, msg } = input {
                    let f: FrameOf<R::Msg, S> = Frame::Msg { from, msg };
                    match frame::encode(&f, &mut buf) {
                        Ok(()) => sent += 1,
                        Err(e) => {
                            // Too big to send: the peer would refuse it. Lost like any other.
                            Counters::add(&self.counters.dropped, 1);
                            self.log(format_args!("message to node {peer} not sent: {e}"));
                        }
                    }
                }
            }
            // One write for the whole drain.
            if let Err(e) = stream.write_all(&buf).and_then(|()| stream.flush()) {
                self.log(format_args!("connection to node {peer} lost: {e}"));
                Counters::add(&self.counters.dropped, sent);
                break Drained::Open;
            }
            Counters::add(&self.counters.msgs_out, sent);
            Counters::add(&self.counters.bytes_out, buf.len() as u64);
        };
        let _ = stream.shutdown(Shutdown::Both);
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
        let hello: FrameOf<R::Msg, S> = Frame::Hello {
            cluster: self.id.cluster.clone(),
            node: self.id.me,
            nonce: mine,
        };
        frame::write(&mut s, &hello).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let answer: FrameOf<R::Msg, S> =
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
        let f: FrameOf<R::Msg, S> = Frame::Proof { proof };
        frame::write(&mut s, &f).map_err(|e| e.to_string())?;
        s.set_read_timeout(None).map_err(|e| e.to_string())?;
        Counters::add(&self.counters.peer_conns, 1);
        Ok(s)
    }

    /// The acceptor's half of the handshake, for a connection whose first frame was a
    /// [`Frame::Hello`]: admitted, the connection goes to that peer's link; refused, it is
    /// closed and counted.
    pub fn admit(&self, mut s: TcpStream, cluster: &str, node: NodeId, theirs: &[u8; NONCE]) {
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
        // Only configured nodes below this one dial it.
        if node.index() >= self.slots.len() || node >= me {
            return refuse(format!(
                "node {node} is not a configured peer that dials node {me}"
            ));
        }
        let secret = &self.id.secret;
        let mine = nonce();
        let challenge: FrameOf<R::Msg, S> = Frame::Challenge {
            node: me,
            proof: secret.prove(Side::Acceptor, cluster, me, node, theirs),
            nonce: mine,
        };
        if let Err(e) = frame::write(&mut s, &challenge) {
            return refuse(format!("node {node}: {e}"));
        }
        let mut buf = Vec::new();
        match frame::read::<R::Msg, S::Op, S::Output>(&mut s, &mut buf, MAX_FRAME) {
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

/// Read an admitted peer's frames into node `me`'s mailbox until the connection ends or
/// sends something that is not a message from that peer; then mark the link broken.
fn read_peer<R, S>(
    me: NodeId,
    peer: NodeId,
    stream: TcpStream,
    net: &Net<R, S>,
    counters: &Counters,
    alive: &AtomicBool,
    cut: &AtomicBool,
) where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    let inbox = net.mailbox(me);
    let mut r = BufReader::with_capacity(READ_BUFFER, &stream);
    let mut buf = Vec::new();
    let mut got: Vec<Input<R, S>> = Vec::new();
    let why = loop {
        // One blocking read, then every whole frame already buffered: one push per batch.
        let mut next = frame::read::<R::Msg, S::Op, S::Output>(&mut r, &mut buf, MAX_FRAME)
            .map(|f| (f, frame::HEADER + buf.len()));
        let bad = loop {
            match next {
                Ok((Frame::Msg { from, msg }, len)) if from == peer => {
                    Counters::add(&counters.bytes_in, len as u64);
                    got.push(Input::Msg { from, msg });
                }
                Ok((other, _)) => {
                    break Some(format!(
                        "frame type {} from node {peer} on a peer link",
                        other.type_of()
                    ))
                }
                // A connection that ended is no bad frame: an empty reason, not counted.
                Err(e) if e.is_bad_frame() => break Some(e.to_string()),
                Err(_) => break Some(String::new()),
            }
            let buffered = r.buffer();
            next = match frame::split(buffered, MAX_FRAME) {
                Ok(Some((body, used))) => {
                    let f = frame::decode(body).map(|f| (f, used));
                    r.consume(used);
                    f
                }
                Ok(None) => break None,
                Err(e) => Err(e),
            };
        };
        let n = got.len() as u64;
        Counters::add(&counters.msgs_in, n);
        if cut.load(Ordering::Relaxed) {
            Counters::add(&counters.dropped, n);
            got.clear();
        }
        match inbox.push_many(std::mem::take(&mut got)) {
            Ok(()) => {}
            Err(Refused::Full(_)) => Counters::add(&counters.dropped, n),
            Err(Refused::Closed(_)) => break String::new(),
        }
        if let Some(why) = bad {
            break why;
        }
    };
    if !why.is_empty() {
        Counters::add(&counters.bad_frames, 1);
        eprintln!("paxraft {me}: closed the link to {peer}: {why}");
    }
    alive.store(false, Ordering::Relaxed);
    let _ = stream.shutdown(Shutdown::Both);
}
