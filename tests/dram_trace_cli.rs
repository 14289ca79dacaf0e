//! `mktme-sim dram-trace`, end to end through the binary: the DRAMsim3 reference numbers,
//! the report formats, RON DRAM files, and every way input can be wrong (exit 2, never a
//! panic).

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dram_trace_cli-{name}"))
}

/// Writes a scratch file. Tests run in parallel and some write the same content under the
/// same name, so every call gets its own file (a test must never read another's half-written
/// file).
fn write_file(name: &str, text: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = tmp(&format!("{n}-{name}"));
    std::fs::write(&path, text).unwrap();
    path
}

fn mktme_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .arg("dram-trace")
        .args(args)
        .output()
        .expect("run mktme-sim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and expects exit 0.
fn ok(args: &[&str]) -> String {
    let o = mktme_sim(args);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    stdout(&o)
}

/// Runs and expects exit 2 without a panic; returns stderr.
fn bad(args: &[&str]) -> String {
    let o = mktme_sim(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {} stderr: {err}",
        stdout(&o)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(&all)).unwrap()
}

/// The validation trace: 4096 reads at 64*i, read i at cycle 200*i.
fn sequential_trace() -> PathBuf {
    let text: String = (0..4096u64)
        .map(|i| format!("{:#x} READ {}\n", 64 * i, 200 * i))
        .collect();
    write_file("sequential.trace", &text)
}

#[test]
fn the_reference_trace_reports_dramsim3_numbers() {
    let trace = sequential_trace();
    let v = json(&[trace.to_str().unwrap()]);
    assert_eq!(v["dram"], "ddr4-2400");
    assert_eq!(v["encryption"], false);
    assert_eq!(v["reads"], 4096);
    assert_eq!(v["writes"], 0);
    let hit = v["row_hit_rate"].as_f64().unwrap();
    assert!((hit - 0.9707).abs() < 0.000_05, "{hit}");
    let avg = v["avg_read_latency_cycles"].as_f64().unwrap();
    assert!((avg - 34.373).abs() < 0.000_5, "{avg}");
    assert_eq!(
        (&v["acts"], &v["pres"], &v["refs"]),
        (&120.into(), &119.into(), &175.into())
    );
    let hist = v["read_latency_histogram"].as_array().unwrap();
    let bucket = |l: u64| {
        hist.iter()
            .find(|b| b["latency_cycles"] == l)
            .map(|b| b["count"].as_u64().unwrap())
    };
    assert_eq!(
        (bucket(22), bucket(39), bucket(120)),
        (Some(3852), Some(32), Some(12))
    );
    let total: u64 = hist.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 4096);
    // cycles = last completion + 1; bandwidth = 64 B x bursts / (cycles x 0.83 ns).
    assert_eq!(v["cycles"], 819_024);
    let bw = v["bandwidth_gbps"].as_f64().unwrap();
    assert!(
        (bw - 4096.0 * 64.0 / (819_024.0 * 0.83)).abs() < 1e-9,
        "{bw}"
    );
    assert!((v["peak_bandwidth_gbps"].as_f64().unwrap() - 19.277_108).abs() < 1e-5);
}

#[test]
fn the_table_is_the_default_and_output_is_deterministic() {
    let trace = sequential_trace();
    let a = ok(&[trace.to_str().unwrap()]);
    assert!(a.contains("97.07 %"), "{a}");
    assert!(a.contains("34.373"), "{a}");
    assert!(a.contains("120 / 119 / 175"), "{a}");
    assert!(a.contains("22 x3852, 39 x32"), "{a}");
    let b = ok(&[trace.to_str().unwrap()]);
    assert_eq!(a, b);
}

#[test]
fn encryption_on_slows_each_reference_read_by_the_stage_latency() {
    let trace = sequential_trace();
    let off = json(&[trace.to_str().unwrap(), "--encryption", "off"]);
    let on = json(&[trace.to_str().unwrap(), "--encryption", "on"]);
    assert_eq!(on["encryption"], true);
    let d = on["avg_read_latency_cycles"].as_f64().unwrap()
        - off["avg_read_latency_cycles"].as_f64().unwrap();
    assert!((d - 5.0).abs() < 1e-9, "{d}");
    assert_eq!(on["acts"], off["acts"]);
}

#[test]
fn writes_and_presets() {
    let trace = write_file(
        "mixed.trace",
        "# reads and writes\n0x0 WRITE 0\n0x40 READ 10\n\n0x0 READ 20\n0x10000 WRITE 30\n",
    );
    for preset in ["ddr4-2400", "ddr4-3200", "ddr5-4800"] {
        let v = json(&[trace.to_str().unwrap(), "--dram", preset]);
        assert_eq!(v["dram"], preset);
        assert_eq!((&v["reads"], &v["writes"]), (&2.into(), &2.into()));
        // The read of 0x0 is answered from the pending write; both writes reach DRAM.
        assert_eq!(v["reads_forwarded"], 1);
        assert_eq!(v["write_cmds"], 2);
        assert!(v["bandwidth_gbps"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn a_ron_dram_file_round_trips_and_changes_timing() {
    let printed = ok(&["--print-dram", "--dram", "ddr4-2400"]);
    let same = write_file("same.ron", &printed);
    let trace = write_file("one-read.trace", "0x0 READ 0\n");
    let preset = json(&[trace.to_str().unwrap()]);
    let from_file = json(&[trace.to_str().unwrap(), "--dram", same.to_str().unwrap()]);
    assert_eq!(preset, from_file);
    assert_eq!(preset["avg_read_latency_cycles"], 39.0);

    let slower = printed
        .replace("name: \"ddr4-2400\"", "name: \"cl20\"")
        .replace("t_cl_cycles: 17,", "t_cl_cycles: 20,");
    assert_ne!(slower, printed);
    let slower = write_file("cl20.ron", &slower);
    let v = json(&[trace.to_str().unwrap(), "--dram", slower.to_str().unwrap()]);
    assert_eq!(v["dram"], "cl20");
    assert_eq!(v["avg_read_latency_cycles"], 42.0);
}

#[test]
fn bad_ron_files_are_located_and_explained() {
    let printed = ok(&["--print-dram"]);
    let unknown = write_file(
        "unknown-field.ron",
        &printed.replace(
            "t_cl_cycles: 17,",
            "t_cl_cycles: 17,\n        t_xyz_cycles: 1,",
        ),
    );
    let trace = write_file("one.trace", "0x0 READ 0\n");
    let err = bad(&[trace.to_str().unwrap(), "--dram", unknown.to_str().unwrap()]);
    assert!(err.contains("unknown-field.ron:"), "{err}");
    assert!(err.contains("t_xyz_cycles"), "{err}");

    let impossible = write_file(
        "impossible.ron",
        &printed.replace("t_rc_cycles: 56,", "t_rc_cycles: 50,"),
    );
    let err = bad(&[
        trace.to_str().unwrap(),
        "--dram",
        impossible.to_str().unwrap(),
    ]);
    assert!(
        err.contains("impossible.ron: timing.t_rc_cycles = 50"),
        "{err}"
    );

    let wide = write_file(
        "wide-field.ron",
        &printed.replacen(
            "low: 18,\n            width: 16,",
            "low: 60,\n            width: 16,",
            1,
        ),
    );
    let err = bad(&[trace.to_str().unwrap(), "--dram", wide.to_str().unwrap()]);
    assert!(err.contains("mapping.row = (low: 60, width: 16)"), "{err}");
}

#[test]
fn malformed_traces_name_file_line_and_expectation() {
    let cases = [
        (
            "0x0 READ 0\n0x40 READ 1\n0x80 LOAD 2\n",
            ":3: expected READ or WRITE, found `LOAD`",
        ),
        ("0x0 READ\n", ":1: expected a decimal DRAM cycle"),
        (
            "zz READ 0\n",
            ":1: expected a hexadecimal address starting with 0x",
        ),
        ("0x0 READ 0 9\n", ":1: expected the end of the line"),
        (
            "0x400000000 READ 0\n",
            ":1: DRAM address 0x400000000 is beyond the DRAM's 34 address bits",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = write_file(&format!("bad-{i}.trace"), text);
        let err = bad(&[path.to_str().unwrap()]);
        let located = format!("{}{expected}", path.display());
        assert!(err.contains(&located), "expected `{located}` in: {err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let err = bad(&["/nonexistent/trace"]);
    assert!(
        err.contains("cannot open trace /nonexistent/trace"),
        "{err}"
    );
    let trace = write_file("u.trace", "0x0 READ 0\n");
    let err = bad(&[trace.to_str().unwrap(), "--dram", "ddr3-1600"]);
    assert!(err.contains("ddr4-2400, ddr4-3200, ddr5-4800"), "{err}");
    let err = bad(&[]);
    assert!(err.contains("TRACE"), "{err}");
}

#[test]
fn the_cycle_cap_stops_a_run_with_the_controller_state() {
    let trace = sequential_trace();
    let err = bad(&[trace.to_str().unwrap(), "--max-cycles", "1000"]);
    assert!(err.contains("cycle cap of 1000 DRAM cycles"), "{err}");
    assert!(err.contains("channel 0: read queue"), "{err}");
}

/// Issue 15, finding 4: a request at cycle 10^18 ran for about a year (no default cap, idle
/// refreshes ticked through). The run now has a default cap of 10^10 DRAM cycles, and a
/// controller idle until a request past the cap stops at once, saying so, with its state.
#[test]
fn a_request_far_in_the_future_stops_at_the_cap_at_once() {
    let trace = write_file("far.trace", "0x40 READ 0\n0x80 READ 1000000000000000000\n");
    let started = std::time::Instant::now();
    let e = bad(&[trace.to_str().unwrap()]);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    assert!(
        e.contains("cycle cap of 10000000000 DRAM cycles reached (next cycle 1000000000000000000)")
            && e.contains("DRAM controller `ddr4-2400`")
            && e.contains("outstanding 0"),
        "{e}"
    );
    // Raised by --max-cycles, the cap still holds; below it, the far request is served.
    let e = bad(&["--max-cycles", "1000000000000", trace.to_str().unwrap()]);
    assert!(
        e.contains("cycle cap of 1000000000000 DRAM cycles reached"),
        "{e}"
    );
    let near = write_file("near.trace", "0x40 READ 0\n0x80 READ 100000000\n");
    let out = ok(&["--max-cycles", "200000000", near.to_str().unwrap()]);
    assert!(
        out.contains("reads                                    2"),
        "{out}"
    );
}
