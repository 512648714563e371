//! loom: every interleaving of the network's [`Outlet`] (src/net/outlet.rs): two producer
//! threads that write frames directly when nothing is pending, the flusher that writes what
//! they queued, and the peer (the test's main thread) that reads or breaks the connection.
//! Run with (as `scripts/test-all` does)
//! `RUSTFLAGS="--cfg loom" cargo test --profile loom --target-dir target/loom --test 'loom_*'`.
//!
//! The connection is an in-memory fake whose non-blocking send takes only part of a frame
//! (or nothing) on chosen calls, which forces the pending path. Claims checked: frames leave
//! in the order each producer made them and never interleave; every frame answered
//! [`Sent::Taken`] is on the wire or counted dropped (written + dropped == taken), none
//! refused is; the pending buffer stays within its bound; and the flusher is never left asleep
//! with bytes pending (the peer waits for every taken byte, so a lost wake-up is a deadlock),
//! nor after a break (the reader's `fail`, or a reset met by a direct write).
//! A test-only fault switch that skips the wake-up after a partial write shows loom catches
//! it. Preemption bound: 3 (`LOOM_MAX_PREEMPTIONS` overrides), as for the other loom tests.
#![cfg(loom)]

mod loom_common;

use loom::sync::{Condvar, Mutex};
use loom::thread::{self, JoinHandle};
use loom_common::model;
use paxraft::net::outlet::{Conn, Next, Outlet, Sent};
use std::io;
// std's, not loom's: when loom finds a deadlock it tears down the threads it left blocked, and
// a loom `Arc` dropped then aborts the test process (loom's runtime is gone); sharing is not
// what these tests check.
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per frame: the frame's tag, repeated (a frame cut by another's bytes is not uniform).
const LEN: usize = 4;
/// Frames per producer.
const FRAMES: u8 = 2;
/// Two frames: with a partial first write some interleavings fill it, and a send is refused.
const BOUND: usize = 2 * LEN;

fn tag(producer: u8, seq: u8) -> u8 {
    producer << 4 | seq
}

/// The bytes on the wire, and whether the connection is shut.
#[derive(Default)]
struct Wire {
    bytes: Vec<u8>,
    shut: bool,
    /// Non-blocking sends so far (to pick the short ones).
    sends: usize,
    /// The flusher is between the two pieces of a write.
    flushing: bool,
}

/// An in-memory connection; its clones share one wire, as a socket's do.
#[derive(Clone)]
struct Fake {
    wire: Arc<(Mutex<Wire>, Condvar)>,
    /// (call, bytes taken): the non-blocking sends that take only part of what they are given.
    short: &'static [(usize, usize)],
    /// The non-blocking send, if any, that finds the connection reset.
    reset_at: Option<usize>,
}

impl Fake {
    fn new(short: &'static [(usize, usize)]) -> Self {
        Fake {
            wire: Arc::new((Mutex::new(Wire::default()), Condvar::new())),
            short,
            reset_at: None,
        }
    }

    /// The peer reads until `len` bytes have arrived (a deadlock if they never do).
    fn wait_for(&self, len: usize) -> Vec<u8> {
        let (m, arrived) = &*self.wire;
        let mut w = m.lock().unwrap();
        while w.bytes.len() < len {
            w = arrived.wait(w).unwrap();
        }
        w.bytes.clone()
    }

    fn bytes(&self) -> Vec<u8> {
        self.wire.0.lock().unwrap().bytes.clone()
    }
}

fn broken() -> io::Error {
    io::ErrorKind::BrokenPipe.into()
}

impl Conn for Fake {
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        let (m, arrived) = &*self.wire;
        let mut w = m.lock().unwrap();
        if w.shut {
            return Err(broken());
        }
        assert!(
            !w.flushing,
            "a producer wrote into the middle of the flusher's write"
        );
        let call = w.sends;
        w.sends += 1;
        if self.reset_at == Some(call) {
            // Dead for the flusher's writes too, as a reset socket is.
            w.shut = true;
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let n = self
            .short
            .iter()
            .find(|(c, _)| *c == call)
            .map_or(bytes.len(), |&(_, n)| n.min(bytes.len()));
        w.bytes.extend_from_slice(&bytes[..n]);
        arrived.notify_all();
        Ok(n)
    }

    /// In two pieces, letting go of the wire between them, so that a direct write in the
    /// middle can happen (and is caught). A break after the first piece does not stop the
    /// second: the write is all or nothing, so whole frames on the wire are exactly the
    /// written ones (TCP can deliver part of a batch the flusher counts dropped: an
    /// over-count of drops, never a loss).
    fn write_out(&self, bytes: &[u8]) -> io::Result<()> {
        let (m, arrived) = &*self.wire;
        let half = bytes.len() / 2;
        {
            let mut w = m.lock().unwrap();
            if w.shut {
                return Err(broken());
            }
            w.flushing = true;
            w.bytes.extend_from_slice(&bytes[..half]);
        }
        let mut w = m.lock().unwrap();
        w.bytes.extend_from_slice(&bytes[half..]);
        w.flushing = false;
        arrived.notify_all();
        Ok(())
    }

    fn shut_down(&self) {
        self.wire.0.lock().unwrap().shut = true;
        self.wire.1.notify_all();
    }
}

/// A producer: its frames in order, the bound checked right after each is handed over.
/// Returns each frame's tag and what became of it.
fn produce(outlet: &Outlet<Fake>, producer: u8) -> Vec<(u8, Sent)> {
    (0..FRAMES)
        .map(|seq| {
            let t = tag(producer, seq);
            let sent = outlet.send(1, |buf| buf.extend_from_slice(&[t; LEN]));
            assert!(
                outlet.pending() <= BOUND,
                "{} bytes pending",
                outlet.pending()
            );
            (t, sent)
        })
        .collect()
}

/// The two producers' threads (1 and 2) and the flusher's, on `outlet` over `conn`.
#[allow(clippy::type_complexity)]
fn start(
    outlet: &Arc<Outlet<Fake>>,
    conn: &Fake,
) -> ([JoinHandle<Vec<(u8, Sent)>>; 2], JoinHandle<u64>) {
    let producers = [1u8, 2].map(|p| {
        let outlet = Arc::clone(outlet);
        thread::spawn(move || produce(&outlet, p))
    });
    let flusher = {
        let (outlet, conn) = (Arc::clone(outlet), conn.clone());
        thread::spawn(move || flush(&outlet, &conn))
    };
    (producers, flusher)
}

/// Join the producers and check every answer they had is one of `allowed`.
fn join_all(producers: [JoinHandle<Vec<(u8, Sent)>>; 2], allowed: &[Sent]) -> [Vec<(u8, Sent)>; 2] {
    producers.map(|p| {
        let sent = p.join().unwrap();
        for (t, s) in &sent {
            assert!(allowed.contains(s), "frame {t:#x}: {s:?}");
        }
        sent
    })
}

/// The tags of each producer's frames taken, in the order it sent them.
fn taken(sent: &[Vec<(u8, Sent)>; 2]) -> [Vec<u8>; 2] {
    [0, 1].map(|i| {
        sent[i]
            .iter()
            .filter(|(_, s)| *s == Sent::Taken)
            .map(|(t, _)| *t)
            .collect()
    })
}

/// The flusher, as a link thread runs it: write what `next` hands over until the connection
/// breaks or the outlet closes, then detach. Returns the messages it counted dropped.
fn flush(outlet: &Outlet<Fake>, conn: &Fake) -> u64 {
    let mut buf = Vec::new();
    let mut dropped = 0;
    // Under loom a wait never times out: the flusher sleeps until woken.
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    loop {
        match outlet.next(&mut buf, far) {
            Next::Write { msgs } => {
                if conn.write_out(&buf).is_err() {
                    dropped += msgs;
                    break;
                }
            }
            Next::Broken | Next::Closed => break,
            Next::Idle => unreachable!("the deadline is a day away"),
        }
    }
    dropped + outlet.detach()
}

/// The whole frames on the wire (a partly written frame may end it, after a break), each
/// checked to be one frame's bytes alone.
fn frames_on(wire: &[u8]) -> Vec<u8> {
    wire.chunks(LEN)
        .filter(|f| f.len() == LEN)
        .map(|f| {
            assert!(f.iter().all(|&b| b == f[0]), "frames interleave: {wire:?}");
            f[0]
        })
        .collect()
}

/// `producer`'s frames among `written`.
fn of(producer: u8, written: &[u8]) -> Vec<u8> {
    written
        .iter()
        .copied()
        .filter(|t| t >> 4 == producer)
        .collect()
}

/// Two producers and the flusher on one connection whose non-blocking sends are short at
/// `short`, attached with a frame of "producer 0" to go first if `first`; the peer reads
/// until every taken frame has arrived, then the outlet closes.
fn two_producers(short: &'static [(usize, usize)], first: bool, faulty: bool) {
    model(move || {
        let conn = Fake::new(short);
        let mut outlet = Outlet::new(BOUND);
        outlet.faulty_no_wake_after_partial = faulty;
        let first = if first { vec![tag(0, 0); LEN] } else { vec![] };
        outlet.attach(conn.clone(), &first, first.len() as u64 / LEN as u64);
        let outlet = Arc::new(outlet);
        let (producers, flusher) = start(&outlet, &conn);
        let taken = taken(&join_all(producers, &[Sent::Taken, Sent::Full]));
        let n = taken.iter().map(Vec::len).sum::<usize>();
        // If the flusher sleeps with bytes pending, they never come: loom reports a deadlock.
        let wire = conn.wait_for(first.len() + n * LEN);
        outlet.close();
        assert_eq!(
            flusher.join().unwrap(),
            0,
            "nothing dropped on a live connection"
        );
        assert_eq!(
            wire.len(),
            first.len() + n * LEN,
            "more on the wire than was taken"
        );
        assert!(wire.starts_with(&first), "the attached frame went out late");
        let written = frames_on(&wire);
        for (p, taken) in [1, 2].into_iter().zip(&taken) {
            assert_eq!(
                &of(p, &written),
                taken,
                "producer {p}: lost, duplicated or reordered"
            );
        }
    });
}

/// The first direct write is cut after half a frame: the rest, and what comes behind it,
/// go through the flusher.
#[test]
fn frames_keep_order_never_interleave_and_all_arrive() {
    two_producers(&[(0, LEN / 2)], false, false);
}

/// The second direct write takes nothing (the socket's buffer is full).
#[test]
fn a_send_the_socket_does_not_take_goes_through_the_flusher() {
    two_producers(&[(1, 0)], false, false);
}

/// Frames handed to `attach` (a client's requests queued while it connected) leave before
/// anything sent later, direct or queued; a short send behind them still goes in order.
#[test]
fn frames_given_at_attach_leave_first() {
    two_producers(&[(0, LEN / 2)], true, false);
}

/// A partial write whose rest is queued without waking the flusher: the flusher sleeps with
/// bytes pending, the peer waits for them, and loom finds the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn faulty_no_wake_after_partial_is_caught() {
    two_producers(&[(0, LEN / 2)], false, true);
}

/// How the connection breaks in the middle.
#[derive(Clone, Copy)]
enum Break {
    /// The reader sees it end and calls `fail` (the test's main thread, racing the others).
    Reader,
    /// The second non-blocking send (behind a short first one) finds it reset: that
    /// producer's frame is lost, and it is told so.
    Send,
}

/// The connection breaks while the producers send: every taken frame is either whole on the
/// wire or counted dropped by the flusher, never both, never neither; order and framing hold
/// for what was written; the flusher ends (it was woken) and nothing stays pending.
fn broken_midway(how: Break) {
    model(move || {
        let mut conn = Fake::new(&[(0, LEN / 2)]);
        if let Break::Send = how {
            conn.reset_at = Some(1);
        }
        let outlet = Arc::new(Outlet::new(BOUND));
        outlet.attach(conn.clone(), &[], 0);
        let (producers, flusher) = start(&outlet, &conn);
        let sent = match how {
            Break::Reader => {
                outlet.fail();
                join_all(producers, &[Sent::Taken, Sent::Full, Sent::Down])
            }
            Break::Send => {
                let all = [Sent::Taken, Sent::Full, Sent::Down, Sent::Lost];
                let sent = join_all(producers, &all);
                let lost = sent.iter().flatten().filter(|(_, s)| *s == Sent::Lost);
                match lost.count() {
                    // The second send never came to the socket (both queued behind the
                    // first): no break, and the close ends the flusher.
                    0 => outlet.close(),
                    // The flusher must end by itself: the break woke it.
                    1 => {}
                    n => panic!("{n} frames lost: a broken connection was written again"),
                }
                sent
            }
        };
        let taken = taken(&sent);
        let dropped = flusher.join().unwrap();
        let written = frames_on(&conn.bytes());
        let n = taken.iter().map(Vec::len).sum::<usize>();
        assert_eq!(
            written.len() as u64 + dropped,
            n as u64,
            "written {written:?} + dropped {dropped} != taken {taken:?}"
        );
        // Written frames are taken ones, in order (the dropped ones are missing from it).
        for (p, taken) in [1, 2].into_iter().zip(&taken) {
            let got = of(p, &written);
            let mut rest = taken.iter();
            assert!(
                got.iter().all(|t| rest.any(|u| u == t)),
                "producer {p}: wrote {got:?} of {taken:?}"
            );
        }
        assert_eq!(
            outlet.pending(),
            0,
            "bytes left pending after the flusher detached"
        );
        let after = outlet.send(1, |b| b.push(0));
        assert!(
            matches!(after, Sent::Down | Sent::Closed),
            "a broken or closed outlet took a frame: {after:?}"
        );
    });
}

#[test]
fn a_break_in_the_middle_loses_nothing_uncounted() {
    broken_midway(Break::Reader);
}

#[test]
fn a_reset_on_a_direct_write_is_reported_and_the_rest_counted() {
    broken_midway(Break::Send);
}
