//! Translation: an access's address into physical line pieces. `Addr::Phys` as is,
//! `Addr::Virt` through the TLB and, on a miss, a page walk that stops issue for
//! `page_walk_cycles`; `Addr::DirectMapOf` through the kernel's direct map first. Faults are
//! found here and handed back; the caller decides whether they are recorded (the correct path)
//! or dropped (prefetches, speculative loads, shadows). See "Translation" in the
//! [parent module](super).

use super::Core;
use super::CoreCtx;
use crate::kernel::{Access, Kernel, Pte};
use crate::program::{Addr, Fault, FaultKind};
use sim_core::{Cycle, LINE_BYTES, PhysAddr, VirtAddr};

/// One line piece of an access.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Piece {
    pub(super) pa: PhysAddr,
    pub(super) len: u8,
    /// Offset of the piece's first byte in the access.
    pub(super) off: u8,
}

/// A translated access: its first byte's physical address and its line pieces (0 to 2).
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Pieces {
    pub(super) first: PhysAddr,
    pub(super) p: [Piece; 2],
    pub(super) n: u8,
}

impl Pieces {
    pub(super) fn as_slice(&self) -> &[Piece] {
        &self.p[..usize::from(self.n)]
    }
}

/// A translation's outcome.
pub(super) enum Xl {
    Ok(Pieces),
    Fault(Fault),
    /// A page walk is under way.
    Wait,
}

/// A translation in progress (kept across cycles while a page walk runs).
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct XlateState {
    dm_va: Option<VirtAddr>,
    ptes: [Option<Pte>; 2],
    pub(super) walk_until: Option<Cycle>,
}

impl Core {
    /// Splits `[start, start + len)` into line pieces, mapping each through `map`; `Err` names
    /// the first address whose physical address is outside the machine.
    fn build_pieces(
        &self,
        start: VirtAddr,
        len: usize,
        map: impl Fn(VirtAddr) -> PhysAddr,
    ) -> Result<Pieces, VirtAddr> {
        let first = map(start);
        if !self.pa_ok(first) {
            return Err(start);
        }
        let mut p = Pieces {
            first,
            ..Pieces::default()
        };
        let (mut off, mut a) = (0usize, start);
        while off < len && usize::from(p.n) < p.p.len() {
            let take = (LINE_BYTES - a.line_offset()).min(len - off);
            let pa = map(a);
            if !self.pa_ok(pa) {
                return Err(a);
            }
            p.p[usize::from(p.n)] = Piece {
                pa,
                len: take as u8,
                off: off as u8,
            };
            p.n += 1;
            off += take;
            a = a.wrapping_add(take as u64);
        }
        Ok(p)
    }

    /// Translates an access of `len` bytes (cut to 64) at `at`. `st` keeps a translation's
    /// progress across cycles.
    fn translate(
        &mut self,
        now: Cycle,
        kernel: &Kernel,
        at: Addr,
        len: u8,
        access: Access,
        st: &mut XlateState,
    ) -> Xl {
        let len = usize::from(len).min(LINE_BYTES);
        let (start, virt) = match at {
            // Paging off: the linear address is the physical one; ring 0 and the attacker only.
            Addr::Phys(pa) if !self.credentials.physical_addresses() => {
                return Xl::Fault(Fault {
                    addr: VirtAddr::new(pa.raw()),
                    kind: FaultKind::Privilege,
                });
            }
            Addr::Phys(pa) => (VirtAddr::new(pa.raw()), false),
            Addr::Virt(va) => (va, true),
            Addr::DirectMapOf(user_va) => {
                let va = match st.dm_va {
                    Some(va) => va,
                    None => match kernel.direct_map_of_in(self.credentials.process, user_va) {
                        Ok(va) => {
                            st.dm_va = Some(va);
                            va
                        }
                        Err(f) => return Xl::Fault(f),
                    },
                };
                (va, true)
            }
        };
        let not_mapped = |addr| {
            Xl::Fault(Fault {
                addr,
                kind: FaultKind::NotMapped,
            })
        };
        let Some(last) = start.checked_add(len.max(1) as u64 - 1) else {
            return not_mapped(start);
        };
        if !virt {
            return match self.build_pieces(start, len, |a| PhysAddr::new(a.raw())) {
                Ok(p) => Xl::Ok(p),
                Err(a) => not_mapped(a),
            };
        }
        let pages = [start.page_base(), last.page_base()];
        let n = if pages[0] == pages[1] { 1 } else { 2 };
        for k in 0..n {
            let fault_va = if k == 0 { start } else { pages[1] };
            if st.ptes[k].is_none() {
                if st.walk_until.is_none() {
                    if let Some(pte) = self.tlb.lookup(pages[k]) {
                        self.stats.tlb_hits += 1;
                        st.ptes[k] = Some(pte);
                    } else {
                        self.stats.tlb_misses += 1;
                        st.walk_until = Some(now.plus(self.cfg.page_walk_cycles));
                    }
                }
                if let Some(until) = st.walk_until {
                    if now < until {
                        self.wake_at(until);
                        return Xl::Wait;
                    }
                    st.walk_until = None;
                    match kernel.walk_in(self.credentials.process, fault_va) {
                        Ok(pte) => {
                            self.tlb.insert(pages[k], pte);
                            st.ptes[k] = Some(pte);
                        }
                        Err(kind) => {
                            return Xl::Fault(Fault {
                                addr: fault_va,
                                kind,
                            });
                        }
                    }
                }
            }
            if let Some(pte) = st.ptes[k]
                && let Err(kind) = pte.permits(access, self.credentials.ring0)
            {
                return Xl::Fault(Fault {
                    addr: fault_va,
                    kind,
                });
            }
        }
        let ptes = st.ptes;
        let map = |a: VirtAddr| {
            let k = usize::from(a.page_base() != pages[0]);
            PhysAddr::new(
                ptes[k]
                    .map_or(0, |p| p.frame.raw())
                    .wrapping_add(a.page_offset()),
            )
        };
        match self.build_pieces(start, len, map) {
            Ok(p) => Xl::Ok(p),
            Err(a) => not_mapped(a),
        }
    }

    pub(super) fn translate_main(
        &mut self,
        now: Cycle,
        ctx: &CoreCtx<'_>,
        at: Addr,
        len: u8,
        access: Access,
    ) -> Xl {
        let mut st = self.xlate;
        let r = self.translate(now, ctx.kernel, at, len, access, &mut st);
        self.xlate = st;
        r
    }

    pub(super) fn translate_shadow(
        &mut self,
        now: Cycle,
        ctx: &CoreCtx<'_>,
        at: Addr,
        len: u8,
        access: Access,
    ) -> Xl {
        let mut st = self.shadow_xlate;
        let r = self.translate(now, ctx.kernel, at, len, access, &mut st);
        self.shadow_xlate = st;
        r
    }
}
