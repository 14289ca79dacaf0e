//! The coherency checker on a whole machine (issue 4): for each violation kind, a small program
//! that breaks the KeyID aliasing rules and is flagged, and the same program made
//! rule-abiding (CLFLUSH of the old alias before switching) that is not.
//!
//! Everything is real: the MESI hierarchy, the memory controller with its AES-XTS keys and DRAM
//! timing, PCONFIG. KeyIDs 1 and 2 are programmed with different keys; both alias DRAM line
//! 0x10000.

use cache_model::{CoreOp, CoreRequest, CoreResponse, ObserverId};
use checker::{CheckerConfig, CoherencyChecker, ViolationKind};
use cpu_model::{Machine, MachineConfig};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::XtsAlgorithm;
use sim_core::{CoreId, Cycle, DramAddr, KeyId, LINE_BYTES, MemEvent, PhysAddr};

const LINE: u64 = 0x10000;

/// A machine with KeyIDs 1 and 2 programmed, a checker attached, and a clock.
struct Bench {
    machine: Machine,
    checker: ObserverId,
    now: Cycle,
    next_id: u64,
}

impl Bench {
    fn new(configure: impl FnOnce(&mut MachineConfig)) -> Bench {
        let mut config = MachineConfig::preset("default").unwrap();
        config.caches.prefetch.next_line = false;
        config.caches.prefetch.stride = false;
        configure(&mut config);
        let mut machine = Machine::new(&config, 11).unwrap();
        let layout = machine.memory().layout();
        let checker = machine
            .caches_mut()
            .attach_observer(CoherencyChecker::new(layout, CheckerConfig::default()));
        let mut bench = Bench {
            machine,
            checker,
            now: Cycle::ZERO,
            next_id: 0,
        };
        bench.program(1, [0x11; 16], [0x12; 16]);
        bench.program(2, [0x21; 16], [0x22; 16]);
        bench
    }

    fn pa(&self, keyid: u16) -> PhysAddr {
        self.machine
            .memory()
            .layout()
            .compose(KeyId::new(keyid), DramAddr::new(LINE))
            .unwrap()
    }

    /// PCONFIG SET_KEY_DIRECT, waiting for it to complete; the checker learns of the key
    /// change from the memory system's event, as a System's checker does.
    fn program(&mut self, keyid: u16, k1: [u8; 16], k2: [u8; 16]) {
        let p = KeyProgramStruct::new(keyid, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
            .with_keys(&k1, &k2);
        let r = self
            .machine
            .memory_mut()
            .pconfig(self.now, &PconfigCall::key_program(p));
        assert!(r.outcome.is_success(), "{}", r.outcome);
        self.now = r.done;
        self.machine.memory_mut().settle(self.now);
        let mut events = Vec::new();
        self.machine.memory_mut().take_events(&mut events);
        assert_eq!(
            events,
            [MemEvent::KeyChanged {
                cycle: r.done,
                keyid: KeyId::new(keyid)
            }]
        );
        for e in &events {
            self.checker_mut().on_memory_event(e);
        }
    }

    fn checker_mut(&mut self) -> &mut CoherencyChecker {
        self.machine
            .caches_mut()
            .observer_mut::<CoherencyChecker>(self.checker)
            .unwrap()
    }

    fn checker(&self) -> &CoherencyChecker {
        self.machine
            .caches()
            .observer::<CoherencyChecker>(self.checker)
            .unwrap()
    }

    /// Runs one request on `core` to completion.
    fn exec(&mut self, core: u32, keyid: u16, op: CoreOp) -> CoreResponse {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = CoreRequest::new(id, CoreId::new(core), self.pa(keyid), op);
        let mut out = Vec::new();
        loop {
            match self.machine.submit(self.now, request) {
                Ok(()) => break,
                Err(back) => request = back,
            }
            self.machine.step(self.now, &mut out);
            self.now = self.machine.next_event_cycle().max(self.now.plus(1));
        }
        loop {
            self.machine.step(self.now, &mut out);
            if let Some(r) = out.iter().find(|r| r.id == id) {
                return r.clone();
            }
            let next = self.machine.next_event_cycle();
            assert_ne!(next, Cycle::NEVER, "request {id} never completed");
            self.now = next.max(self.now.plus(1));
        }
    }

    fn store(&mut self, core: u32, keyid: u16, byte: u8) {
        self.exec(
            core,
            keyid,
            CoreOp::Store {
                len: 8,
                data: [byte; LINE_BYTES],
            },
        );
    }

    fn load(&mut self, core: u32, keyid: u16) -> [u8; LINE_BYTES] {
        self.exec(core, keyid, CoreOp::Load { len: 8 })
            .data
            .unwrap()
    }

    fn clflush(&mut self, core: u32, keyid: u16) {
        self.exec(core, keyid, CoreOp::Clflush);
    }

    /// The kinds flagged, in order, and no model error.
    fn kinds(&self) -> Vec<ViolationKind> {
        let c = self.checker();
        assert!(
            c.model_errors().is_empty(),
            "model errors: {:?}",
            c.model_errors()
        );
        c.violations().iter().map(|v| v.kind).collect()
    }
}

#[test]
fn dual_dirty_aliases() {
    // Violating: two aliases written without a flush between them.
    let mut b = Bench::new(|_| {});
    b.store(0, 1, 0xaa);
    b.store(1, 2, 0xbb);
    assert_eq!(b.kinds(), [ViolationKind::DualDirty]);
    let v = &b.checker().violations()[0];
    assert_eq!(v.line, DramAddr::new(LINE));
    let mut keyids = v.keyids.clone();
    keyids.sort();
    assert_eq!(keyids, [KeyId::new(1), KeyId::new(2)]);
    assert!(!v.chain.is_empty(), "the chain of events is reported");

    // Rule-abiding: CLFLUSH the first alias before writing through the second.
    let mut b = Bench::new(|_| {});
    b.store(0, 1, 0xaa);
    b.clflush(0, 1);
    b.store(1, 2, 0xbb);
    assert_eq!(b.kinds(), []);
}

#[test]
fn page_reuse_without_flush_loses_data() {
    // Violating: KeyID 1's dirty line is left cached while the page moves to KeyID 2; KeyID 2
    // writes and flushes; then KeyID 1's stale dirty line is flushed over it.
    let mut b = Bench::new(|_| {});
    b.store(0, 1, 0xaa);
    b.store(0, 2, 0xbb);
    b.clflush(0, 2);
    b.clflush(0, 1);
    let kinds = b.kinds();
    assert!(kinds.contains(&ViolationKind::DataLoss), "{kinds:?}");
    let loss = b
        .checker()
        .violations()
        .iter()
        .find(|v| v.kind == ViolationKind::DataLoss)
        .unwrap();
    let lost = loss
        .lost
        .as_ref()
        .expect("a data loss carries the bytes lost");
    assert_eq!(lost.lost_keyid, KeyId::new(2));
    assert_eq!(lost.writer_keyid, KeyId::new(1));
    assert_eq!(
        &lost.lost_bytes[..8],
        &[0xbb; 8],
        "KeyID 2's store is what was lost"
    );
    // And it really was: reading through KeyID 2 now gives garbage, not 0xbb.
    let now = b.load(0, 2);
    assert_ne!(&now[..8], &[0xbb; 8]);

    // Rule-abiding: flush KeyID 1 before the switch; KeyID 2's data survives.
    let mut b = Bench::new(|_| {});
    b.store(0, 1, 0xaa);
    b.clflush(0, 1);
    b.store(0, 2, 0xbb);
    b.clflush(0, 2);
    assert_eq!(b.kinds(), []);
    assert_eq!(&b.load(0, 2)[..8], &[0xbb; 8]);
}

#[test]
fn stale_clean_alias_is_read() {
    // Violating: KeyID 2's clean copy stays cached while KeyID 1 writes the line and flushes
    // it; the later read through KeyID 2 hits the stale copy.
    let mut b = Bench::new(|_| {});
    b.load(1, 2);
    b.store(0, 1, 0xaa);
    b.clflush(0, 1);
    b.load(1, 2);
    assert_eq!(b.kinds(), [ViolationKind::StaleRead]);

    // Rule-abiding: invalidate KeyID 2's copy before using KeyID 1.
    let mut b = Bench::new(|_| {});
    b.load(1, 2);
    b.clflush(1, 2);
    b.store(0, 1, 0xaa);
    b.clflush(0, 1);
    b.load(1, 2);
    assert_eq!(b.kinds(), []);
}

#[test]
fn reprogramming_a_keyid_with_cached_lines() {
    let mut b = Bench::new(|_| {});
    b.load(0, 1);
    b.program(1, [0x31; 16], [0x32; 16]);
    assert_eq!(b.kinds(), [ViolationKind::ReprogramWhileCached]);

    let mut b = Bench::new(|_| {});
    b.load(0, 1);
    b.clflush(0, 1);
    b.program(1, [0x31; 16], [0x32; 16]);
    assert_eq!(b.kinds(), []);
}

#[test]
fn speculative_lines_written_back_only_under_the_counterfactual_knob() {
    // The knob: lines brought in by speculation are written back as if dirty.
    let mut b = Bench::new(|c| c.caches.writeback_speculative_lines = true);
    b.exec(0, 1, CoreOp::SpeculativeLoad { len: 8 });
    b.clflush(0, 1);
    assert_eq!(b.kinds(), [ViolationKind::PhantomDirty]);

    // Real processors: a speculative fill stays clean and is never written back.
    let mut b = Bench::new(|_| {});
    b.exec(0, 1, CoreOp::SpeculativeLoad { len: 8 });
    b.clflush(0, 1);
    assert_eq!(b.kinds(), []);
}

#[test]
fn evict_other_keyids_policy_prevents_the_page_reuse_loss() {
    // With the alias policy some processors implement, filling KeyID 2's copy first evicts
    // (writes back) KeyID 1's dirty copy, so nothing stale is left to overwrite KeyID 2 later.
    let mut b = Bench::new(|c| {
        c.caches.alias_policy = cache_model::AliasPolicy::EvictOtherKeyIds;
    });
    b.store(0, 1, 0xaa);
    b.store(0, 2, 0xbb);
    b.clflush(0, 2);
    b.clflush(0, 1);
    assert!(
        !b.kinds().contains(&ViolationKind::DataLoss),
        "{:?}",
        b.kinds()
    );
    assert_eq!(&b.load(0, 2)[..8], &[0xbb; 8]);
}
