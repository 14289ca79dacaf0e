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

/// The error `text` is refused with.
fn invalid(text: &str) -> String {
    match validate::parse(text, "t.ron") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Each expectation's verdict, in file order.
fn verdicts(r: &ScenarioReport) -> Vec<bool> {
    r.expectations.iter().map(|e| e.ok).collect()
}

/// Every expectation's verdict and observation, for failure messages.
fn show(r: &ScenarioReport) -> String {
    r.expectations
        .iter()
        .map(|e| format!("{} {}: {}\n    {}", e.ok, e.place, e.expect, e.observed))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts the verdicts of the listed expectations (those after the first `skip`).
fn assert_verdicts(r: &ScenarioReport, skip: usize, want: &[bool]) {
    assert_eq!(&verdicts(r)[skip..], want, "\n{}", show(r));
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

// ---------------------------------------------------------------------------------------------
// 2. Negative and relational expectations on loads
// ---------------------------------------------------------------------------------------------

/// Two KeyIDs on one line: KeyID 1 writes, is flushed, and the line is read through both.
const TWO_ALIASES: &str = r#"(
    seed: 1,
    machine: (caches: (prefetch: (next_line: false, stride: false))),
    cores: [(ops: [
        pconfig(keyid: 1, command: set_key_random, expect: success),
        pconfig(keyid: 2, command: set_key_random, expect: success),
        store(at: phys(keyid: 1, addr: 0x10000), data: u64(0x1111)),
        load(at: phys(keyid: 1, addr: 0x10000), label: "own", expect: u64(0x1111)),
        clflush(at: phys(keyid: 1, addr: 0x10000)),
        mfence,
        load(at: phys(keyid: 2, addr: 0x10000), label: "alias", expect_not: u64(0x1111)),
        load(at: phys(keyid: 1, addr: 0x10000), label: "again"),
        repeat(times: 3, ops: [
            load(at: phys(keyid: 1, addr: 0x10000), label: "r1"),
            load(at: phys(keyid: 1, addr: 0x10000), label: "r2"),
        ]),
        load(at: phys(keyid: 1, addr: 0x10000), label: "once"),
    ])],
    expect: [
        load(core: 0, label: "alias", not: u64(0x1111)),
        load(core: 0, label: "again", same_as: (label: "own")),
        load(core: 0, label: "alias", not_same_as: (core: 0, label: "own")),
        load(core: 0, label: "again", written_through: 1),
        load(core: 0, label: "alias", not_written_through: 1),
        load(core: 0, label: "r1", same_as: (label: "r2")),

        load(core: 0, label: "own", not: u64(0x1111)),
        load(core: 0, label: "alias", same_as: (label: "own")),
        load(core: 0, label: "again", not_same_as: (label: "own")),
        load(core: 0, label: "alias", written_through: 1),
        load(core: 0, label: "again", not_written_through: 1),
        load(core: 0, label: "own", written_through: 2),
        load(core: 0, label: "r1", same_as: (label: "once")),
    ],
)"#;

#[test]
fn load_relations_hold_and_fail_as_they_should() {
    let r = run(TWO_ALIASES);
    // Inline: two PCONFIGs, `own`'s expect and `alias`'s expect_not hold.
    assert_eq!(verdicts(&r)[..4], [true; 4], "\n{}", show(&r));
    let listed = &[
        true, true, true, true, true, true, //
        false, false, false, false, false, false, false,
    ];
    assert_verdicts(&r, 4, listed);
    let e = &r.expectations;
    assert_eq!(
        e[4].expect,
        "core 0 `alias` (load 8 bytes at phys keyid 2 0x1_0000) at 11:9 never loads 1111000000000000"
    );
    assert!(e[5].expect.ends_with(
        "loads what core 0 `own` (load 8 bytes at phys keyid 1 0x1_0000) at 8:9, execution by execution"
    ));
    assert_eq!(
        e[9].observed, "all 3 executions as expected",
        "r1 and r2 pair up"
    );
    assert!(
        e[10].observed.starts_with("at cycle ")
            && e[10].observed.ends_with(": loaded 1111000000000000"),
        "{}",
        e[10].observed
    );
    // Why a written_through fails: what the KeyID had written, and when.
    assert!(
        e[13]
            .observed
            .contains("; KeyID 1's last store to the line (cycle "),
        "{}",
        e[13].observed
    );
    assert!(e[13].observed.ends_with(") left 1111000000000000 there"));
    assert!(
        e[15]
            .observed
            .ends_with(", and KeyID 2 had not written DRAM line 0x10000 by then"),
        "{}",
        e[15].observed
    );
    assert_eq!(
        e[16].observed,
        "the load ran 3 time(s) and the other 1: expected as many executions of each"
    );
    assert!(!r.passed);
}

#[test]
fn load_relations_are_checked_when_read() {
    let one = |expect: &str| {
        invalid(&format!(
            "(\n    cores: [(ops: [load(at: virt(0), label: \"a\"), load(at: virt(0), len: 4, label: \"b\"), store(at: virt(0), data: u8(1), label: \"s\")])],\n    expect: [\n        {expect}\n    ],\n)\n"
        ))
    };
    assert_eq!(
        one(r#"load(core: 0, label: "a")"#),
        "t.ron:4:9: a load expectation without a relation: expected one of `value`, `not`, `same_as`, `not_same_as`, `written_through` or `not_written_through`"
    );
    assert!(
        one(r#"load(core: 0, label: "a", value: u64(1), not: u64(2))"#).starts_with(
            "t.ron:4:55: a load expectation takes one relation, and this one gives `value`, `not`"
        ),
    );
    assert_eq!(
        one(r#"load(core: 0, label: "a", same_as: (label: "b"))"#),
        "t.ron:4:52: load `b` on core 0 reads 4 bytes and `a` 8: expected loads of one length"
    );
    assert_eq!(
        one(r#"load(core: 0, label: "a", same_as: (label: "a"))"#),
        "t.ron:4:52: `same_as` names load `a` itself: expected another load"
    );
    assert!(
        one(r#"load(core: 0, label: "a", not_same_as: (label: "s"))"#).contains(
            "a `not_same_as` expectation needs a load to compare with, but `s` on core 0 is a store"
        ),
    );
    assert!(
        one(r#"load(core: 0, label: "a", same_as: (core: 3, label: "b"))"#)
            .contains("core 3 has no program")
    );
    assert_eq!(
        one(r#"load(core: 0, label: "a", written_through: 64)"#),
        "t.ron:4:52: KeyID 64 does not fit the machine's 6 KeyID bits: expected 0..=63"
    );
    assert_eq!(
        one(r#"load(core: 0, label: "a", not: u32(1))"#),
        "t.ron:4:40: not is 4 bytes but load `a` reads 8: expected 8 bytes"
    );
    // Inline: expect_not is a value expectation like expect.
    let e = invalid("(cores: [(ops: [load(at: virt(0), expect: u8(1), expect_not: u8(2))])])");
    assert!(e.contains("cannot also return `expect_not`"), "{e}");
    let e = invalid("(cores: [(ops: [load(at: virt(0), expect_not: u8(2), expect_fault: any)])])");
    assert!(
        e.contains("a load cannot both return `expect_not` and fault"),
        "{e}"
    );
    let e = invalid("(cores: [(ops: [mispredict([load(at: virt(0), expect_not: u8(2))])])])");
    assert!(e.contains("`expect_not` inside mispredict"), "{e}");
    let e = invalid("(cores: [(ops: [load(at: virt(0), len: 2, expect_not: u8(2))])])");
    assert!(
        e.contains("load expect_not is 1 bytes but the load reads len 2"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A violation's lost bytes
// ---------------------------------------------------------------------------------------------

const LOSS: &str = r#"(
    seed: 1,
    machine: (caches: (prefetch: (next_line: false, stride: false))),
    cores: [(ops: [
        pconfig(keyid: 1, command: set_key_random),
        pconfig(keyid: 2, command: set_key_random),
        store(at: phys(keyid: 1, addr: 0x10000), data: u64(0x1111)),
        store(at: phys(keyid: 2, addr: 0x10000), data: u64(0x2222)),
        clflush(at: phys(keyid: 2, addr: 0x10000)),
        clflush(at: phys(keyid: 1, addr: 0x10000)),
        mfence,
    ])],
    expect: [
        violation(kind: data_loss, line: 0x10000, lost: (keyid: 2, data: u64(0x2222)), written: (keyid: 1, data: u64(0x1111))),
        violation(kind: data_loss, lost: (offset: 0, data: u16(0x2222))),
        violation(kind: data_loss, written: (keyid: 1)),

        violation(kind: data_loss, lost: (keyid: 1)),
        violation(kind: data_loss, line: 0x10000, lost: (offset: 8, data: u64(0x2222))),
        violation(kind: data_loss, line: 0x10040, lost: (keyid: 2)),
    ],
)"#;

#[test]
fn lost_bytes_hold_and_fail_as_they_should() {
    let r = run(LOSS);
    assert_verdicts(&r, 0, &[true, true, true, false, false, false]);
    let e = &r.expectations;
    assert_eq!(
        e[0].expect,
        "a data_loss violation on DRAM line 0x10000 where the lost line (KeyID 2) holds 2222000000000000 at byte 0 and the written line (KeyID 1) holds 1111000000000000 at byte 0"
    );
    assert!(
        e[0].observed.starts_with("data_loss at cycle ")
            && e[0]
                .observed
                .contains(" on line 0x10000: lost (KeyID 2) 2222000000000000"),
        "{}",
        e[0].observed
    );
    assert!(
        e[3].observed
            .starts_with("1 data_loss violation(s), none with those bytes; the first: "),
        "{}",
        e[3].observed
    );
    assert_eq!(e[5].observed, "no such data_loss violation found");

    let one = |expect: &str| {
        invalid(&format!(
            "(\n    cores: [],\n    expect: [\n        {expect}\n    ],\n)\n"
        ))
    };
    assert_eq!(
        one("violation(kind: dual_dirty, lost: (keyid: 1))"),
        "t.ron:4:43: `lost` describes a data loss's lines, and a dual_dirty violation has none: expected kind: data_loss"
    );
    assert_eq!(
        one("violation(kind: data_loss, written: (offset: 60, data: u64(1)))"),
        "t.ron:4:54: 8 bytes at offset 60 run past the 64-byte line: expected offset + length <= 64"
    );
    assert_eq!(
        one("violation(kind: data_loss, lost: (offset: 4))"),
        "t.ron:4:51: an offset without data: expected `data` to compare at the offset"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. What the attacker saw
// ---------------------------------------------------------------------------------------------

/// The same text through an encrypting KeyID (0x40000) and a no-encrypt one (0x40040), and the
/// same line written twice with the same bytes (0x40080), with writes to 24 other lines in
/// between (so that the memory controller's write buffer drains instead of merging the two).
fn sniffed() -> String {
    let others: String = (0..24)
        .map(|i| {
            let a = 0x50000 + 64 * i;
            format!(
                "store(at: phys(keyid: 1, addr: {a:#x}), data: u8(1)), clflush(at: phys(keyid: 1, addr: {a:#x})),"
            )
        })
        .collect();
    SNIFFED.replace("OTHERS", &others)
}

const SNIFFED: &str = r#"(
    seed: 9,
    machine: (caches: (prefetch: (next_line: false, stride: false))),
    cores: [(ops: [
        pconfig(keyid: 1, command: set_key_random, expect: success),
        pconfig(keyid: 2, command: no_encrypt, expect: success),
        store(at: phys(keyid: 1, addr: 0x40000), data: text("attack at dawn")),
        store(at: phys(keyid: 2, addr: 0x40040), data: text("attack at dawn")),
        clflush(at: phys(keyid: 1, addr: 0x40000)),
        clflush(at: phys(keyid: 2, addr: 0x40040)),
        repeat(times: 2, ops: [
            store(at: phys(keyid: 1, addr: 0x40080), data: u64(5)),
            clflush(at: phys(keyid: 1, addr: 0x40080)),
            mfence,
            OTHERS
        ]),
    ])],
    attacker: (
        bus_log: true,
        dram_dumps: [(at: end, lines: [0x40000, 0x40040], label: "end")],
    ),
    expect: [
        attacker(saw: bus_plaintext, lines: [0x40040]),
        attacker(saw: bus_plaintext, line: 0x40000, count: 0),
        attacker(saw: bus_repeated_ciphertext, line: 0x40080),
        attacker(saw: bus_repeated_ciphertext, min: 25, max: 25),
        attacker(saw: bus_transfers, line: 0x40000, count: 2),
        attacker(saw: bus_reads, line: 0x40000, count: 1),
        attacker(saw: bus_writes, line: 0x40080, min: 2, max: 2),
        attacker(saw: dump_line, dump: "end", line: 0x40040, data: hex("61747461636b206174206461776e0000 00000000000000000000000000000000 00000000000000000000000000000000 00000000000000000000000000000000")),
        attacker(saw: dump_plaintext, lines: [0x40040]),
        attacker(saw: dump_line, line: 0x40000, data: hex("61747461636b206174206461776e0000 00000000000000000000000000000000 00000000000000000000000000000000 00000000000000000000000000000000"), count: 0),

        attacker(saw: bus_plaintext, count: 0),
        attacker(saw: bus_plaintext, lines: [0x40000, 0x40040]),
        attacker(saw: bus_repeated_ciphertext, line: 0x40000),
        attacker(saw: bus_transfers, line: 0x40000, count: 1),
        attacker(saw: bus_writes, line: 0x40080, max: 1),
        attacker(saw: dump_line, dump: "end", line: 0x40000, data: hex("61747461636b206174206461776e0000 00000000000000000000000000000000 00000000000000000000000000000000 00000000000000000000000000000000")),
        attacker(saw: dump_plaintext, line: 0x40000),
    ],
)"#;

#[test]
fn attacker_findings_hold_and_fail_as_they_should() {
    let r = run(&sniffed());
    let mut want = vec![true; 10];
    want.extend([false; 7]);
    assert_verdicts(&r, 2, &want);
    let e = &r.expectations;
    assert_eq!(
        e[2].expect,
        "the attacker's bus_plaintext findings: exactly at lines [0x40040]"
    );
    assert_eq!(e[2].observed, "1 in all: 0x40040 x1");
    assert_eq!(e[12].observed, "1 in all: 0x40040 x1");
    assert_eq!(e[14].observed, "none");
    // The report lists the findings (not the dump lines, which are in dram_dumps).
    let findings = r.attacker_findings.as_ref().expect("findings");
    let plain: Vec<&str> = findings
        .iter()
        .filter(|f| f.kind == "bus_plaintext")
        .map(|f| f.line.as_str())
        .collect();
    assert_eq!(plain, ["0x40040"]);
    assert!(findings.iter().any(|f| f.kind == "dump_plaintext"
        && f.line == "0x40040"
        && f.dump.as_deref() == Some("end")));
    assert!(findings.iter().all(|f| f.kind != "dump_line"));
    assert_eq!(
        r.dram_dumps.as_ref().unwrap()[0].label.as_deref(),
        Some("end")
    );
}

#[test]
fn attacker_expectations_are_checked_when_read() {
    let one = |attacker: &str, expect: &str| {
        invalid(&format!(
            "(\n    cores: [],\n    attacker: {attacker},\n    expect: [\n        {expect}\n    ],\n)\n"
        ))
    };
    let dumps =
        "(dram_dumps: [(at: end, lines: [0x1000], label: \"d\"), (at: end, lines: [0x2000])])";
    assert_eq!(
        one("(dram_dumps: [])", "attacker(saw: bus_plaintext, count: 0)"),
        "t.ron:5:23: `bus_plaintext` is found in the bus log, and the attacker records none: expected `attacker: (bus_log: true)` in the scenario"
    );
    assert!(
        one("(bus_log: true)", "attacker(saw: dump_line)")
            .contains("`dump_line` is found in DRAM dumps, and the attacker takes none")
    );
    assert_eq!(
        one(dumps, "attacker(saw: dump_line, dump: \"e\")"),
        "t.ron:5:40: no DRAM dump is labelled `e`; the dumps' labels: `d`"
    );
    assert_eq!(
        one(dumps, "attacker(saw: dump_line, dump: \"d\", line: 0x2000)"),
        "t.ron:5:51: line 0x2000 is in no DRAM dump labelled `d`: expected a line the dumps hold"
    );
    assert!(
        one(dumps, "attacker(saw: dump_plaintext, line: 0x3000)")
            .contains("line 0x3000 is in no DRAM dump: ")
    );
    assert!(
        one("(bus_log: true)", "attacker(saw: bus_reads, data: u8(1))")
            .contains("`data` is a dump line's content, and `bus_reads` findings have none")
    );
    assert!(
        one(dumps, "attacker(saw: dump_line, data: u8(1))")
            .contains("dump line data is 1 bytes: expected exactly 64")
    );
    assert!(
        one(
            "(bus_log: true)",
            "attacker(saw: bus_reads, count: 1, max: 2)"
        )
        .contains("`count` is exact and `min`/`max` bound it")
    );
    assert!(
        one(
            "(bus_log: true)",
            "attacker(saw: bus_reads, min: 3, max: 2)"
        )
        .contains("min 3 is above max 2")
    );
    assert!(
        one(
            "(bus_log: true)",
            "attacker(saw: bus_reads, line: 0x40, lines: [0x40])"
        )
        .contains("expected one of them")
    );
    assert!(
        one("(bus_log: true)", "attacker(saw: bus_reads, dump: \"d\")")
            .contains("`dump` picks a DRAM dump")
    );
    assert!(
        one("(bus_log: true)", "attacker(saw: bus_reads, lines: [0x41])")
            .contains("line 0x41 is not 64-byte aligned")
    );
    assert!(one("(bus_log: true)", "attacker(saw: bus_mystery)").contains("bus_plaintext"));
    let e = invalid(
        "(cores: [], attacker: (dram_dumps: [(at: end, lines: [0x40], label: \"x\"), (at: end, lines: [0x80], label: \"x\")]))",
    );
    assert!(
        e.contains("dump label `x` is already used (by the dump at 1:37)"),
        "{e}"
    );
}

/// The plaintext analysis compares bytes: it finds plaintext wherever the memory side lets it
/// through (TME bypass for KeyID 0, the exclusion range), and none where it encrypts.
#[test]
fn plaintext_on_the_bus_under_bypass_and_the_exclusion_range() {
    let scenario = |tme: &str| {
        format!(
            r#"(
    machine: (caches: (prefetch: (next_line: false, stride: false)), memory: (tme: ({tme}))),
    cores: [(ops: [
        store(at: phys(keyid: 0, addr: 0x100000), data: text("in the exclusion range")),
        store(at: phys(keyid: 0, addr: 0x300000), data: text("outside it")),
        clflush(at: phys(keyid: 0, addr: 0x100000)),
        clflush(at: phys(keyid: 0, addr: 0x300000)),
        mfence,
    ])],
    attacker: (bus_log: true),
    expect: [attacker(saw: bus_plaintext, lines: [])],
)"#
        )
    };
    let plain = |tme: &str| -> Vec<String> {
        let r = run(&scenario(tme));
        r.attacker_findings
            .unwrap()
            .into_iter()
            .filter(|f| f.kind == "bus_plaintext")
            .map(|f| f.line)
            .collect()
    };
    assert_eq!(plain(""), Vec::<String>::new());
    assert_eq!(plain("bypass: true"), ["0x100000", "0x300000"]);
    assert_eq!(
        plain(r#"exclusion: (base: 0x100000, size: "1m")"#),
        ["0x100000"]
    );
    assert!(run(&scenario("")).passed);
    assert!(!run(&scenario("bypass: true")).passed);
}

// ---------------------------------------------------------------------------------------------
// 3. Repeat with an index
// ---------------------------------------------------------------------------------------------

/// The hex of a little-endian integer of `width` bytes.
fn le(v: u64, width: usize) -> String {
    v.to_le_bytes()[..width]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn an_index_steps_addresses_and_data() {
    let r = run(r#"(
    machine: (caches: (prefetch: (next_line: false, stride: false))),
    cores: [(ops: [
        pconfig(keyid: 1, command: set_key_random, expect: success),
        pconfig(keyid: 2, command: set_key_random, expect: success),
        repeat(times: 64, index: "i", ops: [
            store(at: phys(keyid: 0, addr: "0x10000 + 64*i"), data: u64("0x100 + i")),
        ]),
        repeat(times: 64, index: "i", ops: [
            load(at: phys(keyid: 0, addr: "0x10000 + 64*i"), label: "r"),
        ]),
        load(at: phys(keyid: 0, addr: 0x10fc0), label: "last", expect: u64(0x13f)),
        // Two indices, a KeyID that steps, and a count down.
        repeat(times: 2, index: "k", ops: [
            repeat(times: 4, index: "j", ops: [
                store(at: phys(keyid: "1 + k", addr: "0x20000 + 4096*k + 64*(3 - j)"), data: u8("16*k + j")),
            ]),
        ]),
        load(at: phys(keyid: 2, addr: 0x21000), len: 1, label: "k1j3", expect: u8(0x13)),
        load(at: phys(keyid: 1, addr: 0x200c0), len: 1, label: "k0j0", expect: u8(0x00)),
        // Virtual addresses, and a mispredicted path inside a stepped loop.
        mmap(addr: 0x7000_0000, len: "64k", prot: rw, expect: ok),
        repeat(times: 16, index: "p", ops: [
            store(at: virt("0x7000_0000 + 4096*p"), data: u32("p")),
            mispredict([load(at: virt("0x7000_0040 + 4096*p"))]),
        ]),
        load(at: virt(0x7000_f000), len: 4, label: "page15", expect: u32(15)),
    ])],
    expect: [no_faults, no_violations],
)"#);
    assert!(r.passed, "{}", show(&r));
    let l = &r.loads[0];
    assert_eq!((l.label.as_deref(), l.executions), (Some("r"), 64));
    for (k, v) in l.values.iter().enumerate() {
        assert_eq!(v.addr, format!("{:#x}", 0x10000 + 64 * k));
        assert_eq!(v.data, le(0x100 + k as u64, 8));
    }
    let last = l.last.as_ref().unwrap();
    assert_eq!(
        (last.addr.as_str(), last.data.as_str()),
        ("0x10fc0", &le(0x13f, 8)[..])
    );
    assert_eq!(l.summary, "load 8 bytes at phys keyid 0 \"0x10000 + 64*i\"");
}

#[test]
fn a_repeat_is_never_unrolled() {
    let s = validate::parse(
        r#"(cores: [(ops: [repeat(times: 1_000_000_000_000, index: "i", ops: [
            load(at: virt("0x1000 + 64*i")),
            store(at: virt("0x1000 + 64*i"), data: u64("i")),
        ])])])"#,
        "big.ron",
    )
    .unwrap();
    assert_eq!(s.ops.len(), 3);
    assert_eq!(
        s.ops[0].summary,
        "repeat 1000000000000 times (index `i`): 2 op(s)"
    );
}

#[test]
fn index_expressions_are_checked_over_every_iteration() {
    let one = |ops: &str| {
        invalid(&format!(
            "(\n    cores: [(ops: [\n        {ops}\n    ])],\n)\n"
        ))
    };
    assert_eq!(
        one(
            r#"repeat(times: 4096, index: "i", ops: [store(at: phys(keyid: 1, addr: "0x3_ffff_f000 + 64*i"), data: u8(1))])"#
        ),
        "t.ron:3:78: DRAM address 0x4_0003_efc0 is beyond the machine's 0x4_0000_0000 bytes of DRAM: expected an address below 0x4_0000_0000 (\"0x3_ffff_f000 + 64*i\" is 0x4_0003_efc0 at i = 4095)"
    );
    assert_eq!(
        one(
            r#"repeat(times: 4, index: "i", ops: [load(at: phys(keyid: 0, addr: "0x3_ffff_ff80 + 32*i"), len: 64)])"#
        ),
        "t.ron:3:74: 64 bytes at DRAM address 0x3_ffff_ffe0 (\"0x3_ffff_ff80 + 32*i\" at i = 3) run past the end of the machine's 0x4_0000_0000 bytes of DRAM: expected the access inside DRAM"
    );
    assert_eq!(
        one(r#"repeat(times: 70, index: "i", ops: [load(at: phys(keyid: "i", addr: 0x1000))])"#),
        "t.ron:3:66: KeyID 69 does not fit the machine's 6 KeyID bits: expected 0..=63 (\"i\" is 69 at i = 69)"
    );
    assert_eq!(
        one(r#"repeat(times: 300, index: "i", ops: [store(at: virt(0), data: u8("i"))])"#),
        "t.ron:3:74: 299 is out of bounds for u8: expected 0..=255 (\"i\" is 299 at i = 299)"
    );
    assert_eq!(
        one(r#"repeat(times: 3, index: "i", ops: [load(at: virt("0x10 - 16*i"))])"#),
        "t.ron:3:58: expression \"0x10 - 16*i\" is -16 at i = 2: expected values within 0..=0xffff_ffff_ffff_ffff"
    );
    assert_eq!(
        one(r#"repeat(times: 3, index: "i", ops: [load(at: virt("64*j"))])"#),
        "t.ron:3:58: expression \"64*j\": `j` is not an index; the enclosing repeats' indices: `i`"
    );
    assert_eq!(
        one(r#"load(at: virt("64*i"))"#),
        "t.ron:3:23: expression \"64*i\": `i` is not an index: no enclosing repeat has one (give it `index: \"i\"`)"
    );
    assert_eq!(
        one(r#"repeat(times: 3, index: "i", ops: [repeat(times: 2, index: "i", ops: [mfence])])"#),
        "t.ron:3:68: index `i` is already the index of an enclosing repeat: expected another name"
    );
    assert!(one(r#"repeat(times: 3, index: "2x", ops: [])"#).contains("index `2x` is not a name"));
    assert!(
        one(r#"repeat(times: 3, index: "i", ops: [load(at: virt(0), expect: u64("i"))])"#)
            .contains("steps with a repeat's index, and expected values cannot")
    );
    // Outside its repeat, an index is no name; a repeat that never runs checks nothing.
    assert!(
        one(r#"repeat(times: 3, index: "i", ops: []), load(at: virt("i"))"#)
            .contains("`i` is not an index")
    );
    validate::parse(
        r#"(cores: [(ops: [repeat(times: 0, index: "i", ops: [load(at: phys(keyid: 0, addr: "0x100 + 0x1_0000_0000_0000*i"))])])])"#,
        "t.ron",
    )
    .unwrap();
    assert!(one(r#"load(at: virt(-1))"#).contains("-1 is negative"));
}

// ---------------------------------------------------------------------------------------------
// 4. Several processes
// ---------------------------------------------------------------------------------------------

/// A host that owns two keys and gives each tenant its own; the tenants map the same virtual
/// address, each in its own address space.
const TENANTS: &str = r#"(
    seed: 5,
    processes: ["host", "vm1", "vm2"],
    machine: (caches: (cores: 3, prefetch: (next_line: false, stride: false))),
    cores: [
        (process: "host", ops: [
            add_key(key: "k1", payload: "type=cpu algorithm=aes-xts-128", expect: ok),
            add_key(key: "k2", payload: "type=cpu algorithm=aes-xts-128", expect: ok),
            share_key(key: "k1", with: "vm1", expect: ok),
            share_key(key: "k2", with: "vm2", expect: ok),
            barrier("keys"),
        ]),
        (process: "vm1", ring0: false, cap_sys_resource: false, ops: [
            barrier("keys"),
            share_key(key: "k1", with: "vm2", label: "not-owner", expect: err(eacces)),
            mmap(addr: 0x7000_0000, len: "4k", prot: rw, expect: ok),
            encrypt_mprotect(addr: 0x7000_0000, len: "4k", prot: rw, key: "k2", label: "not-viewer", expect: err(eacces)),
            encrypt_mprotect(addr: 0x7000_0000, len: "4k", prot: rw, key: "k1", expect: ok),
            store(at: virt(0x7000_0000), data: text("vm1 secret")),
            barrier("stored"),
            load(at: virt(0x7000_0000), len: 10, label: "own", expect: text("vm1 secret")),
        ]),
        (process: "vm2", ring0: false, cap_sys_resource: false, ops: [
            barrier("keys"),
            mmap(addr: 0x7000_0000, len: "4k", prot: rw, expect: ok),
            encrypt_mprotect(addr: 0x7000_0000, len: "4k", prot: rw, key: "k2", expect: ok),
            store(at: virt(0x7000_0000), data: text("vm2 secret")),
            barrier("stored"),
            load(at: virt(0x7000_0000), len: 10, label: "own", expect: text("vm2 secret")),
        ]),
    ],
    expect: [no_violations, no_faults],
)"#;

#[test]
fn processes_have_their_own_pages_and_share_keys_by_permission() {
    let r = run(TENANTS);
    assert!(r.passed, "{}", show(&r));
    let keys: Vec<(&str, Option<&str>, Vec<&str>, u64)> = r
        .keys
        .iter()
        .map(|k| {
            (
                k.name.as_str(),
                k.process.as_deref(),
                k.viewers.iter().map(String::as_str).collect(),
                k.pages,
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("k1", Some("host"), vec!["vm1"], 1),
            ("k2", Some("host"), vec!["vm2"], 1)
        ]
    );
    // Without processes, key reports say nothing of them.
    let r = run(LOOPED_LOAD);
    assert!(r.keys.is_empty());
}

#[test]
fn physical_addresses_from_ring_3_need_the_attacker() {
    let one = |core: &str| {
        format!(
            "(\n    cores: [{core}ops: [\n        load(at: phys(keyid: 0, addr: 0x1000), label: \"r\"),\n    ])],\n)\n"
        )
    };
    assert_eq!(
        invalid(&one("(ring0: false, ")),
        "t.ron:3:18: a physical address on core 0, which runs in ring 3: expected `ring0: true` or `attacker: true` on the core (a user program reaches memory through virtual addresses: mmap, then virt(..))"
    );
    let r = run(&one("(ring0: false, attacker: true, "));
    assert_eq!(r.loads[0].executions, 1);
    assert!(r.faults.is_empty());
    // Inside a mispredict shadow too: the file says what the core may do.
    let e = invalid(
        "(cores: [(ring0: false, ops: [mispredict([prefetch(at: phys(keyid: 0, addr: 0))])])])",
    );
    assert!(
        e.contains("a physical address on core 0, which runs in ring 3"),
        "{e}"
    );
}

#[test]
fn processes_are_checked_when_read() {
    assert_eq!(
        invalid("(processes: [\"a\", \"a\"], cores: [])"),
        "t.ron:1:19: process `a` is already declared (as process 0): expected process names unique"
    );
    assert!(
        invalid("(processes: [], cores: [])").contains("no processes: expected at least one name")
    );
    assert!(invalid("(processes: [\"\"], cores: [])").contains("an empty process name"));
    assert_eq!(
        invalid("(processes: [\"a\", \"b\"], cores: [(process: \"c\", ops: [])])"),
        "t.ron:1:43: no process is called `c`; the scenario's processes: `a`, `b`"
    );
    assert_eq!(
        invalid("(cores: [(process: \"c\", ops: [])])"),
        "t.ron:1:20: no process is called `c`: the scenario declares no processes (`processes: [\"c\", ...]`)"
    );
    let e = invalid(
        "(processes: [\"a\"], cores: [(ops: [add_key(key: \"k\", payload: \"type=no-encrypt\"), share_key(key: \"k\", with: \"b\")])])",
    );
    assert!(e.contains("no process is called `b`"), "{e}");
    let e = invalid("(processes: [\"a\"], cores: [(ops: [share_key(key: \"q\", with: \"a\")])])");
    assert!(e.contains("no add_key in the scenario adds key `q`"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// 5. run --set PATH=VALUE; folders with invalid files
// ---------------------------------------------------------------------------------------------

fn stdout_of(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn set_runs_one_file_under_several_configurations() {
    let lib = "scenarios/library/alias-without-flush.ron";
    // As written: the unflushed alias loses data.
    let out = mktme_sim(&["run", "-q", lib]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // The same file on a CPU that evicts other KeyIDs' copies: nothing is lost.
    let report = std::env::temp_dir().join(format!("mktme-sim-set-{}.json", std::process::id()));
    let out = mktme_sim(&[
        "run",
        "-q",
        "--set",
        "machine.caches.alias_policy=evict_other_keyids",
        "--set",
        "machine.caches.l1d.size=64k",
        "--set",
        "seed=77",
        "--report",
        report.to_str().unwrap(),
        lib,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    let s = &json["scenarios"][0];
    assert_eq!(s["seed"], 77);
    assert_eq!(
        s["overrides"],
        serde_json::json!([
            "machine.caches.alias_policy=evict_other_keyids",
            "machine.caches.l1d.size=64k",
            "seed=77"
        ])
    );
    // The CPU evicted the other alias: no data was lost, so the file's expectation fails.
    assert!(
        s["violations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["kind"] != "data_loss"),
        "{s}"
    );
    // A value that can only be text (a DRAM preset's name) leaves the file readable for the
    // overrides after it.
    let out = mktme_sim(&[
        "check",
        "--set",
        "machine.memory.dram=ddr5-4800",
        "--set",
        "seed=11",
        lib,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // --seed still wins over the file and --set alike.
    let out = mktme_sim(&["run", "-q", "--set", "seed=77", "--seed", "3", lib]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn set_errors_name_the_path() {
    let lib = "scenarios/library/alias-without-flush.ron";
    let cases: [(&[&str], &str); 7] = [
        (
            &["--set", "machine.caches.cores=1000"],
            "error: scenarios/library/alias-without-flush.ron: --set machine.caches.cores=1000: machine.caches: cores = 1000 is out of range: between 1 and 64\n",
        ),
        (
            &["--set", "machine.cache.cores=2"],
            "error: scenarios/library/alias-without-flush.ron: --set machine.cache.cores=2: Unexpected field named `cache` in `machine`, expected one of `preset`, `caches`, `memory`, or `core` instead\n",
        ),
        (
            &["--set", "seed=-1"],
            "error: scenarios/library/alias-without-flush.ron: --set seed=-1: Integer is out of bounds\n",
        ),
        (
            &["--set", "seed.low=1"],
            "error: scenarios/library/alias-without-flush.ron: --set seed.low=1: `seed` is a value, not a section: nothing can be set inside it (set it whole)\n",
        ),
        (
            &["--set", "cores.5.ring0=false"],
            "error: scenarios/library/alias-without-flush.ron: --set cores.5.ring0=false: the file has no element `cores.5`: --set changes list elements the file has, and adds none\n",
        ),
        (
            &["--set", "machine"],
            "error: --set machine: expected PATH=VALUE (such as machine.caches.cores=4)\n",
        ),
        (
            &["--set", "Machine.x=1"],
            "error: --set Machine.x: `Machine` is not a field name or a list position: expected a path such as machine.caches.l1d.size or cores.0.ring0\n",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.push(lib);
        let out = mktme_sim(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout_of(&out), "", "{args:?}");
        assert_eq!(stderr_of(&out), want, "{args:?}");
    }
    // check takes --set too; a bare word is text, and a machine preset by name works.
    let out = mktme_sim(&[
        "check",
        "--set",
        "machine.preset=server",
        "--set",
        "machine.caches.l2.size=4m",
        lib,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // A value error elsewhere in the file keeps its own place.
    let file = TempFile::new(
        "set-place.ron",
        "(\n    cores: [(ops: [load(at: virt(0), len: 65)])],\n)\n",
    );
    let out = mktme_sim(&["check", "--set", "seed=123456789", file.arg()]);
    assert_eq!(
        stderr_of(&out),
        format!(
            "error: {}:2:43: load len 65 is outside 1..=64\n",
            file.arg()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Concise output
// ---------------------------------------------------------------------------------------------

#[test]
fn violations_of_a_kind_are_summarised_and_verbose_shows_them_all() {
    let lib = "scenarios/library/kernel-flushes-off.ron";
    let text = stdout_of(&mktme_sim(&["run", lib]));
    assert!(
        text.contains("  coherency violations: 65 (dual_dirty x64, data_loss x1)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "    dual_dirty x64, KeyIDs [1, 0], 64 DRAM lines from 0x40000000 to 0x40000fc0, cycles "
        ),
        "{text}"
    );
    let starting = |t: &str, p: &str| t.lines().filter(|l| l.starts_with(p)).count();
    assert_eq!(starting(&text, "    dual_dirty at cycle "), 2, "{text}");
    assert!(text.contains("    ... and 62 more dual_dirty like these (-v shows them all)\n"));
    // A kind seen once is shown as it is.
    assert_eq!(starting(&text, "    data_loss at cycle "), 1);
    let verbose = stdout_of(&mktme_sim(&["run", "-v", lib]));
    assert_eq!(starting(&verbose, "    dual_dirty at cycle "), 64);
    assert!(!verbose.contains("more dual_dirty like these"));
    assert!(verbose.lines().count() > 3 * text.lines().count());
    // The library's whole default output stays short: under 40 lines a scenario on average
    // (it was under 400 lines for the 9 scenarios before the attacks issue; now 23).
    let all = stdout_of(&mktme_sim(&["run", "scenarios/library"]));
    let scenarios = std::fs::read_dir("scenarios/library").unwrap().count();
    assert!(
        all.lines().count() < 40 * scenarios,
        "{} lines for {scenarios} scenarios",
        all.lines().count()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. What the run made of each violation; the drain's order
// ---------------------------------------------------------------------------------------------

#[test]
fn a_reprogrammed_dirty_line_reads_back_under_the_new_key_in_this_run() {
    let r = run(r#"(
    seed: 4,
    machine: (caches: (prefetch: (next_line: false, stride: false))),
    cores: [(ops: [
        pconfig(keyid: 1, command: set_key_random, expect: success),
        store(at: phys(keyid: 1, addr: 0x10000), data: fill(byte: 0x55, len: 64)),
        load(at: phys(keyid: 1, addr: 0x20000)),
        pconfig(keyid: 1, command: set_key_random, expect: success),
    ])],
    expect: [
        violation(kind: reprogram_while_cached, line: 0x10000),
        violation(kind: reprogram_while_cached, line: 0x20000),
        // The dirty line, written back under the new key, reads back as it was.
        plaintext(keyid: 1, line: 0x10000, data: fill(byte: 0x55, len: 64)),
    ],
)"#);
    assert!(r.passed, "{}", show(&r));
    let after = |line: &str| {
        r.violations
            .iter()
            .find(|v| v.line == line)
            .and_then(|v| v.aftermath.clone())
            .unwrap()
    };
    let dirty = after("0x10000");
    assert!(
        dirty.starts_with("the copy was written back at cycle ")
            && dirty.ends_with(
                " (during the end-of-run drain), encrypted under the new key: through KeyID 1 the line reads back as that data, from before the key change"
            ),
        "{dirty}"
    );
    assert_eq!(
        after("0x20000"),
        "no write-back of this line through KeyID 1 followed the key change in this run"
    );
}

#[test]
fn the_drain_order_decides_an_unflushed_pair_and_the_report_says_so() {
    let s = validate::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/pass/drain-order.ron"
    )))
    .unwrap();
    let r = runner::run(&s, &RunOptions::default()).unwrap();
    assert!(r.passed, "{}", show(&r));
    let loss = r.violations.iter().find(|v| v.kind == "data_loss").unwrap();
    assert!(loss.in_drain);
    assert!(
        loss.aftermath
            .as_deref()
            .unwrap()
            .ends_with("through KeyID 2 the line reads as other data: the loss stands")
    );
    let pairs: Vec<(&str, bool, &str)> = r
        .violations
        .iter()
        .filter(|v| v.kind == "dual_dirty")
        .map(|v| (v.line.as_str(), v.in_drain, v.aftermath.as_deref().unwrap()))
        .collect();
    assert_eq!(pairs.len(), 2);
    assert!(
        pairs[0].2.starts_with("it led to the data_loss at cycle ")
            && pairs[0].2.ends_with(" (during the end-of-run drain)")
    );
    assert_eq!(
        pairs[1],
        (
            "0x40",
            false,
            "no data was lost on this line afterwards: whichever alias the run wrote back last carried the newer data"
        )
    );
    // The order is the model's, not the thread's: every run gives the same report.
    let again = runner::run(&s, &RunOptions::default()).unwrap();
    assert_eq!(
        scenarios::report::Report::new(vec![again]).to_json(),
        scenarios::report::Report::new(vec![r]).to_json()
    );
}

/// Expressions at the edges of their arithmetic are refused, never a panic.
#[test]
fn huge_expressions_are_refused_without_panicking() {
    for ops in [
        r#"repeat(times: 1_000_000_000_000, index: "i", ops: [load(at: virt("0x1_0000_0000_0000_0000_0000_0000 * i"))])"#,
        r#"repeat(times: 18446744073709551615, index: "i", ops: [store(at: virt("i * 0xffff_ffff_ffff_ffff"), data: u64("0 - i"))])"#,
        r#"repeat(times: 2, index: "i", ops: [load(at: phys(keyid: "0x1_0000_0000_0000_0000 - i", addr: "i"))])"#,
        r#"repeat(times: 2, index: "i", ops: [load(at: virt("(((((((((((((((((i))))))))))))))))"))])"#,
        r#"repeat(times: 2, index: "i", ops: [load(at: virt(""))])"#,
        r#"repeat(times: 2, index: "i", ops: [load(at: virt("é"))])"#,
    ] {
        let text = format!("(cores: [(ops: [{ops}])])");
        let _ = validate::parse(&text, "t.ron");
    }
}
