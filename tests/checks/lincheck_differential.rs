//! `src/lincheck.rs` against brute force: on 10,000 random small key-value histories (pending
//! operations included) its verdict must equal that of trying every order of the operations.
//!
//! The brute force is the definition itself: a history is linearizable iff some subset of its
//! pending operations (those whose result never came back) together with every completed one
//! can be put in a sequence that respects real time (`a` returned before `b` was called ⇒ `a`
//! comes first) and that the key-value store, run in that order, answers exactly as the
//! completed operations were answered. Histories are kept to six operations so that every
//! order (at most 6! = 720, times the subsets of pending ones) can be tried.

use paxraft::lincheck::{check_kv, KeyFailure, Op};
use paxraft_impls::sm::{Kv, KvOp, KvOutput, StateMachine};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HISTORIES: usize = 10_000;
const MAX_OPS: usize = 6;

fn value(rng: &mut StdRng) -> Vec<u8> {
    vec![rng.gen_range(1..=2)]
}

fn maybe_value(rng: &mut StdRng) -> Option<Vec<u8>> {
    if rng.gen_bool(0.3) {
        None
    } else {
        Some(value(rng))
    }
}

fn random_op(rng: &mut StdRng, keys: u64) -> KvOp {
    let key = rng.gen_range(0..keys);
    match rng.gen_range(0..3) {
        0 => KvOp::Get(key),
        1 => KvOp::Put(key, value(rng)),
        _ => KvOp::Cas {
            key,
            expect: maybe_value(rng),
            new: value(rng),
        },
    }
}

fn random_output(rng: &mut StdRng, op: &KvOp) -> KvOutput {
    match op {
        KvOp::Get(_) => KvOutput::Value(maybe_value(rng)),
        KvOp::Put(..) => KvOutput::Written,
        KvOp::Cas { .. } => {
            if rng.gen_bool(0.5) {
                KvOutput::Cas(Ok(()))
            } else {
                KvOutput::Cas(Err(maybe_value(rng)))
            }
        }
        KvOp::Lock(_) => unreachable!("the random histories hold key-value ops only"),
    }
}

/// A random history. Half of them get the answers of a real sequential run in an order that
/// respects real time (each op takes effect at a random point between its call and its
/// return), with one answer sometimes changed: a mix of linearizable and not.
fn random_history(rng: &mut StdRng) -> Vec<Op> {
    let n = rng.gen_range(1..=MAX_OPS);
    let keys = rng.gen_range(1..=2);
    let mut ops: Vec<Op> = (0..n)
        .map(|c| {
            let call = rng.gen_range(0..20u64);
            let pending = rng.gen_bool(0.2);
            let ret = (!pending).then(|| call + rng.gen_range(0..10));
            let op = random_op(rng, keys);
            let out = (!pending).then(|| random_output(rng, &op));
            Op {
                client: c as u64,
                call,
                ret,
                op,
                out,
            }
        })
        .collect();
    if rng.gen_bool(0.5) {
        // A real run: linearization points inside each op's interval.
        let mut points: Vec<(u64, usize)> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| (rng.gen_range(o.call..=o.ret.unwrap_or(o.call + 10)), i))
            .collect();
        points.sort();
        let mut kv = Kv::default();
        for (_, i) in points {
            let out = kv.apply(&ops[i].op);
            if ops[i].ret.is_some() {
                ops[i].out = Some(out);
            }
        }
        if rng.gen_bool(0.3) {
            let i = rng.gen_range(0..n);
            if ops[i].ret.is_some() {
                let op = ops[i].op.clone();
                ops[i].out = Some(random_output(rng, &op));
            }
        }
    }
    ops
}

/// Every order of `order[k..]` after the fixed prefix `order[..k]`; true when one works.
fn permute(ops: &[Op], order: &mut Vec<usize>, k: usize) -> bool {
    if k == order.len() {
        return replays(ops, order);
    }
    for j in k..order.len() {
        order.swap(k, j);
        // Prune early: the op placed at `k` may not follow one that was called after it
        // returned.
        let placed = order[k];
        let respects = order[..k].iter().all(|&before| match ops[placed].ret {
            Some(r) => r >= ops[before].call,
            None => true,
        });
        if respects && permute(ops, order, k + 1) {
            order.swap(k, j);
            return true;
        }
        order.swap(k, j);
    }
    false
}

/// Run `order` through the store: every completed op must get its recorded answer.
fn replays(ops: &[Op], order: &[usize]) -> bool {
    let mut kv = Kv::default();
    order.iter().all(|&i| {
        let out = kv.apply(&ops[i].op);
        match &ops[i].out {
            Some(o) => *o == out,
            None => true,
        }
    })
}

fn brute_force(ops: &[Op]) -> bool {
    let pending: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    let completed: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_some()).collect();
    (0..1u32 << pending.len()).any(|subset| {
        let mut order = completed.clone();
        order.extend(
            pending
                .iter()
                .enumerate()
                .filter(|(b, _)| subset >> b & 1 == 1)
                .map(|(_, &i)| i),
        );
        permute(ops, &mut order, 0)
    })
}

#[test]
fn lincheck_agrees_with_brute_force_on_ten_thousand_small_histories() {
    let mut rng = StdRng::seed_from_u64(13);
    let (mut yes, mut no) = (0, 0);
    for k in 0..HISTORIES {
        let h = random_history(&mut rng);
        let expected = brute_force(&h);
        let got = check_kv(&h);
        // A rejection must be a verdict, not a search that gave up.
        let verdict = match &got {
            Ok(()) => true,
            Err(e) if matches!(e.failure, KeyFailure::NotLinearizable { .. }) => false,
            Err(e) => panic!("history {k}: lincheck gave no verdict: {e}\n{h:#?}"),
        };
        assert_eq!(
            verdict, expected,
            "history {k}: lincheck says {got:?}, brute force says {expected}\n{h:#?}"
        );
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    eprintln!("{yes} linearizable, {no} not");
    // Both verdicts must be well represented, or the comparison proves little.
    assert!(
        yes > HISTORIES / 5 && no > HISTORIES / 5,
        "{yes} linearizable, {no} not"
    );
}
