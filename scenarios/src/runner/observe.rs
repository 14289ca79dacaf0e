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

use crate::report::hex;
use crate::scenario::{ExpectKind, PconfigExpect, Scenario};
use cache_model::{CacheEvent, CacheObserver, WritebackCause};
use cpu_model::ResultSink;
use cpu_model::program::{OpOutcome, OpResult, OpTag};
use mem_ctrl::pconfig::PconfigOutcome;
use sim_core::{
    AddressLayout, Cycle, DetHashMap, DramAddr, KeyId, LINE_BYTES, LineBytes, PhysAddr,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Values kept per recorded load (the first ones; the last is kept apart).
pub const LOAD_VALUES_KEPT: usize = 16;
/// Loads recorded per run, at most (the rest are counted in `loads_not_recorded`).
pub const LOADS_RECORDED_MAX: usize = 10_000;
/// Faults listed per run, at most (the rest are counted in `faults_not_kept`).
pub const FAULTS_KEPT: usize = 10_000;
/// DRAM lines whose last store through a watched KeyID is remembered, at most.
pub const STORED_LINES_MAX: usize = 1 << 20;
/// Executions of one load kept waiting for the same execution of the load it is compared with.
pub const PAIR_WAITING_MAX: usize = 4096;

/// What the caches sent towards memory, as the runner needs it: the line each watched
/// KeyID's last store left (for `written_through`), and the plaintext of every write-back (for
/// the attacker's analyses).
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// Per (DRAM line, KeyID): the cycle of the last store and the whole line after it.
    last_store: DetHashMap<(DramAddr, KeyId), (Cycle, LineBytes)>,
    /// A store was not remembered for want of room.
    stores_dropped: bool,
    /// Every write-back: when it left the hierarchy, its line, its plaintext.
    pub(super) writebacks: Vec<(Cycle, DramAddr, LineBytes)>,
    /// Per (DRAM line, KeyID): the last write-back through that alias (for what violations
    /// became by the end of the run), at most [`STORED_LINES_MAX`].
    pub(super) last_writeback: DetHashMap<(DramAddr, KeyId), LastWriteback>,
    /// Write-backs not kept (beyond the bus log's limit).
    pub(super) writebacks_dropped: u64,
}

/// An alias's last write-back of a line.
#[derive(Copy, Clone, Debug)]
pub(super) struct LastWriteback {
    pub(super) cycle: Cycle,
    pub(super) data: LineBytes,
    /// Written by the end-of-run drain.
    pub(super) by_drain: bool,
}

/// Shared between the hierarchy's observer, which writes, and the result log, which reads.
pub(super) type SharedWrites = Arc<Mutex<Writes>>;

pub(super) fn lock(w: &SharedWrites) -> std::sync::MutexGuard<'_, Writes> {
    // Nothing panics while holding the lock; a poisoned one still holds consistent data.
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The runner's observer on the cache hierarchy: stores through the watched KeyIDs, each
/// alias's last write-back, and every write-back (when the attacker's analyses need them).
#[derive(Debug)]
pub(super) struct WriteWatch {
    pub(super) writes: SharedWrites,
    pub(super) layout: AddressLayout,
    /// Indexed by KeyID: whose stores to remember.
    pub(super) keyids: Vec<bool>,
    /// Write-backs to keep, at most (0: none).
    pub(super) writebacks_max: usize,
}

impl CacheObserver for WriteWatch {
    fn on_event(&mut self, event: &CacheEvent) {
        match event {
            CacheEvent::Store {
                cycle, line, data, ..
            } => {
                let pa = line.base();
                let keyid = self.layout.keyid(pa);
                if !self.keyids.get(keyid.index()).copied().unwrap_or(false) {
                    return;
                }
                let dram = self.layout.dram_addr(pa);
                let mut w = lock(&self.writes);
                let full = w.last_store.len() >= STORED_LINES_MAX;
                match w.last_store.get_mut(&(dram, keyid)) {
                    Some(last) => *last = (*cycle, *data),
                    None if full => w.stores_dropped = true,
                    None => {
                        w.last_store.insert((dram, keyid), (*cycle, *data));
                    }
                }
            }
            CacheEvent::MemWriteback {
                cycle,
                line,
                data,
                cause,
                ..
            } => {
                let pa = line.base();
                let (dram, keyid) = (self.layout.dram_addr(pa), self.layout.keyid(pa));
                let last = LastWriteback {
                    cycle: *cycle,
                    data: *data,
                    by_drain: *cause == WritebackCause::Drain,
                };
                let mut w = lock(&self.writes);
                let full = w.last_writeback.len() >= STORED_LINES_MAX;
                match w.last_writeback.get_mut(&(dram, keyid)) {
                    Some(old) => *old = last,
                    None if full => {}
                    None => {
                        w.last_writeback.insert((dram, keyid), last);
                    }
                }
                if self.writebacks_max == 0 {
                    return;
                }
                if w.writebacks.len() < self.writebacks_max {
                    w.writebacks.push((*cycle, dram, *data));
                } else {
                    w.writebacks_dropped += 1;
                }
            }
            _ => {}
        }
    }
}

/// Two loads compared execution by execution: the executions of each not yet paired.
#[derive(Debug, Default)]
struct Pair {
    first: VecDeque<(Cycle, Vec<u8>)>,
    other: VecDeque<(Cycle, Vec<u8>)>,
    runs: [u64; 2],
}

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
        let what = format!(
            "at cycle {}: {}",
            r.cycle.get(),
            describe_outcome(&r.outcome)
        );
        self.take_described(what, ok);
    }

    /// Takes one execution, described by `what`.
    fn take_described(&mut self, what: String, ok: Result<(), String>) {
        self.executions += 1;
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

/// An execution's outcome in words, for reports.
pub(super) fn describe_outcome(outcome: &OpOutcome) -> String {
    match outcome {
        OpOutcome::Load { bytes, .. } => format!("loaded {}", hex(bytes)),
        OpOutcome::Fault(f) => format!("faulted ({}) at {:#x}", f.kind.name(), f.addr),
        OpOutcome::Pconfig(o) => format!("PCONFIG {o}"),
        OpOutcome::Kernel(Ok(v)) => format!("returned {v:#x}"),
        OpOutcome::Kernel(Err(e)) => format!("failed with {e}"),
    }
}

fn pconfig_matches(expect: PconfigExpect, outcome: &PconfigOutcome) -> bool {
    match (expect, outcome) {
        (PconfigExpect::Status(s), PconfigOutcome::Status(got)) => s == *got,
        (PconfigExpect::Fault(v), PconfigOutcome::Fault(f)) => f.vector() == v,
        _ => false,
    }
}

/// Whether one execution's outcome meets an expectation on op executions; `Err` carries what
/// to add to the description of the execution that did not (nothing, for most).
pub(super) fn accepts(kind: &ExpectKind, outcome: &OpOutcome) -> Result<(), String> {
    let ok = match kind {
        ExpectKind::LoadValue { bytes, .. } => {
            matches!(outcome, OpOutcome::Load { bytes: got, .. } if got == bytes)
        }
        ExpectKind::LoadNot { bytes, .. } => {
            matches!(outcome, OpOutcome::Load { bytes: got, .. } if got != bytes)
        }
        ExpectKind::Pconfig { outcome: want, .. } => {
            matches!(outcome, OpOutcome::Pconfig(got) if pconfig_matches(*want, got))
        }
        ExpectKind::Kernel { result, .. } => match (outcome, result) {
            (OpOutcome::Kernel(Ok(_)), Ok(None)) => true,
            (OpOutcome::Kernel(Ok(v)), Ok(Some(want))) => v == want,
            (OpOutcome::Kernel(Err(e)), Err(want)) => e == want,
            _ => false,
        },
        ExpectKind::Fault { kind, .. } => {
            matches!(outcome, OpOutcome::Fault(f) if kind.is_none_or(|k| f.kind == k))
        }
        // Judged with more than the outcome (by the result log, and after the run).
        ExpectKind::LoadSameAs { .. }
        | ExpectKind::LoadWritten { .. }
        | ExpectKind::NoFaults
        | ExpectKind::Violations(_)
        | ExpectKind::Loss(_)
        | ExpectKind::Attacker(_)
        | ExpectKind::Plaintext { .. }
        | ExpectKind::Cycles { .. } => true,
    };
    if ok { Ok(()) } else { Err(String::new()) }
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
    /// Per `same_as` expectation: the executions waiting for their partner.
    pairs: DetHashMap<usize, Pair>,
    /// A `same_as` pairing gave up: more executions of one load than can wait.
    pair_overflow: DetHashMap<usize, u64>,
    /// What the caches wrote, when an expectation compares with it.
    writes: Option<SharedWrites>,
    layout: AddressLayout,
}

impl ResultLog {
    /// A log for `scenario`: every labelled load recorded (every load with `all_loads`), every
    /// expectation on op executions judged.
    pub(super) fn new(
        scenario: &Scenario,
        all_loads: bool,
        layout: AddressLayout,
        writes: Option<SharedWrites>,
    ) -> ResultLog {
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
            pairs: DetHashMap::default(),
            pair_overflow: DetHashMap::default(),
            writes,
            layout,
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
            if let ExpectKind::LoadSameAs { other, .. } = e.kind {
                log.watch.entry(other).or_default().expectations.push(i);
            }
        }
        log
    }

    /// The KeyIDs whose stores the `written_through` expectations of `scenario` compare
    /// with, indexed by KeyID (empty when there are none).
    pub(super) fn written_keyids(scenario: &Scenario) -> Vec<bool> {
        let mut keyids = Vec::new();
        for e in &scenario.expectations {
            if let ExpectKind::LoadWritten { keyid, .. } = e.kind {
                if keyids.len() <= keyid.index() {
                    keyids.resize(keyid.index() + 1, false);
                }
                keyids[keyid.index()] = true;
            }
        }
        keyids
    }

    /// How the executions of a `same_as` pairing fell short, if they did: the executions of
    /// the load and of the other, when they differ in number or overflowed.
    pub(super) fn pair_shortfall(&self, e: usize) -> Option<(u64, u64)> {
        if let Some(&n) = self.pair_overflow.get(&e) {
            return Some((n, 0));
        }
        let pair = self.pairs.get(&e)?;
        (pair.runs[0] != pair.runs[1]).then_some((pair.runs[0], pair.runs[1]))
    }

    /// Whether a `same_as` pairing gave up for want of room.
    pub(super) fn pair_overflowed(&self, e: usize) -> bool {
        self.pair_overflow.contains_key(&e)
    }

    /// One execution of either load of `same_as` expectation `e`; pairs what it can.
    fn pair(&mut self, e: usize, r: &OpResult, op: OpTag, same: bool) {
        if self.pair_overflow.contains_key(&e) {
            return;
        }
        let pair = self.pairs.entry(e).or_default();
        let side = usize::from(r.tag != op);
        pair.runs[side] += 1;
        let value = match &r.outcome {
            OpOutcome::Load { bytes, .. } => bytes.clone(),
            other => {
                // A fault is no value: that execution cannot match anything.
                let what = format!("at cycle {}: {}", r.cycle.get(), describe_outcome(other));
                self.verdicts[e].take_described(what, Err(String::new()));
                return;
            }
        };
        let queue = if side == 0 {
            &mut pair.first
        } else {
            &mut pair.other
        };
        if queue.len() >= PAIR_WAITING_MAX {
            let runs = pair.runs[side];
            self.pair_overflow.insert(e, runs);
            return;
        }
        queue.push_back((r.cycle, value));
        while let (Some((c1, v1)), Some((c2, v2))) = (pair.first.front(), pair.other.front()) {
            let what = format!(
                "at cycle {}: loaded {}; the other load's execution at cycle {}: loaded {}",
                c1.get(),
                hex(v1),
                c2.get(),
                hex(v2)
            );
            let ok = if (v1 == v2) == same {
                Ok(())
            } else {
                Err(String::new())
            };
            self.verdicts[e].take_described(what, ok);
            pair.first.pop_front();
            pair.other.pop_front();
        }
    }

    /// Whether a load's execution returned (`same`) or not what `keyid` had last written to
    /// those bytes by then.
    fn written(&self, r: &OpResult, keyid: KeyId, same: bool) -> Result<(), String> {
        let OpOutcome::Load { bytes, pa } = &r.outcome else {
            return Err(String::new());
        };
        let dram = self.layout.dram_addr(*pa);
        let (line, offset) = (dram.line_base(), dram.line_offset());
        if offset + bytes.len() > LINE_BYTES {
            return Err(format!(
                ", which crosses DRAM line {:#x}: expected a load within one line to compare \
                 with what KeyID {} wrote",
                line.raw(),
                keyid.get()
            ));
        }
        let Some(writes) = &self.writes else {
            return Err(", and nothing watched the stores".to_owned());
        };
        let w = lock(writes);
        let Some((cycle, data)) = w.last_store.get(&(line, keyid)) else {
            return Err(if w.stores_dropped {
                format!(
                    ", and the stores through KeyID {} to DRAM line {:#x} were not remembered \
                     (more than {STORED_LINES_MAX} lines)",
                    keyid.get(),
                    line.raw()
                )
            } else {
                format!(
                    ", and KeyID {} had not written DRAM line {:#x} by then",
                    keyid.get(),
                    line.raw()
                )
            });
        };
        let written = &data[offset..offset + bytes.len()];
        if (written == &bytes[..]) == same {
            Ok(())
        } else {
            Err(format!(
                "; KeyID {}'s last store to the line (cycle {}) left {} there",
                keyid.get(),
                cycle.get(),
                hex(written)
            ))
        }
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
        let Some(watch) = self.watch.get_mut(&r.tag) else {
            return;
        };
        let expectations = std::mem::take(&mut watch.expectations);
        for &e in &expectations {
            match self.kinds[e] {
                ExpectKind::LoadSameAs { op, same, .. } => self.pair(e, &r, op, same),
                ExpectKind::LoadWritten { keyid, same, .. } => {
                    let ok = self.written(&r, keyid, same);
                    self.verdicts[e].take(&r, ok);
                }
                ref kind => {
                    let ok = accepts(kind, &r.outcome);
                    self.verdicts[e].take(&r, ok);
                }
            }
        }
        if let Some(watch) = self.watch.get_mut(&r.tag) {
            watch.expectations = expectations;
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
        let layout = AddressLayout::default();
        let mut log = ResultLog::new(&scenario, false, layout, None);
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
        let layout = AddressLayout::default();
        let mut log = ResultLog::new(&scenario, true, layout, None);
        log.on_result(result(1, 5, load(2)));
        log.on_result(result(0, 6, load(1)));
        let order: Vec<u32> = log.loads_in_order().iter().map(|l| l.tag.0).collect();
        assert_eq!(order, [0, 1]);
        let log = ResultLog::new(&scenario, false, layout, None);
        assert_eq!(log.loads.len(), 1, "only the labelled load");
    }
}
