//! Statistics: counters and histograms kept as plain fields by components, and a report they
//! write into by name.
//!
//! Components keep their counters as struct fields (no lookups on the hot path) and copy them
//! into a [`StatsReport`] when asked. The report is ordered by name, so two runs of the same
//! scenario print their statistics in the same order.

use std::collections::BTreeMap;

/// A monotonically increasing event count.
#[derive(Copy, Clone, PartialEq, Eq, Default, Debug)]
pub struct Counter(u64);

impl Counter {
    /// Counts one event.
    pub fn inc(&mut self) {
        self.0 += 1;
    }

    /// Counts `n` events.
    pub fn add(&mut self, n: u64) {
        self.0 += n;
    }

    /// The count.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// An exact histogram of non-negative integer samples (for example latencies in cycles).
///
/// Values below [`Histogram::DENSE`] are counted in an array indexed by value (allocated at the
/// first such sample), larger ones in an ordered map: recording a typical latency is one
/// increment, not a map insertion.
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Histogram {
    dense: Vec<u64>,
    sparse: BTreeMap<u64, u64>,
    count: u64,
    sum: u128,
}

impl Histogram {
    /// Values below this are counted in the dense array.
    pub const DENSE: u64 = 512;

    /// Records one sample.
    #[inline]
    pub fn record(&mut self, value: u64) {
        if value < Self::DENSE {
            if self.dense.is_empty() {
                self.dense = vec![0; Self::DENSE as usize];
            }
            self.dense[value as usize] += 1;
        } else {
            *self.sparse.entry(value).or_insert(0) += 1;
        }
        self.count += 1;
        self.sum += u128::from(value);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all samples.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Mean of the samples, or `None` when there are none.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// `(value, occurrences)` pairs in increasing value order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(v, n)| (v as u64, *n))
            .chain(self.sparse.iter().map(|(v, n)| (*v, *n)))
    }
}

/// One named statistic.
#[derive(Clone, PartialEq, Debug)]
pub enum StatValue {
    /// An event count.
    Count(u64),
    /// A histogram of samples.
    Histogram(Histogram),
}

/// Statistics of a whole machine, keyed by dotted names such as `mc0.reads`.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct StatsReport {
    entries: BTreeMap<String, StatValue>,
}

impl StatsReport {
    /// An empty report.
    pub fn new() -> StatsReport {
        StatsReport::default()
    }

    /// Records a count under `prefix.name`.
    pub fn count(&mut self, prefix: &str, name: &str, value: u64) {
        self.entries
            .insert(join(prefix, name), StatValue::Count(value));
    }

    /// Records a histogram under `prefix.name`.
    pub fn histogram(&mut self, prefix: &str, name: &str, value: &Histogram) {
        self.entries
            .insert(join(prefix, name), StatValue::Histogram(value.clone()));
    }

    /// The statistic called `name`, if recorded.
    pub fn get(&self, name: &str) -> Option<&StatValue> {
        self.entries.get(name)
    }

    /// The count called `name`, if recorded as a count.
    pub fn get_count(&self, name: &str) -> Option<u64> {
        match self.entries.get(name)? {
            StatValue::Count(v) => Some(*v),
            StatValue::Histogram(_) => None,
        }
    }

    /// All statistics in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &StatValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_small_and_large_values_in_value_order() {
        let mut h = Histogram::default();
        for v in [600, 3, 511, 3, 512, 0, 10_000, 600] {
            h.record(v);
        }
        let got: Vec<(u64, u64)> = h.iter().collect();
        assert_eq!(
            got,
            [(0, 1), (3, 2), (511, 1), (512, 1), (600, 2), (10_000, 1)]
        );
        assert_eq!((h.count(), h.sum()), (8, 12_229));
    }

    #[test]
    fn report_is_ordered_by_name() {
        let mut r = StatsReport::new();
        r.count("mc1", "reads", 2);
        r.count("mc0", "reads", 1);
        let names: Vec<&str> = r.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["mc0.reads", "mc1.reads"]);
        assert_eq!(r.get_count("mc1.reads"), Some(2));
    }

    #[test]
    fn histogram_mean_and_buckets() {
        let mut h = Histogram::default();
        for v in [22, 22, 39] {
            h.record(v);
        }
        assert_eq!(h.count(), 3);
        assert_eq!(h.iter().collect::<Vec<_>>(), [(22, 2), (39, 1)]);
        assert!((h.mean().unwrap() - 27.666_666).abs() < 1e-3);
        assert_eq!(Histogram::default().mean(), None);
    }
}
