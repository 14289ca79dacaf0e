//! Ops whose address or data step with the iterations of enclosing repeat blocks
//! ([`crate::program::OpKind::Indexed`]): the values each iteration uses, computed from the
//! cursor's repeat counters when the op issues, so a repeat is never unrolled.

use super::Core;
use super::flat::Steps;
use crate::program::{Addr, IndexTerm};
use sim_core::{LineBytes, PhysAddr, VirtAddr};

impl Core {
    /// Σ step × iteration over `terms`, in wrapping arithmetic (the program's builder checked
    /// every iteration's value is in range). `shadow`: the op is on a mispredicted path, whose
    /// own repeats are in the shadow cursor.
    fn step_sum(&self, terms: &[IndexTerm], shadow: bool) -> u64 {
        terms.iter().fold(0u64, |sum, t| {
            let inner = if shadow {
                self.shadow_cursor.iteration(&self.flat, t.repeat)
            } else {
                None
            };
            let iteration = inner
                .or_else(|| self.cursor.iteration(&self.flat, t.repeat))
                .unwrap_or(0);
            sum.wrapping_add((t.step as u64).wrapping_mul(iteration))
        })
    }

    fn steps(&self, i: usize) -> Option<&Steps> {
        self.flat.steps.get(i).and_then(|s| s.as_deref())
    }

    /// Op `i`'s address in the current iteration (`at` is its address in the first).
    #[inline]
    pub(super) fn stepped_addr(&self, i: usize, at: Addr, shadow: bool) -> Addr {
        let Some(steps) = self.steps(i) else {
            return at;
        };
        let delta = self.step_sum(&steps.addr, shadow);
        match at {
            Addr::Virt(va) => Addr::Virt(VirtAddr::new(va.raw().wrapping_add(delta))),
            Addr::Phys(pa) => Addr::Phys(PhysAddr::new(pa.raw().wrapping_add(delta))),
            Addr::DirectMapOf(va) => Addr::DirectMapOf(VirtAddr::new(va.raw().wrapping_add(delta))),
        }
    }

    /// Op `i`'s store data in the current iteration: its first `len` bytes (at most 8) read as
    /// a little-endian integer, plus the steps, written back at that width.
    #[inline]
    pub(super) fn step_data(&self, i: usize, len: u8, data: &mut LineBytes, shadow: bool) {
        let Some(steps) = self.steps(i) else {
            return;
        };
        if steps.data.is_empty() {
            return;
        }
        let n = usize::from(len).min(8);
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(&data[..n]);
        let value = u64::from_le_bytes(bytes).wrapping_add(self.step_sum(&steps.data, shadow));
        data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
    }
}
