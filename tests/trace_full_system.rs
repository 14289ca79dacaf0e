//! `mktme-sim trace` in full-system mode (issue 4): the MESI hierarchy, the memory controller
//! with AES-XTS and DRAM timing, driven by one trace core.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run_json(args: &[&str]) -> Value {
    let out = bin().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mktme-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `mktme-sim trace ARGS TRACE`, which must stop as bad input does: exit 2, no panic, no
/// report on stdout. Returns what it said on stderr.
fn trace_refused(args: &[&str], trace: &Path) -> String {
    let out = bin().arg("trace").args(args).arg(trace).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        !err.contains("panicked") && out.stdout.is_empty(),
        "{args:?}: {err}"
    );
    err
}

/// A blocking core with no prefetcher sees exactly DineroIV's L1D: the full hierarchy's first
/// level counts like validation-data.md section 1 (32 KiB, 8-way, LRU, write-back,
/// write-allocate), an independent check of the hierarchy against the reference.
#[test]
fn blocking_core_without_prefetch_reproduces_dinero_at_the_l1d() {
    let machine = write_temp(
        "dinero.ron",
        "(caches: (cores: 1, prefetch: (next_line: false, stride: false)))",
    );
    let trace = data("strided.mtrace.gz");
    let r = run_json(&[
        "trace",
        trace.to_str().unwrap(),
        "--machine",
        machine.to_str().unwrap(),
        "--outstanding",
        "1",
    ]);
    let l1d = &r["levels"]["l1d"];
    let got: Vec<u64> = [
        "accesses",
        "reads",
        "writes",
        "hits",
        "misses",
        "read_misses",
        "write_misses",
        "multi_line",
        "lines_fetched",
        "writebacks_evicted",
        "writebacks_at_end",
    ]
    .iter()
    .map(|k| l1d[k].as_u64().unwrap_or_else(|| panic!("levels.l1d.{k}")))
    .collect();
    assert_eq!(
        got,
        [
            38576, 31743, 6833, 18430, 20146, 15360, 4786, 4608, 20146, 4615, 171
        ]
    );
    assert_eq!(r["config"]["mode"], "full-system");
}

#[test]
fn full_system_report_has_every_level_and_the_memory_side() {
    let trace = data("strided.mtrace.gz");
    let r = run_json(&["trace", trace.to_str().unwrap(), "--limit", "5000"]);
    for level in ["l1d", "l2", "llc"] {
        for key in [
            "accesses",
            "reads",
            "writes",
            "hits",
            "misses",
            "read_misses",
            "write_misses",
            "multi_line",
            "lines_fetched",
            "writebacks_evicted",
            "writebacks_at_end",
        ] {
            assert!(
                r["levels"][level][key].is_u64(),
                "levels.{level}.{key} missing"
            );
        }
    }
    let mem = &r["memory"];
    // Every line the LLC fetched was read from DRAM and decrypted (KeyID 0, TME on).
    let llc_fetched = r["levels"]["llc"]["lines_fetched"].as_u64().unwrap();
    assert_eq!(mem["mc0.reads"].as_u64().unwrap(), llc_fetched);
    assert_eq!(mem["mc0.lines_decrypted"], mem["mc0.reads"]);
    assert!(mem["mc0.dram.acts"].as_u64().unwrap() > 0);
    // Every write-back the hierarchy sent reached DRAM encrypted by the end of the drain.
    let to_memory = r["hierarchy"]["mem_writes"].as_u64().unwrap();
    assert_eq!(mem["mc0.writes"].as_u64().unwrap(), to_memory);
    assert_eq!(mem["mc0.lines_encrypted"].as_u64().unwrap(), to_memory);
    let cycles = r["cycles"].as_u64().expect("cycles");
    assert!(cycles > 0);
    assert!(r["drained_cycles"].as_u64().expect("drained_cycles") >= cycles);
    assert_eq!(r["input"]["accesses"], 5000);
}

#[test]
fn same_trace_and_seed_give_identical_reports() {
    let trace = data("true.lackey.gz");
    let a = run_json(&["trace", trace.to_str().unwrap(), "--seed", "7"]);
    let b = run_json(&["trace", trace.to_str().unwrap(), "--seed", "7"]);
    assert_eq!(a, b);
    // A real program's Lackey trace runs through the whole machine.
    assert!(a["input"]["accesses"].as_u64().unwrap() > 10_000);
    assert!(a["levels"]["l1d"]["hits"].as_u64().unwrap() > 0);
}

#[test]
fn presets_and_keyids() {
    let trace = data("strided.mtrace.gz");
    let r = run_json(&[
        "trace",
        trace.to_str().unwrap(),
        "--machine",
        "server",
        "--keyid",
        "5",
        "--limit",
        "3000",
    ]);
    assert_eq!(r["config"]["controllers"], 2);
    assert_eq!(r["config"]["keyid"], 5);
    // Both controllers serve the 4 KiB-interleaved pages.
    assert!(r["memory"]["mc0.reads"].as_u64().unwrap() > 0);
    assert!(r["memory"]["mc1.reads"].as_u64().unwrap() > 0);
}

#[test]
fn bad_machine_input_is_exit_2_with_the_place() {
    let trace = data("strided.mtrace.gz");
    let t = trace.to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--machine".into(), "laptop".into()],
            "unknown machine preset `laptop`",
        ),
        (
            vec![
                "--machine".into(),
                write_temp("typo.ron", "(\n  caches: (cors: 2),\n)")
                    .display()
                    .to_string(),
            ],
            "typo.ron:2:",
        ),
        (
            vec![
                "--machine".into(),
                write_temp("sets.ron", "(caches: (l1d: (size: \"24k\")))")
                    .display()
                    .to_string(),
            ],
            "is not a power of two",
        ),
        (vec!["--keyid".into(), "64".into()], "KeyID 64"),
        (vec!["--outstanding".into(), "0".into()], "--outstanding 0"),
        (
            vec!["--machine".into(), "/nonexistent/m.ron".into()],
            "/nonexistent/m.ron",
        ),
        (vec!["--repl".into(), "srrip".into()], "add --cache"),
        (vec!["--write-through".into()], "add --cache"),
    ];
    for (extra, needle) in cases {
        let out = bin().arg("trace").arg(t).args(&extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
    }
}

/// A machine file's `memory.dram` may name a RON DRAM file, relative to the machine file's
/// folder (issue 9): the run uses that DRAM; a missing or malformed one is exit 2 naming the
/// field and the file.
#[test]
fn a_machine_file_may_name_a_dram_file() {
    let dram = Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .args(["dram-trace", "--print-dram", "--dram", "ddr4-3200"])
        .output()
        .unwrap();
    assert!(dram.status.success());
    let text = String::from_utf8(dram.stdout)
        .unwrap()
        .replace("\"ddr4-3200\"", "\"lab-ddr4\"");
    let dram_file = write_temp("lab-ddr4.ron", &text);
    let machine = write_temp("with-dram-file.ron", "(memory: (dram: \"lab-ddr4.ron\"))");
    let trace = data("strided.mtrace.gz");
    let t = trace.to_str().unwrap();
    let m = machine.to_str().unwrap();
    let r = run_json(&["trace", t, "--machine", m, "--limit", "2000"]);
    assert_eq!(r["config"]["dram"], "lab-ddr4");
    // The same DRAM under its preset name gives the same timing.
    let preset = write_temp("with-preset.ron", "(memory: (dram: \"ddr4-3200\"))");
    let p = run_json(&[
        "trace",
        t,
        "--machine",
        preset.to_str().unwrap(),
        "--limit",
        "2000",
    ]);
    assert_eq!(r["cycles"], p["cycles"]);

    let missing = write_temp("missing-dram.ron", "(memory: (dram: \"no-such.ron\"))");
    let malformed_dram = write_temp("malformed-dram.ron", "(name: \"x\", timing: ())");
    let malformed = write_temp("malformed.ron", "(memory: (dram: \"malformed-dram.ron\"))");
    let cases = [
        (
            &missing,
            [
                "memory.dram: cannot open DRAM file".to_owned(),
                "no-such.ron".to_owned(),
            ],
        ),
        (
            &malformed,
            [
                "memory.dram: ".to_owned(),
                format!("{}:1:", malformed_dram.display()),
            ],
        ),
    ];
    for (machine, needles) in cases {
        let out = bin()
            .args(["trace", t, "--machine", machine.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(machine.to_str().unwrap()), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(&needle), "{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(dram_file.exists());
}

/// Issue 15, findings 3 and 4: one access spanning 4 GiB runs in bounded memory (its line
/// pieces are made as they issue) and stops at `--cycles-max`, saying so, with the machine's
/// state; tests/bounded_memory.rs measures the memory.
#[test]
fn a_huge_access_stops_at_the_cycle_cap_with_the_state() {
    let trace = write_temp("huge.mtrace", "R 0x0 4294967295\n");
    let err = trace_refused(&["--physical", "--cycles-max", "20000"], &trace);
    assert!(
        err.contains("past cycles_max = 20000; machine state:")
            && err.contains("pieces waiting to issue 671"),
        "{err}"
    );
}

/// The trace core's shortcuts (an idle machine not stepped, L1D hits completed at once, the
/// trace read on a thread of its own) change nothing in the report: a real program's trace
/// and a miss-heavy one, on both presets, with and without them.
#[test]
fn no_shortcuts_gives_the_same_report() {
    let lackey = data("true.lackey.gz");
    let strided = data("strided.mtrace.gz");
    for (trace, machine, outstanding) in [
        (&lackey, "default", "8"),
        (&lackey, "server", "3"),
        (&strided, "default", "16"),
        (&strided, "server", "1"),
    ] {
        let args = [
            "trace",
            trace.to_str().unwrap(),
            "--machine",
            machine,
            "--outstanding",
            outstanding,
        ];
        let fast = run_json(&args);
        let mut exact = args.to_vec();
        exact.push("--no-shortcuts");
        assert_eq!(fast, run_json(&exact), "{args:?}");
        assert!(fast["input"]["pieces"].as_u64().unwrap() > 1000, "{args:?}");
    }
}

/// A trace address outside the machine stops the run with the access's index and address,
/// when that access's turn to issue comes: a run stopped earlier by `--cycles-max` reports
/// the cap (with the access still waiting), not the address.
#[test]
fn an_address_outside_the_machine_is_reported_when_its_turn_comes() {
    let trace = write_temp(
        "outside.mtrace",
        "R 0x1000 8\nW 0x2000 8\nR 0x100000000000 8\nR 0x3000 8\n",
    );
    let err = trace_refused(&["--physical", "--outstanding", "1"], &trace);
    assert!(
        err.contains("trace access 2 at 0x100000000000: DRAM address 0x100000000000 is beyond"),
        "{err}"
    );

    // The first two accesses miss all the way to DRAM and fill the window of two: the third is
    // taken from the trace but waits, and the cap falls before it issues.
    let err = trace_refused(
        &["--physical", "--outstanding", "2", "--cycles-max", "100"],
        &trace,
    );
    assert!(
        err.contains("past cycles_max = 100; machine state:")
            && err.contains("line pieces in flight 2 of 2; pieces waiting to issue 1;")
            && !err.contains("is beyond"),
        "{err}"
    );
}
