//! The clients' history: what they saw, for stateright's linearizability tester.

use std::sync::Arc;

use paxraft_impls::sm::{Kv, KvOp, StateMachine};

use super::service::ServiceSpec;
use paxraft_impls::Replica;
use stateright::actor::{Envelope, Id};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

use super::{Answer, Cmd, Hashed, ModelConfig, Msg, Setup};

/// The key-value store as a sequential specification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec(pub Kv);

impl SequentialSpec for KvSpec {
    type Op = KvOp;
    type Ret = Answer;
    fn invoke(&mut self, op: &KvOp) -> Answer {
        self.0.apply(op).into()
    }
}

/// The clients' history. A retried request is one invocation; its first matching reply is
/// its return, and later duplicates are not recorded (the clients ignore them too).
///
/// Every explored state holds one, and most steps do not change it: it is shared (`Arc`),
/// hashed once per change ([`Hashed`]), and its verdict is computed once per change too, so
/// cloning, fingerprinting and checking a state cost nothing for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct History(Arc<Hashed<HistoryLog>>);

impl std::ops::Deref for History {
    type Target = HistoryLog;
    fn deref(&self) -> &HistoryLog {
        &self.0
    }
}

/// What [`History`] shares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryLog {
    /// Whether `tester` finds the history linearizable (kept up to date on every change).
    pub consistent: bool,
    /// Invocations and returns, per client, against either service's specification.
    pub tester: LinearizabilityTester<Id, ServiceSpec>,
    /// Per client (by client index): highest sequence number invoked, and returned.
    pub invoked: Vec<(u8, u8)>,
    /// Number of servers (client `c` is actor `servers + c`).
    servers: u8,
    /// Messages sent and not delivered, counted only under a loss budget: whatever of them
    /// is not in the network was lost.
    pub undelivered: u16,
}

impl History {
    pub(super) fn new(cfg: &ModelConfig) -> Self {
        History::from(HistoryLog {
            consistent: true,
            tester: LinearizabilityTester::new(ServiceSpec::default()),
            invoked: vec![(0, 0); cfg.clients],
            servers: cfg.servers as u8,
            undelivered: 0,
        })
    }

    fn from(log: HistoryLog) -> Self {
        History(Arc::new(Hashed::new(log)))
    }

    /// This history with `n` fewer messages counted as sent and undelivered (the checker
    /// dropped them as garbage: they were not lost).
    pub(crate) fn forget_undelivered(&self, n: usize) -> Self {
        let mut log = (**self.0).clone();
        log.undelivered = log.undelivered.saturating_sub(n as u16);
        History::from(log)
    }
}

impl HistoryLog {
    fn client(&self, id: Id) -> Option<usize> {
        usize::from(id)
            .checked_sub(usize::from(self.servers))
            .filter(|&c| c < self.invoked.len())
    }
}

pub(super) fn record_out<R: Replica<Cmd>>(
    setup: &Setup<R>,
    h: &History,
    env: Envelope<&Msg<R::Msg>>,
) -> Option<History> {
    let counted = if setup.cfg.max_losses.is_some() {
        let mut h = (**h.0).clone();
        h.undelivered += 1;
        Some(h)
    } else {
        None
    };
    let invocation = match env.msg {
        Msg::Request(cmd) => h
            .client(env.src)
            .filter(|&c| cmd.seq > u64::from(h.invoked[c].0)),
        _ => None, // not a request, or a retry of an invocation already recorded
    };
    let Some(c) = invocation else {
        return counted.map(History::from);
    };
    let Msg::Request(cmd) = env.msg else {
        unreachable!()
    };
    let mut h = counted.unwrap_or_else(|| (**h.0).clone());
    let _ = h.tester.on_invoke(env.src, cmd.op.clone());
    h.invoked[c].0 = cmd.seq as u8;
    h.consistent = h.tester.is_consistent();
    Some(History::from(h))
}

pub(super) fn record_in<R: Replica<Cmd>>(
    setup: &Setup<R>,
    h: &History,
    env: Envelope<&Msg<R::Msg>>,
) -> Option<History> {
    let counted = if setup.cfg.max_losses.is_some() {
        let mut h = (**h.0).clone();
        h.undelivered = h.undelivered.saturating_sub(1);
        Some(h)
    } else {
        None
    };
    let Msg::Reply { seq, answer } = env.msg else {
        return counted.map(History::from);
    };
    let Some(c) = h.client(env.dst) else {
        return counted.map(History::from);
    };
    let (invoked, returned) = h.invoked[c];
    if *seq != u64::from(invoked) || returned >= invoked {
        return counted.map(History::from); // not awaited: the client ignores it
    }
    if **answer == Answer::Expired {
        // The op stays pending for ever: whether it took effect before the session expired
        // is unknown to the client, and a pending op may be linearized or not.
        return counted.map(History::from);
    }
    let mut h = counted.unwrap_or_else(|| (**h.0).clone());
    let _ = h.tester.on_return(env.dst, (**answer).clone());
    h.invoked[c].1 = invoked;
    h.consistent = h.tester.is_consistent();
    Some(History::from(h))
}
