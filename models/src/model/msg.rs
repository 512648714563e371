//! The messages and timers of the model's actors.

use std::sync::Arc;

use paxraft_impls::sm::KvOutput;
use paxraft_impls::NodeId;

use super::Cmd;

/// What an op returned, in a form that can travel in an (ordered) message: a key-value
/// result, a lock-service result, or the explicit refusal of an expired session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    /// A get's value.
    Value(Option<Vec<u8>>),
    /// A put took effect.
    Written,
    /// A CAS swapped.
    Swapped,
    /// A CAS found this value instead.
    NotSwapped(Option<Vec<u8>>),
    /// The lock is the caller's, with this fencing token.
    Acquired {
        /// The fencing token.
        token: u64,
    },
    /// The lock is held by `holder`.
    Busy {
        /// The holder.
        holder: u64,
    },
    /// The lock was released.
    Released,
    /// The caller does not hold the lock: release refused.
    NotHolder,
    /// A token validation's verdict.
    Valid(bool),
    /// A keep-alive was applied.
    Alive,
    /// The client's session expired ([`paxraft_impls::sm::SessionError::Expired`]): the
    /// request was not applied, and the client must start over under a new client id.
    Expired,
}

impl From<KvOutput> for Answer {
    fn from(o: KvOutput) -> Self {
        match o {
            KvOutput::Value(v) => Answer::Value(v),
            KvOutput::Written => Answer::Written,
            KvOutput::Cas(Ok(())) => Answer::Swapped,
            KvOutput::Cas(Err(v)) => Answer::NotSwapped(v),
            KvOutput::Lock(o) => o.into(),
        }
    }
}

/// Every message of the model: replica to replica, client to server, server to client.
///
/// Payloads that do not fit in a word sit behind an `Arc`: stateright copies the whole
/// network into every successor state, and a state waiting in the BFS queue keeps its copy,
/// so an envelope in the network's table is kept small (40 bytes instead of 96 to 104) and
/// a message in flight over many states is stored once. `Arc` hashes, compares and orders as
/// its contents, so states and their fingerprints are exactly what they were.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg<M> {
    /// A protocol message between replicas.
    Peer(Arc<M>),
    /// A client request.
    Request(Arc<Cmd>),
    /// The result of request `seq`.
    Reply {
        /// The client's sequence number of the request.
        seq: u64,
        /// What the op returned.
        answer: Arc<Answer>,
    },
    /// A lock holder's write to the storage actor, fenced by its token.
    Write {
        /// The lock whose token guards the write.
        lock: u64,
        /// The fencing token the writer got with the lock.
        token: u64,
    },
    /// Request `seq` reached a leader at its cap on uncommitted commands
    /// ([`Effect::Busy`](paxraft_impls::Effect::Busy)): it was not taken, and will not be
    /// applied unless a retry is.
    Busy {
        /// The client's sequence number of the request.
        seq: u64,
    },
    /// Request `seq` reached a replica that cannot take it.
    Redirect {
        /// The client's sequence number of the request.
        seq: u64,
        /// The leader the replica knows of, if any.
        leader: Option<NodeId>,
    },
}

/// Timers: the replica's own, and the client's retry timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer<T> {
    /// A replica timer.
    Replica(T),
    /// A client gives up waiting and resends.
    Retry,
    /// The operator asks this server for membership change `k` of
    /// [`ModelConfig::changes`](super::ModelConfig::changes) (it takes effect only at a leader).
    Admin(u8),
}
