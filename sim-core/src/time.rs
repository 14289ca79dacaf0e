//! Simulated time.
//!
//! A [`Cycle`] counts ticks of one clock. The machine has more than one clock (cores and memory
//! controllers may run at different frequencies), so a component states which clock its cycles
//! belong to and converts with a [`ClockRatio`].

use std::fmt;

/// A point in simulated time, in cycles of some clock.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cycle(u64);

impl Cycle {
    /// Cycle 0, the start of every run.
    pub const ZERO: Cycle = Cycle(0);
    /// The end of time; used as "never" by schedulers.
    pub const NEVER: Cycle = Cycle(u64::MAX);

    /// Wraps a cycle number.
    pub const fn new(n: u64) -> Cycle {
        Cycle(n)
    }

    /// The cycle number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `n` cycles later (saturating at [`Cycle::NEVER`]).
    pub const fn plus(self, n: u64) -> Cycle {
        Cycle(self.0.saturating_add(n))
    }

    /// Cycles elapsed from `earlier` to `self`; 0 if `earlier` is later.
    pub const fn since(self, earlier: Cycle) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The later of two cycles.
    #[inline]
    pub fn max(self, other: Cycle) -> Cycle {
        Ord::max(self, other)
    }
}

impl fmt::Debug for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cycle({})", self.0)
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The ratio between two clocks, `fast : slow = num : den`, used to convert cycle counts
/// between a core clock and a memory-controller clock without floating point.
///
/// `to_fast(c)` rounds up: an event that happens partway through a slow cycle is seen by the fast
/// clock at its next edge.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ClockRatio {
    num: u64,
    den: u64,
}

impl ClockRatio {
    /// `num` fast cycles per `den` slow cycles. Both must be non-zero.
    pub const fn new(num: u64, den: u64) -> Option<ClockRatio> {
        if num == 0 || den == 0 {
            None
        } else {
            Some(ClockRatio { num, den })
        }
    }

    /// Equal clocks.
    pub const ONE: ClockRatio = ClockRatio { num: 1, den: 1 };

    /// Converts a slow-clock cycle to the first fast-clock cycle at or after it.
    pub const fn to_fast(self, slow: Cycle) -> Cycle {
        let wide = slow.0 as u128 * self.num as u128;
        let q = wide.div_ceil(self.den as u128);
        Cycle(if q > u64::MAX as u128 {
            u64::MAX
        } else {
            q as u64
        })
    }

    /// Converts a fast-clock cycle to the slow-clock cycle that contains it.
    pub const fn to_slow(self, fast: Cycle) -> Cycle {
        Cycle((fast.0 as u128 * self.den as u128 / self.num as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_arithmetic_saturates() {
        assert_eq!(Cycle::new(5).plus(3), Cycle::new(8));
        assert_eq!(Cycle::NEVER.plus(1), Cycle::NEVER);
        assert_eq!(Cycle::new(5).since(Cycle::new(8)), 0);
        assert_eq!(Cycle::new(8).since(Cycle::new(5)), 3);
    }

    #[test]
    fn clock_ratio_rounds_toward_the_next_fast_edge() {
        // 3.2 GHz core, 1.2 GHz DRAM: 8 core cycles per 3 DRAM cycles.
        let r = ClockRatio::new(8, 3).unwrap();
        assert_eq!(r.to_fast(Cycle::new(3)), Cycle::new(8));
        assert_eq!(r.to_fast(Cycle::new(1)), Cycle::new(3)); // 2.67 -> 3
        assert_eq!(r.to_slow(Cycle::new(8)), Cycle::new(3));
        assert_eq!(r.to_slow(Cycle::new(7)), Cycle::new(2));
        assert!(ClockRatio::new(0, 1).is_none());
    }
}
