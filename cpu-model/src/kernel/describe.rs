//! What the kernel tells the outside: its keys for reports, its statistics, and a description
//! of its state for a stopped run's dump.

use super::{CALL_NAMES, Kernel, KeyInfo, PAGE, PageState, Slot};
use crate::program::{Errno, ProcessId};
use sim_core::StatsReport;
use std::fmt::Write as _;

impl Kernel {
    /// Every key ever added, in the order added.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|k| KeyInfo {
                name: k.name.clone(),
                serial: k.serial,
                keyid: k.keyid,
                key_type: k.key_type.name(),
                state: k.state.name(),
                pages: k.pages,
                owner: k.owner,
                viewers: k.viewers.clone(),
            })
            .collect()
    }

    /// Statistics under `kernel.`:
    ///
    /// - `kernel.syscalls.<call>` (every name of [`CALL_NAMES`]) and `kernel.errors.<ERRNO>`,
    ///   counted when the call finishes;
    /// - `kernel.pages_mapped`, `kernel.frames_in_use`, `kernel.frames_free`,
    ///   `kernel.page_cache_pages`, `kernel.direct_map_unmapped`, `kernel.keyids_in_use`,
    ///   `kernel.keyids_total`, `kernel.keys_added`: the current state;
    /// - `kernel.flush_lines`, `kernel.zeroed_lines`, `kernel.pconfig_steps`: steps issued;
    /// - `kernel.program_failures` (add_key calls that failed in PCONFIG),
    ///   `kernel.clear_key_failures`, `kernel.shootdown_pages`.
    pub fn report_stats(&self, report: &mut StatsReport) {
        for name in CALL_NAMES {
            let n = self.counters.syscalls.get(name).copied().unwrap_or(0);
            report.count("kernel.syscalls", name, n);
        }
        for errno in [Errno::Eacces, Errno::Einval, Errno::Enokey, Errno::Enomem] {
            let n = self.counters.errors.get(errno.name()).copied().unwrap_or(0);
            report.count("kernel.errors", errno.name(), n);
        }
        let c = &self.counters;
        let in_use = self.slots.iter().filter(|s| **s != Slot::Available).count();
        let unmapped = self.direct_map.values().filter(|e| e.unmapped).count();
        let mapped = self.pages.values().filter(|p| p.visible.is_some()).count();
        for (name, value) in [
            ("pages_mapped", mapped as u64),
            ("frames_in_use", self.frames.in_use()),
            ("frames_free", self.frames.available()),
            ("page_cache_pages", self.page_cache.len() as u64),
            ("direct_map_unmapped", unmapped as u64),
            ("keyids_in_use", in_use as u64),
            ("keyids_total", self.slots.len() as u64),
            ("keys_added", self.keys.len() as u64),
            ("flush_lines", c.flush_lines),
            ("zeroed_lines", c.zeroed_lines),
            ("pconfig_steps", c.pconfig_steps),
            ("program_failures", c.program_failures),
            ("clear_key_failures", c.clear_key_failures),
            ("shootdown_pages", c.shootdown_pages),
        ] {
            report.count("kernel", name, value);
        }
    }

    /// A human-readable description of the kernel's state (for a stopped run's dump).
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let mapped = self.pages.values().filter(|p| p.visible.is_some()).count();
        let _ = writeln!(
            out,
            "frames: {} in use, {} free (of {:#x}+{:#x}); {} user pages mapped; {} page-cache \
             pages",
            self.frames.in_use(),
            self.frames.available(),
            self.config.frames_base,
            self.config.frames_bytes,
            mapped,
            self.page_cache.len()
        );
        let _ = writeln!(out, "mappings:");
        let runs = self.mapping_runs();
        if runs.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        const MAX_RUNS: usize = 64;
        for run in runs.iter().take(MAX_RUNS) {
            let _ = writeln!(out, "  {run}");
        }
        if runs.len() > MAX_RUNS {
            let _ = writeln!(out, "  ... {} more", runs.len() - MAX_RUNS);
        }
        let _ = writeln!(out, "keys:");
        if self.keys.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for k in &self.keys {
            let keyid = k.keyid.map_or("-".to_owned(), |id| id.get().to_string());
            let _ = write!(
                out,
                "  {:?} serial {:#x} type={} keyid {} {} ({} pages)",
                k.name,
                k.serial,
                k.key_type,
                keyid,
                k.state.name(),
                k.pages
            );
            if k.owner != ProcessId(0) || !k.viewers.is_empty() {
                let viewers: Vec<String> = k.viewers.iter().map(|p| p.0.to_string()).collect();
                let _ = write!(
                    out,
                    "; owner process {}, viewed by [{}]",
                    k.owner.0,
                    viewers.join(", ")
                );
            }
            out.push('\n');
        }
        let busy: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let what = match s {
                    Slot::Available => return None,
                    Slot::Programming(name) => format!("programming {name:?}"),
                    Slot::Assigned(k) => format!("assigned {:?}", self.keys[*k].name),
                    Slot::Releasing(k) => format!("releasing {:?}", self.keys[*k].name),
                };
                Some(format!("{} {what}", i + 1))
            })
            .collect();
        let _ = writeln!(
            out,
            "keyids: {} of {} in use{}{}",
            busy.len(),
            self.slots.len(),
            if busy.is_empty() { "" } else { ": " },
            busy.join(", ")
        );
        let unmapped: Vec<String> = self
            .direct_map
            .iter()
            .filter(|(_, e)| e.unmapped)
            .map(|(f, _)| format!("{f:#x}"))
            .collect();
        let _ = writeln!(
            out,
            "direct map: {} frames unmapped{}{}",
            unmapped.len(),
            if unmapped.is_empty() { "" } else { ": " },
            unmapped.join(", ")
        );
        let _ = writeln!(out, "calls in flight: {}", self.in_flight.len());
        for (seq, f) in &self.in_flight {
            let _ = writeln!(
                out,
                "  #{seq} {} by core {} since cycle {}",
                f.call,
                f.core.get(),
                f.since.get()
            );
        }
        out
    }

    /// Visible pages as runs of contiguous pages alike in protection, KeyID and backing, each
    /// process's in turn (those of processes other than 0 named by their process).
    fn mapping_runs(&self) -> Vec<String> {
        struct Run {
            process: ProcessId,
            start: u64,
            end: u64,
            first: PageState,
            last: PageState,
        }
        let continues = |run: &Run, process: ProcessId, va: u64, s: &PageState| {
            run.process == process
                && run.end == va
                && run.last.prot == s.prot
                && run.last.keyid == s.keyid
                && match (run.last.file, s.file) {
                    (None, None) => true,
                    (Some((f, i)), Some((g, j))) => f == g && i.checked_add(1) == Some(j),
                    _ => false,
                }
        };
        let mut runs: Vec<Run> = Vec::new();
        for (process, va, s) in self
            .pages
            .iter()
            .filter_map(|((process, va), p)| p.visible.map(|s| (*process, va.raw(), s)))
        {
            match runs.last_mut() {
                Some(run) if continues(run, process, va, &s) => {
                    run.end = va + PAGE;
                    run.last = s;
                }
                _ => runs.push(Run {
                    process,
                    start: va,
                    end: va + PAGE,
                    first: s,
                    last: s,
                }),
            }
        }
        runs.iter()
            .map(|r| {
                let backing = match r.first.file {
                    None => "anonymous".to_owned(),
                    Some((f, index)) => format!(
                        "file {:?} offset {:#x}",
                        self.files.get(f as usize).map_or("?", String::as_str),
                        index.saturating_mul(PAGE)
                    ),
                };
                let process = match r.process {
                    ProcessId(0) => String::new(),
                    ProcessId(p) => format!("process {p}: "),
                };
                format!(
                    "{process}{:#x}-{:#x} {} {backing} keyid {} ({} pages, first frame {:#x})",
                    r.start,
                    r.end,
                    r.first.prot,
                    r.first.keyid.get(),
                    (r.end - r.start) / PAGE,
                    r.first.frame
                )
            })
            .collect()
    }
}
