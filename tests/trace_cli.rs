//! `mktme-sim trace` through the binary: the DineroIV reference counts (validation-data.md,
//! section 1) on the strided trace, per phase too; the other trace formats; policies and
//! seeds; and what a user sees for bad input (exit code 2 and a message naming the problem).

use cache_model::{CacheConfig, SingleLevelSim};
use scenarios::formats::trace;
use serde_json::Value;
use sim_core::RngFactory;
use std::path::PathBuf;
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn mktme_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .args(args)
        .output()
        .expect("run mktme-sim")
}

/// Runs `trace` in cache-only mode (`--no-memory`: the default 32k:8:64 cache unless `args`
/// give `--cache`) with `args` and `--json`, expecting success; returns the report.
fn report(args: &[&str]) -> Value {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.extend(["--no-memory", "--json"]);
    let out = mktme_sim(&all);
    assert!(
        out.status.success(),
        "mktme-sim {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

/// Runs `trace` with `args`, expecting exit code 2; returns stderr.
fn usage_error(args: &[&str]) -> String {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.push("--no-memory");
    let out = mktme_sim(&all);
    assert_eq!(
        out.status.code(),
        Some(2),
        "mktme-sim {all:?} should fail with 2"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout after an error");
    String::from_utf8(out.stderr).unwrap()
}

fn count(level: &Value, field: &str) -> u64 {
    level[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {level}"))
}

/// A scratch file unique to this test process and `name`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, contents: &[u8]) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("mktme-sim-trace-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Scratch(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn strided_trace_reproduces_dinero() {
    let strided = data("strided.mtrace.gz");
    let r = report(&[
        strided.to_str().unwrap(),
        "--cache",
        "32k:8:64",
        "--repl",
        "lru",
    ]);
    assert_eq!(r["format"], "mtrace");
    assert_eq!(r["config"]["levels"]["l1d"]["sets"], 64);
    assert_eq!(r["input"]["accesses"], 33_968);
    let l1d = &r["levels"]["l1d"];
    let expected = [
        ("accesses", 38_576),
        ("reads", 31_743),
        ("writes", 6_833),
        ("misses", 20_146),
        ("read_misses", 15_360),
        ("write_misses", 4_786),
        ("hits", 18_430),
        ("multi_line", 4_608),
        ("lines_fetched", 20_146),
        ("writebacks", 4_786),
        ("writebacks_evicted", 4_615),
        ("writebacks_at_end", 171),
        ("bytes_written_to_memory", 306_304),
    ];
    for (field, want) in expected {
        assert_eq!(count(l1d, field), want, "{field}");
    }
}

#[test]
fn strided_phases_reproduce_dinero() {
    let strided = data("strided.mtrace.gz");
    // (trace lines, reads, writes, read misses, write misses, multi-block, bytes written)
    let phases = [
        ("A", 16_384, 16_384, 0, 2_048, 0, 0, 0),
        ("B", 17_584, 16_384, 1_200, 2_048, 1_200, 0, 76_800),
        ("C", 21_680, 20_480, 5_296, 4_097, 3_249, 4_096, 207_936),
        ("D", 29_872, 28_672, 5_296, 12_289, 3_249, 4_096, 207_936),
        ("E", 33_968, 31_743, 6_833, 15_360, 4_786, 4_608, 306_304),
    ];
    for (name, lines, reads, writes, rm, wm, multi, bytes) in phases {
        let limit = lines.to_string();
        let r = report(&[strided.to_str().unwrap(), "--limit", &limit]);
        assert_eq!(r["config"]["limit"], lines, "phase {name}");
        assert_eq!(r["input"]["accesses"], lines, "phase {name}");
        let l = &r["levels"]["l1d"];
        let got = [
            count(l, "reads"),
            count(l, "writes"),
            count(l, "read_misses"),
            count(l, "write_misses"),
            count(l, "multi_line"),
            count(l, "bytes_written_to_memory"),
        ];
        assert_eq!(got, [reads, writes, rm, wm, multi, bytes], "phase {name}");
        assert_eq!(
            count(l, "bytes_written_to_memory"),
            64 * (count(l, "writebacks_evicted") + count(l, "writebacks_at_end")),
            "phase {name}"
        );
    }
}

#[test]
fn the_table_shows_the_same_counts() {
    let strided = data("strided.mtrace.gz");
    let out = mktme_sim(&["trace", strided.to_str().unwrap(), "--no-memory"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |label: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row {label:?} in\n{text}"));
        line[label.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("accesses"), ["38576"]);
    assert_eq!(row("hits"), ["18430"]);
    assert_eq!(row("misses"), ["20146"]);
    assert_eq!(row("multi-line pieces"), ["4608"]);
    assert_eq!(row("  evicted"), ["4615"]);
    assert_eq!(row("  at end"), ["171"]);
    assert!(text.contains("32 KiB, 8-way, 64 B lines, 64 sets, lru, write-back, write-allocate"));
}

/// The Lackey trace of `/bin/true` through the binary agrees with the library run on the same
/// file, and its counts hang together.
#[test]
fn lackey_trace_of_a_real_program() {
    let path = data("true.lackey.gz");
    let r = report(&[path.to_str().unwrap(), "--cache", "16k:4:64"]);
    assert_eq!(r["format"], "lackey");

    let config = CacheConfig::with_size(16 * 1024, 4, 64).unwrap();
    let mut sim = SingleLevelSim::new(config.validate().unwrap(), RngFactory::new(0).fork("l1d"));
    let mut reader = trace::open(&path, None).unwrap();
    for access in reader.by_ref() {
        sim.access(access.unwrap());
    }
    let input = *sim.trace_counts();
    let s = sim.finish();

    assert_eq!(r["input"]["accesses"], input.accesses);
    assert_eq!(r["input"]["reads"], input.reads);
    assert_eq!(r["input"]["instructions"], reader.instructions().unwrap());
    let l = &r["levels"]["l1d"];
    let pairs = [
        ("accesses", s.accesses),
        ("hits", s.hits),
        ("misses", s.misses),
        ("read_misses", s.read_misses),
        ("write_misses", s.write_misses),
        ("multi_line", s.multi_line),
        ("writebacks_evicted", s.writebacks_evicted),
        ("writebacks_at_end", s.writebacks_at_end),
    ];
    for (field, want) in pairs {
        assert_eq!(count(l, field), want, "{field}");
    }
    // Consistency: pieces = trace accesses + extra pieces; hits + misses = accesses; every
    // miss fetches (write-allocate); nothing is written back that was never written.
    assert_eq!(
        count(l, "accesses"),
        input.accesses + count(l, "multi_line")
    );
    assert_eq!(count(l, "hits") + count(l, "misses"), count(l, "accesses"));
    assert_eq!(count(l, "reads") + count(l, "writes"), count(l, "accesses"));
    assert_eq!(count(l, "lines_fetched"), count(l, "misses"));
    assert!(count(l, "writebacks") <= count(l, "writes"));
    assert!(count(l, "misses") > 0 && count(l, "hits") > count(l, "misses"));
}

#[test]
fn champsim_xz_trace() {
    let r = report(&[data("synthetic.champsimtrace.xz").to_str().unwrap()]);
    assert_eq!(r["format"], "champsim");
    assert_eq!(r["input"]["instructions"], 1000);
    // Reads: i even (500), i % 3 == 0 (334), i % 5 == 0 (200); writes: i % 4 == 1 (250).
    assert_eq!(r["input"]["reads"], 500 + 334 + 200);
    assert_eq!(r["input"]["writes"], 250);
    // Whole-line accesses never cross lines.
    assert_eq!(r["levels"]["l1d"]["multi_line"], 0);
}

#[test]
fn every_policy_runs_and_random_follows_the_seed() {
    let path = data("true.lackey.gz");
    let p = path.to_str().unwrap();
    let lru = report(&[p, "--cache", "4k:4:64"]);
    for repl in ["plru", "srrip", "random"] {
        let r = report(&[p, "--cache", "4k:4:64", "--repl", repl]);
        assert_eq!(
            r["levels"]["l1d"]["accesses"], lru["levels"]["l1d"]["accesses"],
            "{repl}"
        );
        assert_ne!(
            r["levels"]["l1d"]["misses"], lru["levels"]["l1d"]["misses"],
            "{repl}"
        );
    }
    let name = |r: &Value| r["config"]["levels"]["l1d"]["replacement"].clone();
    assert_eq!(name(&report(&[p, "--repl", "plru"])), "tree-plru");
    let seeded =
        |seed: &str| report(&[p, "--cache", "4k:4:64", "--repl", "random", "--seed", seed]);
    let a = seeded("1");
    assert_eq!(a, seeded("1"), "same seed, same report");
    assert_ne!(
        a["levels"],
        seeded("2")["levels"],
        "another seed, other victims"
    );
}

#[test]
fn write_policies_change_the_memory_traffic() {
    let strided = data("strided.mtrace.gz");
    let s = strided.to_str().unwrap();
    let wt = report(&[s, "--write-through"]);
    let l = &wt["levels"]["l1d"];
    assert_eq!(wt["config"]["levels"]["l1d"]["write_hit"], "write-through");
    assert_eq!(count(l, "writebacks"), 0);
    assert_eq!(count(l, "writes_forwarded"), 6_833);
    let nwa = report(&[s, "--no-write-allocate"]);
    let l = &nwa["levels"]["l1d"];
    assert_eq!(count(l, "lines_fetched"), count(l, "read_misses"));
    assert_eq!(count(l, "writes_forwarded"), count(l, "write_misses"));
}

#[test]
fn malformed_lines_exit_2_naming_file_line_and_expectation() {
    let f = Scratch::new("bad.mtrace", b"# c\nR 0x10 8\nQ 0x10 8\n");
    let err = usage_error(&[f.arg()]);
    assert!(
        err.contains("bad.mtrace: line 3: expected \"R|W 0xADDR SIZE\", found \"Q 0x10 8\""),
        "{err}"
    );

    let f = Scratch::new("bad.lackey", b"==7== Lackey\n L 1000,8\n L 1000,x\n");
    let err = usage_error(&[f.arg()]);
    assert!(
        err.contains("bad.lackey: line 3: expected a Lackey line"),
        "{err}"
    );
    assert!(
        err.contains("found \" L 1000,x\" (SIZE must be a decimal number of bytes)"),
        "{err}"
    );
}

#[test]
fn a_truncated_champsim_trace_exits_2() {
    let mut bytes = vec![0u8; 64 * 2 + 10];
    bytes[32..40].copy_from_slice(&0x1000u64.to_le_bytes());
    let f = Scratch::new("cut.champsimtrace", &bytes);
    let err = usage_error(&[f.arg()]);
    assert!(
        err.contains("cut.champsimtrace: record 3 (byte offset 128) is truncated"),
        "{err}"
    );
}

#[test]
fn bad_cache_shapes_exit_2_naming_the_field() {
    let s = data("strided.mtrace.gz");
    let s = s.to_str().unwrap();
    let err = usage_error(&[s, "--cache", "24k:8:64"]);
    assert!(
        err.contains("--cache \"24k:8:64\": sets = 48 is not a power of two"),
        "{err}"
    );
    let err = usage_error(&[s, "--cache", "32k:0:64"]);
    assert!(err.contains("ways = 0"), "{err}");
    let err = usage_error(&[s, "--cache", "32k:8:48"]);
    assert!(
        err.contains("line_bytes = 48 is not a power of two"),
        "{err}"
    );
    let err = usage_error(&[s, "--cache", "32k:8"]);
    assert!(err.contains("expected SIZE:WAYS:LINE"), "{err}");
    let err = usage_error(&[s, "--cache", "32q:8:64"]);
    assert!(err.contains("SIZE \"32q\" is not a byte count"), "{err}");
    let err = usage_error(&[s, "--cache", "48k:6:64", "--repl", "plru"]);
    assert!(
        err.contains("ways = 6 does not suit replacement = tree-plru"),
        "{err}"
    );
}

#[test]
fn missing_and_unrecognisable_files_exit_2() {
    let err = usage_error(&["/nonexistent/x.mtrace"]);
    assert!(err.contains("/nonexistent/x.mtrace: cannot open"), "{err}");
    let f = Scratch::new("mystery.txt", b"hello\n");
    let err = usage_error(&[f.arg()]);
    assert!(
        err.contains("mystery.txt: cannot tell the trace format from the file name or the contents; pass --format mtrace|lackey|champsim"),
        "{err}"
    );
    // Forcing the format reads it as that format, and its first line is then malformed.
    let err = usage_error(&[f.arg(), "--format", "mtrace"]);
    assert!(
        err.contains("line 1: expected \"R|W 0xADDR SIZE\", found \"hello\""),
        "{err}"
    );
}
