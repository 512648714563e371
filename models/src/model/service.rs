//! Which service the model's cluster replicates: the key-value store (the default) or the
//! Chubby-style lock service, with the storage its fencing tokens protect.
//!
//! Design: a workload choice, not a new command type or a type parameter. The store
//! ([`Kv`]) serves the lock service's ops beside its keys ([`KvOp::Lock`]), so the command
//! stays `Request<KvOp>`: the one type every host shares (the CLI hands the same replica
//! type to the checker, the simulator and the threaded runtime, which replicates key-value
//! commands). A command enum of the model's own would have split the replica types between
//! the model and the runtime; a type parameter over the state machine would have threaded a
//! second parameter through the model, the checker, the symmetry reduction, the simulator,
//! the zoo and the CLI, for nothing the protocols can see (they never look inside a
//! command). What differs per service is only the workload ([`super::ModelConfig::op`]),
//! the session timeout, the storage actor, the specification the history is checked
//! against ([`ServiceSpec`] covers both) and the properties. An unused half of the store
//! costs an empty `BTreeMap` per server.
//!
//! The lock workload is the classic fencing scenario (Burrows §2.4; Kleppmann 2016): client
//! A takes lock 0 and, once it has its token, writes to the [storage actor](super::Node::Storage)
//! with it; that write may be delayed arbitrarily (an unordered network: A "pauses"). Other
//! clients' requests advance log time, so A's silent session expires after
//! [`LOCK_SESSION_TIMEOUT`] applied commands and its lock is freed; client B, whose first
//! request releases lock 0 (which only a holder may do), then acquires it with a higher token
//! and writes too. Storage must refuse A's late write.

use std::collections::BTreeSet;

use paxraft_impls::sm::{Kv, KvOp, LockOp, LockOutput, LockService, Owner, StateMachine};
use stateright::semantics::SequentialSpec;

use super::Answer;

/// The replicated service a model runs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Service {
    /// The key-value store: puts, gets and compare-and-swaps (the default).
    #[default]
    Kv,
    /// The lock service behind expiring sessions, and the fenced storage it protects.
    Lock,
}

impl Service {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            Service::Kv => "kv",
            Service::Lock => "lock",
        }
    }

    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Service::Kv, Service::Lock]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// The session timeout its servers use, in applied commands (0: sessions never expire,
    /// so the key-value checks explore exactly the states they did before expiry existed).
    pub fn session_timeout(self) -> u64 {
        match self {
            Service::Kv => 0,
            Service::Lock => LOCK_SESSION_TIMEOUT,
        }
    }
}

/// The lock workload's session timeout: a client silent while one other command is applied
/// expires at the next. The smallest that lets a holder's session survive one foreign
/// command and die at the second, so a handover needs only three commands.
pub const LOCK_SESSION_TIMEOUT: u64 = 1;

/// The lock every client of the lock workload contends for.
pub const LOCK: u64 = 0;

/// Whose session a lock op speaks for (`None`: a validation, which any resource may ask).
fn owner(op: &LockOp) -> Option<Owner> {
    match *op {
        LockOp::Acquire { owner, .. }
        | LockOp::Release { owner, .. }
        | LockOp::KeepAlive { owner } => Some(owner),
        LockOp::Validate { .. } => None,
    }
}

/// Both services as a sequential specification, for the linearizability tester.
///
/// The key-value half is the store itself. The lock half is the clean [`LockService`]
/// (holders release only their own locks, every acquisition a higher token) plus session
/// expiry, which clients do not invoke: a session may expire at any point, and expiry is
/// for ever. So a grant to B while A holds the lock is valid only as "A's session expired
/// first": the spec frees A's locks then, and from there on no op of A may succeed. How
/// many commands expiry takes is the implementation's business (log time is invisible to
/// clients); what the spec pins down is mutual exclusion among live sessions, tokens that
/// count acquisitions, and that an expired session never acts again. A request refused
/// with [`Answer::Expired`] is never recorded as returned (the model's history leaves it
/// pending): its client cannot tell whether it took effect before the session expired,
/// and a pending op may be linearized or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    /// The key-value store.
    pub kv: Kv,
    /// The lock service.
    pub lock: LockService,
    /// Owners whose session expired.
    pub expired: BTreeSet<Owner>,
}

impl ServiceSpec {
    fn expire(&mut self, owner: Owner) {
        self.lock.expire(owner);
        self.expired.insert(owner);
    }
}

impl SequentialSpec for ServiceSpec {
    type Op = KvOp;
    type Ret = Answer;

    fn invoke(&mut self, op: &KvOp) -> Answer {
        match op {
            KvOp::Lock(op) if owner(op).is_some_and(|o| self.expired.contains(&o)) => {
                Answer::Expired
            }
            KvOp::Lock(op) => self.lock.apply(op).into(),
            op => self.kv.apply(op).into(),
        }
    }

    fn is_valid_step(&mut self, op: &KvOp, ret: &Answer) -> bool {
        let KvOp::Lock(lop) = op else {
            return self.invoke(op) == *ret;
        };
        let who = owner(lop);
        if *ret == Answer::Expired {
            return who.is_some_and(|o| {
                self.expire(o);
                true
            });
        }
        if who.is_some_and(|o| self.expired.contains(&o)) {
            return false; // an expired session never acts again
        }
        // A grant while another holds the lock, or a holder's token found invalid: the
        // holder's session expired just before.
        let lost = match (lop, ret) {
            (&LockOp::Acquire { lock, owner }, Answer::Acquired { .. }) => {
                self.lock.holder(lock).filter(|&h| h != owner)
            }
            (&LockOp::Validate { lock, token }, Answer::Valid(false)) => self
                .lock
                .holder(lock)
                .filter(|_| self.lock.token(lock) == token),
            _ => None,
        };
        if let Some(h) = lost {
            self.expire(h);
        }
        Answer::from(self.lock.apply(lop)) == *ret
    }
}

impl From<LockOutput> for Answer {
    fn from(o: LockOutput) -> Self {
        match o {
            LockOutput::Acquired { token } => Answer::Acquired { token },
            LockOutput::Busy { holder } => Answer::Busy { holder },
            LockOutput::Released => Answer::Released,
            LockOutput::NotHolder => Answer::NotHolder,
            LockOutput::Valid(v) => Answer::Valid(v),
            LockOutput::Alive => Answer::Alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(op: LockOp) -> KvOp {
        KvOp::Lock(op)
    }

    /// A grant to a second owner is valid only as an expiry of the first, after which the
    /// first never succeeds again; a release by a non-holder is never valid.
    #[test]
    fn the_lock_spec_allows_expiry_and_nothing_else() {
        let acq = |owner| lock(LockOp::Acquire { lock: 0, owner });
        let rel = |owner| lock(LockOp::Release { lock: 0, owner });
        let mut s = ServiceSpec::default();
        assert!(s.is_valid_step(&acq(1), &Answer::Acquired { token: 1 }));
        assert!(!s.clone().is_valid_step(&rel(2), &Answer::Released), "L1");
        assert!(s.clone().is_valid_step(&rel(2), &Answer::NotHolder));
        assert!(
            !s.clone()
                .is_valid_step(&acq(2), &Answer::Acquired { token: 1 }),
            "token reused"
        );
        assert!(s.is_valid_step(&acq(2), &Answer::Acquired { token: 2 }));
        assert!(s.expired.contains(&1));
        assert!(
            !s.clone().is_valid_step(&rel(1), &Answer::NotHolder),
            "expired for ever"
        );
        assert_eq!(s.invoke(&rel(1)), Answer::Expired);
        assert_eq!(s.invoke(&rel(2)), Answer::Released);
    }

    #[test]
    fn services_parse_and_answer_lock_outputs() {
        assert_eq!(Service::parse("lock"), Some(Service::Lock));
        assert_eq!(Service::parse("zk"), None);
        assert_eq!(
            (
                Service::Kv.session_timeout(),
                Service::Lock.session_timeout()
            ),
            (0, 1)
        );
        let mut kv = Kv::default();
        let out = kv.apply(&lock(LockOp::Acquire { lock: 0, owner: 4 }));
        assert_eq!(Answer::from(out), Answer::Acquired { token: 1 });
    }
}
