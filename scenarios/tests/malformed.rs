//! Malformed and impossible scenarios: each must fail with the exact place and a message that
//! names the problem, never panic. Plus random truncations and byte flips of a valid scenario.

use proptest::prelude::*;
use scenarios::scenario::Location;
use scenarios::validate::{parse, parse_bytes};

/// A one-core scenario: `ops` sits on line 3, starting at column 9.
fn ops(ops: &str) -> String {
    format!("(\n    cores: [(ops: [\n        {ops}\n    ])],\n)\n")
}

/// A one-core scenario with one labelled load on line 3, and `expect` on line 5 at column 9.
fn expect(expect: &str) -> String {
    format!(
        "(\n    cores: [(ops: [\n        load(at: virt(0), label: \"r1\"), store(at: virt(0), data: u8(1), label: \"s\"), prefetch(at: virt(0), label: \"pf\"),\n    ])],\n    expect: [\n        {expect}\n    ],\n)\n"
    )
}

/// A scenario whose `machine:` section is on line 2 (the section's `(` at column 14).
fn machine(machine: &str) -> String {
    format!("(\n    machine: ({machine}),\n    cores: [],\n)\n")
}

/// One malformed scenario: its text, where the error must be, and what the message must say.
struct Case {
    what: &'static str,
    text: String,
    line: usize,
    column: usize,
    fragment: &'static str,
}

fn case(
    what: &'static str,
    text: impl Into<String>,
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

fn cases() -> Vec<Case> {
    let raw_ok = "00".repeat(192);
    vec![
        // ---- syntax ----
        case("empty file", "", 1, 1, "the file is empty"),
        case("only whitespace", "  \n\n ", 1, 1, "the file is empty"),
        case(
            "binary garbage",
            "\u{0}\u{1}\u{7f}\u{1b}garbage",
            1,
            1,
            "Expected opening `(`",
        ),
        case(
            "missing closing paren",
            "(\n    cores: [(ops: [mfence])]\n",
            2,
            29,
            "unexpected end of the file: expected a scenario `( ... )`, complete with its closing brackets",
        ),
        case(
            "paren closed by a bracket",
            "(\n    cores: [(ops: [mfence]]\n",
            2,
            27,
            "Expected comma (or the closing bracket",
        ),
        case(
            "missing bracket in op list",
            ops("load(at: virt(1)) mfence"),
            3,
            27,
            "Expected comma",
        ),
        case(
            "trailing garbage",
            "(cores: [])\n\n   xyz\n",
            3,
            4,
            "unexpected text after the scenario",
        ),
        case(
            "bad string escape",
            "(name: \"a\\qb\", cores: [])",
            1,
            9,
            "Unknown escape",
        ),
        case(
            "unterminated string",
            "(name: \"abc, cores: [])",
            1,
            8,
            "Expected end of string",
        ),
        case(
            "unterminated comment",
            "(cores: []) /* never closed",
            1,
            13,
            "Unclosed block comment",
        ),
        case(
            "missing cores",
            "(\n    seed: 1,\n)",
            3,
            1,
            "missing field named `cores`",
        ),
        // ---- unknown names and wrong types ----
        case(
            "unknown top-level field",
            "(cores: [], colors: 3)",
            1,
            13,
            "Unexpected field named `colors` in `scenario`, expected one of",
        ),
        case(
            "unknown field in an op",
            ops("load(at: virt(1), lenght: 4)"),
            3,
            27,
            "Unexpected field named `lenght` in `load`, expected one of `at`, `len`",
        ),
        case(
            "unknown field in machine",
            machine("caches: (coress: 2)"),
            2,
            24,
            "Unexpected field named `coress` in `caches`",
        ),
        case(
            "unknown machine section",
            machine("cpu: (issue_width: 2)"),
            2,
            15,
            "Unexpected field named `cpu` in `machine`, expected one of `preset`, `caches`, `memory`, or `core`",
        ),
        case(
            "unknown field in machine core",
            machine("core: (store_buffer_entries: 2)"),
            2,
            22,
            "Unexpected field named `store_buffer_entries` in `core`",
        ),
        case(
            "unknown op",
            ops("mfence, lod(at: virt(1))"),
            3,
            17,
            "Unexpected variant named `lod` in enum `op`, expected one of `load`",
        ),
        case(
            "unknown prot",
            ops("mmap(addr: 0, len: 4096, prot: rwx)"),
            3,
            40,
            "Unexpected variant named `rwx` in enum `prot`",
        ),
        case(
            "string for a number",
            "(seed: \"one\", cores: [])",
            1,
            8,
            "Expected integer",
        ),
        case(
            "number for an address",
            ops("load(at: 0x1000)"),
            3,
            18,
            "Expected a name (a field, or a variant such as `virt(..)`), found `0x1000`",
        ),
        case(
            "pconfig keyid above 0xffff",
            ops("pconfig(keyid: 70000, command: clear_key)"),
            3,
            24,
            "out of bounds",
        ),
        case(
            "bad byte size",
            ops("mmap(addr: 0, len: \"8q\", prot: rw)"),
            3,
            29,
            "`8q` is not a byte count",
        ),
        // ---- addresses ----
        case(
            "KeyID out of range in phys",
            ops("load(at: phys(keyid: 64, addr: 0x10000))"),
            3,
            30,
            "KeyID 64 does not fit the machine's 6 KeyID bits: expected 0..=63",
        ),
        case(
            "DRAM address beyond capacity",
            ops("store(at: phys(keyid: 1, addr: 0x4_0000_0000), data: u8(1))"),
            3,
            40,
            "DRAM address 0x4_0000_0000 is beyond the machine's 0x4_0000_0000 bytes of DRAM",
        ),
        case(
            "phys access past the end of DRAM",
            ops("load(at: phys(keyid: 0, addr: 0x3_ffff_fffc), len: 8)"),
            3,
            39,
            "8 bytes at DRAM address 0x3_ffff_fffc run past the end",
        ),
        case(
            "KeyID beyond a narrow machine",
            "(\n    machine: (memory: (keyid_bits: 2, tme: (max_keys: 3))),\n    cores: [(ops: [clflush(at: phys(keyid: 4, addr: 0))])],\n)",
            3,
            44,
            "KeyID 4 does not fit the machine's 2 KeyID bits: expected 0..=3",
        ),
        // ---- lengths and data ----
        case(
            "load len 0",
            ops("load(at: virt(0), len: 0)"),
            3,
            32,
            "load len 0 is outside 1..=64",
        ),
        case(
            "load len 65",
            ops("load(at: virt(0), len: 65)"),
            3,
            32,
            "load len 65 is outside 1..=64",
        ),
        case(
            "load expect longer than 64",
            ops("load(at: virt(0), expect: fill(byte: 0, len: 65))"),
            3,
            35,
            "load len 65 is outside 1..=64",
        ),
        case(
            "expect length mismatch",
            ops("load(at: virt(0), len: 4, expect: u64(1))"),
            3,
            43,
            "load expect is 8 bytes but the load reads len 4: expected 4 bytes",
        ),
        case(
            "store of 65 bytes",
            ops("store(at: virt(0), data: fill(byte: 1, len: 65))"),
            3,
            34,
            "store data is 65 bytes: expected 1..=64 bytes",
        ),
        case(
            "store of no bytes",
            ops("store(at: virt(0), data: hex(\"\"))"),
            3,
            34,
            "store data is 0 bytes",
        ),
        case(
            "speculative load len 65",
            ops("speculative_load(at: virt(0), len: 65)"),
            3,
            44,
            "speculative_load len 65 is outside 1..=64",
        ),
        case(
            "huge fill",
            ops("store(at: virt(0), data: fill(byte: 1, len: 1_000_000_000_000))"),
            3,
            53,
            "fill len 1000000000000 is more than any data can hold",
        ),
        case(
            "odd hex digits",
            ops("store(at: virt(0), data: hex(\"0011223\"))"),
            3,
            38,
            "hex data: 7 hex digits: expected an even number",
        ),
        case(
            "non-hex digit",
            ops("store(at: virt(0), data: hex(\"00zz\"))"),
            3,
            38,
            "hex data: 'z' at character 3 is not a hex digit",
        ),
        case(
            "separator inside a byte",
            ops("store(at: virt(0), data: hex(\"0 011\"))"),
            3,
            38,
            "splits a byte",
        ),
        case(
            "non-ASCII text",
            ops("store(at: virt(0), data: text(\"héllo\"))"),
            3,
            39,
            "expected ASCII characters only",
        ),
        case(
            "load with expect and expect_fault",
            ops("load(at: virt(0), expect: u8(1), expect_fault: any)"),
            3,
            56,
            "cannot both return `expect` and fault",
        ),
        // ---- pconfig ----
        case(
            "pconfig key of 31 hex digits",
            ops(&format!(
                "pconfig(keyid: 1, command: set_key_direct, key: \"{}\")",
                "a".repeat(31)
            )),
            3,
            57,
            "pconfig key: 31 hex digits: expected an even number",
        ),
        case(
            "pconfig key of 15 bytes",
            ops(&format!(
                "pconfig(keyid: 1, command: set_key_direct, tweak: \"{}\")",
                "ab".repeat(15)
            )),
            3,
            59,
            "pconfig tweak is 15 bytes (30 hex digits): expected 16 bytes",
        ),
        case(
            "pconfig_raw of 191 bytes",
            ops(&format!("pconfig_raw(bytes: \"{}\")", &raw_ok[2..])),
            3,
            28,
            "pconfig_raw bytes are 191 bytes: expected exactly 192 bytes (384 hex digits)",
        ),
        case(
            "pconfig_raw of 193 bytes",
            ops(&format!("pconfig_raw(bytes: \"{raw_ok}ff\")")),
            3,
            28,
            "pconfig_raw bytes are 193 bytes: expected exactly 192 bytes",
        ),
        // ---- kernel calls ----
        case(
            "unknown key in encrypt_mprotect",
            ops(
                "add_key(key: \"k1\", payload: \"type=cpu\"), add_key(key: \"k2\", payload: \"type=cpu\"), encrypt_mprotect(addr: 0, len: 4096, prot: rw, key: \"k3\")",
            ),
            3,
            143,
            "no add_key in the scenario adds key `k3`; keys the scenario adds: `k1`, `k2`",
        ),
        case(
            "unknown key in invalidate_key, none added",
            ops("invalidate_key(key: \"k\")"),
            3,
            29,
            "the scenario adds no keys",
        ),
        case(
            "mmap offset without a file",
            ops("mmap(addr: 0, len: 4096, prot: r, offset: 4096)"),
            3,
            51,
            "mmap offset without a file",
        ),
        // ---- labels and expectations ----
        case(
            "unknown label",
            expect("load(core: 0, label: \"r2\", value: u64(0))"),
            6,
            30,
            "core 0 has no op labelled `r2`; its labels: `r1`, `s`, `pf`",
        ),
        case(
            "duplicate label",
            ops(
                "load(at: virt(0), label: \"x\"), mfence, store(at: virt(0), data: u8(1), label: \"x\")",
            ),
            3,
            87,
            "label `x` is already used on core 0 (by the op at 3:9)",
        ),
        case(
            "load expectation on a store",
            expect("load(core: 0, label: \"s\", value: u8(1))"),
            6,
            30,
            "a `load` expectation needs a load, but `s` on core 0 is a store (at 3:41)",
        ),
        case(
            "fault expectation on a prefetch",
            expect("fault(core: 0, label: \"pf\")"),
            6,
            31,
            "needs an op that can fault",
        ),
        case(
            "kernel expectation on a load",
            expect("kernel(core: 0, label: \"r1\", result: ok)"),
            6,
            32,
            "but `r1` on core 0 is a load",
        ),
        case(
            "load expectation of the wrong length",
            expect("load(core: 0, label: \"r1\", value: u32(1))"),
            6,
            43,
            "value is 4 bytes but load `r1` reads 8: expected 8 bytes",
        ),
        case(
            "expectation on a core without a program",
            expect("fault(core: 3, label: \"r1\")"),
            6,
            21,
            "core 3 has no program: expected a core with a program, 0..=0",
        ),
        case(
            "misaligned violation line",
            expect("violation(kind: data_loss, line: 0x10010)"),
            6,
            42,
            "line 0x1_0010 is not 64-byte aligned: expected a multiple of 0x40 (such as 0x1_0000 or 0x1_0040)",
        ),
        case(
            "plaintext data not 64 bytes",
            expect("plaintext(keyid: 1, line: 0x1000, data: u64(0))"),
            6,
            49,
            "plaintext data is 8 bytes: expected exactly 64",
        ),
        case(
            "plaintext KeyID out of range",
            expect("plaintext(keyid: 99, line: 0x1000, data: fill(byte: 0, len: 64))"),
            6,
            26,
            "KeyID 99 does not fit",
        ),
        case(
            "cycles min above max",
            expect("cycles(min: 100, max: 10)"),
            6,
            21,
            "cycles min 100 is above max 10: expected min <= max",
        ),
        case(
            "cycles without bounds",
            expect("cycles()"),
            6,
            9,
            "cycles without bounds: expected `min`, `max` or both",
        ),
        case(
            "unknown expectation",
            expect("no_fault"),
            6,
            9,
            "Unexpected variant named `no_fault` in enum `expectation`",
        ),
        // ---- shadows ----
        case(
            "expect_fault inside mispredict",
            ops("mispredict([mfence, load(at: virt(0), expect_fault: not_mapped)])"),
            3,
            61,
            "`expect_fault` inside mispredict",
        ),
        case(
            "expect inside a repeat inside mispredict",
            ops("mispredict([repeat(times: 2, ops: [load(at: virt(0), expect: u8(0))])])"),
            3,
            70,
            "`expect` inside mispredict",
        ),
        case(
            "expectation naming a shadow op",
            "(\n    cores: [(ops: [mispredict([load(at: virt(0), label: \"sh\")])])],\n    expect: [fault(core: 0, label: \"sh\")],\n)",
            3,
            36,
            "`sh` on core 0 (at 2:32) is inside mispredict",
        ),
        // ---- barriers ----
        case(
            "barrier used by one core",
            "(\n    cores: [\n        (ops: [barrier(\"both\"), barrier(\"lonely\")]),\n        (ops: [barrier(\"both\")]),\n    ],\n)",
            3,
            41,
            "barrier `lonely` is used by core 0 only: it would wait forever",
        ),
        // ---- nesting ----
        case(
            "nesting too deep",
            ops(&format!(
                "{}mfence{}",
                "repeat(times: 1, ops: [".repeat(17),
                "])".repeat(17)
            )),
            3,
            400,
            "ops nested 17 levels deep in repeat and mispredict blocks: expected at most 16 levels",
        ),
        // ---- machine, kernel, run ----
        case(
            "10^9 cores",
            machine("caches: (cores: 1_000_000_000)"),
            2,
            31,
            "machine.caches: cores = 1000000000 is out of range: between 1 and 64",
        ),
        case(
            "more programs than cores",
            "(\n    cores: [(ops: []), (ops: []),\n            (ops: [mfence])],\n)",
            3,
            13,
            "3 programs for a machine of 2 core(s): expected at most 2",
        ),
        case(
            "machine core store_buffer 0",
            machine("core: (issue_width: 2, store_buffer: 0)"),
            2,
            52,
            "machine.core.store_buffer: 0 is outside 1..=1024",
        ),
        case(
            "unknown machine preset",
            machine("preset: \"laptop\""),
            2,
            23,
            "unknown machine preset `laptop`; known presets: default, server",
        ),
        case(
            "impossible L1D size",
            machine("caches: (l1d: (size: \"24k\"))"),
            2,
            36,
            "machine.caches: l1d.cache",
        ),
        // Issue 16: geometries that contradict the documented inclusion.
        case(
            "an L2 smaller than the L1D it includes",
            machine("caches: (l1d: (size: 256, ways: 2), l2: (size: 128, ways: 2))"),
            2,
            62,
            "l2.cache.size_bytes = 128 is smaller than l1d.cache.size_bytes = 256: the l2 is inclusive of the l1d",
        ),
        case(
            "max_keys above the KeyID bits",
            machine("memory: (tme: (max_keys: 64))"),
            2,
            40,
            "max_keys = 64 is more keys than keyid_bits = 6 can name",
        ),
        case(
            "kernel.keyids 0",
            "(\n    kernel: (keyids: 0),\n    cores: [],\n)",
            2,
            22,
            "kernel.keyids 0 is outside 1..=63",
        ),
        case(
            "kernel.keyids 64",
            "(\n    kernel: (keyids: 64),\n    cores: [],\n)",
            2,
            22,
            "kernel.keyids 64 is outside 1..=63 (the machine's memory.tme.max_keys)",
        ),
        case(
            "kernel frames misaligned",
            "(\n    kernel: (frames: (base: 0x1001)),\n    cores: [],\n)",
            2,
            29,
            "kernel.frames.base 0x1001 is not page-aligned",
        ),
        case(
            "kernel frames beyond DRAM",
            "(\n    kernel: (frames: (base: 0x3_0000_0000, size: \"8g\")),\n    cores: [],\n)",
            2,
            50,
            "reach past the machine's 0x4_0000_0000 bytes of DRAM",
        ),
        case(
            "cycles_max 0",
            "(\n    run: (cycles_max: 0),\n    cores: [],\n)",
            2,
            23,
            "run.cycles_max 0 is outside 1..=1000000000000",
        ),
        case(
            "cycles_max above 10^12",
            "(run: (cycles_max: 1_000_000_000_001), cores: [])",
            1,
            20,
            "run.cycles_max 1000000000001 is outside 1..=1000000000000",
        ),
        // ---- attacker ----
        case(
            "misaligned dump line",
            "(\n    cores: [],\n    attacker: (dram_dumps: [(at: end, lines: [0x1000, 0x1008])]),\n)",
            3,
            55,
            "line 0x1008 is not 64-byte aligned",
        ),
        case(
            "dump with lines and range",
            "(\n    cores: [],\n    attacker: (dram_dumps: [(at: end, lines: [0], range: (start: 0, lines: 1))]),\n)",
            3,
            58,
            "a dump takes `lines` or `range`, not both",
        ),
        case(
            "dump after cycles_max",
            "(\n    run: (cycles_max: 100),\n    cores: [],\n    attacker: (dram_dumps: [(at: cycle(101), lines: [0])]),\n)",
            4,
            34,
            "dump at cycle 101 is after run.cycles_max 100",
        ),
        case(
            "dump range past DRAM",
            "(\n    cores: [],\n    attacker: (dram_dumps: [(at: end, range: (start: 0x3_ffff_ffc0, lines: 2))]),\n)",
            3,
            76,
            "2 lines from 0x3_ffff_ffc0 run past the end",
        ),
    ]
}

#[test]
fn every_malformed_scenario_is_refused_at_its_place() {
    let cases = cases();
    assert!(cases.len() >= 35, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        match parse(&c.text, "lib/x.ron") {
            Ok(_) => failures.push(format!("{}: parsed", c.what)),
            Err(e) => {
                let want = Location {
                    line: c.line,
                    column: c.column,
                };
                if e.place != Some(want) || !e.message.contains(c.fragment) {
                    failures.push(format!(
                        "{}: want {want} `{}`\n      got {e}",
                        c.what, c.fragment
                    ));
                }
                assert_eq!(e.file, "lib/x.ron");
                assert!(
                    e.to_string()
                        .starts_with(&format!("lib/x.ron:{}:", want.line))
                        || e.place != Some(want)
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cases_are_distinct() {
    let cases = cases();
    let mut texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), cases.len());
}

#[test]
fn bytes_that_are_not_utf8() {
    let e = parse_bytes(b"(cores: [])\n  \xff\xfe", "bin.ron").unwrap_err();
    assert_eq!(e.place, Some(Location { line: 2, column: 3 }));
    assert!(e.message.contains("byte 0xff is not UTF-8 text"), "{e}");
    assert_eq!(
        e.to_string(),
        "bin.ron:2:3: byte 0xff is not UTF-8 text: expected a RON text file"
    );
}

#[test]
fn unreadable_file_has_no_place() {
    let e = scenarios::validate::load(std::path::Path::new("/nonexistent/dir/s.ron")).unwrap_err();
    assert_eq!(e.place, None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/dir/s.ron: cannot read"),
        "{e}"
    );
}

#[test]
fn too_many_ops() {
    // 1_000_001 ops without nesting: the last one is refused.
    let mut text = String::from("(cores: [(ops: [\n");
    for _ in 0..1_000 {
        text.push_str(&"mfence,".repeat(1_000));
        text.push('\n');
    }
    text.push_str("sfence,\n])])");
    let e = parse(&text, "big.ron").unwrap_err();
    assert_eq!(
        e.place,
        Some(Location {
            line: 1002,
            column: 1
        })
    );
    assert!(e.message.contains("more than 1000000 ops"), "{e}");
}

/// A valid scenario that uses most of the format, for the fuzz tests.
const VALID: &str = r#"(
    name: "fuzz", seed: 3,
    machine: (caches: (cores: 2), core: (issue_width: 2)),
    kernel: (keyids: 4),
    cores: [
        (ops: [
            add_key(key: "k", payload: "type=cpu", label: "a", expect: ok),
            mmap(addr: 0x7000_0000, len: "8k", prot: rw),
            encrypt_mprotect(addr: 0x7000_0000, len: "8k", prot: rw, key: "k"),
            store(at: virt(0x7000_0000), data: hex("00112233"), label: "s"),
            load(at: phys(keyid: 1, addr: 0x10000), len: 4, label: "r", expect: text("abcd")),
            /* a comment */ mispredict([load(at: virt(0x7000_1000))]),
            repeat(times: 2, ops: [clflush(at: virt(0x7000_0000)), mfence]),
            pconfig(keyid: 1, command: set_key_random, label: "p", expect: success),
            barrier("b"),
        ]),
        (ring0: false, ops: [barrier("b"), compute(10)]), // core 1
    ],
    attacker: (bus_log: true, dram_dumps: [(at: end, range: (start: 0x10000, lines: 2))]),
    expect: [no_violations, cycles(max: 1_000_000), plaintext(keyid: 1, line: 0x10000, data: fill(byte: 0, len: 64))],
)
"#;

#[test]
fn the_fuzz_seed_is_valid() {
    let s = parse(VALID, "fuzz.ron").unwrap();
    assert_eq!(s.programs.len(), 2);
}

proptest! {
    #![proptest_config(test_support::proptest_config(512))]

    #[test]
    fn truncations_never_panic(cut in 0usize..VALID.len()) {
        let bytes = &VALID.as_bytes()[..cut];
        let _ = parse_bytes(bytes, "t.ron");
    }

    #[test]
    fn byte_flips_never_panic(flips in proptest::collection::vec((0usize..VALID.len(), any::<u8>()), 1..6)) {
        let mut bytes = VALID.as_bytes().to_vec();
        for (at, b) in flips {
            bytes[at] = b;
        }
        if let Err(e) = parse_bytes(&bytes, "f.ron") {
            // Every refusal says where.
            prop_assert!(e.place.is_some());
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn digit_changes_never_panic(at in 0usize..VALID.len(), digit in prop::sample::select(vec!["0", "9", "99999999999999999999", "0xffff_ffff_ffff_ffff", "65", "-1"])) {
        // Replace one number-ish character with a digit run: out-of-range values everywhere.
        let mut text = VALID.to_owned();
        if text.is_char_boundary(at) && text[at..].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            text.replace_range(at..at + 1, digit);
        }
        let _ = parse(&text, "d.ron");
    }
}
