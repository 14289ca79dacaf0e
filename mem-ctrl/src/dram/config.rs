//! The DRAM configuration: plain parameters ([`DramParams`]) and their validated, typed form
//! ([`DramConfig`]).
//!
//! Two stages, as everywhere in mktme-sim: a file or a preset fills a [`DramParams`] (every field
//! public, nothing checked), then [`DramConfig::new`] checks every constraint once and returns a
//! [`DramConfigError`] that names the offending field and values. The timing model receives a
//! `&DramConfig` and never re-checks.
//!
//! Every timing parameter is in DRAM clock cycles (`tCK`, the command clock of the channel,
//! which is also the memory controller's clock in this model), except `t_ck_ps`, the clock
//! period itself, in picoseconds.

use super::mapping::{AddressMapping, MappingParams};
use sim_core::{BitRange, ClockRatio, LINE_BYTES};
use std::fmt;

/// Row-buffer management policy.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum PagePolicy {
    /// Leave the row open after a column command; close it only on a conflict or a refresh
    /// (DRAMsim3 `OPEN_PAGE`).
    Open,
    /// Close the row with every column command: READ and WRITE are issued as auto-precharge
    /// READA / WRITEA (DRAMsim3 `CLOSE_PAGE`).
    Closed,
}

impl fmt::Display for PagePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PagePolicy::Open => "open",
            PagePolicy::Closed => "closed",
        })
    }
}

/// How the command queues are split (DRAMsim3 `queue_structure`).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum QueueStructure {
    /// One command queue per bank (`PER_BANK`).
    PerBank,
    /// One command queue per rank (`PER_RANK`).
    PerRank,
}

impl fmt::Display for QueueStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueStructure::PerBank => "per-bank",
            QueueStructure::PerRank => "per-rank",
        })
    }
}

/// The organisation of one channel's DRAM.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Geometry {
    /// Independent channels, each with its own controller state and data bus.
    pub channels: u32,
    /// Ranks per channel.
    pub ranks: u32,
    /// Bank groups per rank (1 for DRAM without bank groups).
    pub bankgroups: u32,
    /// Banks in each bank group.
    pub banks_per_group: u32,
    /// Rows per bank.
    pub rows: u32,
    /// Columns per row, each `device_width_bits` wide (the JEDEC column, not a cache line).
    pub columns: u32,
    /// Data pins of one device (x4, x8, x16).
    pub device_width_bits: u32,
    /// Data bus width of the channel in bits.
    pub bus_width_bits: u32,
    /// Burst length (beats per column command), e.g. 8 for DDR4, 16 for a DDR5 subchannel.
    pub burst_length: u32,
}

impl Geometry {
    /// Banks in one rank.
    pub const fn banks_per_rank(&self) -> u32 {
        self.bankgroups * self.banks_per_group
    }

    /// Cache lines in one row of one rank (`columns / burst_length`).
    pub const fn lines_per_row(&self) -> u32 {
        self.columns / self.burst_length
    }

    /// Bytes moved by one column command: `bus_width_bits / 8 * burst_length`.
    pub const fn burst_bytes(&self) -> u32 {
        self.bus_width_bits / 8 * self.burst_length
    }
}

/// JEDEC timing parameters, in DRAM cycles (`t_ck_ps` excepted).
///
/// Names follow JESD79-4 / JESD79-5 with the unit last. Additive latency (AL) is not modelled
/// (it is 0 in every preset), so read latency RL = `t_cl_cycles` and write latency
/// WL = `t_cwl_cycles`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Timing {
    /// Clock period tCK in picoseconds (830 for the DDR4-2400 reference).
    pub t_ck_ps: u32,
    /// CAS latency: READ to first data beat.
    pub t_cl_cycles: u32,
    /// CAS write latency: WRITE to first data beat.
    pub t_cwl_cycles: u32,
    /// ACT to READ/WRITE, same bank.
    pub t_rcd_cycles: u32,
    /// PRE to ACT (or REF), same bank.
    pub t_rp_cycles: u32,
    /// ACT to PRE, same bank.
    pub t_ras_cycles: u32,
    /// ACT to ACT, same bank.
    pub t_rc_cycles: u32,
    /// Cycles one burst occupies the data bus (burst length / 2 for DDR).
    pub t_burst_cycles: u32,
    /// Column command to column command, different bank group.
    pub t_ccd_s_cycles: u32,
    /// Column command to column command, same bank group.
    pub t_ccd_l_cycles: u32,
    /// ACT to ACT, different bank group of the same rank.
    pub t_rrd_s_cycles: u32,
    /// ACT to ACT, same bank group.
    pub t_rrd_l_cycles: u32,
    /// Window in which at most four ACTs may issue to one rank.
    pub t_faw_cycles: u32,
    /// READ to PRE, same bank.
    pub t_rtp_cycles: u32,
    /// Write recovery: end of write data to PRE, same bank.
    pub t_wr_cycles: u32,
    /// End of write data to READ, different bank group.
    pub t_wtr_s_cycles: u32,
    /// End of write data to READ, same bank group.
    pub t_wtr_l_cycles: u32,
    /// Rank-to-rank switch: extra bus turnaround between bursts of different ranks.
    pub t_rtrs_cycles: u32,
    /// REF to ACT (or the next REF), same rank.
    pub t_rfc_cycles: u32,
    /// Average refresh interval per rank.
    pub t_refi_cycles: u32,
}

/// Scheduler and queue parameters of one channel's controller.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ControllerParams {
    /// Row-buffer policy.
    pub page_policy: PagePolicy,
    /// One command queue per bank or per rank.
    pub queue_structure: QueueStructure,
    /// Entries in each command queue (DRAMsim3 `cmd_queue_size`).
    pub command_queue_entries: u32,
    /// Entries in the read queue and, separately, in the write buffer (DRAMsim3
    /// `trans_queue_size`).
    pub transaction_queue_entries: u32,
    /// When the write buffer starts draining besides being full.
    pub write_drain: WriteDrain,
    /// Idle write drain: when the write buffer holds writes, the read queue and every command
    /// queue are empty, and the channel has accepted no request, issued no command other than
    /// REF and delivered no completion for this many cycles, it drains its whole write buffer.
    /// `None` (DRAMsim3, and every DRAM preset) leaves writes below the drain rule in the buffer
    /// until more writes arrive; real controllers drain when idle, and the machine presets do.
    pub idle_write_drain_cycles: Option<u32>,
    /// Column commands an open row may serve before an older request that conflicts with it may
    /// close it although younger row hits are still queued (DRAMsim3 hard-codes 4).
    pub row_hit_cap: u32,
}

/// When a channel starts moving buffered writes to the command queues instead of reads.
///
/// A full write buffer always starts a drain; these rules add a second trigger. A drain moves as
/// many writes as the buffer held when it started, one per cycle, before reads resume (it stops
/// early at a write whose line has a read pending).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum WriteDrain {
    /// DRAMsim3 as of umd-memsys/DRAMsim3 commit 29817593 (`Controller::ScheduleTransaction`):
    /// drain when the buffer holds more than `above` writes and every command queue is empty.
    /// DRAMsim3 hard-codes 8 (its `write_buf_size` setting is read but unused); the presets use
    /// that.
    CommandQueuesEmpty {
        /// Writes the buffer may hold without a drain (8 in DRAMsim3).
        above: u32,
    },
    /// DRAMsim3's older rule: drain when the read queue is empty and the buffer holds at least
    /// `at_least` writes (its `write_buf_size`, 16 by default).
    ReadQueueEmpty {
        /// Writes that start a drain once no read waits.
        at_least: u32,
    },
}

impl WriteDrain {
    /// The rule of DRAMsim3 at commit 29817593, which every DRAM preset follows: more than 8
    /// writes and every command queue empty.
    pub const DRAMSIM3: WriteDrain = WriteDrain::CommandQueuesEmpty { above: 8 };
}

impl fmt::Display for WriteDrain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteDrain::CommandQueuesEmpty { above } => {
                write!(f, "more than {above} writes and the command queues empty")
            }
            WriteDrain::ReadQueueEmpty { at_least } => {
                write!(f, "at least {at_least} writes and the read queue empty")
            }
        }
    }
}

/// Throughput of an encryption pipeline: `lines` lines every `per_cycles` controller cycles.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Throughput {
    /// Lines accepted per period (the number of parallel lanes).
    pub lines: u32,
    /// Period in DRAM cycles (each lane's initiation interval).
    pub per_cycles: u32,
}

/// Timing of the memory-encryption stage (AES-XTS) of the controller.
///
/// No public figure exists for MKTME's added latency (mktme-facts.md section 3): the presets
/// assume 4 ns each way and one line per cycle, which never limits bandwidth; see
/// `docs/dram-model.md`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct CryptoTiming {
    /// Cycles from the end of a read burst to plaintext leaving the decrypt stage.
    pub decrypt_latency_cycles: u32,
    /// Cycles from a write's acceptance to its ciphertext entering the write buffer.
    pub encrypt_latency_cycles: u32,
    /// Throughput of each of the two pipelines (decrypt and encrypt are separate engines).
    pub throughput: Throughput,
}

/// Unvalidated DRAM parameters: what a preset or a RON file says. Turn them into a
/// [`DramConfig`] with [`DramConfig::new`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DramParams {
    /// Human-readable name (a preset name or the file's `name`).
    pub name: String,
    /// Organisation.
    pub geometry: Geometry,
    /// Timing parameters.
    pub timing: Timing,
    /// Address mapping.
    pub mapping: MappingParams,
    /// Queues and scheduling.
    pub controller: ControllerParams,
    /// Encryption-stage timing (used when encryption is on).
    pub crypto: CryptoTiming,
}

/// An impossible DRAM configuration. Every variant names the configuration field at fault and
/// carries the values involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DramConfigError {
    /// No preset with this name.
    #[error("unknown DRAM preset `{name}`; known presets: {known}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The known preset names, comma-separated.
        known: String,
    },
    /// A count, size or period that must be at least 1 is 0.
    #[error("{field} = 0, but it must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A count that must be a power of two (it is addressed by a bit field) is not.
    #[error("{field} = {value} is not a power of two; it is addressed by a bit field")]
    NotPowerOfTwo {
        /// The field.
        field: &'static str,
        /// The configured value.
        value: u64,
    },
    /// One burst does not move one 64-byte cache line.
    #[error(
        "geometry.bus_width_bits = {bus_width_bits} x geometry.burst_length = {burst_length} moves \
         {burst_bytes} bytes per burst; the model needs exactly {line_bytes} (one cache line)"
    )]
    BurstNotOneLine {
        /// The configured bus width.
        bus_width_bits: u32,
        /// The configured burst length.
        burst_length: u32,
        /// Bytes per burst.
        burst_bytes: u64,
        /// Bytes per line.
        line_bytes: u64,
    },
    /// A row holds fewer columns than one burst.
    #[error(
        "geometry.columns = {columns} is smaller than geometry.burst_length = {burst_length}: a row \
         must hold at least one burst"
    )]
    RowShorterThanBurst {
        /// Columns per row.
        columns: u32,
        /// Burst length.
        burst_length: u32,
    },
    /// The burst duration disagrees with the burst length (DDR moves two beats per cycle).
    #[error(
        "timing.t_burst_cycles = {t_burst_cycles} disagrees with geometry.burst_length = \
         {burst_length}: a double-data-rate burst takes burst_length / 2 = {expected} cycles"
    )]
    BurstCyclesMismatch {
        /// Configured burst duration.
        t_burst_cycles: u32,
        /// Configured burst length.
        burst_length: u32,
        /// What the burst length implies.
        expected: u32,
    },
    /// `addr_bits` outside what the model supports.
    #[error("mapping.addr_bits = {addr_bits} is out of range: it must be between {min} and {max}")]
    AddrBitsOutOfRange {
        /// Configured value.
        addr_bits: u32,
        /// Smallest accepted value (line offset plus one bit).
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// A mapping field's width disagrees with the geometry.
    #[error("{field} is {width} bits wide, but {geometry_field} = {count} needs {expected} bits")]
    FieldWidthMismatch {
        /// The mapping field.
        field: &'static str,
        /// Its configured width.
        width: u32,
        /// The geometry field it encodes.
        geometry_field: &'static str,
        /// The geometry value.
        count: u64,
        /// log2 of the geometry value.
        expected: u32,
    },
    /// Two mapping fields share a bit.
    #[error("{field_a} (bits {a_low}..{a_end}) overlaps {field_b} (bits {b_low}..{b_end})")]
    FieldsOverlap {
        /// First field.
        field_a: &'static str,
        /// Its lowest bit.
        a_low: u32,
        /// One past its highest bit.
        a_end: u32,
        /// Second field.
        field_b: &'static str,
        /// Its lowest bit.
        b_low: u32,
        /// One past its highest bit.
        b_end: u32,
    },
    /// A mapping field uses the byte-within-line bits.
    #[error(
        "{field} (bits {low}..{end}) overlaps the byte-within-line bits 0..6; DRAM fields start \
         at bit 6"
    )]
    FieldInLineOffset {
        /// The field.
        field: &'static str,
        /// Its lowest bit.
        low: u32,
        /// One past its highest bit.
        end: u32,
    },
    /// A mapping field reaches past the DRAM address width.
    #[error("{field} (bits {low}..{end}) does not fit mapping.addr_bits = {addr_bits}")]
    FieldBeyondAddress {
        /// The field.
        field: &'static str,
        /// Its lowest bit.
        low: u32,
        /// One past its highest bit.
        end: u32,
        /// The configured address width.
        addr_bits: u32,
    },
    /// An address bit belongs to no field: two addresses would alias one DRAM location.
    #[error(
        "bit {bit} of the DRAM address belongs to no mapping field (mapping.addr_bits = \
         {addr_bits}); the geometry and the address width disagree"
    )]
    UnmappedAddressBit {
        /// The bit.
        bit: u32,
        /// The configured address width.
        addr_bits: u32,
    },
    /// tRAS longer than tRC: a row could not be closed before the next ACT.
    #[error("timing.t_ras_cycles = {t_ras} exceeds timing.t_rc_cycles = {t_rc}")]
    TrasExceedsTrc {
        /// Configured tRAS.
        t_ras: u32,
        /// Configured tRC.
        t_rc: u32,
    },
    /// tRC shorter than tRAS + tRP (JEDEC: tRC >= tRAS + tRP).
    #[error(
        "timing.t_rc_cycles = {t_rc} is less than timing.t_ras_cycles + timing.t_rp_cycles = \
         {t_ras} + {t_rp}"
    )]
    TrcBelowTrasPlusTrp {
        /// Configured tRC.
        t_rc: u32,
        /// Configured tRAS.
        t_ras: u32,
        /// Configured tRP.
        t_rp: u32,
    },
    /// The refresh interval cannot be staggered over the ranks, or a refresh would not finish
    /// before the next one is due.
    #[error(
        "timing.t_refi_cycles = {t_refi} is too short: staggered over {ranks} ranks every \
         rank needs t_refi / ranks >= 1 and t_refi > timing.t_rfc_cycles = {t_rfc}"
    )]
    RefreshIntervalTooShort {
        /// Configured tREFI.
        t_refi: u32,
        /// Configured tRFC.
        t_rfc: u32,
        /// Ranks.
        ranks: u32,
    },
    /// The write-drain rule can never fire before the buffer is full.
    #[error(
        "{field} = {threshold} can never start a drain: the write buffer holds \
         controller.transaction_queue_entries = {entries} writes"
    )]
    DrainThresholdAboveQueue {
        /// `controller.write_drain.above` or `controller.write_drain.at_least`.
        field: &'static str,
        /// Configured threshold.
        threshold: u32,
        /// Write buffer entries.
        entries: u32,
    },
}

/// A validated DRAM configuration. Build it with [`DramConfig::new`] or
/// [`DramConfig::preset`]; read it through [`DramConfig::params`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DramConfig {
    params: DramParams,
    mapping: AddressMapping,
}

fn check_nonzero(field: &'static str, value: u32) -> Result<(), DramConfigError> {
    if value == 0 {
        Err(DramConfigError::Zero { field })
    } else {
        Ok(())
    }
}

fn check_pow2(field: &'static str, value: u32) -> Result<u32, DramConfigError> {
    check_nonzero(field, value)?;
    if value.is_power_of_two() {
        Ok(value.trailing_zeros())
    } else {
        Err(DramConfigError::NotPowerOfTwo {
            field,
            value: u64::from(value),
        })
    }
}

impl DramConfig {
    /// Smallest accepted `mapping.addr_bits`: the line offset plus one bit.
    pub const ADDR_BITS_MIN: u32 = 7;
    /// Largest accepted `mapping.addr_bits` (the widest x86 physical address).
    pub const ADDR_BITS_MAX: u32 = 52;

    /// Validates `params`.
    pub fn new(params: DramParams) -> Result<DramConfig, DramConfigError> {
        let g = &params.geometry;
        let t = &params.timing;
        let m = &params.mapping;
        let c = &params.controller;

        // Geometry: every coordinate is a bit field, so every count is a power of two.
        let channel_bits = check_pow2("geometry.channels", g.channels)?;
        let rank_bits = check_pow2("geometry.ranks", g.ranks)?;
        let bankgroup_bits = check_pow2("geometry.bankgroups", g.bankgroups)?;
        let bank_bits = check_pow2("geometry.banks_per_group", g.banks_per_group)?;
        let row_bits = check_pow2("geometry.rows", g.rows)?;
        check_pow2("geometry.columns", g.columns)?;
        check_pow2("geometry.burst_length", g.burst_length)?;
        check_nonzero("geometry.device_width_bits", g.device_width_bits)?;
        check_nonzero("geometry.bus_width_bits", g.bus_width_bits)?;
        let burst_bytes = u64::from(g.bus_width_bits) * u64::from(g.burst_length) / 8;
        if !g.bus_width_bits.is_multiple_of(8) || burst_bytes != LINE_BYTES as u64 {
            return Err(DramConfigError::BurstNotOneLine {
                bus_width_bits: g.bus_width_bits,
                burst_length: g.burst_length,
                burst_bytes,
                line_bytes: LINE_BYTES as u64,
            });
        }
        if g.columns < g.burst_length {
            return Err(DramConfigError::RowShorterThanBurst {
                columns: g.columns,
                burst_length: g.burst_length,
            });
        }
        let column_bits = (g.columns / g.burst_length).trailing_zeros();

        // Timing.
        check_nonzero("timing.t_ck_ps", t.t_ck_ps)?;
        check_nonzero("timing.t_burst_cycles", t.t_burst_cycles)?;
        check_nonzero("timing.t_rfc_cycles", t.t_rfc_cycles)?;
        check_nonzero("timing.t_refi_cycles", t.t_refi_cycles)?;
        if t.t_burst_cycles * 2 != g.burst_length {
            return Err(DramConfigError::BurstCyclesMismatch {
                t_burst_cycles: t.t_burst_cycles,
                burst_length: g.burst_length,
                expected: g.burst_length / 2,
            });
        }
        if t.t_ras_cycles > t.t_rc_cycles {
            return Err(DramConfigError::TrasExceedsTrc {
                t_ras: t.t_ras_cycles,
                t_rc: t.t_rc_cycles,
            });
        }
        if u64::from(t.t_rc_cycles) < u64::from(t.t_ras_cycles) + u64::from(t.t_rp_cycles) {
            return Err(DramConfigError::TrcBelowTrasPlusTrp {
                t_rc: t.t_rc_cycles,
                t_ras: t.t_ras_cycles,
                t_rp: t.t_rp_cycles,
            });
        }
        if t.t_refi_cycles / g.ranks == 0 || t.t_refi_cycles <= t.t_rfc_cycles {
            return Err(DramConfigError::RefreshIntervalTooShort {
                t_refi: t.t_refi_cycles,
                t_rfc: t.t_rfc_cycles,
                ranks: g.ranks,
            });
        }

        // Queues.
        check_nonzero("controller.command_queue_entries", c.command_queue_entries)?;
        check_nonzero(
            "controller.transaction_queue_entries",
            c.transaction_queue_entries,
        )?;
        check_nonzero("controller.row_hit_cap", c.row_hit_cap)?;
        let (field, threshold, limit) = match c.write_drain {
            WriteDrain::CommandQueuesEmpty { above } => (
                "controller.write_drain.above",
                above,
                c.transaction_queue_entries,
            ),
            WriteDrain::ReadQueueEmpty { at_least } => {
                check_nonzero("controller.write_drain.at_least", at_least)?;
                (
                    "controller.write_drain.at_least",
                    at_least,
                    c.transaction_queue_entries + 1,
                )
            }
        };
        if threshold >= limit {
            return Err(DramConfigError::DrainThresholdAboveQueue {
                field,
                threshold,
                entries: c.transaction_queue_entries,
            });
        }
        if let Some(cycles) = c.idle_write_drain_cycles {
            check_nonzero("controller.idle_write_drain_cycles", cycles)?;
        }

        // Crypto stage.
        check_nonzero("crypto.throughput.lines", params.crypto.throughput.lines)?;
        check_nonzero(
            "crypto.throughput.per_cycles",
            params.crypto.throughput.per_cycles,
        )?;

        // Mapping: widths agree with the geometry, fields are disjoint, sit above the line
        // offset, fit the address and cover it without holes.
        if !(Self::ADDR_BITS_MIN..=Self::ADDR_BITS_MAX).contains(&m.addr_bits) {
            return Err(DramConfigError::AddrBitsOutOfRange {
                addr_bits: m.addr_bits,
                min: Self::ADDR_BITS_MIN,
                max: Self::ADDR_BITS_MAX,
            });
        }
        let expected = [
            ("geometry.channels", u64::from(g.channels), channel_bits),
            ("geometry.ranks", u64::from(g.ranks), rank_bits),
            (
                "geometry.bankgroups",
                u64::from(g.bankgroups),
                bankgroup_bits,
            ),
            (
                "geometry.banks_per_group",
                u64::from(g.banks_per_group),
                bank_bits,
            ),
            ("geometry.rows", u64::from(g.rows), row_bits),
            (
                "geometry.columns / geometry.burst_length",
                u64::from(g.columns / g.burst_length),
                column_bits,
            ),
        ];
        let fields = m.fields();
        for ((field, range), (geometry_field, count, bits)) in fields.iter().zip(expected) {
            if range.width() != bits {
                return Err(DramConfigError::FieldWidthMismatch {
                    field,
                    width: range.width(),
                    geometry_field,
                    count,
                    expected: bits,
                });
            }
        }
        let line_offset = BitRange::new(0, sim_core::addr::LINE_SHIFT).expect("6 bits fit");
        for (field, range) in fields {
            if range.overlaps(line_offset) {
                return Err(DramConfigError::FieldInLineOffset {
                    field,
                    low: range.low(),
                    end: range.end(),
                });
            }
            if range.width() > 0 && range.end() > m.addr_bits {
                return Err(DramConfigError::FieldBeyondAddress {
                    field,
                    low: range.low(),
                    end: range.end(),
                    addr_bits: m.addr_bits,
                });
            }
        }
        for (i, (field_a, a)) in fields.iter().enumerate() {
            for (field_b, b) in &fields[i + 1..] {
                if a.overlaps(*b) {
                    return Err(DramConfigError::FieldsOverlap {
                        field_a,
                        a_low: a.low(),
                        a_end: a.end(),
                        field_b,
                        b_low: b.low(),
                        b_end: b.end(),
                    });
                }
            }
        }
        // Disjoint fields inside [6, addr_bits): they cover it exactly when no bit is left out.
        for bit in sim_core::addr::LINE_SHIFT..m.addr_bits {
            let probe = BitRange::new(bit, 1).expect("bit < 52");
            if !fields.iter().any(|(_, r)| r.overlaps(probe)) {
                return Err(DramConfigError::UnmappedAddressBit {
                    bit,
                    addr_bits: m.addr_bits,
                });
            }
        }

        let mapping = AddressMapping::from_params(m);
        Ok(DramConfig { params, mapping })
    }

    /// The validated parameters.
    pub fn params(&self) -> &DramParams {
        &self.params
    }

    /// The configuration's name.
    pub fn name(&self) -> &str {
        &self.params.name
    }

    /// The address mapping.
    pub fn mapping(&self) -> &AddressMapping {
        &self.mapping
    }

    /// Bytes of DRAM the mapping addresses (`2^addr_bits`).
    pub fn capacity_bytes(&self) -> u64 {
        1u64 << self.params.mapping.addr_bits
    }

    /// Peak data-bus bandwidth of one channel in GB/s (10^9 bytes per second): one 64-byte
    /// burst every `t_burst_cycles` cycles of `t_ck_ps`.
    pub fn peak_bandwidth_gbps(&self) -> f64 {
        let t = &self.params.timing;
        // Bytes per picosecond times 1000 is bytes per nanosecond, which is GB/s.
        LINE_BYTES as f64 * 1000.0 / (f64::from(t.t_burst_cycles) * f64::from(t.t_ck_ps))
    }

    /// The ratio of a core clock of `core_mhz` MHz to this DRAM clock, for converting cycle
    /// counts with [`ClockRatio`] (core is the fast clock): `core cycles : DRAM cycles =
    /// t_ck_ps * core_mhz : 10^6`. `None` when `core_mhz` is 0.
    pub fn core_clock_ratio(&self, core_mhz: u64) -> Option<ClockRatio> {
        let num = u64::from(self.params.timing.t_ck_ps).checked_mul(core_mhz)?;
        let den = 1_000_000u64;
        let g = gcd(num, den);
        if g == 0 {
            return None;
        }
        ClockRatio::new(num / g, den / g)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
