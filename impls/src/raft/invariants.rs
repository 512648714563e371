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
/// up to that index. Logs that start after snapshots (§7) are compared over the slots both
/// hold: what a snapshot replaced is committed, and the other invariants cover it.
pub(super) fn log_matching<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for (i, a) in rs.iter().enumerate() {
        for b in &rs[i + 1..] {
            let from = max(a.snap_index(), b.snap_index()) + 1;
            let to = min(a.last_index(), b.last_index());
            // The highest slot both hold where the terms agree; everything from `from` up to
            // it must match.
            let agree = (from..=to)
                .rev()
                .find(|&k| a.term_at(k).is_some() && a.term_at(k) == b.term_at(k));
            if let Some(k) = agree {
                if (from..=k).any(|s| a.entry_at(s) != b.entry_at(s)) {
                    return Err(format!(
                        "{} and {} agree on the term of slot {k} but not on the entries before it",
                        a.id, b.id,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether `l` holds what `r` holds committed: every committed slot `r` holds in its log
/// that `l` holds in its log is the same entry, `l` holds at least up to `r`'s commit point,
/// and where `r`'s snapshot ends inside `l`'s log, `l` has the snapshot's last entry there
/// (§7: a slot inside a snapshot is committed, and so agrees with any log that holds its
/// last entry's term). Slots inside `l`'s snapshot are committed at `l`.
fn holds_committed<C: Command>(l: &Raft<C>, r: &Raft<C>) -> bool {
    let c = r.commit;
    // A buggy replica (bug zoo R6) can hold a commit point past its own log.
    if l.last_index() < c || r.last_index() < c {
        return false;
    }
    let (ls, rs) = (l.snap_index(), r.snap_index());
    if rs > ls && rs <= c && l.term_at(rs) != Some(r.snap_term()) {
        return false;
    }
    (max(ls, rs) + 1..=c).all(|s| l.entry_at(s) == r.entry_at(s))
}

/// Leader Completeness: a leader holds every entry any replica knows committed, provided that
/// replica learned it no later than the leader's term (whatever it learned was committed by a
/// leader of a term no higher than its own current term).
pub(super) fn leader_completeness<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for l in rs.iter().filter(|r| r.is_leader()) {
        for r in rs.iter().filter(|r| r.term <= l.term) {
            if !holds_committed(l, r) {
                return Err(format!(
                    "leader {} of term {} lacks entries up to slot {} that {} committed",
                    l.id, l.term, r.commit, r.id
                ));
            }
        }
    }
    Ok(())
}

/// Committed entries are on a quorum (§5.3: "a log entry is committed once the leader that
/// created it has replicated it on a majority"): the entry at each replica's commit point is
/// held, with its term, by a quorum of a configuration a correct leader could have counted
/// it in, counting replicas whose snapshot covers it: the one in force at the slot, or one
/// appended after it in a log that holds the entry (diss. §4.1: a leader counts in the
/// latest configuration of its log, committed or not). A later configuration's majority
/// need not be a majority of the earlier one: a leader that appended "remove n0" after the
/// entry commits it on 2 of {n1,n2,n3} where {n0,n1,n2,n3} needed 3, which is safe because
/// every majority of the one meets every majority of the other (§4.3). Learners never count.
pub(super) fn committed_on_a_quorum<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for r in rs {
        let c = r.commit;
        let Some(term) = r.term_at(c).filter(|_| c > 0) else {
            continue; // nothing committed, or a commit point past the log (R6's business)
        };
        let holders = NodeSet::of(
            rs.iter()
                .filter(|x| x.snap_index() >= c || x.term_at(c) == Some(term))
                .map(|x| x.id),
        );
        let config = r.config_at(c).0;
        // Configurations appended after slot c in logs that hold its entry.
        let later = rs
            .iter()
            .filter(|x| x.term_at(c) == Some(term))
            .flat_map(|x| (c + 1..=x.last_index()).filter_map(|s| x.entry_at(s)?.config));
        if !config.has_quorum(holders) && !later.into_iter().any(|k| k.has_quorum(holders)) {
            return Err(format!(
                "{} committed slot {c} (term {term}), held only by {holders} of {config}",
                r.id
            ));
        }
    }
    Ok(())
}

/// A leader hands its leadership only to a caught-up target (diss. §3.10): once it has told
/// its transfer's target to campaign, the target, while still in the leader's term, holds
/// every entry of the leader's log (the leader appends nothing during a transfer). A target
/// behind it would campaign with a log the up-to-date check refuses, and the cluster would be
/// left without a leader for an election timeout.
pub(super) fn transfer_to_caught_up<C: Command>(rs: &[&Raft<C>]) -> Result<(), String> {
    for l in rs {
        let RoleState::Leader {
            transfer: Some(t), ..
        } = &l.state
        else {
            continue;
        };
        if !t.sent {
            continue;
        }
        let (last, last_term) = (l.last_index(), l.last_term());
        for x in rs.iter().filter(|x| x.id == t.target && x.term == l.term) {
            let holds = x.snap_index() >= last
                || (x.last_index() >= last && x.term_at(last) == Some(last_term));
            if !holds {
                return Err(format!(
                    "{} told {} to campaign, but its log ends at slot {} where the leader's ends at {last}",
                    l.id,
                    x.id,
                    x.last_index()
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

/// One configuration change at a time (diss. §4.1 and its 2015 erratum): in one step, a
/// leader that stays leader of its term appends at most one configuration entry, and only
/// once the configuration before it is committed and an entry of its own term below it is
/// committed (both may have committed earlier in the same step: joint consensus appends
/// C_new in the step that commits C_old,new).
pub(super) fn one_change_at_a_time<C: Command>(
    before: &Raft<C>,
    after: &Raft<C>,
) -> Result<(), String> {
    if !(before.is_leader() && after.is_leader() && before.term == after.term) {
        return Ok(());
    }
    let new: Vec<Slot> = (before.last_index() + 1..=after.last_index())
        .filter(|&s| after.entry_at(s).is_some_and(|e| e.config.is_some()))
        .collect();
    let id = after.id;
    match new[..] {
        [] => Ok(()),
        [s] => {
            let previous = after.config_at(s - 1).1;
            if previous > after.commit {
                return Err(format!(
                    "{id} appended a configuration at slot {s} while the one at slot {previous} was uncommitted (commit {})",
                    after.commit
                ));
            }
            if after.term_at(min(after.commit, s - 1)) != Some(after.term) {
                return Err(format!(
                    "{id} appended a configuration before committing an entry of its term {}",
                    after.term
                ));
            }
            Ok(())
        }
        _ => Err(format!(
            "{id} appended {} configurations in one step",
            new.len()
        )),
    }
}

pub(super) fn committed_stable<C: Command>(
    before: &Raft<C>,
    after: &Raft<C>,
) -> Result<(), String> {
    // Every entry at or below the lower of the two commit points is unchanged: where both
    // hold it in their logs it is the same, and a later snapshot (§7) that covers it holds
    // the entry's term at its end. A snapshot never covers uncommitted slots, so one past
    // the earlier commit point is the later commit point's business.
    let c = min(before.commit, after.commit);
    let (bs, a_s) = (before.snap_index(), after.snap_index());
    let changed = after.last_index() < c
        || before.last_index() < c
        || (a_s > bs && a_s <= c && before.term_at(a_s) != Some(after.snap_term()))
        || (max(bs, a_s) + 1..=c).any(|s| before.entry_at(s) != after.entry_at(s));
    if changed {
        return Err(format!(
            "{} changed an entry at or below its commit point {c}",
            after.id
        ));
    }
    Ok(())
}
