//! What a run measured, beyond its report: the memory traffic per KeyID and over time (seen
//! by an observer on the cache hierarchy), the merged event stream (for a line's timeline),
//! the statistics with the AES stage's counts, and the figures derived from them (read latency
//! percentiles, sustained DRAM bandwidth, engine utilisation and queueing).
//!
//! The encryption-overhead report, sweeps and pictures all read runs through here, so a
//! figure means the same wherever it appears. Everything is derived from the model's own
//! counts: nothing here is timed on the host, so the same run gives the same figures.

use cache_model::{CacheEvent, CacheObserver};
use cpu_model::SystemEvent;
use serde::Serialize;
use sim_core::{AddressLayout, StatValue, StatsReport};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Most time buckets [`Traffic`] keeps: when a run outgrows them, neighbours are merged and
/// the bucket doubles, so the series stays bounded whatever the run's length.
pub const TRAFFIC_BUCKETS_MAX: usize = 256;

/// Lines the cache hierarchy read from and wrote to memory, per KeyID and per bucket of core
/// cycles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Core cycles per bucket (a power of two, at least 256).
    pub bucket_cycles: u64,
    /// Per bucket, from cycle 0: `[lines read, lines written]`.
    pub buckets: Vec<[u64; 2]>,
    /// Per KeyID: `[lines read, lines written]`.
    pub per_keyid: BTreeMap<u16, [u64; 2]>,
}

impl Default for Traffic {
    fn default() -> Traffic {
        Traffic {
            bucket_cycles: 256,
            buckets: Vec::new(),
            per_keyid: BTreeMap::new(),
        }
    }
}

impl Traffic {
    /// Counts one line read (`write` false) or written at `cycle` through `keyid`.
    pub fn record(&mut self, cycle: u64, keyid: u16, write: bool) {
        let w = usize::from(write);
        self.per_keyid.entry(keyid).or_default()[w] += 1;
        let mut i = cycle / self.bucket_cycles;
        while i >= TRAFFIC_BUCKETS_MAX as u64 {
            self.halve();
            i = cycle / self.bucket_cycles;
        }
        let i = i as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, [0, 0]);
        }
        self.buckets[i][w] += 1;
    }

    /// Doubles the bucket, merging neighbours.
    fn halve(&mut self) {
        self.bucket_cycles *= 2;
        self.buckets = self
            .buckets
            .chunks(2)
            .map(|c| {
                let b = c.get(1).copied().unwrap_or([0, 0]);
                [c[0][0] + b[0], c[0][1] + b[1]]
            })
            .collect();
    }
}

/// The hierarchy's observer behind [`Traffic`]: every line requested from memory
/// (`MemRead`) and every line written to it (`MemWriteback`).
#[derive(Clone, Debug)]
pub struct TrafficWatch {
    traffic: Arc<Mutex<Traffic>>,
    layout: AddressLayout,
}

impl TrafficWatch {
    /// A watch for a machine with this address layout.
    pub fn new(layout: AddressLayout) -> TrafficWatch {
        TrafficWatch {
            traffic: Arc::default(),
            layout,
        }
    }

    /// What it counted so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl CacheObserver for TrafficWatch {
    fn on_event(&mut self, event: &CacheEvent) {
        let (cycle, line, write) = match event {
            CacheEvent::MemRead { cycle, line, .. } => (*cycle, *line, false),
            CacheEvent::MemWriteback { cycle, line, .. } => (*cycle, *line, true),
            _ => return,
        };
        let keyid = self.layout.line_keyid(line).get();
        self.traffic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(cycle.get(), keyid, write);
    }
}

/// What to measure besides the report.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasureOptions {
    /// Events of the merged stream to keep for a line's timeline (0: none).
    pub events_max: usize,
}

/// What a run measured besides its report.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Core cycles until the run ended (the drain included).
    pub cycles: u64,
    /// The core clock (MHz).
    pub core_clock_mhz: u64,
    /// The DRAM clock period (ps).
    pub t_ck_ps: u32,
    /// The machine's address layout.
    pub layout: AddressLayout,
    /// Every statistic, the AES stage's counts (`mcN.engine.*`) included.
    pub stats: StatsReport,
    /// Memory traffic per KeyID and over time.
    pub traffic: Traffic,
    /// The merged event stream, up to [`MeasureOptions::events_max`] events.
    pub events: Vec<SystemEvent>,
    /// Events beyond the bound (counted only).
    pub events_not_recorded: u64,
}

/// Latency figures, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// One direction of the AES stage (every controller's channels together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EngineUse {
    /// Lines through it.
    pub lines: u64,
    /// Busy lane-cycles over lane-cycles elapsed (0 to 1).
    pub utilisation: f64,
    /// Mean wait for a free lane per line, in ns.
    pub wait_mean_ns: f64,
    /// Longest wait of one line, in ns.
    pub wait_max_ns: f64,
}

/// The memory side's figures of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MemoryFigures {
    /// Core cycles of the run.
    pub cycles: u64,
    /// Simulated time, in microseconds.
    pub simulated_us: f64,
    /// DRAM read latency (accept to data out of the decrypt stage), every controller.
    pub read_latency_ns: Latency,
    /// Bursts on the DRAM data buses (READ and WRITE commands).
    pub dram_bursts: u64,
    /// Bytes of those bursts per second of simulated time, in GB/s (10^9 bytes).
    pub dram_bandwidth_gbps: f64,
    /// The decrypt pipelines (read path); `None` without the stage's timing.
    pub decrypt: Option<EngineUse>,
    /// The encrypt pipelines (write path).
    pub encrypt: Option<EngineUse>,
}

/// The value at quantile `q` (0 to 1) of `(value, count)` pairs in ascending order: the
/// smallest value with at least `q` of the samples at or below it.
pub fn quantile(pairs: &[(u64, u64)], q: f64) -> Option<u64> {
    let total: u64 = pairs.iter().map(|p| p.1).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    pairs.iter().find_map(|&(v, n)| {
        seen += n;
        (seen >= rank).then_some(v)
    })
}

/// Every controller's histogram called `mcN.<name>`, merged: `(value, count)` ascending.
pub fn merged_histogram(stats: &StatsReport, name: &str) -> Vec<(u64, u64)> {
    let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
    for (key, value) in stats.iter() {
        let Some(rest) = key.strip_prefix("mc") else {
            continue;
        };
        let Some((digits, tail)) = rest.split_once('.') else {
            continue;
        };
        if tail != name || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let StatValue::Histogram(h) = value {
            for (v, n) in h.iter() {
                *merged.entry(v).or_default() += n;
            }
        }
    }
    merged.into_iter().collect()
}

/// The sum over controllers of the count `mcN.<name>`.
pub fn controller_sum(stats: &StatsReport, name: &str) -> u64 {
    stats
        .iter()
        .filter(|(key, _)| {
            key.strip_prefix("mc")
                .and_then(|r| r.split_once('.'))
                .is_some_and(|(d, tail)| tail == name && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|(_, v)| match v {
            StatValue::Count(n) => Some(*n),
            StatValue::Histogram(_) => None,
        })
        .sum()
}

impl Measured {
    /// What a machine that ran `cycles` measured: its statistics with the AES stage's
    /// counts, and `traffic` (from a [`TrafficWatch`] attached before the run).
    pub fn of_machine(
        machine: &cpu_model::Machine,
        config: &cpu_model::MachineConfig,
        cycles: u64,
        traffic: Traffic,
    ) -> Measured {
        let mut stats = StatsReport::new();
        machine.report_stats(&mut stats);
        machine.memory().report_engine_stats(&mut stats);
        Measured {
            cycles,
            core_clock_mhz: config.memory.core_clock_mhz,
            t_ck_ps: config.memory.dram.params().timing.t_ck_ps,
            layout: config.memory.layout,
            stats,
            traffic,
            events: Vec::new(),
            events_not_recorded: 0,
        }
    }

    /// Nanoseconds per DRAM cycle.
    pub fn dram_ns(&self) -> f64 {
        f64::from(self.t_ck_ps) / 1000.0
    }

    /// The DRAM read latency histogram of every controller, in DRAM cycles.
    pub fn read_latency_cycles(&self) -> Vec<(u64, u64)> {
        merged_histogram(&self.stats, "dram.read_latency_cycles")
    }

    /// The memory side's figures.
    pub fn figures(&self) -> MemoryFigures {
        let simulated_us = self.cycles as f64 / self.core_clock_mhz as f64;
        let ns = self.dram_ns();
        let hist = self.read_latency_cycles();
        let count: u64 = hist.iter().map(|p| p.1).sum();
        let sum: u128 = hist
            .iter()
            .map(|&(v, n)| u128::from(v) * u128::from(n))
            .sum();
        let at = |q| quantile(&hist, q).map(|v| v as f64 * ns);
        let read_latency_ns = Latency {
            count,
            mean: (count > 0).then(|| sum as f64 / count as f64 * ns),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        };
        let dram_bursts = controller_sum(&self.stats, "dram.read_cmds")
            + controller_sum(&self.stats, "dram.write_cmds");
        let dram_bandwidth_gbps = if simulated_us > 0.0 {
            // Bytes per microsecond / 1000 = GB/s.
            dram_bursts as f64 * 64.0 / simulated_us / 1000.0
        } else {
            0.0
        };
        let dram_cycles = simulated_us * 1e6 / f64::from(self.t_ck_ps);
        let engine = |dir: &str| {
            let get = |n: &str| controller_sum(&self.stats, &format!("engine.{dir}.{n}"));
            let lanes = get("lanes");
            (lanes > 0).then(|| {
                let lines = get("lines");
                let max = self
                    .stats
                    .iter()
                    .filter(|(k, _)| k.ends_with(&format!(".engine.{dir}.wait_max_cycles")))
                    .filter_map(|(_, v)| match v {
                        StatValue::Count(n) => Some(*n),
                        StatValue::Histogram(_) => None,
                    })
                    .max()
                    .unwrap_or(0);
                EngineUse {
                    lines,
                    utilisation: if dram_cycles > 0.0 {
                        get("busy_lane_cycles") as f64 / (lanes as f64 * dram_cycles)
                    } else {
                        0.0
                    },
                    wait_mean_ns: if lines > 0 {
                        get("wait_cycles") as f64 / lines as f64 * ns
                    } else {
                        0.0
                    },
                    wait_max_ns: max as f64 * ns,
                }
            })
        };
        MemoryFigures {
            cycles: self.cycles,
            simulated_us,
            read_latency_ns,
            dram_bursts,
            dram_bandwidth_gbps,
            decrypt: engine("decrypt"),
            encrypt: engine("encrypt"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_smallest_value_reaching_the_rank() {
        let h = [(10, 50), (20, 45), (30, 4), (100, 1)];
        assert_eq!(quantile(&h, 0.5), Some(10));
        assert_eq!(quantile(&h, 0.95), Some(20));
        assert_eq!(quantile(&h, 0.99), Some(30));
        assert_eq!(quantile(&h, 1.0), Some(100));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn traffic_stays_bounded_by_merging_buckets() {
        let mut t = Traffic::default();
        t.record(0, 0, false);
        t.record(300, 1, true);
        assert_eq!(
            (t.bucket_cycles, t.buckets.clone()),
            (256, vec![[1, 0], [0, 1]])
        );
        t.record(256 * TRAFFIC_BUCKETS_MAX as u64, 1, false);
        assert_eq!(t.bucket_cycles, 512);
        assert_eq!(t.buckets[0], [1, 1]);
        assert_eq!(t.buckets.len(), TRAFFIC_BUCKETS_MAX / 2 + 1);
        assert_eq!(t.per_keyid[&1], [1, 1]);
        t.record(u64::MAX / 2, 0, false);
        assert!(t.buckets.len() <= TRAFFIC_BUCKETS_MAX);
    }
}
