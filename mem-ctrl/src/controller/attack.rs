//! What an attacker with physical access does to the memory side: writing a line's DIMM cells
//! directly (replay, splice, bit flips), a faulty DIMM that ignores an address bit (BadRAM),
//! and the power cycle of a cold boot. Sources: mktme-facts.md section 6 (replay and splice
//! under deterministic XTS, bit flips garbling one 16-byte block, BadRAM, cold boot and TME's
//! key restore).
//!
//! Every change these make to what the DIMMs return is reported as a [`MemEvent`] at the cycle
//! it happens ([`MemEvent::DimmWritten`], [`MemEvent::DimmAlias`]; a bus probe that rewrites a
//! transfer is [`MemEvent::BusRewritten`], reported by the bus port), so that an observer (the
//! coherency checker) can trace a surprising load to the attack behind it. None of them is
//! seen by the memory controller: a write of the line still in its write queue reaches the
//! DIMMs later and lands over an attacker's bytes, exactly as on real hardware.

use super::MemorySystem;
use crate::config::MemCtrlConfig;
use crate::dram::DramController;
use crate::key_table::KeyTable;
use sim_core::{BitRange, Cycle, DimmWrite, DramAddr, LINE_BYTES, LineBytes, MemEvent, MemOp};
use std::sync::Arc;

/// A ghost address bit that cannot be installed (see [`MemorySystem::install_ghost_bit`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GhostBitError {
    /// The bit selects a byte within a line; DIMM cells are addressed by whole lines here.
    #[error("ghost bit {bit} is inside a 64-byte line (bits 0..=5): expected bit 6 or above")]
    InsideLine {
        /// The bit asked for.
        bit: u32,
    },
    /// Setting the bit leaves the installed DRAM: the ghost addresses would not exist.
    #[error(
        "ghost bit {bit} is beyond the installed DRAM ({dram_bytes:#x} bytes): expected a bit \
         below {top}, so that both addresses of a pair lie inside DRAM"
    )]
    BeyondDram {
        /// The bit asked for.
        bit: u32,
        /// Bytes of DRAM installed.
        dram_bytes: u64,
        /// The first bit whose setting leaves DRAM.
        top: u32,
    },
    /// The bit picks the memory controller: the two addresses of a pair would be served by
    /// different controllers, whose DIMMs are different modules.
    #[error(
        "ghost bit {bit} selects the memory controller (bits {low}..{end} interleave the \
         controllers): expected a bit of one controller's DRAM address"
    )]
    ControllerSelect {
        /// The bit asked for.
        bit: u32,
        /// The controller-select field's lowest bit.
        low: u32,
        /// One past its highest bit.
        end: u32,
    },
}

/// The one-bit field of a ghost bit that faulty DIMMs of this DRAM can ignore.
fn ghost_bit(
    bit: u32,
    dram_bytes: u64,
    controller_field: BitRange,
) -> Result<BitRange, GhostBitError> {
    if bit < LINE_BYTES.trailing_zeros() {
        return Err(GhostBitError::InsideLine { bit });
    }
    // DRAM is a power of two (controllers and each one's capacity are), so its top address bit
    // is exact.
    let top = 63 - dram_bytes.leading_zeros();
    if bit >= top {
        return Err(GhostBitError::BeyondDram {
            bit,
            dram_bytes,
            top,
        });
    }
    let ghost = BitRange::new(bit, 1).expect("bit < 64 checked above");
    if ghost.overlaps(controller_field) {
        return Err(GhostBitError::ControllerSelect {
            bit,
            low: controller_field.low(),
            end: controller_field.end(),
        });
    }
    Ok(ghost)
}

impl MemCtrlConfig {
    /// Whether faulty DIMMs of this memory can ignore DRAM address bit `bit`
    /// ([`MemorySystem::install_ghost_bit`] accepts it), for configurations checked before a
    /// system is built.
    pub fn check_ghost_bit(&self, bit: u32) -> Result<(), GhostBitError> {
        ghost_bit(bit, self.dram_bytes(), self.controller_field()).map(|_| ())
    }
}

impl MemorySystem {
    /// Installs faulty DIMMs that ignore DRAM address bit `bit` (BadRAM: a module whose SPD
    /// claims more capacity than it has, or a wiring fault): from now on an access to an
    /// address with the bit set reaches the cells of the address with it clear, on every
    /// controller. Each such access is reported as a [`MemEvent::DimmAlias`]. The memory
    /// controllers do not know: they encrypt with the tweak of the address they were asked
    /// for, and their queues keep the two addresses apart.
    pub fn install_ghost_bit(&mut self, bit: u32) -> Result<(), GhostBitError> {
        let ghost = ghost_bit(bit, self.dram_bytes, self.controller_field)?;
        for mc in &mut self.controllers {
            mc.ghost_bit = Some(ghost);
        }
        Ok(())
    }

    /// The line whose DIMM cells an access to `addr` reaches: `addr`'s own, unless a faulty
    /// DIMM ignores one of its bits.
    pub fn dimm_cells(&self, addr: DramAddr) -> DramAddr {
        self.controllers[self.controller_of(addr)].cells(addr)
    }

    /// Writes `bytes` into the DIMM cells that `addr` (line-aligned) reaches, at `now`, as an
    /// attacker holding the DIMMs (or driving the bus between the controller's transfers)
    /// does: no bus transaction, no statistics. Reported as [`MemEvent::DimmWritten`] for the
    /// cells' line (after a [`MemEvent::DimmAlias`] when a faulty DIMM redirects `addr`).
    pub fn write_dimm(&mut self, now: Cycle, addr: DramAddr, bytes: &LineBytes, by: DimmWrite) {
        debug_assert!(addr.is_line_aligned(), "DIMM write at unaligned {addr}");
        let mc = self.controller_of(addr);
        let mc = &mut self.controllers[mc];
        let cells = mc.cells_reporting(now, addr, MemOp::Write);
        mc.store.write(cells, bytes);
        mc.events.push(MemEvent::DimmWritten {
            cycle: now,
            line: cells,
            by,
        });
        self.collect_controller_events();
    }

    /// Every line the DIMMs hold that was ever written, in address order (the rest read as
    /// zeros): what someone who takes the DIMMs reads off them.
    pub fn dimm_contents(&self) -> Vec<(DramAddr, LineBytes)> {
        let (start, end) = (DramAddr::new(0), DramAddr::new(self.dram_bytes));
        let mut lines: Vec<(DramAddr, LineBytes)> = self
            .controllers
            .iter()
            .flat_map(|mc| mc.store().dump(start, end))
            .collect();
        lines.sort_unstable_by_key(|(addr, _)| *addr);
        lines
    }

    /// DIMM channels in the package: each controller's channels, numbered controller by
    /// controller (controller `c`'s channel `k` is `c * channels per controller + k`).
    pub fn channels(&self) -> u32 {
        let per = self.dram_config.params().geometry.channels;
        per.saturating_mul(self.controllers.len() as u32)
    }

    /// The channel (numbered as in [`MemorySystem::channels`]) whose bus carries the line at
    /// `addr`: where a DIMM interposer must sit to see it.
    pub fn channel_of(&self, addr: DramAddr) -> u32 {
        let per = self.dram_config.params().geometry.channels;
        let local = self.local_addr(addr);
        let channel = self
            .dram_config
            .mapping()
            .decode(local)
            .map_or(0, |loc| loc.channel);
        self.controller_of(addr) as u32 * per + channel
    }

    /// A power cycle, as a cold boot attack makes one: the power is cut and the machine boots
    /// again, while the DIMMs keep what they held (DRAM remanence). Returns the lines whose
    /// writes the controllers had accepted and not yet put on the bus: they never reach the
    /// DIMMs.
    ///
    /// Everything on the chip is lost: the requests in flight (reads, writes, responses, a
    /// PCONFIG's pending update) and every key-table entry, which returns to TME behaviour.
    /// TME activates again with the same settings and a new platform key from the seed's
    /// `mem.tme.reboot` stream, or, with `restore_platform_key`, the key saved for standby
    /// (TME_ACTIVATE key select = 1; MKTME keys are never saved). The DIMMs, a faulty DIMM's
    /// ghost bit and the bus probes stay. Nothing is reported: the caches and cores lose
    /// everything too, and the run that drove this system is over.
    pub fn power_cycle(&mut self, restore_platform_key: bool) -> Vec<DramAddr> {
        let lost = self.pending_write_lines();
        let tme = Arc::new(
            self.tme
                .power_cycle(restore_platform_key, &mut self.reboot_rng),
        );
        let max_keyid = self.layout.max_keyid();
        for mc in &mut self.controllers {
            mc.keys = KeyTable::new(tme.clone(), max_keyid);
            mc.dram = DramController::new(&self.dram_config, self.encryption);
            mc.reads.clear();
            mc.writes.clear();
            mc.newest_write.clear();
            mc.completions.clear();
            mc.refused.clear();
            mc.events.clear();
        }
        self.tme = tme;
        self.pending = None;
        self.responses = sim_core::EventQueue::new();
        self.events.clear();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_table::TmeState;
    use sim_core::{KeyId, RngFactory};

    fn system() -> MemorySystem {
        MemorySystem::new(&MemCtrlConfig::default(), RngFactory::new(3)).unwrap()
    }

    #[test]
    fn a_ghost_bit_maps_two_addresses_to_one_line_of_cells_and_says_so() {
        let mut mem = system();
        let bit = 30;
        mem.install_ghost_bit(bit).unwrap();
        let layout = mem.layout();
        let low = DramAddr::new(0x4000);
        let high = DramAddr::new(0x4000 | 1 << bit);
        assert_eq!(mem.dimm_cells(high), low);
        assert_eq!(mem.dimm_cells(low), low);
        let pa = |a| layout.compose(KeyId::new(0), a).unwrap();
        mem.write_line_untimed(Cycle::new(10), pa(low), &[5; 64]);
        // Read through the ghost address: the same cells, decrypted with the other tweak.
        let ghost = mem.read_line_untimed(Cycle::new(20), pa(high));
        assert_ne!(ghost, [5; 64]);
        assert_eq!(mem.dimm_line(high), mem.dimm_line(low));
        let mut events = Vec::new();
        mem.take_events(&mut events);
        assert_eq!(
            events,
            [MemEvent::DimmAlias {
                cycle: Cycle::new(20),
                addr: high,
                cells: low,
                op: MemOp::Read
            }]
        );
    }

    #[test]
    fn ghost_bits_that_cannot_alias_are_refused() {
        let mut mem = system();
        assert_eq!(
            mem.install_ghost_bit(5),
            Err(GhostBitError::InsideLine { bit: 5 })
        );
        let top = 63 - mem.dram_bytes().leading_zeros();
        assert!(matches!(
            mem.install_ghost_bit(top),
            Err(GhostBitError::BeyondDram { .. })
        ));
    }

    #[test]
    fn dimm_writes_are_reported_for_the_cells_they_change() {
        let mut mem = system();
        let line = DramAddr::new(0x8000);
        mem.write_dimm(
            Cycle::new(7),
            line,
            &[9; 64],
            DimmWrite::Splice {
                from: DramAddr::new(0x4000),
            },
        );
        assert_eq!(mem.dimm_line(line), [9; 64]);
        assert_eq!(mem.dimm_contents(), vec![(line, [9; 64])]);
        let mut events = Vec::new();
        mem.take_events(&mut events);
        assert_eq!(
            events,
            [MemEvent::DimmWritten {
                cycle: Cycle::new(7),
                line,
                by: DimmWrite::Splice {
                    from: DramAddr::new(0x4000)
                }
            }]
        );
    }

    #[test]
    fn a_power_cycle_keeps_the_dimms_and_loses_the_keys_unless_the_platform_key_is_restored() {
        for restore in [false, true] {
            let mut mem = system();
            let layout = mem.layout();
            let pa = layout
                .compose(KeyId::new(0), DramAddr::new(0x1000))
                .unwrap();
            mem.write_line_untimed(Cycle::new(1), pa, &[0x42; 64]);
            let stored = mem.dimm_line(DramAddr::new(0x1000));
            assert!(mem.power_cycle(restore).is_empty());
            assert_eq!(mem.dimm_line(DramAddr::new(0x1000)), stored);
            let after = mem.peek_line(pa);
            assert_eq!(after == [0x42; 64], restore, "restore {restore}");
        }
    }

    /// A probe that flips the first bit of every read of one line.
    struct Flipper(DramAddr);

    impl crate::bus::BusProbe for Flipper {
        fn observe(&mut self, txn: &mut crate::bus::BusTransaction) {
            if txn.op == MemOp::Read && txn.addr == self.0 {
                txn.data[0] ^= 1;
            }
        }
    }

    #[test]
    fn a_probe_that_rewrites_a_transfer_is_reported() {
        let mut mem = system();
        let line = DramAddr::new(0x2000);
        let pa = mem.layout().compose(KeyId::new(0), line).unwrap();
        mem.controller_mut(0)
            .bus_mut()
            .attach(Box::new(Flipper(line)));
        mem.write_line_untimed(Cycle::new(1), pa, &[0x11; 64]);
        let read = mem.read_line_untimed(Cycle::new(2), pa);
        // One flipped ciphertext bit garbles its 16-byte block only.
        assert_ne!(read[..16], [0x11; 16]);
        assert_eq!(read[16..], [0x11; 48]);
        let mut events = Vec::new();
        mem.take_events(&mut events);
        assert_eq!(
            events,
            [MemEvent::BusRewritten {
                cycle: Cycle::new(2),
                line,
                op: MemOp::Read
            }]
        );
    }

    #[test]
    fn channels_are_numbered_across_controllers() {
        let mem = system();
        assert_eq!(mem.channels(), 1);
        assert_eq!(mem.channel_of(DramAddr::new(0x12340)), 0);
    }

    #[test]
    fn tme_power_cycle_draws_a_new_platform_key() {
        let mut rng = RngFactory::new(1).fork("a");
        let tme = TmeState::activate(MemCtrlConfig::default().tme, &mut rng);
        let again = tme.power_cycle(false, &mut rng);
        let kept = tme.power_cycle(true, &mut rng);
        let key = |t: &TmeState| t.platform_key().unwrap().data_key().to_vec();
        assert_ne!(key(&again), key(&tme));
        assert_eq!(key(&kept), key(&tme));
    }
}
