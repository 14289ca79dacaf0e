//! The hierarchy's counters, kept as plain fields on the hot path and written into a
//! [`StatsReport`] on request.
//!
//! Names in the report:
//!
//! - `l1d.<counter>`, `l2.<counter>`, `llc.<counter>`: per level, summed over cores;
//! - `core<N>.l1d.<counter>`, `core<N>.l2.<counter>`, `core<N>.llc.<counter>`: per core (for
//!   the shared LLC, what that core's requests caused there; work no core asked for, such as
//!   the end-of-run drain, is only in the `llc.*` sums);
//! - `hierarchy.<counter>`: traffic to memory and hierarchy-wide events.
//!
//! Accesses, hits and misses are counted once per request, when it is accepted, by where its
//! line was then; a request that had to be replayed after a race is counted in
//! `hierarchy.replays`, not again.

use crate::events::Level;
use sim_core::{Counter, StatsReport};

/// The counters of one level (of one core, for the per-core view).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct LevelCounters {
    /// Demand requests that looked the level up (loads, stores, speculative loads, software
    /// prefetches at the L1D; L1D misses at the L2; L2 misses at the LLC).
    pub accesses: Counter,
    /// Of those, reads (everything but stores).
    pub reads: Counter,
    /// Of those, stores.
    pub writes: Counter,
    /// Found the line with the permission needed (for a store, E or M). At the LLC: found on
    /// chip, in the LLC or, non-inclusive, in another core's caches.
    pub hits: Counter,
    /// Did not (a store to an S line is a write miss: it needs an upgrade).
    pub misses: Counter,
    /// Read misses.
    pub read_misses: Counter,
    /// Write misses.
    pub write_misses: Counter,
    /// Lines filled from the next level out or memory (demand, prefetch, speculative), not
    /// counting dirty lines written in from an inner level.
    pub lines_fetched: Counter,
    /// Dirty copies that left by replacement or back-invalidation, their data going one level
    /// out (or to memory from the LLC).
    pub writebacks_evicted: Counter,
    /// Dirty copies written back by the end-of-run drain.
    pub writebacks_at_end: Counter,
    /// Misses merged into an outstanding MSHR for the same line.
    pub mshr_merges: Counter,
    /// Requests refused, or prefetches dropped, because every MSHR was busy.
    pub mshr_full: Counter,
    /// Hardware prefetches issued into this level.
    pub prefetches_issued: Counter,
    /// Hardware prefetches whose line a demand request used (or merged into) before it left.
    pub prefetches_useful: Counter,
    /// Copies removed by another core's read-for-ownership or upgrade.
    pub coherence_invalidations: Counter,
    /// Copies removed because an outer inclusive level evicted the line.
    pub back_invalidations: Counter,
    /// At the L1D and L2: snoops (another core's read or RFO) that found this core's copy. At
    /// the LLC: directory transactions that had to snoop another core.
    pub snoops: Counter,
}

impl LevelCounters {
    fn fields(&self) -> [(&'static str, u64); 17] {
        [
            ("accesses", self.accesses.get()),
            ("reads", self.reads.get()),
            ("writes", self.writes.get()),
            ("hits", self.hits.get()),
            ("misses", self.misses.get()),
            ("read_misses", self.read_misses.get()),
            ("write_misses", self.write_misses.get()),
            ("lines_fetched", self.lines_fetched.get()),
            ("writebacks_evicted", self.writebacks_evicted.get()),
            ("writebacks_at_end", self.writebacks_at_end.get()),
            ("mshr_merges", self.mshr_merges.get()),
            ("mshr_full", self.mshr_full.get()),
            ("prefetches_issued", self.prefetches_issued.get()),
            ("prefetches_useful", self.prefetches_useful.get()),
            (
                "coherence_invalidations",
                self.coherence_invalidations.get(),
            ),
            ("back_invalidations", self.back_invalidations.get()),
            ("snoops", self.snoops.get()),
        ]
    }

    /// Counts one demand lookup.
    pub(super) fn access(&mut self, write: bool, hit: bool) {
        self.accesses.inc();
        if write {
            self.writes.inc();
        } else {
            self.reads.inc();
        }
        if hit {
            self.hits.inc();
        } else {
            self.misses.inc();
            if write {
                self.write_misses.inc();
            } else {
                self.read_misses.inc();
            }
        }
    }
}

/// Hierarchy-wide counters.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct GlobalCounters {
    /// Line reads sent to memory.
    pub mem_reads: Counter,
    /// Line writes sent to memory.
    pub mem_writes: Counter,
    /// Of those, lines no committed store had dirtied (only under the counterfactual knob).
    pub mem_writes_not_by_store: Counter,
    /// Memory reads answered.
    pub mem_read_responses: Counter,
    /// Memory write acknowledgements received.
    pub mem_write_acks: Counter,
    /// Steps that waited for room in the write-back buffer.
    pub writeback_buffer_waits: Counter,
    /// Requests replayed because their line moved between issue and completion.
    pub replays: Counter,
    /// Other-KeyID lines removed by the `evict_other_keyids` alias policy.
    pub alias_evictions: Counter,
    /// CLFLUSH instructions completed.
    pub clflush: Counter,
    /// CLFLUSHOPT instructions completed.
    pub clflushopt: Counter,
    /// CLWB instructions completed.
    pub clwb: Counter,
    /// WBINVD instructions completed.
    pub wbinvd: Counter,
}

/// Every counter of the hierarchy.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    /// `[core][level]`: L1D, L2, and the LLC activity the core caused.
    pub per_core: Vec<[LevelCounters; 3]>,
    /// LLC activity no core caused (the drain).
    pub llc_unattributed: LevelCounters,
    pub global: GlobalCounters,
}

pub(crate) const fn level_index(level: Level) -> usize {
    match level {
        Level::L1d => 0,
        Level::L2 => 1,
        Level::Llc => 2,
    }
}

const LEVELS: [Level; 3] = [Level::L1d, Level::L2, Level::Llc];

impl Stats {
    pub(super) fn new(cores: usize) -> Stats {
        Stats {
            per_core: vec![Default::default(); cores],
            llc_unattributed: LevelCounters::default(),
            global: GlobalCounters::default(),
        }
    }

    /// The counters of `level`, charged to `core` (`None`: the LLC's unattributed counters).
    #[inline]
    pub(super) fn at(&mut self, core: Option<usize>, level: Level) -> &mut LevelCounters {
        match core {
            Some(c) => &mut self.per_core[c][level_index(level)],
            None => {
                debug_assert_eq!(level, Level::Llc, "only LLC work can be unattributed");
                &mut self.llc_unattributed
            }
        }
    }

    pub(super) fn report(&self, report: &mut StatsReport) {
        for level in LEVELS {
            let i = level_index(level);
            let mut sums = [0u64; 17];
            for (c, counters) in self.per_core.iter().enumerate() {
                let prefix = format!("core{c}.{}", level.name());
                for (k, (name, value)) in counters[i].fields().into_iter().enumerate() {
                    report.count(&prefix, name, value);
                    sums[k] += value;
                }
            }
            if level == Level::Llc {
                for (k, (_, value)) in self.llc_unattributed.fields().into_iter().enumerate() {
                    sums[k] += value;
                }
            }
            let names = LevelCounters::default().fields().map(|(n, _)| n);
            for (name, sum) in names.into_iter().zip(sums) {
                report.count(level.name(), name, sum);
            }
        }
        let g = &self.global;
        for (name, value) in [
            ("mem_reads", g.mem_reads),
            ("mem_writes", g.mem_writes),
            ("mem_writes_not_by_store", g.mem_writes_not_by_store),
            ("mem_read_responses", g.mem_read_responses),
            ("mem_write_acks", g.mem_write_acks),
            ("writeback_buffer_waits", g.writeback_buffer_waits),
            ("replays", g.replays),
            ("alias_evictions", g.alias_evictions),
            ("clflush", g.clflush),
            ("clflushopt", g.clflushopt),
            ("clwb", g.clwb),
            ("wbinvd", g.wbinvd),
        ] {
            report.count("hierarchy", name, value.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_per_core_names() {
        let mut s = Stats::new(2);
        s.at(Some(0), Level::L1d).access(false, true);
        s.at(Some(1), Level::L1d).access(true, false);
        s.at(Some(1), Level::Llc).lines_fetched.inc();
        s.at(None, Level::Llc).writebacks_at_end.add(3);
        s.global.mem_reads.inc();
        let mut r = StatsReport::new();
        s.report(&mut r);
        assert_eq!(r.get_count("l1d.accesses"), Some(2));
        assert_eq!(r.get_count("l1d.hits"), Some(1));
        assert_eq!(r.get_count("l1d.write_misses"), Some(1));
        assert_eq!(r.get_count("core1.l1d.writes"), Some(1));
        assert_eq!(r.get_count("core0.l1d.writes"), Some(0));
        assert_eq!(r.get_count("llc.lines_fetched"), Some(1));
        assert_eq!(r.get_count("llc.writebacks_at_end"), Some(3));
        assert_eq!(r.get_count("core1.llc.writebacks_at_end"), Some(0));
        assert_eq!(r.get_count("hierarchy.mem_reads"), Some(1));
        assert_eq!(r.get_count("l2.snoops"), Some(0));
    }
}
