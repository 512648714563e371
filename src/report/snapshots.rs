//! The report's snapshot measurements, inside its "Recovery" section: a follower catching up
//! by snapshot and a leader restarting from a compacted log (issue 17's targets beside them).
//! The recovery benchmark saves them (`data/catch_up.json`, `data/restart.json`).

use std::fmt::Write as _;

use super::html::{escape, provenance_note};
use crate::results::{CatchUpRun, RestartRun};

/// Append the subsection to `h`: a note when nothing was measured, else one table each.
pub fn section(h: &mut String, catch_up: &[CatchUpRun], restarts: &[RestartRun]) {
    h.push_str("<h3 id=\"snapshots\">Snapshots: catch-up and restart</h3>");
    if catch_up.is_empty() && restarts.is_empty() {
        h.push_str(
            "<p class=\"muted\">No snapshot measurements yet: run \
             <code>cargo bench -p paxraft-bench --bench recovery</code>.</p>",
        );
        return;
    }
    h.push_str(&provenance_note(
        catch_up
            .iter()
            .map(|r| r.provenance.as_ref())
            .chain(restarts.iter().map(|r| r.provenance.as_ref())),
    ));
    if !catch_up.is_empty() {
        h.push_str(
            "<p>A follower crashed while the cluster committed, then restarted: it catches up \
             from the leader's snapshot (3 servers, 1024 outstanding). Target: under 2 s from \
             10<sup>6</sup> slots behind.</p><table><tr><th>protocol</th><th>slots behind</th>\
             <th>snapshot every</th><th>caught up in</th><th>snapshots sent</th>\
             <th>snapshot bytes</th><th></th></tr>",
        );
        for r in catch_up {
            let verdict = if r.behind < CatchUpRun::TARGET_BEHIND {
                "(smaller than the target's run)"
            } else if r.seconds < CatchUpRun::TARGET_SECS {
                "within the target"
            } else {
                "OVER the target"
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3} s</td><td>{}</td><td>{}</td>\
                 <td>{verdict}</td></tr>",
                escape(&r.protocol),
                r.behind,
                r.every,
                r.seconds,
                r.snapshots,
                r.snapshot_bytes
            );
        }
        h.push_str("</table>");
    }
    if !restarts.is_empty() {
        h.push_str(
            "<p>The leader crashed and restarted at once from its snapshot and the log above \
             it: the time until a new write commits (the survivors wait out their election \
             timeout first) and until the restarted node has rebuilt its state. Target: \
             serving within 100 ms plus the longest election timeout.</p><table><tr>\
             <th>protocol</th><th>slots committed</th><th>log entries above the snapshot</th>\
             <th>election timeout</th><th>serving after</th><th>target</th>\
             <th>rebuilt after</th></tr>",
        );
        for r in restarts {
            let over = if r.serve_ms < r.target_ms() {
                ""
            } else {
                " (OVER)"
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}–{:.0} ms</td><td>{:.1} ms{over}</td>\
                 <td>{:.0} ms</td><td>{:.1} ms</td></tr>",
                escape(&r.protocol),
                r.committed,
                r.log_entries,
                r.election_timeout_ms.0,
                r.election_timeout_ms.1,
                r.serve_ms,
                r.target_ms(),
                r.rebuilt_ms
            );
        }
        h.push_str("</table>");
    }
}
