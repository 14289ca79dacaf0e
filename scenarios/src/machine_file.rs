//! The machine section of RON files: a preset plus overrides, read into plain structs close to
//! the file and then turned into a validated [`MachineConfig`].
//!
//! ```ron
//! (
//!     preset: "default",
//!     caches: (
//!         cores: 4,
//!         l1d: (size: "48k", ways: 12, latency: 5),
//!         llc: (size: "16m", inclusive: false, replacement: srrip),
//!         prefetch: (next_line: false),
//!         alias_policy: evict_other_keyids,
//!     ),
//!     memory: (
//!         dram: "ddr4-3200",
//!         controllers: 2,
//!         tme: (bypass: true, max_keys: 40),
//!     ),
//!     core: (issue_width: 2, store_buffer: 32),
//! )
//! ```
//!
//! Every field is optional: what is not given keeps the preset's value (`default` when no
//! preset is named). Unknown fields are errors. `docs/machine-format.md` lists every field.
//!
//! `memory.dram` is a DRAM preset's name or the path of a RON DRAM file
//! ([`crate::formats::dram_file`]), a relative path being taken from the machine file's folder.
//! Only [`load`] and [`parse_in`] (through [`MachineFile::to_config_in`]) read such files;
//! [`MachineFile::to_config`], which knows no folder, takes presets only.

use crate::formats::dram_file::{self, DramFileError};
use crate::limits::{Bounded, FILE_CHARS_SHOWN, read_bounded};
use cache_model::ReplacementPolicy;
use cache_model::hierarchy::{AliasPolicy, PrefetchLevel};
use cpu_model::{CoreConfig, MachineConfig, MachineConfigError};
use mem_ctrl::dram::DramConfig;
use mem_ctrl::pconfig::SpecRevision;
use mem_ctrl::xts::XtsAlgorithm;
use mem_ctrl::{AlgorithmSet, ExclusionRange, Fraction};
use serde::Deserialize;
use sim_core::text::{one_line, shown_max};
use sim_core::{AddressLayout, DramAddr};
use std::path::Path;

/// A byte count written as a number or as text with a binary suffix (`"32k"`, `"8m"`, `"1g"`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ByteSizeText")]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum ByteSizeText {
    Number(u64),
    Text(String),
}

impl TryFrom<ByteSizeText> for ByteSize {
    type Error = String;
    fn try_from(v: ByteSizeText) -> Result<ByteSize, String> {
        match v {
            ByteSizeText::Number(n) => Ok(ByteSize(n)),
            ByteSizeText::Text(t) => parse_byte_size(&t).map(ByteSize).ok_or_else(|| {
                format!("`{t}` is not a byte count (a number, or one with k, m or g: \"32k\")")
            }),
        }
    }
}

/// Parses `32768`, `32k`, `8m`, `1g` (binary multiples).
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        b'g' | b'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The file's top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "machine")]
pub struct MachineFile {
    /// The preset the overrides apply to (`default` when absent).
    pub preset: Option<String>,
    /// Cores and caches.
    pub caches: Option<CachesFile>,
    /// Memory controllers, DRAM, TME/MKTME.
    pub memory: Option<MemoryFile>,
    /// The cores' pipelines.
    pub core: Option<CoreFile>,
}

/// `core: (...)`: every core's pipeline ([`CoreConfig`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "core")]
pub struct CoreFile {
    /// Ops issued per cycle, at most.
    pub issue_width: Option<u32>,
    /// Loads in flight at once (1: a blocking core).
    pub outstanding_loads: Option<u32>,
    /// Store-buffer entries.
    pub store_buffer: Option<u32>,
    /// Cycles from a mispredicted branch's issue to its resolution.
    pub branch_resolve_cycles: Option<u64>,
    /// Entries of the per-core TLB.
    pub tlb_entries: Option<u32>,
    /// Cycles a TLB miss costs.
    pub page_walk_cycles: Option<u64>,
    /// Cycles of a system call's entry and exit.
    pub syscall_cycles: Option<u64>,
}

impl CoreFile {
    fn apply(&self, core: &mut CoreConfig) {
        let fields: [(Option<u64>, &mut u64); 3] = [
            (self.branch_resolve_cycles, &mut core.branch_resolve_cycles),
            (self.page_walk_cycles, &mut core.page_walk_cycles),
            (self.syscall_cycles, &mut core.syscall_cycles),
        ];
        for (value, field) in fields {
            if let Some(v) = value {
                *field = v;
            }
        }
        let fields: [(Option<u32>, &mut u32); 4] = [
            (self.issue_width, &mut core.issue_width),
            (self.outstanding_loads, &mut core.outstanding_loads),
            (self.store_buffer, &mut core.store_buffer_entries),
            (self.tlb_entries, &mut core.tlb_entries),
        ];
        for (value, field) in fields {
            if let Some(v) = value {
                *field = v;
            }
        }
    }
}

/// `caches: (...)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "caches")]
pub struct CachesFile {
    /// Number of cores.
    pub cores: Option<u32>,
    /// Each core's L1D.
    pub l1d: Option<LevelFile>,
    /// Each core's L2.
    pub l2: Option<LevelFile>,
    /// The shared LLC.
    pub llc: Option<LlcFile>,
    /// Cycles a snoop adds to an LLC hit.
    pub snoop_latency: Option<u64>,
    /// Write-back buffer entries.
    pub writeback_buffer: Option<u32>,
    /// Hardware prefetchers.
    pub prefetch: Option<PrefetchFile>,
    /// Counterfactual: prefetched and speculative lines written back as if dirty.
    pub writeback_speculative_lines: Option<bool>,
    /// What a fill does to other-KeyID copies of its DRAM line.
    pub alias_policy: Option<AliasPolicyFile>,
}

/// A private level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "cache_level")]
pub struct LevelFile {
    /// Capacity.
    pub size: Option<ByteSize>,
    /// Associativity.
    pub ways: Option<u32>,
    /// Hit latency in core cycles.
    pub latency: Option<u64>,
    /// MSHR entries.
    pub mshrs: Option<u32>,
    /// Replacement policy.
    pub replacement: Option<ReplacementFile>,
}

/// The LLC: a level plus inclusion.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "llc")]
pub struct LlcFile {
    /// Capacity.
    pub size: Option<ByteSize>,
    /// Associativity.
    pub ways: Option<u32>,
    /// Hit latency in core cycles.
    pub latency: Option<u64>,
    /// MSHR entries.
    pub mshrs: Option<u32>,
    /// Replacement policy.
    pub replacement: Option<ReplacementFile>,
    /// Inclusive of the private caches.
    pub inclusive: Option<bool>,
}

/// Replacement policies as written in files.
#[derive(Copy, Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", rename = "replacement")]
pub enum ReplacementFile {
    /// LRU.
    Lru,
    /// Tree pseudo-LRU.
    Plru,
    /// SRRIP.
    Srrip,
    /// Seeded random.
    Random,
}

/// `prefetch: (...)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "prefetch")]
pub struct PrefetchFile {
    /// Next-line prefetcher on.
    pub next_line: Option<bool>,
    /// Stride prefetcher on.
    pub stride: Option<bool>,
    /// Lines per trigger.
    pub degree: Option<u32>,
    /// Which level's accesses train the prefetchers.
    pub train_on: Option<PrefetchLevelFile>,
    /// Which level prefetched lines fill.
    pub fill_into: Option<PrefetchLevelFile>,
    /// Stride-table entries.
    pub stride_table: Option<u32>,
}

/// `l1d` or `l2`.
#[derive(Copy, Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", rename = "prefetch_level")]
pub enum PrefetchLevelFile {
    /// The L1D.
    L1d,
    /// The L2.
    L2,
}

/// `none` or `evict_other_keyids`.
#[derive(Copy, Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", rename = "alias_policy")]
pub enum AliasPolicyFile {
    /// The spec: nothing happens to other aliases.
    None,
    /// A fill evicts other-KeyID copies of its DRAM line.
    EvictOtherKeyids,
}

/// `memory: (...)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "memory")]
pub struct MemoryFile {
    /// Core clock in MHz.
    pub core_clock_mhz: Option<u64>,
    /// Physical address width.
    pub phys_addr_bits: Option<u32>,
    /// KeyID bits (MK_TME_KEYID_BITS).
    pub keyid_bits: Option<u32>,
    /// Memory controllers.
    pub controllers: Option<u32>,
    /// Interleave granularity between controllers.
    pub interleave: Option<ByteSize>,
    /// DRAM preset (`ddr4-2400`, `ddr4-3200`, `ddr5-4800`), or the path of a RON DRAM file
    /// (relative to the machine file's folder).
    pub dram: Option<String>,
    /// Cycles a successful PCONFIG holds the key-table lock.
    pub pconfig_latency: Option<u64>,
    /// `sdm` (current SDM) or `ise` (ISE / spec rev 1.3).
    pub spec_revision: Option<SpecRevisionFile>,
    /// Probability that SET_KEY_RANDOM meets ENTROPY_ERROR, as `(numerator, denominator)`.
    pub entropy_failure_rate: Option<(u64, u64)>,
    /// TME/MKTME activation.
    pub tme: Option<TmeFile>,
}

/// `sdm` or `ise`.
#[derive(Copy, Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", rename = "spec_revision")]
pub enum SpecRevisionFile {
    /// Current SDM.
    Sdm,
    /// ISE / spec rev 1.3.
    Ise,
}

/// `tme: (...)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "tme")]
pub struct TmeFile {
    /// Hardware encryption enabled.
    pub enabled: Option<bool>,
    /// KeyID 0's algorithm.
    pub policy: Option<AlgorithmFile>,
    /// TME bypass.
    pub bypass: Option<bool>,
    /// MK_TME_MAX_KEYS.
    pub max_keys: Option<u16>,
    /// MK_TME_CRYPTO_ALGS.
    #[serde(default, deserialize_with = "crate::read_budget::opt_items")]
    pub algorithms: Option<Vec<AlgorithmFile>>,
    /// The exclusion range (KeyID 0 only), or `None` to turn it off.
    pub exclusion: Option<Option<ExclusionFile>>,
}

/// `aes_xts_128` or `aes_xts_256`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename = "algorithm")]
pub enum AlgorithmFile {
    /// AES-XTS-128.
    #[serde(rename = "aes_xts_128")]
    AesXts128,
    /// AES-XTS-256.
    #[serde(rename = "aes_xts_256")]
    AesXts256,
}

impl From<AlgorithmFile> for XtsAlgorithm {
    fn from(a: AlgorithmFile) -> XtsAlgorithm {
        match a {
            AlgorithmFile::AesXts128 => XtsAlgorithm::Aes128,
            AlgorithmFile::AesXts256 => XtsAlgorithm::Aes256,
        }
    }
}

/// `exclusion: Some((base: 0x100000, size: "1m"))`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "exclusion")]
pub struct ExclusionFile {
    /// First byte (a DRAM address).
    pub base: u64,
    /// Length (a power of two of at least 4 KiB; base aligned to it).
    pub size: ByteSize,
}

/// A machine file that could not be read or describes an impossible machine.
#[derive(Debug, thiserror::Error)]
pub enum MachineFileError {
    /// The file could not be read.
    #[error("{}: {source}", shown_max(file, FILE_CHARS_SHOWN))]
    Io {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The RON is malformed or has an unknown or mistyped field.
    #[error(
        "{}:{line}:{column}: {}",
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
        /// What was expected.
        message: String,
    },
    /// The machine it describes is impossible.
    #[error("{}: {source}", shown_max(file, FILE_CHARS_SHOWN))]
    Machine {
        /// The file.
        file: String,
        /// Which field and why.
        source: MachineConfigError,
    },
    /// `memory.dram` names a DRAM file that cannot be read or describes an impossible DRAM.
    #[error("{}: memory.dram: {error}", shown_max(file, FILE_CHARS_SHOWN))]
    DramFile {
        /// The machine file.
        file: String,
        /// What is wrong with the DRAM file, naming it (part of the message, so not also a
        /// `source()`).
        error: DramFileError,
    },
}

/// The RON options every file of the project is read with: `Some(..)` may be left out.
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Reads a machine file; a DRAM file it names is read from the machine file's folder.
pub fn load(path: &Path) -> Result<MachineConfig, MachineFileError> {
    let file = path.display().to_string();
    let io = |source| MachineFileError::Io {
        file: file.clone(),
        source,
    };
    let bytes = read_bounded(path, MACHINE_FILE_BYTES_MAX).map_err(|e| match e {
        Bounded::TooLarge => io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a machine file is at most {MACHINE_FILE_BYTES_MAX} bytes"),
        )),
        Bounded::Io(e) => io(e),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        // What `read_to_string` says.
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    parse_in(&text, &file, path.parent().unwrap_or(Path::new("")))
}

/// Largest machine file accepted, in bytes (1 MiB; a machine file is a few hundred).
pub const MACHINE_FILE_BYTES_MAX: u64 = 1 << 20;

/// Parses a machine file's text; `file` names it in errors, and a DRAM file it names is read
/// from the current directory.
pub fn parse(text: &str, file: &str) -> Result<MachineConfig, MachineFileError> {
    parse_in(text, file, Path::new(""))
}

/// Parses a machine file's text; `file` names it in errors, and a DRAM file it names by a
/// relative path is read from `dir` (the machine file's folder).
pub fn parse_in(text: &str, file: &str, dir: &Path) -> Result<MachineConfig, MachineFileError> {
    let parsed: MachineFile = crate::read_budget::scope(|| ron_options().from_str(text)).map_err(
        |e: ron::error::SpannedError| MachineFileError::Syntax {
            file: file.to_owned(),
            line: e.span.start.line,
            column: e.span.start.col,
            message: e.code.to_string(),
        },
    )?;
    parsed.to_config_in(dir, file)
}

impl MachineFile {
    /// The preset with the file's overrides applied, validated. `memory.dram` must name a
    /// preset here: with no folder to read it from, a DRAM file's name is an unknown preset
    /// (see [`Self::to_config_in`]).
    pub fn to_config(&self) -> Result<MachineConfig, MachineConfigError> {
        self.build(None)
    }

    /// The preset with the file's overrides applied, validated; a DRAM file named by
    /// `memory.dram` is read, a relative path from `dir`. `file` names the machine file in
    /// errors.
    pub fn to_config_in(&self, dir: &Path, file: &str) -> Result<MachineConfig, MachineFileError> {
        let spec = self.memory.as_ref().and_then(|m| m.dram.as_deref());
        let dram = match spec.and_then(|spec| dram_file::file_path(spec, dir)) {
            Some(path) => {
                Some(
                    dram_file::read(&path).map_err(|error| MachineFileError::DramFile {
                        file: file.to_owned(),
                        error,
                    })?,
                )
            }
            None => None,
        };
        self.build(dram)
            .map_err(|source| MachineFileError::Machine {
                file: file.to_owned(),
                source,
            })
    }

    /// The preset with the overrides applied, validated; `dram`, when given, is the DRAM file
    /// `memory.dram` names, already read.
    fn build(&self, dram: Option<DramConfig>) -> Result<MachineConfig, MachineConfigError> {
        let mut m = MachineConfig::preset(self.preset.as_deref().unwrap_or("default"))?;
        if let Some(c) = &self.caches {
            c.apply(&mut m);
        }
        if let Some(mem) = &self.memory {
            mem.apply(&mut m, dram)?;
        }
        if let Some(core) = &self.core {
            core.apply(&mut m.core);
        }
        m.validate().map_err(|e| match e {
            // The file calls it `store_buffer`.
            MachineConfigError::Core {
                field: "store_buffer_entries",
                problem,
            } => MachineConfigError::Core {
                field: "store_buffer",
                problem,
            },
            e => e,
        })?;
        Ok(m)
    }
}

fn replacement(r: ReplacementFile) -> ReplacementPolicy {
    match r {
        ReplacementFile::Lru => ReplacementPolicy::Lru,
        ReplacementFile::Plru => ReplacementPolicy::TreePlru,
        ReplacementFile::Srrip => ReplacementPolicy::Srrip,
        ReplacementFile::Random => ReplacementPolicy::Random,
    }
}

fn prefetch_level(l: PrefetchLevelFile) -> PrefetchLevel {
    match l {
        PrefetchLevelFile::L1d => PrefetchLevel::L1d,
        PrefetchLevelFile::L2 => PrefetchLevel::L2,
    }
}

/// Applies size/ways/latency/replacement overrides to one cache, recomputing its sets (the
/// line stays 64 bytes; an impossible combination is caught by validation, naming the level).
fn apply_level(
    cache: &mut cache_model::CacheConfig,
    mshrs: &mut u32,
    size: Option<ByteSize>,
    ways: Option<u32>,
    latency: Option<u64>,
    mshr_entries: Option<u32>,
    repl: Option<ReplacementFile>,
) {
    if let Some(ByteSize(s)) = size {
        cache.size_bytes = s;
    }
    if let Some(w) = ways {
        cache.ways = w;
    }
    if size.is_some() || ways.is_some() {
        cache.sets = cache
            .size_bytes
            .checked_div(u64::from(cache.ways) * cache.line_bytes)
            .unwrap_or(0);
    }
    if let Some(l) = latency {
        cache.hit_latency_cycles = l;
    }
    if let Some(m) = mshr_entries {
        *mshrs = m;
    }
    if let Some(r) = repl {
        cache.replacement = replacement(r);
    }
}

impl CachesFile {
    fn apply(&self, m: &mut MachineConfig) {
        let c = &mut m.caches;
        if let Some(n) = self.cores {
            c.cores = n;
        }
        if let Some(l) = &self.l1d {
            apply_level(
                &mut c.l1d.cache,
                &mut c.l1d.mshr_entries,
                l.size,
                l.ways,
                l.latency,
                l.mshrs,
                l.replacement,
            );
        }
        if let Some(l) = &self.l2 {
            apply_level(
                &mut c.l2.cache,
                &mut c.l2.mshr_entries,
                l.size,
                l.ways,
                l.latency,
                l.mshrs,
                l.replacement,
            );
        }
        if let Some(l) = &self.llc {
            apply_level(
                &mut c.llc.cache,
                &mut c.llc.mshr_entries,
                l.size,
                l.ways,
                l.latency,
                l.mshrs,
                l.replacement,
            );
            if let Some(i) = l.inclusive {
                c.llc_inclusive = i;
            }
        }
        if let Some(v) = self.snoop_latency {
            c.snoop_latency_cycles = v;
        }
        if let Some(v) = self.writeback_buffer {
            c.writeback_buffer_entries = v;
        }
        if let Some(p) = &self.prefetch {
            let t = &mut c.prefetch;
            if let Some(v) = p.next_line {
                t.next_line = v;
            }
            if let Some(v) = p.stride {
                t.stride = v;
            }
            if let Some(v) = p.degree {
                t.degree = v;
            }
            if let Some(v) = p.train_on {
                t.train_on = prefetch_level(v);
            }
            if let Some(v) = p.fill_into {
                t.fill_into = prefetch_level(v);
            }
            if let Some(v) = p.stride_table {
                t.stride_table_entries = v;
            }
        }
        if let Some(v) = self.writeback_speculative_lines {
            c.writeback_speculative_lines = v;
        }
        if let Some(v) = self.alias_policy {
            c.alias_policy = match v {
                AliasPolicyFile::None => AliasPolicy::None,
                AliasPolicyFile::EvictOtherKeyids => AliasPolicy::EvictOtherKeyIds,
            };
        }
    }
}

impl MemoryFile {
    /// Applies the overrides; `dram_file` is the DRAM file `dram` names, when it names one
    /// and it has been read.
    fn apply(
        &self,
        m: &mut MachineConfig,
        dram_file: Option<DramConfig>,
    ) -> Result<(), MachineConfigError> {
        let mem = &mut m.memory;
        if let Some(v) = self.core_clock_mhz {
            mem.core_clock_mhz = v;
        }
        if self.phys_addr_bits.is_some() || self.keyid_bits.is_some() {
            let phys = self.phys_addr_bits.unwrap_or(mem.layout.phys_addr_bits());
            let keyid = self.keyid_bits.unwrap_or(mem.layout.keyid_bits());
            mem.layout = AddressLayout::new(phys, keyid)
                .map_err(|e| MachineConfigError::Memory(e.into()))?;
        }
        if let Some(v) = self.controllers {
            mem.controllers = v;
        }
        if let Some(ByteSize(v)) = self.interleave {
            mem.interleave_bytes = v;
        }
        match (dram_file, &self.dram) {
            (Some(dram), _) => mem.dram = dram,
            (None, Some(name)) => mem.dram = DramConfig::machine_preset(name)?,
            (None, None) => {}
        }
        if let Some(v) = self.pconfig_latency {
            mem.pconfig_latency_cycles = v;
        }
        if let Some(v) = self.spec_revision {
            mem.spec_revision = match v {
                SpecRevisionFile::Sdm => SpecRevision::Sdm,
                SpecRevisionFile::Ise => SpecRevision::Ise,
            };
        }
        if let Some((numerator, denominator)) = self.entropy_failure_rate {
            mem.entropy_failure_rate = Fraction {
                numerator,
                denominator,
            };
        }
        if let Some(t) = &self.tme {
            let tme = &mut mem.tme;
            if let Some(v) = t.enabled {
                tme.enabled = v;
            }
            if let Some(v) = t.policy {
                tme.policy = v.into();
            }
            if let Some(v) = t.bypass {
                tme.bypass = v;
            }
            if let Some(v) = t.max_keys {
                tme.max_keys = v;
            }
            if let Some(algs) = &t.algorithms {
                tme.algorithms = AlgorithmSet {
                    aes_xts_128: algs.contains(&AlgorithmFile::AesXts128),
                    aes_xts_256: algs.contains(&AlgorithmFile::AesXts256),
                };
            }
            if let Some(ex) = &t.exclusion {
                tme.exclusion = ex.as_ref().map(|e| ExclusionRange {
                    base: DramAddr::new(e.base),
                    size_bytes: e.size.0,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_preset() {
        let m = parse("()", "m.ron").unwrap();
        let d = MachineConfig::preset("default").unwrap();
        assert_eq!(m.caches, d.caches);
        assert_eq!(m.memory.controllers, d.memory.controllers);
    }

    #[test]
    fn overrides_apply_to_the_preset() {
        let m = parse(
            r#"(
                preset: "server",
                caches: (
                    cores: 4,
                    l1d: (size: "64k", ways: 16, latency: 6),
                    llc: (inclusive: true, replacement: srrip),
                    prefetch: (next_line: false, degree: 4),
                    alias_policy: evict_other_keyids,
                    writeback_speculative_lines: true,
                ),
                memory: (
                    dram: "ddr5-4800",
                    controllers: 4,
                    interleave: "8k",
                    keyid_bits: 7,
                    tme: (bypass: true, max_keys: 100, algorithms: [aes_xts_256],
                          exclusion: (base: 0x100000, size: "1m")),
                    spec_revision: ise,
                    entropy_failure_rate: (1, 10),
                ),
            )"#,
            "m.ron",
        )
        .unwrap();
        assert_eq!(m.caches.cores, 4);
        assert_eq!(m.caches.l1d.cache.size_bytes, 64 << 10);
        assert_eq!(m.caches.l1d.cache.sets, 64);
        assert_eq!(m.caches.l1d.cache.hit_latency_cycles, 6);
        assert!(m.caches.llc_inclusive);
        assert_eq!(m.caches.llc.cache.replacement, ReplacementPolicy::Srrip);
        assert!(!m.caches.prefetch.next_line && m.caches.prefetch.degree == 4);
        assert_eq!(m.caches.alias_policy, AliasPolicy::EvictOtherKeyIds);
        assert!(m.caches.writeback_speculative_lines);
        assert_eq!(m.memory.dram.name(), "ddr5-4800");
        assert_eq!((m.memory.controllers, m.memory.interleave_bytes), (4, 8192));
        assert_eq!(m.memory.layout.keyid_bits(), 7);
        assert!(m.memory.tme.bypass);
        assert_eq!(m.memory.tme.max_keys, 100);
        assert!(!m.memory.tme.algorithms.aes_xts_128 && m.memory.tme.algorithms.aes_xts_256);
        assert_eq!(m.memory.tme.exclusion.unwrap().size_bytes, 1 << 20);
        assert_eq!(m.memory.spec_revision, SpecRevision::Ise);
        assert_eq!(m.memory.entropy_failure_rate.denominator, 10);
    }

    #[test]
    fn syntax_and_unknown_fields_report_line_and_column() {
        let e = parse("(\n  caches: (\n    coress: 2,\n  ),\n)", "m.ron").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("m.ron:3:"), "{text}");
        assert!(text.contains("coress"), "{text}");
        let e = parse("(caches: (cores: \"two\"))", "m.ron").unwrap_err();
        assert!(e.to_string().starts_with("m.ron:1:"), "{e}");
        let e = parse("(caches: (l1d: (size: \"32q\")))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("32q"), "{e}");
    }

    #[test]
    fn impossible_machines_name_the_field() {
        let e = parse("(caches: (l1d: (size: \"24k\")))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("caches:"), "{e}");
        let e = parse("(memory: (keyid_bits: 16))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("keyid_bits = 16"), "{e}");
        let e = parse("(memory: (dram: \"ddr9\"))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("ddr9"), "{e}");
        let e = parse("(preset: \"laptop\")", "m.ron").unwrap_err();
        assert!(e.to_string().contains("laptop"), "{e}");
        let e = parse("(memory: (tme: (max_keys: 64)))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("max_keys = 64"), "{e}");
    }

    #[test]
    fn core_overrides_apply_and_are_checked() {
        let m = parse(
            "(core: (issue_width: 2, outstanding_loads: 1, store_buffer: 8, \
             branch_resolve_cycles: 40, tlb_entries: 16, page_walk_cycles: 0, \
             syscall_cycles: 500))",
            "m.ron",
        )
        .unwrap();
        assert_eq!(
            m.core,
            CoreConfig {
                issue_width: 2,
                outstanding_loads: 1,
                store_buffer_entries: 8,
                branch_resolve_cycles: 40,
                tlb_entries: 16,
                page_walk_cycles: 0,
                syscall_cycles: 500,
            }
        );
        let untouched = parse("(core: (tlb_entries: 32))", "m.ron").unwrap();
        assert_eq!(
            untouched.core.issue_width,
            CoreConfig::default().issue_width
        );
        let e = parse("(core: (store_buffer: 0))", "m.ron").unwrap_err();
        assert!(
            e.to_string()
                .contains("core.store_buffer: 0 is outside 1..=1024"),
            "{e}"
        );
        let e = parse("(core: (issue_width: 99))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("core.issue_width"), "{e}");
        let e = parse("(core: (store_buffer_entries: 4))", "m.ron").unwrap_err();
        assert!(e.to_string().contains("store_buffer_entries"), "{e}");
    }

    /// A scratch folder unique to this test process and `name`, removed on drop.
    struct ScratchDir(std::path::PathBuf);

    impl ScratchDir {
        fn new(name: &str) -> ScratchDir {
            let dir = std::env::temp_dir().join(format!(
                "scenarios-machine-file-{}-{name}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            ScratchDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A valid DRAM file: ddr4-3200 under another name, with a deeper transaction queue.
    fn custom_dram() -> (String, mem_ctrl::dram::DramParams) {
        let mut params = mem_ctrl::dram::DramParams::preset("ddr4-3200").unwrap();
        params.name = "my-ddr4".to_owned();
        params.controller.transaction_queue_entries = 48;
        (dram_file::to_ron(&params).unwrap(), params)
    }

    #[test]
    fn dram_may_name_a_dram_file_relative_to_the_machine_file() {
        let dir = ScratchDir::new("valid");
        let (text, params) = custom_dram();
        std::fs::create_dir_all(dir.0.join("dram")).unwrap();
        dir.write("dram/my-ddr4.ron", &text);
        let machine = dir.write(
            "m.ron",
            "(memory: (dram: \"dram/my-ddr4.ron\", controllers: 2))",
        );
        // The tests run in the crate's folder: the path resolves from the machine file's.
        let m = load(&machine).unwrap();
        assert_eq!(m.memory.dram.params(), &params);
        assert_eq!(m.memory.dram.name(), "my-ddr4");
        assert_eq!(m.memory.controllers, 2);
        // An absolute path works from anywhere, and presets still do.
        let absolute = dir.0.join("dram/my-ddr4.ron");
        let m = parse(
            &format!("(memory: (dram: {:?}))", absolute.display().to_string()),
            "m.ron",
        )
        .unwrap();
        assert_eq!(m.memory.dram.name(), "my-ddr4");
        let m = parse_in("(memory: (dram: \"ddr5-4800\"))", "m.ron", &dir.0).unwrap();
        assert_eq!(m.memory.dram.name(), "ddr5-4800");
    }

    #[test]
    fn a_missing_dram_file_names_the_field_and_the_file() {
        let dir = ScratchDir::new("missing");
        let machine = dir.write("m.ron", "(memory: (dram: \"nowhere.ron\"))");
        let e = load(&machine).unwrap_err().to_string();
        let want = format!(
            "{}: memory.dram: cannot open DRAM file {}: ",
            machine.display(),
            dir.0.join("nowhere.ron").display()
        );
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn a_malformed_dram_file_names_the_field_the_file_and_the_place() {
        let dir = ScratchDir::new("malformed");
        dir.write("bad.ron", "(name: \"x\",\n  geometry: (channels: 1,)\n");
        let machine = dir.write("m.ron", "(memory: (dram: \"bad.ron\"))");
        let e = load(&machine).unwrap_err().to_string();
        let want = format!(
            "{}: memory.dram: {}:2:",
            machine.display(),
            dir.0.join("bad.ron").display()
        );
        assert!(e.starts_with(&want), "{e}");
        assert!(e.contains("missing field named `ranks`"), "{e}");
        // A well-formed file describing an impossible DRAM names the parameter.
        let (text, _) = custom_dram();
        dir.write(
            "zero.ron",
            &text.replace(
                "transaction_queue_entries: 48",
                "transaction_queue_entries: 0",
            ),
        );
        let machine = dir.write("z.ron", "(memory: (dram: \"zero.ron\"))");
        let e = load(&machine).unwrap_err().to_string();
        assert!(e.contains("memory.dram: "), "{e}");
        assert!(e.contains("zero.ron: "), "{e}");
        assert!(e.contains("transaction_queue_entries"), "{e}");
    }

    #[test]
    fn without_a_folder_dram_takes_presets_only() {
        let f: MachineFile = ron_options()
            .from_str("(memory: (dram: \"my-ddr4.ron\"))")
            .unwrap();
        let e = f.to_config().unwrap_err().to_string();
        assert!(e.contains("unknown DRAM preset `my-ddr4.ron`"), "{e}");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("32k"), Some(32 << 10));
        assert_eq!(parse_byte_size("1G"), Some(1 << 30));
        assert_eq!(parse_byte_size("12"), Some(12));
        assert_eq!(parse_byte_size("k"), None);
        assert_eq!(parse_byte_size("1.5m"), None);
    }
}
