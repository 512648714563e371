//! What a run's path means for its clients (the history the linearizability checker reads)
//! and for people (its message-sequence chart).

use paxraft_impls::sm::{KvOp, KvOutput, LockOutput};
use paxraft_impls::Replica;
use paxraft_models::checked::CheckAction;
use paxraft_models::model::{Answer, ClientState, Msg, Node, MAX_PIPELINE};
use paxraft_models::render::trace_of_actions;
use paxraft_models::{Cmd, Trace};
use stateright::actor::ActorModelAction;
use stateright::Model;

use super::model::{Action, SimModel};
use crate::lincheck::Op;
use crate::simulate::executor::{Classify, Violation};

/// What an answer says in the history's terms (`None`: the session expired, an answer that
/// leaves the op's outcome unknown).
fn output(a: &Answer) -> Option<KvOutput> {
    Some(match a {
        Answer::Value(v) => KvOutput::Value(v.clone()),
        Answer::Written => KvOutput::Written,
        Answer::Swapped => KvOutput::Cas(Ok(())),
        Answer::NotSwapped(v) => KvOutput::Cas(Err(v.clone())),
        Answer::Acquired { token } => KvOutput::Lock(LockOutput::Acquired { token: *token }),
        Answer::Busy { holder } => KvOutput::Lock(LockOutput::Busy { holder: *holder }),
        Answer::Released => KvOutput::Lock(LockOutput::Released),
        Answer::NotHolder => KvOutput::Lock(LockOutput::NotHolder),
        Answer::Valid(v) => KvOutput::Lock(LockOutput::Valid(*v)),
        Answer::Alive => KvOutput::Lock(LockOutput::Alive),
        Answer::Expired => return None,
    })
}

/// The ops of every client, as the model's client actors hold them.
fn clients_ops<R: Replica<Cmd>>(model: &SimModel<R>) -> Vec<&[KvOp]> {
    model
        .actors
        .actors
        .iter()
        .filter_map(|a| match a {
            Node::Client { ops, .. } => Some(ops.as_slice()),
            _ => None,
        })
        .collect()
}

/// The clients' history along `path`, for the linearizability checker. It follows the
/// clients' own rules (the model's [`ClientState`]): a reply counts when it answers an op
/// its client still waits for; the client then issues its next ops, as many as its
/// pipeline has room for, at that moment. Step `t` (1-based) happens at time `2t`;
/// invocations that follow a return come just after it, at `2t + 1`; first ops are invoked
/// at time 1. Ops never answered are pending (no return). Under the lock service, an answer
/// that the client's session expired stops the client: the op it answers, and every other
/// op of it not yet answered, stay pending (each may or may not have taken effect before
/// the session expired), and nothing more is issued.
pub fn history<R: Replica<Cmd>>(model: &SimModel<R>, path: &[Action<R>]) -> Vec<Op> {
    let cfg = &model.actors.cfg.cfg;
    let ops = clients_ops(model);
    let pipeline = cfg.pipeline.clamp(1, MAX_PIPELINE);
    let mut clients = vec![ClientState::default(); cfg.clients];
    // Per client, per op (0-based): when it was invoked.
    let mut called: Vec<Vec<u64>> = vec![Vec::with_capacity(cfg.ops); cfg.clients];
    let issue = |c: &mut ClientState, called: &mut Vec<u64>, now: u64, n: usize| {
        while usize::from(c.seq) < n && usize::from(c.seq) < usize::from(c.done) + pipeline {
            c.seq += 1;
            called.push(now);
        }
    };
    for (c, cl) in clients.iter_mut().enumerate() {
        issue(cl, &mut called[c], 1, ops[c].len());
    }
    let mut h = Vec::with_capacity(cfg.clients * cfg.ops);
    for (t, a) in path.iter().enumerate() {
        let CheckAction::Step(ActorModelAction::Deliver {
            dst,
            msg: Msg::Reply { seq, answer },
            ..
        }) = a
        else {
            continue;
        };
        let Some(c) = usize::from(*dst)
            .checked_sub(cfg.servers)
            .filter(|&c| c < cfg.clients)
        else {
            continue;
        };
        if !clients[c].awaits(*seq) {
            continue; // not awaited: the client ignores it
        }
        let Some(out) = output(answer) else {
            clients[c].expired = true;
            continue;
        };
        let now = 2 * (t as u64 + 1);
        let k = *seq as usize;
        h.push(Op {
            client: c as u64,
            call: called[c][k - 1],
            ret: Some(now),
            op: ops[c][k - 1].clone(),
            out: Some(out),
        });
        clients[c].answer(*seq);
        issue(&mut clients[c], &mut called[c], now + 1, ops[c].len());
    }
    for (c, cl) in clients.iter().enumerate() {
        // The ops it still waited for when it stopped, if its session expired.
        let waiting = ClientState {
            expired: false,
            ..cl.clone()
        };
        for k in waiting.unanswered() {
            let k = usize::from(k);
            h.push(Op {
                client: c as u64,
                call: called[c][k - 1],
                ret: None,
                op: ops[c][k - 1].clone(),
                out: None,
            });
        }
    }
    h
}

/// The message-sequence chart of a run's path, about `violation`: the executor's
/// bookkeeping drops are hidden, and a message its recipient ignored shows as a delivery
/// marked "(ignored)".
pub fn trace<R: Replica<Cmd>>(
    model: &SimModel<R>,
    path: &[Action<R>],
    consumed: &[usize],
    violation: &Violation,
) -> Trace {
    let init = model
        .init_states()
        .into_iter()
        .next()
        .expect("a model has an initial state");
    let last = path.iter().fold(init, |s, a| {
        model
            .next_state(&s, a.clone())
            .expect("a path the executor took replays")
    });
    let mut t = trace_of_actions(model, path, &last, &violation.property);
    // The chart's first step for each path entry: a torn step is drawn as two.
    let mut first = Vec::with_capacity(path.len());
    let mut k = 0;
    for a in path {
        first.push(k);
        k += if matches!(a, CheckAction::CrashDuring { .. }) {
            2
        } else {
            1
        };
    }
    let mut hide = vec![false; t.steps.len()];
    for &i in consumed {
        let after_delivery = i > 0 && path[i - 1].consume().as_ref() == Some(&path[i]);
        if after_delivery {
            hide[first[i]] = true;
        } else if let CheckAction::Step(ActorModelAction::Drop(env)) = &path[i] {
            let step = &mut t.steps[first[i]];
            let what = step
                .label
                .split_once(": ")
                .map_or(step.label.clone(), |(_, m)| m.to_string());
            step.to = Some(usize::from(env.dst));
            step.label = format!("{what} (ignored)");
        }
    }
    let mut k = 0;
    t.steps.retain(|_| {
        k += 1;
        !hide[k - 1]
    });
    if !violation.detail.is_empty() {
        t.explanation = Some(violation.detail.clone());
    }
    t
}

/// Ops of `h` invoked while an earlier op of the same client had not returned: how much the
/// clients actually pipelined.
pub fn pipelined_ops(h: &[Op]) -> u64 {
    let mut by_client: std::collections::BTreeMap<u64, Vec<&Op>> = Default::default();
    for o in h {
        by_client.entry(o.client).or_default().push(o);
    }
    by_client
        .values_mut()
        .map(|ops| {
            ops.sort_by_key(|o| o.call);
            let mut open_until = 0; // the latest return among earlier ops (MAX: pending)
            let mut n = 0;
            for o in ops.iter() {
                n += u64::from(o.call < open_until);
                open_until = open_until.max(o.ret.unwrap_or(u64::MAX));
            }
            n
        })
        .sum()
}
