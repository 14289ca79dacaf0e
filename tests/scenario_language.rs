//! The experiment language (issue 10): what a scenario can now say, each word tried where it
//! holds and where it must not, through the library (`validate` then `runner::run`, as
//! `mktme-sim run` calls them) and, for what a user reads, through the binary.

use scenarios::report::ScenarioReport;
use scenarios::runner::{self, RunOptions};
use scenarios::validate;
use std::process::{Command, Output};

/// Validates and runs `text` (named `t.ron`); panics with the error if it is not valid.
fn run_with(text: &str, options: &RunOptions) -> ScenarioReport {
    let s = validate::parse(text, "t.ron").unwrap_or_else(|e| panic!("{e}\n{text}"));
    runner::run(&s, options).unwrap_or_else(|e| panic!("{e}"))
}

fn run(text: &str) -> ScenarioReport {
    run_with(text, &RunOptions::default())
}

fn mktme_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mktme-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run mktme-sim")
}

/// A file under the system's temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("mktme-sim-language-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Every labelled load's value, bounded
// ---------------------------------------------------------------------------------------------

const LOOPED_LOAD: &str = r#"(
    cores: [(ops: [
        store(at: phys(keyid: 0, addr: 0x10000), data: u64(7)),
        repeat(times: 40, ops: [load(at: phys(keyid: 0, addr: 0x10000), label: "r")]),
        load(at: phys(keyid: 0, addr: 0x10040), len: 4),
    ])],
)"#;

#[test]
fn labelled_loads_are_reported_with_bounded_values() {
    let r = run(LOOPED_LOAD);
    assert_eq!(r.loads.len(), 1, "only the labelled load");
    let l = &r.loads[0];
    assert_eq!(l.label.as_deref(), Some("r"));
    assert_eq!((l.core, l.executions), (0, 40));
    assert_eq!(l.op, "t.ron:4:33");
    assert_eq!(l.summary, "load 8 bytes at phys keyid 0 0x1_0000");
    assert_eq!(l.values.len(), runner::LOAD_VALUES_KEPT);
    assert!(
        l.values
            .iter()
            .chain(&l.last)
            .all(|v| v.data == "0700000000000000" && v.keyid == 0 && v.addr == "0x10000")
    );
    let last = l.last.as_ref().expect("the 40th execution");
    assert!(last.cycle > l.values[15].cycle);

    // --all-loads records the unlabelled load too, in file order.
    let options = RunOptions {
        all_loads: true,
        ..RunOptions::default()
    };
    let r = run_with(LOOPED_LOAD, &options);
    assert_eq!(r.loads.len(), 2);
    assert_eq!(r.loads[1].label, None);
    assert_eq!(r.loads[1].executions, 1);
    assert_eq!(r.loads[1].values[0].addr, "0x10040");
}

#[test]
fn the_summary_shows_each_load_and_verbose_every_value() {
    let file = TempFile::new("loads.ron", LOOPED_LOAD);
    let out = mktme_sim(&["run", file.arg()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("    core 0 `r` "))
        .unwrap_or_else(|| panic!("no load line:\n{text}"));
    assert!(
        line.starts_with("    core 0 `r` (load 8 bytes at phys keyid 0 0x1_0000) at 4:33: 40 executions, first 0700000000000000 (cycle "),
        "{line}"
    );
    assert!(!text.contains("execution 40:"), "{text}");

    let out = mktme_sim(&["run", "-v", file.arg()]);
    let text = String::from_utf8(out.stdout).unwrap();
    for n in [1, 16, 40] {
        assert!(
            text.contains(&format!(
                "      execution {n}: 0700000000000000 (KeyID 0, DRAM 0x10000, cycle "
            )),
            "{text}"
        );
    }
    assert!(
        !text.contains("execution 17:"),
        "only 16 values and the last are kept"
    );

    let out = mktme_sim(&["run", "--all-loads", file.arg()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("    core 0 (load 4 bytes at phys keyid 0 0x1_0040) at 5:9: "),
        "{text}"
    );
    let out = mktme_sim(&["run", "-q", "-v", file.arg()]);
    assert_eq!(out.status.code(), Some(2), "-q and -v together");
}
