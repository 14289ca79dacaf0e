//! The DIMM bus port: every DRAM transaction passes through it, and probes attached to it see
//! (and may replace) the 64 bytes on the wires.
//!
//! A probe sees what an interposer on the DIMM bus would see: the cycle, read or write, the
//! DRAM address (addresses are not encrypted; the KeyID never leaves the SoC) and the bytes on
//! the bus (ciphertext, or plaintext for unencrypted KeyIDs). A probe that changes the bytes of a
//! write changes what the DIMM stores; one that changes the bytes of a read changes what the
//! controller decrypts: an active attack, which the controller reports as a
//! [`sim_core::MemEvent::BusRewritten`]. Probes run in the order they were attached.

use sim_core::{Counter, Cycle, DramAddr, LineBytes, MemOp};
use std::any::Any;

/// One line crossing the DIMM bus.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BusTransaction {
    /// The cycle the data is on the bus.
    pub cycle: Cycle,
    /// Read (DIMM to controller) or write (controller to DIMM).
    pub op: MemOp,
    /// The DRAM address (KeyID bits cleared).
    pub addr: DramAddr,
    /// The 64 bytes on the bus.
    pub data: LineBytes,
}

/// Something attached to the DIMM bus.
pub trait BusProbe: Any + Send {
    /// Called for every transaction, before a write reaches the DIMM and before a read reaches
    /// the decryption engine. May change `txn.data`.
    fn observe(&mut self, txn: &mut BusTransaction);
}

/// Handle of an attached probe.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ProbeId(usize);

/// The bus port of one memory controller.
#[derive(Default)]
pub struct BusPort {
    probes: Vec<Option<Box<dyn BusProbe>>>,
    transactions: Counter,
}

impl std::fmt::Debug for BusPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusPort")
            .field("probes", &self.probes.iter().flatten().count())
            .field("transactions", &self.transactions.get())
            .finish()
    }
}

impl BusPort {
    /// A port with no probes.
    pub fn new() -> BusPort {
        BusPort::default()
    }

    /// Attaches a probe; it sees every later transaction.
    pub fn attach(&mut self, probe: Box<dyn BusProbe>) -> ProbeId {
        self.probes.push(Some(probe));
        ProbeId(self.probes.len() - 1)
    }

    /// Detaches a probe and gives it back.
    pub fn detach(&mut self, id: ProbeId) -> Option<Box<dyn BusProbe>> {
        self.probes.get_mut(id.0)?.take()
    }

    /// The attached probe `id`, if it is a `T`.
    pub fn probe<T: BusProbe>(&self, id: ProbeId) -> Option<&T> {
        let probe: &dyn Any = self.probes.get(id.0)?.as_deref()?;
        probe.downcast_ref::<T>()
    }

    /// The attached probe `id`, mutably, if it is a `T`.
    pub fn probe_mut<T: BusProbe>(&mut self, id: ProbeId) -> Option<&mut T> {
        let probe: &mut dyn Any = self.probes.get_mut(id.0)?.as_deref_mut()?;
        probe.downcast_mut::<T>()
    }

    /// Puts a transaction on the bus: every probe sees it, in attach order. Returns whether a
    /// probe changed its bytes (an active attack on the bus).
    pub fn carry(&mut self, txn: &mut BusTransaction) -> bool {
        self.transactions.inc();
        if self.probes.is_empty() {
            return false;
        }
        let sent = txn.data;
        for probe in self.probes.iter_mut().flatten() {
            probe.observe(txn);
        }
        txn.data != sent
    }

    /// Transactions carried so far.
    pub fn transactions(&self) -> u64 {
        self.transactions.get()
    }
}

/// A probe that records transactions, up to a limit (so a long run cannot exhaust memory),
/// within a window of cycles (an interposer attached for part of a run).
#[derive(Clone, Debug)]
pub struct BusRecorder {
    log: Vec<BusTransaction>,
    limit: usize,
    dropped: u64,
    /// Transactions at cycles in `from..until` are recorded; the others are not seen.
    from: Cycle,
    until: Cycle,
}

impl BusRecorder {
    /// Records at most `limit` transactions; later ones are counted as dropped.
    pub fn with_limit(limit: usize) -> BusRecorder {
        BusRecorder {
            log: Vec::new(),
            limit,
            dropped: 0,
            from: Cycle::ZERO,
            until: Cycle::NEVER,
        }
    }

    /// The same recorder, seeing only transactions at cycles `from..until` (the interposer is
    /// attached at `from` and removed at `until`).
    pub fn window(self, from: Cycle, until: Cycle) -> BusRecorder {
        BusRecorder {
            from,
            until,
            ..self
        }
    }

    /// The recorded transactions, in bus order.
    pub fn log(&self) -> &[BusTransaction] {
        &self.log
    }

    /// Transactions seen after the limit was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl BusProbe for BusRecorder {
    fn observe(&mut self, txn: &mut BusTransaction) {
        if txn.cycle < self.from || txn.cycle >= self.until {
            return;
        }
        if self.log.len() < self.limit {
            self.log.push(txn.clone());
        } else {
            self.dropped += 1;
        }
    }
}
