//! `mktme-sim dram-trace`'s work: one memory controller's DRAM timing model alone, driven by a
//! DRAMsim3/Ramulator-style request trace file ([`crate::formats::dram_trace`]), and the report
//! of what the validation data measures, as a table or as JSON.
//!
//! Requests are offered in file order, no earlier than their cycle, at most one per cycle; a
//! request refused by a full queue holds back every later one (DRAMsim3's trace CPU). The trace
//! is streamed (and parsed on a thread of its own, [`crate::read_ahead`]), so a trace of any
//! length runs in bounded memory.

use crate::formats::dram_trace::{DramTraceError, DramTraceReader};
use crate::read_ahead::with_read_ahead;
use mem_ctrl::dram::{DramConfig, DriverError, DriverLimits, Encryption, TraceReport, run_trace};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

/// Why a trace run gave no report.
#[derive(Debug, thiserror::Error)]
pub enum DramTraceRunError {
    /// The trace file could not be opened.
    #[error(
        "cannot open trace {}: {error}",
        sim_core::text::shown_max(path, crate::validate::FILE_CHARS_SHOWN)
    )]
    Open {
        /// The trace.
        path: String,
        /// The operating system's error (part of the message, so not also a `source()`).
        error: io::Error,
    },
    /// A line of the trace is malformed (the error names the file and the line).
    #[error(transparent)]
    Trace(DramTraceError),
    /// The run failed: the cycle cap passed, or the controller stalled.
    #[error(
        "{}: {error}",
        sim_core::text::shown_max(path, crate::validate::FILE_CHARS_SHOWN)
    )]
    Run {
        /// The trace.
        path: String,
        /// What happened (part of the message, so not also a `source()`).
        error: DriverError<DramTraceError>,
    },
}

/// The cycle cap of a run when none is given: 10^10 DRAM cycles (about 8 s of simulated time
/// at DDR4-2400, and at most about 10 s of the simulator's time when only refreshes happen).
pub const CYCLES_MAX_DEFAULT: u64 = 10_000_000_000;

/// Runs the trace at `path` on one controller of `config`, with or without the encryption
/// stage's timing, failing when simulated time passes `cycles_max` DRAM cycles
/// ([`CYCLES_MAX_DEFAULT`] when `None`).
pub fn run(
    path: &Path,
    config: &DramConfig,
    encryption: Encryption,
    cycles_max: Option<u64>,
) -> Result<TraceReport, DramTraceRunError> {
    let file = File::open(path).map_err(|error| DramTraceRunError::Open {
        path: path.display().to_string(),
        error,
    })?;
    let records = DramTraceReader::new(path, BufReader::new(file), config);
    let mut limits = DriverLimits::for_config(config);
    limits.cycles_max = Some(cycles_max.unwrap_or(CYCLES_MAX_DEFAULT));
    // The trace is parsed on a thread of its own, in order: the same requests, the same errors.
    match with_read_ahead(records, |records| {
        run_trace(config, encryption, records, limits)
    }) {
        Ok(report) => Ok(report),
        Err(DriverError::Input(e)) => Err(DramTraceRunError::Trace(e)),
        Err(error) => Err(DramTraceRunError::Run {
            path: path.display().to_string(),
            error,
        }),
    }
}

/// The `--json` report: a pretty-printed JSON object and a newline.
pub fn json(report: &TraceReport) -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(&JsonReport::new(report))?;
    json.push('\n');
    Ok(json)
}

/// One histogram bucket.
#[derive(Serialize)]
struct Bucket {
    latency_cycles: u64,
    count: u64,
}

/// The `--json` report. Field order is the output order.
#[derive(Serialize)]
struct JsonReport {
    dram: String,
    encryption: bool,
    reads: u64,
    writes: u64,
    /// READ(A) row hits / READ(A) commands; null without reads.
    row_hit_rate: Option<f64>,
    /// Mean of data-available cycle minus accept cycle over reads; null without reads.
    avg_read_latency_cycles: Option<f64>,
    read_latency_histogram: Vec<Bucket>,
    acts: u64,
    pres: u64,
    refs: u64,
    /// 64 B x (READ(A) + WRITE(A) commands) / (cycles x tCK), in 10^9 B/s.
    bandwidth_gbps: f64,
    peak_bandwidth_gbps: f64,
    /// Last completion cycle + 1 (DRAM cycles).
    cycles: u64,
    t_ck_ps: u32,
    read_cmds: u64,
    write_cmds: u64,
    read_row_hits: u64,
    write_row_hits: u64,
    reads_forwarded: u64,
    reads_coalesced: u64,
    writes_merged: u64,
}

impl JsonReport {
    fn new(r: &TraceReport) -> JsonReport {
        let s = &r.stats;
        JsonReport {
            dram: r.dram.clone(),
            encryption: r.encryption == Encryption::On,
            reads: s.reads.get(),
            writes: s.writes.get(),
            row_hit_rate: r.row_hit_rate(),
            avg_read_latency_cycles: r.avg_read_latency_cycles(),
            read_latency_histogram: s
                .read_latency
                .iter()
                .map(|(latency_cycles, count)| Bucket {
                    latency_cycles,
                    count,
                })
                .collect(),
            acts: s.acts.get(),
            pres: s.pres.get(),
            refs: s.refs.get(),
            bandwidth_gbps: r.bandwidth_gbps(),
            peak_bandwidth_gbps: r.peak_bandwidth_gbps,
            cycles: r.cycles,
            t_ck_ps: r.t_ck_ps,
            read_cmds: s.read_cmds.get(),
            write_cmds: s.write_cmds.get(),
            read_row_hits: s.read_row_hits.get(),
            write_row_hits: s.write_row_hits.get(),
            reads_forwarded: s.reads_forwarded.get(),
            reads_coalesced: s.reads_coalesced.get(),
            writes_merged: s.writes_merged.get(),
        }
    }
}

/// The human-readable report of `report`, a run of the trace at `path`.
pub struct Table<'a>(pub &'a TraceReport, pub &'a Path);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, path) = (self.0, self.1);
        let s = &r.stats;
        let encryption = match r.encryption {
            Encryption::Off => "off",
            Encryption::On => "on",
        };
        writeln!(
            f,
            "dram-trace {} on {} (encryption {encryption}); all cycles are DRAM cycles of {:.3} ns",
            path.display(),
            r.dram,
            f64::from(r.t_ck_ps) / 1000.0
        )?;
        writeln!(f, "  {:<28}{:>14}", "reads", s.reads.get())?;
        writeln!(f, "  {:<28}{:>14}", "writes", s.writes.get())?;
        match r.row_hit_rate() {
            Some(rate) => writeln!(
                f,
                "  {:<28}{:>12.2} %  ({} of {} READ commands)",
                "row hit rate",
                rate * 100.0,
                s.read_row_hits.get(),
                s.read_cmds.get()
            )?,
            None => writeln!(f, "  {:<28}{:>14}", "row hit rate", "-")?,
        }
        match r.avg_read_latency_cycles() {
            Some(avg) => writeln!(f, "  {:<28}{:>14.3}", "avg read latency (cycles)", avg)?,
            None => writeln!(f, "  {:<28}{:>14}", "avg read latency (cycles)", "-")?,
        }
        let common: Vec<String> = r
            .most_common_read_latencies(5)
            .iter()
            .map(|(l, n)| format!("{l} x{n}"))
            .collect();
        if !common.is_empty() {
            writeln!(
                f,
                "  {:<28}{}",
                "most common read latencies",
                common.join(", ")
            )?;
        }
        writeln!(
            f,
            "  {:<28}{:>14}",
            "ACT / PRE / REF",
            format!("{} / {} / {}", s.acts.get(), s.pres.get(), s.refs.get())
        )?;
        writeln!(
            f,
            "  {:<28}{:>14}",
            "READ / WRITE commands",
            format!("{} / {}", s.read_cmds.get(), s.write_cmds.get())
        )?;
        let peak = r.peak_bandwidth_gbps;
        let bw = r.bandwidth_gbps();
        writeln!(
            f,
            "  {:<28}{:>12.3} GB/s  ({:.1} % of the {:.2} GB/s peak)",
            "bandwidth",
            bw,
            if peak > 0.0 { bw / peak * 100.0 } else { 0.0 },
            peak
        )?;
        writeln!(f, "  {:<28}{:>14}", "cycles", r.cycles)
    }
}
