//! Raft's safety invariants (§5.2, §5.3, §5.4, Figure 3), checked by the driver after every
//! step and by the model in every state. Each returns an explanation of the violation it finds.

use super::*;

/// Election Safety: at most one leader in any term.
pub(super) fn election_safety<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    let mut leaders: BTreeMap<u64, NodeId> = BTreeMap::new();
    for r in rs.iter().filter(|r| r.is_leader()) {
        if let Some(other) = leaders.insert(r.term, r.id) {
            return Err(format!("{other} and {} both lead term {}", r.id, r.term));
        }
    }
    Ok(())
}

/// Log Matching: logs that hold an entry with the same term at the same index are identical
/// up to that index.
pub(super) fn log_matching<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for (i, a) in rs.iter().enumerate() {
        for b in &rs[i + 1..] {
            let common = min(a.log.len(), b.log.len());
            // The highest index where the terms agree; everything below must match.
            if let Some(k) = (0..common).rev().find(|&k| a.log[k].term == b.log[k].term) {
                if a.log[..=k] != b.log[..=k] {
                    return Err(format!(
                        "{} and {} agree on the term of slot {} but not on the entries before it",
                        a.id,
                        b.id,
                        k + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Leader Completeness: a leader holds every entry any replica knows committed, provided that
/// replica learned it no later than the leader's term (whatever it learned was committed by a
/// leader of a term no higher than its own current term).
pub(super) fn leader_completeness<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for l in rs.iter().filter(|r| r.is_leader()) {
        for r in rs.iter().filter(|r| r.term <= l.term) {
            let c = r.commit as usize;
            // A buggy replica (bug zoo R6) can hold a commit point past its own log.
            if l.log.len() < c || r.log.len() < c || l.log[..c] != r.log[..c] {
                return Err(format!(
                    "leader {} of term {} lacks entries up to slot {c} that {} committed",
                    l.id, l.term, r.id
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn term_monotonic<C: Command>(before: &Raft<C>, after: &Raft<C>) -> Result<(), String> {
    if after.term < before.term {
        return Err(format!(
            "{} went from term {} back to {}",
            after.id, before.term, after.term
        ));
    }
    Ok(())
}

pub(super) fn one_vote_per_term<C: Command>(
    before: &Raft<C>,
    after: &Raft<C>,
) -> Result<(), String> {
    match (before.voted_for, after.voted_for) {
        (Some(a), Some(b)) if before.term == after.term && a != b => Err(format!(
            "{} voted for {a} and then {b} in term {}",
            after.id, after.term
        )),
        (Some(a), None) if before.term == after.term => Err(format!(
            "{} forgot its vote for {a} in term {}",
            after.id, after.term
        )),
        _ => Ok(()),
    }
}

pub(super) fn committed_stable<C: Command>(
    before: &Raft<C>,
    after: &Raft<C>,
) -> Result<(), String> {
    let c = min(before.commit, after.commit) as usize;
    if after.log.len() < c || before.log.len() < c || before.log[..c] != after.log[..c] {
        return Err(format!(
            "{} changed an entry at or below its commit point {c}",
            after.id
        ));
    }
    Ok(())
}
