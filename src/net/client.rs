//! A client of server processes: the runtime's [`Client`] (finds the leader, follows
//! redirects, resends with the same `(client, seq)` so a retry is applied once, answers every
//! request by its timeout) over a [`Net`] whose mailboxes are carried to the servers.
//!
//! Each server gets a connection thread that drains that server's mailbox into
//! [`Frame::Request`]s (one per drain) and a reader thread that pushes the server's
//! [`Frame::Reply`]s into the client's reply mailbox. A server that cannot be reached answers
//! [`Reply::Retry`] at once (so the client tries the next one), and is not dialed again for
//! [`REDIAL_AFTER`].

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxraft_impls::sm::StateMachine;
use paxraft_impls::Replica;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::frame::{self, Frame, FrameOf, MAX_FRAME};
use crate::runtime::{Client, ClientConfig, Cmd, Drained, Input, Mailbox, Net, Reply, ReplyBox};

/// How long a client waits for a connection to a server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A server that could not be reached is not dialed again for this long (its requests are
/// answered [`Reply::Retry`] meanwhile).
pub const REDIAL_AFTER: Duration = Duration::from_millis(50);
/// Requests queued for one server at most.
const QUEUE: usize = 1 << 16;

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
                std::thread::Builder::new()
                    .name(format!("client-link-{i}"))
                    .spawn(move || link::<R, S>(addr, &outbox))
                    .expect("spawn client link")
            })
            .collect();
        NetClient {
            client: Client::new(id, Arc::clone(&net), cfg),
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

/// One server's connection, for the client's life.
fn link<R, S>(addr: SocketAddr, outbox: &Mailbox<Input<R, S>>)
where
    R: Replica<Cmd<S>>,
    R::Msg: Serialize + DeserializeOwned,
    S: StateMachine,
{
    let mut inputs: Vec<Input<R, S>> = Vec::new();
    let mut reqs: Vec<Cmd<S>> = Vec::new();
    let mut conn: Option<(TcpStream, Arc<AtomicBool>, JoinHandle<()>)> = None;
    let mut failed_at: Option<Instant> = None;
    let mut buf = Vec::new();
    let close = |conn: &mut Option<(TcpStream, Arc<AtomicBool>, JoinHandle<()>)>| {
        if let Some((s, _, reader)) = conn.take() {
            let _ = s.shutdown(Shutdown::Both);
            let _ = reader.join();
        }
    };
    loop {
        if outbox.drain(&mut inputs, None) == Drained::Closed {
            close(&mut conn);
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
        if conn
            .as_ref()
            .is_some_and(|(_, alive, _)| !alive.load(Ordering::Relaxed))
        {
            close(&mut conn);
        }
        if conn.is_none() {
            if failed_at.is_some_and(|t| t.elapsed() < REDIAL_AFTER) {
                retry(&reply, &reqs);
                reqs.clear();
                continue;
            }
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                .and_then(|s| s.try_clone().map(|r| (s, r)))
            {
                Ok((s, r)) => {
                    let _ = s.set_nodelay(true);
                    failed_at = None;
                    let alive = Arc::new(AtomicBool::new(true));
                    let (a, b) = (Arc::clone(&alive), Arc::clone(&reply));
                    let reader = std::thread::Builder::new()
                        .name("client-reader".into())
                        .spawn(move || read_replies::<R, S>(r, &b, &a))
                        .expect("spawn client reader");
                    conn = Some((s, alive, reader));
                }
                Err(_) => {
                    failed_at = Some(Instant::now());
                    retry(&reply, &reqs);
                    reqs.clear();
                    continue;
                }
            }
        }
        let (s, _, _) = conn.as_mut().expect("connected above");
        buf.clear();
        let f: FrameOf<R::Msg, S> = Frame::Request {
            reqs: std::mem::take(&mut reqs),
        };
        let sent = frame::encode(&f, &mut buf).and_then(|()| s.write_all(&buf));
        if sent.is_err() {
            let Frame::Request { reqs: back } = f else {
                unreachable!()
            };
            retry(&reply, &back);
            close(&mut conn);
            failed_at = Some(Instant::now());
        }
    }
}

/// Push a server's answers into the client's mailbox until the connection ends.
fn read_replies<R, S>(s: TcpStream, reply: &ReplyBox<S>, alive: &AtomicBool)
where
    R: Replica<Cmd<S>>,
    R::Msg: DeserializeOwned,
    S: StateMachine,
{
    let mut r = BufReader::with_capacity(1 << 16, &s);
    let mut buf = Vec::new();
    while let Ok(Frame::Reply { replies }) =
        frame::read::<R::Msg, S::Op, S::Output>(&mut r, &mut buf, MAX_FRAME)
    {
        // A full mailbox drops them: the client resends, answered from the session.
        if let Err(crate::runtime::Refused::Closed(_)) =
            reply.push_many(replies.into_iter().map(|w| w.into_reply()).collect())
        {
            break;
        }
    }
    alive.store(false, Ordering::Relaxed);
    let _ = s.shutdown(Shutdown::Both);
}
