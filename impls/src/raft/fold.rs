//! Folding a run of durable writes into the image ([`Replica::fold_writes`]) without building
//! the entries a later write drops.
//!
//! A host that keeps its writes folds them when the replica compacts (the runtime's
//! `MemStorage::checkpoint`): the appends since the last fold, then the snapshot write that
//! replaced the log up to its slot. Applied one by one, every appended entry is moved into the
//! image's log and most are dropped again by that snapshot a moment later. Here the writes are
//! first played on a shadow log of runs, each a span of the image's log or of one write's
//! entries (so the work is per write, not per entry); the snapshot write's Figure 13 check
//! reads the term it needs where the entry is. The entries of the slots that survive are then
//! moved into the image, each once (copied instead if another holder still shares the
//! write's [`Entries`], as the followers' stores share a leader's batch in one process). The
//! result is exactly what [`Replica::apply_write_owned`] gives write by write (a property
//! test below checks it).

use super::*;

/// Where a run of consecutive slots' entries are: `len` entries from index `start` of the
/// image's log before the fold (`write: None`) or of write `write`'s entries.
#[derive(Clone, Copy, Debug)]
struct Run {
    write: Option<usize>,
    start: usize,
    len: usize,
}

/// The shadow log: runs covering the slots after `base`, in order, none of them empty.
struct Shadow {
    base: Slot,
    runs: Vec<Run>,
    /// How many slots the runs cover (the sum of their lengths).
    len: usize,
}

#[cfg(test)]
thread_local! {
    /// Steps `Shadow::truncate` took on this thread (a test reads it: a fold stays linear).
    static TRUNCATE_STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Shadow {
    fn new(base: Slot, image_len: usize) -> Shadow {
        let image = Run {
            write: None,
            start: 0,
            len: image_len,
        };
        Shadow {
            base,
            runs: if image_len > 0 { vec![image] } else { vec![] },
            len: image_len,
        }
    }

    /// Keep the first `keep` slots after `base`.
    ///
    /// From the back: an append at the end, the usual one, cuts nothing, and a run is cut
    /// away at most once, so a fold is linear in its writes. Walked from the front, as it
    /// was, a fold of n one-entry appends (a leader's writes under a single client) took
    /// n²/2 steps: 40 ms at every 10000-slot snapshot, on the node's thread, and the
    /// followers' election timeouts (20-40 ms) fired.
    fn truncate(&mut self, keep: usize) {
        while self.len > keep {
            #[cfg(test)]
            TRUNCATE_STEPS.with(|n| n.set(n.get() + 1));
            let last = self.runs.last_mut().expect("the runs cover `len` slots");
            let cut = (self.len - keep).min(last.len);
            last.len -= cut;
            self.len -= cut;
            if last.len == 0 {
                self.runs.pop();
            }
        }
    }

    /// Add `run` after the last slot.
    fn push(&mut self, run: Run) {
        self.len += run.len;
        self.runs.push(run);
    }

    /// Drop every slot.
    fn clear(&mut self) {
        self.runs.clear();
        self.len = 0;
    }

    /// Drop the first `drop` slots after `base` (all of them if there are fewer).
    fn drop_front(&mut self, drop: usize) {
        let mut left = drop;
        let mut gone = 0;
        for run in &self.runs {
            if run.len > left {
                break;
            }
            left -= run.len;
            gone += 1;
        }
        self.runs.drain(..gone);
        if let Some(run) = self.runs.first_mut() {
            run.start += left;
            run.len -= left;
        }
        self.len = self.len.saturating_sub(drop);
    }

    /// Where the `k`-th slot after `base` is, if the shadow has it.
    fn at(&self, k: usize) -> Option<(Option<usize>, usize)> {
        let mut k = k;
        for run in &self.runs {
            if k < run.len {
                return Some((run.write, run.start + k));
            }
            k -= run.len;
        }
        None
    }
}

/// [`Replica::fold_writes`] for Raft (see the module docs). Drains `writes`.
pub(super) fn fold<C: Command>(durable: &mut RaftDurable<C>, writes: &mut Vec<RaftWrite<C>>) {
    let mut shadow = Shadow::new(
        durable.snapshot.as_ref().map_or(0, |s| s.slot),
        durable.log.len(),
    );
    let term_at = |writes: &[RaftWrite<C>], (write, i): (Option<usize>, usize)| match write {
        None => durable.log[i].term,
        Some(w) => match &writes[w] {
            RaftWrite::Append { entries, .. } => entries[i].term,
            _ => unreachable!("runs come from appends"),
        },
    };
    // The write holding the image's snapshot at the end, if one of them replaced it.
    let (mut hard, mut snapshot_from) = (None, None);
    for (w, write) in writes.iter().enumerate() {
        match write {
            RaftWrite::HardState { term, voted_for } => hard = Some((*term, *voted_for)),
            // As `truncate_for_append`, then the entries the snapshot does not cover.
            RaftWrite::Append { at, entries } => {
                let base = shadow.base;
                shadow.truncate(at.saturating_sub(1).saturating_sub(base) as usize);
                let skip = (base + 1).saturating_sub(*at) as usize;
                if entries.len() > skip {
                    shadow.push(Run {
                        write: Some(w),
                        start: skip,
                        len: entries.len() - skip,
                    });
                }
            }
            // As `snapshot::apply_snapshot`.
            RaftWrite::Snapshot(snap) => {
                let held = snap
                    .slot
                    .checked_sub(shadow.base + 1)
                    .and_then(|k| shadow.at(k as usize))
                    .is_some_and(|place| term_at(writes, place) == snap.term);
                if held {
                    shadow.drop_front((snap.slot - shadow.base) as usize);
                } else {
                    shadow.clear();
                }
                shadow.base = snap.slot;
                snapshot_from = Some(w);
            }
        }
    }
    if let Some((term, voted_for)) = hard {
        durable.term = term;
        durable.voted_for = voted_for;
    }
    // (Checked once here, not in `truncate`: summing there would be the quadratic walk again.)
    debug_assert_eq!(shadow.len, shadow.runs.iter().map(|r| r.len).sum::<usize>());
    debug_assert!(
        shadow.runs.iter().all(|r| r.len > 0),
        "a run was emptied and kept: {:?}",
        shadow.runs
    );
    // Each slot's entry came from one place and is taken from there once.
    let mut old = std::mem::take(&mut durable.log);
    let taken = || Entry::noop(0);
    let mut log = Vec::with_capacity(shadow.len);
    for run in &shadow.runs {
        let span = run.start..run.start + run.len;
        match run.write {
            None => log.extend(old[span].iter_mut().map(|e| std::mem::replace(e, taken()))),
            Some(w) => match &mut writes[w] {
                // Moved out if this store holds the last reference, else copied.
                RaftWrite::Append { entries, .. } => match Entries::get_mut(entries) {
                    Some(entries) => log.extend(
                        entries[span]
                            .iter_mut()
                            .map(|e| std::mem::replace(e, taken())),
                    ),
                    None => log.extend_from_slice(&entries[span]),
                },
                _ => unreachable!("runs come from appends"),
            },
        }
    }
    durable.log = log;
    if let Some(w) = snapshot_from {
        let placeholder = RaftWrite::HardState {
            term: 0,
            voted_for: None,
        };
        match std::mem::replace(&mut writes[w], placeholder) {
            RaftWrite::Snapshot(snap) => durable.snapshot = Some(snap),
            _ => unreachable!("recorded at a snapshot write"),
        }
    }
    writes.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type R = Raft<u32>;

    fn snap(slot: Slot, term: u64) -> RaftSnapshot {
        RaftSnapshot {
            slot,
            term,
            data: (&[slot as u8, term as u8][..]).into(),
            config: Membership::voters(NodeSet::first(3)),
        }
    }

    /// Writes over slots 1..=12 and terms 1..=3, each entry's command unique (so that an
    /// entry taken from the wrong place shows).
    fn write() -> impl Strategy<Value = RaftWrite<u32>> {
        prop_oneof![
            1 => (1u64..4, proptest::option::of(0u8..3)).prop_map(|(term, v)| {
                RaftWrite::HardState {
                    term,
                    voted_for: v.map(NodeId),
                }
            }),
            3 => (1u64..13, proptest::collection::vec(1u64..4, 0..6), any::<u16>()).prop_map(
                |(at, terms, tag)| RaftWrite::Append {
                    at,
                    entries: terms
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| Entry::command(t, u32::from(tag) * 8 + i as u32))
                        .collect::<Vec<_>>()
                        .into(),
                }
            ),
            1 => (0u64..13, 1u64..4)
                .prop_map(|(slot, term)| RaftWrite::Snapshot(snap(slot, term))),
        ]
    }

    proptest! {
        /// The fold leaves exactly the image that applying the writes one by one leaves,
        /// from an image with or without a snapshot and a log.
        #[test]
        fn folding_writes_gives_the_image_applying_them_one_by_one_gives(
            first in proptest::collection::vec(write(), 0..8),
            writes in proptest::collection::vec(write(), 0..16),
        ) {
            let (folded, one_by_one) = crate::replica::folded_and_one_by_one::<R, u32>(first, writes);
            prop_assert_eq!(folded, one_by_one);
        }
    }

    #[test]
    fn a_fold_keeps_the_last_snapshot_and_the_entries_after_it() {
        let writes = vec![
            RaftWrite::Append {
                at: 1,
                entries: (1..=6)
                    .map(|c| Entry::command(1, c))
                    .collect::<Vec<_>>()
                    .into(),
            },
            RaftWrite::Snapshot(snap(4, 1)),
        ];
        let mut image = RaftDurable::default();
        let mut w = writes.clone();
        fold(&mut image, &mut w);
        assert_eq!(image.log, vec![Entry::command(1, 5), Entry::command(1, 6)]);
        assert_eq!(image.snapshot, Some(snap(4, 1)));
    }

    /// A fold does work per write, not per write times the log: n one-entry appends at the
    /// end (a leader's writes under a single client), every hundredth instead rewriting the
    /// last two slots and adding one (a truncation), then the snapshot, take fewer truncation
    /// steps than there are writes. Walked from the front, 10000 such appends took 50 million
    /// steps and stalled the leader's thread for longer than an election timeout.
    #[test]
    fn a_fold_of_many_small_appends_is_linear() {
        let n: u32 = 10_000;
        let mut writes: Vec<RaftWrite<u32>> = Vec::new();
        let mut last: Slot = 0;
        for i in 1..=n {
            let (at, entries) = if i % 100 == 0 {
                (
                    last - 1,
                    vec![
                        Entry::command(2, i),
                        Entry::command(2, i + n),
                        Entry::command(2, i + 2 * n),
                    ],
                )
            } else {
                (last + 1, vec![Entry::command(1, i)])
            };
            writes.push(RaftWrite::Append {
                at,
                entries: entries.into(),
            });
            last += 1;
        }
        // Slot `last - 10` was written by a one-entry append of term 1.
        writes.push(RaftWrite::Snapshot(snap(last - 10, 1)));
        let count = writes.len();
        let mut one_by_one = RaftDurable::default();
        for w in writes.clone() {
            R::apply_write_owned(&mut one_by_one, w);
        }
        let before = TRUNCATE_STEPS.with(|s| s.get());
        let mut image = RaftDurable::default();
        fold(&mut image, &mut writes);
        let steps = TRUNCATE_STEPS.with(|s| s.get()) - before;
        assert_eq!(image, one_by_one);
        assert_eq!(
            (image.snapshot.map(|s| s.slot), image.log.len()),
            (Some(last - 10), 10)
        );
        assert!(steps < count, "{steps} truncation steps for {count} writes");
    }
}
