//! When a driven client's outstanding requests were sent: one record per batch, not per
//! request.
//!
//! A driver sends its requests in batches that share one clock reading, and a client numbers
//! its requests 1, 2, ..., so a batch is a run of sequence numbers with one send time. Kept
//! per request (a slot of 16 bytes each, written and read once per operation) that record
//! cost a lease read as much as the read itself; kept per batch it is one entry per pass of
//! the driver's loop, and the answers of one batch polled together share one latency, which
//! the histogram takes in one `record_n`.

use std::collections::VecDeque;
use std::time::Instant;

/// Requests `first..end`, sent at `at`; `left` of them not answered yet.
#[derive(Debug, Clone, Copy)]
struct Batch {
    first: u64,
    end: u64,
    at: Instant,
    left: u64,
}

/// The batches with a request outstanding, oldest first (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct SentBatches {
    batches: VecDeque<Batch>,
    /// Requests sent and not answered, over all batches.
    live: u64,
    /// The batch of the last answer: the next answer is most often in it.
    hint: usize,
}

impl SentBatches {
    /// Request `seq` left at `at`: it joins the newest batch if that batch left at `at` and
    /// ends just before `seq`. Requests are numbered in order, each once.
    pub(crate) fn push(&mut self, seq: u64, at: Instant) {
        self.live += 1;
        if let Some(b) = self.batches.back_mut() {
            assert!(seq >= b.end, "request {seq} sent out of order");
            if b.end == seq && b.at == at {
                b.end += 1;
                b.left += 1;
                return;
            }
        }
        self.batches.push_back(Batch {
            first: seq,
            end: seq + 1,
            at,
            left: 1,
        });
    }

    /// Request `seq` was answered: the index of its batch (for [`SentBatches::at`]), `None`
    /// when `seq` is not outstanding (never sent, or every request of its batch answered).
    /// The batch stays until [`SentBatches::drop_answered`].
    pub(crate) fn answer(&mut self, seq: u64) -> Option<usize> {
        let i = match self.batches.get(self.hint) {
            Some(b) if b.first <= seq && seq < b.end => self.hint,
            _ => self.batches.partition_point(|b| b.end <= seq),
        };
        self.hint = i;
        let b = self.batches.get_mut(i).filter(|b| b.first <= seq)?;
        // More answers than requests: some request answered twice.
        b.left = b.left.checked_sub(1)?;
        self.live -= 1;
        Some(i)
    }

    /// When batch `i` (from [`SentBatches::answer`]) was sent.
    pub(crate) fn at(&self, i: usize) -> Instant {
        self.batches[i].at
    }

    /// Forget the oldest batches once all their requests are answered (after a round of
    /// answers: the indices [`SentBatches::answer`] returned change).
    pub(crate) fn drop_answered(&mut self) {
        while self.batches.front().is_some_and(|b| b.left == 0) {
            self.batches.pop_front();
        }
        self.hint = 0;
    }

    /// Requests sent and not answered.
    pub(crate) fn live(&self) -> u64 {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_sent_together_share_a_batch_and_are_answered_once() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_micros(1);
        let mut s = SentBatches::default();
        for seq in 1..=3 {
            s.push(seq, t0);
        }
        s.push(4, t1);
        s.push(5, t1);
        assert_eq!((s.batches.len(), s.live()), (2, 5));
        // Out of order, across batches.
        let b = s.answer(4).expect("outstanding");
        assert_eq!(s.at(b), t1);
        let a = s.answer(2).expect("outstanding");
        assert_eq!((a, s.at(a)), (0, t0));
        assert_eq!(s.answer(6), None, "never sent");
        assert_eq!(s.answer(0), None, "before the first");
        for seq in [1, 3] {
            s.answer(seq).expect("outstanding");
        }
        assert_eq!(s.answer(3), None, "its batch has no request left");
        s.drop_answered();
        assert_eq!(
            (s.batches.len(), s.live()),
            (1, 1),
            "the first batch is gone"
        );
        assert_eq!(s.answer(1), None, "forgotten with its batch");
        assert_eq!(s.answer(5).map(|i| s.at(i)), Some(t1));
        s.drop_answered();
        assert_eq!((s.batches.len(), s.live()), (0, 0));
        // A gap in the numbers (requests sent by someone else) starts a new batch.
        s.push(7, t1);
        s.push(9, t1);
        assert_eq!(s.batches.len(), 2);
        assert_eq!(s.answer(8), None, "in the gap");
    }

    #[test]
    #[should_panic(expected = "request 2 sent out of order")]
    fn a_request_numbered_below_the_newest_is_refused() {
        let mut s = SentBatches::default();
        let t = Instant::now();
        s.push(3, t);
        s.push(2, t);
    }
}
