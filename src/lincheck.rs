//! A linearizability checker for key-value histories that scales to long runs.
//!
//! Approach: P-compositionality (Horn & Kroening, *Faster linearizability checking via
//! P-compositionality*, 2015): a KV history is linearizable iff each key's sub-history is, so
//! the history is split by key and each part is searched alone with Wing & Gong's algorithm as
//! improved by Lowe (*Testing for linearizability*, 2017): depth-first over "which pending
//! operation takes effect next", memoizing every (set of operations linearized, register value)
//! configuration already explored, so each is visited once.
//!
//! Why hand-written: crates.io has `stateright`'s `LinearizabilityTester` (already a
//! dependency), but it checks incrementally as a model runs, keeps whole histories in its
//! state, and does not decompose by key; `porcupine` is Go. The search here is ~150 lines and
//! is tested against histories known to be (non-)linearizable, and against a brute-force search
//! over every order on 10,000 random small histories (`tests/checks/lincheck_differential.rs`). The
//! proptest fault schedules reuse [`check_kv`].
//!
//! Operations whose outcome the client never learned (timed out, shut down) have no return
//! time: they may take effect at any point after their call, or never, with any result.
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashSet};

use paxraft_impls::sm::{Key, KvOp, KvOutput, Value};

/// One operation of a history. Times are any monotonic clock (e.g. nanoseconds since start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Which client issued it (for messages only).
    pub client: u64,
    /// When it was invoked.
    pub call: u64,
    /// When its result came back; `None` if it never did (the op may or may not have happened).
    pub ret: Option<u64>,
    /// The operation.
    pub op: KvOp,
    /// Its result, when known.
    pub out: Option<KvOutput>,
}

fn key_of(op: &KvOp) -> Key {
    match op {
        KvOp::Get(k) | KvOp::Put(k, _) => *k,
        KvOp::Cas { key, .. } => *key,
        // Lock histories are checked against the model's lock specification, not here.
        KvOp::Lock(_) => unreachable!("a register history holds key-value ops only"),
    }
}

/// Apply `op` to a register holding `v`: the new value and the result.
fn step(v: &Option<Value>, op: &KvOp) -> (Option<Value>, KvOutput) {
    match op {
        KvOp::Get(_) => (v.clone(), KvOutput::Value(v.clone())),
        KvOp::Put(_, new) => (Some(new.clone()), KvOutput::Written),
        KvOp::Cas { expect, new, .. } => {
            if v == expect {
                (Some(new.clone()), KvOutput::Cas(Ok(())))
            } else {
                (v.clone(), KvOutput::Cas(Err(v.clone())))
            }
        }
        KvOp::Lock(_) => unreachable!("a register history holds key-value ops only"),
    }
}

/// Most configurations explored per key before giving up (the search is exponential in the
/// worst case; real histories with bounded concurrency stay far below this).
pub const MAX_CONFIGS: usize = 5_000_000;

/// Why [`check_kv`] rejected a history: the first key whose sub-history failed, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key {key}: {failure}")]
pub struct LinError {
    /// The key.
    pub key: Key,
    /// How its sub-history failed.
    pub failure: KeyFailure,
}

/// How one key's sub-history failed the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFailure {
    /// No order of the operations explains their results: not linearizable.
    #[error(
        "not linearizable: {ops} operations, at most {ordered} of {completed} completed ones ordered"
    )]
    NotLinearizable {
        /// Operations on the key.
        ops: usize,
        /// The most completed operations any order explained.
        ordered: usize,
        /// Completed operations (with a return).
        completed: usize,
    },
    /// The search explored [`MAX_CONFIGS`] configurations without a verdict.
    #[error("search gave up after {} configurations", MAX_CONFIGS)]
    GaveUp,
}

/// Check a KV history. `Err` names the first key whose sub-history is not linearizable.
pub fn check_kv(history: &[Op]) -> Result<(), LinError> {
    let mut by_key: BTreeMap<Key, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if let Some(r) = op.ret {
            assert!(
                r >= op.call,
                "an operation returned before it was called: {op:?}"
            );
        }
        by_key.entry(key_of(&op.op)).or_default().push(op);
    }
    for (key, ops) in by_key {
        check_register(&ops).map_err(|failure| LinError { key, failure })?;
    }
    Ok(())
}

/// Wing–Gong–Lowe search over one key's operations.
fn check_register(ops: &[&Op]) -> Result<(), KeyFailure> {
    let mut ops: Vec<&Op> = ops.to_vec();
    ops.sort_by_key(|o| o.call);
    let n = ops.len();
    let words = n.div_ceil(64);
    let must = ops.iter().filter(|o| o.ret.is_some()).count();
    // Frame: (done bitset, value, completed count, next candidate index to try).
    let mut seen: HashSet<(Vec<u64>, Option<Value>)> = HashSet::new();
    let mut stack: Vec<(Vec<u64>, Option<Value>, usize, usize)> =
        vec![(vec![0; words], None, 0, 0)];
    let is_done = |d: &[u64], i: usize| d[i / 64] >> (i % 64) & 1 == 1;
    let mut deepest = 0;
    while let Some(frame) = stack.last_mut() {
        let (done, value, completed, next) = (&frame.0, &frame.1, frame.2, frame.3);
        if completed == must {
            return Ok(());
        }
        deepest = deepest.max(completed);
        // An op may go next only if it was called before every undone completed op returned.
        let horizon = (0..n)
            .filter(|&i| !is_done(done, i))
            .filter_map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        let mut found = None;
        let mut i = next;
        while i < n && ops[i].call <= horizon {
            if !is_done(done, i) {
                let (v2, out) = step(value, &ops[i].op);
                let ok = match &ops[i].out {
                    Some(o) => *o == out,
                    None => true,
                };
                if ok {
                    let mut d2 = done.clone();
                    d2[i / 64] |= 1 << (i % 64);
                    if seen.insert((d2.clone(), v2.clone())) {
                        let c2 = completed + usize::from(ops[i].ret.is_some());
                        found = Some((i, d2, v2, c2));
                        break;
                    }
                }
            }
            i += 1;
        }
        match found {
            Some((i, d2, v2, c2)) => {
                frame.3 = i + 1;
                stack.push((d2, v2, c2, 0));
            }
            None => {
                stack.pop();
            }
        }
        if seen.len() > MAX_CONFIGS {
            return Err(KeyFailure::GaveUp);
        }
    }
    Err(KeyFailure::NotLinearizable {
        ops: n,
        ordered: deepest,
        completed: must,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u64, call: u64, ret: u64, op: KvOp, out: KvOutput) -> Op {
        Op {
            client,
            call,
            ret: Some(ret),
            op,
            out: Some(out),
        }
    }
    fn put(k: u64, v: u8) -> KvOp {
        KvOp::Put(k, vec![v])
    }
    fn got(v: Option<u8>) -> KvOutput {
        KvOutput::Value(v.map(|v| vec![v]))
    }
    /// `h` fails on `key` because no order explains it (not because the search gave up).
    fn assert_not_linearizable(h: &[Op], key: Key) {
        let e = check_kv(h).expect_err("not linearizable");
        assert_eq!(e.key, key, "{e}");
        assert!(
            matches!(e.failure, KeyFailure::NotLinearizable { .. }),
            "{e}"
        );
    }

    #[test]
    fn accepts_concurrent_read_of_either_value() {
        let h = vec![
            op(1, 0, 10, put(1, 1), KvOutput::Written),
            op(2, 20, 40, put(1, 2), KvOutput::Written),
            op(3, 25, 30, KvOp::Get(1), got(Some(1))),
            op(3, 31, 35, KvOp::Get(1), got(Some(2))),
        ];
        assert_eq!(check_kv(&h), Ok(()));
    }

    #[test]
    fn rejects_stale_read() {
        let h = vec![
            op(1, 0, 10, put(1, 1), KvOutput::Written),
            op(1, 11, 20, put(1, 2), KvOutput::Written),
            op(2, 21, 30, KvOp::Get(1), got(Some(1))),
        ];
        assert_not_linearizable(&h, 1);
    }

    #[test]
    fn rejects_lost_write() {
        let h = vec![
            op(1, 0, 10, put(1, 1), KvOutput::Written),
            op(2, 11, 20, KvOp::Get(1), got(None)),
        ];
        assert_not_linearizable(&h, 1);
    }

    #[test]
    fn rejects_reads_going_back_in_time() {
        // Two concurrent writes; one reader sees 2 then 1 after both writes finished.
        let h = vec![
            op(1, 0, 10, put(1, 1), KvOutput::Written),
            op(2, 0, 10, put(1, 2), KvOutput::Written),
            op(3, 11, 12, KvOp::Get(1), got(Some(2))),
            op(3, 13, 14, KvOp::Get(1), got(Some(1))),
        ];
        assert_not_linearizable(&h, 1);
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_happen() {
        let pending = |v| Op {
            client: 9,
            call: 0,
            ret: None,
            op: put(1, v),
            out: None,
        };
        let happened = vec![pending(7), op(2, 50, 60, KvOp::Get(1), got(Some(7)))];
        let not_happened = vec![pending(7), op(2, 50, 60, KvOp::Get(1), got(None))];
        assert_eq!(check_kv(&happened), Ok(()));
        assert_eq!(check_kv(&not_happened), Ok(()));
        let cas_wrong = vec![op(
            1,
            0,
            1,
            KvOp::Cas {
                key: 1,
                expect: None,
                new: vec![1],
            },
            KvOutput::Cas(Err(None)),
        )];
        assert_not_linearizable(&cas_wrong, 1);
    }

    #[test]
    fn long_history_from_eight_clients_is_fast() {
        // A sequential-by-construction register history with overlapping windows, 10,000 ops.
        let mut h = Vec::new();
        let mut t = 0;
        let mut vals: BTreeMap<u64, u8> = BTreeMap::new();
        for i in 0..10_000u64 {
            let key = i % 64;
            let client = i % 8;
            // Each op overlaps the next few (calls early, returns late) yet effects happen in
            // order at its midpoint.
            let call = t;
            let ret = t + 7;
            t += 2;
            if i % 3 == 0 {
                let v = (i % 251) as u8;
                vals.insert(key, v);
                h.push(op(client, call, ret, put(key, v), KvOutput::Written));
            } else {
                h.push(op(
                    client,
                    call,
                    ret,
                    KvOp::Get(key),
                    got(vals.get(&key).copied()),
                ));
            }
        }
        assert_eq!(check_kv(&h), Ok(()));
    }
}
