//! Folding a run of durable writes into the image ([`Replica::fold_writes`]) without building
//! the entries a later write drops.
//!
//! A host that keeps its writes folds them when the replica compacts (the runtime's
//! `MemStorage::checkpoint`): the appends since the last fold, then the snapshot write that
//! replaced the log up to its slot. Applied one by one, every appended entry is moved into the
//! image's log and most are dropped again by that snapshot a moment later. Here the writes are
//! first played on a shadow log that holds, for each slot, only its term (what the snapshot
//! write's Figure 13 check looks at) and where its entry is; the entries of the slots that
//! survive are then moved into the image, each once. The result is exactly what
//! [`Replica::apply_write_owned`] gives write by write (a property test below checks it).

use super::*;

/// Where a shadow slot's entry is.
#[derive(Clone, Copy)]
enum Source {
    /// At this index of the image's log before the fold.
    Image(usize),
    /// At `.1` in the entries of write `.0`.
    Write(usize, usize),
}

/// [`Replica::fold_writes`] for Raft (see the module docs). Drains `writes`.
pub(super) fn fold<C: Command>(durable: &mut RaftDurable<C>, writes: &mut Vec<RaftWrite<C>>) {
    let mut base = durable.snapshot.as_ref().map_or(0, |s| s.slot);
    let mut shadow: Vec<(u64, Source)> = durable
        .log
        .iter()
        .enumerate()
        .map(|(i, e)| (e.term, Source::Image(i)))
        .collect();
    // The write holding the image's snapshot at the end, if one of them replaced it.
    let mut snapshot_from: Option<usize> = None;
    for (w, write) in writes.iter().enumerate() {
        match write {
            RaftWrite::HardState { term, voted_for } => {
                durable.term = *term;
                durable.voted_for = *voted_for;
            }
            // As `truncate_for_append`, then the entries the snapshot does not cover.
            RaftWrite::Append { at, entries } => {
                shadow.truncate(at.saturating_sub(1).saturating_sub(base) as usize);
                let skip = (base + 1).saturating_sub(*at) as usize;
                let fresh = entries.iter().enumerate().skip(skip);
                shadow.extend(fresh.map(|(i, e)| (e.term, Source::Write(w, i))));
            }
            // As `snapshot::apply_snapshot`.
            RaftWrite::Snapshot(snap) => {
                let held = snap
                    .slot
                    .checked_sub(base + 1)
                    .and_then(|k| shadow.get(k as usize))
                    .is_some_and(|&(term, _)| term == snap.term);
                if held {
                    shadow.drain(..(snap.slot - base) as usize);
                } else {
                    shadow.clear();
                }
                base = snap.slot;
                snapshot_from = Some(w);
            }
        }
    }
    // Each slot's entry came from one place and is taken from there once.
    let mut old = std::mem::take(&mut durable.log);
    let taken = || Entry::noop(0);
    durable.log = shadow
        .into_iter()
        .map(|(_, source)| match source {
            Source::Image(i) => std::mem::replace(&mut old[i], taken()),
            Source::Write(w, i) => match &mut writes[w] {
                RaftWrite::Append { entries, .. } => std::mem::replace(&mut entries[i], taken()),
                _ => unreachable!("shadow entries come from appends"),
            },
        })
        .collect();
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
                        .collect(),
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
            let mut image = RaftDurable::default();
            for w in first {
                R::apply_write_owned(&mut image, w);
            }
            let mut one_by_one = image.clone();
            for w in writes.clone() {
                R::apply_write_owned(&mut one_by_one, w);
            }
            let mut writes = writes;
            fold(&mut image, &mut writes);
            prop_assert!(writes.is_empty());
            prop_assert_eq!(image, one_by_one);
        }
    }

    #[test]
    fn a_fold_keeps_the_last_snapshot_and_the_entries_after_it() {
        let writes = vec![
            RaftWrite::Append {
                at: 1,
                entries: (1..=6).map(|c| Entry::command(1, c)).collect(),
            },
            RaftWrite::Snapshot(snap(4, 1)),
        ];
        let mut image = RaftDurable::default();
        let mut w = writes.clone();
        fold(&mut image, &mut w);
        assert_eq!(image.log, vec![Entry::command(1, 5), Entry::command(1, 6)]);
        assert_eq!(image.snapshot, Some(snap(4, 1)));
    }
}
