//! The attacker at work during a run: the bus recorders of an interposer (its channels and
//! cycles), the faulty DIMM, and the schedule of what it does when (DRAM dumps, recordings of
//! ciphertext, writes to DIMM cells, a cold boot), carried out between the model's cycles.
//!
//! The attacker acts only through the DIMM bus (recorders attached to the memory controllers'
//! bus ports) and the DIMMs (the memory system's DIMM cells), never through the caches. Each
//! write to DIMM cells is a [`sim_core::MemEvent`] the memory system reports, which the
//! checker records in the line's chain; the runner hands it over at once
//! ([`System::deliver_events`]).
//!
//! Order: everything due at one cycle happens before anything of that cycle, in this order:
//! dumps, recordings, attacks (file order within each), the cold boot. What is due after the
//! run ended (at `end`, or at a cycle the run did not reach) happens at its end, in the same
//! order by time. A cold boot at a cycle ends the run there: the power is cut.

use crate::scenario::{AttackKind, AttackerPlan, ColdBootPlan, DumpTime};
use cpu_model::{RunEnd, System};
use mem_ctrl::bus::{BusRecorder, BusTransaction, ProbeId};
use sim_core::{Cycle, DimmWrite, DramAddr, KeyId, LineBytes};

/// How the run ended: as the model ended it, or cut by a cold boot.
#[derive(Clone, Debug)]
pub(super) enum Ended {
    /// Finished, stopped at `cycles_max`, deadlocked.
    Model(RunEnd),
    /// The attacker cut the power at this cycle.
    ColdBoot(Cycle),
}

/// What one attack did.
#[derive(Clone, Debug)]
pub(super) struct AttackTaken {
    /// When.
    pub(super) cycle: Cycle,
    /// The line whose cells it wrote (through a faulty DIMM, not the line addressed).
    pub(super) cells: DramAddr,
    /// The bytes it wrote.
    pub(super) written: LineBytes,
    /// For a replay, when its ciphertext was recorded (at the end, when the run ended before
    /// the cycle asked for).
    pub(super) recorded: Option<Cycle>,
}

/// One DRAM dump as taken: when, and each line's bytes.
#[derive(Debug)]
pub(super) struct DumpTaken {
    pub(super) cycle: Cycle,
    pub(super) lines: Vec<(DramAddr, LineBytes)>,
    /// Lines whose writes sat in a controller at the dump, not yet on the DIMMs.
    pub(super) pending_writes: Vec<DramAddr>,
}

/// A cold boot as taken: the dump of all DRAM, what the write queues lost, and, once the power
/// has cycled, what the rebooted machine reads.
#[derive(Clone, Debug)]
pub(super) struct ColdBootTaken {
    /// When the power was cut.
    pub(super) cycle: Cycle,
    /// Every line the DIMMs held, in address order.
    pub(super) lines: Vec<(DramAddr, LineBytes)>,
    /// Lines whose writes were still in a memory controller's write queue.
    pub(super) lost: Vec<DramAddr>,
    /// Each line of `lines` read through KeyID 0 after the power cycle (empty until then).
    pub(super) decrypted: Vec<LineBytes>,
}

/// Everything the attacker took during the run.
#[derive(Debug)]
pub(super) struct Taken {
    /// How the run ended.
    pub(super) end: Ended,
    /// Each DRAM dump of the plan, in plan order.
    pub(super) dumps: Vec<DumpTaken>,
    /// Each attack of the plan, in plan order.
    pub(super) attacks: Vec<AttackTaken>,
    /// The cold boot, if the plan has one (before its power cycle: see [`power_cycle`]).
    pub(super) cold_boot: Option<ColdBootTaken>,
}

/// One thing to do, in the order of [`Action`]'s variants within a cycle.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Dump(usize),
    Record(usize),
    Attack(usize),
    ColdBoot,
}

/// The recorders an interposer (or the whole bus log) needs: one per memory controller that
/// serves a channel it sits on, seeing only its cycles. Returns each with its controller.
pub(super) fn attach_recorders(
    system: &mut System,
    plan: &AttackerPlan,
    limit: usize,
) -> Vec<(usize, ProbeId)> {
    if !plan.bus_log {
        return Vec::new();
    }
    let memory = system.machine_mut().memory_mut();
    let controllers = memory.controllers().len();
    let per = memory.channels() / controllers.max(1) as u32;
    let (from, until) = plan
        .interposer
        .as_ref()
        .map_or((0, None), |i| (i.from, i.until));
    (0..controllers)
        .filter(|&c| {
            let channels = plan.interposer.as_ref().and_then(|i| i.channels.as_ref());
            channels.is_none_or(|list| list.iter().any(|&ch| (ch / per.max(1)) as usize == c))
        })
        .map(|c| {
            let recorder = BusRecorder::with_limit(limit)
                .window(Cycle::new(from), until.map_or(Cycle::NEVER, Cycle::new));
            (
                c,
                memory
                    .controller_mut(c)
                    .bus_mut()
                    .attach(Box::new(recorder)),
            )
        })
        .collect()
}

/// Every recorder's log merged in bus order (cycle, then controller), kept to the
/// interposer's channels, and the transfers not recorded.
pub(super) fn collect_bus_log(
    system: &System,
    plan: &AttackerPlan,
    probes: &[(usize, ProbeId)],
) -> (Vec<BusTransaction>, u64) {
    let memory = system.machine().memory();
    let channels = plan.interposer.as_ref().and_then(|i| i.channels.as_ref());
    let mut merged = Vec::new();
    let mut dropped = 0;
    for &(c, probe) in probes {
        let recorder = memory.controllers()[c]
            .bus()
            .probe::<BusRecorder>(probe)
            .expect("the runner attached a BusRecorder here");
        dropped += recorder.dropped();
        merged.extend(
            recorder
                .log()
                .iter()
                .filter(|t| channels.is_none_or(|list| list.contains(&memory.channel_of(t.addr))))
                .map(|t| (c, t.clone())),
        );
    }
    // Stable: within one controller, bus order is kept.
    merged.sort_by_key(|(controller, t)| (t.cycle, *controller));
    (merged.into_iter().map(|(_, t)| t).collect(), dropped)
}

/// What the DIMMs hold at `lines`, now.
pub(super) fn dram_dump(system: &System, lines: &[DramAddr]) -> DumpTaken {
    let memory = system.machine().memory();
    DumpTaken {
        cycle: system.now(),
        lines: lines.iter().map(|a| (*a, memory.dimm_line(*a))).collect(),
        pending_writes: memory.pending_write_lines(),
    }
}

/// Runs `system` to its end with the attacker of `plan` acting at its times.
pub(super) fn run(system: &mut System, plan: &AttackerPlan) -> Taken {
    let mut schedule: Vec<(DumpTime, Action)> = Vec::new();
    for (i, d) in plan.dram_dumps.iter().enumerate() {
        schedule.push((d.at, Action::Dump(i)));
    }
    for (i, a) in plan.attacks.iter().enumerate() {
        if let AttackKind::Replay { recorded, .. } = a.kind {
            schedule.push((recorded, Action::Record(i)));
        }
        schedule.push((a.at, Action::Attack(i)));
    }
    if let Some(c) = &plan.cold_boot {
        schedule.push((c.at, Action::ColdBoot));
    }
    // Stable: dumps, recordings and attacks of one time keep file order.
    schedule.sort();

    let mut end: Option<Ended> = None;
    let mut dumps: Vec<Option<DumpTaken>> = plan.dram_dumps.iter().map(|_| None).collect();
    let mut recorded: Vec<Option<(Cycle, LineBytes)>> = plan.attacks.iter().map(|_| None).collect();
    let mut attacks: Vec<Option<AttackTaken>> = plan.attacks.iter().map(|_| None).collect();
    let mut cold_boot = None;
    for (at, action) in schedule {
        if end.is_none() {
            let ended = match at {
                DumpTime::Cycle(c) => match system.run_until(Cycle::new(c)) {
                    RunEnd::Paused { .. } => None,
                    ended => Some(ended),
                },
                DumpTime::End => Some(system.run()),
            };
            end = ended.map(Ended::Model);
        }
        match action {
            Action::Dump(i) => dumps[i] = Some(dram_dump(system, &plan.dram_dumps[i].lines)),
            Action::Record(i) => {
                let line = plan.attacks[i].kind.target();
                recorded[i] = Some((system.now(), system.machine().memory().dimm_line(line)));
            }
            Action::Attack(i) => {
                attacks[i] = Some(attack(system, &plan.attacks[i].kind, recorded[i]));
            }
            Action::ColdBoot => {
                cold_boot = Some(cut_power(system));
                if end.is_none() {
                    end = Some(Ended::ColdBoot(system.now()));
                }
            }
        }
    }
    let end = end.unwrap_or_else(|| Ended::Model(system.run()));
    Taken {
        end,
        dumps: dumps.into_iter().flatten().collect(),
        attacks: attacks.into_iter().flatten().collect(),
        cold_boot,
    }
}

/// Writes one attack's bytes into the DIMM cells, now, and lets the checker know.
fn attack(
    system: &mut System,
    kind: &AttackKind,
    recorded: Option<(Cycle, LineBytes)>,
) -> AttackTaken {
    let now = system.now();
    let memory = system.machine_mut().memory_mut();
    let (line, bytes, by) = match kind {
        AttackKind::Replay { line, .. } => {
            let (cycle, bytes) = recorded.expect("a replay's recording comes before it");
            (*line, bytes, DimmWrite::Replay { recorded: cycle })
        }
        AttackKind::Splice { from, to } => (
            *to,
            memory.dimm_line(*from),
            DimmWrite::Splice { from: *from },
        ),
        AttackKind::BitFlip { line, bits } => {
            let mut bytes = memory.dimm_line(*line);
            for &b in bits {
                bytes[usize::from(b / 8)] ^= 1 << (b % 8);
            }
            (
                *line,
                bytes,
                DimmWrite::BitFlip {
                    bits: bits.len() as u32,
                },
            )
        }
    };
    memory.write_dimm(now, line, &bytes, by);
    let cells = memory.dimm_cells(line);
    system.deliver_events();
    AttackTaken {
        cycle: now,
        cells,
        written: bytes,
        recorded: recorded.map(|(cycle, _)| cycle),
    }
}

/// The cold boot's dump: every line the DIMMs hold, and the writes the controllers lose. The
/// power cycle itself comes later ([`power_cycle`]), once the report has read what the run left.
fn cut_power(system: &mut System) -> ColdBootTaken {
    system.deliver_events();
    let memory = system.machine().memory();
    ColdBootTaken {
        cycle: system.now(),
        lines: memory.dimm_contents(),
        lost: memory.pending_write_lines(),
        decrypted: Vec::new(),
    }
}

/// The power cycle of a cold boot, and what the rebooted machine reads off the DIMMs through
/// KeyID 0 (every KeyID is back in TME behaviour: the platform key, new or restored).
pub(super) fn power_cycle(system: &mut System, plan: &ColdBootPlan, taken: &mut ColdBootTaken) {
    let memory = system.machine_mut().memory_mut();
    memory.power_cycle(plan.key_restore);
    let layout = memory.layout();
    taken.decrypted = taken
        .lines
        .iter()
        .map(|(addr, _)| {
            let pa = layout
                .compose(KeyId::new(0), *addr)
                .expect("a stored line lies inside DRAM");
            memory.peek_line(pa)
        })
        .collect();
}
