//! The fuzzer's short run, in CI: a few thousand loader inputs and some fifty scenarios run
//! find nothing (seconds, in a debug build); and the fuzzer reports what it must, when the
//! limits are made tight enough to be passed: a hang in each phase, the memory budget in
//! each phase.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fuzz(out: &str, args: &[&str]) -> Output {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out);
    let _ = std::fs::remove_dir_all(&dir);
    Command::new(env!("CARGO_BIN_EXE_mktme-fuzz"))
        .arg("--out")
        .arg(&dir)
        .args(args)
        .output()
        .expect("the fuzzer runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_short_run_finds_nothing() {
    let o = fuzz(
        "short",
        &[
            "--seed",
            "1",
            "--loader-inputs",
            "3000",
            "--run-inputs",
            "50",
            "--time-limit",
            "60",
            "--keep-going",
        ],
    );
    let t = text(&o);
    assert!(t.contains("loader: 3000 inputs"), "{t}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("short");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") && !path.ends_with("child-stderr.txt") {
            let note = std::fs::read_to_string(&path).unwrap();
            panic!("a finding: {note}\n{t}");
        }
    }
    assert!(o.status.success(), "{t}");
    assert!(t.contains("no findings"), "{t}");
    // Fifty scenarios ran, and some mutants were accepted and some refused.
    let ran: u64 = t
        .lines()
        .filter(|l| l.contains(" ran: "))
        .map(|l| l.split_whitespace().next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(ran, 50, "{t}");
    assert!(t.contains(" accepted\n") && t.contains(" refused\n"), "{t}");
}

#[test]
fn a_hang_is_reported_in_each_phase() {
    // No input is read in a microsecond. Which input is caught is up to the scheduler: one
    // whose reader finished before the watchdog began waiting (the main thread descheduled
    // for a millisecond on a busy machine) is not, so the test asks for a hang in the loader
    // phase, not at input 0; the fuzzer stops at the first.
    let o = fuzz(
        "hang-loader",
        &[
            "--loader-inputs",
            "20",
            "--run-inputs",
            "0",
            "--time-limit",
            "0.000001",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("HANG: still running at the time limit: loader input "),
        "{t}"
    );

    let o = fuzz(
        "hang-run",
        &[
            "--loader-inputs",
            "0",
            "--run-inputs",
            "2",
            "--time-limit",
            "0.000001",
            "--keep-going",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("FINDING: HANG"), "{t}");
    assert!(t.contains("findings: 40, hang 40"), "{t}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hang-run");
    let note = std::fs::read_to_string(dir.join("hang-run-s1-i0.txt")).unwrap();
    assert!(
        note.contains("replay: mktme-sim run --set run.cycles_max=20000"),
        "{note}"
    );
    assert!(dir.join("hang-run-s1-i0.ron").exists());
}

#[test]
fn the_memory_budget_is_reported_in_each_phase() {
    // A run does not fit in one MiB: each child aborts, and the fuzzer goes on.
    let o = fuzz(
        "memory-run",
        &[
            "--loader-inputs",
            "0",
            "--run-inputs",
            "1",
            "--mem-budget",
            "1",
            "--keep-going",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FINDING: MEMORY: mktme-fuzz: MEMORY: an allocation of "),
        "{t}"
    );
    assert!(t.contains("; run input 0"), "{t}");

    // In the loader phase the process itself aborts, having said which input: here a seed
    // of 50,000 ops, which takes some 30 MiB to read.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("memory-loader-seed");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("long.ron");
    let ops = "compute(1), ".repeat(50_000);
    std::fs::write(&seed, format!("(cores: [(ops: [{ops}])])")).unwrap();
    let o = fuzz(
        "memory-loader",
        &[
            "--seeds",
            seed.to_str().unwrap(),
            "--loader-inputs",
            "1",
            "--run-inputs",
            "0",
            "--mem-budget",
            "16",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("mktme-fuzz: MEMORY: an allocation of "), "{t}");
    assert!(t.contains("; loader input 0\n"), "{t}");
}
