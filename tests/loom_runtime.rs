//! loom: the runtime's proposal path end to end, on the real pieces (the node mailbox, the
//! node's [`Pending`] batcher, the clients' reply mailboxes as completion slots, and closing
//! as the shutdown signal). Run with
//! `RUSTFLAGS="--cfg loom" cargo test --profile loom --target-dir target/loom --test 'loom_*'`.
//!
//! Each property has a test-only faulty variant that loom must reject (each `should_panic`
//! names the failure it expects: a deadlock, or the lost answer). Preemption bound: 3
//! (`LOOM_MAX_PREEMPTIONS` overrides), as for the mailbox tests; the seven tests here take
//! about 25 s run one at a time on 2 busy cores.
#![cfg(loom)]

mod loom_common;

use loom::sync::Arc;
use loom::thread;
use loom_common::model;
use paxraft::runtime::{fail_inputs, Cmd, Drained, Input, Mailbox, Pending, Refused, Reply};
use paxraft_impls::raft::Raft;
use paxraft_impls::sm::{Kv, KvOp, KvOutput, Request};

type R = Raft<Cmd<Kv>>;
type NodeBox = Mailbox<Input<R, Kv>>;
type ReplyBox = Arc<Mailbox<Reply<Kv>>>;

fn req(client: u64, seq: u64) -> Cmd<Kv> {
    Request {
        client,
        seq,
        acked: 1,
        op: KvOp::Get(0),
    }
}

fn propose(node: &NodeBox, reqs: Vec<Cmd<Kv>>, reply: &ReplyBox) -> bool {
    match node.push(Input::Propose {
        reqs,
        reply: Arc::clone(reply),
    }) {
        Ok(()) => true,
        Err(Refused::Closed(_)) => false,
        Err(Refused::Full(_)) => unreachable!("capacity is ample"),
    }
}

fn seq_of(r: &Reply<Kv>) -> u64 {
    match r {
        Reply::Done { seq, .. }
        | Reply::Redirect { seq, .. }
        | Reply::Busy { seq }
        | Reply::Retry { seq } => *seq,
        Reply::Confirmed | Reply::Unconfirmed { .. } => unreachable!("no tickets here"),
    }
}

/// Two clients propose concurrently (one as two pushes, one as a batch of two); the node
/// drains whatever is there, notes who waits (`Pending::add`), "commits" each drained batch in
/// order and answers (`answer` + `flush`). Every request is committed exactly once, each
/// client's order is kept, and each client is woken for exactly its two answers, in order.
fn batcher(faulty_node: bool) {
    model(move || {
        let mut node = NodeBox::new(8);
        node.faulty_check_then_wait = faulty_node;
        let node = Arc::new(node);
        let clients: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|c| {
                let node = Arc::clone(&node);
                thread::spawn(move || {
                    let reply: ReplyBox = Arc::new(Mailbox::new(8));
                    if c == 1 {
                        assert!(propose(&node, vec![req(c, 1)], &reply));
                        assert!(propose(&node, vec![req(c, 2)], &reply));
                    } else {
                        assert!(propose(&node, vec![req(c, 1), req(c, 2)], &reply));
                    }
                    let mut got = Vec::new();
                    while got.len() < 2 {
                        assert_eq!(reply.drain(&mut got, None), Drained::Open);
                    }
                    let seqs: Vec<u64> = got.iter().map(seq_of).collect();
                    assert_eq!(
                        seqs,
                        vec![1, 2],
                        "client {c}: answers lost, doubled or reordered"
                    );
                    assert!(reply.close().is_empty(), "client {c}: answered twice");
                })
            })
            .collect();
        let mut pending = Pending::<Kv>::default();
        let mut log = Vec::new();
        let mut inbox = Vec::new();
        while log.len() < 4 {
            assert_eq!(node.drain(&mut inbox, None), Drained::Open);
            let mut batch = Vec::new();
            for input in inbox.drain(..) {
                if let Input::Propose { reqs, reply } = input {
                    pending.add(&reqs, &reply);
                    batch.extend(reqs);
                }
            }
            for r in batch {
                log.push((r.client, r.seq));
                pending.answer(r.client, r.seq, |seq| Reply::Done {
                    seq,
                    out: Ok(KvOutput::Value(None)),
                });
            }
            assert_eq!(pending.flush(), 0, "no reply box is closed or full");
        }
        for c in clients {
            c.join().unwrap();
        }
        for c in [1, 2] {
            let mine: Vec<u64> = log.iter().filter(|e| e.0 == c).map(|e| e.1).collect();
            assert_eq!(
                mine,
                vec![1, 2],
                "client {c}: lost, duplicated or reordered"
            );
        }
    });
}

#[test]
fn proposals_batched_none_lost_or_duplicated_order_kept() {
    batcher(false);
}

#[test]
#[should_panic(expected = "deadlock")]
fn faulty_batcher_lost_wakeup_is_caught() {
    batcher(true);
}

/// Completion slots: the node answers two clients' requests; client A waits for its answer,
/// client B gives up on its request (its timeout: it closes its reply box). A is woken exactly
/// once with exactly one answer; B's answer is either handed to B by the close or dropped by
/// the node, never both and never neither.
fn completion(faulty_wake: bool, faulty_close: bool) {
    model(move || {
        let mut a = Mailbox::new(4);
        a.faulty_no_wake = faulty_wake;
        let a: ReplyBox = Arc::new(a);
        let mut b = Mailbox::new(4);
        b.faulty_close_keeps_items = faulty_close;
        let b: ReplyBox = Arc::new(b);
        let node = {
            let (a, b) = (Arc::clone(&a), Arc::clone(&b));
            thread::spawn(move || {
                let mut pending = Pending::<Kv>::default();
                pending.add(&[req(1, 1)], &a);
                pending.add(&[req(2, 1)], &b);
                let mut dropped = 0;
                for c in [1, 2] {
                    pending.answer(c, 1, |seq| Reply::Done {
                        seq,
                        out: Ok(KvOutput::Written),
                    });
                    dropped += pending.flush();
                }
                dropped
            })
        };
        let waiter = {
            let a = Arc::clone(&a);
            thread::spawn(move || {
                let mut got = Vec::new();
                assert_eq!(a.drain(&mut got, None), Drained::Open);
                assert_eq!(got.len(), 1, "exactly one answer");
                assert!(a.close().is_empty(), "woken for one answer only");
            })
        };
        // B gives up.
        let handed_to_b = b.close().len();
        waiter.join().unwrap();
        let dropped = node.join().unwrap();
        assert_eq!(
            handed_to_b + dropped,
            1,
            "B's answer handed over {handed_to_b} time(s) and dropped {dropped} time(s)"
        );
    });
}

#[test]
fn every_waiter_woken_once_also_when_the_submitter_gives_up() {
    completion(false, false);
}

#[test]
#[should_panic(expected = "deadlock")]
fn faulty_completion_missing_wake_is_caught() {
    completion(true, false);
}

#[test]
#[should_panic(expected = "handed over")]
fn faulty_give_up_losing_the_answer_is_caught() {
    completion(false, true);
}

/// Shutdown: two clients propose and wait while the cluster closes the node's mailbox. The
/// node serves until closed and then fails what it holds (`Pending::fail_all`); the closer
/// fails what was still queued (`fail_inputs`). Nothing deadlocks, and every client either
/// was refused at once (its push found the mailbox closed) or hears exactly one answer.
fn shutdown(faulty: bool) {
    model(move || {
        let node = Arc::new(NodeBox::new(8));
        let server = {
            let node = Arc::clone(&node);
            thread::spawn(move || {
                let mut pending = Pending::<Kv>::default();
                pending.faulty_fail_all_forgets = faulty;
                let mut inbox = Vec::new();
                // In flight: taken from the mailbox, not committed yet.
                while node.drain(&mut inbox, None) == Drained::Open {
                    for input in inbox.drain(..) {
                        if let Input::Propose { reqs, reply } = input {
                            pending.add(&reqs, &reply);
                        }
                    }
                }
                pending.fail_all();
            })
        };
        let clients: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|c| {
                let node = Arc::clone(&node);
                thread::spawn(move || {
                    let reply: ReplyBox = Arc::new(Mailbox::new(4));
                    if propose(&node, vec![req(c, 1)], &reply) {
                        let mut got = Vec::new();
                        assert_eq!(reply.drain(&mut got, None), Drained::Open);
                        assert!(matches!(got[..], [Reply::Retry { seq: 1 }]), "{got:?}");
                        assert!(reply.close().is_empty(), "failed twice");
                    }
                })
            })
            .collect();
        fail_inputs::<R, Kv>(node.close());
        server.join().unwrap();
        for c in clients {
            c.join().unwrap();
        }
    });
}

#[test]
fn shutdown_never_deadlocks_and_fails_every_pending_submit() {
    shutdown(false);
}

#[test]
#[should_panic(expected = "deadlock")]
fn faulty_shutdown_forgetting_in_flight_requests_is_caught() {
    shutdown(true);
}
