//! Requests by sequence number, from the oldest one still outstanding.
//!
//! A client numbers its requests 1, 2, ... and their answers come back in any order; a deque
//! of slots indexed from the oldest outstanding request makes an insert and an answer O(1),
//! with no map (a number a push skips is a hole, filled by a later insert or never). Its
//! span, from the oldest outstanding request to the newest, is what the client let out since
//! the oldest was sent (a [`Client`](super::Client) answers every request by its timeout, so
//! that span is bounded by what it sends within one timeout).

use std::collections::VecDeque;

/// A slot for a number whose item is elsewhere or gone.
const HOLE: u32 = u32::MAX;

/// Items by sequence number (see the module docs).
///
/// The deque holds a 4-byte index per number, not the item itself: under lease reads most
/// numbers of a span are holes (reads answered beside the window), and a hole of the item's
/// size (about 140 bytes for a key-value request) made every read write and later pop that
/// much, and every growth of the span copy it.
#[derive(Debug)]
pub(crate) struct SeqWindow<T> {
    /// `slots[i]` is request `base + i`'s: [`HOLE`], or its item's index in `items`. The
    /// front is never a hole.
    slots: VecDeque<u32>,
    base: u64,
    /// The items and their numbers, where `slots` point; a `None` is free, listed in `free`.
    items: Vec<Option<(u64, T)>>,
    free: Vec<u32>,
    /// Slots that are not holes.
    live: usize,
}

impl<T> Default for SeqWindow<T> {
    fn default() -> Self {
        SeqWindow {
            slots: VecDeque::new(),
            base: 0,
            items: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> SeqWindow<T> {
    /// Store `item` in a free place of `items`; its index.
    fn store(&mut self, seq: u64, item: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                debug_assert!(self.items[i as usize].is_none(), "a free place is empty");
                self.items[i as usize] = Some((seq, item));
                i
            }
            None => {
                let i = u32::try_from(self.items.len())
                    .ok()
                    .filter(|&i| i != HOLE)
                    .expect("fewer than 2^32 - 1 requests outstanding");
                self.items.push(Some((seq, item)));
                i
            }
        }
    }

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
            self.slots.push_back(HOLE);
        }
        let i = self.store(seq, item);
        self.slots.push_back(i);
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
            self.slots.push_front(HOLE);
            self.base -= 1;
        }
        let at = self.index(seq).expect("inside the window");
        assert!(
            self.slots[at] == HOLE,
            "request {seq} is in the window already"
        );
        self.slots[at] = self.store(seq, item);
        self.live += 1;
    }

    /// Where `seq`'s slot would be in `slots` (it may lie past the end).
    fn index(&self, seq: u64) -> Option<usize> {
        usize::try_from(seq.checked_sub(self.base)?).ok()
    }

    /// The index in `items` of `seq`'s item, if it is in the window.
    fn item(&self, seq: u64) -> Option<usize> {
        let i = *self.slots.get(self.index(seq)?)?;
        (i != HOLE).then_some(i as usize)
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&T> {
        let i = self.item(seq)?;
        self.items[i].as_ref().map(|(_, t)| t)
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let i = self.item(seq)?;
        self.items[i].as_mut().map(|(_, t)| t)
    }

    /// Take `seq`'s item out (`None` if it is not in the window).
    pub(crate) fn take(&mut self, seq: u64) -> Option<T> {
        let i = self.item(seq)?;
        let at = self.index(seq).expect("in the window");
        self.slots[at] = HOLE;
        let (stored, item) = self.items[i].take().expect("a slot points at an item");
        debug_assert_eq!(stored, seq, "a slot points at its own request's item");
        self.free.push(i as u32);
        self.taken();
        Some(item)
    }

    /// Drop `seq`'s item; false if it was not there.
    pub(crate) fn forget(&mut self, seq: u64) -> bool {
        self.take(seq).is_some()
    }

    /// One item fewer: drop the holes from the front.
    fn taken(&mut self) {
        self.live -= 1;
        while self.slots.front() == Some(&HOLE) {
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

    /// Every item with its sequence number, oldest first. Sorts what the window holds: for
    /// the client's scan, which runs only when something is due.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        let mut all: Vec<(u64, &mut T)> = self
            .items
            .iter_mut()
            .filter_map(|e| e.as_mut().map(|(seq, t)| (*seq, t)))
            .collect();
        all.sort_unstable_by_key(|&(seq, _)| seq);
        all.into_iter()
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

    /// A long run with a few items live at a time and long runs of numbers kept elsewhere
    /// (lease reads): the items' places are reused, each hole costs a slot of 4 bytes.
    #[test]
    fn places_are_reused_and_holes_stay_small() {
        let mut s = SeqWindow::default();
        for seq in (1..100_000u64).step_by(10) {
            s.insert(seq, [seq; 16]);
            if seq > 20 {
                assert_eq!(s.take(seq - 20), Some([seq - 20; 16]));
            }
        }
        assert_eq!(s.live(), 2);
        assert!(
            s.items.len() <= 3,
            "{} places for 2 live items",
            s.items.len()
        );
        assert_eq!(
            s.slots.len(),
            11,
            "the span from the older live item to the newer"
        );
        assert_eq!(std::mem::size_of_val(&s.slots[0]), 4);
    }

    proptest::proptest! {
        /// Against a map: inserts in any order (each number once), takes and forgets of
        /// numbers present or not; every lookup, the oldest and the live count agree.
        #[test]
        fn the_window_behaves_as_a_map_by_sequence(ops in proptest::collection::vec((0u8..3, 0u64..64), 1..200)) {
            let mut s = SeqWindow::default();
            let mut m = std::collections::BTreeMap::new();
            let mut used = std::collections::BTreeSet::new();
            for (kind, seq) in ops {
                match kind {
                    0 if used.insert(seq) => {
                        s.insert(seq, seq * 7);
                        m.insert(seq, seq * 7);
                    }
                    1 => proptest::prop_assert_eq!(s.take(seq), m.remove(&seq)),
                    _ => proptest::prop_assert_eq!(s.forget(seq), m.remove(&seq).is_some()),
                }
                proptest::prop_assert_eq!(s.live(), m.len());
                proptest::prop_assert_eq!(s.oldest(), m.keys().next().copied());
                for q in 0..64 {
                    proptest::prop_assert_eq!(s.get(q), m.get(&q));
                }
                let all: Vec<(u64, u64)> = s.iter_mut().map(|(q, v)| (q, *v)).collect();
                let want: Vec<(u64, u64)> = m.iter().map(|(q, v)| (*q, *v)).collect();
                proptest::prop_assert_eq!(all, want);
            }
        }
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
