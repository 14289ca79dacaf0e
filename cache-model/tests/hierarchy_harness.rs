//! Test neighbours for the cache hierarchy: a mock memory with a fixed latency and a toy
//! per-KeyID cipher, and a rig that drives hierarchy and memory cycle by cycle, as the machine
//! will. Included by the `hierarchy_*` tests with `#[path]`; compiled alone it tests the mock.
#![allow(dead_code)]

use cache_model::hierarchy::{
    CoreOp, CoreRequest, CoreResponse, Hierarchy, HierarchyConfig, LevelConfig, ObserverId,
    PrefetchConfig,
};
use cache_model::{CacheConfig, CacheEvent, CacheId, EventLog, Level, ReplacementPolicy};
use sim_core::{
    AddressLayout, CoreId, Cycle, DramAddr, KeyId, LineAddr, LineBytes, MemOp, MemRequest,
    MemResponse, PhysAddr, RngFactory, StatsReport,
};
use std::collections::{BTreeMap, VecDeque};

/// A memory with a fixed latency. It stores, per DRAM line, "ciphertext": the plaintext XORed
/// with a pad drawn from (KeyID, DRAM line). As on MKTME, reading a line through another KeyID
/// than the one that wrote it gives other bytes, untouched DRAM is all-zero ciphertext (so it
/// reads as the KeyID's pad), and writing back unmodified what was read restores the exact
/// ciphertext (a fixed key is a bijection). KeyID 0 behaves as under TME bypass (a zero pad),
/// which keeps tests through KeyID 0 readable: untouched lines read as zeros.
pub struct MockMemory {
    pub layout: AddressLayout,
    pub latency: u64,
    cells: BTreeMap<u64, LineBytes>,
    pending: VecDeque<MemResponse>,
    /// Writes are refused before this cycle (to fill the write-back buffer).
    pub refuse_writes_until: Cycle,
    /// Every request accepted: (cycle, op, address).
    pub log: Vec<(Cycle, MemOp, PhysAddr)>,
}

/// The toy cipher's pad for a line reached through `keyid` (zeros for KeyID 0).
pub fn pad(keyid: KeyId, dram_line: u64) -> LineBytes {
    let mut out = [0; 64];
    if keyid.is_tme() {
        return out;
    }
    let mut x = (u64::from(keyid.get()) << 48) ^ dram_line ^ 0x9e37_79b9_7f4a_7c15;
    for b in out.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    out
}

fn xor(a: &LineBytes, b: &LineBytes) -> LineBytes {
    std::array::from_fn(|i| a[i] ^ b[i])
}

impl MockMemory {
    pub fn new(layout: AddressLayout, latency: u64) -> MockMemory {
        MockMemory {
            layout,
            latency,
            cells: BTreeMap::new(),
            pending: VecDeque::new(),
            refuse_writes_until: Cycle::ZERO,
            log: Vec::new(),
        }
    }

    fn dram_line(&self, pa: PhysAddr) -> u64 {
        self.layout.dram_addr(pa).line_index()
    }

    /// What a read of `pa`'s line through its KeyID returns now.
    pub fn read_plain(&self, pa: PhysAddr) -> LineBytes {
        let line = self.dram_line(pa);
        let cipher = self.cells.get(&line).copied().unwrap_or([0; 64]);
        xor(&cipher, &pad(self.layout.keyid(pa), line))
    }

    /// Offers a request at `now`; refused writes come back.
    pub fn accept(&mut self, now: Cycle, request: MemRequest) -> Result<(), MemRequest> {
        assert_eq!(request.addr.line_offset(), 0, "unaligned memory request");
        match request.op {
            MemOp::Write if now < self.refuse_writes_until => Err(request),
            MemOp::Write => {
                let line = self.dram_line(request.addr);
                let plain = request.data.expect("a write carries data");
                let keyid = self.layout.keyid(request.addr);
                self.cells.insert(line, xor(&plain, &pad(keyid, line)));
                self.log.push((now, MemOp::Write, request.addr));
                self.pending.push_back(MemResponse {
                    id: request.id,
                    data: None,
                    done: now.plus(self.latency),
                });
                Ok(())
            }
            MemOp::Read => {
                let data = self.read_plain(request.addr);
                self.log.push((now, MemOp::Read, request.addr));
                self.pending.push_back(MemResponse {
                    id: request.id,
                    data: Some(data),
                    done: now.plus(self.latency),
                });
                Ok(())
            }
        }
    }

    /// Responses due by `now`, in order.
    pub fn due(&mut self, now: Cycle) -> Vec<MemResponse> {
        let mut out = Vec::new();
        while self.pending.front().is_some_and(|r| r.done <= now) {
            out.push(self.pending.pop_front().unwrap());
        }
        out
    }

    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Requests accepted of one kind.
    pub fn count(&self, op: MemOp) -> usize {
        self.log.iter().filter(|(_, o, _)| *o == op).count()
    }
}

/// Hierarchy + mock memory, stepped one cycle at a time. At each cycle: memory responses due
/// are delivered, the hierarchy ticks (responses collected), then requests for memory are
/// handed over until memory refuses one. Tests submit at `rig.now` between cycles.
pub struct Rig {
    pub h: Hierarchy,
    pub mem: MockMemory,
    pub now: Cycle,
    pub responses: Vec<CoreResponse>,
    pub log: ObserverId,
}

impl Rig {
    pub fn new(config: &HierarchyConfig, mem_latency: u64) -> Rig {
        Rig::with_seed(config, mem_latency, 1)
    }

    pub fn with_seed(config: &HierarchyConfig, mem_latency: u64, seed: u64) -> Rig {
        let layout = AddressLayout::default();
        let mut h = Hierarchy::new(config, layout, RngFactory::new(seed)).unwrap();
        let log = h.attach_observer(EventLog::default());
        let mut rig = Rig {
            h,
            mem: MockMemory::new(layout, mem_latency),
            now: Cycle::ZERO,
            responses: Vec::new(),
            log,
        };
        rig.cycle();
        rig
    }

    fn cycle(&mut self) {
        let t = self.now;
        for r in self.mem.due(t) {
            self.h.mem_response(t, r);
        }
        self.h.tick(t, &mut self.responses);
        while let Some(request) = self.h.pop_mem_request(t) {
            if let Err(request) = self.mem.accept(t, request) {
                self.h.return_mem_request(request);
                break;
            }
        }
    }

    /// Runs every cycle up to and including `t`.
    pub fn run_to(&mut self, t: u64) {
        while self.now < Cycle::new(t) {
            self.now = self.now.plus(1);
            self.cycle();
        }
    }

    /// Runs until nothing is in flight (hierarchy and memory), at most `max` more cycles.
    pub fn run_idle(&mut self, max: u64) {
        let limit = self.now.get() + max;
        while self.h.has_work() || !self.mem.idle() {
            assert!(
                self.now.get() < limit,
                "not idle after {max} cycles: {:?}",
                self.h
            );
            self.now = self.now.plus(1);
            self.cycle();
        }
    }

    pub fn submit(&mut self, request: CoreRequest) -> Result<(), CoreRequest> {
        self.h.submit(self.now, request)
    }

    /// Submits, panicking on refusal.
    pub fn go(&mut self, request: CoreRequest) {
        let id = request.id;
        if self.submit(request).is_err() {
            panic!("request {id} refused at {}", self.now);
        }
    }

    pub fn load(&mut self, id: u64, core: u32, pa: PhysAddr) {
        self.go(CoreRequest::load(id, CoreId::new(core), pa, 8));
    }

    pub fn store(&mut self, id: u64, core: u32, pa: PhysAddr, bytes: &[u8]) {
        self.go(CoreRequest::store(id, CoreId::new(core), pa, bytes));
    }

    pub fn op(&mut self, id: u64, core: u32, pa: PhysAddr, op: CoreOp) {
        self.go(CoreRequest::new(id, CoreId::new(core), pa, op));
    }

    pub fn response(&self, id: u64) -> &CoreResponse {
        self.responses
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no response for request {id} by cycle {}", self.now))
    }

    pub fn done(&self, id: u64) -> u64 {
        self.response(id).done.get()
    }

    pub fn events(&self) -> &[CacheEvent] {
        &self.h.observer::<EventLog>(self.log).unwrap().events
    }

    /// Events at cycle `t`.
    pub fn events_at(&self, t: u64) -> Vec<CacheEvent> {
        self.events()
            .iter()
            .filter(|e| e.cycle() == Cycle::new(t))
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> StatsReport {
        let mut r = StatsReport::new();
        self.h.report_stats(&mut r);
        r
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.stats()
            .get_count(name)
            .unwrap_or_else(|| panic!("no statistic {name}"))
    }
}

/// A cache level for tests: `sets` x `ways` 64-byte lines, LRU.
pub fn level(sets: u64, ways: u32, latency: u64, mshrs: u32) -> LevelConfig {
    level_with(sets, ways, latency, mshrs, ReplacementPolicy::Lru)
}

/// A cache level for tests with another replacement policy.
pub fn level_with(
    sets: u64,
    ways: u32,
    latency: u64,
    mshrs: u32,
    replacement: ReplacementPolicy,
) -> LevelConfig {
    LevelConfig {
        cache: CacheConfig {
            size_bytes: sets * u64::from(ways) * 64,
            sets,
            ways,
            line_bytes: 64,
            hit_latency_cycles: latency,
            replacement,
            ..CacheConfig::default()
        },
        mshr_entries: mshrs,
    }
}

/// Small caches with the default latencies (4, 14, 40; snoops 20), no prefetchers: L1D one
/// line, L2 one set of two, LLC 16 sets of 4. Lines 0x0, 0x40, 0x80 share the private sets.
pub fn tiny() -> HierarchyConfig {
    HierarchyConfig {
        cores: 2,
        l1d: level(1, 1, 4, 4),
        l2: level(1, 2, 14, 4),
        llc: level(16, 4, 40, 8),
        llc_inclusive: true,
        snoop_latency_cycles: 20,
        writeback_buffer_entries: 8,
        prefetch: PrefetchConfig::OFF,
        writeback_speculative_lines: false,
        alias_policy: Default::default(),
    }
}

/// The physical address of DRAM byte `dram` through `keyid` (default layout).
pub fn pa(keyid: u16, dram: u64) -> PhysAddr {
    AddressLayout::default()
        .compose(KeyId::new(keyid), DramAddr::new(dram))
        .unwrap()
}

pub fn line(keyid: u16, dram: u64) -> LineAddr {
    pa(keyid, dram).line()
}

pub fn l1(core: u32) -> CacheId {
    CacheId {
        core: Some(CoreId::new(core)),
        level: Level::L1d,
    }
}

pub fn l2(core: u32) -> CacheId {
    CacheId {
        core: Some(CoreId::new(core)),
        level: Level::L2,
    }
}

pub const LLC: CacheId = CacheId {
    core: None,
    level: Level::Llc,
};

/// A line's bytes: `prefix` then zeros.
pub fn bytes(prefix: &[u8]) -> LineBytes {
    with_prefix([0; 64], prefix)
}

/// `base` with its first bytes replaced by `prefix`.
pub fn with_prefix(mut base: LineBytes, prefix: &[u8]) -> LineBytes {
    base[..prefix.len()].copy_from_slice(prefix);
    base
}

/// What untouched DRAM reads as through `pa`'s KeyID (zeros through KeyID 0).
pub fn untouched(pa: PhysAddr) -> LineBytes {
    let layout = AddressLayout::default();
    pad(layout.keyid(pa), layout.dram_addr(pa).line_index())
}

#[test]
fn mock_memory_encrypts_per_keyid_and_answers_in_order() {
    let layout = AddressLayout::default();
    let mut m = MockMemory::new(layout, 10);
    let a1 = pa(1, 0x1000);
    let a2 = pa(2, 0x1000);
    let data = bytes(&[1, 2, 3]);
    let write = MemRequest {
        id: sim_core::RequestId(1),
        op: MemOp::Write,
        addr: a1,
        data: Some(data),
        issued: Cycle::ZERO,
    };
    m.refuse_writes_until = Cycle::new(5);
    let write = m.accept(Cycle::new(4), write).unwrap_err();
    m.accept(Cycle::new(5), write).unwrap();
    assert_eq!(m.read_plain(a1), data);
    assert_ne!(m.read_plain(a2), data, "another KeyID reads other bytes");
    assert_eq!(m.read_plain(pa(0, 0x2000)), [0; 64], "KeyID 0: TME bypass");
    assert_eq!(m.read_plain(pa(1, 0x2000)), untouched(pa(1, 0x2000)));
    assert_ne!(untouched(pa(1, 0x2000)), untouched(pa(2, 0x2000)));
    let read = MemRequest {
        id: sim_core::RequestId(2),
        op: MemOp::Read,
        addr: a2,
        data: None,
        issued: Cycle::new(6),
    };
    m.accept(Cycle::new(6), read).unwrap();
    assert!(m.due(Cycle::new(14)).is_empty());
    let due = m.due(Cycle::new(16));
    assert_eq!(due.len(), 2);
    assert_eq!(due[1].data, Some(m.read_plain(a2)));
    assert!(m.idle());
    // Writing back what a read returned restores the ciphertext, whatever the KeyID.
    let garbage = m.read_plain(a2);
    let write = MemRequest {
        id: sim_core::RequestId(3),
        op: MemOp::Write,
        addr: a2,
        data: Some(garbage),
        issued: Cycle::new(20),
    };
    m.accept(Cycle::new(20), write).unwrap();
    assert_eq!(m.read_plain(a1), data);
}
