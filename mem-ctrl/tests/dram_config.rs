//! DRAM configuration: presets, the address mapping, and one test per kind of impossible
//! configuration (each a typed error naming the field).

#[path = "dram_common.rs"]
mod common;

use common::*;
use mem_ctrl::dram::{
    DramConfig, DramConfigError, DramLocation, DramParams, PRESET_NAMES, WriteDrain,
};
use proptest::prelude::*;
use sim_core::{BitRange, Cycle, DramAddr};

fn bits(low: u32, width: u32) -> BitRange {
    BitRange::new(low, width).unwrap()
}

/// Validates `p`, expecting an error whose message names `field`.
fn rejected(p: DramParams, field: &str) -> DramConfigError {
    let e = DramConfig::new(p).expect_err("configuration must be rejected");
    assert!(
        e.to_string().contains(field),
        "error `{e}` does not name `{field}`"
    );
    e
}

#[test]
fn presets_are_valid_and_the_reference_is_exact() {
    for name in PRESET_NAMES {
        let cfg = DramConfig::preset(name).unwrap();
        assert_eq!(cfg.name(), name);
        // DRAMsim3's controller (commit 29817593): its drain rule, no idle drain.
        let c = &cfg.params().controller;
        assert_eq!(c.write_drain, WriteDrain::CommandQueuesEmpty { above: 8 });
        assert_eq!(c.idle_write_drain_cycles, None);
        // The machines run the same DRAM with their own drain rule.
        let machine = DramConfig::machine_preset(name).unwrap();
        assert_eq!(machine.params().geometry, cfg.params().geometry);
        assert_eq!(machine.params().timing, cfg.params().timing);
        assert_eq!(
            machine.params().controller.write_drain,
            WriteDrain::ReadQueueEmpty { at_least: 16 }
        );
        assert_eq!(
            machine.params().controller.idle_write_drain_cycles,
            Some(256)
        );
    }
    let cfg = DramConfig::preset("ddr4-2400").unwrap();
    let p = cfg.params();
    let t = &p.timing;
    assert_eq!(
        [
            t.t_cl_cycles,
            t.t_cwl_cycles,
            t.t_rcd_cycles,
            t.t_rp_cycles,
            t.t_ras_cycles,
            t.t_rc_cycles,
            t.t_burst_cycles,
            t.t_ccd_s_cycles,
            t.t_ccd_l_cycles,
            t.t_rrd_s_cycles,
            t.t_rrd_l_cycles,
            t.t_faw_cycles,
            t.t_rtp_cycles,
            t.t_wr_cycles,
            t.t_wtr_s_cycles,
            t.t_wtr_l_cycles,
            t.t_rtrs_cycles,
            t.t_rfc_cycles,
            t.t_refi_cycles,
        ],
        [
            17, 12, 17, 17, 39, 56, 4, 4, 6, 4, 6, 26, 9, 18, 3, 9, 1, 420, 9360
        ]
    );
    assert_eq!(t.t_ck_ps, 830);
    let g = &p.geometry;
    assert_eq!(
        (
            g.channels,
            g.ranks,
            g.bankgroups,
            g.banks_per_group,
            g.rows,
            g.columns
        ),
        (1, 2, 4, 4, 65_536, 1_024)
    );
    assert_eq!(
        (g.device_width_bits, g.bus_width_bits, g.burst_length),
        (8, 64, 8)
    );
    let c = &p.controller;
    assert_eq!(
        (c.command_queue_entries, c.transaction_queue_entries),
        (8, 32)
    );
    // 64 B / (4 x 0.83 ns) = 19.28 GB/s.
    assert!((cfg.peak_bandwidth_gbps() - 19.277_108).abs() < 1e-5);
    assert_eq!(cfg.capacity_bytes(), 16 << 30);
}

#[test]
fn the_reference_mapping_slices_the_documented_bits() {
    let cfg = DramConfig::preset("ddr4-2400").unwrap();
    let m = cfg.mapping();
    // [12:6] column/8, [14:13] bank group, [16:15] bank, [17] rank, [33:18] row.
    let a = DramAddr::new((0x1234 << 18) | (1 << 17) | (2 << 15) | (3 << 13) | (0x55 << 6) | 0x3f);
    assert_eq!(
        m.decode(a).unwrap(),
        DramLocation {
            channel: 0,
            rank: 1,
            bankgroup: 3,
            bank: 2,
            row: 0x1234,
            column: 0x55
        }
    );
    assert_eq!(m.encode(m.decode(a).unwrap()), a.line_base());
    let e = m.decode(DramAddr::new(1 << 34)).unwrap_err();
    assert_eq!((e.addr, e.addr_bits), (1 << 34, 34));
}

proptest! {
    #[test]
    fn mapping_round_trips(raw in 0u64..(1 << 33), preset in 0usize..3) {
        let cfg = DramConfig::preset(PRESET_NAMES[preset]).unwrap();
        let a = DramAddr::new(raw & (cfg.capacity_bytes() - 1));
        let m = cfg.mapping();
        let loc = m.decode(a).unwrap();
        prop_assert_eq!(m.encode(loc), a.line_base());
        prop_assert_eq!(m.decode(m.encode(loc)).unwrap(), loc);
    }
}

#[test]
fn core_clock_ratio_converts_cycles() {
    let cfg = DramConfig::preset("ddr4-2400").unwrap();
    // 3.2 GHz core, 0.83 ns DRAM clock: 2.656 core cycles per DRAM cycle = 332 : 125.
    let r = cfg.core_clock_ratio(3200).unwrap();
    assert_eq!(r.to_fast(Cycle::new(125)), Cycle::new(332));
    assert_eq!(r.to_slow(Cycle::new(332)), Cycle::new(125));
    assert!(cfg.core_clock_ratio(0).is_none());
}

#[test]
fn unknown_preset() {
    let e = DramConfig::preset("ddr3-1600").unwrap_err();
    assert!(matches!(e, DramConfigError::UnknownPreset { ref name, .. } if name == "ddr3-1600"));
    assert!(e.to_string().contains("ddr4-2400, ddr4-3200, ddr5-4800"));
}

#[test]
fn zero_sized_queues() {
    let mut p = ddr4();
    p.controller.command_queue_entries = 0;
    let e = rejected(p, "controller.command_queue_entries");
    assert_eq!(
        e,
        DramConfigError::Zero {
            field: "controller.command_queue_entries"
        }
    );
    let mut p = ddr4();
    p.controller.transaction_queue_entries = 0;
    rejected(p, "controller.transaction_queue_entries");
    let mut p = ddr4();
    p.crypto.throughput.lines = 0;
    rejected(p, "crypto.throughput.lines");
}

#[test]
fn geometry_counts_must_be_powers_of_two() {
    let mut p = ddr4();
    p.geometry.ranks = 3;
    let e = rejected(p, "geometry.ranks");
    assert_eq!(
        e,
        DramConfigError::NotPowerOfTwo {
            field: "geometry.ranks",
            value: 3
        }
    );
}

#[test]
fn a_burst_must_move_one_line() {
    let mut p = ddr4();
    p.geometry.bus_width_bits = 32;
    let e = rejected(p, "geometry.bus_width_bits = 32");
    assert!(matches!(
        e,
        DramConfigError::BurstNotOneLine {
            burst_bytes: 32,
            ..
        }
    ));
}

#[test]
fn a_row_must_hold_a_burst() {
    let mut p = ddr4();
    p.geometry.columns = 4;
    let e = rejected(p, "geometry.columns = 4");
    assert!(matches!(e, DramConfigError::RowShorterThanBurst { .. }));
}

#[test]
fn burst_cycles_must_match_the_burst_length() {
    let mut p = ddr4();
    p.timing.t_burst_cycles = 8;
    let e = rejected(p, "timing.t_burst_cycles = 8");
    assert!(matches!(
        e,
        DramConfigError::BurstCyclesMismatch { expected: 4, .. }
    ));
}

#[test]
fn the_address_width_must_be_supported() {
    let mut p = ddr4();
    p.mapping.addr_bits = 60;
    let e = rejected(p, "mapping.addr_bits = 60");
    assert!(matches!(e, DramConfigError::AddrBitsOutOfRange { .. }));
}

#[test]
fn field_widths_must_agree_with_the_geometry() {
    let mut p = ddr4();
    p.geometry.rows = 32_768;
    let e = rejected(p, "mapping.row");
    assert_eq!(
        e,
        DramConfigError::FieldWidthMismatch {
            field: "mapping.row",
            width: 16,
            geometry_field: "geometry.rows",
            count: 32_768,
            expected: 15
        }
    );
    let mut p = ddr4();
    p.mapping.column = bits(6, 6);
    rejected(p, "geometry.columns / geometry.burst_length");
}

#[test]
fn fields_must_not_overlap() {
    let mut p = ddr4();
    p.mapping.bank = bits(14, 2);
    let e = rejected(p, "mapping.bankgroup");
    assert!(matches!(
        e,
        DramConfigError::FieldsOverlap {
            field_a: "mapping.bankgroup",
            field_b: "mapping.bank",
            ..
        }
    ));
}

#[test]
fn fields_must_leave_the_line_offset_alone() {
    let mut p = ddr4();
    p.mapping.column = bits(5, 7);
    let e = rejected(p, "mapping.column");
    assert!(matches!(
        e,
        DramConfigError::FieldInLineOffset { low: 5, .. }
    ));
}

#[test]
fn fields_must_fit_the_address() {
    let mut p = ddr4();
    p.mapping.row = bits(19, 16);
    let e = rejected(p, "mapping.row");
    assert!(matches!(
        e,
        DramConfigError::FieldBeyondAddress {
            end: 35,
            addr_bits: 34,
            ..
        }
    ));
}

#[test]
fn every_address_bit_must_be_mapped() {
    // A wider address than the geometry fills: two addresses would alias one location.
    let mut p = ddr4();
    p.mapping.addr_bits = 35;
    let e = rejected(p, "bit 34");
    assert_eq!(
        e,
        DramConfigError::UnmappedAddressBit {
            bit: 34,
            addr_bits: 35
        }
    );
}

#[test]
fn t_ras_must_not_exceed_t_rc() {
    let mut p = ddr4();
    p.timing.t_ras_cycles = 60;
    let e = rejected(p, "timing.t_ras_cycles = 60");
    assert_eq!(
        e,
        DramConfigError::TrasExceedsTrc {
            t_ras: 60,
            t_rc: 56
        }
    );
}

#[test]
fn t_rc_must_cover_t_ras_plus_t_rp() {
    let mut p = ddr4();
    p.timing.t_rc_cycles = 50;
    let e = rejected(p, "timing.t_rc_cycles = 50");
    assert_eq!(
        e,
        DramConfigError::TrcBelowTrasPlusTrp {
            t_rc: 50,
            t_ras: 39,
            t_rp: 17
        }
    );
}

#[test]
fn the_refresh_interval_must_outlast_a_refresh() {
    let mut p = ddr4();
    p.timing.t_refi_cycles = 400;
    let e = rejected(p, "timing.t_refi_cycles = 400");
    assert!(matches!(
        e,
        DramConfigError::RefreshIntervalTooShort { t_rfc: 420, .. }
    ));
}

#[test]
fn the_drain_threshold_must_fit_the_write_buffer() {
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 33 };
    let e = rejected(p, "controller.write_drain.at_least = 33");
    assert_eq!(
        e,
        DramConfigError::DrainThresholdAboveQueue {
            field: "controller.write_drain.at_least",
            threshold: 33,
            entries: 32
        }
    );
    // DRAMsim3's rule fires above its threshold: 31 is the most a 32-entry buffer allows.
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::CommandQueuesEmpty { above: 32 };
    rejected(p, "controller.write_drain.above = 32");
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::CommandQueuesEmpty { above: 31 };
    config(p);
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 0 };
    rejected(p, "controller.write_drain.at_least = 0");
    let mut p = ddr4();
    p.controller.idle_write_drain_cycles = Some(0);
    rejected(p, "controller.idle_write_drain_cycles = 0");
}

#[test]
fn zero_clock_period() {
    let mut p = ddr4();
    p.timing.t_ck_ps = 0;
    rejected(p, "timing.t_ck_ps");
}

#[test]
fn a_custom_single_rank_channel_validates() {
    // One rank: the rank field is empty and the row moves down a bit.
    let mut p = ddr4();
    p.geometry.ranks = 1;
    p.mapping.rank = bits(17, 0);
    p.mapping.row = bits(17, 16);
    p.mapping.addr_bits = 33;
    let cfg = config(p);
    assert_eq!(cfg.capacity_bytes(), 8 << 30);
    assert_eq!(
        addr(&cfg, loc(0, 1, 1, 1, 1)).raw(),
        (1 << 17) | (1 << 15) | (1 << 13) | (1 << 6)
    );
}
