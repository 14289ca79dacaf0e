//! DRAM dumps taken while a run goes on: a flushed and fenced line is listed as pending until
//! its write crosses the DIMM bus, and on the default machine, whose controllers drain their
//! write buffers once idle (docs/dram-model.md, section 5), it crosses within the timeout
//! rather than at the end of the run.

use scenarios::report::DramDumpReport;
use scenarios::runner::{RunOptions, run};
use scenarios::validate::parse;

/// Stores to one line, flushes and fences it, then computes for a long while; DRAM dumps at
/// each cycle of `at` and at the end. `dram` overrides the machine's DRAM (a preset name).
fn scenario(at: &[u64], dram: Option<&str>) -> String {
    let machine = match dram {
        Some(name) => format!("machine: (memory: (dram: {name:?})),"),
        None => String::new(),
    };
    let mut dumps: Vec<String> = at
        .iter()
        .map(|c| format!("(at: cycle({c}), lines: [0x40000])"))
        .collect();
    dumps.push("(at: end, lines: [0x40000])".to_owned());
    format!(
        "(
    name: \"flush-then-wait\",
    seed: 3,
    {machine}
    cores: [
        (ops: [
            store(at: phys(keyid: 0, addr: 0x40000), data: text(\"flushed\")),
            clflush(at: phys(keyid: 0, addr: 0x40000)),
            mfence,
            compute(20000),
        ]),
    ],
    attacker: (dram_dumps: [{}]),
)",
        dumps.join(", ")
    )
}

fn dumps(text: &str) -> Vec<DramDumpReport> {
    let s = parse(text, "flush.ron").unwrap_or_else(|e| panic!("{e}"));
    let report = run(&s, &RunOptions::default()).unwrap();
    assert!(report.passed, "{report:?}");
    report.dram_dumps.unwrap()
}

/// The first cycle of `cycles` at which the dump no longer lists the line as pending, with the
/// last one that did.
fn reaches_dram(dumps: &[DramDumpReport]) -> (u64, u64) {
    let pending = |d: &DramDumpReport| d.pending_writes.iter().any(|l| l == "0x40000");
    let first_written = dumps
        .iter()
        .position(|d| !pending(d) && d.lines[0].data != "0".repeat(128))
        .expect("the line reaches DRAM");
    assert!(first_written > 0, "the line was in DRAM at the first dump");
    assert!(pending(&dumps[first_written - 1]));
    (dumps[first_written - 1].cycle, dumps[first_written].cycle)
}

#[test]
fn a_flushed_line_is_pending_until_the_idle_drain_writes_it() {
    // Every 100 cycles over the first 3000: the write-back reaches the controller a few hundred
    // cycles in, and the controller, idle from then on, drains it 256 DRAM cycles (680 core
    // cycles at 3.2 GHz against DDR4-2400) later.
    let at: Vec<u64> = (1..=30).map(|k| 100 * k).collect();
    let d = dumps(&scenario(&at, None));
    let (pending_until, written_by) = reaches_dram(&d);
    assert!(written_by <= 1500, "{pending_until}..{written_by}");
    // Before the write-back arrives the line is not pending yet (still in the caches).
    assert!(d[0].pending_writes.is_empty());
    let first_pending = d.iter().position(|d| !d.pending_writes.is_empty()).unwrap();
    // Pending for about the timeout: 680 core cycles, give or take the 100-cycle grid and the
    // write's own DRAM latency.
    let pending_for = 100 * (d.iter().filter(|d| !d.pending_writes.is_empty()).count() as u64);
    assert!(
        (600..=900).contains(&pending_for),
        "pending from dump {first_pending} for about {pending_for} cycles"
    );
    // The end: nothing pending, the same bytes.
    let end = d.last().unwrap();
    assert!(end.pending_writes.is_empty());
    assert_eq!(end.lines[0].data, d[at.len() - 1].lines[0].data);
}

#[test]
fn a_machine_naming_a_dram_preset_keeps_the_machines_idle_drain() {
    // `dram: "ddr4-2400"` in a machine is the preset as the machines run it, idle drain
    // included, so the line reaches DRAM as on the default machine.
    let at: Vec<u64> = (1..=30).map(|k| 100 * k).collect();
    let default = reaches_dram(&dumps(&scenario(&at, None)));
    let named = reaches_dram(&dumps(&scenario(&at, Some("ddr4-2400"))));
    assert_eq!(default, named);
}
