//! Issue 15, findings 5 to 8, end to end through the binary: what a hostile user can do with
//! standard output, report targets, huge files and strange text. (Findings 1 to 4 are in
//! tests/bounded_memory.rs, tests/trace_full_system.rs and tests/dram_trace_cli.rs.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile_input");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn mktme_sim(args: &[&str], stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .args(args)
        .stdout(stdout)
        .output()
        .expect("run mktme-sim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SMALL: &str = r#"(
    name: "small",
    cores: [(ops: [
        store(at: phys(keyid: 0, addr: 0x1000), data: u64(7)),
        load(at: phys(keyid: 0, addr: 0x1000), len: 8, label: "l", expect: u64(7)),
    ])],
)"#;

/// Finding 5: with `--report R` and a full standard output, the report used to be lost (the
/// summary was printed first, and the failure panicked). It is now written first.
#[cfg(target_os = "linux")]
#[test]
fn the_report_is_written_before_a_failing_summary() {
    let scenario = write("small.ron", SMALL.as_bytes());
    let report = dir().join("small.json");
    let _ = std::fs::remove_file(&report);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    let out = mktme_sim(&args, Stdio::from(full));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["scenarios"][0]["scenario"], "small");
}

/// Finding 6: a report target that is not a regular file (a device node, /dev/stdout, a
/// folder) is refused, and nothing is left beside it.
#[cfg(unix)]
#[test]
fn a_report_target_that_is_not_a_regular_file_is_refused() {
    use std::os::unix::fs::FileTypeExt;
    let scenario = write("small2.ron", SMALL.as_bytes());
    let folder = dir().join("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    for target in ["/dev/null", folder.to_str().unwrap()] {
        let args = ["run", scenario.to_str().unwrap(), "--report", target];
        let out = mktme_sim(&args, Stdio::null());
        assert_eq!(out.status.code(), Some(2), "{target}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not a regular file"),
            "{}",
            stderr(&out)
        );
    }
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

/// Finding 7: a scenario file above 64 MiB is refused before it is parsed (a 280 MB file ran
/// out of memory); the op count is bounded while parsing (scenarios/tests/malformed.rs,
/// `too_many_ops`).
#[test]
fn a_scenario_file_above_the_size_limit_is_refused_unread() {
    let mut text = SMALL.as_bytes().to_vec();
    text.resize((64 << 20) + 1, b' ');
    let big = write("big.ron", &text);
    let out = mktme_sim(&["check", big.to_str().unwrap()], Stdio::null());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the file is larger than 67108864 bytes (64 MiB)"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(big).unwrap();
}

/// Finding 8: user text in an error is escaped and cut: a newline cannot forge a
/// `file:line:col` line, an escape code does not reach the terminal, a 4 MiB label is not
/// echoed whole.
#[test]
fn user_text_in_errors_is_escaped_and_cut() {
    for label in [
        "x\nforged.ron:1:1: all is well".to_owned(),
        "\u{1b}[2J\u{1b}[31mred".to_owned(),
        "y".repeat(4 << 20),
    ] {
        let label_ron = label.replace('\n', "\\n").replace('\u{1b}', "\\u{1b}");
        let text = SMALL.replace(
            ")],\n)",
            &format!(")],\n    expect: [load(core: 0, label: \"{label_ron}\", value: u64(7))],\n)"),
        );
        let scenario = write("strange.ron", text.as_bytes());
        let out = mktme_sim(&["check", scenario.to_str().unwrap()], Stdio::null());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            !err.contains('\u{1b}') && !err.contains("\nforged"),
            "{err}"
        );
        assert!(err.len() < 2000, "{} bytes", err.len());
    }
}

/// Finding 8: a truncated .gz trace says where it failed and suggests truncation, instead of
/// "failed to fill whole buffer".
#[test]
fn a_truncated_gz_trace_names_its_position() {
    let mut text = String::new();
    for i in 0..20_000u64 {
        text.push_str(&format!("R 0x{:x} 8\n", i * 64));
    }
    let mut gz = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    gz.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let bytes = gz.wait_with_output().unwrap().stdout;
    let cut = write("cut.mtrace.gz", &bytes[..bytes.len() / 2]);
    let out = mktme_sim(&["trace", "--no-memory", path(&cut)], Stdio::null());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("truncated") && err.contains("line "), "{err}");
    assert!(!err.contains("failed to fill whole buffer"), "{err}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
