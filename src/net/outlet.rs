//! One connection's outgoing bytes, written by the thread that produces them when it can.
//!
//! A hand-off between threads costs a futex wake-up and a scheduling delay (6-10 µs on an
//! idle 2-core VM, tens of µs on a busy one), and a request crossed four of them on the way
//! out of processes before this module. An [`Outlet`] lets the producing thread (a node thread
//! sending to a peer or answering a client, a client thread sending a request) write whole
//! frames to the socket itself with a non-blocking `send` when nothing is waiting before
//! them. What the socket does not take at once (a slow or absent reader) goes into the
//! outlet's pending buffer, which its *flusher* thread (the link or writer thread of that
//! connection) writes with blocking writes; while the flusher writes, producers append to the
//! buffer, so frames leave in the order they were produced and never interleave.
//!
//! The buffer is bounded ([`Outlet::new`]): frames that would take it past its bound are
//! refused ([`Sent::Full`]) and the caller drops and counts them, so a peer that does not
//! read costs at most the bound (plus the flusher's one batch in flight) in memory. The
//! producer never blocks on the socket: its only wait is the outlet's lock, which the
//! flusher holds only to swap buffers.
//!
//! The outlet is generic over its connection ([`Conn`]: a TCP stream in production, an
//! in-memory fake in `tests/loom_outlet.rs`) and locks with the runtime's sync shim, so that
//! loom explores every interleaving of producers and flusher under `--cfg loom`.

use crate::runtime::sync::{lock, Condvar, Mutex};
use std::io;
#[cfg(not(loom))]
use std::net::Shutdown;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What an [`Outlet`] writes to: one connection, shared (as a socket's clones are) by the
/// outlet and its flusher.
pub trait Conn {
    /// Write what the connection takes now without blocking: the count written (0 if its
    /// buffer is full), or the error that broke it.
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize>;
    /// The flusher's write of what [`Outlet::next`] handed it: blocking until all is written.
    fn write_out(&self, bytes: &[u8]) -> io::Result<()>;
    /// Shut both directions, so that the connection's reader ends too.
    fn shut_down(&self);
}

/// What became of frames handed to [`Outlet::send`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Written to the socket, or queued for the flusher behind earlier frames.
    Taken,
    /// No connection is attached (down, or not dialed yet): nothing was encoded.
    Down,
    /// The pending buffer holds its bound already: refused.
    Full,
    /// The outlet is closed (its connection's owner ended).
    Closed,
    /// The write failed: the connection broke and the frames are lost (the flusher is told).
    Lost,
}

/// What the flusher is told to do next ([`Outlet::next`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write these bytes (`msgs` messages) with blocking writes, then call `next` again.
    Write {
        /// Messages the bytes hold (to count them dropped if the write fails).
        msgs: u64,
    },
    /// Nothing to write before the deadline.
    Idle,
    /// A producer's write failed: the connection is broken (it was detached).
    Broken,
    /// The outlet was closed.
    Closed,
}

#[derive(Debug)]
struct State<C> {
    /// The attached connection (a clone of the flusher's), if any.
    conn: Option<C>,
    /// Encoded frames waiting for the flusher, oldest first.
    pending: Vec<u8>,
    /// Messages in `pending`.
    pending_msgs: u64,
    /// The flusher is writing bytes it took out of `pending`: producers append behind them.
    busy: bool,
    /// A producer's write failed since the flusher last looked.
    broken: bool,
    closed: bool,
    /// The producers' encoding buffer for direct writes, kept for its allocation.
    scratch: Vec<u8>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Outlet<C = TcpStream> {
    state: Mutex<State<C>>,
    /// Wakes the flusher: bytes pending, a break, or the close.
    wake: Condvar,
    /// Most bytes `pending` holds.
    bound: usize,
    /// Test-only fault injection (loom must reject it): a direct write the connection took
    /// only part of queues the rest without waking the flusher.
    #[cfg(loom)]
    pub faulty_no_wake_after_partial: bool,
}

/// The socket itself stays blocking for the flusher; the producers' writes are made
/// non-blocking per call (`MSG_DONTWAIT`).
#[cfg(not(loom))]
impl Conn for TcpStream {
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        let sock = socket2::SockRef::from(self);
        let mut done = 0;
        while done < bytes.len() {
            match sock.send_with_flags(&bytes[done..], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// `MSG_NOSIGNAL`, as on the direct path: a peer that went away is an error here, never
    /// a SIGPIPE, whatever the process's disposition of that signal.
    fn write_out(&self, buf: &[u8]) -> io::Result<()> {
        let sock = socket2::SockRef::from(self);
        let mut done = 0;
        while done < buf.len() {
            match sock.send_with_flags(&buf[done..], libc::MSG_NOSIGNAL) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn shut_down(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl<C: Conn> Outlet<C> {
    /// An outlet with no connection attached whose pending buffer holds at most `bound`
    /// bytes (a single batch of frames larger than that is still taken when nothing is
    /// pending: a frame cannot be cut).
    pub fn new(bound: usize) -> Self {
        Outlet {
            state: Mutex::new(State {
                conn: None,
                pending: Vec::new(),
                pending_msgs: 0,
                busy: false,
                broken: false,
                closed: false,
                scratch: Vec::new(),
            }),
            wake: Condvar::new(),
            bound,
            #[cfg(loom)]
            faulty_no_wake_after_partial: false,
        }
    }

    /// Bytes waiting for the flusher (at most the bound, or one batch taken when nothing was
    /// pending).
    pub fn pending(&self) -> usize {
        lock(&self.state).pending.len()
    }

    /// Hand over `msgs` messages that `encode` appends to a buffer as whole frames: written
    /// now if nothing is pending and the socket takes them, the rest queued for the
    /// flusher. `encode` runs only if the frames are taken.
    pub fn send(&self, msgs: u64, encode: impl FnOnce(&mut Vec<u8>)) -> Sent {
        let mut s = lock(&self.state);
        let s = &mut *s;
        if s.closed {
            return Sent::Closed;
        }
        let Some(conn) = &s.conn else {
            return Sent::Down;
        };
        if s.busy || !s.pending.is_empty() {
            // Behind earlier frames: queue, within the bound.
            let before = s.pending.len();
            if before >= self.bound {
                return Sent::Full;
            }
            encode(&mut s.pending);
            if s.pending.len() > self.bound {
                s.pending.truncate(before);
                return Sent::Full;
            }
            s.pending_msgs += msgs;
            // The flusher is writing (it looks again when done) or was woken already.
            return Sent::Taken;
        }
        let mut buf = std::mem::take(&mut s.scratch);
        buf.clear();
        encode(&mut buf);
        match conn.send_now(&buf) {
            Ok(n) if n == buf.len() => {}
            Ok(n) => {
                s.pending.extend_from_slice(&buf[n..]);
                s.pending_msgs += msgs;
                // The flusher may be asleep, and nothing else will wake it for these bytes.
                #[cfg(loom)]
                let wake = !self.faulty_no_wake_after_partial;
                #[cfg(not(loom))]
                let wake = true;
                if wake {
                    self.wake.notify_one();
                }
            }
            Err(_) => {
                s.scratch = buf;
                self.broke(s);
                return Sent::Lost;
            }
        }
        s.scratch = buf;
        Sent::Taken
    }

    /// The connection is broken: shut it, so its reader ends too, and tell the flusher,
    /// which detaches it and reconnects (or its owner ends).
    fn broke(&self, s: &mut State<C>) {
        if let Some(conn) = s.conn.take() {
            conn.shut_down();
        }
        s.broken = true;
        self.wake.notify_one();
    }

    /// The connection ended (its reader saw the end, or an error): later sends are
    /// [`Sent::Down`] until the flusher attaches another.
    pub fn fail(&self) {
        self.broke(&mut lock(&self.state));
    }

    /// Attach `conn` (a clone of the flusher's connection), with `first` (frames of `msgs`
    /// messages) to be written before anything sent later. Anything pending for an earlier
    /// connection is dropped: returns how many messages it held.
    pub fn attach(&self, conn: C, first: &[u8], msgs: u64) -> u64 {
        let mut s = lock(&self.state);
        let lost = s.pending_msgs;
        s.pending.clear();
        s.pending.extend_from_slice(first);
        s.pending_msgs = msgs;
        s.conn = Some(conn);
        s.busy = false;
        s.broken = false;
        lost
    }

    /// Detach the connection (it broke, or is replaced): later sends are [`Sent::Down`].
    /// Returns how many messages were pending (dropped).
    pub fn detach(&self) -> u64 {
        let mut s = lock(&self.state);
        s.conn = None;
        s.pending.clear();
        s.busy = false;
        std::mem::take(&mut s.pending_msgs)
    }

    /// The flusher's wait: the previous [`Next::Write`]'s bytes are written; swap the pending
    /// bytes into `buf` (cleared first), waiting for some until `deadline`.
    pub fn next(&self, buf: &mut Vec<u8>, deadline: Instant) -> Next {
        buf.clear();
        let mut s = lock(&self.state);
        s.busy = false;
        loop {
            if s.closed {
                return Next::Closed;
            }
            if std::mem::take(&mut s.broken) {
                return Next::Broken;
            }
            if !s.pending.is_empty() {
                std::mem::swap(&mut s.pending, buf);
                s.busy = true;
                return Next::Write {
                    msgs: std::mem::take(&mut s.pending_msgs),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::Idle;
            }
            s = self
                .wake
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Close: later sends are refused, and the flusher's [`Outlet::next`] says so.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_all();
    }
}

/// How long a flusher waits before it looks at its connection's other signs of life.
pub const FLUSH_CHECK: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected pair over loopback: (ours, the peer's end).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (theirs, _) = l.accept().expect("accept");
        (ours, theirs)
    }

    /// A frame of `len` bytes whose first 4 carry `i` (to check order at the far end).
    fn frame(i: u32, len: usize) -> impl FnOnce(&mut Vec<u8>) {
        move |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&i.to_le_bytes());
            buf.resize(buf.len() + len - 4, 0xab);
        }
    }

    /// A peer that reads nothing: once the kernel's buffers are full, the outlet holds at
    /// most its bound and refuses (for the caller to drop and count) everything beyond it,
    /// without blocking the producer. When the peer reads again, what was taken arrives
    /// whole and in order, direct writes and the flusher's alike.
    #[test]
    fn a_peer_that_does_not_read_costs_at_most_the_bound() {
        const BOUND: usize = 64 << 10;
        const LEN: usize = 1000;
        let (ours, mut theirs) = pair();
        let outlet = Outlet::new(BOUND);
        assert_eq!(
            outlet.send(1, frame(0, LEN)),
            Sent::Down,
            "no connection yet"
        );
        let flusher = ours.try_clone().expect("clone");
        outlet.attach(ours, &[], 0);
        // Far more than loopback's socket buffers take (a few MiB at most).
        let (mut taken, mut full) = (0u32, 0u32);
        for _ in 0..40_000 {
            match outlet.send(1, frame(taken, LEN)) {
                Sent::Taken => taken += 1,
                Sent::Full => full += 1,
                other => panic!("{other:?}"),
            }
            assert!(outlet.pending() <= BOUND);
        }
        assert!(full > 0, "nothing refused: {taken} taken");
        let held = outlet.pending();
        assert!(held > BOUND - LEN, "the buffer fills to its bound: {held}");
        // The peer reads again; the flusher writes what is pending.
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; taken as usize * LEN];
            theirs.read_exact(&mut got).expect("read all");
            got
        });
        let mut buf = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        match outlet.next(&mut buf, deadline) {
            Next::Write { .. } => flusher.write_out(&buf).expect("write"),
            other => panic!("{other:?}"),
        }
        assert_eq!(outlet.next(&mut buf, Instant::now()), Next::Idle);
        let got = reader.join().expect("reader");
        for (i, f) in got.chunks(LEN).enumerate() {
            assert_eq!(f[..4], (i as u32).to_le_bytes(), "frame {i} out of place");
        }
        // Detached, the outlet refuses to encode anything: down, not queued.
        assert_eq!(outlet.detach(), 0);
        assert_eq!(outlet.send(1, frame(0, LEN)), Sent::Down);
        outlet.close();
        assert_eq!(outlet.next(&mut buf, Instant::now()), Next::Closed);
        assert_eq!(outlet.send(1, frame(0, LEN)), Sent::Closed);
    }

    /// A connection the peer closed: a direct write fails, the frames are reported lost
    /// and the flusher is told the connection broke.
    #[test]
    fn a_broken_connection_is_reported_to_the_producer_and_the_flusher() {
        let (ours, theirs) = pair();
        drop(theirs);
        let outlet = Outlet::new(1 << 10);
        outlet.attach(ours, &[], 0);
        // The first send after the peer's close may still be taken (the reset comes back
        // with it); a later one sees the broken connection.
        let mut sent = Vec::new();
        for i in 0..100 {
            sent.push(outlet.send(1, frame(i, 100)));
            if sent.last() == Some(&Sent::Lost) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sent.last(), Some(&Sent::Lost), "{sent:?}");
        assert_eq!(outlet.next(&mut Vec::new(), Instant::now()), Next::Broken);
        assert_eq!(outlet.send(1, frame(0, 100)), Sent::Down);
    }
}
