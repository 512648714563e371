//! When a driven client's outstanding requests were sent: one record per batch, not per
//! request.
//!
//! A driver sends its requests in batches that share one clock reading, and a client numbers
//! its requests 1, 2, ..., so a batch is a run of sequence numbers with one send time. Kept
//! per request (a slot of 16 bytes each, written and read once per operation) that record
//! cost a lease read as much as the read itself; kept per batch it is one entry per pass of
//! the driver's loop, and the answers of one batch polled together share one latency, which
//! the histogram takes in one `record_n`. One bit per request still says whether it was
//! answered, so that a request answered twice is caught (and fails the run) instead of
//! counting twice while its batch has others outstanding.

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
    /// One bit per request from `base` on, set when it is answered: 64 requests a word, from
    /// the oldest batch's first request (rounded down to a word) to the newest request.
    answered: VecDeque<u64>,
    /// The request of the first word's lowest bit (a multiple of 64).
    base: u64,
}

impl SentBatches {
    /// Request `seq` left at `at`: it joins the newest batch if that batch left at `at` and
    /// ends just before `seq`. Requests are numbered in order, each once.
    pub(crate) fn push(&mut self, seq: u64, at: Instant) {
        self.live += 1;
        if self.batches.is_empty() {
            self.answered.clear();
            self.base = seq & !63;
        }
        while self.base + 64 * self.answered.len() as u64 <= seq {
            self.answered.push_back(0);
        }
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
    /// when `seq` is not outstanding (never sent, answered already, or its batch forgotten).
    /// The batch stays until [`SentBatches::drop_answered`].
    pub(crate) fn answer(&mut self, seq: u64) -> Option<usize> {
        let i = match self.batches.get(self.hint) {
            Some(b) if b.first <= seq && seq < b.end => self.hint,
            _ => self.batches.partition_point(|b| b.end <= seq),
        };
        self.hint = i;
        let b = self.batches.get_mut(i).filter(|b| b.first <= seq)?;
        // A batch's requests are at or above `base` and the words reach the newest.
        let bit = seq - self.base;
        let word = &mut self.answered[(bit / 64) as usize];
        let mask = 1u64 << (bit % 64);
        if *word & mask != 0 {
            return None;
        }
        *word |= mask;
        b.left -= 1;
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
        // The bits below the oldest batch left are no longer asked about.
        let from = self.batches.front().map_or(self.base, |b| b.first & !63);
        while self.base < from {
            self.answered.pop_front();
            self.base += 64;
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
    fn a_request_answered_twice_is_refused_while_its_batch_waits_for_others() {
        let t = Instant::now();
        let mut s = SentBatches::default();
        // Numbers across word boundaries, in one batch and then in later ones.
        for seq in 60..=70 {
            s.push(seq, t);
        }
        assert_eq!(s.answer(63), Some(0));
        assert_eq!(s.answer(63), None, "answered twice");
        assert_eq!(s.answer(64), Some(0));
        assert_eq!(s.answer(64), None, "answered twice, the next word");
        assert_eq!(s.live(), 9, "the second answers counted nothing");
        let t1 = t + Duration::from_micros(1);
        for seq in 71..=200 {
            s.push(seq, t1);
        }
        for seq in (60..=70).filter(|&q| q != 63 && q != 64) {
            s.answer(seq).expect("outstanding");
        }
        s.drop_answered();
        assert_eq!(s.base, 64, "the first word went with the first batch");
        assert_eq!(s.answer(70), None, "forgotten with its batch");
        assert_eq!(s.answer(199).map(|i| s.at(i)), Some(t1));
        assert_eq!(s.answer(199), None, "answered twice");
        assert_eq!(s.live(), 129);
        for seq in (71..=200).filter(|&q| q != 199) {
            s.answer(seq).expect("outstanding");
        }
        s.drop_answered();
        assert_eq!((s.batches.len(), s.live()), (0, 0));
        // A fresh start far above: the bits start again at its word.
        s.push(1000, t1);
        assert_eq!((s.base, s.answered.len()), (960, 1));
        assert_eq!(s.answer(1000), Some(0));
        assert_eq!(s.answer(1000), None);
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
