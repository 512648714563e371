//! Multi-Paxos's safety invariants (PMS §2.1 safety requirements, PMMC §3 invariants A1-A5),
//! checked by the driver after every step and by the model in every state. Each returns an
//! explanation of the violation it finds.
//!
//! A replica holds only the slots above its snapshot ([`snapshot`]): the checks compare the
//! slots the replicas they compare still hold (a snapshot's slots were checked while held, and
//! the driver checks what the hosts applied, snapshots included).

use super::*;

/// At most one value is chosen per slot: a value is chosen when a quorum of the replicas
/// accepted it in the same ballot.
pub(super) fn one_value_per_slot<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    let Some(first) = rs.first() else {
        return Ok(());
    };
    let config = first.config;
    let lowest = rs.iter().map(|r| r.base()).min().unwrap_or(0);
    let highest = rs.iter().map(|r| r.last()).max().unwrap_or(0);
    for slot in lowest + 1..=highest {
        let i = slot as usize - 1;
        let mut chosen: Option<&Entry<C>> = None;
        for r in rs {
            let Some(e) = r.entry(slot) else {
                continue;
            };
            // Voters of the configuration that accepted it (replicas, not ids, are counted).
            let n = rs
                .iter()
                .filter(|o| config.is_voter(o.id) && matches!(o.entry(slot), Some(x) if x == e))
                .count();
            if n < crate::quorum(config.voters.len()) {
                continue;
            }
            match chosen {
                Some(c) if c.cmd != e.cmd => {
                    return Err(format!(
                        "slot {} chosen twice: {:?} in ballot {:?} and {:?} in ballot {:?}",
                        i + 1,
                        c.cmd,
                        c.ballot,
                        e.cmd,
                        e.ballot
                    ));
                }
                _ => chosen = Some(e),
            }
        }
    }
    Ok(())
}

/// PMMC A2/A3: an acceptor accepts only ballots at or below its promise.
pub(super) fn accepted_below_promise<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    for r in rs {
        if let Some((i, e)) = r
            .log
            .iter()
            .enumerate()
            .find_map(|(i, e)| e.as_ref().filter(|e| e.ballot > r.promised).map(|e| (i, e)))
        {
            return Err(format!(
                "{} accepted ballot {:?} in slot {} above its promise {:?}",
                r.id,
                e.ballot,
                r.base() + 1 + i as Slot,
                r.promised
            ));
        }
    }
    Ok(())
}

/// Replicas that consider a slot chosen agree on its value (PMS §2.1).
pub(super) fn committed_agree<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    for (k, a) in rs.iter().enumerate() {
        for b in &rs[k + 1..] {
            let c = a.commit.min(b.commit);
            for slot in a.base().max(b.base()) + 1..=c {
                let (x, y) = (a.entry(slot).map(|e| &e.cmd), b.entry(slot).map(|e| &e.cmd));
                if x != y {
                    return Err(format!(
                        "{} and {} committed different values in slot {slot}",
                        a.id, b.id,
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn term_monotonic<C: Command>(
    before: &MultiPaxos<C>,
    after: &MultiPaxos<C>,
) -> Result<(), String> {
    let (b, a) = (before.status().term, after.status().term);
    if a < b {
        return Err(format!("{} went from round {b} back to {a}", after.id));
    }
    Ok(())
}

/// PMS §2.2: an acceptor never goes back on a promise.
pub(super) fn promise_monotonic<C: Command>(
    before: &MultiPaxos<C>,
    after: &MultiPaxos<C>,
) -> Result<(), String> {
    if after.promised < before.promised {
        return Err(format!(
            "{} promised {:?} and then only {:?}",
            after.id, before.promised, after.promised
        ));
    }
    Ok(())
}

pub(super) fn committed_stable<C: Command>(
    before: &MultiPaxos<C>,
    after: &MultiPaxos<C>,
) -> Result<(), String> {
    // The slots both states hold up to the lower commit point (a snapshot taken or installed
    // in between drops some: they are in the snapshot).
    let c = before.commit.min(after.commit);
    let lo = before.base().max(after.base()) + 1;
    let cmds = |r: &MultiPaxos<C>| -> Vec<Option<Option<C>>> {
        (lo..=c)
            .map(|s| r.entry(s).map(|e| e.cmd.clone()))
            .collect()
    };
    if after.last() < c || cmds(before) != cmds(after) {
        return Err(format!(
            "{} changed a value at or below its commit point {c}",
            after.id
        ));
    }
    Ok(())
}
