//! `mktme-sim overhead`: what the memory-encryption engine costs a workload. The same
//! workload runs with the engine as configured and without it, and then with the engine's
//! throughput cut step by step, to find where the engine becomes the bottleneck.
//!
//! "Without the engine" is, by default, the AES stage's timing taken out ([`OffMode::Ideal`]:
//! no latency, unlimited throughput) while everything else stays: the same keys, the same
//! ciphertext on the bus, the same traffic. That isolates what the engine's latency and
//! throughput cost. TME bypass ([`OffMode::Bypass`]) is the other choice: KeyID 0 and every
//! KeyID in TME behaviour cross the bus as plaintext and skip the stage, but KeyIDs a PCONFIG
//! programmed keep being encrypted, so for a multi-key workload it takes only part of the
//! engine away (docs/mem-ctrl.md, "Timing"). [`OffMode::Plaintext`] takes all of it away: TME
//! bypass, and every KeyID a PCONFIG sets a key for programmed KEYID_NO_ENCRYPT instead, so no
//! line is encrypted (the run's ciphertext expectations then see plaintext). The report says
//! which was used.
//!
//! Every figure comes from the model ([`crate::measure`]): cycles, the DRAM read latency
//! (accept to data out of the decrypt stage; mean and percentiles), sustained DRAM bandwidth,
//! the engine's utilisation and queueing. The runs are independent and run in parallel; the
//! report does not depend on how many at once.

use crate::measure::{EngineUse, MeasureOptions, MemoryFigures};
use crate::workload::{Workload, WorkloadError};
use mem_ctrl::dram::{CryptoTiming, DramConfig, Throughput};
use rayon::prelude::*;
use serde::Serialize;
use std::fmt::Write;

/// How the engine is taken away for the comparison.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OffMode {
    /// The AES stage's timing removed: no latency, unlimited throughput; bytes unchanged.
    Ideal,
    /// TME bypass: KeyID 0 and KeyIDs in TME behaviour are plaintext (MKTME keys still
    /// encrypt).
    Bypass,
    /// TME bypass and every key programmed as KEYID_NO_ENCRYPT: nothing is encrypted.
    Plaintext,
}

impl OffMode {
    /// What it means, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            OffMode::Ideal => {
                "AES stage's timing removed (no latency, unlimited throughput); same keys, \
                 same ciphertext, same traffic"
            }
            OffMode::Bypass => {
                "TME bypass: KeyID 0 and KeyIDs in TME behaviour cross the bus as plaintext and \
                 skip the AES stage; KeyIDs programmed by PCONFIG are still encrypted"
            }
            OffMode::Plaintext => {
                "TME bypass, and every PCONFIG that sets a key programs KEYID_NO_ENCRYPT \
                 instead: no line is encrypted, every line skips the AES stage"
            }
        }
    }
}

/// Options of an overhead run.
#[derive(Clone, Debug)]
pub struct OverheadOptions {
    /// How the engine is taken away.
    pub off: OffMode,
    /// The throughput sweep: each entry multiplies the engine's initiation interval (2: half
    /// the throughput). Empty: no sweep.
    pub slowdowns: Vec<u32>,
    /// A sweep point whose cycles exceed the configured engine's by this fraction or more is
    /// engine-bound.
    pub bound_threshold: f64,
    /// Runs at once (0: one per available core).
    pub jobs: usize,
}

impl Default for OverheadOptions {
    fn default() -> OverheadOptions {
        OverheadOptions {
            off: OffMode::Ideal,
            slowdowns: vec![2, 4, 8, 16, 32, 64],
            bound_threshold: 0.05,
            jobs: 0,
        }
    }
}

/// The engine's assumed timing.
#[derive(Clone, Debug, Serialize)]
pub struct EngineAssumptions {
    /// Decrypt latency, in ns (DRAM cycles).
    pub decrypt_latency_ns: f64,
    /// Encrypt latency, in ns.
    pub encrypt_latency_ns: f64,
    /// Lanes per pipeline and channel.
    pub lanes: u32,
    /// Each lane's initiation interval, in DRAM cycles.
    pub interval_cycles: u32,
    /// Pipelines (channels) in the machine: controllers times channels per controller.
    pub pipelines: u32,
    /// The whole machine's throughput per direction, in GB/s.
    pub throughput_gbps: f64,
    /// The machine's peak DRAM bandwidth (every channel's data bus), in GB/s.
    pub dram_peak_gbps: f64,
}

/// One run of the overhead report.
#[derive(Clone, Debug, Serialize)]
pub struct RunFigures {
    /// What ran.
    pub label: String,
    /// The engine's throughput per direction in this run, in GB/s (`None`: unlimited).
    pub engine_gbps: Option<f64>,
    /// The memory side's figures.
    #[serde(flatten)]
    pub figures: MemoryFigures,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct OverheadReport {
    /// The workload.
    pub workload: String,
    /// How the engine was taken away.
    pub off_mode: OffMode,
    /// What that means.
    pub off_meaning: &'static str,
    /// The engine as configured.
    pub engine: EngineAssumptions,
    /// With the engine as configured.
    pub on: RunFigures,
    /// Without it.
    pub off: RunFigures,
    /// Cycles with the engine over cycles without, minus 1, in percent.
    pub overhead_percent: f64,
    /// Mean read latency added by the engine, in ns.
    pub read_latency_added_ns: Option<f64>,
    /// The throughput sweep, from the most throughput to the least.
    pub sweep: Vec<RunFigures>,
    /// The fraction of extra cycles (over the configured engine's) that makes a sweep point
    /// engine-bound.
    pub bound_threshold: f64,
    /// The highest engine throughput (GB/s per direction) at which the workload was
    /// engine-bound, if any point was.
    pub bottleneck_gbps: Option<f64>,
}

/// The engine timing with its initiation interval multiplied by `slowdown`.
fn slowed(t: CryptoTiming, slowdown: u32) -> CryptoTiming {
    CryptoTiming {
        throughput: Throughput {
            lines: t.throughput.lines,
            per_cycles: t.throughput.per_cycles.saturating_mul(slowdown),
        },
        ..t
    }
}

/// The AES stage's timing taken out: no latency, and more lanes than lines can arrive in one
/// DRAM cycle, each taking a line every cycle.
fn ideal(_: CryptoTiming) -> CryptoTiming {
    CryptoTiming {
        decrypt_latency_cycles: 0,
        encrypt_latency_cycles: 0,
        throughput: Throughput {
            lines: 16,
            per_cycles: 1,
        },
    }
}

fn with_crypto(
    workload: &Workload,
    f: impl Fn(CryptoTiming) -> CryptoTiming,
) -> Result<Workload, WorkloadError> {
    let mut w = workload.clone();
    let memory = &mut w.machine_mut().memory;
    let mut params = memory.dram.params().clone();
    params.crypto = f(params.crypto);
    memory.dram = DramConfig::new(params).map_err(|e| WorkloadError(e.to_string()))?;
    Ok(w)
}

fn assumptions(workload: &Workload) -> EngineAssumptions {
    let memory = &workload.machine().memory;
    let p = memory.dram.params();
    let ns = f64::from(p.timing.t_ck_ps) / 1000.0;
    let pipelines = memory.controllers * p.geometry.channels;
    EngineAssumptions {
        decrypt_latency_ns: f64::from(p.crypto.decrypt_latency_cycles) * ns,
        encrypt_latency_ns: f64::from(p.crypto.encrypt_latency_cycles) * ns,
        lanes: p.crypto.throughput.lines,
        interval_cycles: p.crypto.throughput.per_cycles,
        pipelines,
        throughput_gbps: engine_gbps(workload, 1),
        dram_peak_gbps: memory.dram.peak_bandwidth_gbps() * f64::from(pipelines),
    }
}

/// The machine's engine throughput per direction with the interval times `slowdown`.
fn engine_gbps(workload: &Workload, slowdown: u32) -> f64 {
    let memory = &workload.machine().memory;
    let p = memory.dram.params();
    let pipelines = f64::from(memory.controllers * p.geometry.channels);
    let interval_ns = f64::from(p.crypto.throughput.per_cycles)
        * f64::from(slowdown)
        * f64::from(p.timing.t_ck_ps)
        / 1000.0;
    pipelines * f64::from(p.crypto.throughput.lines) * 64.0 / interval_ns
}

/// Runs `workload` with the engine, without it, and at each of `options.slowdowns`.
pub fn run(
    workload: &Workload,
    options: &OverheadOptions,
) -> Result<OverheadReport, WorkloadError> {
    let mut runs: Vec<(String, Option<f64>, Workload)> = Vec::new();
    runs.push((
        "engine as configured".to_owned(),
        Some(engine_gbps(workload, 1)),
        workload.clone(),
    ));
    let off = match options.off {
        OffMode::Ideal => with_crypto(workload, ideal)?,
        OffMode::Bypass | OffMode::Plaintext => {
            let mut w = workload.clone();
            let memory = &mut w.machine_mut().memory;
            memory.tme.bypass = true;
            memory.keys_as_no_encrypt = options.off == OffMode::Plaintext;
            w
        }
    };
    runs.push(("engine off".to_owned(), None, off));
    // Slowest last, so the first engine-bound run names the bottleneck.
    let mut slowdowns = options.slowdowns.clone();
    slowdowns.sort_unstable();
    slowdowns.dedup();
    for k in slowdowns {
        runs.push((
            format!("engine throughput / {k}"),
            Some(engine_gbps(workload, k)),
            with_crypto(workload, |t| slowed(t, k))?,
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs)
        .build()
        .map_err(|e| WorkloadError(format!("cannot start the worker threads: {e}")))?;
    let results: Vec<Result<RunFigures, WorkloadError>> = pool.install(|| {
        runs.par_iter()
            .map(|(label, gbps, w)| {
                let outcome = w.run(MeasureOptions::default())?;
                Ok(RunFigures {
                    label: label.clone(),
                    engine_gbps: *gbps,
                    figures: outcome.measured.figures(),
                })
            })
            .collect()
    });
    let mut results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let sweep = results.split_off(2);
    let mut off = results.pop().expect("two runs");
    if options.off == OffMode::Ideal {
        // The ideal stage's counts describe no engine.
        off.figures.decrypt = None;
        off.figures.encrypt = None;
    }
    let on = results.pop().expect("two runs");
    let overhead_percent = if off.figures.cycles > 0 {
        (on.figures.cycles as f64 / off.figures.cycles as f64 - 1.0) * 100.0
    } else {
        0.0
    };
    let bottleneck_gbps = sweep
        .iter()
        .find(|r| {
            r.figures.cycles as f64 >= on.figures.cycles as f64 * (1.0 + options.bound_threshold)
        })
        .and_then(|r| r.engine_gbps);
    Ok(OverheadReport {
        workload: workload.name(),
        off_mode: options.off,
        off_meaning: options.off.describe(),
        engine: assumptions(workload),
        read_latency_added_ns: on
            .figures
            .read_latency_ns
            .mean
            .zip(off.figures.read_latency_ns.mean)
            .map(|(a, b)| a - b),
        overhead_percent,
        on,
        off,
        sweep,
        bound_threshold: options.bound_threshold,
        bottleneck_gbps,
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn engine_cells(e: Option<EngineUse>) -> (String, String) {
    match e {
        Some(e) => (
            format!("{:.1}%", e.utilisation * 100.0),
            format!("{:.2}", e.wait_mean_ns),
        ),
        None => ("-".to_owned(), "-".to_owned()),
    }
}

impl OverheadReport {
    /// Pretty JSON, ending with a newline.
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report types always serialize");
        text.push('\n');
        text
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let e = &self.engine;
        let mut out = String::new();
        let _ = writeln!(out, "encryption overhead: {}", self.workload);
        let _ = writeln!(
            out,
            "engine assumed: decrypt {:.2} ns, encrypt {:.2} ns; {} lane(s) x 1 line / {} DRAM \
             cycle(s) per pipeline, {} pipeline(s): {:.1} GB/s per direction (DRAM peak {:.1} GB/s)",
            e.decrypt_latency_ns,
            e.encrypt_latency_ns,
            e.lanes,
            e.interval_cycles,
            e.pipelines,
            e.throughput_gbps,
            e.dram_peak_gbps
        );
        let _ = writeln!(out, "engine off: {}", self.off_meaning);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<26} {:>12} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
            "run",
            "cycles",
            "lat mean",
            "p50",
            "p95",
            "p99",
            "DRAM GB/s",
            "dec util",
            "dec wait",
            "enc util"
        );
        for r in [&self.on, &self.off].into_iter().chain(&self.sweep) {
            let f = &r.figures;
            let l = &f.read_latency_ns;
            let (du, dw) = engine_cells(f.decrypt);
            let (eu, _) = engine_cells(f.encrypt);
            let _ = writeln!(
                out,
                "{:<26} {:>12} {:>9} {:>9} {:>9} {:>9} {:>10.3} {:>9} {:>9} {:>9}",
                r.label,
                f.cycles,
                opt(l.mean, 2),
                opt(l.p50, 2),
                opt(l.p95, 2),
                opt(l.p99, 2),
                f.dram_bandwidth_gbps,
                du,
                dw,
                eu
            );
        }
        let _ = writeln!(
            out,
            "(latencies: DRAM reads, accept to data out of the decrypt stage, ns; wait: mean ns a \
             line waited for a free engine lane)"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "overhead: {:+.2}% cycles; read latency {} ns added on average",
            self.overhead_percent,
            opt(self.read_latency_added_ns, 2)
        );
        match self.bottleneck_gbps {
            Some(g) => {
                let _ = writeln!(
                    out,
                    "engine-bound (>= {:.0}% more cycles than the configured engine) from {g:.2} \
                     GB/s per direction down; the workload sustains {:.3} GB/s of DRAM traffic \
                     with the configured engine",
                    self.bound_threshold * 100.0,
                    self.on.figures.dram_bandwidth_gbps
                );
            }
            None if self.sweep.is_empty() => {
                let _ = writeln!(
                    out,
                    "no throughput sweep run; the workload sustains {:.3} GB/s of DRAM traffic",
                    self.on.figures.dram_bandwidth_gbps
                );
            }
            None => {
                let least = self.sweep.last().and_then(|r| r.engine_gbps);
                let _ = writeln!(
                    out,
                    "never engine-bound (>= {:.0}% more cycles) in the sweep{}; the workload \
                     sustains {:.3} GB/s of DRAM traffic",
                    self.bound_threshold * 100.0,
                    least.map_or_else(String::new, |g| format!(", down to {g:.2} GB/s")),
                    self.on.figures.dram_bandwidth_gbps
                );
            }
        }
        out
    }
}
