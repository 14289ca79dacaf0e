//! Memory controllers and the package's memory system: where the functional path (keys,
//! encryption, DIMM contents, bus) meets the DRAM timing model.
//!
//! ```text
//!          MemRequest (PhysAddr = KeyID | DRAM address), core clock
//!                     |
//!              MemorySystem ---- PCONFIG unit (lock, RNG) --> every KeyTable, whole entries
//!           /         |        \            (interleave bits pick the controller)
//!   MemoryController  ...  MemoryController
//!     KeyTable     KeyID -> key; the write is encrypted when it enters the controller
//!     DramController  timing: queues, banks, refresh, AES stage (DRAM clock)
//!     BusPort      probes see (cycle, R/W, DRAM address, bytes) when the burst is on the bus
//!     DramStore    ciphertext (or plaintext for unencrypted KeyIDs)
//! ```
//!
//! Timed path ([`MemorySystem::try_submit`], [`MemorySystem::tick`]): a write is encrypted with
//! the key in force when the controller accepts it, crosses the bus and lands in the store when
//! the DRAM model puts its burst on the bus. A read takes the store's bytes when its burst
//! crosses the bus (or a pending write's bytes, when the controller forwards them), decrypts
//! them with the key in force then, and is answered at the cycle the model says (after the AES
//! stage). Completions are applied in bus order, so the store always holds what the bus last
//! carried. Every cycle in this interface is a core cycle.
//!
//! Untimed path ([`MemorySystem::write_line_untimed`], [`MemorySystem::read_line_untimed`]): the
//! same functional steps at a cycle the caller chooses, without the DRAM model, for tests and
//! for setting up memory contents.
//!
//! `describe` (a submodule) is how the memory system and each controller appear in the dump
//! of a stopped run ([`sim_core::TimedComponent`]); `attack` holds what an attacker with the
//! DIMMs does to them (writing cells, a faulty DIMM's ghost address bit, a cold boot's power
//! cycle), each reported as a [`MemEvent`] so that observers can trace what followed to it.

mod attack;
mod describe;

pub use attack::GhostBitError;

use crate::bus::{BusPort, BusTransaction};
use crate::config::{MemCtrlConfig, MemCtrlConfigError};
use crate::dram::{
    CompletionSource, DramCompletion, DramConfig, DramController, DramRequest, Encryption,
    QueueFull,
};
use crate::key_table::{
    Key, KeyMode, KeyTable, LineTransform, PconfigResult, PconfigUnit, PendingUpdate, TmeState,
};
use crate::pconfig::PconfigCall;
use crate::store::DramStore;
use sim_core::{
    AddressLayout, BitRange, ClockRatio, Counter, Cycle, DetHashMap, DramAddr, EventQueue, KeyId,
    LineBytes, MemEvent, MemOp, MemRequest, MemResponse, PhysAddr, RequestId, RngFactory, SimRng,
    StatsReport,
};
use std::sync::Arc;

/// Per-controller counts.
#[derive(Clone, Default, Debug)]
pub struct ControllerStats {
    /// Lines read from DRAM (timed reads answered by forwarding included).
    pub reads: Counter,
    /// Lines written to DRAM.
    pub writes: Counter,
    /// Lines encrypted on the way out.
    pub lines_encrypted: Counter,
    /// Lines decrypted on the way in.
    pub lines_decrypted: Counter,
    /// Lines that crossed the bus as plaintext (NO_ENCRYPT, bypass, exclusion, TME off).
    pub lines_plaintext: Counter,
    /// Timed requests refused at least once because their DRAM queue was full (each request
    /// counted once, however often its requester retried: the count does not depend on the
    /// caller's retry policy).
    pub queue_full: Counter,
}

/// A timed read waiting for its data.
#[derive(Copy, Clone, Debug)]
struct PendingRead {
    keyid: KeyId,
    addr: DramAddr,
    /// The newest write to the line in flight when the read was accepted: what the read
    /// returns if the DRAM model answers it from the write queue. Taken at acceptance, so that
    /// a write accepted after the read (before its completion) is never read early.
    forwardable: Option<LineBytes>,
}

/// The bytes a timed write will put on the bus, already encrypted.
#[derive(Copy, Clone, Debug)]
struct PendingWrite {
    addr: DramAddr,
    bytes: LineBytes,
}

/// One memory controller: its key table, its DRAM (contents and timing) and its bus.
#[derive(Debug)]
pub struct MemoryController {
    index: usize,
    keys: KeyTable,
    store: DramStore,
    bus: BusPort,
    dram: DramController,
    reads: DetHashMap<RequestId, PendingRead>,
    writes: DetHashMap<RequestId, PendingWrite>,
    /// Per DRAM line with writes in flight: how many, and the newest one's bytes (what a read
    /// accepted now would be forwarded from the write queue).
    newest_write: DetHashMap<u64, (u32, LineBytes)>,
    completions: Vec<DramCompletion>,
    /// Requests refused and not yet accepted (so each is counted once in `queue_full`). A
    /// caller offers a refused request again until it is accepted, and the machine holds back
    /// the ones behind it, so this holds few: a list is cheaper to search than a hash set is to
    /// update (the end-of-run drain has every write-back refused at least once).
    refused: Vec<RequestId>,
    stats: ControllerStats,
    /// A faulty DIMM's ghost address bit: the DIMMs ignore this bit of the DRAM address, so an
    /// address with it set reaches the cells of the address with it clear (BadRAM).
    ghost_bit: Option<BitRange>,
    /// Events of this controller's bus and DIMMs (attacks), until the memory system takes them.
    events: Vec<MemEvent>,
}

impl MemoryController {
    fn new(index: usize, keys: KeyTable, dram: DramController) -> MemoryController {
        MemoryController {
            index,
            keys,
            store: DramStore::new(),
            bus: BusPort::new(),
            dram,
            reads: DetHashMap::default(),
            writes: DetHashMap::default(),
            newest_write: DetHashMap::default(),
            completions: Vec::new(),
            refused: Vec::new(),
            stats: ControllerStats::default(),
            ghost_bit: None,
            events: Vec::new(),
        }
    }

    /// This controller's number in the package.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The key table.
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }

    /// The DIMMs' contents.
    pub fn store(&self) -> &DramStore {
        &self.store
    }

    /// The DIMMs' contents, for someone holding the DIMMs (cold boot, DIMM swap).
    pub fn store_mut(&mut self) -> &mut DramStore {
        &mut self.store
    }

    /// The DIMM bus.
    pub fn bus(&self) -> &BusPort {
        &self.bus
    }

    /// The DIMM bus, to attach or query probes.
    pub fn bus_mut(&mut self) -> &mut BusPort {
        &mut self.bus
    }

    /// The DRAM timing model.
    pub fn dram(&self) -> &DramController {
        &self.dram
    }

    /// Counts.
    pub fn stats(&self) -> &ControllerStats {
        &self.stats
    }

    /// The lines (package-wide DRAM addresses) with a write this controller accepted whose
    /// bytes have not reached the DIMMs yet, in address order: what a DRAM dump taken now
    /// does not show.
    pub fn pending_write_lines(&self) -> Vec<DramAddr> {
        let mut lines: Vec<DramAddr> = self
            .newest_write
            .keys()
            .map(|&line| DramAddr::from_line_index(line))
            .collect();
        lines.sort_unstable();
        lines
    }

    /// The line whose DIMM cells an access to `addr` reaches: `addr` itself, unless a faulty
    /// DIMM ignores an address bit ([`MemorySystem::install_ghost_bit`]).
    #[inline]
    pub fn cells(&self, addr: DramAddr) -> DramAddr {
        match self.ghost_bit {
            None => addr,
            Some(bit) => DramAddr::new(bit.insert(addr.raw(), 0)),
        }
    }

    /// The cells an access to `addr` reaches, reporting a faulty DIMM's redirection.
    fn cells_reporting(&mut self, cycle: Cycle, addr: DramAddr, op: MemOp) -> DramAddr {
        let cells = self.cells(addr);
        if cells != addr {
            self.events.push(MemEvent::DimmAlias {
                cycle,
                addr,
                cells,
                op,
            });
        }
        cells
    }

    /// Encrypts a line for `keyid` (or leaves it plaintext), counting which.
    fn encrypt(&mut self, keyid: KeyId, addr: DramAddr, bytes: &mut LineBytes) {
        match self.keys.transform(keyid, addr) {
            LineTransform::Encrypt(cipher) => {
                cipher.encrypt_line(addr, bytes);
                self.stats.lines_encrypted.inc();
            }
            LineTransform::Plaintext(_) => self.stats.lines_plaintext.inc(),
        }
    }

    /// Decrypts a line for `keyid` (or leaves it plaintext), counting which.
    fn decrypt(&mut self, keyid: KeyId, addr: DramAddr, bytes: &mut LineBytes) {
        match self.keys.transform(keyid, addr) {
            LineTransform::Encrypt(cipher) => {
                cipher.decrypt_line(addr, bytes);
                self.stats.lines_decrypted.inc();
            }
            LineTransform::Plaintext(_) => self.stats.lines_plaintext.inc(),
        }
    }

    /// Puts `bytes` on the bus at `cycle`, lets the probes see and change them, and stores the
    /// result (in the cells the DIMM decodes `addr` to).
    fn bus_write(&mut self, cycle: Cycle, addr: DramAddr, bytes: LineBytes) {
        let mut txn = BusTransaction {
            cycle,
            op: MemOp::Write,
            addr,
            data: bytes,
        };
        if self.bus.carry(&mut txn) {
            self.events.push(MemEvent::BusRewritten {
                cycle,
                line: addr,
                op: MemOp::Write,
            });
        }
        let cells = self.cells_reporting(cycle, addr, MemOp::Write);
        self.store.write(cells, &txn.data);
        self.stats.writes.inc();
    }

    /// Takes the stored bytes (of the cells the DIMM decodes `addr` to) onto the bus at
    /// `cycle` and returns what the probes let through.
    fn bus_read(&mut self, cycle: Cycle, addr: DramAddr) -> LineBytes {
        let cells = self.cells_reporting(cycle, addr, MemOp::Read);
        let mut txn = BusTransaction {
            cycle,
            op: MemOp::Read,
            addr,
            data: self.store.read(cells),
        };
        if self.bus.carry(&mut txn) {
            self.events.push(MemEvent::BusRewritten {
                cycle,
                line: addr,
                op: MemOp::Read,
            });
        }
        self.stats.reads.inc();
        txn.data
    }

    /// Untimed: encrypts `plaintext` for `keyid` and writes it to the line at `addr`; the bus
    /// carries it at cycle `at`.
    pub fn write_line_untimed(
        &mut self,
        at: Cycle,
        keyid: KeyId,
        addr: DramAddr,
        plaintext: &LineBytes,
    ) {
        debug_assert!(
            addr.is_line_aligned(),
            "controller write at unaligned {addr}"
        );
        let mut bytes = *plaintext;
        self.encrypt(keyid, addr, &mut bytes);
        self.bus_write(at, addr, bytes);
    }

    /// Untimed: reads the line at `addr` (the bus carries it at cycle `at`) and decrypts it for
    /// `keyid`.
    pub fn read_line_untimed(&mut self, at: Cycle, keyid: KeyId, addr: DramAddr) -> LineBytes {
        debug_assert!(
            addr.is_line_aligned(),
            "controller read at unaligned {addr}"
        );
        let mut bytes = self.bus_read(at, addr);
        self.decrypt(keyid, addr, &mut bytes);
        bytes
    }

    /// What a read of the line at `addr` through `keyid` would return, without a read: no bus
    /// transaction, no statistics (for reports and expectations, which must not disturb what
    /// they observe).
    pub fn peek_line(&self, keyid: KeyId, addr: DramAddr) -> LineBytes {
        let mut bytes = self.store.read(self.cells(addr));
        if let LineTransform::Encrypt(cipher) = self.keys.transform(keyid, addr) {
            cipher.decrypt_line(addr, &mut bytes);
        }
        bytes
    }

    fn report_stats(&self, report: &mut StatsReport) {
        let prefix = format!("mc{}", self.index);
        let s = &self.stats;
        report.count(&prefix, "reads", s.reads.get());
        report.count(&prefix, "writes", s.writes.get());
        report.count(&prefix, "lines_encrypted", s.lines_encrypted.get());
        report.count(&prefix, "lines_decrypted", s.lines_decrypted.get());
        report.count(&prefix, "lines_plaintext", s.lines_plaintext.get());
        report.count(&prefix, "queue_full", s.queue_full.get());
        report.count(&prefix, "bus_transactions", self.bus.transactions());
        report.count(
            &prefix,
            "dram_lines_touched",
            self.store.touched_lines() as u64,
        );
        self.dram.report_stats(&format!("{prefix}.dram"), report);
    }
}

/// The memory system of one package: its controllers and the PCONFIG machinery that programs
/// all their key tables at once.
#[derive(Debug)]
pub struct MemorySystem {
    layout: AddressLayout,
    tme: Arc<TmeState>,
    controllers: Vec<MemoryController>,
    controller_field: BitRange,
    dram_bytes: u64,
    /// Core cycles : DRAM cycles.
    clock: ClockRatio,
    /// What each controller's DRAM timing model is built from (again after a power cycle).
    dram_config: DramConfig,
    encryption: Encryption,
    /// The platform key of the next boot (a power cycle without key restore).
    reboot_rng: SimRng,
    pconfig: PconfigUnit,
    pending: Option<PendingUpdate>,
    /// Timed responses waiting for their `done` cycle (core clock).
    responses: EventQueue<MemResponse>,
    /// What happened that observers must learn, oldest first, until taken.
    events: Vec<MemEvent>,
}

impl MemorySystem {
    /// Boots the memory system: validates the configuration, activates TME (generating the
    /// platform key from the `mem.tme` stream of `rng`) and puts every KeyID in TME behaviour.
    pub fn new(
        config: &MemCtrlConfig,
        rng: RngFactory,
    ) -> Result<MemorySystem, MemCtrlConfigError> {
        config.validate()?;
        let layout = config.layout;
        let tme = Arc::new(TmeState::activate(config.tme, &mut rng.fork("mem.tme")));
        // The AES stage's timing applies whenever the hardware encrypts at all; lines that
        // cross the bus as plaintext skip it request by request.
        let encryption = if config.tme.enabled {
            Encryption::On
        } else {
            Encryption::Off
        };
        let controllers = (0..config.controllers as usize)
            .map(|i| {
                MemoryController::new(
                    i,
                    KeyTable::new(tme.clone(), layout.max_keyid()),
                    DramController::new(&config.dram, encryption),
                )
            })
            .collect();
        Ok(MemorySystem {
            layout,
            tme,
            controllers,
            controller_field: config.controller_field(),
            dram_bytes: config.dram_bytes(),
            clock: config
                .dram
                .core_clock_ratio(config.core_clock_mhz)
                .expect("validated: non-zero clocks"),
            dram_config: config.dram.clone(),
            encryption,
            reboot_rng: rng.fork("mem.tme.reboot"),
            pconfig: PconfigUnit::new(
                config,
                rng.fork("mem.pconfig.keys"),
                rng.fork("mem.pconfig.entropy"),
            ),
            pending: None,
            responses: EventQueue::new(),
            events: Vec::new(),
        })
    }

    /// The address layout.
    pub fn layout(&self) -> AddressLayout {
        self.layout
    }

    /// Bytes of DRAM installed: DRAM addresses run from 0 to this.
    pub fn dram_bytes(&self) -> u64 {
        self.dram_bytes
    }

    /// Core cycles : DRAM cycles.
    pub fn clock_ratio(&self) -> ClockRatio {
        self.clock
    }

    /// TME activation state (and the platform key).
    pub fn tme(&self) -> &TmeState {
        &self.tme
    }

    /// The controllers.
    pub fn controllers(&self) -> &[MemoryController] {
        &self.controllers
    }

    /// Controller `i`, mutably (to attach bus probes or reach its DIMMs).
    pub fn controller_mut(&mut self, i: usize) -> &mut MemoryController {
        &mut self.controllers[i]
    }

    /// Which controller serves a DRAM address.
    pub fn controller_of(&self, addr: DramAddr) -> usize {
        self.controller_field.extract(addr.raw()) as usize
    }

    /// The address a controller's DRAM sees for a package-wide DRAM address: the
    /// controller-select bits squeezed out.
    pub fn local_addr(&self, addr: DramAddr) -> DramAddr {
        DramAddr::new(self.controller_field.squeeze(addr.raw()))
    }

    /// The PCONFIG unit (limits, busy state, statistics).
    pub fn pconfig_unit(&mut self) -> &mut PconfigUnit {
        &mut self.pconfig
    }

    /// Executes PCONFIG at `now`. On success the new entry reaches every controller's key table
    /// at `result.done`, whole; until then the old entry is in force.
    pub fn pconfig(&mut self, now: Cycle, call: &PconfigCall) -> PconfigResult {
        self.settle(now);
        let (result, update) = self.pconfig.execute(now, call);
        if let Some(update) = update {
            // The key-table lock guarantees at most one programming in flight.
            assert!(
                self.pending.is_none(),
                "PCONFIG at {now:?} succeeded while another update was pending"
            );
            self.pending = Some(update);
        }
        result
    }

    /// Applies a completed PCONFIG update whose cycle has come, and reports it
    /// ([`MemEvent::KeyChanged`] at the update's own cycle, see [`MemorySystem::take_events`]).
    pub fn settle(&mut self, now: Cycle) {
        if self.pending.as_ref().is_some_and(|p| p.at <= now) {
            let update = self.pending.take().expect("checked above");
            for mc in &mut self.controllers {
                mc.keys.install(update.keyid, update.mode.clone());
            }
            self.events.push(MemEvent::KeyChanged {
                cycle: update.at,
                keyid: update.keyid,
            });
        }
    }

    /// Moves the events that happened since the last call into `out`, oldest first. A key
    /// change is reported with the cycle its PCONFIG completed; a caller that steps the memory
    /// system at every cycle of [`MemorySystem::next_event_cycle`] sees it in that cycle,
    /// before anything else the memory system does in it. Attacks on the bus and the DIMMs
    /// are reported at the cycle they happened (see the `attack` module).
    pub fn take_events(&mut self, out: &mut Vec<MemEvent>) {
        self.collect_controller_events();
        out.append(&mut self.events);
    }

    /// Moves the controllers' own events (their buses' and DIMMs') into the system's, after
    /// whatever the system reported before them.
    #[inline]
    fn collect_controller_events(&mut self) {
        for mc in &mut self.controllers {
            if !mc.events.is_empty() {
                self.events.append(&mut mc.events);
            }
        }
    }

    /// The current entry of `keyid` (as of the last [`MemorySystem::settle`]).
    pub fn key_mode(&self, keyid: KeyId) -> &KeyMode {
        self.controllers[0].keys.mode(keyid)
    }

    /// The key `keyid` encrypts with, if it has its own (KeyID 0: the platform key). Secret:
    /// reports show it only when the user asks.
    pub fn key(&self, keyid: KeyId) -> Option<&Arc<Key>> {
        if keyid.is_tme() {
            return self.tme.platform_key();
        }
        match self.key_mode(keyid) {
            KeyMode::Keyed(key) => Some(key),
            KeyMode::Tme | KeyMode::NoEncrypt => None,
        }
    }

    fn route(&self, pa: PhysAddr) -> (usize, KeyId, DramAddr) {
        let (keyid, addr) = (self.layout.keyid(pa), self.layout.dram_addr(pa));
        assert!(
            addr.raw() < self.dram_bytes,
            "memory access at {pa} (DRAM address {addr}) beyond the {:#x} bytes installed",
            self.dram_bytes
        );
        (self.controller_of(addr), keyid, addr)
    }

    /// Untimed: writes a whole line of plaintext through physical address `pa` (line-aligned)
    /// at cycle `now`, bypassing the DRAM timing model.
    pub fn write_line_untimed(&mut self, now: Cycle, pa: PhysAddr, plaintext: &LineBytes) {
        self.settle(now);
        let (mc, keyid, addr) = self.route(pa);
        self.controllers[mc].write_line_untimed(now, keyid, addr, plaintext);
        self.collect_controller_events();
    }

    /// Untimed: reads a whole line through physical address `pa` (line-aligned) at cycle
    /// `now`, bypassing the DRAM timing model.
    pub fn read_line_untimed(&mut self, now: Cycle, pa: PhysAddr) -> LineBytes {
        self.settle(now);
        let (mc, keyid, addr) = self.route(pa);
        let bytes = self.controllers[mc].read_line_untimed(now, keyid, addr);
        self.collect_controller_events();
        bytes
    }

    /// The plaintext a read through `pa` (line-aligned) would return now, observed without a
    /// read: no bus transaction, no statistics. Uses the key table as of the last
    /// [`MemorySystem::settle`].
    pub fn peek_line(&self, pa: PhysAddr) -> LineBytes {
        let (mc, keyid, addr) = self.route(pa);
        self.controllers[mc].peek_line(keyid, addr)
    }

    /// The ciphertext (what the DIMM holds) of the line at `addr`: what a read of `addr`
    /// from the DIMMs returns (through a faulty DIMM, the cells `addr` reaches).
    pub fn dimm_line(&self, addr: DramAddr) -> LineBytes {
        let mc = &self.controllers[self.controller_of(addr)];
        mc.store().read(mc.cells(addr))
    }

    /// Timed: offers `request` at core cycle `now`. A write is encrypted now, with the key in
    /// force. When the controller's queue is full nothing changes and the request comes back,
    /// to be offered again later (back-pressure).
    ///
    /// # Panics
    /// When the address is beyond the installed DRAM, a write carries no data, or `now` is
    /// earlier than a cycle already passed to [`MemorySystem::tick`] (caller bugs).
    pub fn try_submit(&mut self, now: Cycle, request: MemRequest) -> Result<(), MemRequest> {
        // Completions before `now` first (each at its own cycle), then the key table as of now.
        let dram_now = self.advance_dram(now);
        self.settle(now);
        let (mc_index, keyid, addr) = self.route(request.addr);
        debug_assert!(addr.is_line_aligned(), "memory request at unaligned {addr}");
        let local = self.local_addr(addr);
        let mc = &mut self.controllers[mc_index];
        let crypto = matches!(mc.keys.transform(keyid, addr), LineTransform::Encrypt(_));
        let dram_request = DramRequest {
            id: request.id,
            op: request.op,
            addr: local,
            crypto,
        };
        if let Err(QueueFull { .. }) = mc.dram.try_submit(dram_now, dram_request) {
            if !mc.refused.contains(&request.id) {
                mc.refused.push(request.id);
                mc.stats.queue_full.inc();
            }
            return Err(request);
        }
        if let Some(i) = mc.refused.iter().position(|&id| id == request.id) {
            mc.refused.swap_remove(i);
        }
        match request.op {
            MemOp::Read => {
                let forwardable = mc.newest_write.get(&addr.line_index()).map(|w| w.1);
                mc.reads.insert(
                    request.id,
                    PendingRead {
                        keyid,
                        addr,
                        forwardable,
                    },
                );
            }
            MemOp::Write => {
                let mut bytes = request
                    .data
                    .unwrap_or_else(|| panic!("write {:?} to {addr} without data", request.id));
                mc.encrypt(keyid, addr, &mut bytes);
                mc.writes.insert(request.id, PendingWrite { addr, bytes });
                let newest = mc
                    .newest_write
                    .entry(addr.line_index())
                    .or_insert((0, bytes));
                *newest = (newest.0 + 1, bytes);
            }
        }
        Ok(())
    }

    /// Advances every controller's DRAM model up to the DRAM cycle containing core cycle
    /// `now`, applying completions as they happen; returns that DRAM cycle.
    ///
    /// Controllers advance in lockstep, earliest step first (ties by controller number), so
    /// completions are applied in global time order: a key-table update that lands between two
    /// completions on different controllers is seen by exactly the later one.
    fn advance_dram(&mut self, now: Cycle) -> Cycle {
        let target = self.clock.to_slow(now);
        loop {
            let mut earliest: Option<(Cycle, usize)> = None;
            for (i, mc) in self.controllers.iter().enumerate() {
                let next = match mc.dram.now() {
                    None => Cycle::ZERO,
                    Some(last) if last >= target => continue,
                    // Idle cycles are skipped: nothing happens before the model's next event.
                    Some(last) => mc.dram.next_event_cycle().max(last.plus(1)),
                };
                let step = (next.min(target), i);
                if earliest.is_none_or(|e| step < e) {
                    earliest = Some(step);
                }
            }
            let Some((step, i)) = earliest else {
                return target;
            };
            let mut completions = std::mem::take(&mut self.controllers[i].completions);
            self.controllers[i].dram.tick(step, &mut completions);
            for c in completions.drain(..) {
                self.complete(i, c);
                // The bus's and the DIMMs' events of this transaction, in global time order
                // with key changes.
                if !self.controllers[i].events.is_empty() {
                    self.events.append(&mut self.controllers[i].events);
                }
            }
            self.controllers[i].completions = completions;
        }
    }

    /// Applies one DRAM completion: the functional half of the transaction.
    fn complete(&mut self, mc_index: usize, c: DramCompletion) {
        // The key table as of the cycle the data moves.
        let at = self.clock.to_fast(c.data_cycle);
        self.settle(at);
        let done = self.clock.to_fast(c.done);
        let mc = &mut self.controllers[mc_index];
        match (c.op, c.source) {
            (MemOp::Read, source) => {
                let read = mc
                    .reads
                    .remove(&c.id)
                    .unwrap_or_else(|| panic!("DRAM completed unknown read {:?}", c.id));
                let mut bytes = match source {
                    CompletionSource::Bus { burst_start, .. } => {
                        mc.bus_read(self.clock.to_fast(burst_start), read.addr)
                    }
                    // Answered from the write queue: no bus transaction. The newest write as of
                    // the read's acceptance, never one accepted after it.
                    CompletionSource::ForwardedFromWrite => {
                        mc.stats.reads.inc();
                        read.forwardable.unwrap_or_else(|| {
                            panic!("read {:?} forwarded with no write in flight", c.id)
                        })
                    }
                    CompletionSource::MergedInto { .. } => {
                        unreachable!("reads are never merged ({:?})", c.id)
                    }
                };
                mc.decrypt(read.keyid, read.addr, &mut bytes);
                self.responses.push(
                    done,
                    MemResponse {
                        id: c.id,
                        data: Some(bytes),
                        done,
                    },
                );
            }
            (MemOp::Write, source) => {
                let write = mc
                    .writes
                    .remove(&c.id)
                    .unwrap_or_else(|| panic!("DRAM completed unknown write {:?}", c.id));
                match source {
                    CompletionSource::Bus { burst_start, .. } => {
                        mc.bus_write(self.clock.to_fast(burst_start), write.addr, write.bytes);
                    }
                    // Its bytes travel with the later burst of `into` (the newest data).
                    CompletionSource::MergedInto { into } => {
                        mc.writes
                            .get_mut(&into)
                            .unwrap_or_else(|| panic!("{:?} merged into unknown {into:?}", c.id))
                            .bytes = write.bytes;
                    }
                    CompletionSource::ForwardedFromWrite => {
                        unreachable!("writes are never forwarded ({:?})", c.id)
                    }
                }
                let line = write.addr.line_index();
                let entry = mc.newest_write.get_mut(&line).expect("counted at submit");
                entry.0 -= 1;
                if entry.0 == 0 {
                    mc.newest_write.remove(&line);
                }
                self.responses.push(
                    done,
                    MemResponse {
                        id: c.id,
                        data: None,
                        done,
                    },
                );
            }
        }
    }

    /// Timed: advances the memory system through core cycle `now` and appends the responses
    /// due by then, in order of their `done` cycle.
    pub fn tick(&mut self, now: Cycle, responses: &mut Vec<MemResponse>) {
        self.advance_dram(now);
        self.settle(now);
        while let Some((_, response)) = self.responses.pop_due(now) {
            responses.push(response);
        }
    }

    /// The next core cycle at which [`MemorySystem::tick`] can produce a response, the DRAM
    /// model has something to do, or a PCONFIG update lands; [`Cycle::NEVER`] when nothing
    /// will happen without another request.
    pub fn next_event_cycle(&self) -> Cycle {
        // A controller with requests in progress has an event coming even when it has no
        // command to issue (a burst in progress). An idle one only refreshes, which answers
        // nobody, and so does one holding only writes parked below its drain rule (idle write
        // drain off): until another request comes they never move, and a run whose cores wait
        // on nothing else is deadlocked, not merely slow.
        let dram = self
            .controllers
            .iter()
            .filter(|mc| mc.dram.in_progress())
            .map(|mc| self.clock.to_fast(mc.dram.next_event_cycle()))
            .min()
            .unwrap_or(Cycle::NEVER);
        let response = self.responses.peek_cycle().unwrap_or(Cycle::NEVER);
        // A key change must happen at its own cycle (observers date it by the cycle they see).
        let key_change = self.pending.as_ref().map_or(Cycle::NEVER, |p| p.at);
        dram.min(response).min(key_change)
    }

    /// How many requests have freed a slot in some controller's read queue or write buffer so
    /// far ([`DramController::departures`], summed; it only grows). A request refused
    /// for a full queue is refused again until this has grown, so a caller holding one need
    /// offer it again only then.
    pub fn queue_departures(&self) -> u64 {
        self.controllers.iter().map(|mc| mc.dram.departures()).sum()
    }

    /// Drain buffered writes without waiting for the write buffer to fill (`true`), or wait
    /// for enough writes as DRAMsim3 does (`false`, the default). A run turns this on when it
    /// has no more requests to offer, so that every write reaches DRAM.
    pub fn set_flush_writes(&mut self, on: bool) {
        for mc in &mut self.controllers {
            mc.dram.set_flush_writes(on);
        }
    }

    /// True while any request is in flight or any response is waiting. Writes parked in a
    /// write buffer count: they finish only when the buffer drains (idle write drain, or
    /// [`MemorySystem::set_flush_writes`]).
    pub fn has_work(&self) -> bool {
        !self.responses.is_empty()
            || self
                .controllers
                .iter()
                .any(|mc| mc.dram.outstanding() > 0 || mc.dram.has_work())
    }

    /// The lines (DRAM addresses) with a write accepted by some controller whose bytes have not
    /// reached the DIMMs yet, in address order ([`MemoryController::pending_write_lines`]).
    pub fn pending_write_lines(&self) -> Vec<DramAddr> {
        let mut lines: Vec<DramAddr> = self
            .controllers
            .iter()
            .flat_map(MemoryController::pending_write_lines)
            .collect();
        lines.sort_unstable();
        lines
    }

    /// Writes every controller's and PCONFIG's counts into `report`.
    pub fn report_stats(&self, report: &mut StatsReport) {
        for mc in &self.controllers {
            mc.report_stats(report);
        }
        self.pconfig.report_stats("pconfig", report);
    }

    /// Writes what each controller's AES stage did into `report`, under
    /// `mcN.engine.{decrypt,encrypt}.{lines,wait_cycles,wait_max_cycles,busy_lane_cycles,lanes}`
    /// (DRAM cycles; nothing without the stage's timing). Apart from [`Self::report_stats`]
    /// so that the statistics every run reports stay as they were: the encryption-overhead
    /// report asks for these.
    pub fn report_engine_stats(&self, report: &mut StatsReport) {
        for mc in &self.controllers {
            let Some((decrypt, encrypt)) = mc.dram.engine_stats() else {
                continue;
            };
            for (name, s) in [("decrypt", decrypt), ("encrypt", encrypt)] {
                let prefix = format!("mc{}.engine.{name}", mc.index);
                report.count(&prefix, "lines", s.lines);
                report.count(&prefix, "wait_cycles", s.wait_cycles);
                report.count(&prefix, "wait_max_cycles", s.wait_max_cycles);
                report.count(&prefix, "busy_lane_cycles", s.busy_lane_cycles);
                report.count(&prefix, "lanes", s.lanes);
            }
        }
    }
}
