//! Requests by sequence number, from the oldest one still outstanding.
//!
//! A client numbers its requests 1, 2, ... and their answers come back in any order; a deque
//! of slots indexed from the oldest outstanding request makes an insert and an answer O(1),
//! with no map (a number a push skips is a hole, filled by a later insert or never). Its
//! span, from the oldest outstanding request to the newest, is what the client let out since
//! the oldest was sent (a [`Client`](super::Client) answers every request by its timeout, so
//! that span is bounded by what it sends within one timeout).

use std::collections::VecDeque;

/// Items by sequence number (see the module docs).
#[derive(Debug)]
pub(crate) struct SeqWindow<T> {
    /// `slots[i]` is request `base + i`'s; `None` once taken. The front is always `Some`.
    slots: VecDeque<Option<T>>,
    base: u64,
    /// Slots that are `Some`.
    live: usize,
}

impl<T> Default for SeqWindow<T> {
    fn default() -> Self {
        SeqWindow {
            slots: VecDeque::new(),
            base: 0,
            live: 0,
        }
    }
}

impl<T> SeqWindow<T> {
    /// Add request `seq`'s item: `seq` is after the newest pushed, or any number when the
    /// window is empty. Numbers skipped are requests kept elsewhere (a client's lease reads).
    pub(crate) fn push(&mut self, seq: u64, item: T) {
        if self.slots.is_empty() {
            self.base = seq;
        }
        let end = self.base + self.slots.len() as u64;
        // A client's requests are numbered in order, each once.
        assert!(seq >= end, "sequence out of order: {seq} after {}", end - 1);
        for _ in end..seq {
            self.slots.push_back(None);
        }
        self.slots.push_back(Some(item));
        self.live += 1;
    }

    /// Add request `seq`'s item where it belongs, before the newest pushed too: its number
    /// was skipped by [`SeqWindow::push`], and it is not in the window.
    pub(crate) fn insert(&mut self, seq: u64, item: T) {
        if self.slots.is_empty() || seq >= self.base + self.slots.len() as u64 {
            return self.push(seq, item);
        }
        // Older than every request in the window: the front moves back to it.
        while self.base > seq {
            self.slots.push_front(None);
            self.base -= 1;
        }
        let slot = self.slot(seq).expect("inside the window");
        assert!(slot.is_none(), "request {seq} is in the window already");
        *slot = Some(item);
        self.live += 1;
    }

    /// Where `seq`'s slot would be in `slots` (it may lie past the end).
    fn index(&self, seq: u64) -> Option<usize> {
        usize::try_from(seq.checked_sub(self.base)?).ok()
    }

    /// The slot of `seq`, if it is in the window.
    fn slot(&mut self, seq: u64) -> Option<&mut Option<T>> {
        let i = self.index(seq)?;
        self.slots.get_mut(i)
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&T> {
        self.slots.get(self.index(seq)?)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        self.slot(seq)?.as_mut()
    }

    /// Take `seq`'s item out (`None` if it is not in the window).
    pub(crate) fn take(&mut self, seq: u64) -> Option<T> {
        let item = self.slot(seq)?.take()?;
        self.taken();
        Some(item)
    }

    /// Drop `seq`'s item where it lies, without moving it out; false if it was not there.
    pub(crate) fn forget(&mut self, seq: u64) -> bool {
        let Some(slot) = self.slot(seq).filter(|slot| slot.is_some()) else {
            return false;
        };
        *slot = None;
        self.taken();
        true
    }

    /// One item fewer: drop the empty slots from the front.
    fn taken(&mut self) {
        self.live -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// Items in the window.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The oldest sequence number still in the window (`None`: empty).
    pub(crate) fn oldest(&self) -> Option<u64> {
        (!self.slots.is_empty()).then_some(self.base)
    }

    /// Every item with its sequence number, oldest first.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        let base = self.base;
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, slot)| Some((base + i as u64, slot.as_mut()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_found_once_by_sequence_and_the_window_slides() {
        let mut s = SeqWindow::default();
        for seq in 5..=8u64 {
            s.push(seq, seq * 10);
        }
        assert_eq!(s.take(6), Some(60), "answered out of order");
        assert_eq!(s.take(6), None, "answered twice");
        assert_eq!((s.base, s.live), (5, 3), "a hole behind the front stays");
        assert_eq!(s.take(5), Some(50));
        assert_eq!(
            (s.base, s.slots.len()),
            (7, 2),
            "the front slid past the hole"
        );
        assert_eq!(s.take(4), None, "before the window");
        assert_eq!(s.take(9), None, "not sent yet");
        s.push(9, 90);
        assert_eq!(
            s.iter_mut().map(|(seq, v)| (seq, *v)).collect::<Vec<_>>(),
            [(7, 70), (8, 80), (9, 90)]
        );
        assert!(s.forget(8) && !s.forget(8), "forgotten once");
        assert_eq!(s.get(8), None);
        assert_eq!([s.take(7), s.take(9)], [Some(70), Some(90)]);
        assert_eq!((s.live, s.slots.len(), s.oldest()), (0, 0, None));
        s.push(20, 200);
        assert_eq!(
            s.oldest(),
            Some(20),
            "an empty window starts at the next request"
        );
    }

    #[test]
    fn numbers_skipped_by_a_push_can_be_inserted_later_anywhere() {
        let mut s = SeqWindow::default();
        s.push(3, 30);
        s.push(6, 60); // 4 and 5 kept elsewhere
        assert_eq!((s.base, s.slots.len(), s.live), (3, 4, 2));
        s.insert(5, 50);
        s.insert(1, 10); // older than the window's front
        assert_eq!(s.oldest(), Some(1));
        s.insert(8, 80); // past the newest
        assert_eq!(
            s.iter_mut().map(|(seq, v)| (seq, *v)).collect::<Vec<_>>(),
            [(1, 10), (3, 30), (5, 50), (6, 60), (8, 80)]
        );
        assert_eq!([s.take(1), s.take(3)], [Some(10), Some(30)]);
        assert_eq!(s.oldest(), Some(5), "the holes at the front went with them");
        assert_eq!(s.live(), 3);
    }

    #[test]
    #[should_panic(expected = "request 5 is in the window already")]
    fn a_request_is_inserted_once() {
        let mut s = SeqWindow::default();
        s.push(5, 50);
        s.push(6, 60);
        s.insert(5, 51);
    }

    #[test]
    #[should_panic(expected = "sequence out of order: 4 after 5")]
    fn a_push_below_the_newest_is_refused() {
        let mut s = SeqWindow::default();
        s.push(5, 50);
        s.push(4, 40);
    }
}
