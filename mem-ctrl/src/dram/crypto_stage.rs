//! Timing of the controller's memory-encryption stage (AES-XTS), modelled as two independent
//! pipelines: decrypt on the read path (after data returns from DRAM) and encrypt on the write
//! path (before a write enters the DRAM queues).
//!
//! ```text
//!   read:   DRAM burst ends ──► [decrypt: lanes x latency] ──► plaintext to requester
//!   write:  accepted ──► [encrypt: lanes x latency] ──► write buffer ──► DRAM
//! ```
//!
//! Each pipeline has `throughput.lines` lanes; a lane accepts one line every
//! `throughput.per_cycles` cycles, and a line leaves `latency` cycles after it entered. Lines
//! enter in arrival order, each on the lane that frees first (the lowest-numbered lane on a
//! tie), so the model is deterministic and bounded.
//!
//! Each pipeline counts what it did ([`EngineStats`]: lines, the cycles lines waited for a
//! free lane, and the lane-cycles it was busy), for the encryption-overhead report's engine
//! utilisation and queueing. The counts are not part of the statistics every run reports
//! (they are read through [`crate::MemorySystem::report_engine_stats`] on request), so
//! existing reports stay as they were.

use super::config::CryptoTiming;
use sim_core::Cycle;

/// One pipelined AES engine.
#[derive(Clone, Debug)]
pub struct CryptoPipeline {
    latency_cycles: u64,
    interval_cycles: u64,
    /// Per lane: the first cycle it can accept another line.
    lane_free: Vec<Cycle>,
    stats: EngineStats,
}

/// What one pipeline did, in DRAM cycles.
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct EngineStats {
    /// Lines that went through it.
    pub lines: u64,
    /// Cycles lines waited for a free lane, summed (0 while it never limits throughput).
    pub wait_cycles: u64,
    /// The longest wait of one line.
    pub wait_max_cycles: u64,
    /// Lane-cycles the lanes were unable to accept a line: lines times the initiation
    /// interval. Divided by lanes times elapsed cycles, it is the pipeline's utilisation.
    pub busy_lane_cycles: u64,
    /// Parallel lanes.
    pub lanes: u64,
}

impl EngineStats {
    /// Adds `other`'s counts (another channel's pipeline) into `self`; lanes add up too.
    pub fn absorb(&mut self, other: &EngineStats) {
        self.lines += other.lines;
        self.wait_cycles += other.wait_cycles;
        self.wait_max_cycles = self.wait_max_cycles.max(other.wait_max_cycles);
        self.busy_lane_cycles += other.busy_lane_cycles;
        self.lanes += other.lanes;
    }
}

impl CryptoPipeline {
    /// A pipeline with `lanes` lanes (at least 1), each accepting a line every
    /// `interval_cycles`, each line taking `latency_cycles`.
    pub fn new(latency_cycles: u32, lanes: u32, interval_cycles: u32) -> CryptoPipeline {
        assert!(lanes > 0 && interval_cycles > 0, "validated by DramConfig");
        CryptoPipeline {
            latency_cycles: u64::from(latency_cycles),
            interval_cycles: u64::from(interval_cycles),
            lane_free: vec![Cycle::ZERO; lanes as usize],
            stats: EngineStats {
                lanes: u64::from(lanes),
                ..EngineStats::default()
            },
        }
    }

    /// What the pipeline did so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// A line arriving at `arrival` enters the first free lane; returns the cycle it leaves.
    /// Arrivals must be offered in non-decreasing order of `arrival` for the FIFO assumption to
    /// hold (the controller does).
    pub fn admit(&mut self, arrival: Cycle) -> Cycle {
        let (lane, free) = self
            .lane_free
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(i, free)| (free, i))
            .expect("at least one lane");
        let start = arrival.max(free);
        self.lane_free[lane] = start.plus(self.interval_cycles);
        let wait = start.get() - arrival.get();
        self.stats.lines += 1;
        self.stats.wait_cycles += wait;
        self.stats.wait_max_cycles = self.stats.wait_max_cycles.max(wait);
        self.stats.busy_lane_cycles += self.interval_cycles;
        start.plus(self.latency_cycles)
    }
}

/// The two pipelines of one channel.
#[derive(Clone, Debug)]
pub struct CryptoStage {
    /// Read path.
    pub decrypt: CryptoPipeline,
    /// Write path.
    pub encrypt: CryptoPipeline,
}

impl CryptoStage {
    /// Both pipelines from the configured timing.
    pub fn new(t: &CryptoTiming) -> CryptoStage {
        CryptoStage {
            decrypt: CryptoPipeline::new(
                t.decrypt_latency_cycles,
                t.throughput.lines,
                t.throughput.per_cycles,
            ),
            encrypt: CryptoPipeline::new(
                t.encrypt_latency_cycles,
                t.throughput.lines,
                t.throughput.per_cycles,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lane_serialises_at_its_interval() {
        let mut p = CryptoPipeline::new(5, 1, 2);
        assert_eq!(p.admit(Cycle::new(10)), Cycle::new(15));
        // Arrives while the lane is busy: starts at 12.
        assert_eq!(p.admit(Cycle::new(10)), Cycle::new(17));
        assert_eq!(p.admit(Cycle::new(30)), Cycle::new(35));
        let s = p.stats();
        assert_eq!(
            (
                s.lines,
                s.wait_cycles,
                s.wait_max_cycles,
                s.busy_lane_cycles,
                s.lanes
            ),
            (3, 2, 2, 6, 1)
        );
    }

    #[test]
    fn lanes_work_in_parallel() {
        let mut p = CryptoPipeline::new(3, 2, 4);
        assert_eq!(p.admit(Cycle::new(0)), Cycle::new(3));
        assert_eq!(p.admit(Cycle::new(0)), Cycle::new(3));
        assert_eq!(p.admit(Cycle::new(0)), Cycle::new(7));
    }
}
