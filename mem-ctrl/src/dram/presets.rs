//! Named DRAM configurations.
//!
//! | preset      | source                                                                  |
//! |-------------|-------------------------------------------------------------------------|
//! | `ddr4-2400` | validation-data.md section 2 (DRAMsim3 `configs/DDR4_8Gb_x8_2400.ini` as measured there) |
//! | `ddr4-3200` | DRAMsim3 `configs/DDR4_8Gb_x8_3200.ini` (umd-memsys/DRAMsim3)           |
//! | `ddr5-4800` | Ramulator2 `src/dram/impl/DDR5.cpp` (CMU-SAFARI/ramulator2): organisation `DDR5_16Gb_x8`, its timing formulas and ns tables, with the JEDEC DDR5-4800AN speed bin (34-34-34) |
//!
//! The encryption stage has no public figure (mktme-facts.md section 3); every preset assumes
//! [`CRYPTO_LATENCY_PS`] each way, rounded up to whole DRAM cycles, and one line per cycle.
//!
//! Every preset's controller is DRAMsim3's (commit 29817593): writes drain when more than 8
//! wait and the command queues are empty, and writes below that wait for more. The machines
//! of the full-system simulator run a preset with their own controller policy
//! ([`DramParams::machine_preset`]): idle write drain, and the older drain rule they have
//! always used.

use super::config::{
    ControllerParams, CryptoTiming, DramConfig, DramConfigError, DramParams, Geometry, PagePolicy,
    QueueStructure, Throughput, Timing, WriteDrain,
};
use super::mapping::MappingParams;
use sim_core::BitRange;

/// Names accepted by [`DramParams::preset`].
pub const PRESET_NAMES: [&str; 3] = ["ddr4-2400", "ddr4-3200", "ddr5-4800"];

/// The idle write drain timeout of the machines' controllers
/// ([`DramParams::machine_preset`]), in DRAM cycles: 213 ns at DDR4-2400, 161 ns at DDR4-3200.
/// A round value of the order of a few row cycles; no public figure gives the timeout of
/// Intel's controllers.
pub const MACHINE_IDLE_WRITE_DRAIN_CYCLES: u32 = 256;

/// The write-drain rule of the machines' controllers ([`DramParams::machine_preset`]):
/// DRAMsim3's older rule, at least 16 writes with no read waiting, which the full-system
/// machines have used from the start (switching would move every full-system report).
pub const MACHINE_WRITE_DRAIN: WriteDrain = WriteDrain::ReadQueueEmpty { at_least: 16 };

/// Assumed latency of one AES-XTS line operation in the controller, in picoseconds ("a few
/// ns", mktme-facts.md section 3; no public measurement exists).
pub const CRYPTO_LATENCY_PS: u32 = 4_000;

fn bits(low: u32, width: u32) -> BitRange {
    BitRange::new(low, width).expect("preset fields fit in 64 bits")
}

/// Cycles of `t_ck_ps` needed to cover `ps`, rounded up.
const fn ps_to_cycles_ceil(ps: u32, t_ck_ps: u32) -> u32 {
    ps.div_ceil(t_ck_ps)
}

fn crypto_default(t_ck_ps: u32) -> CryptoTiming {
    let latency = ps_to_cycles_ceil(CRYPTO_LATENCY_PS, t_ck_ps);
    CryptoTiming {
        decrypt_latency_cycles: latency,
        encrypt_latency_cycles: latency,
        throughput: Throughput {
            lines: 1,
            per_cycles: 1,
        },
    }
}

/// DRAMsim3's `rochrababgco` order for 64-byte lines and a 1024-column x8 DDR4 device
/// (128 lines per row): column/8 [12:6], bank group [14:13], bank [16:15], rank [17], row
/// [33:18].
fn ddr4_x8_two_rank_mapping() -> MappingParams {
    MappingParams {
        addr_bits: 34,
        channel: bits(34, 0),
        column: bits(6, 7),
        bankgroup: bits(13, 2),
        bank: bits(15, 2),
        rank: bits(17, 1),
        row: bits(18, 16),
    }
}

fn ddr4_8gb_x8_geometry() -> Geometry {
    Geometry {
        channels: 1,
        ranks: 2,
        bankgroups: 4,
        banks_per_group: 4,
        rows: 65_536,
        columns: 1_024,
        device_width_bits: 8,
        bus_width_bits: 64,
        burst_length: 8,
    }
}

/// DDR4-2400, 8 Gb x8 devices, 2 ranks: exactly the configuration of validation-data.md
/// section 2 (DRAMsim3 `DDR4_8Gb_x8_2400`).
pub fn ddr4_2400() -> DramParams {
    DramParams {
        name: "ddr4-2400".to_owned(),
        geometry: ddr4_8gb_x8_geometry(),
        timing: Timing {
            t_ck_ps: 830,
            t_cl_cycles: 17,
            t_cwl_cycles: 12,
            t_rcd_cycles: 17,
            t_rp_cycles: 17,
            t_ras_cycles: 39,
            t_rc_cycles: 56,
            t_burst_cycles: 4,
            t_ccd_s_cycles: 4,
            t_ccd_l_cycles: 6,
            t_rrd_s_cycles: 4,
            t_rrd_l_cycles: 6,
            t_faw_cycles: 26,
            t_rtp_cycles: 9,
            t_wr_cycles: 18,
            t_wtr_s_cycles: 3,
            t_wtr_l_cycles: 9,
            t_rtrs_cycles: 1,
            t_rfc_cycles: 420,
            t_refi_cycles: 9_360,
        },
        mapping: ddr4_x8_two_rank_mapping(),
        controller: ControllerParams {
            page_policy: PagePolicy::Open,
            queue_structure: QueueStructure::PerBank,
            command_queue_entries: 8,
            transaction_queue_entries: 32,
            // DRAMsim3 at commit 29817593: more than 8 writes and the command queues empty.
            write_drain: WriteDrain::DRAMSIM3,
            idle_write_drain_cycles: None,
            row_hit_cap: 4,
        },
        crypto: crypto_default(830),
    }
}

/// DDR4-3200, 8 Gb x8 devices, 2 ranks: DRAMsim3 `configs/DDR4_8Gb_x8_3200.ini`
/// (tCK 0.63 ns, CL-tRCD-tRP 22-22-22, `channel_size = 16384` which makes 2 ranks,
/// `rochrababgco`, `PER_BANK`, `cmd_queue_size = 8`, `trans_queue_size = 16`, open page,
/// rank-level staggered refresh). tRC = tRAS + tRP as DRAMsim3 computes it.
pub fn ddr4_3200() -> DramParams {
    DramParams {
        name: "ddr4-3200".to_owned(),
        geometry: ddr4_8gb_x8_geometry(),
        timing: Timing {
            t_ck_ps: 630,
            t_cl_cycles: 22,
            t_cwl_cycles: 16,
            t_rcd_cycles: 22,
            t_rp_cycles: 22,
            t_ras_cycles: 52,
            t_rc_cycles: 74,
            t_burst_cycles: 4,
            t_ccd_s_cycles: 4,
            t_ccd_l_cycles: 8,
            t_rrd_s_cycles: 4,
            t_rrd_l_cycles: 8,
            t_faw_cycles: 34,
            t_rtp_cycles: 12,
            t_wr_cycles: 24,
            t_wtr_s_cycles: 4,
            t_wtr_l_cycles: 12,
            t_rtrs_cycles: 1,
            t_rfc_cycles: 560,
            t_refi_cycles: 12_480,
        },
        mapping: ddr4_x8_two_rank_mapping(),
        controller: ControllerParams {
            page_policy: PagePolicy::Open,
            queue_structure: QueueStructure::PerBank,
            command_queue_entries: 8,
            transaction_queue_entries: 16,
            write_drain: WriteDrain::DRAMSIM3,
            idle_write_drain_cycles: None,
            row_hit_cap: 4,
        },
        crypto: crypto_default(630),
    }
}

/// DDR5-4800AN on one 32-bit subchannel of 16 Gb x8 devices (4 devices, 1 rank, 8 bank groups
/// x 4 banks, 65,536 rows, 1024 columns, BL16 so one 64-byte line per burst of 8 cycles).
///
/// Organisation, the nanosecond tables and the rounding follow Ramulator2
/// `src/dram/impl/DDR5.cpp` (`DDR5_16Gb_x8`; tRFC1 = 295 ns and tREFI = 3900 ns rounded with
/// `JEDEC_rounding_DDR5` at tCK = 416 ps: 708 and 9347 cycles; tRRD_L = max(8 nCK, 5 ns) = 12;
/// tFAW for x8 = 32; tRRD_S = nCCD_S = 8; nCS = 2 as the rank switch). The speed-bin values
/// (CL 34, CWL 32, tRCD = tRP = 34, tRAS 77, tRC 111, tWR 72, tRTP 18, tCCD_L 12, tWTR_S 6,
/// tWTR_L 24) are the JEDEC DDR5-4800AN bin as carried by Ramulator2's `DDR5_4800AN` preset;
/// the main branch of Ramulator2 ships only the 3200 bins, see docs/dram-model.md.
/// Queue sizes follow the DDR4 presets (8-entry per-bank command queues, 32-entry transaction
/// queues). The address layout is ours, in DRAMsim3's `rochrababgco` order.
pub fn ddr5_4800() -> DramParams {
    DramParams {
        name: "ddr5-4800".to_owned(),
        geometry: Geometry {
            channels: 1,
            ranks: 1,
            bankgroups: 8,
            banks_per_group: 4,
            rows: 65_536,
            columns: 1_024,
            device_width_bits: 8,
            bus_width_bits: 32,
            burst_length: 16,
        },
        timing: Timing {
            t_ck_ps: 416,
            t_cl_cycles: 34,
            t_cwl_cycles: 32,
            t_rcd_cycles: 34,
            t_rp_cycles: 34,
            t_ras_cycles: 77,
            t_rc_cycles: 111,
            t_burst_cycles: 8,
            t_ccd_s_cycles: 8,
            t_ccd_l_cycles: 12,
            t_rrd_s_cycles: 8,
            t_rrd_l_cycles: 12,
            t_faw_cycles: 32,
            t_rtp_cycles: 18,
            t_wr_cycles: 72,
            t_wtr_s_cycles: 6,
            t_wtr_l_cycles: 24,
            t_rtrs_cycles: 2,
            t_rfc_cycles: 708,
            t_refi_cycles: 9_347,
        },
        mapping: MappingParams {
            addr_bits: 33,
            channel: bits(33, 0),
            column: bits(6, 6),
            bankgroup: bits(12, 3),
            bank: bits(15, 2),
            rank: bits(17, 0),
            row: bits(17, 16),
        },
        controller: ControllerParams {
            page_policy: PagePolicy::Open,
            queue_structure: QueueStructure::PerBank,
            command_queue_entries: 8,
            transaction_queue_entries: 32,
            write_drain: WriteDrain::DRAMSIM3,
            idle_write_drain_cycles: None,
            row_hit_cap: 4,
        },
        crypto: crypto_default(416),
    }
}

impl DramParams {
    /// The parameters of a named preset, or `None` for an unknown name (see
    /// [`PRESET_NAMES`]).
    pub fn preset(name: &str) -> Option<DramParams> {
        match name {
            "ddr4-2400" => Some(ddr4_2400()),
            "ddr4-3200" => Some(ddr4_3200()),
            "ddr5-4800" => Some(ddr5_4800()),
            _ => None,
        }
    }

    /// The preset `name` as the full-system machines run it: the same DRAM and queues, with
    /// the machines' controller policy: idle write drain after
    /// [`MACHINE_IDLE_WRITE_DRAIN_CYCLES`] (buffered writes reach DRAM soon after the
    /// controller falls idle, as in real controllers, rather than at the end of the run) and
    /// the [`MACHINE_WRITE_DRAIN`] rule. `None` for an unknown name.
    pub fn machine_preset(name: &str) -> Option<DramParams> {
        let mut params = DramParams::preset(name)?;
        params.controller.write_drain = MACHINE_WRITE_DRAIN;
        params.controller.idle_write_drain_cycles = Some(MACHINE_IDLE_WRITE_DRAIN_CYCLES);
        Some(params)
    }
}

// `DramConfig`'s constructors by preset name live beside the presets, so that `config` does
// not depend on them (nor they on each other in a circle).
impl DramConfig {
    /// A named preset: `ddr4-2400`, `ddr4-3200` or `ddr5-4800` ([`PRESET_NAMES`]).
    pub fn preset(name: &str) -> Result<DramConfig, DramConfigError> {
        match DramParams::preset(name) {
            Some(params) => DramConfig::new(params),
            None => Err(DramConfigError::UnknownPreset {
                name: name.to_owned(),
                known: PRESET_NAMES.join(", "),
            }),
        }
    }

    /// A named preset as the full-system machines run it ([`DramParams::machine_preset`]: idle
    /// write drain and the machines' drain rule).
    pub fn machine_preset(name: &str) -> Result<DramConfig, DramConfigError> {
        match DramParams::machine_preset(name) {
            Some(params) => DramConfig::new(params),
            None => Err(DramConfigError::UnknownPreset {
                name: name.to_owned(),
                known: PRESET_NAMES.join(", "),
            }),
        }
    }
}
