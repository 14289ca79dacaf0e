//! The attacker and the scenario library (issue 11): each library scenario fails once the
//! behaviour it demonstrates is taken away; the interposer's plaintext analysis where plaintext
//! crosses the bus (NO_ENCRYPT, TME bypass, the exclusion range) and where it does not; the
//! interposer's channels and window; attacks traced in the report's chains; the cold boot's
//! end; and the attacker section's errors.

use scenarios::report::ScenarioReport;
use scenarios::runner::{self, RunOptions};
use scenarios::validate::{self, Override};
use std::path::Path;

/// Validates and runs `text` (named `t.ron`); panics with the error if it is not valid.
fn run(text: &str) -> ScenarioReport {
    let s = validate::parse(text, "t.ron").unwrap_or_else(|e| panic!("{e}\n{text}"));
    runner::run(&s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The error `text` is refused with.
fn invalid(text: &str) -> String {
    match validate::parse(text, "t.ron") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Every expectation's verdict and observation, for failure messages.
fn show(r: &ScenarioReport) -> String {
    r.expectations
        .iter()
        .map(|e| format!("{} {}: {}\n    {}", e.ok, e.place, e.expect, e.observed))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The path of a library scenario.
fn library(name: &str) -> String {
    format!(
        "{}/scenarios/library/{name}.ron",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs a library scenario with `--set` overrides.
fn run_library(name: &str, sets: &[&str]) -> ScenarioReport {
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let s = validate::load_with(Path::new(&library(name)), &overrides)
        .unwrap_or_else(|e| panic!("{name} with {sets:?}: {e}"));
    runner::run(&s, &RunOptions::default()).unwrap()
}

/// Runs a library scenario whose text `edit` changed.
fn run_library_edited(name: &str, edit: impl Fn(&str) -> String) -> ScenarioReport {
    let text = std::fs::read_to_string(library(name)).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "{name}: the edit changed nothing");
    run(&edited)
}

/// Asserts that the run did not pass, and that the failing expectations are exactly those
/// whose description contains one of `failing` (each naming at least one).
fn assert_fails(name: &str, r: &ScenarioReport, failing: &[&str]) {
    assert!(
        !r.passed,
        "{name} passed without its behaviour:\n{}",
        show(r)
    );
    for want in failing {
        assert!(
            r.expectations
                .iter()
                .any(|e| !e.ok && e.expect.contains(want)),
            "{name}: no failing expectation says `{want}`:\n{}",
            show(r)
        );
    }
    for e in r.expectations.iter().filter(|e| !e.ok) {
        assert!(
            failing.iter().any(|w| e.expect.contains(w)),
            "{name}: `{}` failed too:\n{}",
            e.expect,
            show(r)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Every library scenario fails without the behaviour it demonstrates
// ---------------------------------------------------------------------------------------------

/// `--set` changes that take a library scenario's behaviour away, and the expectations that
/// then fail (by a part of their description).
const WITHOUT: &[(&str, &[&str], &[&str])] = &[
    // The CLFLUSH of the old alias replaced by a fence: the switch loses data.
    (
        "alias-clflush-before-switch",
        &["cores.0.ops.4=mfence"],
        &["no coherency violations"],
    ),
    // A CPU that evicts the other KeyIDs' copies: nothing is lost.
    (
        "alias-without-flush",
        &["machine.caches.alias_policy=evict_other_keyids"],
        &[
            "dual_dirty violation",
            "data_loss violation",
            "other than what KeyID 2",
        ],
    ),
    (
        "speculative-new-alias",
        &["machine.caches.writeback_speculative_lines=true"],
        &["no coherency violations", "`first`", "`second`"],
    ),
    (
        "speculative-writeback-counterfactual",
        &["machine.caches.writeback_speculative_lines=false"],
        &[
            "phantom_dirty violation",
            "data_loss violation",
            "other than what KeyID 1",
        ],
    ),
    // WBINVD before the new key: nothing of KeyID 1 is cached when it changes.
    (
        "pconfig-while-cached",
        &["cores.0.ops.6=wbinvd"],
        &[
            "reprogram_while_cached violation",
            "`dirty-survived`",
            "`clean-after`",
        ],
    ),
    (
        "direct-map-garbage",
        &["kernel.unmap_encrypted_from_direct_map=true"],
        &["no op faults", "`kernel-read`"],
    ),
    (
        "direct-map",
        &["kernel.unmap_encrypted_from_direct_map=false"],
        &["`kernel-read`", "no coherency violations"],
    ),
    // The tenant's key made a no-encrypt one: plaintext on the bus, equal across lines.
    (
        "interposer-tenant-workload",
        &["cores.0.ops.0.payload=\"type=no-encrypt\""],
        &["bus_plaintext", "bus_equal_across_lines"],
    ),
    (
        "cold-boot",
        &["attacker.cold_boot.key_restore=true"],
        &["cold_boot_decrypted"],
    ),
    (
        "cold-boot-key-restore",
        &["attacker.cold_boot.key_restore=false"],
        &["cold_boot_decrypted", "reads through KeyID 0"],
    ),
    // The replay scenario without the attacker.
    (
        "replay-same-address",
        &["attacker.attacks=[]"],
        &["loads 1111111111111111", "other than what KeyID 1"],
    ),
    (
        "splice-other-address",
        &["attacker.attacks=[]"],
        &["never loads 0110", "other than what KeyID 1"],
    ),
    // Without encryption there is no tweak: line 0's bytes read fine at line 1.
    (
        "splice-other-address",
        &["cores.0.ops.0.command=no_encrypt"],
        &["never loads 0010"],
    ),
    (
        "bit-flip",
        &["attacker.attacks=[]"],
        &["`block-0`", "`plain-block-0`"],
    ),
    // vm2 reading through vm3's KeyID: no cleartext for it either.
    (
        "tenants-sharing-a-keyid",
        &["cores.2.ops.2.at=phys(keyid: 2, addr: 0x4000_0000)"],
        &["`same-keyid`"],
    ),
    ("key-service-pool", &["kernel.keyids=3"], &["`third`"]),
    // The file mapping made anonymous: the call succeeds.
    (
        "encrypt-file-mapping",
        &["cores.0.ops.2=mmap(addr: 0x7000_1000, len: \"4k\", prot: rw, expect: ok)"],
        &[
            "`both`",
            "`file`",
            "`anon`",
            "`file-data`",
            "`direct`",
            "no coherency violations",
        ],
    ),
    (
        "kernel-flushes-off",
        &["kernel.flush_on_keyid_change=true"],
        &[
            "dual_dirty violation",
            "data_loss violation",
            "other than what KeyID 1",
        ],
    ),
    (
        "kernel-encrypt-mprotect",
        &["kernel.flush_on_keyid_change=false"],
        &["no coherency violations"],
    ),
    (
        "dimm-sniffing",
        &["cores.0.ops.1.command=set_key_random"],
        &["bus_plaintext", "dump_plaintext", "reads through KeyID 2"],
    ),
    (
        "pconfig-outcomes",
        &["machine.memory.spec_revision=ise"],
        &["`bad-keyid`"],
    ),
    (
        "speculation-and-prefetch",
        &["machine.caches.writeback_speculative_lines=true"],
        &["no coherency violations"],
    ),
];

#[test]
fn each_library_scenario_fails_without_its_behaviour() {
    for (name, sets, failing) in WITHOUT {
        let r = run_library(name, sets);
        assert_fails(name, &r, failing);
    }
}

#[test]
fn the_data_loss_scenario_fails_when_the_checker_ignores_data_loss() {
    // The checker's own data_loss kind taken away (CheckerConfig::ignore, issue 12's knob):
    // the loss is still in DRAM, but nothing reports it, and the scenario says so.
    let mut s = validate::load(Path::new(&library("alias-without-flush"))).unwrap();
    s.system.checker.ignore =
        checker::ViolationKindSet::EMPTY.with(checker::ViolationKind::DataLoss);
    let r = runner::run(&s, &RunOptions::default()).unwrap();
    assert_fails("alias-without-flush", &r, &["data_loss violation"]);
}

#[test]
fn the_badram_scenario_fails_with_a_sound_dimm() {
    let r = run_library_edited("badram-ghost-replay", |t| {
        t.replace("bad_ram: (ghost_bit: 33),", "")
    });
    assert_fails(
        "badram-ghost-replay",
        &r,
        &["dump_equal_across_lines", "`balance`"],
    );
}

#[test]
fn the_store_buffering_scenario_fails_without_its_fences() {
    let r = run_library(
        "tso-store-buffering",
        &["cores.0.ops.10=compute(1)", "cores.1.ops.7=compute(1)"],
    );
    assert_fails("tso-store-buffering", &r, &["`f0`", "`f1`"]);
}

#[test]
fn every_library_scenario_has_a_test_without_its_behaviour() {
    let mut covered: Vec<&str> = WITHOUT.iter().map(|(n, _, _)| *n).collect();
    covered.extend(["badram-ghost-replay", "tso-store-buffering"]);
    let dir = format!("{}/scenarios/library", env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "ron") && !covered.contains(&stem.as_str()) {
            missing.push(stem);
        }
    }
    assert!(
        missing.is_empty(),
        "no test takes away their behaviour: {missing:?}"
    );
}

#[test]
fn library_scenarios_state_claim_and_source() {
    let dir = format!("{}/scenarios/library", env!("CARGO_MANIFEST_DIR"));
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with("//")).collect();
        for word in ["// Claim:", "// Source:"] {
            assert!(
                header.iter().any(|l| l.starts_with(word)),
                "{}: the header comment has no `{word}`",
                path.display()
            );
        }
        files += 1;
    }
    assert!(files >= 16, "the library has {files} scenarios");
}

// ---------------------------------------------------------------------------------------------
// 2. Plaintext on the bus: where it crosses, and where it does not
// ---------------------------------------------------------------------------------------------

/// One line written through `keyid` at `addr` and flushed, on `machine`, with the bus logged,
/// a dump at the end and a cold boot after it; `keyid` 1 is programmed with `command` first.
fn one_line(machine: &str, command: &str, keyid: u16, addr: u64) -> ScenarioReport {
    run(&format!(
        r#"(
    machine: {machine},
    cores: [(ops: [
        pconfig(keyid: 1, command: {command}, expect: success),
        store(at: phys(keyid: {keyid}, addr: {addr:#x}), data: fill(byte: 0x5a, len: 64)),
        clflush(at: phys(keyid: {keyid}, addr: {addr:#x})),
        mfence,
    ])],
    attacker: (
        bus_log: true,
        dram_dumps: [(at: end, lines: [{addr:#x}])],
        cold_boot: (at: end),
    ),
)"#
    ))
}

/// The lines of the report's findings of `kind`.
fn finding_lines(r: &ScenarioReport, kind: &str) -> Vec<String> {
    r.attacker_findings
        .iter()
        .flatten()
        .filter(|f| f.kind == kind)
        .map(|f| f.line.clone())
        .collect()
}

const DEFAULT: &str = "(caches: (prefetch: (next_line: false, stride: false)))";

#[test]
fn plaintext_crosses_the_bus_for_a_no_encrypt_keyid() {
    let r = one_line(DEFAULT, "no_encrypt", 1, 0x10000);
    for kind in ["bus_plaintext", "dump_plaintext", "cold_boot_plaintext"] {
        assert_eq!(finding_lines(&r, kind), ["0x10000"], "{kind}");
    }
    // The plaintext on the DIMMs is no ciphertext the rebooted machine decrypts.
    assert!(finding_lines(&r, "cold_boot_decrypted").is_empty());
}

#[test]
fn plaintext_crosses_the_bus_under_tme_bypass_for_keyid_0_only() {
    let bypass =
        "(caches: (prefetch: (next_line: false, stride: false)), memory: (tme: (bypass: true)))";
    let r = one_line(bypass, "set_key_random", 0, 0x10000);
    assert_eq!(finding_lines(&r, "bus_plaintext"), ["0x10000"]);
    assert_eq!(finding_lines(&r, "dump_plaintext"), ["0x10000"]);
    // Under bypass the rebooted machine reads KeyID 0 as plaintext too.
    assert_eq!(finding_lines(&r, "cold_boot_decrypted"), ["0x10000"]);
    let r = one_line(bypass, "set_key_random", 1, 0x10000);
    assert!(finding_lines(&r, "bus_plaintext").is_empty(), "{r:?}");
}

#[test]
fn plaintext_crosses_the_bus_in_the_exclusion_range_for_keyid_0_only() {
    let excluded = "(caches: (prefetch: (next_line: false, stride: false)), memory: (tme: (exclusion: (base: 0x100000, size: \"1m\"))))";
    let r = one_line(excluded, "set_key_random", 0, 0x100040);
    assert_eq!(finding_lines(&r, "bus_plaintext"), ["0x100040"]);
    // Outside the range KeyID 0 is encrypted; inside it other KeyIDs are.
    let r = one_line(excluded, "set_key_random", 0, 0x200040);
    assert!(finding_lines(&r, "bus_plaintext").is_empty());
    let r = one_line(excluded, "set_key_random", 1, 0x100040);
    assert!(finding_lines(&r, "bus_plaintext").is_empty());
}

#[test]
fn no_plaintext_crosses_the_bus_for_encrypting_keyids() {
    for keyid in [0, 1] {
        let r = one_line(DEFAULT, "set_key_random", keyid, 0x10000);
        for kind in ["bus_plaintext", "dump_plaintext", "cold_boot_plaintext"] {
            assert!(finding_lines(&r, kind).is_empty(), "KeyID {keyid} {kind}");
        }
        // The write crossed the bus, as ciphertext.
        assert_eq!(finding_lines(&r, "bus_writes"), ["0x10000"]);
        // After the reboot the new platform key decrypts nothing the program wrote.
        assert!(finding_lines(&r, "cold_boot_decrypted").is_empty());
        assert_eq!(r.end.reason, "finished");
        let cold = r.cold_boot.as_ref().unwrap();
        assert!(
            cold.lost_writes.is_empty(),
            "the end-of-run drain wrote everything"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The interposer's channels and window
// ---------------------------------------------------------------------------------------------

/// On the server preset (two controllers interleaved every 4 KiB) one line on each controller,
/// with an interposer as given.
fn two_controllers(interposer: &str) -> ScenarioReport {
    run(&format!(
        r#"(
    machine: (preset: "server", caches: (prefetch: (next_line: false, stride: false))),
    cores: [(ops: [
        store(at: phys(keyid: 0, addr: 0x10000), data: u64(1)),
        store(at: phys(keyid: 0, addr: 0x11000), data: u64(2)),
        clflush(at: phys(keyid: 0, addr: 0x10000)),
        clflush(at: phys(keyid: 0, addr: 0x11000)),
        mfence,
    ])],
    attacker: (interposer: {interposer}),
)"#
    ))
}

#[test]
fn an_interposer_sees_only_its_channels_and_cycles() {
    let all = two_controllers("()");
    assert_eq!(finding_lines(&all, "bus_writes"), ["0x10000", "0x11000"]);
    let one = two_controllers("(channels: [1])");
    assert_eq!(finding_lines(&one, "bus_writes"), ["0x11000"]);
    assert_eq!(finding_lines(&one, "bus_reads"), ["0x11000"]);
    assert_eq!(one.bus_log.as_ref().unwrap().channels, Some(vec![1]));
    // Removed before anything crossed the bus: nothing recorded.
    let early = two_controllers("(until: 10)");
    assert!(early.bus_log.as_ref().unwrap().entries.is_empty());
    assert_eq!(early.bus_log.as_ref().unwrap().until, Some(10));
}

// ---------------------------------------------------------------------------------------------
// 4. Attacks in the report, traced in the chains; the cold boot's end
// ---------------------------------------------------------------------------------------------

#[test]
fn a_replay_is_in_its_line_chain_before_the_load_it_fooled() {
    let r = run_library("replay-same-address", &[]);
    assert!(r.passed, "{}", show(&r));
    assert!(r.model_errors.is_empty());
    let attacks = r.attacks.as_ref().unwrap();
    assert_eq!(attacks.len(), 1);
    let a = &attacks[0];
    assert_eq!(
        (a.kind, a.cycle, a.recorded),
        ("replay", 40_000, Some(15_000))
    );
    assert_eq!(a.label.as_deref(), Some("rollback"));
    let attack = a
        .chain
        .iter()
        .position(|c| {
            c == "cycle 40000: attacker wrote the DIMM cells: a replay of the ciphertext recorded at cycle 15000"
        })
        .unwrap_or_else(|| panic!("{:#?}", a.chain));
    assert!(
        a.chain[attack + 1..]
            .iter()
            .any(|c| c.contains("KeyID 1 load by core 0 of bytes 0..8 from memory")),
        "{:#?}",
        a.chain
    );
    // Before it, the write-back of the data it replaced.
    assert!(
        a.chain[..attack]
            .iter()
            .any(|c| c.contains("KeyID 1 write-back to memory (flush)"))
    );
}

#[test]
fn a_ghost_address_names_the_cells_it_reaches() {
    let r = run_library("badram-ghost-replay", &[]);
    assert!(r.passed, "{}", show(&r));
    let a = &r.attacks.as_ref().unwrap()[0];
    assert_eq!(a.line, "0x200040000");
    assert_eq!(a.cells.as_deref(), Some("0x40000"));
    assert!(a.chain.iter().any(|c| {
        c.ends_with("the faulty DIMM took a write of 0x200040000 to the cells of 0x40000")
    }));
}

#[test]
fn a_cold_boot_mid_run_ends_the_run_and_names_the_lost_writes() {
    let r = run_library("cold-boot", &[]);
    assert!(r.passed, "{}", show(&r));
    assert_eq!(
        (r.end.reason, r.end.cycle, r.cycles),
        ("cold_boot", 60_000, 60_000)
    );
    let cold = r.cold_boot.as_ref().unwrap();
    assert_eq!(cold.lost_writes, ["0x62000"]);
    assert!(!cold.key_restore);
    assert_eq!(cold.lines.len(), 32);
    // Every line reads after the reboot as other bytes than it held (a new key).
    assert!(cold.lines.iter().all(|l| l.after_reboot != l.data));
    // The key table is the rebooted machine's: KeyID 1 is back in TME behaviour.
    assert!(r.key_table.iter().all(|k| k.keyid == 0));
}

#[test]
fn attacks_after_the_end_act_on_the_final_dimms() {
    let r = run(r#"(
    cores: [(ops: [
        pconfig(keyid: 1, command: set_key_random, expect: success),
        store(at: phys(keyid: 1, addr: 0x10000), data: fill(byte: 1, len: 64)),
    ])],
    attacker: (attacks: [splice(from: 0x10000, to: 0x20000, at: end)]),
    expect: [
        // The drained line, moved: garbage at the other address.
        plaintext(keyid: 1, line: 0x10000, data: fill(byte: 1, len: 64)),
    ],
)"#);
    assert!(r.passed, "{}", show(&r));
    let a = &r.attacks.as_ref().unwrap()[0];
    assert_eq!(a.cycle, r.end.cycle);
    assert_eq!(a.from.as_deref(), Some("0x10000"));
}

// ---------------------------------------------------------------------------------------------
// 5. The attacker section's errors
// ---------------------------------------------------------------------------------------------

#[test]
fn impossible_attacks_are_refused_where_they_are_written() {
    let cases: &[(&str, &str)] = &[
        (
            "(cores: [], attacker: (attacks: [bit_flip(line: 0x40, bits: [512], at: end)]))",
            "t.ron:1:62: bit 512 is outside the line: expected 0..=511",
        ),
        (
            "(cores: [], attacker: (attacks: [bit_flip(line: 0x40, bits: [3, 3], at: end)]))",
            "bit 3 is listed twice",
        ),
        (
            "(cores: [], attacker: (attacks: [bit_flip(line: 0x40, bits: [], at: end)]))",
            "a bit flip of no bit",
        ),
        (
            "(cores: [], attacker: (attacks: [splice(from: 0x40, to: 0x40, at: end)]))",
            "`to` is `from` (0x40)",
        ),
        (
            "(cores: [], attacker: (attacks: [replay(line: 0x40, recorded: cycle(9), at: cycle(9))]))",
            "expected `recorded` before `at`",
        ),
        (
            "(cores: [], attacker: (attacks: [replay(line: 0x41, recorded: cycle(1), at: end)]))",
            "line 0x41 is not 64-byte aligned",
        ),
        (
            "(cores: [], run: (cycles_max: 100), attacker: (cold_boot: (at: cycle(101))))",
            "a cold boot at cycle 101 is after run.cycles_max 100",
        ),
        (
            "(cores: [], attacker: (bad_ram: (ghost_bit: 34)))",
            "ghost bit 34 is beyond the installed DRAM",
        ),
        (
            "(cores: [], attacker: (bad_ram: (ghost_bit: 3)))",
            "ghost bit 3 is inside a 64-byte line",
        ),
        (
            "(cores: [], machine: (preset: \"server\"), attacker: (bad_ram: (ghost_bit: 12)))",
            "ghost bit 12 selects the memory controller",
        ),
        (
            "(cores: [], attacker: (interposer: (channels: [1])))",
            "channel 1 does not exist: the machine has 1 DIMM channel(s)",
        ),
        (
            "(cores: [], attacker: (interposer: (from: 5, until: 5)))",
            "expected until > from",
        ),
        (
            "(cores: [], attacker: (bus_log: false, interposer: ()))",
            "an interposer records the bus",
        ),
        (
            "(cores: [], attacker: (attacks: [splice(from: 0, to: 0x40, at: end, label: \"a\"), splice(from: 0, to: 0x80, at: end, label: \"a\")]))",
            "attack label `a` is already used",
        ),
        (
            "(cores: [], attacker: (bus_log: true), expect: [attacker(saw: cold_boot_lost)])",
            "`cold_boot_lost` is found by a cold boot, and the attacker makes none",
        ),
        (
            "(cores: [], attacker: (cold_boot: (at: end)), expect: [attacker(saw: cold_boot_lost, dump: \"x\")])",
            "`dump` picks a DRAM dump, and `cold_boot_lost` comes from the cold boot",
        ),
        (
            "(cores: [], expect: [violation(kind: data_loss, chain: [\"\"])])",
            "an empty chain text matches every event",
        ),
    ];
    for (text, want) in cases {
        let e = invalid(text);
        assert!(e.contains(want), "{text}\n  gives: {e}\n  wanted: {want}");
    }
}
