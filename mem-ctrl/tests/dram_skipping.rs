//! Skipping cycles changes nothing, cycle by cycle.
//!
//! The controller ticks only where something can happen: [`DramController::next_event_cycle`]
//! is the first cycle at which a tick can change anything, a tick on any other cycle returns at
//! once, and a tick visits only the command queues whose entries may be ready. Each scenario
//! below runs a controller with those shortcuts (the subject) in lockstep with one in
//! exhaustive mode (the reference: DRAMsim3's full search, ticked on every cycle), offering both
//! the same requests on the same cycles, and checks on every cycle:
//!
//! * on a cycle the subject ticks, both issue the same command and deliver the same
//!   completions, accept or refuse the offered request alike, and describe the same state
//!   (everything `describe_state` prints: queue occupancy and heads, open banks, refresh,
//!   draining, outstanding and pending counts);
//! * on a cycle the subject skips, the reference issues nothing, delivers nothing and its state
//!   does not change (so the skipped tick really was idle, not merely harmless).
//!
//! Most scenarios run three subject schedules: ticking every cycle (the quiet-tick shortcut),
//! ticking only at `next_event_cycle()` and offer cycles (what drivers do), and ticking at
//! `next_event_cycle()` plus random cycles in between (what a memory system ticking on its own
//! clock does). Debug builds additionally check every shortcut against the exhaustive search
//! inside the controller.

#[path = "dram_common.rs"]
mod common;

use common::*;
use mem_ctrl::dram::{
    CommandKind, DramCompletion, DramConfig, DramController, DramParams, DramRequest, Encryption,
    IssuedCommand, PagePolicy, QueueStructure, Throughput, WriteDrain,
};
use sim_core::{Cycle, DramAddr, MemOp, RequestId};

/// One request of a scenario: offered no earlier than `cycle`, in order, one per tick.
#[derive(Copy, Clone, Debug)]
struct Offer {
    cycle: u64,
    op: MemOp,
    addr: DramAddr,
    /// False for a plaintext line, which skips the AES stage.
    crypto: bool,
}

/// When the subject ticks.
#[derive(Copy, Clone, Debug)]
enum Schedule {
    EveryCycle,
    NextEvent,
    /// `NextEvent`, plus cycles drawn at random in between (at most `gap` apart).
    Jittered {
        seed: u64,
        gap: u64,
    },
}

/// xorshift64: a fixed, dependency-free stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The state description without its first line, which names the last tick and the next
/// event (they differ between the modes by design).
fn state_body(mc: &DramController) -> String {
    let s = mc.describe_state();
    s.split_once('\n')
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// What one tick produced.
fn tick(mc: &mut DramController, now: Cycle) -> (Vec<IssuedCommand>, Vec<DramCompletion>) {
    let (mut done, mut cmds) = (Vec::new(), Vec::new());
    mc.tick_with_commands(now, &mut done, &mut cmds);
    for c in &done {
        assert_eq!(c.data_cycle, now, "completion {c:?} delivered late");
    }
    (cmds, done)
}

/// Totals of a lockstep run, for the scenarios' sanity checks.
#[derive(Default, Debug)]
struct Totals {
    cycles: u64,
    subject_ticks: u64,
    /// Subject ticks that issued no command, delivered nothing, accepted nothing and changed no
    /// described state: ticks `next_event_cycle()` asked for in vain.
    idle_subject_ticks: u64,
    commands: Vec<IssuedCommand>,
    completions: Vec<DramCompletion>,
    refused: u64,
}

impl Totals {
    fn count(&self, kind: CommandKind) -> usize {
        self.commands.iter().filter(|c| c.kind == kind).count()
    }
}

/// Runs `offers` through a reference and a subject in lockstep (see the module comment),
/// offering one request per tick as the trace driver does.
fn lockstep(
    cfg: &DramConfig,
    encryption: Encryption,
    offers: &[Offer],
    schedule: Schedule,
) -> Totals {
    lockstep_offering(cfg, encryption, offers, schedule, 1)
}

/// [`lockstep`], offering up to `per_tick` due requests on each tick the subject makes (a
/// memory system on a faster clock submits several per DRAM cycle), stopping at the first
/// refusal.
fn lockstep_offering(
    cfg: &DramConfig,
    encryption: Encryption,
    offers: &[Offer],
    schedule: Schedule,
    per_tick: usize,
) -> Totals {
    let mut reference = DramController::new(cfg, encryption);
    reference.set_exhaustive(true);
    let mut subject = DramController::new(cfg, encryption);
    let mut rng = match schedule {
        Schedule::Jittered { seed, .. } => Rng(seed | 1),
        _ => Rng(1),
    };
    let mut totals = Totals::default();
    let mut next_offer = 0usize;
    let mut now = Cycle::ZERO;
    let mut subject_next = Cycle::ZERO;
    let mut reference_state = state_body(&reference);
    // `departures()` when the subject last refused a request: until it grows, the same request
    // must be refused again (the contract a memory system relies on to offer it less often).
    let mut refused_at: Option<u64> = None;
    loop {
        let (cmds, done) = tick(&mut reference, now);
        let reference_after = state_body(&reference);
        let mut offered = false;
        if now < subject_next {
            assert!(
                cmds.is_empty() && done.is_empty(),
                "{schedule:?}: cycle {now} was skipped but the reference issued {cmds:?} and \
                 delivered {done:?}\n{}",
                reference.describe_state()
            );
            assert_eq!(
                reference_state, reference_after,
                "{schedule:?}: cycle {now} was skipped but changed the reference's state"
            );
        } else {
            let (subject_cmds, subject_done) = tick(&mut subject, now);
            assert_eq!(subject_cmds, cmds, "{schedule:?}: commands at cycle {now}");
            assert_eq!(
                subject_done, done,
                "{schedule:?}: completions at cycle {now}"
            );
            assert_eq!(
                state_body(&subject),
                reference_after,
                "{schedule:?}: state after cycle {now}"
            );
            totals.subject_ticks += 1;
            let mut accepted = false;
            for _ in 0..per_tick {
                let Some(o) = offers.get(next_offer) else {
                    break;
                };
                if o.cycle > now.get() {
                    break;
                }
                let request = DramRequest {
                    id: RequestId(next_offer as u64),
                    op: o.op,
                    addr: o.addr,
                    crypto: o.crypto,
                };
                offered = true;
                let a = reference.try_submit(now, request).is_ok();
                let b = subject.try_submit(now, request).is_ok();
                assert_eq!(
                    a, b,
                    "{schedule:?}: cycle {now}: request {next_offer} accepted?"
                );
                assert!(
                    !(b && refused_at == Some(subject.departures())),
                    "{schedule:?}: cycle {now}: request {next_offer} accepted after a refusal \
                     with no departure since"
                );
                refused_at = (!b).then(|| subject.departures());
                if a {
                    accepted = true;
                    next_offer += 1;
                    if next_offer == offers.len() {
                        reference.set_flush_writes(true);
                        subject.set_flush_writes(true);
                    }
                } else {
                    totals.refused += 1;
                    break;
                }
            }
            if cmds.is_empty() && done.is_empty() && !accepted && reference_after == reference_state
            {
                totals.idle_subject_ticks += 1;
            }
            assert_eq!(reference.outstanding(), subject.outstanding());
            assert_eq!(reference.has_work(), subject.has_work());
            if next_offer == offers.len() && subject.outstanding() == 0 {
                assert_eq!(reference.stats(), subject.stats());
                totals.cycles = now.get() + 1;
                totals.commands.extend(cmds);
                totals.completions.extend(done);
                return totals;
            }
            // The driver's rule: the next request on its cycle or, already due, on the next
            // cycle; a refused one when the controller next does something.
            let mut next = subject.next_event_cycle();
            if let Some(o) = offers.get(next_offer)
                && (accepted || o.cycle > now.get())
            {
                next = next.min(Cycle::new(o.cycle).max(now.plus(1)));
            }
            if let Schedule::Jittered { gap, .. } = schedule {
                next = next.min(now.plus(1 + rng.below(gap)));
            }
            subject_next = match schedule {
                Schedule::EveryCycle => now.plus(1),
                _ => next.max(now.plus(1)),
            };
        }
        totals.commands.extend(cmds);
        totals.completions.extend(done);
        reference_state = if offered {
            state_body(&reference)
        } else {
            reference_after
        };
        now = now.plus(1);
        assert!(
            now.get() < 20_000_000,
            "{schedule:?}: the run does not finish"
        );
    }
}

/// Every schedule on one scenario; returns the totals of the `NextEvent` run after checking
/// that all three saw the same commands and completions.
fn all_schedules(cfg: &DramConfig, encryption: Encryption, offers: &[Offer]) -> Totals {
    let every = lockstep(cfg, encryption, offers, Schedule::EveryCycle);
    let jittered = lockstep(
        cfg,
        encryption,
        offers,
        Schedule::Jittered {
            seed: 0x5eed ^ offers.len() as u64,
            gap: 13,
        },
    );
    let skipping = lockstep(cfg, encryption, offers, Schedule::NextEvent);
    for other in [&every, &jittered] {
        assert_eq!(other.commands, skipping.commands);
        assert_eq!(other.completions, skipping.completions);
        assert_eq!(other.cycles, skipping.cycles);
    }
    assert_eq!(skipping.completions.len(), offers.len());
    skipping
}

fn offer(cfg: &DramConfig, cycle: u64, op: MemOp, loc: mem_ctrl::dram::DramLocation) -> Offer {
    Offer {
        cycle,
        op,
        addr: addr(cfg, loc),
        crypto: true,
    }
}

/// A random location in the first `ranks` x `bankgroups` x `banks` banks and `rows` rows of
/// `cfg`, in one of `columns` lines of the row.
fn random_loc(
    cfg: &DramConfig,
    rng: &mut Rng,
    (ranks, bankgroups, banks, rows, columns): (u64, u64, u64, u64, u64),
) -> mem_ctrl::dram::DramLocation {
    let g = &cfg.params().geometry;
    mem_ctrl::dram::DramLocation {
        channel: rng.below(u64::from(g.channels)) as u32,
        rank: rng.below(ranks.min(u64::from(g.ranks))) as u32,
        bankgroup: rng.below(bankgroups.min(u64::from(g.bankgroups))) as u32,
        bank: rng.below(banks.min(u64::from(g.banks_per_group))) as u32,
        row: rng.below(rows) as u32,
        column: rng.below(columns) as u32,
    }
}

/// `n` requests over a few banks and rows (row conflicts and hits), `writes_in_8` in 8 of them
/// writes, in bursts a few cycles apart separated by idle gaps of up to `idle_max` cycles.
fn mixed(cfg: &DramConfig, seed: u64, n: usize, writes_in_8: u64, idle_max: u64) -> Vec<Offer> {
    let mut rng = Rng(seed);
    let mut cycle = 0;
    (0..n)
        .map(|i| {
            cycle += if i % 61 == 60 {
                rng.below(idle_max)
            } else {
                rng.below(9)
            };
            let op = if rng.below(8) < writes_in_8 {
                MemOp::Write
            } else {
                MemOp::Read
            };
            offer(cfg, cycle, op, random_loc(cfg, &mut rng, (2, 4, 2, 3, 8)))
        })
        .collect()
}

#[test]
fn sequential_reference_trace() {
    // validation-data.md section 2: 4096 reads of consecutive lines, one every 200 cycles.
    let cfg = config(ddr4());
    let offers: Vec<Offer> = (0..4096)
        .map(|i| Offer {
            cycle: 200 * i,
            op: MemOp::Read,
            addr: DramAddr::new(64 * i),
            crypto: true,
        })
        .collect();
    let t = lockstep(&cfg, Encryption::Off, &offers, Schedule::NextEvent);
    assert_eq!(
        (
            t.count(CommandKind::Activate),
            t.count(CommandKind::Precharge),
            t.count(CommandKind::Refresh)
        ),
        (120, 119, 175)
    );
    // An unloaded read needs a handful of ticks (accept, move to its command queue, READ or
    // ACT and READ, data), not one per cycle of its latency, and on this trace
    // `next_event_cycle()` is exact: no tick finds nothing to do. This pins down that the
    // skipping stays precise, not merely correct.
    assert!(
        t.subject_ticks < 5 * 4096 && t.idle_subject_ticks == 0,
        "{} ticks ({} idle) for 4096 reads over {} cycles",
        t.subject_ticks,
        t.idle_subject_ticks,
        t.cycles
    );
    let short = &offers[..512];
    all_schedules(&cfg, Encryption::On, short);
}

#[test]
fn random_reads_and_writes_over_few_banks() {
    let cfg = config(ddr4());
    for (seed, encryption) in [(1, Encryption::Off), (2, Encryption::On)] {
        let offers = mixed(&cfg, seed, 1500, 3, 12_000);
        let t = all_schedules(&cfg, encryption, &offers);
        assert!(t.count(CommandKind::Precharge) > 500, "row conflicts");
        assert!(t.count(CommandKind::Refresh) > 20);
    }
}

#[test]
fn saturating_traces() {
    // Everything offered at cycle 0: queues fill, requests are refused and retried.
    let cfg = config(ddr4());
    let mut rng = Rng(7);
    let random: Vec<Offer> = (0..2500)
        .map(|_| {
            let op = if rng.below(3) == 0 {
                MemOp::Write
            } else {
                MemOp::Read
            };
            offer(&cfg, 0, op, random_loc(&cfg, &mut rng, (2, 4, 4, 64, 128)))
        })
        .collect();
    let t = all_schedules(&cfg, Encryption::Off, &random);
    assert!(
        t.refused > 1000,
        "the queues must fill ({} refusals)",
        t.refused
    );
    // Reads: the queues fill. Writes (issue 14), as the end-of-run drain: a full write buffer
    // of writes to one bank whose command queue is full (step 5's shortcut), each write
    // refused, then passing the AES stage (which frees no slot, so is no departure) before it
    // takes a write buffer slot.
    for (op, what) in [
        (MemOp::Read, "the queues"),
        (MemOp::Write, "the write buffer"),
    ] {
        let sequential: Vec<Offer> = (0..3000)
            .map(|i| Offer {
                cycle: 0,
                op,
                addr: DramAddr::new(64 * i),
                crypto: true,
            })
            .collect();
        let t = all_schedules(&cfg, Encryption::On, &sequential);
        assert!(
            t.refused > 1000,
            "{what} must fill ({} refusals)",
            t.refused
        );
    }
}

#[test]
fn closed_page_and_t_faw() {
    // Closed page: every access activates, so tRRD and tFAW bind; ddr5-4800 has one rank of
    // eight bank groups.
    for preset in ["ddr4-2400", "ddr5-4800"] {
        let mut p = DramParams::preset(preset).unwrap();
        p.controller.page_policy = PagePolicy::Closed;
        let cfg = config(p);
        let offers = mixed(&cfg, 3, 1200, 2, 3_000);
        let mut rng = Rng(11);
        let spread: Vec<Offer> = (0..800)
            .map(|i| {
                let loc = random_loc(&cfg, &mut rng, (2, 8, 4, 4, 128));
                offer(&cfg, i / 2, MemOp::Read, loc)
            })
            .collect();
        for o in [offers, spread] {
            let t = all_schedules(&cfg, Encryption::Off, &o);
            // Closed page: only a refresh closes a row explicitly (rows activated for a READA
            // that the refresh then preempted): after a PRE, the next command to its rank
            // other than another PRE is that rank's REF.
            for (i, pre) in t.commands.iter().enumerate() {
                if pre.kind != CommandKind::Precharge {
                    continue;
                }
                let next = t.commands[i + 1..]
                    .iter()
                    .find(|c| c.rank == pre.rank && c.kind != CommandKind::Precharge);
                assert_eq!(
                    next.map(|c| c.kind),
                    Some(CommandKind::Refresh),
                    "{preset}: {pre} does not prepare a refresh"
                );
            }
            assert!(t.count(CommandKind::Activate) > 700);
        }
    }
}

#[test]
fn encryption_with_a_throughput_limit() {
    // One lane accepting a line every 3 cycles with longer latencies: the encrypt stage queues
    // writes (and holds write-buffer slots) and the decrypt stage queues reads; every fifth
    // line is plaintext and skips the stage but not the writes ahead of it.
    let mut p = ddr4();
    p.crypto.throughput = Throughput {
        lines: 1,
        per_cycles: 3,
    };
    p.crypto.encrypt_latency_cycles = 9;
    p.crypto.decrypt_latency_cycles = 7;
    let cfg = config(p);
    let mut offers = mixed(&cfg, 4, 1500, 4, 8_000);
    for (i, o) in offers.iter_mut().enumerate() {
        o.crypto = i % 5 != 0;
    }
    all_schedules(&cfg, Encryption::On, &offers);
    let mut p2 = ddr4();
    p2.crypto.throughput = Throughput {
        lines: 2,
        per_cycles: 7,
    };
    let cfg = config(p2);
    // The same requests eight times denser, on two lanes of a slower engine.
    let burst: Vec<Offer> = offers
        .iter()
        .map(|o| Offer {
            cycle: o.cycle / 8,
            ..*o
        })
        .collect();
    all_schedules(&cfg, Encryption::On, &burst);
}

#[test]
fn refresh_write_drain_and_same_line_rules() {
    // Writes accumulate to the drain threshold while reads are absent, drain across refreshes
    // of both ranks (or once the channel falls idle), and meet reads of their own lines
    // (forwarding, the read-before-write stop of a drain), repeated reads (coalescing) and
    // repeated writes (merging). Small queues and a row-hit cap of 1 make every rule bind
    // often.
    // Both drain rules, each with and without idle write drain.
    for (rule, idle) in [
        (WriteDrain::ReadQueueEmpty { at_least: 6 }, None),
        (WriteDrain::CommandQueuesEmpty { above: 4 }, None),
        (WriteDrain::ReadQueueEmpty { at_least: 6 }, Some(50)),
        (WriteDrain::CommandQueuesEmpty { above: 4 }, Some(300)),
    ] {
        refresh_write_drain_and_same_line_rules_with(rule, idle);
    }
}

fn refresh_write_drain_and_same_line_rules_with(rule: WriteDrain, idle: Option<u32>) {
    let mut p = ddr4();
    p.controller.write_drain = rule;
    p.controller.idle_write_drain_cycles = idle;
    p.controller.transaction_queue_entries = 10;
    p.controller.command_queue_entries = 3;
    p.controller.row_hit_cap = 1;
    // Refresh often: every 1170 cycles, alternating ranks.
    p.timing.t_refi_cycles = 2340;
    let cfg = config(p);
    let mut rng = Rng(5);
    let mut offers = Vec::new();
    let mut cycle = 0;
    for phase in 0..60u64 {
        // A write phase: writes to few lines, so some merge.
        for _ in 0..(8 + rng.below(10)) {
            cycle += rng.below(4);
            let loc = random_loc(&cfg, &mut rng, (2, 2, 2, 2, 4));
            offers.push(offer(&cfg, cycle, MemOp::Write, loc));
        }
        // A read phase over the same lines: forwarded, coalesced or queued behind the writes.
        for _ in 0..(phase % 5) {
            cycle += rng.below(3);
            let loc = random_loc(&cfg, &mut rng, (2, 2, 2, 2, 4));
            offers.push(offer(&cfg, cycle, MemOp::Read, loc));
        }
        // Sometimes idle long enough for a refresh to find rows open.
        cycle += if phase % 3 == 0 {
            1000 + rng.below(1500)
        } else {
            rng.below(40)
        };
    }
    for encryption in [Encryption::Off, Encryption::On] {
        let t = all_schedules(&cfg, encryption, &offers);
        assert!(t.count(CommandKind::Refresh) > 25);
        let forwarded = t
            .completions
            .iter()
            .filter(|c| c.source == mem_ctrl::dram::CompletionSource::ForwardedFromWrite)
            .count();
        let merged = t
            .completions
            .iter()
            .filter(|c| {
                matches!(
                    c.source,
                    mem_ctrl::dram::CompletionSource::MergedInto { .. }
                )
            })
            .count();
        assert!(
            forwarded > 10 && merged > 10,
            "{rule}, idle {idle:?}: {forwarded} forwarded, {merged} merged"
        );
    }
}

#[test]
fn per_rank_queues_and_two_channels() {
    let mut p = ddr4();
    p.controller.queue_structure = QueueStructure::PerRank;
    let cfg = config(p);
    let offers = mixed(&cfg, 6, 1000, 3, 9_000);
    all_schedules(&cfg, Encryption::Off, &offers);

    // Two channels interleaved on bit 6 (as dram_scheduler.rs's channels_are_independent).
    let mut p = ddr4();
    p.geometry.channels = 2;
    p.mapping.addr_bits = 35;
    p.mapping.channel = sim_core::BitRange::new(6, 1).unwrap();
    p.mapping.column = sim_core::BitRange::new(7, 7).unwrap();
    p.mapping.bankgroup = sim_core::BitRange::new(14, 2).unwrap();
    p.mapping.bank = sim_core::BitRange::new(16, 2).unwrap();
    p.mapping.rank = sim_core::BitRange::new(18, 1).unwrap();
    p.mapping.row = sim_core::BitRange::new(19, 16).unwrap();
    let cfg = config(p);
    let offers = mixed(&cfg, 8, 1000, 3, 9_000);
    let t = all_schedules(&cfg, Encryption::On, &offers);
    assert!(t.commands.iter().any(|c| c.channel == 1));
}

#[test]
fn several_requests_per_cycle() {
    // A memory system whose clock is faster than the DRAM's submits several requests in one
    // DRAM cycle, each re-planning the controller's next event.
    let cfg = config(ddr4());
    let mut offers = mixed(&cfg, 9, 1200, 3, 6_000);
    // Dense enough that the queues fill and refuse.
    for (i, o) in offers.iter_mut().enumerate() {
        o.cycle /= 50;
        o.crypto = i % 7 != 0;
    }
    for schedule in [Schedule::NextEvent, Schedule::Jittered { seed: 99, gap: 5 }] {
        let t = lockstep_offering(&cfg, Encryption::On, &offers, schedule, 3);
        assert_eq!(t.completions.len(), offers.len());
        assert!(t.refused > 0, "the queues must fill");
    }
}
