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
    #[inline]
    pub const fn to_fast(self, slow: Cycle) -> Cycle {
        // The memory side converts on every step: 64-bit arithmetic when the product fits (it
        // always does but near `Cycle::NEVER`), the same quotient as the 128-bit one.
        if let Some(wide) = slow.0.checked_mul(self.num) {
            return Cycle(wide.div_ceil(self.den));
        }
        let wide = slow.0 as u128 * self.num as u128;
        let q = wide.div_ceil(self.den as u128);
        Cycle(if q > u64::MAX as u128 {
            u64::MAX
        } else {
            q as u64
        })
    }

    /// Converts a fast-clock cycle to the slow-clock cycle that contains it.
    #[inline]
    pub const fn to_slow(self, fast: Cycle) -> Cycle {
        if let Some(wide) = fast.0.checked_mul(self.den) {
            return Cycle(wide / self.num);
        }
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

    #[test]
    fn clock_ratio_64_bit_path_agrees_with_128_bit_arithmetic() {
        // Issue 14: the conversions take 64-bit arithmetic when the product fits.
        let ratios = [
            (8, 3),
            (3, 8),
            (1, 1),
            (26, 12),
            (32, 12),
            (u64::MAX, 7),
            (7, u64::MAX),
        ];
        let cycles = [
            0,
            1,
            2,
            3,
            7,
            8,
            1 << 20,
            1 << 40,
            u64::MAX / 8,
            u64::MAX / 3,
            u64::MAX,
        ];
        for (num, den) in ratios {
            let r = ClockRatio::new(num, den).unwrap();
            for c in cycles
                .into_iter()
                .chain(cycles.map(|c| c.saturating_sub(1)))
            {
                let fast = (u128::from(c) * u128::from(num)).div_ceil(u128::from(den));
                let fast = u64::try_from(fast).unwrap_or(u64::MAX);
                assert_eq!(
                    r.to_fast(Cycle::new(c)),
                    Cycle::new(fast),
                    "{num}:{den} to_fast({c})"
                );
                let slow = (u128::from(c) * u128::from(den) / u128::from(num)) as u64;
                assert_eq!(
                    r.to_slow(Cycle::new(c)),
                    Cycle::new(slow),
                    "{num}:{den} to_slow({c})"
                );
            }
        }
    }
}
