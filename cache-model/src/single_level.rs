//! A single cache level driven by a trace, counted the way DineroIV counts
//! (validation-data.md, section 1), with no memory model behind it.
//!
//! Counting rules:
//! - an access touching k lines counts as k accesses of the same kind, in address order, each
//!   with its own hit or miss; the k - 1 extra pieces add up to `multi_line` (DineroIV's
//!   "multi-block refs");
//! - a miss that allocates fetches the whole line (`lines_fetched`); under the default
//!   write-allocate policy every miss does;
//! - a write-back write makes its line dirty; a dirty victim is written back
//!   (`writebacks_evicted`);
//! - when the trace ends, every line still dirty is written back too, counted apart
//!   (`writebacks_at_end`), so that the bytes written to memory cover every store.
//!
//! ```
//! use cache_model::{CacheConfig, SingleLevelSim};
//! use cache_model::Access;
//! use sim_core::RngFactory;
//!
//! let mut sim = SingleLevelSim::new(
//!     CacheConfig::default().validate().unwrap(),
//!     RngFactory::new(0).fork("l1d"),
//! );
//! sim.access(Access::write(0x1000, 8));
//! sim.access(Access::read(0x103c, 8)); // crosses into the next line: two pieces
//! let stats = sim.finish();
//! assert_eq!((stats.accesses, stats.misses, stats.multi_line), (3, 2, 1));
//! assert_eq!((stats.writebacks_evicted, stats.writebacks_at_end), (0, 1));
//! ```

use crate::access::{Access, AccessKind};
use crate::cache::Cache;
use crate::config::CacheParams;
use sim_core::{BitRange, PhysAddr, SimRng};

/// What one cache level counted. Every field is a count of line-sized pieces of accesses
/// except where it says otherwise.
#[derive(Copy, Clone, PartialEq, Eq, Default, Debug)]
pub struct LevelStats {
    /// Line size of the level in bytes, to turn line counts into bytes.
    pub line_bytes: u64,
    /// Pieces looked up (reads + writes).
    pub accesses: u64,
    /// Read pieces.
    pub reads: u64,
    /// Write pieces.
    pub writes: u64,
    /// Pieces that found their line.
    pub hits: u64,
    /// Read pieces that found their line.
    pub read_hits: u64,
    /// Write pieces that found their line.
    pub write_hits: u64,
    /// Pieces that did not find their line.
    pub misses: u64,
    /// Read pieces that missed.
    pub read_misses: u64,
    /// Write pieces that missed.
    pub write_misses: u64,
    /// Extra pieces of accesses that touched more than one line (k - 1 per access).
    pub multi_line: u64,
    /// Lines fetched from the next level (misses that allocated).
    pub lines_fetched: u64,
    /// Dirty victims written back on eviction.
    pub writebacks_evicted: u64,
    /// Dirty lines written back when the trace ended.
    pub writebacks_at_end: u64,
    /// Write pieces passed on to the next level as they happened (write-through, or a write
    /// miss under no-write-allocate).
    pub writes_forwarded: u64,
    /// Bytes those forwarded writes carried.
    pub bytes_forwarded: u64,
}

impl LevelStats {
    /// Every line written back, on eviction or at the end.
    pub const fn writebacks(&self) -> u64 {
        self.writebacks_evicted + self.writebacks_at_end
    }

    /// Hits over accesses, `None` before any access.
    pub fn hit_rate(&self) -> Option<f64> {
        (self.accesses > 0).then(|| self.hits as f64 / self.accesses as f64)
    }

    /// Misses over accesses, `None` before any access.
    pub fn miss_rate(&self) -> Option<f64> {
        (self.accesses > 0).then(|| self.misses as f64 / self.accesses as f64)
    }

    /// Bytes read from the next level: whole lines fetched.
    pub const fn bytes_fetched(&self) -> u64 {
        self.lines_fetched * self.line_bytes
    }

    /// Bytes written to the next level: whole lines written back, plus forwarded writes.
    pub const fn bytes_written(&self) -> u64 {
        self.writebacks() * self.line_bytes + self.bytes_forwarded
    }
}

/// What the trace itself contained, before accesses were cut into line-sized pieces.
#[derive(Copy, Clone, PartialEq, Eq, Default, Debug)]
pub struct TraceCounts {
    /// Accesses taken from the trace.
    pub accesses: u64,
    /// Of which reads.
    pub reads: u64,
    /// Of which writes.
    pub writes: u64,
    /// Bytes they accessed.
    pub bytes: u64,
}

/// One cache level under a trace, with DineroIV's counting rules.
pub struct SingleLevelSim {
    cache: Cache<()>,
    /// The block-address field of the cache's addresses: splits accesses into line pieces.
    block: BitRange,
    stats: LevelStats,
    trace: TraceCounts,
}

impl SingleLevelSim {
    /// An empty cache with parameters `params`; `rng` feeds random replacement only.
    pub fn new(params: CacheParams, rng: SimRng) -> SingleLevelSim {
        let line_bytes = params.line_bytes();
        SingleLevelSim {
            block: params.block_field(),
            cache: Cache::new(params, rng),
            stats: LevelStats {
                line_bytes,
                ..LevelStats::default()
            },
            trace: TraceCounts::default(),
        }
    }

    /// The cache's parameters.
    pub fn params(&self) -> &CacheParams {
        self.cache.params()
    }

    /// The cache, for inspection.
    pub fn cache(&self) -> &Cache<()> {
        &self.cache
    }

    /// The counts so far (without the end-of-trace write-backs, which [`Self::finish`] adds).
    pub fn stats(&self) -> &LevelStats {
        &self.stats
    }

    /// What the trace contained so far.
    pub fn trace_counts(&self) -> &TraceCounts {
        &self.trace
    }

    /// Simulates one access: one piece per line it touches, in address order.
    #[inline]
    pub fn access(&mut self, access: Access) {
        self.trace.accesses += 1;
        self.trace.bytes += u64::from(access.size.max(1));
        let is_write = access.kind == AccessKind::Write;
        if is_write {
            self.trace.writes += 1;
        } else {
            self.trace.reads += 1;
        }
        let first_block = self.block.extract(access.addr);
        let last_block = self.block.extract(access.last_byte());
        self.stats.multi_line += last_block - first_block;
        let mut block = first_block;
        loop {
            // The piece's address: the access's first byte, or the first byte of a later line.
            let addr = if block == first_block {
                access.addr
            } else {
                self.block.insert(0, block)
            };
            let bytes = if is_write {
                // The line's last byte: one before the next line's first (which wraps to 0
                // for the top line of the address space).
                let line_last = self.block.insert(0, block + 1).wrapping_sub(1);
                line_last.min(access.last_byte()) - addr + 1
            } else {
                0
            };
            self.piece(PhysAddr::new(addr), access.kind, bytes);
            if block == last_block {
                break;
            }
            block += 1;
        }
    }

    /// One line-sized piece of an access; `bytes` is the part of a write inside this line.
    #[inline]
    fn piece(&mut self, addr: PhysAddr, kind: AccessKind, bytes: u64) {
        let s = &mut self.stats;
        s.accesses += 1;
        let outcome = self.cache.access(addr, kind);
        match (kind, outcome.hit) {
            (AccessKind::Read, true) => {
                s.reads += 1;
                s.hits += 1;
                s.read_hits += 1;
            }
            (AccessKind::Read, false) => {
                s.reads += 1;
                s.misses += 1;
                s.read_misses += 1;
            }
            (AccessKind::Write, true) => {
                s.writes += 1;
                s.hits += 1;
                s.write_hits += 1;
            }
            (AccessKind::Write, false) => {
                s.writes += 1;
                s.misses += 1;
                s.write_misses += 1;
            }
        }
        s.lines_fetched += u64::from(outcome.filled);
        if outcome.write_forwarded {
            s.writes_forwarded += 1;
            s.bytes_forwarded += bytes;
        }
        if let Some(victim) = outcome.victim
            && victim.dirty
        {
            s.writebacks_evicted += 1;
        }
    }

    /// Simulates every access of `trace`, in order, as [`Self::access`] does one. The first
    /// error the trace yields stops the run and is returned; the accesses before it stay
    /// counted. The trace readers of `scenarios::formats::trace` yield exactly these items; cut
    /// a trace short with [`Iterator::take`].
    #[inline]
    pub fn run<E>(&mut self, trace: impl IntoIterator<Item = Result<Access, E>>) -> Result<(), E> {
        for access in trace {
            self.access(access?);
        }
        Ok(())
    }

    /// Ends the trace: writes back every line still dirty and returns the final counts.
    pub fn finish(self) -> LevelStats {
        let mut stats = self.stats;
        stats.writebacks_at_end = self.cache.dirty_lines().count() as u64;
        debug_assert_eq!(stats.accesses, stats.hits + stats.misses);
        debug_assert_eq!(stats.accesses, stats.reads + stats.writes);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CacheConfig, WriteHitPolicy, WriteMissPolicy, WritePolicy};
    use sim_core::RngFactory;

    fn sim(config: CacheConfig) -> SingleLevelSim {
        SingleLevelSim::new(config.validate().unwrap(), RngFactory::new(0).fork("l1d"))
    }

    fn tiny() -> CacheConfig {
        // 2 sets x 2 ways of 16-byte lines.
        CacheConfig {
            size_bytes: 64,
            sets: 2,
            ways: 2,
            line_bytes: 16,
            ..CacheConfig::default()
        }
    }

    #[test]
    fn line_crossing_accesses_split_in_address_order() {
        let mut s = sim(tiny());
        // Bytes 0x0c..=0x23 touch lines 0x00, 0x10, 0x20.
        s.access(Access::read(0x0c, 24));
        assert_eq!(s.stats().accesses, 3);
        assert_eq!(s.stats().multi_line, 2);
        assert_eq!(s.stats().read_misses, 3);
        // Lines 0x00 and 0x20 share set 0; 0x10 is in set 1: all three are present.
        for a in [0x00, 0x10, 0x20] {
            assert!(s.cache().contains(PhysAddr::new(a)));
        }
        // Another crossing read: line 0x20 hits, 0x30 misses.
        s.access(Access::read(0x2f, 2));
        let st = s.finish();
        assert_eq!(
            (st.accesses, st.hits, st.misses, st.multi_line),
            (5, 1, 4, 3)
        );
        assert_eq!(st.lines_fetched, 4);
    }

    #[test]
    fn dirty_victims_and_end_writebacks_are_counted_apart() {
        let mut s = sim(tiny());
        // Three writes to set 0 in a 2-way set: the first is evicted dirty.
        for a in [0x00, 0x20, 0x40] {
            s.access(Access::write(a, 4));
        }
        s.access(Access::read(0x10, 4));
        let st = s.finish();
        assert_eq!(st.write_misses, 3);
        assert_eq!(st.writebacks_evicted, 1);
        assert_eq!(st.writebacks_at_end, 2);
        assert_eq!(st.bytes_written(), 3 * 16);
        assert_eq!(st.bytes_fetched(), 4 * 16);
        assert_eq!(st.hit_rate(), Some(0.0));
    }

    #[test]
    fn trace_counts_are_before_splitting() {
        let mut s = sim(tiny());
        s.access(Access::write(0x0f, 2));
        s.access(Access::read(0x00, 1));
        assert_eq!(
            *s.trace_counts(),
            TraceCounts {
                accesses: 2,
                reads: 1,
                writes: 1,
                bytes: 3
            }
        );
        assert_eq!(s.stats().accesses, 3);
    }

    #[test]
    fn write_through_forwards_each_piece_with_its_bytes() {
        let mut config = tiny();
        config.write_policy = WritePolicy {
            on_hit: WriteHitPolicy::WriteThrough,
            on_miss: WriteMissPolicy::NoWriteAllocate,
        };
        let mut s = sim(config);
        s.access(Access::write(0x0c, 8)); // 4 bytes in line 0x00, 4 in 0x10
        s.access(Access::read(0x00, 4));
        s.access(Access::write(0x00, 2));
        let st = s.finish();
        assert_eq!(st.writes_forwarded, 3);
        assert_eq!(st.bytes_forwarded, 10);
        assert_eq!(st.lines_fetched, 1, "only the read allocates");
        assert_eq!(st.writebacks(), 0);
        assert_eq!(st.bytes_written(), 10);
    }

    #[test]
    fn an_access_at_the_top_of_the_address_space() {
        let mut s = sim(tiny());
        s.access(Access::write(u64::MAX - 3, 4));
        s.access(Access::read(u64::MAX - 17, 4)); // crosses into the top line
        let st = s.finish();
        assert_eq!((st.accesses, st.multi_line, st.misses), (3, 1, 2));
    }

    #[test]
    fn a_run_stops_at_the_first_error_keeping_what_came_before() {
        let mut s = sim(tiny());
        let trace = [
            Ok(Access::write(0x00, 4)),
            Ok(Access::read(0x10, 4)),
            Err("line 3"),
            Ok(Access::read(0x20, 4)),
        ];
        assert_eq!(s.run(trace), Err("line 3"));
        assert_eq!(s.trace_counts().accesses, 2);
        let mut whole = sim(tiny());
        assert_eq!(whole.run(trace.into_iter().take(2)), Ok(()));
        assert_eq!(whole.finish(), s.finish());
    }

    #[test]
    fn empty_trace() {
        let st = sim(tiny()).finish();
        assert_eq!(st.accesses, 0);
        assert_eq!(st.hit_rate(), None);
    }
}
