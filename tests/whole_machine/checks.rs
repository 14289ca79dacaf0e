//! The properties, judged on what a run produced ([`Outcome`]) and on its [`Replay`]:
//! divergences and hazards reported in time and only those, the PCONFIG contract, DRAM's
//! contents, and a rule-abiding program's values. docs/testing.md states each.

use crate::case::{KERNEL_KEYIDS, Mode, Shape};
use crate::compile::Compiled;
use crate::replay::{KeyIdentity, Owed, Replay, hex};
use crate::run::Outcome;
use checker::{Violation, ViolationKind};
use cpu_model::program::{OpKind, OpOutcome, OpTag};
use cpu_model::{RunEnd, SystemEvent};
use mem_ctrl::pconfig::{PconfigOutcome, PconfigStatus};
use sim_core::{LineBytes, MemEvent, MemOp};
use std::collections::{BTreeMap, BTreeSet};

/// A property that does not hold: what, and expectations a replay file can state it with.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub expect: Vec<String>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            expect: Vec::new(),
        }
    }
}

/// What a run that holds every property exercised: reports owed (and paid), by class.
#[derive(Debug, Default)]
pub struct Coverage {
    /// `D1`, `D2`, `D3`, `D5` (divergences) or a violation kind's name (hazards).
    pub owed: BTreeMap<String, usize>,
    /// Other things checked, by name.
    pub checked: BTreeMap<&'static str, usize>,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(message)
    }
}

/// Whether `v` pays what `o` owes.
fn pays(v: &Violation, o: &Owed) -> bool {
    v.line.raw() == o.dram
        && if o.exact {
            v.cycle.get() == o.by
        } else {
            v.cycle.get() <= o.by
        }
        && o.kinds.iter().any(|&(k, keyid)| {
            v.kind == k && keyid.is_none_or(|k| v.keyids.iter().any(|x| x.get() == k))
        })
}

/// Whether report `v` names a hazard the replay saw.
fn real(v: &Violation, hazards: &[(ViolationKind, u64, u64, u16, Vec<u16>)]) -> bool {
    let keyids: Vec<u16> = v.keyids.iter().map(|k| k.get()).collect();
    hazards.iter().any(|(kind, cycle, dram, actor, others)| {
        *kind == v.kind
            && *cycle == v.cycle.get()
            && *dram == v.line.raw()
            && keyids.first() == Some(actor)
            && match v.kind {
                // Every other listed KeyID held unwritten data.
                ViolationKind::DualDirty => keyids[1..].iter().all(|k| others.contains(k)),
                // The lost KeyID is the one whose write-back was overwritten.
                ViolationKind::DataLoss => keyids.get(1) == others.first(),
                _ => true,
            }
    })
}

fn violation_line(v: &Violation) -> String {
    let keyids: Vec<u16> = v.keyids.iter().map(|k| k.get()).collect();
    format!(
        "{} at cycle {} on line {:#x}, KeyIDs {keyids:?}",
        v.kind,
        v.cycle,
        v.line.raw()
    )
}

/// Every property of a run: see the module docs and docs/testing.md.
pub fn check(shape: &Shape, compiled: &Compiled, outcome: &Outcome) -> Result<Coverage, Failure> {
    check_reports(shape, compiled, outcome, &outcome.violations)
}

/// [`check`], judging `violations` as the checker's report (the demonstrations feed the
/// recorded stream to other checkers).
pub fn check_reports(
    shape: &Shape,
    compiled: &Compiled,
    outcome: &Outcome,
    violations: &[Violation],
) -> Result<Coverage, Failure> {
    if !matches!(outcome.end, RunEnd::Finished { .. }) {
        return Err(Failure::new(format!(
            "the run did not finish: {:?}",
            outcome.end
        )));
    }
    if let Some(e) = outcome.model_errors.first() {
        return Err(Failure::new(format!(
            "the checker found {} model error(s), the first: {e}",
            outcome.model_errors.len()
        )));
    }
    let mut replay = Replay::new(shape, compiled, outcome);
    replay.replay(&outcome.events);
    if let Some(f) = replay.failures.first() {
        return Err(Failure::new(f.clone()));
    }
    check_pconfig(shape, compiled, outcome)?;

    // D3: DRAM ends as the last store left each line.
    let end = match outcome.end {
        RunEnd::Finished { cycle, .. } => cycle.get(),
        _ => unreachable!("checked above"),
    };
    let lines: Vec<u64> = replay.reference.lines().collect();
    for dram in lines {
        let Some(r) = replay.reference.current(dram).cloned() else {
            continue;
        };
        if replay.generation(r.keyid) != r.generation {
            continue;
        }
        let Some(got) = outcome.plaintext.get(&(r.keyid, dram)) else {
            continue;
        };
        if let Some(i) = (0..64).find(|&i| r.known[i].is_some_and(|b| b != got[i])) {
            let by = replay.last_writeback.get(&dram).copied().unwrap_or(end);
            replay.owe(
                &[(ViolationKind::DataLoss, None)],
                dram,
                by,
                format!(
                    "line {dram:#x} ends with {:02x} at byte {i} through KeyID {}; its last store \
                     (cycle {}) left {:02x}: a lost write (D3)",
                    got[i],
                    r.keyid,
                    r.cycle,
                    r.known[i].unwrap_or(0)
                ),
            );
        }
    }

    // Every divergence and hazard reported in time.
    let unpaid: Vec<&Owed> = replay
        .owed
        .iter()
        .filter(|o| !violations.iter().any(|v| pays(v, o)))
        .collect();
    if let Some(first) = unpaid.first() {
        let mut message = String::from("not reported:");
        for o in &unpaid {
            let kinds: Vec<String> = o.kinds.iter().map(|(k, _)| k.to_string()).collect();
            message.push_str(&format!(
                "\n- {}\n  expected {} on line {:#x} {} cycle {}",
                o.why,
                kinds.join(" or "),
                o.dram,
                if o.exact { "at" } else { "by" },
                o.by,
            ));
        }
        message.push_str(&format!(
            "\nreports: {}",
            violations
                .iter()
                .map(violation_line)
                .collect::<Vec<_>>()
                .join("; ")
        ));
        return Err(Failure {
            message,
            expect: vec![format!(
                "violation(kind: {}, line: {:#x})",
                first.kinds[0].0, first.dram
            )],
        });
    }
    // Every report names a hazard.
    for v in violations {
        if !real(v, &replay.hazards) {
            return Err(Failure::new(format!(
                "a report that names no real hazard: {}\n{v}",
                violation_line(v)
            )));
        }
    }

    let mut coverage = Coverage::default();
    check_dram(shape, outcome, &replay, &mut coverage)?;
    if shape.mode == Mode::RuleAbiding {
        check_rule_abiding(compiled, outcome, violations, &mut coverage)?;
    }
    *coverage.checked.entry("key changes").or_default() += replay
        .generation
        .values()
        .map(|&g| g as usize)
        .sum::<usize>();
    for o in &replay.owed {
        let class = match o.why.rfind("(D") {
            Some(i) => o.why[i + 1..i + 3].to_owned(),
            None => o.kinds[0].0.name().to_owned(),
        };
        *coverage.owed.entry(class).or_default() += 1;
    }
    Ok(coverage)
}

/// A key changes exactly when a successful PCONFIG of it completes (its result's cycle).
fn check_pconfig(shape: &Shape, compiled: &Compiled, outcome: &Outcome) -> Result<(), Failure> {
    let keyid_of: BTreeMap<OpTag, u16> = compiled
        .programs
        .iter()
        .flat_map(|p| p.ops.iter())
        .filter_map(|op| match &op.kind {
            OpKind::Pconfig { call } => Some((op.tag, call.program.keyid)),
            _ => None,
        })
        .collect();
    let mut succeeded: Vec<(u64, u16)> = Vec::new();
    for r in &outcome.results {
        if let OpOutcome::Pconfig(o) = &r.outcome {
            if *o == PconfigOutcome::Status(PconfigStatus::Success) {
                succeeded.push((r.cycle.get(), keyid_of[&r.tag]));
            } else if shape.mode == Mode::RuleAbiding {
                return Err(Failure::new(format!(
                    "a rule-abiding PCONFIG (op {}) failed: {o}",
                    r.tag.0
                )));
            }
        }
    }
    let mut changed: Vec<(u64, u16)> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            // The key service's own PCONFIGs are no op of a program.
            SystemEvent::Memory(MemEvent::KeyChanged { keyid, .. })
                if (1..=KERNEL_KEYIDS).contains(&keyid.get()) =>
            {
                None
            }
            SystemEvent::Memory(MemEvent::KeyChanged { cycle, keyid }) => {
                Some((cycle.get(), keyid.get()))
            }
            // Attacks change DIMM cells, not keys (and generated cases run no attacker).
            SystemEvent::Memory(
                MemEvent::DimmWritten { .. }
                | MemEvent::BusRewritten { .. }
                | MemEvent::DimmAlias { .. },
            )
            | SystemEvent::Cache(_) => None,
        })
        .collect();
    succeeded.sort_unstable();
    changed.sort_unstable();
    if succeeded != changed {
        return Err(Failure::new(format!(
            "keys changed at (cycle, KeyID) {changed:?}, successful PCONFIGs completed at \
             {succeeded:?}"
        )));
    }
    Ok(())
}

/// DRAM never holds the plaintext of a line written back through an encrypting KeyID; at the
/// end, one ciphertext read through KeyIDs of different keys gives different plaintext (equal
/// plaintext under two keys is different ciphertext), through KeyIDs of one key the same, and
/// equal plaintext at two lines under one key is different ciphertext.
fn check_dram(
    shape: &Shape,
    outcome: &Outcome,
    replay: &Replay<'_>,
    coverage: &mut Coverage,
) -> Result<(), Failure> {
    // When each line of bytes first crossed a DIMM bus (DRAM starts as zeros).
    let mut first_seen: BTreeMap<LineBytes, (u64, MemOp, u64)> = BTreeMap::new();
    first_seen.insert([0; 64], (0, MemOp::Read, 0));
    for &(cycle, op, dram, data) in &outcome.bus {
        first_seen.entry(data).or_insert((cycle, op, dram));
    }
    // Plaintext written back through a KeyID that encrypts from then on (to the end of the
    // run), made by a store; and every line written back through a KeyID that may not.
    let mut encrypted: Vec<(u64, LineBytes)> = Vec::new();
    let mut maybe_plain: BTreeSet<LineBytes> = BTreeSet::new();
    for &(cycle, keyid, generation, data, stored) in &replay.writebacks {
        if !replay.encrypts_from(keyid, generation) {
            maybe_plain.insert(data);
        } else if stored {
            encrypted.push((cycle, data));
        }
    }
    for (cycle, data) in &encrypted {
        *coverage.checked.entry("encrypted write-backs").or_default() += 1;
        if maybe_plain.contains(data) {
            continue;
        }
        // Bytes that were DRAM contents before (ciphertext, as it happens) are no secret.
        if let Some(&(seen, op, dram)) = first_seen.get(data)
            && seen >= *cycle
        {
            return Err(Failure::new(format!(
                "the DIMM bus carried plaintext: a {op:?} of line {dram:#x} at cycle {seen} \
                 moved {}, the plaintext of a line written back at cycle {cycle} through a \
                 KeyID that encrypts",
                hex(data)
            )));
        }
    }
    let keyids = &shape.keyids;
    let mut known_lines: Vec<(u64, KeyIdentity, LineBytes)> = Vec::new();
    for &dram in &shape.lines {
        for (i, &a) in keyids.iter().enumerate() {
            for &b in &keyids[i + 1..] {
                let (ia, ib) = (
                    replay.identity(a, replay.generation(a)),
                    replay.identity(b, replay.generation(b)),
                );
                let (pa, pb) = (outcome.plaintext[&(a, dram)], outcome.plaintext[&(b, dram)]);
                if (ia == ib) != (pa == pb) {
                    return Err(Failure::new(format!(
                        "line {dram:#x} reads {} through KeyID {a} ({ia:?}) and {} through \
                         KeyID {b} ({ib:?})",
                        hex(&pa),
                        hex(&pb)
                    )));
                }
            }
        }
        if let Some(r) = replay.reference.current(dram)
            && r.all_known()
            && replay.generation(r.keyid) == r.generation
        {
            let identity = replay.identity(r.keyid, r.generation);
            let plain = outcome.plaintext[&(r.keyid, dram)];
            if identity != KeyIdentity::Plain && r.bytes(0, 64).as_deref() == Some(&plain[..]) {
                known_lines.push((dram, identity, plain));
            }
        }
    }
    for (i, (d1, k1, p1)) in known_lines.iter().enumerate() {
        for (d2, k2, p2) in &known_lines[i + 1..] {
            if k1 == k2 && p1 == p2 {
                *coverage
                    .checked
                    .entry("equal plaintext at two lines")
                    .or_default() += 1;
            }
            if k1 == k2 && p1 == p2 && outcome.dimm[d1] == outcome.dimm[d2] {
                return Err(Failure::new(format!(
                    "lines {d1:#x} and {d2:#x} hold equal plaintext under one key and equal \
                     ciphertext {}",
                    hex(&outcome.dimm[d1])
                )));
            }
        }
    }
    Ok(())
}

/// A rule-abiding program: no report, no fault, every load as the program-order reference
/// says, and DRAM as it says at the end.
fn check_rule_abiding(
    compiled: &Compiled,
    outcome: &Outcome,
    violations: &[Violation],
    coverage: &mut Coverage,
) -> Result<(), Failure> {
    if let Some(v) = violations.first() {
        return Err(Failure::new(format!(
            "a rule-abiding program was reported ({} report(s)), the first:\n{v}",
            violations.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for r in &outcome.results {
        match &r.outcome {
            OpOutcome::Fault(f) => {
                return Err(Failure::new(format!(
                    "a rule-abiding op faulted: op {} at cycle {}: {f:?}",
                    r.tag.0, r.cycle
                )));
            }
            OpOutcome::Kernel(Err(e)) => {
                return Err(Failure::new(format!(
                    "a rule-abiding system call failed: op {} at cycle {}: {e}",
                    r.tag.0, r.cycle
                )));
            }
            OpOutcome::Kernel(Ok(_)) => {
                *coverage
                    .checked
                    .entry("rule-abiding system calls")
                    .or_default() += 1;
            }
            OpOutcome::Load { bytes, .. } => {
                if let Some(want) = compiled.load_values.get(&r.tag) {
                    seen.insert(r.tag);
                    *coverage.checked.entry("rule-abiding loads").or_default() += 1;
                    if bytes != want {
                        return Err(Failure::new(format!(
                            "load op {} (core {}) returned {} at cycle {}; the reference says {}",
                            r.tag.0,
                            r.core.get(),
                            hex(bytes),
                            r.cycle,
                            hex(want)
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(tag) = compiled.load_values.keys().find(|t| !seen.contains(t)) {
        return Err(Failure::new(format!("load op {} never completed", tag.0)));
    }
    for (keyid, dram, bytes) in &compiled.final_lines {
        *coverage
            .checked
            .entry("rule-abiding final lines")
            .or_default() += 1;
        let got = outcome.plaintext[&(*keyid, *dram)];
        if got != *bytes {
            return Err(Failure::new(format!(
                "line {dram:#x} ends as {} through KeyID {keyid}; the reference says {}",
                hex(&got),
                hex(bytes)
            )));
        }
    }
    Ok(())
}
