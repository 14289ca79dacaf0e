//! Reading a scenario file: RON text to a validated [`Scenario`], or an error that says where
//! and what was expected.
//!
//! Two stages:
//!
//! 1. `ron` reads the text into [`crate::scenario_file`]'s structs, which deny unknown fields.
//!    Syntax errors, unknown fields or variants and mistyped values stop here, at the place
//!    `ron` reports, with `ron`'s message (which lists the fields or variants that exist).
//! 2. Everything else is checked while the file structs are turned into a [`Scenario`]: the
//!    machine, ranges, addresses against the machine's KeyID bits and DRAM, data lengths,
//!    labels and the expectations that name them, barriers, key names. Each error is located
//!    at the offending value with [`crate::locate`], which reads the text a second time.
//!
//! Errors print as `file:line:column: message` ([`ScenarioError`]); validation stops at the
//! first. Nothing here panics on any input: user numbers go through checked arithmetic, and
//! data sizes are bounded before anything is allocated for them.
//!
//! ```
//! let s = scenarios::validate::parse(
//!     "(cores: [(ops: [store(at: virt(0x7000_0000), data: u64(7)), mfence])])",
//!     "lib/tiny.ron",
//! )
//! .unwrap();
//! assert_eq!(s.name, "tiny");
//! assert_eq!(s.ops[0].summary, "store 8 bytes at virt 0x7000_0000");
//!
//! let e = scenarios::validate::parse(
//!     "(cores: [(ops: [load(at: virt(0x1000), len: 65)])])",
//!     "lib/x.ron",
//! )
//! .unwrap_err();
//! assert_eq!(e.to_string(), "lib/x.ron:1:45: load len 65 is outside 1..=64");
//! ```

use crate::locate::{PathSeg, RonIndex};
use crate::machine_file::{AlgorithmFile, ron_options};
use crate::scenario::{
    AttackerPlan, DramDumpPlan, DumpTime, ExpectKind, Expectation, Location, OpInfo, PconfigExpect,
    Scenario, ViolationExpect,
};
use crate::scenario_file::{
    AddrFile, CommandFile, DataFile, DumpAtFile, ErrnoFile, ExpectFile, FaultFile, OpFile,
    OutcomeFile, ProtFile, ResultFile, ScenarioFile, ViolationKindFile,
};
use cache_model::ViolationKind;
use cache_model::hierarchy::{HierarchyConfig, HierarchyConfigError};
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{
    Addr, Backing, Credentials, Errno, FaultKind, KernelCall, LineFlush, Op, OpKind, OpTag,
    Program, Prot,
};
use cpu_model::{CoreConfig, MachineConfig, MachineConfigError, SystemConfig};
use mem_ctrl::pconfig::{
    FaultVector, KEY_PROGRAM_STRUCT_BYTES, KeyCommand, KeyProgramStruct, PconfigCall, PconfigStatus,
};
use mem_ctrl::{MemCtrlConfig, MemCtrlConfigError};
use sim_core::{AddressLayout, CoreId, DramAddr, KeyId, LayoutError};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Ops nested deeper than this (repeat and mispredict blocks) are refused.
pub const NESTING_MAX: usize = 16;
/// More ops than this in the file (nested ones included, repeats not unrolled) are refused.
pub const OPS_MAX: usize = 1_000_000;
/// `run.cycles_max` at most.
pub const CYCLES_MAX_LIMIT: u64 = 1_000_000_000_000;
/// `run.cycles_max` when not given.
pub const CYCLES_MAX_DEFAULT: u64 = 10_000_000;
/// Lines all DRAM dumps together may hold.
pub const DUMP_LINES_MAX: u64 = 1 << 20;
/// Bytes one load or store moves, at most.
pub const ACCESS_BYTES_MAX: u64 = 64;
/// A page.
const PAGE_BYTES: u64 = 4096;
/// A line.
const LINE_BYTES: u64 = 64;

/// A scenario file that cannot be read, is not valid RON of the scenario's shape, or
/// describes something impossible. Prints as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", place_suffix(.place))]
pub struct ScenarioError {
    /// The file, as given.
    pub file: String,
    /// Where in it (none when the file could not be read at all).
    pub place: Option<Location>,
    /// What is wrong, and what was expected.
    pub message: String,
}

fn place_suffix(place: &Option<Location>) -> String {
    place.map_or_else(String::new, |p| format!(":{p}"))
}

/// Reads and validates a scenario file; errors name the file as `path` is written.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ScenarioError {
        file: file.clone(),
        place: None,
        message: format!("cannot read the scenario file: {e}"),
    })?;
    parse_bytes(&bytes, &file)
}

/// Validates a scenario file's bytes: they must be UTF-8 text.
pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Scenario, ScenarioError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, file),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let line = 1 + valid.matches('\n').count();
            let column = 1 + valid.rsplit('\n').next().unwrap_or("").chars().count();
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            Err(ScenarioError {
                file: file.to_owned(),
                place: Some(Location { line, column }),
                message: format!("byte {byte:#04x} is not UTF-8 text: expected a RON text file"),
            })
        }
    }
}

/// Validates a scenario file's text; `file` names it in errors and gives the default name.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    // A byte-order mark is invisible in editors: columns are counted without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ScenarioError {
            file: file.to_owned(),
            place: Some(Location { line: 1, column: 1 }),
            message: "the file is empty: expected a scenario, `(cores: [(ops: [...])], ...)`"
                .to_owned(),
        });
    }
    let parsed: ScenarioFile =
        ron_options()
            .from_str(text)
            .map_err(|e: ron::error::SpannedError| ScenarioError {
                file: file.to_owned(),
                place: Some(ron_place(text, &e)),
                message: if e.code != ron::Error::Eof && at_end(text, &e) {
                    ron_message(&ron::Error::Eof)
                } else {
                    ron_message(&e.code)
                },
            })?;
    let index = RonIndex::new(text);
    Validator::new(file, &index).scenario(parsed)
}

/// Where `ron` stopped, moved forward over whitespace so that it names the offending text
/// (ron often points at the blank before a value, or just after the scenario's last bracket).
fn ron_place(text: &str, e: &ron::error::SpannedError) -> Location {
    let place = Location {
        line: e.span.start.line.max(1),
        column: e.span.start.col.max(1),
    };
    if e.code == ron::Error::UnclosedBlockComment {
        // ron points just after the `/*`: point at it.
        let line = text.split('\n').nth(place.line - 1).unwrap_or("");
        let before: Vec<char> = line.chars().take(place.column - 1).collect();
        if before.ends_with(&['/', '*']) {
            return Location {
                line: place.line,
                column: place.column - 2,
            };
        }
        return place;
    }
    text.split('\n')
        .enumerate()
        .skip(place.line - 1)
        .flat_map(|(i, line)| {
            let skip = if i + 1 == place.line {
                place.column - 1
            } else {
                0
            };
            line.chars()
                .enumerate()
                .skip(skip)
                .map(move |(j, c)| (i + 1, j + 1, c))
        })
        .find(|&(_, _, c)| !c.is_whitespace())
        .map_or(place, |(line, column, _)| Location { line, column })
}

/// True when only whitespace follows where `ron` stopped.
fn at_end(text: &str, e: &ron::error::SpannedError) -> bool {
    let mut lines = text.split('\n').skip(e.span.start.line.saturating_sub(1));
    let first = lines
        .next()
        .map(|l| {
            l.chars()
                .skip(e.span.start.col.saturating_sub(1))
                .collect::<String>()
        })
        .unwrap_or_default();
    first.trim().is_empty() && lines.all(|l| l.trim().is_empty())
}

/// `ron`'s message, with a hint where it helps.
fn ron_message(code: &ron::Error) -> String {
    match code {
        ron::Error::Eof => "unexpected end of the file: expected a scenario `( ... )`, \
                            complete with its closing brackets"
            .to_owned(),
        ron::Error::TrailingCharacters => {
            "unexpected text after the scenario's closing `)`: expected the end of the file"
                .to_owned()
        }
        ron::Error::ExceededRecursionLimit => {
            "values nested too deeply: expected at most 16 levels of repeat or mispredict"
                .to_owned()
        }
        ron::Error::ExpectedComma => "Expected comma (or the closing bracket of the enclosing \
                                      struct, tuple or list)"
            .to_owned(),
        ron::Error::SuggestRawIdentifier(found) => {
            format!("Expected a name (a field, or a variant such as `virt(..)`), found `{found}`")
        }
        other => other.to_string(),
    }
}

/// A path into the file, from the top-level value.
type FilePath = Vec<PathSeg<'static>>;

fn child(path: &[PathSeg<'static>], seg: PathSeg<'static>) -> FilePath {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path);
    p.push(seg);
    p
}

fn field(path: &[PathSeg<'static>], name: &'static str) -> FilePath {
    child(path, PathSeg::Field(name))
}

fn index(path: &[PathSeg<'static>], i: usize) -> FilePath {
    child(path, PathSeg::Index(i))
}

/// `0x7000_0000`: hex in groups of four digits.
fn hex(v: u64) -> String {
    let digits = format!("{v:x}");
    let mut out = String::from("0x");
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(d);
    }
    out
}

/// What kind of op a label names, for expectations.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum OpClass {
    Load { len: u64 },
    Store,
    Flush,
    Pconfig,
    Kernel,
    Other,
}

impl OpClass {
    fn can_fault(self) -> bool {
        matches!(self, OpClass::Load { .. } | OpClass::Store | OpClass::Flush)
    }
}

#[derive(Clone, Debug)]
struct LabelInfo {
    tag: OpTag,
    place: Location,
    class: OpClass,
    /// `load`, `pconfig`, ...: how the op is written.
    op_name: &'static str,
    in_shadow: bool,
}

#[derive(Clone, Debug)]
struct BarrierInfo {
    name: String,
    first: Location,
    /// Cores that reach it outside a mispredict shadow.
    cores: BTreeSet<usize>,
}

struct Validator<'a> {
    file: &'a str,
    index: &'a RonIndex,
    machine: MachineConfig,
    layout: AddressLayout,
    dram_bytes: u64,
    ops: Vec<OpInfo>,
    expectations: Vec<Expectation>,
    /// Per core: label -> op, and the labels in file order.
    labels: Vec<(HashMap<String, LabelInfo>, Vec<String>)>,
    barriers: Vec<BarrierInfo>,
    barrier_ids: HashMap<String, u32>,
    /// Names `add_key` gives, in file order.
    added_keys: Vec<String>,
    /// Key names other calls use, and where.
    used_keys: Vec<(String, FilePath)>,
}

impl<'a> Validator<'a> {
    fn new(file: &'a str, index: &'a RonIndex) -> Validator<'a> {
        // Replaced by the file's machine before anything is checked against it.
        let machine = MachineConfig {
            caches: HierarchyConfig::default(),
            memory: MemCtrlConfig::default(),
            core: CoreConfig::default(),
        };
        Validator {
            file,
            index,
            layout: machine.memory.layout,
            dram_bytes: machine.memory.dram_bytes(),
            machine,
            ops: Vec::new(),
            expectations: Vec::new(),
            labels: Vec::new(),
            barriers: Vec::new(),
            barrier_ids: HashMap::new(),
            added_keys: Vec::new(),
            used_keys: Vec::new(),
        }
    }

    fn place(&self, path: &[PathSeg<'_>]) -> Location {
        self.index.locate_nearest(path)
    }

    fn err(&self, path: &[PathSeg<'_>], message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_owned(),
            place: Some(self.place(path)),
            message: message.into(),
        }
    }

    fn scenario(mut self, f: ScenarioFile) -> Result<Scenario, ScenarioError> {
        // The machine first: everything else is checked against it.
        let machine_file = f.machine.unwrap_or_default();
        self.machine = machine_file.to_config().map_err(|e| {
            let path = machine_error_path(&e);
            match e {
                MachineConfigError::UnknownPreset { .. } => self.err(&path, e.to_string()),
                e => self.err(&path, format!("machine.{e}")),
            }
        })?;
        self.layout = self.machine.memory.layout;
        self.dram_bytes = self.machine.memory.dram_bytes();

        let kernel = self.kernel(f.kernel.as_ref())?;
        let (cycles_max, drain_at_end) = self.run(f.run.as_ref())?;

        let cores = usize::try_from(self.machine.caches.cores).unwrap_or(usize::MAX);
        if f.cores.len() > cores {
            return Err(self.err(
                &[PathSeg::Field("cores"), PathSeg::Index(cores)],
                format!(
                    "{} programs for a machine of {cores} core(s): expected at most {cores} \
                     (program i runs on core i; machine.caches.cores sets the number)",
                    f.cores.len()
                ),
            ));
        }

        let mut programs = Vec::with_capacity(f.cores.len());
        for (core, program) in f.cores.iter().enumerate() {
            let credentials = Credentials {
                ring0: program.ring0.unwrap_or(true),
                cap_sys_resource: program.cap_sys_resource.unwrap_or(true),
            };
            self.labels.push((HashMap::new(), Vec::new()));
            let path = vec![
                PathSeg::Field("cores"),
                PathSeg::Index(core),
                PathSeg::Field("ops"),
            ];
            let ops = self.op_list(core, credentials, &program.ops, &path, 0, false)?;
            programs.push(Program { ops, credentials });
        }
        self.check_keys()?;
        self.check_barriers()?;

        let attacker = self.attacker(f.attacker.as_ref(), cycles_max)?;
        for (i, e) in f.expect.iter().enumerate() {
            let path = vec![PathSeg::Field("expect"), PathSeg::Index(i)];
            let expectation = self.expectation(e, &path)?;
            self.expectations.push(expectation);
        }
        // File order: inline expectations sit at their ops, listed ones in `expect`.
        self.expectations.sort_by_key(|e| e.place);

        let name = f.name.unwrap_or_else(|| {
            Path::new(self.file).file_stem().map_or_else(
                || self.file.to_owned(),
                |s| s.to_string_lossy().into_owned(),
            )
        });
        Ok(Scenario {
            name,
            file: self.file.to_owned(),
            description: f.description.unwrap_or_default(),
            seed: f.seed.unwrap_or(0),
            system: SystemConfig {
                machine: self.machine,
                kernel,
                cycles_max,
                drain_at_end,
            },
            programs,
            ops: self.ops,
            attacker,
            expectations: self.expectations,
        })
    }

    fn kernel(
        &self,
        k: Option<&crate::scenario_file::KernelFile>,
    ) -> Result<KernelConfig, ScenarioError> {
        let mut config = KernelConfig::default();
        let path = vec![PathSeg::Field("kernel")];
        if let Some(k) = k {
            if let Some(keyids) = k.keyids {
                let max_keys = self.machine.memory.tme.max_keys;
                if max_keys == 0 {
                    return Err(self.err(
                        &field(&path, "keyids"),
                        format!(
                            "kernel.keyids {keyids}: the machine has no MKTME KeyIDs \
                             (memory.tme.max_keys = 0); expected no keyids"
                        ),
                    ));
                }
                if !(1..=max_keys).contains(&keyids) {
                    return Err(self.err(
                        &field(&path, "keyids"),
                        format!(
                            "kernel.keyids {keyids} is outside 1..={max_keys} (the machine's \
                             memory.tme.max_keys)"
                        ),
                    ));
                }
                config.keyids = Some(keyids);
            }
            if let Some(v) = k.program_retries {
                config.program_retries = v;
            }
            if let Some(v) = k.flush_on_keyid_change {
                config.flush_on_keyid_change = v;
            }
            if let Some(v) = k.unmap_encrypted_from_direct_map {
                config.unmap_encrypted_from_direct_map = v;
            }
            if let Some(frames) = &k.frames {
                if let Some(base) = frames.base {
                    config.frames_base = base;
                }
                if let Some(size) = frames.size {
                    config.frames_bytes = size.0;
                }
            }
        }
        let frames = field(&path, "frames");
        if !config.frames_base.is_multiple_of(PAGE_BYTES) {
            return Err(self.err(
                &field(&frames, "base"),
                format!(
                    "kernel.frames.base {} is not page-aligned: expected a multiple of 0x1000",
                    hex(config.frames_base)
                ),
            ));
        }
        if config.frames_bytes == 0 || !config.frames_bytes.is_multiple_of(PAGE_BYTES) {
            return Err(self.err(
                &field(&frames, "size"),
                format!(
                    "kernel.frames.size {} is not a whole number of pages: expected a non-zero \
                     multiple of 0x1000",
                    hex(config.frames_bytes)
                ),
            ));
        }
        match config.frames_base.checked_add(config.frames_bytes) {
            Some(end) if end <= self.dram_bytes => {}
            _ => {
                let at = if k
                    .and_then(|k| k.frames.as_ref())
                    .is_some_and(|f| f.size.is_some())
                {
                    field(&frames, "size")
                } else {
                    field(&frames, "base")
                };
                return Err(self.err(
                    &at,
                    format!(
                        "kernel.frames {}+{} reach past the machine's {} bytes of DRAM: \
                         expected frames inside DRAM",
                        hex(config.frames_base),
                        hex(config.frames_bytes),
                        hex(self.dram_bytes)
                    ),
                ));
            }
        }
        Ok(config)
    }

    fn run(&self, r: Option<&crate::scenario_file::RunFile>) -> Result<(u64, bool), ScenarioError> {
        let cycles_max = r.and_then(|r| r.cycles_max).unwrap_or(CYCLES_MAX_DEFAULT);
        if !(1..=CYCLES_MAX_LIMIT).contains(&cycles_max) {
            return Err(self.err(
                &[PathSeg::Field("run"), PathSeg::Field("cycles_max")],
                format!("run.cycles_max {cycles_max} is outside 1..={CYCLES_MAX_LIMIT}"),
            ));
        }
        Ok((cycles_max, r.and_then(|r| r.drain_at_end).unwrap_or(true)))
    }

    // ---- ops -----------------------------------------------------------------------------

    fn op_list(
        &mut self,
        core: usize,
        credentials: Credentials,
        ops: &[OpFile],
        path: &[PathSeg<'static>],
        depth: usize,
        shadow: bool,
    ) -> Result<Vec<Op>, ScenarioError> {
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            out.push(self.op(core, credentials, op, &index(path, i), depth, shadow)?);
        }
        Ok(out)
    }

    fn op(
        &mut self,
        core: usize,
        credentials: Credentials,
        op: &OpFile,
        path: &[PathSeg<'static>],
        depth: usize,
        shadow: bool,
    ) -> Result<Op, ScenarioError> {
        if depth > NESTING_MAX {
            return Err(self.err(
                path,
                format!(
                    "ops nested {depth} levels deep in repeat and mispredict blocks: expected \
                     at most {NESTING_MAX} levels"
                ),
            ));
        }
        if self.ops.len() >= OPS_MAX {
            return Err(self.err(
                path,
                format!(
                    "more than {OPS_MAX} ops in the scenario: expected at most {OPS_MAX} \
                     (use repeat(times: ..) for long programs)"
                ),
            ));
        }
        let tag = OpTag(u32::try_from(self.ops.len()).unwrap_or(u32::MAX));
        let place = self.place(path);
        let core_id = CoreId::new(u32::try_from(core).unwrap_or(u32::MAX));
        self.ops.push(OpInfo {
            core: core_id,
            place,
            name: None,
            summary: String::new(),
        });
        let (kind, summary, label, class, op_name) =
            self.op_kind(core, credentials, op, path, depth, shadow, tag, place)?;
        if let Some(label) = label {
            let (map, order) = &mut self.labels[core];
            if let Some(previous) = map.get(label) {
                let previous = previous.place;
                return Err(self.err(
                    &field(path, "label"),
                    format!(
                        "label `{label}` is already used on core {core} (by the op at \
                         {previous}): expected labels unique within a core"
                    ),
                ));
            }
            map.insert(
                label.clone(),
                LabelInfo {
                    tag,
                    place,
                    class,
                    op_name,
                    in_shadow: shadow,
                },
            );
            order.push(label.clone());
        }
        if let Some(info) = usize::try_from(tag.0)
            .ok()
            .and_then(|i| self.ops.get_mut(i))
        {
            info.name = label.cloned();
            info.summary = summary;
        }
        Ok(Op { tag, kind })
    }

    /// Refuses an expectation inside a mispredict shadow.
    fn no_expect_in_shadow(
        &self,
        shadow: bool,
        path: &[PathSeg<'static>],
        name: &'static str,
        given: bool,
    ) -> Result<(), ScenarioError> {
        if shadow && given {
            return Err(self.err(
                &field(path, name),
                format!(
                    "`{name}` inside mispredict: shadow ops are squashed and produce no \
                     results, so nothing can be expected of them; expected no `{name}` here"
                ),
            ));
        }
        Ok(())
    }

    /// Records an inline fault expectation.
    fn expect_fault(&mut self, tag: OpTag, place: Location, fault: Option<FaultFile>) {
        if let Some(f) = fault {
            self.expectations.push(Expectation {
                place,
                kind: ExpectKind::Fault {
                    op: tag,
                    kind: fault_kind(f),
                },
            });
        }
    }

    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn op_kind<'o>(
        &mut self,
        core: usize,
        credentials: Credentials,
        op: &'o OpFile,
        path: &[PathSeg<'static>],
        depth: usize,
        shadow: bool,
        tag: OpTag,
        place: Location,
    ) -> Result<(OpKind, String, Option<&'o String>, OpClass, &'static str), ScenarioError> {
        Ok(match op {
            OpFile::Load {
                at,
                len: len_field,
                label,
                expect,
                expect_fault,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.no_expect_in_shadow(shadow, path, "expect_fault", expect_fault.is_some())?;
                if expect.is_some() && expect_fault.is_some() {
                    return Err(self.err(
                        &field(path, "expect_fault"),
                        "a load cannot both return `expect` and fault: expected one of \
                         `expect` and `expect_fault`",
                    ));
                }
                let addr = self.addr(at, &field(path, "at"))?;
                let bytes = match expect {
                    Some(d) => Some(self.data(d, &field(path, "expect"))?),
                    None => None,
                };
                let len = match (*len_field, &bytes) {
                    (Some(l), Some(b)) if usize::try_from(l).ok() != Some(b.len()) => {
                        return Err(self.err(
                            &field(path, "expect"),
                            format!(
                                "load expect is {} bytes but the load reads len {l}: expected \
                                 {l} bytes (or leave len out: it defaults to expect's length)",
                                b.len()
                            ),
                        ));
                    }
                    (Some(l), _) => l,
                    (None, Some(b)) => b.len() as u64,
                    (None, None) => 8,
                };
                if !(1..=ACCESS_BYTES_MAX).contains(&len) {
                    let at = if len_field.is_some() { "len" } else { "expect" };
                    return Err(self.err(
                        &field(path, at),
                        format!("load len {len} is outside 1..={ACCESS_BYTES_MAX}"),
                    ));
                }
                self.access_in_dram(at, len, &field(path, "at"))?;
                if let Some(bytes) = bytes {
                    self.expectations.push(Expectation {
                        place,
                        kind: ExpectKind::LoadValue { op: tag, bytes },
                    });
                }
                self.expect_fault(tag, place, *expect_fault);
                (
                    OpKind::Load {
                        at: addr,
                        len: len as u8,
                    },
                    format!("load {len} bytes at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Load { len },
                    "load",
                )
            }
            OpFile::Store {
                at,
                data,
                label,
                expect_fault,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect_fault", expect_fault.is_some())?;
                let addr = self.addr(at, &field(path, "at"))?;
                let bytes = self.data(data, &field(path, "data"))?;
                let len = bytes.len() as u64;
                if !(1..=ACCESS_BYTES_MAX).contains(&len) {
                    return Err(self.err(
                        &field(path, "data"),
                        format!("store data is {len} bytes: expected 1..={ACCESS_BYTES_MAX} bytes"),
                    ));
                }
                self.access_in_dram(at, len, &field(path, "at"))?;
                self.expect_fault(tag, place, *expect_fault);
                (
                    OpKind::Store { at: addr, bytes },
                    format!("store {len} bytes at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Store,
                    "store",
                )
            }
            OpFile::Clflush {
                at,
                label,
                expect_fault,
            }
            | OpFile::Clflushopt {
                at,
                label,
                expect_fault,
            }
            | OpFile::Clwb {
                at,
                label,
                expect_fault,
            } => {
                let (kind, name) = match op {
                    OpFile::Clflush { .. } => (LineFlush::Clflush, "clflush"),
                    OpFile::Clflushopt { .. } => (LineFlush::Clflushopt, "clflushopt"),
                    _ => (LineFlush::Clwb, "clwb"),
                };
                self.no_expect_in_shadow(shadow, path, "expect_fault", expect_fault.is_some())?;
                let addr = self.addr(at, &field(path, "at"))?;
                self.expect_fault(tag, place, *expect_fault);
                (
                    OpKind::Flush { kind, at: addr },
                    format!("{name} at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Flush,
                    name,
                )
            }
            OpFile::Prefetch { at, label } => {
                let addr = self.addr(at, &field(path, "at"))?;
                (
                    OpKind::Prefetch { at: addr },
                    format!("prefetch at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Other,
                    "prefetch",
                )
            }
            OpFile::SpeculativeLoad { at, len, label } => {
                let addr = self.addr(at, &field(path, "at"))?;
                let n = len.unwrap_or(8);
                if !(1..=ACCESS_BYTES_MAX).contains(&n) {
                    return Err(self.err(
                        &field(path, "len"),
                        format!("speculative_load len {n} is outside 1..={ACCESS_BYTES_MAX}"),
                    ));
                }
                self.access_in_dram(at, n, &field(path, "at"))?;
                (
                    OpKind::SpeculativeLoad {
                        at: addr,
                        len: n as u8,
                    },
                    format!("speculative load {n} bytes at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Other,
                    "speculative_load",
                )
            }
            OpFile::Wbinvd => (
                OpKind::Wbinvd,
                "wbinvd".into(),
                None,
                OpClass::Other,
                "wbinvd",
            ),
            OpFile::Mfence => (
                OpKind::Mfence,
                "mfence".into(),
                None,
                OpClass::Other,
                "mfence",
            ),
            OpFile::Sfence => (
                OpKind::Sfence,
                "sfence".into(),
                None,
                OpClass::Other,
                "sfence",
            ),
            OpFile::Mispredict(ops) => {
                let list = index(path, 0);
                let shadow_ops = self.op_list(core, credentials, ops, &list, depth + 1, true)?;
                (
                    OpKind::Mispredict { shadow: shadow_ops },
                    format!("mispredict with {} shadow op(s)", ops.len()),
                    None,
                    OpClass::Other,
                    "mispredict",
                )
            }
            OpFile::Compute(cycles) => (
                OpKind::Compute { cycles: *cycles },
                format!("compute {cycles} cycles"),
                None,
                OpClass::Other,
                "compute",
            ),
            OpFile::Barrier(name) => {
                let id = match self.barrier_ids.get(name) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(self.barriers.len()).unwrap_or(u32::MAX);
                        self.barrier_ids.insert(name.clone(), id);
                        self.barriers.push(BarrierInfo {
                            name: name.clone(),
                            first: self.place(&index(path, 0)),
                            cores: BTreeSet::new(),
                        });
                        id
                    }
                };
                if !shadow && let Some(b) = self.barriers.get_mut(id as usize) {
                    b.cores.insert(core);
                }
                (
                    OpKind::Barrier { id },
                    format!("barrier `{name}`"),
                    None,
                    OpClass::Other,
                    "barrier",
                )
            }
            OpFile::Repeat { times, ops } => {
                let list = field(path, "ops");
                let body = self.op_list(core, credentials, ops, &list, depth + 1, shadow)?;
                (
                    OpKind::Repeat {
                        times: *times,
                        body,
                    },
                    format!("repeat {times} times: {} op(s)", ops.len()),
                    None,
                    OpClass::Other,
                    "repeat",
                )
            }
            OpFile::Pconfig {
                keyid,
                command,
                algorithm,
                key,
                tweak,
                leaf,
                struct_addr,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                let algorithm = algorithm.unwrap_or(AlgorithmFile::AesXts128);
                let key_bytes = self.key_field(key.as_deref(), &field(path, "key"), "key")?;
                let tweak_bytes =
                    self.key_field(tweak.as_deref(), &field(path, "tweak"), "tweak")?;
                let program =
                    KeyProgramStruct::new(*keyid, key_command(*command), algorithm.into())
                        .with_keys(&key_bytes, &tweak_bytes);
                self.expect_pconfig(tag, place, *expect);
                (
                    OpKind::Pconfig {
                        call: PconfigCall {
                            leaf: leaf.unwrap_or(0),
                            struct_addr: struct_addr.unwrap_or(0x1000),
                            privileged: credentials.ring0,
                            program,
                        },
                    },
                    format!(
                        "pconfig {} keyid {keyid} {}",
                        command_name(*command),
                        algorithm_name(algorithm)
                    ),
                    label.as_ref(),
                    OpClass::Pconfig,
                    "pconfig",
                )
            }
            OpFile::PconfigRaw {
                bytes,
                leaf,
                struct_addr,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                let at = field(path, "bytes");
                let raw = parse_hex(bytes, 4 * KEY_PROGRAM_STRUCT_BYTES)
                    .map_err(|m| self.err(&at, format!("pconfig_raw bytes: {m}")))?;
                let program = KeyProgramStruct::from_bytes(&raw).map_err(|e| {
                    self.err(
                        &at,
                        format!(
                            "pconfig_raw bytes are {} bytes: expected exactly {} bytes ({} hex \
                             digits), the whole MKTME_KEY_PROGRAM_STRUCT ({e})",
                            raw.len(),
                            KEY_PROGRAM_STRUCT_BYTES,
                            2 * KEY_PROGRAM_STRUCT_BYTES
                        ),
                    )
                })?;
                let summary = format!(
                    "pconfig_raw keyid {} command {} enc_alg {:#x}",
                    program.keyid,
                    program.command_code(),
                    program.enc_alg()
                );
                self.expect_pconfig(tag, place, *expect);
                (
                    OpKind::Pconfig {
                        call: PconfigCall {
                            leaf: leaf.unwrap_or(0),
                            struct_addr: struct_addr.unwrap_or(0x1000),
                            privileged: credentials.ring0,
                            program,
                        },
                    },
                    summary,
                    label.as_ref(),
                    OpClass::Pconfig,
                    "pconfig_raw",
                )
            }
            OpFile::AddKey {
                key,
                payload,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.added_keys.push(key.clone());
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::AddKey {
                        name: key.clone(),
                        payload: payload.clone(),
                    }),
                    format!("add_key `{key}` ({})", redact_payload(payload)),
                    label.as_ref(),
                    OpClass::Kernel,
                    "add_key",
                )
            }
            OpFile::InvalidateKey { key, label, expect } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.used_keys.push((key.clone(), field(path, "key")));
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::InvalidateKey { name: key.clone() }),
                    format!("invalidate_key `{key}`"),
                    label.as_ref(),
                    OpClass::Kernel,
                    "invalidate_key",
                )
            }
            OpFile::Mmap {
                addr,
                len,
                prot,
                file,
                offset,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                let backing = match (file, offset) {
                    (Some(name), offset) => Backing::File {
                        name: name.clone(),
                        offset: offset.unwrap_or(0),
                    },
                    (None, Some(_)) => {
                        return Err(self.err(
                            &field(path, "offset"),
                            "mmap offset without a file: anonymous memory has no offset; \
                             expected `file: \"name\"` with it, or no offset",
                        ));
                    }
                    (None, None) => Backing::Anonymous,
                };
                let backing_text = match &backing {
                    Backing::Anonymous => "anonymous".to_owned(),
                    Backing::File { name, offset } => {
                        format!("file `{name}` offset {}", hex(*offset))
                    }
                };
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::Mmap {
                        addr: *addr,
                        len: len.0,
                        prot: prot_of(*prot),
                        backing,
                    }),
                    format!(
                        "mmap {} len {} {} {backing_text}",
                        hex(*addr),
                        hex(len.0),
                        prot_of(*prot)
                    ),
                    label.as_ref(),
                    OpClass::Kernel,
                    "mmap",
                )
            }
            OpFile::Munmap {
                addr,
                len,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::Munmap {
                        addr: *addr,
                        len: len.0,
                    }),
                    format!("munmap {} len {}", hex(*addr), hex(len.0)),
                    label.as_ref(),
                    OpClass::Kernel,
                    "munmap",
                )
            }
            OpFile::Mprotect {
                addr,
                len,
                prot,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::Mprotect {
                        addr: *addr,
                        len: len.0,
                        prot: prot_of(*prot),
                    }),
                    format!(
                        "mprotect {} len {} {}",
                        hex(*addr),
                        hex(len.0),
                        prot_of(*prot)
                    ),
                    label.as_ref(),
                    OpClass::Kernel,
                    "mprotect",
                )
            }
            OpFile::EncryptMprotect {
                addr,
                len,
                prot,
                key,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.used_keys.push((key.clone(), field(path, "key")));
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::EncryptMprotect {
                        addr: *addr,
                        len: len.0,
                        prot: prot_of(*prot),
                        key: key.clone(),
                    }),
                    format!(
                        "encrypt_mprotect {} len {} {} key `{key}`",
                        hex(*addr),
                        hex(len.0),
                        prot_of(*prot)
                    ),
                    label.as_ref(),
                    OpClass::Kernel,
                    "encrypt_mprotect",
                )
            }
        })
    }

    fn expect_pconfig(&mut self, tag: OpTag, place: Location, outcome: Option<OutcomeFile>) {
        if let Some(o) = outcome {
            self.expectations.push(Expectation {
                place,
                kind: ExpectKind::Pconfig {
                    op: tag,
                    outcome: pconfig_expect(o),
                },
            });
        }
    }

    fn expect_kernel(&mut self, tag: OpTag, place: Location, result: Option<ResultFile>) {
        if let Some(r) = result {
            self.expectations.push(Expectation {
                place,
                kind: ExpectKind::Kernel {
                    op: tag,
                    result: kernel_result(r),
                },
            });
        }
    }

    /// A PCONFIG key field: zeros when absent, else 16 or 32 bytes of hex.
    fn key_field(
        &self,
        text: Option<&str>,
        path: &[PathSeg<'static>],
        what: &str,
    ) -> Result<Vec<u8>, ScenarioError> {
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        let bytes =
            parse_hex(text, 64).map_err(|m| self.err(path, format!("pconfig {what}: {m}")))?;
        if bytes.len() != 16 && bytes.len() != 32 {
            return Err(self.err(
                path,
                format!(
                    "pconfig {what} is {} bytes ({} hex digits): expected 16 bytes (32 hex \
                     digits, AES-XTS-128) or 32 bytes (64 hex digits, AES-XTS-256)",
                    bytes.len(),
                    2 * bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    fn addr(&self, a: &AddrFile, path: &[PathSeg<'static>]) -> Result<Addr, ScenarioError> {
        Ok(match a {
            AddrFile::Virt(v) => Addr::Virt(*v),
            AddrFile::DirectMapOf(v) => Addr::DirectMapOf(*v),
            AddrFile::Phys { keyid, addr } => {
                let keyid = self.keyid(*keyid, &field(path, "keyid"))?;
                let dram = self.dram_addr(*addr, &field(path, "addr"))?;
                let pa = self
                    .layout
                    .compose(keyid, dram)
                    .map_err(|e| self.err(path, format!("phys address: {e}")))?;
                Addr::Phys(pa)
            }
        })
    }

    /// A physical access of `len` bytes must end inside DRAM.
    fn access_in_dram(
        &self,
        a: &AddrFile,
        len: u64,
        path: &[PathSeg<'static>],
    ) -> Result<(), ScenarioError> {
        if let AddrFile::Phys { addr, .. } = a
            && addr
                .checked_add(len)
                .is_none_or(|end| end > self.dram_bytes)
        {
            return Err(self.err(
                &field(path, "addr"),
                format!(
                    "{len} bytes at DRAM address {} run past the end of the machine's {} bytes \
                     of DRAM: expected the access inside DRAM",
                    hex(*addr),
                    hex(self.dram_bytes)
                ),
            ));
        }
        Ok(())
    }

    fn keyid(&self, keyid: u16, path: &[PathSeg<'static>]) -> Result<KeyId, ScenarioError> {
        let max = self.layout.max_keyid();
        if keyid > max {
            return Err(self.err(
                path,
                format!(
                    "KeyID {keyid} does not fit the machine's {} KeyID bits: expected 0..={max}",
                    self.layout.keyid_bits()
                ),
            ));
        }
        Ok(KeyId::new(keyid))
    }

    fn dram_addr(&self, addr: u64, path: &[PathSeg<'static>]) -> Result<DramAddr, ScenarioError> {
        if addr >= self.dram_bytes {
            return Err(self.err(
                path,
                format!(
                    "DRAM address {} is beyond the machine's {} bytes of DRAM: expected an \
                     address below {}",
                    hex(addr),
                    hex(self.dram_bytes),
                    hex(self.dram_bytes)
                ),
            ));
        }
        Ok(DramAddr::new(addr))
    }

    /// A 64-byte-aligned DRAM line address inside DRAM.
    fn dram_line(&self, addr: u64, path: &[PathSeg<'static>]) -> Result<DramAddr, ScenarioError> {
        if !addr.is_multiple_of(LINE_BYTES) {
            let below = addr - addr % LINE_BYTES;
            return Err(self.err(
                path,
                format!(
                    "line {} is not 64-byte aligned: expected a multiple of 0x40 (such as {} \
                     or {})",
                    hex(addr),
                    hex(below),
                    hex(below.saturating_add(LINE_BYTES))
                ),
            ));
        }
        self.dram_addr(addr, path)
    }

    fn data(&self, d: &DataFile, path: &[PathSeg<'static>]) -> Result<Vec<u8>, ScenarioError> {
        // Nothing takes more than 64 bytes; bound what is allocated well above that so the
        // length error comes from the field that knows its limit.
        const DATA_BYTES_MAX: u64 = 4096;
        Ok(match d {
            DataFile::Hex(s) => parse_hex(s, DATA_BYTES_MAX as usize)
                .map_err(|m| self.err(&index(path, 0), format!("hex data: {m}")))?,
            DataFile::U8(v) => vec![*v],
            DataFile::U16(v) => v.to_le_bytes().to_vec(),
            DataFile::U32(v) => v.to_le_bytes().to_vec(),
            DataFile::U64(v) => v.to_le_bytes().to_vec(),
            DataFile::Fill { byte, len } => {
                if *len > DATA_BYTES_MAX {
                    return Err(self.err(
                        &field(path, "len"),
                        format!(
                            "fill len {len} is more than any data can hold: expected at most 64 \
                             bytes"
                        ),
                    ));
                }
                vec![*byte; *len as usize]
            }
            DataFile::Text(s) => {
                if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
                    return Err(self.err(
                        &index(path, 0),
                        format!("text data holds {c:?}: expected ASCII characters only"),
                    ));
                }
                if s.len() as u64 > DATA_BYTES_MAX {
                    return Err(self.err(
                        &index(path, 0),
                        format!(
                            "text of {} bytes is more than any data can hold: expected at most \
                             64 bytes",
                            s.len()
                        ),
                    ));
                }
                s.as_bytes().to_vec()
            }
        })
    }

    // ---- cross-references ----------------------------------------------------------------

    fn check_keys(&self) -> Result<(), ScenarioError> {
        for (name, path) in &self.used_keys {
            if !self.added_keys.contains(name) {
                let known: BTreeSet<&str> = self.added_keys.iter().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "the scenario adds no keys (add_key(key: \"...\", payload: \"...\"))".to_owned()
                } else {
                    format!("keys the scenario adds: {}", quoted_list(known))
                };
                return Err(self.err(
                    path,
                    format!("no add_key in the scenario adds key `{name}`; {known}"),
                ));
            }
        }
        Ok(())
    }

    fn check_barriers(&self) -> Result<(), ScenarioError> {
        for b in &self.barriers {
            if let [only] = b.cores.iter().copied().collect::<Vec<_>>().as_slice() {
                return Err(ScenarioError {
                    file: self.file.to_owned(),
                    place: Some(b.first),
                    message: format!(
                        "barrier `{}` is used by core {only} only: it would wait forever; \
                         expected it on at least two cores",
                        b.name
                    ),
                });
            }
        }
        Ok(())
    }

    fn attacker(
        &self,
        a: Option<&crate::scenario_file::AttackerFile>,
        cycles_max: u64,
    ) -> Result<AttackerPlan, ScenarioError> {
        let Some(a) = a else {
            return Ok(AttackerPlan::default());
        };
        let base = [PathSeg::Field("attacker"), PathSeg::Field("dram_dumps")];
        let mut total = 0u64;
        let mut dumps = Vec::with_capacity(a.dram_dumps.len());
        for (i, d) in a.dram_dumps.iter().enumerate() {
            let path = index(&base, i);
            let at = match d.at {
                DumpAtFile::End => DumpTime::End,
                DumpAtFile::Cycle(c) => {
                    if c > cycles_max {
                        return Err(self.err(
                            &field(&path, "at"),
                            format!(
                                "dump at cycle {c} is after run.cycles_max {cycles_max}: \
                                 expected a cycle within the run (or `end`)"
                            ),
                        ));
                    }
                    DumpTime::Cycle(c)
                }
            };
            let lines = match (&d.lines, &d.range) {
                (Some(_), Some(_)) => {
                    return Err(self.err(
                        &field(&path, "range"),
                        "a dump takes `lines` or `range`, not both",
                    ));
                }
                (None, None) => {
                    return Err(self.err(
                        &path,
                        "a dump needs `lines: [..]` or `range: (start: .., lines: ..)`",
                    ));
                }
                (Some(lines), None) => {
                    if lines.is_empty() {
                        return Err(self.err(
                            &field(&path, "lines"),
                            "a dump of no lines: expected at least one line",
                        ));
                    }
                    total = total.saturating_add(lines.len() as u64);
                    if total > DUMP_LINES_MAX {
                        return Err(self.err(
                            &field(&path, "lines"),
                            format!(
                                "the dumps hold more than {DUMP_LINES_MAX} lines: expected at \
                                 most that many in all"
                            ),
                        ));
                    }
                    let mut out = Vec::with_capacity(lines.len());
                    for (j, &line) in lines.iter().enumerate() {
                        out.push(self.dram_line(line, &index(&field(&path, "lines"), j))?);
                    }
                    out
                }
                (None, Some(range)) => {
                    let rpath = field(&path, "range");
                    let start = self.dram_line(range.start, &field(&rpath, "start"))?;
                    if range.lines == 0 {
                        return Err(self.err(
                            &field(&rpath, "lines"),
                            "a dump range of 0 lines: expected at least one line",
                        ));
                    }
                    total = total.saturating_add(range.lines);
                    if total > DUMP_LINES_MAX {
                        return Err(self.err(
                            &field(&rpath, "lines"),
                            format!(
                                "the dumps hold more than {DUMP_LINES_MAX} lines: expected at \
                                 most that many in all"
                            ),
                        ));
                    }
                    let end = range
                        .lines
                        .checked_mul(LINE_BYTES)
                        .and_then(|b| b.checked_add(range.start));
                    if end.is_none_or(|end| end > self.dram_bytes) {
                        return Err(self.err(
                            &field(&rpath, "lines"),
                            format!(
                                "{} lines from {} run past the end of the machine's {} bytes \
                                 of DRAM: expected the range inside DRAM",
                                range.lines,
                                hex(range.start),
                                hex(self.dram_bytes)
                            ),
                        ));
                    }
                    (0..range.lines).map(|n| start.nth_line(n)).collect()
                }
            };
            dumps.push(DramDumpPlan {
                at,
                lines,
                place: self.place(&path),
            });
        }
        Ok(AttackerPlan {
            bus_log: a.bus_log.unwrap_or(false),
            dram_dumps: dumps,
        })
    }

    /// The op `label` names on `core`.
    fn labelled(
        &self,
        core: u64,
        label: &str,
        path: &[PathSeg<'static>],
    ) -> Result<&LabelInfo, ScenarioError> {
        let programs = self.labels.len();
        let Some((map, order)) = usize::try_from(core).ok().and_then(|c| self.labels.get(c)) else {
            let expected = if programs == 0 {
                "the scenario has no programs".to_owned()
            } else {
                format!("expected a core with a program, 0..={}", programs - 1)
            };
            return Err(self.err(
                &field(path, "core"),
                format!("core {core} has no program: {expected}"),
            ));
        };
        let Some(info) = map.get(label) else {
            let known = if order.is_empty() {
                "it has no labelled ops (give an op `label: \"...\"`)".to_owned()
            } else {
                format!("its labels: {}", quoted_list(order.iter()))
            };
            return Err(self.err(
                &field(path, "label"),
                format!("core {core} has no op labelled `{label}`; {known}"),
            ));
        };
        if info.in_shadow {
            return Err(self.err(
                &field(path, "label"),
                format!(
                    "`{label}` on core {core} (at {}) is inside mispredict: shadow ops produce \
                     no results, so nothing can be expected of them",
                    info.place
                ),
            ));
        }
        Ok(info)
    }

    fn wrong_op(
        &self,
        path: &[PathSeg<'static>],
        expectation: &str,
        wanted: &str,
        label: &str,
        core: u64,
        info: &LabelInfo,
    ) -> ScenarioError {
        self.err(
            &field(path, "label"),
            format!(
                "a `{expectation}` expectation needs {wanted}, but `{label}` on core {core} is a \
                 {} (at {})",
                info.op_name, info.place
            ),
        )
    }

    fn expectation(
        &self,
        e: &ExpectFile,
        path: &[PathSeg<'static>],
    ) -> Result<Expectation, ScenarioError> {
        let place = self.place(path);
        let kind = match e {
            ExpectFile::Load { core, label, value } => {
                let info = self.labelled(*core, label, path)?;
                let OpClass::Load { len } = info.class else {
                    return Err(self.wrong_op(path, "load", "a load", label, *core, info));
                };
                let bytes = self.data(value, &field(path, "value"))?;
                if bytes.len() as u64 != len {
                    return Err(self.err(
                        &field(path, "value"),
                        format!(
                            "value is {} bytes but load `{label}` reads {len}: expected {len} \
                             bytes",
                            bytes.len()
                        ),
                    ));
                }
                ExpectKind::LoadValue {
                    op: info.tag,
                    bytes,
                }
            }
            ExpectFile::Pconfig {
                core,
                label,
                outcome,
            } => {
                let info = self.labelled(*core, label, path)?;
                if info.class != OpClass::Pconfig {
                    return Err(self.wrong_op(
                        path,
                        "pconfig",
                        "a pconfig or pconfig_raw",
                        label,
                        *core,
                        info,
                    ));
                }
                ExpectKind::Pconfig {
                    op: info.tag,
                    outcome: pconfig_expect(*outcome),
                }
            }
            ExpectFile::Kernel {
                core,
                label,
                result,
            } => {
                let info = self.labelled(*core, label, path)?;
                if info.class != OpClass::Kernel {
                    return Err(self.wrong_op(
                        path,
                        "kernel",
                        "a system call (add_key, invalidate_key, mmap, munmap, mprotect, \
                         encrypt_mprotect)",
                        label,
                        *core,
                        info,
                    ));
                }
                ExpectKind::Kernel {
                    op: info.tag,
                    result: kernel_result(*result),
                }
            }
            ExpectFile::Fault { core, label, kind } => {
                let info = self.labelled(*core, label, path)?;
                if !info.class.can_fault() {
                    return Err(self.wrong_op(
                        path,
                        "fault",
                        "an op that can fault (load, store, clflush, clflushopt, clwb)",
                        label,
                        *core,
                        info,
                    ));
                }
                ExpectKind::Fault {
                    op: info.tag,
                    kind: kind.and_then(fault_kind),
                }
            }
            ExpectFile::NoFaults => ExpectKind::NoFaults,
            ExpectFile::NoViolations => ExpectKind::Violations(ViolationExpect::None),
            ExpectFile::AnyViolation => ExpectKind::Violations(ViolationExpect::Any),
            ExpectFile::Violation { kind, line } => {
                let line = match line {
                    Some(l) => Some(self.dram_line(*l, &field(path, "line"))?),
                    None => None,
                };
                ExpectKind::Violations(ViolationExpect::Kind {
                    kind: violation_kind(*kind),
                    line,
                })
            }
            ExpectFile::Plaintext { keyid, line, data } => {
                let keyid = self.keyid(*keyid, &field(path, "keyid"))?;
                let line = self.dram_line(*line, &field(path, "line"))?;
                let bytes = self.data(data, &field(path, "data"))?;
                if bytes.len() as u64 != LINE_BYTES {
                    return Err(self.err(
                        &field(path, "data"),
                        format!(
                            "plaintext data is {} bytes: expected exactly 64 (one line)",
                            bytes.len()
                        ),
                    ));
                }
                ExpectKind::Plaintext { keyid, line, bytes }
            }
            ExpectFile::Cycles { min, max } => {
                match (min, max) {
                    (None, None) => {
                        return Err(
                            self.err(path, "cycles without bounds: expected `min`, `max` or both")
                        );
                    }
                    (Some(lo), Some(hi)) if lo > hi => {
                        return Err(self.err(
                            &field(path, "min"),
                            format!("cycles min {lo} is above max {hi}: expected min <= max"),
                        ));
                    }
                    _ => {}
                }
                ExpectKind::Cycles {
                    min: *min,
                    max: *max,
                }
            }
        };
        Ok(Expectation { place, kind })
    }
}

/// Parses hex digits in pairs, with whitespace or `_` allowed between pairs; at most
/// `max_bytes` bytes.
pub fn parse_hex(text: &str, max_bytes: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (i, c) in text.chars().enumerate() {
        if c.is_whitespace() || c == '_' {
            if high.is_some() {
                return Err(format!(
                    "separator {c:?} at character {} splits a byte: expected separators only \
                     between pairs of hex digits",
                    i + 1
                ));
            }
            continue;
        }
        let Some(v) = c.to_digit(16) else {
            return Err(format!(
                "{c:?} at character {} is not a hex digit: expected pairs of 0-9, a-f",
                i + 1
            ));
        };
        digits += 1;
        match high.take() {
            None => high = Some(v as u8),
            Some(h) => {
                if out.len() >= max_bytes {
                    return Err(format!(
                        "more than {max_bytes} bytes: expected at most {max_bytes}"
                    ));
                }
                out.push(h << 4 | v as u8);
            }
        }
    }
    if high.is_some() {
        return Err(format!(
            "{digits} hex digits: expected an even number (two per byte)"
        ));
    }
    Ok(out)
}

fn addr_text(a: &AddrFile) -> String {
    match a {
        AddrFile::Virt(v) => format!("virt {}", hex(*v)),
        AddrFile::Phys { keyid, addr } => format!("phys keyid {keyid} {}", hex(*addr)),
        AddrFile::DirectMapOf(v) => format!("direct_map_of {}", hex(*v)),
    }
}

fn fault_kind(f: FaultFile) -> Option<FaultKind> {
    match f {
        FaultFile::Any => None,
        FaultFile::NotMapped => Some(FaultKind::NotMapped),
        FaultFile::Protection => Some(FaultKind::Protection),
        FaultFile::Privilege => Some(FaultKind::Privilege),
        FaultFile::DirectMapUnmapped => Some(FaultKind::DirectMapUnmapped),
    }
}

fn pconfig_expect(o: OutcomeFile) -> PconfigExpect {
    match o {
        OutcomeFile::Success => PconfigExpect::Status(PconfigStatus::Success),
        OutcomeFile::EntropyError => PconfigExpect::Status(PconfigStatus::EntropyError),
        OutcomeFile::DeviceBusy => PconfigExpect::Status(PconfigStatus::DeviceBusy),
        OutcomeFile::InvalidProgCmd => PconfigExpect::Status(PconfigStatus::InvalidProgCmd),
        OutcomeFile::InvalidKeyid => PconfigExpect::Status(PconfigStatus::InvalidKeyId),
        OutcomeFile::InvalidEncAlg => PconfigExpect::Status(PconfigStatus::InvalidEncAlg),
        OutcomeFile::Gp => PconfigExpect::Fault(FaultVector::GeneralProtection),
        OutcomeFile::Ud => PconfigExpect::Fault(FaultVector::InvalidOpcode),
    }
}

fn kernel_result(r: ResultFile) -> Result<Option<u64>, Errno> {
    match r {
        ResultFile::Ok => Ok(None),
        ResultFile::Value(v) => Ok(Some(v)),
        ResultFile::Err(e) => Err(match e {
            ErrnoFile::Einval => Errno::Einval,
            ErrnoFile::Enokey => Errno::Enokey,
            ErrnoFile::Eacces => Errno::Eacces,
            ErrnoFile::Enomem => Errno::Enomem,
        }),
    }
}

fn violation_kind(k: ViolationKindFile) -> ViolationKind {
    match k {
        ViolationKindFile::DualDirty => ViolationKind::DualDirty,
        ViolationKindFile::DataLoss => ViolationKind::DataLoss,
        ViolationKindFile::StaleRead => ViolationKind::StaleRead,
        ViolationKindFile::ReprogramWhileCached => ViolationKind::ReprogramWhileCached,
        ViolationKindFile::PhantomDirty => ViolationKind::PhantomDirty,
    }
}

fn prot_of(p: ProtFile) -> Prot {
    match p {
        ProtFile::None => Prot::NONE,
        ProtFile::R => Prot::READ,
        ProtFile::Rw => Prot::READ_WRITE,
    }
}

fn key_command(c: CommandFile) -> KeyCommand {
    match c {
        CommandFile::SetKeyDirect => KeyCommand::SetKeyDirect,
        CommandFile::SetKeyRandom => KeyCommand::SetKeyRandom,
        CommandFile::ClearKey => KeyCommand::ClearKey,
        CommandFile::NoEncrypt => KeyCommand::NoEncrypt,
    }
}

fn command_name(c: CommandFile) -> &'static str {
    match c {
        CommandFile::SetKeyDirect => "set_key_direct",
        CommandFile::SetKeyRandom => "set_key_random",
        CommandFile::ClearKey => "clear_key",
        CommandFile::NoEncrypt => "no_encrypt",
    }
}

fn algorithm_name(a: AlgorithmFile) -> &'static str {
    match a {
        AlgorithmFile::AesXts128 => "aes_xts_128",
        AlgorithmFile::AesXts256 => "aes_xts_256",
    }
}

/// Where in a scenario file the value behind a machine error sits (from the top level):
/// the most specific field the error names; [`RonIndex::locate_nearest`] falls back to the
/// enclosing section when the file left that field to its preset.
pub fn machine_error_path(e: &MachineConfigError) -> Vec<PathSeg<'static>> {
    let mut p = vec![PathSeg::Field("machine")];
    let mut push = |segs: &[&'static str]| p.extend(segs.iter().map(|s| PathSeg::Field(s)));
    match e {
        MachineConfigError::UnknownPreset { .. } => push(&["preset"]),
        MachineConfigError::Caches(c) => {
            push(&["caches"]);
            match c {
                HierarchyConfigError::CoresOutOfRange { .. } => push(&["cores"]),
                HierarchyConfigError::Cache { level, .. }
                | HierarchyConfigError::LineBytes { level, .. }
                | HierarchyConfigError::WritePolicy { level, .. } => push(&[level.name(), "size"]),
                HierarchyConfigError::ZeroHitLatency { level } => push(&[level.name(), "latency"]),
                HierarchyConfigError::MshrEntries { level, .. } => push(&[level.name(), "mshrs"]),
                HierarchyConfigError::WritebackBufferEntries { .. } => push(&["writeback_buffer"]),
                HierarchyConfigError::PrefetchDegree { .. } => push(&["prefetch", "degree"]),
                HierarchyConfigError::StrideTableEntries { .. } => {
                    push(&["prefetch", "stride_table"]);
                }
            }
        }
        MachineConfigError::Memory(m) => {
            push(&["memory"]);
            match m {
                MemCtrlConfigError::Layout(LayoutError::PhysAddrBitsOutOfRange { .. }) => {
                    push(&["phys_addr_bits"]);
                }
                MemCtrlConfigError::Layout(_) => push(&["keyid_bits"]),
                MemCtrlConfigError::MaxKeysAboveKeyIdBits { .. }
                | MemCtrlConfigError::NoKeys { .. } => push(&["tme", "max_keys"]),
                MemCtrlConfigError::KeyIdBitsWithoutTme { .. } => push(&["tme", "enabled"]),
                MemCtrlConfigError::NoAlgorithm => push(&["tme", "algorithms"]),
                MemCtrlConfigError::ExclusionShape { .. }
                | MemCtrlConfigError::ExclusionOutOfRange { .. } => push(&["tme", "exclusion"]),
                MemCtrlConfigError::ZeroPconfigLatency => push(&["pconfig_latency"]),
                MemCtrlConfigError::BadEntropyRate { .. } => push(&["entropy_failure_rate"]),
                MemCtrlConfigError::ControllerCount { .. }
                | MemCtrlConfigError::InterleaveOutOfRange { .. } => push(&["controllers"]),
                MemCtrlConfigError::InterleaveBytes { .. } => push(&["interleave"]),
                MemCtrlConfigError::ZeroCoreClock => push(&["core_clock_mhz"]),
                MemCtrlConfigError::DramBeyondAddressSpace { .. } => push(&["dram"]),
            }
        }
        MachineConfigError::Dram(_) => push(&["memory", "dram"]),
        MachineConfigError::Core { field, .. } => {
            push(&["core"]);
            push(&[match *field {
                "store_buffer_entries" => "store_buffer",
                f => f,
            }]);
        }
    }
    p
}

/// `a`, `b`, `c`: names for an error message.
fn quoted_list<T: std::fmt::Display>(names: impl IntoIterator<Item = T>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The payload with the values of `key=` and `tweak=` hidden: summaries end up in reports,
/// and key bytes appear in a report only when the user asks (`--reveal-keys`).
fn redact_payload(payload: &str) -> String {
    payload
        .split_whitespace()
        .map(|option| match option.split_once('=') {
            Some((name @ ("key" | "tweak"), _)) => format!("{name}=<hidden>"),
            _ => option.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_hide_key_bytes() {
        let text = r#"(cores: [(ops: [add_key(key: "k", payload: "type=user algorithm=aes-xts-128 key=000102030405060708090a0b0c0d0e0f tweak=f0e0d0c0b0a090807060504030201000")])])"#;
        let scenario = parse(text, "k.ron").unwrap();
        assert_eq!(
            scenario.ops[0].summary,
            "add_key `k` (type=user algorithm=aes-xts-128 key=<hidden> tweak=<hidden>)"
        );
    }

    #[test]
    fn hex_groups_digits_by_four() {
        assert_eq!(hex(0), "0x0");
        assert_eq!(hex(0x10), "0x10");
        assert_eq!(hex(0x1_0000), "0x1_0000");
        assert_eq!(hex(0x7000_0000), "0x7000_0000");
        assert_eq!(hex(u64::MAX), "0xffff_ffff_ffff_ffff");
    }

    #[test]
    fn hex_data() {
        assert_eq!(
            parse_hex("00 11_22\n33", 64).unwrap(),
            [0, 0x11, 0x22, 0x33]
        );
        assert_eq!(parse_hex("", 64).unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("aAfF", 64).unwrap(), [0xaa, 0xff]);
        assert!(parse_hex("0 0", 64).unwrap_err().contains("splits a byte"));
        assert!(parse_hex("abc", 64).unwrap_err().contains("3 hex digits"));
        assert!(
            parse_hex("0g", 64)
                .unwrap_err()
                .contains("'g' at character 2")
        );
        assert!(parse_hex("0x00", 64).unwrap_err().contains("'x'"));
        assert!(
            parse_hex("000000", 2)
                .unwrap_err()
                .contains("more than 2 bytes")
        );
    }

    #[test]
    fn error_display() {
        let e = ScenarioError {
            file: "a.ron".into(),
            place: Some(Location { line: 3, column: 7 }),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.ron:3:7: bad");
        let e = ScenarioError { place: None, ..e };
        assert_eq!(e.to_string(), "a.ron: bad");
    }
}
