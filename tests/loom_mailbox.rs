//! loom: every interleaving of the runtime's shared-memory pieces. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --profile loom --target-dir target/loom --test 'loom_*'`.
//!
//! The mailbox is the one shared piece: it is each replica's input queue (peer messages and
//! client proposals, which the replica drains whole and proposes as one batch), each client's
//! completion queue (replies), and, by closing, the crash/shutdown signal. Each property is
//! paired with a faulty variant (a missing wake-up) that loom must reject as a deadlock (each
//! `should_panic` names it), so the test is shown to catch the bug it is about. Preemption
//! bound: 3 (`LOOM_MAX_PREEMPTIONS` overrides), enough for every schedule of these 2–3 thread
//! tests with at most one lock per step.
#![cfg(loom)]

mod loom_common;

use loom::sync::Arc;
use loom::thread;
use loom_common::model;
use paxraft::runtime::{Drained, Mailbox, Refused};

/// Two producers push two items each (one of them as a batch); the consumer drains until it
/// has all four: none lost, none duplicated, each producer's order kept, the consumer woken.
fn producers_consumer(faulty: bool) {
    model(move || {
        let mut mb = Mailbox::new(16);
        mb.faulty_no_wake = faulty;
        let mb = Arc::new(mb);
        let p1 = {
            let mb = Arc::clone(&mb);
            thread::spawn(move || {
                mb.push((1, 0)).unwrap();
                mb.push((1, 1)).unwrap();
            })
        };
        let p2 = {
            let mb = Arc::clone(&mb);
            thread::spawn(move || mb.push_many(vec![(2, 0), (2, 1)]).unwrap())
        };
        let mut got = Vec::new();
        while got.len() < 4 {
            assert_eq!(mb.drain(&mut got, None), Drained::Open);
        }
        p1.join().unwrap();
        p2.join().unwrap();
        for p in [1, 2] {
            let seq: Vec<_> = got
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(
                seq,
                vec![0, 1],
                "producer {p}: lost, duplicated or reordered"
            );
        }
    });
}

#[test]
fn no_loss_no_duplicate_fifo_per_producer() {
    producers_consumer(false);
}

/// The consumer waits for an item whose push did not wake it: loom finds the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn faulty_missing_wake_is_caught() {
    producers_consumer(true);
}

/// Shutdown: a replica thread serves proposals until its mailbox closes; a client proposes
/// and waits for its reply; the cluster closes the mailbox and fails what was still queued.
/// Whatever the interleaving: nothing deadlocks, and the client hears exactly one answer
/// (served, failed by the closer, or refused at push).
fn shutdown_fails_pending(faulty: bool) {
    model(move || {
        let mut node = Mailbox::<(u64, Arc<Mailbox<&'static str>>)>::new(4);
        node.faulty_close_no_wake = faulty;
        let node = Arc::new(node);
        let server = {
            let node = Arc::clone(&node);
            thread::spawn(move || {
                let mut inbox = Vec::new();
                while node.drain(&mut inbox, None) == Drained::Open {
                    for (_, reply) in inbox.drain(..) {
                        let _ = reply.push("done");
                    }
                }
            })
        };
        let client = {
            let node = Arc::clone(&node);
            thread::spawn(move || {
                let reply = Arc::new(Mailbox::new(4));
                match node.push((7, Arc::clone(&reply))) {
                    Ok(()) => {
                        let mut got = Vec::new();
                        assert_eq!(reply.drain(&mut got, None), Drained::Open);
                        assert_eq!(got.len(), 1, "exactly one answer");
                        // Nothing more can come: the request was served or failed, not both.
                        assert!(reply.close().is_empty(), "answered twice");
                    }
                    Err(Refused::Closed(_)) => {}
                    Err(Refused::Full(_)) => unreachable!("capacity 4"),
                }
            })
        };
        for (_, reply) in node.close() {
            let _ = reply.push("shutdown");
        }
        server.join().unwrap();
        client.join().unwrap();
    });
}

#[test]
fn shutdown_never_deadlocks_and_answers_every_pending_request() {
    shutdown_fails_pending(false);
}

/// The server waits on a mailbox whose close did not wake it: loom finds the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn faulty_close_without_wake_is_caught() {
    shutdown_fails_pending(true);
}

/// A client that gives up (closes its reply box) while a replica answers: the answer is either
/// delivered or handed back to the replier, exactly once, and the waiter is woken once.
#[test]
fn give_up_races_with_answer() {
    model(|| {
        let reply = Arc::new(Mailbox::new(2));
        let replier = {
            let reply = Arc::clone(&reply);
            thread::spawn(move || match reply.push(42u32) {
                Ok(()) => 1,
                Err(Refused::Closed(v)) => {
                    assert_eq!(v, vec![42]);
                    0
                }
                Err(Refused::Full(_)) => unreachable!(),
            })
        };
        let left = reply.close();
        let delivered_before_close = left.len();
        let delivered = replier.join().unwrap();
        // Accepted iff the closer got it; refused iff it came back to the replier.
        assert_eq!(delivered, delivered_before_close);
        let mut after = Vec::new();
        assert_eq!(
            reply.drain(&mut after, None),
            Drained::Closed,
            "a closed waiter is woken"
        );
    });
}
