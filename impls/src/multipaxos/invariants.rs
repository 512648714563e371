//! Multi-Paxos's safety invariants (PMS §2.1 safety requirements, PMMC §3 invariants A1-A5),
//! checked by the driver after every step and by the model in every state. Each returns an
//! explanation of the violation it finds.
//!
//! A replica holds only the slots above its snapshot ([`snapshot`]): the checks compare the
//! slots the replicas they compare still hold (a snapshot's slots were checked while held, and
//! the driver checks what the hosts applied, snapshots included).

use super::*;

/// At most one value is chosen per slot: a value is chosen when a majority of the voters of
/// the slot's configuration accepted it in the same ballot. The configuration is the one the
/// replicas that know it name (they agree: [`configurations_agree`]); if none knows it, each
/// replica's guess counts (a value a majority of any of them accepted counts as chosen).
pub(super) fn one_value_per_slot<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    let lowest = rs.iter().map(|r| r.base()).min().unwrap_or(0);
    let highest = rs.iter().map(|r| r.last()).max().unwrap_or(0);
    for slot in lowest + 1..=highest {
        let i = slot as usize - 1;
        let holds = |r: &&&MultiPaxos<C>| slot > r.base();
        let knowing: Vec<Membership> = rs
            .iter()
            .filter(holds)
            .filter(|r| slot <= r.commit + r.alpha())
            .map(|r| r.configs.at(slot))
            .collect();
        let mut views = if knowing.is_empty() {
            rs.iter().map(|r| r.configs.at(slot)).collect()
        } else {
            knowing
        };
        views.sort();
        views.dedup();
        let mut chosen: Option<&Entry<C>> = None;
        for r in rs {
            let Some(e) = r.entry(slot) else {
                continue;
            };
            // Voters of a configuration that accepted it (replicas, not ids, are counted).
            let by = |config: &Membership| {
                rs.iter()
                    .filter(|o| config.is_voter(o.id) && matches!(o.entry(slot), Some(x) if x == e))
                    .count()
                    >= crate::quorum(config.voters.len())
            };
            if !views.iter().any(by) {
                continue;
            }
            match chosen {
                Some(c) if c.value != e.value => {
                    return Err(format!(
                        "slot {} chosen twice: {:?} in ballot {:?} and {:?} in ballot {:?}",
                        i + 1,
                        c.value,
                        c.ballot,
                        e.value,
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
                let (x, y) = (
                    a.entry(slot).map(|e| &e.value),
                    b.entry(slot).map(|e| &e.value),
                );
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

/// Replicas agree on the configuration of every slot they both know it for: the slots up to
/// α past their commit points, whose configurations the chosen slots decide (see
/// [`reconfig`]). A configuration lost in a snapshot, or learned out of slot order, shows here.
pub(super) fn configurations_agree<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    for (k, a) in rs.iter().enumerate() {
        for b in &rs[k + 1..] {
            let lo = a.base().max(b.base()) + 1;
            let hi = (a.commit + a.alpha()).min(b.commit + b.alpha());
            let changes = a.configs.pairs().iter().chain(b.configs.pairs());
            let points = std::iter::once(lo).chain(
                changes
                    .map(|&(from, _)| from)
                    .filter(|&from| from > lo && from <= hi),
            );
            for t in points.filter(|&t| t <= hi) {
                let (x, y) = (a.configs.at(t), b.configs.at(t));
                if x != y {
                    return Err(format!(
                        "{} and {} disagree on the configuration of slot {t}: {x} and {y}",
                        a.id, b.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A leader proposes only in slots whose configuration it knows: none of its ballot's values
/// lies more than α past its commit point (PMS §3; see [`reconfig`]). (Checked on what it
/// holds: the commit point only grows, so a value proposed beyond the window stays beyond it
/// until the step ends.)
pub(super) fn proposals_within_window<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    for r in rs.iter().filter(|r| r.is_leader()) {
        let (commit, alpha) = (r.commit, r.alpha());
        let beyond = (commit + alpha + 1..=r.last())
            .find(|&s| r.entry(s).is_some_and(|e| e.ballot == r.ballot));
        if let Some(slot) = beyond {
            return Err(format!(
                "{} proposed in slot {slot} with only {commit} committed (window {alpha})",
                r.id
            ));
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
    let cmds = |r: &MultiPaxos<C>| -> Vec<Option<Value<C>>> {
        (lo..=c)
            .map(|s| r.entry(s).map(|e| e.value.clone()))
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
