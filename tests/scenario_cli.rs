//! `mktme-sim run` and `mktme-sim check` through the binary: verdicts and exit codes, the
//! summary a user reads, the JSON report (determinism across `--jobs`, `--seed`,
//! `--reveal-keys`, atomic writing, argument order), and what a user sees for bad input (exit
//! code 2, `file:line:column: message`, never a panic, never a half-run).
//!
//! Paths are given relative to the package root (the binary runs there), so reports and
//! messages name `scenarios/library/...` exactly as a user would type it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A library scenario as the validator reads it: what `check` and `run` must report for it.
/// (The library is maintained apart from these tests: its contents are read, not copied.)
struct LibraryScenario {
    name: String,
    file: String,
    seed: u64,
    programs: usize,
    ops: usize,
    expectations: usize,
    /// Its attacker cuts the power mid-run: the run ends with `cold_boot`, not `finished`.
    cold_boot_mid_run: bool,
}

/// Every scenario of `scenarios/library`, in name order (the order `run` and `check` use).
fn library() -> Vec<LibraryScenario> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios/library"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    let library: Vec<LibraryScenario> = files
        .iter()
        .map(|path| {
            let file = format!(
                "scenarios/library/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            let s = scenarios::validate::load(path)
                .unwrap_or_else(|e| panic!("a library scenario does not validate: {e}"));
            LibraryScenario {
                name: s.name,
                file,
                seed: s.seed,
                programs: s.programs.len(),
                ops: s.ops.len(),
                expectations: s.expectations.len(),
                cold_boot_mid_run: s
                    .attacker
                    .cold_boot
                    .as_ref()
                    .is_some_and(|c| matches!(c.at, scenarios::scenario::DumpTime::Cycle(_))),
            }
        })
        .collect();
    assert!(
        library.len() >= 16,
        "the library shrank to {}",
        library.len()
    );
    library
}

/// `tests/scenarios/pass/`, in name order, with their seeds.
const PASS: [(&str, u64); 7] = [
    ("add-key-without-cap", 8),
    ("drain-order", 1),
    ("key-table-modes", 21),
    ("keyid-pool-exhausted", 6),
    ("repeat-load-every-iteration", 11),
    ("shared-file-mapping", 4),
    ("user-direct-map-privilege", 10),
];

const WRONG_LOAD: &str = "tests/scenarios/fail/wrong-load-value.ron";
const NEVER_ENDS: &str = "tests/scenarios/fail/never-ends.ron";
const DEADLOCK: &str = "tests/scenarios/fail/barrier-deadlock.ron";

fn mktme_sim<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run mktme-sim")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts the exit code, showing both streams when it is wrong.
fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
    assert!(
        !stderr(out).contains("panicked"),
        "{what}: panicked\n{}",
        stderr(out)
    );
}

/// A fresh, empty directory under the system's temp dir, removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "mktme-sim-scenario-cli-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The names in the directory, sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scenario's `machine.memory.dram` may name a RON DRAM file, relative to the scenario's
/// folder (issue 9), exactly as a machine file may: the run uses it; a missing or malformed one
/// is exit 2 at the field.
#[test]
fn a_scenario_may_name_a_dram_file() {
    let dir = TempDir::new("dram-file");
    let dram = mktme_sim(&["dram-trace", "--print-dram", "--dram", "ddr4-3200"]);
    assert_code(&dram, 0, "print-dram");
    dir.write(
        "lab-ddr4.ron",
        stdout(&dram).replace("\"ddr4-3200\"", "\"lab-ddr4\""),
    );
    let scenario = |dram: &str| {
        format!(
            "(\n    machine: (memory: (dram: \"{dram}\")),\n    cores: [(ops: [\n        \
             store(at: phys(keyid: 0, addr: 0x10000), data: u64(7)),\n        \
             clflush(at: phys(keyid: 0, addr: 0x10000)),\n        mfence,\n        \
             load(at: phys(keyid: 0, addr: 0x10000), len: 8, expect: u64(7)),\n    ])],\n)\n"
        )
    };
    // The same DRAM with a slower CAS latency, to see that the file is really used.
    dir.write(
        "slow-ddr4.ron",
        stdout(&dram).replace("t_cl_cycles: 22,", "t_cl_cycles: 40,"),
    );
    let run = |name: &str, dram: &str| {
        let path = dir.write(name, scenario(dram));
        let out = mktme_sim(&["run", path.to_str().unwrap()]);
        assert_code(&out, 0, name);
        // "  finished: programs ended at cycle N, caches drained by cycle M"
        stdout(&out)
            .lines()
            .find(|l| l.trim_start().starts_with("finished:"))
            .unwrap_or_else(|| panic!("no finished line for {name}: {}", stdout(&out)))
            .to_owned()
    };
    let with_file = run("with-file.ron", "lab-ddr4.ron");
    let with_preset = run("with-preset.ron", "ddr4-3200");
    let slower = run("slower.ron", "slow-ddr4.ron");
    // The same DRAM under a file or its preset name: the same cycles; a slower file: more.
    assert_eq!(with_file, with_preset);
    assert_ne!(slower, with_preset);
    // A DRAM file that is not there: located at the field, exit 2, nothing run.
    let missing = dir.write("missing.ron", scenario("nowhere.ron"));
    let out = mktme_sim(&["run", missing.to_str().unwrap()]);
    assert_code(&out, 2, "missing DRAM file");
    let want = format!(
        "{}:2:30: machine.memory.dram: cannot open DRAM file {}",
        missing.display(),
        dir.path("nowhere.ron").display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    // A malformed one names the DRAM file's own line and column.
    dir.write("bad-ddr4.ron", "(name: \"x\", bogus: 1)");
    let bad = dir.write("bad.ron", scenario("bad-ddr4.ron"));
    let out = mktme_sim(&["run", bad.to_str().unwrap()]);
    assert_code(&out, 2, "malformed DRAM file");
    assert!(
        stderr(&out).contains("machine.memory.dram: ")
            && stderr(&out).contains(&format!("{}:1:", dir.path("bad-ddr4.ron").display())),
        "{}",
        stderr(&out)
    );
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read the report: {e}", path.display()));
    serde_json::from_str(&text).expect("the report is JSON")
}

fn scenarios_of(report: &Value) -> &Vec<Value> {
    report["scenarios"]
        .as_array()
        .expect("`scenarios` is an array")
}

fn pass_file(name: &str) -> String {
    format!("tests/scenarios/pass/{name}.ron")
}

/// The line of `text` just after the first line equal to `line`.
fn line_after<'a>(text: &'a str, line: &str) -> &'a str {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| *l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{text}"));
    lines.next().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Verdicts and the summary
// ---------------------------------------------------------------------------------------------

#[test]
fn run_library_passes_every_expectation() {
    let library = library();
    let dir = TempDir::new("library");
    let report = dir.path("report.json");
    let out = mktme_sim(&[
        "run".as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
        "scenarios/library".as_ref(),
    ]);
    let text = stdout(&out);
    assert_code(&out, 0, "run scenarios/library");
    assert_eq!(stderr(&out), "");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(!text.contains("STOPPED"), "{text}");

    // One block per scenario, in name order, each starting with its header line: one PASS line
    // per expectation, then the verdict.
    let blocks = summary_blocks(&text);
    assert_eq!(blocks.len(), library.len(), "{text}");
    for (block, s) in blocks.iter().zip(&library) {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(
            lines[0],
            format!("scenario {} ({}), seed {}", s.name, s.file, s.seed)
        );
        let passes = lines.iter().filter(|l| l.starts_with("    PASS ")).count();
        assert_eq!(passes, s.expectations, "{}: PASS lines\n{block}", s.name);
        assert!(
            lines.contains(&"  expectations:") == (s.expectations > 0),
            "{block}"
        );
        let verdict = format!(
            "  result: PASSED ({0}/{0} expectations held)",
            s.expectations
        );
        assert_eq!(lines.last(), Some(&verdict.as_str()), "{}", s.name);
    }
    let n = library.len();
    assert!(text.ends_with(&format!("\n{n} scenario(s): {n} passed, 0 failed\n")));

    // The summary and the report agree.
    let json = read_json(&report);
    let scenarios = scenarios_of(&json);
    assert_eq!(scenarios.len(), n);
    for (r, s) in scenarios.iter().zip(&library) {
        assert_eq!(r["scenario"], s.name.as_str());
        assert_eq!(r["file"], s.file.as_str());
        assert_eq!(r["seed"], s.seed);
        assert_eq!(r["passed"], true, "{}", s.name);
        let end = if s.cold_boot_mid_run {
            "cold_boot"
        } else {
            "finished"
        };
        assert_eq!(r["end"]["reason"], end, "{}", s.name);
        let expectations = r["expectations"].as_array().unwrap();
        assert_eq!(expectations.len(), s.expectations, "{}", s.name);
        assert!(expectations.iter().all(|e| e["ok"] == true), "{}", s.name);
    }
}

/// The summary of `run` split into one block per scenario (the totals line left out).
fn summary_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("scenario ") {
            blocks.push(String::new());
        } else if line.contains(" scenario(s): ") {
            continue;
        }
        let block = blocks
            .last_mut()
            .unwrap_or_else(|| panic!("text before the first scenario: {line:?}"));
        block.push_str(line);
        block.push('\n');
    }
    blocks
}

#[test]
fn a_failed_expectation_exits_1_and_shows_the_observed_value() {
    let out = mktme_sim(&["run", WRONG_LOAD]);
    let text = stdout(&out);
    assert_code(&out, 1, "run wrong-load-value");
    assert_eq!(stderr(&out), "");
    let fail = "    FAIL tests/scenarios/fail/wrong-load-value.ron:14:9: core 0 `r` (load 8 bytes at \
                phys keyid 0 0x6_0000) at 10:13 loads 2143000000000000";
    let observed = line_after(&text, fail);
    assert!(
        observed.starts_with("         at cycle ")
            && observed.ends_with(": loaded 3412000000000000"),
        "the observed value under the FAIL line: {observed:?}\n{text}"
    );
    assert!(
        text.lines().any(|l| l
            == "    PASS tests/scenarios/fail/wrong-load-value.ron:15:9: no coherency violations"),
        "{text}"
    );
    assert!(
        text.contains("\n  finished: programs ended at cycle "),
        "{text}"
    );
    assert!(
        text.ends_with("  result: FAILED (1/2 expectations held)\n"),
        "{text}"
    );
    // One scenario: no totals line.
    assert!(!text.contains("scenario(s):"), "{text}");
}

#[test]
fn quiet_mode_prints_one_verdict_per_scenario_and_the_totals() {
    let pass = pass_file("repeat-load-every-iteration");
    let out = mktme_sim(&["run", "-q", &pass, WRONG_LOAD]);
    assert_code(&out, 1, "run -q pass fail");
    assert_eq!(
        stdout(&out),
        format!(
            "PASSED repeat-load-every-iteration ({pass})\n\
             FAILED wrong-load-value ({WRONG_LOAD})\n\
             2 scenario(s): 1 passed, 1 failed\n"
        )
    );
    // Failing first does not change the order or the verdicts.
    let out = mktme_sim(&["run", "--quiet", WRONG_LOAD, &pass]);
    assert_code(&out, 1, "run --quiet fail pass");
    assert_eq!(
        stdout(&out),
        format!(
            "FAILED wrong-load-value ({WRONG_LOAD})\n\
             PASSED repeat-load-every-iteration ({pass})\n\
             2 scenario(s): 1 passed, 1 failed\n"
        )
    );
}

#[test]
fn folders_expand_recursively_in_name_order() {
    let out = mktme_sim(&["run", "-q", "tests/scenarios"]);
    assert_code(&out, 1, "run -q tests/scenarios");
    let mut expected = vec![
        format!("FAILED barrier-deadlock ({DEADLOCK})"),
        format!("FAILED never-ends ({NEVER_ENDS})"),
        format!("FAILED wrong-load-value ({WRONG_LOAD})"),
    ];
    for (name, _) in PASS {
        expected.push(format!("PASSED {name} ({})", pass_file(name)));
    }
    expected.push(format!(
        "{} scenario(s): {} passed, 3 failed",
        PASS.len() + 3,
        PASS.len()
    ));
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), expected);
}

#[test]
fn a_program_that_never_ends_stops_at_cycles_max_with_a_dump() {
    let dir = TempDir::new("cycles-max");
    let report = dir.path("r.json");
    let out = mktme_sim(&[
        "run".as_ref(),
        NEVER_ENDS.as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
    ]);
    let text = stdout(&out);
    assert_code(&out, 1, "run never-ends");
    assert!(
        text.lines()
            .any(|l| l == "  STOPPED (cycles_max) at cycle 100000; component state:"),
        "{text}"
    );
    // The dump names core 0 and where its program is: deep inside the repeat.
    let core0 = line_after(&text, "    core 0:");
    assert!(
        core0.starts_with("      at repeat (tag 0) iteration ")
            && core0.contains(" of 1000000000000"),
        "core 0's state: {core0:?}"
    );
    for component in [
        "    system:",
        "    barriers:",
        "    caches:",
        "    memory:",
        "    kernel:",
    ] {
        assert!(
            text.lines().any(|l| l == component),
            "no {component:?} in the dump:\n{text}"
        );
    }
    let fail =
        "    FAIL tests/scenarios/fail/never-ends.ron:14:9: the programs end within 100000 cycles";
    assert_eq!(
        line_after(&text, fail),
        "         the run stopped at cycle 100000 before the programs ended"
    );
    assert!(
        text.ends_with("  result: FAILED (0/1 expectations held)\n"),
        "{text}"
    );

    let json = read_json(&report);
    let s = &scenarios_of(&json)[0];
    assert_eq!(s["passed"], false);
    assert_eq!(s["cycles"], 100_000);
    let end = &s["end"];
    assert_eq!(end["reason"], "cycles_max");
    assert_eq!(end["cycle"], 100_000);
    assert!(end.get("programs_done").is_none(), "{end}");
    let dump = end["dump"].as_array().expect("a dump");
    let core0 = dump
        .iter()
        .find(|c| c["component"] == "core 0")
        .unwrap_or_else(|| panic!("no core 0 in the dump: {dump:?}"));
    assert!(
        core0["state"].as_str().unwrap().contains("repeat"),
        "{core0}"
    );
}

#[test]
fn a_barrier_nobody_else_reaches_is_a_deadlock() {
    let dir = TempDir::new("deadlock");
    let report = dir.path("r.json");
    let out = mktme_sim(&[
        "run".as_ref(),
        DEADLOCK.as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
    ]);
    let text = stdout(&out);
    assert_code(&out, 1, "run barrier-deadlock");
    assert!(text.contains("  STOPPED (deadlock) at cycle "), "{text}");
    assert_eq!(
        line_after(&text, "    barriers:"),
        "      barrier 0: core 0 arrived 2x, core 1 arrived 1x"
    );
    assert!(
        text.ends_with("  result: FAILED (1/1 expectations held)\n"),
        "{text}"
    );

    let json = read_json(&report);
    let s = &scenarios_of(&json)[0];
    assert_eq!(s["passed"], false);
    let end = &s["end"];
    assert_eq!(end["reason"], "deadlock", "{end}");
    // Found when nothing can happen any more, not by running into cycles_max (10^7).
    let cycle = end["cycle"].as_u64().unwrap();
    assert!(cycle < 1_000, "deadlock found at cycle {cycle}");
    let dump = end["dump"].as_array().expect("a dump");
    let core0 = dump
        .iter()
        .find(|c| c["component"] == "core 0")
        .expect("core 0 in the dump");
    assert!(
        core0["state"].as_str().unwrap().contains("barrier"),
        "{core0}"
    );
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

fn run_report(dir: &TempDir, name: &str, extra: &[&str], paths: &[&str]) -> (Output, Vec<u8>) {
    let report = dir.path(name);
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["run".as_ref(), "--report".as_ref(), report.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.extend(paths.iter().map(std::ffi::OsStr::new));
    let out = mktme_sim(&args);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "run {extra:?} {paths:?}: exit {:?}\n{}",
        out.status.code(),
        stderr(&out)
    );
    let bytes = std::fs::read(&report).expect("the report was written");
    (out, bytes)
}

#[test]
fn reports_are_byte_identical_whatever_the_thread_count() {
    let dir = TempDir::new("determinism");
    let paths = ["scenarios/library", "tests/scenarios/pass"];
    let (out_a, a) = run_report(&dir, "a.json", &["--jobs", "1"], &paths);
    let (out_b, b) = run_report(&dir, "b.json", &["--jobs", "2"], &paths);
    let (out_c, c) = run_report(&dir, "c.json", &["--jobs", "1"], &paths);
    assert!(a == b, "--jobs 1 and --jobs 2 gave different reports");
    assert!(a == c, "two runs with --jobs 1 gave different reports");
    assert_eq!(out_a.status.code(), out_b.status.code());
    assert_eq!(out_a.status.code(), out_c.status.code());
    assert_eq!(
        stdout(&out_a),
        stdout(&out_b),
        "the summary depends on --jobs"
    );
    assert_eq!(stdout(&out_a), stdout(&out_c));

    let json: Value = serde_json::from_slice(&a).unwrap();
    let files: Vec<String> = scenarios_of(&json)
        .iter()
        .map(|s| s["file"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = library().into_iter().map(|s| s.file).collect();
    expected.extend(PASS.iter().map(|(n, _)| pass_file(n)));
    assert_eq!(files, expected);
}

#[test]
fn seed_override_changes_the_seed_and_is_reproducible() {
    let dir = TempDir::new("seed");
    let paths = ["scenarios/library", "tests/scenarios/pass"];
    let (_, a) = run_report(&dir, "a.json", &["--jobs", "1"], &paths);
    let (out_d, d) = run_report(&dir, "d.json", &["--jobs", "1", "--seed", "99"], &paths);
    let (out_e, e) = run_report(&dir, "e.json", &["--jobs", "2", "--seed", "99"], &paths);
    assert!(d == e, "two runs with --seed 99 gave different reports");
    assert_eq!(stdout(&out_d), stdout(&out_e));
    assert!(a != d, "--seed 99 changed nothing");
    let header = "scenario key-table-modes (tests/scenarios/pass/key-table-modes.ron), seed 99";
    assert!(
        stdout(&out_d).lines().any(|l| l == header),
        "{}",
        stdout(&out_d)
    );

    let a: Value = serde_json::from_slice(&a).unwrap();
    let d: Value = serde_json::from_slice(&d).unwrap();
    let (sa, sd) = (scenarios_of(&a), scenarios_of(&d));
    let library = library();
    assert_eq!(sa.len(), library.len() + PASS.len());
    assert_eq!(sa.len(), sd.len());
    let file_seeds: Vec<u64> = library
        .iter()
        .map(|s| s.seed)
        .chain(PASS.iter().map(|(_, s)| *s))
        .collect();
    for ((x, y), seed) in sa.iter().zip(sd).zip(file_seeds) {
        assert_eq!(x["seed"], seed, "{}", x["file"]);
        assert_eq!(y["seed"], 99, "{}", y["file"]);
        // The same scenarios and the same expectations, whatever the seed.
        for field in ["scenario", "file", "description"] {
            assert_eq!(x[field], y[field]);
        }
        let what = |s: &Value| -> Vec<(Value, Value)> {
            s["expectations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["place"].clone(), e["expect"].clone()))
                .collect()
        };
        assert_eq!(what(x), what(y), "{}", x["file"]);
    }

    // What the seed matters for, in key-table-modes' DRAM: the line written through the
    // random key (KeyID 2) is encrypted differently; the line written through the direct key
    // (KeyID 1, the file's bytes) is the same ciphertext; the no-encrypt line is plaintext.
    let dump_line = |scenarios: &[Value], addr: &str| -> String {
        let s = scenarios
            .iter()
            .find(|s| s["scenario"] == "key-table-modes")
            .expect("key-table-modes ran");
        let lines = s["dram_dumps"][0]["lines"].as_array().unwrap();
        let line = lines.iter().find(|l| l["addr"] == addr).unwrap();
        line["data"].as_str().unwrap().to_owned()
    };
    let plain = format!("706c61696e{}", "0".repeat(118));
    assert_eq!(dump_line(sa, "0x70080"), plain);
    assert_eq!(dump_line(sd, "0x70080"), plain);
    assert_eq!(dump_line(sa, "0x70000"), dump_line(sd, "0x70000"));
    assert_ne!(
        &dump_line(sa, "0x70000")[..12],
        "646972656374",
        "KeyID 1 stored plaintext"
    );
    let (ra, rd) = (dump_line(sa, "0x70040"), dump_line(sd, "0x70040"));
    assert_ne!(ra, rd, "KeyID 2's random key does not depend on the seed");
    assert_ne!(&ra[..12], "72616e646f6d", "KeyID 2 stored plaintext");
}

#[test]
fn key_bytes_appear_only_with_reveal_keys() {
    let dir = TempDir::new("reveal");
    let paths = ["tests/scenarios/pass/key-table-modes.ron"];
    let (out_hidden, hidden) = run_report(&dir, "hidden.json", &[], &paths);
    let (out_shown, shown) = run_report(&dir, "shown.json", &["--reveal-keys"], &paths);
    let (_, reseeded) = run_report(
        &dir,
        "reseeded.json",
        &["--reveal-keys", "--seed", "99"],
        &paths,
    );
    let hidden_text = String::from_utf8(hidden).unwrap();
    let shown_text = String::from_utf8(shown).unwrap();
    assert!(
        !hidden_text.contains("data_key"),
        "data_key without --reveal-keys"
    );
    assert!(
        !hidden_text.contains("tweak_key"),
        "tweak_key without --reveal-keys"
    );

    let shown: Value = serde_json::from_str(&shown_text).unwrap();
    let table = shown["scenarios"][0]["key_table"]
        .as_array()
        .unwrap()
        .clone();
    let modes: Vec<(u64, &str)> = table
        .iter()
        .map(|e| (e["keyid"].as_u64().unwrap(), e["mode"].as_str().unwrap()))
        .collect();
    // KeyID 4, programmed then cleared, is back in its boot state: not listed.
    assert_eq!(
        modes,
        [
            (0, "platform"),
            (1, "direct"),
            (2, "random"),
            (3, "no-encrypt")
        ]
    );
    // SET_KEY_DIRECT with AES-XTS-256: the file's 32-byte keys.
    assert_eq!(
        table[1]["data_key"],
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    );
    assert_eq!(
        table[1]["tweak_key"],
        "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
    );
    // The platform key and the random key: 16 bytes each (AES-XTS-128), not all zeros, and
    // drawn from the seed; the no-encrypt KeyID has no key at all.
    let reseeded: Value = serde_json::from_slice(&reseeded).unwrap();
    let other = reseeded["scenarios"][0]["key_table"].as_array().unwrap();
    let mut secrets = vec![
        "00112233445566778899aabbccddeeff".to_owned(),
        "ffeeddccbbaa99887766554433221100".to_owned(),
    ];
    for i in [0, 2] {
        for field in ["data_key", "tweak_key"] {
            let key = table[i][field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {}", table[i]));
            assert_eq!(key.len(), 32, "{}", table[i]);
            assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{}", table[i]);
            assert_ne!(key, "0".repeat(32), "{}", table[i]);
            assert_ne!(other[i][field], key, "--seed 99 kept KeyID {i}'s {field}");
            secrets.push(key.to_owned());
        }
    }
    assert_eq!(
        other[1], table[1],
        "a direct key does not depend on the seed"
    );
    assert!(table[3].get("data_key").is_none(), "{}", table[3]);
    assert!(table[3].get("tweak_key").is_none(), "{}", table[3]);
    // No key byte leaks into the report or the summary without the flag, nor into the
    // summary with it.
    for secret in &secrets {
        assert!(
            !hidden_text.contains(secret.as_str()),
            "key {secret} in the report"
        );
        assert!(
            !stdout(&out_hidden).contains(secret.as_str()),
            "key {secret} printed"
        );
        assert!(
            !stdout(&out_shown).contains(secret.as_str()),
            "key {secret} printed"
        );
    }
    assert_eq!(stdout(&out_hidden), stdout(&out_shown));

    // Apart from the key fields, the two reports are the same.
    let mut stripped = shown.clone();
    for s in stripped["scenarios"].as_array_mut().unwrap() {
        for entry in s["key_table"].as_array_mut().unwrap() {
            let entry = entry.as_object_mut().unwrap();
            entry.remove("data_key");
            entry.remove("tweak_key");
        }
    }
    let hidden: Value = serde_json::from_str(&hidden_text).unwrap();
    assert!(
        stripped == hidden,
        "--reveal-keys changed more than the key fields"
    );
}

#[test]
fn the_report_is_complete_and_in_argument_order() {
    let dir = TempDir::new("order");
    let paths = [
        pass_file("shared-file-mapping"),
        pass_file("user-direct-map-privilege"),
        pass_file("add-key-without-cap"),
    ];
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (out, bytes) = run_report(&dir, "out.json", &["--jobs", "3"], &paths);
    assert_code(&out, 0, "run three passing scenarios");
    // Only the report: no temporary file left beside it.
    assert_eq!(dir.listing(), ["out.json"]);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.ends_with("}\n"), "the report ends with a newline");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format"], "mktme-sim-report");
    assert_eq!(json["version"], 1);
    let scenarios = scenarios_of(&json);
    let got: Vec<(&str, &str)> = scenarios
        .iter()
        .map(|s| (s["scenario"].as_str().unwrap(), s["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("shared-file-mapping", paths[0]),
            ("user-direct-map-privilege", paths[1]),
            ("add-key-without-cap", paths[2]),
        ]
    );
    for s in scenarios {
        assert_eq!(s["passed"], true, "{}", s["file"]);
    }

    // A second run replaces the report (atomically, by rename): still one file, new contents.
    let (_, again) = run_report(&dir, "out.json", &[], &[WRONG_LOAD]);
    assert_eq!(dir.listing(), ["out.json"]);
    let json: Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(scenarios_of(&json).len(), 1);
    assert_eq!(json["scenarios"][0]["scenario"], "wrong-load-value");
    assert_eq!(json["scenarios"][0]["passed"], false);
}

#[test]
fn bad_input_is_reported_and_the_valid_files_still_run() {
    let inputs = TempDir::new("bad-inputs");
    let bad = inputs.write(
        "bad.ron",
        "(\n    cores: [(ops: [load(at: virt(0), len: 65)])],\n)\n",
    );
    let bad_arg = bad.to_str().unwrap();

    // The good file runs and its report is written, listing the bad one; exit 2 at the end.
    let out_dir = TempDir::new("bad-report");
    let report = out_dir.path("report.json");
    let out = mktme_sim(&[
        "run",
        "--report",
        report.to_str().unwrap(),
        "scenarios/library/direct-map.ron",
        bad_arg,
    ]);
    assert_code(&out, 2, "run good bad");
    let text = stdout(&out);
    assert!(
        text.starts_with("scenario direct-map (scenarios/library/direct-map.ron), seed 3\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\n1 scenario(s): 1 passed, 0 failed; 1 invalid file(s) not run\n"),
        "{text}"
    );
    assert_eq!(
        stderr(&out),
        format!("error: {bad_arg}:2:43: load len 65 is outside 1..=64\n")
    );
    let json = read_json(&report);
    assert_eq!(scenarios_of(&json).len(), 1);
    assert_eq!(
        json["invalid"],
        serde_json::json!([format!("{bad_arg}:2:43: load len 65 is outside 1..=64")])
    );
    assert_eq!(out_dir.listing(), ["report.json"], "no temporary file left");
    std::fs::remove_file(&report).unwrap();

    // Nothing valid: nothing runs, no report file appears, and no temporary file either.
    let out = mktme_sim(&["run", "--report", report.to_str().unwrap(), bad_arg]);
    assert_code(&out, 2, "run bad");
    assert_eq!(stdout(&out), "", "nothing to run");
    assert!(!report.exists(), "a report was written with nothing run");
    assert!(
        out_dir.listing().is_empty(),
        "left behind: {:?}",
        out_dir.listing()
    );

    // An existing report is left as it was.
    let old = out_dir.write("report.json", "previous report\n");
    let out = mktme_sim(&["run", "--report", old.to_str().unwrap(), bad_arg]);
    assert_code(&out, 2, "run bad over an old report");
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "previous report\n");
    assert_eq!(out_dir.listing(), ["report.json"]);

    // A report that cannot be written: exit 2, saying so.
    let missing = out_dir.path("no-such-dir").join("report.json");
    let out = mktme_sim(&[
        "run",
        "--report",
        missing.to_str().unwrap(),
        "tests/scenarios/pass/repeat-load-every-iteration.ron",
    ]);
    assert_code(&out, 2, "run --report into a missing folder");
    assert!(
        stderr(&out).contains(&format!("{}: cannot write the report", missing.display())),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

#[test]
fn check_prints_one_ok_line_per_file() {
    let library = library();
    let out = mktme_sim(&["check", "scenarios/library"]);
    assert_code(&out, 0, "check scenarios/library");
    assert_eq!(stderr(&out), "");
    let expected: String = library
        .iter()
        .map(|s| {
            format!(
                "ok {} ({}): {} core program(s), {} op(s), {} expectation(s)\n",
                s.file, s.name, s.programs, s.ops, s.expectations
            )
        })
        .collect();
    assert_eq!(stdout(&out), expected);

    // The test scenarios, exactly.
    let out = mktme_sim(&["check", "tests/scenarios/pass"]);
    assert_code(&out, 0, "check tests/scenarios/pass");
    assert_eq!(
        stdout(&out),
        "ok tests/scenarios/pass/add-key-without-cap.ron (add-key-without-cap): 2 core program(s), 5 op(s), 5 expectation(s)\n\
         ok tests/scenarios/pass/drain-order.ron (drain-order): 1 core program(s), 9 op(s), 7 expectation(s)\n\
         ok tests/scenarios/pass/key-table-modes.ron (key-table-modes): 1 core program(s), 14 op(s), 9 expectation(s)\n\
         ok tests/scenarios/pass/keyid-pool-exhausted.ron (keyid-pool-exhausted): 1 core program(s), 6 op(s), 8 expectation(s)\n\
         ok tests/scenarios/pass/repeat-load-every-iteration.ron (repeat-load-every-iteration): 1 core program(s), 4 op(s), 5 expectation(s)\n\
         ok tests/scenarios/pass/shared-file-mapping.ron (shared-file-mapping): 1 core program(s), 7 op(s), 7 expectation(s)\n\
         ok tests/scenarios/pass/user-direct-map-privilege.ron (user-direct-map-privilege): 1 core program(s), 5 op(s), 5 expectation(s)\n"
    );

    // check validates without running: scenarios that would fail are valid.
    let out = mktme_sim(&["check", NEVER_ENDS, DEADLOCK]);
    assert_code(&out, 0, "check fail/ scenarios");
    assert_eq!(
        stdout(&out),
        format!(
            "ok {NEVER_ENDS} (never-ends): 1 core program(s), 2 op(s), 1 expectation(s)\n\
             ok {DEADLOCK} (barrier-deadlock): 2 core program(s), 3 op(s), 1 expectation(s)\n"
        )
    );
}

#[test]
fn every_bad_file_is_reported_in_order() {
    let dir = TempDir::new("several");
    let good = dir.write("a-good.ron", "(cores: [(ops: [mfence])])\n");
    let bad1 = dir.write("b-bad.ron", "(cores: [(ops: [mfence])], colour: 3)\n");
    let bad2 = dir.write(
        "c-bad.ron",
        "(\n    run: (cycles_max: 0),\n    cores: [],\n)\n",
    );
    for command in ["check", "run"] {
        let out = mktme_sim(&[command, dir.0.to_str().unwrap()]);
        assert_code(&out, 2, command);
        if command == "check" {
            assert_eq!(stdout(&out), "", "{command}: no ok line");
        } else {
            // The valid file runs; the bad ones are counted at the end.
            let text = stdout(&out);
            assert!(
                text.starts_with(&format!("scenario a-good ({}), seed 0\n", good.display())),
                "{text}"
            );
            assert!(
                text.ends_with("\n1 scenario(s): 1 passed, 0 failed; 2 invalid file(s) not run\n"),
                "{text}"
            );
        }
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{command}: one line per bad file:\n{err}");
        assert!(
            lines[0].starts_with(&format!(
                "error: {}:1:28: Unexpected field named `colour` in `scenario`",
                bad1.display()
            )),
            "{err}"
        );
        assert_eq!(
            lines[1],
            format!(
                "error: {}:2:23: run.cycles_max 0 is outside 1..=1000000000000",
                bad2.display()
            )
        );
        assert!(!err.contains(good.to_str().unwrap()), "{err}");
        assert_eq!(
            err.lines().count(),
            2,
            "{command}: only the bad files on stderr"
        );
    }
}

#[test]
fn paths_that_hold_no_scenario() {
    let dir = TempDir::new("paths");
    let missing = dir.path("missing.ron");
    let empty_dir = dir.path("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    std::fs::write(empty_dir.join("notes.txt"), "not a scenario").unwrap();
    std::fs::write(empty_dir.join("scenario.ron.bak"), "(cores: [])").unwrap();
    for command in ["run", "check"] {
        let out = mktme_sim(&[command, missing.to_str().unwrap()]);
        assert_code(&out, 2, &format!("{command} missing"));
        assert_eq!(stdout(&out), "");
        assert!(
            stderr(&out).starts_with(&format!("error: {}: cannot read", missing.display())),
            "{}",
            stderr(&out)
        );

        let out = mktme_sim(&[command, empty_dir.to_str().unwrap()]);
        assert_code(&out, 2, &format!("{command} folder without .ron"));
        assert_eq!(stdout(&out), "");
        assert_eq!(
            stderr(&out),
            format!(
                "error: {}: no .ron scenario files in this folder\n",
                empty_dir.display()
            )
        );

        // A good file does not excuse a missing one.
        let out = mktme_sim(&[
            command,
            "tests/scenarios/pass/repeat-load-every-iteration.ron",
            missing.to_str().unwrap(),
        ]);
        assert_code(&out, 2, &format!("{command} good missing"));
        assert_eq!(stdout(&out), "");
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["run"],
            "the following required arguments were not provided",
        ),
        (
            &["check"],
            "the following required arguments were not provided",
        ),
        (
            &["run", "--bogus", "scenarios/library"],
            "unexpected argument '--bogus'",
        ),
        (
            &["check", "--seed", "3", "scenarios/library"],
            "unexpected argument '--seed'",
        ),
        (
            &["run", "--jobs", "many", "scenarios/library"],
            "invalid value 'many'",
        ),
        (
            &["run", "--seed", "-1", "scenarios/library"],
            "unexpected argument '-1'",
        ),
        (
            &["run", "--report"],
            "a value is required for '--report <FILE>'",
        ),
    ];
    for (args, fragment) in cases {
        let out = mktme_sim(args);
        assert_code(&out, 2, &format!("{args:?}"));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert!(
            stderr(&out).contains(fragment),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed scenario files
// ---------------------------------------------------------------------------------------------

/// One core's ops on line 3, from column 9.
fn ops(ops: &str) -> String {
    format!("(\n    cores: [(ops: [\n        {ops}\n    ])],\n)\n")
}

/// Two labelled ops on core 0 (`r1`, a load at 3:9, and `s`, a store at 3:41), and `expect` on
/// line 6 from column 9.
fn expect(expect: &str) -> String {
    format!(
        "(\n    cores: [(ops: [\n        load(at: virt(0), label: \"r1\"), store(at: virt(0), data: u8(1), label: \"s\"),\n    ])],\n    expect: [\n        {expect}\n    ],\n)\n"
    )
}

/// A top-level field on line 2, from column 5.
fn top(field: &str) -> String {
    format!("(\n    {field}\n    cores: [],\n)\n")
}

struct Case {
    what: &'static str,
    text: Vec<u8>,
    line: usize,
    column: usize,
    fragment: &'static str,
}

fn case(
    what: &'static str,
    text: impl Into<Vec<u8>>,
    line: usize,
    column: usize,
    fragment: &'static str,
) -> Case {
    Case {
        what,
        text: text.into(),
        line,
        column,
        fragment,
    }
}

fn malformed_cases() -> Vec<Case> {
    vec![
        // ---- not a scenario at all ----
        case("empty file", "", 1, 1, "the file is empty"),
        case("only blank lines", "  \n\n \n", 1, 1, "the file is empty"),
        case(
            "bytes that are not UTF-8",
            &b"(\n  name: \"a\xff\xfeb\",\n  cores: [])"[..],
            2,
            11,
            "byte 0xff is not UTF-8 text",
        ),
        case(
            "control-character garbage",
            "\u{0}\u{1}\u{7f}garbage",
            1,
            1,
            "Expected opening `(` for struct `scenario`",
        ),
        // ---- syntax ----
        case(
            "missing closing paren",
            "(\n    cores: [(ops: [mfence])]\n",
            2,
            29,
            "unexpected end of the file",
        ),
        case(
            "missing comma between ops",
            ops("mfence sfence"),
            3,
            16,
            "Expected comma",
        ),
        case(
            "unterminated string",
            "(name: \"abc, cores: [])",
            1,
            8,
            "Expected end of string",
        ),
        case(
            "unclosed comment",
            "(cores: []) /* never",
            1,
            13,
            "Unclosed block comment",
        ),
        case(
            "text after the scenario",
            "(cores: [])\n\n   xyz\n",
            3,
            4,
            "unexpected text after the scenario's closing `)`",
        ),
        // ---- unknown names, wrong types ----
        case(
            "unknown top-level field",
            top("cpus: 2,"),
            2,
            5,
            "Unexpected field named `cpus` in `scenario`",
        ),
        case(
            "unknown machine section",
            top("machine: (cpu: (issue_width: 2)),"),
            2,
            15,
            "Unexpected field named `cpu` in `machine`",
        ),
        case(
            "unknown op",
            ops("mfence, lod(at: virt(1))"),
            3,
            17,
            "Unexpected variant named `lod` in enum `op`",
        ),
        case(
            "unknown field of an op",
            ops("load(at: virt(0), size: 8)"),
            3,
            27,
            "Unexpected field named `size` in `load`",
        ),
        case(
            "unknown errno",
            ops("munmap(addr: 0, len: 4096, expect: err(eperm))"),
            3,
            48,
            "Unexpected variant named `eperm` in enum `errno`",
        ),
        case(
            "text for a number",
            top("seed: \"one\","),
            2,
            11,
            "Expected integer",
        ),
        case(
            "u8 of 256",
            ops("store(at: virt(0), data: u8(256))"),
            3,
            37,
            "out of bounds",
        ),
        case(
            "unknown preset",
            top("machine: (preset: \"huge\"),"),
            2,
            23,
            "unknown machine preset `huge`",
        ),
        case(
            "bad byte size",
            ops("mmap(addr: 0, len: \"8q\", prot: rw)"),
            3,
            29,
            "`8q` is not a byte count",
        ),
        // ---- the machine and the kernel ----
        case(
            "10^9 cores",
            top("machine: (caches: (cores: 1_000_000_000)),"),
            2,
            31,
            "cores = 1000000000 is out of range",
        ),
        case(
            "more programs than cores",
            "(\n    cores: [(ops: []), (ops: []), (ops: [mfence])],\n)\n",
            2,
            35,
            "3 programs for a machine of 2 core(s)",
        ),
        case(
            "kernel.keyids 64",
            top("kernel: (keyids: 64),"),
            2,
            22,
            "kernel.keyids 64 is outside 1..=63",
        ),
        case(
            "kernel.keyids 0",
            top("kernel: (keyids: 0),"),
            2,
            22,
            "kernel.keyids 0 is outside 1..=63",
        ),
        case(
            "frames not whole pages",
            top("kernel: (frames: (base: 0x4000_0000, size: 5000)),"),
            2,
            48,
            "kernel.frames.size 0x1388 is not a whole number of pages",
        ),
        case(
            "unit-less cycles_max 0",
            top("run: (cycles_max: 0),"),
            2,
            23,
            "run.cycles_max 0 is outside 1..=1000000000000",
        ),
        case(
            "cycles_max above 10^12",
            top("run: (cycles_max: 1_000_000_000_001),"),
            2,
            23,
            "run.cycles_max 1000000000001 is outside 1..=1000000000000",
        ),
        // ---- addresses and data ----
        case(
            "KeyID out of range in phys()",
            ops("load(at: phys(keyid: 64, addr: 0x10000))"),
            3,
            30,
            "KeyID 64 does not fit the machine's 6 KeyID bits: expected 0..=63",
        ),
        case(
            "phys address beyond DRAM",
            ops("load(at: phys(keyid: 0, addr: 0x4_0000_0000))"),
            3,
            39,
            "DRAM address 0x4_0000_0000 is beyond the machine's 0x4_0000_0000 bytes of DRAM",
        ),
        case(
            "load len 65",
            ops("load(at: virt(0), len: 65)"),
            3,
            32,
            "load len 65 is outside 1..=64",
        ),
        case(
            "store of 65 bytes",
            ops("store(at: virt(0), data: fill(byte: 1, len: 65))"),
            3,
            34,
            "store data is 65 bytes: expected 1..=64 bytes",
        ),
        case(
            "load len and expect disagree",
            ops("load(at: virt(0), len: 4, expect: u64(1))"),
            3,
            43,
            "load expect is 8 bytes but the load reads len 4",
        ),
        case(
            "load with expect and expect_fault",
            ops("load(at: virt(0), expect: u8(0), expect_fault: any)"),
            3,
            56,
            "a load cannot both return `expect` and fault",
        ),
        case(
            "bad hex digit",
            ops("store(at: virt(0), data: hex(\"00zz\"))"),
            3,
            38,
            "hex data: 'z' at character 3 is not a hex digit",
        ),
        case(
            "odd number of hex digits",
            ops("store(at: virt(0), data: hex(\"001\"))"),
            3,
            38,
            "hex data: 3 hex digits: expected an even number",
        ),
        case(
            "non-ASCII text",
            ops("store(at: virt(0), data: text(\"caf\u{e9}\"))"),
            3,
            39,
            "text data holds 'é': expected ASCII characters only",
        ),
        case(
            "pconfig_raw of the wrong length",
            ops("pconfig_raw(bytes: \"0011\")"),
            3,
            28,
            "pconfig_raw bytes are 2 bytes: expected exactly 192 bytes",
        ),
        case(
            "pconfig key of the wrong length",
            ops("pconfig(keyid: 1, command: set_key_direct, key: \"1234\")"),
            3,
            57,
            "pconfig key is 2 bytes (4 hex digits): expected 16 bytes",
        ),
        case(
            "mmap offset without a file",
            ops("mmap(addr: 0x7000_0000, len: \"4k\", prot: rw, offset: 4096)"),
            3,
            62,
            "mmap offset without a file",
        ),
        // ---- structure: labels, barriers, keys, nesting ----
        case(
            "duplicate label",
            ops("mfence, load(at: virt(0), label: \"x\"), load(at: virt(8), label: \"x\")"),
            3,
            73,
            "label `x` is already used on core 0 (by the op at 3:17)",
        ),
        case(
            "barrier on one core only",
            ops("barrier(\"lonely\")"),
            3,
            17,
            "barrier `lonely` is used by core 0 only",
        ),
        case(
            "unknown key name",
            ops("encrypt_mprotect(addr: 0x7000_0000, len: \"4k\", prot: rw, key: \"nokey\")"),
            3,
            71,
            "no add_key in the scenario adds key `nokey`",
        ),
        case(
            "expect inside a mispredict shadow",
            ops("mispredict([load(at: virt(0), expect: u8(0))])"),
            3,
            47,
            "`expect` inside mispredict",
        ),
        case(
            "repeat nested 17 deep",
            ops(&format!(
                "{}mfence{}",
                "repeat(times: 1, ops: [".repeat(17),
                "])".repeat(17)
            )),
            3,
            400,
            "ops nested 17 levels deep in repeat and mispredict blocks: expected at most 16",
        ),
        // ---- expectations ----
        case(
            "unknown label",
            expect("load(core: 0, label: \"r2\", value: u64(0)),"),
            6,
            30,
            "core 0 has no op labelled `r2`; its labels: `r1`, `s`",
        ),
        case(
            "load expectation naming a store",
            expect("load(core: 0, label: \"s\", value: u8(1)),"),
            6,
            30,
            "a `load` expectation needs a load, but `s` on core 0 is a store (at 3:41)",
        ),
        case(
            "expectation about a core without a program",
            expect("fault(core: 3, label: \"r1\"),"),
            6,
            21,
            "core 3 has no program",
        ),
        case(
            "misaligned violation line",
            expect("violation(kind: dual_dirty, line: 0x10010),"),
            6,
            43,
            "line 0x1_0010 is not 64-byte aligned",
        ),
        case(
            "plaintext of 8 bytes",
            expect("plaintext(keyid: 0, line: 0x10000, data: u64(1)),"),
            6,
            50,
            "plaintext data is 8 bytes: expected exactly 64",
        ),
        case(
            "cycles min above max",
            expect("cycles(min: 10, max: 5),"),
            6,
            21,
            "cycles min 10 is above max 5",
        ),
        case(
            "cycles without bounds",
            expect("cycles(),"),
            6,
            9,
            "cycles without bounds",
        ),
        // ---- the attacker ----
        case(
            "misaligned dump line",
            top("attacker: (dram_dumps: [(at: end, lines: [0x10008])]),"),
            2,
            47,
            "line 0x1_0008 is not 64-byte aligned",
        ),
        case(
            "dump after cycles_max",
            "(\n    run: (cycles_max: 1000),\n    attacker: (dram_dumps: [(at: cycle(2000), lines: [0x0])]),\n    cores: [],\n)\n",
            3,
            34,
            "dump at cycle 2000 is after run.cycles_max 1000",
        ),
        case(
            "too many dump lines",
            top("attacker: (dram_dumps: [(at: end, range: (start: 0, lines: 2_000_000))]),"),
            2,
            64,
            "the dumps hold more than 1048576 lines",
        ),
    ]
}

/// Runs `command` on the case's file in a fresh directory; `Err` says what went wrong.
fn check_case(command: &str, c: &Case) -> Result<(), String> {
    let dir = TempDir::new("malformed");
    let file = dir.write("scenario.ron", &c.text);
    let report = dir.path("report.json");
    let out = if command == "run" {
        mktme_sim(&[
            "run".as_ref(),
            "--report".as_ref(),
            report.as_os_str(),
            file.as_os_str(),
        ])
    } else {
        mktme_sim(&[command.as_ref(), file.as_os_str()])
    };
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    let place = format!("error: {}:{}:{}: ", file.display(), c.line, c.column);
    let mut problems = Vec::new();
    if out.status.code() != Some(2) {
        problems.push(format!("exit code {:?}, expected 2", out.status.code()));
    }
    if err_text.contains("panicked") {
        problems.push("panicked".to_owned());
    }
    if !out_text.is_empty() {
        problems.push(format!("stdout is not empty: {out_text:?}"));
    }
    match err_text.lines().collect::<Vec<_>>().as_slice() {
        [line] if line.starts_with(&place) => {
            if !line.contains(c.fragment) {
                problems.push(format!("the message lacks {:?}", c.fragment));
            }
        }
        _ => problems.push(format!("expected one line starting {place:?}")),
    }
    if report.exists() {
        problems.push("a report was written".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{command} / {}: {}\n    stderr: {err_text:?}",
            c.what,
            problems.join("; ")
        ))
    }
}

#[test]
fn malformed_files_are_rejected_with_their_place() {
    let cases = malformed_cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let whats: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.what).collect();
    assert_eq!(whats.len(), cases.len(), "case names must be distinct");
    let problems: Vec<String> = cases
        .iter()
        .filter_map(|c| check_case("check", c).err())
        .collect();
    assert!(
        problems.is_empty(),
        "{} of {} malformed files handled wrongly:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

#[test]
fn run_rejects_malformed_files_like_check() {
    let cases = malformed_cases();
    let chosen = [
        "bytes that are not UTF-8",
        "unknown top-level field",
        "10^9 cores",
        "KeyID out of range in phys()",
        "unit-less cycles_max 0",
        "unknown label",
        "repeat nested 17 deep",
        "empty file",
    ];
    let problems: Vec<String> = chosen
        .iter()
        .map(|what| {
            cases
                .iter()
                .find(|c| c.what == *what)
                .unwrap_or_else(|| panic!("no case {what:?}"))
        })
        .filter_map(|c| check_case("run", c).err())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
