//! Barrier bookkeeping, shared by every core: who takes part in each barrier and how often
//! each participant has arrived. A core's k-th arrival meets the others' k-th; the waiters
//! resume together the cycle after the last arrival. See "Barriers" in the
//! [parent module](super).

use super::Core;
use sim_core::Cycle;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Barrier bookkeeping, shared by every core.
#[derive(Debug, Default)]
pub(crate) struct Barriers {
    map: BTreeMap<u32, BarrierState>,
}

#[derive(Debug)]
struct BarrierState {
    /// Core indices, ascending.
    participants: Vec<usize>,
    arrivals: Vec<u64>,
    /// Occurrences every participant has reached.
    completed: u64,
    /// When the last completed occurrence releases its waiters.
    released_at: Cycle,
}

impl Barriers {
    /// The barriers of `cores`' programs: each id's participants are the cores whose program
    /// can reach it.
    pub(crate) fn new(cores: &[Core]) -> Barriers {
        let mut map: BTreeMap<u32, BarrierState> = BTreeMap::new();
        for (c, core) in cores.iter().enumerate() {
            for id in core.flat.barrier_ids() {
                let b = map.entry(id).or_insert_with(|| BarrierState {
                    participants: Vec::new(),
                    arrivals: Vec::new(),
                    completed: 0,
                    released_at: Cycle::ZERO,
                });
                b.participants.push(c);
                b.arrivals.push(0);
            }
        }
        Barriers { map }
    }

    /// Core `core` arrives at barrier `id` at `now`; returns the occurrence it waits for.
    pub(super) fn arrive(&mut self, id: u32, core: usize, now: Cycle) -> u64 {
        let Some(b) = self.map.get_mut(&id) else {
            return 0;
        };
        let Some(k) = b.participants.iter().position(|&c| c == core) else {
            return 0;
        };
        b.arrivals[k] += 1;
        let occ = b.arrivals[k];
        let min = b.arrivals.iter().copied().min().unwrap_or(0);
        if min > b.completed {
            b.completed = min;
            // Everyone resumes together, the cycle after the last arrival.
            b.released_at = now.plus(1);
        }
        occ
    }

    /// When occurrence `occ` of barrier `id` releases its waiters, once everyone has arrived.
    pub(super) fn released(&self, id: u32, occ: u64) -> Option<Cycle> {
        match self.map.get(&id) {
            // A waiter at `occ` keeps `completed <= occ`: this is its release.
            Some(b) if b.completed >= occ => Some(b.released_at),
            Some(_) => None,
            None => Some(Cycle::ZERO),
        }
    }

    /// Every barrier's arrivals, for dumps.
    pub(crate) fn describe(&self) -> String {
        let mut s = String::new();
        for (id, b) in &self.map {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = write!(s, "barrier {id}: ");
            for (k, (c, a)) in b.participants.iter().zip(&b.arrivals).enumerate() {
                if k > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "core {c} arrived {a}x");
            }
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
}
