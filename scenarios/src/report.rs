//! The JSON report of `mktme-sim run`, field by field as `docs/report-format.md` describes it.
//!
//! Everything here is plain data built by the runner from the model's own records (op
//! results, the coherency checker, the kernel, the DIMM bus, the DRAM store); nothing is
//! computed for the report that the model did not produce. Field order is fixed and maps are
//! ordered, so the same run gives byte-identical JSON.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The report file: every scenario run, in the order given on the command line.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Always `"mktme-sim-report"`.
    pub format: &'static str,
    /// The report format's version (bumped when a field changes meaning).
    pub version: u32,
    /// One entry per scenario.
    pub scenarios: Vec<ScenarioReport>,
    /// The files given that are not valid scenarios (not run), each as
    /// `file:line:column: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<String>,
}

impl Report {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// A report of these runs.
    pub fn new(scenarios: Vec<ScenarioReport>) -> Report {
        Report {
            format: "mktme-sim-report",
            version: Report::VERSION,
            scenarios,
            invalid: Vec::new(),
        }
    }

    /// The same report, listing the files that were not valid scenarios.
    pub fn with_invalid(self, invalid: Vec<String>) -> Report {
        Report { invalid, ..self }
    }

    /// Pretty JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report types always serialize");
        text.push('\n');
        text
    }

    /// Writes the report atomically ([`crate::report_file::write_atomic`]): complete or not
    /// at all, never over anything but a regular file, and never leaving a temporary file
    /// behind on an error.
    pub fn write_atomic(&self, path: &Path) -> std::io::Result<()> {
        crate::report_file::write_atomic(path, self.to_json().as_bytes())
    }
}

/// One scenario's run.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub scenario: String,
    /// The file, as given.
    pub file: String,
    /// The scenario's description.
    pub description: String,
    /// The seed used.
    pub seed: u64,
    /// The `--set PATH=VALUE` overrides the file was read with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// True when the run finished and every expectation held.
    pub passed: bool,
    /// How the run ended.
    pub end: EndReport,
    /// Cycles until every program had ended (or until the run stopped).
    pub cycles: u64,
    /// Every expectation, in file order.
    pub expectations: Vec<ExpectationReport>,
    /// The values of every labelled load (of every load with `--all-loads`), in file order.
    pub loads: Vec<LoadReport>,
    /// Loads beyond the bound on recorded loads (counted only).
    #[serde(skip_serializing_if = "is_zero")]
    pub loads_not_recorded: u64,
    /// Every fault a program took (the first 10,000).
    pub faults: Vec<FaultReport>,
    /// Faults beyond those listed (counted only).
    #[serde(skip_serializing_if = "is_zero")]
    pub faults_not_kept: u64,
    /// What the coherency checker found.
    pub violations: Vec<ViolationReport>,
    /// Violations found but not kept (beyond the checker's limit).
    pub violations_not_kept: u64,
    /// Inconsistencies of the model itself (always empty unless the simulator has a bug).
    pub model_errors: Vec<String>,
    /// The kernel's MKTME keys.
    pub keys: Vec<KeyReport>,
    /// The hardware key table: every KeyID not in its boot state, and KeyID 0.
    pub key_table: Vec<KeyIdReport>,
    /// Statistics of every component, by dotted name.
    pub stats: BTreeMap<String, StatReport>,
    /// Every transfer on the DIMM bus, when the scenario asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus_log: Option<BusLogReport>,
    /// DRAM snapshots, when the scenario asked for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dram_dumps: Option<Vec<DramDumpReport>>,
    /// What the attacker wrote into DIMM cells, when the scenario has attacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attacks: Option<Vec<AttackReport>>,
    /// The cold boot, when the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_boot: Option<ColdBootReport>,
    /// What the attacker's analyses found, when it records anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attacker_findings: Option<Vec<FindingReport>>,
}

/// One write of the attacker into DIMM cells.
#[derive(Clone, Debug, Serialize)]
pub struct AttackReport {
    /// `replay`, `splice` or `bit_flip`.
    pub kind: &'static str,
    /// `file:line:column` of the attack in the scenario.
    pub place: String,
    /// Its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it wrote.
    pub cycle: u64,
    /// The line it wrote (for a splice, `to`), as addressed (0x-hex).
    pub line: String,
    /// The line whose cells it reached, when a faulty DIMM took `line` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells: Option<String>,
    /// A splice's source line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A replay's recording: the cycle its ciphertext was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u64>,
    /// A bit flip's bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits: Option<Vec<u16>>,
    /// The 64 bytes it wrote (hex).
    pub written: String,
    /// The events the coherency checker remembers on the line at the end of the run, oldest
    /// first (as a violation's chain): the attack among them, and what followed.
    pub chain: Vec<String>,
}

/// A cold boot: when the power was cut, what the DIMMs held, what the write queues lost.
#[derive(Clone, Debug, Serialize)]
pub struct ColdBootReport {
    /// `file:line:column` of the cold boot in the scenario.
    pub place: String,
    /// When the power was cut.
    pub cycle: u64,
    /// Whether TME restored the saved platform key at the reboot.
    pub key_restore: bool,
    /// Every line the DIMMs held (the first 4096), in address order.
    pub lines: Vec<ColdBootLine>,
    /// Lines held beyond those listed (counted only).
    #[serde(skip_serializing_if = "is_zero")]
    pub lines_not_listed: u64,
    /// Lines whose writes a memory controller still held in its write queue: they never
    /// reached the DIMMs (0x-hex, in order).
    pub lost_writes: Vec<String>,
}

/// One line of a cold boot's dump.
#[derive(Clone, Debug, Serialize)]
pub struct ColdBootLine {
    /// The DRAM line (0x-hex).
    pub addr: String,
    /// What the DIMMs held (hex).
    pub data: String,
    /// What the rebooted machine reads there through KeyID 0 (hex).
    pub after_reboot: String,
}

/// One finding of the attacker's analyses.
#[derive(Clone, Debug, Serialize)]
pub struct FindingReport {
    /// A finding kind other than `dump_line` and `cold_boot_line` (docs/report-format.md).
    pub kind: &'static str,
    /// The DRAM line (0x-hex).
    pub line: String,
    /// How many (transfers, or 1 for a dump line).
    pub count: u64,
    /// For a dump's finding, the dump: its label, or `file:line:column`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

/// How the run ended.
#[derive(Clone, Debug, Serialize)]
pub struct EndReport {
    /// `finished`, `cycles_max`, `deadlock` or `cold_boot`.
    pub reason: &'static str,
    /// The cycle the run ended.
    pub cycle: u64,
    /// The cycle the last program ended (`finished` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub programs_done: Option<u64>,
    /// Every component's state when the run stopped (`cycles_max` and `deadlock` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump: Option<Vec<ComponentDump>>,
}

/// One component's state in a stopped run.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentDump {
    /// Which component: `system`, `core 0`, `barriers`, `machine`, `caches`, `memory`,
    /// `memory controller 0`, `memory controller 0 DRAM`, `checker`, `kernel`
    /// (docs/report-format.md, "Dump").
    pub component: String,
    /// Its state, in words.
    pub state: String,
}

/// One expectation's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectationReport {
    /// `file:line:column` of the expectation.
    pub place: String,
    /// What was expected, in words.
    pub expect: String,
    /// Whether it held.
    pub ok: bool,
    /// What the run showed.
    pub observed: String,
}

/// Serde's test for counts left out when zero.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The values one load returned.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// The core whose program holds it.
    pub core: u32,
    /// Its label (absent for unlabelled loads, recorded with `--all-loads`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `file:line:column` of the op.
    pub op: String,
    /// The op in words: `load 8 bytes at virt 0x7000_0000`.
    pub summary: String,
    /// How many times it completed.
    pub executions: u64,
    /// The first executions' values (at most 16), in order.
    pub values: Vec<LoadValueReport>,
    /// The last execution's value, when it is not among `values`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<LoadValueReport>,
}

/// One execution of a load.
#[derive(Clone, Debug, Serialize)]
pub struct LoadValueReport {
    /// The cycle its value was bound.
    pub cycle: u64,
    /// The KeyID it read through.
    pub keyid: u16,
    /// The DRAM address of its first byte (0x-hex).
    pub addr: String,
    /// The bytes, in address order (hex).
    pub data: String,
}

/// A page fault a program took.
#[derive(Clone, Debug, Serialize)]
pub struct FaultReport {
    /// The core.
    pub core: u32,
    /// `file:line:column` of the op.
    pub op: String,
    /// The op's label, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The cycle.
    pub cycle: u64,
    /// The faulting virtual address (0x-hex).
    pub addr: String,
    /// `not_mapped`, `protection`, `privilege` or `direct_map_unmapped`.
    pub kind: &'static str,
}

/// A coherency violation.
#[derive(Clone, Debug, Serialize)]
pub struct ViolationReport {
    /// `dual_dirty`, `data_loss`, `stale_read`, `reprogram_while_cached` or `phantom_dirty`.
    pub kind: &'static str,
    /// The cycle of the event that broke the rule.
    pub cycle: u64,
    /// The DRAM line (0x-hex, KeyID bits cleared).
    pub line: String,
    /// The KeyIDs involved, the acting alias first.
    pub keyids: Vec<u16>,
    /// What happened and why it breaks the rule.
    pub explanation: String,
    /// It happened during the end-of-run drain (after every program ended).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_drain: bool,
    /// What became of it by the end of this run, as the run shows it (what DRAM holds, the
    /// data loss it led to or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aftermath: Option<String>,
    /// Later loads that returned the same stale data (stale reads only).
    pub repeats: u64,
    /// For a data loss: the bytes lost and what replaced them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostReport>,
    /// The events on the line that led there, oldest first, one per line of text.
    pub chain: Vec<String>,
}

/// The two lines of a data loss.
#[derive(Clone, Debug, Serialize)]
pub struct LostReport {
    /// The alias whose data was lost.
    pub lost_keyid: u16,
    /// The plaintext lost (128 hex digits).
    pub lost_data: String,
    /// The alias whose write-back overwrote it.
    pub writer_keyid: u16,
    /// The plaintext written over it (128 hex digits).
    pub written_data: String,
    /// An alias still holding dirty data that would put the line right if written back last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recoverable_by: Option<u16>,
}

/// One MKTME key of the kernel's key service.
#[derive(Clone, Debug, Serialize)]
pub struct KeyReport {
    /// Its name.
    pub name: String,
    /// Its serial (0x-hex).
    pub serial: String,
    /// The hardware KeyID it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyid: Option<u16>,
    /// `cpu`, `user`, `no-encrypt` or `clear`.
    #[serde(rename = "type")]
    pub key_type: &'static str,
    /// `assigned`, `invalidated` or `released`.
    pub state: &'static str,
    /// Pages referencing its KeyID at the end.
    pub pages: u64,
    /// The process that added it (when the scenario declares processes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// The other processes that may view it, in the order shared with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub viewers: Vec<String>,
}

/// One KeyID's entry in the hardware key table at the end of the run.
#[derive(Clone, Debug, Serialize)]
pub struct KeyIdReport {
    /// The KeyID.
    pub keyid: u16,
    /// `tme`, `no-encrypt`, `direct` (SET_KEY_DIRECT), `random` (SET_KEY_RANDOM); KeyID 0:
    /// `platform` (or `tme` under bypass).
    pub mode: &'static str,
    /// The data key (hex), only with `--reveal-keys`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
    /// The tweak key (hex), only with `--reveal-keys`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tweak_key: Option<String>,
}

/// A statistic: a count, or a histogram.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum StatReport {
    /// An event count.
    Count(u64),
    /// A histogram.
    Histogram {
        /// Samples.
        count: u64,
        /// Their mean (absent without samples).
        #[serde(skip_serializing_if = "Option::is_none")]
        mean: Option<f64>,
        /// `[value, samples]` pairs, ascending.
        buckets: Vec<[u64; 2]>,
    },
}

/// The DIMM bus as an interposer saw it.
#[derive(Clone, Debug, Serialize)]
pub struct BusLogReport {
    /// The interposer's channels, when it sits on some only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<u32>>,
    /// The cycle the interposer was attached, when not at the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// The cycle the interposer was removed, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// Transfers, in bus order (by cycle; ties by controller).
    pub entries: Vec<BusEntry>,
    /// Transfers not recorded because the log reached its limit.
    pub dropped: u64,
}

/// One transfer on the DIMM bus.
#[derive(Clone, Debug, Serialize)]
pub struct BusEntry {
    /// The core cycle the data crossed the bus.
    pub cycle: u64,
    /// `R` (DIMM to controller) or `W` (controller to DIMM).
    pub op: &'static str,
    /// The DRAM address (0x-hex).
    pub addr: String,
    /// The 64 bytes on the wires (128 hex digits).
    pub data: String,
}

/// A snapshot of DRAM ciphertext.
#[derive(Clone, Debug, Serialize)]
pub struct DramDumpReport {
    /// The cycle it was taken.
    pub cycle: u64,
    /// `file:line:column` of the request.
    pub place: String,
    /// Its label, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The lines asked for, in the order asked.
    pub lines: Vec<DumpLine>,
    /// Every line (not only those asked for) with a write a memory controller has accepted
    /// whose bytes have not reached the DIMMs yet, so the dump does not show them (0x-hex DRAM
    /// addresses, in order). Left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_writes: Vec<String>,
}

/// One DRAM line.
#[derive(Clone, Debug, Serialize)]
pub struct DumpLine {
    /// Its DRAM address (0x-hex).
    pub addr: String,
    /// Its 64 bytes of ciphertext (128 hex digits; untouched DRAM is zeros).
    pub data: String,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
