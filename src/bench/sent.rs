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
    /// Request `seq` left at `at` ([`SentBatches::push_run`] of one).
    pub(crate) fn push(&mut self, seq: u64, at: Instant) {
        self.push_run(seq, 1, at);
    }

    /// Requests `first..first + count` left at `at`: they join the newest batch if that batch
    /// left at `at` and ends just before `first`. Requests are numbered in order, each once.
    /// One call per pass of the driver, not one per request: per request this bookkeeping
    /// was 4% of a lease point's samples.
    pub(crate) fn push_run(&mut self, first: u64, count: u64, at: Instant) {
        if count == 0 {
            return;
        }
        let end = first + count;
        self.live += count;
        if self.batches.is_empty() {
            self.answered.clear();
            self.base = first & !63;
        }
        // A bit for every request up to `end - 1`.
        while self.base + 64 * (self.answered.len() as u64) < end {
            self.answered.push_back(0);
        }
        if let Some(b) = self.batches.back_mut() {
            assert!(first >= b.end, "request {first} sent out of order");
            if b.end == first && b.at == at {
                b.end = end;
                b.left += count;
                return;
            }
        }
        self.batches.push_back(Batch {
            first,
            end,
            at,
            left: count,
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

    /// A run of requests recorded at once is recorded as the same requests one by one:
    /// the same batches (a run continues the newest batch when it follows it at the same
    /// time), the same answers, the same count outstanding; an empty run records nothing.
    #[test]
    fn a_run_is_recorded_as_its_requests_one_by_one() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_micros(1);
        // (first, count, time): runs across word boundaries, one continuing the batch
        // before it, one after a gap, an empty one.
        let runs = [
            (5, 3, t0),
            (8, 70, t0),
            (78, 0, t1),
            (78, 2, t1),
            (90, 130, t1),
        ];
        let (mut one, mut many) = (SentBatches::default(), SentBatches::default());
        for (first, count, at) in runs {
            for seq in first..first + count {
                one.push(seq, at);
            }
            many.push_run(first, count, at);
        }
        // The runs at t0 (the second continues the first), the first at t1, the one after the
        // gap.
        assert_eq!((many.batches.len(), one.batches.len()), (3, 3));
        assert_eq!(
            (many.live(), many.answered.len(), many.base),
            (one.live(), one.answered.len(), one.base)
        );
        for seq in (0..230).rev() {
            let (a, b) = (one.answer(seq), many.answer(seq));
            assert_eq!(a.map(|i| one.at(i)), b.map(|i| many.at(i)), "request {seq}");
            assert_eq!(one.live(), many.live());
        }
        assert_eq!(many.live(), 0);
    }

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
