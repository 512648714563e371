//! Folding a run of durable writes into the image ([`Replica::fold_writes`]) without placing
//! the values a later snapshot write drops.
//!
//! A host that keeps its writes folds them when the replica compacts (the runtime's
//! `MemStorage::checkpoint`): the accepts since the last fold, then the snapshot write that
//! replaced the log up to its slot. A kept snapshot drops every slot up to its own, whatever
//! they hold, and nothing between an accept and that snapshot reads those slots (accepts
//! overwrite, an earlier kept snapshot drops a prefix, the other writes touch the promise,
//! the round and the configurations). So the values of an accept at or below the slot of a
//! snapshot written later in the run are not placed (the promise the accept raises still
//! is; a snapshot the replica does not keep drops nothing not dropped already, see `fold`);
//! the rest of the run is applied write by write. The result is exactly what [`Replica::apply_write_owned`] gives (a property test
//! below checks it).

use super::*;

#[cfg(test)]
thread_local! {
    /// Values the fold placed on this thread, or handed to `apply_write_owned` to place (a
    /// test reads it: what a later snapshot drops is never placed).
    static PLACED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// [`Replica::fold_writes`] for multi-Paxos (see the module docs). Drains `writes`.
pub(super) fn fold<C: Command>(durable: &mut PaxosDurable<C>, writes: &mut Vec<PaxosWrite<C>>) {
    // Every snapshot write counts, the ones `snapshot::keep` refuses too: a refused one is at
    // or below the snapshot the image holds when it comes, and every slot up to that one is
    // already out of reach of the accepts before it (a snapshot kept earlier in the run
    // drops them, or the image's snapshot was there when they were placed, and `place`
    // skips the slots it covers). So not placing them changes nothing, and the fold need
    // not know which snapshots are kept.
    let mut dropped: Vec<Slot> = writes
        .iter()
        .map(|w| match w {
            PaxosWrite::Snapshot { snapshot, .. } => snapshot.slot,
            _ => 0,
        })
        .collect();
    // For each write, the highest slot a snapshot kept after it drops (0: none).
    let mut later = 0;
    for d in dropped.iter_mut().rev() {
        (*d, later) = (later, later.max(*d));
    }
    for (write, dropped) in writes.drain(..).zip(dropped) {
        match write {
            PaxosWrite::Accept {
                ballot,
                first,
                cmds,
            } if dropped >= first && !cmds.is_empty() => {
                let cut = ((dropped + 1 - first) as usize).min(cmds.len());
                #[cfg(test)]
                PLACED.with(|n| n.set(n.get() + cmds.len() - cut));
                place(durable, ballot, first + cut as Slot, &cmds[cut..]);
            }
            other => {
                #[cfg(test)]
                if let PaxosWrite::Accept { cmds, .. } = &other {
                    PLACED.with(|n| n.set(n.get() + cmds.len()));
                }
                MultiPaxos::apply_write_owned(durable, other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn configs() -> Configs {
        Configs::initial(Membership::voters(NodeSet::first(3)))
    }

    /// Writes over slots 1..=12 and ballots of rounds 1..=3, each value unique (so that a
    /// value placed in the wrong slot shows).
    fn write() -> impl Strategy<Value = PaxosWrite<u32>> {
        let ballot = (1u64..4, 0u8..3).prop_map(|(round, node)| Ballot { round, node });
        prop_oneof![
            1 => ballot.clone().prop_map(PaxosWrite::Promise),
            1 => (1u64..4).prop_map(PaxosWrite::Tried),
            3 => (ballot, 1u64..13, proptest::collection::vec(any::<bool>(), 0..6), any::<u16>())
                .prop_map(|(ballot, first, some, tag)| PaxosWrite::Accept {
                    ballot,
                    first,
                    cmds: Values::new(
                        some.into_iter()
                            .enumerate()
                            .map(|(i, s)| Value::from(s.then_some(u32::from(tag) * 8 + i as u32)))
                            .collect(),
                    ),
                }),
            1 => (0u64..13).prop_map(|slot| PaxosWrite::Snapshot {
                snapshot: Snapshot {
                    slot,
                    data: (&[slot as u8][..]).into(),
                },
                configs: configs(),
            }),
        ]
    }

    /// The fold's point: a leader's run of one-value accepts, folded with the snapshot that
    /// ends it, places only the values after the snapshot's slot, and leaves what applying
    /// them one by one leaves.
    #[test]
    fn values_a_later_snapshot_drops_are_never_placed() {
        let ballot = Ballot { round: 1, node: 0 };
        let mut writes: Vec<PaxosWrite<u32>> = (1..=100u32)
            .map(|i| PaxosWrite::Accept {
                ballot,
                first: Slot::from(i),
                cmds: Values::new(vec![Value::from(Some(i))]),
            })
            .collect();
        // Two values in one accept straddling the snapshot's slot: the one above it stays.
        writes.push(PaxosWrite::Accept {
            ballot,
            first: 90,
            cmds: Values::new(vec![Value::from(Some(1090)), Value::from(Some(1091))]),
        });
        writes.push(PaxosWrite::Snapshot {
            snapshot: Snapshot {
                slot: 90,
                data: (&[90][..]).into(),
            },
            configs: configs(),
        });
        let mut one_by_one = PaxosDurable::default();
        for w in writes.clone() {
            MultiPaxos::apply_write_owned(&mut one_by_one, w);
        }
        let before = PLACED.with(|n| n.get());
        let mut folded = PaxosDurable::default();
        fold(&mut folded, &mut writes);
        let placed = PLACED.with(|n| n.get()) - before;
        assert_eq!(folded, one_by_one);
        assert_eq!(
            placed,
            10 + 1,
            "slots 91-100 and the straddling accept's slot 91"
        );
    }

    proptest! {
        /// The fold leaves exactly the image that applying the writes one by one leaves,
        /// from an image with or without a snapshot and a log.
        #[test]
        fn folding_writes_gives_the_image_applying_them_one_by_one_gives(
            first in proptest::collection::vec(write(), 0..8),
            writes in proptest::collection::vec(write(), 0..16),
        ) {
            let (folded, one_by_one) =
                crate::replica::folded_and_one_by_one::<MultiPaxos<u32>, u32>(first, writes);
            prop_assert_eq!(folded, one_by_one);
        }
    }
}
