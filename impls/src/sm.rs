//! Replicated state machines, applied by a host from committed commands, and the client
//! sessions that make a retried request take effect exactly once.
//!
//! The protocols never look inside a command; the *host* applies each committed command to a
//! [`StateMachine`]. Two ship with paxraft:
//!
//! * [`Kv`]: a key-value store with get, put and compare-and-swap, which also serves the lock
//!   service's ops ([`KvOp::Lock`]): one replicated store for keys and locks, as etcd serves
//!   both from one, so that every host (runtime, model, simulator) replicates one command
//!   type and a workload picks which ops its clients send;
//! * [`LockService`]: a Chubby-style lock service whose locks carry monotonically increasing
//!   fencing tokens (Burrows, *The Chubby lock service*, §2.4 "sequencers"), so a resource can
//!   refuse a holder whose lock was meanwhile given to someone else; on its own, or as the
//!   lock half of [`Kv`];
//! * [`FencedStore`]: the resource side, a storage that refuses writes with an old token.
//!
//! A client may time out and resend a request that was in fact committed; without care the
//! retry would apply twice (a put would clobber a later put, a lock would be acquired twice).
//! [`Sessions`] follows the Raft dissertation §6.3: every request carries `(client, seq)`;
//! the host remembers each client's results for requests the client has not yet acknowledged
//! and answers a duplicate with the original result instead of applying it again. Clients may
//! keep many requests outstanding: a request also carries `acked`, the lowest sequence number
//! whose reply the client has not yet received, and results below it are discarded.
//!
//! ## Session expiry by log time
//!
//! Sessions can expire ([`Sessions::with_timeout`]), so that a crashed client's session (and,
//! in the lock service, every lock it holds) does not live for ever. Expiry must be
//! deterministic: every replica must expire the same session at the same point of the log.
//! The dissertation (§6.3) has the leader stamp its clock into each command and expires by
//! those timestamps; paxraft's protocols never look inside a command, so no leader can stamp
//! one. paxraft uses *log time* instead: every command applied advances a clock by one, and a
//! session whose client sent nothing (no request, no keep-alive) for `timeout` applied
//! commands expires at the next command. Log time only moves while others write, so an idle
//! cluster expires nobody: a deviation from §6.3 that keeps expiry a pure function of the log
//! (and the model checker's states free of clocks). A client that must stay alive while the
//! system is otherwise idle sends keep-alives ([`LockOp::KeepAlive`]).
//!
//! An expired session is gone for good: its client's later requests are refused with
//! [`SessionError::Expired`], never applied and never answered from a result (its results
//! were discarded with it). The refusal says nothing of an earlier copy of the same request:
//! one applied before the session expired, whose answer was lost, is refused like any other
//! when resent, so a request answered `Expired` has an unknown outcome, as one that timed
//! out. A client that wants to go on opens a new session under a new client id. Expiry is
//! checked in [`Sessions::apply`], oldest session first, from an index ordered by last
//! activity, so each apply does O(log n) work plus one step per session it expires: no
//! timers, no scan over all sessions.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A deterministic state machine. `apply` must depend only on the state and the op.
///
/// Serializable, so that a host can snapshot it ([`Sessions::encode`]) with the client
/// sessions that make retries exactly-once; `Sync`, so that a host's clients may read it
/// under a lease while the host's thread applies to it (the runtime's local reader).
pub trait StateMachine:
    Clone + Debug + Default + Eq + Hash + Send + Sync + Serialize + DeserializeOwned + 'static
{
    /// An operation clients submit.
    type Op: crate::Command + Sync + Serialize + DeserializeOwned;
    /// What applying an operation returns to the client.
    type Output: Clone + Debug + Eq + Hash + Send + Sync + Serialize + DeserializeOwned + 'static;
    /// Apply `op` and return its result.
    fn apply(&mut self, op: &Self::Op) -> Self::Output;
    /// Whether `op` leaves the state unchanged (a read). Hosts may use it to skip work.
    fn is_read_only(op: &Self::Op) -> bool;
    /// Answer read-only `op` from the current state, without the log: what hosts serving
    /// linearizable reads ([`crate::Replica::read`]) call. `None` when `op` is not read-only.
    fn query(&self, op: &Self::Op) -> Option<Self::Output>;
    /// [`StateMachine::query`], the answer written as `Ok` into `out` where it will stay
    /// (false: `op` is not read-only, and `out` is left as it was). A host answering many
    /// reads at once answers each in the slot its caller will read it from: an answer returned
    /// by value is built on the stack and copied, and the copy, reading back what was just
    /// written in narrower stores, stalled (issue 16: a lease read costs little more). The
    /// default calls `query`.
    fn query_into<E>(&self, op: &Self::Op, out: &mut Result<Self::Output, E>) -> bool {
        match self.query(op) {
            Some(answer) => {
                *out = Ok(answer);
                true
            }
            None => false,
        }
    }
    /// The session of `client` expired ([`Sessions`]): drop whatever the state machine keeps
    /// on its behalf. Called from `apply`, at the same point of the log on every replica. The
    /// key-value store keeps nothing per client (the default does nothing); the lock service
    /// frees the client's locks.
    fn expire(&mut self, client: ClientId) {
        let _ = client;
    }
    /// [`StateMachine::apply`], with the bug-zoo switches of `cfg` that belong to the state
    /// machine (the lock service's [`crate::Bug::LockReleaseByNonOwner`]). Without the
    /// `bug-zoo` feature every switch is off and this is `apply`.
    fn apply_with(&mut self, op: &Self::Op, cfg: &crate::Config) -> Self::Output {
        let _ = cfg;
        self.apply(op)
    }
}

// ---------------------------------------------------------------------------------------------
// Key-value store
// ---------------------------------------------------------------------------------------------

/// A key of the key-value store.
pub type Key = u64;
/// A value of the key-value store.
pub type Value = Vec<u8>;

/// An operation on [`Kv`].
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// An op on the store's locks ([`LockService`]; the lock workload's only ops).
    Lock(LockOp),
}

/// Written by hand for [`Clone::clone_from`]: a session keeps each unacknowledged request's op
/// and result in slots it reuses (`Results`), and `clone_from` writes a put over the slot's
/// old one in place, its value into the old value's buffer (`overwrite_value`). The derived
/// `clone_from` builds the whole op on the stack and copies it into the slot, and reading back
/// what was just written in narrower stores stalled each apply (issue 19).
impl Clone for KvOp {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            KvOp::Get(k) => KvOp::Get(*k),
            KvOp::Put(k, v) => KvOp::Put(*k, v.clone()),
            KvOp::Cas { key, expect, new } => KvOp::Cas {
                key: *key,
                expect: expect.clone(),
                new: new.clone(),
            },
            KvOp::Lock(op) => KvOp::Lock(op.clone()),
        }
    }

    #[inline]
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (KvOp::Get(k), KvOp::Get(s)) => *k = *s,
            (KvOp::Put(k, v), KvOp::Put(sk, sv)) => {
                *k = *sk;
                overwrite_value(v, sv);
            }
            (this, source) => *this = source.clone(),
        }
    }
}

/// By hand for `clone_from`, as [`KvOp`] is.
impl Clone for KvOutput {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            KvOutput::Value(v) => KvOutput::Value(v.clone()),
            KvOutput::Written => KvOutput::Written,
            KvOutput::Cas(r) => KvOutput::Cas(r.clone()),
            KvOutput::Lock(l) => KvOutput::Lock(l.clone()),
        }
    }

    #[inline]
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (KvOutput::Written, KvOutput::Written) => {}
            (KvOutput::Value(Some(v)), KvOutput::Value(Some(s))) => overwrite_value(v, s),
            (this, source) => *this = source.clone(),
        }
    }
}

/// Make `old` a copy of `new`, in `old`'s buffer (no allocation) unless that buffer is far
/// larger than `new`: a big value once held must not keep its memory under every small one
/// after it.
#[inline]
fn overwrite_value(old: &mut Value, new: &Value) {
    if old.capacity() <= new.len().saturating_mul(2).max(64) {
        old.clone_from(new)
    } else {
        *old = new.clone()
    }
}

impl crate::Command for KvOp {
    fn bytes(&self) -> usize {
        // The key and a tag; then the values, which are what can be large.
        16 + match self {
            KvOp::Get(_) | KvOp::Lock(_) => 0,
            KvOp::Put(_, v) => v.len(),
            KvOp::Cas { expect, new, .. } => expect.as_ref().map_or(0, Vec::len) + new.len(),
        }
    }
}

/// The result of a [`KvOp`].
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOutput {
    /// A get's value (`None`: absent).
    Value(Option<Value>),
    /// A put took effect.
    Written,
    /// A CAS: `Ok` when it swapped, else the value actually found.
    Cas(Result<(), Option<Value>>),
    /// What a lock op returned.
    Lock(LockOutput),
}

/// The key-value store's keys: a hash table (one probe a lookup, where a B-tree of a
/// thousand keys walks three nodes: the lease reads of a live cluster read it from other
/// threads while its node writes it, so each node walked is a likely cache miss). Hashed
/// with FxHash, which has no per-process seed: a replica stays deterministic.
type KvMap = HashMap<Key, Value, BuildHasherDefault<fxhash::FxHasher>>;

/// A key-value store, with the lock service's locks beside the keys. Its keys are a hash
/// table, so what must not depend on the table's order does not: equality compares contents,
/// the hash combines the entries' hashes in no order (equal stores hash equally: model
/// checking), and encoding and `Debug` list the keys in order (the bytes of a snapshot are
/// the same on every replica, and the same as when the keys were a `BTreeMap`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    #[serde(serialize_with = "in_key_order")]
    map: KvMap,
    /// The locks ([`KvOp::Lock`]); empty unless a client uses them.
    #[serde(default)]
    locks: LockService,
}

/// The keys in order, each with its value.
fn sorted(map: &KvMap) -> Vec<(&Key, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| **k);
    entries
}

fn in_key_order<S: serde::Serializer>(map: &KvMap, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(sorted(map))
}

impl std::hash::Hash for Kv {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Each entry hashed alone (SipHash, fixed keys) and the results summed: the same for
        // any order the table iterates in, and no allocation on the model checker's path.
        let entries = self.map.iter().fold(0u64, |sum, entry| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            entry.hash(&mut h);
            sum.wrapping_add(std::hash::Hasher::finish(&h))
        });
        self.map.len().hash(state);
        entries.hash(state);
        self.locks.hash(state);
    }
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("map", &self.map.iter().collect::<BTreeMap<_, _>>())
            .field("locks", &self.locks)
            .finish()
    }
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
    /// The store's locks.
    pub fn locks(&self) -> &LockService {
        &self.locks
    }
}

impl StateMachine for Kv {
    type Op = KvOp;
    type Output = KvOutput;

    fn apply(&mut self, op: &KvOp) -> KvOutput {
        match op {
            KvOp::Get(k) => KvOutput::Value(self.map.get(k).cloned()),
            KvOp::Put(k, v) => {
                // An overwrite copies into the value's own buffer (see `overwrite_value`).
                match self.map.get_mut(k) {
                    Some(old) => overwrite_value(old, v),
                    None => {
                        self.map.insert(*k, v.clone());
                    }
                }
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
            KvOp::Lock(op) => KvOutput::Lock(self.locks.apply(op)),
        }
    }

    fn is_read_only(op: &KvOp) -> bool {
        match op {
            KvOp::Get(_) => true,
            KvOp::Put(..) | KvOp::Cas { .. } => false,
            KvOp::Lock(op) => LockService::is_read_only(op),
        }
    }

    fn query(&self, op: &KvOp) -> Option<KvOutput> {
        match op {
            KvOp::Get(k) => Some(KvOutput::Value(self.map.get(k).cloned())),
            KvOp::Put(..) | KvOp::Cas { .. } => None,
            KvOp::Lock(op) => self.locks.query(op).map(KvOutput::Lock),
        }
    }

    fn query_into<E>(&self, op: &KvOp, out: &mut Result<KvOutput, E>) -> bool {
        match op {
            KvOp::Get(k) => {
                // Written field by field: a value cloned into a temporary was moved into
                // `out` in wider loads than it had been stored in, and stalled again.
                *out = Ok(KvOutput::Value(None));
                if let (Ok(KvOutput::Value(answer)), Some(v)) = (out, self.map.get(k)) {
                    answer
                        .insert(Vec::with_capacity(v.len()))
                        .extend_from_slice(v);
                }
                true
            }
            KvOp::Put(..) | KvOp::Cas { .. } => false,
            KvOp::Lock(op) => match self.locks.query(op) {
                Some(answer) => {
                    *out = Ok(KvOutput::Lock(answer));
                    true
                }
                None => false,
            },
        }
    }

    /// The keys belong to nobody; the expired client's locks are freed.
    fn expire(&mut self, client: ClientId) {
        self.locks.expire(client);
    }

    fn apply_with(&mut self, op: &KvOp, cfg: &crate::Config) -> KvOutput {
        match op {
            KvOp::Lock(op) => KvOutput::Lock(self.locks.apply_with(op, cfg)),
            _ => self.apply(op),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lock service
// ---------------------------------------------------------------------------------------------

/// A lock's name.
pub type LockId = u64;
/// Who holds a lock: the [`ClientId`] of the session that took it, so that the lock is freed
/// when that session expires ([`StateMachine::expire`]).
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
    /// Keep `owner`'s session alive and change nothing else (Chubby's KeepAlive, Burrows §2.8):
    /// what a holder sends while it has no other request to make. It goes through the log like
    /// any request, since only applied commands refresh a session.
    KeepAlive {
        /// Whose session.
        owner: Owner,
    },
}

/// Lock ops are a few integers: counted by [`crate::Config::max_batch`] alone.
impl crate::Command for LockOp {}

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
    /// A keep-alive was applied: the session lives on.
    Alive,
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
    /// The token of `lock`'s latest acquisition (0: never acquired).
    pub fn token(&self, lock: LockId) -> u64 {
        self.locks.get(&lock).map_or(0, |l| l.token)
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
            LockOp::KeepAlive { .. } => LockOutput::Alive,
        }
    }

    fn is_read_only(op: &LockOp) -> bool {
        matches!(op, LockOp::Validate { .. })
    }

    /// The expired session's locks are free again (Burrows §2.8: a lock whose holder's session
    /// expired is released); their tokens stay, so the next holder's token is higher.
    fn expire(&mut self, client: ClientId) {
        for l in self.locks.values_mut() {
            if l.holder == Some(client) {
                l.holder = None;
            }
        }
    }

    fn apply_with(&mut self, op: &LockOp, cfg: &crate::Config) -> LockOutput {
        match *op {
            // Bug zoo L1: the release frees the lock whoever asks.
            LockOp::Release { lock, .. } if cfg.bug(crate::Bug::LockReleaseByNonOwner) => {
                match self.locks.get_mut(&lock) {
                    Some(l) if l.holder.is_some() => {
                        l.holder = None;
                        LockOutput::Released
                    }
                    _ => LockOutput::NotHolder,
                }
            }
            _ => self.apply(op),
        }
    }

    fn query(&self, op: &LockOp) -> Option<LockOutput> {
        match *op {
            LockOp::Validate { lock, token } => Some(LockOutput::Valid(
                self.locks
                    .get(&lock)
                    .is_some_and(|l| l.holder.is_some() && l.token == token),
            )),
            LockOp::Acquire { .. } | LockOp::Release { .. } | LockOp::KeepAlive { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fenced storage
// ---------------------------------------------------------------------------------------------

/// Why [`FencedStore`] refused a write.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fenced {
    /// The lock whose token the write carried.
    pub lock: LockId,
    /// The token the write carried.
    pub token: u64,
    /// The highest token the store had accepted for that lock.
    pub highest: u64,
}

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "write with token {} of lock {} refused: token {} was accepted before",
            self.token, self.lock, self.highest
        )
    }
}

impl std::error::Error for Fenced {}

/// A storage service that the lock service protects, and that checks fencing tokens itself:
/// it accepts a write only with a token at least the highest it has accepted for the same
/// lock (Burrows §2.4, "sequencers"; Kleppmann, *How to do distributed locking*, 2016). A
/// holder that paused past its session, lost the lock and wakes up to write with its old
/// token is refused, however late its write arrives: the lock service cannot stop a write
/// already on its way, the resource can. Not replicated (one process, the resource side);
/// equal tokens are accepted, since one holder writes many times under one token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FencedStore {
    /// Per lock: the highest token accepted, and the value it wrote last.
    cells: BTreeMap<LockId, (u64, Value)>,
}

impl FencedStore {
    /// Write `value` under `lock` with fencing `token`: accepted when `token` is at least the
    /// highest token accepted for `lock`, refused with [`Fenced`] otherwise.
    pub fn write(&mut self, lock: LockId, token: u64, value: Value) -> Result<(), Fenced> {
        let cell = self.cells.entry(lock).or_insert((0, Vec::new()));
        if token < cell.0 {
            return Err(Fenced {
                lock,
                token,
                highest: cell.0,
            });
        }
        *cell = (token, value);
        Ok(())
    }

    /// [`FencedStore::write`], or with bug L2 ([`crate::Bug::StorageWithoutFencing`]) switched
    /// on in `cfg`, a write that accepts any token (the highest one is still recorded).
    pub fn write_as(
        &mut self,
        lock: LockId,
        token: u64,
        value: Value,
        cfg: &crate::Config,
    ) -> Result<(), Fenced> {
        if cfg.bug(crate::Bug::StorageWithoutFencing) {
            let cell = self.cells.entry(lock).or_insert((0, Vec::new()));
            *cell = (cell.0.max(token), value);
            return Ok(());
        }
        self.write(lock, token, value)
    }

    /// The highest token accepted for `lock` (0: none).
    pub fn highest(&self, lock: LockId) -> u64 {
        self.cells.get(&lock).map_or(0, |c| c.0)
    }

    /// The value last written under `lock`.
    pub fn value(&self, lock: LockId) -> Option<&Value> {
        self.cells.get(&lock).map(|c| &c.1)
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
    /// The client's session expired (no request for the sessions' timeout, in applied
    /// commands): this copy of the request is not applied, and a result it may have had
    /// before was discarded with the session. So its outcome is unknown: an earlier copy may
    /// have taken effect before the session expired (its answer lost), or none did. The
    /// client must open a new session under a new client id.
    Expired {
        /// The client.
        client: ClientId,
        /// The request's sequence number.
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
            SessionError::Expired { client, seq } => {
                write!(
                    f,
                    "request {seq} of client {client} refused: its session expired (open a new session under a new client id)"
                )
            }
        }
    }
}

impl std::error::Error for SessionError {}

/// A session's results not yet acknowledged, by sequence number, oldest first, each with the
/// operation that produced it (a retry must carry the same one).
///
/// Not a map: a client's sequence numbers arrive almost in order and are forgotten from the
/// front as its acknowledgement advances, so the common insert is at the back and the common
/// forget at the front (a `BTreeMap::split_off` allocated a new tree on every
/// acknowledgement; it was the runtime's costliest line, issue 19). The numbers are a deque,
/// kept apart so that a search reads 8 bytes an entry. The ops and results live in a ring of
/// slots that are **reused, not dropped**: a forgotten entry stays in its slot, and the next
/// insert overwrites it with `clone_from`, which for [`KvOp`] and [`KvOutput`] writes a put in
/// place, its value into the old value's buffer. Every replica applies every command, so this
/// is once per command per replica; before, each insert cloned the op (allocating for a
/// non-empty value), built the pair on the stack and copied it into a deque, and the copy
/// stalled on reading back what had just been written. (A Raft cluster's CPU per operation
/// fell 4% at 1024 outstanding puts: 406 -> 389 ns, medians of 5 interleaved runs.)
///
/// A stale slot holds the op and result of a request already answered, never looked at
/// again: equality, hashing, cloning and the wire format see the live entries only, so two
/// sessions with the same results are equal whatever their rings hold. Serialized as a map
/// from sequence number to result, as the map it replaced was, so snapshots keep their
/// format.
struct Results<Op, O> {
    /// The sequence numbers, ascending: what lookups search.
    seqs: std::collections::VecDeque<u64>,
    /// The ring: `seqs[i]`'s op and result are in slot `(start + i) % slots.len()`; the
    /// slots after the live ones hold forgotten entries, to be overwritten. It grows (to the
    /// most results the session held at once) only when every slot is live.
    slots: Vec<(Op, O)>,
    /// The slot of the oldest live entry.
    start: usize,
}

impl<Op, O> Default for Results<Op, O> {
    fn default() -> Self {
        Results {
            seqs: Default::default(),
            slots: Vec::new(),
            start: 0,
        }
    }
}

impl<Op: Clone, O: Clone> Clone for Results<Op, O> {
    /// The live entries only (the model checker clones sessions with every state).
    fn clone(&self) -> Self {
        Results {
            seqs: self.seqs.clone(),
            slots: self.live().cloned().collect(),
            start: 0,
        }
    }
}

impl<Op: Debug, O: Debug> Debug for Results<Op, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Op: PartialEq, O: PartialEq> PartialEq for Results<Op, O> {
    fn eq(&self, other: &Self) -> bool {
        self.seqs == other.seqs && self.live().eq(other.live())
    }
}

impl<Op: Eq, O: Eq> Eq for Results<Op, O> {}

impl<Op: Hash, O: Hash> Hash for Results<Op, O> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.seqs.hash(state);
        for entry in self.live() {
            entry.hash(state);
        }
    }
}

impl<Op, O> Results<Op, O> {
    /// The slot of live entry `i` (at most one wrap: `i` < the slots' count).
    fn slot(&self, i: usize) -> usize {
        debug_assert!(i <= self.slots.len());
        let j = self.start + i;
        if j >= self.slots.len() {
            j - self.slots.len()
        } else {
            j
        }
    }

    /// The live entries' ops and results, oldest first.
    fn live(&self) -> impl Iterator<Item = &(Op, O)> {
        (0..self.seqs.len()).map(|i| &self.slots[self.slot(i)])
    }

    /// Where `seq` is, or would go to keep the numbers sorted.
    fn find(&self, seq: u64) -> Result<usize, usize> {
        // Most lookups are for the newest request: check the back before searching.
        match self.seqs.back() {
            Some(&last) if last < seq => Err(self.seqs.len()),
            _ => self.seqs.binary_search(&seq),
        }
    }

    fn get(&self, seq: u64) -> Option<&(Op, O)> {
        self.find(seq).ok().map(|i| &self.slots[self.slot(i)])
    }

    /// Keep a copy of `op` and its `out` as the result of `seq` (replacing one only under bug
    /// B2, which applies without looking).
    fn insert(&mut self, seq: u64, op: &Op, out: &O)
    where
        Op: Clone,
        O: Clone,
    {
        match self.find(seq) {
            Ok(i) => {
                let j = self.slot(i);
                self.slots[j] = (op.clone(), out.clone());
            }
            Err(i) if i == self.seqs.len() => {
                if i < self.slots.len() {
                    // The slot after the newest holds a forgotten entry: overwrite it.
                    let j = self.slot(i);
                    let (old_op, old_out) = &mut self.slots[j];
                    old_op.clone_from(op);
                    old_out.clone_from(out);
                } else {
                    // Every slot is live: line them up from the first and add one.
                    self.slots.rotate_left(self.start);
                    self.start = 0;
                    self.slots.push((op.clone(), out.clone()));
                }
                self.seqs.push_back(seq);
            }
            Err(i) => {
                // Out of order (rare: a retry committed after later requests): line the live
                // entries up, drop the forgotten ones, and insert.
                self.slots.rotate_left(self.start);
                self.start = 0;
                self.slots.truncate(self.seqs.len());
                self.slots.insert(i, (op.clone(), out.clone()));
                self.seqs.insert(i, seq);
            }
        }
        debug_assert!(self.seqs.len() <= self.slots.len());
    }

    /// Forget every result below `acked` (its slot keeps it until overwritten).
    fn forget_below(&mut self, acked: u64) {
        while self.seqs.front().is_some_and(|&s| s < acked) {
            self.seqs.pop_front();
            self.start = self.slot(1);
        }
    }

    /// The results with their sequence numbers, ascending.
    fn iter(&self) -> impl Iterator<Item = (&u64, &(Op, O))> {
        self.seqs.iter().zip(self.live())
    }
}

impl<Op: Serialize, O: Serialize> Serialize for Results<Op, O> {
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        z.collect_map(self.iter())
    }
}

impl<'de, Op: Deserialize<'de>, O: Deserialize<'de>> Deserialize<'de> for Results<Op, O> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<u64, (Op, O)>::deserialize(d)?;
        let (seqs, slots) = map.into_iter().unzip();
        Ok(Results {
            seqs,
            slots,
            start: 0,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Session<Op, O> {
    /// Results not yet acknowledged.
    results: Results<Op, O>,
    /// Everything below this was acknowledged and forgotten.
    acked: u64,
    /// Log time of the client's last request (0 while expiry is off).
    last: u64,
}

impl<Op, O> Default for Session<Op, O> {
    fn default() -> Self {
        Session {
            results: Results::default(),
            acked: 0,
            last: 0,
        }
    }
}

/// A state machine behind client sessions: each `(client, seq)` takes effect at most once,
/// and (with a timeout) a session idle for `timeout` applied commands expires.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Sessions<S: StateMachine> {
    sm: S,
    sessions: BTreeMap<ClientId, Session<S::Op, S::Output>>,
    /// How many commands changed the state machine (duplicates excluded).
    applied: u64,
    /// A session expires after this many applied commands without a request of its client
    /// (0: never, the default, so hosts that do not ask for expiry see no change at all).
    timeout: u64,
    /// Log time: commands applied, duplicates and refused ones included (0 while expiry is
    /// off, so that equal stores stay equal states for the model checker).
    clock: u64,
    /// Live sessions by last activity, oldest first: what the expiry check pops from.
    idle: std::collections::BTreeSet<(u64, ClientId)>,
    /// Clients whose session expired: their requests are refused. Kept because this host
    /// has no register-client command (§6.3 lets the log assign client ids, so that an
    /// unknown id is an expired one); it grows only by one id per expired client.
    expired: std::collections::BTreeSet<ClientId>,
}

impl<S: StateMachine> Default for Sessions<S> {
    fn default() -> Self {
        Sessions {
            sm: S::default(),
            sessions: BTreeMap::new(),
            applied: 0,
            timeout: 0,
            clock: 0,
            idle: Default::default(),
            expired: Default::default(),
        }
    }
}

/// Why a snapshot's bytes hold no state machine ([`Sessions::decode`]): a corrupt or
/// truncated snapshot, which a host must refuse rather than start from an empty state.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes do not decode.
    #[error("the snapshot does not decode: {0}")]
    Decode(postcard::Error),
    /// The bytes decode to sessions that contradict themselves.
    #[error("the snapshot's sessions are inconsistent")]
    Inconsistent,
}

/// Outcome of [`Sessions::apply`].
pub type Applied<S> = Result<<S as StateMachine>::Output, SessionError>;

impl<S: StateMachine> Sessions<S> {
    /// An empty state machine with no sessions, which never expire.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state machine whose sessions expire after `timeout` applied commands without
    /// a request of their client (0: never). See the module doc, "Session expiry by log time".
    pub fn with_timeout(timeout: u64) -> Self {
        Sessions {
            timeout,
            ..Self::default()
        }
    }

    /// The session timeout, in applied commands (0: sessions never expire).
    pub fn timeout(&self) -> u64 {
        self.timeout
    }

    /// Log time: commands applied so far (0 while expiry is off).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Whether `client`'s session expired.
    pub fn is_expired(&self, client: ClientId) -> bool {
        self.expired.contains(&client)
    }

    /// Whether some session expired.
    pub fn any_expired(&self) -> bool {
        !self.expired.is_empty()
    }

    /// How many sessions are live (a client with a request applied, not expired).
    pub fn live(&self) -> usize {
        self.sessions.len()
    }

    /// How many sessions expired (their clients' ids, refused for good).
    pub fn expired(&self) -> usize {
        self.expired.len()
    }

    /// Advance log time by one command and expire every session idle for more than
    /// `timeout` commands, oldest first: each step of the loop expires one session.
    fn tick(&mut self) {
        self.clock += 1;
        while let Some(&(last, client)) = self.idle.first() {
            if self.clock - last <= self.timeout {
                break;
            }
            self.idle.pop_first();
            self.sessions.remove(&client);
            self.expired.insert(client);
            self.sm.expire(client);
        }
    }

    /// Apply a committed request exactly once: a duplicate gets the original result.
    pub fn apply(&mut self, req: &Request<S::Op>) -> Applied<S> {
        self.apply_inner(req, true, None)
    }

    fn apply_inner(
        &mut self,
        req: &Request<S::Op>,
        dedup: bool,
        cfg: Option<&crate::Config>,
    ) -> Applied<S> {
        if self.timeout > 0 {
            self.tick();
            if self.expired.contains(&req.client) {
                return Err(SessionError::Expired {
                    client: req.client,
                    seq: req.seq,
                });
            }
            // Any request keeps its session alive (a refused duplicate too: its client lives).
            if let Some(s) = self.sessions.get(&req.client) {
                self.idle.remove(&(s.last, req.client));
            }
            self.idle.insert((self.clock, req.client));
        }
        let session = self.sessions.entry(req.client).or_default();
        session.last = self.clock;
        // The client's acknowledgement lets us forget results it has received. It is
        // monotonic: a reordered older request must not resurrect forgotten ones.
        if req.acked > session.acked {
            session.acked = req.acked;
            session.results.forget_below(req.acked);
        }
        if dedup {
            if let Some((op, out)) = session.results.get(req.seq) {
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
        let out = match cfg {
            Some(cfg) => self.sm.apply_with(&req.op, cfg),
            None => self.sm.apply(&req.op),
        };
        self.applied += 1;
        session.results.insert(req.seq, &req.op, &out);
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
        self.apply_inner(req, false, None)
    }

    /// The snapshot of this state machine, client sessions included (so that a retry of a
    /// request the snapshot covers is answered from its session after a restore, not applied
    /// again). Postcard: compact, and a stable, documented wire format.
    pub fn encode(&self) -> crate::SnapshotData {
        postcard::to_allocvec(self)
            .expect("a state machine always encodes")
            .into()
    }

    /// [`Sessions::encode`] as `cfg` says: with bug S4 ([`crate::Bug::SnapshotWithoutSessions`])
    /// switched on, the snapshot leaves the sessions out, as if only the store mattered.
    pub fn encode_as(&self, cfg: &crate::Config) -> crate::SnapshotData {
        if cfg.bug(crate::Bug::SnapshotWithoutSessions) {
            let bare = Sessions {
                sm: self.sm.clone(),
                applied: self.applied,
                timeout: self.timeout,
                clock: self.clock,
                ..Sessions::default()
            };
            return bare.encode();
        }
        self.encode()
    }

    /// The state machine a snapshot holds ([`Sessions::encode`]), or why it holds none.
    pub fn decode(data: &[u8]) -> Result<Self, SnapshotError> {
        let sessions: Self = postcard::from_bytes(data).map_err(SnapshotError::Decode)?;
        if sessions.idle.len() > sessions.sessions.len() {
            return Err(SnapshotError::Inconsistent);
        }
        Ok(sessions)
    }

    /// Apply as `cfg` says: [`Sessions::apply`], or, with bug B2
    /// ([`crate::Bug::DuplicateApply`]) switched on, without consulting the session; the op
    /// itself through [`StateMachine::apply_with`] (the state machine's own switches). For
    /// hosts in other crates, which cannot see this crate's features: without `bug-zoo`,
    /// [`crate::Config::bug`] is constant `false` and the buggy paths compile away.
    #[inline]
    pub fn apply_as(&mut self, req: &Request<S::Op>, cfg: &crate::Config) -> Applied<S> {
        self.apply_inner(req, !cfg.bug(crate::Bug::DuplicateApply), Some(cfg))
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

    /// Results arrive out of order (pipelined requests commit in any order across a leader
    /// change), are found by sequence number, and are forgotten from the front; on the wire
    /// they are the map they used to be, byte for byte, so older snapshots still decode.
    #[test]
    fn session_results_keep_order_and_the_map_format() {
        let mut r: Results<KvOp, KvOutput> = Results::default();
        for seq in [5, 2, 9, 7, 3] {
            r.insert(seq, &KvOp::Get(seq), &KvOutput::Value(None));
        }
        let seqs: Vec<u64> = r.seqs.iter().copied().collect();
        assert_eq!(seqs, [2, 3, 5, 7, 9]);
        assert_eq!(r.get(7).map(|(op, _)| op), Some(&KvOp::Get(7)));
        assert_eq!(r.get(4), None);
        assert_eq!(r.get(10), None);
        let as_map: BTreeMap<u64, (KvOp, KvOutput)> =
            r.iter().map(|(s, v)| (*s, v.clone())).collect();
        let bytes = postcard::to_allocvec(&r).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&as_map).unwrap());
        let back: Results<KvOp, KvOutput> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        r.forget_below(6);
        let seqs: Vec<u64> = r.seqs.iter().copied().collect();
        assert_eq!(seqs, [7, 9]);
    }

    /// A session's slots are reused: a client that keeps at most `w` requests unacknowledged
    /// never makes its session hold more than `w` slots, and a put overwrites a forgotten put
    /// in place, its value in the old value's buffer (no allocation per apply).
    #[test]
    fn session_results_reuse_their_slots_and_value_buffers() {
        let mut r: Results<KvOp, KvOutput> = Results::default();
        let put = |seq: u64| KvOp::Put(seq, vec![seq as u8; 16]);
        // Four outstanding at a time: each insert acknowledges the one four below.
        for seq in 1..=100u64 {
            r.forget_below(seq.saturating_sub(3));
            r.insert(seq, &put(seq), &KvOutput::Written);
        }
        assert_eq!(r.seqs.len(), 4);
        assert_eq!(r.slots.len(), 4, "no slot beyond the most held at once");
        let buffer = |r: &Results<KvOp, KvOutput>, seq| match r.get(seq) {
            Some((KvOp::Put(_, v), _)) => v.as_ptr(),
            other => panic!("request {seq}: {other:?}"),
        };
        let before = buffer(&r, 97);
        r.forget_below(101);
        r.insert(101, &put(101), &KvOutput::Written);
        assert_eq!(
            buffer(&r, 101),
            before,
            "the forgotten put's buffer holds the new value"
        );
        assert_eq!(r.get(101), Some(&(put(101), KvOutput::Written)));
        // A forgotten slot with a far larger buffer does not keep it under a small value.
        r.insert(102, &KvOp::Put(0, vec![0; 4096]), &KvOutput::Written);
        r.forget_below(103);
        for seq in 103..=106 {
            r.insert(seq, &put(seq), &KvOutput::Written);
        }
        assert!(r.slots.iter().all(|(op, _)| match op {
            KvOp::Put(_, v) => v.capacity() < 4096,
            _ => true,
        }));
    }

    /// `query_into` (what lease reads are answered with) answers exactly what `query` does,
    /// in place of whatever the slot held, and leaves the slot alone for an op that is not
    /// read-only; the lock service's default does the same.
    #[test]
    fn query_into_answers_what_query_does_in_place_of_any_slot() {
        let mut kv = Kv::default();
        kv.apply(&KvOp::Put(1, b"abc".to_vec()));
        kv.apply(&KvOp::Put(2, Vec::new()));
        let acquire = LockOp::Acquire { lock: 7, owner: 3 };
        let token = match kv.apply(&KvOp::Lock(acquire.clone())) {
            KvOutput::Lock(LockOutput::Acquired { token }) => token,
            other => panic!("{other:?}"),
        };
        let ops = [
            KvOp::Get(1),
            KvOp::Get(2),
            KvOp::Get(3),
            KvOp::Lock(LockOp::Validate { lock: 7, token }),
            KvOp::Lock(LockOp::Validate {
                lock: 7,
                token: token + 1,
            }),
            KvOp::Put(1, b"x".to_vec()),
            KvOp::Cas {
                key: 1,
                expect: None,
                new: b"y".to_vec(),
            },
            KvOp::Lock(acquire),
        ];
        let slots: [Result<KvOutput, &str>; 4] = [
            Err("placeholder"),
            Ok(KvOutput::Written),
            Ok(KvOutput::Value(Some(vec![9; 100]))),
            Ok(KvOutput::Lock(LockOutput::Released)),
        ];
        for op in &ops {
            for slot in &slots {
                let mut out = slot.clone();
                let answered = kv.query_into(op, &mut out);
                match kv.query(op) {
                    Some(answer) => assert!(answered && out == Ok(answer), "{op:?} into {slot:?}"),
                    None => assert!(!answered && out == *slot, "{op:?} into {slot:?}"),
                }
            }
        }
        let locks = &kv.locks;
        for op in [
            LockOp::Validate { lock: 7, token },
            LockOp::KeepAlive { owner: 3 },
        ] {
            let mut out: Result<LockOutput, ()> = Err(());
            let answered = locks.query_into(&op, &mut out);
            assert_eq!(
                (answered, out.ok()),
                (locks.query(&op).is_some(), locks.query(&op))
            );
        }
    }

    /// `clone_from` (written by hand for the session's slots) makes a copy of the source
    /// whatever variant the slot held before, and `clone` copies alike.
    #[test]
    fn ops_and_outputs_clone_from_any_variant() {
        let ops = [
            KvOp::Get(1),
            KvOp::Put(2, b"ab".to_vec()),
            KvOp::Put(3, Vec::new()),
            KvOp::Cas {
                key: 4,
                expect: Some(b"x".to_vec()),
                new: b"y".to_vec(),
            },
            KvOp::Lock(LockOp::KeepAlive { owner: 5 }),
        ];
        let outs = [
            KvOutput::Value(None),
            KvOutput::Value(Some(b"cd".to_vec())),
            KvOutput::Written,
            KvOutput::Cas(Err(Some(b"z".to_vec()))),
            KvOutput::Lock(LockOutput::Valid(true)),
        ];
        fn every_pair<T: Clone + PartialEq + Debug>(values: &[T]) {
            for a in values {
                assert_eq!(&a.clone(), a);
                for b in values {
                    let mut x = a.clone();
                    x.clone_from(b);
                    assert_eq!(&x, b, "{a:?} overwritten by {b:?}");
                }
            }
        }
        every_pair(&ops);
        every_pair(&outs);
    }

    proptest::proptest! {
        /// Against a map: inserts in and out of order (and replacing, as bug B2 does),
        /// forgets, lookups; equal, hashing alike and encoding alike to a session built
        /// fresh from the same entries, whatever its ring holds.
        #[test]
        fn session_results_behave_as_a_map(
            steps in proptest::collection::vec((0u8..4, 0u64..40, 0u8..3), 0..120),
        ) {
            use std::hash::{DefaultHasher, Hasher};
            let mut r: Results<KvOp, KvOutput> = Results::default();
            let mut model: BTreeMap<u64, (KvOp, KvOutput)> = BTreeMap::new();
            let mut next = 1u64;
            for (kind, n, v) in steps {
                let op = match v {
                    0 => KvOp::Get(n),
                    1 => KvOp::Put(n, vec![v; n as usize % 5]),
                    _ => KvOp::Put(n, Vec::new()),
                };
                let out = if v == 0 { KvOutput::Value(Some(vec![1; n as usize % 3])) } else { KvOutput::Written };
                match kind {
                    // The next request, in order.
                    0 | 1 => {
                        r.insert(next, &op, &out);
                        model.insert(next, (op, out));
                        next += 1;
                    }
                    // Any request: out of order, or replacing one.
                    2 => {
                        r.insert(n, &op, &out);
                        model.insert(n, (op, out));
                        next = next.max(n + 1);
                    }
                    _ => {
                        r.forget_below(n);
                        model.retain(|&s, _| s >= n);
                    }
                }
                let fresh: Results<KvOp, KvOutput> = Results {
                    seqs: model.keys().copied().collect(),
                    slots: model.values().cloned().collect(),
                    start: 0,
                };
                proptest::prop_assert!(r.iter().map(|(s, e)| (*s, e)).eq(model.iter().map(|(s, e)| (*s, e))));
                proptest::prop_assert_eq!(&r, &fresh);
                proptest::prop_assert_eq!(&r.clone(), &fresh);
                let hash = |x: &Results<KvOp, KvOutput>| {
                    let mut h = DefaultHasher::new();
                    x.hash(&mut h);
                    h.finish()
                };
                proptest::prop_assert_eq!(hash(&r), hash(&fresh));
                proptest::prop_assert_eq!(postcard::to_allocvec(&r).unwrap(), postcard::to_allocvec(&model).unwrap());
                for s in 0..next + 1 {
                    proptest::prop_assert_eq!(r.get(s), model.get(&s));
                }
            }
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
        // An overwrite, longer and then shorter (copied into the value's own buffer).
        kv.apply(&KvOp::Put(1, b"bcd".to_vec()));
        assert_eq!(kv.get(1), Some(&b"bcd".to_vec()));
        kv.apply(&KvOp::Put(1, b"e".to_vec()));
        assert_eq!(kv.get(1), Some(&b"e".to_vec()));
        // A small value after a large one does not keep the large one's buffer.
        kv.apply(&KvOp::Put(1, vec![7; 4096]));
        kv.apply(&KvOp::Put(1, b"f".to_vec()));
        assert_eq!(kv.get(1), Some(&b"f".to_vec()));
        assert!(kv.get(1).unwrap().capacity() < 4096);
        assert_eq!(kv.len(), 1);
    }

    #[test]
    fn kv_stores_with_the_same_keys_are_equal_hash_equally_and_encode_alike() {
        use std::hash::{DefaultHasher, Hasher};
        let hash = |kv: &Kv| {
            let mut h = DefaultHasher::new();
            kv.hash(&mut h);
            h.finish()
        };
        // The same keys put in opposite orders, into tables grown differently.
        let (mut up, mut down) = (Kv::default(), Kv::default());
        for k in 0..100u64 {
            up.apply(&KvOp::Put(k, vec![k as u8]));
            down.apply(&KvOp::Put(99 - k, vec![(99 - k) as u8]));
        }
        down.map.shrink_to_fit();
        assert_eq!(up, down);
        assert_eq!(hash(&up), hash(&down));
        let bytes = postcard::to_allocvec(&up).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&down).unwrap());
        // The encoding is the ordered map's (snapshots written before still decode).
        let ordered: BTreeMap<Key, Value> = (0..100u64).map(|k| (k, vec![k as u8])).collect();
        let mut expected = postcard::to_allocvec(&ordered).unwrap();
        expected.extend(postcard::to_allocvec(&LockService::default()).unwrap());
        assert_eq!(bytes, expected);
        assert_eq!(postcard::from_bytes::<Kv>(&bytes).unwrap(), up);
        assert_eq!(
            format!("{up:?}"),
            format!("{down:?}"),
            "Debug lists keys in order"
        );
        // A different value, or the same values under swapped keys, is another state.
        down.apply(&KvOp::Put(5, vec![6]));
        assert_ne!(hash(&up), hash(&down));
        down.apply(&KvOp::Put(5, vec![5]));
        down.apply(&KvOp::Put(6, vec![5]));
        down.apply(&KvOp::Put(5, vec![6]));
        assert_ne!(up, down);
        assert_ne!(hash(&up), hash(&down));
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

    /// Log time: a session idle for `timeout` applied commands expires at the next one, and
    /// its client's request is refused with `Expired`, not applied; others go on.
    #[test]
    fn an_idle_session_expires_after_timeout_commands() {
        let mut s: Sessions<Kv> = Sessions::with_timeout(2);
        let put = |c, seq| req(c, seq, KvOp::Put(c, vec![seq as u8]));
        assert_eq!(s.apply(&put(1, 1)), Ok(KvOutput::Written)); // time 1: client 1 active
        assert_eq!(s.apply(&put(2, 1)), Ok(KvOutput::Written)); // time 2
        assert_eq!(s.apply(&put(2, 2)), Ok(KvOutput::Written)); // time 3: 1 idle for 2, alive
        assert!(!s.is_expired(1));
        assert_eq!((s.live(), s.expired()), (2, 0));
        assert_eq!(s.apply(&put(2, 3)), Ok(KvOutput::Written)); // time 4: 1 idle for 3
        assert!(s.is_expired(1) && !s.is_expired(2));
        assert_eq!(
            (s.live(), s.expired()),
            (1, 1),
            "client 1's session is gone"
        );
        assert_eq!(
            s.apply(&put(1, 2)),
            Err(SessionError::Expired { client: 1, seq: 2 })
        );
        assert_eq!(
            s.state().get(1),
            Some(&vec![1]),
            "the refused put did nothing"
        );
        // Its earlier request's retry is refused too, though that request took effect (its
        // value is the one in the store, above): the session's results are gone, so
        // `Expired` cannot tell the client whether it did.
        assert_eq!(
            s.apply(&put(1, 1)),
            Err(SessionError::Expired { client: 1, seq: 1 })
        );
        assert_eq!((s.applied(), s.clock()), (4, 6));
        assert_eq!(
            SessionError::Expired { client: 1, seq: 2 }.to_string(),
            "request 2 of client 1 refused: its session expired (open a new session under a new client id)"
        );
    }

    /// Timeout 0 (the default): no clock, no expiry, however long a client is idle.
    #[test]
    fn sessions_never_expire_without_a_timeout() {
        let mut s: Sessions<Kv> = Sessions::new();
        s.apply(&req(1, 1, KvOp::Put(1, vec![]))).unwrap();
        for seq in 1..=100 {
            s.apply(&req(2, seq, KvOp::Get(1))).unwrap();
        }
        assert_eq!(
            s.apply(&req(1, 2, KvOp::Get(1))),
            Ok(KvOutput::Value(Some(vec![])))
        );
        assert_eq!((s.clock(), s.timeout(), s.any_expired()), (0, 0, false));
        assert_eq!(s, {
            let mut t: Sessions<Kv> = Sessions::new();
            t.apply(&req(1, 1, KvOp::Put(1, vec![]))).unwrap();
            for seq in 1..=100 {
                t.apply(&req(2, seq, KvOp::Get(1))).unwrap();
            }
            t.apply(&req(1, 2, KvOp::Get(1))).unwrap();
            t
        });
    }

    /// A keep-alive refreshes the session and changes nothing else; without it the holder's
    /// session expires and its lock passes to the next client with a higher token.
    #[test]
    fn keep_alive_keeps_a_holder_and_expiry_frees_its_lock() {
        let acq = |c, seq| req(c, seq, LockOp::Acquire { lock: 0, owner: c });
        let alive = |c, seq| req(c, seq, LockOp::KeepAlive { owner: c });
        let mut s: Sessions<LockService> = Sessions::with_timeout(2);
        assert_eq!(s.apply(&acq(1, 1)), Ok(LockOutput::Acquired { token: 1 }));
        assert_eq!(s.apply(&acq(2, 1)), Ok(LockOutput::Busy { holder: 1 }));
        assert_eq!(s.apply(&alive(1, 2)), Ok(LockOutput::Alive)); // 2 commands after its acquire
        assert_eq!(s.apply(&acq(2, 2)), Ok(LockOutput::Busy { holder: 1 }));
        assert_eq!(s.apply(&acq(2, 3)), Ok(LockOutput::Busy { holder: 1 }));
        assert_eq!(s.state().holder(0), Some(1), "kept alive, still the holder");
        // Client 1 stays silent: two commands after its keep-alive, the next one expires it.
        assert_eq!(s.apply(&acq(2, 4)), Ok(LockOutput::Acquired { token: 2 }));
        assert!(s.is_expired(1));
        assert_eq!(
            s.apply(&alive(1, 3)),
            Err(SessionError::Expired { client: 1, seq: 3 })
        );
        assert_eq!((s.state().holder(0), s.state().token(0)), (Some(2), 2));
    }

    /// Expiry frees every lock of the owner and only its locks; tokens are kept.
    #[test]
    fn expire_frees_exactly_the_owners_locks() {
        let mut ls = LockService::default();
        for (lock, owner) in [(1, 7), (2, 7), (3, 8)] {
            ls.apply(&LockOp::Acquire { lock, owner });
        }
        ls.expire(7);
        assert_eq!(
            (ls.holder(1), ls.holder(2), ls.holder(3)),
            (None, None, Some(8))
        );
        assert_eq!(ls.token(1), 1);
        assert_eq!(
            ls.apply(&LockOp::Acquire { lock: 1, owner: 8 }),
            LockOutput::Acquired { token: 2 }
        );
        let mut kv = Kv::default();
        kv.apply(&KvOp::Put(7, vec![1]));
        let acquire = KvOp::Lock(LockOp::Acquire { lock: 1, owner: 7 });
        assert_eq!(
            kv.apply(&acquire),
            KvOutput::Lock(LockOutput::Acquired { token: 1 })
        );
        kv.expire(7);
        assert_eq!(kv.get(7), Some(&vec![1]), "keys belong to nobody");
        assert_eq!(kv.locks().holder(1), None, "the store's locks are freed");
    }

    /// Every interleaving of up to 6 requests (new ones and retries) of 3 clients, timeout 2,
    /// against a reference that tracks last activity: no request is applied twice, an
    /// expired client's request is refused with `Expired`, a live one is answered (a retry
    /// with its first result).
    #[test]
    fn every_interleaving_applies_once_and_refuses_only_expired_clients() {
        const CLIENTS: u64 = 3;
        const TIMEOUT: u64 = 2;
        // An event: (client, retry?). Sequences enumerated as base-6 numbers, by length.
        fn run(events: &[(u64, bool)]) {
            let mut s: Sessions<Kv> = Sessions::with_timeout(TIMEOUT);
            let mut last = [None::<u64>; CLIENTS as usize];
            let mut dead = [false; CLIENTS as usize];
            let mut seq = [0u64; CLIENTS as usize];
            let mut first: BTreeMap<(u64, u64), KvOutput> = BTreeMap::new();
            for (t, &(c, retry)) in events.iter().enumerate() {
                let now = t as u64 + 1;
                let i = c as usize;
                for (k, l) in last.iter().enumerate() {
                    dead[k] |= l.is_some_and(|l| now - l > TIMEOUT);
                }
                if !retry || seq[i] == 0 {
                    seq[i] += 1;
                }
                let r = req(
                    c,
                    seq[i],
                    KvOp::Cas {
                        key: 0,
                        expect: None,
                        new: vec![c as u8, seq[i] as u8],
                    },
                );
                let got = s.apply(&r);
                if dead[i] {
                    assert_eq!(
                        got,
                        Err(SessionError::Expired {
                            client: c,
                            seq: seq[i]
                        }),
                        "{events:?}"
                    );
                    continue;
                }
                last[i] = Some(now);
                let out = got.unwrap_or_else(|e| panic!("{events:?}: live client refused: {e}"));
                let was = first.entry((c, seq[i])).or_insert_with(|| out.clone());
                assert_eq!(*was, out, "{events:?}: a retry answered differently");
            }
            assert_eq!(s.applied(), first.len() as u64, "{events:?}: applied twice");
        }
        let mut checked = 0;
        for len in 1..=6u32 {
            for mut n in 0..(2 * CLIENTS).pow(len) {
                let mut events = Vec::new();
                for _ in 0..len {
                    events.push((n % CLIENTS, (n / CLIENTS) % 2 == 1));
                    n /= 2 * CLIENTS;
                }
                run(&events);
                checked += 1;
            }
        }
        assert_eq!(checked, (1..=6).map(|l| 6u64.pow(l)).sum::<u64>());
    }

    /// Fencing: a write with a token below the highest accepted one is refused, equal and
    /// higher ones are accepted, per lock.
    #[test]
    fn fenced_store_refuses_an_older_token() {
        let mut st = FencedStore::default();
        assert_eq!(st.write(0, 2, b"b".to_vec()), Ok(()));
        assert_eq!(
            st.write(0, 1, b"a".to_vec()),
            Err(Fenced {
                lock: 0,
                token: 1,
                highest: 2
            })
        );
        assert_eq!(
            st.value(0),
            Some(&b"b".to_vec()),
            "the stale write changed nothing"
        );
        assert_eq!(
            st.write(0, 2, b"c".to_vec()),
            Ok(()),
            "one holder writes again"
        );
        assert_eq!(
            st.write(1, 1, b"x".to_vec()),
            Ok(()),
            "another lock, its own order"
        );
        assert_eq!((st.highest(0), st.highest(1)), (2, 1));
        assert_eq!(
            Fenced {
                lock: 0,
                token: 1,
                highest: 2
            }
            .to_string(),
            "write with token 1 of lock 0 refused: token 2 was accepted before"
        );
        // Through the config, without bugs: the same check.
        assert!(st
            .write_as(0, 1, vec![], &crate::Config::default())
            .is_err());
    }

    /// L2 switched on: the stale write is accepted (and the highest token is kept).
    #[test]
    fn storage_without_fencing_accepts_an_older_token() {
        let mut cfg = crate::Config::default();
        if !cfg.set_bug(crate::Bug::StorageWithoutFencing) {
            return; // switches not compiled in: nothing to show
        }
        let mut st = FencedStore::default();
        st.write_as(0, 2, b"b".to_vec(), &cfg).unwrap();
        assert_eq!(st.write_as(0, 1, b"a".to_vec(), &cfg), Ok(()));
        assert_eq!((st.value(0), st.highest(0)), (Some(&b"a".to_vec()), 2));
    }

    /// L1 switched on: a client releases another's lock; off, it is refused.
    #[test]
    fn release_by_non_owner_follows_the_config() {
        let run = |cfg: &crate::Config| {
            let mut s: Sessions<LockService> = Sessions::new();
            s.apply_as(&req(1, 1, LockOp::Acquire { lock: 0, owner: 1 }), cfg)
                .unwrap();
            let out = s.apply_as(&req(2, 1, LockOp::Release { lock: 0, owner: 2 }), cfg);
            (out, s.state().holder(0))
        };
        let mut cfg = crate::Config::default();
        assert_eq!(run(&cfg), (Ok(LockOutput::NotHolder), Some(1)));
        if cfg.set_bug(crate::Bug::LockReleaseByNonOwner) {
            assert_eq!(run(&cfg), (Ok(LockOutput::Released), None));
        }
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

    /// A snapshot carries the store and the sessions: a retry of a request it covers is
    /// answered from the session after a restore, not applied again (diss. §6.3).
    #[test]
    fn snapshot_round_trips_with_sessions() {
        let mut s: Sessions<Kv> = Sessions::with_timeout(10);
        s.apply(&req(1, 1, KvOp::Put(7, b"a".to_vec()))).unwrap();
        s.apply(&req(2, 1, KvOp::Put(7, b"b".to_vec()))).unwrap();
        let mut restored = Sessions::<Kv>::decode(&s.encode()).expect("decodes");
        assert_eq!(restored, s);
        // Client 1 retries its put: answered from its session, the value stays b.
        assert_eq!(
            restored.apply(&req(1, 1, KvOp::Put(7, b"a".to_vec()))),
            Ok(KvOutput::Written)
        );
        assert_eq!(restored.state().get(7), Some(&b"b".to_vec()));
        assert_eq!(restored.applied(), 2);
    }

    /// Bug S4: the snapshot leaves the sessions out, so the same retry applies again and
    /// overwrites a later write.
    #[test]
    fn s4_snapshot_without_sessions_applies_a_retry_twice() {
        let mut cfg = crate::Config::default();
        if !cfg.set_bug(crate::Bug::SnapshotWithoutSessions) {
            return; // the switches are compiled out
        }
        let mut s: Sessions<Kv> = Sessions::new();
        s.apply(&req(1, 1, KvOp::Put(7, b"a".to_vec()))).unwrap();
        s.apply(&req(2, 1, KvOp::Put(7, b"b".to_vec()))).unwrap();
        let mut restored = Sessions::<Kv>::decode(&s.encode_as(&cfg)).expect("decodes");
        assert_ne!(restored, s, "the sessions are gone");
        restored
            .apply(&req(1, 1, KvOp::Put(7, b"a".to_vec())))
            .unwrap();
        assert_eq!(
            restored.state().get(7),
            Some(&b"a".to_vec()),
            "S4: applied twice"
        );
    }

    /// Bug S4 drops the sessions and nothing else: the store, the count of applied commands
    /// and log time (with the session timeout) survive, so the zoo's S4 is a lost session
    /// table alone, not a snapshot that also rewinds the log's clock.
    #[test]
    fn s4_keeps_the_store_and_log_time() {
        let mut cfg = crate::Config::default();
        if !cfg.set_bug(crate::Bug::SnapshotWithoutSessions) {
            return; // the switches are compiled out
        }
        let mut s: Sessions<Kv> = Sessions::with_timeout(10);
        for (client, key) in [(1, 7), (2, 8), (1, 9)] {
            s.apply(&req(client, key, KvOp::Put(key, b"v".to_vec())))
                .unwrap();
        }
        let restored = Sessions::<Kv>::decode(&s.encode_as(&cfg)).expect("decodes");
        assert_eq!(restored.state(), s.state());
        assert_eq!((restored.applied(), s.applied()), (3, 3));
        assert_eq!((restored.clock(), s.clock()), (3, 3));
        assert_eq!(restored.timeout(), 10);
        assert_eq!(
            restored,
            Sessions {
                sessions: BTreeMap::new(),
                idle: Default::default(),
                ..s
            }
        );
    }

    /// A corrupt or truncated snapshot is refused, never read as an empty state.
    #[test]
    fn corrupt_snapshots_are_refused() {
        let mut s: Sessions<Kv> = Sessions::new();
        s.apply(&req(1, 1, KvOp::Put(7, b"a".to_vec()))).unwrap();
        let data = s.encode();
        assert!(matches!(
            Sessions::<Kv>::decode(&data[..data.len() - 1]),
            Err(SnapshotError::Decode(_))
        ));
        assert!(matches!(
            Sessions::<Kv>::decode(&[]),
            Err(SnapshotError::Decode(_))
        ));
    }
}
