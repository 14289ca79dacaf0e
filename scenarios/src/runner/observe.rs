//! What the runner takes from the model while it runs: every op result, through a
//! [`ResultSink`], judged and summarised as it arrives. Nothing is kept per execution beyond
//! fixed bounds, so a program of 10^9 loads costs the same memory as one of ten.
//!
//! The log keeps, per op the scenario cares about:
//!
//! - for a recorded load (every labelled load; with `--all-loads` every load), the number of
//!   executions, the values of the first [`LOAD_VALUES_KEPT`] and the last one;
//! - for an expectation on an op's executions, how many there were, the first one's outcome
//!   and the first that broke the expectation;
//! - every fault, up to [`FAULTS_KEPT`] (the rest counted).

use super::judge::{accepts, describe_outcome};
use crate::scenario::{ExpectKind, Scenario};
use cpu_model::ResultSink;
use cpu_model::program::{OpOutcome, OpResult, OpTag};
use sim_core::{Cycle, DetHashMap, PhysAddr};

/// Values kept per recorded load (the first ones; the last is kept apart).
pub const LOAD_VALUES_KEPT: usize = 16;
/// Loads recorded per run, at most (the rest are counted in `loads_not_recorded`).
pub const LOADS_RECORDED_MAX: usize = 10_000;
/// Faults listed per run, at most (the rest are counted in `faults_not_kept`).
pub const FAULTS_KEPT: usize = 10_000;

/// One execution of a load.
#[derive(Clone, Debug)]
pub(super) struct LoadSeen {
    pub(super) cycle: Cycle,
    /// The physical address of the first byte, KeyID included.
    pub(super) pa: PhysAddr,
    pub(super) bytes: Vec<u8>,
}

/// The values one load returned.
#[derive(Clone, Debug)]
pub(super) struct LoadRecord {
    pub(super) tag: OpTag,
    pub(super) executions: u64,
    /// The first [`LOAD_VALUES_KEPT`] executions.
    pub(super) values: Vec<LoadSeen>,
    /// The last execution, when it is not among `values`.
    pub(super) last: Option<LoadSeen>,
}

/// What the executions of one op showed an expectation about it.
#[derive(Clone, Debug, Default)]
pub(super) struct Verdict {
    pub(super) executions: u64,
    /// The first execution, described.
    pub(super) first: Option<String>,
    /// The first execution that broke the expectation, described.
    pub(super) bad: Option<String>,
}

impl Verdict {
    /// The verdict and what to say about it, as reports word it.
    pub(super) fn outcome(&self) -> (bool, String) {
        if let Some(bad) = &self.bad {
            return (false, bad.clone());
        }
        match (self.executions, &self.first) {
            (0, _) | (_, None) => (false, "never completed".to_owned()),
            (1, Some(first)) => (true, first.clone()),
            (n, _) => (true, format!("all {n} executions as expected")),
        }
    }

    /// Takes one execution; `ok` says whether it met the expectation.
    pub(super) fn take(&mut self, r: &OpResult, ok: Result<(), String>) {
        self.executions += 1;
        let what = format!(
            "at cycle {}: {}",
            r.cycle.get(),
            describe_outcome(&r.outcome)
        );
        if self.first.is_none() {
            self.first = Some(what.clone());
        }
        if self.bad.is_none()
            && let Err(why) = ok
        {
            let nth = if self.executions == 1 {
                String::new()
            } else {
                format!("execution {} ", self.executions)
            };
            self.bad = Some(format!("{nth}{what}{why}"));
        }
    }
}

/// What the log does with one op's results.
#[derive(Clone, Debug, Default)]
struct Watch {
    /// Its record in `loads`.
    load: Option<usize>,
    /// A load the bound on records left out (counted once).
    refused: bool,
    /// The expectations (indices into the scenario's) judged on its executions.
    expectations: Vec<usize>,
}

/// The runner's [`ResultSink`].
#[derive(Debug)]
pub(super) struct ResultLog {
    watch: DetHashMap<OpTag, Watch>,
    /// Every load that ran, when `--all-loads` asked for them.
    record_all: bool,
    pub(super) loads: Vec<LoadRecord>,
    pub(super) loads_not_recorded: u64,
    /// One per expectation of the scenario (only those on op executions change).
    pub(super) verdicts: Vec<Verdict>,
    /// The expectations, as the scenario has them (judged without the scenario at hand).
    kinds: Vec<ExpectKind>,
    /// The first [`FAULTS_KEPT`] faults.
    pub(super) faults: Vec<OpResult>,
    pub(super) faults_total: u64,
}

impl ResultLog {
    /// A log for `scenario`: every labelled load recorded (every load with `all_loads`), every
    /// expectation on op executions judged.
    pub(super) fn new(scenario: &Scenario, all_loads: bool) -> ResultLog {
        let mut log = ResultLog {
            watch: DetHashMap::default(),
            record_all: all_loads,
            loads: Vec::new(),
            loads_not_recorded: 0,
            verdicts: vec![Verdict::default(); scenario.expectations.len()],
            kinds: scenario
                .expectations
                .iter()
                .map(|e| e.kind.clone())
                .collect(),
            faults: Vec::new(),
            faults_total: 0,
        };
        for (tag, info) in scenario.ops.iter().enumerate() {
            if info.loads_value && info.name.is_some() {
                log.record(OpTag(tag as u32));
            }
        }
        for (i, e) in scenario.expectations.iter().enumerate() {
            if let Some(op) = e.kind.op() {
                log.watch.entry(op).or_default().expectations.push(i);
            }
        }
        log
    }

    /// The loads whose values the log needs (when it does not record them all).
    pub(super) fn load_tags(&self) -> impl Iterator<Item = OpTag> + '_ {
        self.watch.keys().copied()
    }

    /// Starts a record for load `tag`, if the bound allows; its index.
    fn record(&mut self, tag: OpTag) -> Option<usize> {
        if self.loads.len() >= LOADS_RECORDED_MAX {
            self.loads_not_recorded += 1;
            self.watch.entry(tag).or_default().refused = true;
            return None;
        }
        self.loads.push(LoadRecord {
            tag,
            executions: 0,
            values: Vec::new(),
            last: None,
        });
        let i = self.loads.len() - 1;
        self.watch.entry(tag).or_default().load = Some(i);
        Some(i)
    }

    /// The recorded loads, in file order.
    pub(super) fn loads_in_order(&self) -> Vec<&LoadRecord> {
        let mut loads: Vec<&LoadRecord> = self.loads.iter().collect();
        loads.sort_by_key(|l| l.tag);
        loads
    }
}

impl ResultSink for ResultLog {
    fn on_result(&mut self, r: OpResult) {
        if let OpOutcome::Fault(_) = r.outcome {
            self.faults_total += 1;
            if self.faults.len() < FAULTS_KEPT {
                self.faults.push(r.clone());
            }
        }
        let is_load = matches!(r.outcome, OpOutcome::Load { .. });
        let load = match self.watch.get(&r.tag) {
            Some(Watch { load: Some(i), .. }) => Some(*i),
            Some(Watch { refused: true, .. }) => None,
            _ if self.record_all && is_load => self.record(r.tag),
            _ => None,
        };
        if let (Some(i), OpOutcome::Load { bytes, pa }) = (load, &r.outcome) {
            let rec = &mut self.loads[i];
            rec.executions += 1;
            if rec.values.len() < LOAD_VALUES_KEPT {
                rec.values.push(LoadSeen {
                    cycle: r.cycle,
                    pa: *pa,
                    bytes: bytes.clone(),
                });
            } else {
                // Reuses the last value's buffer: no allocation per execution.
                let last = rec.last.get_or_insert_with(|| LoadSeen {
                    cycle: r.cycle,
                    pa: *pa,
                    bytes: Vec::new(),
                });
                last.cycle = r.cycle;
                last.pa = *pa;
                last.bytes.clear();
                last.bytes.extend_from_slice(bytes);
            }
        }
        let Some(watch) = self.watch.get(&r.tag) else {
            return;
        };
        for &e in &watch.expectations {
            let ok = accepts(&self.kinds[e], &r.outcome);
            self.verdicts[e].take(&r, ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpu_model::program::Fault;
    use cpu_model::program::FaultKind;
    use sim_core::{CoreId, VirtAddr};

    fn result(tag: u32, cycle: u64, outcome: OpOutcome) -> OpResult {
        OpResult {
            core: CoreId::new(0),
            tag: OpTag(tag),
            cycle: Cycle::new(cycle),
            outcome,
        }
    }

    fn load(byte: u8) -> OpOutcome {
        OpOutcome::Load {
            bytes: vec![byte; 8],
            pa: PhysAddr::new(0x1000),
        }
    }

    #[test]
    fn recorded_loads_and_listed_faults_are_bounded() {
        let n = LOADS_RECORDED_MAX + 3;
        let ops: String = (0..n)
            .map(|i| format!("load(at: phys(keyid: 0, addr: 0x1000), label: \"l{i}\"),"))
            .collect();
        let text = format!("(cores: [(ops: [{ops} store(at: virt(0), data: u8(1))])])");
        let scenario = crate::validate::parse(&text, "many.ron").unwrap();
        let mut log = ResultLog::new(&scenario, false);
        assert_eq!(log.loads.len(), LOADS_RECORDED_MAX);
        assert_eq!(log.loads_not_recorded, 3);
        // Many executions of one load: the first values, then only the last.
        for i in 0..100u64 {
            log.on_result(result(0, i, load(i as u8)));
        }
        let rec = &log.loads[0];
        assert_eq!(rec.executions, 100);
        assert_eq!(rec.values.len(), LOAD_VALUES_KEPT);
        assert_eq!(rec.values[3].bytes, [3; 8]);
        let last = rec.last.as_ref().unwrap();
        assert_eq!(
            (last.cycle, &last.bytes[..]),
            (Cycle::new(99), &[99; 8][..])
        );
        // A load beyond the bound is not recorded, however often it runs.
        log.on_result(result(n as u32 - 1, 1, load(1)));
        assert_eq!(log.loads_not_recorded, 3);
        // Faults: the first ones listed, all counted.
        let fault = OpOutcome::Fault(Fault {
            addr: VirtAddr::new(0),
            kind: FaultKind::NotMapped,
        });
        for i in 0..FAULTS_KEPT as u64 + 5 {
            log.on_result(result(n as u32, i, fault.clone()));
        }
        assert_eq!(log.faults.len(), FAULTS_KEPT);
        assert_eq!(log.faults_total, FAULTS_KEPT as u64 + 5);
    }

    #[test]
    fn every_load_is_recorded_when_asked() {
        let text = "(cores: [(ops: [load(at: phys(keyid: 0, addr: 0x1000)), \
                    load(at: phys(keyid: 0, addr: 0x1040), label: \"b\")])])";
        let scenario = crate::validate::parse(text, "all.ron").unwrap();
        let mut log = ResultLog::new(&scenario, true);
        log.on_result(result(1, 5, load(2)));
        log.on_result(result(0, 6, load(1)));
        let order: Vec<u32> = log.loads_in_order().iter().map(|l| l.tag.0).collect();
        assert_eq!(order, [0, 1]);
        let log = ResultLog::new(&scenario, false);
        assert_eq!(log.loads.len(), 1, "only the labelled load");
    }
}
