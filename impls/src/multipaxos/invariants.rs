//! Multi-Paxos's safety invariants (PMS §2.1 safety requirements, PMMC §3 invariants A1-A5),
//! checked by the driver after every step and by the model in every state. Each returns an
//! explanation of the violation it finds.

use super::*;

/// At most one value is chosen per slot: a value is chosen when a quorum of the replicas
/// accepted it in the same ballot.
pub(super) fn one_value_per_slot<C: Command>(rs: &[&MultiPaxos<C>]) -> Result<(), String> {
    let Some(first) = rs.first() else {
        return Ok(());
    };
    let q = quorum(first.members.len());
    let longest = rs.iter().map(|r| r.log.len()).max().unwrap_or(0);
    for i in 0..longest {
        let mut chosen: Option<&Entry<C>> = None;
        for r in rs {
            let Some(Some(e)) = r.log.get(i) else {
                continue;
            };
            let n = rs
                .iter()
                .filter(|o| matches!(o.log.get(i), Some(Some(x)) if x == e))
                .count();
            if n < q {
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
                i + 1,
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
            let c = a.commit.min(b.commit) as usize;
            for i in 0..c {
                let (x, y) = (
                    a.log[i].as_ref().map(|e| &e.cmd),
                    b.log[i].as_ref().map(|e| &e.cmd),
                );
                if x != y {
                    return Err(format!(
                        "{} and {} committed different values in slot {}",
                        a.id,
                        b.id,
                        i + 1
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
    let c = before.commit.min(after.commit) as usize;
    let cmds = |r: &MultiPaxos<C>| -> Vec<Option<C>> {
        r.log[..c]
            .iter()
            .map(|e| e.as_ref().and_then(|e| e.cmd.clone()))
            .collect()
    };
    if after.log.len() < c || cmds(before) != cmds(after) {
        return Err(format!(
            "{} changed a value at or below its commit point {c}",
            after.id
        ));
    }
    Ok(())
}
