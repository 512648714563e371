//! Replicated state machines, applied by a host from committed commands, and the client
//! sessions that make a retried request take effect exactly once.
//!
//! The protocols never look inside a command; the *host* applies each committed command to a
//! [`StateMachine`]. Two ship with paxraft:
//!
//! * [`Kv`]: a key-value store with get, put and compare-and-swap;
//! * [`LockService`]: a Chubby-style lock service whose locks carry monotonically increasing
//!   fencing tokens (Burrows, *The Chubby lock service*, §2.4 "sequencers"), so a resource can
//!   refuse a holder whose lock was meanwhile given to someone else.
//!
//! A client may time out and resend a request that was in fact committed; without care the
//! retry would apply twice (a put would clobber a later put, a lock would be acquired twice).
//! [`Sessions`] follows the Raft dissertation §6.3: every request carries `(client, seq)`;
//! the host remembers each client's results for requests the client has not yet acknowledged
//! and answers a duplicate with the original result instead of applying it again. Clients may
//! keep many requests outstanding: a request also carries `acked`, the lowest sequence number
//! whose reply the client has not yet received, and results below it are discarded.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// A deterministic state machine. `apply` must depend only on the state and the op.
pub trait StateMachine: Clone + Debug + Default + Eq + Hash + Send + 'static {
    /// An operation clients submit.
    type Op: Clone + Debug + Eq + Hash + Ord + Send + 'static;
    /// What applying an operation returns to the client.
    type Output: Clone + Debug + Eq + Hash + Send + 'static;
    /// Apply `op` and return its result.
    fn apply(&mut self, op: &Self::Op) -> Self::Output;
    /// Whether `op` leaves the state unchanged (a read). Hosts may use it to skip work.
    fn is_read_only(op: &Self::Op) -> bool;
    /// Answer read-only `op` from the current state, without the log: what hosts serving
    /// linearizable reads ([`crate::Replica::read`]) call. `None` when `op` is not read-only.
    fn query(&self, op: &Self::Op) -> Option<Self::Output>;
}

// ---------------------------------------------------------------------------------------------
// Key-value store
// ---------------------------------------------------------------------------------------------

/// A key of the key-value store.
pub type Key = u64;
/// A value of the key-value store.
pub type Value = Vec<u8>;

/// An operation on [`Kv`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a key.
    Get(Key),
    /// Write a key.
    Put(Key, Value),
    /// Write `new` if the key currently holds `expect` (`None`: the key is absent).
    Cas {
        /// The key.
        key: Key,
        /// The value the key must hold for the write to happen.
        expect: Option<Value>,
        /// The value written.
        new: Value,
    },
}

/// The result of a [`KvOp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOutput {
    /// A get's value (`None`: absent).
    Value(Option<Value>),
    /// A put took effect.
    Written,
    /// A CAS: `Ok` when it swapped, else the value actually found.
    Cas(Result<(), Option<Value>>),
}

/// A key-value store. A `BTreeMap` so that equal stores hash equally (model checking).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kv {
    map: BTreeMap<Key, Value>,
}

impl Kv {
    /// The value under `key`.
    pub fn get(&self, key: Key) -> Option<&Value> {
        self.map.get(&key)
    }
    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl StateMachine for Kv {
    type Op = KvOp;
    type Output = KvOutput;

    fn apply(&mut self, op: &KvOp) -> KvOutput {
        match op {
            KvOp::Get(k) => KvOutput::Value(self.map.get(k).cloned()),
            KvOp::Put(k, v) => {
                self.map.insert(*k, v.clone());
                KvOutput::Written
            }
            KvOp::Cas { key, expect, new } => {
                let current = self.map.get(key);
                if current == expect.as_ref() {
                    self.map.insert(*key, new.clone());
                    KvOutput::Cas(Ok(()))
                } else {
                    KvOutput::Cas(Err(current.cloned()))
                }
            }
        }
    }

    fn is_read_only(op: &KvOp) -> bool {
        matches!(op, KvOp::Get(_))
    }

    fn query(&self, op: &KvOp) -> Option<KvOutput> {
        match op {
            KvOp::Get(k) => Some(KvOutput::Value(self.map.get(k).cloned())),
            KvOp::Put(..) | KvOp::Cas { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lock service
// ---------------------------------------------------------------------------------------------

/// A lock's name.
pub type LockId = u64;
/// Who holds a lock.
pub type Owner = u64;

/// An operation on [`LockService`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockOp {
    /// Take `lock` for `owner` if it is free (re-acquiring a lock one holds is idempotent).
    Acquire {
        /// The lock.
        lock: LockId,
        /// Who takes it.
        owner: Owner,
    },
    /// Give `lock` back; only its holder may.
    Release {
        /// The lock.
        lock: LockId,
        /// Who gives it back.
        owner: Owner,
    },
    /// A protected resource asks whether `token` is still the current holder's token of `lock`.
    Validate {
        /// The lock.
        lock: LockId,
        /// The fencing token to check.
        token: u64,
    },
}

/// The result of a [`LockOp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockOutput {
    /// The lock is held by the caller, with this fencing token.
    Acquired {
        /// The fencing token.
        token: u64,
    },
    /// The lock is held by someone else.
    Busy {
        /// The holder.
        holder: Owner,
    },
    /// The lock was released.
    Released,
    /// The caller does not hold the lock (release refused).
    NotHolder,
    /// A fencing check: whether the token belongs to the current holder.
    Valid(bool),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct LockState {
    holder: Option<Owner>,
    /// The token of the latest acquisition; strictly increases with every acquisition.
    token: u64,
}

/// A Chubby-style lock service with fencing tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockService {
    locks: BTreeMap<LockId, LockState>,
}

impl LockService {
    /// The current holder of `lock`.
    pub fn holder(&self, lock: LockId) -> Option<Owner> {
        self.locks.get(&lock).and_then(|l| l.holder)
    }
}

impl StateMachine for LockService {
    type Op = LockOp;
    type Output = LockOutput;

    fn apply(&mut self, op: &LockOp) -> LockOutput {
        match *op {
            LockOp::Acquire { lock, owner } => {
                let l = self.locks.entry(lock).or_default();
                match l.holder {
                    Some(h) if h == owner => LockOutput::Acquired { token: l.token },
                    Some(h) => LockOutput::Busy { holder: h },
                    None => {
                        l.token += 1;
                        l.holder = Some(owner);
                        LockOutput::Acquired { token: l.token }
                    }
                }
            }
            LockOp::Release { lock, owner } => match self.locks.get_mut(&lock) {
                Some(l) if l.holder == Some(owner) => {
                    l.holder = None;
                    LockOutput::Released
                }
                _ => LockOutput::NotHolder,
            },
            LockOp::Validate { .. } => self.query(op).expect("validate is read-only"),
        }
    }

    fn is_read_only(op: &LockOp) -> bool {
        matches!(op, LockOp::Validate { .. })
    }

    fn query(&self, op: &LockOp) -> Option<LockOutput> {
        match *op {
            LockOp::Validate { lock, token } => Some(LockOutput::Valid(
                self.locks
                    .get(&lock)
                    .is_some_and(|l| l.holder.is_some() && l.token == token),
            )),
            LockOp::Acquire { .. } | LockOp::Release { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client sessions
// ---------------------------------------------------------------------------------------------

/// A client's identity.
pub type ClientId = u64;

/// A command as it travels through the log: an op plus the session data that deduplicates it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Request<Op> {
    /// Who sent it.
    pub client: ClientId,
    /// The client's sequence number for this request, from 1, never reused.
    pub seq: u64,
    /// Every request of this client below this sequence number has been answered, so its
    /// result may be forgotten.
    pub acked: u64,
    /// The operation.
    pub op: Op,
}

/// Why a request could not be answered from its session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SessionError {
    /// The request is older than what the client acknowledged: its result was discarded. A
    /// correct client never resends such a request.
    Stale {
        /// The client.
        client: ClientId,
        /// The request's sequence number.
        seq: u64,
    },
    /// The sequence number was used before for a different operation: answering with the
    /// earlier result would tell the client its new operation took effect, and applying it
    /// would break exactly-once for the old one. A correct client never reuses a number.
    Reused {
        /// The client.
        client: ClientId,
        /// The reused sequence number.
        seq: u64,
    },
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Stale { client, seq } => {
                write!(
                    f,
                    "request {seq} of client {client} was already acknowledged"
                )
            }
            SessionError::Reused { client, seq } => {
                write!(
                    f,
                    "client {client} reused sequence number {seq} for a different operation"
                )
            }
        }
    }
}

impl std::error::Error for SessionError {}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Session<Op, O> {
    /// Results not yet acknowledged, by sequence number, with the operation that produced
    /// each (a retry must carry the same one).
    results: BTreeMap<u64, (Op, O)>,
    /// Everything below this was acknowledged and forgotten.
    acked: u64,
}

impl<Op, O> Default for Session<Op, O> {
    fn default() -> Self {
        Session {
            results: BTreeMap::new(),
            acked: 0,
        }
    }
}

/// A state machine behind client sessions: each `(client, seq)` takes effect at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sessions<S: StateMachine> {
    sm: S,
    sessions: BTreeMap<ClientId, Session<S::Op, S::Output>>,
    /// How many commands changed the state machine (duplicates excluded).
    applied: u64,
}

impl<S: StateMachine> Default for Sessions<S> {
    fn default() -> Self {
        Sessions {
            sm: S::default(),
            sessions: BTreeMap::new(),
            applied: 0,
        }
    }
}

/// Outcome of [`Sessions::apply`].
pub type Applied<S> = Result<<S as StateMachine>::Output, SessionError>;

impl<S: StateMachine> Sessions<S> {
    /// An empty state machine with no sessions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply a committed request exactly once: a duplicate gets the original result.
    pub fn apply(&mut self, req: &Request<S::Op>) -> Applied<S> {
        self.apply_inner(req, true)
    }

    fn apply_inner(&mut self, req: &Request<S::Op>, dedup: bool) -> Applied<S> {
        let session = self.sessions.entry(req.client).or_default();
        // The client's acknowledgement lets us forget results it has received. It is
        // monotonic: a reordered older request must not resurrect forgotten ones.
        if req.acked > session.acked {
            session.acked = req.acked;
            session.results = session.results.split_off(&req.acked);
        }
        if dedup {
            if let Some((op, out)) = session.results.get(&req.seq) {
                if *op != req.op {
                    return Err(SessionError::Reused {
                        client: req.client,
                        seq: req.seq,
                    });
                }
                return Ok(out.clone());
            }
            if req.seq < session.acked {
                return Err(SessionError::Stale {
                    client: req.client,
                    seq: req.seq,
                });
            }
        }
        let out = self.sm.apply(&req.op);
        self.applied += 1;
        session
            .results
            .insert(req.seq, (req.op.clone(), out.clone()));
        Ok(out)
    }

    /// The state machine behind the sessions.
    pub fn state(&self) -> &S {
        &self.sm
    }

    /// How many requests took effect (duplicates excluded).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Bug zoo B2: apply without consulting the session, so a retry applies twice.
    #[cfg(feature = "bug-zoo")]
    pub fn apply_without_dedup(&mut self, req: &Request<S::Op>) -> Applied<S> {
        self.apply_inner(req, false)
    }

    /// Apply as `cfg` says: [`Sessions::apply`], or, with bug B2
    /// ([`crate::Bug::DuplicateApply`]) switched on, without consulting the session. For hosts
    /// in other crates, which cannot see this crate's features: without `bug-zoo`,
    /// [`crate::Config::bug`] is constant `false` and the buggy path compiles away.
    #[inline]
    pub fn apply_as(&mut self, req: &Request<S::Op>, cfg: &crate::Config) -> Applied<S> {
        self.apply_inner(req, !cfg.bug(crate::Bug::DuplicateApply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<Op>(client: ClientId, seq: u64, op: Op) -> Request<Op> {
        Request {
            client,
            seq,
            acked: 0,
            op,
        }
    }

    #[test]
    fn kv_get_put() {
        let mut kv = Kv::default();
        assert_eq!(kv.apply(&KvOp::Get(1)), KvOutput::Value(None));
        assert_eq!(kv.apply(&KvOp::Put(1, b"a".to_vec())), KvOutput::Written);
        assert_eq!(
            kv.apply(&KvOp::Get(1)),
            KvOutput::Value(Some(b"a".to_vec()))
        );
        assert!(Kv::is_read_only(&KvOp::Get(1)));
        assert!(!Kv::is_read_only(&KvOp::Put(1, vec![])));
        // A query answers a read as applying it would, and refuses a write.
        assert_eq!(
            kv.query(&KvOp::Get(1)),
            Some(KvOutput::Value(Some(b"a".to_vec())))
        );
        assert_eq!(kv.query(&KvOp::Put(1, vec![])), None);
    }

    #[test]
    fn kv_cas_swaps_only_on_match() {
        let mut kv = Kv::default();
        // Absent key: expect None swaps.
        let cas = |expect: Option<&[u8]>, new: &[u8]| KvOp::Cas {
            key: 7,
            expect: expect.map(<[u8]>::to_vec),
            new: new.to_vec(),
        };
        assert_eq!(kv.apply(&cas(Some(b"x"), b"y")), KvOutput::Cas(Err(None)));
        assert_eq!(kv.get(7), None, "a failed CAS writes nothing");
        assert_eq!(kv.apply(&cas(None, b"a")), KvOutput::Cas(Ok(())));
        assert_eq!(
            kv.apply(&cas(None, b"b")),
            KvOutput::Cas(Err(Some(b"a".to_vec())))
        );
        assert_eq!(kv.apply(&cas(Some(b"a"), b"c")), KvOutput::Cas(Ok(())));
        assert_eq!(kv.get(7), Some(&b"c".to_vec()));
    }

    #[test]
    fn kv_len_counts_distinct_keys() {
        let mut kv = Kv::default();
        assert_eq!((kv.len(), kv.is_empty()), (0, true));
        kv.apply(&KvOp::Put(1, b"a".to_vec()));
        assert_eq!((kv.len(), kv.is_empty()), (1, false));
        kv.apply(&KvOp::Put(2, b"b".to_vec()));
        // An overwrite, a read and a failed CAS add no key.
        kv.apply(&KvOp::Put(1, b"c".to_vec()));
        kv.apply(&KvOp::Get(3));
        kv.apply(&KvOp::Cas {
            key: 4,
            expect: Some(b"x".to_vec()),
            new: b"y".to_vec(),
        });
        assert_eq!((kv.len(), kv.is_empty()), (2, false));
    }

    #[test]
    fn lock_validate_is_the_only_read() {
        assert!(LockService::is_read_only(&LockOp::Validate {
            lock: 1,
            token: 1
        }));
        assert!(!LockService::is_read_only(&LockOp::Acquire {
            lock: 1,
            owner: 1
        }));
        assert!(!LockService::is_read_only(&LockOp::Release {
            lock: 1,
            owner: 1
        }));
    }

    #[test]
    fn stale_request_error_names_the_request() {
        let e = SessionError::Stale { client: 7, seq: 3 };
        assert_eq!(
            e.to_string(),
            "request 3 of client 7 was already acknowledged"
        );
    }

    #[test]
    fn lock_tokens_increase_with_every_acquisition() {
        let mut ls = LockService::default();
        let acq = |owner| LockOp::Acquire { lock: 1, owner };
        let rel = |owner| LockOp::Release { lock: 1, owner };
        assert_eq!(ls.apply(&acq(10)), LockOutput::Acquired { token: 1 });
        // Re-acquiring is idempotent: same token.
        assert_eq!(ls.apply(&acq(10)), LockOutput::Acquired { token: 1 });
        assert_eq!(ls.apply(&acq(20)), LockOutput::Busy { holder: 10 });
        assert_eq!(
            ls.apply(&rel(20)),
            LockOutput::NotHolder,
            "only the holder may release"
        );
        assert_eq!(ls.holder(1), Some(10));
        assert_eq!(ls.apply(&rel(10)), LockOutput::Released);
        assert_eq!(ls.apply(&acq(20)), LockOutput::Acquired { token: 2 });
        assert_eq!(ls.holder(1), Some(20));
    }

    #[test]
    fn fencing_refuses_a_former_holder() {
        let mut ls = LockService::default();
        let LockOutput::Acquired { token: old } = ls.apply(&LockOp::Acquire { lock: 3, owner: 1 })
        else {
            panic!("free lock not granted")
        };
        assert_eq!(
            ls.apply(&LockOp::Validate {
                lock: 3,
                token: old
            }),
            LockOutput::Valid(true)
        );
        ls.apply(&LockOp::Release { lock: 3, owner: 1 });
        assert_eq!(
            ls.apply(&LockOp::Validate {
                lock: 3,
                token: old
            }),
            LockOutput::Valid(false),
            "a released lock's token is dead"
        );
        let LockOutput::Acquired { token: new } = ls.apply(&LockOp::Acquire { lock: 3, owner: 2 })
        else {
            panic!("free lock not granted")
        };
        assert!(new > old);
        assert_eq!(
            ls.apply(&LockOp::Validate {
                lock: 3,
                token: old
            }),
            LockOutput::Valid(false)
        );
        assert_eq!(
            ls.apply(&LockOp::Validate {
                lock: 3,
                token: new
            }),
            LockOutput::Valid(true)
        );
        assert_eq!(
            ls.apply(&LockOp::Release { lock: 3, owner: 1 }),
            LockOutput::NotHolder
        );
    }

    #[test]
    fn retried_request_applies_exactly_once() {
        let mut s: Sessions<Kv> = Sessions::new();
        let put_a = req(1, 1, KvOp::Put(5, b"a".to_vec()));
        let put_b = req(2, 1, KvOp::Put(5, b"b".to_vec()));
        assert_eq!(s.apply(&put_a), Ok(KvOutput::Written));
        assert_eq!(s.apply(&put_b), Ok(KvOutput::Written));
        // Client 1's retry of its put arrives late: it must not clobber b.
        assert_eq!(s.apply(&put_a), Ok(KvOutput::Written));
        assert_eq!(s.state().get(5), Some(&b"b".to_vec()));
        assert_eq!(s.applied(), 2);
    }

    #[test]
    fn retried_cas_returns_the_original_result() {
        let mut s: Sessions<Kv> = Sessions::new();
        let cas = req(
            1,
            1,
            KvOp::Cas {
                key: 1,
                expect: None,
                new: b"x".to_vec(),
            },
        );
        assert_eq!(s.apply(&cas), Ok(KvOutput::Cas(Ok(()))));
        // Applied again it would fail (the key now holds x); the session answers Ok again.
        assert_eq!(s.apply(&cas), Ok(KvOutput::Cas(Ok(()))));
    }

    #[test]
    fn retried_acquire_is_not_a_second_acquisition() {
        let mut s: Sessions<LockService> = Sessions::new();
        let acq = req(9, 1, LockOp::Acquire { lock: 1, owner: 9 });
        let rel = req(9, 2, LockOp::Release { lock: 1, owner: 9 });
        assert_eq!(s.apply(&acq), Ok(LockOutput::Acquired { token: 1 }));
        assert_eq!(s.apply(&rel), Ok(LockOutput::Released));
        // A duplicate of the acquire after the release must not take the lock again.
        assert_eq!(s.apply(&acq), Ok(LockOutput::Acquired { token: 1 }));
        assert_eq!(s.state().holder(1), None);
    }

    #[test]
    fn pipelined_requests_are_forgotten_once_acknowledged() {
        let mut s: Sessions<Kv> = Sessions::new();
        for seq in 1..=3 {
            s.apply(&req(1, seq, KvOp::Put(seq, vec![]))).unwrap();
        }
        // The client has all replies below 3.
        let r4 = Request {
            client: 1,
            seq: 4,
            acked: 3,
            op: KvOp::Get(1),
        };
        assert!(s.apply(&r4).is_ok());
        assert_eq!(
            s.apply(&req(1, 1, KvOp::Put(1, vec![]))),
            Err(SessionError::Stale { client: 1, seq: 1 })
        );
        // Still-unacknowledged results are kept and replayed.
        assert_eq!(
            s.apply(&req(1, 3, KvOp::Put(3, vec![]))),
            Ok(KvOutput::Written)
        );
        assert_eq!(s.state().get(3), Some(&vec![]));
        assert_eq!(s.applied(), 4);
    }

    /// A sequence number reused for another operation is refused: neither answered with the
    /// first operation's result nor applied (diss. §6.3: the number names one request).
    #[test]
    fn a_reused_sequence_number_with_another_op_is_refused() {
        let mut s: Sessions<Kv> = Sessions::new();
        assert_eq!(
            s.apply(&req(1, 1, KvOp::Put(1, b"a".to_vec()))),
            Ok(KvOutput::Written)
        );
        assert_eq!(
            s.apply(&req(1, 1, KvOp::Put(1, b"b".to_vec()))),
            Err(SessionError::Reused { client: 1, seq: 1 })
        );
        assert_eq!(s.state().get(1), Some(&b"a".to_vec()), "not applied");
        assert_eq!(s.applied(), 1);
        // The genuine retry is still answered from the session.
        assert_eq!(
            s.apply(&req(1, 1, KvOp::Put(1, b"a".to_vec()))),
            Ok(KvOutput::Written)
        );
        assert_eq!(
            SessionError::Reused { client: 1, seq: 1 }.to_string(),
            "client 1 reused sequence number 1 for a different operation"
        );
    }

    #[cfg(feature = "bug-zoo")]
    #[test]
    fn without_dedup_a_retry_applies_twice() {
        let mut s: Sessions<Kv> = Sessions::new();
        let cas = req(
            1,
            1,
            KvOp::Cas {
                key: 1,
                expect: None,
                new: b"x".to_vec(),
            },
        );
        assert_eq!(s.apply_without_dedup(&cas), Ok(KvOutput::Cas(Ok(()))));
        assert_eq!(
            s.apply_without_dedup(&cas),
            Ok(KvOutput::Cas(Err(Some(b"x".to_vec()))))
        );
    }

    /// `apply_as` dedups unless the config switches B2 on (which only a bug-zoo build can).
    #[test]
    fn apply_as_follows_the_config() {
        let put = req(1, 1, KvOp::Put(1, b"x".to_vec()));
        let overwrite = req(2, 1, KvOp::Put(1, b"y".to_vec()));
        // A put, another client's put, then the first one's retry.
        let run = |cfg: &crate::Config| {
            let mut s: Sessions<Kv> = Sessions::new();
            for r in [&put, &overwrite, &put] {
                assert_eq!(s.apply_as(r, cfg), Ok(KvOutput::Written));
            }
            (s.state().get(1).cloned(), s.applied())
        };
        let mut cfg = crate::Config::default();
        assert_eq!(
            run(&cfg),
            (Some(b"y".to_vec()), 2),
            "the retry deduplicated"
        );
        if cfg.set_bug(crate::Bug::DuplicateApply) {
            assert_eq!(
                run(&cfg),
                (Some(b"x".to_vec()), 3),
                "B2: the retry applied again"
            );
        }
    }
}
