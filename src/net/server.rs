//! A server process: one node of a cluster, its peers in other processes.
//!
//! It listens on its configured address for both peers and clients: the first frame of a
//! connection says which ([`Frame::Hello`] starts a peer handshake, [`Frame::Request`] a
//! client's session), anything else is a bad frame and closes it. One port per node keeps
//! the configuration one address per node, for peers and clients alike. The node itself is
//! the runtime's ([`Cluster::hosting`]): the same loop, storage and clients' sessions as in
//! one process; the transport only carries its mailboxes.

use std::io::{Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paxraft_impls::sm::StateMachine;
use paxraft_impls::{NodeId, Replica};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::frame::{self, Frame, MAX_FRAME};
use super::inlet::READ_SPIN;
use super::outlet::{Conn, Next, Outlet, Sent, FLUSH_CHECK};
use super::poller::{NodeConn, NodeHandler, Poller, PollerSource};
use super::transport::{Counters, Hello, Identity, Links, OUTBOX};
use crate::runtime::{
    spin_for, Cluster, Cmd, FileStorage, Mailbox, MemStorage, Net, Refusal, Reply, ReplyBox,
    RuntimeConfig, Sink, Storage, NODE_MAILBOX,
};

/// Most client connections a server holds at once (and connections still in their first
/// frame): beyond it a new connection is closed at once and counted. Each client connection
/// costs a flusher thread.
pub const MAX_CONNECTIONS: usize = 256;
/// Capacity of a client connection's reply mailbox (a node drops answers beyond it; the
/// client's resend is answered from its session).
pub const CLIENT_REPLIES: usize = 1 << 16;
/// Bytes of encoded answers waiting for a client that does not read them: beyond it they are
/// dropped (its resends are answered from the session).
pub const CLIENT_REPLY_BYTES: usize = 1 << 20;
/// A client connection idle this long is closed (the client reconnects when it needs to).
pub const CLIENT_IDLE: Duration = Duration::from_secs(60);

/// Why a server did not start. Each is one line.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration does not hold together.
    #[error("{0}")]
    Config(String),
    /// The data directory belongs to another protocol, cluster or node.
    #[error("data directory {dir}: {why}")]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// What does not match.
        why: String,
    },
    /// An address could not be bound (in use, not local, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The node did not start (its storage did not open, ...).
    #[error("{0}")]
    Start(String),
}

/// Everything `paxraft serve` is told.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Who this node is and who its peers are.
    pub identity: Identity,
    /// The data directory.
    pub data: PathBuf,
    /// Where the status endpoint listens, if anywhere.
    pub status: Option<SocketAddr>,
    /// The runtime's settings (protocol timeouts, ...).
    pub runtime: RuntimeConfig,
    /// Whether the status endpoint takes fault requests (`/faults/cut/1,2`, `/faults/heal`):
    /// for tests, never for a deployment.
    pub fault_hooks: bool,
    /// Keep the node's writes in memory instead of in `data/log` (to measure the network
    /// alone, as the in-process runtime does by default): nothing survives the process, so
    /// such a node is never restarted (its data directory refuses a second start).
    pub memory: bool,
}

/// What a data directory records about who wrote it: a directory is never reused by another
/// protocol, cluster or node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DirMeta {
    protocol: String,
    cluster: String,
    node: u8,
    /// The node kept its writes in memory: they died with it.
    #[serde(default)]
    memory: bool,
    /// The session timeout its state machine expired sessions by (a directory written
    /// before sessions could expire has none: 0, never).
    #[serde(default)]
    session_timeout: u64,
}

/// The file in a data directory that records [`DirMeta`].
const META: &str = "paxraft.json";

/// Claim `dir` for this node: create it and its record, or check the record it has.
fn claim(dir: &Path, want: &DirMeta) -> Result<(), ServeError> {
    let err = |why: String| ServeError::DataDir {
        dir: dir.to_path_buf(),
        why,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let path = dir.join(META);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let have: DirMeta = serde_json::from_slice(&bytes)
                .map_err(|e| err(format!("{META} is corrupt: {e}")))?;
            if have.protocol != want.protocol {
                return Err(err(format!(
                    "written by protocol {}, not {}",
                    have.protocol, want.protocol
                )));
            }
            if have.cluster != want.cluster {
                return Err(err(format!(
                    "written by cluster {:?}, not {:?}",
                    have.cluster, want.cluster
                )));
            }
            if have.node != want.node {
                return Err(err(format!(
                    "written by node {}, not {}",
                    have.node, want.node
                )));
            }
            // Its log replayed under another timeout would expire other sessions than the
            // peers did (and than the answers its clients saw said).
            if have.session_timeout != want.session_timeout {
                return Err(err(format!(
                    "written with --session-timeout {}, not {}",
                    have.session_timeout, want.session_timeout
                )));
            }
            // A node that kept its log in memory forgot its votes and its acknowledged
            // entries when it stopped: rejoining would let it vote twice in a term or deny
            // what a quorum counted on it for.
            if have.memory || want.memory {
                return Err(err(
                    "a node ran here with --storage memory: its votes and log are gone, so it cannot rejoin (start a new cluster in a new directory)".into(),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = serde_json::to_vec_pretty(want).expect("plain data serialises");
            std::fs::write(&path, json).map_err(|e| err(e.to_string()))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// A running server: its node, its transport, its listeners.
pub struct Server<R: Replica<Cmd<S>>, S: StateMachine> {
    cluster: Arc<Mutex<Cluster<R, S>>>,
    counters: Arc<Counters>,
    net: Arc<Net<R, S>>,
    me: NodeId,
    /// The address the node listens on.
    pub addr: SocketAddr,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for Server<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server(node {} on {})", self.me, self.addr)
    }
}

/// The status endpoint's JSON for node `me`.
fn status_json<R: Replica<Cmd<S>>, S: StateMachine>(
    cluster: &Mutex<Cluster<R, S>>,
    net: &Net<R, S>,
    counters: &Counters,
    me: NodeId,
) -> serde_json::Value {
    let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
    let status = c.status(me.index());
    let (applied, _) = c.applied(me.index());
    let (live, expired) = c.sessions(me.index());
    drop(c);
    let mut counters = counters.to_json();
    counters["dropped"] = (counters["dropped"].as_u64().unwrap_or(0) + net.dropped()).into();
    serde_json::json!({
        "protocol": R::NAME,
        "node": me.0,
        "up": status.is_some(),
        "role": status.map(|s| format!("{:?}", s.role).to_lowercase()),
        "term": status.map(|s| s.term),
        "leader": status.and_then(|s| s.leader).map(|l| l.0),
        "commit": status.map(|s| s.commit),
        "last": status.map(|s| s.last),
        "snapshot": status.map(|s| s.snapshot),
        "applied": applied,
        "sessions": { "live": live, "expired": expired },
        "configuration": status.map(|s| s.config.to_string()),
        "counters": counters,
    })
}

impl<R, S> Server<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    R::Write: Serialize + DeserializeOwned,
    R::Durable: Serialize + DeserializeOwned,
    S: StateMachine,
{
    /// Bind, open the data directory, start the node and its links, and serve until the
    /// process ends or [`Server::shutdown`].
    pub fn start(cfg: ServeConfig) -> Result<Self, ServeError> {
        let id = &cfg.identity;
        let n = id.addrs.len();
        if id.me.index() >= n {
            return Err(ServeError::Config(format!(
                "node {} is not among the {n} peers",
                id.me
            )));
        }
        // Before anything is claimed: a bad flag must not leave a directory behind (a
        // memory-storage node's directory refuses every later start).
        cfg.runtime
            .protocol
            .validate(n)
            .map_err(|e| ServeError::Config(e.to_string()))?;
        let addr = id.addrs[id.me.index()];
        let listener =
            TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let status_listener = cfg
            .status
            .map(|a| TcpListener::bind(a).map_err(|source| ServeError::Bind { addr: a, source }))
            .transpose()?;
        claim(
            &cfg.data,
            &DirMeta {
                protocol: R::NAME.into(),
                cluster: id.cluster.clone(),
                node: id.me.0,
                memory: cfg.memory,
                session_timeout: cfg.runtime.session_timeout,
            },
        )?;
        let storage: Box<dyn Storage<R, Cmd<S>>> = if cfg.memory {
            Box::new(MemStorage::<R, Cmd<S>>::default())
        } else {
            Box::new(
                FileStorage::<R, Cmd<S>>::open(cfg.data.join("log")).map_err(|e| {
                    ServeError::DataDir {
                        dir: cfg.data.clone(),
                        why: e.to_string(),
                    }
                })?,
            )
        };
        let counters = Arc::new(Counters::default());
        let poller = Arc::new(
            Poller::new(NodeHandler::<R, S>::new(
                id.me,
                Arc::clone(&counters),
                CLIENT_IDLE,
            ))
            .map_err(|e| ServeError::Start(format!("epoll: {e}")))?,
        );
        let boxes = (0..n)
            .map(|i| {
                Arc::new(if i == id.me.index() {
                    // The node's thread reads its connections itself (`Poller`): it polls
                    // them as long as a connection's reader thread did (see `inlet`).
                    let spin = spin_for("PAXRAFT_NODE_SPIN_US", READ_SPIN);
                    let mine = Mailbox::with_spin(NODE_MAILBOX, spin);
                    if mine
                        .set_source(Box::new(PollerSource(Arc::clone(&poller))))
                        .is_err()
                    {
                        unreachable!("a new mailbox has no source");
                    }
                    mine
                } else {
                    // An outbox: the peer's sink (`Links::start`) takes every push, so its
                    // queue stays empty and nothing waits on it.
                    Mailbox::new(OUTBOX)
                })
            })
            .collect();
        let net = Arc::new(Net::with_boxes(boxes));
        // The links first: they give the peers' outboxes their sinks before the node can
        // send anything.
        let links = Links::start(
            cfg.identity.clone(),
            cfg.runtime.session_timeout,
            Arc::clone(&net),
            Arc::clone(&counters),
            poller,
        );
        let cluster = match Cluster::hosting(id.me, Arc::clone(&net), cfg.runtime.clone(), storage)
        {
            Ok(c) => Arc::new(Mutex::new(c)),
            Err(e) => {
                // Closing the outboxes ends the link threads.
                for i in 0..n {
                    net.mailbox(NodeId(i as u8)).close();
                }
                return Err(ServeError::Start(e.to_string()));
            }
        };
        let me = id.me;
        {
            let (net, counters, links) =
                (Arc::clone(&net), Arc::clone(&counters), Arc::clone(&links));
            std::thread::Builder::new()
                .name("accept".into())
                .spawn(move || accept_loop::<R, S>(listener, me, &net, &links, &counters))
                .expect("spawn accept thread");
        }
        let hooks = cfg.fault_hooks;
        if let Some(l) = status_listener {
            let (net, counters, cluster) = (
                Arc::clone(&net),
                Arc::clone(&counters),
                Arc::clone(&cluster),
            );
            std::thread::Builder::new()
                .name("status".into())
                .spawn(move || {
                    for conn in l.incoming().flatten() {
                        answer_http(conn, |path| {
                            if let Some(faults) = path.strip_prefix("/faults/") {
                                if !hooks {
                                    return (
                                        404,
                                        "fault hooks are off (serve --fault-hooks)".into(),
                                    );
                                }
                                return fault(&links, faults);
                            }
                            (200, status_json(&cluster, &net, &counters, me).to_string())
                        });
                    }
                })
                .expect("spawn status thread");
        }
        Ok(Server {
            cluster,
            counters,
            net,
            me,
            addr,
        })
    }

    /// The status endpoint's JSON.
    pub fn status(&self) -> serde_json::Value {
        status_json(&self.cluster, &self.net, &self.counters, self.me)
    }

    /// Stop the node: it finishes the step it is in (its effects carried out and synced),
    /// answers what is queued with a retry, and its links close.
    pub fn shutdown(&self) {
        self.cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown();
    }
}

/// A fault request's answer: `cut/I,J,...` cuts the links to those peers (both ways),
/// `heal` restores every link.
fn fault<R, S>(links: &Links<R, S>, what: &str) -> (u16, String)
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    if what == "heal" {
        for i in 0..=u8::MAX {
            links.cut(NodeId(i), false);
        }
        return (200, "{\"healed\":true}".into());
    }
    let Some(ids) = what.strip_prefix("cut/") else {
        return (404, format!("no fault {what:?}: cut/I,J,... or heal"));
    };
    let ids: Result<Vec<u8>, _> = ids.split(',').map(str::parse).collect();
    match ids {
        Ok(ids) => {
            for &i in &ids {
                links.cut(NodeId(i), true);
            }
            (200, format!("{{\"cut\":{ids:?}}}"))
        }
        Err(_) => (400, format!("{what:?}: expected cut/I,J,...")),
    }
}

/// Answer one HTTP request on the status endpoint with `route(path)`'s code and body. The
/// endpoint has a page and, for tests, fault hooks: hand-written (a dozen lines) rather
/// than an HTTP server crate, as nothing else in paxraft speaks HTTP.
fn answer_http(mut conn: TcpStream, route: impl FnOnce(&str) -> (u16, String)) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    // Read until the request line is whole (it may come in several segments), at most
    // 4 KiB; the rest of the request is not needed.
    let mut req = [0u8; 4096];
    let mut n = 0;
    while n < req.len() && !req[..n].windows(2).any(|w| w == b"\r\n") {
        match conn.read(&mut req[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let line = String::from_utf8_lossy(&req[..n]);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (code, body) = route(path);
    let reason = if code == 200 { "OK" } else { "Error" };
    let _ = write!(
        conn,
        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}\n",
        body.len() + 1
    );
    let _ = conn.shutdown(Shutdown::Both);
}

/// Accept connections forever; each gets a thread that reads its first frame and serves it
/// as a peer or a client.
fn accept_loop<R, S>(
    listener: TcpListener,
    me: NodeId,
    net: &Arc<Net<R, S>>,
    links: &Arc<Links<R, S>>,
    counters: &Arc<Counters>,
) where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    // Client connections held open (a peer's is the link's, once admitted).
    let live = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if live.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            live.fetch_sub(1, Ordering::Relaxed);
            Counters::add(&counters.refused_conns, 1);
            let _ = conn.shutdown(Shutdown::Both);
            continue;
        }
        // Held from here: released with the closure if the thread cannot start.
        let held = Held(Arc::clone(&live));
        let (net, links, c) = (Arc::clone(net), Arc::clone(links), Arc::clone(counters));
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || first_frame::<R, S>(conn, me, &net, &links, &c, held));
        if spawned.is_err() {
            Counters::add(&counters.refused_conns, 1);
        }
    }
}

/// One connection counted against [`MAX_CONNECTIONS`], until dropped.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Read a new connection's first frame (within the handshake timeout) and serve it.
fn first_frame<R, S>(
    mut conn: TcpStream,
    me: NodeId,
    net: &Arc<Net<R, S>>,
    links: &Links<R, S>,
    counters: &Counters,
    held: Held,
) where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    let _ = conn.set_nodelay(true);
    if conn
        .set_read_timeout(Some(super::transport::HANDSHAKE_TIMEOUT))
        .is_err()
    {
        return;
    }
    let mut buf = Vec::new();
    match frame::read::<R::Msg, S>(&mut conn, &mut buf, MAX_FRAME) {
        Ok(Frame::Hello {
            cluster,
            node,
            nonce,
            session_timeout,
        }) => links.admit(
            conn,
            Hello {
                cluster: &cluster,
                node,
                nonce: &nonce,
                session_timeout,
            },
        ),
        Ok(Frame::Request { reqs }) => {
            Counters::add(&counters.client_conns, 1);
            serve_client::<R, S>(conn, me, net, links, counters, reqs, held);
        }
        Ok(other) => {
            Counters::add(&counters.bad_frames, 1);
            eprintln!(
                "paxraft {me}: closed a connection that opened with frame type {}",
                other.type_of()
            );
        }
        Err(e) => {
            if e.is_bad_frame() {
                Counters::add(&counters.bad_frames, 1);
                eprintln!("paxraft {me}: closed a connection: {e}");
            }
        }
    }
}

/// Serve one client connection: its requests go to the node as proposals (the first frame's
/// from here, the rest read by the node's own thread, [`Poller`]), with this connection's
/// reply mailbox, whose sink writes the node's answers to the connection from the node's
/// thread; a writer thread finishes what the socket did not take at once, and ends when the
/// connection is closed (which closes the reply mailbox).
fn serve_client<R, S>(
    conn: TcpStream,
    me: NodeId,
    net: &Net<R, S>,
    links: &Links<R, S>,
    counters: &Counters,
    first: Vec<Cmd<S>>,
    held: Held,
) where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    let replies: ReplyBox<S> = Arc::new(Mailbox::new(CLIENT_REPLIES));
    let (Ok(out), Ok(direct)) = (conn.try_clone(), conn.try_clone()) else {
        return;
    };
    let outlet = Arc::new(Outlet::new(CLIENT_REPLY_BYTES));
    outlet.attach(direct, &[], 0);
    let sink = ReplySink::<R, S> {
        outlet: Arc::clone(&outlet),
        _types: PhantomData,
    };
    if replies.set_sink(Box::new(sink)).is_err() {
        unreachable!("a new mailbox has no sink");
    }
    let writer = std::thread::Builder::new()
        .name("client-writer".into())
        .spawn(move || {
            let mut buf = Vec::new();
            while let Next::Write { .. } | Next::Idle =
                outlet.next(&mut buf, Instant::now() + FLUSH_CHECK)
            {
                if out.write_out(&buf).is_err() {
                    break;
                }
            }
            outlet.close();
            let _ = out.shutdown(Shutdown::Both);
        });
    if writer.is_err() {
        return;
    }
    Counters::add(&counters.requests, first.len() as u64);
    if let Err(back) = net.propose(me, first, Arc::clone(&replies)) {
        // The node is down or full: the client tries elsewhere.
        let retry = back
            .into_iter()
            .map(|r| Reply::Retry { seq: r.seq })
            .collect();
        let _ = replies.push_many(retry);
    }
    let conn_data = NodeConn::Client {
        replies,
        held: Box::new(held),
    };
    if let Err(NodeConn::Client { replies, .. }) = links.poller().add(conn, conn_data) {
        // The node is shutting down: the writer thread ends with the reply mailbox.
        replies.close();
    }
}

/// A client connection's answers: its reply mailbox's [`Sink`], which encodes them on the
/// node's thread into one frame per push and hands it to the connection's [`Outlet`].
struct ReplySink<R, S> {
    outlet: Arc<Outlet>,
    _types: PhantomData<fn() -> (R, S)>,
}

impl<R, S> Sink<Reply<S>> for ReplySink<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize,
    S: StateMachine,
{
    fn push(&self, items: &mut Vec<Reply<S>>) -> Result<bool, Refusal> {
        let taken = self.outlet.send(items.len() as u64, |buf| {
            let f: Frame<R::Msg, S> = Frame::Reply {
                replies: std::mem::take(items),
            };
            // Too big a frame: not sent; the client resends and is answered from the
            // session.
            let _ = frame::encode(&f, buf);
        });
        match taken {
            Sent::Taken => Ok(true),
            Sent::Full => Err(Refusal::Full),
            // The connection is gone: so is its client, until it reconnects and resends.
            Sent::Down | Sent::Lost | Sent::Closed => Err(Refusal::Closed),
        }
    }

    fn close(&self) {
        self.outlet.close();
    }
}

/// Wait until `stop` is set (by a signal), checking every few milliseconds; `deadline`
/// bounds the wait if given.
pub fn wait_for(stop: &AtomicBool, deadline: Option<Instant>) {
    while !stop.load(Ordering::Relaxed) && deadline.map_or(true, |d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(memory: bool) -> DirMeta {
        DirMeta {
            protocol: "raft".into(),
            cluster: "paxraft".into(),
            node: 0,
            memory,
            session_timeout: 0,
        }
    }

    /// A directory is claimed once by a node that keeps its log in memory, and never again:
    /// neither by a restart in memory nor on file (its votes and log died with it); a file
    /// node's directory is claimed again by its restarts, but not by a node in memory.
    #[test]
    fn a_node_that_kept_its_log_in_memory_never_rejoins() {
        let root = std::env::temp_dir().join(format!("paxraft-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (mem, file) = (root.join("mem"), root.join("file"));
        claim(&mem, &meta(true)).expect("a fresh directory");
        for again in [true, false] {
            let e = claim(&mem, &meta(again)).unwrap_err().to_string();
            assert!(
                e.contains("--storage memory") && e.contains("cannot rejoin"),
                "{e}"
            );
        }
        claim(&file, &meta(false)).expect("a fresh directory");
        claim(&file, &meta(false)).expect("a restart on file");
        let e = claim(&file, &meta(true)).unwrap_err().to_string();
        assert!(e.contains("cannot rejoin"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A directory keeps the session timeout it was written with: its log replayed under
    /// another would expire other sessions than its peers did. A record from before sessions
    /// could expire has none, and reads as 0 (never), which is what those nodes did.
    #[test]
    fn a_directory_restarts_only_under_its_session_timeout() {
        let root = std::env::temp_dir().join(format!("paxraft-claim-st-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let expiring = DirMeta {
            session_timeout: 100,
            ..meta(false)
        };
        claim(&root, &expiring).expect("a fresh directory");
        claim(&root, &expiring).expect("a restart under the same timeout");
        let e = claim(&root, &meta(false)).unwrap_err().to_string();
        assert!(
            e.ends_with("written with --session-timeout 100, not 0"),
            "{e}"
        );
        let old = r#"{"protocol": "raft", "cluster": "paxraft", "node": 0, "memory": false}"#;
        std::fs::write(root.join(META), old).unwrap();
        claim(&root, &meta(false)).expect("an old record: never expired");
        let e = claim(&root, &expiring).unwrap_err().to_string();
        assert!(
            e.ends_with("written with --session-timeout 0, not 100"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
