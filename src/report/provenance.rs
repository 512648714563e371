//! Where and when a saved result was made: the UTC date and the git commit of the source tree,
//! so a report read weeks later says which code its numbers belong to.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The commit of a result made where git or the repository is missing.
pub const UNKNOWN_COMMIT: &str = "unknown";

/// The date and commit one saved result came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// When it was made: UTC, ISO 8601 to the second (`2026-05-01T09:30:00Z`).
    pub date: String,
    /// `git rev-parse --short HEAD` of the source tree, with `-dirty` appended when
    /// `git status --porcelain` lists changes; [`UNKNOWN_COMMIT`] without git or a repository.
    pub commit: String,
    /// The binary carried the bug-zoo switches ([`paxraft_impls::bugs::COMPILED`]): fine for
    /// checks and the zoo, not what ships for a measurement (the report says so). Absent,
    /// false, in results saved before it was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bug_switches: bool,
}

impl Provenance {
    /// Now, and the commit of the source tree this binary was built from. Git runs once per
    /// process (a result made mid-run belongs to the tree the run started from).
    pub fn now() -> Provenance {
        static COMMIT: OnceLock<String> = OnceLock::new();
        Provenance {
            date: utc_now(),
            commit: COMMIT
                .get_or_init(|| commit_of(Path::new(env!("CARGO_MANIFEST_DIR"))))
                .clone(),
            bug_switches: paxraft_impls::bugs::COMPILED,
        }
    }

    /// The date's day (`2026-05-01`), for narrow table cells.
    pub fn day(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }
}

/// The current UTC time, ISO 8601 to the second.
pub fn utc_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The short commit of the repository holding `dir`, `-dirty` when its tree has changes
/// (ignored files, such as the saved results themselves, do not count), or
/// [`UNKNOWN_COMMIT`] when git is missing, `dir` is in no repository, or either command fails.
/// Never panics.
pub fn commit_of(dir: &Path) -> String {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty()) else {
        return UNKNOWN_COMMIT.into();
    };
    // A tree whose state cannot be read gets no commit rather than a possibly wrong one.
    match git(&["status", "--porcelain"]) {
        Some(changes) if changes.is_empty() => head,
        Some(_) => format!("{head}-dirty"),
        None => UNKNOWN_COMMIT.into(),
    }
}
