//! Cycle-exact tests of each JEDEC timing parameter, one test per parameter.
//!
//! Each test builds a small scenario on the ddr4-2400 reference (CL 17, CWL 12, tRCD 17,
//! tRP 17, tRAS 39, tRC 56, tBurst 4, tCCD_S 4, tCCD_L 6, tRRD_S 4, tRRD_L 6, tFAW 26, tRTP 9,
//! tWR 18, tWTR_S 3, tWTR_L 9, tRTRS 1, tRFC 420, tREFI 9360) in which the parameter under test
//! is the binding constraint, asserts the exact issue cycle, then changes only that parameter
//! (and whatever validation forces with it) and asserts that the cycle moves by exactly the
//! change. A request offered at cycle t is accepted at t + 1 and its first command can issue at
//! t + 2.

#[path = "dram_common.rs"]
mod common;

use common::*;
use mem_ctrl::dram::{CommandKind, DramController, DramParams, Encryption, WriteDrain};
use sim_core::Cycle;

const ACT: CommandKind = CommandKind::Activate;
const RD: CommandKind = CommandKind::Read;
const WR: CommandKind = CommandKind::Write;
const PRE: CommandKind = CommandKind::Precharge;
const REF: CommandKind = CommandKind::Refresh;

/// One read to a closed bank at cycle 0: ACT at 2, READ at 2 + tRCD.
fn closed_bank_read(p: DramParams) -> Run {
    run_params(p, &[read(0, loc(0, 0, 0, 1, 0))])
}

#[test]
fn t_rcd_separates_act_and_read() {
    let r = closed_bank_read(ddr4());
    assert_eq!(r.cycles_of(ACT), [2]);
    assert_eq!(r.cycles_of(RD), [19]);
    let mut p = ddr4();
    p.timing.t_rcd_cycles = 20;
    let r = closed_bank_read(p);
    assert_eq!(r.cycles_of(ACT), [2]);
    assert_eq!(r.cycles_of(RD), [22]);
}

#[test]
fn t_cl_is_read_to_data() {
    let r = closed_bank_read(ddr4());
    let c = r.completion(0);
    // Data returns at READ + CL + tBurst = 19 + 17 + 4; accepted at 1.
    assert_eq!(c.data_cycle, Cycle::new(40));
    assert_eq!(r.latency(0), 39);
    let mut p = ddr4();
    p.timing.t_cl_cycles = 20;
    let r = closed_bank_read(p);
    assert_eq!(r.completion(0).data_cycle, Cycle::new(43));
    assert_eq!(r.latency(0), 42);
}

/// Rows opened in bank groups 0 and 1, then one read to each at 200 and 201.
fn two_bank_group_reads(p: DramParams, at: u64) -> Run {
    run_params(
        p,
        &[
            read(0, loc(0, 0, 0, 1, 0)),
            read(1, loc(0, 1, 0, 1, 0)),
            read(at, loc(0, 0, 0, 1, 1)),
            read(at + 1, loc(0, 1, 0, 1, 1)),
        ],
    )
}

#[test]
fn t_burst_spaces_reads_and_sets_the_data_return() {
    // With tCCD_S below the burst, back-to-back reads to different bank groups are one burst
    // apart, and each burst ends tBurst after it starts.
    let mut p = ddr4();
    p.timing.t_ccd_s_cycles = 2;
    let r = two_bank_group_reads(p, 200);
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 206));
    assert_eq!(r.completion(2).data_cycle, Cycle::new(202 + 17 + 4));
    assert_eq!(r.completion(3).data_cycle, Cycle::new(206 + 17 + 4));

    // A DDR5 subchannel moves a line in BL16 = 8 cycles.
    let mut p = DramParams::preset("ddr5-4800").unwrap();
    p.timing.t_ccd_s_cycles = 2;
    let r = two_bank_group_reads(p, 300);
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (302, 310));
    assert_eq!(r.completion(2).data_cycle, Cycle::new(302 + 34 + 8));
    assert_eq!(r.completion(3).data_cycle, Cycle::new(310 + 34 + 8));
}

/// A row is open; a read to another row of the bank arrives at 200.
fn row_conflict(p: DramParams) -> Run {
    run_params(
        p,
        &[read(0, loc(0, 0, 0, 1, 0)), read(200, loc(0, 0, 0, 2, 0))],
    )
}

#[test]
fn t_rp_separates_pre_and_act() {
    let r = row_conflict(ddr4());
    assert_eq!(r.cycles_of(PRE), [202]);
    assert_eq!(r.cycles_of(ACT), [2, 219]);
    assert_eq!(r.cycles_of(RD), [19, 236]);
    assert_eq!(r.latency(1), 56);
    let mut p = ddr4();
    p.timing.t_rp_cycles = 20;
    p.timing.t_rc_cycles = 59; // validation: tRC >= tRAS + tRP
    let r = row_conflict(p);
    assert_eq!(r.cycles_of(PRE), [202]);
    assert_eq!(r.cycles_of(ACT), [2, 222]);
}

/// A read opens row 1 at cycle 2; a read to row 2 of the same bank is already queued.
fn early_conflict(p: DramParams) -> Run {
    run_params(
        p,
        &[read(0, loc(0, 0, 0, 1, 0)), read(1, loc(0, 0, 0, 2, 0))],
    )
}

#[test]
fn t_ras_holds_the_row_open() {
    // READ at 19 would allow PRE at 19 + tRTP = 28; tRAS from the ACT at 2 holds it to 41.
    let r = early_conflict(ddr4());
    assert_eq!(r.cycles_of(RD)[0], 19);
    assert_eq!(r.cycles_of(PRE), [41]);
    let mut p = ddr4();
    p.timing.t_ras_cycles = 45;
    p.timing.t_rc_cycles = 62; // validation: tRC >= tRAS + tRP
    let r = early_conflict(p);
    assert_eq!(r.cycles_of(PRE), [47]);
}

#[test]
fn t_rc_separates_acts_to_one_bank() {
    // With tRC = tRAS + tRP the second ACT is at PRE + tRP = 58; a longer tRC binds instead.
    let r = early_conflict(ddr4());
    assert_eq!(r.cycles_of(ACT), [2, 58]);
    let mut p = ddr4();
    p.timing.t_rc_cycles = 70;
    let r = early_conflict(p);
    assert_eq!(r.cycles_of(PRE), [41]);
    assert_eq!(r.cycles_of(ACT), [2, 72]);
}

#[test]
fn t_cwl_is_write_to_write_data() {
    let scenario = |p: DramParams| run_params(p, &[write(0, loc(0, 0, 0, 1, 0))]);
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 1 };
    let r = scenario(p.clone());
    assert_eq!(r.cycles_of(ACT), [2]);
    assert_eq!(r.cycles_of(WR), [19]);
    let c = r.completion(0);
    // The write burst occupies [WRITE + CWL, WRITE + CWL + tBurst).
    assert_eq!(c.data_cycle, Cycle::new(19 + 12 + 4));
    p.timing.t_cwl_cycles = 14;
    let r = scenario(p);
    assert_eq!(r.completion(0).data_cycle, Cycle::new(19 + 14 + 4));
}

#[test]
fn t_ccd_s_spaces_column_commands_across_bank_groups() {
    let mut p = ddr4();
    p.timing.t_ccd_s_cycles = 5;
    let r = two_bank_group_reads(p.clone(), 200);
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 207));
    p.timing.t_ccd_s_cycles = 7;
    let r = two_bank_group_reads(p, 200);
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 209));
}

#[test]
fn t_ccd_l_spaces_column_commands_within_a_bank_group() {
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[
                read(0, loc(0, 0, 0, 1, 0)),
                read(1, loc(0, 0, 1, 1, 0)),
                read(200, loc(0, 0, 0, 1, 1)),
                read(201, loc(0, 0, 1, 1, 1)),
            ],
        )
    };
    let r = scenario(ddr4());
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 208));
    let mut p = ddr4();
    p.timing.t_ccd_l_cycles = 8;
    let r = scenario(p);
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 210));
}

#[test]
fn t_rrd_s_spaces_acts_across_bank_groups() {
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[read(0, loc(0, 0, 0, 1, 0)), read(1, loc(0, 1, 0, 1, 0))],
        )
    };
    assert_eq!(scenario(ddr4()).cycles_of(ACT), [2, 6]);
    let mut p = ddr4();
    p.timing.t_rrd_s_cycles = 5;
    assert_eq!(scenario(p).cycles_of(ACT), [2, 7]);
}

#[test]
fn t_rrd_l_spaces_acts_within_a_bank_group() {
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[read(0, loc(0, 0, 0, 1, 0)), read(1, loc(0, 0, 1, 1, 0))],
        )
    };
    assert_eq!(scenario(ddr4()).cycles_of(ACT), [2, 8]);
    let mut p = ddr4();
    p.timing.t_rrd_l_cycles = 7;
    assert_eq!(scenario(p).cycles_of(ACT), [2, 9]);
}

#[test]
fn t_faw_limits_four_acts_per_window() {
    // Five closed banks: four bank groups, then bank group 0 again.
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[
                read(0, loc(0, 0, 0, 1, 0)),
                read(1, loc(0, 1, 0, 1, 0)),
                read(2, loc(0, 2, 0, 1, 0)),
                read(3, loc(0, 3, 0, 1, 0)),
                read(4, loc(0, 0, 1, 1, 0)),
            ],
        )
    };
    // tRRD_S alone would allow the fifth ACT at 14 + 4 = 18; tFAW holds it to 2 + 26.
    assert_eq!(scenario(ddr4()).cycles_of(ACT), [2, 6, 10, 14, 28]);
    let mut p = ddr4();
    p.timing.t_faw_cycles = 30;
    assert_eq!(scenario(p).cycles_of(ACT), [2, 6, 10, 14, 32]);
    let mut p = ddr4();
    p.timing.t_faw_cycles = 16;
    assert_eq!(scenario(p).cycles_of(ACT), [2, 6, 10, 14, 18]);
}

#[test]
fn t_rtp_separates_read_and_pre() {
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[
                read(0, loc(0, 0, 0, 1, 0)),
                read(200, loc(0, 0, 0, 1, 1)),
                read(201, loc(0, 0, 0, 2, 0)),
            ],
        )
    };
    let r = scenario(ddr4());
    assert_eq!(r.column_cycle(1), 202);
    assert_eq!(r.cycles_of(PRE), [211]);
    let mut p = ddr4();
    p.timing.t_rtp_cycles = 12;
    assert_eq!(scenario(p).cycles_of(PRE), [214]);
}

#[test]
fn t_wr_separates_write_data_and_pre() {
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[
                read(0, loc(0, 0, 0, 1, 0)),
                write(200, loc(0, 0, 0, 1, 1)),
                read(201, loc(0, 0, 0, 2, 0)),
            ],
        )
    };
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 1 };
    let r = scenario(p.clone());
    assert_eq!(r.cycles_of(WR), [202]);
    // PRE >= WRITE + CWL + tBurst + tWR = 202 + 12 + 4 + 18.
    assert_eq!(r.cycles_of(PRE), [236]);
    p.timing.t_wr_cycles = 20;
    assert_eq!(scenario(p).cycles_of(PRE), [238]);
}

/// Rows open in (bg 0, bank 0) and `other`; a write to the first, then a read to `other`.
fn write_then_read(p: DramParams, other: (u32, u32)) -> Run {
    let (bg, bank) = other;
    let mut p = p;
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 1 };
    run_params(
        p,
        &[
            read(0, loc(0, 0, 0, 1, 0)),
            read(1, loc(0, bg, bank, 1, 0)),
            write(200, loc(0, 0, 0, 1, 1)),
            read(201, loc(0, bg, bank, 1, 1)),
        ],
    )
}

#[test]
fn t_wtr_l_separates_write_data_and_read_in_a_bank_group() {
    let r = write_then_read(ddr4(), (0, 1));
    assert_eq!(r.column_cycle(2), 202);
    // READ >= WRITE + CWL + tBurst + tWTR_L = 202 + 12 + 4 + 9.
    assert_eq!(r.column_cycle(3), 227);
    let mut p = ddr4();
    p.timing.t_wtr_l_cycles = 11;
    assert_eq!(write_then_read(p, (0, 1)).column_cycle(3), 229);
}

#[test]
fn t_wtr_s_separates_write_data_and_read_across_bank_groups() {
    let r = write_then_read(ddr4(), (1, 0));
    assert_eq!(r.column_cycle(2), 202);
    // READ >= WRITE + CWL + tBurst + tWTR_S = 202 + 12 + 4 + 3.
    assert_eq!(r.column_cycle(3), 221);
    let mut p = ddr4();
    p.timing.t_wtr_s_cycles = 5;
    assert_eq!(write_then_read(p, (1, 0)).column_cycle(3), 223);
}

#[test]
fn t_rtrs_adds_a_rank_switch_between_bursts() {
    let scenario = |p: DramParams| {
        run_params(
            p,
            &[
                read(0, loc(0, 0, 0, 1, 0)),
                read(1, loc(1, 0, 0, 1, 0)),
                read(200, loc(0, 0, 0, 1, 1)),
                read(201, loc(1, 0, 0, 1, 1)),
            ],
        )
    };
    // Other rank: READ to READ is tBurst + tRTRS = 5 (same rank, other bank group: 4).
    let r = scenario(ddr4());
    assert_eq!(r.cycles_of(ACT), [2, 3]);
    assert_eq!((r.column_cycle(0), r.column_cycle(1)), (19, 24));
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 207));
    let mut p = ddr4();
    p.timing.t_rtrs_cycles = 3;
    let r = scenario(p);
    assert_eq!((r.column_cycle(2), r.column_cycle(3)), (202, 209));
}

#[test]
fn t_rfc_blocks_the_rank_after_ref() {
    // Rank 0's first refresh is due at tREFI / 2 = 4680; every bank is closed, so REF issues
    // at once and an ACT to rank 0 waits tRFC.
    let scenario = |p: DramParams| run_params(p, &[read(4680, loc(0, 0, 0, 1, 0))]);
    let r = scenario(ddr4());
    assert_eq!(r.cycles_of(REF), [4680]);
    assert_eq!(r.cycles_of(ACT), [5100]);
    assert_eq!(r.latency(0), 5100 + 17 + 17 + 4 - 4681);
    let mut p = ddr4();
    p.timing.t_rfc_cycles = 500;
    assert_eq!(scenario(p).cycles_of(ACT), [5180]);
}

/// REF commands (cycle, rank) of an idle controller up to `until`.
fn idle_refreshes(p: DramParams, until: u64) -> Vec<(u64, u32)> {
    let cfg = config(p);
    let mut mc = DramController::new(&cfg, Encryption::Off);
    let (mut done, mut cmds) = (Vec::new(), Vec::new());
    let mut now = Cycle::ZERO;
    while now.get() <= until {
        mc.tick_with_commands(now, &mut done, &mut cmds);
        now = mc.next_event_cycle();
    }
    assert!(done.is_empty());
    cmds.iter()
        .map(|c| {
            assert_eq!(c.kind, REF, "an idle controller issues only REF: {c}");
            (c.cycle.get(), c.rank)
        })
        .collect()
}

#[test]
fn t_refi_sets_the_refresh_period_staggered_over_ranks() {
    assert_eq!(
        idle_refreshes(ddr4(), 20_000),
        [(4680, 0), (9360, 1), (14040, 0), (18720, 1)]
    );
    let mut p = ddr4();
    p.timing.t_refi_cycles = 10_000;
    assert_eq!(
        idle_refreshes(p, 20_000),
        [(5000, 0), (10_000, 1), (15_000, 0), (20_000, 1)]
    );
}

#[test]
fn bank_states_follow_the_command_sequence() {
    // Closed -> ACT -> READ (not a hit) -> READ (hit) -> PRE -> ACT -> READ (not a hit).
    let r = run_params(
        ddr4(),
        &[
            read(0, loc(0, 0, 0, 1, 0)),
            read(100, loc(0, 0, 0, 1, 1)),
            read(200, loc(0, 0, 0, 2, 0)),
        ],
    );
    let seq: Vec<(u64, CommandKind)> = r
        .rec
        .commands
        .iter()
        .map(|c| (c.cycle.get(), c.kind))
        .collect();
    assert_eq!(
        seq,
        [
            (2, ACT),
            (19, RD),
            (102, RD),
            (202, PRE),
            (219, ACT),
            (236, RD)
        ]
    );
    let s = &r.report.stats;
    assert_eq!((s.read_cmds.get(), s.read_row_hits.get()), (3, 1));
    assert_eq!((s.acts.get(), s.pres.get()), (2, 1));
}
