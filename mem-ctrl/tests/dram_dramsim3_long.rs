//! Long random mixed traces against DRAMsim3 itself (umd-memsys/DRAMsim3 at commit 29817593,
//! `configs/DDR4_8Gb_x8_2400.ini`, the `ddr4-2400` preset).
//!
//! Each trace is generated here, deterministically, and was run through DRAMsim3's own trace
//! CPU (`dramsim3main.out -t`); `tests/data/dramsim3/README.md` says exactly how. DRAMsim3's
//! figures are in `tests/data/dramsim3/*.json`, and every one of them must come out of the
//! model unchanged: the whole read-latency histogram (so the read count and the average), the
//! READ commands and their row hits, and, up to the cycle the traces' closing lull ends, the
//! ACT, PRE, REF and WRITE commands and the whole write-latency histogram.
//!
//! The traces exercise what the six validation traces do not: a third of the requests are
//! writes, so both of DRAMsim3's drain triggers fire (a full write buffer, and more than 8
//! writes with every command queue empty); reads repeat lines still queued (one READ answers
//! them all, and they take no read-queue slot); reads of lines with a write waiting are
//! answered from the write buffer; writes to a line with a write waiting merge; arrivals come in
//! saturating bursts and idle gaps.
//!
//! Two details keep DRAMsim3's run finite and comparable:
//! - no write goes to a line read earlier in the trace, so a write never waits behind a read of
//!   its line: with a full write buffer that state livelocks DRAMsim3 (docs/dram-model.md,
//!   section 9);
//! - the trace ends with a lull of [`LULL_CYCLES`] and then two reads on one cycle, with no
//!   newline after the last line: DRAMsim3's trace CPU offers a line only on the cycle it reads
//!   it when that line is the file's last, and repeats the last request when the file ends
//!   with a newline. After the lull every queue is empty, so both reads are accepted on their
//!   first offer, as in our driver. DRAMsim3 then runs a fixed number of cycles and leaves at
//!   most 8 writes in its buffer, where our driver flushes them; nothing before the lull's end
//!   depends on that, and the flushed writes issue after the last READ.

#[path = "dram_common.rs"]
mod common;

use mem_ctrl::dram::{
    CommandKind, CompletionSource, DramConfig, DriverLimits, Encryption, Recorder, TraceRecord,
    run_trace_observed,
};
use sim_core::{Cycle, DramAddr, MemOp};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt::Write as _;

/// Cycles between the last request of a trace's body and its two closing reads.
const LULL_CYCLES: u64 = 20_000;

/// SplitMix64: a fixed, dependency-free stream (the traces must never change).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Where a trace's lines fall.
#[derive(Copy, Clone, Debug)]
enum Footprint {
    /// Anywhere in the 16 GiB of the configuration: almost every access opens a row.
    Wide,
    /// Rows 0..8 of every bank: reads in the first half of each row, writes in the second, so
    /// rows are shared and row hits, conflicts and same-line requests are frequent.
    Hot,
    /// Rows 0..128 of two banks, halves as in `Hot`: their command queues stay full, so the
    /// read queue and the write buffer fill up, and repeated reads arrive at a full read queue.
    Narrow,
}

/// A generated trace's shape.
#[derive(Copy, Clone, Debug)]
struct Shape {
    seed: u64,
    /// Requests before the lull (two closing reads follow).
    requests: usize,
    footprint: Footprint,
    /// The rare long gap between two arrivals: at least `.0` cycles, less than `.0 + .1`.
    idle_gap: (u64, u64),
}

/// The traces whose DRAMsim3 figures are in `tests/data/dramsim3/`.
const WIDE: Shape = Shape {
    seed: 0x5eed_0001,
    requests: 150_000,
    footprint: Footprint::Wide,
    idle_gap: (200, 1800),
};
const HOT: Shape = Shape {
    seed: 0x5eed_0002,
    requests: 120_000,
    footprint: Footprint::Hot,
    idle_gap: (200, 1800),
};
/// The speed benchmark's trace (docs/benchmarks.md, "DRAM model"): `WIDE`'s shape, a million
/// requests.
const LONG: Shape = Shape {
    seed: 0x5eed_0004,
    requests: 1_000_000,
    footprint: Footprint::Wide,
    idle_gap: (200, 1800),
};
const NARROW: Shape = Shape {
    seed: 0x5eed_0003,
    requests: 100_000,
    footprint: Footprint::Narrow,
    // Two banks serve a request every 25 cycles or so: the bursts need long pauses to drain.
    idle_gap: (3000, 6000),
};

/// DRAM address of (rank, bank group, bank, row, line in row) under the ddr4-2400 mapping:
/// line [12:6], bank group [14:13], bank [16:15], rank [17], row [33:18].
fn ddr4_addr(rank: u64, bankgroup: u64, bank: u64, row: u64, line: u64) -> u64 {
    (line << 6) | (bankgroup << 13) | (bank << 15) | (rank << 17) | (row << 18)
}

/// A fresh line for a read or a write of `footprint`.
fn random_line(rng: &mut SplitMix, footprint: Footprint, write: bool) -> u64 {
    match footprint {
        Footprint::Wide => rng.below(1 << 28) << 6,
        Footprint::Hot => {
            let (rank, bankgroup, bank) = (rng.below(2), rng.below(4), rng.below(4));
            let row = rng.below(8);
            let line = rng.below(64) + if write { 64 } else { 0 };
            ddr4_addr(rank, bankgroup, bank, row, line)
        }
        Footprint::Narrow => {
            let (bank, row) = (rng.below(2), rng.below(128));
            let line = rng.below(64) + if write { 64 } else { 0 };
            ddr4_addr(0, 0, bank, row, line)
        }
    }
}

/// The trace of `shape`: `(byte address, is write, cycle)` per request, in order.
fn generate(shape: Shape) -> Vec<(u64, bool, u64)> {
    let mut rng = SplitMix(shape.seed);
    let mut out = Vec::with_capacity(shape.requests + 2);
    // Lines read so far (a write must not go to one) and the recent ones (to read again).
    let mut read: HashSet<u64> = HashSet::new();
    let mut recent_reads: VecDeque<u64> = VecDeque::new();
    // Recent written lines that no read has touched (to write again or to read).
    let mut recent_writes: VecDeque<u64> = VecDeque::new();
    let mut cycle = 0u64;
    for _ in 0..shape.requests {
        // Arrivals: mostly back to back (the queues fill and the driver stalls), sometimes a
        // short gap, rarely a long one (the queues empty and writes wait).
        cycle += match rng.below(100) {
            0..84 => rng.below(3),
            84..99 => 5 + rng.below(36),
            _ => shape.idle_gap.0 + rng.below(shape.idle_gap.1),
        };
        let write = rng.below(3) == 0;
        let addr = if write {
            match rng.below(8) {
                // A line written lately and not read since: merges if still waiting.
                0 if !recent_writes.is_empty() => {
                    recent_writes[rng.below(recent_writes.len() as u64) as usize]
                }
                _ => (0..1000)
                    .map(|_| random_line(&mut rng, shape.footprint, true))
                    .find(|line| !read.contains(line))
                    .expect("the footprint has lines never read left to write"),
            }
        } else {
            match rng.below(16) {
                // A line read lately: joins its pending read if still queued.
                0..3 if !recent_reads.is_empty() => {
                    recent_reads[rng.below(recent_reads.len() as u64) as usize]
                }
                // A line written lately: answered from the write buffer if still waiting.
                3 if !recent_writes.is_empty() => {
                    let i = rng.below(recent_writes.len() as u64) as usize;
                    recent_writes.remove(i).expect("index below len")
                }
                _ => random_line(&mut rng, shape.footprint, false),
            }
        };
        if write {
            if !recent_writes.contains(&addr) {
                recent_writes.push_back(addr);
                if recent_writes.len() > 24 {
                    recent_writes.pop_front();
                }
            }
        } else {
            read.insert(addr);
            recent_reads.push_back(addr);
            if recent_reads.len() > 24 {
                recent_reads.pop_front();
            }
        }
        out.push((addr, write, cycle));
    }
    let end = cycle + LULL_CYCLES;
    for _ in 0..2 {
        out.push((random_line(&mut rng, shape.footprint, false), false, end));
    }
    out
}

/// The trace as DRAMsim3 reads it: `0xADDR READ|WRITE CYCLE` per line, no newline after the
/// last (see the module's documentation).
fn trace_text(trace: &[(u64, bool, u64)]) -> String {
    let mut text = String::new();
    for (i, (addr, write, cycle)) in trace.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let op = if *write { "WRITE" } else { "READ" };
        let _ = write!(text, "{addr:#x} {op} {cycle}");
    }
    text
}

/// Writes the traces into `$MKTME_DRAMSIM3_TRACE_DIR` (how the reference figures were made:
/// tests/data/dramsim3/README.md). Does nothing without the variable.
#[test]
fn write_traces_for_dramsim3() {
    let Some(dir) = std::env::var_os("MKTME_DRAMSIM3_TRACE_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    for (name, shape) in [
        ("wide", WIDE),
        ("hot", HOT),
        ("narrow", NARROW),
        ("long", LONG),
    ] {
        let trace = generate(shape);
        std::fs::write(dir.join(format!("{name}.trace")), trace_text(&trace)).unwrap();
        std::fs::write(
            dir.join(format!("{name}.lull")),
            format!("{}\n", trace.last().unwrap().2),
        )
        .unwrap();
    }
}

/// One DRAMsim3 statistics file (`dramsim3.json`, channel 0).
struct Dramsim3(serde_json::Value);

impl Dramsim3 {
    fn load(text: &str) -> Dramsim3 {
        let all: serde_json::Value = serde_json::from_str(text).expect("DRAMsim3 JSON");
        Dramsim3(all["0"].clone())
    }

    fn count(&self, key: &str) -> u64 {
        self.0[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {key}"))
    }

    /// A histogram as DRAMsim3 writes it in full: `{"value": count, ...}`.
    fn histogram(&self, key: &str) -> BTreeMap<u64, u64> {
        self.0[key]
            .as_object()
            .unwrap_or_else(|| panic!("no histogram {key}"))
            .iter()
            .map(|(v, n)| (v.parse().unwrap(), n.as_u64().unwrap()))
            .collect()
    }
}

/// Fails with the bins that differ (at most ten) unless both histograms are equal.
fn assert_same_histogram(ours: &BTreeMap<u64, u64>, dramsim3: &BTreeMap<u64, u64>, what: &str) {
    let values: std::collections::BTreeSet<u64> =
        ours.keys().chain(dramsim3.keys()).copied().collect();
    let differ: Vec<(u64, u64, u64)> = values
        .into_iter()
        .map(|v| {
            (
                v,
                ours.get(&v).copied().unwrap_or(0),
                dramsim3.get(&v).copied().unwrap_or(0),
            )
        })
        .filter(|(_, a, b)| a != b)
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} bins differ; (value, ours, DRAMsim3) first: {:?}",
        differ.len(),
        &differ[..differ.len().min(10)]
    );
}

/// Column commands that found their row already serving (DRAMsim3's row hit), rebuilt from a
/// command log: per bank, the column commands since its ACT.
fn row_hits(commands: &[mem_ctrl::dram::IssuedCommand], write: bool) -> u64 {
    let mut served: BTreeMap<(u32, u32, u32), u32> = BTreeMap::new();
    let mut hits = 0;
    for c in commands {
        let bank = (c.rank, c.bankgroup, c.bank);
        match c.kind {
            CommandKind::Activate => {
                served.insert(bank, 0);
            }
            CommandKind::Read
            | CommandKind::ReadPrecharge
            | CommandKind::Write
            | CommandKind::WritePrecharge => {
                let n = served.entry(bank).or_insert(0);
                if *n > 0 && c.kind.is_write() == write {
                    hits += 1;
                }
                *n += 1;
            }
            CommandKind::Precharge | CommandKind::Refresh => {}
        }
    }
    hits
}

/// Runs `shape`'s trace and compares it with DRAMsim3's `full` run (through the closing reads)
/// and `body` run (the cycles before them).
fn matches_dramsim3(shape: Shape, full: &str, body: &str) {
    let (full, body) = (Dramsim3::load(full), Dramsim3::load(body));
    let trace = generate(shape);
    let lull_end = trace.last().unwrap().2;
    assert_eq!(body.count("num_cycles"), lull_end);
    let records = trace.iter().map(|&(addr, write, cycle)| {
        Ok::<_, Infallible>(TraceRecord {
            addr: DramAddr::new(addr),
            op: if write { MemOp::Write } else { MemOp::Read },
            cycle: Cycle::new(cycle),
        })
    });
    let cfg = DramConfig::preset("ddr4-2400").unwrap();
    let mut rec = Recorder::default();
    let report = run_trace_observed(
        &cfg,
        Encryption::Off,
        records,
        DriverLimits::for_config(&cfg),
        &mut rec,
    )
    .unwrap();
    let s = &report.stats;

    // Every read, through the closing ones: the whole latency histogram, hence the count and
    // the average, and the READ commands with their row hits.
    let ours: BTreeMap<u64, u64> = s.read_latency.iter().collect();
    assert_same_histogram(&ours, &full.histogram("read_latency"), "read latency");
    assert_eq!(s.reads.get(), full.count("num_reads_done"));
    assert_eq!(s.writes.get(), full.count("num_writes_done"));
    assert_eq!(s.read_cmds.get(), full.count("num_read_cmds"));
    assert_eq!(s.read_row_hits.get(), full.count("num_read_row_hits"));
    let avg = full.0["average_read_latency"].as_f64().unwrap();
    let ours_avg = report.avg_read_latency_cycles().unwrap();
    assert!((ours_avg - avg).abs() < 1e-9, "{ours_avg} against {avg}");

    // Up to the end of the lull, where DRAMsim3's second run stopped: every command, and the
    // latency of every write whose WRITE issued (DRAMsim3: WRITE + CWL + tBurst - accept).
    let before: Vec<_> = rec
        .commands
        .iter()
        .filter(|c| c.cycle.get() < lull_end)
        .copied()
        .collect();
    let count = |kinds: &[CommandKind]| -> u64 {
        before.iter().filter(|c| kinds.contains(&c.kind)).count() as u64
    };
    let writes = [CommandKind::Write, CommandKind::WritePrecharge];
    let reads = [CommandKind::Read, CommandKind::ReadPrecharge];
    assert_eq!(count(&[CommandKind::Activate]), body.count("num_act_cmds"));
    assert_eq!(count(&[CommandKind::Precharge]), body.count("num_pre_cmds"));
    assert_eq!(count(&[CommandKind::Refresh]), body.count("num_ref_cmds"));
    assert_eq!(count(&reads), body.count("num_read_cmds"));
    assert_eq!(count(&writes), body.count("num_write_cmds"));
    assert_eq!(row_hits(&before, false), body.count("num_read_row_hits"));
    assert_eq!(row_hits(&before, true), body.count("num_write_row_hits"));
    let t_cwl = u64::from(cfg.params().timing.t_cwl_cycles);
    let mut write_latency: BTreeMap<u64, u64> = BTreeMap::new();
    for c in &rec.completions {
        if let (MemOp::Write, CompletionSource::Bus { burst_start, .. }) = (c.op, c.source)
            && burst_start.get() - t_cwl < lull_end
        {
            *write_latency
                .entry(c.data_cycle.since(c.accepted))
                .or_insert(0) += 1;
        }
    }
    assert_same_histogram(
        &write_latency,
        &body.histogram("write_latency"),
        "write latency",
    );
    // DRAMsim3 left at most 8 writes in its buffer; our driver flushed them after the last
    // READ.
    let left = s.write_cmds.get() - body.count("num_write_cmds");
    assert!(left <= 8, "{left} writes after the lull");
}

#[test]
fn a_wide_random_mixed_trace_matches_dramsim3() {
    matches_dramsim3(
        WIDE,
        include_str!("data/dramsim3/wide.full.json"),
        include_str!("data/dramsim3/wide.body.json"),
    );
}

#[test]
fn a_hot_random_mixed_trace_matches_dramsim3() {
    matches_dramsim3(
        HOT,
        include_str!("data/dramsim3/hot.full.json"),
        include_str!("data/dramsim3/hot.body.json"),
    );
}

#[test]
fn a_narrow_random_mixed_trace_matches_dramsim3() {
    matches_dramsim3(
        NARROW,
        include_str!("data/dramsim3/narrow.full.json"),
        include_str!("data/dramsim3/narrow.body.json"),
    );
}

/// The speed benchmark's trace (a million requests): cycle-exact too.
#[test]
fn the_million_request_benchmark_trace_matches_dramsim3() {
    matches_dramsim3(
        LONG,
        include_str!("data/dramsim3/long.full.json"),
        include_str!("data/dramsim3/long.body.json"),
    );
}
