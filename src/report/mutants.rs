//! The mutation score `scripts/mutants` saves (`data/mutants.json`, fields in
//! reports/README.md): how many wrong protocols the quick checks let through. The report reads
//! it; nothing in the binary writes it.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::html::{escape, provenance_note};
use super::provenance::Provenance;

/// The file under `reports/data/`.
pub const FILE: &str = "mutants.json";

/// Mutant counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Every mutant generated.
    pub total: u64,
    /// Some test failed: killed.
    pub caught: u64,
    /// Every test passed: survived.
    pub missed: u64,
    /// Did not compile.
    pub unviable: u64,
    /// Tests ran past the limit.
    pub timeout: u64,
    /// Survivors listed as equivalent to the original code.
    pub equivalent: u64,
}

/// One surviving (or timed-out) mutant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Mutant {
    /// Source file.
    pub file: String,
    /// Line of the mutation.
    pub line: u64,
    /// Function it is in.
    pub function: String,
    /// What was changed, as cargo-mutants says it.
    pub mutation: String,
    /// `equivalent` or `missed` (survivors only).
    pub status: String,
    /// Why an equivalent mutant cannot be told apart from the original.
    pub reason: Option<String>,
}

/// A mutation-testing result.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MutationResult {
    /// Start of the latest run merged, UTC.
    pub date: String,
    /// The commit it ran on.
    pub commit: String,
    /// Whether the tree had uncommitted changes.
    pub dirty: bool,
    /// cargo-mutants' version.
    pub cargo_mutants: String,
    /// The files mutated.
    pub files: Vec<String>,
    /// What every mutant was tested with.
    pub test_command: String,
    /// Outcomes.
    pub counts: Counts,
    /// caught / (caught + missed), percent.
    pub score: f64,
    /// The same, equivalent mutants left out.
    pub score_without_equivalent: f64,
    /// Wall time of the runs merged.
    pub duration_seconds: u64,
    /// Every survivor.
    pub survivors: Vec<Mutant>,
    /// Every timed-out mutant.
    pub timeouts: Vec<Mutant>,
    /// Equivalence entries that match no mutant any more.
    pub stale_equivalents: Vec<serde_json::Value>,
}

impl MutationResult {
    /// The result saved under `report_dir/data/`, if any. A file that does not parse is an
    /// error, not an absent result.
    pub fn load(report_dir: &Path) -> io::Result<Option<MutationResult>> {
        let path = report_dir.join(crate::results::DATA_DIR).join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// Where and when it was made, as the other sections say it.
    pub fn provenance(&self) -> Option<Provenance> {
        (!self.date.is_empty() && !self.commit.is_empty()).then(|| Provenance {
            date: self.date.clone(),
            commit: format!(
                "{}{}",
                self.commit.get(..7).unwrap_or(&self.commit),
                if self.dirty { "-dirty" } else { "" }
            ),
            // Mutants are built from the protocol cores alone; nothing is measured.
            bug_switches: false,
        })
    }
}

/// The report's mutation-score section.
pub fn section(h: &mut String, m: Option<&MutationResult>) {
    h.push_str("<section id=\"mutants\"><h2>Mutation score</h2>");
    let Some(m) = m else {
        let _ = write!(
            h,
            "<p class=\"muted\">No mutation score yet: run <code>scripts/mutants</code> (hours on 2 cores; not part of the test command).</p></section>"
        );
        return;
    };
    let c = &m.counts;
    let _ = write!(
        h,
        "<p><b>{:.2}%</b> of the viable mutants of {} killed: {} caught, {} survived ({} of them equivalent to the original code: {:.2}% without those), {} did not compile, {} timed out; {} in all, {} of testing.</p>",
        m.score,
        m.files
            .iter()
            .map(|f| format!("<code>{}</code>", escape(f)))
            .collect::<Vec<_>>()
            .join(", "),
        c.caught,
        c.missed,
        c.equivalent,
        m.score_without_equivalent,
        c.unviable,
        c.timeout,
        c.total,
        duration(m.duration_seconds),
    );
    let _ = write!(
        h,
        "<p class=\"muted\">Each mutant was tested with <code>{}</code> (cargo-mutants {}).</p>",
        escape(&m.test_command),
        escape(&m.cargo_mutants)
    );
    h.push_str(&provenance_note([m.provenance().as_ref()]));
    if !m.survivors.is_empty() {
        h.push_str(
            "<table><tr><th>survivor</th><th>function</th><th>mutation</th><th>status</th><th>why</th></tr>",
        );
        for s in &m.survivors {
            let _ = write!(
                h,
                "<tr><td><code>{}:{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.file),
                s.line,
                escape(&s.function),
                escape(&s.mutation),
                escape(&s.status),
                escape(s.reason.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>");
    }
    if !m.timeouts.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">Timed out: {}.</p>",
            m.timeouts
                .iter()
                .map(|t| format!(
                    "<code>{}:{}</code> {}",
                    escape(&t.file),
                    t.line,
                    escape(&t.mutation)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if !m.stale_equivalents.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">{} entries of <code>scripts/mutants-equivalent.txt</code> match no mutant any more: their lines of code changed, so each needs reviewing again.</p>",
            m.stale_equivalents.len()
        );
    }
    h.push_str("</section>");
}

fn duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}
