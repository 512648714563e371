//! A real network: server processes that each host one node of a cluster, over TCP.
//!
//! * [`frame`]: the wire format (length-prefixed postcard frames) and its decoder, which
//!   turns every malformed, oversized or unknown frame into a typed error.
//! * [`auth`]: peer admission (cluster id, node id, HMAC challenge-response with a shared
//!   secret).
//! * [`transport`]: one connection per pair of nodes, reconnecting with back-off, written
//!   by the node's own thread when the socket takes it, bounded buffers that drop (and count)
//!   what a slow or absent peer cannot take.
//! * [`poller`]: connections read by the thread that acts on what they carry (a server
//!   node's peers and clients, by the node's thread; a client's servers, by the client's):
//!   that thread's mailbox [`Source`](crate::runtime::Source), one `epoll` (mio) over the
//!   connections and the mailbox, so that a frame goes from the socket to its consumer with
//!   no thread hand-off.
//! * [`inlet`]: a blocking read that polls the socket for a while first, for a client's
//!   reader threads when no epoll instance could be made (a wake-up from a blocking read was
//!   most of a request's latency over loopback).
//! * [`outlet`]: one connection's outgoing frames, written by the producing thread (node or
//!   client) when nothing is pending, else by the connection's flusher thread, in order.
//! * [`server`]: `paxraft serve`: the runtime's node loop ([`Cluster::hosting`](crate::runtime::Cluster::hosting))
//!   with file storage, peers and clients on one port, a JSON status endpoint.
//! * [`client`]: the runtime's client over connections to the servers.
//!
//! The protocol cores are untouched: a node's peers are mailboxes in its
//! [`Net`](crate::runtime::Net), and a remote peer's mailbox has a
//! [`Sink`](crate::runtime::Sink) that writes what the node pushes to that peer's connection.
//!
//! Threads and one readiness loop per consumer, not an async runtime: the runtime's node
//! loop, mailboxes and clients are blocking (and loom-checked). A server's node thread (and a
//! client's thread) waits in `epoll` for its connections or its mailbox, whichever comes
//! first, and reads both itself; a
//! connection's writes come from the thread that produced them, with a flusher thread per
//! connection for what the socket did not take at once; client connections are bounded
//! ([`server::MAX_CONNECTIONS`]). There is no bridge between an executor and the blocking
//! mailboxes, and no async runtime in the build.

// Under `--cfg loom` only the outlet, which its race test (tests/loom_outlet.rs) needs: the
// rest needs the dependencies that build leaves out.
#[cfg(not(loom))]
pub mod auth;
#[cfg(not(loom))]
pub mod client;
#[cfg(not(loom))]
pub mod frame;
#[cfg(not(loom))]
pub mod inlet;
pub mod outlet;
#[cfg(not(loom))]
pub mod poller;
#[cfg(not(loom))]
pub mod server;
#[cfg(not(loom))]
pub mod transport;

use std::net::{SocketAddr, ToSocketAddrs};

/// Parse a cluster's addresses, `0=host:port,1=host:port,...`: every id from 0 to n-1 once,
/// in any order. Returns the addresses, node `i`'s at index `i`.
pub fn parse_peers(s: &str) -> Result<Vec<SocketAddr>, String> {
    let mut found: Vec<Option<SocketAddr>> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not ID=HOST:PORT"))?;
        let id: usize = id
            .trim()
            .parse()
            .map_err(|_| format!("{id:?} in {part:?} is not a node id"))?;
        if id > 63 {
            return Err(format!("node id {id} is too large (at most 63)"));
        }
        let addr = addr
            .trim()
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("{addr:?} is not a HOST:PORT address"))?;
        if found.len() <= id {
            found.resize(id + 1, None);
        }
        if found[id].replace(addr).is_some() {
            return Err(format!("node {id} is given twice"));
        }
    }
    if found.is_empty() {
        return Err("no peers given".into());
    }
    found
        .iter()
        .enumerate()
        .map(|(i, a)| a.ok_or_else(|| format!("node {i} has no address (ids run 0 to n-1)")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_in_any_order_and_bad_lists_say_why() {
        let p = parse_peers("1=127.0.0.1:7001,0=127.0.0.1:7000").unwrap();
        assert_eq!(
            p,
            [
                "127.0.0.1:7000".parse().unwrap(),
                "127.0.0.1:7001".parse().unwrap()
            ]
        );
        for (bad, why) in [
            ("0=127.0.0.1:7000,0=127.0.0.1:7001", "given twice"),
            ("0=127.0.0.1:7000,2=127.0.0.1:7001", "node 1 has no address"),
            ("0=nowhere", "not a HOST:PORT"),
            ("x=127.0.0.1:1", "not a node id"),
            ("127.0.0.1:1", "not ID=HOST:PORT"),
            ("", "no peers"),
        ] {
            let e = parse_peers(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
