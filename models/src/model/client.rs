//! The clients: each issues its ops in order, a few at a time, follows redirects and resends
//! after a timeout.

use paxraft_impls::sm::{KvOp, Request};
use paxraft_impls::Replica;
use stateright::actor::{model_timeout, Id};

use super::{Cmd, ModelOut, Msg, Timer};

/// Most requests a client keeps outstanding ([`ModelConfig::pipeline`](super::ModelConfig::pipeline)).
pub const MAX_PIPELINE: usize = 8;

/// A client's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientState {
    /// Sequence number of the last op issued (0: none yet).
    pub seq: u8,
    /// Every op up to this sequence number is answered.
    pub done: u8,
    /// Ops above `done + 1` answered out of order: bit `k` is op `done + 2 + k` (always 0
    /// with one request outstanding).
    pub ahead: u8,
    /// Server the client sends to.
    pub target: u8,
    /// Resends after timeouts since the client last made progress.
    pub retries: u8,
    /// The fencing token of the last lock it acquired (0: none; lock service only).
    pub token: u64,
    /// Its session expired: it stopped (lock service only).
    pub expired: bool,
}

impl ClientState {
    /// Whether the client waits for a reply.
    pub fn waiting(&self) -> bool {
        !self.expired && self.done < self.seq
    }

    /// Whether the client still waits for the answer to op `seq`.
    pub fn awaits(&self, seq: u64) -> bool {
        let (done, last) = (u64::from(self.done), u64::from(self.seq));
        if self.expired || seq <= done || seq > last {
            return false;
        }
        seq == done + 1 || self.ahead & (1 << (seq - done - 2)) == 0
    }

    /// The ops issued and not answered, lowest first.
    pub fn unanswered(&self) -> impl Iterator<Item = u8> + '_ {
        (self.done + 1..=self.seq).filter(|&k| self.awaits(u64::from(k)))
    }

    /// Record the answer to op `seq` (which [`ClientState::awaits`]); the answered prefix
    /// grows over answers that came ahead of it.
    pub fn answer(&mut self, seq: u64) {
        debug_assert!(self.awaits(seq));
        if seq == u64::from(self.done) + 1 {
            self.done += 1;
            while self.ahead & 1 == 1 {
                self.ahead >>= 1;
                self.done += 1;
            }
            self.ahead >>= 1;
        } else {
            self.ahead |= 1 << (seq - u64::from(self.done) - 2);
        }
    }
}

/// Request `seq` of client `id` in state `c`. It acknowledges every answer below the
/// client's lowest unanswered op (the sessions may forget those results), and no other:
/// an op answered ahead of an earlier one is not acknowledged until the earlier one is.
pub(super) fn client_request(id: Id, ops: &[KvOp], c: &ClientState, seq: u8) -> Cmd {
    Request {
        client: usize::from(id) as u64,
        seq: u64::from(seq),
        acked: u64::from(c.done) + 1,
        op: ops[seq as usize - 1].clone(),
    }
}

/// Issue ops while fewer than `pipeline` are unanswered (counted from the lowest, as the
/// session's acknowledgement point is), then (re)arm or cancel the retry timer.
pub(super) fn client_issue(
    id: Id,
    c: &mut ClientState,
    ops: &[KvOp],
    servers: u8,
    pipeline: u8,
    o: &mut ModelOut<impl Replica<Cmd>>,
) {
    while usize::from(c.seq) < ops.len() && c.seq < c.done.saturating_add(pipeline) {
        c.seq += 1;
        o.send(
            Id::from(usize::from(c.target % servers)),
            Msg::Request(client_request(id, ops, c, c.seq).into()),
        );
    }
    if c.waiting() {
        o.set_timer(Timer::Retry, model_timeout());
    } else {
        o.cancel_timer(Timer::Retry);
    }
}

#[cfg(test)]
mod tests {
    use super::ClientState;

    fn client() -> ClientState {
        ClientState::default()
    }

    /// The answered prefix grows over answers that came ahead of it; what is below it or
    /// not yet issued is not awaited, nor is an answer received twice.
    #[test]
    fn a_pipelined_client_awaits_exactly_its_unanswered_ops() {
        let mut c = ClientState { seq: 5, ..client() };
        assert_eq!(c.unanswered().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        c.answer(3);
        c.answer(5);
        assert_eq!((c.done, c.ahead), (0, 0b1010));
        assert!(!c.awaits(3) && !c.awaits(5) && !c.awaits(6) && !c.awaits(0));
        assert_eq!(c.unanswered().collect::<Vec<_>>(), [1, 2, 4]);
        c.answer(2);
        assert_eq!((c.done, c.ahead), (0, 0b1011));
        c.answer(1);
        // 1, 2, 3 answered: the prefix slides over 2 and 3 and stops at 4.
        assert_eq!((c.done, c.ahead), (3, 0b1));
        assert!(c.waiting() && c.awaits(4) && !c.awaits(5));
        c.answer(4);
        assert_eq!((c.done, c.ahead), (5, 0));
        assert!(!c.waiting());
        assert_eq!(c.unanswered().count(), 0);
    }

    /// One request at a time, the window is the old client's: the op issued is the only one
    /// awaited, and `ahead` never holds a bit.
    #[test]
    fn a_client_without_pipelining_awaits_its_last_op_only() {
        let mut c = client();
        for k in 1..=4u8 {
            c.seq = k;
            assert!(c.awaits(u64::from(k)) && !c.awaits(u64::from(k) - 1));
            c.answer(u64::from(k));
            assert_eq!((c.done, c.ahead), (k, 0));
        }
    }
}
