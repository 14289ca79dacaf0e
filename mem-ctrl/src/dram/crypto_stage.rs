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

use super::config::CryptoTiming;
use sim_core::Cycle;

/// One pipelined AES engine.
#[derive(Clone, Debug)]
pub struct CryptoPipeline {
    latency_cycles: u64,
    interval_cycles: u64,
    /// Per lane: the first cycle it can accept another line.
    lane_free: Vec<Cycle>,
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
        }
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
    }

    #[test]
    fn lanes_work_in_parallel() {
        let mut p = CryptoPipeline::new(3, 2, 4);
        assert_eq!(p.admit(Cycle::new(0)), Cycle::new(3));
        assert_eq!(p.admit(Cycle::new(0)), Cycle::new(3));
        assert_eq!(p.admit(Cycle::new(0)), Cycle::new(7));
    }
}
