//! The sections that configure the system rather than its programs: where a machine error
//! sits in the file ([`machine_error_path`]), the kernel section (KeyIDs, frames, policies)
//! and the run section (cycle limit, drain).

use super::helpers::{field, hex};
use super::{CYCLES_MAX_DEFAULT, CYCLES_MAX_LIMIT, PAGE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario_file::{KernelFile, RunFile};
use cache_model::hierarchy::HierarchyConfigError;
use cpu_model::MachineConfigError;
use cpu_model::kernel::KernelConfig;
use mem_ctrl::MemCtrlConfigError;
use sim_core::LayoutError;

impl Validator<'_> {
    pub(super) fn kernel(&self, k: Option<&KernelFile>) -> Result<KernelConfig, ScenarioError> {
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

    pub(super) fn run(&self, r: Option<&RunFile>) -> Result<(u64, bool), ScenarioError> {
        let cycles_max = r.and_then(|r| r.cycles_max).unwrap_or(CYCLES_MAX_DEFAULT);
        if !(1..=CYCLES_MAX_LIMIT).contains(&cycles_max) {
            return Err(self.err(
                &[PathSeg::Field("run"), PathSeg::Field("cycles_max")],
                format!("run.cycles_max {cycles_max} is outside 1..={CYCLES_MAX_LIMIT}"),
            ));
        }
        Ok((cycles_max, r.and_then(|r| r.drain_at_end).unwrap_or(true)))
    }
}

/// Where in a scenario file the value behind a machine error sits (from the top level):
/// the most specific field the error names; [`RonIndex::locate_nearest`] falls back to the
/// enclosing section when the file left that field to its preset.
///
/// [`RonIndex::locate_nearest`]: crate::locate::RonIndex::locate_nearest
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
                HierarchyConfigError::InclusionGeometry { outer, .. } => {
                    push(&[outer.name(), "size"]);
                }
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
