//! A client of server processes: the runtime's [`Client`] (finds the leader, follows
//! redirects, resends with the same `(client, seq)` so a retry is applied once, answers every
//! request by its timeout) over a [`Net`] whose mailboxes are carried to the servers.
//!
//! While a server's connection is up, the client's own thread writes each request to it
//! (one [`Frame::Request`] per send, through the connection's [`Outlet`]) and reads the
//! server's [`Frame::Reply`]s from it as it waits for answers (its reply mailbox's source is a
//! [`Poller`] over the connections); each server has a link thread that dials when a request
//! finds no connection and writes what the socket did not take at once. A server that cannot
//! be reached answers [`Reply::Retry`] at once (so the client tries the next one), and is not
//! dialed again for [`REDIAL_AFTER`].

use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxraft_impls::sm::StateMachine;
use paxraft_impls::Replica;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::frame::{self, Frame, MAX_FRAME};
use super::inlet::{Inlet, READ_SPIN};
use super::outlet::{Conn, Next, Outlet, Sent, FLUSH_CHECK};
use super::poller::{Handler, Poller, PollerSource, ReplyHandler, ServerEnd};
use crate::runtime::{
    spin_for, Client, ClientConfig, Cmd, Drained, Input, Mailbox, Net, Refusal, Reply, ReplyBox,
    Sink,
};

/// How long a client waits for a connection to a server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A server that could not be reached is not dialed again for this long (its requests are
/// answered [`Reply::Retry`] meanwhile).
pub const REDIAL_AFTER: Duration = Duration::from_millis(50);
/// Requests queued for one server at most while it is being dialed.
const QUEUE: usize = 1 << 16;
/// The largest operation a network client sends, encoded: a frame's maximum less room for
/// the frame's type, the request's client id, sequence number and acknowledgement (at most
/// 31 bytes as varints) and a batch's length. A bigger one gets [`Error::TooLarge`] at once
/// (it could not be carried, and would time out).
///
/// [`Error::TooLarge`]: crate::runtime::Error::TooLarge
pub const MAX_OP_BYTES: usize = MAX_FRAME - 64;
/// Bytes of encoded requests waiting for a server that does not read them: beyond it a
/// request is refused at once (the client tries another server).
const REQUEST_BYTES: usize = 4 << 20;

/// A [`Client`] of server processes (dereferences to it), with its connection threads,
/// which end when it is dropped.
pub struct NetClient<R: Replica<Cmd<S>>, S: StateMachine> {
    client: Client<R, S>,
    net: Arc<Net<R, S>>,
    threads: Vec<JoinHandle<()>>,
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::fmt::Debug for NetClient<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NetClient({:?})", self.client)
    }
}

impl<R, S> NetClient<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    /// A client with session id `id` (unique among the cluster's clients: see
    /// [`NetClient::random_id`]) of the servers at `addrs`, node `i` at index `i`.
    pub fn connect(id: u64, addrs: &[SocketAddr], cfg: ClientConfig) -> Self {
        // The client's thread reads its connections itself as it waits for replies; without
        // an epoll instance (out of descriptors), a reader thread per connection does.
        let poller = Poller::new(ReplyHandler::<R, S>::default())
            .map(Arc::new)
            .ok();
        Self::connect_with(id, addrs, cfg, poller)
    }

    /// [`NetClient::connect`] with a reader thread per connection, polling its socket before
    /// it blocks ([`super::inlet`]): what a client falls back to when it cannot make an epoll
    /// instance.
    pub fn connect_threaded(id: u64, addrs: &[SocketAddr], cfg: ClientConfig) -> Self {
        Self::connect_with(id, addrs, cfg, None)
    }

    fn connect_with(
        id: u64,
        addrs: &[SocketAddr],
        cfg: ClientConfig,
        poller: Option<Arc<Poller<ReplyHandler<R, S>>>>,
    ) -> Self {
        let boxes = addrs
            .iter()
            .map(|_| Arc::new(Mailbox::new(QUEUE)))
            .collect();
        let net = Arc::new(Net::with_boxes(boxes));
        let threads = addrs
            .iter()
            .enumerate()
            .map(|(i, &addr)| {
                let outbox = Arc::clone(net.mailbox(paxraft_impls::NodeId(i as u8)));
                let outlet = Arc::new(Outlet::new(REQUEST_BYTES));
                let sink = RequestSink::<R, S> {
                    outlet: Arc::clone(&outlet),
                    _types: PhantomData,
                };
                if outbox.set_sink(Box::new(sink)).is_err() {
                    unreachable!("a new mailbox has no sink");
                }
                let poller = poller.clone();
                std::thread::Builder::new()
                    .name(format!("client-link-{i}"))
                    .spawn(move || link::<R, S>(addr, &outbox, &outlet, poller.as_deref()))
                    .expect("spawn client link")
            })
            .collect();
        let mut client = Client::new(id, Arc::clone(&net), cfg);
        client.limit_op_bytes(MAX_OP_BYTES);
        if let Some(p) = poller {
            let spin = spin_for("PAXRAFT_CLIENT_SPIN_US", READ_SPIN);
            client.read_through(Box::new(PollerSource(p)), spin);
        }
        NetClient {
            client,
            net,
            threads,
        }
    }

    /// A session id for a client that cannot coordinate with the others: random, 62 bits,
    /// so two clients share one with negligible probability.
    pub fn random_id() -> u64 {
        (rand::random::<u64>() >> 2).max(1)
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Deref for NetClient<R, S> {
    type Target = Client<R, S>;
    fn deref(&self) -> &Client<R, S> {
        &self.client
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> DerefMut for NetClient<R, S> {
    fn deref_mut(&mut self) -> &mut Client<R, S> {
        &mut self.client
    }
}

// The benchmarks drive a `Client` or anything that lends one (`BorrowMut`).
impl<R: Replica<Cmd<S>>, S: StateMachine> std::borrow::Borrow<Client<R, S>> for NetClient<R, S> {
    fn borrow(&self) -> &Client<R, S> {
        &self.client
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> std::borrow::BorrowMut<Client<R, S>> for NetClient<R, S> {
    fn borrow_mut(&mut self) -> &mut Client<R, S> {
        &mut self.client
    }
}

impl<R: Replica<Cmd<S>>, S: StateMachine> Drop for NetClient<R, S> {
    fn drop(&mut self) {
        for i in 0..self.net.len() {
            self.net.mailbox(paxraft_impls::NodeId(i as u8)).close();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Answer `Retry` to requests that could not be sent.
fn retry<S: StateMachine>(reply: &ReplyBox<S>, reqs: &[Cmd<S>]) {
    let _ = reply.push_many(reqs.iter().map(|r| Reply::Retry { seq: r.seq }).collect());
}

/// Hand requests to a server's outlet as one [`Frame::Request`]. Requests it could not
/// take come back with the reason; those lost with a broken connection are answered
/// [`Reply::Retry`] (the client tries the next server).
#[allow(clippy::type_complexity)]
fn send_requests<R, S>(
    outlet: &Outlet,
    reqs: Vec<Cmd<S>>,
    reply: ReplyBox<S>,
) -> Result<(), (Vec<Cmd<S>>, ReplyBox<S>, Sent)>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize,
    S: StateMachine,
{
    let mut reqs = Some(reqs);
    let taken = outlet.send(0, |buf| {
        reqs = reqs.take().map(|r| encode_requests::<R, S>(r, buf));
    });
    let reqs = reqs.expect("encode_requests hands the requests back");
    match taken {
        Sent::Taken => Ok(()),
        Sent::Lost => {
            retry(&reply, &reqs);
            Ok(())
        }
        why => Err((reqs, reply, why)),
    }
}

/// Append `reqs` to `buf` as one [`Frame::Request`], or, when that is too big for a frame,
/// as a frame per request (each fits: the client refuses operations over [`MAX_OP_BYTES`]).
/// Hands the requests back.
fn encode_requests<R, S>(reqs: Vec<Cmd<S>>, buf: &mut Vec<u8>) -> Vec<Cmd<S>>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize,
    S: StateMachine,
{
    let f: Frame<R::Msg, S> = Frame::Request { reqs };
    let whole = frame::encode(&f, buf);
    let Frame::Request { reqs } = f else {
        unreachable!("built above")
    };
    if whole.is_err() {
        for r in &reqs {
            let one: Frame<R::Msg, S> = Frame::Request {
                reqs: vec![r.clone()],
            };
            let _ = frame::encode(&one, buf);
        }
    }
    reqs
}

/// A server's requests: its mailbox's [`Sink`], which writes each proposal on the client's
/// own thread while the connection is up, and leaves it queued for the link thread (which
/// dials) while it is not.
struct RequestSink<R, S> {
    outlet: Arc<Outlet>,
    _types: PhantomData<fn() -> (R, S)>,
}

impl<R, S> Sink<Input<R, S>> for RequestSink<R, S>
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize,
    S: StateMachine,
{
    fn push(&self, items: &mut Vec<Input<R, S>>) -> Result<bool, Refusal> {
        // The client pushes one proposal at a time ([`Net::propose`]).
        let [Input::Propose { .. }] = items.as_slice() else {
            return Ok(false);
        };
        let Some(Input::Propose { reqs, reply }) = items.pop() else {
            unreachable!("matched above")
        };
        let Err((reqs, reply, why)) = send_requests::<R, S>(&self.outlet, reqs, reply) else {
            return Ok(true);
        };
        items.push(Input::Propose { reqs, reply });
        match why {
            Sent::Full => Err(Refusal::Full),
            Sent::Closed => Err(Refusal::Closed),
            _ => Ok(false),
        }
    }

    fn close(&self) {
        self.outlet.close();
    }
}

/// One server's connection, for the client's life: it dials when a request finds no
/// connection (and answers [`Reply::Retry`] if it cannot), then finishes the writes the
/// client's thread could not complete at once.
fn link<R, S>(
    addr: SocketAddr,
    outbox: &Mailbox<Input<R, S>>,
    outlet: &Arc<Outlet>,
    poller: Option<&Poller<ReplyHandler<R, S>>>,
) where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    let mut inputs: Vec<Input<R, S>> = Vec::new();
    let mut reqs: Vec<Cmd<S>> = Vec::new();
    let mut failed_at: Option<Instant> = None;
    let mut buf = Vec::new();
    loop {
        if outbox.drain(&mut inputs, None) == Drained::Closed {
            return;
        }
        // One client per net: every proposal carries the same reply mailbox.
        let mut reply = None;
        for input in inputs.drain(..) {
            if let Input::Propose { reqs: r, reply: b } = input {
                reqs.extend(r);
                reply = Some(b);
            }
        }
        let Some(reply) = reply else { continue };
        if failed_at.is_some_and(|t| t.elapsed() < REDIAL_AFTER) {
            retry(&reply, &reqs);
            reqs.clear();
            continue;
        }
        let conn = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).and_then(|s| {
            let (r, d) = (s.try_clone()?, s.try_clone()?);
            Ok((s, r, d))
        });
        let Ok((s, r, direct)) = conn else {
            failed_at = Some(Instant::now());
            retry(&reply, &reqs);
            reqs.clear();
            continue;
        };
        let _ = s.set_nodelay(true);
        failed_at = None;
        let reader = match poller {
            Some(p) => {
                let o = Arc::clone(outlet);
                let end: ServerEnd = Arc::new(move || o.fail());
                match p.add(r, end) {
                    Ok(i) => Reader::Polled(p, i),
                    // Not registered (out of resources): as if the server could not be
                    // reached, so these requests are answered and the next ones redial.
                    Err(_) => {
                        failed_at = Some(Instant::now());
                        retry(&reply, &reqs);
                        reqs.clear();
                        continue;
                    }
                }
            }
            None => {
                let (reply, outlet) = (Arc::clone(&reply), Arc::clone(outlet));
                Reader::Thread(
                    std::thread::Builder::new()
                        .name("client-reader".into())
                        .spawn(move || {
                            read_replies::<R, S>(r, &reply);
                            outlet.fail();
                        })
                        .expect("spawn client reader"),
                )
            }
        };
        buf.clear();
        reqs = encode_requests::<R, S>(reqs, &mut buf);
        reqs.clear();
        // From here the client's thread writes its requests itself when it can.
        outlet.attach(direct, &buf, 0);
        let closed = loop {
            // Requests queued while the connection was being made (or that met a full
            // buffer) go out behind what is pending.
            if outbox.drain(&mut inputs, Some(Instant::now())) == Drained::Closed {
                break true;
            }
            for input in inputs.drain(..) {
                if let Input::Propose { reqs, reply } = input {
                    if let Err((reqs, reply, _)) = send_requests::<R, S>(outlet, reqs, reply) {
                        retry(&reply, &reqs);
                    }
                }
            }
            match outlet.next(&mut buf, Instant::now() + FLUSH_CHECK) {
                Next::Closed => break true,
                Next::Broken => break false,
                Next::Idle => {}
                Next::Write { .. } => {
                    if s.write_out(&buf).is_err() {
                        break false;
                    }
                }
            }
        };
        // The reader stopped first: it marks the outlet failed as it ends.
        let _ = s.shutdown(Shutdown::Both);
        match reader {
            Reader::Polled(p, i) => p.remove(i),
            Reader::Thread(t) => {
                let _ = t.join();
            }
        }
        outlet.detach();
        if closed {
            return;
        }
    }
}

/// Who reads a server connection: the client's thread through the poller (the
/// connection's handle there), or a reader thread of its own.
enum Reader<'a, H: Handler> {
    Polled(&'a Poller<H>, usize),
    Thread(JoinHandle<()>),
}

/// Push a server's answers into the client's mailbox until the connection ends.
fn read_replies<R, S>(s: TcpStream, reply: &ReplyBox<S>)
where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    let mut r = Inlet::buffered(&s);
    let mut buf = Vec::new();
    while let Ok(Frame::Reply { replies }) = frame::read::<R::Msg, S>(&mut r, &mut buf, MAX_FRAME) {
        // A full mailbox drops them: the client resends, answered from the session.
        if let Err(crate::runtime::Refused::Closed(_)) = reply.push_many(replies) {
            break;
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Error;
    use paxraft_impls::raft::Raft;
    use paxraft_impls::sm::{Kv, KvOp};

    /// An operation a frame cannot carry is refused at once, before anything is dialed or
    /// sent (the servers here do not even exist), rather than lost and timed out.
    #[test]
    fn an_operation_too_big_for_a_frame_is_refused_before_it_is_sent() {
        let nowhere: Vec<SocketAddr> = (0..3)
            .map(|_| "127.0.0.1:9".parse().expect("an address"))
            .collect();
        let mut c = NetClient::<Raft<Cmd<Kv>>, Kv>::connect(7, &nowhere, ClientConfig::default());
        let big = KvOp::Put(1, vec![0; MAX_OP_BYTES]);
        match c.send(big) {
            Err(Error::TooLarge { bytes, max }) => {
                assert_eq!(max, MAX_OP_BYTES);
                assert!(bytes > MAX_OP_BYTES, "{bytes}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(c.outstanding(), 0, "nothing was sent");
        let e = c
            .submit(KvOp::Put(1, vec![0; MAX_FRAME + 1]))
            .expect_err("refused");
        assert!(e.to_string().contains("over the limit of"), "{e}");
    }
}
