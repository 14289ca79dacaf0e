//! DRAM configuration files (RON): the schema that `mktme-sim dram-trace --dram FILE.ron` and a
//! machine file's `memory.dram` read, and that `mktme-sim dram-trace --print-dram` writes.
//!
//! ```ron
//! (
//!     name: "ddr4-2400",
//!     geometry: (channels: 1, ranks: 2, bankgroups: 4, banks_per_group: 4, ...),
//!     timing: (t_ck_ps: 830, t_cl_cycles: 17, ...),
//!     mapping: (addr_bits: 34, channel: (low: 34, width: 0), ...),
//!     controller: (page_policy: Open, queue_structure: PerBank, ...),
//!     crypto: (decrypt_latency_cycles: 5, ...),
//! )
//! ```
//!
//! The file mirrors [`mem_ctrl::dram::DramParams`] field for field (names and units are the
//! same); `--print-dram` writes a preset in this format, a good starting point. It is parsed
//! into the plain structs below, with unknown fields rejected, then validated into a typed
//! [`DramConfig`]. Every error names the file (and the line and column for RON mistakes).
//! `Some(...)` may be left out around optional values (`idle_write_drain_cycles: 500`).
//!
//! `controller.write_drain` is `CommandQueuesEmpty(above: N)` (DRAMsim3's rule, the presets'
//! with N = 8) or `ReadQueueEmpty(at_least: N)` (DRAMsim3's older rule). Files written before it
//! existed give `write_drain_threshold: N` instead, which still reads as what it meant then:
//! `ReadQueueEmpty(at_least: N)`.

use crate::limits::FILE_CHARS_SHOWN;
use mem_ctrl::dram::{
    ControllerParams, CryptoTiming, DramConfig, DramConfigError, DramParams, Geometry,
    MappingParams, PRESET_NAMES, PagePolicy, QueueStructure, Throughput, Timing, WriteDrain,
};
use serde::{Deserialize, Serialize};
use sim_core::BitRange;
use sim_core::text::{one_line, shown, shown_max};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest RON DRAM file accepted, in bytes.
pub const DRAM_FILE_BYTES_MAX: u64 = 1 << 20;

/// Why a DRAM setting (a preset name or a DRAM file) gives no DRAM configuration. Errors about
/// a file name it as it was given (joined to the folder it is relative to).
#[derive(Debug, thiserror::Error)]
pub enum DramFileError {
    /// Neither a preset nor something that looks like a file.
    #[error(
        "unknown DRAM `{}`: expected a preset ({}) or a path to a .ron DRAM file",
        shown(name),
        PRESET_NAMES.join(", ")
    )]
    Unknown {
        /// What was given.
        name: String,
    },
    /// A preset that does not validate (a bug in the presets).
    #[error(transparent)]
    Preset(DramConfigError),
    /// The file could not be opened.
    #[error("cannot open DRAM file {}: {error}", shown_max(file, FILE_CHARS_SHOWN))]
    Open {
        /// The file.
        file: String,
        /// The operating system's error (part of the message, so not also a `source()`).
        error: io::Error,
    },
    /// The file could not be read (or is not UTF-8 text).
    #[error("cannot read DRAM file {}: {error}", shown_max(file, FILE_CHARS_SHOWN))]
    Read {
        /// The file.
        file: String,
        /// The reader's error (part of the message, so not also a `source()`).
        error: io::Error,
    },
    /// The file is larger than [`DRAM_FILE_BYTES_MAX`].
    #[error(
        "{}: DRAM file is larger than {DRAM_FILE_BYTES_MAX} bytes",
        shown_max(file, FILE_CHARS_SHOWN)
    )]
    TooLarge {
        /// The file.
        file: String,
    },
    /// The RON is malformed, or a field is unknown, missing or mistyped.
    #[error(
        "{}:{line}:{column}: {} (expected a DRAM file as written by `mktme-sim \
         dram-trace --print-dram`)",
        shown_max(file, FILE_CHARS_SHOWN),
        one_line(message)
    )]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What ron says is wrong.
        message: String,
    },
    /// An address-mapping field does not fit in a 64-bit address.
    #[error("{}: {error}", shown_max(file, FILE_CHARS_SHOWN))]
    Mapping {
        /// The file.
        file: String,
        /// Which field and its bits.
        error: FieldOutOfRange,
    },
    /// `controller` gives both forms of the write-drain rule, or neither.
    #[error("{}: {problem}", shown_max(file, FILE_CHARS_SHOWN))]
    DrainRule {
        /// The file.
        file: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The DRAM the file describes is impossible.
    #[error("{}: {error}", shown_max(file, FILE_CHARS_SHOWN))]
    Invalid {
        /// The file.
        file: String,
        /// Which parameter and why (part of the message, so not also a `source()`).
        error: DramConfigError,
    },
}

/// A field of `mapping` whose bits do not fit in a 64-bit address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping.{field} = (low: {low}, width: {width}) does not fit in a 64-bit address")]
pub struct FieldOutOfRange {
    /// The field (`channel`, `rank`, ...).
    pub field: &'static str,
    /// Its lowest bit.
    pub low: u32,
    /// Its width in bits.
    pub width: u32,
}

/// The DRAM file `spec` names, if it names one rather than a preset: the path, relative
/// paths taken from `dir`. A name that is not a preset names a file when it ends in `.ron`,
/// contains a path separator, or is an existing file's name.
pub fn file_path(spec: &str, dir: &Path) -> Option<PathBuf> {
    if DramParams::preset(spec).is_some() {
        return None;
    }
    let path = dir.join(spec);
    let looks_like_file = spec.ends_with(".ron") || spec.contains(std::path::MAIN_SEPARATOR);
    (looks_like_file || path.exists()).then_some(path)
}

/// The DRAM `spec` describes: a preset by name (`ddr4-2400`, ...) or a RON DRAM file, a
/// relative path being taken from `dir`.
pub fn load(spec: &str, dir: &Path) -> Result<DramConfig, DramFileError> {
    if let Some(params) = DramParams::preset(spec) {
        return DramConfig::new(params).map_err(DramFileError::Preset);
    }
    match file_path(spec, dir) {
        Some(path) => read(&path),
        None => Err(DramFileError::Unknown {
            name: spec.to_owned(),
        }),
    }
}

/// Reads and validates a RON DRAM file.
pub fn read(path: &Path) -> Result<DramConfig, DramFileError> {
    let file = path.display().to_string();
    let opened = std::fs::File::open(path).map_err(|error| DramFileError::Open {
        file: file.clone(),
        error,
    })?;
    let mut text = String::new();
    opened
        .take(DRAM_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|error| DramFileError::Read {
            file: file.clone(),
            error,
        })?;
    if text.len() as u64 > DRAM_FILE_BYTES_MAX {
        return Err(DramFileError::TooLarge { file });
    }
    parse(&text, &file)
}

/// How DRAM files are read: `Some(...)` may be left out.
fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Parses and validates a DRAM file's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<DramConfig, DramFileError> {
    let parsed: DramFile = ron_options()
        .from_str(text)
        .map_err(|e| DramFileError::Syntax {
            file: file.to_owned(),
            line: e.span.start.line,
            column: e.span.start.col,
            message: e.code.to_string(),
        })?;
    let params = parsed.into_params().map_err(|error| match error {
        FileProblem::Mapping(error) => DramFileError::Mapping {
            file: file.to_owned(),
            error,
        },
        FileProblem::DrainRule(problem) => DramFileError::DrainRule {
            file: file.to_owned(),
            problem,
        },
    })?;
    DramConfig::new(params).map_err(|error| DramFileError::Invalid {
        file: file.to_owned(),
        error,
    })
}

/// `params` as a RON DRAM file, ending with a newline.
pub fn to_ron(params: &DramParams) -> Result<String, ron::Error> {
    let pretty = ron::ser::PrettyConfig::new().struct_names(false);
    let mut text = ron::ser::to_string_pretty(&DramFile::from_params(params), pretty)?;
    text.push('\n');
    Ok(text)
}

// ---- the file's shape -------------------------------------------------------------------

/// A RON DRAM file. Field names and units match [`DramParams`].
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct DramFile {
    name: String,
    geometry: GeometryFile,
    timing: TimingFile,
    mapping: MappingFile,
    controller: ControllerFile,
    crypto: CryptoFile,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct GeometryFile {
    channels: u32,
    ranks: u32,
    bankgroups: u32,
    banks_per_group: u32,
    rows: u32,
    columns: u32,
    device_width_bits: u32,
    bus_width_bits: u32,
    burst_length: u32,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TimingFile {
    t_ck_ps: u32,
    t_cl_cycles: u32,
    t_cwl_cycles: u32,
    t_rcd_cycles: u32,
    t_rp_cycles: u32,
    t_ras_cycles: u32,
    t_rc_cycles: u32,
    t_burst_cycles: u32,
    t_ccd_s_cycles: u32,
    t_ccd_l_cycles: u32,
    t_rrd_s_cycles: u32,
    t_rrd_l_cycles: u32,
    t_faw_cycles: u32,
    t_rtp_cycles: u32,
    t_wr_cycles: u32,
    t_wtr_s_cycles: u32,
    t_wtr_l_cycles: u32,
    t_rtrs_cycles: u32,
    t_rfc_cycles: u32,
    t_refi_cycles: u32,
}

/// A bit field of the DRAM address: `width` bits from bit `low`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    low: u32,
    width: u32,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    addr_bits: u32,
    channel: FieldFile,
    rank: FieldFile,
    bankgroup: FieldFile,
    bank: FieldFile,
    row: FieldFile,
    column: FieldFile,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
enum PagePolicyFile {
    Open,
    Closed,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
enum QueueStructureFile {
    PerBank,
    PerRank,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
enum WriteDrainFile {
    CommandQueuesEmpty { above: u32 },
    ReadQueueEmpty { at_least: u32 },
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ControllerFile {
    page_policy: PagePolicyFile,
    queue_structure: QueueStructureFile,
    command_queue_entries: u32,
    transaction_queue_entries: u32,
    /// Always written; optional when read, for files that give `write_drain_threshold`.
    #[serde(default, serialize_with = "some_as_inner")]
    write_drain: Option<WriteDrainFile>,
    /// The older form of `write_drain` (`ReadQueueEmpty(at_least: N)`): read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    write_drain_threshold: Option<u32>,
    #[serde(default)]
    idle_write_drain_cycles: Option<u32>,
    row_hit_cap: u32,
}

/// Writes `Some(x)` as `x` (the file is read with `Some` implicit).
fn some_as_inner<S: serde::Serializer>(
    value: &Option<WriteDrainFile>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(inner) => inner.serialize(serializer),
        None => serializer.serialize_none(),
    }
}

/// Why a parsed file gives no parameters.
enum FileProblem {
    Mapping(FieldOutOfRange),
    DrainRule(&'static str),
}

impl From<FieldOutOfRange> for FileProblem {
    fn from(e: FieldOutOfRange) -> FileProblem {
        FileProblem::Mapping(e)
    }
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CryptoFile {
    decrypt_latency_cycles: u32,
    encrypt_latency_cycles: u32,
    throughput_lines: u32,
    throughput_per_cycles: u32,
}

impl FieldFile {
    fn to_range(self, field: &'static str) -> Result<BitRange, FieldOutOfRange> {
        BitRange::new(self.low, self.width).ok_or(FieldOutOfRange {
            field,
            low: self.low,
            width: self.width,
        })
    }

    fn from_range(r: BitRange) -> FieldFile {
        FieldFile {
            low: r.low(),
            width: r.width(),
        }
    }
}

impl DramFile {
    fn into_params(self) -> Result<DramParams, FileProblem> {
        let g = self.geometry;
        let t = self.timing;
        let m = self.mapping;
        let c = self.controller;
        let k = self.crypto;
        let write_drain = match (c.write_drain, c.write_drain_threshold) {
            (Some(WriteDrainFile::CommandQueuesEmpty { above }), None) => {
                WriteDrain::CommandQueuesEmpty { above }
            }
            (Some(WriteDrainFile::ReadQueueEmpty { at_least }), None) | (None, Some(at_least)) => {
                WriteDrain::ReadQueueEmpty { at_least }
            }
            (Some(_), Some(_)) => {
                return Err(FileProblem::DrainRule(
                    "controller gives both write_drain and write_drain_threshold (its older \
                     form, `ReadQueueEmpty(at_least: N)`); keep write_drain",
                ));
            }
            (None, None) => {
                return Err(FileProblem::DrainRule(
                    "controller.write_drain is missing: `CommandQueuesEmpty(above: 8)` is \
                     DRAMsim3's rule",
                ));
            }
        };
        Ok(DramParams {
            name: self.name,
            geometry: Geometry {
                channels: g.channels,
                ranks: g.ranks,
                bankgroups: g.bankgroups,
                banks_per_group: g.banks_per_group,
                rows: g.rows,
                columns: g.columns,
                device_width_bits: g.device_width_bits,
                bus_width_bits: g.bus_width_bits,
                burst_length: g.burst_length,
            },
            timing: Timing {
                t_ck_ps: t.t_ck_ps,
                t_cl_cycles: t.t_cl_cycles,
                t_cwl_cycles: t.t_cwl_cycles,
                t_rcd_cycles: t.t_rcd_cycles,
                t_rp_cycles: t.t_rp_cycles,
                t_ras_cycles: t.t_ras_cycles,
                t_rc_cycles: t.t_rc_cycles,
                t_burst_cycles: t.t_burst_cycles,
                t_ccd_s_cycles: t.t_ccd_s_cycles,
                t_ccd_l_cycles: t.t_ccd_l_cycles,
                t_rrd_s_cycles: t.t_rrd_s_cycles,
                t_rrd_l_cycles: t.t_rrd_l_cycles,
                t_faw_cycles: t.t_faw_cycles,
                t_rtp_cycles: t.t_rtp_cycles,
                t_wr_cycles: t.t_wr_cycles,
                t_wtr_s_cycles: t.t_wtr_s_cycles,
                t_wtr_l_cycles: t.t_wtr_l_cycles,
                t_rtrs_cycles: t.t_rtrs_cycles,
                t_rfc_cycles: t.t_rfc_cycles,
                t_refi_cycles: t.t_refi_cycles,
            },
            mapping: MappingParams {
                addr_bits: m.addr_bits,
                channel: m.channel.to_range("channel")?,
                rank: m.rank.to_range("rank")?,
                bankgroup: m.bankgroup.to_range("bankgroup")?,
                bank: m.bank.to_range("bank")?,
                row: m.row.to_range("row")?,
                column: m.column.to_range("column")?,
            },
            controller: ControllerParams {
                page_policy: match c.page_policy {
                    PagePolicyFile::Open => PagePolicy::Open,
                    PagePolicyFile::Closed => PagePolicy::Closed,
                },
                queue_structure: match c.queue_structure {
                    QueueStructureFile::PerBank => QueueStructure::PerBank,
                    QueueStructureFile::PerRank => QueueStructure::PerRank,
                },
                command_queue_entries: c.command_queue_entries,
                transaction_queue_entries: c.transaction_queue_entries,
                write_drain,
                idle_write_drain_cycles: c.idle_write_drain_cycles,
                row_hit_cap: c.row_hit_cap,
            },
            crypto: CryptoTiming {
                decrypt_latency_cycles: k.decrypt_latency_cycles,
                encrypt_latency_cycles: k.encrypt_latency_cycles,
                throughput: Throughput {
                    lines: k.throughput_lines,
                    per_cycles: k.throughput_per_cycles,
                },
            },
        })
    }

    fn from_params(p: &DramParams) -> DramFile {
        let g = &p.geometry;
        let t = &p.timing;
        let m = &p.mapping;
        let c = &p.controller;
        let k = &p.crypto;
        DramFile {
            name: p.name.clone(),
            geometry: GeometryFile {
                channels: g.channels,
                ranks: g.ranks,
                bankgroups: g.bankgroups,
                banks_per_group: g.banks_per_group,
                rows: g.rows,
                columns: g.columns,
                device_width_bits: g.device_width_bits,
                bus_width_bits: g.bus_width_bits,
                burst_length: g.burst_length,
            },
            timing: TimingFile {
                t_ck_ps: t.t_ck_ps,
                t_cl_cycles: t.t_cl_cycles,
                t_cwl_cycles: t.t_cwl_cycles,
                t_rcd_cycles: t.t_rcd_cycles,
                t_rp_cycles: t.t_rp_cycles,
                t_ras_cycles: t.t_ras_cycles,
                t_rc_cycles: t.t_rc_cycles,
                t_burst_cycles: t.t_burst_cycles,
                t_ccd_s_cycles: t.t_ccd_s_cycles,
                t_ccd_l_cycles: t.t_ccd_l_cycles,
                t_rrd_s_cycles: t.t_rrd_s_cycles,
                t_rrd_l_cycles: t.t_rrd_l_cycles,
                t_faw_cycles: t.t_faw_cycles,
                t_rtp_cycles: t.t_rtp_cycles,
                t_wr_cycles: t.t_wr_cycles,
                t_wtr_s_cycles: t.t_wtr_s_cycles,
                t_wtr_l_cycles: t.t_wtr_l_cycles,
                t_rtrs_cycles: t.t_rtrs_cycles,
                t_rfc_cycles: t.t_rfc_cycles,
                t_refi_cycles: t.t_refi_cycles,
            },
            mapping: MappingFile {
                addr_bits: m.addr_bits,
                channel: FieldFile::from_range(m.channel),
                rank: FieldFile::from_range(m.rank),
                bankgroup: FieldFile::from_range(m.bankgroup),
                bank: FieldFile::from_range(m.bank),
                row: FieldFile::from_range(m.row),
                column: FieldFile::from_range(m.column),
            },
            controller: ControllerFile {
                page_policy: match c.page_policy {
                    PagePolicy::Open => PagePolicyFile::Open,
                    PagePolicy::Closed => PagePolicyFile::Closed,
                },
                queue_structure: match c.queue_structure {
                    QueueStructure::PerBank => QueueStructureFile::PerBank,
                    QueueStructure::PerRank => QueueStructureFile::PerRank,
                },
                command_queue_entries: c.command_queue_entries,
                transaction_queue_entries: c.transaction_queue_entries,
                write_drain: Some(match c.write_drain {
                    WriteDrain::CommandQueuesEmpty { above } => {
                        WriteDrainFile::CommandQueuesEmpty { above }
                    }
                    WriteDrain::ReadQueueEmpty { at_least } => {
                        WriteDrainFile::ReadQueueEmpty { at_least }
                    }
                }),
                write_drain_threshold: None,
                idle_write_drain_cycles: c.idle_write_drain_cycles,
                row_hit_cap: c.row_hit_cap,
            },
            crypto: CryptoFile {
                decrypt_latency_cycles: k.decrypt_latency_cycles,
                encrypt_latency_cycles: k.encrypt_latency_cycles,
                throughput_lines: k.throughput.lines,
                throughput_per_cycles: k.throughput.per_cycles,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_round_trips_through_ron() {
        for name in PRESET_NAMES {
            let params = DramParams::preset(name).unwrap();
            let text = to_ron(&params).unwrap();
            let back: DramFile = ron_options().from_str(&text).unwrap();
            assert!(back.into_params().ok() == Some(params.clone()), "{name}");
            assert_eq!(parse(&text, "d.ron").unwrap().params(), &params, "{name}");
        }
    }

    #[test]
    fn the_write_drain_rule_and_its_older_form() {
        let params = DramParams::preset("ddr4-2400").unwrap();
        let text = to_ron(&params).unwrap();
        assert!(
            text.contains("write_drain: CommandQueuesEmpty(\n            above: 8,\n        ),"),
            "{text}"
        );
        assert!(text.contains("idle_write_drain_cycles: None,"), "{text}");
        assert!(!text.contains("write_drain_threshold"), "{text}");
        let drain = |text: &str| parse(text, "d.ron").map(|c| c.params().controller.clone());
        // `Some` may be left out.
        let idle = text.replace(
            "idle_write_drain_cycles: None",
            "idle_write_drain_cycles: 500",
        );
        assert_eq!(drain(&idle).unwrap().idle_write_drain_cycles, Some(500));
        let older = text.replace(
            "write_drain: CommandQueuesEmpty(\n            above: 8,\n        ),",
            "write_drain_threshold: 16,",
        );
        assert_eq!(
            drain(&older).unwrap().write_drain,
            WriteDrain::ReadQueueEmpty { at_least: 16 }
        );
        let both = text.replace(
            "idle_write_drain_cycles: None,",
            "idle_write_drain_cycles: None, write_drain_threshold: 16,",
        );
        let e = drain(&both).unwrap_err().to_string();
        assert!(
            e.starts_with("d.ron: controller gives both write_drain and write_drain_threshold"),
            "{e}"
        );
        let neither = text.replace(
            "write_drain: CommandQueuesEmpty(\n            above: 8,\n        ),",
            "",
        );
        let e = drain(&neither).unwrap_err().to_string();
        assert!(
            e.starts_with("d.ron: controller.write_drain is missing"),
            "{e}"
        );
        let e = drain(&text.replace("above: 8", "above: 32"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "d.ron: controller.write_drain.above = 32 can never start a drain: the write buffer \
             holds controller.transaction_queue_entries = 32 writes"
        );
    }

    #[test]
    fn presets_by_name_files_by_shape() {
        let dir = Path::new("machines");
        assert_eq!(file_path("ddr4-2400", dir), None);
        assert_eq!(
            file_path("fast.ron", dir),
            Some(PathBuf::from("machines/fast.ron"))
        );
        assert_eq!(
            file_path("/abs/fast.ron", dir),
            Some(PathBuf::from("/abs/fast.ron"))
        );
        assert_eq!(file_path("ddr9", dir), None);
        assert_eq!(load("ddr5-4800", dir).unwrap().name(), "ddr5-4800");
        assert_eq!(
            load("ddr9", dir).unwrap_err().to_string(),
            "unknown DRAM `ddr9`: expected a preset (ddr4-2400, ddr4-3200, ddr5-4800) or a path \
             to a .ron DRAM file"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_place() {
        let e = parse("(nme: \"x\")", "d.ron").unwrap_err().to_string();
        assert!(
            e.starts_with("d.ron:1:2: Unexpected field named `nme`"),
            "{e}"
        );
        assert!(
            e.ends_with("(expected a DRAM file as written by `mktme-sim dram-trace --print-dram`)"),
            "{e}"
        );
        let params = DramParams::preset("ddr4-2400").unwrap();
        let mut text = to_ron(&params).unwrap();
        text = text.replacen("low: 18,", "low: 60,", 1);
        let e = parse(&text, "d.ron").unwrap_err().to_string();
        assert!(
            e.starts_with("d.ron: mapping.row = (low: 60, width: 16)"),
            "{e}"
        );
        assert!(e.ends_with("does not fit in a 64-bit address"), "{e}");
        let e = read(Path::new("/nonexistent/d.ron"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot open DRAM file /nonexistent/d.ron: "),
            "{e}"
        );
    }
}
