//! The model's self-check: the invariants that every step must leave true (inclusion, an
//! exact directory, one owner per line, every valid copy current, the alias policy's one
//! KeyID per DRAM line, the write-back buffer's bound), each described when broken.
//!
//! Slow, since it walks every cache: [`Hierarchy::verify_invariants`] runs it for tests and
//! debugging, never the model itself.

use crate::hierarchy::index::cores_in;
use crate::hierarchy::mesi::MesiState;
use crate::hierarchy::{AliasPolicy, Hierarchy};

impl Hierarchy {
    pub(in crate::hierarchy) fn check_invariants(&self) -> Result<(), String> {
        use std::collections::BTreeSet;
        let mut private_lines = BTreeSet::new();
        for c in 0..self.cores {
            for l in self.l1[c].lines() {
                let line = l.addr.line();
                let Some(s2) = self.l2[c].probe(l.addr) else {
                    return Err(format!("core {c}: {line:?} in the L1D but not the L2"));
                };
                let st2 = self.l2[c].payload(s2).state;
                if l.payload.state != st2 {
                    return Err(format!(
                        "core {c}: {line:?} is {} in the L1D and {st2} in the L2",
                        l.payload.state
                    ));
                }
            }
            for l in self.l2[c].lines() {
                let line = l.addr.line();
                private_lines.insert(line);
                if !l.payload.state.is_valid() {
                    return Err(format!("core {c}: {line:?} cached in state I"));
                }
                if self.dir.sharers(line) & (1 << c) == 0 {
                    return Err(format!(
                        "core {c}: {line:?} cached but not in the directory"
                    ));
                }
                if self.inclusive && !self.llc.contains(l.addr) {
                    return Err(format!(
                        "core {c}: {line:?} in the L2 but not the inclusive LLC"
                    ));
                }
                if l.payload.state == MesiState::Modified {
                    let l1_dirty = self.l1[c]
                        .probe(l.addr)
                        .is_some_and(|s| self.l1[c].is_dirty(s));
                    if !l.dirty && !l1_dirty {
                        return Err(format!("core {c}: {line:?} in M with no dirty copy"));
                    }
                }
            }
        }
        if self.dir.len() != private_lines.len() {
            return Err(format!(
                "directory tracks {} lines; the L2s hold {}",
                self.dir.len(),
                private_lines.len()
            ));
        }
        for &line in &private_lines {
            let sharers = self.dir.sharers(line);
            let mut exclusive = 0;
            for o in cores_in(sharers) {
                let st = self.core_state(o, line);
                if !st.is_valid() {
                    return Err(format!(
                        "directory lists core {o} for {line:?}, not cached there"
                    ));
                }
                exclusive += usize::from(st.is_exclusive());
            }
            if exclusive > 0 && sharers.count_ones() > 1 {
                return Err(format!(
                    "{line:?} is held exclusively by one core and by others too (sharers {sharers:#x})"
                ));
            }
            let first = cores_in(sharers)
                .next()
                .expect("a private line has a sharer");
            let data = self.core_data(first, line);
            for o in cores_in(sharers) {
                if self.core_data(o, line) != data {
                    return Err(format!("cores {first} and {o} disagree on {line:?}'s data"));
                }
            }
            if (exclusive == 0 || self.core_state(first, line) == MesiState::Exclusive)
                && let Some(s) = self.llc.probe(line.base())
                && self.llc.payload(s).data != data
            {
                return Err(format!("the LLC's copy of {line:?} is stale"));
            }
        }
        if self.alias_policy == AliasPolicy::EvictOtherKeyIds {
            let mut seen = std::collections::BTreeMap::new();
            let all = self
                .llc
                .lines()
                .map(|l| l.addr.line())
                .chain(private_lines.iter().copied());
            for line in all {
                let dram = self.layout.line_dram_addr(line).line_index();
                let keyid = self.layout.line_keyid(line);
                if let Some(other) = seen.insert(dram, keyid)
                    && other != keyid
                {
                    return Err(format!(
                        "DRAM line {dram:#x} cached through KeyIDs {other} and {keyid} under \
                         evict_other_keyids"
                    ));
                }
            }
        }
        if self.outbox_writes > self.wb_capacity {
            return Err(format!(
                "{} write-backs in a {}-entry buffer",
                self.outbox_writes, self.wb_capacity
            ));
        }
        Ok(())
    }
}
