//! `mktme-sim dram-trace TRACE`: drives one memory controller's DRAM timing model alone from a
//! DRAMsim3/Ramulator-style request trace and reports what the validation data measures.
//!
//! The trace has one request per line, `0xADDR READ|WRITE CYCLE`, CYCLE in DRAM clock cycles
//! (blank lines and lines starting with `#` are skipped). It is read as a stream, line by
//! line, so a trace of any length runs in bounded memory. Requests are offered in file order,
//! no earlier than their cycle, at most one per cycle; a request refused by a full queue holds
//! back every later one (DRAMsim3's trace CPU).
//!
//! `--dram` takes a preset name or a RON file. The file mirrors
//! [`mem_ctrl::dram::DramParams`] field for field (`--print-dram` writes a preset in this
//! format, a good starting point); it is parsed into the plain structs below, with unknown
//! fields rejected, then validated into a typed [`DramConfig`].

use anyhow::{Context, anyhow, bail};
use mem_ctrl::dram::{
    ControllerParams, CryptoTiming, DramConfig, DramParams, DriverError, DriverLimits, Encryption,
    Geometry, MappingParams, PRESET_NAMES, PagePolicy, QueueStructure, Throughput, Timing,
    TraceRecord, TraceReport, run_trace,
};
use serde::{Deserialize, Serialize};
use sim_core::{BitRange, Cycle, DramAddr, MemOp};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Longest trace line accepted, in bytes (a well-formed line is under 60).
const TRACE_LINE_BYTES_MAX: usize = 4096;
/// Largest RON DRAM file accepted, in bytes.
const DRAM_FILE_BYTES_MAX: u64 = 1 << 20;

/// Whether the encryption stage's timing applies.
#[derive(Copy, Clone, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum OnOff {
    /// Plain DRAM timing.
    Off,
    /// Add the AES-XTS stage: decrypt after each read burst, encrypt before each write enters
    /// the write buffer.
    On,
}

/// Arguments of `mktme-sim dram-trace`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Request trace: one `0xADDR READ|WRITE CYCLE` per line, CYCLE in DRAM clock cycles.
    #[arg(required_unless_present = "print_dram")]
    pub trace: Option<PathBuf>,
    /// DRAM configuration: a preset (ddr4-2400, ddr4-3200, ddr5-4800) or a RON DRAM file.
    #[arg(long, default_value = "ddr4-2400")]
    pub dram: String,
    /// Timing of the memory-encryption stage.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    pub encryption: OnOff,
    /// Print the report as a JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Fail when simulated time passes this DRAM cycle.
    #[arg(long)]
    pub max_cycles: Option<u64>,
    /// Print the DRAM configuration as a RON DRAM file and exit.
    #[arg(long)]
    pub print_dram: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_dram(&args.dram)?;
    if args.print_dram {
        return emit(&to_ron(config.params())?);
    }
    let path = args
        .trace
        .as_deref()
        .ok_or_else(|| anyhow!("a TRACE file is required"))?;
    let encryption = match args.encryption {
        OnOff::Off => Encryption::Off,
        OnOff::On => Encryption::On,
    };
    let file = File::open(path).with_context(|| format!("cannot open trace {}", path.display()))?;
    let records = TraceReader::new(path, BufReader::new(file), &config);
    let mut limits = DriverLimits::for_config(&config);
    limits.cycles_max = args.max_cycles;
    let report = match run_trace(&config, encryption, records, limits) {
        Ok(report) => report,
        Err(DriverError::Input(e)) => return Err(e.into()),
        Err(e) => bail!("{}: {e}", path.display()),
    };
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&JsonReport::new(&report))?;
        json.push('\n');
        json
    } else {
        Table(&report, path).to_string()
    };
    emit(&text)
}

/// Writes the report to stdout. A closed pipe (`| head`) is not an error of the run.
fn emit(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow!("cannot write the report: {e}")),
    }
}

// ---- DRAM configuration ---------------------------------------------------------------------

fn load_dram(arg: &str) -> anyhow::Result<DramConfig> {
    if let Some(params) = DramParams::preset(arg) {
        return Ok(DramConfig::new(params)?);
    }
    let path = Path::new(arg);
    let looks_like_file = arg.ends_with(".ron") || arg.contains(std::path::MAIN_SEPARATOR);
    if !looks_like_file && !path.exists() {
        bail!(
            "unknown DRAM `{arg}`: expected a preset ({}) or a path to a .ron DRAM file",
            PRESET_NAMES.join(", ")
        );
    }
    let file = File::open(path).with_context(|| format!("cannot open DRAM file {arg}"))?;
    let mut text = String::new();
    file.take(DRAM_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read DRAM file {arg}"))?;
    if text.len() as u64 > DRAM_FILE_BYTES_MAX {
        bail!("{arg}: DRAM file is larger than {DRAM_FILE_BYTES_MAX} bytes");
    }
    let parsed: DramFile = ron::from_str(&text).map_err(|e| {
        anyhow!(
            "{arg}:{}:{}: {} (expected a DRAM file as written by `mktme-sim dram-trace --print-dram`)",
            e.span.start.line,
            e.span.start.col,
            e.code
        )
    })?;
    let params = parsed.into_params().map_err(|e| anyhow!("{arg}: {e}"))?;
    DramConfig::new(params).map_err(|e| anyhow!("{arg}: {e}"))
}

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

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ControllerFile {
    page_policy: PagePolicyFile,
    queue_structure: QueueStructureFile,
    command_queue_entries: u32,
    transaction_queue_entries: u32,
    write_drain_threshold: u32,
    row_hit_cap: u32,
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
    fn to_range(self, field: &str) -> anyhow::Result<BitRange> {
        BitRange::new(self.low, self.width).ok_or_else(|| {
            anyhow!(
                "mapping.{field} = (low: {}, width: {}) does not fit in a 64-bit address",
                self.low,
                self.width
            )
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
    fn into_params(self) -> anyhow::Result<DramParams> {
        let g = self.geometry;
        let t = self.timing;
        let m = self.mapping;
        let c = self.controller;
        let k = self.crypto;
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
                write_drain_threshold: c.write_drain_threshold,
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
                write_drain_threshold: c.write_drain_threshold,
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

fn to_ron(params: &DramParams) -> anyhow::Result<String> {
    let pretty = ron::ser::PrettyConfig::new().struct_names(false);
    let mut text = ron::ser::to_string_pretty(&DramFile::from_params(params), pretty)?;
    text.push('\n');
    Ok(text)
}

// ---- trace ----------------------------------------------------------------------------------

/// A malformed trace line.
#[derive(Debug)]
struct TraceError {
    path: PathBuf,
    line: u64,
    message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl std::error::Error for TraceError {}

/// Streams trace records out of a reader, one bounded line at a time.
struct TraceReader<'a, R> {
    path: &'a Path,
    reader: R,
    config: &'a DramConfig,
    line_no: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl<'a, R: BufRead> TraceReader<'a, R> {
    fn new(path: &'a Path, reader: R, config: &'a DramConfig) -> Self {
        TraceReader {
            path,
            reader,
            config,
            line_no: 0,
            buf: Vec::with_capacity(128),
            failed: false,
        }
    }

    fn error(&self, message: String) -> TraceError {
        TraceError {
            path: self.path.to_owned(),
            line: self.line_no,
            message,
        }
    }

    /// Reads the next line into `buf` (without its terminator); `false` at end of file.
    fn read_line(&mut self) -> Result<bool, TraceError> {
        self.buf.clear();
        self.line_no += 1;
        let limit = TRACE_LINE_BYTES_MAX as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.error(format!("cannot read: {e}")))?;
        if n == 0 {
            return Ok(false);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 == limit {
            return Err(self.error(format!(
                "line is longer than {TRACE_LINE_BYTES_MAX} bytes; expected `0xADDR READ|WRITE CYCLE`"
            )));
        }
        Ok(true)
    }

    fn parse(&self) -> Result<Option<TraceRecord>, TraceError> {
        let text = std::str::from_utf8(&self.buf).map_err(|_| {
            self.error("line is not UTF-8 text; expected `0xADDR READ|WRITE CYCLE`".into())
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(None);
        }
        let mut tokens = trimmed.split_whitespace();
        let addr_tok = tokens.next().expect("non-empty line has a token");
        let digits = addr_tok
            .strip_prefix("0x")
            .or_else(|| addr_tok.strip_prefix("0X"))
            .ok_or_else(|| {
                self.error(format!(
                    "expected a hexadecimal address starting with 0x, found `{addr_tok}`"
                ))
            })?;
        let addr = u64::from_str_radix(digits, 16).map_err(|_| {
            self.error(format!(
                "expected a hexadecimal address that fits in 64 bits, found `{addr_tok}`"
            ))
        })?;
        let op = match tokens.next() {
            Some("READ") => MemOp::Read,
            Some("WRITE") => MemOp::Write,
            Some(other) => {
                return Err(self.error(format!("expected READ or WRITE, found `{other}`")));
            }
            None => {
                return Err(self.error(
                    "expected READ or WRITE after the address, found the end of the line".into(),
                ));
            }
        };
        let cycle_tok = tokens.next().ok_or_else(|| {
            self.error(
                "expected a decimal DRAM cycle after the operation, found the end of the line"
                    .into(),
            )
        })?;
        let cycle: u64 = cycle_tok.parse().map_err(|_| {
            self.error(format!(
                "expected a decimal DRAM cycle that fits in 64 bits, found `{cycle_tok}`"
            ))
        })?;
        if let Some(extra) = tokens.next() {
            return Err(self.error(format!(
                "expected the end of the line after the cycle, found `{extra}`"
            )));
        }
        let addr = DramAddr::new(addr);
        self.config.mapping().check(addr).map_err(|e| {
            self.error(format!(
                "{e}; expected an address below {:#x}",
                self.config.capacity_bytes()
            ))
        })?;
        Ok(Some(TraceRecord {
            addr,
            op,
            cycle: Cycle::new(cycle),
        }))
    }
}

impl<R: BufRead> Iterator for TraceReader<'_, R> {
    type Item = Result<TraceRecord, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.read_line() {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            match self.parse() {
                Ok(None) => continue,
                Ok(Some(record)) => return Some(Ok(record)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

// ---- report ---------------------------------------------------------------------------------

/// One histogram bucket.
#[derive(Serialize)]
struct Bucket {
    latency_cycles: u64,
    count: u64,
}

/// The `--json` report. Field order is the output order.
#[derive(Serialize)]
struct JsonReport {
    dram: String,
    encryption: bool,
    reads: u64,
    writes: u64,
    /// READ(A) row hits / READ(A) commands; null without reads.
    row_hit_rate: Option<f64>,
    /// Mean of data-available cycle minus accept cycle over reads; null without reads.
    avg_read_latency_cycles: Option<f64>,
    read_latency_histogram: Vec<Bucket>,
    acts: u64,
    pres: u64,
    refs: u64,
    /// 64 B x (READ(A) + WRITE(A) commands) / (cycles x tCK), in 10^9 B/s.
    bandwidth_gbps: f64,
    peak_bandwidth_gbps: f64,
    /// Last completion cycle + 1 (DRAM cycles).
    cycles: u64,
    t_ck_ps: u32,
    read_cmds: u64,
    write_cmds: u64,
    read_row_hits: u64,
    write_row_hits: u64,
    reads_forwarded: u64,
    reads_coalesced: u64,
    writes_merged: u64,
}

impl JsonReport {
    fn new(r: &TraceReport) -> JsonReport {
        let s = &r.stats;
        JsonReport {
            dram: r.dram.clone(),
            encryption: r.encryption == Encryption::On,
            reads: s.reads.get(),
            writes: s.writes.get(),
            row_hit_rate: r.row_hit_rate(),
            avg_read_latency_cycles: r.avg_read_latency_cycles(),
            read_latency_histogram: s
                .read_latency
                .iter()
                .map(|(latency_cycles, count)| Bucket {
                    latency_cycles,
                    count,
                })
                .collect(),
            acts: s.acts.get(),
            pres: s.pres.get(),
            refs: s.refs.get(),
            bandwidth_gbps: r.bandwidth_gbps(),
            peak_bandwidth_gbps: r.peak_bandwidth_gbps,
            cycles: r.cycles,
            t_ck_ps: r.t_ck_ps,
            read_cmds: s.read_cmds.get(),
            write_cmds: s.write_cmds.get(),
            read_row_hits: s.read_row_hits.get(),
            write_row_hits: s.write_row_hits.get(),
            reads_forwarded: s.reads_forwarded.get(),
            reads_coalesced: s.reads_coalesced.get(),
            writes_merged: s.writes_merged.get(),
        }
    }
}

/// The human-readable report.
struct Table<'a>(&'a TraceReport, &'a Path);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, path) = (self.0, self.1);
        let s = &r.stats;
        let encryption = match r.encryption {
            Encryption::Off => "off",
            Encryption::On => "on",
        };
        writeln!(
            f,
            "dram-trace {} on {} (encryption {encryption}); all cycles are DRAM cycles of {:.3} ns",
            path.display(),
            r.dram,
            f64::from(r.t_ck_ps) / 1000.0
        )?;
        writeln!(f, "  {:<28}{:>14}", "reads", s.reads.get())?;
        writeln!(f, "  {:<28}{:>14}", "writes", s.writes.get())?;
        match r.row_hit_rate() {
            Some(rate) => writeln!(
                f,
                "  {:<28}{:>12.2} %  ({} of {} READ commands)",
                "row hit rate",
                rate * 100.0,
                s.read_row_hits.get(),
                s.read_cmds.get()
            )?,
            None => writeln!(f, "  {:<28}{:>14}", "row hit rate", "-")?,
        }
        match r.avg_read_latency_cycles() {
            Some(avg) => writeln!(f, "  {:<28}{:>14.3}", "avg read latency (cycles)", avg)?,
            None => writeln!(f, "  {:<28}{:>14}", "avg read latency (cycles)", "-")?,
        }
        let common: Vec<String> = r
            .most_common_read_latencies(5)
            .iter()
            .map(|(l, n)| format!("{l} x{n}"))
            .collect();
        if !common.is_empty() {
            writeln!(
                f,
                "  {:<28}{}",
                "most common read latencies",
                common.join(", ")
            )?;
        }
        writeln!(
            f,
            "  {:<28}{:>14}",
            "ACT / PRE / REF",
            format!("{} / {} / {}", s.acts.get(), s.pres.get(), s.refs.get())
        )?;
        writeln!(
            f,
            "  {:<28}{:>14}",
            "READ / WRITE commands",
            format!("{} / {}", s.read_cmds.get(), s.write_cmds.get())
        )?;
        let peak = r.peak_bandwidth_gbps;
        let bw = r.bandwidth_gbps();
        writeln!(
            f,
            "  {:<28}{:>12.3} GB/s  ({:.1} % of the {:.2} GB/s peak)",
            "bandwidth",
            bw,
            if peak > 0.0 { bw / peak * 100.0 } else { 0.0 },
            peak
        )?;
        writeln!(f, "  {:<28}{:>14}", "cycles", r.cycles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Vec<Result<TraceRecord, String>> {
        let config = DramConfig::preset("ddr4-2400").unwrap();
        TraceReader::new(Path::new("t.trace"), text.as_bytes(), &config)
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn parses_records_and_skips_blank_and_comment_lines() {
        let got = parse_all("# header\n0x40 READ 0\n\n0X80 WRITE 17\r\n");
        assert_eq!(
            got,
            vec![
                Ok(TraceRecord {
                    addr: DramAddr::new(0x40),
                    op: MemOp::Read,
                    cycle: Cycle::new(0)
                }),
                Ok(TraceRecord {
                    addr: DramAddr::new(0x80),
                    op: MemOp::Write,
                    cycle: Cycle::new(17)
                }),
            ]
        );
    }

    #[test]
    fn malformed_lines_name_file_line_and_expectation() {
        let cases = [
            (
                "40 READ 0",
                "t.trace:1: expected a hexadecimal address starting with 0x",
            ),
            (
                "0xZZ READ 0",
                "t.trace:1: expected a hexadecimal address that fits",
            ),
            (
                "0x40 LOAD 0",
                "t.trace:1: expected READ or WRITE, found `LOAD`",
            ),
            (
                "0x40",
                "t.trace:1: expected READ or WRITE after the address",
            ),
            ("0x40 READ", "t.trace:1: expected a decimal DRAM cycle"),
            (
                "0x40 READ -1",
                "t.trace:1: expected a decimal DRAM cycle that fits",
            ),
            (
                "0x40 READ 1 2",
                "t.trace:1: expected the end of the line after the cycle",
            ),
            (
                "0x400000000 READ 1",
                "t.trace:1: DRAM address 0x400000000 is beyond",
            ),
        ];
        for (line, expected) in cases {
            let got = parse_all(&format!("{line}\n"));
            assert_eq!(got.len(), 1, "{line}");
            let err = got[0].clone().unwrap_err();
            assert!(err.starts_with(expected), "{line}: {err}");
        }
        // The error stops the stream, and the line number counts every line.
        let got = parse_all("0x40 READ 0\n# c\n0x40 READ x\n0x40 READ 9\n");
        assert_eq!(got.len(), 2);
        assert!(got[1].clone().unwrap_err().starts_with("t.trace:3:"));
    }

    #[test]
    fn overlong_lines_are_rejected_without_reading_them_whole() {
        let long = "0x40 READ 0 ".to_owned() + &" ".repeat(TRACE_LINE_BYTES_MAX);
        let got = parse_all(&format!("{long}\n"));
        assert!(
            got[0]
                .clone()
                .unwrap_err()
                .contains("longer than 4096 bytes")
        );
    }

    /// Yields `0x40 READ 0` lines forever.
    struct Endless {
        pos: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let line = b"0x40 READ 0\n";
            for b in buf.iter_mut() {
                *b = line[self.pos % line.len()];
                self.pos += 1;
            }
            Ok(buf.len())
        }
    }

    #[test]
    fn the_trace_streams_without_reading_to_the_end() {
        let config = DramConfig::preset("ddr4-2400").unwrap();
        let reader = BufReader::with_capacity(64, Endless { pos: 0 });
        let n = TraceReader::new(Path::new("endless"), reader, &config)
            .take(10_000)
            .filter(Result::is_ok)
            .count();
        assert_eq!(n, 10_000);
    }

    #[test]
    fn every_preset_round_trips_through_ron() {
        for name in PRESET_NAMES {
            let params = DramParams::preset(name).unwrap();
            let text = to_ron(&params).unwrap();
            let back: DramFile = ron::from_str(&text).unwrap();
            assert_eq!(back.into_params().unwrap(), params, "{name}");
        }
    }
}
