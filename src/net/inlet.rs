//! A connection's incoming bytes: a blocking read that first polls the socket for a while.
//!
//! Connections are read by the thread that consumes them ([`super::poller`]); a client that
//! could not make an epoll instance falls back to a reader thread per server connection,
//! blocked in `read` on it. On the
//! 2-core VMs this project is measured on, a thread woken from a blocking read pays for the
//! wake-up more than for anything the request then does: a 32-byte TCP ping-pong between two
//! threads over loopback takes 73-79 µs a round trip (p50) when both block in `read`, and
//! 10 µs when both poll with `MSG_DONTWAIT` (measured side by side, 2026-12-04). A request
//! over the network crosses four connections (client, leader, follower, leader, client), so
//! these wake-ups were most of a single client's latency.
//!
//! So a reader that has just taken a frame polls its socket, non-blocking and yielding the
//! core between polls, for [`READ_SPIN`] before it blocks again: under a steady stream of
//! requests the next frame is taken without a wake-up, and an idle connection costs nothing
//! once the spin is over (the node's mailbox does the same, [`crate::runtime::NODE_SPIN`]).

use std::io::{self, BufReader, Read};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a connection's reader polls before it blocks; `PAXRAFT_READ_SPIN_US` overrides
/// (0: block at once). Measured on 2 cores, 3 server processes and one client with one
/// request outstanding (`paxraft cluster --local 3 --bench --clients 1 --outstanding 1`,
/// 4-6 rounds each): p50 100-135 µs without, 61-74 µs with 200 µs (1,000 µs: 64-84, no
/// better); 4 clients x 16 outstanding went from 260-287k to 342-357k ops/s, and 4 x 256
/// outstanding was unchanged (a loaded reader always finds a frame). Three idle servers
/// used 4% of a core over 5 s against 2.4% without (heartbeats end in a spin). A server's node
/// thread, which reads its own connections ([`super::poller`]), spins as long by default.
pub const READ_SPIN: Duration = Duration::from_micros(200);

/// Bytes a connection's reader buffers.
const BUFFER: usize = 1 << 16;

/// A blocking reader of `stream` that polls for `spin` (see the module docs) before each
/// blocking read.
#[derive(Debug)]
pub struct Inlet<'a> {
    stream: &'a TcpStream,
    spin: Duration,
}

impl<'a> Inlet<'a> {
    /// A reader of `stream` polling for `spin` before it blocks.
    pub fn new(stream: &'a TcpStream, spin: Duration) -> Self {
        Inlet { stream, spin }
    }

    /// A buffered reader of `stream` polling for [`READ_SPIN`] (or the environment's
    /// `PAXRAFT_READ_SPIN_US`).
    pub fn buffered(stream: &'a TcpStream) -> BufReader<Self> {
        let spin = crate::runtime::spin_for("PAXRAFT_READ_SPIN_US", READ_SPIN);
        BufReader::with_capacity(BUFFER, Inlet::new(stream, spin))
    }
}

impl Read for Inlet<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.spin.is_zero() && !buf.is_empty() {
            let sock = socket2::SockRef::from(self.stream);
            // SAFETY: `recv` writes only initialised bytes, into a buffer already initialised.
            let raw = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
            let until = Instant::now() + self.spin;
            loop {
                match sock.recv_with_flags(raw, libc::MSG_DONTWAIT) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                if Instant::now() >= until {
                    break;
                }
                // Yield rather than busy-wait: the thread that will send the frame may need
                // this core.
                std::thread::yield_now();
            }
        }
        // Blocking, and so under the socket's read timeout if it has one.
        let mut s = self.stream;
        s.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// Bytes sent during the spin, after it (the blocking read takes them), and the end of
    /// the stream all come through, in order, whole.
    #[test]
    fn a_polling_read_takes_what_arrives_during_and_after_its_spin_and_the_end() {
        let (mut a, b) = pair();
        let writer = std::thread::spawn(move || {
            a.write_all(b"early").unwrap();
            // Well past the reader's 2 ms spin: this one is taken by the blocking read.
            std::thread::sleep(Duration::from_millis(50));
            a.write_all(b" late").unwrap();
            // Dropped: the reader sees the end of the stream, not a spurious one.
        });
        let mut r = Inlet::new(&b, Duration::from_millis(2));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"early late");
    }

    /// With nothing to read, a spin ends and the read blocks under the socket's timeout: the
    /// poll is bounded, and a timeout is an error, not an end of stream.
    #[test]
    fn an_idle_connection_stops_polling_and_times_out_as_a_blocking_read_does() {
        let (_a, b) = pair();
        b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let mut r = Inlet::new(&b, Duration::from_millis(5));
        let start = Instant::now();
        let e = r.read(&mut [0u8; 8]).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e:?}"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(30),
            "{:?}",
            start.elapsed()
        );
    }
}
