//! Statistics of the DRAM timing model, counted the way validation-data.md section 2 defines
//! them.

use sim_core::{Counter, Histogram, StatsReport};

/// Counters of one channel (or, summed, of a whole controller).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct DramStats {
    /// Read requests accepted.
    pub reads: Counter,
    /// Write requests accepted.
    pub writes: Counter,
    /// Reads served from a pending write (no DRAM access).
    pub reads_forwarded: Counter,
    /// Reads that joined an identical pending read (one READ serves both).
    pub reads_coalesced: Counter,
    /// Writes merged into a pending write to the same line (one WRITE carries both).
    pub writes_merged: Counter,
    /// READ and READA commands.
    pub read_cmds: Counter,
    /// WRITE and WRITEA commands.
    pub write_cmds: Counter,
    /// READ(A) commands issued to a row that had already served a column command since its ACT.
    pub read_row_hits: Counter,
    /// WRITE(A) commands issued to a row that had already served a column command since its
    /// ACT.
    pub write_row_hits: Counter,
    /// ACT commands.
    pub acts: Counter,
    /// Explicit PRE commands (auto-precharge is not counted, as in DRAMsim3).
    pub pres: Counter,
    /// REF commands.
    pub refs: Counter,
    /// Read latency: cycle the data is available (DRAM data return, plus the decrypt stage when
    /// encryption is on) minus the cycle the request was accepted.
    pub read_latency: Histogram,
    /// Write latency: cycle the write burst finished on the bus minus the accept cycle (merged
    /// writes are not sampled).
    pub write_latency: Histogram,
}

impl DramStats {
    /// Adds `other` into `self` (for summing channels).
    pub fn absorb(&mut self, other: &DramStats) {
        self.reads.add(other.reads.get());
        self.writes.add(other.writes.get());
        self.reads_forwarded.add(other.reads_forwarded.get());
        self.reads_coalesced.add(other.reads_coalesced.get());
        self.writes_merged.add(other.writes_merged.get());
        self.read_cmds.add(other.read_cmds.get());
        self.write_cmds.add(other.write_cmds.get());
        self.read_row_hits.add(other.read_row_hits.get());
        self.write_row_hits.add(other.write_row_hits.get());
        self.acts.add(other.acts.get());
        self.pres.add(other.pres.get());
        self.refs.add(other.refs.get());
        for (v, n) in other.read_latency.iter() {
            for _ in 0..n {
                self.read_latency.record(v);
            }
        }
        for (v, n) in other.write_latency.iter() {
            for _ in 0..n {
                self.write_latency.record(v);
            }
        }
    }

    /// Fraction of READ(A) commands that were row hits, `None` without reads.
    pub fn read_row_hit_rate(&self) -> Option<f64> {
        let n = self.read_cmds.get();
        (n > 0).then(|| self.read_row_hits.get() as f64 / n as f64)
    }

    /// Fraction of WRITE(A) commands that were row hits, `None` without writes.
    pub fn write_row_hit_rate(&self) -> Option<f64> {
        let n = self.write_cmds.get();
        (n > 0).then(|| self.write_row_hits.get() as f64 / n as f64)
    }

    /// Bursts on the data bus (one per READ(A) or WRITE(A)).
    pub fn bursts(&self) -> u64 {
        self.read_cmds.get() + self.write_cmds.get()
    }

    /// Writes every counter into `report` under `prefix`.
    pub fn report(&self, prefix: &str, report: &mut StatsReport) {
        for (name, c) in [
            ("reads", self.reads),
            ("writes", self.writes),
            ("reads_forwarded", self.reads_forwarded),
            ("reads_coalesced", self.reads_coalesced),
            ("writes_merged", self.writes_merged),
            ("read_cmds", self.read_cmds),
            ("write_cmds", self.write_cmds),
            ("read_row_hits", self.read_row_hits),
            ("write_row_hits", self.write_row_hits),
            ("acts", self.acts),
            ("pres", self.pres),
            ("refs", self.refs),
        ] {
            report.count(prefix, name, c.get());
        }
        report.histogram(prefix, "read_latency_cycles", &self.read_latency);
        report.histogram(prefix, "write_latency_cycles", &self.write_latency);
    }
}
