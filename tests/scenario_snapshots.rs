//! Snapshot tests of whole scenario runs: every scenario of `scenarios/library/` and of
//! `tests/scenarios/{pass,fail}/` is run through the library API (the same calls `mktme-sim
//! run` makes, with default options) and its JSON report is compared byte for byte with
//! `tests/snapshots/<folder>-<stem>.json`.
//!
//! The verdict is checked before the snapshot: scenarios of `library/` and `pass/` must pass;
//! those of `fail/` must not, and each names how its run must end in a first-lines comment
//! `// expected end: finished|cycles_max|deadlock`. A snapshot is only ever written for a run
//! whose verdict is right, so a regression cannot be blessed by accident.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test scenario_snapshots` (re)writes the snapshots; review
//! the diff before committing it.

use scenarios::report::Report;
use scenarios::runner::{self, RunOptions};
use scenarios::validate;
use std::path::{Path, PathBuf};

/// The snapshot folder, relative to the package root (the working directory of tests).
const SNAPSHOTS: &str = "tests/snapshots";

/// What a folder's scenarios must do.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Verdict {
    /// Finish, every expectation held.
    Pass,
    /// Not pass: an expectation fails or the run stops; the file says how it ends.
    Fail,
}

/// The `.ron` files of `folder` (relative to the package root), in name order.
fn scenario_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{folder}: cannot list: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{folder}: no .ron scenarios");
    files
}

/// The snapshot file of a scenario: `tests/snapshots/<prefix>-<stem>.json`.
fn snapshot_path(prefix: &str, file: &Path) -> PathBuf {
    let stem = file.file_stem().unwrap().to_string_lossy();
    Path::new(SNAPSHOTS).join(format!("{prefix}-{stem}.json"))
}

/// The end reason a `fail/` scenario declares in a `// expected end: REASON` comment.
fn declared_end(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .take_while(|l| l.trim_start().starts_with("//"))
        .find_map(|l| l.trim().strip_prefix("// expected end:"))
        .map(|r| r.trim().to_owned())
}

/// A diff of `expected` and `actual` at their first difference: up to 3 lines of context,
/// then the run of differing lines (at most 12), `-` expected and `+` actual, then the line
/// where they agree again.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let mut end = first;
    while end < e.len().max(a.len()) && end - first < 12 && e.get(end) != a.get(end) {
        end += 1;
    }
    let mut out = format!(
        "@@ first difference at line {} (expected {} lines, got {}) @@\n",
        first + 1,
        e.len(),
        a.len()
    );
    for line in &e[first.saturating_sub(3)..first] {
        out.push_str(&format!(" {line}\n"));
    }
    for line in e.get(first..end.min(e.len())).unwrap_or_default() {
        out.push_str(&format!("-{line}\n"));
    }
    for line in a.get(first..end.min(a.len())).unwrap_or_default() {
        out.push_str(&format!("+{line}\n"));
    }
    match (e.get(end), a.get(end)) {
        (Some(x), Some(y)) if x == y => out.push_str(&format!(" {x}\n")),
        _ => {}
    }
    out
}

/// Runs one scenario file and checks its verdict and snapshot; `Err` says what is wrong.
fn check_one(prefix: &str, file: &Path, verdict: Verdict, update: bool) -> Result<(), String> {
    let scenario = validate::load(file).map_err(|e| format!("does not validate: {e}"))?;
    let report =
        runner::run(&scenario, &RunOptions::default()).map_err(|e| format!("cannot run: {e}"))?;
    let json = Report::new(vec![report.clone()]).to_json();

    // The verdict first: a wrong one is never written as a snapshot.
    let failed_expectations: Vec<String> = report
        .expectations
        .iter()
        .filter(|e| !e.ok)
        .map(|e| {
            format!(
                "    {}: {}\n      observed: {}",
                e.place, e.expect, e.observed
            )
        })
        .collect();
    match verdict {
        Verdict::Pass => {
            if !report.passed {
                return Err(format!(
                    "expected to pass, but did not (end: {} at cycle {}); failed expectations:\n{}{}",
                    report.end.reason,
                    report.end.cycle,
                    failed_expectations.join("\n"),
                    if report.model_errors.is_empty() {
                        String::new()
                    } else {
                        format!("\n    model errors: {:?}", report.model_errors)
                    }
                ));
            }
        }
        Verdict::Fail => {
            if report.passed {
                return Err("expected NOT to pass, but every expectation held".to_owned());
            }
            let want = declared_end(file)
                .ok_or("has no `// expected end: REASON` comment at its top".to_owned())?;
            if report.end.reason != want {
                return Err(format!(
                    "expected the run to end with `{want}`, but it ended with `{}` at cycle {}",
                    report.end.reason, report.end.cycle
                ));
            }
            if want == "finished" && failed_expectations.is_empty() {
                return Err("finished and failed, yet no expectation failed".to_owned());
            }
        }
    }

    // The same scenario run again in this process gives the same report.
    let again = runner::run(&scenario, &RunOptions::default())
        .map_err(|e| format!("cannot run a second time: {e}"))?;
    if Report::new(vec![again]).to_json() != json {
        return Err("two runs of the same scenario gave different reports".to_owned());
    }

    let snap = snapshot_path(prefix, file);
    if update {
        std::fs::write(&snap, &json)
            .map_err(|e| format!("{}: cannot write: {e}", snap.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&snap).map_err(|e| {
        format!(
            "{}: no snapshot ({e}); create it with UPDATE_SNAPSHOTS=1 and review it",
            snap.display()
        )
    })?;
    if expected != json {
        return Err(format!(
            "report differs from {} (UPDATE_SNAPSHOTS=1 rewrites it):\n{}",
            snap.display(),
            diff(&expected, &json)
        ));
    }
    Ok(())
}

/// Checks every scenario of `folder`; fails naming every scenario that went wrong.
fn check_folder(folder: &str, prefix: &str, verdict: Verdict) {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    if update {
        std::fs::create_dir_all(SNAPSHOTS).unwrap();
    }
    let mut problems = Vec::new();
    let files = scenario_files(folder);
    for file in &files {
        if let Err(problem) = check_one(prefix, file, verdict, update) {
            problems.push(format!("{}: {problem}", file.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} scenario(s) in {folder} went wrong:\n\n{}",
        problems.len(),
        files.len(),
        problems.join("\n\n")
    );
}

#[test]
fn library_scenarios_pass_and_match_their_snapshots() {
    check_folder("scenarios/library", "library", Verdict::Pass);
}

#[test]
fn pass_scenarios_pass_and_match_their_snapshots() {
    check_folder("tests/scenarios/pass", "pass", Verdict::Pass);
}

#[test]
fn fail_scenarios_fail_as_declared_and_match_their_snapshots() {
    check_folder("tests/scenarios/fail", "fail", Verdict::Fail);
}

/// Every snapshot belongs to a scenario that still exists: a renamed or deleted scenario must
/// take its snapshot with it.
#[test]
fn every_snapshot_has_its_scenario() {
    let folders = [
        ("library", "scenarios/library"),
        ("pass", "tests/scenarios/pass"),
        ("fail", "tests/scenarios/fail"),
    ];
    let Ok(entries) = std::fs::read_dir(SNAPSHOTS) else {
        panic!("{SNAPSHOTS}: missing; create the snapshots with UPDATE_SNAPSHOTS=1");
    };
    let mut orphans = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let owner = name.strip_suffix(".json").and_then(|stem| {
            folders.iter().find_map(|(prefix, folder)| {
                let scenario = stem.strip_prefix(prefix)?.strip_prefix('-')?;
                let file = Path::new(folder).join(format!("{scenario}.ron"));
                file.is_file().then_some(file)
            })
        });
        if owner.is_none() {
            orphans.push(name);
        }
    }
    orphans.sort();
    assert!(
        orphans.is_empty(),
        "snapshots without a scenario in {SNAPSHOTS}: {orphans:?}"
    );
}

/// The diff helper points at the first differing line (the snapshot failures rely on it).
#[test]
fn diff_shows_the_first_differing_lines() {
    let d = diff("a\nb\nc\nd\ne\n", "a\nb\nX\nd\nY\n");
    assert_eq!(
        d,
        "@@ first difference at line 3 (expected 5 lines, got 5) @@\n a\n b\n-c\n+X\n d\n"
    );
    let d = diff("a\n", "a\nb\n");
    assert_eq!(
        d,
        "@@ first difference at line 2 (expected 1 lines, got 2) @@\n a\n+b\n"
    );
    let d = diff("1\n2\n3\n4\n5\n", "1\n2\n3\n4\nfive\n");
    assert_eq!(
        d,
        "@@ first difference at line 5 (expected 5 lines, got 5) @@\n 2\n 3\n 4\n-5\n+five\n"
    );
}
