//! What kind of step a model action is, as far as fault injection cares.

use paxraft_models::checked::CheckAction;
use stateright::actor::{ActorModelAction, Envelope};

/// The kind of a model action, as far as fault injection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Deliver a message from actor `src` to actor `dst`.
    Deliver {
        /// The sender's actor index.
        src: usize,
        /// The recipient's actor index.
        dst: usize,
    },
    /// Lose a message (lossy networks only).
    Drop,
    /// Fire a timer of `node`.
    Timeout {
        /// The actor index.
        node: usize,
    },
    /// Crash `node`.
    Crash {
        /// The actor index.
        node: usize,
    },
    /// Restart crashed `node`.
    Recover {
        /// The actor index.
        node: usize,
    },
    /// Let time pass (models with time): drawn like a timer.
    Time,
    /// A clock takes its rate (models with time, before anything else): drawn like a timer.
    Drift,
    /// Anything else (random choices).
    Other,
}

/// Models whose actions can be classified. Implemented for every stateright actor model.
pub trait Classify: Sized {
    /// The kind of this action.
    fn class(&self) -> Class;
    /// For a delivery: the action that takes the same message off the network without
    /// delivering it, if the model has one (stateright's lossy networks do).
    fn consume(&self) -> Option<Self> {
        None
    }
    /// For a delivery to or a timer of a server: the same step torn by a crash at crash
    /// point `point` of its effects (the effects before it carried out, then the server
    /// crashes), if the model can tear steps. The model refuses (`next_state` gives `None`)
    /// when the step has no such point.
    fn tear(&self, _point: usize) -> Option<Self> {
        None
    }
}

impl<M: Clone, T, R> Classify for ActorModelAction<M, T, R> {
    fn class(&self) -> Class {
        match self {
            ActorModelAction::Deliver { src, dst, .. } => Class::Deliver {
                src: usize::from(*src),
                dst: usize::from(*dst),
            },
            ActorModelAction::Drop(_) => Class::Drop,
            ActorModelAction::Timeout(id, _) => Class::Timeout {
                node: usize::from(*id),
            },
            ActorModelAction::Crash(id) => Class::Crash {
                node: usize::from(*id),
            },
            ActorModelAction::Recover(id) => Class::Recover {
                node: usize::from(*id),
            },
            ActorModelAction::SelectRandom { .. } => Class::Other,
        }
    }

    fn consume(&self) -> Option<Self> {
        match self {
            ActorModelAction::Deliver { src, dst, msg } => Some(ActorModelAction::Drop(Envelope {
                src: *src,
                dst: *dst,
                msg: msg.clone(),
            })),
            _ => None,
        }
    }
}

impl<R: paxraft_impls::Replica<paxraft_models::Cmd>> Classify for CheckAction<R> {
    fn class(&self) -> Class {
        match self {
            CheckAction::Step(a) => a.class(),
            CheckAction::CrashDuring { step, .. } => match step.class() {
                Class::Deliver { dst: node, .. } | Class::Timeout { node } => Class::Crash { node },
                _ => Class::Other,
            },
            CheckAction::Tick => Class::Time,
            CheckAction::Drift { .. } => Class::Drift,
        }
    }

    fn consume(&self) -> Option<Self> {
        match self {
            CheckAction::Step(a) => a.consume().map(CheckAction::Step),
            CheckAction::CrashDuring { .. } | CheckAction::Tick | CheckAction::Drift { .. } => None,
        }
    }

    fn tear(&self, point: usize) -> Option<Self> {
        match self {
            CheckAction::Step(a)
                if matches!(a.class(), Class::Deliver { .. } | Class::Timeout { .. }) =>
            {
                Some(CheckAction::CrashDuring {
                    step: a.clone(),
                    point,
                })
            }
            _ => None,
        }
    }
}
