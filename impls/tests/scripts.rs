//! Runs every interaction script in `impls/testdata/` (see `paxraft_impls::script` for the
//! language) and compares each command's output with the one the file holds.
//!
//! `UPDATE_GOLDEN=1 cargo test -p paxraft-impls --test scripts` rewrites the files with the
//! outputs of now, for review with `git diff`; `SCRIPT=figure8` runs only the files whose name
//! contains `figure8`.
//!
//! `impls/testdata/bugs/` holds scripts that switch a bug-zoo bug on (`cluster ... bug=NAME`):
//! each shows the interleaving that breaks the bug's protocol and the `VIOLATION:` line the
//! driver prints. They run when the switches are compiled in (the `bug-zoo` feature, which
//! every workspace test build has; `cargo test -p paxraft-impls --features bug-zoo` alone).

use std::path::{Path, PathBuf};

use paxraft_impls::script::{Outcome, Script, ScriptError};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The scripts of `dir`, in name order, filtered by `SCRIPT`.
fn scripts_in(dir: &Path) -> Vec<PathBuf> {
    let only = std::env::var("SCRIPT").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the script directory exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(&only))
        })
        .collect();
    files.sort();
    files
}

/// The scripts to run: `testdata/`, and `testdata/bugs/` when the bug switches are compiled in.
fn scripts() -> Vec<PathBuf> {
    let mut files = scripts_in(&testdata());
    if paxraft_impls::bugs::COMPILED {
        files.extend(scripts_in(&testdata().join("bugs")));
    }
    files
}

/// Parse and run `text`, naming `path` in any error.
fn run(path: &Path, text: &str) -> Result<(Script, Vec<Outcome>), String> {
    let at = |e: ScriptError| format!("{}:{}: {}", path.display(), e.line, e.message);
    let script = Script::parse(text).map_err(at)?;
    let outcomes = script.run().map_err(at)?;
    Ok((script, outcomes))
}

/// The first command whose output differs, as expected against actual.
fn mismatch(path: &Path, outcomes: &[Outcome]) -> Option<String> {
    let o = outcomes.iter().find(|o| !o.matches())?;
    let expected = o
        .expected
        .as_ref()
        .map_or("(no ---- yet)".to_string(), |e| e.join("\n"));
    Some(format!(
        "{}:{}: `{}` printed\n{}\n-- but the file expects --\n{}\n",
        path.display(),
        o.line,
        o.command,
        o.actual.join("\n"),
        expected
    ))
}

#[test]
fn scripts_print_what_their_files_expect() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = scripts();
    assert!(!files.is_empty(), "no script in {}", testdata().display());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable script");
        let (script, outcomes) = match run(path, &text) {
            Ok(r) => r,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let rendered = script.render(&outcomes);
        if rendered == text {
            continue;
        }
        if update {
            std::fs::write(path, rendered).expect("writable script");
        } else {
            failures.push(mismatch(path, &outcomes).unwrap_or_else(|| {
                format!(
                    "{}: layout differs (rerun with UPDATE_GOLDEN=1)",
                    path.display()
                )
            }));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scripts failed (UPDATE_GOLDEN=1 rewrites them):\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Every script of `testdata/bugs/` switches a bug on and shows the driver catching it: at
/// least one `VIOLATION:` line, and the `cluster` line names the bug.
#[test]
fn every_bug_script_shows_its_violation() {
    if !paxraft_impls::bugs::COMPILED {
        eprintln!("the bug switches are not compiled in (feature bug-zoo): bug scripts skipped");
        return;
    }
    let files = scripts_in(&testdata().join("bugs"));
    assert!(!files.is_empty(), "no script in testdata/bugs");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable script");
        assert!(
            text.lines()
                .any(|l| l.starts_with("cluster ") && l.contains(" bug=")),
            "{}: switches no bug on",
            path.display()
        );
        assert!(
            text.contains("VIOLATION: "),
            "{}: shows no violation",
            path.display()
        );
    }
}

#[test]
fn a_bad_line_is_an_error_naming_its_line() {
    let path = Path::new("bad.txt");
    let cases = [
        ("cluster raft\n\nelekt 0\n", 3, "unknown command \"elekt\""),
        (
            "cluster raft nodes=3\ntick 5 election\n",
            2,
            "n5 is not in this 3-node cluster",
        ),
        ("tick 0 election\n", 1, "no cluster yet"),
        (
            "cluster raft\ndeliver 0-1\n",
            2,
            "\"0-1\" is not a link FROM->TO",
        ),
        (
            "cluster raft\ndrop 0->1 tipe=Append\n",
            2,
            "unknown option tipe",
        ),
        ("cluster paxos\n", 1, "unknown protocol \"paxos\""),
        ("cluster raft nodes=9\n", 1, "cluster size must be 1 to 7"),
        ("# c\n----\n", 2, "---- without a command"),
    ];
    for (text, line, what) in cases {
        let err = run(path, text)
            .err()
            .unwrap_or_else(|| panic!("{text:?} ran"));
        let want = format!("bad.txt:{line}: ");
        assert!(
            err.starts_with(&want) && err.contains(what),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn a_command_without_output_gets_it_on_update_and_the_layout_round_trips() {
    let text = "# a comment\ncluster raft nodes=1\nstatus\n\ntick 0 election\n";
    let (script, outcomes) = run(Path::new("new.txt"), text).expect("runs");
    assert!(outcomes.iter().all(|o| o.expected.is_none()));
    let rendered = script.render(&outcomes);
    assert!(rendered.starts_with(
        "# a comment\ncluster raft nodes=1\n----\nok\n\nstatus\n----\nn0: Follower term=0"
    ));
    // The single node elects itself at once; the rendered file reads back unchanged.
    assert!(
        rendered.contains("n0: role Follower->Leader term 0->1"),
        "{rendered}"
    );
    let (again, outcomes) = run(Path::new("new.txt"), &rendered).expect("runs");
    assert!(
        outcomes.iter().all(Outcome::matches),
        "{rendered}\n{outcomes:#?}"
    );
    assert_eq!(again.render(&outcomes), rendered);
}

#[test]
fn cluster_refusals_are_error_lines_of_output() {
    let text = "cluster raft\ntick 0 heartbeat\ndeliver 0->1 type=Append\n";
    let (_, outcomes) = run(Path::new("refused.txt"), text).expect("runs");
    assert_eq!(
        outcomes[1].actual,
        ["error: n0 has no Heartbeat timer armed"]
    );
    assert_eq!(
        outcomes[2].actual,
        ["error: no Append message n0->n1 in flight"]
    );
}

/// The goldens have teeth: with a zoo bug switched into a script's cluster, some command
/// prints something else than the file holds.
#[cfg(feature = "bug-zoo")]
#[test]
fn a_known_bug_changes_what_a_script_prints() {
    for (file, bug) in [
        ("raft_figure8.txt", "figure8-commit"),
        ("raft_up_to_date_vote.txt", "vote-without-log-check"),
        ("multipaxos_phase1_recovery.txt", "ignore-accepted-value"),
        ("multipaxos_phase1_recovery.txt", "skip-recovery"),
        ("raft_snapshot.txt", "snapshot-keeps-commit-point"),
        ("multipaxos_snapshot.txt", "phase1-skips-accepted"),
        ("multipaxos_phase1_chunks.txt", "promise-before-last-chunk"),
        // The removed leader's timer fires: it campaigns instead of leaving nothing in flight.
        ("raft_membership_single.txt", "removed-server-disrupts"),
    ] {
        let path = testdata().join(file);
        let text = std::fs::read_to_string(&path).expect("readable script");
        let buggy: String = text
            .lines()
            .map(|l| match l.starts_with("cluster ") {
                true => format!("{l} bug={bug}\n"),
                false => format!("{l}\n"),
            })
            .collect();
        let (_, outcomes) = run(&path, &buggy).expect("runs");
        assert!(
            mismatch(&path, &outcomes).is_some(),
            "{file} prints the same with {bug} on"
        );
    }
}
