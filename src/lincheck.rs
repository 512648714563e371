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
//!
//! Lock-service histories ([`check_lock`]) are searched the same way, against the model's
//! own specification of the lock service with expiring sessions
//! ([`paxraft_models::model::ServiceSpec`]), so the simulator checks what the exhaustive
//! checker checks. They are not split by lock: a session's expiry frees every lock it holds
//! and ends all its ops at once, which couples the locks. The search memoizes (operations
//! linearized, specification state) instead, which keeps long histories cheap: the state is
//! a holder and a token per lock and the set of expired sessions.
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashSet};

use paxraft_impls::sm::{Key, KvOp, KvOutput, LockOp, Value};
use paxraft_models::model::{Answer, ServiceSpec};
use stateright::semantics::SequentialSpec;

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

/// Why [`check_lock`] rejected a lock history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockFailure {
    /// No order of the operations explains their results against the lock service with
    /// expiring sessions.
    #[error(
        "lock history not linearizable: {ops} operations, at most {ordered} of {completed} completed ones ordered; {stuck}"
    )]
    NotLinearizable {
        /// Operations in the history.
        ops: usize,
        /// The most completed operations any order explained.
        ordered: usize,
        /// Completed operations (with a return).
        completed: usize,
        /// Where the furthest order got stuck: the completed operation that had to come
        /// next, and what the specification answers there instead.
        stuck: String,
    },
    /// The search explored [`MAX_CONFIGS`] configurations without a verdict.
    #[error("lock history search gave up after {} configurations", MAX_CONFIGS)]
    GaveUp,
}

/// The answers the specification could give `op` in `spec`'s state, for an operation whose
/// result the client never learned: with sessions that may expire at any moment, an acquire
/// of a held lock may be granted (the holder's session expired first) or find it busy.
/// [`ServiceSpec::is_valid_step`] decides which of these are possible.
fn possible_answers(spec: &ServiceSpec, op: &KvOp) -> Vec<Answer> {
    match op {
        KvOp::Lock(LockOp::Acquire { lock, .. }) => {
            let token = spec.lock.token(*lock);
            let mut v = vec![
                Answer::Acquired { token: token + 1 },
                Answer::Acquired { token },
            ];
            v.extend(
                spec.lock
                    .holder(*lock)
                    .map(|holder| Answer::Busy { holder }),
            );
            v
        }
        KvOp::Lock(LockOp::Release { .. }) => vec![Answer::Released, Answer::NotHolder],
        KvOp::Lock(LockOp::KeepAlive { .. }) => vec![Answer::Alive],
        KvOp::Lock(LockOp::Validate { .. }) => vec![Answer::Valid(true), Answer::Valid(false)],
        op => vec![spec.clone().invoke(op)],
    }
}

/// Check a lock-service history (ops [`KvOp::Lock`]; key-value ops are allowed too, against
/// the same store) against the lock service with expiring sessions: holders exclusive among
/// live sessions, only a holder releases, fencing tokens count acquisitions, and a session
/// that expired (which its client cannot observe but through others' grants) never succeeds
/// again. A request its client saw refused as expired belongs in the history without a
/// return: whether it took effect before the session expired is unknown.
///
/// Wing–Gong–Lowe search with memoization, like [`check_kv`], over the whole history (see
/// the module doc for why it is not split by lock).
pub fn check_lock(history: &[Op]) -> Result<(), LockFailure> {
    let mut ops: Vec<&Op> = history.iter().collect();
    for op in &ops {
        if let Some(r) = op.ret {
            assert!(
                r >= op.call,
                "an operation returned before it was called: {op:?}"
            );
        }
    }
    ops.sort_by_key(|o| o.call);
    let n = ops.len();
    let words = n.div_ceil(64);
    let must = ops.iter().filter(|o| o.ret.is_some()).count();
    let answers: Vec<Option<Answer>> = ops
        .iter()
        .map(|o| o.out.clone().map(Answer::from))
        .collect();
    struct Frame {
        done: Vec<u64>,
        spec: ServiceSpec,
        completed: usize,
        /// The next (operation, answer) to try from this frame.
        next: (usize, usize),
    }
    let is_done = |d: &[u64], i: usize| d[i / 64] >> (i % 64) & 1 == 1;
    let mut seen: HashSet<(Vec<u64>, ServiceSpec)> = HashSet::new();
    let mut stack = vec![Frame {
        done: vec![0; words],
        spec: ServiceSpec::default(),
        completed: 0,
        next: (0, 0),
    }];
    let mut deepest = 0;
    let mut stuck = String::new();
    while let Some(frame) = stack.last_mut() {
        if frame.completed == must {
            return Ok(());
        }
        // An op may go next only if it was called before every undone completed op returned;
        // the undone completed op that returns first is the one that must come soonest.
        let first_due = (0..n)
            .filter(|&i| !is_done(&frame.done, i))
            .filter(|&i| ops[i].ret.is_some())
            .min_by_key(|&i| ops[i].ret);
        let horizon = first_due.and_then(|i| ops[i].ret).unwrap_or(u64::MAX);
        if frame.completed > deepest || stuck.is_empty() {
            deepest = frame.completed;
            if let Some(i) = first_due {
                stuck = describe_stuck(ops[i], &frame.spec);
            }
        }
        let mut child = None;
        let (mut i, mut k) = frame.next;
        'ops: while i < n && ops[i].call <= horizon {
            if !is_done(&frame.done, i) {
                let candidates = match &answers[i] {
                    Some(a) => vec![a.clone()],
                    None => possible_answers(&frame.spec, &ops[i].op),
                };
                while k < candidates.len() {
                    let mut spec = frame.spec.clone();
                    let valid = spec.is_valid_step(&ops[i].op, &candidates[k]);
                    k += 1;
                    if !valid {
                        continue;
                    }
                    let mut done = frame.done.clone();
                    done[i / 64] |= 1 << (i % 64);
                    if seen.insert((done.clone(), spec.clone())) {
                        let completed = frame.completed + usize::from(ops[i].ret.is_some());
                        child = Some(Frame {
                            done,
                            spec,
                            completed,
                            next: (0, 0),
                        });
                        break 'ops;
                    }
                }
            }
            i += 1;
            k = 0;
        }
        frame.next = (i, k);
        match child {
            Some(c) => stack.push(c),
            None => {
                stack.pop();
            }
        }
        if seen.len() > MAX_CONFIGS {
            return Err(LockFailure::GaveUp);
        }
    }
    Err(LockFailure::NotLinearizable {
        ops: n,
        ordered: deepest,
        completed: must,
        stuck,
    })
}

/// The op that had to come next where the furthest order stopped, and what the
/// specification says there: in words, for the violation's detail.
fn describe_stuck(op: &Op, spec: &ServiceSpec) -> String {
    let answer = spec.clone().invoke(&op.op);
    let what = match &op.op {
        KvOp::Lock(l) => format!("{l:?}"),
        other => format!("{other:?}"),
    };
    let lock_state = match &op.op {
        KvOp::Lock(
            LockOp::Acquire { lock, .. }
            | LockOp::Release { lock, .. }
            | LockOp::Validate { lock, .. },
        ) => format!(
            ", lock {lock} held by {:?} with token {}",
            spec.lock.holder(*lock),
            spec.lock.token(*lock)
        ),
        _ => String::new(),
    };
    let expired = if spec.expired.is_empty() {
        String::new()
    } else {
        format!(", sessions expired: {:?}", spec.expired)
    };
    format!(
        "then client {}'s {what} (called at {}, returned {:?} at {}) cannot be ordered: the lock service answers {answer:?} there{lock_state}{expired}",
        op.client,
        op.call,
        op.out.clone().map(Answer::from).unwrap_or(Answer::Expired),
        op.ret.unwrap_or(0),
    )
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

    // -----------------------------------------------------------------------------------------
    // Lock histories
    // -----------------------------------------------------------------------------------------

    use paxraft_impls::sm::LockOutput;

    fn lk(client: u64, call: u64, ret: Option<u64>, op: LockOp, out: Option<LockOutput>) -> Op {
        Op {
            client,
            call,
            ret,
            op: KvOp::Lock(op),
            out: out.map(KvOutput::Lock),
        }
    }
    fn acq(owner: u64) -> LockOp {
        LockOp::Acquire { lock: 0, owner }
    }
    fn rel(owner: u64) -> LockOp {
        LockOp::Release { lock: 0, owner }
    }
    fn alive(owner: u64) -> LockOp {
        LockOp::KeepAlive { owner }
    }
    fn granted(token: u64) -> Option<LockOutput> {
        Some(LockOutput::Acquired { token })
    }
    fn not_linearizable(h: &[Op]) -> String {
        match check_lock(h) {
            Err(e @ LockFailure::NotLinearizable { .. }) => e.to_string(),
            other => panic!("expected a verdict of not linearizable, got {other:?}"),
        }
    }

    /// Contention, a handover after the holder's session expired (its release was refused
    /// as expired, so it has no return), and a pending acquire: linearizable.
    #[test]
    fn a_lock_history_with_a_handover_after_expiry_passes() {
        let h = vec![
            lk(3, 0, Some(5), acq(3), granted(1)),
            lk(3, 6, Some(8), alive(3), Some(LockOutput::Alive)),
            lk(4, 7, Some(9), acq(4), Some(LockOutput::Busy { holder: 3 })),
            lk(4, 10, Some(12), rel(4), Some(LockOutput::NotHolder)),
            // Client 3's release was refused: its session expired.
            lk(3, 11, None, rel(3), None),
            lk(4, 20, Some(25), acq(4), granted(2)),
            lk(
                5,
                21,
                Some(24),
                acq(5),
                Some(LockOutput::Busy { holder: 4 }),
            ),
            lk(4, 26, Some(30), rel(4), Some(LockOutput::Released)),
            lk(5, 31, Some(35), acq(5), granted(3)),
            lk(4, 32, None, acq(4), None),
        ];
        assert_eq!(check_lock(&h), Ok(()));
    }

    /// Two holders at once: the second grant is valid only as the first holder's expiry, and
    /// then the first holder's later keep-alive cannot have succeeded.
    #[test]
    fn two_overlapping_holders_fail_naming_the_expired_holder() {
        let h = vec![
            lk(3, 0, Some(5), acq(3), granted(1)),
            lk(4, 10, Some(15), acq(4), granted(2)),
            lk(3, 20, Some(25), alive(3), Some(LockOutput::Alive)),
        ];
        let e = not_linearizable(&h);
        assert!(
            e.contains("client 3's KeepAlive { owner: 3 }")
                && e.contains("answers Expired")
                && e.contains("sessions expired: {3}"),
            "{e}"
        );
        // The same grants with one token for both: a token must count acquisitions.
        let h = vec![
            lk(3, 0, Some(5), acq(3), granted(1)),
            lk(4, 10, Some(15), acq(4), granted(1)),
        ];
        let e = not_linearizable(&h);
        assert!(e.contains("answers Busy { holder: 3 }"), "{e}");
    }

    /// A release by a client that does not hold the lock succeeded (bug zoo L1's symptom).
    #[test]
    fn a_release_by_a_non_owner_fails_naming_it() {
        let h = vec![
            lk(3, 0, Some(5), acq(3), granted(1)),
            lk(4, 10, Some(15), rel(4), Some(LockOutput::Released)),
        ];
        let e = not_linearizable(&h);
        assert!(
            e.contains("client 4's Release { lock: 0, owner: 4 }")
                && e.contains("answers NotHolder there, lock 0 held by Some(3) with token 1"),
            "{e}"
        );
    }

    /// An acquire whose answer was lost may have been granted (after the holder expired):
    /// the client's later release then succeeds; the old holder is expired from then on.
    #[test]
    fn a_pending_acquire_may_have_been_granted() {
        let mut h = vec![
            lk(3, 0, Some(5), acq(3), granted(1)),
            lk(4, 6, None, acq(4), None),
            lk(4, 20, Some(25), rel(4), Some(LockOutput::Released)),
        ];
        assert_eq!(check_lock(&h), Ok(()));
        h.push(lk(3, 30, Some(35), alive(3), Some(LockOutput::Alive)));
        not_linearizable(&h);
    }

    /// Three clients taking turns for 3,000 ops with overlapping windows: fast.
    #[test]
    fn a_long_lock_history_is_fast() {
        let mut h = Vec::new();
        let mut token = 0;
        for round in 0..1_000u64 {
            let owner = 3 + round % 3;
            let t = round * 10;
            token += 1;
            h.push(lk(owner, t, Some(t + 4), acq(owner), granted(token)));
            let other = 3 + (round + 1) % 3;
            h.push(lk(
                other,
                t + 1,
                Some(t + 3),
                acq(other),
                Some(LockOutput::Busy { holder: owner }),
            ));
            h.push(lk(
                owner,
                t + 5,
                Some(t + 9),
                rel(owner),
                Some(LockOutput::Released),
            ));
        }
        let start = std::time::Instant::now();
        assert_eq!(check_lock(&h), Ok(()));
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }

    /// Every order of the ops that real time allows, pending ops in or out, with the
    /// recorded answer or (pending) any of a fixed superset of answers: whether the lock
    /// specification accepts one. Exponential; for a few ops only.
    fn brute_force_lock(h: &[Op]) -> bool {
        fn go(h: &[Op], used: u32, spec: &ServiceSpec) -> bool {
            let completed = (0..h.len()).filter(|&i| h[i].ret.is_some());
            if completed.clone().all(|i| used >> i & 1 == 1) {
                return true;
            }
            (0..h.len()).any(|i| {
                let free = used >> i & 1 == 0
                    && (0..h.len())
                        .all(|j| used >> j & 1 == 1 || h[j].ret.map_or(true, |r| r >= h[i].call));
                let answers: Vec<Answer> = match &h[i].out {
                    Some(o) => vec![Answer::from(o.clone())],
                    None => (1..=5)
                        .map(|token| Answer::Acquired { token })
                        .chain((0..8).map(|holder| Answer::Busy { holder }))
                        .chain([Answer::Released, Answer::NotHolder, Answer::Alive])
                        .collect(),
                };
                free && answers.iter().any(|a| {
                    let mut s = spec.clone();
                    s.is_valid_step(&h[i].op, a) && go(h, used | 1 << i, &s)
                })
            })
        }
        go(h, 0, &ServiceSpec::default())
    }

    /// On 4,000 random lock histories of up to 6 ops by 3 owners (half of them run on a
    /// lock service whose sessions expire at random, half with random answers; a fifth of
    /// the ops pending), [`check_lock`] agrees with [`brute_force_lock`], and both verdicts
    /// occur often.
    #[test]
    fn check_lock_agrees_with_brute_force_on_small_histories() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let (mut yes, mut no) = (0, 0);
        for case in 0..4_000 {
            let n = rng.gen_range(1..=6);
            let mut h: Vec<Op> = (0..n)
                .map(|_| {
                    let owner = rng.gen_range(3..6);
                    let call = rng.gen_range(0..20);
                    let op = match rng.gen_range(0..3) {
                        0 => acq(owner),
                        1 => rel(owner),
                        _ => alive(owner),
                    };
                    let ret = (!rng.gen_bool(0.2)).then(|| call + rng.gen_range(0..6));
                    lk(owner, call, ret, op, None)
                })
                .collect();
            if case % 2 == 0 {
                // Run the ops on a real lock service at a point of their interval, in that
                // order, with sessions expiring at random before an op.
                let mut at: Vec<(u64, usize)> = h
                    .iter()
                    .enumerate()
                    .map(|(i, o)| (rng.gen_range(o.call..=o.ret.unwrap_or(o.call + 6)), i))
                    .collect();
                at.sort();
                let mut spec = ServiceSpec::default();
                for (_, i) in at {
                    if rng.gen_bool(0.15) {
                        let owner = rng.gen_range(3..6);
                        spec.is_valid_step(&KvOp::Lock(alive(owner)), &Answer::Expired);
                    }
                    let a = spec.invoke(&h[i].op);
                    if h[i].ret.is_some() {
                        h[i].out = match a {
                            Answer::Expired => {
                                h[i].ret = None; // refused as expired: pending
                                None
                            }
                            a => Some(answer_to_output(a)),
                        };
                    }
                }
            } else {
                for o in h.iter_mut().filter(|o| o.ret.is_some()) {
                    o.out = Some(KvOutput::Lock(match o.op {
                        KvOp::Lock(LockOp::Acquire { .. }) if rng.gen_bool(0.6) => {
                            LockOutput::Acquired {
                                token: rng.gen_range(1..4),
                            }
                        }
                        KvOp::Lock(LockOp::Acquire { .. }) => LockOutput::Busy {
                            holder: rng.gen_range(3..6),
                        },
                        KvOp::Lock(LockOp::Release { .. }) if rng.gen_bool(0.5) => {
                            LockOutput::Released
                        }
                        KvOp::Lock(LockOp::Release { .. }) => LockOutput::NotHolder,
                        _ => LockOutput::Alive,
                    }));
                }
            }
            let expected = brute_force_lock(&h);
            let got = check_lock(&h);
            assert_eq!(got.is_ok(), expected, "case {case}: {h:#?}\n{got:?}");
            if expected {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(yes >= 1_000 && no >= 1_000, "{yes} linearizable, {no} not");
    }

    fn answer_to_output(a: Answer) -> KvOutput {
        KvOutput::Lock(match a {
            Answer::Acquired { token } => LockOutput::Acquired { token },
            Answer::Busy { holder } => LockOutput::Busy { holder },
            Answer::Released => LockOutput::Released,
            Answer::NotHolder => LockOutput::NotHolder,
            Answer::Alive => LockOutput::Alive,
            other => unreachable!("not a lock answer here: {other:?}"),
        })
    }
}
