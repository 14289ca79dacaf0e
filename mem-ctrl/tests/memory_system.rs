//! The memory system end to end: TME activation (platform key, bypass, exclusion range), key
//! modes, one PCONFIG reaching every controller, the DIMM store's contents and the bus port.

use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::{XtsAlgorithm, XtsCipher};
use mem_ctrl::{
    BusProbe, BusRecorder, BusTransaction, ExclusionRange, MemCtrlConfig, MemorySystem,
};
use sim_core::{
    AddressLayout, Cycle, DramAddr, KeyId, LineBytes, MemEvent, MemOp, PhysAddr, RngFactory,
};

const PLAIN: LineBytes = [0x42; 64];

fn boot(config: &MemCtrlConfig, seed: u64) -> MemorySystem {
    MemorySystem::new(config, RngFactory::new(seed)).unwrap()
}

fn pa(mem: &MemorySystem, keyid: u16, addr: u64) -> PhysAddr {
    mem.layout()
        .compose(KeyId::new(keyid), DramAddr::new(addr))
        .unwrap()
}

fn dimm(mem: &MemorySystem, addr: u64) -> LineBytes {
    let addr = DramAddr::new(addr);
    mem.controllers()[mem.controller_of(addr)]
        .store()
        .read(addr)
}

fn program(mem: &mut MemorySystem, now: Cycle, p: KeyProgramStruct) -> Cycle {
    let r = mem.pconfig(now, &PconfigCall::key_program(p));
    assert!(r.outcome.is_success(), "{}", r.outcome);
    mem.settle(r.done);
    r.done
}

fn direct(keyid: u16, k1: &[u8], k2: &[u8]) -> KeyProgramStruct {
    KeyProgramStruct::new(keyid, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128).with_keys(k1, k2)
}

#[test]
fn keyid0_uses_the_platform_key_generated_from_the_seed() {
    let config = MemCtrlConfig::default();
    let mut a = boot(&config, 1);
    let b = boot(&config, 1);
    let c = boot(&config, 2);
    let ka = a.tme().platform_key().unwrap();
    let kb = b.tme().platform_key().unwrap();
    let kc = c.tme().platform_key().unwrap();
    assert_eq!(ka.data_key(), kb.data_key(), "same seed, same platform key");
    assert_ne!(
        ka.data_key(),
        kc.data_key(),
        "another seed, another platform key"
    );
    assert_ne!(ka.data_key(), ka.tweak_key());
    assert_eq!(ka.algorithm(), XtsAlgorithm::Aes128);

    let mut expect = PLAIN;
    ka.cipher().encrypt_line(DramAddr::new(0x1000), &mut expect);
    let p = pa(&a, 0, 0x1000);
    a.write_line_untimed(Cycle::ZERO, p, &PLAIN);
    assert_eq!(dimm(&a, 0x1000), expect);
    assert_eq!(a.read_line_untimed(Cycle::new(1), p), PLAIN);
}

#[test]
fn tme_policy_aes_256() {
    let mut config = MemCtrlConfig::default();
    config.tme.policy = XtsAlgorithm::Aes256;
    let mem = boot(&config, 1);
    let key = mem.tme().platform_key().unwrap();
    assert_eq!(key.algorithm(), XtsAlgorithm::Aes256);
    assert_eq!(key.data_key().len(), 32);
}

#[test]
fn every_keyid_starts_in_tme_behaviour_and_clear_key_returns_there() {
    let mut mem = boot(&MemCtrlConfig::default(), 5);
    let platform = mem.tme().platform_key().unwrap().clone();
    let mut expect = PLAIN;
    platform
        .cipher()
        .encrypt_line(DramAddr::new(0x2000), &mut expect);
    // Unprogrammed KeyID 17 encrypts with the platform key: same ciphertext as KeyID 0.
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 17, 0x2000), &PLAIN);
    assert_eq!(dimm(&mem, 0x2000), expect);

    let t = program(&mut mem, Cycle::new(1), direct(17, &[1; 16], &[2; 16]));
    mem.write_line_untimed(t, pa(&mem, 17, 0x2000), &PLAIN);
    assert_ne!(dimm(&mem, 0x2000), expect);

    let clear = KeyProgramStruct::new(17, KeyCommand::ClearKey, XtsAlgorithm::Aes128);
    let t = program(&mut mem, t, clear);
    mem.write_line_untimed(t, pa(&mem, 17, 0x2000), &PLAIN);
    assert_eq!(dimm(&mem, 0x2000), expect);
    assert!(mem.key(KeyId::new(17)).is_none());
}

#[test]
fn no_encrypt_puts_plaintext_on_the_dimm() {
    let mut mem = boot(&MemCtrlConfig::default(), 5);
    let t = program(
        &mut mem,
        Cycle::ZERO,
        KeyProgramStruct::new(4, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128),
    );
    mem.write_line_untimed(t, pa(&mem, 4, 0x3000), &PLAIN);
    assert_eq!(dimm(&mem, 0x3000), PLAIN);
    assert_eq!(mem.read_line_untimed(t, pa(&mem, 4, 0x3000)), PLAIN);
}

#[test]
fn bypass_leaves_keyid0_and_tme_behaviour_keyids_in_plaintext() {
    let mut config = MemCtrlConfig::default();
    config.tme.bypass = true;
    let mut mem = boot(&config, 5);
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 0, 0x1000), &PLAIN);
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 9, 0x2000), &PLAIN);
    assert_eq!(dimm(&mem, 0x1000), PLAIN);
    assert_eq!(dimm(&mem, 0x2000), PLAIN);
    // A programmed KeyID still encrypts.
    let t = program(&mut mem, Cycle::new(1), direct(9, &[1; 16], &[2; 16]));
    mem.write_line_untimed(t, pa(&mem, 9, 0x2000), &PLAIN);
    assert_ne!(dimm(&mem, 0x2000), PLAIN);
}

#[test]
fn exclusion_range_applies_to_keyid0_only() {
    let mut config = MemCtrlConfig::default();
    config.tme.exclusion = Some(ExclusionRange {
        base: DramAddr::new(0x10_0000),
        size_bytes: 0x10_0000,
    });
    let mut mem = boot(&config, 5);
    let platform = mem.tme().platform_key().unwrap().clone();
    // KeyID 0 inside: plaintext. KeyID 0 outside: encrypted.
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 0, 0x10_0040), &PLAIN);
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 0, 0x20_0040), &PLAIN);
    assert_eq!(dimm(&mem, 0x10_0040), PLAIN);
    assert_ne!(dimm(&mem, 0x20_0040), PLAIN);
    // KeyID 3 in TME behaviour inside the range: encrypted with the platform key.
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 3, 0x10_0080), &PLAIN);
    let mut expect = PLAIN;
    platform
        .cipher()
        .encrypt_line(DramAddr::new(0x10_0080), &mut expect);
    assert_eq!(dimm(&mem, 0x10_0080), expect);
}

#[test]
fn tme_disabled_means_no_encryption_at_all() {
    let mut config = MemCtrlConfig {
        layout: AddressLayout::new(46, 0).unwrap(),
        ..MemCtrlConfig::default()
    };
    config.tme.enabled = false;
    config.tme.max_keys = 0;
    let mut mem = boot(&config, 5);
    assert!(mem.tme().platform_key().is_none());
    mem.write_line_untimed(Cycle::ZERO, pa(&mem, 0, 0x1000), &PLAIN);
    assert_eq!(dimm(&mem, 0x1000), PLAIN);
}

#[test]
fn one_pconfig_programs_every_controller() {
    let config = MemCtrlConfig {
        controllers: 4,
        interleave_bytes: 4096,
        ..MemCtrlConfig::default()
    };
    let mut mem = boot(&config, 8);
    let (k1, k2) = ([0x61; 16], [0x62; 16]);
    let t = program(&mut mem, Cycle::ZERO, direct(5, &k1, &k2));
    let cipher = XtsCipher::new(XtsAlgorithm::Aes128, &k1, &k2).unwrap();
    let mut served = [false; 4];
    for page in 0..8u64 {
        let addr = page * 4096 + 0x40;
        let mc = mem.controller_of(DramAddr::new(addr));
        served[mc] = true;
        assert_eq!(mc, (page % 4) as usize, "4 KiB interleave");
        mem.write_line_untimed(t, pa(&mem, 5, addr), &PLAIN);
        let mut expect = PLAIN;
        cipher.encrypt_line(DramAddr::new(addr), &mut expect);
        assert_eq!(
            mem.controllers()[mc].store().read(DramAddr::new(addr)),
            expect
        );
        assert!(mem.controllers()[mc].keys().mode(KeyId::new(5)).name() == "direct");
    }
    assert_eq!(served, [true; 4]);
}

#[test]
fn a_key_change_is_reported_at_the_cycle_the_table_changes() {
    // Issue 9: observers (the coherency checker) learn of a key change at PCONFIG's
    // completion, when the key table really changes, not when the instruction starts.
    let mut mem = boot(&MemCtrlConfig::default(), 8);
    let start = Cycle::new(100);
    let r = mem.pconfig(
        start,
        &PconfigCall::key_program(direct(3, &[1; 16], &[2; 16])),
    );
    assert!(r.outcome.is_success(), "{}", r.outcome);
    assert!(r.done > start);
    // The change is an event of its own: the memory system asks to be stepped then.
    assert_eq!(mem.next_event_cycle(), r.done);
    let mut events = Vec::new();
    mem.settle(Cycle::new(r.done.get() - 1));
    mem.take_events(&mut events);
    assert!(events.is_empty(), "nothing changed before completion");
    assert_eq!(mem.key_mode(KeyId::new(3)).name(), "tme");
    // Stepped late, the event still carries the cycle the entry changed.
    let mut responses = Vec::new();
    mem.tick(r.done.plus(5), &mut responses);
    mem.take_events(&mut events);
    assert_eq!(
        events,
        [MemEvent::KeyChanged {
            cycle: r.done,
            keyid: KeyId::new(3)
        }]
    );
    assert_eq!(mem.key_mode(KeyId::new(3)).name(), "direct");
    assert_eq!(mem.next_event_cycle(), Cycle::NEVER);
    // Taken once.
    mem.take_events(&mut events);
    assert_eq!(events.len(), 1);
    // A failed PCONFIG changes nothing and reports nothing.
    let busy = mem.pconfig(
        r.done.plus(10),
        &PconfigCall::key_program(direct(99, &[1; 16], &[2; 16])),
    );
    assert!(!busy.outcome.is_success());
    mem.settle(busy.done.plus(2000));
    events.clear();
    mem.take_events(&mut events);
    assert!(events.is_empty());
}

#[test]
fn the_keyid_is_not_part_of_the_tweak() {
    // validation-data.md section 3: the same line under any KeyID programmed with the same two
    // keys encrypts to the same bytes.
    let key1: Vec<u8> = (0x00..0x10).collect();
    let key2: Vec<u8> = (0x10..0x20).collect();
    let mut mem = boot(&MemCtrlConfig::default(), 1);
    let t = program(&mut mem, Cycle::ZERO, direct(1, &key1, &key2));
    let t = program(&mut mem, t, direct(33, &key1, &key2));
    let plain: LineBytes = std::array::from_fn(|i| i as u8);
    let expected = "9c313977970e7cc25452922466bc8fd9b90265d9d433f407ec8d564213d077139491bbd01a84599a6b574c7a4b9622b44959056f6efce3fc1ffe1f7d4b287aca";
    for keyid in [1, 33] {
        mem.write_line_untimed(t, pa(&mem, keyid, 0x12340), &plain);
        assert_eq!(hex::encode(dimm(&mem, 0x12340)), expected, "KeyID {keyid}");
    }
}

#[test]
fn wrong_keyid_and_untouched_lines_read_as_garbage_without_error() {
    let mut mem = boot(&MemCtrlConfig::default(), 1);
    let t = program(&mut mem, Cycle::ZERO, direct(2, &[1; 16], &[2; 16]));
    mem.write_line_untimed(t, pa(&mem, 2, 0x5000), &PLAIN);
    // Through KeyID 0 (the kernel's direct map) the line decrypts with the wrong key.
    let through_tme = mem.read_line_untimed(t, pa(&mem, 0, 0x5000));
    assert_ne!(through_tme, PLAIN);
    // An untouched line is zero ciphertext: through a key it decrypts to non-zero garbage.
    let untouched = mem.read_line_untimed(t, pa(&mem, 2, 0x9000));
    assert_ne!(untouched, [0; 64]);
    let mut zero = [0u8; 64];
    mem.key(KeyId::new(2))
        .unwrap()
        .cipher()
        .decrypt_line(DramAddr::new(0x9000), &mut zero);
    assert_eq!(untouched, zero);
}

/// Flips one bit of every read, like a faulty or malicious DIMM interposer.
struct FlipOnRead;

impl BusProbe for FlipOnRead {
    fn observe(&mut self, txn: &mut BusTransaction) {
        if txn.op == MemOp::Read {
            txn.data[20] ^= 0x01;
        }
    }
}

#[test]
fn bus_probes_see_ciphertext_and_can_replace_it() {
    let mut mem = boot(&MemCtrlConfig::default(), 1);
    let t = program(&mut mem, Cycle::ZERO, direct(2, &[1; 16], &[2; 16]));
    let recorder = mem
        .controller_mut(0)
        .bus_mut()
        .attach(Box::new(BusRecorder::with_limit(2)));
    mem.write_line_untimed(t.plus(500), pa(&mem, 2, 0x7000), &PLAIN);
    let flip = mem.controller_mut(0).bus_mut().attach(Box::new(FlipOnRead));
    let read = mem.read_line_untimed(t.plus(600), pa(&mem, 2, 0x7000));
    mem.read_line_untimed(t.plus(700), pa(&mem, 2, 0x7000));

    let rec: &BusRecorder = mem.controllers()[0].bus().probe(recorder).unwrap();
    let log = rec.log();
    assert_eq!(log.len(), 2);
    assert_eq!(rec.dropped(), 1);
    assert_eq!(
        (log[0].cycle, log[0].op, log[0].addr),
        (t.plus(500), MemOp::Write, DramAddr::new(0x7000))
    );
    assert_eq!(
        log[0].data,
        dimm(&mem, 0x7000),
        "the bus carries what the DIMM stores"
    );
    assert_ne!(log[0].data, PLAIN);
    // Encrypted with KeyID 2's own key, not the platform key.
    let mut expect = PLAIN;
    mem.key(KeyId::new(2))
        .unwrap()
        .cipher()
        .encrypt_line(DramAddr::new(0x7000), &mut expect);
    assert_eq!(log[0].data, expect);
    assert_eq!((log[1].cycle, log[1].op), (t.plus(600), MemOp::Read));
    assert!(
        mem.controllers()[0]
            .bus()
            .probe::<FlipOnRead>(recorder)
            .is_none()
    );
    assert!(
        mem.controllers()[0]
            .bus()
            .probe::<FlipOnRead>(flip)
            .is_some()
    );
    // XTS: one flipped ciphertext bit garbles exactly its 16-byte block (bytes 16..32).
    assert_eq!(&read[..16], &PLAIN[..16]);
    assert_ne!(&read[16..32], &PLAIN[16..32]);
    assert_eq!(&read[32..], &PLAIN[32..]);
}

#[test]
fn stats_count_what_crossed_the_bus() {
    let mut mem = boot(&MemCtrlConfig::default(), 1);
    let t = program(
        &mut mem,
        Cycle::ZERO,
        KeyProgramStruct::new(4, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128),
    );
    mem.write_line_untimed(t, pa(&mem, 4, 0x1000), &PLAIN);
    mem.write_line_untimed(t, pa(&mem, 0, 0x2000), &PLAIN);
    mem.read_line_untimed(t, pa(&mem, 0, 0x2000));
    let mut report = sim_core::StatsReport::new();
    mem.report_stats(&mut report);
    assert_eq!(report.get_count("mc0.writes"), Some(2));
    assert_eq!(report.get_count("mc0.reads"), Some(1));
    assert_eq!(report.get_count("mc0.lines_encrypted"), Some(1));
    assert_eq!(report.get_count("mc0.lines_decrypted"), Some(1));
    assert_eq!(report.get_count("mc0.lines_plaintext"), Some(1));
    assert_eq!(report.get_count("mc0.bus_transactions"), Some(3));
    assert_eq!(report.get_count("mc0.dram_lines_touched"), Some(2));
    assert_eq!(report.get_count("pconfig.succeeded"), Some(1));
}
