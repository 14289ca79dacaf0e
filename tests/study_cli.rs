//! `mktme-sim sweep`, `merge`, `overhead` and every command's `--plot`, through the binary
//! (issue 13): a sweep's files are byte-identical whatever `--jobs` and however it is sharded;
//! the overhead report reproduces its figures on small inputs (a scenario and a trace) and
//! states the engine it assumed; each kind of picture is drawn from a small run with its
//! title, axis labels and series.
//!
//! Every run here is small (under a second each in a debug build).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mktme(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs and insists on exit 0; the standard output.
fn ok(args: &[&str]) -> String {
    let out = mktme(args);
    assert!(
        out.status.success(),
        "mktme-sim {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh folder for one test's outputs.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("study-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const SWEEP_FILES: [&str; 3] = ["results.jsonl", "results.csv", "sweep.json"];

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

fn assert_same_files(a: &Path, b: &Path) {
    for f in SWEEP_FILES {
        assert!(
            read(a, f) == read(b, f),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn a_sweep_writes_the_same_bytes_whatever_jobs_and_sharding() {
    let dir = scratch("identity");
    let sweep = "scenarios/sweeps/alias-policy.ron";
    let (j1, j2) = (dir.join("jobs1"), dir.join("jobs2"));
    ok(&["sweep", sweep, "--out", s(&j1), "--jobs", "1"]);
    ok(&["sweep", sweep, "--out", s(&j2), "--jobs", "2"]);
    assert_same_files(&j1, &j2);

    let (a, b) = (dir.join("shard1"), dir.join("shard2"));
    let said = ok(&[
        "sweep",
        sweep,
        "--out",
        s(&a),
        "--shard",
        "1/2",
        "--jobs",
        "2",
    ]);
    assert!(said.contains("4 of 8 points run"), "{said}");
    ok(&[
        "sweep",
        sweep,
        "--out",
        s(&b),
        "--shard",
        "2/2",
        "--jobs",
        "1",
    ]);
    // A shard holds every other point and says which shard it is.
    let shard_csv = String::from_utf8(read(&a, "results.csv")).unwrap();
    let points: Vec<&str> = shard_csv.lines().skip(1).map(|l| &l[..2]).collect();
    assert_eq!(points, ["0,", "2,", "4,", "6,"]);
    assert!(
        String::from_utf8(read(&a, "sweep.json"))
            .unwrap()
            .contains("\"shard\": \"1/2\"")
    );

    // Merged in either order, the shards give what one run gives.
    for (name, order) in [("merged-ab", [&a, &b]), ("merged-ba", [&b, &a])] {
        let merged = dir.join(name);
        let said = ok(&["merge", s(order[0]), s(order[1]), "--out", s(&merged)]);
        assert!(said.contains("merged 8 points"), "{said}");
        assert_same_files(&j1, &merged);
    }

    // The files themselves: a header of the point, the axes, then the metrics; one row a
    // point, in point order; the JSON lines say the same.
    let csv = String::from_utf8(read(&j1, "results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 9);
    assert!(
        lines[0].starts_with(
            "point,machine.caches.alias_policy,machine.caches.l1d.size,passed,violations,cycles,"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("0,none,16k,true,2,"), "{}", lines[1]);
    assert!(
        lines[8].starts_with("7,evict_other_keyids,128k,false,0,"),
        "{}",
        lines[8]
    );
    let jsonl = String::from_utf8(read(&j1, "results.jsonl")).unwrap();
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[7]["machine.caches.alias_policy"], "evict_other_keyids");
    assert_eq!(rows[7]["violations"], 0);
}

#[test]
fn a_trace_sweep_merges_from_three_shards_into_one_run() {
    let dir = scratch("trace-shards");
    let sweep = "scenarios/sweeps/trace-llc.ron";
    let whole = dir.join("whole");
    ok(&["sweep", sweep, "--out", s(&whole), "--jobs", "2"]);
    let shards: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("shard{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        ok(&[
            "sweep",
            sweep,
            "--out",
            s(d),
            "--shard",
            &shard,
            "--jobs",
            "1",
        ]);
    }
    let merged = dir.join("merged");
    ok(&[
        "merge",
        s(&shards[2]),
        s(&shards[0]),
        s(&shards[1]),
        "--out",
        s(&merged),
    ]);
    assert_same_files(&whole, &merged);
    let csv = String::from_utf8(read(&whole, "results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10, "9 points and the header");

    // A shard missing, or one given twice, is refused (exit 2) and nothing is written.
    let out = mktme(&[
        "merge",
        s(&shards[0]),
        s(&shards[1]),
        "--out",
        s(&dir.join("bad")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.join("bad/results.csv").exists());
    let out = mktme(&[
        "merge",
        s(&shards[0]),
        s(&shards[0]),
        s(&shards[1]),
        s(&shards[2]),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// The overhead report's JSON for `args`.
fn overhead_json(args: &[&str]) -> Value {
    let mut all = vec!["overhead"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&ok(&all)).unwrap()
}

/// The engine every default machine assumes: 4.15 ns each way, one line per DRAM cycle of
/// DDR4-2400 (1.2 GHz): 77.1 GB/s per direction, against a DRAM peak of 19.3 GB/s.
fn assert_default_engine(j: &Value) {
    let e = &j["engine"];
    assert!(
        (e["decrypt_latency_ns"].as_f64().unwrap() - 4.15).abs() < 1e-9,
        "{e}"
    );
    assert!(
        (e["encrypt_latency_ns"].as_f64().unwrap() - 4.15).abs() < 1e-9,
        "{e}"
    );
    assert_eq!(
        (e["lanes"].clone(), e["interval_cycles"].clone()),
        (1.into(), 1.into())
    );
    assert!(
        (e["throughput_gbps"].as_f64().unwrap() - 77.108).abs() < 1e-3,
        "{e}"
    );
    assert!(
        (e["dram_peak_gbps"].as_f64().unwrap() - 19.277).abs() < 1e-3,
        "{e}"
    );
}

fn cycles(run: &Value) -> u64 {
    run["cycles"].as_u64().unwrap()
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|v| (v - want).abs() < 1e-3)
}

#[test]
fn overhead_of_a_small_streaming_scenario() {
    // 256 lines written, then 512 read, through KeyID 1.
    let args = [
        "overhead",
        "scenarios/sweeps/workloads/stream.ron",
        "--set",
        "cores.0.ops.1.times=256",
        "--set",
        "cores.0.ops.2.times=512",
        "--slowdown",
        "64,4,16",
        "--jobs",
        "2",
    ];
    let j = overhead_json(&args[1..]);
    assert_default_engine(&j);
    assert_eq!(j["off_mode"], "ideal");
    assert_eq!((cycles(&j["on"]), cycles(&j["off"])), (19822, 18911));
    assert!(
        close(&j["overhead_percent"], 4.817),
        "{}",
        j["overhead_percent"]
    );
    assert!(close(&j["read_latency_added_ns"], 4.251));
    let on = &j["on"];
    assert_eq!(on["read_latency_ns"]["count"], 512);
    assert_eq!(on["dram_bursts"], 768);
    assert!(close(&on["read_latency_ns"]["p50"], 40.67));
    assert!(close(&on["dram_bandwidth_gbps"], 7.935));
    assert_eq!(on["decrypt"]["lines"], 512);
    assert_eq!(on["encrypt"]["lines"], 256);
    assert!(
        j["off"]["decrypt"].is_null(),
        "the ideal stage is no engine"
    );
    // Slowest last; the engine is the bottleneck from a sixteenth of its throughput on.
    let sweep: Vec<u64> = j["sweep"].as_array().unwrap().iter().map(cycles).collect();
    assert_eq!(sweep, [19822, 35105, 132253]);
    assert!(close(&j["bottleneck_gbps"], 4.819));

    // The table says the same, with the assumptions and what "off" means.
    let table = ok(&args);
    for want in [
        "engine assumed: decrypt 4.15 ns, encrypt 4.15 ns",
        "77.1 GB/s per direction (DRAM peak 19.3 GB/s)",
        "engine off: AES stage's timing removed",
        "overhead: +4.82% cycles; read latency 4.25 ns added on average",
        "engine-bound (>= 5% more cycles than the configured engine) from 4.82 GB/s",
    ] {
        assert!(table.contains(want), "{want:?} missing from\n{table}");
    }
}

#[test]
fn plaintext_takes_the_whole_engine_away_where_bypass_leaves_mktme_keys() {
    // The streaming workload goes through KeyID 1, which its PCONFIG programs: TME bypass
    // leaves it encrypted; --plaintext programs it KEYID_NO_ENCRYPT, so no line meets the
    // engine, and the run matches the ideal stage's cycle for cycle.
    let small = [
        "scenarios/sweeps/workloads/stream.ron",
        "--set",
        "cores.0.ops.1.times=256",
        "--set",
        "cores.0.ops.2.times=512",
        "--no-sweep",
    ];
    let with = |mode: &[&str]| {
        let mut args = small.to_vec();
        args.extend_from_slice(mode);
        overhead_json(&args)
    };
    let bypass = with(&["--bypass"]);
    assert_eq!(
        bypass["off"]["decrypt"]["lines"], 512,
        "KeyID 1 stays encrypted"
    );
    assert_eq!(bypass["off"]["encrypt"]["lines"], 256);
    let plain = with(&["--plaintext"]);
    assert_eq!(plain["off_mode"], "plaintext");
    assert!(
        plain["off_meaning"]
            .as_str()
            .unwrap()
            .contains("KEYID_NO_ENCRYPT")
    );
    assert_eq!(plain["off"]["decrypt"]["lines"], 0);
    assert_eq!(plain["off"]["encrypt"]["lines"], 0);
    let ideal = with(&[]);
    assert_eq!(cycles(&plain["on"]), cycles(&ideal["on"]));
    assert_eq!(cycles(&plain["off"]), cycles(&ideal["off"]));
    assert_eq!(cycles(&plain["off"]), 18911);
    // The two flags are one choice.
    let mut both = vec!["overhead"];
    both.extend_from_slice(&small);
    both.extend_from_slice(&["--bypass", "--plaintext"]);
    let out = Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .args(&both)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn overhead_of_a_trace_with_tme_bypass() {
    let trace = "tests/data/true.lackey.gz";
    let j = overhead_json(&[
        trace,
        "--limit",
        "4000",
        "--slowdown",
        "8,64",
        "--jobs",
        "2",
    ]);
    assert_default_engine(&j);
    assert_eq!((cycles(&j["on"]), cycles(&j["off"])), (7602, 7360));
    assert!(close(&j["overhead_percent"], 3.288));
    let sweep: Vec<u64> = j["sweep"].as_array().unwrap().iter().map(cycles).collect();
    assert_eq!(sweep, [8561, 36730]);
    assert!(close(&j["bottleneck_gbps"], 9.639));

    // TME bypass takes KeyID 0 (the trace's) out of the engine: the same plaintext path.
    let j = overhead_json(&[trace, "--limit", "4000", "--bypass", "--no-sweep"]);
    assert_eq!(j["off_mode"], "bypass");
    assert!(j["off_meaning"].as_str().unwrap().contains("TME bypass"));
    assert!(cycles(&j["off"]) < cycles(&j["on"]));
    assert_eq!(
        j["off"]["decrypt"]["lines"], 0,
        "bypassed lines skip the engine"
    );
    assert_eq!(j["sweep"].as_array().unwrap().len(), 0);
}

/// The text of every `<text>` element of an SVG, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..t.find("</text>")?];
            Some(body.trim().replace("&apos;", "'"))
        })
        .collect()
}

/// Reads a picture and checks that it has each of `want` as a text (title, axis labels,
/// series names).
fn assert_picture(path: &Path, want: &[&str]) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.starts_with("<svg"), "{}", path.display());
    let have = texts(&svg);
    for w in want {
        assert!(
            have.iter().any(|t| t == w),
            "{}: no {w:?} in {have:?}",
            path.display()
        );
    }
}

const LATENCY: [&str; 3] = [
    "DRAM read latency",
    "read latency (ns, accept to data out of the decrypt stage)",
    "reads",
];
const BANDWIDTH: [&str; 5] = [
    "Memory bandwidth over time",
    "simulated time (us)",
    "GB/s",
    "read",
    "write",
];

#[test]
fn run_draws_latency_traffic_bandwidth_and_the_line_timeline() {
    let dir = scratch("plot-run");
    ok(&[
        "run",
        "scenarios/library/alias-without-flush.ron",
        "--plot",
        s(&dir),
    ]);
    let d = dir.join("alias-without-flush");
    assert_picture(&d.join("read-latency.svg"), &LATENCY);
    assert_picture(&d.join("bandwidth.svg"), &BANDWIDTH);
    assert_picture(
        &d.join("keyid-traffic.svg"),
        &[
            "Memory traffic per KeyID",
            "KeyID",
            "lines",
            "KeyID 1",
            "KeyID 2",
            "lines read",
            "lines written",
        ],
    );
    // The aliasing bug at a glance: both aliases' lanes, the PCONFIGs, flushes and
    // violations on the line the first violation names.
    assert_picture(
        &d.join("line-timeline.svg"),
        &[
            "DRAM line 0x10000: copies per KeyID alias and cache",
            "cycle",
            "KeyID 1 core0 L1D",
            "KeyID 1 LLC",
            "KeyID 1 DRAM",
            "KeyID 2 core0 L1D",
            "KeyID 2 DRAM",
            "PCONFIG KeyID 1",
            "PCONFIG KeyID 2",
            "CLFLUSH KeyID 2",
            "violation: dual_dirty",
            "violation: data_loss",
            "dirty copy",
            "clean copy",
            "write-back to DRAM (triangle)",
        ],
    );
}

#[test]
fn trace_draws_latency_traffic_and_bandwidth() {
    let dir = scratch("plot-trace");
    ok(&[
        "trace",
        "tests/data/true.lackey.gz",
        "--limit",
        "2000",
        "--plot",
        s(&dir),
    ]);
    assert_picture(&dir.join("read-latency.svg"), &LATENCY);
    assert_picture(&dir.join("bandwidth.svg"), &BANDWIDTH);
    assert_picture(
        &dir.join("keyid-traffic.svg"),
        &["Memory traffic per KeyID", "KeyID 0", "lines read"],
    );
}

#[test]
fn overhead_draws_cycles_and_bandwidth_against_the_engine() {
    let dir = scratch("plot-overhead");
    let trace = "tests/data/true.lackey.gz";
    ok(&[
        "overhead",
        trace,
        "--limit",
        "1000",
        "--slowdown",
        "4",
        "--plot",
        s(&dir),
    ]);
    let x = "engine throughput per direction (GB/s, log scale)";
    assert_picture(
        &dir.join("overhead-cycles.svg"),
        &[
            "Cycles against the engine's throughput",
            x,
            "cycles",
            "engine on",
            "engine off",
        ],
    );
    assert_picture(
        &dir.join("overhead-bandwidth.svg"),
        &[
            "Sustained DRAM bandwidth against the engine's throughput",
            x,
            "DRAM bandwidth (GB/s)",
        ],
    );
}

#[test]
fn sweep_draws_each_metric_against_each_axis() {
    let dir = scratch("plot-sweep");
    ok(&[
        "sweep",
        "scenarios/sweeps/alias-policy.ron",
        "--out",
        s(&dir.join("out")),
        "--plot",
        s(&dir.join("plots")),
    ]);
    let plots = dir.join("plots");
    let mut files: Vec<String> = std::fs::read_dir(&plots)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    // 14 numeric metrics (all but `passed`) against 2 axes.
    assert_eq!(files.len(), 28, "{files:?}");
    assert_picture(
        &plots.join("sweep-cycles-vs-machine_caches_l1d_size.svg"),
        &[
            "cycles against machine.caches.l1d.size",
            "machine.caches.l1d.size",
            "cycles",
            "machine.caches.alias_policy=none",
            "machine.caches.alias_policy=evict_other_keyids",
            "16k",
            "128k",
        ],
    );
    assert_picture(
        &plots.join("sweep-violations-vs-machine_caches_alias_policy.svg"),
        &[
            "violations against machine.caches.alias_policy",
            "none",
            "evict_other_keyids",
            "machine.caches.l1d.size=32k",
        ],
    );
}

#[test]
fn bench_crypto_draws_throughput_by_batch_and_threads() {
    let dir = scratch("plot-bench");
    ok(&[
        "bench-crypto",
        "--seconds",
        "0.002",
        "--rounds",
        "1",
        "--buffer-kib",
        "16",
        "--threads",
        "2",
        "--no-openssl",
        "--plot",
        s(&dir),
    ]);
    assert_picture(
        &dir.join("bench-crypto.svg"),
        &[
            "Host AES-XTS-128 throughput",
            "lines per encrypt_lines call (log scale)",
            "GB/s",
            "lines, 1 thread(s)",
            "lines, 2 thread(s)",
            "4 KiB pages, 1 thread(s)",
        ],
    );
}

#[test]
fn every_example_sweep_loads_with_every_point_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/sweeps");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ron") {
            // `load` builds every point's workload: a bad path or value fails here.
            let sweep = scenarios::sweep::Sweep::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen.push((sweep.name.clone(), sweep.points.len()));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("alias-policy".to_owned(), 8),
            ("stream-memory".to_owned(), 8),
            ("tenant-points".to_owned(), 3),
            ("trace-llc".to_owned(), 9),
        ]
    );
}
